#!/usr/bin/env python3
"""bench_segments.py - the time of a transaction written in several TCP segments next to the same transaction
written in one, against a real started system (make bench): imaplib APPEND (command, literal and CRLF in three
writes) beside a LITERAL+ APPEND in one write, a raw client that cuts the command and the literal, smtplib with the
end of DATA in its own write (as PHP's Net_SMTP) beside smtplib, and the same over submission with STARTTLS.
Medians in milliseconds; the several-segment client should be within a small factor of the one-segment one
(a delayed ACK meeting Nagle's algorithm costs about 40 ms). Nothing is asserted.

Environment: IX_BUILD (build folder), BENCH_ROUNDS (transactions per client, default 100)."""
import os
import smtplib
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e"))
from harness import System  # noqa: E402
from split_clients import MARY, RawIMAP, SplitEndSMTP, add_mary, imaplib_session, message, tls_context  # noqa: E402


def medians_ms(rounds, several, one):
    """Medians of several() and one(), called in turn so that both see the same load on the machine."""
    several(), one()  # warm up
    ts, to = [], []
    for _ in range(rounds):
        for fn, times in ((several, ts), (one, to)):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return statistics.median(ts) * 1000, statistics.median(to) * 1000


def imaplib_client(s):
    m = imaplib_session(s.ports["imap"])
    msg = message("bench-imaplib")

    def append():
        typ, _ = m.append("INBOX", None, None, msg)
        if typ != "OK":
            raise RuntimeError("APPEND: %s" % typ)
    return append


def raw_client(s, split):
    r = RawIMAP(s.ports["imap"])
    msg = message("bench-raw")

    def append():
        last = r.append_split(msg) if split else r.append_one(msg)
        if b" OK " not in last:
            raise RuntimeError("APPEND: %r" % last)
    return append


def smtp_client(s, cls, port="smtp"):
    c = cls("127.0.0.1", s.ports[port])
    if port == "submission":
        c.starttls(context=tls_context())
        c.login(MARY[0], MARY[1])
    sender = MARY[2] if port == "submission" else "bench@example.org"
    msg = message("bench-smtp")

    def sendmail():
        refused = c.sendmail(sender, [MARY[2]], msg)
        if refused:
            raise RuntimeError("refused: %r" % refused)
    return sendmail


def main():
    rounds = int(os.environ.get("BENCH_ROUNDS", "100"))
    s = System()
    try:
        add_mary(s)
        pairs = [
            ("IMAP APPEND, imaplib (command, literal, CRLF)", imaplib_client(s), raw_client(s, False)),
            ("IMAP APPEND, raw client (command and literal cut)", raw_client(s, True), raw_client(s, False)),
            ("SMTP sendmail, end of DATA in its own write", smtp_client(s, SplitEndSMTP), smtp_client(s, smtplib.SMTP)),
            ("submission STARTTLS, end of DATA in its own write", smtp_client(s, SplitEndSMTP, "submission"),
             smtp_client(s, smtplib.SMTP, "submission")),
        ]
        print("segments: median ms of %d transactions written in several segments; the same in one segment beside"
              % rounds)
        for name, several, one in pairs:
            ms, mo = medians_ms(rounds, several, one)
            print("  %-52s %8.3f ms  one segment %.3f ms  x%.1f" % (name, ms, mo, ms / mo), flush=True)
    finally:
        s.destroy()


if __name__ == "__main__":
    main()
