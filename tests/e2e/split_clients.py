"""split_clients.py - clients that write one command in several TCP segments, as everyday clients do, beside
twins that write it in one: tests/e2e/test_segments.py checks the protocol outcome with them and
transport/net/bench_segments.py times them. Sockets keep the kernel's defaults (Nagle on) unless a caller asks
for TCP_NODELAY, so a write that follows an unacknowledged one waits for the server's ACK, as it does for a
browser's webmail backend."""
import imaplib
import re
import smtplib
import socket
import ssl

from harness import imap_login_ok, wait_for

MARY = ("mary", "pass-mary1", "mary.x@example.com")


def add_mary(system):
    """Adds the user every split client logs in as and waits until IMAP accepts her password and smtpd her address
    (which the attendant generates after the add)."""
    login, pw, address = MARY
    system.cli("user", "add", login, "--given", "Mary", "--surname", "X", "--password", pw, check=True)
    assert wait_for(lambda: imap_login_ok(system.ports["imap"], login, pw), 20.0, 0.5), "mary never became ready"
    assert wait_for(lambda: system.rcpt_code(address) == 250, 20.0, 0.1), "smtpd never took %s" % address


def message(tag, body_lines=3):
    """A small message with a unique subject (dot-stuffing is exercised by a line that starts with a dot)."""
    body = "".join("line %d of %s\r\n" % (i, tag) for i in range(body_lines))
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\n.dot first\r\n%s" % (MARY[2], MARY[2], tag, body)).encode()


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class SplitEndSMTP(smtplib.SMTP):
    """smtplib writing the end of DATA (".\\r\\n") in a write of its own after the message, as PHP's Net_SMTP
    (Roundcube) does; smtplib itself writes the message and its end at once."""

    def send(self, s):
        if isinstance(s, str):
            s = s.encode("ascii")
        if len(s) > 5 and s.endswith(b"\r\n.\r\n"):
            super().send(s[:-3])
            s = s[-3:]
        super().send(s)


class Raw:
    """A line client on a plain socket: send() writes each piece with its own send call, in order."""

    def __init__(self, port, nodelay=False):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")

    def send(self, *pieces):
        for p in pieces:
            self.sock.sendall(p)

    def line(self):
        line = self.file.readline()
        if not line:
            raise AssertionError("the server closed the connection")
        return line

    def until(self, prefix):
        """Lines up to and including the first that starts with prefix."""
        lines = []
        while True:
            lines.append(self.line())
            if lines[-1].startswith(prefix):
                return lines

    def close(self):
        self.file.close()
        self.sock.close()


class RawIMAP(Raw):
    """IMAP over Raw, logged in as mary."""

    def __init__(self, port, nodelay=False):
        super().__init__(port, nodelay)
        self.n = 0
        assert self.line().startswith(b"* OK")
        self.command(b"LOGIN %s %s" % (MARY[0].encode(), MARY[1].encode()))

    def tag(self):
        self.n += 1
        return b"t%d" % self.n

    def command(self, cmd):
        """One command in one write; returns its tagged line, which must be OK."""
        t = self.tag()
        self.send(t + b" " + cmd + b"\r\n")
        last = self.until(t + b" ")[-1]
        assert last.startswith(t + b" OK"), last
        return last

    def append_one(self, msg):
        """APPEND with a LITERAL+ (no continuation): command, literal and CRLF in one write."""
        t = self.tag()
        self.send(b"%s APPEND INBOX {%d+}\r\n%s\r\n" % (t, len(msg), msg))
        return self.until(t + b" ")[-1]

    def append_split(self, msg):
        """APPEND with a synchronising literal, the command cut in two writes, the literal in two, the CRLF alone."""
        t = self.tag()
        self.send(t + b" APP", b"END INBOX {%d}\r\n" % len(msg))
        assert self.line().startswith(b"+"), "no continuation"
        half = len(msg) // 2
        self.send(msg[:half], msg[half:], b"\r\n")
        return self.until(t + b" ")[-1]

    def fetch_by_subject(self, subject):
        """The whole stored message with that subject in INBOX (exactly one must exist)."""
        self.command(b"SELECT INBOX")
        t = self.tag()
        self.send(b"%s UID SEARCH HEADER Subject %s\r\n" % (t, subject.encode()))
        lines = self.until(t + b" ")
        uids = [u for ln in lines if ln.startswith(b"* SEARCH") for u in ln.split()[2:]]
        assert len(uids) == 1, "messages with subject %s: %r" % (subject, lines)
        t = self.tag()
        self.send(b"%s UID FETCH %s BODY.PEEK[]\r\n" % (t, uids[0]))
        head = self.line()
        m = re.search(rb"\{(\d+)\}\r\n$", head)
        assert m, head
        body = self.file.read(int(m.group(1)))
        self.until(t + b" ")
        return body


def imaplib_session(port):
    m = imaplib.IMAP4("127.0.0.1", port)
    m.login(MARY[0], MARY[1])
    return m
