"""node-postgres (npm `pg` with `pg-cursor`) through the gateway, compared
with the same run directly: named statements, row-limited cursors with
Flush (also outside a transaction), errors, a pool. The packages are
installed into tests/integration/node by the README's test command."""
import json
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

NODE_DIR = os.path.join(harness.HERE, "node")


def run_scenario(ep):
    r = subprocess.run(["node", os.path.join(NODE_DIR, "pg_scenario.js"), str(ep.port)],
                       cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError("node scenario failed against %s:\n%s" % (ep.name, r.stderr[-3000:]))
    return json.loads(r.stdout)


class NodePgTest(unittest.TestCase):
    maxDiff = None

    def test_same_as_direct(self):
        if not shutil.which("node"):
            self.fail("node is not installed")
        if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "pg-cursor")):
            self.fail("run `npm ci` in tests/integration/node first")
        harness.assert_same_as_direct(self, run_scenario, "node-tight", 3,
                                      lambda r: json.dumps(r, indent=1))
