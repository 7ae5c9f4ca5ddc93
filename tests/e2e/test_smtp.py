#!/usr/bin/env python3
# test_smtp.py - end-to-end tests of ix-smtpd and ix-mta against a real started system: python3's smtplib as the
# client, a small SMTP sink of our own on loopback for outbound mail, and transport/smtpd_probe to see exactly
# what reached the store. Prints PASS/FAIL lines (tests/run.sh counts them).
import base64
import json
import os
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from smtp_sink import Sink  # noqa: E402

PROBE = os.path.join(h.ROOT, h.BUILD, "transport", "smtpd_probe")
S = None
GUIDS = {}
SINK = None
LOG_PREFIX = "smtp"


def admin_search(filt, *attrs):
    return h.entries(S.ldapsearch(filt, *attrs, bind_dn=S.admin_dn, password=S.admin_password).stdout)


def add_user(login, given, surname, pw="secret-pw"):
    S.cli("user", "add", login, "--given", given, "--surname", surname, "--password", pw, check=True)
    addr = "%s.%s@example.com" % (given.lower(), surname.lower())

    def ready():
        e = admin_search("(uid=%s)" % login, "mail", "ixMailboxGuid")
        return e and "mail" in e[0] and "ixmailboxguid" in e[0] and e[0]
    e = h.wait_for(ready, timeout=10)
    assert e, "user %s got no address" % login
    GUIDS[login] = e["ixmailboxguid"][0]
    return addr


def inbox(login, folder=None):
    args = [PROBE, os.path.join(S.data, "store"), GUIDS[login]] + ([folder] if folder else [])
    p = h.run(args)
    assert p.returncode == 0, p.stderr
    return [line.split("\t") for line in p.stdout.splitlines()]


def inbox_of(guid, folder):
    p = h.run([PROBE, os.path.join(S.data, "store"), guid, folder])
    assert p.returncode == 0, p.stderr
    return [line.split("\t") for line in p.stdout.splitlines()]


def subjects(login):
    return [m[3] for m in inbox(login)]


def rcpt_reply(addr, sender="x@outside.org", login=None, mail_options=()):
    """The (code, text) smtpd gives RCPT TO:<addr> in a fresh session (submission as login when given); MAIL's
    reply when MAIL is refused."""
    c = smtp("submission" if login else "smtp")
    if login:
        c.login(login, "secret-pw")
    c.ehlo_or_helo_if_needed()
    code, text = c.mail(sender, list(mail_options))
    if code == 250:
        code, text = c.rcpt(addr)
    c.quit()
    return code, text


def wait_rcpt(addr, code, **kw):
    """Waits until smtpd's replica shows a directory change: RCPT TO:<addr> gets code."""
    assert h.wait_for(lambda: rcpt_reply(addr, **kw)[0] == code, timeout=10), rcpt_reply(addr, **kw)


BARRIER = {"value": 100}


def replicas_caught_up():
    """Waits until smtpd's and the mta's replicas hold every directory change made before the call: both follow
    the directory in order, so once both logged a later change of the server entry (a harmless setting toggled)
    they have the earlier ones too."""
    BARRIER["value"] = 201 - BARRIER["value"]  # 100, 101, 100, ...
    S.set_live("smtp.max_commands_before_mail", BARRIER["value"])


def add_connector(ldif_or_args, *names):
    """Adds connectors (CLI arguments, or LDIF for ldapmodify) and waits until the mta logged each one."""
    mark = S.log_mark("mta")
    if isinstance(ldif_or_args, str):
        p = S.ldapmodify(ldif_or_args, add=True)
        assert p.returncode == 0, p.stderr
    else:
        S.cli("connector", "add", *ldif_or_args, check=True)
    for n in names:
        S.wait_log("mta", "connector changed: cn=%s," % n, mark)


def wait_subject(login, subject, timeout=10.0, count=1):
    return h.wait_for(lambda: sum(1 for s in subjects(login) if s == subject) >= count, timeout=timeout)


def smtp(port_name="smtp"):
    return smtplib.SMTP("127.0.0.1", S.ports[port_name], timeout=20)


def msg(subject, body="hello\r\n", extra="", frm="someone@outside.org"):
    """A message; frm is its header From (a logged-in user's must be theirs: submission checks it)."""
    return "From: %s\r\nTo: you\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n%s\r\n%s" % (
        frm, subject, subject.replace(" ", "-"), extra, body)


def tracking():
    try:
        return open(os.path.join(S.data, "log", "tracking.log")).read()
    except OSError:
        return ""


@h.setup
def setup():
    global S, SINK, DEAD
    S = h.System()
    SINK = Sink()
    SINK.start()
    add_user("alice", "Alice", "Smith")
    add_user("bob", "Bob", "Jones")
    add_user("carol", "Carol", "White")
    add_user("dave", "Dave", "Brown")
    # quick retries (every second), so the unreachable destination is tried several times within the suite; the
    # last test lowers queue.lifetime to bounce it
    S.set_live("queue.retry_first", 1)
    S.set_live("queue.retry_max", 1)
    # connectors: one to the sink, one to a port where nothing listens
    DEAD = h.free_ports(1)[0]
    add_connector(["sink", "--address-space", "remote.test", "--smarthost", "127.0.0.1:%d" % SINK.port,
                   "--cost", "1"], "sink")
    add_connector(["dead", "--address-space", "dead.test", "--smarthost", "127.0.0.1:%d" % DEAD], "dead")


@h.test
def connector_commands():
    dead = DEAD
    p = S.cli("connector", "list")
    assert "sink" in p.stdout and "remote.test" in p.stdout and "127.0.0.1:%d" % dead in p.stdout, p.stdout
    assert S.cli("connector", "add", "sink", "--address-space", "x.test", "--smarthost", "h.test").returncode == 1
    assert S.cli("connector", "add", "bad", "--address-space", "no spaces", "--smarthost", "h.test").returncode == 2
    assert S.cli("connector", "add", "gone", "--address-space", "gone.test", "--smarthost", "h.test:25",
                 check=True).returncode == 0
    assert S.cli("connector", "del", "gone").returncode == 0
    assert "gone.test" not in S.cli("connector", "list").stdout
    assert S.cli("connector", "del", "gone").returncode == 1


@h.test
def unreachable_is_queued():
    # sent first: it is retried and bounces after the 60 s lifetime; checked by the last test
    c = smtp("submission")
    c.login("alice", "secret-pw")
    c.sendmail("alice.smith@example.com", ["someone@dead.test"], msg("to the void", frm="alice.smith@example.com"))
    c.quit()
    assert h.wait_for(lambda: "deferred" in tracking() and "someone@dead.test" in tracking(), timeout=10), tracking()


@h.test
def deliver_to_user():
    c = smtp()
    c.sendmail("x@outside.org", ["alice.smith@example.com"], msg("first"))
    c.quit()
    assert wait_subject("alice", "first", timeout=10), subjects("alice")


@h.test
def unknown_user_550():
    c = smtp()
    c.ehlo()
    c.mail("x@outside.org")
    code, text = c.rcpt("nobody@example.com")
    assert code == 550 and b"5.1.1" in text, (code, text)
    c.quit()


@h.test
def relay_refused_without_auth():
    c = smtp()
    c.ehlo()
    c.mail("x@outside.org")
    code, text = c.rcpt("victim@elsewhere.org")
    assert code == 554 and b"5.7.1" in text, (code, text)
    c.quit()


@h.test
def nested_list_each_member_once():
    S.cli("dl", "add", "inner", "--member", "bob", "--member", "carol", check=True)
    S.cli("dl", "add", "outer", "--member", "inner", "--member", "bob", "--member", "alice", check=True)
    assert h.wait_for(lambda: admin_search("(cn=outer)", "mail") and "mail" in admin_search("(cn=outer)", "mail")[0],
                      timeout=10)
    addr = admin_search("(cn=outer)", "mail")[0]["mail"][0]
    wait_rcpt(addr, 250)
    c = smtp()
    c.sendmail("x@outside.org", [addr, "bob.jones@example.com"], msg("to the list"))
    c.quit()
    for u in ("alice", "bob", "carol"):
        assert wait_subject(u, "to the list", timeout=5), (u, subjects(u))
        assert subjects(u).count("to the list") == 1, (u, subjects(u))
    p = S.cli("track", addr)
    assert "expanded" in p.stdout and "3 recipients" in p.stdout, p.stdout


@h.test
def alias_address():
    S.cli("user", "add", "erin", "--given", "Erin", "--surname", "Gray", "--password", "secret-pw",
          "--alias", "sales@example.com", check=True)
    assert h.wait_for(lambda: admin_search("(uid=erin)", "ixMailboxGuid"), timeout=10)
    GUIDS["erin"] = h.wait_for(lambda: admin_search("(uid=erin)", "ixMailboxGuid")[0].get("ixmailboxguid"),
                               timeout=10)[0]
    wait_rcpt("Sales@Example.com", 250)
    c = smtp()
    c.sendmail("x@outside.org", ["Sales@Example.com"], msg("alias mail"))
    c.quit()
    assert wait_subject("erin", "alias mail", timeout=5), subjects("erin")


@h.test
def submission_requires_auth():
    c = smtp("submission")
    c.ehlo()
    code, text = c.mail("alice.smith@example.com")
    assert code == 530, (code, text)
    c.quit()


@h.test
def submission_auth_and_forged_sender():
    c = smtp("submission")
    c.login("bob", "secret-pw")
    code, text = c.mail("alice.smith@example.com")
    assert code == 553 and b"5.7.1" in text, (code, text)
    c.rset()
    c.sendmail("bob.jones@example.com", ["carol.white@example.com"], msg("from bob", frm="bob.jones@example.com"))
    c.quit()
    assert wait_subject("carol", "from bob", timeout=5), subjects("carol")
    c = smtp("submission")
    try:
        c.login("bob", "wrong")
        assert False, "wrong password accepted"
    except smtplib.SMTPAuthenticationError as e:
        assert e.smtp_code == 535
    c.quit()


@h.test
def auth_login_steps_and_cancel():
    # multi-step exchanges run on the worker threads and come back to the session in order
    c = smtp("submission")
    c.ehlo()
    code, text = c.docmd("AUTH", "LOGIN")
    assert code == 334, (code, text)
    code, text = c.docmd(base64.b64encode(b"dave").decode())
    assert code == 334, (code, text)
    code, text = c.docmd("*")
    assert code == 501, (code, text)
    c.user, c.password = "dave", "secret-pw"
    code, text = c.auth("LOGIN", c.auth_login)
    assert code == 235, (code, text)
    c.sendmail("dave.brown@example.com", ["alice.smith@example.com"], msg("auth login", frm="dave.brown@example.com"))
    c.quit()
    assert wait_subject("alice", "auth login", timeout=5)


@h.test
def send_as_right():
    assert rcpt_reply("carol.white@example.com", sender="alice.smith@example.com", login="bob")[0] == 553
    S.cli("user", "delegate", "alice", "--send-as", "bob", check=True)
    wait_rcpt("carol.white@example.com", 250, sender="alice.smith@example.com", login="bob")
    c = smtp("submission")
    c.login("bob", "secret-pw")
    c.sendmail("alice.smith@example.com", ["carol.white@example.com"], msg("as alice", frm="alice.smith@example.com"))
    c.quit()
    assert wait_subject("carol", "as alice", timeout=5)


@h.test
def starttls_then_auth():
    c = smtp("submission")
    c.starttls(context=ssl._create_unverified_context())
    c.ehlo()
    assert c.has_extn("auth")
    c.login("dave", "secret-pw")
    c.sendmail("dave.brown@example.com", ["alice.smith@example.com"], msg("over tls", frm="dave.brown@example.com"))
    c.quit()
    assert wait_subject("alice", "over tls", timeout=5)
    rec = [m for m in inbox("alice") if m[3] == "over tls"]
    assert rec, inbox("alice")


@h.test
def external_through_connector():
    c = smtp("submission")
    c.login("alice", "secret-pw")
    c.sendmail("alice.smith@example.com", ["friend@remote.test", "reject-me@remote.test"],
               msg("outbound one", frm="alice.smith@example.com"))
    c.sendmail("alice.smith@example.com", ["friend2@remote.test"], msg("outbound two", frm="alice.smith@example.com"))
    c.quit()
    assert h.wait_for(lambda: SINK.find("outbound one") and SINK.find("outbound two"), timeout=10), SINK.messages
    m = SINK.find("outbound one")[0]
    assert m[0] == "alice.smith@example.com" and m[1] == ["friend@remote.test"], m
    assert b"Received: from" in m[2]
    # the refused recipient bounces to alice's mailbox with a delivery-status report
    assert wait_subject("alice", "Undelivered Mail Returned to Sender", timeout=10), subjects("alice")
    assert "relayed" in tracking() and "friend@remote.test" in tracking()


@h.test
def size_limit():
    S.cli("server", "set", "smtp.max_message_size", "4096", check=True)

    def ehlo_size():
        c = smtp()
        c.ehlo()
        size = c.esmtp_features.get("size")
        c.quit()
        return size == "4096"
    # applied without a restart: the replica reports the server entry's change and smtpd reads it again
    assert h.wait_for(ehlo_size, timeout=3, interval=0.05)
    c = smtp()
    c.ehlo()
    try:
        c.sendmail("x@outside.org", ["alice.smith@example.com"], msg("too big", "x" * 70 + "\r\n") * 1 +
                   ("y" * 70 + "\r\n") * 100)
        assert False, "accepted"
    except smtplib.SMTPException as e:
        assert "552" in str(e), e
    c.quit()
    S.set_live("smtp.max_message_size", "10m")


@h.test
def delivery_restrictions():
    assert rcpt_reply("dave.brown@example.com")[0] == 250
    S.cli("user", "restrict", "dave", "--authenticated-only", check=True)
    wait_rcpt("dave.brown@example.com", 550)
    code, text = rcpt_reply("dave.brown@example.com")
    assert code == 550 and b"5.7.1" in text, (code, text)
    c = smtp("submission")
    c.login("alice", "secret-pw")
    c.sendmail("alice.smith@example.com", ["dave.brown@example.com"],
               msg("authed to dave", frm="alice.smith@example.com"))
    c.quit()
    assert wait_subject("dave", "authed to dave", timeout=5)
    S.cli("user", "restrict", "carol", "--reject-from", "bob", check=True)
    wait_rcpt("carol.white@example.com", 550, sender="bob.jones@example.com", login="bob")
    code, text = rcpt_reply("carol.white@example.com", sender="bob.jones@example.com", login="bob")
    assert code == 550 and b"5.7.1" in text, (code, text)


@h.test
def recipient_max_size_without_size_parameter():
    S.cli("user", "restrict", "carol", "--max-size", "2000", check=True)
    # with SIZE the limit is applied at RCPT: that answer shows smtpd has the new limit
    wait_rcpt("carol.white@example.com", 552, mail_options=["SIZE=100000"])
    c = smtp()
    c.ehlo()
    c.mail("x@outside.org")
    code, _ = c.rcpt("carol.white@example.com")
    assert code == 250
    code, text = c.data(msg("big for carol", ("z" * 70 + "\r\n") * 50))
    assert code == 552 and b"5.2.3" in text, (code, text)
    c.quit()
    S.cli("user", "restrict", "carol", "--clear", check=True)
    wait_rcpt("carol.white@example.com", 250, mail_options=["SIZE=100000"])


@h.test
def equal_cost_connectors_share_load():
    sinks = [Sink(), Sink()]
    for k in sinks:
        k.start()
    base = "ou=Connectors,ou=Configuration," + S.suffix
    ldif = "".join("dn: cn=share%d,%s\nobjectClass: ixConnector\ncn: share%d\nixAddressSpace: share.test\n"
                   "ixSmartHost: 127.0.0.1:%d\nixConnectorCost: 5\n\n" % (i, base, i, k.port)
                   for i, k in enumerate(sinks))
    add_connector(ldif, "share0", "share1")
    c = smtp("submission")
    c.login("alice", "secret-pw")
    for i in range(12):
        c.sendmail("alice.smith@example.com", ["user%d@share.test" % i],
                   msg("shared %d" % i, frm="alice.smith@example.com"))
    c.quit()
    assert h.wait_for(lambda: len(sinks[0].messages) + len(sinks[1].messages) == 12, timeout=15), \
        (len(sinks[0].messages), len(sinks[1].messages))
    assert sinks[0].messages and sinks[1].messages, (len(sinks[0].messages), len(sinks[1].messages))


@h.test
def members_only_list_and_full_mailbox():
    S.cli("dl", "add", "team", "--member", "alice", "--member", "bob", check=True)
    S.cli("dl", "restrict", "team", "--members-only", check=True)
    assert h.wait_for(lambda: "mail" in (admin_search("(cn=team)", "mail") or [{}])[0], timeout=10)
    # an insider's address, but not authenticated
    wait_rcpt("team@example.com", 550, sender="alice.smith@example.com")
    code, text = rcpt_reply("team@example.com", sender="alice.smith@example.com")
    assert code == 550 and b"5.7.1" in text, (code, text)
    c = smtp("submission")
    c.login("alice", "secret-pw")
    c.sendmail("alice.smith@example.com", ["team@example.com"], msg("team news", frm="alice.smith@example.com"))
    c.quit()
    assert wait_subject("bob", "team news", timeout=5)
    # a mailbox at its message quota: 452 4.2.2 at RCPT
    count = len(inbox("carol"))
    S.cli("user", "quota", "carol", "--messages", str(count), check=True)
    wait_rcpt("carol.white@example.com", 452)
    code, text = rcpt_reply("carol.white@example.com")
    assert code == 452 and b"4.2.2" in text, (code, text)
    S.cli("user", "quota", "carol", "--messages", "0", check=True)
    wait_rcpt("carol.white@example.com", 250)


@h.test
def forwarding_with_copy():
    S.cli("user", "forward", "bob", "--to", "carol", "--keep-copy", check=True)
    replicas_caught_up()  # forwarding shows in no SMTP answer
    c = smtp()
    c.sendmail("x@outside.org", ["bob.jones@example.com"], msg("forward me"))
    c.quit()
    assert wait_subject("bob", "forward me", timeout=5)
    assert wait_subject("carol", "forward me", timeout=5)
    S.cli("user", "forward", "bob", "--none", check=True)
    replicas_caught_up()


def mail_from_code(sender):
    """The reply code to an unauthenticated MAIL FROM:<sender> on port 25."""
    c = smtp()
    try:
        c.ehlo()
        return c.mail(sender)[0]
    finally:
        c.quit()


@h.test
def list_members_keep_their_own_restrictions():
    """A member that accepts authenticated senders only does not get an unauthenticated sender's mail through a
    list either; the sender hears why (a 5.7.1 bounce for that member) and the other members get it."""
    S.cli("user", "restrict", "dave", "--authenticated-only", check=True)
    S.cli("dl", "add", "crew", "--member", "alice", "--member", "dave", check=True)
    assert h.wait_for(lambda: "mail" in (admin_search("(cn=crew)", "mail") or [{}])[0], timeout=10)
    crew = admin_search("(cn=crew)", "mail")[0]["mail"][0]
    wait_rcpt(crew, 250)
    bounces = subjects("alice").count("Undelivered Mail Returned to Sender")
    # an unauthenticated sender of our own domain: a device the administrator made an exception for
    S.cli("server", "allow-sender-from", "127.0.0.1", check=True)
    assert h.wait_for(lambda: mail_from_code("alice.smith@example.com") == 250, timeout=10, interval=0.1)
    c = smtp()
    c.sendmail("alice.smith@example.com", [crew], msg("crew unauthenticated", frm="alice.smith@example.com"))
    c.quit()
    S.cli("server", "disallow-sender-from", "127.0.0.1", check=True)
    assert wait_subject("alice", "crew unauthenticated", timeout=5)
    assert h.wait_for(lambda: subjects("alice").count("Undelivered Mail Returned to Sender") > bounces,
                      timeout=10), subjects("alice")
    assert "crew unauthenticated" not in subjects("dave")
    c = smtp("submission")
    c.login("bob", "secret-pw")
    c.sendmail("bob.jones@example.com", [crew], msg("crew authenticated", frm="bob.jones@example.com"))
    c.quit()
    assert wait_subject("dave", "crew authenticated", timeout=5)
    assert "crew unauthenticated" not in subjects("dave")


@h.test
def dsn_notify_success():
    c = smtp("submission")
    c.login("alice", "secret-pw")
    c.ehlo()
    c.mail("alice.smith@example.com", ["RET=HDRS", "ENVID=env42"])
    code, _ = c.rcpt("carol.white@example.com", ["NOTIFY=SUCCESS"])
    assert code == 250
    code, _ = c.data(msg("notify me", frm="alice.smith@example.com"))
    assert code == 250
    c.quit()
    assert wait_subject("alice", "Successful Mail Delivery Report", timeout=10), subjects("alice")


@h.test
def dsn_relayed_notice_for_a_server_without_dsn():
    c = smtp("submission")
    c.login("alice", "secret-pw")
    c.ehlo()
    c.mail("alice.smith@example.com")
    code, _ = c.rcpt("notify@remote.test", ["NOTIFY=SUCCESS,FAILURE"])
    assert code == 250
    code, _ = c.data(msg("relay notify", frm="alice.smith@example.com"))
    assert code == 250
    c.quit()
    assert h.wait_for(lambda: SINK.find("relay notify"), timeout=10)
    assert h.wait_for(lambda: subjects("alice").count("Successful Mail Delivery Report") >= 2, timeout=10), \
        subjects("alice")


@h.test
def homed_on_another_server_is_relayed_there():
    # a second server of the organisation whose SMTP port is the sink
    dn = "cn=mail2.example.com,ou=Servers,ou=Configuration," + S.suffix
    p = S.ldapmodify("dn: %s\nobjectClass: ixServer\ncn: mail2.example.com\nixHostName: 127.0.0.1\n"
                     "ixSmtpPort: %d\n\n" % (dn, SINK.port), add=True)
    assert p.returncode == 0, p.stderr
    p = S.cli("user", "add", "frank", "--given", "Frank", "--surname", "Green", "--password", "secret-pw",
              "--server", "mail2.example.com")
    assert p.returncode == 0, p.stdout + p.stderr
    assert h.wait_for(lambda: "mail" in (admin_search("(uid=frank)", "mail") or [{}])[0], timeout=10)
    replicas_caught_up()  # the mta routes frank's mail by its replica: the new server and frank's home on it
    c = smtp()
    c.sendmail("x@outside.org", ["frank.green@example.com", "alice.smith@example.com"], msg("homed elsewhere"))
    c.quit()
    assert h.wait_for(lambda: SINK.find("homed elsewhere"), timeout=10), SINK.messages[-1:]
    assert SINK.find("homed elsewhere")[0][1] == ["frank.green@example.com"]
    assert wait_subject("alice", "homed elsewhere", timeout=5)


@h.test
def bdat_and_smtputf8():
    chunk = b"Subject: chunked\r\n\r\nab\r\n"
    out = raw_session([b"EHLO x\r\nMAIL FROM:<a@outside.org> BODY=BINARYMIME\r\n"
                       b"RCPT TO:<alice.smith@example.com>\r\nBDAT %d\r\n" % len(chunk) + chunk,
                       b"BDAT 4 LAST\r\ncd\r\nQUIT\r\n"])
    assert b"250 2.0.0 Ok: queued" in out, out
    assert wait_subject("alice", "chunked", timeout=5)
    c = smtp()
    c.ehlo()
    assert c.has_extn("smtputf8")
    c.sendmail("jürgen@outside.org", ["alice.smith@example.com"],
               msg("utf8 sender").encode("utf-8"), mail_options=["SMTPUTF8"])
    c.quit()
    assert wait_subject("alice", "utf8 sender", timeout=5)


PUBLIC = "0" * 32  # the public folders' mailbox in the store


def add_folder_entry(cn, path, mail):
    """A mail-enabled public folder written straight into the directory (as older versions or other tools did)."""
    p = S.ldapmodify("dn: cn=%s,ou=Public Folders,%s\nobjectClass: ixPublicFolder\nobjectClass: ixRecipient\n"
                     "cn: %s\nixFolderPath: %s\nmail: %s\n" % (cn, S.suffix, cn, path, mail), add=True)
    assert p.returncode == 0, p.stderr


@h.test
def public_folder_recipient():
    """`folder add` makes a folder whose address takes mail (no IMAP session has to list it first); an entry an
    older version wrote with a leading slash (/Legacy) takes mail too."""
    S.cli("folder", "add", "Support/Tickets", check=True)
    add_folder_entry("Legacy", "/Legacy", "legacy@example.com")
    wait_rcpt("tickets@example.com", 250)
    wait_rcpt("legacy@example.com", 250)
    c = smtp()
    assert not c.sendmail("x@outside.org", ["tickets@example.com"], msg("for the tickets"))
    assert not c.sendmail("x@outside.org", ["legacy@example.com"], msg("for the legacy folder"))
    c.quit()
    assert h.wait_for(lambda: [m[3] for m in inbox_of(PUBLIC, "Support/Tickets")] == ["for the tickets"]), \
        inbox_of(PUBLIC, "Support/Tickets")
    assert h.wait_for(lambda: [m[3] for m in inbox_of(PUBLIC, "Legacy")] == ["for the legacy folder"]), \
        inbox_of(PUBLIC, "Legacy")


@h.test
def one_failing_recipient_costs_the_others_nothing():
    """A folder recipient the store refuses (its path is not a valid folder name) fails alone: the other local
    recipients and a remote one get the message, the sender gets a DSN naming only the failed one; when it is
    the only recipient, the DATA reply refuses it (no DSN)."""
    add_folder_entry("Broken", "Broken//Path", "broken@example.com")
    bounce = "Undelivered Mail Returned to Sender"
    bounces = subjects("alice").count(bounce)
    wait_rcpt("broken@example.com", 250)
    c = smtp("submission")
    c.login("alice", "secret-pw")
    refused = c.sendmail("alice.smith@example.com",
                         ["carol.white@example.com", "broken@example.com", "dave.brown@example.com",
                          "someone@remote.test"], msg("shared fate", frm="alice.smith@example.com"))
    c.quit()
    assert not refused, refused
    assert wait_subject("carol", "shared fate"), subjects("carol")
    assert wait_subject("dave", "shared fate"), subjects("dave")
    assert h.wait_for(lambda: SINK.find("shared-fate@test")), "the remote recipient got nothing"
    assert wait_subject("alice", bounce, count=bounces + 1), subjects("alice")
    time.sleep(0.5)
    assert subjects("alice").count(bounce) == bounces + 1, subjects("alice")
    c = smtp()
    try:
        c.sendmail("x@outside.org", ["broken@example.com"], msg("alone"))
        assert False, "accepted"
    except smtplib.SMTPDataError as e:
        assert e.smtp_code == 550 and b"5.2.0" in e.smtp_error and b"Broken//Path" in e.smtp_error, e
    c.quit()


@h.test
def loop_cut_by_hop_count():
    hops = "".join("Received: from hop%d by example.net; Thu, 1 Jan 2026 00:00:00 +0000\r\n" % i for i in range(60))
    c = smtp()
    try:
        c.sendmail("x@outside.org", ["alice.smith@example.com"], hops + msg("looping"))
        assert False, "accepted"
    except smtplib.SMTPDataError as e:
        assert e.smtp_code == 554 and b"5.4.6" in e.smtp_error, e
    c.quit()


def raw_session(lines, port=None, read_timeout=3.0):
    s = socket.create_connection(("127.0.0.1", port or S.ports["smtp"]), timeout=read_timeout)
    out = b""
    try:
        out += s.recv(4096)
        for l in lines:
            s.sendall(l)
        s.shutdown(socket.SHUT_WR)
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except OSError:
        pass
    s.close()
    return out


@h.test
def bad_input_keeps_serving():
    out = raw_session([b"EHLO x\r\n", b"MAIL FROM:<a@b>\x00\r\n", b"FOO\r\n", b"A" * (1 << 20) + b"\r\n",
                       b"MAIL FROM:<a@b> AUTH=<x@y>\r\nRCPT TO:<\r\n>\r\n", b"\r\n" * 20])
    assert b"500" in out or b"501" in out, out[:300]
    assert b"421" in out, out[-300:]  # too many errors
    # header injection through MAIL parameters is refused
    out = raw_session([b"EHLO x\r\n", b"MAIL FROM:<a@b> ENVID=x\rBcc:y\r\n", b"QUIT\r\n"])
    assert b"250 2.1.0" not in out.split(b"\r\n", 8)[-1], out
    # a DATA that never ends: the connection just closes and nothing is delivered
    before = len(inbox("alice"))
    out = raw_session([b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice.smith@example.com>\r\nDATA\r\n",
                       b"Subject: never ends\r\n\r\nxx\r\n"])
    assert b"354 " in out and b"250 2.0.0" not in out, out  # raw_session returns when smtpd closed the session
    # a broken TLS handshake
    s2 = socket.create_connection(("127.0.0.1", S.ports["smtp"]), timeout=5)
    s2.recv(1024)
    s2.sendall(b"EHLO x\r\nSTARTTLS\r\n")
    got = b""
    while b"\r\n220 " not in got:  # the EHLO reply, then STARTTLS's go-ahead
        d = s2.recv(4096)
        assert d, got
        got += d
    s2.sendall(b"\x16\x03\x01\x00\x10garbage-not-tls-at-all\r\n")
    try:
        s2.recv(1024)
    except OSError:
        pass
    s2.close()
    # still serving
    c = smtp()
    c.sendmail("x@outside.org", ["alice.smith@example.com"], msg("after garbage"))
    c.quit()
    assert wait_subject("alice", "after garbage", timeout=5)
    assert len(inbox("alice")) == before + 1 and "never ends" not in subjects("alice"), subjects("alice")


@h.test
def queue_and_track_commands():
    first_words = lambda out: [l.split()[0] for l in out.splitlines() if l.strip()]  # noqa: E731 (ages may tick)
    # plain `queue` lists (two listings may differ while the MTA works: compare until a pair agrees)
    assert h.wait_for(lambda: first_words(S.cli("queue").stdout) == first_words(S.cli("queue", "list").stdout),
                      timeout=10), (S.cli("queue").stdout, S.cli("queue", "list").stdout)
    p = S.cli("queue", "list")
    assert p.returncode == 0, p.stderr
    assert "someone@dead.test" in p.stdout, p.stdout
    p = S.cli("queue", "list", "--json")
    assert p.returncode == 0 and p.stdout.strip().startswith("{"), p.stdout
    p = S.cli("track", "alice.smith@example.com")
    assert p.returncode == 0 and "delivered" in p.stdout, p.stdout
    p = S.cli("track", "<first@test>")
    assert p.returncode == 0 and "received" in p.stdout and "delivered" in p.stdout, p.stdout
    # a message to delete
    c = smtp("submission")
    c.login("alice", "secret-pw")
    c.sendmail("alice.smith@example.com", ["gone@dead.test"], msg("delete me", frm="alice.smith@example.com"))
    c.quit()
    def find_id():
        j = json.loads(S.cli("queue", "list", "--json").stdout)
        return [m["id"] for m in j["messages"] if any(r["address"] == "gone@dead.test" for r in m["recipients"])]
    qid = h.wait_for(find_id, timeout=10)
    assert qid, S.cli("queue", "list").stdout
    p = S.cli("queue", "show", qid[0])
    assert p.returncode == 0 and "delete me" in p.stdout, p.stdout
    p = S.cli("queue", "delete", qid[0])
    assert p.returncode == 0, p.stderr
    assert "gone@dead.test" not in S.cli("queue", "list").stdout
    assert S.cli("queue", "flush").returncode == 0


@h.test
def kill_during_burst_exactly_once():
    n, threads = 60, 6
    acked, lock = [], threading.Lock()

    def sender(k):
        for i in range(k, n, threads):
            try:
                c = smtp()
                c.sendmail("x@outside.org", ["erin.gray@example.com"], msg("burst %d" % i))
                with lock:
                    acked.append("burst %d" % i)
                c.quit()
            except (OSError, smtplib.SMTPException):
                pass
    ts = [threading.Thread(target=sender, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    assert h.wait_for(lambda: len(acked) >= threads, timeout=10), "the burst did not start"  # kill it under way
    pids = subprocess.run(["pgrep", "-f", "ix-smtpd --data %s" % S.data], capture_output=True, text=True).stdout.split()
    assert pids, "ix-smtpd not found: " + open(os.path.join(S.data, "log", "attendant.log")).read()[-1500:]
    for p in pids:
        os.kill(int(p), signal.SIGKILL)
    for t in ts:
        t.join()
    # the attendant restarts it; resend nothing: every acknowledged message must be there exactly once
    got = h.wait_for(lambda: all(s in subjects("erin") for s in acked) and subjects("erin"), timeout=15)
    subs = subjects("erin")
    for s in acked:
        assert subs.count(s) == 1, (s, subs.count(s))
    assert len(acked) > 0 and got, (len(acked), subs)
    # and it serves again
    ok = h.wait_for(lambda: _try_send("after restart"), timeout=15)
    assert ok and wait_subject("erin", "after restart", timeout=5)


@h.test
def kill_mta_during_relay_nothing_lost():
    # queued mail survives a SIGKILL of ix-mta: every message reaches the sink after the restart (at least once;
    # docs/smtp-mta.md says why a duplicate is possible)
    n = 30
    slow = Sink(delay=0.1)
    slow.start()
    base = "ou=Connectors,ou=Configuration," + S.suffix
    add_connector("dn: cn=slow,%s\nobjectClass: ixConnector\ncn: slow\nixAddressSpace: slow.test\n"
                  "ixSmartHost: 127.0.0.1:%d\n\n" % (base, slow.port), "slow")
    c = smtp("submission")
    c.login("alice", "secret-pw")
    for i in range(n):
        c.sendmail("alice.smith@example.com", ["burst@slow.test"],
                   msg("relay burst %d" % i, frm="alice.smith@example.com"))
    c.quit()
    assert h.wait_for(lambda: slow.messages, timeout=10), "nothing relayed"  # kill it under way
    assert len(slow.messages) < n, "all relayed before the kill"
    for pid in subprocess.run(["pgrep", "-f", "ix-mta --data %s" % S.data], capture_output=True,
                              text=True).stdout.split():
        os.kill(int(pid), signal.SIGKILL)
    ok = h.wait_for(lambda: all(slow.find("relay burst %d\r\n" % i) for i in range(n)), timeout=40, interval=0.2)
    missing = [i for i in range(n) if not slow.find("relay burst %d\r\n" % i)]
    assert ok, "lost: %s" % missing
    assert h.wait_for(lambda: "burst@slow.test" not in S.cli("queue", "list").stdout, timeout=10)
    # connections are reused and at most MTA_DEST_CONCURRENCY (4) are open per destination, before and after the kill
    assert slow.connections <= 8, slow.connections


def _try_send(subject):
    try:
        c = smtp()
        c.sendmail("x@outside.org", ["erin.gray@example.com"], msg(subject))
        c.quit()
        return True
    except (OSError, smtplib.SMTPException):
        return False


@h.test
def unreachable_bounced_after_lifetime():
    # the first test's message: retried every second (deferred lines) since; with queue.lifetime lowered to a
    # second it is older than that, so its next attempt bounces it to alice
    def bounced():
        return any(len(f) > 5 and f[1] == "bounced" and f[5] == "someone@dead.test"
                   for f in (line.split("\t") for line in tracking().splitlines()))
    assert not bounced() and "someone@dead.test" in S.cli("queue", "list").stdout, tracking()[-2000:]
    S.set_live("queue.lifetime", 1)
    assert h.wait_for(bounced, timeout=120), tracking()[-2000:]
    log = tracking()
    assert sum(1 for line in log.splitlines() if "\tdeferred\t" in line and "someone@dead.test" in line) >= 2, log
    assert h.wait_for(lambda: subjects("alice").count("Undelivered Mail Returned to Sender") >= 2, timeout=120), \
        subjects("alice")
    assert "someone@dead.test" not in S.cli("queue", "list").stdout


@h.test
def auth_failures_limited():
    # last: after this, carol's logins from 127.0.0.1 are blocked for a minute
    S.set_live("auth.max_failures", 3)
    for _ in range(3):
        c = smtp("submission")
        try:
            c.login("carol", "wrong")
        except smtplib.SMTPAuthenticationError:
            pass
        c.quit()
    c = smtp("submission")
    try:
        c.login("carol", "secret-pw")
        assert False, "login accepted after too many failures"
    except smtplib.SMTPAuthenticationError as e:
        assert e.smtp_code == 454 and b"Temporarily blocked" in e.smtp_error, e  # not "wrong password" (535)
    c.quit()
    assert "authentication of carol from 127.0.0.1 refused: temporarily blocked" in \
        open(os.path.join(S.data, "log", "smtpd.log")).read()


if __name__ == "__main__":
    h.main(LOG_PREFIX)
