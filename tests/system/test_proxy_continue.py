"""Expect: 100-continue and protocol upgrade (WebSocket) through the gateway."""

import hashlib
import time

import fbproc
from fbproc import RawConn, build_request
from upstream import ws_frame, ws_read_frame


def test_expect_100_continue_gets_interim_then_final(fb, upstream):
    body = b"a body sent only after 100 Continue"
    with RawConn(fb.port, timeout=5) as c:
        c.send(build_request("POST", "/continue", [("Host", "app.test"),
                                                   ("Content-Length", str(len(body))),
                                                   ("Expect", "100-continue")]))
        interim = c.read_response()
        assert interim.status == 100, interim
        c.send(body)
        r = c.read_response()
        assert r.status == 200
        doc = r.json()
        assert doc["body_len"] == len(body)
        assert doc["body_sha256"] == hashlib.sha256(body).hexdigest()
        # the connection goes on after the exchange
        c.send(build_request("GET", "/echo", [("Host", "app.test")]))
        assert c.read_response().status == 200
    assert upstream.paths() == ["/continue", "/echo"]


def test_expect_100_continue_chunked(fb, upstream):
    with RawConn(fb.port, timeout=5) as c:
        c.send(build_request("PUT", "/continue", [("Host", "app.test"),
                                                  ("Transfer-Encoding", "chunked"),
                                                  ("Expect", "100-continue")]))
        assert c.read_response().status == 100
        c.send(b"3\r\nabc\r\n0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.json()["body_len"] == 3


def test_request_without_expect_gets_no_interim(fb, upstream):
    with RawConn(fb.port, timeout=5) as c:
        c.send(build_request("POST", "/continue", [("Host", "app.test"),
                                                   ("Content-Length", "2")], b"ok"))
        r = c.read_response()
        assert r.status == 200


def _ws_open(port):
    c = RawConn(port, timeout=5)
    c.send(fbproc.ws_handshake_request())
    r = c.read_response()
    assert r.status == 101, r
    assert r.get("Upgrade", "").lower() == "websocket"
    assert "upgrade" in r.get("Connection", "").lower()
    assert r.get("Sec-WebSocket-Accept") == fbproc.WS_SAMPLE_ACCEPT
    return c


def test_websocket_echo_through_gateway(fb, upstream):
    c = _ws_open(fb.port)
    try:
        mask = b"\x11\x22\x33\x44"
        for payload in (b"hello", "h\u00e9llo w\u00f6rld".encode(), b"x" * 200,
                        bytes(range(256)) * 300):
            op = 0x1 if len(payload) < 1000 else 0x2
            c.send(ws_frame(op, payload, mask=mask))
            assert ws_read_frame(c, want_masked=False) == (op, payload)
        c.send(ws_frame(0x9, b"ping!", mask=mask))
        assert ws_read_frame(c, want_masked=False) == (0xA, b"ping!")
        c.send(ws_frame(0x8, b"\x03\xe8", mask=mask))
        op, payload = ws_read_frame(c, want_masked=False)
        assert op == 0x8 and payload == b"\x03\xe8"
        rest, closed = c.read_until_eof(5)
        assert closed and rest == b""
    finally:
        c.close()
    ws = [r for r in upstream.requests if r["path"] == "/ws"]
    assert len(ws) == 1 and ws[0].get("websocket")
    names = fbproc.header_names(ws[0]["headers"])
    assert "upgrade" in names and "sec-websocket-key" in names


def test_websocket_frames_pipelined_with_handshake(fb, upstream):
    """Frames sent right behind the handshake, before the 101, still arrive."""
    c = RawConn(fb.port, timeout=5)
    try:
        c.send(fbproc.ws_handshake_request() + ws_frame(0x1, b"early", mask=b"abcd"))
        assert c.read_response().status == 101
        assert ws_read_frame(c, want_masked=False) == (0x1, b"early")
    finally:
        c.close()


def test_websocket_many_sessions(fb, upstream):
    conns = [_ws_open(fb.port) for _ in range(10)]
    try:
        for i, c in enumerate(conns):
            c.send(ws_frame(0x1, b"session %d" % i, mask=b"\x01\x02\x03\x04"))
        for i, c in enumerate(conns):
            assert ws_read_frame(c, want_masked=False) == (0x1, b"session %d" % i)
    finally:
        for c in conns:
            c.close()
    assert upstream.connections == 10
    # closing the clients closes the tunnels: the upstream sees its sockets end
    deadline = time.monotonic() + 5
    while upstream.conns and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not upstream.conns, "%d tunnels still open upstream" % len(upstream.conns)


def test_upgrade_refused_by_upstream_stays_http(fb, upstream):
    """An Upgrade the upstream does not take (200, not 101) leaves the
    connection speaking HTTP/1.1."""
    with RawConn(fb.port, timeout=5) as c:
        c.send(build_request("GET", "/echo", [("Host", "app.test"), ("Upgrade", "websocket"),
                                              ("Connection", "Upgrade")]))
        r = c.read_response()
        assert r.status == 200
        c.send(build_request("GET", "/echo?second", [("Host", "app.test")]))
        r = c.read_response()
        assert r.status == 200 and r.json()["target"] == "/echo?second"
