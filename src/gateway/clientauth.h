/*
 * Client authentication: the rules (pg_hba.conf form) pick a method for
 * the connection, and the exchange runs as PostgreSQL runs it: trust,
 * reject, cleartext password, md5 (SCRAM when the stored secret is a
 * SCRAM verifier), SCRAM-SHA-256 and -PLUS, cert. What the client proves
 * is kept so the pooler can log in to PostgreSQL as that user without
 * the plaintext password (SCRAM keys, or the md5 hash).
 */
#ifndef PGW_CLIENTAUTH_H
#define PGW_CLIENTAUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "pgw/codec.h"

typedef struct client client;

typedef enum cauth_state {
	CAUTH_NONE = 0,
	CAUTH_PASSWORD,	    /* AuthenticationCleartextPassword sent */
	CAUTH_MD5,	    /* AuthenticationMD5Password sent */
	CAUTH_SASL_INITIAL, /* AuthenticationSASL sent */
	CAUTH_SASL_FIRST,   /* SASLInitialResponse came without data: it comes next */
	CAUTH_SASL_FINAL,   /* AuthenticationSASLContinue sent */
} cauth_state;

typedef struct client_auth {
	cauth_state state;
	int method;	     /* hba_method of the rule that matched */
	char *secret;	     /* the user's, from the auth file or pg_authid */
	struct authq *query; /* a pg_authid lookup in flight */
	uint8_t md5_salt[4];
	char mechanism[32]; /* chosen in SASLInitialResponse */
	struct scram_server *scram;
} client_auth;

/* The startup packet was good: decide how this client proves itself.
 * Ends in client_auth_ok, or a FATAL and a close. */
void client_auth_begin(client *cl);
/* A PasswordMessage / SASL message during the exchange. */
void client_auth_message(client *cl, const pgw_msg *m);
void client_auth_free(client_auth *a);

/* Called by clientauth.c when the client is in (client.c). */
void client_auth_ok(client *cl);
/* The user's secret is known (NULL: none); go on with the exchange. */
void client_auth_secret(client *cl, const char *secret, bool lookup_failed);

#endif
