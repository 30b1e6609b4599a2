/*
 * The prepared statements a server connection holds for the gateway's
 * sessions, keyed by what PostgreSQL parses (query text and parameter
 * types), so every session that prepares the same query shares one server
 * statement. Bounded: the least recently used one goes first.
 *
 * Server statements are named STMTCACHE_PREFIX + a number unique on the
 * connection; a client cannot reach them by name (see extended.c).
 */
#ifndef PGW_STMTCACHE_H
#define PGW_STMTCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STMTCACHE_PREFIX "_pgw_"
#define STMTCACHE_NAME_MAX 24

/* The key: a Parse body from the query string on (query, NUL, parameter
 * type count and types), exactly as the client sent it. */
typedef struct stmt_key {
	const uint8_t *bytes;
	uint32_t len;
	uint64_t hash;
} stmt_key;

typedef struct stmtcache_entry {
	uint64_t hash;
	uint32_t id;
	bool ready;	/* the server said ParseComplete */
	uint64_t epoch; /* stmtcache_schema_epoch() when it was made */
	uint32_t key_len;
	uint8_t *key;
	struct stmtcache_entry *chain;	     /* same bucket */
	struct stmtcache_entry *older, *newer; /* recency */
} stmtcache_entry;

typedef struct stmtcache {
	stmtcache_entry **buckets;
	uint32_t nbuckets; /* a power of two, or 0 before first use */
	uint32_t count;
	uint32_t next_id;
	stmtcache_entry *oldest, *newest;
} stmtcache;

uint64_t stmt_key_hash(const uint8_t *bytes, size_t len);

void stmtcache_free(stmtcache *c);
/* The server dropped every statement (DISCARD ALL, DEALLOCATE ALL). */
void stmtcache_clear(stmtcache *c);
/* A hit becomes the most recently used. */
stmtcache_entry *stmtcache_find(stmtcache *c, const stmt_key *k);
/* A new entry, not yet ready; NULL without memory. */
stmtcache_entry *stmtcache_add(stmtcache *c, const stmt_key *k);
stmtcache_entry *stmtcache_find_id(stmtcache *c, uint32_t id);
void stmtcache_remove(stmtcache *c, stmtcache_entry *e);
/* Whether a statement must stay for now (a caller's open portal uses it). */
typedef bool stmtcache_busy_fn(const stmtcache_entry *e, void *arg);
/* The least recently used ready entry that busy (if given) lets go: the
 * one to evict; NULL if none. */
stmtcache_entry *stmtcache_victim(stmtcache *c, stmtcache_busy_fn *busy, void *arg);
/*
 * A server statement's result columns are fixed when it is prepared:
 * after a schema change (ALTER TABLE, a table dropped and made again, a
 * temporary table of another shape) PostgreSQL refuses it with 0A000
 * "cached plan must not change result type", where a client that prepares
 * the query afresh gets the new shape. So a client statement parsed in a
 * later schema epoch than the server statement (a process-wide count
 * bumped whenever a statement that may change the schema completes, see
 * stmtcache_tag_changes_schema, or a transaction that ran one ends) gets
 * a fresh one, while a client statement as old as the server's keeps
 * failing, as it would on PostgreSQL.
 */
void stmtcache_schema_changed(void);
uint64_t stmtcache_schema_epoch(void);
/* Does a CommandComplete tag name a statement that may change what a
 * query's result columns are (DDL, DISCARD, DO, CALL)? */
bool stmtcache_tag_changes_schema(const char *tag);

/* "_pgw_<id>" into buf (STMTCACHE_NAME_MAX); returns its length. */
size_t stmtcache_name(uint32_t id, char *buf);
/* The id in a server statement name of ours, or false if it is not one. */
bool stmtcache_parse_name(const char *name, size_t len, uint32_t *id);

#endif
