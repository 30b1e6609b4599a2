/*
 * A non-blocking socket with a pooled read buffer and a pooled write
 * buffer. Output is queued and written once per loop iteration; a
 * connection whose output backs up tells its owner, which stops
 * producing until it drains (backpressure instead of unbounded memory).
 */
#ifndef PGW_CONN_H
#define PGW_CONN_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "net/worker.h"
#include "pgw/rbuf.h"
#include "pgw/wbuf.h"

/* Past this much queued output, the producer is asked to pause. */
#define CONN_OUT_HIGH (256u * 1024)
#define CONN_OUT_LOW (64u * 1024)

typedef struct net_conn_ops {
	void (*on_readable)(net_conn *c);
	/* Output dropped below CONN_OUT_LOW after having been above HIGH. */
	void (*on_drained)(net_conn *c);
	/* The peer went away or a write failed; the owner closes. */
	void (*on_error)(net_conn *c, int err);
} net_conn_ops;

struct net_conn {
	ev_io rio; /* first: the watcher casts back to the connection */
	ev_io wio;
	int fd;
	worker *w;
	const net_conn_ops *ops;
	void *owner;
	pgw_rbuf in;
	pgw_wbuf out;
	size_t out_head; /* bytes of out already written */
	net_conn *next_dirty;
	bool dirty;
	bool over_high; /* producer was told to pause */
	bool reading;
	bool failed;
	bool held;	/* output past hold_at waits (conn_hold) */
	size_t hold_at; /* offset in out */
	SSL *ssl;		   /* set once the connection has switched to TLS */
	bool tls_read_wants_write; /* the handshake must write before reading on */
	bool tls_write_wants_read;
};

void conn_init(net_conn *c, worker *w, int fd, const net_conn_ops *ops, void *owner);
/* Stop watching and close the socket; buffers go back to the pool. */
void conn_close(net_conn *c);
void conn_read_start(net_conn *c);
void conn_read_stop(net_conn *c);

/* Read what the socket has into c->in. Returns bytes read, 0 on EOF, -1
 * on error (errno set; EAGAIN when nothing was there). hint: the size of
 * the message being assembled, if known. */
ssize_t conn_fill(net_conn *c, size_t hint);

/* Queue bytes; written when the loop iteration ends. */
void conn_write(net_conn *c, const void *p, size_t n);
/* The write buffer, for encoders; call conn_wrote after appending. */
static inline pgw_wbuf *conn_wbuf(net_conn *c)
{
	return &c->out;
}
void conn_wrote(net_conn *c);
static inline size_t conn_pending(const net_conn *c)
{
	return c->out.len - c->out_head;
}
static inline bool conn_backed_up(const net_conn *c)
{
	return conn_pending(c) >= CONN_OUT_HIGH;
}
/* Write now instead of at the end of the iteration (before a close). */
void conn_flush_now(net_conn *c);
/* held: what is queued from now on stays unwritten (what was queued
 * before still goes) until released with held = false. */
void conn_hold(net_conn *c, bool held);

/* Called by the worker's prepare watcher. */
void conn_flush_dirty(worker *w);

/* Switch to TLS as the server side; the handshake runs on the next reads. */
int conn_start_tls(net_conn *c, SSL_CTX *ctx);

/* Socket helpers. */
int net_set_nonblocking(int fd);

#endif
