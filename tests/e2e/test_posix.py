"""test_posix.py - POSIX accounts and groups for Linux hosts that take their users from the directory, driven with
the OpenLDAP clients against a started system as sssd uses it (docs/directory.md "POSIX accounts and groups"): an
application account bound over verified StartTLS searching with the exact filters sssd 2.8 sends with
ldap_schema = rfc2307bis (a user by name and by uidNumber, a group by name and by gidNumber, a user's groups by
member), then the user's own bind as sssd's auth_provider = ldap makes it; `user add --posix` and `dl add --posix`,
uidNumbers from the directory's range, distinct when eight adds run at once, a used-up range refused in words, and a
directory made before POSIX support brought up by the attendant."""
import concurrent.futures
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ENV, INTERCHANGE, System, entries, main, run, setup, test, wait_for  # noqa: E402

S = None
APP_DN = APP_PW = CA = None

# the filters sssd 2.8 sends (src/providers/ldap/ldap_id.c, sdap_async_initgroups.c) with ldap_schema = rfc2307bis,
# ldap_user_object_class = posixAccount, ldap_group_object_class = posixGroup and ldap_group_member = member
USER_BY_NAME = "(&(uid=%s)(objectclass=posixAccount)(uid=*)(&(uidNumber=*)(!(uidNumber=0))))"
USER_BY_UID = "(&(uidNumber=%s)(objectclass=posixAccount)(uid=*)(&(uidNumber=*)(!(uidNumber=0))))"
GROUP_BY_NAME = "(&(cn=%s)(objectclass=posixGroup)(cn=*)(&(gidNumber=*)(!(gidNumber=0))))"
GROUP_BY_GID = "(&(gidNumber=%s)(objectclass=posixGroup)(cn=*)(&(gidNumber=*)(!(gidNumber=0))))"
GROUPS_OF_MEMBER = "(&(member=%s)(objectclass=posixGroup)(cn=*)(&(gidNumber=*)(!(gidNumber=0))))"
USER_ATTRS = ["objectClass", "uid", "userPassword", "uidNumber", "gidNumber", "gecos", "homeDirectory", "loginShell",
              "cn", "memberOf", "modifyTimestamp", "entryUUID"]
GROUP_ATTRS = ["objectClass", "cn", "userPassword", "gidNumber", "member", "memberUid", "modifyTimestamp"]


def tls_env():
    env = {k: v for k, v in ENV.items() if k != "LDAPNOINIT"}
    env.update(LDAPCONF="/dev/null", LDAPRC="/dev/null", LDAPTLS_REQCERT="demand", LDAPTLS_CACERT=CA)
    return env


def as_sssd(filt, attrs, bind=None):
    """ldapsearch as sssd's bind identity (the application account), over StartTLS with the certificate verified:
    the entries found."""
    dn, pw = bind or (APP_DN, APP_PW)
    r = subprocess.run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-ZZ", "-x", "-H", S.ldap_uri, "-D", dn, "-w",
                        pw, "-b", "ou=Recipients," + S.suffix, "-s", "sub", filt] + attrs, capture_output=True,
                       text=True, env=tls_env(), timeout=60)
    assert r.returncode == 0, (filt, r.stdout, r.stderr)
    return entries(r.stdout)


def one(found):
    assert len(found) == 1, found
    return found[0]


@setup
def system_with_posix_people():
    global S, APP_DN, APP_PW, CA
    S = System()
    for login, given, extra in (("alice", "Alice", ["--posix"]), ("bob", "Bob", ["--posix"]), ("carol", "Carol", []),
                                ("hank", "Hank", ["--posix", "--hidden"])):
        S.cli("user", "add", login, "--given", given, "--surname", "Linux", "--password", "pw-" + login, *extra,
              check=True)
    S.cli("dl", "add", "devs", "--posix", "--member", "alice", "--member", "hank", check=True)
    S.cli("dl", "add", "mail-only", "--member", "alice", check=True)
    r = S.cli("app", "add", "sssd", check=True)
    APP_DN = [line for line in r.stdout.splitlines() if line.lower().startswith("cn=sssd,")][0]
    APP_PW = [line.split(": ", 1)[1] for line in r.stdout.splitlines() if line.startswith("password (shown")][0]
    r = S.cli("cert", "show", "--pem", check=True)
    CA = os.path.join(S.base, "ca.pem")
    with open(CA, "w") as f:
        f.write(r.stdout)


@test
def posix_attributes_shown_by_user_and_dl_show():
    show = S.cli("user", "show", "alice", check=True).stdout
    assert "POSIX:        uid 10000, gid 10000, home /home/alice, shell /bin/bash" in show.splitlines(), show
    assert "POSIX:        uid 10001," in S.cli("user", "show", "bob", check=True).stdout
    assert "POSIX" not in S.cli("user", "show", "carol", check=True).stdout
    assert "POSIX group:  gid 10003" in S.cli("dl", "show", "devs", check=True).stdout.splitlines()
    assert "POSIX" not in S.cli("dl", "show", "mail-only", check=True).stdout


@test
def sssd_finds_users_by_name_and_by_uid():
    e = one(as_sssd(USER_BY_NAME % "alice", USER_ATTRS))
    assert e["uid"] == ["alice"] and e["uidnumber"] == ["10000"] and e["gidnumber"] == ["10000"], e
    assert e["homedirectory"] == ["/home/alice"] and e["loginshell"] == ["/bin/bash"], e
    assert "posixAccount" in e["objectclass"] and "userpassword" not in e, e
    assert one(as_sssd(USER_BY_UID % "10001", USER_ATTRS))["uid"] == ["bob"]
    # no POSIX account: carol; hidden from the address book: hank (uid 10002)
    assert as_sssd(USER_BY_NAME % "carol", USER_ATTRS) == []
    assert as_sssd(USER_BY_NAME % "hank", USER_ATTRS) == [] and as_sssd(USER_BY_UID % "10002", USER_ATTRS) == []


@test
def sssd_finds_groups_by_name_gid_and_member():
    g = one(as_sssd(GROUP_BY_NAME % "devs", GROUP_ATTRS))
    assert g["gidnumber"] == ["10003"] and "posixGroup" in g["objectclass"], g
    assert g["member"] == [S.user_dn("alice")], g  # the hidden member is not shown
    assert one(as_sssd(GROUP_BY_GID % "10003", GROUP_ATTRS))["cn"] == ["devs"]
    assert as_sssd(GROUP_BY_NAME % "mail-only", GROUP_ATTRS) == []
    # initgroups: the groups of a user, by its DN in member
    assert [g["cn"] for g in as_sssd(GROUPS_OF_MEMBER % S.user_dn("alice"), ["cn", "gidNumber"])] == [["devs"]]
    assert as_sssd(GROUPS_OF_MEMBER % S.user_dn("bob"), ["cn"]) == []
    assert as_sssd(GROUPS_OF_MEMBER % S.user_dn("hank"), ["cn"]) == []


@test
def sssd_authenticates_the_user_with_a_bind():
    dn = one(as_sssd(USER_BY_NAME % "alice", ["dn"]))["dn"][0]
    r = subprocess.run(["ldapwhoami", "-ZZ", "-x", "-H", S.ldap_uri, "-D", dn, "-w", "pw-alice"],
                       capture_output=True, text=True, env=tls_env(), timeout=60)
    assert r.returncode == 0 and r.stdout.strip().lower() == "dn:" + S.user_dn("alice").lower(), (r.stdout, r.stderr)
    r = subprocess.run(["ldapwhoami", "-ZZ", "-x", "-H", S.ldap_uri, "-D", dn, "-w", "wrong"],
                       capture_output=True, text=True, env=tls_env(), timeout=60)
    assert r.returncode == 49, (r.stdout, r.stderr)
    # an ordinary user sees the same POSIX entries as the application account
    assert one(as_sssd(USER_BY_NAME % "bob", USER_ATTRS, bind=(S.user_dn("alice"), "pw-alice")))["uidnumber"] == \
        ["10001"]


@test
def concurrent_adds_get_distinct_uids():
    logins = ["p%d" % i for i in range(8)]

    def add(login):
        return run([INTERCHANGE, "--data", S.data, "user", "add", login, "--given", "P", "--surname", login,
                    "--password", "pw-" + login, "--posix"])
    with concurrent.futures.ThreadPoolExecutor(len(logins)) as pool:
        results = list(pool.map(add, logins))
    assert all(r.returncode == 0 for r in results), [(r.stdout, r.stderr) for r in results]
    uids = [one(as_sssd(USER_BY_NAME % login, ["uidNumber"]))["uidnumber"][0] for login in logins]
    assert len(set(uids)) == len(logins) and all(10004 <= int(u) <= 10011 for u in uids), uids


@test
def used_up_range_refused_in_words():
    dn = "cn=POSIX IDs,ou=Configuration," + S.suffix
    r = S.ldapsearch("(objectClass=ixPosixIdRange)", "ixPosixNextId", bind_dn=S.admin_dn, password=S.admin_password,
                     base=dn)
    nxt = int(entries(r.stdout)[0]["ixposixnextid"][0])
    assert nxt == 10012, r.stdout
    assert S.ldapmodify("dn: %s\nchangetype: modify\nreplace: ixPosixLastId\nixPosixLastId: %d\n" %
                        (dn, nxt - 1)).returncode == 0
    r = S.cli("user", "add", "late", "--given", "Late", "--surname", "Comer", "--password", "pw-late", "--posix")
    assert r.returncode == 1 and "the POSIX ID range is used up" in r.stderr, (r.stdout, r.stderr)
    assert "there is no user" in S.cli("user", "show", "late").stderr
    # without --posix the user is added as before
    S.cli("user", "add", "late", "--given", "Late", "--surname", "Comer", "--password", "pw-late", check=True)


@test
def upgrade_adds_the_posix_schema():
    # a directory made before POSIX support: no nis schema, no index, applications not reading the POSIX attributes,
    # and the older index of names and addresses, with substrings of ixProxyAddresses (taken out of slapd.d while it
    # is stopped, its lines unfolded; the files' checksums go with them, slapd checks one only when there is one)
    old = System()
    old.stop()
    schema_dir = os.path.join(old.data, "directory", "slapd.d", "cn=config", "cn=schema")
    nis = [f for f in os.listdir(schema_dir) if f.endswith("nis.ldif")]
    assert len(nis) == 1, os.listdir(schema_dir)
    os.unlink(os.path.join(schema_dir, nis[0]))
    db = os.path.join(old.data, "directory", "slapd.d", "cn=config", "olcDatabase={1}mdb.ldif")
    with open(db) as f:
        text = f.read().replace("\n ", "").replace(",uidNumber,gidNumber,homeDirectory,loginShell", "")
    assert "olcDbIndex: ixProxyAddresses,ixNickname eq\n" in text, text
    text = text.replace("olcDbIndex: ixProxyAddresses,ixNickname eq\n", "").replace(
        "olcDbIndex: uid,cn,sn,givenName,displayName eq,sub",
        "olcDbIndex: uid,cn,sn,givenName,displayName,ixProxyAddresses,ixNickname eq,sub")
    with open(db, "w") as f:
        f.writelines(line + "\n" for line in text.splitlines()
                     if "olcDbIndex: uidNumber" not in line and not line.startswith("# CRC32"))
    old.start()

    def posix_user_added():
        r = old.cli("user", "add", "tux", "--given", "Tux", "--surname", "Penguin", "--password", "pw-tux",
                    "--posix")
        return r.returncode == 0 or "a user with login tux already exists" in r.stderr
    assert wait_for(posix_user_added, timeout=45)
    assert "POSIX:        uid 10000, gid 10000" in old.cli("user", "show", "tux", check=True).stdout
    def config(attr):
        return run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-Q", "-Y", "EXTERNAL", "-H",
                    "ldapi://" + os.path.join(old.data, "run", "ldapi").replace("/", "%2F"), "-b",
                    "olcDatabase={1}mdb,cn=config", "-s", "base", attr]).stdout
    index = config("olcDbIndex")
    assert "uidNumber,gidNumber eq" in index, index
    # the index of names and addresses as init makes it now (a failed step is tried again at the next sweep)
    assert wait_for(lambda: "olcDbIndex: ixProxyAddresses,ixNickname eq\n" in config("olcDbIndex"), timeout=45)
    index = config("olcDbIndex")
    assert "ixProxyAddresses,ixNickname eq,sub" not in index and "uid,cn,sn,givenName,displayName eq,sub" in index
    # and applications read them again
    assert wait_for(lambda: "homeDirectory,loginShell" in config("olcAccess"), timeout=45)
    old.cli("dl", "add", "penguins", "--posix", "--member", "tux", check=True)
    assert "POSIX group:  gid 10001" in old.cli("dl", "show", "penguins", check=True).stdout


if __name__ == "__main__":
    main("test_posix")
