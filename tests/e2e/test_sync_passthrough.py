"""test_sync_passthrough.py - pass-through sign-in (sync add --auth passthrough) through a source that goes away: a
second slapd plays the organisation's directory; its users sign in here over IMAP, SMTP AUTH, LDAP, POP3 (curl),
ManageSieve (sieve-connect) and HTTP Basic (curl on CardDAV) with their password there. With the source stopped, a
user who signed in within sync.passthrough_cache_seconds still can (the relay's hashed cache), a wrong password
cannot, a user never seen cannot, also after a crash and a start of the attendant (the cache file, 0600, never the
password); the metrics and `sync show` count each kind of answer and the users cached; with the cache lifetime 0
nobody can. Back up, a password changed at the source replaces the old one at once, cache or not, and the source's
password policy (ppolicy) refuses an account locked or a password expired there, dropping its cached hash. A second
pass-through source (the same suffix, so a bind sent to the wrong source finds no such DN there): each user is
checked against its own source."""
import os
import re
import shutil
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import System, imap_login_ok, main, run, setup, skip, test, wait_for  # noqa: E402
from harness import smtp_auth_ok as harness_smtp_auth_ok  # noqa: E402
from apiclient import server_ca  # noqa: E402
from ldap_source import Source, synced_user  # noqa: E402

S = None
CA = None  # the server's certificate (cert show --pem), for the clients that verify it
SRC = None
SRC2 = None
PEOPLE = "ou=People," + Source.SUFFIX


def person(uid, password, policy=None):
    """A user of the source; policy: the name of its password policy there (pwdPolicySubentry)."""
    ruled = "pwdPolicySubentry: cn=%s,%s\n" % (policy, Source.SUFFIX) if policy else ""
    return ("dn: uid=%s,%s\nobjectClass: inetOrgPerson\nuid: %s\ngivenName: %s\nsn: Person\ncn: %s Person\n"
            "mail: %s@example.com\nuserPassword: %s\n%s\n" % (uid, PEOPLE, uid, uid, uid, uid, password, ruled))


def policy(name, *lines):
    """A password policy of the source (ppolicy), outside the synced users."""
    return ("dn: cn=%s,%s\nobjectClass: organizationalRole\nobjectClass: pwdPolicy\ncn: %s\n"
            "pwdAttribute: userPassword\n%s\n" % (name, Source.SUFFIX, name, "".join(l + "\n" for l in lines)))


def smtp_auth_ok(login, password):
    return harness_smtp_auth_ok(S.ports["submission"], login, password)


def imap_ok(login, password):
    return imap_login_ok(S.ports["imap"], login, password)


def ldap_bind_ok(login, password):
    return run(["ldapwhoami", "-x", "-H", S.ldap_uri, "-D", S.user_dn(login), "-w", password]).returncode == 0


def pop3_ok(login, password):
    """curl's POP3 client lists login's mailbox (plain POP3 on loopback, as a local client may)."""
    return run(["curl", "-sS", "--max-time", "15", "-u", "%s:%s" % (login, password),
                "pop3://127.0.0.1:%d/" % S.ports["pop3"]], timeout=30).returncode == 0


def sieve_ok(login, password):
    """Debian's sieve-connect lists login's Sieve scripts over STARTTLS, the server's certificate verified."""
    r, w = os.pipe()
    os.write(w, (password + "\n").encode())
    os.close(w)
    try:
        return subprocess.run(["sieve-connect", "-s", "127.0.0.1", "-p", str(S.ports["sieve"]), "--tlshostname",
                               "mail." + S.domain, "--tlscafile", CA, "-u", login, "--passwordfd", str(r),
                               "--noclearauth", "--list"], pass_fds=(r,), capture_output=True, text=True,
                              timeout=60).returncode == 0
    finally:
        os.close(r)


def basic_ok(login, password):
    """curl reads login's CardDAV address book over HTTPS with HTTP Basic (207), or is refused (401)."""
    host, port = "mail." + S.domain, S.ports["https"]
    p = run(["curl", "-sS", "--max-time", "15", "--cacert", CA, "--resolve", "%s:%d:127.0.0.1" % (host, port),
             "-u", "%s:%s" % (login, password), "-X", "PROPFIND", "-H", "Depth: 0", "-o", "/dev/null", "-w",
             "%{http_code}", "https://%s:%d/dav/addressbooks/%s/directory/" % (host, port, login)], timeout=30)
    assert p.returncode == 0 and p.stdout in ("207", "401"), (p.returncode, p.stdout, p.stderr)
    return p.stdout == "207"


def other_clients_ok(login, password):
    """POP3, ManageSieve and HTTP Basic: each one's answer to login with password (True: signed in)."""
    if shutil.which("sieve-connect") is None:
        skip("sieve-connect is not installed (make deps)")
    return {"pop3": pop3_ok(login, password), "sieve": sieve_ok(login, password), "basic": basic_ok(login, password)}


def signins(source):
    """The pass-through figures of source in the metrics: result (accepted, refused, cached, unreachable) -> count,
    and "entries" -> users cached."""
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % S.ports["metrics"], timeout=10).read().decode()
    found = {m.group(1): int(m.group(2)) for m in re.finditer(
        r'interchange_sync_passthrough_signins_total\{source="%s",result="(\w+)"\} (\d+)' % source, text)}
    m = re.search(r'interchange_sync_passthrough_cache_entries\{source="%s"\} (\d+)' % source, text)
    if m:
        found["entries"] = int(m.group(1))
    return found


def cache_file(source):
    return os.path.join(S.data, "sync", source + ".passthrough")


@setup
def a_source_with_passthrough():
    global S, SRC, CA
    S = System()
    CA = server_ca(S)
    SRC = Source(modules=["ppolicy"], overlays=["ppolicy"])  # the source's password policy, for lena and eddy
    SRC.add("dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: corp\no: Corp\n\n"
            "dn: %s\nobjectClass: organizationalUnit\nou: People\n\n" % (Source.SUFFIX, PEOPLE))
    SRC.add(policy("locking", "pwdLockout: TRUE") + policy("ageing", "pwdMaxAge: 86400"))
    SRC.add(person("paula", "paula-at-corp") + person("quinn", "quinn-at-corp") + person("rosa", "rosa-at-corp") +
            person("lena", "lena-at-corp", "locking") + person("eddy", "eddy-at-corp", "ageing"))
    p = S.cli("sync", "add", "corp", "--uri", SRC.uri, "--bind-dn", Source.ADMIN, "--password", Source.PASSWORD,
              "--base", PEOPLE, "--auth", "passthrough")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert wait_for(lambda: all(synced_user(S, u) for u in ("paula", "quinn", "rosa", "lena", "eddy")), timeout=20)


@test
def users_sign_in_with_the_sources_password():
    assert wait_for(lambda: imap_ok("paula", "paula-at-corp"), timeout=15)
    assert smtp_auth_ok("paula", "paula-at-corp") and not smtp_auth_ok("paula", "wrong-one")
    assert not imap_ok("paula", "wrong-one")  # a wrong guess leaves the password the source took in the cache
    assert imap_ok("quinn", "quinn-at-corp") and ldap_bind_ok("quinn", "quinn-at-corp")
    # the hashes are made after the answers (PBKDF2 takes a while): both are kept, the wrong guess did not undo it
    for u in ("paula", "quinn"):
        S.wait_log("attendant", "sync corp: uid=%s,%s can sign in from the cache" % (u, PEOPLE))
    assert "userpassword" not in synced_user(S, "paula")
    # the relay's socket, where slapd's remoteauth binds, is the service user's alone
    sock = os.path.join(S.data, "sync", "corp.auth")
    assert oct(os.stat(sock).st_mode & 0o777) == "0o600", oct(os.stat(sock).st_mode)
    # each answer counted (a client may try a password with more than one SASL mechanism, each a bind here)
    got = signins("corp")
    assert got["accepted"] >= 4 and got["refused"] >= 2 and got["entries"] == 2, got
    assert got["cached"] == 0 and got["unreachable"] == 0, got
    show = S.cli("sync", "show", "corp", check=True).stdout
    assert re.search(r"Pass-through +%d taken by the source, %d refused by it; while it could not be reached 0 "
                     r"signed in by the cache, 0 refused; 2 users cached" % (got["accepted"], got["refused"]),
                     show), show


@test
def pop3_managesieve_and_http_basic_sign_in_with_the_sources_password():
    assert other_clients_ok("paula", "paula-at-corp") == {"pop3": True, "sieve": True, "basic": True}
    assert other_clients_ok("paula", "wrong-one") == {"pop3": False, "sieve": False, "basic": False}


@test
def with_the_source_down_the_cache_signs_in_whom_the_source_took():
    SRC.halt()
    # paula and quinn signed in above: their passwords are in the cache (hashed), rosa's never was
    assert imap_ok("paula", "paula-at-corp") and smtp_auth_ok("paula", "paula-at-corp")
    assert ldap_bind_ok("quinn", "quinn-at-corp")
    assert not imap_ok("paula", "wrong-two") and not smtp_auth_ok("quinn", "wrong-two")
    assert not imap_ok("rosa", "rosa-at-corp") and not smtp_auth_ok("rosa", "rosa-at-corp")
    S.wait_log("attendant", "paula,%s signed in by the cache" % PEOPLE)
    got = signins("corp")
    assert got["cached"] >= 3 and got["unreachable"] >= 4 and got["entries"] == 2, got
    assert "while it could not be reached %d signed in by the cache, %d refused" % (got["cached"], got[
        "unreachable"]) in S.cli("sync", "show", "corp").stdout
    # the password itself is nowhere on disk: the cache file holds hashes
    for root, _, files in os.walk(S.data):
        for f in files:
            path = os.path.join(root, f)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as fh:
                    assert b"paula-at-corp" not in fh.read(), path


@test
def with_the_source_down_pop3_managesieve_and_http_basic_sign_in_from_the_cache():
    assert other_clients_ok("paula", "paula-at-corp") == {"pop3": True, "sieve": True, "basic": True}
    assert other_clients_ok("quinn", "wrong-two") == {"pop3": False, "sieve": False, "basic": False}
    assert other_clients_ok("rosa", "rosa-at-corp") == {"pop3": False, "sieve": False, "basic": False}


@test
def the_cache_survives_a_crash_of_the_attendant():
    """The source still down: the attendant killed and started again reads the hashes from the cache file."""
    path = cache_file("corp")
    with open(path) as f:
        lines = f.read().splitlines()
    assert oct(os.stat(path).st_mode & 0o777) == "0o600", oct(os.stat(path).st_mode)
    assert sorted(l.split(" ", 3)[3] for l in lines[1:]) == ["uid=%s,%s" % (u, PEOPLE) for u in ("paula", "quinn")], \
        lines
    assert not any("-at-corp" in l for l in lines), lines
    S.kill_attendant()
    S.start()
    assert wait_for(lambda: imap_ok("paula", "paula-at-corp"), timeout=30), S.log("attendant")[-1500:]
    assert smtp_auth_ok("quinn", "quinn-at-corp") and ldap_bind_ok("paula", "paula-at-corp")
    assert not imap_ok("paula", "wrong-three") and not smtp_auth_ok("quinn", "wrong-three")
    assert not imap_ok("rosa", "rosa-at-corp")
    got = signins("corp")  # counted since this start; the users cached came from the file
    assert got["cached"] >= 3 and got["unreachable"] >= 3 and got["entries"] == 2, got


@test
def a_cache_lifetime_of_zero_keeps_nothing():
    mark = S.log_mark("attendant")
    S.cli("server", "set", "sync.passthrough_cache_seconds", "0", check=True)
    S.wait_log("attendant", "sync corp: pass-through sign-in keeps what the source took for 0 s", mark)
    assert not imap_ok("paula", "paula-at-corp") and not smtp_auth_ok("quinn", "quinn-at-corp")
    assert wait_for(lambda: not os.path.exists(cache_file("corp")), timeout=5)  # the file goes with the hashes
    mark = S.log_mark("attendant")
    S.cli("server", "set", "sync.passthrough_cache_seconds", "900", check=True)
    S.wait_log("attendant", "keeps what the source took for 900 s", mark)


@test
def back_up_a_password_changed_at_the_source_replaces_the_old_at_once():
    SRC.start()
    assert wait_for(lambda: imap_ok("paula", "paula-at-corp"), timeout=15)  # cached again
    SRC.modify("dn: uid=paula,%s\nchangetype: modify\nreplace: userPassword\nuserPassword: paula-new\n" % PEOPLE)
    assert not imap_ok("paula", "paula-at-corp")
    # the source's no to the password kept dropped its hash: with the source down, still no
    SRC.halt()
    assert not imap_ok("paula", "paula-at-corp") and not smtp_auth_ok("paula", "paula-at-corp")
    SRC.start()
    assert wait_for(lambda: imap_ok("paula", "paula-new"), timeout=15) and smtp_auth_ok("paula", "paula-new")
    assert not smtp_auth_ok("paula", "paula-at-corp")


@test
def the_sources_password_policy_refuses_a_locked_or_expired_account_and_drops_its_hash():
    """ppolicy at the source answers a locked account and an expired password as it answers a wrong password
    (invalid credentials), so the relay treats them alike: refused, and the hash of that password dropped."""
    for u in ("lena", "eddy"):
        assert imap_ok(u, "%s-at-corp" % u), u
        S.wait_log("attendant", "sync corp: uid=%s,%s can sign in from the cache" % (u, PEOPLE))
    SRC.modify("dn: uid=lena,%s\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"
               % PEOPLE)
    # eddy's password, set at its creation, becomes older than the policy's new maximum age
    SRC.modify("dn: cn=ageing,%s\nchangetype: modify\nreplace: pwdMaxAge\npwdMaxAge: 1\n" % Source.SUFFIX)
    assert wait_for(lambda: run(["ldapwhoami", "-x", "-H", SRC.uri, "-D", "uid=eddy," + PEOPLE, "-w",
                                 "eddy-at-corp"]).returncode == 49, timeout=10)  # the source's own answer
    for u in ("lena", "eddy"):
        assert not imap_ok(u, "%s-at-corp" % u) and not smtp_auth_ok(u, "%s-at-corp" % u), u
        assert not ldap_bind_ok(u, "%s-at-corp" % u), u
    # the cached success of the same password is gone: the source down, the cache does not sign them in
    SRC.halt()
    for u in ("lena", "eddy"):
        assert not imap_ok(u, "%s-at-corp" % u) and not smtp_auth_ok(u, "%s-at-corp" % u), u
    assert imap_ok("paula", "paula-new")  # the others' hashes stay
    SRC.start()


@test
def two_sources_each_user_checked_against_its_own():
    global SRC2
    SRC2 = Source()  # the same suffix and base as the first: only the source decides which DN exists
    SRC2.add("dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: corp\no: Corp\n\n"
             "dn: %s\nobjectClass: organizationalUnit\nou: People\n\n" % (Source.SUFFIX, PEOPLE))
    SRC2.add(person("tess", "tess-at-two"))
    p = S.cli("sync", "add", "two", "--uri", SRC2.uri, "--bind-dn", Source.ADMIN, "--password", Source.PASSWORD,
              "--base", PEOPLE, "--auth", "passthrough")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert wait_for(lambda: synced_user(S, "tess") is not None, timeout=20)
    assert wait_for(lambda: imap_ok("tess", "tess-at-two"), timeout=15), S.log("attendant")[-1500:]
    assert smtp_auth_ok("tess", "tess-at-two") and ldap_bind_ok("tess", "tess-at-two")
    assert imap_ok("paula", "paula-new") and smtp_auth_ok("quinn", "quinn-at-corp")
    # a password at the first source is no password for the second's user, and the other way round
    SRC.add(person("tess", "tess-at-one"))
    SRC2.add(person("paula", "paula-at-two"))
    assert not imap_ok("tess", "tess-at-one") and not imap_ok("paula", "paula-at-two")
    assert not smtp_auth_ok("tess", "tess-at-one") and not smtp_auth_ok("paula", "paula-at-two")
    # each source's relay has its own cache: the second down, its user signs in from it, the first's as ever
    S.wait_log("attendant", "sync two: uid=tess,%s can sign in from the cache" % PEOPLE)
    SRC2.halt()
    assert imap_ok("tess", "tess-at-two") and imap_ok("paula", "paula-new")
    S.wait_log("attendant", "sync two: the source cannot be reached")
    SRC2.start()
    # a source deleted: its relay stops, its users no longer sign in through it, the other's still do
    assert os.path.exists(cache_file("two"))
    assert S.cli("sync", "del", "two").returncode == 0
    assert wait_for(lambda: not os.path.exists(os.path.join(S.data, "sync", "two.auth")), timeout=15)
    assert not os.path.exists(cache_file("two"))
    assert not imap_ok("tess", "tess-at-two") and imap_ok("paula", "paula-new")



@test
def a_source_off_this_machine_is_asked_over_verified_tls():
    """127.0.0.2 counts as the network: the relay binds only after StartTLS with the source's certificate checked
    against the --ca copy, so a sign-in that works went that way."""
    src = Source(tls=True)
    try:
        src.add("dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: corp\no: Corp\n\n"
                "dn: %s\nobjectClass: organizationalUnit\nou: People\n\n" % (Source.SUFFIX, PEOPLE))
        src.add(person("uma", "uma-at-tls"))
        p = S.cli("sync", "add", "far", "--uri", src.uri, "--ca", src.ca, "--bind-dn", Source.ADMIN, "--password",
                  Source.PASSWORD, "--base", PEOPLE, "--auth", "passthrough")
        assert p.returncode == 0, (p.stdout, p.stderr)
        assert wait_for(lambda: synced_user(S, "uma") is not None, timeout=30), S.log("attendant")[-1500:]
        assert wait_for(lambda: imap_ok("uma", "uma-at-tls"), timeout=15), S.log("attendant")[-1500:]
        assert smtp_auth_ok("uma", "uma-at-tls") and not imap_ok("uma", "wrong-tls")
        assert S.cli("sync", "del", "far").returncode == 0
    finally:
        src.stop()


if __name__ == "__main__":
    main("test_sync_passthrough")
