"""dns_server.py - a real DNS server for the end-to-end tests: Debian's nsd serving zones on a free loopback port
(test_autoconfig's records of `interchange dns`, test_authres's SPF and DKIM records), with dig to ask it."""
import os
import shutil
import subprocess
import tempfile

from harness import free_ports, run, skip, wait_for


class Nsd:
    """Debian's nsd serving a zone made of the SOA and NS records plus `interchange dns` output, on a free port."""

    def __init__(self, zones):
        if shutil.which("nsd") is None or shutil.which("dig") is None:
            skip("nsd or dig is not installed (make deps installs nsd and dnsutils)")
        self.dir = tempfile.mkdtemp(prefix="ixnsd-", dir="/tmp")
        self.port = free_ports(1)[0]
        conf = ["server:", "  ip-address: 127.0.0.1", "  port: %d" % self.port, "  username: \"\"",
                "  zonesdir: \"%s\"" % self.dir, "  database: \"\"", "  pidfile: \"%s/nsd.pid\"" % self.dir,
                "  xfrdfile: \"%s/xfrd.state\"" % self.dir, "  zonelistfile: \"%s/zone.list\"" % self.dir,
                "  verbosity: 1", "remote-control:", "  control-enable: no"]
        for name, records in zones.items():
            with open(os.path.join(self.dir, name + ".zone"), "w") as f:
                f.write("$TTL 3600\n%s. IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 3600\n%s. IN NS ns.%s.\n"
                        "ns.%s. IN A 127.0.0.1\n%s" % ((name,) * 6 + (records,)))
            conf += ["zone:", "  name: %s" % name, "  zonefile: %s.zone" % name]
        with open(os.path.join(self.dir, "nsd.conf"), "w") as f:
            f.write("\n".join(conf) + "\n")
        check = run(["nsd-checkconf", os.path.join(self.dir, "nsd.conf")])
        assert check.returncode == 0, check.stderr
        self.log = open(os.path.join(self.dir, "nsd.log"), "w")
        self.proc = subprocess.Popen(["nsd", "-d", "-c", os.path.join(self.dir, "nsd.conf")], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        up = wait_for(lambda: self.ask("SOA", list(zones)[0]) != "", timeout=15, interval=0.1)
        assert up, "nsd did not answer: %s" % open(os.path.join(self.dir, "nsd.log")).read()[-800:]

    def ask(self, rtype, name):
        r = run(["dig", "+short", "+time=1", "+tries=1", "-p", str(self.port), "@127.0.0.1", rtype, name])
        return r.stdout.strip()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
