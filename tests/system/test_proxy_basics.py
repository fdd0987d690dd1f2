"""Basics of the gateway: what a client and an upstream see of one request."""

import hashlib
import re

from fbproc import RawConn, build_request, get, header_names, header_values, request
from upstream import pattern_sha256

TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$")


def test_get_returns_upstream_body_and_release(fb, upstream):
    r = get(fb.port, "/bytes/100000")
    assert r.status == 200
    assert r.body_len == 100000 and r.body_sha256 == pattern_sha256(100000)
    assert r.get("X-Firebreak-Release") == "v1"
    assert upstream.paths() == ["/bytes/100000"]


def test_query_string_and_method_forwarded(fb, upstream):
    r = request(fb.port, "DELETE", "/echo/a%20b?x=1&y=%2F")
    assert r.status == 200
    doc = r.json()
    assert doc["method"] == "DELETE"
    assert doc["target"] == "/echo/a%20b?x=1&y=%2F"


def test_forwarding_headers_added(fb, upstream):
    r = get(fb.port, "/echo", [("X-Forwarded-For", "203.0.113.7")])
    assert r.status == 200
    hdrs = r.json()["headers"]
    ids = header_values(hdrs, "X-Request-Id")
    assert len(ids) == 1 and ids[0].strip(), hdrs
    tps = header_values(hdrs, "traceparent")
    assert len(tps) == 1 and TRACEPARENT.match(tps[0]), tps
    assert tps[0] != "00-" + "0" * 32 + "-" + "0" * 16 + "-01"
    xff = [a.strip() for v in header_values(hdrs, "X-Forwarded-For") for a in v.split(",")]
    assert xff == ["203.0.113.7", "127.0.0.1"], hdrs
    assert header_values(hdrs, "X-Forwarded-Proto") == ["http"]
    assert header_values(hdrs, "Host") == ["app.test"]


def test_request_ids_differ_between_requests(fb, upstream):
    seen = set()
    for _ in range(5):
        hdrs = get(fb.port, "/echo").json()["headers"]
        seen.add((header_values(hdrs, "X-Request-Id")[0], header_values(hdrs, "traceparent")[0]))
    assert len({i for i, _ in seen}) == 5
    assert len({t for _, t in seen}) == 5


def test_request_id_and_traceparent_kept_when_given(fb, upstream):
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    r = get(fb.port, "/echo", [("X-Request-Id", "client-chosen-42"), ("traceparent", tp)])
    hdrs = r.json()["headers"]
    assert header_values(hdrs, "X-Request-Id") == ["client-chosen-42"]
    assert header_values(hdrs, "traceparent") == [tp]


def test_hop_by_hop_and_connection_listed_headers_removed(fb, upstream):
    r = get(fb.port, "/echo", [
        ("Connection", "keep-alive, X-Secret-Hop"),
        ("Keep-Alive", "timeout=5"),
        ("X-Secret-Hop", "must not pass"),
        ("Proxy-Connection", "keep-alive"),
        ("TE", "trailers"),
        ("Trailer", "X-Checksum"),
        ("X-End-To-End", "kept"),
    ])
    assert r.status == 200
    hdrs = r.json()["headers"]
    names = header_names(hdrs)
    for gone in ("keep-alive", "x-secret-hop", "proxy-connection", "te", "trailer"):
        assert gone not in names, "%s forwarded upstream: %s" % (gone, hdrs)
    for v in header_values(hdrs, "Connection"):
        assert "x-secret-hop" not in v.lower()
    assert header_values(hdrs, "X-End-To-End") == ["kept"]


def test_hop_by_hop_response_headers_removed(fb, upstream):
    r = get(fb.port, "/hopresp")
    assert r.status == 200
    assert r.get("X-Up-Hop") is None and r.get("Keep-Alive") is None
    assert r.get("X-Up-Kept") == "1"


def test_head_has_no_body_and_keeps_framing(fb, upstream):
    with RawConn(fb.port) as c:
        c.send(build_request("HEAD", "/bytes/5000", [("Host", "app.test")]))
        r = c.read_response("HEAD")
        assert r.status == 200 and r.body == b""
        assert r.get("Content-Length") in (None, "5000")
        c.send(build_request("HEAD", "/chunked/5000", [("Host", "app.test")]))
        r = c.read_response("HEAD")
        assert r.status == 200 and r.body == b""
        c.send(build_request("GET", "/echo", [("Host", "app.test")]))
        r = c.read_response()
        assert r.status == 200 and r.json()["method"] == "GET"
    assert [x["method"] for x in upstream.requests] == ["HEAD", "HEAD", "GET"]


def test_204_and_304_have_no_body(fb, upstream):
    with RawConn(fb.port, timeout=5) as c:
        c.send(build_request("GET", "/204", [("Host", "app.test")]))
        r = c.read_response()
        assert r.status == 204 and r.get("X-Upstream") == "204"
        assert r.get("Transfer-Encoding") is None
        c.send(build_request("GET", "/304", [("Host", "app.test"),
                                             ("If-None-Match", '"v1"')]))
        r = c.read_response()
        assert r.status == 304 and r.get("ETag") == '"v1"'
        assert r.get("Transfer-Encoding") is None
        c.send(build_request("GET", "/echo", [("Host", "app.test")]))
        r = c.read_response()
        assert r.status == 200 and r.json()["path"] == "/echo"


def test_pipelined_requests_answered_in_order(fb, upstream):
    paths = ["/status/201", "/echo?n=2", "/bytes/70000", "/status/404", "/chunked/3000",
             "/echo?n=6"]
    data = b"".join(build_request("GET", p, [("Host", "app.test")]) for p in paths)
    data += build_request("HEAD", "/bytes/10", [("Host", "app.test")])
    data += build_request("GET", "/echo?n=8", [("Host", "app.test"), ("Connection", "close")])
    with RawConn(fb.port) as c:
        c.send(data)
        rs = [c.read_response() for _ in paths]
        head = c.read_response("HEAD")
        last = c.read_response()
        assert [r.status for r in rs] == [201, 200, 200, 404, 200, 200]
        assert rs[1].json()["target"] == "/echo?n=2"
        assert rs[2].body_sha256 == pattern_sha256(70000)
        assert rs[4].body_sha256 == pattern_sha256(3000)
        assert rs[5].json()["target"] == "/echo?n=6"
        assert head.status == 200 and head.body == b""
        assert last.json()["target"] == "/echo?n=8"
        rest, closed = c.read_until_eof(5)
        assert rest == b"" and closed


def test_small_post_body_forwarded(fb, upstream):
    r = request(fb.port, "POST", "/echo", body=b"hello world")
    doc = r.json()
    assert doc["method"] == "POST" and doc["body_len"] == 11
    assert doc["body_sha256"] == hashlib.sha256(b"hello world").hexdigest()


def test_http10_client_gets_answer_and_close(fb, upstream):
    with RawConn(fb.port) as c:
        c.send(b"GET /echo HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.json()["path"] == "/echo"
        rest, closed = c.read_until_eof(5)
        assert closed and rest == b""


def test_absolute_form_target_forwarded_in_origin_form(fb, upstream):
    """RFC 9112 3.2.2: a server accepts absolute-form; the origin gets origin-form."""
    with RawConn(fb.port) as c:
        c.send(b"GET http://app.test/echo?q=1 HTTP/1.1\r\nHost: app.test\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert r.json()["target"] == "/echo?q=1"


def test_chunked_response_not_sent_chunked_to_http10_client(fb, upstream):
    """RFC 9112 6.1: no chunked coding towards an HTTP/1.0 client."""
    with RawConn(fb.port) as c:
        c.send(b"GET /chunked/5000 HTTP/1.0\r\nHost: app.test\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert r.get("Transfer-Encoding") is None
        assert r.body_len == 5000 and r.body_sha256 == pattern_sha256(5000)


def test_pipelined_requests_with_bodies(fb, upstream):
    body1 = b"first body"
    body2 = b"second, chunked"
    data = build_request("POST", "/echo?n=1", [("Host", "app.test"),
                                               ("Content-Length", str(len(body1)))], body1)
    data += build_request("PUT", "/echo?n=2", [("Host", "app.test"),
                                               ("Transfer-Encoding", "chunked")])
    data += b"%x\r\n%s\r\n0\r\n\r\n" % (len(body2), body2)
    data += build_request("GET", "/echo?n=3", [("Host", "app.test")])
    with RawConn(fb.port) as c:
        c.send(data)
        docs = [c.read_response().json() for _ in range(3)]
    assert [d["target"] for d in docs] == ["/echo?n=1", "/echo?n=2", "/echo?n=3"]
    assert docs[0]["body_sha256"] == hashlib.sha256(body1).hexdigest()
    assert docs[1]["body_sha256"] == hashlib.sha256(body2).hexdigest()
    assert docs[2]["body_len"] == 0


def test_head_dribbled_one_byte_per_write(fb, upstream):
    data = build_request("GET", "/echo?slowhead", [("Host", "app.test"), ("X-A", "b")])
    with RawConn(fb.port) as c:
        c.send_pieces([data[i:i + 1] for i in range(len(data))], 0.004)
        r = c.read_response()
        assert r.status == 200 and r.json()["target"] == "/echo?slowhead"
