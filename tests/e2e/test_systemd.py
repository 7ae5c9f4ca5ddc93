"""test_systemd.py - Interchange as a systemd service: the unit `make` writes passes `systemd-analyze verify`, and the
attendant run as the unit runs it (start --foreground, NOTIFY_SOCKET, WATCHDOG_USEC and JOURNAL_STREAM set as systemd
sets them) says READY=1 once every service answers, pings the watchdog, says STOPPING=1 at SIGTERM and exits 0, while
every program logs to standard error (the journal) instead of DATA/log."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, ENV, INTERCHANGE, ROOT, System, main, run, skip, test, wait_for  # noqa: E402


@test
def unit_verifies():
    if shutil.which("systemd-analyze") is None:
        skip("systemd-analyze is not installed (package systemd)")
    unit = open(os.path.join(ROOT, BUILD, "interchange.service")).read()
    # the unit as make wrote it names the installed command: point it at this build's to verify it here
    exec_start = [line for line in unit.splitlines() if line.startswith("ExecStart=")][0]
    command = exec_start.split("=", 1)[1].split()[0]
    assert command.endswith("/sbin/interchange"), exec_start
    folder = os.path.join("/tmp", "ixunit-%d" % os.getpid())
    os.makedirs(folder, exist_ok=True)
    try:
        path = os.path.join(folder, "interchange.service")
        with open(path, "w") as f:
            f.write(unit.replace(command, INTERCHANGE))
        # Documentation= names the manual page, which is installed with the package, not here
        r = run(["systemd-analyze", "verify", "--man=no", path])
        assert r.returncode == 0 and r.stderr.strip() == "" and r.stdout.strip() == "", r.stdout + r.stderr
        for want in ("Type=notify", "WatchdogSec=", "ProtectSystem=strict", "NoNewPrivileges=yes",
                     "CapabilityBoundingSet=", "Restart=on-failure", "KillMode=mixed"):
            assert want in unit, want
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@test
def notify_protocol_and_journal():
    s = System(start=False)
    sock_path = os.path.join(s.base, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    os.chmod(sock_path, 0o777)  # the attendant sends once it is the service user, as to systemd's own socket
    sock.settimeout(0.5)
    messages = []

    def listen():
        while not done.is_set():
            try:
                messages.append(sock.recv(4096).decode())
            except socket.timeout:
                continue
            except OSError:
                return
    done = threading.Event()
    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    err_r, err_w = os.pipe()
    st = os.fstat(err_w)
    env = dict(ENV, NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="1000000", JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
    proc = subprocess.Popen([INTERCHANGE, "--data", s.data, "start", "--foreground"], env=env, stdout=err_w,
                            stderr=err_w, stdin=subprocess.DEVNULL)
    os.close(err_w)
    journal = []
    reader = threading.Thread(target=lambda: journal.extend(iter(lambda: os.read(err_r, 65536), b"")), daemon=True)
    reader.start()
    try:
        ready = wait_for(lambda: any("READY=1" in m for m in messages), timeout=60, interval=0.1)
        assert ready, "no READY=1: %s %s" % (messages, b"".join(journal)[-1500:])
        # ready means answering: every service runs when it is said
        st = s.cli("status", "--json", check=True).stdout
        assert st.count('"state": "running"') == 8, st
        msg = [m for m in messages if "READY=1" in m][0]
        assert "MAINPID=%d" % proc.pid in msg and "STATUS=Interchange is running" in msg, msg
        before = sum(m.count("WATCHDOG=1") for m in messages)
        time.sleep(1.6)
        pings = sum(m.count("WATCHDOG=1") for m in messages) - before
        assert pings >= 2, "watchdog pinged %d times in 1.6 s at WATCHDOG_USEC=1s: %s" % (pings, messages)
        # the journal has every program's lines; DATA/log has none of the services' files
        text = b"".join(journal).decode("utf-8", "replace")
        for name in ("attendant", "smtpd", "imapd", "pop3d", "managesieved", "mta", "httpd"):
            assert "%s[" % name in text, (name, text[-1500:])
            assert not os.path.exists(os.path.join(s.data, "log", name + ".log")), name
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert any("STOPPING=1" in m for m in messages), messages
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        done.set()
        sock.close()
        listener.join(timeout=5)
        reader.join(timeout=5)
        os.close(err_r)


if __name__ == "__main__":
    main("test_systemd")
