/*
 * What the generated decoders and the hand-written framing share: byte
 * readers, the error helpers and the framing tables.
 */
#ifndef PGW_CODEC_INTERNAL_H
#define PGW_CODEC_INTERNAL_H

#include <string.h>

#include "pgw/codec.h"

/* What the decoder was about to read when a body ran out or went wrong;
 * each maps to PostgreSQL's own wording (pqformat.c). */
enum {
	PGW_AT_END = 0,	   /* bytes left over: "invalid message format" */
	PGW_AT_INT = 1,	   /* "insufficient data left in message" */
	PGW_AT_BYTE = 2,   /* "no data left in message" */
	PGW_AT_STRING = 3, /* "invalid string in message" */
};

typedef enum pgw_limit_class {
	PGW_LIMIT_NONE = 0, /* unknown type */
	PGW_LIMIT_SMALL,
	PGW_LIMIT_LARGE,
	PGW_LIMIT_AUTH,
	PGW_LIMIT_STARTUP,
} pgw_limit_class;

typedef struct pgw_frame_rule {
	pgw_msg_id id; /* PGW_MSG_NONE with a limit: told apart by a leading Int32 */
	pgw_limit_class limit;
} pgw_frame_rule;

extern const pgw_frame_rule pgw_frontend_rules[256];
extern const pgw_frame_rule pgw_backend_rules[256];
pgw_msg_id pgw_auth_request_id(int32_t tag);
pgw_msg_id pgw_startup_packet_id(int32_t tag);
pgw_msg_id pgw_password_message_id(pgw_phase phase);

static inline uint32_t rd16(const uint8_t *p)
{
	return ((uint32_t)p[0] << 8) | p[1];
}

static inline uint32_t rd32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* An ERROR-level fault in a body; always returns PGW_ERR. */
pgw_status pgw_fail(pgw_error *err, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
pgw_status pgw_fail_at(pgw_error *err, int at);

#endif
