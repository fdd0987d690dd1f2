"""The scriptable upstream on its own, without firebreak: the other system
tests trust it, so it must answer, frame and refuse correctly by itself."""

import hashlib
import os
import socket
import time

import pytest

import fbproc
from fbproc import RawConn, build_request
from upstream import Upstream, pattern_bytes, pattern_sha256, ws_frame, ws_read_frame


@pytest.fixture
def up():
    u = Upstream().start()
    yield u
    u.stop()


def test_echo_reports_request_and_connection_reuse(up):
    with RawConn(up.port) as c:
        for i in (1, 2, 3):
            c.send(build_request("GET", "/echo?x=%d" % i, [("Host", "a"), ("X-Test", "v%d" % i)]))
            r = c.read_response()
            assert r.status == 200
            doc = r.json()
            assert doc["path"] == "/echo" and doc["target"] == "/echo?x=%d" % i
            assert ["X-Test", "v%d" % i] in doc["headers"]
            assert doc["conn_request"] == i and doc["conn"] == 1
            assert doc["peer_port"] == c.sock.getsockname()[1]
    assert up.connections == 1
    assert [r["conn_request"] for r in up.requests] == [1, 2, 3]
    assert not up.errors


def test_pipelined_requests_answered_in_order(up):
    with RawConn(up.port) as c:
        c.send(b"".join(build_request("GET", "/status/%d" % s, [("Host", "a")])
                        for s in (201, 404, 200)))
        assert [c.read_response().status for _ in range(3)] == [201, 404, 200]


@pytest.mark.parametrize("size", [0, 1, 70000, 3 * 1024 * 1024 + 5])
def test_download_bytes_and_chunked(up, size):
    with RawConn(up.port) as c:
        for kind in ("bytes", "chunked"):
            c.send(build_request("GET", "/%s/%d" % (kind, size), [("Host", "a")]))
            r = c.read_response()
            assert r.status == 200
            if kind == "chunked":
                assert r.get("Transfer-Encoding") == "chunked"
            else:
                assert r.get("Content-Length") == str(size)
            assert r.body_len == size and r.body_sha256 == pattern_sha256(size)


def test_pattern_is_the_same_whatever_the_piece_size():
    n = 3 * 1024 * 1024 + 77
    assert hashlib.sha256(pattern_bytes(n)).hexdigest() == pattern_sha256(n)


def test_upload_length_and_chunked_hashed(up):
    body = os.urandom(200000)
    digest = hashlib.sha256(body).hexdigest()
    with RawConn(up.port) as c:
        c.send(build_request("POST", "/echo", [("Host", "a"), ("Content-Length", str(len(body)))],
                             body))
        assert c.read_response().json()["body_sha256"] == digest
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p)
                           for p in (body[:1], body[1:100000], body[100000:]))
        c.send(build_request("PUT", "/echo", [("Host", "a"), ("Transfer-Encoding", "chunked")],
                             chunked + b"0\r\nX-Trailer: t\r\n\r\n"))
        doc = c.read_response().json()
        assert doc["method"] == "PUT" and doc["body_len"] == len(body)
        assert doc["body_sha256"] == digest
    assert up.requests[1]["trailers"] == [b"X-Trailer: t"]


def test_head_204_304_framing(up):
    with RawConn(up.port) as c:
        c.send(build_request("HEAD", "/bytes/1234", [("Host", "a")]))
        r = c.read_response("HEAD")
        assert r.get("Content-Length") == "1234" and r.body == b""
        c.send(build_request("GET", "/204", [("Host", "a")]))
        assert c.read_response().status == 204
        c.send(build_request("GET", "/304", [("Host", "a")]))
        r = c.read_response()
        assert r.status == 304 and r.get("Content-Length") == "100"
        c.send(build_request("GET", "/echo", [("Host", "a")]))
        assert c.read_response().json()["conn_request"] == 4


def test_expect_100_continue(up):
    with RawConn(up.port) as c:
        c.send(build_request("POST", "/continue", [("Host", "a"), ("Content-Length", "5"),
                                                   ("Expect", "100-continue")]))
        r = c.read_response()
        assert r.status == 100
        c.send(b"hello")
        r = c.read_response()
        assert r.status == 200 and r.json()["sent_100"] is True
        assert r.json()["body_len"] == 5


def test_websocket_handshake_and_echo(up):
    with RawConn(up.port) as c:
        c.send(fbproc.ws_handshake_request())
        r = c.read_response()
        assert r.status == 101
        assert r.get("Sec-WebSocket-Accept") == fbproc.WS_SAMPLE_ACCEPT
        for payload in (b"hello", b"x" * 300, b"y" * 70000):
            c.send(ws_frame(0x1, payload, mask=b"\x01\x02\x03\x04"))
            assert ws_read_frame(c, want_masked=False) == (0x1, payload)
        c.send(ws_frame(0x8, b"\x03\xe8", mask=b"abcd"))
        assert ws_read_frame(c, want_masked=False)[0] == 0x8
        assert c.read_until_eof(2)[1]


@pytest.mark.parametrize("raw", [
    b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET /echo HTTP/1.1\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost : a\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\n x\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
])
def test_upstream_refuses_broken_framing(up, raw):
    with RawConn(up.port) as c:
        c.send(raw)
        r = c.read_response()
        assert r.status == 400
        assert c.read_until_eof(2)[1]
    assert len(up.errors) == 1


def test_idle_close_closes_silently(up):
    up.idle_close_ms = 100
    with RawConn(up.port) as c:
        c.send(build_request("GET", "/echo", [("Host", "a")]))
        r = c.read_response()
        assert r.status == 200 and r.get("Connection") is None
        t0 = time.monotonic()
        data, closed = c.read_until_eof(2)
        assert closed and data == b"" and time.monotonic() - t0 < 1.0


def test_reset_close_and_drop_next(up):
    with RawConn(up.port) as c:
        c.send(build_request("GET", "/reset", [("Host", "a")]))
        data, closed = c.read_until_eof(2)
        assert closed and c.reset and data == b""
    with RawConn(up.port) as c:
        c.send(build_request("GET", "/close", [("Host", "a")]))
        assert c.read_response().get("Connection") == "close"
        assert c.read_until_eof(2)[1]
    with RawConn(up.port) as c:
        c.send(build_request("GET", "/drop-next", [("Host", "a")]))
        assert c.read_response().status == 200
        c.send(build_request("GET", "/echo", [("Host", "a")]))
        data, closed = c.read_until_eof(2)
        assert closed and data == b""
    assert up.requests[-1]["dropped"] is True


def test_stall_never_answers(up):
    with RawConn(up.port) as c:
        c.send(build_request("GET", "/stall", [("Host", "a")]))
        data, closed = c.read_until_eof(0.5)
        assert data == b"" and not closed


def test_badresp_is_malformed(up):
    with RawConn(up.port) as c:
        c.send(build_request("GET", "/badresp", [("Host", "a")]))
        data, _ = c.read_until_eof(2)
        assert b"Content-Length: 5" in data and b"Transfer-Encoding: chunked" in data


def test_refused_port_refuses():
    port = fbproc.refused_port()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_yaml_emitter_writes_block_yaml(tmp_path):
    cfg = fbproc.base_config(str(tmp_path), ["127.0.0.1:1", "127.0.0.1:2"],
                             timeouts={"upstream_connect": "500ms"})
    text = fbproc.to_yaml(cfg)
    assert "access_log: off\n" in text
    assert '      endpoints: ["127.0.0.1:1", "127.0.0.1:2"]' in text
    assert "  upstream_connect: 500ms\n" in text
    assert "  - name: app\n" in text
    assert "    stable: v1" in text


def test_dribble_response(up):
    with RawConn(up.port) as c:
        c.send(build_request("GET", "/dribble", [("Host", "a")]))
        r = c.read_response()
        assert r.status == 200 and r.body == b"helloabc"
