"""harness.py - end-to-end test support: a real Interchange system in a temporary data folder on free ports.

Each test is a function decorated with @test; main() executes them in order and prints one
"PASS name" / "FAIL name: reason" / "SKIP name: why" line per test, the format tests/run.sh counts. A test that
cannot run here calls skip(why). A function decorated with @setup runs in the same order but is not a test: it
prints nothing when it succeeds and a FAIL line when it fails, after which the file's remaining tests are reported
as skipped (the run fails on the setup's FAIL). Systems started through System are always stopped at the end,
whatever happened (a SIGTERM, as from run.sh's time limit, included), and their folders removed, except after a
failed test when IX_KEEP_ON_FAILURE is set in the environment: then the folders stay (stopped) for their service
logs, and their paths are printed.
"""
import base64
import fcntl
import imaplib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

# an 8x8 grey JPEG (libjpeg, quality 50), for the tests of photos
JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1x"
    "eXBkeFxlZ2P/wAALCAAIAAgBAREA/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQR"
    "BRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4"
    "eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/9oACAEB"
    "AAA/AK/gr/lnX//Z")

BUILD = os.environ.get("IX_BUILD", "build")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INTERCHANGE = os.path.join(ROOT, BUILD, "interchange")
ENV = dict(os.environ, LDAPNOINIT="1")

_tests = []
_systems = []
_sanitizer_reports = []  # (log file, excerpt) of each sanitizer report a stopped system's services wrote

# What AddressSanitizer, LeakSanitizer and UBSan write to a service's standard error, which the attendant sends to
# the service's log: a service built with make asan that leaks or misbehaves fails the file that started it.
SANITIZER_REPORT = re.compile(r"ERROR: (?:Address|Leak)Sanitizer|runtime error: ")

PORT_NAMES = ["ldap", "ldaps", "smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s", "sieve", "metrics", "http", "https"]


class Skip(Exception):
    """Raised by skip(): the test cannot run here."""


def test(fn):
    _tests.append(fn)
    return fn


def setup(fn):
    """Marks fn as setup: run in order with the tests, not counted as one (a failure still is a FAIL)."""
    fn.is_setup = True
    _tests.append(fn)
    return fn


def skip(why):
    """Ends the calling test as skipped: it prints "SKIP name: why" and counts as neither passed nor failed."""
    raise Skip(why)


def debian_module(name):
    """Imports the Python module name (dotted) of a Debian package (python3-dkim, python3-cryptography...), which
    lives in Debian's own module folder that a python3 of its own (pyenv) lacks; None when it is not installed."""
    import importlib
    try:
        return importlib.import_module(name)
    except ImportError:
        if "/usr/lib/python3/dist-packages" not in sys.path:
            sys.path.append("/usr/lib/python3/dist-packages")
        try:
            return importlib.import_module(name)
        except ImportError:
            return None


_port_locks = []
PORT_RANGE = (10000, 32000)  # below the kernel's ephemeral range (32768-60999): no client connection takes one


def free_ports(n):
    """n distinct ports free on every address, below the ephemeral range (so no outgoing connection of a test
    running alongside can hold one when a service binds it), each claimed for this process's lifetime by a lock
    file in /tmp, so end-to-end files running in parallel never pick the same port."""
    ports = []
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    while len(ports) < n:
        port = rng.randrange(*PORT_RANGE)
        if port in ports:
            continue
        lock = open("/tmp/ix-test-port-%d.lock" % port, "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        s = socket.socket()
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            lock.close()
            continue
        finally:
            s.close()
        _port_locks.append(lock)
        ports.append(port)
    return ports


def run(cmd, check=False, timeout=60, input=None, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV if env is None else env, timeout=timeout,
                       input=input)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d): %s %s" % (cmd, p.returncode, p.stdout, p.stderr))
    return p


class System:
    """An initialised (and usually started) Interchange data folder."""

    # The password policy (password.min_length, password.check_names) off for the tests' short, name-based
    # passwords; strict_passwords=True keeps the defaults (tests/e2e/test_passwords.py).
    LENIENT = ["--setting", "password.min_length=1", "--setting", "password.check_names=0"]
    # A failed login is answered auth.failure_delay_ms late (1 s by default): short, so that tests that try wrong
    # passwords on purpose do not wait (tests/e2e/test_guessing.py).
    QUICK_FAILURES = ["--setting", "auth.failure_delay_ms=20"]

    def __init__(self, domain="example.com", admin_password="adminpw", extra=(), start=True, tmpfs_size=None,
                 strict_passwords=False):
        """tmpfs_size ("32m"): the data folder lives on a tmpfs of that size (a disk that fills up); the test is
        skipped where one cannot be mounted (not root, no mount permission in the container)."""
        # short paths: the ldapi socket path must fit in 107 bytes
        self.base = tempfile.mkdtemp(prefix="ixe-", dir="/tmp")
        self.mounted = False
        if tmpfs_size is not None:
            p = run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=755" % tmpfs_size, "tmpfs", self.base])
            if p.returncode != 0:
                os.rmdir(self.base)
                skip("cannot mount a %s tmpfs for a small disk: %s" % (tmpfs_size, (p.stderr or p.stdout).strip()))
            self.mounted = True
        os.chmod(self.base, 0o755)  # run as root, the services' own user must reach the data folder
        self.data = os.path.join(self.base, "var")
        self.domain = domain
        self.admin_password = admin_password
        self.ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES))))
        self.suffix = ",".join("dc=" + p for p in domain.split("."))
        self.admin_dn = "cn=admin," + self.suffix
        args = ["init", "--domain", domain, "--admin-password", admin_password, "--hostname", "mail." + domain]
        for name, port in self.ports.items():
            args += ["--%s-port" % name, str(port)]
        if not strict_passwords:
            args += self.LENIENT
        args += self.QUICK_FAILURES
        _systems.append(self)  # before init: a mounted folder is unmounted whatever happens
        self.cli(*(args + list(extra)), check=True)
        if start:
            self.start()

    def cli(self, *args, check=False, timeout=60):
        return run([INTERCHANGE, "--data", self.data] + list(args), check=check, timeout=timeout)

    def start(self):
        return self.cli("start", check=True)

    def stop(self):
        return self.cli("stop")

    @property
    def ldap_uri(self):
        return "ldap://127.0.0.1:%d" % self.ports["ldap"]

    def user_dn(self, login):
        return "uid=%s,ou=Recipients,%s" % (login, self.suffix)

    def ldapsearch(self, filt, *attrs, bind_dn=None, password=None, base=None):
        cmd = ["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", self.ldap_uri, "-b", base or self.suffix]
        if bind_dn:
            cmd += ["-D", bind_dn, "-w", password]
        return run(cmd + [filt] + list(attrs))

    def ldapmodify(self, ldif, add=False):
        cmd = ["ldapmodify", "-x", "-H", self.ldap_uri, "-D", self.admin_dn, "-w", self.admin_password]
        if add:
            cmd.append("-a")
        return run(cmd, input=ldif)

    def collect_sanitizer_reports(self):
        """Adds each log under the data folder that holds a sanitizer report to the reports main() fails on."""
        for folder, _, files in os.walk(os.path.join(getattr(self, "data", self.base), "log")):
            for f in files:
                path = os.path.join(folder, f)
                try:
                    with open(path, "rb") as fh:
                        text = fh.read().decode("utf-8", "replace")
                except OSError:
                    continue
                m = SANITIZER_REPORT.search(text)
                if m:
                    start = text.rfind("\n", 0, m.start()) + 1
                    _sanitizer_reports.append((path, text[start:start + 1500]))

    def log(self, name, since=0):
        """The text of the service log log/NAME.log from byte offset since ("" while it does not exist)."""
        try:
            with open(os.path.join(self.data, "log", name + ".log"), "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_mark(self, name):
        """The current end of log/NAME.log: pass it to wait_log to see only lines written after now."""
        try:
            return os.path.getsize(os.path.join(self.data, "log", name + ".log"))
        except OSError:
            return 0

    def wait_log(self, name, needle, since=0, timeout=10.0):
        """Waits until log/NAME.log has needle after byte offset since; raises AssertionError when it does not."""
        if not wait_for(lambda: needle in self.log(name, since), timeout=timeout):
            raise AssertionError("%s.log has no %r: %s" % (name, needle, self.log(name, since)[-800:]))

    def connector(self, name, domain, port, host="127.0.0.1"):
        """A connector name sending mail for domain to host:port; returns once ix-mta has seen it."""
        mark = self.log_mark("mta")
        self.cli("connector", "add", name, "--address-space", domain, "--smarthost", "%s:%d" % (host, port),
                 check=True)
        self.wait_log("mta", "connector changed: cn=%s," % name, mark)

    def hold_mail_for(self, domain, name="dead"):
        """Mail for domain stays in the queue: a connector sends it to a port where nothing listens."""
        self.connector(name, domain, free_ports(1)[0])

    def set_live(self, name, value, services=("smtpd", "mta")):
        """`server set NAME VALUE` and waits until each of services logged that it has the new settings (the
        value must differ from the current one, or no service has anything to say)."""
        marks = {svc: self.log_mark(svc) for svc in services}
        self.cli("server", "set", name, str(value), check=True)
        for svc in services:
            self.wait_log(svc, "server settings changed", marks[svc])

    def send_mail(self, to, message_id, subject="test", src="127.0.0.1"):
        """A small message from friend@outside.org to to over SMTP (from source address src), with message_id."""
        import smtplib
        c = smtplib.SMTP("127.0.0.1", self.ports["smtp"], timeout=20, source_address=(src, 0))
        c.sendmail("friend@outside.org", [to], "From: friend@outside.org\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: %s\r\n"
                   "\r\nhello\r\n" % (to, subject, message_id))
        c.quit()

    def submit(self, login, password, sender, to, subject="test"):
        """A small message from sender to to, submitted over the submission port signed in as login."""
        import smtplib
        c = smtplib.SMTP("127.0.0.1", self.ports["submission"], timeout=20)
        c.login(login, password)
        c.sendmail(sender, [to], "From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nhello\r\n" % (sender, to, subject))
        c.quit()

    def rcpt_code(self, to):
        """The code smtpd answers RCPT TO:<to> with on port 25 (250 once the address is known to it: the attendant
        generates a new user's address after `user add`, and smtpd learns it from its replica after that)."""
        import smtplib
        c = smtplib.SMTP("127.0.0.1", self.ports["smtp"], timeout=20)
        try:
            c.ehlo()
            c.mail("friend@outside.org")
            return c.rcpt(to)[0]
        finally:
            c.quit()

    def imap_count(self, login, password, message_id):
        """How many messages in login's INBOX have the Message-ID message_id (IMAP SEARCH)."""
        m = imaplib.IMAP4("127.0.0.1", self.ports["imap"], timeout=10)
        try:
            m.login(login, password)
            m.select("INBOX", readonly=True)
            typ, data = m.search(None, "HEADER", "Message-ID", message_id)
            return len(data[0].split()) if typ == "OK" else 0
        finally:
            m.logout()

    def imap_by_subject(self, login, password, subject, item="BODY.PEEK[]", timeout=10):
        """The item (decoded) of the last message in login's INBOX whose subject holds subject, waiting up to timeout
        seconds for one to arrive; None when none does."""
        def fetch():
            m = imaplib.IMAP4("127.0.0.1", self.ports["imap"], timeout=10)
            try:
                m.login(login, password)
                m.select("INBOX", readonly=True)
                typ, data = m.search(None, "SUBJECT", '"%s"' % subject)
                ids = data[0].split() if typ == "OK" else []
                if not ids:
                    return None
                typ, data = m.fetch(ids[-1], "(%s)" % item)
                return data[0][1].decode("utf-8", "replace")
            finally:
                m.logout()
        return wait_for(fetch, timeout=timeout, interval=0.1)

    def kill_attendant(self):
        """A crash of the attendant: SIGKILLs it alone and waits until it is gone (its services stop by themselves,
        slapd lives on as an orphan until `start` stops it and starts everything anew)."""
        with open(os.path.join(self.data, "run", "attendant.pid")) as f:
            pid = int(f.read().split()[0])
        os.kill(pid, signal.SIGKILL)

        def gone():
            try:
                with open("/proc/%d/stat" % pid) as f:
                    return f.read().rsplit(")", 1)[1].split()[0] == "Z"
            except OSError:
                return True
        assert wait_for(gone, timeout=10), "the killed attendant lives"

    def destroy(self, keep=False):
        """Stops the system and removes its folder; with keep, leaves the folder and prints where its logs are."""
        self.stop()
        self.collect_sanitizer_reports()
        if keep:
            print("# kept %s (IX_KEEP_ON_FAILURE): its service logs are in %s/log" % (self.base, self.data), flush=True)
            return
        if getattr(self, "mounted", False):
            run(["umount", self.base])
        shutil.rmtree(self.base, ignore_errors=True)


class Joined(System):
    """A server that joins an existing organisation (first: a System) through `interchange init --join`."""

    def __init__(self, first, name, start=True, extra=()):  # noqa: D401 - deliberately not System.__init__
        self.base = tempfile.mkdtemp(prefix="ixm-", dir="/tmp")
        os.chmod(self.base, 0o755)
        self.data = os.path.join(self.base, "var")
        self.domain = first.domain
        self.admin_password = first.admin_password
        self.ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES))))
        self.suffix = first.suffix
        self.admin_dn = first.admin_dn
        self.hostname = name if "." in name else "%s.%s" % (name, first.domain)
        args = ["init", "--join", first.ldap_uri, "--admin-password", first.admin_password,
                "--hostname", self.hostname, "--timeout", "60"] + list(extra)
        for pname, port in self.ports.items():
            args += ["--%s-port" % pname, str(port)]
        _systems.append(self)
        self.join_output = self.cli(*args, check=True, timeout=90)
        if re.search(r"password\.check_names +0 ", first.cli("server", "show").stdout):
            first.cli("server", "set", "--server", self.hostname, "password.check_names", "0", check=True)
        if start:
            self.start()


def lockout_settings(failures, seconds):
    """The init arguments for slapd's lockout after failures wrong binds, for seconds (short, for tests). The
    failures are counted over ten minutes, so a test's wrong binds lock the account however slowly a loaded
    machine runs them."""
    return ["--setting", "auth.lockout_failures=%d" % failures, "--setting", "auth.lockout_seconds=%d" % seconds,
            "--setting", "auth.lockout_window_seconds=600"]


def wait_for(pred, timeout=5.0, interval=0.02):
    """Polls pred until it returns a true value (returned) or timeout passes (returns the last value)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def imap_login_ok(port, login, password):
    """Whether IMAP on port takes the password: a user just added is ready once the daemons see it."""
    try:
        m = imaplib.IMAP4("127.0.0.1", port)
        m.login(login, password)
        m.logout()
        return True
    except (imaplib.IMAP4.error, OSError):
        return False


def smtp_auth_ok(port, login, password):
    """Whether SMTP AUTH on port (submission) takes the password."""
    import smtplib
    c = smtplib.SMTP("127.0.0.1", port, timeout=20)
    try:
        c.login(login, password)
        return True
    except smtplib.SMTPAuthenticationError:
        return False
    finally:
        c.close()


class IMAPFrom(imaplib.IMAP4):
    """imaplib from a chosen loopback source address (the throttles count per client address)."""

    def __init__(self, port, src="127.0.0.1", timeout=20):
        self.src = src
        super().__init__("127.0.0.1", port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self.src, 0))


def imap_login_said(port, login, password, src="127.0.0.1"):
    """The answer to an IMAP LOGIN on port from src: "OK", or the text of the NO."""
    m = IMAPFrom(port, src)
    try:
        m.login(login, password)
        return "OK"
    except imaplib.IMAP4.error as e:
        return str(e)
    finally:
        m.shutdown()


def entries(ldif_text):
    """Parses ldapsearch -LLL output into a list of dicts attr(lower) -> [values]."""
    out, cur = [], None
    for line in ldif_text.splitlines():
        if not line.strip():
            cur = None
            continue
        if ":" not in line:
            continue
        k, v = line.split(":", 1)
        if v.startswith(":"):
            import base64
            v = base64.b64decode(v[1:].strip()).decode("utf-8", "replace")
        else:
            v = v.strip()
        if k == "dn":
            cur = {"dn": [v]}
            out.append(cur)
        elif cur is not None:
            cur.setdefault(k.lower(), []).append(v)
    return out


def main(suite):
    failed = 0
    broken = None  # the setup that failed: the remaining tests are not run
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the finally below stops the systems
    try:
        for fn in _tests:
            name = "%s.%s" % (suite, fn.__name__)
            setup_step = getattr(fn, "is_setup", False)
            if broken:
                if not setup_step:
                    print("SKIP %s: setup %s failed" % (name, broken), flush=True)
                continue
            try:
                fn()
                if not setup_step:
                    print("PASS " + name, flush=True)
            except Skip as e:
                print("SKIP %s: %s" % (name, e), flush=True)
            except Exception as e:  # noqa: BLE001 - any failure of a test is reported, not raised
                failed += 1
                msg = str(e).replace("\n", " ")[:400]
                print("FAIL %s: %s" % (name, msg or type(e).__name__), flush=True)
                traceback.print_exc(file=sys.stdout)
                if setup_step:
                    broken = fn.__name__
    finally:
        keep = bool(failed and os.environ.get("IX_KEEP_ON_FAILURE"))
        for s in _systems:  # (a test's own servers, a KDC or dovecot, are not kept)
            if keep and isinstance(s, System):
                s.destroy(keep=True)
            else:
                s.destroy()
        for path, excerpt in _sanitizer_reports:
            failed += 1
            print("FAIL %s.sanitizer: a service reported in %s: %s" % (suite, os.path.basename(path),
                                                                         excerpt.replace("\n", " ")[:400]),
                  flush=True)
            print(excerpt, flush=True)
    sys.exit(1 if failed else 0)
