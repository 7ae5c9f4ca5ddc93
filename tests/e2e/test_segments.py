"""test_segments.py - clients that write a command, a literal or the end of DATA in several TCP segments get the
right answers and their messages are stored exactly: imaplib APPEND (command, literal, CRLF in three writes),
smtplib and a Roundcube-like smtplib that writes the end of DATA alone (SMTP, submission over STARTTLS), raw
clients that cut IMAP, SMTP and POP3 commands, literals and the end of DATA across writes, with Nagle on (as
clients run) and off (every write its own segment). Timings are for `make bench` (bench_segments.py)."""
import os
import smtplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import System, main, test, wait_for  # noqa: E402
from split_clients import (MARY, Raw, RawIMAP, SplitEndSMTP, add_mary, imaplib_session, message,  # noqa: E402
                           tls_context)

S = None


def system():
    global S
    if S is None:
        S = System()
        add_mary(S)
    return S


def stored(subject):
    r = RawIMAP(system().ports["imap"])
    try:
        return r.fetch_by_subject(subject)
    finally:
        r.close()


def delivered(subject, msg):
    """Waits for the SMTP-delivered message; it must be our message under the Return-Path and Received: line(s) we
    add."""
    s = wait_for(lambda: stored_or_none(subject), 10.0, 0.1)
    assert s is not None, "%s never arrived" % subject
    assert s.startswith(b"Return-Path: <") and b"\r\nReceived: " in s.split(b"\r\n\r\n", 1)[0], s
    assert s.endswith(b"\r\n\r\n" + msg.split(b"\r\n\r\n", 1)[1]), s
    assert msg.split(b"\r\n\r\n", 1)[0] in s, s


def stored_or_none(subject):
    try:
        return stored(subject)
    except AssertionError:
        return None


@test
def imaplib_append():
    m = imaplib_session(system().ports["imap"])
    msg = message("seg-imaplib")
    typ, data = m.append("INBOX", None, None, msg)
    assert typ == "OK" and b"APPENDUID" in data[0], (typ, data)
    m.logout()
    assert stored("seg-imaplib") == msg


@test
def raw_imap_split_nagle_on():
    r = RawIMAP(system().ports["imap"])
    msg = message("seg-raw-nagle", body_lines=40)
    last = r.append_split(msg)
    assert last.startswith(b"t2 OK [APPENDUID "), last
    r.close()
    assert stored("seg-raw-nagle") == msg


@test
def raw_imap_split_nodelay():
    """Each write its own segment: a command cut mid-word with the next command behind it, a LITERAL+ cut in the
    middle of the literal, a synchronising literal cut into three pieces."""
    r = RawIMAP(system().ports["imap"], nodelay=True)
    r.send(b"n1 NOO", b"P\r\nn2 NO", b"OP\r\n")
    assert r.until(b"n1 ")[-1].startswith(b"n1 OK") and r.until(b"n2 ")[-1].startswith(b"n2 OK")
    plus = message("seg-raw-literal-plus")
    r.send(b"p1 APPEND INBOX {%d+}\r\n%s" % (len(plus), plus[:7]), plus[7:-1], plus[-1:] + b"\r\n")
    last = r.until(b"p1 ")[-1]
    assert last.startswith(b"p1 OK"), last
    msg = message("seg-raw-nodelay")
    assert r.append_split(msg).startswith(b"t2 OK"), "split APPEND refused"
    r.close()
    assert stored("seg-raw-literal-plus") == plus
    assert stored("seg-raw-nodelay") == msg


@test
def smtplib_sendmail():
    port = system().ports["smtp"]
    for cls, subject in ((SplitEndSMTP, "seg-smtp-split-end"), (None, "seg-smtp-whole")):
        c = (cls or smtplib.SMTP)("127.0.0.1", port)
        msg = message(subject)
        assert c.sendmail("someone@example.org", [MARY[2]], msg) == {}
        c.quit()
        delivered(subject, msg)


@test
def submission_starttls_split_end():
    c = SplitEndSMTP("127.0.0.1", system().ports["submission"])
    c.starttls(context=tls_context())
    c.login(MARY[0], MARY[1])
    msg = message("seg-submission")
    assert c.sendmail(MARY[2], [MARY[2]], msg) == {}
    c.quit()
    delivered("seg-submission", msg)


@test
def raw_smtp_split():
    """Commands cut mid-line, the dot-stuffed line cut between its dots, the end of DATA cut after the dot."""
    for nodelay in (False, True):
        subject = "seg-raw-smtp-%d" % nodelay
        r = Raw(system().ports["smtp"], nodelay=nodelay)
        assert r.line().startswith(b"220 ")
        r.send(b"EHLO client.exam", b"ple.org\r\n")
        assert r.until(b"250 ")[-1].startswith(b"250 ")
        r.send(b"MAIL FROM:<someone@", b"example.org>\r\nRCPT TO:<%s>\r" % MARY[2].encode(), b"\n")
        assert r.line().startswith(b"250 ") and r.line().startswith(b"250 ")
        r.send(b"DA", b"TA\r\n")
        assert r.line().startswith(b"354 ")
        msg = message(subject)
        wire = msg.replace(b"\r\n.dot", b"\r\n..dot")
        cut = wire.index(b"..dot") + 1
        r.send(wire[:cut], wire[cut:], b".", b"\r\n")
        reply = r.line()
        assert reply.startswith(b"250 "), reply
        r.send(b"QU", b"IT\r\n")
        assert r.line().startswith(b"221 ")
        r.close()
        delivered(subject, msg)


@test
def raw_pop3_split():
    r = Raw(system().ports["pop3"])
    assert r.line().startswith(b"+OK")
    r.send(b"US", b"ER %s\r\n" % MARY[0].encode())
    assert r.line().startswith(b"+OK")
    r.send(b"PASS %s" % MARY[1].encode(), b"\r\n")
    assert r.line().startswith(b"+OK")
    r.send(b"ST", b"AT\r", b"\n")
    stat = r.line()
    assert stat.startswith(b"+OK ") and int(stat.split()[1]) >= 1, stat
    r.send(b"QUIT\r\n")
    assert r.line().startswith(b"+OK")
    r.close()


if __name__ == "__main__":
    main("segments")
