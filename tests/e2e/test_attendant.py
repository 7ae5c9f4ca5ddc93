"""test_attendant.py - the system attendant end to end: supervision (a killed service comes back), status
JSON as a stable interface, the Prometheus endpoint, and a clean stop that leaves no process behind."""
import json
import os
import signal
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import INTERCHANGE, System, main, skip, test, wait_for  # noqa: E402

S = None


def system():
    global S
    if S is None:
        S = System()
    return S


def status():
    return json.loads(system().cli("status", "--json", check=True).stdout)


def need_transport():
    """Skips the calling test when the mail services are not built."""
    for prog in ("ix-smtpd", "ix-mta", "ix-imapd"):
        if not os.path.exists(os.path.join(os.path.dirname(INTERCHANGE), prog)):
            skip("%s is not built" % prog)


def service(name):
    for s in status()["services"]:
        if s["name"] == name:
            return s
    return None


@test
def status_json_interface():
    st = status()
    for key in ("running", "ldap", "ports", "services", "directory", "store", "disk", "certificate", "warnings"):
        assert key in st, key
    assert set(["uri", "suffix", "admin_dn"]) <= set(st["ldap"]), st["ldap"]
    for name in ("ldap", "smtp", "submission", "imap", "imaps", "pop3", "pop3s", "sieve", "metrics"):
        assert isinstance(st["ports"][name], int), name
    for svc in st["services"]:
        assert set(["name", "state", "pid"]) <= set(svc), svc
    assert st["certificate"]["days_left"] > 700, st["certificate"]
    assert st["directory"]["replica_connected"] is True, st["directory"]
    assert st["warnings"] == [], st["warnings"]


@test
def services_run_unprivileged_when_started_as_root():
    if os.geteuid() != 0:
        skip("not run as root: everything runs as the user who started it")
    import pwd
    s = system()
    svc = pwd.getpwnam("interchange")
    for x in status()["services"]:
        if x["pid"]:
            uid = int([l for l in open("/proc/%d/status" % x["pid"]) if l.startswith("Uid:")][0].split()[1])
            assert uid == svc.pw_uid, (x["name"], uid)
    for root, dirs, files in os.walk(s.data):
        for name in dirs + files:
            p = os.path.join(root, name)
            st = os.lstat(p)
            if name == "admin-password":
                continue
            assert st.st_uid == svc.pw_uid, p
            public = os.path.relpath(p, s.data) in ("public", "public/cert.pem")
            assert st.st_mode & 0o007 == 0 or name in ("ldapi", "attendant.sock") or public, (p, oct(st.st_mode))
    # the data folder itself: others may open what they can name (the public certificate), never list it
    assert os.stat(s.data).st_mode & 0o777 == 0o711, oct(os.stat(s.data).st_mode)
    # the administrator (root) still manages everything through the command
    r = s.cli("user", "add", "rooted", "--given", "Root", "--surname", "Made", "--password", "pw", check=True)
    r = s.cli("store", "check", check=True)


@test
def killed_slapd_is_restarted_and_serves_again():
    s = system()
    before = service("slapd")
    os.kill(before["pid"], signal.SIGKILL)
    def back():
        now = service("slapd")
        return now if now and now["state"] == "running" and now["pid"] != before["pid"] else None
    now = wait_for(back, 15.0, 0.1)
    assert now, service("slapd")
    assert now["restarts"] == before["restarts"] + 1, now
    assert "signal 9" in now["last_exit"], now
    # the directory works again, and the attendant's replica reconnected (addresses are generated)
    s.cli("user", "add", "after", "--given", "Back", "--surname", "Again", "--password", "pw", check=True)
    def addr():
        r = s.ldapsearch("(uid=after)", "mail", bind_dn=s.admin_dn, password=s.admin_password)
        return "back.again@example.com" in r.stdout
    assert wait_for(addr, 35.0, 0.1), "no address after the restart"


@test
def metrics_endpoint_serves_prometheus_text():
    s = system()
    url = "http://127.0.0.1:%d/metrics" % s.ports["metrics"]
    with urllib.request.urlopen(url, timeout=5) as r:
        body = r.read().decode()
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain"), r.headers
    assert 'interchange_service_up{service="slapd",state="running"} 1' in body, body
    assert "interchange_replica_connected 1" in body, body
    try:
        urllib.request.urlopen("http://127.0.0.1:%d/nothing" % s.ports["metrics"], timeout=5)
        assert False, "expected 404"
    except urllib.error.HTTPError as e:
        assert e.code == 404
    # a client that sends garbage gets 400 and the endpoint still serves
    import socket
    c = socket.create_connection(("127.0.0.1", s.ports["metrics"]), timeout=5)
    c.sendall(b"\x00\x01 garbage\r\n\r\n")
    assert c.recv(100).startswith(b"HTTP/1.0 400"), "no 400"
    c.close()
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.status == 200


@test
def backup_and_restore_round_trip():
    import shutil
    import tempfile
    from harness import run
    s = system()
    s.cli("user", "add", "amy", "--given", "Amy", "--surname", "Pond", "--password", "pw-amy", check=True)
    s.cli("dl", "add", "Crew", "--member", "amy", check=True)
    s.cli("folder", "add", "Archive/2026", check=True)
    def ready():
        return "amy.pond@example.com" in s.cli("user", "show", "amy").stdout
    assert wait_for(ready, 5.0)
    tmp = tempfile.mkdtemp(prefix="ixb-", dir="/tmp")
    os.chmod(tmp, 0o755)
    import imaplib
    import smtplib
    import threading
    have_mail = os.path.exists(os.path.join(os.path.dirname(INTERCHANGE), "ix-smtpd"))

    def send(subject):
        with smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=10) as c:
            c.sendmail("someone@other.org", ["amy.pond@example.com"],
                       "From: someone@other.org\r\nTo: amy.pond@example.com\r\nSubject: %s\r\n\r\nhello\r\n" % subject)

    before = ["before-%d" % i for i in range(5)] if have_mail else []
    for subject in before:
        send(subject)
    during, stop_sending = [], threading.Event()

    def keep_sending():
        i = 0
        while not stop_sending.is_set() and i < 200:
            try:
                send("during-%d" % i)
                during.append("during-%d" % i)
            except (OSError, smtplib.SMTPException):
                pass
            i += 1
    sender = threading.Thread(target=keep_sending, daemon=True)
    if have_mail:
        sender.start()
    try:
        bk = os.path.join(tmp, "bk")
        r = s.cli("backup", bk)
        stop_sending.set()
        if have_mail:
            sender.join(30)
        assert r.returncode == 0, r.stderr
        assert open(os.path.join(bk, "MANIFEST")).read().startswith("interchange-backup 1\n")
        r = s.cli("backup", bk)
        assert r.returncode != 0 and "not empty" in r.stderr, r.stderr
        s.stop()
        new = os.path.join(tmp, "var")
        r = run([INTERCHANGE, "--data", new, "restore", bk])
        assert r.returncode == 0, r.stderr
        r = run([INTERCHANGE, "--data", new, "start"])
        assert r.returncode == 0, r.stderr
        try:
            r = run([INTERCHANGE, "--data", new, "user", "show", "amy"])
            assert "amy.pond@example.com (primary)" in r.stdout and "Crew" in r.stdout, r.stdout
            r = run(["ldapwhoami", "-x", "-H", s.ldap_uri, "-D", s.user_dn("amy"), "-w", "pw-amy"])
            assert r.returncode == 0, r.stderr
            r = run(["ldapwhoami", "-x", "-H", s.ldap_uri, "-D", s.admin_dn, "-w", s.admin_password])
            assert r.returncode == 0, r.stderr
            r = run([INTERCHANGE, "--data", new, "store", "check"])
            assert r.returncode == 0, r.stdout + r.stderr
            if have_mail:
                # every message acknowledged before the backup began is in the restored mailbox, once
                imap = imaplib.IMAP4("127.0.0.1", s.ports["imap"])
                imap.login("amy", "pw-amy")
                imap.select("INBOX")
                typ, data = imap.search(None, "ALL")
                ids = data[0].split()
                subjects = []
                for i in ids:
                    typ, msg = imap.fetch(i, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                    subjects.append(msg[0][1].decode().split(":", 1)[1].strip())
                imap.logout()
                for subject in before:
                    assert subjects.count(subject) == 1, (subject, subjects)
                assert len(set(subjects)) == len(subjects), subjects
        finally:
            run([INTERCHANGE, "--data", new, "stop"])
        # a damaged backup is refused before anything is written
        with open(os.path.join(bk, "directory.ldif"), "a") as f:
            f.write("x")
        other = os.path.join(tmp, "var2")
        r = run([INTERCHANGE, "--data", other, "restore", bk])
        assert r.returncode != 0 and "checksum" in r.stderr, r.stderr
        assert not os.path.exists(other)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        s.start()


@test
def maintenance_runs_on_request():
    s = system()
    r = s.cli("maintenance", "run", timeout=300)
    assert r.returncode == 0 and "Maintenance done" in r.stdout, r.stdout + r.stderr
    m = status()["maintenance"]
    assert m["last_check"] > 0 and m["check_problems"] == 0 and m["last_purge"] > 0, m


@test
def quota_warning_reaches_the_user():
    import imaplib
    import smtplib
    need_transport()
    s = system()
    s.cli("user", "add", "tight", "--given", "Tight", "--surname", "Quota", "--password", "pw-tight", check=True)
    s.cli("user", "quota", "tight", "--bytes", "4000", check=True)
    def ready():
        return "tight.quota@example.com (primary)" in s.cli("user", "show", "tight").stdout
    assert wait_for(ready, 5.0)
    # above 90% of the quota and under it, with the fields the server adds (Return-Path, Authentication-Results,
    # Received: about 400 bytes)
    body = "x" * 3450
    with smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=10) as c:
        c.sendmail("a@other.org", ["tight.quota@example.com"],
                   "From: a@other.org\r\nSubject: big\r\n\r\n%s\r\n" % body)
    r = s.cli("maintenance", "run", timeout=300)
    assert r.returncode == 0 and "1 quota warnings sent" in r.stdout, r.stdout
    imap = imaplib.IMAP4("127.0.0.1", s.ports["imap"])
    imap.login("tight", "pw-tight")
    imap.select("INBOX")
    typ, data = imap.search(None, "SUBJECT", '"almost full"')
    assert len(data[0].split()) == 1, data
    imap.logout()
    # once a day at most
    r = s.cli("maintenance", "run", timeout=300)
    assert "1 quota warnings sent" in r.stdout, r.stdout


@test
def queue_figures_agree_with_reality():
    import smtplib
    import urllib.request
    from harness import free_ports
    need_transport()
    s = system()
    dead = free_ports(1)[0]  # nothing listens there: delivery is deferred
    s.cli("connector", "add", "Dead", "--address-space", "dead.example", "--smarthost", "127.0.0.1:%d" % dead,
          check=True)
    s.cli("user", "add", "sender", "--given", "Send", "--surname", "Er", "--password", "pw-sender", check=True)
    assert wait_for(lambda: "send.er@example.com (primary)" in s.cli("user", "show", "sender").stdout, 5.0)
    with smtplib.SMTP("127.0.0.1", s.ports["submission"], timeout=10) as c:
        c.login("sender", "pw-sender")
        for i in range(3):
            c.sendmail("send.er@example.com", ["someone@dead.example"],
                       "From: send.er@example.com\r\nSubject: q%d\r\n\r\nx\r\n" % i)

    def three_deferred():
        q = status()["queue"]
        return q if q["active"] + q["deferred"] == 3 and q["deferred"] == 3 else None
    q = wait_for(three_deferred, 20.0, 0.2)
    assert q, status()["queue"]
    listed = s.cli("queue", "list", "--json", check=True).stdout
    assert listed.count('"id"') == 3, listed
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % s.ports["metrics"], timeout=5) as r:
        body = r.read().decode()
    assert 'interchange_queue_messages{state="deferred"} 3' in body, body
    s.cli("connector", "del", "Dead", check=True)


@test
def deleted_users_mailbox_removed_after_grace():
    import re
    import smtplib
    need_transport()
    s = system()
    s.cli("user", "add", "leaver", "--given", "Lea", "--surname", "Ver", "--password", "pw-leaver", check=True)
    assert wait_for(lambda: "lea.ver@example.com (primary)" in s.cli("user", "show", "leaver").stdout, 5.0)
    with smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=10) as c:
        c.sendmail("a@other.org", ["lea.ver@example.com"], "From: a@other.org\r\nSubject: bye\r\n\r\nx\r\n")

    def mailboxes():
        out = s.cli("store", "check").stdout
        return int(re.search(r"Checked (\d+) mailboxes", out).group(1))
    before = mailboxes()
    s.cli("user", "del", "leaver", check=True)
    # within the grace period the mailbox stays
    s.cli("maintenance", "run", timeout=300, check=True)
    assert mailboxes() == before, "removed during the grace period"
    s.cli("server", "set", "maintenance.orphan_grace_days", "0", check=True)
    # the attendant reads the setting from its replica, which has it moments later: the first run after that
    # removes the mailbox
    def removed():
        s.cli("maintenance", "run", timeout=300, check=True)
        return mailboxes() == before - 1
    assert wait_for(removed, 10.0, 0.05), (before, mailboxes())
    s.cli("server", "set", "maintenance.orphan_grace_days", "30", check=True)
    assert s.cli("store", "check").returncode == 0


@test
def service_crashing_at_start_backs_off():
    import socket
    need_transport()
    t = System(start=False)
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
    blocker.bind(("127.0.0.1", t.ports["smtp"]))
    blocker.listen(1)  # ix-smtpd cannot listen there: it exits at every start
    try:
        t.start()

        # never given up: it waits longer after each failure in a row, and says so
        def smtpd_backing_off():
            st = json.loads(t.cli("status", "--json").stdout)
            svc = [x for x in st["services"] if x["name"] == "smtpd"][0]
            return st if svc["state"] == "backoff" and svc["failures"] >= 3 else None
        st = wait_for(smtpd_backing_off, 60.0, 0.5)
        assert st, t.cli("status").stdout
        assert any("smtpd is restarting in" in w for w in st["warnings"]), st["warnings"]
        others = {x["name"]: x["state"] for x in st["services"]}
        assert others["imapd"] == "running" and others["slapd"] == "running", others
        assert "cannot listen" in t.cli("logs", "smtpd").stdout
    finally:
        blocker.close()
        t.stop()


@test
def stop_leaves_no_process():
    s = system()
    procs = {x["pid"]: x["name"] for x in status()["services"] if x["pid"]}
    r = s.cli("stop")
    assert r.returncode == 0, r.stderr
    for pid, name in procs.items():
        try:
            state = [l for l in open("/proc/%d/status" % pid) if l.startswith("State:")][0]
            cmd = open("/proc/%d/cmdline" % pid).read().replace("\0", " ")
        except OSError:
            continue
        assert "Z" in state, (name, pid, state, cmd)
    assert s.cli("status").returncode == 3


if __name__ == "__main__":
    main("attendant")
