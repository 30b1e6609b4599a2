/*
 * Client-side PostgreSQL password authentication (src/auth): the RFC 7677
 * SCRAM-SHA-256 vector, every malformed server message we could think of,
 * the attribute parser on its own, SASLprep as PostgreSQL does it, and md5.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "auth/pgmd5.h"
#include "auth/scram.h"

/* RFC 7677 section 3. */
#define RFC_USER "user"
#define RFC_PASSWORD "pencil"
#define RFC_NONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_FULL_NONCE RFC_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SALT "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_SERVER_FIRST "r=" RFC_FULL_NONCE ",s=" RFC_SALT ",i=4096"
#define RFC_CLIENT_FINAL                                                                   \
	"c=biws,r=" RFC_FULL_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static const uint8_t *u8(const char *s)
{
	return (const uint8_t *)s;
}

static void expect_rc(int got, int want, const char *what)
{
	if (got != want)
		fail_msg("%s: expected %d (%s), got %d (%s)", what, want, scram_strerror(want), got,
			 scram_strerror(got));
}

static void expect_view(scram_view v, const char *want, const char *what)
{
	if (want == NULL) {
		if (v.ptr != NULL || v.len != 0)
			fail_msg("%s: expected absent, got \"%.*s\"", what, (int)v.len, v.ptr);
		return;
	}
	if (v.ptr == NULL || v.len != strlen(want) || memcmp(v.ptr, want, v.len) != 0)
		fail_msg("%s: expected \"%s\", got \"%.*s\"", what, want, (int)v.len,
			 v.ptr ? (const char *)v.ptr : "(null)");
}

/* A client with the RFC's password, user and nonce, client-first sent. */
static void rfc_client(scram_client *c, const char *password, size_t password_len)
{
	char first[128];
	size_t len = 0;
	expect_rc(scram_client_init(c, password, password_len), SCRAM_OK, "init");
	expect_rc(scram_client_set_test_params(c, RFC_USER, strlen(RFC_USER), RFC_NONCE,
					       strlen(RFC_NONCE)),
		  SCRAM_OK, "test params");
	expect_rc(scram_client_first(c, first, sizeof first, &len), SCRAM_OK, "client-first");
	assert_int_equal(len, strlen("n,,n=user,r=" RFC_NONCE));
	assert_string_equal(first, "n,,n=user,r=" RFC_NONCE);
}

static int client_final_of(scram_client *c, const char *server_first, size_t n, char *out,
			   size_t cap)
{
	size_t len = 0;
	int rc = scram_client_final(c, u8(server_first), n, out, cap, &len);
	if (rc == SCRAM_OK)
		assert_int_equal(len, strlen(out));
	return rc;
}

static void test_rfc7677_vector(void **state)
{
	(void)state;
	scram_client c;
	char final[256];
	rfc_client(&c, RFC_PASSWORD, strlen(RFC_PASSWORD));
	expect_rc(client_final_of(&c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), final,
				  sizeof final),
		  SCRAM_OK, "client-final");
	assert_string_equal(final, RFC_CLIENT_FINAL);
	/* The password is not kept once the proof is made. */
	assert_int_equal(c.password_len, 0);
	expect_rc(scram_client_verify_final(&c, u8(RFC_SERVER_FINAL), strlen(RFC_SERVER_FINAL)),
		  SCRAM_OK, "server-final");
	assert_int_equal(c.state, SCRAM_CLIENT_DONE);
	/* Nothing more to do. */
	expect_rc(scram_client_verify_final(&c, u8(RFC_SERVER_FINAL), strlen(RFC_SERVER_FINAL)),
		  SCRAM_ERR_STATE, "verify twice");
}

/* As PostgreSQL runs it: empty n=, a 32-character nonce, an extension in
 * server-first that must be hashed as sent. Expected values from Python's
 * hashlib/hmac. */
static void test_postgres_shape_vector(void **state)
{
	(void)state;
	static const char nonce[] = "abcdefghijklmnopqrstuvwxyz012345";
	static const char server_first[] = "r=abcdefghijklmnopqrstuvwxyz012345SRV+nonce/=,"
					   "s=AAECAwQFBgcICQoLDA0ODw==,i=4096,x=ext=value";
	scram_client c;
	char first[128], final[256];
	size_t len;
	expect_rc(scram_client_init(&c, "secret", 6), SCRAM_OK, "init");
	expect_rc(scram_client_set_test_params(&c, NULL, 0, nonce, strlen(nonce)), SCRAM_OK,
		  "test params");
	expect_rc(scram_client_first(&c, first, sizeof first, &len), SCRAM_OK, "first");
	assert_string_equal(first, "n,,n=,r=abcdefghijklmnopqrstuvwxyz012345");
	expect_rc(client_final_of(&c, server_first, strlen(server_first), final, sizeof final),
		  SCRAM_OK, "final");
	assert_string_equal(final, "c=biws,r=abcdefghijklmnopqrstuvwxyz012345SRV+nonce/=,"
				   "p=34ACx7z+IEBJHSbpzjBdqz8ObYTwhz1tC4R2OfEhRas=");
	static const char server_final[] = "v=2hlytViXwt/YmFOhuaUiMGhMBGh3GDMwVHCVggn4nVg=";
	expect_rc(scram_client_verify_final(&c, u8(server_final), strlen(server_final)), SCRAM_OK,
		  "verify");

	/* What the client sent parses back as a client-final-message. */
	scram_client_final_msg m;
	expect_rc(scram_parse_client_final(u8(final), strlen(final), &m), SCRAM_OK, "parse");
	expect_view(m.without_proof, "c=biws,r=abcdefghijklmnopqrstuvwxyz012345SRV+nonce/=",
		    "without proof");
}

static void test_random_client_first(void **state)
{
	(void)state;
	scram_client a, b;
	char fa[128], fb[128];
	size_t la, lb;
	expect_rc(scram_client_init(&a, "pw", 2), SCRAM_OK, "init a");
	expect_rc(scram_client_init(&b, "pw", 2), SCRAM_OK, "init b");
	expect_rc(scram_client_first(&a, fa, sizeof fa, &la), SCRAM_OK, "first a");
	expect_rc(scram_client_first(&b, fb, sizeof fb, &lb), SCRAM_OK, "first b");
	/* "n,,n=,r=" and 24 random bytes in base64. */
	assert_int_equal(la, 8 + 32);
	assert_memory_equal(fa, "n,,n=,r=", 8);
	assert_string_not_equal(fa, fb);

	scram_client_first_msg m;
	expect_rc(scram_parse_client_first(u8(fa), la, &m), SCRAM_OK, "parse");
	assert_int_equal(m.cbind_flag, 'n');
	expect_view(m.user, "", "user");
	assert_int_equal(m.nonce.len, 32);
	assert_memory_equal(m.nonce.ptr, a.nonce, 32);
	assert_ptr_equal(m.bare.ptr, u8(fa) + 3);
}

/* A saslname escapes ',' and '=' (RFC 5802 5.1). */
static void test_user_escaping(void **state)
{
	(void)state;
	scram_client c;
	char first[128];
	size_t len;
	expect_rc(scram_client_init(&c, "pw", 2), SCRAM_OK, "init");
	expect_rc(scram_client_set_test_params(&c, "a,b=c", 5, "xyz", 3), SCRAM_OK, "params");
	expect_rc(scram_client_first(&c, first, sizeof first, &len), SCRAM_OK, "first");
	assert_string_equal(first, "n,,n=a=2Cb=3Dc,r=xyz");
}

static void test_wrong_server_signature(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl94G4=", /* one byte off */
		"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", /* first char off */
		"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4A", /* 33 bytes */
		"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl9",	  /* 31 bytes */
		"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		scram_client c;
		char final[256];
		rfc_client(&c, RFC_PASSWORD, strlen(RFC_PASSWORD));
		expect_rc(client_final_of(&c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), final,
					  sizeof final),
			  SCRAM_OK, "final");
		expect_rc(scram_client_verify_final(&c, u8(bad[i]), strlen(bad[i])),
			  SCRAM_ERR_VERIFY, bad[i]);
		assert_int_equal(c.state, SCRAM_CLIENT_FAILED);
		/* No second chance with the right one. */
		expect_rc(scram_client_verify_final(&c, u8(RFC_SERVER_FINAL),
						    strlen(RFC_SERVER_FINAL)),
			  SCRAM_ERR_STATE, "after failure");
	}

	/* The right signature for a different password. */
	scram_client c;
	char final[256];
	rfc_client(&c, "pencil2", 7);
	expect_rc(client_final_of(&c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), final,
				  sizeof final),
		  SCRAM_OK, "final");
	assert_string_not_equal(final, RFC_CLIENT_FINAL);
	expect_rc(scram_client_verify_final(&c, u8(RFC_SERVER_FINAL), strlen(RFC_SERVER_FINAL)),
		  SCRAM_ERR_VERIFY, "other password");
}

typedef struct bad_message {
	const char *text;
	size_t len; /* 0: strlen(text) */
	int rc;
} bad_message;

#define SALT ",s=" RFC_SALT
#define NONCE "r=" RFC_FULL_NONCE

static const bad_message bad_server_first[] = {
	{"", 0, SCRAM_ERR_SYNTAX},
	{",", 0, SCRAM_ERR_SYNTAX},
	/* missing attributes */
	{"s=" RFC_SALT ",i=4096", 0, SCRAM_ERR_SYNTAX},
	{NONCE ",i=4096", 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT, 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=", 0, SCRAM_ERR_SYNTAX},
	{"r=" SALT ",i=4096", 0, SCRAM_ERR_SYNTAX},
	{NONCE ",s=,i=4096", 0, SCRAM_ERR_SYNTAX},
	{NONCE ",s" RFC_SALT ",i=4096", 0, SCRAM_ERR_SYNTAX},
	/* iteration counts */
	{NONCE SALT ",i=0", 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=04096", 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=-1", 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=+4096", 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=4096x", 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i= 4096", 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=99999999999", 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=2147483648", 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=9999999999", 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=2147483647", 0, SCRAM_ERR_ITERATIONS},
	{NONCE SALT ",i=10000001", 0, SCRAM_ERR_ITERATIONS},
	/* nonces */
	{"r=" RFC_NONCE SALT ",i=4096", 0, SCRAM_ERR_NONCE}, /* nothing added by the server */
	{"r=rOprNGfwEbeRWgbNEkqX%hvYDpWUa2RaTCAfuxFIlj" SALT ",i=4096", 0, SCRAM_ERR_NONCE},
	{"r=hvYDpWUa2RaTCAfuxFIlj)hNlF$k0" RFC_NONCE SALT ",i=4096", 0, SCRAM_ERR_NONCE},
	{"r=rOprNGfwEbeRWgbNEk" SALT ",i=4096", 0, SCRAM_ERR_NONCE}, /* shorter than ours */
	{"r=" RFC_NONCE " x" SALT ",i=4096", 0, SCRAM_ERR_SYNTAX},	   /* space */
	{"r=" RFC_NONCE "\x7f" SALT ",i=4096", 0, SCRAM_ERR_SYNTAX},
	{"r=" RFC_NONCE "\xc3\xa9" SALT ",i=4096", 0, SCRAM_ERR_SYNTAX},
	/* salts */
	{NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096", 0, SCRAM_ERR_SYNTAX},
	{NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ,i=4096", 0, SCRAM_ERR_SYNTAX},
	{NONCE ",s=W22ZaJ0SNY7soEsUEjb6g===,i=4096", 0, SCRAM_ERR_SYNTAX},
	{NONCE ",s=W22Z=J0SNY7soEsUEjb6gQ==,i=4096", 0, SCRAM_ERR_SYNTAX},
	{NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==AAAA,i=4096", 0, SCRAM_ERR_SYNTAX},
	{NONCE ",s=W22ZaJ0SNY7s-EsUEjb6gQ==,i=4096", 0, SCRAM_ERR_SYNTAX},
	{NONCE ",s=W22ZaJ0SNY7s_EsUEjb6gQ==,i=4096", 0, SCRAM_ERR_SYNTAX},
	{NONCE ",s=====,i=4096", 0, SCRAM_ERR_SYNTAX},
	{NONCE ",s=*,i=4096", 0, SCRAM_ERR_SYNTAX},
	/* repeated, misplaced, reordered */
	{NONCE "," NONCE SALT ",i=4096", 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT SALT ",i=4096", 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=4096,i=4096", 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=4096,r=x", 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=4096,s=" RFC_SALT, 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=4096,m=x", 0, SCRAM_ERR_SYNTAX},
	{"s=" RFC_SALT "," NONCE ",i=4096", 0, SCRAM_ERR_SYNTAX},
	{NONCE ",i=4096" SALT, 0, SCRAM_ERR_SYNTAX},
	{"i=4096," NONCE SALT, 0, SCRAM_ERR_SYNTAX},
	{"R=" RFC_FULL_NONCE SALT ",i=4096", 0, SCRAM_ERR_SYNTAX},
	{" " NONCE SALT ",i=4096", 0, SCRAM_ERR_SYNTAX},
	{"x=1," NONCE SALT ",i=4096", 0, SCRAM_ERR_SYNTAX},
	/* trailing garbage, empty extensions */
	{NONCE SALT ",i=4096,", 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=4096,,", 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=4096,x", 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=4096,x=", 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=4096,x=1,", 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=4096,xy=1", 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=4096 ", 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=4096\n", 0, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=4096,x=\xc3", 0, SCRAM_ERR_SYNTAX},	    /* cut UTF-8 */
	{NONCE SALT ",i=4096,x=\xc0\xaf", 0, SCRAM_ERR_SYNTAX},	    /* overlong */
	{NONCE SALT ",i=4096,x=\xed\xa0\x80", 0, SCRAM_ERR_SYNTAX}, /* surrogate */
	/* embedded and trailing NUL */
	{NONCE SALT ",i=4096\0", sizeof(NONCE SALT ",i=4096"), SCRAM_ERR_SYNTAX},
	{"r=" RFC_NONCE "\0x" SALT ",i=4096", sizeof("r=" RFC_NONCE "\0x" SALT ",i=4096") - 1,
	 SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=40\0" "96", sizeof(NONCE SALT ",i=40\0" "96") - 1, SCRAM_ERR_SYNTAX},
	{NONCE SALT ",i=4096,x=a\0b", sizeof(NONCE SALT ",i=4096,x=a\0b") - 1, SCRAM_ERR_SYNTAX},
	/* server-final attributes, or an error, where server-first is due */
	{"e=other-error", 0, SCRAM_ERR_SYNTAX},
	{RFC_SERVER_FINAL, 0, SCRAM_ERR_SYNTAX},
	/* a mandatory extension the client does not know */
	{"m=ext," NONCE SALT ",i=4096", 0, SCRAM_ERR_MEXT},
	/* 200 bytes of salt */
	{NONCE ",s="
	       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA,i=4096",
	 0, SCRAM_ERR_SALT},
};

static void test_bad_server_first(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof bad_server_first / sizeof bad_server_first[0]; i++) {
		const bad_message *b = &bad_server_first[i];
		size_t n = b->len ? b->len : strlen(b->text);
		scram_client c;
		char final[256], what[400];
		snprintf(what, sizeof what, "server-first #%zu \"%s\"", i, b->text);
		rfc_client(&c, RFC_PASSWORD, strlen(RFC_PASSWORD));
		expect_rc(client_final_of(&c, b->text, n, final, sizeof final), b->rc, what);
		assert_int_equal(c.state, SCRAM_CLIENT_FAILED);
		assert_int_equal(c.password_len, 0);
		/* A failed exchange stays failed, even given the right message. */
		expect_rc(client_final_of(&c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), final,
					  sizeof final),
			  SCRAM_ERR_STATE, what);
	}
}

static void test_good_server_first_variants(void **state)
{
	(void)state;
	static const char *const good[] = {
		NONCE SALT ",i=4096,x=1",
		NONCE SALT ",i=4096,x=a=b,Y=\xc3\xa9\xf0\x9f\x98\x80,z=\x7f",
		NONCE SALT ",i=1",
		NONCE ",s=AA==,i=4096",
		NONCE ",s=AAA=,i=4096",
		NONCE ",s=AAAA,i=4096",
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		scram_client c;
		char final[256];
		rfc_client(&c, RFC_PASSWORD, strlen(RFC_PASSWORD));
		expect_rc(client_final_of(&c, good[i], strlen(good[i]), final, sizeof final),
			  SCRAM_OK, good[i]);
	}
}

static void test_parse_server_first_views(void **state)
{
	(void)state;
	static const char msg[] = "m=mx," NONCE SALT ",i=2147483647,x=1,y=2";
	scram_server_first_msg m;
	expect_rc(scram_parse_server_first(u8(msg), strlen(msg), &m), SCRAM_OK, "parse");
	expect_view(m.reserved_mext, "mx", "m");
	expect_view(m.nonce, RFC_FULL_NONCE, "r");
	expect_view(m.salt, RFC_SALT, "s");
	assert_int_equal(m.iterations, 2147483647);
	expect_view(m.extensions, "x=1,y=2", "extensions");

	expect_rc(scram_parse_server_first(u8(RFC_SERVER_FIRST), strlen(RFC_SERVER_FIRST), &m),
		  SCRAM_OK, "rfc");
	expect_view(m.reserved_mext, NULL, "m");
	expect_view(m.extensions, NULL, "extensions");
	assert_int_equal(m.iterations, 4096);

	/* A failed parse leaves nothing behind. */
	expect_rc(scram_parse_server_first(u8("r=a,s=AAAA,i=0"), 14, &m), SCRAM_ERR_SYNTAX, "i=0");
	expect_view(m.nonce, NULL, "r after failure");
	expect_rc(scram_parse_server_first(NULL, 0, &m), SCRAM_ERR_SYNTAX, "NULL");
}

static const bad_message bad_server_final[] = {
	{"", 0, SCRAM_ERR_SYNTAX},
	{"v=", 0, SCRAM_ERR_SYNTAX},
	{"v", 0, SCRAM_ERR_SYNTAX},
	{"v=abc", 0, SCRAM_ERR_SYNTAX},
	{"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4", 0, SCRAM_ERR_SYNTAX},
	{"V=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", 0, SCRAM_ERR_SYNTAX},
	{RFC_SERVER_FINAL ",", 0, SCRAM_ERR_SYNTAX},
	{RFC_SERVER_FINAL " ", 0, SCRAM_ERR_SYNTAX},
	{RFC_SERVER_FINAL "\0", sizeof RFC_SERVER_FINAL, SCRAM_ERR_SYNTAX},
	{"v=6rriTRBi23WpRR/wtup+mM\0hUZUn/dB5nLTJRsjl95G4=",
	 sizeof "v=6rriTRBi23WpRR/wtup+mM\0hUZUn/dB5nLTJRsjl95G4=" - 1, SCRAM_ERR_SYNTAX},
	{RFC_SERVER_FINAL "," RFC_SERVER_FINAL, 0, SCRAM_ERR_SYNTAX},
	{RFC_SERVER_FINAL ",e=oops", 0, SCRAM_ERR_SYNTAX},
	{"e=oops," RFC_SERVER_FINAL, 0, SCRAM_ERR_SYNTAX},
	{"e=", 0, SCRAM_ERR_SYNTAX},
	{"x=1," RFC_SERVER_FINAL, 0, SCRAM_ERR_SYNTAX},
	{RFC_SERVER_FIRST, 0, SCRAM_ERR_SYNTAX},
	/* server-error: the exchange fails, the reason is kept */
	{"e=invalid-proof", 0, SCRAM_ERR_SERVER},
	{"e=other-error,x=1", 0, SCRAM_ERR_SERVER},
	/* a good signature followed by an extension is still good */
	{RFC_SERVER_FINAL ",x=1", 0, SCRAM_OK},
};

static void test_bad_server_final(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof bad_server_final / sizeof bad_server_final[0]; i++) {
		const bad_message *b = &bad_server_final[i];
		size_t n = b->len ? b->len : strlen(b->text);
		scram_client c;
		char final[256], what[400];
		snprintf(what, sizeof what, "server-final #%zu \"%s\"", i, b->text);
		rfc_client(&c, RFC_PASSWORD, strlen(RFC_PASSWORD));
		expect_rc(client_final_of(&c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), final,
					  sizeof final),
			  SCRAM_OK, what);
		expect_rc(scram_client_verify_final(&c, u8(b->text), n), b->rc, what);
		assert_int_equal(c.state,
				 b->rc == SCRAM_OK ? SCRAM_CLIENT_DONE : SCRAM_CLIENT_FAILED);
	}

	scram_client c;
	char final[256];
	rfc_client(&c, RFC_PASSWORD, strlen(RFC_PASSWORD));
	expect_rc(client_final_of(&c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), final,
				  sizeof final),
		  SCRAM_OK, "final");
	static const char e[] = "e=invalid-proof\x01";
	expect_rc(scram_client_verify_final(&c, u8(e), strlen(e)), SCRAM_ERR_SERVER, "e=");
	assert_string_equal(c.server_error, "invalid-proof?");
}

static void test_order_and_buffers(void **state)
{
	(void)state;
	scram_client c;
	char out[256];
	size_t len;

	/* Zeroed memory is not an initialized client. */
	memset(&c, 0, sizeof c);
	expect_rc(scram_client_first(&c, out, sizeof out, &len), SCRAM_ERR_STATE, "no init");

	/* final before first */
	expect_rc(scram_client_init(&c, "pw", 2), SCRAM_OK, "init");
	expect_rc(client_final_of(&c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), out, sizeof out),
		  SCRAM_ERR_STATE, "final before first");

	/* verify before final */
	rfc_client(&c, RFC_PASSWORD, strlen(RFC_PASSWORD));
	expect_rc(scram_client_verify_final(&c, u8(RFC_SERVER_FINAL), strlen(RFC_SERVER_FINAL)),
		  SCRAM_ERR_STATE, "verify before final");

	/* The test hook only before client-first. */
	rfc_client(&c, RFC_PASSWORD, strlen(RFC_PASSWORD));
	expect_rc(scram_client_set_test_params(&c, NULL, 0, "abc", 3), SCRAM_ERR_STATE,
		  "late hook");
	expect_rc(scram_client_init(&c, "pw", 2), SCRAM_OK, "init");
	expect_rc(scram_client_set_test_params(&c, NULL, 0, "a,b", 3), SCRAM_ERR_ARG, "comma");
	expect_rc(scram_client_init(&c, "pw", 2), SCRAM_OK, "init");
	expect_rc(scram_client_set_test_params(&c, NULL, 0, "", 0), SCRAM_ERR_ARG, "empty nonce");

	/* Output buffers: exact fit works, one byte less does not. */
	size_t need = strlen("n,,n=user,r=" RFC_NONCE) + 1;
	expect_rc(scram_client_init(&c, RFC_PASSWORD, 6), SCRAM_OK, "init");
	expect_rc(scram_client_set_test_params(&c, "user", 4, RFC_NONCE, strlen(RFC_NONCE)),
		  SCRAM_OK, "hook");
	expect_rc(scram_client_first(&c, out, need - 1, &len), SCRAM_ERR_SPACE, "first too small");
	expect_rc(scram_client_init(&c, RFC_PASSWORD, 6), SCRAM_OK, "init");
	expect_rc(scram_client_set_test_params(&c, "user", 4, RFC_NONCE, strlen(RFC_NONCE)),
		  SCRAM_OK, "hook");
	expect_rc(scram_client_first(&c, out, need, &len), SCRAM_OK, "first exact");

	need = strlen(RFC_CLIENT_FINAL) + 1;
	expect_rc(client_final_of(&c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), out, need - 1),
		  SCRAM_ERR_SPACE, "final too small");
	rfc_client(&c, RFC_PASSWORD, strlen(RFC_PASSWORD));
	expect_rc(client_final_of(&c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), out, need),
		  SCRAM_OK, "final exact");
	assert_string_equal(out, RFC_CLIENT_FINAL);
}

static void test_passwords(void **state)
{
	(void)state;
	static char long_pw[SCRAM_MAX_PASSWORD + 1];
	scram_client c;
	memset(long_pw, 'x', sizeof long_pw);
	expect_rc(scram_client_init(&c, long_pw, SCRAM_MAX_PASSWORD), SCRAM_OK, "max length");
	expect_rc(scram_client_init(&c, long_pw, SCRAM_MAX_PASSWORD + 1), SCRAM_ERR_PASSWORD,
		  "too long");
	expect_rc(scram_client_init(&c, "pen\0cil", 7), SCRAM_ERR_PASSWORD, "NUL");
	assert_int_equal(c.state, SCRAM_CLIENT_FAILED);

	/* SASLprep happens in init: a soft hyphen and a zero-width joiner are
	 * mapped to nothing, so this is "pencil" to the server. */
	char final[256];
	static const char soft[] = "pen\xc2\xad"
				   "ci\xe2\x80\x8dl";
	rfc_client(&c, soft, strlen(soft));
	expect_rc(client_final_of(&c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), final,
				  sizeof final),
		  SCRAM_OK, "final");
	assert_string_equal(final, RFC_CLIENT_FINAL);
}

static void expect_prep(const char *in, size_t len, const char *want, size_t want_len)
{
	char out[64];
	size_t out_len = 999;
	scram_saslprep(in, len, out, &out_len);
	if (out_len != want_len || memcmp(out, want, want_len) != 0)
		fail_msg("saslprep(\"%.*s\"): expected \"%.*s\", got \"%.*s\"", (int)len, in,
			 (int)want_len, want, (int)out_len, out);
}

#define PREP(in, want) expect_prep(in, sizeof(in) - 1, want, sizeof(want) - 1)
#define SAME(in) expect_prep(in, sizeof(in) - 1, in, sizeof(in) - 1)

static void test_saslprep(void **state)
{
	(void)state;
	/* ASCII: exact, control characters and all */
	SAME("pencil");
	SAME("a\tb\x7f c");
	SAME("");
	/* non-ASCII spaces become SPACE */
	PREP("a\xc2\xa0" "b", "a b");
	PREP("a\xe3\x80\x80" "b\xe2\x80\x8b" "c", "a b c"); /* U+3000, U+200B */
	/* commonly mapped to nothing */
	PREP("pa\xc2\xad" "ss", "pass");
	PREP("\xe2\x9d\xa4\xef\xb8\x8f", "\xe2\x9d\xa4"); /* heart + VS16 */
	/* non-ASCII that maps to itself */
	SAME("p\xc3\xa4ssw\xc3\xb6rd");
	SAME("\xd0\xbf\xd0\xb0\xd1\x80\xd0\xbe\xd0\xbb\xd1\x8c");
	/* invalid UTF-8: as is */
	SAME("a\xc2\xa0\xc3\x28");
	SAME("a\xc2\xa0\xc0\xa0"); /* overlong */
	SAME("a\xc2\xa0\xed\xa0\x80"); /* surrogate */
	SAME("a\xc2\xa0\xf4\x90\x80\x80"); /* past U+10FFFF */
	SAME("a\xc2\xa0\xe2\x80"); /* cut short */
	/* prohibited after mapping: as is */
	SAME("a\xc2\xa0\xc2\x80"); /* C.2.2 control */
	SAME("a\xc2\xa0\t");	    /* C.2.1 control, in a non-ASCII password */
	SAME("a\xc2\xa0\xee\x80\x80"); /* C.3 private use */
	/* unassigned in Unicode 3.2 (an emoji ZWJ sequence keeps its ZWJ) */
	SAME("\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9");
	/* nothing left after mapping: as is */
	SAME("\xc2\xad");
	/* bidi: R/AL with L, or not R/AL at both ends: as is */
	SAME("\xd7\x90\xc2\xa0" "a\xd7\x91");
	SAME("1\xd7\x90\xc2\xa0\xd7\x91");
	PREP("\xd7\x90\xc2\xa0\xd7\x91", "\xd7\x90 \xd7\x91");
	PREP("\xd7\x90\xc2\xa0" "1\xd7\x91", "\xd7\x90 1\xd7\x91");
}

static void test_keys(void **state)
{
	(void)state;
	/* RFC 7677: the verifier PostgreSQL would store for "pencil". */
	static const uint8_t salt[] = {0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e,
				       0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81};
	static const uint8_t want_salted[32] = {
		0xc4, 0xa4, 0x95, 0x10, 0x32, 0x3a, 0xb4, 0xf9, 0x52, 0xca, 0xc1,
		0xfa, 0x99, 0x44, 0x19, 0x39, 0xe7, 0x8e, 0xa7, 0x4d, 0x6b, 0xe8,
		0x1d, 0xdf, 0x70, 0x96, 0xe8, 0x75, 0x13, 0xdc, 0x61, 0x5d};
	static const uint8_t want_stored[32] = {
		0x58, 0x6e, 0x5d, 0xf2, 0x83, 0xe6, 0xdc, 0xeb, 0x5c, 0x3e, 0x79,
		0x1d, 0x8b, 0x85, 0x28, 0xec, 0x19, 0x1e, 0x66, 0x40, 0x45, 0xce,
		0x97, 0x17, 0x92, 0xe2, 0xe6, 0xb5, 0xbb, 0x13, 0xe2, 0xa6};
	static const uint8_t want_server[32] = {
		0xc1, 0xf3, 0xcb, 0xc1, 0xc1, 0x3a, 0x9d, 0x35, 0xa1, 0x4c, 0x09,
		0x90, 0xee, 0xd9, 0x76, 0x29, 0xea, 0x22, 0x58, 0x63, 0xe5, 0x66,
		0xa4, 0x31, 0x4a, 0xb9, 0x9f, 0x3f, 0x00, 0xe5, 0xd9, 0xd5};
	uint8_t salted[32], client_key[32], stored[32], server[32];
	expect_rc(scram_salted_password("pencil", 6, salt, sizeof salt, 4096, salted), SCRAM_OK,
		  "salted");
	assert_memory_equal(salted, want_salted, 32);
	expect_rc(scram_keys(salted, client_key, stored, server), SCRAM_OK, "keys");
	assert_memory_equal(stored, want_stored, 32);
	assert_memory_equal(server, want_server, 32);
	expect_rc(scram_salted_password("pencil", 6, salt, sizeof salt, 0, salted), SCRAM_ERR_ARG,
		  "0 iterations");
}

/* More client-first and client-final grammar, for the server side later. */
static void test_parse_client_messages(void **state)
{
	(void)state;
	scram_client_first_msg f;
	static const char first[] = "p=tls-server-end-point,a=ad=2Cmin,m=x,n=u=3D,r=abc,x=1";
	expect_rc(scram_parse_client_first(u8(first), strlen(first), &f), SCRAM_OK,
		  "full client-first");
	assert_int_equal(f.cbind_flag, 'p');
	expect_view(f.cbind_name, "tls-server-end-point", "cb-name");
	expect_view(f.authzid, "ad=2Cmin", "authzid");
	expect_view(f.bare, "m=x,n=u=3D,r=abc,x=1", "bare");
	expect_view(f.reserved_mext, "x", "m");
	expect_view(f.user, "u=3D", "user");
	expect_view(f.nonce, "abc", "nonce");
	expect_view(f.extensions, "x=1", "extensions");
	expect_rc(scram_parse_client_first(u8("y,,n=,r=x"), 9, &f), SCRAM_OK, "y");
	assert_int_equal(f.cbind_flag, 'y');
	expect_view(f.user, "", "empty user");
	expect_view(f.authzid, NULL, "no authzid");

	static const char *const bad_first[] = {
		"",
		"n,,",
		"n,n=,r=x",
		"x,,n=,r=x",
		"p,,n=,r=x",
		"p=,,n=,r=x",
		"p=a_b,,n=,r=x",
		"n,a=,n=,r=x",
		"n,,r=x",
		"n,,n=,r=",
		"n,,n=a=b,r=x",
		"n,,n=a=2c,r=x",
		"n,,n=a,b,r=x",
		"n,,n=,r=x,",
		"n,,n=,r=x,r=y",
		"n,,n=,n=,r=x",
		"n,,r=x,n=",
		"n,,n=,r=x,p=AAAA",
		"n,,m=,n=,r=x",
		"N,,n=,r=x",
	};
	for (size_t i = 0; i < sizeof bad_first / sizeof bad_first[0]; i++)
		expect_rc(scram_parse_client_first(u8(bad_first[i]), strlen(bad_first[i]), &f),
			  SCRAM_ERR_SYNTAX, bad_first[i]);

	scram_client_final_msg m;
	static const char final[] = "c=biws,r=abc,x=a=b,y=2,p=AAAA";
	expect_rc(scram_parse_client_final(u8(final), strlen(final), &m), SCRAM_OK, "final");
	expect_view(m.channel_binding, "biws", "c");
	expect_view(m.nonce, "abc", "r");
	expect_view(m.extensions, "x=a=b,y=2", "extensions");
	expect_view(m.without_proof, "c=biws,r=abc,x=a=b,y=2", "without proof");
	expect_view(m.proof, "AAAA", "p");

	static const char *const bad_final[] = {
		"",
		"c=biws,r=abc",
		"r=abc,p=AAAA",
		"c=biws,p=AAAA",
		"c=,r=abc,p=AAAA",
		"c=biws,r=abc,p=",
		"c=biws,r=abc,p=AAA",
		"c=biws,p=AAAA,r=abc",
		"c=biws,r=abc,p=AAAA,p=AAAA",
		"c=biws,r=abc,p=AAAA,x=1",
		"c=biws,c=biws,r=abc,p=AAAA",
		"c=biws,r=abc,r=abc,p=AAAA",
		"c=biws,r=abc,,p=AAAA",
		"c=biws,r=abc,p=AAAA,",
		"m=x,c=biws,r=abc,p=AAAA",
	};
	for (size_t i = 0; i < sizeof bad_final / sizeof bad_final[0]; i++)
		expect_rc(scram_parse_client_final(u8(bad_final[i]), strlen(bad_final[i]), &m),
			  SCRAM_ERR_SYNTAX, bad_final[i]);

	scram_server_final_msg s;
	expect_rc(scram_parse_server_final(u8("e=unknown-user,x=1"), 18, &s), SCRAM_OK, "e=");
	expect_view(s.error, "unknown-user", "error");
	expect_view(s.verifier, NULL, "verifier");
	expect_view(s.extensions, "x=1", "extensions");
}

static void test_md5(void **state)
{
	(void)state;
	static const uint8_t salt[4] = {1, 2, 3, 4};
	char out[PGMD5_PASSWORD_SIZE];
	memset(out, 'X', sizeof out);
	/* Python: "md5" + md5(md5(b"secretalice").hexdigest().encode() + salt) */
	assert_int_equal(pgmd5_password("alice", 5, "secret", 6, salt, out), 0);
	assert_string_equal(out, "md598a0412b9c31436fc53776e863350083");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc7677_vector),
		cmocka_unit_test(test_postgres_shape_vector),
		cmocka_unit_test(test_random_client_first),
		cmocka_unit_test(test_user_escaping),
		cmocka_unit_test(test_wrong_server_signature),
		cmocka_unit_test(test_bad_server_first),
		cmocka_unit_test(test_good_server_first_variants),
		cmocka_unit_test(test_parse_server_first_views),
		cmocka_unit_test(test_bad_server_final),
		cmocka_unit_test(test_order_and_buffers),
		cmocka_unit_test(test_passwords),
		cmocka_unit_test(test_saslprep),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_parse_client_messages),
		cmocka_unit_test(test_md5),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
