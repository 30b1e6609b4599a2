/*
 * Users' secrets from a file in PgBouncer's userlist.txt form: one
 * `"user" "secret"` per line, the secret a SCRAM-SHA-256 verifier, an md5
 * hash or (for tests) a plain password. Loaded once, then read-only.
 */
#ifndef PGW_AUTHFILE_H
#define PGW_AUTHFILE_H

#include <stddef.h>

typedef struct authfile authfile;

/* NULL with a one-line reason (file:line: ...) in err. */
authfile *authfile_load(const char *path, char *err, size_t errcap);
void authfile_free(authfile *f);
/* The user's secret, or NULL. */
const char *authfile_secret(const authfile *f, const char *user);

#endif
