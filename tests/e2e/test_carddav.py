"""test_carddav.py - the CardDAV address book of ix-httpd (/dav/) driven by curl with the requests Thunderbird's own
CardDAV client, CardBook and DAVx5 send: discovery from /.well-known/carddav through current-user-principal and
addressbook-home-set, PROPFIND Depth 0 and 1, addressbook-multiget, addressbook-query and sync-collection, GET of a
card; the vCards (3.0 and 4.0) read back by python3-vobject; a list's card names its members; a recipient hidden
from the address book appears nowhere (nor among a list's members); app passwords sign in as on IMAP; HTTP Basic over
TLS only, read-only, another user's address book refused."""
import os
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import System, debian_module, main, run, setup, skip, test  # noqa: E402

vobject = debian_module("vobject")

S = None
HOST = "mail.example.com"
NS = {"d": "DAV:", "card": "urn:ietf:params:xml:ns:carddav", "cs": "http://calendarserver.org/ns/"}
ALICE = ("alice", "pw-alice-1")

# What Thunderbird 115's CardDAV client (CardDAVUtils.detectAddressBooks) sends, step by step.
TB_PRINCIPAL = ('<propfind xmlns="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav"><prop>'
                '<resourcetype/><displayname/><current-user-principal/><current-user-privilege-set/>'
                '</prop></propfind>')
TB_HOME = ('<propfind xmlns="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav"><prop>'
           '<card:addressbook-home-set/></prop></propfind>')
TB_BOOKS = ('<propfind xmlns="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav" '
            'xmlns:cs="http://calendarserver.org/ns/"><prop><resourcetype/><displayname/>'
            '<current-user-privilege-set/><cs:getctag/><sync-token/></prop></propfind>')
TB_SYNC = ('<sync-collection xmlns="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav">'
           '<sync-token>%s</sync-token><sync-level>1</sync-level><prop><getetag/><card:address-data/></prop>'
           '</sync-collection>')
# CardBook: a Depth 1 listing of etags, then a multiget of the cards.
CB_LIST = ('<?xml version="1.0" encoding="UTF-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:getcontenttype/>'
           '<D:getetag/></D:prop></D:propfind>')
CB_MULTIGET = ('<?xml version="1.0" encoding="UTF-8"?><C:addressbook-multiget xmlns:D="DAV:" '
               'xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/><C:address-data type="text/vcard"/>'
               '</D:prop>%s</C:addressbook-multiget>')
# DAVx5: discovery in one PROPFIND, then sync-collection for etags and a multiget asking for vCard 4.
DX_DISCOVER = ('<?xml version="1.0" encoding="UTF-8" ?><propfind xmlns="DAV:" '
               'xmlns:CARD="urn:ietf:params:xml:ns:carddav"><prop><resourcetype/><displayname/>'
               '<CARD:addressbook-description/><current-user-privilege-set/><current-user-principal/>'
               '<CARD:addressbook-home-set/><CARD:supported-address-data/></prop></propfind>')
DX_SYNC = ('<?xml version="1.0" encoding="UTF-8" ?><sync-collection xmlns="DAV:"><sync-token/>'
           '<sync-level>1</sync-level><prop><getetag/></prop></sync-collection>')
DX_MULTIGET = ('<?xml version="1.0" encoding="UTF-8" ?><CARD:addressbook-multiget xmlns="DAV:" '
               'xmlns:CARD="urn:ietf:params:xml:ns:carddav"><prop><getetag/>'
               '<CARD:address-data content-type="text/vcard" version="4.0"/></prop>%s</CARD:addressbook-multiget>')
QUERY = ('<?xml version="1.0" encoding="utf-8"?><C:addressbook-query xmlns:D="DAV:" '
         'xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/><C:address-data/></D:prop>'
         '<C:filter test="anyof"><C:prop-filter name="FN"><C:text-match collation="i;unicode-casemap" '
         'match-type="contains">%s</C:text-match></C:prop-filter><C:prop-filter name="EMAIL">'
         '<C:text-match collation="i;unicode-casemap" match-type="contains">%s</C:text-match></C:prop-filter>'
         '</C:filter></C:addressbook-query>')


def ca_file():
    ca = os.path.join(S.base, "server-ca.pem")
    if not os.path.exists(ca):
        with open(ca, "w") as f:
            f.write(S.cli("cert", "show", "--pem", check=True).stdout)
    return ca


def dav(method, path, body=None, user=ALICE, depth=None, headers=(), plain=False):
    """curl over HTTPS (verified against the server's certificate), returning (status, headers, body)."""
    port = S.ports["http" if plain else "https"]
    url = "%s://%s:%d%s" % ("http" if plain else "https", HOST, port, path)
    cmd = ["curl", "-sS", "--max-time", "10", "--cacert", ca_file(), "--resolve", "%s:%d:127.0.0.1" % (HOST, port),
           "-X", method, "-D", "-", url]
    if user is not None:
        cmd += ["-u", "%s:%s" % user]
    if depth is not None:
        cmd += ["-H", "Depth: %s" % depth]
    if body is not None:
        cmd += ["-H", "Content-Type: application/xml; charset=utf-8", "--data-binary", body]
    for h in headers:
        cmd += ["-H", h]
    r = run(cmd, timeout=20)
    assert r.returncode == 0, r.stderr
    head, _, rest = r.stdout.replace("\r\n", "\n").partition("\n\n")
    status = int(head.split()[1])
    hdrs = {}
    for line in head.split("\n")[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, rest


def multistatus(status, body):
    assert status == 207, (status, body)
    return ET.fromstring(body)


def responses(ms):
    """{href: {prop tag: element}} of the 200 propstats, and {href: status} of the responses with a status."""
    found, statuses = {}, {}
    for r in ms.findall("d:response", NS):
        href = r.find("d:href", NS).text
        st = r.find("d:status", NS)
        if st is not None:
            statuses[href] = st.text
        props = {}
        for ps in r.findall("d:propstat", NS):
            if "200" in ps.find("d:status", NS).text:
                for p in ps.find("d:prop", NS):
                    props[p.tag] = p
        found[href] = props
    return found, statuses


def tag(ns, name):
    return "{%s}%s" % (NS[ns], name)


def uuid_of(login):
    out = S.ldapsearch("(uid=%s)" % login, "entryUUID", bind_dn=S.admin_dn, password=S.admin_password).stdout
    return [line.split(": ")[1] for line in out.splitlines() if line.startswith("entryUUID:")][0]


def book():
    return "/dav/addressbooks/alice/directory/"


def parse_vcard(text, version):
    assert ("VERSION:%s" % version) in text, text
    assert all(len(line.rstrip("\r").encode()) <= 75 for line in text.split("\n")), text
    if vobject is None:
        return None
    return vobject.readOne(text)


@setup
def system_with_people():
    global S
    if vobject is None:
        skip("python3-vobject is not installed (it reads the vCards back)")
    S = System()
    S.cli("user", "add", "alice", "--given", "Alice", "--surname", "Archer", "--password", ALICE[1], check=True)
    S.cli("user", "add", "bob", "--given", "Bob", "--surname", "Baker", "--password", "pw-bob-1",
          "--alias", "robert@example.com", check=True)
    S.cli("user", "set", "bob", "--title", "Head baker", "--department", "Ovens", "--company", "Example Ltd",
          "--phone", "+44 20 7946 0000", "--mobile", "+44 7700 900000", check=True)
    S.cli("user", "add", "ghost", "--given", "Gho", "--surname", "St", "--password", "pw-ghost-1", "--hidden",
          check=True)
    S.cli("contact", "add", "Carol Partner", "--email", "carol@partner.example", check=True)
    S.cli("dl", "add", "Sales", "--member", "bob", "--member", "ghost", check=True)


@test
def discovery_as_thunderbird_does_it():
    # RFC 6764: the well-known path redirects to the context path, with or without a password
    st, h, _ = dav("PROPFIND", "/.well-known/carddav", TB_PRINCIPAL, user=None, depth="0")
    assert st == 301 and h["location"] == "/dav/", (st, h)
    # no password yet: the Basic challenge
    st, h, _ = dav("PROPFIND", "/dav/", TB_PRINCIPAL, user=None, depth="0")
    assert st == 401 and h["www-authenticate"].startswith("Basic realm="), (st, h)
    st, _, body = dav("PROPFIND", "/dav/", TB_PRINCIPAL, depth="0")
    found, _ = responses(multistatus(st, body))
    principal = found["/dav/"][tag("d", "current-user-principal")].find("d:href", NS).text
    assert principal == "/dav/principals/alice/", principal
    privs = [p.tag for p in found["/dav/"][tag("d", "current-user-privilege-set")].iter()]
    assert tag("d", "read") in privs and tag("d", "write") not in privs, privs
    st, _, body = dav("PROPFIND", principal, TB_HOME, depth="0")
    found, _ = responses(multistatus(st, body))
    home = found[principal][tag("card", "addressbook-home-set")].find("d:href", NS).text
    assert home == "/dav/addressbooks/alice/", home
    st, _, body = dav("PROPFIND", home, TB_BOOKS, depth="1")
    found, _ = responses(multistatus(st, body))
    assert set(found) == {home, book()}, found.keys()
    rt = found[book()][tag("d", "resourcetype")]
    assert rt.find("card:addressbook", NS) is not None and rt.find("d:collection", NS) is not None
    assert found[book()][tag("cs", "getctag")].text and found[book()][tag("d", "sync-token")].text
    assert found[book()][tag("d", "displayname")].text


@test
def davx5_discovery_in_one_request():
    st, _, body = dav("PROPFIND", "/dav/addressbooks/alice/directory/", DX_DISCOVER, depth="0")
    found, _ = responses(multistatus(st, body))
    props = found[book()]
    kinds = {(e.get("content-type"), e.get("version")) for e in props[tag("card", "supported-address-data")]}
    assert kinds == {("text/vcard", "3.0"), ("text/vcard", "4.0")}, kinds
    assert "read-only" in props[tag("card", "addressbook-description")].text
    assert props[tag("d", "current-user-principal")].find("d:href", NS).text == "/dav/principals/alice/"


@test
def cardbook_lists_and_multigets_vcard3_without_the_hidden():
    st, _, body = dav("PROPFIND", book(), CB_LIST, depth="1")
    found, _ = responses(multistatus(st, body))
    cards = {h: p for h, p in found.items() if h != book()}
    ids = {h.rsplit("/", 1)[1][:-4] for h in cards}
    for login in ("alice", "bob"):
        assert uuid_of(login) in ids, (login, ids)
    assert uuid_of("ghost") not in ids, "the hidden recipient is listed"
    assert len(ids) == 4, ids  # alice, bob, the contact, the list
    for p in cards.values():
        assert p[tag("d", "getetag")].text.startswith('"')
        assert p[tag("d", "getcontenttype")].text.startswith("text/vcard")
    hrefs = "".join("<D:href>%s</D:href>" % h for h in sorted(cards))
    hrefs += "<D:href>%s%s.vcf</D:href>" % (book(), uuid_of("ghost"))
    st, _, body = dav("REPORT", book(), CB_MULTIGET % hrefs, depth="1")
    found, statuses = responses(multistatus(st, body))
    assert statuses == {"%s%s.vcf" % (book(), uuid_of("ghost")): "HTTP/1.1 404 Not Found"}, statuses
    texts = {h: p[tag("card", "address-data")].text for h, p in found.items() if h in cards}
    assert len(texts) == 4, texts.keys()
    bob = texts["%s%s.vcf" % (book(), uuid_of("bob"))]
    v = parse_vcard(bob, "3.0")
    assert v.fn.value == "Bob Baker", bob
    assert v.n.value.family == "Baker" and v.n.value.given == "Bob", bob
    emails = [e.value for e in v.contents["email"]]
    assert emails[0] == "bob.baker@example.com" and "robert@example.com" in emails, emails
    assert v.title.value == "Head baker" and v.org.value == ["Example Ltd", "Ovens"], bob
    tels = sorted(t.value for t in v.contents["tel"])
    assert tels == ["+44 20 7946 0000", "+44 7700 900000"], tels
    assert v.uid.value == uuid_of("bob"), bob
    carol = [t for t in texts.values() if "carol@partner.example" in t]
    assert len(carol) == 1 and parse_vcard(carol[0], "3.0").fn.value == "Carol Partner", texts
    sales = [t for t in texts.values() if "FN:Sales" in t]
    assert len(sales) == 1 and "X-ADDRESSBOOKSERVER-KIND:group" in sales[0], texts
    assert not any("ghost" in t.lower() for t in texts.values()), texts


@test
def davx5_syncs_and_gets_vcard4():
    st, _, body = dav("REPORT", book(), DX_SYNC, depth="0")
    ms = multistatus(st, body)
    token = ms.find("d:sync-token", NS).text
    found, _ = responses(ms)
    assert len(found) == 4 and all(tag("d", "getetag") in p for p in found.values()), found
    hrefs = "".join("<href>%s</href>" % h for h in sorted(found))
    st, _, body = dav("REPORT", book(), DX_MULTIGET % hrefs, depth="0")
    found, _ = responses(multistatus(st, body))
    bob = found["%s%s.vcf" % (book(), uuid_of("bob"))][tag("card", "address-data")].text
    v = parse_vcard(bob, "4.0")
    assert "KIND:individual" in bob and "UID:urn:uuid:%s" % uuid_of("bob") in bob, bob
    assert v.fn.value == "Bob Baker", bob
    sales = [p[tag("card", "address-data")].text for p in found.values()
             if "FN:Sales" in p[tag("card", "address-data")].text]
    assert "KIND:group" in sales[0], sales
    # nothing changed: the same token gives nothing; a change makes it invalid (the client lists again)
    st, _, body = dav("REPORT", book(), DX_SYNC.replace("<sync-token/>", "<sync-token>%s</sync-token>" % token))
    ms = multistatus(st, body)
    assert ms.findall("d:response", NS) == [] and ms.find("d:sync-token", NS).text == token, body
    S.cli("user", "set", "bob", "--title", "Master baker", check=True)
    st, _, body = dav("REPORT", book(), DX_SYNC.replace("<sync-token/>", "<sync-token>%s</sync-token>" % token))
    assert st == 403 and "valid-sync-token" in body, (st, body)
    # Thunderbird's first sync: every card with its data, and the new token
    st, _, body = dav("REPORT", book(), TB_SYNC % "")
    ms = multistatus(st, body)
    assert ms.find("d:sync-token", NS).text != token
    datas = [r.find(".//card:address-data", NS).text for r in ms.findall("d:response", NS)]
    assert len(datas) == 4 and any("TITLE:Master baker" in d for d in datas), datas


@test
def query_finds_by_name_and_address_but_never_the_hidden():
    st, _, body = dav("REPORT", book(), QUERY % ("baker", "nobody-matches"), depth="1")
    found, _ = responses(multistatus(st, body))
    assert list(found) == ["%s%s.vcf" % (book(), uuid_of("bob"))], found.keys()
    st, _, body = dav("REPORT", book(), QUERY % ("nothing", "ROBERT@"), depth="1")
    found, _ = responses(multistatus(st, body))
    assert list(found) == ["%s%s.vcf" % (book(), uuid_of("bob"))], found.keys()
    st, _, body = dav("REPORT", book(), QUERY % ("gho", "gho.st@"), depth="1")
    found, _ = responses(multistatus(st, body))
    assert found == {}, body


@test
def get_a_card_in_both_versions():
    href = "%s%s.vcf" % (book(), uuid_of("alice"))
    st, h, body = dav("GET", href)
    assert st == 200 and h["content-type"].startswith("text/vcard") and h["etag"].startswith('"'), (st, h)
    assert parse_vcard(body, "3.0").fn.value == "Alice Archer", body
    st, h, body = dav("GET", href, headers=["Accept: text/vcard;version=4.0"])
    assert st == 200 and parse_vcard(body, "4.0").fn.value == "Alice Archer", body
    st, _, _ = dav("GET", href, headers=["If-None-Match: %s" % h["etag"]])
    assert st == 304, st
    st, _, _ = dav("GET", "%s%s.vcf" % (book(), uuid_of("ghost")))
    assert st == 404, st


@test
def the_hidden_user_signs_in_but_is_not_in_the_book():
    st, _, body = dav("PROPFIND", "/dav/addressbooks/ghost/directory/", CB_LIST, depth="1",
                      user=("ghost", "pw-ghost-1"))
    found, _ = responses(multistatus(st, body))
    assert len(found) == 5 and not any(uuid_of("ghost") in h for h in found), found.keys()


@test
def groups_list_their_visible_members():
    """A list's card names its members (vCard 4 MEMBER, vCard 3 Apple's X-ADDRESSBOOKSERVER-MEMBER) by their cards'
    UIDs; a member hidden from the address book is not named."""
    sales = S.ldapsearch("(cn=Sales)", "entryUUID", bind_dn=S.admin_dn, password=S.admin_password).stdout
    href = "%s%s.vcf" % (book(), [x.split(": ")[1] for x in sales.splitlines() if x.startswith("entryUUID:")][0])
    for version, multiget, ref, prop in (("3.0", CB_MULTIGET, "<D:href>%s</D:href>", "X-ADDRESSBOOKSERVER-MEMBER"),
                                         ("4.0", DX_MULTIGET, "<href>%s</href>", "MEMBER")):
        st, _, body = dav("REPORT", book(), multiget % (ref % href), depth="1")
        found, _ = responses(multistatus(st, body))
        text = found[href][tag("card", "address-data")].text
        v = parse_vcard(text, version)
        members = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith(prop + ":")]
        assert members == ["urn:uuid:" + uuid_of("bob")], (version, text)
        assert uuid_of("ghost") not in text, text
        assert v is not None


@test
def app_passwords_sign_in_as_on_imap():
    made = S.cli("user", "app-password", "add", "alice", "contacts", check=True).stdout.strip().splitlines()[-1]
    st, _, body = dav("PROPFIND", book(), CB_LIST, depth="1", user=("alice", made))
    found, _ = responses(multistatus(st, body))
    ids = {h.rsplit("/", 1)[1][:-4] for h in found if h != book()}
    assert uuid_of("bob") in ids and uuid_of("ghost") not in ids and len(ids) == 4, ids
    st, _, body = dav("GET", "%s%s.vcf" % (book(), uuid_of("ghost")), user=("alice", made))
    assert st == 404, (st, body)
    # an app password is alice's alone, and a revoked one no longer signs in
    assert dav("PROPFIND", "/dav/addressbooks/bob/directory/", CB_LIST, depth="1", user=("bob", made))[0] == 401
    S.cli("user", "app-password", "del", "alice", "contacts", check=True)
    assert dav("PROPFIND", book(), CB_LIST, depth="1", user=("alice", made))[0] == 401


@test
def refusals():
    st, h, _ = dav("PROPFIND", book(), CB_LIST, depth="1", user=("alice", "wrong"))
    assert st == 401 and "basic" in h["www-authenticate"].lower(), st
    # by address too
    st, _, _ = dav("PROPFIND", book(), CB_LIST, depth="0", user=("alice.archer@example.com", ALICE[1]))
    assert st == 207, st
    st, _, _ = dav("PROPFIND", "/dav/addressbooks/bob/directory/", CB_LIST, depth="1")
    assert st == 403, st
    href = "%s%s.vcf" % (book(), uuid_of("alice"))
    for method in ("PUT", "DELETE", "PROPPATCH", "MKCOL"):
        st, _, _ = dav(method, href, "BEGIN:VCARD\r\nEND:VCARD\r\n" if method == "PUT" else None)
        assert st == 403, (method, st)
    st, h, _ = dav("OPTIONS", book(), user=None)
    assert st == 200 and "addressbook" in h["dav"] and "REPORT" in h["allow"], h
    # plain HTTP only redirects to HTTPS: no password in clear
    st, h, _ = dav("PROPFIND", book(), CB_LIST, depth="1", plain=True, user=None)
    assert st == 301 and h["location"] == "https://%s:%d%s" % (HOST, S.ports["https"], book()), (st, h)
    # an entity in the body is not expanded, nothing is fetched
    evil = ('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<propfind xmlns="DAV:"><prop><displayname>&x;</displayname></prop></propfind>')
    st, _, body = dav("PROPFIND", book(), evil, depth="0")
    assert "root:" not in body, body
    st, _, _ = dav("PROPFIND", book(), "<not xml", depth="0")
    assert st == 400, st


if __name__ == "__main__":
    main("test_carddav")
