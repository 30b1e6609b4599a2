/*
 * SCRAM-SHA-256 and SCRAM-SHA-256-PLUS, server side, as PostgreSQL's
 * auth-scram.c runs them: stored verifiers, the exchange that lets the
 * gateway authenticate clients, and what SCRAM pass-through takes from it.
 */
#ifndef PGW_AUTH_SCRAM_SERVER_H
#define PGW_AUTH_SCRAM_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "auth/scram.h"

/* PostgreSQL's defaults for new verifiers (SCRAM_DEFAULT_ITERATIONS,
 * SCRAM_DEFAULT_SALT_LEN); the mock verifier uses them too. */
#define SCRAM_SERVER_ITERATIONS 4096
#define SCRAM_SERVER_SALT_LEN 16
/* Random bytes in the server's part of the nonce: 24 base64 characters,
 * PostgreSQL's SCRAM_RAW_NONCE_LEN (the client here uses more). */
#define SCRAM_SERVER_RAW_NONCE_LEN 18
/* Bytes of the secret that makes mock salts unguessable. */
#define SCRAM_MOCK_SECRET_LEN 16
/*
 * Longest client-first-message-bare kept for the AuthMessage (user,
 * nonce, extensions). libpq sends about 30 bytes and a 63-byte user
 * name escaped in full is 189; a longer message is refused as malformed,
 * which keeps scram_server fixed-size.
 */
#define SCRAM_SERVER_MAX_BARE 1024
/* server-first-message: "r=" nonce ",s=" salt ",i=" count. */
#define SCRAM_SERVER_MAX_FIRST (SCRAM_SERVER_MAX_BARE + SCRAM_B64_LEN(SCRAM_MAX_SALT) + 64)
/* "SCRAM-SHA-256$<10 digits>:<salt>$<44>:<44>" and a NUL. */
#define SCRAM_VERIFIER_MAX (14 + 10 + 1 + SCRAM_B64_LEN(SCRAM_MAX_SALT) + 1 + 44 + 1 + 44 + 1)

/* ---- stored secrets ------------------------------------------------------ */

/* What pg_authid.rolpassword (or an auth file) holds. */
typedef enum scram_secret_kind {
	SCRAM_SECRET_PLAINTEXT = 0, /* anything else: a password in the clear */
	SCRAM_SECRET_MD5,	    /* "md5" + 32 lowercase hex digits */
	SCRAM_SECRET_SCRAM,	    /* a verifier scram_verifier_parse accepts */
	/* Starts "SCRAM-SHA-256$" but does not parse. PostgreSQL's
	 * get_password_type calls this plaintext; it is kept apart here so
	 * that a damaged verifier is not taken for a password (treat it as no
	 * secret: scram_server_init_mock, and log it). */
	SCRAM_SECRET_BAD_SCRAM,
} scram_secret_kind;

scram_secret_kind scram_secret_type(const char *secret, size_t len);

/* A parsed "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>". */
typedef struct scram_verifier {
	int32_t iterations;
	size_t salt_len; /* decoded */
	uint8_t salt[SCRAM_MAX_SALT];
	size_t salt_b64_len; /* as stored: the server-first-message repeats it */
	char salt_b64[SCRAM_B64_LEN(SCRAM_MAX_SALT) + 1];
	uint8_t stored_key[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN];
} scram_verifier;

/*
 * Strict, unlike PostgreSQL's strtok/strtol parser: exactly that shape and
 * nothing after it; iterations in decimal without sign or leading zeros,
 * 1..INT32_MAX (whatever PostgreSQL stored it accepts: the client-side
 * SCRAM_MAX_ITERATIONS cap is not applied, this is our own secret); salt
 * 1..SCRAM_MAX_SALT bytes; both keys exactly 32 bytes; base64 with its
 * padding and canonical (it re-encodes to the same text). Returns
 * SCRAM_OK, or SCRAM_ERR_SYNTAX for anything else (out is then zeroed).
 */
int scram_verifier_parse(const char *secret, size_t len, scram_verifier *out);

/*
 * A verifier as PostgreSQL's pg_be_scram_build_secret makes one: the
 * password SASLprep'd (scram_saslprep), a random 16-byte salt, 4096
 * iterations. out gets SCRAM_VERIFIER_MAX bytes at most, NUL-terminated.
 * scram_verifier_build takes the salt and count, for tests and for
 * reproducing a known verifier. SCRAM_ERR_PASSWORD for a password over
 * SCRAM_MAX_PASSWORD or with a NUL.
 */
int scram_verifier_from_password(const char *password, size_t len, char *out, size_t cap,
				 size_t *out_len);
int scram_verifier_build(const char *password, size_t len, const uint8_t *salt, size_t salt_len,
			 int32_t iterations, char *out, size_t cap, size_t *out_len);

/* ---- channel binding ------------------------------------------------------- */

/*
 * tls-server-end-point data (RFC 5929 4.1) as PostgreSQL's
 * be_tls_get_certificate_hash makes it: the DER certificate hashed with
 * its signature's hash algorithm, SHA-256 when that is MD5 or SHA-1.
 * cert is the gateway's own certificate (SSL_CTX_get0_certificate /
 * SSL_get_certificate). A signature without a separate hash (Ed25519,
 * Ed448) has no tls-server-end-point: SCRAM_ERR_ARG, and the caller must
 * not offer SCRAM-SHA-256-PLUS, as PostgreSQL fails there too.
 * SCRAM_ERR_SPACE when cap is under the digest length (64 always fits).
 */
int scram_tls_server_end_point(X509 *cert, uint8_t *out, size_t cap, size_t *out_len);

/* ---- the exchange ------------------------------------------------------------
 *
 * The gateway's side of AuthenticationSASL:
 *
 *   scram_server_init (or _init_mock) with the user's secret;
 *   send AuthenticationSASL with scram_server_mechanisms;
 *   SASLInitialResponse: mechanism and data into scram_server_first, send
 *     its output as AuthenticationSASLContinue. When the message carries
 *     no data (length -1), PostgreSQL first sends an empty
 *     AuthenticationSASLContinue and takes the data from the next
 *     SASLResponse: do the same, then call scram_server_first;
 *   SASLResponse into scram_server_final, send its output as
 *     AuthenticationSASLFinal, then AuthenticationOk.
 *
 * Any failure ends the exchange (every later call is SCRAM_ERR_STATE);
 * send the error scram_server_describe gives, as FATAL, and close.
 */

/* Failures beyond scram_status, each one PostgreSQL's report. */
typedef enum scram_server_status {
	/* 28P01: wrong proof, or a mock exchange reaching its end. */
	SCRAM_SRV_AUTH_FAILED = -100,
	/* 08P01 "client selected an invalid SASL authentication mechanism":
	 * not SCRAM-SHA-256, or -PLUS without channel binding data. */
	SCRAM_SRV_MECHANISM = -101,
	/* 08P01 "malformed SCRAM message", with these details: */
	SCRAM_SRV_MALFORMED = -102, /* PostgreSQL's detail where its parser would
				     * have stopped at the same byte (scram_server
				     * keeps it), none where only the stricter
				     * RFC 5802 grammar here objects */
	SCRAM_SRV_EMPTY = -103,	    /* "The message is empty." */
	SCRAM_SRV_NUL = -104,	    /* "Message length does not match input length." */
	SCRAM_SRV_CB_NOT_SENT = -105,	/* -PLUS selected, flag n or y */
	SCRAM_SRV_CB_UNEXPECTED = -106, /* plain selected, flag p */
	SCRAM_SRV_NONPRINTABLE = -107,	/* 08P01 "non-printable characters in SCRAM nonce" */
	SCRAM_SRV_PROOF = -108,		/* "Malformed proof in client-final-message." */
	SCRAM_SRV_TOO_LONG = -109, /* over SCRAM_SERVER_MAX_BARE (ours, not PostgreSQL's) */
	/* 28000 "SCRAM channel binding negotiation error": flag y from a
	 * client while this server offers -PLUS. */
	SCRAM_SRV_CB_NEGOTIATION = -110,
	/* 08P01 "unsupported SCRAM channel-binding type \"%s\"" */
	SCRAM_SRV_CB_TYPE = -111,
	/* 0A000 "client uses authorization identity, but it is not supported" */
	SCRAM_SRV_AUTHZID = -112,
	/* 0A000 "client requires an unsupported SCRAM extension" (m=) */
	SCRAM_SRV_EXTENSION = -113,
	/* 08P01 "unexpected SCRAM channel-binding attribute in client-final-message":
	 * c= is not the gs2 header of client-first ("biws" / "eSws") */
	SCRAM_SRV_CB_ATTR = -114,
	/* 28000 "SCRAM channel binding check failed": -PLUS, c= does not
	 * cover this server's certificate hash */
	SCRAM_SRV_CB_CHECK = -115,
	/* 08P01 "invalid SCRAM response", "Nonce does not match." */
	SCRAM_SRV_NONCE = -116,
	/* scram_server_init: the secret is not a SCRAM verifier (md5,
	 * plaintext, damaged): run scram_server_init_mock instead. Never
	 * sent to a client. */
	SCRAM_SRV_NOT_SCRAM = -117,
} scram_server_status;

typedef enum scram_server_state {
	SCRAM_SERVER_NEW = 0, /* zeroed memory: no init */
	SCRAM_SERVER_READY,   /* client-first next */
	SCRAM_SERVER_FIRST_SENT,
	SCRAM_SERVER_DONE,   /* the client proved it; keys available */
	SCRAM_SERVER_FAILED, /* secrets wiped, every call fails */
} scram_server_state;

/* One exchange. Fixed size, no allocation; plain data. */
typedef struct scram_server {
	scram_server_state state;
	bool doomed;	 /* mock verifier: fails after the proof is computed */
	bool cb_offered; /* cb_data given: -PLUS is offered */
	bool cb_in_use;	 /* the client selected -PLUS */
	uint8_t cbind_flag;
	int32_t iterations;
	size_t salt_b64_len;
	size_t cb_len;
	size_t bare_len;
	size_t nonce_len; /* client + server nonce, at server_first + 2 */
	size_t server_nonce_len;
	size_t server_first_len;
	char salt_b64[SCRAM_B64_LEN(SCRAM_MAX_SALT)];
	uint8_t stored_key[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN];
	uint8_t client_key[SCRAM_KEY_LEN]; /* recovered from the proof once DONE */
	uint8_t cb_data[SCRAM_MAX_CB_DATA];
	char server_nonce[SCRAM_MAX_NONCE];
	char bare[SCRAM_SERVER_MAX_BARE];	  /* client-first-message-bare */
	char server_first[SCRAM_SERVER_MAX_FIRST]; /* as sent */
	/* For scram_server_describe: the detail of the last SCRAM_SRV_MALFORMED
	 * and the type SCRAM_SRV_CB_TYPE quotes, NUL-terminated. */
	char detail[96];
	char cb_type[31];
} scram_server;

/*
 * verifier: the user's stored secret; SCRAM_OK for a SCRAM-SHA-256
 * verifier, else SCRAM_SRV_NOT_SCRAM (the state is then FAILED: call
 * scram_server_init_mock, so an md5 or absent secret looks like a wrong
 * password). cb_data: the tls-server-end-point data of the gateway's
 * certificate (scram_tls_server_end_point) when the client connection is
 * TLS, which offers -PLUS; NULL and 0 otherwise.
 */
int scram_server_init(scram_server *s, const char *verifier, size_t len, const uint8_t *cb_data,
		      size_t cb_len);

/*
 * For an unknown user or one without a SCRAM verifier, as PostgreSQL's
 * mock_scram_secret: salt = the first 16 bytes of SHA-256(user ||
 * mock_secret), 4096 iterations, so the server-first-message looks like a
 * real one and stays the same for a user across attempts. mock_secret is
 * SCRAM_MOCK_SECRET_LEN random bytes the gateway draws once at startup.
 * The exchange runs on, proof computed, and scram_server_final ends with
 * SCRAM_SRV_AUTH_FAILED like a wrong password. cb_data as for init: the
 * channel binding checks must not differ either.
 */
int scram_server_init_mock(scram_server *s, const char *user, size_t ulen,
			   const uint8_t mock_secret[SCRAM_MOCK_SECRET_LEN], const uint8_t *cb_data,
			   size_t cb_len);

/*
 * The AuthenticationSASL body: "SCRAM-SHA-256-PLUS\0" (when offered)
 * "SCRAM-SHA-256\0" and the list's closing "\0", as PostgreSQL orders
 * them. *len counts every byte.
 */
const char *scram_server_mechanisms(const scram_server *s, size_t *len);

/*
 * mechanism: the name from SASLInitialResponse (NUL-terminated), its data
 * in client_first. Checks the gs2 header as PostgreSQL does: 'n' or 'y'
 * with -PLUS is SCRAM_SRV_CB_NOT_SENT, 'y' when -PLUS is offered is
 * SCRAM_SRV_CB_NEGOTIATION, 'p' without -PLUS SCRAM_SRV_CB_UNEXPECTED and
 * any type but tls-server-end-point SCRAM_SRV_CB_TYPE; an authzid (a=) or
 * m= is refused; n= is ignored (the user is the startup packet's). out
 * gets "r=<client nonce><server nonce>,s=<salt>,i=<iterations>" and a
 * NUL (cap counts it).
 */
int scram_server_first(scram_server *s, const char *mechanism, const uint8_t *client_first,
		       size_t n, char *out, size_t cap, size_t *out_len);

/*
 * The client-final-message in, "v=<ServerSignature>" and a NUL out. c= must
 * be exactly the base64 of client-first's gs2 header (plus the binding
 * data with -PLUS), r= the nonce server-first sent, and
 * H(ClientProof XOR HMAC(StoredKey, AuthMessage)) equal StoredKey
 * (compared in constant time). Nothing is written on failure: PostgreSQL
 * sends no server-final then, only the error.
 */
int scram_server_final(scram_server *s, const uint8_t *client_final, size_t n, char *out,
		       size_t cap, size_t *out_len);

/* After SCRAM_SERVER_DONE: the ClientKey the client proved it holds and
 * the verifier's ServerKey, for scram_client_init_keys. */
int scram_server_client_key(const scram_server *s, uint8_t client_key[SCRAM_KEY_LEN],
			    uint8_t server_key[SCRAM_KEY_LEN]);

/* Wipe every secret; the exchange is then FAILED. */
void scram_server_wipe(scram_server *s);

/* ---- errors as PostgreSQL reports them -------------------------------------- */

/* The SQLSTATE: 28P01, 28000, 08P01, 0A000, or XX000 (internal: crypto,
 * buffers, calls out of order). */
const char *scram_server_sqlstate(int status);

/*
 * PostgreSQL's errmsg for status. SCRAM_SRV_AUTH_FAILED and
 * SCRAM_SRV_CB_TYPE quote a value into theirs; for those this is the text
 * before it ("password authentication failed for user", "unsupported
 * SCRAM channel-binding type"), and scram_server_describe gives the whole.
 */
const char *scram_server_error_text(int status);

/* PostgreSQL's errdetail, or NULL. */
const char *scram_server_error_detail(int status);

/* An ErrorResponse's worth. */
typedef struct scram_server_error {
	char sqlstate[6];
	char message[160]; /* NUL-terminated, truncated to fit */
	char detail[160];  /* empty when there is none */
} scram_server_error;

/*
 * Fill out for status the way PostgreSQL words it: user (the startup
 * packet's, ulen bytes) quoted into 28P01's message; the channel-binding
 * type and the MALFORMED detail from s (which may be NULL: they are then
 * left out). s must be the exchange that returned status.
 */
void scram_server_describe(const scram_server *s, int status, const char *user, size_t ulen,
			   scram_server_error *out);

/* Tests only: after init and before scram_server_first, use this server
 * nonce (1..SCRAM_MAX_NONCE printable characters, no ',') instead of a
 * random one, to replay published vectors. */
int scram_server_set_test_nonce(scram_server *s, const char *nonce, size_t len);

#endif
