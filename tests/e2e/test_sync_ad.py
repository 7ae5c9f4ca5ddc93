"""test_sync_ad.py - a sync source of type ad: a second slapd loaded with an Active Directory-like schema
(tests/e2e/ad_schema.ldif: objectGUID, sAMAccountName, userPrincipalName, proxyAddresses, userAccountControl,
memberOf, uSNChanged, isDeleted; classes user, computer, group, contact) and without RFC 4533, as a domain
controller offers none. The test does what the domain controller would: each write sets a new uSNChanged, each
object gets a random objectGUID, and a deletion turns the object into a tombstone (moved under cn=Deleted Objects,
isDeleted TRUE). The attendant reads the whole source once, then asks for changes every second: users (login from
sAMAccountName, SMTP:/smtp: proxyAddresses, the disabled bit), contacts, mail-enabled groups, renames and
deletions arrive without `sync run`."""
import base64
import os
import re
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import System, imap_login_ok, main, run, setup, test, wait_for  # noqa: E402
from harness import smtp_auth_ok as harness_smtp_auth_ok  # noqa: E402
from ad_ranges import RangeProxy  # noqa: E402
from ldap_source import Source, recipients, synced_user  # noqa: E402

S = None
SRC = None
PEOPLE = "ou=People," + Source.SUFFIX
GROUPS = "ou=Groups," + Source.SUFFIX
DELETED = "cn=Deleted Objects," + Source.SUFFIX


class DomainController:
    """What Active Directory does on each write, done by hand: uSNChanged and objectGUID."""

    def __init__(self, src):
        self.src = src
        self.usn = 1000
        self.guids = {}

    def next_usn(self):
        self.usn += 1
        return self.usn

    def add(self, dn, *lines):
        guid = os.urandom(16)
        self.guids[dn.lower()] = guid
        self.src.add("dn: %s\n%s\nobjectGUID:: %s\nuSNChanged: %d\n\n" % (
            dn, "\n".join(lines), base64.b64encode(guid).decode(), self.next_usn()))
        return str(uuid.UUID(bytes_le=guid))  # the string form AD tools show

    def add_many(self, entries):
        """Adds (dn, lines) entries with one ldapadd."""
        ldif = []
        for dn, lines in entries:
            guid = os.urandom(16)
            self.guids[dn.lower()] = guid
            ldif.append("dn: %s\n%s\nobjectGUID:: %s\nuSNChanged: %d\n\n" % (
                dn, "\n".join(lines), base64.b64encode(guid).decode(), self.next_usn()))
        self.src.add("".join(ldif))

    def modify(self, dn, *changes):
        self.src.modify("dn: %s\nchangetype: modify\n%s\n-\nreplace: uSNChanged\nuSNChanged: %d\n" % (
            dn, "\n-\n".join(changes), self.next_usn()))

    def delete(self, dn):
        """A tombstone: moved to Deleted Objects under a new name, isDeleted TRUE, a new uSNChanged."""
        rdn = "cn=tombstone-%d" % self.next_usn()
        self.src.ldap("ldapmodrdn", "%s\n%s\n" % (dn, rdn), "-r", "-s", DELETED)
        self.modify("%s,%s" % (rdn, DELETED), "replace: isDeleted\nisDeleted: TRUE")


DC = None


def user_entry(cn, sam, *more, uac=512, classes=("user",)):
    return ["objectClass: " + c for c in classes] + ["cn: " + cn, "sn: " + cn.split()[-1], "sAMAccountName: " + sam,
                                                    "userPrincipalName: %s@corp.test" % sam,
                                                    "userAccountControl: %d" % uac] + list(more)


def ours(filt, *attrs):
    return recipients(S, filt, *attrs)


def user(login):
    return synced_user(S, login)


def show():
    return S.cli("sync", "show", "ad", check=True).stdout


GUID = {}


@setup
def a_domain_controller():
    global S, SRC, DC
    S = System()
    SRC = Source([os.path.join(os.path.dirname(os.path.abspath(__file__)), "ad_schema.ldif")], syncprov=False)
    DC = DomainController(SRC)
    SRC.add("dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: corp\no: Corp\n\n"
            "dn: %s\nobjectClass: organizationalUnit\nou: People\n\n"
            "dn: %s\nobjectClass: organizationalUnit\nou: Groups\n\n"
            "dn: %s\nobjectClass: organizationalRole\ncn: Deleted Objects\n\n" % (Source.SUFFIX, PEOPLE, GROUPS,
                                                                                   DELETED))
    GUID["jdoe"] = DC.add("cn=John Doe," + PEOPLE, *user_entry(
        "John Doe", "jdoe", "givenName: John", "mail: j.doe@example.com", "proxyAddresses: SMTP:john.doe@example.com",
        "proxyAddresses: smtp:jdoe@example.com", "proxyAddresses: X500:/o=Corp/ou=Exchange/cn=Recipients/cn=jdoe",
        "proxyAddresses: SIP:jdoe@example.com", "userPassword: jdoe-at-corp"))
    GUID["asmith"] = DC.add("cn=Anna Smith," + PEOPLE, *user_entry(
        "Anna Smith", "asmith", "mail: anna.smith@example.com", "userPassword: anna-at-corp", uac=514))  # 0x200 | 0x2: disabled
    DC.add("cn=WS01," + PEOPLE, *user_entry("WS01", "WS01$", classes=("computer",), uac=4096))
    DC.add("cn=Partner Contact," + PEOPLE, "objectClass: contact", "cn: Partner Contact", "sn: Contact",
           "mail: partner@partner.example")
    DC.add("cn=Sales," + GROUPS, "objectClass: group", "cn: Sales", "mail: sales@example.com",
           "proxyAddresses: SMTP:sales@example.com", "member: cn=John Doe," + PEOPLE,
           "member: cn=Anna Smith," + PEOPLE, "groupType: -2147483640")
    DC.add("cn=Security Only," + GROUPS, "objectClass: group", "cn: Security Only", "member: cn=John Doe," + PEOPLE,
           "groupType: -2147483646")
    p = S.cli("sync", "add", "ad", "--type", "ad", "--uri", SRC.uri, "--bind-dn", Source.ADMIN, "--password",
              Source.PASSWORD, "--base", PEOPLE, "--groups-base", GROUPS, "--poll-seconds", "1", "--auth",
              "passthrough")
    assert p.returncode == 0, (p.stdout, p.stderr)


@test
def users_come_with_their_ad_names_and_addresses():
    assert wait_for(lambda: user("jdoe") is not None and ours("(cn=Sales)", "member"), timeout=20), show()
    j = user("jdoe")
    assert j["ixsyncanchor"] == [GUID["jdoe"]], (j["ixsyncanchor"], GUID["jdoe"])
    assert j["mail"] == ["john.doe@example.com"], j
    # SMTP: names the primary, smtp: and mail the others; X500: and SIP: are not mail addresses
    assert sorted(j["ixproxyaddresses"]) == ["SMTP:john.doe@example.com", "smtp:j.doe@example.com",
                                             "smtp:jdoe@example.com"], j
    assert j["givenname"] == ["John"] and j["cn"] == ["John Doe"], j
    assert "Type              ad" in show() and not re.search(r"error: .*X500", show()), show()


@test
def a_disabled_account_cannot_sign_in_and_is_hidden():
    a = user("asmith")
    assert a is not None and a.get("pwdaccountlockedtime") == ["000001010000Z"], a
    assert a.get("ixhidefromaddressbook") == ["TRUE"] and "ixsyncdeleted" not in a, a


def smtp_auth_ok(login, password):
    return harness_smtp_auth_ok(S.ports["submission"], login, password)


@test
def users_sign_in_with_their_password_at_the_source():
    assert "Sign-in           passthrough" in show() and "Poll every (s)    1\n" in show(), show()
    imap = S.ports["imap"]
    assert wait_for(lambda: imap_login_ok(imap, "jdoe", "jdoe-at-corp"), timeout=15)
    assert not imap_login_ok(imap, "jdoe", "wrong") and "userpassword" not in user("jdoe")
    assert smtp_auth_ok("jdoe", "jdoe-at-corp") and not smtp_auth_ok("jdoe", "wrong")
    # changed at the source: the new password works here at once, the old one no more
    SRC.modify("dn: cn=John Doe,%s\nchangetype: modify\nreplace: userPassword\nuserPassword: jdoe-new\n" % PEOPLE)
    assert imap_login_ok(imap, "jdoe", "jdoe-new") and not imap_login_ok(imap, "jdoe", "jdoe-at-corp")
    assert smtp_auth_ok("jdoe", "jdoe-new") and not smtp_auth_ok("jdoe", "jdoe-at-corp")
    # a bind to our own directory (an address book, an application) goes the same way
    assert run(["ldapwhoami", "-x", "-H", S.ldap_uri, "-D", S.user_dn("jdoe"), "-w", "jdoe-new"]).returncode == 0
    assert run(["ldapwhoami", "-x", "-H", S.ldap_uri, "-D", S.user_dn("jdoe"), "-w", "jdoe-at-corp"]).returncode != 0
    # disabled at the source, so locked here: refused with the right password too
    assert not imap_login_ok(imap, "asmith", "anna-at-corp") and not smtp_auth_ok("asmith", "anna-at-corp")


@test
def computers_and_groups_without_mail_are_not_recipients():
    assert not ours("(uid=WS01$)", "uid") and not ours("(cn=WS01)", "cn")
    assert not ours("(cn=Security Only)", "cn")


@test
def contacts_and_mail_enabled_groups():
    c = ours("(cn=Partner Contact)", "objectClass", "ixTargetAddress")[0]
    assert "ixContact" in c["objectclass"] and c["ixtargetaddress"] == ["partner@partner.example"], c
    sales = ours("(cn=Sales)", "member", "mail")[0]
    assert sorted(sales["member"]) == sorted([S.user_dn("jdoe"), S.user_dn("asmith")]), sales
    assert sales["mail"] == ["sales@example.com"], sales
    assert re.search(r"Contacts +1\n", show()) and re.search(r"Lists +1\n", show()), show()


@test
def changes_arrive_by_usn_without_a_run():
    DC.modify("cn=John Doe," + PEOPLE, "replace: title\ntitle: Sales Lead")
    assert wait_for(lambda: user("jdoe").get("title") == ["Sales Lead"], timeout=10), user("jdoe")
    DC.modify("cn=Anna Smith," + PEOPLE, "replace: userAccountControl\nuserAccountControl: 512")  # enabled
    assert wait_for(lambda: "pwdaccountlockedtime" not in user("asmith"), timeout=10), user("asmith")
    assert "ixhidefromaddressbook" not in user("asmith")
    assert re.search(r"State +live", show()), show()


@test
def a_new_logon_name_renames_the_same_recipient():
    guid = user("asmith")["ixmailboxguid"]
    DC.modify("cn=Anna Smith," + PEOPLE, "replace: sAMAccountName\nsAMAccountName: annasmith")
    assert wait_for(lambda: user("annasmith") is not None, timeout=10), show()
    assert user("asmith") is None and user("annasmith")["ixmailboxguid"] == guid


@test
def the_user_principal_name_follows_for_kerberos():
    # userPrincipalName becomes ixUserPrincipalName (with its class): the principal a user of the domain signs in
    # with over GSSAPI (docs/sign-in.md)
    j = user("jdoe")
    assert j["ixuserprincipalname"] == ["jdoe@corp.test"] and "ixKerberosPrincipal" in j["objectclass"], j
    DC.modify("cn=John Doe," + PEOPLE, "replace: userPrincipalName\nuserPrincipalName: john.doe@corp.test")
    assert wait_for(lambda: user("jdoe")["ixuserprincipalname"] == ["john.doe@corp.test"], timeout=10), show()
    DC.modify("cn=John Doe," + PEOPLE, "delete: userPrincipalName")
    assert wait_for(lambda: "ixuserprincipalname" not in user("jdoe"), timeout=10), show()
    assert "ixKerberosPrincipal" not in user("jdoe")["objectclass"]
    DC.modify("cn=John Doe," + PEOPLE, "add: userPrincipalName\nuserPrincipalName: jdoe@corp.test")
    assert wait_for(lambda: user("jdoe").get("ixuserprincipalname") == ["jdoe@corp.test"], timeout=10), show()


@test
def a_tombstone_disables_the_user():
    guid = user("jdoe")["ixmailboxguid"]
    DC.delete("cn=John Doe," + PEOPLE)
    assert wait_for(lambda: user("jdoe").get("ixsyncdeleted"), timeout=10), user("jdoe")
    j = user("jdoe")
    assert j["pwdaccountlockedtime"] == ["000001010000Z"] and j["ixmailboxguid"] == guid, j
    assert S.user_dn("jdoe") not in ours("(cn=Sales)", "member")[0].get("member", [])


@test
def a_restart_resumes_after_the_last_usn():
    S.stop()
    DC.add("cn=Carl New," + PEOPLE, *user_entry("Carl New", "cnew", "mail: carl@example.com", "userPassword: carl-at-corp"))
    mark = S.log_mark("attendant")
    S.start()
    assert wait_for(lambda: user("cnew") is not None, timeout=20), show()
    S.wait_log("attendant", "sync ad: asking for changes after uSNChanged", since=mark)


@test
def without_the_source_users_sign_in_here_again():
    assert wait_for(lambda: imap_login_ok(S.ports["imap"], "cnew", "carl-at-corp"), timeout=10)
    p = S.cli("sync", "del", "ad", "--keep")
    assert p.returncode == 0, p.stderr
    # the overlay has nowhere to send binds: a user without a password here cannot sign in
    assert wait_for(lambda: not imap_login_ok(S.ports["imap"], "cnew", "carl-at-corp"), timeout=10)
    S.cli("user", "passwd", "cnew", "--password", "carl-here", check=True)
    assert wait_for(lambda: imap_login_ok(S.ports["imap"], "cnew", "carl-here"), timeout=10)


@test
def a_group_of_3500_members_arrives_range_by_range():
    # a second source, read through a proxy that answers as a domain controller does for more than 1500 values
    # (ad_ranges.py): member;range=0-1499, then 1500-2999 and 3000-* when asked for
    big = "ou=Big," + Source.SUFFIX
    SRC.add("dn: %s\nobjectClass: organizationalUnit\nou: Big\n\n" % big)
    n = 3500
    DC.add_many([("cn=Big %d,%s" % (i, big), user_entry("Big %d" % i, "big%d" % i)) for i in range(1, n + 1)])
    DC.add("cn=biggroup," + big, "objectClass: group", "cn: biggroup", "mail: big@example.com",
           *["member: cn=Big %d,%s" % (i, big) for i in range(1, n + 1)])
    proxy = RangeProxy(SRC.port)
    try:
        p = S.cli("sync", "add", "big", "--type", "ad", "--uri", proxy.uri, "--bind-dn", Source.ADMIN, "--password",
                  Source.PASSWORD, "--base", big, "--poll-seconds", "1")
        assert p.returncode == 0, (p.stdout, p.stderr)
        assert wait_for(lambda: len(ours("(cn=biggroup)", "member")[:1] and
                                    ours("(cn=biggroup)", "member")[0].get("member", [])) == n, timeout=600), \
            S.cli("sync", "show", "big").stdout
        assert proxy.ranged_searches >= 2, proxy.ranged_searches  # 1500-* and 3000-*
        members = {m.lower() for m in ours("(cn=biggroup)", "member")[0]["member"]}
        assert members == {S.user_dn("big%d" % i).lower() for i in range(1, n + 1)}
        # a change of the group arrives by uSNChanged, ranged again
        DC.modify("cn=biggroup," + big, "delete: member\nmember: cn=Big 3400,%s" % big)
        assert wait_for(lambda: len(ours("(cn=biggroup)", "member")[0]["member"]) == n - 1, timeout=60)
    finally:
        proxy.stop()


if __name__ == "__main__":
    try:
        main("test_sync_ad")
    finally:
        if SRC is not None:
            SRC.stop()
