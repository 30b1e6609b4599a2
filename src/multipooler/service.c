/*
 * The MultiPoolerService glue: each worker's method table (request ->
 * executor), the health stream with its probe, the reservation sweep, and
 * starting and stopping the workers.
 */
#include "multipooler/mp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "multipooler/exec.h"
#include "pgw/bufpool.h"
#include "query.pb-c.h"

struct mp_health {
	rpc_call *call;
	mp_worker *mw;
	struct mp_health *next;
};

/* ---------------------------------------------------------------- methods */

static void on_stream_execute(rpc_call *c, const ProtobufCMessage *m, void *arg)
{
	mpx_start(arg, c, MPX_STREAM, m);
}

static void on_execute_query(rpc_call *c, const ProtobufCMessage *m, void *arg)
{
	mpx_start(arg, c, MPX_UNARY, m);
}

static void on_portal_stream_execute(rpc_call *c, const ProtobufCMessage *m, void *arg)
{
	mpx_start(arg, c, MPX_PORTAL, m);
}

static void on_describe(rpc_call *c, const ProtobufCMessage *m, void *arg)
{
	const Multipoolerservice__DescribeRequest *r = (const void *)m;
	/* A portal alone: one already open on the reserved connection. */
	bool open_portal = r->portal && r->options && r->options->reserved_connection_id;
	if (!r->prepared_statement && !open_portal) {
		rpc_call_finish(c, RPC_INVALID_ARGUMENT,
				"Describe needs a prepared_statement, or a portal of a reserved connection", NULL);
		return;
	}
	mpx_start(arg, c, MPX_DESCRIBE, m);
}

static void on_conclude(rpc_call *c, const ProtobufCMessage *m, void *arg)
{
	mpx_start(arg, c, MPX_CONCLUDE, m);
}

static void on_auth(rpc_call *c, const ProtobufCMessage *m, void *arg)
{
	const Multipoolerservice__GetAuthCredentialsRequest *r = (const void *)m;
	if (!r->username[0]) {
		rpc_call_finish(c, RPC_INVALID_ARGUMENT, "GetAuthCredentials needs a username", NULL);
		return;
	}
	mpx_start(arg, c, MPX_AUTH, m);
}

static void on_release(rpc_call *c, const ProtobufCMessage *m, void *arg)
{
	mpx_release(arg, c, (const Multipoolerservice__ReleaseReservedConnectionRequest *)m);
}

static void on_copy(rpc_call *c, const ProtobufCMessage *m, void *arg)
{
	mpx_copy_message(arg, c, m);
}

static void on_copy_half_close(rpc_call *c, void *arg)
{
	(void)arg;
	mpx_copy_half_close(c);
}

static void on_call_cancel(rpc_call *c, void *arg)
{
	(void)arg;
	mpx_cancel(c);
}

/* ---------------------------------------------------------------- health */

static void health_send(mp_health *h)
{
	mp_worker *mw = h->mw;
	const mp_config *cfg = &mw->srv->cfg;
	Clustermetadata__ID id;
	mpx_pooler_id(mw, &id);
	Clustermetadata__ShardKey key = CLUSTERMETADATA__SHARD_KEY__INIT;
	key.database = cfg->database;
	key.table_group = "default";
	key.shard = "0-inf";
	Query__Target t = QUERY__TARGET__INIT;
	t.shard_key = &key;
	t.mode = QUERY__TARGET__MODE__WRITABLE;
	Multipoolerservice__StreamPoolerHealthResponse r =
		MULTIPOOLERSERVICE__STREAM_POOLER_HEALTH_RESPONSE__INIT;
	r.pooler_id = &id;
	r.target = &t;
	r.serving = mw->serving == 1;
	r.reason = mw->reason;
	rpc_call_send(h->call, &r.base);
}

static void probe_result(mp_worker *mw, bool ok, const char *why)
{
	if (mw->probe_fd >= 0) {
		ev_io_stop(mw->w.loop, &mw->probe_io);
		close(mw->probe_fd);
		mw->probe_fd = -1;
	}
	int now = ok ? 1 : 0;
	if (now == mw->serving)
		return;
	mw->serving = now;
	if (ok)
		snprintf(mw->reason, sizeof mw->reason, "%s", "");
	else
		snprintf(mw->reason, sizeof mw->reason, "PostgreSQL is unreachable: %s", why);
	log_info("PostgreSQL %s%s%s", ok ? "reachable" : "unreachable", ok ? "" : ": ",
		 ok ? "" : why);
	for (mp_health *h = mw->health; h; h = h->next)
		health_send(h);
}

static void on_probe_io(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	mp_worker *mw = (mp_worker *)((char *)io - offsetof(mp_worker, probe_io));
	int soerr = 0;
	socklen_t len = sizeof soerr;
	getsockopt(mw->probe_fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
	probe_result(mw, soerr == 0, strerror(soerr));
}

/* A connect to the server: cheap, and it fails as soon as PostgreSQL is
 * down. One in flight at a time; one still pending at the next tick
 * counts as a failure. */
static void probe_start(mp_worker *mw)
{
	const pool_config *pc = &mw->srv->cfg.pool;
	if (mw->probe_fd >= 0) {
		probe_result(mw, false, "connect timed out");
		return;
	}
	int fd = socket(pc->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		probe_result(mw, false, strerror(errno));
		return;
	}
	if (connect(fd, (const struct sockaddr *)&pc->addr, pc->addrlen) == 0) {
		close(fd);
		probe_result(mw, true, "");
		return;
	}
	if (errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		probe_result(mw, false, strerror(e));
		return;
	}
	mw->probe_fd = fd;
	ev_io_init(&mw->probe_io, on_probe_io, fd, EV_WRITE);
	ev_io_start(mw->w.loop, &mw->probe_io);
}

static void on_probe_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	mp_worker *mw = (mp_worker *)((char *)t - offsetof(mp_worker, probe_timer));
	if (!mw->health) {
		ev_timer_stop(mw->w.loop, t);
		return;
	}
	probe_start(mw);
}

static void on_health(rpc_call *c, const ProtobufCMessage *m, void *arg)
{
	(void)m;
	mp_worker *mw = arg;
	mp_health *h = calloc(1, sizeof *h);
	if (!h) {
		rpc_call_finish(c, RPC_RESOURCE_EXHAUSTED, "out of memory", NULL);
		return;
	}
	h->call = c;
	h->mw = mw;
	h->next = mw->health;
	mw->health = h;
	rpc_call_set_data(c, h);
	if (mw->serving >= 0)
		health_send(h);
	if (!ev_is_active(&mw->probe_timer)) {
		/* Nobody watched: what we knew may be old. */
		mw->serving = -1;
		ev_timer_start(mw->w.loop, &mw->probe_timer);
		probe_start(mw);
	}
}

static void on_health_cancel(rpc_call *c, void *arg)
{
	mp_worker *mw = arg;
	mp_health *h = rpc_call_data(c);
	mp_health **link = &mw->health;
	while (*link && *link != h)
		link = &(*link)->next;
	if (*link)
		*link = h->next;
	free(h);
}

/* ---------------------------------------------------------------- workers */

static void on_resv_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	mpx_resv_sweep((mp_worker *)((char *)t - offsetof(mp_worker, resv_timer)));
}

static void stop_task(worker *w, void *arg)
{
	(void)arg;
	mp_worker *mw = (mp_worker *)w;
	/* Cancelling every call lets the executor hand connections back. */
	if (mw->rpc)
		rpc_server_free(mw->rpc);
	mw->rpc = NULL;
	while (mw->health) {
		mp_health *h = mw->health;
		mw->health = h->next;
		free(h);
	}
	ev_timer_stop(w->loop, &mw->resv_timer);
	ev_timer_stop(w->loop, &mw->probe_timer);
	if (mw->probe_fd >= 0) {
		ev_io_stop(w->loop, &mw->probe_io);
		close(mw->probe_fd);
		mw->probe_fd = -1;
	}
	mpx_resv_free_all(mw);
	pool_registry_clear(&mw->pools);
	bufpool_thread_trim();
	ev_break(w->loop, EVBREAK_ALL);
}

#define M(name, type, fn, half, cancel)                                                        \
	{                                                                                      \
		MP_SERVICE name, &multipoolerservice__##type##__descriptor, fn, half, cancel, mw \
	}

static void fill_methods(mp_worker *mw)
{
	rpc_method t[9] = {
		M("StreamExecute", stream_execute_request, on_stream_execute, NULL, on_call_cancel),
		M("ExecuteQuery", execute_query_request, on_execute_query, NULL, on_call_cancel),
		M("PortalStreamExecute", portal_stream_execute_request, on_portal_stream_execute,
		  NULL, on_call_cancel),
		M("Describe", describe_request, on_describe, NULL, on_call_cancel),
		M("ConcludeTransaction", conclude_transaction_request, on_conclude, NULL,
		  on_call_cancel),
		M("ReleaseReservedConnection", release_reserved_connection_request, on_release,
		  NULL, NULL),
		M("GetAuthCredentials", get_auth_credentials_request, on_auth, NULL,
		  on_call_cancel),
		M("CopyBidiExecute", copy_bidi_execute_request, on_copy, on_copy_half_close,
		  on_call_cancel),
		M("StreamPoolerHealth", stream_pooler_health_request, on_health, NULL,
		  on_health_cancel),
	};
	memcpy(mw->methods, t, sizeof t);
}

int mp_server_start(mp_server *s)
{
	mp_config *cfg = &s->cfg;
	s->nworkers = cfg->workers;
	s->workers = calloc((size_t)s->nworkers, sizeof *s->workers);
	if (!s->workers)
		return -1;
	char addr[512];
	snprintf(addr, sizeof addr, "%s", cfg->listen);
	rpc_server_config rc = {30, 10, 1u << 20};
	for (int i = 0; i < s->nworkers; i++) {
		mp_worker *mw = &s->workers[i];
		if (worker_init(&mw->w, i) != 0)
			return -1;
		mw->srv = s;
		mw->pool_cfg = cfg->pool;
		pool_registry_init(&mw->pools, &mw->w, &mw->pool_cfg);
		mw->probe_fd = -1;
		mw->serving = -1;
		fill_methods(mw);
		ev_timer_init(&mw->resv_timer, on_resv_timer, 1.0, 1.0);
		ev_timer_start(mw->w.loop, &mw->resv_timer);
		ev_timer_init(&mw->probe_timer, on_probe_timer, cfg->probe_interval,
			      cfg->probe_interval);
		mw->rpc = rpc_server_new(mw->w.loop, mw->methods, 9, &rc);
		if (!mw->rpc || rpc_server_listen(mw->rpc, addr, true) != 0) {
			log_error("cannot listen on %s: %s", addr, strerror(errno));
			return -1;
		}
		if (i == 0 && addr[0] != '/') {
			/* With port 0 the others must share the port the first got. */
			s->port = rpc_server_port(mw->rpc);
			char *colon = strrchr(addr, ':');
			if (colon)
				snprintf(colon + 1, sizeof addr - (size_t)(colon + 1 - addr), "%d",
					 s->port);
		}
	}
	for (int i = 0; i < s->nworkers; i++)
		if (worker_start(&s->workers[i].w) != 0)
			return -1;
	return 0;
}

void mp_server_stop(mp_server *s)
{
	for (int i = 0; i < s->nworkers; i++)
		if (s->workers[i].w.loop)
			worker_post(&s->workers[i].w, stop_task, NULL);
	for (int i = 0; i < s->nworkers; i++)
		worker_join(&s->workers[i].w);
	for (int i = 0; i < s->nworkers; i++)
		worker_destroy(&s->workers[i].w);
	free(s->workers);
	s->workers = NULL;
}
