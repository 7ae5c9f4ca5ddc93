#!/usr/bin/env python3
# test_limits.py - limits that hold against a hostile client, on a real started system: SMTP session and DATA time
# limits, the connection slots kept for new client addresses, the IMAP/POP3 pre-login deadline as a total, and
# after each case a normal client must still deliver and read a message.
import imaplib
import json
import os
import re
import smtplib
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = None
PW = {"alice": "pw-alice1"}
ALICE = "alice.archer@example.com"
SEQ = [0]
GUARD = 60.0  # the most any case waits for the server's answer; the limits under test are a few seconds


def connect(port, src="127.0.0.1", timeout=5.0):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def recv_some(s, wait):
    """What arrives within wait seconds: bytes, b"" when nothing did, None when the peer closed."""
    s.settimeout(wait)
    try:
        return s.recv(65536) or None
    except socket.timeout:
        return b""
    except OSError:
        return None


def recv_until(s, needles, limit=10.0):
    """Reads until every needle has arrived, the peer closes or limit seconds pass; returns what came."""
    out = b""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit and not all(n in out for n in needles):
        d = recv_some(s, 0.5)
        if d is None:
            break
        out += d
    return out


def keep_busy(port, first, beat, needle, src="127.0.0.1", greeting=b""):
    """Sends first, then beat every 300 ms (the session is never idle) until needle arrives and the server closes,
    or GUARD seconds pass. Returns (everything received, whether the server closed)."""
    s = connect(port, src)
    out = recv_until(s, [greeting]) if greeting else b""
    s.sendall(first)
    t0 = time.monotonic()
    closed = False
    while time.monotonic() - t0 < GUARD:
        try:
            s.sendall(beat)
        except OSError:
            closed = True
            break
        time.sleep(0.3)
        d = recv_some(s, 0.01)
        if d is None:
            closed = True
            break
        out += d
    s.close()
    assert needle in out, "no %r within %d s: %r" % (needle, GUARD, out[-400:])
    assert closed, "the server kept the connection open after %r" % needle
    return out


def still_serves(tag, src="127.0.0.1"):
    """A normal client still works: a message over SMTP, found once by IMAP."""
    SEQ[0] += 1
    mid = "<still-%s-%d-%d@limits.test>" % (tag, os.getpid(), SEQ[0])
    S.send_mail(ALICE, mid, src=src)
    found = h.wait_for(lambda: S.imap_count("alice", PW["alice"], mid), timeout=20, interval=0.2)
    assert found == 1, "%s: message found %d times" % (tag, found)


@h.setup
def setup():
    global S
    S = h.System()
    S.cli("user", "add", "alice", "--given", "Alice", "--surname", "Archer", "--password", PW["alice"], check=True)
    assert h.wait_for(lambda: h.imap_login_ok(S.ports["imap"], "alice", PW["alice"]), timeout=15, interval=0.3)

    def smtp_knows_alice():  # ix-smtpd's replica has the new user too
        try:
            S.send_mail(ALICE, "<ready-%d@limits.test>" % os.getpid())
            return True
        except smtplib.SMTPRecipientsRefused:
            return False
    assert h.wait_for(smtp_knows_alice, timeout=15, interval=0.3), "ix-smtpd does not know alice"
    still_serves("setup")


# ---- SMTP ----

@h.test
def smtp_session_time_limit():
    # NOOP every 300 ms keeps the session from ever being idle; the whole session still ends with a 421
    S.set_live("smtp.session_max_seconds", 2, services=("smtpd",))
    try:
        out = keep_busy(S.ports["smtp"], b"EHLO x\r\n", b"NOOP\r\n", b"421 4.4.2", greeting=b"220 ")
        assert b"Session time limit reached" in out, out[-300:]
    finally:
        S.set_live("smtp.session_max_seconds", 600, services=("smtpd",))
    still_serves("session")


@h.test
def smtp_data_time_limit():
    # a message trickled one line every 300 ms never finishes: 421 once the DATA limit passes, nothing delivered
    S.set_live("smtp.data_max_seconds", 2, services=("smtpd",))
    try:
        start = b"EHLO x\r\nMAIL FROM:<a@outside.org>\r\nRCPT TO:<%s>\r\nDATA\r\n" % ALICE.encode()
        out = keep_busy(S.ports["smtp"], start, b"another line\r\n", b"421 4.4.2", greeting=b"220 ")
        assert b"354 " in out and b"Message transfer time limit reached" in out, out[-300:]
        # BDAT: chunks that keep coming, never the LAST one
        start = b"EHLO x\r\nMAIL FROM:<a@outside.org>\r\nRCPT TO:<%s>\r\n" % ALICE.encode()
        out = keep_busy(S.ports["smtp"], start, b"BDAT 5\r\nhello", b"421 4.4.2", greeting=b"220 ")
        assert b"250 2.0.0 Chunk received" in out and b"Message transfer time limit reached" in out, out[-300:]
    finally:
        S.set_live("smtp.data_max_seconds", 300, services=("smtpd",))
    still_serves("data")


@h.test
def smtp_reserve_for_new_addresses():
    # one address takes every slot it can get; an address holding none is still served
    cap = 20
    S.set_live("smtp.max_connections", cap, services=("smtpd",))
    held = []
    try:
        refused = b""
        for _ in range(cap):
            s = connect(S.ports["smtp"], "127.0.0.2")
            got = recv_until(s, [b"\r\n"])
            if not got.startswith(b"220 "):
                refused = got
                s.close()
                break
            held.append(s)
        assert refused.startswith(b"421 4.7.0"), "an address filled every slot (%d): %r" % (len(held), refused)
        for src in ("127.0.0.3", "127.0.0.4"):
            s = connect(S.ports["smtp"], src)
            got = recv_until(s, [b"\r\n"])
            s.close()
            assert got.startswith(b"220 "), "a new address from %s was turned away: %r" % (src, got)
        still_serves("reserve", src="127.0.0.5")
    finally:
        for s in held:
            s.close()
        S.set_live("smtp.max_connections", 1000, services=("smtpd",))


# ---- IMAP and POP3 before login ----

@h.test
def prelogin_deadline_is_a_total():
    # a command every 300 ms before login: the pre-login limit is a total, not a silence
    S.set_live("imap.login_timeout", 2, services=("imapd", "pop3d"))
    S.set_live("pop3.login_timeout", 2, services=("imapd", "pop3d"))
    try:
        keep_busy(S.ports["imap"], b"a0 CAPABILITY\r\n", b"a1 NOOP\r\n", b"* BYE", greeting=b"* OK")
        keep_busy(S.ports["pop3"], b"CAPA\r\n", b"CAPA\r\n", b"-ERR", greeting=b"+OK")
    finally:
        S.set_live("imap.login_timeout", 60, services=("imapd", "pop3d"))
        S.set_live("pop3.login_timeout", 60, services=("imapd", "pop3d"))
    # a login in time is not cut afterwards
    m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=10)
    m.login("alice", PW["alice"])
    m.noop()
    m.logout()


# ---- messages the store will refuse ----

def unstorable():
    """(name, message, words of the refusal) for each structure past the store's MIME limits."""
    parts = ["Content-Type: multipart/mixed; boundary=b\r\n\r\n"]
    parts += ["--b\r\n\r\n%d\r\n" % i for i in range(10001)]
    parts.append("--b--\r\n")
    deep = "".join("Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(1000))
    folded = "X-Folded: start\r\n" + "".join(" continued-%06d-%s\r\n" % (i, "y" * 60) for i in range(16000))
    head = "From: a@outside.org\r\nTo: %s\r\nSubject: %%s\r\nMIME-Version: 1.0\r\n" % ALICE
    return [("parts", head % "parts" + "".join(parts), b"too many MIME parts (limit 10000)"),
            ("depth", head % "depth" + deep, b"MIME parts nested too deeply (limit 32)"),
            ("header", head % "header" + folded + "\r\nbody\r\n", b"(limit 1048576)")]


@h.test
def smtp_refuses_what_the_store_refuses():
    # before the 250: a permanent refusal naming the limit, so the sender is told at once (not a deferral)
    for name, msg, words in unstorable():
        c = smtplib.SMTP("127.0.0.1", S.ports["smtp"], timeout=60)
        try:
            c.sendmail("a@outside.org", [ALICE], msg.encode())
            raise AssertionError("%s: accepted" % name)
        except smtplib.SMTPDataError as e:
            assert e.smtp_code == 554 and e.smtp_error.startswith(b"5.6.0") and words in e.smtp_error, (name, e)
        finally:
            c.close()
    still_serves("unstorable")


@h.test
def imap_append_refuses_with_limit():
    m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=60)
    try:
        m.login("alice", PW["alice"])
        for name, msg, words in unstorable():
            typ, data = m.append("INBOX", None, None, msg.encode())
            assert typ == "NO" and data[0].startswith(b"[LIMIT]") and words in data[0], (name, typ, data)
    finally:
        m.logout()


# ---- a full disk ----

def send_big(system, i, size=300000):
    """One message of about size bytes to alice; returns "250" or the refusal."""
    c = smtplib.SMTP("127.0.0.1", system.ports["smtp"], timeout=30)
    try:
        body = "Subject: fill %d\r\n\r\n" % i + ("x" * 998 + "\r\n") * (size // 1000)
        c.sendmail("a@outside.org", [ALICE], body.encode())
        return "250"
    except smtplib.SMTPException as e:
        return str(e)
    finally:
        c.close()


def status_warnings(system):
    return json.loads(system.cli("status", "--json").stdout)["warnings"]


@h.test
def disk_full_recovers_by_itself():
    # the data folder on a 24 MiB tmpfs: fill it, then a purge must bring delivery back with nothing else happening
    D = h.System(tmpfs_size="24m")
    try:
        D.cli("user", "add", "alice", "--given", "Alice", "--surname", "Archer", "--password", PW["alice"], check=True)
        assert h.wait_for(lambda: h.imap_login_ok(D.ports["imap"], "alice", PW["alice"]), timeout=15, interval=0.3)
        assert h.wait_for(lambda: send_big(D, 0, size=1000) == "250", timeout=15, interval=0.3)  # smtpd knows her
        D.cli("server", "set", "store.retention_days", "0", check=True)
        # status warns before the disk is full, from the free-space threshold
        D.cli("server", "set", "store.disk_warn_free", "4m", check=True)
        assert h.wait_for(lambda: not any("disk low" in w for w in status_warnings(D)), timeout=10), status_warnings(D)
        mark = D.log_mark("smtpd")
        answers = [send_big(D, i) for i in range(120)]
        refused = [a for a in answers if a != "250"]
        assert refused and "451" in refused[0], answers[-3:]
        assert answers.count("250") >= 40, answers  # the disk held many before it filled
        assert any("disk low" in w for w in status_warnings(D)), status_warnings(D)
        log = D.log("smtpd", mark)
        assert "disk full" in log and "Input/output error" not in log, log[-1500:]
        # delete everything and purge it (retention 0 days): the store has room again inside its file
        m = imaplib.IMAP4("127.0.0.1", D.ports["imap"], timeout=30)
        m.login("alice", PW["alice"])
        m.select("INBOX")
        m.store("1:*", "+FLAGS", "\\Deleted")
        m.expunge()
        m.logout()
        # (expunged this second: a run in a later second purges them; the count is since the attendant started)
        purged = lambda: re.search(r"\b([1-9]\d*) deleted items purged", D.cli("maintenance", "run").stdout)  # noqa
        assert h.wait_for(purged, timeout=10, interval=0.5), D.cli("maintenance", "run").stdout
        # the very next deliveries are taken: no sticky state, no other write needed first (messages a session keeps
        # in memory, below SPOOL_MEMORY_MAX: the store's file has room again, the file system only what the fill
        # happened to leave, which larger messages would need for their spool file)
        answers = [send_big(D, 1000 + i, size=100000) for i in range(3)]
        assert answers == ["250"] * 3, answers
    finally:
        D.destroy()


# ---- memory per message ----

def rss_kib(name):
    pid = [x["pid"] for x in json.loads(S.cli("status", "--json").stdout)["services"] if x["name"] == name][0]
    with open("/proc/%d/status" % pid) as f:
        return int([line.split()[1] for line in f if line.startswith("VmRSS:")][0])


@h.test
def large_messages_wait_on_disk():
    # clients midway through large messages: each costs the daemon far less than what it sent (a file holds it)
    n, sent, line = 5, 8 * 1000 * 1000, b"y" * 998 + b"\r\n"
    for name, port, start, go in (
            ("smtpd", S.ports["smtp"], b"EHLO x\r\nMAIL FROM:<a@outside.org>\r\nRCPT TO:<%s>\r\nDATA\r\n" % ALICE.encode(),
             b"354 "),
            ("imapd", S.ports["imap"], b"a LOGIN alice %s\r\nb APPEND INBOX {%d}\r\n" % (PW["alice"].encode(), 2 * sent),
             b"+ ")):
        before = rss_kib(name)
        socks = []
        for i in range(n):
            c = connect(port, "127.0.0.%d" % (10 + i), timeout=30)
            c.sendall(start)
            got = recv_until(c, [go])
            assert go in got, got
            socks.append(c)
        for c in socks:
            for _ in range(sent // len(line) // 100):
                c.sendall(line * 100)
        # what was sent has arrived once the daemon answers a new client; then it holds what it holds
        still_serves("midway-" + name, src="127.0.0.30")
        grown = rss_kib(name) - before
        for c in socks:
            c.close()
        assert grown < n * 1024, "%s grew by %d KiB for %d clients each %d MB into a message" % (
            name, grown, n, sent // 1000000)
    # and a large message comes back whole by either way in
    body = b"".join(b"line %06d %s\r\n" % (i, b"z" * 70) for i in range(40000))  # about 3.3 MB
    msg = b"Subject: whole\r\nMessage-ID: <whole@limits.test>\r\n\r\n" + body
    c = smtplib.SMTP("127.0.0.1", S.ports["smtp"], timeout=60)
    c.sendmail("a@outside.org", [ALICE], msg)
    c.quit()
    m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=60)
    try:
        m.login("alice", PW["alice"])
        typ, data = m.append("INBOX", None, None, msg.replace(b"<whole@", b"<whole2@"))
        assert typ == "OK", data
        m.select("INBOX", readonly=True)
        for mid in (b"whole", b"whole2"):
            uids = h.wait_for(lambda: m.uid("SEARCH", "HEADER", "Message-ID", "<%s@limits.test>" % mid.decode())[1][0].split(),
                              timeout=20, interval=0.2)
            typ, data = m.uid("FETCH", uids[0], "BODY.PEEK[TEXT]")
            assert typ == "OK" and data[0][1] == body, (mid, typ, len(data[0][1]) if data and data[0] else data)
    finally:
        m.logout()


if __name__ == "__main__":
    h.main("limits")
