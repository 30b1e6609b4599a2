/*
 * Client connections: the startup packet, trust login, then requests
 * relayed to pooled server connections. Server messages go back to the
 * client as the raw bytes they arrived as; only the few that steer the
 * session (CommandComplete, ErrorResponse, ReadyForQuery, CopyInResponse)
 * are looked into.
 */
#include "gateway/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "gateway/extended.h"
#include "gateway/replication.h"
#include "gateway/startup.h"
#include "router/router.h"
#include "sql/stmt.h"

#define MAX_STMTS_TRACKED 4096

static void process(client *cl);

/* ---- sending errors and notices the way PostgreSQL words them */

void client_send_error(client *cl, const char *severity, const char *sqlstate,
		       const char *msg, const char *detail, const char *hint)
{
	pgw_wbuf *w = conn_wbuf(&cl->conn);
	size_t at = pgw_w_begin(w, 'E');
	pgw_w_u8(w, 'S');
	pgw_w_cstr(w, severity, strlen(severity));
	pgw_w_u8(w, 'V');
	pgw_w_cstr(w, severity, strlen(severity));
	pgw_w_u8(w, 'C');
	pgw_w_cstr(w, sqlstate, strlen(sqlstate));
	pgw_w_u8(w, 'M');
	pgw_w_cstr(w, msg, strlen(msg));
	if (detail) {
		pgw_w_u8(w, 'D');
		pgw_w_cstr(w, detail, strlen(detail));
	}
	if (hint) {
		pgw_w_u8(w, 'H');
		pgw_w_cstr(w, hint, strlen(hint));
	}
	pgw_w_u8(w, 0);
	pgw_w_end(w, at);
	conn_wrote(&cl->conn);
}

static void send_error_detail(client *cl, const char *severity, const char *sqlstate,
			      const char *msg, const char *detail)
{
	client_send_error(cl, severity, sqlstate, msg, detail, NULL);
}

static void send_error(client *cl, const char *severity, const char *sqlstate, const char *msg)
{
	send_error_detail(cl, severity, sqlstate, msg, NULL);
}

static void send_ready(client *cl, char status)
{
	uint8_t m[6] = {'Z', 0, 0, 0, 5, (uint8_t)status};
	conn_write(&cl->conn, m, sizeof m);
}

/* FATAL, then close once it is written. */
void client_fatal(client *cl, const char *sqlstate, const char *msg, const char *detail)
{
	send_error_detail(cl, "FATAL", sqlstate, msg, detail);
	conn_flush_now(&cl->conn);
	client_close(cl);
}

static void fatal(client *cl, const char *sqlstate, const char *msg)
{
	client_fatal(cl, sqlstate, msg, NULL);
}

/* A decoder fault, answered as PostgreSQL answers it. */
static void decode_fault(client *cl, const pgw_error *err)
{
	switch (err->severity) {
	case PGW_SEV_COMMERROR:
		log_info("client %u: %s", cl->conn_id, err->message);
		client_close(cl);
		return;
	case PGW_SEV_FATAL:
		if (err->old_protocol) {
			char old[sizeof err->message + 16];
			int n = snprintf(old, sizeof old, "EFATAL:  %s\n", err->message);
			conn_write(&cl->conn, old, (size_t)n + 1);
			conn_flush_now(&cl->conn);
			client_close(cl);
			return;
		}
		fatal(cl, err->sqlstate, err->message);
		return;
	case PGW_SEV_ERROR:
		send_error(cl, "ERROR", err->sqlstate, err->message);
		if (err->lost_sync)
			fatal(cl, "08P01", "terminating connection because protocol synchronization was lost");
		return;
	}
}

/* ---- requests in flight */

static request *req_head(client *cl)
{
	return cl->req_count ? &cl->req[cl->req_head] : NULL;
}

static request *req_push(client *cl, request_kind kind)
{
	int tail = (cl->req_head + cl->req_count) % BACKEND_MAX_PENDING;
	request *r = &cl->req[tail];
	memset(r, 0, sizeof *r);
	r->kind = (uint8_t)kind;
	r->seq = ++cl->req_seq;
	cl->req_count++;
	return r;
}

request *client_push_request(client *cl, request_kind kind)
{
	return req_push(cl, kind);
}

static void req_free(request *r)
{
	for (uint16_t i = 0; i < r->neffects; i++) {
		free(r->effects[i].name);
		free(r->effects[i].text);
	}
	free(r->effects);
	r->effects = NULL;
	r->neffects = 0;
}

static void req_pop(client *cl)
{
	req_free(&cl->req[cl->req_head]);
	cl->req_head = (cl->req_head + 1) % BACKEND_MAX_PENDING;
	cl->req_count--;
}

/* A request the server skipped: it will never be answered. */
void client_forget_request(client *cl, uint32_t seq)
{
	for (int i = 0; i < cl->req_count; i++) {
		request *r = &cl->req[(cl->req_head + i) % BACKEND_MAX_PENDING];
		if (r->seq != seq)
			continue;
		req_free(r);
		for (int j = i; j + 1 < cl->req_count; j++)
			cl->req[(cl->req_head + j) % BACKEND_MAX_PENDING] =
				cl->req[(cl->req_head + j + 1) % BACKEND_MAX_PENDING];
		cl->req_count--;
		return;
	}
}

/* Statements that change what the session is, beyond the transaction. */
bool client_has_effect(int kind, uint32_t flags)
{
	switch (kind) {
	case STMT_SET:
	case STMT_RESET:
	case STMT_RESET_ALL:
	case STMT_DISCARD_ALL:
	case STMT_LISTEN:
	case STMT_PREPARE:
	case STMT_LOAD:
		return true;
	case STMT_DECLARE_CURSOR:
		return (flags & STMT_F_WITH_HOLD) != 0;
	case STMT_SET_TRANSACTION:
		return (flags & STMT_F_SESSION_DEFAULTS) != 0;
	case STMT_DEALLOCATE:
		return (flags & STMT_F_ALL) != 0;
	default:
		return (flags & (STMT_F_TEMP_OBJECT | STMT_F_ADVISORY_LOCK | STMT_F_SET_CONFIG)) != 0;
	}
}

bool client_effect_of(const stmt_info *s, stmt_effect *e)
{
	/* DEALLOCATE of one statement: SQL's PREPAREd name goes. */
	bool one = s->kind == STMT_DEALLOCATE && !(s->flags & STMT_F_ALL) && s->name_len;
	if (!client_has_effect(s->kind, s->flags) && !one)
		return false;
	memset(e, 0, sizeof *e);
	e->kind = (uint16_t)s->kind;
	e->flags = s->flags;
	if (s->kind == STMT_SET || s->kind == STMT_RESET || s->kind == STMT_PREPARE || one) {
		char name[128];
		size_t nl = stmt_param_name(s, name, sizeof name);
		e->name = strndup(name, nl < sizeof name ? nl : sizeof name - 1);
		e->len = e->name ? strlen(e->name) : 0;
	}
	if (s->kind == STMT_SET_TRANSACTION) {
		/* SET SESSION CHARACTERISTICS: replayed like a SET. */
		e->kind = STMT_SET;
		e->name = strdup("session characteristics");
	}
	if (e->kind == STMT_SET) {
		e->text = strndup(s->start, s->len);
		e->len = s->len;
	}
	return true;
}

/* Note what a Query's statements will change once they complete. alone:
 * its statement, if it has one alone (else STMT_OTHER). */
static void track_query(client *cl, request *r, const pgw_str *q, stmt_info *alone)
{
	static _Thread_local stmt_info stmts[MAX_STMTS_TRACKED];
	size_t total = stmt_classify((const char *)q->ptr, q->len, stmts, MAX_STMTS_TRACKED);
	size_t n = total > MAX_STMTS_TRACKED ? MAX_STMTS_TRACKED : total;
	memset(alone, 0, sizeof *alone);
	alone->kind = STMT_OTHER;
	if (total == 1)
		*alone = stmts[0];
	if (n && (stmts[n - 1].flags & STMT_F_UNTERMINATED)) {
		/* The server rejects the whole string: nothing in it runs. */
		r->nstmts = (uint16_t)(total > UINT16_MAX ? UINT16_MAX : total);
		return;
	}
	if (total > n)
		cl->pinned = true; /* too many to follow: keep the connection as is */
	uint16_t index = 0;
	for (size_t i = 0; i < n; i++) {
		const stmt_info *s = &stmts[i];
		if (s->kind == STMT_EMPTY)
			continue; /* the server skips empty statements without a word */
		if (s->kind == STMT_DISCARD_ALL ||
		    (s->kind == STMT_DEALLOCATE && (s->flags & STMT_F_ALL)))
			ext_server_statements_dropped(cl);
		stmt_effect eff;
		if (client_effect_of(s, &eff)) {
			stmt_effect *effects = realloc(r->effects, (r->neffects + 1u) * sizeof *effects);
			if (!effects) {
				/* Without memory to track it, keep the connection. */
				free(eff.name);
				free(eff.text);
				cl->pinned = true;
				break;
			}
			r->effects = effects;
			eff.index = index;
			effects[r->neffects++] = eff;
		}
		index++;
	}
	r->nstmts = (uint16_t)(total > n ? UINT16_MAX : index);
}

static const stmt_effect *effect_at(const request *r, uint16_t index)
{
	for (uint16_t i = 0; i < r->neffects; i++)
		if (r->effects[i].index == index)
			return &r->effects[i];
	return NULL;
}

/* A statement of the head request completed with this command tag. */
static void statement_done(client *cl, const pgw_str *tag)
{
	const char *t = (const char *)tag->ptr;
	if (stmtcache_tag_changes_schema(t)) {
		stmtcache_schema_changed();
		cl->schema_in_txn = true;
	} else if (cl->schema_in_txn && strcmp(t, "ROLLBACK") == 0) {
		/* Back to the schema before (ROLLBACK TO SAVEPOINT too). */
		stmtcache_schema_changed();
	}
	if (strcmp(t, "BEGIN") == 0) {
		cl->in_block = true;
		return;
	}
	if (strcmp(t, "COMMIT") == 0 || strcmp(t, "ROLLBACK") == 0 ||
	    strcmp(t, "PREPARE TRANSACTION") == 0) {
		session_block_end(&cl->sess, t[0] != 'R');
		cl->in_block = false;
		return;
	}
	request *r = req_head(cl);
	if (!r || r->kind != REQ_QUERY)
		return;
	const stmt_effect *e = effect_at(r, r->done++);
	/* A multi-statement Query is one implicit transaction: its changes
	 * count only if all of it succeeds. */
	if (e)
		client_apply_effect(cl, e, t, cl->in_block || r->nstmts > 1);
}

void client_apply_effect(client *cl, const stmt_effect *e, const char *t, bool held)
{
	switch (e->kind) {
	case STMT_SET:
		if (e->name && e->text) {
			if (strcmp(t, "SET") == 0)
				session_change(&cl->sess, SESSION_OP_SET, e->name, e->text, e->len, held);
		}
		break;
	case STMT_RESET:
		if (e->name) {
			session_change(&cl->sess, SESSION_OP_RESET, e->name, NULL, 0, held);
			/* The server went back to its own default, not the
			 * client's startup value: set it up again next time. */
			if (session_is_startup_param(&cl->sess, e->name))
				cl->force_resync = true;
		}
		break;
	case STMT_RESET_ALL:
	case STMT_DISCARD_ALL:
		session_change(&cl->sess, SESSION_OP_RESET_ALL, NULL, NULL, 0, held);
		if (cl->sess.startup.n)
			cl->force_resync = true;
		if (e->kind == STMT_DISCARD_ALL) {
			prep_clear_named(&cl->prep);
			if (cl->gw->gw->cfg.mode == POOL_MODE_TRANSACTION)
				cl->pinned = false; /* nothing is left on the connection */
		}
		break;
	case STMT_DEALLOCATE:
		if (e->flags & STMT_F_ALL)
			prep_clear_named(&cl->prep);
		else if (e->stmt_id)
			ext_deallocated(cl, e);
		else if (e->name)
			prep_sql_remove(&cl->prep, e->name, e->len);
		break;
	case STMT_PREPARE:
		cl->pinned = true; /* the statement lives on this server connection */
		if (e->name)
			prep_sql_add(&cl->prep, e->name, e->len);
		break;
	default:
		/* LISTEN, PREPARE, temp objects, session advisory locks,
		 * set_config, LOAD, WITH HOLD cursors: state that lives on
		 * this server connection only. */
		cl->pinned = true;
		if ((e->flags & STMT_F_TEMP_OBJECT) && cl->be)
			cl->be->retire = true;
		break;
	}
}

/* ---- what the client knows of the server's parameters */

static void told_set(client *cl, const char *name, const char *value)
{
	backend_params_set(cl->told, &cl->ntold, name, value);
}

static const char *told_get(const client *cl, const char *name)
{
	for (int i = 0; i < cl->ntold; i++)
		if (strcmp(cl->told[i].name, name) == 0)
			return cl->told[i].value;
	return NULL;
}

/* ParameterStatus for every server parameter the client knows otherwise. */
static void report_params(client *cl)
{
	backend *be = cl->be;
	cl->params_held = false;
	if (!be)
		return;
	for (int i = 0; i < be->nparams; i++) {
		const char *v = told_get(cl, be->params[i].name);
		if (v && strcmp(v, be->params[i].value) == 0)
			continue;
		pgw_parameter_status ps = {
			{(const uint8_t *)be->params[i].name, (uint32_t)strlen(be->params[i].name)},
			{(const uint8_t *)be->params[i].value, (uint32_t)strlen(be->params[i].value)}};
		pgw_encode_parameter_status(conn_wbuf(&cl->conn), &ps);
		conn_wrote(&cl->conn);
		told_set(cl, be->params[i].name, be->params[i].value);
	}
}

/* ---- the server connection */

static void drop_retry(client *cl)
{
	free(cl->retry_msg);
	cl->retry_msg = NULL;
	cl->retry_len = 0;
	cl->replay = false;
}

static void release_backend(client *cl, bool discard)
{
	backend *be = cl->be;
	cl->retry_ok = false;
	if (!cl->replay)
		drop_retry(cl);
	if (!be)
		return;
	cl->be = NULL;
	backend_set_owner(be, NULL, NULL);
	cl->pooler->ops->release(cl->pooler, be, discard);
}

static void unblock(client *cl)
{
	if (!cl->blocked)
		return;
	cl->blocked = false;
	conn_read_start(&cl->conn);
	process(cl);
}

void client_unblock(client *cl)
{
	unblock(cl);
}

/* ---- database statements: a 55006 caused by idle pooled connections */

static void ddl_forget(client *cl)
{
	if (cl->ddl_sweep)
		pool_sweep_abandon(cl->ddl_sweep);
	cl->ddl_sweep = NULL;
	free(cl->ddl_db);
	free(cl->ddl_msg);
	free(cl->ddl_error);
	cl->ddl_db = NULL;
	cl->ddl_msg = cl->ddl_error = NULL;
	cl->ddl_len = cl->ddl_error_len = 0;
	cl->ddl_seq = 0;
}

/*
 * A Query about to go as request r: keep it if it is one CREATE, DROP or
 * ALTER DATABASE alone, outside a transaction (CREATE and DROP cannot run
 * in one), on a server connection of ours, with nothing else in flight:
 * going again then changes nothing but the outcome.
 */
static void ddl_arm(client *cl, const request *r, const pgw_msg *m, const stmt_info *s)
{
	char db[64];
	stmt_db_need need = stmt_exclusive_database(s, db, sizeof db);
	if (need == STMT_DB_NONE || (s->flags & STMT_F_UNTERMINATED) || cl->be->remote ||
	    cl->req_count != 1 || cl->pq_count || cl->batch_open || cl->txn_status != 'I' ||
	    m->raw_len > CLIENT_RETRY_MAX)
		return;
	/* Dropping or altering the client's own database fails whoever else
	 * is there ("cannot drop the currently open database"). */
	if (need == STMT_DB_NAMED && s->kind != STMT_CREATE_DATABASE && strcmp(db, cl->database) == 0)
		return;
	cl->ddl_msg = malloc(m->raw_len);
	cl->ddl_db = need == STMT_DB_NAMED ? strdup(db) : NULL;
	if (!cl->ddl_msg || (need == STMT_DB_NAMED && !cl->ddl_db)) {
		ddl_forget(cl);
		return;
	}
	memcpy(cl->ddl_msg, m->raw, m->raw_len);
	cl->ddl_len = m->raw_len;
	cl->ddl_seq = r->seq;
	/* The server waits up to 5 s for other sessions to leave before it
	 * refuses: idle connections closed now are gone within that wait, so
	 * the statement seldom needs to go again. */
	if (cl->ddl_db)
		pool_close_idle(&cl->gw->w, cl->ddl_db, NULL, NULL, NULL);
}

/* Something else follows it: it goes no more, and an error held back is
 * the client's, in its place. */
static void ddl_disarm(client *cl)
{
	request *head = req_head(cl);
	if (cl->ddl_error && head && head->seq == cl->ddl_seq) {
		head->error = true;
		conn_write(&cl->conn, cl->ddl_error, cl->ddl_error_len);
	}
	ddl_forget(cl);
}

static void ddl_swept(void *arg)
{
	client *cl = arg;
	cl->ddl_sweep = NULL;
	drop_retry(cl);
	cl->retry_msg = cl->ddl_msg;
	cl->retry_len = cl->ddl_len;
	cl->ddl_msg = NULL;
	ddl_forget(cl);
	cl->replay = cl->ddl_again = true;
	unblock(cl); /* the kept Query goes first (process) */
}

/*
 * A server message for the kept statement. Its 55006 is held back; at its
 * ReadyForQuery the idle connections are closed and the statement goes
 * again (ddl_swept) on the same server connection, which the server never
 * counts among the others. True: the message is taken care of.
 */
static bool ddl_answer(client *cl, pgw_msg *m)
{
	pgw_error err;
	pgw_msg d = *m;
	if (m->type == 'E' && !cl->ddl_error) {
		pgw_str v;
		if (pgw_decode_msg_body(&d, &err) != PGW_OK ||
		    !pgw_find_field(&d.body.error_response.fields, 'C', &v) ||
		    strcmp((const char *)v.ptr, "55006") != 0 ||
		    !pgw_find_field(&d.body.error_response.fields, 'V', &v) ||
		    strcmp((const char *)v.ptr, "ERROR") != 0 || !(cl->ddl_error = malloc(m->raw_len)))
			return false;
		memcpy(cl->ddl_error, m->raw, m->raw_len);
		cl->ddl_error_len = m->raw_len;
		return true;
	}
	if (m->type != 'Z')
		return false;
	if (cl->ddl_error && pgw_decode_msg_body(&d, &err) == PGW_OK &&
	    d.body.ready_for_query.status == 'I') {
		log_info("client %u: a database statement found others in %s; closing idle server "
			 "connections and trying it again",
			 cl->conn_id, cl->ddl_db ? cl->ddl_db : "other databases");
		cl->ddl_sweep = pool_close_idle(&cl->gw->w, cl->ddl_db, cl->ddl_db ? NULL : cl->database,
						ddl_swept, cl);
		if (cl->ddl_sweep) {
			ext_abandon(cl); /* made afresh when it goes again */
			req_pop(cl);
			cl->blocked = true;
			conn_read_stop(&cl->conn);
			return true;
		}
	}
	/* Not going again after all: the client hears what the server said. */
	if (cl->ddl_error) {
		req_head(cl)->error = true;
		conn_write(&cl->conn, cl->ddl_error, cl->ddl_error_len);
	}
	ddl_forget(cl);
	return false;
}

static void finish_login(client *cl);
static void start_login(client *cl);
static void send_settings(client *cl, request_kind kind);

/* The head request got its ReadyForQuery. */
static void request_done(client *cl, char status)
{
	request *r = req_head(cl);
	if (r) {
		/* An implicit transaction that ended: keep its changes only if
		 * it succeeded. */
		if (status == 'I' && cl->sess.block.n)
			session_block_end(&cl->sess, !r->error && !cl->batch_failed);
		req_pop(cl);
	}
	ext_ready(cl, status);
	cl->txn_status = status;
	cl->in_block = status != 'I';
	if (cl->req_count == 0 && !cl->batch_open)
		cl->copy_ends_early = 0; /* no COPY can start from what was sent */
	session_refresh(&cl->sess);
	if (cl->be) {
		cl->be->settings_hash = cl->force_resync ? UINT64_MAX : cl->sess.hash;
		cl->be->settings_role = cl->sess.role_changed;
	}
}

/*
 * After a RESET the server went back to its own defaults, not to the
 * client's startup values. Put those back before the client hears
 * ReadyForQuery, letting it see the ParameterStatus that results.
 */
static bool resync_after_reset(client *cl)
{
	if (!cl->force_resync || cl->txn_status != 'I' || !cl->be || cl->req_count > 0 ||
	    cl->pq_count > (cl->pq_finish ? 1u : 0u) || cl->batch_open)
		return false;
	cl->force_resync = false;
	send_settings(cl, REQ_RESYNC);
	return true;
}

/* After a ReadyForQuery reached the client: let go of the server
 * connection if nothing holds it, and read the client again. */
static void after_ready(client *cl)
{
	if (cl->req_count == 0 && cl->txn_status == 'I' && !cl->pinned && !cl->copy_in &&
	    !cl->batch_open && cl->pq_count == 0 && cl->gw->gw->cfg.mode == POOL_MODE_TRANSACTION)
		release_backend(cl, false);
	unblock(cl);
}

static void on_backend_message(void *owner, backend *be, pgw_msg *m)
{
	client *cl = owner;
	pgw_error err;
	if (cl->state == CL_LOGIN) {
		/* Setting up the session: only failures reach the client. */
		if (m->type == 'E') {
			char state[6] = "08P01", text[256] = "could not set up the session";
			pgw_str v;
			if (pgw_decode_msg_body(m, &err) == PGW_OK) {
				const pgw_array *fields = &m->body.error_response.fields;
				if (pgw_find_field(fields, 'C', &v) && v.len == 5)
					memcpy(state, v.ptr, 6);
				if (pgw_find_field(fields, 'M', &v))
					snprintf(text, sizeof text, "%s", (const char *)v.ptr);
			}
			req_head(cl)->error = true;
			send_error(cl, "FATAL", state, text);
		} else if (m->type == 'Z') {
			bool failed = req_head(cl) && req_head(cl)->error;
			req_pop(cl);
			if (failed) {
				conn_flush_now(&cl->conn);
				client_close(cl);
				return;
			}
			finish_login(cl);
		}
		return;
	}
	/* The server has begun on the client's request: never sent again. */
	if (cl->retry_msg) {
		drop_retry(cl);
		cl->retries = 0;
	}
	request *head = req_head(cl);
	if (cl->ddl_seq && head && head->seq == cl->ddl_seq && ddl_answer(cl, m))
		return;
	if (head && head->kind == REQ_RESYNC) {
		/* Only what the client would have seen from its RESET: the
		 * parameters that end up changed. */
		if (m->type == 'E') {
			log_warning("client %u: restoring settings after RESET failed", cl->conn_id);
		} else if (m->type == 'Z' && pgw_decode_msg_body(m, &err) == PGW_OK) {
			req_pop(cl);
			cl->txn_status = (char)m->body.ready_for_query.status;
			report_params(cl);
			conn_write(&cl->conn, m->raw, m->raw_len);
			after_ready(cl);
		}
		return;
	}
	ext_action act = ext_server_message(cl, m);
	if (act == EXT_SWALLOW)
		return;
	switch (m->type) {
	case 'C':
		if (pgw_decode_msg_body(m, &err) == PGW_OK)
			statement_done(cl, &m->body.command_complete.tag);
		break;
	case 'I':
		if (head)
			head->done++;
		break;
	case 'E':
		if (head)
			head->error = true;
		if (pgw_decode_msg_body(m, &err) == PGW_OK) {
			pgw_str sev;
			if (pgw_find_field(&m->body.error_response.fields, 'V', &sev) &&
			    (strcmp((const char *)sev.ptr, "FATAL") == 0 ||
			     strcmp((const char *)sev.ptr, "PANIC") == 0))
				cl->server_fatal = true;
		}
		break;
	case 'G':
		if (cl->copy_ends_early > 0) {
			cl->copy_ends_early--; /* the client has sent all of it already */
			break;
		}
		cl->copy_in = true;
		cl->dec.phase = PGW_PH_COPY_IN;
		break;
	case 'A':
		/* The client knows itself by the pid the gateway gave it: its own
		 * notifications say so, as they would from PostgreSQL. */
		if (pgw_decode_msg_body(m, &err) == PGW_OK &&
		    m->body.notification_response.pid == be->pid) {
			pgw_notification_response n = m->body.notification_response;
			n.pid = cl->pid;
			pgw_encode_notification_response(conn_wbuf(&cl->conn), &n);
			conn_wrote(&cl->conn);
			return;
		}
		break;
	case 'S':
		if (cl->force_resync) {
			/* Settings are about to be restored: what the client
			 * hears is the outcome, reported then. */
			cl->params_held = true;
			return;
		}
		if (pgw_decode_msg_body(m, &err) == PGW_OK)
			told_set(cl, (const char *)m->body.parameter_status.name.ptr,
				 (const char *)m->body.parameter_status.value.ptr);
		break;
	case 'Z':
		if (pgw_decode_msg_body(m, &err) != PGW_OK)
			break;
		request_done(cl, (char)m->body.ready_for_query.status);
		if (cl->schema_in_txn && m->body.ready_for_query.status == 'I') {
			/* The transaction that changed the schema is over, and
			 * may have been rolled back. */
			stmtcache_schema_changed();
			cl->schema_in_txn = false;
		}
		if (resync_after_reset(cl)) {
			ext_after_message(cl);
			return; /* its ReadyForQuery stands in for this one */
		}
		if (cl->params_held)
			report_params(cl);
		break;
	default:
		break;
	}
	if (act == EXT_RELAY)
		conn_write(&cl->conn, m->raw, m->raw_len);
	ext_after_message(cl);
	if (cl->be && conn_backed_up(&cl->conn))
		backend_pause(cl->be);
	if (m->type == 'Z')
		after_ready(cl);
}

/*
 * A server connection died before the server began on anything of the
 * client's: it was dead, or dying, when it was taken (terminated while
 * idle, a restart, idle_session_timeout, a dropped network), since the
 * pooler's own request in front of the client's is still unanswered. What
 * the client sent then never ran: it goes again on another connection.
 */
static bool retry_elsewhere(client *cl, backend *be)
{
	if (cl->state != CL_READY || be->remote || !backend_head_is_own(be) ||
	    cl->retries >= CLIENT_MAX_RETRIES || cl->txn_status != 'I' || cl->batch_open ||
	    cl->copy_in || cl->pinned)
		return false;
	bool nothing_sent = cl->req_count == 0 && cl->pq_count == 0;
	bool one_query = cl->req_count == 1 && req_head(cl)->kind == REQ_QUERY && cl->retry_msg &&
			 cl->pq_count == 1 && cl->pq[cl->pq_head & (cl->pq_cap - 1)].kind == PEND_QUERY;
	if (!nothing_sent && !one_query)
		return false;
	log_info("client %u: server connection %d was gone before it ran anything; %s", cl->conn_id,
		 be->pid, one_query ? "sending the query again on another" : "taking another");
	cl->retries++;
	cl->sync_wait = false;
	cl->server_fatal = false;
	if (one_query) {
		ext_abandon(cl); /* its bookkeeping is made afresh when it goes again */
		req_pop(cl);
		cl->replay = true;
	}
	/* Carry on from the loop's next turn: the dead connection is still
	 * being taken apart up the stack. */
	cl->blocked = true;
	conn_read_stop(&cl->conn);
	ev_timer_stop(cl->gw->w.loop, &cl->retry_timer);
	ev_timer_set(&cl->retry_timer, 0, 0);
	ev_timer_start(cl->gw->w.loop, &cl->retry_timer);
	return true;
}

static void on_retry_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	client *cl = (client *)((char *)t - offsetof(client, retry_timer));
	cl->blocked = true;
	unblock(cl); /* the kept Query goes first (process) */
}

static void on_backend_lost(void *owner, backend *be, const pgw_error *err)
{
	client *cl = owner;
	cl->be = NULL;
	if (retry_elsewhere(cl, be))
		return;
	if (cl->server_fatal) {
		/* The server said why it ends the session: that is all the
		 * client hears, as it would directly. */
		conn_flush_now(&cl->conn);
		client_close(cl);
		return;
	}
	log_warning("client %u lost its server connection: %s", cl->conn_id, err->message);
	fatal(cl, "08006", "the server connection was lost; the session cannot go on");
}

static void on_backend_drained(void *owner, backend *be)
{
	(void)be;
	unblock(owner);
}

/* Setting the session up on a server connection failed. When its role
 * could not be restored, nothing may run there as anyone else: the
 * session ends (fail closed). */
static void on_own_error(void *owner, backend *be, pgw_msg *m)
{
	client *cl = owner;
	(void)be;
	if (!cl->sync_wait)
		return;
	pgw_error err;
	char state[6] = "08006", text[300] = "";
	if (pgw_decode_msg_body(m, &err) == PGW_OK) {
		const pgw_array *fields = &m->body.error_response.fields;
		pgw_str v;
		/* The server is ending the connection (terminated, shutting
		 * down): nothing of the session was refused; its loss is
		 * handled when it closes (on_backend_lost). */
		if (pgw_find_field(fields, 'V', &v) &&
		    (strcmp((const char *)v.ptr, "FATAL") == 0 ||
		     strcmp((const char *)v.ptr, "PANIC") == 0))
			return;
		if (pgw_find_field(fields, 'C', &v) && v.len == 5)
			memcpy(state, v.ptr, 6);
		if (pgw_find_field(fields, 'M', &v))
			snprintf(text, sizeof text, "%.250s", (const char *)v.ptr);
	}
	char msg[400];
	snprintf(msg, sizeof msg, "could not restore the session on a server connection: %s", text);
	cl->sync_wait = false;
	client_fatal(cl, state, msg, NULL);
}

static void on_own_done(void *owner, backend *be)
{
	client *cl = owner;
	(void)be;
	if (cl->sync_wait && cl->be && !cl->be->pending_count) {
		cl->sync_wait = false;
		unblock(cl);
	}
}

static const backend_owner_ops client_backend_ops = {on_backend_message, on_backend_lost,
						     on_backend_drained, on_own_error, on_own_done};

/*
 * Make the held server connection's settings the session's: a reset, then
 * the session's own statements, sent ahead of whatever the client sends
 * next. kind: whose the last one's answers are: REQ_NONE for the
 * pooler's own (swallowed), or a request of the client's whose answers
 * the client handler sees.
 */
static void send_settings(client *cl, request_kind kind)
{
	backend *be = cl->be;
	/* The reset goes alone: should the session's own statements fail
	 * (a role dropped since, say), the connection is still left with
	 * nothing of its previous holder's. */
	const char *prefix = session_sync_prefix(&cl->sess, be->settings_role);
	bool two = cl->sess.sync_len > 0;
	backend_send_query(be, prefix, strlen(prefix), two || kind == REQ_NONE);
	if (two)
		backend_send_query(be, cl->sess.sync_sql, cl->sess.sync_len,
				   kind == REQ_NONE);
	if (kind != REQ_NONE)
		req_push(cl, kind);
	else if (cl->sess.role_changed)
		/* Who the session runs as is not pipelined past: the client's
		 * next request waits for the role to be in place. */
		cl->sync_wait = true;
	be->settings_hash = cl->sess.hash;
	be->settings_role = cl->sess.role_changed;
}

/* Hold be, set up as the session needs. */
static void take_backend(client *cl, backend *be)
{
	cl->be = be;
	backend_set_owner(be, &client_backend_ops, cl);
	cl->retry_ok = false;
	if (cl->state != CL_READY)
		return;
	if (session_needs_sync(&cl->sess, be->settings_hash))
		send_settings(cl, REQ_NONE);
	/* With nothing of the client's on it yet, a request of the pooler's
	 * own goes first (the settings, or else a bare Sync, answered by one
	 * ReadyForQuery): until it is answered the server has not begun on
	 * the client's, so a connection found dead by then costs the client
	 * nothing (retry_elsewhere). */
	if (be->remote || cl->txn_status != 'I' || cl->req_count || cl->pq_count ||
	    cl->batch_open || cl->pinned)
		return;
	if (!be->pending_count)
		backend_send_own_sync(be);
	cl->retry_ok = true;
}

static void on_granted(pool_waiter *wt, backend *be, const pgw_error *err,
		       const uint8_t *login_error, size_t login_error_len)
{
	client *cl = (client *)((char *)wt - offsetof(client, waiter));
	cl->waiting = false;
	if (!be) {
		if (cl->state == CL_LOGIN) {
			/* The server refused this user or database: its words. */
			if (login_error) {
				conn_write(&cl->conn, login_error, login_error_len);
				conn_flush_now(&cl->conn);
				client_close(cl);
			} else {
				fatal(cl, err->sqlstate, err->message);
			}
			return;
		}
		send_error(cl, "ERROR", err->sqlstate, err->message);
		if (cl->replay) {
			/* The kept Query it waited for, sent again, is answered. */
			drop_retry(cl);
			cl->retries = 0;
			send_ready(cl, cl->txn_status);
			unblock(cl);
			return;
		}
		/* The request never reached a server: answer for it, and drop
		 * the message that asked for it. In an extended-protocol batch
		 * the rest of it goes too, up to the Sync answered here. */
		pgw_msg m;
		size_t used;
		pgw_error e2;
		if (pgw_frame(&cl->dec, pgw_rbuf_data(&cl->conn.in), pgw_rbuf_len(&cl->conn.in), &m,
			      &used, &e2) == PGW_OK) {
			pgw_rbuf_consume(&cl->conn.in, used);
			if (m.type == 'Q' || m.type == 'F' || m.type == 'S')
				send_ready(cl, cl->txn_status);
			else
				cl->ext_skip = cl->skip_local = true;
		}
		unblock(cl);
		return;
	}
	take_backend(cl, be);
	if (cl->state == CL_LOGIN) {
		start_login(cl);
		return;
	}
	unblock(cl);
}

/* Logged in: set the session up on the server connection it holds. */
static void start_login(client *cl)
{
	/* In session mode the client is told its server connection's pid:
	 * through a multipooler that is known once a call has reserved the
	 * connection, so the settings go even when nothing differs. */
	bool need_pid = cl->be->remote && cl->gw->gw->cfg.mode == POOL_MODE_SESSION;
	if (!need_pid && !session_needs_sync(&cl->sess, cl->be->settings_hash)) {
		finish_login(cl);
		return;
	}
	/* Apply the startup parameters; the server judges them. */
	send_settings(cl, REQ_LOGIN);
}

/* Returns false when the caller must wait (the client is then blocked). */
bool client_ensure_backend(client *cl)
{
	if (cl->be)
		return true;
	if (!cl->waiting) {
		backend *be = cl->pooler->ops->acquire(cl->pooler, &cl->waiter, on_granted);
		if (be) {
			take_backend(cl, be);
			return true;
		}
		cl->waiting = true;
	}
	return false;
}

void client_cancel_waiting(client *cl)
{
	cl->pooler->ops->cancel_wait(cl->pooler, &cl->waiter);
	pgw_error err = {.severity = PGW_SEV_ERROR};
	memcpy(err.sqlstate, "57014", 6);
	snprintf(err.message, sizeof err.message, "canceling statement due to user request");
	on_granted(&cl->waiter, NULL, &err, NULL, 0);
}

/* ---- login */

static void finish_login(client *cl)
{
	backend *be = cl->be;
	pgw_wbuf *w = conn_wbuf(&cl->conn);
	for (int i = 0; i < be->nparams; i++) {
		told_set(cl, be->params[i].name, be->params[i].value);
		pgw_parameter_status ps = {
			{(const uint8_t *)be->params[i].name, (uint32_t)strlen(be->params[i].name)},
			{(const uint8_t *)be->params[i].value, (uint32_t)strlen(be->params[i].value)}};
		pgw_encode_parameter_status(w, &ps);
	}
	/* In session mode the client keeps this server connection for life:
	 * it is told its real pid, so pg_backend_pid() and the pid in
	 * pg_stat_activity or pg_locks agree with what it was told (tools such
	 * as isolationtester rely on that). */
	if (cl->gw->gw->cfg.mode == POOL_MODE_SESSION)
		cl->pid = backend_server_pid(be);
	pgw_backend_key_data kd = {cl->pid, {cl->key, cl->key_len}};
	pgw_encode_backend_key_data(w, &kd);
	conn_wrote(&cl->conn);
	send_ready(cl, 'I');
	cl->state = CL_READY;
	cl->txn_status = 'I';
	cl->dec.phase = PGW_PH_READY;
	ev_timer_stop(cl->gw->w.loop, &cl->login_timer);
	if (cl->gw->gw->cfg.mode == POOL_MODE_SESSION)
		cl->pinned = true;
	else
		release_backend(cl, false);
	log_debug("client %u logged in as %s to %s", cl->conn_id, cl->user, cl->database);
	unblock(cl);
}

void client_auth_ok(client *cl)
{
	static const uint8_t auth_ok[9] = {'R', 0, 0, 0, 8, 0, 0, 0, 0};
	conn_write(&cl->conn, auth_ok, sizeof auth_ok);
	cl->state = CL_LOGIN;
	cl->dec.phase = PGW_PH_READY;
	if (cl->repl) {
		repl_start(cl); /* a server connection of its own, not the pool's */
		return;
	}
	if (client_ensure_backend(cl))
		start_login(cl);
}

/* ---- client messages */

typedef client_step step;

/* Forward a Query or FunctionCall, borrowing a connection if needed. */
static step forward(client *cl, const pgw_msg *m, request_kind kind)
{
	if (cl->ext_skip)
		return STEP_DONE; /* skipped to the Sync, as the server would */
	if (!client_ensure_backend(cl) || cl->sync_wait)
		return STEP_WAIT;
	backend *be = cl->be;
	if (!backend_can_send(be) || cl->req_count >= BACKEND_MAX_PENDING - 2 ||
	    conn_backed_up(&be->conn))
		return STEP_WAIT;
	request *r = req_push(cl, kind);
	bool drops = false;
	/* Sent again after a 55006 (ddl_answer): once only. */
	bool ddl_again = cl->ddl_again && m->raw == cl->retry_msg;
	cl->ddl_again = false;
	ext_mapped mapped = {0};
	if (kind == REQ_QUERY) {
		pgw_msg q = *m;
		pgw_error err;
		stmt_info alone;
		if (pgw_decode_msg_body(&q, &err) == PGW_OK) {
			track_query(cl, r, &q.body.query.query, &alone);
			if (!ddl_again)
				ddl_arm(cl, r, m, &alone);
			ext_map_query(cl, r, (const char *)q.body.query.query.ptr, q.body.query.query.len,
				      &mapped);
		}
		be->unnamed_uid = 0; /* a simple Query drops the unnamed statement */
		for (uint16_t i = 0; i < r->neffects; i++)
			if (r->effects[i].kind == STMT_DISCARD_ALL || r->effects[i].kind == STMT_DEALLOCATE)
				drops = true;
	}
	if (m->raw != cl->retry_msg) {
		/* A new request: kept, to go again, only as the first on a
		 * connection just taken (see take_backend). */
		drop_retry(cl);
		cl->retries = 0;
		if (cl->retry_ok && kind == REQ_QUERY && cl->req_count == 1 &&
		    m->raw_len <= CLIENT_RETRY_MAX && (cl->retry_msg = malloc(m->raw_len))) {
			memcpy(cl->retry_msg, m->raw, m->raw_len);
			cl->retry_len = m->raw_len;
		}
	}
	cl->retry_ok = false;
	if (mapped.sql)
		backend_send_query(be, mapped.sql, mapped.len, false);
	else
		backend_send(be, m->raw, m->raw_len, 1);
	free(mapped.sql);
	ext_expect_request(cl, kind == REQ_FUNCTION, r->seq, drops, &mapped);
	return STEP_DONE;
}

/* The kept Query, again, on another server connection. */
static step replay_request(client *cl)
{
	pgw_decoder d;
	pgw_decoder_init(&d, PGW_FRONTEND, cl->gw->gw->cfg.max_message);
	d.phase = PGW_PH_READY;
	pgw_msg m;
	size_t used;
	pgw_error err;
	if (!cl->retry_msg ||
	    pgw_frame(&d, cl->retry_msg, cl->retry_len, &m, &used, &err) != PGW_OK) {
		drop_retry(cl); /* cannot happen: it was framed once already */
		fatal(cl, "08006", "the server connection was lost; the session cannot go on");
		return STEP_CLOSED;
	}
	step s = forward(cl, &m, REQ_QUERY);
	if (s == STEP_DONE)
		cl->replay = false; /* kept until answered, should it die again */
	return s;
}

/* DEALLOCATE of a statement the session made with Parse: answered here,
 * since the server connection holds it under another name, if at all.
 * False: not such a statement, the server answers it. */
static bool local_deallocate(client *cl, const pgw_msg *m, step *out)
{
	pgw_msg q = *m;
	pgw_error err;
	if (cl->prep.count == 0 || pgw_decode_msg_body(&q, &err) != PGW_OK)
		return false;
	char name[64];
	size_t n = ext_deallocate_target((const char *)q.body.query.query.ptr,
					 q.body.query.query.len, name, sizeof name);
	if (!n)
		return false;
	if (cl->ext_skip || !prep_find(&cl->prep, name, n))
		return false;
	/* Answered once all before it is, so the answer is in its place and
	 * the transaction's state known (in a failed one the server refuses). */
	if (ext_wait_for_answers(cl)) {
		*out = STEP_WAIT;
		return true;
	}
	if (cl->txn_status == 'E')
		return false;
	prep_unref(prep_remove(&cl->prep, name, n));
	prep_set_unnamed(&cl->prep, NULL); /* as any simple Query does */
	static const uint8_t done[16] = {'C', 0, 0, 0, 15, 'D', 'E', 'A', 'L', 'L', 'O', 'C', 'A', 'T', 'E', 0};
	conn_write(&cl->conn, done, sizeof done);
	send_ready(cl, cl->txn_status);
	*out = STEP_DONE;
	return true;
}

static step on_ready_message(client *cl, const pgw_msg *m)
{
	if (cl->ddl_seq && m->type != 'X')
		ddl_disarm(cl);
	if (m->type != 'Q')
		cl->retry_ok = false; /* only a simple Query is kept to go again */
	switch (m->type) {
	case 'Q': {
		step st;
		return local_deallocate(cl, m, &st) ? st : forward(cl, m, REQ_QUERY);
	}
	case 'F':
		return forward(cl, m, REQ_FUNCTION);
	case 'P':
	case 'B':
	case 'D':
	case 'E':
	case 'C':
	case 'S':
	case 'H':
		return ext_client_message(cl, m);
	case 'd':
	case 'c':
	case 'f':
		/* Clients may send the data right behind the COPY, before its
		 * CopyInResponse: whatever is in flight may be a COPY. With
		 * nothing in flight the server would ignore these. */
		if (!cl->be || (!cl->copy_in && cl->req_count == 0 && !cl->batch_open))
			return STEP_DONE;
		if (conn_backed_up(&cl->be->conn))
			return STEP_WAIT;
		backend_send(cl->be, m->raw, m->raw_len, 0);
		if (m->type != 'd') {
			if (cl->copy_in) {
				cl->copy_in = false;
				cl->dec.phase = PGW_PH_READY;
			} else {
				cl->copy_ends_early++;
				ext_copy_ended_early(cl);
			}
		}
		return STEP_DONE;
	case 'X':
		client_close(cl);
		return STEP_CLOSED;
	default:
		return STEP_DONE;
	}
}

/* Handle what is buffered, until it runs out or must wait. */
static void process(client *cl)
{
	while (cl->state != CL_CLOSED && !cl->blocked) {
		if (cl->repl && cl->state == CL_READY) {
			repl_client_input(cl); /* bytes, relayed as they are */
			return;
		}
		if (cl->replay && cl->state == CL_READY) {
			/* Sent before it, so it goes again before it. */
			step s = replay_request(cl);
			if (s == STEP_CLOSED)
				return;
			if (s == STEP_WAIT) {
				cl->blocked = true;
				conn_read_stop(&cl->conn);
				return;
			}
			continue;
		}
		size_t have = pgw_rbuf_len(&cl->conn.in);
		if (have == 0)
			return;
		if (cl->state == CL_LOGIN) {
			cl->blocked = true; /* nothing is read until the login ends */
			conn_read_stop(&cl->conn);
			return;
		}
		pgw_msg m;
		pgw_error err;
		size_t used;
		bool whole = cl->state == CL_STARTUP || cl->state == CL_AUTH;
		pgw_status st = whole ? pgw_decode(&cl->dec, pgw_rbuf_data(&cl->conn.in), have, &m,
						   &used, &err)
				      : pgw_frame(&cl->dec, pgw_rbuf_data(&cl->conn.in), have, &m,
						  &used, &err);
		if (st == PGW_NEED_MORE)
			return;
		if (st == PGW_ERR) {
			if (cl->state == CL_AUTH && err.severity == PGW_SEV_ERROR)
				err.severity = PGW_SEV_FATAL; /* an error while logging in ends it */
			if (err.lost_sync && cl->copy_in && cl->be) {
				/* A message COPY FROM STDIN does not allow: the
				 * server reports it, with the COPY's context, and
				 * ends the session. */
				backend_send(cl->be, pgw_rbuf_data(&cl->conn.in), have, 0);
				pgw_rbuf_consume(&cl->conn.in, have);
				cl->blocked = true;
				conn_read_stop(&cl->conn);
				return;
			}
			if (err.lost_sync || err.severity != PGW_SEV_ERROR || cl->state == CL_STARTUP) {
				decode_fault(cl, &err);
				return;
			}
			/* A bad body in a well-framed message: the server gives
			 * the exact answer, so it goes there like any other. */
			st = pgw_frame(&cl->dec, pgw_rbuf_data(&cl->conn.in), have, &m, &used, &err);
		}
		step s;
		if (cl->state == CL_STARTUP) {
			s = client_startup_packet(cl, &m, used);
		} else if (cl->state == CL_AUTH) {
			client_auth_message(cl, &m);
			s = cl->state == CL_CLOSED ? STEP_CLOSED : STEP_DONE;
		} else {
			s = on_ready_message(cl, &m);
		}
		if (s == STEP_CLOSED)
			return;
		if (s == STEP_WAIT) {
			cl->blocked = true;
			conn_read_stop(&cl->conn);
			return;
		}
		pgw_rbuf_consume(&cl->conn.in, used);
	}
}

static void on_readable(net_conn *c)
{
	client *cl = c->owner;
	if (cl->blocked)
		return; /* a TLS read fed while waiting for the server side */
	if (cl->state == CL_STARTUP && !client_start_direct_tls(cl))
		return;
	ssize_t n = conn_fill(c, cl->dec.need);
	if (n == 0) {
		client_close(cl);
		return;
	}
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		if (c->ssl && errno == EPROTO)
			log_info("client %u: TLS handshake or record failed", cl->conn_id);
		client_close(cl);
		return;
	}
	if (cl->direct_tls && SSL_is_init_finished(c->ssl)) {
		/* PostgreSQL 17 insists on ALPN for direct TLS, and closes
		 * without a word, as soon as the handshake is done, when it is
		 * missing. */
		cl->direct_tls = false;
		if (!tls_alpn_postgresql(c->ssl)) {
			log_info("client %u: direct TLS without ALPN \"postgresql\"", cl->conn_id);
			client_close(cl);
			return;
		}
	}
	if (n > 0)
		process(cl);
}

static void on_drained(net_conn *c)
{
	client *cl = c->owner;
	if (cl->repl) {
		repl_client_drained(cl);
		return;
	}
	if (cl->be && cl->be->paused)
		backend_resume(cl->be);
}

static void on_conn_error(net_conn *c, int err)
{
	client *cl = c->owner;
	log_debug("client %u: %s", cl->conn_id, strerror(err));
	client_close(cl);
}

static const net_conn_ops client_conn_ops = {on_readable, on_drained, on_conn_error};

/* Like PostgreSQL's authentication_timeout: a client still not logged in
 * is dropped without a word while its startup packet is incomplete, and
 * with a FATAL once the gateway has spoken to it. */
static void on_login_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	client *cl = (client *)((char *)t - offsetof(client, login_timer));
	log_info("client %u: login timed out", cl->conn_id);
	if (cl->state == CL_STARTUP)
		client_close(cl);
	else
		fatal(cl, "57014", "canceling authentication due to timeout");
}

void client_accept(gw_worker *gw, int fd, bool is_unix)
{
	client *cl = calloc(1, sizeof *cl);
	if (!cl) {
		close(fd);
		return;
	}
	conn_init(&cl->conn, &gw->w, fd, &client_conn_ops, cl);
	cl->gw = gw;
	cl->is_unix = is_unix;
	cl->conn_id = ++gw->next_conn_id & 0xffffff;
	cl->pid = (int32_t)(((uint32_t)gw->w.index << 24) | cl->conn_id);
	/* A CSPRNG key; its length is fixed once the protocol is known. */
	if (getrandom(cl->key, sizeof cl->key, 0) != (ssize_t)sizeof cl->key) {
		log_error("getrandom failed: %s", strerror(errno));
		close(fd);
		free(cl);
		return;
	}
	cl->key_len = 4;
	pgw_decoder_init(&cl->dec, PGW_FRONTEND, gw->gw->cfg.max_message);
	session_init(&cl->sess);
	ev_timer_init(&cl->retry_timer, on_retry_timer, 0, 0);
	cl->txn_status = 'I';
	cl->next = gw->clients;
	if (gw->clients)
		gw->clients->prev = cl;
	gw->clients = cl;
	gw->nclients++;
	__atomic_add_fetch(&gw->gw->total_clients, 1, __ATOMIC_RELAXED);
	ev_timer_init(&cl->login_timer, on_login_timeout, gw->gw->cfg.login_timeout, 0);
	if (gw->gw->cfg.login_timeout > 0)
		ev_timer_start(gw->w.loop, &cl->login_timer);
	conn_read_start(&cl->conn);
}

void client_close(client *cl)
{
	if (cl->state == CL_CLOSED)
		return;
	cl->state = CL_CLOSED;
	ev_timer_stop(cl->gw->w.loop, &cl->login_timer);
	client_auth_free(&cl->auth);
	repl_free(cl);
	if (cl->waiting)
		cl->pooler->ops->cancel_wait(cl->pooler, &cl->waiter);
	/* Whatever it left behind on the server is cleaned up before the
	 * connection serves anyone else. */
	ext_abandon(cl);
	release_backend(cl, cl->pinned || cl->gw->gw->cfg.mode == POOL_MODE_SESSION);
	ext_free(cl);
	while (cl->req_count)
		req_pop(cl);
	gw_worker *gw = cl->gw;
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		gw->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	gw->nclients--;
	__atomic_sub_fetch(&gw->gw->total_clients, 1, __ATOMIC_RELAXED);
	conn_close(&cl->conn);
	session_free(&cl->sess);
	ev_timer_stop(gw->w.loop, &cl->retry_timer);
	drop_retry(cl);
	ddl_forget(cl);
	/* Freed when the loop iteration ends: callers up the stack may still
	 * look at cl->state. */
	cl->prev = NULL;
	cl->next = gw->closed;
	gw->closed = cl;
}

void client_free_closed(gw_worker *gw)
{
	while (gw->closed) {
		client *cl = gw->closed;
		gw->closed = cl->next;
		free(cl->user);
		free(cl->database);
		for (int i = 0; i < cl->ntold; i++) {
			free(cl->told[i].name);
			free(cl->told[i].value);
		}
		free(cl);
	}
}

void client_close_all(gw_worker *gw)
{
	while (gw->clients) {
		client *cl = gw->clients;
		if (cl->state == CL_READY && cl->req_count == 0)
			send_error(cl, "FATAL", "57P01", "terminating connection due to administrator command");
		conn_flush_now(&cl->conn);
		client_close(cl);
	}
}
