#!/usr/bin/env python3
# test_replica.py - end-to-end tests of the directory library's live replica against a real slapd: changes made
# with ldapmodify/ldapadd/ldapdelete seen within 100 ms, refint side effects, binds, and a slapd restart.
# Starts its own slapd in a temporary folder on a free port (the cn=config of `interchange init`'s prototype),
# drives build/directory/dir_probe, prints "PASS name" / "FAIL name: why" lines, and cleans up.
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("IX_BUILD", "build")
PROBE = os.path.join(BUILD, "directory", "dir_probe")
SUFFIX = "dc=example,dc=com"
ADMIN = "cn=admin," + SUFFIX
ADMIN_PW = "secret"
RCP = "ou=Recipients," + SUFFIX
LATENCY_GOAL_MS = 100.0

failures = 0


def report(name, ok, why=""):
    global failures
    if ok:
        print("PASS replica.%s" % name, flush=True)
    else:
        failures += 1
        print("FAIL replica.%s: %s" % (name, why), flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


CONFIG = """dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {run}/slapd.pid
olcArgsFile: {run}/slapd.args
olcAuthzRegexp: {{0}}"gidNumber=[0-9]+\\+uidNumber={uid},cn=peercred,cn=external,cn=auth" "{admin}"
olcSizeLimit: 500

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: dynlist
olcModuleLoad: refint
olcModuleLoad: unique
olcModuleLoad: sssvlv
olcModuleLoad: syncprov

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif
include: file:///etc/ldap/schema/dyngroup.ldif
include: file://{schema}

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend
olcPasswordHash: {{SSHA}}

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by dn.exact="gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth" manage by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {suffix}
olcRootDN: {admin}
olcRootPW: {adminpw}
olcDbDirectory: {data}
olcDbMaxSize: 1073741824
olcDbIndex: objectClass eq
olcDbIndex: entryUUID,entryCSN eq
olcDbIndex: uid,cn,sn,givenName,displayName,ixProxyAddresses,ixNickname eq,sub
olcDbIndex: member,ixMailboxGuid,ixHomeServer eq
olcDbIndex: mail eq,sub,pres
olcLimits: {{0}}dn.exact="{admin}" size=unlimited time=unlimited
olcAccess: {{0}}to attrs=userPassword by self =w by anonymous auth by * none
olcAccess: {{1}}to dn.subtree="{suffix}" filter=(ixHideFromAddressBook=TRUE) by self read by * none
olcAccess: {{2}}to dn.subtree="ou=Configuration,{suffix}" by * none
olcAccess: {{3}}to * by users read by * none

dn: olcOverlay={{0}}syncprov,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcSyncProvConfig
olcOverlay: {{0}}syncprov
olcSpCheckpoint: 100 10
olcSpSessionlog: 10000

dn: olcOverlay={{1}}unique,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcUniqueConfig
olcOverlay: {{1}}unique
olcUniqueURI: ldap:///{suffix}?ixProxyAddresses?sub
olcUniqueURI: ldap:///{suffix}?mail?sub
olcUniqueURI: ldap:///{suffix}?uid?sub
olcUniqueURI: ldap:///{suffix}?ixMailboxGuid?sub

dn: olcOverlay={{2}}refint,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcRefintConfig
olcOverlay: {{2}}refint
olcRefintAttribute: member
olcRefintAttribute: ixForwardTo
olcRefintAttribute: ixAcceptFrom
olcRefintAttribute: ixRejectFrom
olcRefintAttribute: ixSendAs
olcRefintAttribute: ixSendOnBehalf

dn: olcOverlay={{3}}dynlist,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcDynListConfig
olcOverlay: {{3}}dynlist
olcDynListAttrSet: ixDistributionList ixMemberURL member+memberOf@ixDistributionList

dn: olcOverlay={{4}}sssvlv,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcSssVlvConfig
olcOverlay: {{4}}sssvlv
"""

BASE = """dn: {suffix}
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: {rcp}
objectClass: organizationalUnit
ou: Recipients

dn: ou=Configuration,{suffix}
objectClass: organizationalUnit
ou: Configuration

dn: ou=Servers,ou=Configuration,{suffix}
objectClass: organizationalUnit
ou: Servers

dn: ou=Accepted Domains,ou=Configuration,{suffix}
objectClass: organizationalUnit
ou: Accepted Domains

dn: cn=mail1,ou=Servers,ou=Configuration,{suffix}
objectClass: ixServer
cn: mail1
ixHostName: mail1.example.com
ixSmtpPort: 2525
ixImapPort: 1143

dn: cn=example.com,ou=Accepted Domains,ou=Configuration,{suffix}
objectClass: ixAcceptedDomain
cn: example.com
ixDomainType: authoritative
"""


def user_ldif(uid, given, sn, guid_n, primary=None, hidden=False, extra=()):
    lines = ["dn: uid=%s,%s" % (uid, RCP), "objectClass: inetOrgPerson", "objectClass: ixRecipient",
             "objectClass: ixMailUser", "uid: %s" % uid, "cn: %s %s" % (given, sn), "sn: %s" % sn,
             "givenName: %s" % given, "ixMailboxGuid: %032x" % guid_n,
             "ixHomeServer: cn=mail1,ou=Servers,ou=Configuration,%s" % SUFFIX]
    if primary:
        lines += ["ixProxyAddresses: SMTP:%s" % primary, "mail: %s" % primary]
    if hidden:
        lines.append("ixHideFromAddressBook: TRUE")
    lines += list(extra)
    return "\n".join(lines) + "\n\n"


class Slapd:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ixr-", dir="/tmp")
        self.run = os.path.join(self.dir, "run")
        self.data = os.path.join(self.dir, "data")
        self.conf = os.path.join(self.dir, "slapd.d")
        for d in (self.run, self.data, self.conf):
            os.makedirs(d)
        os.chmod(self.run, 0o750)
        self.port = free_port()
        self.ldapi = "ldapi://" + urllib.parse.quote(os.path.join(self.run, "ldapi"), safe="")
        self.proc = None
        cfg = CONFIG.format(run=self.run, data=self.data, uid=os.getuid(), admin=ADMIN, adminpw=ADMIN_PW,
                            suffix=SUFFIX, schema=os.path.join(ROOT, "schema", "interchange.ldif"))
        path = os.path.join(self.dir, "config.ldif")
        with open(path, "w") as f:
            f.write(cfg)
        subprocess.run(["slapadd", "-n0", "-F", self.conf, "-l", path], check=True, capture_output=True)

    def start(self, ldapi=True):
        urls = "ldap://127.0.0.1:%d/" % self.port
        if ldapi:
            urls += " " + self.ldapi
        self.proc = subprocess.Popen(["slapd", "-d", "none", "-F", self.conf, "-h", urls],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while time.time() < deadline:
            r = subprocess.run(["ldapwhoami", "-x", "-H", "ldap://127.0.0.1:%d/" % self.port],
                               capture_output=True)
            if r.returncode == 0:
                return
            if self.proc.poll() is not None:
                raise RuntimeError("slapd exited: %s" % self.proc.stderr.read().decode())
            time.sleep(0.02)
        raise RuntimeError("slapd did not answer within 10 s")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def ldap(self, tool, ldif=None, args=()):
        cmd = [tool, "-x", "-D", ADMIN, "-w", ADMIN_PW, "-H", "ldap://127.0.0.1:%d/" % self.port] + list(args)
        r = subprocess.run(cmd, input=ldif, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("%s failed: %s" % (tool, r.stderr.strip()))
        return r.stdout

    def slapadd(self, ldif):
        path = os.path.join(self.dir, "offline.ldif")
        with open(path, "w") as f:
            f.write(ldif)
        subprocess.run(["slapadd", "-n1", "-F", self.conf, "-l", path], check=True, capture_output=True)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Probe:
    def __init__(self, uri):
        self.proc = subprocess.Popen([PROBE, uri, SUFFIX], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)

    def ask(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if answer == "":
            raise RuntimeError("dir_probe exited (status %s)" % self.proc.poll())
        return answer.strip()

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(10)
        except Exception:
            self.proc.kill()
            self.proc.wait()


def visible_ms(probe, t0, cmd):
    """Asks the probe to wait for a state; returns milliseconds from t0 (wall clock) to when it held."""
    answer = probe.ask(cmd)
    if not answer.startswith("ok "):
        return None
    return (int(answer.split()[1]) / 1e6 - t0) * 1000.0


def main():
    if shutil.which("slapd") is None:
        report("setup", False, "slapd is not installed (make deps)")
        return
    if not os.path.exists(PROBE):
        report("setup", False, "%s is missing (make BUILD=%s)" % (PROBE, BUILD))
        return
    os.environ["LDAPNOINIT"] = "1"
    slapd = Slapd()
    probe = None
    try:
        slapd.start()
        slapd.ldap("ldapadd", BASE.format(suffix=SUFFIX, rcp=RCP))
        users = user_ldif("alice", "Alice", "Smith", 1, "alice.smith@example.com",
                          extra=["ixProxyAddresses: smtp:al@example.com"])
        users += user_ldif("bob", "Bob", "Hidden", 2, "bob@example.com", hidden=True)
        users += user_ldif("carol", "Carol", "Jones", 3, "carol@example.com")
        users += user_ldif("dave", "Dave", "Brown", 4, "dave@example.com")
        users += user_ldif("erin", "Erin", "Gray", 5, "erin@example.com")
        users += ("dn: cn=Sales,%s\nobjectClass: ixDistributionList\nobjectClass: ixRecipient\ncn: Sales\n"
                  "ixProxyAddresses: SMTP:sales@example.com\nmail: sales@example.com\n"
                  "member: uid=alice,%s\nmember: uid=bob,%s\nmember: cn=Team,%s\n\n") % (RCP, RCP, RCP, RCP)
        users += ("dn: cn=Team,%s\nobjectClass: ixDistributionList\nobjectClass: ixRecipient\ncn: Team\n"
                  "mail: team@example.com\nmember: uid=carol,%s\nmember: uid=dave,%s\nmember: uid=erin,%s\n"
                  "member: cn=Sales,%s\n\n") % (RCP, RCP, RCP, RCP, RCP)
        slapd.ldap("ldapadd", users)
        slapd.ldap("ldappasswd", args=["-s", "alice-pw", "uid=alice," + RCP])

        probe = Probe(slapd.ldapi)
        ans = probe.ask("ready 10000")
        report("initial_refresh", ans == "ready ok", ans)
        ans = probe.ask("resolve AL@Example.com")
        report("resolve_secondary", "dn=uid=alice," in ans and "primary=alice.smith@example.com" in ans
               and "host=mail1.example.com" in ans, ans)
        ans = probe.ask("resolve bob+tag@example.com")
        report("resolve_hidden_subaddress", "hidden=1" in ans, ans)
        ans = probe.ask("expand sales@example.com")
        report("expand_nested_loop", ans.startswith("expanded count=5 lists=2 loops=1"), ans)
        ans = probe.ask("servers")
        report("servers", ans == "servers 1 mail1:mail1.example.com:smtp=2525:imap=1143", ans)
        ans = probe.ask("domain Example.COM")
        report("accepted_domain", ans == "domain yes authoritative", ans)

        # Changes made with ldapmodify: visible within 100 ms.
        lat, after = [], []
        for i in range(10):
            t0 = time.time()
            slapd.ldap("ldapmodify", "dn: uid=carol,%s\nchangetype: modify\nadd: ixProxyAddresses\n"
                       "ixProxyAddresses: smtp:carol%d@example.com\n" % (RCP, i))
            t1 = time.time()
            ms = visible_ms(probe, t0, "wait carol%d@example.com present 2000" % i)
            lat.append(ms if ms is not None else 1e9)
            after.append(lat[-1] - (t1 - t0) * 1000.0)
        med = statistics.median(lat)
        print("replica change latency (ldapmodify started -> visible, 10 changes): median %.1f ms, max %.1f ms; "
              "after ldapmodify exited: median %.1f ms" % (med, max(lat), statistics.median(after)))
        report("modify_visible_100ms", med < LATENCY_GOAL_MS and max(lat) < 1000,
               "median %.1f ms, max %.1f ms" % (med, max(lat)))

        t0 = time.time()
        slapd.ldap("ldapadd", user_ldif("frank", "Frank", "Green", 6, "frank@example.com"))
        ms = visible_ms(probe, t0, "wait frank@example.com present 2000")
        report("add_visible", ms is not None and ms < 1000, "ms=%s" % ms)

        t0 = time.time()
        slapd.ldap("ldapdelete", args=["uid=frank," + RCP])
        ms = visible_ms(probe, t0, "wait frank@example.com absent 2000")
        report("delete_visible", ms is not None and ms < 1000, "ms=%s" % ms)

        # A deleted user leaves every list at once (refint's change never reaches a sync consumer).
        t0 = time.time()
        slapd.ldap("ldapdelete", args=["uid=dave," + RCP])
        ms = visible_ms(probe, t0, "wait-member sales@example.com uid=dave,%s out 2000" % RCP)
        ans = probe.ask("dn cn=Team," + RCP)
        report("deleted_user_leaves_lists", ms is not None and "members=3" in ans, "ms=%s %s" % (ms, ans))
        out = slapd.ldap("ldapsearch", args=["-LLL", "-b", "cn=Team," + RCP, "-s", "base", "member"])
        report("slapd_refint_agrees", "uid=dave" not in out and "uid=carol" in out, out)

        # Password checks by bind.
        ans = probe.ask("auth alice alice-pw")
        report("auth_ok", ans.startswith("auth ok"), ans)
        ans = probe.ask("auth alice.smith@EXAMPLE.com alice-pw")
        report("auth_by_address", ans.startswith("auth ok"), ans)
        ans = probe.ask("auth alice wrong")
        report("auth_wrong_password", ans.startswith("auth eauth"), ans)
        ans = probe.ask("auth alice")
        report("auth_empty_password", ans.startswith("auth eauth"), ans)
        ans = probe.ask("auth sales@example.com x")
        report("auth_not_a_user", ans.startswith("auth eauth"), ans)

        # Restart: stop slapd; while the replica cannot reach it, delete and add entries; start again.
        slapd.stop()
        ans = probe.ask("resolve erin@example.com")
        report("readers_while_down", ans.startswith("found"), ans)
        ans = probe.ask("auth alice alice-pw")
        report("auth_while_down", ans.startswith("auth eunavail"), ans)
        slapd.slapadd(user_ldif("gina", "Gina", "White", 7, "gina@example.com"))
        slapd.start(ldapi=False)  # reachable by TCP only: the replica stays away
        slapd.ldap("ldapdelete", args=["uid=erin," + RCP])
        slapd.ldap("ldapmodify", "dn: uid=carol,%s\nchangetype: modify\nreplace: mail\nmail: c.jones@example.com\n"
                   % RCP)
        slapd.stop()
        t0 = time.time()
        slapd.start()
        ms_gone = visible_ms(probe, t0, "wait erin@example.com absent 15000")
        ms_new = visible_ms(probe, t0, "wait gina@example.com present 15000")
        ms_mod = visible_ms(probe, t0, "wait c.jones@example.com present 15000")
        report("restart_drops_deleted", ms_gone is not None, "erin still there")
        report("restart_loads_added", ms_new is not None, "gina (slapadd while down) missing")
        report("restart_applies_modified", ms_mod is not None, "carol's new mail missing")
        ans = probe.ask("dn cn=Team," + RCP)
        report("restart_deleted_left_lists", "members=2" in ans, ans)
        ans = probe.ask("status")
        report("restart_reconnected", "connected=1" in ans and "reconnects=0" not in ans, ans)
        print("replica resumed after restart: deleted entry gone %.0f ms after slapd start" % (ms_gone or -1))

        # A change after the restart still arrives live.
        t0 = time.time()
        slapd.ldap("ldapmodify", "dn: uid=alice,%s\nchangetype: modify\nadd: ixProxyAddresses\n"
                   "ixProxyAddresses: smtp:after@example.com\n" % RCP)
        ms = visible_ms(probe, t0, "wait after@example.com present 2000")
        report("persist_after_restart", ms is not None and ms < 1000, "ms=%s" % ms)
        ans = probe.ask("auth alice alice-pw")
        report("auth_after_restart", ans.startswith("auth ok"), ans)
    except Exception as e:  # noqa: BLE001 - any failure is a test failure with its reason
        report("run", False, "%s: %s" % (type(e).__name__, e))
    finally:
        if probe is not None:
            probe.close()
            report("probe_clean_exit", probe.proc.returncode == 0, "status %s" % probe.proc.returncode)
        slapd.cleanup()


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    main()
    sys.exit(1 if failures else 0)
