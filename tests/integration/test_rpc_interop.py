#!/usr/bin/python3
# src/rpc against a reference gRPC stack (Debian's python3-grpcio), both
# directions: grpcio client -> rpc_interop server, rpc_interop client ->
# grpcio server. Stubs come from proto/ through protoc and grpc_python_plugin.
#
# The tool is $PGW_RPC_INTEROP, else rpc_interop beside the gateway binary,
# else <repo>/build/rpc_interop; the tests skip only when it is missing.
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from concurrent import futures

import harness

PREFIX = "/multipoolerservice.MultiPoolerService/"


def tool_path():
    p = os.environ.get("PGW_RPC_INTEROP")
    if p:
        return p
    gw = os.environ.get("PGW_GATEWAY")
    if gw:
        cand = os.path.join(os.path.dirname(os.path.abspath(gw)), "rpc_interop")
        if os.path.exists(cand):
            return cand
    return os.path.join(harness.REPO, "build", "rpc_interop")


def testsvc_byte(i, k):
    return (i * 31 + k) & 0xFF


class Stubs:
    """Python modules generated from proto/ into a temporary directory."""

    dir = None

    @classmethod
    def load(cls):
        if cls.dir:
            return
        plugin = shutil.which("grpc_python_plugin")
        if not plugin or not shutil.which("protoc"):
            raise RuntimeError("protoc and grpc_python_plugin are needed "
                               "(Debian: protobuf-compiler, protobuf-compiler-grpc)")
        d = tempfile.mkdtemp(prefix="pgw-rpc-stubs-")
        proto = os.path.join(harness.REPO, "proto")
        files = sorted(os.path.join(proto, f) for f in os.listdir(proto) if f.endswith(".proto"))
        subprocess.run(["protoc", "--python_out=" + d, "--grpc_python_out=" + d,
                        "--plugin=protoc-gen-grpc_python=" + plugin, "-I", proto] + files,
                       check=True)
        sys.path.insert(0, d)
        cls.dir = d
        global grpc, mps, mps_grpc, query_pb2, mtrpc_pb2, status_pb2
        import grpc  # noqa: F811
        import multipoolerservice_pb2 as mps  # noqa: F811
        import multipoolerservice_pb2_grpc as mps_grpc  # noqa: F811
        import query_pb2  # noqa: F811
        import mtrpc_pb2  # noqa: F811
        import google_rpc_status_pb2 as status_pb2  # noqa: F811

    @classmethod
    def cleanup(cls):
        if cls.dir:
            sys.path.remove(cls.dir)
            shutil.rmtree(cls.dir, ignore_errors=True)
            cls.dir = None


def full_diagnostic():
    return query_pb2.PgDiagnostic(
        severity="ERROR", code="23505", message="duplicate key value violates unique constraint",
        detail="Key (id)=(1) already exists.", hint="a hint", position=7, internal_position=2,
        internal_query="INSERT 1", where="SQL function", schema_name="public", table_name="t",
        column_name="id", data_type_name="int4", constraint_name="t_pkey", message_type=ord("E"))


class PyServicer:
    """The test service in grpcio, answering as tests/rpc/rpc_testsvc.c does."""

    def __init__(self):
        self.cancelled = []
        self.lock = threading.Lock()

    def _note(self, what):
        with self.lock:
            self.cancelled.append(what)

    def ExecuteQuery(self, request, context):
        if request.query == "error":
            err = mtrpc_pb2.RPCError(message="duplicate key", code=mtrpc_pb2.ALREADY_EXISTS,
                                     pg_diagnostic=full_diagnostic())
            st = status_pb2.Status(code=6, message="duplicate key: ünïcode 100%", details=[
                status_pb2.Any(type_url="type.googleapis.com/mtrpc.RPCError",
                               value=err.SerializeToString())])
            context.set_trailing_metadata((("grpc-status-details-bin", st.SerializeToString()),))
            context.abort(grpc.StatusCode.ALREADY_EXISTS, "duplicate key: ünïcode 100%")
        if request.query == "sleep":
            done = threading.Event()
            context.add_callback(done.set)
            done.wait(30)
            if not context.is_active():
                self._note("sleep")
            return mps.ExecuteQueryResponse()
        q = request.query.encode()
        return mps.ExecuteQueryResponse(result=query_pb2.QueryResult(
            rows_affected=len(q), command_tag="ECHO %d" % len(q), passthrough_block=q))

    def StreamExecute(self, request, context):
        n, _, size = request.query.partition(":")
        n, size = int(n), int(size or 16)
        finished = []
        context.add_callback(lambda: None if finished else self._note("stream"))
        for i in range(n):
            if not context.is_active():
                return
            if i == n - 1:
                finished.append(True)
            block = bytes(testsvc_byte(i, k) for k in range(size))
            yield mps.StreamExecuteResponse(result=query_pb2.QueryResultPayload(
                result=query_pb2.QueryResult(rows_affected=i, command_tag="row %d" % i,
                                             passthrough_block=block, passthrough_row_count=n)))

    def CopyBidiExecute(self, request_iterator, context):
        count = nbytes = 0
        Rq, Rs = mps.CopyBidiExecuteRequest, mps.CopyBidiExecuteResponse
        for rq in request_iterator:
            if rq.phase == Rq.INITIATE:
                yield Rs(phase=Rs.READY)
            elif rq.phase == Rq.DATA:
                count += 1
                nbytes += len(rq.data)
                yield Rs(phase=Rs.DATA, data=rq.data)
            elif rq.phase == Rq.DONE:
                break
        yield Rs(phase=Rs.RESULT, result=query_pb2.QueryResult(
            rows_affected=count, command_tag="COPY %d" % nbytes))


def parse_kv(text):
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v
    return out


class CServer:
    """rpc_interop serving the test service on a free TCP port."""

    def __init__(self, tool):
        self.p = subprocess.Popen([tool, "server", "127.0.0.1:0"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        if not line.startswith("READY "):
            self.p.kill()
            raise RuntimeError("rpc_interop server did not start: %r %s" % (line, self.p.stderr.read()))
        self.port = int(line.split()[1])
        self.target = "127.0.0.1:%d" % self.port

    def stop(self):
        """SIGTERM; returns its final counters (cancels, finished)."""
        self.p.terminate()
        out, err = self.p.communicate(timeout=20)
        if self.p.returncode != 0:
            raise AssertionError("rpc_interop server exited %d: %s" % (self.p.returncode, err))
        if "ERROR: " in err or "runtime error" in err:
            raise AssertionError("sanitizer report from rpc_interop:\n" + err)
        return parse_kv(out)


class RpcInteropTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tool = tool_path()
        if not os.path.exists(cls.tool):
            raise unittest.SkipTest("rpc_interop not built (%s)" % cls.tool)
        Stubs.load()

    @classmethod
    def tearDownClass(cls):
        Stubs.cleanup()

    # ---- grpcio client -> C server

    def with_c_server(self):
        srv = CServer(self.tool)
        ch = grpc.insecure_channel(srv.target)
        return srv, ch, mps_grpc.MultiPoolerServiceStub(ch)

    def test_py_client_unary_stream_bidi(self):
        srv, ch, stub = self.with_c_server()
        try:
            r = stub.ExecuteQuery(mps.ExecuteQueryRequest(query="select 42"), timeout=5)
            self.assertEqual(r.result.rows_affected, 9)
            self.assertEqual(r.result.command_tag, "ECHO 9")
            self.assertEqual(r.result.passthrough_block, b"select 42")

            big = "x" * (3 << 20)
            r = stub.ExecuteQuery(mps.ExecuteQueryRequest(query=big), timeout=20)
            self.assertEqual(r.result.passthrough_block, big.encode())

            n = 0
            for i, m in enumerate(stub.StreamExecute(mps.StreamExecuteRequest(query="3000:64"), timeout=30)):
                res = m.result.result
                self.assertEqual(res.rows_affected, i)
                self.assertEqual(res.passthrough_block, bytes(testsvc_byte(i, k) for k in range(64)))
                n += 1
            self.assertEqual(n, 3000)

            # Ping-pong: each DATA waits for the echo of the previous one.
            Rq, Rs = mps.CopyBidiExecuteRequest, mps.CopyBidiExecuteResponse
            q = queue.Queue()

            def requests():
                yield Rq(phase=Rq.INITIATE, query="COPY t FROM STDIN")
                while True:
                    item = q.get(timeout=10)
                    if item is None:
                        yield Rq(phase=Rq.DONE)
                        return
                    yield item

            q.put(Rq(phase=Rq.DATA, data=b"\x01" * 500))
            echoes, result = 0, None
            for m in stub.CopyBidiExecute(requests(), timeout=30):
                if m.phase == Rs.DATA:
                    echoes += 1
                    self.assertEqual(m.data, bytes([echoes]) * 500)
                    q.put(Rq(phase=Rq.DATA, data=bytes([echoes + 1]) * 500) if echoes < 50 else None)
                elif m.phase == Rs.RESULT:
                    result = m.result
            self.assertEqual(echoes, 50)
            self.assertEqual(result.rows_affected, 50)
            self.assertEqual(result.command_tag, "COPY 25000")
        finally:
            ch.close()
            srv.stop()

    def test_py_client_error_details(self):
        srv, ch, stub = self.with_c_server()
        try:
            with self.assertRaises(grpc.RpcError) as cm:
                stub.ExecuteQuery(mps.ExecuteQueryRequest(query="error"), timeout=5)
            e = cm.exception
            self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertEqual(e.details(), "relation \"nope\" does not exist: ünïcode 100%")
            md = dict(e.trailing_metadata())
            st = status_pb2.Status.FromString(md["grpc-status-details-bin"])
            self.assertEqual(st.code, 3)
            self.assertEqual(len(st.details), 1)
            self.assertEqual(st.details[0].type_url, "type.googleapis.com/mtrpc.RPCError")
            err = mtrpc_pb2.RPCError.FromString(st.details[0].value)
            self.assertEqual(err.code, mtrpc_pb2.INVALID_ARGUMENT)
            d = err.pg_diagnostic
            self.assertEqual((d.severity, d.code, d.message, d.detail, d.hint, d.position,
                              d.internal_position, d.internal_query, d.where, d.schema_name,
                              d.table_name, d.column_name, d.data_type_name, d.constraint_name,
                              d.message_type),
                             ("ERROR", "42P01", "relation \"nope\" does not exist", "detail text",
                              "hint text", 15, 3, "SELECT 1 FROM nope", "PL/pgSQL function f() line 1",
                              "public", "nope", "col", "int4", "nope_pkey", ord("E")))

            unknown = ch.unary_unary(PREFIX + "NoSuchMethod")
            with self.assertRaises(grpc.RpcError) as cm:
                unknown(b"", timeout=5)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        finally:
            ch.close()
            srv.stop()

    def test_py_client_deadline_and_cancel(self):
        srv, ch, stub = self.with_c_server()
        stopped = False
        try:
            t0 = time.monotonic()
            with self.assertRaises(grpc.RpcError) as cm:
                stub.ExecuteQuery(mps.ExecuteQueryRequest(query="sleep"), timeout=0.3)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
            self.assertLess(time.monotonic() - t0, 30)  # no hang

            it = stub.StreamExecute(mps.StreamExecuteRequest(query="1000000000:100"), timeout=30)
            for _ in range(3):
                next(it)
            it.cancel()
            with self.assertRaises(grpc.RpcError) as cm:
                for _ in it:
                    pass
            self.assertEqual(cm.exception.code(), grpc.StatusCode.CANCELLED)
            ch.close()
            # The server has read all the client sent (the cancels too) and
            # closed its end: only its listening socket is left.
            harness.wait_until(lambda: set(harness.tcp_states(srv.p.pid, local_port=srv.port))
                               == {harness.TCP_LISTEN}, "the server has closed the connection")
            stats = srv.stop()
            stopped = True
            # Both calls ended in on_cancel on the C side.
            self.assertEqual(stats.get("cancels"), "2", stats)
        finally:
            if not stopped:
                ch.close()
                srv.stop()

    # ---- C client -> grpcio server

    def with_py_server(self):
        # The generated base answers UNIMPLEMENTED for the methods not here.
        servicer = type("Servicer", (PyServicer, mps_grpc.MultiPoolerServiceServicer), {})()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        mps_grpc.add_MultiPoolerServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        return server, servicer, "127.0.0.1:%d" % port

    def c_client(self, target, *args):
        p = subprocess.run([self.tool, "client", target] + list(args), capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("runtime error", p.stderr)
        self.assertNotIn("ERROR: ", p.stderr)
        return parse_kv(p.stdout)

    def test_c_client_against_grpcio(self):
        server, servicer, target = self.with_py_server()
        try:
            r = self.c_client(target, "unary", "hello world")
            self.assertEqual((r["status"], r["messages"], r["rows"], r["bytes"]), ("0", "1", "11", "11"), r)

            r = self.c_client(target, "stream", "2000:50")
            self.assertEqual((r["status"], r["messages"], r["bytes"], r["bad"]), ("0", "2000", "100000", "0"), r)

            r = self.c_client(target, "bidi", "20")
            self.assertEqual((r["status"], r["echoes"], r["count"], r["bad"]), ("0", "20", "20", "0"), r)

            r = self.c_client(target, "error")
            self.assertEqual(r["status"], "6", r)
            self.assertEqual(r["message"], "duplicate key: ünïcode 100%")
            self.assertEqual(r["detail_code"], str(mtrpc_pb2.ALREADY_EXISTS))
            self.assertEqual((r["pg_severity"], r["pg_code"], r["pg_detail"], r["pg_hint"], r["pg_position"],
                              r["pg_constraint"]),
                             ("ERROR", "23505", "Key (id)=(1) already exists.", "a hint", "7", "t_pkey"))

            r = self.c_client(target, "deadline", "0.3")
            self.assertEqual(r["status"], "4", r)

            r = self.c_client(target, "cancel")
            self.assertEqual(r["status"], "1", r)
            self.assertEqual(r["messages"], "3", r)

            # The grpcio side saw both calls end early.
            harness.wait_until(lambda: len(servicer.cancelled) >= 2, "both calls are cancelled")
            self.assertEqual(sorted(servicer.cancelled), ["sleep", "stream"])

            r = self.c_client(target, "unary", "")
            self.assertEqual((r["status"], r["rows"]), ("0", "0"), r)
        finally:
            server.stop(0)

    def test_c_client_unavailable(self):
        # Nothing listens: the call fails with UNAVAILABLE, not a hang.
        server, _, target = self.with_py_server()
        server.stop(0).wait()
        r = self.c_client(target, "unary", "x")
        self.assertEqual(r["status"], "14", r)


if __name__ == "__main__":
    unittest.main()
