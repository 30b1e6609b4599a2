"""asyncpg (Debian's python3-asyncpg) through the gateway, compared with
the same run directly against PostgreSQL: named prepared statements with
its statement cache, binary codecs and type introspection, cursors with
prefetch (row-limited Execute in a transaction), copy_records_to_table,
executemany, errors, and a connection pool.

Through a gateway with two server connections keeping at most four
prepared statements each, shared by two connections used in turn."""
import asyncio
import datetime
import decimal
import os
import pprint
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

try:
    import asyncpg
except ImportError:  # pragma: no cover
    asyncpg = None


async def scenario(port):
    out = []

    def conn():
        return asyncpg.connect(host="127.0.0.1", port=port, user=harness.SUPERUSER,
                               database=harness.MAIN_DB)
    a, b = await conn(), await conn()
    try:
        await a.execute("DROP TABLE IF EXISTS apg_t; DROP TYPE IF EXISTS apg_mood; "
                        "CREATE TYPE apg_mood AS ENUM ('sad', 'ok', 'happy'); "
                        "CREATE TABLE apg_t (id int PRIMARY KEY, m apg_mood, n numeric, "
                        "d date, j jsonb, arr int[])")
        for i in range(8):
            c = a if i % 2 else b
            out.append(await c.fetch("SELECT $1::int + 1 AS a, $2::text AS b", i, "x%d" % i))
            out.append(await c.fetchval("SELECT $1::int * 3", i))
        st = await a.prepare("SELECT $1::int * 2 AS d, $2::apg_mood AS m")
        out.append(await st.fetch(21, "happy"))
        out.append([(t.name, t.type.name, t.type.kind, t.type.schema)
                    for t in st.get_attributes()])
        await a.executemany("INSERT INTO apg_t VALUES ($1, $2, $3, $4, $5, $6)",
                            [(i, ["sad", "ok", "happy"][i % 3], decimal.Decimal(i) / 4,
                              datetime.date(2024, 1, 1 + i % 28), '{"k": %d}' % i,
                              [i, i + 1]) for i in range(100)])
        out.append(await b.fetch("SELECT * FROM apg_t WHERE id < $1 ORDER BY id", 5))
        out.append(await a.copy_records_to_table(
            "apg_t", records=[(i, "ok", decimal.Decimal("1.5"), None, None, None)
                              for i in range(100, 600)],
            columns=["id", "m", "n", "d", "j", "arr"]))
        out.append(await b.fetchval("SELECT count(*) FROM apg_t"))
        async with a.transaction():
            got = [r["id"] async for r in a.cursor("SELECT id FROM apg_t ORDER BY id",
                                                   prefetch=37)]
            out.append((len(got), sum(got)))
            cur = await a.cursor("SELECT id FROM apg_t WHERE id > $1 ORDER BY id", 500)
            out.append(await cur.fetch(5))
            await cur.forward(10)
            out.append(await cur.fetchrow())
        for q, args in (("SELECT 1/$1::int", (0,)), ("SELECT * FROM apg_nope", ()),
                        ("INSERT INTO apg_t (id) VALUES ($1)", (1,))):
            try:
                await b.fetch(q, *args)
            except asyncpg.PostgresError as e:
                out.append((type(e).__name__, e.sqlstate, e.args[0]))
        try:
            async with b.transaction():
                await b.execute("INSERT INTO apg_t (id) VALUES (9999)")
                await b.execute("INSERT INTO apg_t (id) VALUES (1)")
        except asyncpg.PostgresError as e:
            out.append((type(e).__name__, e.sqlstate))
        out.append(await a.fetchval("SELECT count(*) FROM apg_t WHERE id = 9999"))
        # Many distinct statements: asyncpg's cache outgrows the server's.
        for i in range(12):
            out.append(await (a if i % 2 else b).fetchval("SELECT $1::int + %d" % i, i))
    finally:
        await a.close()
        await b.close()
    pool = await asyncpg.create_pool(host="127.0.0.1", port=port, user=harness.SUPERUSER,
                                     database=harness.MAIN_DB, min_size=3, max_size=3)
    try:
        res = await asyncio.gather(*[pool.fetchval("SELECT $1::int * 3", i) for i in range(60)])
        out.append(sum(res))
    finally:
        await pool.close()
    return [repr(x) for x in out]


@unittest.skipIf(asyncpg is None, "python3-asyncpg is not installed")
class AsyncpgTest(unittest.TestCase):
    maxDiff = None

    def test_same_as_direct(self):
        harness.assert_same_as_direct(self, lambda ep: asyncio.run(scenario(ep.port)),
                                      "apg-tight", 4, lambda r: pprint.pformat(r, width=110))
