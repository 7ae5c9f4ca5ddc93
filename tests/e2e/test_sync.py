"""test_sync.py - sync sources of type ldap: a second slapd started here plays the organisation's directory (core,
cosine and inetorgperson schemas, syncprov), its users and groups are loaded with ldapadd, and the attendant follows
it (RFC 4533 refreshAndPersist) once `interchange sync add` names it: recipients with their addresses, mail over
SMTP, IMAP after `user passwd`, changes of names and addresses, a rename (same mailbox), a deletion (disabled and
hidden, mailbox kept), conflicts with local recipients, all without `sync run`; a restart resumes from the cookie,
and a source that goes away is followed again when it comes back."""
import json
import os
import re
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (INTERCHANGE, PORT_NAMES, System, free_ports, imap_login_ok, main, run, setup, test,  # noqa: E402
                     wait_for)
from ldap_source import Source, recipients, synced_user  # noqa: E402

S = None
SRC = None


def person(uid, given, sn, *mails):
    lines = ["dn: uid=%s,ou=People,%s" % (uid, Source.SUFFIX), "objectClass: inetOrgPerson", "uid: " + uid,
             "givenName: " + given, "sn: " + sn, "cn: %s %s" % (given, sn)]
    lines += ["mail: " + m for m in mails]
    return "\n".join(lines) + "\n\n"


def ours(filt, *attrs):
    return recipients(S, filt, *attrs)


def user(login):
    return synced_user(S, login)


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
    SRC = Source(["nis.ldif"])
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
    add_source("--grace-days", "3")


def add_source(*more):
    p = S.cli("sync", "add", "corp", "--uri", SRC.uri, "--bind-dn", Source.ADMIN, "--password", Source.PASSWORD,
              "--base", "ou=People," + Source.SUFFIX, "--groups-base", "ou=Groups," + Source.SUFFIX, *more)
    assert p.returncode == 0, (p.stdout, p.stderr)


def source_uuid():
    return S.ldapsearch("(cn=corp)", "entryUUID", bind_dn=S.admin_dn, password=S.admin_password,
                        base="ou=Directory Sync,ou=Configuration," + S.suffix).stdout.split("entryUUID: ")[1].split()[0]


def members(name):
    found = ours("(cn=%s)" % name, "member")
    return sorted(found[0].get("member", [])) if found else None


def staff_members():
    return members("staff")


@test
def the_password_is_kept_by_this_server_only():
    path = os.path.join(S.data, "sync", "corp.secret")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600", oct(os.stat(path).st_mode)
    dump = S.ldapsearch("(objectClass=ixDirectorySource)", "*", bind_dn=S.admin_dn, password=S.admin_password)
    assert "ixSyncUri" in dump.stdout and Source.PASSWORD not in dump.stdout, dump.stdout
    assert "corp" in S.cli("sync", "list", check=True).stdout


@test
def the_attendant_follows_the_source_without_a_run():
    # no `sync run`: the attendant starts following the source within seconds of `sync add`
    assert wait_for(lambda: staff_members() == sorted([S.user_dn("alice"), S.user_dn("bob")]), timeout=20), \
        staff_members()
    a = user("alice")
    assert a is not None and a["sn"] == ["Walker"] and a["mail"] == ["alice@example.com"], a
    assert sorted(a["ixproxyaddresses"]) == ["SMTP:alice@example.com", "smtp:a.walker@example.com"], a
    assert a.get("ixsyncanchor") and a["ixmailboxguid"], a
    # a list's users come with its add, the lists among its members once every list is there
    assert wait_for(lambda: members("eng") == sorted([S.user_dn("carol"), "cn=staff,ou=Recipients," + S.suffix]),
                    timeout=20), members("eng")
    assert wait_for(lambda: re.search(r"State +live", show())), show()
    # the cookie names the source entry it belongs to
    assert open(os.path.join(S.data, "sync", "corp.cookie")).read().startswith("source %s\n" % source_uuid())


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
def status_and_metrics_report_each_source():
    text = S.cli("status").stdout
    assert re.search(r"sync +corp: live, 4 users \(0 disabled\), 2 lists, 0 contacts; \d+ changes applied", text), text
    assert "WARNING    sync source corp: 2 conflicts, 0 errors (see 'interchange sync show corp')" in text, text
    status = json.loads(S.cli("status", "--json").stdout)
    corp = [x for x in status["sync"] if x["name"] == "corp"][0]
    assert corp["state"] == "live" and corp["users"] == 4 and corp["conflicts"] == 2, corp
    metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % S.ports["metrics"], timeout=10).read().decode()
    assert 'interchange_sync_up{source="corp"} 1' in metrics, metrics[-1500:]
    assert 'interchange_sync_recipients{source="corp",kind="lists"} 2' in metrics, metrics[-1500:]
    assert 'interchange_sync_conflicts{source="corp"} 2' in metrics, metrics[-1500:]


@test
def names_and_addresses_follow_the_source_live():
    SRC.modify("dn: uid=alice,ou=People,%s\nchangetype: modify\nreplace: sn\nsn: Smith\n-\nreplace: cn\n"
               "cn: Alice Smith\n-\nreplace: mail\nmail: alice.smith@example.com\nmail: alice@example.com\n" %
               Source.SUFFIX)
    assert wait_for(lambda: user("alice")["sn"] == ["Smith"], timeout=10), user("alice")
    a = user("alice")
    assert a["cn"] == ["Alice Smith"] and a["mail"] == ["alice.smith@example.com"], a
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
    assert wait_for(lambda: user("robert") is not None and S.user_dn("robert") in staff_members(), timeout=10), \
        staff_members()
    assert user("bob") is None
    assert user("robert")["ixmailboxguid"] == guid


@test
def a_user_deleted_at_the_source_is_disabled_and_hidden_with_its_mailbox():
    S.cli("user", "passwd", "carol", "--password", "pw-carol", check=True)
    assert wait_for(lambda: imap_login_ok(S.ports["imap"], "carol", "pw-carol"), timeout=10)
    guid = user("carol")["ixmailboxguid"]
    SRC.ldap("ldapdelete", "uid=carol,ou=People,%s\n" % Source.SUFFIX)
    assert wait_for(lambda: user("carol").get("ixsyncdeleted"), timeout=10), user("carol")
    carol = user("carol")
    assert carol is not None and carol["ixmailboxguid"] == guid, carol
    assert carol.get("ixhidefromaddressbook") == ["TRUE"], carol
    assert carol.get("pwdaccountlockedtime") == ["000001010000Z"], carol
    assert not imap_login_ok(S.ports["imap"], "carol", "pw-carol")
    assert wait_for(lambda: re.search(r"Users +3 \(1 disabled", show())), show()
    eng = ours("(cn=eng)", "member")[0]
    assert S.user_dn("carol") not in eng.get("member", []), eng


def maintenance():
    out = S.cli("maintenance", "run", check=True).stdout
    assert "Maintenance done" in out, out


@test
def a_disabled_user_is_removed_after_the_grace_days_only():
    assert "Grace days        3" in show() and "Poll every" not in show(), show()
    maintenance()
    assert user("carol") is not None  # deleted at the source just now: within the 3 days
    # time is an input: the deletion is dated 4 days ago, as if the days had passed
    four_days_ago = time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() - 4 * 86400))
    p = S.ldapmodify("dn: %s\nchangetype: modify\nreplace: ixSyncDeleted\nixSyncDeleted: %s\n" %
                     (S.user_dn("carol"), four_days_ago))
    assert p.returncode == 0, p.stderr
    maintenance()
    assert user("carol") is None
    assert user("alice") is not None and user("robert") is not None


@test
def a_group_loop_is_reported_and_left_open():
    SRC.add("dn: cn=loop-a,ou=Groups,{s}\nobjectClass: groupOfNames\ncn: loop-a\nmember: uid=alice,ou=People,{s}\n\n"
            "dn: cn=loop-b,ou=Groups,{s}\nobjectClass: groupOfNames\ncn: loop-b\nmember: cn=loop-a,ou=Groups,{s}\n\n"
            .format(s=Source.SUFFIX))
    SRC.modify("dn: cn=loop-a,ou=Groups,{s}\nchangetype: modify\nadd: member\nmember: cn=loop-b,ou=Groups,{s}\n"
               .format(s=Source.SUFFIX))
    assert wait_for(lambda: "a group loop" in show(), timeout=10), show()
    lists = "ou=Recipients," + S.suffix
    a, b = ours("(cn=loop-a)", "member")[0], ours("(cn=loop-b)", "member")[0]
    assert b["member"] == ["cn=loop-a," + lists], b
    assert a["member"] == [S.user_dn("alice")], a
    assert "cn=loop-b,ou=Groups,%s holds it" % Source.SUFFIX in show(), show()


@test
def a_posix_group_gets_its_members_by_login():
    SRC.add("dn: cn=devs,ou=Groups,{s}\nobjectClass: posixGroup\ncn: devs\ngidNumber: 5000\nmemberUid: alice\n"
            "memberUid: robert\nmemberUid: nobody\n\n".format(s=Source.SUFFIX))
    want = sorted([S.user_dn("alice"), S.user_dn("robert")])
    assert wait_for(lambda: ours("(cn=devs)", "member") and sorted(ours("(cn=devs)", "member")[0].get("member", [])) ==
                    want, timeout=10), ours("(cn=devs)", "member")
    SRC.modify("dn: cn=devs,ou=Groups,%s\nchangetype: modify\ndelete: memberUid\nmemberUid: robert\n" % Source.SUFFIX)
    assert wait_for(lambda: ours("(cn=devs)", "member")[0].get("member") == [S.user_dn("alice")], timeout=10), \
        ours("(cn=devs)", "member")


@test
def an_entry_with_an_address_and_no_login_becomes_a_contact():
    SRC.add("dn: cn=Vendor Contact,ou=People,{s}\nobjectClass: inetOrgPerson\ncn: Vendor Contact\nsn: Contact\n"
            "mail: vendor@partner.example\n\n".format(s=Source.SUFFIX))
    assert wait_for(lambda: ours("(cn=Vendor Contact)", "objectClass", "ixTargetAddress"), timeout=10)
    c = ours("(cn=Vendor Contact)", "objectClass", "ixTargetAddress", "ixProxyAddresses")[0]
    assert "ixContact" in c["objectclass"] and c["ixtargetaddress"] == ["vendor@partner.example"], c
    assert c["ixproxyaddresses"] == ["SMTP:vendor@partner.example"], c
    assert wait_for(lambda: re.search(r"Contacts +1\n", show())), show()
    SRC.ldap("ldapdelete", "cn=Vendor Contact,ou=People,%s\n" % Source.SUFFIX)
    assert wait_for(lambda: not ours("(cn=Vendor Contact)", "cn"), timeout=10)


@test
def a_run_after_live_changes_finds_nothing_to_do():
    out = sync_run()
    assert "users 4 of 4" in out and "0 added, 0 changed, 0 renamed, 0 disabled or deleted" in out, out
    assert "in step" in show()


@test
def a_restart_resumes_from_the_cookie():
    S.stop()
    SRC.add(person("gina", "Gina", "New", "gina@example.com"))
    SRC.ldap("ldapdelete", "uid=erin,ou=People,%s\n" % Source.SUFFIX)
    mark = S.log_mark("attendant")
    S.start()
    assert wait_for(lambda: user("gina") is not None and user("erin").get("ixsyncdeleted"), timeout=20), \
        (user("gina"), user("erin"))
    # the refresh asked only for what changed since the cookie
    S.wait_log("attendant", "sync corp: refreshed (changes since the last session)", since=mark)


@test
def a_source_that_goes_away_is_followed_again_when_it_comes_back():
    mark = S.log_mark("attendant")
    SRC.halt()
    S.wait_log("attendant", "sync corp: the connection to the source was lost", since=mark)
    assert wait_for(lambda: "reconnecting" in show(), timeout=10), show()
    assert wait_for(lambda: "WARNING    sync source corp cannot be read (the connection to the source was lost" in
                    S.cli("status").stdout or "WARNING    sync source corp cannot be read (cannot read the source" in
                    S.cli("status").stdout, timeout=10), S.cli("status").stdout
    metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % S.ports["metrics"], timeout=10).read().decode()
    assert 'interchange_sync_up{source="corp"} 0' in metrics, metrics[-1500:]
    SRC.start()
    SRC.modify("dn: uid=robert,ou=People,%s\nchangetype: modify\nreplace: title\ntitle: Engineer\n" % Source.SUFFIX)
    assert wait_for(lambda: user("robert").get("title") == ["Engineer"], timeout=20), user("robert")
    assert wait_for(lambda: re.search(r"State +live", show()), timeout=10), show()


@test
def backup_and_restore_keep_what_the_server_holds_for_its_sources():
    bk = os.path.join(S.base, "sync-backup")  # removed with S at the end
    p = S.cli("backup", bk, timeout=120)
    assert p.returncode == 0, p.stderr
    listed = [l.split()[3] for l in open(os.path.join(bk, "MANIFEST")).read().splitlines() if l.startswith("file ")]
    assert "sync/corp.secret" in listed and "sync/corp.cookie" in listed, listed
    assert oct(os.stat(os.path.join(bk, "sync", "corp.secret")).st_mode & 0o777) == "0o600"
    new = os.path.join(S.base, "sync-restored")
    ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES))))
    args = [INTERCHANGE, "--data", new, "restore", bk]
    for name, port in ports.items():
        args += ["--%s-port" % name, str(port)]
    p = run(args, timeout=120)
    assert p.returncode == 0, p.stderr
    secret = os.path.join(new, "sync", "corp.secret")
    assert open(secret).read() == Source.PASSWORD and oct(os.stat(secret).st_mode & 0o777) == "0o600"
    assert open(os.path.join(new, "sync", "corp.cookie")).read() == \
        open(os.path.join(S.data, "sync", "corp.cookie")).read()


OLD_COOKIE = {}


@test
def deleting_the_source_with_keep_leaves_local_recipients():
    OLD_COOKIE["text"] = open(os.path.join(S.data, "sync", "corp.cookie")).read()
    p = S.cli("sync", "del", "corp", "--keep")
    assert p.returncode == 0, (p.stdout, p.stderr)
    a = user("alice")
    assert a is not None and "ixsyncanchor" not in a, a
    assert not os.path.exists(os.path.join(S.data, "sync", "corp.secret"))
    assert not os.path.exists(os.path.join(S.data, "sync", "corp.cookie"))
    assert "No sync sources" in S.cli("sync", "list", check=True).stdout


@test
def a_source_added_again_does_not_take_the_cookie_of_the_one_deleted():
    # what a follower still applying a batch could write just after `sync del`
    cookie = os.path.join(S.data, "sync", "corp.cookie")
    with open(cookie, "w") as f:
        f.write(OLD_COOKIE["text"])
    mark = S.log_mark("attendant")
    add_source()
    S.wait_log("attendant", "sync corp: refreshed (everything read)", since=mark, timeout=20)
    assert wait_for(lambda: open(cookie).read().startswith("source %s\n" % source_uuid()), timeout=10)
    # the users kept as local ones are in the way of the new source: each is a conflict, none is taken over
    assert wait_for(lambda: "login alice is taken" in show(), timeout=10), show()


if __name__ == "__main__":
    try:
        main("test_sync")
    finally:
        if SRC is not None:
            SRC.stop()
