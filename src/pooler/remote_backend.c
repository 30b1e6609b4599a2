/*
 * The remote backend's translator: a PostgreSQL server impersonated on
 * one end of a socketpair, each frontend message turned into a
 * MultiPoolerService call, each answer into the backend messages
 * PostgreSQL would have sent. Messages are handled one at a time; while a
 * call runs the rest wait in the socket (so backpressure is the socket's).
 */
#include "pooler/remote_backend.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "mtrpc.pb-c.h"
#include "multipoolerservice.pb-c.h"
#include "net/conn.h"
#include "pooler/backend.h"
#include "pooler/remote_hold.h"
#include "rpc.h"
#include "sql/stmt.h"

#define SERVICE "/multipoolerservice.MultiPoolerService/"
#define REASON_TRANSACTION MULTIPOOLERSERVICE__RESERVATION_REASON__TRANSACTION
#define REASON_SESSION MULTIPOOLERSERVICE__RESERVATION_REASON__SESSION
#define MAX_DESCS 4096 /* statement descriptions kept per link */

/* In-band marks the gateway side writes among the frontend messages:
 * type bytes PostgreSQL never uses, then one byte (discard). */
#define MARK_BEGIN 0x01
#define MARK_END 0x02
#define MARK_DISCARD 1	/* the holder left session state behind */
#define MARK_SETTINGS 2 /* the holder's settings are applied */

/* The parameters PostgreSQL reports at login (GUC_REPORT), in the order of
 * the login query's columns. */
static const char *const login_params[] = {
	"application_name", "client_encoding",	    "DateStyle",	       "default_transaction_read_only",
	"in_hot_standby",   "integer_datetimes",    "IntervalStyle",	       "is_superuser",
	"server_encoding",  "server_version",	    "session_authorization", "standard_conforming_strings",
	"TimeZone",
};
#define NLOGIN_PARAMS (sizeof login_params / sizeof login_params[0])

typedef struct remote_field {
	char *name;
	uint32_t table_oid;
	int16_t attnum;
	uint32_t type_oid;
	int16_t typlen;
	int32_t typmod;
} remote_field;

/* What Describe said of a statement: kept per link, shared by backends. */
struct remote_desc {
	char *key; /* database NUL user NUL query NUL, then the types */
	size_t keylen;
	uint32_t *params;
	size_t nparams;
	remote_field *fields;
	size_t nfields;
	int refs; /* the cache's and the statements' */
	remote_desc *next;
};

typedef struct remote_stmt {
	char *name;
	char *query;
	uint32_t *types;
	size_t ntypes;
	remote_desc *desc;
	bool stale; /* its result type changed: it fails for good (0A000) */
	struct remote_stmt *next;
} remote_stmt;

typedef struct remote_portal {
	char *name;
	remote_stmt *stmt; /* a copy: the statement may be closed or replaced */
	int64_t *lengths;
	size_t nparams;
	uint8_t *values;
	size_t values_len;
	int32_t *pformats;
	size_t npformats;
	int32_t *rformats;
	size_t nrformats;
	bool started; /* suspended once: the next Execute continues it */
	bool bind_owed; /* BindComplete not yet sent (see on_bind) */
	bool describe_owed; /* a Describe of it answered by its Execute (see settle_binds) */
	bool done;	/* ran to completion and returns no rows: cannot run again */
	char *end_tag; /* returns rows: its tag with the count 0, for an Execute after its end */
	struct remote_portal *next;
} remote_portal;

typedef enum call_kind {
	CALL_LOGIN = 1,
	CALL_QUERY,	/* a Query */
	CALL_LOCAL,	/* an answer made here, waiting for nothing */
	CALL_PARSE,	/* Describe for a Parse */
	CALL_EXECUTE,	/* PortalStreamExecute for an Execute */
	CALL_RESET,	/* end of a hold: the connection's state undone */
	CALL_RELEASE,	/* end of a hold: ReleaseReservedConnection */
	CALL_HEALTH,
	CALL_COPY,	/* CopyBidiExecute for a COPY (Query or Execute) */
	CALL_SYNC,	/* Sync of a batch run in a transaction of ours: COMMIT/ROLLBACK */
	CALL_BINDCHECK, /* Describe of a portal: does a Bind not executed at once succeed? */
	CALL_DESCRIBE,	/* Describe of a portal open on the reservation only (a SQL cursor) */
	CALL_ABORT,	/* a statement that fails, so that the server's transaction does */
	CALL_AWAIT,	/* an idle LISTEN session's wait for notifications (see start_await) */
} call_kind;

/* A call's link to whoever started it; outlives a translator that goes
 * first (the call's on_close then finds nobody). */
typedef struct call_ctx {
	remote_backend *rb;
	remote_link *link;
	call_kind kind;
} call_ctx;

struct remote_backend {
	net_conn conn; /* first: our end of the socketpair */
	backend *be;
	remote_link *link;
	remote_backend *next, *prev;
	pgw_decoder dec;
	bool started; /* the startup packet was read */
	bool wait_link; /* the login waits for the link's first connection */
	bool ready;   /* logged in */
	bool dead;
	char *database;
	char *user;
	bool held;
	bool ending;  /* a hold's end is being processed */
	bool end_discard;
	uint64_t reserved_id;
	uint32_t server_pid; /* PostgreSQL's pid behind the reservation */
	char txn;
	bool skip; /* an extended batch failed: skip to Sync */
	/* The extended batch (Executes up to Sync) runs in a transaction the
	 * translator opened (see on_execute); its Sync ends it. */
	bool batch_txn;
	size_t cur_len; /* the length of the message being handled */
	/* The call in flight, and what it is for. */
	rpc_client_call *call;
	call_ctx *ctx;
	bool call_paused;
	/* A cancel came while the request it is for was still on its way to
	 * us: the call that request starts is cancelled once it is sent. */
	bool cancel_owed;
	bool rd_sent, tag_sent, any_tag;
	uint32_t rows;
	int32_t max_rows;
	remote_stmt *parsing;	 /* CALL_PARSE: the statement being described */
	remote_portal *running; /* CALL_EXECUTE */
	bool bind_owed;		/* CALL_EXECUTE: its BindComplete comes with the first answer */
	bool describe_owed;	/* CALL_EXECUTE: and the portal's description with it */
	/* CALL_COPY: the holder's CopyData go to the call while copy_in;
	 * copy_blocked while the call's send buffer is full. */
	bool copy_simple, copy_from, copy_in, copy_blocked;
	char copy_violation[80]; /* a message COPY FROM STDIN does not allow */
	backend_param login[NLOGIN_PARAMS];
	int nlogin;
	remote_stmt *stmts;
	remote_portal *portals;
	/* LISTEN ran on the reservation: while idle, a wait call brings its
	 * notifications (one per idle spell; await_off when the pooler does
	 * not hold such waits). */
	bool listening, await_spent, await_off;
	rpc_client_call *await;
	call_ctx *await_ctx;
	/* The hold's settings, from the gateway's replay (see absorb_settings):
	 * they ride with each call instead of running as calls of their own. */
	rhold_settings settings;
	bool hold_fresh;	     /* nothing of the hold's has been handled yet */
	bool absorb_next;	     /* the next Query is the replay to absorb */
	uint64_t settings_candidate; /* this call's replay, known good if it succeeds */
};

static void rb_process(remote_backend *rb);
static void rb_fail(remote_backend *rb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------ encoding */

static void w_str(pgw_wbuf *w, const char *s)
{
	pgw_w_cstr(w, s ? s : "", s ? strlen(s) : 0);
}

static void w_field(pgw_wbuf *w, char code, const char *v)
{
	if (!v || !*v)
		return;
	pgw_w_u8(w, (uint8_t)code);
	w_str(w, v);
}

void remote_encode_diagnostic(pgw_wbuf *w, const Query__PgDiagnostic *d, char type)
{
	char num[16];
	size_t at = pgw_w_begin(w, (uint8_t)type);
	const char *sev = d->severity && *d->severity ? d->severity : (type == 'N' ? "NOTICE" : "ERROR");
	w_field(w, 'S', sev);
	w_field(w, 'V', sev);
	w_field(w, 'C', d->code && *d->code ? d->code : "XX000");
	w_field(w, 'M', d->message && *d->message ? d->message : "unknown error");
	w_field(w, 'D', d->detail);
	w_field(w, 'H', d->hint);
	if (d->position > 0) {
		snprintf(num, sizeof num, "%d", d->position);
		w_field(w, 'P', num);
	}
	if (d->internal_position > 0) {
		snprintf(num, sizeof num, "%d", d->internal_position);
		w_field(w, 'p', num);
	}
	w_field(w, 'q', d->internal_query);
	w_field(w, 'W', d->where);
	w_field(w, 's', d->schema_name);
	w_field(w, 't', d->table_name);
	w_field(w, 'c', d->column_name);
	w_field(w, 'd', d->data_type_name);
	w_field(w, 'n', d->constraint_name);
	pgw_w_u8(w, 0);
	pgw_w_end(w, at);
}

static void encode_error(pgw_wbuf *w, const char *severity, const char *code, const char *message)
{
	Query__PgDiagnostic d = QUERY__PG_DIAGNOSTIC__INIT;
	d.severity = (char *)severity;
	d.code = (char *)code;
	d.message = (char *)message;
	remote_encode_diagnostic(w, &d, 'E');
}

static void encode_simple(pgw_wbuf *w, uint8_t type)
{
	size_t at = pgw_w_begin(w, type);
	pgw_w_end(w, at);
}

static void encode_tag(pgw_wbuf *w, const char *tag)
{
	size_t at = pgw_w_begin(w, 'C');
	w_str(w, tag);
	pgw_w_end(w, at);
}

static void encode_ready(pgw_wbuf *w, char status)
{
	size_t at = pgw_w_begin(w, 'Z');
	pgw_w_u8(w, (uint8_t)status);
	pgw_w_end(w, at);
}

static void encode_param(pgw_wbuf *w, const char *name, const char *value)
{
	size_t at = pgw_w_begin(w, 'S');
	w_str(w, name);
	w_str(w, value);
	pgw_w_end(w, at);
}

static void encode_fields(pgw_wbuf *w, Query__Field *const *f, size_t n)
{
	size_t at = pgw_w_begin(w, 'T');
	pgw_w_i16(w, (int16_t)n);
	for (size_t i = 0; i < n; i++) {
		w_str(w, f[i]->name);
		pgw_w_i32(w, (int32_t)f[i]->table_oid);
		pgw_w_i16(w, (int16_t)f[i]->table_attribute_number);
		pgw_w_i32(w, (int32_t)f[i]->data_type_oid);
		pgw_w_i16(w, (int16_t)f[i]->data_type_size);
		pgw_w_i32(w, f[i]->type_modifier);
		pgw_w_i16(w, (int16_t)f[i]->format);
	}
	pgw_w_end(w, at);
}

/*
 * One QueryResult (a chunk of one statement's result): RowDescription the
 * first time fields show (when asked: Execute sends none), the DataRows
 * as they came, CommandComplete on the chunk that carries the tag, then
 * the parameters that changed.
 */
void remote_encode_result(pgw_wbuf *w, const Query__QueryResult *r, bool row_description, bool *rd_sent,
			  bool *tag_sent)
{
	for (size_t i = 0; i < r->n_notices; i++)
		remote_encode_diagnostic(w, r->notices[i], 'N');
	if (row_description && !*rd_sent && (r->has_fields || r->n_fields)) {
		encode_fields(w, r->fields, r->n_fields);
		*rd_sent = true;
	}
	if (r->passthrough_block.len)
		pgw_w_bytes(w, r->passthrough_block.data, r->passthrough_block.len);
	if (r->command_tag && *r->command_tag) {
		encode_tag(w, r->command_tag);
		*rd_sent = false;
		*tag_sent = true;
	}
	for (size_t i = 0; i < r->n_parameter_status; i++)
		encode_param(w, r->parameter_status[i]->key, r->parameter_status[i]->value);
}

/* ------------------------------------------------------------ output */

static pgw_wbuf *out(remote_backend *rb)
{
	return conn_wbuf(&rb->conn);
}

static void flush_out(remote_backend *rb)
{
	conn_wrote(&rb->conn);
	/* The backend's client is slow: stop taking the pooler's rows. */
	if (rb->call && !rb->call_paused && conn_backed_up(&rb->conn)) {
		rb->call_paused = true;
		rpc_client_pause(rb->call);
	}
}

static void send_error(remote_backend *rb, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void send_error(remote_backend *rb, const char *code, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	encode_error(out(rb), "ERROR", code, text);
	flush_out(rb);
}

/* ------------------------------------------------------------ statements */

static void desc_unref(remote_desc *d);

static void stmt_free(remote_stmt *s)
{
	if (!s)
		return;
	desc_unref(s->desc);
	free(s->name);
	free(s->query);
	free(s->types);
	free(s);
}

static remote_stmt *stmt_new(const char *name, size_t nlen, const char *query, size_t qlen,
			     const uint32_t *types, size_t ntypes)
{
	remote_stmt *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->name = strndup(name, nlen);
	s->query = strndup(query, qlen);
	s->types = ntypes ? malloc(ntypes * sizeof *types) : NULL;
	if (!s->name || !s->query || (ntypes && !s->types)) {
		stmt_free(s);
		return NULL;
	}
	if (ntypes)
		memcpy(s->types, types, ntypes * sizeof *types);
	s->ntypes = ntypes;
	return s;
}

static remote_stmt *stmt_copy(const remote_stmt *o)
{
	remote_stmt *s = stmt_new(o->name, strlen(o->name), o->query, strlen(o->query), o->types, o->ntypes);
	if (s && o->desc) {
		s->desc = o->desc;
		s->desc->refs++;
	}
	if (s)
		s->stale = o->stale;
	return s;
}

static remote_stmt **stmt_find(remote_backend *rb, const char *name)
{
	remote_stmt **p = &rb->stmts;
	while (*p && strcmp((*p)->name, name) != 0)
		p = &(*p)->next;
	return p;
}

/* Another statement of s's name, which s shadows. */
static remote_stmt **stmt_find_after(remote_stmt *s)
{
	remote_stmt **p = &s->next;
	while (*p && strcmp((*p)->name, s->name) != 0)
		p = &(*p)->next;
	return p;
}

static void portal_free(remote_portal *p)
{
	if (!p)
		return;
	free(p->name);
	stmt_free(p->stmt);
	free(p->lengths);
	free(p->values);
	free(p->pformats);
	free(p->rformats);
	free(p->end_tag);
	free(p);
}

static remote_portal **portal_find(remote_backend *rb, const char *name)
{
	remote_portal **p = &rb->portals;
	while (*p && strcmp((*p)->name, name) != 0)
		p = &(*p)->next;
	return p;
}

static void portals_clear(remote_backend *rb)
{
	while (rb->portals) {
		remote_portal *p = rb->portals;
		rb->portals = p->next;
		portal_free(p);
	}
}

static size_t desc_key(char *buf, size_t cap, const remote_backend *rb, const remote_stmt *s)
{
	size_t need = strlen(rb->database) + strlen(rb->user) + strlen(s->query) + 3 + s->ntypes * 4;
	if (need > cap)
		return need;
	size_t n = 0;
	memcpy(buf + n, rb->database, strlen(rb->database) + 1);
	n += strlen(rb->database) + 1;
	memcpy(buf + n, rb->user, strlen(rb->user) + 1);
	n += strlen(rb->user) + 1;
	memcpy(buf + n, s->query, strlen(s->query) + 1);
	n += strlen(s->query) + 1;
	if (s->ntypes)
		memcpy(buf + n, s->types, s->ntypes * 4);
	return need;
}

static remote_desc *desc_lookup(remote_link *l, const char *key, size_t len)
{
	for (remote_desc *d = l->descs; d; d = d->next)
		if (d->keylen == len && memcmp(d->key, key, len) == 0)
			return d;
	return NULL;
}

static void desc_free(remote_desc *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nfields; i++)
		free(d->fields[i].name);
	free(d->fields);
	free(d->params);
	free(d->key);
	free(d);
}

static remote_desc *desc_store(remote_link *l, const char *key, size_t len, const Query__StatementDescription *sd)
{
	remote_desc *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	d->key = malloc(len);
	d->params = calloc(sd->n_parameters + 1, sizeof *d->params);
	d->fields = calloc(sd->n_fields + 1, sizeof *d->fields);
	if (!d->key || !d->params || !d->fields) {
		desc_free(d);
		return NULL;
	}
	memcpy(d->key, key, len);
	d->keylen = len;
	d->nparams = sd->n_parameters;
	for (size_t i = 0; i < sd->n_parameters; i++)
		d->params[i] = sd->parameters[i]->data_type_oid;
	for (size_t i = 0; i < sd->n_fields; i++) {
		const Query__Field *f = sd->fields[i];
		d->fields[i] = (remote_field){strdup(f->name ? f->name : ""), f->table_oid,
					      (int16_t)f->table_attribute_number, f->data_type_oid,
					      (int16_t)f->data_type_size, f->type_modifier};
		d->nfields = i + 1;
		if (!d->fields[i].name) {
			desc_free(d);
			return NULL;
		}
	}
	/* A bounded cache: past the limit the oldest entry (the tail) goes;
	 * statements that use it keep their reference. */
	if (l->ndescs >= MAX_DESCS) {
		remote_desc **pp = &l->descs;
		while ((*pp)->next)
			pp = &(*pp)->next;
		remote_desc *old = *pp;
		*pp = NULL;
		l->ndescs--;
		desc_unref(old);
	}
	d->refs = 1;
	d->next = l->descs;
	l->descs = d;
	l->ndescs++;
	return d;
}

static void desc_unref(remote_desc *d)
{
	if (d && --d->refs == 0)
		desc_free(d);
}

/* The cache no longer hands d out (statements holding it keep it). */
static void desc_forget(remote_link *l, remote_desc *d)
{
	for (remote_desc **pp = &l->descs; *pp; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			l->ndescs--;
			desc_unref(d);
			return;
		}
	}
}

/* A RowDescription of a statement's fields, in the given result formats
 * (Bind's rules: none = text, one = all, else one each). */
static void encode_desc_fields(pgw_wbuf *w, const remote_desc *d, const int32_t *formats, size_t nformats)
{
	if (!d->nfields) {
		encode_simple(w, 'n');
		return;
	}
	size_t at = pgw_w_begin(w, 'T');
	pgw_w_i16(w, (int16_t)d->nfields);
	for (size_t i = 0; i < d->nfields; i++) {
		const remote_field *f = &d->fields[i];
		int16_t fmt = nformats == 0 ? 0 : nformats == 1 ? (int16_t)formats[0]
					   : i < nformats  ? (int16_t)formats[i]
							   : 0;
		w_str(w, f->name);
		pgw_w_i32(w, (int32_t)f->table_oid);
		pgw_w_i16(w, f->attnum);
		pgw_w_i32(w, (int32_t)f->type_oid);
		pgw_w_i16(w, f->typlen);
		pgw_w_i32(w, f->typmod);
		pgw_w_i16(w, fmt);
	}
	pgw_w_end(w, at);
}

/* ------------------------------------------------------------ calls */

static bool start_call_open(remote_backend *rb, call_kind kind, const char *method,
			    const ProtobufCMessageDescriptor *resp, const ProtobufCMessage *req, bool keep_open);

static void on_call_message(rpc_client_call *call, const ProtobufCMessage *msg, void *arg);
static void on_call_close(rpc_client_call *call, int status, const char *message, const uint8_t *err,
			  size_t err_len, void *arg);
static void on_call_writable(rpc_client_call *call, void *arg);
static const rpc_client_ops call_ops = {on_call_message, on_call_close, on_call_writable};

/* The calls that run a statement, which a cancel stops. */
static bool call_cancellable(call_kind kind)
{
	return kind == CALL_QUERY || kind == CALL_EXECUTE || kind == CALL_PARSE || kind == CALL_BINDCHECK ||
	       kind == CALL_DESCRIBE || kind == CALL_SYNC || kind == CALL_COPY;
}

static bool start_call(remote_backend *rb, call_kind kind, const char *method,
		       const ProtobufCMessageDescriptor *resp, const ProtobufCMessage *req)
{
	return start_call_open(rb, kind, method, resp, req, false);
}

/* keep_open: the request side stays open for more messages (COPY). */
static bool start_call_open(remote_backend *rb, call_kind kind, const char *method,
			    const ProtobufCMessageDescriptor *resp, const ProtobufCMessage *req, bool keep_open)
{
	call_ctx *ctx = calloc(1, sizeof *ctx);
	if (!ctx) {
		rb_fail(rb, "out of memory");
		return false;
	}
	ctx->rb = rb;
	ctx->link = rb->link;
	ctx->kind = kind;
	rb->ctx = ctx;
	rb->rd_sent = rb->tag_sent = rb->any_tag = false;
	rb->rows = 0;
	rb->link->rpcs++;
	rb->call = rpc_client_start(rb->link->ch, method, resp, 0, &call_ops, ctx);
	rpc_client_send(rb->call, req);
	if (!keep_open)
		rpc_client_close_send(rb->call);
	conn_read_stop(&rb->conn);
	if (rb->cancel_owed && call_cancellable(kind)) {
		/* The pooler sees the request, then its cancel, and stops the
		 * statement as PostgreSQL would have. */
		rb->cancel_owed = false;
		rpc_client_cancel(rb->call);
	}
	return true;
}

static void fill_target(remote_backend *rb, Query__Target *t, Clustermetadata__ShardKey *sk)
{
	sk->database = rb->database;
	sk->table_group = "default";
	sk->shard = "0-inf";
	t->shard_key = sk;
	t->mode = QUERY__TARGET__MODE__WRITABLE;
}

/* A hold's calls reserve; calls outside a hold (the pool's own cleanup
 * after the end) run on any connection. */
static void fill_options(remote_backend *rb, Query__ExecuteOptions *o, Query__ReservationOptions *ro)
{
	o->user = rb->user;
	o->reserved_connection_id = rb->reserved_id;
	/* A reserved connection got them when it was taken. */
	if (rb->held && !rb->reserved_id)
		rhold_fill(&rb->settings, o);
	if (ro)
		ro->reasons = rb->held ? REASON_SESSION : 0;
}

/*
 * An idle hold whose server connection LISTENs: PostgreSQL would send a
 * NotificationResponse at once, so one StreamExecute with
 * await_notifications stays open on the reservation and brings each as it
 * comes. It runs beside the holder's calls: the pooler ends it when the
 * next call uses the reservation, so nothing here waits for it to end.
 */
static bool start_await(remote_backend *rb, const ProtobufCMessage *req)
{
	call_ctx *ctx = calloc(1, sizeof *ctx);
	if (!ctx)
		return false;
	ctx->rb = rb;
	ctx->link = rb->link;
	ctx->kind = CALL_AWAIT;
	rb->await_spent = true;
	rb->link->rpcs++;
	rb->await = rpc_client_start(rb->link->ch, SERVICE "StreamExecute",
				     &multipoolerservice__stream_execute_response__descriptor, 0, &call_ops, ctx);
	if (!rb->await) {
		free(ctx);
		return false;
	}
	rb->await_ctx = ctx;
	rpc_client_send(rb->await, req);
	rpc_client_close_send(rb->await);
	return true;
}

static bool call_stream_execute(remote_backend *rb, call_kind kind, const char *sql)
{
	Multipoolerservice__StreamExecuteRequest req = MULTIPOOLERSERVICE__STREAM_EXECUTE_REQUEST__INIT;
	Query__Target t = QUERY__TARGET__INIT;
	Clustermetadata__ShardKey sk = CLUSTERMETADATA__SHARD_KEY__INIT;
	Query__ExecuteOptions o = QUERY__EXECUTE_OPTIONS__INIT;
	Query__ReservationOptions ro = QUERY__RESERVATION_OPTIONS__INIT;
	fill_target(rb, &t, &sk);
	fill_options(rb, &o, &ro);
	if (kind == CALL_LOGIN || kind == CALL_RESET)
		ro.reasons = kind == CALL_RESET && rb->txn != 'I' ? 0 : ro.reasons;
	if (kind == CALL_LOGIN)
		ro.reasons = 0;
	/* A statement that leaves nothing behind runs on any connection; the
	 * pooler reserves one only if it is left in a transaction. */
	if ((kind == CALL_QUERY || kind == CALL_SYNC) && rhold_plain(sql, strlen(sql)))
		ro.reasons = 0;
	req.query = (char *)sql;
	req.target = &t;
	req.options = &o;
	req.reservation_options = &ro;
	if (kind == CALL_AWAIT) {
		req.await_notifications = true;
		return start_await(rb, &req.base);
	}
	return start_call(rb, kind, SERVICE "StreamExecute", &multipoolerservice__stream_execute_response__descriptor,
			  &req.base);
}

static bool call_describe(remote_backend *rb, remote_stmt *s)
{
	Multipoolerservice__DescribeRequest req = MULTIPOOLERSERVICE__DESCRIBE_REQUEST__INIT;
	Query__Target t = QUERY__TARGET__INIT;
	Clustermetadata__ShardKey sk = CLUSTERMETADATA__SHARD_KEY__INIT;
	Query__ExecuteOptions o = QUERY__EXECUTE_OPTIONS__INIT;
	Query__PreparedStatement ps = QUERY__PREPARED_STATEMENT__INIT;
	fill_target(rb, &t, &sk);
	fill_options(rb, &o, NULL);
	ps.name = s->name;
	ps.query = s->query;
	ps.n_param_types = s->ntypes;
	ps.param_types = s->types;
	req.target = &t;
	req.options = &o;
	req.prepared_statement = &ps;
	rb->parsing = s;
	return start_call(rb, CALL_PARSE, SERVICE "Describe", &multipoolerservice__describe_response__descriptor,
			  &req.base);
}

/*
 * The statement and portal of an Execute or a Bind check. A portal
 * already open on the reservation (suspended before, or a SQL cursor this
 * side never bound) goes by its name alone, without a statement: the
 * pooler runs or describes it as it stands instead of binding it again.
 */
static void fill_portal(const remote_portal *p, const char *name, Query__PreparedStatement *ps, Query__Portal *po)
{
	po->name = (char *)name;
	if (!p)
		return;
	ps->name = p->stmt->name;
	ps->query = p->stmt->query;
	ps->n_param_types = p->stmt->ntypes;
	ps->param_types = p->stmt->types;
	po->prepared_statement_name = p->stmt->name;
	po->n_param_lengths = p->nparams;
	po->param_lengths = p->lengths;
	po->param_values.data = p->values;
	po->param_values.len = p->values_len;
	po->n_param_formats = p->npformats;
	po->param_formats = p->pformats;
	po->n_result_formats = p->nrformats;
	po->result_formats = p->rformats;
}

/* begin: the call opens a transaction for the batch (see on_execute).
 * p is NULL for a portal this side does not know (see fill_portal). */
static bool call_portal_execute(remote_backend *rb, remote_portal *p, const char *name, int32_t max_rows,
				bool begin)
{
	Multipoolerservice__PortalStreamExecuteRequest req = MULTIPOOLERSERVICE__PORTAL_STREAM_EXECUTE_REQUEST__INIT;
	Query__Target t = QUERY__TARGET__INIT;
	Clustermetadata__ShardKey sk = CLUSTERMETADATA__SHARD_KEY__INIT;
	Query__ExecuteOptions o = QUERY__EXECUTE_OPTIONS__INIT;
	Query__ReservationOptions ro = QUERY__RESERVATION_OPTIONS__INIT;
	Query__PreparedStatement ps = QUERY__PREPARED_STATEMENT__INIT;
	Query__Portal po = QUERY__PORTAL__INIT;
	Query__PortalOptions pop = QUERY__PORTAL_OPTIONS__INIT;
	fill_target(rb, &t, &sk);
	fill_options(rb, &o, &ro);
	/* The portal's description is the pooler's sign that Bind succeeded:
	 * BindComplete (and a Describe of the portal put off until now) is
	 * owed until it (or anything else) comes. */
	rb->bind_owed = p && p->bind_owed;
	rb->describe_owed = p && p->describe_owed;
	if (p)
		p->bind_owed = p->describe_owed = false;
	pop.include_describe = rb->bind_owed || rb->describe_owed;
	if (max_rows <= 0 && p && !p->started && rhold_plain(p->stmt->query, strlen(p->stmt->query)))
		ro.reasons = 0; /* as in call_stream_execute */
	if (begin) {
		ro.reasons |= REASON_TRANSACTION;
		rb->batch_txn = true;
		rb->txn = 'T';
	}
	o.max_rows = max_rows > 0 ? (uint64_t)max_rows : 0;
	fill_portal(p && !p->started ? p : NULL, name, &ps, &po);
	req.target = &t;
	req.options = &o;
	req.reservation_options = &ro;
	req.prepared_statement = p && !p->started ? &ps : NULL;
	req.portal = &po;
	req.portal_options = &pop;
	rb->running = p;
	rb->max_rows = max_rows;
	return start_call(rb, CALL_EXECUTE, SERVICE "PortalStreamExecute",
			  &multipoolerservice__portal_stream_execute_response__descriptor, &req.base);
}

/* A Describe of a portal: p's Bind checked (bound, described and closed
 * again by the pooler), or, p NULL, the reservation's own portal name. */
static bool call_describe_portal(remote_backend *rb, remote_portal *p, const char *name)
{
	Multipoolerservice__DescribeRequest req = MULTIPOOLERSERVICE__DESCRIBE_REQUEST__INIT;
	Query__Target t = QUERY__TARGET__INIT;
	Clustermetadata__ShardKey sk = CLUSTERMETADATA__SHARD_KEY__INIT;
	Query__ExecuteOptions o = QUERY__EXECUTE_OPTIONS__INIT;
	Query__PreparedStatement ps = QUERY__PREPARED_STATEMENT__INIT;
	Query__Portal po = QUERY__PORTAL__INIT;
	fill_target(rb, &t, &sk);
	fill_options(rb, &o, NULL);
	fill_portal(p, name, &ps, &po);
	req.target = &t;
	req.options = &o;
	req.prepared_statement = p ? &ps : NULL;
	req.portal = &po;
	rb->running = p;
	return start_call(rb, p ? CALL_BINDCHECK : CALL_DESCRIBE, SERVICE "Describe",
			  &multipoolerservice__describe_response__descriptor, &req.base);
}

static bool call_release(remote_backend *rb)
{
	Multipoolerservice__ReleaseReservedConnectionRequest req =
		MULTIPOOLERSERVICE__RELEASE_RESERVED_CONNECTION_REQUEST__INIT;
	Query__Target t = QUERY__TARGET__INIT;
	Clustermetadata__ShardKey sk = CLUSTERMETADATA__SHARD_KEY__INIT;
	Query__ExecuteOptions o = QUERY__EXECUTE_OPTIONS__INIT;
	fill_target(rb, &t, &sk);
	fill_options(rb, &o, NULL);
	req.target = &t;
	req.options = &o;
	return start_call(rb, CALL_RELEASE, SERVICE "ReleaseReservedConnection",
			  &multipoolerservice__release_reserved_connection_response__descriptor, &req.base);
}

/* The session is going: its wait is dropped unheard. */
static void stop_await(remote_backend *rb)
{
	if (!rb->await)
		return;
	rb->await_ctx->rb = NULL;
	rpc_client_cancel(rb->await);
	rb->await = NULL;
	rb->await_ctx = NULL;
}

/* A COPY: the statement starts the call, the CopyData follow on it. The
 * request has no reservation options: a COPY outside a reservation runs on
 * any connection and gives it back at its end. */
static bool call_copy(remote_backend *rb, const char *sql, bool simple, bool from)
{
	Multipoolerservice__CopyBidiExecuteRequest req = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__INIT;
	Query__Target t = QUERY__TARGET__INIT;
	Clustermetadata__ShardKey sk = CLUSTERMETADATA__SHARD_KEY__INIT;
	Query__ExecuteOptions o = QUERY__EXECUTE_OPTIONS__INIT;
	fill_target(rb, &t, &sk);
	fill_options(rb, &o, NULL);
	req.phase = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__PHASE__INITIATE;
	req.query = (char *)sql;
	req.target = &t;
	req.options = &o;
	rb->copy_simple = simple;
	rb->copy_from = from;
	rb->copy_in = rb->copy_blocked = false;
	return start_call_open(rb, CALL_COPY, SERVICE "CopyBidiExecute",
			       &multipoolerservice__copy_bidi_execute_response__descriptor, &req.base, true);
}

/* One message of the holder's COPY FROM STDIN to the call. */
static void copy_send(remote_backend *rb, Multipoolerservice__CopyBidiExecuteRequest__Phase phase,
		      const uint8_t *data, size_t len, const char *error)
{
	Multipoolerservice__CopyBidiExecuteRequest req = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__INIT;
	req.phase = phase;
	req.data.data = (uint8_t *)data;
	req.data.len = len;
	req.error_message = (char *)(error ? error : "");
	if (!rpc_client_send(rb->call, &req.base))
		rb->copy_blocked = true; /* reading waits for on_writable */
	if (phase != MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__PHASE__DATA) {
		rpc_client_close_send(rb->call);
		rb->copy_in = false;
	}
}

static void on_copy_response(remote_backend *rb, const Multipoolerservice__CopyBidiExecuteResponse *r)
{
	pgw_wbuf *w = out(rb);
	switch (r->phase) {
	case MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_RESPONSE__PHASE__READY: {
		/* CopyInResponse or CopyOutResponse: the same shape. */
		size_t at = pgw_w_begin(w, rb->copy_from ? 'G' : 'H');
		pgw_w_u8(w, (uint8_t)r->format);
		pgw_w_i16(w, (int16_t)r->n_column_formats);
		for (size_t i = 0; i < r->n_column_formats; i++)
			pgw_w_i16(w, (int16_t)r->column_formats[i]);
		pgw_w_end(w, at);
		rb->copy_in = rb->copy_from;
		break;
	}
	case MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_RESPONSE__PHASE__DATA: {
		size_t at = pgw_w_begin(w, 'd');
		pgw_w_bytes(w, r->data.data, r->data.len);
		pgw_w_end(w, at);
		break;
	}
	case MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_RESPONSE__PHASE__RESULT:
		if (!rb->copy_from)
			encode_simple(w, 'c'); /* CopyDone ends the rows sent */
		if (r->result)
			remote_encode_result(w, r->result, false, &rb->rd_sent, &rb->tag_sent);
		rb->copy_in = false;
		break;
	default:
		/* ERROR: the call's status carries the diagnostic. Whatever
		 * CopyData still come are dropped, as PostgreSQL does. */
		rb->copy_in = false;
		break;
	}
	flush_out(rb);
	if (rb->copy_in && !rb->copy_blocked)
		rb_process(rb);
}

static void note_reserved(remote_backend *rb, const Query__ReservedState *rs)
{
	if (!rs)
		return;
	rb->reserved_id = rs->reserved_connection_id;
	if (rs->backend_process_id)
		rb->server_pid = rs->backend_process_id;
	rb->txn = rs->reserved_connection_id && (rs->reservation_reasons & REASON_TRANSACTION) ? 'T' : 'I';
}

/* A login answer: the DataRow of the parameters query. */
static void note_login_row(remote_backend *rb, const uint8_t *p, size_t len)
{
	if (len < 7 || p[0] != 'D')
		return;
	const uint8_t *end = p + len;
	uint16_t n = (uint16_t)(p[5] << 8 | p[6]);
	p += 7;
	for (uint16_t i = 0; i < n && i < NLOGIN_PARAMS; i++) {
		if (end - p < 4)
			return;
		int32_t vl = (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
		p += 4;
		if (vl < 0)
			continue;
		if (end - p < vl)
			return;
		char *v = strndup((const char *)p, (size_t)vl);
		if (v) {
			backend_params_set(rb->login, &rb->nlogin, login_params[i], v);
			free(v);
		}
		p += vl;
	}
}

/* A row-returning portal's last tag: an Execute after its end answers
 * with it, the count made 0 ("SELECT 0"), as PostgreSQL does. */
static void note_end_tag(remote_portal *p, const char *tag)
{
	size_t n = strlen(tag), i = n;
	while (i > 0 && isdigit((unsigned char)tag[i - 1]))
		i--;
	bool counted = i < n && i > 0 && tag[i - 1] == ' ';
	char *t = malloc((counted ? i + 1 : n) + 1);
	if (!t)
		return;
	memcpy(t, tag, counted ? i : n);
	if (counted)
		t[i++] = '0';
	t[counted ? i : n] = 0;
	free(p->end_tag);
	p->end_tag = t;
}

static void encode_notification(remote_backend *rb, pgw_wbuf *w, const Query__PgNotification *n)
{
	size_t at = pgw_w_begin(w, 'A');
	/* Our own session's notifications carry our pid, as the gateway
	 * expects of its server connection. */
	pgw_w_i32(w, (uint32_t)n->pid == rb->server_pid ? rb->be->pid : n->pid);
	w_str(w, n->channel);
	w_str(w, n->payload);
	pgw_w_end(w, at);
}

static void handle_payload(remote_backend *rb, const Query__QueryResultPayload *pl)
{
	if (!pl)
		return;
	pgw_wbuf *w = out(rb);
	if (rb->bind_owed) {
		encode_simple(w, '2'); /* BindComplete */
		rb->bind_owed = false;
	}
	switch (pl->payload_case) {
	case QUERY__QUERY_RESULT_PAYLOAD__PAYLOAD_RESULT: {
		const Query__QueryResult *r = pl->result;
		if (rb->describe_owed) {
			/* The first result answers include_describe: the fields,
			 * or none (NoData). */
			if (r->has_fields || r->n_fields)
				encode_fields(w, r->fields, r->n_fields);
			else
				encode_simple(w, 'n');
			rb->describe_owed = false;
		}
		if (rb->ctx->kind == CALL_LOGIN) {
			note_login_row(rb, r->passthrough_block.data, r->passthrough_block.len);
			for (size_t i = 0; i < r->n_parameter_status; i++)
				backend_params_set(rb->login, &rb->nlogin, r->parameter_status[i]->key,
						   r->parameter_status[i]->value);
			return;
		}
		if (rb->ctx->kind == CALL_SYNC) {
			/* Our COMMIT's tag is not the client's; its notices are. */
			for (size_t i = 0; i < r->n_notices; i++)
				remote_encode_diagnostic(w, r->notices[i], 'N');
			for (size_t i = 0; i < r->n_parameter_status; i++)
				encode_param(w, r->parameter_status[i]->key, r->parameter_status[i]->value);
			break;
		}
		remote_encode_result(w, r, rb->ctx->kind == CALL_QUERY, &rb->rd_sent, &rb->tag_sent);
		if (rb->ctx->kind == CALL_EXECUTE && rb->running && rb->running->stmt->desc &&
		    rb->running->stmt->desc->nfields && r->command_tag && *r->command_tag)
			note_end_tag(rb->running, r->command_tag);
		rb->rows += r->passthrough_row_count;
		if (rb->tag_sent)
			rb->any_tag = true;
		break;
	}
	case QUERY__QUERY_RESULT_PAYLOAD__PAYLOAD_DIAGNOSTIC:
		remote_encode_diagnostic(w, pl->diagnostic, 'N');
		break;
	case QUERY__QUERY_RESULT_PAYLOAD__PAYLOAD_NOTIFICATION:
		encode_notification(rb, w, pl->notification);
		break;
	default:
		break;
	}
	flush_out(rb);
}

static void on_call_message(rpc_client_call *call, const ProtobufCMessage *msg, void *arg)
{
	(void)call;
	call_ctx *ctx = arg;
	remote_backend *rb = ctx->rb;
	if (!rb)
		return;
	switch (ctx->kind) {
	case CALL_LOGIN:
	case CALL_QUERY:
	case CALL_SYNC:
	case CALL_RESET: {
		const Multipoolerservice__StreamExecuteResponse *r = (const void *)msg;
		if (ctx->kind != CALL_RESET)
			handle_payload(rb, r->result);
		note_reserved(rb, r->reserved_state);
		break;
	}
	case CALL_EXECUTE: {
		const Multipoolerservice__PortalStreamExecuteResponse *r = (const void *)msg;
		handle_payload(rb, r->result);
		note_reserved(rb, r->reserved_state);
		break;
	}
	case CALL_PARSE: {
		const Multipoolerservice__DescribeResponse *r = (const void *)msg;
		remote_stmt *s = rb->parsing;
		if (!s || !r->description || s->desc)
			break;
		char small[1024];
		size_t need = desc_key(small, sizeof small, rb, s);
		char *key = need <= sizeof small ? small : malloc(need);
		if (!key)
			break;
		if (key != small)
			desc_key(key, need, rb, s);
		s->desc = desc_lookup(rb->link, key, need);
		if (!s->desc)
			s->desc = desc_store(rb->link, key, need, r->description);
		if (s->desc)
			s->desc->refs++;
		if (key != small)
			free(key);
		break;
	}
	case CALL_DESCRIBE: {
		const Multipoolerservice__DescribeResponse *r = (const void *)msg;
		if (!r->description)
			break;
		if (r->description->n_fields)
			encode_fields(out(rb), r->description->fields, r->description->n_fields);
		else
			encode_simple(out(rb), 'n');
		flush_out(rb);
		break;
	}
	case CALL_RELEASE:
		break;
	case CALL_COPY:
		on_copy_response(rb, (const void *)msg);
		break;
	case CALL_AWAIT: {
		const Query__QueryResultPayload *pl = ((const Multipoolerservice__StreamExecuteResponse *)msg)->result;
		if (pl && pl->payload_case == QUERY__QUERY_RESULT_PAYLOAD__PAYLOAD_NOTIFICATION) {
			encode_notification(rb, out(rb), pl->notification);
			flush_out(rb);
		} else if (pl && pl->payload_case == QUERY__QUERY_RESULT_PAYLOAD__PAYLOAD_RESULT) {
			rb->await_off = true; /* it ran the empty query: it holds no waits */
		}
		break;
	}
	default:
		break;
	}
}

static void on_call_writable(rpc_client_call *call, void *arg)
{
	(void)call;
	call_ctx *ctx = arg;
	remote_backend *rb = ctx->rb;
	if (rb && rb->copy_blocked) {
		rb->copy_blocked = false;
		rb_process(rb);
	}
}

/* The error a failed call carries: the server's own words when it has
 * them. Returns false when the pooler itself failed (no diagnostic). */
static bool encode_call_error(remote_backend *rb, int status, const char *message, const uint8_t *err,
			      size_t err_len)
{
	Mtrpc__RPCError *e = err ? mtrpc__rpcerror__unpack(NULL, err_len, err) : NULL;
	bool ok = false;
	if (e && e->pg_diagnostic) {
		remote_encode_diagnostic(out(rb), e->pg_diagnostic, 'E');
		ok = true;
	} else if (status == RPC_CANCELLED) {
		encode_error(out(rb), "ERROR", "57014", "canceling statement due to user request");
		ok = true;
	} else if (status == RPC_RESOURCE_EXHAUSTED) {
		/* A message over what a side of the RPC takes (or memory ran
		 * out): that statement fails, the session goes on. */
		char text[400];
		snprintf(text, sizeof text, "the pooler could not carry the statement: %s",
			 e && e->message && *e->message ? e->message : message ? message : "");
		encode_error(out(rb), "ERROR", strstr(text, "larger than") ? "54000" : "53200", text);
		ok = true;
	} else if (status == RPC_NOT_FOUND || status == RPC_INVALID_ARGUMENT ||
		   status == RPC_FAILED_PRECONDITION || status == RPC_UNIMPLEMENTED) {
		char text[400];
		snprintf(text, sizeof text, "the pooler refused the request: %s",
			 e && e->message && *e->message ? e->message : message ? message : "");
		encode_error(out(rb), "ERROR", status == RPC_UNIMPLEMENTED ? "0A000" : "08P01", text);
		/* A reservation it does not know is gone with whatever it held. */
		ok = status != RPC_NOT_FOUND;
	}
	if (e)
		mtrpc__rpcerror__free_unpacked(e, NULL);
	return ok;
}

/* CALL_ABORT's statement failed on the server, as it is meant to. */
static bool failed_as_meant(const uint8_t *err, size_t err_len)
{
	Mtrpc__RPCError *e = err ? mtrpc__rpcerror__unpack(NULL, err_len, err) : NULL;
	bool ok = e && e->pg_diagnostic;
	if (e)
		mtrpc__rpcerror__free_unpacked(e, NULL);
	return ok;
}

/*
 * "cached plan must not change result type": the statement's result
 * columns changed (ALTER TABLE) since it was described. As in PostgreSQL
 * the client's statement fails this way for good, while the same query
 * prepared again is described afresh: the description leaves the cache.
 */
static void note_stale_plan(remote_backend *rb, remote_portal *p, const uint8_t *err, size_t err_len)
{
	Mtrpc__RPCError *e = err ? mtrpc__rpcerror__unpack(NULL, err_len, err) : NULL;
	bool stale = e && e->pg_diagnostic && e->pg_diagnostic->code && e->pg_diagnostic->message &&
		     strcmp(e->pg_diagnostic->code, "0A000") == 0 &&
		     strcmp(e->pg_diagnostic->message, "cached plan must not change result type") == 0;
	if (e)
		mtrpc__rpcerror__free_unpacked(e, NULL);
	if (!stale || !p->stmt->desc)
		return;
	remote_desc *d = p->stmt->desc;
	p->stmt->stale = true;
	for (remote_stmt *s = rb->stmts; s; s = s->next)
		if (s->desc == d)
			s->stale = true;
	desc_forget(rb->link, d);
}

/* A Parse that failed makes no statement (an unnamed one it replaced is
 * gone all the same, as in PostgreSQL). */
static void drop_parsing(remote_backend *rb)
{
	remote_stmt **sp = &rb->stmts;
	while (*sp && *sp != rb->parsing)
		sp = &(*sp)->next;
	if (*sp) {
		*sp = rb->parsing->next;
		stmt_free(rb->parsing);
	}
	rb->parsing = NULL;
}

/* A Parse the server took: PostgreSQL's answer, or its error for a name
 * already taken, which in a failed transaction is known only now. */
static void on_parse_done(remote_backend *rb)
{
	remote_stmt *s = rb->parsing;
	if (!s || !s->desc) {
		send_error(rb, "XX000", "the pooler described no statement");
		rb->parsing = NULL;
		return;
	}
	if (*s->name && *stmt_find_after(s)) {
		send_error(rb, "42P05", "prepared statement \"%s\" already exists", s->name);
		drop_parsing(rb);
		rb->skip = true;
		return;
	}
	encode_simple(out(rb), '1'); /* ParseComplete */
	rb->parsing = NULL;
}

static void finish_login(remote_backend *rb)
{
	pgw_wbuf *w = out(rb);
	pgw_w_u8(w, 'R');
	pgw_w_i32(w, 8);
	pgw_w_i32(w, 0);
	for (int i = 0; i < rb->nlogin; i++)
		encode_param(w, rb->login[i].name, rb->login[i].value);
	/* Cancel goes through the RPC, never through this key. */
	size_t at = pgw_w_begin(w, 'K');
	pgw_w_i32(w, (int32_t)(rb->be->id & 0x7fffffff));
	pgw_w_i32(w, 0);
	pgw_w_end(w, at);
	encode_ready(w, 'I');
	flush_out(rb);
	rb->ready = true;
}

static void on_call_close(rpc_client_call *call, int status, const char *message, const uint8_t *err,
			  size_t err_len, void *arg)
{
	call_ctx *ctx = arg;
	remote_backend *rb = ctx->rb;
	call_kind kind = ctx->kind;
	free(ctx);
	if (!rb || kind == CALL_HEALTH)
		return;
	if (kind == CALL_AWAIT) {
		/* Ended by the pooler: a call of ours took the reservation, or
		 * it is gone. A newer wait may already be open. */
		if (call == rb->await) {
			rb->await = NULL;
			rb->await_ctx = NULL;
			if (!rb->call)
				rb_process(rb);
		}
		return;
	}
	rb->await_spent = false; /* the next idle spell may wait again */
	uint64_t candidate = rb->settings_candidate;
	rb->settings_candidate = 0;
	rb->call = NULL;
	rb->ctx = NULL;
	rb->call_paused = false;
	rb->copy_in = rb->copy_blocked = false;
	bool simple = kind == CALL_QUERY || (kind == CALL_COPY && rb->copy_simple);
	pgw_wbuf *w = out(rb);
	/* Nothing came before the end: a failure was Bind's (PostgreSQL then
	 * sends no BindComplete); a success still owes it. */
	if (rb->bind_owed && status == RPC_OK)
		encode_simple(w, '2');
	rb->bind_owed = rb->describe_owed = false;
	if (kind == CALL_COPY && rb->copy_violation[0]) {
		/* PostgreSQL's own error names the violation and where the
		 * COPY stood; the server's answer to our CopyFail has the
		 * latter (its context), so it is kept. */
		Mtrpc__RPCError *e = err ? mtrpc__rpcerror__unpack(NULL, err_len, err) : NULL;
		Query__PgDiagnostic d = QUERY__PG_DIAGNOSTIC__INIT;
		d.severity = "ERROR";
		d.code = "08P01";
		d.message = rb->copy_violation;
		if (e && e->pg_diagnostic)
			d.where = e->pg_diagnostic->where;
		remote_encode_diagnostic(w, &d, 'E');
		if (e)
			mtrpc__rpcerror__free_unpacked(e, NULL);
		rb_fail(rb, "terminating connection because protocol synchronization was lost");
		return;
	}
	if (status != RPC_OK) {
		if (kind == CALL_RELEASE || kind == CALL_RESET) {
			/* The reservation is lost with whatever it held; the pooler
			 * rolls back what a lost reservation had open. */
			log_warning("remote pooler %s: ending a hold failed: %s", rb->link->address,
				    message ? message : "");
			bool known = status != RPC_UNAVAILABLE && status != RPC_NOT_FOUND;
			if (kind == CALL_RESET && known && rb->reserved_id) {
				call_release(rb);
				return;
			}
			rb->reserved_id = 0;
			rb->txn = 'I';
			rb_process(rb);
			return;
		}
		if ((kind == CALL_EXECUTE || kind == CALL_BINDCHECK) && rb->running)
			note_stale_plan(rb, rb->running, err, err_len);
		if (kind == CALL_BINDCHECK && rb->running) {
			/* A Bind that fails makes no portal. */
			remote_portal **pp = &rb->portals;
			while (*pp && *pp != rb->running)
				pp = &(*pp)->next;
			if (*pp)
				*pp = rb->running->next;
			portal_free(rb->running);
		}
		rb->running = NULL;
		if (kind == CALL_PARSE)
			drop_parsing(rb);
		if (kind == CALL_ABORT && failed_as_meant(err, err_len)) {
			rb->txn = 'E';
			rb_process(rb);
			return;
		}
		bool known = encode_call_error(rb, status, message, err, err_len);
		if (!known) {
			rb_fail(rb, "lost the connection to the pooler at %s: %s", rb->link->address,
				message && *message ? message : "unavailable");
			return;
		}
		if (kind == CALL_LOGIN) {
			flush_out(rb);
			rb->dead = true; /* the backend's login fails on the error */
			return;
		}
		if (kind == CALL_SYNC) {
			/* A failed COMMIT (a deferred constraint) ends the
			 * transaction all the same. */
			rb->txn = 'I';
			portals_clear(rb);
			encode_ready(w, 'I');
			flush_out(rb);
			rb_process(rb);
			return;
		}
		if (rb->txn == 'T')
			rb->txn = 'E';
		if (simple)
			encode_ready(w, rb->txn);
		else
			rb->skip = true; /* to the Sync, as PostgreSQL does */
		flush_out(rb);
		rb_process(rb);
		return;
	}
	switch (kind) {
	case CALL_LOGIN:
		finish_login(rb);
		break;
	case CALL_QUERY:
		if (candidate)
			rhold_known_add(&rb->link->known_settings, candidate);
		if (!rb->any_tag && !rb->rd_sent)
			encode_simple(w, 'I'); /* EmptyQueryResponse */
		if (rb->txn == 'I')
			portals_clear(rb); /* a COMMIT or ROLLBACK ended their transaction */
		encode_ready(w, rb->txn);
		break;
	case CALL_EXECUTE:
		if (!rb->tag_sent) {
			if (rb->max_rows > 0 && rb->rows >= (uint32_t)rb->max_rows) {
				encode_simple(w, 's'); /* PortalSuspended */
				if (rb->running)
					rb->running->started = true;
			} else {
				encode_simple(w, 'I');
			}
		} else if (rb->running && rb->running->stmt->desc && !rb->running->stmt->desc->nfields) {
			/* PostgreSQL marks such a portal done; a row-returning
			 * one may be fetched again (and gives no more rows). */
			rb->running->done = true;
		} else if (rb->running && rb->running->end_tag) {
			rb->running->done = true;
		}
		rb->running = NULL;
		break;
	case CALL_PARSE:
		on_parse_done(rb);
		break;
	case CALL_COPY:
		if (simple)
			encode_ready(w, rb->txn);
		break;
	case CALL_BINDCHECK:
		encode_simple(w, '2'); /* BindComplete */
		rb->running = NULL;
		break;
	case CALL_ABORT:
		log_warning("remote pooler %s: a statement meant to fail succeeded", rb->link->address);
		rb->txn = 'E';
		break;
	case CALL_SYNC:
		if (rb->txn == 'I')
			portals_clear(rb);
		encode_ready(w, rb->txn);
		break;
	case CALL_RESET:
		if (rb->reserved_id) {
			call_release(rb);
			return;
		}
		break;
	case CALL_RELEASE:
		rb->reserved_id = 0;
		rb->txn = 'I';
		break;
	default:
		break;
	}
	flush_out(rb);
	rb_process(rb);
}

/* ------------------------------------------------------------ messages */

static void answer_local_query(remote_backend *rb, const char *sql, size_t len)
{
	/* Outside a hold only the pool's own cleanup speaks; the reservation
	 * it would clean is already released. */
	char tag[32];
	size_t n = len < sizeof tag - 1 ? len : sizeof tag - 1;
	memcpy(tag, sql, n);
	tag[n] = 0;
	if (strncmp(tag, "DISCARD ALL", 11) == 0) {
		while (rb->stmts) {
			remote_stmt *s = rb->stmts;
			rb->stmts = s->next;
			stmt_free(s);
		}
		portals_clear(rb);
	}
	encode_tag(out(rb), tag);
	encode_ready(out(rb), 'I');
	flush_out(rb);
}

/* Does the query start with COPY (after blanks and comments)? */
static bool is_copy(const char *q, size_t len)
{
	size_t i = 0;
	for (;;) {
		while (i < len && (q[i] == ' ' || q[i] == '\t' || q[i] == '\n' || q[i] == '\r' || q[i] == '('))
			i++;
		if (i + 1 < len && q[i] == '-' && q[i + 1] == '-') {
			while (i < len && q[i] != '\n')
				i++;
			continue;
		}
		if (i + 1 < len && q[i] == '/' && q[i + 1] == '*') {
			i += 2;
			while (i + 1 < len && !(q[i] == '*' && q[i + 1] == '/'))
				i++;
			i += 2;
			continue;
		}
		break;
	}
	return len - i >= 4 && strncasecmp(q + i, "copy", 4) == 0 &&
	       (len - i == 4 || !((q[i + 4] | 0x20) >= 'a' && (q[i + 4] | 0x20) <= 'z'));
}

/* Is a COPY statement's direction FROM (STDIN)? The first FROM or TO
 * keyword outside parentheses, quotes and comments says; "COPY (query)"
 * is always TO. The pooler's READY does not tell the direction. */
static bool copy_is_from(const char *q)
{
	int depth = 0;
	for (const char *p = q; *p;) {
		if (*p == '\'' || *p == '"') {
			char end = *p++;
			while (*p && !(*p == end && p[1] != end))
				p += *p == end ? 2 : 1;
			if (*p)
				p++;
		} else if (p[0] == '-' && p[1] == '-') {
			while (*p && *p != '\n')
				p++;
		} else if (p[0] == '/' && p[1] == '*') {
			const char *e = strstr(p + 2, "*/");
			p = e ? e + 2 : p + strlen(p);
		} else if (*p == '(') {
			depth++;
			p++;
		} else if (*p == ')') {
			depth--;
			p++;
		} else if (isalpha((unsigned char)*p) || *p == '_') {
			const char *w = p;
			while (isalnum((unsigned char)*p) || *p == '_' || *p == '$')
				p++;
			size_t n = (size_t)(p - w);
			if (depth == 0 && n == 4 && strncasecmp(w, "from", 4) == 0)
				return true;
			if (depth == 0 && n == 2 && strncasecmp(w, "to", 2) == 0)
				return false;
		} else {
			p++;
		}
	}
	return false;
}

/* ------------------------------------------------------------ failed transactions */

/*
 * Errors answered here (a statement or portal that does not exist, a
 * wrong parameter count) fail the transaction as PostgreSQL's own do: the
 * server's transaction is failed with a statement that raises, so that
 * what follows is refused there, COMMIT becomes ROLLBACK and ROLLBACK TO
 * SAVEPOINT recovers, all as PostgreSQL decides. Its error is not the
 * client's: the client already has the one answered here.
 */
#define ABORT_SQL "SELECT 'transaction failed on an error in the extended query protocol'::int"

static bool abort_server_txn(remote_backend *rb)
{
	if (rb->txn != 'T' || !rb->reserved_id)
		return false;
	rb->txn = 'E';
	return call_stream_execute(rb, CALL_ABORT, ABORT_SQL);
}

/* PostgreSQL's IsTransactionExitStmt: what a failed transaction still
 * runs (COMMIT, ROLLBACK, ROLLBACK TO SAVEPOINT, PREPARE TRANSACTION). */
static bool ends_failed_txn(const char *query)
{
	stmt_info si;
	stmt_classify(query, strlen(query), &si, 1);
	switch (si.kind) {
	case STMT_COMMIT:
	case STMT_ROLLBACK:
	case STMT_PREPARE_TXN:
		return true;
	case STMT_SAVEPOINT_OP:
		return si.len >= 8 && strncasecmp(si.start, "rollback", 8) == 0;
	default:
		return false;
	}
}

/* In a failed transaction: PostgreSQL's refusal, where it gives it. */
static bool refuse_in_failed_txn(remote_backend *rb)
{
	if (rb->txn != 'E')
		return false;
	send_error(rb, "25P02", "current transaction is aborted, commands ignored until end of transaction block");
	rb->skip = true;
	return true;
}

/* Does the session LISTEN after these statements? UNLISTEN * and
 * DISCARD ALL stop it; UNLISTEN of one channel may leave others, so the
 * wait stays (it costs one idle call, never a notification). */
static void note_listen(remote_backend *rb, const stmt_info *si, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (si[i].kind == STMT_LISTEN)
			rb->listening = true;
		else if ((si[i].kind == STMT_UNLISTEN && (si[i].flags & STMT_F_ALL)) ||
			 si[i].kind == STMT_DISCARD_ALL)
			rb->listening = false;
	}
}

/* The Query after the one being handled, if the socket already holds it. */
static bool next_query(remote_backend *rb, const char **sql, size_t *len)
{
	const uint8_t *d = pgw_rbuf_data(&rb->conn.in);
	size_t have = pgw_rbuf_len(&rb->conn.in), at = rb->cur_len;
	if (have - at < 6 || d[at] != 'Q')
		return false;
	uint32_t n = (uint32_t)d[at + 1] << 24 | (uint32_t)d[at + 2] << 16 | (uint32_t)d[at + 3] << 8 | d[at + 4];
	if (n < 5 || have - at - 1 < n || d[at + n] != 0)
		return false;
	*sql = (const char *)d + at + 5;
	*len = n - 5;
	return true;
}

/*
 * The gateway opens a hold by replaying the session's settings: "RESET
 * ALL;", then a Query of set_config calls. When the server is known to
 * accept that replay (it ran once through this link for the same
 * database and user), both are answered here and the settings go with
 * each call of the hold as ExecuteOptions.session_settings, which the
 * pooler applies to whichever connection serves the call (a reset
 * included). Only the gateway's own replay is absorbed: it swallows the
 * answers but for errors and the reported parameters, which come as the
 * server would send them.
 */
static bool absorb_settings(remote_backend *rb, const char *sql, size_t len)
{
	bool fresh = rb->hold_fresh, absorb = rb->absorb_next;
	rb->hold_fresh = rb->absorb_next = false;
	if (absorb) {
		if (rhold_parse(&rb->settings, sql, len) != 0)
			return false;
		pgw_wbuf *w = out(rb);
		for (size_t i = 0; i < rb->settings.n; i++)
			if (rhold_reported(rb->settings.names[i]))
				encode_param(w, rb->settings.names[i], rb->settings.values[i]);
		for (size_t i = 0; i < rb->settings.n; i++)
			encode_tag(w, "SELECT 1");
		encode_ready(w, 'I');
		flush_out(rb);
		return true;
	}
	const char *next;
	size_t next_len;
	if (!fresh || rb->reserved_id || rb->txn != 'I' || !rhold_is_reset(sql, len) ||
	    !next_query(rb, &next, &next_len) || rhold_parse(NULL, next, next_len) != 0 ||
	    !rhold_known_has(&rb->link->known_settings, rhold_key(rb->database, rb->user, next, next_len)))
		return false;
	rb->absorb_next = true;
	encode_tag(out(rb), "RESET");
	encode_ready(out(rb), 'I');
	flush_out(rb);
	return true;
}

static void on_query(remote_backend *rb, const pgw_query *q)
{
	const char *sql = (const char *)q->query.ptr;
	if (!rb->held) {
		answer_local_query(rb, sql, q->query.len);
		return;
	}
	if (absorb_settings(rb, sql, q->query.len))
		return;
	if (rhold_parse(NULL, sql, q->query.len) == 0)
		rb->settings_candidate = rhold_key(rb->database, rb->user, sql, q->query.len);
	/* An unnamed portal does not outlive a simple Query. */
	remote_portal **pp = portal_find(rb, "");
	if (*pp) {
		remote_portal *p = *pp;
		*pp = p->next;
		portal_free(p);
	}
	if (is_copy(sql, q->query.len)) {
		call_copy(rb, sql, true, copy_is_from(sql));
		return;
	}
	stmt_info si[16];
	size_t n = stmt_classify(sql, q->query.len, si, 16);
	note_listen(rb, si, n < 16 ? n : 16);
	if (n > 16)
		rb->listening = true; /* not all seen: better an idle wait than a lost notification */
	call_stream_execute(rb, CALL_QUERY, sql);
}

static void on_parse(remote_backend *rb, const pgw_parse *m)
{
	const char *name = (const char *)m->name.ptr;
	/* In a failed transaction the server's verdict on the query comes
	 * before the name's (see on_parse_done). */
	if (*name && *stmt_find(rb, name) && rb->txn != 'E') {
		send_error(rb, "42P05", "prepared statement \"%s\" already exists", name);
		rb->skip = true;
		return;
	}
	uint32_t *types = calloc(m->param_types.count + 1, sizeof *types);
	for (uint32_t i = 0; types && i < m->param_types.count; i++)
		types[i] = (uint32_t)pgw_array_i32(&m->param_types, i);
	remote_stmt *s = types ? stmt_new(name, m->name.len, (const char *)m->query.ptr, m->query.len, types,
					  m->param_types.count)
			       : NULL;
	free(types);
	if (!s) {
		rb_fail(rb, "out of memory");
		return;
	}
	remote_stmt **old = stmt_find(rb, name);
	if (*old && !*name) { /* the unnamed statement is replaced */
		remote_stmt *o = *old;
		*old = o->next;
		stmt_free(o);
	}
	s->next = rb->stmts;
	rb->stmts = s;
	/* A known statement needs no call, unless the transaction failed
	 * (PostgreSQL then refuses every Parse). */
	char small[1024];
	size_t need = desc_key(small, sizeof small, rb, s);
	if (need <= sizeof small && rb->txn != 'E')
		s->desc = desc_lookup(rb->link, small, need);
	if (s->desc) {
		s->desc->refs++;
		encode_simple(out(rb), '1');
		flush_out(rb);
		return;
	}
	call_describe(rb, s);
}

static void on_bind(remote_backend *rb, const pgw_bind *m)
{
	const char *sname = (const char *)m->statement.ptr;
	remote_stmt *s = *stmt_find(rb, sname);
	if (!s) {
		if (*sname)
			send_error(rb, "26000", "prepared statement \"%s\" does not exist", sname);
		else
			send_error(rb, "26000", "unnamed prepared statement does not exist");
		rb->skip = true;
		return;
	}
	/* What PostgreSQL checks at Bind, checked here with its words (the
	 * pooler's Bind would come too late, at Execute). */
	uint32_t npf = m->param_formats.count, np = m->params.count;
	if (npf > 1 && npf != np) {
		send_error(rb, "08P01", "bind message has %u parameter formats but %u parameters", npf, np);
		rb->skip = true;
		return;
	}
	if (s->desc && np != s->desc->nparams) {
		send_error(rb, "08P01", "bind message supplies %u parameters, but prepared statement \"%s\" requires %zu",
			   np, sname, s->desc->nparams);
		rb->skip = true;
		return;
	}
	/* Format codes PostgreSQL does not know are the server's to refuse
	 * (a parameter's at Bind, a result's when a row is sent). */
	if ((np || !ends_failed_txn(s->query)) && refuse_in_failed_txn(rb))
		return;
	const char *pname = (const char *)m->portal.ptr;
	remote_portal **pp = portal_find(rb, pname);
	if (*pp) {
		if (*pname) {
			send_error(rb, "42P03", "cursor \"%s\" already exists", pname);
			rb->skip = true;
			return;
		}
		remote_portal *o = *pp;
		*pp = o->next;
		portal_free(o);
	}
	if (s->stale) {
		send_error(rb, "0A000", "cached plan must not change result type");
		rb->skip = true;
		return;
	}
	remote_portal *p = calloc(1, sizeof *p);
	if (!p || !(p->name = strdup(pname)) || !(p->stmt = stmt_copy(s))) {
		portal_free(p);
		rb_fail(rb, "out of memory");
		return;
	}
	size_t n = m->params.count;
	p->nparams = n;
	p->lengths = calloc(n + 1, sizeof *p->lengths);
	p->values = malloc(m->params.size + 1);
	p->npformats = m->param_formats.count;
	p->pformats = calloc(p->npformats + 1, sizeof *p->pformats);
	p->nrformats = m->result_formats.count;
	p->rformats = calloc(p->nrformats + 1, sizeof *p->rformats);
	if (!p->lengths || !p->values || !p->pformats || !p->rformats) {
		portal_free(p);
		rb_fail(rb, "out of memory");
		return;
	}
	for (size_t i = 0; i < p->npformats; i++)
		p->pformats[i] = pgw_array_i16(&m->param_formats, (uint32_t)i);
	for (size_t i = 0; i < p->nrformats; i++)
		p->rformats[i] = pgw_array_i16(&m->result_formats, (uint32_t)i);
	pgw_iter it = pgw_array_iter(&m->params);
	pgw_value v;
	size_t i = 0;
	while (i < n && pgw_next_value(&it, &v)) {
		p->lengths[i++] = v.len;
		if (v.len > 0) {
			memcpy(p->values + p->values_len, v.ptr, (size_t)v.len);
			p->values_len += (size_t)v.len;
		}
	}
	p->next = rb->portals;
	rb->portals = p;
	/* The pooler binds at Execute: BindComplete waits for its verdict
	 * when the Execute follows at once, so that a Bind error (a wrong
	 * parameter count, a constant folded to an error) comes instead of
	 * it, as from PostgreSQL. Anything else in between sends it now. */
	p->bind_owed = true;
}

/* Is the message after the one being handled an Execute of portal name? */
static bool next_executes(remote_backend *rb, const char *name)
{
	const uint8_t *d = pgw_rbuf_data(&rb->conn.in);
	size_t have = pgw_rbuf_len(&rb->conn.in), at = rb->cur_len, nlen = strlen(name);
	if (have - at < 5 || d[at] != 'E')
		return false;
	uint32_t len = (uint32_t)d[at + 1] << 24 | (uint32_t)d[at + 2] << 16 | (uint32_t)d[at + 3] << 8 | d[at + 4];
	return len == 4 + nlen + 1 + 4 && have - at >= 1 + (size_t)len && memcmp(d + at + 5, name, nlen + 1) == 0;
}

/*
 * A portal still owes its BindComplete and m is not its Execute: PostgreSQL
 * would have bound it already, and failed there on a bad parameter. The
 * pooler binds it (and closes it again) and describes it; its verdict
 * answers the Bind. Returns false while that call runs: m waits for it.
 * A Describe of the portal right before its Execute (libpq's
 * PQsendQueryPrepared) needs no call of its own: the Execute's answer
 * brings BindComplete and the description, on the same server connection.
 */
static bool settle_binds(remote_backend *rb, const pgw_msg *m)
{
	for (remote_portal *p = rb->portals; p; p = p->next) {
		if (!p->bind_owed)
			continue;
		if (m->type == 'E' && strcmp((const char *)m->body.execute.portal.ptr, p->name) == 0)
			continue;
		if (m->type == 'D' && m->body.describe.target == 'P' && rb->held && !p->describe_owed &&
		    strcmp((const char *)m->body.describe.name.ptr, p->name) == 0 && next_executes(rb, p->name)) {
			p->describe_owed = true;
			continue;
		}
		p->bind_owed = false;
		if (rb->held && !is_copy(p->stmt->query, strlen(p->stmt->query)))
			return !call_describe_portal(rb, p, p->name);
		encode_simple(out(rb), '2');
		flush_out(rb);
	}
	return true;
}

static void on_describe(remote_backend *rb, const pgw_describe *m)
{
	const char *name = (const char *)m->name.ptr;
	pgw_wbuf *w = out(rb);
	if (m->target == 'S') {
		remote_stmt *s = *stmt_find(rb, name);
		if (!s || !s->desc) {
			if (*name)
				send_error(rb, "26000", "prepared statement \"%s\" does not exist", name);
			else
				send_error(rb, "26000", "unnamed prepared statement does not exist");
			rb->skip = true;
			return;
		}
		/* Data a failed transaction cannot look up, PostgreSQL says. */
		if (s->desc->nfields && refuse_in_failed_txn(rb))
			return;
		size_t at = pgw_w_begin(w, 't');
		pgw_w_i16(w, (int16_t)s->desc->nparams);
		for (size_t i = 0; i < s->desc->nparams; i++)
			pgw_w_i32(w, (int32_t)s->desc->params[i]);
		pgw_w_end(w, at);
		encode_desc_fields(w, s->desc, NULL, 0);
	} else {
		remote_portal *p = *portal_find(rb, name);
		if (p && p->describe_owed)
			return; /* its Execute answers (see settle_binds) */
		if (!p && rb->held && rb->reserved_id) {
			/* Maybe a SQL cursor (DECLARE): the server knows. */
			call_describe_portal(rb, NULL, name);
			return;
		}
		if (!p || !p->stmt->desc) {
			send_error(rb, "34000", "portal \"%s\" does not exist", name);
			rb->skip = true;
			return;
		}
		if (p->stmt->desc->nfields && refuse_in_failed_txn(rb))
			return;
		encode_desc_fields(w, p->stmt->desc, p->rformats, p->nrformats);
	}
	flush_out(rb);
}

/*
 * The Executes of one extended batch share PostgreSQL's implicit
 * transaction until Sync, but a PortalStreamExecute is a request of its
 * own, which the pooler ends with a Sync. So when more than one Execute
 * may come before the Sync, the first one opens a transaction (the
 * reservation reason TRANSACTION, as multigres's gateway turns an
 * implicit transaction into an explicit one) and the Sync concludes it:
 * COMMIT, or ROLLBACK after an error; the client sees ReadyForQuery 'I'
 * as from PostgreSQL. A batch with a single Execute runs as it is,
 * unless a message that may yet fail comes between it and the Sync: its
 * error too rolls the Execute back.
 *
 * What the socket already holds after this Execute tells: another
 * Execute or a Parse, Bind or Describe (1), the Sync (0), or neither yet,
 * e.g. a Flush (-1: the batch may go on, so it is treated as one that
 * does).
 */
static int batch_lookahead(remote_backend *rb)
{
	const uint8_t *d = pgw_rbuf_data(&rb->conn.in);
	size_t have = pgw_rbuf_len(&rb->conn.in), at = rb->cur_len;
	while (at < have) {
		if (d[at] == MARK_BEGIN || d[at] == MARK_END)
			return -1;
		if (d[at] == 'E' || d[at] == 'P' || d[at] == 'B' || d[at] == 'D')
			return 1;
		if (d[at] == 'S')
			return 0;
		if (d[at] == 'H' || have - at < 5)
			return -1;
		uint32_t len = (uint32_t)d[at + 1] << 24 | (uint32_t)d[at + 2] << 16 | (uint32_t)d[at + 3] << 8 |
			       d[at + 4];
		if (len < 4)
			return -1;
		at += 1 + (size_t)len;
	}
	return -1;
}

/* Statements that manage the transaction themselves, or may not run in a
 * transaction block: never wrapped in one of ours. */
static bool runs_alone(stmt_kind k)
{
	switch (k) {
	case STMT_BEGIN:
	case STMT_COMMIT:
	case STMT_ROLLBACK:
	case STMT_SAVEPOINT_OP:
	case STMT_PREPARE_TXN:
	case STMT_COMMIT_PREPARED:
	case STMT_ROLLBACK_PREPARED:
	case STMT_VACUUM:
	case STMT_CREATE_DATABASE:
	case STMT_DROP_DATABASE:
	case STMT_ALTER_SYSTEM:
	case STMT_EMPTY:
		return true;
	default:
		return false;
	}
}

/* An Execute answered here: what its Bind and Describe still owe first. */
static void settle_owed_here(remote_backend *rb, remote_portal *p)
{
	if (p->bind_owed)
		encode_simple(out(rb), '2');
	if (p->describe_owed && p->stmt->desc)
		encode_desc_fields(out(rb), p->stmt->desc, p->rformats, p->nrformats);
	else if (p->describe_owed)
		encode_simple(out(rb), 'n');
	p->bind_owed = p->describe_owed = false;
}

static void on_execute(remote_backend *rb, const pgw_execute *m)
{
	const char *name = (const char *)m->portal.ptr;
	remote_portal *p = *portal_find(rb, name);
	if (!p && rb->held && rb->reserved_id) {
		/* Maybe a SQL cursor (DECLARE): the server knows. */
		call_portal_execute(rb, NULL, name, m->max_rows, false);
		return;
	}
	if (!p) {
		send_error(rb, "34000", "portal \"%s\" does not exist", name);
		rb->skip = true;
		return;
	}
	if (p->done && !ends_failed_txn(p->stmt->query) && refuse_in_failed_txn(rb))
		return;
	if (p->done && p->end_tag) {
		encode_tag(out(rb), p->end_tag);
		flush_out(rb);
		return;
	}
	if (p->done) {
		send_error(rb, "55000", "portal \"%s\" cannot be run", name);
		rb->skip = true;
		return;
	}
	if (!rb->held) {
		send_error(rb, "08P01", "no server connection is held for this request");
		rb->skip = true;
		return;
	}
	if (is_copy(p->stmt->query, strlen(p->stmt->query))) {
		settle_owed_here(rb, p); /* a COPY has no parameters to bind wrongly */
		call_copy(rb, p->stmt->query, false, copy_is_from(p->stmt->query));
		return;
	}
	stmt_info si;
	const char *q = p->stmt->query;
	stmt_classify(q, strlen(q), &si, 1);
	note_listen(rb, &si, 1);
	bool begin = false;
	if (rb->txn == 'I') {
		begin = !runs_alone(si.kind) && batch_lookahead(rb) != 0;
	} else if (rb->batch_txn && si.kind == STMT_BEGIN) {
		/* PostgreSQL turns the batch's implicit transaction into the
		 * client's explicit one: ours becomes the client's. */
		rb->batch_txn = false;
		pgw_wbuf *w = out(rb);
		settle_owed_here(rb, p);
		encode_tag(w, "BEGIN");
		flush_out(rb);
		return;
	} else if (rb->batch_txn && (si.kind == STMT_COMMIT || si.kind == STMT_ROLLBACK) &&
		   !(si.flags & STMT_F_AND_CHAIN)) {
		/* It ends the implicit transaction, with PostgreSQL's warning. */
		rb->batch_txn = false;
		Query__PgDiagnostic d = QUERY__PG_DIAGNOSTIC__INIT;
		d.severity = "WARNING";
		d.code = "25P01";
		d.message = "there is no transaction in progress";
		remote_encode_diagnostic(out(rb), &d, 'N');
		flush_out(rb);
	}
	call_portal_execute(rb, p, p->name, m->max_rows, begin);
}

static void on_close_msg(remote_backend *rb, const pgw_close *m)
{
	const char *name = (const char *)m->name.ptr;
	if (m->target == 'S') {
		remote_stmt **sp = stmt_find(rb, name);
		if (*sp) {
			remote_stmt *s = *sp;
			*sp = s->next;
			stmt_free(s);
		}
	} else {
		remote_portal **pp = portal_find(rb, name);
		if (*pp) {
			remote_portal *p = *pp;
			*pp = p->next;
			portal_free(p);
		}
	}
	encode_simple(out(rb), '3'); /* CloseComplete */
	flush_out(rb);
}

static void on_sync(remote_backend *rb)
{
	rb->skip = false;
	if (rb->batch_txn) {
		rb->batch_txn = false;
		if (rb->txn != 'I') {
			call_stream_execute(rb, CALL_SYNC, rb->txn == 'E' ? "ROLLBACK" : "COMMIT");
			return;
		}
	}
	if (rb->txn == 'I')
		portals_clear(rb); /* portals end with their transaction */
	encode_ready(out(rb), rb->txn);
	flush_out(rb);
}

/* A hold ends: undo the session state the holder left, then release. */
static void end_hold(remote_backend *rb, bool discard, bool settings)
{
	rb->held = false;
	rb->server_pid = 0;
	rb->listening = false; /* the reservation goes, and its LISTENs with it */
	rb->hold_fresh = rb->absorb_next = false;
	rhold_clear(&rb->settings);
	portals_clear(rb);
	if (!rb->reserved_id) {
		rb->txn = 'I';
		return;
	}
	/* The pooler rolls back and resets changed settings when it takes
	 * the connection back; what else a session left (temporary tables,
	 * LISTEN, advisory locks, PREPAREd statements) is undone here when
	 * the holder says so. DISCARD ALL's parts, as DISCARD ALL itself
	 * cannot follow the ROLLBACK in one call; the pooler forgets its own
	 * statements on the DEALLOCATE ALL. */
	(void)settings;
	if (discard) {
		const char *sql = "CLOSE ALL;SET SESSION AUTHORIZATION DEFAULT;RESET ALL;DEALLOCATE ALL;"
				  "UNLISTEN *;SELECT pg_advisory_unlock_all();DISCARD PLANS;DISCARD TEMP;"
				  "DISCARD SEQUENCES";
		if (rb->txn != 'I') {
			/* The reset cannot run in the failed transaction: a
			 * ROLLBACK first, as the same call's first statement. */
			char buf[256];
			snprintf(buf, sizeof buf, "ROLLBACK;%s", sql);
			call_stream_execute(rb, CALL_RESET, buf);
		} else {
			call_stream_execute(rb, CALL_RESET, sql);
		}
		return;
	}
	call_release(rb);
}

/* During COPY FROM STDIN: the data go to the call; Flush and Sync are
 * ignored there, as PostgreSQL does (drivers send Sync after Execute). */
static void copy_in_message(remote_backend *rb, pgw_msg *m)
{
	char why[64];
	switch (m->type) {
	case 'd':
		copy_send(rb, MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__PHASE__DATA, m->body.copy_data.data.ptr,
			  m->body.copy_data.data.len, NULL);
		break;
	case 'c':
		copy_send(rb, MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__PHASE__DONE, NULL, 0, NULL);
		break;
	case 'f':
		copy_send(rb, MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__PHASE__FAIL, NULL, 0,
			  (const char *)m->body.copy_fail.message.ptr);
		break;
	case 'H':
	case 'S':
		break;
	default:
		/* PostgreSQL ends the session: synchronization is lost. */
		snprintf(why, sizeof why, "unexpected message type 0x%02X during COPY from stdin", m->type);
		snprintf(rb->copy_violation, sizeof rb->copy_violation, "%s", why);
		copy_send(rb, MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__PHASE__FAIL, NULL, 0, why);
		break;
	}
}

/* Returns false when m must wait (a call started first). */
static bool handle_message(remote_backend *rb, pgw_msg *m)
{
	if (rb->copy_in) {
		copy_in_message(rb, m);
		return true;
	}
	if (rb->skip && m->type != 'S')
		return true;
	if (!settle_binds(rb, m))
		return false;
	bool skipping = rb->skip;
	if (m->type != 'Q')
		rb->hold_fresh = rb->absorb_next = false;
	switch (m->type) {
	case 'Q':
		on_query(rb, &m->body.query);
		break;
	case 'P':
		on_parse(rb, &m->body.parse);
		break;
	case 'B':
		on_bind(rb, &m->body.bind);
		break;
	case 'D':
		on_describe(rb, &m->body.describe);
		break;
	case 'E':
		on_execute(rb, &m->body.execute);
		break;
	case 'C':
		on_close_msg(rb, &m->body.close);
		break;
	case 'S':
		on_sync(rb);
		break;
	case 'H':
		break;
	case 'F':
		send_error(rb, "0A000", "function calls (the FunctionCall message) are not supported "
					"through a remote pooler");
		encode_ready(out(rb), rb->txn);
		flush_out(rb);
		break;
	case 'd':
	case 'c':
	case 'f':
		break; /* no COPY FROM STDIN was started here */
	case 'X':
		rb->dead = true;
		break;
	default:
		send_error(rb, "08P01", "unexpected message type 0x%02x", m->type);
		break;
	}
	/* An error answered here: the server's transaction fails with it. */
	if (!skipping && rb->skip && !rb->call)
		abort_server_txn(rb);
	return true;
}

static void start_login(remote_backend *rb);

static void on_startup(remote_backend *rb, pgw_msg *m)
{
	pgw_iter it = pgw_array_iter(&m->body.startup_message.params);
	pgw_str k, v;
	while (pgw_next_pair(&it, &k, &v)) {
		if (strcmp((const char *)k.ptr, "user") == 0) {
			free(rb->user);
			rb->user = strdup((const char *)v.ptr);
		} else if (strcmp((const char *)k.ptr, "database") == 0) {
			free(rb->database);
			rb->database = strdup((const char *)v.ptr);
		}
	}
	rb->started = true;
	rb->dec.phase = PGW_PH_READY;
	if (!rb->user || !rb->database) {
		rb_fail(rb, "out of memory");
		return;
	}
	start_login(rb);
}

/* The login: the parameters PostgreSQL would report, read on the pooler
 * (which also proves the database and user are served there). */
static void start_login(remote_backend *rb)
{
	/* A link still making its first connection attempt is waited for
	 * (the connect timeout bounds it); otherwise a link that is down
	 * fails the login at once. */
	if (!rb->link->up && !rb->link->tried) {
		rb->wait_link = true;
		return;
	}
	const char *why = remote_link_unavailable(rb->link);
	if (why) {
		char text[400];
		snprintf(text, sizeof text, "could not connect to the pooler at %s: %s", rb->link->address, why);
		encode_error(out(rb), "FATAL", "08006", text);
		flush_out(rb);
		rb->dead = true;
		return;
	}
	char sql[1024];
	size_t n = (size_t)snprintf(sql, sizeof sql, "SELECT ");
	for (size_t i = 0; i < NLOGIN_PARAMS; i++)
		n += (size_t)snprintf(sql + n, sizeof sql - n, "%scurrent_setting('%s', true)", i ? ", " : "",
				      login_params[i]);
	call_stream_execute(rb, CALL_LOGIN, sql);
}

/*
 * A Bind the decoder refused for its format codes alone: read again
 * without judging them (the server does, where PostgreSQL does). Every
 * length is checked as the decoder does. Returns false when anything else
 * is wrong with it.
 */
static bool bind_any_formats(pgw_msg *m)
{
	const uint8_t *p = m->raw + 5, *end = m->raw + m->raw_len;
	pgw_bind *b = &m->body.bind;
	const uint8_t *z;
	if (!(z = memchr(p, 0, (size_t)(end - p))))
		return false;
	b->portal = (pgw_str){p, (uint32_t)(z - p)};
	p = z + 1;
	if (!(z = memchr(p, 0, (size_t)(end - p))))
		return false;
	b->statement = (pgw_str){p, (uint32_t)(z - p)};
	p = z + 1;
	pgw_array *formats[2] = {&b->param_formats, &b->result_formats};
	for (int k = 0; k < 3; k++) {
		if (end - p < 2)
			return false;
		int16_t n = (int16_t)(p[0] << 8 | p[1]);
		p += 2;
		if (n < 0)
			return false;
		if (k == 1) { /* the values: Int32 length (-1: NULL), bytes */
			b->params = (pgw_array){p, 0, (uint32_t)n};
			for (int i = 0; i < n; i++) {
				if (end - p < 4)
					return false;
				int32_t len = (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
							(uint32_t)p[2] << 8 | p[3]);
				p += 4;
				if (len < -1 || (len > 0 && end - p < len))
					return false;
				p += len > 0 ? len : 0;
			}
			b->params.size = (uint32_t)(p - b->params.ptr);
			continue;
		}
		if (end - p < 2 * n)
			return false;
		*formats[k / 2] = (pgw_array){p, (uint32_t)(2 * n), (uint32_t)n};
		p += 2 * n;
	}
	return p == end;
}

static void rb_process(remote_backend *rb)
{
	net_conn *c = &rb->conn;
	while ((!rb->call || (rb->copy_in && !rb->copy_blocked)) && !rb->dead && !rb->wait_link) {
		size_t have = pgw_rbuf_len(&c->in);
		if (have == 0)
			break;
		const uint8_t *d = pgw_rbuf_data(&c->in);
		if (rb->started && (d[0] == MARK_BEGIN || d[0] == MARK_END)) {
			if (have < 2)
				break;
			uint8_t mark = d[0], flags = d[1];
			pgw_rbuf_consume(&c->in, 2);
			if (mark == MARK_BEGIN) {
				rb->held = rb->hold_fresh = true;
				rhold_clear(&rb->settings);
			} else
				end_hold(rb, flags & MARK_DISCARD, flags & MARK_SETTINGS);
			continue;
		}
		pgw_msg m = {0};
		pgw_error err;
		size_t used;
		pgw_status st = pgw_decode(&rb->dec, d, have, &m, &used, &err);
		if (st == PGW_NEED_MORE)
			break;
		/* A fault in a message's body: an ERROR, and the stream goes on. */
		bool body_fault = st == PGW_ERR && rb->started && !err.lost_sync && !rb->copy_in && used > 0;
		if (body_fault && m.type == 'B' && bind_any_formats(&m))
			st = PGW_OK;
		if (st == PGW_ERR && body_fault) {
			rb->cur_len = used;
			if (!rb->skip) {
				send_error(rb, err.sqlstate, "%s", err.message);
				rb->skip = true;
				abort_server_txn(rb);
			}
			pgw_rbuf_consume(&c->in, used);
			continue;
		}
		if (st == PGW_ERR) {
			rb_fail(rb, "invalid message for the pooler: %s", err.message);
			return;
		}
		rb->cur_len = used;
		if (!rb->started)
			on_startup(rb, &m);
		else if (!handle_message(rb, &m))
			break;
		pgw_rbuf_consume(&c->in, used);
	}
	if (rb->dead) {
		conn_read_stop(c);
		return;
	}
	int unread = 0;
	if (rb->cancel_owed && !rb->call && pgw_rbuf_len(&c->in) == 0 &&
	    !(ioctl(c->fd, FIONREAD, &unread) == 0 && unread > 0))
		rb->cancel_owed = false; /* what it was for was answered here */
	if (!rb->call && !rb->await && !rb->await_spent && !rb->await_off && rb->listening && rb->held &&
	    rb->reserved_id && rb->txn == 'I' && pgw_rbuf_len(&c->in) == 0)
		call_stream_execute(rb, CALL_AWAIT, "");
	if ((!rb->call || (rb->copy_in && !rb->copy_blocked)) && !rb->wait_link)
		conn_read_start(c);
	else
		conn_read_stop(c);
}

/* ------------------------------------------------------------ the socket */

static void rb_on_readable(net_conn *c)
{
	remote_backend *rb = c->owner;
	ssize_t n = conn_fill(c, rb->dec.need);
	if (n == 0) {
		rb->dead = true;
		conn_read_stop(c);
		return;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			rb->dead = true;
			conn_read_stop(c);
		}
		return;
	}
	rb_process(rb);
}

static void rb_on_drained(net_conn *c)
{
	remote_backend *rb = c->owner;
	if (rb->call && rb->call_paused) {
		rb->call_paused = false;
		rpc_client_resume(rb->call);
	}
}

static void rb_on_error(net_conn *c, int err)
{
	(void)err;
	remote_backend *rb = c->owner;
	rb->dead = true;
	conn_read_stop(c);
	if (rb->call)
		rpc_client_cancel(rb->call);
}

static const net_conn_ops rb_conn_ops = {rb_on_readable, rb_on_drained, rb_on_error};

/* The pooler is gone: the holder hears a FATAL error, as from a server
 * that went away, then the connection closes. */
static void rb_fail(remote_backend *rb, const char *fmt, ...)
{
	char text[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (rb->dead)
		return;
	rb->dead = true;
	stop_await(rb);
	if (rb->call) {
		rb->ctx->rb = NULL;
		rpc_client_cancel(rb->call);
		rb->call = NULL;
		rb->ctx = NULL;
	}
	encode_error(out(rb), "FATAL", strncmp(text, "terminating", 11) == 0 ? "08P01" : "08006", text);
	conn_wrote(&rb->conn);
	conn_flush_now(&rb->conn);
	/* Shut our end: the backend reads the error, then end of file. */
	shutdown(rb->conn.fd, SHUT_RDWR);
	conn_read_stop(&rb->conn);
}

int remote_backend_open(backend *be, remote_link *l)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	remote_backend *rb = calloc(1, sizeof *rb);
	if (!rb) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	rb->be = be;
	rb->link = l;
	rb->txn = 'I';
	pgw_decoder_init(&rb->dec, PGW_FRONTEND, 0);
	conn_init(&rb->conn, l->w, sv[1], &rb_conn_ops, rb);
	conn_read_start(&rb->conn);
	rb->next = l->members;
	if (l->members)
		l->members->prev = rb;
	l->members = rb;
	be->remote = rb;
	return sv[0];
}

static void mark(backend *be, uint8_t type, uint8_t flags)
{
	uint8_t m[2] = {type, flags};
	conn_write(&be->conn, m, sizeof m);
}

void remote_backend_begin_hold(backend *be)
{
	mark(be, MARK_BEGIN, 0);
}

void remote_backend_end_hold(backend *be, bool discard)
{
	mark(be, MARK_END, (uint8_t)((discard ? MARK_DISCARD : 0) | (be->settings_hash ? MARK_SETTINGS : 0)));
	/* What the end undoes, the next holder must not count on. */
	be->settings_hash = 0;
	be->settings_role = false;
	/* The next hold may be served by another server connection, one the
	 * pooler reset without telling us: its reported parameters are the
	 * login's, the server's defaults. */
	remote_backend *rb = be->remote;
	if (rb)
		for (int i = 0; i < rb->nlogin; i++)
			backend_params_set(be->params, &be->nparams, rb->login[i].name, rb->login[i].value);
}

uint32_t remote_backend_server_pid(const backend *be)
{
	const remote_backend *rb = be->remote;
	return rb && rb->held && rb->reserved_id ? rb->server_pid : 0;
}

void remote_backend_cancel(backend *be)
{
	remote_backend *rb = be->remote;
	if (!rb || rb->dead)
		return;
	if (rb->call && rb->ctx && call_cancellable(rb->ctx->kind)) {
		rpc_client_cancel(rb->call);
		return;
	}
	/* A request written but not yet turned into a call (still in the
	 * holder's output, the socket or our input) is, to the holder,
	 * already running: its call is cancelled when it starts. Idle, a
	 * cancel does nothing, as on PostgreSQL. */
	int unread = 0;
	if (conn_pending(&be->conn) > 0 || pgw_rbuf_len(&rb->conn.in) > 0 ||
	    (ioctl(rb->conn.fd, FIONREAD, &unread) == 0 && unread > 0))
		rb->cancel_owed = true;
}

void remote_backend_close(backend *be)
{
	remote_backend *rb = be->remote;
	if (!rb)
		return;
	be->remote = NULL;
	remote_link *l = rb->link;
	stop_await(rb);
	if (rb->call) {
		rb->ctx->rb = NULL;
		rpc_client_cancel(rb->call);
	}
	if (rb->prev)
		rb->prev->next = rb->next;
	else
		l->members = rb->next;
	if (rb->next)
		rb->next->prev = rb->prev;
	conn_close(&rb->conn);
	while (rb->stmts) {
		remote_stmt *s = rb->stmts;
		rb->stmts = s->next;
		stmt_free(s);
	}
	portals_clear(rb);
	rhold_clear(&rb->settings);
	for (int i = 0; i < rb->nlogin; i++) {
		free(rb->login[i].name);
		free(rb->login[i].value);
	}
	free(rb->database);
	free(rb->user);
	free(rb);
}

/* ------------------------------------------------------------ the link */

static void start_health(remote_link *l);

static void on_health_message(rpc_client_call *call, const ProtobufCMessage *msg, void *arg)
{
	(void)call;
	call_ctx *ctx = arg;
	remote_link *l = ctx->link;
	if (!l)
		return;
	const Multipoolerservice__StreamPoolerHealthResponse *r = (const void *)msg;
	if (l->serving != (bool)r->serving)
		log_info("pooler %s: %s%s%s", l->address, r->serving ? "serving" : "not serving",
			 r->reason && *r->reason ? ": " : "", r->reason ? r->reason : "");
	l->serving = r->serving;
	snprintf(l->reason, sizeof l->reason, "%s", r->reason && *r->reason ? r->reason : "not serving");
}

static void on_health_close(rpc_client_call *call, int status, const char *message, const uint8_t *err,
			    size_t err_len, void *arg)
{
	(void)call;
	(void)err;
	(void)err_len;
	call_ctx *ctx = arg;
	remote_link *l = ctx->link;
	free(ctx);
	if (!l)
		return;
	l->health = NULL;
	if (status == RPC_UNIMPLEMENTED) {
		l->serving = true; /* a pooler without health reports is taken at its word */
		return;
	}
	if (l->up) {
		log_debug("pooler %s: health stream ended (%d %s)", l->address, status, message ? message : "");
		ev_timer_stop(l->w->loop, &l->health_retry);
		ev_timer_set(&l->health_retry, 1.0, 0);
		ev_timer_start(l->w->loop, &l->health_retry);
	}
}

static const rpc_client_ops health_ops = {on_health_message, on_health_close, NULL};
static call_ctx *health_ctx(remote_link *l);

static void start_health(remote_link *l)
{
	if (l->health || !l->up)
		return;
	call_ctx *ctx = health_ctx(l);
	if (!ctx)
		return;
	Multipoolerservice__StreamPoolerHealthRequest req = MULTIPOOLERSERVICE__STREAM_POOLER_HEALTH_REQUEST__INIT;
	l->health = rpc_client_start(l->ch, SERVICE "StreamPoolerHealth",
				     &multipoolerservice__stream_pooler_health_response__descriptor, 0, &health_ops,
				     ctx);
	rpc_client_send(l->health, &req.base);
	rpc_client_close_send(l->health);
}

/* The health call's context is kept so that freeing the link can detach it. */
static call_ctx *health_ctx(remote_link *l)
{
	call_ctx *ctx = calloc(1, sizeof *ctx);
	if (ctx) {
		ctx->link = l;
		ctx->kind = CALL_HEALTH;
	}
	return ctx;
}

static void on_health_retry(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	remote_link *l = (remote_link *)((char *)t - offsetof(remote_link, health_retry));
	start_health(l);
}

/* Every connection of the link is gone with the channel: their holders
 * hear it now rather than at their next request. */
static void fail_members(remote_link *l, const char *why)
{
	remote_backend *rb = l->members;
	while (rb) {
		remote_backend *next = rb->next;
		rb_fail(rb, "lost the connection to the pooler at %s: %s", l->address, why);
		rb = next;
	}
}

static void on_channel_state(rpc_channel *ch, bool ready, void *arg)
{
	(void)ch;
	remote_link *l = arg;
	bool was_up = l->up;
	l->up = ready;
	l->tried = true;
	if (ready && !was_up) {
		log_info("pooler %s: connected", l->address);
		l->serving = true;
		start_health(l);
	} else if (!ready && was_up) {
		log_warning("pooler %s: connection lost; reconnecting", l->address);
		fail_members(l, "connection lost");
	}
	/* Logins waiting for the first attempt go on now, or fail at once. */
	remote_backend *rb = l->members;
	while (rb) {
		remote_backend *next = rb->next;
		if (rb->wait_link) {
			rb->wait_link = false;
			start_login(rb);
			rb_process(rb);
		}
		rb = next;
	}
}

remote_link *remote_link_new(worker *w, const char *address, const pool_config *base)
{
	remote_link *l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	l->cfg = *base;
	l->cfg.remote = l;
	/* The multipooler limits its connections; here a connection is a
	 * socketpair, and the gateway's limit on holds is the pool size per
	 * worker (no other worker's idle ones are borrowed: a remote
	 * connection belongs to its worker's channel). */
	l->w = w;
	l->address = strdup(address);
	if (!l->address) {
		free(l);
		return NULL;
	}
	ev_timer_init(&l->health_retry, on_health_retry, 1.0, 0);
	rpc_channel_config cc = {0};
	cc.connect_timeout = base->connect_timeout > 0 ? base->connect_timeout : 5;
	cc.backoff_initial = 0.1;
	cc.backoff_max = 2.0;
	/* Stock gRPC servers (grpc core, grpc-go) answer pings sent more
	 * often than every 5 minutes without data with GOAWAY
	 * too_many_pings: a dead peer is found within 300 s + 20 s. */
	cc.keepalive_interval = 300;
	cc.keepalive_timeout = 20;
	cc.on_state = on_channel_state;
	cc.arg = l;
	l->ch = rpc_channel_new(w->loop, address, &cc);
	if (!l->ch) {
		free(l->address);
		free(l);
		return NULL;
	}
	return l;
}

const char *remote_link_unavailable(const remote_link *l)
{
	if (!l->up)
		return "not connected";
	if (!l->serving)
		return l->reason;
	return NULL;
}

void remote_link_free(remote_link *l)
{
	if (!l)
		return;
	ev_timer_stop(l->w->loop, &l->health_retry);
	l->up = false;
	rpc_channel_free(l->ch); /* calls end with their ctx left alone... */
	while (l->descs) {
		remote_desc *d = l->descs;
		l->descs = d->next;
		desc_unref(d);
	}
	free(l->address);
	free(l);
}
