/*
 * One PostgreSQL server connection of the embedded pooler: non-blocking
 * connect and login (trust, password, md5, SCRAM-SHA-256), then a relay
 * that hands each server message to whoever holds the connection.
 *
 * Every request sent (a Query, a Sync, a FunctionCall) is answered by one
 * ReadyForQuery; the connection keeps them in order in a small queue, each
 * marked as the holder's or the pooler's own (settings, cleanup), so the
 * pooler's answers are swallowed and the holder sees only its own.
 */
#ifndef PGW_BACKEND_H
#define PGW_BACKEND_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "net/conn.h"
#include "pgw/codec.h"
#include "pooler/stmtcache.h"

typedef struct pool pool;
typedef struct backend backend;
typedef struct cancel_conn cancel_conn;

typedef enum backend_state {
	BE_CONNECTING = 0, /* TCP/Unix connect in progress */
	BE_LOGIN,	   /* startup sent, authenticating, until ReadyForQuery */
	BE_READY,	   /* logged in */
	BE_CLOSED,
} backend_state;

/* What the holder of a backend hears from it. */
typedef struct backend_owner_ops {
	/* A server message for the holder, framed but not body-decoded. */
	void (*on_message)(void *owner, backend *be, pgw_msg *m);
	/* The server connection is gone; err says why. The holder must let go. */
	void (*on_lost)(void *owner, backend *be, const pgw_error *err);
	/* Output to the server, backed up before, has drained. */
	void (*on_drained)(void *owner, backend *be);
	/* The pooler's own Query sent for the holder (its settings) failed:
	 * the server's ErrorResponse. */
	void (*on_own_error)(void *owner, backend *be, pgw_msg *m);
	/* ... and the pooler's own Query is answered. */
	void (*on_own_done)(void *owner, backend *be);
} backend_owner_ops;

#define BACKEND_MAX_PENDING 64
#define BACKEND_MAX_PARAMS 32

typedef struct backend_param {
	char *name;
	char *value;
} backend_param;

struct backend {
	net_conn conn; /* first */
	pool *pool;
	backend_state state;
	pgw_decoder dec;
	uint64_t id;
	int32_t pid;
	uint8_t key[256];
	uint8_t key_len;
	char txn_status; /* from the last ReadyForQuery */
	bool copy_in;	 /* the server waits for CopyData */
	bool paused;	 /* reading stopped: the holder's client is backed up */
	bool in_idle;	 /* on the pool's idle list */

	/* ParameterStatus values the server reported, kept current. */
	backend_param params[BACKEND_MAX_PARAMS];
	int nparams;

	/* Requests awaiting their ReadyForQuery; true = the pooler's own. */
	bool pending[BACKEND_MAX_PENDING];
	int pending_head, pending_count;

	/* Prepared statements held for the sessions, and whose statement the
	 * unnamed one is (prep_stmt uid; 0: nobody's we know). */
	stmtcache stmts;
	uint64_t unnamed_uid;

	/* The session settings applied on this connection (see session.h). */
	uint64_t settings_hash;
	bool settings_role; /* SET ROLE/SESSION AUTHORIZATION among them */
	bool silent_failed; /* the pooler's own request in progress got an error */

	const backend_owner_ops *owner_ops;
	void *owner;
	bool orphan; /* its holder left; cleaning up before reuse */
	/* Its session made temporary objects: closed when released, so that
	 * no later session meets that temporary namespace (a new session of
	 * PostgreSQL has none; DISCARD ALL drops the objects, not it). */
	bool retire;
	cancel_conn *cancels; /* cancel requests the server has not yet acted on */
	bool discard_needed; /* the holder left session state behind */
	bool cleanup_sent;

	ev_tstamp created;
	ev_tstamp last_used;
	ev_timer timer; /* connect/login timeout */
	ev_io connect_io;
	int connect_errno;
	struct backend *next, *prev; /* the pool's idle list or busy list */
	struct scram_client *scram;
	uint8_t *login_error; /* the server's ErrorResponse during login */
	size_t login_error_len;
	struct remote_backend *remote; /* set: the transport is a multipooler (remote_backend.h) */
	/* A dedicated connection (backend_connect_dedicated): no pool counts,
	 * lists or reuses it; its holder hears its login and its end. */
	bool dedicated;
	uint8_t *startup_extra; /* more "name\0value\0" pairs for its startup packet */
	size_t startup_extra_len;
};

/* Open a connection for p; the pool hears of it through pool_on_* below. */
backend *backend_connect(pool *p);
/*
 * Open a connection as p's user to p's database with p's credentials, but
 * outside the pool: not counted in its size, never on its lists, never
 * reused. extra: more startup parameters, "name\0value\0" pairs (copied).
 * The holder (ops, owner) hears the server's ParameterStatus,
 * NoticeResponse, BackendKeyData and ReadyForQuery of the login through
 * on_message, then everything else; on_lost if it fails or closes (the
 * server's own ErrorResponse, if it sent one, is in be->login_error), after
 * which the backend is destroyed by itself. Otherwise the holder ends it
 * with backend_destroy, never from inside one of its callbacks. NULL:
 * out of memory, or p's connections go through a multipooler.
 */
backend *backend_connect_dedicated(pool *p, const uint8_t *extra, size_t extra_len,
				   const backend_owner_ops *ops, void *owner);
void backend_destroy(backend *be);

void backend_set_owner(backend *be, const backend_owner_ops *ops, void *owner);
/* Send the holder's bytes; `requests` is how many ReadyForQuery they will
 * bring (Query, Sync, FunctionCall each one). */
void backend_send(backend *be, const void *bytes, size_t n, int requests);
/* Send a Query. A silent one is the pooler's own: its answers never
 * reach the holder. */
void backend_send_query(backend *be, const char *sql, size_t len, bool silent);
static inline bool backend_idle(const backend *be)
{
	return be->pending_count == 0 && !be->copy_in && !be->cancels;
}
static inline bool backend_can_send(const backend *be)
{
	return be->pending_count < BACKEND_MAX_PENDING - 2;
}
/* Is the oldest unanswered request the pooler's own? While it is, the
 * server has not begun on the holder's requests behind it: it runs them
 * in order, and flushes each ReadyForQuery before reading on. */
static inline bool backend_head_is_own(const backend *be)
{
	return be->pending_count > 0 && be->pending[be->pending_head];
}
/* A Sync of the pooler's own (its ReadyForQuery never reaches the holder). */
void backend_send_own_sync(backend *be);
/* A request sent will never be answered: the server ignored it (a Sync
 * inside COPY FROM STDIN, a Query skipped after an error). */
void backend_forget_request(backend *be);
void backend_pause(backend *be);
void backend_resume(backend *be);
/* Told once a cancel has reached the server (or could not). */
typedef void (*backend_cancel_done)(void *arg);
/*
 * Ask the server to cancel what this connection runs (a new connection
 * carrying the CancelRequest). PostgreSQL closes that connection once it
 * has signalled the backend; until then nothing more is written to this
 * one (a statement sent meanwhile could be the one cancelled), and the
 * pool lends it to nobody. done(arg), if given, runs then: from the loop,
 * or at once when nothing was sent (through a multipooler, once the call
 * is cancelled).
 */
void backend_cancel(backend *be, backend_cancel_done done, void *arg);
const char *backend_param_get(const backend *be, const char *name);
/* The pid PostgreSQL gave the server connection: through a multipooler,
 * the one behind the hold's reservation once known, else be->pid. */
int32_t backend_server_pid(const backend *be);
/* Set name to value in a list of at most BACKEND_MAX_PARAMS. */
void backend_params_set(backend_param *list, int *n, const char *name, const char *value);

#endif
