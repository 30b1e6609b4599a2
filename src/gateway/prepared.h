/*
 * A session's prepared statements and portals as the client named them.
 * The statements live here, not on a server connection: extended.c
 * prepares them on whichever connection serves the session (see
 * pooler/stmtcache.h). Portals are tracked only to know which statement
 * an Execute runs; they themselves live on the server, for as long as
 * the transaction that holds the connection.
 */
#ifndef PGW_PREPARED_H
#define PGW_PREPARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pooler/session.h"
#include "pooler/stmtcache.h"

typedef struct prep_stmt {
	char *name; /* "" for the unnamed statement */
	size_t name_len;
	stmt_key key; /* bytes owned */
	uint64_t uid; /* unique in the process: who owns a server's unnamed statement */
	uint64_t epoch; /* the schema epoch of its Parse (see stmtcache_schema_epoch) */
	int refs;
	stmt_effect *effect; /* what running it changes in the session, or NULL */
	/* EXECUTE name, EXPLAIN ... EXECUTE name: where in the query the name
	 * of the statement it runs is (ref_len 0: it runs none). */
	uint32_t ref_at, ref_len;
	struct prep_stmt *chain;
} prep_stmt;

typedef struct prep_portal {
	char *name;
	prep_stmt *stmt;
	uint32_t batch; /* the batch (Syncs sent before it) its Bind went in */
} prep_portal;

typedef struct prep_table {
	prep_stmt **buckets;
	uint32_t nbuckets, count;
	prep_stmt *unnamed;
	prep_portal *portals;
	uint32_t nportals, cap_portals;
	/* Names SQL's PREPARE took on the server connection (which the
	 * session holds on to): PostgreSQL's one name space for both. */
	char **sql;
	uint32_t nsql, cap_sql;
} prep_table;

/* A statement with one reference (the caller's); NULL without memory. */
prep_stmt *prep_new(const char *name, size_t name_len, const uint8_t *key, size_t key_len);
static inline prep_stmt *prep_ref(prep_stmt *s)
{
	if (s)
		s->refs++;
	return s;
}
void prep_unref(prep_stmt *s);

prep_stmt *prep_find(const prep_table *t, const char *name, size_t len);
/* The table takes a reference. -1 without memory. */
int prep_insert(prep_table *t, prep_stmt *s);
/* Out of the table; the table's reference passes to the caller. */
prep_stmt *prep_remove(prep_table *t, const char *name, size_t len);
/* The unnamed statement, replaced (the table takes a reference; NULL: none). */
void prep_set_unnamed(prep_table *t, prep_stmt *s);
/* DEALLOCATE ALL: the named statements go (SQL's too). */
void prep_clear_named(prep_table *t);
void prep_sql_add(prep_table *t, const char *name, size_t len);
void prep_sql_remove(prep_table *t, const char *name, size_t len);
bool prep_sql_has(const prep_table *t, const char *name, size_t len);

void prep_portal_set(prep_table *t, const char *name, size_t len, prep_stmt *s, uint32_t batch);
prep_stmt *prep_portal_get(const prep_table *t, const char *name, size_t len);
/* The batch the portal was bound in (see prep_portal). */
uint32_t prep_portal_batch(const prep_table *t, const char *name, size_t len);
void prep_portal_drop(prep_table *t, const char *name, size_t len);
/* The transaction ended: its portals went with it. */
void prep_portal_clear(prep_table *t);

void prep_free(prep_table *t);

#endif
