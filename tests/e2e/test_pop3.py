"""test_pop3.py - ix-pop3d end to end with python3's poplib: CAPA, USER/PASS by login and address, AUTH PLAIN,
STLS and POP3S, STAT/LIST/UIDL/TOP/RETR with dot-stuffing, DELE applied at QUIT only, UIDL stable across
sessions, a concurrent IMAP session on the same Inbox, throttling and bad input."""
import base64
import imaplib
import os
import poplib
import socket
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import System, main, test, wait_for  # noqa: E402

S = None
PW = "pw-erin555"


def imap_login_ok():
    try:
        m = imaplib.IMAP4("127.0.0.1", S.ports["imap"])
        m.login("erin", PW)
        m.logout()
        return True
    except (imaplib.IMAP4.error, OSError):
        return False


def system():
    global S
    if S is None:
        S = System()
        S.cli("user", "add", "erin", "--given", "Erin", "--surname", "Evans", "--password", PW, check=True)
        assert wait_for(imap_login_ok, 10.0, 0.5), "user not ready"
        m = imaplib.IMAP4("127.0.0.1", S.ports["imap"])
        m.login("erin", PW)
        for i in range(3):
            body = "line one\r\n.starts with a dot\r\nline %d\r\n" % i
            m.append("INBOX", None, None, ("From: x@example.org\r\nSubject: pop %d\r\n\r\n%s" % (i, body)).encode())
        m.logout()
    return S


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def pop(user="erin"):
    p = poplib.POP3("127.0.0.1", system().ports["pop3"])
    p.user(user)
    p.pass_(PW)
    return p


@test
def capa_and_login_variants():
    s = system()
    p = poplib.POP3("127.0.0.1", s.ports["pop3"])
    caps = p.capa()
    for c in ("TOP", "UIDL", "USER", "SASL", "STLS", "RESP-CODES"):
        assert c in caps, caps
    p.user("erin.evans@example.com")
    assert p.pass_(PW).startswith(b"+OK")
    p.quit()
    p = poplib.POP3("127.0.0.1", s.ports["pop3"])
    p.user("erin")
    try:
        p.pass_("wrong")
        raise AssertionError("wrong password accepted")
    except poplib.error_proto as e:
        assert b"[AUTH]" in e.args[0], e
    p.quit()
    # AUTH PLAIN with an initial response
    sock = socket.create_connection(("127.0.0.1", s.ports["pop3"]), timeout=10)
    f = sock.makefile("rwb")
    f.readline()
    f.write(b"AUTH PLAIN " + base64.b64encode(b"\0erin\0" + PW.encode()) + b"\r\nSTAT\r\nQUIT\r\n")
    f.flush()
    assert f.readline().startswith(b"+OK"), "AUTH PLAIN"
    assert f.readline().startswith(b"+OK 3 "), "STAT"
    sock.close()


@test
def stls_and_pop3s():
    s = system()
    p = poplib.POP3("127.0.0.1", s.ports["pop3"])
    p.stls(context=tls_ctx())
    assert "STLS" not in p.capa()
    p.user("erin")
    p.pass_(PW)
    assert p.stat()[0] == 3
    p.quit()
    p = poplib.POP3_SSL("127.0.0.1", s.ports["pop3s"], context=tls_ctx())
    p.user("erin")
    p.pass_(PW)
    assert p.stat()[0] == 3
    p.quit()


@test
def curl_over_every_port():
    """curl as a third client: STARTTLS (--ssl-reqd) and implicit TLS on the IMAP and POP3 ports."""
    import subprocess
    s = system()
    base = ["curl", "-s", "-k", "--max-time", "10", "-u", "erin:" + PW]
    r = subprocess.run(base + ["--ssl-reqd", "imap://127.0.0.1:%d/INBOX/;UID=1" % s.ports["imap"]],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "Subject: pop" in r.stdout, (r.returncode, r.stderr, r.stdout[:200])
    r = subprocess.run(base + ["imaps://127.0.0.1:%d/" % s.ports["imaps"]], capture_output=True, text=True)
    assert r.returncode == 0 and "INBOX" in r.stdout, (r.returncode, r.stderr)
    r = subprocess.run(base + ["--ssl-reqd", "pop3://127.0.0.1:%d/" % s.ports["pop3"]], capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stdout.strip(), (r.returncode, r.stderr)
    r = subprocess.run(base + ["pop3s://127.0.0.1:%d/1" % s.ports["pop3s"]], capture_output=True, text=True)
    assert r.returncode == 0 and "Subject: pop" in r.stdout, (r.returncode, r.stderr)


@test
def list_uidl_top_retr():
    p = pop()
    count, size = p.stat()
    assert count == 3 and size > 0
    resp, lines, _ = p.list()
    assert len(lines) == 3
    resp, uidls, _ = p.uidl()
    assert len(uidls) == 3 and len(set(u.split()[1] for u in uidls)) == 3, uidls
    resp, lines, octets = p.retr(2)
    assert b"Subject: pop 1" in lines and b".starts with a dot" in lines, lines
    resp, lines, _ = p.top(1, 1)
    assert b"Subject: pop 0" in lines and b"line one" in lines and b"line 0" not in lines, lines
    try:
        p.retr(9)
        raise AssertionError("RETR 9 accepted")
    except poplib.error_proto:
        pass
    p.quit()
    # what RETR sent is \Seen for IMAP clients afterwards; TOP is not
    m = imaplib.IMAP4("127.0.0.1", system().ports["imap"])
    m.login("erin", PW)
    m.select("INBOX", True)
    typ, data = m.fetch("2:3", "(FLAGS)")
    assert b"\\Seen" in data[0] and b"\\Seen" not in data[1], data
    m.logout()


@test
def dele_at_quit_only_and_uidl_stable():
    s = system()
    p = pop()
    before = p.uidl()[1]
    p.dele(1)
    try:
        p.retr(1)
        raise AssertionError("deleted message retrieved")
    except poplib.error_proto:
        pass
    p.rset()
    p.dele(1)
    # a concurrent IMAP session still sees the message until QUIT
    m = imaplib.IMAP4("127.0.0.1", s.ports["imap"])
    m.login("erin", PW)
    typ, data = m.select("INBOX")
    assert data[0] == b"3", data
    # a second POP3 session that drops its connection deletes nothing
    q = pop()
    q.dele(2)
    q.sock.shutdown(socket.SHUT_WR)
    assert q.sock.recv(1024) == b"", "the server did not end the dropped session"  # it has seen the drop
    q.sock.close()
    p.quit()
    p = pop()
    after = p.uidl()[1]
    assert len(after) == 2 and after[0].split()[1] == before[1].split()[1], (before, after)
    assert after[1].split()[1] == before[2].split()[1]
    p.quit()
    typ, data = m.noop()
    assert m.untagged_responses.pop("EXPUNGE", None) == [b"1"], m.untagged_responses
    # IMAP expunges a message a POP3 session has in its snapshot: RETR fails cleanly, QUIT works
    p = pop()
    m.store("1", "+FLAGS", "\\Deleted")
    m.expunge()
    try:
        p.retr(1)
        raise AssertionError("expunged message retrieved")
    except poplib.error_proto as e:
        assert b"removed" in e.args[0], e
    p.dele(2)
    assert p.quit().startswith(b"+OK")
    m.logout()


@test
def login_throttling_per_address():
    s = system()

    def attempt(pw):
        sock = socket.socket()
        sock.bind(("127.0.0.10", 0))
        sock.connect(("127.0.0.1", s.ports["pop3"]))
        f = sock.makefile("rwb")
        f.readline()
        f.write(b"USER erin\r\nPASS " + pw.encode() + b"\r\n")
        f.flush()
        f.readline()
        line = f.readline()
        sock.close()
        return line
    for _ in range(10):
        assert b"[AUTH]" in attempt("wrong")
    line = attempt(PW)
    assert line.startswith(b"-ERR [LOGIN-DELAY]"), line
    assert pop().quit().startswith(b"+OK")  # other addresses are not affected


@test
def bad_input_and_wrong_state():
    s = system()
    m = imaplib.IMAP4("127.0.0.1", s.ports["imap"])  # a message 1 for DELE
    m.login("erin", PW)
    assert m.append("INBOX", None, None, b"Subject: for bad input\r\n\r\nx\r\n")[0] == "OK"
    m.logout()
    sock = socket.create_connection(("127.0.0.1", s.ports["pop3"]), timeout=10)
    sock.recv(1024)
    sock.sendall(b"STAT\r\nRETR 1\r\nFOO\r\nPASS x\r\nUSER " + b"a" * 500 + b"\r\nAPOP a b\r\nNOOP\r\n"
                 b"USER erin\r\nPASS " + PW.encode() + b"\r\nRETR 0\r\nTOP 1 -1\r\nLIST 99999999999\r\nDELE 1\r\n"
                 b"DELE 1\r\nRSET\r\nQUIT\r\n")
    out = b""
    while True:  # until the server closes the session after QUIT
        d = sock.recv(65536)
        if not d:
            break
        out += d
    lines = out.split(b"\r\n")
    assert lines[8].startswith(b"+OK Logged in; "), lines
    lines[8] = b"+OK Logged in; N messages."
    assert lines == [
        b"-ERR Log in first.", b"-ERR Log in first.", b"-ERR Unknown command", b"-ERR USER first.",
        b"-ERR Line too long", b"-ERR Invalid APOP digest", b"-ERR Log in first.", b"+OK Send your password.",
        b"+OK Logged in; N messages.", b"-ERR Invalid message number", b"-ERR Invalid line count",
        b"-ERR Invalid message number", b"+OK Message 1 deleted.", b"-ERR Message is deleted.", b"+OK",
        b"+OK Bye; 0 messages deleted.", b""], lines


if __name__ == "__main__":
    main("pop3")
