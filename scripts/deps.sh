#!/usr/bin/env bash
# Installs what the build needs and is missing: Debian's redis-server,
# libclang itself (for the redis-module crate's bindgen) and a C toolchain.
# As root it runs apt-get; otherwise it prints the command to run.
# Arguments name extras:
#   test      python3's venv (the extra test servers come from Python
#             packages), openssl (the TLS test makes its certificates) and
#             Debian's prometheus-redis-exporter (tests/prometheus.rs runs it;
#             the package also installs a service of its own)
#   valgrind  make bench-server
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
# bindgen loads libclang.so or libclang-N.so*: look for those files, never
# for a look-alike such as libclang-cpp.so.14 (LLVM ships it without libclang).
has_libclang() {
    local dir f
    for dir in /usr/lib/llvm-*/lib /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib; do
        for f in "$dir"/libclang.so "$dir"/libclang.so.* "$dir"/libclang-[0-9]*.so "$dir"/libclang-[0-9]*.so.*; do
            [ -e "$f" ] && return 0
        done
    done
    return 1
}
# bindgen also parses with clang's own builtin headers (stddef.h), which come
# with libclang-dev but not with the bare library package.
has_clang_headers() {
    compgen -G "/usr/lib/llvm-*/lib/clang/*/include/stddef.h" >/dev/null \
        || compgen -G "/usr/lib/clang/*/include/stddef.h" >/dev/null
}
if [ -n "${LIBCLANG_PATH:-}" ] && compgen -G "$LIBCLANG_PATH/libclang*.so*" >/dev/null; then
    :
elif ! has_libclang || ! has_clang_headers; then
    missing+=(libclang-dev)
fi
for extra in "$@"; do
    case "$extra" in
        test)
            python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
            command -v openssl >/dev/null 2>&1 || missing+=(openssl)
            command -v prometheus-redis-exporter >/dev/null 2>&1 || [ -x /usr/bin/prometheus-redis-exporter ] \
                || missing+=(prometheus-redis-exporter)
            ;;
        valgrind) command -v callgrind_control >/dev/null 2>&1 || missing+=(valgrind) ;;
        *)
            echo "deps.sh: unknown extra '$extra' (test, valgrind)" >&2
            exit 2
            ;;
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
