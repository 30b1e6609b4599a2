/*
 * Server connections whose transport is a multipooler's MultiPoolerService
 * instead of a socket to PostgreSQL. The backend (backend.h) keeps its
 * normal input and output paths; its socket is one end of a socketpair
 * whose other end is a translator that reads the PostgreSQL frontend
 * messages the gateway writes, turns them into RPCs, and writes back the
 * backend messages a PostgreSQL server would have sent. So the gateway's
 * session logic (transactions, settings, statements, errors, cancel)
 * works unchanged over a remote pooler.
 *
 * A remote_link is the channel from one worker to one multipooler, with
 * its health; the pools of remote backends take their pool_config from it.
 */
#ifndef PGW_REMOTE_BACKEND_H
#define PGW_REMOTE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/worker.h"
#include "pooler/pool.h"
#include "pooler/remote_hold.h"

typedef struct backend backend;
typedef struct remote_backend remote_backend;
typedef struct remote_desc remote_desc;
typedef struct rpc_channel rpc_channel;
typedef struct rpc_client_call rpc_client_call;

typedef struct remote_link {
	pool_config cfg; /* for the pools of this link; cfg.remote points here */
	worker *w;
	char *address; /* host:port or a Unix socket path */
	rpc_channel *ch;
	bool up;      /* the channel is connected */
	bool tried;   /* a first connection attempt has ended, well or not */
	bool serving; /* the pooler's last health report */
	char reason[160];
	rpc_client_call *health; /* the StreamPoolerHealth call */
	ev_timer health_retry;
	remote_backend *members; /* every translator on this link */
	remote_desc *descs;	 /* statement descriptions by (database, user, query, types) */
	int ndescs;
	uint64_t rpcs; /* calls started, for the stats and the bench */
	rhold_known known_settings; /* settings replays the server accepted */
} remote_link;

/* A channel to address for worker w; base gives the pool settings. */
remote_link *remote_link_new(worker *w, const char *address, const pool_config *base);
void remote_link_free(remote_link *l);
/* Why a new connection cannot be served now, or NULL when it can. */
const char *remote_link_unavailable(const remote_link *l);

/* The backend's socket: the translator's socketpair end is set up for be
 * (whose pool's cfg->remote is the link). Returns the fd or -1. */
int remote_backend_open(backend *be, remote_link *l);
/* The holder changes: a hold begins (the next RPC reserves a connection
 * on the multipooler) or ends (the reservation is cleaned and released).
 * Both travel in order with the holder's messages. */
void remote_backend_begin_hold(backend *be);
void remote_backend_end_hold(backend *be, bool discard);
/* PostgreSQL's pid behind the hold's reservation, 0 until a call of the
 * hold has reserved one. */
uint32_t remote_backend_server_pid(const backend *be);
/* Cancel what runs: the RPC in flight is cancelled (RST_STREAM). */
void remote_backend_cancel(backend *be);
void remote_backend_close(backend *be);

/* For tests: encode the PostgreSQL messages a QueryResult stands for. */
struct Query__QueryResult;
struct pgw_wbuf;
void remote_encode_result(struct pgw_wbuf *w, const struct Query__QueryResult *r, bool row_description,
			  bool *rd_sent, bool *tag_sent);
struct Query__PgDiagnostic;
void remote_encode_diagnostic(struct pgw_wbuf *w, const struct Query__PgDiagnostic *d, char type);

#endif
