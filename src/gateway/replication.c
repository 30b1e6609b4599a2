/*
 * Replication clients, kept apart from client.c because they use none of a
 * pooled session's machinery (requests, statements, settings, the pool):
 * one dedicated server connection each, and the bytes relayed unchanged.
 *
 * Flow control is the one the pooled relay has: server messages come
 * through the backend's own relay and pause it while the client is backed
 * up; the client is not read while its server connection is.
 */
#include "gateway/replication.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "gateway/client.h"
#include "pooler/backend.h"
#include "router/router.h"

bool repl_parse_mode(const char *value, repl_mode *mode)
{
	if (strcmp(value, "database") == 0) {
		*mode = REPL_LOGICAL;
		return true;
	}
	/* parse_bool: any prefix of true/false/yes/no, at least two letters
	 * of on/off, a lone 1 or 0, case ignored. */
	size_t len = strlen(value);
	bool on;
	switch (value[0]) {
	case 't':
	case 'T':
		if (strncasecmp(value, "true", len) != 0 || len > 4)
			return false;
		on = true;
		break;
	case 'f':
	case 'F':
		if (strncasecmp(value, "false", len) != 0 || len > 5)
			return false;
		on = false;
		break;
	case 'y':
	case 'Y':
		if (strncasecmp(value, "yes", len) != 0 || len > 3)
			return false;
		on = true;
		break;
	case 'n':
	case 'N':
		if (strncasecmp(value, "no", len) != 0 || len > 2)
			return false;
		on = false;
		break;
	case 'o':
	case 'O':
		if (len == 2 && strncasecmp(value, "on", 2) == 0)
			on = true;
		else if (len >= 2 && len <= 3 && strncasecmp(value, "off", len) == 0)
			on = false;
		else
			return false;
		break;
	case '1':
	case '0':
		if (len != 1)
			return false;
		on = value[0] == '1';
		break;
	default:
		return false;
	}
	*mode = on ? REPL_PHYSICAL : REPL_NONE;
	return true;
}

int repl_init(client *cl, repl_mode mode, const pgw_array *params)
{
	repl_conn *r = calloc(1, sizeof *r);
	if (!r)
		return -1;
	r->mode = mode;
	/* At most the packet itself. */
	r->startup = malloc(params->size ? params->size : 1);
	if (!r->startup) {
		free(r);
		return -1;
	}
	pgw_iter it = pgw_array_iter(params);
	pgw_str k, v;
	while (pgw_next_pair(&it, &k, &v)) {
		const char *name = (const char *)k.ptr;
		/* user and database come from the pool (the same names);
		 * protocol options were answered by the gateway. */
		if (strcmp(name, "user") == 0 || strcmp(name, "database") == 0 ||
		    strncmp(name, "_pq_.", 5) == 0)
			continue;
		memcpy(r->startup + r->startup_len, k.ptr, k.len + 1);
		r->startup_len += k.len + 1;
		memcpy(r->startup + r->startup_len, v.ptr, v.len + 1);
		r->startup_len += v.len + 1;
	}
	cl->repl = r;
	return 0;
}

/* ---- the server connection's side */

static void send_key_data(client *cl, backend *be)
{
	/* In session mode a client is told its server connection's pid (every
	 * worker looks for it on a cancel); otherwise the gateway's, which
	 * names the worker. The key is always the gateway's. */
	if (cl->gw->gw->cfg.mode == POOL_MODE_SESSION)
		cl->pid = be->pid;
	pgw_backend_key_data kd = {cl->pid, {cl->key, cl->key_len}};
	pgw_encode_backend_key_data(conn_wbuf(&cl->conn), &kd);
	conn_wrote(&cl->conn);
}

static void login_done(client *cl)
{
	cl->state = CL_READY;
	cl->txn_status = 'I';
	cl->dec.phase = PGW_PH_READY;
	ev_timer_stop(cl->gw->w.loop, &cl->login_timer);
	log_debug("client %u: %s replication connection as %s", cl->conn_id,
		  cl->repl->mode == REPL_LOGICAL ? "logical" : "physical", cl->user);
	client_unblock(cl);
}

static void on_server_message(void *owner, backend *be, pgw_msg *m)
{
	client *cl = owner;
	if (cl->state == CL_CLOSED)
		return;
	if (cl->state == CL_LOGIN) {
		if (m->type == 'K') {
			send_key_data(cl, be);
			return;
		}
		conn_write(&cl->conn, m->raw, m->raw_len);
		if (m->type == 'Z')
			login_done(cl);
		return;
	}
	conn_write(&cl->conn, m->raw, m->raw_len);
	if (conn_backed_up(&cl->conn))
		backend_pause(be);
}

/* Close once everything queued for the client is written (see
 * repl_client_drained): its last messages may be what matters most. */
static void finish(client *cl)
{
	conn_read_stop(&cl->conn);
	cl->blocked = true;
	if (!conn_pending(&cl->conn)) {
		client_close(cl);
		return;
	}
	cl->repl->draining = true;
	/* Heard through on_drained once the queue is short, then again. */
	cl->conn.over_high = true;
}

static void on_server_lost(void *owner, backend *be, const pgw_error *err)
{
	client *cl = owner;
	repl_conn *r = cl->repl;
	r->be = NULL; /* be destroys itself when this returns */
	if (cl->state == CL_LOGIN) {
		/* The server refused the login: its own words, as it sent them. */
		if (be->login_error) {
			conn_write(&cl->conn, be->login_error, be->login_error_len);
			conn_flush_now(&cl->conn);
			client_close(cl);
		} else {
			log_warning("client %u: replication connection failed: %s", cl->conn_id,
				    err->message);
			client_fatal(cl, err->sqlstate, err->message, NULL);
		}
		return;
	}
	/* A server that closes the connection (after Terminate, a FATAL, a
	 * shutdown) is seen by the client as it would be directly: what it
	 * sent, then the end. */
	log_debug("client %u: replication server connection closed: %s", cl->conn_id,
		  err->message);
	finish(cl);
}

static void on_server_drained(void *owner, backend *be)
{
	(void)be;
	client_unblock(owner);
}

static const backend_owner_ops repl_backend_ops = {on_server_message, on_server_lost,
						   on_server_drained, NULL, NULL};

void repl_start(client *cl)
{
	repl_conn *r = cl->repl;
	pool *p = cl->pooler->impl;
	r->be = backend_connect_dedicated(p, r->startup, r->startup_len, &repl_backend_ops, cl);
	free(r->startup);
	r->startup = NULL;
	r->startup_len = 0;
	if (!r->be)
		client_fatal(cl, "08006", "could not open a server connection for replication", NULL);
}

/* ---- the client's side */

void repl_client_input(client *cl)
{
	repl_conn *r = cl->repl;
	pgw_rbuf *in = &cl->conn.in;
	size_t have = pgw_rbuf_len(in);
	if (!r->be || r->draining) {
		pgw_rbuf_consume(in, have); /* nobody to hear it */
		return;
	}
	if (have && !conn_backed_up(&r->be->conn)) {
		conn_write(&r->be->conn, pgw_rbuf_data(in), have);
		pgw_rbuf_consume(in, have);
	}
	if (conn_backed_up(&r->be->conn)) {
		/* Read on when it drains (on_server_drained). */
		cl->blocked = true;
		conn_read_stop(&cl->conn);
	}
}

void repl_client_drained(client *cl)
{
	repl_conn *r = cl->repl;
	if (r->draining) {
		if (!conn_pending(&cl->conn))
			client_close(cl);
		else
			cl->conn.over_high = true;
		return;
	}
	if (r->be && r->be->paused)
		backend_resume(r->be);
}

void repl_cancel(client *cl, backend_cancel_done done, void *arg)
{
	if (cl->repl->be)
		backend_cancel(cl->repl->be, done, arg);
	else if (done)
		done(arg);
}

void repl_free(client *cl)
{
	repl_conn *r = cl->repl;
	if (!r)
		return;
	cl->repl = NULL;
	/* Closing the socket ends the WAL sender, as a client leaving would. */
	if (r->be)
		backend_destroy(r->be);
	free(r->startup);
	free(r);
}
