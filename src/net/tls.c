/*
 * The TLS server context. ALPN follows PostgreSQL 17: a client that
 * offers protocols without "postgresql" is refused in the handshake; one
 * that offers none is for the caller to judge (direct TLS needs it).
 */
#include "net/tls.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

static const unsigned char alpn_postgresql[] = "\x0apostgresql";

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	unsigned char *sel;
	if (SSL_select_next_proto(&sel, outlen, alpn_postgresql, sizeof alpn_postgresql - 1, in,
				  inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL; /* no_application_protocol */
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static void put_ssl_error(char *err, size_t errcap, const char *what, const char *file)
{
	char reason[256];
	ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
	snprintf(err, errcap, "%s \"%s\": %s", what, file, reason);
}

SSL_CTX *tls_server_ctx(const tls_config *cfg, char *err, size_t errcap)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		snprintf(err, errcap, "could not create a TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* Partial writes and a moving buffer: the write buffer is compacted
	 * and regrown between attempts. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
		put_ssl_error(err, errcap, "could not load server certificate file", cfg->cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
		put_ssl_error(err, errcap, "could not load private key file", cfg->key_file);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errcap, "private key file \"%s\" does not match the certificate",
			 cfg->key_file);
		goto fail;
	}
	if (cfg->ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1) {
			put_ssl_error(err, errcap, "could not load root certificate file", cfg->ca_file);
			goto fail;
		}
		/* Asked for, verified when given; whether one is required is
		 * the authentication rules' business. */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_file);
		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
	}
	SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void tls_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

bool tls_alpn_postgresql(SSL *ssl)
{
	const unsigned char *p;
	unsigned int n;
	SSL_get0_alpn_selected(ssl, &p, &n);
	return n == sizeof alpn_postgresql - 2 && memcmp(p, alpn_postgresql + 1, n) == 0;
}
