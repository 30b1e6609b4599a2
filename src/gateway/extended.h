/*
 * The extended query protocol between a client and the server connection
 * serving it. Prepared statements are the session's (prepared.h): each
 * Parse, Bind or Describe naming one is rewritten to the statement the
 * server connection holds for that query (pooler/stmtcache.h), prepared
 * there first when it is missing.
 *
 * Every message sent to the server is answered in order; a queue of what
 * each answer is for lets the gateway swallow the answers to its own
 * messages, put its own answers (a ParseComplete for a statement the
 * server already holds, a CloseComplete) in their place in the stream,
 * give errors the client's names back, and skip to the next Sync after an
 * error exactly as the server does.
 */
#ifndef PGW_EXTENDED_H
#define PGW_EXTENDED_H

#include "gateway/client.h"

/* A client's Parse, Bind, Describe, Execute, Close, Sync or Flush. */
client_step ext_client_message(client *cl, const pgw_msg *m);
/* The client ended a COPY (CopyDone, CopyFail) before the server started it:
 * the Syncs it sends later are answered. */
void ext_copy_ended_early(client *cl);
/*
 * A simple Query whose EXECUTE name, EXPLAIN ... EXECUTE name or
 * DEALLOCATE [PREPARE] name names a statement of the session: PostgreSQL
 * keeps SQL's and the protocol's statements under one name space, but the
 * server connection holds the session's under its own names. The names
 * are replaced by the server's (the lexer finds them; nothing else in the
 * text changes), prepared there first; the DEALLOCATEs become effects of
 * r that drop the session's statements as they complete.
 */
typedef struct ext_mapped {
	char *sql; /* the text to send (malloc'd) */
	size_t len;
	pend_alias *aliases; /* for the Query's errors */
	uint8_t naliases;
} ext_mapped;
/* False: the Query goes as it is. */
bool ext_map_query(client *cl, request *r, const char *sql, size_t len, ext_mapped *out);
/* A DEALLOCATE of ext_map_query's completed. */
void ext_deallocated(client *cl, const stmt_effect *e);

/* A Query or FunctionCall (request seq) went to the server; a Query that
 * drops prepared statements (DEALLOCATE, DISCARD ALL) holds back the
 * statement messages behind it until it is answered. mapped (or NULL):
 * its text's names, whose aliases it takes. */
void ext_expect_request(client *cl, bool function, uint32_t seq, bool drops_statements,
			ext_mapped *mapped);
/* Before the gateway answers a Query itself: true (the caller waits) while
 * answers to what the client sent before are outstanding. */
bool ext_wait_for_answers(client *cl);

/* The statement a query that is exactly one DEALLOCATE [PREPARE] name
 * drops, as PostgreSQL reads the name, into buf (cap bytes, with a NUL);
 * its length, or 0 when the query is anything else (ALL, several
 * statements, a name PostgreSQL would truncate). */
size_t ext_deallocate_target(const char *sql, size_t len, char *buf, size_t cap);

typedef enum ext_action {
	EXT_RELAY,    /* the caller passes the message on as it is */
	EXT_WRITTEN,  /* an error, already written in the client's terms */
	EXT_SWALLOW,  /* the answer to the gateway's own message */
} ext_action;

/* A server message, before the caller's own bookkeeping. */
ext_action ext_server_message(client *cl, pgw_msg *m);
/* ... and after it was passed on: the gateway's answers that follow. */
void ext_after_message(client *cl);

/* ReadyForQuery: the transaction's portals are gone if it ended. */
void ext_ready(client *cl, char status);
/* A Query is about to drop every prepared statement (DISCARD ALL,
 * DEALLOCATE ALL) on the server connection. */
void ext_server_statements_dropped(client *cl);
/* The client is leaving: what it had in flight will never be answered to it. */
void ext_abandon(client *cl);
void ext_free(client *cl);

#endif
