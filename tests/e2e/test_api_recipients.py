"""test_api_recipients.py - the recipients and every user's own resources in the REST API, over HTTPS with curl:
each kind read whole and changed (addresses, hidden, restrictions, forwarding, delegates, quotas, list members,
public folders and their rights, photos), out of office, app passwords (used over IMAP with imaplib), recent sign-ins and Sieve scripts; for
each route who may (a view-only admin reads, a recipient admin changes, a user only themselves through /me), and
that the OpenAPI document describes every route."""
import base64
import imaplib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apiclient  # noqa: E402
from harness import JPEG, System, imap_login_ok, main, setup, test, wait_for  # noqa: E402

S = None
CA = None
PW = {"admin": "adminpw", "rita": "pw-rita", "vera": "pw-vera", "ulla": "pw-ulla", "jsmith": "pw-jsmith"}


def call(who, method, path, body=None):
    return apiclient.curl(S, CA, method, path, who, PW[who], body)


def ok(who, method, path, body=None, want=200):
    code, data, text = call(who, method, path, body)
    assert code == want, "%s %s %s as %s: %s" % (method, path, body, who, text)
    return data


def refused(who, method, path, body=None, want=403):
    code, data, text = call(who, method, path, body)
    assert code == want and isinstance(data, dict) and data.get("error"), "%s %s as %s: %s" % (method, path, who,
                                                                                             text)
    return data["error"]


@setup
def system():
    global S, CA
    S = System(admin_password=PW["admin"])
    CA = apiclient.server_ca(S)
    for login, given in (("rita", "Rita"), ("vera", "Vera"), ("ulla", "Ulla"), ("jsmith", "John")):
        S.cli("user", "add", login, "--given", given, "--surname", "Smith", "--password", PW[login], check=True)
    S.cli("role", "add", "Recipient Admins", "rita", check=True)
    S.cli("role", "add", "View-Only Admins", "vera", check=True)
    S.cli("contact", "add", "Ext Friend", "--email", "friend@outside.org", check=True)
    S.cli("dl", "add", "team", "--member", "jsmith", "--member", "ulla", check=True)
    S.cli("dl", "add", "everyone", "--member", "team", "--member", "rita", check=True)
    assert wait_for(lambda: (ok("admin", "GET", "users/jsmith").get("mail") or "").startswith("john.smith@"),
                    timeout=20)


@test
def openapi_describes_every_route():
    _, doc, _ = apiclient.curl(S, CA, "GET", "openapi.json")
    want = {
        "/recipients": ["get"], "/recipients/{name}": ["get", "patch", "delete"],
        "/users": ["get", "post"], "/users/{login}": ["get", "patch", "delete"],
        "/contacts": ["get", "post"], "/contacts/{name}": ["get", "patch", "delete"],
        "/lists": ["get", "post"], "/lists/{name}": ["get", "patch", "delete"],
        "/lists/{name}/members": ["post"], "/lists/{name}/members/{recipient}": ["delete"],
        "/folders": ["get", "post"], "/folders/{name}": ["get", "patch", "delete"],
        "/users/{login}/oof": ["get", "put", "delete"], "/users/{login}/app-passwords": ["get", "post"],
        "/users/{login}/app-passwords/{name}": ["delete"], "/users/{login}/signins": ["get"],
        "/users/{login}/sieve": ["get"], "/users/{login}/sieve/{name}": ["get"],
        "/me": ["get", "patch"], "/me/oof": ["get", "put", "delete"], "/me/app-passwords": ["get", "post"],
        "/me/app-passwords/{name}": ["delete"], "/me/signins": ["get"],
        "/folders/{name}/rights": ["get", "patch"], "/users/{login}/photo": ["get", "put", "delete"],
    }
    for path, methods in want.items():
        assert path in doc["paths"], path
        for m in methods:
            op = doc["paths"][path].get(m)
            assert op and op.get("summary") and op.get("responses"), (path, m)


@test
def a_user_read_whole():
    u = ok("vera", "GET", "users/jsmith")
    assert u["kind"] == "user" and u["given"] == "John" and u["surname"] == "Smith", u
    assert set(u["details"]) == {"title", "department", "company", "office", "phone", "mobile", "manager"}, u
    assert u["forward"] == {"to": None, "keep_copy": False}, u
    assert u["restrictions"] == {"accept_from": [], "reject_from": [], "authenticated_only": False,
                                 "max_size": 0}, u
    assert u["delegates"] == {"send_as": [], "send_on_behalf": [], "full_access": []}, u
    assert u["quota"] == {"bytes": 0, "messages": 0, "warn_bytes": 0} and u["mailbox"]["messages"] == 0, u
    # a user reads another's card without the mailbox's size
    other = ok("ulla", "GET", "users/jsmith")
    assert "mailbox" not in other and other["mail"] == u["mail"], other
    assert ok("ulla", "GET", "me")["login"] == "ulla"


@test
def addresses_primary_and_aliases():
    u = ok("rita", "PATCH", "users/jsmith", {"addresses": {"add": ["js@example.com", "john@example.com"]}})
    assert {"smtp:js@example.com", "smtp:john@example.com"} <= set(u["addresses"]), u
    assert wait_for(lambda: S.rcpt_code("js@example.com") == 250, timeout=20)
    old = u["mail"]
    u = ok("rita", "PATCH", "users/jsmith", {"addresses": {"primary": "john@example.com", "remove": ["js@example.com"]}})
    assert u["mail"] == "john@example.com" and "SMTP:john@example.com" in u["addresses"], u
    assert "smtp:" + old in u["addresses"] and not any("js@example.com" in a for a in u["addresses"]), u
    err = refused("rita", "PATCH", "users/jsmith", {"addresses": {"add": ["ulla.smith@example.com"]}}, want=409)
    assert "already used" in err, err
    err = refused("rita", "PATCH", "users/jsmith", {"addresses": {"remove": ["john@example.com"]}}, want=400)
    assert "primary" in err, err
    err = refused("rita", "PATCH", "users/jsmith", {"addresses": {"add": ["not an address"]}}, want=400)
    assert "not a valid e-mail address" in err, err
    refused("vera", "PATCH", "users/jsmith", {"addresses": {"add": ["v@example.com"]}})
    refused("ulla", "PATCH", "users/jsmith", {"addresses": {"add": ["u@example.com"]}})
    ok("rita", "PATCH", "users/jsmith", {"addresses": {"primary": old}})


@test
def the_command_line_changes_addresses_and_hiding_as_the_api_does():
    S.cli("user", "address", "jsmith", "--add", "cli@example.com", check=True)
    assert "smtp:cli@example.com" in ok("vera", "GET", "users/jsmith")["addresses"]
    r = S.cli("user", "address", "jsmith", "--add", "ulla.smith@example.com")
    assert r.returncode == 1 and "already used" in r.stderr, r.stderr
    S.cli("user", "address", "jsmith", "--remove", "cli@example.com", check=True)
    assert not any("cli@example.com" in a for a in ok("vera", "GET", "users/jsmith")["addresses"])
    S.cli("dl", "hidden", "team", "yes", check=True)
    assert ok("vera", "GET", "lists/team")["hidden"] is True
    S.cli("dl", "hidden", "team", "no", check=True)
    assert ok("vera", "GET", "lists/team")["hidden"] is False
    assert S.cli("user", "hidden", "jsmith", "maybe").returncode == 2


@test
def hidden_restrictions_forwarding_delegates():
    ok("rita", "PATCH", "contacts/Ext%20Friend", {"hidden": True})
    assert ok("admin", "GET", "recipients/Ext%20Friend")["hidden"] is True
    assert "Ext Friend" not in [r["name"] for r in ok("ulla", "GET", "recipients?kind=contact")["items"]]
    ok("rita", "PATCH", "contacts/Ext%20Friend", {"hidden": False})
    u = ok("rita", "PATCH", "users/jsmith", {"restrictions": {"accept_from": ["ulla", "team"],
                                                              "authenticated_only": True, "max_size": 1000000}})
    assert u["restrictions"]["accept_from"] == ["ulla", "team"] and u["restrictions"]["max_size"] == 1000000, u
    lst = ok("rita", "PATCH", "lists/team", {"restrictions": {"members_only": True}})
    assert lst["restrictions"]["members_only"] is True, lst
    u = ok("rita", "PATCH", "users/jsmith", {"restrictions": {"clear": True}})
    assert u["restrictions"]["accept_from"] == [] and u["restrictions"]["authenticated_only"] is False, u
    u = ok("rita", "PATCH", "users/jsmith", {"forward": {"to": "ulla", "keep_copy": True}})
    assert u["forward"] == {"to": "ulla", "keep_copy": True}, u
    assert ok("rita", "PATCH", "users/jsmith", {"forward": {"to": None}})["forward"]["to"] is None
    u = ok("rita", "PATCH", "users/jsmith", {"delegates": {"grant": [{"to": "rita", "right": "send_as"},
                                                                      {"to": "ulla", "right": "send_on_behalf"}]}})
    assert u["delegates"] == {"send_as": ["rita"], "send_on_behalf": ["ulla"], "full_access": []}, u
    err = refused("rita", "PATCH", "users/jsmith", {"delegates": {"grant": [{"to": "rita", "right": "send_as"}]}},
                  want=409)
    assert "already has that right" in err, err
    u = ok("rita", "PATCH", "users/jsmith", {"delegates": {"revoke": [{"to": "rita", "right": "send_as"}]}})
    assert u["delegates"]["send_as"] == [], u
    refused("rita", "PATCH", "users/jsmith", {"delegates": {"grant": [{"to": "rita", "right": "full"}]}}, want=400)
    # full access (user delegate --full-access): between users only; a view-only admin may not grant it
    u = ok("rita", "PATCH", "users/jsmith", {"delegates": {"grant": [{"to": "ulla", "right": "full_access"}]}})
    assert u["delegates"]["full_access"] == ["ulla"], u
    err = refused("rita", "PATCH", "users/jsmith", {"delegates": {"grant": [{"to": "team", "right": "full_access"}]}},
                  want=400)
    assert "not a user with a mailbox" in err, err
    assert "full_access" not in ok("rita", "GET", "lists/team")["delegates"]
    refused("vera", "PATCH", "users/jsmith", {"delegates": {"revoke": [{"to": "ulla", "right": "full_access"}]}})
    u = ok("rita", "PATCH", "users/jsmith", {"delegates": {"revoke": [{"to": "ulla", "right": "full_access"}]}})
    assert u["delegates"]["full_access"] == [], u
    refused("vera", "PATCH", "users/jsmith", {"forward": {"to": "rita"}})
    refused("vera", "PATCH", "lists/team", {"hidden": True})


@test
def quotas_members_and_folders():
    u = ok("rita", "PATCH", "users/jsmith", {"quota": {"bytes": 5000000, "messages": 100}})
    assert u["quota"]["bytes"] == 5000000 and u["mailbox"]["quota_bytes"] == 5000000, u
    assert ok("admin", "GET", "lists/everyone")["members"] == ["team", "rita"]
    ok("rita", "POST", "lists/team/members", {"recipient": "Ext Friend"}, want=201)
    assert "Ext Friend" in ok("vera", "GET", "lists/team")["members"]
    ok("rita", "DELETE", "lists/team/members/Ext%20Friend")
    refused("vera", "POST", "lists/team/members", {"recipient": "vera"})
    f = ok("rita", "POST", "folders", {"path": "Sales/Leads"}, want=201)
    assert f["kind"] == "folder", f
    names = [r["name"] for r in ok("vera", "GET", "folders")["items"]]
    assert "Sales" in names and "Leads" in names, names
    refused("vera", "POST", "folders", {"path": "Nope"})
    # its rights (in the information store): the default ACL until first used, then what a recipient admin sets,
    # which IMAP enforces at once
    r = ok("vera", "GET", "folders/Leads/rights")
    assert r == {"folder": "Leads", "path": "Sales/Leads", "made": False,
                 "rights": {"anyone": "lrsp", "pf-admins": "lrswipkxtea"}}, r
    assert ok("vera", "GET", "folders/Leads")["path"] == "Sales/Leads"
    refused("vera", "PATCH", "folders/Leads/rights", {"ulla": "lr"})
    refused("ulla", "GET", "folders/Leads/rights")
    assert "RFC 4314" in refused("rita", "PATCH", "folders/Leads/rights", {"ulla": "lrz"}, want=400)
    refused("rita", "PATCH", "folders/Leads/rights", {"nobody-here": "lr"}, want=404)
    r = ok("rita", "PATCH", "folders/Leads/rights", {"anyone": None, "ulla": "lr"})
    assert r["made"] is True and r["rights"] == {"pf-admins": "lrswipkxtea", "ulla": "lr"}, r
    m = imaplib.IMAP4("127.0.0.1", S.ports["imap"])
    m.login("ulla", PW["ulla"])
    typ, data = m.select('"Public Folders/Sales/Leads"', readonly=True)
    assert typ == "OK", data
    m.logout()
    m = imaplib.IMAP4("127.0.0.1", S.ports["imap"])
    m.login("vera", PW["vera"])
    typ, data = m.select('"Public Folders/Sales/Leads"', readonly=True)
    assert typ == "NO", data  # anyone's entry is gone
    m.logout()
    line = [x for x in S.cli("folder", "list", check=True).stdout.splitlines() if x.startswith("Sales/Leads ")]
    assert line and "ulla=lr" in line[0] and "anyone=" not in line[0], line
    refused("rita", "GET", "users/jsmith/rights", want=404)
    ok("rita", "DELETE", "folders/Leads")


@test
def user_photos():
    assert ok("ulla", "GET", "users/jsmith/photo") == {"user": "jsmith", "jpeg": None, "bytes": 0}
    b64 = base64.b64encode(JPEG).decode()
    refused("vera", "PUT", "users/jsmith/photo", {"jpeg": b64})
    refused("ulla", "PUT", "users/jsmith/photo", {"jpeg": b64})
    assert "not a JPEG" in refused("rita", "PUT", "users/jsmith/photo",
                                   {"jpeg": base64.b64encode(b"GIF89a...").decode()}, want=400)
    refused("rita", "PUT", "users/jsmith/photo", {"jpeg": "not base64!"}, want=400)
    p = ok("rita", "PUT", "users/jsmith/photo", {"jpeg": b64})
    assert p["bytes"] == len(JPEG) and base64.b64decode(p["jpeg"]) == JPEG, p
    # what address books read: the same JPEG in both attributes, as `user photo` writes them
    assert "Photo:        JPEG, %d bytes" % len(JPEG) in S.cli("user", "show", "jsmith", check=True).stdout
    assert base64.b64decode(ok("ulla", "GET", "users/jsmith/photo")["jpeg"]) == JPEG
    refused("vera", "DELETE", "users/jsmith/photo")
    assert ok("rita", "DELETE", "users/jsmith/photo")["jpeg"] is None
    assert "Photo:" not in S.cli("user", "show", "jsmith", check=True).stdout
    refused("rita", "GET", "users/team/photo", want=404)


@test
def pages_and_search_on_every_list():
    for kind in ("recipients", "users", "contacts", "lists", "folders"):
        whole = ok("vera", "GET", kind)
        assert whole["total"] >= 1 and whole["offset"] == 0, (kind, whole)
        page = ok("vera", "GET", "%s?limit=1&offset=%d" % (kind, whole["total"] - 1))
        assert len(page["items"]) == 1 and page["items"][0] == whole["items"][-1], (kind, page)
    found = ok("vera", "GET", "recipients?q=friend")
    assert [r["name"] for r in found["items"]] == ["Ext Friend"], found
    err = refused("vera", "GET", "users?offset=x", want=400)
    assert "offset" in err, err


@test
def out_of_office():
    ok("ulla", "PUT", "me/oof", {"enabled": True, "internal": "Back Monday.", "external": "I am away.",
                                 "from": "2026-01-01", "until": "2099-12-31", "audience": "all"})
    o = ok("ulla", "GET", "me/oof")
    assert o == {"enabled": True, "internal": "Back Monday.", "external": "I am away.", "subject": "Out of office",
                 "from": "2026-01-01", "until": "2099-12-31", "audience": "all"}, o
    assert "Out of office: on (external-audience=all from=2026-01-01 until=2099-12-31)" in \
        S.cli("user", "show", "ulla", check=True).stdout
    assert ok("vera", "GET", "users/ulla/oof")["internal"] == "Back Monday."
    refused("vera", "PUT", "users/ulla/oof", {"enabled": False})
    refused("jsmith", "GET", "users/ulla/oof")
    err = refused("ulla", "PUT", "me/oof", {"enabled": True, "internal": "x", "until": "31/12/2099"}, want=400)
    assert "YYYY-MM-DD" in err, err
    err = refused("ulla", "PUT", "me/oof", {"enabled": True}, want=400)
    assert "text" in err, err
    o = ok("rita", "PUT", "users/ulla/oof", {"enabled": True, "internal": "Inside only", "audience": "none"})
    assert o["audience"] == "none" and o["external"] is None, o
    # known: the organisation's contacts outside (docs/sieve.md)
    o = ok("ulla", "PUT", "me/oof", {"enabled": True, "internal": "In", "external": "Out", "audience": "known"})
    assert o["audience"] == "known", o
    err = refused("ulla", "PUT", "me/oof", {"enabled": True, "internal": "x", "audience": "friends"}, want=400)
    assert "known" in err, err
    assert ok("ulla", "DELETE", "me/oof") == {"enabled": False}
    assert "Out of office: off" in S.cli("user", "show", "ulla", check=True).stdout


@test
def app_passwords_shown_once_and_used_over_imap():
    made = ok("ulla", "POST", "me/app-passwords", {"name": "phone"}, want=201)
    assert made["name"] == "phone" and len(made["password"]) >= 16, made
    assert wait_for(lambda: imap_login_ok(S.ports["imap"], "ulla", made["password"]), timeout=20)
    listed = ok("ulla", "GET", "me/app-passwords")
    assert [a["name"] for a in listed["items"]] == ["phone"] and "password" not in listed["items"][0], listed
    assert made["password"] not in str(listed)
    assert ok("vera", "GET", "users/ulla/app-passwords")["total"] == 1
    refused("vera", "POST", "users/ulla/app-passwords", {"name": "vera-made"})
    refused("jsmith", "GET", "users/ulla/app-passwords")
    refused("ulla", "POST", "me/app-passwords", {"name": "phone"}, want=409)
    refused("ulla", "POST", "me/app-passwords", {"name": "bad name!"}, want=400)
    other = ok("rita", "POST", "users/jsmith/app-passwords", {"name": "laptop"}, want=201)
    assert other["password"] != made["password"]
    refused("vera", "DELETE", "users/jsmith/app-passwords/laptop")
    ok("rita", "DELETE", "users/jsmith/app-passwords/laptop")
    assert ok("jsmith", "GET", "me/app-passwords")["items"] == []
    ok("ulla", "DELETE", "me/app-passwords/phone")
    assert wait_for(lambda: not imap_login_ok(S.ports["imap"], "ulla", made["password"]), timeout=20)
    refused("ulla", "DELETE", "me/app-passwords/phone", want=404)
    # the audit log has each change, never a secret
    audit = S.cli("audit", "--who", "ulla", check=True).stdout
    assert "POST /api/v1/me/app-passwords: ok" in audit and "DELETE /api/v1/me/app-passwords/phone: ok" in audit, audit
    assert made["password"] not in audit and other["password"] not in S.cli("audit", check=True).stdout


@test
def recent_sign_ins():
    m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=10)
    m.login("jsmith", PW["jsmith"])
    m.logout()
    try:
        imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=10).login("jsmith", "wrong")
    except imaplib.IMAP4.error:
        pass

    def seen():
        items = ok("jsmith", "GET", "me/signins")["items"]
        return ({i["result"] for i in items if i["from"] == "127.0.0.1"} >= {"ok", "failed"}) and items
    items = wait_for(seen, timeout=10)
    assert items and items[0]["time"] >= items[-1]["time"], items
    assert all("jsmith" in i["detail"] for i in items), items
    assert ok("vera", "GET", "users/jsmith/signins?limit=1")["items"] == items[:1]
    refused("ulla", "GET", "users/jsmith/signins")


@test
def sieve_scripts_listed_and_shown():
    path = os.path.join(S.base, "filter.sieve")
    with open(path, "w") as f:
        f.write('require "fileinto";\r\nif header :contains "subject" "invoice" { fileinto "Bills"; }\r\n')
    S.cli("user", "sieve", "jsmith", "--put", "bills", path, "--activate", "bills", check=True)
    data = ok("vera", "GET", "users/jsmith/sieve")
    assert data["items"] == [{"name": "bills", "active": True}], data
    one = ok("rita", "GET", "users/jsmith/sieve/bills")
    assert one["active"] and 'fileinto "Bills"' in one["script"], one
    refused("rita", "GET", "users/jsmith/sieve/none", want=404)
    refused("ulla", "GET", "users/jsmith/sieve")


@test
def me_changes_only_password_and_forwarding():
    u = ok("ulla", "PATCH", "me", {"forward": {"to": "jsmith", "keep_copy": True}})
    assert u["forward"] == {"to": "jsmith", "keep_copy": True}, u
    err = refused("ulla", "PATCH", "me", {"forward": {"to": "Ext Friend"}})
    assert "forwarding.external" in err, err
    S.cli("server", "set", "forwarding.external", "allow", check=True)
    assert wait_for(lambda: call("ulla", "PATCH", "me", {"forward": {"to": "Ext Friend"}})[0] == 200, timeout=20)
    ok("ulla", "PATCH", "me", {"forward": {"to": None}})
    err = refused("ulla", "PATCH", "me", {"title": "Boss"})
    assert "administrator" in err, err
    refused("ulla", "PATCH", "me", {"password": "Fresh-Secret-42"}, want=400)
    ok("ulla", "PATCH", "me", {"old_password": PW["ulla"], "password": "Fresh-Secret-42"})
    PW["ulla"] = "Fresh-Secret-42"
    assert ok("ulla", "GET", "me")["login"] == "ulla"
    refused("ulla", "PATCH", "users/jsmith", {"title": "Boss"})
    refused("admin", "GET", "me/oof", want=404)


if __name__ == "__main__":
    main("test_api_recipients")
