#!/usr/bin/env python3
"""bench_imap.py - IMAP/POP3 benchmarks against a real started system (make bench): memory per idle IMAP
connection (thousands of IDLE sessions on loopback, imapd's VmRSS before and after), IMAP throughput with the
workload of the peer stack's IMAP driver (docs/benchmarks.md, "The peer stack": login, select, fetch headers, 5
bodies, logout) with ops/s, latency and server CPU per op, a POP3 retrieve run, and SORT (REVERSE DATE, SUBJECT, FROM), THREAD REFERENCES and SEARCH
(SUBJECT in ASCII and in UTF-8, TEXT) over a 10,000-message folder (BENCH_SORT_MSGS). Figures are printed, nothing is asserted.

Environment: IX_BUILD (build folder), BENCH_IDLE (connections, default 10000), BENCH_SECS (throughput seconds,
default 10), BENCH_CLIENTS (default 8)."""
import imaplib
import json
import multiprocessing as mp
import os
import poplib
import random
import re
import resource
import selectors
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e"))
from harness import System, imap_login_ok, wait_for  # noqa: E402

USERS = 20
PASSWORD = "pass-bench1"
MSGS = 10


def msg_5k(i):
    body = "".join("line %02d of prefill message %d %s\r\n" % (j, i, "y" * 40) for j in range(75))
    return ("From: prefill@example.com\r\nTo: someone@example.com\r\nSubject: prefill %d\r\n"
            "Message-ID: <prefill-%d-%f@example.com>\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n\r\n%s"
            % (i, i, time.time(), body)).encode()


def user(u):
    return "user%04d" % u


def login_ok(s):
    return imap_login_ok(s.ports["imap"], user(USERS), PASSWORD)


def service_pid(s, name):
    st = json.loads(s.cli("status", "--json", check=True).stdout)
    for x in st["services"]:
        if x["name"] == name:
            return x["pid"]
    raise RuntimeError("no %s in status" % name)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_secs(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_bench(s, n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    n = min(n, hard - 100)
    pid = service_pid(s, "imapd")
    before = rss_kib(pid)
    sel = selectors.DefaultSelector()
    socks = []
    idling = 0
    t0 = time.monotonic()
    batch = 500
    for start in range(0, n, batch):
        pending = {}
        for i in range(start, min(n, start + batch)):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", s.ports["imap"]))
            u = user(i % USERS + 1)
            pending[c] = b""
            sel.register(c, selectors.EVENT_WRITE, (u, "connect"))
            socks.append(c)
        while pending:
            events = sel.select(timeout=30)
            if not events:
                raise RuntimeError("idle bench stalled with %d pending" % len(pending))
            for key, ev in events:
                c = key.fileobj
                u, st = key.data
                if st == "connect":
                    c.send(("a LOGIN %s %s\r\nb SELECT INBOX\r\nc IDLE\r\n" % (u, PASSWORD)).encode())
                    sel.modify(c, selectors.EVENT_READ, (u, "wait"))
                    continue
                d = c.recv(65536)
                if not d:
                    raise RuntimeError("connection closed during setup")
                pending[c] += d
                if b"+ idling" in pending[c]:
                    del pending[c]
                    sel.unregister(c)
                    idling += 1
                elif b" NO " in pending[c] or b" BAD " in pending[c]:
                    raise RuntimeError(pending[c][-200:])
    setup = time.monotonic() - t0
    time.sleep(1.0)
    after = rss_kib(pid)
    per = (after - before) * 1024.0 / max(idling, 1)
    print("imap_idle_connections %d (setup %.1f s, %.0f logins+select+idle/s)" % (idling, setup, idling / setup))
    print("imap_idle_rss_kib before=%d after=%d" % (before, after))
    print("imap_idle_bytes_per_connection %.0f (%.1f KiB; goal < 64 KiB)" % (per, per / 1024))
    # wake-up: one message to user0001, whose INBOX n/USERS of the sessions are idling on
    mine = [c for i, c in enumerate(socks) if i % USERS == 0]
    for c in mine:
        sel.register(c, selectors.EVENT_READ)
    m = imaplib.IMAP4("127.0.0.1", s.ports["imap"])
    m.login(user(1), PASSWORD)
    t0 = time.monotonic()
    m.append("INBOX", None, None, msg_5k(4242))
    t_append = time.monotonic() - t0
    woken = set()
    while len(woken) < len(mine) and time.monotonic() - t0 < 10:
        for key, ev in sel.select(timeout=1):
            if b"EXISTS" in key.fileobj.recv(65536):
                woken.add(key.fileobj)
                sel.unregister(key.fileobj)
    t_all = time.monotonic() - t0
    m.logout()
    print("imap_idle_wakeup %d of %d IDLE sessions saw the new message %.0f ms after the append began "
          "(append itself %.0f ms)" % (len(woken), len(mine), t_all * 1000, t_append * 1000))
    t0 = time.monotonic()
    for c in socks:
        c.close()
    wait_for(lambda: rss_kib(pid) < after or True, 1.0)
    print("imap_idle_teardown_s %.1f" % (time.monotonic() - t0))


def worker(port, wid, deadline, bodies, q, mixed=False):
    rnd = random.Random(wid * 7919 + os.getpid())
    ops = 0
    errors = 0
    lat = []
    while time.time() < deadline:
        try:
            t = time.perf_counter()
            m = imaplib.IMAP4("127.0.0.1", port)
            m.login(user(rnd.randint(1, USERS)), PASSWORD)
            lat.append(time.perf_counter() - t)
            t = time.perf_counter()
            typ, data = m.select("INBOX", not mixed)
            lat.append(time.perf_counter() - t)
            n = int(data[0])
            t = time.perf_counter()
            m.fetch("1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER])")
            lat.append(time.perf_counter() - t)
            ops += 3
            for _ in range(bodies):
                t = time.perf_counter()
                m.fetch(str(rnd.randint(1, n)), "(BODY.PEEK[])")
                lat.append(time.perf_counter() - t)
                ops += 1
            if mixed:
                # what clients also do: flag, search, append, expunge
                for name, fn in (("flag", lambda: m.store(str(rnd.randint(1, n)), "+FLAGS", "(\\Flagged)")),
                                 ("search", lambda: m.search(None, "UNSEEN", "SUBJECT", "prefill")),
                                 ("append", lambda: m.append("INBOX", None, None, msg_5k(rnd.randint(0, 999)))),
                                 ("delete", lambda: m.store(str(n), "+FLAGS", "(\\Deleted)")),
                                 ("expunge", lambda: m.expunge())):
                    t = time.perf_counter()
                    typ, _ = fn()
                    lat.append(time.perf_counter() - t)
                    ops += 1
            t = time.perf_counter()
            m.logout()
            lat.append(time.perf_counter() - t)
            ops += 1
        except (imaplib.IMAP4.error, OSError, EOFError, ValueError):
            errors += 1
            time.sleep(0.05)
    q.put((ops, errors, lat))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))] * 1000.0 if xs else 0.0


def throughput_bench(s, secs, clients, mixed=False):
    pid = service_pid(s, "imapd")
    slapd = service_pid(s, "slapd")
    c0, l0 = cpu_secs(pid), cpu_secs(slapd)
    q = mp.Queue()
    t0 = time.time()
    procs = [mp.Process(target=worker, args=(s.ports["imap"], i, t0 + secs, 5, q, mixed)) for i in range(clients)]
    for p in procs:
        p.start()
    res = [q.get() for _ in procs]
    for p in procs:
        p.join()
    el = time.time() - t0
    c1, l1 = cpu_secs(pid), cpu_secs(slapd)
    ops = sum(r[0] for r in res)
    errors = sum(r[1] for r in res)
    lat = [x for r in res for x in r[2]]
    w = "mixed (+flag search append delete expunge)" if mixed else "reader (login select headers 5 bodies logout)"
    k = "imap_mixed" if mixed else "imap"
    print("%s_ops %d in %.1f s with %d clients, errors %d; workload %s" % (k, ops, el, clients, errors, w))
    print("%s_ops_per_s %.1f" % (k, ops / el))
    print("%s_latency_ms p50=%.2f p99=%.2f" % (k, pct(lat, 50), pct(lat, 99)))
    print("%s_server_cpu_ms_per_op imapd=%.3f slapd=%.3f" % (k, (c1 - c0) * 1000 / max(ops, 1),
                                                             (l1 - l0) * 1000 / max(ops, 1)))


def pop3_bench(s, secs):
    pid = service_pid(s, "pop3d")
    c0 = cpu_secs(pid)
    t0 = time.time()
    n = 0
    bytes_ = 0
    while time.time() < t0 + secs:
        p = poplib.POP3("127.0.0.1", s.ports["pop3"])
        p.user(user(random.randint(1, USERS)))
        p.pass_(PASSWORD)
        count, _ = p.stat()
        for i in range(1, count + 1):
            resp, lines, octets = p.retr(i)
            bytes_ += octets
            n += 1
        p.quit()
    el = time.time() - t0
    print("pop3_retr_per_s %.1f (%.2f MB/s, one client) pop3d_cpu_ms_per_retr %.3f"
          % (n / el, bytes_ / el / 1e6, (cpu_secs(pid) - c0) * 1000 / max(n, 1)))


def sort_thread_msg(i):
    """Threads of five: the first message of each starts it, the others answer it (References, Re:); every other
    thread's subject ends in a UTF-8 word (RFC 2047), so SEARCH and SORT meet non-ASCII text too."""
    root = i - i % 5
    refs = "" if i == root else "References: <t%d@bench.example>\r\n" % root
    word = " =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=" if root // 5 % 2 else ""
    return ("From: sender%d@example.com\r\nTo: someone@example.com\r\nSubject: %stopic %d%s\r\n"
            "Message-ID: <t%d@bench.example>\r\n%sDate: %s\r\n\r\nbody %d\r\n"
            % (i % 97, "Re: " if i != root else "", root // 5, word, i, refs,
               time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(1.7e9 + (i * 7919) % 100000 * 60)), i)
            ).encode()


def sort_thread_bench(s, n):
    """Fills folder Big of user 1 (8 connections appending with LITERAL+), then times the commands a webmail
    sends to list it sorted and threaded."""
    def fill(part):
        c = socket.create_connection(("127.0.0.1", s.ports["imap"]))
        f = c.makefile("rb")
        f.readline()
        c.sendall(b"l LOGIN %s %s\r\n" % (user(1).encode(), PASSWORD.encode()))
        while not f.readline().startswith(b"l "):
            pass
        for i in range(part, n, 8):
            m = sort_thread_msg(i)
            c.sendall(b"a%d APPEND Big {%d+}\r\n" % (i, len(m)) + m + b"\r\n")
        done = 0
        while done < len(range(part, n, 8)):
            line = f.readline()
            if not line:
                raise RuntimeError("connection closed while appending")
            if line.startswith(b"a") and b" OK" in line:
                done += 1
            elif line.startswith(b"a"):
                raise RuntimeError(line)
        c.close()
    m = imaplib.IMAP4("127.0.0.1", s.ports["imap"])
    m.login(user(1), PASSWORD)
    m.create("Big")
    t0 = time.monotonic()
    procs = [mp.Process(target=fill, args=(k,)) for k in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    fill_s = time.monotonic() - t0
    typ, data = m.select("Big")
    count = int(data[0])
    pid = service_pid(s, "imapd")

    def search_utf8():
        m.literal = "GR\u00dc\u00dfE".encode()
        return m.search("UTF-8", "SUBJECT")
    for name, call in (("imap_sort_reverse_date", lambda: m.sort("(REVERSE DATE)", "UTF-8", "ALL")),
                       ("imap_thread_references", lambda: m.thread("REFERENCES", "UTF-8", "ALL")),
                       ("imap_sort_subject", lambda: m.sort("(SUBJECT)", "UTF-8", "ALL")),
                       ("imap_sort_from", lambda: m.sort("(FROM)", "UTF-8", "ALL")),
                       ("imap_search_subject_ascii", lambda: m.search(None, "SUBJECT", '"topic 1999"')),
                       ("imap_search_subject_utf8", search_utf8),
                       ("imap_search_text", lambda: m.search(None, "TEXT", '"body 9999"'))):
        times = []
        c0 = cpu_secs(pid)
        for _ in range(5):
            t0 = time.monotonic()
            typ, data = call()
            times.append((time.monotonic() - t0) * 1000)
            assert typ == "OK", data
        cpu_ms = (cpu_secs(pid) - c0) * 1000 / 5
        times.sort()
        found = len(re.findall(rb"\d+", data[0] or b""))
        print("%s_ms %.1f (median of 5, min %.1f; imapd CPU %.0f ms each) over %d messages, %d in the answer "
              "(filled in %.1f s)" % (name, times[2], times[0], cpu_ms, count, found, fill_s))
    m.logout()


def main():
    s = System()
    try:
        for u in range(1, USERS + 1):
            s.cli("user", "add", user(u), "--given", "U%d" % u, "--surname", "Bench", "--password", PASSWORD,
                  check=True)
        if not wait_for(lambda: login_ok(s), 20.0, 0.5):
            raise RuntimeError("users never became ready")
        for u in range(1, USERS + 1):
            m = imaplib.IMAP4("127.0.0.1", s.ports["imap"])
            m.login(user(u), PASSWORD)
            for i in range(MSGS):
                m.append("INBOX", None, None, msg_5k(i))
            m.logout()
        secs = float(os.environ.get("BENCH_SECS", "10"))
        clients = int(os.environ.get("BENCH_CLIENTS", "8"))
        throughput_bench(s, secs, clients)
        throughput_bench(s, secs, clients, mixed=True)
        pop3_bench(s, 3.0)
        sort_thread_bench(s, int(os.environ.get("BENCH_SORT_MSGS", "10000")))
        idle_bench(s, int(os.environ.get("BENCH_IDLE", "10000")))
    finally:
        s.destroy()


if __name__ == "__main__":
    main()
