/*
 * libFuzzer/AFL++ target: src/rpc's server on arbitrary HTTP/2 bytes sent
 * after a valid client preface and SETTINGS, and the gRPC message
 * reassembler on arbitrary bytes in arbitrary chunks.
 *
 * Input: byte 0 even: the rest goes to a server connection (a socketpair
 * adopted by rpc_server), then the peer hangs up and the server is freed;
 * odd: the rest is fed to rpc_reasm in chunks whose sizes come from byte 0.
 * Checked: no crash, no sanitizer report, no leak, and everything the
 * server allocated is given back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "multipoolerservice.pb-c.h"
#include "pgw/bufpool.h"
#include "rpc.h"
#include "rpc_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_message(rpc_call *call, const ProtobufCMessage *msg, void *arg)
{
	(void)arg;
	/* Answer something derived from the request, then more on half close. */
	Multipoolerservice__ExecuteQueryResponse resp = MULTIPOOLERSERVICE__EXECUTE_QUERY_RESPONSE__INIT;
	Query__QueryResult r = QUERY__QUERY_RESULT__INIT;
	r.rows_affected = protobuf_c_message_get_packed_size(msg);
	resp.result = &r;
	rpc_call_send(call, &resp.base);
	if (r.rows_affected & 1)
		rpc_call_pause(call);
	else
		rpc_call_resume(call);
}

static void fz_half_close(rpc_call *call, void *arg)
{
	(void)arg;
	rpc_call_finish(call, RPC_OK, "done", NULL);
}

static const rpc_method fz_methods[] = {
	{"/multipoolerservice.MultiPoolerService/ExecuteQuery",
	 &multipoolerservice__execute_query_request__descriptor, fz_message, fz_half_close, NULL, NULL},
	{"/multipoolerservice.MultiPoolerService/CopyBidiExecute",
	 &multipoolerservice__copy_bidi_execute_request__descriptor, fz_message, NULL, NULL, NULL},
};

/* "PRI * HTTP/2.0..." and an empty SETTINGS frame. */
static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
				 "\x00\x00\x00\x04\x00\x00\x00\x00\x00";

static void drain(int fd)
{
	uint8_t buf[65536];
	while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
		;
}

static void fuzz_server(const uint8_t *data, size_t size)
{
	static struct ev_loop *loop;
	if (!loop)
		loop = ev_loop_new(EVFLAG_AUTO);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return;
	int big = 1 << 20;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	rpc_server_config cfg = {.call_buffer = 4096};
	rpc_server *srv = rpc_server_new(loop, fz_methods, 2, &cfg);
	if (!srv || rpc_server_adopt(srv, sv[0]) != 0) {
		rpc_server_free(srv);
		close(sv[1]);
		return;
	}
	if (send(sv[1], preface, sizeof preface - 1, MSG_NOSIGNAL) < 0)
		goto out;
	/* In a few pieces, so frames also arrive split. */
	size_t off = 0;
	for (int piece = 0; off < size && piece < 4; piece++) {
		size_t n = piece == 3 ? size - off : (size - off + 1) / 2;
		ssize_t w = send(sv[1], data + off, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w <= 0)
			break;
		off += (size_t)w;
		for (int i = 0; i < 4; i++)
			ev_run(loop, EVRUN_NOWAIT);
		drain(sv[1]);
	}
	for (int i = 0; i < 4; i++)
		ev_run(loop, EVRUN_NOWAIT);
out:
	shutdown(sv[1], SHUT_WR);
	for (int i = 0; i < 2; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		drain(sv[1]);
	}
	rpc_server_free(srv);
	ev_run(loop, EVRUN_NOWAIT);
	close(sv[1]);
	bufpool_thread_trim();
}

static void fuzz_reasm(uint8_t mode, const uint8_t *data, size_t size)
{
	rpc_reasm r = {.max = 1u << 16};
	size_t chunk = (size_t)(mode >> 1) + 1;
	size_t off = 0;
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;
		const uint8_t *m;
		size_t ml;
		ssize_t k = rpc_reasm_feed(&r, data + off, n, &m, &ml);
		if (k < 0)
			break;
		if ((size_t)k > n)
			abort();
		if (m) {
			Query__QueryResult *q = query__query_result__unpack(NULL, ml, m);
			if (q)
				query__query_result__free_unpacked(q, NULL);
			rpc_reasm_done(&r);
		}
		off += (size_t)k;
	}
	rpc_reasm_free(&r);
	bufpool_thread_trim();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		fuzz_reasm(data[0], data + 1, size - 1);
	else
		fuzz_server(data + 1, size - 1);
	return 0;
}
