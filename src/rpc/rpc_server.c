/*
 * The gRPC server: listeners (TCP or Unix socket), one HTTP/2 session per
 * accepted connection (h2c, prior knowledge), one rpc_call per stream.
 */
#include "rpc.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "rpc_conn.h"
#include "rpc_wire.h"

#define SRV_MAX_STREAMS 512
#define SRV_STREAM_WINDOW (1 << 20)
#define SRV_CONN_WINDOW (16 << 20)
#define SRV_MAX_HEADERS 16384
#define SRV_DEFAULT_CALL_BUFFER (256u << 10)
#define SRV_MAX_LISTENERS 8

typedef struct srv_conn srv_conn;

struct rpc_call {
	srv_conn *conn;
	rpc_call *prev, *next;
	int32_t stream_id;
	const rpc_method *method;
	void *data;
	/* request headers as "name\0value\0" pairs */
	char *hdrs;
	size_t hdrs_len, hdrs_cap;
	bool hdr_overflow;
	int http_reject;	  /* 405 / 415 when the request is not gRPC */
	ev_timer deadline;
	ev_tstamp deadline_at;
	/* input */
	rpc_reasm in;
	rpc_bq held; /* received while paused, not yet consumed */
	bool paused, remote_closed, half_close_done;
	/* output */
	rpc_bq out;
	bool headers_sent, finishing, deferred, trailers_sent;
	int status;
	char *status_msg; /* percent-encoded */
	char *details;	  /* base64 google.rpc.Status */
	/* the user's handle is over: finished, or on_cancel has run */
	bool user_gone;
	bool svc; /* deferred work waits in the conn's service pass */
	bool blocked;  /* rpc_call_writable said no */
	bool owe_wcb;  /* it says yes again: on_writable is due */
	void (*wcb)(rpc_call *c, void *arg);
	void *warg;
};

struct srv_conn {
	rpc_conn base; /* first: the nghttp2 user_data */
	rpc_server *srv;
	srv_conn *prev, *next;
	rpc_call *calls;
	rpc_arena arena;
	bool dirty;
};

struct rpc_server {
	struct ev_loop *loop;
	const rpc_method *methods;
	size_t nmethods;
	rpc_server_config cfg;
	rpc_guard guard;
	struct {
		ev_io w;
		char *unix_path;
	} lis[SRV_MAX_LISTENERS];
	int nlis;
	int port;
	srv_conn *conns;
	ev_prepare prep;
	ev_idle kick;
	nghttp2_session_callbacks *cbs;
	nghttp2_option *opt;
	bool closing;
};

static void srv_mark(srv_conn *sc, rpc_call *c)
{
	if (c)
		c->svc = true;
	sc->dirty = true;
	ev_prepare_start(sc->srv->loop, &sc->srv->prep);
}

/* ------------------------------------------------------------ calls */

static const char *call_header(const rpc_call *c, const char *name)
{
	size_t i = 0;
	while (i < c->hdrs_len) {
		const char *n = c->hdrs + i;
		size_t nl = strlen(n);
		const char *v = n + nl + 1;
		if (strcmp(n, name) == 0)
			return v;
		i += nl + 1 + strlen(v) + 1;
	}
	return NULL;
}

static void call_free(rpc_call *c)
{
	srv_conn *sc = c->conn;
	if (c->prev)
		c->prev->next = c->next;
	else
		sc->calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ev_timer_stop(sc->srv->loop, &c->deadline);
	rpc_reasm_free(&c->in);
	rpc_bq_clear(&c->held);
	rpc_bq_clear(&c->out);
	free(c->hdrs);
	free(c->status_msg);
	free(c->details);
	free(c);
}

/* The user's on_cancel, once, unless the call was finished. */
static void call_user_cancel(rpc_call *c)
{
	if (c->user_gone)
		return;
	c->user_gone = true;
	if (c->method && c->method->on_cancel && !c->conn->srv->closing)
		c->method->on_cancel(c, c->method->arg);
}

static ssize_t call_read(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
			 nghttp2_data_source *src, void *ud);

static int call_submit_headers(rpc_call *c, bool trailers_only)
{
	nghttp2_nv nv[5] = {RPC_NV(":status", "200"), RPC_NV("content-type", "application/grpc")};
	size_t n = 2;
	char st[16];
	if (trailers_only) {
		snprintf(st, sizeof st, "%d", c->status);
		nv[n++] = (nghttp2_nv)RPC_NV("grpc-status", st);
		if (c->status_msg && *c->status_msg)
			nv[n++] = (nghttp2_nv)RPC_NV("grpc-message", c->status_msg);
		if (c->details)
			nv[n++] = (nghttp2_nv)RPC_NV("grpc-status-details-bin", c->details);
		c->trailers_sent = true;
		c->headers_sent = true;
		return nghttp2_submit_response(c->conn->base.h2, c->stream_id, nv, n, NULL);
	}
	nghttp2_data_provider dp = {.source.ptr = c, .read_callback = call_read};
	c->headers_sent = true;
	return nghttp2_submit_response(c->conn->base.h2, c->stream_id, nv, n, &dp);
}

static void call_set_status(rpc_call *c, int status, const char *message, const ProtobufCMessage *detail)
{
	c->status = status;
	free(c->status_msg);
	free(c->details);
	c->status_msg = message && *message ? rpc_pct_encode(message) : NULL;
	c->details = detail ? rpc_status_details_encode(status, message, detail) : NULL;
}

/* End the stream with a status: trailers-only when nothing went out. */
static void call_end(rpc_call *c, int status, const char *message, const ProtobufCMessage *detail)
{
	if (c->finishing || c->trailers_sent)
		return;
	call_set_status(c, status, message, detail);
	c->finishing = true;
	ev_timer_stop(c->conn->srv->loop, &c->deadline);
	if (!c->headers_sent && c->out.bytes == 0) {
		if (call_submit_headers(c, true) != 0)
			nghttp2_submit_rst_stream(c->conn->base.h2, NGHTTP2_FLAG_NONE, c->stream_id,
						  NGHTTP2_INTERNAL_ERROR);
	} else if (!c->headers_sent) {
		call_submit_headers(c, false);
	} else if (c->deferred) {
		c->deferred = false;
		nghttp2_session_resume_data(c->conn->base.h2, c->stream_id);
	}
	srv_mark(c->conn, NULL);
}

/* The call cannot go on (bad input, deadline): the user hears on_cancel,
 * the client a status; what was queued is dropped. */
static void call_abort(rpc_call *c, int status, const char *message)
{
	call_user_cancel(c);
	rpc_bq_clear(&c->out);
	call_end(c, status, message, NULL);
}

static ssize_t call_read(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
			 nghttp2_data_source *src, void *ud)
{
	(void)ud;
	rpc_call *c = src->ptr;
	size_t n = rpc_bq_read(&c->out, buf, len);
	size_t limit = c->conn->srv->cfg.call_buffer;
	if (c->blocked && c->out.bytes <= limit) {
		c->blocked = false;
		c->owe_wcb = true;
		srv_mark(c->conn, c);
	}
	if (c->out.bytes == 0) {
		if (c->finishing) {
			nghttp2_nv nv[3];
			size_t k = 0;
			char st[16];
			snprintf(st, sizeof st, "%d", c->status);
			nv[k++] = (nghttp2_nv)RPC_NV("grpc-status", st);
			if (c->status_msg && *c->status_msg)
				nv[k++] = (nghttp2_nv)RPC_NV("grpc-message", c->status_msg);
			if (c->details)
				nv[k++] = (nghttp2_nv)RPC_NV("grpc-status-details-bin", c->details);
			*flags |= NGHTTP2_DATA_FLAG_EOF;
			if (nghttp2_submit_trailer(s, sid, nv, k) == 0)
				*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			c->trailers_sent = true;
		} else if (n == 0) {
			c->deferred = true;
			return NGHTTP2_ERR_DEFERRED;
		}
	}
	return (ssize_t)n;
}

/* The call's side of rpc_take: requests go to the method's handler. */
static rpc_take_state take_state(void *arg)
{
	rpc_call *c = arg;
	return c->user_gone ? RPC_TAKE_GONE : c->paused ? RPC_TAKE_PAUSED : RPC_TAKE_GO;
}

static void take_deliver(void *arg, const ProtobufCMessage *m)
{
	rpc_call *c = arg;
	if (c->method->on_message && !c->conn->srv->closing)
		c->method->on_message(c, m, c->method->arg);
}

static void take_fail(void *arg, int status, const char *message)
{
	call_abort(arg, status, message);
}

/* Feed received bytes to the reassembler until paused; returns how many
 * were taken (the rest must wait). */
static size_t call_take(rpc_call *c, const uint8_t *p, size_t n)
{
	rpc_taker t = {.in = &c->in, .arena = &c->conn->arena, .type = c->method->request,
		       .what = "request", .call = c, .state = take_state, .deliver = take_deliver,
		       .fail = take_fail};
	return rpc_take(&t, p, n);
}

static void call_try_half_close(rpc_call *c)
{
	if (!c->remote_closed || c->half_close_done || c->user_gone || c->paused || c->held.bytes)
		return;
	c->half_close_done = true;
	if (rpc_reasm_partial(&c->in)) {
		call_abort(c, RPC_INTERNAL, "the request ended inside a message");
		return;
	}
	if (c->method->on_half_close && !c->conn->srv->closing)
		c->method->on_half_close(c, c->method->arg);
}

/* Deferred work of a call, from the loop: held input after a resume, the
 * half close, on_writable. */
static void call_service(rpc_call *c)
{
	srv_conn *sc = c->conn;
	while (c->held.bytes && !c->paused && !c->user_gone) {
		size_t n;
		const uint8_t *p = rpc_bq_peek(&c->held, &n);
		size_t k = call_take(c, p, n);
		nghttp2_session_consume_stream(sc->base.h2, c->stream_id, k);
		rpc_bq_drop(&c->held, k);
	}
	if (c->user_gone && c->held.bytes) {
		nghttp2_session_consume_stream(sc->base.h2, c->stream_id, c->held.bytes);
		rpc_bq_clear(&c->held);
	}
	call_try_half_close(c);
	if (c->owe_wcb && !c->blocked && c->wcb && !c->user_gone && !sc->srv->closing) {
		c->owe_wcb = false;
		c->wcb(c, c->warg);
	}
}

static void call_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	rpc_call *c = (rpc_call *)((char *)w - offsetof(rpc_call, deadline));
	rpc_server *srv = c->conn->srv;
	rpc_guard_enter(&srv->guard);
	call_abort(c, RPC_DEADLINE_EXCEEDED, "deadline exceeded");
	rpc_guard_leave(&srv->guard);
}

/* The request headers are complete: route the call. */
static void call_begin(rpc_call *c)
{
	srv_conn *sc = c->conn;
	rpc_server *srv = sc->srv;
	const char *method = call_header(c, ":method");
	const char *path = call_header(c, ":path");
	const char *ctype = call_header(c, "content-type");

	if (c->hdr_overflow) {
		c->user_gone = true;
		call_end(c, RPC_RESOURCE_EXHAUSTED, "request headers too large", NULL);
		return;
	}
	if (!method || strcmp(method, "POST") != 0 || !ctype ||
	    strncmp(ctype, "application/grpc", 16) != 0 || (ctype[16] && ctype[16] != '+' && ctype[16] != ';')) {
		/* Not gRPC: answer in HTTP, as gRPC servers do. */
		const char *code = method && strcmp(method, "POST") != 0 ? "405" : "415";
		nghttp2_nv nv[] = {RPC_NV(":status", code)};
		c->user_gone = true;
		c->finishing = c->headers_sent = c->trailers_sent = true;
		nghttp2_submit_response(sc->base.h2, c->stream_id, nv, 1, NULL);
		return;
	}
	for (size_t i = 0; path && i < srv->nmethods; i++) {
		if (strcmp(srv->methods[i].path, path) == 0) {
			c->method = &srv->methods[i];
			break;
		}
	}
	if (!c->method) {
		char msg[256];
		snprintf(msg, sizeof msg, "unknown method %.200s", path ? path : "(none)");
		c->user_gone = true;
		call_end(c, RPC_UNIMPLEMENTED, msg, NULL);
		return;
	}
	const char *to = call_header(c, "grpc-timeout");
	if (to) {
		double secs = rpc_timeout_parse(to, strlen(to));
		if (secs >= 0) {
			c->deadline_at = ev_now(srv->loop) + secs;
			ev_timer_set(&c->deadline, secs, 0);
			ev_timer_start(srv->loop, &c->deadline);
		}
	}
}

/* ------------------------------------------------------------ nghttp2 callbacks */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	srv_conn *sc = ud;
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	rpc_call *c = calloc(1, sizeof *c);
	if (!c)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	c->conn = sc;
	c->stream_id = f->hd.stream_id;
	c->in.max = RPC_MAX_MESSAGE;
	ev_timer_init(&c->deadline, call_deadline_cb, 0, 0);
	c->next = sc->calls;
	if (sc->calls)
		sc->calls->prev = c;
	sc->calls = c;
	nghttp2_session_set_stream_user_data(s, f->hd.stream_id, c);
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
		     const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
	(void)flags;
	(void)ud;
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0; /* trailers from a client carry nothing we use */
	rpc_call *c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (!c)
		return 0;
	size_t need = namelen + valuelen + 2;
	if (c->hdr_overflow || c->hdrs_len + need > SRV_MAX_HEADERS) {
		c->hdr_overflow = true;
		return 0;
	}
	if (c->hdrs_len + need > c->hdrs_cap) {
		size_t cap = c->hdrs_cap ? c->hdrs_cap : 512;
		while (cap < c->hdrs_len + need)
			cap *= 2;
		char *h = realloc(c->hdrs, cap);
		if (!h)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		c->hdrs = h;
		c->hdrs_cap = cap;
	}
	/* nghttp2 has checked that names and values hold no NUL. */
	memcpy(c->hdrs + c->hdrs_len, name, namelen);
	c->hdrs[c->hdrs_len + namelen] = 0;
	memcpy(c->hdrs + c->hdrs_len + namelen + 1, value, valuelen);
	c->hdrs[c->hdrs_len + namelen + 1 + valuelen] = 0;
	c->hdrs_len += need;
	return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	srv_conn *sc = ud;
	if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK)) {
		rpc_conn_ping_acked(&sc->base);
		return 0;
	}
	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	rpc_call *c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (!c)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
		call_begin(c);
	if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
		c->remote_closed = true;
		call_try_half_close(c);
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data, size_t len,
			 void *ud)
{
	(void)flags;
	srv_conn *sc = ud;
	/* The connection window is never held back: a paused call must not
	 * stall the others on the connection. */
	nghttp2_session_consume_connection(s, len);
	rpc_call *c = nghttp2_session_get_stream_user_data(s, sid);
	if (!c || c->user_gone || !c->method) {
		nghttp2_session_consume_stream(s, sid, len);
		return 0;
	}
	size_t k = 0;
	if (!c->paused && !c->held.bytes)
		k = call_take(c, data, len);
	if (k < len && !c->user_gone) {
		if (rpc_bq_append(&c->held, data + k, len - k) != 0) {
			call_abort(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
			k = len;
		}
	} else {
		k = len;
	}
	if (k)
		nghttp2_session_consume_stream(s, sid, k);
	(void)sc;
	return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	(void)ud;
	/* Trailers went out but the client is still sending: tell it to stop,
	 * as gRPC servers do. */
	if (f->hd.type == NGHTTP2_HEADERS && (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
	    !nghttp2_session_get_stream_remote_close(s, f->hd.stream_id))
		nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t sid, uint32_t error_code, void *ud)
{
	(void)error_code;
	srv_conn *sc = ud;
	if (sc->base.dead)
		return 0;
	rpc_call *c = nghttp2_session_get_stream_user_data(s, sid);
	if (!c)
		return 0;
	nghttp2_session_set_stream_user_data(s, sid, NULL);
	call_user_cancel(c);
	call_free(c);
	return 0;
}

/* ------------------------------------------------------------ connections */

static void conn_free(srv_conn *sc)
{
	rpc_server *srv = sc->srv;
	sc->base.dead = true;
	while (sc->calls) {
		rpc_call *c = sc->calls;
		call_user_cancel(c);
		call_free(c);
	}
	rpc_conn_close(&sc->base);
	rpc_arena_reset(&sc->arena);
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		srv->conns = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	free(sc);
}

static void conn_on_dead(rpc_conn *c, const char *why)
{
	(void)why;
	conn_free((srv_conn *)c);
}

static int conn_service(rpc_conn *c)
{
	srv_conn *sc = (srv_conn *)c;
	for (int round = 0; round < 16; round++) {
		sc->dirty = false;
		for (rpc_call *call = sc->calls; call; call = call->next) {
			if (call->svc) {
				call->svc = false;
				call_service(call);
			}
		}
		if (rpc_conn_flush(c) != 0)
			return -1;
		bool more = false;
		for (rpc_call *call = sc->calls; call && !more; call = call->next)
			more = call->svc;
		if (!more && !sc->dirty)
			return 0;
	}
	/* Still busy: come back on the next loop iteration. */
	srv_mark(sc, NULL);
	ev_idle_start(sc->srv->loop, &sc->srv->kick);
	return 0;
}

static void srv_prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)revents;
	rpc_server *srv = (rpc_server *)((char *)w - offsetof(rpc_server, prep));
	ev_prepare_stop(loop, w);
	rpc_guard_enter(&srv->guard);
	srv_conn *sc = srv->conns;
	while (sc) {
		srv_conn *next = sc->next;
		if (sc->dirty && !sc->base.dead && conn_service(&sc->base) != 0)
			rpc_conn_die(&sc->base, "connection finished");
		sc = next;
	}
	rpc_guard_leave(&srv->guard);
}

static void srv_kick_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	(void)revents;
	/* Only here so the loop does not block while work is pending. */
	ev_idle_stop(loop, w);
}

static int srv_adopt(rpc_server *srv, int fd);

static void srv_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	(void)loop;
	rpc_server *srv = w->data;
	rpc_guard_enter(&srv->guard);
	for (int i = 0; i < 64; i++) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			break;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		srv_adopt(srv, fd);
	}
	rpc_guard_leave(&srv->guard);
}

/* A connected socket becomes an HTTP/2 server session; closes fd on failure. */
static int srv_adopt(rpc_server *srv, int fd)
{
	struct ev_loop *loop = srv->loop;
	{
		srv_conn *sc = calloc(1, sizeof *sc);
		if (!sc || nghttp2_session_server_new2(&sc->base.h2, srv->cbs, sc, srv->opt) != 0) {
			free(sc);
			close(fd);
			return -1;
		}
		sc->srv = srv;
		rpc_arena_init(&sc->arena);
		sc->base.on_dead = conn_on_dead;
		sc->base.service = conn_service;
		nghttp2_settings_entry iv[] = {
			{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, SRV_MAX_STREAMS},
			{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, SRV_STREAM_WINDOW},
		};
		nghttp2_submit_settings(sc->base.h2, NGHTTP2_FLAG_NONE, iv, 2);
		nghttp2_session_set_local_window_size(sc->base.h2, NGHTTP2_FLAG_NONE, 0, SRV_CONN_WINDOW);
		sc->next = srv->conns;
		if (srv->conns)
			srv->conns->prev = sc;
		srv->conns = sc;
		rpc_conn_start(&sc->base, loop, fd, &srv->guard, srv->cfg.keepalive_interval,
			       srv->cfg.keepalive_timeout);
		if (rpc_conn_flush(&sc->base) != 0) {
			rpc_conn_die(&sc->base, "could not send SETTINGS");
			return -1;
		}
	}
	return 0;
}

int rpc_server_adopt(rpc_server *s, int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
		close(fd);
		return -1;
	}
	rpc_guard_enter(&s->guard);
	int rc = srv_adopt(s, fd);
	rpc_guard_leave(&s->guard);
	return rc;
}

/* ------------------------------------------------------------ server */

static void srv_do_free(void *obj)
{
	rpc_server *srv = obj;
	for (int i = 0; i < srv->nlis; i++) {
		ev_io_stop(srv->loop, &srv->lis[i].w);
		close(srv->lis[i].w.fd);
		if (srv->lis[i].unix_path) {
			unlink(srv->lis[i].unix_path);
			free(srv->lis[i].unix_path);
		}
	}
	srv->nlis = 0;
	/* Say goodbye first, then cancel what was in flight. */
	for (srv_conn *sc = srv->conns; sc; sc = sc->next) {
		if (!sc->base.dead && nghttp2_session_terminate_session(sc->base.h2, NGHTTP2_NO_ERROR) == 0)
			nghttp2_session_send(sc->base.h2);
	}
	while (srv->conns)
		conn_free(srv->conns);
	srv->closing = true;
	ev_prepare_stop(srv->loop, &srv->prep);
	ev_idle_stop(srv->loop, &srv->kick);
	nghttp2_session_callbacks_del(srv->cbs);
	nghttp2_option_del(srv->opt);
	free(srv);
}

rpc_server *rpc_server_new(struct ev_loop *loop, const rpc_method *methods, size_t nmethods,
			   const rpc_server_config *cfg)
{
	rpc_server *srv = calloc(1, sizeof *srv);
	if (!srv)
		return NULL;
	srv->loop = loop;
	srv->methods = methods;
	srv->nmethods = nmethods;
	if (cfg)
		srv->cfg = *cfg;
	if (srv->cfg.call_buffer == 0)
		srv->cfg.call_buffer = SRV_DEFAULT_CALL_BUFFER;
	if (srv->cfg.keepalive_timeout <= 0)
		srv->cfg.keepalive_timeout = 10;
	srv->guard.do_free = srv_do_free;
	srv->guard.obj = srv;
	srv->port = -1;
	ev_prepare_init(&srv->prep, srv_prepare_cb);
	ev_idle_init(&srv->kick, srv_kick_cb);
	if (nghttp2_session_callbacks_new(&srv->cbs) != 0 || nghttp2_option_new(&srv->opt) != 0) {
		if (srv->cbs)
			nghttp2_session_callbacks_del(srv->cbs);
		free(srv);
		return NULL;
	}
	rpc_conn_set_callbacks(srv->cbs);
	nghttp2_session_callbacks_set_on_begin_headers_callback(srv->cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(srv->cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(srv->cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(srv->cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_send_callback(srv->cbs, on_frame_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(srv->cbs, on_stream_close);
	nghttp2_option_set_no_auto_window_update(srv->opt, 1);
	return srv;
}

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sa.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	struct stat st;
	/* A socket left by an earlier run is ours to replace; anything else is not. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 1024) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int listen_tcp(const char *addr, bool reuseport, int *port)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	if (!colon || (size_t)(colon - addr) >= sizeof host) {
		errno = EINVAL;
		return -1;
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = 0;
	char *h = host;
	if (*h == '[' && h[strlen(h) - 1] == ']') {
		h[strlen(h) - 1] = 0;
		h++;
	}
	if (!*h || strcmp(h, "*") == 0)
		h = NULL;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *res;
	if (getaddrinfo(h, colon + 1, &hints, &res) != 0) {
		errno = EADDRNOTAVAIL;
		return -1;
	}
	int fd = -1, e = EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			e = errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (reuseport)
			setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		errno = e;
		return -1;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						       : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

int rpc_server_listen(rpc_server *s, const char *addr, bool reuseport)
{
	if (s->nlis >= SRV_MAX_LISTENERS) {
		errno = EMFILE;
		return -1;
	}
	int port = -1;
	bool is_unix = addr[0] == '/';
	char *path = NULL;
	if (is_unix && !(path = strdup(addr)))
		return -1;
	int fd = is_unix ? listen_unix(addr) : listen_tcp(addr, reuseport, &port);
	if (fd < 0) {
		free(path);
		return -1;
	}
	int i = s->nlis++;
	s->lis[i].unix_path = path;
	ev_io_init(&s->lis[i].w, srv_accept_cb, fd, EV_READ);
	s->lis[i].w.data = s;
	ev_io_start(s->loop, &s->lis[i].w);
	if (port >= 0 && s->port < 0)
		s->port = port;
	return 0;
}

int rpc_server_port(const rpc_server *s)
{
	return s->port;
}

void rpc_server_free(rpc_server *s)
{
	if (!s)
		return;
	if (s->guard.busy) {
		/* From inside one of our callbacks: finish it first. */
		s->guard.free_pending = true;
		return;
	}
	srv_do_free(s);
}

/* ------------------------------------------------------------ call API */

void rpc_call_set_data(rpc_call *c, void *data)
{
	c->data = data;
}

void *rpc_call_data(const rpc_call *c)
{
	return c->data;
}

ev_tstamp rpc_call_deadline(const rpc_call *c)
{
	return c->deadline_at;
}

const char *rpc_call_metadata(const rpc_call *c, const char *name)
{
	if (name[0] == ':')
		return NULL;
	return call_header(c, name);
}

int rpc_call_send(rpc_call *c, const ProtobufCMessage *msg)
{
	if (c->user_gone || c->finishing)
		return -1;
	if (rpc_pack_message(&c->out, msg) != 0)
		return -1;
	if (c->out.bytes > c->conn->srv->cfg.call_buffer)
		c->blocked = true;
	if (!c->headers_sent) {
		if (call_submit_headers(c, false) != 0)
			return -1;
	} else if (c->deferred) {
		c->deferred = false;
		nghttp2_session_resume_data(c->conn->base.h2, c->stream_id);
	}
	srv_mark(c->conn, NULL);
	return 0;
}

bool rpc_call_writable(const rpc_call *c)
{
	return !c->user_gone && !c->finishing && c->out.bytes <= c->conn->srv->cfg.call_buffer;
}

size_t rpc_call_queued(const rpc_call *c)
{
	return c->out.bytes;
}

void rpc_call_on_writable(rpc_call *c, void (*cb)(rpc_call *c, void *arg), void *arg)
{
	/* Called after each time the queue drains below call_buffer, not now. */
	c->wcb = cb;
	c->warg = arg;
}

void rpc_call_pause(rpc_call *c)
{
	c->paused = true;
}

void rpc_call_resume(rpc_call *c)
{
	if (!c->paused)
		return;
	c->paused = false;
	srv_mark(c->conn, c);
}

void rpc_call_finish(rpc_call *c, int status, const char *message, const ProtobufCMessage *detail)
{
	if (c->user_gone)
		return;
	c->user_gone = true;
	call_end(c, status, message, detail);
}
