"""test_sync.py - sync sources of type ldap: a second slapd started here plays the organisation's directory (core,
cosine and inetorgperson schemas, syncprov), its users and groups are loaded with ldapadd, and `interchange sync`
makes them recipients: addresses, mail over SMTP, IMAP after `user passwd`, changes of names and addresses, a rename
(same mailbox), a deletion (disabled and hidden, mailbox kept), and conflicts with local recipients."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ENV, System, entries, free_ports, imap_login_ok, main, run, setup, test, wait_for  # noqa: E402

S = None
SRC = None


class Source:
    """The organisation's directory: a slapd of its own in a temporary folder."""
    SUFFIX = "dc=corp,dc=test"
    ADMIN = "cn=admin,dc=corp,dc=test"
    PASSWORD = "corp-secret"

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="ixsrc-", dir="/tmp")
        self.port = free_ports(1)[0]
        self.uri = "ldap://127.0.0.1:%d/" % self.port
        conf, data = os.path.join(self.base, "slapd.d"), os.path.join(self.base, "data")
        os.makedirs(conf)
        os.makedirs(data)
        ldif = """dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {base}/slapd.pid

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: syncprov

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcDbDirectory: {data}
olcSuffix: {suffix}
olcRootDN: {admin}
olcRootPW: {pw}
olcDbIndex: objectClass eq
olcDbIndex: entryUUID,entryCSN eq

dn: olcOverlay={{0}}syncprov,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcSyncProvConfig
olcOverlay: {{0}}syncprov
""".format(base=self.base, data=data, suffix=self.SUFFIX, admin=self.ADMIN, pw=self.PASSWORD)
        run(["slapadd", "-n0", "-F", conf], check=True, input=ldif)
        self.proc = subprocess.Popen(["slapd", "-d", "none", "-F", conf, "-h", self.uri], env=ENV,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not wait_for(lambda: self.proc.poll() is not None or run(
                ["ldapwhoami", "-x", "-H", self.uri, "-D", self.ADMIN, "-w", self.PASSWORD]).returncode == 0,
                timeout=20) or self.proc.poll() is not None:
            raise AssertionError("the source's slapd did not start: %s" % self.proc.stderr.read().decode())

    def ldap(self, tool, ldif, *args):
        p = run([tool, "-x", "-H", self.uri, "-D", self.ADMIN, "-w", self.PASSWORD] + list(args), input=ldif)
        assert p.returncode == 0, (tool, ldif, p.stdout, p.stderr)

    def add(self, ldif):
        self.ldap("ldapadd", ldif)

    def modify(self, ldif):
        self.ldap("ldapmodify", ldif)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.base, ignore_errors=True)


def person(uid, given, sn, *mails):
    lines = ["dn: uid=%s,ou=People,%s" % (uid, Source.SUFFIX), "objectClass: inetOrgPerson", "uid: " + uid,
             "givenName: " + given, "sn: " + sn, "cn: %s %s" % (given, sn)]
    lines += ["mail: " + m for m in mails]
    return "\n".join(lines) + "\n\n"


def ours(filt, *attrs):
    return entries(S.ldapsearch(filt, *attrs, bind_dn=S.admin_dn, password=S.admin_password).stdout)


def user(login):
    found = ours("(uid=%s)" % login, "*", "pwdAccountLockedTime")
    return found[0] if found else None


def sync_run():
    p = S.cli("sync", "run", "corp")
    assert p.returncode == 0, (p.stdout, p.stderr)
    return p.stdout


def show():
    return S.cli("sync", "show", "corp", check=True).stdout


@setup
def two_directories():
    global S, SRC
    S = System()
    SRC = Source()
    SRC.add("dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: corp\no: Corp\n\n"
            "dn: ou=People,%s\nobjectClass: organizationalUnit\nou: People\n\n"
            "dn: ou=Groups,%s\nobjectClass: organizationalUnit\nou: Groups\n\n" % ((Source.SUFFIX,) * 3))
    SRC.add(person("alice", "Alice", "Walker", "alice@example.com", "a.walker@example.com") +
            person("bob", "Bob", "Stone", "bob@example.com") +
            person("carol", "Carol", "King", "carol@example.com") +
            person("dave", "Dave", "Local", "dave.corp@example.com") +
            person("erin", "Erin", "Shared", "erin@example.com", "shared@example.com"))
    SRC.add("dn: cn=staff,ou=Groups,{s}\nobjectClass: groupOfNames\ncn: staff\nmember: uid=alice,ou=People,{s}\n"
            "member: uid=bob,ou=People,{s}\n\n"
            "dn: cn=eng,ou=Groups,{s}\nobjectClass: groupOfUniqueNames\ncn: eng\n"
            "uniqueMember: uid=carol,ou=People,{s}\nuniqueMember: cn=staff,ou=Groups,{s}\n\n".format(s=Source.SUFFIX))
    # local recipients in the way: the login dave, the address shared@example.com
    S.cli("user", "add", "dave", "--given", "Dave", "--surname", "Here", "--password", "pw-dave", check=True)
    S.cli("user", "add", "frank", "--given", "Frank", "--surname", "Here", "--password", "pw-frank",
          "--alias", "shared@example.com", check=True)
    p = S.cli("sync", "add", "corp", "--uri", SRC.uri, "--bind-dn", Source.ADMIN, "--password", Source.PASSWORD,
              "--base", "ou=People," + Source.SUFFIX, "--groups-base", "ou=Groups," + Source.SUFFIX)
    assert p.returncode == 0, (p.stdout, p.stderr)


@test
def the_password_is_kept_by_this_server_only():
    path = os.path.join(S.data, "sync", "corp.secret")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600", oct(os.stat(path).st_mode)
    dump = S.ldapsearch("(objectClass=ixDirectorySource)", "*", bind_dn=S.admin_dn, password=S.admin_password)
    assert "ixSyncUri" in dump.stdout and Source.PASSWORD not in dump.stdout, dump.stdout
    assert "never run" in S.cli("sync", "list", check=True).stdout


@test
def a_run_makes_users_and_lists():
    out = sync_run()
    assert "users 5 of 5" in out and "lists 2 of 2" in out, out
    a = user("alice")
    assert a is not None and a["sn"] == ["Walker"] and a["mail"] == ["alice@example.com"], a
    assert sorted(a["ixproxyaddresses"]) == ["SMTP:alice@example.com", "smtp:a.walker@example.com"], a
    assert a.get("ixsyncanchor") and a["ixmailboxguid"], a
    staff = ours("(cn=staff)", "member")[0]
    assert sorted(staff["member"]) == sorted([S.user_dn("alice"), S.user_dn("bob")]), staff
    eng = ours("(cn=eng)", "member")[0]
    assert sorted(eng["member"]) == sorted([S.user_dn("carol"), "cn=staff,ou=Recipients," + S.suffix]), eng


@test
def synced_users_receive_mail_and_log_in():
    S.cli("user", "passwd", "alice", "--password", "pw-alice", check=True)
    assert wait_for(lambda: imap_login_ok(S.ports["imap"], "alice", "pw-alice"), timeout=10)
    S.send_mail("a.walker@example.com", "<sync-1@outside.org>")
    assert wait_for(lambda: S.imap_count("alice", "pw-alice", "<sync-1@outside.org>") == 1, timeout=15)


@test
def conflicts_are_reported_never_overwritten():
    out = show()
    assert "login dave is taken" in out and "shared@example.com belongs to " + S.user_dn("frank") in out, out
    assert re.search(r"Conflicts +2\n", out), out
    dave = user("dave")
    assert dave["sn"] == ["Here"] and "ixsyncanchor" not in dave, dave
    erin = user("erin")
    assert erin["ixproxyaddresses"] == ["SMTP:erin@example.com"], erin
    frank = user("frank")
    assert "smtp:shared@example.com" in frank["ixproxyaddresses"], frank


@test
def names_and_addresses_follow_the_source():
    SRC.modify("dn: uid=alice,ou=People,%s\nchangetype: modify\nreplace: sn\nsn: Smith\n-\nreplace: cn\n"
               "cn: Alice Smith\n-\nreplace: mail\nmail: alice.smith@example.com\nmail: alice@example.com\n" %
               Source.SUFFIX)
    out = sync_run()
    assert "1 changed" in out, out
    a = user("alice")
    assert a["sn"] == ["Smith"] and a["cn"] == ["Alice Smith"] and a["mail"] == ["alice.smith@example.com"], a
    assert sorted(a["ixproxyaddresses"]) == ["SMTP:alice.smith@example.com", "smtp:alice@example.com"], a
    S.send_mail("alice.smith@example.com", "<sync-2@outside.org>")
    assert wait_for(lambda: S.imap_count("alice", "pw-alice", "<sync-2@outside.org>") == 1, timeout=15)


@test
def a_rename_keeps_the_recipient_and_its_mailbox():
    guid = user("bob")["ixmailboxguid"]
    SRC.ldap("ldapmodrdn", "uid=bob,ou=People,%s\nuid=robert\n" % Source.SUFFIX, "-r")
    # what the source's referential integrity would do (this test's slapd has none)
    SRC.modify("dn: cn=staff,ou=Groups,{s}\nchangetype: modify\ndelete: member\nmember: uid=bob,ou=People,{s}\n-\n"
               "add: member\nmember: uid=robert,ou=People,{s}\n".format(s=Source.SUFFIX))
    out = sync_run()
    assert "1 renamed" in out, out
    assert user("bob") is None
    robert = user("robert")
    assert robert is not None and robert["ixmailboxguid"] == guid, robert
    staff = ours("(cn=staff)", "member")[0]
    assert S.user_dn("robert") in staff["member"], staff


@test
def a_user_deleted_at_the_source_is_disabled_and_hidden_with_its_mailbox():
    S.cli("user", "passwd", "carol", "--password", "pw-carol", check=True)
    assert wait_for(lambda: imap_login_ok(S.ports["imap"], "carol", "pw-carol"), timeout=10)
    guid = user("carol")["ixmailboxguid"]
    SRC.ldap("ldapdelete", "uid=carol,ou=People,%s\n" % Source.SUFFIX)
    sync_run()
    carol = user("carol")
    assert carol is not None and carol["ixmailboxguid"] == guid, carol
    assert carol.get("ixhidefromaddressbook") == ["TRUE"] and carol.get("ixsyncdeleted"), carol
    assert carol.get("pwdaccountlockedtime") == ["000001010000Z"], carol
    assert not imap_login_ok(S.ports["imap"], "carol", "pw-carol")
    assert re.search(r"Users +3 \(1 disabled", show()), show()
    eng = ours("(cn=eng)", "member")[0]
    assert S.user_dn("carol") not in eng.get("member", []), eng


@test
def a_run_with_nothing_changed_changes_nothing():
    out = sync_run()
    assert "0 added, 0 changed, 0 renamed, 0 disabled or deleted" in out, out
    assert "in step" in show()


@test
def deleting_the_source_with_keep_leaves_local_recipients():
    p = S.cli("sync", "del", "corp", "--keep")
    assert p.returncode == 0, (p.stdout, p.stderr)
    a = user("alice")
    assert a is not None and "ixsyncanchor" not in a, a
    assert not os.path.exists(os.path.join(S.data, "sync", "corp.secret"))
    assert "No sync sources" in S.cli("sync", "list", check=True).stdout


if __name__ == "__main__":
    try:
        main("test_sync")
    finally:
        if SRC is not None:
            SRC.stop()
