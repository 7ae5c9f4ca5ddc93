#!/usr/bin/env python3
"""bench_signin.py - IMAP sign-ins per second by mechanism against a real started system (make bench): PLAIN (the
password checked by a bind to slapd), PLAIN with an app password (one PBKDF2-HMAC-SHA-256 in imapd at
auth.scram_iterations), SCRAM-SHA-256 and SCRAM-SHA-1 (the verifiers read from slapd, a few HMACs in imapd; the client
keeps its SaltedPassword per salt as RFC 5802 allows, and once without, which costs the client the PBKDF2),
OAUTHBEARER with RS256, ES256 and EdDSA tokens (checked in imapd, keys from a JWKS file), GSSAPI (a ticket from an MIT
KDC started here, checked by Cyrus's plugin and mapped through the directory). Each client repeats AUTHENTICATE and UNAUTHENTICATE on one connection, so a figure is the sign-in
itself, without connection setup; one client, then CLIENTS at once. Nothing is asserted.

Environment: IX_BUILD (build folder), BENCH_SECONDS (per figure, default 3), BENCH_CLIENTS (default 4)."""
import base64
import hashlib
import hmac
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e"))
import harness as h  # noqa: E402
from signin_clients import REALM, Kdc, Keys, gssapi_sasl  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
HOST = "mail.example.com"
ISSUER, AUDIENCE = "https://sso.example.test/realms/bench", "mail"


class Imap:
    """A raw IMAP connection that signs in and out again."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.f = self.s.makefile("rb")
        self.f.readline()
        self.n = 0

    def line(self):
        return self.f.readline().decode().rstrip("\r\n")

    def authenticate(self, mech, ir=None, steps=None):
        """AUTHENTICATE mech with initial response ir (bytes), then steps(challenge bytes) -> response bytes while
        the server continues. True when it said OK."""
        self.n += 1
        tag = "a%d" % self.n
        cmd = "%s AUTHENTICATE %s" % (tag, mech)
        if ir is not None:
            cmd += " " + (base64.b64encode(ir).decode() or "=")
        self.s.sendall(cmd.encode() + b"\r\n")
        while True:
            line = self.line()
            if line.startswith(tag + " "):
                return line.startswith(tag + " OK")
            if line.startswith("+"):
                resp = steps(base64.b64decode(line[2:])) if steps is not None else b"\x01"
                self.s.sendall(base64.b64encode(resp) + b"\r\n")

    def unauthenticate(self):
        self.n += 1
        tag = "u%d" % self.n
        self.s.sendall(("%s UNAUTHENTICATE\r\n" % tag).encode())
        while not self.line().startswith(tag + " "):
            pass


def gssapi_signin(imap):
    """One GSSAPI sign-in: signin_clients.gssapi_sasl driving the IMAP exchange."""
    state = {"first": True, "ok": False}
    imap.n += 1
    tag = "g%d" % imap.n

    def send(token):
        if state["first"]:
            state["first"] = False
            imap.s.sendall(("%s AUTHENTICATE GSSAPI %s\r\n" % (tag, base64.b64encode(token).decode())).encode())
        else:
            imap.s.sendall(base64.b64encode(token or b"") + b"\r\n")
        line = imap.line()
        if line.startswith("+"):
            return base64.b64decode(line[2:])
        state["ok"] = line.startswith(tag + " OK")
        return None
    gssapi_sasl("imap", HOST, send)
    return state["ok"]


def scram_signin(name, user, password, cache):
    """A SCRAM client (RFC 5802) for IMAP; cache (a dict, or None) keeps ClientKey and ServerKey per salt and count."""
    digest = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-1": "sha1"}[name]

    def hm(key, msg):
        return hmac.new(key, msg, digest).digest()

    def signin(imap):
        bare = "n=%s,r=%s" % (user, base64.b64encode(os.urandom(18)).decode())
        state = {}

        def step(challenge):
            if "proof" in state:  # the server-final message: its signature
                return b"" if challenge == b"v=" + base64.b64encode(state["server"]) else b"*"
            first = challenge.decode()
            f = dict(kv.split("=", 1) for kv in first.split(","))
            salt, it = base64.b64decode(f["s"]), int(f["i"])
            keys = cache.get((salt, it)) if cache is not None else None
            if keys is None:
                salted = hashlib.pbkdf2_hmac(digest, password.encode(), salt, it)
                keys = (hm(salted, b"Client Key"), hm(salted, b"Server Key"))
                if cache is not None:
                    cache[(salt, it)] = keys
            final = "c=biws,r=" + f["r"]
            auth = ("%s,%s,%s" % (bare, first, final)).encode()
            sig = hm(hashlib.new(digest, keys[0]).digest(), auth)
            state["proof"] = bytes(a ^ b for a, b in zip(keys[0], sig))
            state["server"] = hm(keys[1], auth)
            return (final + ",p=" + base64.b64encode(state["proof"]).decode()).encode()
        return imap.authenticate(name, ("n,," + bare).encode(), step)
    return signin


def run(port, signin, clients):
    """Sign-ins per second with clients connections for SECONDS, and the median time of one."""
    stop = time.monotonic() + SECONDS
    times, errors = [], []
    lock = threading.Lock()

    def client():
        c = Imap(port)
        mine = []
        while time.monotonic() < stop:
            t = time.perf_counter()
            if not signin(c):
                errors.append("refused")
                return
            mine.append(time.perf_counter() - t)
            c.unauthenticate()
        with lock:
            times.extend(mine)
    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors or not times:
        raise RuntimeError("sign-in refused")
    return len(times) / (time.monotonic() - start), statistics.median(times) * 1000


def main():
    for tool in ("krb5kdc", "kdb5_util", "kadmin.local", "kinit"):
        if shutil.which(tool) is None:
            print("skipped: %s is not installed" % tool)
            return
    kdc = Kdc(tempfile.mkdtemp(prefix="ixb-", dir="/tmp"), [HOST])
    h._systems.append(kdc)
    h.ENV["KRB5_CONFIG"] = kdc.conf
    s = h.System()
    try:
        s.cli("user", "add", "alice", "--given", "Alice", "--surname", "Liddell", "--password", "Bench-pw-1",
              "--alias", "alice@example.com", check=True)
        keys = Keys()
        for kid, alg in (("rs", "RS256"), ("es", "ES256"), ("ed", "EdDSA")):
            keys.new(kid, alg)
        jwks = os.path.join(s.base, "jwks.json")
        keys.write_jwks(jwks, ["rs", "es", "ed"])
        s.cli("oauth", "add", ISSUER, "--jwks", jwks, "--audience", AUDIENCE, check=True)
        keytab = os.path.join(kdc.dir, "mail.keytab")
        kdc.keytab(keytab, ("imap", "pop", "smtp", "ldap"), (HOST,))
        s.cli("kerberos", "keytab", keytab, check=True)
        kdc.kadmin(REALM, "addprinc -pw alice-krb alice")
        os.environ.update(kdc.kinit("alice@" + REALM, "alice-krb"))  # python3-gssapi reads the cache from here
        port = s.ports["imap"]
        assert h.wait_for(lambda: h.imap_login_ok(port, "alice@example.com", "Bench-pw-1"), timeout=20)
        plain = b"\0alice@example.com\0Bench-pw-1"
        # bob has an app password: a PLAIN sign-in with one tries it (one PBKDF2), his password goes to the bind
        s.cli("user", "add", "bob", "--given", "Bob", "--surname", "Dylan", "--password", "Bench-pw-2", check=True)
        app = s.cli("user", "app-password", "add", "bob", "bench", check=True).stdout.strip().splitlines()[-1]
        assert h.wait_for(lambda: h.imap_login_ok(port, "bob", app), timeout=20)
        mechs = [("PLAIN (a bind to slapd)", lambda c: c.authenticate("PLAIN", plain)),
                 ("PLAIN, user with an app password", lambda c: c.authenticate("PLAIN", b"\0bob\0Bench-pw-2")),
                 ("PLAIN, the app password", lambda c: c.authenticate("PLAIN", b"\0bob\0" + app.encode()))]
        for name in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
            mechs.append((name, scram_signin(name, "alice", "Bench-pw-1", {})))
        mechs.append(("SCRAM-SHA-256, client PBKDF2 each", scram_signin("SCRAM-SHA-256", "alice", "Bench-pw-1", None)))
        for kid, alg in (("rs", "RS256"), ("es", "ES256"), ("ed", "EdDSA")):
            token = keys.mint(kid, ISSUER, AUDIENCE, exp=int(time.time()) + 3600)
            msg = ("n,,\x01auth=Bearer %s\x01\x01" % token).encode()
            mechs.append(("OAUTHBEARER %s" % alg, lambda c, m=msg: c.authenticate("OAUTHBEARER", m)))
        mechs.append(("GSSAPI (a service ticket held)", gssapi_signin))
        assert h.wait_for(lambda: all(sig(Imap(port)) for _, sig in mechs), timeout=20), "a mechanism fails"
        print("IMAP sign-ins per second (AUTHENTICATE, then UNAUTHENTICATE; %.0f s each):" % SECONDS)
        for name, signin in mechs:
            one, one_ms = run(port, signin, 1)
            many, many_ms = run(port, signin, CLIENTS)
            print("  %-34s %7.0f  /s with 1 client (median %.2f ms), %.0f /s with %d (median %.2f ms)"
                  % (name + ":", one, one_ms, many, CLIENTS, many_ms))
    finally:
        s.destroy()
        kdc.destroy()


if __name__ == "__main__":
    main()
