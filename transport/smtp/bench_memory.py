#!/usr/bin/env python3
"""bench_memory.py - resident memory of the daemons while clients send large messages, against a real started
system (make bench): ix-smtpd with BENCH_SESSIONS (100) sessions each midway through a 30 MB DATA, and ix-imapd
with BENCH_APPENDS (10) sessions each midway through a 30 MB APPEND literal. A message past a small threshold
waits in an unlinked file, so the figure per session should be a few hundred KiB at most, whatever the message
size. RSS from /proc/PID/status (VmRSS) before the clients, while they are all midway, and its peak (VmHWM).
Nothing is asserted.

Environment: IX_BUILD (build folder), BENCH_SESSIONS, BENCH_APPENDS, BENCH_MESSAGE_MB (30)."""
import json
import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e"))
from harness import System, imap_login_ok, wait_for  # noqa: E402

SESSIONS = int(os.environ.get("BENCH_SESSIONS", "100"))
APPENDS = int(os.environ.get("BENCH_APPENDS", "10"))
MESSAGE = int(os.environ.get("BENCH_MESSAGE_MB", "30")) * 1000 * 1000
LINE = b"x" * 998 + b"\r\n"
CHUNK = LINE * 256  # 256,000 bytes


def rss_kib(pid):
    """(VmRSS, VmHWM) of pid in KiB."""
    vals = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                vals[k] = int(v.split()[0])
    return vals["VmRSS"], vals["VmHWM"]


def service_pid(s, name):
    st = json.loads(s.cli("status", "--json").stdout)
    return [x["pid"] for x in st["services"] if x["name"] == name][0]


def recv_line(sock, needle):
    got = b""
    while needle not in got:
        d = sock.recv(4096)
        if not d:
            raise RuntimeError("closed: %r" % got)
        got += d
    return got


def send_half(sock, total):
    """Sends about half of total bytes of message lines."""
    sent = 0
    while sent < total // 2:
        sock.sendall(CHUNK)
        sent += len(CHUNK)


def smtp_midway(s, n):
    socks = []
    for i in range(n):
        c = socket.socket()
        c.bind(("127.0.%d.%d" % (2 + i // 200, 1 + i % 200), 0))
        c.connect(("127.0.0.1", s.ports["smtp"]))
        recv_line(c, b"220 ")
        c.sendall(b"EHLO bench\r\nMAIL FROM:<bench@outside.org> SIZE=%d\r\nRCPT TO:<alice.archer@example.com>\r\n"
                  b"DATA\r\n" % MESSAGE)
        recv_line(c, b"354 ")
        socks.append(c)
    for c in socks:
        send_half(c, MESSAGE)
    return socks


def imap_midway(s, n):
    socks = []
    for _ in range(n):
        c = socket.create_connection(("127.0.0.1", s.ports["imap"]))
        recv_line(c, b"* OK")
        c.sendall(b"a LOGIN alice pw-alice1\r\n")
        recv_line(c, b"a OK")
        c.sendall(b"b APPEND INBOX {%d}\r\n" % MESSAGE)
        recv_line(c, b"+ ")
        socks.append(c)
    for c in socks:
        send_half(c, MESSAGE)
    return socks


def measure(s, name, label, n, start):
    pid = service_pid(s, name)
    before, _ = rss_kib(pid)
    t = time.monotonic()
    socks = start(s, n)
    time.sleep(1.0)  # the daemon takes in what was sent
    during, peak = rss_kib(pid)
    for c in socks:
        c.close()
    per = (during - before) / max(n, 1)
    print("%s" % label)
    print("  RSS before                         %8.1f MiB" % (before / 1024))
    print("  RSS with %4d clients midway       %8.1f MiB" % (n, during / 1024))
    print("  RSS peak                           %8.1f MiB" % (peak / 1024))
    print("  growth per client                  %8.0f KiB   (%.0f MB sent each, %.1f s)" %
          (per, MESSAGE / 2e6, time.monotonic() - t))


def main():
    s = System()
    try:
        s.cli("user", "add", "alice", "--given", "Alice", "--surname", "Archer", "--password", "pw-alice1",
              check=True)
        wait_for(lambda: imap_login_ok(s.ports["imap"], "alice", "pw-alice1"), timeout=15, interval=0.3)
        s.cli("server", "set", "smtp.max_message_size", str(MESSAGE + 1000000), check=True)
        s.set_live("smtp.max_connections_per_client", max(SESSIONS, 50) + 1, services=("smtpd", "imapd"))
        measure(s, "smtpd", "ix-smtpd, %d sessions each midway through a %d MB DATA" % (SESSIONS, MESSAGE // 1000000),
                SESSIONS, smtp_midway)
        measure(s, "imapd", "ix-imapd, %d sessions each midway through a %d MB APPEND" % (APPENDS, MESSAGE // 1000000),
                APPENDS, imap_midway)
    finally:
        s.destroy()


if __name__ == "__main__":
    main()
