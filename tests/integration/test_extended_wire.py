"""The extended query protocol at the message level, replayed directly
against PostgreSQL and through the gateway and compared message by message
(every field of every ErrorResponse but the source location).

Through the gateway the scenarios run three times: on a default gateway,
on one in session mode, and on one with a single server connection that
keeps at most two prepared statements, where another client runs its own
statements between the scenario's batches. There the scenario's statements are evicted and
re-prepared, and the unnamed statement is overwritten, all behind its
back; it must not notice."""
import itertools
import os
import pprint
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from pgwire import (Conn, bind, close, copy_data, copy_done, copy_fail, describe,  # noqa: E402
                    execute, flush, normalise, parse, query, sync)

INT4 = 23
_counter = itertools.count()


class Perturber:
    """Another client on the same endpoint, preparing and running its own
    statements (and the unnamed one) whenever called."""

    def __init__(self, endpoint):
        self.conn = Conn(endpoint)

    def __call__(self):
        n = next(_counter)
        msgs = []
        for i in range(3):
            name = "perturb_%d_%d" % (n, i)
            msgs += [parse(name, "SELECT %d + $1::int AS p%d" % (i, n), [INT4]),
                     bind("", name, ["1"]), execute("")]
        msgs += [parse("", "SELECT 'other unnamed %d'" % n), bind("", ""), execute(""), sync()]
        self.conn.send(*msgs)
        self.conn.until()

    def close(self):
        self.conn.close()


def run(c, *msgs, stop=b"Z", count=1):
    c.send(*msgs)
    return normalise(c.until(stop, count))


# ---- scenarios: each returns the transcript of what the client saw


def sc_basic(c, perturb):
    out = [run(c, parse("s1", "SELECT $1::int + 1 AS r", [INT4]), bind("", "s1", ["41"]),
               describe("P", ""), execute(""), sync())]
    perturb()
    out.append(run(c, bind("", "s1", ["1"]), execute(""), sync()))
    perturb()
    out.append(run(c, describe("S", "s1"), sync()))
    out.append(run(c, bind("p", "s1", ["7"], result_formats=[1]), describe("P", "p"),
                   execute("p"), sync()))
    return out


def sc_unknown_names(c, perturb):
    return [run(c, bind("", "nope"), execute(""), sync()),
            run(c, bind("", ""), execute(""), sync()),
            run(c, describe("S", "nope"), sync()),
            run(c, describe("S", ""), sync()),
            run(c, describe("P", "nope"), sync()),
            run(c, execute("nope"), sync()),
            run(c, close("S", "nope"), close("P", "nope"), sync()),
            run(c, bind("", "_pgw_1"), execute(""), sync()),
            run(c, describe("S", "_pgw_1"), close("S", "_pgw_2"), sync()),
            run(c, query("SELECT 1"))]


def sc_closed_portal(c, perturb):
    return [run(c, parse("", "SELECT 1"), bind("p1", ""), close("P", "p1"), execute("p1"), sync()),
            run(c, query("SELECT 2"))]


def sc_duplicate(c, perturb):
    out = [run(c, parse("d1", "SELECT 1"), sync())]
    perturb()
    out.append(run(c, parse("d1", "SELECT 2"), bind("", "d1"), execute(""), sync()))
    out.append(run(c, parse("d1", "SELEC 2"), sync()))
    out.append(run(c, parse("d1", "SELECT * FROM no_such_table"), sync()))
    out.append(run(c, bind("", "d1"), execute(""), sync()))
    return out


def sc_bind_errors(c, perturb):
    out = [run(c, parse("b2", "SELECT $1::int, $2::int"), sync())]
    perturb()
    out.append(run(c, bind("", "b2", ["1"]), execute(""), sync()))
    out.append(run(c, bind("", "b2", ["1", "2"], formats=[2]), execute(""), sync()))
    out.append(run(c, bind("", "b2", ["1", "x"]), execute(""), sync()))
    out.append(run(c, bind("", "b2", ["1", "2"], result_formats=[3]), execute(""), sync()))
    out.append(run(c, bind("", "b2", ["1", "2"]), execute(""), sync()))
    return out


def sc_error_skips_to_sync(c, perturb):
    out = [run(c, parse("e1", "SELECT 1/$1::int"), bind("", "e1", ["0"]), execute(""),
               parse("e2", "SELECT 2"), bind("", "e2"), execute(""), query("SELECT 'skipped'"),
               close("S", "e1"), sync())]
    perturb()
    # e1 was prepared (its Parse came before the error); e2 never was.
    out.append(run(c, bind("", "e1", ["1"]), execute(""), sync()))
    out.append(run(c, bind("", "e2"), execute(""), sync()))
    return out


def sc_implicit_transaction(c, perturb):
    return [run(c, query("TRUNCATE ext_t")),
            run(c, parse("", "INSERT INTO ext_t VALUES (1)"), bind("", ""), execute(""),
                parse("", "SELECT 1/0"), bind("", ""), execute(""), sync()),
            run(c, query("SELECT count(*) FROM ext_t")),
            run(c, parse("", "INSERT INTO ext_t VALUES (2)"), bind("", ""), execute(""), sync(),
                parse("", "SELECT 1/0"), bind("", ""), execute(""), sync(), count=2),
            run(c, query("SELECT count(*) FROM ext_t")),
            run(c, query("BEGIN"), parse("", "INSERT INTO ext_t VALUES (3)"), bind("", ""),
                execute(""), sync(), parse("", "SELECT 1/0"), bind("", ""), execute(""), sync(),
                parse("", "SELECT 1"), bind("", ""), execute(""), sync(), query("ROLLBACK"),
                count=5),
            run(c, query("SELECT count(*) FROM ext_t"))]


def sc_flush(c, perturb):
    c.send(parse("f1", "SELECT g FROM generate_series(1, 3) g"), bind("", "f1"), execute(""),
           flush())
    out = [normalise(c.take(6))]
    c.send(bind("", "f1"), execute("", 2), flush())
    out.append(normalise(c.take(4)))
    out.append(run(c, sync()))
    return out


def sc_row_limit(c, perturb):
    out = [run(c, parse("r1", "SELECT g FROM generate_series(1, 5) g"), bind("", "r1"),
               describe("P", ""), execute("", 2), execute("", 2), execute("", 2), execute("", 2),
               sync())]
    out.append(run(c, query("BEGIN")))
    out.append(run(c, bind("cur", "r1"), execute("cur", 2), sync()))
    out.append(run(c, execute("cur", 2), sync()))
    out.append(run(c, execute("cur", 0), sync()))
    out.append(run(c, query("COMMIT")))
    out.append(run(c, execute("cur", 1), sync()))
    return out


def sc_sql_cursor(c, perturb):
    # A cursor DECLAREd in SQL is a portal of the session too: Describe and
    # Execute reach it by name.
    out = [run(c, query("BEGIN; DECLARE sc CURSOR FOR "
                        "SELECT g, g::text AS t FROM generate_series(1, 5) g"))]
    out.append(run(c, describe("P", "sc"), execute("sc", 2), sync()))
    out.append(run(c, query("FETCH 1 FROM sc")))
    out.append(run(c, execute("sc", 0), sync()))
    out.append(run(c, execute("sc", 1), sync()))
    out.append(run(c, describe("P", "no_such_cursor"), sync()))
    out.append(run(c, query("ROLLBACK")))
    out.append(run(c, describe("P", "sc"), sync()))
    out.append(run(c, execute("sc", 1), sync()))
    return out


def sc_portal_after_statement(c, perturb):
    # A suspended portal goes on where it stood after other statements
    # of the transaction moved it.
    out = [run(c, query("BEGIN"))]
    out.append(run(c, parse("ps1", "SELECT g FROM generate_series(1, 8) g"), bind("pp", "ps1"),
                   sync()))
    out.append(run(c, execute("pp", 2), sync()))
    out.append(run(c, query("MOVE FORWARD 3 IN pp")))
    out.append(run(c, describe("P", "pp"), execute("pp", 2), sync()))
    out.append(run(c, query("SELECT 1")))
    out.append(run(c, execute("pp", 0), sync()))
    out.append(run(c, query("COMMIT")))
    # a Describe answered with its Execute, and one whose Bind fails
    out.append(run(c, parse("ps2", "SELECT $1::int AS v"), bind("", "ps2", ["5"]),
                   describe("P", ""), execute(""), sync()))
    out.append(run(c, bind("", "ps2", ["x"]), describe("P", ""), execute(""), sync()))
    out.append(run(c, bind("", "ps2", ["6"], result_formats=[1]), describe("P", ""),
                   execute(""), describe("P", ""), sync()))
    return out


def sc_portal_after_end(c, perturb):
    """Executing again a portal that ran to completion: one that returns
    rows gives none, with its tag's count 0; another cannot run."""
    out = []
    for q in ("SELECT g FROM generate_series(1, 2) g", "INSERT INTO ext_t VALUES (8) RETURNING a",
              "SHOW work_mem", "INSERT INTO ext_t VALUES (9)"):
        out.append(run(c, query("BEGIN"), parse("", q), bind("pe", ""), execute("pe"),
                       execute("pe"), execute("pe", 1), sync(), count=2))
        out.append(run(c, execute("pe"), sync()))
        out.append(run(c, query("ROLLBACK")))
        perturb()
    out.append(run(c, parse("", "SELECT 1"), bind("", ""), execute(""), execute(""), sync()))
    return out


def sc_copy(c, perturb):
    out = [run(c, query("TRUNCATE ext_c"))]
    # As libpq does it: a Sync right behind the Execute, ignored by the
    # server in COPY, and one after CopyDone.
    out.append(run(c, parse("", "COPY ext_c FROM STDIN"), bind("", ""), execute(""), sync(),
                   stop=b"G"))
    out.append(run(c, copy_data(b"1\tone\n2\ttwo\n"), copy_data(b"3\tthree\n"), copy_done(),
                   sync()))
    out.append(run(c, parse("", "COPY ext_c FROM STDIN"), bind("", ""), execute(""), sync(),
                   stop=b"G"))
    out.append(run(c, copy_data(b"4\tfour\n"), copy_fail("given up"), sync()))
    out.append(run(c, parse("", "COPY ext_c FROM STDIN"), bind("", ""), execute(""), flush(),
                   stop=b"G"))
    out.append(run(c, copy_data(b"x\tbad\n"), copy_done(), sync()))
    out.append(run(c, parse("", "COPY (SELECT * FROM ext_c ORDER BY a) TO STDOUT"), bind("", ""),
                   execute(""), sync()))
    return out


def sc_copy_data_before_response(c, perturb):
    """The data sent right behind the COPY, before CopyInResponse (asyncpg
    does this), in both protocols."""
    out = [run(c, query("TRUNCATE ext_c")),
           run(c, query("COPY ext_c FROM STDIN"), copy_data(b"50\tfifty\n"), copy_done())]
    out.append(run(c, query("COPY ext_c FROM STDIN"), copy_data(b"51\tx\n"), copy_fail("no"),
                   query("SELECT count(*) FROM ext_c"), count=2))
    out.append(run(c, parse("", "COPY ext_c FROM STDIN"), bind("", ""), execute(""), sync(),
                   copy_data(b"52\tfifty-two\n"), copy_done(), sync()))
    out.append(run(c, parse("", "COPY ext_c FROM STDIN"), bind("", ""), execute(""),
                   copy_data(b"53\tx\n"), copy_done(), sync(), query("SELECT count(*) FROM ext_c"),
                   count=2))
    perturb()
    out.append(run(c, query("SELECT count(*) FROM ext_c")))
    return out


def sc_copy_interrupted(c, perturb):
    """A message PostgreSQL does not allow inside COPY FROM STDIN: the
    connection ends (its protocol synchronization is lost)."""
    out = [run(c, query("COPY ext_c FROM STDIN"), stop=b"G")]
    out.append(run(c, copy_data(b"7\tseven\n"), query("SELECT 1"), copy_data(b"8\teight\n"),
                   copy_done(), query("SELECT 'after'"), count=2))
    return out


def sc_copy_interrupted_extended(c, perturb):
    out = [run(c, parse("", "COPY ext_c FROM STDIN"), bind("", ""), execute(""), sync(),
               stop=b"G")]
    out.append(run(c, copy_data(b"9\tnine\n"), parse("", "SELECT 2"), copy_data(b"10\tten\n"),
                   copy_done(), sync()))
    return out


def sc_unnamed_across_batches(c, perturb):
    out = [run(c, parse("", "SELECT 'mine' || $1::text", [25]), describe("S", ""), sync())]
    perturb()
    out.append(run(c, bind("", "", ["!"]), execute(""), sync()))
    perturb()
    out.append(run(c, describe("S", ""), sync()))
    out.append(run(c, query("SELECT 1")))
    out.append(run(c, bind("", "", ["?"]), execute(""), sync()))
    out.append(run(c, parse("", "SELECT 3"), close("S", ""), bind("", ""), sync()))
    return out


def sc_close_and_deallocate(c, perturb):
    out = [run(c, parse("c1", "SELECT 'c1'"), parse("c2", "SELECT 'c2'"),
               parse("c3", "SELECT 'c3'"), sync())]
    out.append(run(c, close("S", "c1"), sync()))
    perturb()
    out.append(run(c, bind("", "c1"), execute(""), sync()))
    out.append(run(c, query("DEALLOCATE c2")))
    out.append(run(c, bind("", "c2"), execute(""), sync()))
    out.append(run(c, query("DEALLOCATE ALL")))
    out.append(run(c, bind("", "c3"), execute(""), sync()))
    out.append(run(c, parse("c1", "SELECT 'again'"), bind("", "c1"), execute(""), sync()))
    out.append(run(c, query("DISCARD ALL")))
    out.append(run(c, describe("S", "c1"), sync()))
    return out


def sc_result_type_changed(c, perturb):
    # A statement whose result columns changed fails for good with 0A000;
    # the same query prepared anew under another name is planned afresh.
    q = "SELECT * FROM ext_rt WHERE id = $1"
    out = [run(c, query("CREATE TABLE ext_rt (id int, f1 int, f2 int); "
                        "INSERT INTO ext_rt VALUES (1, 2, 3)")),
           run(c, parse("rt1", q), bind("", "rt1", ["1"]), execute(""), sync()),
           run(c, query("ALTER TABLE ext_rt DROP COLUMN f1")),
           run(c, bind("", "rt1", ["1"]), execute(""), sync()),
           run(c, query("DEALLOCATE rt1")),
           run(c, parse("rt2", q), bind("", "rt2", ["1"]), execute(""), sync())]
    perturb()
    out.append(run(c, bind("", "rt2", ["1"]), execute(""), sync()))
    out.append(run(c, query("DROP TABLE ext_rt")))
    return out


def sc_failed_transaction(c, perturb):
    out = [run(c, parse("t1", "SELECT 1"), sync())]
    out.append(run(c, query("BEGIN")))
    out.append(run(c, query("SELECT 1/0")))
    out.append(run(c, parse("t2", "SELECT 1"), sync()))
    out.append(run(c, bind("", "t1"), execute(""), sync()))
    out.append(run(c, parse("", "ROLLBACK"), bind("", ""), execute(""), sync()))
    out.append(run(c, bind("", "t1"), execute(""), sync()))
    out.append(run(c, bind("", "t2"), execute(""), sync()))
    return out


def sc_failed_by_protocol_error(c, perturb):
    """Errors found in the messages themselves (no such statement or
    portal, a duplicate name, a wrong parameter count) fail the transaction
    as any other error does; what follows is refused until it ends, and a
    savepoint rolled back to recovers it."""
    out = [run(c, query("TRUNCATE ext_t")),
           run(c, parse("f1", "SELECT g FROM generate_series(1, 3) g"),
               parse("f2", "SELECT $1::int", [INT4]), parse("fr", "ROLLBACK"),
               parse("fs", "ROLLBACK TO SAVEPOINT s"), sync())]
    perturb()
    for bad in (bind("", "nope"), describe("S", "nope"), describe("P", "nope"), execute("nope"),
                parse("f1", "SELECT 1"), bind("", "f2"), bind("", "f2", ["1"], formats=[1, 1])):
        out.append(run(c, query("BEGIN; INSERT INTO ext_t VALUES (1)")))
        out.append(run(c, bad, sync()))
        out.append(run(c, bind("q", "f1"), execute("q", 1), sync()))
        out.append(run(c, describe("S", "f1"), describe("S", "fr"), sync()))
        out.append(run(c, parse("f1", "SELECT 1"), sync()))
        out.append(run(c, query("COMMIT")))
    out.append(run(c, query("SELECT count(*) FROM ext_t")))
    # a portal bound before the failure: Describe and Execute refused
    out.append(run(c, query("BEGIN"), bind("q", "f1"), execute("q", 1), bind("", "nope"),
                   sync(), describe("P", "q"), execute("q", 1), sync(), bind("q", "f1"),
                   sync(), count=4))
    out.append(run(c, bind("", "fr"), execute(""), sync()))
    # within a savepoint: ROLLBACK TO recovers, the earlier insert stays
    out.append(run(c, query("BEGIN; INSERT INTO ext_t VALUES (2); SAVEPOINT s")))
    out.append(run(c, execute("nope"), sync()))
    out.append(run(c, bind("", "fs"), execute(""), sync()))
    out.append(run(c, bind("", "f2", ["5"]), execute(""), sync()))
    out.append(run(c, query("COMMIT")))
    out.append(run(c, query("SELECT count(*) FROM ext_t")))
    # in an implicit transaction of several Executes: all rolled back
    out.append(run(c, parse("", "INSERT INTO ext_t VALUES (3)"), bind("", ""), execute(""),
                   bind("", ""), execute(""), bind("", "nope"), execute(""), sync()))
    out.append(run(c, query("SELECT count(*) FROM ext_t")))
    # a single Execute, then an error before the Sync: rolled back too
    for bad in (bind("", "nope"), describe("S", "nope"), parse("f1", "SELECT 2")):
        out.append(run(c, parse("", "INSERT INTO ext_t VALUES (4)"), bind("", ""), execute(""),
                       bad, sync()))
        out.append(run(c, query("SELECT count(*) FROM ext_t")))
    return out


def sc_format_codes(c, perturb):
    """Format codes PostgreSQL does not know: a parameter's fails its
    Bind, a result's fails only when a row is sent."""
    out = [run(c, parse("fc", "SELECT g FROM generate_series(1, $1::int) g"), sync())]
    perturb()
    out.append(run(c, bind("", "fc", ["1"], result_formats=[3]), execute(""), sync()))
    out.append(run(c, bind("", "fc", ["0"], result_formats=[3]), execute(""), sync()))
    out.append(run(c, bind("", "fc", ["1"], result_formats=[-1]), describe("P", ""),
                   execute(""), sync()))
    out.append(run(c, bind("", "fc", ["1"], formats=[3]), execute(""), sync()))
    out.append(run(c, bind("", "fc", ["1"], formats=[7]), describe("P", ""), sync()))
    out.append(run(c, parse("fn", "SELECT 1"), bind("", "fn", [], formats=[3]), execute(""),
                   sync()))
    out.append(run(c, query("BEGIN")))
    out.append(run(c, bind("", "fc", ["1"], formats=[3]), execute(""), sync()))
    out.append(run(c, query("ROLLBACK")))
    return out


def sc_session_set(c, perturb):
    out = [run(c, parse("set1", "SET application_name = 'set by parse'"), bind("", "set1"),
               execute(""), sync())]
    perturb()
    out.append(run(c, query("SHOW application_name")))
    out.append(run(c, parse("", "SET work_mem = '7MB'"), bind("", ""), execute(""),
                   parse("", "SELECT 1/0"), bind("", ""), execute(""), sync()))
    perturb()
    out.append(run(c, query("SHOW work_mem")))
    return out


def sc_deallocate_forms(c, perturb):
    """SQL's DEALLOCATE of statements made with Parse, alone in a simple
    Query: with PREPARE, quoted, of a name already gone."""
    out = [run(c, *[parse(n, "SELECT '%s'" % n) for n in ("d1", "D2", "d3")], sync())]
    out.append(run(c, query("DEALLOCATE PREPARE d1")))
    out.append(run(c, query('DEALLOCATE "D2"')))
    out.append(run(c, query("DEALLOCATE D2")))
    out.append(run(c, query('/* it */ deallocate prepare "d3" ;')))
    perturb()
    out.append(run(c, bind("", "d1"), execute(""), sync()))
    out.append(run(c, query("DEALLOCATE nope")))
    return out


def sc_deallocate_among_statements(c, perturb):
    """SQL's DEALLOCATE of statements made with Parse among other
    statements of a simple Query, failing before and after them."""
    out = [run(c, *[parse(n, "SELECT '%s'" % n) for n in ("d4", "d5", "d6")], sync())]
    perturb()
    out.append(run(c, query("SELECT 1; DEALLOCATE d4; SELECT 2")))
    out.append(run(c, bind("", "d4"), execute(""), sync()))
    out.append(run(c, query("SELECT 1/0; DEALLOCATE d5")))
    out.append(run(c, bind("", "d5"), execute(""), sync()))
    out.append(run(c, query("DEALLOCATE d5; SELECT 1/0")))
    out.append(run(c, bind("", "d5"), execute(""), sync()))
    # pipelined behind it, a Bind of the statement it drops
    out.append(run(c, query("SELECT 'x'; DEALLOCATE d6"), bind("", "d6"), execute(""), sync(),
                   count=2))
    out.append(run(c, query("SELECT 1; DEALLOCATE nope; SELECT 2")))
    return out


def sc_deallocate_in_transaction(c, perturb):
    """DEALLOCATE is not transactional; in a failed transaction it is refused."""
    out = [run(c, parse("t1", "SELECT 't1'"), parse("t2", "SELECT 't2'"), sync())]
    out.append(run(c, query("BEGIN")))
    out.append(run(c, query("DEALLOCATE t1")))
    out.append(run(c, query("ROLLBACK")))
    out.append(run(c, bind("", "t1"), execute(""), sync()))
    perturb()
    out.append(run(c, query("BEGIN")))
    out.append(run(c, query("SELECT 1/0")))
    out.append(run(c, query("DEALLOCATE t2")))
    out.append(run(c, query("SELECT 1; DEALLOCATE t2")))
    out.append(run(c, parse("", "DEALLOCATE t2"), bind("", ""), execute(""), sync()))
    out.append(run(c, query("ROLLBACK")))
    out.append(run(c, bind("", "t2"), execute(""), sync()))
    return out


def sc_deallocate_extended(c, perturb):
    """DEALLOCATE through the extended protocol (psycopg 3 evicts its
    statements so), in pipelines, bound in one batch and run in another."""
    out = [run(c, parse("x1", "SELECT $1::int", [INT4]), parse("x2", "SELECT 'x2'"),
               parse("x3", "SELECT 'x3'"), sync())]
    out.append(run(c, parse("", "DEALLOCATE x1"), bind("", ""), describe("P", ""), execute(""),
                   sync()))
    out.append(run(c, bind("", "x1", ["1"]), execute(""), sync()))
    perturb()
    out.append(run(c, parse("", 'DEALLOCATE PREPARE "x2"'), bind("", ""), execute(""),
                   bind("", "x2"), execute(""), sync()))
    out.append(run(c, parse("", "SELECT 1/0"), bind("", ""), execute(""),
                   parse("", "DEALLOCATE x3"), bind("", ""), execute(""), sync()))
    out.append(run(c, bind("", "x3"), execute(""), sync()))
    out.append(run(c, parse("dx", "DEALLOCATE x3"), describe("S", "dx"), bind("", "dx"),
                   execute(""), sync()))
    out.append(run(c, bind("", "dx"), execute(""), sync()))
    out.append(run(c, query("BEGIN")))
    out.append(run(c, parse("x4", "SELECT 'x4'"), parse("", "DEALLOCATE x4"), bind("p4", ""),
                   sync()))
    out.append(run(c, execute("p4"), sync()))
    out.append(run(c, bind("", "x4"), execute(""), sync()))
    out.append(run(c, query("ROLLBACK")))
    out.append(run(c, query("BEGIN")))
    out.append(run(c, parse("x5", "SELECT 'x5'"), parse("", "DEALLOCATE x5"), bind("p5", ""),
                   sync()))
    out.append(run(c, query("SELECT 1/0")))
    out.append(run(c, execute("p5"), sync()))
    out.append(run(c, query("ROLLBACK")))
    out.append(run(c, bind("", "x5"), execute(""), sync()))
    out.append(run(c, parse("y1", "SELECT 'y1'"), bind("", "y1"), execute(""), sync()))
    out.append(run(c, parse("", "DEALLOCATE ALL"), bind("", ""), execute(""), sync()))
    out.append(run(c, bind("", "x5"), execute(""), sync()))
    out.append(run(c, parse("y1", "SELECT 'y1'"), bind("", "y1"), execute(""), sync()))
    return out


def sc_execute_sql(c, perturb):
    """SQL's EXECUTE (and EXPLAIN EXECUTE) of statements made with Parse;
    errors name them and point into the text as sent."""
    out = [run(c, parse("e1", "SELECT $1::int * 2 AS twice", [INT4]),
               parse("E2", "SELECT 'e2' AS v"), parse("e3", "SELECT 'e3'"), sync())]
    out.append(run(c, query("EXECUTE e1(21)")))
    perturb()
    out.append(run(c, query('EXECUTE "E2"; EXECUTE e1 (4)')))
    out.append(run(c, query("EXECUTE e1")))
    out.append(run(c, query("SELECT 1; EXECUTE e1(1, 2)")))
    out.append(run(c, query("EXECUTE e1('x')")))
    out.append(run(c, query("EXECUTE e1(1) junk")))
    out.append(run(c, query("EXPLAIN (COSTS OFF) EXECUTE e1(1)")))
    out.append(run(c, query('explain verbose execute "E2"')))
    out.append(run(c, query("EXECUTE nope")))
    out.append(run(c, query("EXECUTE e1(1); DEALLOCATE e1; EXECUTE e1(2)")))
    out.append(run(c, query("BEGIN")))
    out.append(run(c, query("EXECUTE e3")))
    out.append(run(c, query("SELECT 1/0")))
    out.append(run(c, query("EXECUTE e3")))
    out.append(run(c, query("ROLLBACK")))
    out.append(run(c, query("EXECUTE e3")))
    return out


def sc_execute_extended(c, perturb):
    """SQL's EXECUTE of statements made with Parse, itself made with Parse:
    described, bound, run, in a pipeline, after the statement it runs went."""
    out = [run(c, parse("e1", "SELECT $1::int * 2 AS twice", [INT4]),
               parse("e2", "SELECT 'e2' AS v"), sync())]
    out.append(run(c, parse("ex", "EXECUTE e1(21)"), describe("S", "ex"), bind("", "ex"),
                   describe("P", ""), execute(""), sync()))
    perturb()
    out.append(run(c, bind("", "ex"), execute(""), sync()))
    out.append(run(c, parse("", "EXECUTE e2"), bind("", ""), describe("P", ""), execute(""),
                   parse("", "EXPLAIN (COSTS OFF) EXECUTE e1(1)"), bind("", ""), execute(""),
                   sync()))
    out.append(run(c, parse("", "EXECUTE e1"), bind("", ""), execute(""), sync()))
    out.append(run(c, parse("", "EXECUTE e1('x')"), bind("", ""), execute(""), sync()))
    out.append(run(c, query("DEALLOCATE e1")))
    out.append(run(c, bind("", "ex"), execute(""), sync()))
    return out


def sc_sql_prepare_names(c, perturb):
    """SQL's PREPARE and Parse take names from one name space."""
    out = [run(c, query("PREPARE sp1 AS SELECT 'sql'"))]
    out.append(run(c, parse("sp1", "SELECT 'taken'"), sync()))
    out.append(run(c, bind("", "sp1"), execute(""), sync()))
    out.append(run(c, parse("pp1", "SELECT 'proto'"), sync()))
    out.append(run(c, query("PREPARE pp1 AS SELECT 'again'")))
    out.append(run(c, query("EXECUTE sp1; EXECUTE pp1")))
    out.append(run(c, query("DEALLOCATE sp1")))
    out.append(run(c, parse("sp1", "SELECT 'now free'"), bind("", "sp1"), execute(""), sync()))
    out.append(run(c, query("PREPARE sp2 AS SELECT 2; DEALLOCATE ALL")))
    out.append(run(c, parse("sp2", "SELECT 'free too'"), bind("", "sp2"), execute(""), sync()))
    out.append(run(c, query("DISCARD ALL")))
    perturb()
    out.append(run(c, bind("", "sp2"), execute(""), sync()))
    return out


def sc_reserved_names_in_sql(c, perturb):
    """SQL naming the gateway's own server statements reaches none of them
    (nor breaks them for the sessions sharing them)."""
    out = [run(c, parse("r1", "SELECT 'r1'"), bind("", "r1"), execute(""), sync())]
    perturb()
    for sql in ("EXECUTE _pgw_1", "DEALLOCATE _pgw_1", "DEALLOCATE PREPARE _PGW_2",
                'EXPLAIN EXECUTE "_pgw_1"', "SELECT 1; EXECUTE _pgw_3(1, 2)",
                "DEALLOCATE _pgw_0", 'EXECUTE "_pgw_1" junk'):
        out.append(run(c, query(sql)))
    out.append(run(c, bind("", "r1"), execute(""), sync()))
    return out


def sc_empty_and_nodata(c, perturb):
    return [run(c, parse("", ""), bind("", ""), describe("P", ""), execute(""), sync()),
            run(c, parse("n1", "SET search_path = public"), describe("S", "n1"), bind("", "n1"),
                describe("P", ""), execute(""), sync())]


def sc_long_pipeline(c, perturb):
    msgs = [parse("lp", "SELECT $1::int", [INT4])]
    for i in range(20000):
        msgs += [bind("", "lp", [str(i)]), execute("")]
    msgs.append(sync())
    got = run(c, *msgs)
    rows = [m for m in got if m[0] == "D"]
    return [len(got), rows[:3], rows[-3:], got[-1]]


# ---- random pipelines: the same seeded sequence of messages, valid or not,
# directly and through the gateway

RANDOM_QUERIES = ["SELECT $1::int", "SELECT 1/$1::int", "SELECT g FROM generate_series(1, 3) g",
                  "SELEC bad", "", "SELECT $1::text, $2::int", "INSERT INTO ext_t VALUES (7)",
                  "SET application_name = 'random'", "SELECT current_setting('application_name')"]
RANDOM_VALUES = ["0", "1", "x", None]


def random_batch(rng):
    msgs = []
    for _ in range(rng.randint(1, 12)):
        op = rng.random()
        stmt = rng.choice(["", "", "r1", "r2", "r3"])
        portal = rng.choice(["", "", "p1"])
        if op < 0.25:
            msgs.append(parse(stmt, rng.choice(RANDOM_QUERIES),
                              [INT4] if rng.random() < 0.3 else []))
        elif op < 0.5:
            msgs.append(bind(portal, stmt, [rng.choice(RANDOM_VALUES)
                                            for _ in range(rng.randint(0, 2))]))
        elif op < 0.6:
            msgs.append(describe(rng.choice("SP"), rng.choice([stmt, portal])))
        elif op < 0.8:
            msgs.append(execute(portal, rng.choice([0, 0, 1, 2])))
        elif op < 0.87:
            msgs.append(close(rng.choice("SP"), rng.choice([stmt, portal])))
        elif op < 0.92:
            msgs.append(sync())
        elif op < 0.96:
            msgs.append(query(rng.choice(["SELECT 1", "BEGIN", "COMMIT", "ROLLBACK",
                                          "DEALLOCATE r1", "DEALLOCATE ALL"])))
        else:
            msgs.append(flush())
    # A Sync, then a query no error can skip or fail, marks the end of the
    # answers.
    msgs += [sync(), query("ROLLBACK; SELECT 'end of batch'")]
    return msgs


def until_marker(c):
    got = []
    while True:
        got += c.until()
        if any(t == b"D" and b"end of batch" in body for t, body in got[-4:]):
            return normalise(got)


def make_random(seed):
    def scenario(c, perturb):
        import random
        rng = random.Random(seed)
        out = []
        for _ in range(8):
            c.send(*random_batch(rng))
            out.append(until_marker(c))
            out.append(run(c, query("ROLLBACK")))
            perturb()
        return out
    return scenario


# More with PGW_RANDOM_SEEDS=N (CI runs the default).
for _seed in range(int(os.environ.get("PGW_RANDOM_SEEDS", "60"))):
    globals()["sc_random_%02d" % _seed] = make_random(_seed)


SCENARIOS = sorted(k for k in globals() if k.startswith("sc_"))


class ExtendedWireTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        env = harness.get_env()
        env.admin_exec("DROP TABLE IF EXISTS ext_t, ext_c; CREATE TABLE ext_t (a int); "
                       "CREATE TABLE ext_c (a int, b text)", dbname=harness.MAIN_DB)
        cls.direct = env.direct
        cls.targets = [env.gateway(), env.gateway("ext-tight", pool_size=1, workers=1,
                                                  extra_args=["--max-prepared", "2"]),
                       env.gateway("ext-session", pool_mode="session")]

    def transcript(self, endpoint, name):
        c = Conn(endpoint)
        p = Perturber(endpoint)
        try:
            return globals()[name](c, p)
        finally:
            p.close()
            c.close()


def _make(name):
    def test(self):
        want = self.transcript(self.direct, name)
        for gw in self.targets:
            got = self.transcript(gw, name)
            if got != want:
                self.fail("%s through %s differs from direct:\n%s" % (
                    name, gw.name, harness.text_diff(pprint.pformat(want, width=110),
                                                     pprint.pformat(got, width=110))))
    return test


for _name in SCENARIOS:
    setattr(ExtendedWireTest, "test_" + _name[3:], _make(_name))


def session_names(c):
    """What pg_prepared_statements shows of statements made with Parse and
    with SQL's PREPARE, and SQL's EXECUTE and DEALLOCATE of them."""
    listing = query("SELECT name, statement, parameter_types::text, from_sql "
                    "FROM pg_prepared_statements ORDER BY name")
    out = [run(c, parse("s1", "SELECT $1::int", [INT4]), parse("S 2", "SELECT 'two'"), sync())]
    out.append(run(c, query("PREPARE p3 AS SELECT 3")))
    out.append(run(c, listing))
    out.append(run(c, query('EXECUTE "S 2"; EXECUTE s1(7); EXECUTE p3')))
    out.append(run(c, query("DEALLOCATE s1")))
    out.append(run(c, parse("", "DEALLOCATE p3"), bind("", ""), execute(""), sync()))
    out.append(run(c, listing))
    out.append(run(c, bind("", "p3"), execute(""), sync()))
    out.append(run(c, query("DEALLOCATE ALL")))
    out.append(run(c, listing))
    return out


class SessionModeNamesTest(unittest.TestCase):
    """In session mode the server connection is the client's alone, and its
    statements keep the client's names: pg_prepared_statements, EXECUTE and
    DEALLOCATE see them exactly as directly."""
    maxDiff = None

    def test_pg_prepared_statements(self):
        env = harness.get_env()
        want = session_names(Conn(env.direct))
        gw = env.gateway("ext-session", pool_mode="session")
        got = session_names(Conn(gw))
        if got != want:
            self.fail("through %s:\n%s" % (gw.name, harness.text_diff(
                pprint.pformat(want, width=110), pprint.pformat(got, width=110))))


class StalePlanEverywhereTest(unittest.TestCase):
    """After a table's columns change, a query prepared anew is planned
    afresh by PostgreSQL; through the gateway, every server connection
    holding a statement of that query must forget it, not only the one
    that reported "cached plan must not change result type"."""
    maxDiff = None

    def transcript(self, endpoint):
        a, b = Conn(endpoint), Conn(endpoint)
        q = "SELECT * FROM ext_stale WHERE id = $1"
        try:
            out = [run(a, query("CREATE TABLE ext_stale (id int, f1 int, f2 int); "
                                "INSERT INTO ext_stale VALUES (1, 2, 3)"))]
            # both in a transaction at once: two server connections, each
            # preparing the query
            out.append(run(a, query("BEGIN")))
            out.append(run(b, query("BEGIN")))
            for c, name in ((a, "sa"), (b, "sb")):
                out.append(run(c, parse(name, q), bind("", name, ["1"]), execute(""), sync()))
            out.append(run(a, query("COMMIT")))
            out.append(run(b, query("COMMIT")))
            out.append(run(a, query("ALTER TABLE ext_stale DROP COLUMN f1")))
            out.append(run(a, bind("", "sa", ["1"]), execute(""), sync()))
            # b holds the connection that failed; a gets the other one
            out.append(run(b, query("BEGIN")))
            out.append(run(b, query("SELECT 1")))
            for i in range(3):
                out.append(run(a, parse("fresh%d" % i, q), bind("", "fresh%d" % i, ["1"]),
                               execute(""), sync()))
            out.append(run(b, parse("freshb", q), bind("", "freshb", ["1"]), execute(""), sync()))
            out.append(run(b, query("COMMIT")))
            out.append(run(a, query("DROP TABLE ext_stale")))
            return out
        finally:
            a.close()
            b.close()

    def schema_change_transcript(self, endpoint):
        """A table dropped and made again in another shape, by one session
        after another (as test suites and migrations do), and a column
        dropped inside a transaction that is rolled back: each new Parse of
        the query gets the shape of the moment, while a statement prepared
        before the change keeps failing with 0A000, as on PostgreSQL."""
        q = "SELECT * FROM ext_reshaped WHERE id = 1"
        out = []
        for i, cols in enumerate(("id int, f1 int, f2 int", "id int, g text", "id int, f1 int, f2 int")):
            c = Conn(endpoint)
            try:
                out.append(run(c, query("DROP TABLE IF EXISTS ext_reshaped; CREATE TABLE ext_reshaped "
                                        "(%s); INSERT INTO ext_reshaped (id) VALUES (1)" % cols)))
                # (no Describe: the table's oid differs from run to run)
                out.append(run(c, parse("s%d" % i, q), bind("", "s%d" % i, []), execute(""),
                               sync()))
            finally:
                c.close()
        c = Conn(endpoint)
        try:
            out.append(run(c, parse("before", q), bind("", "before", []), execute(""), sync()))
            out.append(run(c, query("BEGIN")))
            out.append(run(c, query("ALTER TABLE ext_reshaped DROP COLUMN f1")))
            out.append(run(c, parse("inside", q), bind("", "inside", []), execute(""), sync()))
            out.append(run(c, query("ROLLBACK")))
            out.append(run(c, parse("after", q), bind("", "after", []), execute(""), sync()))
            out.append(run(c, query("ALTER TABLE ext_reshaped DROP COLUMN f2")))
            out.append(run(c, bind("", "before", []), execute(""), sync()))
            out.append(run(c, parse("last", q), bind("", "last", []), execute(""), sync()))
            out.append(run(c, query("DROP TABLE ext_reshaped")))
        finally:
            c.close()
        return out

    def compare(self, transcript, **gateway_args):
        env = harness.get_env()
        want = transcript(env.direct)
        gw = env.gateway("ext-stale", pool_size=2, workers=1, **gateway_args)
        got = transcript(gw)
        if got != want:
            self.fail("through %s:\n%s" % (gw.name, harness.text_diff(
                pprint.pformat(want, width=110), pprint.pformat(got, width=110))))

    def test_fresh_parse_after_columns_change(self):
        self.compare(self.transcript)

    def test_fresh_parse_after_table_made_again(self):
        self.compare(self.schema_change_transcript)
