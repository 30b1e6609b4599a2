#!/usr/bin/python3
"""The remote pooler path: client -> multigateway --pooler -> multipooler ->
PostgreSQL. Simple and extended queries, errors, transactions and session
settings give what PostgreSQL gives directly; killing the multipooler fails
the clients in flight with an error (no hang) and the gateway serves again
once it is back."""
import io
import os
import select
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import psycopg  # noqa: E402
import psycopg2  # noqa: E402

try:
    import psycopg  # noqa: E402
except ImportError:  # pragma: no cover
    psycopg = None


class Multipooler:
    def __init__(self, env, port):
        self.binary = env.multipooler_binary
        self.port = port
        self.log = os.path.join(env.tmp, "multipooler-%d.log" % port)
        self.argv = [self.binary, "--listen", "127.0.0.1:%d" % port, "--workers", "1",
                     "--backend", "host=127.0.0.1 port=%d user=postgres" % env.pg.port]
        self.proc = None

    def start(self):
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=logf, env=harness.base_env())
        harness.wait_accepting("127.0.0.1", self.port)

    def stop(self, sig=signal.SIGTERM):
        """Stop it; returns its exit status (None when it had to be killed)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode if self.proc else None

    def sanitizer_report(self):
        with open(self.log, errors="replace") as f:
            text = f.read()
        at = min([i for i in (text.find("Sanitizer"), text.find("runtime error:")) if i >= 0],
                 default=-1)
        return text[max(0, at - 200):at + 3000] if at >= 0 else None


def pooler_links(gw, mp):
    """The gateway's established connections to the multipooler: one for
    each worker that has connected (and, after a restart, reconnected; a
    worker still waiting to reconnect fails its clients at once)."""
    return harness.tcp_states(gw.pid, remote_port=mp.port).count(1)


def run_script(conn):
    """What a session sees: rows, errors and settings, as plain values."""
    out = []
    conn.autocommit = True
    cur = conn.cursor()
    for sql, args in [("SELECT 1 AS a, 'x'::text AS b, NULL::int AS c", None),
                      ("SELECT %s::int + 1, %s::text", (41, "param")),
                      ("SELECT 1/0", None),
                      ("SET work_mem = '7MB'", None),
                      ("SHOW work_mem", None),
                      ("CREATE TEMP TABLE IF NOT EXISTS rt (a int)", None),
                      ("INSERT INTO rt SELECT generate_series(1, 3)", None),
                      ("SELECT sum(a) FROM rt", None),
                      ("SELECT no_such_column FROM rt", None)]:
        try:
            cur.execute(sql, args)
            out.append((sql, cur.statusmessage, cur.fetchall() if cur.description else None))
        except psycopg2.Error as e:
            out.append((sql, "error", e.pgcode))
    return out


class MultipoolerCase(unittest.TestCase):
    """A gateway of its own over a multipooler of its own."""

    GATEWAY = "remote"
    POOLER_ARGS = ()
    GATEWAY_KW = {}

    @classmethod
    def setUpClass(cls):
        cls.env = harness.get_env()
        cls.mp = Multipooler(cls.env, harness.free_port())
        cls.mp.argv += list(cls.POOLER_ARGS)
        cls.mp.start()
        cls.gw = cls.env.gateway(cls.GATEWAY, remote=False,
                                 extra_args=["--pooler", "127.0.0.1:%d" % cls.mp.port],
                                 **cls.GATEWAY_KW)

    @classmethod
    def tearDownClass(cls):
        cls.mp.stop()
        report = cls.mp.sanitizer_report()
        if report:
            raise AssertionError("multipooler sanitizer report:\n" + report)


class RemotePoolerTest(MultipoolerCase):

    def connect(self, ep):
        return psycopg2.connect(ep.dsn(), connect_timeout=10)

    def test_same_as_direct(self):
        direct = run_script(self.connect(self.env.direct))
        remote = run_script(self.connect(self.gw))
        self.assertEqual(direct, remote)

    def test_transaction_and_failure(self):
        c = self.connect(self.gw)
        cur = c.cursor()
        cur.execute("SELECT txid_current()")
        x1 = cur.fetchone()[0]
        cur.execute("SELECT txid_current()")
        self.assertEqual(x1, cur.fetchone()[0])  # one transaction, one connection
        with self.assertRaises(psycopg2.Error) as e:
            cur.execute("SELECT 1/0")
        self.assertEqual(e.exception.pgcode, "22012")
        with self.assertRaises(psycopg2.Error) as e:
            cur.execute("SELECT 1")
        self.assertEqual(e.exception.pgcode, "25P02")
        c.rollback()
        cur.execute("SELECT 2")
        self.assertEqual(cur.fetchone()[0], 2)
        c.close()

    def test_pooler_restart(self):
        c = self.connect(self.gw)
        c.autocommit = True
        c.cursor().execute("SELECT 1")
        links = pooler_links(self.gw, self.mp)
        self.assertGreaterEqual(links, 1)
        self.mp.stop(signal.SIGKILL)
        t0 = time.monotonic()
        with self.assertRaises(psycopg2.Error):
            c.cursor().execute("SELECT 1")
        self.assertLess(time.monotonic() - t0, 30)  # no hang
        # While it is down a new client hears why, promptly.
        t0 = time.monotonic()
        with self.assertRaises(psycopg2.Error) as e:
            self.connect(self.gw)
        self.assertIn("pooler", str(e.exception))
        self.assertLess(time.monotonic() - t0, 30)  # no hang
        self.mp.start()
        deadline = time.monotonic() + 30
        while True:
            try:
                c2 = self.connect(self.gw)
                cur = c2.cursor()
                cur.execute("SELECT 'back'")
                self.assertEqual(cur.fetchone()[0], "back")
                c2.close()
                break
            except psycopg2.Error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        harness.wait_until(lambda: pooler_links(self.gw, self.mp) >= links,
                           "every gateway worker is connected to the pooler again")


    def copy_script(self, conn):
        """COPY in and out (simple protocol), CopyFail, an error mid-COPY,
        and a COPY large enough for flow control; what the session sees."""
        conn.autocommit = True
        cur = conn.cursor()
        out = []
        cur.execute("DROP TABLE IF EXISTS rcopy; CREATE TABLE rcopy (a int, b text)")
        data = "".join("%d\trow %d\n" % (i, i) for i in range(20000))
        cur.copy_expert("COPY rcopy FROM STDIN", io.StringIO(data))
        out.append(("in", cur.rowcount, cur.statusmessage))
        buf = io.StringIO()
        cur.copy_expert("COPY (SELECT a, b FROM rcopy ORDER BY a) TO STDOUT", buf)
        out.append(("out", buf.getvalue() == data, cur.statusmessage))
        # Megabytes each way: the socket pair and the call's buffers must
        # hold back rather than grow or stall.
        big = "".join("%d\t%s\n" % (i, "x" * 1000) for i in range(30000))
        cur.copy_expert("COPY rcopy FROM STDIN", io.StringIO(big))
        buf = io.StringIO()
        cur.copy_expert("COPY rcopy TO STDOUT", buf)
        out.append(("big", len(buf.getvalue()), cur.statusmessage))

        class Failing(io.StringIO):
            def read(self, *a):
                raise ValueError("the source broke")
        try:
            cur.copy_expert("COPY rcopy FROM STDIN", Failing())
            out.append(("fail", "no error"))
        except (psycopg2.Error, ValueError) as e:
            out.append(("fail", getattr(e, "pgcode", type(e).__name__)))
        try:
            cur.copy_expert("COPY rcopy FROM STDIN", io.StringIO("1\tok\nnot-a-number\tbad\n"))
            out.append(("bad row", "no error"))
        except psycopg2.Error as e:
            out.append(("bad row", e.pgcode))
        try:
            cur.copy_expert("COPY no_such_table FROM STDIN", io.StringIO("1\n"))
        except psycopg2.Error as e:
            out.append(("no table", e.pgcode))
        # Inside a transaction: an error mid-COPY fails it, as directly.
        conn.autocommit = False
        try:
            cur.copy_expert("COPY rcopy FROM STDIN", io.StringIO("x\n"))
        except psycopg2.Error as e:
            out.append(("in txn", e.pgcode, conn.info.transaction_status))
        conn.rollback()
        conn.autocommit = True
        cur.execute("SELECT count(*), sum(a) FROM rcopy")
        out.append(("count", cur.fetchone()))
        cur.execute("SELECT 'still usable'")
        out.append(cur.fetchone())
        cur.execute("DROP TABLE rcopy")
        return out

    def test_copy(self):
        direct = self.copy_script(self.connect(self.env.direct))
        remote = self.copy_script(self.connect(self.gw))
        self.assertEqual(direct, remote)

    def large_script(self, ep):
        """Values past gRPC's usual limits (and our former 16 MiB) both
        ways: a 20 MB bound parameter in (PortalStreamExecute), a 20 MB row
        out, and an 18 MB query text; what the session sees."""
        value = bytes((i * 131 + (i >> 9)) & 255 for i in range(1 << 20)) * 20
        text = "0123456789abcdef\u00e9" * (1 << 20)
        out = []
        with psycopg.connect(host="127.0.0.1", port=ep.port, user=harness.SUPERUSER,
                             dbname=harness.MAIN_DB, autocommit=True, connect_timeout=10) as c:
            cur = c.execute("SELECT octet_length(v), md5(v) FROM (SELECT %b::bytea AS v) s", (value,))
            out.append(("param in", cur.fetchone()))
            cur = c.execute("SELECT repeat('ab', 10 << 20) AS big, 'after' AS small")
            big, small = cur.fetchone()
            out.append(("row out", len(big), big == "ab" * (10 << 20), small))
            cur = c.execute("SELECT length('%s'), md5('%s')" % (text, text), prepare=False)
            out.append(("simple query", cur.fetchone()))
            out.append(("still usable", c.execute("SELECT 1").fetchone()))
        return out

    @unittest.skipIf(psycopg is None, "psycopg 3 not installed")
    def test_large_values(self):
        direct = self.large_script(self.env.direct)
        remote = self.large_script(self.gw)
        self.assertEqual(direct, remote)
        self.assertEqual(remote[0][1][0], 20 << 20)

    def listen_script(self, ep):
        """A listener that only waits (select() on its socket, no query)
        while another session notifies; what it hears, how fast, and what
        UNLISTEN * and disconnecting leave behind."""
        listener = self.connect(ep)
        listener.autocommit = True
        notifier = self.connect(ep)
        notifier.autocommit = True
        lcur, ncur = listener.cursor(), notifier.cursor()
        lcur.execute("LISTEN rl_chan")
        lcur.execute("SELECT pg_backend_pid()")
        listener_server_pid = lcur.fetchone()[0]
        out, delays, waits = [], [], []

        def wait_one(timeout):
            t0 = time.monotonic()
            waits.append(t0)
            while not listener.notifies:
                left = t0 + timeout - time.monotonic()
                if left <= 0 or not select.select([listener], [], [], left)[0]:
                    break
                listener.poll()
            got = [(n.channel, n.payload, n.pid) for n in listener.notifies]
            del listener.notifies[:]
            waits[-1] = round(time.monotonic() - waits[-1], 2)
            return got

        for i in range(5):
            ncur.execute("SELECT pg_backend_pid(), pg_notify('rl_chan', %s)", ("n%d" % i,))
            t0 = time.monotonic()  # committed: PostgreSQL sends it now
            notifier_pid = ncur.fetchone()[0]
            got = wait_one(30)
            delays.append(time.monotonic() - t0)
            # The pid is the notifying server connection's, as PostgreSQL says.
            out.append(("idle", [(c, p, pid == notifier_pid) for c, p, pid in got]))
        # A notification of its own comes with its query's answer, with the
        # pid it was told (the gateway's) as the sender.
        lcur.execute("NOTIFY rl_chan, 'self'")
        out.append(("self", [(n.channel, n.payload, n.pid == listener.info.backend_pid)
                             for n in listener.notifies]))
        del listener.notifies[:]
        # In a transaction nothing arrives before COMMIT.
        notifier.autocommit = False
        ncur.execute("NOTIFY rl_chan, 'tx'")
        out.append(("before commit", wait_one(0.3)))
        notifier.commit()
        notifier.autocommit = True
        out.append(("after commit", [(c, p) for c, p, _ in wait_one(30)]))
        lcur.execute("UNLISTEN *")
        ncur.execute("NOTIFY rl_chan, 'unheard'")
        out.append(("after unlisten", wait_one(0.3)))
        lcur.execute("LISTEN rl_chan")
        ncur.execute("NOTIFY rl_chan, 'again'")
        out.append(("listen again", [(c, p) for c, p, _ in wait_one(30)]))
        listener.close()
        notifier.close()
        sys.stderr.write("  [notify] %s: waits %s\n" % (ep.name, waits))
        return out, delays, listener_server_pid

    def test_listen_notify_while_idle(self):
        direct, _, _ = self.listen_script(self.env.direct)
        remote, delays, server_pid = self.listen_script(self.gw)
        self.assertEqual(direct, remote)
        self.assertEqual(remote[0], ("idle", [("rl_chan", "n0", True)]))
        # Pushed while the listener is idle, without a query of its own to
        # carry it; how soon is a benchmark's figure, shown here only.
        sys.stderr.write("  [notify] delays %s\n" % ["%.3f" % d for d in delays])
        # The listener's server connection was cleaned when it left:
        # UNLISTEN * ran on it (or it is gone).
        d = psycopg2.connect(self.env.direct.dsn(), connect_timeout=10)
        d.autocommit = True
        t0 = time.monotonic()
        seen = []
        while True:
            cur = d.cursor()
            cur.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (server_pid,))
            row = cur.fetchone()
            if row is None or "UNLISTEN *" in row[0] or time.monotonic() > t0 + 30:
                break
            if row not in seen:
                seen.append(row)
            time.sleep(0.1)
        d.close()
        sys.stderr.write("  [notify] cleaned after %.1f s (seen before: %r)\n"
                         % (time.monotonic() - t0, seen))
        self.assertTrue(row is None or "UNLISTEN *" in row[0], row)

    def test_failed_multi_statement_transaction(self):
        """A Query that opens its own transaction and fails in it leaves
        the session in a failed transaction ('E'), as PostgreSQL does."""
        for ep in (self.env.direct, self.gw):
            c = harness.RawConn("127.0.0.1", ep.port)
            try:
                c.startup({"user": harness.SUPERUSER, "database": harness.MAIN_DB})
                msgs = c.query("BEGIN; SELECT 1; SELECT 1/0")
                self.assertEqual(msgs[-1], (b"Z", b"E"), (ep.name, msgs))
                msgs = c.query("SELECT 1")
                self.assertEqual(msgs[-1], (b"Z", b"E"), (ep.name, msgs))
                msgs = c.query("ROLLBACK")
                self.assertEqual(msgs[-1], (b"Z", b"I"), (ep.name, msgs))
            finally:
                c.close()

    def test_settings_ride_with_each_call(self):
        """The startup settings a session replays at each transaction reach
        the server connections as the call's session_settings: the server
        runs the replay once per connection, not once per transaction, and
        every statement still sees them (and a session without them does
        not)."""
        db = self.env.create_database("remote_settings")
        self.env.admin_exec("ALTER DATABASE remote_settings SET log_statement = 'all'")
        with open(self.env.pg.logfile, errors="replace") as f:
            f.seek(0, os.SEEK_END)
            start = f.tell()
        named = psycopg2.connect(self.gw.dsn(dbname=db), connect_timeout=10,
                                 application_name="holds_test")
        plain = psycopg2.connect(self.gw.dsn(dbname=db), connect_timeout=10)
        named.autocommit = plain.autocommit = True
        transactions = 40
        seen = []
        # Sessions alternating on a connection each need it set up again:
        # a few of those, mostly the named session's own transactions.
        for c, n in ((named, transactions - 5), (plain, 3), (named, 5)):
            for _ in range(n):
                cur = c.cursor()
                cur.execute("SELECT current_setting('application_name')")
                seen.append((c is named, cur.fetchone()[0]))
        named.close()
        plain.close()
        self.assertEqual(seen, [(True, "holds_test")] * (transactions - 5) + [(False, "")] * 3
                         + [(True, "holds_test")] * 5)
        def logged():  # the server's log is written asynchronously
            with open(self.env.pg.logfile, errors="replace") as f:
                f.seek(start)
                text = f.read()
            return text if text.count("LOG:  statement:") >= transactions + 3 else None
        text = harness.wait_until(logged, "the statements are in the server's log")
        statements = text.count("LOG:  statement:")
        replays = text.count("set_config(E'application_name', E'holds_test'")
        self.assertGreaterEqual(statements, transactions + 3, text[-2000:])
        # Before, each transaction of the named session ran it: 40 times.
        self.assertLess(replays, 10, text[-4000:])


class RemoteHoldEndTest(MultipoolerCase):
    """What a hold leaves behind is gone for the next one. One gateway
    worker with a pool of one over a multipooler with one server
    connection: every client is served by the same translator and the same
    PostgreSQL backend, one after the other."""

    GATEWAY = "remote-hold-end"
    POOLER_ARGS = ("--pool-size", "1")
    GATEWAY_KW = {"pool_size": 1, "workers": 1}
    REPORTED = ("application_name", "TimeZone", "DateStyle", "IntervalStyle")

    def reported(self, conn):
        return {p: conn.get_parameter_status(p) for p in self.REPORTED}

    def test_reported_parameters_are_not_the_previous_holders(self):
        direct = self.env.direct.connect(autocommit=True)
        want = self.reported(direct)
        direct.close()
        a = self.gw.connect(autocommit=True)
        cur = a.cursor()
        cur.execute("SET application_name = 'leaky'; SET TimeZone = 'Asia/Tokyo'; "
                    "SET DateStyle = 'German'; SET IntervalStyle = 'sql_standard'")
        self.assertEqual(a.get_parameter_status("application_name"), "leaky")
        b = self.gw.connect(autocommit=True)
        self.assertEqual(self.reported(b), want)
        cur = b.cursor()
        cur.execute("SELECT current_setting('application_name'), current_setting('TimeZone')")
        self.assertEqual(cur.fetchall(), [(want["application_name"], want["TimeZone"])])
        cur.execute("RESET ALL")  # the client hears only what changes for it
        self.assertEqual(self.reported(b), want)
        a.close()
        b.close()

    def test_prepared_statement_goes_with_its_client(self):
        # A statement of the pooler's own on the server connection first.
        x = psycopg.connect(self.gw.dsn(), autocommit=True)
        self.assertEqual(x.execute("SELECT %s::int + 1", (1,), prepare=True).fetchall(), [(2,)])
        x.close()
        a = self.gw.connect(autocommit=True)
        cur = a.cursor()
        cur.execute("PREPARE hold_end_p AS SELECT 1")
        a.close()
        # The same with a failed transaction open at the end.
        a = self.gw.connect(autocommit=True)
        cur = a.cursor()
        cur.execute("PREPARE hold_end_q AS SELECT 1")
        cur.execute("BEGIN")
        with self.assertRaises(psycopg2.Error):
            cur.execute("SELECT 1/0")
        a.close()
        b = self.gw.connect(autocommit=True)
        cur = b.cursor()
        cur.execute("SELECT name FROM pg_prepared_statements WHERE from_sql")
        self.assertEqual(cur.fetchall(), [])
        cur.execute("PREPARE hold_end_p AS SELECT 2")
        cur.execute("EXECUTE hold_end_p")
        self.assertEqual(cur.fetchall(), [(2,)])
        b.close()
        # The pooler forgot its own with them: it prepares again.
        x = psycopg.connect(self.gw.dsn(), autocommit=True)
        self.assertEqual(x.execute("SELECT %s::int + 1", (41,), prepare=True).fetchall(), [(42,)])
        x.close()


class RemoteKillTest(unittest.TestCase):
    """kill -9 of the multipooler under load (pgbench and psycopg2)."""

    DB = "pgw_remote_kill"

    @classmethod
    def setUpClass(cls):
        cls.env = harness.get_env()
        cls.env.create_database(cls.DB)
        r = subprocess.run([harness.PGBENCH, "-i", "-q", "-s", "1"],
                           env=cls.env.direct.env(dbname=cls.DB), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError("pgbench -i failed:\n" + r.stdout)
        cls.mp = Multipooler(cls.env, harness.free_port())
        cls.mp.start()
        cls.gw = cls.env.gateway("remote-kill", remote=False, pool_size=8,
                                 extra_args=["--pooler", "127.0.0.1:%d" % cls.mp.port])

    @classmethod
    def tearDownClass(cls):
        cls.mp.stop()

    def pgbench(self, seconds, clients=4):
        argv = [harness.PGBENCH, "-n", "-M", "extended", "-c", str(clients), "-j", "2",
                "-T", str(seconds)]
        return subprocess.Popen(argv, env=self.gw.env(dbname=self.DB), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def test_kill_under_load(self):
        bench = self.pgbench(60)
        errors = []
        rounds = [0, 0, 0]
        done = threading.Event()

        def client(n):
            try:
                c = psycopg2.connect(self.gw.dsn(dbname=self.DB), connect_timeout=10)
                cur = c.cursor()
                while not done.is_set():
                    cur.execute("SELECT count(*) FROM pgbench_branches")
                    cur.fetchone()
                    cur.execute("SELECT pg_sleep(0.01)")
                    c.commit()
                    rounds[n] += 1
            except psycopg2.Error as e:
                errors.append((n, time.monotonic(), str(e)))
        threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        # Under load: every client has done a few rounds, and so has pgbench.
        harness.wait_until(lambda: min(rounds) >= 3 or errors, "every client has run")
        harness.wait_until(lambda: self.env.admin_exec("SELECT count(*) FROM pgbench_history",
                                                       dbname=self.DB)[0][0] >= 10,
                           "pgbench has committed transactions")
        self.assertIsNone(bench.poll(), "pgbench ended before the kill")
        self.assertEqual(errors, [])
        links = pooler_links(self.gw, self.mp)
        killed = time.monotonic()
        self.mp.stop(signal.SIGKILL)
        # Every client in flight hears of it, promptly: no hang.
        for t in threads:
            t.join(30)
            self.assertFalse(t.is_alive(), "a psycopg2 client hangs after the kill")
        done.set()
        self.assertEqual(len(errors), 3, errors)
        for n, at, text in errors:
            self.assertLess(at - killed, 30, text)
        try:
            out, _ = bench.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            bench.kill()
            bench.communicate()
            self.fail("pgbench hangs after the kill")
        self.assertNotEqual(bench.returncode, 0, out[-2000:])
        sys.stderr.write("  [kill] psycopg2 errors: %s\n  [kill] pgbench: %s\n"
                         % (sorted(set(e[2].strip() for e in errors)),
                            [ln for ln in out.splitlines() if "error" in ln.lower()][:3]))
        # New clients while it is down: a clear error at once.
        for _ in range(4):  # both workers, whichever the kernel picks
            t0 = time.monotonic()
            with self.assertRaises(psycopg2.Error) as e:
                psycopg2.connect(self.gw.dsn(dbname=self.DB), connect_timeout=30)
            self.assertLess(time.monotonic() - t0, 30)  # no hang
            self.assertIn("pooler", str(e.exception))
        # Back again: served again, by every worker.
        self.mp.start()
        deadline = time.monotonic() + 30
        ok = 0
        while ok < 6:
            try:
                c = psycopg2.connect(self.gw.dsn(dbname=self.DB), connect_timeout=10)
                cur = c.cursor()
                cur.execute("SELECT count(*) FROM pgbench_branches")
                self.assertEqual(cur.fetchone()[0], 1)
                c.close()
                ok += 1
            except psycopg2.Error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        harness.wait_until(lambda: pooler_links(self.gw, self.mp) >= links,
                           "every gateway worker is connected to the pooler again")
        bench = self.pgbench(3)
        out, _ = bench.communicate(timeout=60)
        self.assertEqual(bench.returncode, 0, out[-3000:])


if __name__ == "__main__":
    unittest.main()
