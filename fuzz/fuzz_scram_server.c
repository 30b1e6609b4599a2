/*
 * libFuzzer/AFL++ target: the SCRAM server exchange (src/auth/scram_server.c)
 * fed arbitrary client messages, with a fixed verifier (PostgreSQL 15's for
 * password "pencil") and a fixed server nonce so that the fuzzer can reach
 * the checks past the nonce.
 *
 * Input: one selector byte, then the message. selector % 6 picks
 *   0 client-first, SCRAM-SHA-256, no TLS;
 *   1 client-first, TLS (-PLUS offered); bit 3 of the selector picks -PLUS;
 *   2 client-final after "n,,n=,r=fuzz", no TLS;
 *   3 client-final after "p=tls-server-end-point,,n=,r=fuzz", -PLUS;
 *   4 the message is a stored secret: scram_verifier_parse, scram_secret_type;
 *   5 client-final-without-proof: the harness appends the right proof, so
 *     the success path (extensions, v=) is reached too.
 * In 2, 3 and 5 a mock exchange for an unknown user gets the same message
 * and must fail the same way, or with 28P01 where the real one succeeds
 * or fails the proof: a mock user must not be told apart.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/scram.h"
#include "auth/scram_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                           \
		}                                                                          \
	} while (0)

#define VERIFIER                                                                           \
	"SCRAM-SHA-256$4096:osUc3kJdwBEfEptprbd3Dw==$fugqqo/fuF28Kh9ERWwwGpRgi4d5aiKFsTaTujEk7O8=" \
	":94IoX75PhS0E+MaldzwAqqKRZXxhwmK4WaZvJlmlH6E="
#define SERVER_NONCE "SNONCE"
#define CLIENT_FIRST_PLAIN "n,,n=,r=fuzz"
#define CLIENT_FIRST_PLUS "p=tls-server-end-point,,n=,r=fuzz"

static const uint8_t cb_data[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t mock_secret[SCRAM_MOCK_SECRET_LEN] = "fuzz-mock-secret";

static bool known_status(int rc)
{
	return rc == SCRAM_OK || (rc <= SCRAM_SRV_AUTH_FAILED && rc >= SCRAM_SRV_NOT_SCRAM) ||
	       rc == SCRAM_ERR_SPACE || rc == SCRAM_ERR_STATE || rc == SCRAM_ERR_CRYPTO;
}

/* A failed exchange is over and holds no secret; its report is sane. */
static void check_failed(const scram_server *s, int rc)
{
	static const uint8_t zero[SCRAM_KEY_LEN];
	CHECK(known_status(rc) && rc != SCRAM_OK && rc != SCRAM_ERR_STATE);
	CHECK(s->state == SCRAM_SERVER_FAILED);
	CHECK(memcmp(s->stored_key, zero, sizeof zero) == 0);
	CHECK(memcmp(s->server_key, zero, sizeof zero) == 0);
	CHECK(memcmp(s->client_key, zero, sizeof zero) == 0);
	scram_server_error e;
	scram_server_describe(s, rc, "fuzz", 4, &e);
	CHECK(strlen(e.sqlstate) == 5);
	CHECK(memchr(e.message, 0, sizeof e.message) && e.message[0]);
	CHECK(memchr(e.detail, 0, sizeof e.detail));
	if (rc == SCRAM_SRV_AUTH_FAILED)
		CHECK(strcmp(e.message, "password authentication failed for user \"fuzz\"") == 0);
}

static void client_first(const uint8_t *msg, size_t n, uint8_t selector)
{
	bool tls = selector % 6 == 1;
	const char *mech = tls && (selector & 8) ? "SCRAM-SHA-256-PLUS" : "SCRAM-SHA-256";
	scram_server s;
	char out[SCRAM_SERVER_MAX_FIRST + 1];
	size_t len = 0;
	CHECK(scram_server_init(&s, VERIFIER, strlen(VERIFIER), tls ? cb_data : NULL,
				tls ? sizeof cb_data : 0) == SCRAM_OK);
	int rc = scram_server_first(&s, mech, msg, n, out, sizeof out, &len);
	if (rc != SCRAM_OK) {
		check_failed(&s, rc);
		return;
	}
	CHECK(s.state == SCRAM_SERVER_FIRST_SENT);
	CHECK(len < sizeof out && out[len] == '\0' && strlen(out) == len);
	/* Only what the grammar takes gets this far, with a flag that fits. */
	scram_client_first_msg cf;
	CHECK(scram_parse_client_first(msg, n, &cf) == SCRAM_OK);
	CHECK(!cf.authzid.ptr && !cf.reserved_mext.ptr);
	if (strcmp(mech, "SCRAM-SHA-256-PLUS") == 0)
		CHECK(cf.cbind_flag == 'p' && cf.cbind_name.len == 20 &&
		      memcmp(cf.cbind_name.ptr, "tls-server-end-point", 20) == 0);
	else
		CHECK(cf.cbind_flag == 'n' || (cf.cbind_flag == 'y' && !tls));
	scram_server_first_msg sf;
	CHECK(scram_parse_server_first((const uint8_t *)out, len, &sf) == SCRAM_OK);
	CHECK(sf.nonce.len == cf.nonce.len + 24 &&
	      memcmp(sf.nonce.ptr, cf.nonce.ptr, cf.nonce.len) == 0);
	CHECK(sf.salt.len == 24 && memcmp(sf.salt.ptr, "osUc3kJdwBEfEptprbd3Dw==", 24) == 0);
	CHECK(sf.iterations == 4096 && !sf.extensions.ptr && !sf.reserved_mext.ptr);
}

/* A server, real or mock, that has answered the fixed client-first. */
static void ready_server(scram_server *s, bool plus, bool mock)
{
	const char *cf = plus ? CLIENT_FIRST_PLUS : CLIENT_FIRST_PLAIN;
	char out[256];
	size_t len;
	if (mock)
		CHECK(scram_server_init_mock(s, "nobody", 6, mock_secret, plus ? cb_data : NULL,
					     plus ? sizeof cb_data : 0) == SCRAM_OK);
	else
		CHECK(scram_server_init(s, VERIFIER, strlen(VERIFIER), plus ? cb_data : NULL,
					plus ? sizeof cb_data : 0) == SCRAM_OK);
	CHECK(scram_server_set_test_nonce(s, SERVER_NONCE, strlen(SERVER_NONCE)) == SCRAM_OK);
	CHECK(scram_server_first(s, plus ? "SCRAM-SHA-256-PLUS" : "SCRAM-SHA-256",
				 (const uint8_t *)cf, strlen(cf), out, sizeof out,
				 &len) == SCRAM_OK);
}

/* The keys of "pencil" under VERIFIER, made once. */
static void password_keys(uint8_t client_key[SCRAM_KEY_LEN], uint8_t stored_key[SCRAM_KEY_LEN],
			  uint8_t server_key[SCRAM_KEY_LEN])
{
	static uint8_t ck[SCRAM_KEY_LEN], stk[SCRAM_KEY_LEN], svk[SCRAM_KEY_LEN];
	static bool have;
	if (!have) {
		scram_verifier v;
		uint8_t salted[SCRAM_KEY_LEN];
		CHECK(scram_verifier_parse(VERIFIER, strlen(VERIFIER), &v) == SCRAM_OK);
		CHECK(scram_salted_password("pencil", 6, v.salt, v.salt_len, v.iterations,
					    salted) == SCRAM_OK);
		CHECK(scram_keys(salted, ck, stk, svk) == SCRAM_OK);
		CHECK(memcmp(stk, v.stored_key, SCRAM_KEY_LEN) == 0);
		have = true;
	}
	memcpy(client_key, ck, SCRAM_KEY_LEN);
	memcpy(stored_key, stk, SCRAM_KEY_LEN);
	memcpy(server_key, svk, SCRAM_KEY_LEN);
}

/* The AuthMessage of the fixed exchange with this client-final-without-proof;
 * client-first-bare and server-first are the same with -PLUS or without. */
static void auth_message(const uint8_t *without_proof, size_t n, scram_view parts[5])
{
	static const char plain_first[] = "r=fuzz" SERVER_NONCE ",s=osUc3kJdwBEfEptprbd3Dw==,i=4096";
	parts[0] = (scram_view){(const uint8_t *)"n=,r=fuzz", 9};
	parts[1] = (scram_view){(const uint8_t *)",", 1};
	parts[2] = (scram_view){(const uint8_t *)plain_first, strlen(plain_first)};
	parts[3] = (scram_view){(const uint8_t *)",", 1};
	parts[4] = (scram_view){without_proof, n};
}

/* Real and mock must not differ but where the proof decides. */
static void check_same_as_mock(const uint8_t *msg, size_t n, bool plus, int real_rc)
{
	scram_server mock;
	char out[128];
	size_t len;
	ready_server(&mock, plus, true);
	int rc = scram_server_final(&mock, msg, n, out, sizeof out, &len);
	if (real_rc == SCRAM_OK || real_rc == SCRAM_SRV_AUTH_FAILED)
		CHECK(rc == SCRAM_SRV_AUTH_FAILED);
	else
		CHECK(rc == real_rc);
	check_failed(&mock, rc);
}

static int client_final(const uint8_t *msg, size_t n, bool plus)
{
	scram_server s;
	char out[128];
	size_t len = 0;
	ready_server(&s, plus, false);
	int rc = scram_server_final(&s, msg, n, out, sizeof out, &len);
	check_same_as_mock(msg, n, plus, rc);
	if (rc != SCRAM_OK) {
		check_failed(&s, rc);
		return rc;
	}
	/* Success: the message was well-formed, bound right, signed right. */
	scram_client_final_msg m;
	CHECK(scram_parse_client_final(msg, n, &m) == SCRAM_OK);
	CHECK(m.nonce.len == 4 + strlen(SERVER_NONCE) &&
	      memcmp(m.nonce.ptr, "fuzz" SERVER_NONCE, m.nonce.len) == 0);
	CHECK(s.state == SCRAM_SERVER_DONE && len == 46 && out[len] == '\0');
	uint8_t ck[SCRAM_KEY_LEN], sk[SCRAM_KEY_LEN], want_ck[SCRAM_KEY_LEN], stk[SCRAM_KEY_LEN],
		want_sk[SCRAM_KEY_LEN], sig[SCRAM_KEY_LEN];
	CHECK(scram_server_client_key(&s, ck, sk) == SCRAM_OK);
	password_keys(want_ck, stk, want_sk);
	CHECK(memcmp(ck, want_ck, SCRAM_KEY_LEN) == 0 && memcmp(sk, want_sk, SCRAM_KEY_LEN) == 0);
	/* v= is HMAC(ServerKey, AuthMessage), worked out here on its own. */
	scram_view parts[5];
	auth_message(m.without_proof.ptr, m.without_proof.len, parts);
	CHECK(scram_hmac_sha256(want_sk, SCRAM_KEY_LEN, parts, 5, sig) == SCRAM_OK);
	char v[64] = "v=";
	scram_b64_encode(sig, SCRAM_KEY_LEN, v + 2);
	CHECK(memcmp(out, v, 46) == 0);
	return rc;
}

/* The message is taken as client-final-without-proof and signed. */
static void signed_final(const uint8_t *msg, size_t n, uint8_t selector)
{
	bool plus = selector & 8;
	if (n > 4096)
		return;
	uint8_t ck[SCRAM_KEY_LEN], stk[SCRAM_KEY_LEN], svk[SCRAM_KEY_LEN], sig[SCRAM_KEY_LEN];
	password_keys(ck, stk, svk);
	scram_view parts[5];
	auth_message(msg, n, parts);
	CHECK(scram_hmac_sha256(stk, SCRAM_KEY_LEN, parts, 5, sig) == SCRAM_OK);
	for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
		sig[i] ^= ck[i];
	uint8_t *full = malloc(n + 3 + 44);
	if (!full)
		return;
	if (n)
		memcpy(full, msg, n);
	memcpy(full + n, ",p=", 3);
	scram_b64_encode(sig, SCRAM_KEY_LEN, (char *)full + n + 3);
	int rc = client_final(full, n + 3 + 44, plus);
	/* The proof is right for whatever was signed, so it cannot be what
	 * fails: the message, binding or nonce must be. */
	CHECK(rc != SCRAM_SRV_AUTH_FAILED && rc != SCRAM_SRV_PROOF);
	free(full);
}

static void stored_secret(const uint8_t *msg, size_t n)
{
	const char *secret = (const char *)msg;
	scram_verifier v;
	int rc = scram_verifier_parse(secret, n, &v);
	scram_secret_kind kind = scram_secret_type(secret, n);
	if (rc != SCRAM_OK) {
		CHECK(rc == SCRAM_ERR_SYNTAX && v.iterations == 0 && v.salt_len == 0);
		CHECK(kind != SCRAM_SECRET_SCRAM);
		scram_server s;
		CHECK(scram_server_init(&s, secret, n, NULL, 0) == SCRAM_SRV_NOT_SCRAM);
		CHECK(s.state == SCRAM_SERVER_FAILED);
		return;
	}
	CHECK(kind == SCRAM_SECRET_SCRAM);
	/* Strict and canonical: the fields print back to the input. */
	CHECK(v.iterations >= 1 && v.salt_len >= 1 && v.salt_len <= SCRAM_MAX_SALT);
	char again[SCRAM_VERIFIER_MAX];
	int o = snprintf(again, sizeof again, "SCRAM-SHA-256$%d:", (int)v.iterations);
	CHECK(o > 0);
	size_t len = (size_t)o;
	len += scram_b64_encode(v.salt, v.salt_len, again + len);
	again[len++] = '$';
	len += scram_b64_encode(v.stored_key, SCRAM_KEY_LEN, again + len);
	again[len++] = ':';
	len += scram_b64_encode(v.server_key, SCRAM_KEY_LEN, again + len);
	CHECK(len == n && memcmp(again, msg, n) == 0);
	CHECK(v.salt_b64_len + 1 <= sizeof v.salt_b64 && v.salt_b64[v.salt_b64_len] == '\0');
	scram_server s;
	CHECK(scram_server_init(&s, secret, n, NULL, 0) == SCRAM_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	const uint8_t *msg = data + 1;
	size_t n = size - 1;
	switch (data[0] % 6) {
	case 0:
	case 1:
		client_first(msg, n, data[0]);
		break;
	case 2:
		client_final(msg, n, false);
		break;
	case 3:
		client_final(msg, n, true);
		break;
	case 4:
		stored_secret(msg, n);
		break;
	default:
		signed_final(msg, n, data[0]);
		break;
	}
	return 0;
}
