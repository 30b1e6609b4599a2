/*
 * PostgreSQL's "md5" password authentication, client side: the hashed
 * password a client sends in answer to AuthenticationMD5Password.
 */
#ifndef PGW_AUTH_PGMD5_H
#define PGW_AUTH_PGMD5_H

#include <stddef.h>
#include <stdint.h>

/* "md5" + 32 hex digits + NUL. */
#define PGMD5_PASSWORD_LEN 35
#define PGMD5_PASSWORD_SIZE 36

/*
 * out = "md5" + hex(md5(hex(md5(password + user)) + salt)), NUL-terminated,
 * exactly what libpq sends (the inner hash is what pg_authid stores).
 * Returns 0, or -1 when OpenSSL cannot compute MD5 (a FIPS-only
 * configuration); out is then the empty string, which no server accepts.
 */
int pgmd5_password(const char *user, size_t ulen, const char *password, size_t plen,
		   const uint8_t salt[4], char out[PGMD5_PASSWORD_SIZE]);

/*
 * The same answer from what pg_authid stores ("md5" + hex(md5(password +
 * user))), without the password: how a pooler logs in with a stored hash,
 * and how a server checks a client's answer.
 */
int pgmd5_salted(const char stored[PGMD5_PASSWORD_LEN], const uint8_t salt[4],
		 char out[PGMD5_PASSWORD_SIZE]);
/* What pg_authid stores for a password: "md5" + hex(md5(password + user)). */
int pgmd5_stored(const char *user, size_t ulen, const char *password, size_t plen,
		 char out[PGMD5_PASSWORD_SIZE]);

#endif
