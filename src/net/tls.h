/*
 * TLS for client connections, on OpenSSL: the server context (TLS 1.2 at
 * least, ALPN "postgresql", optional client certificates), and the state
 * a connection carries once it has switched to TLS.
 */
#ifndef PGW_TLS_H
#define PGW_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

typedef struct tls_config {
	const char *cert_file;
	const char *key_file;
	const char *ca_file; /* client certificates are asked for when set */
} tls_config;

/* NULL with a one-line reason in err when the files are unusable. */
SSL_CTX *tls_server_ctx(const tls_config *cfg, char *err, size_t errcap);
void tls_ctx_free(SSL_CTX *ctx);
/* Did the handshake settle on ALPN "postgresql"? */
bool tls_alpn_postgresql(SSL *ssl);

#endif
