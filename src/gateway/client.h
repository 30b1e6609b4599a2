/*
 * A client connection: startup and login, then each request relayed to a
 * server connection borrowed from the pool for as long as the request
 * (or the transaction, or the session's pinned state) needs it.
 */
#ifndef PGW_CLIENT_H
#define PGW_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "gateway/clientauth.h"
#include "gateway/gateway.h"
#include "gateway/prepared.h"
#include "pooler/session.h"
#include "net/conn.h"
#include "pooler/backend.h"
#include "sql/stmt.h"

typedef enum client_state {
	CL_STARTUP = 0, /* waiting for the startup packet */
	CL_AUTH,	/* proving who it is (password, SCRAM) */
	CL_LOGIN,	/* authenticated; setting up on a server connection */
	CL_READY,
	CL_CLOSED,
} client_state;

/* REQ_RESYNC: the gateway's own Query restoring the session's settings
 * after a RESET; its ParameterStatus and ReadyForQuery reach the client. */
typedef enum request_kind {
	REQ_NONE = -1, /* not a request of the client's */
	REQ_QUERY = 0,
	REQ_SYNC,
	REQ_FUNCTION,
	REQ_LOGIN,
	REQ_RESYNC,
} request_kind;

/* A request sent to the server and not yet answered by ReadyForQuery. */
typedef struct request {
	uint32_t seq; /* numbered in the order sent */
	uint8_t kind;
	bool error;
	uint16_t nstmts;
	uint16_t done; /* statements completed so far */
	uint16_t neffects;
	stmt_effect *effects;
} request;

/* What one answer from the server (or the gateway) is for: see extended.h. */
typedef enum pend_kind {
	PEND_PARSE,
	PEND_BIND,
	PEND_DESCRIBE,
	PEND_EXECUTE,
	PEND_CLOSE,
	PEND_SYNC,
	PEND_QUERY,
	PEND_FUNCTION,
	PEND_OWN_PARSE, /* the gateway's: preparing a statement of the session */
	PEND_OWN_CLOSE, /* the gateway's: evicting a statement, or the unnamed one */
	PEND_OWN_SYNC,	/* the gateway's: ends its Parses ahead of a Query */
	PEND_LOCAL,	/* answered by the gateway: ParseComplete, CloseComplete, or
			 * CommandComplete "DEALLOCATE" ('C') */
	PEND_COPY_END,	/* no answer: the client ended a COPY before it began */
} pend_kind;

/* What to take back when the server never runs the message (an error). */
typedef enum pend_undo {
	UNDO_NONE,
	UNDO_ADDED,   /* a Parse added stmt to the session */
	UNDO_UNNAMED, /* a Parse made stmt the unnamed statement */
	UNDO_CLOSED,  /* a Close took stmt out of the session */
	UNDO_DROPPED_UNNAMED, /* a Query dropped stmt, the unnamed statement */
} pend_undo;

/* Names of the session's statements a Query's text holds, replaced by
 * the server's (see ext_map_query): its errors get the client's back. */
typedef struct pend_alias {
	uint32_t id;	  /* the server statement */
	prep_stmt *stmt;  /* the client's (a reference) */
	size_t end;	  /* where the server's name ends in the text sent, in characters */
	long delta;	  /* characters the server's name has more than the client's */
} pend_alias;

typedef struct pend {
	uint8_t kind;
	uint8_t undo;
	uint8_t local_type; /* PEND_LOCAL: the message type answered */
	bool duplicate;	    /* its error stands for 42P05: stmt's name is taken */
	bool quiet;	    /* PEND_OWN_PARSE ahead of a Query: its error is not the client's */
	uint8_t naliases;
	pend_alias *aliases; /* PEND_QUERY (malloc'd) */
	bool settles;	    /* it changes the session's statements: see unsettled() */
	uint32_t stmt_id;   /* the server statement named in the message, or 0 */
	uint32_t seq;	    /* PEND_SYNC/QUERY/FUNCTION: the request */
	prep_stmt *stmt;    /* the session's statement it concerns (a reference):
			     * errors naming the server's statement get its name */
	prep_stmt *prev;    /* UNDO_UNNAMED: the unnamed statement it replaced */
} pend;

typedef enum client_step { STEP_DONE, STEP_WAIT, STEP_CLOSED } client_step;

/* Times one Query may go again on another server connection. */
#define CLIENT_MAX_RETRIES 8
/* ... if it is no longer than this (bytes); a longer one is not kept. */
#define CLIENT_RETRY_MAX 65536

struct client {
	net_conn conn; /* first */
	gw_worker *gw;
	client *next, *prev; /* the worker's list */
	client_state state;
	pgw_decoder dec;
	uint32_t conn_id;
	int32_t pid; /* what BackendKeyData told the client */
	uint8_t key[32];  /* the cancel key: 4 bytes for protocol 3.0, 32 for 3.2 */
	uint8_t key_len;
	uint8_t minor;	  /* protocol 3.<minor> spoken with the client: 0 or 2 */
	bool is_unix;
	bool ssl_done;	 /* an SSLRequest was answered: a second one is an error */
	bool gss_done;
	bool direct_tls; /* TLS from the first byte: ALPN must say postgresql */
	ev_timer login_timer; /* a client that takes too long to log in is dropped */
	int cancel_waits; /* a cancel connection: workers yet to answer its request */
	char *user;
	char *database;
	session sess;
	client_auth auth;
	struct pooler_handle *pooler; /* where the router sends this session */
	pool_waiter waiter;
	bool waiting; /* for a server connection */
	backend *be;
	bool pinned;	    /* session state lives on be: keep it */
	bool blocked;	    /* reading stopped until the server side catches up */
	bool copy_in;	    /* the client is sending COPY data */
	uint16_t copy_ends_early; /* CopyDone/Fail sent before the server's CopyInResponse */
	bool in_block;	    /* inside a transaction block, as the server last said */
	bool schema_in_txn; /* the open transaction changed the schema */
	bool force_resync;  /* a RESET left be unlike the session */
	bool sync_wait;	    /* nothing goes to be until its role is set up */
	bool server_fatal;  /* the server sent FATAL: its closing is no surprise */
	/*
	 * A Query kept to be sent again should its server connection turn
	 * out dead before the server began on it (see on_backend_lost):
	 * only the first request on a connection just taken, outside a
	 * transaction, behind a request of the pooler's own.
	 */
	bool retry_ok;	    /* be was just taken: its first Query may be kept */
	bool replay;	    /* retry_msg goes again before anything else */
	uint8_t retries;    /* times the kept Query was sent again */
	uint8_t *retry_msg;
	size_t retry_len;
	ev_timer retry_timer; /* carries on with another connection from the loop */
	/*
	 * A CREATE, DROP or ALTER DATABASE sent alone, outside a transaction:
	 * should the server refuse it with 55006 (others are in the database
	 * it needs alone), the idle pooled connections there are closed and it
	 * goes once more, unseen by the client (see client.c, "database
	 * statements").
	 */
	uint32_t ddl_seq;     /* the request it is; 0: none */
	char *ddl_db;	      /* the database it needs alone; NULL: every one but ours */
	uint8_t *ddl_msg;     /* the Query, to go again */
	size_t ddl_len;
	uint8_t *ddl_error;   /* the server's 55006, held back */
	size_t ddl_error_len;
	bool ddl_again;	      /* the Query kept (retry_msg) goes again for that reason */
	struct pool_sweep *ddl_sweep; /* closing the idle connections */
	char txn_status;
	request req[BACKEND_MAX_PENDING];
	int req_head, req_count;
	uint32_t req_seq;
	/* ParameterStatus values the client was told, and whether some the
	 * server reported are held back until the session's settings are
	 * restored after a RESET (so the client hears only the net change). */
	backend_param told[BACKEND_MAX_PARAMS];
	int ntold;
	bool params_held;

	/* The extended protocol (extended.c). */
	prep_table prep;
	pend *pq; /* a ring of what the server's next answers are for */
	uint32_t pq_head, pq_count, pq_cap;
	bool batch_open;   /* messages sent since the last Sync */
	bool ext_skip;	   /* after an error: the client's messages up to Sync are dropped */
	bool skip_local;   /* ... an error of the gateway's: it answers the Sync */
	bool batch_failed; /* an error in the implicit transaction open */
	bool pq_finish;	   /* the message being relayed ends the head's answer */
	bool pq_blocked;   /* reading paused until the server answers more */
	uint32_t batches;  /* Syncs sent: the number of the batch now open */
	/* Entries with an undo pushed and settled (answered or undone), and
	 * how many had been pushed at the last Sync. */
	uint32_t undo_pushed, undo_settled, settle_mark;

	/* A replication connection (replication.c); NULL for the others. */
	struct repl_conn *repl;
};

/* A connection accepted by one of gw's listeners. */
void client_accept(gw_worker *gw, int fd, bool is_unix);
/* At the worker's end: every client closed, then freed. */
void client_close_all(gw_worker *gw);
/* Free the clients closed during this loop iteration. */
void client_free_closed(gw_worker *gw);
/* Close at once (what is queued for the client is dropped). */
void client_close(client *cl);
/* An ErrorResponse (or a NoticeResponse's worth of fields) as PostgreSQL
 * words it; detail and hint may be NULL. */
void client_send_error(client *cl, const char *severity, const char *sqlstate, const char *msg,
		       const char *detail, const char *hint);
/* The client waits for a server connection: its request ends there with
 * PostgreSQL's 57014, as a cancelled statement would (cancel.c). */
void client_cancel_waiting(client *cl);
/* FATAL, then close once it is written. */
void client_fatal(client *cl, const char *sqlstate, const char *msg, const char *detail);

/* For extended.c. */
bool client_ensure_backend(client *cl);
void client_unblock(client *cl);
request *client_push_request(client *cl, request_kind kind);
void client_forget_request(client *cl, uint32_t seq);
/* What statement s changes in the session once it completes, into e (its
 * strings malloc'd); false: nothing to follow. */
bool client_effect_of(const stmt_info *s, stmt_effect *e);
/* A statement with an effect completed with this command tag. */
void client_apply_effect(client *cl, const stmt_effect *e, const char *tag, bool held);
bool client_has_effect(int kind, uint32_t flags);

#endif
