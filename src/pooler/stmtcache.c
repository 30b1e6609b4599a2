/*
 * Per server connection cache of prepared statements: a chained hash
 * table on the Parse key and a recency list for eviction.
 */
#include "pooler/stmtcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

uint64_t stmt_key_hash(const uint8_t *bytes, size_t len)
{
	return pgw_hash(bytes, len);
}

static void unlink_recency(stmtcache *c, stmtcache_entry *e)
{
	if (e->older)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	e->older = e->newer = NULL;
}

static void link_newest(stmtcache *c, stmtcache_entry *e)
{
	e->older = c->newest;
	e->newer = NULL;
	if (c->newest)
		c->newest->newer = e;
	else
		c->oldest = e;
	c->newest = e;
}

void stmtcache_clear(stmtcache *c)
{
	stmtcache_entry *e = c->oldest;
	while (e) {
		stmtcache_entry *next = e->newer;
		free(e->key);
		free(e);
		e = next;
	}
	if (c->buckets)
		memset(c->buckets, 0, c->nbuckets * sizeof *c->buckets);
	c->oldest = c->newest = NULL;
	c->count = 0;
}

void stmtcache_free(stmtcache *c)
{
	stmtcache_clear(c);
	free(c->buckets);
	c->buckets = NULL;
	c->nbuckets = 0;
}

stmtcache_entry *stmtcache_find(stmtcache *c, const stmt_key *k)
{
	if (!c->nbuckets)
		return NULL;
	for (stmtcache_entry *e = c->buckets[k->hash & (c->nbuckets - 1)]; e; e = e->chain) {
		if (e->hash == k->hash && e->key_len == k->len && memcmp(e->key, k->bytes, k->len) == 0) {
			if (c->newest != e) {
				unlink_recency(c, e);
				link_newest(c, e);
			}
			return e;
		}
	}
	return NULL;
}

static int grow(stmtcache *c)
{
	uint32_t n = c->nbuckets ? c->nbuckets * 2 : 64;
	stmtcache_entry **b = calloc(n, sizeof *b);
	if (!b)
		return -1;
	for (stmtcache_entry *e = c->oldest; e; e = e->newer) {
		stmtcache_entry **slot = &b[e->hash & (n - 1)];
		e->chain = *slot;
		*slot = e;
	}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
	return 0;
}

stmtcache_entry *stmtcache_add(stmtcache *c, const stmt_key *k)
{
	if (c->count >= c->nbuckets && grow(c) != 0)
		return NULL;
	stmtcache_entry *e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	e->key = malloc(k->len ? k->len : 1);
	if (!e->key) {
		free(e);
		return NULL;
	}
	memcpy(e->key, k->bytes, k->len);
	e->key_len = k->len;
	e->hash = k->hash;
	e->id = ++c->next_id;
	e->epoch = stmtcache_schema_epoch();
	stmtcache_entry **slot = &c->buckets[e->hash & (c->nbuckets - 1)];
	e->chain = *slot;
	*slot = e;
	link_newest(c, e);
	c->count++;
	return e;
}

stmtcache_entry *stmtcache_find_id(stmtcache *c, uint32_t id)
{
	/* Rare (confirming or forgetting one Parse): a walk is fine. */
	for (stmtcache_entry *e = c->newest; e; e = e->older)
		if (e->id == id)
			return e;
	return NULL;
}

void stmtcache_remove(stmtcache *c, stmtcache_entry *e)
{
	stmtcache_entry **slot = &c->buckets[e->hash & (c->nbuckets - 1)];
	while (*slot != e)
		slot = &(*slot)->chain;
	*slot = e->chain;
	unlink_recency(c, e);
	c->count--;
	free(e->key);
	free(e);
}

stmtcache_entry *stmtcache_victim(stmtcache *c, stmtcache_busy_fn *busy, void *arg)
{
	for (stmtcache_entry *e = c->oldest; e; e = e->newer)
		if (e->ready && !(busy && busy(e, arg)))
			return e;
	return NULL;
}

static uint64_t schema_epoch;

void stmtcache_schema_changed(void)
{
	__atomic_add_fetch(&schema_epoch, 1, __ATOMIC_RELEASE);
}

uint64_t stmtcache_schema_epoch(void)
{
	return __atomic_load_n(&schema_epoch, __ATOMIC_ACQUIRE);
}

bool stmtcache_tag_changes_schema(const char *tag)
{
	static const char *const prefixes[] = {"CREATE ", "ALTER ", "DROP ", "DISCARD ",
					       "IMPORT FOREIGN SCHEMA"};
	for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
		if (strncmp(tag, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	/* Code that may run any of them. */
	return strcmp(tag, "DO") == 0 || strcmp(tag, "CALL") == 0;
}

size_t stmtcache_name(uint32_t id, char *buf)
{
	return (size_t)snprintf(buf, STMTCACHE_NAME_MAX, STMTCACHE_PREFIX "%u", id);
}

bool stmtcache_parse_name(const char *name, size_t len, uint32_t *id)
{
	size_t plen = sizeof STMTCACHE_PREFIX - 1;
	if (len <= plen || len > plen + 10 || memcmp(name, STMTCACHE_PREFIX, plen) != 0)
		return false;
	uint64_t v = 0;
	for (size_t i = plen; i < len; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	if (v == 0 || v > UINT32_MAX)
		return false;
	*id = (uint32_t)v;
	return true;
}
