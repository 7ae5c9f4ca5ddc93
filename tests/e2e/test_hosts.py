#!/usr/bin/env python3
# test_hosts.py - an organisation of servers on separate network stacks: each server in its own network namespace
# (joined to the others by veth links on one bridge), with its own host name (a per-namespace hosts file), listen
# address and certificate. Join, replication both ways, relaying, proxied IMAP/POP3, moves, a server down and back,
# an impostor, certificate renewal, and a capture of the link that must hold no password in clear.
import atexit
import base64
import contextlib
import ctypes
import imaplib
import json
import os
import poplib
import re
import shutil
import signal
import smtplib
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import INTERCHANGE, ENV, System, entries, main, setup, skip, test, wait_for  # noqa: E402

TAG = "ixh%d" % (os.getpid() % 100000)  # namespaces, links and hosts files of this run
SWITCH = TAG + "sw"                     # the namespace holding the bridge that joins the servers
NET = "10.200.7."                       # addresses exist only inside the namespaces
DOMAIN = "hosts.example"
ADMIN_PW = "Org-Adm1n-S3cret-pw"        # every password is distinctive: the capture is searched for each
USERS = {"ann": "Xq7-Pa55-a1b2c3", "bob": "Zr4-Pa55-d4e5f6", "cid": "Wv9-Pa55-g7h8i9"}
PROBE = os.path.join(os.path.dirname(INTERCHANGE), "transport", "smtpd_probe")
PROBLEM = None   # why the namespaces cannot be made here (every test then says SKIP)
CAPTURE = None   # the tcpdump process on the bridge, and its file
A = B = None
_namespaces = []
_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def sh(*cmd, check=True, timeout=30):
    p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, env=ENV)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p


@contextlib.contextmanager
def netns(ns):
    """Runs the block with this thread in network namespace ns: sockets made inside stay there."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    fd = os.open("/run/netns/" + ns, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + ns)
        yield
    finally:
        _libc.setns(own, CLONE_NEWNET)
        os.close(fd)
        os.close(own)


def cleanup():
    """Removes what this run made: the capture, every process left in a namespace, the namespaces (their links go
    with them) and the hosts files. Runs at exit, after the harness stopped the systems, whatever happened."""
    if CAPTURE is not None and CAPTURE[0].poll() is None:
        CAPTURE[0].terminate()
        CAPTURE[0].wait(10)
    for ns in reversed(_namespaces):
        pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
        for pid in pids:  # only processes this run started live in its namespaces
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        sh("ip", "netns", "delete", ns, check=False)
        shutil.rmtree("/etc/netns/" + ns, ignore_errors=True)
    if CAPTURE is not None:
        shutil.rmtree(os.path.dirname(CAPTURE[1]), ignore_errors=True)


atexit.register(cleanup)


def make_namespace(ns, addr, hosts):
    sh("ip", "netns", "add", ns)
    _namespaces.append(ns)
    os.makedirs("/etc/netns/" + ns, exist_ok=True)  # `ip netns exec` bind-mounts it over /etc/hosts
    with open("/etc/netns/%s/hosts" % ns, "w") as f:
        f.write("127.0.0.1 localhost\n" + "".join("%s %s\n" % (a, n) for n, a in hosts.items()))
    sh("ip", "-n", ns, "link", "set", "lo", "up")
    if addr is not None:
        link = ns[-1] + TAG  # the switch's end of the link
        sh("ip", "-n", SWITCH, "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "-n", SWITCH, "link", "set", link, "master", "br0", "up")
        sh("ip", "-n", ns, "addr", "add", addr + "/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")


class Host(System):
    """A server in namespace ns with host name name, listening on addr; a new organisation, or joining first."""

    def __init__(self, ns, name, addr, first=None, join_extra=(), start=True):  # noqa: D401 - not System's
        self.ns, self.hostname, self.addr = ns, name, addr
        self.base = tempfile.mkdtemp(prefix="ixh-", dir="/tmp")
        os.chmod(self.base, 0o755)
        self.data = os.path.join(self.base, "var")
        self.domain, self.admin_password = DOMAIN, ADMIN_PW
        self.suffix = ",".join("dc=" + p for p in DOMAIN.split("."))
        self.admin_dn = "cn=admin," + self.suffix
        harness._systems.append(self)
        if first is None:
            self.cli("init", "--domain", DOMAIN, "--admin-password", ADMIN_PW, "--hostname", name, "--listen", addr,
                     check=True)
        else:
            self.join_output = self.join(first, *join_extra)
            assert self.join_output.returncode == 0, self.join_output.stdout + self.join_output.stderr
        st = json.loads(self.cli("status", "--json").stdout)
        self.ports = st["ports"]
        if start:
            self.start()

    def join(self, first, *extra):
        return self.cli("init", "--join", "ldap://%s:%d" % (first.hostname, first.ports["ldap"]),
                        "--admin-password", ADMIN_PW, "--hostname", self.hostname, "--listen", self.addr,
                        "--timeout", "60", *extra, timeout=90)

    def run_here(self, cmd, timeout=60, input=None):
        return subprocess.run(["ip", "netns", "exec", self.ns] + cmd, capture_output=True, text=True, env=ENV,
                              timeout=timeout, input=input)

    def cli(self, *args, check=False, timeout=60):
        p = self.run_here([INTERCHANGE, "--data", self.data] + list(args), timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("interchange %s on %s failed (%d): %s %s" % (" ".join(args), self.hostname,
                                                                              p.returncode, p.stdout, p.stderr))
        return p

    def ldapsearch(self, filt, *attrs, bind_dn=None, password=None, base=None):
        cmd = ["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", self.ldap_uri, "-b", base or self.suffix]
        if bind_dn:
            cmd += ["-D", bind_dn, "-w", password]
        return self.run_here(cmd + [filt] + list(attrs))

    def ldapmodify(self, ldif, add=False):
        cmd = ["ldapmodify", "-x", "-H", self.ldap_uri, "-D", self.admin_dn, "-w", self.admin_password]
        return self.run_here(cmd + (["-a"] if add else []), input=ldif)

    def user(self, login, *attrs):
        out = self.ldapsearch("(uid=%s)" % login, *attrs, bind_dn=self.admin_dn, password=ADMIN_PW)
        e = entries(out.stdout)
        return e[0] if e else {}

    def imap(self, login):
        """An IMAP session on this server's address (not loopback: STARTTLS first), logged in as login."""
        with netns(self.ns):
            c = imaplib.IMAP4(self.addr, self.ports["imap"], timeout=20)
        c.starttls(ssl._create_unverified_context())
        c.login(login, USERS[login])
        return c

    def pop3(self, login):
        with netns(self.ns):
            c = poplib.POP3(self.addr, self.ports["pop3"], timeout=20)
        c.stls(ssl._create_unverified_context())
        c.user(login)
        c.pass_(USERS[login])
        return c

    def send(self, rcpt, subject, msgid):
        with netns(self.ns):
            c = smtplib.SMTP(self.addr, self.ports["smtp"], timeout=20)
        try:
            c.sendmail("someone@outside.example", [rcpt], "From: someone@outside.example\r\nTo: %s\r\nSubject: %s\r\n"
                       "Message-ID: <%s@test>\r\n\r\n%s\r\n" % (rcpt, subject, msgid, subject))
        finally:
            c.quit()

    def subjects(self, guid):
        p = harness.run([PROBE, os.path.join(self.data, "store"), guid])
        return [line.split("\t")[3] for line in p.stdout.splitlines()] if p.returncode == 0 else []

    def track(self, msgid):
        return self.cli("track", "<%s@test>" % msgid).stdout


def needs_network():
    if PROBLEM is not None:
        skip(PROBLEM)


def add_user(system, login):
    p = system.cli("user", "add", login, "--password", USERS[login], "--given", login.title(), "--surname", "Host")
    assert p.returncode == 0, p.stdout + p.stderr


def ready_user(system, login):
    """Waits until login has an address on both servers; returns (address, mailbox GUID)."""
    def both():
        ea, eb = A.user(login, "mail", "ixMailboxGuid"), B.user(login, "mail", "ixMailboxGuid")
        return ea if "mail" in ea and "mail" in eb and "ixmailboxguid" in ea else None
    e = wait_for(both, timeout=20, interval=0.05)
    assert e, "%s has no address on both servers: A %s, B %s" % (login, A.user(login), B.user(login))
    return e["mail"][0], e["ixmailboxguid"][0]


def home_of(system, login):
    return system.user(login, "ixHomeServer").get("ixhomeserver", ["?"])[0]


def timed_arrival(src, dst, login):
    """Adds login on src and returns the seconds until dst's directory has it (polled, printed, never asserted)."""
    t0 = time.monotonic()
    add_user(src, login)
    ok = wait_for(lambda: "uid" in dst.user(login, "uid"), timeout=20, interval=0.01)
    return time.monotonic() - t0 if ok else None


@setup
def namespaces_and_first_server():
    global PROBLEM, A, CAPTURE
    if os.geteuid() != 0:
        PROBLEM = "not root: network namespaces cannot be made"
        return
    for tool in ("ip", "tcpdump"):
        if shutil.which(tool) is None:
            PROBLEM = "%s is not installed (make deps)" % tool
            return
    p = sh("ip", "netns", "add", SWITCH, check=False)
    if p.returncode != 0:
        PROBLEM = "cannot create a network namespace (no CAP_NET_ADMIN?): " + p.stderr.strip()
        return
    _namespaces.append(SWITCH)
    if not os.path.exists(PROBE) or not os.path.exists(os.path.join(os.path.dirname(INTERCHANGE), "ix-mta")):
        PROBLEM = "the transport programs are not built"
        return
    sh("ip", "-n", SWITCH, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", SWITCH, "link", "set", "br0", "up")
    hosts = {"a." + DOMAIN: NET + "1", "b." + DOMAIN: NET + "2", "c." + DOMAIN: NET + "3"}
    for ns, addr in ((TAG + "a", NET + "1"), (TAG + "b", NET + "2"), (TAG + "c", NET + "3")):
        make_namespace(ns, addr, hosts)
    # everything that crosses the link from now on is captured; the last test searches it for passwords
    folder = tempfile.mkdtemp(prefix="ixh-pcap-", dir="/tmp")
    path = os.path.join(folder, "link.pcap")
    proc = subprocess.Popen(["ip", "netns", "exec", SWITCH, "tcpdump", "-i", "br0", "-U", "-s", "0", "-n", "-w",
                             path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    CAPTURE = (proc, path)
    line = proc.stderr.readline()
    assert "listening on br0" in line, line
    A = Host(TAG + "a", "a." + DOMAIN, NET + "1")


@test
def join_without_ca_names_ca():
    needs_network()
    probe = Host.__new__(Host)
    probe.ns, probe.hostname, probe.addr = TAG + "b", "b." + DOMAIN, NET + "2"
    probe.data = tempfile.mkdtemp(prefix="ixh-nojoin-", dir="/tmp")
    try:
        p = probe.join(A)
    finally:
        shutil.rmtree(probe.data, ignore_errors=True)
    assert p.returncode != 0, p.stdout
    assert "--ca" in p.stderr, p.stderr


@test
def b_joins_with_its_own_listen_address():
    global B
    needs_network()
    ca = os.path.join(A.base, "a-cert.pem")
    shutil.copy(os.path.join(A.data, "tls", "cert.pem"), ca)
    B = Host(TAG + "b", "b." + DOMAIN, NET + "2", first=A, join_extra=("--ca", ca))
    out = B.join_output.stdout
    print("# " + out.strip().replace("\n", "\n# "))
    assert "replicates from this server too" in out, out


@test
def replication_both_ways_with_timing():
    needs_network()
    ab = timed_arrival(A, B, "ann")
    ba = timed_arrival(B, A, "bob")
    print("# replication a -> b: %s, b -> a: %s" % tuple("%.3f s" % t if t is not None else "never" for t in (ab, ba)))
    assert ab is not None, "a user added on a never reached b"
    assert ba is not None, "a user added on b never reached a: %s" % A.cli("replication").stdout
    ready_user(A, "ann")
    ready_user(B, "bob")
    assert home_of(A, "bob").startswith("cn=b." + DOMAIN), home_of(A, "bob")


@test
def status_and_server_list_say_in_step():
    needs_network()
    for s in (A, B):
        st = s.cli("status")
        assert "in step" in st.stdout and "warning" not in st.stdout.lower(), st.stdout
        sl = s.cli("server", "list")
        assert "in step; replicating from it" in sl.stdout, sl.stdout


@test
def cross_server_delivery_both_ways():
    needs_network()
    bob, bob_guid = ready_user(B, "bob")
    ann, ann_guid = ready_user(A, "ann")
    A.send(bob, "a-to-bob", "a-to-bob")
    B.send(ann, "b-to-ann", "b-to-ann")
    assert wait_for(lambda: "a-to-bob" in B.subjects(bob_guid), timeout=20), A.cli("queue", "list").stdout
    assert wait_for(lambda: "b-to-ann" in A.subjects(ann_guid), timeout=20), B.cli("queue", "list").stdout
    assert "TLS" in A.track("a-to-bob"), A.track("a-to-bob")


@test
def proxied_imap_and_pop3():
    needs_network()
    c = A.imap("bob")  # bob's home is b: a proxies
    try:
        typ, data = c.select("INBOX", readonly=True)
        assert typ == "OK", data
        typ, data = c.search(None, "SUBJECT", "a-to-bob")
        assert typ == "OK" and data[0].split(), data
    finally:
        c.logout()
    p = A.pop3("bob")
    try:
        count, _ = p.stat()
        assert count >= 1, count
    finally:
        p.quit()
    c = B.imap("ann")
    c.logout()


def move(src, dst, login):
    p = src.cli("user", "move", login, "--to", dst.hostname, timeout=120)
    print("# " + (p.stdout + p.stderr).strip().replace("\n", "\n# "))
    return p


@test
def user_move_both_ways():
    needs_network()
    ann, guid = ready_user(A, "ann")
    c = A.imap("ann")
    c.append("INBOX", "(\\Flagged)", None, b"From: x@outside.example\r\nSubject: kept-flag\r\n\r\nflag\r\n")
    c.logout()
    p = move(A, B, "ann")
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: home_of(A, "ann").startswith("cn=b.") and home_of(B, "ann").startswith("cn=b."),
                    timeout=10), home_of(A, "ann")
    assert "kept-flag" in B.subjects(guid) and "b-to-ann" in B.subjects(guid), B.subjects(guid)
    p = move(B, A, "ann")
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: home_of(B, "ann").startswith("cn=a."), timeout=10), home_of(B, "ann")
    c = A.imap("ann")
    try:
        c.select("INBOX", readonly=True)
        typ, data = c.search(None, "FLAGGED", "SUBJECT", "kept-flag")
        assert typ == "OK" and data[0].split(), data
    finally:
        c.logout()


def wait_deferred(system, msgid):
    def deferred():
        q = json.loads(system.cli("queue", "list", "--json", check=True).stdout)
        return [r for m in q["messages"] if m["message_id"] == "<%s@test>" % msgid for r in m["recipients"]
                if r["state"] == "deferred" and r["attempts"] >= 1]
    return wait_for(deferred, timeout=20)


@test
def a_restarted_server_gets_the_next_relay_at_once():
    needs_network()
    bob, guid = ready_user(B, "bob")
    A.send(bob, "before-restart", "before-restart")  # leaves a cached connection to b on a
    assert wait_for(lambda: "before-restart" in B.subjects(guid), timeout=20), A.cli("queue", "list").stdout
    log = os.path.join(B.data, "log", "smtpd.log")
    mark = os.path.getsize(log)
    t0 = time.monotonic()
    B.stop()
    print("# b stopped in %.2f s with a's relay connection open" % (time.monotonic() - t0))
    with open(log, errors="replace") as f:
        f.seek(mark)
        stopped = f.read()
    # a's cached connection was told 421 and closed: the stop did not wait out the grace period
    assert "no session left: stopping now" in stopped and "did not close within" not in stopped, stopped
    B.start()
    A.send(bob, "after-restart", "after-restart")
    # delivered at its first attempt: the relay did not take the dead cached connection
    assert wait_for(lambda: "after-restart" in B.subjects(guid), timeout=30), A.track("after-restart")
    assert "deferred" not in A.track("after-restart"), A.track("after-restart")


@test
def a_server_down_and_back_gets_its_mail():
    needs_network()
    bob, guid = ready_user(B, "bob")
    B.stop()
    A.send(bob, "while-down", "while-down")
    assert wait_deferred(A, "while-down"), A.cli("queue", "list").stdout
    B.start()
    A.cli("queue", "flush")
    assert wait_for(lambda: "while-down" in B.subjects(guid), timeout=30), A.cli("queue", "list").stdout


def swap_in_impostor():
    """Stops b and starts, in b's namespace with b's name, address and ports, a server that is not b: a new
    organisation with the same domain and administrator password, and its own certificate."""
    B.stop()
    imp = Host.__new__(Host)
    imp.ns, imp.hostname, imp.addr = B.ns, B.hostname, B.addr
    imp.base = tempfile.mkdtemp(prefix="ixh-imp-", dir="/tmp")
    os.chmod(imp.base, 0o755)
    imp.data = os.path.join(imp.base, "var")
    imp.domain, imp.admin_password, imp.suffix, imp.admin_dn, imp.ports = DOMAIN, ADMIN_PW, B.suffix, B.admin_dn, B.ports
    harness._systems.append(imp)
    imp.cli("init", "--domain", DOMAIN, "--admin-password", ADMIN_PW, "--hostname", B.hostname, "--listen", B.addr,
            check=True)
    imp.start()
    for login in ("bob", "ann"):
        add_user(imp, login)
    return imp


@test
def an_impostor_is_refused_by_every_path():
    needs_network()
    bob, guid = ready_user(B, "bob")
    imp = swap_in_impostor()
    try:
        # relay: a keeps the message, the reason names the certificate
        A.send(bob, "to-impostor", "to-impostor")
        assert wait_deferred(A, "to-impostor"), A.cli("queue", "list").stdout
        q = A.cli("queue", "show", "<to-impostor@test>").stdout + A.cli("queue", "list").stdout
        assert "certificate" in q, q
        assert "to-impostor" not in imp.subjects(imp.user("bob", "ixMailboxGuid").get("ixmailboxguid", ["-"])[0])
        # proxy: bob's login on a is not carried to the impostor
        try:
            A.imap("bob").logout()
            raise AssertionError("a proxied bob's IMAP login to the impostor")
        except imaplib.IMAP4.error as e:
            assert "UNAVAILABLE" in str(e) or "unavailable" in str(e).lower(), e
        # replication: a's status says replication with b fails, because of the certificate
        def warned():
            return [line for line in A.cli("status").stdout.splitlines()
                    if "WARNING: replication with b." in line and "certificate" in line]
        assert wait_for(warned, timeout=20), A.cli("status").stdout[-1200:]
        print("# " + warned()[0].strip())
        # move: refused before any password is sent
        p = move(A, B, "ann")
        assert p.returncode != 0 and "certificate" in p.stderr, p.stderr
        assert home_of(A, "ann").startswith("cn=a."), home_of(A, "ann")
    finally:
        imp.destroy()
        harness._systems.remove(imp)
        B.start()
    A.cli("queue", "flush")
    assert wait_for(lambda: "to-impostor" in B.subjects(guid), timeout=30), A.cli("queue", "list").stdout


@test
def certificate_renewal_keeps_every_link():
    needs_network()
    cert = os.path.join(B.data, "tls", "cert.pem")
    before = open(cert).read()
    p = B.cli("cert", "renew")
    print("# " + (p.stdout + p.stderr).strip().replace("\n", "\n# "))
    assert p.returncode == 0, p.stderr
    assert open(cert).read() != before
    ab = timed_arrival(A, B, "cid")
    assert ab is not None, "after b's renewal a user added on a never reached b"
    B.cli("user", "del", "cid", check=True)
    assert wait_for(lambda: "uid" not in A.user("cid", "uid"), timeout=20), "b's change never reached a"
    bob, guid = ready_user(B, "bob")
    A.send(bob, "after-renewal", "after-renewal")
    assert wait_for(lambda: "after-renewal" in B.subjects(guid), timeout=30), A.cli("queue", "list").stdout
    A.imap("bob").logout()
    for s in (A, B):
        st = s.cli("status")
        assert "in step" in st.stdout and "warning" not in st.stdout.lower(), st.stdout


def clear_forms(secret):
    """secret as it would appear unencrypted: itself, and the part of its base64 (SASL PLAIN, AUTH LOGIN) that
    depends on it alone, at each of the three alignments it can have inside a longer encoded string."""
    forms = [secret]
    for off in range(3):
        enc = base64.b64encode(b"\0" * off + secret)
        forms.append(enc[(off + 2) // 3 * 4:len(enc) - 4])
    return [f for f in forms if len(f) >= 8]


@test
def no_password_crosses_the_link_in_clear():
    needs_network()
    proc, path = CAPTURE
    proc.send_signal(signal.SIGINT)
    proc.wait(20)
    data = open(path, "rb").read()
    print("# capture: %d bytes" % len(data))
    assert len(data) > 100000, "the capture is nearly empty: %d bytes" % len(data)
    for secret in [ADMIN_PW] + list(USERS.values()):
        for form in clear_forms(secret.encode()):
            assert form not in data, "%s crossed the link in clear (as %r)" % (secret, form)
    assert b"cn=admin," not in data, "an administrator bind crossed the link in clear"


if __name__ == "__main__":
    main("hosts")
