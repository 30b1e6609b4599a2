"""Protocol 3.0 and 3.2 with a raw client: NegotiateProtocolVersion for
newer minors and unknown _pq_ options, 4-byte cancel keys for 3.0 and
32-byte ones for 3.2, and a cancel with each that stops the query."""
import os
import select
import socket
import struct
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

V30 = 196608
V32 = 196610


def login(ep, version, extra=None):
    """Start a session; return (socket, messages up to ReadyForQuery)."""
    params = {"user": harness.SUPERUSER, "database": harness.MAIN_DB}
    params.update(extra or {})
    s = socket.create_connection((ep.host, ep.port), timeout=20)
    s.sendall(harness.startup_packet(params, version=version))
    msgs = []
    while True:
        t, body = harness.read_message(s)
        msgs.append((t, body))
        if t in (b"E", b"Z"):
            return s, msgs


def key_data(msgs):
    for t, body in msgs:
        if t == b"K":
            return struct.unpack("!i", body[:4])[0], body[4:]
    return None, None


def cancel(ep, pid, key):
    with socket.create_connection((ep.host, ep.port), timeout=10) as c:
        body = struct.pack("!II", 80877102, pid & 0xffffffff) + key
        c.sendall(struct.pack("!I", len(body) + 4) + body)
        c.recv(1)  # the server closes without a word


def sleep_and_cancel(test, ep, version):
    s, msgs = login(ep, version)
    pid, key = key_data(msgs)
    test.assertEqual(len(key), 32 if version == V32 else 4)
    body = b"SELECT pg_sleep(30)\0"
    s.sendall(b"Q" + struct.pack("!I", len(body) + 4) + body)
    harness.wait_running("SELECT pg_sleep(30)")
    # A wrong key of the right length does nothing...
    cancel(ep, pid, bytes(b ^ 0xff for b in key))
    test.assertEqual(select.select([s], [], [], 0.3)[0], [], "answered after a wrong key")
    test.assertTrue(harness.running_pids("SELECT pg_sleep(30)"), "stopped by a wrong key")
    cancel(ep, pid, key)  # ...the right one stops the query.
    fields = None
    while True:
        t, body = harness.read_message(s)
        if t == b"E":
            fields = harness.parse_error_fields(body)
        if t == b"Z":
            break
    test.assertEqual(fields["C"], "57014")
    test.assertEqual(fields["M"], "canceling statement due to user request")
    s.close()


class ProtocolVersionTest(harness.IntegrationTestCase):

    def setUp(self):
        self.skip_in_self_test("PostgreSQL 15 speaks 3.0 only; this is the gateway's 3.2")

    def test_30_no_negotiation_4_byte_key(self):
        s, msgs = login(self.gw(), V30)
        s.close()
        types = [t for t, _ in msgs]
        self.assertNotIn(b"v", types)
        self.assertEqual(types[-1], b"Z")
        self.assertEqual(len(key_data(msgs)[1]), 4)

    def test_32_spoken_32_byte_key(self):
        s, msgs = login(self.gw(), V32)
        s.close()
        types = [t for t, _ in msgs]
        self.assertNotIn(b"v", types)
        self.assertEqual(types[-1], b"Z")
        self.assertEqual(len(key_data(msgs)[1]), 32)

    def test_newer_minor_negotiated_down_to_32(self):
        s, msgs = login(self.gw(), (3 << 16) | 7)
        s.close()
        v = [body for t, body in msgs if t == b"v"]
        self.assertEqual(len(v), 1)
        self.assertEqual(struct.unpack("!ii", v[0][:8]), (V32, 0))
        self.assertEqual(len(key_data(msgs)[1]), 32)

    def test_unknown_protocol_options_listed(self):
        s, msgs = login(self.gw(), V30, {"_pq_.compression": "on", "_pq_.other": "x"})
        s.close()
        v = [body for t, body in msgs if t == b"v"]
        self.assertEqual(len(v), 1)
        version, count = struct.unpack("!ii", v[0][:8])
        self.assertEqual((version, count), (V30, 2))
        names = [n for n in v[0][8:].split(b"\0") if n]
        self.assertEqual(sorted(names), [b"_pq_.compression", b"_pq_.other"])
        self.assertEqual(msgs[-1][0], b"Z")

    def test_31_is_never_offered(self):
        s, msgs = login(self.gw(), (3 << 16) | 1, {"_pq_.x": "1"})
        s.close()
        v = [body for t, body in msgs if t == b"v"]
        self.assertEqual(struct.unpack("!i", v[0][:4])[0], V30)
        self.assertEqual(len(key_data(msgs)[1]), 4)

    def test_cancel_with_4_byte_key(self):
        sleep_and_cancel(self, self.gw(), V30)

    def test_cancel_with_32_byte_key(self):
        sleep_and_cancel(self, self.gw(), V32)
