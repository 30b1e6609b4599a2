/*
 * An HTTP/2 connection's socket side: non-blocking reads fed to nghttp2,
 * nghttp2's frames written until the socket would block, keepalive PINGs.
 */
#include "rpc_conn.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONN_OF(w, member) ((rpc_conn *)((char *)(w)-offsetof(rpc_conn, member)))

static ssize_t conn_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
	(void)s;
	(void)flags;
	rpc_conn *c = ud;
	for (;;) {
		/* MSG_NOSIGNAL: a peer gone away is an error, not SIGPIPE. */
		ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return NGHTTP2_ERR_WOULDBLOCK;
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
}

void rpc_conn_set_callbacks(nghttp2_session_callbacks *cbs)
{
	nghttp2_session_callbacks_set_send_callback(cbs, conn_send);
}

void rpc_conn_die(rpc_conn *c, const char *why)
{
	if (c->dead)
		return;
	c->dead = true;
	ev_io_stop(c->loop, &c->rio);
	ev_io_stop(c->loop, &c->wio);
	ev_timer_stop(c->loop, &c->ka);
	c->on_dead(c, why);
}

int rpc_conn_flush(rpc_conn *c)
{
	if (c->dead)
		return -1;
	int rv = nghttp2_session_send(c->h2);
	if (rv != 0)
		return -1;
	/* nghttp2 keeps what the socket refused; wait for room. */
	if (nghttp2_session_want_write(c->h2))
		ev_io_start(c->loop, &c->wio);
	else
		ev_io_stop(c->loop, &c->wio);
	if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2))
		return -1;
	return 0;
}

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	rpc_conn *c = CONN_OF(w, rio);
	rpc_guard *g = c->guard;
	uint8_t buf[16384];
	const char *why = NULL;

	rpc_guard_enter(g);
	/* A few reads per wakeup, then let other connections have a turn. */
	for (int i = 0; i < 8 && !c->dead; i++) {
		ssize_t n = read(c->fd, buf, sizeof buf);
		if (n > 0) {
			c->last_recv = ev_now(c->loop);
			ssize_t rv = nghttp2_session_mem_recv(c->h2, buf, (size_t)n);
			if (rv < 0) {
				why = nghttp2_strerror((int)rv);
				break;
			}
			if ((size_t)n < sizeof buf)
				break;
		} else if (n == 0) {
			why = "connection closed by peer";
			break;
		} else if (errno == EINTR) {
			continue;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			break;
		} else {
			why = strerror(errno);
			break;
		}
	}
	if (!c->dead) {
		/* Flush even after an error: a GOAWAY may be waiting to go. */
		if (c->service(c) != 0 && !why)
			why = "connection finished";
		if (why)
			rpc_conn_die(c, why);
	}
	rpc_guard_leave(g);
}

static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	rpc_conn *c = CONN_OF(w, wio);
	rpc_guard *g = c->guard;
	rpc_guard_enter(g);
	if (c->service(c) != 0)
		rpc_conn_die(c, "write failed");
	rpc_guard_leave(g);
}

/* One timer does both jobs: PING when nothing came for ka_interval, and
 * give up when that PING is not answered within ka_timeout. */
static void conn_ka_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	rpc_conn *c = CONN_OF(w, ka);
	rpc_guard *g = c->guard;
	ev_tstamp now = ev_now(loop);
	rpc_guard_enter(g);
	if (c->ping_out) {
		rpc_conn_die(c, "keepalive timeout");
	} else if (now - c->last_recv >= c->ka_interval - 1e-3) {
		if (nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, NULL) != 0 || rpc_conn_flush(c) != 0) {
			rpc_conn_die(c, "keepalive ping failed");
		} else {
			c->ping_out = true;
			ev_timer_set(&c->ka, c->ka_timeout, 0);
			ev_timer_start(loop, &c->ka);
		}
	} else {
		ev_timer_set(&c->ka, c->last_recv + c->ka_interval - now, 0);
		ev_timer_start(loop, &c->ka);
	}
	rpc_guard_leave(g);
}

void rpc_conn_ping_acked(rpc_conn *c)
{
	if (!c->ping_out)
		return;
	c->ping_out = false;
	ev_timer_stop(c->loop, &c->ka);
	ev_timer_set(&c->ka, c->ka_interval, 0);
	ev_timer_start(c->loop, &c->ka);
}

void rpc_conn_start(rpc_conn *c, struct ev_loop *loop, int fd, rpc_guard *guard,
		    double ka_interval, double ka_timeout)
{
	c->loop = loop;
	c->fd = fd;
	c->guard = guard;
	c->ka_interval = ka_interval;
	c->ka_timeout = ka_timeout > 0 ? ka_timeout : 10;
	c->last_recv = ev_now(loop);
	c->ping_out = false;
	c->dead = false;
	ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
	ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
	ev_timer_init(&c->ka, conn_ka_cb, ka_interval, 0);
	ev_io_start(loop, &c->rio);
	if (ka_interval > 0)
		ev_timer_start(loop, &c->ka);
}

void rpc_conn_close(rpc_conn *c)
{
	if (c->loop) {
		ev_io_stop(c->loop, &c->rio);
		ev_io_stop(c->loop, &c->wio);
		ev_timer_stop(c->loop, &c->ka);
	}
	c->dead = true;
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	if (c->h2) {
		nghttp2_session_del(c->h2);
		c->h2 = NULL;
	}
}
