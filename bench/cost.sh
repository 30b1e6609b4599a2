#!/usr/bin/env bash
# cost.sh - instructions per transaction of the embedded gateway and of the
# remote path (gateway + multipooler), counted by valgrind's callgrind, so
# the figures hold whatever else the machine is doing. See
# tests/integration/bench_cost.py for what is measured.
#
# Usage (as root):  bench/cost.sh [--modes simple,extended,prepared]
#                                 [--transactions N] [--clients C] [--top K]
# PGW_GATEWAY (default build/multigateway) and the multipooler beside it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PGW_GATEWAY=${PGW_GATEWAY:-$ROOT/build/multigateway}
exec /usr/bin/python3 "$ROOT/tests/integration/bench_cost.py" "$@"
