"""test_directory.py - the directory end to end: init/start/stop, recipients through the CLI, address
generation, address-book searches with ldapsearch as a user, ACLs, unique addresses, lists and refint,
and bad input. Runs against a real slapd started by `interchange start` in a temporary folder."""
import imaplib
import json
import os
import smtplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import System, entries, main, run, test, wait_for, INTERCHANGE  # noqa: E402

S = None


def system():
    global S
    if S is None:
        S = System()
    return S


def primary(login):
    """The user's mail attribute as the admin sees it (None until generated)."""
    s = system()
    r = s.ldapsearch("(uid=%s)" % login, "mail", bind_dn=s.admin_dn, password=s.admin_password)
    es = entries(r.stdout)
    return es[0].get("mail", [None])[0] if es else None


@test
def start_status_and_second_start():
    s = system()
    r = s.cli("status", "--json")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["ldap"]["uri"] == s.ldap_uri, st
    assert st["ldap"]["suffix"] == s.suffix and st["ldap"]["admin_dn"] == s.admin_dn, st
    for name, port in s.ports.items():
        assert st["ports"][name] == port, (name, st["ports"])
    names = {x["name"]: x for x in st["services"]}
    assert names["slapd"]["state"] == "running" and names["slapd"]["pid"] > 0, names
    assert os.path.exists("/proc/%d" % names["slapd"]["pid"])
    r = s.cli("start")
    assert r.returncode != 0 and "already running" in r.stderr, r.stderr
    r = s.cli("status")
    assert r.returncode == 0 and r.stdout.split("\n")[0].endswith(": running"), r.stdout
    assert "slapd        running   %d" % names["slapd"]["pid"] in r.stdout, r.stdout


@test
def address_generated_from_policy_with_collisions_and_folding():
    s = system()
    s.cli("user", "add", "jsmith", "--given", "John", "--surname", "Smith", "--password", "pw-john1", check=True)
    s.cli("user", "add", "jsmith2", "--given", "John", "--surname", "Smith", "--password", "pw-john2",
          "--alias", "js@example.com", check=True)
    s.cli("user", "add", "rmuller", "--given", "Renée", "--surname", "Müller-Łukasz", "--password", "pw-rm",
          check=True)
    assert wait_for(lambda: primary("jsmith"), 2.0) == "john.smith@example.com", primary("jsmith")
    assert wait_for(lambda: primary("jsmith2"), 2.0) == "john.smith2@example.com", primary("jsmith2")
    assert wait_for(lambda: primary("rmuller"), 2.0) == "renee.muller-lukasz@example.com", primary("rmuller")
    shown = s.cli("user", "show", "jsmith2", check=True).stdout
    assert "john.smith2@example.com (primary)" in shown and "js@example.com" in shown, shown


@test
def addressbook_search_as_user_hides_hidden_and_passwords():
    s = system()
    s.cli("user", "add", "ghost", "--given", "Hidden", "--surname", "Person", "--password", "pw-ghost",
          "--hidden", check=True)
    assert wait_for(lambda: primary("ghost"), 2.0) == "hidden.person@example.com", primary("ghost")
    q = "john"
    filt = "(|(cn=*%s*)(mail=*%s*)(sn=*%s*)(givenName=*%s*))" % (q, q, q, q)
    r = s.ldapsearch(filt, "cn", "mail", "userPassword", bind_dn=s.user_dn("jsmith"), password="pw-john1")
    assert r.returncode == 0, r.stderr
    found = entries(r.stdout)
    mails = sorted(m for e in found for m in e.get("mail", []))
    assert "john.smith@example.com" in mails and "john.smith2@example.com" in mails, mails
    assert all("userpassword" not in e for e in found), found
    r = s.ldapsearch("(|(cn=*Hidden*)(sn=*Person*))", bind_dn=s.user_dn("jsmith"), password="pw-john1")
    assert r.returncode == 0 and entries(r.stdout) == [], (r.returncode, r.stdout, r.stderr)
    # the hidden user still exists, can bind, and gets mail
    r = run(["ldapwhoami", "-x", "-H", s.ldap_uri, "-D", s.user_dn("ghost"), "-w", "pw-ghost"])
    assert r.returncode == 0, r.stderr
    c = smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=20)
    refused = c.sendmail("someone@outside.example", ["hidden.person@example.com"],
                         "From: someone@outside.example\r\nSubject: to the hidden\r\n\r\nhello\r\n")
    c.quit()
    assert refused == {}, refused

    def ghost_inbox():
        m = imaplib.IMAP4("127.0.0.1", s.ports["imap"], timeout=20)
        try:
            m.login("ghost", "pw-ghost")
            return m.select("INBOX", readonly=True)
        finally:
            m.logout()
    assert wait_for(lambda: ghost_inbox() == ("OK", [b"1"]), 10.0), ghost_inbox()
    # another user's password hash is never readable, not even by the user's own search for it
    r = s.ldapsearch("(uid=jsmith2)", "userPassword", bind_dn=s.user_dn("jsmith"), password="pw-john1")
    assert r.returncode == 0 and entries(r.stdout) == [{"dn": [s.user_dn("jsmith2")]}], (r.returncode, r.stdout)


@test
def anonymous_read_is_off_and_wrong_password_refused():
    s = system()
    r = s.ldapsearch("(uid=*)", "mail")
    assert r.returncode == 32 and entries(r.stdout) == [], (r.returncode, r.stdout)  # the tree is not shown
    r = run(["ldapwhoami", "-x", "-H", s.ldap_uri, "-D", s.user_dn("jsmith"), "-w", "wrong"])
    assert r.returncode == 49, (r.returncode, r.stderr)
    r = run(["ldapwhoami", "-x", "-H", s.ldap_uri, "-D", s.user_dn("jsmith"), "-w", "pw-john1"])
    assert r.returncode == 0 and "uid=jsmith" in r.stdout, r.stdout


@test
def unique_addresses_are_enforced():
    s = system()
    r = s.cli("user", "add", "other", "--given", "O", "--surname", "Ther", "--password", "x",
              "--alias", "JS@example.com")
    assert r.returncode != 0 and "already used" in r.stderr, r.stderr
    # the directory itself refuses a duplicate, whatever the client
    ldif = "dn: %s\nchangetype: modify\nadd: ixProxyAddresses\nixProxyAddresses: smtp:john.smith@example.com\n" % (
        s.user_dn("jsmith2"))
    r = s.ldapmodify(ldif)
    assert r.returncode == 19, (r.returncode, r.stderr)
    r = s.cli("contact", "add", "Impostor", "--email", "john.smith@example.com")
    assert r.returncode != 0 and "already used" in r.stderr, r.stderr
    r = s.cli("user", "add", "jsmith", "--given", "J", "--surname", "S", "--password", "x")
    assert r.returncode != 0 and "already exists" in r.stderr, r.stderr


@test
def lists_nested_membership_and_refint():
    s = system()
    s.cli("contact", "add", "Ext Partner", "--email", "partner@other.org", check=True)
    s.cli("dl", "add", "Sales", "--member", "jsmith", "--member", "Ext Partner", check=True)
    s.cli("dl", "add", "All Staff", "--member", "Sales", "--member", "rmuller", check=True)
    s.cli("dl", "member", "add", "Sales", "js@example.com", check=True)  # by secondary address
    assert wait_for(lambda: "sales@example.com" in s.cli("dl", "show", "Sales").stdout, 2.0)
    shown = s.cli("dl", "show", "Sales", check=True).stdout
    assert "jsmith2 (%s)" % s.user_dn("jsmith2") in shown and "Ext Partner" in shown, shown
    assert wait_for(lambda: "allstaff@example.com" in s.cli("dl", "show", "All Staff").stdout, 2.0)
    shown = s.cli("user", "show", "jsmith", check=True).stdout
    assert "Sales" in shown, shown
    r = s.cli("dl", "member", "add", "Sales", "jsmith")
    assert r.returncode != 0 and "already a member" in r.stderr, r.stderr
    r = s.cli("dl", "member", "add", "Sales", "Sales")
    assert r.returncode != 0 and "a list cannot be a member of itself" in r.stderr, r.stderr
    # a user reads list membership through memberOf
    r = s.ldapsearch("(uid=jsmith)", "memberOf", bind_dn=s.user_dn("jsmith2"), password="pw-john2")
    assert "cn=sales" in r.stdout.lower(), r.stdout
    # deleting a user removes it from every list (refint)
    s.cli("user", "del", "jsmith2", check=True)
    def gone():
        out = s.cli("dl", "show", "Sales").stdout
        return "jsmith2" not in out
    assert wait_for(gone, 5.0), s.cli("dl", "show", "Sales").stdout
    r = s.cli("dl", "member", "del", "Sales", "Ext Partner", check=True)
    assert "Ext Partner" not in s.cli("dl", "show", "Sales").stdout


@test
def public_folder_gets_nickname_address():
    s = system()
    s.cli("folder", "add", "Sales/Leads", check=True)
    r = s.ldapsearch("(ixFolderPath=Sales/Leads)", "mail", bind_dn=s.admin_dn, password=s.admin_password)
    assert wait_for(lambda: "leads@example.com" in s.ldapsearch("(ixFolderPath=Sales/Leads)", "mail",
                    bind_dn=s.admin_dn, password=s.admin_password).stdout, 2.0), r.stdout
    r = s.cli("folder", "add", "/Sales/Leads")
    assert r.returncode != 0 and "already exists" in r.stderr, r.stderr


@test
def bad_input_gets_clear_messages():
    s = system()
    cases = [
        (["user", "add", "a*)(uid=*", "--given", "A", "--surname", "B", "--password", "x"], "not a valid login"),
        (["user", "add", "ok1", "--given", "", "--surname", "B", "--password", "x"], "given name"),
        (["user", "add", "ok1", "--given", "A", "--surname", "B", "--password", ""], "password"),
        (["user", "add", "ok1", "--given", "A" * 300, "--surname", "B", "--password", "x"], "given name"),
        (["user", "add", "ok1", "--given", "A", "--surname", "B", "--password", "x", "--alias", "no-at"],
         "not a valid e-mail address"),
        (["user", "show", "nobody"], "no user with login nobody"),
        (["user", "del", "*"], "not a valid login"),
        (["dl", "member", "add", "Nope", "jsmith"], "no distribution list named Nope"),
        (["dl", "add", "X", "--member", "*)(cn=*"], "no recipient called"),
        (["user", "frobnicate", "x"], "unknown user command"),
        (["contact", "add", "Bad", "--email", "a@b@c"], "not a valid e-mail address"),
    ]
    for args, expect in cases:
        r = s.cli(*args)
        assert r.returncode != 0, (args, r.stdout)
        assert expect in r.stderr, (args, r.stderr)
    # special characters that are legal in names are escaped, not refused
    r = s.cli("dl", "add", "R&D, Paris + Lyon", check=True)
    r = s.cli("dl", "show", "R&D, Paris + Lyon", check=True)
    assert "R&D, Paris + Lyon" in r.stdout, r.stdout
    s.cli("user", "add", "zoe", "--given", "Zoë", "--surname", "D'Arc (Jeanne)", "--password", "p", check=True)
    assert wait_for(lambda: primary("zoe"), 2.0) == "zoe.darcjeanne@example.com", primary("zoe")
    # the directory was left as it was: no entry for the refused login
    r = s.ldapsearch("(uid=ok1)", bind_dn=s.admin_dn, password=s.admin_password)
    assert entries(r.stdout) == [], r.stdout


@test
def init_refuses_existing_folder_and_bad_arguments():
    s = system()
    r = s.cli("init", "--domain", "example.com")
    assert r.returncode != 0 and "never overwrites" in r.stderr, r.stderr
    r = run([INTERCHANGE, "--data", "/tmp/ix-never-created", "init", "--domain", "bad_domain!"])
    assert r.returncode != 0 and "not a valid domain" in r.stderr, r.stderr
    assert not os.path.exists("/tmp/ix-never-created")
    r = run([INTERCHANGE, "--data", "/tmp/ix-never-created", "init", "--domain", "a.com", "--smtp-port", "99999"])
    assert r.returncode != 0 and "1 to 65535" in r.stderr, r.stderr
    r = run([INTERCHANGE, "--data", "/tmp/ix-never-created", "status"])
    assert r.returncode != 0 and "interchange init" in r.stderr, r.stderr
    r = run([INTERCHANGE, "--help"])
    assert r.returncode == 0 and "init" in r.stdout
    for cmd in ["init", "start", "stop", "status", "user", "contact", "dl", "folder", "server"]:
        r = run([INTERCHANGE, cmd, "--help"])
        assert r.returncode == 0 and "usage" in r.stdout, (cmd, r.stdout, r.stderr)


@test
def damaged_data_folder_is_refused_in_words():
    """A folder init did not finish, or one that lost a part, is named in words; nothing starts half-way (slapd
    would otherwise make an empty directory database and serve it)."""
    intact = System(start=False)
    try:
        cases = [("directory/slapd.d", "directory configuration"),
                 ("directory/data/data.mdb", "serve an empty directory"),
                 ("tls/cert.pem", "TLS certificate"),
                 ("tls/key.pem", "TLS private key")]
        for part, expect in cases:
            victim = os.path.join(intact.data, part)
            os.rename(victim, victim + ".away")
            try:
                r = intact.cli("start", timeout=30)
            finally:
                os.rename(victim + ".away", victim)
            assert r.returncode != 0, (part, r.stdout)
            assert expect in r.stderr and victim in r.stderr, (part, r.stderr)
            st = intact.cli("status")
            assert st.stdout.split("\n")[0].endswith(": not running"), st.stdout
        intact.start()
    finally:
        intact.destroy()


@test
def restrictions_forwarding_delegation_quota():
    s = system()
    admin = dict(bind_dn=s.admin_dn, password=s.admin_password)
    s.cli("user", "restrict", "jsmith", "--accept-from", "rmuller", "--accept-from", "Sales",
          "--authenticated-only", "--max-size", "1000000", check=True)
    s.cli("dl", "restrict", "Sales", "--members-only", check=True)
    s.cli("user", "forward", "jsmith", "--to", "rmuller", "--keep-copy", check=True)
    s.cli("user", "delegate", "jsmith", "--send-as", "rmuller", check=True)
    s.cli("user", "delegate", "jsmith", "--full-access", "rmuller", check=True)
    s.cli("user", "quota", "jsmith", "--bytes", "5000000", "--messages", "100", check=True)
    e = entries(s.ldapsearch("(uid=jsmith)", "ixAcceptFrom", "ixRequireAuthenticatedSender", "ixMaxReceiveSize",
                             "ixForwardTo", "ixDeliverAndRedirect", "ixSendAs", "ixFullAccess", "ixQuotaBytes",
                             **admin).stdout)[0]
    assert e["ixfullaccess"] == [s.user_dn("rmuller")], e
    assert sorted(x.lower() for x in e["ixacceptfrom"]) == sorted(
        [s.user_dn("rmuller").lower(), ("cn=Sales,ou=Recipients," + s.suffix).lower()]), e
    assert e["ixrequireauthenticatedsender"] == ["TRUE"] and e["ixmaxreceivesize"] == ["1000000"], e
    assert e["ixforwardto"] == [s.user_dn("rmuller")] and e["ixdeliverandredirect"] == ["TRUE"], e
    assert e["ixsendas"] == [s.user_dn("rmuller")] and e["ixquotabytes"] == ["5000000"], e
    e = entries(s.ldapsearch("(cn=Sales)", "ixMembersOnly", **admin).stdout)[0]
    assert e["ixmembersonly"] == ["TRUE"], e
    for args, expect in [(("user", "delegate", "jsmith", "--send-as", "rmuller"), "already has"),
                         (("user", "delegate", "jsmith", "--full-access", "Sales"), "not a user with a mailbox"),
                         (("user", "delegate", "Sales", "--full-access", "rmuller"), "not a user with a mailbox"),
                         (("user", "forward", "jsmith", "--to", "jsmith"), "itself"),
                         (("dl", "restrict", "jsmith", "--members-only"), "not one"),
                         (("user", "restrict", "jsmith", "--accept-from", "nobody-here"), "no recipient called"),
                         (("user", "quota", "jsmith", "--bytes", "lots"), "whole numbers"),
                         (("user", "forward", "jsmith"), "--to R or --none")]:
        r = s.cli(*args)
        assert r.returncode != 0 and expect in r.stderr, (args, r.stderr)
    s.cli("user", "restrict", "jsmith", "--clear", check=True)
    s.cli("user", "forward", "jsmith", "--none", check=True)
    s.cli("user", "delegate", "jsmith", "--send-as", "rmuller", "--revoke", check=True)
    s.cli("user", "delegate", "jsmith", "--full-access", "rmuller", "--revoke", check=True)
    e = entries(s.ldapsearch("(uid=jsmith)", "ixAcceptFrom", "ixForwardTo", "ixSendAs", "ixFullAccess",
                             "ixMaxReceiveSize", **admin).stdout)[0]
    assert set(e) == {"dn"}, e


@test
def server_settings_live_in_the_directory():
    s = system()
    r = s.cli("server", "list", check=True)
    assert "mail.example.com" in r.stdout and "(this server)" in r.stdout, r.stdout
    r = s.cli("server", "set", "smtp.max_message_size", "10m", check=True)
    r = s.ldapsearch("(objectClass=ixServer)", "ixServerSetting", "ixSmtpPort", bind_dn=s.admin_dn,
                     password=s.admin_password)
    e = entries(r.stdout)[0]
    assert "smtp.max_message_size=10485760" in e["ixserversetting"], e
    assert e["ixsmtpport"] == [str(s.ports["smtp"])], e
    s.cli("server", "set", "smtp.max_message_size", "20m", check=True)
    shown = s.cli("server", "show", check=True).stdout
    assert "20971520" in shown and "smtp.max_recipients" in shown, shown
    for args, expect in [(("server", "set", "smtp.max_message_size", "12"), "1024 to"),
                         (("server", "set", "no.such", "1"), "no setting called"),
                         (("server", "set", "smtp.max_errors", "-3"), "whole number"),
                         (("server", "show", "nosuchhost"), "no server named")]:
        r = s.cli(*args)
        assert r.returncode != 0 and expect in r.stderr, (args, r.stderr)


@test
def stop_leaves_nothing_and_stop_twice_is_fine():
    s = system()
    st = json.loads(s.cli("status", "--json").stdout)
    pids = [x["pid"] for x in st["services"]]
    r = s.cli("stop")
    assert r.returncode == 0 and "stopped" in r.stdout, r.stdout
    for pid in pids:
        assert not os.path.exists("/proc/%d" % pid) or "Z" in open("/proc/%d/status" % pid).read(), pid
    r = s.cli("stop")
    assert r.returncode == 0 and "not running" in r.stdout, r.stdout
    r = s.cli("user", "list")
    assert r.returncode != 0 and "not running" in r.stderr, r.stderr
    r = s.cli("status")
    assert r.returncode == 3
    # data survives a restart
    s.start()
    assert primary("jsmith") == "john.smith@example.com"


def schema_values(s, kind):
    """cn=config's definitions of kind (olcAttributeTypes, olcObjectClasses) in our schema entry: {name: value}."""
    r = run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-Q", "-Y", "EXTERNAL", "-H", ldapi(s), "-b",
             "cn=schema,cn=config", "-s", "one", "(cn=*interchange)", kind], check=True)
    dn = [line[4:] for line in r.stdout.splitlines() if line.startswith("dn: ")][0]
    vals = [line.split(": ", 1)[1] for line in r.stdout.splitlines() if line.startswith(kind + ": ")]
    return dn, {v.split(" NAME '", 1)[1].split("'", 1)[0]: v for v in vals}


def ldapi(s):
    return "ldapi://" + os.path.join(s.data, "run", "ldapi").replace("/", "%2F")


def config_modify(s, ldif):
    """ldapmodify over ldapi as the configuration's administrator (SASL EXTERNAL, as root)."""
    return run(["ldapmodify", "-Q", "-Y", "EXTERNAL", "-H", ldapi(s)], input=ldif)


@test
def schema_upgrade_replaces_older_definitions():
    # a directory as the version before LDAPS made it: ixServer without ixLdapsPort in its MAY list, no ixLdapsPort
    # type, no ixLdapsPort in the server entry; rewritten over cn=config the way an old version had it loaded
    s = System()
    server_dn = "cn=mail.example.com,ou=Servers,ou=Configuration," + s.suffix
    assert s.ldapmodify("dn: %s\nchangetype: modify\ndelete: ixLdapsPort\n" % server_dn).returncode == 0
    dn, classes = schema_values(s, "olcObjectClasses")
    current = classes["ixServer"]
    assert " $ ixLdapsPort $ " in current, current
    index = current[:current.index("}") + 1]
    r = config_modify(s, "dn: %s\nchangetype: modify\ndelete: olcObjectClasses\nolcObjectClasses: %s\n-\n"
                         "add: olcObjectClasses\nolcObjectClasses: %s\n" % (dn, index, current.replace(" $ ixLdapsPort", "")))
    assert r.returncode == 0, r.stderr
    _, types = schema_values(s, "olcAttributeTypes")
    r = config_modify(s, "dn: %s\nchangetype: modify\ndelete: olcAttributeTypes\nolcAttributeTypes: %s\n" %
                      (dn, types["ixLdapsPort"][:types["ixLdapsPort"].index("}") + 1]))
    assert r.returncode == 0, r.stderr
    assert "ixLdapsPort" not in schema_values(s, "olcAttributeTypes")[1]
    r = s.ldapmodify("dn: %s\nchangetype: modify\nadd: ixLdapsPort\nixLdapsPort: 636\n" % server_dn)
    assert r.returncode != 0, "the old schema took ixLdapsPort"
    # nor did its refint keep ixFullAccess (full access came later)
    refint = "olcOverlay={2}refint,olcDatabase={1}mdb,cn=config"
    r = config_modify(s, "dn: %s\nchangetype: modify\ndelete: olcRefintAttribute\nolcRefintAttribute: ixFullAccess\n"
                      % refint)
    assert r.returncode == 0, r.stderr

    def refint_attrs():
        r = run(["ldapsearch", "-LLL", "-Q", "-Y", "EXTERNAL", "-H", ldapi(s), "-b", refint, "-s", "base",
                 "olcRefintAttribute"], check=True)
        return entries(r.stdout)[0]["olcrefintattribute"]
    assert "ixFullAccess" not in refint_attrs()
    s.stop()
    mark = s.log_mark("attendant")
    s.start()
    s.wait_log("attendant", "schema: added 1 definitions this directory lacked and replaced 1 older ones", mark, 45)
    s.wait_log("attendant", "directory: up to date with this version", mark, 45)
    assert schema_values(s, "olcObjectClasses")[1]["ixServer"] == current
    assert "ixFullAccess" in refint_attrs() and "directory: 1 attributes added to those refint keeps" in \
        s.log("attendant", mark)
    # the entry took the port the server listens on, and takes a new one
    ldaps = json.loads(s.cli("status", "--json", check=True).stdout)["ports"]["ldaps"]
    assert ldaps == s.ports["ldaps"]
    r = s.ldapsearch("(objectClass=ixServer)", "ixLdapsPort", bind_dn=s.admin_dn, password=s.admin_password)
    assert entries(r.stdout)[0]["ixldapsport"] == [str(ldaps)], r.stdout
    assert "ldaps %d" % ldaps in s.cli("server", "show", check=True).stdout
    r = s.ldapmodify("dn: %s\nchangetype: modify\nreplace: ixLdapsPort\nixLdapsPort: %d\n" % (server_dn, ldaps))
    assert r.returncode == 0, r.stderr

    # a directory of this version is not written at start: its schema file in slapd.d and the server entry stay
    def state():
        folder = os.path.join(s.data, "directory", "slapd.d", "cn=config", "cn=schema")
        files = {f: (os.stat(os.path.join(folder, f)).st_mtime_ns, open(os.path.join(folder, f)).read())
                 for f in os.listdir(folder) if f.endswith("interchange.ldif")}
        r = s.ldapsearch("(objectClass=ixServer)", "modifyTimestamp", "entryCSN", bind_dn=s.admin_dn,
                         password=s.admin_password)
        return files, entries(r.stdout)
    before = state()
    assert len(before[0]) == 1, before
    s.stop()
    mark = s.log_mark("attendant")
    s.start()
    s.wait_log("attendant", "directory: up to date with this version (0 changes made)", mark, 45)
    assert "schema: added" not in s.log("attendant", mark)
    assert state() == before


if __name__ == "__main__":
    main("directory")
