"""test_sync_scale.py - the path `make bench` measures (tests/bench/bench_sync.py), scaled down to keep it correct:
a source of 2,000 users and 100 groups of 20 members loaded with slapadd, followed from nothing after `sync add`.
That many entries are applied in bulk (directory/sync_reconcile.c: our names and addresses read once, the writes
sent in a window); checked here: every user and list arrives with its addresses, anchor and members, the progress
is written into the state while it runs, a login and an address taken by local recipients are conflicts as one by
one, the lists get addresses from the recipient policy, a `sync run` over the unchanged source changes nothing
and prints its progress, and later changes arrive one by one. No timing is asserted."""
import os
import re
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import System, main, setup, test, wait_for  # noqa: E402
from ldap_source import Source, bulk_ldif, group_member, recipients  # noqa: E402

USERS, GROUPS, MEMBERS = 2000, 100, 20
S = None
SRC = None
STATES = []


def show():
    return S.cli("sync", "show", "corp", check=True).stdout


def field(text, label):
    m = re.search(r"^  %s {2,}(.*)$" % label, text, re.M)
    return m.group(1) if m else None


@setup
def a_large_source():
    global S, SRC
    SRC = Source(load=bulk_ldif(USERS, GROUPS, MEMBERS), database=Source.BULK_DATABASE)
    S = System()
    # in the way of the source: the login u7, the address u9@example.com
    S.cli("user", "add", "u7", "--given", "Local", "--surname", "Seven", "--password", "pw-u7", check=True)
    S.cli("user", "add", "local9", "--given", "Local", "--surname", "Nine", "--password", "pw-9",
          "--alias", "u9@example.com", check=True)
    p = S.cli("sync", "add", "corp", "--uri", SRC.uri, "--bind-dn", Source.ADMIN, "--password", Source.PASSWORD,
              "--base", "ou=People," + Source.SUFFIX, "--groups-base", "ou=Groups," + Source.SUFFIX)
    assert p.returncode == 0, (p.stdout, p.stderr)
    done = threading.Event()

    def watch():  # the states `sync show` gives while the first sync runs
        while not done.is_set():
            STATES.append(field(show(), "State"))
            done.wait(0.5)
    w = threading.Thread(target=watch)
    w.start()
    try:
        assert wait_for(lambda: field(show(), "State") == "live" and field(show(), "Lists") == str(GROUPS),
                        timeout=900, interval=1), show()
    finally:
        done.set()
        w.join()


def ours(filt, *attrs):
    return recipients(S, filt, *attrs)


@test
def every_user_and_list_arrives():
    text = show()
    assert field(text, "Users").startswith("%d " % (USERS - 1)), text  # u7 is taken here
    assert field(text, "Lists") == str(GROUPS), text
    users = ours("(&(objectClass=ixMailUser)(ixSyncedFrom=*))", "uid", "mail", "ixSyncAnchor", "ixMailboxGuid")
    assert len(users) == USERS - 1, len(users)
    by_uid = {u["uid"][0]: u for u in users}
    u1234 = by_uid["u1234"]
    assert u1234["mail"] == ["u1234@example.com"], u1234
    assert len(u1234["ixsyncanchor"][0]) == 36 and len(u1234["ixmailboxguid"][0]) == 32, u1234


@test
def the_progress_is_in_the_state_while_it_runs():
    refreshing = [s for s in STATES if s and s.startswith("refreshing:")]
    assert refreshing, STATES
    assert any(re.match(r"refreshing: (users|lists|members of lists) \d+ of \d+, \d+ a second$", s) or
               re.match(r"refreshing: entries read from the source \d+$", s) for s in refreshing), refreshing


@test
def conflicts_in_bulk_as_one_by_one():
    text = show()
    assert "conflict: uid=u7,ou=People,%s: the login u7 is taken" % Source.SUFFIX in text, text
    assert "the address u9@example.com belongs to uid=local9," in text, text
    local = ours("(uid=u7)", "sn", "ixSyncedFrom")
    assert local[0]["sn"] == ["Seven"] and "ixsyncedfrom" not in local[0], local
    u9 = ours("(uid=u9)", "mail", "ixProxyAddresses")
    assert "u9@example.com" not in u9[0].get("mail", []), u9


@test
def lists_hold_their_members_and_get_addresses():
    k = 42
    lst = ours("(cn=g%d)" % k, "member", "mail")
    assert len(lst) == 1, lst
    want = sorted("uid=u%d,ou=recipients,%s" % (group_member(k, j, MEMBERS, USERS), S.suffix) for j in range(MEMBERS))
    assert sorted(m.lower() for m in lst[0]["member"]) == want, lst
    # the source gives lists no address: the recipient policy does, the change hook naming each new list
    assert wait_for(lambda: ours("(cn=g%d)" % k, "mail")[0].get("mail") == ["g%d@example.com" % k], timeout=60)
    without = ours("(&(objectClass=ixDistributionList)(!(mail=*)))", "cn")
    assert wait_for(lambda: not ours("(&(objectClass=ixDistributionList)(!(mail=*)))", "cn"), timeout=120), without
    # the group that names u7 (the local user, not synced) leaves it out
    k7 = next(k for k in range(1, GROUPS + 1) if 7 in [group_member(k, j, MEMBERS, USERS) for j in range(MEMBERS)])
    members = ours("(cn=g%d)" % k7, "member")[0]["member"]
    assert len(members) == MEMBERS - 1 and not any(m.lower().startswith("uid=u7,") for m in members), members


@test
def a_run_over_the_unchanged_source_changes_nothing():
    p = S.cli("sync", "run", "corp", timeout=600)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "users %d of %d" % (USERS, USERS) in p.stdout and "lists %d of %d" % (GROUPS, GROUPS) in p.stdout, p.stdout
    assert re.search(r": 0 added, 0 changed, 0 renamed, 0 disabled or deleted; now %d users" % (USERS - 1),
                     p.stdout), p.stdout


@test
def later_changes_arrive_one_by_one():
    SRC.modify("dn: uid=u1500,ou=People,%s\nchangetype: modify\nreplace: sn\nsn: Renamed\n" % Source.SUFFIX)
    SRC.add("dn: uid=u%d,ou=People,%s\nobjectClass: inetOrgPerson\nuid: u%d\nsn: New\ncn: New One\n"
            "mail: new.one@example.com\n" % (USERS + 1, Source.SUFFIX, USERS + 1))
    assert wait_for(lambda: ours("(uid=u1500)", "sn")[0]["sn"] == ["Renamed"], timeout=30)
    assert wait_for(lambda: ours("(uid=u%d)" % (USERS + 1), "mail") and
                    ours("(uid=u%d)" % (USERS + 1), "mail")[0]["mail"] == ["new.one@example.com"], timeout=30)
    assert wait_for(lambda: field(show(), "Users").startswith("%d " % USERS), timeout=30), show()


if __name__ == "__main__":
    try:
        main("test_sync_scale")
    finally:
        if SRC is not None:
            SRC.stop()
