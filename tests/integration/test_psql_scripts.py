"""psql scripts (sql/*.sql) run directly and through the gateway; the
outputs (stdout+stderr of `psql -X -a -v ON_ERROR_STOP=0 -f`) must be equal
after masking pids/ports/timestamps."""
import glob
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SQL_DIR = os.path.join(harness.HERE, "sql")


class PsqlScriptTest(harness.IntegrationTestCase):
    def run_script(self, path):
        stem = os.path.splitext(os.path.basename(path))[0]
        dbbase = "sql_" + re.sub(r"[^a-z0-9_]", "_", stem.lower())
        outdir = os.path.join(self.env.tmp, "sql-out")
        os.makedirs(outdir, exist_ok=True)
        path_mask = [(re.compile(re.escape(SQL_DIR + os.sep)), "")]
        results = []
        for ep, suffix in ((self.env.direct, "d"), (self.gw(), "g")):
            db = self.env.create_database("%s_%s" % (dbbase, suffix))
            rc, out = harness.run_psql_script(ep, path, db)
            out = harness.mask_output(out, path_mask)
            with open(os.path.join(outdir, "%s.%s.out" % (stem, ep.kind)), "w") as f:
                f.write(out)
            results.append((rc, out))
        (rc_d, out_d), (rc_g, out_g) = results
        self.assertEqual(rc_d, 0, "psql failed directly:\n" + out_d[-3000:])
        self.assertIn("SELECT", out_d)
        self.assertNotIn("server closed the connection", out_d)
        if out_d != out_g:
            self.fail("%s: output through the gateway differs from direct:\n%s"
                      % (os.path.basename(path), harness.text_diff(out_d, out_g)[:20000]))
        self.assertEqual(rc_d, rc_g, "psql exit code differs")


def _make(path):
    def test(self):
        self.run_script(path)
    test.__doc__ = "psql script %s" % os.path.basename(path)
    return test


for _p in sorted(glob.glob(os.path.join(SQL_DIR, "*.sql"))):
    _name = "test_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(_p))[0])
    setattr(PsqlScriptTest, _name, _make(_p))
