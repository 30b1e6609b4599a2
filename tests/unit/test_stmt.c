/*
 * The statement classifier: every SET/RESET/transaction form it reads, the
 * lexer traps (a keyword inside a string, comment or quoted identifier), the
 * flags, unterminated input, and large inputs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stmt.h"

#define MAXS 64
static stmt_info st[MAXS];

static bool test_inside(const char *p, size_t n, const char *lo, const char *hi)
{
	return p != NULL && p >= lo && p <= hi && n <= (size_t)(hi - p);
}

/* What every result must keep, whatever the input. */
static void test_check_invariants(int line, const char *sql, size_t len, size_t n)
{
	const char *prev_end = sql;
	if (n == 0)
		fail_msg("line %d: no result", line);
	for (size_t i = 0; i < n && i < MAXS; i++) {
		const stmt_info *s = &st[i];
		if (!test_inside(s->start, s->len, prev_end, sql + len))
			fail_msg("line %d: statement %zu outside the input or out of order", line, i);
		prev_end = s->start + s->len;
		if (s->name_len > 0 && !test_inside(s->name, s->name_len, s->start, s->start + s->len))
			fail_msg("line %d: statement %zu: name outside the statement", line, i);
		if (s->value_len > 0 && !test_inside(s->value, s->value_len, s->start, s->start + s->len))
			fail_msg("line %d: statement %zu: value outside the statement", line, i);
		if ((s->flags & STMT_F_UNTERMINATED) && i + 1 != n)
			fail_msg("line %d: an unterminated statement %zu is not the last", line, i);
	}
}

static size_t test_run_opts(int line, const char *sql, size_t len, unsigned opts)
{
	memset(st, 0, sizeof st);
	size_t n = stmt_classify_opts(sql, len, opts, st, MAXS);
	test_check_invariants(line, sql, len, n);
	return n;
}

#define run(sql) test_run_opts(__LINE__, sql, strlen(sql), 0)

/* sql is one statement of this kind with exactly these flags. */
#define one(sql, kind, flags) test_one(__LINE__, sql, 0, kind, flags)
#define one_opts(sql, opts, kind, flags) test_one(__LINE__, sql, opts, kind, flags)
static void test_one(int line, const char *sql, unsigned opts, stmt_kind kind, uint32_t flags)
{
	size_t n = test_run_opts(line, sql, strlen(sql), opts);
	if (n != 1 || st[0].kind != kind || st[0].flags != flags)
		fail_msg("line %d: [%s]: %zu statement(s), the first %s flags %u; want one %s flags %u", line, sql, n,
			 stmt_kind_name(st[0].kind), (unsigned)st[0].flags, stmt_kind_name(kind), (unsigned)flags);
}

/* sql is these statements, in order, each with no flags unless given. */
#define kinds(sql, ...)                                                                                  \
	test_kinds(__LINE__, sql, 0, (const stmt_kind[]){__VA_ARGS__},                                   \
		   sizeof((const stmt_kind[]){__VA_ARGS__}) / sizeof(stmt_kind))
#define kinds_opts(sql, opts, ...)                                                                       \
	test_kinds(__LINE__, sql, opts, (const stmt_kind[]){__VA_ARGS__},                                \
		   sizeof((const stmt_kind[]){__VA_ARGS__}) / sizeof(stmt_kind))
static void test_kinds(int line, const char *sql, unsigned opts, const stmt_kind *want, size_t nwant)
{
	size_t n = test_run_opts(line, sql, strlen(sql), opts);
	if (n != nwant)
		fail_msg("line %d: [%s]: %zu statements, want %zu", line, sql, n, nwant);
	for (size_t i = 0; i < n; i++)
		if (st[i].kind != want[i])
			fail_msg("line %d: [%s]: statement %zu is %s, want %s", line, sql, i,
				 stmt_kind_name(st[i].kind), stmt_kind_name(want[i]));
}

static void test_slice(int line, const char *what, const char *p, size_t n, const char *want)
{
	if (want == NULL) {
		if (n != 0)
			fail_msg("line %d: %s is [%.*s], want none", line, what, (int)n, p);
		return;
	}
	if (p == NULL || n != strlen(want) || memcmp(p, want, n) != 0)
		fail_msg("line %d: %s is [%.*s], want [%s]", line, what, (int)n, p != NULL ? p : "", want);
}

#define text_is(i, want) test_slice(__LINE__, "text", st[i].start, st[i].len, want)
#define name_is(i, want) test_slice(__LINE__, "name", st[i].name, st[i].name_len, want)
#define value_is(i, want) test_slice(__LINE__, "value", st[i].value, st[i].value_len, want)
#define param_is(i, want) test_param(__LINE__, &st[i], want)
static void test_param(int line, const stmt_info *s, const char *want)
{
	char buf[256];
	size_t n = stmt_param_name(s, buf, sizeof buf);
	if (n != strlen(want) || strcmp(buf, want) != 0)
		fail_msg("line %d: parameter is [%s] (%zu), want [%s]", line, buf, n, want);
}

/* SET name/param/value in one go. */
#define set_is(sql, kind, name, param, value)                                                            \
	do {                                                                                             \
		one(sql, kind, 0);                                                                       \
		name_is(0, name);                                                                        \
		param_is(0, param);                                                                      \
		value_is(0, value);                                                                      \
	} while (0)

/* ---- SET, RESET */

static void test_set_generic(void **state)
{
	(void)state;
	set_is("SET x = 1", STMT_SET, "x", "x", "1");
	set_is("SET x TO 'a'", STMT_SET, "x", "x", "'a'");
	set_is("SET SESSION x = 1", STMT_SET, "x", "x", "1");
	set_is("SET LOCAL x = 1", STMT_SET_LOCAL, "x", "x", "1");
	set_is("set local statement_timeout to 0", STMT_SET_LOCAL, "statement_timeout", "statement_timeout", "0");
	set_is("SET search_path = a, \"B\", public", STMT_SET, "search_path", "search_path", "a, \"B\", public");
	set_is("SET search_path TO DEFAULT", STMT_SET, "search_path", "search_path", "DEFAULT");
	set_is("set Work_Mem to '64MB'", STMT_SET, "Work_Mem", "work_mem", "'64MB'");
	set_is("SET \"Quoted\"\"Name\" = 1", STMT_SET, "\"Quoted\"\"Name\"", "Quoted\"Name", "1");
	set_is("SET myext . \"Foo\" /* c */ = on", STMT_SET, "myext . \"Foo\"", "myext.Foo", "on");
	set_is("SET MyExt.Opt TO 'x'", STMT_SET, "MyExt.Opt", "myext.opt", "'x'");
	/* "=-1" is "=" then "-1", as the server reads it */
	set_is("SET x=-1", STMT_SET, "x", "x", "-1");
	set_is("SET x = 1 /* c */  -- c\n", STMT_SET, "x", "x", "1");
	set_is("SET x = /* c */ 'a' || 'b' ", STMT_SET, "x", "x", "'a' || 'b'");
	set_is("SET x = $$a;b$$", STMT_SET, "x", "x", "$$a;b$$");
	/* the keyword forms' parameters, set the generic way */
	set_is("SET role = 'r'", STMT_SET, "role", "role", "'r'");
	set_is("SET timezone TO 'UTC'", STMT_SET, "timezone", "timezone", "'UTC'");
	/* FROM CURRENT keeps its words as the value */
	set_is("SET search_path FROM CURRENT", STMT_SET, "search_path", "search_path", "FROM CURRENT");
	assert_null(st[0].param);

	kinds("SET x = 1; SET LOCAL y TO 2", STMT_SET, STMT_SET_LOCAL);
	name_is(0, "x");
	value_is(0, "1");
	name_is(1, "y");
	value_is(1, "2");
}

static void test_set_keyword_forms(void **state)
{
	(void)state;
	set_is("SET TIME ZONE 'UTC'", STMT_SET, "TIME ZONE", "timezone", "'UTC'");
	assert_string_equal(st[0].param, "timezone");
	set_is("SET TIME ZONE LOCAL", STMT_SET, "TIME ZONE", "timezone", "LOCAL");
	set_is("SET TIME ZONE DEFAULT", STMT_SET, "TIME ZONE", "timezone", "DEFAULT");
	set_is("set time /* x */ zone interval '+02:00' hour to minute", STMT_SET, "time /* x */ zone", "timezone",
	       "interval '+02:00' hour to minute");
	set_is("SET LOCAL TIME ZONE 'Europe/Paris'", STMT_SET_LOCAL, "TIME ZONE", "timezone", "'Europe/Paris'");
	set_is("SET SESSION TIME ZONE -8", STMT_SET, "TIME ZONE", "timezone", "-8");
	set_is("SET NAMES 'UTF8'", STMT_SET, "NAMES", "client_encoding", "'UTF8'");
	set_is("SET NAMES", STMT_SET, "NAMES", "client_encoding", NULL);
	set_is("SET SCHEMA 'x'", STMT_SET, "SCHEMA", "search_path", "'x'");
	set_is("SET ROLE r", STMT_SET, "ROLE", "role", "r");
	set_is("SET ROLE NONE", STMT_SET, "ROLE", "role", "NONE");
	set_is("SET LOCAL ROLE \"R\"", STMT_SET_LOCAL, "ROLE", "role", "\"R\"");
	set_is("SET SESSION AUTHORIZATION u", STMT_SET, "SESSION AUTHORIZATION", "session_authorization", "u");
	set_is("SET SESSION AUTHORIZATION DEFAULT", STMT_SET, "SESSION AUTHORIZATION", "session_authorization",
	       "DEFAULT");
	set_is("SET SESSION SESSION AUTHORIZATION 'u'", STMT_SET, "SESSION AUTHORIZATION", "session_authorization",
	       "'u'");
	set_is("SET LOCAL SESSION AUTHORIZATION u", STMT_SET_LOCAL, "SESSION AUTHORIZATION", "session_authorization",
	       "u");
	set_is("SET XML OPTION DOCUMENT", STMT_SET, "XML OPTION", "xmloption", "DOCUMENT");
}

static void test_set_transaction(void **state)
{
	(void)state;
	one("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", STMT_SET_TRANSACTION, 0);
	value_is(0, "ISOLATION LEVEL SERIALIZABLE");
	name_is(0, NULL);
	one("set transaction read only, deferrable", STMT_SET_TRANSACTION, 0);
	one("SET LOCAL TRANSACTION READ WRITE", STMT_SET_TRANSACTION, 0);
	one("SET SESSION TRANSACTION READ WRITE", STMT_SET_TRANSACTION, 0);
	one("SET TRANSACTION SNAPSHOT '00000003-0000001B-1'", STMT_SET_TRANSACTION, 0);
	one("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ", STMT_SET_TRANSACTION,
	    STMT_F_SESSION_DEFAULTS);
	value_is(0, "ISOLATION LEVEL REPEATABLE READ");
	one("SET CONSTRAINTS ALL DEFERRED", STMT_SET_CONSTRAINTS, 0);
}

static void test_reset(void **state)
{
	(void)state;
	one("RESET x", STMT_RESET, 0);
	name_is(0, "x");
	param_is(0, "x");
	one("reset Search_Path", STMT_RESET, 0);
	param_is(0, "search_path");
	one("RESET \"Foo\"", STMT_RESET, 0);
	param_is(0, "Foo");
	one("RESET myext.x", STMT_RESET, 0);
	param_is(0, "myext.x");
	one("RESET ALL", STMT_RESET_ALL, 0);
	name_is(0, NULL);
	one("reset all", STMT_RESET_ALL, 0);
	one("RESET TIME ZONE", STMT_RESET, 0);
	name_is(0, "TIME ZONE");
	param_is(0, "timezone");
	one("RESET SESSION AUTHORIZATION", STMT_RESET, 0);
	param_is(0, "session_authorization");
	one("RESET ROLE", STMT_RESET, 0);
	param_is(0, "role");
	one("RESET TRANSACTION ISOLATION LEVEL", STMT_RESET, 0);
	name_is(0, "TRANSACTION ISOLATION LEVEL");
	param_is(0, "transaction_isolation");
	one("RESET", STMT_RESET, 0);
	name_is(0, NULL);
	param_is(0, "");
}

static void test_param_name_buffer(void **state)
{
	(void)state;
	char buf[4];
	one("SET Work_Mem = 1", STMT_SET, 0);
	assert_int_equal(stmt_param_name(&st[0], buf, sizeof buf), 8);
	assert_string_equal(buf, "wor");
	assert_int_equal(stmt_param_name(&st[0], NULL, 0), 8);
	one("SET TIME ZONE 'UTC'", STMT_SET, 0);
	assert_int_equal(stmt_param_name(&st[0], buf, 1), 8);
	assert_string_equal(buf, "");
	/* an unterminated quoted name still comes out */
	one("SET \"abc", STMT_SET, STMT_F_UNTERMINATED);
	param_is(0, "abc");
}

/* ---- transactions */

static void test_transactions(void **state)
{
	(void)state;
	one("BEGIN", STMT_BEGIN, 0);
	one("BEGIN ISOLATION LEVEL SERIALIZABLE", STMT_BEGIN, 0);
	one("begin transaction read only", STMT_BEGIN, 0);
	one("BEGIN WORK", STMT_BEGIN, 0);
	one("START TRANSACTION", STMT_BEGIN, 0);
	one("start transaction isolation level read committed, read write", STMT_BEGIN, 0);
	one("START", STMT_OTHER, 0);
	one("COMMIT", STMT_COMMIT, 0);
	one("COMMIT WORK", STMT_COMMIT, 0);
	one("END", STMT_COMMIT, 0);
	one("end transaction", STMT_COMMIT, 0);
	one("COMMIT AND CHAIN", STMT_COMMIT, STMT_F_AND_CHAIN);
	one("COMMIT WORK AND CHAIN", STMT_COMMIT, STMT_F_AND_CHAIN);
	one("COMMIT AND NO CHAIN", STMT_COMMIT, 0);
	one("END TRANSACTION AND CHAIN", STMT_COMMIT, STMT_F_AND_CHAIN);
	one("ROLLBACK", STMT_ROLLBACK, 0);
	one("ROLLBACK WORK", STMT_ROLLBACK, 0);
	one("ABORT", STMT_ROLLBACK, 0);
	one("ROLLBACK AND CHAIN", STMT_ROLLBACK, STMT_F_AND_CHAIN);
	one("abort transaction and chain", STMT_ROLLBACK, STMT_F_AND_CHAIN);
	one("ROLLBACK TO SAVEPOINT s", STMT_SAVEPOINT_OP, 0);
	name_is(0, "s");
	one("ROLLBACK TO s", STMT_SAVEPOINT_OP, 0);
	name_is(0, "s");
	one("rollback work to savepoint \"S\"", STMT_SAVEPOINT_OP, 0);
	name_is(0, "\"S\"");
	one("SAVEPOINT s", STMT_SAVEPOINT_OP, 0);
	name_is(0, "s");
	one("RELEASE SAVEPOINT s", STMT_SAVEPOINT_OP, 0);
	name_is(0, "s");
	one("RELEASE s", STMT_SAVEPOINT_OP, 0);
	name_is(0, "s");
	one("SAVEPOINT", STMT_SAVEPOINT_OP, 0);
	name_is(0, NULL);
	one("PREPARE TRANSACTION 'x'", STMT_PREPARE_TXN, 0);
	name_is(0, "'x'");
	one("COMMIT PREPARED 'x'", STMT_COMMIT_PREPARED, 0);
	name_is(0, "'x'");
	one("ROLLBACK PREPARED 'x'", STMT_ROLLBACK_PREPARED, 0);
	name_is(0, "'x'");
	one("rollback prepared 'it''s'", STMT_ROLLBACK_PREPARED, 0);
	name_is(0, "'it''s'");
}

static void test_leading_text(void **state)
{
	(void)state;
	one("  \n\t-- SET x = 1\n /* c */ BEGIN", STMT_BEGIN, 0);
	text_is(0, "BEGIN");
	one("/*comment*/BEGIN", STMT_BEGIN, 0);
	text_is(0, "BEGIN");
	one("/* a /* nested */ b */commit", STMT_COMMIT, 0);
	one("bEgIn", STMT_BEGIN, 0);
	one("CoMmIt", STMT_COMMIT, 0);
	one("sEt LoCaL x = 1", STMT_SET_LOCAL, 0);
	one("\v\f\r\nROLLBACK\r\n", STMT_ROLLBACK, 0);
	text_is(0, "ROLLBACK");

	kinds("  SELECT 1 /* c */ ; \n BEGIN  -- x\n", STMT_OTHER, STMT_BEGIN);
	text_is(0, "SELECT 1");
	text_is(1, "BEGIN");
	kinds("SELECT /* inside */ 1;", STMT_OTHER);
	text_is(0, "SELECT /* inside */ 1");
}

/* ---- the other session-state statements */

static void test_session_kinds(void **state)
{
	(void)state;
	one("LISTEN ch", STMT_LISTEN, 0);
	name_is(0, "ch");
	one("listen \"Ch\"", STMT_LISTEN, 0);
	name_is(0, "\"Ch\"");
	param_is(0, "Ch");
	one("UNLISTEN ch", STMT_UNLISTEN, 0);
	name_is(0, "ch");
	one("UNLISTEN *", STMT_UNLISTEN, STMT_F_ALL);
	name_is(0, "*");
	one("NOTIFY ch, 'payload;'", STMT_NOTIFY, 0);
	name_is(0, "ch");
	one("PREPARE p(int) AS SELECT $1", STMT_PREPARE, 0);
	name_is(0, "p");
	one("PREPARE transaction AS SELECT 1", STMT_PREPARE, 0);
	name_is(0, "transaction");
	one("PREPARE transaction (int) AS SELECT $1", STMT_PREPARE, 0);
	one("EXECUTE p(1)", STMT_EXECUTE, 0);
	name_is(0, "p");
	one("DEALLOCATE p", STMT_DEALLOCATE, 0);
	name_is(0, "p");
	one("DEALLOCATE PREPARE p", STMT_DEALLOCATE, 0);
	name_is(0, "p");
	one("DEALLOCATE prepare", STMT_DEALLOCATE, 0);
	name_is(0, "prepare");
	one("DEALLOCATE ALL", STMT_DEALLOCATE, STMT_F_ALL);
	one("deallocate prepare all", STMT_DEALLOCATE, STMT_F_ALL);
	one("DEALLOCATE \"all\"", STMT_DEALLOCATE, 0);
	one("DECLARE c CURSOR WITH HOLD FOR SELECT 1", STMT_DECLARE_CURSOR, STMT_F_WITH_HOLD);
	name_is(0, "c");
	one("declare c binary no scroll cursor with hold for select 1", STMT_DECLARE_CURSOR, STMT_F_WITH_HOLD);
	one("DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1", STMT_DECLARE_CURSOR, 0);
	one("DECLARE c CURSOR FOR WITH hold AS (SELECT 1) SELECT * FROM hold", STMT_DECLARE_CURSOR, 0);
	one("CLOSE c", STMT_CLOSE_CURSOR, 0);
	name_is(0, "c");
	one("CLOSE ALL", STMT_CLOSE_CURSOR, STMT_F_ALL);
	one("FETCH 10 FROM c", STMT_FETCH, 0);
	name_is(0, "c");
	one("fetch c", STMT_FETCH, 0);
	name_is(0, "c");
	one("MOVE FORWARD ALL IN c", STMT_FETCH, 0);
	name_is(0, "c");
	one("DISCARD ALL", STMT_DISCARD_ALL, 0);
	one("DISCARD PLANS", STMT_DISCARD_OTHER, 0);
	one("DISCARD SEQUENCES", STMT_DISCARD_OTHER, 0);
	one("discard temp", STMT_DISCARD_OTHER, 0);
	one("COPY t FROM STDIN", STMT_COPY, 0);
	one("LOAD 'auto_explain'", STMT_LOAD, 0);
	one("VACUUM ANALYZE t", STMT_VACUUM, 0);
	one("CREATE DATABASE d", STMT_CREATE_DATABASE, 0);
	one("DROP DATABASE d", STMT_DROP_DATABASE, 0);
	one("ALTER SYSTEM SET work_mem = '1GB'", STMT_ALTER_SYSTEM, 0);
	one("DO $$BEGIN PERFORM 1; END$$", STMT_DO, 0);
	one("CALL p(1)", STMT_CALL, 0);
	one("SELECT 1", STMT_OTHER, 0);
	one("WITH x AS (SELECT 1) SELECT * FROM x", STMT_OTHER, 0);
	one("(SELECT 1)", STMT_OTHER, 0);
	one("SHOW work_mem", STMT_OTHER, 0);
	one("CREATE TABLE t(a int)", STMT_OTHER, 0);
	one("ALTER ROLE r SET work_mem = 1", STMT_OTHER, 0);
	one("EXPLAIN BEGIN", STMT_OTHER, 0);
	one("\"BEGIN\"", STMT_OTHER, 0);
}

/* ---- flags */

static void test_advisory_locks(void **state)
{
	(void)state;
	one("select pg_advisory_lock(1)", STMT_OTHER, STMT_F_ADVISORY_LOCK);
	one("SELECT PG_ADVISORY_LOCK (1)", STMT_OTHER, STMT_F_ADVISORY_LOCK);
	one("SELECT pg_advisory_lock /* c */ (1)", STMT_OTHER, STMT_F_ADVISORY_LOCK);
	one("SELECT pg_advisory_lock_shared(1, 2)", STMT_OTHER, STMT_F_ADVISORY_LOCK);
	one("SELECT pg_try_advisory_lock(1)", STMT_OTHER, STMT_F_ADVISORY_LOCK);
	one("SELECT x FROM t WHERE pg_try_advisory_lock_shared(t.id)", STMT_OTHER, STMT_F_ADVISORY_LOCK);
	one("SELECT pg_catalog.pg_advisory_lock(1)", STMT_OTHER, STMT_F_ADVISORY_LOCK);
	one("SELECT \"pg_advisory_lock\"(1)", STMT_OTHER, STMT_F_ADVISORY_LOCK);
	one("SELECT pg_catalog.\"pg_advisory_lock\"(1)", STMT_OTHER, STMT_F_ADVISORY_LOCK);
	/* a quoted name is exact: this is another function */
	one("SELECT \"PG_ADVISORY_LOCK\"(1)", STMT_OTHER, 0);
	one("SELECT pg_advisory_xact_lock(1)", STMT_OTHER, 0);
	one("SELECT pg_try_advisory_xact_lock_shared(1)", STMT_OTHER, 0);
	one("SELECT pg_advisory_lock", STMT_OTHER, 0);
	one("SELECT 'pg_advisory_lock(1)'", STMT_OTHER, 0);
	one("SELECT 1 -- pg_advisory_lock(1)", STMT_OTHER, 0);
	one("SELECT pg_advisory_lockx(1)", STMT_OTHER, 0);
	one("SELECT pg_advisory_unlock(1)", STMT_OTHER, STMT_F_ADVISORY_UNLOCK);
	one("SELECT pg_advisory_unlock_shared(1)", STMT_OTHER, STMT_F_ADVISORY_UNLOCK);
	one("SELECT pg_advisory_unlock_all()", STMT_OTHER, STMT_F_ADVISORY_UNLOCK);
	one("SELECT pg_advisory_lock(1), pg_advisory_unlock(2)", STMT_OTHER,
	    STMT_F_ADVISORY_LOCK | STMT_F_ADVISORY_UNLOCK);
	one("SELECT set_config('search_path', 'x', false)", STMT_OTHER, STMT_F_SET_CONFIG);
	one("SELECT pg_catalog.SET_CONFIG('a', 'b', true)", STMT_OTHER, STMT_F_SET_CONFIG);
	one("SELECT set_config", STMT_OTHER, 0);
	/* flags belong to their own statement */
	kinds("SELECT pg_advisory_lock(1); SELECT 1", STMT_OTHER, STMT_OTHER);
	assert_int_equal(st[0].flags, STMT_F_ADVISORY_LOCK);
	assert_int_equal(st[1].flags, 0);
}

static void test_temp_objects(void **state)
{
	(void)state;
	one("CREATE TEMP TABLE t(a int)", STMT_OTHER, STMT_F_TEMP_OBJECT);
	one("create temporary table t(a int)", STMT_OTHER, STMT_F_TEMP_OBJECT);
	one("CREATE GLOBAL TEMPORARY TABLE t(a int)", STMT_OTHER, STMT_F_TEMP_OBJECT);
	one("CREATE LOCAL TEMP TABLE t(a int)", STMT_OTHER, STMT_F_TEMP_OBJECT);
	one("CREATE TEMP VIEW v AS SELECT 1", STMT_OTHER, STMT_F_TEMP_OBJECT);
	one("CREATE OR REPLACE TEMPORARY VIEW v AS SELECT 1", STMT_OTHER, STMT_F_TEMP_OBJECT);
	one("CREATE TEMP SEQUENCE s", STMT_OTHER, STMT_F_TEMP_OBJECT);
	one("CREATE TEMP TABLE t AS SELECT 1", STMT_OTHER, STMT_F_TEMP_OBJECT);
	one("CREATE TABLE pg_temp.t(a int)", STMT_OTHER, STMT_F_TEMP_OBJECT);
	one("CREATE TABLE temp(a int)", STMT_OTHER, 0);
	one("CREATE TABLE temporary (a int)", STMT_OTHER, 0);
	one("CREATE UNLOGGED TABLE t(a int)", STMT_OTHER, 0);
	one("CREATE TABLE t(temp int)", STMT_OTHER, 0);
	one("SELECT * INTO TEMP t FROM x", STMT_OTHER, STMT_F_TEMP_OBJECT);
	one("SELECT * INTO TEMPORARY TABLE t FROM x", STMT_OTHER, STMT_F_TEMP_OBJECT);
	one("select 1 as a into temp \"T\"", STMT_OTHER, STMT_F_TEMP_OBJECT);
	one("SELECT 1 INTO LOCAL TEMP t", STMT_OTHER, STMT_F_TEMP_OBJECT);
	one("SELECT 1 INTO pg_temp.t", STMT_OTHER, STMT_F_TEMP_OBJECT);
	/* a table called temp */
	one("SELECT * INTO temp FROM x", STMT_OTHER, 0);
	one("SELECT 1 INTO temp", STMT_OTHER, 0);
	one("INSERT INTO temp VALUES (1)", STMT_OTHER, 0);
	one("INSERT INTO temp (a) SELECT 1", STMT_OTHER, 0);
	one("INSERT INTO temp SELECT 1", STMT_OTHER, 0);
	one("MERGE INTO temp t USING s ON true WHEN MATCHED THEN DELETE", STMT_OTHER, 0);
	one("SELECT 'CREATE TEMP TABLE t'", STMT_OTHER, 0);
	kinds("SELECT 1 INTO temp; SELECT 2", STMT_OTHER, STMT_OTHER);
	assert_int_equal(st[0].flags, 0);
}

/* ---- the lexer traps */

static void test_traps(void **state)
{
	(void)state;
	one("SELECT 'BEGIN; SET x=1'", STMT_OTHER, 0);
	one("SELECT 'it''s; BEGIN'", STMT_OTHER, 0);
	one("SELECT $$;COMMIT;$$", STMT_OTHER, 0);
	one("SELECT $a$ $$ ; $a$", STMT_OTHER, 0);
	one("SELECT $a$ $b$ ; $b$ $a$", STMT_OTHER, 0);
	one("SELECT $a$ $ab$ ; $A$ ; $a$", STMT_OTHER, 0); /* tags are case-sensitive */
	/* "$$" is not the end; its second $ starts the real end tag */
	kinds("SELECT $a$ x$$a$; BEGIN", STMT_OTHER, STMT_BEGIN);
	one("SELECT \"set\" FROM t", STMT_OTHER, 0);
	one("SELECT \"a\"\";BEGIN\" FROM t", STMT_OTHER, 0);
	one("SELECT U&\"x;y\" FROM t", STMT_OTHER, 0);
	one("SELECT U&'x;y' UESCAPE '!'", STMT_OTHER, 0);
	one("-- SET x = 1\nSELECT 1", STMT_OTHER, 0);
	text_is(0, "SELECT 1");
	one("/* nested /* SET */ x */ SELECT 1", STMT_OTHER, 0);
	text_is(0, "SELECT 1");
	one("/* a /* b */ ; BEGIN */ SELECT 1", STMT_OTHER, 0);
	one("/*/ BEGIN; */ SELECT 1", STMT_OTHER, 0);
	one("/**/SELECT 1/***/", STMT_OTHER, 0);
	/* the escaped quote does not end the string */
	one("SELECT E'\\';SET x=1'", STMT_OTHER, 0);
	one("SELECT e'\\\\\\';SET x=1'", STMT_OTHER, 0);
	/* an escaped backslash then the closing quote */
	kinds("SELECT E'\\\\';SET x=1", STMT_OTHER, STMT_SET);
	/* no E: the backslash is a character (standard_conforming_strings) */
	kinds("SELECT 'a\\';BEGIN;--'", STMT_OTHER, STMT_BEGIN);
	kinds("SELECT tablee'\\';BEGIN;--'", STMT_OTHER, STMT_BEGIN);
	/* ... unless standard_conforming_strings is off */
	one_opts("SELECT 'a\\';BEGIN;--'", STMT_OPT_BACKSLASH_QUOTES, STMT_OTHER, 0);
	kinds_opts("SELECT 'a\\\\';BEGIN", STMT_OPT_BACKSLASH_QUOTES, STMT_OTHER, STMT_BEGIN);
	one("SELECT $1", STMT_OTHER, 0);
	kinds("SELECT $1;BEGIN", STMT_OTHER, STMT_BEGIN);
	kinds("SELECT $1$;BEGIN", STMT_OTHER, STMT_BEGIN); /* $1 then a lone $ */
	/* $ inside an identifier starts nothing */
	kinds("SELECT a$b$c; BEGIN; SELECT $b$", STMT_OTHER, STMT_BEGIN, STMT_OTHER);
	assert_int_equal(st[2].flags, STMT_F_UNTERMINATED);
	kinds("SELECT 1$$;$$; BEGIN", STMT_OTHER, STMT_BEGIN);
	/* a comment inside an operator ends it: "+" then a comment */
	kinds("SELECT 1 +/* ; */ 2; BEGIN", STMT_OTHER, STMT_BEGIN);
	kinds("SELECT 1 +-- ; BEGIN\n; COMMIT", STMT_OTHER, STMT_COMMIT);
	kinds("SELECT '{}'::jsonb->>--x\n'a'; BEGIN", STMT_OTHER, STMT_BEGIN);
	one("SELECT 1 */ 2", STMT_OTHER, 0);
	/* non-ASCII identifiers */
	kinds("SELECT \xc3\xb1$$x FROM t; BEGIN", STMT_OTHER, STMT_BEGIN);
	kinds("SELECT $\xc3\xb1$;$\xc3\xb1$; BEGIN", STMT_OTHER, STMT_BEGIN);
}

/* SQL's string continuation: quote strings separated by whitespace with a
 * newline are one string, in the first one's mode. */
static void test_string_continuation(void **state)
{
	(void)state;
	one("SELECT E'a'\n'\\';BEGIN;--'", STMT_OTHER, 0);
	one("SELECT E'a'  \t\r\n  \n'\\';BEGIN;--'", STMT_OTHER, 0);
	one("SELECT E'a' -- c\n'\\';BEGIN;--'", STMT_OTHER, 0);
	one("SELECT E'a'\n-- c\n'\\';BEGIN;--'", STMT_OTHER, 0);
	/* no newline: no continuation, the second string is standard */
	kinds("SELECT E'a' '\\';BEGIN;--'", STMT_OTHER, STMT_BEGIN);
	kinds("SELECT E'a' /* c */\n'\\';BEGIN;--'", STMT_OTHER, STMT_BEGIN);
	/* the whole continued string is one token; what follows is read again */
	kinds("SELECT 'a'\n'b'\n; BEGIN", STMT_OTHER, STMT_BEGIN);
	text_is(0, "SELECT 'a'\n'b'");
	kinds("SELECT 'a'\n  -x; BEGIN", STMT_OTHER, STMT_BEGIN);
	one("SELECT 'a'\n", STMT_OTHER, 0);
	text_is(0, "SELECT 'a'");
	one("SELECT 'a'", STMT_OTHER, 0);
	one("SELECT E'a'\n'b", STMT_OTHER, STMT_F_UNTERMINATED);
}

static void test_statement_split(void **state)
{
	(void)state;
	kinds("SELECT 1; SELECT 2;", STMT_OTHER, STMT_OTHER);
	text_is(0, "SELECT 1");
	text_is(1, "SELECT 2");
	kinds("SELECT 1;;SELECT 2", STMT_OTHER, STMT_OTHER);
	kinds("BEGIN;SET LOCAL x=1;COMMIT", STMT_BEGIN, STMT_SET_LOCAL, STMT_COMMIT);
	kinds(";;", STMT_EMPTY);
	text_is(0, "");
	kinds("", STMT_EMPTY);
	kinds(" ; /* c */ ; -- x", STMT_EMPTY);
	kinds("-- only a comment\n", STMT_EMPTY);
	/* ; inside parentheses: CREATE RULE's action list */
	kinds("CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2)); BEGIN",
	      STMT_OTHER, STMT_BEGIN);
	/* ; inside BEGIN ATOMIC ... END */
	kinds("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; "
	      "SELECT CASE WHEN true THEN 1 ELSE 2 END; END; BEGIN",
	      STMT_OTHER, STMT_BEGIN);
	kinds("create or replace procedure p() begin atomic insert into t values (1); end; end", STMT_OTHER,
	      STMT_COMMIT);
	/* not a body: a parameter called begin of type atomic, a column alias */
	kinds("CREATE FUNCTION f(begin atomic) RETURNS int AS 'select 1' LANGUAGE sql; END", STMT_OTHER,
	      STMT_COMMIT);
	kinds("SELECT begin atomic FROM t; END", STMT_OTHER, STMT_COMMIT);
	/* out[] shorter than the query */
	memset(st, 0xa5, sizeof st);
	assert_int_equal(stmt_classify("SELECT 1; BEGIN; COMMIT", 23, st, 2), 3);
	assert_int_equal(st[1].kind, STMT_BEGIN);
	unsigned char untouched[sizeof st[2]];
	memset(untouched, 0xa5, sizeof untouched);
	assert_memory_equal(&st[2], untouched, sizeof untouched);
	assert_int_equal(stmt_classify("SELECT 1; BEGIN; COMMIT", 23, NULL, 0), 3);
	assert_int_equal(stmt_classify(";", 1, NULL, 5), 1);
	/* a NUL byte is just a byte */
	assert_int_equal(test_run_opts(__LINE__, "SELECT \0 1; BEGIN", 17, 0), 2);
	assert_int_equal(st[1].kind, STMT_BEGIN);
}

static void test_unterminated(void **state)
{
	(void)state;
	one("SELECT 'abc", STMT_OTHER, STMT_F_UNTERMINATED);
	text_is(0, "SELECT 'abc");
	one("SELECT 'abc'';", STMT_OTHER, STMT_F_UNTERMINATED);
	one("/* ...", STMT_OTHER, STMT_F_UNTERMINATED);
	text_is(0, "/* ...");
	one("/* a /* b */ c", STMT_OTHER, STMT_F_UNTERMINATED);
	one("SELECT 1 /* abc; BEGIN", STMT_OTHER, STMT_F_UNTERMINATED);
	text_is(0, "SELECT 1 /* abc; BEGIN");
	one("SELECT \"abc", STMT_OTHER, STMT_F_UNTERMINATED);
	one("SELECT $$abc", STMT_OTHER, STMT_F_UNTERMINATED);
	one("SELECT $a$abc$a", STMT_OTHER, STMT_F_UNTERMINATED);
	one("SELECT E'abc\\", STMT_OTHER, STMT_F_UNTERMINATED);
	one("SELECT E'abc\\'", STMT_OTHER, STMT_F_UNTERMINATED);
	one("SELECT U&'abc", STMT_OTHER, STMT_F_UNTERMINATED);
	one("SELECT (1; BEGIN", STMT_OTHER, STMT_F_UNTERMINATED);
	one("CREATE PROCEDURE p() BEGIN ATOMIC SELECT 1;", STMT_OTHER, STMT_F_UNTERMINATED);
	one("SET x = 'abc", STMT_SET, STMT_F_UNTERMINATED);
	name_is(0, "x");
	value_is(0, "'abc");
	one("BEGIN; --", STMT_BEGIN, 0);
	kinds("SELECT 1; SELECT 'abc", STMT_OTHER, STMT_OTHER);
	assert_int_equal(st[0].flags, 0);
	assert_int_equal(st[1].flags, STMT_F_UNTERMINATED);
	kinds("BEGIN; /* x", STMT_BEGIN, STMT_OTHER);
	assert_int_equal(st[1].flags, STMT_F_UNTERMINATED);
	text_is(1, "/* x");
	/* a lone quote or dollar quote at the very end */
	one("'", STMT_OTHER, STMT_F_UNTERMINATED);
	one("\"", STMT_OTHER, STMT_F_UNTERMINATED);
	one("$$", STMT_OTHER, STMT_F_UNTERMINATED);
	one("/*", STMT_OTHER, STMT_F_UNTERMINATED);
	one("E'", STMT_OTHER, STMT_F_UNTERMINATED);
	one("''", STMT_OTHER, 0);
	one("$", STMT_OTHER, 0);
	one("-", STMT_OTHER, 0);
	one("/", STMT_OTHER, 0);
}

/* ---- size */

static void test_large_query(void **state)
{
	(void)state;
	static const char *const parts[] = {
		"SELECT 'a;b'",
		"BEGIN",
		"SET LOCAL work_mem = '4MB'",
		"SELECT $$ ; $$ /* ; */, \"x;y\"",
		"COMMIT",
		"SELECT pg_advisory_lock(1)",
	};
	static const stmt_kind want[] = {STMT_OTHER, STMT_BEGIN, STMT_SET_LOCAL, STMT_OTHER, STMT_COMMIT, STMT_OTHER};
	size_t cap = 120 * 1024, len = 0, count = 0;
	char *sql = malloc(cap);
	assert_non_null(sql);
	while (len < 100 * 1024) {
		const char *p = parts[count % 6];
		size_t n = strlen(p);
		memcpy(sql + len, p, n);
		len += n;
		sql[len++] = ';';
		sql[len++] = count % 7 == 0 ? '\n' : ' ';
		count++;
	}
	size_t max = count + 1;
	stmt_info *out = calloc(max, sizeof *out);
	assert_non_null(out);
	assert_int_equal(stmt_classify(sql, len, out, max), count);
	for (size_t i = 0; i < count; i++) {
		assert_int_equal(out[i].kind, want[i % 6]);
		assert_int_equal(out[i].len, strlen(parts[i % 6]));
		assert_memory_equal(out[i].start, parts[i % 6], out[i].len);
		assert_int_equal(out[i].flags, i % 6 == 5 ? STMT_F_ADVISORY_LOCK : 0);
	}
	free(out);

	/* one statement: a 100 KB string full of ';' */
	memcpy(sql, "SELECT '", 8);
	for (len = 8; len < 100 * 1024; len++)
		sql[len] = len % 3 == 0 ? ';' : 'x';
	sql[len++] = '\'';
	assert_int_equal(test_run_opts(__LINE__, sql, len, 0), 1);
	assert_int_equal(st[0].len, len);
	/* and unterminated */
	assert_int_equal(test_run_opts(__LINE__, sql, len - 1, 0), 1);
	assert_int_equal(st[0].flags, STMT_F_UNTERMINATED);
	free(sql);
}

/* Long runs the lexer must get through in linear time. */
static void test_long_runs(void **state)
{
	(void)state;
	size_t n = 1 << 20, len;
	char *sql = malloc(n + 64);
	assert_non_null(sql);
	/* =+-+-...: every '+'/'-' an operator of its own */
	len = (size_t)sprintf(sql, "SELECT 1 =");
	for (size_t i = 0; i < n; i++)
		sql[len++] = i % 2 ? '-' : '+';
	len += (size_t)sprintf(sql + len, "1; BEGIN");
	assert_int_equal(test_run_opts(__LINE__, sql, len, 0), 2);
	assert_int_equal(st[1].kind, STMT_BEGIN);
	/* a string followed by newlines and no continuation */
	len = (size_t)sprintf(sql, "SELECT 'a'");
	for (size_t i = 0; i < n; i++)
		sql[len++] = i % 2 ? '\n' : ' ';
	len += (size_t)sprintf(sql + len, "; BEGIN");
	assert_int_equal(test_run_opts(__LINE__, sql, len, 0), 2);
	/* a dollar quote full of other tags */
	len = (size_t)sprintf(sql, "SELECT $a$");
	for (size_t i = 0; i + 3 < n; i += 3)
		len += (size_t)sprintf(sql + len, "$b$");
	len += (size_t)sprintf(sql + len, "$a$; BEGIN");
	assert_int_equal(test_run_opts(__LINE__, sql, len, 0), 2);
	/* $tag without its closing $, many times */
	len = (size_t)sprintf(sql, "SELECT ");
	for (size_t i = 0; i + 4 < n; i += 4)
		len += (size_t)sprintf(sql + len, "$ab ");
	len += (size_t)sprintf(sql + len, "; BEGIN");
	assert_int_equal(test_run_opts(__LINE__, sql, len, 0), 2);
	free(sql);
}

static void test_long_dollar_tag(void **state)
{
	(void)state;
	size_t tag = 20000, len = 0;
	char *sql = malloc(4 * tag + 200);
	assert_non_null(sql);
	len += (size_t)sprintf(sql + len, "SELECT $");
	memset(sql + len, 't', tag);
	len += tag;
	/* inside: the tag one character short, and one character long */
	len += (size_t)sprintf(sql + len, "$ ; COMMIT; $");
	memset(sql + len, 't', tag - 1);
	len += tag - 1;
	len += (size_t)sprintf(sql + len, "$ ; $");
	memset(sql + len, 't', tag + 1);
	len += tag + 1;
	len += (size_t)sprintf(sql + len, "$ ; $");
	memset(sql + len, 't', tag);
	len += tag;
	len += (size_t)sprintf(sql + len, "$; BEGIN");
	assert_int_equal(test_run_opts(__LINE__, sql, len, 0), 2);
	assert_int_equal(st[0].kind, STMT_OTHER);
	assert_int_equal(st[0].flags, 0);
	assert_int_equal(st[1].kind, STMT_BEGIN);
	/* cut before the end tag: unterminated */
	assert_int_equal(test_run_opts(__LINE__, sql, len - 9, 0), 1);
	assert_int_equal(st[0].flags, STMT_F_UNTERMINATED);
	free(sql);
}

/* ---- the lexer alone */

typedef struct test_toks {
	char out[512];
	size_t len;
} test_toks;

static void test_tok_collect(void *arg, const stmt_tok *t)
{
	static const char *const names[] = {"I", "Q", "S", "N", "P", "O", "U", ";", "C", "X"};
	test_toks *tt = arg;
	tt->len += (size_t)snprintf(tt->out + tt->len, sizeof tt->out - tt->len, "%s%s:%.*s|", names[t->type],
				    t->unterminated ? "!" : "", (int)(t->e - t->s), t->s);
}

#define toks_are(sql, want) test_toks_are(__LINE__, sql, want)
static void test_toks_are(int line, const char *sql, const char *want)
{
	test_toks tt;
	memset(&tt, 0, sizeof tt);
	stmt_lex(sql, strlen(sql), 0, test_tok_collect, &tt);
	if (strcmp(tt.out, want) != 0)
		fail_msg("line %d: [%s] lexes as %s, want %s", line, sql, tt.out, want);
}

static void test_lexer(void **state)
{
	(void)state;
	toks_are("SET x=-1", "I:SET|I:x|O:=|O:-|N:1|");
	toks_are("a<=>b !=-c @-d", "I:a|O:<=>|I:b|O:!=-|I:c|O:@-|I:d|");
	toks_are("1+/*c*/2", "N:1|O:+|C:/*c*/|N:2|");
	toks_are("a=+-+b", "I:a|O:=|O:+|O:-|O:+|I:b|");
	toks_are("a=+-+--c\nb", "I:a|O:=|O:+|O:-|O:+|C:--c|I:b|");
	toks_are("a?+-b", "I:a|O:?+-|I:b|");
	toks_are("x->>--y\nz", "I:x|O:->>|C:--y|I:z|");
	toks_are("f(a.b, $1)::int[]", "I:f|U:(|I:a|U:.|I:b|U:,|P:$1|U:)|U::|U::|I:int|U:[|U:]|");
	toks_are("1.5e10 .5 1e 0x1F 1_000", "N:1.5e10|N:.5|N:1|I:e|N:0x1F|N:1_000|");
	toks_are("E'\\'' U&'a' e'x''y'", "S:E'\\''|S:U&'a'|S:e'x''y'|");
	toks_are("U&\"a\"\"b\" \"c\"", "Q:U&\"a\"\"b\"|Q:\"c\"|");
	toks_are("$a$x$b$y$a$z", "S:$a$x$b$y$a$|I:z|");
	toks_are("$ \\ $1", "X:$|X:\\|P:$1|");
	toks_are("'a' 'b\n", "S:'a'|S!:'b\n|");
	toks_are("/* /* */", "C!:/* /* */|");
}

/* ---- the database a database statement needs alone */

#define db_is(sql, kind, need, want) test_db(__LINE__, sql, kind, need, want)
static void test_db(int line, const char *sql, stmt_kind kind, stmt_db_need need, const char *want)
{
	char buf[64] = "";
	test_one(line, sql, 0, kind, 0);
	stmt_db_need got = stmt_exclusive_database(&st[0], buf, sizeof buf);
	if (got != need || (need == STMT_DB_NAMED && strcmp(buf, want) != 0))
		fail_msg("line %d: [%s]: %d [%s], want %d [%s]", line, sql, (int)got, buf, (int)need,
			 want ? want : "");
}

static void test_database_names(void **state)
{
	(void)state;
	db_is("CREATE DATABASE d", STMT_CREATE_DATABASE, STMT_DB_NAMED, "template1");
	name_is(0, "d");
	db_is("create database d template template0", STMT_CREATE_DATABASE, STMT_DB_NAMED, "template0");
	db_is("CREATE DATABASE d WITH OWNER = r ENCODING 'UTF8' CONNECTION LIMIT = -1 TEMPLATE = \"My\"\"Db\"",
	      STMT_CREATE_DATABASE, STMT_DB_NAMED, "My\"Db");
	db_is("CREATE DATABASE d TEMPLATE 'Src''s'", STMT_CREATE_DATABASE, STMT_DB_NAMED, "Src's");
	db_is("CREATE DATABASE d TEMPLATE Src /* template x */", STMT_CREATE_DATABASE, STMT_DB_NAMED, "src");
	db_is("CREATE DATABASE d TEMPLATE DEFAULT", STMT_CREATE_DATABASE, STMT_DB_NAMED, "template1");
	db_is("CREATE DATABASE d OWNER template", STMT_CREATE_DATABASE, STMT_DB_NAMED, "template1");
	db_is("CREATE DATABASE \"template x\" OWNER r", STMT_CREATE_DATABASE, STMT_DB_NAMED, "template1");
	db_is("CREATE DATABASE d TEMPLATE U&\"d\\0061\"", STMT_CREATE_DATABASE, STMT_DB_UNKNOWN, NULL);
	db_is("CREATE DATABASE d TEMPLATE E'x'", STMT_CREATE_DATABASE, STMT_DB_UNKNOWN, NULL);
	db_is("CREATE DATABASE d TEMPLATE aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	      STMT_CREATE_DATABASE, STMT_DB_UNKNOWN, NULL);
	db_is("DROP DATABASE x", STMT_DROP_DATABASE, STMT_DB_NAMED, "x");
	db_is("drop database if exists \"X y\" with (force)", STMT_DROP_DATABASE, STMT_DB_NAMED, "X y");
	name_is(0, "\"X y\"");
	db_is("DROP DATABASE Mixed", STMT_DROP_DATABASE, STMT_DB_NAMED, "mixed");
	db_is("ALTER DATABASE x RENAME TO y", STMT_ALTER_DATABASE, STMT_DB_NAMED, "x");
	db_is("ALTER DATABASE \"x\" SET TABLESPACE t", STMT_ALTER_DATABASE, STMT_DB_NAMED, "x");
	one("ALTER DATABASE", STMT_ALTER_DATABASE, 0);
	char buf[64];
	assert_int_equal(stmt_exclusive_database(&st[0], buf, sizeof buf), STMT_DB_UNKNOWN);
	one("DROP TABLE x", STMT_OTHER, 0);
	assert_int_equal(stmt_exclusive_database(&st[0], buf, sizeof buf), STMT_DB_NONE);
}

static void test_kind_names(void **state)
{
	(void)state;
	for (int k = 0; k < STMT_KIND_COUNT; k++)
		assert_string_not_equal(stmt_kind_name((stmt_kind)k), "?");
	assert_string_equal(stmt_kind_name(STMT_SET_LOCAL), "SET_LOCAL");
	assert_string_equal(stmt_kind_name(STMT_KIND_COUNT), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_generic),
		cmocka_unit_test(test_set_keyword_forms),
		cmocka_unit_test(test_set_transaction),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_param_name_buffer),
		cmocka_unit_test(test_transactions),
		cmocka_unit_test(test_leading_text),
		cmocka_unit_test(test_session_kinds),
		cmocka_unit_test(test_advisory_locks),
		cmocka_unit_test(test_temp_objects),
		cmocka_unit_test(test_traps),
		cmocka_unit_test(test_string_continuation),
		cmocka_unit_test(test_statement_split),
		cmocka_unit_test(test_unterminated),
		cmocka_unit_test(test_large_query),
		cmocka_unit_test(test_long_runs),
		cmocka_unit_test(test_long_dollar_tag),
		cmocka_unit_test(test_lexer),
		cmocka_unit_test(test_database_names),
		cmocka_unit_test(test_kind_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
