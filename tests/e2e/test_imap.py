"""test_imap.py - ix-imapd end to end with python3's imaplib (and raw sockets for bad input): login variants and
failures, STARTTLS and implicit TLS, the folder life cycle, APPEND and FETCH of nested MIME (BODYSTRUCTURE checked
against RFC 3501's grammar), SEARCH, SORT and THREAD, flags with CONDSTORE, MOVE and UIDPLUS, IDLE, public folders and ACLs,
quota, and bad input. Runs against a real system started by `interchange start`."""
import fcntl
import imaplib
import os
import poplib
import re
import socket
import ssl
import struct
import sys
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import System, main, skip, test, wait_for  # noqa: E402

S = None
PW = {"alice": "pw-alice1", "bob": "pw-bob22", "carol": "pw-carol3", "dave": "pw-dave44"}


def system():
    global S
    if S is None:
        S = System()
        S.cli("user", "add", "alice", "--given", "Alice", "--surname", "Archer", "--password", PW["alice"], check=True)
        S.cli("user", "add", "bob", "--given", "Bob", "--surname", "Baker", "--password", PW["bob"], check=True)
        S.cli("user", "add", "carol", "--given", "Carol", "--surname", "Cook", "--password", PW["carol"], check=True)
        S.cli("user", "add", "dave", "--given", "Dave", "--surname", "Dyer", "--password", PW["dave"], check=True)
        S.cli("dl", "add", "pf-admins", "--member", "alice", check=True)
        S.cli("folder", "add", "Sales/Leads", check=True)
        S.cli("user", "quota", "dave", "--bytes", "200000", "--messages", "50", check=True)
        # slowly: failed attempts count towards the login throttle
        assert wait_for(lambda: imap_login_ok("dave.dyer@example.com", PW["dave"]), 10.0, 0.5), "users not ready"
    return S


def imap_login_ok(user, pw):
    return harness.imap_login_ok(S.ports["imap"], user, pw)


def connect(user="alice"):
    s = system()
    m = imaplib.IMAP4("127.0.0.1", s.ports["imap"])
    m.login(user, PW[user])
    return m


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


NESTED = (
    b"From: Alice Archer <alice.archer@example.com>\r\n"
    b"To: Bob Baker <bob.baker@example.com>, carol.cook@example.com\r\n"
    b"Subject: =?utf-8?q?Quarterly_r=C3=A9sum=C3=A9?=\r\n"
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
    b"Message-ID: <nested-1@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
    b"\r\n"
    b"preamble\r\n"
    b"--outer\r\n"
    b"Content-Type: multipart/alternative; boundary=\"inner\"\r\n"
    b"\r\n"
    b"--inner\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"plain text zebra\r\n"
    b"--inner\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<p>html text</p>\r\n"
    b"--inner--\r\n"
    b"--outer\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"From: someone@example.org\r\n"
    b"Subject: forwarded\r\n"
    b"\r\n"
    b"inner body\r\n"
    b"--outer\r\n"
    b"Content-Type: application/octet-stream; name=\"a.bin\"\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"Content-Disposition: attachment; filename=\"a.bin\"\r\n"
    b"\r\n"
    b"AAECAwQ=\r\n"
    b"--outer--\r\n"
)


def simple(subject, body="hello", frm="alice.archer@example.com"):
    return ("From: %s\r\nTo: bob.baker@example.com\r\nSubject: %s\r\nDate: Tue, 1 Mar 2022 10:00:00 +0000\r\n\r\n"
            "%s\r\n" % (frm, subject, body)).encode()


# ---- a tiny parser for IMAP response data (lists, strings, atoms, literals) ----

def sexp(data):
    """Parses IMAP response data into nested lists of str/bytes/None."""
    pos = 0

    def skip():
        nonlocal pos
        while pos < len(data) and data[pos:pos + 1] == b" ":
            pos += 1

    def item():
        nonlocal pos
        skip()
        c = data[pos:pos + 1]
        if c == b"(":
            pos += 1
            out = []
            while True:
                skip()
                if data[pos:pos + 1] == b")":
                    pos += 1
                    return out
                out.append(item())
        if c == b"\"":
            pos += 1
            buf = b""
            while data[pos:pos + 1] != b"\"":
                if data[pos:pos + 1] == b"\\":
                    pos += 1
                buf += data[pos:pos + 1]
                pos += 1
            pos += 1
            return buf.decode()
        if c == b"{":
            end = data.index(b"}", pos)
            n = int(data[pos + 1:end])
            start = end + 3
            pos = start + n
            return data[start:pos]
        m = re.compile(rb"[A-Za-z0-9.]+\[[^\]]*\](<\d+>)?|[^ ()\"]+").match(data, pos)
        assert m, data[pos:pos + 40]
        pos = m.end()
        tok = m.group().decode()
        return None if tok.upper() == "NIL" else tok

    return item()


def fetch_data(m, resp):
    """Joins imaplib's fetch output (tuples for literals) back into raw bytes per message."""
    out = []
    for part in resp:
        if part is None:
            continue
        chunk = part[0] + b"\r\n" + part[1] if isinstance(part, tuple) else part
        if re.match(rb"^\d+ \(", chunk) or not out:
            out.append(chunk)
        else:
            out[-1] += chunk
    return out


def fetch_items(raw):
    """'1 (UID 3 FLAGS (...) ...)' -> dict of item name -> value."""
    num, rest = raw.split(b" ", 1)
    lst = sexp(rest)
    return {lst[i].upper() if isinstance(lst[i], str) else lst[i]: lst[i + 1] for i in range(0, len(lst), 2)}


def check_body(b, ext=True):
    """Checks a body structure against RFC 3501's body grammar; returns the number of leaf parts."""
    assert isinstance(b, list) and b, b
    if isinstance(b[0], list):  # body-type-mpart: 1*body SP media-subtype [SP body-ext-mpart]
        n = 0
        i = 0
        while isinstance(b[i], list):
            n += check_body(b[i], ext)
            i += 1
        assert isinstance(b[i], str), ("multipart subtype", b)
        if ext:
            assert len(b) > i + 1 and (b[i + 1] is None or isinstance(b[i + 1], list)), ("mpart ext params", b)
        return n
    typ, sub = b[0].lower(), b[1].lower()
    assert isinstance(b[2], list) or b[2] is None, ("params", b)
    assert isinstance(b[6], str) and b[6].isdigit(), ("body-fld-octets", b)
    if typ == "message" and sub == "rfc822":
        assert isinstance(b[7], list) and len(b[7]) == 10, ("envelope", b)
        check_body(b[8], ext)
        assert b[9].isdigit(), ("lines", b)
        return 1
    if typ == "text":
        assert b[7].isdigit(), ("text lines", b)
    return 1


# ---- tests ----

@test
def greeting_capability_and_login_variants():
    s = system()
    m = imaplib.IMAP4("127.0.0.1", s.ports["imap"])
    assert b"IMAP4rev1" in m.welcome and b"STARTTLS" in m.welcome, m.welcome
    typ, caps = m.capability()
    assert b"AUTH=PLAIN" in caps[0] and b"LOGINDISABLED" not in caps[0], caps  # loopback is trusted
    m.login("alice", PW["alice"])
    typ, caps = m.capability()
    for c in (b"IDLE", b"UIDPLUS", b"MOVE", b"NAMESPACE", b"CONDSTORE", b"QRESYNC", b"QUOTA", b"ACL", b"ESEARCH"):
        assert c in caps[0], (c, caps)
    m.logout()
    m = imaplib.IMAP4("127.0.0.1", s.ports["imap"])
    m.login("alice.archer@example.com", PW["alice"])  # by address
    m.logout()
    m = imaplib.IMAP4("127.0.0.1", s.ports["imap"])
    try:
        m.login("alice", "wrong")
        raise AssertionError("wrong password accepted")
    except imaplib.IMAP4.error as e:
        assert "AUTHENTICATIONFAILED" in str(e), e
    try:
        m.login("nobody", "x")
        raise AssertionError("unknown user accepted")
    except imaplib.IMAP4.error as e:
        assert "AUTHENTICATIONFAILED" in str(e), e  # the same answer as a wrong password: no user enumeration
    m.logout()
    # after a failed login the session is still not authenticated (imaplib refuses SELECT itself, so by hand)
    out = raw(s.ports["imap"], [b"a LOGIN alice wrong\r\n", b"b SELECT INBOX\r\n", b"c LOGOUT\r\n"], until=b"c OK")
    assert b"a NO [AUTHENTICATIONFAILED]" in out and b"b BAD" in out, out


@test
def authenticate_plain_login_and_sasl_ir():
    s = system()
    m = imaplib.IMAP4("127.0.0.1", s.ports["imap"])
    typ, data = m.authenticate("PLAIN", lambda _: b"\0bob\0" + PW["bob"].encode())
    assert typ == "OK", data
    m.logout()
    # SASL-IR and LOGIN by hand
    sock = socket.create_connection(("127.0.0.1", s.ports["imap"]), timeout=10)
    f = sock.makefile("rwb")
    f.readline()
    import base64
    ir = base64.b64encode(b"\0carol.cook@example.com\0" + PW["carol"].encode())
    f.write(b"a1 AUTHENTICATE PLAIN " + ir + b"\r\n")
    f.flush()
    line = f.readline()
    assert line.startswith(b"a1 OK"), line
    sock.close()
    sock = socket.create_connection(("127.0.0.1", s.ports["imap"]), timeout=10)
    f = sock.makefile("rwb")
    f.readline()
    f.write(b"a1 AUTHENTICATE LOGIN\r\n")
    f.flush()
    assert f.readline().startswith(b"+ "), "no challenge"
    f.write(base64.b64encode(b"bob") + b"\r\n")
    f.flush()
    assert f.readline().startswith(b"+ ")
    f.write(base64.b64encode(PW["bob"].encode()) + b"\r\n")
    f.flush()
    line = f.readline()
    assert line.startswith(b"a1 OK"), line
    f.write(b"a2 AUTHENTICATE PLAIN\r\n")
    f.flush()
    assert b"BAD" in f.readline()  # already logged in
    sock.close()


@test
def starttls_and_implicit_tls():
    s = system()
    m = imaplib.IMAP4("127.0.0.1", s.ports["imap"])
    m.starttls(ssl_context=tls_ctx())
    typ, caps = m.capability()
    assert b"STARTTLS" not in caps[0], caps
    m.login("alice", PW["alice"])
    m.logout()
    m = imaplib.IMAP4_SSL("127.0.0.1", s.ports["imaps"], ssl_context=tls_ctx())
    m.login("bob", PW["bob"])
    typ, data = m.select("INBOX")
    assert typ == "OK"
    m.logout()
    # command injection after STARTTLS is discarded
    sock = socket.create_connection(("127.0.0.1", s.ports["imap"]), timeout=10)
    sock.recv(4096)
    sock.sendall(b"a STARTTLS\r\nb LOGIN alice " + PW["alice"].encode() + b"\r\n")
    data = b""
    while b"\r\n" not in data:  # a byte at a time: nothing past the OK line may be taken from the TLS handshake
        d = sock.recv(1)
        assert d, data
        data += d
    assert data.startswith(b"a OK"), data
    ts = tls_ctx().wrap_socket(sock)
    ts.sendall(b"c NOOP\r\n")
    line = ts.recv(4096)
    assert line.startswith(b"c OK"), line  # no response to the injected b
    ts.close()


@test
def folder_life_cycle():
    m = connect("bob")
    typ, data = m.list()
    names = b" ".join(data)
    for n in (b"INBOX", b"Sent", b"Drafts", b"Trash", b"Junk", b"Archive"):
        assert n in names, data
    assert b"\\Sent" in names and b"\\Trash" in names, data
    assert m.create("Projects/2024")[0] == "OK"
    assert m.create("Projects/2024")[0] == "NO"
    typ, data = m.list("\"\"", "Projects*")
    assert any(b"\\HasChildren" in d and b"\"Projects\"" in d for d in data), data
    assert any(b"Projects/2024" in d and b"\\HasNoChildren" in d for d in data), data
    assert m.rename("Projects/2024", "Projects/Y2024")[0] == "OK"
    typ, data = m.list("\"\"", "Projects/%")
    assert len(data) == 1 and b"Y2024" in data[0], data
    assert m.subscribe("Projects/Y2024")[0] == "OK"
    typ, data = m.lsub("\"\"", "*")
    assert any(b"Projects/Y2024" in d for d in data), data
    typ, data = m.status("Projects/Y2024", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")
    assert typ == "OK" and b"MESSAGES 0" in data[0], data
    # modified UTF-7 names
    assert m.create("&AMk-t&AOk-")[0] == "OK"
    typ, data = m.list("\"\"", "&AMk-t&AOk-")
    assert len(data) == 1 and b"&AMk-t&AOk-" in data[0], data
    assert m.delete("Projects/Y2024")[0] == "OK"
    assert m.delete("Projects/Y2024")[0] == "NO"
    assert m.delete("INBOX")[0] == "NO"
    typ, data = m._simple_command("NAMESPACE")
    typ, data = m._untagged_response(typ, data, "NAMESPACE")
    assert b"Other Users/" in data[0] and b"Public Folders/" in data[0], data
    # LIST-EXTENDED + LIST-STATUS
    typ, data = m._simple_command("LIST", "(SPECIAL-USE)", '""', "*", "RETURN", "(STATUS (MESSAGES))")
    assert typ == "OK", data
    lst = m.untagged_responses.pop("LIST", [])
    st = m.untagged_responses.pop("STATUS", [])
    assert lst and all(b"\\" in x for x in lst) and not any(b"INBOX" in x for x in lst), lst
    assert st and b"MESSAGES" in st[0], st
    m.logout()


@test
def append_and_fetch_nested_mime():
    m = connect("alice")
    typ, data = m.append("INBOX", "(\\Flagged $Work)", imaplib.Time2Internaldate(time.time()), NESTED)
    assert typ == "OK" and b"APPENDUID" in data[0], data
    m.select("INBOX")
    typ, data = m.uid("SEARCH", "HEADER", "Message-ID", "nested-1")
    uid = data[0].split()[-1]
    typ, resp = m.uid("FETCH", uid, "(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY)")
    it = fetch_items(fetch_data(m, resp)[0])
    assert "\\Flagged" in it["FLAGS"] and "$Work" in it["FLAGS"], it["FLAGS"]
    assert int(it["RFC822.SIZE"]) == len(NESTED), it
    env = it["ENVELOPE"]
    assert env[0] == "Mon, 7 Feb 1994 21:52:25 -0800", env
    assert env[2][0][2] == "alice.archer" and env[2][0][3] == "example.com", env
    assert len(env[5]) == 2, env  # two To: addresses
    bs = it["BODYSTRUCTURE"]
    assert check_body(bs, True) == 4, bs
    assert bs[0][0][0].lower() == "text" and bs[0][2].lower() == "alternative", bs
    assert [x for x in bs if isinstance(x, str)][0].lower() == "mixed", bs
    assert check_body(it["BODY"], False) == 4
    typ, resp = m.uid("FETCH", uid, "(BODY.PEEK[1.1] BODY.PEEK[1.2.MIME] BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] "
                               "BODY.PEEK[HEADER.FIELDS (Subject)] BODY.PEEK[]<0.10> BODY.PEEK[3])")
    raw = fetch_data(m, resp)[0]
    it = fetch_items(raw)
    assert it["BODY[1.1]"] == b"plain text zebra", it
    assert b"text/html" in it["BODY[1.2.MIME]"], it
    assert b"Subject: forwarded" in it["BODY[2.HEADER]"], it
    assert it["BODY[2.TEXT]"].strip() == b"inner body", it
    assert it["BODY[HEADER.FIELDS (SUBJECT)]"].startswith(b"Subject:"), it
    assert it["BODY[]<0>"] == NESTED[:10], it
    assert it["BODY[3]"].strip() == b"AAECAwQ=", it
    typ, resp = m.uid("FETCH", uid, "(BINARY.PEEK[3] BINARY.SIZE[3] BINARY.PEEK[1.1])")
    raw = b"".join(x[0] + b"\r\n" + x[1] if isinstance(x, tuple) else x for x in resp)
    assert b"BINARY[3] ~{5}\r\n\x00\x01\x02\x03\x04" in raw and b"BINARY.SIZE[3] 5" in raw, raw
    assert b"BINARY[1.1] {16}\r\nplain text zebra" in raw, raw
    typ, resp = m.uid("FETCH", uid, "(FLAGS)")
    assert b"\\Seen" not in resp[0], resp  # PEEK leaves \Seen alone
    typ, resp = m.uid("FETCH", uid, "(BODY[TEXT])")
    assert b"\\Seen" in b" ".join(x if isinstance(x, bytes) else x[0] for x in resp), resp
    typ, resp = m.uid("FETCH", uid, "(RFC822.HEADER RFC822)")
    it = fetch_items(fetch_data(m, resp)[0])
    assert it["RFC822"] == NESTED and it["RFC822.HEADER"].endswith(b"\r\n\r\n"), it.keys()
    m.logout()


@test
def search_keys():
    m = connect("carol")
    for i in range(5):
        m.append("INBOX", "(\\Seen)" if i % 2 else None, None, simple("search %d" % i, "needle%d text" % i))
    m.append("INBOX", None, None, simple("=?iso-8859-1?q?caf=E9?=", "x"))
    m.select("INBOX")
    def s(*crit):
        typ, data = m.search("CHARSET", "UTF-8", *crit) if crit and crit[0] == "U" else m.search(None, *crit)
        assert typ == "OK", data
        return data[0].split()
    assert s("ALL") == [b"1", b"2", b"3", b"4", b"5", b"6"]
    assert s("SEEN") == [b"2", b"4"]
    assert s("UNSEEN", "SUBJECT", "search") == [b"1", b"3", b"5"]
    assert s("BODY", "needle3") == [b"4"]
    assert s("OR", "BODY", "needle1", "BODY", "needle2") == [b"2", b"3"]
    assert s("NOT", "SUBJECT", "search") == [b"6"]
    assert s("2:4", "SEEN") == [b"2", b"4"]
    assert s("FROM", "alice.archer") == [b"1", b"2", b"3", b"4", b"5", b"6"]
    assert s("SENTSINCE", "1-Mar-2022", "SENTBEFORE", "2-Mar-2022")[:1] == [b"1"]
    # CHARSET UTF-8 with a literal, matched against the RFC 2047-decoded subject
    m.literal = "café".encode()
    typ, data = m.search("UTF-8", "SUBJECT")
    assert typ == "OK" and data[0].split() == [b"6"], data
    typ, data = m.uid("SEARCH", "RETURN", "(MIN MAX COUNT)", "ALL")
    assert typ == "OK"
    es = m.untagged_responses.pop("ESEARCH", [b""])[0]
    assert b"COUNT 6" in es and b"MIN" in es and b"UID" in es, es
    typ, data = m._simple_command("SEARCH", "CHARSET", "KOI8-R", "ALL")
    assert typ == "NO" and data[0].startswith(b"[BADCHARSET (UTF-8 US-ASCII)]"), (typ, data)
    # deep nesting is refused, not crashed on
    try:
        typ, data = m._simple_command("SEARCH", "NOT " * 100 + "ALL")
        raise AssertionError("deep SEARCH accepted")
    except imaplib.IMAP4.error as e:
        assert "deep" in str(e), e
    assert m.noop()[0] == "OK"
    m.logout()


@test
def sort_and_thread_with_imaplib():
    """SORT (RFC 5256) and THREAD as webmail asks for them: by date backwards, by subject, threads by references."""
    m = connect("bob")
    m.create("Threads")
    msgs = [("Plan", "<p1@example.com>", "", "Mon, 1 Jan 2024 10:00:00 +0000"),
            ("Re: Plan", "<p2@example.com>", "<p1@example.com>", "Wed, 3 Jan 2024 10:00:00 +0000"),
            ("[team] Other", "<o1@example.com>", "", "Tue, 2 Jan 2024 10:00:00 +0000"),
            ("Fwd: Re: Plan", "<p3@example.com>", "<p1@example.com> <p2@example.com>",
             "Thu, 4 Jan 2024 10:00:00 +0000")]
    for subject, mid, refs, date in msgs:
        hdr = "From: a@example.com\r\nSubject: %s\r\nMessage-ID: %s\r\nDate: %s\r\n" % (subject, mid, date)
        if refs:
            hdr += "References: %s\r\n" % refs
        m.append("Threads", None, None, (hdr + "\r\nbody\r\n").encode())
    m.select("Threads")
    caps = m.capability()[1][0].split()
    assert b"SORT" in caps and b"THREAD=REFERENCES" in caps and b"SORT=DISPLAY" in caps, caps
    typ, data = m.sort("(REVERSE DATE)", "UTF-8", "ALL")
    assert typ == "OK" and data[0].split() == [b"4", b"2", b"3", b"1"], data
    typ, data = m.sort("(SUBJECT DATE)", "UTF-8", "ALL")
    assert typ == "OK" and data[0].split() == [b"3", b"1", b"2", b"4"], data
    typ, data = m.uid("SORT", "(DATE)", "UTF-8", "SUBJECT", "plan")
    assert typ == "OK" and len(data[0].split()) == 3, data
    typ, data = m.thread("REFERENCES", "UTF-8", "ALL")
    assert typ == "OK" and data[0] == b"(1 2 4)(3)", data
    typ, data = m.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
    assert typ == "OK" and data[0] == b"(1 (2)(4))(3)", data
    typ, data = m._simple_command("SORT", "(DATE)", "KOI8-R", "ALL")
    assert typ == "NO" and data[0].startswith(b"[BADCHARSET (UTF-8 US-ASCII)]"), (typ, data)
    m.logout()


@test
def flags_store_and_condstore():
    m = connect("carol")
    typ, data = m._simple_command("ENABLE", "CONDSTORE")
    assert typ == "OK"
    typ, data = m.select("INBOX")
    hms = m.untagged_responses.get("OK", [])
    assert any(re.match(rb"\[HIGHESTMODSEQ \d+\]", x) for x in hms), hms  # CONDSTORE enabled: SELECT reports it
    typ, resp = m.store("1", "+FLAGS", "(\\Flagged $Todo)")
    assert b"\\Flagged" in resp[0] and b"$Todo" in resp[0] and b"MODSEQ" in resp[0], resp
    modseq = int(re.search(rb"MODSEQ \((\d+)\)", resp[0]).group(1))
    typ, resp = m.fetch("1:*", "(FLAGS) (CHANGEDSINCE %d)" % (modseq - 1))
    assert len([r for r in resp if r]) == 1 and b"MODSEQ" in resp[0], resp
    typ, resp = m._simple_command("STORE", "1", "(UNCHANGEDSINCE %d)" % (modseq - 1), "+FLAGS", "(\\Answered)")
    assert typ == "OK" and b"MODIFIED 1" in resp[0], (typ, resp)
    typ, resp = m._simple_command("STORE", "1", "(UNCHANGEDSINCE %d)" % modseq, "-FLAGS", "(\\Flagged)")
    assert typ == "OK" and b"MODIFIED" not in resp[0], resp
    typ, resp = m.store("2", "FLAGS.SILENT", "(\\Draft)")
    assert typ == "OK"
    typ, resp = m.fetch("2", "(FLAGS)")
    assert b"\\Draft" in resp[0] and b"\\Seen" not in resp[0], resp
    typ, resp = m.search(None, "MODSEQ", str(modseq))
    assert typ == "OK" and b"MODSEQ" in resp[0], resp
    m.logout()


@test
def copy_move_uidplus_expunge():
    m = connect("bob")
    for i in range(3):
        m.append("INBOX", None, None, simple("move %d" % i))
    m.create("Keep")
    typ, data = m.select("INBOX")
    n = int(data[0])
    typ, data = m.uid("SEARCH", "SUBJECT", "move")
    uids = data[0].split()
    typ, data = m._simple_command("UID", "COPY", uids[0].decode(), "Keep")
    assert typ == "OK" and b"COPYUID" in data[0], data
    typ, data = m._simple_command("UID", "MOVE", b",".join(uids[1:]).decode(), "Keep")
    assert typ == "OK", data
    oks = m.untagged_responses.pop("OK", [])
    assert any(b"COPYUID" in x for x in oks), oks
    exp = m.untagged_responses.pop("EXPUNGE", [])
    assert len(exp) == 2, exp
    typ, data = m.copy("1", "NoSuchFolder")
    assert typ == "NO" and b"TRYCREATE" in data[0], data
    typ, data = m.status("Keep", "(MESSAGES)")
    assert b"MESSAGES 3" in data[0], data
    m.select("Keep")
    m.store("1:2", "+FLAGS", "\\Deleted")
    typ, data = m.expunge()
    assert typ == "OK" and data == [b"1", b"1"], data
    m.store("1", "+FLAGS", "\\Deleted")
    typ, data = m.uid("EXPUNGE", "1:*")
    assert typ == "OK", data
    typ, data = m.select("Keep")
    assert data[0] == b"0", data
    # sequence sets on an empty folder
    try:
        m.fetch("1:4294967295", "(FLAGS)")
        raise AssertionError("a sequence set on an empty folder was accepted")
    except imaplib.IMAP4.error as e:
        assert "No messages" in str(e), e
    typ, data = m.uid("FETCH", "*:*", "(FLAGS)")
    assert typ == "OK", (typ, data)
    typ, data = m.close()
    assert typ == "OK"
    m.logout()


@test
def idle_sees_other_sessions_within_a_second():
    s = system()
    a = connect("alice")
    a.select("INBOX")
    b = connect("alice")
    b.select("INBOX")
    sock = a.sock
    a.send(b"i1 IDLE\r\n")
    assert a.readline().startswith(b"+"), "no continuation"
    b.append("INBOX", None, None, simple("idle test"))
    line = a.readline()  # pushed: a server that only answered on the client's next command fails by timeout
    assert line.endswith(b"EXISTS\r\n"), line
    a.readline()  # RECENT
    b.store("1", "+FLAGS", "\\Answered")
    line = a.readline()
    assert b"FETCH" in line and b"\\Answered" in line, line
    # an expunge by the other session arrives during IDLE too
    b.store("1", "+FLAGS", "\\Deleted")
    line = a.readline()
    assert b"FETCH" in line and b"\\Deleted" in line, line
    b.expunge()
    line = a.readline()
    assert line == b"* 1 EXPUNGE\r\n", line
    b.append("INBOX", None, None, simple("idle test 2"))
    assert a.readline().endswith(b"EXISTS\r\n")
    a.readline()  # RECENT
    a.send(b"DONE\r\n")
    line = a.readline()
    assert line.startswith(b"i1 OK"), line
    # a second session sees expunges at NOOP
    b.store("1", "+FLAGS", "\\Deleted")
    b.expunge()
    assert wait_for(lambda: a.noop() and a.untagged_responses.pop("EXPUNGE", None), timeout=5) == [b"1"], \
        a.untagged_responses
    a.logout()
    b.logout()
    del sock, s


@test
def idle_receives_smtp_delivery():
    import smtplib
    if not os.path.exists(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                       os.environ.get("IX_BUILD", "build"), "ix-smtpd")):
        skip("ix-smtpd is not built")
    s = system()
    a = connect("bob")
    a.select("INBOX")
    a.send(b"i2 IDLE\r\n")
    assert a.readline().startswith(b"+"), "no continuation"
    c = smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=10)
    refused = c.sendmail("someone@example.org", ["bob.baker@example.com"], "Subject: via smtp\r\n\r\nhello\r\n")
    c.quit()
    assert not refused, refused
    a.sock.settimeout(5)
    line = a.readline()
    assert line.endswith(b"EXISTS\r\n"), line
    a.readline()
    a.send(b"DONE\r\n")
    assert a.readline().startswith(b"i2 OK")
    typ, data = a.fetch(line.split()[1].decode(), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"via smtp" in data[0][1], data
    a.logout()


@test
def public_folders_and_acl():
    s = system()
    a = connect("alice")  # member of pf-admins
    typ, data = a.list("\"\"", "\"Public Folders/*\"")
    assert any(b"Public Folders/Sales/Leads" in d for d in data), data
    typ, data = a.getacl("\"Public Folders/Sales/Leads\"")
    assert typ == "OK" and b"pf-admins" in data[0] and b"anyone" in data[0], data
    assert a.append("\"Public Folders/Sales/Leads\"", None, None, simple("lead 1"))[0] == "OK"
    # make it private to bob
    assert a.setacl("\"Public Folders/Sales/Leads\"", "anyone", '""')[0] == "OK"
    assert a.setacl("\"Public Folders/Sales/Leads\"", "bob", "lrs")[0] == "OK"
    b = connect("bob")
    typ, data = b.select("\"Public Folders/Sales/Leads\"", readonly=True)
    assert typ == "OK" and data[0] == b"1", data
    typ, data = b._simple_command("MYRIGHTS", "\"Public Folders/Sales/Leads\"")
    assert typ == "OK" and b"lrs" in b.untagged_responses.pop("MYRIGHTS", [b""])[0]
    typ, data = b.append("\"Public Folders/Sales/Leads\"", None, None, simple("nope"))
    assert typ == "NO", data
    typ, data = b.setacl("\"Public Folders/Sales/Leads\"", "bob", "lrswipkxtea")
    assert typ == "NO", data
    c = connect("carol")
    typ, data = c.select("\"Public Folders/Sales/Leads\"")
    assert typ == "NO", data
    typ, data = c.list("\"\"", "\"Public Folders/*\"")
    assert not any(b"Leads" in (d or b"") for d in data), data
    for x in (a, b, c):
        x.logout()
    del s


@test
def folder_rights_cli_and_owner_setacl():
    """`interchange folder rights` gives carol the a right on one public folder: over IMAP she then manages its rights
    (SETACL, GETACL, LISTRIGHTS, DELETEACL), bob reads once she grants it; dave, without a, may not."""
    s = system()
    s.cli("folder", "add", "Eng/Docs", check=True)
    r = s.cli("folder", "rights", "Eng/Docs", "carol", "lrsa", check=True)
    assert r.stdout == "carol has the rights lrsa on public folder Eng/Docs\n", r.stdout
    r = s.cli("folder", "rights", "Eng/Docs", "anyone", "-", check=True)
    assert r.stdout == "anyone has no entry on public folder Eng/Docs any more\n", r.stdout
    r = s.cli("folder", "rights", "Eng/Nowhere", "carol", "lr")
    assert r.returncode == 1 and "no public folder Eng/Nowhere" in r.stderr, (r.stdout, r.stderr)
    r = s.cli("folder", "rights", "Eng/Docs", "nobody-at-all", "lr")
    assert r.returncode == 1, (r.stdout, r.stderr)
    r = s.cli("folder", "rights", "Eng/Docs", "carol", "lrq")
    assert r.returncode == 2, (r.stdout, r.stderr)
    r = s.cli("folder", "list", check=True)
    rows = {line.split()[0]: line.split()[2:] for line in r.stdout.splitlines()[1:]}
    assert rows["Eng/Docs"] == ["carol=lrsa,pf-admins=lrswipkxtea"], r.stdout
    a = connect("alice")
    assert a.append("\"Public Folders/Eng/Docs\"", None, None, simple("spec"))[0] == "OK"
    b = connect("bob")
    assert b.select("\"Public Folders/Eng/Docs\"", readonly=True)[0] == "NO"
    c = connect("carol")
    typ, data = c._simple_command("MYRIGHTS", "\"Public Folders/Eng/Docs\"")
    assert typ == "OK" and c.untagged_responses.pop("MYRIGHTS") == [b'"Public Folders/Eng/Docs" lrsa'], data
    assert c.setacl("\"Public Folders/Eng/Docs\"", "bob", "lr")[0] == "OK"
    typ, data = c.getacl("\"Public Folders/Eng/Docs\"")
    assert typ == "OK" and data == [b'"Public Folders/Eng/Docs" bob lr carol lrsa pf-admins lrswipkxtea'], data
    imaplib.Commands.setdefault("LISTRIGHTS", ("AUTH", "SELECTED"))  # not in imaplib's table
    typ, data = c._simple_command("LISTRIGHTS", "\"Public Folders/Eng/Docs\"", "bob")
    assert typ == "OK" and c.untagged_responses.pop("LISTRIGHTS") == [
        b'"Public Folders/Eng/Docs" bob "" l r s w i p k x t e a'], data
    typ, data = b.select("\"Public Folders/Eng/Docs\"", readonly=True)
    assert typ == "OK" and data == [b"1"], data
    typ, data = b.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK" and data[0][1] == b"Subject: spec\r\n\r\n", data
    d = connect("dave")
    typ, data = d.setacl("\"Public Folders/Eng/Docs\"", "dave", "lr")
    assert typ == "NO", data
    assert c.deleteacl("\"Public Folders/Eng/Docs\"", "bob")[0] == "OK"
    r = s.cli("folder", "list", check=True)
    rows = {line.split()[0]: line.split()[2:] for line in r.stdout.splitlines()[1:]}
    assert rows["Eng/Docs"] == ["carol=lrsa,pf-admins=lrswipkxtea"], r.stdout
    for x in (a, b, c, d):
        x.logout()


@test
def other_users_folders_by_acl():
    a = connect("alice")
    assert a.setacl("INBOX", "bob", "lr")[0] == "OK"
    b = connect("bob")
    typ, data = b.select("\"Other Users/alice/INBOX\"", readonly=True)
    assert typ == "OK", data
    typ, data = b.list("\"\"", "\"Other Users/alice/*\"")
    assert any(b"Other Users/alice/INBOX" in d for d in data), data
    typ, data = b.list("\"\"", "\"Other Users/%\"")
    assert any(d.endswith(b'"Other Users/alice"') and b"\\Noselect" in d for d in data), data
    assert not any(b"Other Users/bob" in d for d in data if d), data
    typ, data = b.list("\"\"", "\"Other Users/*\"")
    assert any(b"Other Users/alice/INBOX" in d for d in data) and not any(b"alice/Sent" in d for d in data), data
    c = connect("carol")
    assert c.select("\"Other Users/alice/INBOX\"")[0] == "NO"
    typ, data = c.list("\"\"", "\"Other Users/*\"")
    assert not any(b"alice" in (d or b"") for d in data), data
    for x in (a, b, c):
        x.logout()


@test
def quota_reports_and_limits():
    m = connect("dave")
    typ, data = m.getquotaroot("INBOX")
    assert typ == "OK", data
    q = m.untagged_responses.pop("QUOTA", [b""])
    data = data + [q] if q else data
    txt = repr(data)
    assert "STORAGE" in txt and "195" in txt and "MESSAGE" in txt and " 50" in txt, txt
    big = b"Subject: big\r\n\r\n" + b"x" * 150000 + b"\r\n"
    assert m.append("INBOX", None, None, big)[0] == "OK"
    typ, data = m.append("INBOX", None, None, big)
    assert typ == "NO" and b"OVERQUOTA" in data[0], data
    # another user writing into dave's mailbox is held to dave's quota
    assert m.setacl("INBOX", "alice", "lri")[0] == "OK"
    a = connect("alice")
    typ, data = a.append("\"Other Users/dave/INBOX\"", None, None, big)
    assert typ == "NO" and b"OVERQUOTA" in data[0], data
    assert a.append("\"Other Users/dave/INBOX\"", None, None, simple("small"))[0] == "OK"
    a.logout()
    m.logout()


def raw(port, lines, until):
    """Sends lines on a new connection and returns what came back once the line holding until has arrived (or the
    server closed the connection)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.recv(4096)
    sock.sendall(b"".join(lines))
    out = b""
    while until not in out or not out.endswith(b"\r\n"):
        d = sock.recv(65536)
        if not d:
            break
        out += d
    sock.close()
    return out


@test
def bad_input_is_answered_and_survived():
    s = system()
    p = s.ports["imap"]
    a = connect("alice")
    assert a.append("INBOX", None, None, simple("for bad input"))[0] == "OK"  # b4 fetches from a non-empty INBOX
    a.logout()
    out = raw(p, [b"a1 LOGIN alice " + PW["alice"].encode() + b"\r\n", b"a2 SELECT (INBOX\r\n",
                  b"a3 FETCH 1 (FLAGS\r\n", b"a4 FOO\r\n", b"a5 SELECT \"INBOX\r\n", b"a6 NOOP\r\n",
                  b"a7 APPEND INBOX {999999999999}\r\n", b"a8 NOOP\r\n", b"a9 LOGIN x y\r\n",
                  b"b1 SEARCH " + b"(" * 300 + b"ALL" + b")" * 300 + b"\r\n", b"b2 NOOP\r\n",
                  b"b3 SELECT INBOX\r\n", b"b4 FETCH *:* (FLAGS)\r\n", b"b5 UID FETCH 1:4294967295 (UID)\r\n",
                  b"b6 STORE 1 +FLAGS (\\Recent)\r\n", b"b7 SELECT IN\x00BOX\r\n", b"b8 NOOP\r\n",
                  b"b9 APPEND INBOX {5+}\r\nab\xffcd\r\n", b"c1 NOOP\r\n"], until=b"c1 ")
    tagged = [ln for ln in out.split(b"\r\n") if ln and not ln.startswith(b"* ")]
    assert [ln.split(b" ", 2)[:2] for ln in tagged] == [
        [b"a1", b"OK"], [b"a2", b"BAD"], [b"a3", b"BAD"], [b"a4", b"BAD"], [b"a5", b"BAD"], [b"a6", b"OK"],
        [b"a7", b"BAD"], [b"a8", b"OK"], [b"a9", b"BAD"], [b"b1", b"BAD"], [b"b2", b"OK"], [b"b3", b"OK"],
        [b"b4", b"OK"], [b"b5", b"OK"], [b"b6", b"BAD"], [b"b7", b"BAD"], [b"b8", b"OK"], [b"b9", b"OK"],
        [b"c1", b"OK"]], tagged
    for line in (b"a7 BAD Literal too large", b"b1 BAD Lists nested too deeply", b"b6 BAD \\Recent cannot be changed",
                 b"b7 BAD NUL byte in command"):
        assert line in tagged, (line, tagged)
    # commands before login
    out = raw(p, [b"x1 SELECT INBOX\r\n", b"x2 FETCH 1 FLAGS\r\n", b"x3 LOGOUT\r\n"], until=b"x3 ")
    assert b"x1 BAD" in out and b"x2 BAD" in out and b"x3 OK" in out, out
    # an oversized literal before login is refused before it is read
    out = raw(p, [b"y1 LOGIN {50000000}\r\n", b"y2 NOOP\r\n"], until=b"y2 ")
    assert out == b"y1 BAD Literal too large\r\ny2 OK NOOP completed.\r\n", out
    # too many bad commands end the session (the server closes it after the BYE)
    out = raw(p, [b"z BAD\r\n" * 30], until=b"never sent")
    assert out.endswith(b"* BYE Too many bad commands.\r\n"), out
    # a client that does not read: the server keeps serving others
    sock = socket.create_connection(("127.0.0.1", p), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"l LOGIN alice " + PW["alice"].encode() + b"\r\ns SELECT INBOX\r\n" +
                 b"".join(b"f%d FETCH 1:* (BODY.PEEK[])\r\n" % i for i in range(200)))
    # until the replies stop arriving: our receive buffer is full and the server holds the rest
    unread = lambda: struct.unpack("i", fcntl.ioctl(sock, termios.FIONREAD, b"\0\0\0\0"))[0]  # noqa: E731
    sizes = [-1]
    assert wait_for(lambda: sizes.append(unread()) or (sizes[-1] > 0 and sizes[-1] == sizes[-2]), timeout=10,
                    interval=0.1), sizes
    m = connect("bob")
    assert m.noop()[0] == "OK"
    m.logout()
    sock.close()


@test
def utf8_accept_mailbox_names():
    s = system()
    sock = socket.create_connection(("127.0.0.1", s.ports["imap"]), timeout=10)
    f = sock.makefile("rb")
    f.readline()
    sock.sendall(b"a LOGIN carol " + PW["carol"].encode() + b"\r\nb ENABLE UTF8=ACCEPT\r\n"
                 + "c CREATE \"Résumé\"\r\nd LIST \"\" \"R*\"\r\n".encode())
    out = b""
    while b"d OK" not in out:
        out += f.readline()
    assert b"* ENABLED UTF8=ACCEPT" in out and b"c OK" in out, out
    assert '"Résumé"'.encode() in out, out
    sock.close()
    m = connect("carol")
    typ, data = m.list('""', "R*")
    assert any(b"R&AOk-sum&AOk-" in d for d in data), data
    m.logout()


@test
def imap4rev2_with_imaplib():
    """IMAP4rev2 (RFC 9051) with imaplib: advertised beside IMAP4rev1, ENABLE IMAP4rev2, then SELECT without RECENT
    or UNSEEN and with the mailbox's LIST, SEARCH answered by ESEARCH, a delivery over SMTP announced by EXISTS
    alone, no \\Recent in FETCH, STATUS DELETED and SIZE, RECENT refused; a rev1 session still sees the \\Recent."""
    s = system()
    m = connect("dave")
    assert "IMAP4REV1" in m.capabilities and "IMAP4REV2" in m.capabilities, m.capabilities  # imaplib upper-cases
    typ, data = m.enable("IMAP4rev2")
    assert typ == "OK" and m.untagged_responses.pop("ENABLED", [b""])[0] == b"IMAP4rev2", (typ, data)
    typ, data = m.select("INBOX")
    assert typ == "OK", data
    assert "RECENT" not in m.untagged_responses and b"UNSEEN" not in b" ".join(m.untagged_responses.get("OK", []))
    assert m.untagged_responses.pop("LIST", [b""])[-1].endswith(b'"/" "INBOX"'), m.untagged_responses
    before = int(data[0])
    s.send_mail("dave.dyer@example.com", "<rev2-1@outside.org>", subject="rev2 delivery")
    assert wait_for(lambda: m.noop()[0] == "OK" and "EXISTS" in m.untagged_responses, 10.0, 0.2)
    exists = int(m.untagged_responses.pop("EXISTS")[-1])
    assert exists == before + 1 and "RECENT" not in m.untagged_responses, m.untagged_responses
    typ, data = m._simple_command("SEARCH", "SUBJECT", '"rev2 delivery"')
    assert typ == "OK" and m.untagged_responses.pop("ESEARCH", [b""])[0].endswith(b" ALL %d" % exists), data
    assert "SEARCH" not in m.untagged_responses
    typ, data = m.fetch(str(exists), "(FLAGS)")
    assert typ == "OK" and b"\\Recent" not in data[0], data
    assert m.store(str(exists), "+FLAGS", "(\\Deleted)")[0] == "OK"
    typ, data = m._simple_command("STATUS", "INBOX", "(MESSAGES DELETED SIZE)")
    st = m.untagged_responses.pop("STATUS", [b""])[0]
    assert typ == "OK" and re.search(rb"MESSAGES %d DELETED 1 SIZE \d+" % exists, st), st
    try:
        m._simple_command("SEARCH", "NEW")
        raise AssertionError("SEARCH NEW accepted after ENABLE IMAP4rev2")
    except imaplib.IMAP4.error as e:
        assert "not IMAP4rev2 search keys" in str(e), e
    m.logout()
    r1 = connect("dave")
    r1.select("INBOX")
    typ, data = r1.search(None, "RECENT")
    assert typ == "OK" and data[0].split()[-1] == str(exists).encode(), data
    r1.logout()


@test
def objectid_and_preview_with_imaplib():
    """OBJECTID (RFC 8474) and PREVIEW (RFC 8970) with imaplib on mail delivered over SMTP: EMAILID, THREADID and the
    preview of the text; MAILBOXID from CREATE and STATUS, kept by RENAME; a copy keeps its EMAILID."""
    s = system()
    m = connect("carol")
    typ, caps = m.capability()
    assert typ == "OK" and b" OBJECTID PREVIEW" in caps[0], caps
    typ, data = m.create("ObjE2E")
    assert typ == "OK" and data[0].startswith(b"[MAILBOXID (F"), data
    created = data[0][len(b"[MAILBOXID ("):data[0].index(b")")]
    typ, data = m._simple_command("STATUS", "ObjE2E", "(MAILBOXID)")
    assert m.untagged_responses.pop("STATUS")[0] == b"ObjE2E (MAILBOXID (%s))" % created
    assert m.rename("ObjE2E", "ObjE2E-renamed")[0] == "OK"
    m._simple_command("STATUS", "ObjE2E-renamed", "(MAILBOXID)")
    assert m.untagged_responses.pop("STATUS")[0].endswith(b"(MAILBOXID (%s))" % created)
    s.send_mail("carol.cook@example.com", "<objectid-1@outside.org>", subject="objectid one")
    assert wait_for(lambda: s.imap_count("carol", PW["carol"], "<objectid-1@outside.org>") == 1, 10.0, 0.2)
    m.select("INBOX")
    typ, data = m.search(None, "HEADER", "Message-ID", "<objectid-1@outside.org>")
    n = data[0].split()[-1].decode()
    typ, data = m.fetch(n, "(EMAILID THREADID PREVIEW)")
    assert typ == "OK", data
    got = re.search(rb"EMAILID \((M[0-9a-f]{24})\) THREADID \((T[0-9a-f]{24})\) PREVIEW \"hello\"", data[0])
    assert got, data
    assert m.copy(n, "ObjE2E-renamed")[0] == "OK"
    m.select("ObjE2E-renamed")
    typ, data = m._simple_command("SEARCH", "EMAILID", got.group(1).decode())
    assert typ == "OK" and m.untagged_responses.pop("SEARCH")[0] == b"1", data
    m.logout()


@test
def savedate_with_imaplib():
    """SAVEDATE (RFC 8514) with imaplib: a message delivered over SMTP has today's save date, found by SAVEDON and
    SAVEDSINCE and not by SAVEDBEFORE."""
    s = system()
    m = connect("bob")
    typ, caps = m.capability()
    assert b" SAVEDATE" in caps[0], caps
    s.send_mail("bob.baker@example.com", "<savedate-1@outside.org>", subject="savedate one")
    assert wait_for(lambda: s.imap_count("bob", PW["bob"], "<savedate-1@outside.org>") == 1, 10.0, 0.2)
    m.select("INBOX")
    typ, data = m.search(None, "HEADER", "Message-ID", "<savedate-1@outside.org>")
    n = data[0].split()[-1]
    today = time.strftime("%d-%b-%Y", time.gmtime())
    typ, data = m.fetch(n.decode(), "(SAVEDATE)")
    assert typ == "OK" and b'SAVEDATE "%s ' % today.encode() in data[0], data
    typ, data = m.search(None, "SAVEDON", today, "SAVEDSINCE", today, "SAVEDATESUPPORTED")
    assert typ == "OK" and n in data[0].split(), data
    typ, data = m.search(None, "SAVEDBEFORE", today)
    assert typ == "OK" and n not in data[0].split(), data
    m.logout()


@test
def context_search_updates_with_imaplib():
    """CONTEXT=SEARCH (RFC 5267) with imaplib: UID SEARCH RETURN (UPDATE) UNSEEN, then a message delivered over SMTP
    arrives as ESEARCH ADDTO after its EXISTS, STORE \\Seen takes it out with REMOVEFROM, CANCELUPDATE ends it."""
    s = system()
    m = connect("carol")
    typ, caps = m.capability()
    assert b" CONTEXT=SEARCH CONTEXT=SORT" in caps[0], caps
    m.select("INBOX")
    tag = m._new_tag().decode()
    m.send(("%s UID SEARCH RETURN (UPDATE) UNSEEN SUBJECT \"context e2e\"\r\n" % tag).encode())
    lines = []
    while not lines or not lines[-1].startswith(tag.encode()):
        lines.append(m.readline())
    assert lines[-1].startswith(b"%s OK" % tag.encode()), lines
    assert lines[0] == b'* ESEARCH (TAG "%s") UID\r\n' % tag.encode(), lines
    s.send_mail("carol.cook@example.com", "<context-1@outside.org>", subject="context e2e")
    found = []
    def noop_sees_addto():
        m.noop()
        found.extend(m.untagged_responses.pop("ESEARCH", []))
        return any(b"ADDTO" in e for e in found)
    assert wait_for(noop_sees_addto, 10.0, 0.2), found
    uid = re.search(rb'UID ADDTO \(0 (\d+)\)', b" ".join(found)).group(1)
    m.uid("STORE", uid.decode(), "+FLAGS.SILENT", "(\\Seen)")
    removed = m.untagged_responses.pop("ESEARCH", [])
    assert removed == [b'(TAG "%s") UID REMOVEFROM (0 %s)' % (tag.encode(), uid)], removed
    imaplib.Commands.setdefault("CANCELUPDATE", ("SELECTED",))  # imaplib knows only the commands it lists
    typ, data = m._simple_command("CANCELUPDATE", '"%s"' % tag)
    assert typ == "OK", data
    m.uid("STORE", uid.decode(), "-FLAGS.SILENT", "(\\Seen)")
    assert "ESEARCH" not in m.untagged_responses
    m.logout()


@test
def metadata_with_imaplib():
    """METADATA and METADATA-SERVER (RFC 5464) with imaplib, the RFC's examples: SETMETADATA of a server and a
    mailbox comment, GETMETADATA with DEPTH and MAXSIZE (LONGENTRIES), the special-use entry of RFC 6154, and the
    entries of another session of the same user (they are in the store, not in the session)."""
    m = connect("bob")
    typ, caps = m.capability()
    assert b" METADATA METADATA-SERVER" in caps[0], caps
    for name, state in (("GETMETADATA", ("AUTH", "SELECTED")), ("SETMETADATA", ("AUTH", "SELECTED"))):
        imaplib.Commands.setdefault(name, state)  # imaplib knows only the commands it lists
    typ, data = m._simple_command("SETMETADATA", '""', '(/shared/comment "Shared comment")')
    assert typ == "OK", data
    typ, data = m._simple_command("SETMETADATA", "INBOX", '(/private/comment "My own comment" '
                                  '/private/vendor/x/big "0123456789abcdef")')
    assert typ == "OK", data
    m.logout()
    m = connect("bob")
    typ, data = m._simple_command("GETMETADATA", '""', "/shared/comment")
    assert typ == "OK" and m.untagged_responses.pop("METADATA") == [b'"" (/shared/comment "Shared comment")'], data
    typ, data = m._simple_command("GETMETADATA", "(MAXSIZE 15 DEPTH infinity)", "INBOX", "/private")
    assert typ == "OK" and b"[METADATA LONGENTRIES 16]" in data[0], data
    got = m.untagged_responses.pop("METADATA")  # the untagged response, then the response code
    assert got == [b'"INBOX" (/private/comment "My own comment")', b"LONGENTRIES 16"], got
    typ, data = m._simple_command("GETMETADATA", "Sent", "/private/specialuse")
    got = m.untagged_responses.pop("METADATA")
    assert typ == "OK" and got == [b'"Sent" (/private/specialuse "\\\\Sent")'], got
    m.logout()


@test
def notify_with_imaplib():
    """NOTIFY (RFC 5465) with imaplib: NOTIFY SET STATUS answers each folder at once; a message delivered over SMTP to
    INBOX, not selected, arrives as an unsolicited STATUS while the client sends nothing; a folder created by another
    connection as LIST; NOTIFY NONE."""
    s = system()
    m = connect("carol")
    typ, caps = m.capability()
    assert b" NOTIFY" in caps[0], caps
    imaplib.Commands.setdefault("NOTIFY", ("AUTH", "SELECTED"))  # imaplib knows only the commands it lists
    typ, data = m._simple_command("NOTIFY", "SET", "STATUS", "(INBOXES (MessageNew MessageExpunge))",
                                  "(PERSONAL (MailboxName))")
    assert typ == "OK", data
    before = [x for x in m.untagged_responses.pop("STATUS", []) if x.startswith(b'"INBOX"')]
    assert len(before) == 1, before
    s.send_mail("carol.cook@example.com", "<notify-1@outside.org>", subject="notify one")
    m.sock.settimeout(10)
    line = m.readline()  # unsolicited, with no command sent
    assert line.startswith(b'* STATUS "INBOX" (MESSAGES '), line
    assert line != b"* STATUS " + before[0] + b"\r\n", (line, before)
    other = connect("carol")
    assert other.create("NotifyE2E")[0] == "OK"
    other.logout()
    line = m.readline()
    assert line == b'* LIST () "/" "NotifyE2E"\r\n', line
    typ, data = m._simple_command("NOTIFY", "NONE")
    assert typ == "OK", data
    m.logout()


@test
def compress_deflate():
    import zlib
    s = system()
    sock = socket.create_connection(("127.0.0.1", s.ports["imap"]), timeout=10)
    f = sock.makefile("rb")
    f.readline()
    sock.sendall(b"a LOGIN bob " + PW["bob"].encode() + b"\r\n")
    line = f.readline()
    assert b"COMPRESS=DEFLATE" in line, line
    sock.sendall(b"b COMPRESS DEFLATE\r\n")
    assert f.readline().startswith(b"b OK"), "no OK to COMPRESS"
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    dec = zlib.decompressobj(-15)

    def send(data):
        sock.sendall(comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH))

    def read_until(tag):
        out = b""
        while tag not in out:
            chunk = sock.recv(65536)
            assert chunk, out
            out += dec.decompress(chunk)
        return out

    send(b"c CAPABILITY\r\nd SELECT INBOX\r\n")
    out = read_until(b"d OK")
    assert b"COMPRESS=DEFLATE" not in out and b"* CAPABILITY" in out, out
    big = b"Subject: compressed\r\n\r\n" + b"all work and no play " * 5000 + b"\r\n"
    send(b"e APPEND INBOX {%d+}\r\n" % len(big) + big + b"\r\nf UID SEARCH SUBJECT compressed\r\n")
    out = read_until(b"f OK")
    uid = re.search(rb"\* SEARCH (\d+)", out).group(1)
    send(b"g UID FETCH " + uid + b" BODY.PEEK[]\r\nh COMPRESS DEFLATE\r\ni IDLE\r\n")
    out = read_until(b"+ idling")
    assert big in out and b"h NO [COMPRESSIONACTIVE]" in out, out[-300:]
    send(b"DONE\r\nj LOGOUT\r\n")
    out = read_until(b"j OK")
    assert b"i OK" in out, out
    sock.close()


def local_non_loopback_address():
    """An address of this machine that is not loopback (the route to a public address), or None."""
    try:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.connect(("192.0.2.1", 9))
        addr = u.getsockname()[0]
        u.close()
        return None if addr.startswith("127.") else addr
    except OSError:
        return None


@test
def logindisabled_without_tls_off_loopback():
    addr = local_non_loopback_address()
    if addr is None:
        skip("no non-loopback address on this machine")
    t = System(start=False)
    conf = os.path.join(t.data, "interchange.conf")
    text = open(conf).read().replace("listen=127.0.0.1", "listen=0.0.0.0")
    open(conf, "w").write(text)
    t.start()
    t.cli("user", "add", "frank", "--given", "Frank", "--surname", "Fox", "--password", "pw-frank6", check=True)
    assert "listen=0.0.0.0" in text, text
    def connects():
        try:
            for port in (t.ports["imap"], t.ports["pop3"]):
                socket.create_connection((addr, port), timeout=2).close()
            return True
        except OSError:
            return False
    assert wait_for(connects, 30.0, 0.2), "imapd or pop3d does not listen on %s: %s %s %s" % (
        addr, t.log("imapd")[-600:], t.log("pop3d")[-600:], t.log("attendant")[-600:])
    m = imaplib.IMAP4(addr, t.ports["imap"])
    assert b"LOGINDISABLED" in m.welcome and b"AUTH=PLAIN" not in m.welcome, m.welcome
    try:
        m.login("frank", "pw-frank6")
        raise AssertionError("plaintext LOGIN accepted off loopback")
    except imaplib.IMAP4.error as e:
        assert "PRIVACYREQUIRED" in str(e), e
    m.starttls(ssl_context=tls_ctx())
    typ, caps = m.capability()
    assert b"LOGINDISABLED" not in caps[0] and b"AUTH=PLAIN" in caps[0], caps
    assert wait_for(lambda: login_on(m, "frank", "pw-frank6"), 10.0, 0.5)
    m.logout()
    p = poplib.POP3(addr, t.ports["pop3"])
    assert "USER" not in p.capa()
    try:
        p.user("frank")
        raise AssertionError("USER accepted off loopback without TLS")
    except poplib.error_proto as e:
        assert b"STLS" in e.args[0], e
    p.stls(context=tls_ctx())
    p.user("frank")
    p.pass_("pw-frank6")
    p.quit()
    t.destroy()


def login_on(m, user, pw):
    try:
        m.login(user, pw)
        return True
    except imaplib.IMAP4.error:
        return False


@test
def login_throttling_per_address():
    s = system()
    def attempt(pw):
        sock = socket.socket()
        sock.bind(("127.0.0.9", 0))
        sock.connect(("127.0.0.1", s.ports["imap"]))
        f = sock.makefile("rwb")
        f.readline()
        f.write(b"t LOGIN bob " + pw.encode() + b"\r\n")
        f.flush()
        line = f.readline()
        sock.close()
        return line
    for _ in range(10):
        assert b"AUTHENTICATIONFAILED" in attempt("wrong")
    line = attempt(PW["bob"])
    assert b"t NO [UNAVAILABLE] Temporarily blocked" in line, line  # bob from this address: blocked, not "wrong"
    log = open(os.path.join(s.data, "log", "imapd.log")).read()
    assert "login refused from 127.0.0.9" in log, log[-500:]
    assert imap_login_ok("bob", PW["bob"])  # other addresses are not affected


@test
def stop_with_clients_connected():
    """A stop while IMAP (IDLE, and before login) and POP3 sessions are open says goodbye and exits cleanly."""
    t = System()
    t.cli("user", "add", "gina", "--given", "Gina", "--surname", "Gray", "--password", "pw-gina77", check=True)

    def logged_in():
        try:
            m = imaplib.IMAP4("127.0.0.1", t.ports["imap"])
            m.login("gina", "pw-gina77")
            return m
        except (imaplib.IMAP4.error, OSError):
            return None
    m = wait_for(logged_in, 10.0, 0.5)
    assert m, "login"
    m.select("INBOX")
    m.send(b"i IDLE\r\n")
    m.readline()
    p = poplib.POP3("127.0.0.1", t.ports["pop3"])
    p.user("gina")
    p.pass_("pw-gina77")
    raw = socket.create_connection(("127.0.0.1", t.ports["imap"]), timeout=5)
    raw.recv(1024)
    t.stop()
    assert b"BYE" in m.readline()
    assert b"BYE" in raw.recv(1024)
    for name in ("imapd", "pop3d"):
        log = open(os.path.join(t.data, "log", name + ".log")).read()
        assert "stopped" in log.splitlines()[-1] and "Sanitizer" not in log, log[-600:]
    raw.close()
    t.destroy()


if __name__ == "__main__":
    main("imap")
