#!/usr/bin/env python3
# bench_addressbook.py - `make bench` for the address book: a 10,000-entry address book browsed as an address-book
# client does it, sorted by display name (server-side sort) and paged (100 entries a page), as an ordinary user over
# the LDAP port, with OpenLDAP's ldapsearch; the time of the first page (what a user waits for when opening the
# address book) and entries per second for the whole browse; the same browse against a plain slapd (stock Debian
# schema, mdb, the sssvlv overlay, the same entries and indexes, the client naming caseIgnoreOrderingMatch since
# stock displayName has no ordering rule; the same limits, so that a user may page through it all) started beside it
# on the same machine. Environment: BENCH_ENTRIES (10000),
# BENCH_PAGE (100), BENCH_RUNS (7, the median is shown; the two servers' browses alternate). Nothing is asserted.
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "e2e"))
import harness as h  # noqa: E402
from ldap_source import Source  # noqa: E402

ENTRIES = int(os.environ.get("BENCH_ENTRIES", "10000"))
PAGE = int(os.environ.get("BENCH_PAGE", "100"))
RUNS = int(os.environ.get("BENCH_RUNS", "7"))
SUFFIX = "dc=example,dc=com"
PASSWORD = "bench-pw"
ATTRS = ["displayName", "mail", "title", "telephoneNumber", "physicalDeliveryOfficeName"]
GIVEN = ["Anna", "Bert", "Chloe", "David", "Emma", "Felix", "Greta", "Hugo", "Ines", "Jonas", "Karin", "Lukas"]
FAMILY = ["Meyer", "Schmidt", "Novak", "Rossi", "Dubois", "Jensen", "Silva", "Kowalski", "Murphy", "Larsen"]


def person(i):
    """The address-book attributes of person i, the same in both directories."""
    given, family = GIVEN[i % len(GIVEN)], "%s%d" % (FAMILY[(i * 7) % len(FAMILY)], i)
    return [("cn", "%s %s" % (given, family)), ("sn", family), ("givenName", given),
            ("displayName", "%s %s" % (given, family)), ("mail", "p%05d@example.com" % i),
            ("title", ["Engineer", "Manager", "Analyst", "Designer"][i % 4]),
            ("telephoneNumber", "+44 20 7946 %04d" % (i % 10000)),
            ("physicalDeliveryOfficeName", "Building %d" % (i % 9)), ("userPassword", PASSWORD)]


def ldif(classes, extra):
    """The people as LDIF: inetOrgPerson and classes, person(i) and extra (lines with %(i)d for the number)."""
    out = []
    for i in range(ENTRIES):
        lines = ["dn: uid=p%05d,ou=Recipients,%s" % (i, SUFFIX)] + ["objectClass: " + c for c in
                                                                    ["inetOrgPerson"] + classes]
        lines += ["uid: p%05d" % i] + ["%s: %s" % kv for kv in person(i)] + [line % {"i": i} for line in extra]
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def slapadd(conf_dir, text, work):
    path = os.path.join(work, "people.ldif")
    with open(path, "w") as f:
        f.write(text)
    t0 = time.monotonic()
    p = subprocess.run(["/usr/sbin/slapadd", "-q", "-n1", "-F", conf_dir, "-l", path], capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise RuntimeError("slapadd failed: %s" % p.stderr[-500:])
    return time.monotonic() - t0


def browse(uri, sort_key):
    """One sorted, paged browse of the whole address book as user p00000 with ldapsearch (line-buffered, so the
    moment each page's end reaches us is seen): (seconds to the end of the first page, seconds in all, entries)."""
    cmd = ["stdbuf", "-oL", "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", uri, "-D",
           "uid=p00000,ou=Recipients," + SUFFIX, "-w", PASSWORD, "-b", "ou=Recipients," + SUFFIX,
           "-E", "!sss=" + sort_key, "-E", "pr=%d/noprompt" % PAGE, "(objectClass=inetOrgPerson)"] + ATTRS
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=h.ENV)
    first, n = None, 0
    for line in p.stdout:
        if line.startswith("dn: "):
            n += 1
        elif line.startswith("# pagedresults: cookie=") and first is None:
            first = time.monotonic() - t0
    err = p.stderr.read()
    p.wait()
    total = time.monotonic() - t0
    if p.returncode == 51 and "Other sort requests already in progress" in err:
        raise Busy(uri, n)
    if p.returncode != 0 or n != ENTRIES:
        raise RuntimeError("browse of %s gave %d entries (exit %d): %s" % (uri, n, p.returncode, err[-300:]))
    return first if first is not None else total, total, n


class Busy(RuntimeError):
    """slapd answered 51 "Other sort requests already in progress" after entries (0: to the first page): a plain
    slapd now and then between two pages of a browse too, since sssvlv marks a browse's sort as running until just
    after it has sent a page (Interchange waits for that: directory/ixbrowse.c). A client tries again; so does the
    benchmark, and counts it."""

    def __init__(self, uri, entries):
        super().__init__(uri)
        self.entries = entries


def browse_again(uri, sort_key, busy):
    """browse, tried again while refused as busy; busy: [refused at the first page, refused between pages]."""
    for _ in range(20):
        try:
            return browse(uri, sort_key)
        except Busy as e:
            busy[1 if e.entries else 0] += 1
            time.sleep(0.2)
    raise RuntimeError("%s stayed busy" % uri)


def measure(targets):
    """For each (uri, sort key) of targets: the median first-page time (ms) and browse time (s) of RUNS browses, and
    how many were refused as busy. The browses of the targets alternate, so that a machine busy with something else
    slows them alike."""
    busy = [[0, 0] for _ in targets]
    runs = [[] for _ in targets]
    for t, (uri, key) in enumerate(targets):
        browse_again(uri, key, busy[t])  # warm: the entries in slapd's cache, as for a user who browsed before
    for _ in range(RUNS):
        for t, (uri, key) in enumerate(targets):
            runs[t].append(browse_again(uri, key, busy[t]))
    return [(statistics.median(r[0] for r in runs[t]) * 1000, statistics.median(r[1] for r in runs[t]), busy[t])
            for t in range(len(targets))]


def plain_slapd():
    """A plain slapd (tests/e2e/ldap_source.py) with the same people, the sssvlv overlay, the same indexes, paging
    limits and one access rule."""
    base = ("dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n"
            "dn: ou=Recipients,%s\nobjectClass: organizationalUnit\nou: Recipients\n\n" % (SUFFIX, SUFFIX))
    return Source(syncprov=False, suffix=SUFFIX, modules=["sssvlv"], overlays=["sssvlv"], load=base + ldif([], []),
                  database=["olcDbMaxSize: 1073741824", "olcDbIndex: uid,cn,sn,givenName,displayName eq,sub",
                            "olcDbIndex: mail eq,sub,pres", "olcLimits: {0}users size.pr=500 size.prtotal=unlimited",
                            "olcAccess: {0}to attrs=userPassword by self =wx by anonymous auth by * none",
                            "olcAccess: {1}to * by self read by users read by * none"])


def main():
    s = h.System()
    work = tempfile.mkdtemp(prefix="ixab-", dir="/tmp")
    plain = None
    try:
        server_dn = "cn=mail.%s,ou=Servers,ou=Configuration,%s" % (s.domain, SUFFIX)
        s.stop()
        ours = ldif(["ixRecipient", "ixMailUser", "ixPersonDetails"],
                    ["department: Department %(i)d", "company: Example Ltd", "ixMailboxGuid: %(i)032x",
                     "ixHomeServer: " + server_dn, "ixProxyAddresses: SMTP:p%(i)05d@example.com",
                     "ixNickname: p%(i)05d"])
        loaded = slapadd(os.path.join(s.data, "directory", "slapd.d"), ours, work)
        s.start()
        plain = plain_slapd()
        plain_uri = plain.uri.rstrip("/")
        print("address book: %d people loaded with slapadd in %.2f s (plain slapd %.2f s), pages of %d, "
              "median of %d browses" % (ENTRIES, loaded, plain.loaded_seconds, PAGE, RUNS))
        (first, total, busy), (pfirst, ptotal, pbusy) = measure(
            [(s.ldap_uri, "displayName"), (plain_uri, "displayName:caseIgnoreOrderingMatch")])
        print("  sorted paged browse, entries per second:   %9.0f (%.2f s for all)" % (ENTRIES / total, total))
        print("  first page:                                %9.1f ms" % first)
        print("  refused as busy (tried again):             %9d at the first page, %d between pages" % tuple(busy))
        print("  plain slapd, entries per second:           %9.0f (%.2f s for all)" % (ENTRIES / ptotal, ptotal))
        print("  plain slapd, first page:                   %9.1f ms" % pfirst)
        print("  plain slapd, refused as busy:              %9d at the first page, %d between pages" % tuple(pbusy))
        print("  browse rate vs plain slapd:                %9.2f times" % (ptotal / total))
    finally:
        if plain is not None:
            plain.stop()
        subprocess.run(["rm", "-rf", work])
        s.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
