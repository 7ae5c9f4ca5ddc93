#!/usr/bin/env python3
# bench_dkim.py - `make bench` for DKIM signing: starts a real system in /tmp with a connector to an SMTP sink on
# loopback, submits N 5 KB messages to an outside recipient (logged-in sessions, each carrying many messages) and
# waits until the sink has them all; once with the domain unsigned, once after `interchange domain dkim` (an
# Ed25519 and an RSA-2048 signature per message). Prints the server CPU per message of each run (ix-smtpd + ix-mta,
# from /proc/PID/stat) and the difference. Environment: BENCH_DKIM_N (2000), BENCH_DKIM_SESSIONS (4),
# BENCH_SIZE (5120). Nothing is asserted.
import os
import smtplib
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e"))
import harness as h  # noqa: E402
from bench_smtp import cpu_ticks, in_parallel, pids  # noqa: E402
from smtp_sink import Sink  # noqa: E402

N = int(os.environ.get("BENCH_DKIM_N", "2000"))
SESSIONS = int(os.environ.get("BENCH_DKIM_SESSIONS", "4"))
SIZE = int(os.environ.get("BENCH_SIZE", "5120"))
PW = "bench-pw"


def submit(s, tag, n):
    """n messages from alice to an outside recipient over SESSIONS logged-in connections."""
    line = ("x" * 76 + "\r\n")
    body = line * max(1, SIZE // len(line))

    def worker(k):
        c = smtplib.SMTP("127.0.0.1", s.ports["submission"], timeout=60)
        c.login("alice", PW)
        for i in range(k, n, SESSIONS):
            c.sendmail("alice.smith@example.com", ["peer%d@remote.test" % (i % 100)],
                       "From: Alice Smith <alice.smith@example.com>\r\nTo: peer@remote.test\r\nSubject: %s %d\r\n"
                       "Message-ID: <%s-%d@bench>\r\n\r\n%s" % (tag, i, tag, i, body))
        c.quit()
    in_parallel(worker, SESSIONS)


def run(s, sink, tag, procs, hz):
    """CPU ms per message of each process group while n messages go out; (total, smtpd, mta, seconds)."""
    base = len(sink.messages)
    before = {p: cpu_ticks(p) for p in procs["all"]}
    t0 = time.monotonic()
    submit(s, tag, N)
    while len(sink.messages) - base < N and time.monotonic() - t0 < 300:
        time.sleep(0.05)
    t1 = time.monotonic()
    got = len(sink.messages) - base
    after = {p: cpu_ticks(p) for p in procs["all"]}

    def ms(group):
        return sum(after[p] - before[p] for p in procs[group]) * 1000.0 / hz / max(got, 1)
    return got, ms("all"), ms("smtpd"), ms("mta"), t1 - t0


def main():
    s = h.System()
    sink = Sink()
    sink.start()
    try:
        s.cli("user", "add", "alice", "--given", "Alice", "--surname", "Smith", "--password", PW, check=True)
        mark = s.log_mark("mta")
        s.cli("connector", "add", "out", "--address-space", "remote.test", "--smarthost", "127.0.0.1:%d" % sink.port,
              check=True)
        s.wait_log("mta", "connector changed: cn=out,", mark)
        if not h.wait_for(lambda: h.imap_login_ok(s.ports["imap"], "alice", PW), timeout=15):
            print("bench_dkim: alice cannot log in")
            return 1
        smtpd, mta = pids(s, "ix-smtpd"), pids(s, "ix-mta")
        procs = {"smtpd": smtpd, "mta": mta, "all": smtpd + mta}
        hz = os.sysconf("SC_CLK_TCK")
        print("dkim: %d x %d B messages out through a connector, %d logged-in sessions" % (N, SIZE, SESSIONS))
        off = run(s, sink, "off", procs, hz)
        s.cli("domain", "dkim", "example.com", check=True)
        # the mta's replica sees the selectors within milliseconds; a few messages make sure signing has begun
        if not h.wait_for(lambda: (submit(s, "probe", 1) or True) and b"DKIM-Signature" in sink.messages[-1][2],
                          timeout=10, interval=0.2):
            print("bench_dkim: the messages are not signed")
            return 1
        settled = -1
        while settled != len(sink.messages):  # every probe in before the measured run
            settled = len(sink.messages)
            time.sleep(0.5)
        on = run(s, sink, "on", procs, hz)
        for name, r in (("signing off", off), ("signing on", on)):
            print("  %-12s %8.3f ms/msg server CPU (ix-smtpd %.3f, ix-mta %.3f; %d messages in %.1f s)" %
                  (name + ":", r[1], r[2], r[3], r[0], r[4]))
        print("  signing cost: %8.3f ms/msg (Ed25519 + RSA-2048, relaxed/relaxed, in ix-mta)" % (on[1] - off[1]))
    finally:
        s.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
