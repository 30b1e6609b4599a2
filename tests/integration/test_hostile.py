"""What a hostile or broken client gets before and after login: the same
answer PostgreSQL gives (a FATAL, or a silent close where PostgreSQL
closes silently), and the gateway serving everyone else afterwards."""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def exchange(ep, data, login=False, timeout=10):
    """Send data (after a normal login when asked); return (messages, closed)."""
    s = socket.create_connection((ep.host, ep.port), timeout=timeout)
    try:
        if login:
            s.sendall(harness.startup_packet({"user": harness.SUPERUSER,
                                              "database": harness.MAIN_DB}))
            while harness.read_message(s)[0] != b"Z":
                pass
        s.sendall(data)
        msgs = []
        while True:
            try:
                msgs.append(harness.read_message(s))
            except (EOFError, ConnectionResetError):
                return msgs, True
            except socket.timeout:
                return msgs, False
    finally:
        s.close()


def fatal_of(msgs):
    for t, body in msgs:
        if t == b"E":
            f = harness.parse_error_fields(body)
            return f.get("S"), f.get("C"), f.get("M")
    return None


class HostileClientTest(harness.IntegrationTestCase):

    def same_as_postgresql(self, data, login=False):
        direct = exchange(self.env.direct, data, login)
        via = exchange(self.gw(), data, login)
        self.assertEqual(fatal_of(direct[0]), fatal_of(via[0]))
        self.assertTrue(direct[1] and via[1], "both close the connection")
        return fatal_of(via[0])

    def test_startup_packet_too_long(self):
        # PostgreSQL closes without a word (the length is only logged).
        self.assertIsNone(self.same_as_postgresql(struct.pack("!I", 10005) + b"\0" * 10001))

    def test_startup_packet_too_short(self):
        self.assertIsNone(self.same_as_postgresql(struct.pack("!II", 7, 196608)))

    def test_garbage_before_login(self):
        self.assertIsNone(self.same_as_postgresql(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))

    def test_bad_layout(self):
        body = struct.pack("!I", 196608) + b"user\0pgw\0database"  # no value, no terminator
        pkt = struct.pack("!I", len(body) + 4) + body
        self.assertEqual(self.same_as_postgresql(pkt),
                         ("FATAL", "08P01",
                          "invalid startup packet layout: expected terminator as last byte"))

    def test_unsupported_protocol(self):
        # Protocol 2 gets its answer in protocol 2's format: 'E', text, NUL.
        body = struct.pack("!I", 2 << 16) + b"user\0pgw\0\0"
        pkt = struct.pack("!I", len(body) + 4) + body
        answers = []
        for ep in (self.env.direct, self.gw()):
            with socket.create_connection((ep.host, ep.port), timeout=10) as s:
                s.sendall(pkt)
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                answers.append(data)
        self.assertEqual(answers[0][:48], b"EFATAL:  unsupported frontend protocol 2.0: serv")
        # PostgreSQL 15 says "3.0 to 3.0"; the gateway speaks 3.2 as well.
        self.assertEqual(answers[1], b"EFATAL:  unsupported frontend protocol 2.0: "
                                     b"server supports 3.0 to 3.2\n\0")

    def test_unknown_message_type_after_login(self):
        self.assertEqual(self.same_as_postgresql(b"x\0\0\0\4", login=True),
                         ("FATAL", "08P01", "invalid frontend message type 120"))

    def test_second_startup_message(self):
        pkt = harness.startup_packet({"user": harness.SUPERUSER})
        self.assertEqual(self.same_as_postgresql(pkt, login=True),
                         ("FATAL", "08P01", "invalid frontend message type 0"))

    def test_bad_length_after_login(self):
        # A length below 4: logged only, and the connection closed.
        self.assertIsNone(self.same_as_postgresql(b"Q\0\0\0\2", login=True))
        # A Sync longer than any Sync may be: the same.
        self.assertIsNone(self.same_as_postgresql(b"S" + struct.pack("!I", 20000), login=True))

    def test_too_many_clients(self):
        self.skip_in_self_test("a gateway flag")
        gw = self.gw(name="max2", extra_args=["--max-clients", "2"])
        held = [gw.connect(autocommit=True) for _ in range(2)]
        try:
            with self.assertRaises(harness.psycopg2.OperationalError) as e:
                gw.connect()
            self.assertIn("sorry, too many clients already", str(e.exception))
        finally:
            for c in held:
                c.close()
        # Room again, once the gateway has seen them go.
        harness.retry(lambda: gw.connect().close(), "the gateway takes a client again",
                      errors=(harness.psycopg2.OperationalError,))

    def tearDown(self):
        # Whatever was sent, the gateway still serves.
        r = self.gw().psql("-tA", "-c", "SELECT 'still here'")
        self.assertEqual(r.stdout.strip(), "still here")
        super().tearDown()
