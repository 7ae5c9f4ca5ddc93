"""certs.py - keys and certificates of a CA of the test's own (python3-cryptography), for the tests that need TLS
peers with certificates they choose (test_cert_install.py, test_dane.py)."""
import datetime
import os


def make_pair(name, issuer=None, days=30, ca=False, start_days=-1, alt=()):
    """A key and certificate for name (and the names alt), signed by issuer (key, cert) or by itself. Returns (key,
    cert) objects."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(subject)
         .issuer_name(issuer[1].subject if issuer else subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now + datetime.timedelta(days=start_days))
         .not_valid_after(now + datetime.timedelta(days=days)))
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in (name,) + tuple(alt)]), critical=False)
    return key, b.sign(issuer[0] if issuer else key, hashes.SHA256())


def write(folder, name, *objs):
    """Writes the keys and certificates objs, in PEM, to folder/name; returns its path."""
    from cryptography.hazmat.primitives import serialization
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        for o in objs:
            if hasattr(o, "private_bytes"):
                f.write(o.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
            else:
                f.write(o.public_bytes(serialization.Encoding.PEM))
    return path
