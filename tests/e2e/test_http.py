"""test_http.py - ix-httpd end to end with curl: the HTTP and HTTPS ports in status, TLS with this server's
certificate, ACME HTTP-01 challenges served from DATA/acme so that Debian's certbot gets a certificate from a real
ACME server (Debian's pebble, resolving names with pebble-challtestsrv), and that certificate served on the HTTPS
port by itself once it replaces tls/cert.pem (no restart)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import System, free_ports, main, run, setup, skip, test, wait_for  # noqa: E402

S = None
HOST = "mail.example.com"


def curl(*args, timeout=20):
    return run(["curl", "-sS", "--max-time", "10"] + list(args), timeout=timeout)


def https(path, *extra):
    """curl over HTTPS on the server's port, trusting its own certificate (interchange cert show --pem)."""
    ca = os.path.join(S.base, "server-ca.pem")
    if not os.path.exists(ca):
        with open(ca, "w") as f:
            f.write(S.cli("cert", "show", "--pem", check=True).stdout)
    return curl("--cacert", ca, "--resolve", "%s:%d:127.0.0.1" % (HOST, S.ports["https"]),
                "https://%s:%d%s" % (HOST, S.ports["https"], path), *extra)


@setup
def system():
    global S
    S = System()


@test
def ports_in_status():
    st = json.loads(S.cli("status", "--json", check=True).stdout)
    assert st["ports"]["http"] == S.ports["http"] and st["ports"]["https"] == S.ports["https"], st["ports"]
    svc = {s["name"]: s for s in st["services"]}
    assert svc["httpd"]["state"] == "running", svc.get("httpd")
    text = S.cli("status", check=True).stdout
    assert "http %d" % S.ports["http"] in text and "https %d" % S.ports["https"] in text, text


@test
def plain_and_tls():
    r = curl("-i", "http://127.0.0.1:%d/" % S.ports["http"])
    assert r.returncode == 0 and r.stdout.startswith("HTTP/1.1 200") and HOST in r.stdout, r.stdout + r.stderr
    # verified against the certificate init made for the host name
    r = https("/", "-i")
    assert r.returncode == 0 and r.stdout.startswith("HTTP/1.1 200"), r.stdout + r.stderr
    r = https("/no/such/page", "-o", "/dev/null", "-w", "%{http_code}")
    assert r.stdout == "404", r.stdout + r.stderr
    # TLS 1.1 is refused, 1.2 and 1.3 are taken
    r = https("/", "--tls-max", "1.1", "--tlsv1.1", "-o", "/dev/null")
    assert r.returncode != 0, "TLS 1.1 accepted"
    r = https("/", "--tls-max", "1.2", "-o", "/dev/null", "-w", "%{http_code}")
    assert r.stdout == "200", r.stdout + r.stderr


@test
def acme_challenge_files():
    folder = os.path.join(S.data, "acme", ".well-known", "acme-challenge")
    assert wait_for(lambda: os.path.isdir(folder), timeout=10), "httpd did not create %s" % folder
    with open(os.path.join(folder, "tok-EN_123"), "w") as f:
        f.write("tok-EN_123.thumbprint")
    r = curl("-i", "http://127.0.0.1:%d/.well-known/acme-challenge/tok-EN_123" % S.ports["http"])
    assert r.stdout.startswith("HTTP/1.1 200") and r.stdout.endswith("\n\ntok-EN_123.thumbprint"), r.stdout
    for bad in ["missing", "..%2F..%2Finterchange.conf", "a.b", ""]:
        r = curl("-o", "/dev/null", "-w", "%{http_code}",
                 "http://127.0.0.1:%d/.well-known/acme-challenge/%s" % (S.ports["http"], bad))
        assert r.stdout == "404", (bad, r.stdout)
    r = curl("-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
             "http://127.0.0.1:%d/.well-known/acme-challenge/tok-EN_123" % S.ports["http"])
    assert r.stdout == "405", r.stdout


def start_pebble(work):
    """pebble (ACME server) and pebble-challtestsrv (its DNS: every name is 127.0.0.1) on free ports. Returns
    (directory URL, management URL, processes)."""
    acme_port, mgmt_port, dns_port, tls_port, chall_mgmt = free_ports(5)
    key, cert = os.path.join(work, "pebble-key.pem"), os.path.join(work, "pebble-cert.pem")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
        check=True)
    conf = os.path.join(work, "pebble.json")
    with open(conf, "w") as f:
        json.dump({"pebble": {"listenAddress": "127.0.0.1:%d" % acme_port,
                              "managementListenAddress": "127.0.0.1:%d" % mgmt_port,
                              "certificate": cert, "privateKey": key, "httpPort": S.ports["http"],
                              "tlsPort": tls_port, "ocspResponderURL": "",
                              "externalAccountBindingRequired": False}}, f)
    env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0", PEBBLE_AUTHZREUSE="0")
    log = open(os.path.join(work, "pebble.log"), "w")
    dns = subprocess.Popen(["pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                            "-dns01", "127.0.0.1:%d" % dns_port, "-http01", "", "-https01", "", "-tlsalpn01", "",
                            "-management", "127.0.0.1:%d" % chall_mgmt], stdout=log, stderr=log)
    acme = subprocess.Popen(["pebble", "-config", conf, "-dnsserver", "127.0.0.1:%d" % dns_port], env=env,
                            stdout=log, stderr=log)
    url = "https://127.0.0.1:%d/dir" % acme_port
    up = wait_for(lambda: curl("--cacert", cert, "-o", "/dev/null", url).returncode == 0 and
                  run(["dig", "+short", "+time=1", "+tries=1", "-p", str(dns_port), "@127.0.0.1", HOST]).stdout.strip()
                  == "127.0.0.1", timeout=20, interval=0.2)
    assert up, "pebble did not start: %s" % open(os.path.join(work, "pebble.log")).read()[-800:]
    return url, "https://127.0.0.1:%d" % mgmt_port, cert, [acme, dns]


@test
def certbot_webroot():
    for prog in ("certbot", "pebble", "pebble-challtestsrv"):
        if shutil.which(prog) is None:
            skip("%s is not installed (make deps installs certbot and pebble)" % prog)
    work = tempfile.mkdtemp(prefix="ixacme-", dir="/tmp")
    procs = []
    try:
        url, mgmt, pebble_cert, procs = start_pebble(work)
        env = dict(os.environ, REQUESTS_CA_BUNDLE=pebble_cert)
        p = subprocess.run(["certbot", "certonly", "--webroot", "-w", os.path.join(S.data, "acme"), "-d", HOST,
                            "--server", url, "--agree-tos", "--register-unsafely-without-email",
                            "--non-interactive", "--config-dir", work + "/etc", "--work-dir", work + "/work",
                            "--logs-dir", work + "/logs"], env=env, capture_output=True, text=True, timeout=180)
        assert p.returncode == 0, "certbot failed: %s %s\n%s" % (p.stdout, p.stderr, S.log("httpd")[-1500:])
        assert "/.well-known/acme-challenge/" in S.log("httpd"), "the challenge was not fetched from httpd"
        live = os.path.join(work, "etc", "live", HOST)
        # the CA that signed it, to verify what the HTTPS port serves next
        root = os.path.join(work, "pebble-root.pem")
        r = curl("--cacert", pebble_cert, "-o", root, mgmt + "/roots/0")
        assert r.returncode == 0, r.stderr
        # what a deploy hook does: the new pair in place of the old; httpd serves it by itself
        mark = S.log_mark("httpd")
        for src, dst, mode in (("privkey.pem", "key.pem", 0o600), ("fullchain.pem", "cert.pem", 0o644)):
            path = os.path.join(S.data, "tls", dst)
            st = os.stat(path)
            tmp = path + ".new"
            shutil.copyfile(os.path.join(live, src), tmp)
            os.chown(tmp, st.st_uid, st.st_gid)
            os.chmod(tmp, mode)
            os.rename(tmp, path)
        S.wait_log("httpd", "new HTTPS connections get the new certificate", mark, timeout=20)
        r = curl("--cacert", root, "--resolve", "%s:%d:127.0.0.1" % (HOST, S.ports["https"]),
                 "-o", "/dev/null", "-w", "%{http_code}", "https://%s:%d/" % (HOST, S.ports["https"]))
        assert r.stdout == "200", "the ACME certificate is not served: %s %s" % (r.stdout, r.stderr)
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


@test
def stops_with_the_system():
    S.stop()
    r = curl("-o", "/dev/null", "http://127.0.0.1:%d/" % S.ports["http"])
    assert r.returncode != 0, "the HTTP port still answers after stop"
    time.sleep(0.1)


if __name__ == "__main__":
    main("test_http")
