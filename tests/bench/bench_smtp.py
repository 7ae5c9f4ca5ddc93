#!/usr/bin/env python3
# bench_smtp.py - `make bench` for SMTP: starts a real system in /tmp, adds 1,000 users (user0001..user1000@
# example.com) with one LDIF, drives the SMTP port with $(BUILD)/transport/bench_smtp (N parallel sessions, one
# 5 KB message and one recipient per connection, like peer-stack's smtp-source run) and prints accepted msgs/s,
# end-to-end delivered-into-store msgs/s and server CPU ms per message (ix-smtpd + ix-mta + slapd, from
# /proc/PID/stat). Environment: BENCH_N (20000), BENCH_SESSIONS (10), BENCH_SIZE (5120). Nothing is asserted.
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e"))
import harness as h  # noqa: E402

N = int(os.environ.get("BENCH_N", "20000"))
SESSIONS = int(os.environ.get("BENCH_SESSIONS", "10"))
SIZE = int(os.environ.get("BENCH_SIZE", "5120"))
USERS = 1000
GEN = os.path.join(h.ROOT, h.BUILD, "transport", "bench_smtp")
PEER = os.path.join(os.path.dirname(h.ROOT), "shared", "tools", "peer-stack", "peer-stack.sh")


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def pids(s, name):
    out = subprocess.run(["pgrep", "-f", name], capture_output=True, text=True).stdout.split()
    mine = []
    for p in out:
        try:
            cmd = open("/proc/%s/cmdline" % p, "rb").read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if s.data in cmd or (name == "slapd" and s.base in cmd):
            mine.append(int(p))
    return mine


def in_parallel(worker, n):
    """Runs worker(0) .. worker(n - 1) on n threads and waits for them all."""
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def delivered(s):
    try:
        with open(os.path.join(s.data, "log", "tracking.log")) as f:
            return sum(1 for line in f if "\tdelivered\t" in line)
    except OSError:
        return 0


def main():
    s = h.System()
    try:
        server_dn = h.entries(s.ldapsearch("(objectClass=ixServer)", "dn", bind_dn=s.admin_dn,
                                           password=s.admin_password).stdout)[0]["dn"][0]
        ldif = []
        for i in range(1, USERS + 1):
            u = "user%04d" % i
            ldif.append("dn: uid=%s,ou=Recipients,%s\nobjectClass: inetOrgPerson\nobjectClass: ixRecipient\n"
                        "objectClass: ixMailUser\nuid: %s\ncn: User %d\nsn: %d\ngivenName: User\n"
                        "ixMailboxGuid: %032x\nixHomeServer: %s\nixProxyAddresses: SMTP:%s@example.com\n"
                        "mail: %s@example.com\n" % (u, s.suffix, u, i, i, 0xb0000000 + i, server_dn, u, u))
        p = s.ldapmodify("\n".join(ldif) + "\n", add=True)
        if p.returncode != 0:
            print("bench_smtp: adding users failed: %s" % p.stderr[:300])
            return 1
        time.sleep(2)  # the replicas take the 1,000 entries
        smtpd, mta, slapd = pids(s, "ix-smtpd"), pids(s, "ix-mta"), pids(s, "slapd")
        procs = smtpd + mta + slapd
        hz = os.sysconf("SC_CLK_TCK")
        base_delivered = delivered(s)
        before = {p: cpu_ticks(p) for p in procs}
        t0 = time.monotonic()
        out = subprocess.run([GEN, str(s.ports["smtp"]), str(SESSIONS), str(USERS), str(N), str(SIZE)],
                             capture_output=True, text=True).stdout
        t1 = time.monotonic()
        stats = dict(kv.split("=") for kv in out.split())
        sent = int(stats["sent"])
        while delivered(s) - base_delivered < sent and time.monotonic() - t1 < 120:
            time.sleep(0.05)
        t2 = time.monotonic()
        got = delivered(s) - base_delivered
        after = {p: cpu_ticks(p) for p in procs}

        def ms(group):
            return sum(after[p] - before[p] for p in group) * 1000.0 / hz

        total = ms(procs)
        print("smtp: %d x %d B messages, %d parallel sessions, one recipient per connection, %d users" %
              (N, SIZE, SESSIONS, USERS))
        print("  sent %d, failed %s, delivered into the store %d (each synced before its 250)" %
              (sent, stats["failed"], got))
        print("  accepted:   %8.1f msgs/s (%.2f s)" % (sent / (t1 - t0), t1 - t0))
        print("  end-to-end: %8.1f msgs/s (%.2f s)" % (got / (t2 - t0), t2 - t0))
        if got:
            print("  server CPU: %8.3f ms/msg (ix-smtpd %.3f, ix-mta %.3f, slapd %.3f)" %
                  (total / got, ms(smtpd) / got, ms(mta) / got, ms(slapd) / got))
    finally:
        s.destroy()
    if got:
        peer(got / (t2 - t0), total / got)
    return 0


def peer(our_rate, our_cpu):
    """The peer stack (Postfix + LDAP + Dovecot LMTP) on the same workload in the same run, when its script is beside
    the checkout (BENCH_PEER=0 skips it): its figures are compared with ours, never figures copied from elsewhere."""
    if os.environ.get("BENCH_PEER", "1") == "0":
        print("  peer stack: not run (BENCH_PEER=0): no comparison")
        return
    if not os.path.exists(PEER):
        print("  peer stack: not run (%s is not here): no comparison" % PEER)
        return
    env = dict(os.environ, N=str(N), SESSIONS=str(SESSIONS), SIZE=str(SIZE))
    try:
        for step in ("install", "start"):
            p = subprocess.run([PEER, step], capture_output=True, text=True, env=env, timeout=900)
            if p.returncode != 0:
                print("  peer stack: %s failed: no comparison (%s)" % (step, (p.stderr or p.stdout).strip()[-300:]))
                return
        p = subprocess.run([PEER, "bench-smtp"], capture_output=True, text=True, env=env, timeout=1800)
    finally:
        subprocess.run([PEER, "stop"], capture_output=True, env=env, timeout=300)
    figures = {}
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("end_to_end_rate_msgs_per_s", "stack_cpu_ms_per_msg"):
            figures[parts[0]] = float(parts[1])
    rate, cpu = figures.get("end_to_end_rate_msgs_per_s"), figures.get("stack_cpu_ms_per_msg")
    if p.returncode != 0 or not rate or not cpu:
        print("  peer stack: bench-smtp gave no figures: no comparison (%s)" % (p.stderr.strip()[-300:]))
        return
    print("  peer stack, same run: %8.1f msgs/s end to end, %.3f ms server CPU per message" % (rate, cpu))
    print("  end-to-end vs peer:   %8.1f times" % (our_rate / rate))
    print("  CPU per message vs peer: %.3f of it" % (our_cpu / cpu))


if __name__ == "__main__":
    sys.exit(main())
