#!/usr/bin/env python3
"""imap_stress.py - concurrent IMAP stress with a model: N clients (one process each) over a few shared mailboxes
do what mail clients do (LOGIN, SELECT, FETCH FLAGS/ENVELOPE/BODY.PEEK, STORE +/-FLAGS with system flags and
keywords, APPEND, EXPUNGE, SEARCH, STATUS of the other mailbox, IDLE, NOOP, LOGOUT) and check every untagged
response against their own model of the mailbox:
  - a keyword in a FETCH's FLAGS was announced by a * FLAGS before (RFC 3501 7.2.6);
  - EXISTS never shrinks, EXPUNGE and FETCH name a message the session knows (n <= count), a sequence number keeps
    its UID, UIDs grow with the sequence numbers (RFC 3501 2.3.1.2);
  - a UID is never reused: one UID, one Message-ID, in every session; an expunged UID never comes back;
  - \\Recent belongs to one session only (RFC 3501 2.3.2);
  - a message's MODSEQ never goes back, and changes with every flag change; one MODSEQ of a message means one set
    of flags in every session (RFC 7162 3); HIGHESTMODSEQ and UIDNEXT never go back;
  - UIDVALIDITY stays; SEARCH names only known messages; no BAD to a valid command.
Works against any IMAP4rev1 server with UIDPLUS and CONDSTORE (Interchange, Dovecot).

Usage (library): run(host, port, users, password, clients=20, secs=20, user_fmt="user%04d") returns a Result;
print_report(result) prints the figures. Command line: imap_stress.py --port P [--clients N] [--secs S] ...
Exit status 1 when an inconsistency was found."""
import argparse
import multiprocessing as mp
import os
import random
import re
import socket
import sys
import time

MAILBOXES = ("INBOX", "Stress")
KEYWORDS = ("$Stress1", "$Stress2", "Work", "Later", "$Forwarded", "$MDNSent")
SYSFLAGS = ("\\Seen", "\\Flagged", "\\Answered", "\\Draft")
CLASSES = ("login", "select", "fetch", "store", "append", "expunge", "search", "status", "idle", "noop", "logout")
MAX_MSGS = 40        # a mailbox grows to about this many messages, then clients expunge
KEEP_ISSUES = 200    # inconsistencies kept per client (all are counted)
# what was checked, counted so that a run which checked nothing shows it
CHECKS = ("fetch", "keyword", "modseq", "recent", "exists", "expunge", "uid", "search", "status")


class Inconsistent(Exception):
    pass


class LoginRefused(Exception):
    """A refused LOGIN (a server's limit): counted with the NO answers, then the client tries again."""


# ---- the response parser ----

class Conn:
    """One IMAP connection: sends commands, reads responses into parsed untagged items and the tagged result."""

    def __init__(self, host, port, timeout=30.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.tagn = 0
        greeting = self.line()
        if not greeting.startswith(b"* OK"):
            raise Inconsistent("greeting: %r" % greeting[:80])

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def fill(self):
        d = self.sock.recv(262144)
        if not d:
            raise EOFError("connection closed by the server")
        self.buf += d

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                ln, self.buf = self.buf[:i], self.buf[i + 2:]
                return ln
            self.fill()

    def take(self, n):
        while len(self.buf) < n:
            self.fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def response(self):
        """One whole response: its text with each literal replaced by a marker, and the literals."""
        parts, lits = [], []
        while True:
            ln = self.line()
            m = re.search(rb"~?\{(\d+)\+?\}$", ln)
            if not m:
                parts.append(ln)
                return b"".join(parts), lits
            parts.append(ln[:m.start()] + b"\x00%d\x00" % len(lits))
            lits.append(self.take(int(m.group(1))))

    def send(self, text):
        self.sock.sendall(text)

    def tag(self):
        self.tagn += 1
        return "a%d" % self.tagn


def tokens(text, lits):
    """Parses a response's text into nested lists of str / bytes (literals, quoted) / None (NIL)."""
    pos, n = 0, len(text)
    stack = [[]]
    while pos < n:
        c = text[pos:pos + 1]
        if c == b" ":
            pos += 1
        elif c == b"(":
            stack.append([])
            pos += 1
        elif c == b")":
            lst = stack.pop()
            stack[-1].append(lst)
            pos += 1
        elif c == b"\"":
            j, out = pos + 1, bytearray()
            while text[j:j + 1] != b"\"":
                if text[j:j + 1] == b"\\":
                    j += 1
                out += text[j:j + 1]
                j += 1
            stack[-1].append(bytes(out))
            pos = j + 1
        elif c == b"\x00":
            j = text.index(b"\x00", pos + 1)
            stack[-1].append(lits[int(text[pos + 1:j])])
            pos = j + 1
        else:
            j, depth = pos, 0
            while j < n:
                ch = text[j:j + 1]
                if ch == b"[":
                    depth += 1
                elif ch == b"]":
                    depth -= 1
                elif depth == 0 and ch in (b" ", b"(", b")"):
                    break
                j += 1
            atom = text[pos:j].decode("latin-1")
            stack[-1].append(None if atom.upper() == "NIL" else atom)
            pos = j
    while len(stack) > 1:
        lst = stack.pop()
        stack[-1].append(lst)
    return stack[0]


def fetch_items(lst):
    """A FETCH response's item list as a dict: name (upper case, BODY[...] as given) -> value."""
    out = {}
    for i in range(0, len(lst) - 1, 2):
        k = lst[i].upper() if isinstance(lst[i], str) else str(lst[i])
        out[k] = lst[i + 1]
    return out


# ---- one client's model of its selected mailbox ----

class Session:
    def __init__(self, worker, sid):
        self.w = worker
        self.sid = sid
        self.mbox = None
        self.uids = []          # sequence number - 1 -> UID (None: not learnt yet)
        self.flags = {}         # UID -> (modseq, frozenset of flags without \Recent)
        self.announced = set()  # the latest * FLAGS
        self.expunged = set()   # UIDs this session saw expunged
        self.readonly = False
        self.uidvalidity = None

    def issue(self, what):
        self.w.issue("%s [%s %s]" % (what, self.sid, self.mbox))

    def reset(self, mbox, readonly):
        self.mbox, self.readonly = mbox, readonly
        self.uids, self.flags, self.announced, self.expunged = [], {}, set(), set()
        self.uidvalidity = None

    # untagged responses of a selected session
    def on_exists(self, n):
        self.w.checked["exists"] += 1
        if n < len(self.uids):
            self.issue("EXISTS %d below the %d messages known (EXISTS never shrinks without EXPUNGE)"
                       % (n, len(self.uids)))
            return
        self.uids.extend([None] * (n - len(self.uids)))

    def on_expunge(self, n):
        self.w.checked["expunge"] += 1
        if not 1 <= n <= len(self.uids):
            self.issue("EXPUNGE %d for a message the session does not know (%d messages)" % (n, len(self.uids)))
            return
        uid = self.uids.pop(n - 1)
        if uid is not None:
            self.expunged.add(uid)
            self.flags.pop(uid, None)

    def learn_uid(self, n, uid):
        self.w.checked["uid"] += 1
        known = self.uids[n - 1]
        if known is not None:
            if known != uid:
                self.issue("message %d changed its UID from %d to %d" % (n, known, uid))
            return
        if uid in self.expunged:
            self.issue("UID %d came back after its EXPUNGE (as message %d)" % (uid, n))
        before = [u for u in self.uids[:n - 1] if u is not None]
        after = [u for u in self.uids[n:] if u is not None]
        if (before and before[-1] >= uid) or (after and after[0] <= uid):
            self.issue("UID %d at message %d is out of order (before %s, after %s)"
                       % (uid, n, before[-1:] or "-", after[:1] or "-"))
        self.uids[n - 1] = uid

    def on_fetch(self, n, items):
        self.w.checked["fetch"] += 1
        if not 1 <= n <= len(self.uids):
            self.issue("FETCH %d for a message the session does not know (%d messages)" % (n, len(self.uids)))
            return
        uid = items.get("UID")
        if uid is not None:
            self.learn_uid(n, int(uid))
        uid = self.uids[n - 1]
        env = items.get("ENVELOPE")
        if env is not None and uid is not None and isinstance(env, list) and len(env) > 9:
            mid = env[9]
            if isinstance(mid, bytes):
                self.w.saw_msgid(self.mbox, self.uidvalidity, uid, mid.decode("latin-1"))
        fl = items.get("FLAGS")
        if fl is None:
            return
        if not isinstance(fl, list):
            self.issue("FETCH %d FLAGS is not a list: %r" % (n, fl))
            return
        flags = frozenset(f for f in fl if isinstance(f, str))
        for f in flags:
            if not f.startswith("\\"):
                self.w.checked["keyword"] += 1
            if not f.startswith("\\") and f not in self.announced:
                self.issue("FETCH %d carries keyword %s, not in the FLAGS announced (%s)"
                           % (n, f, " ".join(sorted(self.announced))))
        # a read-only session may show \Recent without taking it (RFC 3501 6.3.2): only read-write ones count
        if "\\Recent" in flags and uid is not None and not self.readonly:
            self.w.checked["recent"] += 1
            self.w.saw_recent(self.mbox, self.uidvalidity, uid, self.sid)
        flags = flags - {"\\Recent"}
        ms = items.get("MODSEQ")
        if ms is None or uid is None:
            return
        modseq = int(ms[0]) if isinstance(ms, list) else int(ms)
        prev = self.flags.get(uid)
        self.w.checked["modseq"] += 1
        if prev is not None:
            if modseq < prev[0]:
                self.issue("UID %d MODSEQ went back from %d to %d" % (uid, prev[0], modseq))
            elif modseq == prev[0] and flags != prev[1]:
                self.issue("UID %d flags changed (%s -> %s) with MODSEQ unchanged at %d"
                           % (uid, " ".join(sorted(prev[1])), " ".join(sorted(flags)), modseq))
        self.flags[uid] = (max(modseq, prev[0] if prev else 0), flags)
        self.w.saw_modseq(self.mbox, self.uidvalidity, uid, modseq, flags)


# ---- one client ----

class Worker:
    def __init__(self, cfg, wid):
        self.cfg = cfg
        self.wid = wid
        self.rnd = random.Random(cfg["seed"] * 1000 + wid)
        self.counts = dict.fromkeys(CLASSES, 0)
        self.lat = {c: [] for c in CLASSES}
        self.nos = []
        self.issues = []
        self.n_issues = 0
        self.msgids = {}     # (user, mbox, uidvalidity, uid) -> Message-ID
        self.recent = {}     # (user, mbox, uidvalidity, uid) -> session id
        self.modseqs = {}    # (user, mbox, uidvalidity, uid, modseq) -> flags
        self.highest = {}    # (user, mbox) -> (highest UIDNEXT, highest HIGHESTMODSEQ) seen by this client
        self.appended = 0
        self.checked = dict.fromkeys(CHECKS, 0)
        self.user = None
        self.s = None

    def issue(self, text):
        self.n_issues += 1
        if len(self.issues) < KEEP_ISSUES:
            self.issues.append(text)

    def key(self, mbox, uidvalidity, uid):
        return (self.user, mbox, uidvalidity, uid)

    def saw_msgid(self, mbox, uv, uid, mid):
        k = self.key(mbox, uv, uid)
        old = self.msgids.setdefault(k, mid)
        if old != mid:
            self.issue("UID %d of %s/%s is %s and %s (a UID reused)" % (uid, self.user, mbox, old, mid))

    def saw_recent(self, mbox, uv, uid, sid):
        old = self.recent.setdefault(self.key(mbox, uv, uid), sid)
        if old != sid:
            self.issue("UID %d of %s/%s is \\Recent in sessions %s and %s" % (uid, self.user, mbox, old, sid))

    def saw_modseq(self, mbox, uv, uid, modseq, flags):
        old = self.modseqs.setdefault(self.key(mbox, uv, uid) + (modseq,), flags)
        if old != flags:
            self.issue("UID %d of %s/%s MODSEQ %d has flags (%s) and (%s)" % (
                uid, self.user, mbox, modseq, " ".join(sorted(old)), " ".join(sorted(flags))))

    def saw_counters(self, mbox, uidnext=None, highestmodseq=None, what=""):
        k = (self.user, mbox)
        hu, hm = self.highest.get(k, (0, 0))
        if uidnext is not None:
            if uidnext < hu:
                self.issue("%s UIDNEXT %d of %s/%s below %d seen before" % (what, uidnext, self.user, mbox, hu))
            hu = max(hu, uidnext)
        if highestmodseq is not None:
            if highestmodseq < hm:
                self.issue("%s HIGHESTMODSEQ %d of %s/%s below %d seen before"
                           % (what, highestmodseq, self.user, mbox, hm))
            hm = max(hm, highestmodseq)
        self.highest[k] = (hu, hm)

    def max_uid_seen(self, mbox):
        return max(((u + 1) for (usr, m, _, u) in self.msgids if usr == self.user and m == mbox), default=0)

    # ---- sending a command and checking what comes back ----

    def command(self, cls, text, literal=None, idle=None):
        c = self.conn
        tag = c.tag()
        t0 = time.perf_counter()
        if literal is not None:
            c.send(("%s %s {%d}\r\n" % (tag, text, len(literal))).encode())
            r, _ = c.response()
            if not r.startswith(b"+"):
                raise Inconsistent("%s: no continuation for the literal: %r" % (text[:30], r[:100]))
            c.send(literal + b"\r\n")
        else:
            c.send(("%s %s\r\n" % (tag, text)).encode())
        untagged = []
        while True:
            r, lits = c.response()
            if r.startswith(b"+"):
                if idle is None:
                    raise Inconsistent("%s: unexpected continuation %r" % (text[:30], r[:100]))
                time.sleep(idle)
                c.send(b"DONE\r\n")
                continue
            if r.startswith(b"* "):
                toks = tokens(r[2:], lits)
                untagged.append(toks)
                self.untagged(toks, r)
                continue
            if r.startswith(tag.encode() + b" "):
                break
            raise Inconsistent("%s: unexpected line %r" % (text[:30], r[:100]))
        dt = time.perf_counter() - t0
        self.lat[cls].append(dt)
        self.counts[cls] += 1
        status = r[len(tag) + 1:]
        word = status.split(b" ", 1)[0].upper()
        if word == b"BAD":
            self.issue("%s answered %s" % (text[:60], status[:120].decode("latin-1")))
        elif word == b"NO":
            self.nos.append("%s: %s" % (text[:40], status[:100].decode("latin-1")))
        return word == b"OK", status.decode("latin-1"), untagged

    def untagged(self, t, raw):
        s = self.s
        if len(t) >= 2 and isinstance(t[0], str) and t[0].isdigit() and isinstance(t[1], str):
            n, what = int(t[0]), t[1].upper()
            if s.mbox is None:
                self.issue("%s %d outside a selected mailbox" % (what, n))
            elif what == "EXISTS":
                s.on_exists(n)
            elif what == "EXPUNGE":
                s.on_expunge(n)
            elif what == "FETCH":
                s.on_fetch(n, fetch_items(t[2]) if len(t) > 2 and isinstance(t[2], list) else {})
            elif what == "RECENT":
                if n > len(s.uids):
                    s.issue("RECENT %d above the %d messages" % (n, len(s.uids)))
            return
        if not t or not isinstance(t[0], str):
            self.issue("unparsed response %r" % raw[:100])
            return
        what = t[0].upper()
        if what == "FLAGS" and len(t) > 1 and isinstance(t[1], list):
            s.announced = set(f for f in t[1] if isinstance(f, str))
        elif what == "OK" and len(t) > 1 and isinstance(t[1], str) and t[1].startswith("["):
            code = t[1].strip("[]").upper()
            arg = t[2] if len(t) > 2 else None
            if code == "UIDVALIDITY" and isinstance(arg, str) and s.mbox is not None:
                uv = int(arg.rstrip("]"))
                known = self.uidvalidities.setdefault((self.user, s.mbox), uv)
                if known != uv:
                    s.issue("UIDVALIDITY changed from %d to %d" % (known, uv))
                s.uidvalidity = uv
            elif code == "UIDNEXT" and isinstance(arg, str) and s.mbox is not None:
                self.saw_counters(s.mbox, uidnext=int(arg.rstrip("]")), what="SELECT")
            elif code == "HIGHESTMODSEQ" and isinstance(arg, str) and s.mbox is not None:
                self.saw_counters(s.mbox, highestmodseq=int(arg.rstrip("]")), what="SELECT")
        elif what == "SEARCH":
            self.checked["search"] += 1
            for x in t[1:]:
                if isinstance(x, str) and x.isdigit() and not 1 <= int(x) <= len(s.uids):
                    s.issue("SEARCH names message %s of %d" % (x, len(s.uids)))
        elif what == "STATUS" and len(t) > 2 and isinstance(t[2], list):
            mbox = t[1].decode() if isinstance(t[1], bytes) else t[1]
            self.checked["status"] += 1
            it = dict(zip([str(x).upper() for x in t[2][0::2]], [int(x) for x in t[2][1::2]]))
            if it.get("RECENT", 0) > it.get("MESSAGES", 0):
                self.issue("STATUS %s RECENT %d above MESSAGES %d" % (mbox, it["RECENT"], it["MESSAGES"]))
            self.saw_counters(mbox, it.get("UIDNEXT"), it.get("HIGHESTMODSEQ"), "STATUS")
            if "UIDNEXT" in it and it["UIDNEXT"] < self.max_uid_seen(mbox):
                self.issue("STATUS %s UIDNEXT %d not above UID %d already given"
                           % (mbox, it["UIDNEXT"], self.max_uid_seen(mbox) - 1))
        elif what in ("BYE",):
            pass

    # ---- the workload ----

    def login(self):
        # each client keeps to one user (servers limit connections per user): users share evenly among clients
        self.user = self.cfg["user_fmt"] % (self.wid % self.cfg["users"] + 1)
        self.conn = Conn(self.cfg["host"], self.cfg["port"])
        self.nconn = getattr(self, "nconn", 0) + 1
        self.s = Session(self, "c%d.%d" % (self.wid, self.nconn))
        ok, st, _ = self.command("login", "LOGIN %s %s" % (self.user, self.cfg["password"]))
        if not ok:
            raise LoginRefused("LOGIN %s: %s" % (self.user, st))
        self.command("noop", "ENABLE CONDSTORE")

    def select(self, mbox, readonly=False):
        self.s.reset(mbox, readonly)
        ok, st, _ = self.command("select", "%s %s" % ("EXAMINE" if readonly else "SELECT", mbox))
        if not ok:
            self.s.mbox = None
            return False
        self.command("fetch", "FETCH 1:* (UID FLAGS MODSEQ)") if self.s.uids else None
        return True

    def seqs(self):
        return len(self.s.uids)

    def message(self, mbox):
        self.appended += 1
        mid = "<stress-%d-%d-%d@example.com>" % (os.getpid(), self.wid, self.appended)
        body = "".join("line %d of a stress message %s\r\n" % (i, "z" * 30) for i in range(self.rnd.randint(3, 60)))
        return mid, ("From: Stress Tester <stress@example.com>\r\nTo: %s@example.com\r\n"
                     "Subject: stress %d\r\nMessage-ID: %s\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n\r\n%s"
                     % (self.user, self.appended, mid, body)).encode()

    def op_append(self):
        mbox = self.rnd.choice(MAILBOXES) if self.rnd.random() < 0.3 else (self.s.mbox or "INBOX")
        mid, msg = self.message(mbox)
        flags = "(%s) " % self.rnd.choice(KEYWORDS) if self.rnd.random() < 0.2 else ""
        ok, st, _ = self.command("append", "APPEND %s %s" % (mbox, flags), literal=msg)
        m = re.search(r"\[APPENDUID (\d+) (\d+)\]", st)
        if ok and m:
            self.uidvalidities.setdefault((self.user, mbox), int(m.group(1)))
            self.saw_msgid(mbox, int(m.group(1)), int(m.group(2)), mid)
        elif ok:
            self.issue("APPEND to %s answered without APPENDUID: %s" % (mbox, st[:80]))

    def some(self, k=3):
        n = self.seqs()
        a = self.rnd.randint(1, n)
        return "%d:%d" % (a, min(n, a + self.rnd.randint(0, k))) if self.rnd.random() < 0.5 else str(a)

    def op_store(self):
        sign = self.rnd.choice("+-")
        pool = KEYWORDS if self.rnd.random() < 0.5 else SYSFLAGS
        flags = " ".join(self.rnd.sample(pool, self.rnd.randint(1, 2)))
        self.command("store", "STORE %s %sFLAGS (%s)" % (self.some(), sign, flags))

    def op_fetch(self):
        r = self.rnd.random()
        if r < 0.3:
            self.command("fetch", "FETCH 1:* (UID FLAGS MODSEQ)")
        elif r < 0.6:
            self.command("fetch", "FETCH %s (UID FLAGS ENVELOPE RFC822.SIZE INTERNALDATE)" % self.some(8))
        elif r < 0.8:
            self.command("fetch", "FETCH %s (UID BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])" % self.some(8))
        else:
            self.command("fetch", "FETCH %d (UID FLAGS BODY.PEEK[])" % self.rnd.randint(1, self.seqs()))

    def op_expunge(self):
        n = self.seqs()
        k = max(1, n - MAX_MSGS // 2) if n > MAX_MSGS else 1
        a = self.rnd.randint(1, max(1, n - k + 1))
        self.command("store", "STORE %d:%d +FLAGS.SILENT (\\Deleted)" % (a, min(n, a + k - 1)))
        self.command("expunge", "EXPUNGE")

    def op_search(self):
        crit = self.rnd.choice(("UNSEEN", "FLAGGED", "KEYWORD %s" % self.rnd.choice(KEYWORDS), "SUBJECT stress",
                                "FROM stress", "NOT DELETED SINCE 1-Jan-2020", "MODSEQ 1"))
        self.command("search", "SEARCH %s" % crit)

    def op_status(self):
        other = [m for m in MAILBOXES if m != self.s.mbox]
        self.command("status", "STATUS %s (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)"
                     % self.rnd.choice(other))

    def op_idle(self):
        self.command("idle", "IDLE", idle=self.rnd.uniform(0.02, 0.15))

    def op_noop(self):
        self.command("noop", "NOOP")

    def op_select(self):
        self.select(self.rnd.choice(MAILBOXES), readonly=self.rnd.random() < 0.1)

    OPS = (("fetch", 25), ("store", 22), ("append", 9), ("expunge", 4), ("search", 8), ("status", 6),
           ("noop", 6), ("idle", 3), ("select", 5))

    def step(self):
        if self.s.mbox is None:
            self.op_select()
            return
        names = [o for o, w in self.OPS for _ in range(w)]
        op = self.rnd.choice(names)
        if self.seqs() == 0 and op in ("fetch", "store", "expunge"):
            op = "append"
        if op == "append" and self.seqs() > MAX_MSGS:
            op = "expunge"
        if self.s.readonly and op in ("store", "expunge"):
            op = "select"
        getattr(self, "op_" + op)()

    def run(self, deadline):
        self.uidvalidities = {}
        self.conn = None
        while time.time() < deadline:
            try:
                self.login()
                for _ in range(self.rnd.randint(20, 60)):
                    if time.time() >= deadline:
                        break
                    self.step()
                self.command("logout", "LOGOUT")
            except LoginRefused:
                time.sleep(0.05)
            except (OSError, EOFError, Inconsistent) as e:
                self.issue("client %d: %s: %s" % (self.wid, type(e).__name__, e))
                time.sleep(0.05)
            finally:
                if self.conn is not None:
                    self.conn.close()
                    self.conn = None

    def result(self):
        return {"counts": self.counts, "lat": self.lat, "nos": self.nos[:20], "n_nos": len(self.nos),
                "issues": self.issues, "n_issues": self.n_issues, "checked": self.checked, "msgids": self.msgids, "recent": self.recent,
                "modseqs": self.modseqs}


def worker_main(cfg, wid, deadline, q):
    w = Worker(cfg, wid)
    try:
        w.run(deadline)
    except Exception as e:  # noqa: BLE001 - a crash of the driver itself is reported as what it is
        w.issue("driver error in client %d: %s: %s" % (wid, type(e).__name__, e))
    q.put(w.result())


# ---- the run and its report ----

class Result:
    pass


def prepare(host, port, users, password, user_fmt):
    """Creates the second mailbox of every user (an existing one is fine)."""
    for u in range(1, users + 1):
        c = Conn(host, port)
        w = Worker({"seed": 0}, 0)
        w.conn = c
        w.s = Session(w, "prep")
        w.uidvalidities = {}
        ok, st, _ = w.command("login", "LOGIN %s %s" % (user_fmt % u, password))
        if not ok:
            raise RuntimeError("LOGIN %s: %s" % (user_fmt % u, st))
        for m in MAILBOXES[1:]:
            w.command("select", "CREATE %s" % m)
        w.command("logout", "LOGOUT")
        c.close()


def run(host, port, users, password, clients=20, secs=20.0, user_fmt="user%04d", seed=1, prepare_first=True):
    if prepare_first:
        prepare(host, port, users, password, user_fmt)
    cfg = {"host": host, "port": port, "users": users, "password": password, "user_fmt": user_fmt, "seed": seed}
    q = mp.Queue()
    t0 = time.time()
    procs = [mp.Process(target=worker_main, args=(cfg, i, t0 + secs, q)) for i in range(clients)]
    for p in procs:
        p.start()
    parts = [q.get() for _ in procs]
    for p in procs:
        p.join()
    r = Result()
    r.elapsed = time.time() - t0
    r.clients = clients
    r.counts = dict.fromkeys(CLASSES, 0)
    r.lat = {c: [] for c in CLASSES}
    r.issues, r.n_issues, r.nos, r.n_nos = [], 0, [], 0
    r.checked = dict.fromkeys(CHECKS, 0)
    msgids, recent, modseqs = {}, {}, {}
    for p in parts:
        for c in CLASSES:
            r.counts[c] += p["counts"][c]
            r.lat[c].extend(p["lat"][c])
        r.issues.extend(p["issues"])
        r.n_issues += p["n_issues"]
        r.nos.extend(p["nos"])
        r.n_nos += p["n_nos"]
        for k in CHECKS:
            r.checked[k] += p["checked"][k]
        # what only shows across clients: a UID given to two messages, \Recent in two sessions, one MODSEQ
        # of a message with two sets of flags
        for k, v in p["msgids"].items():
            if msgids.setdefault(k, v) != v:
                r.n_issues += 1
                r.issues.append("UID %d of %s/%s is %s and %s (a UID reused)" % (k[3], k[0], k[1], msgids[k], v))
        for k, v in p["recent"].items():
            if recent.setdefault(k, v) != v:
                r.n_issues += 1
                r.issues.append("UID %d of %s/%s is \\Recent in sessions %s and %s"
                                % (k[3], k[0], k[1], recent[k], v))
        for k, v in p["modseqs"].items():
            if modseqs.setdefault(k, v) != v:
                r.n_issues += 1
                r.issues.append("UID %d of %s/%s MODSEQ %d has flags (%s) and (%s)" % (
                    k[3], k[0], k[1], k[4], " ".join(sorted(modseqs[k])), " ".join(sorted(v))))
    r.total = sum(r.counts.values())
    return r


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))] * 1000.0 if xs else 0.0


def avg(xs):
    return sum(xs) * 1000.0 / len(xs) if xs else 0.0


def print_report(r, label="imap_stress", show_issues=5):
    print("%s_commands %d in %.1f s with %d clients: %.1f commands/s" % (
        label, r.total, r.elapsed, r.clients, r.total / r.elapsed))
    for c in CLASSES:
        if r.counts[c]:
            print("  %-8s %7d commands  avg %8.2f ms  p99 %8.2f ms" % (c, r.counts[c], avg(r.lat[c]), pct(r.lat[c], 99)))
    print("%s_checked %s" % (label, " ".join("%s=%d" % (k, r.checked[k]) for k in CHECKS)))
    print("%s_inconsistencies %d" % (label, r.n_issues))
    for i in r.issues[:show_issues]:
        print("  inconsistency: " + i)
    print("%s_no_answers %d (NO to a command: allowed, e.g. a message expunged meanwhile)" % (label, r.n_nos))
    for n in r.nos[:3]:
        print("  NO: " + n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--users", type=int, default=4, help="shared mailboxes: clients log in as users 1..N")
    ap.add_argument("--secs", type=float, default=20)
    ap.add_argument("--user-fmt", default="user%04d")
    ap.add_argument("--password", default="pass")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    r = run(a.host, a.port, a.users, a.password, a.clients, a.secs, a.user_fmt, a.seed)
    print_report(r, show_issues=20)
    sys.exit(1 if r.n_issues else 0)


if __name__ == "__main__":
    main()
