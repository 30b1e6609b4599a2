/*
 * A session's prepared statements (a chained hash table on the name) and
 * the portals bound from them (a short list: clients use one or two).
 */
#include "gateway/prepared.h"

#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

static uint64_t next_uid = 0;

prep_stmt *prep_new(const char *name, size_t name_len, const uint8_t *key, size_t key_len)
{
	prep_stmt *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->name = malloc(name_len + 1);
	uint8_t *k = malloc(key_len ? key_len : 1);
	if (!s->name || !k) {
		free(s->name);
		free(k);
		free(s);
		return NULL;
	}
	memcpy(s->name, name, name_len);
	s->name[name_len] = '\0';
	s->name_len = name_len;
	memcpy(k, key, key_len);
	s->key.bytes = k;
	s->key.len = (uint32_t)key_len;
	s->epoch = stmtcache_schema_epoch();
	s->key.hash = stmt_key_hash(k, key_len);
	s->uid = __atomic_add_fetch(&next_uid, 1, __ATOMIC_RELAXED);
	s->refs = 1;
	return s;
}

void prep_unref(prep_stmt *s)
{
	if (!s || --s->refs > 0)
		return;
	if (s->effect) {
		free(s->effect->name);
		free(s->effect->text);
		free(s->effect);
	}
	free((void *)s->key.bytes);
	free(s->name);
	free(s);
}

static uint64_t name_hash(const char *name, size_t len)
{
	return pgw_hash(name, len);
}

prep_stmt *prep_find(const prep_table *t, const char *name, size_t len)
{
	if (!t->nbuckets)
		return NULL;
	for (prep_stmt *s = t->buckets[name_hash(name, len) & (t->nbuckets - 1)]; s; s = s->chain)
		if (s->name_len == len && memcmp(s->name, name, len) == 0)
			return s;
	return NULL;
}

static int grow(prep_table *t)
{
	uint32_t n = t->nbuckets ? t->nbuckets * 2 : 16;
	prep_stmt **b = calloc(n, sizeof *b);
	if (!b)
		return -1;
	for (uint32_t i = 0; i < t->nbuckets; i++) {
		prep_stmt *s = t->buckets[i];
		while (s) {
			prep_stmt *next = s->chain;
			prep_stmt **slot = &b[name_hash(s->name, s->name_len) & (n - 1)];
			s->chain = *slot;
			*slot = s;
			s = next;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
	return 0;
}

int prep_insert(prep_table *t, prep_stmt *s)
{
	if (t->count >= t->nbuckets && grow(t) != 0)
		return -1;
	prep_stmt **slot = &t->buckets[name_hash(s->name, s->name_len) & (t->nbuckets - 1)];
	s->chain = *slot;
	*slot = prep_ref(s);
	t->count++;
	return 0;
}

prep_stmt *prep_remove(prep_table *t, const char *name, size_t len)
{
	if (!t->nbuckets)
		return NULL;
	prep_stmt **slot = &t->buckets[name_hash(name, len) & (t->nbuckets - 1)];
	for (; *slot; slot = &(*slot)->chain) {
		prep_stmt *s = *slot;
		if (s->name_len == len && memcmp(s->name, name, len) == 0) {
			*slot = s->chain;
			s->chain = NULL;
			t->count--;
			return s;
		}
	}
	return NULL;
}

void prep_set_unnamed(prep_table *t, prep_stmt *s)
{
	prep_stmt *old = t->unnamed;
	t->unnamed = prep_ref(s);
	prep_unref(old);
}

static char **sql_find(const prep_table *t, const char *name, size_t len)
{
	for (uint32_t i = 0; i < t->nsql; i++)
		if (strlen(t->sql[i]) == len && memcmp(t->sql[i], name, len) == 0)
			return &t->sql[i];
	return NULL;
}

void prep_sql_add(prep_table *t, const char *name, size_t len)
{
	if (sql_find(t, name, len))
		return;
	if (t->nsql == t->cap_sql) {
		uint32_t cap = t->cap_sql ? t->cap_sql * 2 : 4;
		char **n = realloc(t->sql, cap * sizeof *n);
		if (!n)
			return; /* the server still refuses the name, later */
		t->sql = n;
		t->cap_sql = cap;
	}
	char *copy = strndup(name, len);
	if (copy)
		t->sql[t->nsql++] = copy;
}

void prep_sql_remove(prep_table *t, const char *name, size_t len)
{
	char **at = sql_find(t, name, len);
	if (!at)
		return;
	free(*at);
	*at = t->sql[--t->nsql];
}

bool prep_sql_has(const prep_table *t, const char *name, size_t len)
{
	return sql_find(t, name, len) != NULL;
}

void prep_clear_named(prep_table *t)
{
	while (t->nsql)
		free(t->sql[--t->nsql]);
	for (uint32_t i = 0; i < t->nbuckets; i++) {
		prep_stmt *s = t->buckets[i];
		while (s) {
			prep_stmt *next = s->chain;
			s->chain = NULL;
			prep_unref(s);
			s = next;
		}
		t->buckets[i] = NULL;
	}
	t->count = 0;
}

static prep_portal *portal_find(const prep_table *t, const char *name, size_t len)
{
	for (uint32_t i = 0; i < t->nportals; i++) {
		prep_portal *p = &t->portals[i];
		if (strlen(p->name) == len && memcmp(p->name, name, len) == 0)
			return p;
	}
	return NULL;
}

void prep_portal_set(prep_table *t, const char *name, size_t len, prep_stmt *s, uint32_t batch)
{
	prep_portal *p = portal_find(t, name, len);
	if (!p) {
		if (!s)
			return;
		if (t->nportals == t->cap_portals) {
			uint32_t cap = t->cap_portals ? t->cap_portals * 2 : 4;
			prep_portal *np = realloc(t->portals, cap * sizeof *np);
			if (!np)
				return; /* untracked: its Execute changes nothing we follow */
			t->portals = np;
			t->cap_portals = cap;
		}
		char *n = strndup(name, len);
		if (!n)
			return;
		p = &t->portals[t->nportals++];
		p->name = n;
		p->stmt = NULL;
	}
	prep_stmt *old = p->stmt;
	p->stmt = prep_ref(s);
	p->batch = batch;
	prep_unref(old);
}

prep_stmt *prep_portal_get(const prep_table *t, const char *name, size_t len)
{
	prep_portal *p = portal_find(t, name, len);
	return p ? p->stmt : NULL;
}

uint32_t prep_portal_batch(const prep_table *t, const char *name, size_t len)
{
	prep_portal *p = portal_find(t, name, len);
	return p ? p->batch : 0;
}

void prep_portal_drop(prep_table *t, const char *name, size_t len)
{
	prep_portal *p = portal_find(t, name, len);
	if (!p)
		return;
	prep_unref(p->stmt);
	free(p->name);
	*p = t->portals[--t->nportals];
}

void prep_portal_clear(prep_table *t)
{
	/* The unnamed portal's slot is kept: most clients use nothing else,
	 * and this runs after every transaction. */
	uint32_t kept = 0;
	for (uint32_t i = 0; i < t->nportals; i++) {
		prep_portal *p = &t->portals[i];
		prep_unref(p->stmt);
		p->stmt = NULL;
		if (p->name[0] == '\0' && kept == 0)
			t->portals[kept++] = *p;
		else
			free(p->name);
	}
	t->nportals = kept;
}

void prep_free(prep_table *t)
{
	prep_clear_named(t);
	for (uint32_t i = 0; i < t->nportals; i++) {
		prep_unref(t->portals[i].stmt);
		free(t->portals[i].name);
	}
	t->nportals = 0;
	free(t->buckets);
	t->buckets = NULL;
	t->nbuckets = 0;
	prep_set_unnamed(t, NULL);
	free(t->portals);
	t->portals = NULL;
	t->cap_portals = 0;
	free(t->sql);
	t->sql = NULL;
	t->cap_sql = 0;
}
