/*
 * Pools of server connections, one per (database, user) on each worker:
 * idle connections are reused most-recent-first, clients queue when the
 * pool is full, and connections left dirty by a client are cleaned before
 * anyone else gets them.
 */
#include "pooler/pool.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "pooler/backend.h"

#define ORPHAN_TIMEOUT 30.0 /* seconds an abandoned connection may take to come clean */

static void list_push(backend **head, backend *be)
{
	be->prev = NULL;
	be->next = *head;
	if (*head)
		(*head)->prev = be;
	*head = be;
}

static void list_remove(backend **head, backend *be)
{
	if (be->prev)
		be->prev->next = be->next;
	else if (*head == be)
		*head = be->next;
	if (be->next)
		be->next->prev = be->prev;
	be->next = be->prev = NULL;
}

static void waiter_unlink(pool *p, pool_waiter *wt)
{
	if (!wt->queued)
		return;
	if (wt->prev)
		wt->prev->next = wt->next;
	else
		p->wait_head = wt->next;
	if (wt->next)
		wt->next->prev = wt->prev;
	else
		p->wait_tail = wt->prev;
	wt->next = wt->prev = NULL;
	wt->queued = false;
	p->nwaiting--;
	ev_timer_stop(p->w->loop, &wt->timer);
}

static void grant(pool *p, pool_waiter *wt, backend *be)
{
	waiter_unlink(p, wt);
	list_push(&p->busy, be);
	be->last_used = ev_now(p->w->loop);
	wt->granted(wt, be, NULL, NULL, 0);
}

static void open_one(pool *p)
{
	backend *be = backend_connect(p);
	if (!be) {
		log_error("could not open a server connection for %s/%s", p->database, p->user);
		return;
	}
	p->open++;
	p->connecting++;
}

static void on_wait_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	pool_waiter *wt = (pool_waiter *)((char *)t - offsetof(pool_waiter, timer));
	pool *p = wt->pool;
	waiter_unlink(p, wt);
	pgw_error err;
	pgw_error_set(&err, PGW_SEV_ERROR, "53300",
		      "no server connection for user \"%s\" database \"%s\" became free within %g s "
		      "(pool size %d)",
		      p->user, p->database, p->cfg->wait_timeout, p->cfg->pool_size);
	wt->granted(wt, NULL, &err, NULL, 0);
}

backend *pool_acquire(pool *p, pool_waiter *wt, pool_grant_fn granted)
{
	wt->pool = p;
	wt->granted = granted;
	wt->next = wt->prev = NULL;
	wt->queued = false;
	if (p->idle) {
		backend *be = p->idle;
		list_remove(&p->idle, be);
		be->in_idle = false;
		p->idle_count--;
		list_push(&p->busy, be);
		be->last_used = ev_now(p->w->loop);
		return be;
	}
	wt->queued = true;
	wt->prev = p->wait_tail;
	if (p->wait_tail)
		p->wait_tail->next = wt;
	else
		p->wait_head = wt;
	p->wait_tail = wt;
	p->nwaiting++;
	ev_timer_init(&wt->timer, on_wait_timeout, p->cfg->wait_timeout, 0);
	if (p->cfg->wait_timeout > 0)
		ev_timer_start(p->w->loop, &wt->timer);
	/* One new connection per waiter beyond those already coming. */
	if (p->open < p->cfg->pool_size && p->connecting < p->nwaiting)
		open_one(p);
	return NULL;
}

void pool_cancel_wait(pool_waiter *wt)
{
	if (wt->queued)
		waiter_unlink(wt->pool, wt);
}

/* A clean connection: to the first waiter, or to the idle list. */
static void make_available(pool *p, backend *be)
{
	ev_tstamp now = ev_now(p->w->loop);
	if (p->cfg->lifetime > 0 && now - be->created > p->cfg->lifetime) {
		pool_drop(be);
		return;
	}
	be->orphan = false;
	be->owner_ops = NULL;
	be->owner = NULL;
	be->last_used = now;
	if (be->paused)
		backend_resume(be);
	if (p->wait_head) {
		grant(p, p->wait_head, be);
		return;
	}
	list_push(&p->idle, be);
	be->in_idle = true;
	p->idle_count++;
}

void pool_on_ready(backend *be)
{
	pool *p = be->pool;
	p->connecting--;
	make_available(p, be);
}

void pool_on_failed(backend *be, const pgw_error *err)
{
	pool *p = be->pool;
	p->connecting--;
	p->open--;
	log_warning("server connection for %s/%s failed: %s", p->database, p->user, err->message);
	/* If nothing else can serve the queue, everyone hears why; otherwise
	 * only the longest waiter. */
	bool all = p->open == 0;
	while (p->wait_head) {
		pool_waiter *wt = p->wait_head;
		waiter_unlink(p, wt);
		wt->granted(wt, NULL, err, be->login_error, be->login_error_len);
		if (!all)
			break;
	}
	backend_destroy(be);
}

void pool_on_closed(backend *be)
{
	pool_drop(be);
}

void pool_drop(backend *be)
{
	pool *p = be->pool;
	if (be->in_idle) {
		list_remove(&p->idle, be);
		be->in_idle = false;
		p->idle_count--;
	} else {
		list_remove(&p->busy, be);
	}
	p->open--;
	backend_destroy(be);
	/* Someone may be waiting for the room this leaves. */
	if (p->wait_head && p->open < p->cfg->pool_size && p->connecting == 0)
		open_one(p);
}

static void on_orphan_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	backend *be = (backend *)((char *)t - offsetof(backend, timer));
	log_warning("server connection %d did not come clean in time; closing it", be->pid);
	pool_drop(be);
}

void pool_release(backend *be, bool discard)
{
	pool *p = be->pool;
	be->owner_ops = NULL;
	be->owner = NULL;
	if (!discard && backend_idle(be) && be->txn_status == 'I') {
		list_remove(&p->busy, be);
		make_available(p, be);
		return;
	}
	/* Dirty: clean it up while it stays on the busy list. */
	be->orphan = true;
	be->discard_needed = discard;
	be->cleanup_sent = false;
	if (!backend_idle(be))
		backend_cancel(be); /* a long query would hold it for nothing */
	if (be->paused)
		backend_resume(be);
	ev_timer_stop(p->w->loop, &be->timer);
	ev_timer_init(&be->timer, on_orphan_timeout, ORPHAN_TIMEOUT, 0);
	ev_timer_start(p->w->loop, &be->timer);
	pool_on_orphan_progress(be);
}

void pool_on_orphan_progress(backend *be)
{
	pool *p = be->pool;
	if (!backend_idle(be))
		return;
	if (!be->cleanup_sent) {
		be->cleanup_sent = true;
		bool sent = false;
		if (be->txn_status != 'I') {
			backend_send_silent(be, "ROLLBACK", 8, NULL, 0);
			sent = true;
		}
		if (be->discard_needed) {
			backend_send_silent(be, "DISCARD ALL", 11, NULL, 0);
			be->settings_hash = 0;
			be->settings_role = false;
			sent = true;
		}
		if (sent)
			return;
	}
	ev_timer_stop(p->w->loop, &be->timer);
	if (be->txn_status != 'I') {
		pool_drop(be);
		return;
	}
	list_remove(&p->busy, be);
	make_available(p, be);
}

/* Close what has been idle too long (keeping min_idle), once a second. */
static void on_maintenance(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)revents;
	pool *p = (pool *)((char *)t - offsetof(pool, maintenance));
	ev_tstamp now = ev_now(loop);
	backend *be = p->idle;
	while (be) {
		backend *next = be->next;
		bool too_idle = p->cfg->idle_timeout > 0 && now - be->last_used > p->cfg->idle_timeout &&
				p->idle_count > p->cfg->min_idle;
		bool too_old = p->cfg->lifetime > 0 && now - be->created > p->cfg->lifetime;
		if (too_idle || too_old)
			pool_drop(be);
		be = next;
	}
}

pool *pool_new(worker *w, const pool_config *cfg, const char *database, const char *user)
{
	pool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->w = w;
	p->cfg = cfg;
	p->database = strdup(database);
	p->user = strdup(user);
	if (!p->database || !p->user) {
		pool_free(p);
		return NULL;
	}
	ev_timer_init(&p->maintenance, on_maintenance, 1.0, 1.0);
	ev_timer_start(w->loop, &p->maintenance);
	return p;
}

void pool_free(pool *p)
{
	ev_timer_stop(p->w->loop, &p->maintenance);
	while (p->idle) {
		backend *be = p->idle;
		list_remove(&p->idle, be);
		backend_destroy(be);
	}
	while (p->busy) {
		backend *be = p->busy;
		list_remove(&p->busy, be);
		backend_destroy(be);
	}
	free(p->database);
	free(p->user);
	free(p);
}
