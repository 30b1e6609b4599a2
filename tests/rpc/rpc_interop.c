/*
 * Interop tool for src/rpc against another gRPC stack (grpcio in
 * tests/integration/test_rpc_interop.py): serves the test service, or runs
 * one client scenario and prints what it saw as key=value lines.
 *
 *   rpc_interop server ADDR            prints "READY <port>", stops on SIGTERM
 *   rpc_interop client TARGET SCENARIO [ARG]
 *     unary QUERY | stream QUERY | error | deadline SECONDS | cancel | bidi ROUNDS
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "multipoolerservice.pb-c.h"
#include "pgw/bufpool.h"
#include "rpc.h"
#include "rpc_testsvc.h"

/* ------------------------------------------------------------ server */

static void on_sigterm(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static int run_server(const char *addr)
{
	struct ev_loop *loop = ev_default_loop(0);
	rpc_server_config cfg = {.keepalive_interval = 0};
	rpc_server *srv = rpc_server_new(loop, testsvc_methods, testsvc_nmethods, &cfg);
	if (!srv || rpc_server_listen(srv, addr, false) != 0) {
		perror("rpc_interop: listen");
		return 2;
	}
	ev_signal sig, sigi;
	ev_signal_init(&sig, on_sigterm, SIGTERM);
	ev_signal_init(&sigi, on_sigterm, SIGINT);
	ev_signal_start(loop, &sig);
	ev_signal_start(loop, &sigi);
	printf("READY %d\n", rpc_server_port(srv));
	fflush(stdout);
	ev_run(loop, 0);
	rpc_server_free(srv);
	ev_run(loop, EVRUN_NOWAIT);
	printf("cancels=%d\nfinished=%d\n", testsvc.cancels, testsvc.finished);
	fflush(stdout);
	bufpool_thread_trim();
	return 0;
}

/* ------------------------------------------------------------ client */

typedef struct seen {
	struct ev_loop *loop;
	int messages;
	size_t bytes;
	uint64_t rows;
	int bad;
	int cancel_after; /* cancel when this many messages came */
	int rounds;	  /* bidi: echoes still wanted */
	int echoes;
	uint64_t count;
} seen;

static void print_kv(const char *k, const char *v)
{
	/* One value per line; keep it printable. */
	printf("%s=", k);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		putchar(*p == '\n' ? ' ' : *p);
	putchar('\n');
}

static void on_close(rpc_client_call *call, int status, const char *message, const uint8_t *err,
		     size_t err_len, void *arg)
{
	(void)call;
	seen *s = arg;
	printf("status=%d\n", status);
	print_kv("message", message);
	printf("messages=%d\nbytes=%zu\nrows=%llu\nbad=%d\n", s->messages, s->bytes, (unsigned long long)s->rows,
	       s->bad);
	if (s->echoes || s->count)
		printf("echoes=%d\ncount=%llu\n", s->echoes, (unsigned long long)s->count);
	if (err) {
		Mtrpc__RPCError *e = mtrpc__rpcerror__unpack(NULL, err_len, err);
		if (!e) {
			printf("detail=unparsable\n");
		} else {
			printf("detail_code=%d\n", e->code);
			print_kv("detail_message", e->message);
			if (e->pg_diagnostic) {
				const Query__PgDiagnostic *d = e->pg_diagnostic;
				print_kv("pg_severity", d->severity);
				print_kv("pg_code", d->code);
				print_kv("pg_message", d->message);
				print_kv("pg_detail", d->detail);
				print_kv("pg_hint", d->hint);
				printf("pg_position=%d\n", d->position);
				print_kv("pg_constraint", d->constraint_name);
			}
			mtrpc__rpcerror__free_unpacked(e, NULL);
		}
	}
	fflush(stdout);
	ev_break(s->loop, EVBREAK_ALL);
}

static void eq_msg(rpc_client_call *call, const ProtobufCMessage *msg, void *arg)
{
	(void)call;
	seen *s = arg;
	const Multipoolerservice__ExecuteQueryResponse *r = (const void *)msg;
	s->messages++;
	if (r->result) {
		s->rows = r->result->rows_affected;
		s->bytes += r->result->passthrough_block.len;
	}
}

static void se_msg(rpc_client_call *call, const ProtobufCMessage *msg, void *arg)
{
	seen *s = arg;
	const Multipoolerservice__StreamExecuteResponse *r = (const void *)msg;
	if (!r->result || r->result->payload_case != QUERY__QUERY_RESULT_PAYLOAD__PAYLOAD_RESULT ||
	    r->result->result->rows_affected != (uint64_t)s->messages) {
		s->bad++;
	} else {
		const Query__QueryResult *q = r->result->result;
		for (size_t k = 0; k < q->passthrough_block.len; k++)
			if (q->passthrough_block.data[k] != testsvc_byte(q->rows_affected, k))
				s->bad++;
		s->bytes += q->passthrough_block.len;
	}
	s->messages++;
	if (s->cancel_after && s->messages == s->cancel_after)
		rpc_client_cancel(call);
}

static void bidi_send(rpc_client_call *call, int round)
{
	uint8_t buf[1000];
	memset(buf, round & 0xff, sizeof buf);
	Multipoolerservice__CopyBidiExecuteRequest rq = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__INIT;
	rq.phase = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__PHASE__DATA;
	rq.data.data = buf;
	rq.data.len = sizeof buf;
	rpc_client_send(call, &rq.base);
}

static void bidi_msg(rpc_client_call *call, const ProtobufCMessage *msg, void *arg)
{
	seen *s = arg;
	const Multipoolerservice__CopyBidiExecuteResponse *r = (const void *)msg;
	s->messages++;
	if (r->phase == MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_RESPONSE__PHASE__DATA) {
		s->echoes++;
		s->bytes += r->data.len;
		for (size_t k = 0; k < r->data.len; k++)
			if (r->data.data[k] != (uint8_t)s->echoes)
				s->bad++;
		if (s->echoes < s->rounds) {
			bidi_send(call, s->echoes + 1);
		} else {
			Multipoolerservice__CopyBidiExecuteRequest rq =
				MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__INIT;
			rq.phase = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__PHASE__DONE;
			rpc_client_send(call, &rq.base);
			rpc_client_close_send(call);
		}
	} else if (r->phase == MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_RESPONSE__PHASE__RESULT && r->result) {
		s->count = r->result->rows_affected;
	}
}

static int run_client(const char *target, const char *scenario, const char *arg)
{
	struct ev_loop *loop = ev_default_loop(0);
	rpc_channel *ch = rpc_channel_new(loop, target, NULL);
	seen s = {.loop = loop};
	rpc_client_ops ops = {.on_close = on_close};
	rpc_client_call *c;

	if (strcmp(scenario, "unary") == 0 || strcmp(scenario, "error") == 0 || strcmp(scenario, "deadline") == 0) {
		ops.on_message = eq_msg;
		double timeout = strcmp(scenario, "deadline") == 0 ? atof(arg ? arg : "0.5") : 10;
		c = rpc_client_start(ch, TESTSVC_PREFIX "ExecuteQuery",
				     &multipoolerservice__execute_query_response__descriptor, timeout, &ops, &s);
		Multipoolerservice__ExecuteQueryRequest rq = MULTIPOOLERSERVICE__EXECUTE_QUERY_REQUEST__INIT;
		rq.query = strcmp(scenario, "unary") == 0 ? (char *)(arg ? arg : "") :
			   strcmp(scenario, "error") == 0 ? "error" : "sleep";
		rpc_client_send(c, &rq.base);
		rpc_client_close_send(c);
	} else if (strcmp(scenario, "stream") == 0 || strcmp(scenario, "cancel") == 0) {
		ops.on_message = se_msg;
		if (strcmp(scenario, "cancel") == 0)
			s.cancel_after = 3;
		c = rpc_client_start(ch, TESTSVC_PREFIX "StreamExecute",
				     &multipoolerservice__stream_execute_response__descriptor, 60, &ops, &s);
		Multipoolerservice__StreamExecuteRequest rq = MULTIPOOLERSERVICE__STREAM_EXECUTE_REQUEST__INIT;
		rq.query = strcmp(scenario, "cancel") == 0 ? "1000000000:100" : (char *)(arg ? arg : "10");
		rpc_client_send(c, &rq.base);
		rpc_client_close_send(c);
	} else if (strcmp(scenario, "bidi") == 0) {
		ops.on_message = bidi_msg;
		s.rounds = atoi(arg ? arg : "10");
		c = rpc_client_start(ch, TESTSVC_PREFIX "CopyBidiExecute",
				     &multipoolerservice__copy_bidi_execute_response__descriptor, 60, &ops, &s);
		Multipoolerservice__CopyBidiExecuteRequest rq = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__INIT;
		rq.phase = MULTIPOOLERSERVICE__COPY_BIDI_EXECUTE_REQUEST__PHASE__INITIATE;
		rq.query = "COPY t FROM STDIN";
		rpc_client_send(c, &rq.base);
		bidi_send(c, 1);
	} else {
		fprintf(stderr, "rpc_interop: unknown scenario %s\n", scenario);
		rpc_channel_free(ch);
		return 2;
	}
	ev_run(loop, 0);
	rpc_channel_free(ch);
	ev_run(loop, EVRUN_NOWAIT);
	bufpool_thread_trim();
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 3 && strcmp(argv[1], "server") == 0)
		return run_server(argv[2]);
	if (argc >= 4 && strcmp(argv[1], "client") == 0)
		return run_client(argv[2], argv[3], argc > 4 ? argv[4] : NULL);
	fprintf(stderr, "usage: rpc_interop server ADDR | client TARGET SCENARIO [ARG]\n");
	return 2;
}
