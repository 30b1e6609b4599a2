/*
 * The router: where a client's request goes. It names a target the way
 * multigres does (database, table group, shard, mode) and returns the
 * pooler handle that serves it: the embedded pooler, or a remote one (a
 * multipooler over gRPC, found through the topology) behind the same ops.
 */
#ifndef PGW_ROUTER_H
#define PGW_ROUTER_H

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

/* The handle for a client's (database, user) on this worker. */
typedef struct gw_worker gw_worker;
pooler_handle *router_route(gw_worker *gw, const char *database, const char *user);
void router_free_handles(gw_worker *gw);

#endif
