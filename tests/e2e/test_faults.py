#!/usr/bin/env python3
# test_faults.py - faults around the services rather than inside them: services killed again and again (the
# attendant never gives up on one), a service that exits because the directory is not there (not its failure), the
# attendant itself killed (start recovers by itself), and backup and restore with mail waiting in the queue on
# other ports beside the original.
import hashlib
import imaplib
import json
import os
import shutil
import signal
import smtplib
import socketserver
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = None
PW = {"alice": "pw-alice1"}
ADDR = {"alice": "alice.archer@example.com"}
SERVICES = ["mta", "smtpd", "imapd", "pop3d"]


def status(system=None):
    p = (system or S).cli("status", "--json", timeout=30)
    try:
        return json.loads(p.stdout)
    except ValueError:
        return {"running": False, "services": []}


def services(system=None):
    return {s["name"]: s for s in status(system).get("services", [])}


def all_running(system=None):
    svc = services(system)
    return all(n in svc and svc[n]["state"] == "running" and svc[n]["pid"] > 0 for n in SERVICES + ["slapd"])


def kill(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def send(system, mid, rcpt):
    c = smtplib.SMTP("127.0.0.1", system.ports["smtp"], timeout=20)
    c.sendmail("someone@outside.org", [rcpt], "From: someone@outside.org\r\nTo: %s\r\nSubject: %s\r\n"
               "Message-ID: <%s>\r\n\r\nbody of %s\r\n" % (rcpt, mid, mid, mid))
    c.quit()


def inbox_ids(system, user):
    """The Message-IDs in user's INBOX (a list: a duplicate shows twice), or None when IMAP does not answer."""
    try:
        m = imaplib.IMAP4("127.0.0.1", system.ports["imap"], timeout=10)
        m.login(user, PW[user])
        typ, data = m.select("INBOX", readonly=True)
        if typ == "OK" and int(data[0]) > 0:
            typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        else:
            data = []
        m.logout()
    except (OSError, imaplib.IMAP4.error, EOFError):
        return None
    out = []
    for x in data if typ == "OK" else []:
        if isinstance(x, tuple):
            v = x[1].decode().split(":", 1)
            if len(v) == 2:
                out.append(v[1].strip().strip("<>"))
    return out


def attendant_log(system=None):
    try:
        return open(os.path.join((system or S).data, "log", "attendant.log")).read()
    except OSError:
        return ""


@h.test
def setup():
    global S
    S = h.System()
    S.cli("user", "add", "alice", "--given", "Alice", "--surname", "Archer", "--password", PW["alice"], check=True)
    assert h.wait_for(lambda: inbox_ids(S, "alice") is not None, timeout=20, interval=0.3), "alice cannot log in"
    # a short ceiling keeps the burst below quick; the doubling up to it is what is under test
    S.cli("server", "set", "attendant.restart_backoff_max_seconds", "1", check=True)
    assert h.wait_for(lambda: "attendant.restart_backoff_max_seconds" in S.cli("server", "show").stdout, timeout=10)
    assert all_running(), services()


@h.test
def services_killed_thirty_times_in_a_burst_all_come_back():
    """Five deaths in two minutes used to mark a service failed for good; now it is always started again."""
    kills = 0
    killed = set()  # pids already killed
    while kills < 30:
        def victim():
            for name, s in services().items():
                if name in SERVICES and s["state"] == "running" and s["pid"] > 0 and s["pid"] not in killed:
                    return s["pid"]
            return None
        pid = h.wait_for(victim, timeout=20, interval=0.05)
        assert pid, "no service came back to be killed after %d kills: %s" % (kills, services())
        kill(pid)
        killed.add(pid)
        kills += 1
    assert h.wait_for(all_running, timeout=60, interval=0.3), "not every service is running: %s" % services()
    svc = services()
    assert sum(svc[n]["restarts"] for n in SERVICES) >= 30, svc
    for n in SERVICES:
        # the new keys next to the old ones
        assert "failures" in svc[n] and "dependency_exits" in svc[n] and svc[n]["next_try"] == -1, svc[n]
    log = attendant_log()
    assert "failure" in log and "in a row" in log and "marked failed" not in log, log[-2000:]
    # and mail flows through the restarted services
    send(S, "after-burst@test", ADDR["alice"])
    assert h.wait_for(lambda: "after-burst@test" in (inbox_ids(S, "alice") or []), timeout=30, interval=0.3), \
        "mail not delivered after the burst"


@h.test
def status_and_metrics_say_backoff():
    """A service in backoff shows the state, the next try and why in status, status --json and the metrics."""
    S.cli("server", "set", "attendant.restart_backoff_first_ms", "60000", check=True)
    S.cli("server", "set", "attendant.restart_backoff_max_seconds", "60", check=True)
    assert h.wait_for(lambda: "attendant.restart_backoff_first_ms" in S.cli("server", "show").stdout, timeout=10)
    pid = services()["pop3d"]["pid"]
    kill(pid)
    assert h.wait_for(lambda: services()["pop3d"]["state"] == "backoff", timeout=10), services()
    p = services()["pop3d"]
    assert p["next_try"] > 0 and p["failures"] >= 1 and "signal 9" in p["last_exit"], p
    text = S.cli("status").stdout
    assert "next try in" in text and "pop3d is restarting in" in text, text
    import urllib.request
    metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % S.ports["metrics"], timeout=10).read().decode()
    assert 'interchange_service_up{service="pop3d",state="backoff"} 0' in metrics, metrics[:800]
    assert 'interchange_service_next_try_seconds{service="pop3d"}' in metrics
    assert 'interchange_service_failures{service="pop3d"}' in metrics
    S.cli("server", "set", "attendant.restart_backoff_first_ms", "200", check=True)
    S.cli("server", "set", "attendant.restart_backoff_max_seconds", "1", check=True)
    # the service waits out the long delay it was given: stop and start to get it back without waiting a minute
    S.stop()
    S.start()
    assert h.wait_for(all_running, timeout=30, interval=0.3), services()


@h.test
def directory_unavailable_is_not_a_failure():
    """A service that exits because the directory does not answer (slapd stopped) is restarted without counting a
    failure, and runs again once slapd answers."""
    svc = services()
    slapd = svc["slapd"]["pid"]
    imapd = svc["imapd"]
    kill(slapd, signal.SIGSTOP)  # slapd still "runs" but answers nobody
    try:
        kill(imapd["pid"])
        # the new imapd waits for its replica, gives up and exits with the dependency status
        assert h.wait_for(lambda: "imapd exited with status 75" in attendant_log(), timeout=60, interval=0.5), \
            attendant_log()[-2000:]
    finally:
        kill(slapd, signal.SIGCONT)
    assert h.wait_for(all_running, timeout=60, interval=0.3), services()
    after = services()["imapd"]
    assert after["dependency_exits"] >= 1, after
    # the SIGKILL was its one failure; the dependency exits did not add to the row
    assert after["failures"] <= 1, after
    assert "not counted as its failure" in attendant_log()


def attendant_pid(system):
    try:
        return int(open(os.path.join(system.data, "run", "attendant.pid")).read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@h.test
def start_after_the_attendant_was_killed_recovers():
    """The attendant killed with SIGKILL leaves slapd running (the services stop when its pipe closes): status says
    so, and start stops the orphan cleanly and starts, instead of refusing."""
    slapd = services()["slapd"]["pid"]
    kill(attendant_pid(S))
    assert h.wait_for(lambda: "orphaned directory server" in S.cli("status").stdout, timeout=20, interval=0.2)
    p = S.cli("status")
    assert p.returncode == 3, p.stdout
    assert "not running; an orphaned directory server of an earlier run is still running (pid %d)" % slapd in \
        p.stdout, p.stdout
    orphans = status().get("orphans")
    assert {"name": "slapd", "pid": slapd} in orphans, orphans
    p = S.start()
    assert p.returncode == 0, p.stderr
    assert h.wait_for(all_running, timeout=30, interval=0.3), services()
    assert services()["slapd"]["pid"] != slapd
    assert "of an earlier run" in attendant_log()
    send(S, "after-attendant-kill@test", ADDR["alice"])
    assert h.wait_for(lambda: "after-attendant-kill@test" in (inbox_ids(S, "alice") or []), timeout=30,
                      interval=0.3), "mail not delivered after the recovery"


@h.test
def start_run_again_at_once_by_a_system_supervisor():
    """systemd's Restart= runs start the moment the attendant died: the services of the old run may still be
    running too. Three times in a row."""
    for round in range(3):
        before = services()
        kill(attendant_pid(S))
        p = S.start()
        assert p.returncode == 0, "round %d: %s" % (round, p.stderr)
        assert h.wait_for(all_running, timeout=30, interval=0.3), services()
        after = services()
        for name in SERVICES + ["slapd"]:
            assert after[name]["pid"] != before[name]["pid"], (round, name)
    send(S, "after-restarts@test", ADDR["alice"])
    assert h.wait_for(lambda: "after-restarts@test" in (inbox_ids(S, "alice") or []), timeout=30, interval=0.3)
    # a duplicate delivery would show twice
    assert (inbox_ids(S, "alice") or []).count("after-restarts@test") == 1


def queue_count(system):
    q = status(system).get("queue", {})
    return q.get("active", 0) + q.get("deferred", 0)


class Restored(h.System):
    """A data folder made by `interchange restore` (not by init), stopped with the others at the end."""

    def __init__(self, backup, ports, extra=()):  # noqa: D401 - deliberately not System.__init__
        self.base = tempfile.mkdtemp(prefix="ixr-", dir="/tmp")
        os.chmod(self.base, 0o755)
        self.data = os.path.join(self.base, "var")
        self.domain, self.admin_password = S.domain, S.admin_password
        self.suffix, self.admin_dn = S.suffix, S.admin_dn
        self.ports = ports
        args = ["restore", backup] + list(extra)
        for name, port in ports.items():
            args += ["--%s-port" % name, str(port)]
        self.restore_output = self.cli(*args, timeout=120)
        h._systems.append(self)


BACKUP = {}


class Sink(socketserver.ThreadingTCPServer):
    """The smart host of the test connector once it answers: records the Message-IDs it is given."""
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port):
        self.ids = []

        class Session(socketserver.StreamRequestHandler):
            def handle(session):
                session.wfile.write(b"220 sink\r\n")
                for line in session.rfile:
                    verb = line[:4].upper()
                    if verb == b"DATA":
                        session.wfile.write(b"354 go\r\n")
                        for body in session.rfile:
                            if body == b".\r\n":
                                break
                            if body.lower().startswith(b"message-id:"):
                                self.ids.append(body.split(b":", 1)[1].strip().strip(b"<>").decode())
                    session.wfile.write(b"221 bye\r\n" if verb == b"QUIT" else b"250 ok\r\n")
                    if verb == b"QUIT":
                        return
        super().__init__(("127.0.0.1", port), Session)
        threading.Thread(target=self.serve_forever, daemon=True).start()


@h.test
def backup_keeps_the_queue_and_a_restored_copy_delivers_it():
    """Messages waiting in the queue (deferred: the smart host does not answer) are in the backup, listed in its
    manifest with checksums; restored into a new folder on other ports, beside the running original, they are
    delivered from there."""
    dead = h.free_ports(1)[0]  # nothing listens there yet: delivery is deferred
    S.cli("connector", "add", "Dead", "--address-space", "dead.example", "--smarthost", "127.0.0.1:%d" % dead,
          check=True)
    queued = ["queued-%d@test" % i for i in range(3)]
    with smtplib.SMTP("127.0.0.1", S.ports["submission"], timeout=20) as c:
        c.login("alice", PW["alice"])
        for mid in queued:
            c.sendmail(ADDR["alice"], ["someone@dead.example"], "From: %s\r\nSubject: %s\r\nMessage-ID: <%s>\r\n\r\n"
                       "relayed\r\n" % (ADDR["alice"], mid, mid))
    assert h.wait_for(lambda: status().get("queue", {}).get("deferred") == 3, timeout=30, interval=0.3), \
        status().get("queue")
    bk = os.path.join(S.base, "backup")  # removed with S at the end
    p = S.cli("backup", bk, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "3 queued messages" in p.stdout, p.stdout
    manifest = open(os.path.join(bk, "MANIFEST")).read()
    lines = [l for l in manifest.splitlines() if l.startswith("file ") and l.split()[3].startswith("queue/")]
    assert len(lines) == 3, manifest
    BACKUP["path"] = bk
    # restored beside the running original: every port its own
    ports = dict(zip(h.PORT_NAMES, h.free_ports(len(h.PORT_NAMES))))
    r = Restored(bk, ports)
    assert r.restore_output.returncode == 0, r.restore_output.stderr
    assert "3 queued messages" in r.restore_output.stdout, r.restore_output.stdout
    assert status(r)["ports"] == ports, status(r)["ports"]
    assert r.start().returncode == 0
    assert h.wait_for(lambda: all_running(r), timeout=30, interval=0.3) and all_running(S)
    assert queue_count(r) == 3, status(r).get("queue")
    # the original stops so that only the restored copy delivers once the smart host answers
    S.stop()
    sink = Sink(dead)
    try:
        r.cli("queue", "flush", check=True)
        assert h.wait_for(lambda: sorted(sink.ids) == queued, timeout=60, interval=0.3), \
            (sink.ids, r.cli("queue", "list").stdout)
        assert h.wait_for(lambda: queue_count(r) == 0, timeout=30, interval=0.3), status(r).get("queue")
    finally:
        sink.shutdown()
        sink.server_close()
    r.stop()
    S.start()
    assert h.wait_for(all_running, timeout=30, interval=0.3), services()
    S.cli("connector", "del", "Dead", check=True)


@h.test
def restore_refuses_a_damaged_queue_file():
    """restore verifies every queue file against the manifest before it makes anything."""
    bk = BACKUP["path"]
    damaged = bk + "-damaged"
    shutil.copytree(bk, damaged)
    qdir = os.path.join(damaged, "queue")
    victim = os.path.join(qdir, sorted(os.listdir(qdir))[0])
    with open(victim, "ab") as f:
        f.write(b"x")
    target = os.path.join(os.path.dirname(bk), "never")
    p = h.run([h.INTERCHANGE, "--data", target, "restore", damaged])
    assert p.returncode == 1 and "checksum mismatch" in p.stderr, (p.returncode, p.stderr)
    assert not os.path.exists(target)


@h.test
def restore_of_an_old_backup_with_the_old_queue_file():
    """A backup of the earlier design held the queue as an LMDB file (queue/data.mdb), or no queue: it restores,
    saying the old queue is not read."""
    bk = BACKUP["path"]
    old = bk + "-old"
    shutil.copytree(bk, old)
    qdir = os.path.join(old, "queue")
    for name in os.listdir(qdir):
        os.unlink(os.path.join(qdir, name))
    data = b"\0" * 8192
    open(os.path.join(qdir, "data.mdb"), "wb").write(data)
    manifest = [l for l in open(os.path.join(old, "MANIFEST")).read().splitlines()
                if not (l.startswith("file ") and l.split()[3].startswith("queue/"))]
    manifest.append("file %s %d queue/data.mdb" % (hashlib.sha256(data).hexdigest(), len(data)))
    open(os.path.join(old, "MANIFEST"), "w").write("\n".join(manifest) + "\n")
    r = Restored(old, dict(zip(h.PORT_NAMES, h.free_ports(len(h.PORT_NAMES)))))
    assert r.restore_output.returncode == 0, r.restore_output.stderr
    assert "earlier design" in r.restore_output.stderr and "0 queued messages" in r.restore_output.stdout
    assert not os.path.exists(os.path.join(r.data, "queue", "data.mdb"))
    assert r.start().returncode == 0
    assert h.wait_for(lambda: all_running(r), timeout=30, interval=0.3), services(r)
    assert h.wait_for(lambda: inbox_ids(r, "alice") is not None, timeout=20, interval=0.3), "alice not restored"
    r.stop()


@h.test
def restore_takes_the_port_options_of_init():
    p = h.run([h.INTERCHANGE, "restore", "--help"])
    assert p.returncode == 0 and "--smtp-port" in p.stdout and "beside the original" in p.stdout, p.stdout
    target = os.path.join(os.path.dirname(BACKUP["path"]), "clash")
    p = h.run([h.INTERCHANGE, "--data", target, "restore", BACKUP["path"], "--smtp-port", "2600", "--imap-port",
               "2600"])
    assert p.returncode == 2 and "both 2600" in p.stderr, (p.returncode, p.stderr)
    p = h.run([h.INTERCHANGE, "--data", target, "restore", BACKUP["path"], "--smtp-port", "0"])
    assert p.returncode == 2 and "1 to 65535" in p.stderr, (p.returncode, p.stderr)
    assert not os.path.exists(target)
    # without options the ports are the backed-up server's
    r = Restored(BACKUP["path"], {})
    assert r.restore_output.returncode == 0, r.restore_output.stderr
    assert status(r)["ports"] == S.ports, (status(r)["ports"], S.ports)


if __name__ == "__main__":
    h.main("faults")
