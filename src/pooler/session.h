/*
 * A client's logical session settings under transaction pooling: the
 * parameters of its startup packet and the SET statements it ran, kept by
 * the gateway and replayed on whichever server connection serves it next.
 * Changes made inside a transaction count only once it commits.
 */
#ifndef PGW_SESSION_H
#define PGW_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct session_entry {
	char *name;  /* canonical (lower-case) parameter name */
	char *text;  /* startup: the value; SET: the whole statement */
	bool is_sql; /* text is a statement to replay, not a value to quote */
} session_entry;

typedef struct session_list {
	session_entry *items;
	size_t n, cap;
} session_list;

/* One change, in the order statements completed. */
typedef enum session_op_kind {
	SESSION_OP_SET,	      /* name, text: the statement */
	SESSION_OP_RESET,     /* name */
	SESSION_OP_RESET_ALL, /* RESET ALL, DISCARD ALL */
} session_op_kind;

/* A statement whose completion changes the session. */
typedef struct stmt_effect {
	uint16_t index; /* its place among the request's statements */
	uint16_t kind;	/* stmt_kind */
	uint32_t flags;
	char *name; /* SET/RESET: canonical parameter name */
	char *text; /* SET: the statement, for replay */
	size_t len;
	/* DEALLOCATE of a statement of the session's (name, len): the server
	 * statement that ran in its place, gone with it; 0: none. */
	uint32_t stmt_id;
} stmt_effect;

typedef struct session {
	session_list startup; /* from the startup packet; RESET goes back to these */
	session_list sets;    /* committed SETs, by name */
	session_list block;   /* ops of the open transaction block (kind in is_sql) */
	bool role_changed;    /* SET ROLE / SESSION AUTHORIZATION is in effect */
	uint64_t hash;	      /* of what a server connection must have; 0: nothing */
	bool stale;	      /* startup or sets changed since session_refresh */
	char *sync_sql;	      /* the statements that set a connection up so */
	size_t sync_len;
} session;

void session_init(session *s);
void session_free(session *s);
/* A startup packet parameter (or an options -c name=value). */
int session_add_startup(session *s, const char *name, const char *value);
/* Apply a completed change: inside a transaction block it waits for the
 * commit; outside, it takes effect now. */
int session_change(session *s, session_op_kind kind, const char *name, const char *stmt,
		   size_t stmt_len, bool in_block);
/* The open transaction block ended. */
void session_block_end(session *s, bool committed);
/* Recompute hash and sync_sql if anything changed (cheap otherwise). */
int session_refresh(session *s);
/*
 * A server connection whose settings hash differs from s->hash is set up
 * with the Query prefix + s->sync_sql.
 */
static inline bool session_needs_sync(const session *s, uint64_t have_hash)
{
	return have_hash != s->hash;
}
const char *session_sync_prefix(const session *s, bool have_role);
bool session_is_startup_param(const session *s, const char *name);

#endif
