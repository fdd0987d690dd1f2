"""The admin listener (/healthz, /metrics) and the JSON access log."""

import json
import os
import time

from fbproc import RawConn, build_request, get, header_values, refused_port, request


def test_healthz(fb):
    status, body = fb.admin_get("/healthz")
    assert status == 200


def test_admin_unknown_path_is_404(fb):
    status, _ = fb.admin_get("/no-such-thing")
    assert status == 404


def _wait_metric(fb, name, want, timeout=3.0, **labels):
    deadline = time.monotonic() + timeout
    while True:
        m = fb.metrics()
        v = m.value(name, **labels)
        if v >= want or time.monotonic() > deadline:
            return m, v
        time.sleep(0.1)


def test_metrics_count_requests_by_class(fb, upstream):
    before = fb.metrics()
    lab = {"service": "app", "release": "v1"}
    b2 = before.value("firebreak_requests_total", code_class="2xx", **lab)
    b4 = before.value("firebreak_requests_total", code_class="4xx", **lab)
    b5 = before.value("firebreak_requests_total", code_class="5xx", **lab)
    bc = before.value("firebreak_request_duration_seconds_count", **lab)
    for _ in range(7):
        assert get(fb.port, "/echo").status == 200
    for _ in range(3):
        assert get(fb.port, "/status/404").status == 404
    for _ in range(2):
        assert get(fb.port, "/status/503").status == 503
    m, _ = _wait_metric(fb, "firebreak_requests_total", b2 + 7, code_class="2xx", **lab)
    m, _ = _wait_metric(fb, "firebreak_request_duration_seconds_count", bc + 12, **lab)
    assert m.value("firebreak_requests_total", code_class="2xx", **lab) == b2 + 7
    assert m.value("firebreak_requests_total", code_class="4xx", **lab) == b4 + 3
    assert m.value("firebreak_requests_total", code_class="5xx", **lab) == b5 + 2
    assert m.types.get("firebreak_requests_total") == "counter"

    # the histogram: cumulative buckets ending in +Inf == _count
    assert m.types.get("firebreak_request_duration_seconds") == "histogram"
    buckets = m.find("firebreak_request_duration_seconds_bucket", **lab)
    assert buckets, "no duration buckets for service app, release v1"
    les = sorted(((float(b["le"]), v) for b, v in buckets), key=lambda x: x[0])
    assert les[-1][0] == float("inf")
    counts = [v for _, v in les]
    assert counts == sorted(counts), "buckets not cumulative: %s" % les
    assert les[-1][1] == m.value("firebreak_request_duration_seconds_count", **lab) == bc + 12
    assert m.value("firebreak_request_duration_seconds_sum", **lab) > 0

    # upstream errors and process metrics exist as families
    assert "firebreak_upstream_errors_total" in m.types or \
        "firebreak_upstream_errors_total" in m.names()
    assert any(n.startswith("process_") for n in m.names()), "no process metrics"


def test_upstream_errors_counted_when_upstream_down(start_firebreak):
    fb = start_firebreak(["127.0.0.1:%d" % refused_port()])
    before = fb.metrics().value("firebreak_upstream_errors_total")
    for _ in range(3):
        assert get(fb.port, "/echo").status == 502
    m, v = _wait_metric(fb, "firebreak_upstream_errors_total", before + 3)
    assert v >= before + 3
    assert m.value("firebreak_requests_total", service="app", release="v1",
                   code_class="5xx") >= 3


def test_access_log_json_lines(start_firebreak, upstream, tmp_path):
    path = os.path.join(str(tmp_path), "access.log")
    fb = start_firebreak([upstream.addr], access_log=path)
    sent = [("/echo", 200), ("/status/404", 404), ("/bytes/1234", 200)]
    for p, status in sent:
        assert get(fb.port, p).status == status
    deadline = time.monotonic() + 5
    lines = []
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                lines = [ln for ln in f.read().splitlines() if ln.strip()]
        if len(lines) >= len(sent):
            break
        time.sleep(0.1)
    assert len(lines) == len(sent), lines
    docs = [json.loads(ln) for ln in lines]
    # lines from different workers may come in any order: match them by request id
    want = {header_values(r["headers"], "X-Request-Id")[0]: (r["path"], status)
            for r, (_, status) in zip(upstream.requests, sent)}
    matched = {}
    for doc in docs:
        assert isinstance(doc, dict), doc
        rids = [v for v in doc.values() if isinstance(v, str) and v in want]
        assert len(rids) == 1, "no request id of %s in %s" % (list(want), doc)
        matched[rids[0]] = doc
    assert set(matched) == set(want)
    for rid, doc in matched.items():
        path, status = want[rid]
        assert doc.get("service") == "app" and doc.get("release") == "v1", doc
        assert doc.get("status") == status, doc
        dur = [k for k in doc if "dur" in k.lower() or k.lower().endswith("_ms")
               or k.lower().endswith("_us")]
        assert dur and all(isinstance(doc[k], (int, float)) for k in dur), doc
        out = [v for k, v in doc.items() if "bytes" in k.lower() and isinstance(v, int)]
        assert out, "no byte counts in %s" % doc
        if path == "/bytes/1234":
            assert any(v >= 1234 for v in out), doc


def test_open_connections_gauge_follows_clients(fb, upstream):
    conns = []
    try:
        for _ in range(3):
            c = RawConn(fb.port)
            c.send(build_request("GET", "/echo", [("Host", "app.test")]))
            assert c.read_response().status == 200
            conns.append(c)
        assert fb.metrics().value("firebreak_open_connections") == 3
    finally:
        for c in conns:
            c.close()
    deadline = time.monotonic() + 3
    while fb.metrics().value("firebreak_open_connections") != 0 and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    assert fb.metrics().value("firebreak_open_connections") == 0


def test_byte_counters_count_bodies(fb, upstream):
    lab = {"service": "app", "release": "v1"}
    m0 = fb.metrics()
    sent0 = m0.value("firebreak_sent_bytes_total", **lab)
    recv0 = m0.value("firebreak_received_bytes_total", **lab)
    assert request(fb.port, "GET", "/bytes/5000").status == 200
    assert request(fb.port, "POST", "/echo", body=b"z" * 3000).status == 200
    m, _ = _wait_metric(fb, "firebreak_sent_bytes_total", sent0 + 5000, **lab)
    assert m.value("firebreak_sent_bytes_total", **lab) >= sent0 + 5000
    assert m.value("firebreak_received_bytes_total", **lab) >= recv0 + 3000


def test_access_log_to_stdout(start_firebreak, upstream):
    fb = start_firebreak([upstream.addr], access_log="stdout")
    assert get(fb.port, "/status/201").status == 201
    deadline = time.monotonic() + 5
    docs = []
    while time.monotonic() < deadline and not docs:
        with open(fb.stdout_path) as f:
            docs = [json.loads(ln) for ln in f.read().splitlines() if ln.startswith("{")]
        time.sleep(0.1)
    assert len(docs) == 1 and docs[0].get("status") == 201, docs
