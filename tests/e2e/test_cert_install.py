"""test_cert_install.py - `interchange cert install`: a certificate from a CA of the test's own (python3-cryptography)
is checked and installed while the system runs, then every TLS port (SMTP, submission and submissions, IMAP and
IMAPS, POP3 and POP3S, LDAP StartTLS, LDAPS, HTTPS) presents it to openssl s_client verifying the chain and the host
name, with no service restarted; a key that does not match, a certificate for another name, an expired one or a chain out
of order is refused in words and changes nothing; files changed in place (a certbot deploy hook copying them over
DATA/tls) are served by every port by themselves."""
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import System, main, run, setup, test, wait_for  # noqa: E402
import certs  # noqa: E402
from certs import make_pair  # noqa: E402

S = None
HOST = "mail.example.com"
DIR = None


def write(name, *objs):
    return certs.write(DIR, name, *objs)


def presented(port, starttls=None, ca=None):
    """The SHA-256 fingerprint openssl s_client sees on port (verifying chain and host name against ca), or ""."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", HOST]
    if starttls:
        cmd += ["-starttls", starttls]
    if ca:
        cmd += ["-CAfile", ca, "-verify_hostname", HOST, "-verify_return_error"]
    r = run(cmd, input="", timeout=20)
    if r.returncode != 0 or "BEGIN CERTIFICATE" not in r.stdout:
        return ""
    pem = r.stdout[r.stdout.index("-----BEGIN CERTIFICATE-----"):r.stdout.index("-----END CERTIFICATE-----") + 25]
    fp = run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=pem).stdout
    return fp.strip().split("=", 1)[1].replace(":", "").lower()


def service_pids():
    st = json.loads(S.cli("status", "--json", check=True).stdout)
    return {s["name"]: s["pid"] for s in st["services"]}


@setup
def system():
    global S, DIR
    S = System()
    DIR = tempfile.mkdtemp(prefix="ixcert-", dir=S.base)


def ports():
    p = S.ports
    return [(p["smtp"], "smtp"), (p["submission"], "smtp"), (p["submissions"], None), (p["imap"], "imap"),
            (p["imaps"], None), (p["pop3"], "pop3"), (p["pop3s"], None), (p["ldap"], "ldap"),
            (p["ldaps"], None), (p["https"], None)]


@test
def refused_pairs_change_nothing():
    ca = make_pair("Test CA", ca=True, days=365)
    good = make_pair(HOST, ca)
    other = make_pair("other.example.org", ca)
    expired = make_pair(HOST, ca, days=-1, start_days=-10)
    stray_key = make_pair(HOST, ca)[0]
    before = open(os.path.join(S.data, "tls", "cert.pem")).read()
    cases = [(write("c1.pem", good[1], ca[1]), write("k1.pem", stray_key), "does not match"),
             (write("c2.pem", other[1], ca[1]), write("k2.pem", other[0]), "not valid for " + HOST),
             (write("c3.pem", expired[1], ca[1]), write("k3.pem", expired[0]), "expired"),
             (write("c4.pem", ca[1], good[1]), write("k4.pem", good[0]), "")]
    for cert, key, why in cases:
        r = S.cli("cert", "install", "--cert", cert, "--key", key)
        assert r.returncode != 0 and why in r.stderr and "nothing was changed" in r.stderr, (why, r.stderr)
    assert open(os.path.join(S.data, "tls", "cert.pem")).read() == before
    r = S.cli("cert", "install", "--cert", cases[0][0])
    assert r.returncode == 2 and "--key" in r.stderr, r.stderr


@test
def installed_and_served_without_restart():
    ca = make_pair("Test CA", ca=True, days=365)
    leaf = make_pair(HOST, ca, days=20)  # inside the 30 days before expiry that status warns about
    cert, key, ca_file = write("chain.pem", leaf[1], ca[1]), write("key.pem", leaf[0]), write("ca.pem", ca[1])
    from cryptography.hazmat.primitives import hashes
    want = leaf[1].fingerprint(hashes.SHA256()).hex()
    old = presented(S.ports["imaps"])
    assert old and old != want
    pids = service_pids()
    start = time.monotonic()
    r = S.cli("cert", "install", "--cert", cert, "--key", key)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "does not verify against this machine's trusted CAs" in r.stdout, r.stdout  # a private CA: a warning
    for port, starttls in ports():
        got = wait_for(lambda: presented(port, starttls, ca_file) == want, timeout=20, interval=0.5)
        assert got, "port %d (%s) still presents %s" % (port, starttls or "TLS", presented(port, starttls))
    print("every port serves the new certificate %.1f s after cert install" % (time.monotonic() - start))
    assert service_pids() == pids, "a service was restarted: %s -> %s" % (pids, service_pids())
    # status warns 30 days ahead: this certificate has 19 or 20 days left
    st = json.loads(S.cli("status", "--json", check=True).stdout)
    assert st["certificate"]["days_left"] in (19, 20), st["certificate"]
    assert any("the TLS certificate expires in" in w for w in st["warnings"]), st["warnings"]
    # the public copy and cert show follow
    assert S.cli("cert", "show", "--pem", check=True).stdout.strip() in open(cert).read()


@test
def files_changed_in_place_are_served():
    """A deploy hook that copies the renewed pair over DATA/tls/cert.pem and key.pem (the same files, no command)."""
    ca = make_pair("Renewal CA", ca=True, days=365)
    leaf = make_pair(HOST, ca, days=90)
    from cryptography.hazmat.primitives import hashes
    want = leaf[1].fingerprint(hashes.SHA256()).hex()
    pids = service_pids()
    tls = os.path.join(S.data, "tls")
    inodes = [os.stat(os.path.join(tls, f)).st_ino for f in ("cert.pem", "key.pem")]
    shutil.copyfile(write("renewed-key.pem", leaf[0]), os.path.join(tls, "key.pem"))
    shutil.copyfile(write("renewed-chain.pem", leaf[1], ca[1]), os.path.join(tls, "cert.pem"))
    assert [os.stat(os.path.join(tls, f)).st_ino for f in ("cert.pem", "key.pem")] == inodes
    ca_file = write("renewal-ca.pem", ca[1])
    for port, starttls in ports():
        got = wait_for(lambda: presented(port, starttls, ca_file) == want, timeout=20, interval=0.5)
        assert got, "port %d (%s) still presents %s" % (port, starttls or "TLS", presented(port, starttls))
    assert service_pids() == pids, "a service was restarted: %s -> %s" % (pids, service_pids())


if __name__ == "__main__":
    main("test_cert_install")
