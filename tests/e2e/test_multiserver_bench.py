#!/usr/bin/env python3
"""test_multiserver_bench.py - make bench for two servers of one organisation on this machine: the time for a
directory change made on A to be readable on B (median of BENCH_CHANGES, default 20), and the cross-server
delivery rate (BENCH_MESSAGES, default 200, sent to A's SMTP port for a mailbox homed on B, until all are in B's
store). Figures are printed, nothing is asserted.

The change is written by one long-lived ldapmodify reading LDIF from a pipe, and seen by one long-lived
ldapsearch in refreshAndPersist mode on B, so no process start is inside the measured time."""
import os
import select
import smtplib
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ENV, System, _systems, entries, run, wait_for  # noqa: E402
from test_multiserver import Joined, add_user, store_subjects, user_attrs, PROBE  # noqa: E402

CHANGES = int(os.environ.get("BENCH_CHANGES", "20"))
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "200"))


def replication_latency(a, b, login):
    dn = a.user_dn(login)
    writer = subprocess.Popen(["ldapmodify", "-x", "-H", a.ldap_uri, "-D", a.admin_dn, "-w", a.admin_password],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              text=True, env=ENV)
    reader = subprocess.Popen(["stdbuf", "-oL", "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", b.ldap_uri,
                               "-D", b.admin_dn, "-w", b.admin_password, "-b", dn, "-s", "base",
                               "-E", "!sync=rp", "(objectClass=*)", "description"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV)
    samples = []
    pending = b""
    try:
        time.sleep(0.5)  # the refresh phase: the current entry once
        os.set_blocking(reader.stdout.fileno(), False)
        for i in range(CHANGES):
            value = "bench %d %d" % (os.getpid(), i)
            want = ("description: %s" % value).encode()
            t0 = time.monotonic()
            writer.stdin.write("dn: %s\nchangetype: modify\nreplace: description\ndescription: %s\n\n" % (dn, value))
            writer.stdin.flush()
            deadline = t0 + 10
            while want not in pending and time.monotonic() < deadline:
                select.select([reader.stdout], [], [], 0.1)
                chunk = reader.stdout.read()
                if chunk:
                    pending += chunk
            if want not in pending:
                print("change %d did not arrive within 10 s" % i)
                continue
            samples.append(time.monotonic() - t0)
            pending = pending[pending.index(want) + len(want):]
            time.sleep(0.05)
    finally:
        writer.stdin.close()
        writer.wait(timeout=10)
        reader.kill()
        reader.wait()
    return sorted(samples)


def delivery_rate(a, b, login):
    e = user_attrs(a, login, "mail", "ixMailboxGuid")
    addr, guid = e["mail"][0], e["ixmailboxguid"][0]
    body = "x" * 1000
    t0 = time.monotonic()
    c = smtplib.SMTP("127.0.0.1", a.ports["smtp"], timeout=30)
    for i in range(MESSAGES):
        c.sendmail("bench@outside.example", [addr], "From: bench@outside.example\r\nTo: %s\r\nSubject: bench-%d\r\n"
                   "Message-ID: <bench-%d@test>\r\n\r\n%s\r\n" % (addr, i, i, body))
    c.quit()
    accepted = time.monotonic() - t0

    def count():
        return sum(1 for s in store_subjects(b, guid) if s.startswith("bench-"))
    wait_for(lambda: count() >= MESSAGES, timeout=120, interval=0.2)
    total = time.monotonic() - t0
    return count(), accepted, total


def main():
    try:
        a = System(domain="bench.example", admin_password="bench-admin-pw")
        t0 = time.monotonic()
        b = Joined(a, "127.0.0.1")
        print("join and start of a second server (init --join until the contents arrived, then start): %.2f s" % (time.monotonic() - t0))
        add_user(a, "lat", "Lat", "Ency")
        wait_for(lambda: user_attrs(b, "lat", "uid"), timeout=10)
        s = replication_latency(a, b, "lat")
        if s:
            print("directory change on A readable on B: median %.1f ms, p90 %.1f ms, max %.1f ms (%d changes)"
                  % (s[len(s) // 2] * 1000, s[int(len(s) * 0.9)] * 1000, s[-1] * 1000, len(s)))
        if os.path.exists(PROBE) and os.path.exists(os.path.join(os.path.dirname(harness.INTERCHANGE), "ix-mta")):
            add_user(b, "sink", "Sink", "Box")
            wait_for(lambda: (lambda x: x if "mail" in x and "ixmailboxguid" in x else None)(
                user_attrs(a, "sink", "mail", "ixMailboxGuid")), timeout=10)
            n, accepted, total = delivery_rate(a, b, "sink")
            print("cross-server delivery A -> B: %d of %d messages (1 KB, one SMTP session) accepted by A in %.2f s, "
                  "all in B's store after %.2f s: %.0f messages/s end to end" % (n, MESSAGES, accepted, total,
                                                                               n / total if total > 0 else 0))
    finally:
        for s in _systems:
            s.destroy()


if __name__ == "__main__":
    main()
