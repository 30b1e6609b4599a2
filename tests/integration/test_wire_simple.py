"""Simple query protocol at the message level: the exact sequence of backend
messages (RowDescription, DataRow, CommandComplete, EmptyQueryResponse,
ErrorResponse/NoticeResponse with every field, ParameterStatus,
NotificationResponse, CopyIn/CopyOut, ReadyForQuery status I/T/E) must be the
same through the gateway as directly; Terminate closes the connection.

ParameterStatus messages within one response are compared as the resulting
{name: last value} (what a client ends up knowing), so their order and
repeats inside a response do not matter, but a wrong, missing or extra
parameter does."""
import os
import pprint
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

STEPS = [
    ("q", "SELECT 1 AS one, NULL AS n, 'x'::text AS t, 2.5::numeric AS num"),
    ("q", "SELECT g FROM generate_series(1, 5) g"),
    ("q", "SELECT 1 WHERE false"),
    ("q", ""),
    ("q", ";"),
    ("q", "SELECT 1; SELECT 2, 3; ; SELECT 'multi'"),
    ("q", "SELECT 1; SELECT 1/0; SELECT 3"),
    ("q", "SELEC 1"),
    ("q", "DO $$BEGIN RAISE NOTICE 'n1' USING DETAIL = 'd', HINT = 'h'; RAISE WARNING 'w'; END$$"),
    ("q", "SET application_name = 'wire-test'"),
    ("q", "SET TimeZone = 'Europe/Berlin'; SET DateStyle = 'SQL, DMY'"),
    ("q", "SELECT now() IS NOT NULL, current_setting('TimeZone')"),
    ("q", "SET work_mem = '5MB'"),
    ("q", "RESET ALL"),
    ("q", "CREATE TEMP TABLE w (id int PRIMARY KEY, v text)"),
    ("q", "BEGIN"),
    ("q", "INSERT INTO w VALUES (1, 'a'), (2, 'b')"),
    ("q", "SELECT * FROM w ORDER BY id"),
    ("q", "COMMIT"),
    ("q", "BEGIN; INSERT INTO w VALUES (3, 'c')"),
    ("q", "INSERT INTO w VALUES (1, 'dup')"),
    ("q", "SELECT 1"),
    ("q", "COMMIT"),
    ("q", "BEGIN"),
    ("q", "SAVEPOINT s"),
    ("q", "SELECT 1/0"),
    ("q", "ROLLBACK TO s"),
    ("q", "SELECT count(*) FROM w"),
    ("q", "ROLLBACK"),
    ("q", "COMMIT"),
    ("q", "LISTEN wire_chan"),
    ("q", "NOTIFY wire_chan, 'payload'"),
    ("q", "SELECT pg_notify('wire_chan', 'p2'), 1"),
    ("q", "BEGIN; NOTIFY wire_chan, 'in tx'; COMMIT"),
    ("q", "UNLISTEN *"),
    ("copyin", "COPY w FROM STDIN", [b"10\tten\n", b"11\televen\n12\t", b"twelve\n"], None),
    ("copyin", "COPY w (id, v) FROM STDIN (FORMAT csv)", [b"20,\"x, y\"\n21,\n"], None),
    ("copyin", "COPY w FROM STDIN", [b"30\tthirty\n"], "client gave up"),
    ("copyin", "COPY w FROM STDIN", [b"notanint\tbad\n"], None),
    ("copyin", "COPY w FROM STDIN", [b"10\tdup\n"], None),
    ("q", "BEGIN"),
    ("copyin", "COPY w FROM STDIN", [b"40\tforty\n"], None),
    ("q", "SELECT count(*) FROM w"),
    ("copyin", "COPY w FROM STDIN", [b"bad\n"], None),
    ("q", "ROLLBACK"),
    ("q", "COPY (SELECT * FROM w ORDER BY id) TO STDOUT"),
    ("q", "COPY (SELECT * FROM w ORDER BY id) TO STDOUT (FORMAT csv, HEADER)"),
    ("q", "COPY (SELECT 1/0) TO STDOUT"),
    ("q", "SELECT 'end'"),
]


def fold_parameter_status(described):
    """Replace the ParameterStatus messages of one response by one
    ('S*', {name: last value}) item placed just before ReadyForQuery."""
    params = {}
    rest = []
    for m in described:
        if m[0] == "S":
            params[m[1]] = m[2]
        else:
            rest.append(m)
    if params and rest and rest[-1][0] == "Z":
        rest.insert(len(rest) - 1, ("S*", sorted(params.items())))
    elif params:
        rest.append(("S*", sorted(params.items())))
    return rest


class WireSimpleTest(harness.IntegrationTestCase):

    def session(self, ep):
        c = harness.RawConn(ep.host, ep.port)
        transcript = []
        try:
            start = c.startup({"user": "pgw", "database": "pgw", "application_name": "wire",
                               "client_encoding": "UTF8"})
            d = harness.describe_messages(start)
            types = [m[0] for m in d]
            self.assertEqual(types[0], "R", "%s: %r" % (ep.kind, types))
            self.assertIn("K", types, "%s: no BackendKeyData" % ep.kind)
            self.assertEqual(d[-1], ("Z", "I"))
            params = {m[1]: m[2] for m in d if m[0] == "S"}
            transcript.append(("startup", sorted(params.items()),
                               sorted(t for t in types if t != "S")))
            for step in STEPS:
                if step[0] == "q":
                    msgs = c.query(step[1])
                else:
                    msgs = c.copy_in(step[1], step[2], step[3])
                transcript.append((step[1], fold_parameter_status(harness.describe_messages(msgs))))
            transcript.append(("terminate closes", c.terminate()))
        finally:
            c.close()
        return transcript

    def test_simple_protocol_messages(self):
        direct = self.session(self.env.direct)
        via = self.session(self.gw())
        a = pprint.pformat(direct, width=120)
        b = pprint.pformat(via, width=120)
        self.assertEqual(direct[-1], ("terminate closes", True))
        if a != b:
            self.fail("message sequences differ:\n" + harness.text_diff(a, b)[:20000])
