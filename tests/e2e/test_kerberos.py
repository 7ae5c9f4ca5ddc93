#!/usr/bin/env python3
"""test_kerberos.py - sign-in with Kerberos (SASL GSSAPI through Cyrus's plugin) on IMAP, POP3, SMTP submission and
LDAP, against a real MIT KDC started here on 127.0.0.1 with two realms of its own (EXAMPLE.TEST, ours, and
OTHER.TEST, trusted across realms), its database and configuration in the test's folder: principals and a keytab
made with kadmin.local, interchange kerberos keytab, kinit, then curl, imtest and ldapwhoami sign in; a ticket of
the other realm is refused unless the user holds that principal (an Active Directory userPrincipalName); GSSAPI is
offered only with a keytab; a user homed on a second server signs in with a ticket through the first one's proxy.

Host names: the services' principals are of the system's host name, mail.example.com, which does not resolve here;
curl is told where it is (--resolve), and the clients that cannot be told (imtest, ldapwhoami) name the host
localhost, whose principals the keytab holds too, which the services accept through krb5.conf's
ignore_acceptor_hostname (any principal of the keytab with the right service name)."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from signin_clients import OTHER, REALM, Kdc  # noqa: E402

S = None
KDC = None
HOST = "mail.example.com"
IMTEST = "/usr/lib/cyrus/bin/imtest"


def curl(env, proto, user):
    port = {"imap": S.ports["imap"], "pop3": S.ports["pop3"], "smtp": S.ports["submission"]}[proto]
    cmd = ["curl", "-sS", "--max-time", "20", "--resolve", "%s:%d:127.0.0.1" % (HOST, port), "-u", user + ":",
           "--login-options", "AUTH=GSSAPI"]
    if proto == "smtp":
        msg = os.path.join(S.base, "msg.txt")
        with open(msg, "w") as f:
            f.write("From: alice@example.com\r\nTo: alice@example.com\r\nSubject: kerberos\r\n\r\nhello\r\n")
        cmd += ["smtp://%s:%d" % (HOST, port), "--mail-from", "alice@example.com", "--mail-rcpt",
                "alice@example.com", "-T", msg]
    else:
        cmd.append("%s://%s:%d/" % (proto, HOST, port))
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)


def signs_in(env, proto, user):
    r = curl(env, proto, user)
    if r.returncode not in (0, 67):
        raise AssertionError("curl %s: exit %d: %s" % (proto, r.returncode, r.stderr))
    return r.returncode == 0


def whoami(env):
    # -N: the host as named, localhost (a reverse lookup of 127.0.0.1 may give the machine's own name)
    return subprocess.run(["ldapwhoami", "-N", "-Q", "-Y", "GSSAPI", "-H", "ldap://localhost:%d" % S.ports["ldap"]],
                          env=env, capture_output=True, text=True, timeout=30)


def search_as(env, filt):
    r = subprocess.run(["ldapsearch", "-N", "-Q", "-LLL", "-Y", "GSSAPI", "-H", "ldap://localhost:%d" % S.ports["ldap"],
                        "-b", S.suffix, filt, "dn"], env=env, capture_output=True, text=True, timeout=30)
    return r.stdout


def unmapped_reads_nothing(env, uid):
    """slapd lets the bind of a principal that maps to no user succeed, as uid=PRINCIPAL,cn=gssapi,cn=auth; that
    identity is given nothing (no entry of the address book, which is open to every signed-in user)."""
    r = whoami(env)
    assert r.stdout.strip().lower() == "dn:uid=%s,cn=gssapi,cn=auth" % uid.lower(), (r.stdout, r.stderr)
    assert search_as(env, "(objectClass=*)") == "", search_as(env, "(objectClass=*)")


def imtest(env):
    """imtest signing in with GSSAPI (the host named localhost), then LOGOUT; returns its output."""
    p = subprocess.run([IMTEST, "-m", "GSSAPI", "-p", str(S.ports["imap"]), "localhost"], env=env,
                       input=". LOGOUT\r\n", capture_output=True, text=True, timeout=30)
    return p.stdout + p.stderr


def capability():
    import imaplib
    m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=10)
    try:
        return m.capabilities
    finally:
        m.logout()


@h.setup
def start():
    global S, KDC
    for tool in ("krb5kdc", "kdb5_util", "kadmin.local", "kinit", "ldapwhoami", "curl", IMTEST):
        if shutil.which(tool) is None:
            h.skip("%s is not installed (krb5-kdc, krb5-admin-server, krb5-user, cyrus-clients)" % tool)
    if not os.path.exists("/usr/lib/x86_64-linux-gnu/sasl2/libgssapiv2.so") and \
            not os.path.exists("/usr/lib/sasl2/libgssapiv2.so"):
        h.skip("Cyrus's GSSAPI plugin is not installed (libsasl2-modules-gssapi-mit)")
    folder = tempfile.mkdtemp(prefix="ixk-", dir="/tmp")
    KDC = Kdc(folder, [HOST, "localhost"])
    h._systems.append(KDC)  # stopped with the systems, whatever happens
    # the services read the test's krb5.conf (the realm, ignore_acceptor_hostname)
    h.ENV["KRB5_CONFIG"] = KDC.conf
    S = h.System(extra=["--setting", "auth.max_failures=1000", "--setting", "auth.max_address_failures=1000"])
    S.cli("user", "add", "alice", "--given", "Alice", "--surname", "Liddell", "--password", "pw-alice", "--alias",
          "alice@example.com", check=True)
    S.cli("user", "add", "carol", "--given", "Carol", "--surname", "Danvers", "--password", "pw-carol", check=True)
    assert h.wait_for(lambda: h.imap_login_ok(S.ports["imap"], "alice@example.com", "pw-alice"), timeout=20)
    KDC.kadmin(REALM, "addprinc -pw alice-krb alice")
    KDC.kadmin(REALM, "addprinc -pw nobody-krb nobody")  # a principal of our realm without a user
    KDC.kadmin(OTHER, "addprinc -pw carol-krb carol")
    KDC.kadmin(OTHER, "addprinc -pw alice-other alice")  # alice of the other realm is not our alice
    KDC.keytab(os.path.join(folder, "mail.keytab"), ("imap", "pop", "smtp", "ldap"), (HOST, "localhost"))


@h.test
def no_gssapi_without_a_keytab():
    caps = capability()
    assert "AUTH=GSSAPI" not in caps and "AUTH=PLAIN" in caps, caps
    r = S.cli("kerberos", "show", check=True)
    assert "(none: GSSAPI is not offered)" in r.stdout and "(not set)" in r.stdout, r.stdout


@h.test
def keytab_needs_every_service():
    partial = os.path.join(KDC.dir, "partial.keytab")
    KDC.kadmin(REALM, "ktadd -k %s -norandkey imap/%s" % (partial, HOST))
    r = S.cli("kerberos", "keytab", partial)
    assert r.returncode != 0 and "no pop/%s principal" % HOST in r.stderr, (r.stdout, r.stderr)
    r = S.cli("kerberos", "keytab", os.path.join(KDC.dir, "krb5.conf"))
    assert r.returncode != 0, r.stdout


@h.test
def keytab_installed_and_offered():
    r = S.cli("kerberos", "keytab", os.path.join(KDC.dir, "mail.keytab"), check=True)
    assert "imap/%s@%s" % (HOST, REALM) in r.stdout and "LOGIN@%s" % REALM in r.stdout, r.stdout
    installed = os.path.join(S.data, "kerberos", "keytab")
    assert os.stat(installed).st_mode & 0o777 == 0o640
    r = S.cli("kerberos", "show", check=True)
    assert "Realm:  %s" % REALM in r.stdout and installed in r.stdout, r.stdout
    assert h.wait_for(lambda: "AUTH=GSSAPI" in capability(), timeout=10)
    r = h.run(["curl", "-sS", "--max-time", "10", "pop3://127.0.0.1:%d/" % S.ports["pop3"], "-X", "CAPA"])
    assert "GSSAPI" in r.stdout, r.stdout
    # slapd takes the GSSAPI plugin and its settings at its next start
    S.stop()
    S.start()
    r = h.run(["ldapsearch", "-LLL", "-x", "-H", S.ldap_uri, "-b", "", "-s", "base", "supportedSASLMechanisms"])
    assert "GSSAPI" in r.stdout, r.stdout


@h.test
def tickets_sign_in_on_imap_pop3_smtp():
    env = KDC.kinit("alice@" + REALM, "alice-krb")
    for proto in ("imap", "pop3", "smtp"):
        r = curl(env, proto, "alice@" + REALM)
        assert r.returncode == 0, (proto, r.returncode, r.stderr)
        if proto == "imap":
            assert "INBOX" in r.stdout, r.stdout
    S.wait_log("imapd", "login alice from")


@h.test
def imtest_signs_in():
    env = KDC.kinit("alice@" + REALM, "alice-krb")
    out = imtest(env)
    assert "Authenticated." in out, out


@h.test
def ldapwhoami_binds_as_the_user():
    env = KDC.kinit("alice@" + REALM, "alice-krb")
    r = whoami(env)
    assert r.returncode == 0 and r.stdout.strip().lower() == "dn:" + S.user_dn("alice").lower(), (r.stdout, r.stderr)
    assert search_as(env, "(uid=carol)").count("dn: ") == 1  # and reads the address book as alice


def refused_everywhere(principal, password, ldap_uid):
    """A valid ticket of principal signs in nowhere: IMAP, POP3 and SMTP refuse it (and say why in the log), LDAP
    gives its identity (uid=ldap_uid,cn=gssapi,cn=auth) nothing."""
    env = KDC.kinit(principal, password)
    for proto in ("imap", "pop3", "smtp"):
        assert not signs_in(env, proto, principal), proto
    S.wait_log("imapd", "Kerberos principal %s is no user here" % principal)
    unmapped_reads_nothing(env, ldap_uid)


@h.test
def principal_without_a_user_is_refused():
    refused_everywhere("nobody@" + REALM, "nobody-krb", "nobody")


@h.test
def ticket_of_another_realm_is_refused():
    # a valid ticket for our service (through the cross-realm trust), of a principal that is not ours
    refused_everywhere("alice@" + OTHER, "alice-other", "alice@" + OTHER.lower())


@h.test
def user_principal_name_of_another_realm():
    env = KDC.kinit("carol@" + OTHER, "carol-krb")
    assert not signs_in(env, "imap", "carol@" + OTHER)
    r = S.cli("kerberos", "principal", "carol", "carol@" + OTHER, check=True)
    assert "carol" in r.stdout
    assert "Principal:    carol@" + OTHER in S.cli("user", "show", "carol", check=True).stdout
    r = S.cli("kerberos", "principal", "alice", "carol@" + OTHER)
    assert r.returncode != 0 and "already has" in r.stderr, r.stderr
    assert h.wait_for(lambda: signs_in(env, "imap", "carol@" + OTHER), timeout=10, interval=0.3)
    assert signs_in(env, "pop3", "carol@" + OTHER)
    r = whoami(env)
    assert r.returncode == 0 and r.stdout.strip().lower() == "dn:" + S.user_dn("carol").lower(), (r.stdout, r.stderr)
    S.cli("kerberos", "principal", "carol", "--none", check=True)
    assert h.wait_for(lambda: not signs_in(env, "imap", "carol@" + OTHER), timeout=10, interval=0.3)


@h.test
def ticket_of_a_user_homed_on_another_server():
    # the ticket is checked here (S has the keytab); the proxy then signs in at B as S (SASL EXTERNAL)
    B = h.Joined(S, "127.0.0.1")  # its host name is its address: S's proxy connects to it there
    B.cli("user", "add", "dora", "--given", "Dora", "--surname", "Milaje", "--password", "pw-dora-1", check=True)
    KDC.kadmin(REALM, "addprinc -pw dora-krb dora")
    env = KDC.kinit("dora@" + REALM, "dora-krb")
    mark = B.log_mark("imapd")
    assert h.wait_for(lambda: signs_in(env, "imap", "dora@" + REALM), timeout=30, interval=0.5)
    B.wait_log("imapd", "login for dora from 127.0.0.1 by the server", mark)
    assert signs_in(env, "pop3", "dora@" + REALM)
    B.stop()


if __name__ == "__main__":
    h.main("kerberos")
