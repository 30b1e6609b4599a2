/*
 * Real traffic: conversations captured between psql/pgbench and
 * PostgreSQL 15 decode without a single error, every message re-encodes
 * to the bytes it came from, and feeding the bytes in any piece size
 * (down to one byte at a time) gives the same messages.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "follow.h"
#include "pgw/wbuf.h"

#define MAX_FILES 64
#define MAX_SEEN 20000

typedef struct seen {
	pgw_direction dir;
	pgw_msg_id id;
	uint32_t len;
} seen;

typedef struct record {
	seen *list;
	size_t n;
	size_t count[2][PGW_MSG_COUNT];
	/* a few facts checked against what the files are known to hold */
	int sqlstate_22012, sqlstate_42601, status_e, notifications;
	size_t bind_params;
} record;

static char *files[MAX_FILES];
static size_t nfiles;

static void check_fields(record *r, const pgw_msg *m)
{
	pgw_iter it = pgw_array_iter(&m->body.error_response.fields);
	uint8_t code;
	pgw_str text;
	size_t n = 0;
	while (pgw_next_field(&it, &code, &text)) {
		assert_int_equal(text.ptr[text.len], 0);
		if (code == 'C' && text.len == 5 && memcmp(text.ptr, "22012", 5) == 0)
			r->sqlstate_22012++;
		if (code == 'C' && text.len == 5 && memcmp(text.ptr, "42601", 5) == 0)
			r->sqlstate_42601++;
		n++;
	}
	assert_int_equal(n, m->body.error_response.fields.count);
	assert_ptr_equal(it.p, it.end);
}

static int on_message(void *arg, pgw_direction dir, const pgw_msg *m)
{
	record *r = arg;
	if (r->n < MAX_SEEN)
		r->list[r->n++] = (seen){dir, m->id, m->raw_len};
	r->count[dir][m->id]++;
	if (m->id == PGW_MSG_SSL_ANSWER)
		return 0;

	pgw_wbuf w = PGW_WBUF_INIT;
	if (!pgw_encode(&w, m->id, &m->body) || w.len != m->raw_len ||
	    memcmp(w.data, m->raw, w.len) != 0) {
		pgw_wbuf_release(&w);
		fail_msg("%s does not re-encode to its own bytes", pgw_msg_name(m->id));
	}
	pgw_wbuf_release(&w);

	switch (m->id) {
	case PGW_MSG_ERROR_RESPONSE:
	case PGW_MSG_NOTICE_RESPONSE:
		check_fields(r, m);
		break;
	case PGW_MSG_READY_FOR_QUERY:
		if (m->body.ready_for_query.status == 'E')
			r->status_e++;
		break;
	case PGW_MSG_NOTIFICATION_RESPONSE:
		r->notifications++;
		break;
	case PGW_MSG_BIND: {
		pgw_iter it = pgw_array_iter(&m->body.bind.params);
		pgw_value v;
		uint32_t n = 0;
		while (pgw_next_value(&it, &v))
			n++;
		assert_int_equal(n, m->body.bind.params.count);
		r->bind_params += n;
		break;
	}
	case PGW_MSG_DATA_ROW: {
		pgw_iter it = pgw_array_iter(&m->body.data_row.columns);
		pgw_value v;
		uint32_t n = 0;
		while (pgw_next_value(&it, &v))
			n++;
		assert_int_equal(n, m->body.data_row.columns.count);
		assert_ptr_equal(it.p, it.end);
		break;
	}
	case PGW_MSG_ROW_DESCRIPTION: {
		pgw_iter it = pgw_array_iter(&m->body.row_description.fields);
		pgw_row_description_fields f;
		uint32_t n = 0;
		while (pgw_next_row_description_fields(&it, &f)) {
			assert_true(f.format == 0 || f.format == 1);
			n++;
		}
		assert_int_equal(n, m->body.row_description.fields.count);
		break;
	}
	default:
		break;
	}
	return 0;
}

static void load(const char *name, pgw_transcript *t)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/%s", getenv("PGW_TEST_DATA"), name);
	assert_int_equal(pgw_transcript_load(path, t), 0);
}

static void follow_ok(const pgw_transcript *t, size_t piece, record *r, const char *name)
{
	pgw_follow_result res;
	int rc = pgw_follow(t, piece, on_message, r, &res);
	if (res.failed)
		fail_msg("%s (pieces of %zu): %s message %zu: %s %s", name, piece,
			 res.failed_dir == PGW_FRONTEND ? "frontend" : "backend",
			 res.messages[res.failed_dir], res.err.sqlstate, res.err.message);
	assert_int_equal(rc, 0);
	assert_int_equal(res.leftover[0], 0);
	assert_int_equal(res.leftover[1], 0);
}

/* Every capture: decodes whole, the same in every piece size. */
static void test_captures(void **state)
{
	(void)state;
	static seen first[MAX_SEEN], again[MAX_SEEN];
	const size_t pieces[] = {1, 2, 3, 5, 7, 13, 64, 1000, 4096};
	assert_true(nfiles >= 10);
	for (size_t f = 0; f < nfiles; f++) {
		pgw_transcript t;
		load(files[f], &t);
		record r = {.list = first};
		follow_ok(&t, 0, &r, files[f]);
		assert_true(r.n > 0 && r.n < MAX_SEEN);
		/* Startup first, Terminate last. */
		assert_true(first[0].dir == PGW_FRONTEND);
		assert_true(first[0].id == PGW_MSG_STARTUP_MESSAGE || first[0].id == PGW_MSG_SSL_REQUEST);
		size_t last_fe = 0;
		for (size_t i = 0; i < r.n; i++)
			if (first[i].dir == PGW_FRONTEND)
				last_fe = i;
		assert_int_equal(first[last_fe].id, PGW_MSG_TERMINATE);

		for (size_t k = 0; k < sizeof pieces / sizeof pieces[0]; k++) {
			record r2 = {.list = again};
			follow_ok(&t, pieces[k], &r2, files[f]);
			assert_int_equal(r2.n, r.n);
			/* Each direction's order is fixed; the interleaving follows
			 * the pieces, so compare direction by direction. */
			for (int d = 0; d < 2; d++) {
				size_t i = 0, j = 0;
				for (;;) {
					while (i < r.n && first[i].dir != (pgw_direction)d)
						i++;
					while (j < r2.n && again[j].dir != (pgw_direction)d)
						j++;
					if (i == r.n || j == r2.n) {
						assert_true(i == r.n && j == r2.n);
						break;
					}
					assert_int_equal(first[i].id, again[j].id);
					assert_int_equal(first[i].len, again[j].len);
					i++;
					j++;
				}
			}
		}
		size_t per_dir[2] = {0, 0};
		for (size_t i = 0; i < r.n; i++)
			per_dir[first[i].dir]++;
		print_message("%-28s %5zu frontend, %5zu backend messages\n", files[f],
			      per_dir[PGW_FRONTEND], per_dir[PGW_BACKEND]);
		pgw_transcript_free(&t);
	}
}

static record follow_file(const char *name)
{
	static seen list[MAX_SEEN];
	pgw_transcript t;
	record r = {.list = list};
	load(name, &t);
	follow_ok(&t, 0, &r, name);
	pgw_transcript_free(&t);
	return r;
}

/* What each capture is known to hold reaches the decoder as that message. */
static void test_capture_contents(void **state)
{
	(void)state;
	record r = follow_file("psql-simple.pgwt");
	assert_true(r.count[PGW_FRONTEND][PGW_MSG_QUERY] > 10);
	assert_true(r.count[PGW_BACKEND][PGW_MSG_EMPTY_QUERY_RESPONSE] >= 1);
	assert_true(r.count[PGW_BACKEND][PGW_MSG_NOTICE_RESPONSE] >= 1);
	assert_true(r.count[PGW_BACKEND][PGW_MSG_COPY_IN_RESPONSE] >= 1);
	assert_true(r.count[PGW_BACKEND][PGW_MSG_COPY_OUT_RESPONSE] >= 1);
	assert_true(r.count[PGW_FRONTEND][PGW_MSG_COPY_DATA] >= 1);
	assert_true(r.count[PGW_FRONTEND][PGW_MSG_COPY_DONE] >= 1);
	assert_true(r.count[PGW_BACKEND][PGW_MSG_COPY_DATA] >= 1);
	assert_true(r.count[PGW_BACKEND][PGW_MSG_PARAMETER_STATUS] > 13);
	assert_true(r.sqlstate_22012 >= 1);
	assert_true(r.sqlstate_42601 >= 1);
	assert_true(r.status_e >= 1);
	assert_true(r.notifications >= 1);

	r = follow_file("psql-scram.pgwt");
	assert_int_equal(r.count[PGW_BACKEND][PGW_MSG_AUTHENTICATION_SASL], 1);
	assert_int_equal(r.count[PGW_BACKEND][PGW_MSG_AUTHENTICATION_SASL_CONTINUE], 1);
	assert_int_equal(r.count[PGW_BACKEND][PGW_MSG_AUTHENTICATION_SASL_FINAL], 1);
	assert_int_equal(r.count[PGW_FRONTEND][PGW_MSG_SASL_INITIAL_RESPONSE], 1);
	assert_int_equal(r.count[PGW_FRONTEND][PGW_MSG_SASL_RESPONSE], 1);
	assert_int_equal(r.count[PGW_BACKEND][PGW_MSG_BACKEND_KEY_DATA], 1);

	r = follow_file("psql-md5.pgwt");
	assert_int_equal(r.count[PGW_BACKEND][PGW_MSG_AUTHENTICATION_MD5_PASSWORD], 1);
	assert_int_equal(r.count[PGW_FRONTEND][PGW_MSG_PASSWORD_MESSAGE], 1);

	r = follow_file("psql-password.pgwt");
	assert_int_equal(r.count[PGW_BACKEND][PGW_MSG_AUTHENTICATION_CLEARTEXT_PASSWORD], 1);
	assert_int_equal(r.count[PGW_FRONTEND][PGW_MSG_PASSWORD_MESSAGE], 1);

	r = follow_file("psql-sslrequest.pgwt");
	assert_int_equal(r.count[PGW_FRONTEND][PGW_MSG_SSL_REQUEST], 1);
	assert_int_equal(r.count[PGW_BACKEND][PGW_MSG_SSL_ANSWER], 1);
	assert_int_equal(r.count[PGW_FRONTEND][PGW_MSG_STARTUP_MESSAGE], 1);

	r = follow_file("pgbench-extended.pgwt");
	assert_true(r.count[PGW_FRONTEND][PGW_MSG_PARSE] > 0);
	assert_int_equal(r.count[PGW_FRONTEND][PGW_MSG_PARSE], r.count[PGW_FRONTEND][PGW_MSG_BIND]);
	assert_int_equal(r.count[PGW_FRONTEND][PGW_MSG_DESCRIBE], r.count[PGW_FRONTEND][PGW_MSG_BIND]);
	assert_int_equal(r.count[PGW_FRONTEND][PGW_MSG_EXECUTE], r.count[PGW_FRONTEND][PGW_MSG_BIND]);
	assert_int_equal(r.count[PGW_BACKEND][PGW_MSG_PARSE_COMPLETE], r.count[PGW_FRONTEND][PGW_MSG_PARSE]);
	assert_int_equal(r.count[PGW_BACKEND][PGW_MSG_BIND_COMPLETE], r.count[PGW_FRONTEND][PGW_MSG_BIND]);
	assert_true(r.count[PGW_BACKEND][PGW_MSG_NO_DATA] > 0);
	assert_true(r.bind_params > 0);

	r = follow_file("pgbench-prepared.pgwt");
	assert_true(r.count[PGW_FRONTEND][PGW_MSG_PARSE] < r.count[PGW_FRONTEND][PGW_MSG_BIND]);

	r = follow_file("datarow-heavy.pgwt");
	assert_true(r.count[PGW_BACKEND][PGW_MSG_DATA_ROW] >= 2000);

	r = follow_file("functioncall.pgwt");
	assert_true(r.count[PGW_FRONTEND][PGW_MSG_FUNCTION_CALL] > 0);
	assert_int_equal(r.count[PGW_BACKEND][PGW_MSG_FUNCTION_CALL_RESPONSE],
			 r.count[PGW_FRONTEND][PGW_MSG_FUNCTION_CALL]);

	r = follow_file("psql-copy-binary.pgwt");
	assert_true(r.count[PGW_FRONTEND][PGW_MSG_COPY_DATA] > 0);
	assert_true(r.count[PGW_BACKEND][PGW_MSG_COPY_DATA] > 0);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
	const char *dir = getenv("PGW_TEST_DATA");
	if (!dir) {
		fprintf(stderr, "PGW_TEST_DATA is not set\n");
		return 1;
	}
	DIR *d = opendir(dir);
	if (!d) {
		perror(dir);
		return 1;
	}
	struct dirent *e;
	while ((e = readdir(d)) && nfiles < MAX_FILES) {
		size_t n = strlen(e->d_name);
		if (n > 5 && strcmp(e->d_name + n - 5, ".pgwt") == 0)
			files[nfiles++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(files, nfiles, sizeof files[0], cmp_str);

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_captures),
		cmocka_unit_test(test_capture_contents),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	for (size_t i = 0; i < nfiles; i++)
		free(files[i]);
	return rc;
}
