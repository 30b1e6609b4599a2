/*
 * Server connections: connect, log in, then relay. Messages are framed
 * with the codec; only the few the pooler acts on are decoded.
 */
#include "pooler/backend.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/pgmd5.h"
#include "auth/scram.h"
#include "common/log.h"
#include "pooler/pool.h"
#include "pooler/remote_backend.h"

/* A CancelRequest on its own connection to the server (backend_cancel). */
struct cancel_conn {
	ev_io io;
	ev_timer timer;
	struct ev_loop *loop;
	int fd;
	backend *be; /* NULL once it is gone */
	struct cancel_conn *next; /* be's cancels in flight */
	backend_cancel_done done;
	void *done_arg;
	uint8_t packet[8 + 4 + 256];
	size_t len;
};

static void be_on_readable(net_conn *c);
static void be_on_error(net_conn *c, int err);
static void be_on_drained(net_conn *c);
static const net_conn_ops backend_conn_ops = {be_on_readable, be_on_drained, be_on_error};

static void send_startup(backend *be);

static void be_fail(backend *be, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Connection lost or login refused: tell whoever cares, then go. */
static void be_lost(backend *be, const pgw_error *err)
{
	backend_state was = be->state;
	be->state = BE_CLOSED;
	ev_timer_stop(be->conn.w->loop, &be->timer);
	ev_io_stop(be->conn.w->loop, &be->connect_io);
	conn_close(&be->conn);
	if (be->dedicated) {
		/* No pool to tell: the holder hears it, and the connection goes. */
		const backend_owner_ops *ops = be->owner_ops;
		void *owner = be->owner;
		be->owner_ops = NULL;
		be->owner = NULL;
		if (ops)
			ops->on_lost(owner, be, err);
		backend_destroy(be);
		return;
	}
	if (was != BE_READY) {
		pool_on_failed(be, err);
		return;
	}
	if (be->owner_ops)
		be->owner_ops->on_lost(be->owner, be, err);
	be->owner_ops = NULL;
	be->owner = NULL;
	pool_on_closed(be);
}

static void be_fail(backend *be, const char *sqlstate, const char *fmt, ...)
{
	pgw_error err;
	va_list ap;
	char text[sizeof err.message];
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	pgw_error_set(&err, PGW_SEV_FATAL, sqlstate, "%s", text);
	be_lost(be, &err);
}

static void on_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	backend *be = (backend *)((char *)t - offsetof(backend, timer));
	if (be->connect_errno)
		be_fail(be, "08006", "could not connect to server: %s", strerror(be->connect_errno));
	else
		be_fail(be, "08006", "could not connect to server: timeout after %g s",
			be->pool->cfg->connect_timeout);
}

static void on_connected(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)revents;
	backend *be = (backend *)((char *)io - offsetof(backend, connect_io));
	ev_io_stop(loop, io);
	int soerr = 0;
	socklen_t len = sizeof soerr;
	getsockopt(be->conn.fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
	if (soerr) {
		be_fail(be, "08006", "could not connect to server: %s", strerror(soerr));
		return;
	}
	be->state = BE_LOGIN;
	send_startup(be);
	conn_read_start(&be->conn);
}

backend *backend_connect(pool *p)
{
	const pool_config *cfg = p->cfg;
	backend *be = calloc(1, sizeof *be);
	if (!be)
		return NULL;
	be->pool = p;
	be->id = ++p->next_backend_id;
	be->txn_status = 'I';
	be->created = be->last_used = ev_now(p->w->loop);
	pgw_decoder_init(&be->dec, PGW_BACKEND, 0);

	if (cfg->remote) {
		/* A multipooler's connection: the socket is a translator's end,
		 * connected at once; the login is answered by the translator. */
		int rfd = remote_backend_open(be, cfg->remote);
		if (rfd < 0) {
			free(be);
			return NULL;
		}
		conn_init(&be->conn, p->w, rfd, &backend_conn_ops, be);
		be->state = BE_LOGIN;
		ev_timer_init(&be->timer, on_timeout, cfg->connect_timeout, 0);
		ev_timer_start(p->w->loop, &be->timer);
		ev_io_init(&be->connect_io, on_connected, rfd, EV_WRITE);
		send_startup(be);
		conn_read_start(&be->conn);
		return be;
	}

	int fd = socket(cfg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		free(be);
		return NULL;
	}
	conn_init(&be->conn, p->w, fd, &backend_conn_ops, be);
	be->state = BE_CONNECTING;
	ev_timer_init(&be->timer, on_timeout, cfg->connect_timeout, 0);
	ev_timer_start(p->w->loop, &be->timer);
	ev_io_init(&be->connect_io, on_connected, fd, EV_WRITE);
	if (connect(fd, (const struct sockaddr *)&cfg->addr, cfg->addrlen) < 0 &&
	    errno != EINPROGRESS) {
		/* Fail from the loop, so the pool always hears it the same way. */
		be->connect_errno = errno;
		ev_timer_stop(p->w->loop, &be->timer);
		ev_timer_set(&be->timer, 0, 0);
		ev_timer_start(p->w->loop, &be->timer);
		return be;
	}
	ev_io_start(p->w->loop, &be->connect_io);
	return be;
}

backend *backend_connect_dedicated(pool *p, const uint8_t *extra, size_t extra_len,
				   const backend_owner_ops *ops, void *owner)
{
	/* A multipooler serves pooled sessions only: nothing to replicate with. */
	if (p->cfg->remote)
		return NULL;
	uint8_t *copy = NULL;
	if (extra_len) {
		copy = malloc(extra_len);
		if (!copy)
			return NULL;
		memcpy(copy, extra, extra_len);
	}
	backend *be = backend_connect(p);
	if (!be) {
		free(copy);
		return NULL;
	}
	/* Set before the loop runs again: the connect, and any failure of
	 * it, come from the loop. */
	be->dedicated = true;
	be->startup_extra = copy;
	be->startup_extra_len = extra_len;
	backend_set_owner(be, ops, owner);
	return be;
}

void backend_destroy(backend *be)
{
	remote_backend_close(be);
	ev_timer_stop(be->conn.w->loop, &be->timer);
	ev_io_stop(be->conn.w->loop, &be->connect_io);
	conn_close(&be->conn);
	for (int i = 0; i < be->nparams; i++) {
		free(be->params[i].name);
		free(be->params[i].value);
	}
	for (cancel_conn *cc = be->cancels; cc; cc = cc->next)
		cc->be = NULL;
	stmtcache_free(&be->stmts);
	free(be->scram);
	free(be->login_error);
	free(be->startup_extra);
	free(be);
}

static void send_startup(backend *be)
{
	pgw_wbuf *w = conn_wbuf(&be->conn);
	size_t at = pgw_w_begin(w, 0);
	pgw_w_i32(w, (int32_t)PGW_PROTOCOL_3_0);
	pgw_w_cstr(w, "user", 4);
	pgw_w_cstr(w, be->pool->user, strlen(be->pool->user));
	pgw_w_cstr(w, "database", 8);
	pgw_w_cstr(w, be->pool->database, strlen(be->pool->database));
	pgw_w_bytes(w, be->startup_extra, be->startup_extra_len);
	pgw_w_u8(w, 0);
	pgw_w_end(w, at);
	conn_wrote(&be->conn);
}

void backend_params_set(backend_param *list, int *n, const char *name, const char *value)
{
	for (int i = 0; i < *n; i++)
		if (strcmp(list[i].name, name) == 0) {
			char *v = strdup(value);
			if (v) {
				free(list[i].value);
				list[i].value = v;
			}
			return;
		}
	if (*n == BACKEND_MAX_PARAMS)
		return;
	char *nm = strdup(name), *v = strdup(value);
	if (!nm || !v) {
		free(nm);
		free(v);
		return;
	}
	list[(*n)++] = (backend_param){nm, v};
}

static void set_param(backend *be, const pgw_str *name, const pgw_str *value)
{
	backend_params_set(be->params, &be->nparams, (const char *)name->ptr,
			   (const char *)value->ptr);
}

int32_t backend_server_pid(const backend *be)
{
	uint32_t pid = be->remote ? remote_backend_server_pid(be) : 0;
	return pid ? (int32_t)pid : be->pid;
}

const char *backend_param_get(const backend *be, const char *name)
{
	for (int i = 0; i < be->nparams; i++)
		if (strcmp(be->params[i].name, name) == 0)
			return be->params[i].value;
	return NULL;
}

/* The cleartext password to log in with, if any is known. */
static const char *login_password(const backend *be)
{
	return be->pool->cred.password ? be->pool->cred.password : be->pool->cfg->password;
}

static bool no_credentials(backend *be)
{
	be_fail(be, "28P01", "the server asked user \"%s\" for a password and the pooler has none",
		be->pool->user);
	return false;
}

/* A dedicated connection's holder hears the server's answers to the
 * login as they come (pooled ones are set up by the pooler instead). */
static void login_tell_holder(backend *be, pgw_msg *m)
{
	if (be->dedicated && be->owner_ops)
		be->owner_ops->on_message(be->owner, be, m);
}

/* One login message: answer authentication requests, note parameters. */
static bool login_message(backend *be, pgw_msg *m)
{
	pgw_error err;
	if (pgw_decode_msg_body(m, &err) != PGW_OK) {
		be_fail(be, "08P01", "invalid message from server during login: %s", err.message);
		return false;
	}
	const char *password = login_password(be);
	const pool_credentials *cred = &be->pool->cred;
	pgw_wbuf *w = conn_wbuf(&be->conn);
	switch (m->id) {
	case PGW_MSG_AUTHENTICATION_OK:
		return true;
	case PGW_MSG_AUTHENTICATION_CLEARTEXT_PASSWORD: {
		if (!password)
			return no_credentials(be);
		pgw_password_message pm = {{(const uint8_t *)password, (uint32_t)strlen(password)}};
		pgw_encode_password_message(w, &pm);
		conn_wrote(&be->conn);
		return true;
	}
	case PGW_MSG_AUTHENTICATION_MD5_PASSWORD: {
		char hashed[PGMD5_PASSWORD_SIZE];
		const uint8_t *salt = m->body.authentication_md5_password.salt.ptr;
		if (cred->have_md5)
			pgmd5_salted(cred->md5, salt, hashed); /* the stored hash is enough */
		else if (password)
			pgmd5_password(be->pool->user, strlen(be->pool->user), password,
				       strlen(password), salt, hashed);
		else
			return no_credentials(be);
		pgw_password_message pm = {{(const uint8_t *)hashed, (uint32_t)strlen(hashed)}};
		pgw_encode_password_message(w, &pm);
		conn_wrote(&be->conn);
		return true;
	}
	case PGW_MSG_AUTHENTICATION_SASL: {
		bool scram = false;
		pgw_iter it = pgw_array_iter(&m->body.authentication_sasl.mechanisms);
		pgw_str mech;
		while (pgw_next_str(&it, &mech))
			scram |= strcmp((const char *)mech.ptr, "SCRAM-SHA-256") == 0;
		if (!scram) {
			be_fail(be, "28000", "the server offers no SASL mechanism the pooler supports");
			return false;
		}
		if (!cred->have_keys && !password)
			return no_credentials(be);
		be->scram = calloc(1, sizeof *be->scram);
		char first[256];
		size_t len;
		/* With the keys the client's own SCRAM login gave, no password
		 * is needed (SCRAM pass-through). */
		int rc = !be->scram ? -1
			 : cred->have_keys
				 ? scram_client_init_keys(be->scram, cred->client_key, cred->server_key)
				 : scram_client_init(be->scram, password, strlen(password));
		if (rc != 0 || scram_client_first(be->scram, first, sizeof first, &len) != 0) {
			be_fail(be, "28000", "could not start SCRAM authentication");
			return false;
		}
		pgw_sasl_initial_response r = {{(const uint8_t *)"SCRAM-SHA-256", 13},
					       {(const uint8_t *)first, (int32_t)len}};
		pgw_encode_sasl_initial_response(w, &r);
		conn_wrote(&be->conn);
		return true;
	}
	case PGW_MSG_AUTHENTICATION_SASL_CONTINUE: {
		char final[512];
		size_t len;
		const pgw_bytes *d = &m->body.authentication_sasl_continue.data;
		if (!be->scram ||
		    scram_client_final(be->scram, d->ptr, d->len, final, sizeof final, &len) != 0) {
			be_fail(be, "28000", "invalid SCRAM message from the server");
			return false;
		}
		pgw_sasl_response r = {{(const uint8_t *)final, (uint32_t)len}};
		pgw_encode_sasl_response(w, &r);
		conn_wrote(&be->conn);
		return true;
	}
	case PGW_MSG_AUTHENTICATION_SASL_FINAL: {
		const pgw_bytes *d = &m->body.authentication_sasl_final.data;
		if (!be->scram || scram_client_verify_final(be->scram, d->ptr, d->len) != 0) {
			be_fail(be, "28000", "the server's SCRAM signature is wrong");
			return false;
		}
		free(be->scram);
		be->scram = NULL;
		return true;
	}
	case PGW_MSG_BACKEND_KEY_DATA: {
		const pgw_backend_key_data *k = &m->body.backend_key_data;
		be->pid = k->pid;
		be->key_len = (uint8_t)(k->key.len > sizeof be->key ? sizeof be->key : k->key.len);
		memcpy(be->key, k->key.ptr, be->key_len);
		login_tell_holder(be, m);
		return true;
	}
	case PGW_MSG_PARAMETER_STATUS:
		set_param(be, &m->body.parameter_status.name, &m->body.parameter_status.value);
		login_tell_holder(be, m);
		return true;
	case PGW_MSG_NOTICE_RESPONSE:
		login_tell_holder(be, m);
		return true;
	case PGW_MSG_NEGOTIATE_PROTOCOL_VERSION:
		return true;
	case PGW_MSG_ERROR_RESPONSE: {
		/* Keep the server's words for the client (role missing...). */
		be->login_error = malloc(m->raw_len);
		if (be->login_error) {
			memcpy(be->login_error, m->raw, m->raw_len);
			be->login_error_len = m->raw_len;
		}
		pgw_error e;
		pgw_error_set(&e, PGW_SEV_FATAL, "08006", "the server refused the login");
		const pgw_array *fields = &m->body.error_response.fields;
		pgw_str text;
		if (pgw_find_field(fields, 'C', &text) && text.len == 5)
			memcpy(e.sqlstate, text.ptr, 6);
		if (pgw_find_field(fields, 'M', &text))
			snprintf(e.message, sizeof e.message, "%s", (const char *)text.ptr);
		be_lost(be, &e);
		return false;
	}
	case PGW_MSG_READY_FOR_QUERY:
		ev_timer_stop(be->conn.w->loop, &be->timer);
		be->state = BE_READY;
		be->txn_status = (char)m->body.ready_for_query.status;
		if (be->dedicated)
			login_tell_holder(be, m);
		else
			pool_on_ready(be);
		return true;
	default:
		be_fail(be, "08P01", "unexpected message '%c' from server during login", m->type);
		return false;
	}
}

static bool head_is_silent(const backend *be)
{
	return be->pending_count > 0 && be->pending[be->pending_head];
}

/* One message once logged in: keep our own books, hand the rest on. */
static bool relay_message(backend *be, pgw_msg *m)
{
	bool silent = head_is_silent(be);
	pgw_error err;
	switch (m->type) {
	case 'Z':
		if (pgw_decode_msg_body(m, &err) != PGW_OK) {
			be_fail(be, "08P01", "invalid ReadyForQuery from server");
			return false;
		}
		be->txn_status = (char)m->body.ready_for_query.status;
		be->copy_in = false;
		if (silent && be->silent_failed) {
			/* A settings Query of ours failed as a whole: what the
			 * connection holds now is unknown, so the next holder sets
			 * it up from scratch, role included. */
			be->silent_failed = false;
			be->settings_hash = UINT64_MAX;
			be->settings_role = true;
			log_warning("server connection %d: the pooler's own statement failed", be->pid);
		}
		if (be->pending_count > 0) {
			be->pending_head = (be->pending_head + 1) % BACKEND_MAX_PENDING;
			be->pending_count--;
		}
		if (!silent && be->owner_ops)
			be->owner_ops->on_message(be->owner, be, m);
		else if (silent && be->owner_ops && be->owner_ops->on_own_done)
			be->owner_ops->on_own_done(be->owner, be);
		if (be->orphan)
			pool_on_orphan_progress(be);
		return be->state == BE_READY;
	case 'S':
		if (pgw_decode_msg_body(m, &err) == PGW_OK)
			set_param(be, &m->body.parameter_status.name, &m->body.parameter_status.value);
		break;
	case 'G':
		be->copy_in = true;
		if (be->orphan) {
			/* Nobody will send the data: end the COPY. */
			pgw_copy_fail f = {{(const uint8_t *)"client disconnected", 19}};
			pgw_encode_copy_fail(conn_wbuf(&be->conn), &f);
			conn_wrote(&be->conn);
		}
		break;
	case 'C':
		be->copy_in = false;
		break;
	case 'E':
		be->copy_in = false;
		if (silent) {
			be->silent_failed = true;
			if (be->owner_ops && be->owner_ops->on_own_error)
				be->owner_ops->on_own_error(be->owner, be, m);
		}
		break;
	default:
		break;
	}
	if (!silent && be->owner_ops)
		be->owner_ops->on_message(be->owner, be, m);
	return be->state == BE_READY;
}

/* Handle the whole messages already read, unless paused. */
static void process_buffered(backend *be)
{
	net_conn *c = &be->conn;
	while (be->state == BE_LOGIN || be->state == BE_READY) {
		pgw_msg m;
		pgw_error err;
		size_t used;
		size_t have = pgw_rbuf_len(&c->in);
		if (have == 0 || be->paused)
			break;
		pgw_status st = pgw_frame(&be->dec, pgw_rbuf_data(&c->in), have, &m, &used, &err);
		if (st == PGW_NEED_MORE)
			break;
		if (st == PGW_ERR) {
			be_fail(be, "08P01", "invalid message from server: %s", err.message);
			return;
		}
		bool alive = be->state == BE_LOGIN ? login_message(be, &m) : relay_message(be, &m);
		if (!alive)
			return; /* be may be gone */
		pgw_rbuf_consume(&c->in, used);
	}
}

static void be_on_readable(net_conn *c)
{
	backend *be = c->owner;
	ssize_t n = conn_fill(c, be->dec.need);
	if (n == 0) {
		pgw_error err;
		pgw_error_set(&err, PGW_SEV_FATAL, "08006",
			      "server closed the connection unexpectedly");
		be_lost(be, &err);
		return;
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		pgw_error err;
		pgw_error_set(&err, PGW_SEV_FATAL, "08006", "could not receive data from server: %s",
			      strerror(errno));
		be_lost(be, &err);
		return;
	}
	process_buffered(be);
}

static void be_on_error(net_conn *c, int e)
{
	backend *be = c->owner;
	pgw_error err;
	pgw_error_set(&err, PGW_SEV_FATAL, "08006", "could not send data to server: %s",
		      strerror(e));
	be_lost(be, &err);
}

static void be_on_drained(net_conn *c)
{
	backend *be = c->owner;
	if (be->owner_ops && be->owner_ops->on_drained)
		be->owner_ops->on_drained(be->owner, be);
}

void backend_set_owner(backend *be, const backend_owner_ops *ops, void *owner)
{
	if (be->remote && ops)
		remote_backend_begin_hold(be); /* the multipooler reserves for the hold */
	be->owner_ops = ops;
	be->owner = owner;
}

static void push_pending(backend *be, bool silent)
{
	int tail = (be->pending_head + be->pending_count) % BACKEND_MAX_PENDING;
	be->pending[tail] = silent;
	be->pending_count++;
}

void backend_send(backend *be, const void *bytes, size_t n, int requests)
{
	conn_write(&be->conn, bytes, n);
	for (int i = 0; i < requests; i++)
		push_pending(be, false);
}

void backend_send_query(backend *be, const char *sql, size_t len, bool silent)
{
	pgw_query q = {{(const uint8_t *)sql, (uint32_t)len}};
	pgw_encode_query(conn_wbuf(&be->conn), &q);
	conn_wrote(&be->conn);
	push_pending(be, silent);
	be->unnamed_uid = 0; /* a simple Query drops the unnamed statement */
}

void backend_send_own_sync(backend *be)
{
	static const uint8_t sync[5] = {'S', 0, 0, 0, 4};
	conn_write(&be->conn, sync, sizeof sync);
	push_pending(be, true);
}

void backend_forget_request(backend *be)
{
	/* Requests behind the head are all the holder's (the pooler's own go
	 * ahead of them), so which one goes makes no difference. */
	if (be->pending_count > 0)
		be->pending_count--;
}

void backend_pause(backend *be)
{
	if (!be->paused) {
		be->paused = true;
		conn_read_stop(&be->conn);
	}
}

void backend_resume(backend *be)
{
	if (be->paused && be->state == BE_READY) {
		be->paused = false;
		conn_read_start(&be->conn);
		/* Messages already buffered bring no new read event. */
		process_buffered(be);
	}
}

/* A cancel is its own short connection: connect, send 16+ bytes, close. */
/* The server closes a cancel connection once it has signalled the backend:
 * until then the backend may not serve anyone else, nor be sent more, or
 * the cancel could land on the next statement. */
static void cancel_done(cancel_conn *cc)
{
	ev_io_stop(cc->loop, &cc->io);
	ev_timer_stop(cc->loop, &cc->timer);
	close(cc->fd);
	backend *be = cc->be;
	if (be) {
		cancel_conn **link = &be->cancels;
		while (*link != cc)
			link = &(*link)->next;
		*link = cc->next;
		if (!be->cancels) {
			conn_hold(&be->conn, false);
			if (be->orphan)
				pool_on_orphan_progress(be);
		}
	}
	if (cc->done)
		cc->done(cc->done_arg);
	free(cc);
}

static void cancel_on_read(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	cancel_conn *cc = (cancel_conn *)io;
	uint8_t buf[64];
	ssize_t n = recv(cc->fd, buf, sizeof buf, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	cancel_done(cc); /* closed (or refused): the signal went out */
}

static void cancel_on_write(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)revents;
	cancel_conn *cc = (cancel_conn *)io;
	ssize_t n = send(cc->fd, cc->packet, cc->len, MSG_NOSIGNAL);
	if (n != (ssize_t)cc->len) {
		log_warning("could not send a cancel request to the server");
		cancel_done(cc);
		return;
	}
	ev_io_stop(loop, &cc->io);
	ev_io_init(&cc->io, cancel_on_read, cc->fd, EV_READ);
	ev_io_start(loop, &cc->io);
}

static void cancel_on_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	log_warning("a cancel request got no answer from the server in time");
	cancel_done((cancel_conn *)((char *)t - offsetof(cancel_conn, timer)));
}

static bool cancel_start(backend *be, backend_cancel_done done, void *arg)
{
	const pool_config *cfg = be->pool->cfg;
	if (be->state != BE_READY || be->key_len == 0)
		return false;
	cancel_conn *cc = calloc(1, sizeof *cc);
	if (!cc)
		return false;
	cc->loop = be->conn.w->loop;
	cc->fd = socket(cfg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (cc->fd < 0) {
		free(cc);
		return false;
	}
	pgw_wbuf w = PGW_WBUF_INIT;
	pgw_cancel_request cr = {be->pid, {be->key, be->key_len}};
	pgw_encode_cancel_request(&w, &cr);
	if (w.failed || w.len > sizeof cc->packet) {
		pgw_wbuf_release(&w);
		close(cc->fd);
		free(cc);
		return false;
	}
	memcpy(cc->packet, w.data, w.len);
	cc->len = w.len;
	pgw_wbuf_release(&w);
	if (connect(cc->fd, (const struct sockaddr *)&cfg->addr, cfg->addrlen) < 0 &&
	    errno != EINPROGRESS) {
		close(cc->fd);
		free(cc);
		return false;
	}
	/* What the holder sent before the cancel still goes: it may be the
	 * statement the cancel is for. What it sends after waits. */
	conn_hold(&be->conn, true);
	log_debug("server connection %d: cancel request on its way", be->pid);
	cc->be = be;
	cc->done = done;
	cc->done_arg = arg;
	cc->next = be->cancels;
	be->cancels = cc;
	ev_io_init(&cc->io, cancel_on_write, cc->fd, EV_WRITE);
	ev_io_start(cc->loop, &cc->io);
	ev_timer_init(&cc->timer, cancel_on_timeout, cfg->connect_timeout, 0);
	ev_timer_start(cc->loop, &cc->timer);
	return true;
}

void backend_cancel(backend *be, backend_cancel_done done, void *arg)
{
	if (be->remote)
		remote_backend_cancel(be); /* the call is cancelled instead */
	else if (cancel_start(be, done, arg))
		return;
	if (done)
		done(arg);
}
