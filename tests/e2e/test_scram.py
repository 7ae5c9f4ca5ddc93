#!/usr/bin/env python3
# test_scram.py - SCRAM and app passwords with clients that are not ours: Cyrus SASL's imtest, smtptest and pop3test
# (cyrus-clients) sign in with SCRAM-SHA-256 and SCRAM-SHA-1 on IMAP, POP3 and SMTP submission, in clear on the
# loopback and after STARTTLS (where the -PLUS forms are offered too); Cyrus's client through tests/e2e/sasl_client.c
# binds the channel (tls-exporter, tls-server-end-point), and a wrong binding is refused;
# ldapwhoami signs in to slapd with SCRAM-SHA-256, SCRAM-SHA-1 and SCRAM-SHA-256-PLUS (our plugin, ixscram), where a
# wrong proof counts towards the lockout; wrong passwords and unknown users are refused;
# verifiers made on every password path (user add, user passwd) and dropped from use when the password changes over
# LDAP (user show says so); app passwords added, listed and deleted with the CLI, used by curl, swaks and imtest
# (PLAIN and SCRAM), logged with their names, and refused by LDAP binds.
import base64
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = None
CYRUS = "/usr/lib/cyrus/bin"
SASL_CLIENT = os.path.join(h.ROOT, h.BUILD, "tests", "e2e", "sasl_client")
PW = "Tulip-Meadow-42"
LOCKOUT_FAILURES = 6
LOCKOUT_SECONDS = 5  # long enough for the checks made while locked on a loaded machine


def cyrus(tool, port, mech, user, password, tls=False, commands=None):
    """Runs a Cyrus test client once: returns (signed in, its whole output)."""
    if not os.path.exists(os.path.join(CYRUS, tool)):
        h.skip("%s is missing (Debian package cyrus-clients)" % tool)
    cmd = [os.path.join(CYRUS, tool), "-p", str(port), "-m", mech, "-a", user, "-w", password]
    if tls:
        cmd += ["-t", ""]
    if commands is None:
        commands = ". LOGOUT\n" if tool == "imtest" else "QUIT\n"
    r = h.run(cmd + ["127.0.0.1"], input=commands, timeout=30)
    out = r.stdout + r.stderr
    return "Authenticated." in out, out


def auth_line(out, mech):
    """Whether the client used mech (its AUTH/AUTHENTICATE command names it)."""
    return ("AUTHENTICATE %s " % mech) in out or ("AUTH %s " % mech) in out


def server_first(out):
    """The server-first-message of an imtest transcript (its first "S: + " challenge, decoded)."""
    for line in out.splitlines():
        if line.startswith("S: + "):
            return base64.b64decode(line[5:].strip()).decode()
    return ""


@h.setup
def start():
    global S
    # the services' throttle high: the tests try many wrong passwords on purpose (tests/e2e/test_guessing.py has it)
    # auth.scram 2: the -PLUS forms offered (the default, 1, does not: docs/transport-io.md "SCRAM")
    S = h.System(strict_passwords=True, extra=h.lockout_settings(LOCKOUT_FAILURES, LOCKOUT_SECONDS) +
                 ["--setting", "auth.max_failures=1000", "--setting", "auth.max_account_failures=1000",
                  "--setting", "auth.scram=2"])
    S.cli("user", "add", "amy", "--given", "Amy", "--surname", "Pond", "--password", PW, check=True)


@h.test
def user_show_says_verifiers_exist():
    out = S.cli("user", "show", "amy", check=True).stdout
    assert "SCRAM:        SCRAM-SHA-256 (10000 iterations), SCRAM-SHA-1 (10000 iterations)" in out, out
    # stored in RFC 5803 form, readable by nobody but our services (an LDAP client, even the user, sees nothing)
    r = S.ldapsearch("(uid=amy)", "ixScramVerifier", "ixScramBinding", bind_dn=S.user_dn("amy"), password=PW)
    assert r.returncode == 0 and "ixScram" not in r.stdout, r.stdout


@h.test
def imap_scram_sha_256_in_clear_and_after_starttls():
    for tls in (False, True):
        ok, out = cyrus("imtest", S.ports["imap"], "SCRAM-SHA-256", "amy", PW, tls=tls)
        assert ok and auth_line(out, "SCRAM-SHA-256"), out
        assert ("AUTH=SCRAM-SHA-256-PLUS" in out) == tls, out  # -PLUS only inside TLS
    ok, out = cyrus("imtest", S.ports["imap"], "SCRAM-SHA-256", "amy", "Not-The-Password-1")
    assert not ok and "NO" in out, out


@h.test
def pop3_and_smtp_scram():
    ok, out = cyrus("pop3test", S.ports["pop3"], "SCRAM-SHA-256", "amy", PW)
    assert ok and auth_line(out, "SCRAM-SHA-256"), out
    ok, out = cyrus("pop3test", S.ports["pop3"], "SCRAM-SHA-1", "amy", PW, tls=True)
    assert ok and auth_line(out, "SCRAM-SHA-1"), out
    ok, out = cyrus("smtptest", S.ports["submission"], "SCRAM-SHA-256", "amy", PW, tls=True)
    assert ok and auth_line(out, "SCRAM-SHA-256") and "235 2.7.0" in out, out
    assert "SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-1 PLAIN LOGIN" in out, out
    ok, out = cyrus("smtptest", S.ports["submission"], "SCRAM-SHA-1", "amy", "Not-The-Password-1")
    assert not ok and "535 5.7.8" in out, out
    # an unknown user is refused at the same step as a wrong password
    ok, out = cyrus("smtptest", S.ports["submission"], "SCRAM-SHA-256", "nobody", PW)
    assert not ok and "535 5.7.8" in out, out


def bound(proto, mech, cb, password=PW, *extra):
    """Signs in with Cyrus's client after STARTTLS, binding the channel: (signed in, output)."""
    port = S.ports["submission" if proto == "smtp" else proto]
    r = h.run([SASL_CLIENT, "--proto", proto, "--starttls", "--mech", mech, "--cb", cb, "-p", str(port), "-u", "amy",
               "-w", password] + list(extra) + ["127.0.0.1"], timeout=30)
    return r.returncode == 0 and r.stdout.startswith("OK " + mech), r.stdout + r.stderr


@h.test
def plus_binds_the_channel_on_imap_pop3_and_smtp():
    for proto in ("imap", "pop3", "smtp"):
        for mech, cb in (("SCRAM-SHA-256-PLUS", "tls-exporter"), ("SCRAM-SHA-256-PLUS", "tls-server-end-point"),
                         ("SCRAM-SHA-1-PLUS", "tls-exporter")):
            ok, out = bound(proto, mech, cb)
            assert ok, (proto, mech, cb, out)


@h.test
def a_wrong_channel_binding_is_refused():
    for proto in ("imap", "pop3", "smtp"):
        for cb in ("tls-exporter", "tls-server-end-point"):
            ok, out = bound(proto, "SCRAM-SHA-256-PLUS", cb, PW, "--wrong-cb")
            assert not ok and "FAILED: the server refused" in out, (proto, cb, out)


def neomutt_send(subject):
    """neomutt (Debian 12: GNU SASL 2.2, which picks the strongest mechanism offered) sends a message over
    submission with STARTTLS as amy, choosing its mechanism itself: the completed process."""
    prog = shutil.which("neomutt")
    if prog is None:
        h.skip("neomutt is missing (Debian package neomutt)")
    ca = os.path.join(S.base, "neomutt-ca.pem")
    with open(ca, "w") as f:
        f.write(S.cli("cert", "show", "--pem", check=True).stdout)
    rc = os.path.join(S.base, "neomuttrc")
    with open(rc, "w") as f:
        f.write("\n".join(['set ssl_ca_certificates_file = "%s"' % ca, "set ssl_force_tls = yes",
                           "set ssl_starttls = yes", 'set record = ""', 'set from = "amy.pond@example.com"',
                           'set smtp_url = "smtp://amy@127.0.0.1:%d/"' % S.ports["submission"],
                           'set smtp_pass = "%s"' % PW, "set sleep_time = 0", "set wait_key = no"]) + "\n")
    return h.run([prog, "-n", "-F", rc, "-s", subject, "--", "amy.pond@example.com"], input="hello\n", timeout=30,
                 env=dict(h.ENV, HOME=S.base))


@h.test
def plus_or_scram_can_be_turned_off():
    # the reason the default is 1: neomutt gives GNU SASL no channel binding data, yet GNU SASL picks -PLUS
    r = neomutt_send("neomutt with plus offered")
    assert r.returncode != 0, r.stdout + r.stderr
    try:
        # 1 (the default): for clients that pick -PLUS and cannot bind
        S.set_live("auth.scram", "1", services=("imapd", "smtpd"))
        ok, out = cyrus("imtest", S.ports["imap"], "SCRAM-SHA-256", "amy", PW, tls=True)
        assert ok and "AUTH=SCRAM-SHA-256 " in out and "-PLUS" not in out, out
        ok, out = cyrus("smtptest", S.ports["submission"], "SCRAM-SHA-256", "amy", PW, tls=True)
        assert ok and "-PLUS" not in out, out
        r = neomutt_send("neomutt with scram")  # SCRAM-SHA-256, the strongest it can now pick
        assert r.returncode == 0, r.stdout + r.stderr
        # 0: no SCRAM at all
        S.set_live("auth.scram", "0", services=("imapd", "smtpd"))
        ok, out = cyrus("imtest", S.ports["imap"], "SCRAM-SHA-256", "amy", PW, tls=True)
        assert not ok and not any("AUTH=SCRAM" in line for line in out.splitlines() if line.startswith("S:")), out
        ok, out = bound("imap", "SCRAM-SHA-256-PLUS", "tls-exporter")  # not taken either, offered or not
        assert not ok, out
        ok, out = cyrus("smtptest", S.ports["submission"], "PLAIN", "amy", PW, tls=True)
        assert ok and "SCRAM" not in out, out
    finally:
        S.set_live("auth.scram", "2", services=("imapd", "smtpd"))
    ok, out = bound("imap", "SCRAM-SHA-256-PLUS", "tls-exporter")
    assert ok, out


def whoami(mech, user="amy", password=PW, tls=True):
    """ldapwhoami with a SASL mechanism (libldap's client, Cyrus's SCRAM), inside StartTLS unless tls is False: the
    completed process. libldap takes its TLS and channel binding options from the environment only (LDAPNOINIT
    turns that off; LDAPCONF=/dev/null keeps the machine's file out)."""
    cmd = ["ldapwhoami", "-H", S.ldap_uri, "-Y", mech, "-U", user, "-w", password]
    env = dict(h.ENV)
    if tls:
        cmd.insert(1, "-ZZ")
        env.pop("LDAPNOINIT", None)
        env.update(LDAPTLS_REQCERT="never", LDAPCONF="/dev/null")
        if mech.endswith("-PLUS"):
            env["LDAPSASL_CBINDING"] = "tls-endpoint"
    return h.run(cmd, env=env)


@h.test
def ldap_binds_with_scram():
    dn = "dn:" + S.user_dn("amy").lower()
    for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
        r = whoami(mech)
        assert r.returncode == 0 and r.stdout.strip().lower() == dn, (mech, r.stdout, r.stderr)
    r = whoami("SCRAM-SHA-256", user="amy.pond@example.com")
    assert r.returncode == 0 and r.stdout.strip().lower() == dn, r.stdout + r.stderr
    r = whoami("SCRAM-SHA-256-PLUS")
    assert r.returncode == 0 and r.stdout.strip().lower() == dn, r.stdout + r.stderr
    # nothing in clear over TCP, as on the mail ports (test_addressbook checks the root DSE)
    r = whoami("SCRAM-SHA-256", tls=False)
    assert r.returncode == 48 and "too weak" in r.stderr, r.stderr
    r = whoami("SCRAM-SHA-256", password="Not-The-Password-1")
    assert r.returncode == 49 and "wrong proof" in r.stderr, r.stderr
    r = whoami("SCRAM-SHA-256", user="nobody")
    assert r.returncode == 49, r.stderr


@h.test
def a_wrong_ldap_scram_proof_counts_towards_the_lockout():
    S.cli("user", "add", "clara", "--given", "Clara", "--surname", "Oswald", "--password", PW, check=True)
    for _ in range(LOCKOUT_FAILURES):
        assert whoami("SCRAM-SHA-256", user="clara", password="wrong-guess").returncode == 49
    r = h.run(["ldapwhoami", "-x", "-e", "ppolicy", "-H", S.ldap_uri, "-D", S.user_dn("clara"), "-w", PW])
    assert r.returncode == 49 and "Account locked" in r.stderr, r.stderr
    r = whoami("SCRAM-SHA-256", user="clara")
    assert r.returncode != 0 and "locked" in r.stderr, r.stderr
    assert h.wait_for(lambda: whoami("SCRAM-SHA-256", user="clara").returncode == 0, timeout=LOCKOUT_SECONDS + 60,
                      interval=0.3)


@h.test
def a_password_changed_over_ldap_leaves_scram_until_the_next_cli_change():
    dn = S.user_dn("amy")
    new = "Changed-Over-Ldap-7"
    r = h.run(["ldappasswd", "-x", "-H", S.ldap_uri, "-D", dn, "-w", PW, "-a", PW, "-s", new, dn])
    assert r.returncode == 0, r.stdout + r.stderr
    out = S.cli("user", "show", "amy", check=True).stdout
    assert "SCRAM:        none: the password was changed over LDAP" in out, out
    # neither the old password's verifiers nor anything for the new one: SCRAM fails, PLAIN works
    for pw in (PW, new):
        ok, out = cyrus("imtest", S.ports["imap"], "SCRAM-SHA-256", "amy", pw)
        assert not ok, out
    ok, out = cyrus("imtest", S.ports["imap"], "PLAIN", "amy", new)
    assert ok, out
    for pw in (PW, new):
        assert whoami("SCRAM-SHA-256", password=pw).returncode == 49
    S.cli("user", "passwd", "amy", "--password", PW, check=True)
    assert "SCRAM:        SCRAM-SHA-256" in S.cli("user", "show", "amy", check=True).stdout
    ok, out = cyrus("imtest", S.ports["imap"], "SCRAM-SHA-256", "amy", PW)
    assert ok, out


@h.test
def scram_respects_the_directory_lockout():
    S.cli("user", "add", "rory", "--given", "Rory", "--surname", "Williams", "--password", PW, check=True)
    for _ in range(LOCKOUT_FAILURES):
        r = h.run(["ldapwhoami", "-x", "-H", S.ldap_uri, "-D", S.user_dn("rory"), "-w", "wrong-guess"])
        assert r.returncode == 49, r.stderr
    ok, out = cyrus("imtest", S.ports["imap"], "SCRAM-SHA-256", "rory", PW)
    assert not ok and "[UNAVAILABLE]" in out, out
    assert h.wait_for(lambda: cyrus("imtest", S.ports["imap"], "SCRAM-SHA-256", "rory", PW)[0],
                      timeout=LOCKOUT_SECONDS + 60, interval=0.3)


@h.test
def iteration_count_is_a_setting():
    S.cli("server", "set", "auth.scram_iterations", "4096", check=True)
    S.cli("user", "passwd", "amy", "--password", PW, check=True)
    out = S.cli("user", "show", "amy", check=True).stdout
    assert "SCRAM-SHA-256 (4096 iterations)" in out, out
    ok, out = cyrus("imtest", S.ports["imap"], "SCRAM-SHA-256", "amy", PW)
    assert ok and ",i=4096" in server_first(out), out
    r = S.cli("server", "set", "auth.scram_iterations", "100")
    assert r.returncode != 0, r.stdout
    S.cli("server", "set", "auth.scram_iterations", "10000", check=True)
    S.cli("user", "passwd", "amy", "--password", PW, check=True)


# ---- app passwords ----

APP = {}


@h.test
def app_password_add_list_del():
    r = S.cli("user", "app-password", "add", "amy", "phone", check=True)
    lines = r.stdout.strip().splitlines()
    APP["phone"] = lines[-1]
    assert len(APP["phone"]) == 24 and APP["phone"].isalnum(), r.stdout  # alone on its last line
    APP["laptop"] = S.cli("user", "app-password", "add", "amy", "laptop", check=True).stdout.strip().splitlines()[-1]
    r = S.cli("user", "app-password", "add", "amy", "phone")
    assert r.returncode != 0 and "already has an app password called phone" in r.stderr, r.stderr
    r = S.cli("user", "app-password", "add", "amy", "bad name")
    assert r.returncode != 0, r.stdout
    out = S.cli("user", "app-password", "list", "amy", check=True).stdout
    assert "phone" in out and "laptop" in out and APP["phone"] not in out, out
    assert "App passwords: 2" in S.cli("user", "show", "amy", check=True).stdout
    # stored as verifiers only: the value never appears in the entry or the access log
    r = h.run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", S.ldap_uri, "-D", S.admin_dn, "-w",
               S.admin_password, "-b", S.suffix, "(uid=amy)", "ixAppPassword"])
    assert "ixAppPassword: phone 20" in r.stdout and APP["phone"] not in r.stdout, r.stdout
    r = h.run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", S.ldap_uri, "-D", S.admin_dn, "-w",
               S.admin_password, "-b", "cn=accesslog", "(objectClass=auditModify)", "reqMod"])
    assert APP["phone"] not in r.stdout and APP["laptop"] not in r.stdout


@h.test
def app_passwords_work_for_mail_with_curl_swaks_and_imtest():
    mark = S.log_mark("imapd")
    r = h.run(["curl", "-sS", "--max-time", "20", "--user", "amy:" + APP["phone"],
               "imap://127.0.0.1:%d/INBOX" % S.ports["imap"], "-X", "EXAMINE INBOX"])
    assert r.returncode == 0, r.stderr
    S.wait_log("imapd", "amy signed in with the app password phone", since=mark)
    r = h.run(["curl", "-sS", "--max-time", "20", "--user", "amy:" + APP["laptop"],
               "pop3://127.0.0.1:%d/" % S.ports["pop3"]])
    assert r.returncode == 0, r.stderr
    S.wait_log("pop3d", "amy signed in with the app password laptop")
    if h.run(["sh", "-c", "command -v swaks"]).returncode != 0:
        h.skip("swaks is missing")
    mark = S.log_mark("smtpd")
    r = h.run(["swaks", "--server", "127.0.0.1:%d" % S.ports["submission"], "--auth", "PLAIN", "--auth-user", "amy",
               "--auth-password", APP["phone"], "--quit-after", "AUTH"])
    assert r.returncode == 0 and "235 2.7.0" in r.stdout, r.stdout + r.stderr
    S.wait_log("smtpd", "amy signed in with the app password phone", since=mark)
    # SCRAM with an app password: its verifier shares the user's salt
    mark = S.log_mark("imapd")
    ok, out = cyrus("imtest", S.ports["imap"], "SCRAM-SHA-256", "amy", APP["laptop"], tls=True)
    assert ok, out
    S.wait_log("imapd", "amy signed in with SCRAM-SHA-256 and the app password laptop", since=mark)
    ok, out = cyrus("smtptest", S.ports["submission"], "SCRAM-SHA-1", "amy", APP["phone"])
    assert ok, out
    # the password still works beside them, and a wrong one is still wrong
    ok, out = cyrus("pop3test", S.ports["pop3"], "PLAIN", "amy", PW)
    assert ok, out
    wrong = APP["phone"][:-1] + ("y" if APP["phone"].endswith("x") else "x")  # never the secret itself
    ok, out = cyrus("pop3test", S.ports["pop3"], "PLAIN", "amy", wrong)
    assert not ok, out


@h.test
def app_passwords_never_bind_to_ldap():
    dn = S.user_dn("amy")
    r = h.run(["ldapwhoami", "-x", "-H", S.ldap_uri, "-D", dn, "-w", APP["phone"]])
    assert r.returncode == 49, r.stdout + r.stderr
    r = h.run(["ldapwhoami", "-H", S.ldap_uri, "-Y", "PLAIN", "-U", "amy", "-w", APP["phone"]])
    assert r.returncode != 0, r.stdout
    r = whoami("SCRAM-SHA-256", password=APP["phone"])
    assert r.returncode == 49, r.stderr
    r = h.run(["ldapwhoami", "-x", "-H", S.ldap_uri, "-D", dn, "-w", PW])
    assert r.returncode == 0, r.stderr


@h.test
def a_deleted_app_password_stops_working():
    S.cli("user", "app-password", "del", "amy", "phone", check=True)
    out = S.cli("user", "app-password", "list", "amy", check=True).stdout
    assert "phone" not in out and "laptop" in out, out
    r = S.cli("user", "app-password", "del", "amy", "phone")
    assert r.returncode != 0 and "no app password called phone" in r.stderr, r.stderr
    ok, out = cyrus("imtest", S.ports["imap"], "PLAIN", "amy", APP["phone"])
    assert not ok, out
    ok, out = cyrus("imtest", S.ports["imap"], "SCRAM-SHA-256", "amy", APP["phone"])
    assert not ok, out
    ok, out = cyrus("imtest", S.ports["imap"], "SCRAM-SHA-256", "amy", APP["laptop"])
    assert ok, out


if __name__ == "__main__":
    h.main("scram")
