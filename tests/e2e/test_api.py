"""test_api.py - the REST API under https://HOST:HTTPS-PORT/api/v1/ with curl (a real client) and Python's own HTTPS
client: the OpenAPI document, HTTP Basic and the session cookie with its CSRF token, recipients (search, pages, users,
contacts, lists, quotas, delete), servers and their settings, the roles `interchange role` manages (a view-only admin
changes nothing, a recipient admin changes recipients but no server, a user only reads), sign-in throttling and the
audit log of the API and the command line (`interchange audit`)."""
import base64
import http.client
import json
import os
import smtplib
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apiclient  # noqa: E402
from apiclient import HOST  # noqa: E402
from harness import ENV, System, main, run, setup, test, wait_for  # noqa: E402

S = None
CA = None


def curl(method, path, login=None, password=None, body=None, *extra):
    return apiclient.curl(S, CA, method, path, login, password, body, *extra)


class Py:
    """Python's http.client over TLS, verifying the server's certificate: one connection, kept alive."""

    def __init__(self):
        ctx = ssl.create_default_context(cafile=CA)
        self.conn = http.client.HTTPSConnection("127.0.0.1", S.ports["https"], context=ctx)
        ctx.check_hostname = False  # the certificate names HOST; 127.0.0.1 is where it listens
        self.cookie = None
        self.csrf = None

    def call(self, method, path, body=None, login=None, password=None, csrf=True):
        headers = {"Host": HOST}
        if login is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % (login, password)).encode()).decode()
        if self.cookie:
            headers["Cookie"] = self.cookie
            if csrf and self.csrf:
                headers["X-CSRF-Token"] = self.csrf
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            headers["Content-Type"] = "application/json"
        self.conn.request(method, "/api/v1/" + path, body=data, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        return resp.status, (json.loads(raw) if raw else None), resp


def admin(method, path, body=None):
    return curl(method, path, "admin", S.admin_password, body)


@setup
def system():
    global S, CA
    S = System()
    CA = apiclient.server_ca(S)
    for login, given in (("olga", "Olga"), ("rita", "Rita"), ("vera", "Vera"), ("ulla", "Ulla")):
        S.cli("user", "add", login, "--given", given, "--surname", "Admin", "--password", "pw-" + login, check=True)
    S.cli("role", "add", "Organisation Admins", "olga", check=True)
    S.cli("role", "add", "Recipient Admins", "rita", check=True)
    S.cli("role", "add", "View-Only Admins", "vera", check=True)


def access_rules(system):
    """The directory database's access rules, in order, without their {n} prefixes."""
    r = run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-Q", "-Y", "EXTERNAL", "-H",
             "ldapi://" + os.path.join(system.data, "run", "ldapi").replace("/", "%2F"), "-b",
             "olcDatabase={1}mdb,cn=config", "-s", "base", "olcAccess"])
    assert r.returncode == 0, r.stderr
    return [line.split("}", 1)[1] for line in r.stdout.splitlines() if line.startswith("olcAccess: {")]


def check_rules(system):
    """The five role rules first, then the password rule, and no rule twice (the upgrades ran at start)."""
    rules = access_rules(system)
    assert len(set(rules)) == len(rules), rules
    assert all("ou=Roles," in r for r in rules[:5]) and rules[5].startswith("to attrs=userPassword"), rules
    assert sum("ou=Roles," in r for r in rules) == 5, rules


@test
def access_rules_in_order():
    check_rules(S)


@test
def openapi_document():
    code, doc, _ = curl("GET", "openapi.json")
    assert code == 200 and doc["openapi"].startswith("3.1"), doc
    for path in ("/recipients", "/users", "/session", "/servers/{name}/settings", "/audit"):
        assert path in doc["paths"], path


@test
def https_only_and_sign_in_needed():
    r = run(["curl", "-sS", "-w", "\n%{http_code}", "http://127.0.0.1:%d/api/v1/recipients" % S.ports["http"]])
    body, _, code = r.stdout.rpartition("\n")
    assert code == "403" and "HTTPS" in json.loads(body)["error"], r.stdout
    code, data, _ = curl("GET", "recipients")
    assert code == 401 and "sign in" in data["error"], data
    code, data, _ = curl("GET", "recipients", "admin", "wrong")
    assert code == 401 and "wrong login or password" in data["error"], data


@test
def roles_listed():
    out = S.cli("role", "list", check=True).stdout
    for role, login in (("Organisation Admins", "olga"), ("Recipient Admins", "rita"), ("View-Only Admins", "vera")):
        assert any(line.startswith(role) and line.split()[-1] == login for line in out.splitlines()), out
    r = S.cli("role", "add", "Root", "olga")
    assert r.returncode == 1 and "is not a role" in r.stderr, r.stderr
    code, data, _ = curl("GET", "roles", "vera", "pw-vera")
    assert code == 200 and data["your_role"] == "View-Only Admins" and "rita" in data["roles"]["Recipient Admins"], data


@test
def create_user_and_find_it():
    code, data, text = admin("POST", "users", {"login": "bob", "given": "Bob", "surname": "Builder",
                                                "password": "pw-bob", "aliases": ["builder@example.com"]})
    assert code == 201 and data["login"] == "bob" and data["kind"] == "user", text
    assert "smtp:builder@example.com" in [a.lower() for a in data["addresses"]], data
    # the attendant gives it its primary address from the recipient policy
    def primary():
        return admin("GET", "users/bob")[1].get("mail")
    assert wait_for(primary, timeout=20) == "bob.builder@example.com", admin("GET", "users/bob")
    code, data, _ = admin("GET", "recipients?q=builder")
    assert code == 200 and [r["login"] for r in data["items"]] == ["bob"], data
    code, data, _ = admin("POST", "users", {"login": "bob", "given": "B", "surname": "Two", "password": "x"})
    assert code == 409 and data["error"], data
    code, data, _ = admin("POST", "users", {"given": "No login"})
    assert code == 400 and "login" in data["error"], data
    code, data, _ = curl("POST", "users", "admin", S.admin_password, None, "-H", "Content-Type: application/json",
                         "--data-binary", "{not json")
    assert code == 400 and "not JSON" in data["error"], data


@test
def pages_and_kinds():
    for i in range(5):
        S.cli("user", "add", "page%d" % i, "--given", "Page", "--surname", "N%d" % i, "--password", "pw", check=True)
    code, first, _ = admin("GET", "users?q=page&limit=2")
    code2, second, _ = admin("GET", "users?q=page&limit=2&offset=2")
    code3, rest, _ = admin("GET", "users?q=page&offset=4&limit=10")
    assert code == code2 == code3 == 200 and first["total"] == 5, first
    names = [r["login"] for r in first["items"] + second["items"] + rest["items"]]
    assert sorted(names) == ["page%d" % i for i in range(5)] and len(set(names)) == 5, names
    code, data, _ = admin("GET", "recipients?kind=robot")
    assert code == 400 and "user, contact, list or folder" in data["error"], data
    code, data, _ = admin("GET", "recipients?limit=100000")
    assert code == 400 and "limit" in data["error"], data


@test
def contacts_lists_quota_delete():
    code, data, text = admin("POST", "contacts", {"name": "Ext Partner", "email": "partner@other.example"})
    assert code == 201 and data["kind"] == "contact", text
    code, data, text = admin("POST", "lists", {"name": "team", "members": ["bob"]})
    assert code == 201 and data["kind"] == "list", text
    code, data, text = admin("POST", "lists/team/members", {"recipient": "Ext Partner"})
    assert code == 201, text
    assert "Ext Partner" in S.cli("dl", "show", "team", check=True).stdout
    code, data, text = admin("DELETE", "lists/team/members/Ext Partner".replace(" ", "%20"))
    assert code == 200, text
    code, data, text = admin("PATCH", "users/bob", {"quota": {"bytes": 1048576, "messages": 100}, "title": "Chief"})
    assert code == 200, text
    out = S.ldapsearch("(uid=bob)", "ixQuotaBytes", "ixQuotaMessages", "title", bind_dn=S.admin_dn,
                       password=S.admin_password).stdout
    for line in ("ixQuotaBytes: 1048576", "ixQuotaMessages: 100", "title: Chief"):
        assert line in out, out
    code, data, text = admin("DELETE", "contacts/Ext%20Partner")
    assert code == 200, text
    code, data, _ = admin("GET", "recipients/Ext%20Partner")
    assert code == 404 and data["error"], data


@test
def session_cookie_and_csrf():
    py = Py()
    status, data, resp = py.call("POST", "session", {"login": "rita", "password": "pw-rita"})
    assert status == 201 and data["role"] == "Recipient Admins" and len(data["csrf"]) == 64, data
    cookie = resp.getheader("Set-Cookie")
    for part in ("SameSite=Strict", "HttpOnly", "Secure", "Max-Age=3600"):
        assert part in cookie, cookie
    py.cookie = cookie.split(";")[0]
    py.csrf = data["csrf"]
    status, data, _ = py.call("GET", "session")
    assert status == 200 and data["login"] == "rita", data
    # an unsafe request without the token is refused, with it taken
    status, data, _ = py.call("POST", "contacts", {"name": "Csrf Test", "email": "c@other.example"}, csrf=False)
    assert status == 403 and "CSRF" in data["error"], data
    status, data, _ = py.call("POST", "contacts", {"name": "Csrf Test", "email": "c@other.example"})
    assert status == 201, data
    status, data, _ = py.call("DELETE", "session")
    assert status == 200, data
    status, data, _ = py.call("GET", "session")
    assert status == 401, data


@test
def view_only_admin_changes_nothing():
    code, data, _ = curl("GET", "recipients", "vera", "pw-vera")
    assert code == 200 and data["total"] >= 5, data
    for method, path, body in (("POST", "users", {"login": "v1", "password": "pw-v1x", "given": "V", "surname": "One"}),
                               ("PATCH", "users/bob", {"password": "new-pw"}),
                               ("DELETE", "users/bob", None),
                               ("POST", "contacts", {"name": "V Contact", "email": "v@other.example"}),
                               ("PATCH", "servers/%s/settings" % HOST, {"smtp.max_recipients": 77})):
        code, data, text = curl(method, path, "vera", "pw-vera", body)
        assert code == 403 and "vera may not do this" in data["error"], (method, path, text)
    assert admin("GET", "users/bob")[0] == 200
    # over LDAP too, the access rules decide: no role reads a password hash or SCRAM verifier, nor does a user
    for login in ("vera", "rita", "olga", "ulla"):
        out = S.ldapsearch("(uid=bob)", "userPassword", "ixScramVerifier", "cn", bind_dn=S.user_dn(login),
                           password="pw-" + login)
        assert out.returncode == 0 and "cn: Bob Builder" in out.stdout, out
        assert "userPassword" not in out.stdout and "ixScramVerifier" not in out.stdout, out
    # (the administrator reads the verifier, so there is one to hide)
    assert "ixScramVerifier" in S.ldapsearch("(uid=bob)", "ixScramVerifier", bind_dn=S.admin_dn,
                                             password=S.admin_password).stdout


@test
def recipient_admin_changes_recipients_not_servers():
    code, data, text = curl("POST", "users", "rita", "pw-rita",
                            {"login": "carol", "given": "Carol", "surname": "Ray", "password": "pw-carol"})
    assert code == 201, text
    code, data, text = curl("PATCH", "users/carol", "rita", "pw-rita", {"password": "pw-carol2"})
    assert code == 200, text
    assert curl("GET", "session", "carol", "pw-carol2")[0] == 200
    code, data, text = curl("GET", "servers/%s" % HOST, "rita", "pw-rita")
    assert code == 200 and "smtp.max_recipients" in data["settings"], text
    assert data["settings"]["smtp.milters"] == "" and data["settings"]["smtp.max_recipients"] > 0, text  # text as text
    code, data, text = curl("PATCH", "servers/%s/settings" % HOST, "rita", "pw-rita", {"smtp.max_recipients": 77})
    assert code == 403 and "Organisation Admins" in data["error"], text
    code, data, text = curl("DELETE", "users/carol", "rita", "pw-rita")
    assert code == 200, text


def scram_whoami(login, password):
    """ldapwhoami with SCRAM-SHA-256 (Cyrus's client in libldap) inside StartTLS: the completed process."""
    env = dict(ENV, LDAPTLS_REQCERT="never", LDAPCONF="/dev/null")
    env.pop("LDAPNOINIT", None)
    return run(["ldapwhoami", "-ZZ", "-H", S.ldap_uri, "-Y", "SCRAM-SHA-256", "-U", login, "-w", password], env=env)


@test
def recipient_admin_sets_passwords_without_reading_secrets():
    S.cli("user", "add", "sam", "--given", "Sam", "--surname", "Reset", "--password", "Sam-First-Pw-1", check=True)
    assert S.cli("user", "app-password", "add", "sam", "phone").returncode == 0
    secrets = ("userPassword", "ixScramVerifier", "ixScramBinding", "ixAppPassword")
    for login, new in (("rita", "Sam-Second-Pw-2"), ("olga", "Sam-Third-Pw-3")):
        code, data, text = curl("PATCH", "users/sam", login, "pw-" + login, {"password": new})
        assert code == 200, text
        # the verifiers came with the password: SCRAM takes the new one, not the old
        r = scram_whoami("sam", new)
        assert r.returncode == 0 and "uid=sam," in r.stdout, r.stdout + r.stderr
        assert scram_whoami("sam", "Sam-First-Pw-1").returncode == 49
        # and the admin who set it reads none of the secrets over LDAP
        out = S.ldapsearch("(uid=sam)", "cn", *secrets, bind_dn=S.user_dn(login), password="pw-" + login)
        assert out.returncode == 0 and "cn: Sam Reset" in out.stdout, out
        assert not any(a + ":" in out.stdout for a in secrets), out.stdout
    out = S.ldapsearch("(uid=sam)", *secrets, bind_dn=S.admin_dn, password=S.admin_password).stdout
    assert all(a + ":" in out for a in secrets), out
    # a change over LDAP the admins' code never sees still retires those verifiers: SCRAM fails, PLAIN works
    dn = S.user_dn("sam")
    r = run(["ldappasswd", "-x", "-H", S.ldap_uri, "-D", dn, "-w", "Sam-Third-Pw-3", "-a", "Sam-Third-Pw-3", "-s",
             "Sam-Fourth-Pw-4", dn])
    assert r.returncode == 0, r.stdout + r.stderr
    for pw in ("Sam-Third-Pw-3", "Sam-Fourth-Pw-4"):
        assert scram_whoami("sam", pw).returncode == 49
    assert curl("GET", "session", "sam", "Sam-Fourth-Pw-4")[0] == 200
    assert "none: the password was changed over LDAP" in S.cli("user", "show", "sam", check=True).stdout


@test
def organisation_admin_changes_servers():
    code, data, text = curl("PATCH", "servers/%s/settings" % HOST, "olga", "pw-olga", {"smtp.max_recipients": 77})
    assert code == 200, text
    assert "77" in S.cli("server", "show", check=True).stdout
    code, data, text = curl("PATCH", "servers/%s/settings" % HOST, "olga", "pw-olga", {"no.such": 1})
    assert code == 400 and data["error"], text


@test
def queue_list_show_flush_delete():
    # a message the transfer agent cannot deliver stays in the queue: dead.test goes to a port where nothing listens
    S.hold_mail_for("dead.test")
    c = smtplib.SMTP("127.0.0.1", S.ports["submission"], timeout=20)
    c.login("bob", "pw-bob")
    c.sendmail("bob.builder@example.com", ["someone@dead.test"],
               "From: bob.builder@example.com\r\nTo: someone@dead.test\r\nSubject: stuck in the queue\r\n\r\nhi\r\n")
    c.quit()

    def queued():
        items = curl("GET", "queue", "vera", "pw-vera")[1]["items"]
        return [m for m in items if any(r["address"] == "someone@dead.test" for r in m["recipients"])]
    found = wait_for(queued, timeout=20)
    assert found, admin("GET", "queue")
    qid = found[0]["id"]
    assert found[0]["sender"] == "bob.builder@example.com", found
    code, data, text = curl("GET", "queue/" + qid, "vera", "pw-vera")
    assert code == 200 and "stuck in the queue" in data["message"] and data["submitted_by"], text
    # the CLI sees the same message
    assert qid in S.cli("queue", "list", check=True).stdout
    # view-only and recipient admins manage no queue; a user without a role does not even read it
    assert curl("POST", "queue/flush", "vera", "pw-vera", {})[0] == 403
    code, data, text = curl("DELETE", "queue/" + qid, "rita", "pw-rita")
    assert code == 403 and "Organisation Admins" in data["error"], text
    assert curl("GET", "queue", "ulla", "pw-ulla")[0] == 403
    code, data, text = curl("DELETE", "queue/" + qid, "olga", "pw-olga")
    assert code == 200 and data["deleted"] == qid, text
    code, data, text = curl("POST", "queue/flush", "olga", "pw-olga", {})
    assert code == 202, text
    assert wait_for(lambda: "queue flush requested" in S.log("mta"), timeout=10), S.log("mta")
    assert qid not in S.cli("queue", "list", check=True).stdout
    code, data, text = admin("GET", "queue/" + qid)
    assert code == 404 and "no message" in data["error"], text
    # its story in the tracking log, as `interchange track` tells it
    code, data, text = curl("GET", "track?q=someone@dead.test", "vera", "pw-vera")
    assert code == 200 and any(e["event"] == "received" and e["queue_id"] == qid for e in data["items"]), text
    assert all(e["queue_id"] == qid for e in data["items"]), text
    assert qid in S.cli("track", "someone@dead.test", check=True).stdout
    assert curl("GET", "track?q=someone@dead.test", "ulla", "pw-ulla")[0] == 403
    assert admin("GET", "track")[0] == 400


@test
def user_without_role():
    code, data, text = curl("GET", "recipients?q=bob", "ulla", "pw-ulla")
    assert code == 200 and data["total"] == 1, text  # the address book, as any user reads it
    code, data, text = curl("POST", "contacts", "ulla", "pw-ulla", {"name": "U C", "email": "u@other.example"})
    assert code == 403 and "no administrative role" in data["error"], text
    code, data, text = curl("GET", "servers", "ulla", "pw-ulla")
    assert code == 403, text
    code, data, text = curl("GET", "audit", "ulla", "pw-ulla")
    assert code == 403, text


@test
def role_removed_takes_effect():
    S.cli("role", "del", "Recipient Admins", "rita", check=True)
    code, data, text = curl("POST", "contacts", "rita", "pw-rita", {"name": "R C", "email": "r@other.example"})
    assert code == 403, text
    S.cli("role", "add", "Recipient Admins", "rita", check=True)


@test
def audit_log():
    code, data, text = admin("GET", "audit?who=rita")
    assert code == 200, text
    actions = [(e["action"], e["result"]) for e in data["items"]]
    assert ("POST /api/v1/users", "ok") in actions and ("DELETE /api/v1/users/carol", "ok") in actions, actions
    assert all(e["via"] == "api" and e["who"] == "rita" for e in data["items"]), data
    refused = [e for e in curl("GET", "audit?who=vera", "vera", "pw-vera")[1]["items"]]
    assert refused and all(e["result"].startswith("403") for e in refused), refused
    out = S.cli("audit", "--who", "admin", check=True).stdout
    assert "cli  role add Organisation Admins" in out.replace("  cli ", "  cli  ") or "role add" in out, out
    assert "pw-olga" not in out and "pw-" not in out, out  # no password of the command lines
    out = S.cli("audit", "--since", "2099-01-01", check=True).stdout
    assert out == "", out
    r = S.cli("audit", "--since", "yesterday")
    assert r.returncode == 2 and "not a date" in r.stderr, r.stderr


@test
def sign_in_throttled():
    # the same guard and limits as the other protocols (auth.max_failures failures of one account from one address)
    codes = [curl("GET", "session", "page0", "wrong-%d" % i)[0] for i in range(12)]
    assert codes[0] == 401 and codes[-1] == 429, codes
    code, data, _ = curl("GET", "session", "page0", "pw")
    assert code == 429 and "too many failed sign-ins" in data["error"], data


@test
def upgrade_adds_the_roles():
    # a directory made before the roles: no ou=Roles, no role access rules (taken out of slapd.d while it is stopped,
    # its lines unfolded, without the file's checksum)
    old = System()
    for role in ("Organisation Admins", "Recipient Admins", "View-Only Admins", None):
        dn = ("cn=%s,ou=Roles," % role if role else "ou=Roles,") + old.suffix
        r = run(["ldapdelete", "-x", "-H", old.ldap_uri, "-D", old.admin_dn, "-w", old.admin_password, dn])
        assert r.returncode == 0, r.stderr
    old.stop()
    db = os.path.join(old.data, "directory", "slapd.d", "cn=config", "olcDatabase={1}mdb.ldif")
    with open(db) as f:
        lines = f.read().replace("\n ", "").splitlines()
    kept = [line for line in lines if "ou=Roles," not in line and not line.startswith("# CRC32")]
    assert len(lines) - len(kept) == 6, lines  # the five rules and the checksum
    with open(db, "w") as f:
        f.writelines(line + "\n" for line in kept)
    old.start()
    old.cli("user", "add", "otto", "--given", "Otto", "--surname", "Old", "--password", "pw-otto", check=True)
    assert wait_for(lambda: old.cli("role", "add", "View-Only Admins", "otto").returncode == 0, timeout=45)
    assert "View-Only Admins       otto" in old.cli("role", "list", check=True).stdout
    out = old.ldapsearch("(uid=otto)", "userPassword", "cn", bind_dn=old.user_dn("otto"), password="pw-otto")
    assert "cn: Otto Old" in out.stdout and "userPassword" not in out.stdout, out
    check_rules(old)
    # the role's rules are in: a view-only admin reads the configuration (no user does), and changes nothing
    out = old.ldapsearch("(objectClass=ixServer)", "ixHostName", bind_dn=old.user_dn("otto"), password="pw-otto")
    assert "ixHostName: mail.example.com" in out.stdout, out
    r = run(["ldapadd", "-x", "-H", old.ldap_uri, "-D", old.user_dn("otto"), "-w", "pw-otto"],
            input="dn: cn=x,ou=Recipients,%s\nobjectClass: organizationalRole\ncn: x\n" % old.suffix)
    assert r.returncode != 0 and "Insufficient access" in r.stderr, r.stderr
    # a directory made this morning: the recipient and organisation admins read the recipients' secrets (=mrwx); the
    # next start takes the read away and keeps the write
    first = access_rules(old)[0]
    assert " =mwx by " in first, first
    was = first.replace(" =mwx by ", " =mrwx by ")
    r = run(["ldapmodify", "-Q", "-Y", "EXTERNAL", "-H",
             "ldapi://" + os.path.join(old.data, "run", "ldapi").replace("/", "%2F")],
            input="dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\ndelete: olcAccess\nolcAccess: {0}\n-\n"
                  "add: olcAccess\nolcAccess: {0}%s\n" % was)
    assert r.returncode == 0 and access_rules(old)[0] == was, r.stderr
    old.stop()
    old.start()
    assert wait_for(lambda: access_rules(old)[0] == first, timeout=45), access_rules(old)
    check_rules(old)
    old.stop()


if __name__ == "__main__":
    main("test_api")
