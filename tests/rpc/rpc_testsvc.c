/*
 * The test service: ExecuteQuery (unary; "error" fails with an RPCError
 * carrying a full PgDiagnostic, "sleep" never answers), StreamExecute
 * ("N" or "N:SIZE" streams N results under flow control), CopyBidiExecute
 * (echoes DATA, counts on DONE or half close).
 */
#include "rpc_testsvc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "multipoolerservice.pb-c.h"

testsvc_stats testsvc;

/* ------------------------------------------------------------ ExecuteQuery */

static void eq_message(rpc_call *call, const ProtobufCMessage *msg, void *arg)
{
	(void)arg;
	const Multipoolerservice__ExecuteQueryRequest *rq = (const void *)msg;
	if (strcmp(rq->query, "sleep") == 0)
		return; /* until the deadline or a cancel */
	if (strcmp(rq->query, "error") == 0) {
		Query__PgDiagnostic d = QUERY__PG_DIAGNOSTIC__INIT;
		d.severity = "ERROR";
		d.code = "42P01";
		d.message = "relation \"nope\" does not exist";
		d.detail = "detail text";
		d.hint = "hint text";
		d.position = 15;
		d.internal_position = 3;
		d.internal_query = "SELECT 1 FROM nope";
		d.where = "PL/pgSQL function f() line 1";
		d.schema_name = "public";
		d.table_name = "nope";
		d.column_name = "col";
		d.data_type_name = "int4";
		d.constraint_name = "nope_pkey";
		d.message_type = 'E';
		Mtrpc__RPCError e = MTRPC__RPCERROR__INIT;
		e.message = "relation \"nope\" does not exist";
		e.code = MTRPC__CODE__INVALID_ARGUMENT;
		e.pg_diagnostic = &d;
		testsvc.finished++;
		rpc_call_finish(call, RPC_INVALID_ARGUMENT, "relation \"nope\" does not exist: ünïcode 100%",
				&e.base);
		return;
	}
	char tag[64];
	snprintf(tag, sizeof tag, "ECHO %zu", strlen(rq->query));
	Query__QueryResult r = QUERY__QUERY_RESULT__INIT;
	r.command_tag = tag;
	r.rows_affected = strlen(rq->query);
	/* The query comes back as raw bytes: big requests make big answers. */
	r.passthrough_block.data = (uint8_t *)rq->query;
	r.passthrough_block.len = strlen(rq->query);
	Multipoolerservice__ExecuteQueryResponse resp = MULTIPOOLERSERVICE__EXECUTE_QUERY_RESPONSE__INIT;
	resp.result = &r;
	rpc_call_send(call, &resp.base);
	testsvc.finished++;
	rpc_call_finish(call, RPC_OK, NULL, NULL);
}

static void any_cancel(rpc_call *call, void *arg)
{
	(void)arg;
	free(rpc_call_data(call));
	testsvc.cancels++;
}

/* ------------------------------------------------------------ StreamExecute */

typedef struct stream_state {
	unsigned long n, i;
	size_t size;
	uint8_t *buf;
} stream_state;

static void se_produce(rpc_call *call, void *arg)
{
	(void)arg;
	stream_state *st = rpc_call_data(call);
	while (st->i < st->n) {
		if (!rpc_call_writable(call)) {
			testsvc.unwritable++;
			return; /* on_writable brings us back */
		}
		for (size_t k = 0; k < st->size; k++)
			st->buf[k] = testsvc_byte(st->i, k);
		char tag[32];
		snprintf(tag, sizeof tag, "row %lu", st->i);
		Query__QueryResult r = QUERY__QUERY_RESULT__INIT;
		r.rows_affected = st->i;
		r.command_tag = tag;
		r.passthrough_block.data = st->buf;
		r.passthrough_block.len = st->size;
		r.passthrough_row_count = (uint32_t)st->n;
		Query__QueryResultPayload p = QUERY__QUERY_RESULT_PAYLOAD__INIT;
		p.payload_case = QUERY__QUERY_RESULT_PAYLOAD__PAYLOAD_RESULT;
		p.result = &r;
		Multipoolerservice__StreamExecuteResponse resp = MULTIPOOLERSERVICE__STREAM_EXECUTE_RESPONSE__INIT;
		resp.result = &p;
		testsvc.msg_size = protobuf_c_message_get_packed_size(&resp.base) + 5;
		if (rpc_call_send(call, &resp.base) != 0)
			return;
		st->i++;
		if (rpc_call_queued(call) > testsvc.max_queued)
			testsvc.max_queued = rpc_call_queued(call);
	}
	rpc_call_set_data(call, NULL);
	free(st->buf);
	free(st);
	testsvc.finished++;
	rpc_call_finish(call, RPC_OK, NULL, NULL);
}

static void se_message(rpc_call *call, const ProtobufCMessage *msg, void *arg)
{
	const Multipoolerservice__StreamExecuteRequest *rq = (const void *)msg;
	stream_state *st = calloc(1, sizeof *st);
	char *end;
	st->n = strtoul(rq->query, &end, 10);
	st->size = *end == ':' ? strtoul(end + 1, NULL, 10) : 16;
	st->buf = malloc(st->size ? st->size : 1);
	rpc_call_set_data(call, st);
	rpc_call_on_writable(call, se_produce, NULL);
	se_produce(call, arg);
}

static void st_cancel(rpc_call *call, void *arg)
{
	(void)arg;
	stream_state *st = rpc_call_data(call);
	if (st) {
		free(st->buf);
		free(st);
	}
	testsvc.cancels++;
}

/* ------------------------------------------------------------ CopyBidiExecute */

typedef struct bidi_state {
	uint64_t count, bytes;
} bidi_state;

static void bidi_done(rpc_call *call)
{
	bidi_state *b = rpc_call_data(call);
	char tag[64];
	snprintf(tag, sizeof tag, "COPY %llu", (unsigned long long)b->bytes);
	Query__QueryResult r = QUERY__QUERY_RESULT__INIT;
	r.rows_affected = b->count;
	r.command_tag = tag;
	Multipoolerservice__CopyBidiExecuteResponse resp = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_RESPONSE__INIT;
	resp.phase = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_RESPONSE__PHASE__RESULT;
	resp.result = &r;
	rpc_call_send(call, &resp.base);
	free(b);
	rpc_call_set_data(call, NULL);
	testsvc.finished++;
	rpc_call_finish(call, RPC_OK, NULL, NULL);
}

static void bidi_message(rpc_call *call, const ProtobufCMessage *msg, void *arg)
{
	(void)arg;
	const Multipoolerservice__CopyBidiExecuteRequest *rq = (const void *)msg;
	bidi_state *b = rpc_call_data(call);
	testsvc.bidi_messages++;
	if (!b) {
		b = calloc(1, sizeof *b);
		rpc_call_set_data(call, b);
	}
	Multipoolerservice__CopyBidiExecuteResponse resp = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_RESPONSE__INIT;
	switch (rq->phase) {
	case MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__PHASE__INITIATE:
		resp.phase = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_RESPONSE__PHASE__READY;
		rpc_call_send(call, &resp.base);
		break;
	case MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__PHASE__DATA:
		b->count++;
		b->bytes += rq->data.len;
		resp.phase = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_RESPONSE__PHASE__DATA;
		resp.data = rq->data;
		rpc_call_send(call, &resp.base);
		break;
	case MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__PHASE__DONE:
		bidi_done(call);
		break;
	default:
		free(b);
		rpc_call_set_data(call, NULL);
		testsvc.finished++;
		rpc_call_finish(call, RPC_ABORTED, rq->error_message, NULL);
		break;
	}
}

static void bidi_half_close(rpc_call *call, void *arg)
{
	(void)arg;
	if (!rpc_call_data(call))
		rpc_call_set_data(call, calloc(1, sizeof(bidi_state)));
	bidi_done(call);
}

const rpc_method testsvc_methods[] = {
	{TESTSVC_PREFIX "ExecuteQuery", &multipoolerservice__execute_query_request__descriptor, eq_message,
	 NULL, any_cancel, NULL},
	{TESTSVC_PREFIX "StreamExecute", &multipoolerservice__stream_execute_request__descriptor, se_message,
	 NULL, st_cancel, NULL},
	{TESTSVC_PREFIX "CopyBidiExecute", &multipoolerservice__copy_bidi_execute_request__descriptor,
	 bidi_message, bidi_half_close, any_cancel, NULL},
};
const size_t testsvc_nmethods = sizeof testsvc_methods / sizeof testsvc_methods[0];
