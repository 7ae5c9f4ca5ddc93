#!/usr/bin/env python3
# test_passwords.py - passwords and guessing, with the clients users run: LDAP binds locked out for a while after
# too many failures (ldapwhoami), every path storing only a hash (ldapmodify, ldappasswd, the CLI; the entry and
# cn=accesslog), the old password checked by ldappasswd -a, the password policy (length, names) on each path, and
# clear values left by an older version hashed by the attendant's upgrade.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = None
LOCKOUT_FAILURES = 3
LOCKOUT_SECONDS = 2
PW = "Tulip-Meadow-42"


def whoami(dn, password, ppolicy=False):
    cmd = ["ldapwhoami", "-x", "-H", S.ldap_uri, "-D", dn, "-w", password]
    if ppolicy:
        cmd[1:1] = ["-e", "ppolicy"]
    return h.run(cmd)


def admin_modify(ldif):
    return h.run(["ldapmodify", "-x", "-H", S.ldap_uri, "-D", S.admin_dn, "-w", S.admin_password], input=ldif)


def stored_passwords(dn):
    """The userPassword values of dn, as the administrator reads them."""
    r = S.ldapsearch("(objectClass=*)", "userPassword", bind_dn=S.admin_dn, password=S.admin_password, base=dn)
    return [v for e in h.entries(r.stdout) for v in e.get("userpassword", [])]


def accesslog_text():
    r = h.run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", S.ldap_uri, "-D", S.admin_dn, "-w",
               S.admin_password, "-b", "cn=accesslog", "(objectClass=auditModify)", "reqMod"])
    return r.stdout


@h.setup
def start():
    global S
    S = h.System(strict_passwords=True, extra=h.lockout_settings(LOCKOUT_FAILURES, LOCKOUT_SECONDS))
    S.cli("user", "add", "amy", "--given", "Amy", "--surname", "Pond", "--password", PW, check=True)
    S.cli("user", "add", "rory", "--given", "Rory", "--surname", "Williams", "--password", PW, check=True)


@h.test
def ldap_binds_lock_out_for_a_while():
    dn = S.user_dn("rory")
    for _ in range(LOCKOUT_FAILURES):
        assert whoami(dn, "wrong-guess").returncode == 49
    r = whoami(dn, PW, ppolicy=True)
    assert r.returncode == 49 and "Account locked" in r.stderr, r.stderr
    # another account is not affected
    assert whoami(S.user_dn("amy"), PW).returncode == 0
    # the lockout expires by itself (auth.lockout_seconds)
    assert h.wait_for(lambda: whoami(dn, PW).returncode == 0, timeout=LOCKOUT_SECONDS + 60, interval=0.3)


@h.test
def plain_ldap_modify_stores_a_hash():
    dn = S.user_dn("amy")
    clear = "Plain-Modify-Secret-1"
    r = admin_modify("dn: %s\nchangetype: modify\nreplace: userPassword\nuserPassword: %s\n" % (dn, clear))
    assert r.returncode == 0, r.stderr
    vals = stored_passwords(dn)
    assert vals and all(v.startswith("{SSHA}") for v in vals), vals
    assert clear not in accesslog_text()
    assert whoami(dn, clear).returncode == 0


@h.test
def ldappasswd_checks_the_old_password():
    dn = S.user_dn("amy")
    cur = "Plain-Modify-Secret-1"
    r = h.run(["ldappasswd", "-x", "-H", S.ldap_uri, "-D", dn, "-w", cur, "-a", "not-the-old-one", "-s",
               "Changed-By-Self-2", dn])
    assert r.returncode != 0, r.stdout
    assert whoami(dn, cur).returncode == 0
    r = h.run(["ldappasswd", "-x", "-H", S.ldap_uri, "-D", dn, "-w", cur, "-a", cur, "-s", "Changed-By-Self-2", dn])
    assert r.returncode == 0, r.stdout + r.stderr
    assert whoami(dn, "Changed-By-Self-2").returncode == 0
    assert all(v.startswith("{SSHA}") for v in stored_passwords(dn))
    assert "Changed-By-Self-2" not in accesslog_text()


@h.test
def ldap_paths_refuse_a_short_password():
    dn = S.user_dn("amy")
    cur = "Changed-By-Self-2"
    r = h.run(["ldappasswd", "-x", "-H", S.ldap_uri, "-D", dn, "-w", cur, "-a", cur, "-s", "abc", dn])
    assert r.returncode != 0 and "quality" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
    r = h.run(["ldapmodify", "-x", "-H", S.ldap_uri, "-D", dn, "-w", cur],
              input="dn: %s\nchangetype: modify\ndelete: userPassword\nuserPassword: %s\n-\nadd: userPassword\n"
                    "userPassword: abc\n" % (dn, cur))
    assert r.returncode != 0 and "quality" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
    assert whoami(dn, cur).returncode == 0


@h.test
def cli_applies_the_policy():
    r = S.cli("user", "add", "clara", "--given", "Clara", "--surname", "Oswald", "--password", "x")
    assert r.returncode != 0 and "at least 8 characters" in r.stderr, r.stderr
    r = S.cli("user", "add", "clara", "--given", "Clara", "--surname", "Oswald", "--password", "Oswald-2024!")
    assert r.returncode != 0 and "name" in r.stderr, r.stderr
    S.cli("user", "add", "clara", "--given", "Clara", "--surname", "Oswald", "--password", PW, check=True)
    r = S.cli("user", "passwd", "clara", "--password", "clara1234")
    assert r.returncode != 0 and "name" in r.stderr, r.stderr
    S.cli("server", "set", "password.min_length", "16", check=True)
    r = S.cli("user", "passwd", "clara", "--password", "Fifteen-chars-1")
    assert r.returncode != 0 and "at least 16" in r.stderr, r.stderr
    # slapd has the new length too (the policy entry follows the setting)
    r = h.run(["ldappasswd", "-x", "-H", S.ldap_uri, "-D", S.user_dn("clara"), "-w", PW, "-a", PW, "-s",
               "Fifteen-chars-1", S.user_dn("clara")])
    assert r.returncode != 0 and "quality" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
    S.cli("user", "passwd", "clara", "--password", "Sixteen-chars-12", check=True)
    assert whoami(S.user_dn("clara"), "Sixteen-chars-12").returncode == 0


@h.test
def upgrade_hashes_clear_values():
    # clear values as an older version left them, written offline with slapmodify (no overlay runs,
    # docs/slapd-facts.md "slapadd bypasses overlays"), in the entry and in an access log record
    dn = S.user_dn("rory")
    S.stop()
    confdir = os.path.join(S.data, "directory", "slapd.d")
    owner = os.stat(confdir)
    for db, ldif in (("-n1", "dn: %s\nchangetype: modify\nreplace: userPassword\nuserPassword: Old-Clear-Value-9\n"
                             % dn),):
        r = h.run(["/usr/sbin/slapmodify", "-q", db, "-F", confdir], input=ldif)
        assert r.returncode == 0, r.stdout + r.stderr
    log_dn = "reqStart=20200101000000.000000Z,cn=accesslog"
    r = h.run(["/usr/sbin/slapadd", "-q", "-b", "cn=accesslog", "-F", confdir],
              input="dn: %s\nobjectClass: auditModify\nreqStart: 20200101000000.000000Z\nreqType: modify\n"
                    "reqSession: 1\nreqAuthzID: %s\nreqDN: %s\nreqResult: 0\n"
                    "reqMod: userPassword:= Old-Clear-Value-9\n" % (log_dn, S.admin_dn, dn))
    assert r.returncode == 0, r.stdout + r.stderr
    for root, dirs, files in os.walk(os.path.join(S.data, "directory")):
        for name in dirs + files:
            os.chown(os.path.join(root, name), owner.st_uid, owner.st_gid)
    S.start()
    assert h.wait_for(lambda: "Old-Clear-Value-9" not in accesslog_text() and
                      all(v.startswith("{SSHA}") for v in stored_passwords(dn)), timeout=20)
    assert "userPassword:= {SSHA}" in accesslog_text()
    assert whoami(dn, "Old-Clear-Value-9").returncode == 0


if __name__ == "__main__":
    h.main("passwords")
