"""Pooled server connections that die while idle (pg_terminate_backend, a
PostgreSQL restart) cost no client its request: the gateway sends the
request again on another connection when the dead one had not begun on it.
One killed while running a client's query is that client's error, as
directly, and the gateway goes on."""
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

DB = "pgw_deadbe"
ROLE = "pgw_deadbe_user"
RETRY_LINE = "was gone before it ran anything"


def terminate_idle(env):
    """pg_terminate_backend every idle server connection of DB (the
    gateway's pooled ones); returns how many were signalled."""
    rows = env.admin_exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = %s AND usename = %s AND state = 'idle' "
        "AND backend_type = 'client backend'", [DB, ROLE])
    return sum(1 for (ok,) in rows if ok)


def wait_gone(env, timeout=30.0):
    """Until the signalled backends have exited."""
    harness.wait_until(
        lambda: env.admin_exec("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                               "AND usename = %s AND state = 'idle'", [DB, ROLE])[0][0] == 0,
        "the terminated backends are gone", timeout)


class DeadBackendTest(harness.IntegrationTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        env.create_database(DB)
        if not env.admin_exec("SELECT 1 FROM pg_roles WHERE rolname = %s", [ROLE]):
            env.create_role(ROLE)
        env.admin_exec('GRANT ALL ON DATABASE "%s" TO "%s"' % (DB, ROLE))

    def gateway(self):
        return self.env.gateway(name="deadbe", pool_size=8, pool_timeout=10)

    def retries_logged(self, gw):
        with open(gw.logfile, errors="replace") as f:
            return f.read().count(RETRY_LINE)

    def connect(self, ep, **kw):
        return ep.connect(dbname=DB, user=ROLE, autocommit=True, **kw)

    def test_terminated_between_statements(self):
        """The reproduction: A's connection is terminated between two of its
        statements, and A's next statement comes at once."""
        self.skip_in_self_test("PostgreSQL itself ends the session")
        # Directly, the session is simply gone: what a pooler is for.
        a = self.connect(self.env.direct)
        with a.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        self.env.admin_exec("SELECT pg_terminate_backend(%s)", [pid])
        harness.wait_until(lambda: not self.env.admin_exec(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]), "the backend is gone")
        with self.assertRaises(harness.psycopg2.OperationalError):
            with a.cursor() as cur:
                cur.execute("SELECT 1")
        a.close()

        gw = self.gateway()
        before = self.retries_logged(gw)
        a = self.connect(gw)
        b = self.env.admin_connect(dbname=DB)
        try:
            for i in range(100):
                with a.cursor() as cur:
                    cur.execute("BEGIN")
                    cur.execute("SELECT pg_backend_pid()")
                    pid = cur.fetchone()[0]
                    cur.execute("ROLLBACK")
                with b.cursor() as cur:
                    cur.execute("SELECT pg_terminate_backend(%s)", [pid])
                    self.assertTrue(cur.fetchone()[0])
                with a.cursor() as cur:
                    cur.execute("SELECT %s::int", [i])
                    self.assertEqual(cur.fetchone()[0], i)
        finally:
            a.close()
            b.close()
        retried = self.retries_logged(gw) - before
        sys.stderr.write("  [dead-backend] 100 terminations between statements: 0 client "
                         "errors, %d requests sent again\n" % retried)

    def test_all_idle_terminated_in_a_loop(self):
        """Every idle pooled connection terminated, round after round, with
        several clients going on at once after each round (one of them with
        a startup setting to restore on each connection it takes)."""
        self.skip_in_self_test("PostgreSQL itself ends the sessions")
        gw = self.gateway()
        before = self.retries_logged(gw)
        nclients, rounds = 6, 60
        conns = [self.connect(gw, application_name="deadbe%d" % i) if i == 0
                 else self.connect(gw) for i in range(nclients)]
        go = threading.Barrier(nclients + 1)
        done = threading.Barrier(nclients + 1)
        errors = []
        killed = [0]

        def client(i):
            c = conns[i]
            for r in range(rounds):
                try:
                    go.wait(30)
                    with c.cursor() as cur:
                        if r % 3 == 0:
                            cur.execute("SELECT %s::int, current_setting('application_name')",
                                        [r])
                            row = cur.fetchone()
                            if row[0] != r or (i == 0 and row[1] != "deadbe0"):
                                errors.append("client %d round %d: %r" % (i, r, row))
                        elif r % 3 == 1:
                            cur.execute("BEGIN")
                            cur.execute("SELECT count(*) FROM generate_series(1, %s)", [r])
                            cur.execute("COMMIT")
                        else:
                            cur.execute("SELECT 1; SELECT 2")
                    done.wait(30)
                except Exception as e:  # noqa: BLE001 - any failure counts
                    errors.append("client %d round %d: %s: %s"
                                  % (i, r, type(e).__name__, str(e).strip()))
                    go.abort()
                    done.abort()
                    return

        threads = [threading.Thread(target=client, args=(i,), daemon=True)
                   for i in range(nclients)]
        for t in threads:
            t.start()
        try:
            for r in range(rounds):
                go.wait(30)
                done.wait(30)
                # Between the clients' statements: every idle one goes, and
                # the clients go on at once (next round).
                killed[0] += terminate_idle(self.env)
        except threading.BrokenBarrierError:
            pass
        for t in threads:
            t.join(30)
        for c in conns:
            c.close()
        self.assertEqual(errors, [])
        retried = self.retries_logged(gw) - before
        sys.stderr.write("  [dead-backend] %d rounds x %d clients, %d idle connections "
                         "terminated: 0 client errors, %d requests sent again\n"
                         % (rounds, nclients, killed[0], retried))
        self.assertGreater(killed[0], rounds)

    def test_idle_connections_are_watched(self):
        """A connection terminated while idle is dropped as soon as its
        FATAL arrives: when the clients come back later, nothing needs to be
        sent again."""
        self.skip_in_self_test("no pool")
        gw = self.gateway()
        conns = [self.connect(gw) for _ in range(4)]
        holders = []
        try:
            # Four pooled connections, idle.
            for c in conns:
                c.autocommit = False
                with c.cursor() as cur:
                    cur.execute("SELECT 1")
            for c in conns:
                c.commit()
                c.autocommit = True
            self.assertGreaterEqual(terminate_idle(self.env), 1)
            wait_gone(self.env)
            # The gateway has read each FATAL and closed its end.
            harness.wait_until(lambda: harness.TCP_CLOSE_WAIT not in harness.tcp_states(
                gw.pid, self.env.pg.port), "the gateway has closed the dead connections")
            before = self.retries_logged(gw)
            for c in conns:
                with c.cursor() as cur:
                    cur.execute("SELECT 1")
                    holders.append(cur.fetchone()[0])
            self.assertEqual(holders, [1, 1, 1, 1])
            self.assertEqual(self.retries_logged(gw) - before, 0,
                             "a dead idle connection was handed to a client")
        finally:
            for c in conns:
                c.close()

    def test_killed_while_running(self):
        """A backend terminated while it runs a client's query: that client
        gets PostgreSQL's error, as directly; the gateway goes on."""
        self.skip_in_self_test("compared against PostgreSQL below")
        results = {}
        for ep in (self.env.direct, self.gateway()):
            c = self.connect(ep)
            err = {}

            def run(c=c, err=err):
                try:
                    with c.cursor() as cur:
                        cur.execute("SELECT pg_sleep(20)")
                    err["e"] = None
                except harness.psycopg2.Error as e:
                    err["e"] = e
            t = threading.Thread(target=run, daemon=True)
            t.start()
            pid = harness.wait_running("SELECT pg_sleep(20)")[0]
            self.env.admin_exec("SELECT pg_terminate_backend(%s)", [pid])
            t.join(30)
            self.assertFalse(t.is_alive())
            e = err["e"]
            # Not run again elsewhere: that would have ended without error.
            self.assertIsNotNone(e, "%s: the query was not interrupted" % ep.name)
            results[ep.kind] = (e.pgcode, type(e).__name__)
            c.close()
        sys.stderr.write("  [dead-backend] terminated mid-query: %r\n" % results)
        self.assertEqual(results["direct"], results["gateway"])
        # The gateway goes on.
        c = self.connect(self.gateway())
        with c.cursor() as cur:
            cur.execute("SELECT 42")
            self.assertEqual(cur.fetchone()[0], 42)
        c.close()

    def test_postgresql_restart(self):
        """PostgreSQL restarted (fast shutdown) while clients are idle: their
        next statement succeeds through the gateway, on new connections.
        Directly it fails: the session died with the server."""
        self.skip_in_self_test("PostgreSQL itself ends the sessions")
        env = self.env
        gw = self.gateway()
        through = [self.connect(gw) for _ in range(5)]
        direct = self.connect(env.direct)
        for c in through + [direct]:
            with c.cursor() as cur:
                cur.execute("SELECT 1")
        r = env.pg._runuser(os.path.join(harness.PGBIN, "pg_ctl"), "-D", env.pg.datadir,
                            "-l", env.pg.logfile, "-m", "fast", "-w", "-t", "60", "restart")
        self.assertEqual(r.returncode, 0, r.stdout)
        with self.assertRaises(harness.psycopg2.OperationalError):
            with direct.cursor() as cur:
                cur.execute("SELECT 1")
        direct.close()
        for i, c in enumerate(through):
            with c.cursor() as cur:
                cur.execute("SELECT %s::int, pg_backend_pid()", [i])
                row = cur.fetchone()
                self.assertEqual(row[0], i)
        for c in through:
            c.close()
        sys.stderr.write("  [dead-backend] after a restart: 5/5 idle gateway clients went on "
                         "(direct client: OperationalError)\n")


if __name__ == "__main__":
    harness.unittest.main()


class LifetimeTest(harness.IntegrationTestCase):
    """--lifetime: a server connection older than it is closed when it is
    let go (here at the client's ReadyForQuery, from inside its own reader)
    and the next statement runs on a new one."""

    def test_old_connection_retired_on_release(self):
        self.skip_in_self_test("a gateway setting")
        gw = self.env.gateway(name="lifetime", pool_size=2, workers=1,
                              extra_args=("--lifetime", "1"))
        c = gw.connect(autocommit=True)
        try:
            with c.cursor() as cur:
                # Held past its lifetime, then let go at ReadyForQuery.
                cur.execute("SELECT pg_backend_pid(), pg_sleep(1.5)")
                first = cur.fetchone()[0]
                harness.wait_until(lambda: not self.env.admin_exec(
                    "SELECT 1 FROM pg_stat_activity WHERE pid = %s", [first]),
                    "the old server connection closed")
                cur.execute("SELECT pg_backend_pid()")
                self.assertNotEqual(cur.fetchone()[0], first)
        finally:
            c.close()
        self.assert_gateways_alive()
