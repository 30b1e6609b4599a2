"""The server's own connection limits (a role's or a database's CONNECTION
LIMIT) below the pool size: while the pool has connections of that (database,
user) open, a 53300 refusal of one more means "wait for one of those", not an
error for the client; the pool stops asking for more for a while. With none
open, the refusal reaches the client at login, as PostgreSQL's does."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

DB = "pgw_limits"
LIMDB = "pgw_limits_db2"   # a database with CONNECTION LIMIT 2
NCLIENTS = 10
WARNING = "limit is below the pool size"


def refusals(env, text):
    """How many times PostgreSQL's log reports a refusal with this text."""
    with open(env.pg.logfile, errors="replace") as f:
        return f.read().count(text)


class ServerLimitsTest(harness.IntegrationTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        env.create_database(DB)
        with env._lock:
            if LIMDB not in env._dbs:
                env.admin_exec('CREATE DATABASE "%s" CONNECTION LIMIT 2' % LIMDB)
                env._dbs.add(LIMDB)
        for role, limit in (("lim2", 2), ("lim2s", 2), ("lim0", 0), ("lim1", 1),
                            ("limdbuser", -1)):
            if not env.admin_exec("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]):
                env.create_role(role, "CONNECTION LIMIT %d" % limit)
        for db in (DB, LIMDB):
            env.admin_exec('GRANT ALL ON DATABASE "%s" TO lim2, lim2s, lim0, lim1, limdbuser' % db)

    def gateway(self):
        return self.env.gateway(name="limits", pool_size=8, pool_timeout=20)

    def concurrent(self, ep, dbname, user):
        """NCLIENTS clients connect at once and, once all have, each runs
        SELECT pg_sleep(0.5); COMMIT; returns the errors (sqlstate, message)
        seen."""
        errors = []
        start = threading.Barrier(NCLIENTS)
        attempted = threading.Barrier(NCLIENTS)

        def one():
            try:
                start.wait(30)
                try:
                    c = ep.connect(dbname=dbname, user=user)
                finally:
                    # All are connected (or refused) before any leaves, so
                    # that directly none gets the room of one that is done.
                    attempted.wait(30)
                try:
                    with c.cursor() as cur:
                        cur.execute("SELECT pg_sleep(0.5)")
                    c.commit()
                finally:
                    c.close()
            except harness.psycopg2.Error as e:
                errors.append((e.pgcode, str(e).strip().splitlines()[0]))
        threads = [threading.Thread(target=one, daemon=True) for _ in range(NCLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertFalse(any(t.is_alive() for t in threads), "clients hung")
        return errors

    def limit_case(self, dbname, user, refusal_text):
        env = self.env
        direct = self.concurrent(env.direct, dbname, user)
        # PostgreSQL: the clients beyond the limit are refused at connect.
        self.assertGreaterEqual(len(direct), NCLIENTS - 2, direct)
        self.assertTrue(all(code == "53300" or refusal_text in msg for code, msg in direct),
                        direct)
        gw = self.gateway()
        before = refusals(env, refusal_text)
        through = self.concurrent(gw, dbname, user)
        self.assertEqual(through, [], "clients failed through the gateway")
        burst = refusals(env, refusal_text) - before
        # A second round within the time the limit is remembered: the pool
        # does not ask the server for more.
        again = self.concurrent(gw, dbname, user)
        self.assertEqual(again, [])
        second = refusals(env, refusal_text) - before - burst
        used = env.admin_exec("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                              "AND usename = %s", [dbname, user])[0][0]
        sys.stderr.write("  [server-limits] %s/%s: direct %d/%d refused; gateway 0/%d failed, "
                         "%d refused connects in the first round, %d in the second; "
                         "%d server connections\n"
                         % (dbname, user, len(direct), NCLIENTS, 2 * NCLIENTS, burst, second,
                            used))
        self.assertEqual(second, 0, "the pool kept asking the server for connections")
        self.assertLessEqual(used, 2)

    def test_role_connection_limit(self):
        self.skip_in_self_test("PostgreSQL refuses the clients beyond the limit")
        self.limit_case(DB, "lim2", 'too many connections for role "lim2"')
        with open(self.gateway().logfile, errors="replace") as f:
            lines = [ln for ln in f if WARNING in ln and "pgw_limits/lim2 " in ln]
        self.assertEqual(len(lines), 1, "the lower limit is logged once")

    def test_database_connection_limit(self):
        self.skip_in_self_test("PostgreSQL refuses the clients beyond the limit")
        self.limit_case(LIMDB, "limdbuser", 'too many connections for database "%s"' % LIMDB)

    def test_session_mode_refused_as_directly(self):
        """In session mode each client holds a server connection of its own:
        the clients the server refuses hear its refusal at login, as
        directly, instead of waiting for a connection another client keeps
        for its whole session."""
        self.skip_in_self_test("the same as the direct run")
        # A role of its own: the other tests' gateways keep idle
        # connections of lim2, which the server counts.
        text = 'too many connections for role "lim2s"'
        direct = self.concurrent(self.env.direct, DB, "lim2s")
        gw = self.env.gateway(name="limits-session", pool_size=8, pool_timeout=20,
                              pool_mode="session")
        through = self.concurrent(gw, DB, "lim2s")
        sys.stderr.write("  [server-limits] session mode, limit 2: direct %d/%d refused, "
                         "gateway %d/%d\n" % (len(direct), NCLIENTS, len(through), NCLIENTS))
        for seen in (direct, through):
            self.assertEqual(len(seen), NCLIENTS - 2, seen)
            for code, msg in seen:
                self.assertIn(text, msg)

    def test_no_connection_possible_refused_at_login(self):
        """CONNECTION LIMIT 0, no connection open: the client hears the
        server's refusal when it logs in, word for word as directly."""
        seen = {}
        for ep in (self.env.direct, self.gateway()):
            with self.assertRaises(harness.psycopg2.OperationalError) as cm:
                ep.connect(dbname=DB, user="lim0")
            # libpq names the host and port it tried: only the server's words.
            seen[ep.kind] = str(cm.exception).strip().splitlines()[-1].split("failed: ", 1)[-1]
        sys.stderr.write("  [server-limits] CONNECTION LIMIT 0: %r\n" % seen)
        self.assertIn('too many connections for role "lim0"', seen["direct"])
        self.assertEqual(seen["direct"], seen[self.gateway().kind])

    def test_pool_timeout_when_none_is_free(self):
        """CONNECTION LIMIT 1, its one connection held in a transaction: a
        second client waits for it up to --pool-timeout, then gets the pool's
        timeout error (directly it would have been refused at connect); once
        the connection is free, it is served."""
        self.skip_in_self_test("PostgreSQL refuses at connect")
        gw = self.env.gateway(name="limits-timeout", pool_size=8, pool_timeout=2)
        b = gw.connect(dbname=DB, user="lim1", autocommit=True)
        a = gw.connect(dbname=DB, user="lim1")
        try:
            with a.cursor() as cur:
                cur.execute("SELECT 'holding the only connection'")
            t0 = time.monotonic()
            with self.assertRaises(harness.psycopg2.Error) as cm:
                with b.cursor() as cur:
                    cur.execute("SELECT 1")
            dt = time.monotonic() - t0
            e = cm.exception
            sys.stderr.write("  [server-limits] limit 1, held: %s after %.2fs: %s\n"
                             % (e.pgcode, dt, str(e).strip()))
            self.assertEqual(e.pgcode, "53300")
            self.assertIn("became free within", str(e))
            self.assertIn("the server allows 1", str(e))
            self.assertGreaterEqual(dt, 1.5)
            self.assertLess(dt, 10)
            a.commit()
            with b.cursor() as cur:
                cur.execute("SELECT 2")
                self.assertEqual(cur.fetchone()[0], 2)
        finally:
            a.close()
            b.close()


if __name__ == "__main__":
    harness.unittest.main()
