#!/usr/bin/env python3
# test_import.py - `interchange import imap`: Debian's Dovecot is the server an organisation leaves behind, filled
# over IMAP with folders, flags, keywords, dates, large and odd messages (the MIME corpus of the tests); the import,
# then changes there (new mail, flag changes, a deleted message, a renamed folder) and a second import; both servers
# compared folder by folder over IMAP. Master users, folder maps, exclusions, --since, quota and refusals.
import glob
import imaplib
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, System, imap_login_ok, main, run, setup, test, wait_for  # noqa: E402
from dovecot import Dovecot  # noqa: E402

IX = DC = None
USERS = {"alice": "pw-alice", "bob": "pw-bob", "carol": "pw-carol", "dave": "pw-dave", "erin": "pw-erin"}
FILE_USERS = ["frank", "grace", "kit"]  # mailboxes here only: maildir and mbox imports
CSV_USERS = {"ann1": "pw-ann1", "ann2": "pw-ann2", "ann3": "pw-ann3"}  # there; here made by import csv
KILLED = {"kim": "pw-kim"}  # a large mailbox whose import is killed on the way
KILLED_MSGS = 2500
MASTERS = {"admin": "pw-admin"}
LOCAL_PW = "local-pw"
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus", "mime")
# remote folder -> the folder it must become here (special-use roles mapped to ours)
ROLES = {"INBOX": "INBOX", "Sent Items": "Sent", "Deleted Items": "Trash", "Drafts": "Drafts", "Junk E-mail": "Junk"}


def msg(i, subject, body="hello\r\n", extra=""):
    return ("From: Someone <someone@old.example>\r\nTo: alice@old.example\r\nSubject: %s\r\n"
            "Message-ID: <m%d.%s@old.example>\r\nDate: Mon, 1 Jun 2020 10:00:00 +0200\r\n%s\r\n%s"
            % (subject, i, subject.replace(" ", "-"), extra, body)).encode()


def fill(c):
    """Folders, subscriptions, flags, keywords, dates, the MIME corpus, a 3 MB message, odd ones."""
    folders = ["Sent Items", "Deleted Items", "Drafts", "Junk E-mail", "Projects", "Projects/2025",
               "Projects/2025/Q1", "&AMk-t&AOk-", "Empty", "Old"]
    for f in folders:
        typ, data = c.create('"%s"' % f)
        assert typ == "OK", (f, data)
    for f in ("Projects", "Projects/2025/Q1", "&AMk-t&AOk-", "Sent Items"):
        assert c.subscribe('"%s"' % f)[0] == "OK"
    dates = ['"01-Jan-1999 00:00:01 +0000"', '"29-Feb-2012 23:59:59 -0800"', '"15-Jul-2024 12:30:00 +0530"']
    flags = ["(\\Seen)", "(\\Seen \\Answered $Forwarded)", "(\\Flagged $Label1 Important)", "()", "(\\Draft)",
             "(\\Seen \\Deleted)"]
    n = 0
    for path in sorted(glob.glob(os.path.join(CORPUS, "*.eml"))):
        data = open(path, "rb").read()
        typ, resp = c.append("INBOX", flags[n % len(flags)], dates[n % len(dates)], data)
        n += 1  # a message Dovecot refuses (NUL bytes) is simply not part of the source
    for i, f in enumerate(folders + ["INBOX"]):
        if f == "Empty":
            continue
        for k in range(3):
            assert c.append('"%s"' % f, flags[(i + k) % len(flags)], dates[(i + k) % len(dates)],
                            msg(100 * i + k, "msg %d in %s" % (k, f)))[0] == "OK"
    big = msg(9000, "big", body="".join("line %07d of a large attachment, base64 or not\r\n" % i
                                        for i in range(60000)))
    assert c.append("Projects", "(\\Seen)", dates[0], big)[0] == "OK"
    # no Message-ID, a duplicate Message-ID, an 8-bit header, a long header line
    assert c.append("Old", "()", dates[1], b"Subject: no id\r\n\r\nnothing\r\n")[0] == "OK"
    assert c.append("Old", "()", dates[1], msg(1, "dup"))[0] == "OK"
    assert c.append("Old", "()", dates[2], msg(1, "dup"))[0] == "OK"
    assert c.append("Old", "(\\Seen)", dates[2], msg(9001, "8bit", extra="X-Name: J\xc3\xbcrgen\r\n"
                                                     .encode("latin-1").decode("utf-8")))[0] == "OK"
    assert c.append("Old", "()", dates[0], msg(9002, "long", extra="X-Long: " + "y" * 5000 + "\r\n"))[0] == "OK"


def folders(c):
    """{name: subscribed} of every selectable folder."""
    typ, data = c.list('""', '"*"')
    assert typ == "OK", data
    out = {}
    for line in data:
        m = re.match(rb'\(([^)]*)\) "(.)" (.*)$', line)
        assert m, line
        name = m.group(3).decode()
        if name.startswith('"'):
            name = name[1:-1]
        if "\\Noselect" not in m.group(1).decode() and "\\NonExistent" not in m.group(1).decode():
            out[name] = False
    typ, data = c.lsub('""', '"*"')
    for line in data:
        if line:
            name = re.match(rb'\([^)]*\) "." (.*)$', line).group(1).decode().strip('"')
            if name in out:
                out[name] = True
    return out


def contents(c, folder):
    """[(flags, INTERNALDATE, body)] of a folder in UID order."""
    typ, data = c.select('"%s"' % folder, readonly=True)
    assert typ == "OK", (folder, data)
    if int(data[0]) == 0:
        return []
    typ, data = c.uid("FETCH", "1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
    assert typ == "OK", data
    out = []
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta = item[0].decode()
        fl = sorted(f for f in re.search(r"FLAGS \(([^)]*)\)", meta).group(1).split() if f != "\\Recent")
        date = re.search(r'INTERNALDATE "([^"]*)"', meta).group(1)
        stamp = time.mktime(imaplib.Internaldate2tuple(('INTERNALDATE "%s"' % date).encode()))
        out.append((fl, stamp, item[1]))
    return out


def mutf7(name):
    """A modified UTF-7 mailbox name (RFC 3501 5.1.3) in UTF-8."""
    import base64
    return re.sub(r"&([^-]*)-", lambda m: "&" if not m.group(1) else base64.b64decode(
        m.group(1).replace(",", "/") + "=" * (-len(m.group(1)) % 4)).decode("utf-16-be"), name)


def local_name(remote):
    remote = mutf7(remote)
    top = remote.split("/")[0]
    if top in ROLES:
        return ROLES[top] + remote[len(top):]
    return remote


def compare(login, maps=local_name, skip=(), local=None, nul=b"\x00"):
    """Every remote folder of login and its messages (bytes, flags, dates) equal the local folder it went to in the
    mailbox of local (default: the same login); remote subscriptions are subscribed here. Returns the number of
    messages compared. nul: what Dovecot serves for a NUL byte its file holds (0x80 where it read the file)."""
    r, l = DC.imap(login), imaplib.IMAP4("127.0.0.1", IX.ports["imap"], timeout=60)
    l.login(local or login, LOCAL_PW)
    l.enable("UTF8=ACCEPT")  # the 8-bit header as stored, not downgraded for an old client
    try:
        rf, lf = folders(r), folders(l)
        n = 0
        for name, sub in rf.items():
            if any(name.startswith(s) for s in skip):
                continue
            local = maps(name)
            assert local in lf, "%s (from %s) is missing here: %s" % (local, name, sorted(lf))
            if sub:
                assert lf[local], "%s is not subscribed here" % local
            a, b = contents(r, name), contents(l, local)
            assert len(a) == len(b), "%s: %d messages there, %d here" % (name, len(a), len(b))
            for i, (x, y) in enumerate(zip(a, b)):
                y = (y[0], y[1], y[2].replace(b"\x00", nul))
                assert x[2] == y[2], "%s message %d differs in bytes: %r there, %r here" % (
                    name, i + 1, x[2][:300], y[2][:300])
                assert x[0] == y[0], "%s message %d: flags %s there, %s here" % (name, i + 1, x[0], y[0])
                assert x[1] == y[1], "%s message %d: date %s there, %s here" % (name, i + 1, x[1], y[1])
            n += len(a)
        return n
    finally:
        r.logout()
        l.logout()


def run_import(login, *args, remote=None, password=None, check=True):
    a = ["import", "imap", login, "--from", DC.url, "--user", remote or login, "--ca-file", DC.cert]
    if password is not None or not any(x.startswith("--password") or x == "--oauth2-token-file" for x in args):
        a += ["--password", password or DC.users[remote or login]]
    p = IX.cli(*(a + list(args)), timeout=300)
    if check:
        assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return p


def copied(p):
    m = re.search(r"(\d+) messages? copied", p.stdout)
    assert m, p.stdout
    return int(m.group(1))


@setup
def start():
    global IX, DC
    DC = Dovecot(dict(USERS, **CSV_USERS, **KILLED), MASTERS)
    IX = System()
    for login in list(USERS) + FILE_USERS + list(KILLED):
        IX.cli("user", "add", login, "--password", LOCAL_PW, "--given", login.title(), "--surname", "Import",
               check=True)
    assert wait_for(lambda: imap_login_ok(IX.ports["imap"], "alice", LOCAL_PW), timeout=20)
    c = DC.imap("alice")
    fill(c)
    c.logout()


@test
def first_import_copies_every_folder_byte_for_byte():
    p = run_import("alice")
    # a line per folder with counts, bytes and a rate; the summary
    assert re.search(r"^  Sent Items -> Sent: 3 of 3 new messages, .* messages/s, .* MB/s", p.stdout, re.M), p.stdout
    assert re.search(r"^  Projects -> Projects: 4 of 4 new messages, [0-9.]+ MB of [0-9.]+ MB", p.stdout, re.M), \
        p.stdout
    assert re.search(r"^Imported alice: \d+ folders, \d+ messages copied .* 0 failed$", p.stdout, re.M), p.stdout
    n = compare("alice")
    assert copied(p) == n, (copied(p), n, p.stdout)
    # the UTF-8 folder name and the special-use roles
    l = imaplib.IMAP4("127.0.0.1", IX.ports["imap"])
    l.login("alice", LOCAL_PW)
    typ, data = l.list('""', '"*"')
    text = b"\n".join(data).decode()
    assert '"&AMk-t&AOk-"' in text or " &AMk-t&AOk-" in text, text
    assert re.search(r'\\Sent\) "/" "?Sent"?$', text, re.M), text
    assert "Sent Items" not in text and "Deleted Items" not in text, text
    l.logout()


@test
def second_import_with_nothing_changed_copies_nothing():
    p = run_import("alice")
    assert copied(p) == 0, p.stdout
    assert "0 flag changes, 0 removed, 0 failed" in p.stdout, p.stdout
    compare("alice")


@test
def changes_there_follow_on_the_next_import():
    c = DC.imap("alice")
    assert c.append("INBOX", "()", None, msg(7001, "new one"))[0] == "OK"
    assert c.append('"Projects/2025/Q1"', "(\\Flagged)", None, msg(7002, "new in Q1"))[0] == "OK"
    c.select("INBOX")
    assert c.uid("STORE", "1", "+FLAGS", "(\\Seen $Label2)")[0] == "OK"
    assert c.uid("STORE", "2", "-FLAGS", "(\\Seen \\Answered $Forwarded)")[0] == "OK"
    assert c.uid("STORE", "3", "+FLAGS", "(\\Deleted)")[0] == "OK"
    assert c.uid("EXPUNGE", "3")[0] == "OK"  # UIDPLUS: only this one, not those imported with \\Deleted
    c.unselect()  # not CLOSE: it would expunge them
    assert c.rename('"Projects/2025"', '"Projects/Done"')[0] == "OK", "rename"
    c.logout()
    p = run_import("alice")
    assert copied(p) == 2, p.stdout
    assert re.search(r"\b2 flag changes, 1 removed, 0 failed", p.stdout), p.stdout
    assert "Projects/2025 was renamed Projects/Done there" in p.stdout, p.stdout
    compare("alice")
    l = imaplib.IMAP4("127.0.0.1", IX.ports["imap"])
    l.login("alice", LOCAL_PW)
    names = folders(l)
    assert "Projects/2025" not in names and "Projects/Done/Q1" in names, names
    l.logout()


@test
def master_user_signs_in_for_a_user():
    c = DC.imap("bob")
    for i in range(3):
        assert c.append("INBOX", "(\\Seen)", None, msg(8000 + i, "bob %d" % i))[0] == "OK"
    c.logout()
    p = run_import("bob", "--admin", "admin", remote="bob", password=MASTERS["admin"])
    assert "Signed in as admin for bob (SASL PLAIN with an authorization identity)" in p.stdout, p.stdout
    assert copied(p) == 3, p.stdout
    compare("bob")


@test
def folder_map_exclude_and_since():
    c = DC.imap("carol")
    for f in ("Work", "Work/Old", "Private", "Private/Diary"):
        assert c.create('"%s"' % f)[0] == "OK"
    assert c.append("Work", "()", '"01-Jan-2010 00:00:00 +0000"', msg(1, "old work"))[0] == "OK"
    assert c.append("Work", "()", '"01-Jan-2024 00:00:00 +0000"', msg(2, "new work"))[0] == "OK"
    assert c.append('"Work/Old"', "()", '"01-Jan-2024 00:00:00 +0000"', msg(3, "older"))[0] == "OK"
    assert c.append('"Private/Diary"', "()", None, msg(4, "secret"))[0] == "OK"
    c.logout()
    p = run_import("carol", "--folder-map", "Work=Archive/Work", "--exclude", "Private", "--since", "2020-01-01")
    assert "Private: excluded" in p.stdout and "Private/Diary: excluded" in p.stdout, p.stdout
    assert copied(p) == 2, p.stdout
    l = imaplib.IMAP4("127.0.0.1", IX.ports["imap"])
    l.login("carol", LOCAL_PW)
    names = folders(l)
    assert "Private" not in names and "Private/Diary" not in names, names
    assert [m[2] for m in contents(l, "Archive/Work")] == [msg(2, "new work").replace(b"\n", b"\r\n")
                                                           .replace(b"\r\r", b"\r")]
    assert len(contents(l, "Archive/Work/Old")) == 1
    l.logout()


def fill_inbox(login, count, first_id):
    """count messages of about 3 KB in login's INBOX there."""
    c = DC.imap(login)
    for i in range(count):
        assert c.append("INBOX", "()", None, msg(first_id + i, "fill %d" % i, body="x" * 3000 + "\r\n"))[0] == "OK"
    c.logout()


@test
def quota_refusals_in_words_and_the_rest_goes_on():
    fill_inbox("dave", 5, 9100)
    IX.cli("user", "quota", "dave", "--bytes", "8000", check=True)
    p = run_import("dave", check=False)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "the mailbox is full" in p.stdout and "of a quota of 8000 bytes" in p.stdout, p.stdout
    assert re.search(r"Quota: 3 messages did not fit in the mailbox of dave", p.stdout), p.stdout
    assert copied(p) == 2, p.stdout
    IX.cli("user", "quota", "dave", "--bytes", "0", check=True)
    p = run_import("dave")
    assert copied(p) == 3, p.stdout  # what did not fit is copied once there is room
    compare("dave")


def inbox_subjects(login):
    l = imaplib.IMAP4("127.0.0.1", IX.ports["imap"])
    l.login(login, LOCAL_PW)
    l.select("INBOX", readonly=True)
    typ, data = l.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    l.logout()
    return [item[1].decode().strip() for item in data if isinstance(item, tuple)]


@test
def quota_warning_waits_until_the_import_ends():
    fill_inbox("erin", 3, 9200)
    IX.cli("user", "quota", "erin", "--bytes", "10000", check=True)
    guid = re.search(r"Mailbox GUID: *(\S+)", IX.cli("user", "show", "erin", check=True).stdout).group(1)
    p = run_import("erin")
    assert copied(p) == 3 and "the mailbox of erin is past its warning level" in p.stdout, p.stdout
    # an import running (its lock held, as the command holds it): no warning, and no second import
    import fcntl
    lock = open(os.path.join(IX.data, "import", guid + ".running"), "a")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        p = run_import("erin", check=False)
        assert p.returncode == 1 and "another import into the mailbox of erin is running" in p.stderr, p.stderr
        IX.cli("maintenance", "run", check=True)
        assert not any("almost full" in s for s in inbox_subjects("erin")), inbox_subjects("erin")
    finally:
        lock.close()
    IX.cli("maintenance", "run", check=True)
    assert wait_for(lambda: any("almost full" in s for s in inbox_subjects("erin")), timeout=10), \
        inbox_subjects("erin")


@test
def maildir_of_dovecot_imports_as_dovecot_serves_it():
    """Dovecot's own Maildir of alice (Maildir++, dovecot-keywords, dovecot-uidlist, subscriptions), copied where
    the service user can read it, imported into frank: equal to what Dovecot serves over IMAP, folder by folder."""
    src = os.path.join(IX.base, "maildir")
    shutil.copytree(os.path.join(DC.base, "mail", "alice"), src)
    run(["chmod", "-R", "a+rX", src], check=True)
    p = IX.cli("import", "maildir", "frank", src)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert re.search(r"^  Sent Items -> Sent: \d+ of \d+ new messages", p.stdout, re.M), p.stdout
    assert re.search(r"^  Projects/2025/Q1 -> Projects/2025/Q1: ", p.stdout, re.M) or \
        re.search(r"^  Projects/Done/Q1 -> Projects/Done/Q1: ", p.stdout, re.M), p.stdout
    n = compare("alice", local="frank", nul=b"\x80")  # the NUL of the corpus's nul_body.eml, as in the file
    assert copied(p) == n, (copied(p), n, p.stdout)
    p = IX.cli("import", "maildir", "frank", src)
    assert p.returncode == 0 and copied(p) == 0, p.stdout
    assert compare("alice", local="frank", nul=b"\x80") == n
    p = IX.cli("import", "maildir", "frank", os.path.join(src, "cur"))
    assert p.returncode == 1 and "is not a Maildir" in p.stderr, p.stderr


MBOXRD = (b"From alice@old.example  Sat Jan  2 03:04:05 1999\n"
          b"From: alice@old.example\nSubject: first\nStatus: RO\nX-Status: AF\nX-Keywords: $Label1 Important\n\n"
          b"body line\n>From the quoted start\n>>From deeper\nFrom: not a separator in the middle? no: quoted\n\n"
          b"From bob@old.example Thu Feb 29 23:59:59 2024\n"
          b"From: bob@old.example\nSubject: second\n\nno flags\n\n"
          b"From bob@old.example Thu Feb 29 23:59:59 2024\n"
          b"From: bob@old.example\nSubject: second\n\nno flags\n\n")


@test
def mbox_files_with_dates_flags_and_quoted_lines():
    import mailbox
    # mboxo as Python's mailbox module writes it (">From " quoting, From_ lines with dates)
    path = os.path.join(IX.base, "python.mbox")
    box = mailbox.mbox(path)
    for i in range(3):
        m = mailbox.mboxMessage(msg(5000 + i, "mbox %d" % i, body="From the start of a line\r\nend\r\n")
                                .replace(b"\r\n", b"\n"))
        m.set_from("sender@old.example", time.gmtime(946684800 + i * 86400))
        m.set_flags("RF" if i == 1 else "")
        box.add(m)
    box.flush()
    box.close()
    rd = os.path.join(IX.base, "rd.mbox")
    with open(rd, "wb") as f:
        f.write(MBOXRD.replace(b"From: not a separator in the middle? no: quoted\n", b""))
    os.chmod(IX.base, 0o755)
    for f in (path, rd):
        os.chmod(f, 0o644)
    p = IX.cli("import", "mbox", "grace", path, "--folder", "Old mail/Python", "--format", "mboxo")
    assert p.returncode == 0 and copied(p) == 3, (p.stdout, p.stderr)
    p = IX.cli("import", "mbox", "grace", rd, "--folder", "Old mail/rd")
    assert p.returncode == 0 and copied(p) == 3, (p.stdout, p.stderr)
    p = IX.cli("import", "mbox", "grace", rd, "--folder", "Old mail/rd")
    assert p.returncode == 0 and copied(p) == 0, p.stdout  # again: nothing new, the duplicate kept once more
    l = imaplib.IMAP4("127.0.0.1", IX.ports["imap"])
    l.login("grace", LOCAL_PW)
    got = contents(l, "Old mail/Python")
    assert len(got) == 3, got
    for i, g in enumerate(got):
        assert b"\r\nFrom the start of a line\r\n" in g[2], g[2]  # mboxo: '>From ' unquoted
        assert b"\n" not in g[2].replace(b"\r\n", b""), g[2]  # CRLF line ends
        assert g[1] == 946684800 + i * 86400, (g[1], i)  # the From_ line's date
    assert got[1][0] == ["\\Flagged", "\\Seen"], got[1][0]
    got = contents(l, "Old mail/rd")
    assert len(got) == 3, got
    assert got[0][2] == (b"From: alice@old.example\r\nSubject: first\r\nStatus: RO\r\nX-Status: AF\r\n"
                         b"X-Keywords: $Label1 Important\r\n\r\nbody line\r\nFrom the quoted start\r\n"
                         b">From deeper\r\n"), got[0][2]
    assert got[0][0] == ["$Label1", "Important", "\\Answered", "\\Flagged", "\\Seen"], got[0][0]
    assert got[0][1] == 915246245, got[0][1]  # Sat Jan  2 03:04:05 1999 UTC
    assert got[1][2] == got[2][2] == b"From: bob@old.example\r\nSubject: second\r\n\r\nno flags\r\n", got[1]
    l.logout()
    p = IX.cli("import", "mbox", "grace", os.path.join(IX.base, "nothing.mbox"))
    assert p.returncode == 1 and "cannot read" in p.stderr, p.stderr


@test
def csv_of_users_with_passwords_hashes_aliases_and_lists():
    hashed = run(["slappasswd", "-h", "{SSHA}", "-s", LOCAL_PW], check=True).stdout.strip()
    path = os.path.join(IX.base, "users.csv")
    with open(path, "w") as f:
        f.write("login,given,surname,password,password_hash,aliases,lists\n"
                "ann1,Ann,One,%s,,ann.one@example.com;a1@example.com,staff;movers\n"
                "ann2,Ann,Two,,%s,,movers\n"
                '"ann3","Ann, the third",Three,%s,,,staff\n'
                "bad login,Bad,Login,%s,,,\n"
                "ann4,Ann,Four,,{ARGON2}$argon2i$v=19$m=4096$c2FsdA,,\n" % (LOCAL_PW, hashed, LOCAL_PW, LOCAL_PW))
    os.chmod(path, 0o644)
    p = IX.cli("import", "csv", path)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "ann2: added with its password hash" in p.stdout, p.stdout
    assert "line 5 (bad login):" in p.stdout and "line 6 (ann4): the password hash must be in a scheme" in p.stdout, \
        p.stdout
    assert "Imported 5 users from the file: 3 added, 0 existed, 4 list memberships, 2 failed" in p.stdout, p.stdout
    for login in CSV_USERS:  # the hash signs ann2 in as the password does the others
        assert wait_for(lambda: imap_login_ok(IX.ports["imap"], login, LOCAL_PW), timeout=20), login
    show = IX.cli("user", "show", "ann1", check=True).stdout
    assert "ann.one@example.com" in show and "a1@example.com" in show, show
    assert re.search(r"Lists:.*movers", show, re.S) and "staff" in show, show
    staff = IX.cli("dl", "show", "staff", check=True).stdout
    assert "ann1" in staff and "ann3" in staff and "ann2" not in staff, staff
    assert "Ann, the third" in IX.cli("user", "show", "ann3", check=True).stdout
    p = IX.cli("import", "csv", path)
    assert "ann1: exists, left as it is" in p.stdout and "already a member" not in p.stdout, p.stdout
    assert "0 added, 3 existed, 0 list memberships, 2 failed" in p.stdout, p.stdout


@test
def all_mailboxes_of_a_csv_two_at_a_time():
    for i, login in enumerate(CSV_USERS):
        fill_inbox(login, 2 + i, 9300 + 10 * i)
    path = os.path.join(IX.base, "mailboxes.csv")
    with open(path, "w") as f:
        f.write("login,remote_user\nann1,ann1\nann2,ann2\nann3,\n")
    pwfile = os.path.join(IX.base, "admin.pw")
    with open(pwfile, "w") as f:
        f.write(MASTERS["admin"] + "\n")
    os.chmod(pwfile, 0o600)  # the administrator's alone: read before the command becomes the service user
    os.chmod(path, 0o644)
    p = IX.cli("import", "imap", "--all", path, "--jobs", "2", "--from", DC.url, "--admin", "admin",
               "--password-file", pwfile, "--ca-file", DC.cert, timeout=300)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "Importing 3 mailboxes from %s, 2 at a time" % DC.url in p.stdout, p.stdout
    for i, login in enumerate(CSV_USERS):
        assert re.search(r"^  %s: Imported %s: 1 folder, %d messages copied" % (login, login, 2 + i), p.stdout,
                         re.M), p.stdout
        assert "Signed in as admin for %s" % login in open(os.path.join(IX.data, "import", login + ".log")).read()
        compare(login)
    assert "Imported 3 of 3 mailboxes" in p.stdout and ", 0 failed" in p.stdout, p.stdout


def fill_maildir(login, count):
    """count messages of 2-12 KB in login's INBOX and Big folder there, written into Dovecot's Maildir++ before it
    first looks (APPENDing thousands would take most of the test's time)."""
    import pwd
    from dovecot import MAIL_USER
    pw = pwd.getpwnam(MAIL_USER)
    root = os.path.join(DC.base, "mail", login)
    for folder in ("", ".Big"):
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(root, folder, sub), exist_ok=True)
    for i in range(count):
        body = ("line %d of a message that is copied exactly once\n" % i) * (40 + (i * 37) % 200)
        data = msg(9500 + i, "bulk %d" % i, body=body)
        name = "%d.M%dP1.kill:2,%s" % (1_600_000_000 + i, i, "S" if i % 3 else "")
        with open(os.path.join(root, ".Big" if i % 2 else "", "cur", name), "wb") as f:
            f.write(data)
    for dirpath, dirs, files in os.walk(root):
        os.chown(dirpath, pw.pw_uid, pw.pw_gid)
        for name in files:
            os.chown(os.path.join(dirpath, name), pw.pw_uid, pw.pw_gid)


def import_popen(login, env=None):
    import subprocess
    from harness import INTERCHANGE
    return subprocess.Popen([INTERCHANGE, "--data", IX.data, "import", "imap", login, "--from", DC.url, "--user",
                             login, "--password", DC.users[login], "--ca-file", DC.cert], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=dict(os.environ, **(env or {})), start_new_session=True)


def journal(login):
    """The journal of login's import ("" when there is none)."""
    try:
        with open(os.path.join(IX.data, "import", login + ".journal")) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def journal_stored(login):
    """Messages the journal of login's import records as stored (M lines) so far."""
    return sum(1 for line in journal(login).splitlines() if line.startswith("M\t"))


def local_count(login):
    c = imaplib.IMAP4("127.0.0.1", IX.ports["imap"], timeout=60)
    c.login(login, LOCAL_PW)
    try:
        return sum(int(re.search(rb"MESSAGES (\d+)", c.status('"%s"' % f, "(MESSAGES)")[1][0]).group(1))
                   for f in ("INBOX", "Big"))
    finally:
        c.logout()


@test
def killed_import_resumes_with_every_message_once():
    import signal
    fill_maildir("kim", KILLED_MSGS)
    # killed where it hurts most: the store committed its second batch, the journal does not say so yet
    p = import_popen("kim", {"INTERCHANGE_TEST_IMPORT_KILL_AFTER": "2"})
    out, err = p.communicate(timeout=300)
    assert p.returncode != 0, (p.returncode, out, err)
    state = journal("kim")
    assert state.count("\nP\t") >= 400 and journal_stored("kim") == 200, state[-2000:]
    assert local_count("kim") == 400  # in the store: the second batch is there, the state does not know it
    # killed for real (SIGKILL to the command and its worker) once the journal shows more progress
    p = import_popen("kim")
    assert wait_for(lambda: journal_stored("kim") >= 200 and journal("kim") != state or p.poll() is not None,
                    timeout=300)
    os.killpg(p.pid, signal.SIGKILL)
    out, err = p.communicate(timeout=60)
    assert p.returncode != 0, "the import ended before it could be killed: %s" % out
    # it began by finding the batch the first run stored but did not record
    assert b"200 messages stored by a run that stopped before recording them: recorded now" in out, out[-2000:]
    run_import("kim")
    assert compare("kim") == KILLED_MSGS  # every message exactly once, with its flags and date
    p = run_import("kim")
    assert copied(p) == 0, p.stdout


def files_record(login):
    """The lines of login's record of messages copied from files."""
    with open(os.path.join(IX.data, "import", login + ".files")) as f:
        return f.read().splitlines()


def local_subjects(login):
    """Sorted (folder, Subject) of every message of login's INBOX and Big folder here."""
    c = imaplib.IMAP4("127.0.0.1", IX.ports["imap"], timeout=60)
    c.login(login, LOCAL_PW)
    out = []
    try:
        for folder in ("INBOX", "Big"):
            typ, data = c.select('"%s"' % folder, readonly=True)
            if typ != "OK" or int(data[0]) == 0:
                continue
            typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            out += [(folder, item[1].decode().strip()) for item in data if isinstance(item, tuple)]
    finally:
        c.logout()
    return sorted(out)


@test
def killed_maildir_import_resumes_with_every_message_once():
    """import maildir killed right after the store committed its second batch (of 200), before its record says so:
    the next run finds that batch in the store, records it and copies the rest; every message is there once."""
    import subprocess
    from harness import INTERCHANGE
    count = 1000
    src = os.path.join(IX.base, "killed-maildir")
    want = []
    for folder in ("", ".Big"):
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(src, folder, sub), exist_ok=True)
    for i in range(count):
        folder = ".Big" if i % 4 == 3 else ""
        body = ("line %d of a file copied exactly once\n" % i) * (20 + (i * 37) % 100)
        with open(os.path.join(src, folder, "cur", "%d.M%dP2.kill:2,S" % (1_600_000_000 + i, i)), "wb") as f:
            f.write(msg(20000 + i, "file %d" % i, body=body))
        want.append(("Big" if folder else "INBOX", "Subject: file %d" % i))
    run(["chmod", "-R", "a+rX", src], check=True)
    p = subprocess.run([INTERCHANGE, "--data", IX.data, "import", "maildir", "kit", src], capture_output=True,
                       env=dict(os.environ, INTERCHANGE_TEST_IMPORT_KILL_AFTER="2"), timeout=300)
    assert p.returncode == -9, (p.returncode, p.stdout[-2000:], p.stderr)
    # the store holds two batches, the record claims the first only, the journal announces the second
    assert len(local_subjects("kit")) == 400
    assert len(files_record("kit")) == 200, files_record("kit")[:3]
    with open(os.path.join(IX.data, "import", "kit.files.journal")) as f:
        assert sum(1 for line in f if line.startswith("P\t")) == 200
    p = IX.cli("import", "maildir", "kit", src, timeout=300)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "200 messages stored by a run that stopped before recording them: recorded now" in p.stdout, p.stdout
    assert copied(p) == count - 400, p.stdout
    assert local_subjects("kit") == sorted(want)  # every message exactly once
    assert len(files_record("kit")) == count
    assert not os.path.exists(os.path.join(IX.data, "import", "kit.files.journal"))
    p = IX.cli("import", "maildir", "kit", src, timeout=300)
    assert p.returncode == 0 and copied(p) == 0, p.stdout
    assert local_subjects("kit") == sorted(want)


@test
def refusals_say_why():
    p = run_import("alice", password="wrong", check=False)
    assert p.returncode == 1 and "the server refused the sign-in" in p.stderr, (p.stdout, p.stderr)
    p = IX.cli("import", "imap", "alice", "--from", DC.url, "--user", "alice", "--password", USERS["alice"])
    assert p.returncode == 1 and "certificate of 127.0.0.1 was refused" in p.stderr, (p.stdout, p.stderr)
    p = IX.cli("import", "imap", "alice", "--from", "pop3://x", "--user", "a", "--password", "b")
    assert p.returncode == 1 and "--from wants imaps://" in p.stderr, p.stderr
    p = IX.cli("import", "imap", "alice", "--from", DC.url, "--user", "a")
    assert p.returncode == 2, p.stderr
    p = run_import("nosuchuser", remote="alice", check=False)
    assert p.returncode == 1, (p.stdout, p.stderr)


if __name__ == "__main__":
    main("import")
