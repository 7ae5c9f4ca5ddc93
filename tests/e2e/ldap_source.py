"""ldap_source.py - the organisation's existing directory for the sync tests: a slapd of its own (core, cosine and
inetorgperson schemas, more on demand, syncprov unless asked not to) in a temporary folder on a free port, loaded
and changed with Debian's ldapadd, ldapmodify, ldapmodrdn and ldapdelete, stopped and started again."""
import os
import shutil
import subprocess
import tempfile

from harness import ENV, entries, free_ports, run, wait_for


class Source:
    """The organisation's directory: a slapd of its own in a temporary folder."""
    SUFFIX = "dc=corp,dc=test"
    ADMIN = "cn=admin,dc=corp,dc=test"
    PASSWORD = "corp-secret"

    def __init__(self, schemas=(), syncprov=True):
        """schemas: more schema files to include, after core, cosine and inetorgperson (a name alone is one of
        Debian's in /etc/ldap/schema); syncprov: whether the source offers RFC 4533."""
        self.base = tempfile.mkdtemp(prefix="ixsrc-", dir="/tmp")
        self.port = free_ports(1)[0]
        self.uri = "ldap://127.0.0.1:%d/" % self.port
        self.conf = conf = os.path.join(self.base, "slapd.d")
        data = os.path.join(self.base, "data")
        os.makedirs(conf)
        os.makedirs(data)
        ldif = """dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {base}/slapd.pid

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: syncprov

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif
{includes}

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcDbDirectory: {data}
olcSuffix: {suffix}
olcRootDN: {admin}
olcRootPW: {pw}
olcDbIndex: objectClass eq
olcDbIndex: entryUUID,entryCSN eq
""".format(base=self.base, data=data, suffix=self.SUFFIX, admin=self.ADMIN, pw=self.PASSWORD, includes="\n".join(
            "include: file://" + (f if f.startswith("/") else "/etc/ldap/schema/" + f) for f in schemas))
        if syncprov:
            ldif += ("\ndn: olcOverlay={0}syncprov,olcDatabase={1}mdb,cn=config\nobjectClass: olcOverlayConfig\n"
                     "objectClass: olcSyncProvConfig\nolcOverlay: {0}syncprov\n")
        run(["slapadd", "-n0", "-F", conf], check=True, input=ldif)
        self.start()

    def start(self):
        self.proc = subprocess.Popen(["slapd", "-d", "none", "-F", self.conf, "-h", self.uri], env=ENV,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not wait_for(lambda: self.proc.poll() is not None or run(
                ["ldapwhoami", "-x", "-H", self.uri, "-D", self.ADMIN, "-w", self.PASSWORD]).returncode == 0,
                timeout=20) or self.proc.poll() is not None:
            raise AssertionError("the source's slapd did not start: %s" % self.proc.stderr.read().decode())

    def ldap(self, tool, ldif, *args):
        p = run([tool, "-x", "-H", self.uri, "-D", self.ADMIN, "-w", self.PASSWORD] + list(args), input=ldif)
        assert p.returncode == 0, (tool, ldif, p.stdout, p.stderr)

    def add(self, ldif):
        self.ldap("ldapadd", ldif)

    def modify(self, ldif):
        self.ldap("ldapmodify", ldif)

    def halt(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def stop(self):
        self.halt()
        shutil.rmtree(self.base, ignore_errors=True)


def recipients(system, filt, *attrs):
    """Entries of system's directory matching filt, read as its administrator (attribute names in lower case)."""
    return entries(system.ldapsearch(filt, *attrs, bind_dn=system.admin_dn, password=system.admin_password).stdout)


def synced_user(system, login):
    """The user login of system's directory with its lock (pwdAccountLockedTime), or None."""
    found = recipients(system, "(uid=%s)" % login, "*", "pwdAccountLockedTime")
    return found[0] if found else None
