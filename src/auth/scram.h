/*
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it: the client
 * side the pooler logs in to servers with, the key derivations for SCRAM
 * pass-through, and the attribute parser (grammar/scram_attrs.rl).
 */
#ifndef PGW_AUTH_SCRAM_H
#define PGW_AUTH_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCRAM_KEY_LEN 32
/* Longest password the client keeps (in bytes; SASLprep never makes it
 * longer), so that scram_client stays fixed-size. */
#define SCRAM_MAX_PASSWORD 1024
/* Random bytes in the client nonce: 32 base64 characters, no padding
 * (libpq uses 18). */
#define SCRAM_RAW_NONCE_LEN 24
#define SCRAM_MAX_NONCE 64 /* client nonce characters (the test hook can set one) */
#define SCRAM_MAX_USER 63  /* PostgreSQL's NAMEDATALEN - 1 */
/*
 * Highest iteration count the client accepts from a server. PostgreSQL
 * uses 4096 by default and 16+ lets scram_iterations go to INT_MAX; ten
 * million leaves room for any sane setting (OWASP 2023 says 600,000) while
 * a hostile or broken server can make one login burn a few seconds of
 * CPU at most (PBKDF2 took 0.47 s per million iterations where this was
 * written), not minutes.
 */
#define SCRAM_MAX_ITERATIONS 10000000
/* Longest salt accepted (decoded). PostgreSQL's are 16 bytes. */
#define SCRAM_MAX_SALT 128
/* Longest channel binding data: tls-server-end-point is a certificate
 * hash, SHA-512 at most (EVP_MAX_MD_SIZE). */
#define SCRAM_MAX_CB_DATA 64
/* base64 length of n bytes, padding included. */
#define SCRAM_B64_LEN(n) (((n) + 2) / 3 * 4)

/* What every function here returns: 0, or a negative reason. */
typedef enum scram_status {
	SCRAM_OK = 0,
	SCRAM_ERR_SYNTAX = -1,	   /* not RFC 5802 attribute syntax */
	SCRAM_ERR_MEXT = -2,	   /* m= (mandatory extension): RFC 5802 says fail */
	SCRAM_ERR_NONCE = -3,	   /* the server nonce does not extend ours */
	SCRAM_ERR_ITERATIONS = -4, /* over SCRAM_MAX_ITERATIONS */
	SCRAM_ERR_SALT = -5,	   /* salt longer than SCRAM_MAX_SALT */
	SCRAM_ERR_SERVER = -6,	   /* server-final carried e=<error> */
	SCRAM_ERR_VERIFY = -7,	   /* wrong server signature: not the real server */
	SCRAM_ERR_SPACE = -8,	   /* the output buffer is too small */
	SCRAM_ERR_STATE = -9,	   /* called out of order, or after a failure */
	SCRAM_ERR_PASSWORD = -10,  /* longer than SCRAM_MAX_PASSWORD, or has a NUL */
	SCRAM_ERR_ARG = -11,	   /* bad argument (test hook values, iterations < 1) */
	SCRAM_ERR_CRYPTO = -12,	   /* OpenSSL failed (out of memory, no provider) */
} scram_status;

const char *scram_strerror(int status);

/* ---- attribute parser (grammar/scram_attrs.rl) -------------------------
 *
 * Each function checks a whole message against its RFC 5802 production
 * and returns SCRAM_OK with views into msg, or SCRAM_ERR_SYNTAX. Beyond
 * the RFC grammar: a value may not be empty (except n=, which libpq sends
 * empty), the iteration count is 1..INT32_MAX with at most 10 digits, and
 * an extension may not use a letter SCRAM defines (a c e i m n p r s v),
 * so a repeated or misplaced attribute is an error. Values are not
 * decoded: base64 stays base64, saslnames keep their =2C/=3D escapes.
 */

/* A piece of the message; ptr NULL and len 0 when absent. */
typedef struct scram_view {
	const uint8_t *ptr;
	size_t len;
} scram_view;

typedef struct scram_server_first_msg {
	scram_view reserved_mext; /* m= */
	scram_view nonce;	  /* r=: client nonce + server nonce */
	scram_view salt;	  /* s=, base64 */
	int32_t iterations;	  /* i= */
	scram_view extensions;	  /* after "i=...,": "x=a,y=b" */
} scram_server_first_msg;

typedef struct scram_server_final_msg {
	scram_view verifier; /* v=, base64; or */
	scram_view error;    /* e= */
	scram_view extensions;
} scram_server_final_msg;

typedef struct scram_client_first_msg {
	uint8_t cbind_flag;	  /* 'n', 'y' or 'p' */
	scram_view cbind_name;	  /* with 'p': p=<name> */
	scram_view authzid;	  /* a= */
	scram_view bare;	  /* client-first-message-bare, for the AuthMessage */
	scram_view reserved_mext; /* m= */
	scram_view user;	  /* n=, may be empty (libpq) */
	scram_view nonce;	  /* r= */
	scram_view extensions;
} scram_client_first_msg;

typedef struct scram_client_final_msg {
	scram_view channel_binding; /* c=, base64 */
	scram_view nonce;	    /* r= */
	scram_view extensions;
	scram_view without_proof; /* client-final-message-without-proof, for the AuthMessage */
	scram_view proof;	  /* p=, base64 */
} scram_client_final_msg;

int scram_parse_server_first(const uint8_t *msg, size_t len, scram_server_first_msg *out);
int scram_parse_server_final(const uint8_t *msg, size_t len, scram_server_final_msg *out);
int scram_parse_client_first(const uint8_t *msg, size_t len, scram_client_first_msg *out);
int scram_parse_client_final(const uint8_t *msg, size_t len, scram_client_final_msg *out);

/* ---- key derivation (for pass-through) ---------------------------------- */

/*
 * The password exactly as PostgreSQL hashes it: SASLprep'd (RFC 4013, as
 * pg_saslprep does it), or unchanged when it is not valid UTF-8 or SASLprep
 * prohibits it, which is what both libpq and the server fall back to.
 * NFKC normalization is not done, see scram.c. out needs len bytes (the
 * result is never longer); it is not NUL-terminated.
 */
void scram_saslprep(const char *password, size_t len, char *out, size_t *out_len);

/* SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations). The
 * password is used as given: prepare it with scram_saslprep first. */
int scram_salted_password(const char *password, size_t len, const uint8_t *salt, size_t salt_len,
			  int iterations, uint8_t out[SCRAM_KEY_LEN]);

/* ClientKey = HMAC(salted, "Client Key"), StoredKey = H(ClientKey),
 * ServerKey = HMAC(salted, "Server Key"). Returns SCRAM_OK or
 * SCRAM_ERR_CRYPTO (the outputs are then zeroed). */
int scram_keys(const uint8_t salted[SCRAM_KEY_LEN], uint8_t client_key[SCRAM_KEY_LEN],
	       uint8_t stored_key[SCRAM_KEY_LEN], uint8_t server_key[SCRAM_KEY_LEN]);

/* ---- pieces scram_server.c shares -------------------------------------- */

/* RFC 4648 base64 with padding into out (SCRAM_B64_LEN(n) bytes, no NUL);
 * returns the length written. */
size_t scram_b64_encode(const uint8_t *in, size_t n, char *out);
/* Strict decode into out[0..cap): SCRAM_ERR_SYNTAX on a bad character,
 * length or padding, SCRAM_ERR_SPACE when the result is over cap. Bits
 * left over in the last character are not checked. */
int scram_b64_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len);
/* HMAC-SHA-256 of the concatenated parts (at most 8). */
int scram_hmac_sha256(const uint8_t *key, size_t key_len, const scram_view *parts, size_t nparts,
		      uint8_t out[SCRAM_KEY_LEN]);
/* H(): SHA-256. */
int scram_sha256(const uint8_t *in, size_t n, uint8_t out[SCRAM_KEY_LEN]);

/* ---- the client ------------------------------------------------------------ */

typedef enum scram_client_state {
	SCRAM_CLIENT_NEW = 0, /* zeroed memory: scram_client_init not called */
	SCRAM_CLIENT_READY,   /* init done: client-first next */
	SCRAM_CLIENT_FIRST_SENT,
	SCRAM_CLIENT_FINAL_SENT,
	SCRAM_CLIENT_DONE,   /* the server proved it knows the password */
	SCRAM_CLIENT_FAILED, /* any error: secrets wiped, every call fails */
} scram_client_state;

/* One login. Fixed size, no allocation; wiped as it goes. */
typedef struct scram_client {
	scram_client_state state;
	size_t password_len;
	size_t nonce_len;
	size_t user_len;
	char password[SCRAM_MAX_PASSWORD]; /* after SASLprep; wiped after client-final */
	char nonce[SCRAM_MAX_NONCE];	   /* client nonce, printable */
	char user[SCRAM_MAX_USER];	   /* n=, raw; empty unless the test hook set it */
	uint8_t server_signature[SCRAM_KEY_LEN];
	char server_error[64]; /* e= text after SCRAM_ERR_SERVER, NUL-terminated */
	/* scram_client_init_keys: the proof comes from these, not a password;
	 * wiped after client-final like the password. */
	bool have_keys;
	uint8_t client_key[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN];
	/* scram_client_set_channel_binding: SCRAM-SHA-256-PLUS with
	 * tls-server-end-point; cb_len 0 is plain SCRAM-SHA-256 ("n,,"). */
	size_t cb_len;
	uint8_t cb_data[SCRAM_MAX_CB_DATA];
} scram_client;

/* Prepare the password (scram_saslprep) and a random nonce. */
int scram_client_init(scram_client *c, const char *password, size_t password_len);

/*
 * SCRAM pass-through: log in with the ClientKey and ServerKey a
 * scram_server exchange recovered (scram_server_client_key) instead of a
 * password. The server's salt and iteration count are then only checked
 * to be well-formed (no PBKDF2 is run, so SCRAM_MAX_ITERATIONS does not
 * apply); the proof is ClientKey XOR HMAC(H(ClientKey), AuthMessage) and
 * v= is checked with ServerKey. It works when the server holds the same
 * verifier the keys came from.
 */
int scram_client_init_keys(scram_client *c, const uint8_t client_key[SCRAM_KEY_LEN],
			   const uint8_t server_key[SCRAM_KEY_LEN]);

/*
 * After either init and before scram_client_first: use channel binding
 * (the caller selects SCRAM-SHA-256-PLUS). cb_data is the
 * tls-server-end-point data of the server's certificate
 * (scram_tls_server_end_point, 1..SCRAM_MAX_CB_DATA bytes); the client
 * then sends "p=tls-server-end-point,," and c= covers the data.
 */
int scram_client_set_channel_binding(scram_client *c, const uint8_t *cb_data, size_t cb_len);

/* client-first-message: "n,,n=,r=<nonce>" ("p=tls-server-end-point,,n=,r=..."
 * with channel binding). PostgreSQL takes the user from
 * the startup packet and ignores n=, so it is empty, as libpq sends it.
 * out gets a NUL after the *out_len bytes (cap counts it). */
int scram_client_first(scram_client *c, char *out, size_t cap, size_t *out_len);

/* The server-first-message (AuthenticationSASLContinue data) in,
 * client-final-message "c=biws,r=<nonce>,p=<proof>" out. Checks that the
 * server nonce starts with ours and adds to it, that there is no m=, the
 * iteration count (1..SCRAM_MAX_ITERATIONS) and the salt. */
int scram_client_final(scram_client *c, const uint8_t *server_first, size_t n, char *out,
		       size_t cap, size_t *out_len);

/* The server-final-message (AuthenticationSASLFinal data): SCRAM_OK only
 * when v= is the server signature (compared in constant time). */
int scram_client_verify_final(scram_client *c, const uint8_t *server_final, size_t n);

/*
 * Tests only: after scram_client_init and before scram_client_first, use
 * this nonce (1..SCRAM_MAX_NONCE printable characters, no ',') and user
 * name (0..SCRAM_MAX_USER bytes, no NUL) instead of a random nonce and an
 * empty name, to replay published test vectors.
 */
int scram_client_set_test_params(scram_client *c, const char *user, size_t user_len,
				 const char *nonce, size_t nonce_len);

#endif
