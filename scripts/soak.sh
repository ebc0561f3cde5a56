#!/usr/bin/env bash
# The long soak (`make soak`): the reliability suite's soak test against the
# release build, for SOAK_SECONDS (default 300). Allowed clients run commands
# while denied connections flood in and the rules change every 50 ms; it prints
# the figures and fails if an allowed client saw an error, a denied client ran
# a command, memory grew out of bounds or clients were left behind.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${SOAK_SECONDS:-300}
case "$seconds" in
    '' | *[!0-9]*) echo "SOAK_SECONDS must be a whole number of seconds, not '$seconds'" >&2; exit 2 ;;
esac
module="$PWD/target/release/libredis_whitelist.so"
[ -f "$module" ] || { echo "build the module first: make soak (or cargo build --release)" >&2; exit 1; }

echo "Soak: ${seconds} s against $module"
SOAK_SECONDS="$seconds" WHITELIST_MODULE="$module" \
    cargo test --release -p redis-whitelist --test reliability soak -- --nocapture --test-threads 1
