"""test_imap_stress.py - tests/stress/imap_stress.py against a started system for 20 s: 20 clients over the INBOX
and a second folder of 4 shared users, every untagged response checked against the driver's model of the mailbox;
any inconsistency fails (the first few are printed). Its timing figures are printed, never asserted."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "stress"))
import imap_stress  # noqa: E402
from harness import System, imap_login_ok, main, setup, test, wait_for  # noqa: E402

S = None
USERS = 4
PASSWORD = "pass-stress1"
SECS = float(os.environ.get("IX_STRESS_SECS", "20"))


@setup
def start_system():
    global S
    S = System()
    for u in range(1, USERS + 1):
        S.cli("user", "add", "user%04d" % u, "--given", "U%d" % u, "--surname", "Stress", "--password", PASSWORD,
              check=True)
    assert wait_for(lambda: imap_login_ok(S.ports["imap"], "user%04d" % USERS, PASSWORD), 20.0, 0.5), \
        "users not ready"


@test
def stress_has_no_inconsistency():
    r = imap_stress.run("127.0.0.1", S.ports["imap"], USERS, PASSWORD, clients=20, secs=SECS)
    imap_stress.print_report(r, show_issues=8)
    assert r.counts["login"] > 0 and r.counts["store"] > 0 and r.counts["append"] > 0 and r.counts["expunge"] > 0, \
        "the workload did not run: %r" % r.counts
    assert r.n_issues == 0, "%d inconsistencies, first: %s" % (r.n_issues, " | ".join(r.issues[:5]))


if __name__ == "__main__":
    main("test_imap_stress")
