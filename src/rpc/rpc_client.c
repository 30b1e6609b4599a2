/*
 * The gRPC client channel: one HTTP/2 connection to a target, connected
 * without blocking and reconnected with jittered exponential backoff; calls
 * are streams on it.
 */
#include "rpc.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "rpc_conn.h"
#include "rpc_wire.h"

#define CH_STREAM_WINDOW (1 << 20)
#define CH_CONN_WINDOW (16 << 20)
#define CH_DEFAULT_CALL_BUFFER (256u << 10)
#define CH_RPC_ERROR_TYPE "mtrpc.RPCError"

/* IDLE: the first attempt is due; calls started meanwhile wait for it. */
enum ch_state { CH_IDLE, CH_BACKOFF, CH_CONNECTING, CH_READY };

struct rpc_client_call {
	rpc_channel *ch;
	rpc_client_call *prev, *next;
	int32_t stream_id; /* 0 until submitted */
	char *path;
	const ProtobufCMessageDescriptor *resp;
	double timeout;
	ev_tstamp deadline_at;
	ev_timer timer; /* the deadline, or at 0 a close owed from the loop */
	rpc_client_ops ops;
	void *arg;
	/* output */
	rpc_bq out;
	bool close_send, deferred, blocked, owe_wcb;
	/* input */
	rpc_reasm in;
	rpc_bq held;
	bool paused;
	/* the response's status, from trailers or a trailers-only response */
	int http_status;
	bool got_status;
	int status;
	char *msg;
	uint8_t *err;
	size_t err_len;
	/* a close decided but not yet told (pending_status >= 0) */
	int pending_status;
	char *pending_msg;
	bool stream_open; /* nghttp2 still has the stream */
	bool ending;	  /* no more callbacks but on_close */
	bool done;	  /* on_close has run */
	bool svc;
};

struct rpc_channel {
	rpc_conn base; /* first: the nghttp2 user_data */
	struct ev_loop *loop;
	char *target;
	rpc_channel_config cfg;
	enum ch_state state;
	bool draining; /* GOAWAY received: no new streams on this connection */
	ev_io cio;     /* connect in progress */
	ev_timer timer; /* connect timeout, or the backoff delay */
	double backoff;
	rpc_client_call *calls;
	rpc_arena arena;
	rpc_guard guard;
	ev_prepare prep;
	ev_idle kick;
	nghttp2_session_callbacks *cbs;
	nghttp2_option *opt;
	bool dirty;
	bool closing;
	unsigned rng;
};

static void ch_mark(rpc_channel *ch, rpc_client_call *c)
{
	if (c)
		c->svc = true;
	ch->dirty = true;
	ev_prepare_start(ch->loop, &ch->prep);
}

/* ------------------------------------------------------------ call ends */

static void call_unlink_free(rpc_client_call *c)
{
	rpc_channel *ch = c->ch;
	if (c->prev)
		c->prev->next = c->next;
	else
		ch->calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ev_timer_stop(ch->loop, &c->timer);
	rpc_bq_clear(&c->out);
	rpc_bq_clear(&c->held);
	rpc_reasm_free(&c->in);
	free(c->path);
	free(c->msg);
	free(c->err);
	free(c->pending_msg);
	free(c);
}

/* Tell the user (once), then free unless nghttp2 still holds the stream. */
static void call_close(rpc_client_call *c, int status, const char *message, const uint8_t *err,
		       size_t err_len)
{
	if (!c->done) {
		c->done = true;
		c->ending = true;
		ev_timer_stop(c->ch->loop, &c->timer);
		if (c->ops.on_close)
			c->ops.on_close(c, status, message ? message : "", err, err_len, c->arg);
	}
	if (c->stream_open) {
		/* The stream lives on in nghttp2 until the reset goes out. */
		nghttp2_submit_rst_stream(c->ch->base.h2, NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_CANCEL);
		ch_mark(c->ch, NULL);
		return;
	}
	call_unlink_free(c);
}

/* Close with a status later, from the loop (never inside the API call). */
static void call_close_later(rpc_client_call *c, int status, const char *message)
{
	if (c->ending)
		return;
	c->ending = true;
	c->pending_status = status;
	c->pending_msg = strdup(message);
	ev_timer_stop(c->ch->loop, &c->timer);
	ev_timer_set(&c->timer, 0, 0);
	ev_timer_start(c->ch->loop, &c->timer);
}

static void call_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	rpc_client_call *c = (rpc_client_call *)((char *)w - offsetof(rpc_client_call, timer));
	rpc_channel *ch = c->ch;
	rpc_guard_enter(&ch->guard);
	if (c->pending_status >= 0)
		call_close(c, c->pending_status, c->pending_msg, NULL, 0);
	else
		call_close(c, RPC_DEADLINE_EXCEEDED, "deadline exceeded", NULL, 0);
	rpc_guard_leave(&ch->guard);
}

/* The gRPC mapping of an HTTP status that came without grpc-status. */
static int http_to_grpc(int http)
{
	switch (http) {
	case 400:
		return RPC_INTERNAL;
	case 401:
		return RPC_UNAUTHENTICATED;
	case 403:
		return RPC_PERMISSION_DENIED;
	case 404:
		return RPC_UNIMPLEMENTED;
	case 429:
	case 502:
	case 503:
	case 504:
		return RPC_UNAVAILABLE;
	default:
		return RPC_UNKNOWN;
	}
}

/* The stream is over and every held message was delivered: the status. */
static void call_try_finish(rpc_client_call *c)
{
	if (c->done || c->stream_open || c->ending || c->held.bytes)
		return;
	if (c->got_status && c->status == RPC_OK && rpc_reasm_partial(&c->in)) {
		call_close(c, RPC_INTERNAL, "the response ended inside a message", NULL, 0);
		return;
	}
	call_close(c, c->status, c->msg, c->err, c->err_len);
}

/* ------------------------------------------------------------ input */

static void call_fail_now(rpc_client_call *c, int status, const char *message)
{
	c->ending = true;
	rpc_bq_clear(&c->held);
	call_close(c, status, message, NULL, 0);
}

/* The call's side of rpc_take. */
static rpc_take_state take_state(void *arg)
{
	rpc_client_call *c = arg;
	return c->ending ? RPC_TAKE_GONE : c->paused ? RPC_TAKE_PAUSED : RPC_TAKE_GO;
}

static void take_deliver(void *arg, const ProtobufCMessage *m)
{
	rpc_client_call *c = arg;
	if (c->ops.on_message && !c->ch->closing)
		c->ops.on_message(c, m, c->arg);
}

static void take_fail(void *arg, int status, const char *message)
{
	call_fail_now(arg, status, message);
}

static size_t call_take(rpc_client_call *c, const uint8_t *p, size_t n)
{
	rpc_taker t = {.in = &c->in, .arena = &c->ch->arena, .type = c->resp, .what = "response",
		       .call = c, .state = take_state, .deliver = take_deliver, .fail = take_fail};
	return rpc_take(&t, p, n);
}

static void call_service(rpc_client_call *c)
{
	rpc_channel *ch = c->ch;
	while (c->held.bytes && !c->paused && !c->ending) {
		size_t n;
		const uint8_t *p = rpc_bq_peek(&c->held, &n);
		size_t k = call_take(c, p, n);
		if (c->stream_open)
			nghttp2_session_consume_stream(ch->base.h2, c->stream_id, k);
		rpc_bq_drop(&c->held, k);
	}
	if (c->ending && c->held.bytes) {
		if (c->stream_open)
			nghttp2_session_consume_stream(ch->base.h2, c->stream_id, c->held.bytes);
		rpc_bq_clear(&c->held);
	}
	if (c->owe_wcb && !c->blocked && !c->ending && c->ops.on_writable && !ch->closing) {
		c->owe_wcb = false;
		c->ops.on_writable(c, c->arg);
	}
	if (!c->done)
		call_try_finish(c);
}

/* ------------------------------------------------------------ output */

static ssize_t call_read(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
			 nghttp2_data_source *src, void *ud)
{
	(void)s;
	(void)sid;
	(void)ud;
	rpc_client_call *c = src->ptr;
	if (c->ending) {
		c->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	size_t n = rpc_bq_read(&c->out, buf, len);
	if (c->blocked && c->out.bytes <= c->ch->cfg.call_buffer) {
		c->blocked = false;
		c->owe_wcb = true;
		ch_mark(c->ch, c);
	}
	if (c->out.bytes == 0) {
		if (c->close_send) {
			*flags |= NGHTTP2_DATA_FLAG_EOF;
		} else if (n == 0) {
			c->deferred = true;
			return NGHTTP2_ERR_DEFERRED;
		}
	}
	return (ssize_t)n;
}

static void call_submit(rpc_client_call *c)
{
	rpc_channel *ch = c->ch;
	char to[16];
	nghttp2_nv nv[8] = {
		RPC_NV(":method", "POST"),
		RPC_NV(":scheme", "http"),
		RPC_NV(":path", c->path),
		RPC_NV(":authority", ch->target[0] == '/' ? "localhost" : ch->target),
		RPC_NV("content-type", "application/grpc"),
		RPC_NV("te", "trailers"),
		RPC_NV("user-agent", "pgw-rpc/1"),
	};
	size_t n = 7;
	if (c->deadline_at > 0) {
		double left = c->deadline_at - ev_now(ch->loop);
		rpc_timeout_format(left, to);
		nv[n++] = (nghttp2_nv)RPC_NV("grpc-timeout", to);
	}
	nghttp2_data_provider dp = {.source.ptr = c, .read_callback = call_read};
	int32_t sid = nghttp2_submit_request(ch->base.h2, NULL, nv, n, &dp, c);
	if (sid < 0) {
		call_close_later(c, RPC_UNAVAILABLE, "could not start a stream on the connection");
		return;
	}
	c->stream_id = sid;
	c->stream_open = true;
	ch_mark(ch, NULL);
}

/* ------------------------------------------------------------ nghttp2 callbacks */

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
		     const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
	(void)flags;
	(void)ud;
	if (f->hd.type != NGHTTP2_HEADERS)
		return 0;
	rpc_client_call *c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (!c || c->done)
		return 0;
#define IS(lit) (namelen == sizeof(lit) - 1 && memcmp(name, lit, namelen) == 0)
	if (IS(":status")) {
		int v = 0;
		for (size_t i = 0; i < valuelen && i < 3; i++)
			v = v * 10 + (value[i] - '0');
		c->http_status = v;
	} else if (IS("grpc-status")) {
		int v = 0;
		bool ok = valuelen > 0 && valuelen <= 3;
		for (size_t i = 0; ok && i < valuelen; i++) {
			if (value[i] < '0' || value[i] > '9')
				ok = false;
			else
				v = v * 10 + (value[i] - '0');
		}
		c->got_status = true;
		c->status = ok ? v : RPC_UNKNOWN;
	} else if (IS("grpc-message")) {
		free(c->msg);
		c->msg = rpc_pct_decode(value, valuelen);
	} else if (IS("grpc-status-details-bin")) {
		free(c->err);
		c->err = NULL;
		c->err_len = 0;
		/* A malformed value is ignored: the status still stands. */
		rpc_status_details_decode(value, valuelen, CH_RPC_ERROR_TYPE, &c->err, &c->err_len);
	}
#undef IS
	return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	(void)s;
	rpc_channel *ch = ud;
	if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK))
		rpc_conn_ping_acked(&ch->base);
	else if (f->hd.type == NGHTTP2_GOAWAY)
		ch->draining = true;
	return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data, size_t len,
			 void *ud)
{
	(void)flags;
	(void)ud;
	nghttp2_session_consume_connection(s, len);
	rpc_client_call *c = nghttp2_session_get_stream_user_data(s, sid);
	if (!c || c->ending) {
		nghttp2_session_consume_stream(s, sid, len);
		return 0;
	}
	size_t k = 0;
	if (!c->paused && !c->held.bytes)
		k = call_take(c, data, len);
	if (k < len && !c->ending) {
		if (rpc_bq_append(&c->held, data + k, len - k) != 0) {
			call_fail_now(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
			k = len;
		}
	} else {
		k = len;
	}
	if (k && c->stream_open)
		nghttp2_session_consume_stream(s, sid, k);
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t sid, uint32_t error_code, void *ud)
{
	rpc_channel *ch = ud;
	if (ch->base.dead)
		return 0;
	rpc_client_call *c = nghttp2_session_get_stream_user_data(s, sid);
	if (!c)
		return 0;
	c->stream_open = false;
	if (c->done) {
		call_unlink_free(c);
		return 0;
	}
	if (!c->got_status) {
		c->got_status = true;
		if (error_code == NGHTTP2_REFUSED_STREAM) {
			c->status = RPC_UNAVAILABLE;
			c->msg = strdup("stream refused by the server");
		} else if (error_code == NGHTTP2_CANCEL) {
			c->status = RPC_CANCELLED;
			c->msg = strdup("stream cancelled by the server");
		} else if (c->http_status && c->http_status != 200) {
			char m[64];
			snprintf(m, sizeof m, "HTTP status %d", c->http_status);
			c->status = http_to_grpc(c->http_status);
			c->msg = strdup(m);
		} else {
			c->status = RPC_INTERNAL;
			c->msg = strdup(error_code ? "stream reset by the server" : "response without grpc-status");
		}
	}
	if (c->ending) {
		/* A close owed from the loop will report it. */
		return 0;
	}
	call_try_finish(c);
	return 0;
}

/* ------------------------------------------------------------ connection */

static void ch_connect(rpc_channel *ch);
static void ch_do_free(void *obj);

static double ch_jitter(rpc_channel *ch, double d)
{
	/* +-20 %, so that many gateways do not reconnect in step. */
	ch->rng = ch->rng * 1103515245u + 12345u;
	double r = (double)((ch->rng >> 8) & 0xffff) / 65535.0;
	return d * (0.8 + 0.4 * r);
}

static void ch_fail_all(rpc_channel *ch, int status, const char *message)
{
	rpc_client_call *c = ch->calls;
	while (c) {
		rpc_client_call *next = c->next;
		c->stream_open = false;
		call_close(c, status, message, NULL, 0);
		c = next;
	}
}

/* The connection is gone (or never came): calls fail, retry later. */
static void ch_down(rpc_channel *ch, const char *why)
{
	/* Report a connection lost and also a failed attempt, so that a user
	 * waiting for the first connection hears at once that none came. */
	bool report = ch->state == CH_READY || ch->state == CH_CONNECTING;
	char msg[160];
	snprintf(msg, sizeof msg, "connection to %.100s: %s", ch->target, why);
	ev_io_stop(ch->loop, &ch->cio);
	ev_timer_stop(ch->loop, &ch->timer);
	rpc_conn_close(&ch->base);
	rpc_arena_reset(&ch->arena);
	ch->state = CH_BACKOFF;
	ch->draining = false;
	ch_fail_all(ch, RPC_UNAVAILABLE, msg);
	if (report && ch->cfg.on_state && !ch->closing)
		ch->cfg.on_state(ch, false, ch->cfg.arg);
	double delay = ch_jitter(ch, ch->backoff);
	ch->backoff *= 2;
	if (ch->backoff > ch->cfg.backoff_max)
		ch->backoff = ch->cfg.backoff_max;
	ev_timer_set(&ch->timer, delay, 0);
	ev_timer_start(ch->loop, &ch->timer);
}

static void ch_on_dead(rpc_conn *c, const char *why)
{
	ch_down((rpc_channel *)c, why);
}

static int ch_service(rpc_conn *conn)
{
	rpc_channel *ch = (rpc_channel *)conn;
	for (int round = 0; round < 16; round++) {
		ch->dirty = false;
		rpc_client_call *c = ch->calls;
		while (c) {
			rpc_client_call *next = c->next;
			if (c->svc) {
				c->svc = false;
				/* may free c */
				call_service(c);
			}
			c = next;
		}
		if (ch->state != CH_READY)
			return 0;
		if (rpc_conn_flush(conn) != 0)
			return -1;
		bool more = ch->dirty;
		for (c = ch->calls; c && !more; c = c->next)
			more = c->svc;
		if (!more)
			return 0;
	}
	ch_mark(ch, NULL);
	ev_idle_start(ch->loop, &ch->kick);
	return 0;
}

static void ch_prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)revents;
	rpc_channel *ch = (rpc_channel *)((char *)w - offsetof(rpc_channel, prep));
	ev_prepare_stop(loop, w);
	if (!ch->dirty)
		return;
	rpc_guard_enter(&ch->guard);
	if (ch->state == CH_READY) {
		if (ch_service(&ch->base) != 0)
			rpc_conn_die(&ch->base, "connection finished");
	} else {
		/* No connection: only the deferred per-call work. */
		ch_service(&ch->base);
	}
	rpc_guard_leave(&ch->guard);
}

static void ch_kick_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	(void)revents;
	ev_idle_stop(loop, w);
}

static void ch_ready(rpc_channel *ch, int fd)
{
	ev_io_stop(ch->loop, &ch->cio);
	ev_timer_stop(ch->loop, &ch->timer);
	if (nghttp2_session_client_new2(&ch->base.h2, ch->cbs, ch, ch->opt) != 0) {
		close(fd);
		ch->base.fd = -1;
		ch_down(ch, "out of memory");
		return;
	}
	nghttp2_settings_entry iv[] = {
		{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
		{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, CH_STREAM_WINDOW},
	};
	nghttp2_submit_settings(ch->base.h2, NGHTTP2_FLAG_NONE, iv, 2);
	nghttp2_session_set_local_window_size(ch->base.h2, NGHTTP2_FLAG_NONE, 0, CH_CONN_WINDOW);
	rpc_conn_start(&ch->base, ch->loop, fd, &ch->guard, ch->cfg.keepalive_interval,
		       ch->cfg.keepalive_timeout);
	ch->state = CH_READY;
	ch->draining = false;
	ch->backoff = ch->cfg.backoff_initial;
	for (rpc_client_call *c = ch->calls; c; c = c->next)
		if (!c->stream_id && !c->ending)
			call_submit(c);
	if (ch->cfg.on_state && !ch->closing)
		ch->cfg.on_state(ch, true, ch->cfg.arg);
	if (ch->state == CH_READY && rpc_conn_flush(&ch->base) != 0)
		rpc_conn_die(&ch->base, "could not send the preface");
}

static void ch_connect_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	rpc_channel *ch = w->data;
	int err = 0;
	socklen_t el = sizeof err;
	rpc_guard_enter(&ch->guard);
	if (getsockopt(ch->base.fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
		err = errno;
	if (err)
		ch_down(ch, strerror(err));
	else
		ch_ready(ch, ch->base.fd);
	rpc_guard_leave(&ch->guard);
}

static void ch_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	rpc_channel *ch = (rpc_channel *)((char *)w - offsetof(rpc_channel, timer));
	rpc_guard_enter(&ch->guard);
	if (ch->state == CH_CONNECTING)
		ch_down(ch, "connect timeout");
	else if (ch->state == CH_BACKOFF || ch->state == CH_IDLE)
		ch_connect(ch);
	rpc_guard_leave(&ch->guard);
}

static int ch_socket(const char *target, int *fd_out)
{
	int fd;
	int rc;
	if (target[0] == '/') {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		if (strlen(target) >= sizeof sa.sun_path)
			return ENAMETOOLONG;
		strcpy(sa.sun_path, target);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return errno;
		rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	} else {
		char host[256];
		const char *colon = strrchr(target, ':');
		if (!colon || (size_t)(colon - target) >= sizeof host)
			return EINVAL;
		memcpy(host, target, (size_t)(colon - target));
		host[colon - target] = 0;
		char *h = host;
		if (*h == '[' && h[strlen(h) - 1] == ']') {
			h[strlen(h) - 1] = 0;
			h++;
		}
		struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
		struct addrinfo *res;
		/* Targets are addresses or names from /etc/hosts in practice;
		 * a slow resolver would stall the loop here. */
		if (getaddrinfo(h, colon + 1, &hints, &res) != 0)
			return EHOSTUNREACH;
		fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			int e = errno;
			freeaddrinfo(res);
			return e;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		rc = connect(fd, res->ai_addr, res->ai_addrlen);
		freeaddrinfo(res);
	}
	if (rc != 0 && errno != EINPROGRESS && errno != EAGAIN) {
		int e = errno;
		close(fd);
		return e;
	}
	*fd_out = fd;
	return rc == 0 ? 0 : -1; /* -1: in progress */
}

static void ch_connect(rpc_channel *ch)
{
	int fd = -1;
	int rc = ch_socket(ch->target, &fd);
	if (rc > 0) {
		ch->state = CH_CONNECTING;
		ch_down(ch, strerror(rc));
		return;
	}
	ch->base.fd = fd;
	ch->state = CH_CONNECTING;
	if (rc == 0) {
		ch_ready(ch, fd);
		return;
	}
	ev_io_set(&ch->cio, fd, EV_WRITE);
	ev_io_start(ch->loop, &ch->cio);
	ev_timer_set(&ch->timer, ch->cfg.connect_timeout, 0);
	ev_timer_start(ch->loop, &ch->timer);
}

/* ------------------------------------------------------------ channel API */

rpc_channel *rpc_channel_new(struct ev_loop *loop, const char *target, const rpc_channel_config *cfg)
{
	rpc_channel *ch = calloc(1, sizeof *ch);
	if (!ch)
		return NULL;
	ch->loop = loop;
	ch->target = strdup(target);
	if (cfg)
		ch->cfg = *cfg;
	if (ch->cfg.connect_timeout <= 0)
		ch->cfg.connect_timeout = 5;
	if (ch->cfg.backoff_initial <= 0)
		ch->cfg.backoff_initial = 0.1;
	if (ch->cfg.backoff_max <= 0)
		ch->cfg.backoff_max = 5;
	if (ch->cfg.keepalive_timeout <= 0)
		ch->cfg.keepalive_timeout = 10;
	if (ch->cfg.call_buffer == 0)
		ch->cfg.call_buffer = CH_DEFAULT_CALL_BUFFER;
	ch->backoff = ch->cfg.backoff_initial;
	ch->base.fd = -1;
	ch->base.on_dead = ch_on_dead;
	ch->base.service = ch_service;
	ch->guard.do_free = ch_do_free;
	ch->guard.obj = ch;
	ch->rng = (unsigned)getpid() ^ (unsigned)(uintptr_t)ch;
	rpc_arena_init(&ch->arena);
	ev_io_init(&ch->cio, ch_connect_cb, -1, EV_WRITE);
	ch->cio.data = ch;
	ev_timer_init(&ch->timer, ch_timer_cb, 0, 0);
	ev_prepare_init(&ch->prep, ch_prepare_cb);
	ev_idle_init(&ch->kick, ch_kick_cb);
	if (!ch->target || nghttp2_session_callbacks_new(&ch->cbs) != 0 || nghttp2_option_new(&ch->opt) != 0) {
		if (ch->cbs)
			nghttp2_session_callbacks_del(ch->cbs);
		free(ch->target);
		free(ch);
		return NULL;
	}
	rpc_conn_set_callbacks(ch->cbs);
	nghttp2_session_callbacks_set_on_header_callback(ch->cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(ch->cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(ch->cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(ch->cbs, on_stream_close);
	nghttp2_option_set_no_auto_window_update(ch->opt, 1);
	/* The first attempt from the loop: nothing calls back from here. */
	ch->state = CH_IDLE;
	ev_timer_set(&ch->timer, 0, 0);
	ev_timer_start(loop, &ch->timer);
	return ch;
}

static void ch_do_free(void *obj)
{
	rpc_channel *ch = obj;
	if (ch->state == CH_READY && !ch->base.dead &&
	    nghttp2_session_terminate_session(ch->base.h2, NGHTTP2_NO_ERROR) == 0)
		nghttp2_session_send(ch->base.h2);
	ev_io_stop(ch->loop, &ch->cio);
	ev_timer_stop(ch->loop, &ch->timer);
	ev_prepare_stop(ch->loop, &ch->prep);
	ev_idle_stop(ch->loop, &ch->kick);
	rpc_conn_close(&ch->base);
	ch_fail_all(ch, RPC_CANCELLED, "channel closed");
	rpc_arena_reset(&ch->arena);
	nghttp2_session_callbacks_del(ch->cbs);
	nghttp2_option_del(ch->opt);
	free(ch->target);
	free(ch);
}

void rpc_channel_free(rpc_channel *ch)
{
	if (!ch)
		return;
	if (ch->guard.busy) {
		ch->guard.free_pending = true;
		return;
	}
	ch_do_free(ch);
}

bool rpc_channel_ready(const rpc_channel *ch)
{
	return ch->state == CH_READY && !ch->draining;
}

rpc_client_call *rpc_client_start(rpc_channel *ch, const char *path,
				  const ProtobufCMessageDescriptor *response, double timeout,
				  const rpc_client_ops *ops, void *arg)
{
	rpc_client_call *c = calloc(1, sizeof *c);
	if (!c)
		return NULL; /* out of memory: nothing to report it through */
	c->ch = ch;
	c->path = strdup(path);
	c->resp = response;
	c->timeout = timeout;
	c->ops = *ops;
	c->arg = arg;
	c->pending_status = -1;
	c->in.max = RPC_MAX_MESSAGE;
	ev_timer_init(&c->timer, call_timer_cb, 0, 0);
	c->next = ch->calls;
	if (ch->calls)
		ch->calls->prev = c;
	ch->calls = c;
	if (!c->path) {
		call_close_later(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
		return c;
	}
	if (timeout > 0) {
		c->deadline_at = ev_now(ch->loop) + timeout;
		ev_timer_set(&c->timer, timeout, 0);
		ev_timer_start(ch->loop, &c->timer);
	}
	if (ch->closing || ch->guard.free_pending)
		call_close_later(c, RPC_CANCELLED, "channel closed");
	else if (ch->state == CH_READY && !ch->draining)
		call_submit(c);
	else if (ch->state == CH_BACKOFF || ch->draining)
		call_close_later(c, RPC_UNAVAILABLE, "not connected");
	/* CH_IDLE, CH_CONNECTING: submitted when the connection is up. */
	return c;
}

bool rpc_client_send(rpc_client_call *c, const ProtobufCMessage *msg)
{
	if (c->ending || c->close_send)
		return false;
	if (rpc_pack_message(&c->out, msg) != 0) {
		/* The server would refuse a message over the limit whole; it
		 * is not sent at all. */
		call_close_later(c, RPC_RESOURCE_EXHAUSTED,
				 errno == EMSGSIZE ? "request message larger than the limit" : "out of memory");
		return false;
	}
	if (c->out.bytes > c->ch->cfg.call_buffer)
		c->blocked = true;
	if (c->stream_open && c->deferred) {
		c->deferred = false;
		nghttp2_session_resume_data(c->ch->base.h2, c->stream_id);
		ch_mark(c->ch, NULL);
	}
	return !c->blocked;
}

void rpc_client_close_send(rpc_client_call *c)
{
	if (c->close_send || c->ending)
		return;
	c->close_send = true;
	if (c->stream_open && c->deferred) {
		c->deferred = false;
		nghttp2_session_resume_data(c->ch->base.h2, c->stream_id);
		ch_mark(c->ch, NULL);
	}
}

void rpc_client_cancel(rpc_client_call *c)
{
	if (c->ending)
		return;
	if (c->stream_open) {
		nghttp2_submit_rst_stream(c->ch->base.h2, NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_CANCEL);
		ch_mark(c->ch, NULL);
	}
	call_close_later(c, RPC_CANCELLED, "cancelled by the client");
}

void rpc_client_pause(rpc_client_call *c)
{
	c->paused = true;
}

void rpc_client_resume(rpc_client_call *c)
{
	if (!c->paused)
		return;
	c->paused = false;
	ch_mark(c->ch, c);
}
