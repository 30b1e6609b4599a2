/*
 * Framing: find where the next message ends and which message it is,
 * refusing bad types and lengths before any of the body is buffered, the
 * way PostgreSQL's pq_getmessage and ProcessStartupPacket do. The body is
 * then handed to its generated Ragel machine.
 */
#include <stdarg.h>
#include <stdio.h>

#include "codec_internal.h"

static void error_vset(pgw_error *err, pgw_severity sev, const char *sqlstate, const char *fmt,
		       va_list ap)
{
	err->severity = sev;
	err->lost_sync = false;
	err->old_protocol = false;
	memcpy(err->sqlstate, sqlstate, 5);
	err->sqlstate[5] = '\0';
	vsnprintf(err->message, sizeof err->message, fmt, ap);
}

void pgw_error_set(pgw_error *err, pgw_severity sev, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_vset(err, sev, sqlstate, fmt, ap);
	va_end(ap);
}

pgw_status pgw_fail(pgw_error *err, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_vset(err, PGW_SEV_ERROR, sqlstate, fmt, ap);
	va_end(ap);
	return PGW_ERR;
}

pgw_status pgw_fail_at(pgw_error *err, int at)
{
	static const char *const text[] = {
		[PGW_AT_END] = "invalid message format",
		[PGW_AT_INT] = "insufficient data left in message",
		[PGW_AT_BYTE] = "no data left in message",
		[PGW_AT_STRING] = "invalid string in message",
	};
	return pgw_fail(err, "08P01", "%s", text[at]);
}

void pgw_decoder_init(pgw_decoder *d, pgw_direction dir, uint32_t max_message)
{
	d->direction = dir;
	d->phase = dir == PGW_FRONTEND ? PGW_PH_STARTUP : PGW_PH_BACKEND;
	if (max_message == 0)
		max_message = PGW_DEFAULT_MESSAGE_CAP;
	if (max_message > PGW_HARD_MESSAGE_CAP)
		max_message = PGW_HARD_MESSAGE_CAP;
	d->max_message = max_message;
	d->need = 0;
}

static uint32_t limit_bytes(const pgw_decoder *d, pgw_limit_class c)
{
	switch (c) {
	case PGW_LIMIT_SMALL:
		return PGW_SMALL_MESSAGE_LIMIT;
	case PGW_LIMIT_AUTH:
		return PGW_AUTH_MESSAGE_LIMIT;
	case PGW_LIMIT_STARTUP:
		return PGW_STARTUP_MAX_LENGTH;
	case PGW_LIMIT_LARGE:
		return d->max_message;
	default:
		return 0;
	}
}

/* Untyped startup packets: StartupMessage, SSLRequest, GSSENCRequest,
 * CancelRequest, told apart by the code after the length. */
static pgw_status decode_startup(pgw_decoder *d, const uint8_t *buf, size_t len, pgw_msg *msg,
				 size_t *consumed, pgw_error *err)
{
	if (len >= 1 && buf[0] == PGW_TLS_HANDSHAKE_BYTE) {
		msg->id = PGW_MSG_DIRECT_TLS;
		msg->type = 0;
		msg->raw = buf;
		msg->raw_len = 0;
		*consumed = 0;
		return PGW_OK;
	}
	if (len < 4) {
		d->need = 4;
		return PGW_NEED_MORE;
	}
	uint32_t total = rd32(buf);
	if (total < PGW_STARTUP_MIN_LENGTH || total > PGW_STARTUP_MAX_LENGTH) {
		pgw_error_set(err, PGW_SEV_COMMERROR, "08P01", "invalid length of startup packet");
		err->lost_sync = true;
		return PGW_ERR;
	}
	if (len < total) {
		d->need = total;
		return PGW_NEED_MORE;
	}
	int32_t code = (int32_t)rd32(buf + 4);
	pgw_msg_id id = pgw_startup_packet_id(code);
	if (id == PGW_MSG_STARTUP_MESSAGE && (code >> 16) != 3) {
		/* PostgreSQL checks the major version before the layout. */
		pgw_error_set(err, PGW_SEV_FATAL, "0A000",
			      "unsupported frontend protocol %u.%u: server supports 3.0 to 3.2",
			      (unsigned)code >> 16, (unsigned)code & 0xffff);
		err->lost_sync = true;
		err->old_protocol = (code >> 16) < 3;
		return PGW_ERR;
	}
	if (pgw_decode_body(id, buf + 4, total - 4, &msg->body, err) != PGW_OK) {
		if (id == PGW_MSG_STARTUP_MESSAGE)
			pgw_error_set(err, PGW_SEV_FATAL, "08P01",
				      "invalid startup packet layout: expected terminator as last byte");
		else if (id == PGW_MSG_CANCEL_REQUEST)
			pgw_error_set(err, PGW_SEV_COMMERROR, "08P01",
				      "invalid length of cancel request packet");
		else
			pgw_error_set(err, PGW_SEV_COMMERROR, "08P01", "invalid length of startup packet");
		err->lost_sync = true;
		return PGW_ERR;
	}
	msg->id = id;
	msg->type = 0;
	msg->raw = buf;
	msg->raw_len = total;
	*consumed = total;
	return PGW_OK;
}

/* The single byte a server answers SSLRequest or GSSENCRequest with. */
static pgw_status decode_ssl_answer(pgw_decoder *d, const uint8_t *buf, size_t len, pgw_msg *msg,
				    size_t *consumed, pgw_error *err)
{
	if (len < 1) {
		d->need = 1;
		return PGW_NEED_MORE;
	}
	uint8_t yes = d->phase == PGW_PH_SSL_ANSWER ? 'S' : 'G';
	if (buf[0] != yes && buf[0] != 'N') {
		/* An 'E' here is an old server's error; the caller reads it as a
		 * backend message after switching phase. */
		if (buf[0] == 'E') {
			msg->id = PGW_MSG_NONE;
			*consumed = 0;
			d->phase = PGW_PH_BACKEND;
			return pgw_decode(d, buf, len, msg, consumed, err);
		}
		pgw_error_set(err, PGW_SEV_COMMERROR, "08P01",
			      "received invalid response to SSL negotiation: %c", buf[0]);
		err->lost_sync = true;
		return PGW_ERR;
	}
	msg->id = PGW_MSG_SSL_ANSWER;
	msg->type = buf[0];
	msg->raw = buf;
	msg->raw_len = 1;
	msg->body.ssl_answer.answer = buf[0];
	*consumed = 1;
	return PGW_OK;
}

static pgw_status bad_type(const pgw_decoder *d, uint8_t type, pgw_error *err)
{
	switch (d->phase) {
	case PGW_PH_AUTH_PASSWORD:
		pgw_error_set(err, PGW_SEV_FATAL, "08P01",
			      "expected password response, got message type %d", type);
		break;
	case PGW_PH_AUTH_SASL_INITIAL:
	case PGW_PH_AUTH_SASL:
		pgw_error_set(err, PGW_SEV_FATAL, "08P01",
			      "expected SASL response, got message type %d", type);
		break;
	case PGW_PH_AUTH_GSS:
		pgw_error_set(err, PGW_SEV_FATAL, "08P01",
			      "expected GSS response, got message type %d", type);
		break;
	case PGW_PH_COPY_IN:
		/* ERROR, then PostgreSQL gives up on the connection because the
		 * unread body leaves it out of step. */
		pgw_error_set(err, PGW_SEV_ERROR, "08P01",
			      "unexpected message type 0x%02X during COPY from stdin", type);
		break;
	case PGW_PH_BACKEND:
		pgw_error_set(err, PGW_SEV_FATAL, "08P01",
			      "unexpected message type 0x%02X from server", type);
		break;
	default:
		pgw_error_set(err, PGW_SEV_FATAL, "08P01", "invalid frontend message type %d",
			      type);
		break;
	}
	err->lost_sync = true;
	return PGW_ERR;
}

/* Which message a type byte starts in the current phase, and its limit. */
static pgw_frame_rule rule_for(const pgw_decoder *d, uint8_t type)
{
	pgw_frame_rule none = {PGW_MSG_NONE, PGW_LIMIT_NONE};
	switch (d->phase) {
	case PGW_PH_AUTH_PASSWORD:
	case PGW_PH_AUTH_SASL_INITIAL:
	case PGW_PH_AUTH_SASL:
	case PGW_PH_AUTH_GSS:
		if (type != 'p')
			return none;
		return (pgw_frame_rule){pgw_password_message_id(d->phase), PGW_LIMIT_AUTH};
	case PGW_PH_COPY_IN:
		if (type != 'd' && type != 'c' && type != 'f' && type != 'H' && type != 'S')
			return none;
		return pgw_frontend_rules[type];
	case PGW_PH_BACKEND:
		return pgw_backend_rules[type];
	default:
		return pgw_frontend_rules[type];
	}
}

/*
 * The framing half of pgw_decode: the message's id and extent, with the
 * body left undecoded. body_done says whether the caller still has to run
 * the body machine.
 */
static pgw_status frame(pgw_decoder *d, const uint8_t *buf, size_t len, pgw_msg *msg,
			size_t *consumed, pgw_error *err, bool *body_done)
{
	*consumed = 0;
	*body_done = false;
	switch (d->phase) {
	case PGW_PH_STARTUP:
		*body_done = true;
		return decode_startup(d, buf, len, msg, consumed, err);
	case PGW_PH_SSL_ANSWER:
	case PGW_PH_GSSENC_ANSWER:
		*body_done = true;
		return decode_ssl_answer(d, buf, len, msg, consumed, err);
	default:
		break;
	}
	if (len < 1) {
		d->need = 5;
		return PGW_NEED_MORE;
	}
	uint8_t type = buf[0];
	pgw_frame_rule rule = rule_for(d, type);
	if (rule.limit == PGW_LIMIT_NONE)
		return bad_type(d, type, err);
	if (len < 5) {
		d->need = 5;
		return PGW_NEED_MORE;
	}
	uint32_t mlen = rd32(buf + 1);
	if (mlen < 4 || mlen > limit_bytes(d, rule.limit)) {
		pgw_error_set(err, PGW_SEV_COMMERROR, "08P01", "invalid message length");
		err->lost_sync = true;
		return PGW_ERR;
	}
	size_t total = (size_t)mlen + 1;
	if (len < total) {
		d->need = (uint32_t)total;
		return PGW_NEED_MORE;
	}
	/* From here on a fault is in the body: an ERROR, and the stream
	 * itself stays in step. */
	*consumed = total;
	pgw_msg_id id = rule.id;
	if (id == PGW_MSG_NONE) {
		/* Authentication requests: the subtype is the first Int32. */
		if (mlen < 8)
			return pgw_fail_at(err, PGW_AT_INT);
		int32_t tag = (int32_t)rd32(buf + 5);
		id = pgw_auth_request_id(tag);
		if (id == PGW_MSG_NONE)
			return pgw_fail(err, "08P01", "unsupported authentication request %d", (int)tag);
	}
	msg->id = id;
	msg->type = type;
	msg->raw = buf;
	msg->raw_len = (uint32_t)total;
	return PGW_OK;
}

pgw_status pgw_frame(pgw_decoder *d, const uint8_t *buf, size_t len, pgw_msg *msg,
		     size_t *consumed, pgw_error *err)
{
	bool body_done;
	return frame(d, buf, len, msg, consumed, err, &body_done);
}

pgw_status pgw_decode(pgw_decoder *d, const uint8_t *buf, size_t len, pgw_msg *msg,
		      size_t *consumed, pgw_error *err)
{
	bool body_done;
	pgw_status st = frame(d, buf, len, msg, consumed, err, &body_done);
	if (st != PGW_OK || body_done)
		return st;
	return pgw_decode_msg_body(msg, err);
}

pgw_status pgw_decode_msg_body(pgw_msg *msg, pgw_error *err)
{
	size_t hdr = msg->type ? 5 : 4;
	return pgw_decode_body(msg->id, msg->raw + hdr, msg->raw_len - hdr, &msg->body, err);
}

bool pgw_next_value(pgw_iter *it, pgw_value *out)
{
	if (it->p >= it->end)
		return false;
	out->len = (int32_t)rd32(it->p);
	out->ptr = it->p + 4;
	it->p += 4 + (out->len > 0 ? (size_t)out->len : 0);
	return true;
}

bool pgw_next_str(pgw_iter *it, pgw_str *out)
{
	if (it->p >= it->end)
		return false;
	out->ptr = it->p;
	out->len = (uint32_t)strlen((const char *)it->p);
	it->p += out->len + 1;
	return true;
}

bool pgw_next_field(pgw_iter *it, uint8_t *code, pgw_str *text)
{
	if (it->p >= it->end)
		return false;
	*code = *it->p++;
	return pgw_next_str(it, text);
}

bool pgw_find_field(const pgw_array *fields, uint8_t code, pgw_str *out)
{
	pgw_iter it = pgw_array_iter(fields);
	uint8_t c;
	pgw_str text;
	while (pgw_next_field(&it, &c, &text))
		if (c == code) {
			*out = text;
			return true;
		}
	return false;
}

bool pgw_next_pair(pgw_iter *it, pgw_str *name, pgw_str *value)
{
	return pgw_next_str(it, name) && pgw_next_str(it, value);
}
