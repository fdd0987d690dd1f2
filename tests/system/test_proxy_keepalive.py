"""Keep-alive on both sides: client connections and the upstream pool."""

import re

import pytest

from fbproc import Nginx, RawConn, build_request


def _sequential(port, path, n, extra=None):
    out = []
    with RawConn(port) as c:
        for _ in range(n):
            c.send(build_request("GET", path, [("Host", "app.test")] + (extra or [])))
            r = c.read_response()
            assert r.status == 200, r
            out.append(r)
    return out


def test_sequential_requests_reuse_upstream_connections(fb, upstream):
    rs = _sequential(fb.port, "/echo", 50)
    conns = {r.json()["conn"] for r in rs}
    assert upstream.connections <= 2, "50 requests used %d upstream connections" % \
        upstream.connections
    assert len(conns) <= 2
    assert max(r.json()["conn_request"] for r in rs) >= 25


@pytest.fixture
def nginx(tmp_path):
    if not Nginx.available():
        pytest.skip("/usr/sbin/nginx is missing (scripts/bootstrap installs nginx-light)")
    n = Nginx(str(tmp_path), """
        location / { return 200 "conn=$connection req=$connection_requests\\n"; }
        location /big { return 200 "%s"; }
    """ % ("x" * 3000))
    n.start()
    yield n
    n.stop()


def test_keepalive_reuse_against_nginx(start_firebreak, nginx):
    fb = start_firebreak(["127.0.0.1:%d" % nginx.port])
    rs = _sequential(fb.port, "/hello", 50)
    seen = [re.fullmatch(rb"conn=(\d+) req=(\d+)\n", r.body) for r in rs]
    assert all(seen), [r.body for r in rs[:3]]
    conns = {m.group(1) for m in seen}
    assert len(conns) <= 2, "50 requests used %d nginx connections" % len(conns)
    assert max(int(m.group(2)) for m in seen) >= 25
    big = _sequential(fb.port, "/big", 3)
    assert all(r.body == b"x" * 3000 for r in big)


def test_upstream_connection_close_keeps_client_connection(fb, upstream):
    with RawConn(fb.port) as c:
        c.send(build_request("GET", "/close", [("Host", "app.test")]))
        r = c.read_response()
        assert r.status == 200
        c.send(build_request("GET", "/echo", [("Host", "app.test")]))
        r = c.read_response()
        assert r.status == 200 and r.json()["path"] == "/echo"
    assert upstream.connections == 2


def test_client_connection_close_is_honoured(fb, upstream):
    with RawConn(fb.port) as c:
        c.send(build_request("GET", "/echo", [("Host", "app.test"), ("Connection", "close")]))
        r = c.read_response()
        assert r.status == 200
        rest, closed = c.read_until_eof(5)
        assert closed and rest == b""


def test_many_client_connections_share_the_pool(fb, upstream):
    for _ in range(20):
        with RawConn(fb.port) as c:
            c.send(build_request("GET", "/echo", [("Host", "app.test")]))
            assert c.read_response().status == 200
    # two workers, each with its own pool: sequential clients need few connections
    assert upstream.connections <= 4, upstream.connections
