#!/usr/bin/env python3
# bench_authres.py - `make bench` for the checks on the way in: in a network namespace of its own (so the client is
# not on loopback, which SPF would pass unasked), Debian's nsd serves a sending domain's SPF record and DKIM keys;
# N messages of 5 KB signed by that domain (Ed25519 and RSA, by dkimpy, once) come in over port 25 from outside,
# several per connection, into one mailbox, each passed on by a mailing list (list.test) that sealed it with an ARC set
# (dkimpy's arc_sign, when python3-authres is installed) and is a trusted sealer: first with smtp.inbound_checks 0,
# then 1 (SPF, two DKIM signatures, the ARC chain, DMARC). Prints the server CPU per message of each run (ix-smtpd,
# from /proc/PID/stat) and the difference. Environment: BENCH_AUTHRES_N (2000),
# BENCH_AUTHRES_SESSIONS (4), BENCH_SIZE (5120). Nothing is asserted.
import os
import smtplib
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e"))
import harness as h  # noqa: E402
from bench_smtp import cpu_ticks, delivered, in_parallel, pids  # noqa: E402
from dns_server import Nsd  # noqa: E402
from mail_auth import Signer, missing, own_network  # noqa: E402

dkim = h.debian_module("dkim")
authres = h.debian_module("authres")

N = int(os.environ.get("BENCH_AUTHRES_N", "2000"))
SESSIONS = int(os.environ.get("BENCH_AUTHRES_SESSIONS", "4"))
SIZE = int(os.environ.get("BENCH_SIZE", "5120"))
SERVER_IP, OUTSIDE = "192.0.2.7", "198.51.100.7"
PW = "bench-pw"


def send_all(s, data):
    def worker(k):
        c = smtplib.SMTP(SERVER_IP, s.ports["smtp"], timeout=60, source_address=(OUTSIDE, 0))
        c.ehlo("mx.sender.test")
        for _ in range(k, N, SESSIONS):
            c.sendmail("news@sender.test", ["alice.smith@example.com"], data)
        c.quit()
    in_parallel(worker, SESSIONS)


def run(s, data, smtpd, hz):
    base = delivered(s)
    before = {p: cpu_ticks(p) for p in smtpd}
    t0 = time.monotonic()
    send_all(s, data)
    while delivered(s) - base < N and time.monotonic() - t0 < 300:
        time.sleep(0.05)
    got = delivered(s) - base
    ms = sum(cpu_ticks(p) - before[p] for p in smtpd) * 1000.0 / hz / max(got, 1)
    return got, ms, time.monotonic() - t0


def main():
    why = missing()
    if why is None:
        try:
            own_network(SERVER_IP, OUTSIDE)
        except h.Skip as e:
            why = str(e)
    if why is not None:
        print("authres: not run (%s)" % why)
        return 0
    signer = Signer("sender.test")
    lst = Signer("list.test")
    ns = Nsd({"sender.test": 'sender.test. IN TXT "v=spf1 ip4:%s -all"\n' % OUTSIDE + signer.records,
              "list.test": lst.records})
    s = h.System(extra=["--listen", "0.0.0.0"])
    try:
        ns.resolve_for(s)
        s.cli("user", "add", "alice", "--given", "Alice", "--surname", "Smith", "--password", PW, check=True)
        if not h.wait_for(lambda: h.imap_login_ok(s.ports["imap"], "alice", PW), timeout=15):
            print("bench_authres: alice cannot log in")
            return 1
        line = "x" * 76 + "\r\n"
        msg = ("From: News <news@sender.test>\r\nTo: alice.smith@example.com\r\nSubject: news\r\n"
               "Message-ID: <news@sender.test>\r\n\r\n" + line * max(1, SIZE // len(line))).encode()
        data = signer.sign(msg)
        arc = "no ARC set: python3-authres is not installed"
        if authres is not None:
            data = b"Authentication-Results: list.test; dkim=pass header.d=sender.test\r\n" + data
            data = b"".join(dkim.arc_sign(data, b"rsa1", b"list.test", lst.keys["rsa1"][0], b"list.test")) + data
            s.cli("server", "set", "arc.trusted_sealers", "list.test", check=True)
            arc = "sealed by a trusted list (ARC, RSA-2048)"
        smtpd = pids(s, "ix-smtpd")
        hz = os.sysconf("SC_CLK_TCK")
        print("authres: %d x %d B messages in from outside over %d sessions, signed (Ed25519 + RSA-2048), %s, SPF "
              "and DKIM records served by nsd" % (N, SIZE, SESSIONS, arc))
        s.set_live("smtp.inbound_checks", 0, services=("smtpd",))
        off = run(s, data, smtpd, hz)
        s.set_live("smtp.inbound_checks", 1, services=("smtpd",))
        on = run(s, data, smtpd, hz)
        for name, r in (("checks off", off), ("checks on", on)):
            print("  %-11s %8.3f ms/msg ix-smtpd CPU (%d messages in %.1f s)" % (name + ":", r[1], r[0], r[2]))
        print("  checks cost: %8.3f ms/msg (SPF, two DKIM verifications, the ARC chain, DMARC, Authentication-Results)"
              % (on[1] - off[1]))
    finally:
        s.destroy()
        ns.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
