#!/usr/bin/env python3
# test_dkim.py - DKIM signing of mail that leaves the organisation (RFC 6376, Ed25519 RFC 8463 and RSA-SHA256,
# issue 18): `interchange domain dkim` makes the keys and prints the DNS records, ix-mta signs with both, and an
# independent verifier (dkimpy, Debian's python3-dkim) checks the signatures against the records the command printed
# (dkimpy's dnsfunc answers from them). Mail stays unsigned inside the organisation; --rotate switches keys.
import imaplib
import os
import re
import smtplib
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from smtp_sink import Sink  # noqa: E402

dkim = h.debian_module("dkim")

S = None
SINK = None
PW = "secret-pw"
RECORDS = {}  # "selector._domainkey.domain" -> TXT value, from what `domain dkim` printed
LOG_PREFIX = "dkim"


def domain_dkim(*args):
    """Runs `interchange domain dkim ARGS`; returns the records it printed ({name: value}) and its output."""
    p = S.cli("domain", "dkim", *args, check=True)
    found = {}
    for m in re.finditer(r'^(\S+)\._domainkey\.(\S+)\. IN TXT((?: "[^"]*")+)$', p.stdout, re.M):
        found["%s._domainkey.%s" % (m.group(1), m.group(2))] = "".join(re.findall(r'"([^"]*)"', m.group(3)))
    return found, p.stdout


def dnsfunc(name, timeout=5):
    """dkimpy's DNS lookup, answered from the records `domain dkim` printed (as a DNS server would serve them)."""
    key = name.decode() if isinstance(name, bytes) else name
    return RECORDS.get(key.rstrip("."), "").encode()


def signatures(raw):
    """The DKIM-Signature fields of a message as {tag: value} dicts, in order."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").replace("\r\n\t", " ").replace("\r\n ", " ")
    out = []
    for line in head.split("\r\n"):
        if line.lower().startswith("dkim-signature:"):
            tags = {}
            for part in line.split(":", 1)[1].split(";"):
                k, _, v = part.strip().partition("=")
                if k:
                    tags[k] = re.sub(r"\s+", "", v)
            out.append(tags)
    return out


def verified(raw):
    """Each signature's verdict by dkimpy: [(algorithm, domain, selector, ok)]."""
    sigs = signatures(raw)
    return [(t.get("a"), t.get("d"), t.get("s"), dkim.DKIM(raw).verify(idx=i, dnsfunc=dnsfunc))
            for i, t in enumerate(sigs)]


def send(login, sender, frm, to, subject, extra=""):
    c = smtplib.SMTP("127.0.0.1", S.ports["submission"], timeout=20)
    c.login(login, PW)
    c.sendmail(sender, to, "From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n%s\r\nhello\r\n.dot\r\n" % (
        frm, ", ".join(to), subject, subject.replace(" ", "-"), extra))
    c.quit()


def arrived(subject):
    got = h.wait_for(lambda: SINK.find("<%s@test>" % subject.replace(" ", "-")), timeout=15)
    assert got, "%s never left: %s" % (subject, S.log("mta")[-1500:])
    return got[-1][2]


@h.setup
def setup():
    global S, SINK
    if dkim is None:
        h.skip("dkimpy is not installed (Debian package python3-dkim)")
    S = h.System()
    # a second domain of the organisation, and users with addresses in both
    p = S.ldapmodify("dn: cn=example.org,ou=Accepted Domains,ou=Configuration,%s\nobjectClass: ixAcceptedDomain\n"
                     "cn: example.org\nixDomainType: authoritative\n\n" % S.suffix, add=True)
    assert p.returncode == 0, p.stderr
    S.cli("user", "add", "alice", "--given", "Alice", "--surname", "Smith", "--password", PW,
          "--alias", "alice@example.org", check=True)
    S.cli("user", "add", "bob", "--given", "Bob", "--surname", "Jones", "--password", PW, check=True)
    for login in ("alice", "bob"):
        assert h.wait_for(lambda: h.imap_login_ok(S.ports["imap"], login, PW), timeout=15), login
    SINK = Sink()
    SINK.start()
    S.connector("out", "remote.test", SINK.port)


@h.test
def domain_dkim_makes_keys_and_prints_records():
    found, out = domain_dkim("example.com")
    assert "Made new DKIM keys for example.com" in out, out
    assert len(found) == 2, out
    kinds = sorted(re.search(r"k=(\w+);", v).group(1) for v in found.values())
    assert kinds == ["ed25519", "rsa"], found
    RECORDS.update(found)
    # again: the same records, no new keys
    again, out = domain_dkim("example.com")
    assert again == found and "Made new" not in out, out
    org, _ = domain_dkim("example.org")
    RECORDS.update(org)
    listing = S.cli("domain", "list", check=True).stdout
    for name in list(found) + list(org):
        sel = name.split("._domainkey.")[0]
        assert sel in listing, listing
    # the private keys: in the data folder, the service user's alone
    top = os.path.join(S.data, "dkim")
    assert stat.S_IMODE(os.stat(top).st_mode) == 0o700
    owner = os.stat(S.data).st_uid
    for name in found:
        sel = name.split("._domainkey.")[0]
        path = os.path.join(top, "example.com", sel + ".pem")
        st = os.stat(path)
        assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == owner, (path, oct(st.st_mode), st.st_uid)
    p = S.cli("domain", "dkim", "not-ours.test")
    assert p.returncode == 1 and "not-ours.test is not one of the organisation's domains" in p.stderr, p.stderr


@h.test
def outgoing_mail_verifies_with_dkimpy():
    send("alice", "alice.smith@example.com", "Alice Smith <alice.smith@example.com>", ["friend@remote.test"],
         "signed com")
    raw = arrived("signed com")
    v = verified(raw)
    assert sorted(a for a, _, _, _ in v) == ["ed25519-sha256", "rsa-sha256"], v
    assert all(d == "example.com" and ok for _, d, _, ok in v), v
    # the second domain signs its own mail
    send("alice", "alice@example.org", "alice@example.org", ["friend@remote.test"], "signed org")
    v = verified(arrived("signed org"))
    assert len(v) == 2 and all(d == "example.org" and ok for _, d, _, ok in v), v


@h.test
def signature_covers_the_submission_changes_and_breaks_when_altered():
    # send-on-behalf: the Sender field submission adds is there before signing, and signed
    S.cli("user", "delegate", "bob", "--send-on-behalf", "alice", check=True)
    assert h.wait_for(lambda: _try_on_behalf(), timeout=10)
    raw = arrived("on behalf")
    assert b"\r\nSender: alice.smith@example.com\r\n" in raw, raw[:800]
    v = verified(raw)
    assert len(v) == 2 and all(ok for *_, ok in v), v
    assert all("sender" in t["h"].lower().split(":") for t in signatures(raw)), signatures(raw)
    # a verifier sees any change made after signing
    tampered = raw.replace(b"Subject: on behalf", b"Subject: on behalf!")
    assert not any(ok for *_, ok in verified(tampered))
    extra_from = raw.replace(b"\r\n\r\n", b"\r\nFrom: ceo@example.com\r\n\r\n", 1)  # From is oversigned
    assert not any(ok for *_, ok in verified(extra_from))


def _try_on_behalf():
    try:
        send("alice", "alice.smith@example.com", "Bob Jones <bob.jones@example.com>", ["friend@remote.test"],
             "on behalf")
        return True
    except smtplib.SMTPDataError:
        return False


@h.test
def mail_inside_the_organisation_is_not_signed():
    send("alice", "alice.smith@example.com", "alice.smith@example.com", ["bob.jones@example.com"], "inside")
    m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=10)
    m.login("bob", PW)
    m.select("INBOX", readonly=True)

    def header():
        typ, data = m.search(None, "SUBJECT", '"inside"')
        ids = data[0].split() if typ == "OK" else []
        return ids and m.fetch(ids[-1], "(BODY.PEEK[HEADER])")[1][0][1]
    hdr = h.wait_for(header, timeout=10, interval=0.1)
    m.logout()
    assert hdr and b"DKIM-Signature" not in hdr, hdr


@h.test
def mail_of_a_domain_without_keys_is_not_signed():
    # one of our domains without DKIM keys: its mail leaves unsigned (and is not signed with another domain's keys)
    p = S.ldapmodify("dn: cn=nokeys.test,ou=Accepted Domains,ou=Configuration,%s\nobjectClass: ixAcceptedDomain\n"
                     "cn: nokeys.test\n\n" % S.suffix, add=True)
    assert p.returncode == 0, p.stderr
    S.cli("user", "add", "carol", "--given", "Carol", "--surname", "White", "--password", PW,
          "--alias", "carol@nokeys.test", check=True)
    assert h.wait_for(lambda: h.imap_login_ok(S.ports["imap"], "carol", PW), timeout=15)
    assert h.wait_for(lambda: _try_send("carol", "carol@nokeys.test", "from nokeys"), timeout=10)
    raw = arrived("from nokeys")
    assert not signatures(raw), raw[:600]


def _try_send(login, addr, subject):
    try:
        send(login, addr, addr, ["friend@remote.test"], subject)
        return True
    except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused):
        return False


def signed_with(selectors, sender, subject):
    """Sends from sender until a message arrives signed with exactly selectors (the mta's replica follows the
    directory); returns it."""
    def attempt():
        send("alice", sender, sender, ["friend@remote.test"], subject)
        raw = arrived(subject)
        return {t["s"] for t in signatures(raw)} == selectors and raw
    raw = h.wait_for(attempt, timeout=10, interval=0.3)
    assert raw, signatures(arrived(subject))
    return raw


@h.test
def rotate_switches_keys():
    old = {k: v for k, v in RECORDS.items() if k.endswith("._domainkey.example.com")}
    new, out = domain_dkim("example.com", "--rotate")
    assert len(new) == 2 and not set(new) & set(old), (new, old)
    assert "This server's previous selectors sign nothing more" in out, out
    # at once again (within the same second): selectors of its own all the same
    newer, _ = domain_dkim("example.com", "--rotate")
    assert len(newer) == 2 and not set(newer) & (set(new) | set(old)), (newer, new)
    for name in list(old) + list(new):  # the old private keys are gone
        sel = name.split("._domainkey.")[0]
        assert not os.path.exists(os.path.join(S.data, "dkim", "example.com", sel + ".pem"))
    new = newer
    RECORDS.update(new)
    raw = signed_with({k.split("._domainkey.")[0] for k in new}, "alice.smith@example.com", "rotated")
    v = verified(raw)
    assert len(v) == 2 and all(ok for *_, ok in v), v


@h.test
def each_server_signs_with_keys_of_its_own():
    # example.org's keys as if another server of the organisation had made them: their files are not here
    org_dir = os.path.join(S.data, "dkim", "example.org")
    theirs = {}
    for f in os.listdir(org_dir):
        theirs[f[:-4]] = open(os.path.join(org_dir, f)).read()
        os.unlink(os.path.join(org_dir, f))
    # this server has none: `domain dkim` makes its own beside the others' (the directory keeps all four)
    found, out = domain_dkim("example.org")
    assert "Made new DKIM keys for example.org on mail.example.com" in out, out
    assert len(found) == 2 and not {k.split("._domainkey.")[0] for k in found} & set(theirs), (found, theirs)
    for sel in theirs:
        assert "; %s._domainkey.example.org: the key is on another server" % sel in out, out
    listing = S.cli("domain", "list", check=True).stdout
    assert all(sel in listing for sel in list(theirs) + [k.split("._domainkey.")[0] for k in found]), listing
    RECORDS.update(found)
    # this server signs with its own keys only, and the signatures verify
    mine = {k.split("._domainkey.")[0] for k in found}
    raw = signed_with(mine, "alice@example.org", "own keys")
    assert all(ok for *_, ok in verified(raw))
    # `interchange dns` prints this server's records and names the others'
    dns = S.cli("dns", "example.org", check=True).stdout
    assert all(sel in dns for sel in mine) and "the key is on another server" in dns, dns


if __name__ == "__main__":
    h.main("dkim")
