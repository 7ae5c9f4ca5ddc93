"""apiclient.py - curl against the REST API of a test's System over HTTPS, verifying the server's certificate (the
CA from `interchange cert show --pem`), for the API tests (test_api.py, test_api_recipients.py)."""
import json
import os

from harness import run

HOST = "mail.example.com"


def server_ca(system):
    """Writes the server's certificate (it is its own CA) next to the data folder; returns its path."""
    path = os.path.join(system.base, "server-ca.pem")
    with open(path, "w") as f:
        f.write(system.cli("cert", "show", "--pem", check=True).stdout)
    return path


def url(system, path):
    return "https://%s:%d/api/v1/%s" % (HOST, system.ports["https"], path)


def curl(system, ca, method, path, login=None, password=None, body=None, *extra):
    """curl against the API; returns (status, parsed JSON or None, raw text)."""
    cmd = ["curl", "-sS", "--max-time", "20", "--cacert", ca, "--resolve",
           "%s:%d:127.0.0.1" % (HOST, system.ports["https"]), "-X", method, "-w", "\n%{http_code}"]
    if login is not None:
        cmd += ["-u", "%s:%s" % (login, password)]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
    r = run(cmd + list(extra) + [url(system, path)], timeout=30)
    assert r.returncode == 0, r.stderr
    text, _, code = r.stdout.rpartition("\n")
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    return int(code), data, text
