"""Query cancellation: psycopg2 conn.cancel() during pg_sleep."""
import os
import re
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class CancelTest(harness.DualTestCase):

    def cancel_after(self, conn, statement):
        """Cancels once the statement runs on the server."""
        def cancel():
            harness.wait_running(statement)
            conn.cancel()
        t = threading.Thread(target=cancel)
        t.start()
        return t

    def test_cancel_pg_sleep(self):
        def scenario(tr, connect):
            c = connect(autocommit=True)
            tr.q(c, "SELECT 'warm up'")
            timer = self.cancel_after(c, "SELECT pg_sleep(30)")
            e = tr.q(c, "SELECT pg_sleep(30)")
            timer.join()
            self.assertIsInstance(e, harness.psycopg2.errors.QueryCanceled)
            self.assertEqual(e.pgcode, "57014")
            self.assertIn("canceling statement due to user request", e.pgerror)
            tr.q(c, "SELECT 'usable after cancel'")
            # inside a transaction: the transaction is aborted, ROLLBACK recovers
            tr.q(c, "BEGIN")
            tr.q(c, "SELECT 1")
            timer = self.cancel_after(c, "SELECT pg_sleep(30)")
            tr.q(c, "SELECT pg_sleep(30)")
            timer.join()
            tr.q(c, "SELECT 1")
            tr.q(c, "ROLLBACK")
            tr.q(c, "SELECT 'usable after rollback'")
            # non-autocommit connection (psycopg2's implicit BEGIN)
            d = connect()
            timer = self.cancel_after(d, "SELECT pg_sleep(30)")
            tr.q(d, "SELECT pg_sleep(30)")
            timer.join()
            tr.call(d, "rollback", d.rollback)
            tr.q(d, "SELECT 'd usable'")
            tr.call(d, "commit", d.commit)
            # a cancel while idle does nothing
            c.cancel()
            time.sleep(0.3)
            tr.q(c, "SELECT 'not canceled'")
            # cancel a statement that is producing rows
            timer = self.cancel_after(c, "SELECT count(*) FROM generate_series(1, 1000000000)")
            tr.q(c, "SELECT count(*) FROM generate_series(1, 1000000000)")
            timer.join()
            tr.q(c, "SELECT 'usable at end'")
        self.dual(scenario)

    def test_cancel_only_hits_own_session(self):
        """Two sessions sleeping; cancelling one leaves the other alone, and a
        CancelRequest with a bogus key cancels nothing."""
        gw = self.gw()
        a = gw.connect(autocommit=True)
        b = gw.connect(autocommit=True)
        results = {}

        def run(name, conn, sql):
            t0 = time.monotonic()
            try:
                with conn.cursor() as cur:
                    cur.execute(sql)
                results[name] = ("ok", time.monotonic() - t0)
            except harness.psycopg2.Error as e:
                results[name] = (e.pgcode, time.monotonic() - t0)
        try:
            ta = threading.Thread(target=run, args=("a", a, "SELECT pg_sleep(30)"))
            tb = threading.Thread(target=run, args=("b", b, "SELECT pg_sleep(2)"))
            ta.start()
            tb.start()
            harness.wait_running("SELECT pg_sleep(30)")
            # bogus CancelRequest: gateway must drop it without harm
            with socket.create_connection((gw.host, gw.port), timeout=5) as s:
                s.sendall(struct.pack("!IIII", 16, 80877102, 12345, 67890))
                s.settimeout(5)
                try:
                    s.recv(1)
                except (socket.timeout, ConnectionError):
                    pass
            a.cancel()
            ta.join(30)
            tb.join(30)
            self.assertEqual(results["a"][0], "57014", results)
            self.assertEqual(results["b"][0], "ok", results)
            self.assertGreaterEqual(results["b"][1], 1.9, results)
            with a.cursor() as cur:
                cur.execute("SELECT 1")
        finally:
            a.close()
            b.close()


class CancelWhileWaitingTest(harness.IntegrationTestCase):
    """A cancel sent while the query waits for a server connection (all
    are busy) is not lost: the query ends with 57014 (at once: see
    CancelQueuedTest), and the client goes on."""

    def test_cancel_while_waiting_for_a_connection(self):
        gw = self.gw(name="cancel-wait", pool_size=1, workers=1, pool_timeout=20)
        holder = gw.connect(autocommit=True)
        waiter = gw.connect(autocommit=True)
        result = {}

        def run():
            t0 = time.monotonic()
            try:
                with waiter.cursor() as cur:
                    cur.execute("SELECT pg_sleep(20)")
                result["r"] = ("ok", time.monotonic() - t0)
            except harness.psycopg2.Error as e:
                result["r"] = (e.pgcode, time.monotonic() - t0)
        try:
            with holder.cursor() as cur:
                cur.execute("BEGIN")
                cur.execute("SELECT 1")
            t = threading.Thread(target=run)
            t.start()
            harness.wait_request_read(waiter, t)  # it waits for the only connection
            # cancel() returns once the gateway has closed the request,
            # having passed it on to the worker that serves the waiter.
            waiter.cancel()
            with holder.cursor() as cur:
                cur.execute("COMMIT")  # the connection goes to the waiting query
            t.join(25)
            self.assertEqual(result["r"][0], "57014", result)
            with waiter.cursor() as cur:
                cur.execute("SELECT 'usable'")
        finally:
            holder.close()
            waiter.close()


class SessionModePidTest(harness.IntegrationTestCase):
    """In session mode a client keeps its server connection for life and is
    told that connection's pid: pg_backend_pid(), pg_stat_activity and
    pg_locks agree with BackendKeyData, and cancel still works by it."""

    def test_real_pid_and_cancel(self):
        gw = self.env.gateway(name="session-pid", pool_size=4, pool_mode="session")
        c = gw.connect(autocommit=True)
        try:
            cur = c.cursor()
            cur.execute("SELECT pg_backend_pid()")
            self.assertEqual(cur.fetchone()[0], c.get_backend_pid())
            def cancel():
                harness.wait_running("SELECT pg_sleep(30)")
                c.cancel()
            timer = threading.Thread(target=cancel)
            timer.start()
            with self.assertRaises(harness.psycopg2.errors.QueryCanceled):
                cur.execute("SELECT pg_sleep(30)")
            timer.join()
            cur.execute("SELECT 'usable'")
            self.assertEqual(cur.fetchone()[0], "usable")
        finally:
            c.close()


# --------------------------------------------------------------------------
# A cancel lands before its connection closes, and only where it was meant.
# --------------------------------------------------------------------------

CANCEL_CODE = 80877102


def raw_login(ep):
    """A raw protocol 3.0 session: (RawConn, pid, key)."""
    c = harness.RawConn(ep.host, ep.port)
    msgs = c.startup({"user": harness.SUPERUSER, "database": harness.MAIN_DB})
    for t, body in msgs:
        if t == b"K":
            return c, struct.unpack("!i", body[:4])[0], body[4:]
    raise AssertionError("no BackendKeyData in %r" % msgs)


def send_cancel(ep, pid, key):
    """Send a CancelRequest and wait for the close, as libpq's PQcancel does."""
    with socket.create_connection((ep.host, ep.port), timeout=20) as s:
        body = struct.pack("!II", CANCEL_CODE, pid & 0xffffffff) + key
        s.sendall(struct.pack("!I", len(body) + 4) + body)
        while s.recv(64):
            pass


def sqlstate(msgs):
    for t, body in msgs:
        if t == b"E":
            return harness.parse_error_fields(body).get("C")
    return None


def running(env, marker):
    """Backends running the statement carrying marker."""
    return env.admin_exec("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                          "AND query LIKE %s AND pid <> pg_backend_pid()",
                          ["%" + marker + "%"])[0][0]


class CancelLandsTest(harness.IntegrationTestCase):
    """A CancelRequest's connection closes only once the server has acted
    on it (PostgreSQL signals the backend, then closes): a client that
    waits for the close and then sends its next statement never has that
    statement cancelled, through the gateway as directly."""

    ROUNDS = 100

    def strays(self, ep, in_block):
        """Cancel a short query sent just before, wait for the close, then
        send the next statement: (times the short query was hit, times
        the next one was)."""
        c, pid, key = raw_login(ep)
        hit = stray = 0
        try:
            if in_block:
                c.query("BEGIN")
            for _ in range(self.ROUNDS):
                c.send_msg(b"Q", b"SELECT 1\0")
                send_cancel(ep, pid, key)
                if sqlstate(c.until_ready()) == "57014":
                    hit += 1  # it was running: PostgreSQL may cancel it
                    if in_block:
                        c.query("ROLLBACK")
                        c.query("BEGIN")
                if sqlstate(c.query("SELECT pg_sleep(0.02)")) is not None:
                    stray += 1
            if in_block:
                c.query("COMMIT")
        finally:
            c.close()
        return hit, stray

    def check(self, in_block):
        direct = self.strays(self.env.direct, in_block)
        gateway = self.strays(self.gw(), in_block)
        self.assertEqual(direct[1], 0, "direct: %d of %d next statements cancelled"
                         % (direct[1], self.ROUNDS))
        self.assertEqual(gateway[1], 0, "gateway: %d of %d next statements cancelled "
                         "(the short query was hit %d times; directly %d)"
                         % (gateway[1], self.ROUNDS, gateway[0], direct[0]))

    def test_next_statement_never_cancelled(self):
        self.check(in_block=False)

    def test_next_statement_in_a_transaction_never_cancelled(self):
        """The server connection is the client's for the transaction: its
        next statement reaches the server only after the cancel has."""
        self.check(in_block=True)


class CancelKeyTest(harness.IntegrationTestCase):
    """The key decides: a CancelRequest with the right pid and a wrong key
    leaves the running query alone; the right key stops it."""

    def test_wrong_key_cancels_nothing(self):
        for ep in (self.env.direct, self.gw()):
            with self.subTest(endpoint=ep.name):
                marker = "wrong_key_%s" % ep.kind.replace("-", "_")
                c, pid, key = raw_login(ep)
                try:
                    c.send_msg(b"Q", ("SELECT pg_sleep(60) AS %s\0" % marker).encode())
                    harness.wait_until(lambda: running(self.env, marker) == 1, "running the query")
                    send_cancel(ep, pid, bytes(b ^ 0x5a for b in key))
                    # Had the key been ignored, the server would have acted
                    # by the close: the query would be gone by now.
                    self.assertEqual(running(self.env, marker), 1,
                                     "a wrong key cancelled the query")
                    c.sock.setblocking(False)
                    with self.assertRaises(BlockingIOError, msg="an answer came"):
                        c.sock.recv(1)
                    c.sock.setblocking(True)
                    send_cancel(ep, pid, key)
                    self.assertEqual(sqlstate(c.until_ready()), "57014")
                    self.assertIsNone(sqlstate(c.query("SELECT 1")))
                finally:
                    c.close()


class CancelCrossWorkerTest(harness.IntegrationTestCase):
    """A CancelRequest taken by another worker than its client's is handed
    to that worker, and its connection closes once the cancel has landed.
    The kernel spreads connections over the workers' sockets: cancels are
    sent until the gateway's log shows one taken by the other worker."""

    def test_cancel_taken_by_another_worker(self):
        self.skip_in_self_test("the gateway's workers")
        gw = self.gw(name="cancel-workers", workers=2, extra_args=("--log-level", "debug"))
        pattern = re.compile(r"\[worker (\d+)\] DEBUG: client \d+: cancel request for worker (\d+)")

        def taken():
            with open(gw.logfile, errors="replace") as f:
                return pattern.findall(f.read())
        c, pid, key = raw_login(gw)
        own = pid >> 24
        try:
            for attempt in range(40):
                marker = "cross_worker_%d" % attempt
                c.send_msg(b"Q", ("SELECT pg_sleep(60) AS %s\0" % marker).encode())
                harness.wait_until(lambda: running(self.env, marker) == 1, "running the query")
                before = len(taken())
                send_cancel(gw, pid, key)
                self.assertEqual(sqlstate(c.until_ready()), "57014")
                lines = taken()
                self.assertEqual(len(lines), before + 1, lines)
                by, target = (int(x) for x in lines[-1])
                self.assertEqual(target, own)
                if by != own:
                    break
            else:
                self.fail("40 cancels, all taken by the client's own worker %d" % own)
            self.assertIsNone(sqlstate(c.query("SELECT 'usable'")))
        finally:
            c.close()


class CancelQueuedTest(harness.IntegrationTestCase):
    """A query still waiting for a server connection when its cancel comes
    never reached a server: it ends at once with PostgreSQL's 57014 (as a
    query waiting on a lock would), not when a connection frees up."""

    def test_cancel_ends_the_wait(self):
        gw = self.gw(name="cancel-queued", pool_size=1, workers=1, pool_timeout=60)
        holder = gw.connect(autocommit=True)
        c, pid, key = raw_login(gw)
        try:
            with holder.cursor() as cur:
                cur.execute("BEGIN")
                cur.execute("SELECT 1")  # holds the only server connection
            c.send_msg(b"Q", b"SELECT 'queued' AS cancel_queued\0")
            # The query waits in the gateway: the server never sees it.
            send_cancel(gw, pid, key)
            msgs = c.until_ready()
            self.assertEqual(sqlstate(msgs), "57014", msgs)
            err = [harness.parse_error_fields(b) for t, b in msgs if t == b"E"][0]
            self.assertEqual(err["M"], "canceling statement due to user request")
            self.assertEqual(msgs[-1], (b"Z", b"I"))
            self.assertEqual(running(self.env, "cancel_queued"), 0)
            with holder.cursor() as cur:
                cur.execute("COMMIT")
            msgs = c.query("SELECT 'usable'")
            self.assertIsNone(sqlstate(msgs), msgs)
        finally:
            c.close()
            holder.close()


class CancelHoldTest(harness.IntegrationTestCase):
    """While a cancel is on its way to the server, the server connection is
    sent nothing more: a statement the client sends meanwhile (without
    waiting for the cancel's close) reaches the server only after the
    cancel has, so it is never the one cancelled."""

    def test_statement_sent_during_the_cancel_waits_for_it(self):
        self.skip_in_self_test("the gateway's log")
        if self.env.remote:
            self.skipTest("through a multipooler the cancel is the call's")
        gw = self.gw(name="cancel-workers", workers=2, extra_args=("--log-level", "debug"))
        c, pid, key = raw_login(gw)
        try:
            c.query("BEGIN")
            msgs = c.query("SELECT pg_backend_pid()")
            server_pid = int([b for t, b in msgs if t == b"D"][0][6:])
            line = "server connection %d: cancel request on its way" % server_pid

            def sent():
                with open(gw.logfile, errors="replace") as f:
                    return f.read().count(line)
            stray = forwarded = 0
            for _ in range(10):
                before = sent()
                c.send_msg(b"Q", b"SELECT pg_sleep(0.05)\0")
                with socket.create_connection((gw.host, gw.port), timeout=20) as s:
                    body = struct.pack("!II", CANCEL_CODE, pid & 0xffffffff) + key
                    s.sendall(struct.pack("!I", len(body) + 4) + body)
                    s.setblocking(False)

                    def forwarded_or_closed():
                        if sent() > before:
                            return "forwarded"
                        try:
                            return None if s.recv(64) else "closed"
                        except BlockingIOError:
                            return None
                    if harness.wait_until(forwarded_or_closed, "sending the cancel", interval=0.01) == "closed":
                        c.until_ready()  # the query had ended: nothing to cancel
                        continue
                    forwarded += 1
                    # Not waiting for the close: the next statement goes now.
                    c.send_msg(b"Q", b"SELECT pg_sleep(0.5)\0")
                    first = sqlstate(c.until_ready())
                    second = sqlstate(c.until_ready())
                    s.setblocking(True)
                    while s.recv(64):
                        pass
                if second == "57014":
                    stray += 1
                if first is not None or second is not None:
                    c.query("ROLLBACK")
                    c.query("BEGIN")
            c.query("ROLLBACK")
            self.assertGreater(forwarded, 0, "no cancel reached the server")
            self.assertEqual(stray, 0, "%d of %d statements sent during a cancel were cancelled"
                             % (stray, forwarded))
        finally:
            c.close()
