/*
 * A client's first messages: SSLRequest and GSSENCRequest, direct TLS, the
 * startup packet (protocol version, parameters, the options string, a
 * replication request) and the CancelRequest's hand-off to cancel.c. What
 * follows (authentication) is clientauth.c's.
 */
#include "gateway/startup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/log.h"
#include "gateway/cancel.h"
#include "gateway/replication.h"
#include "router/router.h"

/* Split a startup "options" value like PostgreSQL's pg_split_opts:
 * whitespace separates, backslash escapes the next character. */
static int apply_options(client *cl, const char *opts)
{
	char tok[1024];
	const char *p = opts;
	bool want_value = false;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (!*p)
			break;
		size_t n = 0;
		while (*p && !(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
			if (*p == '\\' && p[1])
				p++;
			if (n + 1 < sizeof tok)
				tok[n++] = *p;
			p++;
		}
		tok[n] = '\0';
		const char *setting = NULL;
		if (want_value) {
			setting = tok;
			want_value = false;
		} else if (strcmp(tok, "-c") == 0) {
			want_value = true;
			continue;
		} else if (strncmp(tok, "-c", 2) == 0) {
			setting = tok + 2;
		} else if (strncmp(tok, "--", 2) == 0) {
			setting = tok + 2;
		} else {
			char msg[256];
			snprintf(msg, sizeof msg, "unsupported option in startup packet: \"%.200s\"", tok);
			client_fatal(cl, "0A000", msg, NULL);
			return -1;
		}
		char *eq = strchr(setting, '=');
		if (!eq) {
			char msg[256];
			snprintf(msg, sizeof msg, "-c %.200s requires a value", setting);
			client_fatal(cl, "42601", msg, NULL);
			return -1;
		}
		*eq = '\0';
		char name[256];
		size_t i;
		for (i = 0; setting[i] && i + 1 < sizeof name; i++)
			name[i] = setting[i] == '-' ? '_' : (char)(setting[i] | (setting[i] >= 'A' && setting[i] <= 'Z' ? 0x20 : 0));
		name[i] = '\0';
		session_add_startup(&cl->sess, name, eq + 1);
	}
	return 0;
}

static void on_startup_message(client *cl, const pgw_msg *m)
{
	const pgw_startup_message *sm = &m->body.startup_message;
	gateway *gw = cl->gw->gw;
	pgw_iter it = pgw_array_iter(&sm->params);
	pgw_str k, v;
	const char *options = NULL;
	char unknown[512] = "";
	int nunknown = 0;
	size_t ulen = 0;
	repl_mode rmode = REPL_NONE;
	while (pgw_next_pair(&it, &k, &v)) {
		const char *name = (const char *)k.ptr, *value = (const char *)v.ptr;
		if (strcmp(name, "user") == 0) {
			free(cl->user);
			cl->user = strdup(value);
		} else if (strcmp(name, "database") == 0) {
			free(cl->database);
			cl->database = strdup(value);
		} else if (strcmp(name, "options") == 0) {
			options = value;
		} else if (strcmp(name, "replication") == 0) {
			if (!repl_parse_mode(value, &rmode)) {
				char msg[300];
				snprintf(msg, sizeof msg,
					 "invalid value for parameter \"replication\": \"%.250s\"", value);
				client_send_error(cl, "FATAL", "22023", msg, NULL,
						"Valid values are: \"false\", 0, \"true\", 1, \"database\".");
				conn_flush_now(&cl->conn);
				client_close(cl);
				return;
			}
		} else if (strncmp(name, "_pq_.", 5) == 0) {
			/* Protocol options we do not know: listed back below. */
			size_t n = k.len + 1;
			if (ulen + n < sizeof unknown) {
				memcpy(unknown + ulen, name, n);
				ulen += n;
				nunknown++;
			}
		}
	}
	/* Protocol 3.0 and 3.2 (3.1 was skipped on purpose and is never
	 * offered). A newer minor, or protocol options we do not know, get
	 * NegotiateProtocolVersion with what is spoken instead. */
	uint32_t minor = (uint32_t)sm->protocol & 0xffff;
	cl->minor = minor >= 2 ? 2 : 0;
	cl->key_len = cl->minor == 2 ? 32 : 4;
	if (minor > 2 || nunknown > 0) {
		pgw_wbuf *w = conn_wbuf(&cl->conn);
		size_t at = pgw_w_begin(w, 'v');
		pgw_w_i32(w, (int32_t)PGW_PROTOCOL(3, cl->minor));
		pgw_w_i32(w, nunknown);
		pgw_w_bytes(w, unknown, ulen);
		pgw_w_end(w, at);
		conn_wrote(&cl->conn);
	}
	if (!cl->user || !cl->user[0]) {
		client_fatal(cl, "28000", "no PostgreSQL user name specified in startup packet", NULL);
		return;
	}
	if (!cl->database || !cl->database[0]) {
		free(cl->database);
		cl->database = strdup(cl->user);
	}
	/* As in PostgreSQL, the options' -c settings come first and the
	 * packet's own parameters override them. */
	if (options && apply_options(cl, options) != 0)
		return;
	it = pgw_array_iter(&sm->params);
	while (pgw_next_pair(&it, &k, &v)) {
		const char *name = (const char *)k.ptr;
		if (strcmp(name, "user") != 0 && strcmp(name, "database") != 0 &&
		    strcmp(name, "options") != 0 && strcmp(name, "replication") != 0 &&
		    strncmp(name, "_pq_.", 5) != 0)
			session_add_startup(&cl->sess, name, (const char *)v.ptr);
	}
	if (gw->cfg.max_clients > 0 && __atomic_load_n(&gw->total_clients, __ATOMIC_RELAXED) > gw->cfg.max_clients) {
		client_fatal(cl, "53300", "sorry, too many clients already", NULL);
		return;
	}
	session_refresh(&cl->sess);
	cl->pooler = router_route(cl->gw->router, cl->database, cl->user);
	if (!cl->pooler || (rmode != REPL_NONE && repl_init(cl, rmode, &sm->params) != 0)) {
		client_fatal(cl, "53200", "out of memory", NULL);
		return;
	}
	cl->state = CL_AUTH;
	client_auth_begin(cl);
}

/* SSLRequest: 'S' and a TLS handshake when TLS is configured, else 'N'. */
static client_step on_ssl_request(client *cl, size_t used)
{
	SSL_CTX *ctx = cl->gw->gw->tls_ctx;
	if (cl->ssl_done || cl->conn.ssl) {
		/* PostgreSQL reads a second one as a protocol version. */
		client_fatal(cl, "0A000", "unsupported frontend protocol 1234.5679: server supports 3.0 to 3.2", NULL);
		return STEP_CLOSED;
	}
	cl->ssl_done = true;
	if (!ctx) {
		static const uint8_t no = 'N';
		conn_write(&cl->conn, &no, 1);
		return STEP_DONE;
	}
	/* Bytes behind the request were sent in the clear before TLS: a
	 * man in the middle could have put them there (CVE-2021-23222). */
	if (pgw_rbuf_len(&cl->conn.in) > used) {
		client_send_error(cl, "FATAL", "08P01", "received unencrypted data after SSL request",
				  "This could be either a client-software bug or evidence of an "
				  "attempted man-in-the-middle attack.", NULL);
		conn_flush_now(&cl->conn);
		client_close(cl);
		return STEP_CLOSED;
	}
	static const uint8_t yes = 'S';
	conn_write(&cl->conn, &yes, 1);
	conn_flush_now(&cl->conn);
	if (cl->state == CL_CLOSED)
		return STEP_CLOSED;
	if (conn_pending(&cl->conn) || conn_start_tls(&cl->conn, ctx) != 0) {
		log_warning("client %u: could not start TLS", cl->conn_id);
		client_close(cl);
		return STEP_CLOSED;
	}
	return STEP_DONE;
}

client_step client_startup_packet(client *cl, const pgw_msg *m, size_t used)
{
	static const uint8_t no = 'N';
	switch (m->id) {
	case PGW_MSG_SSL_REQUEST:
		return on_ssl_request(cl, used);
	case PGW_MSG_GSSENC_REQUEST:
		if (cl->gss_done) {
			client_fatal(cl, "0A000",
			      "unsupported frontend protocol 1234.5680: server supports 3.0 to 3.2", NULL);
			return STEP_CLOSED;
		}
		cl->gss_done = true;
		conn_write(&cl->conn, &no, 1);
		return STEP_DONE;
	case PGW_MSG_CANCEL_REQUEST:
		client_cancel_request(cl, &m->body.cancel_request);
		return STEP_CLOSED; /* closed, or read no more until it is */
	case PGW_MSG_STARTUP_MESSAGE:
		on_startup_message(cl, m);
		return cl->state == CL_CLOSED ? STEP_CLOSED : STEP_DONE;
	default:
		/* A TLS ClientHello after an SSLRequest was refused, or with no
		 * TLS configured: what PostgreSQL does with a length it cannot
		 * accept. */
		client_close(cl);
		return STEP_CLOSED;
	}
}

/* Direct TLS: a ClientHello where the startup packet should be. Peeked,
 * so OpenSSL reads it from the socket itself. */
bool client_start_direct_tls(client *cl)
{
	SSL_CTX *ctx = cl->gw->gw->tls_ctx;
	if (!ctx || cl->conn.ssl || cl->ssl_done || pgw_rbuf_len(&cl->conn.in) > 0)
		return true;
	uint8_t first;
	ssize_t n = recv(cl->conn.fd, &first, 1, MSG_PEEK);
	if (n != 1 || first != PGW_TLS_HANDSHAKE_BYTE)
		return true;
	cl->ssl_done = cl->direct_tls = true;
	if (conn_start_tls(&cl->conn, ctx) != 0) {
		client_close(cl);
		return false;
	}
	return true;
}
