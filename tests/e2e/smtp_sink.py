"""smtp_sink.py - a small SMTP receiver on loopback for the end-to-end tests of outbound mail (tests/e2e/test_smtp.py,
test_smtputf8.py, test_dane.py): records each transaction, refuses recipients starting with 'reject', offers SMTPUTF8
or not (a receiver without it refuses non-ASCII addresses that were not declared, as real ones do), and STARTTLS
with a given certificate chain."""
import socket
import ssl
import threading
import time


class Sink(threading.Thread):
    """messages: one (sender, [recipients], data, MAIL line) per accepted transaction. delay: seconds before the
    reply to the end of the data (a slow destination). utf8: offer SMTPUTF8. tls: (chain file, key file) to offer
    STARTTLS with. addr: where to listen."""

    def __init__(self, delay=0.0, utf8=False, tls=None, addr=("127.0.0.1", 0)):
        super().__init__(daemon=True)
        self.delay = delay
        self.utf8 = utf8
        self.tls = None
        if tls is not None:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(*tls)
        self.tls_sessions = 0  # handshakes completed
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(addr)
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.messages = []
        self.connections = 0
        self.lock = threading.Lock()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self.session, args=(c,), daemon=True).start()

    def ehlo(self):
        return (b"250-sink\r\n250-PIPELINING\r\n250-SIZE 10000000\r\n" + (b"250-SMTPUTF8\r\n" if self.utf8 else b"") +
                (b"250-STARTTLS\r\n" if self.tls is not None else b"") + b"250 8BITMIME\r\n")

    def session(self, c):
        f = c.makefile("rb")
        c.sendall(b"220 sink ESMTP\r\n")
        mail, line_of_mail, rcpts = None, "", []
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line.strip().decode("utf-8", "surrogateescape")
                up = cmd.upper()
                undeclared_utf8 = any(ord(ch) > 127 for ch in cmd) and " SMTPUTF8" not in (line_of_mail + up)
                if up.startswith("EHLO"):
                    c.sendall(self.ehlo())
                elif up == "STARTTLS" and self.tls is not None:
                    c.sendall(b"220 go ahead\r\n")
                    c = self.tls.wrap_socket(c, server_side=True)
                    f = c.makefile("rb")
                    with self.lock:
                        self.tls_sessions += 1
                elif up.startswith("HELO"):
                    c.sendall(b"250 sink\r\n")
                elif up.startswith(("MAIL FROM:", "RCPT TO:")) and undeclared_utf8:
                    c.sendall(b"553 5.6.7 Must declare SMTPUTF8\r\n")
                elif up.startswith("MAIL FROM:"):
                    mail, line_of_mail, rcpts = cmd[10:].split(" ")[0].strip("<>"), cmd, []
                    c.sendall(b"250 2.1.0 ok\r\n")
                elif up.startswith("RCPT TO:"):
                    addr = cmd[8:].split(" ")[0].strip("<>")
                    if addr.startswith("reject"):
                        c.sendall(b"550 5.1.1 no such user here\r\n")
                    else:
                        rcpts.append(addr)
                        c.sendall(b"250 2.1.5 ok\r\n")
                elif up == "DATA":
                    if not rcpts:
                        c.sendall(b"554 5.5.1 no valid recipients\r\n")
                        continue
                    c.sendall(b"354 go\r\n")
                    data = b""
                    while True:
                        l2 = f.readline()
                        if l2 in (b".\r\n", b""):
                            break
                        data += l2[1:] if l2.startswith(b"..") else l2
                    time.sleep(self.delay)
                    with self.lock:
                        self.messages.append((mail, list(rcpts), data, line_of_mail))
                    c.sendall(b"250 2.0.0 queued\r\n")
                elif up == "RSET":
                    mail, line_of_mail, rcpts = None, "", []
                    c.sendall(b"250 ok\r\n")
                elif up == "QUIT":
                    c.sendall(b"221 bye\r\n")
                    return
                else:
                    c.sendall(b"250 ok\r\n")
        except OSError:
            pass
        finally:
            c.close()

    def find(self, needle):
        """The transactions whose data holds needle."""
        with self.lock:
            return [m for m in self.messages if needle.encode() in m[2]]
