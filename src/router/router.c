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

struct router {
	worker *w;
	const pool_config *cfg;
	const topology_source *topology; /* NULL: the embedded pooler serves */
	pool_registry embedded;
	pooler_handle *handles; /* one per (database, user) */
	struct router_link *links;
};

/*
 * The remote handle: a pool of remote backends (pool.c keeps the idle
 * ones, the waiters and the clean-up), each a translator to the link's
 * multipooler. A hold is one reservation there: it begins when a client
 * takes the backend (backend_set_owner) and ends here.
 */
struct router_link {
	remote_link *link;
	pool_registry pools; /* of this link, one per (database, user) */
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

static struct router_link *link_for(router *r, const char *address)
{
	for (struct router_link *rl = r->links; rl; rl = rl->next)
		if (strcmp(rl->link->address, address) == 0)
			return rl;
	struct router_link *rl = calloc(1, sizeof *rl);
	if (!rl)
		return NULL;
	/* Remote connections are cheap (a socketpair each) and the
	 * multipooler enforces its own limit: here the pool size bounds the
	 * holds of each worker. */
	rl->link = remote_link_new(r->w, address, r->cfg);
	if (!rl->link) {
		free(rl);
		return NULL;
	}
	pool_registry_init(&rl->pools, r->w, &rl->link->cfg);
	rl->next = r->links;
	r->links = rl;
	return rl;
}

router *router_new(worker *w, const pool_config *cfg, const topology_source *topology)
{
	router *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->w = w;
	r->cfg = cfg;
	r->topology = topology;
	pool_registry_init(&r->embedded, w, cfg);
	return r;
}

pooler_handle *router_route(router *r, const char *database, const char *user)
{
	for (pooler_handle *h = r->handles; h; h = h->next)
		if (strcmp(h->target.database, database) == 0 && strcmp(h->user, user) == 0)
			return h;
	const pooler_ops *ops = &embedded_ops;
	pool *p;
	if (r->topology) {
		const char *address = topology_lookup(r->topology, database, TOPOLOGY_PRIMARY, 0);
		if (!address) {
			log_warning("no pooler for database \"%s\" in the topology", database);
			return NULL;
		}
		struct router_link *rl = link_for(r, address);
		p = rl ? pool_registry_get(&rl->pools, database, user) : NULL;
		ops = &remote_ops;
	} else {
		p = pool_registry_get(&r->embedded, database, user);
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
	h->next = r->handles;
	r->handles = h;
	return h;
}

void router_free(router *r)
{
	if (!r)
		return;
	while (r->handles) {
		pooler_handle *h = r->handles;
		r->handles = h->next;
		free(h);
	}
	/* The pools' backends before the links they talk through. */
	while (r->links) {
		struct router_link *rl = r->links;
		r->links = rl->next;
		pool_registry_clear(&rl->pools);
		remote_link_free(rl->link);
		free(rl);
	}
	pool_registry_clear(&r->embedded);
	free(r);
}
