#!/usr/bin/env python3
# test_authres.py - checks on the way in (issue 18): SPF (libspf2), DKIM verification (libopendkim) and DMARC
# (libopendmarc: reject at the end of DATA, quarantine into Junk) of mail from outside, written as
# Authentication-Results (RFC 8601) under the organisation's authserv-id, and fields that claim that id removed. The
# SPF and DKIM key records are served by a real DNS server (Debian's nsd, on loopback; the server is pointed at it by
# the setting dns.resolver); the messages are signed by an independent signer (dkimpy, with keys made by
# python3-cryptography) and sent with python3's smtplib and swaks; what was stored is read over IMAP. Every DMARC
# evaluation is recorded (dmarc.reports) and `interchange dmarc report --now` sends the aggregate reports (RFC 7489
# 7.2): the domains whose record asks for them at an address that verified it takes them (7.1) get a gzipped XML
# report, read here from the recipient's mailbox and parsed; one whose address did not verify gets none.
import email
import email.policy
import gzip
import imaplib
import os
import shutil
import smtplib
import subprocess
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from dns_server import Nsd  # noqa: E402
from mail_auth import Signer, missing, own_network  # noqa: E402

S = None
NS = None
# This test runs in a network namespace of its own, where loopback also holds these documentation addresses: SPF
# gives any loopback client a pass (libspf2), so the SMTP client that SPF judges comes from OUTSIDE to the server at
# SERVER_IP.
SERVER_IP = "192.0.2.7"
OUTSIDE = "198.51.100.7"
PW = "secret-pw"
SENDER = None  # the keys of sender.test
LOG_PREFIX = "authres"
REPORTS = "alice.smith@example.com"  # where the test domains want their DMARC aggregate reports


def message(frm, subject, extra=""):
    return ("From: %s\r\nTo: alice.smith@example.com\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n%s\r\nhello\r\n" %
            (frm, subject, subject.replace(" ", "-"), extra)).encode()


def signed(msg, selectors=("rsa1", "ed1")):
    return SENDER.sign(msg, selectors)


def send(sender, data, helo=None):
    """sender sends data to alice from OUTSIDE."""
    c = smtplib.SMTP(SERVER_IP, S.ports["smtp"], timeout=30, source_address=(OUTSIDE, 0))
    c.ehlo(helo or "client.outside.test")
    c.sendmail(sender, ["alice.smith@example.com"], data)
    c.quit()


def header(subject, timeout=15, folder="INBOX"):
    """The header block alice's copy of subject was stored with in folder (IMAP), unfolded into lines."""
    def fetch():
        m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=10)
        try:
            m.login("alice", PW)
            m.select(folder, readonly=True)
            typ, data = m.search(None, "SUBJECT", '"%s"' % subject)
            ids = data[0].split() if typ == "OK" else []
            return ids and m.fetch(ids[-1], "(BODY.PEEK[HEADER])")[1][0][1].decode("utf-8", "replace")
        finally:
            m.logout()
    hdr = h.wait_for(fetch, timeout=timeout, interval=0.1)
    assert hdr, "%s was not delivered: %s" % (subject, S.log("smtpd")[-1000:])
    return hdr.replace("\r\n\t", " ").replace("\r\n ", " ").split("\r\n")


def results(lines):
    """The Authentication-Results values of a header, in order."""
    return [l.split(":", 1)[1].strip() for l in lines if l.lower().startswith("authentication-results:")]


@h.setup
def setup():
    global S, NS, SENDER
    if missing():
        h.skip(missing())
    own_network(SERVER_IP, OUTSIDE)
    SENDER = Signer("sender.test")
    # sender.test and reject.test want aggregate reports at alice's address, and example.com says it takes them
    # (RFC 7489 7.1); quar.test wants them there too, but example.com does not say it takes its reports
    rua = "rua=mailto:%s" % REPORTS
    NS = Nsd({"sender.test": 'sender.test. IN TXT "v=spf1 ip4:%s -all"\n' % OUTSIDE + SENDER.records +
              '_dmarc.sender.test. IN TXT "v=DMARC1; p=reject; %s"\n' % rua,
              "forged.test": 'forged.test. IN TXT "v=spf1 ip4:192.0.2.1 -all"\n'
                             '_dmarc.forged.test. IN TXT "v=DMARC1; p=none"\n',
              "reject.test": 'reject.test. IN TXT "v=spf1 ip4:192.0.2.1 -all"\n'
                             '_dmarc.reject.test. IN TXT "v=DMARC1; p=reject; %s"\n' % rua,
              "quar.test": 'quar.test. IN TXT "v=spf1 -all"\n'
                           '_dmarc.quar.test. IN TXT "v=DMARC1; p=quarantine; %s!10m"\n' % rua,
              "example.com": 'sender.test._report._dmarc.example.com. IN TXT "v=DMARC1"\n'
                             'reject.test._report._dmarc.example.com. IN TXT "v=DMARC1"\n',
              "soft.test": 'soft.test. IN TXT "v=spf1 ~all"\n',
              "nospf.test": "nospf.test. IN A 192.0.2.9\n"})
    assert NS.ask("TXT", "ed1._domainkey.sender.test").startswith('"v=DKIM1; k=ed25519;')
    S = h.System(extra=["--listen", "0.0.0.0"])
    NS.resolve_for(S)
    S.cli("user", "add", "alice", "--given", "Alice", "--surname", "Smith", "--password", PW, check=True)
    assert h.wait_for(lambda: h.imap_login_ok(S.ports["imap"], "alice", PW), timeout=15)
    S.cli("server", "set", "dmarc.report_organization", "Example Org", check=True)
    S.cli("server", "set", "dmarc.report_contact", "dmarc-admin@example.com", check=True)
    S.set_live("dmarc.reports", 1, services=("smtpd",))


@h.test
def spf_pass_and_both_signatures_pass():
    send("someone@sender.test", signed(message("Some One <someone@sender.test>", "all good")))
    lines = header("all good")
    assert lines[0].startswith("Return-Path:") and lines[1].startswith("Authentication-Results: example.com;"), \
        lines[:3]
    ar = results(lines)
    assert len(ar) == 1, ar
    a = ar[0]
    assert "spf=pass (client-ip %s, helo client.outside.test)" % OUTSIDE in a and "smtp.mailfrom=someone@sender.test" in a, a
    assert a.count("dkim=pass") == 2, a
    assert "header.d=sender.test header.s=rsa1 header.a=rsa-sha256 header.b=" in a, a
    assert "header.d=sender.test header.s=ed1 header.a=ed25519-sha256 header.b=" in a, a
    assert a.endswith("dmarc=pass (p=reject) header.from=sender.test"), a


@h.test
def spf_fail_and_unsigned():
    send("boss@forged.test", message("boss@forged.test", "forged sender"))
    a = results(header("forged sender"))[0]
    assert "spf=fail" in a and "smtp.mailfrom=boss@forged.test" in a and "dkim=none" in a, a
    assert "dmarc=fail (p=none, delivered) header.from=forged.test" in a, a


@h.test
def spf_none_softfail_and_null_sender():
    send("x@nospf.test", message("x@nospf.test", "no spf record"))
    a = results(header("no spf record"))[0]
    assert "spf=none" in a and "dmarc=none header.from=nospf.test" in a, a
    send("x@soft.test", message("x@soft.test", "soft record"))
    assert "spf=softfail" in results(header("soft record"))[0]
    send("", message("MAILER-DAEMON@nospf.test", "null sender"), helo="mx.sender.test")
    a = results(header("null sender"))[0]
    assert "smtp.helo=mx.sender.test" in a and "smtp.mailfrom" not in a, a


@h.test
def dkim_fail_and_missing_key():
    data = signed(message("someone@sender.test", "tampered")).replace(b"hello\r\n", b"hello, changed\r\n")
    send("someone@sender.test", data)
    a = results(header("tampered"))[0]
    assert a.count("dkim=fail") == 2 and "header.s=rsa1" in a and "header.s=ed1" in a, a
    data = signed(message("someone@sender.test", "no such key"), selectors=("gone",))
    send("someone@sender.test", data)
    a = results(header("no such key"))[0]
    assert "dkim=permerror" in a and "header.s=gone" in a, a


@h.test
def dmarc_reject_and_quarantine():
    # p=reject, SPF fails and nothing is signed: refused at the end of DATA, naming the domain
    c = smtplib.SMTP(SERVER_IP, S.ports["smtp"], timeout=30, source_address=(OUTSIDE, 0))
    try:
        c.sendmail("ceo@reject.test", ["alice.smith@example.com"], message("ceo@reject.test", "to reject"))
        raise AssertionError("taken")
    except smtplib.SMTPDataError as e:
        assert e.smtp_code == 550 and e.smtp_error.decode().startswith(
            "5.7.1 Rejected by the DMARC policy of reject.test"), e
    c.quit()
    # p=quarantine: into Junk, with the reason in the results
    send("x@quar.test", message("x@quar.test", "to quarantine"))
    a = results(header("to quarantine", folder="Junk"))[0]
    assert "dmarc=fail (p=quarantine, quarantined) header.from=quar.test" in a, a
    # misaligned: SPF and DKIM pass, but for sender.test, not the From's quar.test
    send("someone@sender.test", signed(message("Boss <boss@quar.test>", "misaligned")))
    a = results(header("misaligned", folder="Junk"))[0]
    assert "spf=pass" in a and a.count("dkim=pass") == 2 and "dmarc=fail (p=quarantine" in a, a


@h.test
def claims_of_our_authserv_id_are_removed():
    forged = ("Authentication-Results: example.com; dkim=pass header.d=bank.test\r\n"
              "Authentication-Results:  (made up) EXAMPLE.COM;\r\n spf=pass\r\n"
              "Authentication-Results: mx.other.test; spf=pass smtp.mailfrom=x@other.test\r\n")
    send("someone@sender.test", message("someone@sender.test", "with claims", extra=forged))
    ar = results(header("with claims"))
    assert len(ar) == 2 and ar[0].startswith("example.com;") and "bank.test" not in ar[0], ar
    assert ar[1].startswith("mx.other.test;"), ar  # another's results are kept
    # from a logged-in user: removed too, and nothing of ours added (swaks, over submission)
    if shutil.which("swaks") is None:
        h.skip("swaks is not installed (Debian package swaks)")
    p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % S.ports["submission"], "--tls", "--auth", "PLAIN",
                        "--auth-user", "alice", "--auth-password", PW, "--from", "alice.smith@example.com",
                        "--to", "alice.smith@example.com", "--header", "Subject: claims from inside",
                        "--header", "Authentication-Results: example.com; dkim=pass header.d=bank.test"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert results(header("claims from inside")) == [], header("claims from inside")


@h.test
def checks_can_be_turned_off():
    S.set_live("smtp.inbound_checks", 0, services=("smtpd",))
    send("boss@forged.test", message("boss@forged.test", "unchecked",
                                     extra="Authentication-Results: example.com; spf=pass\r\n"))
    assert results(header("unchecked")) == []  # no results of ours, and the claim removed all the same
    S.set_live("smtp.inbound_checks", 1, services=("smtpd",))


def reports_of(domain):
    """The DMARC aggregate reports of domain in alice's INBOX (raw messages)."""
    m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=10)
    try:
        m.login("alice", PW)
        m.select("INBOX", readonly=True)
        typ, data = m.search(None, "SUBJECT", '"Report Domain: %s "' % domain)
        return [m.fetch(i, "(BODY.PEEK[])")[1][0][1] for i in (data[0].split() if typ == "OK" else [])]
    finally:
        m.logout()


def report(domain):
    """The DMARC aggregate report of domain in alice's INBOX: (the message, the parsed XML)."""
    raw = h.wait_for(lambda: reports_of(domain), timeout=20, interval=0.2)
    assert raw and len(raw) == 1, "no report of %s: %s" % (domain, S.log("attendant")[-1500:] + S.log("mta")[-1500:])
    raw = raw[0]
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parts = [p for p in msg.walk() if p.get_content_type() == "application/gzip"]
    assert len(parts) == 1 and parts[0].get_filename().startswith("example.com!%s!" % domain), msg
    assert parts[0].get_filename().endswith(".xml.gz"), parts[0].get_filename()
    return msg, ET.fromstring(gzip.decompress(parts[0].get_payload(decode=True)))


def rows(feedback):
    """Each record of a report as a flat dict (row, identifiers, auth_results' spf) with its DKIM results."""
    out = []
    for r in feedback.findall("record"):
        d = {"source_ip": r.findtext("row/source_ip"), "count": int(r.findtext("row/count")),
             "disposition": r.findtext("row/policy_evaluated/disposition"),
             "dkim": r.findtext("row/policy_evaluated/dkim"), "spf": r.findtext("row/policy_evaluated/spf"),
             "header_from": r.findtext("identifiers/header_from"),
             "envelope_from": r.findtext("identifiers/envelope_from"),
             "spf_auth": (r.findtext("auth_results/spf/domain"), r.findtext("auth_results/spf/scope"),
                          r.findtext("auth_results/spf/result")),
             "dkim_auth": sorted((k.findtext("domain"), k.findtext("selector"), k.findtext("result"))
                                 for k in r.findall("auth_results/dkim"))}
        out.append(d)
    return out


@h.test
def dmarc_aggregate_reports():
    # a second message like the first of spf_pass_and_both_signatures_pass: one row, counted twice
    send("someone@sender.test", signed(message("Some One <someone@sender.test>", "all good again")))
    header("all good again")
    mark = S.log_mark("attendant")
    out = S.cli("dmarc", "report", "--now", check=True).stdout
    assert "2 reports sent" in out and "1 addresses did not verify" in out, out
    msg, fb = report("sender.test")
    assert msg["From"] == "DMARC reports of Example Org <dmarc-admin@example.com>", msg["From"]
    assert msg["Subject"] == "Report Domain: sender.test Submitter: example.com Report-ID: <%s>" % \
        fb.findtext("report_metadata/report_id"), msg["Subject"]
    assert fb.findtext("report_metadata/org_name") == "Example Org", ET.tostring(fb)
    assert fb.findtext("report_metadata/email") == "dmarc-admin@example.com", ET.tostring(fb)
    begin, end = int(fb.findtext("report_metadata/date_range/begin")), int(fb.findtext("report_metadata/date_range/end"))
    assert 0 < begin <= end, (begin, end)
    assert [fb.findtext("policy_published/" + t) for t in ("domain", "adkim", "aspf", "p", "sp", "pct")] == \
        ["sender.test", "r", "r", "reject", "reject", "100"], ET.tostring(fb)
    r = rows(fb)
    # signed by dkimpy with both keys, SPF pass: aligned, delivered (several messages of the same kind counted)
    good = [x for x in r if x["dkim"] == "pass" and x["spf"] == "pass" and
            x["dkim_auth"] == [("sender.test", "ed1", "pass"), ("sender.test", "rsa1", "pass")]]
    assert len(good) == 1 and good[0]["count"] == 2 and good[0]["source_ip"] == OUTSIDE and \
        good[0]["disposition"] == "none" and \
        good[0]["header_from"] == "sender.test" and good[0]["envelope_from"] == "sender.test" and \
        good[0]["spf_auth"] == ("sender.test", "mfrom", "pass"), r
    # the tampered message: both signatures fail, SPF alone passes DMARC
    tampered = [x for x in r if x["dkim"] == "fail" and x["dkim_auth"] == [("sender.test", "ed1", "fail"),
                                                                            ("sender.test", "rsa1", "fail")]]
    assert tampered and tampered[0]["spf"] == "pass" and tampered[0]["disposition"] == "none", r
    # with a signature whose key is gone, and unsigned (the message with forged claims): SPF alone again
    assert [x["dkim_auth"] for x in r if x["dkim"] == "fail"] == [
        [("sender.test", "ed1", "fail"), ("sender.test", "rsa1", "fail")], [("sender.test", "gone", "permerror")],
        []], r
    assert sum(x["count"] for x in r) == 5, r
    # p=reject met: the refused message is in reject.test's report
    _, fb = report("reject.test")
    r = rows(fb)
    assert len(r) == 1 and r[0]["disposition"] == "reject" and r[0]["dkim"] == "fail" and r[0]["spf"] == "fail" and \
        r[0]["count"] == 1 and r[0]["dkim_auth"] == [] and r[0]["spf_auth"] == ("reject.test", "mfrom", "fail"), r
    # quar.test's address did not verify: nothing sent, and the log says why
    S.wait_log("attendant", "quar.test asks for its report at %s, which does not say it takes them" % REPORTS,
               since=mark)
    assert reports_of("quar.test") == []
    # the evaluations were taken: a second run has none
    out = S.cli("dmarc", "report", "--now", check=True).stdout
    assert "0 evaluations" in out, out


if __name__ == "__main__":
    try:
        h.main("authres")
    finally:
        if NS is not None:
            NS.stop()
