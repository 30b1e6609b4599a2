/*
 * Hand-written cases: framing limits, phases, startup packets, decoded
 * field values and the exact errors PostgreSQL raises, plus building
 * messages with the writer primitives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pgw/codec.h"
#include "pgw/wbuf.h"

typedef struct result {
	pgw_status st;
	pgw_msg msg;
	pgw_error err;
	size_t used;
	uint32_t need;
} result;

static result decode_in(pgw_direction dir, pgw_phase phase, uint32_t cap, const void *bytes,
			size_t len)
{
	pgw_decoder d;
	result r;
	memset(&r, 0, sizeof r);
	pgw_decoder_init(&d, dir, cap);
	d.phase = phase;
	r.st = pgw_decode(&d, bytes, len, &r.msg, &r.used, &r.err);
	r.need = d.need;
	return r;
}

static result fe(pgw_phase phase, const pgw_wbuf *w)
{
	return decode_in(PGW_FRONTEND, phase, 0, w->data, w->len);
}

static void expect_error(const result *r, pgw_severity sev, const char *state, const char *text,
			 bool lost_sync)
{
	if (r->st != PGW_ERR)
		fail_msg("expected \"%s\", got status %d", text, r->st);
	if (strcmp(r->err.sqlstate, state) != 0 || strcmp(r->err.message, text) != 0 ||
	    r->err.severity != sev || r->err.lost_sync != lost_sync)
		fail_msg("expected %d %s \"%s\" lost_sync=%d, got %d %s \"%s\" lost_sync=%d", sev,
			 state, text, lost_sync, r->err.severity, r->err.sqlstate, r->err.message,
			 r->err.lost_sync);
}

/* A message with a type byte and an arbitrary body. */
static void raw_msg(pgw_wbuf *w, uint8_t type, const void *body, size_t n)
{
	size_t at = pgw_w_begin(w, type);
	pgw_w_bytes(w, body, n);
	assert_true(pgw_w_end(w, at));
}

static void header(pgw_wbuf *w, uint8_t type, uint32_t len)
{
	pgw_w_u8(w, type);
	pgw_w_i32(w, (int32_t)len);
}

static void test_unknown_types(void **state)
{
	(void)state;
	pgw_wbuf w = PGW_WBUF_INIT;
	raw_msg(&w, 'x', "", 0);
	result r = fe(PGW_PH_READY, &w);
	expect_error(&r, PGW_SEV_FATAL, "08P01", "invalid frontend message type 120", true);

	/* A password message outside authentication is garbage too. */
	pgw_wbuf_release(&w);
	raw_msg(&w, 'p', "secret", 7);
	r = fe(PGW_PH_READY, &w);
	expect_error(&r, PGW_SEV_FATAL, "08P01", "invalid frontend message type 112", true);

	/* ... and only a password message is welcome during it. */
	pgw_wbuf_release(&w);
	raw_msg(&w, 'Q', "SELECT 1", 9);
	r = fe(PGW_PH_AUTH_SASL, &w);
	expect_error(&r, PGW_SEV_FATAL, "08P01", "expected SASL response, got message type 81", true);
	r = fe(PGW_PH_AUTH_PASSWORD, &w);
	expect_error(&r, PGW_SEV_FATAL, "08P01", "expected password response, got message type 81",
		     true);

	/* During COPY FROM STDIN a Query is an ERROR that ends the session. */
	r = fe(PGW_PH_COPY_IN, &w);
	expect_error(&r, PGW_SEV_ERROR, "08P01",
		     "unexpected message type 0x51 during COPY from stdin", true);
	pgw_wbuf_release(&w);

	/* ... while Flush and Sync are let through. */
	assert_true(pgw_encode_flush(&w));
	r = fe(PGW_PH_COPY_IN, &w);
	assert_int_equal(r.st, PGW_OK);
	assert_int_equal(r.msg.id, PGW_MSG_FLUSH);
	pgw_wbuf_release(&w);

	/* The type byte alone is enough to refuse. */
	uint8_t one = 'z';
	r = decode_in(PGW_FRONTEND, PGW_PH_READY, 0, &one, 1);
	expect_error(&r, PGW_SEV_FATAL, "08P01", "invalid frontend message type 122", true);
}

static void test_lengths(void **state)
{
	(void)state;
	pgw_wbuf w = PGW_WBUF_INIT;

	header(&w, 'S', 3);
	result r = fe(PGW_PH_READY, &w);
	expect_error(&r, PGW_SEV_COMMERROR, "08P01", "invalid message length", true);
	pgw_wbuf_release(&w);

	/* Small messages stop at 10000 bytes, refused from the header alone. */
	header(&w, 'S', 10001);
	r = fe(PGW_PH_READY, &w);
	expect_error(&r, PGW_SEV_COMMERROR, "08P01", "invalid message length", true);
	pgw_wbuf_release(&w);
	header(&w, 'E', 10000);
	r = fe(PGW_PH_READY, &w);
	assert_int_equal(r.st, PGW_NEED_MORE);
	assert_int_equal(r.need, 10001);
	pgw_wbuf_release(&w);

	/* Large ones at the configured cap. */
	r = decode_in(PGW_FRONTEND, PGW_PH_READY, 1 << 20, "Q\x00\x10\x00\x01", 5);
	expect_error(&r, PGW_SEV_COMMERROR, "08P01", "invalid message length", true);
	r = decode_in(PGW_FRONTEND, PGW_PH_READY, 1 << 20, "Q\x00\x10\x00\x00", 5);
	assert_int_equal(r.st, PGW_NEED_MORE);
	assert_int_equal(r.need, (1 << 20) + 1);

	/* Authentication messages at 65535. */
	r = decode_in(PGW_FRONTEND, PGW_PH_AUTH_SASL, 0, "p\x00\x01\x00\x00", 5);
	expect_error(&r, PGW_SEV_COMMERROR, "08P01", "invalid message length", true);

	/* Before the header is whole, 5 bytes are needed. */
	r = decode_in(PGW_FRONTEND, PGW_PH_READY, 0, "Q\x00", 2);
	assert_int_equal(r.st, PGW_NEED_MORE);
	assert_int_equal(r.need, 5);
	r = decode_in(PGW_FRONTEND, PGW_PH_READY, 0, "", 0);
	assert_int_equal(r.st, PGW_NEED_MORE);
}

static void startup(pgw_wbuf *w, uint32_t protocol, const char *const *kv, size_t n)
{
	size_t at = pgw_w_begin(w, 0);
	pgw_w_i32(w, (int32_t)protocol);
	for (size_t i = 0; i < n; i++)
		pgw_w_cstr(w, kv[i], strlen(kv[i]));
	pgw_w_u8(w, 0);
	assert_true(pgw_w_end(w, at));
}

static void test_startup_packets(void **state)
{
	(void)state;
	pgw_wbuf w = PGW_WBUF_INIT;
	const char *kv[] = {"user", "alice", "database", "shop", "options", "-c geqo=off",
			    "_pq_.extension", "x"};
	startup(&w, PGW_PROTOCOL_3_2, kv, 8);
	result r = fe(PGW_PH_STARTUP, &w);
	assert_int_equal(r.st, PGW_OK);
	assert_int_equal(r.msg.id, PGW_MSG_STARTUP_MESSAGE);
	assert_int_equal(r.used, w.len);
	assert_int_equal(r.msg.body.startup_message.protocol, (int32_t)PGW_PROTOCOL_3_2);
	assert_int_equal(r.msg.body.startup_message.params.count, 4);
	pgw_iter it = pgw_array_iter(&r.msg.body.startup_message.params);
	pgw_str k, v;
	for (size_t i = 0; i < 4; i++) {
		assert_true(pgw_next_pair(&it, &k, &v));
		assert_int_equal(k.len, strlen(kv[2 * i]));
		assert_memory_equal(k.ptr, kv[2 * i], k.len);
		assert_memory_equal(v.ptr, kv[2 * i + 1], v.len + 1);
	}
	assert_false(pgw_next_pair(&it, &k, &v));
	pgw_wbuf_release(&w);

	/* A newer minor version is the gateway's to negotiate, not an error. */
	startup(&w, PGW_PROTOCOL(3, 9), kv, 2);
	r = fe(PGW_PH_STARTUP, &w);
	assert_int_equal(r.st, PGW_OK);
	pgw_wbuf_release(&w);

	/* Another major version is refused before the layout is looked at. */
	startup(&w, PGW_PROTOCOL(2, 0), kv, 2);
	r = fe(PGW_PH_STARTUP, &w);
	expect_error(&r, PGW_SEV_FATAL, "0A000",
		     "unsupported frontend protocol 2.0: server supports 3.0 to 3.2", true);
	pgw_wbuf_release(&w);

	/* A name without a value. */
	size_t at = pgw_w_begin(&w, 0);
	pgw_w_i32(&w, (int32_t)PGW_PROTOCOL_3_0);
	pgw_w_cstr(&w, "user", 4);
	pgw_w_u8(&w, 0);
	pgw_w_end(&w, at);
	r = fe(PGW_PH_STARTUP, &w);
	expect_error(&r, PGW_SEV_FATAL, "08P01",
		     "invalid startup packet layout: expected terminator as last byte", true);
	pgw_wbuf_release(&w);

	/* Lengths: 8..10004 with the length word; outside, a silent close. */
	r = decode_in(PGW_FRONTEND, PGW_PH_STARTUP, 0, "\x00\x00\x00\x07\x00\x03\x00", 7);
	expect_error(&r, PGW_SEV_COMMERROR, "08P01", "invalid length of startup packet", true);
	r = decode_in(PGW_FRONTEND, PGW_PH_STARTUP, 0, "\x00\x00\x27\x15", 4);
	expect_error(&r, PGW_SEV_COMMERROR, "08P01", "invalid length of startup packet", true);
	r = decode_in(PGW_FRONTEND, PGW_PH_STARTUP, 0, "\x00\x00\x27\x14", 4);
	assert_int_equal(r.st, PGW_NEED_MORE);
	assert_int_equal(r.need, 10004);

	/* SSLRequest, GSSENCRequest. */
	r = decode_in(PGW_FRONTEND, PGW_PH_STARTUP, 0, "\x00\x00\x00\x08\x04\xd2\x16\x2f", 8);
	assert_int_equal(r.st, PGW_OK);
	assert_int_equal(r.msg.id, PGW_MSG_SSL_REQUEST);
	r = decode_in(PGW_FRONTEND, PGW_PH_STARTUP, 0, "\x00\x00\x00\x08\x04\xd2\x16\x30", 8);
	assert_int_equal(r.st, PGW_OK);
	assert_int_equal(r.msg.id, PGW_MSG_GSSENC_REQUEST);

	/* Direct TLS: a ClientHello where the length should be. */
	r = decode_in(PGW_FRONTEND, PGW_PH_STARTUP, 0, "\x16\x03\x01\x02\x00", 5);
	assert_int_equal(r.st, PGW_OK);
	assert_int_equal(r.msg.id, PGW_MSG_DIRECT_TLS);
	assert_int_equal(r.used, 0);
}

static void cancel(pgw_wbuf *w, size_t keylen)
{
	uint8_t key[300];
	for (size_t i = 0; i < keylen; i++)
		key[i] = (uint8_t)(i * 7);
	size_t at = pgw_w_begin(w, 0);
	pgw_w_i32(w, (int32_t)PGW_CANCEL_REQUEST_CODE);
	pgw_w_i32(w, 4242);
	pgw_w_bytes(w, key, keylen);
	pgw_w_end(w, at);
}

static void test_cancel_request(void **state)
{
	(void)state;
	const size_t good[] = {4, 32, 256};
	for (size_t i = 0; i < 3; i++) {
		pgw_wbuf w = PGW_WBUF_INIT;
		cancel(&w, good[i]);
		result r = fe(PGW_PH_STARTUP, &w);
		assert_int_equal(r.st, PGW_OK);
		assert_int_equal(r.msg.id, PGW_MSG_CANCEL_REQUEST);
		assert_int_equal(r.msg.body.cancel_request.pid, 4242);
		assert_int_equal(r.msg.body.cancel_request.key.len, good[i]);
		assert_int_equal(r.msg.body.cancel_request.key.ptr[1], 7);
		pgw_wbuf_release(&w);
	}
	const size_t bad[] = {0, 3, 257};
	for (size_t i = 0; i < 3; i++) {
		pgw_wbuf w = PGW_WBUF_INIT;
		cancel(&w, bad[i]);
		result r = fe(PGW_PH_STARTUP, &w);
		expect_error(&r, PGW_SEV_COMMERROR, "08P01", "invalid length of cancel request packet",
			     true);
		pgw_wbuf_release(&w);
	}
}

static void test_bind(void **state)
{
	(void)state;
	pgw_wbuf w = PGW_WBUF_INIT;
	size_t at = pgw_w_begin(&w, 'B');
	pgw_w_cstr(&w, "", 0);
	pgw_w_cstr(&w, "stmt1", 5);
	pgw_w_i16(&w, 1);
	pgw_w_i16(&w, 1);
	pgw_w_i16(&w, 3);
	pgw_w_value(&w, NULL, -1);
	pgw_w_value(&w, "", 0);
	pgw_w_value(&w, "\x00\x00\x00\x2a", 4);
	pgw_w_i16(&w, 0);
	pgw_w_end(&w, at);
	result r = fe(PGW_PH_READY, &w);
	assert_int_equal(r.st, PGW_OK);
	const pgw_bind *b = &r.msg.body.bind;
	assert_int_equal(b->portal.len, 0);
	assert_int_equal(b->statement.len, 5);
	assert_memory_equal(b->statement.ptr, "stmt1", 6);
	assert_int_equal(b->param_formats.count, 1);
	assert_int_equal(pgw_array_i16(&b->param_formats, 0), 1);
	assert_int_equal(b->params.count, 3);
	assert_int_equal(b->result_formats.count, 0);
	pgw_iter it = pgw_array_iter(&b->params);
	pgw_value v;
	assert_true(pgw_next_value(&it, &v));
	assert_int_equal(v.len, -1);
	assert_true(pgw_next_value(&it, &v));
	assert_int_equal(v.len, 0);
	assert_true(pgw_next_value(&it, &v));
	assert_int_equal(v.len, 4);
	assert_int_equal(v.ptr[3], 42);
	assert_false(pgw_next_value(&it, &v));
	/* Views point into the input. */
	assert_true(v.ptr > w.data && v.ptr < w.data + w.len);
	pgw_wbuf_release(&w);

	/* An unknown result format code. */
	at = pgw_w_begin(&w, 'B');
	pgw_w_cstr(&w, "", 0);
	pgw_w_cstr(&w, "", 0);
	pgw_w_i16(&w, 0);
	pgw_w_i16(&w, 0);
	pgw_w_i16(&w, 1);
	pgw_w_i16(&w, 7);
	pgw_w_end(&w, at);
	r = fe(PGW_PH_READY, &w);
	expect_error(&r, PGW_SEV_ERROR, "22023", "unsupported format code: 7", false);
	pgw_wbuf_release(&w);

	/* A value longer than the message. */
	at = pgw_w_begin(&w, 'B');
	pgw_w_cstr(&w, "", 0);
	pgw_w_cstr(&w, "", 0);
	pgw_w_i16(&w, 0);
	pgw_w_i16(&w, 1);
	pgw_w_i32(&w, 1000);
	pgw_w_bytes(&w, "abc", 3);
	pgw_w_end(&w, at);
	r = fe(PGW_PH_READY, &w);
	expect_error(&r, PGW_SEV_ERROR, "08P01", "insufficient data left in message", false);
	pgw_wbuf_release(&w);
}

static void test_describe_close(void **state)
{
	(void)state;
	pgw_wbuf w = PGW_WBUF_INIT;
	pgw_describe d = {'S', {(const uint8_t *)"s1", 2}};
	assert_true(pgw_encode_describe(&w, &d));
	result r = fe(PGW_PH_READY, &w);
	assert_int_equal(r.st, PGW_OK);
	assert_int_equal(r.msg.body.describe.target, 'S');
	pgw_wbuf_release(&w);

	d.target = 'X';
	pgw_encode_describe(&w, &d);
	r = fe(PGW_PH_READY, &w);
	expect_error(&r, PGW_SEV_ERROR, "08P01", "invalid DESCRIBE message subtype 88", false);
	pgw_wbuf_release(&w);

	/* Leftover bytes are found before the subtype is judged, as in
	 * PostgreSQL (pq_getmsgend comes first). */
	raw_msg(&w, 'D', "Xs1\0junk", 8);
	r = fe(PGW_PH_READY, &w);
	expect_error(&r, PGW_SEV_ERROR, "08P01", "invalid message format", false);
	pgw_wbuf_release(&w);

	raw_msg(&w, 'C', "Qs1", 4);
	r = fe(PGW_PH_READY, &w);
	expect_error(&r, PGW_SEV_ERROR, "08P01", "invalid CLOSE message subtype 81", false);
	pgw_wbuf_release(&w);

	raw_msg(&w, 'D', "", 0);
	r = fe(PGW_PH_READY, &w);
	expect_error(&r, PGW_SEV_ERROR, "08P01", "no data left in message", false);
	pgw_wbuf_release(&w);

	raw_msg(&w, 'Q', "SELECT 1", 8);
	r = fe(PGW_PH_READY, &w);
	expect_error(&r, PGW_SEV_ERROR, "08P01", "invalid string in message", false);
	pgw_wbuf_release(&w);
}

/* A bad body is an ERROR: the stream stays in step and goes on. */
static void test_error_keeps_sync(void **state)
{
	(void)state;
	pgw_wbuf w = PGW_WBUF_INIT;
	raw_msg(&w, 'E', "portal", 6); /* no terminator, no row count */
	size_t first = w.len;
	pgw_encode_sync(&w);
	pgw_decoder d;
	pgw_decoder_init(&d, PGW_FRONTEND, 0);
	d.phase = PGW_PH_READY;
	pgw_msg m;
	pgw_error err;
	size_t used;
	assert_int_equal(pgw_decode(&d, w.data, w.len, &m, &used, &err), PGW_ERR);
	assert_false(err.lost_sync);
	assert_int_equal(used, first);
	assert_int_equal(pgw_decode(&d, w.data + used, w.len - used, &m, &used, &err), PGW_OK);
	assert_int_equal(m.id, PGW_MSG_SYNC);
	pgw_wbuf_release(&w);
}

static void test_backend_messages(void **state)
{
	(void)state;
	pgw_wbuf w = PGW_WBUF_INIT;

	/* An authentication request of a kind nobody knows. */
	raw_msg(&w, 'R', "\x00\x00\x00\x63", 4);
	result r = decode_in(PGW_BACKEND, PGW_PH_BACKEND, 0, w.data, w.len);
	expect_error(&r, PGW_SEV_ERROR, "08P01", "unsupported authentication request 99", false);
	pgw_wbuf_release(&w);
	raw_msg(&w, 'R', "\x00\x00", 2);
	r = decode_in(PGW_BACKEND, PGW_PH_BACKEND, 0, w.data, w.len);
	expect_error(&r, PGW_SEV_ERROR, "08P01", "insufficient data left in message", false);
	pgw_wbuf_release(&w);

	/* SASL mechanisms. */
	pgw_authentication_sasl sasl = {
		{(const uint8_t *)"SCRAM-SHA-256\0SCRAM-SHA-256-PLUS", 33, 2}};
	assert_true(pgw_encode_authentication_sasl(&w, &sasl));
	r = decode_in(PGW_BACKEND, PGW_PH_BACKEND, 0, w.data, w.len);
	assert_int_equal(r.st, PGW_OK);
	assert_int_equal(r.msg.id, PGW_MSG_AUTHENTICATION_SASL);
	assert_int_equal(r.msg.body.authentication_sasl.mechanisms.count, 2);
	pgw_wbuf_release(&w);

	/* BackendKeyData with a 3.2-sized key, and one too short. */
	uint8_t key[32] = {1, 2, 3};
	pgw_backend_key_data k = {77, {key, 32}};
	assert_true(pgw_encode_backend_key_data(&w, &k));
	r = decode_in(PGW_BACKEND, PGW_PH_BACKEND, 0, w.data, w.len);
	assert_int_equal(r.st, PGW_OK);
	assert_int_equal(r.msg.body.backend_key_data.key.len, 32);
	pgw_wbuf_release(&w);
	k.key.len = 2;
	pgw_encode_backend_key_data(&w, &k);
	r = decode_in(PGW_BACKEND, PGW_PH_BACKEND, 0, w.data, w.len);
	assert_int_equal(r.st, PGW_ERR);
	pgw_wbuf_release(&w);

	/* ReadyForQuery with a status that does not exist. */
	raw_msg(&w, 'Z', "X", 1);
	r = decode_in(PGW_BACKEND, PGW_PH_BACKEND, 0, w.data, w.len);
	expect_error(&r, PGW_SEV_ERROR, "08P01", "invalid transaction status 88", false);
	pgw_wbuf_release(&w);

	/* SSL answers. */
	r = decode_in(PGW_BACKEND, PGW_PH_SSL_ANSWER, 0, "S", 1);
	assert_int_equal(r.st, PGW_OK);
	assert_int_equal(r.msg.body.ssl_answer.answer, 'S');
	r = decode_in(PGW_BACKEND, PGW_PH_GSSENC_ANSWER, 0, "G", 1);
	assert_int_equal(r.st, PGW_OK);
	r = decode_in(PGW_BACKEND, PGW_PH_SSL_ANSWER, 0, "G", 1);
	assert_int_equal(r.st, PGW_ERR);
	assert_true(r.err.lost_sync);

	/* A type byte no server sends. */
	raw_msg(&w, '!', "", 0);
	r = decode_in(PGW_BACKEND, PGW_PH_BACKEND, 0, w.data, w.len);
	assert_int_equal(r.st, PGW_ERR);
	assert_true(r.err.lost_sync);
	pgw_wbuf_release(&w);
}

/* Build a RowDescription and a DataRow from parts, then read them back. */
static void test_build_rows(void **state)
{
	(void)state;
	pgw_wbuf items = PGW_WBUF_INIT, w = PGW_WBUF_INIT;
	pgw_row_description_fields f1 = {{(const uint8_t *)"id", 2}, 16384, 1, 23, 4, -1, 0};
	pgw_row_description_fields f2 = {{(const uint8_t *)"name", 4}, 16384, 2, 25, -1, -1, 1};
	pgw_w_row_description_fields(&items, &f1);
	pgw_w_row_description_fields(&items, &f2);
	pgw_row_description rd = {{items.data, (uint32_t)items.len, 2}};
	assert_true(pgw_encode_row_description(&w, &rd));
	result r = decode_in(PGW_BACKEND, PGW_PH_BACKEND, 0, w.data, w.len);
	assert_int_equal(r.st, PGW_OK);
	pgw_iter it = pgw_array_iter(&r.msg.body.row_description.fields);
	pgw_row_description_fields got;
	assert_true(pgw_next_row_description_fields(&it, &got));
	assert_int_equal(got.type_oid, 23);
	assert_int_equal(got.type_modifier, -1);
	assert_true(pgw_next_row_description_fields(&it, &got));
	assert_memory_equal(got.name.ptr, "name", 5);
	assert_int_equal(got.format, 1);
	assert_false(pgw_next_row_description_fields(&it, &got));
	pgw_wbuf_release(&w);
	pgw_wbuf_release(&items);

	/* DataRow written directly with the primitives. */
	size_t at = pgw_w_begin(&w, 'D');
	pgw_w_i16(&w, 2);
	pgw_w_value(&w, "42", 2);
	pgw_w_value(&w, NULL, -1);
	assert_true(pgw_w_end(&w, at));
	r = decode_in(PGW_BACKEND, PGW_PH_BACKEND, 0, w.data, w.len);
	assert_int_equal(r.st, PGW_OK);
	assert_int_equal(r.msg.body.data_row.columns.count, 2);
	pgw_wbuf_release(&w);

	/* Error fields. */
	at = pgw_w_begin(&w, 'E');
	pgw_w_u8(&w, 'S');
	pgw_w_cstr(&w, "ERROR", 5);
	pgw_w_u8(&w, 'C');
	pgw_w_cstr(&w, "42P01", 5);
	pgw_w_u8(&w, 0);
	pgw_w_end(&w, at);
	r = decode_in(PGW_BACKEND, PGW_PH_BACKEND, 0, w.data, w.len);
	assert_int_equal(r.st, PGW_OK);
	it = pgw_array_iter(&r.msg.body.error_response.fields);
	uint8_t code;
	pgw_str text;
	assert_true(pgw_next_field(&it, &code, &text));
	assert_int_equal(code, 'S');
	assert_true(pgw_next_field(&it, &code, &text));
	assert_memory_equal(text.ptr, "42P01", 6);
	assert_false(pgw_next_field(&it, &code, &text));
	pgw_wbuf_release(&w);

	/* A field list with no terminator. */
	raw_msg(&w, 'E', "SERROR\0", 7);
	r = decode_in(PGW_BACKEND, PGW_PH_BACKEND, 0, w.data, w.len);
	expect_error(&r, PGW_SEV_ERROR, "08P01", "no data left in message", false);
	pgw_wbuf_release(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_types),  cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_startup_packets), cmocka_unit_test(test_cancel_request),
		cmocka_unit_test(test_bind),	       cmocka_unit_test(test_describe_close),
		cmocka_unit_test(test_error_keeps_sync), cmocka_unit_test(test_backend_messages),
		cmocka_unit_test(test_build_rows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
