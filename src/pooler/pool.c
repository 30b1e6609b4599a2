/*
 * Pools of server connections, one per (database, user) on each worker:
 * idle connections are reused most-recent-first, clients queue when the
 * pool is full, and connections left dirty by a client are cleaned before
 * anyone else gets them.
 */
#include "pooler/pool.h"

#include <pthread.h>

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "pooler/backend.h"

#define ORPHAN_TIMEOUT 30.0 /* seconds an abandoned connection may take to come clean */
#define POOL_LIMIT_MEMORY 30.0 /* seconds a server's lower connection limit is kept */

/* ---- the group: counts shared by the workers' pools of one (database, user) */

static pthread_mutex_t groups_lock = PTHREAD_MUTEX_INITIALIZER;
static pool_group *groups;

/* owner: the one worker whose group it is, or -1 for one shared by all. */
static pool_group *group_for(const char *database, const char *user, int limit, int owner)
{
	pthread_mutex_lock(&groups_lock);
	pool_group *g = groups;
	while (g && !(strcmp(g->database, database) == 0 && strcmp(g->user, user) == 0 &&
		      g->owner == owner))
		g = g->next;
	if (!g) {
		g = calloc(1, sizeof *g);
		if (g) {
			g->database = strdup(database);
			g->user = strdup(user);
			g->limit = limit;
			g->owner = owner;
			if (!g->database || !g->user) {
				free(g->database);
				free(g->user);
				free(g);
				g = NULL;
			} else {
				g->next = groups;
				groups = g;
			}
		}
	}
	pthread_mutex_unlock(&groups_lock);
	return g;
}

/* The limit in force: the configured one, or the server's own if lower
 * and learned recently. */
static int group_limit(pool_group *g)
{
	int learned = __atomic_load_n(&g->learned, __ATOMIC_RELAXED);
	if (learned <= 0 || learned >= g->limit)
		return g->limit;
	if ((int64_t)(ev_time() * 1000) > __atomic_load_n(&g->learned_until, __ATOMIC_RELAXED)) {
		__atomic_store_n(&g->learned, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&g->logged, 0, __ATOMIC_RELAXED);
		return g->limit;
	}
	return learned;
}

/*
 * The server refused a connection with 53300 (too many connections for
 * the role, the database, or at all) while `open` others of the group
 * are open or opening: its limit is below the pool size. Remember it for
 * a while, so the pool stops asking for more.
 */
static void group_learn_limit(pool_group *g, int open)
{
	int cur = __atomic_load_n(&g->learned, __ATOMIC_RELAXED);
	/* Failures of a burst of connects each see the ones still opening:
	 * the lowest count seen is the nearest to the truth. */
	if (cur <= 0 || open < cur)
		__atomic_store_n(&g->learned, open, __ATOMIC_RELAXED);
	__atomic_store_n(&g->learned_until, (int64_t)((ev_time() + POOL_LIMIT_MEMORY) * 1000),
			 __ATOMIC_RELAXED);
}

/* Take one connection's room under the limit. */
static bool group_reserve(pool_group *g)
{
	int open = __atomic_load_n(&g->open, __ATOMIC_RELAXED);
	while (open < group_limit(g))
		if (__atomic_compare_exchange_n(&g->open, &open, open + 1, false, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED))
			return true;
	return false;
}

static void set_waiting_to(pool *p, int n)
{
	pool_group *g = p->group;
	int was = __atomic_exchange_n(&g->waiting[p->w->index], n, __ATOMIC_RELAXED);
	if ((was > 0) != (n > 0))
		__atomic_add_fetch(&g->workers_waiting, n > 0 ? 1 : -1, __ATOMIC_RELAXED);
}

static void set_waiting(pool *p)
{
	set_waiting_to(p, p->nwaiting);
}

/* Another worker whose clients wait, or -1. */
static int worker_in_need(pool *p)
{
	pool_group *g = p->group;
	/* Checked on every release: mostly nobody waits anywhere. */
	if (__atomic_load_n(&g->workers_waiting, __ATOMIC_RELAXED) <= 0)
		return -1;
	for (int i = 0; i < POOL_MAX_WORKERS; i++)
		if (i != p->w->index && __atomic_load_n(&g->waiting[i], __ATOMIC_RELAXED) > 0 &&
		    __atomic_load_n(&g->workers[i], __ATOMIC_ACQUIRE))
			return i;
	return -1;
}

static void open_one(pool *p);
static void make_available(pool *p, backend *be);
static void list_push(backend **head, backend *be);
static void list_remove(backend **head, backend *be);
static void idle_add(pool *p, backend *be);
static void idle_remove(pool *p, backend *be);
static void on_donate_soon(struct ev_loop *loop, ev_timer *t, int revents);

/* Room was freed somewhere: the worker told opens a connection if its
 * clients still wait. */
static void task_capacity(worker *w, void *arg)
{
	pool *p = ((pool_group *)arg)->pools[w->index];
	if (p && p->nwaiting > p->connecting && group_reserve(p->group))
		open_one(p);
}

/* A connection handed over by another worker joins this one. */
static void task_adopt(worker *w, void *arg)
{
	backend *be = arg;
	pool *p = be->pool->group->pools[w->index];
	be->pool = p;
	be->conn.w = w;
	p->open++;
	conn_read_start(&be->conn);
	make_available(p, be);
}

/* Give an idle connection to a worker whose clients wait. */
static void donate(pool *p, backend *be, int to)
{
	pool_group *g = p->group;
	p->open--;
	conn_read_stop(&be->conn);
	ev_io_stop(p->w->loop, &be->conn.wio);
	ev_timer_stop(p->w->loop, &be->timer);
	be->pool = p; /* task_adopt finds the group through it */
	if (worker_post(g->workers[to], task_adopt, be) != 0) {
		/* Cannot hand it over: keep it. */
		p->open++;
		conn_read_start(&be->conn);
		idle_add(p, be);
	}
}

/* Hand an idle connection, with nothing buffered either way, to a worker
 * whose clients wait. Runs from the loop, never from inside a read. */
static void donate_idle(pool *p)
{
	/* A remote connection lives on its worker's channel: never handed over. */
	if (p->nwaiting > 0 || p->cfg->remote)
		return;
	int to = worker_in_need(p);
	if (to < 0)
		return;
	for (backend *be = p->idle; be; be = be->next) {
		if (pgw_rbuf_len(&be->conn.in) || conn_pending(&be->conn) || be->paused)
			continue;
		idle_remove(p, be);
		donate(p, be, to);
		return;
	}
}

/* A worker's clients wait and the limit is reached: ask the others for
 * their idle connections. */
static void task_donate_request(worker *w, void *arg)
{
	pool_group *g = arg;
	pool *p = g->pools[w->index];
	if (p)
		donate_idle(p);
}

static void ask_for_donations(pool *p)
{
	pool_group *g = p->group;
	for (int i = 0; i < POOL_MAX_WORKERS; i++) {
		worker *w = __atomic_load_n(&g->workers[i], __ATOMIC_ACQUIRE);
		if (w && i != p->w->index)
			worker_post(w, task_donate_request, g);
	}
}

/* A connection closed: its room goes to whoever waits, here first. */
static void room_freed(pool *p)
{
	__atomic_sub_fetch(&p->group->open, 1, __ATOMIC_ACQ_REL);
	if (p->nwaiting > p->connecting) {
		if (group_reserve(p->group))
			open_one(p);
		return;
	}
	int to = worker_in_need(p);
	if (to >= 0)
		worker_post(p->group->workers[to], task_capacity, p->group);
}

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

/* The idle list, with its count and each member's flag kept in step. */
static void idle_add(pool *p, backend *be)
{
	list_push(&p->idle, be);
	be->in_idle = true;
	p->idle_count++;
}

static void idle_remove(pool *p, backend *be)
{
	list_remove(&p->idle, be);
	be->in_idle = false;
	p->idle_count--;
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
	set_waiting(p);
	ev_timer_stop(p->w->loop, &wt->timer);
}

static void grant(pool *p, pool_waiter *wt, backend *be)
{
	waiter_unlink(p, wt);
	list_push(&p->busy, be);
	be->last_used = ev_now(p->w->loop);
	wt->granted(wt, be, NULL, NULL, 0);
}

/* Open a connection in room already reserved with group_reserve. */
static void open_one(pool *p)
{
	backend *be = backend_connect(p);
	if (!be) {
		log_error("could not open a server connection for %s/%s", p->database, p->user);
		__atomic_sub_fetch(&p->group->open, 1, __ATOMIC_ACQ_REL);
		return;
	}
	p->open++;
	p->connecting++;
	/* On the busy list while it logs in, so that pool_free finds it. */
	list_push(&p->busy, be);
}

static void on_wait_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	pool_waiter *wt = (pool_waiter *)((char *)t - offsetof(pool_waiter, timer));
	pool *p = wt->pool;
	waiter_unlink(p, wt);
	pgw_error err;
	char size[64];
	int limit = group_limit(p->group);
	if (limit < p->group->limit)
		snprintf(size, sizeof size, "pool size %d; the server allows %d", p->group->limit,
			 limit);
	else
		snprintf(size, sizeof size, "pool size %d", limit);
	pgw_error_set(&err, PGW_SEV_ERROR, "53300",
		      "no server connection for user \"%s\" database \"%s\" became free within %g s "
		      "(%s)",
		      p->user, p->database, p->cfg->wait_timeout, size);
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
		idle_remove(p, be);
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
	set_waiting(p);
	ev_timer_init(&wt->timer, on_wait_timeout, p->cfg->wait_timeout, 0);
	if (p->cfg->wait_timeout > 0)
		ev_timer_start(p->w->loop, &wt->timer);
	/* One new connection per waiter beyond those already coming; at the
	 * limit, other workers' idle connections are asked for. */
	if (p->connecting < p->nwaiting) {
		if (group_reserve(p->group))
			open_one(p);
		else
			ask_for_donations(p);
	}
	return NULL;
}

backend *pool_acquire_matching(pool *p, pool_waiter *wt, pool_grant_fn granted, uint64_t settings_hash)
{
	/* The most recent idle connection set up so goes first. */
	for (backend *be = p->idle; be; be = be->next) {
		if (be->settings_hash == settings_hash) {
			if (be != p->idle) {
				idle_remove(p, be);
				idle_add(p, be);
			}
			break;
		}
	}
	return pool_acquire(p, wt, granted);
}

void pool_cancel_wait(pool_waiter *wt)
{
	if (wt->queued)
		waiter_unlink(wt->pool, wt);
}

/* A clean connection, on no list: to the first waiter here, to a worker
 * whose clients wait, or to the idle list. */
static void on_drop_soon(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	pool_drop((backend *)((char *)t - offsetof(backend, timer)));
}

/*
 * Close a server connection from the loop: this may run inside its own
 * reader (a holder that lets it go at ReadyForQuery), which looks at it
 * again once the call returns. It waits on the busy list, where nobody
 * takes it and pool_free finds it.
 */
static void drop_soon(pool *p, backend *be)
{
	be->orphan = false;
	be->owner_ops = NULL;
	be->owner = NULL;
	list_remove(&p->busy, be);
	list_push(&p->busy, be);
	ev_timer_stop(p->w->loop, &be->timer);
	ev_timer_init(&be->timer, on_drop_soon, 0, 0);
	ev_timer_start(p->w->loop, &be->timer);
}

static void make_available(pool *p, backend *be)
{
	ev_tstamp now = ev_now(p->w->loop);
	if (p->cfg->lifetime > 0 && now - be->created > p->cfg->lifetime) {
		drop_soon(p, be);
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
	idle_add(p, be);
	/* Closed from the loop: up the stack its reader may still look at it. */
	if (p->keep_none && !ev_is_active(&p->close_soon))
		ev_timer_start(p->w->loop, &p->close_soon);
	/* Other workers' clients may be waiting for it; hand it over from the
	 * loop, once nothing up the stack is reading this connection. */
	if (worker_in_need(p) >= 0 && !ev_is_active(&p->donate_soon))
		ev_timer_start(p->w->loop, &p->donate_soon);
}

static void on_donate_soon(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	pool *p = (pool *)((char *)t - offsetof(pool, donate_soon));
	donate_idle(p);
}

static void close_idle(pool *p)
{
	while (p->idle)
		pool_drop(p->idle);
}

static void on_close_soon(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	close_idle((pool *)((char *)t - offsetof(pool, close_soon)));
}

void pool_on_ready(backend *be)
{
	pool *p = be->pool;
	p->connecting--;
	list_remove(&p->busy, be);
	make_available(p, be);
}

void pool_on_failed(backend *be, const pgw_error *err)
{
	pool *p = be->pool;
	p->connecting--;
	p->open--;
	list_remove(&p->busy, be);
	int group_open = __atomic_sub_fetch(&p->group->open, 1, __ATOMIC_ACQ_REL);
	if (strcmp(err->sqlstate, "53300") == 0 && group_open > 0 && !p->cfg->remote &&
	    !p->cfg->refusals_to_client) {
		/* The server's limit is below the pool size, and connections of
		 * the group are open: the queue waits for one of them (up to the
		 * pool timeout) rather than hearing the refusal. */
		group_learn_limit(p->group, group_open);
		if (__atomic_exchange_n(&p->group->logged, 1, __ATOMIC_RELAXED) == 0)
			log_warning("the server refused a connection for %s/%s with %d open (%s): its "
				    "limit is below the pool size; clients wait for the open ones, and "
				    "no more are tried for %g s",
				    p->database, p->user, group_open, err->message, POOL_LIMIT_MEMORY);
		else
			log_debug("server connection for %s/%s refused: %s", p->database, p->user,
				  err->message);
		backend_destroy(be);
		if (p->nwaiting > 0 && p->open == 0)
			ask_for_donations(p);
		return;
	}
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
	/* In session mode the open connections are other clients' for their
	 * whole session: each waiter left tries one of its own, as it would
	 * directly, and hears the server's answer. */
	if (p->cfg->refusals_to_client && p->nwaiting > p->connecting && group_reserve(p->group))
		open_one(p);
}

void pool_on_closed(backend *be)
{
	pool_drop(be);
}

void pool_drop(backend *be)
{
	pool *p = be->pool;
	if (be->in_idle) {
		idle_remove(p, be);
	} else {
		list_remove(&p->busy, be);
	}
	p->open--;
	backend_destroy(be);
	room_freed(p);
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
	if (be->retire && !p->cfg->remote) {
		drop_soon(p, be); /* the server ends its session, as at a disconnect */
		return;
	}
	if (!discard && backend_idle(be) && be->txn_status == 'I') {
		list_remove(&p->busy, be);
		make_available(p, be);
		return;
	}
	/* Dirty: clean it up while it stays on the busy list. */
	be->orphan = true;
	be->discard_needed = discard;
	be->cleanup_sent = false;
	if (be->pending_count || be->copy_in)
		backend_cancel(be, NULL, NULL); /* a long query would hold it for nothing */
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
			backend_send_query(be, "ROLLBACK", 8, true);
			sent = true;
		}
		if (be->discard_needed) {
			backend_send_query(be, "DISCARD ALL", 11, true);
			stmtcache_clear(&be->stmts);
			be->settings_hash = 0;
			be->settings_role = false;
			sent = true;
		}
		if (sent)
			return;
	}
	ev_timer_stop(p->w->loop, &be->timer);
	if (be->txn_status != 'I') {
		drop_soon(p, be);
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

/* ---- idle connections closed for a database statement (pool_close_idle) */

struct pool_sweep {
	worker *origin;
	char *database; /* NULL: all but except */
	char *except;
	int pending; /* workers not done yet: only origin's thread touches it */
	void (*done)(void *arg);
	void *arg;
};

static bool sweep_wants(const pool_sweep *s, const char *database)
{
	if (s->database)
		return strcmp(s->database, database) == 0;
	return !s->except || strcmp(s->except, database) != 0;
}

static void sweep_free(pool_sweep *s)
{
	free(s->database);
	free(s->except);
	free(s);
}

/* On the origin: one worker is done. */
static void task_swept(worker *w, void *arg)
{
	pool_sweep *s = arg;
	(void)w;
	if (--s->pending > 0)
		return;
	if (s->done)
		s->done(s->arg);
	sweep_free(s);
}

/* On each worker: its own pools (remote ones hold no server connection). */
static void task_sweep(worker *w, void *arg)
{
	pool_sweep *s = arg;
	pthread_mutex_lock(&groups_lock);
	for (pool_group *g = groups; g; g = g->next) {
		pool *p = __atomic_load_n(&g->workers[w->index], __ATOMIC_ACQUIRE) ? g->pools[w->index] : NULL;
		if (p && !p->cfg->remote && p->w == w && sweep_wants(s, g->database)) {
			if (p->idle_count)
				log_info("closing %d idle server connection(s) to %s/%s for a database statement",
					 p->idle_count, p->database, p->user);
			close_idle(p);
		}
	}
	pthread_mutex_unlock(&groups_lock);
	if (w == s->origin)
		task_swept(w, s);
	else if (worker_post(s->origin, task_swept, s) != 0)
		log_error("could not report idle connections closed"); /* the origin waits on */
}

pool_sweep *pool_close_idle(worker *w, const char *database, const char *except,
			    void (*done)(void *arg), void *arg)
{
	pool_sweep *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->origin = w;
	s->done = done;
	s->arg = arg;
	s->database = database ? strdup(database) : NULL;
	s->except = except ? strdup(except) : NULL;
	if ((database && !s->database) || (except && !s->except)) {
		sweep_free(s);
		return NULL;
	}
	/* The workers with a pool of such a database, and always the origin
	 * (so done runs from its loop). */
	worker *to[POOL_MAX_WORKERS] = {0};
	to[w->index] = w;
	pthread_mutex_lock(&groups_lock);
	for (pool_group *g = groups; g; g = g->next) {
		if (g->owner >= 0 || !sweep_wants(s, g->database))
			continue;
		for (int i = 0; i < POOL_MAX_WORKERS; i++) {
			worker *x = __atomic_load_n(&g->workers[i], __ATOMIC_ACQUIRE);
			if (x)
				to[i] = x;
		}
	}
	pthread_mutex_unlock(&groups_lock);
	s->pending = 1; /* until every task is posted */
	for (int i = 0; i < POOL_MAX_WORKERS; i++)
		if (to[i] && worker_post(to[i], task_sweep, s) == 0)
			s->pending++;
	if (--s->pending == 0) { /* nothing could be posted */
		sweep_free(s);
		return NULL;
	}
	return s;
}

void pool_sweep_abandon(pool_sweep *s)
{
	s->done = NULL;
	s->arg = NULL;
}

/* ---- statements gone stale everywhere (see pool_forget_statement) */

static void forget_in(pool *p, const stmt_key *k)
{
	for (int busy = 0; busy < 2; busy++)
		for (backend *be = busy ? p->busy : p->idle; be; be = be->next) {
			stmtcache_entry *e;
			while ((e = stmtcache_find(&be->stmts, k)))
				stmtcache_remove(&be->stmts, e);
		}
}

typedef struct forget_task {
	pool_group *group;
	uint32_t len;
	uint8_t key[];
} forget_task;

static void task_forget(worker *w, void *arg)
{
	forget_task *t = arg;
	pool *p = t->group->pools[w->index];
	stmt_key k = {t->key, t->len, stmt_key_hash(t->key, t->len)};
	if (p)
		forget_in(p, &k);
	free(t);
}

void pool_forget_statement(pool *p, const uint8_t *key, uint32_t len)
{
	stmt_key k = {key, len, stmt_key_hash(key, len)};
	forget_in(p, &k);
	pool_group *g = p->group;
	for (int i = 0; i < POOL_MAX_WORKERS; i++) {
		worker *w = __atomic_load_n(&g->workers[i], __ATOMIC_ACQUIRE);
		if (!w || w == p->w)
			continue;
		forget_task *t = malloc(sizeof *t + len);
		if (!t)
			continue;
		t->group = g;
		t->len = len;
		memcpy(t->key, key, len);
		if (worker_post(w, task_forget, t) != 0)
			free(t);
	}
}

void pool_forget_stale(backend *be, stmtcache_entry *e)
{
	/* e's key goes with e: a copy names the statement everywhere. */
	uint8_t *key = be->pool && !be->pool->cfg->remote ? malloc(e->key_len) : NULL;
	if (!key) {
		stmtcache_remove(&be->stmts, e);
		return;
	}
	uint32_t len = e->key_len;
	memcpy(key, e->key, len);
	pool_forget_statement(be->pool, key, len);
	free(key);
}

pool *pool_new(worker *w, const pool_config *cfg, const char *database, const char *user)
{
	/* Remote connections are a socketpair each and live on their worker's
	 * channel (never handed to another worker), and the multipooler keeps
	 * its own limit: a remote pool's size bounds each worker's holds. */
	pool_group *g = group_for(database, user, cfg->pool_size, cfg->remote ? w->index : -1);
	if (!g || w->index >= POOL_MAX_WORKERS)
		return NULL;
	pool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->w = w;
	p->group = g;
	p->cfg = cfg;
	p->database = strdup(database);
	p->user = strdup(user);
	if (!p->database || !p->user) {
		pool_free(p);
		return NULL;
	}
	ev_timer_init(&p->maintenance, on_maintenance, 1.0, 1.0);
	ev_timer_start(w->loop, &p->maintenance);
	ev_timer_init(&p->donate_soon, on_donate_soon, 0, 0);
	ev_timer_init(&p->close_soon, on_close_soon, 0, 0);
	p->keep_none = !cfg->remote && (strcmp(database, "template0") == 0 || strcmp(database, "template1") == 0);
	g->pools[w->index] = p;
	__atomic_store_n(&g->workers[w->index], w, __ATOMIC_RELEASE);
	return p;
}

void pool_free(pool *p)
{
	__atomic_store_n(&p->group->workers[p->w->index], NULL, __ATOMIC_RELEASE);
	set_waiting_to(p, 0);
	ev_timer_stop(p->w->loop, &p->maintenance);
	ev_timer_stop(p->w->loop, &p->donate_soon);
	ev_timer_stop(p->w->loop, &p->close_soon);
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
	if (p->cred.password) {
		OPENSSL_cleanse((char *)p->cred.password, strlen(p->cred.password));
		free((char *)p->cred.password);
	}
	OPENSSL_cleanse(&p->cred, sizeof p->cred);
	free(p->database);
	free(p->user);
	free(p);
}

void pool_registry_init(pool_registry *r, worker *w, const pool_config *cfg)
{
	r->w = w;
	r->cfg = cfg;
	r->pools = NULL;
}

pool *pool_registry_get(pool_registry *r, const char *database, const char *user)
{
	for (pool *p = r->pools; p; p = p->next)
		if (strcmp(p->database, database) == 0 && strcmp(p->user, user) == 0)
			return p;
	pool *p = pool_new(r->w, r->cfg, database, user);
	if (!p)
		return NULL;
	p->next = r->pools;
	r->pools = p;
	return p;
}

void pool_registry_clear(pool_registry *r)
{
	while (r->pools) {
		pool *p = r->pools;
		r->pools = p->next;
		pool_free(p);
	}
}

void pool_set_credentials(pool *p, const pool_credentials *c)
{
	if (c->have_keys) {
		p->cred.have_keys = true;
		memcpy(p->cred.client_key, c->client_key, sizeof c->client_key);
		memcpy(p->cred.server_key, c->server_key, sizeof c->server_key);
	}
	if (c->have_md5) {
		p->cred.have_md5 = true;
		memcpy(p->cred.md5, c->md5, sizeof c->md5);
	}
	if (c->password && !p->cred.password)
		p->cred.password = strdup(c->password);
}

void pool_groups_free(void)
{
	pthread_mutex_lock(&groups_lock);
	while (groups) {
		pool_group *g = groups;
		groups = g->next;
		free(g->database);
		free(g->user);
		free(g);
	}
	pthread_mutex_unlock(&groups_lock);
}
