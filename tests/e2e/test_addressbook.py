"""test_addressbook.py - the directory as address-book clients use it, driven with the real OpenLDAP clients against
a started system: Outlook-style browsing as a user (server-side sort on the attribute name alone, VLV by offset and
by value, paged results), and several clients (ldapsearch, python3-ldap3) browsing sorted at once, none refused
busy between two pages; the SASL mechanisms the root DSE advertises and that they work; SASL PLAIN binds by login
or e-mail address, also on a directory an older version made; certificates that verify: `cert show --pem`, which any
local user may run, as the CA file of ldapwhoami over StartTLS and over LDAPS (implicit TLS, `--ldaps-port`, shown by
`status` and `server show`) and of openssl s_client on the IMAPS port; an
application account (python3-ldap3, as Nextcloud logs its users in) that finds a user by login or address and binds
as that user, sees no hidden recipient and no password, and cannot bind once deleted."""
import concurrent.futures
import json
import os
import shutil
import ssl
import subprocess
import sys

try:
    import ldap3
except ImportError:
    # python3-ldap3 (make deps) lives in Debian's own module folder, which a python3 of its own (pyenv) lacks
    sys.path.append("/usr/lib/python3/dist-packages")
    import ldap3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ad_ranges import children, tlv  # noqa: E402
from harness import ENV, INTERCHANGE, JPEG, System, entries, main, run, setup, skip, test, wait_for  # noqa: E402

S = None
PEOPLE = [("amy", "amy", "Zulu"), ("bob", "Bob", "Mid"), ("zed", "Zed", "Alpha"), ("carla", "Carla", "beta"),
          ("dan", "dan", "Omega")]
SORTABLE = ["cn", "displayName", "givenName", "sn", "mail", "title", "department", "company",
            "physicalDeliveryOfficeName", "telephoneNumber"]


def as_user(*args):
    """ldapsearch as amy over the loopback listener; args: options (-E ...), then filter and attributes."""
    return run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", S.ldap_uri, "-b", "ou=Recipients," + S.suffix,
                "-D", S.user_dn("amy"), "-w", "pw-amy"] + list(args))


BUSY = "Other sort requests already in progress"


def sorted_as_user(*args):
    """as_user for a sorted search (-E sss=...), asked again while slapd refuses its first page 51 "Other sort
    requests already in progress" (too many sorts open at once), as a client does; a browse refused after its first
    page fails (docs/slapd-facts.md "A browse refused as busy between two pages")."""
    def answered():
        r = as_user(*args)
        if r.returncode == 51 and BUSY in r.stderr:
            assert not names(r.stdout), "refused busy after %d entries: %s" % (len(names(r.stdout)), args)
            return None
        return r
    r = wait_for(answered, timeout=30, interval=0.3)
    assert r is not None, "slapd answered busy for 30 s to %s" % (args,)
    return r


def names(out):
    return [e["displayname"][0] for e in entries(out) if "displayname" in e]


@setup
def system_with_people():
    global S
    S = System()
    for login, given, surname in PEOPLE:
        S.cli("user", "add", login, "--given", given, "--surname", surname, "--password", "pw-" + login,
              check=True)


@test
def sort_on_every_address_book_attribute_by_name_alone():
    for attr in SORTABLE:
        r = sorted_as_user("-E", "!sss=" + attr, "(objectClass=inetOrgPerson)", "displayName")
        assert r.returncode == 0, (attr, r.stdout, r.stderr)
        assert "sortResult: (0) Success" in r.stdout, (attr, r.stdout)
        assert len(names(r.stdout)) == len(PEOPLE), (attr, r.stdout)


@test
def sort_orders_case_insensitively_both_ways():
    want = sorted((g + " " + s for _, g, s in PEOPLE), key=str.lower)
    r = sorted_as_user("-E", "!sss=displayName", "(objectClass=inetOrgPerson)", "displayName")
    assert names(r.stdout) == want, (names(r.stdout), r.stderr)
    r = sorted_as_user("-E", "!sss=-cn", "(objectClass=inetOrgPerson)", "displayName")
    assert names(r.stdout) == want[::-1], (names(r.stdout), r.stderr)
    by_sn = [g + " " + s for _, g, s in sorted(PEOPLE, key=lambda p: p[2].lower())]
    r = sorted_as_user("-E", "!sss=sn", "(objectClass=inetOrgPerson)", "displayName")
    assert names(r.stdout) == by_sn, (names(r.stdout), r.stderr)


def vlv_windows(first, *more):
    """The windows ldapsearch shows for the VLV request first, then for each of more (typed at its prompt, with the
    server's context): a list of (displayNames, vlvResult line). ldapsearch's VLV mode is interactive: at the end
    of its input it sends its last request once more and exits with an error, so its exit status says nothing."""
    def answered():  # (asked again while slapd refuses the first window busy, as sorted_as_user says)
        r = run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", S.ldap_uri, "-b", "ou=Recipients," + S.suffix,
                 "-D", S.user_dn("amy"), "-w", "pw-amy", "-E", "sss=displayName", "-E", "vlv=" + first,
                 "(objectClass=inetOrgPerson)", "displayName"], input="".join(m + "\n" for m in more))
        if BUSY in r.stderr:
            assert not names(r.stdout), "window refused busy after the first: %s" % r.stdout
            return None
        return r
    r = wait_for(answered, timeout=30, interval=0.3)
    assert r is not None, "slapd answered busy for 30 s to the VLV windows %s %s" % (first, more)
    parts = r.stdout.split("Press [before/after(/offset/count|:value)] Enter for the next window.")
    windows = []
    for part in parts[:1 + len(more)]:
        result = [line for line in part.splitlines() if line.startswith("# vlvResult")]
        windows.append((names(part), result[0] if result else r.stderr))
    return windows


@test
def vlv_by_offset_and_by_value():
    want = sorted((g + " " + s for _, g, s in PEOPLE), key=str.lower)
    n = len(PEOPLE)
    # Outlook's first screenful: nothing before the target, up to 19 after, the target at offset 1; then, with the
    # server's context, one before and one after the third entry; then by value, as a client jumps when the user
    # types "c": the first name at or after it, and the next one
    w = vlv_windows("0/19/1/0", "1/1/3/%d" % n, "0/1:c")
    assert w[0][0] == want and w[0][1].startswith("# vlvResultpos=1 count=%d " % n), w[0]
    assert w[0][1].endswith("(0) Success"), w[0]
    assert w[1][0] == want[1:4] and w[1][1].endswith("(0) Success"), w[1]
    at_c = [x for x in want if x.lower() >= "c"]
    assert w[2][0] == at_c[:2] and w[2][1].endswith("(0) Success"), w[2]


@test
def paged_results_as_a_user():
    r = as_user("-E", "pr=2/noprompt", "(objectClass=inetOrgPerson)", "displayName")
    assert r.returncode == 0, r.stderr
    assert sorted(names(r.stdout)) == sorted(g + " " + s for _, g, s in PEOPLE), r.stdout
    assert r.stdout.count("# pagedresults: cookie=") >= 3, r.stdout
    r = as_user("-E", "pr=50/noprompt", "(objectClass=inetOrgPerson)", "displayName")
    assert r.returncode == 0 and len(names(r.stdout)) == len(PEOPLE), (r.stdout, r.stderr)


@test
def sorted_and_paged_together():
    want = sorted((g + " " + s for _, g, s in PEOPLE), key=str.lower)
    r = sorted_as_user("-E", "sss=displayName", "-E", "pr=2/noprompt", "(objectClass=inetOrgPerson)", "displayName")
    assert r.returncode == 0, r.stderr
    assert names(r.stdout) == want, (names(r.stdout), r.stdout)


def root_dse_mechanisms(*how, env=None):
    """supportedSASLMechanisms of the root DSE, sorted, as a client connected and bound by how sees it."""
    r = subprocess.run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no"] + list(how) +
                       ["-b", "", "-s", "base", "supportedSASLMechanisms"], capture_output=True, text=True,
                       env=env or ENV, timeout=60)
    assert r.returncode == 0, (how, r.stdout, r.stderr)
    return sorted(entries(r.stdout)[0].get("supportedsaslmechanisms", []))


CA_FILE = None


def ca_file():
    """A file of `interchange cert show --pem` output, as a local user other than the service user makes it."""
    global CA_FILE
    if CA_FILE is None:
        as_other = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if os.geteuid() == 0 else []
        r = run(as_other + [INTERCHANGE, "--data", S.data, "cert", "show", "--pem"])
        assert r.returncode == 0 and r.stdout.startswith("-----BEGIN CERTIFICATE-----"), (r.stdout, r.stderr)
        CA_FILE = os.path.join(S.base, "ca.pem")
        with open(CA_FILE, "w") as f:
            f.write(r.stdout)
    return CA_FILE


def tls_env():
    # LDAPNOINIT would also ignore LDAPTLS_*: no configuration files instead; the certificate is verified (host
    # name or address included) against the one `cert show --pem` prints
    env = {k: v for k, v in ENV.items() if k != "LDAPNOINIT"}
    env.update(LDAPCONF="/dev/null", LDAPRC="/dev/null", LDAPTLS_REQCERT="demand", LDAPTLS_CACERT=ca_file())
    return env


def ldapi_uri():
    return "ldapi://" + os.path.join(S.data, "run", "ldapi").replace("/", "%2F")


def plain_whoami(name, password, *how):
    """ldapwhoami with SASL PLAIN as name over StartTLS on the loopback listener (or over how)."""
    where = list(how) or ["-ZZ", "-H", S.ldap_uri]
    return subprocess.run(["ldapwhoami", "-Y", "PLAIN", "-U", name, "-w", password] + where, capture_output=True,
                          text=True, env=tls_env(), timeout=60)


def bound_as(r, login):
    return r.returncode == 0 and r.stdout.strip().lower() == "dn:" + S.user_dn(login).lower()


@test
def root_dse_advertises_exactly_the_mechanisms_that_work():
    assert root_dse_mechanisms("-x", "-H", S.ldap_uri) == [], "nothing in clear"
    assert root_dse_mechanisms("-Y", "EXTERNAL", "-H", ldapi_uri()) == ["EXTERNAL", "PLAIN", "SCRAM-SHA-1",
                                                                         "SCRAM-SHA-256"]
    # SCRAM's -PLUS forms inside TLS only (tests/e2e/test_scram.py signs in with each)
    assert root_dse_mechanisms("-x", "-ZZ", "-H", S.ldap_uri, env=tls_env()) == [
        "PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"]
    # each of them works: EXTERNAL over the socket, PLAIN inside TLS and over the socket
    r = run(["ldapwhoami", "-Y", "EXTERNAL", "-H", ldapi_uri()])
    assert r.returncode == 0 and "dn:" + S.admin_dn in r.stdout, (r.stdout, r.stderr)
    r = plain_whoami("amy", "pw-amy", "-H", ldapi_uri())
    assert bound_as(r, "amy"), (r.stdout, r.stderr)
    # and PLAIN is refused in clear
    r = plain_whoami("amy", "pw-amy", "-H", S.ldap_uri)
    assert r.returncode != 0 and "no mechanism available" in r.stderr.lower(), (r.stdout, r.stderr)


@test
def plain_binds_by_login_or_address():
    S.cli("user", "add", "jsmith", "--given", "John", "--surname", "Smith", "--password", "pw-jsmith",
          "--alias", "js@example.com", check=True)
    S.cli("user", "add", "ghost", "--given", "Gho", "--surname", "St", "--password", "pw-ghost", "--hidden",
          check=True)
    for name in ("jsmith", "JSmith", "john.smith@example.com", "JS@example.com"):
        r = plain_whoami(name, "pw-jsmith")
        assert bound_as(r, "jsmith"), (name, r.stdout, r.stderr)
    # a recipient hidden from the address book still logs in by name, and stays hidden from anonymous searches
    r = plain_whoami("ghost", "pw-ghost")
    assert bound_as(r, "ghost"), (r.stdout, r.stderr)
    r = run(["ldapsearch", "-LLL", "-x", "-H", S.ldap_uri, "-b", S.suffix, "(|(uid=ghost)(uid=jsmith))", "uid"])
    assert r.returncode in (0, 32) and entries(r.stdout) == [], r.stdout
    # wrong password, unknown name, empty password: the same refusal
    for name, password in (("jsmith", "wrong"), ("nobody", "pw-jsmith"), ("nobody@example.com", "pw-jsmith"),
                           ("jsm*", "pw-jsmith")):
        r = plain_whoami(name, password)
        assert r.returncode == 49 and "wrong name or password" in r.stderr, (name, r.stdout, r.stderr)


@test
def certificate_shown_to_every_local_user():
    r = S.cli("cert", "show", check=True)
    lines = dict(line.split(":", 1) for line in r.stdout.splitlines())
    assert lines["subject"].strip() == "CN=mail.example.com", r.stdout
    names = [n.strip() for n in lines["names"].split(",")]
    for want in ("DNS:mail.example.com", "DNS:localhost", "IP Address:127.0.0.1"):
        assert want in names, (want, names)
    fingerprint = run(["openssl", "x509", "-in", ca_file(), "-noout", "-fingerprint", "-sha256"], check=True)
    assert fingerprint.stdout.strip().split("=")[1].replace(":", "").lower() == lines["SHA-256"].strip(), r.stdout
    with open(os.path.join(S.data, "tls", "cert.pem")) as f:
        assert f.read() == open(ca_file()).read()
    # the key stays closed: a local user cannot read it, nor list the data folder
    r = run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "sh", "-c",
             "cat %s/tls/key.pem; ls %s" % (S.data, S.data)])
    assert "PRIVATE KEY" not in r.stdout and "Permission denied" in r.stderr, (r.stdout, r.stderr)


@test
def starttls_verifies_by_name_and_by_address():
    for host in ("localhost", "127.0.0.1"):
        r = subprocess.run(["ldapwhoami", "-ZZ", "-x", "-H", "ldap://%s:%d" % (host, S.ports["ldap"]), "-D",
                            S.user_dn("amy"), "-w", "pw-amy"], capture_output=True, text=True, env=tls_env(),
                           timeout=60)
        assert r.returncode == 0 and r.stdout.strip().lower() == "dn:" + S.user_dn("amy").lower(), \
            (host, r.stdout, r.stderr)
    # trusting another certificate, the same client refuses the server, so the checks above are real
    other = os.path.join(S.base, "other.pem")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
         os.path.join(S.base, "other.key"), "-out", other, "-subj", "/CN=localhost", "-days", "1"], check=True)
    r = subprocess.run(["ldapwhoami", "-ZZ", "-x", "-H", S.ldap_uri], capture_output=True, text=True,
                       env=dict(tls_env(), LDAPTLS_CACERT=other), timeout=60)
    assert r.returncode != 0 and "ldap_start_tls: Connect error" in r.stderr, r.stderr


@test
def ldaps_verifies_by_name_and_by_address():
    port = S.ports["ldaps"]
    st = json.loads(S.cli("status", "--json", check=True).stdout)
    assert st["ports"]["ldaps"] == port, st["ports"]
    assert "ldaps %d" % port in S.cli("status", check=True).stdout
    assert "ldaps %d" % port in S.cli("server", "show", check=True).stdout
    for host in ("localhost", "127.0.0.1"):
        r = subprocess.run(["ldapwhoami", "-x", "-H", "ldaps://%s:%d" % (host, port), "-D", S.user_dn("amy"), "-w",
                            "pw-amy"], capture_output=True, text=True, env=tls_env(), timeout=60)
        assert r.returncode == 0 and r.stdout.strip().lower() == "dn:" + S.user_dn("amy").lower(), \
            (host, r.stdout, r.stderr)
    r = subprocess.run(["ldapsearch", "-x", "-LLL", "-H", "ldaps://localhost:%d" % port, "-D", S.user_dn("amy"), "-w",
                        "pw-amy", "-b", S.user_dn("amy"), "-s", "base", "cn"], capture_output=True, text=True,
                       env=tls_env(), timeout=60)
    assert r.returncode == 0 and r.stdout.lower().startswith("dn: " + S.user_dn("amy").lower()), (r.stdout, r.stderr)
    # trusting another certificate, the same client refuses the server, so the checks above are real
    other = os.path.join(S.base, "other-ldaps.pem")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
         os.path.join(S.base, "other-ldaps.key"), "-out", other, "-subj", "/CN=localhost", "-days", "1"], check=True)
    r = subprocess.run(["ldapwhoami", "-x", "-H", "ldaps://localhost:%d" % port], capture_output=True, text=True,
                       env=dict(tls_env(), LDAPTLS_CACERT=other), timeout=60)
    assert r.returncode != 0 and "Can't contact LDAP server" in r.stderr, r.stderr


def s_client(ip):
    return subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % S.ports["imaps"], "-CAfile",
                           ca_file(), "-verify_ip", ip, "-verify_return_error", "-brief"], input="",
                          capture_output=True, text=True, timeout=60)


@test
def imaps_verifies_by_address():
    r = s_client("127.0.0.1")
    assert r.returncode == 0 and "Verification: OK" in r.stderr, (r.stdout, r.stderr)
    r = s_client("192.0.2.99")
    assert r.returncode != 0 and "IP address mismatch" in r.stderr, (r.stdout, r.stderr)


def app_connection(dn, password):
    """An ldap3 connection bound as dn over StartTLS on the loopback listener, the certificate verified against
    `cert show --pem` as an application configured from docs/directory.md would; .bound False and .result with
    the code when the bind is refused."""
    tls = ldap3.Tls(ca_certs_file=ca_file(), validate=ssl.CERT_REQUIRED)
    server = ldap3.Server("localhost", port=S.ports["ldap"], tls=tls, get_info=ldap3.NONE)
    c = ldap3.Connection(server, user=dn, password=password, raise_exceptions=False)
    c.open()
    assert c.start_tls(), c.result
    c.bind()
    return c


def app_add(name, *args):
    """`interchange app add NAME`: (the DN it prints, the password it prints or None)."""
    r = S.cli("app", "add", name, *args, check=True)
    dn = [line for line in r.stdout.splitlines() if line.lower().startswith("cn=" + name.lower() + ",")]
    pw = [line.split(": ", 1)[1] for line in r.stdout.splitlines() if line.startswith("password (shown this once)")]
    assert len(dn) == 1, r.stdout
    return dn[0], pw[0] if pw else None


# what docs/directory.md "Application accounts" tells an application to use
APP_USER_FILTER = "(&(objectClass=ixMailUser)(|(uid=%s)(mail=%s)))"
APP_GROUP_FILTER = "(objectClass=ixDistributionList)"


@test
def application_finds_a_user_and_binds_as_it():
    S.cli("user", "add", "nina", "--given", "Nina", "--surname", "Cloud", "--password", "pw-nina-1", check=True)
    S.cli("user", "add", "hank", "--given", "Hank", "--surname", "Hidden", "--password", "pw-hank-1", "--hidden",
          check=True)
    S.cli("dl", "add", "cloud-team", "--member", "nina", check=True)
    dn, pw = app_add("nextcloud")
    assert pw is not None and len(pw) >= 20, pw
    base = "ou=Recipients," + S.suffix
    app = app_connection(dn, pw)
    assert app.bound, app.result
    wait_for(lambda: app.search(base, APP_USER_FILTER % ("nina", "nina"), attributes=["mail"]) and
             app.entries and app.entries[0].mail.value, timeout=20)
    for login in ("nina", "nina.cloud@example.com"):
        assert app.search(base, APP_USER_FILTER % (login, login),
                          attributes=["uid", "mail", "displayName", "memberOf", "entryUUID", "userPassword"])
        assert len(app.entries) == 1, (login, app.entries)
        e = app.entries[0]
        assert e.entry_dn.lower() == S.user_dn("nina").lower() and e.uid.value == "nina", e
        assert e.displayName.value == "Nina Cloud" and e.mail.value == "nina.cloud@example.com", e
        assert len(e.entryUUID.value) == 36, e
        assert [m.lower() for m in e.memberOf.values] == ["cn=cloud-team," + base.lower()], e
        assert not e.entry_attributes_as_dict.get("userPassword"), e
        # then, as Nextcloud does, the user's own password checked by a bind as the entry found
        user = app_connection(e.entry_dn, "pw-nina-1")
        assert user.bound, user.result
        user.unbind()
        assert not app_connection(e.entry_dn, "wrong-password").bound
    assert app.search(base, APP_GROUP_FILTER, attributes=["cn", "member"])
    groups = {g.cn.value: [m.lower() for m in g.member.values] for g in app.entries}
    assert groups.get("cloud-team") == [S.user_dn("nina").lower()], groups
    # no hidden recipient, no password, no configuration, no other application, no write
    assert app.search(base, "(|(uid=hank)(uid=nina))", attributes=["uid"]) and \
        [e.uid.value for e in app.entries] == ["nina"], app.entries
    app.search(S.suffix, "(userPassword=*)", attributes=["userPassword"])
    assert app.entries == [], app.entries
    app.search(S.suffix, "(objectClass=*)", attributes=["*"])
    outside = [e.entry_dn for e in app.entries if not e.entry_dn.lower().endswith(base.lower())]
    assert outside == [], outside
    assert app.entries and all("ixMailboxGuid" not in e.entry_attributes_as_dict for e in app.entries), app.entries
    assert not app.modify(S.user_dn("nina"), {"displayName": [(ldap3.MODIFY_REPLACE, ["Owned"])]})
    assert app.result["result"] == 50, app.result
    app.unbind()
    # and the same user, seen by another user, still shows everything users see (the rules for users unchanged)
    r = as_user("(uid=nina)", "ixMailboxGuid")
    assert "ixMailboxGuid:" in r.stdout, r.stdout


@test
def application_accounts_listed_rekeyed_and_deleted():
    dn, pw = app_add("grafana", "--password", "Grafana-secret-42")
    assert pw is None
    r = S.cli("app", "list", check=True)
    assert "grafana" in r.stdout and dn in r.stdout, r.stdout
    assert app_connection(dn, "Grafana-secret-42").bound
    r = S.cli("app", "passwd", "grafana", check=True)
    new = [line.split(": ", 1)[1] for line in r.stdout.splitlines() if line.startswith("password (shown this once)")]
    assert len(new) == 1, r.stdout
    assert not app_connection(dn, "Grafana-secret-42").bound
    assert app_connection(dn, new[0]).bound
    r = S.cli("app", "add", "grafana")
    assert r.returncode == 1 and "already exists" in r.stderr, (r.stdout, r.stderr)
    S.cli("app", "del", "grafana", check=True)
    c = app_connection(dn, new[0])
    assert not c.bound and c.result["result"] == 49, c.result
    r = S.cli("app", "del", "grafana")
    assert r.returncode == 1 and "no application named grafana" in r.stderr, r.stderr
    r = S.cli("app", "add")
    assert r.returncode == 2 and "usage: interchange app add" in r.stderr, r.stderr
    r = S.cli("app", "--help", check=True)
    assert "docs/directory.md" in r.stdout, r.stdout


DETAILS = {"title": "Engineer", "department": "Research", "company": "Example Ltd",
           "physicalDeliveryOfficeName": "B2 3.14", "telephoneNumber": "+1 555 0100", "mobile": "+1 555 0199"}


def write_file(name, data):
    path = os.path.join(S.base, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def one_entry(r):
    assert r.returncode == 0, (r.stdout, r.stderr)
    found = entries(r.stdout)
    assert len(found) <= 1, r.stdout
    return found[0] if found else {}


@test
def person_details_set_shown_and_read_by_users_and_applications():
    S.cli("user", "set", "amy", "--title", "Engineer", "--department", "Research", "--company", "Example Ltd",
          "--office", "B2 3.14", "--phone", "+1 555 0100", "--mobile", "+1 555 0199", "--manager", "bob", check=True)
    S.cli("user", "set", "hank", "--title", "Secret agent", "--manager", "bob", check=True)  # hank is hidden
    S.cli("user", "photo", "amy", write_file("amy.jpg", JPEG), check=True)
    show = S.cli("user", "show", "amy", check=True).stdout
    for line in ("Title:        Engineer", "Department:   Research", "Company:      Example Ltd",
                 "Office:       B2 3.14", "Phone:        +1 555 0100", "Mobile:       +1 555 0199",
                 "Manager:      bob", "Photo:        JPEG, %d bytes" % len(JPEG)):
        assert line in show.splitlines(), (line, show)
    # the administrator sees every direct report, the hidden one too
    show = S.cli("user", "show", "bob", check=True).stdout.splitlines()
    reports = show.index("Reports:      amy")
    assert show[reports + 1] == "              hank", show
    # a user reads the details of the others, the computed directReports without the hidden one, and the photo
    e = one_entry(as_user("(uid=amy)", "*", "directReports"))
    for attr, value in DETAILS.items():
        assert e.get(attr.lower()) == [value], (attr, e)
    assert e["manager"] == [S.user_dn("bob")], e
    r = run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", S.ldap_uri, "-b", S.user_dn("amy"), "-s",
             "base", "-D", S.user_dn("carla"), "-w", "pw-carla", "-t", "-T", S.base, "(objectClass=*)",
             "thumbnailPhoto", "jpegPhoto"])
    files = [line.split("file://", 1)[1] for line in r.stdout.splitlines() if "file://" in line]
    assert len(files) == 2 and all(open(f, "rb").read() == JPEG for f in files), (r.stdout, r.stderr)
    e = one_entry(as_user("(uid=bob)", "directReports"))
    assert [d.lower() for d in e.get("directreports", [])] == [S.user_dn("amy").lower()], e
    r = as_user("(directReports=%s)" % S.user_dn("amy"), "uid")
    assert [x["uid"] for x in entries(r.stdout)] == [["bob"]], r.stdout
    # sorted by title, as address books browse
    r = sorted_as_user("-E", "!sss=title", "(title=*)", "displayName")
    assert "sortResult: (0) Success" in r.stdout and names(r.stdout) == ["amy Zulu"], r.stdout
    # an application reads the same, and nothing of the hidden recipient
    dn, pw = app_add("phonebook")
    app = app_connection(dn, pw)
    assert app.search("ou=Recipients," + S.suffix, "(|(uid=amy)(uid=bob)(uid=hank))",
                      attributes=list(DETAILS) + ["uid", "manager", "directReports", "thumbnailPhoto"])
    got = {x.uid.value: x for x in app.entries}
    assert sorted(got) == ["amy", "bob"], got
    for attr, value in DETAILS.items():
        assert got["amy"][attr].value == value, (attr, got["amy"])
    assert got["amy"].manager.value.lower() == S.user_dn("bob").lower(), got["amy"]
    assert got["amy"].thumbnailPhoto.value == JPEG
    assert [d.lower() for d in got["bob"].directReports.values] == [S.user_dn("amy").lower()], got["bob"]
    app.unbind()
    S.cli("app", "del", "phonebook", check=True)
    # removed with "", the photo with --none
    S.cli("user", "set", "amy", "--mobile", "", check=True)
    S.cli("user", "photo", "amy", "--none", check=True)
    e = one_entry(as_user("(uid=amy)", "mobile", "thumbnailPhoto", "jpegPhoto", "title"))
    assert "mobile" not in e and "thumbnailphoto" not in e and "jpegphoto" not in e and e["title"] == ["Engineer"], e


def jpeg_size(data):
    """(width, height) from a JPEG's start-of-frame marker."""
    i = 2
    while i + 9 < len(data):
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if 0xc0 <= marker <= 0xc3:
            return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
        i += 2 + length
    return None


@test
def large_photo_made_smaller():
    if shutil.which("cjpeg") is None:
        skip("cjpeg (libjpeg-turbo-progs) is not installed: no large JPEG to give")
    # a 1200x900 photo of 110 KiB or so (gradients and a fine pattern), made with libjpeg's cjpeg
    w, h = 1200, 900
    ppm = bytearray(b"P6\n%d %d\n255\n" % (w, h))
    for y in range(h):
        ppm += b"".join(bytes(((x * 255) // w, (y * 255) // h, (x ^ y) & 255)) for x in range(w))
    r = subprocess.run(["cjpeg", "-quality", "95"], input=bytes(ppm), capture_output=True, timeout=60)
    assert r.returncode == 0 and len(r.stdout) > 100 * 1024, (len(r.stdout), r.stderr)
    r = S.cli("user", "photo", "dan", write_file("large.jpg", r.stdout), check=True)
    assert "resized the photo from 1200x900 pixels" in r.stdout and "to 600x450" in r.stdout, r.stdout
    got = run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", S.ldap_uri, "-b", S.user_dn("dan"), "-s",
               "base", "-D", S.user_dn("carla"), "-w", "pw-carla", "-t", "-T", S.base, "(objectClass=*)",
               "thumbnailPhoto"])
    path = [line.split("file://", 1)[1] for line in got.stdout.splitlines() if "file://" in line]
    assert len(path) == 1, got.stdout
    with open(path[0], "rb") as f:
        photo = f.read()
    assert len(photo) <= 100 * 1024 and jpeg_size(photo) == (600, 450), (len(photo), jpeg_size(photo))


@test
def person_details_refused_in_words():
    broken = write_file("broken.jpg", b"\xff\xd8\xff" + b"\0" * (150 * 1024) + b"\xff\xd9")
    for args, words in [(("photo", "amy", broken), "is not a JPEG that can be read"),
                        (("photo", "amy", write_file("x.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64)),
                         "is not a JPEG image"),
                        (("set", "amy", "--phone", "call me"), "is not a telephone number"),
                        (("set", "amy", "--manager", "amy"), "cannot be its own manager"),
                        (("set", "amy", "--manager", "nobody"), "there is no user with login nobody"),
                        (("set", "nobody", "--title", "x"), "there is no user with login nobody"),
                        (("set", "amy"), "needs at least one of")]:
        r = S.cli("user", *args)
        assert r.returncode == 1 and words in r.stderr, (args, r.stdout, r.stderr)
    r = S.cli("user", "photo", "amy")
    assert r.returncode == 2 and "usage: interchange user" in r.stderr, r.stderr


@test
def hidden_recipients_not_revealed_by_member_or_manager_values():
    S.cli("dl", "add", "mixed", "--member", "amy", "--member", "hank", check=True)
    S.cli("user", "set", "carla", "--manager", "hank", check=True)
    base = "ou=Recipients," + S.suffix
    e = one_entry(as_user("(cn=mixed)", "member"))
    assert e["member"] == [S.user_dn("amy")], e
    e = one_entry(as_user("(uid=carla)", "manager"))
    assert "manager" not in e, e
    # nor by a filter on the value, nor a compare
    for filt in ("(member=%s)" % S.user_dn("hank"), "(manager=%s)" % S.user_dn("hank")):
        r = as_user(filt, "dn")
        assert r.returncode == 0 and entries(r.stdout) == [], (filt, r.stdout)
    r = run(["ldapcompare", "-x", "-H", S.ldap_uri, "-D", S.user_dn("amy"), "-w", "pw-amy",
             "cn=mixed," + base, "member:" + S.user_dn("hank")])
    assert "TRUE" not in r.stdout, (r.stdout, r.stderr)
    # nor is the hidden user itself confirmed by a compare: the same answer as for no entry at all
    for login in ("hank", "nobody"):
        r = run(["ldapcompare", "-x", "-H", S.ldap_uri, "-D", S.user_dn("amy"), "-w", "pw-amy", S.user_dn(login),
                 "uid:" + login])
        assert r.returncode == 32 and "No such object" in r.stdout + r.stderr, (login, r.stdout, r.stderr)
    # the administrator (and so delivery to the list) still has both
    r = S.ldapsearch("(cn=mixed)", "member", bind_dn=S.admin_dn, password=S.admin_password)
    assert sorted(m.lower() for m in entries(r.stdout)[0]["member"]) == sorted(
        S.user_dn(x).lower() for x in ("amy", "hank")), r.stdout
    assert "hank" in S.cli("dl", "show", "mixed", check=True).stdout
    assert "Manager:      hank" in S.cli("user", "show", "carla", check=True).stdout


def as_amy(tool, *args, ldif=None):
    """An OpenLDAP client (ldapmodify, ldapmodrdn, ldapcompare) bound as the ordinary user amy: (exit status, the
    text it printed)."""
    r = run([tool, "-x", "-H", S.ldap_uri, "-D", S.user_dn("amy"), "-w", "pw-amy"] + list(args), input=ldif)
    return r.returncode, r.stdout + r.stderr


def probes(taken, free):
    """What amy is answered when she tries to take the address or login taken (a hidden recipient's) and free (no
    one's): a list of (taken's answer, free's answer) exit statuses, one per way of trying."""
    base = "ou=Recipients," + S.suffix
    answers = []
    for make in (lambda v: ("ldapmodify", "dn: %s\nchangetype: modify\nreplace: mail\nmail: %s@example.com\n"
                            % (S.user_dn("amy"), v)),
                 lambda v: ("ldapmodify", "dn: %s\nchangetype: modify\nadd: ixProxyAddresses\n"
                            "ixProxyAddresses: smtp:%s@example.com\n" % (S.user_dn("amy"), v)),
                 lambda v: ("ldapmodify", "dn: cn=probe,%s\nchangetype: add\nobjectClass: inetOrgPerson\n"
                            "cn: probe\nsn: probe\nuid: %s\n" % (base, v))):
        got = []
        for v in (taken, free):
            tool, ldif = make(v)
            code, text = as_amy(tool, ldif=ldif)
            got.append((code, "Insufficient access" in text))
        answers.append(got)
    for v in (taken, free):
        code, text = as_amy("ldapmodrdn", S.user_dn("amy"), "uid=" + v)
        answers.append([(code, "Insufficient access" in text)] * 2)
    return answers


@test
def uniqueness_and_compares_reveal_no_hidden_recipient():
    # hank is hidden: his login and address are taken, but amy may learn that no more than of a free one
    for taken, free in (("hank.hidden", "nobody.free"), ("hank", "nobody")):
        for answer in probes(taken, free):
            assert answer[0] == answer[1] == (50, True), (taken, free, answer)
    # a hidden list: a compare says the same as for no list at all
    S.cli("dl", "add", "secret-team", "--member", "amy", check=True)
    assert S.ldapmodify("dn: cn=secret-team,ou=Recipients,%s\nchangetype: modify\nadd: ixHideFromAddressBook\n"
                        "ixHideFromAddressBook: TRUE\n" % S.suffix).returncode == 0
    for name in ("secret-team", "no-such-team"):
        code, text = as_amy("ldapcompare", "cn=%s,ou=Recipients,%s" % (name, S.suffix), "cn:" + name)
        assert code == 32 and "No such object" in text, (name, code, text)
    # the administrator is still held to uniqueness, and still compares
    r = S.ldapmodify("dn: %s\nchangetype: modify\nreplace: mail\nmail: hank.hidden@example.com\n" % S.user_dn("amy"))
    assert r.returncode == 19 and "Constraint violation" in r.stderr, (r.stdout, r.stderr)
    r = run(["ldapcompare", "-x", "-H", S.ldap_uri, "-D", S.admin_dn, "-w", S.admin_password,
             "cn=secret-team,ou=Recipients," + S.suffix, "member:" + S.user_dn("amy")])
    assert r.returncode == 6 and "TRUE" in r.stdout, (r.stdout, r.stderr)


BULK = 600  # more than olcSizeLimit (500)


@test
def paged_browse_goes_through_more_than_the_size_limit():
    ldif = "".join("dn: uid=bulk%03d,ou=Recipients,%s\nobjectClass: inetOrgPerson\nuid: bulk%03d\ncn: Bulk %03d\n"
                   "sn: %03d\ndisplayName: Bulk %03d\ntitle: Bulk\n\n" % (i, S.suffix, i, i, i, i)
                   for i in range(BULK))
    r = S.ldapmodify(ldif, add=True)
    assert r.returncode == 0, r.stderr
    r = sorted_as_user("-E", "!sss=displayName", "-E", "pr=100/noprompt", "(title=Bulk)", "displayName")
    assert r.returncode == 0, (r.stdout[-300:], r.stderr)
    assert names(r.stdout) == ["Bulk %03d" % i for i in range(BULK)], names(r.stdout)[:3]
    # a search without paging is still held to the size limit
    r = as_user("(title=Bulk)", "dn")
    assert r.returncode == 4 and len(entries(r.stdout)) == 500, (r.returncode, r.stderr)


# RFC 2891 server-side sort and the VLV request (draft-ietf-ldapext-ldapv3-vlv) as an address-book client sends
# them; ldap3 has no encoder for either, so the few BER bytes are written here (with ad_ranges.py's tlv)
SORT_OID, VLV_OID, VLV_RESPONSE_OID = "1.2.840.113556.1.4.473", "2.16.840.1.113730.3.4.9", "2.16.840.1.113730.3.4.10"


def ber_int(n):
    return tlv(0x02, n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big"))


def sequence_items(data):
    """The (tag, value) items inside the BER SEQUENCE data."""
    body = children(data, 0, len(data))[0][2]
    return [(tag, value) for tag, _, value in children(body, 0, len(body))]


SORT_BY_DISPLAY_NAME = (SORT_OID, True, tlv(0x30, tlv(0x30, tlv(0x04, b"displayName"))))


def user_connection():
    """amy's ldap3 connection (a simple bind over the loopback listener, as ldapsearch -x in as_user)."""
    server = ldap3.Server("127.0.0.1", port=S.ports["ldap"], get_info=ldap3.NONE)
    c = ldap3.Connection(server, user=S.user_dn("amy"), password="pw-amy", raise_exceptions=False)
    assert c.bind(), c.result
    return c


def busy(result):
    return result["result"] == 51 and BUSY in (result.get("message") or "")


def browse_ldapsearch(page):
    """ldapsearch's sorted paged browse of the Bulk people: (names, refused before the first page, refused after
    n names or None)."""
    r = as_user("-E", "!sss=displayName", "-E", "pr=%d/noprompt" % page, "(title=Bulk)", "displayName")
    got = names(r.stdout)
    if r.returncode == 51 and BUSY in r.stderr:
        return got, not got, len(got) if got else None
    assert r.returncode == 0, (r.returncode, r.stderr)
    return got, False, None


def browse_ldap3_paged(page):
    """The same browse with python3-ldap3's paged results, one connection: (names, refused at the first page,
    refused after n names or None)."""
    c, got, cookie = user_connection(), [], None
    try:
        while True:
            c.search("ou=Recipients," + S.suffix, "(title=Bulk)", attributes=["displayName"], paged_size=page,
                     paged_cookie=cookie, controls=[SORT_BY_DISPLAY_NAME])
            if busy(c.result):
                return got, not got, len(got) if got else None
            assert c.result["result"] == 0, c.result
            got += [e["attributes"]["displayName"][0] for e in c.response if e["type"] == "searchResEntry"]
            cookie = c.result["controls"]["1.2.840.113556.1.4.319"]["value"]["cookie"]
            if not cookie:
                return got, False, None
    finally:
        c.unbind()


def browse_ldap3_vlv(page):
    """The browse as Outlook's address book scrolls: VLV windows of page entries by offset, each with the
    server's context from the window before: (names, refused at the first window, refused after n names or None)."""
    c, got, context, count = user_connection(), [], None, 0
    try:
        while True:
            value = ber_int(0) + ber_int(page - 1) + tlv(0xa0, ber_int(len(got) + 1) + ber_int(count)) + \
                (tlv(0x04, context) if context is not None else b"")
            c.search("ou=Recipients," + S.suffix, "(title=Bulk)", attributes=["displayName"],
                     controls=[SORT_BY_DISPLAY_NAME, (VLV_OID, True, tlv(0x30, value))])
            if busy(c.result):
                return got, not got, len(got) if got else None
            assert c.result["result"] == 0, c.result
            got += [e["attributes"]["displayName"][0] for e in c.response if e["type"] == "searchResEntry"]
            response = sequence_items(c.result["controls"][VLV_RESPONSE_OID]["value"])
            count = int.from_bytes(response[1][1], "big")
            context = response[3][1] if len(response) > 3 else None
            if len(got) >= count:
                return got, False, None
    finally:
        c.unbind()


ROUNDS, PAGE = 6, 5


@test
def browses_at_once_never_refused_between_pages():
    # several address-book clients scroll the Bulk people (paged_browse_goes_through_more_than_the_size_limit)
    # sorted, a few entries at a time, all at once, for a few rounds: slapd may refuse a browse's first page while
    # too many sorts run, never the next page of a browse it has begun (docs/slapd-facts.md)
    want = ["Bulk %03d" % i for i in range(BULK)]
    clients = [browse_ldapsearch, browse_ldapsearch, browse_ldap3_paged, browse_ldap3_vlv, browse_ldap3_vlv]
    between, first, browses = [], 0, 0
    with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
        for _ in range(ROUNDS):
            for client, (got, refused_first, refused_after) in zip(
                    clients, pool.map(lambda browse: browse(PAGE), clients)):
                browses += 1
                first += refused_first
                if refused_after is not None:
                    between.append((client.__name__, refused_after))
                elif not refused_first:
                    assert got == want, (client.__name__, got[:3], len(got))
    assert not between, "%d of %d browses refused busy between two pages (client, names before): %s" % (
        len(between), browses, between)


@test
def upgrade_adds_binds_by_login():
    # a directory as an older version made it: no SASL properties, no mapping, the older access rules
    r = run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-Q", "-Y", "EXTERNAL", "-H", ldapi_uri(), "-b", "cn=config",
             "-s", "base", "olcAuthzRegexp"])
    peercred = [v for v in entries(r.stdout)[0]["olcauthzregexp"] if "cn=peercred" in v]
    assert len(peercred) == 1, r.stdout
    # (and from before application accounts and person details: no ou=Applications, rules {3} to {7} not there,
    # no directReports; and from before the administrative roles: their rules {0} to {4} not there, so that the
    # numbers below are the older ones)
    S.cli("app", "del", "nextcloud", check=True)
    ldif = ("dn: cn=config\nchangetype: modify\nreplace: olcAuthzRegexp\nolcAuthzRegexp: %s\n-\n"
            "delete: olcSaslSecProps\n\n" % peercred[0] +
            "dn: ou=Applications,%s\nchangetype: delete\n\n" % S.suffix +
            "dn: olcOverlay={3}dynlist,olcDatabase={1}mdb,cn=config\nchangetype: modify\n"
            "delete: olcDynListAttrSet\nolcDynListAttrSet: {1}\n\n"
            "dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\n" +
            "".join("delete: olcAccess\nolcAccess: {%d}\n-\n" % i for i in range(4, -1, -1)) +
            "delete: olcLimits\nolcLimits: {1}\n-\n" +
            "".join("delete: olcAccess\nolcAccess: {%d}\n-\n" % i for i in range(8, 2, -1)) +
            "add: olcAccess\nolcAccess: {3}to * by self read by users read by * none\n-\n"
            "delete: olcAccess\nolcAccess: {1}\n-\nadd: olcAccess\nolcAccess: {1}to dn.subtree=\"%s\" "
            "filter=(ixHideFromAddressBook=TRUE) by self read by * none\n" % S.suffix)
    r = run(["ldapmodify", "-Q", "-Y", "EXTERNAL", "-H", ldapi_uri()], input=ldif)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert not bound_as(plain_whoami("amy", "pw-amy"), "amy")
    assert "directreports" not in one_entry(as_user("(uid=bob)", "directReports"))
    assert "manager" in one_entry(as_user("(uid=carla)", "manager"))
    assert as_user("-E", "pr=100/noprompt", "(title=Bulk)", "dn").returncode == 4
    S.stop()
    # (and before the gate module: slapd cannot unload a module while it runs, so it goes from the file slapd.d
    # keeps cn=module{0} in, with the checksum of the file, which slapd only checks when there is one)
    module_file = os.path.join(S.data, "directory", "slapd.d", "cn=config", "cn=module{0}.ldif")
    with open(module_file) as f:
        lines = [line for line in f if "ixgate.so" not in line and "ixbrowse.so" not in line and
                 not line.startswith("# CRC32")]
    with open(module_file, "w") as f:
        f.writelines(lines)
    S.start()
    assert probes("hank.hidden", "nobody.free")[0] == [(19, False), (50, True)]
    # (an upgrade step that failed, slapd too busy, is tried again at the attendant's next sweep, 30 s later)
    assert wait_for(lambda: bound_as(plain_whoami("amy", "pw-amy"), "amy"), timeout=45)
    assert wait_for(lambda: bound_as(plain_whoami("ghost", "pw-ghost"), "ghost"), timeout=45)
    assert root_dse_mechanisms("-x", "-H", S.ldap_uri) == []
    # application accounts work again: the container and the rules, in their place, before "to *" (the upgrade
    # steps run one after the other: the application rules may come a moment after binds by login work)
    def acl_upgraded():
        r = run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-Q", "-Y", "EXTERNAL", "-H", ldapi_uri(), "-b",
                 "olcDatabase={1}mdb,cn=config", "-s", "base", "olcAccess"])
        # the administrative roles' rules stand first (docs/api.md "Roles"); the others in the older numbers
        acl = [a for a in entries(r.stdout)[0]["olcaccess"] if "ou=Roles," not in a]
        if len(acl) < 9 or "attrs=" not in acl[6]:
            return None
        ok = [a.split("}", 1)[1].split(" by ")[0] for a in acl[3:]] == [
            'to dn.onelevel="ou=Recipients,%s" attrs=member val.regex="^(.+)$"' % S.suffix,
            'to dn.onelevel="ou=Recipients,%s" attrs=manager val.regex="^(.+)$"' % S.suffix,
            'to dn.base="%s" attrs=entry' % S.suffix,
            'to dn.subtree="ou=Recipients,%s" attrs=%s' % (S.suffix, acl[6].split("attrs=")[1].split(" ")[0]),
            "to *", "to *"] and "ou=Applications" in acl[7] and "by users read" in acl[8]
        return acl if ok else None
    assert wait_for(acl_upgraded, timeout=45), run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-Q", "-Y",
                                                    "EXTERNAL", "-H", ldapi_uri(), "-b",
                                                    "olcDatabase={1}mdb,cn=config", "-s", "base",
                                                    "olcAccess"]).stdout
    dn, pw = app_add("nextcloud")
    app = app_connection(dn, pw)
    assert app.bound and app.search("ou=Recipients," + S.suffix, "(uid=*)", attributes=["uid", "userPassword"])
    uids = sorted(e.uid.value for e in app.entries)
    assert "amy" in uids and "ghost" not in uids and "hank" not in uids, uids
    assert all(not e.entry_attributes_as_dict.get("userPassword") for e in app.entries), app.entries
    # the person details: directReports computed again, the hidden manager hidden again, the titles readable
    assert app.search("ou=Recipients," + S.suffix, "(uid=amy)", attributes=["title"]) and \
        app.entries[0].title.value == "Engineer", app.entries
    assert wait_for(lambda: "directreports" in one_entry(as_user("(uid=bob)", "directReports")), timeout=45)
    assert "manager" not in one_entry(as_user("(uid=carla)", "manager"))
    assert wait_for(lambda: as_user("-E", "pr=100/noprompt", "(title=Bulk)", "dn").returncode == 0, timeout=45)
    # the gate and browse modules are loaded again, and take effect from the next start
    def gate_loaded():
        r = run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-Q", "-Y", "EXTERNAL", "-H", ldapi_uri(), "-b",
                 "cn=module{0},cn=config", "-s", "base", "olcModuleLoad"])
        return "ixgate.so" in r.stdout and "ixbrowse.so" in r.stdout
    assert wait_for(gate_loaded, timeout=45)
    S.stop()
    S.start()
    assert probes("hank.hidden", "nobody.free")[0] == [(50, True), (50, True)]


if __name__ == "__main__":
    main("test_addressbook")
