#!/usr/bin/python3
"""Interop, the gateway as the gRPC client: multigateway --pooler pointed at
remote_server.py (a MultiPoolerService written with python3-grpcio over
libpq) in front of a real PostgreSQL 15. psql, psycopg2, psycopg 3 and raw
extended-protocol messages get through it what they get from PostgreSQL
directly: rows, NULLs, errors with every field, transactions, session
settings carried between transactions, parameters, cancel.

Packages: python3-grpcio, python3-protobuf, python3-psycopg2, python3-psycopg,
protobuf-compiler, postgresql-15."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
import pgwire  # noqa: E402

psycopg2 = harness.psycopg2
try:
    import grpc
    import psycopg
except ImportError:  # pragma: no cover
    psycopg = None

DB = "interop"


class ReferencePooler:
    """remote_server.py as its own process, as a real pooler would be."""

    def __init__(self, env):
        self.port = harness.free_port()
        self.logfile = os.path.join(env.tmp, "refpooler-%d.log" % self.port)
        argv = ["/usr/bin/python3", os.path.join(HERE, "remote_server.py"),
                "--listen", "127.0.0.1:%d" % self.port,
                "--backend", "host=127.0.0.1 port=%d" % env.pg.port]
        with open(self.logfile, "ab") as logf:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=logf, env=harness.base_env(),
                                         preexec_fn=harness._set_pdeathsig)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("remote_server.py exited at start:\n" + self.log())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("remote_server.py did not listen:\n" + self.log())
                time.sleep(0.1)

    def log(self):
        with open(self.logfile, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def diag(e):
    """The parts of a psycopg2 error a client can see and rely on."""
    d = e.diag
    return (e.pgcode, d.severity, d.message_primary, d.message_detail, d.message_hint,
            d.statement_position, d.context, d.schema_name, d.table_name, d.column_name,
            d.datatype_name, d.constraint_name)


def psycopg2_session(ep):
    """One client session as plain values: rows, tags, types, errors."""
    out = []
    conn = ep.connect(dbname=DB)
    cur = conn.cursor()

    def q(sql, args=None):
        try:
            cur.execute(sql, args)
            out.append((sql, cur.statusmessage, cur.rowcount,
                        [(c.name, c.type_code) for c in cur.description or []],
                        cur.fetchall() if cur.description else None))
        except psycopg2.Error as e:
            out.append((sql, "error", diag(e)))
            conn.rollback()
        out.append(("status", conn.get_transaction_status()))

    conn.autocommit = True
    q("SELECT 1 AS one, 'two'::text AS two, 3.5::numeric AS three")
    q("SELECT g, 'row ' || g AS label, CASE WHEN g % 3 = 0 THEN NULL ELSE g * 2 END AS maybe "
      "FROM generate_series(1, 500) g")
    q("SELECT NULL::int AS a, NULL::text AS b, ''::text AS c, 'ünïcödé ✓'::text AS d")
    q("SELECT %s::int + 1, %s::text, %s::date", (41, "it's quoted", "2024-02-29"))
    q("DROP TABLE IF EXISTS kv")                    # a notice
    q("CREATE TABLE kv (k int PRIMARY KEY, v text NOT NULL CHECK (v <> 'bad'))")
    q("INSERT INTO kv VALUES (1, 'one'), (2, 'two')")
    q("INSERT INTO kv VALUES (1, 'again')")          # 23505 with detail, table, constraint
    q("INSERT INTO kv VALUES (3, NULL)")             # 23502 with column
    q("INSERT INTO kv VALUES (4, 'bad')")            # 23514 with constraint
    q("SELECT nosuch FROM kv")                       # 42703 with a position
    q("DO $$BEGIN RAISE EXCEPTION 'custom failure' USING ERRCODE = '22023', "
      "DETAIL = 'the detail', HINT = 'the hint'; END$$")
    q("SELECT 1/0")
    q("UPDATE kv SET v = v || '!' WHERE k <= 2")
    q("DELETE FROM kv WHERE k = 2")
    q("SELECT * FROM kv ORDER BY k")

    conn.autocommit = False                          # psycopg2 opens transactions
    q("INSERT INTO kv VALUES (10, 'committed')")
    conn.commit()
    out.append(("status", conn.get_transaction_status()))
    q("INSERT INTO kv VALUES (11, 'rolled back')")
    q("SELECT count(*) FROM kv")
    conn.rollback()
    q("SELECT k, v FROM kv WHERE k >= 10 ORDER BY k")
    conn.commit()
    q("SELECT 1/0")                                  # a failed transaction...
    q("SELECT k FROM kv WHERE k = 10")               # ...is over after its rollback
    conn.commit()

    q("SET work_mem = '3MB'")                        # a setting made in one transaction
    q("SET TIME ZONE 'Asia/Tokyo'")
    conn.commit()
    q("SHOW work_mem")                               # is there in the next ones
    q("SELECT current_setting('TimeZone'), '2024-01-01 00:00:00+00'::timestamptz::text")
    conn.commit()
    q("SET LOCAL work_mem = '5MB'")                  # a SET LOCAL is not
    conn.commit()
    q("SHOW work_mem")
    conn.rollback()
    out.append(("ParameterStatus TimeZone", conn.get_parameter_status("TimeZone")))
    q("DROP TABLE kv")
    conn.commit()
    out.append(("notices", conn.notices))
    conn.close()
    return out


def psql_script():
    return r"""
\pset null '<null>'
SELECT 1 AS one, 'a'::text AS letter;
SELECT g, CASE WHEN g % 2 = 0 THEN NULL ELSE g END AS odd FROM generate_series(1, 6) g;
DROP TABLE IF EXISTS pk;
CREATE TABLE pk (id int PRIMARY KEY, name text);
INSERT INTO pk VALUES (1, 'x');
INSERT INTO pk VALUES (1, 'y');
\echo :LAST_ERROR_SQLSTATE
DO $$BEGIN RAISE EXCEPTION 'raised here' USING DETAIL = 'some detail', HINT = 'some hint'; END$$;
\echo :LAST_ERROR_SQLSTATE :LAST_ERROR_MESSAGE
SELECT nosuch
  FROM pk;
BEGIN;
INSERT INTO pk VALUES (2, 'kept');
COMMIT;
BEGIN;
INSERT INTO pk VALUES (3, 'dropped');
SELECT count(*) FROM pk;
ROLLBACK;
BEGIN;
SELECT 1/0;
SELECT 1;
ROLLBACK;
SELECT * FROM pk ORDER BY id;
SET DateStyle = 'German';
SET application_name = 'interop-psql';
BEGIN;
SHOW DateStyle;
SELECT '2024-03-01'::date, current_setting('application_name');
COMMIT;
RESET DateStyle;
SHOW DateStyle;
SELECT 1 \; SELECT 2 AS second;
DROP TABLE pk;
"""


class RemoteInteropTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if shutil.which("protoc") is None:
            raise unittest.SkipTest("needs protobuf-compiler")
        if psycopg is None:
            raise unittest.SkipTest("needs python3-grpcio and python3-psycopg")
        cls.env = harness.get_env()
        cls.env.create_database(DB)
        cls.ref = ReferencePooler(cls.env)
        cls.gw = cls.env.gateway("refpooler", pool_size=4, workers=2,
                                 extra_args=["--pooler", "127.0.0.1:%d" % cls.ref.port])
        cls.direct = cls.env.direct

    @classmethod
    def tearDownClass(cls):
        ref = getattr(cls, "ref", None)
        if ref:
            ref.stop()
            log = ref.log()
            if "Traceback" in log or ref.proc.returncode not in (0, -signal.SIGTERM):
                raise AssertionError("remote_server.py (exit %s) reported:\n%s"
                                     % (ref.proc.returncode, log[-4000:]))

    def assertSame(self, direct, remote):
        if direct != remote:
            import pprint
            self.fail(harness.text_diff(pprint.pformat(direct, width=120) + "\n",
                                        pprint.pformat(remote, width=120) + "\n",
                                        "direct", "gateway -> remote_server.py"))

    def test_psycopg2_session(self):
        direct = psycopg2_session(self.direct)
        remote = psycopg2_session(self.gw)
        self.assertSame(direct, remote)
        # The comparison is only worth something if the scenario did things.
        self.assertIn(("SELECT k, v FROM kv WHERE k >= 10 ORDER BY k", "SELECT 1", 1,
                       [("k", 23), ("v", 25)], [(10, "committed")]), remote)
        errors = [e[2] for e in remote if len(e) == 3 and e[1] == "error"]
        self.assertEqual([e[0] for e in errors],
                         ["23505", "23502", "23514", "42703", "22023", "22012", "22012"])
        self.assertIn(("SHOW work_mem", "SHOW", 1, [("work_mem", 25)], [("3MB",)]), remote)

    def test_psql(self):
        path = os.path.join(self.env.tmp, "interop.sql")
        with open(path, "w") as f:
            f.write(psql_script())
        rc1, direct = harness.run_psql_script(self.direct, path, DB)
        rc2, remote = harness.run_psql_script(self.gw, path, DB)
        self.assertEqual(direct, remote, harness.text_diff(direct, remote))
        self.assertEqual(rc1, rc2)
        for want in ("ERROR:  duplicate key value violates unique constraint \"pk_pkey\"",
                     "DETAIL:  Key (id)=(1) already exists.", "HINT:  some hint",
                     "P0001 raised here", "01.03.2024", "<null>", "interop-psql"):
            self.assertIn(want, remote)

    def test_extended_psycopg3(self):
        def run(ep):
            out = []
            with psycopg.connect(ep.dsn(dbname=DB), autocommit=True) as conn:
                for binary in (False, True):
                    cur = conn.cursor(binary=binary)
                    for args in ((1, "a", None), (2, "b", 2.5), (3, None, -1.0)):
                        cur.execute("SELECT %s::int * 10 AS n, upper(%s::text) AS t, "
                                    "%s::float8 AS f, g FROM generate_series(1, %s::int) g",
                                    args + (args[0],), prepare=True)
                        out.append((binary, [(c.name, c.type_code) for c in cur.description],
                                    cur.fetchall(), cur.statusmessage))
                try:
                    conn.execute("SELECT 10 / %s::int", (0,), prepare=True)
                except psycopg.Error as e:
                    out.append(("error", e.sqlstate, e.diag.message_primary))
                with conn.transaction():
                    conn.execute("CREATE TEMP TABLE ext (a int, b text)")
                    for i in range(3):
                        conn.execute("INSERT INTO ext VALUES (%s, %s)", (i, "v%d" % i),
                                     prepare=True)
                    out.append(conn.execute("SELECT * FROM ext ORDER BY a", prepare=True)
                               .fetchall())
            return out

        direct, remote = run(self.direct), run(self.gw)
        self.assertSame(direct, remote)
        self.assertEqual(remote[0][2], [(10, "A", None, 1)])
        self.assertIn(("error", "22012", "division by zero"), remote)

    def test_extended_messages(self):
        """The exact backend messages of an extended-protocol batch."""
        def run(ep):
            c = pgwire.Conn(ep, dbname=DB)
            try:
                c.send(pgwire.parse("s1", "SELECT $1::int + $2::int AS sum, $3::text AS t", (23, 23)),
                       pgwire.describe("S", "s1"),
                       pgwire.bind("", "s1", ("1", "2", None)), pgwire.describe("P", ""),
                       pgwire.execute(""),
                       pgwire.bind("", "s1", (b"\x00\x00\x00\x05", b"\x00\x00\x00\x06", "x"),
                                   formats=(1, 1, 0), result_formats=(1,)),
                       pgwire.execute(""), pgwire.sync())
                out = c.until()
                # (an error at execution: one at Bind, such as PostgreSQL's
                # planner folding 1/$1 with $1 = 0, comes after BindComplete
                # through the gateway, as Bind is answered there)
                c.send(pgwire.parse("", "SELECT 1/(g - $1::int) FROM generate_series(1, 1) g"),
                       pgwire.bind("", "", ("1",)),
                       pgwire.execute(""), pgwire.parse("", "SELECT 'skipped'"), pgwire.sync(),
                       pgwire.parse("", "SELECT 'after'"), pgwire.bind("", ""),
                       pgwire.execute(""), pgwire.sync())
                out += c.until(count=2)
                return pgwire.normalise(out)
            finally:
                c.close()

        direct, remote = run(self.direct), run(self.gw)
        self.assertSame(direct, remote)
        self.assertIn(("D", [b"3", None]), remote)
        self.assertIn(("D", [b"\x00\x00\x00\x0b", b"x"]), remote)

    def test_large_result(self):
        sql = ("SELECT g, md5(g::text) FROM generate_series(1, 200000) g")
        with self.gw.connect(dbname=DB) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*), sum(length(m)) FROM (%s) s(g, m)" % sql)
            want = cur.fetchone()
            cur.execute(sql)
            rows = cur.fetchall()
        self.assertEqual((len(rows), sum(len(m) for _, m in rows)), want)
        self.assertEqual(rows[-1][0], 200000)

    def test_cancel(self):
        conn = self.gw.connect(dbname=DB, autocommit=True)
        try:
            def cancel():
                harness.wait_running("SELECT pg_sleep(30)")
                conn.cancel()
            timer = threading.Thread(target=cancel)
            timer.start()
            with self.assertRaises(psycopg2.Error) as e:
                conn.cursor().execute("SELECT pg_sleep(30)")
            timer.join()
            self.assertEqual(e.exception.pgcode, "57014")
            cur = conn.cursor()
            cur.execute("SELECT 'still usable'")
            self.assertEqual(cur.fetchone()[0], "still usable")
        finally:
            conn.close()
        # The statement was cancelled on PostgreSQL, not left running.
        harness.wait_until(lambda: not harness.running_pids("SELECT pg_sleep(30)"),
                           "pg_sleep is no longer running on the server")

    def test_copy_refused_cleanly(self):
        """COPY is not served by the reference pooler: an error, and the
        session goes on."""
        with self.gw.connect(dbname=DB, autocommit=True) as conn, conn.cursor() as cur:
            with self.assertRaises(psycopg2.Error) as e:
                cur.copy_expert("COPY (SELECT 1) TO STDOUT", tempfile.TemporaryFile("w+"))
            self.assertEqual(e.exception.pgcode, "0A000")
            cur.execute("SELECT 'after copy'")
            self.assertEqual(cur.fetchone()[0], "after copy")

    def test_reference_server_alone(self):
        """The calls the gateway does not make, straight from grpcio: a
        transaction concluded with ConcludeTransaction, a release of an
        unknown reservation, an unimplemented method."""
        import remote_server as rs
        svc, q, mtrpc, gstatus = rs.svc, rs.q, rs.mtrpc, rs.gstatus
        path = "/multipoolerservice.MultiPoolerService/"
        with grpc.insecure_channel("127.0.0.1:%d" % self.ref.port) as ch:
            def call(method, req, resp, stream=False):
                make = ch.unary_stream if stream else ch.unary_unary
                return make(path + method, request_serializer=req.SerializeToString,
                            response_deserializer=resp.FromString)
            target = q.Target(shard_key=rs.cm.ShardKey(database=DB, table_group="default",
                                                        shard="0-inf"))
            opts = q.ExecuteOptions(user=harness.SUPERUSER)
            execute = call("StreamExecute", svc.StreamExecuteRequest,
                           svc.StreamExecuteResponse, stream=True)
            out = list(execute(svc.StreamExecuteRequest(
                query="BEGIN; CREATE TEMP TABLE c (a int); INSERT INTO c VALUES (1)",
                target=target, options=opts), timeout=20))
            state = out[-1].reserved_state
            self.assertTrue(state.reserved_connection_id)
            self.assertEqual(state.reservation_reasons, 1)  # TRANSACTION
            self.assertEqual([o.result.result.command_tag for o in out if o.result.result.command_tag],
                             ["BEGIN", "CREATE TABLE", "INSERT 0 1"])
            rid = state.reserved_connection_id
            conclude = call("ConcludeTransaction", svc.ConcludeTransactionRequest,
                            svc.ConcludeTransactionResponse)
            r = conclude(svc.ConcludeTransactionRequest(
                target=target, options=q.ExecuteOptions(user=harness.SUPERUSER,
                                                        reserved_connection_id=rid),
                conclusion=svc.ConcludeTransactionRequest.COMMIT), timeout=20)
            self.assertEqual(r.result.command_tag, "COMMIT")
            self.assertEqual(r.reserved_state.reserved_connection_id, 0)  # released
            release = call("ReleaseReservedConnection", svc.ReleaseReservedConnectionRequest,
                           svc.ReleaseReservedConnectionResponse)
            with self.assertRaises(grpc.RpcError) as e:
                release(svc.ReleaseReservedConnectionRequest(
                    target=target, options=q.ExecuteOptions(reserved_connection_id=rid)),
                    timeout=20)
            self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)
            details = dict(e.exception.trailing_metadata())["grpc-status-details-bin"]
            st = gstatus.Status.FromString(details)
            self.assertEqual(st.details[0].type_url, "type.googleapis.com/mtrpc.RPCError")
            self.assertEqual(mtrpc.RPCError.FromString(st.details[0].value).pg_diagnostic.code,
                             "08003")
            unary = call("ExecuteQuery", svc.ExecuteQueryRequest, svc.ExecuteQueryResponse)
            with self.assertRaises(grpc.RpcError) as e:
                unary(svc.ExecuteQueryRequest(query="SELECT 1", target=target, options=opts),
                      timeout=20)
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNIMPLEMENTED)

    def test_zzz_idle_transaction_survives(self):
        """A transaction left idle keeps its reservation (last: it is slow).
        gRPC servers as shipped (grpc core, grpc-go) refuse HTTP/2 PINGs
        more often than every 5 minutes on a connection with no data and
        close it (GOAWAY too_many_pings) after a few: the gateway's
        keepalive must live with that. The reference server keeps
        grpcio's defaults."""
        conn = self.gw.connect(dbname=DB)
        try:
            cur = conn.cursor()
            cur.execute("SELECT txid_current()")
            xid = cur.fetchone()[0]
            time.sleep(float(os.environ.get("PGW_INTEROP_IDLE_SECONDS", "50")))
            cur.execute("SELECT txid_current()")
            self.assertEqual(cur.fetchone()[0], xid)
            conn.commit()
        finally:
            conn.close()

    def test_zz_nothing_left_open(self):
        """After the clients are gone, no transaction is left open and no
        connection is held busy on the server (runs last: zz)."""
        deadline = time.monotonic() + 30
        while True:
            rows = self.env.admin_exec(
                "SELECT state, query FROM pg_stat_activity WHERE datname = %s "
                "AND backend_type = 'client backend' AND state <> 'idle'", (DB,))
            if not rows:
                break
            self.assertLess(time.monotonic(), deadline, "still busy: %r" % rows)
            time.sleep(0.2)


if __name__ == "__main__":
    unittest.main()
