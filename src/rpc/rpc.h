/*
 * gRPC over HTTP/2 (nghttp2) with protobuf-c messages, driven by a libev
 * loop: a server (many calls on many connections) and a client channel
 * (one connection to a target, reconnected with backoff). Unary,
 * server-streaming, client-streaming and bidirectional calls all look the
 * same here: messages in, messages out, then a status.
 *
 * Everything belongs to one loop and one thread. Callbacks are never made
 * from inside the call that caused them (a send never calls back), so a
 * caller need not fear re-entry.
 */
#ifndef PGW_RPC_H
#define PGW_RPC_H

#include <ev.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* gRPC status codes (the canonical ones; mtrpc.Code numbers them alike). */
enum {
	RPC_OK = 0,
	RPC_CANCELLED = 1,
	RPC_UNKNOWN = 2,
	RPC_INVALID_ARGUMENT = 3,
	RPC_DEADLINE_EXCEEDED = 4,
	RPC_NOT_FOUND = 5,
	RPC_ALREADY_EXISTS = 6,
	RPC_PERMISSION_DENIED = 7,
	RPC_RESOURCE_EXHAUSTED = 8,
	RPC_FAILED_PRECONDITION = 9,
	RPC_ABORTED = 10,
	RPC_OUT_OF_RANGE = 11,
	RPC_UNIMPLEMENTED = 12,
	RPC_INTERNAL = 13,
	RPC_UNAVAILABLE = 14,
	RPC_DATA_LOSS = 15,
	RPC_UNAUTHENTICATED = 16,
};

/* The largest message either side sends or accepts. PostgreSQL takes
 * messages up to 1 GB, so a query, a Bind's values or a DataRow that big
 * must fit, with room for the request's other fields. A body is buffered
 * as it arrives, never allocated whole from a length alone. */
#define RPC_MAX_MESSAGE ((1u << 30) + (16u << 20))

/* ------------------------------------------------------------------ server */

typedef struct rpc_server rpc_server;
typedef struct rpc_call rpc_call; /* one call (HTTP/2 stream), server side */

typedef struct rpc_method {
	const char *path; /* "/multipoolerservice.MultiPoolerService/StreamExecute" */
	const ProtobufCMessageDescriptor *request;
	/* A request message arrived. msg is freed when this returns. For a
	 * unary or server-streaming method it comes once, before on_half_close. */
	void (*on_message)(rpc_call *call, const ProtobufCMessage *msg, void *arg);
	/* The client will send nothing more (may be NULL). */
	void (*on_half_close)(rpc_call *call, void *arg);
	/* The call is over without rpc_call_finish: the client cancelled, its
	 * deadline passed, or the connection was lost. The call is freed when
	 * this returns; forget it. (May be NULL when nothing refers to calls.) */
	void (*on_cancel)(rpc_call *call, void *arg);
	void *arg;
} rpc_method;

typedef struct rpc_server_config {
	double keepalive_interval; /* seconds between PINGs on an idle connection (0: none) */
	double keepalive_timeout;  /* a PING unanswered this long closes the connection */
	size_t call_buffer;	   /* bytes queued per call before rpc_call_writable says no */
} rpc_server_config;

rpc_server *rpc_server_new(struct ev_loop *loop, const rpc_method *methods, size_t nmethods,
			   const rpc_server_config *cfg);
/* Listen on "host:port" (port 0: any; see rpc_server_port) or a Unix
 * socket path (starts with '/'). With reuseport, several servers (one per
 * worker loop) may listen on one port. Returns 0 or -1 with errno. */
int rpc_server_listen(rpc_server *s, const char *addr, bool reuseport);
int rpc_server_port(const rpc_server *s);
/* Serve one already-connected socket (socket passing, tests, fuzzing); the
 * server owns fd from here, closing it on failure. 0 or -1. */
int rpc_server_adopt(rpc_server *s, int fd);
/* Stop accepting, cancel every call (their on_cancel runs), free. */
void rpc_server_free(rpc_server *s);

void rpc_call_set_data(rpc_call *c, void *data);
void *rpc_call_data(const rpc_call *c);
/* When the client's grpc-timeout expires (ev_now scale), 0 when none. */
ev_tstamp rpc_call_deadline(const rpc_call *c);
/* A request header (metadata) by lower-case name, NULL when absent. */
const char *rpc_call_metadata(const rpc_call *c, const char *name);

/* Queue one response message (packed into pooled buffers). 0, or -1 when
 * the call is already over, the message is over RPC_MAX_MESSAGE (errno
 * EMSGSIZE; nothing queued) or memory ran out. Never blocks, never calls
 * back. */
int rpc_call_send(rpc_call *c, const ProtobufCMessage *msg);
/* false while more than call_buffer bytes wait for the client's flow
 * control window: a producer stops reading its source and waits for
 * on_writable. */
bool rpc_call_writable(const rpc_call *c);
/* cb runs each time the queue drains back to call_buffer after
 * rpc_call_writable said no (not at once when it already says yes). */
void rpc_call_on_writable(rpc_call *c, void (*cb)(rpc_call *c, void *arg), void *arg);
/* Response bytes queued and not yet taken by HTTP/2 (for bounds and tests). */
size_t rpc_call_queued(const rpc_call *c);
/* Stop / resume taking request messages (bidirectional calls): the
 * client's window closes instead of memory growing. */
void rpc_call_pause(rpc_call *c);
void rpc_call_resume(rpc_call *c);
/* End the call: the queued messages, then trailers with grpc-status and
 * grpc-message; detail (an mtrpc.RPCError, or NULL) goes into
 * grpc-status-details-bin as a google.rpc.Status. The call is freed once
 * sent; no callback follows. */
void rpc_call_finish(rpc_call *c, int status, const char *message, const ProtobufCMessage *detail);

/* ------------------------------------------------------------------ client */

typedef struct rpc_channel rpc_channel;
typedef struct rpc_client_call rpc_client_call;

typedef struct rpc_channel_config {
	double connect_timeout;	   /* seconds (default 5) */
	double backoff_initial;	   /* first reconnect delay (default 0.1 s) */
	double backoff_max;	   /* delays double up to this (default 5 s) */
	double keepalive_interval; /* PING an idle connection (0: never) */
	double keepalive_timeout;  /* unanswered PING closes it (default 10 s) */
	size_t call_buffer;	   /* request bytes queued per call before rpc_client_send says false (default 256 KiB) */
	/* The connection came up (ready), went down, or an attempt to connect
	 * failed (not ready; once per failed attempt). May be NULL. */
	void (*on_state)(rpc_channel *ch, bool ready, void *arg);
	void *arg;
} rpc_channel_config;

/* A channel to "host:port" or a Unix socket path; connects at once and
 * stays connected, reconnecting with backoff when the connection drops. */
rpc_channel *rpc_channel_new(struct ev_loop *loop, const char *target, const rpc_channel_config *cfg);
/* Cancels every call (their on_close runs with RPC_CANCELLED), frees. */
void rpc_channel_free(rpc_channel *ch);
bool rpc_channel_ready(const rpc_channel *ch);

typedef struct rpc_client_ops {
	/* A response message; freed when this returns. */
	void (*on_message)(rpc_client_call *call, const ProtobufCMessage *msg, void *arg);
	/* The last callback of a call: its status, grpc-message, and the
	 * google.rpc.Status details' first mtrpc.RPCError packed bytes (NULL
	 * when none). The call is freed when this returns. A call started
	 * while the channel is down fails with RPC_UNAVAILABLE; one in flight
	 * when the connection drops likewise. */
	void (*on_close)(rpc_client_call *call, int status, const char *message,
			 const uint8_t *rpc_error, size_t rpc_error_len, void *arg);
	/* Sending may go on (after rpc_client_send returned false). May be NULL. */
	void (*on_writable)(rpc_client_call *call, void *arg);
} rpc_client_ops;

/* Start a call; timeout > 0 sends grpc-timeout and fails the call with
 * RPC_DEADLINE_EXCEEDED when it passes. Never NULL: a call that cannot
 * start reports it through on_close, from the loop. */
rpc_client_call *rpc_client_start(rpc_channel *ch, const char *path,
				  const ProtobufCMessageDescriptor *response, double timeout,
				  const rpc_client_ops *ops, void *arg);
/* Queue a request message. Returns false when the call's buffer is over
 * its limit (the message is still queued): wait for on_writable. A
 * message over RPC_MAX_MESSAGE is not sent: the call ends with
 * RPC_RESOURCE_EXHAUSTED, as the server would end it. */
bool rpc_client_send(rpc_client_call *c, const ProtobufCMessage *msg);
/* The request side is complete (END_STREAM). */
void rpc_client_close_send(rpc_client_call *c);
/* Give up: RST_STREAM(CANCEL); on_close follows from the loop with
 * RPC_CANCELLED. */
void rpc_client_cancel(rpc_client_call *c);
/* Stop / resume taking response messages (flow control to the server). */
void rpc_client_pause(rpc_client_call *c);
void rpc_client_resume(rpc_client_call *c);

#endif
