"""Retries and upstream failures: a refused endpoint, a stale pooled
connection, a reset, a malformed response."""

import time

from fbproc import RawConn, build_request, get, refused_port, request


def test_idempotent_requests_retried_on_other_endpoint(start_firebreak, upstream):
    fb = start_firebreak(["127.0.0.1:%d" % refused_port(), upstream.addr])
    statuses = []
    for i in range(20):
        method = ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")[i % 5]
        r = request(fb.port, method, "/echo?i=%d" % i, body=b"x" if method == "PUT" else None)
        statuses.append((method, r.status))
    assert all(s == 200 for _, s in statuses), statuses
    assert len(upstream.requests) == 20


def test_post_to_refused_endpoint_is_never_duplicated(start_firebreak, upstream):
    """POST is not idempotent: it is answered 200 (sent once) or 502, never
    delivered twice."""
    fb = start_firebreak(["127.0.0.1:%d" % refused_port(), upstream.addr])
    statuses = []
    for i in range(10):
        r = request(fb.port, "POST", "/echo?i=%d" % i, body=b"payload %d" % i)
        statuses.append(r.status)
    assert set(statuses) <= {200, 502}, statuses
    targets = [r["target"] for r in upstream.requests]
    assert len(targets) == len(set(targets)), "a POST reached the upstream twice: %s" % targets
    assert statuses.count(200) == len(targets)


def test_reset_after_request_sent_is_502_for_post(fb, upstream):
    r = request(fb.port, "POST", "/reset", body=b"do it once")
    assert r.status == 502
    time.sleep(0.2)
    assert upstream.paths() == ["/reset"], "the POST was retried"


def test_reset_get_retried_once_on_the_other_endpoint(start_firebreak, upstream, upstream2):
    fb = start_firebreak([upstream.addr, upstream2.addr])
    r = get(fb.port, "/reset")
    assert r.status == 502
    time.sleep(0.2)
    # one attempt and one retry, on two different endpoints
    assert sorted([len(upstream.paths()), len(upstream2.paths())]) == [1, 1]


def test_stale_pooled_connection_retried_transparently(fb, upstream):
    """The upstream trims idle keep-alive connections 100 ms after answering,
    without Connection: close; the next request still succeeds."""
    upstream.idle_close_ms = 100
    with RawConn(fb.port) as c:
        for i in range(6):
            method = "GET" if i % 2 == 0 else "POST"
            body = b"body %d" % i if method == "POST" else None
            hdrs = [("Host", "app.test")]
            if body:
                hdrs.append(("Content-Length", str(len(body))))
            c.send(build_request(method, "/echo?i=%d" % i, hdrs, body))
            r = c.read_response()
            assert r.status == 200, "request %d after an idle close: %r" % (i, r)
            assert r.json()["target"] == "/echo?i=%d" % i
            time.sleep(0.3)
    assert upstream.connections >= 6


def test_request_on_connection_closed_under_it_is_retried(fb, upstream):
    """The upstream reads the next request on a pooled connection and closes
    without answering (the race of an idle close): the GET is retried."""
    with RawConn(fb.port) as c:
        c.send(build_request("GET", "/drop-next", [("Host", "app.test")]))
        assert c.read_response().status == 200
        c.send(build_request("GET", "/echo?after", [("Host", "app.test")]))
        r = c.read_response()
        assert r.status == 200 and r.json()["target"] == "/echo?after"
    dropped = [x["target"] for x in upstream.requests if x["dropped"]]
    assert dropped == ["/echo?after"], \
        "the scenario did not happen: the request was not sent on the pooled connection"


def test_malformed_upstream_response_is_502_and_counted(fb, upstream):
    before = fb.metrics().value("firebreak_upstream_errors_total")
    r = get(fb.port, "/badresp")
    assert r.status == 502
    deadline = time.monotonic() + 3
    after = before
    while time.monotonic() < deadline:
        after = fb.metrics().value("firebreak_upstream_errors_total")
        if after > before:
            break
        time.sleep(0.1)
    assert after >= before + 1, "firebreak_upstream_errors_total %s -> %s" % (before, after)
    # and the gateway goes on serving
    assert get(fb.port, "/echo").status == 200


def test_round_robin_over_endpoints(start_firebreak, upstream, upstream2):
    fb = start_firebreak([upstream.addr, upstream2.addr])
    for i in range(20):
        assert get(fb.port, "/echo?i=%d" % i).status == 200
    a, b = len(upstream.requests), len(upstream2.requests)
    assert a + b == 20
    assert min(a, b) >= 5, "round robin sent %d and %d requests" % (a, b)
