"""Query cancellation: psycopg2 conn.cancel() during pg_sleep."""
import os
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
    are busy) is not lost: the query is cancelled once it reaches one, as
    it would be on PostgreSQL, where it was already running."""

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
