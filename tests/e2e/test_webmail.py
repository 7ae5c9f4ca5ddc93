#!/usr/bin/env python3
# test_webmail.py - a webmail that sorts and threads on the server (Roundcube, the Debian package, run by PHP's
# built-in web server in the test's folder) lists a 10,000-message folder sorted by date and threaded: its IMAP
# log shows SORT and THREAD and a FETCH of one page of headers, never the headers of the whole folder (issue 14).
import glob
import imaplib
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import http.cookiejar

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = None
PW = "webmail-pw-1"
RC = "/usr/share/roundcube"
N = 10000
PAGE = 50
WEB = None  # the PHP server
TMP = None
URL = None


def message(i):
    """Threads of five: the first message of each starts it, the others answer it."""
    root = i - i % 5
    refs = "" if i == root else "References: <t%d@web.example>\r\n" % root
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(1.7e9 + (i * 7919) % 100000 * 60))
    return ("From: sender%d@example.com\r\nTo: reader@example.com\r\nSubject: %stopic %d\r\n"
            "Message-ID: <t%d@web.example>\r\n%sDate: %s\r\n\r\nbody %d\r\n"
            % (i % 97, "Re: " if i != root else "", root // 5, i, refs, date, i)).encode()


def fill(login, folder, n, conns=8):
    """Appends n messages to folder, conns connections pipelining LITERAL+ APPENDs."""
    def part(k):
        c = socket.create_connection(("127.0.0.1", S.ports["imap"]), timeout=120)
        f = c.makefile("rb")
        f.readline()
        c.sendall(b"l LOGIN %s %s\r\n" % (login.encode(), PW.encode()))
        while not f.readline().startswith(b"l "):
            pass
        mine = range(k, n, conns)
        for i in mine:
            m = message(i)
            c.sendall(b"a%d APPEND %s {%d+}\r\n" % (i, folder.encode(), len(m)) + m + b"\r\n")
        done = 0
        while done < len(mine):
            line = f.readline()
            assert line, "connection closed while appending"
            if line.startswith(b"a"):
                assert b" OK " in line, line
                done += 1
        c.close()
    ts = [threading.Thread(target=part, args=(k,)) for k in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def web(path, data=None, headers=None, opener=None):
    req = urllib.request.Request(URL + path, data=urllib.parse.urlencode(data).encode() if data else None,
                                 headers=headers or {})
    with opener.open(req, timeout=120) as r:
        return r.read().decode("utf-8", "replace")


MISSING = "Roundcube is not installed (Debian packages roundcube-core roundcube-sqlite3 php8.2-cli php8.2-sqlite3)"


@h.setup
def setup():
    global S, WEB, TMP, URL
    if shutil.which("php") is None or not os.path.exists(os.path.join(RC, "index.php")):
        return  # the test says SKIP
    S = h.System()
    S.cli("user", "add", "reader", "--given", "Rea", "--surname", "Der", "--password", PW, check=True)
    assert h.wait_for(lambda: h.imap_login_ok(S.ports["imap"], "reader", PW), timeout=15)
    m = imaplib.IMAP4("127.0.0.1", S.ports["imap"], timeout=30)
    m.login("reader", PW)
    assert m.create("Big")[0] == "OK"
    m.logout()
    fill("reader", "Big", N)
    TMP = os.path.join(S.base, "roundcube")
    for d in ("config", "temp", "logs"):
        os.makedirs(os.path.join(TMP, d))
    os.symlink("/etc/roundcube/defaults.inc.php", os.path.join(TMP, "config", "defaults.inc.php"))
    db = os.path.join(TMP, "rc.db")
    con = sqlite3.connect(db)
    con.executescript(open(os.path.join(RC, "SQL", "sqlite.initial.sql")).read())
    con.close()
    with open(os.path.join(TMP, "config", "config.inc.php"), "w") as f:
        f.write("""<?php
$config = [];
$config['db_dsnw'] = 'sqlite:///%s?mode=0646';
$config['imap_host'] = '127.0.0.1:%d';
$config['smtp_host'] = '';
$config['temp_dir'] = '%s/temp/';
$config['log_dir'] = '%s/logs/';
$config['log_driver'] = 'file';
$config['imap_debug'] = true;
$config['des_key'] = 'test-des-key-24-bytes!!!';
$config['plugins'] = [];
$config['skin'] = 'elastic';
$config['support_url'] = '';
$config['imap_cache'] = null;
$config['messages_cache'] = false;
$config['mail_pagesize'] = %d;
$config['enable_installer'] = false;
$config['use_https'] = false;
$config['ip_check'] = false;
""" % (db, S.ports["imap"], TMP, TMP, PAGE))
    port = h.free_ports(1)[0]
    URL = "http://127.0.0.1:%d/" % port
    env = dict(os.environ, ROUNDCUBE_CONFIG_DIR=os.path.join(TMP, "config"))
    WEB = subprocess.Popen(["php", "-S", "127.0.0.1:%d" % port, "-t", RC], cwd=RC, env=env,
                           stdout=open(os.path.join(TMP, "php.log"), "w"), stderr=subprocess.STDOUT)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    assert h.wait_for(up, timeout=15), open(os.path.join(TMP, "php.log")).read()


def set_size(uids):
    """How many UIDs an IMAP sequence set (no "*") names."""
    n = 0
    for part in uids.split(","):
        lo, _, hi = part.partition(":")
        n += abs(int(hi or lo) - int(lo)) + 1
    return n


def imap_log():
    logs = glob.glob(os.path.join(TMP, "logs", "imap*"))
    return "".join(open(p, errors="replace").read() for p in logs)


@h.test
def roundcube_lists_a_big_folder_sorted_and_threaded():
    if WEB is None:
        h.skip(MISSING)
    try:
        listing()
    finally:
        WEB.terminate()
        WEB.wait(10)


def listing():
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = web("?_task=login", opener=opener)
    token = re.search(r'name="_token" value="([^"]+)"', page).group(1)
    page = web("?_task=login", {"_token": token, "_task": "login", "_action": "login", "_timezone": "UTC",
                                "_url": "", "_user": "reader", "_pass": PW}, opener=opener)
    m = re.search(r'"request_token":"([^"]+)"', page)
    assert m, "not logged in to Roundcube: " + page[:2000] + open(os.path.join(TMP, "logs", "errors.log")).read() \
        if os.path.exists(os.path.join(TMP, "logs", "errors.log")) else page[:2000]
    hdr = {"X-Roundcube-Request": m.group(1), "X-Requested-With": "XMLHttpRequest"}

    def listed(threads):
        """The first page of Big newest first (threaded or not): the answer, its seconds, its part of the IMAP log."""
        start = len(imap_log())
        t0 = time.monotonic()
        text = web("?_task=mail&_action=list&_mbox=Big&_page=1&_sort=date_DESC&_threads=%d&_remote=1" % threads,
                   headers=hdr, opener=opener)
        return text, time.monotonic() - t0, imap_log()[start:]
    sorted_list, t_sort, log_sort = listed(0)
    threaded, t_thread, log_thread = listed(1)
    # the first page, newest first: the listing names 10,000 messages and shows one page of them
    assert '"messagecount":%d' % N in sorted_list.replace(" ", ""), sorted_list[:2000]
    rows = re.findall(r"add_message_row\((\d+)", sorted_list)
    assert len(rows) == PAGE, (len(rows), sorted_list[:2000])
    assert len(re.findall(r"add_message_row\((\d+)", threaded)) >= PAGE, threaded[:2000]
    assert re.search(r"C: \S+ UID SORT \((REVERSE )?DATE\) ", log_sort), log_sort[-3000:]
    assert re.search(r"C: \S+ UID THREAD (REFS|REFERENCES) ", log_thread), log_thread[-3000:]
    # headers fetched for one page only (a page of threads of five: 5 x PAGE), never for the whole folder
    for log in (log_sort, log_thread):
        fetches = re.findall(r"C: \S+ UID FETCH (\S+) \(", log)
        assert fetches, log[-3000:]
        for uids in fetches:
            assert "*" not in uids and set_size(uids) <= 5 * PAGE, uids
    print("# Roundcube, %d messages: sorted page %.2f s, threaded page %.2f s (PHP included)" % (N, t_sort, t_thread))


if __name__ == "__main__":
    h.main("webmail")
