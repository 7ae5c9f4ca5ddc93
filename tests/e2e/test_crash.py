#!/usr/bin/env python3
# test_crash.py - crash safety: SIGKILL of each service (ix-smtpd, ix-mta, ix-imapd, ix-pop3d, ix-managesieved,
# ix-httpd, slapd), of the attendant alone (its services live on as orphans until `interchange start` stops them and
# starts anew) and of the whole system at random moments during mixed load (SMTP in, IMAP flag changes and expunges,
# POP3 deletes), then every message acknowledged with 250 after DATA is present exactly once, no acknowledged change
# is lost, every service runs at the end and `interchange store check` is clean.
import imaplib
import json
import os
import poplib
import random
import re
import signal
import smtplib
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = None
PW = {"alice": "pw-alice1", "bob": "pw-bob22", "carol": "pw-carol3"}
ADDR = {"alice": "alice.archer@example.com", "bob": "bob.baker@example.com", "carol": "carol.cook@example.com"}
SERVICES = ["smtpd", "mta", "imapd", "pop3d", "managesieved", "httpd", "slapd"]  # names in `interchange status`
PROCESSES = ["attendant"] + SERVICES  # every process `interchange status` lists, the attendant first
SEED = int(os.environ.get("IX_CRASH_SEED", "0")) or random.randrange(1, 1 << 30)  # IX_CRASH_SEED=N replays
RNG = random.Random(SEED)
ROUNDS = 2  # kills of each service; the whole system is killed ROUNDS + 1 times
MID = re.compile(rb"Message-ID:\s*<([^>]+)>", re.I)


class Load:
    """Mixed load in threads; records only what the server acknowledged. The threads' short pauses pace a load
    generator (between operations, and before trying again while a service is down or a mailbox still empty):
    they are its rate, not waits for a result, which the tests take from ops and the sets below."""

    def __init__(self):
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.acked = {u: set() for u in PW}   # message ids acknowledged with 250 after DATA, per recipient
        self.flagged = set()                  # alice: message ids whose STORE +FLAGS (\Flagged) got OK
        self.expunged = set()                 # alice: message ids whose EXPUNGE got OK
        self.maybe_expunged = set()           # alice: marked \Deleted, EXPUNGE not acknowledged
        self.deleted = set()                  # bob: message ids whose POP3 DELE was committed by QUIT +OK
        self.maybe_deleted = set()            # bob: DELE sent, QUIT not acknowledged
        self.counter = 0
        self.errors = 0
        self.ops = {"smtp": 0, "imap": 0, "pop3": 0}  # operations acknowledged, per kind of client
        self.threads = [threading.Thread(target=self.sender, args=(k,), daemon=True) for k in range(3)]
        self.threads.append(threading.Thread(target=self.flagger, daemon=True))
        self.threads.append(threading.Thread(target=self.popper, daemon=True))

    def start(self):
        for t in self.threads:
            t.start()

    def mark(self):
        with self.lock:
            return dict(self.ops)

    def wait_progress(self, since, what):
        """Waits until every kind of client had an operation acknowledged after mark() returned since."""
        ok = h.wait_for(lambda: all(n > since[k] for k, n in self.mark().items()), timeout=30, interval=0.05)
        assert ok, "%s: the load made no progress: %s -> %s (%d errors)" % (what, since, self.mark(), self.errors)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def sender(self, k):
        users = list(PW)
        while not self.stop.is_set():
            with self.lock:
                self.counter += 1
                n = self.counter
            user = users[n % len(users)]
            mid = "crash-%d-%d@test" % (os.getpid(), n)
            try:
                c = smtplib.SMTP("127.0.0.1", S.ports["smtp"], timeout=10)
                c.sendmail("load@outside.org", [ADDR[user]],
                           "From: load@outside.org\r\nTo: %s\r\nSubject: load %d\r\nMessage-ID: <%s>\r\n\r\n"
                           "body %d\r\n" % (ADDR[user], n, mid, n))
                with self.lock:
                    self.acked[user].add(mid)
                    self.ops["smtp"] += 1
                try:
                    c.quit()
                except (OSError, smtplib.SMTPException):
                    pass
                time.sleep(0.02)  # bounded: a few thousand messages at most
            except (OSError, smtplib.SMTPException):
                with self.lock:
                    self.errors += 1
                time.sleep(0.1)

    def flagger(self):
        m = None
        while not self.stop.is_set():
            try:
                if m is None:
                    m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=10)
                    m.login("alice", PW["alice"])
                    m.select("INBOX")
                typ, data = m.uid("SEARCH", None, "UNDELETED")
                uids = data[0].split() if typ == "OK" else []
                if not uids:
                    time.sleep(0.1)
                    continue
                uid = RNG.choice(uids)
                typ, data = m.uid("FETCH", uid, "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
                found = [MID.search(x[1]) for x in data if isinstance(x, tuple)]
                if typ != "OK" or not found or not found[0]:
                    continue
                mid = found[0].group(1).decode()
                if RNG.random() < 0.7:
                    typ, _ = m.uid("STORE", uid, "+FLAGS", "(\\Flagged)")
                    if typ == "OK":
                        with self.lock:
                            self.flagged.add(mid)
                            self.ops["imap"] += 1
                else:
                    with self.lock:
                        self.maybe_expunged.add(mid)
                    typ, _ = m.uid("STORE", uid, "+FLAGS", "(\\Deleted)")
                    if typ == "OK":
                        typ, _ = m.expunge()
                        if typ == "OK":
                            with self.lock:
                                self.expunged.add(mid)
                                self.ops["imap"] += 1
                time.sleep(0.02)
            except (OSError, imaplib.IMAP4.error, EOFError):
                m = None
                time.sleep(0.1)
        if m is not None:
            try:
                m.logout()
            except (OSError, imaplib.IMAP4.error, EOFError):
                pass

    def popper(self):
        while not self.stop.is_set():
            p = None
            try:
                p = poplib.POP3("127.0.0.1", S.ports["pop3"], timeout=10)
                p.user("bob")
                p.pass_(PW["bob"])
                count = p.stat()[0]
                if count < 2:
                    p.quit()
                    time.sleep(0.2)
                    continue
                n = RNG.randint(1, count)
                hdr = b"\r\n".join(p.top(n, 0)[1])
                found = MID.search(hdr)
                if not found:
                    p.quit()
                    continue
                mid = found.group(1).decode()
                with self.lock:
                    self.maybe_deleted.add(mid)
                p.dele(n)
                p.quit()  # +OK: the deletion is committed
                with self.lock:
                    self.deleted.add(mid)
                    self.ops["pop3"] += 1
                time.sleep(0.05)
            except (OSError, poplib.error_proto, EOFError):
                time.sleep(0.1)


def status():
    p = S.cli("status", "--json")
    try:
        return json.loads(p.stdout)
    except ValueError:
        return None


def pids():
    st = status()
    out = {}
    for s in (st or {}).get("services", []):
        if s.get("pid"):
            out[s["name"]] = s["pid"]
    return out


def all_running(old=None):
    st = status()
    if not st:
        return False
    svcs = {s["name"]: s for s in st.get("services", [])}
    for name in PROCESSES:
        s = svcs.get(name)
        if not s or s.get("state") != "running" or not s.get("pid"):
            return False
        if old and old.get(name) == s["pid"]:
            return False
    return True


def service_names():
    st = status()
    return [s["name"] for s in (st or {}).get("services", [])]


def kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def dead(pid):
    """True once pid has exited: reaped, or a zombie (an orphan's zombie waits for init, which may be slow to reap
    it: docs/slapd-facts.md, "Zombies linger")."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def attendant_pid():
    try:
        return int(open(os.path.join(S.data, "run", "attendant.pid")).read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def contents(user):
    """message id -> count in the user's INBOX, and the set of ids flagged \\Flagged."""
    m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=20)
    m.login(user, PW[user])
    m.select("INBOX", readonly=True)
    typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    counts, flagged = {}, set()
    if typ == "OK":
        for x in data:
            if not isinstance(x, tuple):
                continue
            found = MID.search(x[1])
            if not found:
                continue
            mid = found.group(1).decode()
            counts[mid] = counts.get(mid, 0) + 1
            if b"\\Flagged" in x[0]:
                flagged.add(mid)
    m.logout()
    return counts, flagged


@h.setup
def setup():
    global S
    S = h.System()
    for u, (g, sn) in (("alice", ("Alice", "Archer")), ("bob", ("Bob", "Baker")), ("carol", ("Carol", "Cook"))):
        S.cli("user", "add", u, "--given", g, "--surname", sn, "--password", PW[u], check=True)
    # a killed service is started again after 50 ms instead of 500 (the attendant reads it from its replica)
    S.cli("server", "set", "attendant.restart_backoff_first_ms", "50", check=True)

    def ready():
        try:
            m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=5)
            m.login("carol", PW["carol"])
            m.logout()
            return True
        except (OSError, imaplib.IMAP4.error):
            return False
    assert h.wait_for(ready, timeout=15, interval=0.5), "users not ready"
    names = service_names()
    for name in SERVICES:
        assert name in names, "service %s not in status: %s" % (name, names)


LOAD = None


def kill_attendant(before):
    """SIGKILLs the attendant alone: the services see its pipe close and stop by themselves, slapd lives on as an
    orphan, which status reports and `interchange start` stops before it starts everything anew (a system
    supervisor's Restart= does the same)."""
    apid = before["attendant"]
    assert attendant_pid() == apid, (attendant_pid(), before)
    kill(apid)
    # what a supervisor waits for before it runs start again; a service the attendant was forking may still hold
    # run/attendant.lock until it runs its program, which start waits out
    assert h.wait_for(lambda: dead(apid), timeout=10), "the killed attendant lives"
    st = status()
    assert st is not None and st["running"] is False, st
    orphans = {o["name"]: o["pid"] for o in st["orphans"]}
    assert orphans.get("slapd") == before["slapd"], "slapd not reported as an orphan: %s" % st["orphans"]
    # a service still closing may be listed too, by its own pid: never a process that is not of the killed run
    assert all(before.get(name) == pid for name, pid in orphans.items()), (orphans, before)
    p = S.start()
    assert p.returncode == 0, p.stderr
    assert dead(before["slapd"]), "start left the orphaned slapd running"
    assert h.wait_for(lambda: all(dead(pid) for pid in before.values()), timeout=10), \
        "a process of the earlier run lives: %s" % {n: p for n, p in before.items() if not dead(p)}


@h.test
def kill_each_service_under_load():
    global LOAD
    LOAD = Load()
    zero = LOAD.mark()
    LOAD.start()
    LOAD.wait_progress(zero, "start")  # SMTP, IMAP and POP3 clients all at work
    for name in PROCESSES * ROUNDS:
        before = pids()
        assert set(before) == set(PROCESSES), before
        time.sleep(RNG.uniform(0.2, 1.5))  # the kill's moment is random on purpose (IX_CRASH_SEED replays it)
        if name == "attendant":
            kill_attendant(before)
            old = before  # every process is new after start
        else:
            kill(before[name])
            old = {name: before[name]}
        assert h.wait_for(lambda: all_running(old), timeout=30, interval=0.05), \
            "%s not back: %s" % (name, status())
        LOAD.wait_progress(LOAD.mark(), "after %s came back" % name)


@h.test
def kill_whole_system_under_load():
    for _ in range(ROUNDS + 1):
        time.sleep(RNG.uniform(0.5, 2.0))  # the kill's moment is random on purpose (IX_CRASH_SEED replays it)
        victims = list(pids().values())
        apid = attendant_pid()
        assert apid, "no attendant pid"
        kill(apid)  # first the attendant, so nothing is restarted, then every service at once
        for pid in victims:
            kill(pid)
        assert h.wait_for(lambda: all(dead(pid) for pid in victims + [apid]), timeout=10), "a killed process lives"
        p = S.start()
        assert p.returncode == 0, p.stderr
        assert h.wait_for(all_running, timeout=30, interval=0.05), "system not back: %s" % status()
        LOAD.wait_progress(LOAD.mark(), "after the system came back")


@h.test
def acknowledged_work_survives():
    LOAD.finish()
    total = sum(len(v) for v in LOAD.acked.values())
    assert total >= 10, "too little load got through: %d acknowledged, %d errors" % (total, LOAD.errors)
    # the queue drains: every acknowledged message reaches its mailbox
    state = {}

    def settled():
        state["c"] = {u: contents(u) for u in PW}
        for u in PW:
            counts = state["c"][u][0]
            gone = LOAD.expunged | LOAD.maybe_expunged if u == "alice" else \
                (LOAD.deleted | LOAD.maybe_deleted if u == "bob" else set())
            if any(counts.get(mid, 0) == 0 for mid in LOAD.acked[u] - gone):
                return False
        return True
    h.wait_for(settled, timeout=60, interval=1.0)
    problems = []
    for u in PW:
        counts, flagged = state["c"][u]
        for mid in sorted(LOAD.acked[u]):
            n = counts.get(mid, 0)
            if u == "alice" and mid in LOAD.expunged:
                if n:
                    problems.append("%s: expunged %s is back (%d)" % (u, mid, n))
            elif u == "bob" and mid in LOAD.deleted:
                if n:
                    problems.append("%s: deleted %s is back (%d)" % (u, mid, n))
            elif (u == "alice" and mid in LOAD.maybe_expunged) or (u == "bob" and mid in LOAD.maybe_deleted):
                if n > 1:
                    problems.append("%s: %s present %d times" % (u, mid, n))
            elif n != 1:
                problems.append("%s: %s present %d times" % (u, mid, n))
        if u == "alice":
            for mid in LOAD.flagged - LOAD.expunged - LOAD.maybe_expunged:
                if counts.get(mid) and mid not in flagged:
                    problems.append("alice: \\Flagged on %s lost" % mid)
        # nothing that was never acknowledged nor sent by us
        for mid in counts:
            if not mid.startswith("crash-"):
                problems.append("%s: unexpected message %s" % (u, mid))
    assert not problems, "seed %d: %d problems (of %d acknowledged, %d flagged, %d expunged, %d deleted): %s" % (
        SEED, len(problems), total, len(LOAD.flagged), len(LOAD.expunged), len(LOAD.deleted), problems[:10])
    print("crash (seed %d): %d acknowledged messages, %d flag changes, %d expunges, %d POP3 deletes checked" % (
        SEED, total, len(LOAD.flagged), len(LOAD.expunged), len(LOAD.deleted)))


@h.test
def every_service_running_at_end():
    st = status()
    assert st is not None and st["running"] is True, st
    states = {s["name"]: s.get("state") for s in st["services"]}
    assert states == {name: "running" for name in PROCESSES}, states
    assert st["orphans"] == [], st["orphans"]


@h.test
def store_check_clean():
    S.stop()
    p = S.cli("store", "check", timeout=120)
    assert p.returncode == 0, "store check: %s %s" % (p.stdout[-800:], p.stderr[-400:])


if __name__ == "__main__":
    h.main("crash")
