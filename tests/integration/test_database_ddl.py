"""CREATE, DROP and ALTER DATABASE while the gateway pools server
connections. PostgreSQL refuses them (55006, "... is being accessed by
other users") while any other session is in the database they copy or
change; an idle pooled connection is such a session. The gateway keeps no
idle connection to template0/template1, and a database statement refused
because of idle pooled connections goes again, unseen, once they are
closed (on every worker, or in the multipooler). A session really using
the database still gets PostgreSQL's own error."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import psycopg2  # noqa: E402

PREFIX = "pgw_ddl_"


def quote_ident(name):
    return '"%s"' % name.replace('"', '""')


class DatabaseDdlTest(harness.IntegrationTestCase):

    def gateway(self):
        return self.env.gateway(name="ddl", pool_size=8, pool_timeout=30)

    def gateway2(self):
        return self.env.gateway(name="ddl2", pool_size=8, pool_timeout=30, workers=2)

    # -- helpers ----------------------------------------------------------
    def exists(self, name):
        return bool(self.env.admin_exec("SELECT 1 FROM pg_database WHERE datname = %s", [name]))

    def create_direct(self, name):
        self.drop_direct(name)
        self.env.admin_exec("CREATE DATABASE %s" % quote_ident(name))
        self.addCleanup(self.drop_direct, name)

    def drop_direct(self, name):
        self.env.admin_exec("DROP DATABASE IF EXISTS %s WITH (FORCE)" % quote_ident(name))

    def exec_on(self, ep, sql, dbname=harness.MAIN_DB):
        conn = ep.connect(dbname=dbname, autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def error_of(self, ep, sql, dbname=harness.MAIN_DB):
        """(severity, SQLSTATE, message, detail) of sql's error, or None."""
        try:
            self.exec_on(ep, sql, dbname=dbname)
        except psycopg2.Error as e:
            return (e.diag.severity, e.pgcode, e.diag.message_primary, e.diag.message_detail)
        return None

    def wait_for(self, what, cond, timeout=20.0):
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                self.fail("timed out waiting for " + what)
            time.sleep(0.05)

    def leave_idle(self, ep, db):
        """A client of ep uses db and leaves: the pool keeps the server
        connection (unless ep is PostgreSQL itself)."""
        self.exec_on(ep, "SELECT 1", dbname=db)
        if ep.is_gateway:
            self.assertGreaterEqual(self.env.backend_count(db), 1,
                                    "the gateway kept no connection to %s" % db)

    def assert_template1_let_go(self, ep):
        """A client of ep uses template1 and leaves: no server connection
        to it is kept for later."""
        self.exec_on(ep, "SELECT 1", dbname="template1")
        self.wait_for("no connection to template1",
                      lambda: self.env.backend_count("template1") == 0)

    # -- tests --------------------------------------------------------------
    def test_template1_once_then_create(self):
        """psql on template1 through the gateway, as test helpers do; then
        CREATE DATABASE (which copies template1) through the gateway and
        directly."""
        gw = self.gateway()
        out = gw.psql("-c", "SELECT 1", dbname="template1")
        self.assertEqual(out.returncode, 0, out.stdout)
        for name in (PREFIX + "t1_gw", PREFIX + "t1_direct"):
            self.drop_direct(name)
            self.addCleanup(self.drop_direct, name)
        self.exec_on(gw, "CREATE DATABASE %st1_gw" % PREFIX)
        self.env.admin_exec("CREATE DATABASE %st1_direct" % PREFIX)
        self.assertTrue(self.exists(PREFIX + "t1_gw") and self.exists(PREFIX + "t1_direct"))
        self.assert_template1_let_go(gw)

    def test_create_from_template_in_use(self):
        gw = self.gateway()
        src, dst = PREFIX + "src", PREFIX + "dst"
        self.create_direct(src)
        self.drop_direct(dst)
        self.addCleanup(self.drop_direct, dst)
        self.leave_idle(gw, src)
        self.exec_on(gw, "CREATE DATABASE %s WITH TEMPLATE = %s" % (dst, src))
        self.assertTrue(self.exists(dst))

    def test_drop_after_client_left(self):
        gw = self.gateway()
        db = PREFIX + "drop"
        self.create_direct(db)
        self.leave_idle(gw, db)
        self.exec_on(gw, "DROP DATABASE %s" % db)
        self.assertFalse(self.exists(db))

    def test_drop_after_session_client_left(self):
        """In session mode too: the connection a client kept for its
        session is pooled again when it leaves."""
        gw = self.env.gateway(name="ddl_session", pool_size=4, pool_mode="session", pool_timeout=30)
        db = PREFIX + "session"
        self.create_direct(db)
        self.leave_idle(gw, db)
        out = gw.psql("-c", "DROP DATABASE %s" % db)
        self.assertEqual((out.returncode, out.stdout), (0, "DROP DATABASE\n"))
        self.assertFalse(self.exists(db))
        self.assert_template1_let_go(gw)

    def test_drop_quoted_name(self):
        """The name as the server reads it: quoted, mixed case."""
        gw = self.gateway()
        db = PREFIX + 'Mixed "Case"'
        self.create_direct(db)
        self.leave_idle(gw, db)
        self.exec_on(gw, "DROP DATABASE IF EXISTS %s" % quote_ident(db))
        self.assertFalse(self.exists(db))

    def test_drop_name_not_read(self):
        """A U&"..." name is not decoded: idle connections to every other
        database are closed instead, and the DROP still succeeds."""
        gw = self.gateway()
        db = PREFIX + "ua"
        self.create_direct(db)
        self.leave_idle(gw, db)
        self.exec_on(gw, 'DROP DATABASE U&"%su\\0061"' % PREFIX)
        self.assertFalse(self.exists(db))

    def test_alter_rename(self):
        gw = self.gateway()
        old, new = PREFIX + "old", PREFIX + "new"
        self.create_direct(old)
        self.drop_direct(new)
        self.addCleanup(self.drop_direct, new)
        self.leave_idle(gw, old)
        self.exec_on(gw, "ALTER DATABASE %s RENAME TO %s" % (old, new))
        self.assertTrue(self.exists(new))
        self.assertFalse(self.exists(old))

    def test_drop_with_idle_on_two_workers(self):
        """Idle connections to the database on both worker threads (each
        worker's pool is its own): all are closed."""
        self.skip_in_self_test("needs the gateway's workers")
        gw = self.gateway2()
        db = PREFIX + "two"
        self.create_direct(db)
        conns, workers = [], set()
        try:
            deadline = time.monotonic() + 30
            while len(workers) < 2:
                self.assertLess(time.monotonic(), deadline, "clients never reached both workers")
                c = gw.connect(dbname=db)
                conns.append(c)
                with c.cursor() as cur:
                    cur.execute("SELECT 1")  # a transaction: its own server connection
                workers.add(c.get_backend_pid() >> 24)
            for c in conns:
                c.commit()
        finally:
            for c in conns:
                c.close()
        self.assertGreaterEqual(self.env.backend_count(db), 2)
        self.exec_on(gw, "DROP DATABASE %s" % db)
        self.assertFalse(self.exists(db))

    def test_drop_while_really_in_use(self):
        """A client in a transaction on the database: the DROP fails as it
        does directly (the idle connection beside it is closed first, so
        the count in DETAIL is the same)."""
        gw = self.gateway()
        db = PREFIX + "busy"
        self.create_direct(db)
        holder = gw.connect(dbname=db)
        try:
            with holder.cursor() as cur:
                cur.execute("SELECT 1")
            want = self.error_of(self.env.direct, "DROP DATABASE %s" % db)
            self.assertEqual(want[:3], ("ERROR", "55006",
                                        'database "%s" is being accessed by other users' % db))
            self.assertEqual(want[3], "There is 1 other session using the database.")
            self.leave_idle(gw, db)
            if gw.is_gateway:
                self.assertGreaterEqual(self.env.backend_count(db), 2)
            got = self.error_of(gw, "DROP DATABASE %s" % db)
            self.assertEqual(got, want)
            self.assertTrue(self.exists(db))
            # The client that holds it goes on as before.
            with holder.cursor() as cur:
                cur.execute("SELECT 2")
                self.assertEqual(cur.fetchone(), (2,))
            holder.commit()
        finally:
            holder.close()
        self.exec_on(gw, "DROP DATABASE %s" % db)
        self.assertFalse(self.exists(db))

    def test_not_alone_not_again(self):
        """Only a statement sent alone goes again: in a multi-statement
        string (ALTER DATABASE may run in one) the client hears the 55006,
        and in a transaction block PostgreSQL refuses DROP as directly."""
        gw = self.gateway()
        db, new = PREFIX + "multi", PREFIX + "multi2"
        self.create_direct(db)
        self.drop_direct(new)
        self.addCleanup(self.drop_direct, new)
        self.leave_idle(gw, db)
        err = self.error_of(gw, "SELECT 1; ALTER DATABASE %s RENAME TO %s" % (db, new))
        if gw.is_gateway:
            self.assertEqual(err[:3], ("ERROR", "55006",
                                       'database "%s" is being accessed by other users' % db))
        self.assertEqual(self.exists(db), gw.is_gateway)
        if not gw.is_gateway:
            return
        for ep in (self.env.direct, gw):
            conn = ep.connect()
            try:
                with conn.cursor() as cur:
                    with self.assertRaises(psycopg2.Error) as cm:
                        cur.execute("DROP DATABASE %s" % db)
                    self.assertEqual(cm.exception.pgcode, "25001")
            finally:
                conn.close()
        self.assertTrue(self.exists(db))
