#!/usr/bin/env bash
# Whole-server figures (`make bench-server`): Redis with the whitelist module
# against Redis without it and against the do-nothing floor module, in the same
# run. See BENCHMARKS.md; counts are set by environment variables (ROUNDS,
# CONN_REQUESTS, KEEPALIVE_REQUESTS, CALLGRIND_CONNECTIONS, CALLGRIND_REPEATS,
# CALLGRIND_LAYOUTS, CALLGRIND_COMMANDS, RECHECK_CONNECTIONS, SET_CALLS,
# SET_STARTS, IO_THREADS, SWEEP_ROUNDS).
set -euo pipefail
cd "$(dirname "$0")/.."
# 10,000 open connections need descriptors on both sides.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec python3 scripts/bench_server.py "$@"
