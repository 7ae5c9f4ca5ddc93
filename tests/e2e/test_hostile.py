#!/usr/bin/env python3
# test_hostile.py - hostile clients against a real started system: SMTP, IMAP and POP3 (plain, STARTTLS and
# implicit TLS) fed overlong lines, NULs, bare CR/LF, huge literals and SIZE, slow-loris trickles, clients that
# never read, many connections, password guessing, STARTTLS command injection and LDAP filter/DN injection.
# Every case states the reply it expects, and then a normal client must still log in and find a real message.
import base64
import imaplib
import json
import os
import poplib
import smtplib
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = None
PW = {"alice": "pw-alice1", "bob": "pw-bob22"}
ALICE = "alice.archer@example.com"
SMTP_IDLE = 5          # smtp.idle_timeout for the slow-loris case
PRELOGIN_SILENCE = 2   # imap.login_timeout and pop3.login_timeout: the time allowed before login
MAX_PER_CLIENT = 5     # smtp.max_connections_per_client
MAX_FAILURES = 3       # auth.max_failures
# (ix-imapd and ix-pop3d read auth.max_failures from the directory since 4bd67b8; the default 10 before.)
LORIS = {}             # peer -> result of a slow-loris thread started in setup
SMTP_LORIS = {"smtp-cmd": b"EHLO x\r\nNOOP",
              "smtp-data": b"EHLO x\r\nMAIL FROM:<a@b.org>\r\nRCPT TO:<%s>\r\nDATA\r\n" % ALICE.encode()}
SEQ = [0]
DAEMONS = ("smtpd", "mta", "imapd", "pop3d")


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def connect(port, src="127.0.0.1", timeout=5.0, tls=False):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    if tls:
        s = tls_ctx().wrap_socket(s)
    return s


def exchange(port, chunks, until, src="127.0.0.1", tls=False, greeting=True, limit=15.0):
    """Sends chunks, then reads until every needle of until has arrived, the server closes or limit seconds pass.
    A case's until ends with the answer to its last command: servers answer in order, so every answer to the
    commands before it is in out by then (what refuse() looks for included), without waiting on a quiet period."""
    s = connect(port, src, tls=tls)
    out = b""
    deadline = time.monotonic() + limit
    try:
        if greeting:
            out += s.recv(4096)
        for c in chunks:
            s.sendall(c)
        while any(n not in out for n in until) and time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            if not d:
                break
            out += d
    except OSError as e:
        out += b"<%s>" % type(e).__name__.encode()
    s.close()
    return out


def expect(out, *needles):
    for n in needles:
        assert n in out, "expected %r in %r" % (n, out[-600:])


def refuse(out, *needles):
    for n in needles:
        assert n not in out, "did not expect %r in %r" % (n, out[-600:])


def send_mail(subject, src="127.0.0.1"):
    c = smtplib.SMTP("127.0.0.1", S.ports["smtp"], timeout=20, source_address=(src, 0))
    c.sendmail("friend@outside.org", [ALICE],
               "From: friend@outside.org\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@hostile.test>\r\n\r\nhello\r\n"
               % (ALICE, subject, subject))
    c.quit()


def imap_has(subject):
    m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=10)
    try:
        m.login("alice", PW["alice"])
        m.select("INBOX", readonly=True)
        typ, data = m.search(None, "HEADER", "Message-ID", "<%s@hostile.test>" % subject)
        return typ == "OK" and len(data[0].split())
    finally:
        m.logout()


def pop_has(subject):
    """How many of alice's messages POP3 lists with the Message-ID of subject."""
    p = poplib.POP3("127.0.0.1", S.ports["pop3"], timeout=10)
    try:
        p.user("alice")
        p.pass_(PW["alice"])
        needle = b"<%s@hostile.test>" % subject.encode()
        return sum(needle in b"\r\n".join(p.top(n, 0)[1]) for n in range(1, p.stat()[0] + 1))
    finally:
        p.quit()


def still_serves(tag):
    """A normal client still works: a message over SMTP, found once by IMAP and once by POP3."""
    SEQ[0] += 1
    subject = "still-%s-%d-%d" % (tag, os.getpid(), SEQ[0])
    send_mail(subject)
    assert h.wait_for(lambda: imap_has(subject), timeout=20, interval=0.2) == 1, "%s: message not found once" % tag
    assert pop_has(subject) == 1, "%s: POP3 does not list the message once" % tag


def loris(proto, port, first, drip, limit):
    """A slow-loris peer: sends first, then one byte of drip every 300 ms until the server closes (or limit s)."""
    t0 = time.monotonic()
    result = {"closed_after": None, "got": b""}
    LORIS[proto] = result
    try:
        s = connect(port, "127.0.0.3", timeout=0.3)
        try:
            result["got"] += s.recv(4096)
        except socket.timeout:
            pass
        s.sendall(first)
        i = 0
        while time.monotonic() - t0 < limit:
            try:
                s.sendall(drip[i % len(drip):i % len(drip) + 1])
                i += 1
                d = s.recv(4096)
                if not d:
                    break
                result["got"] += d
            except socket.timeout:
                continue
            except OSError:
                break
        else:
            s.close()
            return
        result["closed_after"] = time.monotonic() - t0
        s.close()
    except OSError as e:
        result["error"] = str(e)


@h.setup
def setup():
    global S
    S = h.System()
    for u in ("alice", "bob"):
        S.cli("user", "add", u, "--given", u.capitalize(), "--surname", "Archer" if u == "alice" else "Baker",
              "--password", PW[u], check=True)
    # every daemon takes a setting live and logs that it has it: no restart
    for name, value in (("smtp.idle_timeout", SMTP_IDLE), ("smtp.max_connections_per_client", MAX_PER_CLIENT),
                        ("auth.max_failures", MAX_FAILURES), ("imap.login_timeout", PRELOGIN_SILENCE),
                        ("pop3.login_timeout", PRELOGIN_SILENCE)):
        S.set_live(name, value, services=DAEMONS)
    assert h.wait_for(_login_ok, timeout=15, interval=0.1), "users not ready"
    # slow-loris peers run in the background while the other cases run: SMTP ones (closed after SMTP_IDLE) and
    # ones before an IMAP and a POP3 login (closed after PRELOGIN_SILENCE)
    peers = [(k, S.ports["smtp"], first, SMTP_IDLE + 10) for k, first in SMTP_LORIS.items()]
    peers += [("imap", S.ports["imap"], b"a1 LOGIN alice", PRELOGIN_SILENCE + 10),
              ("pop3", S.ports["pop3"], b"USER alice", PRELOGIN_SILENCE + 10)]
    for key, port, first, limit in peers:
        threading.Thread(target=loris, args=(key, port, first, b"x", limit), daemon=True).start()
    still_serves("setup")


def _login_ok():
    try:
        m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=5)
        m.login("alice", PW["alice"])
        m.logout()
        return True
    except (imaplib.IMAP4.error, OSError):
        return False


# ---- SMTP ----

@h.test
def smtp_bad_lines():
    p = S.ports["smtp"]
    # a 20,000-byte line: 500 5.5.2 Line too long; the session goes on
    out = exchange(p, [b"EHLO x\r\n", b"A" * 20000 + b"\r\n", b"NOOP\r\n"], until=(b"500 5.5.2 Line too long", b"250 2.0.0 Ok",))
    expect(out, b"500 5.5.2 Line too long", b"250 2.0.0 Ok")
    # a 1 MiB line with no end at all, then a proper command
    out = exchange(p, [b"EHLO x\r\n", b"B" * (1 << 20), b"\r\nNOOP\r\n"], until=(b"500 5.5.2 Line too long", b"250 2.0.0 Ok",))
    expect(out, b"500 5.5.2 Line too long", b"250 2.0.0 Ok")
    # NUL inside a command: 500, and NOOP still works
    out = exchange(p, [b"EHLO x\r\n", b"NO\x00OP\r\n", b"NOOP\r\n"], until=(b"500 5.5.2", b"250 2.0.0 Ok",))
    expect(out, b"500 5.5.2", b"250 2.0.0 Ok")
    # bare LF is not a line end and bare CR is refused: 500 5.5.2 Invalid character
    out = exchange(p, [b"EHLO x\n", b"NOOP\r\n"], until=(b"500 5.5.2 Invalid character",))
    expect(out, b"500 5.5.2 Invalid character")
    refuse(out, b"250-mail.example.com")
    out = exchange(p, [b"EHLO x\rMAIL FROM:<a@b.org>\r\n", b"NOOP\r\n"], until=(b"500 5.5.2 Invalid character", b"250 2.0.0 Ok",))
    expect(out, b"500 5.5.2 Invalid character", b"250 2.0.0 Ok")
    refuse(out, b"250 2.1.0")
    # header injection through a parameter (bare CR inside MAIL): 500, never 250
    out = exchange(p, [b"EHLO x\r\n", b"MAIL FROM:<a@b.org> ENVID=x\rBcc:y\r\n", b"NOOP\r\n"],
                   until=(b"500 5.5.2 Invalid character", b"250 2.0.0 Ok\r\n"))
    expect(out, b"500 5.5.2 Invalid character", b"250 2.0.0 Ok\r\n")
    refuse(out, b"250 2.1.0")
    # bare LF, NUL and bare CR inside DATA do not break the session: the message is queued and NOOP answered
    out = exchange(p, [b"EHLO x\r\nMAIL FROM:<a@b.org>\r\nRCPT TO:<%s>\r\nDATA\r\n" % ALICE.encode(),
                       b"Subject: odd\nbare lf\r\nnul\x00here\rbare cr\r\n.\r\nNOOP\r\n"],
                   until=(b"250 2.0.0 Ok\r\n",))
    expect(out, b"354 ")
    assert out.split(b"354 ", 1)[1].endswith(b"\r\n250 2.0.0 Ok: queued\r\n250 2.0.0 Ok\r\n"), out[-300:]
    still_serves("smtp-bad-lines")


@h.test
def smtp_huge_size():
    p = S.ports["smtp"]
    # SIZE past 64 bits: 501 5.5.4; past the limit: 552 5.3.4; the transaction can start afterwards
    out = exchange(p, [b"EHLO x\r\n", b"MAIL FROM:<a@b.org> SIZE=999999999999999999999999\r\n",
                       b"MAIL FROM:<a@b.org> SIZE=100000000000\r\n", b"MAIL FROM:<a@b.org> SIZE=1000\r\n"], until=(b"501 5.5.4", b"552 5.3.4", b"250 2.1.0",))
    expect(out, b"501 5.5.4", b"552 5.3.4", b"250 2.1.0")
    # BDAT announcing a chunk of 2^63 bytes: refused, not waited for
    # (501: the size does not parse; the stream cannot be resynchronised, so 421 and a close; NOOP never runs)
    out = exchange(p, [b"EHLO x\r\nMAIL FROM:<a@b.org>\r\nRCPT TO:<%s>\r\n" % ALICE.encode(),
                       b"BDAT 9223372036854775807 LAST\r\n", b"NOOP\r\n"], until=(b"421 4.7.0",))
    expect(out, b"250 2.1.5 Ok\r\n501 5.5.4 Syntax: BDAT size [LAST]\r\n421 4.7.0 ")
    refuse(out, b"250 2.0.0 Ok")
    still_serves("smtp-size")


def never_reads(port, first, command):
    """A client that sends first, then command over and over without reading a reply, until a send makes no
    progress for a second: the server stopped reading it (a close would be an OSError other than the timeout; a
    server that read 64 MiB of commands whose replies pile up fails the test). Returns the open socket."""
    hog = connect(port, "127.0.0.4", timeout=1.0)
    hog.sendall(first)
    block = command * (65536 // len(command))
    sent = 0
    try:
        while sent < 64 << 20:
            hog.sendall(block)
            sent += len(block)
    except socket.timeout:
        return hog
    raise AssertionError("the server read %d bytes of commands whose replies were never read" % sent)


@h.test
def smtp_client_that_never_reads():
    # pipelined commands whose replies the client never reads: the server stops reading it, others go on.
    # (smtp.max_commands_before_mail raised for the case: at its 100 the session would end with 421 instead.)
    S.set_live("smtp.max_commands_before_mail", 100000, services=("smtpd",))
    try:
        hog = never_reads(S.ports["smtp"], b"", b"EHLO never-reads\r\n")
        still_serves("smtp-never-reads")  # a blocked server fails it by the client's own socket timeout
        hog.close()
    finally:
        S.set_live("smtp.max_commands_before_mail", 100, services=("smtpd",))


@h.test
def smtp_connections_per_client():
    # MAX_PER_CLIENT sessions from one address get 220; the next gets 421 4.7.0 and is closed
    socks = []
    try:
        for _ in range(MAX_PER_CLIENT):
            s = connect(S.ports["smtp"], "127.0.0.5")
            assert s.recv(4096).startswith(b"220 "), "greeting"
            socks.append(s)
        # a thousand more from the same address: every one is told 421 4.7.0 and closed
        extras = [connect(S.ports["smtp"], "127.0.0.5", timeout=10) for _ in range(1000)]
        for extra in extras:
            line = extra.recv(4096)
            assert line.startswith(b"421 4.7.0"), line
            extra.close()
        # other addresses are not affected
        still_serves("smtp-per-client")
    finally:
        for s in socks:
            s.close()
    # the slots come back once the sessions are gone
    def again():
        s = connect(S.ports["smtp"], "127.0.0.5")
        g = s.recv(4096)
        s.close()
        return g.startswith(b"220 ")
    assert h.wait_for(again, timeout=5, interval=0.2)


@h.test
def smtp_auth_brute_force_throttled_and_logged():
    src = "127.0.0.6"

    def auth_plain(password):
        """One AUTH PLAIN (smtplib's login() would try LOGIN after it too): its reply code and text."""
        c = smtplib.SMTP("127.0.0.1", S.ports["submission"], timeout=10, source_address=(src, 0))
        c.ehlo()
        c.user, c.password = "alice", password
        try:
            code, text = c.auth("PLAIN", c.auth_plain)
        except smtplib.SMTPAuthenticationError as e:
            code, text = e.smtp_code, e.smtp_error
        try:
            c.quit()
        except smtplib.SMTPException:
            pass
        return code, text
    for _ in range(MAX_FAILURES):
        code, text = auth_plain("guess")
        assert code == 535, (code, text)
    # now even the right password is refused from this address, as temporarily blocked (not as a wrong password)
    code, text = auth_plain(PW["alice"])
    assert code == 454 and text.startswith(b"4.7.0 Temporarily blocked"), (code, text)
    S.wait_log("smtpd", "authentication of alice from %s refused: " % src)
    # another address logs in
    c = smtplib.SMTP("127.0.0.1", S.ports["submission"], timeout=10)
    c.login("alice", PW["alice"])
    c.quit()
    still_serves("smtp-brute")


@h.test
def smtp_starttls_injection_not_executed():
    # CVE-2011-0411: commands pipelined after STARTTLS in the same packet must be dropped, not run inside TLS
    s = connect(S.ports["smtp"], timeout=5)
    s.recv(4096)
    s.sendall(b"EHLO x\r\nSTARTTLS\r\nMAIL FROM:<evil@outside.org>\r\nRCPT TO:<%s>\r\n" % ALICE.encode())
    got = b""
    while b"220 2.0.0" not in got:
        got += s.recv(4096)
    refuse(got.split(b"220 2.0.0", 1)[1], b"250")
    ts = tls_ctx().wrap_socket(s)
    f = ts.makefile("rwb")
    f.write(b"EHLO y\r\n")
    f.flush()
    while True:
        line = f.readline()
        assert line.startswith(b"250"), line  # no reply to the injected MAIL/RCPT comes first
        if line.startswith(b"250 "):
            break
    f.write(b"RCPT TO:<%s>\r\n" % ALICE.encode())
    f.flush()
    line = f.readline()
    assert line.startswith(b"503"), line  # the injected MAIL FROM was not executed
    ts.close()
    log = open(os.path.join(S.data, "log", "smtpd.log")).read()
    assert "after STARTTLS; discarded" in log, log[-400:]
    still_serves("smtp-starttls")


@h.test
def smtp_ldap_injection_in_addresses():
    # every injected recipient is matched literally: a valid address no one has is 550 5.1.1 (unknown), one that
    # is no address at all 553 5.1.3 (syntax); never 250, and DATA then has no recipient.
    # Five per session: smtp.max_errors (10) would end a longer session with 421.
    unknown, syntax = b"5.1.1 Recipient address rejected: unknown user", b"5.1.3 Bad recipient address syntax"
    rcpts = [("*@example.com", 550, unknown), ("alice*@example.com", 550, unknown),
             ("\"*)(mail=*\"@example.com", 550, unknown), ("\"alice.archer)(|(mail=*\"@example.com", 550, unknown),
             ("*)(objectClass=*@example.com", 553, syntax), ("alice.archer@*", 553, syntax),
             ("alice.archer@example.com)(x=*", 553, syntax), ("\"\\2a\"@example.com", 550, unknown),
             ("cn=admin,dc=example,dc=com", 553, syntax), ("uid=alice,ou=Recipients,dc=example,dc=com", 553, syntax)]
    for i in range(0, len(rcpts), 5):
        c = smtplib.SMTP("127.0.0.1", S.ports["smtp"], timeout=10)
        c.ehlo()
        code, msg = c.docmd("MAIL", "FROM:<a@b.org>")
        assert code == 250, msg
        for r, want_code, want_msg in rcpts[i:i + 5]:
            code, msg = c.docmd("RCPT", "TO:<%s>" % r)
            assert (code, msg) == (want_code, want_msg), (r, code, msg)
        code, msg = c.docmd("DATA")
        assert (code, msg) == (554, b"5.5.1 No valid recipients"), (code, msg)
        c.close()
    # injection through the envelope sender and the login: refused, not matched
    for user in ("*", "*)(uid=*", "alice*", "alice)(|(uid=*", "cn=admin,dc=example,dc=com",
                 "uid=alice,ou=Recipients,dc=example,dc=com"):
        pw = S.admin_password if user.startswith("cn=admin") else PW["alice"]
        c = smtplib.SMTP("127.0.0.1", S.ports["submission"], timeout=10, source_address=(_fresh_src(), 0))
        try:
            c.login(user, pw)
            raise AssertionError("login %r accepted" % user)
        except smtplib.SMTPAuthenticationError as e:
            assert e.smtp_code == 535, (user, e)
        c.quit()
    # SASL PLAIN with an authorisation identity of someone else: refused
    c = smtplib.SMTP("127.0.0.1", S.ports["submission"], timeout=10, source_address=(_fresh_src(), 0))
    c.ehlo()
    for authz in (b"bob", b"*", b"uid=bob,ou=Recipients,dc=example,dc=com"):
        code, msg = c.docmd("AUTH", "PLAIN " + base64.b64encode(authz + b"\0alice\0" + PW["alice"].encode()).decode())
        assert code == 535, (authz, code, msg)
    code, msg = c.docmd("MAIL", "FROM:<bob.baker@example.com>")
    assert code == 530, (code, msg)  # not logged in as anyone: submission asks for authentication
    c.quit()
    # a logged-in user cannot send as a wildcard or filter sender
    c = smtplib.SMTP("127.0.0.1", S.ports["submission"], timeout=10)
    c.login("alice", PW["alice"])
    for sender in ("*@example.com", "\"*)(mail=*\"@example.com", "bob*@example.com"):
        code, msg = c.docmd("MAIL", "FROM:<%s>" % sender)
        assert (code, msg) == (553, b"5.7.1 Sender address rejected: not owned by the authenticated user"), \
            (sender, code, msg)
        c.rset()
    c.quit()
    still_serves("smtp-ldap")


_SRC = [10]


def _fresh_src():
    """A new loopback source address, so that refused logins of one case do not throttle another."""
    _SRC[0] += 1
    return "127.0.1.%d" % _SRC[0]


# ---- IMAP ----

@h.test
def imap_bad_lines_and_literals():
    p = S.ports["imap"]
    out = exchange(p, [b"a1 " + b"A" * 100000 + b"\r\n", b"a2 NOOP\r\n"], until=(b"a1 BAD", b"a2 OK",))
    expect(out, b"a1 BAD", b"a2 OK")
    out = exchange(p, [b"a1 NO\x00OP\r\n", b"a2 NOOP\r\n"], until=(b"a1 BAD", b"a2 OK",))
    expect(out, b"a1 BAD", b"a2 OK")
    out = exchange(p, [b"a1 NOOP\ra3 LOGIN alice " + PW["alice"].encode() + b"\r\n", b"a2 NOOP\r\n"], until=(b"a1 BAD", b"a2 OK",))
    expect(out, b"a1 BAD CR not followed by LF", b"a2 OK")
    refuse(out, b"a3 OK")  # nothing after a bare CR is run as a command
    # a literal of 4 GiB before login: BAD at once, nothing is waited for
    out = exchange(p, [b"a1 LOGIN {4294967296}\r\n", b"a2 NOOP\r\n"], until=(b"a1 BAD", b"a2 OK",))
    expect(out, b"a1 BAD Literal too large", b"a2 OK")
    refuse(out, b"\r\n+ ")
    # a non-synchronising literal of 100 GB: BAD at once (what follows is the literal's, never a command)
    out = exchange(p, [b"a1 LOGIN {99999999999+}\r\n", b"x" * 1000 + b"\r\n"], until=(b"a1 ",))
    expect(out, b"a1 BAD Literal too large")
    # after login: APPEND of 100 GB is refused with BAD before any byte is sent, and the session goes on
    s = connect(p, timeout=5)
    f = s.makefile("rwb")
    f.readline()
    f.write(b"a1 LOGIN alice " + PW["alice"].encode() + b"\r\na2 APPEND INBOX {99999999999}\r\n")
    f.flush()
    assert f.readline().startswith(b"a1 OK")
    line = f.readline()
    assert line == b"a2 BAD Literal too large\r\n", line
    f.write(b"a3 NOOP\r\n")
    f.flush()
    assert f.readline().startswith(b"a3 OK")
    s.close()
    # the same over implicit TLS
    out = exchange(S.ports["imaps"], [b"a1 " + b"A" * 100000 + b"\r\n", b"a2 NOOP\r\n"], tls=True, until=(b"a1 BAD", b"a2 OK",))
    expect(out, b"a1 BAD", b"a2 OK")
    still_serves("imap-bad")


@h.test
def imap_expensive_requests_bounded():
    # requests past the parser's limits get BAD at once, not worked on: SEARCH nested 40 deep ("Lists nested too
    # deeply") or with 2000 keys ("Too many search keys"), FETCH with 100 body sections ("Too many body sections"),
    # a 60 KB sequence set, STORE with 5000 keywords ("Too many arguments")
    s = connect(S.ports["imap"], timeout=15)
    f = s.makefile("rwb")
    f.readline()
    f.write(b"a LOGIN alice " + PW["alice"].encode() + b"\r\nb SELECT INBOX\r\n")
    f.flush()
    while not f.readline().startswith(b"b "):
        pass
    cases = [
        b"c1 SEARCH " + b"(" * 40 + b"ALL" + b")" * 40,
        b"c2 SEARCH " + b" ".join([b"UNSEEN"] * 2000),
        b"c3 FETCH 1 (" + b" ".join(b"BODY.PEEK[%d]" % i for i in range(1, 101)) + b")",
        b"c4 FETCH " + b",".join(b"%d" % i for i in range(1, 70001, 1))[:60000] + b" FLAGS",
        b"c5 STORE 1 +FLAGS (" + b" ".join(b"k%d" % i for i in range(5000)) + b")",
    ]
    for c in cases:
        tag = c.split(b" ", 1)[0]
        f.write(c + b"\r\n")
        f.flush()
        while True:
            line = f.readline()
            assert line, "connection closed on %r" % tag
            if line.startswith(tag + b" "):
                break
        assert line.startswith(tag + b" BAD"), line
    f.write(b"d NOOP\r\n")
    f.flush()
    assert f.readline().startswith(b"d OK")
    s.close()
    still_serves("imap-expensive")


@h.test
def imap_client_that_never_reads():
    hog = never_reads(S.ports["imap"], b"a LOGIN alice " + PW["alice"].encode() + b"\r\na SELECT INBOX\r\n",
                      b"b FETCH 1:* (FLAGS ENVELOPE BODY.PEEK[])\r\nc CAPABILITY\r\n")
    still_serves("imap-never-reads")  # a blocked server fails it by the client's own socket timeout
    hog.close()


@h.test
def imap_pop3_many_connections_from_one_address():
    # 2000 IMAP and 1000 POP3 connections from one address are all greeted (there is no per-address limit in
    # imapd/pop3d, and both stay under their per-port cap: see docs/limits.md); a normal client still works
    socks = []
    try:
        for _ in range(1000):
            s = connect(S.ports["pop3"], "127.0.0.12", timeout=10)
            socks.append(s)
        for s in socks:
            g = s.recv(4096)
            assert g.startswith(b"+OK "), g
        for s in socks:
            s.close()
        socks = []
        for _ in range(2000):
            s = connect(S.ports["imap"], "127.0.0.12", timeout=10)
            socks.append(s)
        for s in socks:
            g = s.recv(4096)
            assert g.startswith(b"* OK "), g
        still_serves("imap-many")
    finally:
        for s in socks:
            s.close()


@h.test
def imap_brute_force_throttled_and_logged():
    src = "127.0.0.8"
    for _ in range(MAX_FAILURES):
        out = exchange(S.ports["imap"], [b"t LOGIN alice guess\r\n"], src=src, until=(b"t NO",))
        expect(out, b"t NO [AUTHENTICATIONFAILED]")
    out = exchange(S.ports["imap"], [b"t LOGIN alice " + PW["alice"].encode() + b"\r\n"], src=src, until=(b"t ",))
    expect(out, b"t NO [UNAVAILABLE] Temporarily blocked after too many failed logins")
    S.wait_log("imapd", "login refused from " + src)
    still_serves("imap-brute")


@h.test
def imap_starttls_injection_not_executed():
    s = connect(S.ports["imap"], timeout=5)
    s.recv(4096)
    s.sendall(b"a STARTTLS\r\nb LOGIN alice " + PW["alice"].encode() + b"\r\nc SELECT INBOX\r\n")
    got = b""
    while b"a OK" not in got:
        got += s.recv(4096)
    refuse(got, b"b OK", b"b NO", b"c ")
    ts = tls_ctx().wrap_socket(s)
    f = ts.makefile("rwb")
    f.write(b"d SELECT INBOX\r\n")
    f.flush()
    line = f.readline()
    # not logged in: the injected LOGIN did not run
    assert line.startswith(b"d BAD Log in first"), line
    ts.close()
    still_serves("imap-starttls")


@h.test
def imap_ldap_injection_in_login():
    for user, pw in (("*", "x"), ("*)(uid=*", "x"), ("alice*", PW["alice"]), ("alice)(|(uid=*", PW["alice"]),
                     ("al*ce", PW["alice"]), ("cn=admin,dc=example,dc=com", S.admin_password),
                     ("uid=alice,ou=Recipients,dc=example,dc=com", PW["alice"]), ("alice\\2a", PW["alice"]),
                     ("*@example.com", PW["alice"])):
        q = lambda v: b'"' + v.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'  # noqa: E731
        out = exchange(S.ports["imap"], [b"t LOGIN " + q(user) + b" " + q(pw) + b"\r\n"], src=_fresh_src(), until=(b"t ",))
        expect(out, b"t NO [AUTHENTICATIONFAILED]")
    # AUTHENTICATE PLAIN with someone else's authorisation identity, and a wildcard one
    for authz in (b"bob", b"*", b"uid=bob,ou=Recipients,dc=example,dc=com"):
        ir = base64.b64encode(authz + b"\0alice\0" + PW["alice"].encode())
        out = exchange(S.ports["imap"], [b"t AUTHENTICATE PLAIN " + ir + b"\r\n", b"u SELECT INBOX\r\n"],
                       src=_fresh_src(), until=(b"u ",))
        expect(out, b"t NO [AUTHENTICATIONFAILED]", b"u BAD Log in first")
    still_serves("imap-ldap")


# ---- POP3 ----

@h.test
def pop3_bad_lines():
    p = S.ports["pop3"]
    capa = b"+OK Capability list follows\r\n"
    out = exchange(p, [b"USER " + b"A" * 5000 + b"\r\n", b"CAPA\r\n"], until=(b"\r\n.\r\n",))
    expect(out, b"-ERR Line too long\r\n" + capa)
    out = exchange(p, [b"US\x00ER alice\r\n", b"CAPA\r\n"], until=(b"\r\n.\r\n",))
    expect(out, b"-ERR NUL byte in command\r\n" + capa)
    # bare LF ends a POP3 line (tolerated like IMAP); a bare CR does not
    out = exchange(p, [b"CAPA\n", b"NOOP\r\n"], until=(b"-ERR",))
    expect(out, capa, b"\r\n.\r\n-ERR Log in first.")
    out = exchange(p, [b"USER alice\rPASS " + PW["alice"].encode() + b"\r\n", b"STAT\r\n"],
                   until=(b"-ERR Log in first.",))
    expect(out, b"-ERR Control character in command\r\n-ERR Log in first.")
    out = exchange(S.ports["pop3s"], [b"USER " + b"A" * 5000 + b"\r\n", b"CAPA\r\n"], tls=True, until=(b"\r\n.\r\n",))
    expect(out, b"-ERR Line too long\r\n" + capa)
    still_serves("pop3-bad")


@h.test
def pop3_brute_force_throttled():
    src = "127.0.0.9"
    for _ in range(MAX_FAILURES):
        out = exchange(S.ports["pop3"], [b"USER alice\r\n", b"PASS guess\r\n"], src=src, until=(b"-ERR",))
        expect(out, b"-ERR [AUTH]")
    out = exchange(S.ports["pop3"], [b"USER alice\r\n", b"PASS " + PW["alice"].encode() + b"\r\n"], src=src, until=(b"-ERR [LOGIN-DELAY]",))
    expect(out, b"-ERR [LOGIN-DELAY]")
    still_serves("pop3-brute")


@h.test
def pop3_stls_injection_not_executed():
    s = connect(S.ports["pop3"], timeout=5)
    s.recv(4096)
    s.sendall(b"STLS\r\nUSER alice\r\n")
    got = b""
    while b"+OK" not in got:
        got += s.recv(4096)
    ts = tls_ctx().wrap_socket(s)
    f = ts.makefile("rwb")
    f.write(b"PASS " + PW["alice"].encode() + b"\r\n")
    f.flush()
    line = f.readline()
    assert line.startswith(b"-ERR USER first"), line  # the injected USER was dropped
    ts.close()
    still_serves("pop3-stls")


@h.test
def pop3_ldap_injection_in_user():
    refused = b"+OK Send your password.\r\n-ERR [AUTH] Authentication failed.\r\n"
    for user, pw, answer in (("*", "x", refused), ("alice)(uid=*", PW["alice"], refused), ("*)(|(uid=*", "x", refused),
                             ("al*", PW["alice"], refused), ("cn=admin,dc=example,dc=com", S.admin_password, refused),
                             # past POP3's 40-byte argument: refused before any lookup
                             ("uid=alice,ou=Recipients,dc=example,dc=com", PW["alice"],
                              b"-ERR Argument too long\r\n-ERR USER first.\r\n")):
        out = exchange(S.ports["pop3"], [b"USER " + user.encode() + b"\r\n", b"PASS " + pw.encode() + b"\r\n"],
                       src=_fresh_src(), until=(answer,))
        assert out.endswith(b"ready.\r\n" + answer), (user, out)
    ir = base64.b64encode(b"bob\0alice\0" + PW["alice"].encode())
    out = exchange(S.ports["pop3"], [b"AUTH PLAIN " + ir + b"\r\n", b"STAT\r\n"], src=_fresh_src(),
                   until=(b"-ERR Log in first.",))
    expect(out, b"-ERR [AUTH] Authentication failed.\r\n-ERR Log in first.")
    still_serves("pop3-ldap")


# ---- slow-loris peers (threads started in setup) ----

@h.test
def smtp_slow_loris_closed_by_idle_timeout():
    # (the peers were started in setup: a command trickled byte by byte, and a message body inside DATA)
    for k in SMTP_LORIS:
        assert h.wait_for(lambda: LORIS.get(k, {}).get("closed_after") is not None or "error" in LORIS.get(k, {}),
                          timeout=SMTP_IDLE + 10, interval=0.05), "%s slow-loris never closed" % k
        r = LORIS[k]
        # 421 4.4.2 and a close at the idle timeout, although a byte arrives every 300 ms
        assert r["closed_after"] is not None and SMTP_IDLE <= r["closed_after"] < SMTP_IDLE + 3, (k, r)
        assert r["got"].endswith(b"\r\n421 4.4.2 mail.example.com Idle timeout, closing connection\r\n"), (k, r)
    still_serves("smtp-loris")



@h.test
def prelogin_slow_loris_closed():
    for proto in ("imap", "pop3"):
        assert h.wait_for(lambda: proto in LORIS and (LORIS[proto]["closed_after"] is not None
                                                       or "error" in LORIS[proto]),
                          timeout=PRELOGIN_SILENCE + 10, interval=0.05), "%s slow-loris never closed" % proto
        r = LORIS[proto]
        # closed by the login timeout: not before it, and soon after it although a byte arrives every 300 ms
        assert r["closed_after"] is not None and PRELOGIN_SILENCE <= r["closed_after"] < PRELOGIN_SILENCE + 3, \
            (proto, r)
        assert r["got"].endswith({"imap": b"\r\n* BYE Idle for too long.\r\n",
                                  "pop3": b"\r\n-ERR Idle for too long; bye.\r\n"}[proto]), (proto, r)
    still_serves("loris")


@h.test
def overload_greeting_past_connection_limit():
    """smtp.max_connections is live: lowered, the next peer past it hears 421; raised again, it is served."""

    def fourth_reply():
        socks = []
        try:
            for _ in range(3):
                s = connect(S.ports["smtp"], _fresh_src())
                assert s.recv(4096).startswith(b"220 ")
                socks.append(s)
            extra = connect(S.ports["smtp"], _fresh_src(), timeout=3)
            socks.append(extra)
            return extra.recv(4096)
        finally:
            for s in socks:
                s.close()

    S.set_live("smtp.max_connections", 3, services=("smtpd",))
    try:
        # past the cap: a proper temporary failure, not silence
        line = fourth_reply()
        assert line.startswith(b"421 4.3.2 Too many connections"), line
    finally:
        S.set_live("smtp.max_connections", 1000, services=("smtpd",))
    line = fourth_reply()
    assert line.startswith(b"220 "), line


def _primary(login):
    r = S.ldapsearch("(uid=%s)" % login, "mail", bind_dn=S.admin_dn, password=S.admin_password)
    es = h.entries(r.stdout)
    return es[0].get("mail", [None])[0] if es else None


@h.test
def corrupted_directory_entries_get_clear_answers():
    """Entries an administrator damaged by hand (a mailbox GUID that is not one, a home server that does not
    exist, a negative quota) are answered in words by every service, and nothing crashes."""
    for u in ("mallory", "trent"):
        S.cli("user", "add", u, "--given", u.capitalize(), "--surname", "Damaged", "--password", "pw-" + u,
              check=True)
    addr = {u: h.wait_for(lambda: _primary(u), timeout=5) for u in ("mallory", "trent")}
    assert all(addr.values()), addr
    # trent's change first: the replica applies changes in order, so once smtpd answers for mallory's (waited for
    # below) it has trent's too
    r = S.ldapmodify("dn: %s\nchangetype: modify\nreplace: ixHomeServer\nixHomeServer: cn=nowhere,%s\n"
                     % (S.user_dn("trent"), S.suffix))
    assert r.returncode == 0, r.stderr
    r = S.ldapmodify("dn: %s\nchangetype: modify\nreplace: ixMailboxGuid\nixMailboxGuid: not-a-guid!\n-\n"
                     "replace: ixQuotaBytes\nixQuotaBytes: -5\n" % S.user_dn("mallory"))
    assert r.returncode == 0, r.stderr

    def stored_answer():
        try:
            c = smtplib.SMTP("127.0.0.1", S.ports["smtp"], timeout=10)
            try:
                c.sendmail("x@example.org", [addr["mallory"]], "Subject: damaged\r\n\r\nhi\r\n")
            finally:
                c.close()
        except smtplib.SMTPDataError as e:
            return e
        return None

    # the bad GUID: a permanent refusal that says why (once the replica has the change)
    e = h.wait_for(stored_answer, timeout=5, interval=0.2)
    assert e is not None and e.smtp_code // 100 == 5 and b"32 hex digits" in e.smtp_error, e
    m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=10)
    m.login("mallory", "pw-mallory")
    typ, data = m.select("INBOX")
    assert typ == "NO" and b"32 hex digits" in data[0], (typ, data)
    m.logout()
    # the unknown home server: kept in the queue and retried, never bounced or lost
    c = smtplib.SMTP("127.0.0.1", S.ports["smtp"], timeout=10)
    c.sendmail("x@example.org", [addr["trent"]], "Subject: homeless\r\n\r\nhi\r\n")
    c.quit()
    q = h.wait_for(lambda: "Home server of the recipient is unknown" in S.cli("queue", "list").stdout, timeout=10,
                   interval=0.2)
    assert q, S.cli("queue", "list").stdout
    st = S.cli("status", "--json")
    assert st.returncode == 0, st.stderr
    states = {x["name"]: x["state"] for x in json.loads(st.stdout)["services"]}
    assert all(v == "running" for v in states.values()), states
    still_serves("damaged")

if __name__ == "__main__":
    h.main("hostile")
