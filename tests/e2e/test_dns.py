#!/usr/bin/env python3
# test_dns.py - the mail path's DNS module (transport/mta/dns.c over libunbound), asked through transport/dns_probe:
# a real authoritative server (Debian's nsd on loopback) serves zones signed with ldns-signzone, one unsigned zone and
# a signed zone with a record changed after signing; the resolver validates with the trust anchor the test made (the
# zones' DS records). MX by preference, TLSA and TXT, NXDOMAIN and no-MX, secure and insecure answers, a tampered
# record and a wrong trust anchor refused as bogus; the setting dns.resolver checked by `interchange server set` and
# followed by the running services; a connector's smart host named in DNS reached through the same resolver; a
# resolver that never answers: each query given up after dns.timeout, the mail deferred saying so.
import os
import smtplib
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from dns_server import Nsd  # noqa: E402

PROBE = os.path.join(os.path.dirname(h.INTERCHANGE), "transport", "dns_probe")
NS = None
S = None
TLSA_HASH = "8f" * 32


def probe(rtype, name, anchor=None, server=None, timeout_ms=None):
    """The probe's lines for one question to NS (or server) with anchor (default: the zones' DS records)."""
    r = subprocess.run([PROBE, server or "127.0.0.1@%d" % NS.port, NS.anchor if anchor is None else anchor, rtype,
                        name] + ([str(timeout_ms)] if timeout_ms else []), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.splitlines()


@h.setup
def setup():
    global NS
    NS = Nsd({"secure.test": "secure.test. IN MX 20 b.secure.test.\nsecure.test. IN MX 10 a.secure.test.\n"
                             "a.secure.test. IN A 192.0.2.10\nb.secure.test. IN A 192.0.2.11\n"
                             "secure.test. IN TXT \"v=spf1 -all\"\n"
                             "_25._tcp.a.secure.test. IN TLSA 3 1 1 %s\n" % TLSA_HASH +
                             "onlya.secure.test. IN A 192.0.2.12\n",
              "broken.test": "broken.test. IN MX 10 mx.broken.test.\nmx.broken.test. IN A 192.0.2.20\n"
                             "broken.test. IN TXT \"TAMPER-ME\"\n",
              "plain.test": "plain.test. IN MX 10 mx.plain.test.\nmx.plain.test. IN A 192.0.2.30\n"
                            "smart.plain.test. IN A 127.0.0.1\n"},
             signed=("secure.test", "broken.test"))


@h.test
def mx_validated_by_preference():
    assert probe("MX", "secure.test") == ["mx 2 secure", "host a.secure.test", "host b.secure.test"]


@h.test
def tlsa_and_txt_validated():
    assert probe("TLSA", "_25._tcp.a.secure.test") == ["status ok secure", "record 3 1 1 " + TLSA_HASH]
    assert probe("TXT", "secure.test") == ["status ok secure", "record v=spf1 -all"]
    assert probe("A", "a.secure.test") == ["status ok secure", "record 192.0.2.10"]


@h.test
def absence_is_proven():
    assert probe("MX", "nowhere.secure.test") == ["mx 0 secure"]  # NXDOMAIN: permanent, not temp
    assert probe("TLSA", "_25._tcp.b.secure.test")[0] == "status nxdomain secure"
    assert probe("MX", "onlya.secure.test") == ["mx 1 secure", "host onlya.secure.test"]  # no MX: the domain
    assert probe("TLSA", "onlya.secure.test")[0] == "status nodata secure"


@h.test
def unsigned_zone_is_insecure():
    assert probe("MX", "plain.test") == ["mx 1", "host mx.plain.test"]
    assert probe("A", "mx.plain.test") == ["status ok", "record 192.0.2.30"]


@h.test
def tampered_record_is_bogus():
    out = probe("TXT", "broken.test")
    assert out[0].startswith("status bogus DNSSEC validation failed"), out
    assert len(out) == 1, out  # no record is handed out
    assert probe("MX", "broken.test") == ["mx 1 secure", "host mx.broken.test"]  # its other records are fine


@h.test
def wrong_trust_anchor_is_bogus():
    wrong = os.path.join(NS.dir, "wrong.ds")
    with open(wrong, "w") as f:
        f.write("secure.test. 3600 IN DS 4711 13 2 %s\n" % ("ab" * 32))
    out = probe("MX", "secure.test", anchor=wrong)
    assert out == ["mx 0 temp"], out
    assert probe("TXT", "secure.test", anchor=wrong)[0].startswith("status bogus"), out


@h.test
def resolver_setting():
    global S
    S = h.System()
    bad = S.cli("server", "set", "dns.resolver", "ns.example.com")
    assert bad.returncode != 0 and "IP address" in bad.stderr, bad.stdout + bad.stderr
    bad = S.cli("server", "set", "dns.trust_anchor", "relative.ds")
    assert bad.returncode != 0 and "absolute" in bad.stderr, bad.stdout + bad.stderr
    NS.resolve_for(S)  # both services that ask DNS follow the settings without a restart
    shown = S.cli("server", "show", check=True).stdout
    assert "127.0.0.1@%d" % NS.port in shown and NS.anchor in shown, shown


def silent_resolver():
    """A UDP socket on loopback that takes questions and never answers; its port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    SILENT.append(sock)
    return sock.getsockname()[1]


SILENT = []


@h.test
def query_timeout():
    port = silent_resolver()
    t = time.monotonic()
    out = probe("MX", "plain.test", server="127.0.0.1@%d" % port, timeout_ms=1500)
    assert out == ["mx 0 temp"], out
    out = probe("A", "mx.plain.test", server="127.0.0.1@%d" % port, timeout_ms=1500)
    assert out == ["status temp no answer from 127.0.0.1@%d within 1500 ms" % port], out
    assert time.monotonic() - t < 10, time.monotonic() - t


@h.test
def smart_host_by_name_and_a_resolver_that_never_answers():
    from smtp_sink import Sink
    sink = Sink()
    sink.start()
    S.cli("user", "add", "sam", "--given", "Sam", "--surname", "Sender", "--password", "secret-pw", check=True)
    assert h.wait_for(lambda: h.imap_login_ok(S.ports["imap"], "sam", "secret-pw"), timeout=15)

    def send(to, message_id):
        c = smtplib.SMTP("127.0.0.1", S.ports["submission"], timeout=30)
        c.login("sam", "secret-pw")
        c.sendmail("sam.sender@example.com", [to], "From: sam.sender@example.com\r\nTo: %s\r\nMessage-ID: %s\r\n"
                   "Subject: dns\r\n\r\nhello\r\n" % (to, message_id))
        c.quit()

    # smart.plain.test is only in the test's zone: the system's resolver does not know it, ours does
    S.connector("named", "byname.test", sink.port, host="smart.plain.test")
    send("x@byname.test", "<by-name@test>")
    assert h.wait_for(lambda: sink.find("<by-name@test>"), timeout=15), S.log("mta")[-1500:]
    # a resolver that never answers: the message is deferred within dns.timeout, saying why (another smart host:
    # the first one's connection is kept open for the next message)
    S.connector("silent", "silent.test", sink.port, host="smart2.plain.test")
    port = silent_resolver()
    S.set_live("dns.timeout", 1, services=("mta",))
    S.set_live("dns.resolver", "127.0.0.1@%d" % port, services=("mta",))
    t = time.monotonic()
    send("y@silent.test", "<silent@test>")
    why = "cannot resolve smart2.plain.test: no answer from 127.0.0.1@%d within 1000 ms" % port
    assert h.wait_for(lambda: why in S.cli("track", "y@silent.test").stdout, timeout=20), \
        S.cli("track", "y@silent.test").stdout + S.log("mta")[-1500:]
    assert time.monotonic() - t < 15
    assert "deferred" in S.cli("track", "y@silent.test").stdout
    # and a domain routed by MX: deferred with the same reason
    send("z@plain.test", "<silent-mx@test>")
    assert h.wait_for(lambda: "Cannot resolve the domain plain.test now: no answer from 127.0.0.1@%d" % port
                      in S.cli("track", "z@plain.test").stdout, timeout=20), S.cli("track", "z@plain.test").stdout
    NS.resolve_for(S)


if __name__ == "__main__":
    try:
        h.main("dns")
    finally:
        if NS is not None:
            NS.stop()
