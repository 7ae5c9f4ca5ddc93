#!/usr/bin/env python3
# bench_milter.py - `make bench` for mail filters (milter): starts a real system in /tmp and Debian's rspamd in its
# milter proxy mode (tests/e2e/rspamd_milter.py), sends N 5 KB messages from outside to one user over port 25
# (several sessions; the 250 comes after the filter's verdict and the durable delivery), once with no filter and
# once with smtp.milters naming rspamd. Prints ix-smtpd's CPU per message of each run (/proc/PID/stat), the
# difference, and rspamd's own CPU per message beside it. Environment: BENCH_MILTER_N (1000), BENCH_SIEVE_SESSIONS
# (4), BENCH_SIZE (5120). Nothing is asserted.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e"))
import harness as h  # noqa: E402
import bench_sieve  # noqa: E402
from bench_smtp import cpu_ticks, pids  # noqa: E402
from rspamd_milter import Rspamd  # noqa: E402

N = int(os.environ.get("BENCH_MILTER_N", "1000"))
PW = "bench-pw"


def rspamd_pids(r):
    """rspamd's main process and its workers (their command lines name the benchmark's configuration)."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            cmd = open("/proc/%s/cmdline" % p, "rb").read()
        except OSError:
            continue
        if r.dir.encode() in cmd or int(p) == r.proc.pid:
            found.append(int(p))
    # the workers are children of the main process: their command lines are rewritten ("rspamd: worker")
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                ppid = int(open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == r.proc.pid and int(p) not in found:
                found.append(int(p))
    return found


def main():
    r = Rspamd()
    r.start()
    s = h.System(extra=["--setting", "smtp.inbound_checks=0"])
    try:
        s.cli("user", "add", "alice", "--given", "Alice", "--surname", "Smith", "--password", PW, check=True)
        if not h.wait_for(lambda: h.imap_login_ok(s.ports["imap"], "alice", PW), timeout=15):
            print("bench_milter: alice cannot log in")
            return 1
        r.wait()
        bench_sieve.N = N
        smtpd = pids(s, "ix-smtpd")
        hz = os.sysconf("SC_CLK_TCK")
        print("milter: %d x %d B messages from outside to one mailbox, %d sessions" %
              (N, bench_sieve.SIZE, bench_sieve.SESSIONS))
        off = bench_sieve.run(s, "off", smtpd, hz)
        s.set_live("smtp.milters", r.endpoint, services=("smtpd",))
        rs = rspamd_pids(r)
        before = sum(cpu_ticks(p) for p in rs)
        on = bench_sieve.run(s, "rspamd", smtpd, hz)
        rspamd_ms = (sum(cpu_ticks(p) for p in rs) - before) * 1000.0 / hz / N
        for name, v in (("no filter", off), ("rspamd (milter)", on)):
            print("  %-18s %8.3f ms/msg ix-smtpd CPU (%d messages in %.1f s)" % (name + ":", v[0], N, v[1]))
        print("  filter cost:   %8.3f ms/msg in ix-smtpd (the milter conversation, headers added)" % (on[0] - off[0]))
        print("  rspamd itself: %8.3f ms/msg CPU (its proxy worker scanning, network modules off)" % rspamd_ms)
    finally:
        s.destroy()
        r.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
