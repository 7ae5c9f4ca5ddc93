"""test_addressbook.py - the directory as address-book clients use it, driven with the real OpenLDAP clients against
a started system: Outlook-style browsing as a user (server-side sort on the attribute name alone, VLV by offset and
by value, paged results)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import System, entries, main, run, setup, test  # noqa: E402

S = None
PEOPLE = [("amy", "amy", "Zulu"), ("bob", "Bob", "Mid"), ("zed", "Zed", "Alpha"), ("carla", "Carla", "beta"),
          ("dan", "dan", "Omega")]
SORTABLE = ["cn", "displayName", "givenName", "sn", "mail", "title", "department", "company",
            "physicalDeliveryOfficeName", "telephoneNumber"]


def as_user(*args):
    """ldapsearch as amy over the loopback listener; args: options (-E ...), then filter and attributes."""
    return run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", S.ldap_uri, "-b", "ou=Recipients," + S.suffix,
                "-D", S.user_dn("amy"), "-w", "pw-amy"] + list(args))


def names(out):
    return [e["displayname"][0] for e in entries(out) if "displayname" in e]


@setup
def system_with_people():
    global S
    S = System()
    for login, given, surname in PEOPLE:
        S.cli("user", "add", login, "--given", given, "--surname", surname, "--password", "pw-" + login,
              check=True)


@test
def sort_on_every_address_book_attribute_by_name_alone():
    for attr in SORTABLE:
        r = as_user("-E", "!sss=" + attr, "(objectClass=inetOrgPerson)", "displayName")
        assert r.returncode == 0, (attr, r.stdout, r.stderr)
        assert "sortResult: (0) Success" in r.stdout, (attr, r.stdout)
        assert len(names(r.stdout)) == len(PEOPLE), (attr, r.stdout)


@test
def sort_orders_case_insensitively_both_ways():
    want = sorted((g + " " + s for _, g, s in PEOPLE), key=str.lower)
    r = as_user("-E", "!sss=displayName", "(objectClass=inetOrgPerson)", "displayName")
    assert names(r.stdout) == want, (names(r.stdout), r.stderr)
    r = as_user("-E", "!sss=-cn", "(objectClass=inetOrgPerson)", "displayName")
    assert names(r.stdout) == want[::-1], (names(r.stdout), r.stderr)
    by_sn = [g + " " + s for _, g, s in sorted(PEOPLE, key=lambda p: p[2].lower())]
    r = as_user("-E", "!sss=sn", "(objectClass=inetOrgPerson)", "displayName")
    assert names(r.stdout) == by_sn, (names(r.stdout), r.stderr)


def vlv_windows(first, *more):
    """The windows ldapsearch shows for the VLV request first, then for each of more (typed at its prompt, with the
    server's context): a list of (displayNames, vlvResult line). ldapsearch's VLV mode is interactive: at the end
    of its input it sends its last request once more and exits with an error, so its exit status says nothing."""
    r = run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", S.ldap_uri, "-b", "ou=Recipients," + S.suffix,
             "-D", S.user_dn("amy"), "-w", "pw-amy", "-E", "sss=displayName", "-E", "vlv=" + first,
             "(objectClass=inetOrgPerson)", "displayName"], input="".join(m + "\n" for m in more))
    parts = r.stdout.split("Press [before/after(/offset/count|:value)] Enter for the next window.")
    windows = []
    for part in parts[:1 + len(more)]:
        result = [line for line in part.splitlines() if line.startswith("# vlvResult")]
        windows.append((names(part), result[0] if result else r.stderr))
    return windows


@test
def vlv_by_offset_and_by_value():
    want = sorted((g + " " + s for _, g, s in PEOPLE), key=str.lower)
    n = len(PEOPLE)
    # Outlook's first screenful: nothing before the target, up to 19 after, the target at offset 1; then, with the
    # server's context, one before and one after the third entry; then by value, as a client jumps when the user
    # types "c": the first name at or after it, and the next one
    w = vlv_windows("0/19/1/0", "1/1/3/%d" % n, "0/1:c")
    assert w[0][0] == want and w[0][1].startswith("# vlvResultpos=1 count=%d " % n), w[0]
    assert w[0][1].endswith("(0) Success"), w[0]
    assert w[1][0] == want[1:4] and w[1][1].endswith("(0) Success"), w[1]
    at_c = [x for x in want if x.lower() >= "c"]
    assert w[2][0] == at_c[:2] and w[2][1].endswith("(0) Success"), w[2]


@test
def paged_results_as_a_user():
    r = as_user("-E", "pr=2/noprompt", "(objectClass=inetOrgPerson)", "displayName")
    assert r.returncode == 0, r.stderr
    assert sorted(names(r.stdout)) == sorted(g + " " + s for _, g, s in PEOPLE), r.stdout
    assert r.stdout.count("# pagedresults: cookie=") >= 3, r.stdout
    r = as_user("-E", "pr=50/noprompt", "(objectClass=inetOrgPerson)", "displayName")
    assert r.returncode == 0 and len(names(r.stdout)) == len(PEOPLE), (r.stdout, r.stderr)


@test
def sorted_and_paged_together():
    want = sorted((g + " " + s for _, g, s in PEOPLE), key=str.lower)
    r = as_user("-E", "sss=displayName", "-E", "pr=2/noprompt", "(objectClass=inetOrgPerson)", "displayName")
    assert r.returncode == 0, r.stderr
    assert names(r.stdout) == want, (names(r.stdout), r.stdout)


if __name__ == "__main__":
    main("test_addressbook")
