/*
 * libFuzzer/AFL++ target: the SCRAM attribute parser (grammar/scram_attrs.rl)
 * and the SCRAM client on top of it (src/auth).
 *
 * Input: one selector byte, then the message. selector % 6 picks
 *   0 server-first, 1 server-final, 2 client-first, 3 client-final: the parser;
 *   4 server-first into scram_client_final (RFC 7677 client nonce);
 *   5 server-final into scram_client_verify_final after the RFC 7677 exchange.
 * Whatever the parser accepts must rebuild byte for byte from its views,
 * every view must lie inside the input and follow its production, and a
 * rejected message must leave no views behind. Needs only pgw_auth.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/scram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* Iteration counts above this are not worth a fuzzing run's time. */
#define FZ_MAX_ITERATIONS 4096

static const uint8_t *in_start, *in_end;

static bool absent(scram_view v)
{
	return v.ptr == NULL && v.len == 0;
}

static void check_inside(scram_view v)
{
	if (absent(v))
		return;
	CHECK(v.ptr >= in_start && v.ptr <= in_end && v.len <= (size_t)(in_end - v.ptr));
}

static void check_printable(scram_view v)
{
	CHECK(v.len > 0);
	for (size_t i = 0; i < v.len; i++)
		CHECK(v.ptr[i] >= 0x21 && v.ptr[i] <= 0x7e && v.ptr[i] != ',');
}

static void check_base64(scram_view v)
{
	CHECK(v.len > 0 && v.len % 4 == 0);
	for (size_t i = 0; i < v.len; i++) {
		uint8_t c = v.ptr[i];
		bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			     (c >= '0' && c <= '9') || c == '+' || c == '/';
		CHECK(alpha || (c == '=' && i + 2 >= v.len));
	}
}

/* A value: no NUL, no ','. */
static void check_value(scram_view v, bool may_be_empty)
{
	CHECK(may_be_empty || v.len > 0);
	if (v.len == 0)
		return;
	CHECK(memchr(v.ptr, 0, v.len) == NULL && memchr(v.ptr, ',', v.len) == NULL);
}

/* "x=v,y=w": letters SCRAM does not define, non-empty values. */
static void check_extensions(scram_view v)
{
	if (absent(v))
		return;
	check_inside(v);
	const uint8_t *p = v.ptr, *end = v.ptr + v.len;
	for (;;) {
		CHECK(end - p >= 3 && p[1] == '=' && strchr("acimnprsve", p[0]) == NULL);
		const uint8_t *comma = memchr(p, ',', (size_t)(end - p));
		scram_view item = {p + 2, (size_t)((comma ? comma : end) - p - 2)};
		check_value(item, false);
		if (!comma)
			break;
		p = comma + 1;
	}
}

/* The rebuilt message, compared with the input at the end. */
typedef struct rebuild {
	uint8_t *buf;
	size_t len;
	size_t cap;
} rebuild;

static void put(rebuild *r, const void *p, size_t n)
{
	CHECK(n <= r->cap - r->len);
	memcpy(r->buf + r->len, p, n);
	r->len += n;
}

static void put_s(rebuild *r, const char *s)
{
	put(r, s, strlen(s));
}

static void put_v(rebuild *r, scram_view v)
{
	if (v.len)
		put(r, v.ptr, v.len);
}

static void put_ext(rebuild *r, scram_view ext)
{
	if (!absent(ext)) {
		put_s(r, ",");
		put_v(r, ext);
	}
}

static void check_rebuilt(const rebuild *r, const uint8_t *msg, size_t n)
{
	CHECK(r->len == n && memcmp(r->buf, msg, n) == 0);
}

static void server_first(const uint8_t *msg, size_t n, rebuild *r)
{
	scram_server_first_msg m;
	if (scram_parse_server_first(msg, n, &m) != SCRAM_OK) {
		scram_server_first_msg zero;
		memset(&zero, 0, sizeof zero);
		CHECK(memcmp(&m, &zero, sizeof m) == 0);
		return;
	}
	check_inside(m.reserved_mext);
	check_inside(m.nonce);
	check_inside(m.salt);
	if (!absent(m.reserved_mext))
		check_value(m.reserved_mext, false);
	check_printable(m.nonce);
	check_base64(m.salt);
	CHECK(m.iterations >= 1);
	check_extensions(m.extensions);
	if (!absent(m.reserved_mext)) {
		put_s(r, "m=");
		put_v(r, m.reserved_mext);
		put_s(r, ",");
	}
	char digits[16];
	snprintf(digits, sizeof digits, "%d", (int)m.iterations);
	put_s(r, "r=");
	put_v(r, m.nonce);
	put_s(r, ",s=");
	put_v(r, m.salt);
	put_s(r, ",i=");
	put_s(r, digits);
	put_ext(r, m.extensions);
	check_rebuilt(r, msg, n);
}

static void server_final(const uint8_t *msg, size_t n, rebuild *r)
{
	scram_server_final_msg m;
	if (scram_parse_server_final(msg, n, &m) != SCRAM_OK) {
		CHECK(absent(m.verifier) && absent(m.error) && absent(m.extensions));
		return;
	}
	check_inside(m.verifier);
	check_inside(m.error);
	CHECK(absent(m.verifier) != absent(m.error));
	if (!absent(m.verifier)) {
		check_base64(m.verifier);
		put_s(r, "v=");
		put_v(r, m.verifier);
	} else {
		check_value(m.error, false);
		put_s(r, "e=");
		put_v(r, m.error);
	}
	check_extensions(m.extensions);
	put_ext(r, m.extensions);
	check_rebuilt(r, msg, n);
}

static void client_first(const uint8_t *msg, size_t n, rebuild *r)
{
	scram_client_first_msg m;
	if (scram_parse_client_first(msg, n, &m) != SCRAM_OK) {
		CHECK(m.cbind_flag == 0 && absent(m.bare) && absent(m.nonce) && absent(m.user));
		return;
	}
	check_inside(m.cbind_name);
	check_inside(m.authzid);
	check_inside(m.bare);
	check_inside(m.reserved_mext);
	check_inside(m.user);
	check_inside(m.nonce);
	check_printable(m.nonce);
	check_value(m.user, true);
	CHECK(m.user.ptr != NULL);
	if (m.cbind_flag == 'p') {
		CHECK(m.cbind_name.len > 0);
		put_s(r, "p=");
		put_v(r, m.cbind_name);
	} else {
		CHECK((m.cbind_flag == 'n' || m.cbind_flag == 'y') && absent(m.cbind_name));
		put(r, &m.cbind_flag, 1);
	}
	put_s(r, ",");
	if (!absent(m.authzid)) {
		check_value(m.authzid, false);
		put_s(r, "a=");
		put_v(r, m.authzid);
	}
	put_s(r, ",");
	CHECK(m.bare.ptr == msg + r->len && m.bare.ptr + m.bare.len == msg + n);
	if (!absent(m.reserved_mext)) {
		check_value(m.reserved_mext, false);
		put_s(r, "m=");
		put_v(r, m.reserved_mext);
		put_s(r, ",");
	}
	put_s(r, "n=");
	put_v(r, m.user);
	put_s(r, ",r=");
	put_v(r, m.nonce);
	check_extensions(m.extensions);
	put_ext(r, m.extensions);
	check_rebuilt(r, msg, n);
}

static void client_final(const uint8_t *msg, size_t n, rebuild *r)
{
	scram_client_final_msg m;
	if (scram_parse_client_final(msg, n, &m) != SCRAM_OK) {
		CHECK(absent(m.proof) && absent(m.nonce) && absent(m.without_proof));
		return;
	}
	check_inside(m.channel_binding);
	check_inside(m.nonce);
	check_inside(m.without_proof);
	check_inside(m.proof);
	check_base64(m.channel_binding);
	check_printable(m.nonce);
	check_base64(m.proof);
	check_extensions(m.extensions);
	put_s(r, "c=");
	put_v(r, m.channel_binding);
	put_s(r, ",r=");
	put_v(r, m.nonce);
	put_ext(r, m.extensions);
	CHECK(m.without_proof.ptr == msg && m.without_proof.len == r->len);
	put_s(r, ",p=");
	put_v(r, m.proof);
	check_rebuilt(r, msg, n);
}

#define RFC_NONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_FIRST                                                                   \
	"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,"  \
	"i=4096"
/* RFC 7677's server signature, but for its last (partly padding) char. */
#define RFC_V_PREFIX "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G"

static int rfc_client(scram_client *c)
{
	char first[128];
	size_t len;
	int rc = scram_client_init(c, "pencil", 6);
	if (rc == SCRAM_OK)
		rc = scram_client_set_test_params(c, "user", 4, RFC_NONCE, strlen(RFC_NONCE));
	if (rc == SCRAM_OK)
		rc = scram_client_first(c, first, sizeof first, &len);
	return rc;
}

static void client_with_server_first(const uint8_t *msg, size_t n)
{
	scram_server_first_msg m;
	/* Keep PBKDF2 cheap; the parser itself was fuzzed above. */
	if (scram_parse_server_first(msg, n, &m) == SCRAM_OK && m.iterations > FZ_MAX_ITERATIONS)
		return;
	scram_client c;
	char out[4096];
	size_t len = 0;
	CHECK(rfc_client(&c) == SCRAM_OK);
	int rc = scram_client_final(&c, msg, n, out, sizeof out, &len);
	CHECK(rc <= 0 && rc >= SCRAM_ERR_CRYPTO);
	if (rc != SCRAM_OK) {
		CHECK(c.state == SCRAM_CLIENT_FAILED && c.password_len == 0);
		return;
	}
	CHECK(c.state == SCRAM_CLIENT_FINAL_SENT && len < sizeof out && out[len] == '\0');
	scram_client_final_msg f;
	CHECK(scram_parse_client_final((const uint8_t *)out, len, &f) == SCRAM_OK);
	CHECK(f.nonce.len == m.nonce.len && memcmp(f.nonce.ptr, m.nonce.ptr, m.nonce.len) == 0);
	CHECK(f.nonce.len > strlen(RFC_NONCE) && memcmp(f.nonce.ptr, RFC_NONCE, 20) == 0);
	CHECK(f.proof.len == 44);
}

static void client_with_server_final(const uint8_t *msg, size_t n)
{
	/* The RFC exchange is made once and copied: scram_client is plain data. */
	static scram_client ready;
	static bool have_ready;
	if (!have_ready) {
		char out[256];
		size_t len;
		CHECK(rfc_client(&ready) == SCRAM_OK);
		CHECK(scram_client_final(&ready, (const uint8_t *)RFC_SERVER_FIRST,
					 strlen(RFC_SERVER_FIRST), out, sizeof out,
					 &len) == SCRAM_OK);
		have_ready = true;
	}
	scram_client c = ready;
	int rc = scram_client_verify_final(&c, msg, n);
	if (rc == SCRAM_OK) {
		CHECK(c.state == SCRAM_CLIENT_DONE);
		CHECK(n >= strlen(RFC_V_PREFIX) + 2 &&
		      memcmp(msg, RFC_V_PREFIX, strlen(RFC_V_PREFIX)) == 0);
	} else {
		CHECK(c.state == SCRAM_CLIENT_FAILED);
		CHECK(rc == SCRAM_ERR_SYNTAX || rc == SCRAM_ERR_SERVER || rc == SCRAM_ERR_VERIFY);
		if (rc == SCRAM_ERR_SERVER)
			CHECK(memchr(c.server_error, 0, sizeof c.server_error) != NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	const uint8_t *msg = data + 1;
	size_t n = size - 1;
	in_start = msg;
	in_end = msg + n;
	/* A right rebuild is exactly the input; a wrong one trips put(). */
	rebuild r = {malloc(n + 64), 0, n + 64};
	if (!r.buf)
		return 0;
	switch (data[0] % 6) {
	case 0:
		server_first(msg, n, &r);
		break;
	case 1:
		server_final(msg, n, &r);
		break;
	case 2:
		client_first(msg, n, &r);
		break;
	case 3:
		client_final(msg, n, &r);
		break;
	case 4:
		client_with_server_first(msg, n);
		break;
	default:
		client_with_server_final(msg, n);
		break;
	}
	free(r.buf);
	return 0;
}
