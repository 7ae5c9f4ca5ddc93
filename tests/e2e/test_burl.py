#!/usr/bin/env python3
# test_burl.py - URLAUTH (RFC 4467) and BURL (RFC 4468) across the running system: a user authorises a draft in
# her own mailbox for submission over IMAP (GENURLAUTH), then submits it by reference (BURL) on the submission port
# and the recipient gets its content; BURL mixed with BDAT; CATENATE over the daemon. Refused: a URL authorised for
# another user's submission, a tampered verifier, a URL of another user's message with a made-up verifier, a URL
# made before RESETKEY. No client in Debian speaks BURL (Trojita, which does, is a desktop program), so these are
# protocol tests with raw commands: python3's imaplib and smtplib carrying them.
import imaplib
import os
import re
import smtplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = None
PW = "secret-pw"
HOST = "mail.example.com"
ADDRESS = {"alice": "alice.smith@example.com", "bob": "bob.jones@example.com"}

for verb in ("GENURLAUTH", "URLFETCH", "RESETKEY"):
    imaplib.Commands[verb] = ("AUTH", "SELECTED")


def add_user(login, given, surname):
    S.cli("user", "add", login, "--given", given, "--surname", surname, "--password", PW, check=True)
    assert h.wait_for(lambda: h.imap_login_ok(S.ports["imap"], login, PW), timeout=15), login


def imap(login):
    m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=20)
    m.login(login, PW)
    return m


def draft(login, subject, body="the draft's text\r\n"):
    """Appends a draft to login's Drafts; returns its UID."""
    m = imap(login)
    try:
        msg = "From: %s\r\nTo: someone\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n\r\n%s" % (
            ADDRESS[login], subject, subject.replace(" ", "-"), body)
        typ, data = m.append("Drafts", "(\\Draft)", None, msg.encode())
        assert typ == "OK", data
        return int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1))
    finally:
        m.logout()


def genurlauth(login, rump):
    m = imap(login)
    try:
        typ, data = m._simple_command("GENURLAUTH", '"%s"' % rump, "INTERNAL")
        assert typ == "OK", data
        typ, data = m._untagged_response(typ, data, "GENURLAUTH")
        url = data[0].decode().strip().strip('"')
        assert url.startswith(rump + ":internal:") and len(url) == len(rump) + len(":internal:") + 64, url
        return url
    finally:
        m.logout()


def delivered(login, subject, timeout=10):
    """The whole message with subject in login's INBOX, or None when none arrives in time."""
    return S.imap_by_subject(login, PW, subject, timeout=timeout)


def submission(login):
    c = smtplib.SMTP("127.0.0.1", S.ports["submission"], timeout=20)
    c.ehlo("client.test")
    c.login(login, PW)
    return c


def burl_send(login, url, to="bob.jones@example.com"):
    """MAIL, RCPT, then BURL url LAST: the (code, text) of the BURL's reply."""
    c = submission(login)
    try:
        code, text = c.mail(ADDRESS[login])
        assert code == 250, text
        code, text = c.rcpt(to)
        assert code == 250, text
        code, text = c.docmd("BURL", url + " LAST")
        return code, text.decode()
    finally:
        c.close()


@h.setup
def setup():
    global S
    S = h.System()
    add_user("alice", "Alice", "Smith")
    add_user("bob", "Bob", "Jones")


@h.test
def ehlo_advertises_burl_on_submission_only():
    c = submission("alice")
    try:
        assert c.has_extn("burl"), c.esmtp_features
        assert c.esmtp_features["burl"].strip() == "imap://%s" % HOST, c.esmtp_features
    finally:
        c.close()
    c = smtplib.SMTP("127.0.0.1", S.ports["smtp"], timeout=20)
    try:
        c.ehlo("client.test")
        assert not c.has_extn("burl"), c.esmtp_features
    finally:
        c.close()
    m = imap("alice")
    try:
        typ, data = m.capability()
        assert typ == "OK" and b" URLAUTH" in data[0] and b" CATENATE" in data[0], data
    finally:
        m.logout()


@h.test
def draft_submitted_by_reference():
    uid = draft("alice", "burl whole draft")
    url = genurlauth("alice", "imap://alice@%s/Drafts/;uid=%d;urlauth=submit+alice" % (HOST, uid))
    code, text = burl_send("alice", url)
    assert code == 250, (code, text)
    got = delivered("bob", "burl whole draft")
    assert got and "the draft's text" in got and "Message-ID: <burl-whole-draft@test>" in got, got


@h.test
def burl_header_then_bdat_body():
    uid = draft("alice", "burl mixed")
    url = genurlauth("alice", "imap://alice@%s/Drafts/;uid=%d/;section=HEADER;urlauth=submit+alice" % (HOST, uid))
    c = submission("alice")
    try:
        assert c.mail("alice.smith@example.com")[0] == 250
        assert c.rcpt("bob.jones@example.com")[0] == 250
        code, text = c.docmd("BURL", url)
        assert code == 250, (code, text)
        body = b"a body sent by BDAT\r\n"
        c.send(b"BDAT %d LAST\r\n" % len(body) + body)
        code, text = c.getreply()
        assert code == 250, (code, text)
    finally:
        c.close()
    got = delivered("bob", "burl mixed")
    assert got and "Message-ID: <burl-mixed@test>\r\n\r\na body sent by BDAT\r\n" in got and "the draft's text" not in got, got


@h.test
def refused_urls():
    uid = draft("alice", "burl refused")
    bob_uid = draft("bob", "bob's private draft")
    # bob's draft, authorised for bob's own submission: not alice's to send
    bob_url = genurlauth("bob", "imap://bob@%s/Drafts/;uid=%d;urlauth=submit+bob" % (HOST, bob_uid))
    code, text = burl_send("alice", bob_url)
    assert code == 554 and "5.7.0" in text, (code, text)
    # alice's own URL with one digit of the verifier changed
    url = genurlauth("alice", "imap://alice@%s/Drafts/;uid=%d;urlauth=submit+alice" % (HOST, uid))
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    code, text = burl_send("alice", tampered)
    assert code == 554 and "5.6.6" in text, (code, text)
    # bob's message named with alice's access and a verifier she made up (bob's token for another URL)
    forged = "imap://bob@%s/Drafts/;uid=%d;urlauth=submit+alice:internal:%s" % (HOST, bob_uid, bob_url[-64:])
    code, text = burl_send("alice", forged)
    assert code == 554 and "5.6.6" in text, (code, text)
    # no URLAUTH at all
    code, text = burl_send("alice", "imap://alice@%s/Drafts/;uid=%d" % (HOST, uid))
    assert code == 554 and "5.7.0" in text, (code, text)
    # after RESETKEY the URL made before is dead
    m = imap("alice")
    try:
        typ, data = m._simple_command("RESETKEY", "Drafts", "INTERNAL")
        assert typ == "OK", data
    finally:
        m.logout()
    code, text = burl_send("alice", url)
    assert code == 554 and "5.6.6" in text, (code, text)
    assert delivered("bob", "burl refused", timeout=1) is None
    assert delivered("bob", "bob's private draft", timeout=1) is None
    assert "BURL from" in S.log("smtpd"), S.log("smtpd")[-2000:]


@h.test
def catenate_over_the_daemon():
    uid = draft("alice", "catenate source", body="part of a reply\r\n")
    m = imap("alice")
    try:
        m.select("Drafts")
        text = b"\r\nquoted above\r\n"
        m.send(b'c1 APPEND Drafts CATENATE (URL "/Drafts/;UID=%d/;SECTION=HEADER" URL "/Drafts/;UID=%d/;SECTION=TEXT" '
               b'TEXT {%d+}\r\n%s)\r\n' % (uid, uid, len(text), text))
        reply = b""
        while not re.search(rb"^c1 ", reply, re.M):
            reply += m.readline()
        assert re.search(rb"^c1 OK \[APPENDUID \d+ \d+\]", reply, re.M), reply
        new = int(re.search(rb"APPENDUID \d+ (\d+)", reply).group(1))
        typ, data = m.uid("FETCH", str(new), "(BODY.PEEK[TEXT])")
        assert typ == "OK" and data[0][1] == b"part of a reply\r\n\r\nquoted above\r\n", data
        m.send(b'c2 APPEND Drafts CATENATE (URL "imap://bob@%s/INBOX/;UID=1")\r\n' % HOST.encode())
        reply = b""
        while not re.search(rb"^c2 ", reply, re.M):
            reply += m.readline()
        assert re.search(rb"^c2 NO \[BADURL imap://bob@", reply, re.M), reply
    finally:
        m.logout()


if __name__ == "__main__":
    h.main("burl")
