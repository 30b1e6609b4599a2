"""pgbench through the gateway: TPC-B and -S in simple, extended and
prepared query modes, more clients than server connections."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

DB = "pgw_pgbench"
DURATION = int(os.environ.get("PGW_PGBENCH_SECONDS", "5"))


def parse(out):
    def num(rx):
        m = re.search(rx, out, re.M)
        return float(m.group(1)) if m else None
    return {
        "processed": num(r"^number of transactions actually processed: (\d+)"),
        "failed": num(r"^number of failed transactions: (\d+)"),
        "tps": num(r"^tps = ([\d.]+)"),
    }


class PgbenchTest(harness.IntegrationTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.create_database(DB)
        r = subprocess.run([harness.PGBENCH, "-i", "-q", "-s", "1"],
                           env=cls.env.direct.env(dbname=DB), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError("pgbench -i failed:\n" + r.stdout)
        # 8 clients over a pool of 4: real transaction pooling. Through a
        # multipooler the server connections are the multipooler's, so its
        # pool is 4 as well (the gateway's bounds each worker's holds).
        cls.gateway = cls.env.gateway(name="bench", pool_size=4, pool_timeout=30,
                                      pooler_pool_size=4)

    def run_pgbench(self, *extra, mode="simple", clients=8, threads=2):
        argv = [harness.PGBENCH, "-n", "-M", mode, "-c", str(clients), "-j", str(threads),
                "-T", str(DURATION)] + list(extra)
        r = subprocess.run(argv, env=self.gateway.env(dbname=DB), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=DURATION + 120)
        res = parse(r.stdout)
        self.assertEqual(r.returncode, 0, "pgbench failed:\n" + r.stdout[-5000:])
        self.assertIsNotNone(res["processed"], r.stdout)
        self.assertGreater(res["processed"], 0, r.stdout)
        self.assertIn(res["failed"], (None, 0), r.stdout)
        self.assertNotIn("error", r.stdout.lower().replace("errors", ""), r.stdout[-3000:])
        sys.stderr.write("  [pgbench %s] %d transactions, tps %.0f\n"
                         % (" ".join(extra + ("-M", mode)), res["processed"], res["tps"] or 0))
        return res

    def run_tpcb(self, **kw):
        self.env.admin_exec("TRUNCATE pgbench_history", dbname=DB)
        res = self.run_pgbench(**kw)
        # every committed TPC-B transaction inserted exactly one history row
        n = self.env.admin_exec("SELECT count(*) FROM pgbench_history", dbname=DB)[0][0]
        self.assertEqual(n, res["processed"])
        # and the balances are consistent
        rows = self.env.admin_exec(
            "SELECT (SELECT sum(abalance) FROM pgbench_accounts), "
            "(SELECT sum(bbalance) FROM pgbench_branches), "
            "(SELECT sum(tbalance) FROM pgbench_tellers), "
            "(SELECT coalesce(sum(delta), 0) FROM pgbench_history)", dbname=DB)[0]
        self.assertEqual(rows[0], rows[1])
        self.assertEqual(rows[1], rows[2])
        self.assertEqual(self.env.backend_count(DB, "idle in transaction%"), 0)

    def test_tpcb_simple(self):
        self.run_tpcb()

    def test_select_only_simple(self):
        self.run_pgbench("-S")

    def test_extended(self):
        # Unnamed statements: pooled per transaction like simple queries.
        self.run_pgbench("-S", mode="extended")
        self.run_tpcb(mode="extended")

    def test_prepared(self):
        # Named statements are the session's, prepared on whichever server
        # connection runs them. One thread per client: pgbench prepares
        # with the synchronous PQprepare, which would stall a thread's
        # other clients while they hold the pool's connections.
        self.run_pgbench("-S", mode="prepared", threads=8)
        self.run_tpcb(mode="prepared", threads=8)
        # Eight sessions' statements, all on the pool's four connections.
        n = self.env.admin_exec("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                                (DB,), dbname=DB)[0][0]
        self.assertLessEqual(n, 4 + 1)
