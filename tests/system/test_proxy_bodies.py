"""Request and response bodies: Content-Length, chunked, and a large stream
with the gateway's memory bounded.

FIREBREAK_BIG_BODY_MIB sets the size of the large transfers (default 1024)."""

import hashlib
import os
import threading
import time

import pytest

from fbproc import RawConn, build_request, request
from upstream import pattern_chunks, pattern_sha256

BIG_MIB = int(os.environ.get("FIREBREAK_BIG_BODY_MIB", "1024"))
RSS_BOUND_MIB = 64


def test_content_length_upload(fb, upstream):
    body = os.urandom(1 << 20)
    r = request(fb.port, "PUT", "/echo", body=body)
    assert r.status == 200
    doc = r.json()
    assert doc["body_len"] == len(body)
    assert doc["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_chunked_upload(fb, upstream):
    body = os.urandom(300000)
    sizes = [1, 2, 15, 4096, 100000, 195886]
    assert sum(sizes) == len(body)
    parts, pos = [], 0
    for n in sizes:
        parts.append(b"%x\r\n" % n + body[pos:pos + n] + b"\r\n")
        pos += n
    data = build_request("POST", "/echo", [("Host", "app.test"),
                                           ("Transfer-Encoding", "chunked")])
    with RawConn(fb.port) as c:
        c.send(data)
        for p in parts:  # in separate writes, so chunks straddle reads
            c.send(p)
            time.sleep(0.005)
        c.send(b"0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        doc = r.json()
        assert doc["body_len"] == len(body)
        assert doc["body_sha256"] == hashlib.sha256(body).hexdigest()
        # the connection is still usable: the chunked body was framed right
        c.send(build_request("GET", "/echo", [("Host", "app.test")]))
        assert c.read_response().json()["body_len"] == 0


def test_chunked_upload_with_extension_and_trailer(fb, upstream):
    data = build_request("POST", "/echo", [("Host", "app.test"),
                                           ("Transfer-Encoding", "chunked")])
    data += b"5;name=value\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n"
    with RawConn(fb.port) as c:
        c.send(data)
        r = c.read_response()
        assert r.status == 200
        assert r.json()["body_sha256"] == hashlib.sha256(b"hello").hexdigest()


def _dribble(c, data, delay=0.004):
    """Send data one byte per write, so every split point is a read boundary."""
    c.send_pieces([data[i:i + 1] for i in range(len(data))], delay)


def test_request_dribbled_one_byte_per_write(fb, upstream):
    body = b"5;ext=1\r\nhello\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
    data = build_request("POST", "/echo?dribble", [("Host", "app.test"),
                                                   ("Transfer-Encoding", "chunked")]) + body
    with RawConn(fb.port) as c:
        _dribble(c, data)
        r = c.read_response()
        assert r.status == 200, "a chunked request sent byte by byte got %d: %r" % (
            r.status, r.body[:100])
        doc = r.json()
        assert doc["target"] == "/echo?dribble"
        assert doc["body_sha256"] == hashlib.sha256(b"helloabc").hexdigest()


def test_response_dribbled_one_byte_per_write(fb, upstream):
    """The upstream sends its chunked response (head included) byte by byte."""
    with RawConn(fb.port) as c:
        c.send(build_request("GET", "/dribble", [("Host", "app.test")]))
        r = c.read_response()
        assert r.status == 200 and r.body == b"helloabc", r
        c.send(build_request("GET", "/echo", [("Host", "app.test")]))
        assert c.read_response().status == 200


@pytest.mark.parametrize("split", ["after_data", "inside_size_crlf", "inside_data_crlf"])
def test_chunked_upload_split_across_writes(fb, upstream, split):
    """Chunk framing split between two TCP writes at its delicate points."""
    pieces = {
        "after_data": [b"5\r\nhello", b"\r\n", b"5\r\nworld\r\n0\r\n\r\n"],
        "inside_size_crlf": [b"5\r", b"\nhello\r\n5\r", b"\nworld\r\n0\r", b"\n\r\n"],
        "inside_data_crlf": [b"5\r\nhello\r", b"\n5\r\nworld\r", b"\n0\r\n\r\n"],
    }[split]
    with RawConn(fb.port) as c:
        c.send(build_request("POST", "/echo", [("Host", "app.test"),
                                               ("Transfer-Encoding", "chunked")]))
        c.send_pieces(pieces, 0.05)
        r = c.read_response()
        assert r.status == 200, "split %s: %d %r" % (split, r.status, r.body[:100])
        assert r.json()["body_sha256"] == hashlib.sha256(b"helloworld").hexdigest()


@pytest.mark.parametrize("size", [0, 1, 65536, 5 * 1024 * 1024 + 3])
def test_chunked_download(fb, upstream, size):
    r = request(fb.port, "GET", "/chunked/%d" % size)
    assert r.status == 200
    assert r.body_len == size and r.body_sha256 == pattern_sha256(size)


def test_content_length_download(fb, upstream):
    n = 3 * 1024 * 1024
    r = request(fb.port, "GET", "/bytes/%d" % n)
    assert r.status == 200 and r.get("Content-Length") == str(n)
    assert r.body_sha256 == pattern_sha256(n)


class RssWatch:
    """Samples the gateway's VmRSS every 50 ms in a thread; .peak in KiB."""

    def __init__(self, fb):
        self.fb = fb
        self.peak = 0
        self.stop_flag = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop_flag.is_set():
            try:
                self.peak = max(self.peak, self.fb.rss_kib())
            except (OSError, RuntimeError):
                return
            self.stop_flag.wait(0.05)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *a):
        self.stop_flag.set()
        self.t.join(2)


def _warm(fb):
    for _ in range(3):
        request(fb.port, "POST", "/echo", body=b"x" * 100000)
        request(fb.port, "GET", "/bytes/1000000")


@pytest.mark.timeout_s(120)
def test_large_upload_streams_with_bounded_memory(fb, upstream):
    _warm(fb)
    idle = fb.rss_kib()
    n = BIG_MIB << 20
    with RawConn(fb.port, timeout=30) as c, RssWatch(fb) as w:
        c.send(build_request("POST", "/echo", [("Host", "app.test"),
                                               ("Content-Length", str(n))]))
        c.send_pieces(pattern_chunks(n, 1 << 20))
        r = c.read_response()
    assert r.status == 200, "%d %r" % (r.status, r.body[:100])
    doc = r.json()
    assert doc["body_len"] == n and doc["body_sha256"] == pattern_sha256(n)
    grew = (w.peak - idle) / 1024
    print("RSS idle %d KiB peak %d KiB" % (idle, w.peak))
    assert grew < RSS_BOUND_MIB, "RSS grew %.1f MiB during a %d MiB upload" % (grew, BIG_MIB)


@pytest.mark.timeout_s(120)
def test_large_chunked_upload_streams_with_bounded_memory(fb, upstream):
    _warm(fb)
    idle = fb.rss_kib()
    n = 256 << 20
    with RawConn(fb.port, timeout=30) as c, RssWatch(fb) as w:
        c.send(build_request("POST", "/echo", [("Host", "app.test"),
                                               ("Transfer-Encoding", "chunked")]))

        def pieces():
            for piece in pattern_chunks(n, 1 << 20):
                yield b"%x\r\n" % len(piece)
                yield piece
                yield b"\r\n"
            yield b"0\r\n\r\n"

        c.send_pieces(pieces())
        r = c.read_response()
    assert r.status == 200, "%d %r" % (r.status, r.body[:100])
    doc = r.json()
    assert doc["body_len"] == n and doc["body_sha256"] == pattern_sha256(n)
    grew = (w.peak - idle) / 1024
    assert grew < RSS_BOUND_MIB, "RSS grew %.1f MiB during a chunked upload" % grew


@pytest.mark.timeout_s(120)
def test_large_download_streams_with_bounded_memory(fb, upstream):
    _warm(fb)
    idle = fb.rss_kib()
    n = BIG_MIB << 20
    with RawConn(fb.port, timeout=30) as c, RssWatch(fb) as w:
        c.send(build_request("GET", "/bytes/%d" % n, [("Host", "app.test")]))
        r = c.read_response(sink=lambda data: None)
    assert r.status == 200
    assert r.body_len == n and r.body_sha256 == pattern_sha256(n)
    grew = (w.peak - idle) / 1024
    print("RSS idle %d KiB peak %d KiB" % (idle, w.peak))
    assert grew < RSS_BOUND_MIB, "RSS grew %.1f MiB during a %d MiB download" % (grew, BIG_MIB)


@pytest.mark.timeout_s(120)
def test_large_chunked_download_to_slow_reader(fb, upstream):
    """A client reading slower than the upstream sends: the gateway must apply
    back-pressure instead of buffering the body."""
    _warm(fb)
    idle = fb.rss_kib()
    n = 256 << 20
    with RawConn(fb.port, timeout=30) as c, RssWatch(fb) as w:
        c.send(build_request("GET", "/chunked/%d" % n, [("Host", "app.test")]))
        paused = []

        def slow(data):
            if not paused:  # stop reading for 2 s while the upstream pushes
                paused.append(1)
                time.sleep(2)

        r = c.read_response(sink=slow)
    assert r.body_len == n and r.body_sha256 == pattern_sha256(n)
    grew = (w.peak - idle) / 1024
    print("RSS idle %d KiB peak %d KiB" % (idle, w.peak))
    assert grew < RSS_BOUND_MIB, "RSS grew %.1f MiB for a slow reader" % grew
