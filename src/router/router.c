/*
 * Routing: every request of a session goes to the target of its
 * (database, user) in the default table group and shard, writable, and
 * is served by the embedded pooler on the client's own worker.
 */
#include "router/router.h"

#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"

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

pooler_handle *router_route(gw_worker *gw, const char *database, const char *user)
{
	for (pooler_handle *h = gw->handles; h; h = h->next)
		if (strcmp(h->target.database, database) == 0 && strcmp(h->user, user) == 0)
			return h;
	pool *p = gateway_pool_for(gw, database, user);
	if (!p)
		return NULL;
	pooler_handle *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	h->ops = &embedded_ops;
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
}
