"""A client's own notifications carry the process id it was given in
BackendKeyData, as with PostgreSQL, so drivers can tell them apart."""
import os
import select
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class NotifyPidTest(harness.IntegrationTestCase):

    def own_and_other(self, ep):
        a = ep.connect(autocommit=True)
        b = ep.connect(autocommit=True)
        try:
            with a.cursor() as cur:
                cur.execute("LISTEN pid_ch")
                cur.execute("NOTIFY pid_ch, 'mine'")
            with b.cursor() as cur:
                cur.execute("NOTIFY pid_ch, 'theirs'")
            got = {}
            deadline = time.time() + 10
            while len(got) < 2 and time.time() < deadline:
                select.select([a], [], [], 1)
                a.poll()
                while a.notifies:
                    n = a.notifies.pop(0)
                    got[n.payload] = n.pid
            return got["mine"] == a.get_backend_pid(), got["theirs"] == a.get_backend_pid()
        finally:
            a.close()
            b.close()

    def test_own_notification_pid(self):
        direct = self.own_and_other(self.env.direct)
        self.assertEqual(direct, (True, False))
        self.assertEqual(self.own_and_other(self.gw()), direct)
