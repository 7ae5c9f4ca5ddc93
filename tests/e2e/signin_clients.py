"""signin_clients.py - what the sign-in tests and benchmark share: an MIT KDC of two realms started on 127.0.0.1
(test_kerberos.py, bench_signin.py), signing keys and JWTs minted with them (test_oauth.py, bench_signin.py), and a
SASL GSSAPI client over python3-gssapi (bench_signin.py)."""
import base64
import json
import os
import shutil
import subprocess
import sys
import time

import harness as h

try:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
except ImportError:
    sys.path.append("/usr/lib/python3/dist-packages")  # python3-cryptography, for a python3 of its own (pyenv)
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

REALM, OTHER = "EXAMPLE.TEST", "OTHER.TEST"


# ---- Kerberos ----

class Kdc:
    """An MIT krb5kdc on 127.0.0.1 serving REALM and OTHER (which trusts REALM's services: a cross-realm key) from
    databases in folder (removed by destroy), with its krb5.conf (KRB5_CONFIG of the clients and, through h.ENV, of the services) and
    kdc.conf. hosts are the host names whose realm is REALM."""

    def __init__(self, folder, hosts):
        self.dir = folder
        os.chmod(folder, 0o755)  # the services (their own user) read krb5.conf here
        self.port = h.free_ports(1)[0]
        self.conf = os.path.join(folder, "krb5.conf")
        self.env = dict(h.ENV, KRB5_CONFIG=self.conf, KRB5_KDC_PROFILE=os.path.join(folder, "kdc.conf"))
        with open(self.conf, "w") as f:
            # the services take any principal of the keytab with their service name (ignore_acceptor_hostname):
            # clients that cannot be told the host name's address use localhost
            f.write("[libdefaults]\n\tdefault_realm = %s\n\tdns_lookup_kdc = false\n\tdns_lookup_realm = false\n"
                    "\trdns = false\n\tdns_canonicalize_hostname = false\n\tignore_acceptor_hostname = true\n"
                    "\tudp_preference_limit = 1\n[realms]\n" % REALM)
            for r in (REALM, OTHER):
                f.write("\t%s = {\n\t\tkdc = 127.0.0.1:%d\n\t}\n" % (r, self.port))
            f.write("[domain_realm]\n")
            for host in hosts:
                f.write("\t%s = %s\n" % (host, REALM))
            f.write("[capaths]\n\t%s = {\n\t\t%s = .\n\t}\n" % (OTHER, REALM))
        with open(os.path.join(folder, "kdc.conf"), "w") as f:
            f.write("[kdcdefaults]\n\tkdc_ports = %d\n\tkdc_tcp_ports = %d\n[realms]\n" % (self.port, self.port))
            for r in (REALM, OTHER):
                f.write("\t%s = {\n\t\tdatabase_name = %s/%s.db\n\t\tkey_stash_file = %s/%s.stash\n\t}\n"
                        % (r, folder, r, folder, r))
            f.write("[logging]\n\tkdc = FILE:%s/kdc.log\n" % folder)
        for r in (REALM, OTHER):
            self.run("kdb5_util", "-r", r, "create", "-s", "-P", "master-" + r)
        for r in (REALM, OTHER):  # the other realm's users may ask for our services (cross-realm trust)
            self.kadmin(r, "addprinc -pw cross-realm-secret krbtgt/%s@%s" % (REALM, OTHER))
        self.proc = subprocess.Popen(["krb5kdc", "-n", "-r", REALM, "-r", OTHER], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def run(self, *cmd, input=None):
        p = subprocess.run(list(cmd), env=self.env, capture_output=True, text=True, input=input, timeout=60)
        if p.returncode != 0:
            raise AssertionError("%s: %s %s" % (" ".join(cmd), p.stdout, p.stderr))
        return p.stdout

    def kadmin(self, realm, query):
        return self.run("kadmin.local", "-r", realm, "-q", query)

    def keytab(self, path, services, hosts):
        """A keytab at path with a random key for each service/host principal of REALM."""
        for svc in services:
            for host in hosts:
                self.kadmin(REALM, "addprinc -randkey %s/%s" % (svc, host))
                self.kadmin(REALM, "ktadd -k %s %s/%s" % (path, svc, host))

    def kinit(self, principal, password):
        """A new ticket cache for principal; returns the environment that uses it."""
        cache = os.path.join(self.dir, "cc-" + principal.replace("@", "_"))
        env = dict(self.env, KRB5CCNAME="FILE:" + cache)
        p = subprocess.run(["kinit", principal], env=env, input=password + "\n", capture_output=True, text=True,
                           timeout=30)
        if p.returncode != 0:
            raise AssertionError("kinit %s: %s" % (principal, p.stderr))
        return env

    def destroy(self):
        """Stops the KDC and removes its folder (h._systems calls it at the end, whatever happened)."""
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def gssapi_sasl(service, host, send):
    """The client side of one SASL GSSAPI exchange (RFC 4752) with python3-gssapi, from the ticket cache of the
    environment: send(token bytes or None) delivers a client response and returns the server's next challenge
    (bytes), or None when the server said it is done. Returns True when the server accepted."""
    try:
        import gssapi
    except ImportError:
        sys.path.append("/usr/lib/python3/dist-packages")  # python3-gssapi, for a python3 of its own (pyenv)
        import gssapi
    name = gssapi.Name("%s@%s" % (service, host), gssapi.NameType.hostbased_service)
    ctx = gssapi.SecurityContext(name=name, usage="initiate")
    challenge = send(ctx.step())
    while not ctx.complete:
        challenge = send(ctx.step(challenge))
    if challenge is None:
        return False
    if not ctx.complete:
        return False
    # the server's offer of security layers; we take none (RFC 4752 3.1)
    ctx.unwrap(challenge)
    return send(ctx.wrap(b"\x01\x00\x00\x00", False).message) is None


# ---- OAuth ----

def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Keys:
    """Signing keys by kid (RS256, ES256, EdDSA), their JWKS, and tokens signed with them."""

    def __init__(self):
        self.keys = {}  # kid -> (alg, private key)

    def new(self, kid, alg):
        if alg == "RS256":
            k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif alg == "ES256":
            k = ec.generate_private_key(ec.SECP256R1())
        else:
            k = ed25519.Ed25519PrivateKey.generate()
        self.keys[kid] = (alg, k)
        return kid

    def jwk(self, kid):
        alg, k = self.keys[kid]
        pub = k.public_key()
        if alg == "RS256":
            n = pub.public_numbers()
            return {"kty": "RSA", "kid": kid, "use": "sig", "alg": alg, "n": b64u(n.n.to_bytes(256, "big")),
                    "e": b64u(n.e.to_bytes(3, "big"))}
        if alg == "ES256":
            n = pub.public_numbers()
            return {"kty": "EC", "kid": kid, "crv": "P-256", "x": b64u(n.x.to_bytes(32, "big")),
                    "y": b64u(n.y.to_bytes(32, "big"))}
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64u(raw)}

    def write_jwks(self, path, kids):
        with open(path + ".tmp", "w") as f:
            json.dump({"keys": [self.jwk(k) for k in kids]}, f)
        os.rename(path + ".tmp", path)

    def mint(self, kid, issuer, audience, sign_with=None, **claims):
        """A JWT with kid in its header, signed with the key sign_with (default: kid's), for issuer and audience,
        naming alice@example.com, valid for 5 minutes; claims override those (None removes one)."""
        alg, k = self.keys[sign_with or kid]
        now = int(time.time())
        body = {"iss": issuer, "aud": audience, "email": "alice@example.com", "preferred_username": "alice",
                "iat": now, "nbf": now, "exp": now + 300}
        body.update(claims)
        body = {c: v for c, v in body.items() if v is not None}
        signing = (b64u(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}).encode()) + "." +
                   b64u(json.dumps(body).encode())).encode()
        if alg == "RS256":
            sig = k.sign(signing, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "ES256":
            r, s = decode_dss_signature(k.sign(signing, ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            sig = k.sign(signing)
        return signing.decode() + "." + b64u(sig)
