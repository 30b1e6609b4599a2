/*
 * Client authentication, as PostgreSQL's ClientAuthentication: the first
 * rule that matches picks the method; failures are worded as PostgreSQL
 * words them (28P01 for a bad password, whether or not the user exists,
 * 28000 for rules and certificates).
 */
#include "gateway/clientauth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "auth/authfile.h"
#include "auth/hba.h"
#include "auth/pgmd5.h"
#include "auth/scram.h"
#include "auth/scram_server.h"
#include "common/log.h"
#include "gateway/authquery.h"
#include "gateway/client.h"
#include "gateway/replication.h"
#include "router/router.h"

void client_fatal(client *cl, const char *sqlstate, const char *msg, const char *detail);

static void password_failed(client *cl)
{
	char msg[200];
	snprintf(msg, sizeof msg, "password authentication failed for user \"%.63s\"", cl->user);
	client_fatal(cl, "28P01", msg, NULL);
}

static void send_auth_request(client *cl, int32_t code, const void *data, size_t len)
{
	pgw_wbuf *w = conn_wbuf(&cl->conn);
	size_t at = pgw_w_begin(w, 'R');
	pgw_w_i32(w, code);
	pgw_w_bytes(w, data, len);
	pgw_w_end(w, at);
	conn_wrote(&cl->conn);
}

/* What the pooler may log in with later, from what the client proved. */
static void keep_credentials(client *cl, const pool_credentials *c)
{
	pool_set_credentials(cl->pooler->impl, c);
}

static void start_scram(client *cl, const char *secret)
{
	gateway *gw = cl->gw->gw;
	client_auth *a = &cl->auth;
	a->scram = calloc(1, sizeof *a->scram);
	if (!a->scram) {
		client_fatal(cl, "53200", "out of memory", NULL);
		return;
	}
	/* -PLUS is offered on TLS connections whose certificate allows it. */
	const uint8_t *cb = cl->conn.ssl && gw->cb_len ? gw->cb_data : NULL;
	size_t cb_len = cb ? gw->cb_len : 0;
	bool real = secret && scram_secret_type(secret, strlen(secret)) == SCRAM_SECRET_SCRAM &&
		    scram_server_init(a->scram, secret, strlen(secret), cb, cb_len) == SCRAM_OK;
	if (!real &&
	    scram_server_init_mock(a->scram, cl->user, strlen(cl->user), gw->mock_secret, cb,
				   cb_len) != SCRAM_OK) {
		client_fatal(cl, "XX000", "could not start SCRAM authentication", NULL);
		return;
	}
	size_t len;
	const char *mechs = scram_server_mechanisms(a->scram, &len);
	send_auth_request(cl, 10, mechs, len);
	a->state = CAUTH_SASL_INITIAL;
	cl->dec.phase = PGW_PH_AUTH_SASL_INITIAL;
}

/* cert: a verified client certificate whose CN is the user name. */
static bool cert_matches(client *cl)
{
	if (!cl->conn.ssl)
		return false;
	X509 *peer = SSL_get1_peer_certificate(cl->conn.ssl);
	if (!peer)
		return false;
	bool ok = SSL_get_verify_result(cl->conn.ssl) == X509_V_OK;
	char cn[256] = "";
	if (ok && X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn,
					    sizeof cn) <= 0)
		ok = false;
	X509_free(peer);
	return ok && strcmp(cn, cl->user) == 0;
}

void client_auth_begin(client *cl)
{
	gateway *gw = cl->gw->gw;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof ss;
	if (getpeername(cl->conn.fd, (struct sockaddr *)&ss, &sslen) != 0)
		sslen = 0;
	hba_request req = {cl->is_unix, cl->conn.ssl != NULL, (struct sockaddr *)&ss, sslen,
			   cl->database, cl->user, cl->repl && cl->repl->mode == REPL_PHYSICAL};
	hba_match m;
	hba_check(gw->hba, &req, &m);
	char msg[512];
	if (!m.matched) {
		hba_format_no_entry(&req, msg, sizeof msg);
		client_fatal(cl, "28000", msg, NULL);
		return;
	}
	if ((m.clientcert_verify_ca || m.method == HBA_CERT) &&
	    (!cl->conn.ssl || SSL_get_verify_result(cl->conn.ssl) != X509_V_OK ||
	     !SSL_get0_peer_certificate(cl->conn.ssl))) {
		client_fatal(cl, "28000", "connection requires a valid client certificate", NULL);
		return;
	}
	if ((m.clientcert_verify_full || m.method == HBA_CERT) && !cert_matches(cl)) {
		snprintf(msg, sizeof msg, "certificate authentication failed for user \"%.63s\"",
			 cl->user);
		client_fatal(cl, "28000", msg, NULL);
		return;
	}
	cl->auth.method = m.method;
	switch (m.method) {
	case HBA_TRUST:
	case HBA_CERT:
		client_auth_ok(cl);
		return;
	case HBA_REJECT:
		hba_format_rejected(&req, msg, sizeof msg);
		client_fatal(cl, "28000", msg, NULL);
		return;
	default:
		break;
	}
	/* A password method: the user's secret from the auth file, else
	 * from PostgreSQL itself when an auth user is configured. */
	const char *secret = authfile_secret(gw->users, cl->user);
	if (secret || !gw->cfg.auth_user)
		client_auth_secret(cl, secret, false);
	else
		authq_start(cl);
}

void client_auth_secret(client *cl, const char *secret, bool lookup_failed)
{
	if (lookup_failed) {
		char msg[200];
		snprintf(msg, sizeof msg, "could not look up the password of user \"%.63s\"", cl->user);
		client_fatal(cl, "08006", msg, NULL);
		return;
	}
	if (secret && !(cl->auth.secret = strdup(secret))) {
		client_fatal(cl, "53200", "out of memory", NULL);
		return;
	}
	secret = cl->auth.secret;
	scram_secret_kind kind =
		secret ? scram_secret_type(secret, strlen(secret)) : SCRAM_SECRET_PLAINTEXT;
	switch (cl->auth.method) {
	case HBA_PASSWORD:
		/* A cleartext password never crosses an unencrypted connection
		 * to this gateway. */
		if (!cl->conn.ssl) {
			client_fatal(cl, "28000",
				     "password authentication requires an encrypted connection",
				     "Connect with SSL, or use scram-sha-256 for this user.");
			return;
		}
		send_auth_request(cl, 3, NULL, 0);
		cl->auth.state = CAUTH_PASSWORD;
		cl->dec.phase = PGW_PH_AUTH_PASSWORD;
		return;
	case HBA_MD5:
		/* As PostgreSQL: md5 with a SCRAM verifier stored means SCRAM. */
		if (secret && kind == SCRAM_SECRET_SCRAM) {
			start_scram(cl, secret);
			return;
		}
		if (getrandom(cl->auth.md5_salt, 4, 0) != 4) {
			client_fatal(cl, "XX000", "could not generate random MD5 salt", NULL);
			return;
		}
		send_auth_request(cl, 5, cl->auth.md5_salt, 4);
		cl->auth.state = CAUTH_MD5;
		cl->dec.phase = PGW_PH_AUTH_PASSWORD;
		return;
	default:
		start_scram(cl, secret);
		return;
	}
}

/* A cleartext password against whatever is stored. */
static bool check_plain(client *cl, const char *secret, const char *pw, size_t pwlen,
			pool_credentials *cred)
{
	size_t slen = strlen(secret);
	switch (scram_secret_type(secret, slen)) {
	case SCRAM_SECRET_SCRAM: {
		scram_verifier v;
		uint8_t salted[SCRAM_KEY_LEN], ck[SCRAM_KEY_LEN], sk[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN];
		char prepped[SCRAM_MAX_PASSWORD + 1];
		size_t plen = sizeof prepped;
		if (pwlen > SCRAM_MAX_PASSWORD || scram_verifier_parse(secret, slen, &v) != SCRAM_OK)
			return false;
		scram_saslprep(pw, pwlen, prepped, &plen);
		bool ok = scram_salted_password(prepped, plen, v.salt, v.salt_len, v.iterations,
						salted) == SCRAM_OK &&
			  scram_keys(salted, ck, stored, sk) == SCRAM_OK &&
			  CRYPTO_memcmp(stored, v.stored_key, SCRAM_KEY_LEN) == 0;
		if (ok) {
			cred->have_keys = true;
			memcpy(cred->client_key, ck, SCRAM_KEY_LEN);
			memcpy(cred->server_key, v.server_key, SCRAM_KEY_LEN);
		}
		OPENSSL_cleanse(salted, sizeof salted);
		OPENSSL_cleanse(ck, sizeof ck);
		OPENSSL_cleanse(prepped, sizeof prepped);
		return ok;
	}
	case SCRAM_SECRET_MD5: {
		char want[PGMD5_PASSWORD_SIZE];
		if (pgmd5_stored(cl->user, strlen(cl->user), pw, pwlen, want) != 0)
			return false;
		bool ok = strlen(want) == slen && CRYPTO_memcmp(want, secret, slen) == 0;
		if (ok) {
			cred->have_md5 = true;
			memcpy(cred->md5, want, sizeof want);
		}
		return ok;
	}
	case SCRAM_SECRET_PLAINTEXT:
		return pwlen == slen && CRYPTO_memcmp(pw, secret, slen) == 0;
	default:
		return false;
	}
}

static void on_password(client *cl, const pgw_msg *m)
{
	const pgw_str *pw = &m->body.password_message.password;
	const char *secret = cl->auth.secret;
	pool_credentials cred = {0};
	if (cl->auth.state == CAUTH_PASSWORD) {
		if (!secret || !check_plain(cl, secret, (const char *)pw->ptr, pw->len, &cred)) {
			password_failed(cl);
			return;
		}
		if (!cred.have_keys && !cred.have_md5) {
			cred.password = (const char *)pw->ptr;
		}
	} else {
		/* md5: the answer must be md5(stored hash + our salt). */
		char want[PGMD5_PASSWORD_SIZE];
		if (!secret || scram_secret_type(secret, strlen(secret)) != SCRAM_SECRET_MD5 ||
		    pgmd5_salted(secret, cl->auth.md5_salt, want) != 0 || pw->len != PGMD5_PASSWORD_LEN ||
		    CRYPTO_memcmp(want, pw->ptr, PGMD5_PASSWORD_LEN) != 0) {
			password_failed(cl);
			return;
		}
		cred.have_md5 = true;
		memcpy(cred.md5, secret, PGMD5_PASSWORD_SIZE);
	}
	keep_credentials(cl, &cred);
	client_auth_ok(cl);
}

static void scram_failed(client *cl, int status)
{
	scram_server_error e;
	scram_server_describe(cl->auth.scram, status, cl->user, strlen(cl->user), &e);
	client_fatal(cl, e.sqlstate, e.message, e.detail[0] ? e.detail : NULL);
}

void client_auth_message(client *cl, const pgw_msg *m)
{
	client_auth *a = &cl->auth;
	char out[SCRAM_SERVER_MAX_FIRST + 16];
	size_t len;
	int rc;
	switch (a->state) {
	case CAUTH_PASSWORD:
	case CAUTH_MD5:
		on_password(cl, m);
		return;
	case CAUTH_SASL_INITIAL: {
		const pgw_sasl_initial_response *r = &m->body.sasl_initial_response;
		snprintf(a->mechanism, sizeof a->mechanism, "%s", (const char *)r->mechanism.ptr);
		if (r->data.len < 0) {
			/* No initial response: as PostgreSQL, an empty SASLContinue
			 * asks for it, and the next message carries it. */
			send_auth_request(cl, 11, NULL, 0);
			a->state = CAUTH_SASL_FIRST;
			cl->dec.phase = PGW_PH_AUTH_SASL;
			return;
		}
		rc = scram_server_first(a->scram, a->mechanism, r->data.ptr, (size_t)r->data.len, out,
					sizeof out, &len);
		if (rc != SCRAM_OK) {
			scram_failed(cl, rc);
			return;
		}
		send_auth_request(cl, 11, out, len);
		a->state = CAUTH_SASL_FINAL;
		cl->dec.phase = PGW_PH_AUTH_SASL;
		return;
	}
	case CAUTH_SASL_FIRST: {
		const pgw_bytes *d = &m->body.sasl_response.data;
		rc = scram_server_first(a->scram, a->mechanism, d->ptr, d->len, out, sizeof out, &len);
		if (rc != SCRAM_OK) {
			scram_failed(cl, rc);
			return;
		}
		send_auth_request(cl, 11, out, len);
		a->state = CAUTH_SASL_FINAL;
		return;
	}
	case CAUTH_SASL_FINAL: {
		const pgw_bytes *d = &m->body.sasl_response.data;
		rc = scram_server_final(a->scram, d->ptr, d->len, out, sizeof out, &len);
		if (rc != SCRAM_OK) {
			scram_failed(cl, rc);
			return;
		}
		send_auth_request(cl, 12, out, len);
		pool_credentials cred = {0};
		if (scram_server_client_key(a->scram, cred.client_key, cred.server_key) == SCRAM_OK) {
			cred.have_keys = true;
			keep_credentials(cl, &cred);
		}
		OPENSSL_cleanse(&cred, sizeof cred);
		client_auth_free(a);
		client_auth_ok(cl);
		return;
	}
	default:
		client_fatal(cl, "08P01", "unexpected authentication message", NULL);
		return;
	}
}

void client_auth_free(client_auth *a)
{
	if (a->query) {
		authq_cancel(a->query);
		a->query = NULL;
	}
	if (a->secret) {
		OPENSSL_cleanse(a->secret, strlen(a->secret));
		free(a->secret);
		a->secret = NULL;
	}
	if (a->scram) {
		scram_server_wipe(a->scram);
		free(a->scram);
		a->scram = NULL;
	}
	a->state = CAUTH_NONE;
}
