"""Session state survives transaction pooling.

Several clients share a gateway with a pool of 1 backend (SET/startup
parameters are replayed on whichever backend serves a client) or 2 backends
(temp tables, LISTEN, PREPARE, session advisory locks pin a backend).
Every scenario also runs directly against PostgreSQL and the traces must be
identical."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

STATE_DB = "pgw_state"
PIN_DB = "pgw_pin"
CLEAN_DB = "pgw_clean"

SHOW = ["search_path", "application_name", "TimeZone", "DateStyle", "statement_timeout",
        "work_mem", "IntervalStyle", "lock_timeout"]
REPORTED = ["application_name", "TimeZone", "DateStyle", "IntervalStyle", "client_encoding"]


def show_all(tr, c, who):
    rows = tr.q(c, "SELECT " + ", ".join("current_setting('%s')" % s for s in SHOW),
                label="%s: settings" % who)
    tr.note("%s: ParameterStatus" % who, {p: c.info.parameter_status(p) for p in REPORTED})
    return dict(zip(SHOW, rows[0]))


def setup_schemas(admin):
    with admin.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS sa CASCADE; DROP SCHEMA IF EXISTS sb CASCADE")
        cur.execute("CREATE SCHEMA sa; CREATE TABLE sa.t (v text); INSERT INTO sa.t VALUES ('in sa')")
        cur.execute("CREATE SCHEMA sb; CREATE TABLE sb.t (v text); INSERT INTO sb.t VALUES ('in sb')")


class SessionStateTest(harness.DualTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for db in (STATE_DB, PIN_DB, CLEAN_DB):
            cls.env.create_database(db)

    def pool1(self):
        return self.gw(name="pool1", pool_size=1, pool_timeout=10)

    def pool2(self):
        return self.gw(name="pool2", pool_size=2, pool_timeout=10)

    def test_set_and_startup_params_interleaved(self):
        """pool of 1: A's SETs, B's and C's startup options, all on one backend.
        (With one backend, no other client can run while one is inside a
        transaction, so the scenario never interleaves there; test_pinned_state
        covers that with a pool of 2.)"""
        def scenario(tr, connect):
            a = connect(autocommit=True, application_name="client-a")
            b = connect(autocommit=True, application_name="client-b",
                        options="-c statement_timeout=1234")
            c = connect(autocommit=True, options="-c search_path=sb -c DateStyle=German "
                                                 "-c lock_timeout=4321")
            for s in ("SET search_path = sa", "SET application_name = 'a-renamed'",
                      "SET TimeZone = 'America/New_York'", "SET DateStyle = 'SQL, DMY'",
                      "SET work_mem = '7MB'", "SET IntervalStyle = 'iso_8601'"):
                tr.q(a, s)
            for rnd in range(3):
                sb = show_all(tr, b, "B%d" % rnd)
                tr.q(b, "SELECT to_regclass('t') IS NULL AS no_t")
                sc = show_all(tr, c, "C%d" % rnd)
                tr.q(c, "SELECT v FROM t")
                sa = show_all(tr, a, "A%d" % rnd)
                tr.q(a, "SELECT v FROM t")
                tr.q(a, "SELECT timestamptz '2024-07-01 12:00:00+00'::text, date '2024-01-02'::text, "
                        "interval '1 day 2 hours'::text")
                tr.q(c, "SELECT date '2024-01-02'::text")
                self.assertEqual(sa["search_path"], "sa")
                self.assertEqual(sa["application_name"], "a-renamed")
                self.assertEqual(sa["TimeZone"], "America/New_York")
                self.assertEqual(sa["work_mem"], "7MB")
                self.assertEqual(sb["application_name"], "client-b")
                self.assertEqual(sb["statement_timeout"], "1234ms")
                self.assertEqual(sb["TimeZone"], "UTC")
                self.assertEqual(sb["work_mem"], "4MB")
                self.assertEqual(sc["search_path"], "sb")
                # psycopg2 itself sends SET DATESTYLE TO 'ISO' after connecting
                self.assertEqual(sc["DateStyle"], "ISO, DMY")
                self.assertEqual(sc["lock_timeout"], "4321ms")
            # SET in a rolled-back transaction is undone; SET LOCAL doesn't stick
            tr.q(a, "BEGIN")
            tr.q(a, "SET search_path = sb")
            tr.q(a, "SELECT v FROM t")
            tr.q(a, "ROLLBACK")
            tr.q(b, "SELECT current_setting('search_path')")
            tr.q(a, "SHOW search_path")
            tr.q(a, "BEGIN")
            tr.q(a, "SET LOCAL work_mem = '64MB'")
            tr.q(a, "SHOW work_mem")
            tr.q(a, "COMMIT")
            tr.q(b, "SHOW work_mem")
            show_all(tr, a, "A after tx")
            # SET in a multi-statement query, and in a failing one
            tr.q(b, "SET work_mem = '5MB'; SELECT 1")
            tr.q(b, "SET lock_timeout = '99s'; SELECT 1/0")
            show_all(tr, c, "C after B's multi-statement")
            show_all(tr, b, "B after multi-statement")
            # RESET goes back to the startup value, not the server default
            tr.q(b, "SET statement_timeout = 0")
            tr.q(b, "RESET statement_timeout")
            tr.q(b, "SHOW statement_timeout")
            tr.q(a, "RESET ALL")
            show_all(tr, a, "A after RESET ALL")
            show_all(tr, c, "C at end")
            # a non-autocommit client: SET inside psycopg2's implicit transaction
            d = connect()
            tr.q(d, "SET search_path = sb")
            tr.call(d, "commit", d.commit)
            tr.q(a, "SELECT 1")
            tr.q(d, "SELECT v FROM t")
            tr.call(d, "commit", d.commit)
            tr.q(d, "SET TimeZone = 'Asia/Tokyo'")
            tr.call(d, "rollback", d.rollback)
            show_all(tr, d, "D")
            tr.call(d, "rollback", d.rollback)
        self.dual(scenario, gateway=self.pool1(), dbname=STATE_DB, setup=setup_schemas)

    def test_pinned_state(self):
        """pool of 2: A's temp table, advisory lock, LISTEN and PREPARE stay
        with A; B (on the other backend) sees none of them."""
        def scenario(tr, connect):
            a = connect(autocommit=True)
            b = connect(autocommit=True)
            tr.q(a, "CREATE TEMP TABLE tt (x int)")
            tr.q(a, "INSERT INTO tt VALUES (1), (2)")
            tr.q(b, "SELECT to_regclass('tt') IS NULL AS invisible")
            tr.q(a, "SELECT count(*) FROM tt")
            tr.q(b, "SELECT * FROM tt")
            tr.q(a, "INSERT INTO tt VALUES (3)")
            tr.q(b, "SELECT 1")
            tr.q(a, "SELECT count(*) FROM tt")
            # session advisory lock
            tr.q(a, "SELECT pg_advisory_lock(1)")
            for i in range(3):
                r = tr.q(b, "SELECT pg_try_advisory_lock(1)")
                self.assertEqual(r, [(False,)])
                tr.q(a, "SELECT %s", (i,))
            tr.q(a, "SELECT pg_advisory_unlock(1)")
            r = tr.q(b, "SELECT pg_try_advisory_lock(1)")
            self.assertEqual(r, [(True,)])
            tr.q(a, "SELECT pg_try_advisory_lock(1)")
            tr.q(b, "SELECT pg_advisory_unlock(1)")
            tr.q(a, "SELECT pg_try_advisory_lock(1)")
            tr.q(a, "SELECT pg_advisory_unlock(1)")
            # LISTEN keeps receiving
            tr.q(a, "LISTEN pin_chan")
            for i in range(3):
                tr.q(b, "NOTIFY pin_chan, %s", ("n%d" % i,))
                tr.q(a, "SELECT count(*) FROM tt")
            harness.wait_notifies(a, 3)
            got = tr.note("notifies", harness.take_notifies(a))
            self.assertEqual(len(got), 3)
            # SQL-level prepared statements
            tr.q(a, "PREPARE p(int) AS SELECT $1 * 2")
            tr.q(b, "EXECUTE p(1)")
            tr.q(b, "SELECT count(*) FROM pg_prepared_statements")
            tr.q(a, "EXECUTE p(21)")
            tr.q(b, "SELECT 1")
            tr.q(a, "EXECUTE p(50)")
            tr.q(a, "SELECT name FROM pg_prepared_statements")
            # transaction on the pinned client, status codes
            tr.q(a, "BEGIN")
            tr.q(a, "INSERT INTO tt VALUES (4)")
            tr.q(b, "SELECT 'b while a in tx'")
            tr.q(a, "SELECT 1/0")
            tr.q(a, "SELECT 1")
            tr.q(a, "ROLLBACK")
            tr.q(a, "SELECT count(*) FROM tt")
            tr.q(a, "DEALLOCATE p")
            tr.q(a, "UNLISTEN *")
            tr.q(a, "DROP TABLE tt")
            tr.q(a, "SELECT 'done'")
        self.dual(scenario, gateway=self.pool2(), dbname=PIN_DB)

    def test_state_does_not_leak_to_next_client(self):
        """pool of 1: a client leaves SETs, temp table, LISTEN, PREPARE and an
        advisory lock behind and disconnects; the next client sees none."""
        def scenario(tr, connect):
            a = connect(autocommit=True)
            for s in ("SET search_path = leak_schema", "SET work_mem = '13MB'",
                      "SET application_name = 'leaky'", "SET TimeZone = 'Asia/Tokyo'",
                      "CREATE TEMP TABLE leak_tmp (x int)", "LISTEN leak_chan",
                      "PREPARE leak_p AS SELECT 1", "SELECT pg_advisory_lock(77)",
                      "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"):
                tr.q(a, s)
            a.close()
            deadline = time.monotonic() + 30
            while True:   # directly: the advisory lock must go away
                n = self.env.admin_exec("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                        "AND objid = 77")[0][0]
                if n == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            tr.note("advisory locks left", n)
            b = connect(autocommit=True)
            show_all(tr, b, "B")
            tr.q(b, "SELECT to_regclass('pg_temp.leak_tmp') IS NULL, "
                    "(SELECT count(*) FROM pg_listening_channels()), "
                    "(SELECT count(*) FROM pg_prepared_statements), "
                    "current_setting('default_transaction_read_only')")
            tr.q(b, "SELECT pg_try_advisory_lock(77)")
            tr.q(b, "SELECT pg_advisory_unlock(77)")
            tr.q(b, "CREATE TEMP TABLE leak_tmp (x int)")
            tr.q(b, "PREPARE leak_p AS SELECT 2")
            tr.q(b, "EXECUTE leak_p")
        self.dual(scenario, gateway=self.pool1(), dbname=CLEAN_DB)

    def temp_namespace_scenario(self, tr, connect):
        a = connect(autocommit=True)
        tr.q(a, "CREATE TEMP TABLE ns_tmp (x int)")
        tr.q(a, "SELECT pg_my_temp_schema() <> 0")
        a.close()
        b = connect(autocommit=True)
        tr.q(b, "SELECT pg_my_temp_schema()")
        # pg_regress temp.sql: a session's first use of pg_temp makes its
        # temporary namespace, which a prepared transaction may not touch.
        tr.q(b, "SET search_path TO 'pg_temp'")
        tr.q(b, "BEGIN")
        tr.q(b, "SELECT current_schema() ~ 'pg_temp' AS is_temp_schema")
        tr.q(b, "PREPARE TRANSACTION 'ns_twophase'")
        tr.q(b, "ROLLBACK")

    def test_next_client_has_no_temp_namespace(self):
        """pool of 1: a client that made a temporary table leaves; the next
        client's session has no temporary namespace, as a new session of
        PostgreSQL has none (the server connection is closed, not pooled)."""
        self.dual(self.temp_namespace_scenario, gateway=self.pool1(), dbname=CLEAN_DB)

    def test_next_client_has_no_temp_namespace_session_mode(self):
        self.dual(self.temp_namespace_scenario,
                  gateway=self.gw(name="pool1-session", pool_size=1, pool_timeout=10,
                                  pool_mode="session"),
                  dbname=CLEAN_DB)

    def test_pgoptions_psql(self):
        """psql with PGOPTIONS/PGAPPNAME through a pool of 1 while another
        client with different settings holds a session on the same pool."""
        gw = self.pool1()
        script = ("SHOW search_path;\nSHOW TimeZone;\nSHOW DateStyle;\nSHOW application_name;\n"
                  "SHOW statement_timeout;\n"
                  "SELECT timestamptz '2024-07-01 12:00:00+00' AS ts, date '2024-01-02' AS d;\n"
                  "SELECT v FROM t;\nSET search_path = sa;\nSELECT v FROM t;\nSHOW search_path;\n")
        env_extra = {"PGOPTIONS": "-c search_path=sb -c TimeZone=Asia/Tokyo "
                                  "-c DateStyle=German -c statement_timeout=4567",
                     "PGAPPNAME": "psql-opts"}
        outs = []
        for ep in (self.env.direct, gw):
            admin = self.env.admin_connect(dbname=STATE_DB)
            setup_schemas(admin)
            admin.close()
            other = ep.connect(dbname=STATE_DB, autocommit=True)
            try:
                with other.cursor() as cur:
                    cur.execute("SET TimeZone = 'America/New_York'; SET search_path = sa; "
                                "SET DateStyle = 'Postgres'")
                r = ep.psql("-a", "-v", "ON_ERROR_STOP=1", dbname=STATE_DB, input=script,
                            env_extra=env_extra)
                with other.cursor() as cur:
                    cur.execute("SELECT current_setting('TimeZone'), current_setting('search_path')")
                    self.assertEqual(cur.fetchall(), [("America/New_York", "sa")])
            finally:
                other.close()
            self.assertEqual(r.returncode, 0, r.stdout)
            outs.append(harness.mask_output(r.stdout))
        self.assertIn("Asia/Tokyo", outs[0])
        self.assertIn("psql-opts", outs[0])
        self.assertIn("4567ms", outs[0])
        self.assertEqual(outs[0], outs[1], harness.text_diff(outs[0], outs[1]))

    def test_pool1_uses_one_backend(self):
        """gateway only: 4 clients over --pool-size 1 use one backend connection.
        Through a multipooler the server connections are the multipooler's:
        its pool is 1 too (the gateway's pool size bounds each of its
        workers' holds, not what PostgreSQL sees)."""
        self.skip_in_self_test("no pool")
        gw = self.gw(name="pool1-one", pool_size=1, pool_timeout=10, pooler_pool_size=1)
        db = self.env.create_database("pgw_pool1_count")
        conns = [gw.connect(dbname=db, autocommit=True, application_name="c%d" % i)
                 for i in range(4)]
        try:
            seen = 0
            for rnd in range(5):
                for i, c in enumerate(conns):
                    with c.cursor() as cur:
                        cur.execute("SELECT %s, current_setting('application_name')", (i,))
                        self.assertEqual(cur.fetchall(), [(i, "c%d" % i)])
                    seen = max(seen, self.env.backend_count(db))
            self.assertGreaterEqual(seen, 1)
            self.assertLessEqual(seen, 1, "pool-size 1 but PostgreSQL saw %d backends" % seen)
        finally:
            for c in conns:
                c.close()

    def test_packet_parameters_override_options(self):
        """A parameter named both in the startup packet and in its options
        (-c) gets the packet's value, as PostgreSQL applies the options
        first (lib/pq sends client_encoding both ways)."""
        def scenario(tr, connect):
            c = connect(autocommit=True, application_name="from-packet",
                        options="-c application_name=from-options -c work_mem=3MB")
            tr.q(c, "SHOW application_name")
            tr.q(c, "SHOW work_mem")
            tr.q(c, "RESET application_name")
            tr.q(c, "SHOW application_name")
        self.dual(scenario, gateway=self.pool1(), dbname=STATE_DB)

    def test_list_settings_in_options(self):
        """A list value in the startup options (search_path=a,b) is a list,
        as PostgreSQL parses it at startup, not one quoted name."""
        def scenario(tr, connect):
            c = connect(autocommit=True,
                        options="-c search_path=pgw_nowhere,public -c DateStyle=SQL,DMY")
            tr.q(c, "SHOW search_path")
            tr.q(c, "SHOW DateStyle")
            tr.q(c, "DROP TABLE IF EXISTS list_opts; CREATE TABLE list_opts (a int)")
            tr.q(c, "SELECT schemaname FROM pg_tables WHERE tablename = 'list_opts'")
            tr.q(c, "DROP TABLE list_opts")
            d = connect(autocommit=True, options="-c search_path=pgw_nowhere,public")
            tr.q(d, "SELECT current_setting('search_path')")
        self.dual(scenario, gateway=self.pool1(), dbname=STATE_DB)
