#!/usr/bin/env python3
"""bench_imap_stress.py - make bench: the IMAP stress driver (imap_stress.py: 20 clients over 4 users' INBOX and
a second folder, a client's whole mix) against a started Interchange, then, in the same run and with the same
driver, against the peer stack (Dovecot 2.3 with LDAP authentication) when its script sits beside the checkout.
Prints for each: commands/s, per command class average and p99 latency, server CPU per command (from
/proc/PID/stat of the server's processes and their reaped children; with and without the directory server) and
the inconsistencies the driver found; then the two side by side. Nothing is asserted.

Environment: IX_BUILD (build folder), BENCH_SECS (seconds per server, default 20), BENCH_CLIENTS (default 20)."""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import imap_stress  # noqa: E402
from harness import System, imap_login_ok, wait_for  # noqa: E402

PEER = os.path.join(os.path.dirname(ROOT), "shared", "tools", "peer-stack", "peer-stack.sh")
PEER_DIR = os.environ.get("PEER", "/tmp/peer")
PEER_PORT = 12143
USERS = 4
PASSWORD = "pass-stress1"


def tree_cpu_secs(roots):
    """CPU seconds of the processes roots, their descendants and the children they reaped (utime, stime, cutime,
    cstime of each)."""
    parent, cpu = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(d)] = int(fields[1])
        cpu[int(d)] = sum(int(x) for x in fields[11:15])
    total = 0
    for pid in cpu:
        p = pid
        while p > 1 and p not in roots:
            p = parent.get(p, 0)
        if p in roots:
            total += cpu[pid]
    return total / os.sysconf("SC_CLK_TCK")


def measure(label, port, password, server_pids, dir_pids, secs, clients):
    s0, d0 = tree_cpu_secs(server_pids), tree_cpu_secs(dir_pids)
    r = imap_stress.run("127.0.0.1", port, USERS, password, clients=clients, secs=secs)
    r.server_cpu = tree_cpu_secs(server_pids) - s0
    r.dir_cpu = tree_cpu_secs(dir_pids) - d0
    imap_stress.print_report(r, label=label)
    n = max(r.total, 1)
    print("%s_cpu_ms_per_command server=%.3f with_directory=%.3f" % (
        label, r.server_cpu * 1000 / n, (r.server_cpu + r.dir_cpu) * 1000 / n))
    return r


def ours(secs, clients):
    s = System()
    try:
        for u in range(1, USERS + 1):
            s.cli("user", "add", "user%04d" % u, "--given", "U%d" % u, "--surname", "Stress", "--password", PASSWORD,
                  check=True)
        if not wait_for(lambda: imap_login_ok(s.ports["imap"], "user%04d" % USERS, PASSWORD), 20.0, 0.5):
            raise RuntimeError("users never became ready")
        st = json.loads(s.cli("status", "--json", check=True).stdout)
        pids = {x["name"]: x["pid"] for x in st["services"]}
        return measure("interchange", s.ports["imap"], PASSWORD, {pids["imapd"]}, {pids["slapd"]}, secs, clients)
    finally:
        s.destroy()


def read_pid(path):
    with open(path) as f:
        return int(f.read().strip())


def peer(secs, clients):
    if not os.path.exists(PEER):
        print("peer: %s is absent: nothing compared" % PEER)
        return None
    p = subprocess.run([PEER, "start"], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        print("peer: '%s start' failed (run '%s install' first?): %s" % (PEER, PEER, p.stderr.strip()[-300:]))
        return None
    try:
        dovecot = read_pid(os.path.join(PEER_DIR, "dovecot", "run", "master.pid"))
        slapd = read_pid(os.path.join(PEER_DIR, "ldap", "slapd.pid"))
        return measure("dovecot", PEER_PORT, "pass", {dovecot}, {slapd}, secs, clients)
    finally:
        subprocess.run([PEER, "stop"], capture_output=True, timeout=120)


def side_by_side(a, b):
    print("side by side, same driver and workload (%d clients, %d users): interchange | dovecot" % (a.clients, USERS))
    print("  %-20s %10.1f | %10.1f" % ("commands/s", a.total / a.elapsed, b.total / b.elapsed))
    for c in imap_stress.CLASSES:
        if a.counts[c] and b.counts[c]:
            print("  %-20s %10.2f | %10.2f" % ("%s avg ms" % c, imap_stress.avg(a.lat[c]), imap_stress.avg(b.lat[c])))
    na, nb = max(a.total, 1), max(b.total, 1)
    print("  %-20s %10.3f | %10.3f" % ("server CPU ms/cmd", a.server_cpu * 1000 / na, b.server_cpu * 1000 / nb))
    print("  %-20s %10.3f | %10.3f" % ("with directory", (a.server_cpu + a.dir_cpu) * 1000 / na,
                                        (b.server_cpu + b.dir_cpu) * 1000 / nb))
    print("  %-20s %10d | %10d" % ("inconsistencies", a.n_issues, b.n_issues))


def main():
    secs = float(os.environ.get("BENCH_SECS", "20"))
    clients = int(os.environ.get("BENCH_CLIENTS", "20"))
    a = ours(secs, clients)
    b = peer(secs, clients)
    if b is not None:
        side_by_side(a, b)


if __name__ == "__main__":
    main()
