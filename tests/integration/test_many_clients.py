"""1000 concurrent clients over --pool-size 10."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import psycopg2  # noqa: E402

DB = "pgw_many"
POOL = 10
N_GATEWAY = int(os.environ.get("PGW_MANY_CLIENTS", "1000"))
N_SELF_TEST = 150   # PostgreSQL itself: bounded by max_connections


class ManyClientsTest(harness.IntegrationTestCase):

    def test_1000_clients_pool_10(self):
        env = self.env
        env.create_database(DB)
        env.admin_exec("DROP TABLE IF EXISTS many_t; CREATE TABLE many_t (id int PRIMARY KEY)",
                       dbname=DB)
        gw = env.gateway(name="many", pool_size=POOL, pool_timeout=60)
        n = N_SELF_TEST if env.self_test else N_GATEWAY
        errors = []
        opened = []
        lock = threading.Lock()
        all_open = threading.Barrier(n + 1, timeout=240)
        all_done = threading.Barrier(n + 1, timeout=240)

        def err(i, what, e):
            with lock:
                errors.append((i, what, repr(e)))

        def client(i):
            conn = None
            try:
                conn = gw.connect(dbname=DB, application_name="many-%d" % i, connect_timeout=120)
                with lock:
                    opened.append(i)
            except Exception as e:
                err(i, "connect", e)
            try:
                all_open.wait()
            except threading.BrokenBarrierError:
                pass
            if conn is not None:
                try:
                    conn.autocommit = True
                    cur = conn.cursor()
                    cur.execute("SELECT %s::int, current_setting('application_name')", (i,))
                    got = cur.fetchall()
                    if got != [(i, "many-%d" % i)]:
                        raise AssertionError("got %r" % (got,))
                    conn.autocommit = False
                    cur.execute("INSERT INTO many_t VALUES (%s)", (i,))
                    cur.execute("SELECT count(*) FROM many_t WHERE id = %s", (i,))
                    if cur.fetchall() != [(1,)]:
                        raise AssertionError("own row not visible in transaction")
                    if conn.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_INTRANS:
                        raise AssertionError("not in transaction")
                    conn.commit()
                    if conn.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
                        raise AssertionError("not idle after commit")
                    conn.autocommit = True
                    cur.execute("BEGIN; SELECT 1; COMMIT")
                    cur.execute("SELECT 'bye'")
                    cur.close()
                except Exception as e:
                    err(i, "query", e)
            try:
                all_done.wait()
            except threading.BrokenBarrierError:
                pass
            if conn is not None:
                conn.close()

        stop = threading.Event()
        max_backends = [0]
        mon_err = []

        def monitor():
            try:
                c = env.admin_connect()
                cur = c.cursor()
                while not stop.is_set():
                    cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                                "AND backend_type = 'client backend'", (DB,))
                    max_backends[0] = max(max_backends[0], cur.fetchone()[0])
                    stop.wait(0.05)
                c.close()
            except Exception as e:  # pragma: no cover
                mon_err.append(repr(e))

        old_stack = threading.stack_size(256 * 1024)
        mon = threading.Thread(target=monitor, daemon=True)
        mon.start()
        t0 = time.monotonic()
        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
        try:
            for t in threads:
                t.start()
        finally:
            threading.stack_size(old_stack)
        try:
            all_open.wait()
            t_open = time.monotonic() - t0
            all_done.wait()
            t_done = time.monotonic() - t0
        except threading.BrokenBarrierError:
            self.fail("clients did not finish in time; errors so far: %r" % errors[:10])
        for t in threads:
            t.join(60)
        stop.set()
        mon.join(5)
        sys.stderr.write("  [many] %d clients: all open after %.1fs, done after %.1fs, "
                         "max backends %d\n" % (n, t_open, t_done, max_backends[0]))
        if errors:
            kinds = sorted(set(e[2][:160] for e in errors))
            self.fail("%d of %d clients failed; first errors: %r; distinct: %r"
                      % (len(errors), n, errors[:3], kinds[:5]))
        self.assertEqual(len(opened), n)
        self.assertFalse(mon_err, mon_err)
        count = env.admin_exec("SELECT count(*) FROM many_t", dbname=DB)[0][0]
        self.assertEqual(count, n)
        if env.self_test:
            self.assertGreaterEqual(max_backends[0], 1)
        else:
            self.assertLessEqual(max_backends[0], POOL + 2,
                                 "pool-size %d but PostgreSQL saw %d backends"
                                 % (POOL, max_backends[0]))
            self.assertEqual(env.backend_count(DB, "idle in transaction%"), 0)
