/*
 * The prepared-statement books: a server connection's cache
 * (src/pooler/stmtcache.c: lookup by key, recency, eviction candidates,
 * ids and names) and a session's statements and portals
 * (src/gateway/prepared.c: names, references, the unnamed statement).
 * Run under ASan in CI, which also checks the reference counting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/prepared.h"
#include "pooler/stmtcache.h"

static stmt_key key_of(const char *q)
{
	/* A Parse body: query, NUL, no parameter types. */
	static _Thread_local uint8_t buf[8][256];
	static _Thread_local int next;
	uint8_t *b = buf[next++ % 8];
	size_t n = strlen(q);
	memcpy(b, q, n + 1);
	b[n + 1] = 0;
	b[n + 2] = 0;
	return (stmt_key){b, (uint32_t)(n + 3), stmt_key_hash(b, n + 3)};
}

static void test_cache_find_add_remove(void **state)
{
	(void)state;
	stmtcache c = {0};
	stmt_key a = key_of("SELECT 1"), b = key_of("SELECT 2");
	assert_null(stmtcache_find(&c, &a));
	stmtcache_entry *ea = stmtcache_add(&c, &a);
	stmtcache_entry *eb = stmtcache_add(&c, &b);
	assert_non_null(ea);
	assert_non_null(eb);
	assert_int_not_equal(ea->id, eb->id);
	assert_ptr_equal(stmtcache_find(&c, &a), ea);
	assert_ptr_equal(stmtcache_find_id(&c, eb->id), eb);
	/* The same text with other parameter types is another statement. */
	stmt_key typed = key_of("SELECT 1");
	((uint8_t *)typed.bytes)[typed.len - 1] = 1;
	typed.hash = stmt_key_hash(typed.bytes, typed.len);
	assert_null(stmtcache_find(&c, &typed));
	uint32_t last_id = eb->id;
	stmtcache_remove(&c, ea);
	assert_null(stmtcache_find(&c, &a));
	assert_int_equal(c.count, 1);
	stmtcache_clear(&c);
	assert_int_equal(c.count, 0);
	assert_null(stmtcache_find(&c, &b));
	/* Ids keep growing after a clear: a late answer for an old id
	 * never confirms a new statement. */
	stmtcache_entry *again = stmtcache_add(&c, &a);
	assert_true(again->id > last_id);
	stmtcache_free(&c);
}

static bool is_entry(const stmtcache_entry *e, void *arg)
{
	return e == arg;
}

static bool every_entry(const stmtcache_entry *e, void *arg)
{
	(void)e;
	(void)arg;
	return true;
}

static void test_cache_victim_is_least_recent_ready(void **state)
{
	(void)state;
	stmtcache c = {0};
	stmtcache_entry *e[4];
	char q[32];
	for (int i = 0; i < 4; i++) {
		snprintf(q, sizeof q, "SELECT %d", i);
		stmt_key k = key_of(q);
		e[i] = stmtcache_add(&c, &k);
		e[i]->ready = i != 0; /* the oldest is still being prepared */
	}
	assert_ptr_equal(stmtcache_victim(&c, NULL, NULL), e[1]);
	stmt_key k1 = key_of("SELECT 1");
	assert_ptr_equal(stmtcache_find(&c, &k1), e[1]); /* now the most recent */
	assert_ptr_equal(stmtcache_victim(&c, NULL, NULL), e[2]);
	/* A busy statement is passed over for the next least recent. */
	assert_ptr_equal(stmtcache_victim(&c, is_entry, e[2]), e[3]);
	assert_ptr_equal(stmtcache_victim(&c, every_entry, NULL), NULL);
	stmtcache_free(&c);
}

static void test_cache_many(void **state)
{
	(void)state;
	stmtcache c = {0};
	char q[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(q, sizeof q, "SELECT %d", i);
		stmt_key k = key_of(q);
		assert_non_null(stmtcache_add(&c, &k));
	}
	for (int i = 0; i < 5000; i += 7) {
		snprintf(q, sizeof q, "SELECT %d", i);
		stmt_key k = key_of(q);
		stmtcache_entry *e = stmtcache_find(&c, &k);
		assert_non_null(e);
		assert_int_equal(e->id, (uint32_t)i + 1);
	}
	assert_int_equal(c.count, 5000);
	stmtcache_free(&c);
}

static void test_cache_names(void **state)
{
	(void)state;
	char name[STMTCACHE_NAME_MAX];
	uint32_t id = 0;
	size_t n = stmtcache_name(4294967295u, name);
	assert_string_equal(name, "_pgw_4294967295");
	assert_true(stmtcache_parse_name(name, n, &id));
	assert_int_equal(id, 4294967295u);
	assert_false(stmtcache_parse_name("_pgw_0", 6, &id));
	assert_false(stmtcache_parse_name("_pgw_", 5, &id));
	assert_false(stmtcache_parse_name("_pgw_4294967296", 15, &id));
	assert_false(stmtcache_parse_name("_pgw_12a", 8, &id));
	assert_false(stmtcache_parse_name("pgw_12", 6, &id));
}

static void test_prep_statements(void **state)
{
	(void)state;
	prep_table t = {0};
	stmt_key k = key_of("SELECT $1");
	char name[32];
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof name, "s%d", i);
		prep_stmt *s = prep_new(name, strlen(name), k.bytes, k.len);
		assert_int_equal(prep_insert(&t, s), 0);
		prep_unref(s);
	}
	assert_int_equal(t.count, 100);
	prep_stmt *s42 = prep_find(&t, "s42", 3);
	assert_non_null(s42);
	assert_int_equal(s42->key.hash, k.hash);
	assert_null(prep_find(&t, "s4", 1)); /* a prefix is another name */
	/* Taken out, it lives on while a reference is held. */
	prep_stmt *out = prep_remove(&t, "s42", 3);
	assert_ptr_equal(out, s42);
	assert_null(prep_find(&t, "s42", 3));
	prep_portal_set(&t, "p", 1, out, 0);
	prep_unref(out);
	assert_string_equal(prep_portal_get(&t, "p", 1)->name, "s42");
	prep_clear_named(&t);
	assert_int_equal(t.count, 0);
	assert_null(prep_find(&t, "s1", 2));
	prep_free(&t);
}

static void test_prep_unnamed_and_portals(void **state)
{
	(void)state;
	prep_table t = {0};
	stmt_key k = key_of("SELECT 1");
	prep_stmt *u1 = prep_new("", 0, k.bytes, k.len);
	prep_stmt *u2 = prep_new("", 0, k.bytes, k.len);
	assert_true(u1->uid != u2->uid);
	prep_set_unnamed(&t, u1);
	prep_portal_set(&t, "", 0, u1, 0);
	prep_portal_set(&t, "c1", 2, u1, 0);
	prep_unref(u1);
	prep_set_unnamed(&t, u2); /* u1 lives on in its portals */
	prep_unref(u2);
	assert_ptr_equal(prep_portal_get(&t, "c1", 2)->key.hash, k.hash);
	prep_portal_drop(&t, "c1", 2);
	assert_null(prep_portal_get(&t, "c1", 2));
	prep_portal_set(&t, "c2", 2, t.unnamed, 0);
	prep_portal_clear(&t); /* the transaction ended */
	assert_null(prep_portal_get(&t, "", 0));
	assert_null(prep_portal_get(&t, "c2", 2));
	assert_int_equal(t.nportals, 1); /* the unnamed portal's slot stays */
	prep_portal_set(&t, "", 0, NULL, 0);
	prep_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cache_find_add_remove),
		cmocka_unit_test(test_cache_victim_is_least_recent_ready),
		cmocka_unit_test(test_cache_many),
		cmocka_unit_test(test_cache_names),
		cmocka_unit_test(test_prep_statements),
		cmocka_unit_test(test_prep_unnamed_and_portals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
