#!/usr/bin/env python3
"""test_clients.py - the real third-party mail programs users run, from Debian packages, against a real started
system: swaks (SMTP, submission with STARTTLS and with implicit TLS, AUTH, PIPELINING, 8-bit bodies, dot-stuffing, a
large attachment, refusals), mbsync from isync (a Maildir synchronised both ways over IMAPS and STARTTLS), fetchmail
(POP3 and IMAP over TLS, keep and no-keep, only new mail, IMAP IDLE), the cyrus-clients imtest, pop3test and
smtptest, and neomutt (sending over submission; its index driven on a terminal over IMAPS and POP3S, composing, new
mail while idle); mbsync, fetchmail and neomutt also through the proxy to a mailbox homed on a second server; curl,
imtest and pop3test with a full-access delegate (Other Users/OWNER/... and sign-in with OWNER as SASL authzid). Each
result is checked on the server over IMAP, not by the program's exit code alone; the certificate is verified with
the one `interchange cert show --pem` prints wherever the program can verify one. A program that is not installed
is a SKIP naming its Debian package."""
import base64
import email
import email.policy
import hashlib
import imaplib
import os
import pty
import re
import select
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import signin_clients  # noqa: E402

S = None
WORK = None  # the test's folder for the programs' files (inside the system's temporary folder)
CA = None  # the server's certificate, as `interchange cert show --pem` prints it
WRONG_CA = None  # a certificate of no relation to the server: verifying against it must fail
PW = "secret-pw"
USERS = {"alice": ("Alice", "Smith"), "bob": ("Bob", "Jones"), "carol": ("Carol", "White"),
         "dave": ("Dave", "Brown"), "erin": ("Erin", "Gray"), "frank": ("Frank", "Green"), "grace": ("Grace", "Hall"),
         "heidi": ("Heidi", "Klein"), "ivan": ("Ivan", "Moss"), "judy": ("Judy", "Ness"),
         "kate": ("Kate", "Long"), "mona": ("Mona", "Reed"), "nora": ("Nora", "Vance"), "otto": ("Otto", "Wolf")}
HOMED_ON_B = {"lena": ("Lena", "Park")}  # users of the second server, reached through the first one's proxy
B = None  # the second server (joined to S) where HOMED_ON_B live
MOVED_TO_B = set()  # users of S whose mailbox a test moved to B
CYRUS = "/usr/lib/cyrus/bin"


def addr(login):
    given, surname = USERS.get(login) or HOMED_ON_B[login]
    return "%s.%s@example.com" % (given.lower(), surname.lower())


def need(program, package):
    """The path of program; skips the test when the Debian package that brings it is not installed."""
    path = program if os.path.isabs(program) else shutil.which(program)
    if not path or not os.access(path, os.X_OK):
        h.skip("%s is not installed (Debian package %s; make deps installs it)" % (program, package))
    return path


def client(cmd, input=None, env=None, timeout=60):
    """Runs a client program with HOME in the test's folder (nothing read from or left in root's home)."""
    e = dict(h.ENV, HOME=WORK, LC_ALL="C.UTF-8")
    e.update(env or {})
    return subprocess.run(cmd, capture_output=True, input=input, env=e, timeout=timeout, cwd=WORK)


def out(p):
    return (p.stdout + p.stderr).decode("utf-8", "replace")


def imap(login):
    """An IMAP session of login on the server that holds the mailbox (the clients under test connect to S)."""
    home = B if login in HOMED_ON_B or login in MOVED_TO_B else S
    m = imaplib.IMAP4("127.0.0.1", home.ports["imap"], timeout=20)
    m.login(login, PW)
    return m


def folder(login, name="INBOX"):
    """login's folder name as the server has it: a list of (uid, flags, raw message), by UID."""
    m = imap(login)
    try:
        typ, _ = m.select('"%s"' % name, readonly=True)
        assert typ == "OK", (login, name, typ)
        typ, data = m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
        assert typ == "OK", data
        msgs = []
        for item in data:
            if not isinstance(item, tuple):
                continue
            uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
            flags = set(re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).decode().split()) - {"\\Recent"}
            msgs.append((uid, flags, item[1]))
        return sorted(msgs)
    finally:
        m.logout()


def subjects(login, name="INBOX"):
    return [email.message_from_bytes(raw)["Subject"] for _, _, raw in folder(login, name)]


def with_subject(login, subject, name="INBOX"):
    """The raw messages of login's folder name whose Subject is subject (found by IMAP SEARCH, then compared)."""
    m = imap(login)
    try:
        m.select('"%s"' % name, readonly=True)
        m.literal = subject.encode("utf-8")
        typ, data = m.uid("SEARCH", "CHARSET", "UTF-8", "SUBJECT")
        assert typ == "OK", data
        found = []
        for uid in data[0].split():
            typ, msg = m.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = msg[0][1]
            if email.message_from_bytes(raw, policy=email.policy.default)["Subject"] == subject:
                found.append(raw)
        return found
    finally:
        m.logout()


def wait_subject(login, subject, name="INBOX"):
    """Waits until login's folder has a message with subject (delivery goes through the queue); returns its raw
    text."""
    found = h.wait_for(lambda: with_subject(login, subject, name), timeout=15, interval=0.05)
    assert found, "no %r in %s's %s: %s" % (subject, login, name, subjects(login, name))
    return found[0]


def append(login, name, subject, flags=None, body="body\r\n"):
    m = imap(login)
    try:
        text = "From: someone@outside.org\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n\r\n%s" % (
            addr(login), subject, subject.replace(" ", "-"), body)
        typ, data = m.append('"%s"' % name, flags, None, text.encode())
        assert typ == "OK", data
    finally:
        m.logout()


def smtp_send(login, subject):
    """A message to login over plain SMTP (python3's smtplib: the message under test is what a program fetches)."""
    S.send_mail(addr(login), "<%s@test>" % subject.replace(" ", "-"), subject=subject)
    wait_subject(login, subject)


@h.setup
def setup():
    global S, WORK, CA, WRONG_CA
    # the default settings: SCRAM without its -PLUS forms, which mbsync and neomutt pick (docs/transport-io.md "SCRAM")
    S = h.System()
    for login, (given, surname) in USERS.items():
        S.cli("user", "add", login, "--given", given, "--surname", surname, "--password", PW, check=True)
    WORK = os.path.join(S.base, "clients")
    os.mkdir(WORK)
    CA = os.path.join(WORK, "interchange.pem")
    with open(CA, "w") as f:
        f.write(S.cli("cert", "show", "--pem", check=True).stdout)
    WRONG_CA = os.path.join(WORK, "other.pem")
    h.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
           "-subj", "/CN=mail.example.com", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "2",
           "-keyout", os.path.join(WORK, "other.key"), "-out", WRONG_CA], check=True)
    for login in USERS:  # ready once IMAP takes the password and smtpd takes the address
        assert h.wait_for(lambda: h.imap_login_ok(S.ports["imap"], login, PW), timeout=15, interval=0.1), login
        assert h.wait_for(lambda: S.rcpt_code(addr(login)) == 250, timeout=15), S.rcpt_code(addr(login))


# ---- swaks ------------------------------------------------------------------------------------------------------

def swaks(*args, port="submission", tls=True, ca=None):
    """swaks to the port; with tls, STARTTLS (tls="on-connect": TLS from the start) verifying the server's
    certificate against ca (the server's own)."""
    cmd = [need("swaks", "swaks"), "--server", "127.0.0.1:%d" % S.ports[port], "--helo", "client.test"]
    if tls:
        cmd += ["--tls-on-connect" if tls == "on-connect" else "--tls", "--tls-verify", "--tls-ca-path", ca or CA]
    return client(cmd + list(args))


def swaks_ok(*args, **kw):
    p = swaks(*args, **kw)
    assert p.returncode == 0, out(p)[-2000:]
    return out(p)


@h.test
def swaks_smtp_delivery():
    text = swaks_ok("--from", "friend@outside.org", "--to", addr("alice"), "--header", "Subject: swaks plain smtp",
                    "--body", "delivered by swaks", port="smtp", tls=False)
    assert "250 2.0.0" in text, text
    raw = wait_subject("alice", "swaks plain smtp")
    assert b"delivered by swaks" in raw and b"X-Mailer: swaks" in raw, raw


@h.test
def swaks_submission_starttls_auth_plain():
    text = swaks_ok("--auth", "PLAIN", "--auth-user", "alice", "--auth-password", PW, "--from", addr("alice"),
                    "--to", addr("bob"), "--header", "Subject: swaks auth plain")
    assert "TLS started" in text and "235 2.7.0" in text, text
    assert "AUTH PLAIN" in text.split("TLS started", 1)[1], text  # the login went inside TLS
    wait_subject("bob", "swaks auth plain")


@h.test
def swaks_submission_starttls_auth_login():
    text = swaks_ok("--auth", "LOGIN", "--auth-user", "bob", "--auth-password", PW, "--from", addr("bob"),
                    "--to", addr("alice"), "--header", "Subject: swaks auth login")
    assert "AUTH LOGIN" in text and "235 2.7.0" in text, text
    wait_subject("alice", "swaks auth login")


@h.test
def swaks_submissions_implicit_tls():
    text = swaks_ok("--auth", "PLAIN", "--auth-user", "bob", "--auth-password", PW, "--from", addr("bob"),
                    "--to", addr("alice"), "--header", "Subject: swaks implicit tls", port="submissions",
                    tls="on-connect")
    assert text.index("TLS started") < text.index("220 "), text  # the greeting came inside TLS
    wait_subject("alice", "swaks implicit tls")


@h.test
def swaks_refuses_certificate_of_another_ca():
    # --tls-verify really verifies: against a certificate that did not sign the server's, STARTTLS fails
    p = swaks("--auth", "PLAIN", "--auth-user", "alice", "--auth-password", PW, "--from", addr("alice"),
              "--to", addr("bob"), "--header", "Subject: never sent", ca=WRONG_CA)
    assert p.returncode == 29, (p.returncode, out(p)[-1500:])  # 29: error in TLS


def s_client(port, *args):
    """openssl s_client's account of a handshake with port (-msg: every handshake message by name) and its end."""
    p = client(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "localhost", "-msg",
                "-CAfile", CA, "-verify_return_error"] + list(args), input=b"", timeout=30)
    return p.returncode, out(p)


@h.test
def no_client_certificate_asked_of_mail_clients():
    """No mail client is asked for a TLS client certificate (one holding some, a smart card or a keychain, would
    prompt its user or send one unasked), on IMAP, POP3, ManageSieve and submission, implicit TLS or STARTTLS, TLS
    1.3 or 1.2: the login daemons ask only a server of the organisation that signs in with SASL EXTERNAL, after the
    handshake (docs/multi-server.md "Servers proving who they are"). Port 25 asks every MTA."""
    need("openssl", "openssl")
    for name, starttls in (("imaps", None), ("imap", "imap"), ("pop3s", None), ("pop3", "pop3"), ("sieve", "sieve"),
                           ("submissions", None), ("submission", "smtp")):
        for version in ("-tls1_3", "-tls1_2"):
            rc, text = s_client(S.ports[name], version, *(["-starttls", starttls] if starttls else []))
            assert rc == 0 and re.search(r"<<< TLS 1\.[23], Handshake.*ServerHello", text), (name, version, text[-3000:])
            assert re.search(r">>> TLS 1\.[23], Handshake.*Finished", text), (name, version, text[-3000:])
            assert "CertificateRequest" not in text, (name, version, text[-3000:])
    rc, text = s_client(S.ports["smtp"], "-starttls", "smtp")
    assert rc == 0 and "<<< TLS 1.3, Handshake [length" in text and "CertificateRequest" in text, text[-3000:]


@h.test
def swaks_pipelining():
    text = swaks_ok("--pipeline", "--auth", "PLAIN", "--auth-user", "carol", "--auth-password", PW,
                    "--from", addr("carol"), "--to", "%s,%s" % (addr("alice"), addr("bob")),
                    "--header", "Subject: swaks pipelined")
    # the commands go out together, the replies come back after them, in order
    tail = text.split("235 2.7.0", 1)[1]
    assert re.search(r"~> MAIL FROM.*\n ~> RCPT TO.*\n ~> RCPT TO.*\n ~> DATA\n<~  250 2\.1\.0.*\n<~  250 2\.1\.5.*\n"
                     r"<~  250 2\.1\.5.*\n<~  354", tail), tail
    wait_subject("alice", "swaks pipelined")
    wait_subject("bob", "swaks pipelined")
    # a refused recipient among the pipelined commands: its own 550, the others go through
    text = swaks_ok("--pipeline", "--from", "friend@outside.org", "--to", "%s,nobody@example.com" % addr("carol"),
                    "--header", "Subject: swaks pipelined partly", port="smtp", tls=False)
    assert re.search(r" -> DATA\n<-  250 2\.1\.0.*\n<-  250 2\.1\.5.*\n<\*\* 550 5\.1\.1.*\n<-  354", text), text
    wait_subject("carol", "swaks pipelined partly")
    # none accepted: DATA is refused, no message data follows
    p = swaks("--pipeline", "--from", "friend@outside.org", "--to", "nobody@example.com", port="smtp", tls=False)
    assert p.returncode == 24 and re.search(r"<\*\* 550 5\.1\.1.*\n<\*\* 554 5\.5\.1", out(p)), out(p)


@h.test
def swaks_8bit_body():
    body = "Grüße aus Köln, naïve café, 東京 ✓"
    text = swaks_ok("--from", "friend@outside.org", "--to", addr("alice"), "--header", "Subject: swaks 8bit",
                    "--add-header", "MIME-Version: 1.0", "--add-header", "Content-Type: text/plain; charset=utf-8",
                    "--add-header", "Content-Transfer-Encoding: 8bit", "--body", body, port="smtp", tls=False)
    assert "250-8BITMIME" in text, text
    raw = wait_subject("alice", "swaks 8bit")
    assert body.encode("utf-8") in raw, raw  # every byte as sent, no 7-bit mangling


@h.test
def swaks_dot_lines_and_long_line():
    # swaks doubles a leading dot on the wire; the server takes one away again, and ends the data only at a lone dot
    body = ".leading dot\n..two dots\n.\nafter a lone dot\n" + "L" * 3000 + "\nend\n"
    path = os.path.join(WORK, "dots.txt")
    with open(path, "w") as f:
        f.write(body)
    text = swaks_ok("--from", "friend@outside.org", "--to", addr("bob"), "--header", "Subject: swaks dots",
                    "--body", "@" + path, port="smtp", tls=False)
    wire = text.replace("\r", "")
    assert " -> ..leading dot\n -> ...two dots\n -> ..\n" in wire, wire[:3000]  # stuffed on the wire
    raw = wait_subject("bob", "swaks dots")
    assert raw.split(b"\r\n\r\n", 1)[1].startswith(body.replace("\n", "\r\n").encode()), raw[-4000:]


@h.test
def swaks_large_attachment():
    data = os.urandom(5 * 1024 * 1024)
    path = os.path.join(WORK, "big.bin")
    with open(path, "wb") as f:
        f.write(data)
    swaks_ok("--auth", "PLAIN", "--auth-user", "bob", "--auth-password", PW, "--from", addr("bob"),
             "--to", addr("carol"), "--header", "Subject: swaks big attachment", "--body", "see attached",
             "--attach-type", "application/octet-stream", "--attach", "@" + path, "--suppress-data")
    raw = wait_subject("carol", "swaks big attachment")
    parts = [p for p in email.message_from_bytes(raw).walk() if p.get_filename() == "big.bin"]
    assert parts, raw[:2000]
    got = parts[0].get_payload(decode=True)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), (len(got), len(data))


@h.test
def swaks_refused_recipient():
    p = swaks("--from", "friend@outside.org", "--to", "nobody@example.com", "--header", "Subject: to nobody",
              port="smtp", tls=False)
    assert p.returncode == 24, (p.returncode, out(p)[-1500:])  # 24: no recipient accepted
    assert re.search(r"<\*\* +550 5\.1\.1", out(p)), out(p)
    p = swaks("--from", "friend@outside.org", "--to", "victim@elsewhere.org", port="smtp", tls=False)
    assert p.returncode == 24 and re.search(r"<\*\* +554 5\.7\.1", out(p)), out(p)  # no relaying


@h.test
def swaks_wrong_password():
    p = swaks("--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "not-the-password",
              "--from", addr("alice"), "--to", addr("bob"), "--header", "Subject: wrong password")
    assert p.returncode == 28, (p.returncode, out(p)[-1500:])  # 28: error in AUTH
    assert re.search(r"<~\* +535 5\.7\.8", out(p)), out(p)
    p = swaks("--from", addr("alice"), "--to", addr("bob"), "--header", "Subject: no login")
    assert p.returncode == 23 and re.search(r"<~\* +530", out(p)), out(p)  # submission needs a login


# ---- fetchmail ----------------------------------------------------------------------------------------------------

# the mda fetchmail runs for each message: writes it under a hidden name, then gives it its final one (a reader never
# sees half a message)
MDA = """import os, sys, tempfile
fd, path = tempfile.mkstemp(dir=sys.argv[1], prefix=".")
os.write(fd, sys.stdin.buffer.read())
os.close(fd)
os.rename(path, os.path.join(sys.argv[1], os.path.basename(path)[1:] + ".eml"))
"""


def fetchmail_command(name, protocol, port, login, keep, ssl, idle=False, ca=None):
    """The fetchmail command line for login's mail (a folder of its own per name: rc file, UID list, delivered
    files), with the environment it needs and the folder the mda writes each message to; idle: wait in IMAP IDLE
    for new mail once the mailbox is fetched; ca: the certificate to verify the server's with (its own)."""
    prog = need("fetchmail", "fetchmail")
    home = os.path.join(WORK, "fetchmail-" + name)
    box = os.path.join(home, "delivered")
    os.makedirs(box, exist_ok=True)
    mda = os.path.join(WORK, "mda.py")
    with open(mda, "w") as f:
        f.write(MDA)
    rc = os.path.join(home, "fetchmailrc")
    with open(rc, "w") as f:
        f.write("set no syslog\n"
                "poll 127.0.0.1 protocol %s port %d uidl\n"
                "  user %s password %s is root here %s %s %s sslcertck sslcertfile %s sslcommonname localhost\n"
                "  mda \"python3 %s %s\"\n" % (protocol, S.ports[port], login, PW, "keep" if keep else "nokeep",
                                               "idle" if idle else "", "ssl" if ssl else "sslproto 'auto'",
                                               ca or CA, mda, box))
    os.chmod(rc, 0o600)
    cmd = [prog, "-f", rc, "--pidfile", os.path.join(home, "pid"), "-i", os.path.join(home, "ids"), "-v",
           "--nodetach"]
    return cmd, {"FETCHMAILHOME": home}, box


def delivered_to(box):
    """The messages the mda wrote to box, parsed (in no particular order: the files have random names)."""
    found = []
    for n in os.listdir(box):
        if n.startswith("."):  # still being written
            continue
        with open(os.path.join(box, n), "rb") as f:
            found.append(email.message_from_bytes(f.read()))
    return found


def fetchmail(name, protocol, port, login, keep, ssl, ca=None):
    """One fetchmail run (see fetchmail_command); returns (run, the messages delivered so far)."""
    cmd, env, box = fetchmail_command(name, protocol, port, login, keep, ssl, ca=ca)
    return client(cmd, env=env), delivered_to(box)


def fetch(name, protocol, port, login, keep, ssl, send, expect):
    """Sends login the messages with the subjects send, runs fetchmail (see fetchmail()) and checks the run: 0 with
    mail, 1 when there was none, over TLS; delivered holds exactly the subjects expect. Returns the run's output and
    the delivered messages."""
    for subject in send:
        smtp_send(login, subject)
    p, delivered = fetchmail(name, protocol, port, login, keep, ssl)
    text = out(p)
    assert p.returncode in (0, 1), text[-3000:]
    assert "SSL/TLS: using protocol" in text, text[-3000:]
    assert sorted(m["Subject"] for m in delivered) == sorted(expect), ([m["Subject"] for m in delivered], expect,
                                                                     text[-3000:])
    return text, delivered


@h.test
def fetchmail_pop3_starttls_keep_only_new():
    run = ("pop3-keep", "POP3", "pop3", "dave", True, False)
    text, _ = fetch(*run, send=["pop keep one", "pop keep two"], expect=["pop keep one", "pop keep two"])
    assert "POP3> STLS" in text, text
    # the UIDL list: only the new one is fetched
    text, _ = fetch(*run, send=["pop keep three"], expect=["pop keep one", "pop keep two", "pop keep three"])
    assert "3 messages (2 seen)" in text, text[-3000:]
    text, _ = fetch(*run, send=[], expect=["pop keep one", "pop keep two", "pop keep three"])
    assert "normal termination, status 1" in text, text[-3000:]  # nothing new
    assert sorted(subjects("dave")) == ["pop keep one", "pop keep three", "pop keep two"]  # kept on the server


@h.test
def fetchmail_refuses_certificate_of_another_ca():
    smtp_send("judy", "never fetched")
    for protocol, port in (("POP3", "pop3s"), ("IMAP", "imaps")):
        p, got = fetchmail("wrong-ca", protocol, port, "judy", False, True, ca=WRONG_CA)
        assert p.returncode == 2 and "certificate verify failed" in out(p) and not got, out(p)[-3000:]  # 2: socket
    assert subjects("judy") == ["never fetched"], subjects("judy")  # not taken (no-keep)


@h.test
def fetchmail_pop3s_nokeep():
    # lines that start with a dot are doubled on the POP3 wire (RETR, TOP) and must arrive as they were
    dots = ".leading dot\r\n..two dots\r\n.\r\nafter a lone dot\r\n.\r\n"
    append("frank", "INBOX", "pop3s dots", body=dots)
    _, got = fetch("pop3s", "POP3", "pop3s", "frank", False, True, send=["pop3s one", "pop3s two"],
                   expect=["pop3s dots", "pop3s one", "pop3s two"])
    assert subjects("frank") == [], subjects("frank")  # deleted on the server
    bodies = {m["Subject"]: m.get_payload().replace("\r\n", "\n") for m in got}
    assert bodies["pop3s one"] == "hello\n" and bodies["pop3s dots"] == dots.replace("\r\n", "\n"), bodies


@h.test
def fetchmail_imaps_keep_only_new():
    run = ("imaps-keep", "IMAP", "imaps", "grace", True, True)
    append("grace", "INBOX", "imap already read", flags="(\\Seen)")
    fetch(*run, send=["imap keep one"], expect=["imap keep one"])  # the message already read is not new
    fetch(*run, send=["imap keep two"], expect=["imap keep one", "imap keep two"])
    flags = {email.message_from_bytes(raw)["Subject"]: f for _, f, raw in folder("grace")}
    assert all("\\Seen" in f for f in flags.values()) and len(flags) == 3, flags  # kept, marked read


@h.test
def fetchmail_imap_starttls_nokeep():
    text, _ = fetch("imap-nokeep", "IMAP", "imap", "erin", False, False, send=["imap nokeep one", "imap nokeep two"],
                    expect=["imap nokeep one", "imap nokeep two"])
    assert "IMAP> A0001 STARTTLS" in text, text[-3000:]
    assert subjects("erin") == [], subjects("erin")  # deleted and expunged on the server


def idle_until_pushed(cmd, env, box, login, subject):
    """Runs fetchmail (cmd, env, box from fetchmail_command with idle) as a daemon that polls only every 10 minutes,
    sends login a message once it waits in IDLE, and checks that the message is fetched at once."""
    log_path = os.path.join(WORK, "fetchmail-%s.log" % login)
    with open(log_path, "wb") as log:
        p = subprocess.Popen(cmd + ["--daemon", "600"], stdout=log, stderr=subprocess.STDOUT, cwd=WORK,
                             env=dict(h.ENV, HOME=WORK, **env))

    def log_text():
        with open(log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    try:
        assert h.wait_for(lambda: re.search(r"IMAP> A\d+ IDLE", log_text()) or p.poll() is not None, timeout=15) \
            and p.poll() is None, log_text()[-3000:]
        before = [m["Subject"] for m in delivered_to(box)]
        S.send_mail(addr(login), "<%s@test>" % subject.replace(" ", "-"), subject=subject)
        assert h.wait_for(lambda: sorted(m["Subject"] for m in delivered_to(box)) == sorted(before + [subject]),
                          timeout=15), log_text()[-3000:]
    finally:
        p.terminate()
        p.wait(timeout=10)


@h.test
def fetchmail_imap_idle_push():
    cmd, env, box = fetchmail_command("idle", "IMAP", "imaps", "judy", True, True, idle=True)
    idle_until_pushed(cmd, env, box, "judy", "pushed while idle")


# ---- cyrus-clients ------------------------------------------------------------------------------------------------

def cyrus(tool, port, login, commands, mech="PLAIN", authzid=None, refused=False):
    """A cyrus-clients test tool signing in as login with mech after STARTTLS (for authzid: acting for that user,
    -u), then sending commands. These tools load no CA at all (they print the verification error and go on), so
    only the TLS session is checked. refused: the sign-in must fail (the output is returned)."""
    prog = need(os.path.join(CYRUS, tool), "cyrus-clients")
    p = client([prog, "-t", "", "-m", mech, "-a", login] + (["-u", authzid] if authzid else []) +
               ["-w", PW, "-p", str(S.ports[port]), "127.0.0.1"],
               input=("".join(c + "\r\n" for c in commands)).encode(), timeout=30)
    text = out(p)
    assert "TLS connection established" in text, text
    if refused:
        assert "Authenticated." not in text, text
        return text
    assert "Authenticated." in text, text
    assert re.search(r"Security strength factor: (\d+)", text) and \
        int(re.search(r"Security strength factor: (\d+)", text).group(1)) >= 128, text
    return text


@h.test
def cyrus_imtest():
    append("alice", "INBOX", "imtest target")
    text = cyrus("imtest", "imap", "alice", [
        "a1 SELECT INBOX", "a2 UID SEARCH RETURN (SAVE) SUBJECT \"imtest target\"", "a3 UID STORE $ +FLAGS (\\Flagged)",
        "a4 CREATE \"imtest folder\"", "a5 UID COPY $ \"imtest folder\"", "a6 LOGOUT"])
    for tag in ("a1", "a2", "a3", "a4", "a5", "a6"):
        assert re.search(r"^%s OK" % tag, text, re.M), (tag, text)
    flags = [f for _, f, raw in folder("alice") if b"Subject: imtest target" in raw]
    assert flags == [{"\\Flagged"}], flags
    assert subjects("alice", "imtest folder") == ["imtest target"]


@h.test
def cyrus_pop3test():
    smtp_send("ivan", "pop3test one")
    smtp_send("ivan", "pop3test two")
    before = subjects("ivan")
    text = cyrus("pop3test", "pop3", "ivan", ["STAT", "UIDL", "RETR 1", "DELE 1", "QUIT"])
    assert re.search(r"^\+OK %d \d+" % len(before), text, re.M), text
    assert "Subject: %s" % before[0] in text, text
    assert subjects("ivan") == before[1:], (subjects("ivan"), before, text)  # DELE took effect at QUIT


@h.test
def cyrus_smtptest():
    text = cyrus("smtptest", "submission", "bob", [
        "MAIL FROM:<%s>" % addr("bob"), "RCPT TO:<%s>" % addr("frank"), "DATA",
        "From: %s\r\nTo: %s\r\nSubject: smtptest message\r\n\r\nsent by smtptest\r\n." % (addr("bob"), addr("frank")),
        "QUIT"])
    assert "250 2.0.0" in text, text
    raw = wait_subject("frank", "smtptest message")
    assert b"sent by smtptest" in raw, raw


# ---- full access: user delegate OWNER --full-access USER --------------------------------------------------------

def curl_imap(login, path, *args, authzid=None):
    """curl over IMAP as login (PLAIN, acting for authzid when given) at imap://S/path: (return code, output)."""
    need("curl", "curl")
    cmd = ["curl", "-sS", "--max-time", "20", "-u", "%s:%s" % (login, PW), "--login-options", "AUTH=PLAIN"]
    if authzid:
        cmd += ["--sasl-authzid", authzid]
    p = client(cmd + list(args) + ["imap://127.0.0.1:%d/%s" % (S.ports["imap"], path)])
    return p.returncode, out(p)


def other(path):
    """A URL path of nora's mailbox as otto sees it (the other users' namespace)."""
    return "Other%20Users/nora/" + path


@h.test
def full_access_delegate_with_curl_imtest_and_pop3test():
    m = imap("nora")
    m.create("Projects")
    m.logout()
    append("nora", "INBOX", "for the assistant")
    append("nora", "Projects", "project plan")
    # without the right otto sees nothing of nora's and cannot act for her
    code, text = curl_imap("otto", "", "-X", 'LIST "" "Other Users/nora/*"')
    assert code == 0 and "nora" not in text, text
    code, text = curl_imap("otto", other("Projects;UID=1"))
    assert code != 0 and "project plan" not in text, text
    cyrus("imtest", "imap", "otto", ["a1 LOGOUT"], authzid="nora", refused=True)

    S.cli("user", "delegate", "nora", "--full-access", "otto", check=True)
    assert "already has" in S.cli("user", "delegate", "nora", "--full-access", "otto").stdout + \
        S.cli("user", "delegate", "nora", "--full-access", "otto").stderr
    m = imap("nora")  # a folder made after the grant is shared as well
    m.create("Later")
    m.logout()
    code, text = curl_imap("otto", "", "-X", 'LIST "" "Other Users/nora/*"')
    for name in ("INBOX", "Projects", "Later"):
        assert re.search(r'"Other Users/nora/%s"|Other Users/nora/%s\r?$' % (name, name), text, re.M), (name, text)
    code, text = curl_imap("otto", other("Projects;UID=1"))
    assert code == 0 and "Subject: project plan" in text, text
    code, text = curl_imap("otto", "", "-X", 'MYRIGHTS "Other Users/nora/Later"')
    assert code == 0 and re.search(r"MYRIGHTS .* lrswipkxtea", text), text
    text = cyrus("imtest", "imap", "otto", ['a1 GETACL "Other Users/nora/INBOX"', "a2 LOGOUT"])
    assert re.search(r'^\* ACL "Other Users/nora/INBOX" .*nora lrswipkxtea', text, re.M) and \
        "otto lrswipkxtea" in text, text
    # and writes: a message put into her INBOX, a folder made in her mailbox
    msg = os.path.join(WORK, "from-otto.eml")
    with open(msg, "wb") as f:
        f.write(b"From: otto.wolf@example.com\r\nSubject: filed by the assistant\r\n\r\nfiled\r\n")
    code, text = curl_imap("otto", other("INBOX"), "-T", msg)
    assert code == 0, text
    assert "filed by the assistant" in subjects("nora"), subjects("nora")
    code, text = curl_imap("otto", "", "-X", 'CREATE "Other Users/nora/Made by otto"')
    assert code == 0, text
    assert subjects("nora", "Made by otto") == []

    # signing in to her mailbox with his own password: curl, imtest and pop3test name her as authzid
    code, text = curl_imap("otto", "INBOX;UID=1", authzid="nora")
    assert code == 0 and "Subject: for the assistant" in text, text
    code, text = curl_imap("otto", "", "-X", "NOOP", authzid=addr("otto"))  # naming himself: his own sign-in
    assert code == 0, text
    mark = S.log_mark("imapd")
    text = cyrus("imtest", "imap", "otto", ["a1 SELECT INBOX", "a2 UID FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]",
                                            "a3 LOGOUT"], authzid="nora")
    assert re.search(r"^a2 OK", text, re.M) and "for the assistant" in text, text
    S.wait_log("imapd", "login for nora by otto (full access)", mark)
    count = len(subjects("nora"))
    text = cyrus("pop3test", "pop3", "otto", ["STAT", "QUIT"], authzid="nora")
    assert re.search(r"^\+OK %d \d+" % count, text, re.M), (count, text)
    # someone without the right is refused, on both protocols, whatever their password
    for tool, port in (("imtest", "imap"), ("pop3test", "pop3")):
        cyrus(tool, port, "frank", ["QUIT"], authzid="nora", refused=True)
    code, text = curl_imap("frank", "INBOX;UID=1", authzid="nora")
    assert code != 0 and "for the assistant" not in text, text

    # revoking: a session signed in for her, and one of his with her INBOX selected, are closed at their next
    # command; new sign-ins are refused, the folders gone
    m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=20)
    m.authenticate("PLAIN", lambda _: b"nora\0otto\0" + PW.encode())
    assert m.select("INBOX")[0] == "OK"
    own = imap("otto")
    assert own.select('"Other Users/nora/INBOX"')[0] == "OK"
    S.cli("user", "delegate", "nora", "--full-access", "otto", "--revoke", check=True)

    def closed(session):
        try:
            session.noop()
            return False
        except (imaplib.IMAP4.abort, OSError):
            return True
    assert h.wait_for(lambda: closed(m), timeout=5, interval=0.2), "the session signed in for nora stayed open"
    assert h.wait_for(lambda: closed(own), timeout=5, interval=0.2), "otto's selected INBOX of nora stayed open"
    cyrus("imtest", "imap", "otto", ["a1 LOGOUT"], authzid="nora", refused=True)
    code, text = curl_imap("otto", other("Projects;UID=1"))
    assert code != 0 and "project plan" not in text, text
    code, text = curl_imap("otto", "", "-X", 'LIST "" "Other Users/nora/*"')
    assert code == 0 and "nora" not in text, text


# ---- mbsync (isync) -----------------------------------------------------------------------------------------------

def mbsync(ssl_type, port, ca=None, login="heidi"):
    """One mbsync run of login's mailbox (signing in with the address) with the Maildir WORK/maildir-LOGIN."""
    prog = need("mbsync", "isync")
    root = os.path.join(WORK, "maildir-" + login)
    os.makedirs(root, exist_ok=True)
    rc = os.path.join(WORK, "mbsyncrc-" + login)
    with open(rc, "w") as f:
        f.write("IMAPAccount ix\nHost 127.0.0.1\nPort %d\nUser %s\nPass %s\nSSLType %s\nCertificateFile %s\n"
                "SystemCertificates no\n\n"
                "IMAPStore remote\nAccount ix\n\n"
                "MaildirStore local\nPath %s/\nInbox %s/INBOX\nSubFolders Verbatim\n\n"
                "Channel ix\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nExpunge Both\nRemove None\n"
                "SyncState *\n" % (S.ports[port], addr(login), PW, ssl_type, ca or CA, root, root))
    # mbsync waits a second when a Maildir folder changed within the current second (its change detection works
    # in whole seconds): the test's own changes are dated in the past
    past = time.time() - 5
    for d, _, _ in os.walk(root):
        os.utime(d, (past, past))
    p = client([prog, "-c", rc, "-V", "ix"])
    return p, root


def maildir(root):
    """The local side: {folder: {subject: maildir flags}}."""
    found = {}
    for d, subdirs, files in os.walk(root):
        if os.path.basename(d) not in ("cur", "new"):
            continue
        box = os.path.relpath(os.path.dirname(d), root)
        for n in files:
            with open(os.path.join(d, n), "rb") as f:
                subject = email.message_from_bytes(f.read())["Subject"]
            found.setdefault(box, {})[subject] = n.split(":2,", 1)[1] if ":2," in n else ""
    return found


def server_state(login):
    """{folder: {subject: flags}} over IMAP, and each folder's STATUS (a sync that changes nothing leaves it)."""
    m = imap(login)
    try:
        typ, data = m.list()
        names = [re.search(rb'"/" "?([^"]*)"?$', line).group(1).decode() for line in data
                 if b"\\Noselect" not in line]
        status = {}
        for n in names:
            typ, st = m.status('"%s"' % n, "(MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)")
            status[n] = st[0]
    finally:
        m.logout()
    boxes = {n: {email.message_from_bytes(raw)["Subject"]: flags for _, flags, raw in folder(login, n)}
             for n in names}
    return {n: b for n, b in boxes.items() if b}, status


@h.test
def mbsync_pull_folders():
    smtp_send("heidi", "sync inbox one")
    smtp_send("heidi", "sync inbox two")
    m = imap("heidi")
    for n in ("Work", "Work/Projects"):
        assert m.create('"%s"' % n)[0] == "OK"
    m.logout()
    append("heidi", "Work", "sync work one")
    append("heidi", "Work/Projects", "sync project one", flags="(\\Flagged \\Seen)")
    append("heidi", "Archive", "sync archived", flags="(\\Seen \\Answered)")
    p, root = mbsync("IMAPS", "imaps", ca=WRONG_CA)
    assert p.returncode != 0 and not os.path.exists(os.path.join(root, "INBOX")), out(p)[-2000:]  # verified
    p, root = mbsync("IMAPS", "imaps")
    assert p.returncode == 0, out(p)[-3000:]
    local = maildir(root)
    assert local == {"INBOX": {"sync inbox one": "", "sync inbox two": ""}, "Work": {"sync work one": ""},
                     "Work/Projects": {"sync project one": "FS"}, "Archive": {"sync archived": "RS"}}, local


@h.test
def mbsync_push_changes():
    need("mbsync", "isync")
    root = os.path.join(WORK, "maildir-heidi")
    if not os.path.isdir(root):
        h.skip("mbsync_pull_folders made no Maildir")
    names = {}
    for d, _, files in os.walk(root):
        for n in files:
            if "," in n and os.path.basename(d) in ("cur", "new"):
                with open(os.path.join(d, n), "rb") as f:
                    names[email.message_from_bytes(f.read())["Subject"]] = os.path.join(d, n)
    # a flag set, a flag taken off, a message deleted, a message added to an existing and to a new folder
    one = names["sync inbox one"]
    os.rename(one, os.path.join(root, "INBOX", "cur", os.path.basename(one).split(":2,")[0] + ":2,FS"))
    proj = names["sync project one"]
    os.rename(proj, proj[:-len(":2,FS")] + ":2,S")
    os.unlink(names["sync inbox two"])
    for box, subject in (("Work", "sync local new"), ("Fresh", "sync fresh folder")):
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(root, box, sub), exist_ok=True)
        with open(os.path.join(root, box, "new", "%d.local.%s" % (time.time_ns(), box)), "wb") as f:
            f.write(("From: %s\r\nSubject: %s\r\nMessage-ID: <%s@local>\r\n\r\nwritten locally\r\n" % (
                addr("heidi"), subject, subject.replace(" ", "-"))).encode())
    p, _ = mbsync("STARTTLS", "imap")
    assert p.returncode == 0, out(p)[-3000:]
    boxes, status = server_state("heidi")
    assert boxes == {"INBOX": {"sync inbox one": {"\\Flagged", "\\Seen"}},
                     "Work": {"sync work one": set(), "sync local new": set()},
                     "Work/Projects": {"sync project one": {"\\Seen"}}, "Archive": {"sync archived": {"\\Seen",
                                                                                                   "\\Answered"}},
                     "Fresh": {"sync fresh folder": set()}}, boxes
    # a second synchronisation has nothing to do: nothing changes on either side
    local = maildir(root)
    p, _ = mbsync("IMAPS", "imaps")
    assert p.returncode == 0, out(p)[-3000:]
    assert server_state("heidi") == (boxes, status), (server_state("heidi"), boxes, status)
    assert maildir(root) == local


@h.test
def mbsync_pulls_server_changes():
    need("mbsync", "isync")
    root = os.path.join(WORK, "maildir-heidi")
    if not os.path.isdir(root):
        h.skip("mbsync_pull_folders made no Maildir")
    # another client changes flags, expunges a message and adds one; mbsync brings the Maildir to the same state
    m = imap("heidi")
    try:
        m.select("Work")
        typ, data = m.uid("SEARCH", "SUBJECT", '"sync work one"')
        assert m.uid("STORE", data[0], "+FLAGS", "(\\Answered \\Seen)")[0] == "OK"
        typ, data = m.uid("SEARCH", "SUBJECT", '"sync local new"')
        assert m.uid("STORE", data[0], "+FLAGS", "(\\Deleted)")[0] == "OK"
        assert m.expunge()[0] == "OK"
    finally:
        m.logout()
    append("heidi", "Work/Projects", "sync project two", flags="(\\Draft)")
    p, _ = mbsync("STARTTLS", "imap")
    assert p.returncode == 0, out(p)[-3000:]
    local = maildir(root)
    assert local["Work"] == {"sync work one": "RS"}, local
    assert local["Work/Projects"] == {"sync project one": "S", "sync project two": "D"}, local


# ---- neomutt ------------------------------------------------------------------------------------------------------

def neomutt_rc(login, lines, imap=False):
    """A neomuttrc for login: TLS verified with the server's certificate, no caches, no pauses or questions; imap:
    login's IMAPS mailbox on S as the folder, no keyword for old messages; then lines."""
    path = os.path.join(WORK, "neomuttrc-" + login)
    common = ['set ssl_ca_certificates_file = "%s"' % CA, 'set certificate_file = "%s/neomutt-certs"' % WORK,
              "set ssl_force_tls = yes", "set ssl_starttls = yes", 'set header_cache = ""', 'set message_cachedir = ""',
              'set record = ""', 'set from = "%s"' % addr(login), "set sleep_time = 0", "set wait_key = no",
              "set confirmappend = no", "set confirmcreate = no", "set delete = yes", "set move = no",
              "set resolve = no"]
    if imap:
        common += ['set imap_user = "%s"' % login, 'set imap_pass = "%s"' % PW,
                   'set folder = "imaps://127.0.0.1:%d/"' % S.ports["imaps"], 'set spoolfile = "+INBOX"',
                   "set mark_old = no"]
    with open(path, "w") as f:
        f.write("\n".join(common + lines) + "\n")
    return path


@h.test
def neomutt_send_submission():
    prog = need("neomutt", "neomutt")
    rc = neomutt_rc("grace", ['set smtp_url = "smtp://grace@127.0.0.1:%d/"' % S.ports["submission"],
                              'set smtp_pass = "%s"' % PW, 'set realname = "Grace Hall"'])
    p = client([prog, "-n", "-F", rc, "-s", "neomutt sent this", "--", addr("alice")],
               input="Grüße from neomutt\n".encode(), timeout=30)
    assert p.returncode == 0, out(p)
    raw = wait_subject("alice", "neomutt sent this")
    wrong = neomutt_rc("grace", ['set smtp_url = "smtp://grace@127.0.0.1:%d/"' % S.ports["submission"],
                                 'set smtp_pass = "%s"' % PW, 'set ssl_ca_certificates_file = "%s"' % WRONG_CA])
    p = client([prog, "-n", "-F", wrong, "-s", "neomutt never sent", "--", addr("alice")], input=b"no\n", timeout=30)
    assert p.returncode != 0, out(p)  # the certificate did not verify: nothing sent (checked below)
    msg = email.message_from_bytes(raw, policy=email.policy.default)  # in the charset neomutt chose for it
    assert "Grace Hall" in msg["From"] and "Grüße from neomutt" in msg.get_content(), raw
    assert not with_subject("alice", "neomutt never sent")


def on_terminal(cmd, steps=(), timeout=30):
    """Runs cmd on a pseudo-terminal of its own (neomutt's index needs one) until it exits; returns (status,
    screen output). steps: (text, action) pairs taken in order: once text appears on the screen (after the previous
    step), action runs: a string is typed, a function is called."""
    master, slave = pty.openpty()
    p = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, cwd=WORK, close_fds=True,
                         env=dict(h.ENV, HOME=WORK, TERM="xterm", LC_ALL="C.UTF-8", COLUMNS="100", LINES="30"))
    os.close(slave)
    screen = b""
    steps, since = list(steps), 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the program closed the terminal
                    chunk = b""
                if not chunk:
                    break
                screen += chunk
            elif p.poll() is not None:
                break
            if steps and steps[0][0].encode() in screen[since:]:
                action = steps.pop(0)[1]
                since = len(screen)
                if callable(action):
                    action()
                else:
                    os.write(master, action.encode())
        else:
            p.kill()
        return p.wait(timeout=5), screen.decode("utf-8", "replace")
    finally:
        os.close(master)


@h.test
def neomutt_index_over_imaps():
    prog = need("neomutt", "neomutt")
    append("bob", "INBOX", "neomutt keep")
    append("bob", "INBOX", "neomutt file away")
    for i in range(30):
        append("bob", "INBOX", "neomutt bulk %d" % i)
    m = imap("bob")
    m.append("INBOX", None, None, b"From: someone@outside.org\r\nSubject: neomutt umlaut\r\nMIME-Version: 1.0\r\n"
             b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
             b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln\r\n")
    m.logout()
    rc = neomutt_rc("bob", [], imap=True)
    # what a user types: find a message by a word of its body (searched on the server: =b), flag one message and copy
    # it to a new folder, save another to Archive (which deletes it here), delete the bulk, sync, quit
    keys = ('<tag-pattern>=b "Köln"<enter><tag-prefix><copy-message>=Found<enter><untag-pattern>~A<enter>'
            '<tag-pattern>~s "neomutt keep"<enter><tag-prefix><flag-message><tag-prefix><copy-message>=Entwürfe<enter>'
            '<untag-pattern>~A<enter>'
            '<tag-pattern>~s "neomutt file away"<enter><tag-prefix><save-message>=Archive<enter>'
            '<delete-pattern>~s "neomutt bulk"<enter><sync-mailbox><quit>')
    status, screen = on_terminal([prog, "-n", "-F", rc, "-e", "push '%s'" % keys])
    assert status == 0, screen[-2000:]
    inbox = {email.message_from_bytes(raw)["Subject"]: f for _, f, raw in folder("bob")}
    assert inbox.get("neomutt keep") == {"\\Flagged"} and "neomutt file away" not in inbox, (inbox, screen[-2000:])
    assert not [subject for subject in inbox if subject.startswith("neomutt bulk")], inbox
    assert "neomutt file away" in subjects("bob", "Archive"), subjects("bob", "Archive")
    assert subjects("bob", "Entw&APw-rfe") == ["neomutt keep"]  # made by COPY's TRYCREATE, named in UTF-8
    assert subjects("bob", "Found") == ["neomutt umlaut"]  # the quoted-printable body decoded for SEARCH BODY


@h.test
def neomutt_sees_new_mail_while_idle():
    # the index open and waiting in IMAP IDLE: mail delivered meanwhile shows up, and the user flags it
    prog = need("neomutt", "neomutt")
    debug = os.path.join(WORK, "neomutt-idle-debug")
    rc = neomutt_rc("dave", ["set imap_idle = yes", "set timeout = 1", "set mail_check = 1", "set debug_level = 2",
                             'set debug_file = "%s"' % debug], imap=True)
    keys = """:push '<tag-pattern>~s "idle news"<enter><tag-prefix><flag-message><sync-mailbox><quit>'\r"""
    status, screen = on_terminal([prog, "-n", "-F", rc], steps=[
        ("Msgs:", lambda: S.send_mail(addr("dave"), "<idle-news@test>", subject="idle news")),
        ("idle news", keys)])
    assert status == 0, screen[-2000:]
    assert [f for _, f, raw in folder("dave") if b"Subject: idle news" in raw] == [{"\\Flagged"}], screen[-2000:]
    with open(debug + "0", errors="replace") as f:
        assert re.search(r"> a\d+ IDLE", f.read()), "neomutt did not use IDLE"


@h.test
def neomutt_compose_with_fcc_over_imap():
    # what a user does: compose (the editor writes the text), attach a file, send over submission with implicit TLS
    # (smtps); the copy goes to Sent over IMAP (neomutt does that only on its terminal, not in batch mode)
    prog = need("neomutt", "neomutt")
    editor = os.path.join(WORK, "editor.sh")
    with open(editor, "w") as f:
        f.write('#!/bin/sh\nprintf "typed in the editor\\n" >> "$1"\n')
    os.chmod(editor, 0o755)
    attachment = os.path.join(WORK, "report.bin")
    data = os.urandom(100000)
    with open(attachment, "wb") as f:
        f.write(data)
    rc = neomutt_rc("grace", ['set smtp_url = "smtps://grace@127.0.0.1:%d/"' % S.ports["submissions"],
                              'set smtp_pass = "%s"' % PW, 'set record = "+Sent"', 'set editor = "%s"' % editor,
                              "set askcc = no"], imap=True)
    # typed as a user does, each key once the screen asks for it (the default bindings: m mail, a attach, y send)
    status, screen = on_terminal([prog, "-n", "-F", rc], steps=[
        ("Msgs:", "m"), ("To: ", addr("ivan") + "\r"), ("Subject: ", "composed in neomutt\r"), ("y:Send", "a"),
        ("Attach file", attachment + "\r"), ("report.bin", "y"), ("Mail sent", "q")])
    assert status == 0, screen[-2000:]
    for login, box in (("ivan", "INBOX"), ("grace", "Sent")):
        msg = email.message_from_bytes(wait_subject(login, "composed in neomutt", box), policy=email.policy.default)
        parts = list(msg.iter_attachments())
        assert "typed in the editor" in msg.get_body(("plain",)).get_content(), (login, box, msg)
        assert len(parts) == 1 and parts[0].get_content() == data, (login, box, [p.get_filename() for p in parts])
    flags = [f for _, f, raw in folder("grace", "Sent") if b"composed in neomutt" in raw]
    assert flags == [{"\\Seen"}], flags


@h.test
def neomutt_pop3s_mailbox():
    # a POP3 mailbox opened on the terminal (SASL PLAIN through its default authenticators): a message deleted there
    # is gone from the server once neomutt syncs
    prog = need("neomutt", "neomutt")
    for subject in ("pop one", "pop two", "pop three"):
        smtp_send("kate", subject)
    rc = neomutt_rc("kate", ['set pop_user = "kate"', 'set pop_pass = "%s"' % PW,
                             'set folder = "pops://127.0.0.1:%d/"' % S.ports["pop3s"], 'set spoolfile = "+"'])
    status, screen = on_terminal([prog, "-n", "-F", rc, "-e", """push '<delete-pattern>~s "pop two"<enter>"""
                                  """<sync-mailbox><quit>'"""])
    assert status == 0, screen[-2000:]
    assert sorted(subjects("kate")) == ["pop one", "pop three"], (subjects("kate"), screen[-2000:])


# ---- the same programs through the proxy: a mailbox homed on another server of the organisation --------------------

@h.setup
def second_server_with_a_user():
    global B
    B = h.Joined(S, "127.0.0.1")  # its host name is its address: S's proxy connects to it there
    for login, (given, surname) in HOMED_ON_B.items():
        B.cli("user", "add", login, "--given", given, "--surname", surname, "--password", PW, check=True)
        # ready once S's directory has the user with an address (before: each login tried counts as a failure
        # towards the throttle), S's IMAP takes the password (proxied to B) and S's smtpd the address (relayed to B)
        assert h.wait_for(lambda: [e for e in h.entries(S.ldapsearch("(uid=%s)" % login, "mail", bind_dn=S.admin_dn,
                                                                    password=S.admin_password).stdout)
                                   if "mail" in e], timeout=30), login + " not in S's directory"
        assert h.wait_for(lambda: h.imap_login_ok(S.ports["imap"], login, PW), timeout=15, interval=0.5), login
        assert h.wait_for(lambda: S.rcpt_code(addr(login)) == 250, timeout=15), S.rcpt_code(addr(login))


@h.test
def proxied_mbsync_both_ways():
    smtp_send("lena", "proxied inbox one")
    m = imap("lena")
    assert m.create('"Work/Deep"')[0] == "OK"
    m.logout()
    append("lena", "Work/Deep", "proxied deep", flags="(\\Flagged)")
    p, root = mbsync("STARTTLS", "imap", login="lena")
    assert p.returncode == 0, out(p)[-3000:]
    local = maildir(root)
    assert local == {"INBOX": {"proxied inbox one": ""}, "Work/Deep": {"proxied deep": "F"}}, local
    inbox = os.path.join(root, "INBOX")
    one = [os.path.join(inbox, d, n) for d in ("cur", "new") for n in os.listdir(os.path.join(inbox, d))][0]
    os.rename(one, os.path.join(inbox, "cur", os.path.basename(one).split(":2,")[0] + ":2,S"))
    with open(os.path.join(root, "Work", "Deep", "new", "%d.local.deep" % time.time_ns()), "wb") as f:
        f.write(b"From: someone@outside.org\r\nSubject: proxied local\r\n\r\n" + b"x" * 200000 + b"\r\n")
    p, _ = mbsync("IMAPS", "imaps", login="lena")
    assert p.returncode == 0, out(p)[-3000:]
    boxes, _ = server_state("lena")  # on B itself
    assert boxes == {"INBOX": {"proxied inbox one": {"\\Seen"}},
                     "Work/Deep": {"proxied deep": {"\\Flagged"}, "proxied local": set()}}, boxes


@h.test
def proxied_scram_and_bearer_sign_ins():
    # S checks the SCRAM proof or the token itself, then signs in at B as a server of the organisation for the user
    # (SASL EXTERNAL with its certificate): no password reaches B (docs/imap-pop3.md "Proxying")
    for tool, port, command in (("imtest", "imap", "a1 SELECT INBOX"), ("pop3test", "pop3", "STAT")):
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
            text = cyrus(tool, port, "lena", [command], mech=mech)
            assert re.search(r"^(a1 OK|\+OK \d+ \d+)", text, re.M), (tool, mech, text)
    mark = B.log_mark("imapd")
    cyrus("imtest", "imap", "lena", ["a1 LOGOUT"], mech="SCRAM-SHA-256")
    B.wait_log("imapd", "login for lena from 127.0.0.1 by the server", mark)
    keys = signin_clients.Keys()
    keys.new("proxy-1", "ES256")
    jwks = os.path.join(WORK, "proxy-jwks.json")
    keys.write_jwks(jwks, ["proxy-1"])
    S.cli("oauth", "add", "https://idp.example.test/proxy", "--jwks", jwks, "--audience", "mail", check=True)
    try:
        token = keys.mint("proxy-1", "https://idp.example.test/proxy", "mail", email=addr("lena"))
        for proto in ("imap", "pop3"):
            assert h.wait_for(lambda: h.run(["curl", "-sS", "--max-time", "20", "-u", addr("lena") + ":",
                                             "--oauth2-bearer", token, "%s://127.0.0.1:%d/" % (proto, S.ports[proto])],
                                            timeout=30).returncode == 0, timeout=10, interval=0.3), proto
    finally:
        S.cli("oauth", "del", "https://idp.example.test/proxy", check=True)


def external(port, login, cert=None):
    """AUTHENTICATE EXTERNAL for login at port after STARTTLS, presenting cert (a (certificate, key) pair) or none:
    the server's answer (what is checked here is the server's side: its certificate is not)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert is not None:
        ctx.load_cert_chain(*cert)
        ctx.post_handshake_auth = True  # asked for it only after the handshake, as our own servers are
    m = imaplib.IMAP4("127.0.0.1", port)
    try:
        m.starttls(ctx)
        typ, data = m._simple_command("AUTHENTICATE", "EXTERNAL", base64.b64encode(login.encode()).decode())
        return typ, data
    except imaplib.IMAP4.error as e:
        return "NO", [str(e).encode()]
    finally:
        try:
            m.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


@h.test
def the_trusted_server_sign_in_is_for_servers_only():
    # a user (no certificate, or one of their own) cannot use the path the proxy signs in with
    for cert in (None, (os.path.join(WORK, "other.pem"), os.path.join(WORK, "other.key"))):
        for port in (B.ports["imap"], S.ports["imap"]):
            typ, data = external(port, "lena", cert)
            assert typ == "NO", (port, cert, typ, data)
    # a server's certificate signs in only users homed there: B does not act for S's users, S not for B's (S asked
    # for the certificate after the handshake and got it: refused for where the mailbox is, not for its lack)
    own = (os.path.join(B.data, "tls", "cert.pem"), os.path.join(B.data, "tls", "key.pem"))
    mark = S.log_mark("imapd")
    typ, data = external(S.ports["imap"], "lena", own)
    assert typ == "NO", (typ, data)
    S.wait_log("imapd", "EXTERNAL for lena, whose mailbox is not here", mark)
    # a client that offered it and leaves without answering: the session waiting for the certificate ends with it
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(*own)
    ctx.post_handshake_auth = True
    mark = B.log_mark("imapd")
    for _ in range(3):
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", B.ports["imaps"]), timeout=20)) as t:
            assert t.recv(4096).startswith(b"* OK"), "no greeting"
            t.sendall(b"a AUTHENTICATE EXTERNAL " + base64.b64encode(b"lena") + b"\r\n")
    # and at its home, with that certificate given when asked, Python's ssl signs in as a proxy of ours does
    typ, data = external(B.ports["imap"], "lena", own)
    assert typ == "OK", (typ, data)
    assert "login for lena from 127.0.0.1 by the server" in B.log("imapd", mark), B.log("imapd", mark)[-2000:]


@h.test
def proxied_fetchmail_pop3_and_imap_idle():
    before = subjects("lena")
    fetch("proxied-pop3", "POP3", "pop3", "lena", False, False, send=["proxied pop"], expect=before + ["proxied pop"])
    assert subjects("lena") == [], subjects("lena")  # deleted on B
    cmd, env, box = fetchmail_command("proxied-idle", "IMAP", "imaps", "lena", True, True, idle=True)
    idle_until_pushed(cmd, env, box, "lena", "proxied idle")


@h.test
def proxied_neomutt_index():
    prog = need("neomutt", "neomutt")
    for subject in ("proxied neomutt keep", "proxied neomutt delete"):
        append("lena", "INBOX", subject)
    rc = neomutt_rc("lena", [], imap=True)
    keys = ('<tag-pattern>~s "proxied neomutt keep"<enter><tag-prefix><flag-message><tag-prefix>'
            '<copy-message>=Kept<enter><untag-pattern>~A<enter><delete-pattern>~s "proxied neomutt delete"<enter>'
            '<sync-mailbox><quit>')
    status, screen = on_terminal([prog, "-n", "-F", rc, "-e", "push '%s'" % keys])
    assert status == 0, screen[-2000:]
    inbox = {email.message_from_bytes(raw)["Subject"]: f for _, f, raw in folder("lena")}
    assert inbox.get("proxied neomutt keep") == {"\\Flagged"} and "proxied neomutt delete" not in inbox, inbox
    assert subjects("lena", "Kept") == ["proxied neomutt keep"]


@h.test
def mailbox_move_unseen_by_mbsync_and_fetchmail():
    # `interchange user move` keeps UIDVALIDITY and UIDs: after the move, mbsync and fetchmail (UIDL) carry on through
    # the proxy as if nothing happened: nothing fetched again, only the new mail
    smtp_send("mona", "before the move")
    append("mona", "Archive", "archived before", flags="(\\Seen)")
    p, root = mbsync("IMAPS", "imaps", login="mona")
    assert p.returncode == 0, out(p)[-3000:]
    pulled = maildir(root)
    run = ("moving", "POP3", "pop3", "mona", True, False)
    fetch(*run, send=[], expect=["before the move"])
    before, status = server_state("mona")
    p = S.cli("user", "move", "mona", "--to", B.hostname, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    MOVED_TO_B.add("mona")
    assert server_state("mona") == (before, status), (server_state("mona"), before, status)  # as it was, on B
    smtp_send("mona", "after the move")  # relayed by S to B

    def via_s():  # S's daemons learn the new home a moment after its directory: until then they have the old copy
        m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=20)
        try:
            m.login("mona", PW)
            m.select("INBOX", readonly=True)
            return m.search(None, "SUBJECT", '"after the move"')[1][0]
        finally:
            m.logout()
    assert h.wait_for(via_s, timeout=15, interval=0.2), "S does not proxy mona to B"
    p, _ = mbsync("STARTTLS", "imap", login="mona")
    assert p.returncode == 0, out(p)[-3000:]
    pulled["INBOX"]["after the move"] = ""
    assert maildir(root) == pulled, (maildir(root), pulled)
    text, _ = fetch(*run, send=[], expect=["before the move", "after the move"])
    assert "2 messages (1 seen)" in text, text[-3000:]

if __name__ == "__main__":
    h.main("clients")
