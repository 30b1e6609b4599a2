/*
 * The router: where a client's request goes. It names a target the way
 * multigres does (database, table group, shard, mode) and returns the
 * pooler handle that serves it: the embedded pooler, or a remote one (a
 * multipooler over gRPC, found through the topology) behind the same ops.
 */
#ifndef PGW_ROUTER_H
#define PGW_ROUTER_H

#include "net/worker.h"
#include "pooler/pool.h"

typedef enum router_mode {
	ROUTER_MODE_UNSPECIFIED = 0,
	ROUTER_MODE_WRITABLE,
	ROUTER_MODE_CONSISTENT,
	ROUTER_MODE_INCONSISTENT,
} router_mode;

#define ROUTER_DEFAULT_TABLE_GROUP "default"
#define ROUTER_DEFAULT_SHARD "0-inf"

typedef struct router_target {
	const char *database;
	const char *table_group;
	const char *shard;
	router_mode mode;
} router_target;

typedef struct pooler_handle pooler_handle;

/* What every pooler handle offers a client session. */
typedef struct pooler_ops {
	/* A server session for user: at once, or NULL and `granted` later. */
	backend *(*acquire)(pooler_handle *h, pool_waiter *wt, pool_grant_fn granted);
	void (*cancel_wait)(pooler_handle *h, pool_waiter *wt);
	/* Give it back; `discard` when the client left session state on it. */
	void (*release)(pooler_handle *h, backend *be, bool discard);
} pooler_ops;

struct pooler_handle {
	const pooler_ops *ops;
	router_target target;
	const char *user;
	void *impl; /* this worker's pool (of server or of remote connections) */
	pooler_handle *next;
};

/*
 * A worker's router: it owns the pooler handles, the embedded pools (when
 * there is no topology) and the channels to multipoolers (when there is).
 * cfg: the pool settings of this worker, kept by the caller.
 */
typedef struct router router;
typedef struct topology_source topology_source;
router *router_new(worker *w, const pool_config *cfg, const topology_source *topology);
/* The handle for a client's (database, user); NULL: no pooler serves the
 * database, or out of memory. */
pooler_handle *router_route(router *r, const char *database, const char *user);
/* Every handle, pool and channel: at the worker's end. */
void router_free(router *r);

#endif
