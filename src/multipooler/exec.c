/*
 * The executor (see exec.h): one job per call. A job gets its server
 * connection (a reservation, or the pool), sets the session up on it,
 * sends the request, relays the answers as response messages, and at
 * ReadyForQuery decides whether the connection stays reserved.
 */
#include "multipooler/exec.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "pooler/session.h"
#include "mtrpc.pb-c.h"
#include "pooler/backend.h"
#include "pooler/stmtcache.h"
#include "query.pb-c.h"
#include "sql/stmt.h"

/* Rows go out in blocks of about this many bytes. */
#define BLOCK_BYTES (64u * 1024)
/* The worker index lives in the low bits of a reservation id. */
#define RESV_WORKER_BITS 7

typedef enum job_stage { JS_WAIT = 0, JS_PREP, JS_RUN } job_stage;

typedef struct param_change {
	char *name, *value;
} param_change;

struct mp_job {
	mp_worker *mw;
	rpc_call *call;
	mpx_kind kind;
	ProtobufCMessage *req; /* our own copy */
	pool_waiter waiter;
	job_stage stage;
	backend *be;
	mp_resv *resv;
	uint32_t asked;	    /* reservation reasons the request names */
	char *sql;	    /* simple-protocol text to run */
	bool own_failed;    /* setting the connection up failed */
	bool flush_mode;    /* sent with Flush: no ReadyForQuery until we Sync */
	bool suspended;	    /* PortalSuspended */
	bool continuing;    /* an Execute of a portal left open before */
	bool settings_dirty;
	uint64_t settings_hash; /* of the request's session_settings (request_settings) */
	uint32_t parse_id;  /* a statement this job prepares, until ParseComplete */
	uint32_t stmt_id;   /* the server statement this job binds */
	Query__PgDiagnostic *error;
	int error_status;
	char *error_text;   /* for errors the pooler makes itself */
	pgw_wbuf block;	    /* DataRow bytes not yet sent */
	uint32_t block_rows;
	Query__Field **fields;
	size_t nfields;
	Query__Row **rows;
	size_t nrows, caprows, row_bytes;
	uint64_t max_rows;
	bool overflow;
	char *tag;
	Query__PgDiagnostic **notices;
	size_t nnotices;
	param_change params[BACKEND_MAX_PARAMS];
	int nparams;
	uint32_t *param_oids;
	size_t nparam_oids;
	bool copy_in, copy_ended, client_paused, half_closed;
	bool auth_row;
	char *auth_value;
	mp_resv *waiting_on; /* queued behind a cancelled call on this reservation */
	mp_resv *awaits;     /* a wait for this reservation's notifications: no statement */
	/* A database statement refused with 55006 goes once more after the
	 * idle connections in its database are closed (db_retry). */
	bool db_retried;
	pool_sweep *sweep;   /* closing them; the job keeps its connection */
};

static void job_run(mp_job *j);
static void job_complete(mp_job *j);
static void job_free(mp_job *j);
static void resv_after_call(mp_worker *mw, mp_resv *r);
static void await_flush(mp_job *a);
static void await_end(mp_resv *r);

/* ---------------------------------------------------------------- helpers */

static char *xstrndup(const void *p, size_t n)
{
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

static void free_msg(void *m)
{
	if (m)
		protobuf_c_message_free_unpacked((ProtobufCMessage *)m, NULL);
}

static ProtobufCMessage *copy_msg(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return NULL;
	protobuf_c_message_pack(m, buf);
	ProtobufCMessage *c = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
	free(buf);
	return c;
}

void mpx_pooler_id(const mp_worker *mw, Clustermetadata__ID *id)
{
	clustermetadata__id__init(id);
	id->component = CLUSTERMETADATA__ID__COMPONENT__MULTIPOOLER;
	id->cell = mw->srv->cfg.cell;
	id->name = mw->srv->cfg.name;
}

/* The number a command tag ends with ("INSERT 0 5", "SELECT 3"), else 0. */
static uint64_t tag_rows(const char *tag)
{
	const char *sp = strrchr(tag, ' ');
	if (!sp || !sp[1])
		return 0;
	for (const char *p = sp + 1; *p; p++)
		if (!isdigit((unsigned char)*p))
			return 0;
	return strtoull(sp + 1, NULL, 10);
}

/*
 * What a caller's SQL does to the server connection it runs on, from one
 * pass of the classifier:
 * - settings: it may change settings, so the connection goes back to the
 *   pool marked and its next holder resets it. Conservative (code run by
 *   DO or CALL counts): a false match costs one RESET ALL.
 * - drops: DISCARD ALL or DEALLOCATE drops server statements the
 *   connection's cache names: it must forget them, or the next use fails
 *   with 26000.
 * - database: CREATE, DROP or ALTER DATABASE alone, naming the database it
 *   needs to itself (else empty).
 */
typedef struct sql_effects {
	bool settings;
	bool drops;
	char database[64];
} sql_effects;

static void sql_effects_of(const char *sql, sql_effects *e)
{
	stmt_info info[64];
	size_t n = stmt_classify(sql, strlen(sql), info, 64);
	memset(e, 0, sizeof *e);
	if (n > 64) {
		e->settings = e->drops = true; /* too many to look at: to be safe */
		return;
	}
	for (size_t i = 0; i < n; i++) {
		switch (info[i].kind) {
		case STMT_DISCARD_ALL:
			e->drops = e->settings = true;
			break;
		case STMT_DEALLOCATE:
			e->drops = true;
			break;
		case STMT_SET:
		case STMT_RESET:
		case STMT_RESET_ALL:
		case STMT_SET_TRANSACTION:
		case STMT_DO:
		case STMT_CALL:
			e->settings = true;
			break;
		default:
			if (info[i].flags & STMT_F_SET_CONFIG)
				e->settings = true;
			break;
		}
	}
	if (n == 1 && stmt_exclusive_database(&info[0], e->database, sizeof e->database) !=
			      STMT_DB_NAMED)
		e->database[0] = '\0';
}

static Query__PgDiagnostic *diag_new(const char *severity, const char *code, const char *message,
				     int type)
{
	Query__PgDiagnostic *d = malloc(sizeof *d);
	if (!d)
		return NULL;
	query__pg_diagnostic__init(d);
	d->severity = strdup(severity);
	d->code = strdup(code);
	d->message = strdup(message);
	if (!d->severity || !d->code || !d->message) {
		free_msg(d);
		return NULL;
	}
	d->message_type = type;
	return d;
}

/* Every field of an ErrorResponse or NoticeResponse. */
static Query__PgDiagnostic *diag_from_fields(const pgw_array *fields, int type)
{
	Query__PgDiagnostic *d = malloc(sizeof *d);
	if (!d)
		return NULL;
	query__pg_diagnostic__init(d);
	d->message_type = type;
	pgw_iter it = pgw_array_iter(fields);
	uint8_t code;
	pgw_str text;
	while (pgw_next_field(&it, &code, &text)) {
		char **slot = NULL;
		switch (code) {
		case 'S': slot = &d->severity; break;
		case 'C': slot = &d->code; break;
		case 'M': slot = &d->message; break;
		case 'D': slot = &d->detail; break;
		case 'H': slot = &d->hint; break;
		case 'q': slot = &d->internal_query; break;
		case 'W': slot = &d->where; break;
		case 's': slot = &d->schema_name; break;
		case 't': slot = &d->table_name; break;
		case 'c': slot = &d->column_name; break;
		case 'd': slot = &d->data_type_name; break;
		case 'n': slot = &d->constraint_name; break;
		case 'P': d->position = atoi((const char *)text.ptr); break;
		case 'p': d->internal_position = atoi((const char *)text.ptr); break;
		default: break;
		}
		if (slot) {
			char *v = xstrndup(text.ptr, text.len);
			if (v) {
				if (*slot != protobuf_c_empty_string)
					free(*slot);
				*slot = v;
			}
		}
	}
	return d;
}

static Query__PgDiagnostic *diag_from_msg(pgw_msg *m)
{
	pgw_error err;
	if (pgw_decode_msg_body(m, &err) != PGW_OK)
		return diag_new("ERROR", "08P01", "invalid ErrorResponse from the server",
				m->type);
	return diag_from_fields(&m->body.error_response.fields, m->type);
}

/* An RPC status for a server error. */
static int status_for(const char *sqlstate)
{
	if (strcmp(sqlstate, "53300") == 0)
		return RPC_RESOURCE_EXHAUSTED;
	if (strncmp(sqlstate, "08", 2) == 0)
		return RPC_UNAVAILABLE;
	if (strcmp(sqlstate, "57014") == 0)
		return RPC_CANCELLED;
	return RPC_UNKNOWN;
}

/* End a call with an error carrying an mtrpc.RPCError (and the
 * PostgreSQL diagnostic when there is one). */
static void finish_error(rpc_call *call, int status, const char *message,
			 Query__PgDiagnostic *diag)
{
	if (!call)
		return;
	Mtrpc__RPCError e = MTRPC__RPCERROR__INIT;
	e.message = (char *)(message ? message : diag && diag->message ? diag->message : "error");
	e.code = (Mtrpc__Code)status;
	e.pg_diagnostic = diag;
	rpc_call_finish(call, status, e.message, &e.base);
}

static void finish_simple_error(rpc_call *call, int status, const char *sqlstate, const char *fmt,
				...) __attribute__((format(printf, 4, 5)));
static void finish_simple_error(rpc_call *call, int status, const char *sqlstate, const char *fmt,
				...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	Query__PgDiagnostic *d = diag_new("ERROR", sqlstate, text, 'E');
	finish_error(call, status, text, d);
	free_msg(d);
}

/* ------------------------------------------------------------ reservations */

static void notify_free(mp_notify *n)
{
	free(n->channel);
	free(n->payload);
	free(n);
}

static void resv_on_message(void *owner, backend *be, pgw_msg *m)
{
	/* Between calls the server may still speak: a NOTIFY to a LISTEN
	 * session is kept for the next call, as PostgreSQL's client would
	 * read it with the next results; a notice has nobody to hear it. */
	mp_resv *r = owner;
	pgw_error err;
	(void)be;
	if (m->type != 'A' || pgw_decode_msg_body(m, &err) != PGW_OK)
		return;
	const pgw_notification_response *a = &m->body.notification_response;
	mp_notify *n = calloc(1, sizeof *n);
	if (!n)
		return;
	n->pid = a->pid;
	n->channel = xstrndup(a->channel.ptr, a->channel.len);
	n->payload = xstrndup(a->payload.ptr, a->payload.len);
	if (!n->channel || !n->payload) {
		notify_free(n);
		return;
	}
	if (r->notify_count >= MP_NOTIFY_MAX) {
		mp_notify *old = r->notify_head;
		r->notify_head = old->next;
		if (!r->notify_head)
			r->notify_tail = NULL;
		r->notify_count--;
		notify_free(old);
		log_warning("reserved connection %llu: more than %d notifications waiting for a call, "
			    "the oldest dropped",
			    (unsigned long long)r->id, MP_NOTIFY_MAX);
	}
	if (r->notify_tail)
		r->notify_tail->next = n;
	else
		r->notify_head = n;
	r->notify_tail = n;
	r->notify_count++;
	if (r->awaiter)
		await_flush(r->awaiter);
}

static void notify_clear(mp_resv *r)
{
	while (r->notify_head) {
		mp_notify *n = r->notify_head;
		r->notify_head = n->next;
		notify_free(n);
	}
	r->notify_tail = NULL;
	r->notify_count = 0;
}

static void resv_unlink(mp_worker *mw, mp_resv *r)
{
	mp_resv **link = &mw->resvs;
	while (*link && *link != r)
		link = &(*link)->next;
	if (*link)
		*link = r->next;
	await_end(r);
	if (r->waiting) {
		/* The call queued behind a cancelled one finds the reservation
		 * gone, as if it had come a moment later. */
		mp_job *w = r->waiting;
		r->waiting = NULL;
		w->waiting_on = NULL;
		finish_simple_error(w->call, RPC_NOT_FOUND, "08003", "reserved connection %llu not found",
				    (unsigned long long)r->id);
		w->call = NULL;
		job_free(w);
	}
	notify_clear(r);
	free(r->portal);
	free(r);
}

static void resv_on_lost(void *owner, backend *be, const pgw_error *err)
{
	mp_resv *r = owner;
	(void)be;
	log_warning("reserved connection %llu lost its server connection: %s",
		    (unsigned long long)r->id, err->message);
	mp_worker *mw = (mp_worker *)r->be->conn.w;
	resv_unlink(mw, r);
}

static const backend_owner_ops resv_ops = {resv_on_message, resv_on_lost, NULL, NULL, NULL};

static mp_resv *resv_find(mp_worker *mw, uint64_t id)
{
	for (mp_resv *r = mw->resvs; r; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

static mp_resv *resv_new(mp_worker *mw, backend *be)
{
	mp_resv *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->id = (++mw->next_resv << RESV_WORKER_BITS) | (uint64_t)mw->w.index;
	r->be = be;
	r->last_used = ev_now(mw->w.loop);
	r->next = mw->resvs;
	mw->resvs = r;
	return r;
}

/* Hand a server connection back to the pool, cleaned as needed. */
static void give_back(backend *be, bool discard, bool settings_dirty, bool portal_open)
{
	if (settings_dirty) {
		be->settings_hash = UINT64_MAX;
		be->settings_role = true;
	}
	if (portal_open)
		backend_send_own_sync(be); /* ends the implicit transaction it lives in */
	pool_release(be, discard);
}

/* End a reservation and pool its connection (rolled back first). */
static void resv_release(mp_worker *mw, mp_resv *r)
{
	backend *be = r->be;
	bool discard = (r->reasons & MP_RESERVE_DISCARD) != 0;
	bool dirty = r->settings_dirty, portal = r->portal != NULL;
	resv_unlink(mw, r);
	give_back(be, discard, dirty, portal);
}

void mpx_resv_sweep(mp_worker *mw)
{
	ev_tstamp now = ev_now(mw->w.loop);
	double limit = mw->srv->cfg.reserved_timeout;
	mp_resv *r = mw->resvs;
	while (r) {
		mp_resv *next = r->next;
		/* A wait for notifications shows the gateway still holds it. */
		if (!r->job && !r->awaiter && limit > 0 && now - r->last_used > limit) {
			log_info("reserved connection %llu unused for %g s: rolled back and released",
				 (unsigned long long)r->id, limit);
			resv_release(mw, r);
		}
		r = next;
	}
}

void mpx_resv_free_all(mp_worker *mw)
{
	/* The pools close the connections themselves. */
	while (mw->resvs) {
		mp_resv *r = mw->resvs;
		mw->resvs = r->next;
		notify_clear(r);
		free(r->portal);
		free(r);
	}
}

static void fill_reserved_state(const mp_job *j, const mp_resv *r, backend *be,
				Query__ReservedState *rs, Clustermetadata__ID *id)
{
	query__reserved_state__init(rs);
	mpx_pooler_id(j->mw, id);
	rs->pooler_id = id;
	if (r) {
		rs->reserved_connection_id = r->id;
		rs->reservation_reasons = r->reasons;
	}
	if (be)
		rs->backend_process_id = (uint32_t)be->pid;
}

/* ------------------------------------------------------------ request parts */

static void req_parts(const mp_job *j, Query__Target **t, Query__ExecuteOptions **o,
		      Query__ReservationOptions **ro)
{
	*t = NULL;
	*o = NULL;
	*ro = NULL;
	switch (j->kind) {
	case MPX_STREAM: {
		Multipoolerservice__StreamExecuteRequest *r = (void *)j->req;
		*t = r->target;
		*o = r->options;
		*ro = r->reservation_options;
		break;
	}
	case MPX_UNARY: {
		Multipoolerservice__ExecuteQueryRequest *r = (void *)j->req;
		*t = r->target;
		*o = r->options;
		break;
	}
	case MPX_PORTAL: {
		Multipoolerservice__PortalStreamExecuteRequest *r = (void *)j->req;
		*t = r->target;
		*o = r->options;
		*ro = r->reservation_options;
		break;
	}
	case MPX_DESCRIBE: {
		Multipoolerservice__DescribeRequest *r = (void *)j->req;
		*t = r->target;
		*o = r->options;
		break;
	}
	case MPX_CONCLUDE: {
		Multipoolerservice__ConcludeTransactionRequest *r = (void *)j->req;
		*t = r->target;
		*o = r->options;
		break;
	}
	case MPX_COPY: {
		Multipoolerservice__CopyBidiExecuteRequest *r = (void *)j->req;
		*t = r->target;
		*o = r->options;
		break;
	}
	case MPX_AUTH:
		break;
	}
}

/* SQL string literal, E'' form so backslashes are plain. */
static char *auth_query(const char *user)
{
	static const char head[] = "SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = E'";
	size_t n = strlen(user);
	char *q = malloc(sizeof head + 2 * n + 4);
	if (!q)
		return NULL;
	char *p = q + (sizeof head - 1);
	memcpy(q, head, sizeof head - 1);
	for (size_t i = 0; i < n; i++) {
		if (user[i] == '\'' || user[i] == '\\')
			*p++ = user[i];
		*p++ = user[i];
	}
	*p++ = '\'';
	*p = '\0';
	return q;
}

/* ------------------------------------------------------------ sending */

static void on_call_writable(rpc_call *call, void *arg)
{
	(void)call;
	mp_job *j = arg;
	if (j->be)
		backend_resume(j->be); /* may complete and free j */
}

/* A slow client slows the server instead of growing memory. */
static void flow_check(mp_job *j)
{
	if (j->call && j->be && !rpc_call_writable(j->call)) {
		backend_pause(j->be);
		rpc_call_on_writable(j->call, on_call_writable, j);
	}
}

static void send_payload(mp_job *j, Query__QueryResultPayload *p, Query__ReservedState *rs)
{
	if (!j->call)
		return;
	if (j->kind == MPX_PORTAL) {
		Multipoolerservice__PortalStreamExecuteResponse r =
			MULTIPOOLERSERVICE__PORTAL_STREAM_EXECUTE_RESPONSE__INIT;
		r.result = p;
		r.reserved_state = rs;
		rpc_call_send(j->call, &r.base);
	} else {
		Multipoolerservice__StreamExecuteResponse r =
			MULTIPOOLERSERVICE__STREAM_EXECUTE_RESPONSE__INIT;
		r.result = p;
		r.reserved_state = rs;
		rpc_call_send(j->call, &r.base);
	}
	flow_check(j);
}

static bool streaming(const mp_job *j)
{
	return j->kind == MPX_STREAM || j->kind == MPX_PORTAL;
}

static void params_clear(mp_job *j)
{
	for (int i = 0; i < j->nparams; i++) {
		free(j->params[i].name);
		free(j->params[i].value);
	}
	j->nparams = 0;
}

/* Send a result message (params changed so far ride along). */
static void send_result(mp_job *j, Query__QueryResult *r, Query__ReservedState *rs)
{
	Query__QueryResult__ParameterStatusEntry ents[BACKEND_MAX_PARAMS];
	Query__QueryResult__ParameterStatusEntry *ptrs[BACKEND_MAX_PARAMS];
	if (r) {
		for (int i = 0; i < j->nparams; i++) {
			query__query_result__parameter_status_entry__init(&ents[i]);
			ents[i].key = j->params[i].name;
			ents[i].value = j->params[i].value;
			ptrs[i] = &ents[i];
		}
		r->n_parameter_status = (size_t)j->nparams;
		r->parameter_status = ptrs;
	}
	Query__QueryResultPayload p = QUERY__QUERY_RESULT_PAYLOAD__INIT;
	if (r) {
		p.payload_case = QUERY__QUERY_RESULT_PAYLOAD__PAYLOAD_RESULT;
		p.result = r;
	}
	send_payload(j, r ? &p : NULL, rs);
	if (r)
		params_clear(j);
}

/* The rows buffered so far, with the command tag when the set is done. */
static void flush_block(mp_job *j, const char *tag)
{
	if (!j->block_rows && !tag)
		return;
	Query__QueryResult r = QUERY__QUERY_RESULT__INIT;
	r.passthrough_block.data = j->block.data;
	r.passthrough_block.len = j->block.len;
	r.passthrough_row_count = j->block_rows;
	if (tag) {
		r.command_tag = (char *)tag;
		r.rows_affected = tag_rows(tag);
	}
	send_result(j, &r, NULL);
	pgw_wbuf_consume(&j->block, j->block.len);
	j->block_rows = 0;
}

static void fields_free(mp_job *j)
{
	for (size_t i = 0; i < j->nfields; i++)
		free_msg(j->fields[i]);
	free(j->fields);
	j->fields = NULL;
	j->nfields = 0;
}

static void rows_free(mp_job *j)
{
	for (size_t i = 0; i < j->nrows; i++)
		free_msg(j->rows[i]);
	free(j->rows);
	j->rows = NULL;
	j->nrows = j->caprows = j->row_bytes = 0;
}

static int take_fields(mp_job *j, pgw_msg *m)
{
	pgw_error err;
	fields_free(j);
	if (pgw_decode_msg_body(m, &err) != PGW_OK)
		return -1;
	const pgw_array *a = &m->body.row_description.fields;
	j->fields = calloc(a->count ? a->count : 1, sizeof *j->fields);
	if (!j->fields)
		return -1;
	pgw_iter it = pgw_array_iter(a);
	pgw_row_description_fields f;
	while (pgw_next_row_description_fields(&it, &f)) {
		Query__Field *q = malloc(sizeof *q);
		if (!q)
			return -1;
		query__field__init(q);
		j->fields[j->nfields++] = q;
		q->name = xstrndup(f.name.ptr, f.name.len);
		if (!q->name) {
			q->name = (char *)protobuf_c_empty_string;
			return -1;
		}
		q->table_oid = (uint32_t)f.table_oid;
		q->table_attribute_number = f.column;
		q->data_type_oid = (uint32_t)f.type_oid;
		q->data_type_size = f.type_size;
		q->type_modifier = f.type_modifier;
		q->format = f.format;
	}
	return 0;
}

/* ExecuteQuery's rows: decoded into query.Row, bounded. */
static int take_row(mp_job *j, pgw_msg *m)
{
	if (j->overflow)
		return 0;
	size_t cap_bytes = j->mw->srv->cfg.max_result_bytes;
	if ((j->max_rows && j->nrows >= j->max_rows) || j->row_bytes + m->raw_len > cap_bytes) {
		j->overflow = true;
		rows_free(j);
		backend_cancel(j->be, NULL, NULL); /* the rest would be thrown away */
		return 0;
	}
	pgw_error err;
	if (pgw_decode_msg_body(m, &err) != PGW_OK)
		return -1;
	if (j->nrows == j->caprows) {
		size_t cap = j->caprows ? j->caprows * 2 : 16;
		Query__Row **nr = realloc(j->rows, cap * sizeof *nr);
		if (!nr)
			return -1;
		j->rows = nr;
		j->caprows = cap;
	}
	const pgw_array *cols = &m->body.data_row.columns;
	Query__Row *row = malloc(sizeof *row);
	if (!row)
		return -1;
	query__row__init(row);
	j->rows[j->nrows++] = row;
	row->lengths = malloc((cols->count ? cols->count : 1) * sizeof *row->lengths);
	row->values.data = malloc(cols->size ? cols->size : 1);
	if (!row->lengths || !row->values.data)
		return -1;
	pgw_iter it = pgw_array_iter(cols);
	pgw_value v;
	while (pgw_next_value(&it, &v)) {
		row->lengths[row->n_lengths++] = v.len;
		if (v.len > 0) {
			memcpy(row->values.data + row->values.len, v.ptr, (size_t)v.len);
			row->values.len += (size_t)v.len;
		}
	}
	j->row_bytes += m->raw_len;
	return 0;
}

static void note_error(mp_job *j, pgw_msg *m)
{
	if (j->error)
		return;
	j->error = diag_from_msg(m);
	j->error_status = j->error && j->error->code ? status_for(j->error->code) : RPC_UNKNOWN;
	if (j->error_status == RPC_CANCELLED)
		j->error_status = RPC_UNKNOWN; /* a statement cancelled by the server itself */
}

static void send_sync(mp_job *j)
{
	static const uint8_t sync[5] = {'S', 0, 0, 0, 4};
	backend_send(j->be, sync, sizeof sync, 1);
	j->flush_mode = false;
}

static void copy_response(mp_job *j, Multipoolerservice__CopyBidiExecuteResponse *r)
{
	if (j->call) {
		rpc_call_send(j->call, &r->base);
		flow_check(j);
	}
}

static void copy_ready(mp_job *j, pgw_msg *m)
{
	pgw_error err;
	if (pgw_decode_msg_body(m, &err) != PGW_OK)
		return;
	/* Both responses have the same shape. */
	const pgw_copy_in_response *cr = &m->body.copy_in_response;
	if (!j->resv) {
		j->resv = resv_new(j->mw, j->be);
		if (j->resv)
			j->resv->job = j;
	}
	if (j->resv)
		j->resv->reasons |= MP_RESERVE_COPY;
	int32_t formats[1024];
	size_t n = cr->column_formats.count < 1024 ? cr->column_formats.count : 1024;
	for (size_t i = 0; i < n; i++)
		formats[i] = pgw_array_i16(&cr->column_formats, (uint32_t)i);
	Clustermetadata__ID id;
	mpx_pooler_id(j->mw, &id);
	Multipoolerservice__CopyBidiExecuteResponse r = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_RESPONSE__INIT;
	r.phase = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_RESPONSE__PHASE__READY;
	r.reserved_connection_id = j->resv ? j->resv->id : 0;
	r.pooler_id = &id;
	r.format = cr->format;
	r.n_column_formats = n;
	r.column_formats = formats;
	copy_response(j, &r);
}

/* ------------------------------------------------------------ server answers */

static void job_on_message(void *owner, backend *be, pgw_msg *m)
{
	mp_job *j = owner;
	pgw_error err;
	(void)be;
	switch (m->type) {
	case 'T':
		if (take_fields(j, m) != 0)
			log_warning("could not take a RowDescription");
		if (j->kind == MPX_UNARY || j->kind == MPX_CONCLUDE)
			rows_free(j); /* the last result set is the answer */
		if (streaming(j)) {
			Query__QueryResult r = QUERY__QUERY_RESULT__INIT;
			r.n_fields = j->nfields;
			r.fields = j->fields;
			r.has_fields = true;
			send_result(j, &r, NULL);
		}
		break;
	case 'D':
		if (streaming(j)) {
			pgw_w_bytes(&j->block, m->raw, m->raw_len);
			j->block_rows++;
			if (j->block.len >= BLOCK_BYTES)
				flush_block(j, NULL);
		} else if (j->kind == MPX_UNARY || j->kind == MPX_CONCLUDE) {
			if (take_row(j, m) != 0)
				j->overflow = true;
		} else if (j->kind == MPX_AUTH && !j->auth_row &&
			   pgw_decode_msg_body(m, &err) == PGW_OK) {
			pgw_iter it = pgw_array_iter(&m->body.data_row.columns);
			pgw_value v;
			j->auth_row = true;
			if (pgw_next_value(&it, &v) && v.len >= 0)
				j->auth_value = xstrndup(v.ptr, (size_t)v.len);
		}
		break;
	case 'C': {
		if (pgw_decode_msg_body(m, &err) != PGW_OK)
			break;
		const char *tag = (const char *)m->body.command_complete.tag.ptr;
		if (streaming(j)) {
			flush_block(j, tag);
		} else if (j->kind == MPX_COPY) {
			Query__QueryResult qr = QUERY__QUERY_RESULT__INIT;
			qr.command_tag = (char *)tag;
			qr.rows_affected = tag_rows(tag);
			Multipoolerservice__CopyBidiExecuteResponse r =
				MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_RESPONSE__INIT;
			r.phase = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_RESPONSE__PHASE__RESULT;
			r.result = &qr;
			copy_response(j, &r);
			j->copy_in = false;
		} else {
			free(j->tag);
			j->tag = strdup(tag);
		}
		if (j->flush_mode)
			send_sync(j);
		break;
	}
	case 'n':
		/* NoData for an include_describe: an empty result still tells
		 * the caller that Bind succeeded (its rows, if any, follow). */
		if (j->kind == MPX_PORTAL) {
			Multipoolerservice__PortalStreamExecuteRequest *pr = (void *)j->req;
			if (pr->portal_options && pr->portal_options->include_describe) {
				Query__QueryResult r = QUERY__QUERY_RESULT__INIT;
				send_result(j, &r, NULL);
			}
		}
		break;
	case 's': /* PortalSuspended: the portal stays open for the next call */
		flush_block(j, NULL);
		j->suspended = true;
		if (j->flush_mode) {
			job_complete(j);
			return;
		}
		break;
	case 'E':
		if (streaming(j))
			flush_block(j, NULL);
		note_error(j, m);
		if (j->stmt_id && j->error && j->error->code && j->error->message &&
		    strcmp(j->error->code, "0A000") == 0 &&
		    strcmp(j->error->message, "cached plan must not change result type") == 0) {
			/* The server statement fails this way for good: the
			 * query prepared again is planned afresh, as in
			 * PostgreSQL (left on the server until DISCARD ALL). The
			 * same query's statements on the other server connections
			 * are as stale: forgotten everywhere, as the gateway's
			 * own pool does. */
			stmtcache_entry *e = stmtcache_find_id(&j->be->stmts, j->stmt_id);
			if (e)
				pool_forget_stale(j->be, e);
			j->stmt_id = 0;
		}
		if (j->parse_id) {
			stmtcache_entry *e = stmtcache_find_id(&j->be->stmts, j->parse_id);
			if (e && !e->ready)
				stmtcache_remove(&j->be->stmts, e);
			j->parse_id = 0;
		}
		if (j->kind == MPX_COPY) {
			Multipoolerservice__CopyBidiExecuteResponse r =
				MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_RESPONSE__INIT;
			r.phase = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_RESPONSE__PHASE__ERROR;
			r.error = j->error && j->error->message ? j->error->message : "error";
			copy_response(j, &r);
			j->copy_in = false;
		}
		if (j->flush_mode)
			send_sync(j);
		break;
	case 'N': {
		Query__PgDiagnostic *d = diag_from_msg(m);
		if (!d)
			break;
		if (streaming(j)) {
			Query__QueryResultPayload p = QUERY__QUERY_RESULT_PAYLOAD__INIT;
			p.payload_case = QUERY__QUERY_RESULT_PAYLOAD__PAYLOAD_DIAGNOSTIC;
			p.diagnostic = d;
			send_payload(j, &p, NULL);
			free_msg(d);
		} else {
			Query__PgDiagnostic **nn =
				realloc(j->notices, (j->nnotices + 1) * sizeof *nn);
			if (nn) {
				j->notices = nn;
				j->notices[j->nnotices++] = d;
			} else {
				free_msg(d);
			}
		}
		break;
	}
	case 'A':
		if (streaming(j) && pgw_decode_msg_body(m, &err) == PGW_OK) {
			const pgw_notification_response *a = &m->body.notification_response;
			Query__PgNotification n = QUERY__PG_NOTIFICATION__INIT;
			n.pid = a->pid;
			n.channel = (char *)a->channel.ptr;
			n.payload = (char *)a->payload.ptr;
			Query__QueryResultPayload p = QUERY__QUERY_RESULT_PAYLOAD__INIT;
			p.payload_case = QUERY__QUERY_RESULT_PAYLOAD__PAYLOAD_NOTIFICATION;
			p.notification = &n;
			send_payload(j, &p, NULL);
		}
		break;
	case 'S':
		if (pgw_decode_msg_body(m, &err) == PGW_OK) {
			const pgw_parameter_status *ps = &m->body.parameter_status;
			int i = 0;
			while (i < j->nparams && strcmp(j->params[i].name, (const char *)ps->name.ptr))
				i++;
			if (i == BACKEND_MAX_PARAMS)
				break;
			char *v = xstrndup(ps->value.ptr, ps->value.len);
			if (!v)
				break;
			if (i == j->nparams) {
				j->params[i].name = xstrndup(ps->name.ptr, ps->name.len);
				if (!j->params[i].name) {
					free(v);
					break;
				}
				j->nparams++;
			} else {
				free(j->params[i].value);
			}
			j->params[i].value = v;
		}
		break;
	case '1':
		if (j->parse_id) {
			stmtcache_entry *e = stmtcache_find_id(&j->be->stmts, j->parse_id);
			if (e)
				e->ready = true;
			j->parse_id = 0;
		}
		break;
	case 't':
		if (pgw_decode_msg_body(m, &err) == PGW_OK) {
			const pgw_array *a = &m->body.parameter_description.param_types;
			free(j->param_oids);
			j->param_oids = malloc((a->count ? a->count : 1) * sizeof *j->param_oids);
			j->nparam_oids = 0;
			if (j->param_oids)
				for (uint32_t i = 0; i < a->count; i++)
					j->param_oids[j->nparam_oids++] = (uint32_t)pgw_array_i32(a, i);
		}
		break;
	case 'G':
		if (j->kind == MPX_COPY) {
			j->copy_in = true;
			copy_ready(j, m);
		} else {
			/* Nobody would send the data: COPY FROM STDIN needs
			 * CopyBidiExecute. */
			pgw_copy_fail f = {{(const uint8_t *)"COPY FROM STDIN needs CopyBidiExecute", 37}};
			pgw_encode_copy_fail(conn_wbuf(&j->be->conn), &f);
			conn_wrote(&j->be->conn);
		}
		break;
	case 'H':
		if (j->kind == MPX_COPY)
			copy_ready(j, m);
		break;
	case 'W': {
		pgw_copy_fail f = {{(const uint8_t *)"COPY BOTH is not served", 23}};
		pgw_encode_copy_fail(conn_wbuf(&j->be->conn), &f);
		conn_wrote(&j->be->conn);
		break;
	}
	case 'd':
		if (j->kind == MPX_COPY && m->raw_len >= 5) {
			Multipoolerservice__CopyBidiExecuteResponse r =
				MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_RESPONSE__INIT;
			r.phase = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_RESPONSE__PHASE__DATA;
			r.data.data = (uint8_t *)m->raw + 5;
			r.data.len = m->raw_len - 5;
			copy_response(j, &r);
		}
		break;
	case 'Z':
		job_complete(j);
		return;
	default:
		break;
	}
}

static void job_on_lost(void *owner, backend *be, const pgw_error *err)
{
	mp_job *j = owner;
	(void)be;
	j->be = NULL; /* the pool closes it */
	if (j->resv) {
		resv_unlink(j->mw, j->resv);
		j->resv = NULL;
	}
	finish_simple_error(j->call, RPC_UNAVAILABLE, err->sqlstate, "%s", err->message);
	job_free(j);
}

static void job_on_drained(void *owner, backend *be)
{
	mp_job *j = owner;
	(void)be;
	if (j->client_paused && j->call) {
		j->client_paused = false;
		rpc_call_resume(j->call);
	}
}

static void job_on_own_error(void *owner, backend *be, pgw_msg *m)
{
	mp_job *j = owner;
	(void)be;
	j->own_failed = true;
	note_error(j, m);
}

static void job_on_own_done(void *owner, backend *be)
{
	mp_job *j = owner;
	if (j->stage == JS_PREP && be->pending_count == 0)
		job_run(j);
}

static const backend_owner_ops job_ops = {job_on_message, job_on_lost, job_on_drained,
					  job_on_own_error, job_on_own_done};

/* ------------------------------------------------------------ the steps */

static int cmp_setting(const void *a, const void *b)
{
	const Query__ExecuteOptions__SessionSettingsEntry *x = *(void *const *)a, *y = *(void *const *)b;
	return strcmp(x->key, y->key);
}

/* The request's settings as the gateway's session would replay them. */
static void request_settings(session *s, const Query__ExecuteOptions *o)
{
	session_init(s);
	size_t n = o ? o->n_session_settings : 0;
	if (n) {
		Query__ExecuteOptions__SessionSettingsEntry **sorted = malloc(n * sizeof *sorted);
		if (sorted) {
			memcpy(sorted, o->session_settings, n * sizeof *sorted);
			qsort(sorted, n, sizeof *sorted, cmp_setting);
			for (size_t i = 0; i < n; i++)
				if (sorted[i]->key[0])
					session_add_startup(s, sorted[i]->key, sorted[i]->value);
			free(sorted);
		}
	}
	session_refresh(s);
}

/* Make the connection's settings the request's: a reset, then one SET
 * each (the gateway's own replay logic), only when they differ. */
static bool apply_settings(mp_job *j, const Query__ExecuteOptions *o)
{
	backend *be = j->be;
	if (j->settings_hash == be->settings_hash)
		return false; /* the usual case: taken for matching settings */
	session s;
	request_settings(&s, o);
	bool sent = false;
	if (session_needs_sync(&s, be->settings_hash)) {
		const char *prefix = session_sync_prefix(&s, be->settings_role);
		backend_send_query(be, prefix, strlen(prefix), true);
		if (s.sync_len)
			backend_send_query(be, s.sync_sql, s.sync_len, true);
		be->settings_hash = s.hash;
		be->settings_role = s.role_changed;
		sent = true;
	}
	session_free(&s);
	return sent;
}

/* What the reservation heard between calls comes first in this call's
 * answer, in the order the server sent it. */
static void send_waiting_notifications(mp_job *j, mp_resv *r)
{
	/* A wait holds back while the client reads slowly: the queue is
	 * bounded, the call's buffer would not be. */
	while (r->notify_head && j->call && (!j->awaits || rpc_call_writable(j->call))) {
		mp_notify *n = r->notify_head;
		r->notify_head = n->next;
		Query__PgNotification qn = QUERY__PG_NOTIFICATION__INIT;
		qn.pid = n->pid;
		qn.channel = n->channel;
		qn.payload = n->payload;
		Query__QueryResultPayload p = QUERY__QUERY_RESULT_PAYLOAD__INIT;
		p.payload_case = QUERY__QUERY_RESULT_PAYLOAD__PAYLOAD_NOTIFICATION;
		p.notification = &qn;
		send_payload(j, &p, NULL);
		notify_free(n);
		r->notify_count--;
	}
	if (!r->notify_head)
		r->notify_tail = NULL;
}

/* ------------------------------------------------------------ notification waits */

static void await_on_writable(rpc_call *call, void *arg)
{
	(void)call;
	await_flush(arg);
}

static void await_flush(mp_job *a)
{
	send_waiting_notifications(a, a->awaits);
	if (a->awaits->notify_head)
		rpc_call_on_writable(a->call, await_on_writable, a);
}

/* A StreamExecute with await_notifications on reservation r: nothing runs
 * on the server; the call carries what r hears between calls. One wait
 * per reservation (a newer one replaces it). */
static void await_start(mp_job *j, mp_resv *r)
{
	await_end(r);
	r->awaiter = j;
	j->awaits = r;
	if (!r->job)
		await_flush(j);
}

/* The wait on r ends well: a call takes the reservation, or it goes.
 * What is still queued goes out with the next call. */
static void await_end(mp_resv *r)
{
	mp_job *a = r->awaiter;
	if (!a)
		return;
	r->awaiter = NULL;
	a->awaits = NULL;
	rpc_call_finish(a->call, RPC_OK, NULL, NULL);
	a->call = NULL;
	job_free(a);
}

/* The server connection is ours: set it up, then run. */
static void job_go(mp_job *j, backend *be)
{
	j->be = be;
	backend_set_owner(be, &job_ops, j);
	j->stage = JS_PREP;
	Query__Target *t;
	Query__ExecuteOptions *o;
	Query__ReservationOptions *ro;
	req_parts(j, &t, &o, &ro);
	mp_resv *r = j->resv;
	if (r && r->notify_head && streaming(j))
		send_waiting_notifications(j, r);
	if (r && r->portal && !j->continuing) {
		/* A new request ends the portal left open, as a Sync would. */
		backend_send_own_sync(be);
		free(r->portal);
		r->portal = NULL;
		r->flush_mode = false;
	}
	/* A reservation's settings are its holder's, set when it was made. */
	if (j->kind != MPX_AUTH && !j->continuing && !r)
		apply_settings(j, o);
	if (ro && !j->continuing && (ro->begin_query[0] || (ro->reasons & MP_RESERVE_TRANSACTION))) {
		/* Unless a transaction is already open (then the server would
		 * only warn). */
		if (be->txn_status == 'I') {
			const char *b = ro->begin_query[0] ? ro->begin_query : "BEGIN";
			backend_send_query(be, b, strlen(b), true);
		}
	}
	if (be->pending_count == 0)
		job_run(j);
}

static void on_granted(pool_waiter *wt, backend *be, const pgw_error *err,
		       const uint8_t *login_error, size_t login_error_len)
{
	mp_job *j = (mp_job *)((char *)wt - offsetof(mp_job, waiter));
	if (be) {
		job_go(j, be);
		return;
	}
	Query__PgDiagnostic *d = NULL;
	int status = status_for(err->sqlstate);
	if (login_error) {
		/* The server refused the login: its own words. */
		pgw_decoder dec;
		pgw_msg m;
		size_t used;
		pgw_error e2;
		pgw_decoder_init(&dec, PGW_BACKEND, 0);
		dec.phase = PGW_PH_BACKEND;
		if (pgw_decode(&dec, login_error, login_error_len, &m, &used, &e2) == PGW_OK &&
		    m.type == 'E') {
			d = diag_from_fields(&m.body.error_response.fields, 'E');
			status = RPC_UNKNOWN;
		}
	}
	if (!d)
		d = diag_new(err->severity == PGW_SEV_FATAL ? "FATAL" : "ERROR", err->sqlstate,
			     err->message, 'E');
	finish_error(j->call, status, d && d->message ? d->message : err->message, d);
	free_msg(d);
	j->call = NULL;
	job_free(j);
}

/* Frontend messages for the extended protocol. */
static void w_parse(pgw_wbuf *w, const char *name, const uint8_t *key, size_t key_len)
{
	size_t at = pgw_w_begin(w, 'P');
	pgw_w_cstr(w, name, strlen(name));
	pgw_w_bytes(w, key, key_len);
	pgw_w_end(w, at);
}

static void w_describe(pgw_wbuf *w, char what, const char *name)
{
	size_t at = pgw_w_begin(w, 'D');
	pgw_w_u8(w, (uint8_t)what);
	pgw_w_cstr(w, name, strlen(name));
	pgw_w_end(w, at);
}

static void w_execute(pgw_wbuf *w, const char *portal, uint64_t max_rows)
{
	size_t at = pgw_w_begin(w, 'E');
	pgw_w_cstr(w, portal, strlen(portal));
	pgw_w_i32(w, max_rows > INT32_MAX ? INT32_MAX : (int32_t)max_rows);
	pgw_w_end(w, at);
}

/* The server statement for ps on this connection, prepared when missing;
 * its name goes to name (STMTCACHE_NAME_MAX). */
static int ensure_prepared(mp_job *j, pgw_wbuf *w, const Query__PreparedStatement *ps, char *name)
{
	backend *be = j->be;
	if (ps->n_param_types > 65535)
		return -1;
	size_t qlen = strlen(ps->query);
	size_t klen = qlen + 1 + 2 + 4 * ps->n_param_types;
	uint8_t *key = malloc(klen);
	if (!key)
		return -1;
	memcpy(key, ps->query, qlen + 1);
	uint8_t *p = key + qlen + 1;
	*p++ = (uint8_t)(ps->n_param_types >> 8);
	*p++ = (uint8_t)ps->n_param_types;
	for (size_t i = 0; i < ps->n_param_types; i++) {
		uint32_t t = ps->param_types[i];
		*p++ = (uint8_t)(t >> 24);
		*p++ = (uint8_t)(t >> 16);
		*p++ = (uint8_t)(t >> 8);
		*p++ = (uint8_t)t;
	}
	stmt_key k = {key, (uint32_t)klen, stmt_key_hash(key, klen)};
	stmtcache_entry *e = stmtcache_find(&be->stmts, &k);
	if (e) {
		free(key);
		stmtcache_name(e->id, name);
		j->stmt_id = e->id;
		return 0;
	}
	int max = j->mw->pool_cfg.max_prepared > 0 ? j->mw->pool_cfg.max_prepared : 250;
	while (be->stmts.count >= (uint32_t)max) {
		stmtcache_entry *v = stmtcache_victim(&be->stmts, NULL, NULL);
		if (!v)
			break;
		char vname[STMTCACHE_NAME_MAX];
		stmtcache_name(v->id, vname);
		size_t at = pgw_w_begin(w, 'C');
		pgw_w_u8(w, 'S');
		pgw_w_cstr(w, vname, strlen(vname));
		pgw_w_end(w, at);
		stmtcache_remove(&be->stmts, v);
	}
	e = stmtcache_add(&be->stmts, &k);
	if (!e) {
		free(key);
		return -1;
	}
	stmtcache_name(e->id, name);
	w_parse(w, name, key, klen);
	j->parse_id = e->id;
	j->stmt_id = e->id;
	free(key);
	return 0;
}

static int w_bind(pgw_wbuf *w, const Query__Portal *po, const char *stmt)
{
	if (po->n_param_formats > 65535 || po->n_param_lengths > 65535 ||
	    po->n_result_formats > 65535)
		return -1;
	/* The values must add up to the bytes given. */
	uint64_t total = 0;
	for (size_t i = 0; i < po->n_param_lengths; i++) {
		if (po->param_lengths[i] < -1 || po->param_lengths[i] > INT32_MAX)
			return -1;
		if (po->param_lengths[i] > 0)
			total += (uint64_t)po->param_lengths[i];
	}
	if (total != po->param_values.len)
		return -1;
	size_t at = pgw_w_begin(w, 'B');
	pgw_w_cstr(w, po->name, strlen(po->name));
	pgw_w_cstr(w, stmt, strlen(stmt));
	pgw_w_i16(w, (int16_t)po->n_param_formats);
	for (size_t i = 0; i < po->n_param_formats; i++)
		pgw_w_i16(w, (int16_t)po->param_formats[i]);
	pgw_w_i16(w, (int16_t)po->n_param_lengths);
	size_t off = 0;
	for (size_t i = 0; i < po->n_param_lengths; i++) {
		int64_t len = po->param_lengths[i];
		pgw_w_value(w, po->param_values.data + off, len < 0 ? -1 : (int32_t)len);
		if (len > 0)
			off += (size_t)len;
	}
	pgw_w_i16(w, (int16_t)po->n_result_formats);
	for (size_t i = 0; i < po->n_result_formats; i++)
		pgw_w_i16(w, (int16_t)po->result_formats[i]);
	pgw_w_end(w, at);
	return 0;
}

/* Build the extended-protocol messages of a PortalStreamExecute or a
 * Describe; returns how many ReadyForQuery they bring, or -1. */
static int build_extended(mp_job *j, pgw_wbuf *w)
{
	Query__PreparedStatement *ps;
	Query__Portal *po;
	Query__ExecuteOptions *o;
	bool describe_portal = false, include_describe = false;
	if (j->kind == MPX_PORTAL) {
		Multipoolerservice__PortalStreamExecuteRequest *r = (void *)j->req;
		ps = r->prepared_statement;
		po = r->portal;
		o = r->options;
		include_describe = r->portal_options && r->portal_options->include_describe;
	} else {
		Multipoolerservice__DescribeRequest *r = (void *)j->req;
		ps = r->prepared_statement;
		po = r->portal;
		o = r->options;
		describe_portal = po != NULL;
	}
	uint64_t max_rows = o ? o->max_rows : 0;
	const char *portal_name = po ? po->name : "";
	if (j->continuing) {
		w_execute(w, portal_name, max_rows);
		pgw_encode_flush(w);
		j->flush_mode = true;
		return 0;
	}
	if (!ps) {
		/* A portal already open on the reservation (a suspended one, a
		 * SQL cursor), named alone: run or describe it as it stands. */
		if (!po || !j->resv)
			return -1;
		if (j->kind == MPX_DESCRIBE) {
			w_describe(w, 'P', portal_name);
			pgw_encode_sync(w);
			return 1;
		}
		if (include_describe)
			w_describe(w, 'P', portal_name);
		w_execute(w, portal_name, max_rows);
		pgw_encode_flush(w);
		j->flush_mode = true;
		return 0;
	}
	char sname[STMTCACHE_NAME_MAX];
	if (ensure_prepared(j, w, ps, sname) != 0)
		return -1;
	if (j->kind == MPX_DESCRIBE) {
		if (describe_portal) {
			if (w_bind(w, po, sname) != 0)
				return -1;
			w_describe(w, 'P', portal_name);
			if (portal_name[0]) {
				/* Describe leaves no portal behind (a Sync
				 * would not close it in a transaction block). */
				size_t at = pgw_w_begin(w, 'C');
				pgw_w_u8(w, 'P');
				pgw_w_cstr(w, portal_name, strlen(portal_name));
				pgw_w_end(w, at);
			}
		} else {
			w_describe(w, 'S', sname);
		}
		pgw_encode_sync(w);
		return 1;
	}
	if (!po || w_bind(w, po, sname) != 0)
		return -1;
	if (include_describe)
		w_describe(w, 'P', portal_name);
	w_execute(w, portal_name, max_rows);
	if (max_rows > 0) {
		/* The portal may be suspended: no Sync, or it would close. */
		pgw_encode_flush(w);
		j->flush_mode = true;
		return 0;
	}
	pgw_encode_sync(w);
	return 1;
}

static void job_run(mp_job *j)
{
	backend *be = j->be;
	j->stage = JS_RUN;
	if (j->own_failed) {
		job_complete(j);
		return;
	}
	switch (j->kind) {
	case MPX_PORTAL:
	case MPX_DESCRIBE: {
		bool drops = false;
		if (j->kind == MPX_PORTAL && !j->continuing) {
			/* An extended SET changes the connection as a simple one;
			 * an extended DEALLOCATE ALL drops the cache's statements. */
			Multipoolerservice__PortalStreamExecuteRequest *pr = (void *)j->req;
			if (pr->prepared_statement) {
				sql_effects e;
				sql_effects_of(pr->prepared_statement->query, &e);
				if (e.settings)
					j->settings_dirty = true;
				drops = e.drops;
			}
		}
		pgw_wbuf w = PGW_WBUF_INIT;
		int requests = build_extended(j, &w);
		if (requests < 0 || w.failed) {
			pgw_wbuf_release(&w);
			j->error = diag_new("ERROR", "08P01",
					    "invalid request: the statement, portal, parameter "
					    "lengths or formats do not fit together",
					    'E');
			j->error_status = RPC_INVALID_ARGUMENT;
			if (j->parse_id) {
				/* Nothing was sent: forget the statement again. */
				stmtcache_entry *e = stmtcache_find_id(&be->stmts, j->parse_id);
				if (e)
					stmtcache_remove(&be->stmts, e);
				j->parse_id = 0;
			}
			job_complete(j);
			return;
		}
		backend_send(be, w.data, w.len, requests);
		pgw_wbuf_release(&w);
		be->unnamed_uid = 0;
		if (drops)
			stmtcache_clear(&be->stmts);
		break;
	}
	default: {
		sql_effects e;
		sql_effects_of(j->sql, &e);
		if (e.settings)
			j->settings_dirty = true;
		if (e.drops)
			stmtcache_clear(&be->stmts);
		/* The server waits up to 5 s for other sessions to leave the
		 * database such a statement needs alone: idle connections closed
		 * now are gone within that wait (db_retry covers the rest). */
		if (e.database[0] && !j->db_retried && strcmp(e.database, be->pool->database) != 0)
			pool_close_idle(&j->mw->w, e.database, NULL, NULL, NULL);
		backend_send_query(be, j->sql, strlen(j->sql), false);
		break;
	}
	}
}

/* The answer a unary kind gives, with the result built so far. */
static void finish_unary(mp_job *j, Query__ReservedState *rs)
{
	Query__QueryResult r = QUERY__QUERY_RESULT__INIT;
	r.n_fields = j->nfields;
	r.fields = j->fields;
	r.has_fields = j->nfields > 0;
	r.n_rows = j->nrows;
	r.rows = j->rows;
	r.command_tag = j->tag ? j->tag : (char *)protobuf_c_empty_string;
	r.rows_affected = j->tag ? tag_rows(j->tag) : 0;
	r.n_notices = j->nnotices;
	r.notices = j->notices;
	Query__QueryResult__ParameterStatusEntry ents[BACKEND_MAX_PARAMS];
	Query__QueryResult__ParameterStatusEntry *ptrs[BACKEND_MAX_PARAMS];
	for (int i = 0; i < j->nparams; i++) {
		query__query_result__parameter_status_entry__init(&ents[i]);
		ents[i].key = j->params[i].name;
		ents[i].value = j->params[i].value;
		ptrs[i] = &ents[i];
	}
	r.n_parameter_status = (size_t)j->nparams;
	r.parameter_status = ptrs;
	if (j->kind == MPX_UNARY) {
		Multipoolerservice__ExecuteQueryResponse resp =
			MULTIPOOLERSERVICE__EXECUTE_QUERY_RESPONSE__INIT;
		resp.result = &r;
		rpc_call_send(j->call, &resp.base);
	} else {
		Multipoolerservice__ConcludeTransactionResponse resp =
			MULTIPOOLERSERVICE__CONCLUDE_TRANSACTION_RESPONSE__INIT;
		resp.result = &r;
		resp.reserved_state = rs;
		rpc_call_send(j->call, &resp.base);
	}
}

static void finish_describe(mp_job *j)
{
	Query__StatementDescription d = QUERY__STATEMENT_DESCRIPTION__INIT;
	Query__ParameterDescription *pds = calloc(j->nparam_oids ? j->nparam_oids : 1, sizeof *pds);
	Query__ParameterDescription **pp = calloc(j->nparam_oids ? j->nparam_oids : 1, sizeof *pp);
	if (pds && pp) {
		for (size_t i = 0; i < j->nparam_oids; i++) {
			query__parameter_description__init(&pds[i]);
			pds[i].data_type_oid = j->param_oids[i];
			pp[i] = &pds[i];
		}
		d.n_parameters = j->nparam_oids;
		d.parameters = pp;
	}
	d.n_fields = j->nfields;
	d.fields = j->fields;
	Multipoolerservice__DescribeResponse resp = MULTIPOOLERSERVICE__DESCRIBE_RESPONSE__INIT;
	resp.description = &d;
	rpc_call_send(j->call, &resp.base);
	free(pds);
	free(pp);
}

/* ------------------------------------------------------------ database statements */

static void job_swept(void *arg)
{
	mp_job *j = arg;
	j->sweep = NULL;
	job_run(j);
}

/*
 * CREATE, DROP or ALTER DATABASE, run alone outside a transaction, failed
 * with 55006 (others are in the database it needs alone): the pool's idle
 * connections there, on every worker, are what the server saw; they are
 * closed and the statement goes once more on the same connection (which
 * the server never counts), as the gateway does with its own pool. A
 * second failure is the caller's. True: it goes again.
 */
static bool db_retry(mp_job *j)
{
	backend *be = j->be;
	stmt_info si;
	char db[64];
	if (j->db_retried || !j->call || (j->kind != MPX_STREAM && j->kind != MPX_UNARY) || !j->error ||
	    !j->error->code || strcmp(j->error->code, "55006") != 0 || be->txn_status != 'I' ||
	    j->own_failed)
		return false;
	if (stmt_classify(j->sql, strlen(j->sql), &si, 1) != 1 || (si.flags & STMT_F_UNTERMINATED))
		return false;
	stmt_db_need need = stmt_exclusive_database(&si, db, sizeof db);
	if (need == STMT_DB_NONE ||
	    (need == STMT_DB_NAMED && si.kind != STMT_CREATE_DATABASE && strcmp(db, be->pool->database) == 0))
		return false;
	j->db_retried = true;
	log_info("a database statement found others in %s; closing idle server connections and "
		 "trying it again",
		 need == STMT_DB_NAMED ? db : "other databases");
	j->sweep = pool_close_idle(&j->mw->w, need == STMT_DB_NAMED ? db : NULL,
				   need == STMT_DB_NAMED ? NULL : be->pool->database, job_swept, j);
	if (!j->sweep)
		return false;
	free_msg(j->error);
	j->error = NULL;
	j->error_status = 0;
	free(j->tag);
	j->tag = NULL;
	for (size_t i = 0; i < j->nnotices; i++)
		free_msg(j->notices[i]);
	j->nnotices = 0;
	return true;
}

/*
 * The request is answered (ReadyForQuery, or a portal suspended): decide
 * whether the connection stays reserved, tell the client, end the call.
 */
static void job_complete(mp_job *j)
{
	if (db_retry(j))
		return;
	mp_worker *mw = j->mw;
	backend *be = j->be;
	mp_resv *r = j->resv;
	Query__ReservedState rs;
	Clustermetadata__ID id;
	uint32_t keep = ((r ? r->reasons : 0) | j->asked) & MP_RESERVE_STICKY;
	if (be->txn_status != 'I')
		keep |= MP_RESERVE_TRANSACTION;
	bool portal_open = j->suspended && j->flush_mode;
	if (portal_open)
		keep |= MP_RESERVE_PORTAL;
	/* ExecuteQuery, Describe and GetAuthCredentials cannot tell the
	 * client of a new reservation: none is made for them. */
	bool can_reserve = j->kind == MPX_STREAM || j->kind == MPX_PORTAL ||
			   j->kind == MPX_CONCLUDE || j->kind == MPX_COPY;
	mp_resv *after = NULL; /* kept: what waits on it runs next */
	if (keep && !r && can_reserve && j->call)
		r = j->resv = resv_new(mw, be);
	if (keep && r) {
		r->reasons = keep;
		r->job = NULL;
		r->last_used = ev_now(mw->w.loop);
		r->settings_dirty |= j->settings_dirty;
		free(r->portal);
		r->portal = NULL;
		after = r;
		r->flush_mode = portal_open;
		if (portal_open) {
			Multipoolerservice__PortalStreamExecuteRequest *pr = (void *)j->req;
			r->portal = strdup(pr->portal ? pr->portal->name : "");
		}
		backend_set_owner(be, &resv_ops, r);
	} else {
		bool discard = r && (r->reasons & MP_RESERVE_DISCARD);
		bool dirty = j->settings_dirty || (r && r->settings_dirty);
		if (r) {
			resv_unlink(mw, r);
			r = j->resv = NULL;
		}
		give_back(be, discard, dirty, portal_open);
	}
	j->be = NULL;
	fill_reserved_state(j, r, be, &rs, &id);

	if (j->call) {
		switch (j->kind) {
		case MPX_STREAM:
		case MPX_PORTAL: {
			/* Changes reported at the end ride with the final state. */
			Query__QueryResult qr = QUERY__QUERY_RESULT__INIT;
			send_result(j, j->nparams ? &qr : NULL, &rs);
			break;
		}
		case MPX_UNARY:
		case MPX_CONCLUDE:
			if (j->overflow) {
				/* Its cancel's error is ours, not the query's. */
				finish_simple_error(j->call, RPC_RESOURCE_EXHAUSTED, "54000",
						    "the result is larger than ExecuteQuery returns "
						    "(max_rows %llu, %zu bytes); use StreamExecute",
						    (unsigned long long)j->max_rows,
						    mw->srv->cfg.max_result_bytes);
				j->call = NULL;
			} else if (!j->error) {
				finish_unary(j, &rs);
			}
			break;
		case MPX_DESCRIBE:
			if (!j->error)
				finish_describe(j);
			break;
		case MPX_AUTH:
			if (!j->error && !j->auth_row) {
				Multipoolerservice__GetAuthCredentialsRequest *ar = (void *)j->req;
				finish_simple_error(j->call, RPC_NOT_FOUND, "28000",
						    "role \"%s\" does not exist", ar->username);
				j->call = NULL;
			} else if (!j->error) {
				Multipoolerservice__GetAuthCredentialsResponse resp =
					MULTIPOOLERSERVICE__GET_AUTH_CREDENTIALS_RESPONSE__INIT;
				resp.scram_hash =
					j->auth_value ? j->auth_value : (char *)protobuf_c_empty_string;
				rpc_call_send(j->call, &resp.base);
			}
			break;
		case MPX_COPY:
			break;
		}
	}
	if (j->call) {
		if (j->error)
			finish_error(j->call, j->error_status ? j->error_status : RPC_UNKNOWN,
				     NULL, j->error);
		else
			rpc_call_finish(j->call, RPC_OK, NULL, NULL);
		j->call = NULL;
	}
	job_free(j);
	if (after)
		resv_after_call(mw, after);
}

/* A cancelled call has wound down on a reservation: a release asked
 * meanwhile happens now, or the call queued behind it runs. */
static void resv_after_call(mp_worker *mw, mp_resv *r)
{
	if (r->release_pending) {
		resv_release(mw, r);
		return;
	}
	mp_job *w = r->waiting;
	if (!w)
		return;
	r->waiting = NULL;
	w->waiting_on = NULL;
	await_end(r);
	w->resv = r;
	r->job = w;
	r->last_used = ev_now(mw->w.loop);
	job_go(w, r->be);
}

static void job_free(mp_job *j)
{
	if (j->sweep)
		pool_sweep_abandon(j->sweep);
	if (j->call)
		rpc_call_set_data(j->call, NULL);
	if (j->resv && j->resv->job == j)
		j->resv->job = NULL;
	free_msg(j->req);
	free(j->sql);
	free_msg(j->error);
	pgw_wbuf_release(&j->block);
	fields_free(j);
	rows_free(j);
	free(j->tag);
	for (size_t i = 0; i < j->nnotices; i++)
		free_msg(j->notices[i]);
	free(j->notices);
	params_clear(j);
	free(j->param_oids);
	free(j->auth_value);
	free(j);
}

/* ------------------------------------------------------------ entry points */

void mpx_start(mp_worker *mw, rpc_call *call, mpx_kind kind, const ProtobufCMessage *req)
{
	const mp_config *cfg = &mw->srv->cfg;
	mp_job *j = calloc(1, sizeof *j);
	if (!j) {
		rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "out of memory", NULL);
		return;
	}
	j->mw = mw;
	j->call = call;
	j->kind = kind;
	j->req = copy_msg(req);
	if (!j->req) {
		rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "out of memory", NULL);
		free(j);
		return;
	}
	rpc_call_set_data(call, j);
	Query__Target *t;
	Query__ExecuteOptions *o;
	Query__ReservationOptions *ro;
	req_parts(j, &t, &o, &ro);
	j->asked = ro ? ro->reasons : 0;
	const char *database = t && t->shard_key && t->shard_key->database[0]
				       ? t->shard_key->database
				       : cfg->database;
	const char *user = o && o->user[0] ? o->user : cfg->user;
	switch (kind) {
	case MPX_STREAM:
		j->sql = strdup(((Multipoolerservice__StreamExecuteRequest *)j->req)->query);
		break;
	case MPX_UNARY: {
		Multipoolerservice__ExecuteQueryRequest *r = (void *)j->req;
		j->sql = strdup(r->query);
		j->max_rows = r->max_rows ? r->max_rows : o ? o->max_rows : 0;
		break;
	}
	case MPX_COPY:
		j->sql = strdup(((Multipoolerservice__CopyBidiExecuteRequest *)j->req)->query);
		break;
	case MPX_CONCLUDE: {
		Multipoolerservice__ConcludeTransactionRequest *r = (void *)j->req;
		if (r->conclusion == MULTIPOOLERSERVICE__CONCLUDE_TRANSACTION_REQUEST__CONCLUSION__COMMIT)
			j->sql = strdup("COMMIT");
		else if (r->conclusion ==
			 MULTIPOOLERSERVICE__CONCLUDE_TRANSACTION_REQUEST__CONCLUSION__ROLLBACK)
			j->sql = strdup("ROLLBACK");
		else {
			finish_simple_error(call, RPC_INVALID_ARGUMENT, "22023",
					    "conclusion must be COMMIT or ROLLBACK");
			j->call = NULL;
			job_free(j);
			return;
		}
		if (!o || !o->reserved_connection_id) {
			finish_simple_error(call, RPC_INVALID_ARGUMENT, "22023",
					    "ConcludeTransaction needs a reserved_connection_id");
			j->call = NULL;
			job_free(j);
			return;
		}
		break;
	}
	case MPX_AUTH: {
		Multipoolerservice__GetAuthCredentialsRequest *r = (void *)j->req;
		if (r->database[0])
			database = r->database;
		user = cfg->user;
		j->sql = auth_query(r->username);
		break;
	}
	case MPX_PORTAL:
	case MPX_DESCRIBE:
		j->sql = strdup("");
		break;
	}
	if (!j->sql) {
		finish_simple_error(call, RPC_RESOURCE_EXHAUSTED, "53200", "out of memory");
		j->call = NULL;
		job_free(j);
		return;
	}
	uint64_t rid = o ? o->reserved_connection_id : 0;
	if (rid) {
		mp_resv *r = resv_find(mw, rid);
		if (!r) {
			if ((rid & ((1u << RESV_WORKER_BITS) - 1)) != (uint64_t)mw->w.index)
				finish_simple_error(call, RPC_NOT_FOUND, "08003",
						    "reserved connection %llu is not held by the "
						    "worker serving this gRPC connection",
						    (unsigned long long)rid);
			else
				finish_simple_error(call, RPC_NOT_FOUND, "08003",
						    "reserved connection %llu not found",
						    (unsigned long long)rid);
			j->call = NULL;
			job_free(j);
			return;
		}
		if (kind == MPX_STREAM &&
		    ((Multipoolerservice__StreamExecuteRequest *)j->req)->await_notifications) {
			await_start(j, r);
			return;
		}
		await_end(r); /* this call carries what comes from now on */
		if (r->job && !r->job->call && !r->waiting && !r->release_pending) {
			/* The call before was cancelled and its statement is
			 * still being stopped on the server: this one follows. */
			r->waiting = j;
			j->waiting_on = r;
			j->stage = JS_WAIT;
			return;
		}
		if (r->job) {
			finish_simple_error(call, RPC_FAILED_PRECONDITION, "55000",
					    "reserved connection %llu is busy with another call",
					    (unsigned long long)rid);
			j->call = NULL;
			job_free(j);
			return;
		}
		j->resv = r;
		r->job = j;
		r->last_used = ev_now(mw->w.loop);
		if (kind == MPX_PORTAL && r->portal) {
			Multipoolerservice__PortalStreamExecuteRequest *pr = (void *)j->req;
			j->continuing = pr->portal && strcmp(pr->portal->name, r->portal) == 0;
		}
		job_go(j, r->be);
		return;
	}
	pool *p = pool_registry_get(&mw->pools, database, user);
	if (!p) {
		finish_simple_error(call, RPC_RESOURCE_EXHAUSTED, "53200",
				    "could not make a pool for user \"%s\" database \"%s\"", user,
				    database);
		j->call = NULL;
		job_free(j);
		return;
	}
	if (o && o->user_auth && o->user_auth->client_key.len == 32 &&
	    o->user_auth->server_key.len == 32) {
		/* SCRAM keys from the client's own login: the pooler logs in as
		 * that user without a password. */
		pool_credentials c = {0};
		c.have_keys = true;
		memcpy(c.client_key, o->user_auth->client_key.data, 32);
		memcpy(c.server_key, o->user_auth->server_key.data, 32);
		pool_set_credentials(p, &c);
	}
	j->stage = JS_WAIT;
	if (o && o->n_session_settings) {
		session s;
		request_settings(&s, o);
		j->settings_hash = s.hash;
		session_free(&s);
	}
	backend *be = pool_acquire_matching(p, &j->waiter, on_granted, j->settings_hash);
	if (be)
		job_go(j, be);
}

void mpx_cancel(rpc_call *call)
{
	mp_job *j = rpc_call_data(call);
	if (!j)
		return;
	rpc_call_set_data(call, NULL);
	j->call = NULL;
	if (j->awaits) {
		j->awaits->awaiter = NULL;
		job_free(j);
		return;
	}
	if (j->waiting_on) {
		j->waiting_on->waiting = NULL;
		j->waiting_on = NULL;
		job_free(j);
		return;
	}
	if (j->sweep) {
		/* Waiting to go again (db_retry): it does not; the connection
		 * is idle. */
		pool_sweep_abandon(j->sweep);
		j->sweep = NULL;
		job_complete(j);
		return;
	}
	if (j->resv && j->resv->job == j && j->be) {
		/* The gateway keeps the reservation: stop the statement as
		 * PostgreSQL's own cancel does (a transaction it ran in is
		 * then failed, not rolled back) and let the job wind down
		 * with no call to answer; what comes next waits for it. */
		backend *be = j->be;
		if (j->copy_in && !j->copy_ended) {
			pgw_copy_fail f = {{(const uint8_t *)"the client cancelled the call", 29}};
			pgw_encode_copy_fail(conn_wbuf(&be->conn), &f);
			conn_wrote(&be->conn);
			j->copy_ended = true;
		} else {
			backend_cancel(be, NULL, NULL);
		}
		backend_resume(be); /* nobody reads slowly now; may end the job */
		return;
	}
	if (j->stage == JS_WAIT && !j->be) {
		pool_cancel_wait(&j->waiter);
		if (j->resv)
			j->resv->job = NULL;
		job_free(j);
		return;
	}
	backend *be = j->be;
	j->be = NULL;
	if (be) {
		/* The running query is cancelled and the connection cleaned
		 * (rolled back) by the pool; a reservation it held ends. */
		bool discard = false, dirty = j->settings_dirty, portal = j->flush_mode;
		if (j->copy_in && !j->copy_ended) {
			pgw_copy_fail f = {{(const uint8_t *)"the client cancelled the call", 29}};
			pgw_encode_copy_fail(conn_wbuf(&be->conn), &f);
			conn_wrote(&be->conn);
		}
		if (j->resv) {
			discard = (j->resv->reasons & MP_RESERVE_DISCARD) != 0;
			dirty |= j->resv->settings_dirty;
			portal |= j->resv->portal != NULL;
			resv_unlink(j->mw, j->resv);
			j->resv = NULL;
		}
		give_back(be, discard, dirty, portal);
	}
	job_free(j);
}

void mpx_copy_message(mp_worker *mw, rpc_call *call, const ProtobufCMessage *msg)
{
	const Multipoolerservice__CopyBidiExecuteRequest *r = (const void *)msg;
	mp_job *j = rpc_call_data(call);
	if (r->phase == MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__PHASE__INITIATE) {
		if (j) {
			mpx_cancel(call); /* cleans up the job; the call stays ours */
			finish_simple_error(call, RPC_INVALID_ARGUMENT, "08P01",
					    "INITIATE sent twice in one CopyBidiExecute");
			return;
		}
		mpx_start(mw, call, MPX_COPY, msg);
		return;
	}
	if (!j || !j->copy_in || j->copy_ended || !j->be) {
		if (j)
			mpx_cancel(call);
		finish_simple_error(call, RPC_INVALID_ARGUMENT, "08P01",
				    "CopyBidiExecute: %s outside COPY FROM STDIN (after READY, "
				    "before DONE or FAIL)",
				    r->phase == MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__PHASE__DATA
					    ? "DATA"
				    : r->phase == MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__PHASE__DONE
					    ? "DONE"
					    : "FAIL");
		return;
	}
	backend *be = j->be;
	pgw_wbuf *w = conn_wbuf(&be->conn);
	switch (r->phase) {
	case MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__PHASE__DATA:
		if (r->data.len) {
			pgw_copy_data d = {{r->data.data, (uint32_t)r->data.len}};
			pgw_encode_copy_data(w, &d);
		}
		break;
	case MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__PHASE__DONE:
		pgw_encode_copy_done(w);
		j->copy_ended = true;
		break;
	case MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__PHASE__FAIL: {
		/* CopyFail is a small message: keep the reason short. */
		size_t n = strlen(r->error_message);
		if (n > 1000)
			n = 1000;
		char *text = xstrndup(r->error_message, n);
		pgw_copy_fail f = {{(const uint8_t *)(text ? text : "copy failed"),
				    (uint32_t)(text ? n : 11)}};
		pgw_encode_copy_fail(w, &f);
		free(text);
		j->copy_ended = true;
		break;
	}
	default:
		break;
	}
	conn_wrote(&be->conn);
	if (conn_backed_up(&be->conn) && !j->client_paused) {
		j->client_paused = true;
		rpc_call_pause(call);
	}
}

void mpx_copy_half_close(rpc_call *call)
{
	mp_job *j = rpc_call_data(call);
	if (!j)
		return;
	j->half_closed = true;
	if (j->be && j->copy_in && !j->copy_ended) {
		pgw_copy_fail f = {{(const uint8_t *)"the client ended the stream without DONE", 40}};
		pgw_encode_copy_fail(conn_wbuf(&j->be->conn), &f);
		conn_wrote(&j->be->conn);
		j->copy_ended = true;
	}
}

void mpx_release(mp_worker *mw, rpc_call *call,
		 const Multipoolerservice__ReleaseReservedConnectionRequest *req)
{
	uint64_t rid = req->options ? req->options->reserved_connection_id : 0;
	mp_resv *r = rid ? resv_find(mw, rid) : NULL;
	if (!r) {
		finish_simple_error(call, RPC_NOT_FOUND, "08003", "reserved connection %llu not found",
				    (unsigned long long)rid);
		return;
	}
	await_end(r);
	if (r->job && (r->job->call || r->waiting)) {
		finish_simple_error(call, RPC_FAILED_PRECONDITION, "55000",
				    "reserved connection %llu is busy with another call",
				    (unsigned long long)rid);
		return;
	}
	int32_t pid = r->be->pid;
	if (r->job)
		r->release_pending = true; /* once its cancelled call is done */
	else
		resv_release(mw, r);
	Query__ReservedState rs = QUERY__RESERVED_STATE__INIT;
	Clustermetadata__ID id;
	mpx_pooler_id(mw, &id);
	rs.pooler_id = &id;
	rs.backend_process_id = (uint32_t)pid;
	Multipoolerservice__ReleaseReservedConnectionResponse resp =
		MULTIPOOLERSERVICE__RELEASE_RESERVED_CONNECTION_RESPONSE__INIT;
	resp.reserved_state = &rs;
	rpc_call_send(call, &resp.base);
	rpc_call_finish(call, RPC_OK, NULL, NULL);
}
