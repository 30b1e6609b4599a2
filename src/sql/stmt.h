/*
 * The statement classifier: splits a simple-Query string into the
 * statements PostgreSQL will run and says which of them touch the state a
 * transaction-pooling gateway must keep per client (transactions, SET,
 * prepared statements, cursors, LISTEN, temp objects, advisory locks).
 *
 * It lexes the way the server does (grammar/sql_lexer.rl) and never matches
 * substrings, so a keyword inside a string, comment or quoted identifier is
 * never taken for a statement. The input is assumed to be in an encoding
 * whose bytes below 0x80 are always ASCII characters: every server
 * encoding and UTF-8 are; the client-only encodings SJIS, BIG5, GBK, UHC,
 * GB18030 and JOHAB are not and must be converted first.
 *
 * Nothing is allocated or copied: every slice points into the input.
 */
#ifndef PGW_SQL_STMT_H
#define PGW_SQL_STMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum stmt_kind {
	STMT_EMPTY,		/* the whole query string holds no statement */
	STMT_OTHER,		/* anything not listed below */
	STMT_BEGIN,		/* BEGIN [WORK|TRANSACTION] [modes], START TRANSACTION */
	STMT_COMMIT,		/* COMMIT, END (AND CHAIN: STMT_F_AND_CHAIN) */
	STMT_ROLLBACK,		/* ROLLBACK, ABORT (AND CHAIN: STMT_F_AND_CHAIN) */
	STMT_SAVEPOINT_OP,	/* SAVEPOINT, RELEASE [SAVEPOINT], ROLLBACK [WORK] TO [SAVEPOINT] */
	STMT_PREPARE_TXN,	/* PREPARE TRANSACTION 'gid' */
	STMT_COMMIT_PREPARED,	/* COMMIT PREPARED 'gid' */
	STMT_ROLLBACK_PREPARED, /* ROLLBACK PREPARED 'gid' */
	STMT_SET,		/* SET [SESSION] ...: see name/param/value below */
	STMT_SET_LOCAL,		/* SET LOCAL ...: same forms, lasts to the end of the transaction */
	STMT_SET_TRANSACTION,	/* SET [LOCAL|SESSION] TRANSACTION ..., SET SESSION CHARACTERISTICS
				 * AS TRANSACTION ... (the latter also STMT_F_SESSION_DEFAULTS) */
	STMT_SET_CONSTRAINTS,	/* SET CONSTRAINTS ...: this transaction only */
	STMT_RESET,		/* RESET name, RESET TIME ZONE, RESET ROLE, ... */
	STMT_RESET_ALL,		/* RESET ALL */
	STMT_DISCARD_ALL,	/* DISCARD ALL */
	STMT_DISCARD_OTHER,	/* DISCARD PLANS|SEQUENCES|TEMP|TEMPORARY */
	STMT_LISTEN,
	STMT_UNLISTEN,		/* UNLISTEN * also has STMT_F_ALL */
	STMT_NOTIFY,
	STMT_PREPARE,		/* SQL PREPARE name [(types)] AS ... */
	STMT_EXECUTE,
	STMT_DEALLOCATE,	/* DEALLOCATE [PREPARE] name|ALL (ALL: STMT_F_ALL) */
	STMT_DECLARE_CURSOR,	/* WITH HOLD: STMT_F_WITH_HOLD */
	STMT_CLOSE_CURSOR,	/* CLOSE name|ALL (ALL: STMT_F_ALL) */
	STMT_FETCH,		/* FETCH and MOVE */
	STMT_COPY,
	STMT_LOAD,
	STMT_VACUUM,
	STMT_CREATE_DATABASE,	/* name: the new database */
	STMT_DROP_DATABASE,	/* name: the database (after IF EXISTS) */
	STMT_ALTER_DATABASE,	/* name: the database */
	STMT_ALTER_SYSTEM,
	STMT_DO,		/* DO and CALL run code the classifier cannot see into */
	STMT_CALL,
	STMT_KIND_COUNT
} stmt_kind;

enum {
	/* CREATE [OR REPLACE] [LOCAL|GLOBAL] TEMP|TEMPORARY ..., a CREATE that
	 * names pg_temp.x, SELECT ... INTO [LOCAL|GLOBAL] TEMP[ORARY] [TABLE] x
	 * (not INSERT/MERGE INTO temp: there "temp" is a table's name). */
	STMT_F_TEMP_OBJECT = 1,
	/* A call of pg_advisory_lock, pg_advisory_lock_shared,
	 * pg_try_advisory_lock or pg_try_advisory_lock_shared anywhere in the
	 * statement: the name (unquoted in any case, or quoted exactly in lower
	 * case, with any schema before it) followed by '('. The _xact_ forms
	 * are released at transaction end and do not count. */
	STMT_F_ADVISORY_LOCK = 2,
	/* pg_advisory_unlock, pg_advisory_unlock_shared, pg_advisory_unlock_all */
	STMT_F_ADVISORY_UNLOCK = 4,
	STMT_F_WITH_HOLD = 8, /* DECLARE ... WITH HOLD ... FOR */
	/* The statement runs to the end of the input inside a string, quoted
	 * identifier, comment or BEGIN ATOMIC body that never closes: the
	 * server will refuse the whole query string with a syntax error, so
	 * none of its statements will run. */
	STMT_F_UNTERMINATED = 16,
	STMT_F_AND_CHAIN = 32,	       /* COMMIT/END/ROLLBACK/ABORT ... AND CHAIN (not AND NO CHAIN) */
	STMT_F_SET_CONFIG = 64,	       /* a call of set_config( anywhere, as for the advisory locks */
	STMT_F_SESSION_DEFAULTS = 128, /* SET SESSION CHARACTERISTICS AS TRANSACTION */
	STMT_F_ALL = 256,	       /* DEALLOCATE [PREPARE] ALL, CLOSE ALL, UNLISTEN * */
};

typedef struct stmt_info {
	stmt_kind kind;
	uint32_t flags;
	/* The statement from the start of its first token to the end of its
	 * last: no ';', no whitespace or comments around it (comments inside
	 * stay). An unterminated statement runs to the end of the input. */
	const char *start;
	size_t len;
	/*
	 * SET / SET LOCAL / RESET: the parameter as written, e.g. `work_mem`,
	 * `"Work_Mem"`, `myext . "X"`, or the keywords that name it
	 * (`TIME ZONE`); stmt_param_name() gives the name the server uses.
	 * SAVEPOINT / RELEASE / ROLLBACK TO: the savepoint; PREPARE, EXECUTE,
	 * DEALLOCATE: the prepared statement (or `ALL`); DECLARE, CLOSE, FETCH,
	 * MOVE: the cursor (or `ALL`); LISTEN, UNLISTEN, NOTIFY: the channel
	 * (`*` for UNLISTEN *); PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED:
	 * the gid literal with its quotes. Identifiers are as written: an
	 * unquoted one is case-insensitive, a quoted one exact.
	 */
	const char *name;
	size_t name_len;
	/* SET forms that name the parameter with keywords: the parameter they
	 * set (a static string): "timezone" (TIME ZONE), "client_encoding"
	 * (NAMES), "search_path" (SCHEMA), "role" (ROLE),
	 * "session_authorization" (SESSION AUTHORIZATION), "xmloption" (XML
	 * OPTION), "transaction_isolation" (RESET TRANSACTION ISOLATION LEVEL).
	 * NULL when name is the parameter itself. */
	const char *param;
	/*
	 * SET / SET LOCAL: the value exactly as written after TO or '=' to the
	 * end of the statement (`DEFAULT` stays the text DEFAULT; several
	 * values keep their commas); the text after TIME ZONE, NAMES, SCHEMA,
	 * ROLE, SESSION AUTHORIZATION, XML OPTION; for `SET x FROM CURRENT` the
	 * text `FROM CURRENT`. Empty (NULL, 0) for SET NAMES alone.
	 * SET TRANSACTION: the modes after TRANSACTION.
	 */
	const char *value;
	size_t value_len;
} stmt_info;

/*
 * Split a simple-Query string into statements and classify each; the
 * first max go to out[]. Returns how many statements there are, which is
 * how many results (CommandComplete or the like) the server sends back
 * if no statement fails.
 *
 * As in the server, empty statements (';' with nothing but whitespace or
 * comments before it) are dropped: "SELECT 1;;SELECT 2;" is two. A query
 * string with no statement at all ("", ";;", "-- hi") is one STMT_EMPTY
 * with start = sql, len = 0: the server answers it with EmptyQueryResponse.
 * So the result is never 0.
 *
 * A ';' separates statements except inside parentheses (CREATE RULE ... DO
 * (a; b)) and inside a CREATE FUNCTION/PROCEDURE ... BEGIN ATOMIC ... END
 * body, where the server's grammar reads it as part of the statement.
 *
 * Statements of the query string after one that is STMT_F_UNTERMINATED do
 * not exist, so that one is always the last.
 */
size_t stmt_classify(const char *sql, size_t len, stmt_info *out, size_t max);

enum {
	/* standard_conforming_strings is off: '...' takes backslash escapes
	 * like E'...'. A gateway follows the server's ParameterStatus. */
	STMT_OPT_BACKSLASH_QUOTES = 1,
};

/* stmt_classify with STMT_OPT_* options. */
size_t stmt_classify_opts(const char *sql, size_t len, unsigned opts, stmt_info *out, size_t max);

/*
 * The parameter name of a SET/SET LOCAL/RESET the way the server looks it
 * up: s->param if set, else s->name with unquoted parts lower-cased (ASCII
 * A-Z only, as the server does in multibyte encodings), quoted parts
 * unquoted ("" -> ") and comments and spaces around dots dropped.
 * (U&"..." parts are not decoded; no NAMEDATALEN truncation.)
 * Writes at most cap - 1 bytes and a NUL when cap > 0; returns the full
 * length, like snprintf. 0 when the statement has no name.
 */
size_t stmt_param_name(const stmt_info *s, char *buf, size_t cap);

/*
 * The database a CREATE, DROP or ALTER DATABASE needs no other session in
 * (else the server refuses it with 55006, "... is being accessed by other
 * users"): CREATE's template (TEMPLATE [=] name, else "template1"), the
 * database dropped or altered (whatever the ALTER: only RENAME TO and SET
 * TABLESPACE need it alone). The name as the server looks it up: unquoted
 * lower-cased (ASCII A-Z), quoted unquoted ("" -> "), a string literal's
 * text.
 */
typedef enum stmt_db_need {
	STMT_DB_NONE,	 /* not such a statement */
	STMT_DB_NAMED,	 /* the name is in buf */
	STMT_DB_UNKNOWN, /* such a statement, but the name cannot be read here
			  * (U&"...", an escape string, longer than cap - 1...) */
} stmt_db_need;
stmt_db_need stmt_exclusive_database(const stmt_info *s, char *buf, size_t cap);

/* "SET", "BEGIN", ...: the kind's name, for logs and tests. */
const char *stmt_kind_name(stmt_kind kind);

/* ---- The lexer (grammar/sql_lexer.rl), used by stmt.c; exposed for tests
 * and fuzzing. */

typedef enum stmt_tok_type {
	STMT_TOK_IDENT,	  /* keyword or unquoted identifier */
	STMT_TOK_QIDENT,  /* "..." or U&"..." */
	STMT_TOK_STRING,  /* '...', E'...', U&'...' (with continuations), $tag$...$tag$ */
	STMT_TOK_NUMBER,
	STMT_TOK_PARAM,	  /* $1 */
	STMT_TOK_OP,	  /* operator characters, cut the way the server cuts them */
	STMT_TOK_PUNCT,	  /* one of ( ) [ ] , . : */
	STMT_TOK_SEMI,	  /* ; */
	STMT_TOK_COMMENT, /* -- to end of line, or a (nested) block comment */
	STMT_TOK_OTHER,	  /* a byte no rule wants (a lone $, a backslash, ...) */
} stmt_tok_type;

typedef struct stmt_tok {
	stmt_tok_type type;
	bool unterminated; /* a string/quoted identifier/comment the input ends inside */
	const char *s;	   /* [s, e): the token's text, quotes and prefix included */
	const char *e;
} stmt_tok;

typedef void (*stmt_tok_fn)(void *arg, const stmt_tok *tok);

/* Call fn for every token of sql in order (whitespace is not a token). The
 * tokens cover the input but for whitespace; at most the last one is
 * unterminated. opts: STMT_OPT_*. */
void stmt_lex(const char *sql, size_t len, unsigned opts, stmt_tok_fn fn, void *arg);

#endif
