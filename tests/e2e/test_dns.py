#!/usr/bin/env python3
# test_dns.py - the mail path's DNS module (transport/mta/dns.c over libunbound), asked through transport/dns_probe:
# a real authoritative server (Debian's nsd on loopback) serves zones signed with ldns-signzone, one unsigned zone and
# a signed zone with a record changed after signing; the resolver validates with the trust anchor the test made (the
# zones' DS records). MX by preference, TLSA and TXT, NXDOMAIN and no-MX, secure and insecure answers, a tampered
# record and a wrong trust anchor refused as bogus; the setting dns.resolver checked by `interchange server set` and
# followed by the running services.
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from dns_server import Nsd  # noqa: E402

PROBE = os.path.join(os.path.dirname(h.INTERCHANGE), "transport", "dns_probe")
NS = None
S = None
TLSA_HASH = "8f" * 32


def probe(rtype, name, anchor=None):
    """The probe's lines for one question to NS with anchor (default: the zones' DS records)."""
    r = subprocess.run([PROBE, "127.0.0.1@%d" % NS.port, NS.anchor if anchor is None else anchor, rtype, name],
                       capture_output=True, text=True, timeout=60)
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
              "plain.test": "plain.test. IN MX 10 mx.plain.test.\nmx.plain.test. IN A 192.0.2.30\n"},
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


if __name__ == "__main__":
    try:
        h.main("dns")
    finally:
        if NS is not None:
            NS.stop()
