"""dns_server.py - a real DNS server for the end-to-end tests: Debian's nsd serving zones on a free loopback port
(test_autoconfig's records of `interchange dns`, test_authres's SPF and DKIM records, test_dns's and test_dane's
DNSSEC-signed zones, signed by ldnsutils' ldns-signzone with keys of the test's own), with dig to ask it."""
import os
import shutil
import subprocess
import tempfile

from harness import free_ports, run, skip, wait_for


class Nsd:
    """Debian's nsd serving zones made of the SOA and NS records plus the records given, on a free port. The zones
    named in signed are signed (a KSK and a ZSK of ECDSA P-256 made for the test); self.anchor is then a file of
    their DS records, the trust anchor a validating resolver is given. In a signed zone, the text TAMPER-ME is
    changed to TAMPERED! after signing: its record no longer matches its signature."""

    def __init__(self, zones, signed=()):
        if shutil.which("nsd") is None or shutil.which("dig") is None:
            skip("nsd or dig is not installed (make deps installs nsd and dnsutils)")
        if signed and (shutil.which("ldns-keygen") is None or shutil.which("ldns-signzone") is None):
            skip("ldns-keygen or ldns-signzone is not installed (make deps installs ldnsutils)")
        self.dir = tempfile.mkdtemp(prefix="ixnsd-", dir="/tmp")
        self.port = free_ports(1)[0]
        os.chmod(self.dir, 0o755)  # the services, under their own user, read the trust anchor
        self.anchor = os.path.join(self.dir, "anchor.ds")
        open(self.anchor, "w").close()
        conf = ["server:", "  ip-address: 127.0.0.1", "  port: %d" % self.port, "  username: \"\"",
                "  zonesdir: \"%s\"" % self.dir, "  database: \"\"", "  pidfile: \"%s/nsd.pid\"" % self.dir,
                "  xfrdfile: \"%s/xfrd.state\"" % self.dir, "  zonelistfile: \"%s/zone.list\"" % self.dir,
                "  verbosity: 1", "remote-control:", "  control-enable: no"]
        for name, records in zones.items():
            with open(os.path.join(self.dir, name + ".zone"), "w") as f:
                f.write("$TTL 3600\n%s. IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 3600\n%s. IN NS ns.%s.\n"
                        "ns.%s. IN A 127.0.0.1\n%s" % ((name,) * 6 + (records,)))
            zonefile = name + ".zone"
            if name in signed:
                zonefile = self._sign(name)
            conf += ["zone:", "  name: %s" % name, "  zonefile: %s" % zonefile]
        with open(os.path.join(self.dir, "nsd.conf"), "w") as f:
            f.write("\n".join(conf) + "\n")
        check = run(["nsd-checkconf", os.path.join(self.dir, "nsd.conf")])
        assert check.returncode == 0, check.stderr
        self.log = open(os.path.join(self.dir, "nsd.log"), "w")
        self.proc = subprocess.Popen(["nsd", "-d", "-c", os.path.join(self.dir, "nsd.conf")], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        up = wait_for(lambda: self.ask("SOA", list(zones)[0]) != "", timeout=15, interval=0.1)
        assert up, "nsd did not answer: %s" % open(os.path.join(self.dir, "nsd.log")).read()[-800:]

    def _sign(self, name):
        """Signs name's zone file; returns the signed file's name and adds the zone's DS to self.anchor."""
        keys = []
        for extra in (["-k"], []):  # the key-signing key (its DS is the anchor), then the zone-signing key
            r = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256"] + extra + [name], cwd=self.dir,
                               capture_output=True, text=True, check=True)
            keys.append(os.path.join(self.dir, r.stdout.strip()))
        out = os.path.join(self.dir, name + ".zone.signed")
        run(["ldns-signzone", "-f", out, os.path.join(self.dir, name + ".zone")] + keys, check=True)
        with open(out) as f:
            text = f.read()
        with open(out, "w") as f:
            f.write(text.replace("TAMPER-ME", "TAMPERED!"))
        with open(keys[0] + ".ds") as f, open(self.anchor, "a") as a:
            a.write(f.read())
        return name + ".zone.signed"

    def resolve_for(self, system):
        """Makes this server the one system's services ask (the settings dns.resolver and dns.trust_anchor) and waits
        until ix-smtpd and ix-mta say they ask it."""
        system.cli("server", "set", "dns.resolver", "127.0.0.1@%d" % self.port, check=True)
        system.cli("server", "set", "dns.trust_anchor", self.anchor, check=True)
        line = "DNS: asking 127.0.0.1@%d, trust anchors from %s" % (self.port, self.anchor)
        for name in ("smtpd", "mta"):
            assert wait_for(lambda: line in system.log(name), timeout=15), system.log(name)[-800:]

    def ask(self, rtype, name):
        r = run(["dig", "+short", "+time=1", "+tries=1", "-p", str(self.port), "@127.0.0.1", rtype, name])
        return r.stdout.strip()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
