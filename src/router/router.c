/*
 * Routing: every request of a session goes to the target of its
 * (database, user) in the default table group and shard, writable. With
 * no topology it is served by the embedded pooler on the client's own
 * worker; with one (--topology, --pooler) by the database's primary
 * multipooler, over one channel per (worker, pooler).
 */
#include "router/router.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "gateway/gateway.h"
#include "pooler/backend.h"
#include "pooler/remote_backend.h"
#include "router/topology.h"

static backend *embedded_acquire(pooler_handle *h, pool_waiter *wt, pool_grant_fn granted)
{
	return pool_acquire(h->impl, wt, granted);
}

static void embedded_cancel_wait(pooler_handle *h, pool_waiter *wt)
{
	(void)h;
	pool_cancel_wait(wt);
}

static void embedded_release(pooler_handle *h, backend *be, bool discard)
{
	(void)h;
	pool_release(be, discard);
}

static const pooler_ops embedded_ops = {embedded_acquire, embedded_cancel_wait, embedded_release};

/*
 * The remote handle: a pool of remote backends (pool.c keeps the idle
 * ones, the waiters and the clean-up), each a translator to the link's
 * multipooler. A hold is one reservation there: it begins when a client
 * takes the backend (backend_set_owner) and ends here.
 */
struct router_link {
	remote_link *link;
	pool *pools; /* of this link, one per (database, user) */
	struct router_link *next;
};

static backend *remote_acquire(pooler_handle *h, pool_waiter *wt, pool_grant_fn granted)
{
	return pool_acquire(h->impl, wt, granted);
}

static void remote_release(pooler_handle *h, backend *be, bool discard)
{
	(void)h;
	remote_backend_end_hold(be, discard);
	pool_release(be, discard);
}

static const pooler_ops remote_ops = {remote_acquire, embedded_cancel_wait, remote_release};

static struct router_link *link_for(gw_worker *gw, const char *address)
{
	for (struct router_link *rl = gw->links; rl; rl = rl->next)
		if (strcmp(rl->link->address, address) == 0)
			return rl;
	struct router_link *rl = calloc(1, sizeof *rl);
	if (!rl)
		return NULL;
	/* Remote connections are cheap (a socketpair each) and the
	 * multipooler enforces its own limit: here the pool size bounds the
	 * holds of each worker. */
	rl->link = remote_link_new(&gw->w, address, &gw->pool_cfg);
	if (!rl->link) {
		free(rl);
		return NULL;
	}
	rl->next = gw->links;
	gw->links = rl;
	return rl;
}

static pool *remote_pool_for(struct router_link *rl, gw_worker *gw, const char *database, const char *user)
{
	for (pool *p = rl->pools; p; p = p->next)
		if (strcmp(p->database, database) == 0 && strcmp(p->user, user) == 0)
			return p;
	pool *p = pool_new(&gw->w, &rl->link->cfg, database, user);
	if (!p)
		return NULL;
	p->next = rl->pools;
	rl->pools = p;
	return p;
}

pooler_handle *router_route(gw_worker *gw, const char *database, const char *user)
{
	for (pooler_handle *h = gw->handles; h; h = h->next)
		if (strcmp(h->target.database, database) == 0 && strcmp(h->user, user) == 0)
			return h;
	const topology_source *topo = gw->gw->cfg.topology;
	const pooler_ops *ops = &embedded_ops;
	pool *p;
	if (topo) {
		const char *address = topology_lookup(topo, database, TOPOLOGY_PRIMARY, 0);
		if (!address) {
			log_warning("no pooler for database \"%s\" in the topology", database);
			return NULL;
		}
		struct router_link *rl = link_for(gw, address);
		p = rl ? remote_pool_for(rl, gw, database, user) : NULL;
		ops = &remote_ops;
	} else {
		p = gateway_pool_for(gw, database, user);
	}
	if (!p)
		return NULL;
	pooler_handle *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	h->ops = ops;
	h->impl = p;
	h->user = p->user;
	h->target = (router_target){p->database, ROUTER_DEFAULT_TABLE_GROUP, ROUTER_DEFAULT_SHARD,
				    ROUTER_MODE_WRITABLE};
	h->next = gw->handles;
	gw->handles = h;
	return h;
}

void router_free_handles(gw_worker *gw)
{
	while (gw->handles) {
		pooler_handle *h = gw->handles;
		gw->handles = h->next;
		free(h);
	}
	/* The pools' backends before the links they talk through. */
	while (gw->links) {
		struct router_link *rl = gw->links;
		gw->links = rl->next;
		while (rl->pools) {
			pool *p = rl->pools;
			rl->pools = p->next;
			pool_free(p);
		}
		remote_link_free(rl->link);
		free(rl);
	}
}
