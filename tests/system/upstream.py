"""A scriptable HTTP/1.1 upstream for the system tests.

One listening socket on 127.0.0.1, one thread per accepted connection,
keep-alive and pipelining on every connection. What a request gets is chosen
by its path (see Upstream.routes below); everything it receives is recorded in
Upstream.requests so a test can check what the proxy forwarded, and anything
that breaks RFC 9112 framing is recorded in Upstream.errors (the fixtures fail
a test whose upstream saw garbage).

Paths:
  /echo            200, JSON: method, path, headers [[name, value]...], body
                   length and sha256, peer port, connection id and the number
                   of the request on its connection (1, 2, ...)
  /status/NNN      status NNN with a short body (none for 1xx, 204, 304)
  /bytes/N         N bytes of pattern_bytes(), Content-Length, sent in pieces
  /chunked/N       the same N bytes in a chunked response of several chunks
  /slow/MS         waits MS milliseconds, then answers like /echo
  /stall           reads the request and never answers
  /reset           reads the request, then resets the connection (RST)
  /close           answers with Connection: close and closes
  /drop-next       answers; the next request on the same connection is read
                   and the connection is closed without an answer
  /204, /304       204 No Content; 304 with ETag and Content-Length: 100
                   (the length of the representation, no body follows)
  /ws              WebSocket handshake (RFC 6455), then echoes data frames
  /continue        like /echo, and says whether it sent 100 Continue
  /hopresp         like /echo, with hop-by-hop response fields: Keep-Alive and
                   X-Up-Hop (listed in Connection), and X-Up-Kept (end-to-end)
  /dribble         a chunked response ("helloabc", with a chunk extension and a
                   trailer) sent one byte per write, head included
  /badresp         a malformed response (Content-Length with chunked)
Any other path answers like /echo. HEAD gets the head of the matching GET.
A request with `Expect: 100-continue` and a body gets `100 Continue` before
the body is read. Request bodies (Content-Length or chunked) are read as a
stream and hashed, never kept whole.

Upstream.idle_close_ms (default None): when set, a connection with no new
request within that many milliseconds after a response is closed silently,
without `Connection: close` (a server trimming idle keep-alive connections).
"""

import base64
import hashlib
import json
import re
import socket
import struct
import threading
import time

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TOKEN_RE = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
REQUEST_LINE_RE = re.compile(rb"^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP/(\d)\.(\d)$")
MAX_HEAD = 128 * 1024
PATTERN_BLOCK = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(1 << 16))
PATTERN_BIG = PATTERN_BLOCK * 16  # 1 MiB, the unit pattern_bytes() repeats

REASONS = {
    100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created",
    204: "No Content", 304: "Not Modified", 400: "Bad Request", 404: "Not Found",
    417: "Expectation Failed", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}


def pattern_chunks(n, piece=1 << 20, start=0):
    """Yield bytes start..start+n of the test pattern as memoryviews of <= piece bytes.

    The pattern is PATTERN_BIG repeated: the byte at offset p is PATTERN_BIG[p % 1 MiB].
    """
    view = memoryview(PATTERN_BIG)
    size = len(PATTERN_BIG)
    pos = start % size
    left = n
    while left > 0:
        take = min(left, piece, size - pos)
        yield view[pos:pos + take]
        pos = (pos + take) % size
        left -= take


def pattern_bytes(n):
    """The first n bytes of the test pattern (for small n)."""
    return b"".join(bytes(c) for c in pattern_chunks(n))


def pattern_sha256(n):
    """sha256 hex digest of the first n bytes of the test pattern."""
    h = hashlib.sha256()
    for c in pattern_chunks(n):
        h.update(c)
    return h.hexdigest()


class ProtocolError(Exception):
    """The peer broke HTTP/1.1 framing: recorded in Upstream.errors."""


class PeerGone(Exception):
    """The peer closed or reset the connection (not an error of framing)."""


class Reader:
    """Buffered reads from a socket with exact framing helpers."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def fill(self):
        try:
            data = self.sock.recv(1 << 18)
        except (ConnectionResetError, BrokenPipeError) as e:
            raise PeerGone(str(e))
        if not data:
            raise PeerGone("eof")
        self.buf += data

    def read_head(self):
        """Bytes up to and including the blank line ending a head."""
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                head = bytes(self.buf[: i + 4])
                del self.buf[: i + 4]
                return head
            if len(self.buf) > MAX_HEAD:
                raise ProtocolError("head larger than %d bytes" % MAX_HEAD)
            self.fill()

    def read_line(self, limit=4096):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[: i + 2]
                return line
            if len(self.buf) > limit:
                raise ProtocolError("line longer than %d bytes" % limit)
            self.fill()

    def read_some(self, n):
        """Up to n bytes (at least one)."""
        if not self.buf:
            self.fill()
        take = bytes(self.buf[:n])
        del self.buf[: len(take)]
        return take

    def read_exact(self, n):
        out = bytearray()
        while len(out) < n:
            out += self.read_some(n - len(out))
        return bytes(out)


def parse_fields(lines, what):
    """Parse field lines strictly; return [(name, value)] as str."""
    fields = []
    for line in lines:
        if not line:
            raise ProtocolError("%s: empty field line" % what)
        if line[:1] in (b" ", b"\t"):
            raise ProtocolError("%s: obs-fold line %r" % (what, line))
        if b"\r" in line or b"\n" in line or b"\0" in line:
            raise ProtocolError("%s: CR, LF or NUL in field %r" % (what, line))
        name, sep, value = line.partition(b":")
        if not sep or not TOKEN_RE.match(name):
            raise ProtocolError("%s: bad field name in %r" % (what, line))
        value = value.strip(b" \t")
        if any(b < 0x20 and b != 0x09 or b == 0x7F for b in value):
            raise ProtocolError("%s: control byte in value of %r" % (what, name))
        fields.append((name.decode("latin-1"), value.decode("latin-1")))
    return fields


def field_values(fields, name):
    name = name.lower()
    return [v for n, v in fields if n.lower() == name]


def parse_request_head(head):
    """Return (method, target, (major, minor), fields) or raise ProtocolError."""
    lines = head[:-4].split(b"\r\n")
    for line in lines:
        if b"\n" in line or b"\r" in line:
            raise ProtocolError("bare CR or LF in head")
    m = REQUEST_LINE_RE.match(lines[0])
    if not m:
        raise ProtocolError("bad request line %r" % lines[0][:200])
    version = (int(m.group(3)), int(m.group(4)))
    if version not in ((1, 0), (1, 1)):
        raise ProtocolError("unexpected version in %r" % lines[0][:200])
    fields = parse_fields(lines[1:], "request")
    return m.group(1).decode(), m.group(2).decode("latin-1"), version, fields


def body_framing(fields, version):
    """('none'|'length'|'chunked', n) for a request, strictly (RFC 9112 6)."""
    te = field_values(fields, "transfer-encoding")
    cl = field_values(fields, "content-length")
    if te and cl:
        raise ProtocolError("both Transfer-Encoding and Content-Length")
    if te:
        if version != (1, 1):
            raise ProtocolError("Transfer-Encoding in HTTP/1.0")
        if len(te) != 1 or te[0].lower() != "chunked":
            raise ProtocolError("Transfer-Encoding is not exactly chunked: %r" % te)
        return "chunked", 0
    if cl:
        if len(cl) != 1 or not re.fullmatch(r"[0-9]{1,18}", cl[0]):
            raise ProtocolError("bad Content-Length %r" % cl)
        return "length", int(cl[0])
    return "none", 0


def read_chunked(reader, sink):
    """Read a chunked body strictly, feeding data to sink(bytes); return trailers."""
    while True:
        line = reader.read_line()
        size_text, _, ext = line.partition(b";")
        if not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", size_text):
            raise ProtocolError("bad chunk size line %r" % line[:100])
        if ext and not re.fullmatch(rb"[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+.*", ext):
            raise ProtocolError("bad chunk extension %r" % line[:100])
        size = int(size_text, 16)
        if size == 0:
            break
        left = size
        while left:
            piece = reader.read_some(min(left, 1 << 18))
            sink(piece)
            left -= len(piece)
        if reader.read_exact(2) != b"\r\n":
            raise ProtocolError("chunk data not followed by CRLF")
    trailers = []
    while True:
        line = reader.read_line()
        if not line:
            return trailers
        trailers.append(line)


class Conn:
    """State of one accepted connection."""

    def __init__(self, up, sock, peer, cid):
        self.up = up
        self.sock = sock
        self.peer = peer
        self.cid = cid
        self.reader = Reader(sock)
        self.count = 0
        self.drop_next = False

    def send(self, data):
        self.sock.sendall(data)


class Upstream:
    """The scriptable upstream; start() it, read .port, stop() it."""

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self.lsock = None
        self.port = None
        self.requests = []     # one dict per request read (see record())
        self.errors = []       # framing errors seen, as text
        self.connections = 0   # connections accepted
        self.idle_close_ms = None
        self.lock = threading.Lock()
        self.conns = set()
        self.threads = []
        self.stopping = False
        self.stop_event = threading.Event()
        self.accept_thread = None

    # lifecycle -----------------------------------------------------------
    def start(self, port=0):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, port))
        s.listen(128)
        self.lsock = s
        self.port = s.getsockname()[1]
        self.accept_thread = threading.Thread(target=self._accept_loop, daemon=True,
                                              name="upstream-accept-%d" % self.port)
        self.accept_thread.start()
        return self

    @property
    def addr(self):
        return "%s:%d" % (self.host, self.port)

    def stop(self):
        self.stopping = True
        self.stop_event.set()
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.accept_thread.join(5)
        for t in list(self.threads):
            t.join(5)

    def reset_records(self):
        with self.lock:
            self.requests = []
            self.errors = []
            self.connections = 0

    def paths(self):
        """Paths of the requests recorded so far, in arrival order."""
        with self.lock:
            return [r["path"] for r in self.requests]

    def wait_requests(self, n, timeout=5.0):
        """Wait until at least n requests were recorded; return the list."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= n:
                    return list(self.requests)
            time.sleep(0.01)
        with self.lock:
            return list(self.requests)

    # connections ---------------------------------------------------------
    def _accept_loop(self):
        while not self.stopping:
            try:
                sock, peer = self.lsock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                cid = self.connections
            c = Conn(self, sock, peer, cid)
            with self.lock:
                self.conns.add(c)
            t = threading.Thread(target=self._serve, args=(c,), daemon=True,
                                 name="upstream-conn-%d" % cid)
            self.threads.append(t)
            t.start()

    def _serve(self, c):
        try:
            while not self.stopping:
                if not self._wait_next(c):
                    break
                if not self._one_request(c):
                    break
        except PeerGone:
            pass
        except ProtocolError as e:
            with self.lock:
                self.errors.append("conn %d: %s" % (c.cid, e))
            try:
                c.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                       b"Connection: close\r\n\r\n")
            except OSError:
                pass
        except OSError:
            pass
        finally:
            with self.lock:
                self.conns.discard(c)
            try:
                c.sock.close()
            except OSError:
                pass

    def _wait_next(self, c):
        """Wait for the next request's first byte; False to close silently."""
        if c.reader.buf or self.idle_close_ms is None or c.count == 0:
            return True
        c.sock.settimeout(self.idle_close_ms / 1000.0)
        try:
            c.reader.fill()
        except socket.timeout:
            return False
        finally:
            c.sock.settimeout(None)
        return True

    def _one_request(self, c):
        """Read and answer one request; False when the connection must close."""
        head = c.reader.read_head()
        method, target, version, fields = parse_request_head(head)
        hosts = field_values(fields, "host")
        if version == (1, 1) and len(hosts) != 1:
            raise ProtocolError("HTTP/1.1 request with %d Host fields" % len(hosts))
        kind, length = body_framing(fields, version)
        c.count += 1
        path = target.split("?", 1)[0]
        rec = {
            "method": method, "target": target, "path": path,
            "version": "HTTP/%d.%d" % version, "headers": fields,
            "conn": c.cid, "conn_request": c.count, "peer_port": c.peer[1],
            "body_len": 0, "body_sha256": None, "complete": False,
            "sent_100": False, "dropped": False, "time": time.monotonic(),
        }
        with self.lock:
            self.requests.append(rec)
        if c.drop_next:
            rec["dropped"] = True
            return False
        expect = [v.lower() for v in field_values(fields, "expect")]
        if "100-continue" in expect and kind != "none" and version == (1, 1):
            c.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            rec["sent_100"] = True
        h = hashlib.sha256()
        n = [0]

        def sink(data):
            h.update(data)
            n[0] += len(data)

        if kind == "length":
            left = length
            while left:
                piece = c.reader.read_some(min(left, 1 << 18))
                sink(piece)
                left -= len(piece)
        elif kind == "chunked":
            rec["trailers"] = read_chunked(c.reader, sink)
        rec["body_len"] = n[0]
        rec["body_sha256"] = h.hexdigest()
        rec["complete"] = True
        conn_tokens = {t.strip().lower() for v in field_values(fields, "connection")
                       for t in v.split(",")}
        keep = version == (1, 1) and "close" not in conn_tokens or \
            version == (1, 0) and "keep-alive" in conn_tokens
        return self._answer(c, rec, method, path, keep)

    # answers -------------------------------------------------------------
    def _head(self, status, headers, keep):
        reason = REASONS.get(status, "Status")
        lines = ["HTTP/1.1 %d %s" % (status, reason)]
        lines += ["%s: %s" % (n, v) for n, v in headers]
        if not keep:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send_simple(self, c, method, status, headers, body, keep):
        headers = list(headers)
        no_body = status in (204, 304) or 100 <= status < 200
        if not no_body:
            headers.append(("Content-Length", str(len(body))))
        data = self._head(status, headers, keep)
        if method != "HEAD" and not no_body:
            data += body
        c.send(data)
        return keep

    def _echo_body(self, c, rec, extra=None):
        doc = {
            "method": rec["method"], "path": rec["path"], "target": rec["target"],
            "version": rec["version"], "headers": [list(f) for f in rec["headers"]],
            "body_len": rec["body_len"], "body_sha256": rec["body_sha256"],
            "peer_port": rec["peer_port"], "conn": rec["conn"],
            "conn_request": rec["conn_request"], "upstream_port": self.port,
        }
        if extra:
            doc.update(extra)
        return json.dumps(doc).encode()

    def _answer(self, c, rec, method, path, keep):
        json_type = [("Content-Type", "application/json")]
        parts = path.strip("/").split("/")
        head = parts[0] if parts else ""
        arg = parts[1] if len(parts) > 1 else ""
        if head == "status" and arg.isdigit():
            status = int(arg)
            return self._send_simple(c, method, status, [("Content-Type", "text/plain")],
                                     b"status %d\n" % status, keep)
        if head == "bytes" and arg.isdigit():
            return self._send_bytes(c, method, int(arg), keep, chunked=False)
        if head == "chunked" and arg.isdigit():
            return self._send_bytes(c, method, int(arg), keep, chunked=True)
        if head == "slow" and arg.isdigit():
            self.stop_event.wait(int(arg) / 1000.0)
            return self._send_simple(c, method, 200, json_type, self._echo_body(c, rec), keep)
        if head == "stall":
            while True:  # until the peer closes or the upstream stops
                c.reader.fill()
        if head == "reset":
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if head == "close":
            return self._send_simple(c, method, 200, json_type, self._echo_body(c, rec), False)
        if head == "drop-next":
            c.drop_next = True
            return self._send_simple(c, method, 200, json_type, self._echo_body(c, rec), keep)
        if head == "204":
            return self._send_simple(c, method, 204, [("X-Upstream", "204")], b"", keep)
        if head == "304":
            c.send(self._head(304, [("ETag", '"v1"'), ("Content-Length", "100")], keep))
            return keep
        if head == "ws":
            return self._websocket(c, rec, method, keep)
        if head == "continue":
            body = self._echo_body(c, rec, {"sent_100": rec["sent_100"]})
            return self._send_simple(c, method, 200, json_type, body, keep)
        if head == "hopresp":
            hdrs = [("Connection", "X-Up-Hop"), ("X-Up-Hop", "1"), ("Keep-Alive", "timeout=5"),
                    ("X-Up-Kept", "1")] + json_type
            return self._send_simple(c, method, 200, hdrs, self._echo_body(c, rec), keep)
        if head == "dribble":
            data = self._head(200, [("Content-Type", "text/plain"),
                                    ("Transfer-Encoding", "chunked")], keep)
            if method != "HEAD":
                data += b"5;x=1\r\nhello\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(len(data)):
                c.send(data[i:i + 1])
                time.sleep(0.003)
            return keep
        if head == "badresp":
            c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
            return False
        return self._send_simple(c, method, 200, json_type, self._echo_body(c, rec), keep)

    def _send_bytes(self, c, method, n, keep, chunked):
        if chunked:
            c.send(self._head(200, [("Content-Type", "application/octet-stream"),
                                    ("Transfer-Encoding", "chunked")], keep))
        else:
            c.send(self._head(200, [("Content-Type", "application/octet-stream"),
                                    ("Content-Length", str(n))], keep))
        if method == "HEAD":
            return keep
        if not chunked:
            for piece in pattern_chunks(n, 1 << 18):
                c.send(piece)
            return keep
        sizes = (1, 7, 100, 4096, 65536, 1 << 18)
        i = 0
        for piece in pattern_chunks(n, 1 << 18):
            view = piece
            while len(view):
                take = min(sizes[i % len(sizes)], len(view))
                i += 1
                c.send(b"%x\r\n" % take + bytes(view[:take]) + b"\r\n")
                view = view[take:]
        c.send(b"0\r\n\r\n")
        return keep

    def _websocket(self, c, rec, method, keep):
        fields = rec["headers"]
        key = field_values(fields, "sec-websocket-key")
        upgrade = [v.lower() for v in field_values(fields, "upgrade")]
        tokens = {t.strip().lower() for v in field_values(fields, "connection")
                  for t in v.split(",")}
        if method != "GET" or "websocket" not in upgrade or "upgrade" not in tokens \
                or len(key) != 1:
            return self._send_simple(c, method, 400, [], b"not a websocket handshake\n", keep)
        accept = base64.b64encode(hashlib.sha1(key[0].encode() + WS_GUID).digest()).decode()
        c.send(self._head(101, [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                ("Sec-WebSocket-Accept", accept)], True))
        rec["websocket"] = True
        while True:
            opcode, payload = ws_read_frame(c.reader, want_masked=True)
            if opcode == 0x8:
                c.send(ws_frame(0x8, payload[:2]))
                return False
            if opcode == 0x9:
                c.send(ws_frame(0xA, payload))
            elif opcode in (0x1, 0x2):
                c.send(ws_frame(opcode, payload))


def ws_frame(opcode, payload, mask=None):
    """One final WebSocket frame; masked with the 4-byte mask when given."""
    first = bytes([0x80 | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr = first + bytes([mbit | n])
    elif n < 65536:
        hdr = first + bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        hdr = first + bytes([mbit | 127]) + struct.pack("!Q", n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return hdr + mask + payload
    return hdr + payload


def ws_read_frame(reader, want_masked):
    """Read one frame (no fragmentation); return (opcode, payload)."""
    b0, b1 = reader.read_exact(2)
    if b0 & 0x70:
        raise ProtocolError("websocket: reserved bits set")
    if not b0 & 0x80:
        raise ProtocolError("websocket: fragmented frames are not expected")
    masked = bool(b1 & 0x80)
    if masked != want_masked:
        raise ProtocolError("websocket: frame masking is %s" % masked)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", reader.read_exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", reader.read_exact(8))[0]
    mask = reader.read_exact(4) if masked else None
    payload = reader.read_exact(n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return b0 & 0x0F, payload
