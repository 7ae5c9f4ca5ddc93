#!/usr/bin/env python3
# test_submission.py - submission that tells the truth (issue 18): the header From of a logged-in user's message is
# theirs or one they may send as (550 5.7.1 naming the address otherwise), send-on-behalf adds Sender, the final
# delivery writes Return-Path, and implicit-TLS submission (RFC 8314) on the submissions port. Clients: swaks (a
# real client from Debian) and python3's smtplib; what was stored is read back over IMAP.
import json
import os
import shutil
import smtplib
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = None
PW = "secret-pw"
LOG_PREFIX = "submission"


def add_user(login, given, surname):
    S.cli("user", "add", login, "--given", given, "--surname", surname, "--password", PW, check=True)
    assert h.wait_for(lambda: h.imap_login_ok(S.ports["imap"], login, PW), timeout=15), login


def swaks(*args, port="submission", tls=None):
    """Runs swaks against a port; tls: None (none), "starttls" or "connect" (implicit TLS)."""
    if shutil.which("swaks") is None:
        h.skip("swaks is not installed (Debian package swaks)")
    cmd = ["swaks", "--server", "127.0.0.1:%d" % S.ports[port], "--timeout", "20", "--hide-informational"]
    if tls == "connect":
        cmd.append("--tls-on-connect")
    elif tls == "starttls":
        cmd.append("--tls")
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60)


def login_args(login):
    return ["--auth", "PLAIN", "--auth-user", login, "--auth-password", PW]


def message(frm, subject, extra=""):
    return "From: %s\r\nTo: someone\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n%s\r\nhello\r\n" % (
        frm, subject, subject.replace(" ", "-"), extra)


def stored_header(login, subject, timeout=10):
    """The header block of the message with subject in login's INBOX (IMAP), or None when none arrives in time."""
    return S.imap_by_subject(login, PW, subject, "BODY.PEEK[HEADER]", timeout)


def fields(header, name):
    """The values of every field called name in header (unfolded)."""
    out = []
    for line in header.replace("\r\n ", " ").replace("\r\n\t", " ").split("\r\n"):
        k, _, v = line.partition(":")
        if k.lower() == name.lower():
            out.append(v.strip())
    return out


@h.setup
def setup():
    global S
    S = h.System()
    add_user("alice", "Alice", "Smith")
    add_user("bob", "Bob", "Jones")
    add_user("carol", "Carol", "White")
    add_user("dave", "Dave", "Brown")


@h.test
def own_header_from_accepted_with_swaks():
    p = swaks(*login_args("alice"), "--from", "alice.smith@example.com", "--to", "bob.jones@example.com",
              "--header", "From: Alice Smith <alice.smith@example.com>", "--header", "Subject: swaks own from",
              tls="starttls")
    assert p.returncode == 0, p.stdout + p.stderr
    hdr = stored_header("bob", "swaks own from")
    assert hdr, "not delivered"
    assert fields(hdr, "Return-Path") == ["<alice.smith@example.com>"], hdr
    assert hdr.startswith("Return-Path: "), hdr  # RFC 5321 4.4: at the beginning
    assert not fields(hdr, "Sender"), hdr  # her own address: no Sender needed


@h.test
def forged_header_from_refused_with_swaks():
    p = swaks(*login_args("alice"), "--from", "alice.smith@example.com", "--to", "bob.jones@example.com",
              "--header", "From: The Boss <carol.white@example.com>", "--header", "Subject: swaks forged",
              tls="starttls")
    assert p.returncode != 0, p.stdout
    assert "550 5.7.1 Header From <carol.white@example.com> is not an address alice may send as" in p.stdout, \
        p.stdout
    # an outside address is no better
    p = swaks(*login_args("alice"), "--from", "alice.smith@example.com", "--to", "bob.jones@example.com",
              "--header", "From: ceo@bank.test", "--header", "Subject: swaks outside", tls="starttls")
    assert p.returncode != 0 and "550 5.7.1 Header From <ceo@bank.test>" in p.stdout, p.stdout
    assert stored_header("bob", "swaks forged", timeout=1) is None


def refusal(login, frm, subject, extra="", port="submission"):
    """The (code, text) of DATA's reply for a message with header From frm sent by login (MAIL FROM their own)."""
    c = smtplib.SMTP("127.0.0.1", S.ports[port], timeout=20)
    c.login(login, PW)
    own = {"alice": "alice.smith@example.com", "dave": "dave.brown@example.com"}[login]
    try:
        c.sendmail(own, ["bob.jones@example.com"], message(frm, subject, extra))
        return 250, ""
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error.decode()
    finally:
        c.quit()


@h.test
def header_from_checks_with_smtplib():
    # several mailboxes, one not hers: refused, naming that one
    code, text = refusal("alice", "alice.smith@example.com, Mallory <dave.brown@example.com>", "two froms")
    assert code == 550 and text == "5.7.1 Header From <dave.brown@example.com> is not an address alice may send as", \
        (code, text)
    code, text = refusal("alice", "alice.smith@example.com", "bad sender", extra="Sender: dave.brown@example.com\r\n")
    assert code == 550 and "Header Sender <dave.brown@example.com>" in text, (code, text)
    c = smtplib.SMTP("127.0.0.1", S.ports["submission"], timeout=20)
    c.login("alice", PW)
    try:
        c.sendmail("alice.smith@example.com", ["bob.jones@example.com"], "Subject: no from\r\n\r\nhi\r\n")
        raise AssertionError("a message without From was taken")
    except smtplib.SMTPDataError as e:
        assert e.smtp_code == 550 and b"no From header field" in e.smtp_error, e
    c.quit()
    # port 25 with AUTH is held to the same rule
    code, text = refusal("alice", "carol.white@example.com", "via port 25", port="smtp")
    assert code == 550 and "<carol.white@example.com>" in text, (code, text)
    # unauthenticated mail from outside keeps whatever From it has (inbound checks are DKIM/SPF/DMARC's)
    c = smtplib.SMTP("127.0.0.1", S.ports["smtp"], timeout=20)
    c.sendmail("x@outside.org", ["bob.jones@example.com"], message("carol.white@example.com", "inbound any from"))
    c.quit()
    hdr = stored_header("bob", "inbound any from")
    assert hdr and fields(hdr, "Return-Path") == ["<x@outside.org>"], hdr


@h.test
def send_as_and_send_on_behalf():
    S.cli("user", "delegate", "carol", "--send-on-behalf", "dave", check=True)
    S.cli("user", "delegate", "bob", "--send-as", "dave", check=True)
    # the replica follows the directory: wait until the delegation is seen
    assert h.wait_for(lambda: refusal("dave", "carol.white@example.com", "on behalf probe")[0] == 250, timeout=10)
    hdr = stored_header("bob", "on behalf probe")
    assert hdr, "not delivered"
    assert fields(hdr, "From") == ["carol.white@example.com"], hdr
    assert fields(hdr, "Sender") == ["dave.brown@example.com"], hdr
    assert fields(hdr, "Return-Path") == ["<dave.brown@example.com>"], hdr
    # a Return-Path the message came with is not kept: only the final delivery's
    assert h.wait_for(lambda: refusal("dave", "Bob Jones <bob.jones@example.com>", "send as bob",
                                      extra="Return-Path: <forged@bank.test>\r\n")[0] == 250, timeout=10)
    hdr = stored_header("bob", "send as bob")
    assert hdr and not fields(hdr, "Sender"), hdr  # send-as: the address is theirs to use, no Sender
    assert fields(hdr, "Return-Path") == ["<dave.brown@example.com>"], hdr
    # with swaks: on behalf of carol, and a Sender of his own given by the client is kept as it is
    p = swaks(*login_args("dave"), "--from", "dave.brown@example.com", "--to", "alice.smith@example.com",
              "--header", "From: Carol White <carol.white@example.com>", "--header", "Sender: dave.brown@example.com",
              "--header", "Subject: swaks on behalf", tls="starttls")
    assert p.returncode == 0, p.stdout + p.stderr
    hdr = stored_header("alice", "swaks on behalf")
    assert hdr and fields(hdr, "Sender") == ["dave.brown@example.com"], hdr
    # revoked: refused again
    S.cli("user", "delegate", "carol", "--send-on-behalf", "dave", "--revoke", check=True)
    assert h.wait_for(lambda: refusal("dave", "carol.white@example.com", "revoked")[0] == 550, timeout=10)


@h.test
def implicit_tls_submissions_port():
    st = json.loads(S.cli("status", "--json", check=True).stdout)
    assert st["ports"]["submissions"] == S.ports["submissions"], st["ports"]
    assert "submissions %d" % S.ports["submissions"] in S.cli("status", check=True).stdout
    assert "submissions %d" % S.ports["submissions"] in S.cli("server", "show", check=True).stdout
    p = swaks(*login_args("alice"), "--from", "alice.smith@example.com", "--to", "carol.white@example.com",
              "--header", "From: alice.smith@example.com", "--header", "Subject: implicit tls swaks",
              port="submissions", tls="connect")
    assert p.returncode == 0, p.stdout + p.stderr
    assert stored_header("carol", "implicit tls swaks"), "not delivered"
    c = smtplib.SMTP_SSL("127.0.0.1", S.ports["submissions"], timeout=10, context=ssl._create_unverified_context())
    c.ehlo()
    assert not c.has_extn("starttls"), c.esmtp_features  # already TLS
    c.login("alice", PW)
    c.sendmail("alice.smith@example.com", ["carol.white@example.com"],
               message("alice.smith@example.com", "implicit tls smtplib"))
    c.quit()
    assert stored_header("carol", "implicit tls smtplib")
    # submission rules there too: MAIL before AUTH is refused
    c = smtplib.SMTP_SSL("127.0.0.1", S.ports["submissions"], timeout=10, context=ssl._create_unverified_context())
    c.ehlo()
    code, _ = c.mail("alice.smith@example.com")
    assert code == 530, code
    c.quit()


if __name__ == "__main__":
    h.main("submission")
