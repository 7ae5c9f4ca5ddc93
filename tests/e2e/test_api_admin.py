"""test_api_admin.py - the organisation's infrastructure in the REST API over HTTPS with curl, for every role: status
and replication (as `interchange status --json`), the metrics with the mail flow's history, the services' logs,
connectors, sync sources and DKIM keys, with pages and search on every list; a view-only admin reads
and changes nothing, a recipient admin changes no connector, sync source or DKIM key, a user without a role reads
none of it; every route is in the OpenAPI document."""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apiclient import curl, server_ca  # noqa: E402
from harness import System, main, setup, test, wait_for  # noqa: E402

S = None
CA = None
ROLES = {"olga": "Organisation Admins", "rita": "Recipient Admins", "vera": "View-Only Admins"}


def call(login, method, path, body=None):
    password = S.admin_password if login == "admin" else "pw-" + login
    return curl(S, CA, method, path, login, password, body)


@setup
def system():
    global S, CA
    S = System()
    CA = server_ca(S)
    for login in ("olga", "rita", "vera", "ulla"):
        S.cli("user", "add", login, "--given", login.title(), "--surname", "User", "--password", "pw-" + login,
              check=True)
    for login, role in ROLES.items():
        S.cli("role", "add", role, login, check=True)


def routes():
    """Every route of the API's tables in transport/http/ as (method, path with {} for a variable segment): the
    tables of {first segment, segments, fixed segment, method} (api.c, api_admin.c) and of {pattern, method}
    (api_recipients.c: "*" any segment, KIND and ALL the kinds of recipient)."""
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "transport", "http")
    found = []
    for name in sorted(os.listdir(src)):
        if not (name.startswith("api") and name.endswith(".c")):
            continue
        text = open(os.path.join(src, name)).read()
        for what, nseg, sub, method in re.findall(r'\{ "([a-z]+)", (\d), (NULL|"[a-z]+"), "([A-Z]+)", \w+ \}', text):
            segs = [what] + ["{}"] * (int(nseg) - 1)
            if sub != "NULL":
                segs[1 if int(nseg) == 2 else 2] = sub.strip('"')
            found.append((method.lower(), "/" + "/".join(segs)))
        for pattern, method in re.findall(r'\{ "([A-Za-z*/-]+)", "([A-Z]+)", \w+ \}', text):
            first, _, rest = pattern.partition("/")
            kinds = {"ALL": ["recipients", "users", "contacts", "lists", "folders"],
                     "KIND": ["users", "contacts", "lists", "folders"]}.get(first, [first])
            for k in kinds:
                path = "/".join([k] + ([rest] if rest else [])).replace("*", "{}")
                found.append((method.lower(), "/" + path))
    return found


@test
def every_route_is_described():
    code, doc, _ = curl(S, CA, "GET", "openapi.json")
    assert code == 200
    described = {(m, re.sub(r"\{[^}]*\}", "{}", p)) for p, ops in doc["paths"].items() for m in ops}
    found = routes()
    assert ("get", "/status") in found and ("post", "/queue/flush") in found and ("get", "/users/{}/oof") in found, found
    # a route of PATCH takes PUT too: either describes it
    missing = [(m, p) for m, p in found if (m, p) not in described and not (m == "patch" and ("put", p) in described)]
    assert not missing, missing


@test
def status_as_the_command_line_says():
    cli = json.loads(S.cli("status", "--json", check=True).stdout)
    code, data, text = call("vera", "GET", "status")
    assert code == 200, text
    assert data["running"] is True and data["domain"] == cli["domain"] and data["ports"] == cli["ports"], text
    assert [s["name"] for s in data["services"]] == [s["name"] for s in cli["services"]], text
    assert all(s["state"] == "running" for s in data["services"]), text
    assert data["certificate"]["days_left"] > 300 and data["certificate"]["not_after"], text
    assert "replication" in data and "warnings" in data and "queue" in data, text
    assert set(cli) - set(data) == {"orphans"}, (sorted(cli), sorted(data))
    code, data, text = call("ulla", "GET", "status")
    assert code == 403 and "no administrative role" in data["error"], text


@test
def metrics_with_history():
    S.hold_mail_for("dead.test")
    for i in range(3):
        S.submit("ulla", "pw-ulla", "ulla.user@example.com", "olga.user@example.com", "local %d" % i)
    S.submit("ulla", "pw-ulla", "ulla.user@example.com", "someone@dead.test", "held")

    def flow():
        data = call("vera", "GET", "metrics")[1]
        h = data["history"]
        return data if h["totals"]["delivered"] >= 3 and h["totals"]["received"] >= 4 else None
    data = wait_for(flow, timeout=40)
    assert data, call("vera", "GET", "metrics")[2]
    h = data["history"]
    assert h["interval_seconds"] > 0 and h["samples"], h
    last = h["samples"][-1]
    assert {"time", "queue", "delivered", "latency_avg", "latency_max"} <= set(last), last
    assert sum(s["delivered"] for s in h["samples"]) >= 3, h
    assert data["counters"]["services"] and "queue" in data["counters"], data
    # the queue searched (a recipient, the sender), servers and tracking paged, as every list
    code, data, text = call("vera", "GET", "queue?q=someone@dead")
    assert code == 200 and data["total"] == 1 and data["items"][0]["recipients"][0]["address"] == "someone@dead.test", \
        text
    assert call("vera", "GET", "queue?q=nobody-like-this")[1]["total"] == 0
    code, data, text = call("vera", "GET", "servers?q=mail.example&limit=1")
    assert code == 200 and data["total"] == 1 and data["limit"] == 1 and len(data["items"]) == 1, text
    code, data, text = call("vera", "GET", "track?q=someone@dead.test&limit=1")
    assert code == 200 and data["total"] >= 1 and len(data["items"]) == 1, text
    # the queue's length is sampled at each interval's end: the held message shows in the next one
    assert wait_for(lambda: call("vera", "GET", "metrics")[1]["history"]["samples"][-1]["queue"] >= 1, timeout=30)
    assert call("ulla", "GET", "metrics")[0] == 403


@test
def logs_for_organisation_admins_only():
    code, data, text = call("olga", "GET", "logs")
    assert code == 200 and {"attendant", "smtpd", "mta"} <= {l["name"] for l in data["items"]}, text
    code, data, text = call("olga", "GET", "logs?q=smtp&limit=1")
    assert code == 200 and data["total"] >= 1 and len(data["items"]) == 1, text
    code, data, text = call("olga", "GET", "logs/attendant?lines=5")
    assert code == 200 and 0 < len(data["lines"]) <= 5, text
    assert data["lines"][-1] in S.log("attendant"), text
    code, data, text = call("olga", "GET", "logs/attendant?lines=10000&q=Interchange%20is%20running")
    assert code == 200 and data["lines"] and all("Interchange is running" in l for l in data["lines"]), text
    code, data, text = call("olga", "GET", "logs/nosuch")
    assert code == 404 and "GET /api/v1/logs" in data["error"], text
    assert call("olga", "GET", "logs/..%2Fsecret")[0] == 404
    for login in ("vera", "rita", "ulla"):
        code, data, text = call(login, "GET", "logs/attendant")
        assert code == 403 and "Organisation Admins" in data["error"], text


@test
def connectors_by_role():
    body = {"name": "partner", "address_spaces": ["partner.test", "*.partner.test"], "smarthost": "127.0.0.1:2525",
            "cost": 5}
    for login in ("vera", "rita"):  # the directory refuses them
        code, data, text = call(login, "POST", "connectors", body)
        assert code == 403 and "may not do this" in data["error"] and ROLES[login] in data["error"], text
    code, data, text = call("olga", "POST", "connectors", body)
    assert code == 201 and data["name"] == "partner" and data["cost"] == 5, text
    assert call("olga", "POST", "connectors", body)[0] == 409
    code, data, text = call("olga", "POST", "connectors", dict(body, name="bad", smarthost="no host:x"))
    assert code == 400 and "not a smart host" in data["error"], text
    code, data, text = call("olga", "POST", "connectors", {"name": "x"})
    assert code == 400 and "address spaces" in data["error"], text
    # the command line sees it, the API lists it to any admin, pages and searches
    out = S.cli("connector", "list", check=True).stdout
    assert "partner" in out and "*.partner.test" in out and "127.0.0.1:2525" in out, out
    code, data, text = call("vera", "GET", "connectors")
    assert code == 200 and {"dead", "partner"} <= {c["name"] for c in data["items"]}, text
    code, data, text = call("vera", "GET", "connectors?q=partner.test")
    assert code == 200 and data["total"] == 1 and data["items"][0]["address_spaces"][1] == "*.partner.test", text
    code, data, text = call("vera", "GET", "connectors?limit=1&offset=1")
    assert code == 200 and data["total"] == 2 and len(data["items"]) == 1, text
    code, data, text = call("rita", "GET", "connectors/partner")
    assert code == 200 and data["smarthost"] == "127.0.0.1:2525", text
    assert call("rita", "GET", "connectors/nosuch")[0] == 404
    assert call("ulla", "GET", "connectors")[0] == 403
    for login in ("vera", "rita"):
        assert call(login, "DELETE", "connectors/partner")[0] == 403
    code, data, text = call("olga", "DELETE", "connectors/partner")
    assert code == 200 and data["deleted"] == "partner", text
    assert "partner" not in S.cli("connector", "list", check=True).stdout
    code, data, text = call("olga", "DELETE", "connectors/partner")
    assert code == 404 and "no connector" in data["error"], text


@test
def sync_sources_without_their_passwords():
    body = {"name": "corp", "uri": "ldap://127.0.0.1:1", "bind_dn": "cn=reader,dc=corp,dc=test",
            "password": "secret-of-corp", "base": "ou=People,dc=corp,dc=test", "maps": ["title=description"],
            "grace_days": 7}
    for login in ("vera", "rita"):
        code, data, text = call(login, "POST", "sync", body)
        assert code == 403 and "Organisation Admins" in data["error"], text
    code, data, text = call("olga", "POST", "sync", body)
    assert code == 201 and data["name"] == "corp" and data["uri"] == body["uri"], text
    assert data["grace_days"] == "7" and data["maps"] == ["title=description"], text
    assert call("olga", "POST", "sync", body)[0] == 409
    code, data, text = call("olga", "POST", "sync", {"name": "x"})
    assert code == 400 and "needs" in data["error"], text
    assert "corp" in S.cli("sync", "list", check=True).stdout
    code, data, text = call("vera", "GET", "sync")
    assert code == 200 and data["total"] == 1 and data["items"][0]["base"] == body["base"], text
    assert call("vera", "GET", "sync?q=nothing-like-it")[1]["total"] == 0
    code, data, text = call("rita", "GET", "sync/corp")
    assert code == 200 and data["state"] and "counts" in data and "problems" in data, text
    assert call("vera", "GET", "sync/nosuch")[0] == 404
    assert call("ulla", "GET", "sync")[0] == 403
    for login in ("olga", "vera", "admin"):
        assert "secret-of-corp" not in call(login, "GET", "sync/corp")[2]
        assert "secret-of-corp" not in call(login, "GET", "sync")[2]
    # a run the source cannot answer says so; only an organisation admin runs or deletes
    for login in ("vera", "rita"):
        assert call(login, "POST", "sync/corp/run")[0] == 403
        assert call(login, "DELETE", "sync/corp")[0] == 403
    code, data, text = call("olga", "POST", "sync/corp/run")
    assert code == 503 and "corp" in text, text
    code, data, text = call("olga", "DELETE", "sync/corp?keep=true")
    assert code == 200 and data["deleted"] == "corp", text
    assert call("olga", "GET", "sync/corp")[0] == 404
    assert "secret-of-corp" not in open(os.path.join(S.data, "log", "audit.log")).read()


@test
def dkim_keys_with_their_records():
    for login in ("vera", "rita"):
        code, data, text = call(login, "POST", "dkim/example.com", {})
        assert code == 403 and "Organisation Admins" in data["error"], text
    assert not os.path.exists(os.path.join(S.data, "dkim", "example.com")) or \
        not os.listdir(os.path.join(S.data, "dkim", "example.com"))
    code, data, text = call("olga", "POST", "dkim/example.com", {})
    assert code == 201 and data["made"] and not data["replaced"], text
    assert {k["algorithm"] for k in data["keys"]} == {"ed25519", "rsa"}, text
    first = sorted(k["selector"] for k in data["keys"])
    for k in data["keys"]:
        assert k["this_server"] and k["txt"].startswith("v=DKIM1;") and k["dns_name"].endswith("._domainkey.example.com")
        assert k["zone_line"].startswith(k["dns_name"] + ". IN TXT \""), k
    # the command line prints the same records
    out = S.cli("domain", "dkim", "example.com", check=True).stdout
    assert all(k["zone_line"] in out for k in data["keys"]), (out, data)
    code, data, text = call("olga", "POST", "dkim/example.com", {})
    assert code == 200 and not data["made"] and sorted(k["selector"] for k in data["keys"]) == first, text
    code, data, text = call("olga", "POST", "dkim/example.com", {"rotate": True})
    assert code == 201 and data["replaced"] and not set(k["selector"] for k in data["keys"]) & set(first), text
    code, data, text = call("vera", "GET", "dkim")
    assert code == 200 and data["total"] == 2 and all(k["domain"] == "example.com" for k in data["items"]), text
    code, data, text = call("vera", "GET", "dkim?q=ed25519")
    assert code == 200 and data["total"] == 1, text
    code, data, text = call("rita", "GET", "dkim/example.com")
    assert code == 200 and data["total"] == 2 and all(k["txt"] for k in data["items"]), text
    code, data, text = call("olga", "POST", "dkim/nosuch.test", {})
    assert code == 404 and "not one of the organisation's domains" in data["error"], text
    assert call("olga", "POST", "dkim/example.com", {"rotate": "yes"})[0] == 400
    assert call("ulla", "GET", "dkim")[0] == 403


if __name__ == "__main__":
    main("test_api_admin")
