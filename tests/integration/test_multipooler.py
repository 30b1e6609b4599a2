#!/usr/bin/python3
# multipooler driven by a real gRPC stack: Debian's python3-grpcio with
# stubs generated at test time from proto/*.proto, against a real
# PostgreSQL 15; answers are checked against what psycopg2 gets directly.
#
# Packages: protobuf-compiler, protobuf-compiler-grpc, python3-grpcio,
# python3-protobuf, python3-psycopg2, postgresql-15.
# The binary: $PGW_MULTIPOOLER, default "multipooler" beside $PGW_GATEWAY
# (default build/multigateway).
import concurrent.futures
import os
import queue
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402

try:
    import grpc
except ImportError:  # pragma: no cover
    grpc = None

psycopg2 = harness.psycopg2

_STUBS = None


def stubs():
    """Generate the Python modules for proto/*.proto once per run."""
    global _STUBS
    if _STUBS is not None:
        return _STUBS
    plugin = shutil.which("grpc_python_plugin")
    if grpc is None or not shutil.which("protoc") or not plugin:
        raise unittest.SkipTest("needs python3-grpcio, protobuf-compiler, protobuf-compiler-grpc")
    out = tempfile.mkdtemp(prefix="pgw-mp-stubs.")
    protodir = os.path.join(harness.REPO, "proto")
    files = sorted(os.path.join(protodir, f) for f in os.listdir(protodir) if f.endswith(".proto"))
    subprocess.run(["protoc", "--python_out=" + out, "--grpc_python_out=" + out,
                    "--plugin=protoc-gen-grpc_python=" + plugin, "-I", protodir] + files,
                   check=True)
    sys.path.insert(0, out)
    import multipoolerservice_pb2 as svc  # noqa: E402
    import multipoolerservice_pb2_grpc as svc_grpc  # noqa: E402
    import query_pb2 as q  # noqa: E402
    import mtrpc_pb2 as mtrpc  # noqa: E402
    import google_rpc_status_pb2 as gstatus  # noqa: E402
    _STUBS = (svc, svc_grpc, q, mtrpc, gstatus, out)
    return _STUBS


def binary():
    b = os.environ.get("PGW_MULTIPOOLER")
    if b:
        return b
    gw = os.environ.get("PGW_GATEWAY") or harness.DEFAULT_GATEWAY
    return os.path.join(os.path.dirname(os.path.abspath(gw)), "multipooler")


class Pooler:
    """A multipooler process in front of one PostgreSQL."""

    def __init__(self, tmp, pg_port, *args):
        self.port = harness.free_port()
        self.logfile = os.path.join(tmp, "multipooler-%d.log" % self.port)
        self.argv = [binary(), "--listen", "127.0.0.1:%d" % self.port,
                     "--backend", "host=127.0.0.1 port=%d user=%s" % (pg_port, harness.SUPERUSER),
                     "--database", harness.MAIN_DB, "--pooler-id", "zone9/mp-test"] + list(args)
        env = harness.base_env()
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        logf = open(self.logfile, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL,
                                     env=env, preexec_fn=harness._set_pdeathsig)
        logf.close()
        deadline = time.monotonic() + 30
        import socket
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("multipooler exited at start:\n" + self.log())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("multipooler did not listen:\n" + self.log())
                time.sleep(0.05)

    def log(self):
        with open(self.logfile, errors="replace") as f:
            return f.read()

    def stop(self):
        """Stop it; returns problems found (exit status, sanitizer reports)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return ["multipooler did not stop on SIGTERM"]
        text = self.log()
        problems = []
        if self.proc.returncode != 0:
            problems.append("multipooler exit status %s" % self.proc.returncode)
        for word in ("Sanitizer", "runtime error:"):
            at = text.find(word)
            if at >= 0:
                problems.append(text[max(0, at - 300):at + 5000])
        return problems


def rpc_error(e):
    """The mtrpc.RPCError in a grpc.RpcError's trailers, or None."""
    svc, svc_grpc, q, mtrpc, gstatus, _ = stubs()
    for k, v in (e.trailing_metadata() or ()):
        if k == "grpc-status-details-bin":
            st = gstatus.Status()
            st.ParseFromString(v)
            for d in st.details:
                if d.type_url.endswith("mtrpc.RPCError"):
                    err = mtrpc.RPCError()
                    err.ParseFromString(d.value)
                    return err
    return None


def data_rows(block, formats=None):
    """Decode concatenated DataRow messages into lists of bytes/None."""
    rows, at = [], 0
    while at < len(block):
        t = block[at:at + 1]
        assert t == b"D", "not a DataRow: %r" % t
        n = struct.unpack("!i", block[at + 1:at + 5])[0]
        body = block[at + 5:at + 1 + n]
        at += 1 + n
        ncol = struct.unpack("!h", body[:2])[0]
        p, row = 2, []
        for _ in range(ncol):
            ln = struct.unpack("!i", body[p:p + 4])[0]
            p += 4
            if ln < 0:
                row.append(None)
            else:
                row.append(body[p:p + ln])
                p += ln
        rows.append(row)
    return rows


def collect(responses):
    """Result sets of a StreamExecute/PortalStreamExecute answer."""
    sets, notices, final, cur = [], [], None, None
    collect.parameter_status = {}
    for r in responses:
        if r.HasField("reserved_state"):
            final = r.reserved_state
        if not r.HasField("result"):
            continue
        p = r.result
        kind = p.WhichOneof("payload")
        if kind == "diagnostic":
            notices.append(p.diagnostic)
        elif kind == "result":
            res = p.result
            collect.parameter_status.update(res.parameter_status)
            if res.has_fields:
                cur = {"fields": list(res.fields), "rows": [], "tag": None, "blocks": 0}
                sets.append(cur)
            if res.passthrough_block:
                if cur is None:
                    cur = {"fields": [], "rows": [], "tag": None, "blocks": 0}
                    sets.append(cur)
                rows = data_rows(res.passthrough_block)
                assert len(rows) == res.passthrough_row_count
                cur["rows"] += rows
                cur["blocks"] += 1
            if res.command_tag:
                if cur is None:
                    cur = {"fields": [], "rows": [], "tag": None, "blocks": 0}
                    sets.append(cur)
                cur["tag"] = res.command_tag
                cur["affected"] = res.rows_affected
                cur = None
    return sets, notices, final


DIAG_MAP = [  # PgDiagnostic field, psycopg2 Diagnostics attribute
    ("severity", "severity"), ("code", "sqlstate"), ("message", "message_primary"),
    ("detail", "message_detail"), ("hint", "message_hint"),
    ("position", "statement_position"), ("internal_position", "internal_position"),
    ("internal_query", "internal_query"), ("where", "context"),
    ("schema_name", "schema_name"), ("table_name", "table_name"),
    ("column_name", "column_name"), ("data_type_name", "datatype_name"),
    ("constraint_name", "constraint_name"),
]


class MultipoolerBase(unittest.TestCase):
    pooler_args = ("--pool-size", "4", "--workers", "2", "--pool-timeout", "10")

    @classmethod
    def setUpClass(cls):
        stubs()
        if not os.access(binary(), os.X_OK):
            raise unittest.SkipTest("multipooler binary not found: %s" % binary())
        cls.tmp = tempfile.mkdtemp(prefix="pgw-mp.")
        os.chmod(cls.tmp, 0o755)
        cls.pg = harness.PgServer(cls.tmp)
        cls.pg.start()
        cls.admin_exec("CREATE ROLE %s SUPERUSER LOGIN" % harness.SUPERUSER, user="postgres")
        cls.admin_exec("CREATE DATABASE %s OWNER %s" % (harness.MAIN_DB, harness.SUPERUSER))
        cls.pooler = Pooler(cls.tmp, cls.pg.port, *cls.pooler_args)
        cls.channel = grpc.insecure_channel("127.0.0.1:%d" % cls.pooler.port)
        svc, svc_grpc, q, mtrpc, gstatus, _ = stubs()
        cls.stub = svc_grpc.MultiPoolerServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        problems = []
        try:
            cls.channel.close()
            problems = cls.pooler.stop()
        finally:
            cls.pg.stop()
            shutil.rmtree(cls.tmp, ignore_errors=True)
        if problems:
            raise AssertionError("multipooler shut down badly:\n" + "\n".join(problems))

    def tearDown(self):
        if self.pooler.proc.poll() is not None:
            self.fail("multipooler died:\n" + self.pooler.log()[-5000:])

    @classmethod
    def connect(cls, dbname=harness.MAIN_DB, user=harness.SUPERUSER):
        c = psycopg2.connect(host="127.0.0.1", port=cls.pg.port, dbname=dbname, user=user)
        c.autocommit = True
        return c

    @classmethod
    def admin_exec(cls, sql, params=None, dbname="postgres", user=harness.SUPERUSER):
        c = cls.connect(dbname=dbname, user=user)
        try:
            with c.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else None
        finally:
            c.close()

    # -- request helpers ------------------------------------------------
    def target(self, db=harness.MAIN_DB):
        svc, svc_grpc, q, mtrpc, gstatus, _ = stubs()
        t = q.Target()
        t.shard_key.database = db
        t.shard_key.table_group = "default"
        t.shard_key.shard = "0-inf"
        return t

    def options(self, reserved=0, settings=None, max_rows=0, user=harness.SUPERUSER):
        svc, svc_grpc, q, mtrpc, gstatus, _ = stubs()
        o = q.ExecuteOptions(user=user, reserved_connection_id=reserved, max_rows=max_rows)
        for k, v in (settings or {}).items():
            o.session_settings[k] = v
        return o

    def stream(self, sql, reserved=0, settings=None, reasons=0, begin="", timeout=30):
        svc, svc_grpc, q, mtrpc, gstatus, _ = stubs()
        req = svc.StreamExecuteRequest(query=sql, target=self.target(),
                                       options=self.options(reserved, settings))
        if reasons or begin:
            req.reservation_options.reasons = reasons
            req.reservation_options.begin_query = begin
        return collect(self.stub.StreamExecute(req, timeout=timeout))

    def direct(self, sql):
        c = self.connect()
        try:
            with c.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall() if cur.description else cur.statusmessage
        finally:
            c.close()


class MultipoolerTest(MultipoolerBase):
    def test_simple_and_multi_statement(self):
        sql = ("SELECT g::text AS n, repeat('x', g) AS s, NULL::text AS z "
               "FROM generate_series(1, 5) g; SELECT 'a'::text AS b; "
               "CREATE TABLE IF NOT EXISTS mp_simple(a int); INSERT INTO mp_simple VALUES (1), (2)")
        sets, notices, final = self.stream(sql)
        self.assertEqual([s["tag"] for s in sets], ["SELECT 5", "SELECT 1", "CREATE TABLE", "INSERT 0 2"])
        self.assertEqual(sets[3]["affected"], 2)
        c = self.connect()
        with c.cursor() as cur:
            cur.execute("SELECT g::text AS n, repeat('x', g) AS s, NULL::text AS z "
                        "FROM generate_series(1, 5) g")
            want = cur.fetchall()
            desc = cur.description
        c.close()
        got = [tuple(None if v is None else v.decode() for v in r) for r in sets[0]["rows"]]
        self.assertEqual(got, want)
        self.assertEqual([f.name for f in sets[0]["fields"]], [d.name for d in desc])
        self.assertEqual([f.data_type_oid for f in sets[0]["fields"]], [d.type_code for d in desc])
        self.assertEqual(final.reserved_connection_id, 0)
        self.assertEqual(final.pooler_id.cell, "zone9")
        self.assertEqual(final.pooler_id.name, "mp-test")
        self.assertGreater(final.backend_process_id, 0)

    def test_error_has_every_field(self):
        self.direct("DROP TABLE IF EXISTS mp_err; CREATE TABLE mp_err("
                    "id int CONSTRAINT mp_err_pos CHECK (id > 0))")
        sql = "SELECT 1 AS before; INSERT INTO mp_err VALUES (-1)"
        svc, svc_grpc, q, mtrpc, gstatus, _ = stubs()
        req = svc.StreamExecuteRequest(query=sql, target=self.target(), options=self.options())
        got = []
        with self.assertRaises(grpc.RpcError) as cm:
            for r in self.stub.StreamExecute(req, timeout=30):
                got.append(r)
        sets, _, final = collect(got)
        self.assertEqual(sets[0]["tag"], "SELECT 1")  # streamed before the error
        self.assertIsNotNone(final)
        err = rpc_error(cm.exception)
        self.assertIsNotNone(err, "no mtrpc.RPCError in the trailers")
        c = self.connect()
        try:
            with c.cursor() as cur:
                cur.execute("INSERT INTO mp_err VALUES (-1)")
            self.fail("no error directly")
        except psycopg2.Error as e:
            d = e.diag
        c.close()
        for ours, theirs in DIAG_MAP:
            want = getattr(d, theirs)
            have = getattr(err.pg_diagnostic, ours)
            if ours in ("position", "internal_position"):
                want = int(want) if want else 0
            else:
                want = want or ""
            self.assertEqual(have, want, ours)
        self.assertEqual(err.pg_diagnostic.constraint_name, "mp_err_pos")
        self.assertEqual(err.pg_diagnostic.message_type, ord("E"))
        # A syntax error has a position, as PostgreSQL reports it.
        with self.assertRaises(grpc.RpcError) as cm:
            self.stream("SELECT 1 FROMM x")
        c = self.connect()
        with self.assertRaises(psycopg2.Error) as direct:
            with c.cursor() as cur:
                cur.execute("SELECT 1 FROMM x")
        c.close()
        self.assertEqual(rpc_error(cm.exception).pg_diagnostic.position,
                         int(direct.exception.diag.statement_position))
        self.assertEqual(rpc_error(cm.exception).pg_diagnostic.code, "42601")

    def test_notice(self):
        sets, notices, _ = self.stream(
            "DO $$ BEGIN RAISE NOTICE 'hello %', 41 + 1 USING HINT = 'a hint'; END $$")
        self.assertEqual(sets[0]["tag"], "DO")
        self.assertEqual(len(notices), 1)
        self.assertEqual(notices[0].message, "hello 42")
        self.assertEqual(notices[0].hint, "a hint")
        self.assertEqual(notices[0].severity, "NOTICE")
        self.assertEqual(notices[0].message_type, ord("N"))

    def test_transaction_across_calls(self):
        svc, svc_grpc, q, mtrpc, gstatus, _ = stubs()
        self.direct("DROP TABLE IF EXISTS mp_tx; CREATE TABLE mp_tx(a int)")
        sets, _, st = self.stream("INSERT INTO mp_tx VALUES (1)", reasons=1, begin="BEGIN")
        self.assertNotEqual(st.reserved_connection_id, 0)
        self.assertEqual(st.reservation_reasons & 1, 1)
        rid, pid = st.reserved_connection_id, st.backend_process_id
        # Not visible outside, visible inside.
        self.assertEqual(self.direct("SELECT count(*) FROM mp_tx")[0][0], 0)
        sets, _, st2 = self.stream("SELECT count(*)::text FROM mp_tx", reserved=rid)
        self.assertEqual(sets[0]["rows"], [[b"1"]])
        self.assertEqual(st2.reserved_connection_id, rid)
        self.assertEqual(st2.backend_process_id, pid)
        r = self.stub.ConcludeTransaction(svc.ConcludeTransactionRequest(
            target=self.target(), options=self.options(rid),
            conclusion=svc.ConcludeTransactionRequest.ROLLBACK), timeout=30)
        self.assertEqual(r.result.command_tag, "ROLLBACK")
        self.assertEqual(r.reserved_state.reserved_connection_id, 0)
        self.assertEqual(self.direct("SELECT count(*) FROM mp_tx")[0][0], 0)
        # The id is gone.
        with self.assertRaises(grpc.RpcError) as cm:
            self.stream("SELECT 1", reserved=rid)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        # Commit through ConcludeTransaction.
        _, _, st = self.stream("INSERT INTO mp_tx VALUES (2)", reasons=1)
        r = self.stub.ConcludeTransaction(svc.ConcludeTransactionRequest(
            options=self.options(st.reserved_connection_id),
            conclusion=svc.ConcludeTransactionRequest.COMMIT), timeout=30)
        self.assertEqual(r.result.command_tag, "COMMIT")
        self.assertEqual(self.direct("SELECT count(*) FROM mp_tx")[0][0], 1)
        # BEGIN and COMMIT as queries.
        _, _, st = self.stream("BEGIN; INSERT INTO mp_tx VALUES (3)")
        self.assertEqual(st.reservation_reasons, 1)
        _, _, st3 = self.stream("COMMIT", reserved=st.reserved_connection_id)
        self.assertEqual(st3.reserved_connection_id, 0)
        self.assertEqual(self.direct("SELECT count(*) FROM mp_tx")[0][0], 2)
        # ReleaseReservedConnection rolls back.
        _, _, st = self.stream("BEGIN; INSERT INTO mp_tx VALUES (4)")
        r = self.stub.ReleaseReservedConnection(svc.ReleaseReservedConnectionRequest(
            options=self.options(st.reserved_connection_id)), timeout=30)
        self.assertEqual(r.reserved_state.reserved_connection_id, 0)
        self.assertEqual(self.direct("SELECT count(*) FROM mp_tx")[0][0], 2)

    def test_session_settings(self):
        sets, _, _ = self.stream("SHOW work_mem; SHOW application_name",
                                 settings={"work_mem": "1234kB", "application_name": "mp app"})
        self.assertEqual(sets[0]["rows"], [[b"1234kB"]])
        self.assertEqual(sets[1]["rows"], [[b"mp app"]])
        # ParameterStatus the server sent reaches the caller.
        sets, _, _ = self.stream("SET application_name = 'renamed'; SELECT 1")
        self.assertEqual(collect.parameter_status.get("application_name"), "renamed")
        # Without them the connection is as PostgreSQL's defaults have it.
        for _ in range(6):
            sets, _, _ = self.stream("SHOW work_mem")
            self.assertEqual(sets[0]["rows"], [[b"4MB"]])
        # A SET run as a query does not leak to the next caller.
        for _ in range(6):
            self.stream("SET work_mem = '2MB'")
        for _ in range(6):
            sets, _, _ = self.stream("SHOW work_mem")
            self.assertEqual(sets[0]["rows"], [[b"4MB"]])

    def portal(self, query, types, values, formats=(), result_formats=(), max_rows=0,
               reserved=0, name="", describe=True):
        svc, svc_grpc, q, mtrpc, gstatus, _ = stubs()
        req = svc.PortalStreamExecuteRequest(target=self.target(),
                                             options=self.options(reserved, max_rows=max_rows))
        req.prepared_statement.name = "s1"
        req.prepared_statement.query = query
        req.prepared_statement.param_types.extend(types)
        req.portal.name = name
        req.portal.prepared_statement_name = "s1"
        for v in values:
            req.portal.param_lengths.append(-1 if v is None else len(v))
        req.portal.param_values = b"".join(v for v in values if v is not None)
        req.portal.param_formats.extend(formats)
        req.portal.result_formats.extend(result_formats)
        req.portal_options.include_describe = describe
        return collect(self.stub.PortalStreamExecute(req, timeout=30))

    def test_portal_text_and_binary(self):
        q = "SELECT $1::int4 + 1 AS a, $2::text AS b, $3::text IS NULL AS c"
        sets, _, st = self.portal(q, [23, 25, 25], [b"41", b"hi", None])
        self.assertEqual([f.name for f in sets[0]["fields"]], ["a", "b", "c"])
        self.assertEqual(sets[0]["rows"], [[b"42", b"hi", b"t"]])
        self.assertEqual(sets[0]["tag"], "SELECT 1")
        self.assertEqual(st.reserved_connection_id, 0)
        # Binary parameter and binary result; the statement is reused.
        sets, _, _ = self.portal(q, [23, 25, 25], [struct.pack("!i", 41), b"x", b"y"],
                                 formats=[1, 0, 0], result_formats=[1, 0, 0])
        self.assertEqual(sets[0]["rows"], [[struct.pack("!i", 42), b"x", b"f"]])
        self.assertEqual(sets[0]["fields"][0].format, 1)
        # The server error for a bad parameter, as PostgreSQL words it.
        with self.assertRaises(grpc.RpcError) as cm:
            self.portal(q, [23, 25, 25], [b"nope", b"x", b"y"])
        self.assertEqual(rpc_error(cm.exception).pg_diagnostic.code, "22P02")
        # Statements are cached per connection under _pgw_ names.
        names = self.direct("SELECT 1")  # just a round trip
        self.assertTrue(names)

    def test_portal_max_rows_across_calls(self):
        q = "SELECT g::text FROM generate_series(1, 10) g"
        sets, _, st = self.portal(q, [], [], max_rows=4, name="p1")
        self.assertEqual(len(sets[0]["rows"]), 4)
        self.assertIsNone(sets[0]["tag"])
        self.assertTrue(st.reservation_reasons & 4, st)
        rid = st.reserved_connection_id
        sets, _, st = self.portal(q, [], [], max_rows=4, name="p1", reserved=rid, describe=False)
        self.assertEqual([r[0] for r in sets[0]["rows"]], [b"5", b"6", b"7", b"8"])
        self.assertEqual(st.reserved_connection_id, rid)
        sets, _, st = self.portal(q, [], [], max_rows=4, name="p1", reserved=rid, describe=False)
        self.assertEqual([r[0] for r in sets[0]["rows"]], [b"9", b"10"])
        self.assertEqual(sets[0]["tag"], "SELECT 2")
        self.assertEqual(st.reserved_connection_id, 0)

    def test_describe(self):
        svc, svc_grpc, q, mtrpc, gstatus, _ = stubs()
        req = svc.DescribeRequest(target=self.target(), options=self.options())
        req.prepared_statement.query = "SELECT $1::int4 AS a, now() AS t, $2::text AS b"
        d = self.stub.Describe(req, timeout=30).description
        self.assertEqual([p.data_type_oid for p in d.parameters], [23, 25])
        self.assertEqual([(f.name, f.data_type_oid) for f in d.fields],
                         [("a", 23), ("t", 1184), ("b", 25)])
        # A portal: formats as bound.
        req.portal.param_lengths.extend([1, 1])
        req.portal.param_values = b"1x"
        req.portal.result_formats.append(1)
        d = self.stub.Describe(req, timeout=30).description
        self.assertEqual([f.format for f in d.fields], [1, 1, 1])
        # A bad statement: the server's error.
        req = svc.DescribeRequest(target=self.target(), options=self.options())
        req.prepared_statement.query = "SELECT * FROM no_such_table"
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.Describe(req, timeout=30)
        self.assertEqual(rpc_error(cm.exception).pg_diagnostic.code, "42P01")

    def test_auth_credentials(self):
        svc, svc_grpc, q, mtrpc, gstatus, _ = stubs()
        self.admin_exec("DROP ROLE IF EXISTS mp_scram; DROP ROLE IF EXISTS mp_nopw; "
                        "SET password_encryption = 'scram-sha-256'; "
                        "CREATE ROLE mp_scram LOGIN PASSWORD 'secret'; CREATE ROLE mp_nopw LOGIN")
        want = self.admin_exec("SELECT rolpassword FROM pg_authid WHERE rolname = 'mp_scram'")[0][0]
        r = self.stub.GetAuthCredentials(svc.GetAuthCredentialsRequest(
            database=harness.MAIN_DB, username="mp_scram"), timeout=30)
        self.assertTrue(r.scram_hash.startswith("SCRAM-SHA-256$"))
        self.assertEqual(r.scram_hash, want)
        r = self.stub.GetAuthCredentials(svc.GetAuthCredentialsRequest(
            database=harness.MAIN_DB, username="mp_nopw"), timeout=30)
        self.assertEqual(r.scram_hash, "")
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.GetAuthCredentials(svc.GetAuthCredentialsRequest(
                database=harness.MAIN_DB, username="no'such\\user"), timeout=30)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

    def copy_call(self, requests):
        """Drive CopyBidiExecute; requests is a callable(responses_so_far)."""
        return self.stub.CopyBidiExecute(requests, timeout=60)

    def test_copy_in_and_out(self):
        svc, svc_grpc, q, mtrpc, gstatus, _ = stubs()
        self.direct("DROP TABLE IF EXISTS mp_copy; CREATE TABLE mp_copy(a int, b text)")
        R = svc.CopyBidiExecuteRequest
        ready = threading.Event()
        out_q = queue.Queue()

        def reqs():
            yield R(phase=R.INITIATE, query="COPY mp_copy FROM STDIN", target=self.target(),
                    options=self.options())
            ready.wait(30)
            for i in range(1000):
                yield R(phase=R.DATA, data=("%d\trow %d\n" % (i, i)).encode())
            yield R(phase=R.DONE)

        got = []
        for resp in self.stub.CopyBidiExecute(reqs(), timeout=60):
            got.append(resp)
            if resp.phase == svc.CopyBidiExecuteResponse.READY:
                self.assertNotEqual(resp.reserved_connection_id, 0)
                ready.set()
        self.assertEqual([r.phase for r in got][0], svc.CopyBidiExecuteResponse.READY)
        self.assertEqual(got[-1].phase, svc.CopyBidiExecuteResponse.RESULT)
        self.assertEqual(got[-1].result.command_tag, "COPY 1000")
        self.assertEqual(self.direct("SELECT count(*), sum(a) FROM mp_copy")[0], (1000, 499500))
        del out_q

        # COPY TO STDOUT: the same bytes psycopg2 gets.
        def reqs_out():
            yield R(phase=R.INITIATE, query="COPY mp_copy TO STDOUT", target=self.target(),
                    options=self.options())
        data = b""
        phases = []
        for resp in self.stub.CopyBidiExecute(reqs_out(), timeout=60):
            phases.append(resp.phase)
            if resp.phase == svc.CopyBidiExecuteResponse.DATA:
                data += resp.data
        import io
        c = self.connect()
        buf = io.BytesIO()
        with c.cursor() as cur:
            cur.copy_expert("COPY mp_copy TO STDOUT", buf)
        c.close()
        self.assertEqual(data, buf.getvalue())
        self.assertEqual(phases[0], svc.CopyBidiExecuteResponse.READY)
        self.assertEqual(phases[-1], svc.CopyBidiExecuteResponse.RESULT)

        # FAIL: the server's error, nothing copied.
        ready2 = threading.Event()

        def reqs_fail():
            yield R(phase=R.INITIATE, query="COPY mp_copy FROM STDIN", target=self.target(),
                    options=self.options())
            ready2.wait(30)
            yield R(phase=R.DATA, data=b"5\tfive\n")
            yield R(phase=R.FAIL, error_message="changed my mind")
        with self.assertRaises(grpc.RpcError) as cm:
            for resp in self.stub.CopyBidiExecute(reqs_fail(), timeout=60):
                if resp.phase == svc.CopyBidiExecuteResponse.READY:
                    ready2.set()
        self.assertEqual(rpc_error(cm.exception).pg_diagnostic.code, "57014")
        self.assertEqual(self.direct("SELECT count(*) FROM mp_copy")[0][0], 1000)

        # Wrong phases: an error, no crash.
        def bad():
            yield R(phase=R.DATA, data=b"x")
        with self.assertRaises(grpc.RpcError) as cm:
            list(self.stub.CopyBidiExecute(bad(), timeout=30))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_bad_ids(self):
        svc, svc_grpc, q, mtrpc, gstatus, _ = stubs()
        for rid in (1, 12345, 2 ** 64 - 1):
            with self.assertRaises(grpc.RpcError) as cm:
                self.stream("SELECT 1", reserved=rid)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
            with self.assertRaises(grpc.RpcError) as cm:
                self.stub.ReleaseReservedConnection(svc.ReleaseReservedConnectionRequest(
                    options=self.options(rid)), timeout=30)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        sets, _, _ = self.stream("SELECT 1::text")
        self.assertEqual(sets[0]["rows"], [[b"1"]])

    def test_hostile_requests(self):
        svc, svc_grpc, q, mtrpc, gstatus, _ = stubs()
        # Parameter lengths that do not add up to the bytes given.
        with self.assertRaises(grpc.RpcError) as cm:
            req = svc.PortalStreamExecuteRequest(target=self.target(), options=self.options())
            req.prepared_statement.query = "SELECT $1::text"
            req.portal.param_lengths.extend([5])
            req.portal.param_values = b"ab"
            list(self.stub.PortalStreamExecute(req, timeout=30))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        R = svc.CopyBidiExecuteRequest
        self.direct("DROP TABLE IF EXISTS mp_abandon; CREATE TABLE mp_abandon(a int)")
        # INITIATE twice.
        first = threading.Event()

        def twice():
            yield R(phase=R.INITIATE, query="COPY mp_abandon FROM STDIN", target=self.target(),
                    options=self.options())
            first.wait(30)
            yield R(phase=R.INITIATE, query="SELECT 1", target=self.target(),
                    options=self.options())
        with self.assertRaises(grpc.RpcError) as cm:
            for resp in self.stub.CopyBidiExecute(twice(), timeout=30):
                first.set()
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        # A COPY FROM STDIN abandoned by a cancelled call.
        ready = threading.Event()
        stop = threading.Event()

        def abandon():
            yield R(phase=R.INITIATE, query="COPY mp_abandon FROM STDIN", target=self.target(),
                    options=self.options())
            ready.wait(30)
            yield R(phase=R.DATA, data=b"1\n")
            stop.wait(30)
        call = self.stub.CopyBidiExecute(abandon(), timeout=60)
        for resp in call:
            if resp.phase == svc.CopyBidiExecuteResponse.READY:
                ready.set()
                harness.wait_running("COPY mp_abandon FROM STDIN", admin_exec=self.admin_exec)
                call.cancel()
                break
        stop.set()
        # A suspended portal, then a plain query on its reservation, and a
        # suspended portal released.
        qy = "SELECT g::text FROM generate_series(1, 10) g"
        _, _, st = self.portal(qy, [], [], max_rows=3, name="px")
        sets, _, st2 = self.stream("SELECT 'after'::text", reserved=st.reserved_connection_id)
        self.assertEqual(sets[0]["rows"], [[b"after"]])
        self.assertEqual(st2.reserved_connection_id, 0)
        _, _, st = self.portal(qy, [], [], max_rows=3, name="py")
        self.stub.ReleaseReservedConnection(svc.ReleaseReservedConnectionRequest(
            options=self.options(st.reserved_connection_id)), timeout=30)
        # Everything still works, and nothing is left open on the server.
        for _ in range(8):
            sets, _, _ = self.stream("SELECT count(*)::text FROM mp_abandon")
            self.assertEqual(sets[0]["rows"], [[b"0"]])
        harness.wait_until(
            lambda: self.admin_exec("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                                    "AND state <> 'idle' AND pid <> pg_backend_pid()",
                                    (harness.MAIN_DB,))[0][0] == 0,
            "nothing is left open on the server")

    def test_execute_query_unary(self):
        svc, svc_grpc, q, mtrpc, gstatus, _ = stubs()
        r = self.stub.ExecuteQuery(svc.ExecuteQueryRequest(
            query="SELECT g AS n, NULL::text AS z FROM generate_series(1,3) g",
            target=self.target(), options=self.options()), timeout=30)
        self.assertEqual(r.result.command_tag, "SELECT 3")
        self.assertEqual([list(x.lengths) for x in r.result.rows], [[1, -1]] * 3)
        self.assertEqual([x.values for x in r.result.rows], [b"1", b"2", b"3"])
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.ExecuteQuery(svc.ExecuteQueryRequest(
                query="SELECT g FROM generate_series(1,100) g", max_rows=10,
                target=self.target(), options=self.options()), timeout=30)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        # The connection is fine afterwards.
        r = self.stub.ExecuteQuery(svc.ExecuteQueryRequest(query="SELECT 7", target=self.target(),
                                                           options=self.options()), timeout=30)
        self.assertEqual(r.result.rows[0].values, b"7")

    def test_concurrent_calls_share_a_pool_of_4(self):
        def one(i):
            sets, _, _ = self.stream("SELECT pg_sleep(0.05), %d::text" % i)
            return sets[0]["rows"][0][1]
        with concurrent.futures.ThreadPoolExecutor(50) as ex:
            got = list(ex.map(one, range(50)))
        self.assertEqual(got, [str(i).encode() for i in range(50)])
        n = self.admin_exec("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND "
                            "backend_type = 'client backend' AND pid <> pg_backend_pid()",
                            (harness.MAIN_DB,))[0][0]
        self.assertLessEqual(n, 4)

    def test_deadline_cancels_the_query(self):
        t0 = time.monotonic()
        with self.assertRaises(grpc.RpcError) as cm:
            self.stream("SELECT pg_sleep(30)", timeout=1)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        # Gone from the server well before pg_sleep(30) would end by itself.
        harness.wait_until(lambda: not harness.running_pids("SELECT pg_sleep(30)",
                                                            admin_exec=self.admin_exec),
                           "the query is cancelled on the server",
                           timeout=max(1.0, 25.0 - (time.monotonic() - t0)))
        for _ in range(8):
            sets, _, _ = self.stream("SELECT 1::text")
            self.assertEqual(sets[0]["rows"], [[b"1"]])

    def test_large_result_read_slowly(self):
        svc, svc_grpc, q, mtrpc, gstatus, _ = stubs()
        pid = self.pooler.proc.pid
        base = harness.read_rss_kb(pid)
        req = svc.StreamExecuteRequest(
            query="SELECT g, repeat('x', 500) FROM generate_series(1, 200000) g",
            target=self.target(), options=self.options())
        rows = 0
        blocks = 0
        with harness.RssMonitor(pid) as mon:
            for r in self.stub.StreamExecute(req, timeout=300):
                if r.result.WhichOneof("payload") == "result":
                    rows += r.result.result.passthrough_row_count
                    if r.result.result.passthrough_block:
                        blocks += 1
                        if blocks % 4 == 0:
                            time.sleep(0.02)
        self.assertEqual(rows, 200000)
        grew = mon.max_kb - base
        # ~100 MB went through; the pooler holds a bounded window of it.
        self.assertLess(grew, 48 * 1024, "RSS grew by %d kB" % grew)


class HealthTest(MultipoolerBase):
    pooler_args = ("--pool-size", "2", "--workers", "1", "--reserved-timeout", "1")

    def test_forgotten_reservation_is_rolled_back(self):
        self.direct("DROP TABLE IF EXISTS mp_forgot; CREATE TABLE mp_forgot(a int)")
        _, _, st = self.stream("BEGIN; INSERT INTO mp_forgot VALUES (1)")
        self.assertNotEqual(st.reserved_connection_id, 0)
        # --reserved-timeout 1: the pooler rolls it back by itself.
        harness.wait_until(lambda: not self.admin_exec(
            "SELECT 1 FROM pg_stat_activity WHERE state LIKE 'idle in transaction%%' "
            "AND query = 'BEGIN; INSERT INTO mp_forgot VALUES (1)'"),
            "the forgotten reservation is rolled back")
        with self.assertRaises(grpc.RpcError) as cm:
            self.stream("COMMIT", reserved=st.reserved_connection_id)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertEqual(self.direct("SELECT count(*) FROM mp_forgot")[0][0], 0)
        n = self.admin_exec("SELECT count(*) FROM pg_stat_activity WHERE state LIKE "
                            "'idle in transaction%'")[0][0]
        self.assertEqual(n, 0)

    def test_health_follows_postgres(self):
        svc, svc_grpc, q, mtrpc, gstatus, _ = stubs()
        call = self.stub.StreamPoolerHealth(svc.StreamPoolerHealthRequest(), timeout=120)
        it = iter(call)
        first = next(it)
        self.assertTrue(first.serving)
        self.assertEqual(first.pooler_id.name, "mp-test")
        self.assertEqual(first.target.shard_key.database, harness.MAIN_DB)
        self.pg.stop()
        try:
            down = next(it)
            self.assertFalse(down.serving)
            self.assertTrue(down.reason)
        finally:
            r = self.pg._runuser(os.path.join(harness.PGBIN, "pg_ctl"), "-D", self.pg.datadir,
                                 "-l", self.pg.logfile, "-w", "-t", "60", "start")
            self.assertEqual(r.returncode, 0, r.stdout)
            self.pg.started = True
        up = next(it)
        self.assertTrue(up.serving)
        call.cancel()
        # Queries work again (connections from before the restart are dropped).
        sets, _, _ = harness.retry(lambda: self.stream("SELECT 1::text"),
                                   "the pooler serves again", errors=(grpc.RpcError,))
        self.assertEqual(sets[0]["rows"], [[b"1"]])


if __name__ == "__main__":
    unittest.main()
