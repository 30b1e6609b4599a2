"""psycopg 3 (Debian's python3-psycopg) through the gateway, each scenario
compared with the same run directly against PostgreSQL: server-side
binding, prepared statements (prepare=True and automatic), binary
parameters and results, pipeline mode with an error in it, COPY both
ways, server-side cursors, executemany.

Two gateways: the default one, and one with two server connections that
keep at most three prepared statements each, shared by two connections
used in turn, so statements are prepared again behind the driver's back."""
import os
import pprint
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

try:
    import psycopg
except ImportError:  # pragma: no cover
    psycopg = None


def connect(ep, **kw):
    return psycopg.connect(host="127.0.0.1", port=ep.port, user=harness.SUPERUSER,
                           dbname=harness.MAIN_DB, **kw)


def err(e):
    diag = getattr(e, "diag", None)
    return (type(e).__name__, getattr(e, "sqlstate", None),
            diag.message_primary if diag else str(e))


def scenario(ep):
    out = []
    a = connect(ep, autocommit=True, prepare_threshold=0)
    b = connect(ep, autocommit=True)
    try:
        for i in range(6):
            c = a if i % 2 == 0 else b
            out.append(c.execute("SELECT %s::int + %s::int, %s::text", (i, 1, "t%d" % i),
                                 prepare=True).fetchall())
            out.append(c.execute("SELECT %s::numeric * 2, %s::date",
                                 (i, "2024-01-0%d" % (i + 1))).fetchall())
        for i in range(5):  # a's cache of prepared queries grows past the server's
            out.append(a.execute("SELECT %%s::int + %d" % i, (i,)).fetchall())
        out.append(a.execute("SELECT %s::int, %s::bytea", (7, b"\x00\x01"), binary=True).fetchall())
        cur = a.cursor(binary=True)
        out.append(cur.execute("SELECT %b::float8, %b::text[]", (1.5, ["x", "y"])).fetchall())
        try:
            a.execute("SELECT * FROM no_such_table WHERE a = %s", (1,), prepare=True)
        except psycopg.Error as e:
            out.append(err(e))
        try:
            a.execute("SELECT 1/%s::int", (0,), prepare=True)
        except psycopg.Error as e:
            out.append(err(e))
        out.append(a.execute("SELECT 1/%s::int", (1,), prepare=True).fetchall())
        # pipeline mode, an error inside it
        try:
            with a.pipeline():
                r1 = a.execute("SELECT %s::int", (1,))
                a.execute("SELECT 1/%s::int", (0,))
                a.execute("SELECT %s::int", (3,))
        except psycopg.Error as e:
            out.append(err(e))
        out.append(r1.fetchall())
        with a.pipeline():
            rs = [a.execute("SELECT %s::int * 10", (i,), prepare=True) for i in range(20)]
        out.append([r.fetchall() for r in rs])
        # transactions, rollback, executemany
        a.execute("DROP TABLE IF EXISTS pg3_t")
        a.execute("CREATE TABLE pg3_t (id int PRIMARY KEY, v text)")
        with a.transaction():
            a.cursor().executemany("INSERT INTO pg3_t VALUES (%s, %s)",
                                   [(i, "v%d" % i) for i in range(100)])
        try:
            with a.transaction():
                a.execute("INSERT INTO pg3_t VALUES (%s, %s)", (1000, "x"))
                a.execute("INSERT INTO pg3_t VALUES (%s, %s)", (1, "dup"))
        except psycopg.Error as e:
            out.append(err(e))
        out.append(b.execute("SELECT count(*), max(id) FROM pg3_t").fetchall())
        # COPY, text and binary
        with a.cursor() as cur:
            with cur.copy("COPY pg3_t (id, v) FROM STDIN") as cp:
                for i in range(200, 300):
                    cp.write_row((i, "copied %d" % i))
            with cur.copy("COPY pg3_t (id, v) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["int4", "text"])
                for i in range(300, 310):
                    cp.write_row((i, "bin %d" % i))
            rows = []
            with cur.copy("COPY (SELECT * FROM pg3_t WHERE id >= 295 ORDER BY id) TO STDOUT") as cp:
                for row in cp.rows():
                    rows.append(row)
            out.append(rows)
        try:
            with a.cursor() as cur:
                with cur.copy("COPY pg3_t (id, v) FROM STDIN") as cp:
                    cp.write_row((1, "duplicate key"))
        except psycopg.Error as e:
            out.append(err(e))
        # server-side cursor in a transaction
        with b.transaction():
            with b.cursor(name="pg3_cur") as cur:
                cur.execute("SELECT id FROM pg3_t WHERE id < %s ORDER BY id", (50,))
                out.append(cur.fetchmany(7))
                out.append(len(cur.fetchall()))
        out.append(a.execute("SELECT count(*) FROM pg3_t").fetchall())
        out.append(a.execute("SET search_path TO public", prepare=True).statusmessage)
        out.append(a.execute("SHOW search_path").fetchall())
    finally:
        a.close()
        b.close()
    return [repr(x) for x in out]


@unittest.skipIf(psycopg is None, "python3-psycopg is not installed")
class Psycopg3Test(unittest.TestCase):
    maxDiff = None

    def test_same_as_direct(self):
        harness.assert_same_as_direct(self, scenario, "pg3-tight", 3,
                                      lambda r: pprint.pformat(r, width=110))


def many_prepared(ep):
    """More distinct queries than the driver keeps prepared: it evicts the
    oldest with DEALLOCATE (sent through the extended protocol), in and out
    of pipeline mode, and inside a transaction."""
    out = []
    with connect(ep, autocommit=True) as conn:
        conn.prepared_max = 5
        conn.prepare_threshold = 0
        for i in range(12):
            out.append(conn.execute("SELECT %%s::int + %d" % i, (i,)).fetchall())
        with conn.pipeline():
            rs = [conn.execute("SELECT %%s::int * %d" % i, (i,)) for i in range(12)]
        out.append([r.fetchall() for r in rs])
        with conn.transaction():
            for i in range(8):
                out.append(conn.execute("SELECT %%s::text || '%d'" % i, ("t",)).fetchall())
        out.append(conn.execute("SELECT %s::int + 0", (1,)).fetchall())
    return [repr(x) for x in out]


@unittest.skipIf(psycopg is None, "python3-psycopg is not installed")
class Psycopg3EvictionTest(unittest.TestCase):
    """psycopg 3 deallocates its least recently used statement once it holds
    prepared_max of them: through the gateway, in transaction and session
    mode, exactly as directly."""
    maxDiff = None

    def test_prepared_max_exceeded(self):
        env = harness.get_env()
        want = many_prepared(env.direct)
        for gw in (env.gateway(), env.gateway("pg3-session", pool_mode="session"),
                   env.gateway("pg3-evict", pool_size=2, workers=1,
                               extra_args=["--max-prepared", "3"])):
            got = many_prepared(gw)
            if got != want:
                self.fail("through %s:\n%s" % (gw.name, harness.text_diff(
                    pprint.pformat(want), pprint.pformat(got))))
