/*
 * libpgwire: decoders and encoders for every PostgreSQL protocol message.
 * Decoded messages are views into the caller's buffer; nothing here
 * allocates. The per-message structs and functions are generated from
 * grammar/messages.pgw into pgw_messages.h.
 */
#ifndef PGW_CODEC_H
#define PGW_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A NUL-terminated string inside a message: ptr[len] == '\0'. */
typedef struct pgw_str {
	const uint8_t *ptr;
	uint32_t len;
} pgw_str;

/* Raw bytes: a fixed field, or everything to the end of the message. */
typedef struct pgw_bytes {
	const uint8_t *ptr;
	uint32_t len;
} pgw_bytes;

/* An Int32-length-prefixed value; len == -1 is SQL NULL. */
typedef struct pgw_value {
	const uint8_t *ptr;
	int32_t len;
} pgw_value;

/*
 * A validated run of items exactly as on the wire: after the count for
 * counted arrays, before the closing zero byte for terminated lists
 * (error fields, startup parameters, SASL mechanisms). Fixed-size items
 * are read with pgw_array_i16/i32, others with an iterator. Nothing is
 * copied.
 */
typedef struct pgw_array {
	const uint8_t *ptr;
	uint32_t size;	/* bytes */
	uint32_t count; /* items */
} pgw_array;

typedef struct pgw_iter {
	const uint8_t *p;
	const uint8_t *end;
} pgw_iter;

/* How PostgreSQL itself would report the fault. */
typedef enum pgw_severity {
	PGW_SEV_ERROR = 0, /* ErrorResponse; the connection goes on */
	PGW_SEV_FATAL,	   /* FATAL ErrorResponse, then close */
	PGW_SEV_COMMERROR, /* logged only: close without a word */
} pgw_severity;

typedef struct pgw_error {
	pgw_severity severity;
	/* The input can no longer be framed: after sending the error, close
	 * as PostgreSQL does ("protocol synchronization was lost"). */
	bool lost_sync;
	/* The client asked for protocol 1 or 2: PostgreSQL answers in the old
	 * format ('E', "FATAL:  <message>\n", NUL), which such a client reads. */
	bool old_protocol;
	char sqlstate[6];
	char message[160];
} pgw_error;

typedef enum pgw_status {
	PGW_OK = 0,
	PGW_NEED_MORE = 1,
	PGW_ERR = -1,
} pgw_status;

typedef enum pgw_direction {
	PGW_FRONTEND = 0, /* client -> server */
	PGW_BACKEND = 1,  /* server -> client */
} pgw_direction;

/*
 * What the next bytes of a stream may be. The caller moves a decoder
 * between phases as the conversation goes (the codec cannot know whether
 * a server accepted SSL, or which authentication it asked for).
 */
typedef enum pgw_phase {
	/* frontend */
	PGW_PH_STARTUP = 0,	  /* an untyped startup packet; 0x16 = direct TLS */
	PGW_PH_AUTH_PASSWORD,	  /* 'p' is a PasswordMessage */
	PGW_PH_AUTH_SASL_INITIAL, /* 'p' is a SASLInitialResponse */
	PGW_PH_AUTH_SASL,	  /* 'p' is a SASLResponse */
	PGW_PH_AUTH_GSS,	  /* 'p' is a GSSResponse */
	PGW_PH_READY,		  /* normal operation */
	PGW_PH_COPY_IN,		  /* COPY FROM STDIN: only d c f H S */
	/* backend */
	PGW_PH_SSL_ANSWER,	  /* one byte, 'S' or 'N', answering SSLRequest */
	PGW_PH_GSSENC_ANSWER,	  /* one byte, 'G' or 'N' */
	PGW_PH_BACKEND,		  /* typed backend messages */
} pgw_phase;

#define PGW_SMALL_MESSAGE_LIMIT 10000u
#define PGW_AUTH_MESSAGE_LIMIT 65535u
#define PGW_STARTUP_MAX_LENGTH 10004u /* length word included */
#define PGW_STARTUP_MIN_LENGTH 8u
#define PGW_DEFAULT_MESSAGE_CAP (64u * 1024 * 1024)
#define PGW_HARD_MESSAGE_CAP (0x3fffffffu - 1) /* PostgreSQL's MaxAllocSize - 1 */

#define PGW_PROTOCOL(major, minor) (((uint32_t)(major) << 16) | (minor))
#define PGW_PROTOCOL_3_0 PGW_PROTOCOL(3, 0)
#define PGW_PROTOCOL_3_2 PGW_PROTOCOL(3, 2)
#define PGW_SSL_REQUEST_CODE 80877103u
#define PGW_GSSENC_REQUEST_CODE 80877104u
#define PGW_CANCEL_REQUEST_CODE 80877102u
#define PGW_TLS_HANDSHAKE_BYTE 0x16

#include "pgw_messages.h"

/* A decoded message: which one, its raw bytes, and its view. */
typedef struct pgw_msg {
	pgw_msg_id id;
	uint8_t type;	    /* wire type byte; 0 for startup packets */
	const uint8_t *raw; /* the whole message, header included */
	uint32_t raw_len;
	pgw_msg_body body; /* the view; the member named after id */
} pgw_msg;

/* Stream decoder state: nothing but settings and the current phase. */
typedef struct pgw_decoder {
	pgw_direction direction;
	pgw_phase phase;
	uint32_t max_message; /* cap for "large" messages, length word included */
	uint32_t need;	      /* after PGW_NEED_MORE: bytes the message needs */
} pgw_decoder;

void pgw_decoder_init(pgw_decoder *d, pgw_direction dir, uint32_t max_message);

/*
 * Decode the message at the start of buf[0..len). On PGW_OK, *msg views
 * buf and *consumed is its size. On PGW_NEED_MORE, d->need says how many
 * bytes the message takes once its header is known (5 before that), so a
 * caller can size its buffer before reading the body. A length outside the
 * limits is refused before any of the body is looked at. Direct TLS in the
 * startup phase is reported as PGW_MSG_DIRECT_TLS with *consumed = 0.
 */
pgw_status pgw_decode(pgw_decoder *d, const uint8_t *buf, size_t len, pgw_msg *msg,
		      size_t *consumed, pgw_error *err);

/*
 * Framing only: like pgw_decode, with the same limits and errors, but the
 * body is not looked at (msg->body is left alone; startup packets and SSL
 * answers are decoded whole all the same). For relaying messages whose
 * content the caller does not need; pgw_decode_msg_body finishes the job
 * for the ones it does.
 */
pgw_status pgw_frame(pgw_decoder *d, const uint8_t *buf, size_t len, pgw_msg *msg,
		     size_t *consumed, pgw_error *err);
pgw_status pgw_decode_msg_body(pgw_msg *msg, pgw_error *err);

/* Decode one message body whose kind is already known. */
pgw_status pgw_decode_body(pgw_msg_id id, const uint8_t *body, size_t len, pgw_msg_body *out,
			   pgw_error *err);

const char *pgw_msg_name(pgw_msg_id id);

/* Fixed-size items of a validated array. */
static inline int16_t pgw_array_i16(const pgw_array *a, uint32_t i)
{
	const uint8_t *p = a->ptr + 2 * (size_t)i;
	return (int16_t)(((uint16_t)p[0] << 8) | p[1]);
}

static inline int32_t pgw_array_i32(const pgw_array *a, uint32_t i)
{
	const uint8_t *p = a->ptr + 4 * (size_t)i;
	return (int32_t)(((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
			 p[3]);
}

static inline pgw_iter pgw_array_iter(const pgw_array *a)
{
	pgw_iter it = {a->ptr, a->ptr + a->size};
	return it;
}

/* Iterators over validated arrays: false when there is no next item. */
bool pgw_next_value(pgw_iter *it, pgw_value *out);
bool pgw_next_str(pgw_iter *it, pgw_str *out);
/* ErrorResponse/NoticeResponse fields: a code byte and its text. */
bool pgw_next_field(pgw_iter *it, uint8_t *code, pgw_str *text);
/* The value of one ErrorResponse/NoticeResponse field (code 'C' for the
 * SQLSTATE, 'M' for the message...): false when the message has none. */
bool pgw_find_field(const pgw_array *fields, uint8_t code, pgw_str *out);
/* StartupMessage parameters. */
bool pgw_next_pair(pgw_iter *it, pgw_str *name, pgw_str *value);

/* Fill *err; message is a printf format. */
void pgw_error_set(pgw_error *err, pgw_severity sev, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#include "pgw/wbuf.h"

#endif
