"""api_client.py - curl against the REST API of a test's system over HTTPS, verifying the server's certificate (from
`interchange cert show --pem`): shared by the API's end-to-end tests."""
import json
import os

from harness import run

HOST = "mail.example.com"


class Api:
    def __init__(self, system, host=HOST):
        self.system = system
        self.host = host
        self.ca = os.path.join(system.base, "server-ca.pem")
        with open(self.ca, "w") as f:
            f.write(system.cli("cert", "show", "--pem", check=True).stdout)

    def url(self, path):
        return "https://%s:%d/api/v1/%s" % (self.host, self.system.ports["https"], path)

    def curl(self, method, path, login=None, password=None, body=None, *extra):
        """Returns (status, parsed JSON or None, raw text)."""
        port = self.system.ports["https"]
        cmd = ["curl", "-sS", "--max-time", "30", "--cacert", self.ca, "--resolve", "%s:%d:127.0.0.1" % (self.host, port),
               "-X", method, "-w", "\n%{http_code}"]
        if login is not None:
            cmd += ["-u", "%s:%s" % (login, password)]
        if body is not None:
            cmd += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
        r = run(cmd + list(extra) + [self.url(path)], timeout=40)
        assert r.returncode == 0, r.stderr
        text, _, code = r.stdout.rpartition("\n")
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
        return int(code), data, text
