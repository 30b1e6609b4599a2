/*
 * The gRPC pieces below HTTP/2: queues of pooled blocks, the 5-byte message
 * prefix and its reassembly across DATA frames, grpc-timeout, the percent
 * and base64 encodings of trailers, and google.rpc.Status details.
 */
#ifndef PGW_RPC_WIRE_H
#define PGW_RPC_WIRE_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- a byte queue in bufpool blocks: output messages, held input */
typedef struct rpc_blk rpc_blk;
typedef struct rpc_bq {
	rpc_blk *head, *tail;
	size_t bytes; /* queued, not yet read */
} rpc_bq;

int rpc_bq_append(rpc_bq *q, const void *p, size_t n);
/* The first contiguous run of queued bytes (NULL when empty). */
const uint8_t *rpc_bq_peek(const rpc_bq *q, size_t *n);
void rpc_bq_drop(rpc_bq *q, size_t n);
size_t rpc_bq_read(rpc_bq *q, void *out, size_t n);
void rpc_bq_clear(rpc_bq *q);

/* Append one gRPC message (prefix and packed protobuf) to q. 0 or -1. */
int rpc_pack_message(rpc_bq *q, const ProtobufCMessage *msg);

/* ---- the 5-byte-prefixed message reassembler */
typedef struct rpc_reasm {
	uint8_t hdr[5];
	uint8_t hdr_have;
	uint32_t len; /* body length from the prefix */
	uint8_t *buf; /* a body split across chunks, pooled */
	size_t cap, have;
	size_t max; /* largest body accepted */
} rpc_reasm;

enum {
	RPC_REASM_OK = 0,
	RPC_REASM_COMPRESSED = -1, /* flag 1 without negotiated compression, or flag > 1 */
	RPC_REASM_TOO_BIG = -2,
	RPC_REASM_NOMEM = -3,
};

/* Take bytes from p; stop after the first complete message, which is
 * returned in *msg and *msg_len (pointing into p when it came whole, else into
 * the reassembler's buffer: valid until rpc_reasm_done). Returns the bytes
 * consumed (>= 0) or an RPC_REASM_* error. */
ssize_t rpc_reasm_feed(rpc_reasm *r, const uint8_t *p, size_t n, const uint8_t **msg, size_t *msg_len);
/* The message returned by feed has been used. */
void rpc_reasm_done(rpc_reasm *r);
/* Inside a message (a partial prefix or body is held). */
bool rpc_reasm_partial(const rpc_reasm *r);
void rpc_reasm_free(rpc_reasm *r);

/* ---- an arena in bufpool blocks for protobuf_c_message_unpack */
typedef struct rpc_arena {
	ProtobufCAllocator alloc; /* first: allocator_data points at the arena */
	void *blocks;		  /* chain of pooled blocks */
	uint8_t *cur;
	size_t left;
} rpc_arena;

void rpc_arena_init(rpc_arena *a);
/* Give every block back (after the unpacked message is gone). */
void rpc_arena_reset(rpc_arena *a);

/* ---- a call's input: reassembled, unpacked and handed over one by one */
typedef enum rpc_take_state {
	RPC_TAKE_GO,	 /* take more */
	RPC_TAKE_PAUSED, /* take no more now; the rest waits for a resume */
	RPC_TAKE_GONE,	 /* nobody wants the rest: it is dropped */
} rpc_take_state;

typedef struct rpc_taker {
	rpc_reasm *in;
	rpc_arena *arena; /* messages are unpacked here, reset after each */
	const ProtobufCMessageDescriptor *type;
	const char *what; /* "request" or "response", for errors */
	void *call;
	rpc_take_state (*state)(void *call);
	/* One message, for the call's handler (valid during the call). */
	void (*deliver)(void *call, const ProtobufCMessage *m);
	/* The input is bad (too big, compressed, unparsable, no memory): the
	 * call ends with this status. */
	void (*fail)(void *call, int status, const char *message);
} rpc_taker;

/* Feeds n bytes at p through t->in, delivering each whole message, until
 * they are used or the call pauses. Returns how many were taken: all of
 * them once the call failed or is gone. */
size_t rpc_take(const rpc_taker *t, const uint8_t *p, size_t n);

/* ---- grpc-timeout: 1..8 digits and a unit (H M S m u n) */
/* Seconds, or -1 when malformed. */
double rpc_timeout_parse(const char *s, size_t n);
/* Writes at most 10 bytes plus NUL into out. */
void rpc_timeout_format(double seconds, char out[16]);

/* ---- grpc-message percent encoding (malloc'd, NUL-terminated; NULL on ENOMEM) */
char *rpc_pct_encode(const char *s);
char *rpc_pct_decode(const uint8_t *s, size_t n);

/* ---- base64 (standard alphabet); decode accepts padded and unpadded */
char *rpc_b64_encode(const uint8_t *p, size_t n); /* unpadded, malloc'd */
/* Returns a malloc'd buffer in *out, or -1 when malformed. */
int rpc_b64_decode(const uint8_t *s, size_t n, uint8_t **out, size_t *out_len);

/* ---- grpc-status-details-bin */
#define RPC_TYPE_URL_PREFIX "type.googleapis.com/"
/* base64 of google.rpc.Status{code, message, [Any(detail)]}; malloc'd. */
char *rpc_status_details_encode(int code, const char *message, const ProtobufCMessage *detail);
/* From the header value: the first detail whose type is type_name (e.g.
 * "mtrpc.RPCError"), copied into *out (malloc'd, NULL when none). 0, or -1
 * when the value is not a google.rpc.Status in base64. */
int rpc_status_details_decode(const uint8_t *b64, size_t n, const char *type_name, uint8_t **out,
			      size_t *out_len);

#endif
