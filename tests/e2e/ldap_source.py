"""ldap_source.py - the organisation's existing directory for the sync tests: a slapd of its own (core, cosine and
inetorgperson schemas, more on demand, syncprov unless asked not to) in a temporary folder on a free port, loaded
and changed with Debian's ldapadd, ldapmodify, ldapmodrdn and ldapdelete, stopped and started again."""
import os
import shutil
import subprocess
import tempfile
import time

from harness import ENV, _systems, entries, free_ports, run, wait_for


class Source:
    """The organisation's directory: a slapd of its own in a temporary folder."""
    SUFFIX = "dc=corp,dc=test"
    ADMIN = "cn=admin,dc=corp,dc=test"
    PASSWORD = "corp-secret"
    # a large source (bulk_ldif): the indexes a real directory has for what sync reads, and room past LMDB's 10 MB
    BULK_DATABASE = ["olcDbIndex: uid,mail,cn eq", "olcDbMaxSize: 8589934592"]

    def __init__(self, schemas=(), syncprov=True, suffix=None, modules=(), database=(), overlays=(), load=None,
                 tls=False):
        """schemas: more schema files to include, after core, cosine and inetorgperson (a name alone is one of
        Debian's in /etc/ldap/schema); syncprov: whether the source offers RFC 4533; suffix: another than SUFFIX
        (the administrator is cn=admin under it); modules: more of slapd's modules to load; database: more lines of
        the database's entry (olcAccess, olcLimits...); overlays: more overlays on it, by name, after syncprov;
        load: LDIF loaded with slapadd before slapd starts (the seconds it took in loaded_seconds); tls: listen on
        127.0.0.2, which counts as the network, with a self-signed certificate for that address (its file in ca), so
        that StartTLS with the certificate checked is the only way in for a password."""
        if suffix is not None:
            self.SUFFIX, self.ADMIN = suffix, "cn=admin," + suffix
        self.base = tempfile.mkdtemp(prefix="ixsrc-", dir="/tmp")
        self.proc = None
        _systems.append(self)  # stopped by the harness at the end of the file, whatever happened
        self.port = free_ports(1)[0]
        self.uri = "ldap://%s:%d/" % ("127.0.0.2" if tls else "127.0.0.1", self.port)
        self.conf = conf = os.path.join(self.base, "slapd.d")
        tls_lines = ""
        if tls:
            self.ca, key = os.path.join(self.base, "cert.pem"), os.path.join(self.base, "key.pem")
            run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", key, "-out", self.ca, "-days", "2", "-subj", "/CN=127.0.0.2",
                 "-addext", "subjectAltName=IP:127.0.0.2"], check=True)
            os.chmod(self.base, 0o711)  # the certificate readable by `sync add --ca`, run as the service user
            os.chmod(self.ca, 0o644)
            tls_lines = "olcTLSCertificateFile: %s\nolcTLSCertificateKeyFile: %s\n" % (self.ca, key)
        data = os.path.join(self.base, "data")
        os.makedirs(conf)
        os.makedirs(data)
        ldif = """dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {base}/slapd.pid
{tls}
dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: syncprov
{modules}
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
{database}""".format(base=self.base, tls=tls_lines, data=data, suffix=self.SUFFIX, admin=self.ADMIN, pw=self.PASSWORD, includes="\n".join(
            "include: file://" + (f if f.startswith("/") else "/etc/ldap/schema/" + f) for f in schemas),
            modules="".join("olcModuleLoad: %s\n" % m for m in modules), database="".join(l + "\n" for l in database))
        stack = (["syncprov"] if syncprov else []) + list(overlays)
        for i, name in enumerate(stack):
            kind = {"syncprov": "olcSyncProvConfig", "sssvlv": "olcSssVlvConfig", "ppolicy": "olcPPolicyConfig"}.get(
                name, "olcOverlayConfig")
            ldif += ("\ndn: olcOverlay={%d}%s,olcDatabase={1}mdb,cn=config\nobjectClass: olcOverlayConfig\n"
                     "objectClass: %s\nolcOverlay: {%d}%s\n" % (i, name, kind, i, name))
        run(["slapadd", "-n0", "-F", conf], check=True, input=ldif)
        if load is not None:
            path = os.path.join(self.base, "load.ldif")
            with open(path, "w") as f:
                f.write(load)
            t0 = time.monotonic()
            run(["slapadd", "-q", "-n1", "-F", conf, "-l", path], check=True, timeout=600)
            self.loaded_seconds = time.monotonic() - t0
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
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def stop(self):
        self.halt()
        shutil.rmtree(self.base, ignore_errors=True)

    def destroy(self, keep=False):
        """The harness's end of a file: the source stopped and its folder removed (again is harmless)."""
        self.stop()


def bulk_ldif(users, groups, members):
    """A whole source as LDIF for slapadd (Source's load): the suffix, ou=People with users u1..uN (uid, givenName,
    sn, cn, mail uK@example.com), ou=Groups with groupOfNames g1..gG, group k holding `members` users from user
    k*members on (wrapping round)."""
    s = Source.SUFFIX
    out = ["dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: corp\no: Corp\n" % s,
           "dn: ou=People,%s\nobjectClass: organizationalUnit\nou: People\n" % s,
           "dn: ou=Groups,%s\nobjectClass: organizationalUnit\nou: Groups\n" % s]
    for i in range(1, users + 1):
        out.append("dn: uid=u%d,ou=People,%s\nobjectClass: inetOrgPerson\nuid: u%d\ngivenName: User\nsn: Number%d\n"
                   "cn: User Number%d\nmail: u%d@example.com\n" % (i, s, i, i, i, i))
    for k in range(1, groups + 1):
        lines = ["dn: cn=g%d,ou=Groups,%s" % (k, s), "objectClass: groupOfNames", "cn: g%d" % k]
        lines += ["member: uid=u%d,ou=People,%s" % (group_member(k, j, members, users), s) for j in range(members)]
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def group_member(k, j, members, users):
    """The number of the j-th user of group k in bulk_ldif."""
    return (k * members + j) % users + 1


def recipients(system, filt, *attrs):
    """Entries of system's directory matching filt, read as its administrator (attribute names in lower case)."""
    return entries(system.ldapsearch(filt, *attrs, bind_dn=system.admin_dn, password=system.admin_password).stdout)


def synced_user(system, login):
    """The user login of system's directory with its lock (pwdAccountLockedTime), or None."""
    found = recipients(system, "(uid=%s)" % login, "*", "pwdAccountLockedTime")
    return found[0] if found else None
