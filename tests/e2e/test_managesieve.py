#!/usr/bin/env python3
# test_managesieve.py - ix-managesieved (RFC 5804, issue 21) against the real system: Debian's sieve-connect uploads,
# activates, lists, downloads and deletes scripts over STARTTLS, verifying the server's certificate (cert show
# --pem), and a script uploaded so then files a delivered message into a folder (read over IMAP); the protocol's
# errors with a raw client: a bad script answered NO with the Sieve parser's message, the quota codes, commands
# before login, NONEXISTENT / ACTIVE / ALREADYEXISTS, the out-of-office script hidden, a literal over the limit and
# an endless line (BYE, closed at once, the daemon's memory bounded), a wrong password and UNAUTHENTICATE; SCRAM
# (Cyrus's sivtest) and app passwords as for IMAP.
import base64
import imaplib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = None
PW = "secret-pw"
TMP = None
CA = None
HOST = "mail.example.com"

RULES = """require ["fileinto"];
if header :contains "subject" "invoice" { fileinto "Invoices"; stop; }
"""


def sieve_connect(*args, user="alice", password=PW, ca=None):
    """Runs sieve-connect over STARTTLS to the ManageSieve port, verifying the certificate for HOST with ca."""
    r, w = os.pipe()
    os.write(w, (password + "\n").encode())
    os.close(w)
    try:
        return subprocess.run(["sieve-connect", "-s", "127.0.0.1", "-p", str(S.ports["sieve"]), "--tlshostname", HOST,
                               "--tlscafile", ca or CA, "-u", user, "--passwordfd", str(r), "--noclearauth"] +
                              list(args), pass_fds=(r,), capture_output=True, text=True, timeout=60)
    finally:
        os.close(r)


class Client:
    """A raw ManageSieve client on loopback (where a password may go without TLS, as for IMAP and POP3)."""

    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", S.ports["sieve"]), timeout=10)
        self.f = self.s.makefile("rb")
        self.greeting = self.response()

    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        return self.f.readline().decode("utf-8", "replace")

    def response(self):
        """Every line up to and including the OK/NO/BYE line."""
        lines = []
        while True:
            line = self.line()
            if line == "":
                lines.append("<closed>")
                return lines
            lines.append(line.rstrip("\r\n"))
            if line.split(" ", 1)[0].rstrip("\r\n") in ("OK", "NO", "BYE"):
                return lines

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.response()

    def login(self, user="alice", password=PW):
        ir = base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()
        return self.cmd('AUTHENTICATE "PLAIN" "%s"' % ir)

    def put(self, name, script):
        data = script.encode()
        return self.cmd('PUTSCRIPT "%s" {%d+}\r\n' % (name, len(data)) + script)

    def close(self):
        self.s.close()


def fetch_subject(login, folder, subject):
    m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=10)
    try:
        m.login(login, PW)
        typ, _ = m.select(folder, readonly=True)
        if typ != "OK":
            return False
        typ, data = m.search(None, "SUBJECT", '"%s"' % subject)
        return typ == "OK" and bool(data[0].split())
    finally:
        m.logout()


@h.setup
def setup():
    global S, TMP, CA
    if shutil.which("sieve-connect") is None:
        h.skip("sieve-connect is not installed (make deps)")
    if shutil.which("swaks") is None:
        h.skip("swaks is not installed (make deps)")
    S = h.System(extra=["--setting", "smtp.inbound_checks=0"])
    TMP = tempfile.mkdtemp(prefix="ixms-")
    for login, given in (("alice", "Alice"), ("bob", "Bob")):
        S.cli("user", "add", login, "--given", given, "--surname", "Smith", "--password", PW, check=True)
    assert h.wait_for(lambda: h.imap_login_ok(S.ports["imap"], "alice", PW), timeout=15)
    CA = os.path.join(TMP, "ca.pem")
    p = S.cli("cert", "show", "--pem", check=True)
    with open(CA, "w") as f:
        f.write(p.stdout)


@h.test
def sieve_connect_uploads_activates_lists_downloads_deletes():
    local = os.path.join(TMP, "rules.sieve")
    with open(local, "w") as f:
        f.write(RULES)
    p = sieve_connect("--upload", "--localsieve", local, "--remotesieve", "rules")
    assert p.returncode == 0, p.stdout + p.stderr
    p = sieve_connect("--activate", "--remotesieve", "rules")
    assert p.returncode == 0, p.stdout + p.stderr
    p = sieve_connect("--upload", "--localsieve", local, "--remotesieve", "spare")
    assert p.returncode == 0, p.stdout + p.stderr
    p = sieve_connect("--list")
    assert p.returncode == 0 and p.stdout.splitlines() == ['"rules" ACTIVE', '"spare"'], p.stdout + p.stderr
    back = os.path.join(TMP, "back.sieve")
    p = sieve_connect("--download", "--remotesieve", "rules", "--localsieve", back)
    assert p.returncode == 0, p.stdout + p.stderr
    with open(back) as f:
        assert f.read() == RULES
    p = sieve_connect("--delete", "--remotesieve", "spare")
    assert p.returncode == 0, p.stdout + p.stderr
    # the same scripts as the administrator sees them
    p = S.cli("user", "sieve", "alice")
    assert p.stdout.strip() == "rules (active)", p.stdout + p.stderr
    # a bad script is refused with the parser's message
    bad = os.path.join(TMP, "bad.sieve")
    with open(bad, "w") as f:
        f.write('if true { fileinto "x"; }\n')
    p = sieve_connect("--upload", "--localsieve", bad, "--remotesieve", "bad")
    assert p.returncode != 0 and 'fileinto needs require' in p.stdout + p.stderr, p.stdout + p.stderr
    # a certificate from another CA is refused by the client: the verification is real
    other = os.path.join(TMP, "other-ca.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    os.path.join(TMP, "other.key"), "-out", other, "-days", "1", "-subj", "/CN=Other CA"],
                   capture_output=True, check=True)
    p = sieve_connect("--list", ca=other)
    assert p.returncode != 0, p.stdout + p.stderr
    # OpenSSL's own ManageSieve STARTTLS (what the package check uses where sieve-connect is missing)
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % S.ports["sieve"], "-starttls", "sieve",
                        "-CAfile", CA, "-verify_hostname", HOST, "-verify_return_error"], input="LOGOUT\r\n",
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "Verify return code: 0 (ok)" in p.stdout, p.stdout + p.stderr


@h.test
def full_access_delegate_manages_the_owners_scripts():
    # bob signs in to alice's scripts with his own password (SASL PLAIN naming alice as authorization identity) once
    # she has given him full access (docs/imap-pop3.md "Full access"), and no longer once it is revoked
    def as_alice():
        return sieve_connect("--list", "--authzid", "alice", "-m", "PLAIN", user="bob")
    p = as_alice()
    assert p.returncode != 0 and "rules" not in p.stdout, p.stdout + p.stderr
    S.cli("user", "delegate", "alice", "--full-access", "bob", check=True)
    p = as_alice()
    assert p.returncode == 0 and p.stdout.splitlines() == ['"rules" ACTIVE'], p.stdout + p.stderr
    S.cli("user", "delegate", "alice", "--full-access", "bob", "--revoke", check=True)
    p = as_alice()
    assert p.returncode != 0 and "rules" not in p.stdout, p.stdout + p.stderr


@h.test
def uploaded_script_files_delivered_mail():
    p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(S.ports["smtp"]), "--from",
                        "billing@outside.test", "--to", "alice.smith@example.com", "--header",
                        "Subject: invoice 42", "--body", "pay me"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert h.wait_for(lambda: fetch_subject("alice", "Invoices", "invoice 42"), timeout=15)
    assert not fetch_subject("alice", "INBOX", "invoice 42")


@h.test
def scram_and_app_passwords_as_for_imap():
    """The login core's SASL: SCRAM-SHA-256 with Cyrus's own ManageSieve client, an app password with sieve-connect."""
    sivtest = "/usr/lib/cyrus/bin/sivtest"
    if not os.path.exists(sivtest):
        h.skip("sivtest is missing (Debian package cyrus-clients)")
    r = h.run([sivtest, "-p", str(S.ports["sieve"]), "-m", "SCRAM-SHA-256", "-a", "alice", "-w", PW, "127.0.0.1"],
              input="LISTSCRIPTS\r\nLOGOUT\r\n", timeout=30)
    out = r.stdout + r.stderr
    assert 'AUTHENTICATE "SCRAM-SHA-256"' in out and "Authenticated." in out and '"rules" ACTIVE' in out, out
    r = h.run([sivtest, "-p", str(S.ports["sieve"]), "-m", "SCRAM-SHA-256", "-a", "alice", "-w", "wrong",
               "127.0.0.1"], input="LOGOUT\r\n", timeout=30)
    assert "Authenticated." not in r.stdout + r.stderr, r.stdout + r.stderr
    app = S.cli("user", "app-password", "add", "alice", "sieve-editor", check=True).stdout.strip().splitlines()[-1]
    p = sieve_connect("--list", password=app)
    assert p.returncode == 0 and '"rules" ACTIVE' in p.stdout, p.stdout + p.stderr
    assert S.cli("user", "app-password", "del", "alice", "sieve-editor").returncode == 0
    p = sieve_connect("--list", password=app)
    assert p.returncode != 0, p.stdout + p.stderr


@h.test
def commands_before_login_and_logins():
    c = Client()
    try:
        assert c.greeting[-1].startswith("OK"), c.greeting
        assert '"SIEVE" "fileinto' in "\n".join(c.greeting) and '"STARTTLS"' in c.greeting
        for cmd in ("LISTSCRIPTS", 'GETSCRIPT "rules"', 'PUTSCRIPT "x" {5+}\r\nkeep;', 'SETACTIVE "rules"'):
            r = c.cmd(cmd)
            assert r == ['NO "Log in first."'], (cmd, r)
        r = c.login(password="wrong")
        assert r[-1] == 'NO "Authentication failed."', r
        r = c.login()
        assert r[-1] == 'OK "Logged in."', r
        r = c.cmd("CAPABILITY")
        assert '"OWNER" "alice"' in r and r[-1].startswith("OK"), r
        assert c.cmd('STARTTLS') == ['NO "Not allowed now: already logged in."']
        r = c.cmd('NOOP "t1"')
        assert r == ['OK (TAG "t1") "Done."'], r
        assert c.cmd("UNAUTHENTICATE")[-1].startswith("OK")
        assert c.cmd("LISTSCRIPTS") == ['NO "Log in first."']
        assert c.login(user="bob")[-1] == 'OK "Logged in."'
        assert c.cmd("LISTSCRIPTS") == ['OK "Listed."']  # bob's scripts, not alice's
        assert c.cmd("LOGOUT") == ['OK "Bye."']
        assert c.line() == ""
    finally:
        c.close()


@h.test
def script_errors_and_codes():
    c = Client()
    try:
        assert c.login()[-1].startswith("OK")
        r = c.put("bad", 'require "vacation";\nif header :is "x" { vacation; }\n')
        assert r[-1].startswith('NO "line 2: '), r
        r = c.cmd('CHECKSCRIPT {15+}\r\nif true { keep')
        assert r[-1].startswith('NO "line 1: '), r
        assert c.cmd('CHECKSCRIPT "keep;"') == ['OK "The script is valid."']
        r = c.cmd('HAVESPACE "big" 70000')
        assert r == ['NO (QUOTA/MAXSIZE) "A script may hold at most 65536 bytes."'], r
        r = c.put("big", "#" * 70000)
        assert r == ['NO (QUOTA/MAXSIZE) "A script may hold at most 65536 bytes."'], r
        assert c.cmd('GETSCRIPT "nope"') == ['NO (NONEXISTENT) "There is no script named nope."']
        assert c.cmd('DELETESCRIPT "rules"')[0].startswith("NO (ACTIVE)")
        assert c.put("other", "keep;") == ['OK "Stored."']
        assert c.cmd('RENAMESCRIPT "other" "rules"')[0].startswith("NO (ALREADYEXISTS)")
        r = c.cmd('GETSCRIPT "rules"')
        assert r[0] == "{%d}" % len(RULES.encode()) and r[-1] == 'OK "Sent."', r
        for i in range(40):
            r = c.put("s%d" % i, "keep;")
            if r != ['OK "Stored."']:
                break
        assert r == ['NO (QUOTA/MAXSCRIPTS) "A mailbox may keep at most 32 scripts."'], r
        for i in range(40):
            c.cmd('DELETESCRIPT "s%d"' % i)
        assert c.cmd('DELETESCRIPT "other"') == ['OK "Deleted."']
    finally:
        c.close()


@h.test
def out_of_office_script_is_not_the_clients():
    p = S.cli("user", "oof", "alice", "--on", "--internal", "away", "--external-audience", "none")
    assert p.returncode == 0, p.stderr
    c = Client()
    try:
        assert c.login()[-1].startswith("OK")
        r = c.cmd("LISTSCRIPTS")
        assert r == ['"rules" ACTIVE', 'OK "Listed."'], r
        assert c.cmd('GETSCRIPT "out-of-office"')[0].startswith("NO (NONEXISTENT)")
        assert c.cmd('DELETESCRIPT "out-of-office"')[0].startswith("NO (NONEXISTENT)")
        assert c.cmd('SETACTIVE "out-of-office"')[0].startswith("NO (NONEXISTENT)")
        r = c.put("out-of-office", "discard;")
        assert r == ['NO "The name out-of-office is kept for the out-of-office reply (interchange user oof)."'], r
    finally:
        c.close()
    assert "out-of-office" in S.cli("user", "sieve", "alice").stdout
    assert "Out of office: on" in S.cli("user", "show", "alice").stdout
    assert S.cli("user", "oof", "alice", "--off").returncode == 0


@h.test
def pipelined_commands_wait_for_a_slow_reader():
    """Answers past the output limit (256 KiB queued) pause the session's reading until the client reads again."""
    c = Client()
    try:
        assert c.login()[-1].startswith("OK")
        big = "# " + "x" * 60000 + "\r\nkeep;\r\n"
        assert c.put("big", big) == ['OK "Stored."']
        c.send('GETSCRIPT "big"\r\n' * 30)
        time.sleep(1.0)  # the server queues what it may, then waits
        for _ in range(30):
            assert c.line() == "{%d}\r\n" % len(big)
            assert c.f.read(len(big)).decode() == big
            assert c.response() == ["", 'OK "Sent."']
        assert c.cmd('DELETESCRIPT "big"') == ['OK "Deleted."']
    finally:
        c.close()


def daemon_rss_kib():
    st = json.loads(S.cli("status", "--json", check=True).stdout)
    pid = [s["pid"] for s in st["services"] if s["name"] == "managesieved"][0]
    with open("/proc/%d/status" % pid) as f:
        return int([x for x in f if x.startswith("VmRSS:")][0].split()[1])


@h.test
def hostile_clients_are_cut_off():
    before = daemon_rss_kib()
    # a literal over the limit: BYE before a byte of it is read
    c = Client()
    try:
        t = time.time()
        c.send('CHECKSCRIPT {2000000+}\r\n')
        r = c.response()
        assert r[0] == 'BYE "Literal too large"' and c.line() == "" and time.time() - t < 5, r
    finally:
        c.close()
    # an endless line: BYE at the line limit, the connection closed at once, while the client goes on writing
    c = Client()
    try:
        t = time.time()
        sent = 0
        try:
            for _ in range(2000):
                c.send(b"X" * 16384)
                sent += 16384
        except OSError:
            pass
        r = c.response()
        assert r[0] == 'BYE "Command line too long"', r
        assert time.time() - t < 10 and sent < 2000 * 16384, sent
    finally:
        c.close()
    # ten at once, each with the longest line it may send, and the memory stays bounded
    clients = [Client() for _ in range(10)]
    for c in clients:
        c.send(b"NOOP " + b"Y" * 8000)
    time.sleep(0.5)
    grown = daemon_rss_kib() - before
    for c in clients:
        c.close()
    assert grown < 32 * 1024, grown
    # and the daemon still answers
    c = Client()
    try:
        assert c.login()[-1].startswith("OK")
    finally:
        c.close()


if __name__ == "__main__":
    try:
        h.main("managesieve")
    finally:
        if TMP:
            shutil.rmtree(TMP, ignore_errors=True)
