#!/usr/bin/env bash
# Installs what the build and the tests need and is missing: Debian's
# redis-server, libclang (for the redis-module crate's bindgen) and a C
# toolchain. As root it runs apt-get; otherwise it prints the command to run.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
if ! compgen -G "/usr/lib/llvm-*/lib/libclang*.so*" >/dev/null \
    && ! compgen -G "/usr/lib/x86_64-linux-gnu/libclang*.so*" >/dev/null \
    && ! compgen -G "/usr/lib/aarch64-linux-gnu/libclang*.so*" >/dev/null; then
    missing+=(libclang-dev)
fi
for extra in "$@"; do
    case "$extra" in
        valgrind) command -v callgrind_control >/dev/null 2>&1 || missing+=(valgrind) ;;
        *) ;;
    esac
done

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: install Rust with rustup (https://rustup.rs), then run this again." >&2
    exit 1
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

# redis-tools comes with redis-server; ask for the server only.
packages=$(printf '%s\n' "${missing[@]}" | sed 's/^redis-tools$/redis-server/' | sort -u | tr '\n' ' ')
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing: $packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $packages
else
    echo "Missing: $packages" >&2
    echo "Install them with:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y $packages" >&2
    exit 1
fi
