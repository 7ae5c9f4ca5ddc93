#!/usr/bin/env python3
# test_stop.py - end-to-end: `interchange stop` closes idle sessions at once (SMTP 421 4.3.2, IMAP and POP3 BYE)
# instead of waiting out the daemons' grace period, while a message in the middle of DATA is still received and
# acknowledged first. Prints PASS/FAIL lines (tests/run.sh counts them).
import imaplib
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = None


class Line:
    """A raw text-protocol client: send lines, read reply lines."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.sock.makefile("rb")

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def line(self):
        return self.f.readline().decode("latin-1").rstrip("\r\n")

    def reply(self):
        """The last line of a (possibly multi-line) SMTP reply."""
        while True:
            text = self.line()
            if len(text) < 4 or text[3] != "-":
                return text


@h.setup
def setup():
    global S
    S = h.System()
    S.cli("user", "add", "alice", "--given", "Alice", "--surname", "Smith", "--password", "secret-pw", check=True)
    def has_address():
        return "mail: " in S.ldapsearch("(uid=alice)", "mail", bind_dn=S.admin_dn, password=S.admin_password).stdout
    assert h.wait_for(has_address, timeout=10), "no address"
    assert h.wait_for(lambda: h.imap_login_ok(S.ports["imap"], "alice", "secret-pw"), timeout=10), "no login"


@h.test
def stop_closes_idle_sessions_at_once():
    idle = Line(S.ports["smtp"])  # greeted, then nothing: like another server's cached relay connection
    assert idle.reply().startswith("220")
    idle.send("EHLO client.test")
    assert idle.reply().startswith("250")
    busy = Line(S.ports["smtp"])  # in the middle of DATA when the stop comes
    assert busy.reply().startswith("220")
    for cmd in ["EHLO client.test", "MAIL FROM:<x@outside.org>", "RCPT TO:<alice.smith@example.com>"]:
        busy.send(cmd)
        assert busy.reply().startswith("250"), cmd
    busy.send("DATA")
    assert busy.reply().startswith("354")
    busy.send("Subject: during the stop\r\n\r\nfirst half")
    imap = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=10)
    imap.login("alice", "secret-pw")
    imap.select("INBOX")
    pop = Line(S.ports["pop3"])
    assert pop.line().startswith("+OK")
    marks = {name: S.log_mark(name) for name in ("smtpd", "imapd", "pop3d")}

    stop = subprocess.Popen([h.INTERCHANGE, "--data", S.data, "stop"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=h.ENV)
    try:
        got = idle.reply()
        assert got.startswith("421 4.3.2 ") and "shutting down" in got, got
        assert idle.line() == "", "the idle session stayed open"
        # the message under way is finished and acknowledged, then the session is closed the same way
        busy.send("second half\r\n.")
        got = busy.reply()
        assert got.startswith("250"), got
        got = busy.reply()
        assert got.startswith("421 4.3.2 "), got
        got = pop.line()
        assert got.startswith("-ERR [SYS/TEMP] Server shutting down"), got
        # imaplib reads the untagged BYE on its next command
        try:
            imap.noop()
            bye = imap.untagged_responses.get("BYE")
        except imaplib.IMAP4.abort as e:
            bye = [str(e)]
        assert bye, "no BYE on the IMAP session"
        out, _ = stop.communicate(timeout=60)
    finally:
        if stop.poll() is None:
            stop.kill()
    assert stop.returncode == 0, out
    for name, mark in marks.items():
        log = S.log(name, mark)
        assert "did not close within" not in log, "%s waited out its grace period: %s" % (name, log)
        assert "no session left: stopping now" in log, "%s: %s" % (name, log)


if __name__ == "__main__":
    h.main("stop")
