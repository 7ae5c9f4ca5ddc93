#!/usr/bin/env python3
# test_dane.py - DANE for SMTP (RFC 7672) and MTA-STS (RFC 8461) on the way out: the MX hosts of the recipients' domains are found through a
# real DNS server (Debian's nsd, zones signed with ldns-signzone, the test's trust anchor given by dns.trust_anchor)
# and listen on port 25 of addresses of a network namespace of the test's own, each a receiver offering STARTTLS with
# a certificate the test made. A host whose validated TLSA record (DANE-EE 3 1 1) matches its certificate gets the
# message, with the TLS outcome in track; one whose certificate does not match gets nothing (deferred, the reason in
# track); DANE-TA (2 0 1) over the chain; a DANE host without STARTTLS is refused; an unsigned domain gets
# opportunistic TLS. MTA-STS: policies served over HTTPS by a small server of the test's (a certificate of the test's
# CA, which mta_sts.ca_file names) and fetched once: under enforce, an MX host with a certificate of that CA gets the
# message, one with a self-signed certificate and one the policy does not name get nothing (deferred, why in track).
# TLS reports (RFC 8460): with tlsrpt.enabled every negotiation is recorded, and `interchange maintenance run` sends
# the domains that publish a _smtp._tls record their gzipped JSON report, to a receiver of the test's.
import email
import email.policy
import gzip
import hashlib
import http.server
import json
import os
import re
import smtplib
import sys
import ssl
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import certs  # noqa: E402
from dns_server import Nsd  # noqa: E402
from mail_auth import own_network, serialization  # noqa: E402
from smtp_sink import Sink  # noqa: E402

S = None
NS = None
SINKS = {}
PW = "secret-pw"
# the receivers' addresses (port 25 each)
ADDR = {"good": "192.0.2.25", "bad": "192.0.2.26", "ta": "192.0.2.27", "notls": "192.0.2.28", "plain": "192.0.2.29",
        "sts1": "192.0.2.31", "sts2": "192.0.2.32", "sts9": "192.0.2.39"}
HTTPS_ADDR = "192.0.2.30"
# the MTA-STS policies, by the host they are asked from (mta-sts.DOMAIN), and how often each was fetched
POLICIES = {"mta-sts.good.sts.test": "mx1.sts.test", "mta-sts.self.sts.test": "mx2.sts.test",
            "mta-sts.out.sts.test": "*.sts.test"}
FETCHES = {}
SPKI = []  # the key hash of mx1's (and mx2's) TLSA record


class PolicyHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the name http.server calls
        host = self.headers.get("Host", "")
        mx = POLICIES.get(host)
        if self.path != "/.well-known/mta-sts.txt" or mx is None:
            self.send_error(404)
            return
        FETCHES[host] = FETCHES.get(host, 0) + 1
        body = ("version: STSv1\r\nmode: enforce\r\nmx: %s\r\nmax_age: 86400\r\n" % mx).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def spki_sha256(cert):
    return hashlib.sha256(cert.public_key().public_bytes(serialization.Encoding.DER,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def cert_sha256(cert):
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def send(to, subject):
    c = smtplib.SMTP("127.0.0.1", S.ports["submission"], timeout=20)
    c.login("alice", PW)
    c.sendmail("alice.smith@example.com", [to], "From: alice.smith@example.com\r\nTo: %s\r\nSubject: %s\r\n"
               "Message-ID: <%s@test>\r\n\r\nhello\r\n" % (to, subject, subject.replace(" ", "-")))
    c.quit()


def tracking():
    try:
        return open(os.path.join(S.data, "log", "tracking.log")).read()
    except FileNotFoundError:
        return ""


def track_line(rcpt, event):
    """The first tracking line of event for rcpt, waited for."""
    def find():
        return [ln for ln in tracking().splitlines() if rcpt in ln and event in ln]
    lines = h.wait_for(find, timeout=20, interval=0.1)
    assert lines, "no %s line for %s: %s\n%s" % (event, rcpt, tracking()[-1500:], S.log("mta")[-1500:])
    return lines[0]


@h.setup
def setup():
    global S, NS
    if serialization is None:
        h.skip("python3-cryptography is not installed")
    own_network(HTTPS_ADDR, *ADDR.values())
    folder = tempfile.mkdtemp(prefix="ixdane-", dir="/tmp")
    good = certs.make_pair("mx1.dane.test")
    wrong = certs.make_pair("mx2.dane.test")
    ca = certs.make_pair("DANE Test CA", ca=True, days=365)
    leaf = certs.make_pair("mx3.dane.test", ca)
    any_cert = certs.make_pair("mx.plain.test")
    tls = {"good": good, "bad": wrong, "ta": leaf, "plain": any_cert, "sts1": certs.make_pair("mx1.sts.test", ca),
           "sts2": certs.make_pair("mx2.sts.test"), "sts9": certs.make_pair("mx9.elsewhere.test", ca)}
    for name, addr in ADDR.items():
        chain = None
        if name in tls:
            objs = (tls[name][1], ca[1]) if name == "ta" else (tls[name][1],)
            chain = (certs.write(folder, name + ".pem", *objs), certs.write(folder, name + ".key", tls[name][0]))
        SINKS[name] = Sink(tls=chain, addr=(addr, 25))
        SINKS[name].start()
    zone = ""
    for i, name in enumerate(("good", "bad", "ta", "notls"), 1):
        zone += "%s.dane.test. IN MX 10 mx%d.dane.test.\nmx%d.dane.test. IN A %s\n" % (name, i, i, ADDR[name])
    zone += "_25._tcp.mx1.dane.test. IN TLSA 3 1 1 %s\n" % spki_sha256(good[1])
    zone += "_25._tcp.mx2.dane.test. IN TLSA 3 1 1 %s\n" % spki_sha256(good[1])  # mx2 presents another key
    zone += "_25._tcp.mx3.dane.test. IN TLSA 2 0 1 %s\n" % cert_sha256(ca[1])
    zone += "_25._tcp.mx4.dane.test. IN TLSA 3 1 1 %s\n" % spki_sha256(good[1])
    for name in ("good", "bad"):
        zone += '_smtp._tls.%s.dane.test. IN TXT "v=TLSRPTv1; rua=mailto:tls-reports@rpt.test"\n' % name
    SPKI.append(spki_sha256(good[1]))
    sts = "mx1.sts.test. IN A %s\nmx2.sts.test. IN A %s\n" % (ADDR["sts1"], ADDR["sts2"])
    for name, mx in (("good", "mx1.sts.test"), ("self", "mx2.sts.test"), ("out", "mx9.elsewhere.test")):
        sts += ("%s.sts.test. IN MX 10 %s.\n_mta-sts.%s.sts.test. IN TXT \"v=STSv1; id=20261207\"\n"
                "mta-sts.%s.sts.test. IN A %s\n" % (name, mx, name, name, HTTPS_ADDR))
    NS = Nsd({"dane.test": zone, "plain.test": "plain.test. IN MX 10 mx.plain.test.\nmx.plain.test. IN A %s\n" %
              ADDR["plain"], "sts.test": sts, "elsewhere.test": "mx9.elsewhere.test. IN A %s\n" % ADDR["sts9"]},
             signed=("dane.test",))
    # the policies' HTTPS server, with a certificate of the test's CA for every mta-sts name
    web = certs.make_pair("mta-sts.good.sts.test", ca, alt=list(POLICIES))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs.write(folder, "web.pem", web[1]), certs.write(folder, "web.key", web[0]))
    server = http.server.ThreadingHTTPServer((HTTPS_ADDR, 443), PolicyHandler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.chmod(folder, 0o755)  # ix-mta, under its own user, reads the CA file
    ca_file = certs.write(folder, "ca.pem", ca[1])
    os.chmod(ca_file, 0o644)
    S = h.System()
    NS.resolve_for(S)
    S.cli("server", "set", "mta_sts.ca_file", ca_file, check=True)
    S.cli("server", "set", "tlsrpt.organization", "Example Org", check=True)
    S.cli("server", "set", "tlsrpt.contact", "tls-admin@example.com", check=True)
    S.set_live("tlsrpt.enabled", 1, services=("mta",))
    S.cli("user", "add", "alice", "--given", "Alice", "--surname", "Smith", "--password", PW, check=True)
    assert h.wait_for(lambda: h.imap_login_ok(S.ports["imap"], "alice", PW), timeout=15)


def outcome(sink, rcpt, subject, event, text):
    """Sends subject to rcpt; its first tracking line is event and says text; sink got it only when relayed."""
    send(rcpt, subject)
    line = track_line(rcpt, event)
    assert text in line, line
    got = SINKS[sink].find("<%s@test>" % subject.replace(" ", "-"))
    assert bool(got) == (event == "relayed"), (sink, got)  # nothing goes over a connection DANE refused
    return line


@h.test
def dane_ee_match_delivered():
    line = outcome("good", "someone@good.dane.test", "dane good", "relayed", "TLS DANE, verified (DANE-EE)")
    assert "mx1.dane.test[192.0.2.25]:25" in line and SINKS["good"].tls_sessions >= 1, line


@h.test
def dane_ee_mismatch_deferred():
    outcome("bad", "someone@bad.dane.test", "dane bad", "deferred",
            "DANE: the certificate matches none of the TLSA records of mx2.dane.test")
    assert "relayed" not in [ln for ln in tracking().splitlines() if "bad.dane.test" in ln]
    shown = S.cli("track", "someone@bad.dane.test", check=True).stdout
    assert "deferred" in shown and "matches none of the TLSA records" in shown, shown


@h.test
def dane_ta_chain_delivered():
    outcome("ta", "someone@ta.dane.test", "dane ta", "relayed", "TLS DANE, verified (DANE-TA)")


@h.test
def dane_without_starttls_deferred():
    outcome("notls", "someone@notls.dane.test", "dane notls", "deferred",
            "offers no STARTTLS, which its DANE TLSA records require")


@h.test
def unsigned_domain_opportunistic():
    outcome("plain", "someone@plain.test", "plain", "relayed", "TLS opportunistic, not verified")


@h.test
def mta_sts_enforced_verified_and_cached():
    outcome("sts1", "someone@good.sts.test", "sts good", "relayed", "TLS MTA-STS, verified")
    outcome("sts1", "other@good.sts.test", "sts good again", "relayed", "TLS MTA-STS, verified")
    assert FETCHES.get("mta-sts.good.sts.test") == 1, FETCHES  # the policy is kept for its max_age


@h.test
def mta_sts_certificate_not_valid_deferred():
    outcome("sts2", "someone@self.sts.test", "sts self", "deferred",
            "MTA-STS: the certificate is not valid for mx2.sts.test")


@h.test
def mta_sts_mx_outside_the_policy_deferred():
    outcome("sts9", "someone@out.sts.test", "sts out", "deferred",
            "451 4.7.5 No MX host of out.sts.test is allowed by its MTA-STS policy (mx: *.sts.test)")
    assert SINKS["sts9"].connections == 0


@h.test
def tls_reports():
    rpt = Sink()
    rpt.start()
    S.connector("reports", "rpt.test", rpt.port)
    S.cli("maintenance", "run", check=True)
    assert h.wait_for(lambda: len(rpt.messages) >= 2, timeout=20), S.log("mta")[-1500:] + S.log("attendant")[-1500:]
    reports = {}
    for m in rpt.messages:
        assert m[1] == ["tls-reports@rpt.test"], m[:2]
        msg = email.message_from_bytes(m[2], policy=email.policy.default)
        assert msg.get_content_type() == "multipart/report" and msg.get_param("report-type") == "tlsrpt", msg
        parts = [p for p in msg.iter_parts() if p.get_content_type() == "application/tlsrpt+gzip"]
        assert len(parts) == 1 and parts[0].get_filename().endswith(".json.gz"), msg
        rep = json.loads(gzip.decompress(parts[0].get_payload(decode=True)))
        assert msg["TLS-Report-Domain"] not in reports, msg["TLS-Report-Domain"]
        reports[msg["TLS-Report-Domain"]] = rep
        assert msg["TLS-Report-Submitter"] == "example.com" and msg["Subject"] == (
            "Report Domain: %s Submitter: example.com Report-ID: <%s>" % (msg["TLS-Report-Domain"], rep["report-id"]))
    # only the domains that publish a TLSRPT record get a report (not plain.test, notls or the sts.test ones)
    assert sorted(reports) == ["bad.dane.test", "good.dane.test"], sorted(reports)
    bad = reports["bad.dane.test"]
    assert bad["organization-name"] == "Example Org" and bad["contact-info"] == "tls-admin@example.com", bad
    for t in ("start-datetime", "end-datetime"):
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", bad["date-range"][t]), bad["date-range"]
    assert len(bad["policies"]) == 1, bad
    pol = bad["policies"][0]
    assert pol["policy"] == {"policy-type": "tlsa", "policy-string": ["3 1 1 " + SPKI[0].upper()],
                             "policy-domain": "bad.dane.test", "mx-host": ["mx2.dane.test"]}, pol
    assert pol["summary"]["total-successful-session-count"] == 0, pol
    failed = pol["summary"]["total-failure-session-count"]
    assert failed >= 1 and pol["failure-details"] == [
        {"result-type": "tlsa-invalid", "receiving-ip": ADDR["bad"], "receiving-mx-hostname": "mx2.dane.test",
         "failed-session-count": failed}], pol
    good = reports["good.dane.test"]["policies"]
    assert len(good) == 1 and good[0]["policy"]["policy-type"] == "tlsa", good
    assert good[0]["summary"] == {"total-successful-session-count": 1, "total-failure-session-count": 0}, good
    assert "failure-details" not in good[0], good
    # the records were taken: a second run sends nothing
    assert not any(f.endswith(".sending") for f in os.listdir(os.path.join(S.data, "tlsrpt")))
    S.cli("maintenance", "run", check=True)
    assert len(rpt.messages) == 2


if __name__ == "__main__":
    try:
        h.main("dane")
    finally:
        if NS is not None:
            NS.stop()
