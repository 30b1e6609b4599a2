/* Checks and the stream driver shared by the fuzz targets; see fuzz_common.h. */
#include "fuzz_common.h"

#include <string.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FZ_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FZ_ASAN 1
#endif
#ifdef FZ_ASAN
#include <sanitizer/asan_interface.h>
#define FZ_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define FZ_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define FZ_POISON(p, n) ((void)(p), (void)(n))
#define FZ_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#include "pgw/bufpool.h"
#include "pgw/rbuf.h"
#include "pgw/wbuf.h"

/* ------------------------------------------------------------ views */

typedef struct span {
	uintptr_t lo, hi;
	pgw_msg_id id;
} span;

static void in_span(const span *s, const void *ptr, size_t n, const char *what)
{
	uintptr_t p = (uintptr_t)ptr;
	FZ_CHECK(p >= s->lo && p <= s->hi && n <= s->hi - p,
		 "%s: %s view [%p, +%zu) outside the message [%p, %p)", pgw_msg_name(s->id), what,
		 ptr, n, (void *)s->lo, (void *)s->hi);
}

static void check_str(const span *s, pgw_str v, const char *what)
{
	in_span(s, v.ptr, (size_t)v.len + 1, what);
	FZ_CHECK(v.ptr[v.len] == 0, "%s: %s not NUL-terminated", pgw_msg_name(s->id), what);
	FZ_CHECK(memchr(v.ptr, 0, v.len) == NULL, "%s: %s has a NUL inside (len %u)",
		 pgw_msg_name(s->id), what, v.len);
}

static void check_bytes(const span *s, pgw_bytes v, uint32_t min, uint32_t max, const char *what)
{
	in_span(s, v.ptr, v.len, what);
	FZ_CHECK(v.len >= min && v.len <= max, "%s: %s has %u bytes, not %u..%u",
		 pgw_msg_name(s->id), what, v.len, min, max);
}

static void check_value(const span *s, pgw_value v, const char *what)
{
	FZ_CHECK(v.len >= -1, "%s: %s length %d", pgw_msg_name(s->id), what, v.len);
	in_span(s, v.ptr, v.len > 0 ? (size_t)v.len : 0, what);
}

static void check_format(const span *s, int v, const char *what)
{
	FZ_CHECK(v == 0 || v == 1, "%s: %s format code %d accepted", pgw_msg_name(s->id), what, v);
}

/* An iterator stepped once: still inside the array. */
static void iter_inside(const span *s, const pgw_iter *it, const pgw_array *a, const char *what)
{
	FZ_CHECK(it->p <= a->ptr + a->size, "%s: %s iterator ran %td bytes past the array",
		 pgw_msg_name(s->id), what, it->p - (a->ptr + a->size));
}

static void iter_done(const span *s, const pgw_iter *it, const pgw_array *a, uint32_t n,
		      const char *what)
{
	FZ_CHECK(n == a->count, "%s: %s iterated %u items, count says %u", pgw_msg_name(s->id),
		 what, n, a->count);
	FZ_CHECK(it->p == a->ptr + a->size, "%s: %s iteration ended %td bytes from the array end",
		 pgw_msg_name(s->id), what, it->p - (a->ptr + a->size));
}

/* Int16/Int32 arrays: size is count items; format arrays hold 0/1 only. */
static void check_fixed(const span *s, const pgw_array *a, unsigned width, bool formats,
			const char *what)
{
	in_span(s, a->ptr, a->size, what);
	FZ_CHECK((uint64_t)a->count * width == a->size, "%s: %s has %u items in %u bytes",
		 pgw_msg_name(s->id), what, a->count, a->size);
	for (uint32_t i = 0; i < a->count; i++) {
		int v = width == 2 ? pgw_array_i16(a, i) : pgw_array_i32(a, i);
		if (formats)
			check_format(s, v, what);
	}
}

static void check_values(const span *s, const pgw_array *a, const char *what)
{
	in_span(s, a->ptr, a->size, what);
	pgw_iter it = pgw_array_iter(a);
	pgw_value v;
	uint32_t n = 0;
	while (n <= a->count && pgw_next_value(&it, &v)) {
		iter_inside(s, &it, a, what);
		check_value(s, v, what);
		n++;
	}
	iter_done(s, &it, a, n, what);
}

static void check_strs(const span *s, const pgw_array *a, bool nonempty, const char *what)
{
	in_span(s, a->ptr, a->size, what);
	pgw_iter it = pgw_array_iter(a);
	pgw_str v;
	uint32_t n = 0;
	while (n <= a->count && pgw_next_str(&it, &v)) {
		iter_inside(s, &it, a, what);
		check_str(s, v, what);
		if (nonempty)
			FZ_CHECK(v.len > 0, "%s: empty item in %s", pgw_msg_name(s->id), what);
		n++;
	}
	iter_done(s, &it, a, n, what);
}

static void check_fields(const span *s, const pgw_array *a)
{
	in_span(s, a->ptr, a->size, "fields");
	pgw_iter it = pgw_array_iter(a);
	uint8_t code;
	pgw_str v;
	uint32_t n = 0;
	while (n <= a->count && pgw_next_field(&it, &code, &v)) {
		iter_inside(s, &it, a, "fields");
		FZ_CHECK(code != 0, "%s: field code 0 inside the fields", pgw_msg_name(s->id));
		check_str(s, v, "field text");
		n++;
	}
	iter_done(s, &it, a, n, "fields");
	/* The terminator follows the array. */
	in_span(s, a->ptr + a->size, 1, "fields terminator");
	FZ_CHECK(a->ptr[a->size] == 0, "%s: fields not followed by their terminator",
		 pgw_msg_name(s->id));
}

static void check_pairs(const span *s, const pgw_array *a)
{
	in_span(s, a->ptr, a->size, "params");
	pgw_iter it = pgw_array_iter(a);
	pgw_str name, value;
	uint32_t n = 0;
	while (n <= a->count && pgw_next_pair(&it, &name, &value)) {
		iter_inside(s, &it, a, "params");
		check_str(s, name, "param name");
		check_str(s, value, "param value");
		FZ_CHECK(name.len > 0, "%s: empty parameter name", pgw_msg_name(s->id));
		n++;
	}
	iter_done(s, &it, a, n, "params");
	in_span(s, a->ptr + a->size, 1, "params terminator");
	FZ_CHECK(a->ptr[a->size] == 0, "%s: params not followed by their terminator",
		 pgw_msg_name(s->id));
}

static void check_row_description(const span *s, const pgw_array *a)
{
	in_span(s, a->ptr, a->size, "row description");
	pgw_iter it = pgw_array_iter(a);
	pgw_row_description_fields f;
	uint32_t n = 0;
	while (n <= a->count && pgw_next_row_description_fields(&it, &f)) {
		iter_inside(s, &it, a, "row description");
		check_str(s, f.name, "column name");
		/* Any int16 format: describing a portal, the server repeats
		 * the codes the client bound. */
		n++;
	}
	iter_done(s, &it, a, n, "row description");
}

void fz_check_body(pgw_msg_id id, const pgw_msg_body *b, const uint8_t *lo, const uint8_t *hi)
{
	span s = {(uintptr_t)lo, (uintptr_t)hi, id};
	FZ_CHECK(lo <= hi, "bad span");
	FZ_CHECK(pgw_msg_name(id) != NULL, "no name for %d", (int)id);

	/* No default: a message added to the grammar shows up here as a
	 * -Wswitch warning until it is checked. */
	switch (id) {
	case PGW_MSG_NONE:
	case PGW_MSG_COUNT:
		FZ_CHECK(0, "decoded a message with id %d", (int)id);
		break;
	case PGW_MSG_DIRECT_TLS:
	case PGW_MSG_SSL_ANSWER:
	case PGW_MSG_SYNC:
	case PGW_MSG_FLUSH:
	case PGW_MSG_COPY_DONE:
	case PGW_MSG_TERMINATE:
	case PGW_MSG_AUTHENTICATION_OK:
	case PGW_MSG_AUTHENTICATION_KERBEROS_V5:
	case PGW_MSG_AUTHENTICATION_CLEARTEXT_PASSWORD:
	case PGW_MSG_AUTHENTICATION_GSS:
	case PGW_MSG_AUTHENTICATION_SSPI:
	case PGW_MSG_BIND_COMPLETE:
	case PGW_MSG_CLOSE_COMPLETE:
	case PGW_MSG_EMPTY_QUERY_RESPONSE:
	case PGW_MSG_NO_DATA:
	case PGW_MSG_PARSE_COMPLETE:
	case PGW_MSG_PORTAL_SUSPENDED:
		break;
	case PGW_MSG_STARTUP_MESSAGE:
		check_pairs(&s, &b->startup_message.params);
		break;
	case PGW_MSG_SSL_REQUEST:
		check_bytes(&s, b->ssl_request.ignored, 0, 10000, "ignored");
		break;
	case PGW_MSG_GSSENC_REQUEST:
		check_bytes(&s, b->gssenc_request.ignored, 0, 10000, "ignored");
		break;
	case PGW_MSG_CANCEL_REQUEST:
		check_bytes(&s, b->cancel_request.key, 4, 256, "key");
		break;
	case PGW_MSG_QUERY:
		check_str(&s, b->query.query, "query");
		break;
	case PGW_MSG_PARSE:
		check_str(&s, b->parse.name, "name");
		check_str(&s, b->parse.query, "query");
		check_fixed(&s, &b->parse.param_types, 4, false, "param_types");
		break;
	case PGW_MSG_BIND:
		check_str(&s, b->bind.portal, "portal");
		check_str(&s, b->bind.statement, "statement");
		check_fixed(&s, &b->bind.param_formats, 2, true, "param_formats");
		check_values(&s, &b->bind.params, "params");
		check_fixed(&s, &b->bind.result_formats, 2, true, "result_formats");
		break;
	case PGW_MSG_DESCRIBE:
		FZ_CHECK(b->describe.target == 'S' || b->describe.target == 'P',
			 "Describe target %d", b->describe.target);
		check_str(&s, b->describe.name, "name");
		break;
	case PGW_MSG_EXECUTE:
		check_str(&s, b->execute.portal, "portal");
		break;
	case PGW_MSG_CLOSE:
		FZ_CHECK(b->close.target == 'S' || b->close.target == 'P', "Close target %d",
			 b->close.target);
		check_str(&s, b->close.name, "name");
		break;
	case PGW_MSG_COPY_DATA:
		check_bytes(&s, b->copy_data.data, 0, UINT32_MAX, "data");
		break;
	case PGW_MSG_COPY_FAIL:
		check_str(&s, b->copy_fail.message, "message");
		break;
	case PGW_MSG_FUNCTION_CALL:
		check_fixed(&s, &b->function_call.arg_formats, 2, true, "arg_formats");
		check_values(&s, &b->function_call.args, "args");
		check_format(&s, b->function_call.result_format, "result");
		break;
	case PGW_MSG_PASSWORD_MESSAGE:
		check_str(&s, b->password_message.password, "password");
		break;
	case PGW_MSG_SASL_INITIAL_RESPONSE:
		check_str(&s, b->sasl_initial_response.mechanism, "mechanism");
		check_value(&s, b->sasl_initial_response.data, "data");
		break;
	case PGW_MSG_SASL_RESPONSE:
		check_bytes(&s, b->sasl_response.data, 0, UINT32_MAX, "data");
		break;
	case PGW_MSG_GSS_RESPONSE:
		check_bytes(&s, b->gss_response.data, 0, UINT32_MAX, "data");
		break;
	case PGW_MSG_AUTHENTICATION_MD5_PASSWORD:
		check_bytes(&s, b->authentication_md5_password.salt, 4, 4, "salt");
		break;
	case PGW_MSG_AUTHENTICATION_GSS_CONTINUE:
		check_bytes(&s, b->authentication_gss_continue.data, 0, UINT32_MAX, "data");
		break;
	case PGW_MSG_AUTHENTICATION_SASL:
		check_strs(&s, &b->authentication_sasl.mechanisms, true, "mechanisms");
		break;
	case PGW_MSG_AUTHENTICATION_SASL_CONTINUE:
		check_bytes(&s, b->authentication_sasl_continue.data, 0, UINT32_MAX, "data");
		break;
	case PGW_MSG_AUTHENTICATION_SASL_FINAL:
		check_bytes(&s, b->authentication_sasl_final.data, 0, UINT32_MAX, "data");
		break;
	case PGW_MSG_BACKEND_KEY_DATA:
		check_bytes(&s, b->backend_key_data.key, 4, 256, "key");
		break;
	case PGW_MSG_COMMAND_COMPLETE:
		check_str(&s, b->command_complete.tag, "tag");
		break;
	case PGW_MSG_COPY_IN_RESPONSE:
		check_format(&s, b->copy_in_response.format, "copy");
		check_fixed(&s, &b->copy_in_response.column_formats, 2, true, "column_formats");
		break;
	case PGW_MSG_COPY_OUT_RESPONSE:
		check_format(&s, b->copy_out_response.format, "copy");
		check_fixed(&s, &b->copy_out_response.column_formats, 2, true, "column_formats");
		break;
	case PGW_MSG_COPY_BOTH_RESPONSE:
		check_format(&s, b->copy_both_response.format, "copy");
		check_fixed(&s, &b->copy_both_response.column_formats, 2, true, "column_formats");
		break;
	case PGW_MSG_DATA_ROW:
		check_values(&s, &b->data_row.columns, "columns");
		break;
	case PGW_MSG_ERROR_RESPONSE:
		check_fields(&s, &b->error_response.fields);
		break;
	case PGW_MSG_NOTICE_RESPONSE:
		check_fields(&s, &b->notice_response.fields);
		break;
	case PGW_MSG_FUNCTION_CALL_RESPONSE:
		check_value(&s, b->function_call_response.result, "result");
		break;
	case PGW_MSG_NEGOTIATE_PROTOCOL_VERSION:
		check_strs(&s, &b->negotiate_protocol_version.options, false, "options");
		break;
	case PGW_MSG_NOTIFICATION_RESPONSE:
		check_str(&s, b->notification_response.channel, "channel");
		check_str(&s, b->notification_response.payload, "payload");
		break;
	case PGW_MSG_PARAMETER_DESCRIPTION:
		check_fixed(&s, &b->parameter_description.param_types, 4, false, "param_types");
		break;
	case PGW_MSG_PARAMETER_STATUS:
		check_str(&s, b->parameter_status.name, "name");
		check_str(&s, b->parameter_status.value, "value");
		break;
	case PGW_MSG_READY_FOR_QUERY: {
		uint8_t st = b->ready_for_query.status;
		FZ_CHECK(st == 'I' || st == 'T' || st == 'E', "ReadyForQuery status %d", st);
		break;
	}
	case PGW_MSG_ROW_DESCRIPTION:
		check_row_description(&s, &b->row_description.fields);
		break;
	}
}

/* ------------------------------------------------------------ messages */

void fz_check_msg(const pgw_msg *m)
{
	FZ_CHECK(m->id > PGW_MSG_NONE && m->id < PGW_MSG_COUNT, "message id %d", (int)m->id);
	if (m->id == PGW_MSG_DIRECT_TLS) {
		FZ_CHECK(m->raw_len == 0, "DirectTLS with %u bytes", m->raw_len);
		return;
	}
	FZ_CHECK(m->raw != NULL && m->raw_len > 0, "%s: no raw bytes", pgw_msg_name(m->id));
	if (m->id == PGW_MSG_SSL_ANSWER) {
		FZ_CHECK(m->raw_len == 1 && m->type == m->raw[0] &&
				 m->body.ssl_answer.answer == m->raw[0],
			 "SSL answer: %u bytes, type %d, answer %d", m->raw_len, m->type,
			 m->body.ssl_answer.answer);
		return;
	}
	FZ_CHECK(m->type == 0 || m->type == m->raw[0], "%s: type %d but raw starts with %d",
		 pgw_msg_name(m->id), m->type, m->raw[0]);
	fz_check_body(m->id, &m->body, m->raw, m->raw + m->raw_len);

	pgw_wbuf w = PGW_WBUF_INIT;
	bool ok = pgw_encode(&w, m->id, &m->body);
	FZ_CHECK(ok, "%s: pgw_encode failed", pgw_msg_name(m->id));
	FZ_CHECK(w.len == m->raw_len && memcmp(w.data, m->raw, w.len) == 0,
		 "%s: re-encoding gives %zu bytes that differ from the %u decoded",
		 pgw_msg_name(m->id), w.len, m->raw_len);
	pgw_wbuf_release(&w);
}

void fz_check_error(const pgw_error *err)
{
	FZ_CHECK(err->severity == PGW_SEV_ERROR || err->severity == PGW_SEV_FATAL ||
			 err->severity == PGW_SEV_COMMERROR,
		 "severity %d", (int)err->severity);
	FZ_CHECK(memchr(err->sqlstate, 0, sizeof err->sqlstate) == err->sqlstate + 5,
		 "SQLSTATE is not 5 characters");
	FZ_CHECK(memchr(err->message, 0, sizeof err->message) != NULL, "message not terminated");
	FZ_CHECK(err->message[0] != 0, "empty error message");
}

void fz_check_redecode(const pgw_decoder *before, const pgw_msg *m)
{
	if (m->id == PGW_MSG_DIRECT_TLS)
		return;
	uint8_t *copy = malloc(m->raw_len);
	FZ_CHECK(copy != NULL, "out of memory");
	memcpy(copy, m->raw, m->raw_len);
	pgw_decoder d = *before;
	pgw_msg m2;
	pgw_error err;
	size_t used = 0;
	pgw_status st = pgw_decode(&d, copy, m->raw_len, &m2, &used, &err);
	FZ_CHECK(st == PGW_OK, "%s: %u bytes alone give status %d (%s)", pgw_msg_name(m->id),
		 m->raw_len, st, st == PGW_ERR ? err.message : "");
	FZ_CHECK(m2.id == m->id && used == m->raw_len && m2.raw == copy &&
			 m2.raw_len == m->raw_len && m2.type == m->type,
		 "%s: decoding alone gives %s, %zu bytes", pgw_msg_name(m->id), pgw_msg_name(m2.id),
		 used);
	FZ_CHECK(d.phase == before->phase || m->id != PGW_MSG_SSL_ANSWER,
		 "phase moved on an SSL answer");
	fz_check_msg(&m2);
	free(copy);
}

void fz_check_redecode_error(const pgw_decoder *before, const uint8_t *bytes, size_t len,
			     const pgw_error *err)
{
	uint8_t *copy = malloc(len);
	FZ_CHECK(copy != NULL, "out of memory");
	memcpy(copy, bytes, len);
	pgw_decoder d = *before;
	pgw_msg m2;
	pgw_error err2;
	size_t used = 0;
	memset(&err2, 0, sizeof err2);
	pgw_status st = pgw_decode(&d, copy, len, &m2, &used, &err2);
	FZ_CHECK(st == PGW_ERR && used == len && err2.severity == err->severity &&
			 err2.lost_sync == err->lost_sync &&
			 strcmp(err2.sqlstate, err->sqlstate) == 0 &&
			 strcmp(err2.message, err->message) == 0,
		 "a faulty message (%zu bytes, \"%s\") alone gives status %d, %zu consumed, \"%s\"",
		 len, err->message, (int)st, used, st == PGW_ERR ? err2.message : "");
	free(copy);
}

void fz_end_input(void)
{
	bufpool_stats st = bufpool_thread_stats();
	FZ_CHECK(st.in_use == 0, "%llu pool blocks still handed out",
		 (unsigned long long)st.in_use);
	bufpool_thread_trim();
}

/* ------------------------------------------------------------ streams */

typedef struct piecer {
	unsigned mode;
	uint32_t state;
} piecer;

static size_t next_piece(piecer *p, size_t left)
{
	size_t n;
	if (p->mode == 0)
		return left;
	if (p->mode == 1) {
		n = 1;
	} else {
		/* xorshift32 */
		uint32_t x = p->state;
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p->state = x;
		n = 1 + x % (1u << (2 * p->mode - 1));
	}
	return n < left ? n : left;
}

typedef struct stream {
	pgw_direction dir;
	unsigned auth; /* frontend: what the server asks for after StartupMessage */
	pgw_decoder dec;
	pgw_rbuf buf;
	size_t messages, errors;
	const char *stop; /* why decoding stopped early, for PGW_FUZZ_TRACE */
	pgw_error last_err;
} stream;

/* PGW_FUZZ_TRACE=1: one line per input saying how far decoding got (to
 * check what seeds reach; e.g. with the <target>_replay binaries). */
static bool tracing(void)
{
	static int on = -1;
	if (on < 0) {
		const char *e = getenv("PGW_FUZZ_TRACE");
		on = e && *e && *e != '0';
	}
	return on;
}

/* Move the decoder the way the other side would after message m; false
 * when the connection would end (or turn into TLS) here. */
static bool steer(stream *s, const pgw_msg *m)
{
	static const pgw_phase after_startup[4] = {PGW_PH_READY, PGW_PH_AUTH_PASSWORD,
						   PGW_PH_AUTH_SASL_INITIAL, PGW_PH_AUTH_GSS};
	pgw_decoder *d = &s->dec;
	if (s->dir == PGW_BACKEND) {
		if (m->id == PGW_MSG_SSL_ANSWER) {
			if (m->body.ssl_answer.answer != 'N')
				return false; /* a TLS handshake follows */
			d->phase = PGW_PH_BACKEND;
		}
		return true;
	}
	switch (m->id) {
	case PGW_MSG_DIRECT_TLS:
	case PGW_MSG_CANCEL_REQUEST:
	case PGW_MSG_TERMINATE:
		return false;
	case PGW_MSG_STARTUP_MESSAGE:
		d->phase = after_startup[s->auth];
		break;
	case PGW_MSG_SASL_INITIAL_RESPONSE:
		d->phase = PGW_PH_AUTH_SASL;
		break;
	case PGW_MSG_PASSWORD_MESSAGE:
	case PGW_MSG_SASL_RESPONSE:
	case PGW_MSG_GSS_RESPONSE:
	case PGW_MSG_COPY_DONE:
	case PGW_MSG_COPY_FAIL:
		d->phase = PGW_PH_READY;
		break;
	default:
		break;
	}
	return true;
}

/*
 * While a message is decoded and checked, the parts of the read buffer's
 * block outside the buffered bytes are poisoned, so ASan reports a read
 * past them even though the pool block goes on. Unpoisoned again before
 * any pgw_rbuf call (the pool keeps its free list inside the blocks).
 */
static void fence(const pgw_rbuf *b)
{
	if (b->data) {
		FZ_POISON(b->data, b->head);
		FZ_POISON(b->data + b->tail, b->cap - b->tail);
	}
}

static void unfence(const pgw_rbuf *b)
{
	if (b->data)
		FZ_UNPOISON(b->data, b->cap);
}

enum step { STEP_MORE, STEP_NEXT, STEP_STOP };

/* Decode and check the next message; *used is what to consume. */
static enum step step(stream *s, size_t *used_out)
{
	size_t have = pgw_rbuf_len(&s->buf);
	const uint8_t *data = pgw_rbuf_data(&s->buf);
	pgw_decoder before = s->dec;
	pgw_msg msg;
	pgw_error err;
	size_t used = (size_t)-1;
	memset(&err, 0, sizeof err);
	*used_out = 0;
	pgw_status st = pgw_decode(&s->dec, data, have, &msg, &used, &err);
	switch (st) {
	case PGW_NEED_MORE:
		FZ_CHECK(used == 0, "NEED_MORE with %zu consumed", used);
		FZ_CHECK(s->dec.need > have, "NEED_MORE: need %u with %zu buffered", s->dec.need,
			 have);
		return STEP_MORE;
	case PGW_ERR:
		fz_check_error(&err);
		s->errors++;
		s->last_err = err;
		if (err.lost_sync || err.severity != PGW_SEV_ERROR) {
			s->stop = "error";
			return STEP_STOP;
		}
		/* The connection goes on past the faulty message. */
		FZ_CHECK(used > 0 && used <= have,
			 "error without lost_sync consumed %zu of %zu bytes (%s)", used, have,
			 err.message);
		fz_check_redecode_error(&before, data, used, &err);
		*used_out = used;
		return STEP_NEXT;
	case PGW_OK:
		break;
	default:
		FZ_CHECK(0, "status %d", (int)st);
	}
	s->messages++;
	fz_check_msg(&msg);
	if (msg.id == PGW_MSG_DIRECT_TLS) {
		FZ_CHECK(used == 0 && before.phase == PGW_PH_STARTUP && msg.raw == data,
			 "DirectTLS: consumed %zu, phase %d", used, (int)before.phase);
		s->stop = "direct TLS";
		return STEP_STOP;
	}
	FZ_CHECK(msg.raw == data && used == msg.raw_len && used <= have,
		 "%s: raw %p+%u consumed %zu, buffered %p+%zu", pgw_msg_name(msg.id),
		 (const void *)msg.raw, msg.raw_len, used, (const void *)data, have);
	fz_check_redecode(&before, &msg);
	*used_out = used;
	if (!steer(s, &msg)) {
		s->stop = pgw_msg_name(msg.id);
		return STEP_STOP;
	}
	return STEP_NEXT;
}

/* Decode everything whole in the buffer; false when the stream ends. */
static bool drain(stream *s)
{
	while (pgw_rbuf_len(&s->buf) > 0) {
		size_t used;
		fence(&s->buf);
		enum step r = step(s, &used);
		unfence(&s->buf);
		if (used)
			pgw_rbuf_consume(&s->buf, used);
		if (r != STEP_NEXT)
			return r == STEP_MORE;
	}
	return true;
}

void fz_run_stream(pgw_direction dir, const uint8_t *data, size_t size)
{
	if (size < 1)
		return;
	unsigned ctl = data[0];
	unsigned ph = ctl % FZ_PHASES, extra = ctl / FZ_PHASES;
	stream s;
	memset(&s, 0, sizeof s);
	s.dir = dir;
	pgw_decoder_init(&s.dec, dir, 0);
	piecer pc;
	if (dir == PGW_FRONTEND) {
		s.dec.phase = (pgw_phase)(ph % FZ_FRONTEND_PHASES);
		s.auth = extra % 4;
		pc.mode = extra / 4;
	} else {
		s.dec.phase = ph >= PGW_PH_SSL_ANSWER ? (pgw_phase)ph
						      : (pgw_phase)(PGW_PH_SSL_ANSWER + ph % 3);
		pc.mode = extra % 7;
	}
	pgw_phase start = s.dec.phase;
	data++;
	size--;
	pc.state = 0x9e3779b9u ^ (uint32_t)size ^ (ctl << 24);
	if (pc.state == 0)
		pc.state = 1;

	size_t off = 0;
	bool go_on = true;
	while (go_on && off < size) {
		size_t n = next_piece(&pc, size - off);
		size_t have = pgw_rbuf_len(&s.buf);
		/* A real reader sizes the buffer for the announced message; cap
		 * the hint at what this input can still deliver, so a huge
		 * announced length costs no huge allocation per run. */
		size_t hint = s.dec.need;
		if (hint > have + (size - off))
			hint = have + (size - off);
		size_t avail = 0;
		uint8_t *dst = pgw_rbuf_space(&s.buf, n, hint, &avail);
		FZ_CHECK(dst != NULL, "pgw_rbuf_space(%zu, %zu) failed", n, hint);
		/* Promised: min_free bytes of room, the buffered bytes kept, and a
		 * block that holds the whole announced message. */
		FZ_CHECK(avail >= n && dst == s.buf.data + s.buf.tail &&
				 s.buf.tail + avail == s.buf.cap,
			 "pgw_rbuf_space: %zu bytes of room for %zu", avail, n);
		FZ_CHECK(s.buf.cap >= hint, "pgw_rbuf_space: block of %zu for a %zu-byte message",
			 s.buf.cap, hint);
		FZ_CHECK(pgw_rbuf_len(&s.buf) == have &&
				 memcmp(pgw_rbuf_data(&s.buf), data + off - have, have) == 0,
			 "pgw_rbuf_space lost buffered bytes");
		memcpy(dst, data + off, n);
		pgw_rbuf_produced(&s.buf, n);
		off += n;
		go_on = drain(&s);
	}
	if (tracing())
		fprintf(stderr,
			"fuzz stream: %s, phase %d, auth %u, pieces %u: %zu messages, "
			"%zu errors%s%s%s; %zu of %zu bytes left (%zu unread)%s%s\n",
			dir == PGW_FRONTEND ? "frontend" : "backend", (int)start, s.auth, pc.mode,
			s.messages,
			s.errors, s.errors ? " (last: " : "", s.errors ? s.last_err.message : "",
			s.errors ? ")" : "", pgw_rbuf_len(&s.buf), size, size - off,
			s.stop ? ", stopped at " : "", s.stop ? s.stop : "");
	pgw_rbuf_release(&s.buf);
	fz_end_input();
}
