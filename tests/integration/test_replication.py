"""Replication connections (replication=true and replication=database)
through the gateway, each compared with the same thing done directly:
pg_basebackup, pg_receivewal, pg_recvlogical, psycopg2's replication
connections, replication commands over psql, cancel, an invalid
replication value, flow control, and a client leaving mid-stream."""
import filecmp
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import psycopg2  # noqa: E402

BIN = harness.PGBIN
SEGMENT = 16 * 1024 * 1024


def run(argv, env, timeout=120):
    return subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)


def lsn_int(text):
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


class ReplicationTest(harness.IntegrationTestCase):

    def endpoints(self):
        return [("direct", self.env.direct), ("gateway", self.gw())]

    def admin(self, sql, params=None):
        return self.env.admin_exec(sql, params, dbname=harness.MAIN_DB)

    def current_lsn(self, kind="flush"):
        # flush: where streaming may start or stop; insert: past the last
        # commit even while synchronous_commit off has not written it yet.
        return self.admin("SELECT pg_current_wal_%s_lsn()::text" % kind)[0][0]

    def wal_senders(self, appname):
        return self.admin("SELECT count(*) FROM pg_stat_replication WHERE application_name = %s",
                          (appname,))[0][0]

    def wait_for(self, what, cond, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.1)
        self.fail("timed out waiting for " + what)

    def workdir(self, name):
        d = os.path.join(self.env.tmp, "repl-" + name)
        os.makedirs(d, exist_ok=True)
        return d

    # -- pg_basebackup ---------------------------------------------------------

    def test_pg_basebackup_stream(self):
        listings = {}
        for label, ep in self.endpoints():
            target = os.path.join(self.workdir("basebackup"), label)
            r = run([os.path.join(BIN, "pg_basebackup"), "-D", target, "-X", "stream",
                     "-c", "fast", "--no-sync", "-d", ep.dsn(dbname="replication")],
                    ep.env(), timeout=300)
            self.assertEqual(r.returncode, 0, "%s: pg_basebackup failed:\n%s" % (label, r.stdout))
            for f in ("PG_VERSION", "backup_label", "backup_manifest", "global/pg_control"):
                self.assertTrue(os.path.isfile(os.path.join(target, f)), "%s: no %s" % (label, f))
            wal = [f for f in os.listdir(os.path.join(target, "pg_wal")) if len(f) == 24]
            self.assertTrue(wal, "%s: no WAL streamed into pg_wal" % label)
            v = run([os.path.join(BIN, "pg_verifybackup"), target], ep.env(), timeout=300)
            self.assertEqual(v.returncode, 0, "%s: pg_verifybackup:\n%s" % (label, v.stdout))
            self.assertIn("successfully verified", v.stdout)
            listings[label] = sorted(e for e in os.listdir(target))
        self.assertEqual(listings["direct"], listings["gateway"])
        # Nothing left behind: the backup's WAL sender and its temporary slot.
        self.wait_for("the WAL senders to end", lambda: self.wal_senders("pg_basebackup") == 0)
        self.assertEqual(self.admin("SELECT count(*) FROM pg_replication_slots")[0][0], 0)

    # -- pg_receivewal with a slot ------------------------------------------------

    def test_pg_receivewal_slot(self):
        eps = self.endpoints()
        recv = os.path.join(BIN, "pg_receivewal")
        for label, ep in eps:
            # Reserving WAL now (pg_receivewal --create-slot would not), so
            # that streaming starts here, before the segments made below.
            r = ep.psql("-c", "CREATE_REPLICATION_SLOT rw_%s PHYSICAL RESERVE_WAL" % label,
                        "dbname=replication replication=true")
            self.assertEqual(r.returncode, 0, "%s: CREATE_REPLICATION_SLOT:\n%s" % (label, r.stdout))
        try:
            # A few whole segments after both slots' start.
            for _ in range(3):
                self.admin("CREATE TABLE IF NOT EXISTS rw_t(x int); INSERT INTO rw_t VALUES (1);"
                           " SELECT pg_switch_wal()")
            endpos = self.current_lsn()
            dirs = {}
            for label, ep in eps:
                d = self.workdir("receivewal-" + label)
                r = run([recv, "-D", d, "-S", "rw_" + label, "-E", endpos, "--no-loop",
                         "-d", ep.dsn(dbname="replication", application_name="rw_" + label)],
                        ep.env())
                self.assertEqual(r.returncode, 0, "%s: pg_receivewal:\n%s" % (label, r.stdout))
                dirs[label] = d
                done = sorted(f for f in os.listdir(d) if len(f) == 24)
                self.assertGreaterEqual(len(done), 3, "%s: segments %s" % (label, done))
            # The same server WAL, byte for byte, whichever way it came.
            common = sorted(set(f for f in os.listdir(dirs["direct"]) if len(f) == 24) &
                            set(f for f in os.listdir(dirs["gateway"]) if len(f) == 24))
            self.assertGreaterEqual(len(common), 3)
            for f in common:
                self.assertEqual(os.path.getsize(os.path.join(dirs["gateway"], f)), SEGMENT)
                self.assertTrue(filecmp.cmp(os.path.join(dirs["direct"], f),
                                            os.path.join(dirs["gateway"], f), shallow=False),
                                "segment %s differs" % f)
        finally:
            for label, ep in eps:
                r = run([recv, "--drop-slot", "-S", "rw_" + label, "-d",
                         ep.dsn(dbname="replication")], ep.env())
                self.assertEqual(r.returncode, 0, "%s: --drop-slot:\n%s" % (label, r.stdout))
            self.admin("DROP TABLE IF EXISTS rw_t")

    # -- pg_recvlogical with test_decoding ------------------------------------------

    def test_pg_recvlogical_test_decoding(self):
        eps = self.endpoints()
        tool = os.path.join(BIN, "pg_recvlogical")
        db = harness.MAIN_DB
        self.admin("DROP TABLE IF EXISTS rl_t; CREATE TABLE rl_t(id int primary key, v text)")
        for label, ep in eps:
            r = run([tool, "-d", ep.dsn(dbname=db), "-S", "rl_" + label, "--create-slot",
                     "-P", "test_decoding"], ep.env())
            self.assertEqual(r.returncode, 0, "%s: --create-slot:\n%s" % (label, r.stdout))
        try:
            # Rows written through an ordinary (pooled) gateway connection.
            c = self.gw().connect(autocommit=True)
            with c.cursor() as cur:
                cur.execute("INSERT INTO rl_t SELECT g, 'row ' || g FROM generate_series(1, 5) g")
                cur.execute("UPDATE rl_t SET v = 'changed' WHERE id = 3")
                cur.execute("DELETE FROM rl_t WHERE id = 5")
            c.close()
            endpos = self.current_lsn("insert")
            out = {}
            for label, ep in eps:
                f = os.path.join(self.workdir("recvlogical"), label + ".out")
                r = run([tool, "-d", ep.dsn(dbname=db), "-S", "rl_" + label, "--start",
                         "-E", endpos, "--no-loop", "-f", f, "-o", "include-xids=0"],
                        ep.env())
                self.assertEqual(r.returncode, 0, "%s: --start:\n%s" % (label, r.stdout))
                with open(f) as fh:
                    out[label] = fh.read()
            self.assertIn("table public.rl_t: INSERT: id[integer]:1 v[text]:'row 1'",
                          out["gateway"])
            self.assertIn("table public.rl_t: UPDATE: id[integer]:3 v[text]:'changed'",
                          out["gateway"])
            self.assertIn("table public.rl_t: DELETE: id[integer]:5", out["gateway"])
            self.assertEqual(out["direct"], out["gateway"])
        finally:
            for label, ep in eps:
                r = run([tool, "-d", ep.dsn(dbname=db), "-S", "rl_" + label, "--drop-slot"],
                        ep.env())
                self.assertEqual(r.returncode, 0, "%s: --drop-slot:\n%s" % (label, r.stdout))
            self.admin("DROP TABLE IF EXISTS rl_t")
        self.assertEqual(self.admin("SELECT count(*) FROM pg_replication_slots")[0][0], 0)

    # -- psycopg2's replication connections ----------------------------------------

    def test_psycopg2_logical_stream_and_feedback(self):
        import psycopg2.extras as extras
        self.admin("DROP TABLE IF EXISTS pl_t; CREATE TABLE pl_t(id int)")
        seen = {}
        try:
            conns = {}
            for label, ep in self.endpoints():
                conn = psycopg2.connect(ep.dsn(), connection_factory=extras.LogicalReplicationConnection)
                cur = conn.cursor()
                cur.create_replication_slot("pl_" + label, output_plugin="test_decoding")
                conns[label] = (conn, cur)
            self.admin("INSERT INTO pl_t SELECT generate_series(1, 3)")
            for label, (conn, cur) in conns.items():
                cur.start_replication(slot_name="pl_" + label, decode=True,
                                      options={"include-xids": "0"})
                got, last = [], None
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and not any(p.startswith("COMMIT") for p in got):
                    msg = cur.read_message()
                    if msg is None:
                        select.select([cur], [], [], 1.0)
                        continue
                    got.append(msg.payload)
                    last = msg
                self.assertIsNotNone(last, label)
                cur.send_feedback(flush_lsn=last.data_start, force=True)
                flushed = lambda: self.admin(  # noqa: E731
                    "SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots"
                    " WHERE slot_name = %s", ("%X/%X" % (last.data_start >> 32,
                                                         last.data_start & 0xffffffff),
                                              "pl_" + label))[0][0]
                self.wait_for("the feedback to reach the slot (%s)" % label, flushed)
                seen[label] = got
                conn.close()
            self.assertEqual(seen["direct"], seen["gateway"])
            self.assertIn("table public.pl_t: INSERT: id[integer]:2", seen["gateway"])
        finally:
            self.wait_for("the WAL senders to end", lambda: self.admin(
                "SELECT count(*) FROM pg_replication_slots WHERE active")[0][0] == 0)
            for label in ("direct", "gateway"):
                self.admin("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                           " WHERE slot_name = %s", ("pl_" + label,))
            self.admin("DROP TABLE IF EXISTS pl_t")

    def test_psycopg2_physical_stream_and_feedback(self):
        import psycopg2.extras as extras
        ident = {}
        for label, ep in self.endpoints():
            app = "pp_" + label
            conn = psycopg2.connect(ep.dsn(dbname="replication", application_name=app),
                                    connection_factory=extras.PhysicalReplicationConnection)
            cur = conn.cursor()
            cur.execute("IDENTIFY_SYSTEM")
            systemid, timeline, _xlogpos, dbname = cur.fetchone()
            ident[label] = (systemid, timeline, dbname)
            start = self.current_lsn()
            cur.start_replication(start_lsn=start, timeline=timeline)
            self.admin("CREATE TABLE IF NOT EXISTS pp_t(x int);"
                       " INSERT INTO pp_t SELECT generate_series(1, 1000)")
            total, last = 0, None
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and total < 10000:
                msg = cur.read_message()
                if msg is None:
                    select.select([cur], [], [], 1.0)
                    continue
                total += len(msg.payload)
                last = msg
            self.assertIsNotNone(last, "%s: no WAL streamed" % label)
            self.assertGreaterEqual(last.data_start, lsn_int(start))
            cur.send_feedback(write_lsn=last.data_start, flush_lsn=last.data_start, force=True)
            self.wait_for("the feedback (%s)" % label, lambda: self.admin(
                "SELECT write_lsn >= %s::pg_lsn FROM pg_stat_replication"
                " WHERE application_name = %s",
                ("%X/%X" % (last.data_start >> 32, last.data_start & 0xffffffff), app)) == [(True,)])
            conn.close()
            self.wait_for("the WAL sender to end (%s)" % label, lambda: self.wal_senders(app) == 0)
        self.admin("DROP TABLE IF EXISTS pp_t")
        self.assertEqual(ident["direct"], ident["gateway"])
        self.assertIsNone(ident["gateway"][2])

    # -- replication commands over psql -----------------------------------------------

    def test_psql_replication_database_commands(self):
        outs = {}
        for label, ep in self.endpoints():
            r = ep.psql("-At", "-c", "IDENTIFY_SYSTEM", "-c", "SELECT 41 + 1",
                        "-c", "TIMELINE_HISTORY 1", "-c", "SHOW wal_level",
                        "dbname=%s replication=database" % harness.MAIN_DB)
            lines = r.stdout.splitlines()
            systemid, tli, _pos, dbname = lines[0].split("|")
            outs[label] = (r.returncode, systemid, tli, dbname, lines[1:])
        self.assertEqual(outs["direct"], outs["gateway"])
        self.assertEqual(outs["gateway"][3], harness.MAIN_DB)
        self.assertIn("42", outs["gateway"][4])
        self.assertTrue(any("00000001.history" in x for x in outs["gateway"][4]),
                        outs["gateway"][4])

    def test_cancel_in_replication_connection(self):
        import psycopg2.extras as extras
        res = {}
        session = self.gw(name="repl-session", pool_mode="session")
        for label, ep in self.endpoints() + [("session", session)]:
            conn = psycopg2.connect(ep.dsn(), connection_factory=extras.LogicalReplicationConnection)
            cur = conn.cursor()
            def cancel(conn=conn):
                harness.wait_running("SELECT pg_sleep(30)")
                conn.cancel()
            timer = threading.Thread(target=cancel)
            timer.start()
            try:
                cur.execute("SELECT pg_sleep(30)")
                res[label] = "no error"
            except psycopg2.Error as e:
                res[label] = (e.pgcode, e.pgerror.strip())
            timer.join()
            cur.execute("SELECT 'still usable'")
            self.assertEqual(cur.fetchone(), ("still usable",))
            conn.close()
        self.assertEqual(res["direct"], res["gateway"])
        self.assertEqual(res["direct"], res["session"])
        self.assertEqual(res["gateway"][0], "57014")

    # -- startup values -------------------------------------------------------------

    def test_invalid_replication_value(self):
        gw = self.gw()
        for value in ("maybe", "", "truex", "o", "DATABASE"):
            got = {}
            for label, ep in (("direct", self.env.direct), ("gateway", gw)):
                msgs = harness.raw_startup("127.0.0.1", ep.port,
                                           {"user": harness.SUPERUSER, "database": harness.MAIN_DB,
                                            "replication": value})
                self.assertEqual(msgs[-1][0], b"E", "%s %r: %r" % (label, value, msgs))
                f = harness.parse_error_fields(msgs[-1][1])
                got[label] = (f.get("S"), f.get("V"), f.get("C"), f.get("M"), f.get("H"))
            self.assertEqual(got["direct"], got["gateway"], value)
            self.assertEqual(got["gateway"][2], "22023")

    def test_false_values_are_ordinary_connections(self):
        gw = self.gw()
        for value in ("false", "OFF", "of", "n", "0", "F"):
            msgs = harness.raw_startup("127.0.0.1", gw.port,
                                       {"user": harness.SUPERUSER, "database": harness.MAIN_DB,
                                        "replication": value})
            self.assertEqual(msgs[-1][0], b"Z", "%r: %r" % (value, msgs))
        # An ordinary session: a replication command is just bad SQL.
        c = psycopg2.connect(gw.dsn(replication="off"))
        with self.assertRaises(psycopg2.errors.SyntaxError):
            c.cursor().execute("IDENTIFY_SYSTEM")
        c.close()

    def test_server_login_error_passed_through(self):
        # PostgreSQL refuses a logical replication connection to a database
        # that does not exist in its own words.
        got = {}
        for label, ep in self.endpoints():
            r = ep.psql("-c", "IDENTIFY_SYSTEM", "dbname=no_such_db replication=database")
            self.assertNotEqual(r.returncode, 0)
            got[label] = harness.mask_output(r.stdout)
        self.assertEqual(got["direct"], got["gateway"])
        self.assertIn('database "no_such_db" does not exist', got["gateway"])

    # -- flow control and leaving mid-stream -----------------------------------------------

    def raw_replication(self, ep, app):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.settimeout(20)
        s.connect(("127.0.0.1", ep.port))
        s.sendall(harness.startup_packet({"user": harness.SUPERUSER, "database": "replication",
                                          "replication": "true", "application_name": app}))
        while True:
            t, body = harness.read_message(s)
            self.assertNotEqual(t, b"E", harness.parse_error_fields(body) if t == b"E" else "")
            if t == b"Z":
                break
        return s

    def test_slow_client_holds_the_server_back(self):
        """A client that stops reading a START_REPLICATION stream: the gateway
        stops reading the WAL sender, whose sent position falls behind."""
        gw = self.gw()
        app = "slow_reader"
        s = self.raw_replication(gw, app)
        start = self.current_lsn()
        q = ("START_REPLICATION %s" % start).encode() + b"\0"
        s.sendall(b"Q" + struct.pack("!I", len(q) + 4) + q)
        t, _ = harness.read_message(s)
        self.assertEqual(t, b"W")
        # About 100 MB of WAL the client does not read.
        self.admin("DROP TABLE IF EXISTS slow_t; CREATE TABLE slow_t AS"
                   " SELECT repeat('x', 1000) AS v FROM generate_series(1, 100000)")
        end = lsn_int(self.current_lsn("insert"))
        # Wait for the WAL sender to stop advancing (or to reach the end,
        # as it would if the gateway buffered whatever it was sent).
        last, still, deadline = None, 0, time.monotonic() + 30
        while time.monotonic() < deadline and still < 3:
            time.sleep(0.5)
            row = self.admin("SELECT sent_lsn::text FROM pg_stat_replication"
                             " WHERE application_name = %s", (app,))
            self.assertEqual(len(row), 1)
            sent = lsn_int(row[0][0]) if row[0][0] else 0
            if sent >= end:
                break
            still = still + 1 if sent == last else 0
            last = sent
        behind = end - sent
        self.assertGreater(behind, 50 * 1024 * 1024,
                           "the WAL sender was not held back (%d bytes behind)" % behind)
        # Reading again lets it catch up.
        s.settimeout(20)
        got, checked = 0, 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            chunk = s.recv(1 << 20)
            self.assertTrue(chunk, "the gateway closed the stream")
            got += len(chunk)
            if got > 60 * 1024 * 1024 and got - checked > 4 * 1024 * 1024:
                checked = got
                row = self.admin("SELECT sent_lsn::text FROM pg_stat_replication"
                                 " WHERE application_name = %s", (app,))
                if row and lsn_int(row[0][0]) >= end:
                    break
        self.assertGreater(got, 60 * 1024 * 1024)
        s.close()
        self.wait_for("the WAL sender to end", lambda: self.wal_senders(app) == 0)
        self.admin("DROP TABLE IF EXISTS slow_t")

    def test_client_killed_mid_stream(self):
        gw = self.gw()
        tool = os.path.join(BIN, "pg_recvlogical")
        app = "killed_mid_stream"
        r = run([tool, "-d", gw.dsn(), "-S", "km_slot", "--create-slot", "-P", "test_decoding"],
                gw.env())
        self.assertEqual(r.returncode, 0, r.stdout)
        try:
            p = subprocess.Popen([tool, "-d", gw.dsn(application_name=app), "-S", "km_slot",
                                  "--start", "-f", "-"], env=gw.env(),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.wait_for("the WAL sender to start", lambda: self.wal_senders(app) == 1)
            self.admin("CREATE TABLE IF NOT EXISTS km_t(x int); INSERT INTO km_t VALUES (1)")
            p.send_signal(signal.SIGKILL)
            p.wait()
            p.stdout.close()
            self.wait_for("the gateway to close the WAL sender", lambda: self.wal_senders(app) == 0)
            # The raw case too: a socket closed without a Terminate.
            s = self.raw_replication(gw, app + "_raw")
            self.wait_for("the raw client's WAL sender", lambda: self.wal_senders(app + "_raw") == 1)
            s.close()
            self.wait_for("the raw client's WAL sender to end",
                          lambda: self.wal_senders(app + "_raw") == 0)
            # The gateway still serves.
            c = gw.connect(autocommit=True)
            with c.cursor() as cur:
                cur.execute("SELECT 1")
                self.assertEqual(cur.fetchone(), (1,))
            c.close()
        finally:
            self.admin("SELECT pg_drop_replication_slot('km_slot')")
            self.admin("DROP TABLE IF EXISTS km_t")


if __name__ == "__main__":
    import unittest
    unittest.main()
