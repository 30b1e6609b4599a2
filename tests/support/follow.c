/* Conversation replay through the stream decoders; see follow.h. */
#include "follow.h"

#include <string.h>

#include "pgw/rbuf.h"

typedef struct side {
	pgw_decoder dec;
	pgw_rbuf buf;
} side;

/* What one side's message tells the other side's decoder to expect. */
static void steer(side *s, pgw_direction dir, const pgw_msg *m)
{
	side *fe = &s[PGW_FRONTEND], *be = &s[PGW_BACKEND];
	if (dir == PGW_FRONTEND) {
		switch (m->id) {
		case PGW_MSG_SSL_REQUEST:
			be->dec.phase = PGW_PH_SSL_ANSWER;
			break;
		case PGW_MSG_GSSENC_REQUEST:
			be->dec.phase = PGW_PH_GSSENC_ANSWER;
			break;
		case PGW_MSG_STARTUP_MESSAGE:
		case PGW_MSG_COPY_DONE:
		case PGW_MSG_COPY_FAIL:
			fe->dec.phase = PGW_PH_READY;
			break;
		default:
			break;
		}
		return;
	}
	switch (m->id) {
	case PGW_MSG_SSL_ANSWER:
		be->dec.phase = PGW_PH_BACKEND;
		break;
	case PGW_MSG_AUTHENTICATION_CLEARTEXT_PASSWORD:
	case PGW_MSG_AUTHENTICATION_MD5_PASSWORD:
		fe->dec.phase = PGW_PH_AUTH_PASSWORD;
		break;
	case PGW_MSG_AUTHENTICATION_SASL:
		fe->dec.phase = PGW_PH_AUTH_SASL_INITIAL;
		break;
	case PGW_MSG_AUTHENTICATION_SASL_CONTINUE:
		fe->dec.phase = PGW_PH_AUTH_SASL;
		break;
	case PGW_MSG_AUTHENTICATION_OK:
		fe->dec.phase = PGW_PH_READY;
		break;
	case PGW_MSG_COPY_IN_RESPONSE:
		fe->dec.phase = PGW_PH_COPY_IN;
		break;
	default:
		break;
	}
}

/* Decode everything whole in one side's buffer. */
static int drain(side *s, pgw_direction dir, pgw_follow_fn fn, void *arg, pgw_follow_result *res)
{
	side *me = &s[dir];
	for (;;) {
		pgw_msg msg;
		size_t used;
		size_t have = pgw_rbuf_len(&me->buf);
		if (have == 0)
			return 0;
		pgw_status st = pgw_decode(&me->dec, pgw_rbuf_data(&me->buf), have, &msg, &used,
					   &res->err);
		if (st == PGW_NEED_MORE)
			return 0;
		if (st == PGW_ERR) {
			res->failed = 1;
			res->failed_dir = dir;
			return -1;
		}
		res->messages[dir]++;
		int rc = fn ? fn(arg, dir, &msg) : 0;
		steer(s, dir, &msg);
		pgw_rbuf_consume(&me->buf, used);
		if (rc)
			return rc;
	}
}

int pgw_follow(const pgw_transcript *t, size_t piece, pgw_follow_fn fn, void *arg,
	       pgw_follow_result *res)
{
	side s[2];
	memset(res, 0, sizeof *res);
	memset(s, 0, sizeof s);
	pgw_decoder_init(&s[PGW_FRONTEND].dec, PGW_FRONTEND, 0);
	pgw_decoder_init(&s[PGW_BACKEND].dec, PGW_BACKEND, 0);
	int rc = 0;
	for (size_t i = 0; i < t->nchunks && rc == 0; i++) {
		pgw_direction dir = t->chunks[i].dir == 'B' ? PGW_BACKEND : PGW_FRONTEND;
		const uint8_t *p = t->chunks[i].ptr;
		size_t left = t->chunks[i].len;
		while (left && rc == 0) {
			size_t n = piece && piece < left ? piece : left;
			size_t avail;
			uint8_t *dst = pgw_rbuf_space(&s[dir].buf, n, s[dir].dec.need, &avail);
			if (!dst)
				return -1;
			memcpy(dst, p, n);
			pgw_rbuf_produced(&s[dir].buf, n);
			p += n;
			left -= n;
			rc = drain(s, dir, fn, arg, res);
		}
	}
	for (int d = 0; d < 2; d++) {
		res->leftover[d] = pgw_rbuf_len(&s[d].buf);
		pgw_rbuf_release(&s[d].buf);
	}
	return rc;
}
