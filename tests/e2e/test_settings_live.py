"""test_settings_live.py - `interchange server set` reaches running services through the directory replica,
without a restart: a lower login-failure limit throttles IMAP and POP3 logins within seconds."""
import os
import poplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import INTERCHANGE, System, imap_login_said, main, skip, test, wait_for  # noqa: E402

S = None


def system():
    global S
    if S is None:
        S = System()
    return S


def imap_login(s, user, password):
    return imap_login_said(s.ports["imap"], user, password)


@test
def auth_failure_limit_applies_without_restart():
    if not os.path.exists(os.path.join(os.path.dirname(INTERCHANGE), "ix-imapd")):
        skip("ix-imapd is not built")
    s = system()
    s.cli("user", "add", "lim", "--given", "Li", "--surname", "Mit", "--password", "pw-lim", check=True)
    assert wait_for(lambda: imap_login(s, "lim", "pw-lim") == "OK", 10.0)
    pid_before = [x["pid"] for x in __import__("json").loads(s.cli("status", "--json").stdout)["services"]
                  if x["name"] == "imapd"]
    s.set_live("auth.max_failures", 2, services=("imapd", "pop3d"))  # each logs that it has the new settings

    def throttled():
        # two wrong passwords, then even the right one is refused for this client address
        imap_login(s, "lim", "wrong")
        imap_login(s, "lim", "wrong")
        return "Temporarily blocked" in imap_login(s, "lim", "pw-lim")
    assert wait_for(throttled, 15.0, 0.5), "the new limit did not apply"

    def pop3_login(password):
        p = poplib.POP3("127.0.0.1", s.ports["pop3"])
        try:
            p.user("lim")
            return p.pass_(password)
        except poplib.error_proto as e:
            return e.args[0]
        finally:
            p.close()
    # pop3d has the same limit: two wrong passwords, then the right one is refused too
    assert pop3_login("wrong").startswith(b"-ERR [AUTH]")
    assert pop3_login("wrong").startswith(b"-ERR [AUTH]")
    assert pop3_login("pw-lim").startswith(b"-ERR [LOGIN-DELAY]")
    pid_after = [x["pid"] for x in __import__("json").loads(s.cli("status", "--json").stdout)["services"]
                 if x["name"] == "imapd"]
    assert pid_before == pid_after, (pid_before, pid_after)


if __name__ == "__main__":
    main("settings_live")
