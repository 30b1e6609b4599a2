/*
 * The extended query protocol: the session's prepared statements mapped
 * onto the server connection's, and the queue that keeps the server's
 * answers, the gateway's own and the client's messages in step.
 */
#include "gateway/extended.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "sql/stmt.h"

/* Answers outstanding before reading the client pauses: the server
 * flushes its output as it goes, so the queue drains. */
#define PQ_HIGH 8192
#define PQ_LOW 1024

/* A statement name no server connection holds: messages sent with it
 * make the server itself raise "does not exist", with every field as
 * PostgreSQL words it; the client's name is put back in the text. */
#define POISON_NAME STMTCACHE_PREFIX "0"

#define NAMEDATALEN_MAX 1024

/* Characters in [s, e): UTF-8's, which ASCII and the server's other
 * encodings' names rarely differ from. */
static size_t chars(const char *s, const char *e)
{
	size_t n = 0;
	for (; s < e; s++)
		n += ((uint8_t)*s & 0xC0) != 0x80;
	return n;
}

/* ---- the queue */

static pend *pq_at(client *cl, uint32_t i)
{
	return &cl->pq[(cl->pq_head + i) & (cl->pq_cap - 1)];
}

static pend *pq_head(client *cl)
{
	return cl->pq_count ? pq_at(cl, 0) : NULL;
}

static pend *pq_push(client *cl, pend_kind kind)
{
	if (cl->pq_count == cl->pq_cap) {
		uint32_t cap = cl->pq_cap ? cl->pq_cap * 2 : 16;
		pend *q = malloc(cap * sizeof *q);
		if (!q)
			return NULL;
		for (uint32_t i = 0; i < cl->pq_count; i++)
			q[i] = *pq_at(cl, i);
		free(cl->pq);
		cl->pq = q;
		cl->pq_cap = cap;
		cl->pq_head = 0;
	}
	pend *p = pq_at(cl, cl->pq_count++);
	memset(p, 0, sizeof *p);
	p->kind = (uint8_t)kind;
	return p;
}

static void free_aliases(pend_alias *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		prep_unref(a[i].stmt);
	free(a);
}

static void pend_release(pend *p)
{
	prep_unref(p->stmt);
	prep_unref(p->prev);
	p->stmt = p->prev = NULL;
	free_aliases(p->aliases, p->naliases);
	p->aliases = NULL;
	p->naliases = 0;
}

/* A message that changes the session's statements: until the server has
 * answered it, it may yet not have happened (an error before it). */
static void mark_settles(client *cl, pend *p)
{
	if (!p->settles) {
		p->settles = true;
		cl->undo_pushed++;
	}
}

static void set_undo(client *cl, pend *p, pend_undo kind)
{
	p->undo = (uint8_t)kind;
	if (kind != UNDO_NONE)
		mark_settles(cl, p);
}

/* Are changes of an earlier batch still unanswered? */
static bool unsettled(const client *cl)
{
	return (int32_t)(cl->settle_mark - cl->undo_settled) > 0;
}

static void pq_pop(client *cl)
{
	if (pq_head(cl)->settles)
		cl->undo_settled++;
	pend_release(pq_head(cl));
	cl->pq_head = (cl->pq_head + 1) & (cl->pq_cap - 1);
	cl->pq_count--;
}

/* Take out entry i (not the head), keeping the order of the others. */
static void pq_remove_at(client *cl, uint32_t i)
{
	pend_release(pq_at(cl, i));
	for (; i + 1 < cl->pq_count; i++)
		*pq_at(cl, i) = *pq_at(cl, i + 1);
	cl->pq_count--;
}

/* The gateway's own answers at the head go out as soon as everything
 * before them has been answered. */
static void emit_locals(client *cl)
{
	pend *p;
	while ((p = pq_head(cl)) && (p->kind == PEND_LOCAL || p->kind == PEND_COPY_END)) {
		if (p->kind == PEND_LOCAL && p->local_type == 'C') {
			static const uint8_t done[16] = {'C', 0, 0, 0, 15, 'D', 'E', 'A', 'L', 'L',
							 'O', 'C', 'A', 'T', 'E', 0};
			conn_write(&cl->conn, done, sizeof done);
		} else if (p->kind == PEND_LOCAL) {
			uint8_t m[5] = {p->local_type, 0, 0, 0, 4};
			conn_write(&cl->conn, m, sizeof m);
		}
		pq_pop(cl);
	}
}

/* ---- what the server did not do */

static void forget_server_statement(client *cl, uint32_t id)
{
	if (!cl->be || !id)
		return;
	stmtcache_entry *e = stmtcache_find_id(&cl->be->stmts, id);
	if (e)
		stmtcache_remove(&cl->be->stmts, e);
}

/*
 * "cached plan must not change result type": the server statement's result
 * columns changed (ALTER TABLE) since it was prepared, and it will fail
 * this way for good. PostgreSQL plans a statement the client prepares
 * afresh, so no cache may hand this one out again: the statement of that
 * query is forgotten on every server connection (see pool_forget_statement).
 */
static bool is_stale_plan(const pgw_msg *m)
{
	pgw_msg c = *m;
	pgw_error err;
	pgw_str code;
	return pgw_decode_msg_body(&c, &err) == PGW_OK &&
	       pgw_find_field(&c.body.error_response.fields, 'C', &code) && code.len == 5 &&
	       memcmp(code.ptr, "0A000", 5) == 0;
}

static void forget_stale_plan(client *cl, uint32_t id)
{
	stmtcache_entry *e = cl->be ? stmtcache_find_id(&cl->be->stmts, id) : NULL;
	if (e)
		pool_forget_stale(cl->be, e);
}

/* The server skipped p's message, or it failed: the session is as if the
 * client had not sent it, but for what a failed message did first. */
static void undo(client *cl, pend *p, bool failed)
{
	prep_stmt *s = p->stmt;
	switch (p->undo) {
	case UNDO_ADDED:
		if (prep_find(&cl->prep, s->name, s->name_len) == s)
			prep_unref(prep_remove(&cl->prep, s->name, s->name_len));
		break;
	case UNDO_UNNAMED:
		/* A Parse of the unnamed statement drops the previous one
		 * before anything can fail. */
		if (cl->prep.unnamed == s)
			prep_set_unnamed(&cl->prep, failed ? NULL : p->prev);
		if (cl->be && cl->be->unnamed_uid == s->uid)
			cl->be->unnamed_uid = 0; /* what the server holds is unknown */
		break;
	case UNDO_CLOSED:
		if (!prep_find(&cl->prep, s->name, s->name_len) && prep_insert(&cl->prep, s) != 0)
			log_warning("client %u: out of memory restoring a statement", cl->conn_id);
		break;
	case UNDO_DROPPED_UNNAMED:
		if (!cl->prep.unnamed)
			prep_set_unnamed(&cl->prep, s);
		break;
	default:
		break;
	}
	if (p->settles)
		cl->undo_settled++;
	p->settles = false;
	p->undo = UNDO_NONE;
	if (p->kind == PEND_PARSE || p->kind == PEND_OWN_PARSE)
		forget_server_statement(cl, p->stmt_id);
	if (p->kind == PEND_QUERY || p->kind == PEND_FUNCTION || p->kind == PEND_SYNC) {
		client_forget_request(cl, p->seq);
		if (cl->be)
			backend_forget_request(cl->be);
	}
}

/* An error ended the head's answer: the server skips what follows up to
 * the next Sync, and so does the gateway. What the failed message and the
 * skipped ones did to the session is taken back, the last first (a Close
 * then a Parse of the same name, say). */
static void fail_to_sync(client *cl)
{
	uint32_t n = 1;
	while (n < cl->pq_count && pq_at(cl, n)->kind != PEND_SYNC)
		n++;
	for (uint32_t i = n; i-- > 0;)
		undo(cl, pq_at(cl, i), i == 0);
	for (uint32_t i = 0; i < n; i++)
		pq_pop(cl);
	if (!cl->pq_count)
		cl->ext_skip = true; /* the Sync is still to come */
	cl->batch_failed = true;
}

/* ---- errors in the client's terms */

/* A server statement's name, quoted as errors quote it. */
static size_t quoted_server_name(uint32_t id, char *buf)
{
	buf[0] = '"';
	size_t n = id ? stmtcache_name(id, buf + 1) : sizeof POISON_NAME - 1;
	if (!id)
		memcpy(buf + 1, POISON_NAME, n);
	buf[n + 1] = '"';
	return n + 2;
}

/* A character position (the 'P' field) in the text sent, put back in the
 * text the client sent: the server's names it holds differ in length. */
static void write_position(pgw_wbuf *w, const char *t, size_t len, const pend_alias *al, size_t nal)
{
	char num[24];
	long pos = 0;
	size_t i = 0;
	for (; i < len && i < 12 && t[i] >= '0' && t[i] <= '9'; i++)
		pos = pos * 10 + (t[i] - '0');
	if (i != len || i == 0) {
		pgw_w_cstr(w, t, len);
		return;
	}
	long at = pos;
	for (size_t k = 0; k < nal; k++)
		if ((size_t)at > al[k].end)
			pos -= al[k].delta;
	int n = snprintf(num, sizeof num, "%ld", pos > 0 ? pos : 1);
	pgw_w_cstr(w, num, (size_t)n);
}

/* The server's ErrorResponse with the server statement names of ids[]
 * replaced by the client's names of stmts[], wherever they appear in
 * quotes; with aliases, positions are the client's text's. */
static void write_renamed_error(client *cl, pgw_msg *m, const uint32_t *ids,
				const prep_stmt *const *stmts, size_t n, const pend_alias *al,
				size_t nal)
{
	char from[8][STMTCACHE_NAME_MAX + 2];
	size_t flen[8];
	n = n < 8 ? n : 8;
	for (size_t k = 0; k < n; k++)
		flen[k] = quoted_server_name(ids[k], from[k]);
	pgw_wbuf *w = conn_wbuf(&cl->conn);
	size_t at = pgw_w_begin(w, 'E');
	pgw_iter it = pgw_array_iter(&m->body.error_response.fields);
	uint8_t code;
	pgw_str text;
	while (pgw_next_field(&it, &code, &text)) {
		pgw_w_u8(w, code);
		const char *t = (const char *)text.ptr, *end = t + text.len;
		if (code == 'P' && nal) {
			write_position(w, t, text.len, al, nal);
			continue;
		}
		while (t < end) {
			const char *hit = NULL;
			size_t which = 0;
			for (size_t k = 0; k < n; k++) {
				const char *h = memmem(t, (size_t)(end - t), from[k], flen[k]);
				if (h && (!hit || h < hit)) {
					hit = h;
					which = k;
				}
			}
			if (!hit)
				break;
			pgw_w_bytes(w, t, (size_t)(hit - t));
			pgw_w_u8(w, '"');
			pgw_w_bytes(w, stmts[which]->name, stmts[which]->name_len);
			pgw_w_u8(w, '"');
			t = hit + flen[which];
		}
		pgw_w_cstr(w, t, (size_t)(end - t));
	}
	pgw_w_u8(w, 0);
	pgw_w_end(w, at);
	conn_wrote(&cl->conn);
}

/* The server's ErrorResponse in the client's terms: its statement's name
 * (or a Query's statements' names) put back. */
static void write_error(client *cl, pgw_msg *m, const pend *p)
{
	const prep_stmt *s = p->stmt;
	pgw_error err;
	if (p->duplicate) {
		char msg[NAMEDATALEN_MAX + 64];
		snprintf(msg, sizeof msg, "prepared statement \"%s\" already exists", s->name);
		pgw_wbuf *w = conn_wbuf(&cl->conn);
		size_t at = pgw_w_begin(w, 'E');
		static const char *const fields[] = {"SERROR", "VERROR", "C42P05", NULL, "Fprepare.c",
						     "RStorePreparedStatement"};
		for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
			if (fields[i]) {
				pgw_w_cstr(w, fields[i], strlen(fields[i]));
			} else {
				pgw_w_u8(w, 'M');
				pgw_w_cstr(w, msg, strlen(msg));
			}
		}
		pgw_w_u8(w, 0);
		pgw_w_end(w, at);
		conn_wrote(&cl->conn);
		return;
	}
	if (p->naliases && pgw_decode_msg_body(m, &err) == PGW_OK) {
		uint32_t ids[8];
		const prep_stmt *stmts[8];
		size_t n = 0;
		for (size_t k = 0; k < p->naliases && n < 8; k++) {
			ids[n] = p->aliases[k].id;
			stmts[n++] = p->aliases[k].stmt;
		}
		write_renamed_error(cl, m, ids, stmts, n, p->aliases, p->naliases);
		return;
	}
	if (!s || (p->kind != PEND_BIND && p->kind != PEND_DESCRIBE && p->kind != PEND_OWN_PARSE) ||
	    pgw_decode_msg_body(m, &err) != PGW_OK) {
		conn_write(&cl->conn, m->raw, m->raw_len);
		return;
	}
	write_renamed_error(cl, m, &p->stmt_id, &s, 1, NULL, 0);
}

/* ---- the server's answers */

static bool ends_answer(const pend *p, uint8_t type)
{
	switch (p->kind) {
	case PEND_PARSE:
	case PEND_OWN_PARSE:
		return type == '1';
	case PEND_BIND:
		return type == '2';
	case PEND_DESCRIBE:
		return type == 'T' || type == 'n';
	case PEND_EXECUTE:
		return type == 'C' || type == 'I' || type == 's';
	case PEND_CLOSE:
	case PEND_OWN_CLOSE:
		return type == '3';
	default: /* Sync, Query, FunctionCall */
		return type == 'Z';
	}
}

/* COPY FROM STDIN began: the server ignores the Syncs the client sent
 * behind the Execute (libpq sends one), so none of them is answered. */
static void copy_in_started(client *cl)
{
	bool removed = false;
	while (cl->pq_count > 1 && pq_at(cl, 1)->kind == PEND_SYNC) {
		undo(cl, pq_at(cl, 1), false);
		pq_remove_at(cl, 1);
		removed = true;
	}
	if (!removed)
		return;
	/* Unless the client sent one after ending the COPY, the server still
	 * waits for a Sync. */
	cl->batch_open = true;
	for (uint32_t i = 1; i < cl->pq_count; i++)
		if (pq_at(cl, i)->kind == PEND_SYNC)
			cl->batch_open = false;
}

ext_action ext_server_message(client *cl, pgw_msg *m)
{
	uint8_t t = m->type;
	cl->pq_finish = false;
	if (t == 'N' || t == 'S' || t == 'A')
		return EXT_RELAY; /* not an answer to any one message */
	pend *p = pq_head(cl);
	if (!p)
		return EXT_RELAY;
	bool own = p->kind == PEND_OWN_PARSE || p->kind == PEND_OWN_CLOSE || p->kind == PEND_OWN_SYNC;
	if (t == 'E' && p->quiet) {
		/* A statement a Query names could not be prepared: the server
		 * skips to the gateway's Sync, and the Query then fails on the
		 * name, as it would on the statement's own failure. */
		while (cl->pq_count && pq_head(cl)->kind != PEND_OWN_SYNC) {
			undo(cl, pq_head(cl), true);
			pq_pop(cl);
		}
		return EXT_SWALLOW;
	}
	if (t == 'E' && p->kind == PEND_QUERY && p->naliases) {
		write_error(cl, m, p);
		return EXT_WRITTEN;
	}
	if (t == 'E' && p->kind != PEND_SYNC && p->kind != PEND_QUERY && p->kind != PEND_FUNCTION &&
	    p->kind != PEND_OWN_SYNC) {
		/* The failing message's effects are taken back; an own Parse
		 * failing is the failure of the client's message it served. */
		if (p->kind == PEND_BIND && p->stmt_id && is_stale_plan(m))
			forget_stale_plan(cl, p->stmt_id);
		write_error(cl, m, p);
		fail_to_sync(cl);
		cl->pq_finish = false;
		return EXT_WRITTEN;
	}
	if (p->kind == PEND_EXECUTE) {
		if (t == 'C' && p->stmt && p->stmt->effect) {
			pgw_msg c = *m;
			pgw_error err;
			if (pgw_decode_msg_body(&c, &err) == PGW_OK)
				client_apply_effect(cl, p->stmt->effect,
						    (const char *)c.body.command_complete.tag.ptr, true);
		} else if (t == 'G') {
			copy_in_started(cl);
		}
	}
	if (!ends_answer(p, t))
		return own ? EXT_SWALLOW : EXT_RELAY;
	if (p->kind == PEND_PARSE || p->kind == PEND_OWN_PARSE) {
		stmtcache_entry *e =
			p->stmt_id && cl->be ? stmtcache_find_id(&cl->be->stmts, p->stmt_id) : NULL;
		if (e)
			e->ready = true;
	}
	if (own) {
		pq_pop(cl);
		emit_locals(cl);
		return EXT_SWALLOW;
	}
	cl->pq_finish = true;
	return EXT_RELAY;
}

void ext_after_message(client *cl)
{
	if (cl->pq_finish) {
		cl->pq_finish = false;
		pq_pop(cl);
	}
	emit_locals(cl);
	if (cl->pq_blocked && cl->pq_count < PQ_LOW && !unsettled(cl)) {
		cl->pq_blocked = false;
		client_unblock(cl);
	}
}

void ext_ready(client *cl, char status)
{
	cl->batch_failed = false;
	if (status == 'I')
		prep_portal_clear(&cl->prep);
}

/* ---- sending to the server */

static void send_raw(client *cl, const pgw_msg *m)
{
	backend_send(cl->be, m->raw, m->raw_len, 0);
}

/* A Parse, Bind, Describe or Close with its statement name replaced:
 * head is the bytes before the name (type, length, and for Bind the
 * portal), tail those after its NUL. */
static void send_renamed(client *cl, const pgw_msg *m, const uint8_t *name_at, size_t name_len,
			 const char *to, size_t to_len)
{
	pgw_wbuf *w = conn_wbuf(&cl->be->conn);
	size_t at = pgw_w_begin(w, m->type);
	pgw_w_bytes(w, m->raw + 5, (size_t)(name_at - (m->raw + 5)));
	pgw_w_cstr(w, to, to_len);
	const uint8_t *tail = name_at + name_len + 1;
	pgw_w_bytes(w, tail, (size_t)(m->raw + m->raw_len - tail));
	pgw_w_end(w, at);
	conn_wrote(&cl->be->conn);
}

static void send_parse(client *cl, const char *name, size_t name_len, const stmt_key *k)
{
	pgw_wbuf *w = conn_wbuf(&cl->be->conn);
	size_t at = pgw_w_begin(w, 'P');
	pgw_w_cstr(w, name, name_len);
	pgw_w_bytes(w, k->bytes, k->len);
	pgw_w_end(w, at);
	conn_wrote(&cl->be->conn);
}

static void send_close_statement(client *cl, const char *name, size_t name_len)
{
	pgw_wbuf *w = conn_wbuf(&cl->be->conn);
	size_t at = pgw_w_begin(w, 'C');
	pgw_w_u8(w, 'S');
	pgw_w_cstr(w, name, name_len);
	pgw_w_end(w, at);
	conn_wrote(&cl->be->conn);
}

static bool push_simple(client *cl, pend_kind kind, prep_stmt *s, uint32_t id)
{
	pend *p = pq_push(cl, kind);
	if (!p)
		return false;
	p->stmt = prep_ref(s);
	p->stmt_id = id;
	return true;
}

static void push_local(client *cl, uint8_t type, pend_undo undo_kind, prep_stmt *s)
{
	pend *p = pq_push(cl, PEND_LOCAL);
	if (!p) {
		/* Without memory for the entry: answer now, out of turn at worst. */
		uint8_t m[5] = {type, 0, 0, 0, 4};
		conn_write(&cl->conn, m, sizeof m);
		return;
	}
	p->local_type = type;
	set_undo(cl, p, undo_kind);
	p->stmt = prep_ref(s);
	emit_locals(cl);
}

/* Is s the statement of a portal the session has open? Closing it on the
 * server would close the portal too. */
static bool key_in_use(const stmtcache_entry *e, void *arg)
{
	client *cl = arg;
	for (uint32_t i = 0; i < cl->prep.nportals; i++) {
		const prep_stmt *s = cl->prep.portals[i].stmt;
		if (s && s->key.hash == e->hash && s->key.len == e->key_len &&
		    memcmp(s->key.bytes, e->key, e->key_len) == 0)
			return true;
	}
	return false;
}

/* Closes e's statement on the server and forgets it. */
static bool close_on_server(client *cl, stmtcache_entry *e)
{
	if (!push_simple(cl, PEND_OWN_CLOSE, NULL, 0))
		return false;
	char name[STMTCACHE_NAME_MAX];
	size_t n = stmtcache_name(e->id, name);
	send_close_statement(cl, name, n);
	stmtcache_remove(&cl->be->stmts, e);
	return true;
}

/* Room for one more statement on the server connection. */
static void evict(client *cl)
{
	stmtcache *c = &cl->be->stmts;
	int max = cl->gw->gw->cfg.pool.max_prepared;
	while (c->count >= (uint32_t)max) {
		stmtcache_entry *e = stmtcache_victim(c, key_in_use, cl);
		if (!e || !close_on_server(cl, e))
			break;
	}
}

/* The server statement for s on this connection if it may serve s: one
 * prepared before a schema change that s was parsed after is closed
 * instead (unless an open portal of the session still reads from it). */
static stmtcache_entry *find_current(client *cl, const prep_stmt *s)
{
	stmtcache_entry *e = stmtcache_find(&cl->be->stmts, &s->key);
	if (e && e->epoch < s->epoch && e->ready && !key_in_use(e, cl) && close_on_server(cl, e))
		return NULL;
	return e;
}

/* The server statement holding s on this connection, prepared first if
 * it is not there: its id, or 0 without memory. */
static uint32_t prepare_on_server(client *cl, prep_stmt *s, bool quiet)
{
	stmtcache *c = &cl->be->stmts;
	stmtcache_entry *e = find_current(cl, s);
	if (e)
		return e->id;
	evict(cl);
	e = stmtcache_add(c, &s->key);
	if (!e)
		return 0;
	if (!push_simple(cl, PEND_OWN_PARSE, s, e->id)) {
		stmtcache_remove(c, e);
		return 0;
	}
	/* Until it is answered, the statement may not be there after all. */
	pq_at(cl, cl->pq_count - 1)->quiet = quiet;
	mark_settles(cl, pq_at(cl, cl->pq_count - 1));
	char name[STMTCACHE_NAME_MAX];
	size_t n = stmtcache_name(e->id, name);
	send_parse(cl, name, n, &s->key);
	return e->id;
}

/* The session's unnamed statement in place on the server connection. */
static void prepare_unnamed(client *cl, prep_stmt *s)
{
	backend *be = cl->be;
	if (be->unnamed_uid == s->uid)
		return;
	if (!push_simple(cl, PEND_OWN_PARSE, NULL, 0))
		return;
	send_parse(cl, "", 0, &s->key);
	be->unnamed_uid = s->uid;
}

/* No unnamed statement in the session: make sure the server has none
 * either, so that the client's message fails there as it should. */
static void drop_unnamed(client *cl)
{
	if (!push_simple(cl, PEND_OWN_CLOSE, NULL, 0))
		return;
	send_close_statement(cl, "", 0);
	cl->be->unnamed_uid = 0;
}

static bool is_reserved(const pgw_str *name)
{
	return name->len >= sizeof STMTCACHE_PREFIX - 1 &&
	       memcmp(name->ptr, STMTCACHE_PREFIX, sizeof STMTCACHE_PREFIX - 1) == 0;
}

static bool sql_name_ref(const stmt_info *si, const char **at, size_t *len, bool *drop);
static uint32_t prepare_referring(client *cl, prep_stmt *s);
static prep_stmt *ref_target(client *cl, const prep_stmt *s);

size_t ext_deallocate_target(const char *sql, size_t len, char *buf, size_t cap)
{
	stmt_info info[2];
	if (stmt_classify(sql, len, info, 2) != 1 || info[0].kind != STMT_DEALLOCATE ||
	    (info[0].flags & (STMT_F_ALL | STMT_F_UNTERMINATED)) || !info[0].name_len ||
	    info[0].name + info[0].name_len != info[0].start + info[0].len)
		return 0;
	size_t n = stmt_param_name(&info[0], buf, cap);
	/* Longer names PostgreSQL truncates (NAMEDATALEN): it judges those. */
	return n < cap && n < 64 ? n : 0;
}

/* What running the query changes in the session, when it does. */
static void classify(prep_stmt *s)
{
	stmt_info info[2];
	size_t klen = s->key.len;
	const char *q = (const char *)s->key.bytes;
	size_t qlen = strnlen(q, klen);
	char target[NAMEDATALEN_MAX];
	size_t tlen = ext_deallocate_target(q, qlen, target, sizeof target);
	if (tlen) {
		/* DEALLOCATE of a statement: when it names one of the
		 * session's, its Execute is answered here (see on_execute). */
		stmt_effect *e = calloc(1, sizeof *e);
		if (e && !(e->name = strndup(target, tlen))) {
			free(e);
			e = NULL;
		}
		if (e) {
			e->kind = STMT_DEALLOCATE;
			e->len = tlen;
			s->effect = e;
		}
		return;
	}
	if (stmt_classify(q, qlen, info, 2) != 1)
		return;
	const char *at;
	size_t alen;
	bool drop;
	if (info[0].kind != STMT_PREPARE && sql_name_ref(&info[0], &at, &alen, &drop) && !drop) {
		s->ref_at = (uint32_t)(at - q);
		s->ref_len = (uint32_t)alen;
	}
	stmt_effect eff;
	if (!client_effect_of(&info[0], &eff))
		return;
	stmt_effect *e = malloc(sizeof *e);
	if (!e) {
		free(eff.name);
		free(eff.text);
		return;
	}
	*e = eff;
	s->effect = e;
}

/* ---- the client's messages */

/* Does the session's server connection hold its statements under the
 * client's own names? In session mode it does, unless it is a
 * multipooler's: that one prepares them under names of its own. */
static bool own_names(const client *cl)
{
	return cl->gw->gw->cfg.mode == POOL_MODE_SESSION && cl->be && !cl->be->remote;
}

static client_step on_parse(client *cl, const pgw_msg *m)
{
	const pgw_parse *ps = &m->body.parse;
	const uint8_t *key = ps->query.ptr;
	size_t key_len = (size_t)(m->raw + m->raw_len - key);
	if (ps->name.len == 0) {
		prep_stmt *s = cl->prep.unnamed;
		prep_stmt *prev = prep_ref(cl->prep.unnamed);
		if (!s || s->key.len != key_len || memcmp(s->key.bytes, key, key_len) != 0) {
			s = prep_new("", 0, key, key_len);
			if (!s) {
				prep_unref(prev);
				return STEP_WAIT;
			}
			classify(s);
			prep_set_unnamed(&cl->prep, s);
			prep_unref(s);
		}
		send_raw(cl, m);
		cl->be->unnamed_uid = s->uid;
		pend *p = pq_push(cl, PEND_PARSE);
		if (p) {
			set_undo(cl, p, UNDO_UNNAMED);
			p->stmt = prep_ref(s);
			p->prev = prev;
		} else {
			prep_unref(prev);
		}
		return STEP_DONE;
	}
	const char *name = (const char *)ps->name.ptr;
	if (prep_find(&cl->prep, name, ps->name.len) || prep_sql_has(&cl->prep, name, ps->name.len)) {
		/* PostgreSQL parses and analyzes the query before it finds the
		 * name taken: the unnamed statement serves for that, then a
		 * message bound to fail stands for the 42P05. */
		prep_stmt *s = prep_new(name, ps->name.len, key, key_len);
		if (!s)
			return STEP_WAIT;
		if (push_simple(cl, PEND_OWN_PARSE, NULL, 0)) {
			send_parse(cl, "", 0, &s->key);
			cl->be->unnamed_uid = 0;
		}
		if (push_simple(cl, PEND_PARSE, s, 0)) {
			pq_at(cl, cl->pq_count - 1)->duplicate = true;
			pgw_wbuf *w = conn_wbuf(&cl->be->conn);
			size_t at = pgw_w_begin(w, 'D');
			pgw_w_u8(w, 'S');
			pgw_w_cstr(w, POISON_NAME, sizeof POISON_NAME - 1);
			pgw_w_end(w, at);
			conn_wrote(&cl->be->conn);
		}
		prep_unref(s);
		return STEP_DONE;
	}
	prep_stmt *s = prep_new(name, ps->name.len, key, key_len);
	if (!s || prep_insert(&cl->prep, s) != 0) {
		prep_unref(s);
		return STEP_WAIT;
	}
	classify(s);
	stmtcache *c = &cl->be->stmts;
	stmtcache_entry *e = find_current(cl, s);
	if (e && e->ready && cl->txn_status != 'E' && cl->req_count == 0) {
		/* The server connection holds this query already, and no
		 * transaction state in flight could make a Parse fail. */
		push_local(cl, '1', UNDO_ADDED, s);
		prep_unref(s);
		return STEP_DONE;
	}
	bool cached = e != NULL;
	if (!cached) {
		evict(cl);
		e = stmtcache_add(c, &s->key);
	}
	pend *p = e ? pq_push(cl, PEND_PARSE) : NULL;
	if (!p) {
		if (e && !cached)
			stmtcache_remove(c, e);
		prep_unref(prep_remove(&cl->prep, s->name, s->name_len));
		prep_unref(s);
		return STEP_WAIT;
	}
	set_undo(cl, p, UNDO_ADDED);
	p->stmt = s; /* the reference from prep_new */
	if (cached) {
		/* Held already, but a Parse must still be judged in the
		 * transaction's state: the unnamed statement does that. */
		send_parse(cl, "", 0, &s->key);
		cl->be->unnamed_uid = 0;
	} else {
		p->stmt_id = e->id;
		mark_settles(cl, p);
		char sname[STMTCACHE_NAME_MAX];
		size_t n = stmtcache_name(e->id, sname);
		send_parse(cl, sname, n, &s->key);
	}
	return STEP_DONE;
}

/*
 * Bind and Describe of a statement: the client's name becomes the server
 * statement's. Names the session does not know go on as they are (a
 * statement made with SQL PREPARE is the server connection's own), except
 * the gateway's reserved ones, which the server is made to refuse.
 */
static client_step on_statement_ref(client *cl, const pgw_msg *m, const pgw_str *name,
				    pend_kind kind, prep_stmt **out)
{
	prep_stmt *s = NULL;
	*out = NULL;
	uint32_t rid = 0;
	if (name->len == 0) {
		s = cl->prep.unnamed;
		if (s && s->ref_len && (rid = prepare_referring(cl, s))) {
			char sname[STMTCACHE_NAME_MAX];
			size_t n = stmtcache_name(rid, sname);
			send_renamed(cl, m, name->ptr, 0, sname, n);
			push_simple(cl, kind, s, rid);
			*out = s;
			return STEP_DONE;
		}
		if (s)
			prepare_unnamed(cl, s);
		else
			drop_unnamed(cl);
		send_raw(cl, m);
		push_simple(cl, kind, NULL, 0);
		*out = s;
		return STEP_DONE;
	}
	s = prep_find(&cl->prep, (const char *)name->ptr, name->len);
	if (!s) {
		if (!is_reserved(name)) {
			send_raw(cl, m);
			push_simple(cl, kind, NULL, 0);
			return STEP_DONE;
		}
		prep_stmt *alias = prep_new((const char *)name->ptr, name->len, (const uint8_t *)"", 0);
		send_renamed(cl, m, name->ptr, name->len, POISON_NAME, sizeof POISON_NAME - 1);
		push_simple(cl, kind, alias, 0);
		prep_unref(alias);
		return STEP_DONE;
	}
	uint32_t id = s->ref_len ? prepare_referring(cl, s) : 0;
	if (!id && !(id = prepare_on_server(cl, s, false)))
		return STEP_WAIT;
	char sname[STMTCACHE_NAME_MAX];
	size_t n = stmtcache_name(id, sname);
	send_renamed(cl, m, name->ptr, name->len, sname, n);
	push_simple(cl, kind, s, id);
	*out = s;
	return STEP_DONE;
}

static client_step on_close(client *cl, const pgw_msg *m)
{
	const pgw_close *c = &m->body.close;
	if (c->target == 'P') {
		prep_portal_drop(&cl->prep, (const char *)c->name.ptr, c->name.len);
	} else if (c->name.len == 0) {
		prep_set_unnamed(&cl->prep, NULL);
		cl->be->unnamed_uid = 0;
	} else {
		prep_stmt *s = prep_remove(&cl->prep, (const char *)c->name.ptr, c->name.len);
		if (s || is_reserved(&c->name)) {
			/* The server statement stays for whoever needs it next. */
			push_local(cl, '3', s ? UNDO_CLOSED : UNDO_NONE, s);
			prep_unref(s);
			return STEP_DONE;
		}
	}
	send_raw(cl, m);
	push_simple(cl, PEND_CLOSE, NULL, 0);
	return STEP_DONE;
}

/*
 * The Execute of a DEALLOCATE that names one of the session's statements:
 * the server connection holds that one under another name, if at all, so
 * the gateway drops it and answers as PostgreSQL would, in its place among
 * the answers. Should something before it fail, the statement comes back
 * (UNDO_CLOSED). Whether the transaction lets the Execute run must be
 * known: its Bind went in this batch (the server judges that), or every
 * answer is in and the transaction did not fail. False: the server runs it.
 */
static bool local_deallocate(client *cl, const pgw_execute *ex, const prep_stmt *portal_stmt,
			     client_step *out)
{
	const stmt_effect *e = portal_stmt->effect;
	prep_stmt *s = prep_find(&cl->prep, e->name, e->len);
	if (!s)
		return false;
	if (prep_portal_batch(&cl->prep, (const char *)ex->portal.ptr, ex->portal.len) !=
	    cl->batches) {
		if (ext_wait_for_answers(cl)) {
			*out = STEP_WAIT;
			return true;
		}
		if (cl->txn_status == 'E')
			return false;
	}
	s = prep_remove(&cl->prep, e->name, e->len);
	push_local(cl, 'C', UNDO_CLOSED, s);
	prep_unref(s);
	*out = STEP_DONE;
	return true;
}

static client_step on_execute(client *cl, const pgw_msg *m)
{
	const pgw_execute *ex = &m->body.execute;
	prep_stmt *s = prep_portal_get(&cl->prep, (const char *)ex->portal.ptr, ex->portal.len);
	client_step st;
	if (s && s->effect && s->effect->kind == STMT_DEALLOCATE && s->effect->name &&
	    local_deallocate(cl, ex, s, &st))
		return st;
	if (s && s->effect &&
	    (s->effect->kind == STMT_DISCARD_ALL ||
	     (s->effect->kind == STMT_DEALLOCATE && (s->effect->flags & STMT_F_ALL))))
		ext_server_statements_dropped(cl);
	send_raw(cl, m);
	push_simple(cl, PEND_EXECUTE, s && s->effect ? s : NULL, 0);
	prep_stmt *x = s && s->ref_len ? ref_target(cl, s) : NULL;
	stmtcache_entry *e = x ? stmtcache_find(&cl->be->stmts, &x->key) : NULL;
	pend_alias *al = e ? calloc(1, sizeof *al) : NULL;
	if (al) {
		/* Its errors name the statement it runs by the server's name. */
		const char *q = (const char *)s->key.bytes;
		char sname[STMTCACHE_NAME_MAX];
		size_t sl = stmtcache_name(e->id, sname);
		*al = (pend_alias){e->id, prep_ref(x), chars(q, q + s->ref_at) + sl,
				   (long)sl - (long)chars(q + s->ref_at, q + s->ref_at + s->ref_len)};
		pend *p = pq_at(cl, cl->pq_count - 1);
		p->aliases = al;
		p->naliases = 1;
	}
	return STEP_DONE;
}

static client_step on_sync(client *cl, const pgw_msg *m)
{
	backend *be = cl->be;
	if (cl->copy_in) {
		/* Inside COPY FROM STDIN the server ignores Sync. */
		send_raw(cl, m);
		return STEP_DONE;
	}
	if (!backend_can_send(be) || cl->req_count >= BACKEND_MAX_PENDING - 2)
		return STEP_WAIT;
	request *r = client_push_request(cl, REQ_SYNC);
	backend_send(be, m->raw, m->raw_len, 1);
	pend *p = pq_push(cl, PEND_SYNC);
	if (p)
		p->seq = r->seq;
	cl->batch_open = false;
	cl->ext_skip = false;
	cl->settle_mark = cl->undo_pushed;
	cl->batches++;
	return STEP_DONE;
}

/* The names at the start of a Bind whose body is otherwise refused (a
 * format code PostgreSQL does not know): the server must still see its
 * own statement name to give its own error, at the point it gives it. */
static bool bind_names(const pgw_msg *m, pgw_bind *b)
{
	const uint8_t *p = m->raw + 5, *end = m->raw + m->raw_len;
	const uint8_t *z1 = memchr(p, 0, (size_t)(end - p));
	if (!z1)
		return false;
	const uint8_t *z2 = memchr(z1 + 1, 0, (size_t)(end - z1 - 1));
	if (!z2)
		return false;
	memset(b, 0, sizeof *b);
	b->portal = (pgw_str){p, (uint32_t)(z1 - p)};
	b->statement = (pgw_str){z1 + 1, (uint32_t)(z2 - z1 - 1)};
	return true;
}

client_step ext_client_message(client *cl, const pgw_msg *m)
{
	if (cl->ext_skip && m->type != 'S')
		return STEP_DONE; /* dropped, as the server would after an error */
	if (cl->ext_skip && cl->skip_local) {
		uint8_t ready[6] = {'Z', 0, 0, 0, 5, (uint8_t)cl->txn_status};
		conn_write(&cl->conn, ready, sizeof ready);
		cl->ext_skip = cl->skip_local = false;
		return STEP_DONE;
	}
	if (!client_ensure_backend(cl) || cl->sync_wait)
		return STEP_WAIT;
	backend *be = cl->be;
	if (conn_backed_up(&be->conn))
		return STEP_WAIT;
	if (cl->pq_count >= PQ_HIGH) {
		/* Make the server send what it holds back, then wait for it. */
		static const uint8_t flush[5] = {'H', 0, 0, 0, 4};
		conn_write(&be->conn, flush, sizeof flush);
		cl->pq_blocked = true;
		return STEP_WAIT;
	}
	if (m->type == 'S')
		return on_sync(cl, m);
	if (m->type == 'H') {
		send_raw(cl, m);
		return STEP_DONE;
	}
	if (unsettled(cl) && m->type != 'E') {
		/* An earlier batch changed the session's statements and may yet
		 * fail before it did: what this message means depends on it.
		 * (Within one batch an error skips the rest anyway.) */
		cl->pq_blocked = true;
		return STEP_WAIT;
	}
	cl->batch_open = true;
	static const uint8_t kinds[256] = {['P'] = PEND_PARSE,	['B'] = PEND_BIND, ['D'] = PEND_DESCRIBE,
					   ['E'] = PEND_EXECUTE, ['C'] = PEND_CLOSE};
	if (own_names(cl)) {
		/* The server connection is the session's alone: its statements
		 * keep the client's names, so SQL's EXECUTE, DEALLOCATE and
		 * pg_prepared_statements see them as in PostgreSQL. */
		send_raw(cl, m);
		push_simple(cl, (pend_kind)kinds[m->type], NULL, 0);
		return STEP_DONE;
	}
	pgw_msg msg = *m;
	pgw_error err;
	bool ok = pgw_decode_msg_body(&msg, &err) == PGW_OK;
	prep_stmt *s;
	client_step st;
	switch (m->type) {
	case 'P':
		if (ok)
			return on_parse(cl, &msg);
		send_raw(cl, m);
		push_simple(cl, PEND_PARSE, NULL, 0);
		return STEP_DONE;
	case 'B':
		if (!ok && !bind_names(m, &msg.body.bind))
			break;
		st = on_statement_ref(cl, &msg, &msg.body.bind.statement, PEND_BIND, &s);
		if (st == STEP_DONE)
			prep_portal_set(&cl->prep, (const char *)msg.body.bind.portal.ptr,
					msg.body.bind.portal.len, s, cl->batches);
		return st;
	case 'D':
		if (!ok || msg.body.describe.target != 'S')
			break;
		return on_statement_ref(cl, &msg, &msg.body.describe.name, PEND_DESCRIBE, &s);
	case 'E':
		if (!ok)
			break;
		return on_execute(cl, &msg);
	case 'C':
		if (!ok)
			break;
		return on_close(cl, &msg);
	default:
		break;
	}
	/* A malformed body, or a message passed on as it is: the server
	 * answers it. */
	send_raw(cl, m);
	push_simple(cl, (pend_kind)kinds[m->type], NULL, 0);
	return STEP_DONE;
}

bool ext_wait_for_answers(client *cl)
{
	if (!cl->pq_count && !cl->req_count)
		return false;
	if (cl->batch_open && cl->be) {
		static const uint8_t flush[5] = {'H', 0, 0, 0, 4};
		conn_write(&cl->be->conn, flush, sizeof flush);
	}
	cl->pq_blocked = true;
	return true;
}

void ext_copy_ended_early(client *cl)
{
	if (pq_push(cl, PEND_COPY_END))
		emit_locals(cl);
}

void ext_expect_request(client *cl, bool function, uint32_t seq, bool drops_statements,
			ext_mapped *mapped)
{
	pend *p = pq_push(cl, function ? PEND_FUNCTION : PEND_QUERY);
	if (p)
		p->seq = seq;
	if (mapped && mapped->aliases) {
		if (p) {
			p->aliases = mapped->aliases;
			p->naliases = mapped->naliases;
		} else {
			free_aliases(mapped->aliases, mapped->naliases);
		}
		mapped->aliases = NULL;
	}
	if (p && drops_statements) {
		/* The session's statements go when it completes: what comes
		 * behind it waits for that. */
		mark_settles(cl, p);
		cl->settle_mark = cl->undo_pushed;
	}
	if (!function && cl->prep.unnamed) {
		/* A simple Query drops the unnamed statement, unless an error
		 * before it makes the server skip it. */
		if (p) {
			p->stmt = prep_ref(cl->prep.unnamed);
			set_undo(cl, p, UNDO_DROPPED_UNNAMED);
		}
		prep_set_unnamed(&cl->prep, NULL);
	}
}

/* ---- SQL naming the session's statements */

#define MAP_STMTS 256 /* a Query with more statements goes as it is */
#define MAP_NAMES 8   /* ... or with this many names mapped */

/* EXPLAIN [ANALYZE] [VERBOSE] [(options)] EXECUTE name: where name is. */
typedef struct explain_scan {
	int state; /* 0: EXPLAIN, 1: its options, 2: the name, 3: done */
	int depth;
	const char *name;
	size_t name_len;
} explain_scan;

static bool tok_is(const stmt_tok *t, const char *kw)
{
	size_t n = strlen(kw);
	return t->type == STMT_TOK_IDENT && (size_t)(t->e - t->s) == n && strncasecmp(t->s, kw, n) == 0;
}

static bool tok_char(const stmt_tok *t, char ch)
{
	return t->type == STMT_TOK_PUNCT && t->e - t->s == 1 && t->s[0] == ch;
}

static void explain_token(void *arg, const stmt_tok *t)
{
	explain_scan *x = arg;
	if (t->type == STMT_TOK_COMMENT || x->state == 3)
		return;
	switch (x->state) {
	case 0:
		x->state = tok_is(t, "explain") ? 1 : 3;
		return;
	case 1:
		if (tok_char(t, '('))
			x->depth++;
		else if (tok_char(t, ')'))
			x->depth--;
		else if (x->depth == 0 && tok_is(t, "execute"))
			x->state = 2;
		else if (x->depth == 0 && !tok_is(t, "analyze") && !tok_is(t, "analyse") &&
			 !tok_is(t, "verbose"))
			x->state = 3;
		return;
	default:
		if (t->type == STMT_TOK_IDENT || (t->type == STMT_TOK_QIDENT && !t->unterminated)) {
			x->name = t->s;
			x->name_len = (size_t)(t->e - t->s);
		}
		x->state = 3;
	}
}

/* The statement a statement of a Query names by SQL, if the session has
 * it: *at, *len say where the name is; drop: a DEALLOCATE. A name of the
 * gateway's own (a server statement's) gives a new statement of that name
 * with *poison set: no server connection holds it for the client. */
/* The name a statement gives another by SQL: EXECUTE name, EXPLAIN ...
 * EXECUTE name, DEALLOCATE [PREPARE] name (drop), PREPARE name. */
static bool sql_name_ref(const stmt_info *si, const char **at, size_t *len, bool *drop)
{
	const char *nm = NULL;
	size_t nl = 0;
	*drop = false;
	if ((si->kind == STMT_EXECUTE || si->kind == STMT_PREPARE) && si->name_len) {
		nm = si->name;
		nl = si->name_len;
	} else if (si->kind == STMT_DEALLOCATE && !(si->flags & STMT_F_ALL) && si->name_len &&
		   si->name + si->name_len == si->start + si->len) {
		nm = si->name;
		nl = si->name_len;
		*drop = true;
	} else if (si->kind == STMT_OTHER && si->len > 7 && strncasecmp(si->start, "explain", 7) == 0) {
		explain_scan x = {0};
		stmt_lex(si->start, si->len, 0, explain_token, &x);
		nm = x.name;
		nl = x.name_len;
	}
	if (!nm || ((nm[0] == 'U' || nm[0] == 'u') && nl > 1 && nm[1] == '&'))
		return false; /* none, or U&"..." (its escapes are not read here) */
	*at = nm;
	*len = nl;
	return true;
}

/* The name token [at, at + len) as PostgreSQL reads it, into buf (64
 * bytes); 0 when it would truncate it (then it is not the session's). */
static size_t read_name(const char *at, size_t len, char *buf)
{
	stmt_info name = {.name = at, .name_len = len};
	size_t n = stmt_param_name(&name, buf, 64);
	return n < 64 ? n : 0;
}

static prep_stmt *named_statement(client *cl, const stmt_info *si, const char **at, size_t *len,
				  bool *drop, bool *poison)
{
	*poison = false;
	char buf[64];
	size_t n;
	if (!sql_name_ref(si, at, len, drop) || !(n = read_name(*at, *len, buf)))
		return NULL;
	prep_stmt *s = prep_find(&cl->prep, buf, n);
	pgw_str as_str = {(const uint8_t *)buf, (uint32_t)n};
	if (s || !is_reserved(&as_str))
		return s;
	*poison = true;
	return prep_new(buf, n, (const uint8_t *)"", 0);
}

/* The session's statement s runs by SQL's name, if any (and the server
 * connection can be told its name). */
static prep_stmt *ref_target(client *cl, const prep_stmt *s)
{
	char buf[64];
	size_t n = read_name((const char *)s->key.bytes + s->ref_at, s->ref_len, buf);
	if (!n || !cl->be || cl->be->remote || own_names(cl))
		return NULL;
	return prep_find(&cl->prep, buf, n);
}

/*
 * A statement that runs another of the session's by SQL's name: on this
 * server connection it is its query with the server's name for that one,
 * a statement of its own (valid here only: the name is this connection's).
 * Its id, or 0: it goes as the client wrote it.
 */
static uint32_t prepare_referring(client *cl, prep_stmt *s)
{
	prep_stmt *x = ref_target(cl, s);
	uint32_t xid = x ? prepare_on_server(cl, x, false) : 0;
	if (!xid)
		return 0;
	char sname[STMTCACHE_NAME_MAX];
	size_t sl = stmtcache_name(xid, sname);
	size_t rest = s->key.len - s->ref_at - s->ref_len;
	uint8_t *k = malloc(s->ref_at + sl + rest);
	if (!k)
		return 0;
	memcpy(k, s->key.bytes, s->ref_at);
	memcpy(k + s->ref_at, sname, sl);
	memcpy(k + s->ref_at + sl, s->key.bytes + s->ref_at + s->ref_len, rest);
	prep_stmt *t = prep_new(s->name, s->name_len, k, s->ref_at + sl + rest);
	free(k);
	if (!t)
		return 0;
	t->epoch = s->epoch;
	uint32_t id = prepare_on_server(cl, t, false);
	prep_unref(t);
	return id;
}

/* May the Query name a server statement of the gateway's (a quick look,
 * ahead of the lexer's)? */
static bool names_reserved(const char *sql, size_t len)
{
	size_t n = sizeof STMTCACHE_PREFIX - 1;
	for (size_t i = 0; i + n <= len; i++)
		if (sql[i] == '_' && strncasecmp(sql + i, STMTCACHE_PREFIX, n) == 0)
			return true;
	return false;
}

bool ext_map_query(client *cl, request *r, const char *sql, size_t len, ext_mapped *out)
{
	static _Thread_local stmt_info si[MAP_STMTS];
	memset(out, 0, sizeof *out);
	if (!cl->be || own_names(cl) || (!cl->prep.count && !names_reserved(sql, len)))
		return false;
	size_t total = stmt_classify(sql, len, si, MAP_STMTS);
	if (total > MAP_STMTS || (si[total - 1].flags & STMT_F_UNTERMINATED))
		return false;
	struct {
		const char *at;
		size_t len;
		prep_stmt *s;
		uint16_t index;
		bool drop, poison;
		uint32_t id;
	} hit[MAP_NAMES];
	size_t nh = 0;
	uint16_t index = 0;
	for (size_t i = 0; i < total && nh < MAP_NAMES; i++) {
		if (si[i].kind == STMT_EMPTY)
			continue;
		hit[nh].s = named_statement(cl, &si[i], &hit[nh].at, &hit[nh].len, &hit[nh].drop,
					    &hit[nh].poison);
		hit[nh].index = index++;
		/* Through a multipooler the server's names are the
		 * multipooler's, which the text of a Query cannot reach. */
		if (hit[nh].s && !hit[nh].poison && cl->be->remote)
			hit[nh].s = NULL;
		if (hit[nh].s)
			nh++;
	}
	if (!nh)
		return false;
	/* Each one on the server connection, prepared there now if it is not:
	 * should that fail, the gateway's Sync ends the server's skipping. */
	uint32_t before = cl->pq_count;
	bool ok = true;
	for (size_t k = 0; k < nh; k++) {
		hit[k].id = 0;
		if (ok && !hit[k].poison && !(hit[k].id = prepare_on_server(cl, hit[k].s, true)))
			ok = false;
	}
	bool parsed = false;
	for (uint32_t i = before; i < cl->pq_count; i++)
		parsed |= pq_at(cl, i)->kind == PEND_OWN_PARSE;
	if (parsed && push_simple(cl, PEND_OWN_SYNC, NULL, 0)) {
		static const uint8_t sync[5] = {'S', 0, 0, 0, 4};
		backend_send(cl->be, sync, sizeof sync, 1);
	}

	char *text = ok ? malloc(len + nh * STMTCACHE_NAME_MAX + 1) : NULL;
	pend_alias *al = ok ? calloc(nh, sizeof *al) : NULL;
	stmt_effect *effects = ok ? realloc(r->effects, (r->neffects + nh) * sizeof *effects) : NULL;
	if (effects)
		r->effects = effects;
	if (!text || !al || !effects) {
		free(text);
		free(al);
		for (size_t k = 0; k < nh; k++)
			if (hit[k].poison)
				prep_unref(hit[k].s);
		return false;
	}
	size_t n = 0, nchars = 0;
	const char *from = sql;
	for (size_t k = 0; k < nh; k++) {
		memcpy(text + n, from, (size_t)(hit[k].at - from));
		nchars += chars(from, hit[k].at);
		n += (size_t)(hit[k].at - from);
		size_t sl = sizeof POISON_NAME - 1;
		if (hit[k].id)
			sl = stmtcache_name(hit[k].id, text + n);
		else
			memcpy(text + n, POISON_NAME, sl);
		n += sl;
		nchars += sl;
		from = hit[k].at + hit[k].len;
		/* A poisoned name's statement passes its reference on. */
		al[k] = (pend_alias){hit[k].id, hit[k].poison ? hit[k].s : prep_ref(hit[k].s), nchars,
				     (long)sl - (long)chars(hit[k].at, from)};
		if (!hit[k].drop || hit[k].poison)
			continue;
		stmt_effect *e = NULL;
		for (uint16_t i = 0; i < r->neffects && !e; i++)
			if (r->effects[i].index == hit[k].index)
				e = &r->effects[i];
		if (e) {
			e->stmt_id = hit[k].id;
			continue;
		}
		e = &r->effects[r->neffects];
		memset(e, 0, sizeof *e);
		e->index = hit[k].index;
		e->kind = STMT_DEALLOCATE;
		e->stmt_id = hit[k].id;
		if ((e->name = strndup(hit[k].s->name, hit[k].s->name_len))) {
			e->len = hit[k].s->name_len;
			r->neffects++;
		}
	}
	memcpy(text + n, from, (size_t)(sql + len - from));
	n += (size_t)(sql + len - from);
	text[n] = '\0';
	out->sql = text;
	out->len = n;
	out->aliases = al;
	out->naliases = (uint8_t)nh;
	return true;
}

void ext_deallocated(client *cl, const stmt_effect *e)
{
	prep_unref(prep_remove(&cl->prep, e->name, e->len));
	forget_server_statement(cl, e->stmt_id);
}

void ext_server_statements_dropped(client *cl)
{
	if (!cl->be)
		return;
	stmtcache_clear(&cl->be->stmts);
	cl->be->unnamed_uid = 0;
}

void ext_abandon(client *cl)
{
	/* Statements whose Parse is unanswered may or may not exist on the
	 * server: forgotten, so nobody relies on them. */
	while (cl->pq_count) {
		pend *p = pq_head(cl);
		if (p->kind == PEND_PARSE || p->kind == PEND_OWN_PARSE)
			forget_server_statement(cl, p->stmt_id);
		pq_pop(cl);
	}
	if (cl->be && cl->batch_open)
		backend_send_own_sync(cl->be); /* end the batch it left open */
	cl->batch_open = false;
}

void ext_free(client *cl)
{
	while (cl->pq_count)
		pq_pop(cl);
	free(cl->pq);
	cl->pq = NULL;
	cl->pq_cap = 0;
	prep_free(&cl->prep);
}
