#!/usr/bin/env python3
"""What per-user restrictions (SPEC §11) cost, counted with callgrind on a
server that has auth callbacks (Redis 7.2+; Redis 7.0 has none, so nothing
is enforced or spent there).

Run through `make bench-users`. Figures, each per operation over one
connection from 127.0.0.1 (pipelined in batches of 16, so the count does not
depend on timing), with the 100 groups x 1,000 entries whitelist of
bench_server.py and `whitelist.allow-loopback no`:

- AUTH of a user bound to a group, of a user bound to none, on a server with
  bindings, and AUTH on the same server before any user is bound; each also
  as the module's own auth callback (`on_auth`, inclusive). Most unbound
  names are told apart from the bound ones by a 64-bit sign without hashing
  them; `annie` shares `alice`'s sign (length, first and last byte), so it is
  the unbound user that takes the whole path: its connection, the gate and a
  hash lookup that misses;
- one login lookup (`logins::admits`, the matcher lookup of a bound user's
  login, kept out of line for this; inclusive, per call), the yardstick of
  "at most one lookup more";
- the module's connection handler per connection and the instructions per
  pipelined SET/GET, without bindings and with them (a connection or a
  command of an unbound user must cost nothing more).

The server is the one `WHITELIST_SERVER` names (default: Redis 8.2.3 as
`make servers` installs it). Every server gets a free port and its own
temporary directory and is stopped at the end; only loopback is used.
"""

import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_server as b  # noqa: E402

SERVER = os.environ.get("WHITELIST_SERVER", os.path.join(b.ROOT, "target/servers/redis-8.2.3/redis-server"))
REPEATS = int(os.environ.get("CALLGRIND_REPEATS", "3"))
COUNT = int(os.environ.get("AUTH_CALLS", "20000")) // 16 * 16
CONNECTIONS = int(os.environ.get("CALLGRIND_CONNECTIONS", "2000"))
PASSWORD = "bench-password"
# The matcher lookup of a bound user's login, as the profile names it.
LOOKUP = "whitelist_core::logins::admits"


def inclusive_counts(path):
    """Inclusive instructions per function of a profile, every function
    (callgrind_annotate's default threshold hides small ones: the auth
    callback costs only tens of instructions while no user is bound)."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                         capture_output=True, text=True, timeout=b.DEADLINE).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+\S*?:(\S+)", line)
        if m:
            found[m.group(2)] = found.get(m.group(2), 0) + int(m.group(1).replace(",", ""))
    return found


def wait_ready(proc, port, d):
    t = time.time()
    while True:
        try:
            c = b.Conn(port)
            if c.call("PING") == "PONG":
                c.close()
                return
        except (OSError, ConnectionError):
            pass
        if proc.poll() is not None or time.time() - t > b.DEADLINE:
            raise SystemExit("%s did not start; see %s" % (SERVER, d))
        time.sleep(0.1)


def start(label, out):
    """The server under callgrind with the module, the whitelist, the two
    users and loopback not exempt (so a bound user's login is judged)."""
    port = b.free_port()
    d = os.path.join(b.tmp, "%s-%d" % (label, port))
    os.makedirs(d)
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=" + out, SERVER,
           "--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", "", "--appendonly", "no",
           "--logfile", os.path.join(d, "server.log"), "--protected-mode", "no", "--loadmodule", b.MODULE]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    b.servers.append(proc)
    wait_ready(proc, port, d)
    c = b.Conn(port)
    c.call("WHITELIST.IMPORT", b.DOC)
    for user in ("alice", "bob", "annie"):
        c.call("ACL", "SETUSER", user, "on", ">" + PASSWORD, "~*", "+@all")
    c.call("CONFIG", "SET", "whitelist.allow-loopback", "no")
    c.close()
    return proc, port


def batches(port, commands, count):
    """`count` commands cycling through `commands`, in batches of 16."""
    c = b.Conn(port)
    for i in range(count // 16):
        c.sock.sendall(b"".join(b.resp(*commands[(i * 16 + k) % len(commands)]) for k in range(16)))
        for _ in range(16):
            c._reply()
    c.close()


def counted(proc, work):
    subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], capture_output=True, timeout=b.DEADLINE)
    work()
    subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], capture_output=True, timeout=b.DEADLINE)


def profile(label, bound, work, n):
    """Instructions per operation: the whole count without Redis's unsteady
    work, and the inclusive count of each module function of interest."""
    out = os.path.join(b.tmp, "callgrind.users.%s.out" % label)
    proc, port = start(label, out)
    if bound:
        c = b.Conn(port)
        c.call("WHITELIST.BIND", "group_099", "alice")
        c.close()
    work(port, 200)  # warm up
    counted(proc, lambda: work(port, n))
    b.stop(proc, port)
    inclusive = inclusive_counts(out)

    def per(fragment):
        return sum(v for k, v in inclusive.items() if k.endswith(fragment)) / n

    steady = (b.callgrind_total(out) - sum(inclusive.get(f, 0) for f in b.UNSTEADY)) / n
    lookups = b.callgrind_calls(out, LOOKUP)
    lookup = sum(v for k, v in inclusive.items() if k.endswith(LOOKUP))
    return {"steady": steady, "on_auth": per("hook::on_auth"), "handler": per("hook::on_client_change"),
            "lookup": lookup / lookups if lookups else 0.0}


def auth_of(user):
    return lambda port, n: batches(port, [("AUTH", user, PASSWORD)], n)


def connections(port, n):
    b.connect_ping_close(port, n)


def commands(port, n):
    batches(port, [("SET", "key:%d" % i, "value") for i in range(16)] + [("GET", "key:%d" % i) for i in range(16)], n)


def median_of(label, bound, work, n):
    runs = [profile("%s.%d" % (label, r), bound, work, n) for r in range(REPEATS)]
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main():
    for path in (SERVER, b.MODULE):
        if not os.path.exists(path):
            raise SystemExit("%s is missing: run make servers and make build" % path)
    rows = []
    print("AUTH before any binding...", flush=True)
    before = median_of("auth-none", False, auth_of("bob"), COUNT)
    print("AUTH of an unbound user, with a binding...", flush=True)
    unbound = median_of("auth-unbound", True, auth_of("bob"), COUNT)
    print("AUTH of an unbound user that shares the bound user's sign...", flush=True)
    alike = median_of("auth-alike", True, auth_of("annie"), COUNT)
    print("AUTH of a bound user...", flush=True)
    bound = median_of("auth-bound", True, auth_of("alice"), COUNT)
    rows.append(("AUTH, no user bound", before["steady"], before["on_auth"], ""))
    rows.append(("AUTH of an unbound user (another is bound)", unbound["steady"], unbound["on_auth"], ""))
    rows.append(("AUTH of an unbound user sharing the bound one's sign", alike["steady"], alike["on_auth"], ""))
    rows.append(("AUTH of a bound user", bound["steady"], bound["on_auth"], ""))
    lookup = bound["lookup"]
    rows.append(("bound minus unbound (on_auth)", "", bound["on_auth"] - unbound["on_auth"], ""))
    rows.append(("bound minus unbound sharing the sign (on_auth)", "", bound["on_auth"] - alike["on_auth"],
                 "one lookup: %.0f" % lookup))
    print("Connections and commands without and with bindings...", flush=True)
    for label, work, n in (("connections", connections, CONNECTIONS), ("commands", commands, COUNT)):
        plain = median_of(label + "-plain", False, work, n)
        with_bound = median_of(label + "-bound", True, work, n)
        key = "handler" if label == "connections" else "steady"
        what = "module handler per connection" if label == "connections" else "instructions per SET/GET"
        rows.append(("%s, no user bound" % what, plain["steady"], plain[key] if key == "handler" else "", ""))
        rows.append(("%s, a user bound" % what, with_bound["steady"], with_bound[key] if key == "handler" else "",
                     ""))
    print()
    print("Server: %s" % SERVER)
    print("| figure | instructions per operation | module's part | |")
    print("|---|---|---|---|")
    for name, total, part, note in rows:
        fmt = lambda v: ("%.0f" % v) if isinstance(v, float) else str(v)  # noqa: E731
        print("| %s | %s | %s | %s |" % (name, fmt(total), fmt(part), note))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        b.cleanup()
