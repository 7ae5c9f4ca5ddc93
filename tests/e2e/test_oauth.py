#!/usr/bin/env python3
"""test_oauth.py - sign-in with OAuth 2.0 bearer tokens (OAUTHBEARER, RFC 7628; XOAUTH2) over IMAP, POP3 and SMTP
submission, with curl (--oauth2-bearer) as the client and tokens minted here with keys of our own (RS256, ES256,
EdDSA): valid ones sign in, expired, wrong audience, wrong issuer, unknown key id and tampered ones are refused with
RFC 7628's JSON status; the keys come from a JWKS file (read again when it changes) or over HTTPS (fetched again for
an unknown key id); OAUTHBEARER is advertised only while an issuer is configured."""
import base64
import http.server
import imaplib
import json
import os
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

from signin_clients import Keys, b64u  # noqa: E402

S = None
ISSUER = "https://idp.example.test/realms/mail"
ISSUER2 = "https://idp2.example.test"
AUDIENCE = "interchange-mail"
KEYS = Keys()
JWKS_FILE = None
HTTPS = None  # (server, port, served keys)


def new_key(kid, alg):
    return KEYS.new(kid, alg)


def jwk(kid):
    return KEYS.jwk(kid)


def mint(kid, sign_with=None, **claims):
    """A token of ISSUER for AUDIENCE naming alice (signin_clients.Keys.mint), claims overridden."""
    claims.setdefault("iss", ISSUER)
    claims.setdefault("aud", AUDIENCE)
    return KEYS.mint(kid, claims.pop("iss"), claims.pop("aud"), sign_with=sign_with, **claims)


def write_jwks(path, kids):
    KEYS.write_jwks(path, kids)


def curl(proto, token, user="alice@example.com", mech=None, src="127.0.0.1"):
    """curl signing in over proto (imap, pop3, smtp: submission) with token from address src; returns the completed
    process."""
    port = {"imap": S.ports["imap"], "pop3": S.ports["pop3"], "smtp": S.ports["submission"]}[proto]
    cmd = ["curl", "-sS", "--max-time", "20", "--interface", src, "-u", user + ":", "--oauth2-bearer", token]
    if mech:
        cmd += ["--login-options", "AUTH=" + mech]
    if proto == "smtp":
        msg = os.path.join(S.base, "msg.txt")
        with open(msg, "w") as f:
            f.write("From: alice@example.com\r\nTo: alice@example.com\r\nSubject: oauth\r\n\r\nhello\r\n")
        cmd += ["smtp://127.0.0.1:%d" % port, "--mail-from", "alice@example.com", "--mail-rcpt", "alice@example.com",
                "-T", msg]
    else:
        cmd.append("%s://127.0.0.1:%d/" % (proto, port))
    return h.run(cmd, timeout=30)


def signs_in(proto, token, **kw):
    r = curl(proto, token, **kw)
    if r.returncode not in (0, 67):
        raise AssertionError("curl %s: exit %d: %s" % (proto, r.returncode, r.stderr))
    return r.returncode == 0


def capability(port):
    m = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    try:
        return m.capabilities
    finally:
        m.logout()


def imap_exchange(lines):
    """Sends each line of lines (the first an AUTHENTICATE) to IMAP and returns what the server said to each."""
    s = socket.create_connection(("127.0.0.1", S.ports["imap"]), timeout=10)
    f = s.makefile("rb")
    f.readline()
    said = []
    for line in lines:
        s.sendall(line.encode() + b"\r\n")
        said.append(f.readline().decode().rstrip("\r\n"))
    s.close()
    return said


@h.setup
def start():
    global S, JWKS_FILE
    S = h.System(extra=["--setting", "auth.max_failures=1000", "--setting", "auth.max_address_failures=1000",
                        "--setting", "auth.max_account_failures=1000"])
    S.cli("user", "add", "alice", "--given", "Alice", "--surname", "Liddell", "--password", "pw-alice",
          "--alias", "alice@example.com", check=True)
    S.cli("user", "add", "bob", "--given", "Bob", "--surname", "Builder", "--password", "pw-bob",
          "--alias", "bob@example.com", check=True)
    # wait until the daemons know the users
    for login in ("alice", "bob"):
        assert h.wait_for(lambda: h.imap_login_ok(S.ports["imap"], login + "@example.com", "pw-" + login), timeout=20)
    for kid, alg in (("rsa-1", "RS256"), ("ec-1", "ES256"), ("ed-1", "EdDSA"), ("stranger", "RS256")):
        new_key(kid, alg)
    JWKS_FILE = os.path.join(S.base, "jwks.json")
    write_jwks(JWKS_FILE, ["rsa-1", "ec-1", "ed-1"])


@h.test
def no_oauthbearer_without_an_issuer():
    caps = capability(S.ports["imap"])
    assert "AUTH=PLAIN" in caps and "AUTH=OAUTHBEARER" not in caps, caps
    r = S.cli("oauth", "list", check=True)
    assert r.stdout.strip() == "", r.stdout
    # refused as an unknown mechanism, not checked
    said = imap_exchange(["a AUTHENTICATE OAUTHBEARER " + base64.b64encode(b"n,,\x01auth=Bearer x\x01\x01").decode()])
    assert said[0].startswith("a NO") or said[0].startswith("a BAD"), said


@h.test
def oauth_add_list_and_advertised():
    r = S.cli("oauth", "add", ISSUER, "--jwks", "relative.json", "--audience", AUDIENCE)
    assert r.returncode != 0 and "absolute" in r.stderr, (r.stdout, r.stderr)
    r = S.cli("oauth", "add", ISSUER, "--jwks", JWKS_FILE, "--audience", AUDIENCE, check=True)
    assert "3 signing keys" in r.stdout and "Added issuer" in r.stdout, r.stdout
    r = S.cli("oauth", "list", check=True)
    assert ISSUER in r.stdout and JWKS_FILE in r.stdout and AUDIENCE in r.stdout and "email" in r.stdout, r.stdout
    assert h.wait_for(lambda: "AUTH=OAUTHBEARER" in capability(S.ports["imap"]), timeout=10)
    caps = capability(S.ports["imap"])
    assert "AUTH=XOAUTH2" in caps, caps
    r = h.run(["curl", "-sS", "--max-time", "10", "pop3://127.0.0.1:%d/" % S.ports["pop3"], "-X", "CAPA"])
    assert "SASL SCRAM-SHA-256 SCRAM-SHA-1 PLAIN LOGIN OAUTHBEARER XOAUTH2" in r.stdout, r.stdout


@h.test
def valid_tokens_sign_in_on_imap_pop3_smtp():
    for kid in ("rsa-1", "ec-1", "ed-1"):
        for proto in ("imap", "pop3", "smtp"):
            r = curl(proto, mint(kid))
            assert r.returncode == 0, (kid, proto, r.returncode, r.stderr)
            if proto == "imap":
                assert "INBOX" in r.stdout, r.stdout  # signed in: the LIST curl sent was answered
    # the login name as the authorisation identity names the same user
    assert signs_in("imap", mint("rsa-1"), user="alice")


@h.test
def xoauth2_signs_in():
    for proto in ("imap", "pop3", "smtp"):
        assert signs_in(proto, mint("ec-1"), mech="XOAUTH2"), proto


@h.test
def bad_tokens_are_refused():
    now = int(time.time())
    bad = {
        "expired": mint("rsa-1", exp=now - 3600, iat=now - 7200, nbf=now - 7200),
        "wrong audience": mint("rsa-1", aud="someone-else"),
        "wrong issuer": mint("rsa-1", iss="https://evil.example.test"),
        "unknown kid": mint("stranger"),
        "key of another kid": mint("rsa-1", sign_with="stranger"),
        "not yet valid": mint("ed-1", nbf=now + 3600),
        "no expiry": mint("ec-1", exp=None),
        "other user's token": mint("rsa-1", email="bob@example.com"),
        "nobody here": mint("rsa-1", email="carol@example.com"),
    }
    good = mint("ed-1")
    head, body, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["email"] = "bob@example.com"
    bad["tampered payload"] = head + "." + b64u(json.dumps(claims).encode()) + "." + sig
    bad["tampered signature"] = head + "." + body + "." + b64u(bytes([base64.urlsafe_b64decode(sig + "==")[0] ^ 1]) +
                                                              base64.urlsafe_b64decode(sig + "==")[1:])
    for why, token in bad.items():
        for proto in ("imap", "pop3", "smtp"):
            assert not signs_in(proto, token), (why, proto)
    assert signs_in("imap", good)
    log = S.log("imapd")
    for reason in ("expired", "audience does not match", "issuer https://evil.example.test is not configured",
                   "no key with id stranger", "bad signature", "not valid yet", "no expiry",
                   "not a mailbox user here"):
        assert reason in log, reason


@h.test
def refused_tokens_count_toward_the_address_block():
    # as wrong passwords do: past auth.max_address_failures the address is blocked, a good token included
    services = ("smtpd", "imapd", "pop3d")
    S.set_live("auth.max_address_failures", 3, services=services)
    try:
        for proto, src, other in (("smtp", "127.0.0.3", "127.0.0.6"), ("imap", "127.0.0.4", "127.0.0.7"),
                                  ("pop3", "127.0.0.5", "127.0.0.8")):
            for _ in range(3):
                assert curl(proto, mint("rsa-1", aud="nope"), src=src).returncode != 0
            r = curl(proto, mint("rsa-1"), src=src)
            assert r.returncode != 0, (proto, r.stdout)
            assert signs_in(proto, mint("rsa-1"), src=other), proto  # another address is not blocked
        S.wait_log("smtpd", "authentication from 127.0.0.3 refused: temporarily blocked")
    finally:
        S.set_live("auth.max_address_failures", 1000, services=services)


@h.test
def refusal_answers_rfc7628_json_status():
    ir = "n,a=alice@example.com,\x01host=127.0.0.1\x01auth=Bearer %s\x01\x01" % mint("rsa-1", aud="nope")
    said = imap_exchange(["a AUTHENTICATE OAUTHBEARER " + base64.b64encode(ir.encode()).decode(), "AQ=="])
    assert said[0].startswith("+ "), said
    status = json.loads(base64.b64decode(said[0][2:]))
    assert status["status"] == "invalid_token", status
    assert status["openid-configuration"] == ISSUER + "/.well-known/openid-configuration", status
    assert said[1].startswith("a NO"), said
    # the message without a challenge first (no initial response), then a good token
    ir = "n,,\x01auth=Bearer %s\x01\x01" % mint("ec-1")
    said = imap_exchange(["b AUTHENTICATE OAUTHBEARER", base64.b64encode(ir.encode()).decode()])
    assert said[0] == "+ " or said[0] == "+", said
    assert said[1].startswith("b OK"), said
    # malformed: no auth pair
    said = imap_exchange(["c AUTHENTICATE OAUTHBEARER " + base64.b64encode(b"n,,\x01host=x\x01\x01").decode()])
    assert said[0].startswith("c BAD") or said[0].startswith("c NO"), said


@h.test
def rotated_file_keys_are_read_again():
    new_key("rsa-2", "RS256")
    token = mint("rsa-2")
    assert not signs_in("imap", token)
    write_jwks(JWKS_FILE, ["rsa-1", "ec-1", "ed-1", "rsa-2"])
    assert signs_in("imap", token)
    write_jwks(JWKS_FILE, ["ec-1", "ed-1", "rsa-2"])  # a key withdrawn no longer signs anyone in
    assert not signs_in("imap", mint("rsa-1"))


KDE_XOAUTH2 = "/usr/lib/x86_64-linux-gnu/sasl2/libkdexoauth2.so"


def ldapi_uri():
    import urllib.parse
    socket_path = [os.path.join(d, f) for d, _, files in os.walk(os.path.join(S.data, "run")) for f in files
                   if f.startswith("ldapi")][0]
    return "ldapi://" + urllib.parse.quote(socket_path, safe="")


def sasl_mechs(uri):
    r = h.run(["ldapsearch", "-LLL", "-x", "-H", uri, "-b", "", "-s", "base", "supportedSASLMechanisms"])
    return r.stdout


def ldap_xoauth2(uri, token, user="alice@example.com"):
    """ldapwhoami binding with XOAUTH2 through KDE's Cyrus client plugin (the token as the password)."""
    return h.run(["ldapwhoami", "-Q", "-Y", "XOAUTH2", "-U", user, "-w", token, "-H", uri])


@h.test
def ldap_binds_take_tokens():
    if not os.path.exists(KDE_XOAUTH2):
        h.skip("no Cyrus SASL client plugin for XOAUTH2 (libsasl2-modules-kdexoauth2)")
    uri = ldapi_uri()
    # offered by slapd's plugin once an issuer exists, where passwords are taken (ldapi, TLS), not in clear
    assert h.wait_for(lambda: "XOAUTH2" in sasl_mechs(uri) and "OAUTHBEARER" in sasl_mechs(uri), timeout=15)
    assert "XOAUTH2" not in sasl_mechs(S.ldap_uri), sasl_mechs(S.ldap_uri)
    r = ldap_xoauth2(uri, mint("ed-1"))
    assert r.returncode == 0 and r.stdout.strip().lower() == "dn:" + S.user_dn("alice").lower(), (r.stdout, r.stderr)
    r = ldap_xoauth2(uri, mint("ec-1", email=None, preferred_username="alice", iss=ISSUER), user="alice")
    assert r.returncode != 0, r.stdout  # no email claim: the issuer's claim is email
    now = int(time.time())  # (rsa-1 was withdrawn by rotated_file_keys_are_read_again)
    for bad in (mint("ec-1", aud="nope"), mint("ec-1", exp=now - 3600, iat=now - 7200, nbf=now - 7200),
                mint("stranger"), mint("ec-1", email="carol@example.com")):
        r = ldap_xoauth2(uri, bad)
        assert r.returncode != 0 and "dn:" not in r.stdout, (r.stdout, r.stderr)
    S.wait_log("slapd", "token refused: audience does not match")
    # another user's name with alice's token is not let in as either
    r = ldap_xoauth2(uri, mint("ec-1"), user="bob@example.com")
    assert r.returncode != 0, r.stdout


@h.test
def claim_preferred_username_and_del():
    S.cli("oauth", "add", ISSUER, "--jwks", JWKS_FILE, "--audience", AUDIENCE, "--claim", "preferred_username",
          check=True)
    assert "preferred_username" in S.cli("oauth", "list", check=True).stdout
    token = mint("ec-1", email="bob@example.com", preferred_username="alice")
    assert h.wait_for(lambda: signs_in("imap", token), timeout=10, interval=0.3)
    r = S.cli("oauth", "del", ISSUER, check=True)
    assert "Deleted issuer" in r.stdout
    assert S.cli("oauth", "del", ISSUER).returncode != 0
    assert h.wait_for(lambda: "AUTH=OAUTHBEARER" not in capability(S.ports["imap"]), timeout=10)
    assert not signs_in("imap", mint("ec-1"))


class JWKSHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the name http.server calls
        body = json.dumps({"keys": [jwk(k) for k in HTTPS[2]]}).encode()
        HTTPS[3].append(self.path)
        self.send_response(200 if self.path == "/certs" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@h.test
def jwks_uri_over_https_fetched_again_for_an_unknown_kid():
    global HTTPS
    cert, key = os.path.join(S.base, "idp-cert.pem"), os.path.join(S.base, "idp-key.pem")
    r = h.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
               key, "-out", cert, "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-days", "1"])
    assert r.returncode == 0, r.stderr
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), JWKSHandler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    new_key("web-1", "ES256")
    HTTPS = [srv, srv.server_address[1], ["web-1"], []]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = "https://localhost:%d/certs" % HTTPS[1]
    try:
        # not trusted: the certificate is checked
        r = S.cli("oauth", "add", ISSUER2, "--jwks", url, "--audience", AUDIENCE)
        assert r.returncode != 0 and "certificate" in r.stderr, (r.stdout, r.stderr)
        # the servers trust what SSL_CERT_FILE names: restart them with it
        h.ENV["SSL_CERT_FILE"] = cert
        S.stop()
        S.start()
        r = S.cli("oauth", "add", ISSUER2, "--jwks", url, "--audience", AUDIENCE, check=True)
        assert "1 signing keys" in r.stdout, r.stdout
        assert h.wait_for(lambda: signs_in("imap", mint("web-1", iss=ISSUER2)), timeout=10, interval=0.3)
        fetched = len(HTTPS[3])
        assert signs_in("imap", mint("web-1", iss=ISSUER2))
        # each daemon caches the keys: imapd's second sign-in fetched nothing
        assert len(HTTPS[3]) == fetched, HTTPS[3]
        # the issuer rotates its keys: a token with the new kid makes the server fetch them again
        new_key("web-2", "EdDSA")
        HTTPS[2] = ["web-1", "web-2"]
        time.sleep(10.5)  # OAUTH_REFETCH_MIN_SECONDS after the last fetch
        assert signs_in("imap", mint("web-2", iss=ISSUER2))
        assert len(HTTPS[3]) > fetched
    finally:
        srv.shutdown()
        h.ENV.pop("SSL_CERT_FILE", None)


if __name__ == "__main__":
    h.main("oauth")
