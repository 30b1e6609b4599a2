/*
 * libFuzzer/AFL++ target: body decoder -> encoder -> stream decoder.
 *
 * Input: one byte selecting the message (1..N = the pgw_msg_id value, i.e.
 * the message's index + 1 in grammar order; other values are taken modulo
 * N), then a message body without its header. If pgw_decode_body accepts
 * the body, then
 *   - the views and arrays pass the checks of fz_check_body,
 *   - pgw_encode gives the header and exactly that body back,
 *   - the encoded message, decoded with pgw_decode in each direction and
 *     phase the message is valid in (taken from the generated test vectors,
 *     tests/unit/pgw_vectors.h), gives the same message, which re-encodes
 *     to the same bytes again.
 * The second decode may only refuse what the framing refuses before the
 * body: a length over the message's limit, or a StartupMessage whose
 * protocol word is not 3.x (or is another startup packet's code).
 */
#include <string.h>

#include "fuzz_common.h"
#include "pgw/wbuf.h"
#include "pgw_vectors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NMSG ((unsigned)PGW_MSG_DIRECT_TLS - 1) /* grammar messages */
#define MAX_WHERE 4

typedef struct where {
	pgw_direction dir;
	pgw_phase phase;
} where;

static struct {
	unsigned n;
	where w[MAX_WHERE];
} places[PGW_MSG_COUNT];

/* Where each message is valid, from the valid vectors. */
static void build_places(void)
{
	static bool built;
	if (built)
		return;
	for (size_t i = 0; i < pgw_vector_count; i++) {
		const pgw_vector *v = &pgw_vectors[i];
		if (!v->ok || v->id <= PGW_MSG_NONE || v->id >= PGW_MSG_COUNT)
			continue;
		bool seen = false;
		for (unsigned k = 0; k < places[v->id].n; k++)
			seen |= places[v->id].w[k].dir == v->direction &&
				places[v->id].w[k].phase == v->phase;
		if (!seen && places[v->id].n < MAX_WHERE)
			places[v->id].w[places[v->id].n++] = (where){v->direction, v->phase};
	}
	for (unsigned id = 1; id <= NMSG; id++)
		FZ_CHECK(places[id].n > 0, "no valid vector for %s", pgw_msg_name((pgw_msg_id)id));
	built = true;
}

static uint32_t rd32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* A StartupMessage body whose protocol word is another startup packet's
 * code: framed as that packet, which this body need not be. */
static bool other_packet_code(pgw_msg_id id, const pgw_msg_body *body)
{
	if (id != PGW_MSG_STARTUP_MESSAGE)
		return false;
	uint32_t proto = (uint32_t)body->startup_message.protocol;
	return proto == PGW_SSL_REQUEST_CODE || proto == PGW_GSSENC_REQUEST_CODE ||
	       proto == PGW_CANCEL_REQUEST_CODE;
}

/* A refusal the framing may make of a message whose body decodes. */
static bool framing_refusal(pgw_msg_id id, const pgw_msg_body *body, size_t total,
			    const pgw_error *err)
{
	if (!err->lost_sync)
		return false;
	if (strcmp(err->message, "invalid message length") == 0)
		return total - 1 > PGW_SMALL_MESSAGE_LIMIT;
	if (strcmp(err->message, "invalid length of startup packet") == 0 &&
	    total > PGW_STARTUP_MAX_LENGTH)
		return true;
	if (other_packet_code(id, body))
		return true;
	if (id == PGW_MSG_STARTUP_MESSAGE && (uint32_t)body->startup_message.protocol >> 16 != 3)
		return strncmp(err->message, "unsupported frontend protocol", 29) == 0;
	return false;
}

static void decode_again(pgw_msg_id id, const pgw_msg_body *body, const where *at,
			 const uint8_t *enc, size_t len)
{
	/* An exactly sized copy: ASan sees any read past the message. */
	uint8_t *copy = malloc(len);
	FZ_CHECK(copy != NULL, "out of memory");
	memcpy(copy, enc, len);
	pgw_decoder d;
	pgw_decoder_init(&d, at->dir, 0);
	d.phase = at->phase;
	pgw_decoder before = d;
	pgw_msg m;
	pgw_error err;
	size_t used = 0;
	memset(&err, 0, sizeof err);
	pgw_status st = pgw_decode(&d, copy, len, &m, &used, &err);
	if (st == PGW_ERR) {
		fz_check_error(&err);
		FZ_CHECK(framing_refusal(id, body, len, &err),
			 "%s (%zu bytes) from its own encoder refused in phase %d: %s %s",
			 pgw_msg_name(id), len, (int)at->phase, err.sqlstate, err.message);
		free(copy);
		return;
	}
	FZ_CHECK(st == PGW_OK, "%s: whole message (%zu bytes) gives status %d", pgw_msg_name(id),
		 len, (int)st);
	FZ_CHECK(m.id == id || other_packet_code(id, body),
		 "%s decodes as %s in phase %d", pgw_msg_name(id), pgw_msg_name(m.id),
		 (int)at->phase);
	FZ_CHECK(used == len && m.raw == copy && m.raw_len == len,
		 "%s: consumed %zu of %zu, raw_len %u", pgw_msg_name(id), used, len, m.raw_len);
	fz_check_msg(&m); /* re-encodes to the same bytes */
	fz_check_redecode(&before, &m);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	build_places();
	pgw_msg_id id = (pgw_msg_id)(1 + (data[0] + NMSG - 1) % NMSG);
	const uint8_t *body = data + 1;
	size_t len = size - 1;

	pgw_msg_body view;
	pgw_error err;
	memset(&err, 0, sizeof err);
	pgw_status st = pgw_decode_body(id, body, len, &view, &err);
	if (st != PGW_OK) {
		FZ_CHECK(st == PGW_ERR, "%s: pgw_decode_body gave status %d", pgw_msg_name(id),
			 (int)st);
		fz_check_error(&err);
		fz_end_input();
		return 0;
	}
	fz_check_body(id, &view, body, body + len);

	pgw_wbuf w = PGW_WBUF_INIT;
	bool ok = pgw_encode(&w, id, &view);
	FZ_CHECK(ok, "%s: pgw_encode failed on a decoded body", pgw_msg_name(id));
	size_t hdr = places[id].w[0].phase == PGW_PH_STARTUP ? 4 : 5;
	FZ_CHECK(w.len == hdr + len && memcmp(w.data + hdr, body, len) == 0,
		 "%s: %zu body bytes encode as %zu bytes that differ", pgw_msg_name(id), len,
		 w.len);
	FZ_CHECK(rd32(w.data + hdr - 4) == len + 4, "%s: length word %u for a %zu-byte body",
		 pgw_msg_name(id), rd32(w.data + hdr - 4), len);

	for (unsigned k = 0; k < places[id].n; k++)
		decode_again(id, &view, &places[id].w[k], w.data, w.len);
	pgw_wbuf_release(&w);
	fz_end_input();
	return 0;
}
