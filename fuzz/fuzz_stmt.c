/*
 * libFuzzer/AFL++ target: the statement classifier (src/sql) and its lexer
 * on arbitrary bytes, read in both string modes (standard_conforming_strings
 * on and off). Input: the query string itself, no control byte.
 *
 * Checked: the tokens lie inside the input in order, with only whitespace
 * between them and at most the last unterminated; the statements lie
 * inside the input in order without overlapping, their names and values
 * inside them; only the last may be unterminated; the count does not depend
 * on max; a statement's own text classifies again as exactly that
 * statement; stmt_param_name agrees with itself at every buffer size;
 * stmt_exclusive_database names a database only for the database
 * statements, NUL-terminated within the buffer, never empty.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stmt.h"

#define FZ_CHECK(cond, ...)                                                                        \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);  \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define FZ_MAX 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz_lex {
	const char *lo, *hi;
	const char *at; /* end of the previous token */
	bool ended;	/* an unterminated token was seen */
} fz_lex;

static bool fz_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

static void fz_on_token(void *arg, const stmt_tok *t)
{
	fz_lex *fl = arg;
	FZ_CHECK(!fl->ended, "a token after an unterminated one");
	FZ_CHECK(t->s >= fl->at && t->e > t->s && t->e <= fl->hi, "token at %td..%td, previous end %td",
		 t->s - fl->lo, t->e - fl->lo, fl->at - fl->lo);
	for (const char *q = fl->at; q < t->s; q++)
		FZ_CHECK(fz_space(*q), "byte 0x%02x at %td between tokens", (unsigned char)*q, q - fl->lo);
	FZ_CHECK((unsigned)t->type <= STMT_TOK_OTHER, "token type %d", (int)t->type);
	if (t->unterminated) {
		FZ_CHECK(t->e == fl->hi, "unterminated token ends at %td of %td", t->e - fl->lo, fl->hi - fl->lo);
		fl->ended = true;
	}
	fl->at = t->e;
}

static bool fz_inside(const char *p, size_t n, const char *lo, const char *hi)
{
	return p != NULL && p >= lo && p <= hi && n <= (size_t)(hi - p);
}

static void fz_check_param(const stmt_info *s)
{
	char big[512], small[8];
	size_t n = stmt_param_name(s, big, sizeof big);
	/* The input may hold NUL bytes, so no strlen: the terminator is where
	 * the length says. */
	FZ_CHECK(big[n < sizeof big ? n : sizeof big - 1] == '\0', "param name length %zu", n);
	FZ_CHECK(n <= s->name_len + 32, "param name %zu from a name of %zu", n, s->name_len);
	FZ_CHECK(stmt_param_name(s, small, sizeof small) == n, "param name length depends on the buffer");
	FZ_CHECK(memcmp(small, big, n < sizeof small ? n + 1 : sizeof small - 1) == 0, "param name differs");
	FZ_CHECK(stmt_param_name(s, NULL, 0) == n, "param name length without a buffer");
}

static void fz_check_db(const stmt_info *s)
{
	char buf[64], small[4];
	stmt_db_need need = stmt_exclusive_database(s, buf, sizeof buf);
	bool db_kind = s->kind == STMT_CREATE_DATABASE || s->kind == STMT_DROP_DATABASE ||
		       s->kind == STMT_ALTER_DATABASE;
	FZ_CHECK((need != STMT_DB_NONE) == db_kind, "%s needs database %d", stmt_kind_name(s->kind), (int)need);
	if (need == STMT_DB_NAMED) {
		size_t n = strnlen(buf, sizeof buf);
		FZ_CHECK(n > 0 && n < sizeof buf, "database name of length %zu", n);
		if (stmt_exclusive_database(s, small, sizeof small) == STMT_DB_NAMED)
			FZ_CHECK(strcmp(small, buf) == 0, "database name depends on the buffer");
	}
}

static void fz_run(const char *sql, size_t len, unsigned opts)
{
	static stmt_info out[FZ_MAX];
	fz_lex fl = {sql, sql + len, sql, false};
	stmt_lex(sql, len, opts, fz_on_token, &fl);
	for (const char *q = fl.at; q < fl.hi; q++)
		FZ_CHECK(fz_space(*q), "byte 0x%02x at %td after the last token", (unsigned char)*q, q - sql);

	size_t n = stmt_classify_opts(sql, len, opts, out, FZ_MAX);
	FZ_CHECK(n >= 1, "no result");
	FZ_CHECK(stmt_classify_opts(sql, len, opts, NULL, 0) == n, "the count depends on max");
	const char *prev_end = sql;
	for (size_t i = 0; i < n && i < FZ_MAX; i++) {
		const stmt_info *s = &out[i];
		FZ_CHECK((unsigned)s->kind < STMT_KIND_COUNT, "kind %d", (int)s->kind);
		FZ_CHECK(fz_inside(s->start, s->len, prev_end, sql + len) || (len == 0 && s->len == 0),
			 "statement %zu at %td+%zu, previous end %td", i, s->start - sql, s->len, prev_end - sql);
		FZ_CHECK((s->kind == STMT_EMPTY) == (s->len == 0), "statement %zu: %s of length %zu", i,
			 stmt_kind_name(s->kind), s->len);
		FZ_CHECK(s->kind != STMT_EMPTY || n == 1, "an empty statement among %zu", n);
		FZ_CHECK(!(s->flags & STMT_F_UNTERMINATED) || i + 1 == n, "unterminated statement %zu of %zu", i, n);
		if (s->name_len > 0)
			FZ_CHECK(fz_inside(s->name, s->name_len, s->start, s->start + s->len), "statement %zu: name", i);
		if (s->value_len > 0)
			FZ_CHECK(fz_inside(s->value, s->value_len, s->start, s->start + s->len), "statement %zu: value",
				 i);
		fz_check_param(s);
		fz_check_db(s);
		if (s->len > 0)
			prev_end = s->start + s->len;

		/* The statement's text alone is the same statement. */
		if (s->kind != STMT_EMPTY) {
			stmt_info again;
			FZ_CHECK(stmt_classify_opts(s->start, s->len, opts, &again, 1) == 1,
				 "statement %zu is several alone", i);
			FZ_CHECK(again.kind == s->kind && again.flags == s->flags && again.start == s->start &&
					 again.len == s->len && again.name == s->name &&
					 again.name_len == s->name_len && again.value == s->value &&
					 again.value_len == s->value_len && again.param == s->param,
				 "statement %zu alone: %s/%u, was %s/%u", i, stmt_kind_name(again.kind),
				 (unsigned)again.flags, stmt_kind_name(s->kind), (unsigned)s->flags);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exactly sized copy so ASan sees any read past the end, even
	 * from a harness that hands over a bigger buffer. */
	char *sql = malloc(size ? size : 1);
	if (sql == NULL)
		return 0;
	if (size > 0)
		memcpy(sql, data, size);
	fz_run(sql, size, 0);
	fz_run(sql, size, STMT_OPT_BACKSLASH_QUOTES);
	free(sql);
	return 0;
}
