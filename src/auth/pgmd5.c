/*
 * PostgreSQL md5 password hashing for logging in to a server that asks
 * for it (AuthenticationMD5Password), built on OpenSSL's MD5.
 */
#include "auth/pgmd5.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

static void to_hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
}

/* md5 of a || b, as 32 lowercase hex digits (no NUL). */
static int md5_hex2(const void *a, size_t alen, const void *b, size_t blen, char out[32])
{
	uint8_t digest[16];
	unsigned int dlen = 0;
	int ok = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, a, alen) == 1 && EVP_DigestUpdate(ctx, b, blen) == 1 &&
	    EVP_DigestFinal_ex(ctx, digest, &dlen) == 1 && dlen == sizeof digest) {
		to_hex(digest, sizeof digest, out);
		ok = 1;
	}
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

int pgmd5_password(const char *user, size_t ulen, const char *password, size_t plen,
		   const uint8_t salt[4], char out[PGMD5_PASSWORD_SIZE])
{
	/* The inner hash is as good as the password to this server: wipe it. */
	char inner[32];
	memcpy(out, "md5", 3);
	if (md5_hex2(password, plen, user, ulen, inner) != 0 ||
	    md5_hex2(inner, sizeof inner, salt, 4, out + 3) != 0) {
		OPENSSL_cleanse(inner, sizeof inner);
		out[0] = '\0';
		return -1;
	}
	OPENSSL_cleanse(inner, sizeof inner);
	out[PGMD5_PASSWORD_LEN] = '\0';
	return 0;
}

int pgmd5_salted(const char stored[PGMD5_PASSWORD_LEN], const uint8_t salt[4],
		 char out[PGMD5_PASSWORD_SIZE])
{
	memcpy(out, "md5", 3);
	if (md5_hex2(stored + 3, 32, salt, 4, out + 3) != 0) {
		out[0] = '\0';
		return -1;
	}
	out[PGMD5_PASSWORD_LEN] = '\0';
	return 0;
}

int pgmd5_stored(const char *user, size_t ulen, const char *password, size_t plen,
		 char out[PGMD5_PASSWORD_SIZE])
{
	memcpy(out, "md5", 3);
	if (md5_hex2(password, plen, user, ulen, out + 3) != 0) {
		out[0] = '\0';
		return -1;
	}
	out[PGMD5_PASSWORD_LEN] = '\0';
	return 0;
}
