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
#include "gateway/session.h"
#include "net/conn.h"
#include "pooler/backend.h"

typedef enum client_state {
	CL_STARTUP = 0, /* waiting for the startup packet */
	CL_AUTH,	/* proving who it is (password, SCRAM) */
	CL_LOGIN,	/* authenticated; setting up on a server connection */
	CL_READY,
	CL_CLOSED,
} client_state;

/* A statement whose completion changes the session. */
typedef struct stmt_effect {
	uint16_t index; /* its place among the request's statements */
	uint16_t kind;	/* stmt_kind */
	uint32_t flags;
	char *name; /* SET/RESET: canonical parameter name */
	char *text; /* SET: the statement, for replay */
	size_t len;
} stmt_effect;

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
	uint8_t kind;
	bool error;
	uint16_t nstmts;
	uint16_t done; /* statements completed so far */
	uint16_t neffects;
	stmt_effect *effects;
} request;

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
	bool in_block;	    /* inside a transaction block, as the server last said */
	bool force_resync;  /* a RESET left be unlike the session */
	bool sync_wait;	    /* nothing goes to be until its role is set up */
	char txn_status;
	request req[BACKEND_MAX_PENDING];
	int req_head, req_count;
};

#endif
