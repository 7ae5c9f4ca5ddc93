#!/usr/bin/env python3
# test_proxy.py - IMAP, POP3 and ManageSieve logins on a server that is not the mailbox's home are proxied to the
# home server: two servers of one organisation on this machine (A, and B joined to it), a user homed on B who reads,
# flags, appends, idles and deletes through A's IMAP and POP3 ports (plain on loopback, IMAPS and STARTTLS at the
# front) and keeps Sieve scripts on B through A's ManageSieve port, a wrong password refused at A without a
# connection to B, and B down answered with a temporary error. BURL at A of a URL of the mailbox on B: A fetches it
# from B by URLFETCH, signed in there for the user as a server.
import base64
import imaplib
import os
import poplib
import re
import smtplib
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Joined, System, entries, main, setup, test, wait_for  # noqa: E402

A = B = None
USER, PW = "hana", "pw-hana-Secret"
ADDR = None
# B's host name is its address: A connects to HOST:IMAP-PORT (this machine resolves no made-up names)
B_HOST = "127.0.0.1"


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def deliver(subject, body="hello through the proxy\r\n", system=None):
    """Sends one message to the user through the SMTP port of system (B by default: it is the home)."""
    s = system or B
    c = smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=20)
    try:
        c.sendmail("someone@outside.example", [ADDR],
                   "From: someone@outside.example\r\nTo: %s\r\nSubject: %s\r\n\r\n%s" % (ADDR, subject, body))
    finally:
        c.quit()


def on_b(fn):
    """Runs fn(imap) in a session on B directly (not through the proxy)."""
    m = imaplib.IMAP4("127.0.0.1", B.ports["imap"], timeout=20)
    try:
        m.login(USER, PW)
        return fn(m)
    finally:
        m.logout()


def b_count():
    return on_b(lambda m: int(m.select("INBOX")[1][0]))


def log_of(system, name):
    path = os.path.join(system.data, "log", name + ".log")
    return open(path, errors="replace").read() if os.path.exists(path) else ""


@setup
def two_servers_and_a_user_homed_on_b():
    global A, B, ADDR
    A = System(domain="proxy.example", admin_password="org-admin-pw")
    B = Joined(A, B_HOST)
    p = B.cli("user", "add", USER, "--given", "Hana", "--surname", "Home", "--password", PW)
    assert p.returncode == 0, p.stdout + p.stderr

    def known_on_a():
        out = A.ldapsearch("(uid=%s)" % USER, "mail", "ixHomeServer", bind_dn=A.admin_dn, password=A.admin_password)
        e = entries(out.stdout)
        return e[0] if e and "mail" in e[0] else None
    e = wait_for(known_on_a, timeout=15)
    assert e, "the user homed on B did not reach A with an address"
    assert B_HOST in e["ixhomeserver"][0], e
    ADDR = e["mail"][0]
    # sent to A's SMTP port: A relays it to the home server, where A's IMAP port will read it (proxied)
    deliver("first message", system=A)
    assert wait_for(lambda: b_count() == 1, timeout=15), "the message did not arrive in B's store"


@test
def imap_on_a_reads_and_flags_the_mailbox_on_b():
    m = imaplib.IMAP4("127.0.0.1", A.ports["imap"], timeout=20)
    typ, data = m.login(USER, PW)
    assert typ == "OK", data
    # the capabilities after login are B's post-login ones (the tagged OK carries them)
    typ, capdata = m.capability()
    assert b"UIDPLUS" in capdata[0] and b"AUTH=PLAIN" not in capdata[0], capdata
    typ, data = m.select("INBOX")
    assert typ == "OK" and data[0] == b"1", data
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK" and b"first message" in data[0][1], data
    typ, data = m.store("1", "+FLAGS", "(\\Flagged)")
    assert typ == "OK", data
    m.logout()
    flags = on_b(lambda b: (b.select("INBOX"), b.fetch("1", "(FLAGS)"))[1][1][0])
    assert b"\\Flagged" in flags, flags
    # A keeps no mailbox of its own for the user, and logs the proxied session with its byte counts
    assert wait_for(lambda: re.search(r"proxy %s from 127\.0\.0\.1 to %s .*ended .*bytes from the client"
                                      % (USER, re.escape(B_HOST)), log_of(A, "imapd")), timeout=5), \
        log_of(A, "imapd")[-2000:]


@test
def large_append_and_fetch_through_the_proxy():
    # bigger than every buffer on the way (back-pressure both ways)
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrs\r\n"
    body = b"From: big@outside.example\r\nSubject: big one\r\n\r\n" + line * 12000  # about 1.1 MB
    m = imaplib.IMAP4("127.0.0.1", A.ports["imap"], timeout=30)
    m.login(USER, PW)
    typ, data = m.append("INBOX", None, None, body)
    assert typ == "OK", data
    m.select("INBOX")
    typ, data = m.search(None, "SUBJECT", '"big one"')
    assert typ == "OK" and data[0] == b"2", data  # after "first message"
    typ, data = m.fetch("2", "(BODY.PEEK[])")
    assert typ == "OK" and data[0][1] == body, (typ, len(data[0][1]) if data and data[0] else None)
    typ, data = m.store("2", "+FLAGS", "(\\Deleted)")
    assert typ == "OK", data
    typ, data = m.expunge()
    assert typ == "OK" and data == [b"2"], data
    m.logout()
    assert b_count() == 1, "the expunge through A did not reach B"


@test
def imaps_starttls_and_authenticate_at_the_front():
    m = imaplib.IMAP4_SSL("127.0.0.1", A.ports["imaps"], ssl_context=tls_ctx(), timeout=20)
    m.login(USER, PW)
    typ, data = m.select("INBOX", readonly=True)
    assert typ == "OK" and data[0] == b"1", data
    m.logout()
    m = imaplib.IMAP4("127.0.0.1", A.ports["imap"], timeout=20)
    m.starttls(ssl_context=tls_ctx())
    typ, data = m.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (USER, PW)).encode())
    assert typ == "OK", data
    typ, data = m.select("INBOX", readonly=True)
    assert typ == "OK" and data[0] == b"1", data
    m.logout()


def read_until(sock, pattern, timeout=15):
    buf = b""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, buf):
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %r; got %r" % (pattern, buf[-500:]))
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed waiting for %r; got %r" % (pattern, buf[-500:]))
        buf += chunk
    return buf


@test
def idle_through_a_sees_mail_delivered_to_b():
    s = socket.create_connection(("127.0.0.1", A.ports["imap"]), timeout=20)
    try:
        read_until(s, rb"\* OK")
        s.sendall(b"a LOGIN %s %s\r\nb SELECT INBOX\r\n" % (USER.encode(), PW.encode()))  # pipelined
        buf = read_until(s, rb"b OK")
        assert b"a OK [CAPABILITY" in buf and b"* 1 EXISTS" in buf, buf
        s.sendall(b"c IDLE\r\n")
        read_until(s, rb"\+ ")
        deliver("during idle")
        read_until(s, rb"\* 2 EXISTS")
        s.sendall(b"DONE\r\n")
        read_until(s, rb"c OK")
        s.sendall(b"d LOGOUT\r\n")
        read_until(s, rb"d OK")
    finally:
        s.close()


@test
def pop3_on_a_lists_retrieves_and_deletes_on_b():
    n = b_count()
    assert n == 2, n
    p = poplib.POP3("127.0.0.1", A.ports["pop3"], timeout=20)
    p.user(USER)
    resp = p.pass_(PW)
    assert resp.startswith(b"+OK") and b"2 messages" in resp, resp
    count, size = p.stat()
    assert count == 2, (count, size)
    resp, listing, _ = p.list()
    assert len(listing) == 2, listing
    resp, lines, _ = p.retr(2)
    assert b"Subject: during idle" in lines, lines
    p.dele(1)
    p.quit()
    assert b_count() == 1, "the deletion through A did not reach B"
    # AUTH PLAIN at the front (initial response), over POP3S
    p = poplib.POP3_SSL("127.0.0.1", A.ports["pop3s"], context=tls_ctx(), timeout=20)
    ir = base64.b64encode(("\0%s\0%s" % (USER, PW)).encode()).decode()
    resp = p._shortcmd("AUTH PLAIN " + ir)
    assert resp.startswith(b"+OK"), resp
    count, size = p.stat()
    assert count == 1, (count, size)
    p.quit()


@test
def burl_at_a_fetches_the_draft_from_b():
    """BURL (RFC 4468) at A of a URL of the user's mailbox on B: A signs in at B as a server of the organisation for
    the user (SASL EXTERNAL) and fetches it by URLFETCH, which B answers for submit+USER to that session only."""
    imaplib.Commands.setdefault("GENURLAUTH", ("AUTH", "SELECTED"))
    msg = "From: %s\r\nTo: %s\r\nSubject: burl across servers\r\n\r\ndrafted on B\r\n" % (ADDR, ADDR)

    def authorise(b):
        typ, data = b.append("Drafts", None, None, msg.encode())
        assert typ == "OK", data
        uid = int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1))
        rump = "imap://%s@%s/Drafts/;uid=%d;urlauth=submit+%s" % (USER, B_HOST, uid, USER)
        typ, data = b._simple_command("GENURLAUTH", '"%s"' % rump, "INTERNAL")
        assert typ == "OK", data
        return b._untagged_response(typ, data, "GENURLAUTH")[1][0].decode().strip().strip('"')
    url = on_b(authorise)

    def burl(u):
        c = smtplib.SMTP("127.0.0.1", A.ports["submission"], timeout=30)
        try:
            c.ehlo("client.test")
            c.login(USER, PW)
            assert c.mail(ADDR)[0] == 250 and c.rcpt(ADDR)[0] == 250
            code, text = c.docmd("BURL", u + " LAST")
            return code, text.decode()
        finally:
            c.close()
    before = b_count()
    code, text = burl(url)
    assert code == 250, (code, text)
    assert wait_for(lambda: b_count() == before + 1, timeout=15), "the message did not arrive in B's store"
    body = on_b(lambda b: (b.select("INBOX"), b.fetch(str(before + 1), "(BODY.PEEK[TEXT])"))[1][1][0][1])
    assert body == b"drafted on B\r\n", body
    assert re.search(r"login for %s from 127\.0\.0\.1 by the server .* \(SASL EXTERNAL\)" % USER,
                     log_of(B, "imapd")), log_of(B, "imapd")[-2000:]
    # a verifier changed: B answers NIL, A refuses
    code, text = burl(url[:-1] + ("0" if url[-1] != "0" else "1"))
    assert code == 554 and "5.6.6" in text, (code, text)
    assert "answered NIL" in log_of(A, "smtpd"), log_of(A, "smtpd")[-2000:]


@test
def login_referral_when_proxying_is_off():
    """imap.proxy 0 on A: a login of the user homed on B is answered NO [REFERRAL imap://USER;AUTH=*@B/] (RFC 2221)
    instead of being piped; POP3 is still piped; back to 1, the proxy again."""
    assert b"LOGIN-REFERRALS" in imaplib.IMAP4("127.0.0.1", A.ports["imap"], timeout=20).capability()[1][0]
    A.set_live("imap.proxy", 0, services=("imapd",))
    want = "[REFERRAL imap://%s;AUTH=*@%s:%d/]" % (USER, B_HOST, B.ports["imap"])

    def referred():
        m = imaplib.IMAP4("127.0.0.1", A.ports["imap"], timeout=20)
        try:
            m.login(USER, PW)
            m.logout()
            return None
        except imaplib.IMAP4.error as e:
            return str(e) if want in str(e) else None
    try:
        text = wait_for(referred, timeout=15)
        assert text, "no referral after imap.proxy 0"
        p = poplib.POP3("127.0.0.1", A.ports["pop3"], timeout=20)
        p.user(USER)
        assert p.pass_(PW).startswith(b"+OK"), "POP3 is not piped with imap.proxy 0"
        p.quit()
        # the user's password was still checked at A: a wrong one is no referral
        m = imaplib.IMAP4("127.0.0.1", A.ports["imap"], timeout=20)
        try:
            m.login(USER, "wrong-password")
            assert False, "a wrong password was accepted"
        except imaplib.IMAP4.error as e:
            assert "REFERRAL" not in str(e) and "AUTHENTICATIONFAILED" in str(e), str(e)
    finally:
        A.set_live("imap.proxy", 1, services=("imapd",))
    def piped():
        m = imaplib.IMAP4("127.0.0.1", A.ports["imap"], timeout=20)
        try:
            return m.login(USER, PW)[0] == "OK"
        except imaplib.IMAP4.error:
            return False
        finally:
            try:
                m.logout()
            except Exception:  # noqa: BLE001 - a refused login leaves nothing to log out of
                pass
    assert wait_for(piped, timeout=15), "not piped again after imap.proxy 1"


@test
def managesieve_on_a_keeps_the_scripts_on_b():
    """ManageSieve at A for the user homed on B: the session is B's (STARTTLS and EXTERNAL between the servers)."""
    sock = socket.create_connection(("127.0.0.1", A.ports["sieve"]), timeout=20)
    f = sock.makefile("rb")

    def response():
        lines = []
        while True:
            line = f.readline().decode()
            assert line, lines
            lines.append(line.rstrip("\r\n"))
            if line.split(" ", 1)[0].strip() in ("OK", "NO", "BYE"):
                return lines
    try:
        assert response()[-1].startswith("OK")
        ir = base64.b64encode(("\0%s\0%s" % (USER, PW)).encode()).decode()
        sock.sendall(('AUTHENTICATE "PLAIN" "%s"\r\n' % ir).encode())
        assert response()[-1].startswith("OK"), "the login through A was refused"
        script = 'require "fileinto";\r\nfileinto "Proxied";\r\n'
        sock.sendall(('PUTSCRIPT "via-a" {%d+}\r\n%s\r\nSETACTIVE "via-a"\r\nCAPABILITY\r\n' %
                      (len(script), script)).encode())
        assert response() == ['OK "Stored."'] and response() == ['OK "Active."']
        assert '"OWNER" "%s"' % USER in response()
        sock.sendall(b"LOGOUT\r\n")
        assert response() == ['OK "Bye."']
    finally:
        sock.close()
    assert B.cli("user", "sieve", USER).stdout.strip() == "via-a (active)"
    assert "via-a" not in A.cli("user", "sieve", USER).stdout
    assert "login for %s from 127.0.0.1 by the server" % USER in log_of(B, "managesieved")


@test
def wrong_password_is_refused_at_a_without_asking_b():
    before = log_of(B, "imapd").count("login failed"), log_of(B, "pop3d").count("login failed")
    m = imaplib.IMAP4("127.0.0.1", A.ports["imap"], timeout=20)
    try:
        m.login(USER, "wrong-password")
        raise AssertionError("a wrong password logged in")
    except imaplib.IMAP4.error as e:
        assert "AUTHENTICATIONFAILED" in str(e), e
    m.logout()
    p = poplib.POP3("127.0.0.1", A.ports["pop3"], timeout=20)
    p.user(USER)
    try:
        p.pass_("wrong-password")
        raise AssertionError("a wrong password logged in")
    except poplib.error_proto as e:
        assert "[AUTH]" in str(e), e
    p.quit()
    assert "login failed for %s" % USER in log_of(A, "imapd")
    after = log_of(B, "imapd").count("login failed"), log_of(B, "pop3d").count("login failed")
    assert before == after, "B saw a login attempt"


@test
def home_server_down_gives_a_temporary_error():
    B.stop()
    # a front that hung on the dead home would fail this test by the clients' own timeouts, not by a clock here
    m = imaplib.IMAP4("127.0.0.1", A.ports["imap"], timeout=20)
    try:
        m.login(USER, PW)
        raise AssertionError("logged in while the home server is down")
    except imaplib.IMAP4.error as e:
        assert "[UNAVAILABLE]" in str(e), e
    # the session goes on at A: a later command is answered
    typ, _ = m.noop()
    assert typ == "OK"
    m.logout()
    p = poplib.POP3("127.0.0.1", A.ports["pop3"], timeout=20)
    p.user(USER)
    try:
        p.pass_(PW)
        raise AssertionError("logged in while the home server is down")
    except poplib.error_proto as e:
        assert "[SYS/TEMP]" in str(e), e
    p.quit()
    assert "not proxied to the home server" in log_of(A, "imapd")


if __name__ == "__main__":
    main("proxy")
