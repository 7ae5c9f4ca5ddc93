"""dovecot.py - Debian's Dovecot as the server an organisation leaves behind (tests/e2e/test_import.py, make bench).

Dovecot runs in the foreground (dovecot -F) with everything in a temporary folder: its configuration, base_dir,
state, log, Maildir mail, a passwd-file of users and one of master users (login as user*admin or SASL PLAIN with an
authorization identity), IMAP on one free port and IMAPS on another with a test certificate for 127.0.0.1.
"""
import imaplib
import os
import shutil
import signal
import ssl
import subprocess
import tempfile

from harness import _systems, free_ports, run, skip, wait_for

DOVECOT = "/usr/sbin/dovecot"
MAIL_USER = "dovecot"  # the mail files' owner: Dovecot refuses root for mail access

CONFIG = """
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_master_user_separator = *
default_login_user = dovenull
default_internal_user = dovecot
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 1
mail_location = maildir:{d}/mail/%u
mail_max_userip_connections = 100
imap_max_line_length = 1M
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/masters
  master = yes
  pass = yes
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/users
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox "Sent Items" {{
    special_use = \\Sent
  }}
  mailbox "Deleted Items" {{
    special_use = \\Trash
  }}
  mailbox Drafts {{
    special_use = \\Drafts
  }}
  mailbox "Junk E-mail" {{
    special_use = \\Junk
  }}
}}
"""


class Dovecot:
    """A running Dovecot: users (login -> password), master users, ports "imap" and "imaps", cert (the CA file)."""

    def __init__(self, users, masters):
        if not os.path.exists(DOVECOT) or not os.path.exists("/usr/lib/dovecot/imap"):
            skip("Dovecot is not installed (Debian's dovecot-imapd)")
        import pwd
        pw = pwd.getpwnam(MAIL_USER)
        self.base = tempfile.mkdtemp(prefix="ixdc-", dir="/tmp")
        os.chmod(self.base, 0o755)
        d = self.base
        for sub in ("run", "state", "mail"):
            os.mkdir(os.path.join(d, sub))
        os.chown(os.path.join(d, "mail"), pw.pw_uid, pw.pw_gid)
        self.cert = os.path.join(d, "cert.pem")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", os.path.join(d, "key.pem"), "-out", self.cert, "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True)
        with open(os.path.join(d, "users"), "w") as f:
            for login, password in users.items():
                f.write("%s:%s:%d:%d::%s/mail/%s::\n" % (login, password, pw.pw_uid, pw.pw_gid, d, login))
        with open(os.path.join(d, "masters"), "w") as f:
            for login, password in masters.items():
                f.write("%s:%s\n" % (login, password))
        self.users = dict(users)
        self.ports = dict(zip(("imap", "imaps"), free_ports(2)))
        self.conf = os.path.join(d, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write(CONFIG.format(d=d, uid=pw.pw_uid, gid=pw.pw_gid, imap=self.ports["imap"],
                                  imaps=self.ports["imaps"]))
        _systems.append(self)
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(d, "stderr.log"), "w"))
        if not wait_for(self.ready, timeout=20):
            raise AssertionError("Dovecot did not start: %s %s" % (self.log()[-800:], open(
                os.path.join(d, "stderr.log")).read()[-800:]))

    def log(self):
        try:
            with open(os.path.join(self.base, "dovecot.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def ready(self):
        try:
            c = imaplib.IMAP4("127.0.0.1", self.ports["imap"], timeout=2)
            c.logout()
            return True
        except OSError:
            return self.proc.poll() is not None  # ended: the caller reports its log

    @property
    def url(self):
        return "imaps://127.0.0.1:%d" % self.ports["imaps"]

    def imap(self, login):
        """imaplib over TLS (the test certificate verified), signed in as login."""
        ctx = ssl.create_default_context(cafile=self.cert)
        c = imaplib.IMAP4_SSL("127.0.0.1", self.ports["imaps"], ssl_context=ctx, timeout=60)
        c.login(login, self.users[login])
        return c

    def destroy(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.base, ignore_errors=True)
