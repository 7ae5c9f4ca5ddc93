#!/usr/bin/env python3
# test_milter.py - mail filters over the milter protocol (issue 18): Debian's rspamd in its milter proxy mode
# rejects the GTUBE test message at the end of DATA with its own reply and adds its headers to a clean message (read
# over IMAP); an unreachable filter gives 451 under smtp.milter_default tempfail (from the greeting on) and is
# skipped under accept; a small filter written here, speaking the protocol on a raw socket, drives the verdicts
# rspamd does not give (change, add, insert and delete a header, replace the body, quarantine into Junk, discard, add
# and delete a recipient, reject with its own reply, tempfail, a filter that stops answering) and its verdicts at
# each SMTP stage, with swaks as the client: one recipient refused at RCPT while the other gets the message, the
# sender refused at MAIL, the client at HELO; submission has its own list; every verdict is in `interchange track`.
import imaplib
import os
import smtplib
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from rspamd_milter import Rspamd  # noqa: E402

S = None
RSPAMD = None
FILTER = None
PW = "secret-pw"
ALICE = "alice.smith@example.com"
BOB = "bob.jones@example.com"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


class PyFilter:
    """A mail filter on a raw socket: negotiates (no EOH, no replies to header fields); refuses the HELO name
    refuse.helo.test, a sender with refuse-at-mail in it at MAIL, and Bob at RCPT when the sender has rcpt-test
    (its reply) or rcpt-tempfail (a bare tempfail) in it; remembers the Subject and at the end of the message does
    what the Subject says."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.port = h.free_ports(1)[0]
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.endpoint = "inet:127.0.0.1:%d" % self.port
        self.seen = []  # the commands of the last conversation
        self.macros = {}
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            c, _ = self.sock.accept()
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    @staticmethod
    def packet(cmd, data=b""):
        return struct.pack(">I", len(data) + 1) + cmd + data

    def serve(self, c):
        subject = ""
        sender = b""
        seen = []
        buf = b""
        try:
            while True:
                while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
                    more = c.recv(65536)
                    if not more:
                        return
                    buf += more
                n = struct.unpack(">I", buf[:4])[0]
                cmd, data, buf = buf[4:5], buf[5:4 + n], buf[4 + n:]
                seen.append(cmd.decode())
                if cmd == b"O":
                    # version 6, every action, no EOH, no reply to header fields
                    c.sendall(self.packet(b"O", struct.pack(">III", 6, 0x1ff, 0x40 | 0x80)))
                elif cmd == b"H":
                    if data.split(b"\0")[0] == b"refuse.helo.test":
                        c.sendall(self.packet(b"y", b"550 5.7.0 The test filter does not talk to you\0"))
                    else:
                        c.sendall(self.packet(b"c"))
                elif cmd == b"M":
                    sender = data.split(b"\0")[0]
                    if b"refuse-at-mail" in sender:
                        c.sendall(self.packet(b"y", b"553 5.7.1 The test filter refuses this sender\0"))
                    else:
                        c.sendall(self.packet(b"c"))
                elif cmd == b"R":
                    bob = BOB.encode() in data
                    if bob and b"rcpt-test" in sender:
                        c.sendall(self.packet(b"y", b"550 5.7.1 Bob takes no mail from you\0"))
                    elif bob and b"rcpt-tempfail" in sender:
                        c.sendall(self.packet(b"t"))
                    else:
                        c.sendall(self.packet(b"c"))
                elif cmd == b"D":
                    items = data[1:].split(b"\0")
                    for k in range(0, len(items) - 1, 2):
                        self.macros[items[k].decode()] = items[k + 1].decode()
                elif cmd == b"L":
                    name, value = data.split(b"\0")[:2]
                    if name.lower() == b"subject":
                        subject = value.decode()
                elif cmd == b"E":
                    self.seen = seen
                    if "stop answering" in subject:
                        time.sleep(10)
                        return
                    c.sendall(self.at_end(subject))
                elif cmd == b"Q":
                    return
                elif cmd in b"CTNB":
                    c.sendall(self.packet(b"c"))
        finally:
            c.close()

    def at_end(self, subject):
        p = self.packet
        if "change header" in subject:
            return p(b"m", struct.pack(">I", 1) + b"Subject\0[changed] " + subject.encode() + b"\0") + p(b"c")
        if "add header" in subject:
            return p(b"h", b"X-Filtered\0yes, by the test\0") + p(b"c")
        if "insert header" in subject:
            return p(b"i", struct.pack(">I", 0) + b"X-First\0on top\0") + p(b"c")
        if "delete header" in subject:
            return p(b"m", struct.pack(">I", 1) + b"X-Remove-Me\0\0") + p(b"c")
        if "replace body" in subject:
            return p(b"b", b"The filter's own body.\nSecond line.\n") + p(b"c")
        if "quarantine" in subject:
            return p(b"q", b"looks suspicious\0") + p(b"c")
        if "discard" in subject:
            return p(b"d")
        if "add recipient" in subject:
            return p(b"+", ("<%s>\0" % BOB).encode()) + p(b"c")
        if "delete recipient" in subject:
            return p(b"-", ("<%s>\0" % BOB).encode()) + p(b"c")
        if "reject" in subject:
            return p(b"y", b"550 5.7.0 The test filter says no\0")
        if "tempfail" in subject:
            return p(b"t")
        return p(b"a")


def message(subject, body="Hello there,\r\nthis is a perfectly ordinary message.\r\n", extra=""):
    return ("From: Friend <friend@outside.org>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@outside.org>\r\n"
            "Date: Mon, 07 Dec 2026 10:00:00 +0000\r\n%s\r\n%s" % (ALICE, subject, subject.replace(" ", "-"),
                                                                   extra, body))


def send(subject, rcpts=(ALICE,), port="smtp", **kw):
    """Sends the message over SMTP; returns the reply to its DATA (code, text)."""
    c = smtplib.SMTP("127.0.0.1", S.ports[port], timeout=60)
    try:
        c.ehlo("client.outside.test")
        c.mail("friend@outside.org")
        for r in rcpts:
            assert c.rcpt(r)[0] == 250
        code, text = c.data(message(subject, **kw).encode())
        return code, text.decode()
    finally:
        c.quit()


def fetch(login, subject, folder="INBOX", timeout=15, part="BODY.PEEK[]"):
    """The stored message (RFC822 text, CRLF) of login with subject in folder, or None."""
    def get():
        m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=10)
        try:
            m.login(login, PW)
            m.select(folder, readonly=True)
            typ, data = m.search(None, "SUBJECT", '"%s"' % subject)
            ids = data[0].split() if typ == "OK" else []
            return ids and m.fetch(ids[-1], "(%s)" % part)[1][0][1].decode("utf-8", "replace")
        finally:
            m.logout()
    return h.wait_for(get, timeout=timeout, interval=0.1) or None


def header_of(text):
    return text.split("\r\n\r\n", 1)[0].replace("\r\n\t", " ").replace("\r\n ", " ").split("\r\n")


def track(addr):
    return S.cli("track", addr, check=True).stdout


def use(milters, default="tempfail"):
    for name, value in (("smtp.milters", milters), ("smtp.milter_default", default)):
        cur = S.cli("server", "show").stdout
        line = [l for l in cur.splitlines() if l.strip().startswith(name + " ")]
        want = value if name == "smtp.milters" else ("1" if value == "tempfail" else "0")
        if line and line[0].split()[1:2] == [want]:
            continue
        S.set_live(name, value, services=("smtpd",))


@h.setup
def setup():
    global S, RSPAMD, FILTER
    RSPAMD = Rspamd()
    RSPAMD.start()  # loads its rules while the system starts
    S = h.System()
    for login, given, surname in (("alice", "Alice", "Smith"), ("bob", "Bob", "Jones")):
        S.cli("user", "add", login, "--given", given, "--surname", surname, "--password", PW, check=True)
    assert h.wait_for(lambda: h.imap_login_ok(S.ports["imap"], "bob", PW), timeout=15)
    assert h.wait_for(lambda: S.rcpt_code(BOB) == 250, timeout=15)
    FILTER = PyFilter()
    RSPAMD.wait()


@h.test
def settings_are_checked():
    bad = S.cli("server", "set", "smtp.milters", "tcp:127.0.0.1:11332")
    assert bad.returncode != 0 and "neither inet:HOST:PORT nor unix:/PATH" in bad.stderr + bad.stdout, bad
    bad = S.cli("server", "set", "smtp.milter_default", "maybe")
    assert bad.returncode != 0, bad
    ok = S.cli("server", "set", "smtp.milter_default", "accept")
    assert ok.returncode == 0, ok.stderr
    assert S.cli("server", "set", "smtp.milter_default", "tempfail").returncode == 0


@h.test
def rspamd_rejects_gtube_at_end_of_data():
    use(RSPAMD.endpoint)
    code, text = send("gtube test", body="This is spam.\r\n%s\r\n" % GTUBE)
    assert code == 554 and text.startswith("5.7.1") and ("Gtube" in text or "Spam message rejected" in text), \
        (code, text, RSPAMD.log()[-1500:])
    assert fetch("alice", "gtube test", timeout=2) is None
    t = track(ALICE)
    assert "filtered" in t and RSPAMD.endpoint + ": reject 554 5.7.1" in t, t
    assert "refused" in t, t


@h.test
def rspamd_adds_its_headers_to_a_clean_message():
    use(RSPAMD.endpoint)
    code, _ = send("clean with rspamd")
    assert code == 250
    lines = header_of(fetch("alice", "clean with rspamd"))
    assert [l for l in lines if l.startswith("X-Spamd-Result:")], lines
    status = [l for l in lines if l.startswith("X-Spam-Status:")]
    assert status and status[0].startswith("X-Spam-Status: No, score="), lines
    line = [l for l in track(ALICE).splitlines() if RSPAMD.endpoint + ": passed; " in l]
    assert line and "added header X-Spamd-Result" in line[-1] and "added header X-Spam-Status" in line[-1], line


@h.test
def an_unreachable_filter_follows_milter_default():
    dead = "inet:127.0.0.1:%d" % h.free_ports(1)[0]
    use(dead, "tempfail")
    mark = S.log_mark("smtpd")
    # the filter is asked from the connection on: the session's transactions are refused, each MAIL with 451
    c = smtplib.SMTP("127.0.0.1", S.ports["smtp"], timeout=60)
    try:
        assert c.ehlo("client.outside.test")[0] == 250
        for _ in range(2):
            code, text = c.mail("friend@outside.org")
            assert code == 451 and text.decode().startswith("4.7.1"), (code, text)
    finally:
        c.quit()
    S.wait_log("smtpd", dead + ": not usable (connecting: Connection refused): smtp.milter_default tempfail",
                      since=mark)
    use(dead, "accept")
    code, _ = send("unreachable accept")
    assert code == 250 and fetch("alice", "unreachable accept") is not None
    assert dead + ": not usable (connecting: Connection refused): smtp.milter_default accept, skipped" in \
        track(ALICE)


@h.test
def a_filter_that_stops_answering_times_out():
    use(FILTER.endpoint, "tempfail")
    S.set_live("smtp.milter_timeout", 1, services=("smtpd",))
    try:
        t0 = time.monotonic()
        code, _ = send("stop answering please")
        assert code == 451 and time.monotonic() - t0 < 8, code
        use(FILTER.endpoint, "accept")
        code, _ = send("stop answering but accept")
        assert code == 250 and fetch("alice", "stop answering but accept") is not None
    finally:
        S.set_live("smtp.milter_timeout", 30, services=("smtpd",))
        use(FILTER.endpoint, "tempfail")
    assert "no reply within the timeout" in track(ALICE)


@h.test
def header_changes():
    use(FILTER.endpoint)
    code, text = send("change header")
    assert code == 250, (code, text)
    lines = header_of(fetch("alice", "[changed] change header"))
    assert "Subject: [changed] change header" in lines and "Subject: change header" not in lines, lines
    assert send("add header")[0] == 250
    assert "X-Filtered: yes, by the test" in header_of(fetch("alice", "add header"))
    assert send("insert header")[0] == 250
    lines = header_of(fetch("alice", "insert header"))
    # on top of the fields the filter saw (ours come after the filters: Return-Path at delivery)
    assert lines.index("X-First: on top") < [i for i, l in enumerate(lines) if l.startswith("Received:")][0], lines
    assert send("delete header", extra="X-Remove-Me: please\r\nX-Keep-Me: yes\r\n")[0] == 250
    lines = header_of(fetch("alice", "delete header"))
    assert "X-Keep-Me: yes" in lines and not [l for l in lines if l.startswith("X-Remove-Me")], lines
    t = track(ALICE)
    for what in ("changed header Subject", "added header X-Filtered", "inserted header X-First",
                 "deleted header X-Remove-Me"):
        assert FILTER.endpoint + ": passed; " + what in t, (what, t)
    # the filter was told the client and the queue id
    assert FILTER.macros.get("{client_addr}") == "127.0.0.1" and len(FILTER.macros.get("i", "x")) >= 1, FILTER.macros
    assert "N" not in FILTER.seen and "L" in FILTER.seen and "H" in FILTER.seen, FILTER.seen  # no EOH, as negotiated


@h.test
def body_replaced():
    use(FILTER.endpoint)
    assert send("replace body")[0] == 250
    text = fetch("alice", "replace body")
    assert text.split("\r\n\r\n", 1)[1] == "The filter's own body.\r\nSecond line.\r\n", text


@h.test
def quarantine_goes_to_junk():
    use(FILTER.endpoint)
    assert send("quarantine me")[0] == 250
    assert fetch("alice", "quarantine me", folder="Junk") is not None
    assert fetch("alice", "quarantine me", timeout=1) is None
    assert "quarantine (looks suspicious)" in track(ALICE)


@h.test
def discard_delivers_nothing():
    use(FILTER.endpoint)
    code, _ = send("discard me")
    assert code == 250
    assert send("the next one")[0] == 250 and fetch("alice", "the next one") is not None
    assert fetch("alice", "discard me", timeout=1) is None
    assert FILTER.endpoint + ": discard" in track(ALICE)


@h.test
def recipients_added_and_deleted():
    use(FILTER.endpoint)
    assert send("add recipient")[0] == 250
    assert fetch("bob", "add recipient") is not None and fetch("alice", "add recipient") is not None
    assert send("delete recipient", rcpts=(ALICE, BOB))[0] == 250
    assert fetch("alice", "delete recipient") is not None
    assert fetch("bob", "delete recipient", timeout=1) is None
    t = track(BOB)
    assert "added recipient <%s>" % BOB in t and "deleted recipient <%s>" % BOB in t, t


@h.test
def reject_and_tempfail_verdicts():
    use(FILTER.endpoint)
    code, text = send("reject me")
    assert code == 550 and text == "5.7.0 The test filter says no", (code, text)
    code, text = send("tempfail me")
    assert code == 451 and text.startswith("4.7.1"), (code, text)
    t = track(ALICE)
    assert FILTER.endpoint + ": reject 550 5.7.0 The test filter says no" in t and "refused" in t, t
    # found by its Message-ID too, though it was never stored
    assert FILTER.endpoint + ": reject 550 5.7.0" in track("reject-me@outside.org")


def swaks(*args):
    if shutil.which("swaks") is None:
        h.skip("swaks is not installed (Debian package swaks)")
    p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % S.ports["smtp"], "--timeout", "60"] + list(args),
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


@h.test
def one_recipient_refused_at_rcpt():
    # the filter refuses Bob at his RCPT with its own reply: Alice gets the message, Bob does not
    use(FILTER.endpoint)
    rc, out = swaks("--helo", "client.outside.test", "--from", "rcpt-test@outside.org", "--to", "%s,%s" % (ALICE, BOB),
                    "--header", "Subject: bob refused at rcpt", "--body", "For Alice only.")
    assert "<** 550 5.7.1 Bob takes no mail from you" in out, out
    assert "250 2.0.0 Ok: queued" in out, out
    assert fetch("alice", "bob refused at rcpt") is not None
    assert fetch("bob", "bob refused at rcpt", timeout=1) is None
    t = track(BOB)
    assert FILTER.endpoint + ": reject at RCPT 550 5.7.1 Bob takes no mail from you" in t, t
    assert "refused" in t, t
    # a bare tempfail at RCPT: 451 for Bob, from Postfix's default reply
    rc, out = swaks("--helo", "client.outside.test", "--from", "rcpt-tempfail@outside.org", "--to",
                    "%s,%s" % (ALICE, BOB), "--header", "Subject: bob deferred at rcpt", "--body", "Later, Bob.")
    assert "<** 451 4.7.1 Service unavailable - try again later" in out and "Ok: queued" in out, out
    assert fetch("alice", "bob deferred at rcpt") is not None
    assert fetch("bob", "bob deferred at rcpt", timeout=1) is None


@h.test
def sender_refused_at_mail():
    use(FILTER.endpoint)
    rc, out = swaks("--helo", "client.outside.test", "--from", "refuse-at-mail@outside.org", "--to", ALICE,
                    "--header", "Subject: refused at mail")
    assert rc != 0 and "<** 553 5.7.1 The test filter refuses this sender" in out, out
    assert "354" not in out, out  # the transaction ended before any data
    assert fetch("alice", "refused at mail", timeout=1) is None
    t = track("refuse-at-mail@outside.org")
    assert FILTER.endpoint + ": reject at MAIL 553 5.7.1 The test filter refuses this sender" in t, t


@h.test
def client_refused_at_helo():
    # the filter refuses the client at its HELO: the session's transactions are refused with its reply
    use(FILTER.endpoint)
    rc, out = swaks("--helo", "refuse.helo.test", "--from", "friend@outside.org", "--to", ALICE,
                    "--header", "Subject: refused at helo")
    assert rc != 0 and "<** 550 5.7.0 The test filter does not talk to you" in out, out
    assert "354" not in out, out
    assert fetch("alice", "refused at helo", timeout=1) is None
    # for the whole session, a new greeting included: the filter is not asked again
    c = smtplib.SMTP("127.0.0.1", S.ports["smtp"], timeout=60)
    try:
        assert c.ehlo("refuse.helo.test")[0] == 250
        assert c.mail("friend@outside.org")[0] == 550
        assert c.ehlo("client.outside.test")[0] == 250
        assert c.mail("friend@outside.org")[0] == 550
    finally:
        c.quit()
    assert FILTER.endpoint + ": reject at MAIL 550 5.7.0 The test filter does not talk to you" in \
        track("friend@outside.org")


@h.test
def submission_has_its_own_list():
    # smtp.milters is for port 25; submission's smtp.submission_milters is empty: rspamd does not see it
    use(RSPAMD.endpoint)
    c = smtplib.SMTP("127.0.0.1", S.ports["submission"], timeout=60)
    try:
        c.starttls()
        c.login("alice", PW)
        c.sendmail(ALICE, [ALICE], ("From: %s\r\nTo: %s\r\nSubject: submitted gtube\r\n\r\n%s\r\n" %
                                    (ALICE, ALICE, GTUBE)).encode())
    finally:
        c.quit()
    assert fetch("alice", "submitted gtube") is not None
    S.set_live("smtp.submission_milters", RSPAMD.endpoint, services=("smtpd",))
    try:
        c = smtplib.SMTP("127.0.0.1", S.ports["submission"], timeout=60)
        c.starttls()
        c.login("alice", PW)
        try:
            c.sendmail(ALICE, [ALICE], ("From: %s\r\nTo: %s\r\nSubject: submitted gtube 2\r\n\r\n%s\r\n" %
                                        (ALICE, ALICE, GTUBE)).encode())
            raise AssertionError("taken")
        except smtplib.SMTPDataError as e:
            assert e.smtp_code == 554, e
        c.quit()
    finally:
        S.set_live("smtp.submission_milters", "", services=("smtpd",))


if __name__ == "__main__":
    try:
        h.main("milter")
    finally:
        if RSPAMD is not None:
            RSPAMD.stop()
