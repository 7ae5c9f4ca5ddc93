"""mail_auth.py - what the tests and the benchmark of the checks on the way in share (tests/e2e/test_authres.py,
tests/bench/bench_authres.py): a network namespace of their own, where the SMTP client is not on loopback (libspf2
passes any loopback client), and a sending domain's DKIM keys (python3-cryptography) with their DNS records, whose
messages dkimpy signs."""
import base64
import ctypes
import os
import shutil

import harness as h

dkim = h.debian_module("dkim")
serialization = h.debian_module("cryptography.hazmat.primitives.serialization")
ed25519 = h.debian_module("cryptography.hazmat.primitives.asymmetric.ed25519")
rsa = h.debian_module("cryptography.hazmat.primitives.asymmetric.rsa")


def missing():
    """Why the signer cannot work here, or None."""
    if None in (dkim, serialization, ed25519, rsa):
        return "dkimpy or python3-cryptography is not installed (Debian packages python3-dkim, python3-cryptography)"
    return None


def own_network(*addresses):
    """Moves this process (and what it starts from now on) into a new network namespace with loopback up and the
    addresses on it; raises harness.Skip where that is not allowed."""
    if shutil.which("ip") is None:
        h.skip("ip is not installed (Debian package iproute2)")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
        h.skip("cannot make a network namespace (unshare: %s)" % os.strerror(ctypes.get_errno()))
    h.run(["ip", "link", "set", "lo", "up"], check=True)
    for addr in addresses:
        h.run(["ip", "addr", "add", addr + "/32", "dev", "lo"], check=True)


def txt(value):
    """A TXT record's value as zone-file strings of at most 255 bytes."""
    return " ".join('"%s"' % value[i:i + 255] for i in range(0, len(value), 255))


class Signer:
    """An RSA-2048 key (selector rsa1) and an Ed25519 key (selector ed1) of domain."""

    def __init__(self, domain):
        self.domain = domain
        r = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        e = ed25519.Ed25519PrivateKey.generate()
        self.keys = {
            "rsa1": (r.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()), b"rsa-sha256"),
            "ed1": (base64.b64encode(e.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                     serialization.NoEncryption())), b"ed25519-sha256"),
        }
        rpub = r.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        epub = e.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.records = "rsa1._domainkey.%s. IN TXT %s\ned1._domainkey.%s. IN TXT %s\n" % (
            domain, txt("v=DKIM1; k=rsa; p=" + base64.b64encode(rpub).decode()),
            domain, txt("v=DKIM1; k=ed25519; p=" + base64.b64encode(epub).decode()))

    def sign(self, msg, selectors=("rsa1", "ed1")):
        """msg (bytes) with a DKIM-Signature per selector, each over the message as given (an unknown selector signs
        with the RSA key: its record is missing)."""
        sigs = b""
        for sel in selectors:
            key, alg = self.keys.get(sel, self.keys["rsa1"])
            sigs += dkim.sign(msg, sel.encode(), self.domain.encode(), key, signature_algorithm=alg,
                              include_headers=[b"from", b"to", b"subject", b"message-id"])
        return sigs + msg
