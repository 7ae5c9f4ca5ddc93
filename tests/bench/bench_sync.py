#!/usr/bin/env python3
# bench_sync.py - `make bench` for sync sources (docs/sync.md): a second slapd plays the organisation's directory,
# loaded with slapadd with N users (uid, givenName, sn, cn, one mail) and G groups of M members; `sync add` names it
# and the attendant follows it from nothing. Prints the time of the first sync (until the state is `live` with every
# user and list here), the time from a change at the source to its arrival here (median of several), the time of a
# `sync run` with nothing changed, and the peak resident memory (VmHWM) of the attendant (the sync's process), of
# our slapd and of the source's. Environment: BENCH_SYNC_USERS (100000), BENCH_SYNC_GROUPS (10000),
# BENCH_SYNC_MEMBERS (20). Nothing is asserted; tests/e2e/test_sync_scale.py runs the same path scaled down.
import os
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e"))
import harness as h  # noqa: E402
from bench_smtp import pids  # noqa: E402
from ldap_source import Source, bulk_ldif  # noqa: E402

USERS = int(os.environ.get("BENCH_SYNC_USERS", "100000"))
GROUPS = int(os.environ.get("BENCH_SYNC_GROUPS", "10000"))
MEMBERS = int(os.environ.get("BENCH_SYNC_MEMBERS", "20"))


def source(users, groups, members):
    """The organisation's directory, loaded (indexes as a real one has for what sync reads)."""
    return Source(load=bulk_ldif(users, groups, members), database=Source.BULK_DATABASE)


def add_source(s, src):
    p = s.cli("sync", "add", "corp", "--uri", src.uri, "--bind-dn", Source.ADMIN, "--password", Source.PASSWORD,
              "--base", "ou=People," + Source.SUFFIX, "--groups-base", "ou=Groups," + Source.SUFFIX)
    assert p.returncode == 0, (p.stdout, p.stderr)


def show(s):
    return s.cli("sync", "show", "corp").stdout


def counts(text):
    u, l = re.search(r"Users\s+(\d+)", text), re.search(r"Lists\s+(\d+)", text)
    return (int(u.group(1)) if u else 0, int(l.group(1)) if l else 0)


def wait_live(s, users, groups, timeout, progress=None):
    """Waits until `sync show` says live with every user and list here; the last `sync show` text, or None."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        last = show(s)
        if re.search(r"State\s+live", last) and counts(last) == (users, groups):
            return last
        if progress is not None:
            progress(last)
        time.sleep(1)
    return None


def hwm_kb(pid):
    """The peak resident memory of a process (VmHWM), in KiB; 0 when it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cost(pid):
    """What a process has spent so far: user and system CPU seconds and bytes it had written to storage."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/%d/io" % pid) as f:
            io = dict(line.split(": ") for line in f.read().splitlines())
    except OSError:
        return (0.0, 0.0, 0)
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) / tick, int(fields[12]) / tick, int(io["write_bytes"]))


def change_latency(s, src, rounds):
    """Seconds from a change of a surname at the source (ldapmodify returned) until our directory shows it."""
    out = []
    for r in range(rounds):
        uid = "u%d" % (1 + (r * 7919) % USERS)
        sn = "Changed%d" % r
        t0 = time.monotonic()
        src.modify("dn: uid=%s,ou=People,%s\nchangetype: modify\nreplace: sn\nsn: %s\n" % (uid, Source.SUFFIX, sn))
        t1 = time.monotonic()
        if not h.wait_for(lambda: ("sn: " + sn) in s.ldapsearch("(uid=%s)" % uid, "sn", bind_dn=s.admin_dn,
                                                                 password=s.admin_password).stdout,
                          timeout=60, interval=0.01):
            return None
        out.append(time.monotonic() - t1 if t1 - t0 < 1 else time.monotonic() - t0)
    return out


def main():
    print("sync: a source of %d users and %d groups of %d members, followed from nothing" % (USERS, GROUPS, MEMBERS))
    t0 = time.monotonic()
    src = source(USERS, GROUPS, MEMBERS)
    print("  source loaded with slapadd          %.1f s" % (time.monotonic() - t0))
    s = h.System()
    try:
        slapd = pids(s, "slapd")
        before = [cost(p) for p in slapd]
        add_source(s, src)
        t0 = time.monotonic()
        last = [0.0]

        def note(text):
            if time.monotonic() - last[0] >= 30:
                last[0] = time.monotonic()
                line = re.search(r"State\s+(.*)", text)
                print("    after %4.0f s: %s" % (time.monotonic() - t0, line.group(1) if line else "?"), flush=True)
        text = wait_live(s, USERS, GROUPS, 3600, note)
        first = time.monotonic() - t0
        if text is None:
            print("  the first sync did not end within an hour:\n" + show(s))
            return 1
        print("  first sync until live               %.1f s  (%.0f users a second)" % (first, USERS / first))
        spent = [tuple(b - a for a, b in zip(x, cost(p))) for p, x in zip(slapd, before)]
        user, system, written = (sum(v[i] for v in spent) for i in range(3))
        print("  our slapd meanwhile                 %.1f s CPU (%.1f user, %.1f system), %.0f MB written,"
              " %.0f kB an entry" % (user + system, user, system, written / 1e6,
                                     written / 1e3 / (USERS + GROUPS)))
        lat = change_latency(s, src, 9)
        if lat is None:
            print("  a change at the source did not arrive within 60 s")
        else:
            print("  a change at the source visible here %.3f s  (median of %d, the slowest %.3f s)" % (
                statistics.median(lat), len(lat), max(lat)))
        t0 = time.monotonic()
        p = s.cli("sync", "run", "corp", timeout=3600)
        print("  sync run with nothing changed       %.1f s%s" % (time.monotonic() - t0,
                                                                   "" if p.returncode == 0 else "  (failed)"))
        att = pids(s, "interchange")
        ours = pids(s, "slapd")
        theirs = [src.proc.pid]
        print("  peak memory of the attendant        %.0f MiB" % (max(map(hwm_kb, att), default=0) / 1024))
        print("  peak memory of our slapd            %.0f MiB" % (max(map(hwm_kb, ours), default=0) / 1024))
        print("  peak memory of the source's slapd   %.0f MiB" % (max(map(hwm_kb, theirs), default=0) / 1024))
    finally:
        s.destroy()
        src.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
