"""rspamd_milter.py - Debian's rspamd as a mail filter for the end-to-end test and the benchmark of milter
(tests/e2e/test_milter.py, tests/bench/bench_milter.py): its rspamd_proxy worker in milter mode, scanning itself
(self_scan, no normal worker, no redis), on a free loopback port, with a configuration in a temporary folder of its
own; the modules that would ask the network (DNS lists, fuzzy hashes, SPF/DKIM/DMARC, updates) are off, and the
milter_headers module adds X-Spamd-Result and X-Spam-Status to every message, from loopback too."""
import os
import shutil
import subprocess
import tempfile

from harness import free_ports, skip, wait_for

NETWORK_MODULES = ("rbl", "surbl", "dcc", "fuzzy_check", "asn", "mx_check", "greylist", "ratelimit", "neural",
                   "reputation", "phishing", "url_redirector", "rspamd_update", "spf", "dkim", "dmarc", "arc",
                   "dkim_signing", "history_redis", "clickhouse", "elastic", "metadata_exporter", "metric_exporter",
                   "replies", "p0f", "antivirus", "external_services", "emails", "spamtrap", "bayes_expiry")


class Rspamd:
    """rspamd's milter proxy on 127.0.0.1:self.port (endpoint: self.endpoint). start() returns at once; wait()
    waits until it listens (loading its rules takes tens of seconds on a busy machine)."""

    def __init__(self):
        if shutil.which("rspamd") is None:
            skip("rspamd is not installed (Debian package rspamd)")
        self.dir = tempfile.mkdtemp(prefix="ixrspamd-", dir="/tmp")
        self.port = free_ports(1)[0]
        self.endpoint = "inet:127.0.0.1:%d" % self.port
        local = os.path.join(self.dir, "local.d")
        for sub in ("local.d", "db", "run"):
            os.mkdir(os.path.join(self.dir, sub))
        # a short list of top-level domains: compiling Debian's whole public suffix list takes a minute
        with open(os.path.join(self.dir, "tld.dat"), "w") as f:
            f.write("com\norg\nnet\ntest\n")
        with open(os.path.join(self.dir, "rspamd.conf"), "w") as f:
            f.write('.include "$CONFDIR/common.conf"\n'
                    'options {\n  pidfile = "$RUNDIR/rspamd.pid";\n  .include "$CONFDIR/options.inc"\n'
                    '  dns { nameserver = ["127.0.0.1:9"]; timeout = 1s; retransmits = 1; }\n'
                    '  local_addrs = [];\n  url_tld = "%s/tld.dat";\n  disable_hyperscan = true;\n}\n'
                    'logging { type = "file"; filename = "$LOGDIR/rspamd.log"; level = "info"; }\n'
                    'worker "rspamd_proxy" {\n  bind_socket = "127.0.0.1:%d";\n  milter = yes;\n  timeout = 120s;\n'
                    '  upstream "local" { default = yes; self_scan = yes; }\n  count = 1;\n'
                    '  reject_message = "Spam message rejected";\n}\n' % (self.dir, self.port))
        for m in NETWORK_MODULES:
            with open(os.path.join(local, m + ".conf"), "w") as f:
                f.write("enabled = false;\n")
        with open(os.path.join(local, "milter_headers.conf"), "w") as f:
            f.write('use = ["x-spamd-result", "x-spam-status"];\nskip_local = false;\nskip_authenticated = false;\n')
        with open(os.path.join(local, "classifier-bayes.conf"), "w") as f:
            f.write('backend = "sqlite3";\n')
        self.proc = None

    def start(self):
        self.out = open(os.path.join(self.dir, "rspamd.out"), "w")
        v = []
        for name, sub in (("LOCAL_CONFDIR", ""), ("DBDIR", "db"), ("RUNDIR", "run"), ("LOGDIR", "")):
            v += ["--var", "%s=%s" % (name, os.path.join(self.dir, sub).rstrip("/"))]
        # -i: the test runs as root, and rspamd would not run its workers as root otherwise
        self.proc = subprocess.Popen(["rspamd", "-f", "-i", "-c", os.path.join(self.dir, "rspamd.conf")] + v,
                                     stdout=self.out, stderr=subprocess.STDOUT)

    def listening(self):
        import socket
        s = socket.socket()
        s.settimeout(1)
        try:
            s.connect(("127.0.0.1", self.port))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def wait(self, timeout=240):
        up = wait_for(lambda: self.proc.poll() is not None or self.listening(), timeout=timeout, interval=0.5)
        assert up and self.proc.poll() is None, "rspamd did not start: %s" % self.log()[-1500:]

    def log(self):
        try:
            with open(os.path.join(self.dir, "rspamd.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
