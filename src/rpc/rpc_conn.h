/*
 * One HTTP/2 connection on a libev loop, shared by the gRPC server and
 * client: socket reads into nghttp2, nghttp2's output onto the socket,
 * keepalive PINGs, and a guard that defers freeing an owner to the end of
 * the loop callback it was asked from.
 */
#ifndef PGW_RPC_CONN_H
#define PGW_RPC_CONN_H

#include <ev.h>
#include <nghttp2/nghttp2.h>
#include <stdbool.h>

/* An owner (server or channel) is busy while one of its loop callbacks
 * runs; a free asked for then happens when the outermost one returns. */
typedef struct rpc_guard {
	int busy;
	bool free_pending;
	void (*do_free)(void *obj);
	void *obj;
} rpc_guard;

static inline void rpc_guard_enter(rpc_guard *g)
{
	g->busy++;
}

/* true when the owner was freed: touch nothing of it after. */
static inline bool rpc_guard_leave(rpc_guard *g)
{
	if (--g->busy == 0 && g->free_pending) {
		g->do_free(g->obj);
		return true;
	}
	return false;
}

typedef struct rpc_conn rpc_conn;
struct rpc_conn {
	ev_io rio, wio;
	ev_timer ka;
	struct ev_loop *loop;
	int fd;
	nghttp2_session *h2; /* its user_data is this struct (first member of the owner's) */
	rpc_guard *guard;
	double ka_interval, ka_timeout;
	ev_tstamp last_recv;
	bool ping_out;
	bool dead;
	/* The connection failed (EOF, socket error, protocol error, keepalive):
	 * the owner reaps its streams and calls rpc_conn_close. Runs inside
	 * the guard. */
	void (*on_dead)(rpc_conn *c, const char *why);
	/* After reads and on write readiness: run deferred work, then
	 * rpc_conn_flush. 0, or -1 when the connection is finished. */
	int (*service)(rpc_conn *c);
};

/* Callbacks every session needs: the socket writer. */
void rpc_conn_set_callbacks(nghttp2_session_callbacks *cbs);
/* Start watching fd (non-blocking) for a session already made. */
void rpc_conn_start(rpc_conn *c, struct ev_loop *loop, int fd, rpc_guard *guard,
		    double ka_interval, double ka_timeout);
/* Hand nghttp2's queued frames to the socket. 0, or -1 when the
 * connection is finished (error, or both sides done). */
int rpc_conn_flush(rpc_conn *c);
/* Note a received PING ACK (from the owner's on_frame_recv). */
void rpc_conn_ping_acked(rpc_conn *c);
/* Mark the connection failed and tell the owner (once). */
void rpc_conn_die(rpc_conn *c, const char *why);
/* Stop the watchers, close the socket, free the session. */
void rpc_conn_close(rpc_conn *c);

/* Submit helpers with nghttp2's name/value pairs from C strings. */
#define RPC_NV(n, v)                                                                             \
	{                                                                                        \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE \
	}

#endif
