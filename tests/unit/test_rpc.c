/*
 * src/rpc end to end: a client channel and a server in one libev loop, over
 * a Unix socket and TCP, with the multigres messages as payloads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "multipoolerservice.pb-c.h"
#include "pgw/bufpool.h"
#include "rpc.h"
#include "rpc_testsvc.h"
#include "rpc_wire.h"

/* ------------------------------------------------------------ fixture */

typedef struct fx {
	struct ev_loop *loop;
	rpc_server *srv;
	rpc_channel *ch;
	char target[128];
	char path[108];
	int ready_changes, ready;
} fx;

typedef struct result {
	bool closed;
	int status;
	char message[512];
	uint8_t err[4096];
	size_t err_len;
	bool has_err;
	int messages;
	uint64_t last_rows;
	size_t bytes;
	bool bad;
	rpc_client_call *call;
	fx *f;
	int pause_after; /* pause when this many messages came (0: never) */
	int pong_left;	 /* bidi ping-pong rounds still to send */
} result;

static void on_state(rpc_channel *ch, bool ready, void *arg)
{
	(void)ch;
	fx *f = arg;
	f->ready = ready;
	f->ready_changes++;
}

static void fx_channel(fx *f)
{
	rpc_channel_config cc = {.backoff_initial = 0.05, .backoff_max = 0.2, .on_state = on_state, .arg = f};
	f->ch = rpc_channel_new(f->loop, f->target, &cc);
	assert_non_null(f->ch);
}

static fx *fx_new(bool tcp, size_t call_buffer)
{
	fx *f = calloc(1, sizeof *f);
	memset(&testsvc, 0, sizeof testsvc);
	f->loop = ev_loop_new(EVFLAG_AUTO);
	rpc_server_config sc = {.call_buffer = call_buffer};
	f->srv = rpc_server_new(f->loop, testsvc_methods, testsvc_nmethods, &sc);
	assert_non_null(f->srv);
	if (tcp) {
		assert_int_equal(rpc_server_listen(f->srv, "127.0.0.1:0", true), 0);
		snprintf(f->target, sizeof f->target, "127.0.0.1:%d", rpc_server_port(f->srv));
	} else {
		const char *tmp = getenv("TMPDIR");
		snprintf(f->path, sizeof f->path, "%s/pgw-test-rpc-%d.sock", tmp && *tmp ? tmp : "/tmp", (int)getpid());
		assert_int_equal(rpc_server_listen(f->srv, f->path, false), 0);
		snprintf(f->target, sizeof f->target, "%s", f->path);
	}
	fx_channel(f);
	return f;
}

static void fx_free(fx *f)
{
	rpc_channel_free(f->ch);
	rpc_server_free(f->srv);
	/* Let the last frames and closes go. */
	ev_run(f->loop, EVRUN_NOWAIT);
	ev_loop_destroy(f->loop);
	free(f);
	bufpool_thread_trim();
}

static bool expired;
static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	expired = true;
	ev_break(loop, EVBREAK_ALL);
}

/* Run the loop until *flag or secs pass; fails the test on timeout. */
static void run_until(fx *f, const bool *flag, double secs)
{
	ev_timer t;
	expired = false;
	ev_timer_init(&t, guard_cb, secs, 0);
	ev_timer_start(f->loop, &t);
	while (!*flag && !expired)
		ev_run(f->loop, EVRUN_ONCE);
	ev_timer_stop(f->loop, &t);
	assert_false(expired);
}

/* Run the loop for secs regardless. */
static void run_for(fx *f, double secs)
{
	ev_timer t;
	expired = false;
	ev_timer_init(&t, guard_cb, secs, 0);
	ev_timer_start(f->loop, &t);
	while (!expired)
		ev_run(f->loop, EVRUN_ONCE);
	ev_timer_stop(f->loop, &t);
}

/* ------------------------------------------------------------ client callbacks */

static void cl_close(rpc_client_call *call, int status, const char *message, const uint8_t *err,
		     size_t err_len, void *arg)
{
	(void)call;
	result *r = arg;
	r->closed = true;
	r->status = status;
	snprintf(r->message, sizeof r->message, "%s", message);
	if (err && err_len <= sizeof r->err) {
		memcpy(r->err, err, err_len);
		r->err_len = err_len;
		r->has_err = true;
	}
}

static void eq_msg(rpc_client_call *call, const ProtobufCMessage *msg, void *arg)
{
	(void)call;
	result *r = arg;
	const Multipoolerservice__ExecuteQueryResponse *resp = (const void *)msg;
	r->messages++;
	if (resp->result) {
		r->last_rows = resp->result->rows_affected;
		r->bytes += resp->result->passthrough_block.len;
	}
}

static const rpc_client_ops eq_ops = {.on_message = eq_msg, .on_close = cl_close};

static rpc_client_call *start_eq(fx *f, const char *query, double timeout, result *r)
{
	memset(r, 0, sizeof *r);
	r->f = f;
	r->call = rpc_client_start(f->ch, TESTSVC_PREFIX "ExecuteQuery",
				   &multipoolerservice__execute_query_response__descriptor, timeout, &eq_ops, r);
	Multipoolerservice__ExecuteQueryRequest rq = MULTIPOOLERSERVICE__EXECUTE_QUERY_REQUEST__INIT;
	rq.query = (char *)query;
	rpc_client_send(r->call, &rq.base);
	rpc_client_close_send(r->call);
	return r->call;
}

static void se_msg(rpc_client_call *call, const ProtobufCMessage *msg, void *arg)
{
	result *r = arg;
	const Multipoolerservice__StreamExecuteResponse *resp = (const void *)msg;
	if (!resp->result || resp->result->payload_case != QUERY__QUERY_RESULT_PAYLOAD__PAYLOAD_RESULT ||
	    resp->result->result->rows_affected != (uint64_t)r->messages) {
		r->bad = true;
	} else {
		const Query__QueryResult *q = resp->result->result;
		for (size_t k = 0; k < q->passthrough_block.len; k++)
			if (q->passthrough_block.data[k] != testsvc_byte(q->rows_affected, k))
				r->bad = true;
		r->bytes += q->passthrough_block.len;
	}
	r->messages++;
	if (r->pause_after && r->messages == r->pause_after)
		rpc_client_pause(call);
}

static const rpc_client_ops se_ops = {.on_message = se_msg, .on_close = cl_close};

static rpc_client_call *start_se(fx *f, const char *query, double timeout, result *r)
{
	r->f = f;
	r->call = rpc_client_start(f->ch, TESTSVC_PREFIX "StreamExecute",
				   &multipoolerservice__stream_execute_response__descriptor, timeout, &se_ops, r);
	Multipoolerservice__StreamExecuteRequest rq = MULTIPOOLERSERVICE__STREAM_EXECUTE_REQUEST__INIT;
	rq.query = (char *)query;
	rpc_client_send(r->call, &rq.base);
	rpc_client_close_send(r->call);
	return r->call;
}

/* ------------------------------------------------------------ tests */

static void unary_on(bool tcp)
{
	fx *f = fx_new(tcp, 0);
	result r;
	start_eq(f, "select 1", 5, &r);
	run_until(f, &r.closed, 5);
	assert_int_equal(r.status, RPC_OK);
	assert_int_equal(r.messages, 1);
	assert_int_equal(r.last_rows, strlen("select 1"));
	assert_int_equal(r.bytes, strlen("select 1"));
	assert_true(f->ready);
	fx_free(f);
}

static void test_unary_unix(void **state)
{
	(void)state;
	unary_on(false);
}

static void test_unary_tcp(void **state)
{
	(void)state;
	unary_on(true);
}

static void test_server_streaming_10000(void **state)
{
	(void)state;
	fx *f = fx_new(true, 0);
	result r = {0};
	start_se(f, "10000:100", 0, &r);
	run_until(f, &r.closed, 30);
	assert_int_equal(r.status, RPC_OK);
	assert_int_equal(r.messages, 10000);
	assert_int_equal(r.bytes, 10000 * 100);
	assert_false(r.bad);
	fx_free(f);
}

/* CopyBidiExecute: the echoes, then a RESULT counting the DATA messages. */
typedef struct bidi {
	result r;
	int data_echoes;
	size_t echo_bytes;
	uint64_t count;
	char tag[64];
	bool ready_seen;
	int sent;
	size_t chunk;
	bool stream; /* client streaming: send everything at once */
} bidi;

static void bidi_send_data(rpc_client_call *call, size_t len, uint8_t fill)
{
	uint8_t *buf = malloc(len ? len : 1);
	memset(buf, fill, len);
	Multipoolerservice__CopyBidiExecuteRequest rq = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__INIT;
	rq.phase = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__PHASE__DATA;
	rq.data.data = buf;
	rq.data.len = len;
	rpc_client_send(call, &rq.base);
	free(buf);
}

static void bidi_msg(rpc_client_call *call, const ProtobufCMessage *msg, void *arg)
{
	bidi *b = arg;
	const Multipoolerservice__CopyBidiExecuteResponse *resp = (const void *)msg;
	switch (resp->phase) {
	case MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_RESPONSE__PHASE__READY:
		b->ready_seen = true;
		break;
	case MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_RESPONSE__PHASE__DATA:
		b->data_echoes++;
		b->echo_bytes += resp->data.len;
		for (size_t k = 0; k < resp->data.len; k++)
			if (resp->data.data[k] != (uint8_t)b->data_echoes)
				b->r.bad = true;
		/* ping-pong: the next one only after the echo */
		if (!b->stream) {
			if (b->r.pong_left > 0) {
				b->r.pong_left--;
				bidi_send_data(call, b->chunk, (uint8_t)(b->data_echoes + 1));
			} else {
				Multipoolerservice__CopyBidiExecuteRequest rq =
					MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__INIT;
				rq.phase = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__PHASE__DONE;
				rpc_client_send(call, &rq.base);
				rpc_client_close_send(call);
			}
		}
		break;
	case MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_RESPONSE__PHASE__RESULT:
		b->count = resp->result ? resp->result->rows_affected : 0;
		snprintf(b->tag, sizeof b->tag, "%s", resp->result ? resp->result->command_tag : "");
		break;
	default:
		b->r.bad = true;
	}
}

static void bidi_close(rpc_client_call *call, int status, const char *message, const uint8_t *err,
		       size_t err_len, void *arg)
{
	bidi *b = arg;
	cl_close(call, status, message, err, err_len, &b->r);
}

static const rpc_client_ops bidi_ops = {.on_message = bidi_msg, .on_close = bidi_close};

static rpc_client_call *start_bidi(fx *f, bidi *b)
{
	b->r.call = rpc_client_start(f->ch, TESTSVC_PREFIX "CopyBidiExecute",
				     &multipoolerservice__copy_bidi_execute_response__descriptor, 30, &bidi_ops, b);
	Multipoolerservice__CopyBidiExecuteRequest rq = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__INIT;
	rq.phase = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__PHASE__INITIATE;
	rq.query = "COPY t FROM STDIN";
	rpc_client_send(b->r.call, &rq.base);
	return b->r.call;
}

static void test_client_streaming(void **state)
{
	(void)state;
	fx *f = fx_new(false, 0);
	bidi b = {.stream = true};
	rpc_client_call *c = start_bidi(f, &b);
	for (int i = 1; i <= 1000; i++)
		bidi_send_data(c, 100, (uint8_t)i);
	rpc_client_close_send(c); /* the half close ends it: no DONE */
	run_until(f, &b.r.closed, 20);
	assert_int_equal(b.r.status, RPC_OK);
	assert_true(b.ready_seen);
	assert_int_equal(b.count, 1000);
	assert_string_equal(b.tag, "COPY 100000");
	assert_int_equal(b.data_echoes, 1000);
	assert_false(b.r.bad);
	fx_free(f);
}

static void test_bidi_ping_pong(void **state)
{
	(void)state;
	fx *f = fx_new(true, 0);
	bidi b = {.chunk = 300};
	b.r.pong_left = 99;
	rpc_client_call *c = start_bidi(f, &b);
	bidi_send_data(c, b.chunk, 1);
	run_until(f, &b.r.closed, 20);
	assert_int_equal(b.r.status, RPC_OK);
	assert_int_equal(b.data_echoes, 100);
	assert_int_equal(b.count, 100);
	assert_false(b.r.bad);
	fx_free(f);
}

/* One message of size bytes to the server and back, whole. */
static void echo_one_message(size_t size, double secs)
{
	fx *f = fx_new(true, 0);
	bidi b = {.chunk = size};
	rpc_client_call *c = start_bidi(f, &b);
	bidi_send_data(c, b.chunk, 1);
	run_until(f, &b.r.closed, secs);
	assert_int_equal(b.r.status, RPC_OK);
	assert_int_equal(b.data_echoes, 1);
	assert_int_equal(b.echo_bytes, size);
	assert_false(b.r.bad);
	fx_free(f);
}

static void test_5mib_message(void **state)
{
	(void)state;
	echo_one_message(5u << 20, 30);
}

/* Past gRPC's usual 4 MiB and our old 16 MiB: PostgreSQL's messages go
 * to 1 GB, so a 40 MiB message travels both ways whole. */
static void test_40mib_message(void **state)
{
	(void)state;
	echo_one_message(40u << 20, 60);
}

/* A request over the limit is never sent: the call ends with
 * RESOURCE_EXHAUSTED, and the channel serves the next call. */
static void test_over_limit_message(void **state)
{
	(void)state;
	fx *f = fx_new(false, 0);
	bidi b = {.stream = true};
	rpc_client_call *c = start_bidi(f, &b);
	static uint8_t small[16];
	Multipoolerservice__CopyBidiExecuteRequest rq = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__INIT;
	rq.phase = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__PHASE__DATA;
	rq.data.data = small; /* the size check comes before any byte is read */
	rq.data.len = (size_t)RPC_MAX_MESSAGE + 1;
	assert_false(rpc_client_send(c, &rq.base));
	rpc_client_close_send(c);
	assert_false(b.r.closed); /* never from inside the API call */
	run_until(f, &b.r.closed, 10);
	assert_int_equal(b.r.status, RPC_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(b.r.message, "larger than the limit"));
	result r;
	start_eq(f, "after", 10, &r);
	run_until(f, &r.closed, 10);
	assert_int_equal(r.status, RPC_OK);
	fx_free(f);
}

static void test_200_concurrent(void **state)
{
	(void)state;
	fx *f = fx_new(false, 0);
	enum { N = 200 };
	static result rs[N];
	static char queries[N][32];
	for (int i = 0; i < N; i++) {
		snprintf(queries[i], sizeof queries[i], "q%0*d", i % 20 + 1, i);
		start_eq(f, queries[i], 10, &rs[i]);
	}
	for (int i = 0; i < N; i++)
		run_until(f, &rs[i].closed, 10);
	for (int i = 0; i < N; i++) {
		assert_int_equal(rs[i].status, RPC_OK);
		assert_int_equal(rs[i].last_rows, strlen(queries[i]));
	}
	assert_int_equal(testsvc.finished, N);
	fx_free(f);
}

static void test_deadline(void **state)
{
	(void)state;
	fx *f = fx_new(false, 0);
	result r;
	start_eq(f, "sleep", 0.2, &r);
	ev_tstamp t0 = ev_time();
	run_until(f, &r.closed, 5);
	assert_int_equal(r.status, RPC_DEADLINE_EXCEEDED);
	assert_true(ev_time() - t0 >= 0.19);
	/* The server saw the deadline (or the client's reset) as a cancel. */
	bool one = false;
	while (testsvc.cancels < 1 && !expired) {
		run_for(f, 0.05);
		one = testsvc.cancels >= 1;
		if (one)
			break;
	}
	assert_int_equal(testsvc.cancels, 1);
	fx_free(f);
}

static void test_cancel(void **state)
{
	(void)state;
	fx *f = fx_new(false, 0);
	result r = {.pause_after = 1};
	rpc_client_call *c = start_se(f, "100000000", 0, &r);
	while (r.messages < 1)
		ev_run(f->loop, EVRUN_ONCE);
	rpc_client_cancel(c);
	/* Never from inside the API call. */
	assert_false(r.closed);
	run_until(f, &r.closed, 5);
	assert_int_equal(r.status, RPC_CANCELLED);
	run_for(f, 0.2);
	assert_int_equal(testsvc.cancels, 1);
	fx_free(f);
}

static void test_error_detail(void **state)
{
	(void)state;
	fx *f = fx_new(true, 0);
	result r;
	start_eq(f, "error", 5, &r);
	run_until(f, &r.closed, 5);
	assert_int_equal(r.status, RPC_INVALID_ARGUMENT);
	assert_string_equal(r.message, "relation \"nope\" does not exist: ünïcode 100%");
	assert_true(r.has_err);
	Mtrpc__RPCError *e = mtrpc__rpcerror__unpack(NULL, r.err_len, r.err);
	assert_non_null(e);
	assert_int_equal(e->code, MTRPC__CODE__INVALID_ARGUMENT);
	assert_string_equal(e->message, "relation \"nope\" does not exist");
	Query__PgDiagnostic *d = e->pg_diagnostic;
	assert_non_null(d);
	assert_string_equal(d->severity, "ERROR");
	assert_string_equal(d->code, "42P01");
	assert_string_equal(d->message, "relation \"nope\" does not exist");
	assert_string_equal(d->detail, "detail text");
	assert_string_equal(d->hint, "hint text");
	assert_int_equal(d->position, 15);
	assert_int_equal(d->internal_position, 3);
	assert_string_equal(d->internal_query, "SELECT 1 FROM nope");
	assert_string_equal(d->where, "PL/pgSQL function f() line 1");
	assert_string_equal(d->schema_name, "public");
	assert_string_equal(d->table_name, "nope");
	assert_string_equal(d->column_name, "col");
	assert_string_equal(d->data_type_name, "int4");
	assert_string_equal(d->constraint_name, "nope_pkey");
	assert_int_equal(d->message_type, 'E');
	mtrpc__rpcerror__free_unpacked(e, NULL);
	fx_free(f);
}

static void test_unknown_method(void **state)
{
	(void)state;
	fx *f = fx_new(false, 0);
	result r = {0};
	r.call = rpc_client_start(f->ch, TESTSVC_PREFIX "NoSuchMethod",
				  &multipoolerservice__execute_query_response__descriptor, 5, &eq_ops, &r);
	Multipoolerservice__ExecuteQueryRequest rq = MULTIPOOLERSERVICE__EXECUTE_QUERY_REQUEST__INIT;
	rpc_client_send(r.call, &rq.base);
	rpc_client_close_send(r.call);
	run_until(f, &r.closed, 5);
	assert_int_equal(r.status, RPC_UNIMPLEMENTED);
	assert_non_null(strstr(r.message, "NoSuchMethod"));
	fx_free(f);
}

static void test_server_gone_and_reconnect(void **state)
{
	(void)state;
	fx *f = fx_new(false, 0);
	result r;
	start_eq(f, "sleep", 0, &r);
	run_for(f, 0.2);
	assert_true(f->ready);
	assert_false(r.closed);
	rpc_server_free(f->srv);
	f->srv = NULL;
	run_until(f, &r.closed, 5);
	assert_int_equal(r.status, RPC_UNAVAILABLE);
	assert_int_equal(testsvc.cancels, 1);
	run_for(f, 0.05);
	assert_false(f->ready);
	/* While down, calls fail fast (from the loop). */
	result r2;
	start_eq(f, "x", 5, &r2);
	assert_false(r2.closed);
	run_until(f, &r2.closed, 5);
	assert_int_equal(r2.status, RPC_UNAVAILABLE);
	/* A server again: the channel finds it. */
	f->srv = rpc_server_new(f->loop, testsvc_methods, testsvc_nmethods, NULL);
	assert_int_equal(rpc_server_listen(f->srv, f->path, false), 0);
	bool up = false;
	for (int i = 0; i < 100 && !up; i++) {
		run_for(f, 0.02);
		up = f->ready;
	}
	assert_true(up);
	result r3;
	start_eq(f, "again", 5, &r3);
	run_until(f, &r3.closed, 5);
	assert_int_equal(r3.status, RPC_OK);
	assert_int_equal(r3.last_rows, 5);
	fx_free(f);
}

/* Run the loop until the channel's reported state is `want` (or fail). */
static void wait_ready(fx *f, int want, double secs)
{
	for (int i = 0; i < (int)(secs / 0.02) && f->ready != want; i++)
		run_for(f, 0.02);
	assert_int_equal(f->ready, want);
}

/* No call in flight: the connection's loss is still reported, and so is
 * the next connection once the server is back on the same port. */
static void test_idle_drop_and_reconnect(void **state)
{
	(void)state;
	fx *f = fx_new(true, 0);
	wait_ready(f, 1, 5);
	int changes = f->ready_changes;
	char target[sizeof f->target];
	snprintf(target, sizeof target, "%s", f->target);
	rpc_server_free(f->srv);
	f->srv = NULL;
	wait_ready(f, 0, 5);
	assert_true(f->ready_changes > changes);
	f->srv = rpc_server_new(f->loop, testsvc_methods, testsvc_nmethods, NULL);
	assert_int_equal(rpc_server_listen(f->srv, target, true), 0);
	changes = f->ready_changes;
	wait_ready(f, 1, 5);
	assert_true(f->ready_changes > changes);
	result r;
	start_eq(f, "again", 5, &r);
	run_until(f, &r.closed, 5);
	assert_int_equal(r.status, RPC_OK);
	fx_free(f);
}

/* A channel whose first attempt fails says so at once (not ready), so a
 * user waiting for the first connection need not wait for a timeout. */
static void test_first_attempt_fails(void **state)
{
	(void)state;
	fx *f = calloc(1, sizeof *f);
	f->loop = ev_loop_new(EVFLAG_AUTO);
	const char *tmp = getenv("TMPDIR");
	snprintf(f->target, sizeof f->target, "%s/pgw-test-rpc-none-%d.sock", tmp && *tmp ? tmp : "/tmp",
		 (int)getpid());
	unlink(f->target); /* nothing listens there */
	fx_channel(f);
	for (int i = 0; i < 50 && f->ready_changes == 0; i++)
		run_for(f, 0.02);
	assert_true(f->ready_changes >= 1);
	assert_int_equal(f->ready, 0);
	rpc_channel_free(f->ch);
	ev_run(f->loop, EVRUN_NOWAIT);
	ev_loop_destroy(f->loop);
	free(f);
}

static void test_slow_reader(void **state)
{
	(void)state;
	const size_t limit = 64u << 10;
	fx *f = fx_new(false, limit);
	result r = {.pause_after = 10};
	rpc_client_call *c = start_se(f, "20000:1000", 0, &r);
	run_for(f, 0.5);
	assert_int_equal(r.messages, 10);
	/* The server stopped producing: bounded by call_buffer plus a message. */
	assert_true(testsvc.unwritable >= 1);
	assert_true(testsvc.max_queued <= limit + testsvc.msg_size);
	bufpool_stats st = bufpool_thread_stats();
	/* Pooled blocks in use: the client's held stream window (1 MiB) and
	 * the server's queue, in 16 KiB blocks; not 20 MB of rows. */
	print_message("pooled blocks in use while paused: %lld, server queue peak %zu\n", (long long)st.in_use,
		      testsvc.max_queued);
	assert_true(st.in_use < 160);
	rpc_client_resume(c);
	run_until(f, &r.closed, 30);
	assert_int_equal(r.status, RPC_OK);
	assert_int_equal(r.messages, 20000);
	assert_false(r.bad);
	fx_free(f);
}

/* A raw HTTP/2 client made with nghttp2 whose DATA frames carry 7 bytes
 * each and whose bytes reach the socket a few at a time. */
typedef struct raw {
	uint8_t *req;
	size_t req_len, req_off;
	int fd;
	int status;
	bool closed;
	bool got_trailer_status;
	int grpc_status;
	int http_status;
	size_t data_bytes;
} raw;

static ssize_t raw_read(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
			nghttp2_data_source *src, void *ud)
{
	(void)s;
	(void)sid;
	(void)src;
	raw *w = ud;
	size_t n = w->req_len - w->req_off;
	if (n > 7)
		n = 7;
	if (n > len)
		n = len;
	memcpy(buf, w->req + w->req_off, n);
	w->req_off += n;
	if (w->req_off == w->req_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int raw_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
		      const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
	(void)s;
	(void)f;
	(void)flags;
	(void)vl;
	raw *w = ud;
	if (nl == 11 && memcmp(name, "grpc-status", 11) == 0) {
		w->got_trailer_status = true;
		w->grpc_status = atoi((const char *)value);
	} else if (nl == 7 && memcmp(name, ":status", 7) == 0) {
		w->http_status = atoi((const char *)value);
	}
	return 0;
}

static int raw_data(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *d, size_t len, void *ud)
{
	(void)s;
	(void)flags;
	(void)sid;
	(void)d;
	((raw *)ud)->data_bytes += len;
	return 0;
}

static int raw_close(nghttp2_session *s, int32_t sid, uint32_t ec, void *ud)
{
	(void)s;
	(void)sid;
	(void)ec;
	((raw *)ud)->closed = true;
	return 0;
}

static void raw_exchange(fx *f, raw *w, const char *ctype)
{
	nghttp2_session_callbacks *cbs;
	nghttp2_session *h2;
	nghttp2_session_callbacks_new(&cbs);
	nghttp2_session_callbacks_set_on_header_callback(cbs, raw_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, raw_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, raw_close);
	nghttp2_session_client_new(&h2, cbs, w);
	nghttp2_submit_settings(h2, NGHTTP2_FLAG_NONE, NULL, 0);
	nghttp2_nv nv[] = {
		{(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
		{(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
		{(uint8_t *)":path", (uint8_t *)TESTSVC_PREFIX "ExecuteQuery", 5,
		 strlen(TESTSVC_PREFIX "ExecuteQuery"), 0},
		{(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0},
		{(uint8_t *)"content-type", (uint8_t *)ctype, 12, strlen(ctype), 0},
		{(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, 0},
	};
	nghttp2_data_provider dp = {.read_callback = raw_read};
	nghttp2_submit_request(h2, NULL, nv, 6, &dp, NULL);

	int sv[2];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
	w->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(connect(w->fd, (struct sockaddr *)&sa, sizeof sa), 0);
	(void)sv;
	/* Write everything nghttp2 has, 3 bytes at a time, turning the loop. */
	for (;;) {
		const uint8_t *out;
		ssize_t n = nghttp2_session_mem_send(h2, &out);
		assert_true(n >= 0);
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n; i += 3) {
			size_t k = n - i < 3 ? (size_t)(n - i) : 3;
			assert_int_equal(write(w->fd, out + i, k), (ssize_t)k);
			ev_run(f->loop, EVRUN_NOWAIT);
		}
	}
	/* Read the answer. */
	ev_tstamp t0 = ev_time();
	while (!w->closed && ev_time() - t0 < 5) {
		ev_run(f->loop, EVRUN_NOWAIT);
		uint8_t buf[4096];
		ssize_t n = recv(w->fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n > 0) {
			assert_true(nghttp2_session_mem_recv(h2, buf, (size_t)n) >= 0);
			const uint8_t *out;
			ssize_t m;
			while ((m = nghttp2_session_mem_send(h2, &out)) > 0)
				assert_int_equal(write(w->fd, out, (size_t)m), m);
		} else if (n == 0) {
			break;
		} else {
			usleep(1000);
		}
	}
	close(w->fd);
	nghttp2_session_del(h2);
	nghttp2_session_callbacks_del(cbs);
}

static void test_split_frames(void **state)
{
	(void)state;
	fx *f = fx_new(false, 0);
	/* A 3000-byte query in 7-byte DATA frames, 3-byte writes. */
	char *q = malloc(3001);
	memset(q, 'a', 3000);
	q[3000] = 0;
	Multipoolerservice__ExecuteQueryRequest rq = MULTIPOOLERSERVICE__EXECUTE_QUERY_REQUEST__INIT;
	rq.query = q;
	rpc_bq bq = {0};
	assert_int_equal(rpc_pack_message(&bq, &rq.base), 0);
	raw w = {0};
	w.req_len = bq.bytes;
	w.req = malloc(w.req_len);
	rpc_bq_read(&bq, w.req, w.req_len);
	raw_exchange(f, &w, "application/grpc");
	assert_true(w.closed);
	assert_int_equal(w.http_status, 200);
	assert_true(w.got_trailer_status);
	assert_int_equal(w.grpc_status, 0);
	assert_true(w.data_bytes > 3000);
	/* The wrong content type gets HTTP 415. */
	raw w2 = {.req = w.req, .req_len = w.req_len};
	raw_exchange(f, &w2, "text/plain");
	assert_int_equal(w2.http_status, 415);
	free(w.req);
	free(q);
	fx_free(f);
}

static void test_wire_helpers(void **state)
{
	(void)state;
	char out[16];
	assert_true(rpc_timeout_parse("1H", 2) == 3600);
	assert_true(rpc_timeout_parse("2M", 2) == 120);
	assert_true(rpc_timeout_parse("3S", 2) == 3);
	assert_true(rpc_timeout_parse("250m", 4) > 0.2499 && rpc_timeout_parse("250m", 4) < 0.2501);
	assert_true(rpc_timeout_parse("5u", 2) > 4.9e-6 && rpc_timeout_parse("5u", 2) < 5.1e-6);
	assert_true(rpc_timeout_parse("7n", 2) > 6.9e-9 && rpc_timeout_parse("7n", 2) < 7.1e-9);
	assert_true(rpc_timeout_parse("123456789S", 10) < 0);
	assert_true(rpc_timeout_parse("S", 1) < 0);
	assert_true(rpc_timeout_parse("1x", 2) < 0);
	rpc_timeout_format(0.25, out);
	assert_string_equal(out, "250000u");
	rpc_timeout_format(1000, out);
	assert_string_equal(out, "1000000m");
	char *e = rpc_pct_encode("a%b\n\xc3\xbc");
	assert_string_equal(e, "a%25b%0A%C3%BC");
	char *d = rpc_pct_decode((const uint8_t *)e, strlen(e));
	assert_string_equal(d, "a%b\n\xc3\xbc");
	free(e);
	free(d);
	d = rpc_pct_decode((const uint8_t *)"100%", 4);
	assert_string_equal(d, "100%");
	free(d);
	uint8_t *b;
	size_t bl;
	assert_int_equal(rpc_b64_decode((const uint8_t *)"aGk=", 4, &b, &bl), 0);
	assert_int_equal(bl, 2);
	assert_memory_equal(b, "hi", 2);
	free(b);
	assert_int_equal(rpc_b64_decode((const uint8_t *)"aGk", 3, &b, &bl), 0);
	assert_int_equal(bl, 2);
	free(b);
	assert_int_equal(rpc_b64_decode((const uint8_t *)"a", 1, &b, &bl), -1);
	assert_int_equal(rpc_b64_decode((const uint8_t *)"a*==", 4, &b, &bl), -1);
	/* The reassembler, fed a byte at a time and in one piece. */
	Query__QueryResult r = QUERY__QUERY_RESULT__INIT;
	r.command_tag = "SELECT 1";
	rpc_bq q = {0};
	rpc_pack_message(&q, &r.base);
	rpc_pack_message(&q, &r.base);
	size_t n = q.bytes;
	uint8_t *buf = malloc(n);
	rpc_bq_read(&q, buf, n);
	rpc_reasm ra = {.max = 1000};
	int got = 0;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *m;
		size_t ml;
		assert_int_equal(rpc_reasm_feed(&ra, buf + i, 1, &m, &ml), 1);
		if (m) {
			Query__QueryResult *u = query__query_result__unpack(NULL, ml, m);
			assert_non_null(u);
			assert_string_equal(u->command_tag, "SELECT 1");
			query__query_result__free_unpacked(u, NULL);
			rpc_reasm_done(&ra);
			got++;
		}
	}
	assert_int_equal(got, 2);
	buf[0] = 1; /* compressed */
	const uint8_t *m;
	size_t ml;
	assert_int_equal(rpc_reasm_feed(&ra, buf, n, &m, &ml), RPC_REASM_COMPRESSED);
	rpc_reasm_free(&ra);
	rpc_reasm rb = {.max = 3};
	assert_int_equal(rpc_reasm_feed(&rb, (const uint8_t *)"\0\0\0\0\4", 5, &m, &ml), RPC_REASM_TOO_BIG);
	/* A prefix claiming 1 GB does not allocate 1 GB: the buffer grows
	 * with the bytes that came. */
	rpc_reasm rc = {.max = RPC_MAX_MESSAGE};
	static uint8_t chunk[3000];
	assert_int_equal(rpc_reasm_feed(&rc, (const uint8_t *)"\0\x40\0\0\0", 5, &m, &ml), 5);
	assert_int_equal(rpc_reasm_feed(&rc, chunk, sizeof chunk, &m, &ml), (ssize_t)sizeof chunk);
	assert_null(m);
	assert_true(rc.cap < (1u << 20));
	rpc_reasm_free(&rc);
	free(buf);
	bufpool_thread_trim();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wire_helpers),
		cmocka_unit_test(test_unary_unix),
		cmocka_unit_test(test_unary_tcp),
		cmocka_unit_test(test_server_streaming_10000),
		cmocka_unit_test(test_client_streaming),
		cmocka_unit_test(test_bidi_ping_pong),
		cmocka_unit_test(test_5mib_message),
		cmocka_unit_test(test_40mib_message),
		cmocka_unit_test(test_over_limit_message),
		cmocka_unit_test(test_200_concurrent),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_error_detail),
		cmocka_unit_test(test_unknown_method),
		cmocka_unit_test(test_server_gone_and_reconnect),
		cmocka_unit_test(test_idle_drop_and_reconnect),
		cmocka_unit_test(test_first_attempt_fails),
		cmocka_unit_test(test_slow_reader),
		cmocka_unit_test(test_split_frames),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
