#!/usr/bin/env bash
# Bounded fuzzing of the core's parsers and decoders with cargo-fuzz (libFuzzer),
# one target after another: `make fuzz`, or `scripts/fuzz.sh [target...]`.
#
#   FUZZ_SECONDS    seconds per target (default 60)
#   FUZZ_TARGETS    targets to run, space-separated (default: all; arguments win)
#   FUZZ_SANITIZER  cargo fuzz --sanitizer (default none: works on stable Rust;
#                   address needs a nightly toolchain)
#
# Works on stable Rust: with `--sanitizer none`, cargo-fuzz passes only stable
# rustc flags (-Cpasses=sancov-module and -Cllvm-args for the coverage
# instrumentation). The crates are safe Rust, so AddressSanitizer adds little;
# panics, failed property assertions, overflow checks (debug assertions are
# on), timeouts and memory blow-ups are what the targets catch.
#
# Each target's corpus grows in fuzz/corpus/<target> (kept between runs, not
# committed), seeded from fuzz/seeds/<target>. A crash is saved under
# fuzz/artifacts/<target>/ and makes the script exit non-zero; reproduce it
# with `cargo fuzz run --sanitizer none <target> <file>` from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
sanitizer=${FUZZ_SANITIZER:-none}
all_targets=(entry command decode document client_list config)
if [ $# -gt 0 ]; then
    targets=("$@")
elif [ -n "${FUZZ_TARGETS:-}" ]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    targets=("${all_targets[@]}")
fi

# The longest input worth trying per target: an entry list is short, a config
# file or a payload with several groups longer.
max_len() {
    case "$1" in
        entry) echo 256 ;;
        command) echo 1024 ;;
        decode) echo 2048 ;;
        document) echo 2048 ;;
        client_list) echo 1024 ;;
        config) echo 2048 ;;
        *) echo 1024 ;;
    esac
}

for t in "${targets[@]}"; do
    if [ ! -f "fuzz/fuzz_targets/$t.rs" ]; then
        echo "no such fuzz target: $t (have: ${all_targets[*]})" >&2
        exit 2
    fi
done
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "FUZZ_SECONDS must be a whole number of seconds, not '$seconds'" >&2
    exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "Installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi
command -v c++ >/dev/null 2>&1 || {
    echo "libfuzzer-sys builds libFuzzer with a C++ compiler: install build-essential (make deps)" >&2
    exit 1
}

echo "Building the fuzz targets (sanitizer: $sanitizer)"
cargo fuzz build --sanitizer "$sanitizer"

logs=fuzz/target/fuzz-logs
mkdir -p "$logs"
declare -A status
failed=0
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    if [ -d "fuzz/seeds/$t" ]; then
        cp -n fuzz/seeds/"$t"/* "fuzz/corpus/$t/" 2>/dev/null || true
    fi
    before=$(find "fuzz/artifacts/$t" -type f | sort)
    echo "Fuzzing $t for ${seconds}s (max_len $(max_len "$t"), log $logs/$t.log)"
    rc=0
    cargo fuzz run --sanitizer "$sanitizer" "$t" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$logs/$t.log" 2>&1 || rc=$?
    new=$(comm -13 <(echo "$before") <(find "fuzz/artifacts/$t" -type f | sort) | grep . || true)
    if [ "$rc" -ne 0 ] || [ -n "$new" ]; then
        status[$t]="FAILED (exit $rc)"
        failed=1
        echo "--- $t: last lines of $logs/$t.log" >&2
        tail -n 30 "$logs/$t.log" >&2
        [ -z "$new" ] || echo "--- $t: new artifacts: $new" >&2
    else
        status[$t]=ok
    fi
done

final_stat() { grep -m1 "^stat::$2:" "$logs/$1.log" | awk '{print $2}'; }
echo
printf '%-12s %-18s %12s %9s %7s %7s %8s\n' target result executions exec/s cov ft corpus
for t in "${targets[@]}"; do
    last=$(grep -E '^#[0-9]+.* cov: ' "$logs/$t.log" | tail -n 1 || true)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$last")
    printf '%-12s %-18s %12s %9s %7s %7s %8s\n' "$t" "${status[$t]}" \
        "$(final_stat "$t" number_of_executed_units)" "$(final_stat "$t" average_exec_per_sec)" "${cov:--}" "${ft:--}" "${corp:--}"
done
if [ "$failed" -ne 0 ]; then
    echo
    echo "Fuzzing found a problem: see the artifacts above; reproduce with" >&2
    echo "  cargo fuzz run --sanitizer $sanitizer <target> fuzz/artifacts/<target>/<file>" >&2
    exit 1
fi
echo
echo "No crash in ${#targets[@]} target(s), ${seconds}s each."
