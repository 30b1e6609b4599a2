"""psycopg2 scenarios run directly and through the gateway; results, errors
(pgcode, pgerror, every diag field), notices, notifications and the
transaction status after every step must be identical."""
import io
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import psycopg2  # noqa: E402

EXT = psycopg2.extensions


def recreate(*ddl):
    def setup(admin):
        with admin.cursor() as cur:
            for stmt in ddl:
                cur.execute(stmt)
    return setup


class Psycopg2CompatTest(harness.DualTestCase):

    def test_autocommit_mode(self):
        def scenario(tr, connect):
            c = connect(autocommit=True)
            tr.status(c, "fresh")
            tr.q(c, "SELECT 1 AS one, 'two' AS two, NULL AS three")
            tr.q(c, "INSERT INTO ac_t VALUES (1, 'a'), (2, 'b')")
            tr.q(c, "UPDATE ac_t SET v = v || '!' WHERE id = 1")
            tr.q(c, "SELECT * FROM ac_t ORDER BY id")
            tr.q(c, "SELECT 1/0")                      # error; still idle
            tr.q(c, "SELECT 'after error'")
            tr.q(c, "BEGIN")                           # explicit transaction
            tr.q(c, "INSERT INTO ac_t VALUES (3, 'c')")
            tr.q(c, "SELECT count(*) FROM ac_t")
            tr.q(c, "SELECT * FROM no_such_table")     # -> INERROR
            tr.q(c, "SELECT 1")                        # 25P02
            tr.q(c, "COMMIT")                          # reported as ROLLBACK
            tr.q(c, "SELECT count(*) FROM ac_t")
            tr.q(c, "BEGIN")
            tr.q(c, "DELETE FROM ac_t")
            tr.q(c, "ROLLBACK")
            tr.q(c, "SELECT count(*) FROM ac_t")
            tr.q(c, "START TRANSACTION READ ONLY")
            tr.q(c, "INSERT INTO ac_t VALUES (9, 'ro')")
            tr.q(c, "ROLLBACK")
            tr.q(c, "SELECT %s::int + %s, %s::text, %s", (1, 2, "x'y", None))
            tr.q(c, "SELECT 1 AS a; SELECT 2 AS b")    # multi-statement: last result
            tr.q(c, "INSERT INTO ac_t VALUES (5, 'e'); SELECT 1/0")
            tr.q(c, "SELECT count(*) FROM ac_t")
            tr.q(c, ";")                               # EmptyQueryResponse
            tr.q(c, "-- only a comment")
            tr.q(c, "SELECT 'still fine'")
            tr.status(c, "end")
        self.dual(scenario, setup=recreate("DROP TABLE IF EXISTS ac_t",
                                           "CREATE TABLE ac_t (id int PRIMARY KEY, v text)"))

    def test_transaction_mode(self):
        def scenario(tr, connect):
            c = connect()
            tr.status(c, "fresh")
            tr.q(c, "SELECT 1")                        # implicit BEGIN -> INTRANS
            tr.q(c, "INSERT INTO tx_t VALUES (1, 'a')")
            tr.call(c, "commit", c.commit)
            tr.q(c, "INSERT INTO tx_t VALUES (2, 'b')")
            tr.call(c, "rollback", c.rollback)
            tr.q(c, "SELECT * FROM tx_t ORDER BY id")
            tr.q(c, "INSERT INTO tx_t VALUES (1, 'dup')")  # -> INERROR
            tr.q(c, "SELECT 1")                            # 25P02
            tr.call(c, "commit-in-error", c.commit)        # psycopg2 sends COMMIT -> ROLLBACK
            tr.q(c, "SELECT count(*) FROM tx_t")
            tr.call(c, "rollback", c.rollback)
            # savepoints
            tr.q(c, "INSERT INTO tx_t VALUES (10, 'x')")
            tr.q(c, "SAVEPOINT s1")
            tr.q(c, "INSERT INTO tx_t VALUES (10, 'dup')")
            tr.q(c, "ROLLBACK TO SAVEPOINT s1")
            tr.q(c, "INSERT INTO tx_t VALUES (11, 'y')")
            tr.q(c, "RELEASE SAVEPOINT s1")
            tr.call(c, "commit", c.commit)
            tr.q(c, "SELECT * FROM tx_t ORDER BY id")
            tr.call(c, "rollback", c.rollback)
            # context manager: commit on success, rollback on exception
            with c:
                tr.q(c, "INSERT INTO tx_t VALUES (20, 'ctx')")
            tr.status(c, "after with")
            try:
                with c:
                    tr.q(c, "INSERT INTO tx_t VALUES (21, 'ctx-rolled-back')")
                    raise RuntimeError("boom")
            except RuntimeError:
                pass
            tr.status(c, "after failing with")
            tr.q(c, "SELECT id FROM tx_t WHERE id >= 20 ORDER BY id")
            tr.call(c, "rollback", c.rollback)
            # serialization settings per transaction
            c.isolation_level = EXT.ISOLATION_LEVEL_SERIALIZABLE
            tr.q(c, "SHOW transaction_isolation")
            tr.call(c, "rollback", c.rollback)
            c.isolation_level = EXT.ISOLATION_LEVEL_DEFAULT
            tr.q(c, "SHOW transaction_isolation")
            tr.call(c, "rollback", c.rollback)
            # switching autocommit on and off
            c.autocommit = True
            tr.q(c, "INSERT INTO tx_t VALUES (30, 'auto')")
            tr.status(c, "autocommit on")
            c.autocommit = False
            tr.q(c, "DELETE FROM tx_t WHERE id = 30")
            tr.call(c, "rollback", c.rollback)
            tr.q(c, "SELECT count(*) FROM tx_t WHERE id = 30")
            tr.call(c, "commit", c.commit)
            # server-side end of transaction from SQL
            tr.q(c, "SELECT 1")
            tr.q(c, "COMMIT")
            tr.status(c, "after SQL COMMIT")
        self.dual(scenario, setup=recreate("DROP TABLE IF EXISTS tx_t",
                                           "CREATE TABLE tx_t (id int PRIMARY KEY, v text)"))

    def test_executemany(self):
        def scenario(tr, connect):
            c = connect()
            rows = [(i, "row %d" % i, i * 1.5 if i % 3 else None) for i in range(200)]
            tr.q(c, "INSERT INTO em_t VALUES (%s, %s, %s)", rows, many=True,
                 label="executemany insert")
            tr.q(c, "UPDATE em_t SET v = v || '!' WHERE id = %s", [(i,) for i in range(0, 200, 7)],
                 many=True, label="executemany update")
            tr.call(c, "commit", c.commit)
            tr.q(c, "SELECT count(*), count(f), sum(id), string_agg(v, ',' ORDER BY id) FROM em_t")
            tr.q(c, "INSERT INTO em_t VALUES (%s, %s, %s)", [(1000, "ok", None), (0, "dup", None)],
                 many=True, label="executemany failing")
            tr.call(c, "rollback", c.rollback)
            tr.q(c, "SELECT count(*) FROM em_t")
            tr.call(c, "commit", c.commit)
            # execute_values / execute_batch (multi-statement queries)
            cur = c.cursor()
            try:
                psycopg2.extras.execute_values(cur, "INSERT INTO em_t VALUES %s",
                                               [(i, "ev", None) for i in range(300, 400)])
                psycopg2.extras.execute_batch(cur, "INSERT INTO em_t VALUES (%s, %s, %s)",
                                              [(i, "eb", None) for i in range(400, 450)],
                                              page_size=20)
                c.commit()
            finally:
                cur.close()
            tr.q(c, "SELECT v, count(*) FROM em_t GROUP BY v HAVING v IN ('ev', 'eb') ORDER BY v")
            tr.call(c, "commit", c.commit)
        self.dual(scenario, setup=recreate(
            "DROP TABLE IF EXISTS em_t",
            "CREATE TABLE em_t (id int PRIMARY KEY, v text, f float8)"))

    def test_large_values(self):
        text_val = ("0123456789abcdef\u00e9\u2603" * (10 * 1024 * 1024 // 20))[: 10 * 1024 * 1024]
        bytea_val = bytes((i * 131 + (i >> 9)) & 255 for i in range(1024 * 1024)) * 10

        def scenario(tr, connect):
            c = connect(autocommit=True)
            tr.q(c, "INSERT INTO big_t VALUES (1, %s, %s)", (text_val, psycopg2.Binary(bytea_val)),
                 label="insert 10MB text + 10MB bytea")
            tr.q(c, "SELECT length(t), octet_length(t), md5(t), length(b), md5(b) FROM big_t")
            rows = tr.q(c, "SELECT t, b FROM big_t WHERE id = 1", label="select 10MB values")
            self.assertEqual(rows[0][0], text_val)
            self.assertEqual(bytes(rows[0][1]), bytea_val)
            tr.q(c, "SELECT repeat('x', 10 * 1024 * 1024) AS big, 'after' AS small")
            tr.q(c, "SELECT g, repeat(md5(g::text), 1000) FROM generate_series(1, 300) g",
                 label="300 rows of 32kB")
            tr.q(c, "SELECT %s = t FROM big_t", (text_val,), label="compare 10MB parameter")
        self.dual(scenario, setup=recreate("DROP TABLE IF EXISTS big_t",
                                           "CREATE TABLE big_t (id int, t text, b bytea)"))

    def test_server_errors(self):
        def scenario(tr, connect):
            c = connect(autocommit=True)
            for sql in [
                "SELEC 1",
                "SELECT 1/0",
                "SELECT * FROM no_such_table",
                "SELECT 'abc'::int",
                "SELECT 1 +\n  ;",
                "INSERT INTO er_t VALUES (1, 'dup', 1)",
                "INSERT INTO er_t VALUES (2, NULL, 1)",
                "INSERT INTO er_t VALUES (3, 'x', -1)",
                "DO $$BEGIN RAISE EXCEPTION USING MESSAGE = 'custom', ERRCODE = 'P0042', "
                "DETAIL = 'dd', HINT = 'hh', COLUMN = 'c', CONSTRAINT = 'k', DATATYPE = 't', "
                "TABLE = 'tb', SCHEMA = 's'; END$$",
                "SELECT er_f()",
                "SELECT repeat('x', 1000)::varchar(10)::char(2000000000)",
                "SET no_such_setting = 1",
                "SELECT pg_terminate_backend(-1)",
            ]:
                tr.q(c, sql)
            tr.q(c, "SELECT 'connection still usable'")
            # error raised mid-result: rows already sent, then ErrorResponse
            tr.q(c, "SELECT CASE WHEN g < 1000 THEN g ELSE 1/0 END FROM generate_series(1, 2000) g")
            tr.q(c, "SELECT 'still usable after mid-stream error'")
        self.dual(scenario, setup=recreate(
            "DROP TABLE IF EXISTS er_t",
            "CREATE TABLE er_t (id int PRIMARY KEY, name text NOT NULL, qty int CHECK (qty > 0))",
            "INSERT INTO er_t VALUES (1, 'one', 1)",
            "CREATE OR REPLACE FUNCTION er_f() RETURNS void LANGUAGE plpgsql AS "
            "$$BEGIN EXECUTE 'SELECT * FROM missing_dyn'; END$$"))

    def test_notices(self):
        def scenario(tr, connect):
            c = connect(autocommit=True)
            tr.q(c, "DO $$BEGIN RAISE NOTICE 'plain notice'; END$$")
            tr.q(c, "DO $$BEGIN RAISE NOTICE 'with detail' USING DETAIL = 'the detail', "
                    "HINT = 'the hint'; END$$")
            tr.q(c, "DO $$BEGIN RAISE WARNING 'warn'; RAISE INFO 'info'; END$$")
            tr.q(c, "SELECT nt_f(g) FROM generate_series(1, 5) g", label="notices between rows")
            tr.q(c, "DROP TABLE IF EXISTS definitely_missing")
            tr.q(c, "SET client_min_messages = warning")
            tr.q(c, "DO $$BEGIN RAISE NOTICE 'suppressed'; RAISE WARNING 'shown'; END$$")
            tr.q(c, "RESET client_min_messages")
            tr.q(c, "DO $$BEGIN RAISE NOTICE 'before error'; PERFORM 1/0; END$$")
            c2 = connect()                              # non-autocommit
            tr.q(c2, "DO $$BEGIN RAISE NOTICE 'in tx'; END$$")
            tr.q(c2, "COMMIT")
            tr.q(c2, "COMMIT")          # psycopg2 sent BEGIN first: plain COMMIT
            tr.q(c2, "ROLLBACK")
            c2.rollback()
            c2.autocommit = True
            tr.q(c2, "COMMIT")          # WARNING: there is no transaction in progress
        self.dual(scenario, setup=recreate(
            "CREATE OR REPLACE FUNCTION nt_f(i int) RETURNS int LANGUAGE plpgsql AS "
            "$$BEGIN RAISE NOTICE 'row %', i USING DETAIL = 'detail ' || i; RETURN i; END$$"))

    def test_listen_notify(self):
        def collect(tr, conn, what, count, timeout=30.0):
            harness.wait_notifies(conn, count, timeout)
            for n in conn.notifies:
                self.assertIsInstance(n.pid, int)
                self.assertGreater(n.pid, 0)
            return tr.note(what, harness.take_notifies(conn))

        def scenario(tr, connect):
            listener = connect(autocommit=True)
            notifier = connect(autocommit=True)
            tr.q(listener, "LISTEN pgw_chan")
            tr.q(listener, 'LISTEN "Mixed Case"')
            tr.q(notifier, "NOTIFY pgw_chan, 'one'")
            tr.q(notifier, "SELECT pg_notify('pgw_chan', 'two')")
            tr.q(notifier, "NOTIFY \"Mixed Case\", 'ünïcode ☃'")
            self.assertEqual(len(collect(tr, listener, "received while idle", 3)), 3)
            # notifications in a transaction arrive on commit only
            tr.q(notifier, "BEGIN")
            tr.q(notifier, "NOTIFY pgw_chan, 'tx-1'")
            tr.q(notifier, "NOTIFY pgw_chan, 'tx-2'")
            tr.q(listener, "SELECT 'listener busy'")
            collect(tr, listener, "before commit", 1, timeout=0.3)
            tr.q(notifier, "COMMIT")
            self.assertEqual(len(collect(tr, listener, "after commit", 2)), 2)
            tr.q(notifier, "BEGIN")
            tr.q(notifier, "NOTIFY pgw_chan, 'rolled-back'")
            tr.q(notifier, "ROLLBACK")
            # self-notification: delivered right after the query's results
            tr.q(listener, "NOTIFY pgw_chan, 'self'")
            tr.note("self", [(n.channel, n.payload) for n in listener.notifies])
            # many statements later the listener still receives
            for i in range(5):
                tr.q(listener, "SELECT %s", (i,))
                tr.q(notifier, "NOTIFY pgw_chan, %s", ("loop %d" % i,))
            self.assertEqual(len(collect(tr, listener, "loop", 6)), 6)
            tr.q(listener, "UNLISTEN pgw_chan")
            tr.q(notifier, "NOTIFY pgw_chan, 'after unlisten'")
            tr.q(notifier, "NOTIFY \"Mixed Case\", 'still listening'")
            harness.wait_notifies(listener, 1)
            collect(tr, listener, "after unlisten", 2, timeout=0.3)
            # a notification from a transaction of the listener itself
            tr.q(listener, "BEGIN")
            tr.q(listener, "NOTIFY \"Mixed Case\", 'own tx'")
            tr.q(listener, "COMMIT")
            collect(tr, listener, "own tx", 1)
        self.dual(scenario)

    def test_set_session(self):
        def scenario(tr, connect):
            c = connect()
            c.set_session(isolation_level="REPEATABLE READ", readonly=True)
            tr.q(c, "SHOW transaction_isolation")
            tr.q(c, "SHOW transaction_read_only")
            tr.q(c, "CREATE TABLE ss_should_fail (x int)")
            tr.call(c, "rollback", c.rollback)
            c.set_session(isolation_level="SERIALIZABLE", readonly=False, deferrable=True)
            tr.q(c, "SHOW transaction_isolation")
            tr.q(c, "SHOW transaction_read_only")
            tr.q(c, "SHOW transaction_deferrable")
            tr.call(c, "rollback", c.rollback)
            c.set_session(autocommit=True, isolation_level="READ COMMITTED", readonly=True)
            tr.q(c, "SHOW default_transaction_read_only")
            tr.q(c, "SHOW transaction_read_only")
            tr.q(c, "SELECT 'unrelated statement'")
            tr.q(c, "SHOW default_transaction_isolation")
            tr.q(c, "CREATE TABLE ss_should_fail (x int)")
            c.set_session(readonly="DEFAULT", isolation_level="DEFAULT", deferrable="DEFAULT")
            tr.q(c, "SHOW default_transaction_read_only")
            tr.q(c, "SHOW transaction_isolation")
            c.set_session(autocommit=False)
            tr.q(c, "SELECT 1")
            tr.status(c)
            tr.call(c, "rollback", c.rollback)
            tr.note("isolation_level", c.isolation_level)
            tr.note("readonly", c.readonly)
        self.dual(scenario)

    def test_copy_expert(self):
        data = "".join("%d\tname %d\t%s\n" % (i, i, "\\N" if i % 5 == 0 else str(i * 2.5))
                       for i in range(5000))
        data += "9999\tünïcode ☃ tab\\there\t1\n"

        def scenario(tr, connect):
            c = connect()
            cur = c.cursor()
            tr.call(c, "copy from stdin",
                    lambda: cur.copy_expert("COPY cp_t FROM STDIN", io.StringIO(data)) or cur.rowcount)
            tr.call(c, "commit", c.commit)
            tr.q(c, "SELECT count(*), count(score), sum(id), md5(string_agg(name, ',' ORDER BY id)) FROM cp_t")
            out = io.StringIO()
            tr.call(c, "copy to stdout",
                    lambda: cur.copy_expert("COPY (SELECT * FROM cp_t ORDER BY id) TO STDOUT", out)
                    or cur.rowcount)
            self.assertEqual(sorted(out.getvalue().splitlines()), sorted(data.splitlines()))
            tr.note("copy out", out.getvalue())
            out = io.StringIO()
            tr.call(c, "copy csv",
                    lambda: cur.copy_expert("COPY (SELECT * FROM cp_t WHERE id < 20 ORDER BY id) "
                                            "TO STDOUT (FORMAT csv, HEADER)", out))
            tr.note("copy csv", out.getvalue())
            outb = io.BytesIO()
            tr.call(c, "copy binary",
                    lambda: cur.copy_expert("COPY (SELECT * FROM cp_t ORDER BY id) TO STDOUT "
                                            "(FORMAT binary)", outb))
            tr.note("copy binary", outb.getvalue())
            tr.call(c, "copy bad data",
                    lambda: cur.copy_expert("COPY cp_t FROM STDIN",
                                            io.StringIO("1\tok\t1\nnot-an-int\tbad\t1\n")))
            tr.status(c, "after failed copy")
            tr.call(c, "rollback", c.rollback)
            tr.call(c, "copy duplicate",
                    lambda: cur.copy_expert("COPY cp_t FROM STDIN", io.StringIO("1\tdup\t1\n")))
            tr.call(c, "rollback", c.rollback)
            # binary COPY FROM round trip
            tr.q(c, "CREATE TEMP TABLE cp_bin (LIKE cp_t)")
            outb.seek(0)
            tr.call(c, "copy binary in",
                    lambda: cur.copy_expert("COPY cp_bin FROM STDIN (FORMAT binary)", outb)
                    or cur.rowcount)
            tr.q(c, "SELECT count(*) FROM cp_bin")
            tr.call(c, "commit", c.commit)
            # copy_from / copy_to helpers (autocommit mode)
            c.autocommit = True
            buf = io.StringIO("70000\tseventy\t7\n70001\tseventy-one\t\\N\n")
            tr.call(c, "copy_from", lambda: cur.copy_from(buf, "cp_t") or cur.rowcount)
            tr.status(c, "after copy_from")
            out = io.StringIO()
            tr.call(c, "copy_to", lambda: cur.copy_to(out, "cp_t", columns=("id", "name")))
            tr.note("copy_to lines", len(out.getvalue().splitlines()))
            tr.q(c, "SELECT count(*) FROM cp_t")
        self.dual(scenario, setup=recreate(
            "DROP TABLE IF EXISTS cp_t",
            "CREATE TABLE cp_t (id int PRIMARY KEY, name text, score numeric)"))

    def test_unicode(self):
        def scenario(tr, connect):
            c = connect(autocommit=True)
            samples = ["héllo wörld", "☃ snowman", "日本語テキスト", "emoji 🐘🚀", "Ελληνικά",
                       "עברית", "zero\u200bwidth", "combining e\u0301", "\u00ff\u0100"]
            tr.q(c, "INSERT INTO uni_t VALUES " + ", ".join(["(%s, %s)"] * len(samples)),
                 [x for i, s in enumerate(samples) for x in (i, s)])
            rows = tr.q(c, "SELECT id, s, length(s), octet_length(s) FROM uni_t ORDER BY id")
            self.assertEqual([r[1] for r in rows], samples)
            tr.q(c, 'SELECT 1 AS "colonne_é☃", %s AS "日本"', ("値",))
            tr.q(c, 'SELECT "missing_☃" FROM uni_t')
            tr.q(c, "SELECT 'x' || %s", ("\udcff".encode("utf-8", "surrogatepass").decode("latin-1"),))
            tr.q(c, "DO $$BEGIN RAISE NOTICE 'notice ünïcode ☃ %', 'params ü'; END$$")
            tr.q(c, "SHOW client_encoding")
            tr.note("param client_encoding", c.info.parameter_status("client_encoding"))
            c.set_client_encoding("LATIN1")
            tr.q(c, "SHOW client_encoding")
            tr.note("param client_encoding latin1", c.info.parameter_status("client_encoding"))
            tr.q(c, "SELECT 'grüße'")
            tr.q(c, "SELECT s FROM uni_t WHERE id = 0")
            tr.q(c, "SELECT s FROM uni_t WHERE id = 1")   # no LATIN1 equivalent -> 22P05
            tr.q(c, "SELECT 'after encoding error'")
            tr.q(c, "SELECT 'statement later'")
            tr.q(c, "SHOW client_encoding")
            c.set_client_encoding("UTF8")
            tr.q(c, "SELECT s FROM uni_t WHERE id = 1")
            tr.note("param client_encoding utf8", c.info.parameter_status("client_encoding"))
        self.dual(scenario, setup=recreate("DROP TABLE IF EXISTS uni_t",
                                           "CREATE TABLE uni_t (id int, s text)"))

    def test_parameter_status(self):
        params = ["server_version", "server_encoding", "client_encoding", "DateStyle",
                  "IntervalStyle", "TimeZone", "integer_datetimes", "standard_conforming_strings",
                  "application_name", "is_superuser", "session_authorization",
                  "default_transaction_read_only", "in_hot_standby"]

        def snap(tr, c, label):
            tr.note(label, {p: c.info.parameter_status(p) for p in params})

        def scenario(tr, connect):
            c = connect(autocommit=True, application_name="ps-test")
            snap(tr, c, "startup")
            tr.note("server_version", c.server_version)
            tr.note("protocol_version", c.protocol_version)
            tr.q(c, "SET TimeZone = 'Asia/Tokyo'")
            tr.q(c, "SET DateStyle = 'SQL, DMY'")
            tr.q(c, "SET application_name = 'renamed'")
            tr.q(c, "SET IntervalStyle = 'iso_8601'")
            snap(tr, c, "after SET")
            tr.q(c, "SELECT 'a statement later'")
            snap(tr, c, "a statement later")
            tr.q(c, "BEGIN")
            tr.q(c, "SET TimeZone = 'Europe/Paris'")
            snap(tr, c, "SET in transaction")
            tr.q(c, "ROLLBACK")
            snap(tr, c, "after rollback")
            tr.q(c, "RESET ALL")
            snap(tr, c, "after RESET ALL")
            c2 = connect(autocommit=True, options="-c TimeZone=America/Chicago -c DateStyle=German")
            snap(tr, c2, "startup options")
            tr.q(c2, "SELECT timestamptz '2024-07-01 12:00:00+00'::text, date '2024-01-02'::text")
        self.dual(scenario)
