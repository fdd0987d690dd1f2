"""Malformed requests: each gets its status, the connection is closed after
it, and a request smuggled behind it in the same send never reaches the
upstream (RFC 9112 sections 2 to 7)."""

import time

import pytest

from fbproc import RawConn

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n"


def post(fields, body=b"", version=b"HTTP/1.1", path=b"/first"):
    return (b"POST " + path + b" " + version + b"\r\n" + b"".join(f + b"\r\n" for f in fields)
            + b"\r\n" + body)


def get(fields, line=b"GET /first HTTP/1.1"):
    return line + b"\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


HOST = b"Host: app.test"
TE = b"Transfer-Encoding: chunked"

CASES = [
    # framing of the body
    ("cl_and_te", post([HOST, b"Content-Length: 5", TE], b"0\r\n\r\n"), 400),
    ("te_and_cl", post([HOST, TE, b"Content-Length: 5"], b"0\r\n\r\n"), 400),
    ("te_gzip", post([HOST, b"Transfer-Encoding: gzip"], b"xxxxx"), 501),
    ("te_chunked_not_final", post([HOST, b"Transfer-Encoding: chunked, gzip"], b""), (400, 501)),
    ("two_cl_same", post([HOST, b"Content-Length: 5", b"Content-Length: 5"], b"hello"), 400),
    ("two_cl_differ", post([HOST, b"Content-Length: 5", b"Content-Length: 6"], b"hello!"), 400),
    ("cl_list", post([HOST, b"Content-Length: 5, 5"], b"hello"), 400),
    ("cl_plus", post([HOST, b"Content-Length: +5"], b"hello"), 400),
    ("cl_hex", post([HOST, b"Content-Length: 0x5"], b"hello"), 400),
    ("cl_negative", post([HOST, b"Content-Length: -1"], b""), 400),
    ("cl_empty", post([HOST, b"Content-Length: "], b""), 400),
    ("cl_overflow", post([HOST, b"Content-Length: 99999999999999999999999"], b""), 400),
    ("cl_space_inside", post([HOST, b"Content-Length: 1 2"], b"x" * 12), 400),
    ("te_http10", post([HOST, TE], b"0\r\n\r\n", version=b"HTTP/1.0"), 400),
    # field syntax
    ("space_before_colon", get([HOST, b"X-Foo : bar"]), 400),
    ("tab_before_colon", get([HOST, b"X-Foo\t: bar"]), 400),
    ("obs_fold", get([HOST, b"X-Foo: a", b" folded"]), 400),
    ("obs_fold_tab", get([HOST, b"X-Foo: a", b"\tfolded"]), 400),
    ("bare_cr_value", get([HOST, b"X-Foo: a\rb"]), 400),
    ("bare_cr_line", get([HOST], line=b"GET /first\r HTTP/1.1"), 400),
    ("nul_value", get([HOST, b"X-Foo: a\x00b"]), 400),
    ("empty_field_name", get([HOST, b": value"]), 400),
    ("bad_char_in_name", get([HOST, b"X(Foo): bar"]), 400),
    # chunked body
    ("chunk_plus", post([HOST, TE], b"+5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_0x", post([HOST, TE], b"0x5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_over_64bit", post([HOST, TE], b"10000000000000000\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_over_64bit_f", post([HOST, TE], b"fffffffffffffffff\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_no_crlf", post([HOST, TE], b"5\r\nhelloXX0\r\n\r\n"), 400),
    ("chunk_negative", post([HOST, TE], b"-5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_empty_size", post([HOST, TE], b"\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_space_size", post([HOST, TE], b"5 5\r\nhello\r\n0\r\n\r\n"), 400),
    # Host
    ("no_host_11", get([b"X-Foo: bar"]), 400),
    ("two_hosts", get([HOST, b"Host: other.test"]), 400),
    # request line
    ("two_spaces_after_method", get([HOST], line=b"GET  /first HTTP/1.1"), 400),
    ("two_spaces_before_version", get([HOST], line=b"GET /first  HTTP/1.1"), 400),
    ("no_version", get([HOST], line=b"GET /first"), 400),
    ("lowercase_version", get([HOST], line=b"GET /first http/1.1"), 400),
    ("garbage_version", get([HOST], line=b"GET /first HTTP/x.y"), 400),
    ("http2", get([HOST], line=b"GET /first HTTP/2.0"), 505),
    ("bad_method", get([HOST], line=b"G(T /first HTTP/1.1"), 400),
    # limits (8 KiB line, 16 KiB head, 100 fields in the test config)
    ("long_request_line", get([HOST], line=b"GET /" + b"a" * 9000 + b" HTTP/1.1"), 414),
    ("too_many_fields", get([HOST] + [b"X-F%d: v" % i for i in range(150)]), 431),
    ("head_too_big", get([HOST] + [b"X-Big%d: %s" % (i, b"v" * 4000) for i in range(6)]), 431),
]


@pytest.mark.parametrize("name,raw,status", CASES, ids=[c[0] for c in CASES])
def test_malformed_request_rejected_and_closed(fb, upstream, name, raw, status):
    with RawConn(fb.port, timeout=5) as c:
        c.send(raw + SMUGGLED)
        r = c.read_response()
        expected = status if isinstance(status, tuple) else (status,)
        assert r.status in expected, "%s: got %d, want %s" % (name, r.status, status)
        rest, closed = c.read_until_eof(5)
        assert closed, "%s: connection still open 5 s after the %d" % (name, r.status)
        assert rest == b"", "%s: bytes after the error response: %r" % (name, rest[:200])
    time.sleep(0.2)
    assert "/smuggled" not in upstream.paths(), "%s: smuggled request reached the upstream" % name


def test_connection_survives_a_good_request_before_a_bad_one(fb, upstream):
    """The good request before the bad one is answered; the bad one closes."""
    good = get([HOST], line=b"GET /echo?good HTTP/1.1")
    bad = get([HOST, b"X-Foo : bar"])
    with RawConn(fb.port, timeout=5) as c:
        c.send(good + bad + SMUGGLED)
        first = c.read_response()
        assert first.status == 200 and first.json()["target"] == "/echo?good"
        second = c.read_response()
        assert second.status == 400
        rest, closed = c.read_until_eof(5)
        assert closed and rest == b""
    time.sleep(0.2)
    assert upstream.paths() == ["/echo"]


def test_limits_are_not_hit_below_them(fb, upstream):
    """A head just inside the limits passes (the limits are not off by one the bad way)."""
    fields = [HOST] + [b"X-F%d: v" % i for i in range(90)]
    with RawConn(fb.port, timeout=5) as c:
        c.send(get(fields, line=b"GET /echo" + b"a" * 7000 + b" HTTP/1.1"))
        r = c.read_response()
        assert r.status == 200


def test_configured_limits_apply(start_firebreak, upstream):
    fb = start_firebreak([upstream.addr], limits={"request_line": "1KiB", "header_bytes": "2KiB",
                                                  "header_fields": 10})
    cases = [
        (get([HOST], line=b"GET /" + b"a" * 1500 + b" HTTP/1.1"), 414),
        (get([HOST] + [b"X-F%d: v" % i for i in range(20)]), 431),
        (get([HOST, b"X-Big: " + b"v" * 3000]), 431),
    ]
    for raw, status in cases:
        with RawConn(fb.port, timeout=5) as c:
            c.send(raw + SMUGGLED)
            assert c.read_response().status == status
            rest, closed = c.read_until_eof(5)
            assert closed and rest == b""
    with RawConn(fb.port, timeout=5) as c:  # within the small limits all is well
        c.send(get([HOST] + [b"X-F%d: v" % i for i in range(5)], line=b"GET /echo HTTP/1.1"))
        assert c.read_response().status == 200
    time.sleep(0.2)
    assert upstream.paths() == ["/echo"]
