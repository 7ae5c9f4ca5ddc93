#!/usr/bin/env python3
# test_sieve.py - Sieve at final delivery (issue 21): a user's active script (put with `interchange user sieve`)
# files mail into a folder, forwards a copy (refused to the outside while forwarding.external is deny, queued when
# allow), answers with a vacation reply once per sender (through the queue, from the null sender, never to
# automatic mail), and a failing script keeps the message and says why in the log and in `track`; a global script
# (`interchange sieve global`, in the directory) files mail for a user's script that includes it. Mail is sent
# with swaks (Debian) and read back over IMAP.
import imaplib
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = None
PW = "secret-pw"
ALICE = "alice.smith@example.com"

SCRIPT = """require ["fileinto", "copy", "vacation", "imap4flags"];
if header :contains "subject" "report" { fileinto :flags "\\\\Flagged" "Reports"; stop; }
if header :contains "subject" "forward" { redirect :copy "bob.jones@example.com"; redirect :copy "boss@outside.test"; }
if header :contains "subject" "holiday" {
    vacation :days 7 :subject "Away" "I am away until Monday.";
}
"""


def swaks(sender, subject, extra_headers=()):
    cmd = ["swaks", "--server", "127.0.0.1", "--port", str(S.ports["smtp"]), "--from", sender, "--to", ALICE,
           "--header", "Subject: %s" % subject, "--header", "Message-ID: <%s@test>" % subject.replace(" ", "-"),
           "--body", "hello"]
    for x in extra_headers:
        cmd += ["--add-header", x]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "250 2.0.0" in p.stdout.splitlines()[-4:][0] or "250" in p.stdout, p.stdout


def fetch(login, folder, subject, item="FLAGS"):
    """item (FLAGS, BODY.PEEK[]) of the last message with subject in login's folder, as text; None when none."""
    m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=10)
    try:
        m.login(login, PW)
        typ, _ = m.select(folder, readonly=True)
        typ, data = m.search(None, "SUBJECT", '"%s"' % subject) if typ == "OK" else (typ, None)
        ids = data[0].split() if typ == "OK" else []
        if not ids:
            return None
        got = m.fetch(ids[-1], "(%s)" % item)[1][0]
        return (got[1] if isinstance(got, tuple) else got).decode("utf-8", "replace")
    finally:
        m.logout()


def folder_has(login, folder, subject):
    return fetch(login, folder, subject)


def with_file(text, fn):
    """fn(path) with text in a temporary file."""
    d = tempfile.mkdtemp(prefix="ixs-")
    try:
        path = os.path.join(d, "s.sieve")
        with open(path, "w") as f:
            f.write(text)
        return fn(path)
    finally:
        shutil.rmtree(d)


def put_script(text, name="rules"):
    return with_file(text, lambda path: S.cli("user", "sieve", "alice", "--put", name, path, "--activate", name))


def tracked(addr, event):
    """The lines of `track addr` for event (the queue may have moved on: an outside address has no MX here)."""
    return [line for line in S.cli("track", addr).stdout.splitlines() if event in line.split()]


@h.setup
def setup():
    global S
    if shutil.which("swaks") is None:
        h.skip("swaks is not installed (make deps)")
    S = h.System(extra=["--setting", "smtp.inbound_checks=0"])
    S.cli("user", "add", "alice", "--given", "Alice", "--surname", "Smith", "--password", PW, check=True)
    S.cli("user", "add", "bob", "--given", "Bob", "--surname", "Jones", "--password", PW, check=True)
    assert h.wait_for(lambda: h.imap_login_ok(S.ports["imap"], "alice", PW), timeout=15)
    assert h.wait_for(lambda: h.imap_login_ok(S.ports["imap"], "bob", PW), timeout=15)
    p = put_script(SCRIPT)
    assert p.returncode == 0, p.stderr


@h.test
def script_is_listed_shown_and_checked():
    p = S.cli("user", "sieve", "alice")
    assert p.returncode == 0 and p.stdout.strip() == "rules (active)", p.stdout + p.stderr
    p = S.cli("user", "sieve", "alice", "--show", "rules")
    assert p.stdout == SCRIPT, p.stdout
    p = put_script("if true { fileinto \"x\"; }", name="bad")
    assert p.returncode != 0 and "line 1: fileinto needs require \"fileinto\"" in p.stderr, p.stderr
    p = S.cli("user", "sieve", "alice", "--delete", "rules")
    assert p.returncode != 0 and "active" in p.stderr, p.stderr


@h.test
def rule_files_into_a_folder():
    swaks("friend@outside.org", "monthly report")
    flags = h.wait_for(lambda: folder_has("alice", "Reports", "monthly report"), timeout=10)
    assert flags and "\\Flagged" in flags, flags
    assert folder_has("alice", "INBOX", "monthly report") is None


@h.test
def forward_copy_inside_and_refused_outside_by_policy():
    swaks("friend@outside.org", "please forward")
    assert h.wait_for(lambda: folder_has("alice", "INBOX", "please forward"), timeout=10)
    assert h.wait_for(lambda: folder_has("bob", "INBOX", "please forward"), timeout=15)
    p = S.cli("track", ALICE)
    assert "redirect to boss@outside.test refused: forwarding.external is deny" in p.stdout, p.stdout
    assert not tracked("boss@outside.test", "redirected")
    S.set_live("forwarding.external", "allow")
    swaks("friend@outside.org", "forward again")
    assert h.wait_for(lambda: tracked("boss@outside.test", "redirected"), timeout=10), S.cli("track", ALICE).stdout
    S.set_live("forwarding.external", "deny")


@h.test
def vacation_once_per_sender_never_to_lists_or_null_senders():
    swaks("carol@outside.org", "holiday plans")
    assert h.wait_for(lambda: tracked("carol@outside.org", "vacation"), timeout=10), S.cli("track", ALICE).stdout
    swaks("carol@outside.org", "holiday plans again")
    assert h.wait_for(lambda: folder_has("alice", "INBOX", "holiday plans again"), timeout=10)
    assert len(tracked("carol@outside.org", "vacation")) == 1, S.cli("track", "carol@outside.org").stdout
    swaks("dave@outside.org", "holiday list mail", extra_headers=["List-Id: <list.outside.org>"])
    swaks("erin@outside.org", "holiday auto", extra_headers=["Auto-Submitted: auto-replied"])
    swaks("<>", "holiday bounce")
    for s in ("holiday list mail", "holiday auto", "holiday bounce"):
        assert h.wait_for(lambda: folder_has("alice", "INBOX", s), timeout=10), s
    for a in ("dave@outside.org", "erin@outside.org"):
        assert not tracked(a, "vacation"), S.cli("track", a).stdout


@h.test
def failing_script_keeps_and_says_why():
    p = put_script('require "include";\ninclude "missing";\n', name="broken")
    assert p.returncode == 0, p.stderr
    mark = S.log_mark("smtpd")
    swaks("friend@outside.org", "kept anyway")
    assert h.wait_for(lambda: folder_has("alice", "INBOX", "kept anyway"), timeout=10)
    S.wait_log("smtpd", "include: no personal script \"missing\"", mark)
    p = S.cli("track", ALICE)
    assert "script broken failed: line 2: include: no personal script \"missing\"; kept in INBOX" in p.stdout, \
        p.stdout
    assert S.cli("user", "sieve", "alice", "--activate", "rules").returncode == 0


GLOBAL = """require ["fileinto"];
if header :contains "subject" "[SPAM]" { fileinto "Quarantine"; stop; }
"""


@h.test
def global_script_files_as_it_says():
    p = with_file('if true { fileinto "x"; }', lambda path: S.cli("sieve", "global", "put", "bad", path))
    assert p.returncode != 0 and "line 1: fileinto needs require \"fileinto\"" in p.stderr, p.stderr
    assert S.cli("sieve", "global", "list").stdout == "No global scripts.\n"
    mark = S.log_mark("smtpd")
    p = with_file(GLOBAL, lambda path: S.cli("sieve", "global", "put", "spam-filter", path))
    assert p.returncode == 0, p.stderr
    # delivery reads global scripts from its copy of the directory: it says when it has this one
    S.wait_log("smtpd", "global Sieve script changed: cn=spam-filter,", mark)
    assert S.cli("sieve", "global", "list").stdout == "spam-filter\n"
    assert S.cli("sieve", "global", "show", "spam-filter").stdout == GLOBAL
    p = S.cli("sieve", "global", "show", "absent")
    assert p.returncode != 0 and "there is no global script absent" in p.stderr, p.stderr
    # the missing :optional global is skipped; the one there files as it says
    p = put_script('require "include";\ninclude :global :optional "absent";\ninclude :global "spam-filter";\n',
                   name="with-global")
    assert p.returncode == 0, p.stderr
    mark = S.log_mark("smtpd")
    swaks("friend@outside.org", "[SPAM] offer")
    assert h.wait_for(lambda: folder_has("alice", "Quarantine", "[SPAM] offer"), timeout=10), \
        S.cli("track", ALICE).stdout
    swaks("friend@outside.org", "plain letter")
    assert h.wait_for(lambda: folder_has("alice", "INBOX", "plain letter"), timeout=10)
    assert folder_has("alice", "Quarantine", "plain letter") is None
    assert "script with-global failed" not in S.log("smtpd", mark)
    assert S.cli("sieve", "global", "del", "spam-filter").returncode == 0
    assert S.cli("sieve", "global", "list").stdout == "No global scripts.\n"
    assert S.cli("user", "sieve", "alice", "--activate", "rules").returncode == 0


def submit(login, to, subject):
    """login sends subject to to over submission (authenticated, STARTTLS) with swaks."""
    p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(S.ports["submission"]), "--tls",
                        "--auth", "PLAIN", "--auth-user", login, "--auth-password", PW, "--from",
                        "%s@example.com" % ("bob.jones" if login == "bob" else login), "--to", to,
                        "--header", "Subject: %s" % subject, "--body", "hello"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


@h.test
def out_of_office_inside_and_outside():
    assert "Out of office: off" in S.cli("user", "show", "alice").stdout
    p = S.cli("user", "oof", "alice", "--on", "--internal", "Back on Monday, ask Bob.", "--external",
              "I am out of the office.", "--external-audience", "all")
    assert p.returncode == 0, p.stderr
    assert "Out of office: on (external-audience=all from=- until=-)" in S.cli("user", "show", "alice").stdout
    # the user's own rules still run beside it
    assert S.cli("user", "sieve", "alice").stdout.count("(active)") == 1
    # outside: answered once with the outside text
    swaks("olga@outside.org", "question one")
    swaks("olga@outside.org", "question two")
    assert h.wait_for(lambda: folder_has("alice", "INBOX", "question two"), timeout=10)
    assert len(tracked("olga@outside.org", "vacation")) == 1, S.cli("track", "olga@outside.org").stdout
    # inside: bob gets the inside text in his INBOX
    submit("bob", ALICE, "lunch?")
    reply = h.wait_for(lambda: fetch("bob", "INBOX", "Out of office", "BODY.PEEK[]"), timeout=15)
    assert reply and "Back on Monday, ask Bob." in reply and "Auto-Submitted: auto-replied" in reply, reply
    assert "I am out of the office." not in reply
    # audience none: nobody outside is answered
    assert S.cli("user", "oof", "alice", "--on", "--internal", "inside only", "--external-audience",
                 "none").returncode == 0
    swaks("pete@outside.org", "question three")
    assert h.wait_for(lambda: folder_has("alice", "INBOX", "question three"), timeout=10)
    assert not tracked("pete@outside.org", "vacation")
    # audience known without a contact in the directory: the outside text is kept, and no outsider is answered
    p = S.cli("user", "oof", "alice", "--on", "--internal", "inside", "--external", "Back soon.",
              "--external-audience", "known")
    assert p.returncode == 0, p.stderr
    swaks("nora@nowhere.test", "question known-none")
    assert h.wait_for(lambda: folder_has("alice", "INBOX", "question known-none"), timeout=10)
    assert not tracked("nora@nowhere.test", "vacation")
    p = S.cli("user", "sieve", "alice", "--show", "out-of-office")
    assert "Back soon." in p.stdout, p.stdout
    # audience known: only the organisation's contacts outside are answered
    assert S.cli("contact", "add", "Karl Known", "--email", "karl@partner.test").returncode == 0
    p = S.cli("user", "oof", "alice", "--on", "--internal", "inside", "--external", "Back soon, Karl.",
              "--external-audience", "known")
    assert p.returncode == 0, p.stderr
    assert "Out of office: on (external-audience=known" in S.cli("user", "show", "alice").stdout
    swaks("karl@partner.test", "question four")
    swaks("ulla@unknown.test", "question five")
    assert h.wait_for(lambda: folder_has("alice", "INBOX", "question five"), timeout=10)
    assert h.wait_for(lambda: tracked("karl@partner.test", "vacation"), timeout=10), S.cli("track", ALICE).stdout
    assert not tracked("ulla@unknown.test", "vacation")
    assert S.cli("user", "oof", "alice", "--off").returncode == 0
    assert "Out of office: off" in S.cli("user", "show", "alice").stdout


if __name__ == "__main__":
    h.main("sieve")
