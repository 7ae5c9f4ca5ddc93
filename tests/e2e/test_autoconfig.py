"""test_autoconfig.py - clients that configure themselves, with curl as the client: Thunderbird's autoconfig on both
of its paths, Outlook's Autodiscover (plain-XML schema, POST), an Apple profile and the MTA-STS policy, each naming
the host, ports and socket types `interchange status` shows; and `interchange dns`, whose records are loaded into a
real DNS server (Debian's nsd) and asked for with dig, checked against the directory's state as it changes (DKIM
keys made, a second accepted domain) and against the certificate's key."""
import hashlib
import json
import os
import plistlib
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dns_server import Nsd  # noqa: E402
from harness import System, main, run, setup, skip, test, wait_for  # noqa: E402

S = None
HOST = "mail.example.com"
AD_NS = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"
AD_ROOT_NS = "{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}"
AD_REQUEST = ('<?xml version="1.0" encoding="utf-8"?>\r\n'
              '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">'
              '<Request><EMailAddress>%s</EMailAddress><AcceptableResponseSchema>'
              'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a'
              '</AcceptableResponseSchema></Request></Autodiscover>')


def curl(*args):
    return run(["curl", "-sS", "--max-time", "10"] + list(args))


def http(path, host="example.com", *extra):
    return curl("-H", "Host: " + host, "http://127.0.0.1:%d%s" % (S.ports["http"], path), *extra)


def thunderbird(doc):
    """{(type, socketType): (hostname, port)} of a config-v1.1.xml."""
    root = ET.fromstring(doc)
    found = {}
    for el in root.iter():
        if el.tag in ("incomingServer", "outgoingServer"):
            assert el.find("username").text == "%EMAILADDRESS%"
            assert el.find("authentication").text == "password-cleartext"
            found[(el.get("type"), el.find("socketType").text)] = (el.find("hostname").text,
                                                                   int(el.find("port").text))
    return found


@setup
def system():
    global S
    S = System()


@test
def thunderbird_autoconfig():
    p = S.ports
    want = {("imap", "SSL"): (HOST, p["imaps"]), ("imap", "STARTTLS"): (HOST, p["imap"]),
            ("pop3", "SSL"): (HOST, p["pop3s"]), ("pop3", "STARTTLS"): (HOST, p["pop3"]),
            ("smtp", "STARTTLS"): (HOST, p["submission"]), ("smtp", "SSL"): (HOST, p["submissions"])}
    # the well-known path on the domain with the address, and /mail/ on the autoconfig. host
    r = http("/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice%40example.com", "example.com", "-i")
    assert r.stdout.startswith("HTTP/1.1 200") and "Content-Type: application/xml" in r.stdout, r.stdout
    assert thunderbird(r.stdout.split("\n\n", 1)[1]) == want
    r = http("/mail/config-v1.1.xml", "autoconfig.example.com")
    assert thunderbird(r.stdout) == want
    assert "<domain>example.com</domain>" in r.stdout
    # over HTTPS as well
    r = curl("-k", "https://127.0.0.1:%d/mail/config-v1.1.xml?emailaddress=alice@example.com" % p["https"])
    assert thunderbird(r.stdout) == want
    # an address of another organisation, or not an address
    for q in ("someone%40elsewhere.org", "not-an-address", "a%3Cb%40example.com"):
        r = http("/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=" + q, "example.com",
                 "-o", "/dev/null", "-w", "%{http_code}")
        assert r.stdout in ("400", "404"), (q, r.stdout)


def autodiscover(address, path="/autodiscover/autodiscover.xml"):
    r = curl("-X", "POST", "-H", "Content-Type: text/xml", "--data-binary", AD_REQUEST % address,
             "-H", "Host: autodiscover.example.com", "http://127.0.0.1:%d%s" % (S.ports["http"], path))
    assert r.returncode == 0, r.stderr
    return ET.fromstring(r.stdout)


@test
def outlook_autodiscover():
    root = autodiscover("bob@example.com")
    assert root.tag == AD_ROOT_NS + "Autodiscover"
    account = root.find(AD_NS.join(["", "Response/", "Account"]))
    assert account.find(AD_NS + "AccountType").text == "email" and account.find(AD_NS + "Action").text == "settings"
    got = {}
    for proto in account.findall(AD_NS + "Protocol"):
        assert proto.find(AD_NS + "Server").text == HOST
        assert proto.find(AD_NS + "LoginName").text == "bob@example.com"
        got[proto.find(AD_NS + "Type").text] = (int(proto.find(AD_NS + "Port").text),
                                                 proto.find(AD_NS + "Encryption").text)
    assert got == {"IMAP": (S.ports["imaps"], "SSL"), "POP3": (S.ports["pop3s"], "SSL"),
                   "SMTP": (S.ports["submissions"], "SSL")}, got
    # Outlook also writes the path capitalised; a foreign domain and a broken request get the schema's errors
    assert autodiscover("bob@example.com", "/Autodiscover/Autodiscover.xml").find(AD_NS.join(["", "Response/",
                                                                                              "Account"])) is not None
    err = autodiscover("bob@elsewhere.org")
    assert err.find("%sResponse/%sError/%sErrorCode" % ((AD_ROOT_NS,) * 3)).text == "603", ET.tostring(err)
    r = curl("-X", "POST", "--data-binary", "<Autodiscover><Request></Request></Autodiscover>",
             "http://127.0.0.1:%d/autodiscover/autodiscover.xml" % S.ports["http"])
    assert "<ErrorCode>600</ErrorCode>" in r.stdout, r.stdout
    r = curl("-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:%d/autodiscover/autodiscover.xml"
             % S.ports["http"])
    assert r.stdout == "405", r.stdout


@test
def apple_profile():
    r = curl("-D", "-", "-o", os.path.join(S.base, "p.mobileconfig"),
             "http://127.0.0.1:%d/mobileconfig?emailaddress=carol%%40example.com" % S.ports["http"])
    assert "application/x-apple-aspen-config" in r.stdout and 'filename="example.com.mobileconfig"' in r.stdout
    with open(os.path.join(S.base, "p.mobileconfig"), "rb") as f:
        prof = plistlib.load(f)
    assert prof["PayloadType"] == "Configuration" and prof["PayloadVersion"] == 1
    acct = prof["PayloadContent"][0]
    assert acct["PayloadType"] == "com.apple.mail.managed" and acct["EmailAccountType"] == "EmailTypeIMAP"
    assert acct["IncomingMailServerHostName"] == HOST and acct["OutgoingMailServerHostName"] == HOST
    assert acct["IncomingMailServerPortNumber"] == S.ports["imaps"] and acct["IncomingMailServerUseSSL"] is True
    assert acct["EmailAddress"] == acct["IncomingMailServerUsername"] == "carol@example.com"
    # the same download twice gives the same identifiers (the device replaces the account)
    again = curl("http://127.0.0.1:%d/mobileconfig?emailaddress=carol%%40example.com" % S.ports["http"])
    assert plistlib.loads(again.stdout.encode())["PayloadUUID"] == prof["PayloadUUID"]
    r = curl("-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:%d/mobileconfig" % S.ports["http"])
    assert r.stdout == "400"


@test
def mta_sts_policy():
    r = curl("-k", "-H", "Host: mta-sts.example.com", "https://127.0.0.1:%d/.well-known/mta-sts.txt" % S.ports["https"])
    lines = r.stdout.splitlines()
    assert lines[0] == "version: STSv1" and "mx: " + HOST in lines and "mode: testing" in lines, r.stdout
    # RFC 8461: HTTPS only
    r = http("/.well-known/mta-sts.txt", "mta-sts.example.com", "-o", "/dev/null", "-w", "%{http_code}")
    assert r.stdout == "404", r.stdout


def dns(*args):
    r = S.cli("dns", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def spki_sha256():
    """The SHA-256 of the certificate's public key, by python3-cryptography (a second implementation)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    pem = S.cli("cert", "show", "--pem", check=True).stdout.encode()
    key = x509.load_pem_x509_certificate(pem).public_key()
    return hashlib.sha256(key.public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()


@test
def dns_records_served_by_nsd():
    if shutil.which("ldns-read-zone") is None:
        skip("ldns-read-zone is not installed (make deps installs ldnsutils)")
    with tempfile.NamedTemporaryFile("w", suffix=".zone", delete=False) as f:
        f.write(dns())
    r = run(["ldns-read-zone", f.name])
    os.unlink(f.name)
    assert r.returncode == 0, "not a valid zone: " + r.stderr
    ns = Nsd({"example.com": dns()})
    try:
        p = S.ports
        assert ns.ask("MX", "example.com") == "10 %s." % HOST
        for svc, prio, port in (("imaps", 0, p["imaps"]), ("imap", 10, p["imap"]), ("pop3s", 20, p["pop3s"]),
                                ("pop3", 30, p["pop3"]), ("submission", 10, p["submission"])):
            assert ns.ask("SRV", "_%s._tcp.example.com" % svc) == "%d 1 %d %s." % (prio, port, HOST), svc
        assert ns.ask("SRV", "_submissions._tcp.example.com") == "0 1 %d %s." % (p["submissions"], HOST)
        assert ns.ask("TXT", "example.com") == '"v=spf1 mx -all"'
        assert ns.ask("TXT", "_dmarc.example.com").startswith('"v=DMARC1; p=none;')
        assert ns.ask("TXT", "_smtp._tls.example.com") == '"v=TLSRPTv1; rua=mailto:postmaster@example.com"'
        assert ns.ask("TXT", "_mta-sts.example.com").startswith('"v=STSv1; id=')
        for name in ("autoconfig", "autodiscover", "mta-sts"):
            assert ns.ask("CNAME", "%s.example.com" % name) == HOST + ".", name
        assert ns.ask("SRV", "_autodiscover._tcp.example.com") == "0 1 %d %s." % (p["https"], HOST)
        tlsa = ns.ask("TLSA", "_%d._tcp.%s" % (p["smtp"], HOST)).replace(" ", "").lower()
        assert tlsa == "311" + spki_sha256(), tlsa
        assert ns.ask("TLSA", "_%d._tcp.%s" % (p["imaps"], HOST)).replace(" ", "").lower() == tlsa
    finally:
        ns.stop()


@test
def dkim_keys_published():
    assert "_domainkey" not in dns() and '"v=DMARC1; p=none;' in dns()
    made = S.cli("domain", "dkim", "example.com", check=True).stdout
    keys = [line for line in made.splitlines() if "._domainkey.example.com. IN TXT" in line]
    assert len(keys) == 2, made
    out = dns()
    for line in keys:
        assert line in out, (line, out)
    assert '"v=DMARC1; p=quarantine; rua=mailto:postmaster@example.com"' in out
    ns = Nsd({"example.com": out})
    try:
        for line in keys:
            name = line.split()[0]
            txt = ns.ask("TXT", name).replace('" "', "")
            assert txt.startswith('"v=DKIM1; k=') and txt.strip('"') in "".join(line.split('"')[1::2]), (txt, line)
    finally:
        ns.stop()


@test
def dns_and_autoconfig_follow_the_directory():
    # a second accepted domain: its records and its clients' configuration at once; an unknown domain is refused
    r = http("/mail/config-v1.1.xml", "autoconfig.example.org", "-o", "/dev/null", "-w", "%{http_code}")
    assert r.stdout == "404", r.stdout
    assert S.cli("dns", "example.org").returncode != 0
    r = S.ldapmodify("dn: cn=example.org,ou=Accepted Domains,ou=Configuration,%s\nobjectClass: ixAcceptedDomain\n"
                     "cn: example.org\nixDomainType: authoritative\n" % S.suffix, add=True)
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: "<domain>example.org</domain>" in
                    http("/mail/config-v1.1.xml", "autoconfig.example.org").stdout, timeout=10)
    org = dns("example.org")
    assert "example.org.\t3600\tIN\tMX\t10 %s." % HOST in org and "_imaps._tcp.example.org." in org
    ns = Nsd({"example.org": org})
    try:
        assert ns.ask("SRV", "_submissions._tcp.example.org") == "0 1 %d %s." % (S.ports["submissions"], HOST)
    finally:
        ns.stop()
    r = S.cli("dns", "elsewhere.net")
    assert r.returncode != 0 and "not a domain of this organisation" in r.stderr, r.stderr
    # stopped: said in words
    S.stop()
    r = S.cli("dns")
    assert r.returncode != 0 and "start it first" in r.stderr, r.stderr


if __name__ == "__main__":
    main("test_autoconfig")
