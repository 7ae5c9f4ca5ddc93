#!/usr/bin/env python3
# test_smtputf8.py - SMTPUTF8 on the way out (RFC 6531, issue 18): ix-mta declares SMTPUTF8 when the envelope or the
# header needs it and the receiver offers it, and bounces with the reason when the receiver does not; `interchange
# track` shows what ix-smtpd refused during the SMTP session with the reply given. The sender is python3's smtplib
# and swaks; the receivers are two small SMTP servers on loopback (one offering SMTPUTF8, one not) reached through
# connectors.
import os
import shutil
import smtplib
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from smtp_sink import Sink  # noqa: E402

S = None
PW = "secret-pw"
UTF8_SINK = None
PLAIN_SINK = None
LOG_PREFIX = "smtputf8"


def tracking():
    try:
        return open(os.path.join(S.data, "log", "tracking.log"), encoding="utf-8", errors="replace").read()
    except OSError:
        return ""


def submit(rcpt, subject, subject_text=None):
    """alice submits a message to rcpt (SMTPUTF8 declared when anything is not ASCII)."""
    text = "From: alice.smith@example.com\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n\r\nhello\r\n" % (
        rcpt, subject_text or subject, subject.replace(" ", "-"))
    data = text.encode("utf-8")
    c = smtplib.SMTP("127.0.0.1", S.ports["submission"], timeout=20)
    c.login("alice", PW)
    opts = ["SMTPUTF8"] if any(b > 127 for b in data + rcpt.encode()) else []
    c.sendmail("alice.smith@example.com", [rcpt], data, mail_options=opts)
    c.quit()


def bounce_for(subject):
    """The text of the bounce alice got for subject (IMAP), or None."""
    import imaplib
    m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=10)
    try:
        m.login("alice", PW)
        m.select("INBOX", readonly=True)
        typ, data = m.search(None, "SUBJECT", '"Undelivered Mail"')
        for num in (data[0].split() if typ == "OK" else []):
            typ, d = m.fetch(num, "(BODY.PEEK[])")
            body = d[0][1].decode("utf-8", "replace")
            if subject in body:
                return body
        return None
    finally:
        m.logout()


@h.setup
def setup():
    global S, UTF8_SINK, PLAIN_SINK
    S = h.System()
    S.cli("user", "add", "alice", "--given", "Alice", "--surname", "Smith", "--password", PW, check=True)
    assert h.wait_for(lambda: h.imap_login_ok(S.ports["imap"], "alice", PW), timeout=15)
    UTF8_SINK, PLAIN_SINK = Sink(utf8=True), Sink(utf8=False)
    UTF8_SINK.start()
    PLAIN_SINK.start()
    mark = S.log_mark("mta")
    S.cli("connector", "add", "utf8", "--address-space", "utf8.test", "--smarthost", "127.0.0.1:%d" % UTF8_SINK.port,
          check=True)
    S.cli("connector", "add", "plain", "--address-space", "plain.test", "--smarthost",
          "127.0.0.1:%d" % PLAIN_SINK.port, check=True)
    S.wait_log("mta", "connector changed: cn=utf8,", mark)
    S.wait_log("mta", "connector changed: cn=plain,", mark)


@h.test
def utf8_recipient_reaches_a_receiver_that_offers_it():
    submit("jürgen@utf8.test", "utf8 recipient")
    assert h.wait_for(lambda: UTF8_SINK.find("utf8 recipient"), timeout=15), tracking()[-1500:]
    _, rcpts, _, mail = UTF8_SINK.find("utf8 recipient")[0]
    assert mail.upper().startswith("MAIL FROM:<ALICE.SMITH@EXAMPLE.COM>") and " SMTPUTF8" in mail.upper(), mail
    assert rcpts == ["jürgen@utf8.test"], rcpts


@h.test
def utf8_header_declares_smtputf8():
    submit("plainname@utf8.test", "utf8 header", subject_text="Grüße aus Köln")
    assert h.wait_for(lambda: UTF8_SINK.find("utf8-header"), timeout=15), tracking()[-1500:]
    _, _, data, mail = UTF8_SINK.find("utf8-header")[0]
    assert " SMTPUTF8" in mail.upper(), mail
    assert "Subject: Grüße aus Köln".encode() in data, data[:400]


@h.test
def ascii_message_declares_nothing():
    submit("someone@utf8.test", "ascii only")
    assert h.wait_for(lambda: UTF8_SINK.find("ascii-only"), timeout=15), tracking()[-1500:]
    mail = UTF8_SINK.find("ascii-only")[0][3]
    assert "SMTPUTF8" not in mail.upper(), mail


@h.test
def receiver_without_smtputf8_bounces_with_the_reason():
    submit("jürgen@plain.test", "no utf8 there")
    body = h.wait_for(lambda: bounce_for("no-utf8-there"), timeout=20, interval=0.2)
    assert body, tracking()[-1500:]
    assert "553 5.6.7" in body and "does not offer SMTPUTF8, which this message needs" in body, body[:3000]
    assert "an address in its envelope is not ASCII" in body, body[:3000]
    assert not PLAIN_SINK.find("no-utf8-there")  # nothing was sent there
    out = S.cli("track", "jürgen@plain.test", check=True).stdout
    assert "bounced" in out and "553 5.6.7" in out, out
    # a header that needs it, to the same receiver: the other reason
    submit("someone@plain.test", "utf8 header plain", subject_text="Ünïcödé")
    body = h.wait_for(lambda: bounce_for("utf8-header-plain"), timeout=20, interval=0.2)
    assert body and "its header has UTF-8 text" in body, (body or "")[:3000]


@h.test
def track_shows_session_refusals():
    c = smtplib.SMTP("127.0.0.1", S.ports["smtp"], timeout=20)
    c.ehlo()
    c.mail("stranger@outside.test")
    code, _ = c.rcpt("nobody@example.com")
    assert code == 550
    code, _ = c.rcpt("someone@elsewhere.test")  # relaying for strangers
    assert code == 554
    c.rset()
    code, _ = c.mail("someone@example.com")  # a forged internal sender
    assert code == 550
    c.quit()
    out = S.cli("track", "stranger@outside.test", check=True).stdout
    lines = [l for l in out.splitlines() if " refused " in l]
    assert any("nobody@example.com" in l and "550 5.1.1" in l and "client 127.0.0.1" in l for l in lines), out
    assert any("someone@elsewhere.test" in l and "554 5.7.1 Relay access denied" in l for l in lines), out
    out = S.cli("track", "someone@example.com", check=True).stdout
    assert " refused " in out and "550 5.7.1 Sender address rejected" in out, out
    # a message refused at its end (a forged header From), sent by swaks: every recipient, the reply, the login
    if shutil.which("swaks") is None:
        h.skip("swaks is not installed (Debian package swaks)")
    p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % S.ports["submission"], "--tls", "--auth", "PLAIN",
                        "--auth-user", "alice", "--auth-password", PW, "--from", "alice.smith@example.com",
                        "--to", "x@utf8.test,y@utf8.test", "--header", "From: boss@bank.test"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "550 5.7.1 Header From <boss@bank.test>" in p.stdout, p.stdout
    out = S.cli("track", "y@utf8.test", check=True).stdout
    assert "refused" in out and "550 5.7.1 Header From <boss@bank.test>" in out and "logged in as alice" in out, out
    assert "x@utf8.test" in out, out  # the same queue id: both recipients


if __name__ == "__main__":
    h.main("smtputf8")
