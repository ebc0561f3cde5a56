#!/usr/bin/env python3
"""Redis Cluster figures (SPEC §12): a real cluster of 3 primaries and 3
replicas on 127.0.0.1, every node with the release module.

1. How long a change on one primary takes to be held by every node, with a
   nearly empty whitelist and with 100 groups x 1,000 entries loaded.
2. How long a restarted primary holding a stale 100 x 1,000 whitelist takes
   to converge.
3. The module's bus traffic of an idle cluster.
4. With CALLGRIND=1 (or ONLY=callgrind alone): instructions per pipelined
   command on a one-node cluster, with and without the module.

Run through `make bench-cluster` (which builds the release module first).
`WHITELIST_SERVER` picks another server binary. Every node gets free ports,
its own temporary directory and a deadline on every wait; all of them are
killed at the end, also on error. Counts are set by environment variables
(see DEFAULTS).
"""

import json
import os
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_server as bs  # noqa: E402  (its helpers: Conn, free_port, the 100 x 1,000 document)

DEFAULTS = {
    "CHANGES": 20,  # changes timed per whitelist size
    "IDLE_SECONDS": 30,  # the idle traffic window
}
N = {k: int(os.environ.get(k, v)) for k, v in DEFAULTS.items()}
SERVER = os.environ.get("WHITELIST_SERVER", "redis-server")
PRIMARIES, REPLICAS = 3, 3
SLOTS = 16384
NODE_TIMEOUT_MS = 15000
DEADLINE = 60  # seconds any single wait may take
# The digest's payload by construction (core/src/wire.rs: kind, protocol,
# version u64, fingerprint u64).
DIGEST_BYTES = 2 + 8 + 8

nodes = []


class Node:
    def __init__(self, index):
        self.index = index
        self.port, self.cport = bs.free_port(), bs.free_port()
        while self.cport == self.port:
            self.cport = bs.free_port()
        self.dir = os.path.join(bs.tmp, "node-%d-%d" % (index, self.port))
        os.makedirs(self.dir)
        self.proc = None
        self.id = None
        self.conn = None

    def start(self):
        cmd = [SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir, "--save", "",
               "--appendonly", "no", "--logfile", os.path.join(self.dir, "server.log"), "--protected-mode", "no",
               "--loadmodule", bs.MODULE, "--whitelist.max-groups", "200",
               "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
               "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--cluster-port", str(self.cport),
               "--repl-diskless-sync-delay", "0"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.conn = None

    def wait_ping(self):
        """Waits until the node answers PING (not LOADING); returns when."""
        deadline = time.time() + DEADLINE
        while True:
            try:
                c = bs.Conn(self.port)
                try:
                    if c.call("PING") == "PONG":
                        self.conn = c
                        return time.perf_counter()
                except RuntimeError:  # -LOADING
                    pass
                c.close()
            except (OSError, ConnectionError):
                pass
            if self.proc.poll() is not None:
                raise SystemExit("node %d exited; see %s" % (self.index, self.dir))
            if time.time() > deadline:
                raise SystemExit("node %d did not answer PING; see %s" % (self.index, self.dir))
            time.sleep(0.005)

    def call(self, *args):
        return self.conn.call(*args)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.conn:
            self.conn.close()
            self.conn = None


def wait(what, f, deadline=DEADLINE):
    end = time.time() + deadline
    while True:
        v = f()
        if v:
            return v
        if time.time() > end:
            raise SystemExit("timed out after %d s waiting for %s" % (deadline, what))
        time.sleep(0.05)


def cluster_nodes(n):
    """CLUSTER NODES of node n: [(id, flags, primary id, link state)]."""
    out = []
    for line in n.call("CLUSTER", "NODES").splitlines():
        f = line.split(" ")
        if len(f) >= 8:
            out.append((f[0], f[2], f[3], f[7]))
    return out


def info(n, section):
    return bs.info(n.conn, section)


def all_known():
    ids = [n.id for n in nodes]
    for n in nodes:
        listed = {i: (flags, link) for i, flags, _, link in cluster_nodes(n)}
        for i in ids:
            if i not in listed:
                return False
            flags, link = listed[i]
            if "handshake" in flags or "noaddr" in flags or "fail" in flags or link != "connected":
                return False
    return True


def healthy():
    if not all_known():
        return False
    for n in nodes:
        if "cluster_state:ok" not in n.call("CLUSTER", "INFO"):
            return False
        repl = n.call("INFO", "replication")
        if "role:slave" in repl and "master_link_status:up" not in repl:
            return False
    return True


def start_cluster():
    for i in range(PRIMARIES + REPLICAS):
        nodes.append(Node(i))
    for n in nodes:
        n.start()
    for n in nodes:
        n.wait_ping()
        n.id = n.call("CLUSTER", "MYID")
    for i, n in enumerate(nodes):
        n.call("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
        if i < PRIMARIES:
            n.call("CLUSTER", "ADDSLOTSRANGE", i * SLOTS // PRIMARIES, (i + 1) * SLOTS // PRIMARIES - 1)
    for n in nodes[1:]:
        n.call("CLUSTER", "MEET", "127.0.0.1", nodes[0].port, nodes[0].cport)
    wait("every node to know every other", all_known)
    for r in range(REPLICAS):
        nodes[PRIMARIES + r].call("CLUSTER", "REPLICATE", nodes[r % PRIMARIES].id)
    wait("cluster_state:ok and every replica linked", healthy)


def my_digest(n):
    """(version, fingerprint) from node n's own row of WHITELIST.CLUSTER."""
    me = n.call("WHITELIST.CLUSTER")[0]
    row = dict(zip(me[::2], me[1::2]))
    return int(row["version"]), row["fingerprint"]


def wait_in_sync(what):
    """Waits until every node has the same digest and shows every node in
    sync; returns the digest."""
    def check():
        digests = {my_digest(n) for n in nodes}
        if len(digests) != 1:
            return None
        if any(info(n, "whitelist").get("whitelist_cluster_nodes_in_sync") != str(len(nodes)) for n in nodes):
            return None
        return digests.pop()
    return wait(what, check)


def propagation(prefix, label):
    """CHANGES changes, on primaries 0, 1, 2 in turn; after each, every node
    is polled until it holds the new group. Returns per change the time to
    the last primary and to the last node, in ms."""
    to_primaries, to_all, sent = [], [], []
    for i in range(N["CHANGES"]):
        origin = nodes[i % PRIMARIES]
        name, entry = "%s%d" % (prefix, i), "10.%d.%d.1" % (1 if prefix == "big" else 0, i)
        before = int(info(origin, "whitelist")["whitelist_cluster_messages_sent"])
        t0 = time.perf_counter()
        origin.call("WHITELIST.SET", name, entry)
        held = {}
        end = t0 + DEADLINE
        while len(held) < len(nodes):
            for n in nodes:
                if n.index not in held and n.call("WHITELIST.GET", name) == [entry]:
                    held[n.index] = time.perf_counter() - t0
            if time.perf_counter() > end:
                raise SystemExit("%s: change %d not everywhere after %d s: %s" % (label, i, DEADLINE, held))
        to_primaries.append(1000 * max(held[j] for j in range(PRIMARIES)))
        to_all.append(1000 * max(held.values()))
        # Settled before the next change: every node at the same digest.
        wait_in_sync("the cluster to settle after change %d" % i)
        sent.append(int(info(origin, "whitelist")["whitelist_cluster_messages_sent"]) - before)
    print("  %s: to the last node (ms) %s" % (label, [round(x, 1) for x in to_all]), flush=True)
    print("  %s: to the last primary (ms) %s" % (label, [round(x, 1) for x in to_primaries]), flush=True)
    print("  %s: module messages the changing primary sent per change %s" % (label, sent), flush=True)
    return to_primaries, to_all, sent


def other_doc():
    """The 100 x 1,000 document with every group changed: one entry of each
    replaced by an address of 198.18.0.0/15."""
    doc = json.loads(bs.DOC)
    for g, group in enumerate(doc["groups"]):
        group["entries"][1] = "198.18.%d.1" % g
    return json.dumps(doc)


def idle_traffic(results):
    wait_in_sync("every node in sync before the idle window")
    def counters():
        out = []
        for n in nodes:
            w = int(info(n, "whitelist")["whitelist_cluster_messages_sent"])
            ci = dict(l.split(":", 1) for l in n.call("CLUSTER", "INFO").splitlines() if ":" in l)
            out.append((w, int(ci.get("cluster_stats_messages_module_sent", "0"))))
        return out
    before = counters()
    t0 = time.time()
    time.sleep(N["IDLE_SECONDS"])
    after = counters()
    seconds = time.time() - t0
    module = [a[0] - b[0] for a, b in zip(after, before)]
    redis = [a[1] - b[1] for a, b in zip(after, before)]
    print("  idle %.1f s: whitelist_cluster_messages_sent per node %s; cluster_stats_messages_module_sent %s"
          % (seconds, module, redis), flush=True)
    per5 = max(module) * 5 / seconds
    results.append(("idle: module messages sent per node in %.0f s (per node)" % seconds,
                    " ".join(str(x) for x in module), "", ""))
    # Periods of 4.5 to 5.5 s: a window holds at most one more digest than
    # fits periods of 4.5 s.
    most = int(seconds / 4.5) + 1
    results.append(("idle: the most any node sent, per 5 s", "%.2f" % per5,
                    "1 (at most %d in %.0f s)" % (most, seconds), "met" if max(module) <= most else "MISSED"))
    results.append(("idle: Redis's cluster_stats_messages_module_sent in the same window",
                    " ".join(str(x) for x in redis), "", ""))
    results.append(("digest payload (bytes, core/src/wire.rs)", str(DIGEST_BYTES), "<= 256", "met"))


def propagation_rows(results, label, to_primaries, to_all, sent):
    med, worst = statistics.median(to_all), max(to_all)
    results.append(("%s: change to every node, median of %d (ms)" % (label, len(to_all)), "%.1f" % med, "<= 100",
                    "met" if med <= 100 else "MISSED"))
    results.append(("%s: change to every node, worst (ms)" % label, "%.1f" % worst, "<= 1000",
                    "met" if worst <= 1000 else "MISSED"))
    results.append(("%s: change to every primary, median / worst (ms)" % label,
                    "%.1f / %.1f" % (statistics.median(to_primaries), max(to_primaries)), "", ""))
    results.append(("%s: module messages the changing primary sent per change, median" % label,
                    "%d" % statistics.median(sent), "", ""))


def restart_convergence(results):
    p0, p2, r2 = nodes[0], nodes[2], nodes[PRIMARIES + 2]
    p0.call("WHITELIST.IMPORT", bs.DOC)
    stale = wait_in_sync("every node to hold the first 100 x 1,000 document")
    assert info(p2, "whitelist")["whitelist_entries"] == "100000", info(p2, "whitelist")
    p2.call("SAVE")
    p2.kill()
    down = time.time()
    p0.call("WHITELIST.IMPORT", other_doc())
    fresh = my_digest(p0)
    up = [n for n in nodes if n not in (p2, r2)]
    wait("the other primary and its replicas to hold the second document",
         lambda: all(my_digest(n) == fresh for n in up))
    p2.start()
    started = time.perf_counter()
    answered = p2.wait_ping()
    held = wait("the restarted primary to load its stale whitelist", lambda: my_digest(p2))
    if held not in (stale, fresh):
        raise SystemExit("the restarted primary holds %s, neither %s nor %s" % (held, stale, fresh))
    # Polled without a pause: the figure is the first poll that sees it.
    end = time.time() + DEADLINE
    while my_digest(p2) != fresh:
        if time.time() > end:
            raise SystemExit("the restarted primary did not converge within %d s" % DEADLINE)
    converged = time.perf_counter()
    wait("its replica to follow", lambda: my_digest(r2) == fresh)
    replica = time.perf_counter()
    absent = time.time() - down
    flags = [f for i, f, _, _ in cluster_nodes(p0) if i == p2.id][0]
    if "master" not in flags:
        raise SystemExit("node 2 was failed over (%s): the figure does not hold" % flags)
    assert info(p2, "whitelist")["whitelist_entries"] == "100000"
    print("  restart: started %.3f s before PING answered; converged %.3f s after; its replica %.3f s after; "
          "down for %.1f s (node timeout %d s)" % (answered - started, converged - answered, replica - answered,
                                                 absent, NODE_TIMEOUT_MS // 1000), flush=True)
    conv = converged - answered
    results.append(("restarted primary with a stale 100 x 1,000 whitelist: PING to converged (s)", "%.3f" % conv,
                    "<= 10", "met" if conv <= 10 else "MISSED"))
    results.append(("  its replica, PING of the primary to converged (s)", "%.3f" % (replica - answered), "", ""))
    results.append(("  process start to PING answered (RDB load) (s)", "%.3f" % (answered - started), "", ""))


def callgrind_one_node(module, commands):
    """Instructions per pipelined SET/GET (bs.pipelined: batches of 16 on
    one connection) on a one-node cluster holding every slot, with or
    without the module, under callgrind; Redis's timers (serverCron,
    clusterCron) and the command lookup left out as bench_server.py does.
    Also the module's own code in the window (exclusive counts of its
    functions), per command."""
    label = "module" if module else "vanilla"
    port, cport = bs.free_port(), bs.free_port()
    d = os.path.join(bs.tmp, "callgrind-%s-%d" % (label, port))
    os.makedirs(d)
    out = os.path.join(d, "callgrind.out")
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=" + out,
           SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", "", "--appendonly", "no",
           "--logfile", os.path.join(d, "server.log"), "--protected-mode", "no", "--cluster-enabled", "yes",
           "--cluster-config-file", "nodes.conf", "--cluster-port", str(cport)]
    if module:
        cmd += ["--loadmodule", bs.MODULE]
    node = Node.__new__(Node)
    node.index, node.port, node.dir, node.conn = label, port, d, None
    node.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nodes.append(node)
    node.wait_ping()
    node.call("CLUSTER", "ADDSLOTSRANGE", 0, SLOTS - 1)
    wait("the one-node cluster to be ok", lambda: "cluster_state:ok" in node.call("CLUSTER", "INFO"))
    if module:
        node.call("WHITELIST.SET", "office", "10.0.0.0/8")
    n = commands // 16 * 16
    bs.pipelined(port, 10000)
    subprocess.run(["callgrind_control", "-i", "on", str(node.proc.pid)], capture_output=True, timeout=DEADLINE)
    bs.pipelined(port, n)
    subprocess.run(["callgrind_control", "-i", "off", str(node.proc.pid)], capture_output=True, timeout=DEADLINE)
    try:
        node.conn.sock.sendall(bs.resp("SHUTDOWN", "NOSAVE"))
    except OSError:
        pass
    node.proc.wait(DEADLINE * 2)
    node.kill()
    nodes.remove(node)
    exclusive, inclusive = bs.callgrind_functions(out)
    unsteady = sum(inclusive.get(f, 0) for f in bs.UNSTEADY + ("clusterCron",))
    own = sum(v for f, v in exclusive.items() if "whitelist" in f)
    return (bs.callgrind_total(out) - unsteady) / (2 * n), own / (2 * n)


def callgrind_rows(results):
    commands = int(os.environ.get("CALLGRIND_COMMANDS", "20000"))
    vanilla, _ = callgrind_one_node(None, commands)
    module, own = callgrind_one_node(bs.MODULE, commands)
    print("  one-node cluster, per pipelined SET/GET: vanilla %.0f, module %.0f (the module's own code %.2f)"
          % (vanilla, module, own), flush=True)
    results.append(("one-node cluster: instructions per pipelined SET/GET, vanilla / module", "%.0f / %.0f = %.3f"
                    % (vanilla, module, vanilla / module), ">= 0.99", "met" if vanilla / module >= 0.99 else "MISSED"))
    results.append(("  the module's own code in that window, per command", "%.2f" % own, "", ""))


def main():
    if not os.path.exists(bs.MODULE):
        raise SystemExit("%s is missing: run make bench-cluster" % bs.MODULE)
    if os.environ.get("ONLY") == "callgrind":
        results = []
        callgrind_rows(results)
        for row in results:
            print("| " + " | ".join(str(c) for c in row) + " |")
        return 0 if all(row[3] != "MISSED" for row in results) else 1
    version = subprocess.run([SERVER, "--version"], capture_output=True, text=True, timeout=DEADLINE).stdout.strip()
    print("Starting 3 primaries + 3 replicas (%s)..." % version, flush=True)
    t = time.time()
    start_cluster()
    print("  cluster_state:ok after %.1f s" % (time.time() - t), flush=True)
    results = []

    print("Idle traffic over %d s..." % N["IDLE_SECONDS"], flush=True)
    idle_traffic(results)

    print("Change to every node, nearly empty whitelist...", flush=True)
    propagation_rows(results, "small whitelist", *propagation("g", "small whitelist"))

    print("Change to every node, 100 x 1,000 whitelist loaded...", flush=True)
    offset = int(info(nodes[0], "replication")["master_repl_offset"])
    nodes[0].call("WHITELIST.IMPORT", bs.DOC)
    state = int(info(nodes[0], "replication")["master_repl_offset"]) - offset
    wait_in_sync("every node to hold the 100 x 1,000 document")
    results.append(("the IMPORT's WHITELIST.MERGE to the replicas (the whole state) (bytes)", str(state), "", ""))
    for n in nodes:
        n.call("CONFIG", "RESETSTAT")
    propagation_rows(results, "100 x 1,000 whitelist", *propagation("big", "100 x 1,000 whitelist"))
    # Nodes that ran no such call (fewer CHANGES than primaries) are left out.
    stats = lambda group, command: [float(st["usec_per_call"]) for st in
                                    (bs.commandstats(n.conn, command) for n in group) if st]
    merge = stats(nodes[PRIMARIES:], "whitelist.merge")
    change = stats(nodes[:PRIMARIES], "whitelist.set")
    print("  100 x 1,000 whitelist: server time per call (us): WHITELIST.SET on the primaries %s, "
          "WHITELIST.MERGE on the replicas %s" % (change, merge), flush=True)
    results.append(("100 x 1,000 whitelist: server time of the WHITELIST.SET, mean per primary (ms)",
                    " ".join("%.1f" % (x / 1000) for x in change), "", ""))
    results.append(("100 x 1,000 whitelist: server time of a replica's WHITELIST.MERGE, mean per replica (ms)",
                    " ".join("%.1f" % (x / 1000) for x in merge), "", ""))

    print("Restarted primary with a stale 100 x 1,000 whitelist...", flush=True)
    restart_convergence(results)

    conflicts = [int(info(n, "whitelist")["whitelist_cluster_conflicts"]) for n in nodes]
    results.append(("conflicts counted (every change was made after the last had settled)",
                    " ".join(str(c) for c in conflicts), "0", "met" if not any(conflicts) else "MISSED"))

    if os.environ.get("CALLGRIND") == "1":
        for n in list(nodes):
            n.kill()
        nodes.clear()
        print("Instructions per pipelined command on a one-node cluster (callgrind)...", flush=True)
        callgrind_rows(results)

    header = ("figure", "measured", "target", "")
    widths = [max(len(str(row[i])) for row in results + [header]) for i in range(len(header))]
    print()
    for i, row in enumerate([header] + results):
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return 0 if all(row[3] != "MISSED" for row in results) else 1


def cleanup(*_):
    for n in nodes:
        try:
            n.kill()
        except OSError:
            pass
    bs.cleanup()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: (cleanup(), sys.exit(1)))
    try:
        sys.exit(main())
    finally:
        cleanup()
