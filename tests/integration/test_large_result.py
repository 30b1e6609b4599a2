"""A 10^6-row result through the gateway equals the direct one, while the
gateway's RSS stays bounded; a result the client does not read holds the
server back instead of filling the gateway's memory."""
import hashlib
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

QUERY = "SELECT g, md5(g::text) FROM generate_series(1, 1000000) g"
RSS_LIMIT_MB = int(os.environ.get("PGW_RSS_LIMIT_MB", "200"))


class LargeResultTest(harness.IntegrationTestCase):

    def fetch(self, ep):
        p = subprocess.Popen([harness.PSQL, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", QUERY],
                             env=ep.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        h = hashlib.sha256()
        lines = size = 0
        while True:
            chunk = p.stdout.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
            lines += chunk.count(b"\n")
            size += len(chunk)
        err = p.stderr.read().decode(errors="replace")
        rc = p.wait(timeout=120)
        self.assertEqual(rc, 0, err)
        return lines, size, h.hexdigest()

    def test_million_rows(self):
        gw = self.gw()
        direct = self.fetch(self.env.direct)
        self.assertEqual(direct[0], 1000000)
        before = harness.read_rss_kb(gw.pid) if gw.pid else None
        with harness.RssMonitor(gw.pid) as mon:
            via = self.fetch(gw)
        self.assertEqual(via, direct)
        if gw.pid:
            sys.stderr.write("  [rss] gateway VmRSS before %s kB, max during 10^6 rows %d kB "
                             "(%d samples)\n" % (before, mon.max_kb, mon.samples))
            self.assertGreater(mon.samples, 0)
            self.assertLess(mon.max_kb, RSS_LIMIT_MB * 1024,
                            "gateway RSS reached %d MB" % (mon.max_kb // 1024))


# About 1 GB of result: far more than any buffer on the way may hold.
UNREAD_QUERY = "SELECT repeat('x', 1000000) FROM generate_series(1, 1000)"
UNREAD_GROWTH_MB = 64


class UnreadResultTest(harness.IntegrationTestCase):
    """A client that stops reading a large result holds the server back:
    the gateway (and, on the remote path, the multipooler) stops reading
    its server connection instead of buffering what the client does not
    take. Its memory stays flat, PostgreSQL waits in ClientWrite, other
    clients are served meanwhile, and all is released when the client
    goes."""

    def test_unread_result_holds_the_server_back(self):
        self.skip_in_self_test("about the gateway's memory")
        gw = self.gw()
        procs = {"gateway": gw.proc, "multipooler": gw.pooler_proc}
        pids = {name: p.pid for name, p in procs.items() if p is not None}
        # The process that reads PostgreSQL's answers.
        reader = pids.get("multipooler", pids["gateway"])
        # Warm up: a connection in the pool, buffers allocated once.
        c = gw.connect(autocommit=True)
        with c.cursor() as cur:
            cur.execute("SELECT repeat('x', 1000000) FROM generate_series(1, 4)")
            cur.fetchall()
        base = {name: harness.read_rss_kb(pid) for name, pid in pids.items()}
        raw = harness.RawConn(gw.host, gw.port)
        try:
            raw.startup({"user": harness.SUPERUSER, "database": harness.MAIN_DB})
            raw.send_msg(b"Q", UNREAD_QUERY.encode() + b"\0")
            t, _ = raw.read()  # a little of it: the answer has begun
            self.assertEqual(t, b"T")
            grown = {}

            def unread():
                """What the server sent that the reader has not read."""
                return sorted(rx for _, _, rx in harness.tcp_sockets(
                    reader, remote_port=self.env.pg.port) if rx)

            def held_back():
                """PostgreSQL waits for its client to read, and what it sent
                lies unread, unchanged for 2 s: the reader stopped reading
                (one that reads slowly, a little at a time, did not). Or
                the test has failed already: memory past the bound, the
                query over."""
                for name, pid in pids.items():
                    grown[name] = harness.read_rss_kb(pid) - base[name]
                    if grown[name] > UNREAD_GROWTH_MB * 1024:
                        return True
                if not harness.running_pids(UNREAD_QUERY):
                    return True
                first = unread()
                for _ in range(20):
                    if not first or not harness.running_pids(UNREAD_QUERY,
                                                              wait_event="ClientWrite"):
                        return False
                    time.sleep(0.1)
                    if unread() != first:
                        return False
                return True
            harness.wait_until(held_back, "held back: the server waits in ClientWrite, what it "
                               "sent lies unread", timeout=60)
            sys.stderr.write("  [unread] RSS growth while ~1 GB waits unread: %s\n"
                             % ", ".join("%s %d kB" % kv for kv in sorted(grown.items())))
            self.assertTrue(harness.running_pids(UNREAD_QUERY, wait_event="ClientWrite"),
                            "the query is not held back: it ended, or the server is not "
                            "waiting for its client")
            for name, kb in grown.items():
                self.assertLess(kb, UNREAD_GROWTH_MB * 1024,
                                "%s RSS grew by %d MB with the result unread" % (name, kb // 1024))
            # Another client is served meanwhile.
            other = gw.connect(autocommit=True)
            with other.cursor() as cur:
                cur.execute("SELECT 'served meanwhile'")
                self.assertEqual(cur.fetchone()[0], "served meanwhile")
            other.close()
        finally:
            raw.close()
        # The client went: the server stops, and its connection serves again.
        harness.wait_until(lambda: not harness.running_pids(UNREAD_QUERY),
                           "the unread query has ended on the server", timeout=60)
        for name, pid in pids.items():
            self.assertLess(harness.read_rss_kb(pid) - base[name], UNREAD_GROWTH_MB * 1024, name)
        with c.cursor() as cur:
            cur.execute("SELECT 'served after'")
            self.assertEqual(cur.fetchone()[0], "served after")
        c.close()
        harness.wait_until(lambda: self.env.backend_count(harness.MAIN_DB, "active") == 0,
                           "no backend is busy any more")
