/*
 * pg_login_check: log in to a real PostgreSQL over TCP with the codec and
 * src/auth (SCRAM-SHA-256, md5, password), to prove the auth code against
 * a server rather than against itself.
 *
 *   pg_login_check HOST PORT USER PASSWORD DBNAME
 *   pg_login_check      (PGW_TEST_PG_HOST, _PORT=5432, _USER=postgres,
 *                        _PASSWORD, _DB=<user> from the environment)
 *
 * Prints what the server asked for, then "login ok" after AuthenticationOk
 * and ReadyForQuery (exit 0), or the server's error as
 * "error: FATAL 28P01 <message>" (exit 1). Exit 2: usage, network, or a
 * server that broke the protocol.
 */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "auth/pgmd5.h"
#include "auth/scram.h"
#include "pgw/codec.h"
#include "pgw/wbuf.h"

typedef struct login {
	int fd;
	const char *user;
	const char *password;
	bool used_scram;
	bool authenticated;
	scram_client scram;
} login;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("pg_login_check: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static int connect_to(const char *host, const char *port)
{
	struct addrinfo hints, *res, *ai;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
		die("%s:%s: %s", host, port, gai_strerror(rc));
	int fd = -1, err = 0;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		die("connect to %s:%s: %s", host, port, strerror(err));
	/* A server that stops talking must not hang a test run. */
	struct timeval tv = {30, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

/* Send what the encoder wrote, then give the buffer back. */
static void send_wbuf(login *l, pgw_wbuf *w)
{
	if (w->failed)
		die("could not encode a message");
	size_t off = 0;
	while (off < w->len) {
		ssize_t n = send(l->fd, w->data + off, w->len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("send: %s", strerror(errno));
		off += (size_t)n;
	}
	pgw_wbuf_release(w);
}

static void send_startup(login *l, const char *db)
{
	/* Parameters as on the wire, without the list's closing NUL. */
	size_t ulen = strlen(l->user), dlen = strlen(db);
	size_t size = 5 + ulen + 1 + 9 + dlen + 1;
	uint8_t *params = malloc(size);
	if (!params)
		die("out of memory");
	uint8_t *p = params;
	memcpy(p, "user", 5);
	p += 5;
	memcpy(p, l->user, ulen + 1);
	p += ulen + 1;
	memcpy(p, "database", 9);
	p += 9;
	memcpy(p, db, dlen + 1);
	pgw_startup_message m = {(int32_t)PGW_PROTOCOL_3_0, {params, (uint32_t)size, 2}};
	pgw_wbuf w = PGW_WBUF_INIT;
	pgw_encode_startup_message(&w, &m);
	send_wbuf(l, &w);
	free(params);
}

static void print_error(const pgw_error_response *e)
{
	const char *sev = "?", *code = "?", *text = "?";
	uint8_t field;
	pgw_str s;
	pgw_iter it = pgw_array_iter(&e->fields);
	while (pgw_next_field(&it, &field, &s)) {
		/* V is the untranslated severity (9.6+), S may be localized. */
		if (field == 'V' || (field == 'S' && strcmp(sev, "?") == 0))
			sev = (const char *)s.ptr;
		else if (field == 'C')
			code = (const char *)s.ptr;
		else if (field == 'M')
			text = (const char *)s.ptr;
	}
	printf("error: %s %s %s\n", sev, code, text);
}

static void scram_failed(const char *step, int rc, const scram_client *c)
	__attribute__((noreturn));

static void scram_failed(const char *step, int rc, const scram_client *c)
{
	if (rc == SCRAM_ERR_SERVER)
		die("%s: %s: %s", step, scram_strerror(rc), c->server_error);
	die("%s: %s", step, scram_strerror(rc));
}

/* Answer one message; true when the login is over (ok or refused). */
static bool on_message(login *l, const pgw_msg *m, int *status)
{
	pgw_wbuf w = PGW_WBUF_INIT;
	switch (m->id) {
	case PGW_MSG_AUTHENTICATION_CLEARTEXT_PASSWORD: {
		printf("auth: server asks for the password in clear text\n");
		pgw_password_message pm = {{(const uint8_t *)l->password,
					    (uint32_t)strlen(l->password)}};
		pgw_encode_password_message(&w, &pm);
		send_wbuf(l, &w);
		return false;
	}
	case PGW_MSG_AUTHENTICATION_MD5_PASSWORD: {
		printf("auth: server asks for an md5 password\n");
		char hashed[PGMD5_PASSWORD_SIZE];
		if (pgmd5_password(l->user, strlen(l->user), l->password, strlen(l->password),
				   m->body.authentication_md5_password.salt.ptr, hashed) != 0)
			die("md5 is not available from OpenSSL");
		pgw_password_message pm = {{(const uint8_t *)hashed, PGMD5_PASSWORD_LEN}};
		pgw_encode_password_message(&w, &pm);
		send_wbuf(l, &w);
		return false;
	}
	case PGW_MSG_AUTHENTICATION_SASL: {
		bool offered = false;
		pgw_str mech;
		pgw_iter it = pgw_array_iter(&m->body.authentication_sasl.mechanisms);
		printf("auth: server offers SASL:");
		while (pgw_next_str(&it, &mech)) {
			printf(" %s", (const char *)mech.ptr);
			offered |= strcmp((const char *)mech.ptr, "SCRAM-SHA-256") == 0;
		}
		printf("\n");
		if (!offered)
			die("the server does not offer SCRAM-SHA-256");
		char first[256];
		size_t len = 0;
		int rc = scram_client_init(&l->scram, l->password, strlen(l->password));
		if (rc == SCRAM_OK)
			rc = scram_client_first(&l->scram, first, sizeof first, &len);
		if (rc != SCRAM_OK)
			scram_failed("client-first", rc, &l->scram);
		l->used_scram = true;
		pgw_sasl_initial_response r = {{(const uint8_t *)"SCRAM-SHA-256", 13},
					       {(const uint8_t *)first, (int32_t)len}};
		pgw_encode_sasl_initial_response(&w, &r);
		send_wbuf(l, &w);
		return false;
	}
	case PGW_MSG_AUTHENTICATION_SASL_CONTINUE: {
		char final[1024];
		size_t len = 0;
		const pgw_bytes *d = &m->body.authentication_sasl_continue.data;
		int rc = scram_client_final(&l->scram, d->ptr, d->len, final, sizeof final, &len);
		if (rc != SCRAM_OK)
			scram_failed("server-first", rc, &l->scram);
		pgw_sasl_response r = {{(const uint8_t *)final, (uint32_t)len}};
		pgw_encode_sasl_response(&w, &r);
		send_wbuf(l, &w);
		return false;
	}
	case PGW_MSG_AUTHENTICATION_SASL_FINAL: {
		const pgw_bytes *d = &m->body.authentication_sasl_final.data;
		int rc = scram_client_verify_final(&l->scram, d->ptr, d->len);
		if (rc != SCRAM_OK)
			scram_failed("server-final", rc, &l->scram);
		printf("auth: SCRAM server signature verified\n");
		return false;
	}
	case PGW_MSG_AUTHENTICATION_OK:
		/* Without the server's signature a SCRAM login proves nothing
		 * about the server: an impostor could skip straight to Ok. */
		if (l->used_scram && l->scram.state != SCRAM_CLIENT_DONE)
			die("AuthenticationOk before the SCRAM exchange finished");
		printf("auth: AuthenticationOk\n");
		l->authenticated = true;
		return false;
	case PGW_MSG_AUTHENTICATION_KERBEROS_V5:
	case PGW_MSG_AUTHENTICATION_GSS:
	case PGW_MSG_AUTHENTICATION_GSS_CONTINUE:
	case PGW_MSG_AUTHENTICATION_SSPI:
		die("unsupported authentication request (%s)", pgw_msg_name(m->id));
	case PGW_MSG_ERROR_RESPONSE:
		print_error(&m->body.error_response);
		*status = 1;
		return true;
	case PGW_MSG_READY_FOR_QUERY:
		if (!l->authenticated)
			die("ReadyForQuery before AuthenticationOk");
		printf("login ok\n");
		pgw_encode_terminate(&w);
		send_wbuf(l, &w);
		*status = 0;
		return true;
	case PGW_MSG_PARAMETER_STATUS:
	case PGW_MSG_BACKEND_KEY_DATA:
	case PGW_MSG_NOTICE_RESPONSE:
	case PGW_MSG_NEGOTIATE_PROTOCOL_VERSION:
		return false;
	default:
		die("unexpected %s during login", pgw_msg_name(m->id));
	}
}

static int run(login *l)
{
	pgw_decoder d;
	pgw_decoder_init(&d, PGW_BACKEND, 0);
	size_t cap = 8192, len = 0;
	uint8_t *buf = malloc(cap);
	if (!buf)
		die("out of memory");
	int status = 2;
	for (;;) {
		pgw_msg m;
		pgw_error err;
		size_t used = 0;
		pgw_status st = pgw_decode(&d, buf, len, &m, &used, &err);
		if (st == PGW_ERR)
			die("bad message from the server: %s %s", err.sqlstate, err.message);
		if (st == PGW_OK) {
			bool done = on_message(l, &m, &status);
			memmove(buf, buf + used, len - used);
			len -= used;
			if (done)
				break;
			continue;
		}
		/* NEED_MORE: d.need is what the whole message takes. */
		if (d.need > cap) {
			uint8_t *bigger = realloc(buf, d.need);
			if (!bigger)
				die("out of memory");
			buf = bigger;
			cap = d.need;
		}
		ssize_t n = recv(l->fd, buf + len, cap - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("recv: %s", strerror(errno));
		if (n == 0)
			die("the server closed the connection");
		len += (size_t)n;
	}
	free(buf);
	return status;
}

static const char *env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);
	return v && *v ? v : fallback;
}

int main(int argc, char **argv)
{
	const char *host, *port, *user, *password, *db;
	if (argc == 6) {
		host = argv[1], port = argv[2], user = argv[3], password = argv[4], db = argv[5];
	} else if (argc == 1 && getenv("PGW_TEST_PG_HOST")) {
		host = getenv("PGW_TEST_PG_HOST");
		port = env_or("PGW_TEST_PG_PORT", "5432");
		user = env_or("PGW_TEST_PG_USER", "postgres");
		password = env_or("PGW_TEST_PG_PASSWORD", "");
		db = env_or("PGW_TEST_PG_DB", user);
	} else {
		fprintf(stderr, "usage: %s HOST PORT USER PASSWORD DBNAME\n"
				"   or: PGW_TEST_PG_HOST=... [PGW_TEST_PG_PORT PGW_TEST_PG_USER "
				"PGW_TEST_PG_PASSWORD PGW_TEST_PG_DB] %s\n",
			argv[0], argv[0]);
		return 2;
	}
	login *l = calloc(1, sizeof *l);
	if (!l)
		die("out of memory");
	l->user = user;
	l->password = password;
	l->fd = connect_to(host, port);
	send_startup(l, db);
	int status = run(l);
	close(l->fd);
	free(l);
	fflush(stdout);
	return status;
}
