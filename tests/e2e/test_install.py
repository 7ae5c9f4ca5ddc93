"""test_install.py - `make install`: the layout under DESTDIR with Debian's folders, and an installation under a
temporary PREFIX that runs from there: the daemons and slapd modules found in its libexec folder through the path
compiled in (nothing beside the command), the installed default data folder and its log folder (logrotate), a
missing daemon named in words; and
`init --standard-ports` and `init --join --standard-ports`; the manual pages made from the --help texts."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD, ENV, PORT_NAMES, ROOT, System, entries, free_ports, main, run, setup, skip,  # noqa: E402
                     test)

TMP = None
DAEMONS = ["ix-mta", "ix-smtpd", "ix-imapd", "ix-pop3d", "ix-managesieved", "ix-httpd"]
MODULES = ["ixordering.so", "ixgate.so", "ixbrowse.so", "libixplain.so", "libixscram.so"]


def make_install(*variables):
    """make install from a copy of this build (only what the compiled-in folders change is built again)."""
    build = os.path.join(TMP, "build")
    if not os.path.isdir(build):
        shutil.copytree(os.path.join(ROOT, BUILD), build, symlinks=True)
    p = subprocess.run(["make", "-C", ROOT, "--no-print-directory", "install", "BUILD=" + build] + list(variables),
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]


@setup
def folder():
    global TMP
    TMP = tempfile.mkdtemp(prefix="ixinst-", dir="/tmp")
    os.chmod(TMP, 0o755)


@test
def destdir_layout():
    dest = os.path.join(TMP, "dest")
    make_install("DESTDIR=" + dest, "PREFIX=/usr", "sysconfdir=/etc", "localstatedir=/var", "libexecdir=/usr/lib",
                 "systemdunitdir=/lib/systemd/system", "mandir=/usr/share/man")
    want = {"usr/sbin/interchange": 0o755}
    want.update({"usr/lib/interchange/" + d: 0o755 for d in DAEMONS})
    want.update({"usr/lib/interchange/" + m: 0o644 for m in MODULES})
    want.update({"usr/share/interchange/interchange.ldif": 0o644, "usr/share/interchange/OIDS.md": 0o644,
                 "lib/systemd/system/interchange.service": 0o644, "usr/share/man/man8/interchange.8": 0o644,
                 "etc/logrotate.d/interchange": 0o644})
    want.update({"usr/share/man/man8/%s.8" % d: 0o644 for d in DAEMONS})
    for rel, mode in want.items():
        st = os.stat(os.path.join(dest, rel))
        assert st.st_mode & 0o777 == mode, (rel, oct(st.st_mode))
    # the folders are compiled in, DESTDIR is not
    exe = open(os.path.join(dest, "usr/sbin/interchange"), "rb").read()
    assert b"/usr/lib/interchange\0" in exe and b"/var/lib/interchange\0" in exe and dest.encode() not in exe
    unit = open(os.path.join(dest, "lib/systemd/system/interchange.service")).read()
    assert "ExecStart=/usr/sbin/interchange --data /var/lib/interchange start --foreground" in unit, unit
    assert "ReadWritePaths=/var/lib/interchange" in unit
    assert "\n/var/log/interchange/*.log {\n" in open(os.path.join(dest, "etc/logrotate.d/interchange")).read()


@test
def manual_pages_from_the_help_texts():
    """interchange(8) has every command with its --help text, each daemon's page its --help text; man renders
    them without a warning."""
    man8 = os.path.join(TMP, "dest", "usr", "share", "man", "man8")
    ix = os.path.join(ROOT, BUILD, "interchange")
    page = open(os.path.join(man8, "interchange.8")).read()
    names = [line.split()[0] for line in run([ix, "--help"]).stdout.split("commands:\n")[1].splitlines() if line]
    assert len(names) > 20, names
    for name in names:
        assert ".SS %s\n" % name in page, name
        first = run([ix, "--data", "/nonexistent", name, "--help"]).stdout.splitlines()[0]
        assert first.replace("-", "\\-") in page, (name, first)
    for d in DAEMONS:
        text = open(os.path.join(man8, d + ".8")).read()
        about = run([os.path.join(ROOT, BUILD, d), "--help"]).stdout.splitlines()[2]
        assert about.replace("-", "\\-") in text, (d, about)
    if shutil.which("man") is not None:
        for f in os.listdir(man8):
            r = subprocess.run(["man", "--warnings", "-l", os.path.join(man8, f)], capture_output=True, text=True,
                               env=dict(ENV, MANWIDTH="100"))
            assert r.returncode == 0 and r.stderr == "" and "NAME" in r.stdout, (f, r.stderr)


@test
def installed_prefix_runs():
    prefix = os.path.join(TMP, "prefix")
    make_install("PREFIX=" + prefix)
    ix = os.path.join(prefix, "sbin", "interchange")
    libexec = os.path.join(prefix, "libexec", "interchange")
    assert sorted(os.listdir(os.path.dirname(ix))) == ["interchange"]  # nothing beside the command
    # the installed default data folder
    r = subprocess.run([ix, "status"], capture_output=True, text=True, env=ENV)
    assert os.path.join(prefix, "var", "lib", "interchange") in r.stderr, r.stderr
    data = os.path.join(TMP, "var")
    ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES))))
    args = [ix, "--data", data, "init", "--domain", "example.com", "--admin-password", "pw", "--hostname",
            "mail.example.com"]
    for name, port in ports.items():
        args += ["--%s-port" % name, str(port)]
    run(args, check=True)
    try:
        run([ix, "--data", data, "start"], check=True)
        st = json.loads(run([ix, "--data", data, "status", "--json"], check=True).stdout)
        states = {s["name"]: s["state"] for s in st["services"]}
        assert states == {n: "running" for n in ["attendant", "slapd", "mta", "smtpd", "imapd", "pop3d", "managesieved",
                                                 "httpd"]}, states
        for s in st["services"]:
            if s["name"] in ("mta", "smtpd", "imapd", "pop3d", "managesieved", "httpd"):
                assert os.readlink("/proc/%d/exe" % s["pid"]) == os.path.join(libexec, "ix-" + s["name"])
        run([ix, "--data", data, "stop"], check=True)
        # a daemon missing from the installation is an error in words, not a service silently left out
        os.rename(os.path.join(libexec, "ix-pop3d"), os.path.join(TMP, "ix-pop3d"))
        r = run([ix, "--data", data, "start"])
        assert r.returncode != 0 and "ix-pop3d is missing" in r.stderr and libexec in r.stderr, r.stderr
        os.rename(os.path.join(TMP, "ix-pop3d"), os.path.join(libexec, "ix-pop3d"))
    finally:
        run([ix, "--data", data, "stop"])


@test
def installed_data_folder_logs_in_the_log_folder():
    """The installation's default data folder (not under systemd) logs to localstatedir/log/interchange, where
    `interchange logs` reads; the installed logrotate file copies and truncates, and every program goes on writing at
    the start of the emptied file."""
    if shutil.which("logrotate") is None:
        skip("logrotate is not installed (make deps)")
    prefix = os.path.join(TMP, "prefix")  # installed by installed_prefix_runs
    ix = os.path.join(prefix, "sbin", "interchange")
    data = os.path.join(prefix, "var", "lib", "interchange")
    logdir = os.path.join(prefix, "var", "log", "interchange")
    args = [ix, "init", "--domain", "example.com", "--admin-password", "pw", "--hostname", "mail.example.com"]
    for name, port in zip(PORT_NAMES, free_ports(len(PORT_NAMES))):
        args += ["--%s-port" % name, str(port)]
    run(args, check=True)  # no --data: the installed default
    try:
        run([ix, "start"], check=True)
        names = ["attendant", "slapd", "mta", "smtpd", "imapd", "pop3d", "managesieved", "httpd"]
        assert sorted(f for f in os.listdir(logdir) if f.endswith(".log")) == sorted(n + ".log" for n in names), \
            os.listdir(logdir)
        assert not [f for f in os.listdir(os.path.join(data, "log")) if f[:-4] in names], \
            os.listdir(os.path.join(data, "log"))
        attendant_log = os.path.join(logdir, "attendant.log")
        assert "smtpd started" in open(attendant_log).read()
        assert "smtpd started" in run([ix, "logs"], check=True).stdout
        assert run([ix, "logs", "smtpd"], check=True).stdout == open(os.path.join(logdir, "smtpd.log")).read()
        conf = os.path.join(prefix, "etc", "logrotate.d", "interchange")
        assert open(conf).read().count(logdir + "/*.log {") == 1
        size = os.path.getsize(attendant_log)
        r = run(["logrotate", "-f", "-s", os.path.join(TMP, "logrotate.state"), conf])
        assert r.returncode == 0, r.stderr
        rotated = [f for f in os.listdir(logdir) if f.startswith("attendant.log-")]
        assert len(rotated) == 1 and os.path.getsize(os.path.join(logdir, rotated[0])) >= size, os.listdir(logdir)
        assert os.path.getsize(attendant_log) < size
        run([ix, "stop"], check=True)
        text = open(attendant_log).read()
        assert "\0" not in text and "stopped" in text, text
        assert "stopped" in run([ix, "logs"], check=True).stdout
    finally:
        run([ix, "stop"])


@test
def standard_ports():
    data = os.path.join(TMP, "std")
    r = run([os.path.join(ROOT, BUILD, "interchange"), "--data", data, "init", "--domain", "example.com",
             "--admin-password", "pw", "--standard-ports", "--imaps-port", "10993"], check=True)
    st = json.loads(run([os.path.join(ROOT, BUILD, "interchange"), "--data", data, "status", "--json"]).stdout)
    assert st["ports"] == {"ldap": 389, "ldaps": 636, "smtp": 25, "submission": 587, "submissions": 465, "imap": 143,
                           "imaps": 10993, "pop3": 110, "pop3s": 995, "sieve": 4190, "metrics": 9100, "http": 80, "https": 443}, \
        st["ports"] + r.stdout


@test
def join_with_standard_ports():
    """A second server joining with --standard-ports takes them too (those given on their own excepted), in its
    bootstrap configuration and its entry in the directory."""
    ix = os.path.join(ROOT, BUILD, "interchange")
    standard = json.loads(run([ix, "--data", os.path.join(TMP, "std"), "status", "--json"]).stdout)["ports"]
    first = System()
    data = os.path.join(TMP, "joined")
    ldap, ldaps = free_ports(2)  # the join runs the new server's slapd: on ports free here
    run([ix, "--data", data, "init", "--join", first.ldap_uri, "--admin-password", first.admin_password,
         "--hostname", "second.example.com", "--standard-ports", "--ldap-port", str(ldap), "--ldaps-port",
         str(ldaps), "--timeout", "60"], check=True, timeout=90)
    ports = json.loads(run([ix, "--data", data, "status", "--json"]).stdout)["ports"]
    assert ports == dict(standard, ldap=ldap, ldaps=ldaps, imaps=993), ports
    r = first.ldapsearch("(cn=second.example.com)", "ixSmtpPort", "ixSubmissionPort", "ixImapsPort", "ixPop3Port",
                         "ixLdapPort", bind_dn=first.admin_dn, password=first.admin_password)
    e = entries(r.stdout)[0]
    assert (e["ixsmtpport"], e["ixsubmissionport"], e["iximapsport"], e["ixpop3port"], e["ixldapport"]) == \
        (["25"], ["587"], ["993"], ["110"], [str(ldap)]), r.stdout


@setup
def remove_folder():
    shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main("test_install")
