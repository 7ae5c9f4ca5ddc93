#!/usr/bin/env python3
"""bench_import.py - `interchange import imap` and `import maildir` rates (make bench): Debian's Dovecot
(tests/e2e/dovecot.py) holds 10,000 messages (BENCH_IMPORT_MSGS) in 5 folders, 2-20 KB with one in a hundred of
100-500 KB, written into its Maildir before it first looks; one import into a started system over IMAPS, then a
second run with nothing new; then `import maildir` of the same Maildir (copied where the service user reads it) into
another user, twice. Printed: messages/s and MB/s of each first run, its CPU (the command's own), the second run's
time. Nothing asserted.

Environment: IX_BUILD (build folder), BENCH_IMPORT_MSGS (default 10000)."""
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from harness import System, _systems, imap_login_ok, wait_for  # noqa: E402
from dovecot import Dovecot, MAIL_USER  # noqa: E402

MSGS = int(os.environ.get("BENCH_IMPORT_MSGS", "10000"))
FOLDERS = ["", ".Archive", ".Projects", ".Projects.2025", ".Sent Items"]
PASSWORD = "pw-bench"


def message(i, rng):
    size = rng.randint(100_000, 500_000) if i % 100 == 0 else rng.randint(2_000, 20_000)
    line = "a line of text in message %d, of the kind mail is made of\n" % i
    body = (line * (size // len(line) + 1))[:size]
    return ("From: Sender %d <s%d@old.example>\nTo: bench@old.example\nSubject: message %d\n"
            "Message-ID: <bench-%d@old.example>\nDate: Mon, 1 Jun 2020 10:00:00 +0200\n\n%s" % (i % 97, i, i, i, body))


def fill_maildir(root):
    """MSGS message files in Dovecot's Maildir++ of the user, flags in their names, dates as their times."""
    import pwd
    pw = pwd.getpwnam(MAIL_USER)
    rng = random.Random(22)
    total = 0
    for f in FOLDERS:
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(root, f, sub), exist_ok=True)
    for i in range(MSGS):
        folder = FOLDERS[i % len(FOLDERS)]
        flags = "S" if i % 3 else "FS" if i % 7 else ""
        data = message(i, rng).encode()
        path = os.path.join(root, folder, "cur", "%d.M%dP1.bench:2,%s" % (1_500_000_000 + i, i, flags))
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (1_500_000_000 + i * 60, 1_500_000_000 + i * 60))
        total += len(data)
    for dirpath, dirs, files in os.walk(root):
        os.chown(dirpath, pw.pw_uid, pw.pw_gid)
        for name in files:
            os.chown(os.path.join(dirpath, name), pw.pw_uid, pw.pw_gid)
    return total


def run_import(ix, *args):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = ix.cli("import", *args, timeout=1800)
    secs = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if p.returncode != 0:
        raise SystemExit("import failed: %s %s" % (p.stdout[-2000:], p.stderr))
    m = re.search(r"(\d+) messages? copied \(([^)]*)\)", p.stdout)
    return int(m.group(1)), secs, cpu, p.stdout


def report(run, total, cpu_what):
    n, secs, cpu, out = run
    stored = float(re.search(r"copied \(([\d.]+) MB\)", out).group(1)) if "MB)" in out else total / 2**20
    print("  first run            %8.0f messages/s  %d messages in %.1f s" % (n / secs, n, secs))
    print("  first run            %8.1f MB/s  %.1f MB as stored (CRLF line ends)" % (stored / secs, stored))
    print("  importer CPU         %8.1f s  %.0f us per message (%s)" % (cpu, cpu / n * 1e6, cpu_what))


def main():
    try:
        dc = Dovecot({"bench": PASSWORD}, {})
        total = fill_maildir(os.path.join(dc.base, "mail", "bench"))
        c = dc.imap("bench")  # Dovecot indexes the folders here, before the clock starts
        for f in FOLDERS:
            name = "INBOX" if not f else f[1:].replace(".", "/")
            c.select('"%s"' % name, readonly=True)
        c.logout()
        ix = System()
        ix.cli("user", "add", "bench", "--password", "local-pw", "--given", "Bench", "--surname", "Import",
               check=True)
        wait_for(lambda: imap_login_ok(ix.ports["imap"], "bench", "local-pw"), timeout=20)
        print("import imap from Dovecot over IMAPS: %d messages, %.1f MB in %d folders" %
              (MSGS, total / 1e6, len(FOLDERS)))
        remote = ("--from", dc.url, "--user", "bench", "--password", PASSWORD, "--ca-file", dc.cert)
        report(run_import(ix, "imap", "bench", *remote), total, "TLS, parsing, store")
        n2, secs2, cpu2, out2 = run_import(ix, "imap", "bench", *remote)
        print("  second run           %8.2f s  %d messages copied: UIDs compared, nothing fetched" % (secs2, n2))
        src = os.path.join(ix.base, "maildir")
        shutil.copytree(os.path.join(dc.base, "mail", "bench"), src)
        subprocess.run(["chmod", "-R", "a+rX", src], check=True)
        ix.cli("user", "add", "bench2", "--password", "local-pw", "--given", "Bench", "--surname", "Files",
               check=True)
        print("import maildir of the same Maildir (Dovecot's, with its index files) into another user")
        report(run_import(ix, "maildir", "bench2", src), total, "reading, CRLF, SHA-256, store")
        n2, secs2, cpu2, out2 = run_import(ix, "maildir", "bench2", src)
        print("  second run           %8.2f s  %d messages copied: names compared, nothing read" % (secs2, n2))
    finally:
        for s in _systems:
            s.destroy()


if __name__ == "__main__":
    main()
