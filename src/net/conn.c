/*
 * Non-blocking connections: reads into pooled buffers, writes batched per
 * loop iteration, and the high/low watermarks that give backpressure.
 */
#include "net/conn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "common/log.h"

int net_set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL, 0);
	if (flags < 0)
		return -1;
	return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static void write_some(net_conn *c);

static void on_read_event(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	net_conn *c = (net_conn *)io; /* rio is the first member */
	if (c->tls_write_wants_read) {
		c->tls_write_wants_read = false;
		write_some(c);
		if (c->fd < 0)
			return;
	}
	c->ops->on_readable(c);
}

static void on_write_event(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	net_conn *c = (net_conn *)((char *)io - offsetof(net_conn, wio));
	if (c->tls_read_wants_write) {
		/* The handshake could write now: let the reader go on. */
		c->tls_read_wants_write = false;
		if (!conn_pending(c))
			ev_io_stop(c->w->loop, &c->wio);
		c->ops->on_readable(c);
		return;
	}
	write_some(c);
}

int conn_start_tls(net_conn *c, SSL_CTX *ctx)
{
	c->ssl = SSL_new(ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
		SSL_free(c->ssl);
		c->ssl = NULL;
		return -1;
	}
	SSL_set_accept_state(c->ssl);
	return 0;
}

/* Decrypted bytes OpenSSL holds bring no socket event: ask for another
 * read callback. */
static void feed_pending(net_conn *c)
{
	if (c->ssl && c->reading && SSL_pending(c->ssl) > 0)
		ev_feed_event(c->w->loop, &c->rio, EV_READ);
}

static ssize_t tls_read(net_conn *c, uint8_t *dst, size_t avail)
{
	ERR_clear_error();
	int n = SSL_read(c->ssl, dst, avail > INT_MAX ? INT_MAX : (int)avail);
	if (n > 0) {
		pgw_rbuf_produced(&c->in, (size_t)n);
		feed_pending(c);
		return n;
	}
	switch (SSL_get_error(c->ssl, n)) {
	case SSL_ERROR_WANT_READ:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		c->tls_read_wants_write = true;
		ev_io_start(c->w->loop, &c->wio);
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (errno == 0)
			return 0; /* closed without close_notify */
		return -1;
	default:
		errno = EPROTO; /* a failed handshake, a bad record */
		return -1;
	}
}

void conn_init(net_conn *c, worker *w, int fd, const net_conn_ops *ops, void *owner)
{
	memset(c, 0, sizeof *c);
	c->fd = fd;
	c->w = w;
	c->ops = ops;
	c->owner = owner;
	ev_io_init(&c->rio, on_read_event, fd, EV_READ);
	ev_io_init(&c->wio, on_write_event, fd, EV_WRITE);
}

void conn_read_start(net_conn *c)
{
	if (!c->reading && c->fd >= 0) {
		ev_io_start(c->w->loop, &c->rio);
		c->reading = true;
		feed_pending(c);
	}
}

void conn_read_stop(net_conn *c)
{
	if (c->reading) {
		ev_io_stop(c->w->loop, &c->rio);
		c->reading = false;
	}
}

static void unlink_dirty(net_conn *c)
{
	if (!c->dirty)
		return;
	for (net_conn **pp = &c->w->dirty; *pp; pp = &(*pp)->next_dirty)
		if (*pp == c) {
			*pp = c->next_dirty;
			break;
		}
	c->dirty = false;
}

void conn_close(net_conn *c)
{
	if (c->fd < 0)
		return;
	conn_read_stop(c);
	ev_io_stop(c->w->loop, &c->wio);
	unlink_dirty(c);
	if (c->ssl) {
		/* Best effort: a close_notify if the socket takes it now. */
		SSL_set_quiet_shutdown(c->ssl, 0);
		ERR_clear_error();
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	close(c->fd);
	c->fd = -1;
	pgw_rbuf_release(&c->in);
	pgw_wbuf_release(&c->out);
	c->out_head = c->hold_at = 0;
	c->held = false;
}

ssize_t conn_fill(net_conn *c, size_t hint)
{
	size_t avail;
	uint8_t *dst = pgw_rbuf_space(&c->in, 4096, hint, &avail);
	if (!dst) {
		errno = ENOMEM;
		return -1;
	}
	ssize_t n;
	if (c->ssl) {
		n = tls_read(c, dst, avail);
	} else {
		do
			n = recv(c->fd, dst, avail, 0);
		while (n < 0 && errno == EINTR);
		if (n > 0)
			pgw_rbuf_produced(&c->in, (size_t)n);
	}
	if (n <= 0 && pgw_rbuf_len(&c->in) == 0)
		pgw_rbuf_release(&c->in); /* idle: hold no buffer */
	return n;
}

static void mark_dirty(net_conn *c)
{
	if (c->dirty || c->fd < 0)
		return;
	c->dirty = true;
	c->next_dirty = c->w->dirty;
	c->w->dirty = c;
}

void conn_write(net_conn *c, const void *p, size_t n)
{
	pgw_w_bytes(&c->out, p, n);
	conn_wrote(c);
}

void conn_wrote(net_conn *c)
{
	if (c->out.failed) {
		c->failed = true;
		mark_dirty(c);
		return;
	}
	if (conn_pending(c))
		mark_dirty(c);
	if (conn_backed_up(c))
		c->over_high = true;
}

static void write_some(net_conn *c)
{
	if (c->fd < 0)
		return;
	if (c->failed) {
		c->ops->on_error(c, ENOMEM);
		return;
	}
	size_t end = c->held ? c->hold_at : c->out.len;
	while (c->out_head < end) {
		ssize_t n;
		size_t len = end - c->out_head;
		if (c->ssl) {
			ERR_clear_error();
			int r = SSL_write(c->ssl, c->out.data + c->out_head, len > INT_MAX ? INT_MAX : (int)len);
			if (r > 0) {
				n = r;
			} else {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_WRITE) {
					errno = EAGAIN;
				} else if (e == SSL_ERROR_WANT_READ) {
					/* Wait for the peer's bytes, not for room. */
					c->tls_write_wants_read = true;
					ev_io_stop(c->w->loop, &c->wio);
					return;
				} else {
					errno = e == SSL_ERROR_SYSCALL && errno ? errno : EPIPE;
				}
				n = -1;
			}
		} else {
			n = send(c->fd, c->out.data + c->out_head, len, MSG_NOSIGNAL);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			ev_io_stop(c->w->loop, &c->wio);
			c->ops->on_error(c, errno);
			return;
		}
		c->out_head += (size_t)n;
	}
	if (!conn_pending(c)) {
		pgw_wbuf_release(&c->out); /* idle: hold no buffer */
		c->out_head = c->hold_at = 0;
		ev_io_stop(c->w->loop, &c->wio);
	} else {
		/* Reclaim the written part once it dominates the buffer. */
		if (c->out_head > c->out.len / 2) {
			memmove(c->out.data, c->out.data + c->out_head, conn_pending(c));
			c->out.len -= c->out_head;
			c->hold_at = c->hold_at > c->out_head ? c->hold_at - c->out_head : 0;
			c->out_head = 0;
		}
		if (c->out_head < (c->held ? c->hold_at : c->out.len))
			ev_io_start(c->w->loop, &c->wio);
		else
			ev_io_stop(c->w->loop, &c->wio); /* the rest waits for conn_hold */
	}
	if (c->over_high && conn_pending(c) < CONN_OUT_LOW) {
		c->over_high = false;
		if (c->ops->on_drained)
			c->ops->on_drained(c);
	}
}

void conn_flush_now(net_conn *c)
{
	unlink_dirty(c);
	write_some(c);
}

void conn_hold(net_conn *c, bool held)
{
	if (held && c->held)
		return; /* held already: from where it was */
	c->held = held;
	c->hold_at = c->out.len;
	if (!held && conn_pending(c))
		mark_dirty(c);
}

void conn_flush_dirty(worker *w)
{
	/* Writing may close connections, which unlink themselves: pop one at
	 * a time. */
	while (w->dirty) {
		net_conn *c = w->dirty;
		w->dirty = c->next_dirty;
		c->dirty = false;
		write_some(c);
	}
}
