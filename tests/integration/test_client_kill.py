"""A client killed (SIGKILL) mid-transaction: its transaction is rolled back,
its locks released and its backend handed to the next client clean."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import psycopg2  # noqa: E402

DB = "pgw_kill"

VICTIM = """\
SET work_mem = '7MB';
SET application_name = 'victim';
SELECT pg_advisory_lock(4243);
BEGIN;
UPDATE locktest SET v = v + 100 WHERE id = 1;
SELECT pg_advisory_xact_lock(4242);
CREATE TEMP TABLE victim_tmp (x int);
SET LOCAL lock_timeout = '1s';
"""


class ClientKillTest(harness.IntegrationTestCase):

    def wait_for(self, cond, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = cond()
            if v:
                return v
            time.sleep(0.05)
        self.fail("timed out (%.0fs) waiting for %s" % (timeout, what))

    def test_sigkill_in_transaction(self):
        env = self.env
        env.create_database(DB)
        env.admin_exec("DROP TABLE IF EXISTS locktest; CREATE TABLE locktest (id int PRIMARY KEY, v int);"
                       "INSERT INTO locktest VALUES (1, 0)", dbname=DB)
        # pool of 1: if the victim's backend is not cleaned and returned, the
        # next client cannot run at all
        gw = env.gateway(name="pool1", pool_size=1, pool_timeout=10)
        victim = subprocess.Popen([harness.PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1"],
                                  env=gw.env(dbname=DB), stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        try:
            victim.stdin.write(VICTIM)
            victim.stdin.flush()

            def locked():
                return env.admin_exec(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND objid IN (4242, 4243)")[0][0] == 2
            self.wait_for(locked, 30, "the victim to take its locks")
            self.assertEqual(victim.poll(), None, "victim psql exited early")
            # the victim's last statement has finished: its backend waits in the transaction
            self.wait_for(lambda: env.backend_count(DB, "idle in transaction%") == 1, 30,
                          "the victim's backend to be idle in transaction")
        finally:
            victim.kill()           # SIGKILL, connection dropped mid-transaction
            victim.wait()
        t_kill = time.monotonic()

        # another client through the gateway can take the locks within a few seconds
        def can_lock():
            try:
                c = gw.connect(dbname=DB, autocommit=True, connect_timeout=15)
            except psycopg2.OperationalError:
                return False
            try:
                with c.cursor() as cur:
                    cur.execute("SET lock_timeout = '500ms'")
                    cur.execute("SELECT pg_try_advisory_xact_lock(4242), pg_try_advisory_lock(4243)")
                    got = cur.fetchone()
                    if got[1]:
                        cur.execute("SELECT pg_advisory_unlock(4243)")
                    if not all(got):
                        return False
                    cur.execute("UPDATE locktest SET v = v + 1 WHERE id = 1")
                    return True
            except psycopg2.errors.LockNotAvailable:
                return False
            finally:
                c.close()
        self.wait_for(can_lock, 30, "the locks of the killed client to be released")
        elapsed = time.monotonic() - t_kill
        sys.stderr.write("  [kill] locks available %.2fs after SIGKILL\n" % elapsed)

        # the killed transaction was rolled back
        self.assertEqual(env.admin_exec("SELECT v FROM locktest WHERE id = 1", dbname=DB), [(1,)])
        # the next client does not see the victim's session state
        c = gw.connect(dbname=DB, autocommit=True)
        try:
            with c.cursor() as cur:
                cur.execute("SELECT current_setting('work_mem'), current_setting('application_name'), "
                            "to_regclass('pg_temp.victim_tmp') IS NULL")
                self.assertEqual(cur.fetchall(), [("4MB", "", True)])
        finally:
            c.close()
        # no backend left idle in transaction, no advisory lock left
        self.wait_for(lambda: env.backend_count(DB, "idle in transaction%") == 0, 5,
                      "no backend idle in transaction")
        self.assertEqual(env.admin_exec("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"),
                         [(0,)])
