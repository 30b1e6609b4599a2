"""Pool exhausted: clients wait, then get a clear error after --pool-timeout
(not a hang)."""
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

DB = "pgw_ptimeout"
POOL_TIMEOUT = 2


class PoolTimeoutTest(harness.IntegrationTestCase):

    def test_pool_timeout(self):
        self.skip_in_self_test("PostgreSQL has no pool to exhaust")
        env = self.env
        env.create_database(DB)
        gw = env.gateway(name="ptimeout", pool_size=1, pool_timeout=POOL_TIMEOUT)
        early = gw.connect(dbname=DB, autocommit=True)      # connected before the pool is busy
        with early.cursor() as cur:
            cur.execute("SELECT 1")
        holder = gw.connect(dbname=DB)                      # non-autocommit: holds the backend
        try:
            with holder.cursor() as cur:
                cur.execute("SELECT 'holding the only backend'")

            # 1. an already connected client's query
            res = {}

            def q():
                t0 = time.monotonic()
                try:
                    with early.cursor() as cur:
                        cur.execute("SELECT 'should time out'")
                    res["r"] = ("ok", None, None, time.monotonic() - t0)
                except harness.psycopg2.Error as e:
                    res["r"] = ("error", e.pgcode, str(e).strip(), time.monotonic() - t0)
            t = threading.Thread(target=q, daemon=True)
            t.start()
            t.join(30)
            self.assertFalse(t.is_alive(), "query hung for 30s with the pool exhausted")
            kind, code, msg, dt = res["r"]
            sys.stderr.write("  [pool-timeout] query: %s after %.2fs: sqlstate=%s %r\n"
                             % (kind, dt, code, msg))
            self.assertEqual(kind, "error", "query succeeded while the only backend was held")
            self.assertGreaterEqual(dt, POOL_TIMEOUT - 0.5)
            self.assertLessEqual(dt, 10)

            # 2. a new psql client (waiting at connect or at its query)
            t0 = time.monotonic()
            try:
                r = gw.psql("-v", "VERBOSITY=verbose", "-c", "SELECT 'should time out'",
                            dbname=DB, env_extra={"PGCONNECT_TIMEOUT": "0"}, timeout=30)
            except subprocess.TimeoutExpired:
                self.fail("psql hung for 30s with the pool exhausted")
            dt = time.monotonic() - t0
            sys.stderr.write("  [pool-timeout] psql: exit %d after %.2fs: %r\n"
                             % (r.returncode, dt, r.stdout.strip()))
            self.assertNotEqual(r.returncode, 0, r.stdout)
            self.assertGreaterEqual(dt, POOL_TIMEOUT - 0.5)
            self.assertLessEqual(dt, 10)
            self.assertTrue(r.stdout.strip(), "no error message")
        finally:
            holder.rollback()
            holder.close()
            early.close()
        # once the backend is free again, clients are served
        r = gw.psql("-tA", "-c", "SELECT 'served again'", dbname=DB, timeout=30)
        self.assertEqual(r.stdout.strip(), "served again", r.stdout)
