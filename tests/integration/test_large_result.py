"""A 10^6-row result through the gateway equals the direct one, while the
gateway's RSS stays bounded."""
import hashlib
import os
import subprocess
import sys

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
