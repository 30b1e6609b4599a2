/*
 * The statement classifier: takes the lexer's tokens, cuts the query string
 * where the server's grammar ends a statement, and classifies each one from
 * its first tokens plus a few patterns watched over the whole statement.
 */
#include <string.h>

#include "stmt.h"

/* Tokens kept from a statement's start. The longest form read here (SET
 * SESSION CHARACTERISTICS AS TRANSACTION ..., or a dotted SET name) needs
 * fewer than 10; a SET name longer than the rest gets no value. */
#define STMT_HEAD 16
/* The latest tokens, for the patterns looked for anywhere (the longest is
 * INSERT INTO LOCAL TEMP x). */
#define STMT_PREV 5

typedef struct stmt_ctx {
	stmt_info *out;
	size_t max;
	size_t count;
	/* The statement being read. */
	const char *first; /* start of its first token; NULL: none yet */
	const char *last;  /* end of its last token */
	uint32_t flags;
	size_t ntok; /* tokens other than comments */
	stmt_tok head[STMT_HEAD];
	stmt_tok prev[STMT_PREV]; /* prev[0] the latest; zeroed ones match nothing */
	size_t paren;
	size_t atomic;	   /* inside BEGIN ATOMIC: 1 + open CASEs */
	bool routine;	   /* CREATE [OR REPLACE] FUNCTION|PROCEDURE */
	bool cursor_query; /* DECLARE: past FOR, the cursor's query */
} stmt_ctx;

static char stmt_lower(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

static size_t stmt_tok_len(const stmt_tok *t)
{
	return (size_t)(t->e - t->s);
}

/* An unquoted identifier equal to kw (given in lower case) in any case:
 * keywords are only ever unquoted, and the server folds ASCII only. */
static bool stmt_tok_is(const stmt_tok *t, const char *kw)
{
	size_t n = strlen(kw);
	if (t->type != STMT_TOK_IDENT || stmt_tok_len(t) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (stmt_lower(t->s[i]) != kw[i])
			return false;
	return true;
}

/* A one-character operator or punctuation token. */
static bool stmt_tok_char(const stmt_tok *t, char ch)
{
	return (t->type == STMT_TOK_OP || t->type == STMT_TOK_PUNCT) && stmt_tok_len(t) == 1 && t->s[0] == ch;
}

static bool stmt_tok_identlike(const stmt_tok *t)
{
	return t->type == STMT_TOK_IDENT || t->type == STMT_TOK_QIDENT;
}

/* The name an identifier token stands for is `name` (lower case): unquoted
 * in any case, or "quoted" exactly. */
static bool stmt_tok_names(const stmt_tok *t, const char *name)
{
	if (t->type == STMT_TOK_IDENT)
		return stmt_tok_is(t, name);
	if (t->type == STMT_TOK_QIDENT && !t->unterminated && t->s[0] == '"') {
		size_t n = strlen(name);
		return stmt_tok_len(t) == n + 2 && memcmp(t->s + 1, name, n) == 0;
	}
	return false;
}

/* pg_temp or pg_temp_N, the session's temporary schema. */
static bool stmt_tok_pg_temp(const stmt_tok *t)
{
	const char *s = t->s;
	size_t n = stmt_tok_len(t);
	if (t->type == STMT_TOK_QIDENT) {
		if (t->unterminated || n < 2 || s[0] != '"')
			return false;
		s++;
		n -= 2;
	} else if (t->type != STMT_TOK_IDENT) {
		return false;
	}
	if (n < 7 || (n > 7 && s[7] != '_'))
		return false;
	for (size_t i = 0; i < 7; i++)
		if ((t->type == STMT_TOK_IDENT ? stmt_lower(s[i]) : s[i]) != "pg_temp"[i])
			return false;
	return true;
}

/* Head token i, if the statement has it and it was kept. */
static const stmt_tok *stmt_head(const stmt_ctx *c, size_t i)
{
	return i < c->ntok && i < STMT_HEAD ? &c->head[i] : NULL;
}

static bool stmt_kw(const stmt_ctx *c, size_t i, const char *kw)
{
	const stmt_tok *t = stmt_head(c, i);
	return t != NULL && stmt_tok_is(t, kw);
}

static bool stmt_char(const stmt_ctx *c, size_t i, char ch)
{
	const stmt_tok *t = stmt_head(c, i);
	return t != NULL && stmt_tok_char(t, ch);
}

static bool stmt_identlike(const stmt_ctx *c, size_t i)
{
	const stmt_tok *t = stmt_head(c, i);
	return t != NULL && stmt_tok_identlike(t);
}

static void stmt_set_name(stmt_info *s, const stmt_tok *from, const stmt_tok *to)
{
	s->name = from->s;
	s->name_len = (size_t)(to->e - from->s);
}

/* The value runs from head token i to the statement's end; empty if there
 * is no token i or it was not kept. */
static void stmt_set_value(const stmt_ctx *c, stmt_info *s, size_t i)
{
	const stmt_tok *t = stmt_head(c, i);
	if (t == NULL)
		return;
	s->value = t->s;
	s->value_len = (size_t)(c->last - t->s);
}

/* ---- patterns looked for anywhere in a statement */

static const char *const stmt_lock_fns[] = {
	"pg_advisory_lock",
	"pg_advisory_lock_shared",
	"pg_try_advisory_lock",
	"pg_try_advisory_lock_shared",
};
static const char *const stmt_unlock_fns[] = {
	"pg_advisory_unlock",
	"pg_advisory_unlock_shared",
	"pg_advisory_unlock_all",
};

/* t is the token before a '(': a function call, if it is a name. */
static uint32_t stmt_call_flags(const stmt_tok *t)
{
	if (!stmt_tok_identlike(t))
		return 0;
	for (size_t i = 0; i < sizeof stmt_lock_fns / sizeof stmt_lock_fns[0]; i++)
		if (stmt_tok_names(t, stmt_lock_fns[i]))
			return STMT_F_ADVISORY_LOCK;
	for (size_t i = 0; i < sizeof stmt_unlock_fns / sizeof stmt_unlock_fns[0]; i++)
		if (stmt_tok_names(t, stmt_unlock_fns[i]))
			return STMT_F_ADVISORY_UNLOCK;
	if (stmt_tok_names(t, "set_config"))
		return STMT_F_SET_CONFIG;
	return 0;
}

static bool stmt_tok_temp(const stmt_tok *t)
{
	return stmt_tok_is(t, "temp") || stmt_tok_is(t, "temporary");
}

/* INTO after these names a table to fill, not one to create: "INSERT INTO
 * temp" is a table called temp. */
static bool stmt_tok_fills(const stmt_tok *t)
{
	return stmt_tok_is(t, "insert") || stmt_tok_is(t, "merge");
}

/* What may follow SELECT ... INTO TEMP when TEMP is itself the new table's
 * name: only a reserved word that goes on the SELECT (or a ')', ';', end). */
static const char *const stmt_after_into[] = {
	"from",	  "where",     "group",	 "having", "window", "order", "limit",
	"offset", "fetch",     "for",	 "union",  "except", "intersect", "into",
	"returning",
};

/* t follows SELECT ... INTO TEMP: is TEMP the keyword, t the table? */
static bool stmt_tok_into_target(const stmt_tok *t)
{
	if (t->type == STMT_TOK_QIDENT || stmt_tok_is(t, "table"))
		return true;
	if (t->type != STMT_TOK_IDENT)
		return false;
	for (size_t i = 0; i < sizeof stmt_after_into / sizeof stmt_after_into[0]; i++)
		if (stmt_tok_is(t, stmt_after_into[i]))
			return false;
	return true;
}

/* Called for every token but comments, before it joins prev[]. */
static void stmt_watch(stmt_ctx *c, const stmt_tok *t)
{
	const stmt_tok *p0 = &c->prev[0], *p1 = &c->prev[1], *p2 = &c->prev[2], *p3 = &c->prev[3];

	if (stmt_tok_char(t, '(')) {
		if (c->ntok > 1)
			c->flags |= stmt_call_flags(p0);
		c->paren++;
	} else if (stmt_tok_char(t, ')')) {
		if (c->paren > 0)
			c->paren--;
	}

	/* A function body in BEGIN ATOMIC ... END holds ';'s. Only CREATE
	 * [OR REPLACE] FUNCTION|PROCEDURE has one, and only outside the
	 * parentheses: "f(begin atomic)" is a parameter of type atomic. END
	 * and CASE are reserved words, so CASE ... END nest without doubt. */
	if ((c->ntok == 2 || c->ntok == 4) && stmt_kw(c, 0, "create")) {
		size_t i = c->ntok - 1;
		if ((i == 1 || (stmt_kw(c, 1, "or") && stmt_kw(c, 2, "replace"))) &&
		    (stmt_kw(c, i, "function") || stmt_kw(c, i, "procedure")))
			c->routine = true;
	}
	if (c->atomic > 0) {
		if (stmt_tok_is(t, "case"))
			c->atomic++;
		else if (stmt_tok_is(t, "end"))
			c->atomic--;
	} else if (c->routine && c->paren == 0 && stmt_tok_is(t, "atomic") && stmt_tok_is(p0, "begin")) {
		c->atomic = 1;
	}

	/* SELECT ... INTO [LOCAL|GLOBAL] TEMP|TEMPORARY [TABLE] name */
	if (stmt_tok_temp(p0)) {
		if (stmt_tok_is(p1, "into") && !stmt_tok_fills(p2) && stmt_tok_into_target(t))
			c->flags |= STMT_F_TEMP_OBJECT;
		else if ((stmt_tok_is(p1, "local") || stmt_tok_is(p1, "global")) && stmt_tok_is(p2, "into") &&
			 !stmt_tok_fills(p3))
			c->flags |= STMT_F_TEMP_OBJECT;
	}
	/* pg_temp.x created: in a CREATE, or as SELECT INTO's target */
	if (stmt_tok_char(t, '.') && stmt_tok_pg_temp(p0) &&
	    (stmt_kw(c, 0, "create") || (stmt_tok_is(p1, "into") && !stmt_tok_fills(p2))))
		c->flags |= STMT_F_TEMP_OBJECT;

	/* DECLARE c ... WITH HOLD ... FOR query: the query may have WITH, not
	 * WITH HOLD, but stop looking at FOR anyway. */
	if (c->ntok > 1 && !c->cursor_query && stmt_kw(c, 0, "declare")) {
		if (stmt_tok_is(t, "for"))
			c->cursor_query = true;
		else if (stmt_tok_is(t, "hold") && stmt_tok_is(p0, "with"))
			c->flags |= STMT_F_WITH_HOLD;
	}
}

/* ---- classification from the head */

typedef struct stmt_form {
	const char *kw[3]; /* up to 3 keywords, NULL-ended */
	const char *param;
} stmt_form;

static const stmt_form stmt_set_forms[] = {
	{{"time", "zone", NULL}, "timezone"},
	{{"names", NULL, NULL}, "client_encoding"},
	{{"schema", NULL, NULL}, "search_path"},
	{{"role", NULL, NULL}, "role"},
	{{"session", "authorization", NULL}, "session_authorization"},
	{{"xml", "option", NULL}, "xmloption"},
	{{NULL, NULL, NULL}, NULL},
};

static const stmt_form stmt_reset_forms[] = {
	{{"time", "zone", NULL}, "timezone"},
	{{"session", "authorization", NULL}, "session_authorization"},
	{{"transaction", "isolation", "level"}, "transaction_isolation"},
	{{NULL, NULL, NULL}, NULL},
};

/* If one of forms starts at head token i: name it, return the index after
 * its keywords; else 0. */
static size_t stmt_read_form(const stmt_ctx *c, stmt_info *s, size_t i, const stmt_form *forms)
{
	for (; forms->param != NULL; forms++) {
		size_t k = 0;
		while (k < 3 && forms->kw[k] != NULL && stmt_kw(c, i + k, forms->kw[k]))
			k++;
		if (k < 3 && forms->kw[k] != NULL)
			continue;
		stmt_set_name(s, &c->head[i], &c->head[i + k - 1]);
		s->param = forms->param;
		return i + k;
	}
	return 0;
}

/* var_name: ColId ('.' ColId)* at head token i. Names it and returns the
 * index after it; 0 if there is none. */
static size_t stmt_read_var_name(const stmt_ctx *c, stmt_info *s, size_t i)
{
	size_t j = i + 1;
	if (!stmt_identlike(c, i))
		return 0;
	while (stmt_char(c, j, '.') && stmt_identlike(c, j + 1))
		j += 2;
	stmt_set_name(s, &c->head[i], &c->head[j - 1]);
	return j;
}

static void stmt_read_set(const stmt_ctx *c, stmt_info *s)
{
	size_t i = 1, j;

	s->kind = STMT_SET;
	if (stmt_kw(c, 1, "local")) {
		s->kind = STMT_SET_LOCAL;
		i = 2;
	} else if (stmt_kw(c, 1, "session") && !stmt_kw(c, 2, "authorization") && !stmt_kw(c, 2, "characteristics")) {
		i = 2;
	}
	if (i == 1 && stmt_kw(c, 1, "constraints")) {
		s->kind = STMT_SET_CONSTRAINTS;
		return;
	}
	if (stmt_kw(c, i, "transaction")) {
		s->kind = STMT_SET_TRANSACTION;
		stmt_set_value(c, s, i + 1);
		return;
	}
	if (stmt_kw(c, i, "session") && stmt_kw(c, i + 1, "characteristics")) {
		s->kind = STMT_SET_TRANSACTION;
		s->flags |= STMT_F_SESSION_DEFAULTS;
		/* ... CHARACTERISTICS AS TRANSACTION modes */
		stmt_set_value(c, s, i + 4);
		return;
	}
	/* The generic form first: "SET role = x" is the parameter role, as
	 * "SET ROLE x" is; "SET TIME ZONE x" has no TO. */
	j = stmt_read_var_name(c, s, i);
	if (j != 0 && (stmt_kw(c, j, "to") || stmt_char(c, j, '='))) {
		stmt_set_value(c, s, j + 1);
		return;
	}
	if ((i = stmt_read_form(c, s, i, stmt_set_forms)) != 0) {
		stmt_set_value(c, s, i);
		return;
	}
	/* SET x FROM CURRENT, or a syntax error */
	if (j != 0)
		stmt_set_value(c, s, j);
}

static void stmt_read_reset(const stmt_ctx *c, stmt_info *s)
{
	if (stmt_kw(c, 1, "all")) {
		s->kind = STMT_RESET_ALL;
		return;
	}
	s->kind = STMT_RESET;
	if (stmt_read_form(c, s, 1, stmt_reset_forms) == 0)
		(void)stmt_read_var_name(c, s, 1);
}

/* COMMIT/END/ROLLBACK/ABORT [WORK|TRANSACTION] AND [NO] CHAIN */
static void stmt_read_chain(const stmt_ctx *c, stmt_info *s)
{
	size_t i = stmt_kw(c, 1, "work") || stmt_kw(c, 1, "transaction") ? 2 : 1;
	if (stmt_kw(c, i, "and") && stmt_kw(c, i + 1, "chain"))
		s->flags |= STMT_F_AND_CHAIN;
}

/* The name is head token i, if it is an identifier. */
static void stmt_name_at(const stmt_ctx *c, stmt_info *s, size_t i)
{
	if (stmt_identlike(c, i))
		stmt_set_name(s, &c->head[i], &c->head[i]);
}

/* The name is the statement's last token, if it comes after head token 0
 * and is an identifier (or, for a gid, a string). */
static void stmt_name_last(const stmt_ctx *c, stmt_info *s, bool gid)
{
	const stmt_tok *t = &c->prev[0];
	if (c->ntok < 2)
		return;
	if (gid ? t->type == STMT_TOK_STRING : stmt_tok_identlike(t))
		stmt_set_name(s, t, t);
}

/* ALL (or UNLISTEN's '*') at head token i, ending the statement. */
static void stmt_all_at(const stmt_ctx *c, stmt_info *s, size_t i)
{
	if (c->ntok == i + 1 && (stmt_kw(c, i, "all") || stmt_char(c, i, '*'))) {
		s->flags |= STMT_F_ALL;
		stmt_set_name(s, &c->head[i], &c->head[i]);
	}
}

/* Statements recognised by their first word alone. */
static const struct {
	const char *kw;
	stmt_kind kind;
} stmt_simple[] = {
	{"begin", STMT_BEGIN},	   {"copy", STMT_COPY}, {"load", STMT_LOAD},
	{"vacuum", STMT_VACUUM},   {"do", STMT_DO},	{"call", STMT_CALL},
	{"listen", STMT_LISTEN},   {"notify", STMT_NOTIFY},
	{"execute", STMT_EXECUTE}, {"declare", STMT_DECLARE_CURSOR},
	{"unlisten", STMT_UNLISTEN}, {"close", STMT_CLOSE_CURSOR},
	{"fetch", STMT_FETCH},	   {"move", STMT_FETCH},
};

static void stmt_read(const stmt_ctx *c, stmt_info *s)
{
	s->kind = STMT_OTHER;
	if (c->ntok == 0) /* only an unterminated comment */
		return;

	for (size_t k = 0; k < sizeof stmt_simple / sizeof stmt_simple[0]; k++) {
		if (!stmt_kw(c, 0, stmt_simple[k].kw))
			continue;
		s->kind = stmt_simple[k].kind;
		switch (s->kind) {
		case STMT_LISTEN:
		case STMT_NOTIFY:
		case STMT_EXECUTE:
		case STMT_DECLARE_CURSOR:
			stmt_name_at(c, s, 1);
			break;
		case STMT_UNLISTEN:
		case STMT_CLOSE_CURSOR:
			stmt_name_at(c, s, 1);
			stmt_all_at(c, s, 1);
			break;
		case STMT_FETCH:
			stmt_name_last(c, s, false);
			break;
		default:
			break;
		}
		return;
	}

	if (stmt_kw(c, 0, "start")) {
		if (stmt_kw(c, 1, "transaction"))
			s->kind = STMT_BEGIN;
	} else if (stmt_kw(c, 0, "commit")) {
		if (stmt_kw(c, 1, "prepared")) {
			s->kind = STMT_COMMIT_PREPARED;
			stmt_name_last(c, s, true);
		} else {
			s->kind = STMT_COMMIT;
			stmt_read_chain(c, s);
		}
	} else if (stmt_kw(c, 0, "end")) {
		s->kind = STMT_COMMIT;
		stmt_read_chain(c, s);
	} else if (stmt_kw(c, 0, "abort")) {
		s->kind = STMT_ROLLBACK;
		stmt_read_chain(c, s);
	} else if (stmt_kw(c, 0, "rollback")) {
		size_t i = stmt_kw(c, 1, "work") || stmt_kw(c, 1, "transaction") ? 2 : 1;
		if (stmt_kw(c, 1, "prepared")) {
			s->kind = STMT_ROLLBACK_PREPARED;
			stmt_name_last(c, s, true);
		} else if (stmt_kw(c, i, "to")) {
			s->kind = STMT_SAVEPOINT_OP;
			stmt_name_last(c, s, false);
		} else {
			s->kind = STMT_ROLLBACK;
			stmt_read_chain(c, s);
		}
	} else if (stmt_kw(c, 0, "savepoint") || stmt_kw(c, 0, "release")) {
		s->kind = STMT_SAVEPOINT_OP;
		stmt_name_last(c, s, false);
	} else if (stmt_kw(c, 0, "prepare")) {
		/* A statement may be called transaction: PREPARE transaction AS,
		 * PREPARE transaction (int) AS. */
		if (stmt_kw(c, 1, "transaction") && !stmt_kw(c, 2, "as") && !stmt_char(c, 2, '(')) {
			s->kind = STMT_PREPARE_TXN;
			stmt_name_last(c, s, true);
		} else {
			s->kind = STMT_PREPARE;
			stmt_name_at(c, s, 1);
		}
	} else if (stmt_kw(c, 0, "deallocate")) {
		size_t i = stmt_kw(c, 1, "prepare") && c->ntok > 2 ? 2 : 1;
		s->kind = STMT_DEALLOCATE;
		stmt_name_at(c, s, i);
		stmt_all_at(c, s, i);
	} else if (stmt_kw(c, 0, "set")) {
		stmt_read_set(c, s);
	} else if (stmt_kw(c, 0, "reset")) {
		stmt_read_reset(c, s);
	} else if (stmt_kw(c, 0, "discard")) {
		s->kind = stmt_kw(c, 1, "all") ? STMT_DISCARD_ALL : STMT_DISCARD_OTHER;
	} else if (stmt_kw(c, 0, "create")) {
		/* CREATE [OR REPLACE] [LOCAL|GLOBAL] TEMP|TEMPORARY: right after
		 * CREATE, TEMP can only be the keyword ("CREATE TABLE temp" is
		 * a table called temp). */
		size_t i = stmt_kw(c, 1, "or") && stmt_kw(c, 2, "replace") ? 3 : 1;
		if (stmt_kw(c, i, "local") || stmt_kw(c, i, "global"))
			i++;
		if (stmt_kw(c, i, "temp") || stmt_kw(c, i, "temporary"))
			s->flags |= STMT_F_TEMP_OBJECT;
		if (stmt_kw(c, 1, "database")) {
			s->kind = STMT_CREATE_DATABASE;
			stmt_name_at(c, s, 2);
		}
	} else if (stmt_kw(c, 0, "drop")) {
		if (stmt_kw(c, 1, "database")) {
			s->kind = STMT_DROP_DATABASE;
			stmt_name_at(c, s, stmt_kw(c, 2, "if") && stmt_kw(c, 3, "exists") ? 4 : 2);
		}
	} else if (stmt_kw(c, 0, "alter")) {
		if (stmt_kw(c, 1, "system")) {
			s->kind = STMT_ALTER_SYSTEM;
		} else if (stmt_kw(c, 1, "database")) {
			s->kind = STMT_ALTER_DATABASE;
			stmt_name_at(c, s, 2);
		}
	}
}

/* ---- splitting */

static void stmt_reset_ctx(stmt_ctx *c)
{
	c->first = c->last = NULL;
	c->flags = 0;
	c->ntok = 0;
	memset(c->prev, 0, sizeof c->prev);
	c->paren = c->atomic = 0;
	c->routine = c->cursor_query = false;
}

static void stmt_end(stmt_ctx *c, bool at_eof)
{
	if (c->first != NULL) {
		stmt_info s;
		memset(&s, 0, sizeof s);
		/* An open BEGIN ATOMIC or parenthesis is a syntax error at the
		 * end of input just as an open string is. */
		if (at_eof && (c->atomic > 0 || c->paren > 0))
			c->flags |= STMT_F_UNTERMINATED;
		s.flags = c->flags;
		s.start = c->first;
		s.len = (size_t)(c->last - c->first);
		stmt_read(c, &s);
		if (c->count < c->max)
			c->out[c->count] = s;
		c->count++;
	}
	stmt_reset_ctx(c);
}

static void stmt_on_token(void *arg, const stmt_tok *t)
{
	stmt_ctx *c = arg;

	if (t->type == STMT_TOK_SEMI && c->paren == 0 && c->atomic == 0) {
		stmt_end(c, false);
		return;
	}
	if (t->type == STMT_TOK_COMMENT) {
		/* Comments are not part of the statement, but one the input ends
		 * in makes the server refuse it: it has to be seen. */
		if (!t->unterminated)
			return;
		if (c->first == NULL)
			c->first = t->s;
		c->last = t->e;
		c->flags |= STMT_F_UNTERMINATED;
		return;
	}
	if (c->first == NULL)
		c->first = t->s;
	c->last = t->e;
	if (t->unterminated)
		c->flags |= STMT_F_UNTERMINATED;
	if (c->ntok < STMT_HEAD)
		c->head[c->ntok] = *t;
	c->ntok++;
	stmt_watch(c, t);
	memmove(&c->prev[1], &c->prev[0], (STMT_PREV - 1) * sizeof c->prev[0]);
	c->prev[0] = *t;
}

size_t stmt_classify_opts(const char *sql, size_t len, unsigned opts, stmt_info *out, size_t max)
{
	stmt_ctx c;

	memset(&c, 0, sizeof c);
	c.out = out;
	c.max = out != NULL ? max : 0;
	if (sql == NULL)
		len = 0;
	stmt_reset_ctx(&c);
	stmt_lex(sql, len, opts, stmt_on_token, &c);
	stmt_end(&c, true);
	if (c.count == 0) {
		if (c.max > 0) {
			memset(&out[0], 0, sizeof out[0]);
			out[0].kind = STMT_EMPTY;
			out[0].start = sql;
		}
		c.count = 1;
	}
	return c.count;
}

size_t stmt_classify(const char *sql, size_t len, stmt_info *out, size_t max)
{
	return stmt_classify_opts(sql, len, 0, out, max);
}

/* ---- names */

typedef struct stmt_namebuf {
	char *buf;
	size_t cap;
	size_t len;
} stmt_namebuf;

static void stmt_name_put(stmt_namebuf *nb, char ch)
{
	if (nb->len + 1 < nb->cap)
		nb->buf[nb->len] = ch;
	nb->len++;
}

static void stmt_name_token(void *arg, const stmt_tok *t)
{
	stmt_namebuf *nb = arg;
	const char *s = t->s, *e = t->e;

	switch (t->type) {
	case STMT_TOK_COMMENT:
		return;
	case STMT_TOK_IDENT:
		for (; s < e; s++)
			stmt_name_put(nb, stmt_lower(*s));
		return;
	case STMT_TOK_QIDENT:
		s += s[0] == '"' ? 1 : 3; /* " or U&" */
		if (!t->unterminated)
			e--;
		for (; s < e; s++) {
			stmt_name_put(nb, *s);
			if (*s == '"' && s + 1 < e && s[1] == '"')
				s++;
		}
		return;
	default:
		for (; s < e; s++)
			stmt_name_put(nb, *s);
		return;
	}
}

size_t stmt_param_name(const stmt_info *s, char *buf, size_t cap)
{
	stmt_namebuf nb = {buf, cap, 0};

	if (s->param != NULL) {
		for (const char *q = s->param; *q != '\0'; q++)
			stmt_name_put(&nb, *q);
	} else if (s->name != NULL && s->name_len > 0) {
		stmt_lex(s->name, s->name_len, 0, stmt_name_token, &nb);
	}
	if (cap > 0)
		buf[nb.len < cap ? nb.len : cap - 1] = '\0';
	return nb.len;
}

/* ---- the database a database statement needs alone */

/* Tokens of CREATE DATABASE looked at for its TEMPLATE; one past them
 * makes the template unknown. */
#define STMT_DB_TOKS 64

typedef struct stmt_toklist {
	stmt_tok tok[STMT_DB_TOKS];
	size_t n;
} stmt_toklist;

static void stmt_collect(void *arg, const stmt_tok *t)
{
	stmt_toklist *l = arg;
	if (t->type == STMT_TOK_COMMENT)
		return;
	if (l->n < STMT_DB_TOKS)
		l->tok[l->n] = *t;
	l->n++;
}

/* The name a token stands for: an identifier, a quoted one, or a plain
 * string literal. False when it is none of those the way read here. */
static bool stmt_db_name(const stmt_tok *t, char *buf, size_t cap)
{
	size_t n = 0, len = stmt_tok_len(t);
	const char *s = t->s;
	char quote;

	if (t->unterminated || cap == 0)
		return false;
	if (t->type == STMT_TOK_IDENT) {
		if (len >= cap)
			return false;
		for (size_t i = 0; i < len; i++)
			buf[n++] = stmt_lower(s[i]);
		buf[n] = '\0';
		return n > 0 && memchr(s, '\0', len) == NULL;
	}
	if (t->type == STMT_TOK_QIDENT && s[0] == '"')
		quote = '"';
	else if (t->type == STMT_TOK_STRING && s[0] == '\'')
		quote = '\'';
	else
		return false; /* U&"...", E'...', $$...$$ */
	for (size_t i = 1; i + 1 < len; i++) {
		if (s[i] == '\\' && quote == '\'')
			return false; /* standard_conforming_strings decides */
		if (s[i] == quote) {
			if (s[i + 1] != quote)
				return false; /* 'a' 'b' continued on another line */
			i++;
		}
		if (n + 1 >= cap || s[i] == '\0') /* a NUL never reaches the server */
			return false;
		buf[n++] = s[i];
	}
	buf[n] = '\0';
	return n > 0;
}

/* CREATE DATABASE name [WITH] [option [=] value] ...: TEMPLATE's value. */
static stmt_db_need stmt_db_template(const stmt_toklist *l, char *buf, size_t cap)
{
	size_t i = 3, n = l->n < STMT_DB_TOKS ? l->n : STMT_DB_TOKS;
	const char *dflt = "template1";

	if (i < n && stmt_tok_is(&l->tok[i], "with"))
		i++;
	while (i < n) {
		const stmt_tok *name = &l->tok[i++];
		if (stmt_tok_is(name, "connection") && i < n && stmt_tok_is(&l->tok[i], "limit"))
			i++;
		if (i < n && stmt_tok_char(&l->tok[i], '='))
			i++;
		if (i < n && (stmt_tok_char(&l->tok[i], '-') || stmt_tok_char(&l->tok[i], '+')))
			i++;
		if (i >= n)
			break;
		const stmt_tok *value = &l->tok[i++];
		if (!stmt_tok_is(name, "template"))
			continue;
		if (stmt_tok_is(value, "default"))
			break;
		return stmt_db_name(value, buf, cap) ? STMT_DB_NAMED : STMT_DB_UNKNOWN;
	}
	if (l->n > STMT_DB_TOKS)
		return STMT_DB_UNKNOWN; /* TEMPLATE may come later */
	if (cap <= strlen(dflt))
		return STMT_DB_UNKNOWN;
	memcpy(buf, dflt, strlen(dflt) + 1);
	return STMT_DB_NAMED;
}

stmt_db_need stmt_exclusive_database(const stmt_info *s, char *buf, size_t cap)
{
	stmt_toklist l;

	if (s->kind != STMT_CREATE_DATABASE && s->kind != STMT_DROP_DATABASE &&
	    s->kind != STMT_ALTER_DATABASE)
		return STMT_DB_NONE;
	if (s->kind == STMT_CREATE_DATABASE) {
		l.n = 0;
		stmt_lex(s->start, s->len, 0, stmt_collect, &l);
		return stmt_db_template(&l, buf, cap);
	}
	if (s->name == NULL || s->name_len == 0)
		return STMT_DB_UNKNOWN;
	l.n = 0;
	stmt_lex(s->name, s->name_len, 0, stmt_collect, &l);
	return l.n == 1 && stmt_db_name(&l.tok[0], buf, cap) ? STMT_DB_NAMED : STMT_DB_UNKNOWN;
}

const char *stmt_kind_name(stmt_kind kind)
{
	static const char *const names[STMT_KIND_COUNT] = {
		[STMT_EMPTY] = "EMPTY",
		[STMT_OTHER] = "OTHER",
		[STMT_BEGIN] = "BEGIN",
		[STMT_COMMIT] = "COMMIT",
		[STMT_ROLLBACK] = "ROLLBACK",
		[STMT_SAVEPOINT_OP] = "SAVEPOINT_OP",
		[STMT_PREPARE_TXN] = "PREPARE_TXN",
		[STMT_COMMIT_PREPARED] = "COMMIT_PREPARED",
		[STMT_ROLLBACK_PREPARED] = "ROLLBACK_PREPARED",
		[STMT_SET] = "SET",
		[STMT_SET_LOCAL] = "SET_LOCAL",
		[STMT_SET_TRANSACTION] = "SET_TRANSACTION",
		[STMT_SET_CONSTRAINTS] = "SET_CONSTRAINTS",
		[STMT_RESET] = "RESET",
		[STMT_RESET_ALL] = "RESET_ALL",
		[STMT_DISCARD_ALL] = "DISCARD_ALL",
		[STMT_DISCARD_OTHER] = "DISCARD_OTHER",
		[STMT_LISTEN] = "LISTEN",
		[STMT_UNLISTEN] = "UNLISTEN",
		[STMT_NOTIFY] = "NOTIFY",
		[STMT_PREPARE] = "PREPARE",
		[STMT_EXECUTE] = "EXECUTE",
		[STMT_DEALLOCATE] = "DEALLOCATE",
		[STMT_DECLARE_CURSOR] = "DECLARE_CURSOR",
		[STMT_CLOSE_CURSOR] = "CLOSE_CURSOR",
		[STMT_FETCH] = "FETCH",
		[STMT_COPY] = "COPY",
		[STMT_LOAD] = "LOAD",
		[STMT_VACUUM] = "VACUUM",
		[STMT_CREATE_DATABASE] = "CREATE_DATABASE",
		[STMT_DROP_DATABASE] = "DROP_DATABASE",
		[STMT_ALTER_DATABASE] = "ALTER_DATABASE",
		[STMT_ALTER_SYSTEM] = "ALTER_SYSTEM",
		[STMT_DO] = "DO",
		[STMT_CALL] = "CALL",
	};
	if ((unsigned)kind >= STMT_KIND_COUNT || names[kind] == NULL)
		return "?";
	return names[kind];
}
