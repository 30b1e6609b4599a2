"""Large objects through the gateway: libpq's lo_* calls are FunctionCall
messages (the fast-path interface), used here by psql's \\lo_import,
\\lo_export and \\lo_unlink and by psycopg2's lobject, with the same
results as directly."""
import hashlib
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class LargeObjectTest(harness.DualTestCase):

    def psql(self, ep, cmd):
        r = subprocess.run([harness.PSQL, "-X", "-v", "ON_ERROR_STOP=1", "-At", "-c", cmd],
                           env=ep.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout)
        return r.stdout

    def test_psql_import_export(self):
        data = os.urandom(3 * 1024 * 1024 + 17)
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "src.bin")
            with open(src, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o755)
            for ep in (self.env.direct, self.gw()):
                out = self.psql(ep, "\\lo_import '%s'" % src)
                oid = int(out.split()[-1])
                dst = os.path.join(tmp, "dst-%s.bin" % ep.name)
                self.psql(ep, "\\lo_export %d '%s'" % (oid, dst))
                with open(dst, "rb") as f:
                    self.assertEqual(hashlib.sha256(f.read()).hexdigest(),
                                     hashlib.sha256(data).hexdigest(), ep.name)
                self.psql(ep, "\\lo_unlink %d" % oid)
                out = self.psql(ep, "SELECT count(*) FROM pg_largeobject_metadata WHERE oid = %d"
                                % oid)
                self.assertEqual(out.strip(), "0", ep.name)

    def test_psycopg2_lobject(self):
        def scenario(tr, connect):
            c = connect()
            lo = c.lobject(0, "wb")
            tr.note("write", lo.write(b"hello large object " * 1000))
            oid = lo.oid
            lo.close()
            c.commit()
            lo = c.lobject(oid, "rb")
            lo.seek(6)
            tr.note("read", lo.read(12))
            tr.note("tell", lo.tell())
            lo.close()
            lo = c.lobject(oid, "wb")
            lo.truncate(5)
            lo.close()
            c.commit()
            lo = c.lobject(oid, "rb")
            tr.note("after truncate", lo.read())
            lo.unlink()
            c.commit()
            try:
                c.lobject(oid, "rb")
            except Exception as e:  # noqa: BLE001
                tr.note("gone", str(e).replace(str(oid), "<oid>"))
            c.rollback()
        self.dual(scenario)
