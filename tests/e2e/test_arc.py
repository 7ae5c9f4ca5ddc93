#!/usr/bin/env python3
# test_arc.py - ARC (RFC 8617, issue 18): the chain of mail from outside verified on the way in (arc=pass/fail/none in
# Authentication-Results, with the sealers), a DMARC failure delivered when the chain passes and its last sealer is
# one of arc.trusted_sealers, and mail from outside that the organisation forwards out sealed with the domain's key.
# The intermediaries are played by an independent implementation (dkimpy's arc_sign, Debian's python3-dkim with
# python3-authres), their keys served by Debian's nsd; our seals are checked by dkimpy's arc_verify against the records
# `interchange domain dkim` printed. The test runs in a network namespace of its own, as test_authres.py does.
import imaplib
import os
import re
import smtplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from dns_server import Nsd  # noqa: E402
from mail_auth import Signer, missing, own_network  # noqa: E402
from smtp_sink import Sink  # noqa: E402

dkim = h.debian_module("dkim")
authres = h.debian_module("authres")

S = None
NS = None
SINK = None
SERVER_IP = "192.0.2.7"
OUTSIDE = "198.51.100.7"
PW = "secret-pw"
LIST = None  # the keys of list.test, a mailing list that seals (trusted)
EVIL = None  # the keys of evil.test, a forwarder that seals (not trusted)
RECORDS = {}  # "selector._domainkey.domain" -> TXT value, for dkimpy's dnsfunc
LOG_PREFIX = "arc"


def records(text):
    """{name: value} of the TXT records in zone text or in what `domain dkim` printed."""
    found = {}
    for m in re.finditer(r'^(\S+)\. IN TXT((?: "[^"]*")+)$', text, re.M):
        found[m.group(1)] = "".join(re.findall(r'"([^"]*)"', m.group(2)))
    return found


def dnsfunc(name, timeout=5):
    key = name.decode() if isinstance(name, bytes) else name
    return RECORDS.get(key.rstrip("."), "").encode()


def message(frm, subject, to="alice.smith@example.com"):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n\r\nhello\r\n" %
            (frm, to, subject, subject.replace(" ", "-"))).encode()


def seal(msg, signer, results):
    """msg as signer's domain passes it on: its own Authentication-Results (results), then an ARC set by dkimpy."""
    srv = signer.domain.encode()
    msg = b"Authentication-Results: " + srv + b"; " + results.encode() + b"\r\n" + msg
    sets = dkim.arc_sign(msg, b"rsa1", srv, signer.keys["rsa1"][0], srv)
    assert len(sets) == 3, sets
    return b"".join(sets) + msg


def send(sender, data, rcpt="alice.smith@example.com"):
    c = smtplib.SMTP(SERVER_IP, S.ports["smtp"], timeout=30, source_address=(OUTSIDE, 0))
    c.ehlo("mx.list.test")
    c.sendmail(sender, [rcpt], data)
    c.quit()


def results(subject):
    """alice's copy's Authentication-Results of ours (IMAP), unfolded."""
    def fetch():
        m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=10)
        try:
            m.login("alice", PW)
            m.select("INBOX", readonly=True)
            typ, data = m.search(None, "SUBJECT", '"%s"' % subject)
            ids = data[0].split() if typ == "OK" else []
            return ids and m.fetch(ids[-1], "(BODY.PEEK[HEADER])")[1][0][1].decode("utf-8", "replace")
        finally:
            m.logout()
    hdr = h.wait_for(fetch, timeout=15, interval=0.1)
    assert hdr, "%s was not delivered: %s" % (subject, S.log("smtpd")[-1000:])
    lines = hdr.replace("\r\n\t", " ").replace("\r\n ", " ").split("\r\n")
    ours = [l.split(":", 1)[1].strip() for l in lines if l.lower().startswith("authentication-results: example.com;")]
    assert len(ours) == 1, lines
    return ours[0]


def arrived(subject):
    got = h.wait_for(lambda: SINK.find("<%s@test>" % subject.replace(" ", "-")), timeout=15)
    assert got, "%s never left: %s" % (subject, S.log("mta")[-1500:])
    return got[-1][2]


def fields(raw, name):
    head = raw.split(b"\r\n\r\n", 1)[0].decode().replace("\r\n\t", " ").replace("\r\n ", " ")
    return [l.split(":", 1)[1].strip() for l in head.split("\r\n") if l.lower().startswith(name.lower() + ":")]


@h.setup
def setup():
    global S, NS, SINK, LIST, EVIL
    if missing():
        h.skip(missing())
    if authres is None:
        h.skip("python3-authres is not installed (dkimpy's arc_sign needs it)")
    own_network(SERVER_IP, OUTSIDE)
    LIST = Signer("list.test")
    EVIL = Signer("evil.test")
    for s in (LIST, EVIL):
        RECORDS.update(records(s.records))
    NS = Nsd({"list.test": 'list.test. IN TXT "v=spf1 ip4:%s -all"\n' % OUTSIDE + LIST.records,
              "evil.test": 'evil.test. IN TXT "v=spf1 ip4:%s -all"\n' % OUTSIDE + EVIL.records,
              "orig.test": 'orig.test. IN TXT "v=spf1 ip4:192.0.2.1 -all"\n'
                           '_dmarc.orig.test. IN TXT "v=DMARC1; p=reject"\n',
              "plain.test": "plain.test. IN A 192.0.2.9\n"})
    S = h.System(extra=["--listen", "0.0.0.0"])
    NS.resolve_for(S)
    S.cli("user", "add", "alice", "--given", "Alice", "--surname", "Smith", "--password", PW, check=True)
    S.cli("user", "add", "fwd", "--given", "Fwd", "--surname", "Away", "--password", PW, check=True)
    S.cli("contact", "add", "Bob Outside", "--email", "bob@remote.test", check=True)
    S.cli("user", "forward", "fwd", "--to", "bob@remote.test", check=True)
    assert h.wait_for(lambda: h.imap_login_ok(S.ports["imap"], "alice", PW), timeout=15)
    SINK = Sink()
    SINK.start()
    S.connector("out", "remote.test", SINK.port)


@h.test
def a_chain_that_verifies_passes():
    send("news@list.test", seal(message("someone@plain.test", "one seal"), LIST, "spf=pass smtp.mailfrom=plain.test"))
    a = results("one seal")
    assert "arc=pass (i=1, sealed by list.test) smtp.remote-ip=%s" % OUTSIDE in a, a
    # sealed again by a second intermediary, which found the chain passing
    twice = seal(seal(message("someone@plain.test", "two seals"), LIST, "spf=pass smtp.mailfrom=plain.test"),
                 EVIL, "arc=pass")
    send("fw@evil.test", twice)
    a = results("two seals")
    assert "arc=pass (i=2, sealed by list.test, evil.test)" in a, a
    # no set at all
    send("x@plain.test", message("x@plain.test", "no seal"))
    assert "arc=none" in results("no seal")


@h.test
def a_tampered_chain_fails():
    sealed = seal(message("someone@plain.test", "changed body"), LIST, "spf=pass smtp.mailfrom=plain.test")
    send("news@list.test", sealed.replace(b"hello\r\n", b"hello, changed\r\n"))
    a = results("changed body")
    assert "arc=fail (message signature: body hash did not verify)" in a, a
    sealed = seal(message("someone@plain.test", "changed results"), LIST, "spf=fail smtp.mailfrom=plain.test")
    send("news@list.test", sealed.replace(b"i=1; list.test; spf=fail", b"i=1; list.test; spf=pass"))
    a = results("changed results")
    assert "arc=fail (seal i=1: signature did not verify)" in a, a
    # a second set that claims a chain that did not pass
    bad = seal(seal(message("someone@plain.test", "cv fail"), LIST, "spf=pass"), EVIL, "arc=fail")
    send("fw@evil.test", bad)
    a = results("cv fail")
    assert "arc=fail (the seal i=2 says cv=fail)" in a, a


@h.test
def dmarc_failure_delivered_for_a_trusted_sealer():
    def try_send(signer, subject):
        data = seal(message("boss@orig.test", subject), signer, "spf=pass smtp.mailfrom=orig.test; dmarc=pass")
        send("bounces@%s" % signer.domain, data)

    # orig.test says p=reject: its SPF does not allow the list's server, and the list broke nothing it could sign
    try:
        try_send(LIST, "untrusted list")
        raise AssertionError("taken")
    except smtplib.SMTPDataError as e:
        assert e.smtp_code == 550 and b"DMARC policy of orig.test" in e.smtp_error, e
    assert S.cli("server", "set", "arc.trusted_sealers", "list.test;rm").returncode != 0
    S.set_live("arc.trusted_sealers", "other.test, list.test", services=("smtpd",))
    try_send(LIST, "trusted list")
    a = results("trusted list")
    assert "arc=pass (i=1, sealed by list.test)" in a, a
    assert ("dmarc=fail (p=reject, delivered: local_policy, ARC chain sealed by trusted list.test) "
            "header.from=orig.test policy.arc-override=list.test") in a, a
    # a sealer that is not trusted overrides nothing
    try:
        try_send(EVIL, "untrusted forwarder")
        raise AssertionError("taken")
    except smtplib.SMTPDataError as e:
        assert e.smtp_code == 550, e
    S.set_live("arc.trusted_sealers", "", services=("smtpd",))


@h.test
def forwarded_mail_is_sealed_and_verifies():
    found = records(S.cli("domain", "dkim", "example.com", check=True).stdout)
    assert len(found) == 2, found
    RECORDS.update(found)
    # a message that came with a chain: our set is i=2, cv=pass, and dkimpy verifies the whole chain
    send("news@list.test", seal(message("someone@plain.test", "forward sealed", to="fwd@example.com"), LIST,
                                "spf=pass smtp.mailfrom=plain.test"), rcpt="fwd.away@example.com")
    raw = arrived("forward sealed")
    seals = fields(raw, "ARC-Seal")
    assert len(seals) == 2 and re.search(r"\bi=2; cv=pass; a=rsa-sha256; d=example.com;", seals[0]), seals
    aar = [f for f in fields(raw, "ARC-Authentication-Results") if f.startswith("i=2;")]
    assert aar and aar[0].startswith("i=2; example.com;") and "arc=pass (i=1, sealed by list.test)" in aar[0], aar
    cv, res, why = dkim.arc_verify(raw, dnsfunc=dnsfunc)
    assert cv == dkim.CV_Pass, (cv, why, res)
    # the receiver sees a changed body as a broken chain (so the check above can fail)
    cv, _, why = dkim.arc_verify(raw.replace(b"hello\r\n", b"hello!\r\n"), dnsfunc=dnsfunc)
    assert cv == dkim.CV_Fail, (cv, why)
    # a message without a chain: ours is the first set
    send("x@plain.test", message("x@plain.test", "forward first", to="fwd@example.com"), rcpt="fwd.away@example.com")
    raw = arrived("forward first")
    seals = fields(raw, "ARC-Seal")
    assert len(seals) == 1 and seals[0].startswith("i=1; cv=none; a=rsa-sha256; d=example.com;"), seals
    cv, res, why = dkim.arc_verify(raw, dnsfunc=dnsfunc)
    assert cv == dkim.CV_Pass, (cv, why, res)
    # mail of a logged-in user is DKIM-signed, not sealed
    c = smtplib.SMTP("127.0.0.1", S.ports["submission"], timeout=20)
    c.login("alice", PW)
    c.sendmail("alice.smith@example.com", ["bob@remote.test"],
               message("alice.smith@example.com", "from inside", to="bob@remote.test"))
    c.quit()
    raw = arrived("from inside")
    assert fields(raw, "ARC-Seal") == [] and len(fields(raw, "DKIM-Signature")) == 2, raw[:600]


if __name__ == "__main__":
    try:
        h.main("arc")
    finally:
        if NS is not None:
            NS.stop()
