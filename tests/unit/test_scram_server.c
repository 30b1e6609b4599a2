/*
 * src/auth/scram_server.c against the client in scram.c and PostgreSQL's own
 * output: exchanges with and without channel binding, PostgreSQL's refusals,
 * verifiers, mock users, SCRAM pass-through, tls-server-end-point.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "auth/scram.h"
#include "auth/scram_server.h"

/* RFC 7677 section 3. */
#define RFC_NONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SALT "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_CLIENT_FIRST "n,,n=user,r=" RFC_NONCE
#define RFC_SERVER_FIRST "r=" RFC_NONCE RFC_SERVER_NONCE ",s=" RFC_SALT ",i=4096"
#define RFC_CLIENT_FINAL                                                                   \
	"c=biws,r=" RFC_NONCE RFC_SERVER_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

/*
 * Made by PostgreSQL 15.18 (Debian 15.18-0+deb12u1), password_encryption =
 * scram-sha-256: CREATE ROLE x PASSWORD 'pencil', CREATE ROLE y PASSWORD
 * 'pâsswörd' (UTF-8), then SELECT rolpassword FROM pg_authid.
 */
#define PG15_PASSWORD_X "pencil"
#define PG15_VERIFIER_X                                                                    \
	"SCRAM-SHA-256$4096:osUc3kJdwBEfEptprbd3Dw==$fugqqo/fuF28Kh9ERWwwGpRgi4d5aiKFsTaTujEk7O8=" \
	":94IoX75PhS0E+MaldzwAqqKRZXxhwmK4WaZvJlmlH6E="
#define PG15_PASSWORD_Y "p\xc3\xa2ssw\xc3\xb6rd"
#define PG15_VERIFIER_Y                                                                    \
	"SCRAM-SHA-256$4096:AB0r/BV+hXf/+BgAYFJhxg==$dJzAV47kPwt4tpnhkDN1LC6O9BfEZiv1ZpFxADW0EuA=" \
	":tvYTWevkcoWwTdZikmmOSCfifld/JYM8xCJzsFAS9PM="

#define PLUS "SCRAM-SHA-256-PLUS"
#define PLAIN "SCRAM-SHA-256"

static const uint8_t mock_secret[SCRAM_MOCK_SECRET_LEN] = "0123456789abcdef";

/* A stand-in for a SHA-256 certificate hash; both ends get the same. */
static const uint8_t fake_cb[32] = {
	0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, 0x01, 0x23, 0x45,
	0x67, 0x89, 0xab, 0xcd, 0xef, 0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5,
	0x96, 0x87, 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f,
};

static const uint8_t *u8(const char *s)
{
	return (const uint8_t *)s;
}

static const char *rc_text(int rc)
{
	return scram_server_error_text(rc);
}

static void expect_rc(int got, int want, const char *what)
{
	if (got != want)
		fail_msg("%s: expected %d (%s), got %d (%s)", what, want, rc_text(want), got,
			 rc_text(got));
}

/* ---- a whole exchange, message by message */

typedef struct exchange {
	char client_first[512];
	char server_first[2048];
	char client_final[1024];
	char server_final[128];
	size_t client_first_len, server_first_len, client_final_len, server_final_len;
	int server_rc; /* of the step that failed, or SCRAM_OK */
	int client_rc;
} exchange;

/*
 * Run c against s. Each message is checked on the way with the parser for
 * its production, so both sides' output is held to RFC 5802 as well as to
 * each other.
 */
static void run_exchange(scram_client *c, scram_server *s, const char *mechanism, exchange *x)
{
	memset(x, 0, sizeof *x);
	expect_rc(scram_client_first(c, x->client_first, sizeof x->client_first,
				     &x->client_first_len),
		  SCRAM_OK, "client-first");
	scram_client_first_msg cf;
	expect_rc(scram_parse_client_first(u8(x->client_first), x->client_first_len, &cf),
		  SCRAM_OK, "client-first parses");

	x->server_rc = scram_server_first(s, mechanism, u8(x->client_first), x->client_first_len,
					  x->server_first, sizeof x->server_first,
					  &x->server_first_len);
	if (x->server_rc != SCRAM_OK)
		return;
	assert_int_equal(strlen(x->server_first), x->server_first_len);
	scram_server_first_msg sf;
	expect_rc(scram_parse_server_first(u8(x->server_first), x->server_first_len, &sf),
		  SCRAM_OK, "server-first parses");
	/* r= is the client's nonce and 18 random bytes in base64, as PostgreSQL's. */
	assert_int_equal(sf.nonce.len, cf.nonce.len + 24);
	assert_memory_equal(sf.nonce.ptr, cf.nonce.ptr, cf.nonce.len);

	x->client_rc = scram_client_final(c, u8(x->server_first), x->server_first_len,
					  x->client_final, sizeof x->client_final,
					  &x->client_final_len);
	if (x->client_rc != SCRAM_OK)
		return;
	scram_client_final_msg ff;
	expect_rc(scram_parse_client_final(u8(x->client_final), x->client_final_len, &ff),
		  SCRAM_OK, "client-final parses");

	x->server_rc = scram_server_final(s, u8(x->client_final), x->client_final_len,
					  x->server_final, sizeof x->server_final,
					  &x->server_final_len);
	if (x->server_rc != SCRAM_OK)
		return;
	assert_int_equal(strlen(x->server_final), x->server_final_len);
	scram_server_final_msg sv;
	expect_rc(scram_parse_server_final(u8(x->server_final), x->server_final_len, &sv),
		  SCRAM_OK, "server-final parses");
	x->client_rc = scram_client_verify_final(c, u8(x->server_final), x->server_final_len);
}

static void client_with(scram_client *c, const char *password)
{
	expect_rc(scram_client_init(c, password, strlen(password)), SCRAM_OK, "client init");
}

static void server_with(scram_server *s, const char *verifier, const uint8_t *cb, size_t cb_len)
{
	expect_rc(scram_server_init(s, verifier, strlen(verifier), cb, cb_len), SCRAM_OK,
		  "server init");
}

static void expect_success(const exchange *x, const scram_client *c, const scram_server *s)
{
	expect_rc(x->server_rc, SCRAM_OK, "server");
	expect_rc(x->client_rc, SCRAM_OK, "client");
	assert_int_equal(c->state, SCRAM_CLIENT_DONE);
	assert_int_equal(s->state, SCRAM_SERVER_DONE);
}

static void expect_error(const scram_server *s, int status, const char *user,
			 const char *sqlstate, const char *message, const char *detail)
{
	scram_server_error e;
	scram_server_describe(s, status, user, user ? strlen(user) : 0, &e);
	assert_string_equal(e.sqlstate, sqlstate);
	assert_string_equal(e.message, message);
	assert_string_equal(e.detail, detail ? detail : "");
}

/* ---- exchanges */

static void test_exchange_plain(void **state)
{
	(void)state;
	scram_client c;
	scram_server s;
	exchange x;
	client_with(&c, PG15_PASSWORD_X);
	server_with(&s, PG15_VERIFIER_X, NULL, 0);
	size_t len;
	const char *mechs = scram_server_mechanisms(&s, &len);
	assert_int_equal(len, sizeof "SCRAM-SHA-256\0");
	assert_memory_equal(mechs, "SCRAM-SHA-256\0", len);

	run_exchange(&c, &s, PLAIN, &x);
	expect_success(&x, &c, &s);
	/* client-first as libpq sends it, salt and count from the verifier. */
	assert_memory_equal(x.client_first, "n,,n=,r=", 8);
	assert_non_null(strstr(x.server_first, ",s=osUc3kJdwBEfEptprbd3Dw==,i=4096"));
	assert_memory_equal(x.client_final, "c=biws,r=", 9);
	assert_int_equal(x.server_final_len, 2 + 44);

	/* Done is done. */
	expect_rc(scram_server_final(&s, u8(x.client_final), x.client_final_len, x.server_final,
				     sizeof x.server_final, &len),
		  SCRAM_ERR_STATE, "final twice");
	assert_int_equal(s.state, SCRAM_SERVER_FAILED);
}

/* Every server nonce is new, and as long as PostgreSQL's. */
static void test_server_nonce(void **state)
{
	(void)state;
	char first[2][256];
	size_t len[2];
	for (int i = 0; i < 2; i++) {
		scram_server s;
		server_with(&s, PG15_VERIFIER_X, NULL, 0);
		static const char cf[] = "n,,n=,r=abc";
		expect_rc(scram_server_first(&s, PLAIN, u8(cf), strlen(cf), first[i], sizeof first[i],
					     &len[i]),
			  SCRAM_OK, "first");
		assert_int_equal(len[i], strlen("r=abc") + 24 + strlen(",s=osUc3kJdwBEfEptprbd3Dw==,i=4096"));
	}
	assert_memory_not_equal(first[0], first[1], 5 + 24);
}

static void test_exchange_plus(void **state)
{
	(void)state;
	static const size_t lengths[] = {32, 48, 64, 1};
	for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
		uint8_t cb[64];
		for (size_t k = 0; k < sizeof cb; k++)
			cb[k] = (uint8_t)(k * 7 + i);
		scram_client c;
		scram_server s;
		exchange x;
		client_with(&c, PG15_PASSWORD_X);
		expect_rc(scram_client_set_channel_binding(&c, cb, lengths[i]), SCRAM_OK, "client cb");
		server_with(&s, PG15_VERIFIER_X, cb, lengths[i]);
		size_t len;
		const char *mechs = scram_server_mechanisms(&s, &len);
		assert_int_equal(len, sizeof "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0");
		assert_memory_equal(mechs, "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0", len);

		run_exchange(&c, &s, PLUS, &x);
		expect_success(&x, &c, &s);
		assert_memory_equal(x.client_first, "p=tls-server-end-point,,n=,r=", 29);
		/* c= is base64("p=tls-server-end-point,," + the data), exactly. */
		uint8_t input[24 + 64];
		char want[256];
		memcpy(input, "p=tls-server-end-point,,", 24);
		memcpy(input + 24, cb, lengths[i]);
		size_t want_len = scram_b64_encode(input, 24 + lengths[i], want);
		assert_memory_equal(x.client_final, "c=", 2);
		assert_memory_equal(x.client_final + 2, want, want_len);
		assert_int_equal(x.client_final[2 + want_len], ',');
	}
}

/* The client binds to another certificate than the server's: a man in
 * the middle with his own certificate. */
static void test_channel_binding_mismatch(void **state)
{
	(void)state;
	uint8_t other[32];
	memcpy(other, fake_cb, sizeof other);
	other[31] ^= 1;
	scram_client c;
	scram_server s;
	exchange x;
	client_with(&c, PG15_PASSWORD_X);
	expect_rc(scram_client_set_channel_binding(&c, other, sizeof other), SCRAM_OK, "cb");
	server_with(&s, PG15_VERIFIER_X, fake_cb, sizeof fake_cb);
	run_exchange(&c, &s, PLUS, &x);
	expect_rc(x.server_rc, SCRAM_SRV_CB_CHECK, "other certificate");
	expect_error(&s, x.server_rc, "x", "28000", "SCRAM channel binding check failed", NULL);

	/* Same data, shorter (a SHA-256 hash where SHA-384 was expected). */
	client_with(&c, PG15_PASSWORD_X);
	expect_rc(scram_client_set_channel_binding(&c, fake_cb, 31), SCRAM_OK, "cb");
	server_with(&s, PG15_VERIFIER_X, fake_cb, sizeof fake_cb);
	run_exchange(&c, &s, PLUS, &x);
	expect_rc(x.server_rc, SCRAM_SRV_CB_CHECK, "truncated");
}

/* RFC 7677's exchange, the server's half: the verifier made from the
 * RFC's password and salt, the RFC's server nonce. */
static void test_rfc7677_as_server(void **state)
{
	(void)state;
	uint8_t salt[16];
	size_t salt_len;
	expect_rc(scram_b64_decode(u8(RFC_SALT), strlen(RFC_SALT), salt, sizeof salt, &salt_len),
		  SCRAM_OK, "salt");
	char verifier[SCRAM_VERIFIER_MAX];
	size_t vlen;
	expect_rc(scram_verifier_build("pencil", 6, salt, salt_len, 4096, verifier, sizeof verifier,
				       &vlen),
		  SCRAM_OK, "verifier");
	scram_server s;
	server_with(&s, verifier, NULL, 0);
	expect_rc(scram_server_set_test_nonce(&s, RFC_SERVER_NONCE, strlen(RFC_SERVER_NONCE)),
		  SCRAM_OK, "nonce");
	char out[256];
	size_t len;
	expect_rc(scram_server_first(&s, PLAIN, u8(RFC_CLIENT_FIRST), strlen(RFC_CLIENT_FIRST), out,
				     sizeof out, &len),
		  SCRAM_OK, "first");
	assert_string_equal(out, RFC_SERVER_FIRST);
	expect_rc(scram_server_final(&s, u8(RFC_CLIENT_FINAL), strlen(RFC_CLIENT_FINAL), out,
				     sizeof out, &len),
		  SCRAM_OK, "final");
	assert_string_equal(out, RFC_SERVER_FINAL);
	assert_int_equal(len, strlen(RFC_SERVER_FINAL));
}

/* Verifiers PostgreSQL 15 made: rebuilt byte for byte from the password
 * and the stored salt, and logged in to with the password. */
static void test_postgres15_verifiers(void **state)
{
	(void)state;
	static const struct {
		const char *password, *verifier;
	} pg[] = {
		{PG15_PASSWORD_X, PG15_VERIFIER_X},
		{PG15_PASSWORD_Y, PG15_VERIFIER_Y},
	};
	for (size_t i = 0; i < sizeof pg / sizeof pg[0]; i++) {
		scram_verifier v;
		expect_rc(scram_verifier_parse(pg[i].verifier, strlen(pg[i].verifier), &v), SCRAM_OK,
			  "parse");
		assert_int_equal(v.iterations, 4096);
		assert_int_equal(v.salt_len, 16);
		char again[SCRAM_VERIFIER_MAX];
		size_t len;
		expect_rc(scram_verifier_build(pg[i].password, strlen(pg[i].password), v.salt,
					       v.salt_len, v.iterations, again, sizeof again, &len),
			  SCRAM_OK, "build");
		assert_string_equal(again, pg[i].verifier);
		assert_int_equal(scram_secret_type(pg[i].verifier, strlen(pg[i].verifier)),
				 SCRAM_SECRET_SCRAM);

		scram_client c;
		scram_server s;
		exchange x;
		client_with(&c, pg[i].password);
		server_with(&s, pg[i].verifier, NULL, 0);
		run_exchange(&c, &s, PLAIN, &x);
		expect_success(&x, &c, &s);
	}
}

static void test_wrong_password(void **state)
{
	(void)state;
	scram_client c;
	scram_server s;
	exchange x;
	client_with(&c, "pencil2");
	server_with(&s, PG15_VERIFIER_X, NULL, 0);
	run_exchange(&c, &s, PLAIN, &x);
	expect_rc(x.server_rc, SCRAM_SRV_AUTH_FAILED, "wrong password");
	assert_int_equal(s.state, SCRAM_SERVER_FAILED);
	expect_error(&s, x.server_rc, "alice", "28P01",
		     "password authentication failed for user \"alice\"", NULL);
	/* Nothing written, nothing kept. */
	assert_string_equal(x.server_final, "");
	static const uint8_t zero[SCRAM_KEY_LEN];
	assert_memory_equal(s.stored_key, zero, sizeof zero);
	assert_memory_equal(s.server_key, zero, sizeof zero);
	uint8_t ck[SCRAM_KEY_LEN], sk[SCRAM_KEY_LEN];
	expect_rc(scram_server_client_key(&s, ck, sk), SCRAM_ERR_STATE, "no keys");
}

/* ---- client-final built by hand, for what the client here never sends */

/* "c=...,r=<nonce>..." + ",p=<proof for it>" as a client with password
 * would sign it, after the exchange so far (bare, server-first). */
static size_t signed_final(const char *password, const char *bare, const char *server_first,
			   const char *without_proof, char *out, size_t cap)
{
	scram_server_first_msg sf;
	expect_rc(scram_parse_server_first(u8(server_first), strlen(server_first), &sf), SCRAM_OK,
		  "server-first");
	uint8_t salt[SCRAM_MAX_SALT], salted[32], ck[32], stk[32], svk[32], sig[32], proof[32];
	size_t salt_len;
	expect_rc(scram_b64_decode(sf.salt.ptr, sf.salt.len, salt, sizeof salt, &salt_len), SCRAM_OK,
		  "salt");
	expect_rc(scram_salted_password(password, strlen(password), salt, salt_len, sf.iterations,
					salted),
		  SCRAM_OK, "salted");
	expect_rc(scram_keys(salted, ck, stk, svk), SCRAM_OK, "keys");
	const scram_view parts[] = {
		{u8(bare), strlen(bare)},
		{u8(","), 1},
		{u8(server_first), strlen(server_first)},
		{u8(","), 1},
		{u8(without_proof), strlen(without_proof)},
	};
	expect_rc(scram_hmac_sha256(stk, 32, parts, 5, sig), SCRAM_OK, "hmac");
	for (int i = 0; i < 32; i++)
		proof[i] = ck[i] ^ sig[i];
	char b64[45];
	b64[scram_b64_encode(proof, 32, b64)] = '\0';
	int n = snprintf(out, cap, "%s,p=%s", without_proof, b64);
	assert_true(n > 0 && (size_t)n < cap);
	return (size_t)n;
}

/* A server for PG15_VERIFIER_X that has answered "<header>n=,r=cnonce". */
static void server_after_first(scram_server *s, const uint8_t *cb, size_t cb_len,
			       const char *mechanism, const char *header, char *server_first,
			       size_t cap)
{
	char cf[128];
	size_t len;
	snprintf(cf, sizeof cf, "%sn=,r=cnonce", header);
	server_with(s, PG15_VERIFIER_X, cb, cb_len);
	expect_rc(scram_server_set_test_nonce(s, "SNONCE", 6), SCRAM_OK, "test nonce");
	expect_rc(scram_server_first(s, mechanism, u8(cf), strlen(cf), server_first, cap, &len),
		  SCRAM_OK, "first");
	assert_string_equal(server_first, "r=cnonceSNONCE,s=osUc3kJdwBEfEptprbd3Dw==,i=4096");
}

static int final_of(scram_server *s, const char *msg, size_t len)
{
	char out[128];
	size_t out_len;
	return scram_server_final(s, u8(msg), len, out, sizeof out, &out_len);
}

/* The signed message goes through; each alteration of it does not. */
static void test_tampered_proof(void **state)
{
	(void)state;
	char sf[256], msg[256];
	scram_server s;
	size_t len;

	server_after_first(&s, NULL, 0, PLAIN, "n,,", sf, sizeof sf);
	len = signed_final(PG15_PASSWORD_X, "n=,r=cnonce", sf, "c=biws,r=cnonceSNONCE", msg,
			   sizeof msg);
	expect_rc(final_of(&s, msg, len), SCRAM_OK, "as signed");

	/* The top bit of each of the proof's 43 characters (all six bits of
	 * the first 42 are proof; of the 43rd, the top four). */
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = len - 44; i < len - 1; i++) {
		server_after_first(&s, NULL, 0, PLAIN, "n,,", sf, sizeof sf);
		char bad[256];
		memcpy(bad, msg, len + 1);
		bad[i] = b64[(strchr(b64, bad[i]) - b64) ^ 32];
		expect_rc(final_of(&s, bad, len), SCRAM_SRV_AUTH_FAILED, "proof bit");
	}
	/* The 43rd character's two low bits are padding: PostgreSQL's
	 * pg_b64_decode ignores them and so does this (the proof is the same
	 * 32 bytes, and the AuthMessage does not include it). */
	server_after_first(&s, NULL, 0, PLAIN, "n,,", sf, sizeof sf);
	char pad[256];
	memcpy(pad, msg, len + 1);
	pad[len - 2] = b64[(strchr(b64, pad[len - 2]) - b64) ^ 1];
	expect_rc(final_of(&s, pad, len), SCRAM_OK, "padding bits");
	/* The proof is bound to the whole message: an extension signed as
	 * part of it is fine, one added afterwards is not. */
	server_after_first(&s, NULL, 0, PLAIN, "n,,", sf, sizeof sf);
	len = signed_final(PG15_PASSWORD_X, "n=,r=cnonce", sf, "c=biws,r=cnonceSNONCE,x=1", msg,
			   sizeof msg);
	expect_rc(final_of(&s, msg, len), SCRAM_OK, "signed extension");
	server_after_first(&s, NULL, 0, PLAIN, "n,,", sf, sizeof sf);
	len = signed_final(PG15_PASSWORD_X, "n=,r=cnonce", sf, "c=biws,r=cnonceSNONCE", msg,
			   sizeof msg);
	char added[300];
	snprintf(added, sizeof added, "c=biws,r=cnonceSNONCE,x=1%s", msg + strlen("c=biws,r=cnonceSNONCE"));
	expect_rc(final_of(&s, added, strlen(added)), SCRAM_SRV_AUTH_FAILED, "added extension");
	/* The bare message is signed too: a proof made for another one. */
	server_after_first(&s, NULL, 0, PLAIN, "n,,", sf, sizeof sf);
	len = signed_final(PG15_PASSWORD_X, "n=bob,r=cnonce", sf, "c=biws,r=cnonceSNONCE", msg,
			   sizeof msg);
	expect_rc(final_of(&s, msg, len), SCRAM_SRV_AUTH_FAILED, "other bare");

	/* Proofs that are not 32 bytes, and not base64. */
	static const char *const proofs[] = {
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",	    /* 31 */
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", /* 34 */
		"AAAA",
	};
	for (size_t i = 0; i < sizeof proofs / sizeof proofs[0]; i++) {
		server_after_first(&s, NULL, 0, PLAIN, "n,,", sf, sizeof sf);
		snprintf(msg, sizeof msg, "c=biws,r=cnonceSNONCE,p=%s", proofs[i]);
		int rc = final_of(&s, msg, strlen(msg));
		expect_rc(rc, SCRAM_SRV_PROOF, proofs[i]);
		expect_error(&s, rc, "x", "08P01", "malformed SCRAM message",
			     "Malformed proof in client-final-message.");
	}
	server_after_first(&s, NULL, 0, PLAIN, "n,,", sf, sizeof sf);
	static const char not_b64[] = "c=biws,r=cnonceSNONCE,p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA*=";
	expect_rc(final_of(&s, not_b64, strlen(not_b64)), SCRAM_SRV_MALFORMED, "not base64");
}

static void test_wrong_nonce(void **state)
{
	(void)state;
	static const char *const nonces[] = {
		"cnonce",	       /* the client's only */
		"cnonceSNONCEX",       /* one more */
		"cnonceSNONC",	       /* one less */
		"cnonceSNONCF",	       /* another server part */
		"cnoncfSNONCE",	       /* another client part */
		"SNONCEcnonce",	       /* swapped */
		"xcnonceSNONCE",       /* shifted */
	};
	for (size_t i = 0; i < sizeof nonces / sizeof nonces[0]; i++) {
		char sf[256], wp[128], msg[256];
		scram_server s;
		server_after_first(&s, NULL, 0, PLAIN, "n,,", sf, sizeof sf);
		snprintf(wp, sizeof wp, "c=biws,r=%s", nonces[i]);
		size_t len = signed_final(PG15_PASSWORD_X, "n=,r=cnonce", sf, wp, msg, sizeof msg);
		int rc = final_of(&s, msg, len);
		expect_rc(rc, SCRAM_SRV_NONCE, nonces[i]);
		expect_error(&s, rc, "x", "08P01", "invalid SCRAM response", "Nonce does not match.");
	}

	/* A whole client-final recorded from one exchange, replayed into the
	 * next: the server nonce has changed under it. */
	scram_client c;
	scram_server s;
	exchange x;
	client_with(&c, PG15_PASSWORD_X);
	server_with(&s, PG15_VERIFIER_X, NULL, 0);
	run_exchange(&c, &s, PLAIN, &x);
	expect_success(&x, &c, &s);
	scram_server s2;
	server_with(&s2, PG15_VERIFIER_X, NULL, 0);
	char out[256];
	size_t len;
	expect_rc(scram_server_first(&s2, PLAIN, u8(x.client_first), x.client_first_len, out,
				     sizeof out, &len),
		  SCRAM_OK, "replayed first");
	expect_rc(final_of(&s2, x.client_final, x.client_final_len), SCRAM_SRV_NONCE,
		  "replayed final");
}

typedef struct bad_first {
	const char *mechanism;
	const char *msg;
	size_t len; /* 0: strlen */
	int rc;
	const char *detail; /* for SCRAM_SRV_MALFORMED: PostgreSQL's, or "" */
} bad_first;

static void check_bad_firsts(const bad_first *cases, size_t n, const uint8_t *cb, size_t cb_len)
{
	for (size_t i = 0; i < n; i++) {
		scram_server s;
		char out[256];
		size_t len;
		server_with(&s, PG15_VERIFIER_X, cb, cb_len);
		size_t mlen = cases[i].len ? cases[i].len : strlen(cases[i].msg);
		int rc = scram_server_first(&s, cases[i].mechanism, u8(cases[i].msg), mlen, out,
					    sizeof out, &len);
		if (rc != cases[i].rc)
			fail_msg("case %zu \"%s\" (%s): expected %d (%s), got %d (%s)", i,
				 cases[i].msg, cases[i].mechanism ? cases[i].mechanism : "NULL",
				 cases[i].rc, rc_text(cases[i].rc), rc, rc_text(rc));
		assert_int_equal(s.state, SCRAM_SERVER_FAILED);
		if (cases[i].detail) {
			scram_server_error e;
			scram_server_describe(&s, rc, "x", 1, &e);
			if (strcmp(e.detail, cases[i].detail) != 0)
				fail_msg("case %zu \"%s\": detail \"%s\", expected \"%s\"", i,
					 cases[i].msg, e.detail, cases[i].detail);
		}
	}
}

/* The gs2 header against the mechanism and what this server offers, as
 * PostgreSQL decides it. */
static void test_gs2_header(void **state)
{
	(void)state;
	/* Without TLS: -PLUS is not offered. */
	static const bad_first no_tls[] = {
		{PLUS, "n,,n=,r=abc", 0, SCRAM_SRV_MECHANISM, NULL},
		{PLUS, "p=tls-server-end-point,,n=,r=abc", 0, SCRAM_SRV_MECHANISM, NULL},
		{"SCRAM-SHA-1", "n,,n=,r=abc", 0, SCRAM_SRV_MECHANISM, NULL},
		{"scram-sha-256", "n,,n=,r=abc", 0, SCRAM_SRV_MECHANISM, NULL},
		{"", "n,,n=,r=abc", 0, SCRAM_SRV_MECHANISM, NULL},
		{NULL, "n,,n=,r=abc", 0, SCRAM_SRV_MECHANISM, NULL},
		{PLAIN, "p=tls-server-end-point,,n=,r=abc", 0, SCRAM_SRV_CB_UNEXPECTED,
		 "The client selected SCRAM-SHA-256 without channel binding, but the SCRAM "
		 "message includes channel binding data."},
	};
	check_bad_firsts(no_tls, sizeof no_tls / sizeof no_tls[0], NULL, 0);

	/* Over TLS: -PLUS is offered. */
	static const bad_first tls[] = {
		{PLUS, "n,,n=,r=abc", 0, SCRAM_SRV_CB_NOT_SENT,
		 "The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include "
		 "channel binding data."},
		{PLUS, "y,,n=,r=abc", 0, SCRAM_SRV_CB_NOT_SENT,
		 "The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include "
		 "channel binding data."},
		{PLAIN, "y,,n=,r=abc", 0, SCRAM_SRV_CB_NEGOTIATION,
		 "The client supports SCRAM channel binding but thinks the server does not.  "
		 "However, this server does support channel binding."},
		{PLAIN, "p=tls-server-end-point,,n=,r=abc", 0, SCRAM_SRV_CB_UNEXPECTED, NULL},
		{PLUS, "p=tls-unique,,n=,r=abc", 0, SCRAM_SRV_CB_TYPE, NULL},
		{PLUS, "p=tls-server-end-point-and-then-some-more,,n=,r=abc", 0, SCRAM_SRV_CB_TYPE,
		 NULL},
		{PLUS, "p,,n=,r=abc", 0, SCRAM_SRV_MALFORMED,
		 "Expected character \"=\" for attribute \"p\"."},
		{PLUS, "p=tls-server-end-point", 0, SCRAM_SRV_MALFORMED,
		 "Unexpected attribute \"0x00\" in client-first-message."},
	};
	check_bad_firsts(tls, sizeof tls / sizeof tls[0], fake_cb, sizeof fake_cb);

	scram_server s;
	char out[256];
	size_t len;
	server_with(&s, PG15_VERIFIER_X, fake_cb, sizeof fake_cb);
	static const char tls_unique[] = "p=tls-unique,,n=,r=abc";
	int rc = scram_server_first(&s, PLUS, u8(tls_unique), strlen(tls_unique), out, sizeof out,
				    &len);
	expect_error(&s, rc, "x", "08P01", "unsupported SCRAM channel-binding type \"tls-unique\"",
		     NULL);
	/* sanitize_str: 30 characters at most. */
	server_with(&s, PG15_VERIFIER_X, fake_cb, sizeof fake_cb);
	static const char long_type[] = "p=tls-server-end-point-and-then-some-more,,n=,r=abc";
	rc = scram_server_first(&s, PLUS, u8(long_type), strlen(long_type), out, sizeof out, &len);
	expect_error(&s, rc, "x", "08P01",
		     "unsupported SCRAM channel-binding type \"tls-server-end-point-and-then-\"",
		     NULL);
	server_with(&s, PG15_VERIFIER_X, fake_cb, sizeof fake_cb);
	static const char y_flag[] = "y,,n=,r=abc";
	rc = scram_server_first(&s, PLAIN, u8(y_flag), strlen(y_flag), out, sizeof out, &len);
	expect_error(&s, rc, "x", "28000", "SCRAM channel binding negotiation error",
		     "The client supports SCRAM channel binding but thinks the server does not.  "
		     "However, this server does support channel binding.");
	server_with(&s, PG15_VERIFIER_X, NULL, 0);
	rc = scram_server_first(&s, PLUS, u8(y_flag), strlen(y_flag), out, sizeof out, &len);
	expect_error(&s, rc, "x", "08P01",
		     "client selected an invalid SASL authentication mechanism", NULL);

	/* 'n' over TLS with the plain mechanism: the client chose not to
	 * bind, which PostgreSQL allows (libpq's channel_binding=disable). */
	scram_client c;
	exchange x;
	client_with(&c, PG15_PASSWORD_X);
	server_with(&s, PG15_VERIFIER_X, fake_cb, sizeof fake_cb);
	run_exchange(&c, &s, PLAIN, &x);
	expect_success(&x, &c, &s);
}

/* 'y' without TLS: the client could bind but thinks we cannot, and is
 * right; c= must then repeat "y,," ("eSws"), not "n,," and not -PLUS's. */
static void test_y_flag_without_tls(void **state)
{
	(void)state;
	char sf[256], msg[256];
	scram_server s;
	size_t len;
	server_after_first(&s, NULL, 0, PLAIN, "y,,", sf, sizeof sf);
	len = signed_final(PG15_PASSWORD_X, "n=,r=cnonce", sf, "c=eSws,r=cnonceSNONCE", msg,
			   sizeof msg);
	expect_rc(final_of(&s, msg, len), SCRAM_OK, "y and eSws");

	static const char *const wrong[] = {"c=biws", "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws", "c=eSwsAAAA"};
	for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
		char wp[128];
		server_after_first(&s, NULL, 0, PLAIN, "y,,", sf, sizeof sf);
		snprintf(wp, sizeof wp, "%s,r=cnonceSNONCE", wrong[i]);
		len = signed_final(PG15_PASSWORD_X, "n=,r=cnonce", sf, wp, msg, sizeof msg);
		int rc = final_of(&s, msg, len);
		expect_rc(rc, SCRAM_SRV_CB_ATTR, wrong[i]);
		expect_error(&s, rc, "x", "08P01",
			     "unexpected SCRAM channel-binding attribute in client-final-message",
			     NULL);
	}
	/* And "n,," then "eSws". */
	server_after_first(&s, NULL, 0, PLAIN, "n,,", sf, sizeof sf);
	len = signed_final(PG15_PASSWORD_X, "n=,r=cnonce", sf, "c=eSws,r=cnonceSNONCE", msg,
			   sizeof msg);
	expect_rc(final_of(&s, msg, len), SCRAM_SRV_CB_ATTR, "n then eSws");
	/* With -PLUS, "biws" is a failed binding check (28000), as in PostgreSQL. */
	server_after_first(&s, fake_cb, sizeof fake_cb, PLUS, "p=tls-server-end-point,,", sf,
			   sizeof sf);
	len = signed_final(PG15_PASSWORD_X, "n=,r=cnonce", sf, "c=biws,r=cnonceSNONCE", msg,
			   sizeof msg);
	expect_rc(final_of(&s, msg, len), SCRAM_SRV_CB_CHECK, "PLUS then biws");
}

/* Missing, repeated and misplaced attributes, and other broken messages. */
static void test_bad_client_first(void **state)
{
	(void)state;
	static const bad_first cases[] = {
		{PLAIN, "", 0, SCRAM_SRV_EMPTY, "The message is empty."},
		{PLAIN, "n,,n=,r=a\0bc", sizeof "n,,n=,r=a\0bc" - 1, SCRAM_SRV_NUL,
		 "Message length does not match input length."},
		{PLAIN, "n,,n=,r=abc\0", sizeof "n,,n=,r=abc", SCRAM_SRV_NUL, NULL},
		{PLAIN, "x,,n=,r=abc", 0, SCRAM_SRV_MALFORMED,
		 "Unexpected channel-binding flag \"'x'\"."},
		{PLAIN, ",,n=,r=abc", 0, SCRAM_SRV_MALFORMED,
		 "Unexpected channel-binding flag \"','\"."},
		{PLAIN, "\x01,,n=,r=abc", 0, SCRAM_SRV_MALFORMED,
		 "Unexpected channel-binding flag \"0x01\"."},
		{PLAIN, "n", 0, SCRAM_SRV_MALFORMED, "Comma expected, but found character \"0x00\"."},
		{PLAIN, "n;,n=,r=abc", 0, SCRAM_SRV_MALFORMED,
		 "Comma expected, but found character \"';'\"."},
		{PLAIN, "n,", 0, SCRAM_SRV_MALFORMED,
		 "Unexpected attribute \"0x00\" in client-first-message."},
		{PLAIN, "n,x,n=,r=abc", 0, SCRAM_SRV_MALFORMED,
		 "Unexpected attribute \"'x'\" in client-first-message."},
		{PLAIN, "n,a=bob,n=,r=abc", 0, SCRAM_SRV_AUTHZID, NULL},
		{PLAIN, "n,a=,n=,r=abc", 0, SCRAM_SRV_AUTHZID, NULL},
		{PLAIN, "n,,m=ext,n=,r=abc", 0, SCRAM_SRV_EXTENSION, NULL},
		{PLAIN, "n,,", 0, SCRAM_SRV_MALFORMED, "Expected attribute \"n\" but found \"0x00\"."},
		{PLAIN, "n,,r=abc", 0, SCRAM_SRV_MALFORMED,
		 "Expected attribute \"n\" but found \"'r'\"."},
		{PLAIN, "n,,n", 0, SCRAM_SRV_MALFORMED, "Expected character \"=\" for attribute \"n\"."},
		{PLAIN, "n,,n=", 0, SCRAM_SRV_MALFORMED,
		 "Expected attribute \"r\" but found \"0x00\"."},
		{PLAIN, "n,,n=,n=,r=abc", 0, SCRAM_SRV_MALFORMED,
		 "Expected attribute \"r\" but found \"'n'\"."},
		{PLAIN, "n,,n=,x=1,r=abc", 0, SCRAM_SRV_MALFORMED,
		 "Expected attribute \"r\" but found \"'x'\"."},
		{PLAIN, "n,,n=,r=a c", 0, SCRAM_SRV_NONPRINTABLE, NULL},
		{PLAIN, "n,,n=,r=ab\x7f", 0, SCRAM_SRV_NONPRINTABLE, NULL},
		{PLAIN, "n,,n=,r=ab\xc3\xa9", 0, SCRAM_SRV_NONPRINTABLE, NULL},
		/* Past what PostgreSQL's reader checks, the RFC grammar: */
		{PLAIN, "n,,n=,r=", 0, SCRAM_SRV_MALFORMED, ""},	/* PostgreSQL takes it */
		{PLAIN, "n,,n=,r=abc,", 0, SCRAM_SRV_MALFORMED, ""},
		{PLAIN, "n,,n=,r=abc,r=def", 0, SCRAM_SRV_MALFORMED, ""}, /* r= twice */
		{PLAIN, "n,,n=,r=abc,n=x", 0, SCRAM_SRV_MALFORMED, ""},
		{PLAIN, "n,,n=,r=abc,p=x", 0, SCRAM_SRV_MALFORMED, ""},
		{PLAIN, "n,,n=,r=abc,xx=1", 0, SCRAM_SRV_MALFORMED, ""},
		{PLAIN, "n,,n=,r=abc,x=", 0, SCRAM_SRV_MALFORMED, ""},
		{PLAIN, "n,,n=a=2Xb,r=abc", 0, SCRAM_SRV_MALFORMED, ""}, /* bad escape */
		{PLAIN, "n,,n=\xff,r=abc", 0, SCRAM_SRV_MALFORMED, ""},	/* not UTF-8 */
	};
	check_bad_firsts(cases, sizeof cases / sizeof cases[0], NULL, 0);

	expect_error(NULL, SCRAM_SRV_AUTHZID, "x", "0A000",
		     "client uses authorization identity, but it is not supported", NULL);
	expect_error(NULL, SCRAM_SRV_EXTENSION, "x", "0A000",
		     "client requires an unsupported SCRAM extension", NULL);
	expect_error(NULL, SCRAM_SRV_NONPRINTABLE, "x", "08P01",
		     "non-printable characters in SCRAM nonce", NULL);

	/* Extensions after the nonce are ignored, as PostgreSQL does; a user
	 * name in n= too (the startup packet's counts). */
	static const char *const good[] = {
		"n,,n=,r=abc,x=1",
		"n,,n=,r=abc,x=1,y=a=b",
		"n,,n=someone,r=abc",
		"n,,n=a=2Cb=3D,r=abc",
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		scram_server s;
		char out[256];
		size_t len;
		server_with(&s, PG15_VERIFIER_X, NULL, 0);
		expect_rc(scram_server_first(&s, PLAIN, u8(good[i]), strlen(good[i]), out, sizeof out,
					     &len),
			  SCRAM_OK, good[i]);
	}

	/* Longer than scram_server keeps. */
	char big[SCRAM_SERVER_MAX_BARE + 64];
	int n = snprintf(big, sizeof big, "n,,n=,r=abc,x=");
	memset(big + n, 'a', sizeof big - (size_t)n - 1);
	big[sizeof big - 1] = '\0';
	scram_server s;
	char out[256];
	size_t len;
	server_with(&s, PG15_VERIFIER_X, NULL, 0);
	expect_rc(scram_server_first(&s, PLAIN, u8(big), strlen(big), out, sizeof out, &len),
		  SCRAM_SRV_TOO_LONG, "too long");
}

static void test_bad_client_final(void **state)
{
	(void)state;
	static const struct {
		const char *msg;
		size_t len;
		int rc;
		const char *detail;
	} cases[] = {
		{"", 0, SCRAM_SRV_EMPTY, "The message is empty."},
		{"c=biws\0", sizeof "c=biws", SCRAM_SRV_NUL, "Message length does not match input length."},
		{"r=cnonceSNONCE,p=AAAA", 0, SCRAM_SRV_MALFORMED,
		 "Expected attribute \"c\" but found \"'r'\"."},
		{"c", 0, SCRAM_SRV_MALFORMED, "Expected character \"=\" for attribute \"c\"."},
		{"c=biws", 0, SCRAM_SRV_MALFORMED, "Expected attribute \"r\" but found \"0x00\"."},
		{"c=biws,p=AAAA", 0, SCRAM_SRV_MALFORMED, "Expected attribute \"r\" but found \"'p'\"."},
		{"c=biws,c=biws,r=cnonceSNONCE,p=AAAA", 0, SCRAM_SRV_MALFORMED,
		 "Expected attribute \"r\" but found \"'c'\"."},
		{"c=biws,r=cnonceSNONCE", 0, SCRAM_SRV_MALFORMED, ""}, /* no proof */
		{"c=biws,r=cnonceSNONCE,p=", 0, SCRAM_SRV_MALFORMED, ""},
		{"c=biws,r=cnonceSNONCE,r=cnonceSNONCE,p=AAAA", 0, SCRAM_SRV_MALFORMED, ""},
		{"c=biws,r=cnonceSNONCE,p=AAAA,p=AAAA", 0, SCRAM_SRV_MALFORMED, ""},
		{"c=biws,r=cnonceSNONCE,p=AAAA,x=1", 0, SCRAM_SRV_MALFORMED, ""}, /* after the proof */
		{"c=biws,r=cnonceSNONCE,p=AAAA,", 0, SCRAM_SRV_MALFORMED, ""},
		{"c=biws,r=cnonceSNONCE,p=AAAA ", 0, SCRAM_SRV_MALFORMED, ""},
		{"c=cnonceSNONCE,r=biws,p=AAAA", 0, SCRAM_SRV_CB_ATTR, NULL},
		{"c=,r=cnonceSNONCE,p=AAAA", 0, SCRAM_SRV_CB_ATTR, NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char sf[256];
		scram_server s;
		server_after_first(&s, NULL, 0, PLAIN, "n,,", sf, sizeof sf);
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].msg);
		int rc = final_of(&s, cases[i].msg, len);
		if (rc != cases[i].rc)
			fail_msg("case %zu \"%s\": expected %d (%s), got %d (%s)", i, cases[i].msg,
				 cases[i].rc, rc_text(cases[i].rc), rc, rc_text(rc));
		assert_int_equal(s.state, SCRAM_SERVER_FAILED);
		if (cases[i].detail)
			expect_error(&s, rc, "x", "08P01", "malformed SCRAM message", cases[i].detail);
	}
}

/* ---- verifiers */

#define SALT_X "osUc3kJdwBEfEptprbd3Dw=="
#define KEYS_X                                                                             \
	"fugqqo/fuF28Kh9ERWwwGpRgi4d5aiKFsTaTujEk7O8=:94IoX75PhS0E+MaldzwAqqKRZXxhwmK4WaZvJlmlH6E="

static void test_verifier_parse(void **state)
{
	(void)state;
	scram_verifier v;
	expect_rc(scram_verifier_parse(PG15_VERIFIER_X, strlen(PG15_VERIFIER_X), &v), SCRAM_OK,
		  "PG15");
	assert_int_equal(v.iterations, 4096);
	assert_string_equal(v.salt_b64, SALT_X);
	assert_int_equal(v.salt_b64_len, 24);
	static const uint8_t stored_head[] = {0x7e, 0xe8, 0x2a, 0xaa}; /* "fugqqo/f" */
	assert_memory_equal(v.stored_key, stored_head, 4);

	static const struct {
		const char *secret;
		int32_t iterations;
	} good[] = {
		{"SCRAM-SHA-256$1:" SALT_X "$" KEYS_X, 1},
		{"SCRAM-SHA-256$2147483647:" SALT_X "$" KEYS_X, INT32_MAX}, /* no cap: ours */
		{"SCRAM-SHA-256$600000:AA==$" KEYS_X, 600000},		     /* a 1-byte salt */
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		expect_rc(scram_verifier_parse(good[i].secret, strlen(good[i].secret), &v), SCRAM_OK,
			  good[i].secret);
		assert_int_equal(v.iterations, good[i].iterations);
	}
	assert_int_equal(v.salt_len, 1);

	/* Salts of SCRAM_MAX_SALT bytes, and one more. */
	for (size_t salt_len = SCRAM_MAX_SALT; salt_len <= SCRAM_MAX_SALT + 1; salt_len++) {
		uint8_t salt[SCRAM_MAX_SALT + 1];
		memset(salt, 0x5a, sizeof salt);
		char secret[SCRAM_VERIFIER_MAX + 8];
		size_t o = (size_t)snprintf(secret, sizeof secret, "SCRAM-SHA-256$4096:");
		o += scram_b64_encode(salt, salt_len, secret + o);
		snprintf(secret + o, sizeof secret - o, "$%s", KEYS_X);
		int want = salt_len <= SCRAM_MAX_SALT ? SCRAM_OK : SCRAM_ERR_SYNTAX;
		expect_rc(scram_verifier_parse(secret, strlen(secret), &v), want, "salt length");
		if (want == SCRAM_OK) {
			assert_int_equal(v.salt_len, SCRAM_MAX_SALT);
			assert_true(strlen(secret) < SCRAM_VERIFIER_MAX);
		}
	}

	static const char *const bad[] = {
		"",
		"SCRAM-SHA-256$",
		"SCRAM-SHA-256",
		"scram-sha-256$4096:" SALT_X "$" KEYS_X,
		"SCRAM-SHA-1$4096:" SALT_X "$" KEYS_X,
		"SCRAM-SHA-256$4096:" SALT_X "$" KEYS_X " ",  /* trailing garbage */
		"SCRAM-SHA-256$4096:" SALT_X "$" KEYS_X "\n",
		"SCRAM-SHA-256$4096:" SALT_X "$" KEYS_X ":",
		"SCRAM-SHA-256$4096:" SALT_X "$" KEYS_X "AAAA",
		" SCRAM-SHA-256$4096:" SALT_X "$" KEYS_X,
		/* iterations */
		"SCRAM-SHA-256$0:" SALT_X "$" KEYS_X,
		"SCRAM-SHA-256$-1:" SALT_X "$" KEYS_X,
		"SCRAM-SHA-256$+4096:" SALT_X "$" KEYS_X,
		"SCRAM-SHA-256$04096:" SALT_X "$" KEYS_X,
		"SCRAM-SHA-256$2147483648:" SALT_X "$" KEYS_X,
		"SCRAM-SHA-256$4294967296:" SALT_X "$" KEYS_X,
		"SCRAM-SHA-256$99999999999:" SALT_X "$" KEYS_X,
		"SCRAM-SHA-256$:" SALT_X "$" KEYS_X,
		"SCRAM-SHA-256$4096" SALT_X "$" KEYS_X,
		"SCRAM-SHA-256$4 096:" SALT_X "$" KEYS_X,
		/* salts */
		"SCRAM-SHA-256$4096:$" KEYS_X,
		"SCRAM-SHA-256$4096:osUc3kJdwBEfEptprbd3Dw=$" KEYS_X,
		"SCRAM-SHA-256$4096:osUc3kJdwBEfEptprbd3Dw$" KEYS_X,
		"SCRAM-SHA-256$4096:osUc3kJdwBEfEpt*rbd3Dw==$" KEYS_X,
		"SCRAM-SHA-256$4096:osUc3kJdwBEfEptprbd3Dx==$" KEYS_X, /* not canonical */
		"SCRAM-SHA-256$4096:" SALT_X KEYS_X,
		/* keys */
		"SCRAM-SHA-256$4096:" SALT_X "$fugqqo/fuF28Kh9ERWwwGpRgi4d5aiKFsTaTujEk7O8=",
		"SCRAM-SHA-256$4096:" SALT_X "$fugqqo/fuF28Kh9ERWwwGpRgi4d5aiKFsTaTujEk7O8=:",
		"SCRAM-SHA-256$4096:" SALT_X "$:94IoX75PhS0E+MaldzwAqqKRZXxhwmK4WaZvJlmlH6E=",
		"SCRAM-SHA-256$4096:" SALT_X
		"$fugqqo/fuF28Kh9ERWwwGpRgi4d5aiKFsTaTujEk7O=:94IoX75PhS0E+MaldzwAqqKRZXxhwmK4WaZvJlmlH6E=",
		"SCRAM-SHA-256$4096:" SALT_X
		"$fugqqo/fuF28Kh9ERWwwGpRgi4d5aiKFsTaTujEk7O8=:94IoX75PhS0E+MaldzwAqqKRZXxhwmK4WaZvJlmlH6EA",
		"SCRAM-SHA-256$4096:" SALT_X
		"$fugqqo/fuF28Kh9ERWwwGpRgi4d5aiKFsTaTujEk7O8=:94IoX75PhS0E+MaldzwAqqKRZXxhwmK4WaZvJlmlH6E",
		"SCRAM-SHA-256$4096:" SALT_X /* 31 and 33 bytes */
		"$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==:94IoX75PhS0E+MaldzwAqqKRZXxhwmK4WaZvJlmlH6E=",
		"SCRAM-SHA-256$4096:" SALT_X
		"$fugqqo/fuF28Kh9ERWwwGpRgi4d5aiKFsTaTujEk7O8=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"SCRAM-SHA-256$4096:" SALT_X /* bad base64 */
		"$fugqqo/fuF28Kh9ERWwwGpRgi4d5aiKFsTaTujEk7O8=:94IoX75PhS0E-MaldzwAqqKRZXxhwmK4WaZvJlmlH6E=",
		"SCRAM-SHA-256$4096:" SALT_X /* not canonical: last char's low bits */
		"$fugqqo/fuF28Kh9ERWwwGpRgi4d5aiKFsTaTujEk7O9=:94IoX75PhS0E+MaldzwAqqKRZXxhwmK4WaZvJlmlH6E=",
		"SCRAM-SHA-256$4096:" SALT_X
		"$fugqqo/fuF28Kh9ERWwwGpRgi4d5aiKFsTaTujEk7O8=$94IoX75PhS0E+MaldzwAqqKRZXxhwmK4WaZvJlmlH6E=",
		"md5c0b0fb9b45d8a54d4a6cb1e6ea7d1bd4",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = scram_verifier_parse(bad[i], strlen(bad[i]), &v);
		if (rc != SCRAM_ERR_SYNTAX)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_int_equal(v.iterations, 0);
		assert_int_equal(v.salt_b64_len, 0);
	}
	/* A NUL inside, and a length that cuts it short. */
	static const char with_nul[] = "SCRAM-SHA-256$4096:" SALT_X "$" KEYS_X "\0";
	expect_rc(scram_verifier_parse(with_nul, sizeof with_nul - 1, &v), SCRAM_ERR_SYNTAX, "NUL");
	expect_rc(scram_verifier_parse(PG15_VERIFIER_X, strlen(PG15_VERIFIER_X) - 1, &v),
		  SCRAM_ERR_SYNTAX, "short");
	expect_rc(scram_verifier_parse(NULL, 0, &v), SCRAM_ERR_SYNTAX, "NULL");

	/* A server will not start on any of them. */
	scram_server s;
	expect_rc(scram_server_init(&s, bad[5], strlen(bad[5]), NULL, 0), SCRAM_SRV_NOT_SCRAM,
		  "init on bad");
	assert_int_equal(s.state, SCRAM_SERVER_FAILED);
}

static void test_secret_type(void **state)
{
	(void)state;
	static const struct {
		const char *secret;
		scram_secret_kind kind;
	} cases[] = {
		{PG15_VERIFIER_X, SCRAM_SECRET_SCRAM},
		{"md5c0b0fb9b45d8a54d4a6cb1e6ea7d1bd4", SCRAM_SECRET_MD5},
		{"md500000000000000000000000000000000", SCRAM_SECRET_MD5},
		{"md5C0B0FB9B45D8A54D4A6CB1E6EA7D1BD4", SCRAM_SECRET_PLAINTEXT}, /* upper case */
		{"md5c0b0fb9b45d8a54d4a6cb1e6ea7d1bd", SCRAM_SECRET_PLAINTEXT},	 /* 31 */
		{"md5c0b0fb9b45d8a54d4a6cb1e6ea7d1bd44", SCRAM_SECRET_PLAINTEXT}, /* 33 */
		{"md5c0b0fb9b45d8a54d4a6cb1e6ea7d1bdg", SCRAM_SECRET_PLAINTEXT},
		{"pencil", SCRAM_SECRET_PLAINTEXT},
		{"", SCRAM_SECRET_PLAINTEXT},
		{"SCRAM-SHA-256$4096:" SALT_X "$" KEYS_X "x", SCRAM_SECRET_BAD_SCRAM},
		{"SCRAM-SHA-256$", SCRAM_SECRET_BAD_SCRAM},
		{"SCRAM-SHA-256", SCRAM_SECRET_PLAINTEXT},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (scram_secret_type(cases[i].secret, strlen(cases[i].secret)) != cases[i].kind)
			fail_msg("\"%s\": expected kind %d", cases[i].secret, (int)cases[i].kind);
	static const char md5_nul[] = "md5c0b0fb9b45d8a54d4a6cb1e6ea7d1b\0d";
	assert_int_equal(scram_secret_type(md5_nul, sizeof md5_nul - 1), SCRAM_SECRET_PLAINTEXT);
}

static void test_verifier_build(void **state)
{
	(void)state;
	char a[SCRAM_VERIFIER_MAX], b[SCRAM_VERIFIER_MAX];
	size_t alen, blen;
	expect_rc(scram_verifier_from_password("pencil", 6, a, sizeof a, &alen), SCRAM_OK, "a");
	expect_rc(scram_verifier_from_password("pencil", 6, b, sizeof b, &blen), SCRAM_OK, "b");
	assert_int_equal(alen, strlen(a));
	/* PostgreSQL's shape: 16-byte salt, 4096 iterations; a new salt each time. */
	assert_int_equal(alen, strlen(PG15_VERIFIER_X));
	assert_string_not_equal(a, b);
	scram_verifier v;
	expect_rc(scram_verifier_parse(a, alen, &v), SCRAM_OK, "parses");
	assert_int_equal(v.iterations, 4096);
	assert_int_equal(v.salt_len, 16);

	/* It logs in, with the password as typed (SASLprep'd the same way on
	 * both sides) and not with another. */
	scram_client c;
	scram_server s;
	exchange x;
	client_with(&c, "pencil");
	server_with(&s, a, NULL, 0);
	run_exchange(&c, &s, PLAIN, &x);
	expect_success(&x, &c, &s);
	/* U+00A0 (no-break space) maps to a space under SASLprep. */
	expect_rc(scram_verifier_from_password("a\xc2\xa0" "b", 4, a, sizeof a, &alen), SCRAM_OK,
		  "nbsp");
	client_with(&c, "a b");
	server_with(&s, a, NULL, 0);
	run_exchange(&c, &s, PLAIN, &x);
	expect_success(&x, &c, &s);

	/* Arguments */
	static const uint8_t salt[16];
	expect_rc(scram_verifier_build("a\0b", 3, salt, 16, 4096, a, sizeof a, &alen),
		  SCRAM_ERR_PASSWORD, "NUL");
	expect_rc(scram_verifier_build("a", 1, salt, 0, 4096, a, sizeof a, &alen), SCRAM_ERR_ARG,
		  "no salt");
	expect_rc(scram_verifier_build("a", 1, salt, 16, 0, a, sizeof a, &alen), SCRAM_ERR_ARG,
		  "no iterations");
	expect_rc(scram_verifier_build("a", 1, salt, 16, 1, a, strlen(PG15_VERIFIER_X) - 4 + 1,
				       &alen),
		  SCRAM_ERR_SPACE, "one short");
	expect_rc(scram_verifier_build("a", 1, salt, 16, 1, a, strlen(PG15_VERIFIER_X) - 3 + 1,
				       &alen),
		  SCRAM_OK, "exact");
	assert_memory_equal(a, "SCRAM-SHA-256$1:AAAAAAAAAAAAAAAAAAAAAA==$", 41);
}

/* ---- mock exchanges */

static void test_mock_exchange(void **state)
{
	(void)state;
	/* An md5 secret or none: the server will not run a real exchange. */
	scram_server s;
	static const char md5[] = "md5c0b0fb9b45d8a54d4a6cb1e6ea7d1bd4";
	expect_rc(scram_server_init(&s, md5, strlen(md5), NULL, 0), SCRAM_SRV_NOT_SCRAM, "md5");

	/* The mock runs to the end, then fails as a wrong password does. */
	scram_client c;
	exchange x, real;
	client_with(&c, "whatever");
	expect_rc(scram_server_init_mock(&s, "ghost", 5, mock_secret, NULL, 0), SCRAM_OK, "mock");
	run_exchange(&c, &s, PLAIN, &x);
	expect_rc(x.client_rc, SCRAM_OK, "client goes on");
	expect_rc(x.server_rc, SCRAM_SRV_AUTH_FAILED, "mock fails at the end");
	expect_error(&s, x.server_rc, "ghost", "28P01",
		     "password authentication failed for user \"ghost\"", NULL);

	/* Even with a proof that fits the mock salt: the mock has no key. */
	scram_server_first_msg sf;
	expect_rc(scram_parse_server_first(u8(x.server_first), x.server_first_len, &sf), SCRAM_OK,
		  "parse");
	assert_int_equal(sf.salt.len, 24); /* 16 bytes, like PostgreSQL's */
	assert_int_equal(sf.iterations, 4096);

	/* Its server-first looks like a real one. */
	client_with(&c, PG15_PASSWORD_X);
	server_with(&s, PG15_VERIFIER_X, NULL, 0);
	run_exchange(&c, &s, PLAIN, &real);
	expect_success(&real, &c, &s);
	assert_int_equal(real.server_first_len, x.server_first_len);
	assert_int_equal(real.client_final_len, x.client_final_len);

	/* The same salt for the same user each time; another for another
	 * user or another secret. */
	char salts[4][64];
	static const struct {
		const char *user;
		const uint8_t *secret;
	} who[] = {
		{"ghost", mock_secret},
		{"ghost", mock_secret},
		{"ghost2", mock_secret},
		{"ghost", (const uint8_t *)"fedcba9876543210"},
	};
	for (int i = 0; i < 4; i++) {
		char out[256];
		size_t len;
		static const char cf[] = "n,,n=,r=abc";
		expect_rc(scram_server_init_mock(&s, who[i].user, strlen(who[i].user), who[i].secret,
						 NULL, 0),
			  SCRAM_OK, "mock");
		expect_rc(scram_server_first(&s, PLAIN, u8(cf), strlen(cf), out, sizeof out, &len),
			  SCRAM_OK, "first");
		const char *salt = strstr(out, ",s=");
		assert_non_null(salt);
		snprintf(salts[i], sizeof salts[i], "%s", salt);
	}
	assert_string_equal(salts[0], salts[1]);
	assert_string_not_equal(salts[0], salts[2]);
	assert_string_not_equal(salts[0], salts[3]);

	/* The mock checks channel binding exactly like the real thing. */
	client_with(&c, "whatever");
	expect_rc(scram_client_set_channel_binding(&c, fake_cb, sizeof fake_cb), SCRAM_OK, "cb");
	expect_rc(scram_server_init_mock(&s, "ghost", 5, mock_secret, fake_cb, sizeof fake_cb),
		  SCRAM_OK, "mock plus");
	size_t len;
	const char *mechs = scram_server_mechanisms(&s, &len);
	assert_memory_equal(mechs, "SCRAM-SHA-256-PLUS\0", 19);
	run_exchange(&c, &s, PLUS, &x);
	expect_rc(x.server_rc, SCRAM_SRV_AUTH_FAILED, "mock plus fails at the end");
	expect_rc(scram_server_init_mock(&s, "ghost", 5, mock_secret, fake_cb, sizeof fake_cb),
		  SCRAM_OK, "mock plus");
	static const char y_flag[] = "y,,n=,r=abc";
	char out[256];
	expect_rc(scram_server_first(&s, PLAIN, u8(y_flag), strlen(y_flag), out, sizeof out, &len),
		  SCRAM_SRV_CB_NEGOTIATION, "mock y");

	expect_rc(scram_server_init_mock(&s, NULL, 3, mock_secret, NULL, 0), SCRAM_ERR_ARG, "args");
	expect_rc(scram_server_init_mock(&s, "a", 1, NULL, NULL, 0), SCRAM_ERR_ARG, "args");
}

/* ---- SCRAM pass-through */

/* The gateway authenticates the client, then logs in to PostgreSQL (here
 * another scram_server with the same verifier) with the keys it got. */
static void test_pass_through(void **state)
{
	(void)state;
	static const struct {
		const char *password, *verifier;
	} users[] = {
		{PG15_PASSWORD_X, PG15_VERIFIER_X},
		{PG15_PASSWORD_Y, PG15_VERIFIER_Y},
	};
	for (size_t i = 0; i < sizeof users / sizeof users[0]; i++) {
		scram_client c;
		scram_server gateway;
		exchange x;
		client_with(&c, users[i].password);
		server_with(&gateway, users[i].verifier, fake_cb, sizeof fake_cb);
		expect_rc(scram_client_set_channel_binding(&c, fake_cb, sizeof fake_cb), SCRAM_OK,
			  "cb");
		run_exchange(&c, &gateway, PLUS, &x);
		expect_success(&x, &c, &gateway);
		uint8_t ck[SCRAM_KEY_LEN], sk[SCRAM_KEY_LEN];
		expect_rc(scram_server_client_key(&gateway, ck, sk), SCRAM_OK, "keys");

		/* The keys are the password's. */
		scram_verifier v;
		uint8_t salted[32], want_ck[32], want_stored[32], want_sk[32];
		expect_rc(scram_verifier_parse(users[i].verifier, strlen(users[i].verifier), &v),
			  SCRAM_OK, "parse");
		char prepared[64];
		size_t plen;
		scram_saslprep(users[i].password, strlen(users[i].password), prepared, &plen);
		expect_rc(scram_salted_password(prepared, plen, v.salt, v.salt_len, v.iterations,
						salted),
			  SCRAM_OK, "salted");
		expect_rc(scram_keys(salted, want_ck, want_stored, want_sk), SCRAM_OK, "keys");
		assert_memory_equal(ck, want_ck, 32);
		assert_memory_equal(sk, want_sk, 32);

		/* Gateway to server, plain and over TLS with -PLUS. */
		for (int plus = 0; plus < 2; plus++) {
			scram_client upstream;
			scram_server backend;
			expect_rc(scram_client_init_keys(&upstream, ck, sk), SCRAM_OK, "init keys");
			if (plus) {
				expect_rc(scram_client_set_channel_binding(&upstream, fake_cb, 20),
					  SCRAM_OK, "cb");
				server_with(&backend, users[i].verifier, fake_cb, 20);
			} else {
				server_with(&backend, users[i].verifier, NULL, 0);
			}
			run_exchange(&upstream, &backend, plus ? PLUS : PLAIN, &x);
			expect_success(&x, &upstream, &backend);
			/* No key material left in the client. */
			static const uint8_t zero[32];
			assert_memory_equal(upstream.client_key, zero, 32);
			assert_memory_equal(upstream.server_key, zero, 32);
		}
	}

	/* Another verifier upstream (the password was changed there): the
	 * server refuses the proof, and the client would refuse its v= too. */
	scram_client c;
	scram_server gateway, backend;
	exchange x;
	client_with(&c, PG15_PASSWORD_X);
	server_with(&gateway, PG15_VERIFIER_X, NULL, 0);
	run_exchange(&c, &gateway, PLAIN, &x);
	expect_success(&x, &c, &gateway);
	uint8_t ck[32], sk[32];
	expect_rc(scram_server_client_key(&gateway, ck, sk), SCRAM_OK, "keys");
	scram_client upstream;
	expect_rc(scram_client_init_keys(&upstream, ck, sk), SCRAM_OK, "init keys");
	server_with(&backend, PG15_VERIFIER_Y, NULL, 0);
	run_exchange(&upstream, &backend, PLAIN, &x);
	expect_rc(x.server_rc, SCRAM_SRV_AUTH_FAILED, "other verifier");

	/* The same password with another salt is another verifier too. */
	char other[SCRAM_VERIFIER_MAX];
	size_t olen;
	expect_rc(scram_verifier_from_password(PG15_PASSWORD_X, 6, other, sizeof other, &olen),
		  SCRAM_OK, "other salt");
	expect_rc(scram_client_init_keys(&upstream, ck, sk), SCRAM_OK, "init keys");
	server_with(&backend, other, NULL, 0);
	run_exchange(&upstream, &backend, PLAIN, &x);
	expect_rc(x.server_rc, SCRAM_SRV_AUTH_FAILED, "other salt");

	/* With keys the count is not used, so the client's cap does not
	 * apply: a verifier with INT32_MAX iterations (and x's keys). */
	static const char huge[] = "SCRAM-SHA-256$2147483647:" SALT_X "$" KEYS_X;
	expect_rc(scram_client_init_keys(&upstream, ck, sk), SCRAM_OK, "init keys");
	server_with(&backend, huge, NULL, 0);
	run_exchange(&upstream, &backend, PLAIN, &x);
	expect_success(&x, &upstream, &backend);
	/* A password client still refuses that count. */
	client_with(&c, PG15_PASSWORD_X);
	server_with(&backend, huge, NULL, 0);
	run_exchange(&c, &backend, PLAIN, &x);
	expect_rc(x.client_rc, SCRAM_ERR_ITERATIONS, "password client");

	/* A keys client still checks the server's v=. */
	expect_rc(scram_client_init_keys(&upstream, ck, sk), SCRAM_OK, "init keys");
	char first[128], final[256];
	size_t len;
	expect_rc(scram_client_first(&upstream, first, sizeof first, &len), SCRAM_OK, "first");
	char sf[256];
	snprintf(sf, sizeof sf, "%sXYZ,s=AAAA,i=1", strstr(first, "r="));
	expect_rc(scram_client_final(&upstream, u8(sf), strlen(sf), final, sizeof final, &len),
		  SCRAM_OK, "final");
	static const char bad_v[] = "v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
	expect_rc(scram_client_verify_final(&upstream, u8(bad_v), strlen(bad_v)), SCRAM_ERR_VERIFY,
		  "bad v");
	/* ... and the salt it is sent must still be base64. */
	expect_rc(scram_client_init_keys(&upstream, ck, sk), SCRAM_OK, "init keys");
	expect_rc(scram_client_first(&upstream, first, sizeof first, &len), SCRAM_OK, "first");
	snprintf(sf, sizeof sf, "%sXYZ,s=AAA,i=1", strstr(first, "r="));
	expect_rc(scram_client_final(&upstream, u8(sf), strlen(sf), final, sizeof final, &len),
		  SCRAM_ERR_SYNTAX, "bad salt");

	expect_rc(scram_client_init_keys(&upstream, NULL, sk), SCRAM_ERR_ARG, "no key");
}

/* ---- client channel binding setup */

static void test_client_channel_binding(void **state)
{
	(void)state;
	scram_client c;
	char out[256];
	size_t len;
	expect_rc(scram_client_init(&c, "pw", 2), SCRAM_OK, "init");
	expect_rc(scram_client_set_channel_binding(&c, fake_cb, 0), SCRAM_ERR_ARG, "empty");
	expect_rc(scram_client_init(&c, "pw", 2), SCRAM_OK, "init");
	uint8_t big[SCRAM_MAX_CB_DATA + 1] = {0};
	expect_rc(scram_client_set_channel_binding(&c, big, sizeof big), SCRAM_ERR_ARG, "too big");
	expect_rc(scram_client_init(&c, "pw", 2), SCRAM_OK, "init");
	expect_rc(scram_client_set_channel_binding(&c, NULL, 32), SCRAM_ERR_ARG, "NULL");
	expect_rc(scram_client_init(&c, "pw", 2), SCRAM_OK, "init");
	expect_rc(scram_client_first(&c, out, sizeof out, &len), SCRAM_OK, "first");
	expect_rc(scram_client_set_channel_binding(&c, fake_cb, 32), SCRAM_ERR_STATE, "too late");

	/* The RFC 7677 exchange with binding data: the same client-first-bare,
	 * another header, and c= covers header and data. */
	expect_rc(scram_client_init(&c, "pencil", 6), SCRAM_OK, "init");
	expect_rc(scram_client_set_channel_binding(&c, u8("abc"), 3), SCRAM_OK, "cb");
	expect_rc(scram_client_set_test_params(&c, "user", 4, RFC_NONCE, strlen(RFC_NONCE)),
		  SCRAM_OK, "params");
	expect_rc(scram_client_first(&c, out, sizeof out, &len), SCRAM_OK, "first");
	assert_string_equal(out, "p=tls-server-end-point,,n=user,r=" RFC_NONCE);
	expect_rc(scram_client_final(&c, u8(RFC_SERVER_FIRST), strlen(RFC_SERVER_FIRST), out,
				     sizeof out, &len),
		  SCRAM_OK, "final");
	/* base64("p=tls-server-end-point,,abc") */
	assert_memory_equal(out, "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCwsYWJj,r=" RFC_NONCE RFC_SERVER_NONCE
			    ",p=",
			    strlen("c=cD10bHMtc2VydmVyLWVuZC1wb2ludCwsYWJj,r=" RFC_NONCE
				   RFC_SERVER_NONCE ",p="));
	/* Exact fit for the longer c=. */
	expect_rc(scram_client_init(&c, "pencil", 6), SCRAM_OK, "init");
	expect_rc(scram_client_set_channel_binding(&c, u8("abc"), 3), SCRAM_OK, "cb");
	expect_rc(scram_client_set_test_params(&c, "user", 4, RFC_NONCE, strlen(RFC_NONCE)),
		  SCRAM_OK, "params");
	expect_rc(scram_client_first(&c, out, sizeof out, &len), SCRAM_OK, "first");
	size_t need = strlen("c=cD10bHMtc2VydmVyLWVuZC1wb2ludCwsYWJj,r=" RFC_NONCE RFC_SERVER_NONCE ",p=") +
	       44 + 1;
	expect_rc(scram_client_final(&c, u8(RFC_SERVER_FIRST), strlen(RFC_SERVER_FIRST), out,
				     need - 1, &len),
		  SCRAM_ERR_SPACE, "one short");
}

/* ---- order, state, buffers */

static void test_order_and_buffers(void **state)
{
	(void)state;
	scram_server s;
	char out[256];
	size_t len;
	static const char cf[] = "n,,n=,r=abc";

	memset(&s, 0, sizeof s);
	expect_rc(scram_server_first(&s, PLAIN, u8(cf), strlen(cf), out, sizeof out, &len),
		  SCRAM_ERR_STATE, "no init");
	server_with(&s, PG15_VERIFIER_X, NULL, 0);
	expect_rc(final_of(&s, "c=biws,r=abc,p=AAAA", 19), SCRAM_ERR_STATE, "final first");
	server_with(&s, PG15_VERIFIER_X, NULL, 0);
	expect_rc(scram_server_first(&s, PLAIN, u8(cf), strlen(cf), out, sizeof out, &len),
		  SCRAM_OK, "first");
	expect_rc(scram_server_first(&s, PLAIN, u8(cf), strlen(cf), out, sizeof out, &len),
		  SCRAM_ERR_STATE, "first twice");
	server_with(&s, PG15_VERIFIER_X, NULL, 0);
	expect_rc(scram_server_first(&s, PLAIN, u8(cf), strlen(cf), out, sizeof out, &len),
		  SCRAM_OK, "first");
	expect_rc(scram_server_set_test_nonce(&s, "abc", 3), SCRAM_ERR_STATE, "late hook");

	server_with(&s, PG15_VERIFIER_X, NULL, 0);
	expect_rc(scram_server_set_test_nonce(&s, "a,b", 3), SCRAM_ERR_ARG, "comma");
	server_with(&s, PG15_VERIFIER_X, NULL, 0);
	expect_rc(scram_server_set_test_nonce(&s, "", 0), SCRAM_ERR_ARG, "empty");

	/* Output buffers: exact fit works, one byte less does not. */
	size_t need = strlen("r=abcSNONCE,s=" SALT_X ",i=4096") + 1;
	server_with(&s, PG15_VERIFIER_X, NULL, 0);
	expect_rc(scram_server_set_test_nonce(&s, "SNONCE", 6), SCRAM_OK, "nonce");
	expect_rc(scram_server_first(&s, PLAIN, u8(cf), strlen(cf), out, need - 1, &len),
		  SCRAM_ERR_SPACE, "one short");
	server_with(&s, PG15_VERIFIER_X, NULL, 0);
	expect_rc(scram_server_set_test_nonce(&s, "SNONCE", 6), SCRAM_OK, "nonce");
	expect_rc(scram_server_first(&s, PLAIN, u8(cf), strlen(cf), out, need, &len), SCRAM_OK,
		  "exact");
	assert_string_equal(out, "r=abcSNONCE,s=" SALT_X ",i=4096");

	char sf[256], msg[256];
	for (int fit = 0; fit < 2; fit++) {
		server_after_first(&s, NULL, 0, PLAIN, "n,,", sf, sizeof sf);
		size_t mlen = signed_final(PG15_PASSWORD_X, "n=,r=cnonce", sf,
					   "c=biws,r=cnonceSNONCE", msg, sizeof msg);
		expect_rc(scram_server_final(&s, u8(msg), mlen, out, 2 + 44 + fit, &len),
			  fit ? SCRAM_OK : SCRAM_ERR_SPACE, "final buffer");
	}

	/* Bad channel binding arguments. */
	expect_rc(scram_server_init(&s, PG15_VERIFIER_X, strlen(PG15_VERIFIER_X), fake_cb, 0),
		  SCRAM_ERR_ARG, "cb without length");
	expect_rc(scram_server_init(&s, PG15_VERIFIER_X, strlen(PG15_VERIFIER_X), NULL, 32),
		  SCRAM_ERR_ARG, "length without cb");
	expect_rc(scram_server_init(&s, PG15_VERIFIER_X, strlen(PG15_VERIFIER_X), fake_cb, 65),
		  SCRAM_ERR_ARG, "cb too long");

	/* Wipe */
	scram_client c;
	exchange x;
	client_with(&c, PG15_PASSWORD_X);
	server_with(&s, PG15_VERIFIER_X, NULL, 0);
	run_exchange(&c, &s, PLAIN, &x);
	expect_success(&x, &c, &s);
	scram_server_wipe(&s);
	uint8_t ck[32], sk[32];
	expect_rc(scram_server_client_key(&s, ck, sk), SCRAM_ERR_STATE, "wiped");
}

/* Every status has a SQLSTATE and a text. */
static void test_error_table(void **state)
{
	(void)state;
	for (int st = -120; st <= 0; st++) {
		const char *code = scram_server_sqlstate(st);
		assert_non_null(code);
		assert_int_equal(strlen(code), 5);
		assert_non_null(scram_server_error_text(st));
		scram_server_error e;
		scram_server_describe(NULL, st, NULL, 0, &e);
		assert_string_equal(e.sqlstate, code);
	}
	assert_string_equal(scram_server_sqlstate(SCRAM_ERR_CRYPTO), "XX000");
	/* A long user name is cut, not overrun. */
	char user[400];
	memset(user, 'u', sizeof user);
	scram_server_error e;
	scram_server_describe(NULL, SCRAM_SRV_AUTH_FAILED, user, sizeof user, &e);
	assert_int_equal(strlen(e.message), sizeof e.message - 1);
}

/* ---- tls-server-end-point */

static EVP_PKEY *keygen(const char *type)
{
	EVP_PKEY *key;
	if (strcmp(type, "EC") == 0)
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	else if (strcmp(type, "RSA") == 0)
		key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	else
		key = EVP_PKEY_Q_keygen(NULL, NULL, type);
	assert_non_null(key);
	return key;
}

/* A self-signed certificate; md NULL for Ed25519, pss for RSA-PSS. */
static X509 *make_cert(EVP_PKEY *key, const EVP_MD *md, int pss)
{
	X509 *x = X509_new();
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, u8("multigateway"), -1, -1, 0);
	X509_set_issuer_name(x, name);
	if (pss) {
		EVP_MD_CTX *mctx = EVP_MD_CTX_new();
		EVP_PKEY_CTX *pctx = NULL;
		assert_int_equal(EVP_DigestSignInit(mctx, &pctx, md, NULL, key), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
		assert_true(X509_sign_ctx(x, mctx) > 0);
		EVP_MD_CTX_free(mctx);
	} else {
		assert_true(X509_sign(x, key, md) > 0);
	}
	return x;
}

/* The hash of the DER encoding, computed apart from X509_digest. */
static size_t der_hash(X509 *x, const EVP_MD *md, uint8_t *out)
{
	unsigned char *der = NULL;
	int der_len = i2d_X509(x, &der);
	assert_true(der_len > 0);
	unsigned int len = 0;
	assert_int_equal(EVP_Digest(der, (size_t)der_len, out, &len, md, NULL), 1);
	OPENSSL_free(der);
	return len;
}

static void test_tls_server_end_point(void **state)
{
	(void)state;
	EVP_PKEY *ec = keygen("EC"), *rsa = keygen("RSA"), *ed = keygen("ED25519");
	static const struct {
		const char *what;
		int key; /* 0 EC, 1 RSA */
		int pss;
		const char *sign_md, *want_md;
	} cases[] = {
		{"ecdsa-with-SHA256", 0, 0, "SHA256", "SHA256"},
		{"ecdsa-with-SHA384", 0, 0, "SHA384", "SHA384"},
		{"ecdsa-with-SHA512", 0, 0, "SHA512", "SHA512"},
		{"ecdsa-with-SHA1: SHA-256 instead", 0, 0, "SHA1", "SHA256"},
		{"sha256WithRSAEncryption", 1, 0, "SHA256", "SHA256"},
		{"sha1WithRSAEncryption: SHA-256 instead", 1, 0, "SHA1", "SHA256"},
		{"md5WithRSAEncryption: SHA-256 instead", 1, 0, "MD5", "SHA256"},
		{"RSASSA-PSS with SHA-384", 1, 1, "SHA384", "SHA384"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		EVP_MD *sign_md = EVP_MD_fetch(NULL, cases[i].sign_md, NULL);
		EVP_MD *want_md = EVP_MD_fetch(NULL, cases[i].want_md, NULL);
		assert_non_null(sign_md);
		assert_non_null(want_md);
		X509 *x = make_cert(cases[i].key ? rsa : ec, sign_md, cases[i].pss);
		uint8_t got[EVP_MAX_MD_SIZE], want[EVP_MAX_MD_SIZE];
		size_t got_len = 0;
		expect_rc(scram_tls_server_end_point(x, got, sizeof got, &got_len), SCRAM_OK,
			  cases[i].what);
		size_t want_len = der_hash(x, want_md, want);
		assert_int_equal(got_len, want_len);
		assert_memory_equal(got, want, want_len);
		/* Too small a buffer. */
		expect_rc(scram_tls_server_end_point(x, got, want_len - 1, &got_len),
			  SCRAM_ERR_SPACE, "cap");
		X509_free(x);
		EVP_MD_free(sign_md);
		EVP_MD_free(want_md);
	}
	/* Ed25519 signs without a separate hash: no tls-server-end-point. */
	X509 *x = make_cert(ed, NULL, 0);
	uint8_t got[EVP_MAX_MD_SIZE];
	size_t got_len;
	expect_rc(scram_tls_server_end_point(x, got, sizeof got, &got_len), SCRAM_ERR_ARG,
		  "Ed25519");
	expect_rc(scram_tls_server_end_point(NULL, got, sizeof got, &got_len), SCRAM_ERR_ARG,
		  "NULL");
	X509_free(x);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
}

/*
 * Certificates made by the openssl command (P-256 key, "openssl req -x509
 * -sha384" and "-sha1"), and the hashes of their DER encodings from
 * "openssl x509 -outform der | sha384sum" and "| sha256sum": the one
 * signed with SHA-1 is bound with SHA-256, as RFC 5929 says.
 */
static const char cert_sha384_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBfDCCASOgAwIBAgIUZOBNC9ymYO3SgnHgAvIj7mdgJCAwCgYIKoZIzj0EAwMw\n"
	"FDESMBAGA1UEAwwJcGd3LXNjcmFtMB4XDTI2MTEyNzA0NTYzMloXDTM2MTEyNDA0\n"
	"NTYzMlowFDESMBAGA1UEAwwJcGd3LXNjcmFtMFkwEwYHKoZIzj0CAQYIKoZIzj0D\n"
	"AQcDQgAEnjl5w1XJg6U6Bx5L4yxh4js2nx2V68934Bmly7jnmBYws8ZqrOp2ch4W\n"
	"bAL5Gx4+tirmbhXiB7kE5+s2eHgPH6NTMFEwHQYDVR0OBBYEFOgrIK6hdIDVHq7W\n"
	"6TDnn2yWCLunMB8GA1UdIwQYMBaAFOgrIK6hdIDVHq7W6TDnn2yWCLunMA8GA1Ud\n"
	"EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwMDRwAwRAIgKUFVeH6I5g06IW5BeWSkDrxQ\n"
	"D3/v7ES+GEhWdj4QaSoCIBUwC5eba03ksHYBGL6hLfUjceq401PYA0FpZvlBwGBn\n"
	"-----END CERTIFICATE-----\n";
static const char cert_sha384_end_point[] =
	"3d73f0363139dc48fcf3e646919184bfcb37cf2fb83a334f05db143458c30f07af4ddb04ddfca9e2c37910db03de548e";
static const char cert_sha1_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBejCCASKgAwIBAgIUK3bdhrHfHpuRL/M6e/tAevPb6BEwCQYHKoZIzj0EATAU\n"
	"MRIwEAYDVQQDDAlwZ3ctc2NyYW0wHhcNMjYxMTI3MDQ1NjMyWhcNMzYxMTI0MDQ1\n"
	"NjMyWjAUMRIwEAYDVQQDDAlwZ3ctc2NyYW0wWTATBgcqhkjOPQIBBggqhkjOPQMB\n"
	"BwNCAASeOXnDVcmDpToHHkvjLGHiOzafHZXrz3fgGaXLuOeYFjCzxmqs6nZyHhZs\n"
	"AvkbHj62KuZuFeIHuQTn6zZ4eA8fo1MwUTAdBgNVHQ4EFgQU6CsgrqF0gNUertbp\n"
	"MOefbJYIu6cwHwYDVR0jBBgwFoAU6CsgrqF0gNUertbpMOefbJYIu6cwDwYDVR0T\n"
	"AQH/BAUwAwEB/zAJBgcqhkjOPQQBA0cAMEQCICRiDw3JdzP58f2Hf7XX1RhQrBDJ\n"
	"zzRNa7vzhov2+4ygAiBGJN1uRGx7cAj5UHIK5Lp7+fkFwZx8aAbfMgHbFYOcXw==\n"
	"-----END CERTIFICATE-----\n";
static const char cert_sha1_end_point[] =
	"cdfc47a955eda095e4aa5feaddbbb9ab1b7bdfcd1e563fee26201dfdd179aa6e";

static void check_known_cert(const char *pem, const char *want_hex)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	assert_non_null(bio);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(x);
	uint8_t got[EVP_MAX_MD_SIZE];
	size_t got_len = 0;
	expect_rc(scram_tls_server_end_point(x, got, sizeof got, &got_len), SCRAM_OK, "hash");
	X509_free(x);
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	for (size_t i = 0; i < got_len; i++)
		snprintf(hex + 2 * i, 3, "%02x", got[i]);
	hex[2 * got_len] = '\0';
	assert_string_equal(hex, want_hex);
}

static void test_known_certificates(void **state)
{
	(void)state;
	check_known_cert(cert_sha384_pem, cert_sha384_end_point);
	check_known_cert(cert_sha1_pem, cert_sha1_end_point);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exchange_plain),
		cmocka_unit_test(test_server_nonce),
		cmocka_unit_test(test_exchange_plus),
		cmocka_unit_test(test_channel_binding_mismatch),
		cmocka_unit_test(test_rfc7677_as_server),
		cmocka_unit_test(test_postgres15_verifiers),
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_tampered_proof),
		cmocka_unit_test(test_wrong_nonce),
		cmocka_unit_test(test_gs2_header),
		cmocka_unit_test(test_y_flag_without_tls),
		cmocka_unit_test(test_bad_client_first),
		cmocka_unit_test(test_bad_client_final),
		cmocka_unit_test(test_verifier_parse),
		cmocka_unit_test(test_secret_type),
		cmocka_unit_test(test_verifier_build),
		cmocka_unit_test(test_mock_exchange),
		cmocka_unit_test(test_pass_through),
		cmocka_unit_test(test_client_channel_binding),
		cmocka_unit_test(test_order_and_buffers),
		cmocka_unit_test(test_error_table),
		cmocka_unit_test(test_tls_server_end_point),
		cmocka_unit_test(test_known_certificates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
