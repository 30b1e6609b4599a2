/*
 * gRPC framing below HTTP/2: pooled byte queues, message packing and
 * reassembly, and the encodings gRPC puts in headers and trailers.
 */
#include "rpc_wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google_rpc_status.pb-c.h"
#include "pgw/bufpool.h"
#include "rpc.h"

/* ------------------------------------------------------------ block queue */

struct rpc_blk {
	rpc_blk *next;
	size_t cap; /* what bufpool reported, for bufpool_put */
	size_t off, len;
	uint8_t data[];
};

/* Blocks of 16 KiB carry many small messages; a big message gets big blocks
 * so a 5 MiB row set is not a thousand links. */
#define RPC_BLK_MIN (16u << 10)
/* A body split across chunks starts in a buffer this big, then doubles. */
#define RPC_REASM_FIRST (64u << 10)

static rpc_blk *blk_new(size_t want)
{
	size_t cap;
	if (want < RPC_BLK_MIN)
		want = RPC_BLK_MIN;
	if (want > (1u << 20))
		want = 1u << 20;
	rpc_blk *b = bufpool_get(want, &cap);
	if (!b)
		return NULL;
	b->next = NULL;
	b->cap = cap;
	b->off = b->len = 0;
	return b;
}

static size_t blk_room(const rpc_blk *b)
{
	return b->cap - sizeof(rpc_blk) - b->off - b->len;
}

int rpc_bq_append(rpc_bq *q, const void *p, size_t n)
{
	const uint8_t *s = p;
	while (n > 0) {
		rpc_blk *t = q->tail;
		if (!t || blk_room(t) == 0) {
			t = blk_new(n + sizeof(rpc_blk));
			if (!t)
				return -1;
			if (q->tail)
				q->tail->next = t;
			else
				q->head = t;
			q->tail = t;
		}
		size_t k = blk_room(t);
		if (k > n)
			k = n;
		memcpy(t->data + t->off + t->len, s, k);
		t->len += k;
		q->bytes += k;
		s += k;
		n -= k;
	}
	return 0;
}

const uint8_t *rpc_bq_peek(const rpc_bq *q, size_t *n)
{
	if (!q->head) {
		*n = 0;
		return NULL;
	}
	*n = q->head->len;
	return q->head->data + q->head->off;
}

void rpc_bq_drop(rpc_bq *q, size_t n)
{
	while (n > 0 && q->head) {
		rpc_blk *h = q->head;
		size_t k = h->len < n ? h->len : n;
		h->off += k;
		h->len -= k;
		q->bytes -= k;
		n -= k;
		if (h->len == 0) {
			q->head = h->next;
			if (!q->head)
				q->tail = NULL;
			bufpool_put(h, h->cap);
		}
	}
}

size_t rpc_bq_read(rpc_bq *q, void *out, size_t n)
{
	uint8_t *d = out;
	size_t done = 0;
	while (done < n && q->head) {
		size_t k;
		const uint8_t *p = rpc_bq_peek(q, &k);
		if (k > n - done)
			k = n - done;
		memcpy(d + done, p, k);
		rpc_bq_drop(q, k);
		done += k;
	}
	return done;
}

void rpc_bq_clear(rpc_bq *q)
{
	while (q->head) {
		rpc_blk *h = q->head;
		q->head = h->next;
		bufpool_put(h, h->cap);
	}
	q->tail = NULL;
	q->bytes = 0;
}

/* n contiguous bytes at the queue's end, counted as queued; NULL when n
 * is more than a block holds (or out of memory). */
static uint8_t *bq_reserve(rpc_bq *q, size_t n)
{
	if (n > (1u << 20) - sizeof(rpc_blk))
		return NULL;
	rpc_blk *t = q->tail;
	if (!t || blk_room(t) < n) {
		t = blk_new(n + sizeof(rpc_blk));
		if (!t)
			return NULL;
		if (q->tail)
			q->tail->next = t;
		else
			q->head = t;
		q->tail = t;
	}
	uint8_t *at = t->data + t->off + t->len;
	t->len += n;
	q->bytes += n;
	return at;
}

/* protobuf-c packs big messages through this, straight into the queue's
 * blocks. */
typedef struct bq_sink {
	ProtobufCBuffer base;
	rpc_bq *q;
	int failed;
} bq_sink;

static void bq_sink_append(ProtobufCBuffer *buf, size_t len, const uint8_t *data)
{
	bq_sink *s = (bq_sink *)buf;
	if (!s->failed && rpc_bq_append(s->q, data, len) != 0)
		s->failed = 1;
}

int rpc_pack_message(rpc_bq *q, const ProtobufCMessage *msg)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	if (n > RPC_MAX_MESSAGE) {
		errno = EMSGSIZE;
		return -1;
	}
	uint8_t hdr[5] = {0, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
	/* Most messages fit a block: packed there in one pass, instead of
	 * field by field through the sink. */
	uint8_t *at = bq_reserve(q, sizeof hdr + n);
	if (at) {
		memcpy(at, hdr, sizeof hdr);
		protobuf_c_message_pack(msg, at + sizeof hdr);
		return 0;
	}
	if (rpc_bq_append(q, hdr, sizeof hdr) != 0)
		return -1;
	bq_sink s = {.base = {.append = bq_sink_append}, .q = q, .failed = 0};
	protobuf_c_message_pack_to_buffer(msg, &s.base);
	return s.failed ? -1 : 0;
}

/* ------------------------------------------------------------ reassembler */

/* Room for need bytes of the body: the buffer grows with what arrived
 * (doubling), so a peer's length prefix alone never allocates much. */
static int reasm_grow(rpc_reasm *r, size_t need)
{
	size_t want = r->cap ? r->cap * 2 : RPC_REASM_FIRST;
	while (want < need)
		want *= 2;
	if (want > r->len)
		want = r->len;
	size_t cap;
	uint8_t *nb = bufpool_get(want, &cap);
	if (!nb)
		return -1;
	if (r->buf) {
		memcpy(nb, r->buf, r->have);
		bufpool_put(r->buf, r->cap);
	}
	r->buf = nb;
	r->cap = cap;
	return 0;
}

ssize_t rpc_reasm_feed(rpc_reasm *r, const uint8_t *p, size_t n, const uint8_t **msg, size_t *msg_len)
{
	size_t used = 0;
	*msg = NULL;
	*msg_len = 0;
	while (r->hdr_have < 5) {
		if (used == n)
			return (ssize_t)used;
		r->hdr[r->hdr_have++] = p[used++];
		if (r->hdr_have == 5) {
			/* No grpc-encoding is ever negotiated, so a compressed
			 * message is a protocol error. */
			if (r->hdr[0] != 0)
				return RPC_REASM_COMPRESSED;
			r->len = (uint32_t)r->hdr[1] << 24 | (uint32_t)r->hdr[2] << 16 |
				 (uint32_t)r->hdr[3] << 8 | r->hdr[4];
			if (r->len > r->max)
				return RPC_REASM_TOO_BIG;
			r->have = 0;
		}
	}
	size_t left = n - used;
	if (r->have == 0 && left >= r->len) {
		/* The whole body is here: no copy. */
		*msg = p + used;
		*msg_len = r->len;
		r->hdr_have = 0;
		return (ssize_t)(used + r->len);
	}
	size_t k = r->len - r->have;
	if (k > left)
		k = left;
	if (k == 0)
		return (ssize_t)used;
	if (r->have + k > r->cap && reasm_grow(r, r->have + k) != 0)
		return RPC_REASM_NOMEM;
	memcpy(r->buf + r->have, p + used, k);
	r->have += k;
	used += k;
	if (r->have == r->len) {
		*msg = r->buf;
		*msg_len = r->len;
		r->hdr_have = 0;
	}
	return (ssize_t)used;
}

void rpc_reasm_done(rpc_reasm *r)
{
	if (r->buf) {
		bufpool_put(r->buf, r->cap);
		r->buf = NULL;
		r->cap = 0;
	}
	r->have = 0;
}

bool rpc_reasm_partial(const rpc_reasm *r)
{
	return r->hdr_have > 0;
}

static void take_one(const rpc_taker *t, const uint8_t *p, size_t n)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(t->type, &t->arena->alloc, n, p);
	if (!m) {
		rpc_arena_reset(t->arena);
		char msg[64];
		snprintf(msg, sizeof msg, "could not parse the %s message", t->what);
		t->fail(t->call, RPC_INTERNAL, msg);
		return;
	}
	t->deliver(t->call, m);
	protobuf_c_message_free_unpacked(m, &t->arena->alloc);
	rpc_arena_reset(t->arena);
}

size_t rpc_take(const rpc_taker *t, const uint8_t *p, size_t n)
{
	size_t used = 0;
	while (used < n && t->state(t->call) == RPC_TAKE_GO) {
		const uint8_t *m;
		size_t ml;
		ssize_t k = rpc_reasm_feed(t->in, p + used, n - used, &m, &ml);
		if (k < 0) {
			char msg[64];
			snprintf(msg, sizeof msg, "%s",
				 k == RPC_REASM_COMPRESSED ? "compressed message without grpc-encoding"
							   : "out of memory");
			if (k == RPC_REASM_TOO_BIG)
				snprintf(msg, sizeof msg, "%s message larger than the limit", t->what);
			t->fail(t->call, k == RPC_REASM_TOO_BIG ? RPC_RESOURCE_EXHAUSTED : RPC_INTERNAL,
				msg);
			return n;
		}
		used += (size_t)k;
		if (m) {
			take_one(t, m, ml);
			rpc_reasm_done(t->in);
		}
	}
	return t->state(t->call) == RPC_TAKE_GONE ? n : used;
}

void rpc_reasm_free(rpc_reasm *r)
{
	rpc_reasm_done(r);
	r->hdr_have = 0;
}

/* ------------------------------------------------------------ arena */

typedef struct arena_blk {
	struct arena_blk *next;
	size_t cap;
} arena_blk;

#define ARENA_ALIGN 16

static void *arena_alloc(void *data, size_t size)
{
	rpc_arena *a = data;
	size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (size > a->left) {
		size_t hdr = (sizeof(arena_blk) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
		size_t want = size + hdr < 8192 ? 8192 : size + hdr;
		size_t cap;
		arena_blk *b = bufpool_get(want, &cap);
		if (!b)
			return NULL;
		b->cap = cap;
		b->next = a->blocks;
		a->blocks = b;
		a->cur = (uint8_t *)b + hdr;
		a->left = cap - hdr;
	}
	void *p = a->cur;
	a->cur += size;
	a->left -= size;
	return p;
}

static void arena_free(void *data, void *p)
{
	/* Everything goes at once in rpc_arena_reset. */
	(void)data;
	(void)p;
}

void rpc_arena_init(rpc_arena *a)
{
	a->alloc.alloc = arena_alloc;
	a->alloc.free = arena_free;
	a->alloc.allocator_data = a;
	a->blocks = NULL;
	a->cur = NULL;
	a->left = 0;
}

void rpc_arena_reset(rpc_arena *a)
{
	arena_blk *b = a->blocks;
	while (b) {
		arena_blk *next = b->next;
		bufpool_put(b, b->cap);
		b = next;
	}
	a->blocks = NULL;
	a->cur = NULL;
	a->left = 0;
}

/* ------------------------------------------------------------ grpc-timeout */

double rpc_timeout_parse(const char *s, size_t n)
{
	if (n < 2 || n > 9)
		return -1;
	double v = 0;
	for (size_t i = 0; i + 1 < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	switch (s[n - 1]) {
	case 'H':
		return v * 3600;
	case 'M':
		return v * 60;
	case 'S':
		return v;
	case 'm':
		return v / 1e3;
	case 'u':
		return v / 1e6;
	case 'n':
		return v / 1e9;
	default:
		return -1;
	}
}

void rpc_timeout_format(double seconds, char out[16])
{
	static const struct {
		double scale;
		char unit;
	} units[] = {{1e6, 'u'}, {1e3, 'm'}, {1, 'S'}, {1.0 / 60, 'M'}, {1.0 / 3600, 'H'}};
	if (seconds < 0)
		seconds = 0;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		double v = seconds * units[i].scale;
		/* Round up: a deadline must not come early. */
		unsigned long long u = (unsigned long long)v;
		if ((double)u < v)
			u++;
		if (u <= 99999999ull) {
			snprintf(out, 16, "%llu%c", u ? u : 1, units[i].unit);
			return;
		}
	}
	snprintf(out, 16, "99999999H");
}

/* ------------------------------------------------------------ percent */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *rpc_pct_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(3 * n + 1);
	if (!out)
		return NULL;
	char *d = out;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		/* gRPC: printable ASCII other than '%' goes as is. */
		if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
			*d++ = (char)*p;
		} else {
			*d++ = '%';
			*d++ = hex[*p >> 4];
			*d++ = hex[*p & 15];
		}
	}
	*d = 0;
	return out;
}

char *rpc_pct_decode(const uint8_t *s, size_t n)
{
	char *out = malloc(n + 1);
	if (!out)
		return NULL;
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		int h, l;
		if (s[i] == '%' && i + 2 < n && (h = hexval(s[i + 1])) >= 0 &&
		    (l = hexval(s[i + 2])) >= 0) {
			out[j++] = (char)(h << 4 | l);
			i += 2;
		} else {
			/* Not a valid escape: gRPC keeps the bytes as they are. */
			out[j++] = (char)s[i];
		}
	}
	out[j] = 0;
	return out;
}

/* ------------------------------------------------------------ base64 */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *rpc_b64_encode(const uint8_t *p, size_t n)
{
	char *out = malloc(n / 3 * 4 + 5);
	if (!out)
		return NULL;
	size_t j = 0, i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[j++] = b64chars[v >> 18];
		out[j++] = b64chars[(v >> 12) & 63];
		out[j++] = b64chars[(v >> 6) & 63];
		out[j++] = b64chars[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		out[j++] = b64chars[v >> 18];
		out[j++] = b64chars[(v >> 12) & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[j++] = b64chars[v >> 18];
		out[j++] = b64chars[(v >> 12) & 63];
		out[j++] = b64chars[(v >> 6) & 63];
	}
	out[j] = 0;
	return out;
}

static int b64val(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int rpc_b64_decode(const uint8_t *s, size_t n, uint8_t **out, size_t *out_len)
{
	/* Up to two '=' of padding, only at the end, only to a multiple of 4. */
	size_t pad = 0;
	while (n > 0 && s[n - 1] == '=' && pad < 2) {
		n--;
		pad++;
	}
	if (pad && (n + pad) % 4 != 0)
		return -1;
	if (n % 4 == 1)
		return -1;
	uint8_t *d = malloc(n / 4 * 3 + 3);
	if (!d)
		return -1;
	size_t j = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64val(s[i]);
		if (v < 0) {
			free(d);
			return -1;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			d[j++] = (uint8_t)(acc >> bits);
		}
		acc &= (1u << bits) - 1;
	}
	*out = d;
	*out_len = j;
	return 0;
}

/* ------------------------------------------------------------ status details */

char *rpc_status_details_encode(int code, const char *message, const ProtobufCMessage *detail)
{
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	Google__Rpc__Any any = GOOGLE__RPC__ANY__INIT;
	Google__Rpc__Any *anys[1] = {&any};
	char *type_url = NULL;
	uint8_t *value = NULL, *packed = NULL;
	char *out = NULL;

	st.code = code;
	st.message = (char *)(message ? message : "");
	if (detail) {
		const char *name = detail->descriptor->name;
		size_t tl = strlen(RPC_TYPE_URL_PREFIX) + strlen(name) + 1;
		type_url = malloc(tl);
		size_t vn = protobuf_c_message_get_packed_size(detail);
		value = malloc(vn ? vn : 1);
		if (!type_url || !value)
			goto done;
		snprintf(type_url, tl, "%s%s", RPC_TYPE_URL_PREFIX, name);
		protobuf_c_message_pack(detail, value);
		any.type_url = type_url;
		any.value.data = value;
		any.value.len = vn;
		st.n_details = 1;
		st.details = anys;
	}
	size_t n = protobuf_c_message_get_packed_size(&st.base);
	packed = malloc(n ? n : 1);
	if (!packed)
		goto done;
	protobuf_c_message_pack(&st.base, packed);
	out = rpc_b64_encode(packed, n);
done:
	free(type_url);
	free(value);
	free(packed);
	return out;
}

int rpc_status_details_decode(const uint8_t *b64, size_t n, const char *type_name, uint8_t **out,
			      size_t *out_len)
{
	uint8_t *raw;
	size_t rawn;
	*out = NULL;
	*out_len = 0;
	if (rpc_b64_decode(b64, n, &raw, &rawn) != 0)
		return -1;
	Google__Rpc__Status *st = google__rpc__status__unpack(NULL, rawn, raw);
	free(raw);
	if (!st)
		return -1;
	for (size_t i = 0; i < st->n_details; i++) {
		const char *url = st->details[i]->type_url;
		/* Any says the type is whatever follows the last '/'. */
		const char *slash = url ? strrchr(url, '/') : NULL;
		const char *name = slash ? slash + 1 : url;
		if (name && strcmp(name, type_name) == 0) {
			size_t vn = st->details[i]->value.len;
			*out = malloc(vn ? vn : 1);
			if (!*out) {
				google__rpc__status__free_unpacked(st, NULL);
				return -1;
			}
			if (vn)
				memcpy(*out, st->details[i]->value.data, vn);
			*out_len = vn;
			break;
		}
	}
	google__rpc__status__free_unpacked(st, NULL);
	return 0;
}
