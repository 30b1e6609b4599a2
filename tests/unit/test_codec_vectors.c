/*
 * The generated test vectors: every message decodes and re-encodes to the
 * same bytes; every truncation, extra byte and broken value fails with the
 * SQLSTATE and text PostgreSQL uses. The stream of all valid vectors also
 * decodes the same when split at any offset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pgw/rbuf.h"
#include "pgw/wbuf.h"
#include "pgw_vectors.h"

static void check_vector(const pgw_vector *v)
{
	pgw_decoder d;
	pgw_msg msg;
	pgw_error err;
	size_t used;

	pgw_decoder_init(&d, v->direction, 0);
	d.phase = v->phase;
	memset(&err, 0, sizeof err);
	pgw_status st = pgw_decode(&d, v->bytes, v->len, &msg, &used, &err);
	if (v->ok) {
		if (st != PGW_OK)
			fail_msg("%s: expected success, got %d: %s %s", v->name, st, err.sqlstate,
				 err.message);
		assert_int_equal(msg.id, v->id);
		assert_int_equal(used, v->len);
		assert_ptr_equal(msg.raw, v->bytes);
		assert_int_equal(msg.raw_len, v->len);

		pgw_wbuf w = PGW_WBUF_INIT;
		assert_true(pgw_encode(&w, msg.id, &msg.body));
		if (w.len != v->len || memcmp(w.data, v->bytes, v->len) != 0)
			fail_msg("%s: re-encoding differs (%zu bytes vs %u)", v->name, w.len, v->len);
		pgw_wbuf_release(&w);

		/* A byte short of the whole message is never enough. */
		st = pgw_decode(&d, v->bytes, v->len - 1, &msg, &used, &err);
		if (st != PGW_NEED_MORE)
			fail_msg("%s: %u of %u bytes gave %d", v->name, v->len - 1, v->len, st);
		if (d.need != v->len && !(v->len <= 5 && d.need <= 5))
			fail_msg("%s: need %u, message is %u", v->name, d.need, v->len);
		return;
	}
	if (st != PGW_ERR)
		fail_msg("%s: expected %s \"%s\", got status %d", v->name, v->sqlstate, v->message,
			 st);
	if (strcmp(err.sqlstate, v->sqlstate) != 0 || strcmp(err.message, v->message) != 0 ||
	    err.severity != v->severity)
		fail_msg("%s: expected %d %s \"%s\", got %d %s \"%s\"", v->name, v->severity,
			 v->sqlstate, v->message, err.severity, err.sqlstate, err.message);
}

static void test_every_vector(void **state)
{
	(void)state;
	size_t ok = 0, bad = 0;
	for (size_t i = 0; i < pgw_vector_count; i++) {
		check_vector(&pgw_vectors[i]);
		if (pgw_vectors[i].ok)
			ok++;
		else
			bad++;
	}
	print_message("%zu valid and %zu invalid vectors\n", ok, bad);
	assert_true(ok > 50);
	assert_true(bad > 500);
}

/* Every message of the grammar has a valid vector. */
static void test_every_message_covered(void **state)
{
	(void)state;
	for (int id = PGW_MSG_NONE + 1; id < PGW_MSG_DIRECT_TLS; id++) {
		bool seen = false;
		for (size_t i = 0; i < pgw_vector_count && !seen; i++)
			seen = pgw_vectors[i].ok && pgw_vectors[i].id == (pgw_msg_id)id;
		if (!seen)
			fail_msg("no valid vector for %s", pgw_msg_name((pgw_msg_id)id));
	}
}

typedef struct stream {
	uint8_t bytes[65536];
	size_t len;
	pgw_msg_id ids[1024];
	size_t n;
} stream;

/* The valid ready-phase vectors of one direction, back to back. */
static void build_stream(stream *s, pgw_direction dir, pgw_phase phase)
{
	s->len = s->n = 0;
	for (size_t i = 0; i < pgw_vector_count; i++) {
		const pgw_vector *v = &pgw_vectors[i];
		if (!v->ok || v->direction != dir || v->phase != phase)
			continue;
		assert_true(s->len + v->len <= sizeof s->bytes && s->n < 1024);
		memcpy(s->bytes + s->len, v->bytes, v->len);
		s->len += v->len;
		s->ids[s->n++] = v->id;
	}
}

/* Feed s in two pieces split at `cut` through a pooled read buffer. */
static void decode_split(const stream *s, pgw_direction dir, pgw_phase phase, size_t cut)
{
	pgw_decoder d;
	pgw_rbuf b = PGW_RBUF_INIT;
	size_t got = 0;
	size_t pieces[2] = {cut, s->len - cut};
	const uint8_t *src = s->bytes;

	pgw_decoder_init(&d, dir, 0);
	d.phase = phase;
	for (int k = 0; k < 2; k++) {
		size_t avail;
		if (pieces[k] == 0)
			continue;
		uint8_t *dst = pgw_rbuf_space(&b, pieces[k], d.need, &avail);
		assert_non_null(dst);
		memcpy(dst, src, pieces[k]);
		pgw_rbuf_produced(&b, pieces[k]);
		src += pieces[k];
		for (;;) {
			pgw_msg msg;
			pgw_error err;
			size_t used;
			if (pgw_rbuf_len(&b) == 0)
				break;
			pgw_status st = pgw_decode(&d, pgw_rbuf_data(&b), pgw_rbuf_len(&b), &msg,
						   &used, &err);
			if (st == PGW_NEED_MORE)
				break;
			if (st != PGW_OK)
				fail_msg("split at %zu: %s", cut, err.message);
			assert_true(got < s->n);
			assert_int_equal(msg.id, s->ids[got]);
			got++;
			pgw_rbuf_consume(&b, used);
		}
	}
	assert_int_equal(got, s->n);
	assert_int_equal(pgw_rbuf_len(&b), 0);
	assert_null(b.data); /* nothing buffered: no buffer held */
}

static void test_split_everywhere(void **state)
{
	(void)state;
	static stream s;
	const struct {
		pgw_direction dir;
		pgw_phase phase;
	} kinds[] = {{PGW_FRONTEND, PGW_PH_READY}, {PGW_BACKEND, PGW_PH_BACKEND}};
	for (size_t k = 0; k < 2; k++) {
		build_stream(&s, kinds[k].dir, kinds[k].phase);
		assert_true(s.n > 10);
		for (size_t cut = 0; cut <= s.len; cut++)
			decode_split(&s, kinds[k].dir, kinds[k].phase, cut);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_vector),
		cmocka_unit_test(test_every_message_covered),
		cmocka_unit_test(test_split_everywhere),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
