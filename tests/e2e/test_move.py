#!/usr/bin/env python3
# test_move.py - `interchange user move LOGIN --to SERVER` between two servers of one organisation on this machine:
# folders, flags, keywords, UIDs and UIDVALIDITY arrive on the target; a mailbox moved while a sender keeps sending
# to it through the source's SMTP port loses and duplicates nothing; refusals.
import imaplib
import os
import re
import smtplib
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import System, _tests, entries, main, run, setup, test, wait_for  # noqa: E402
from test_multiserver import Joined  # noqa: E402

del _tests[:]  # importing test_multiserver registered its tests: this suite runs only its own

A = B = None
B_HOST = "127.0.0.1"  # B's host name is its address: A reaches B's SMTP and IMAP ports there
LOGIN, PASSWORD = "mover", "pw-mover"
SENT = 40


def attrs(system, login, *names):
    out = system.ldapsearch("(uid=%s)" % login, *names, bind_dn=system.admin_dn, password=system.admin_password)
    e = entries(out.stdout)
    return e[0] if e else {}


def imap(system, login=LOGIN):
    c = imaplib.IMAP4("127.0.0.1", system.ports["imap"], timeout=20)
    c.login(login, PASSWORD)
    return c


def state(c, folder):
    """UIDVALIDITY, UIDNEXT and {uid: sorted flags} of a folder."""
    typ, data = c.status('"%s"' % folder, "(UIDVALIDITY UIDNEXT)")
    assert typ == "OK", data
    uv = int(re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1))
    nxt = int(re.search(rb"UIDNEXT (\d+)", data[0]).group(1))
    typ, data = c.select('"%s"' % folder, readonly=True)
    assert typ == "OK", (folder, data)
    typ, data = c.uid("FETCH", "1:*", "(FLAGS)")
    assert typ == "OK", (folder, data)
    msgs = {}
    for line in data:
        if not line:
            continue
        m = re.search(rb"UID (\d+) FLAGS \(([^)]*)\)", line)
        if m:
            msgs[int(m.group(1))] = sorted(f for f in m.group(2).decode().split() if f != "\\Recent")
    c.close()
    return uv, nxt, msgs


def savedates(c, folder):
    """{uid: SAVEDATE as the server says it} of a folder (RFC 8514)."""
    typ, data = c.select('"%s"' % folder, readonly=True)
    assert typ == "OK", (folder, data)
    typ, data = c.uid("FETCH", "1:*", "(SAVEDATE)")
    assert typ == "OK", (folder, data)
    out = {}
    for line in data:
        m = re.search(rb"UID (\d+) SAVEDATE (NIL|\"[^\"]*\")", line or b"")
        if m:
            out[int(m.group(1))] = m.group(2).decode()
    c.close()
    return out


def raw_selected(system, login=LOGIN):
    """A raw IMAP connection logged in with INBOX selected (to see what the server says unasked)."""
    s = socket.create_connection(("127.0.0.1", system.ports["imap"]), timeout=20)
    s.sendall(b"a LOGIN %s %s\r\nb SELECT INBOX\r\n" % (login.encode(), PASSWORD.encode()))
    got = b""
    while b"\r\nb OK" not in got:
        chunk = s.recv(65536)
        assert chunk, got
        got += chunk
    return s


def read_until(s, needle, timeout):
    s.settimeout(timeout)
    got = b""
    try:
        while needle not in got:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except socket.timeout:
        pass
    return got


def numbers_in_inbox(system):
    """The numbers of the 'move-N' messages in the user's INBOX on system (a list, duplicates kept)."""
    c = imap(system)
    try:
        c.select("INBOX", readonly=True)
        typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        found = []
        for item in data:
            if isinstance(item, tuple):
                m = re.search(rb"Subject: move-(\d+)", item[1])
                if m:
                    found.append(int(m.group(1)))
        return found
    finally:
        c.logout()


@setup
def two_servers_and_a_user_on_a():
    global A, B
    A = System(domain="move.example", admin_password="move-admin-pw")
    B = Joined(A, B_HOST)
    p = A.cli("user", "add", LOGIN, "--password", PASSWORD, "--given", "Moving", "--surname", "Mailbox")
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: "mail" in attrs(A, LOGIN, "mail") and "mail" in attrs(B, LOGIN, "mail"), timeout=10)

    def can_login(system):  # the daemons' replicas have the new user too
        try:
            imap(system).logout()
            return True
        except imaplib.IMAP4.error:
            return False
    assert wait_for(lambda: can_login(A), timeout=10, interval=0.5), "no IMAP login on A"  # under the throttle


def read_only(system, on):
    """Makes system's directory database refuse every write (olcReadOnly), or take them again."""
    ldapi = "ldapi://" + os.path.join(system.data, "run", "ldapi").replace("/", "%2F")
    base = ["-o", "ldif-wrap=no", "-Q", "-Y", "EXTERNAL", "-H", ldapi]
    found = run(["ldapsearch", "-LLL"] + base + ["-b", "cn=config", "(olcSuffix=%s)" % system.suffix, "dn"])
    dns = [e["dn"][0] for e in entries(found.stdout)]
    assert len(dns) == 1, found.stdout + found.stderr
    p = run(["ldapmodify"] + base, input="dn: %s\nchangetype: modify\nreplace: olcReadOnly\nolcReadOnly: %s\n"
            % (dns[0], "TRUE" if on else "FALSE"))
    assert p.returncode == 0, p.stdout + p.stderr


@test
def failed_switch_leaves_the_source_working():
    # the copy goes through, then the target's directory refuses the home server's change (another user: the
    # tests below start from the first one's mailbox as the setup left it)
    login = "failer"
    p = A.cli("user", "add", login, "--password", PASSWORD, "--given", "Failing", "--surname", "Move")
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: "mail" in attrs(A, login, "mail") and "mail" in attrs(B, login, "mail"), timeout=10)

    def can_login():
        try:
            imap(A, login).logout()
            return True
        except imaplib.IMAP4.error:
            return False
    assert wait_for(can_login, timeout=10, interval=0.5), "no IMAP login on A"
    c = imap(A, login)
    typ, data = c.append("INBOX", None, None, b"From: a@x.example\r\nSubject: before-failure\r\n\r\nbody\r\n")
    assert typ == "OK", data
    c.logout()
    watcher = raw_selected(A, login)
    read_only(B, True)
    try:
        p = A.cli("user", "move", login, "--to", B_HOST, timeout=120)
    finally:
        read_only(B, False)
    assert p.returncode == 1 and "could not change the home server" in p.stderr, p.stdout + p.stderr
    assert "final copy (mailbox frozen here)" in p.stdout, p.stdout  # it failed after the freeze, at the switch
    # the session on A was told nothing: its NOOP answers with no BYE before it
    watcher.sendall(b"c NOOP\r\n")
    said = read_until(watcher, b"c OK", 10)
    watcher.close()
    assert b"c OK" in said and b"BYE" not in said, said[-500:]
    # the mailbox on A takes changes again (a frozen one refuses them) and is still the home
    assert A.cli("mailbox", "show", login).stdout.count("Frozen") == 0
    c = imap(A, login)
    typ, data = c.append("INBOX", None, None, b"From: a@x.example\r\nSubject: after-failure\r\n\r\nbody\r\n")
    assert typ == "OK", data
    c.logout()
    assert B_HOST not in attrs(A, login, "ixHomeServer")["ixhomeserver"][0]
    # the copy on B is marked incomplete, and the maintenance removes it once its grace period is over
    show = B.cli("mailbox", "show", login)
    assert "Incomplete:" in show.stdout and "INBOX" in show.stdout, show.stdout + show.stderr
    B.cli("maintenance", "run", timeout=120, check=True)
    assert "INBOX" in B.cli("mailbox", "show", login).stdout, "removed during the grace period"
    B.cli("server", "set", "maintenance.orphan_grace_days", "0", check=True)
    try:
        assert wait_for(lambda: "orphan_grace_days" in B.cli("server", "show").stdout, timeout=5)
        assert wait_for(lambda: B.cli("maintenance", "run", timeout=120).returncode == 0
                        and "INBOX" not in B.cli("mailbox", "show", login).stdout, timeout=10, interval=0.5), \
            B.cli("mailbox", "show", login).stdout
    finally:
        B.cli("server", "set", "maintenance.orphan_grace_days", "30", check=True)


@test
def move_keeps_folders_flags_uids_while_mail_arrives():
    addr = attrs(A, LOGIN, "mail")["mail"][0]
    c = imap(A)
    typ, data = c.create("Projects/2024")
    assert typ == "OK", data

    def append(folder, flags, text):
        typ, data = c.append(folder, flags, None, text)
        assert typ == "OK", (folder, data)
    for i in range(3):
        append("INBOX", "(\\Seen)" if i else None, b"From: a@x.example\r\nSubject: early-%d\r\n\r\nbody %d\r\n" % (i, i))
    append('"Projects/2024"', "(\\Flagged $Label1)", b"From: a@x.example\r\nSubject: p1\r\n\r\np1\r\n")
    append('"Projects/2024"', "(\\Answered \\Seen)", b"From: a@x.example\r\nSubject: p2\r\n\r\np2\r\n")
    typ, data = c.select("INBOX")
    assert typ == "OK" and data == [b"3"], data
    typ, data = c.uid("STORE", "2", "+FLAGS", "(\\Deleted)")
    assert typ == "OK", data
    typ, data = c.expunge()  # a gap in INBOX's UIDs
    assert typ == "OK" and data == [b"2"], data
    c.close()
    before = {f: state(c, f) for f in ("INBOX", "Projects", "Projects/2024", "Sent")}
    saved_before = savedates(c, "Projects/2024")
    assert len(saved_before) == 2 and "NIL" not in saved_before.values(), saved_before
    c.logout()
    # two Sieve scripts, one active: they move with the mailbox
    scripts = {"rules": 'require "fileinto";\nif header :contains "subject" "p9" { fileinto "Projects"; }\n',
               "spare": "keep;\n"}
    for name, text in scripts.items():
        path = os.path.join(A.base, name + ".sieve")
        with open(path, "w") as f:
            f.write(text)
        assert A.cli("user", "sieve", LOGIN, "--put", name, path).returncode == 0
    assert A.cli("user", "sieve", LOGIN, "--activate", "rules").returncode == 0

    # a sender keeps sending numbered messages to the user through A's SMTP port during the whole move
    done = threading.Event()
    errors = []

    def sender():
        try:
            s = smtplib.SMTP("127.0.0.1", A.ports["smtp"], timeout=30)
            for n in range(SENT):
                s.sendmail("sender@outside.example", [addr],
                           "From: sender@outside.example\r\nTo: %s\r\nSubject: move-%d\r\n\r\nnumber %d\r\n"
                           % (addr, n, n))
                if n == SENT // 4:
                    started.set()
                if n > SENT // 2 and not moved.is_set():
                    moved.wait(60)  # the second half goes after the home changed
            s.quit()
        except Exception as e:  # noqa: BLE001 - reported by the test
            errors.append(repr(e))
        finally:
            done.set()

    # a client with the INBOX selected on A is told to connect again when its mailbox leaves
    watcher = raw_selected(A)
    started, moved = threading.Event(), threading.Event()
    t = threading.Thread(target=sender)
    t.start()
    assert started.wait(30), "the sender did not get a quarter through: %s" % errors
    p = A.cli("user", "move", LOGIN, "--to", B_HOST, timeout=120)
    moved.set()
    t.join(90)
    assert done.is_set(), "the sender did not finish"
    assert p.returncode == 0, p.stdout + p.stderr
    assert "final copy (mailbox frozen here)" in p.stdout and "Moved the mailbox of mover to" in p.stdout, p.stdout
    print("# " + p.stdout.strip().replace("\n", "\n# "))
    assert not errors, errors
    said = read_until(watcher, b"* BYE [UNAVAILABLE]", 10)
    watcher.close()
    assert b"* BYE [UNAVAILABLE] This mailbox has moved" in said, said[-500:]
    assert B_HOST in attrs(A, LOGIN, "ixHomeServer")["ixhomeserver"][0]
    show = A.cli("user", "show", LOGIN)
    assert re.search(r"Home server:\s+%s" % re.escape(B_HOST), show.stdout), show.stdout

    # every numbered message is in B's INBOX exactly once; nothing for the user waits in A's queue
    def all_there():
        try:
            return sorted(numbers_in_inbox(B)) == list(range(SENT))
        except imaplib.IMAP4.error:  # B's daemons may learn the new home a moment after its directory
            return False
    assert wait_for(all_there, timeout=30, interval=0.2), sorted(numbers_in_inbox(B))
    q = A.cli("queue", "list")
    assert addr not in q.stdout, q.stdout

    # folders, UIDVALIDITY, UIDs and flags (keywords included) as they were on A
    c = imap(B)
    for folder, (uv, nxt, msgs) in before.items():
        uv2, nxt2, msgs2 = state(c, folder)
        assert uv2 == uv, (folder, uv, uv2)
        if folder == "INBOX":  # new mail arrived meanwhile, above the old UIDs
            assert {u: f for u, f in msgs2.items() if u < nxt} == msgs, (msgs, msgs2)
            new = sorted(u for u in msgs2 if u >= nxt)  # the SENT messages, each once (all_there), above nxt
            assert len(new) == SENT and nxt2 > new[-1], (nxt, nxt2, new)
        else:
            assert (nxt2, msgs2) == (nxt, msgs), (folder, nxt, msgs, nxt2, msgs2)
    assert ["$Label1", "\\Flagged"] in before["Projects/2024"][2].values()
    # the save dates came along (X-IX-IMPORT APPENDS), not the time of the move
    assert savedates(c, "Projects/2024") == saved_before, (saved_before, savedates(c, "Projects/2024"))
    c.logout()

    # the scripts are on B, the same one active
    p = B.cli("user", "sieve", LOGIN)
    assert p.stdout.splitlines() == ["rules (active)", "spare"], p.stdout + p.stderr
    for name, text in scripts.items():
        assert B.cli("user", "sieve", LOGIN, "--show", name).stdout == text

    # the copy left on A stays (frozen) until the maintenance removes it
    assert A.cli("mailbox", "show", LOGIN).returncode == 0

@test
def move_refusals():
    p = A.cli("user", "move", "nobody", "--to", B_HOST)
    assert p.returncode == 1 and "no user with login nobody" in p.stderr, p.stderr
    p = A.cli("user", "move", LOGIN, "--to", "nowhere.example")
    assert p.returncode == 1 and "no server named nowhere.example" in p.stderr, p.stderr
    p = A.cli("user", "move", LOGIN, "--to", B_HOST)
    assert p.returncode == 1 and "already on" in p.stderr, p.stderr
    p = A.cli("user", "move", LOGIN)
    assert p.returncode == 2 and "--to SERVER" in p.stderr, p.stderr
    # from a server that is not the home: say where to run it
    p = A.cli("user", "move", LOGIN, "--to", "mail.move.example")
    assert p.returncode == 1 and "not on this server" in p.stderr, p.stderr



@test
def frozen_copy_removed_by_maintenance_after_the_grace_period():
    def has_copy():
        return A.cli("mailbox", "show", LOGIN).returncode == 0 and "INBOX" in A.cli("mailbox", "show", LOGIN).stdout
    assert has_copy()
    A.cli("maintenance", "run", timeout=120, check=True)
    assert has_copy(), "the frozen copy went during the grace period"
    A.cli("server", "set", "maintenance.orphan_grace_days", "0", check=True)
    assert wait_for(lambda: "orphan_grace_days" in A.cli("server", "show").stdout, timeout=5)
    assert wait_for(lambda: A.cli("maintenance", "run", timeout=120).returncode == 0 and not has_copy(),
                    timeout=10, interval=0.5), A.cli("mailbox", "show", LOGIN).stdout
    assert len(numbers_in_inbox(B)) == SENT  # B's mailbox is untouched


if __name__ == "__main__":
    main("move")
