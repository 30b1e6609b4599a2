/*
 * SCRAM-SHA-256(-PLUS) server side, message for message what PostgreSQL's
 * auth-scram.c does, so a client cannot tell the gateway from the server:
 * stored verifiers, mock exchanges for unknown users, channel binding.
 */
#include "auth/scram_server.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>

#define KEY_B64_LEN SCRAM_B64_LEN(SCRAM_KEY_LEN)

static const char verifier_prefix[] = "SCRAM-SHA-256$";
#define VERIFIER_PREFIX_LEN (sizeof verifier_prefix - 1)

static const char mech_plain[] = "SCRAM-SHA-256";
static const char mech_plus[] = "SCRAM-SHA-256-PLUS";
static const char cb_type_name[] = "tls-server-end-point";
/* cbind-input with -PLUS begins with the client's gs2 header; PostgreSQL
 * forbids authzid, so it can only be this. */
static const char gs2_header_plus[] = "p=tls-server-end-point,,";
#define GS2_HEADER_PLUS_LEN (sizeof gs2_header_plus - 1)

/* ---- stored secrets */

/* base64 that re-encodes to itself: decoding alone lets the unused low
 * bits of the last character vary, so one key would have many spellings. */
static int decode_canonical(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
	char again[SCRAM_B64_LEN(SCRAM_MAX_SALT)];
	if (len == 0 || len > sizeof again)
		return SCRAM_ERR_SYNTAX;
	if (scram_b64_decode((const uint8_t *)in, len, out, cap, out_len) != SCRAM_OK)
		return SCRAM_ERR_SYNTAX;
	if (scram_b64_encode(out, *out_len, again) != len || memcmp(again, in, len) != 0)
		return SCRAM_ERR_SYNTAX;
	return SCRAM_OK;
}

static int verifier_parse(const char *secret, size_t len, scram_verifier *v)
{
	if (!secret || len < VERIFIER_PREFIX_LEN ||
	    memcmp(secret, verifier_prefix, VERIFIER_PREFIX_LEN) != 0)
		return SCRAM_ERR_SYNTAX;
	const char *p = secret + VERIFIER_PREFIX_LEN, *end = secret + len;

	/* Iterations: what PostgreSQL writes, "%d" of a positive int. */
	int64_t iterations = 0;
	size_t digits = 0;
	for (; p < end && *p >= '0' && *p <= '9'; p++, digits++) {
		if (digits == 0 && *p == '0')
			return SCRAM_ERR_SYNTAX;
		if (digits == 10)
			return SCRAM_ERR_SYNTAX;
		iterations = iterations * 10 + (*p - '0');
	}
	if (digits == 0 || iterations > INT32_MAX || p == end || *p != ':')
		return SCRAM_ERR_SYNTAX;
	v->iterations = (int32_t)iterations;
	p++;

	const char *dollar = memchr(p, '$', (size_t)(end - p));
	if (!dollar)
		return SCRAM_ERR_SYNTAX;
	size_t salt_b64_len = (size_t)(dollar - p);
	if (salt_b64_len > sizeof v->salt_b64 - 1 ||
	    decode_canonical(p, salt_b64_len, v->salt, sizeof v->salt, &v->salt_len) != SCRAM_OK ||
	    v->salt_len == 0)
		return SCRAM_ERR_SYNTAX;
	memcpy(v->salt_b64, p, salt_b64_len);
	v->salt_b64[salt_b64_len] = '\0';
	v->salt_b64_len = salt_b64_len;
	p = dollar + 1;

	/* Both keys are exactly one SHA-256 in base64: 44 characters. */
	size_t key_len = 0;
	if ((size_t)(end - p) != 2 * KEY_B64_LEN + 1 || p[KEY_B64_LEN] != ':')
		return SCRAM_ERR_SYNTAX;
	if (decode_canonical(p, KEY_B64_LEN, v->stored_key, SCRAM_KEY_LEN, &key_len) != SCRAM_OK ||
	    key_len != SCRAM_KEY_LEN)
		return SCRAM_ERR_SYNTAX;
	p += KEY_B64_LEN + 1;
	if (decode_canonical(p, KEY_B64_LEN, v->server_key, SCRAM_KEY_LEN, &key_len) != SCRAM_OK ||
	    key_len != SCRAM_KEY_LEN)
		return SCRAM_ERR_SYNTAX;
	return SCRAM_OK;
}

int scram_verifier_parse(const char *secret, size_t len, scram_verifier *out)
{
	memset(out, 0, sizeof *out);
	int rc = verifier_parse(secret, len, out);
	if (rc != SCRAM_OK)
		OPENSSL_cleanse(out, sizeof *out);
	return rc;
}

scram_secret_kind scram_secret_type(const char *secret, size_t len)
{
	/* PostgreSQL's test: "md5" and exactly 32 of MD5_PASSWD_CHARSET
	 * (lower case only). */
	if (secret && len == 35 && memcmp(secret, "md5", 3) == 0) {
		size_t i = 3;
		while (i < len && ((secret[i] >= '0' && secret[i] <= '9') ||
				   (secret[i] >= 'a' && secret[i] <= 'f')))
			i++;
		if (i == len)
			return SCRAM_SECRET_MD5;
	}
	scram_verifier v;
	int rc = scram_verifier_parse(secret, len, &v);
	OPENSSL_cleanse(&v, sizeof v);
	if (rc == SCRAM_OK)
		return SCRAM_SECRET_SCRAM;
	if (secret && len >= VERIFIER_PREFIX_LEN &&
	    memcmp(secret, verifier_prefix, VERIFIER_PREFIX_LEN) == 0)
		return SCRAM_SECRET_BAD_SCRAM;
	return SCRAM_SECRET_PLAINTEXT;
}

/* Secrets of scram_verifier_build, wiped in one place. */
typedef struct build_keys {
	char prepared[SCRAM_MAX_PASSWORD];
	uint8_t salted[SCRAM_KEY_LEN];
	uint8_t client_key[SCRAM_KEY_LEN];
	uint8_t stored_key[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN];
} build_keys;

static int verifier_build(const char *password, size_t len, const uint8_t *salt, size_t salt_len,
			  int32_t iterations, char *out, size_t cap, size_t *out_len, build_keys *k)
{
	size_t prepared_len = 0;
	scram_saslprep(password ? password : "", len, k->prepared, &prepared_len);
	int rc = scram_salted_password(k->prepared, prepared_len, salt, salt_len, iterations,
				       k->salted);
	if (rc == SCRAM_OK)
		rc = scram_keys(k->salted, k->client_key, k->stored_key, k->server_key);
	if (rc != SCRAM_OK)
		return rc;

	char head[32];
	int head_len = snprintf(head, sizeof head, "%s%d:", verifier_prefix, (int)iterations);
	size_t total = (size_t)head_len + SCRAM_B64_LEN(salt_len) + 1 + 2 * KEY_B64_LEN + 1;
	if (!out || cap < total + 1)
		return SCRAM_ERR_SPACE;
	size_t o = (size_t)head_len;
	memcpy(out, head, o);
	o += scram_b64_encode(salt, salt_len, out + o);
	out[o++] = '$';
	o += scram_b64_encode(k->stored_key, SCRAM_KEY_LEN, out + o);
	out[o++] = ':';
	o += scram_b64_encode(k->server_key, SCRAM_KEY_LEN, out + o);
	out[o] = '\0';
	*out_len = o;
	return SCRAM_OK;
}

int scram_verifier_build(const char *password, size_t len, const uint8_t *salt, size_t salt_len,
			 int32_t iterations, char *out, size_t cap, size_t *out_len)
{
	if (!password && len)
		return SCRAM_ERR_ARG;
	if (len > SCRAM_MAX_PASSWORD || (password && memchr(password, 0, len)))
		return SCRAM_ERR_PASSWORD;
	if (!salt || salt_len == 0 || salt_len > SCRAM_MAX_SALT || iterations < 1)
		return SCRAM_ERR_ARG;
	build_keys k;
	int rc = verifier_build(password, len, salt, salt_len, iterations, out, cap, out_len, &k);
	OPENSSL_cleanse(&k, sizeof k);
	return rc;
}

int scram_verifier_from_password(const char *password, size_t len, char *out, size_t cap,
				 size_t *out_len)
{
	uint8_t salt[SCRAM_SERVER_SALT_LEN];
	if (RAND_bytes(salt, sizeof salt) != 1)
		return SCRAM_ERR_CRYPTO;
	return scram_verifier_build(password, len, salt, sizeof salt, SCRAM_SERVER_ITERATIONS, out,
				    cap, out_len);
}

/* ---- channel binding */

int scram_tls_server_end_point(X509 *cert, uint8_t *out, size_t cap, size_t *out_len)
{
	int md_nid = NID_undef;
	if (!cert || !out || !out_len)
		return SCRAM_ERR_ARG;
	/* X509_get_signature_info, not the signature NID: it knows RSA-PSS,
	 * whose hash is in the parameters (PostgreSQL switched for that). */
	if (X509_get_signature_info(cert, &md_nid, NULL, NULL, NULL) != 1)
		return SCRAM_ERR_ARG;
	const EVP_MD *md;
	if (md_nid == NID_md5 || md_nid == NID_sha1)
		md = EVP_sha256(); /* RFC 5929 4.1 */
	else
		md = EVP_get_digestbynid(md_nid);
	if (!md)
		return SCRAM_ERR_ARG;
	unsigned char hash[EVP_MAX_MD_SIZE];
	unsigned int hash_len = 0;
	if (X509_digest(cert, md, hash, &hash_len) != 1)
		return SCRAM_ERR_CRYPTO;
	if (hash_len > cap)
		return SCRAM_ERR_SPACE;
	memcpy(out, hash, hash_len);
	*out_len = hash_len;
	return SCRAM_OK;
}

/* ---- the exchange */

/* Every failure ends the exchange; only what an error report quotes
 * (detail, cb_type) outlives it. */
static int server_fail(scram_server *s, int rc)
{
	OPENSSL_cleanse(s->stored_key, sizeof s->stored_key);
	OPENSSL_cleanse(s->server_key, sizeof s->server_key);
	OPENSSL_cleanse(s->client_key, sizeof s->client_key);
	s->state = SCRAM_SERVER_FAILED;
	return rc;
}

static int server_setup(scram_server *s, const uint8_t *cb_data, size_t cb_len)
{
	OPENSSL_cleanse(s, sizeof *s);
	s->state = SCRAM_SERVER_FAILED;
	if (!cb_data != !cb_len || cb_len > SCRAM_MAX_CB_DATA)
		return SCRAM_ERR_ARG;
	if (cb_len) {
		memcpy(s->cb_data, cb_data, cb_len);
		s->cb_len = cb_len;
		s->cb_offered = true;
	}
	return SCRAM_OK;
}

int scram_server_init(scram_server *s, const char *verifier, size_t len, const uint8_t *cb_data,
		      size_t cb_len)
{
	int rc = server_setup(s, cb_data, cb_len);
	if (rc != SCRAM_OK)
		return rc;
	scram_verifier v;
	if (scram_verifier_parse(verifier, len, &v) != SCRAM_OK)
		return SCRAM_SRV_NOT_SCRAM;
	s->iterations = v.iterations;
	memcpy(s->salt_b64, v.salt_b64, v.salt_b64_len);
	s->salt_b64_len = v.salt_b64_len;
	memcpy(s->stored_key, v.stored_key, SCRAM_KEY_LEN);
	memcpy(s->server_key, v.server_key, SCRAM_KEY_LEN);
	OPENSSL_cleanse(&v, sizeof v);
	s->state = SCRAM_SERVER_READY;
	return SCRAM_OK;
}

int scram_server_init_mock(scram_server *s, const char *user, size_t ulen,
			   const uint8_t mock_secret[SCRAM_MOCK_SECRET_LEN], const uint8_t *cb_data,
			   size_t cb_len)
{
	int rc = server_setup(s, cb_data, cb_len);
	if (rc != SCRAM_OK)
		return rc;
	if ((!user && ulen) || !mock_secret)
		return SCRAM_ERR_ARG;
	/* A salt per user that stays put across attempts, as a real one would,
	 * and that nobody without the secret can predict. */
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
		  (ulen == 0 || EVP_DigestUpdate(ctx, user, ulen) == 1) &&
		  EVP_DigestUpdate(ctx, mock_secret, SCRAM_MOCK_SECRET_LEN) == 1 &&
		  EVP_DigestFinal_ex(ctx, digest, &digest_len) == 1 &&
		  digest_len >= SCRAM_SERVER_SALT_LEN;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return SCRAM_ERR_CRYPTO;
	s->salt_b64_len = scram_b64_encode(digest, SCRAM_SERVER_SALT_LEN, s->salt_b64);
	s->iterations = SCRAM_SERVER_ITERATIONS;
	/* StoredKey all zero: no ClientKey hashes to it, and doomed fails the
	 * exchange anyway once the proof has been computed. */
	s->doomed = true;
	s->state = SCRAM_SERVER_READY;
	return SCRAM_OK;
}

const char *scram_server_mechanisms(const scram_server *s, size_t *len)
{
	/* The literal's own NUL ends the list. */
	static const char both[] = "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0";
	static const char plain[] = "SCRAM-SHA-256\0";
	if (s->cb_offered) {
		*len = sizeof both;
		return both;
	}
	*len = sizeof plain;
	return plain;
}

int scram_server_set_test_nonce(scram_server *s, const char *nonce, size_t len)
{
	if (s->state != SCRAM_SERVER_READY)
		return server_fail(s, SCRAM_ERR_STATE);
	if (!nonce || len == 0 || len > SCRAM_MAX_NONCE)
		return server_fail(s, SCRAM_ERR_ARG);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)nonce[i];
		if (ch < 0x21 || ch > 0x7e || ch == ',')
			return server_fail(s, SCRAM_ERR_ARG);
	}
	memcpy(s->server_nonce, nonce, len);
	s->server_nonce_len = len;
	return SCRAM_OK;
}

/* ---- PostgreSQL's reader, as far as its error details go
 *
 * auth-scram.c reads a message attribute by attribute and reports the
 * first thing it trips over. The readers below go over the same leading
 * attributes in the same order, so that those reports come out the same;
 * the Ragel grammar then checks the whole message, more strictly than
 * PostgreSQL does (an error only it finds has no detail). */

/* sanitize_char: 'c' for printable ASCII, else 0xNN. */
static void sanitize_char(const uint8_t *p, const uint8_t *end, char out[8])
{
	uint8_t c = p < end ? *p : 0; /* PostgreSQL sees the terminating NUL */
	if (c >= 0x21 && c <= 0x7e)
		snprintf(out, 8, "'%c'", c);
	else
		snprintf(out, 8, "0x%02x", c);
}

/* "malformed SCRAM message" with PostgreSQL's detail, which the caller
 * has put in s->detail. */
#define MALFORMED(s, ...)                                                                  \
	(snprintf((s)->detail, sizeof (s)->detail, __VA_ARGS__), SCRAM_SRV_MALFORMED)

/* read_attr_value: "<attr>=" then the value up to ',' (consumed) or the end. */
static int attr_value(scram_server *s, const uint8_t **pp, const uint8_t *end, char attr,
		      scram_view *value)
{
	const uint8_t *p = *pp;
	char found[8];
	if (p == end || *p != (uint8_t)attr) {
		sanitize_char(p, end, found);
		return MALFORMED(s, "Expected attribute \"%c\" but found \"%s\".", attr, found);
	}
	p++;
	if (p == end || *p != '=')
		return MALFORMED(s, "Expected character \"=\" for attribute \"%c\".", attr);
	p++;
	const uint8_t *comma = memchr(p, ',', (size_t)(end - p));
	value->ptr = p;
	value->len = (size_t)((comma ? comma : end) - p);
	*pp = comma ? comma + 1 : end;
	return SCRAM_OK;
}

static bool view_is(scram_view v, const char *text)
{
	return v.len == strlen(text) && memcmp(v.ptr, text, v.len) == 0;
}

/* read_client_first_message up to the nonce; the grammar does the rest. */
static int read_client_first(scram_server *s, const uint8_t *msg, size_t n)
{
	const uint8_t *p = msg, *end = msg + n;
	char found[8];
	scram_view value;
	int rc;
	s->cbind_flag = *p;
	switch (*p) {
	case 'n':
	case 'y':
		if (s->cb_in_use)
			return SCRAM_SRV_CB_NOT_SENT;
		/* RFC 5802 6: 'y' means the client thinks we cannot bind;
		 * agreeing would let a man in the middle strip -PLUS. */
		if (*p == 'y' && s->cb_offered)
			return SCRAM_SRV_CB_NEGOTIATION;
		p++;
		if (p == end || *p != ',') {
			sanitize_char(p, end, found);
			return MALFORMED(s, "Comma expected, but found character \"%s\".", found);
		}
		p++;
		break;
	case 'p':
		if (!s->cb_in_use)
			return SCRAM_SRV_CB_UNEXPECTED;
		rc = attr_value(s, &p, end, 'p', &value);
		if (rc != SCRAM_OK)
			return rc;
		if (!view_is(value, cb_type_name)) {
			/* sanitize_str: printable ASCII or '?', 30 at most */
			size_t i = 0;
			for (; i < value.len && i < sizeof s->cb_type - 1; i++) {
				uint8_t c = value.ptr[i];
				s->cb_type[i] = c >= 0x21 && c <= 0x7e ? (char)c : '?';
			}
			s->cb_type[i] = '\0';
			return SCRAM_SRV_CB_TYPE;
		}
		break;
	default:
		sanitize_char(p, end, found);
		return MALFORMED(s, "Unexpected channel-binding flag \"%s\".", found);
	}
	if (p < end && *p == 'a')
		return SCRAM_SRV_AUTHZID;
	if (p == end || *p != ',') {
		sanitize_char(p, end, found);
		return MALFORMED(s, "Unexpected attribute \"%s\" in client-first-message.", found);
	}
	p++;
	if (p < end && *p == 'm')
		return SCRAM_SRV_EXTENSION;
	rc = attr_value(s, &p, end, 'n', &value);
	if (rc == SCRAM_OK)
		rc = attr_value(s, &p, end, 'r', &value);
	if (rc != SCRAM_OK)
		return rc;
	for (size_t i = 0; i < value.len; i++)
		if (value.ptr[i] < 0x21 || value.ptr[i] > 0x7e)
			return SCRAM_SRV_NONPRINTABLE;
	return SCRAM_OK;
}

/* PostgreSQL's first check on every message: SCRAM data is a C string. */
static int check_input(const uint8_t *msg, size_t n)
{
	if (n == 0 || !msg)
		return SCRAM_SRV_EMPTY;
	if (memchr(msg, 0, n))
		return SCRAM_SRV_NUL;
	return SCRAM_OK;
}

static int server_first(scram_server *s, const char *mechanism, const uint8_t *msg, size_t n,
			char *out, size_t cap, size_t *out_len)
{
	/* The -PLUS name is only valid when it was offered, as in scram_init. */
	if (mechanism && strcmp(mechanism, mech_plus) == 0 && s->cb_offered)
		s->cb_in_use = true;
	else if (mechanism && strcmp(mechanism, mech_plain) == 0)
		s->cb_in_use = false;
	else
		return SCRAM_SRV_MECHANISM;
	int rc = check_input(msg, n);
	if (rc == SCRAM_OK)
		rc = read_client_first(s, msg, n);
	if (rc != SCRAM_OK)
		return rc;
	scram_client_first_msg m;
	if (scram_parse_client_first(msg, n, &m) != SCRAM_OK)
		return SCRAM_SRV_MALFORMED;
	if (m.bare.len > sizeof s->bare)
		return SCRAM_SRV_TOO_LONG;

	if (!s->server_nonce_len) {
		uint8_t raw[SCRAM_SERVER_RAW_NONCE_LEN];
		if (RAND_bytes(raw, sizeof raw) != 1)
			return SCRAM_ERR_CRYPTO;
		s->server_nonce_len = scram_b64_encode(raw, sizeof raw, s->server_nonce);
	}

	/* "r=%s%s,s=%s,i=%d" */
	char count[16];
	int count_len = snprintf(count, sizeof count, ",i=%d", (int)s->iterations);
	size_t len = 2 + m.nonce.len + s->server_nonce_len + 3 + s->salt_b64_len + (size_t)count_len;
	if (len > sizeof s->server_first)
		return SCRAM_SRV_TOO_LONG;
	if (!out || cap < len + 1)
		return SCRAM_ERR_SPACE;
	char *f = s->server_first;
	size_t o = 0;
	memcpy(f + o, "r=", 2);
	o += 2;
	memcpy(f + o, m.nonce.ptr, m.nonce.len);
	o += m.nonce.len;
	memcpy(f + o, s->server_nonce, s->server_nonce_len);
	o += s->server_nonce_len;
	memcpy(f + o, ",s=", 3);
	o += 3;
	memcpy(f + o, s->salt_b64, s->salt_b64_len);
	o += s->salt_b64_len;
	memcpy(f + o, count, (size_t)count_len);
	o += (size_t)count_len;
	s->server_first_len = o;
	s->nonce_len = m.nonce.len + s->server_nonce_len;
	memcpy(s->bare, m.bare.ptr, m.bare.len);
	s->bare_len = m.bare.len;

	memcpy(out, f, o);
	out[o] = '\0';
	*out_len = o;
	return SCRAM_OK;
}

int scram_server_first(scram_server *s, const char *mechanism, const uint8_t *client_first,
		       size_t n, char *out, size_t cap, size_t *out_len)
{
	if (s->state != SCRAM_SERVER_READY)
		return server_fail(s, SCRAM_ERR_STATE);
	int rc = server_first(s, mechanism, client_first, n, out, cap, out_len);
	if (rc != SCRAM_OK)
		return server_fail(s, rc);
	s->state = SCRAM_SERVER_FIRST_SENT;
	return SCRAM_OK;
}

/* c=: what the client must have sent, base64 of its gs2 header (and
 * with -PLUS the certificate hash). */
static int check_channel_binding(const scram_server *s, scram_view c)
{
	if (s->cb_in_use) {
		uint8_t input[GS2_HEADER_PLUS_LEN + SCRAM_MAX_CB_DATA];
		char want[SCRAM_B64_LEN(GS2_HEADER_PLUS_LEN + SCRAM_MAX_CB_DATA)];
		memcpy(input, gs2_header_plus, GS2_HEADER_PLUS_LEN);
		memcpy(input + GS2_HEADER_PLUS_LEN, s->cb_data, s->cb_len);
		size_t want_len = scram_b64_encode(input, GS2_HEADER_PLUS_LEN + s->cb_len, want);
		if (c.len != want_len || memcmp(c.ptr, want, want_len) != 0)
			return SCRAM_SRV_CB_CHECK;
		return SCRAM_OK;
	}
	/* "n,," is "biws", "y,," is "eSws"; the flag must be client-first's. */
	if ((view_is(c, "biws") && s->cbind_flag == 'n') ||
	    (view_is(c, "eSws") && s->cbind_flag == 'y'))
		return SCRAM_OK;
	return SCRAM_SRV_CB_ATTR;
}

/* Secrets of one client-final, wiped in one place. */
typedef struct final_keys {
	uint8_t proof[SCRAM_KEY_LEN + 2];
	uint8_t client_signature[SCRAM_KEY_LEN];
	uint8_t client_key[SCRAM_KEY_LEN];
	uint8_t hashed[SCRAM_KEY_LEN];
	uint8_t server_signature[SCRAM_KEY_LEN];
} final_keys;

static int server_final(scram_server *s, const uint8_t *msg, size_t n, char *out, size_t cap,
			size_t *out_len, final_keys *k)
{
	int rc = check_input(msg, n);
	if (rc != SCRAM_OK)
		return rc;
	/* read_client_final_message: c=, the binding check, r=, then the rest. */
	const uint8_t *p = msg, *end = msg + n;
	scram_view value;
	rc = attr_value(s, &p, end, 'c', &value);
	if (rc == SCRAM_OK)
		rc = check_channel_binding(s, value);
	if (rc == SCRAM_OK)
		rc = attr_value(s, &p, end, 'r', &value);
	if (rc != SCRAM_OK)
		return rc;
	scram_client_final_msg m;
	if (scram_parse_client_final(msg, n, &m) != SCRAM_OK)
		return SCRAM_SRV_MALFORMED;
	size_t proof_len = 0;
	if (m.proof.len != KEY_B64_LEN ||
	    scram_b64_decode(m.proof.ptr, m.proof.len, k->proof, sizeof k->proof, &proof_len) !=
		    SCRAM_OK ||
	    proof_len != SCRAM_KEY_LEN)
		return SCRAM_SRV_PROOF;
	/* The nonce is public: no need for constant time. */
	if (m.nonce.len != s->nonce_len || memcmp(m.nonce.ptr, s->server_first + 2, s->nonce_len) != 0)
		return SCRAM_SRV_NONCE;

	/* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
	const scram_view auth_message[] = {
		{(const uint8_t *)s->bare, s->bare_len},
		{(const uint8_t *)",", 1},
		{(const uint8_t *)s->server_first, s->server_first_len},
		{(const uint8_t *)",", 1},
		m.without_proof,
	};
	size_t nparts = sizeof auth_message / sizeof auth_message[0];
	rc = scram_hmac_sha256(s->stored_key, SCRAM_KEY_LEN, auth_message, nparts,
			       k->client_signature);
	if (rc != SCRAM_OK)
		return rc;
	for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
		k->client_key[i] = k->proof[i] ^ k->client_signature[i];
	rc = scram_sha256(k->client_key, SCRAM_KEY_LEN, k->hashed);
	if (rc != SCRAM_OK)
		return rc;
	/* Computed in full for a mock user too, and only then failed, so that
	 * the time taken does not tell whether the user exists. */
	if (CRYPTO_memcmp(k->hashed, s->stored_key, SCRAM_KEY_LEN) != 0 || s->doomed)
		return SCRAM_SRV_AUTH_FAILED;

	if (!out || cap < 2 + KEY_B64_LEN + 1)
		return SCRAM_ERR_SPACE;
	rc = scram_hmac_sha256(s->server_key, SCRAM_KEY_LEN, auth_message, nparts,
			       k->server_signature);
	if (rc != SCRAM_OK)
		return rc;
	memcpy(out, "v=", 2);
	size_t o = 2 + scram_b64_encode(k->server_signature, SCRAM_KEY_LEN, out + 2);
	out[o] = '\0';
	*out_len = o;
	memcpy(s->client_key, k->client_key, SCRAM_KEY_LEN);
	return SCRAM_OK;
}

int scram_server_final(scram_server *s, const uint8_t *client_final, size_t n, char *out,
		       size_t cap, size_t *out_len)
{
	final_keys k;
	if (s->state != SCRAM_SERVER_FIRST_SENT)
		return server_fail(s, SCRAM_ERR_STATE);
	int rc = server_final(s, client_final, n, out, cap, out_len, &k);
	OPENSSL_cleanse(&k, sizeof k);
	if (rc != SCRAM_OK)
		return server_fail(s, rc);
	/* Only pass-through needs anything now: ClientKey and ServerKey. */
	OPENSSL_cleanse(s->stored_key, sizeof s->stored_key);
	s->state = SCRAM_SERVER_DONE;
	return SCRAM_OK;
}

int scram_server_client_key(const scram_server *s, uint8_t client_key[SCRAM_KEY_LEN],
			    uint8_t server_key[SCRAM_KEY_LEN])
{
	if (s->state != SCRAM_SERVER_DONE)
		return SCRAM_ERR_STATE;
	memcpy(client_key, s->client_key, SCRAM_KEY_LEN);
	memcpy(server_key, s->server_key, SCRAM_KEY_LEN);
	return SCRAM_OK;
}

void scram_server_wipe(scram_server *s)
{
	OPENSSL_cleanse(s, sizeof *s);
	s->state = SCRAM_SERVER_FAILED;
}

/* ---- errors */

const char *scram_server_sqlstate(int status)
{
	switch (status) {
	case SCRAM_OK:
		return "00000";
	case SCRAM_SRV_AUTH_FAILED:
		return "28P01"; /* invalid_password */
	case SCRAM_SRV_CB_NEGOTIATION:
	case SCRAM_SRV_CB_CHECK:
		return "28000"; /* invalid_authorization_specification */
	case SCRAM_SRV_AUTHZID:
	case SCRAM_SRV_EXTENSION:
		return "0A000"; /* feature_not_supported */
	case SCRAM_SRV_MECHANISM:
	case SCRAM_SRV_MALFORMED:
	case SCRAM_SRV_EMPTY:
	case SCRAM_SRV_NUL:
	case SCRAM_SRV_CB_NOT_SENT:
	case SCRAM_SRV_CB_UNEXPECTED:
	case SCRAM_SRV_NONPRINTABLE:
	case SCRAM_SRV_PROOF:
	case SCRAM_SRV_TOO_LONG:
	case SCRAM_SRV_CB_TYPE:
	case SCRAM_SRV_CB_ATTR:
	case SCRAM_SRV_NONCE:
		return "08P01"; /* protocol_violation */
	default:
		return "XX000"; /* internal_error: ours, not the client's */
	}
}

const char *scram_server_error_text(int status)
{
	switch (status) {
	case SCRAM_SRV_AUTH_FAILED:
		return "password authentication failed for user";
	case SCRAM_SRV_MECHANISM:
		return "client selected an invalid SASL authentication mechanism";
	case SCRAM_SRV_MALFORMED:
	case SCRAM_SRV_EMPTY:
	case SCRAM_SRV_NUL:
	case SCRAM_SRV_CB_NOT_SENT:
	case SCRAM_SRV_CB_UNEXPECTED:
	case SCRAM_SRV_PROOF:
	case SCRAM_SRV_TOO_LONG:
		return "malformed SCRAM message";
	case SCRAM_SRV_NONPRINTABLE:
		return "non-printable characters in SCRAM nonce";
	case SCRAM_SRV_CB_NEGOTIATION:
		return "SCRAM channel binding negotiation error";
	case SCRAM_SRV_CB_TYPE:
		return "unsupported SCRAM channel-binding type";
	case SCRAM_SRV_AUTHZID:
		return "client uses authorization identity, but it is not supported";
	case SCRAM_SRV_EXTENSION:
		return "client requires an unsupported SCRAM extension";
	case SCRAM_SRV_CB_ATTR:
		return "unexpected SCRAM channel-binding attribute in client-final-message";
	case SCRAM_SRV_CB_CHECK:
		return "SCRAM channel binding check failed";
	case SCRAM_SRV_NONCE:
		return "invalid SCRAM response";
	case SCRAM_SRV_NOT_SCRAM:
		return "not a SCRAM-SHA-256 verifier";
	default:
		return scram_strerror(status);
	}
}

const char *scram_server_error_detail(int status)
{
	switch (status) {
	case SCRAM_SRV_EMPTY:
		return "The message is empty.";
	case SCRAM_SRV_NUL:
		return "Message length does not match input length.";
	case SCRAM_SRV_CB_NOT_SENT:
		return "The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not "
		       "include channel binding data.";
	case SCRAM_SRV_CB_UNEXPECTED:
		return "The client selected SCRAM-SHA-256 without channel binding, but the SCRAM "
		       "message includes channel binding data.";
	case SCRAM_SRV_PROOF:
		return "Malformed proof in client-final-message.";
	case SCRAM_SRV_TOO_LONG:
		return "The message is too long.";
	case SCRAM_SRV_CB_NEGOTIATION:
		return "The client supports SCRAM channel binding but thinks the server does not.  "
		       "However, this server does support channel binding.";
	case SCRAM_SRV_NONCE:
		return "Nonce does not match.";
	default:
		return NULL;
	}
}

void scram_server_describe(const scram_server *s, int status, const char *user, size_t ulen,
			   scram_server_error *out)
{
	memset(out, 0, sizeof *out);
	memcpy(out->sqlstate, scram_server_sqlstate(status), 5);
	const char *text = scram_server_error_text(status);
	if (status == SCRAM_SRV_AUTH_FAILED) {
		if (ulen > (size_t)INT32_MAX || !user)
			ulen = 0;
		snprintf(out->message, sizeof out->message, "%s \"%.*s\"", text, (int)ulen,
			 user ? user : "");
	} else if (status == SCRAM_SRV_CB_TYPE) {
		snprintf(out->message, sizeof out->message, "%s \"%s\"", text,
			 s && memchr(s->cb_type, 0, sizeof s->cb_type) ? s->cb_type : "");
	} else {
		snprintf(out->message, sizeof out->message, "%s", text);
	}
	const char *detail = scram_server_error_detail(status);
	if (status == SCRAM_SRV_MALFORMED && s && memchr(s->detail, 0, sizeof s->detail))
		detail = s->detail;
	if (detail)
		snprintf(out->detail, sizeof out->detail, "%s", detail);
}
