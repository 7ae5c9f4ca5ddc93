"""ad_ranges.py - Active Directory's ranged retrieval of large attributes, simulated for the sync tests: a proxy in
front of the test's slapd that passes every LDAP message through unchanged except two. A search result entry whose
`member` holds more than RANGE values is answered the way a domain controller does (MaxValRange, 1500): the
attribute is named `member;range=0-1499` and holds the first 1500 values. A search that asks for
`member;range=LOW-HIGH` or `member;range=LOW-*` is sent on asking for `member`, and its entry answers with the
values from LOW on (at most RANGE of them), named `member;range=LOW-END`, or `member;range=LOW-*` for the last
ones. Only plain LDAP (no TLS) on 127.0.0.1; BER is parsed just enough for these two messages."""
import re
import socket
import threading

from harness import free_ports

RANGE = 1500
RANGED = re.compile(rb"^member;range=(\d+)-(\d+|\*)$", re.I)


def read_tlv(data, pos):
    """(tag, start of the value, end of the value) of the BER element at pos."""
    tag = data[pos]
    n = data[pos + 1]
    pos += 2
    if n & 0x80:
        count, n = n & 0x7F, 0
        for _ in range(count):
            n = (n << 8) | data[pos]
            pos += 1
    return tag, pos, pos + n


def tlv(tag, value):
    n = len(value)
    if n < 0x80:
        head = bytes([tag, n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([tag, 0x80 | len(b)]) + b
    return head + value


def children(data, start, end):
    out = []
    while start < end:
        tag, vs, ve = read_tlv(data, start)
        out.append((tag, data[start:ve], data[vs:ve]))
        start = ve
    return out


def recv_message(sock, buf):
    """One whole LDAP message from sock (buf: bytes read and not yet used); None at the end."""
    while True:
        if len(buf[0]) >= 2:
            n = buf[0][1]
            head = 2 + (n & 0x7F if n & 0x80 else 0)
            if len(buf[0]) >= head:
                _, vs, ve = read_tlv(buf[0], 0)
                if len(buf[0]) >= ve:
                    msg, buf[0] = buf[0][:ve], buf[0][ve:]
                    return msg
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf[0] += chunk


class RangeProxy:
    """Listens on 127.0.0.1 (port, uri) and forwards to the slapd at upstream_port, ranging `member` as AD does."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.port = free_ports(1)[0]
        self.uri = "ldap://127.0.0.1:%d/" % self.port
        self.ranged_searches = 0  # searches for member;range=LOW-... seen (the client paged through the ranges)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(16)
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            ranges = {}  # message id -> the first value asked for
            threading.Thread(target=self.pump, args=(client, server, ranges, self.request), daemon=True).start()
            threading.Thread(target=self.pump, args=(server, client, ranges, self.response), daemon=True).start()

    def pump(self, src, dst, ranges, rewrite):
        buf = [b""]
        try:
            while True:
                msg = recv_message(src, buf)
                if msg is None:
                    break
                dst.sendall(rewrite(msg, ranges))
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def request(self, msg, ranges):
        _, vs, ve = read_tlv(msg, 0)
        parts = children(msg, vs, ve)  # message id, operation, controls
        if len(parts) < 2 or parts[1][0] != 0x63:  # not a search request
            return msg
        op = children(parts[1][2], 0, len(parts[1][2]))
        attrs = children(op[-1][2], 0, len(op[-1][2]))
        low = None
        new_attrs = []
        for _, _, name in attrs:
            m = RANGED.match(name)
            if m:
                low = int(m.group(1))
                name = b"member"
            new_attrs.append(tlv(0x04, name))
        if low is None:
            return msg
        self.ranged_searches += 1
        ranges[parts[0][2]] = low
        body = b"".join(whole for _, whole, _ in op[:-1]) + tlv(0x30, b"".join(new_attrs))
        return tlv(0x30, parts[0][1] + tlv(0x63, body) + b"".join(p[1] for p in parts[2:]))

    def response(self, msg, ranges):
        _, vs, ve = read_tlv(msg, 0)
        parts = children(msg, vs, ve)
        if len(parts) < 2:
            return msg
        if parts[1][0] == 0x65:  # the search is done: forget its range
            ranges.pop(parts[0][2], None)
        if parts[1][0] != 0x64:  # not a search result entry
            return msg
        low = ranges.get(parts[0][2])
        name_part, attrs_part = children(parts[1][2], 0, len(parts[1][2]))
        out, changed = [], False
        for _, whole, value in children(attrs_part[2], 0, len(attrs_part[2])):
            (_, _, attr), (_, _, vals) = children(value, 0, len(value))
            values = [v for _, v, _ in children(vals, 0, len(vals))]
            if attr.lower() == b"member" and (low is not None or len(values) > RANGE):
                first = low or 0
                chunk = values[first:first + RANGE]
                end = b"*" if first + RANGE >= len(values) else str(first + RANGE - 1).encode()
                whole = tlv(0x30, tlv(0x04, b"member;range=%d-%s" % (first, end)) + tlv(0x31, b"".join(chunk)))
                changed = True
            out.append(whole)
        if not changed:
            return msg
        entry = tlv(0x64, name_part[1] + tlv(0x30, b"".join(out)))
        return tlv(0x30, parts[0][1] + entry + b"".join(p[1] for p in parts[2:]))

    def stop(self):
        self.listener.close()
