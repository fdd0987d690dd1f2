"""Every timeout of the gateway, with short values in the test config:
request_header 1s, body_idle 1s, keepalive_idle 1s, upstream_connect 500ms,
upstream_response 1s."""

import select
import socket
import time

import pytest

from fbproc import RawConn, build_request, refused_port

SHORT = {"request_header": "1s", "body_idle": "1s", "keepalive_idle": "1s",
         "upstream_connect": "500ms", "upstream_response": "1s", "drain": "2s"}


@pytest.fixture
def fbt(start_firebreak, upstream):
    return start_firebreak([upstream.addr], timeouts=SHORT)


def _readable(sock, timeout):
    r, _, _ = select.select([sock], [], [], timeout)
    return bool(r)


def test_header_trickle_gets_408_at_the_deadline(fbt, upstream):
    """One byte every 200 ms keeps bytes coming, yet the head deadline holds."""
    trickle = b"GET /echo HTTP/1.1\r\nHost: app.test\r\nX-Slow: " + b"a" * 200
    with RawConn(fbt.port, timeout=5) as c:
        t0 = time.monotonic()
        answered = None
        for b in trickle:
            try:
                c.send(bytes([b]))
            except (BrokenPipeError, ConnectionResetError):
                break
            if _readable(c.sock, 0.2):
                answered = time.monotonic() - t0
                break
            assert time.monotonic() - t0 < 5, "no answer 5 s into a 1 s head deadline"
        r = c.read_response()
        elapsed = time.monotonic() - t0
        assert r.status == 408
        assert 0.8 <= elapsed <= 2.5, "408 after %.2f s, deadline 1 s" % elapsed
        rest, closed = c.read_until_eof(3)
        assert closed and rest == b""
    assert upstream.paths() == []


def test_body_idle_gets_408(start_firebreak, upstream):
    # upstream_response longer than body_idle, so only the body idle timer can fire
    fbt = start_firebreak([upstream.addr], timeouts=dict(SHORT, upstream_response="5s"))
    with RawConn(fbt.port, timeout=5) as c:
        c.send(build_request("POST", "/echo", [("Host", "app.test"),
                                               ("Content-Length", "100")]) + b"only part")
        t0 = time.monotonic()
        r = c.read_response()
        elapsed = time.monotonic() - t0
        assert r.status == 408
        assert 0.8 <= elapsed <= 2.5, "408 after %.2f s, body_idle 1 s" % elapsed
        rest, closed = c.read_until_eof(3)
        assert closed and rest == b""


def test_slow_but_steady_body_is_not_idle(fbt, upstream):
    """A body arriving in pieces 300 ms apart (under body_idle) passes even when
    the whole takes longer than body_idle and than upstream_response: the
    upstream cannot answer before it has the body."""
    with RawConn(fbt.port, timeout=5) as c:
        c.send(build_request("POST", "/echo", [("Host", "app.test"), ("Content-Length", "10")]))
        t0 = time.monotonic()
        for piece in (b"ab", b"cd", b"ef", b"gh", b"ij"):
            time.sleep(0.3)
            try:
                c.send(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
        r = c.read_response()
        assert r.status == 200, "a steady body got %d %r %.1f s into the upload" % (
            r.status, r.body[:100], time.monotonic() - t0)
        assert r.json()["body_len"] == 10


def test_keepalive_idle_closes_connection(fbt, upstream):
    with RawConn(fbt.port, timeout=5) as c:
        c.send(build_request("GET", "/echo", [("Host", "app.test")]))
        assert c.read_response().status == 200
        t0 = time.monotonic()
        rest, closed = c.read_until_eof(4)
        elapsed = time.monotonic() - t0
        assert closed, "keep-alive connection still open after 4 s (keepalive_idle 1 s)"
        assert rest == b""
        assert 0.8 <= elapsed <= 2.5, "closed after %.2f s, keepalive_idle 1 s" % elapsed


def test_connection_that_sends_nothing_is_closed(fbt, upstream):
    with RawConn(fbt.port, timeout=5) as c:
        t0 = time.monotonic()
        rest, closed = c.read_until_eof(4)
        assert closed, "a silent connection still open after 4 s"
        assert time.monotonic() - t0 <= 2.5


def test_upstream_down_gives_502(start_firebreak):
    fb = start_firebreak(["127.0.0.1:%d" % refused_port()], timeouts=SHORT)
    with RawConn(fb.port, timeout=5) as c:
        t0 = time.monotonic()
        c.send(build_request("GET", "/echo", [("Host", "app.test")]))
        r = c.read_response()
        assert r.status == 502
        assert time.monotonic() - t0 < 2.0
        if (r.get("Connection") or "").lower() == "close":
            rest, closed = c.read_until_eof(3)
            assert closed and rest == b"", "Connection: close but the connection stayed open"
        else:  # a kept connection must stay usable after the gateway error
            c.send(build_request("GET", "/echo", [("Host", "app.test")]))
            assert c.read_response().status == 502


def test_stalled_upstream_gives_504(fbt, upstream):
    with RawConn(fbt.port, timeout=5) as c:
        t0 = time.monotonic()
        c.send(build_request("GET", "/stall", [("Host", "app.test")]))
        r = c.read_response()
        elapsed = time.monotonic() - t0
        assert r.status == 504
        assert 0.8 <= elapsed <= 2.5, "504 after %.2f s, upstream_response 1 s" % elapsed


def test_slow_upstream_within_deadline_passes(fbt, upstream):
    r = None
    with RawConn(fbt.port, timeout=5) as c:
        c.send(build_request("GET", "/slow/500", [("Host", "app.test")]))
        r = c.read_response()
    assert r.status == 200


class Backlog:
    """A listening socket that never accepts, its accept queue filled, so that
    further SYNs are dropped and connects hang (a silent upstream host)."""

    def __init__(self):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(0)
        self.port = self.lsock.getsockname()[1]
        self.fillers = []

    def fill(self):
        """Connect until a connect no longer completes; True when that happened."""
        for _ in range(8):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(0.3)
            try:
                s.connect(("127.0.0.1", self.port))
            except socket.timeout:
                s.close()
                return True
            self.fillers.append(s)
        return False

    def close(self):
        for s in self.fillers:
            s.close()
        self.lsock.close()


def test_upstream_connect_timeout(start_firebreak):
    b = Backlog()
    try:
        if not b.fill():
            pytest.skip("a full listen backlog does not drop SYNs on this host's loopback")
        fb = start_firebreak(["127.0.0.1:%d" % b.port], timeouts=SHORT)
        with RawConn(fb.port, timeout=5) as c:
            t0 = time.monotonic()
            c.send(build_request("GET", "/echo", [("Host", "app.test")]))
            r = c.read_response()
            elapsed = time.monotonic() - t0
            assert r.status in (502, 504), r
            assert 0.4 <= elapsed <= 2.0, "gave up after %.2f s, upstream_connect 500 ms" % elapsed
    finally:
        b.close()
