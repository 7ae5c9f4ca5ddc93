#!/usr/bin/env python3
# bench_sieve.py - `make bench` for Sieve at delivery: starts a real system in /tmp, sends N 5 KB messages from
# outside to one user over port 25 (several sessions, each carrying many messages; the 250 comes after the durable
# delivery), once with no script and once with an active 20-rule script (header, address, size, body-free tests;
# the last rule files into a folder). Prints ix-smtpd's CPU per message of each run (/proc/PID/stat) and the
# difference. Environment: BENCH_SIEVE_N (2000), BENCH_SIEVE_SESSIONS (4), BENCH_SIZE (5120). Nothing is asserted.
import os
import smtplib
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e"))
import harness as h  # noqa: E402
from bench_smtp import cpu_ticks, in_parallel, pids  # noqa: E402

N = int(os.environ.get("BENCH_SIEVE_N", "2000"))
SESSIONS = int(os.environ.get("BENCH_SIEVE_SESSIONS", "4"))
SIZE = int(os.environ.get("BENCH_SIZE", "5120"))
PW = "bench-pw"


def script():
    """20 rules of the kinds clients write; only the last one matches the benchmark's messages."""
    rules = ['require ["fileinto", "imap4flags", "variables", "envelope", "relational", "subaddress"];']
    for i in range(18):
        kind = i % 6
        if kind == 0:
            rules.append('if header :contains "subject" "project-%d" { fileinto "Projects/%d"; stop; }' % (i, i))
        elif kind == 1:
            rules.append('if address :domain :is "from" "partner%d.example" { fileinto "Partners"; stop; }' % i)
        elif kind == 2:
            rules.append('if header :matches "list-id" "*<list%d.*>*" { fileinto "Lists/${2}"; stop; }' % i)
        elif kind == 3:
            rules.append('if allof (size :over 10M, header :contains "x-priority" "%d") { addflag "big"; }' % i)
        elif kind == 4:
            rules.append('if envelope :detail "to" "tag%d" { fileinto "Tagged"; stop; }' % i)
        else:
            rules.append('if anyof (header :is "x-mailer" "Bulk %d", header :contains "x-spam-flag" "YES") '
                         '{ fileinto "Junk"; stop; }' % i)
    rules.append('if header :value "gt" :comparator "i;ascii-casemap" "subject" "zzz" { discard; stop; }')
    rules.append('if header :contains "subject" "bench" { fileinto "Bench"; }')
    return "\n".join(rules) + "\n"


def send(s, tag):
    line = ("x" * 76 + "\r\n")
    body = line * max(1, SIZE // len(line))

    def worker(k):
        c = smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=60)
        for i in range(k, N, SESSIONS):
            c.sendmail("peer%d@outside.test" % (i % 100), ["alice.smith@example.com"],
                       "From: Peer <peer@outside.test>\r\nTo: Alice <alice.smith@example.com>\r\n"
                       "Subject: bench %s %d\r\nMessage-ID: <%s-%d@bench>\r\n\r\n%s" % (tag, i, tag, i, body))
        c.quit()
    in_parallel(worker, SESSIONS)


def run(s, tag, smtpd, hz):
    before = sum(cpu_ticks(p) for p in smtpd)
    t0 = time.monotonic()
    send(s, tag)
    t1 = time.monotonic()
    after = sum(cpu_ticks(p) for p in smtpd)
    return (after - before) * 1000.0 / hz / N, t1 - t0


def main():
    s = h.System(extra=["--setting", "smtp.inbound_checks=0"])
    try:
        s.cli("user", "add", "alice", "--given", "Alice", "--surname", "Smith", "--password", PW, check=True)
        if not h.wait_for(lambda: h.imap_login_ok(s.ports["imap"], "alice", PW), timeout=15):
            print("bench_sieve: alice cannot log in")
            return 1
        smtpd = pids(s, "ix-smtpd")
        hz = os.sysconf("SC_CLK_TCK")
        print("sieve: %d x %d B messages from outside to one mailbox, %d sessions" % (N, SIZE, SESSIONS))
        none = run(s, "none", smtpd, hz)
        with tempfile.NamedTemporaryFile("w", suffix=".sieve") as f:
            f.write(script())
            f.flush()
            s.cli("user", "sieve", "alice", "--put", "rules", f.name, "--activate", "rules", check=True)
        rules = run(s, "rules", smtpd, hz)
        for name, r in (("no script", none), ("20-rule script", rules)):
            print("  %-16s %8.3f ms/msg ix-smtpd CPU (%d messages in %.1f s)" % (name + ":", r[0], N, r[1]))
        print("  script cost: %8.3f ms/msg (parse and run at each delivery, own store_append)" % (rules[0] - none[0]))
    finally:
        s.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
