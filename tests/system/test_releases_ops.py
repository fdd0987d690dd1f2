"""Operating releases through the admin API, checked from the outside: rollback
under load, outlier ejection, the releases and weights API, persistence across
kill -9, and a reload that must not undo a rollback."""

import copy
import threading
import time

import pytest

import fbproc
import relhelp
from fbproc import RawConn, build_request
from relhelp import Api, StatusUpstream, events_of, wait_for
from upstream import Upstream


def two_releases(a1, a2, w1=None, w2=None):
    rels = [{"name": "v1", "endpoints": [a1]}, {"name": "v2", "endpoints": [a2]}]
    if w1 is not None:
        rels[0]["weight"] = w1
        rels[1]["weight"] = w2
    return rels


@pytest.fixture
def failing_upstream():
    up = StatusUpstream(500).start()
    yield up
    up.stop()
    assert not up.errors, "the failing upstream saw broken framing: %s" % up.errors


@pytest.fixture
def upstream3():
    up = Upstream().start()
    yield up
    up.stop()
    assert not up.errors, "upstream3 saw broken framing: %s" % up.errors


# rollback under load ----------------------------------------------------------
class LoadClient(threading.Thread):
    """One user on one keep-alive connection sending GETs tagged X-Test-Seq:
    one request, then it waits at `gate` (a Barrier shared with the test), then
    sends requests one after another until shared["stop_at"]. Records (seq,
    sent_at, status, release) per request, and any failure."""

    def __init__(self, port, idx, gate, shared):
        super().__init__(daemon=True)
        self.port = port
        self.idx = idx
        self.gate = gate
        self.shared = shared
        self.records = []
        self.failures = []
        self.conn = None
        self.n = 0

    def one(self):
        seq = "%d-%d" % (self.idx, self.n)
        self.n += 1
        try:
            if self.conn is None:
                self.conn = RawConn(self.port, timeout=10)
            data = build_request("GET", "/load/%s" % seq,
                                 [("Host", "app.test"), ("X-Test-Seq", seq),
                                  ("Cookie", "fb_uid=load-user-%d" % self.idx)])
            sent_at = time.monotonic()
            self.conn.send(data)
            r = self.conn.read_response()
            self.records.append((seq, sent_at, r.status, r.get("X-Firebreak-Release")))
            if not 200 <= r.status < 300:
                self.failures.append("%s: status %d %r" % (seq, r.status, r.body[:100]))
            if (r.get("Connection") or "").lower() == "close":
                self.conn.close()
                self.conn = None
        except (OSError, fbproc.ClosedError, AssertionError) as e:
            self.failures.append("%s: %s: %s" % (seq, type(e).__name__, e))
            if self.conn is not None:
                self.conn.close()
            self.conn = None

    def run(self):
        try:
            self.one()
            try:
                self.gate.wait(30)
            except threading.BrokenBarrierError:
                self.failures.append("client %d: the start gate broke" % self.idx)
                return
            while time.monotonic() < self.shared["stop_at"]:
                self.one()
        finally:
            if self.conn is not None:
                self.conn.close()


CLIENTS = 200
LOAD_SECONDS = 3.0


@pytest.mark.timeout_s(90)
def test_rollback_under_load(start_firebreak, tmp_path, upstream, upstream2):
    """200 clients for 3 s; a rollback in the middle. Every answer is 2xx, and
    no request sent after the rollback call returned reaches v2's upstream."""
    cfg = relhelp.release_config(str(tmp_path), two_releases(upstream.addr, upstream2.addr,
                                                             50, 50))
    fb = start_firebreak(None, config=cfg)
    api = Api(fb)
    assert api.weights() == {"v1": 50, "v2": 50}
    shared = {}
    gate = threading.Barrier(CLIENTS + 1, action=lambda: shared.update(
        stop_at=time.monotonic() + LOAD_SECONDS))
    clients = [LoadClient(fb.port, i, gate, shared) for i in range(CLIENTS)]
    for c in clients:
        c.start()
    gate.wait(60)  # every client has been answered once and is connected
    time.sleep(LOAD_SECONDS / 2)
    before_call = time.monotonic()
    r = api.post("services/app/rollback", {"reason": "rollback under load"})
    returned = time.monotonic()
    for c in clients:
        c.join(30)
    assert not any(c.is_alive() for c in clients), "clients still running"

    assert r.status == 200, r
    assert r.doc["service"] == "app" and r.doc["stable"] == "v1"
    assert r.doc["weights"] == {"v1": 100, "v2": 0}
    published = r.doc["published_us"]
    assert isinstance(published, (int, float)) and published >= 0, r.doc
    assert published <= (returned - before_call) * 1e6, \
        "published_us %r is longer than the whole call took" % published

    failures = [f for c in clients for f in c.failures]
    records = [rec for c in clients for rec in c.records]
    assert not failures, "%d of %d requests failed, first: %s" \
        % (len(failures), len(records) + len(failures), failures[:5])
    after = [rec for rec in records if rec[1] > returned]
    before = [rec for rec in records if rec[1] <= returned]
    assert len(after) >= CLIENTS and len(before) >= CLIENTS, \
        "too little load to judge: %d requests before, %d after" % (len(before), len(after))
    assert sum(1 for rec in before if rec[3] == "v2") >= CLIENTS / 4, \
        "v2 served too little before the rollback"

    at_v2 = set(relhelp.seen_header(upstream2, "X-Test-Seq"))
    at_v1 = set(relhelp.seen_header(upstream, "X-Test-Seq"))
    leaked = [rec[0] for rec in after if rec[0] in at_v2]
    assert not leaked, "%d requests sent after the rollback returned reached v2: %s" \
        % (len(leaked), leaked[:10])
    wrong = [rec for rec in after if rec[3] != "v1" or rec[0] not in at_v1]
    assert not wrong, "after the rollback, answers not from v1: %s" % wrong[:10]
    assert api.weights() == {"v1": 100, "v2": 0}

    # /metrics tells the same story, split by release.
    m = fb.metrics()
    assert m.value("firebreak_rollbacks_total", service="app", trigger="manual") == 1
    assert m.value("firebreak_release_weight", service="app", release="v1") == 100
    assert m.value("firebreak_release_weight", service="app", release="v2") == 0
    for rel in ("v1", "v2"):
        seen = sum(1 for rec in records if rec[3] == rel)
        counted = m.value("firebreak_requests_total", service="app", release=rel)
        assert counted == seen, "%s: clients saw %d answers, /metrics counts %r" \
            % (rel, seen, counted)


def test_requests_in_flight_across_route_table_swaps(start_firebreak, tmp_path, upstream,
                                                    upstream2, upstream3):
    """Slow requests started before weight changes, a release add and remove
    and a rollback all finish with their 200 from the release that took them."""
    cfg = relhelp.release_config(str(tmp_path), two_releases(upstream.addr, upstream2.addr,
                                                             50, 50))
    fb = start_firebreak(None, config=cfg)
    api = Api(fb)
    conns = []
    for k in range(16):
        c = RawConn(fb.port, timeout=10)
        c.send(build_request("GET", "/slow/1200", [("Host", "app.test"),
                                                   ("Cookie", "fb_uid=slow-%d" % k)]))
        conns.append(c)
    wait_for(lambda: len(upstream.requests) + len(upstream2.requests) == 16, timeout=5,
             what="16 slow requests at the upstreams")
    api.set_weights({"v1": 10, "v2": 90})
    api.add_release("v3", [upstream3.addr])
    api.set_weights({"v1": 10, "v2": 0, "v3": 90})
    api.set_weights({"v1": 100})
    assert api.delete("services/app/releases/v3").status == 204
    assert api.post("services/app/rollback").status == 200
    by_port = {upstream.port: "v1", upstream2.port: "v2"}
    for c in conns:
        r = c.read_response()
        assert r.status == 200, r
        assert r.get("X-Firebreak-Release") == by_port[r.json()["upstream_port"]]
        # the same connection, after the swaps: stable only
        c.send(build_request("GET", "/after", [("Host", "app.test")]))
        r = c.read_response()
        assert r.status == 200 and r.get("X-Firebreak-Release") == "v1", r
        c.close()


# ejection ---------------------------------------------------------------------
def test_failing_release_is_ejected_and_its_users_get_stable(start_firebreak, tmp_path,
                                                              upstream, failing_upstream):
    cfg = relhelp.release_config(str(tmp_path),
                                 two_releases(upstream.addr, failing_upstream.addr, 50, 50))
    fb = start_firebreak(None, config=cfg)
    api = Api(fb)
    bad = failing_upstream.addr

    # New users one at a time: v1 users get 200 from v1, v2 users get v2's 500,
    # until the fifth failure ejects v2's only endpoint.
    failed_users = []
    i = 0
    while len(failed_users) < 5 and i < 400:
        user = "ej-%d" % i
        i += 1
        r = fbproc.get(fb.port, "/checkout", [("Cookie", "fb_uid=" + user)])
        rel = r.get("X-Firebreak-Release")
        if r.status == 500:
            assert rel == "v2", "a 500 from %r" % rel
            failed_users.append(user)
        else:
            assert (r.status, rel) == (200, "v1"), r
            assert r.json()["upstream_port"] == upstream.port
    assert len(failed_users) == 5, "only %d v2 users in %d" % (len(failed_users), i)
    assert len(failing_upstream.requests) == 5

    # The v2 users now get stable's answers; new users too.
    for user in failed_users + ["ej-new-%d" % k for k in range(30)]:
        r = fbproc.get(fb.port, "/checkout", [("Cookie", "fb_uid=" + user)])
        assert r.status == 200 and r.get("X-Firebreak-Release") == "v1", \
            "user %s after the ejection: %d from %r" % (user, r.status,
                                                         r.get("X-Firebreak-Release"))
        assert r.json()["upstream_port"] == upstream.port
    assert len(failing_upstream.requests) == 5, \
        "the ejected endpoint still got requests: %d" % len(failing_upstream.requests)

    svc = api.service()
    v2 = [rel for rel in svc["releases"] if rel["name"] == "v2"][0]
    ep = v2["endpoints"][0]
    assert ep["address"] == bad and ep["state"] == "ejected", ep
    assert ep["ejections"] == 1 and ep["ejected_until"], ep
    assert v2["weight"] == 50, "ejection must not change the weight: %r" % v2

    ev = wait_for(lambda: events_of(api, "ejection"), timeout=5, what="an ejection event")
    assert len(ev) == 1, ev
    assert ev[0]["release"] == "v2" and ev[0]["details"]["endpoint"] == bad, ev[0]
    assert ev[0]["actor"] == "system"

    m = fb.metrics()
    assert m.value("firebreak_ejections_total", service="app", release="v2",
                   endpoint=bad) == 1, m.find("firebreak_ejections_total")
    assert m.value("firebreak_ejections_total", service="app", release="v1") == 0


def test_refused_release_is_ejected_without_panic(start_firebreak, tmp_path, upstream):
    """v2's only endpoint refuses connections. Its users get errors until it is
    ejected (5 failed connections), then stable's answers; panic mode is for
    stable only, so no request of v2 is ever sent to the ejected endpoint."""
    dead = "127.0.0.1:%d" % fbproc.refused_port()
    cfg = relhelp.release_config(str(tmp_path), two_releases(upstream.addr, dead, 50, 50))
    fb = start_firebreak(None, config=cfg)
    api = Api(fb)
    answers = []
    for k in range(40):
        r = fbproc.get(fb.port, "/refused", [("Cookie", "fb_uid=rf-%d" % k)])
        answers.append((r.status, r.get("X-Firebreak-Release")))
    ep = [rel for rel in api.service()["releases"] if rel["name"] == "v2"][0]["endpoints"][0]
    assert ep["state"] == "ejected" and ep["ejections"] == 1, ep
    errors = [a for a in answers if a[0] != 200]
    assert len(errors) <= 5 and all(a[0] == 502 for a in errors), answers
    assert all(a == (200, "v1") for a in answers if a[0] == 200), answers
    last_error = max(i for i, a in enumerate(answers) if a[0] != 200)
    assert answers[last_error + 1:] == [(200, "v1")] * (len(answers) - last_error - 1)
    panic = fb.metrics().value("firebreak_panic_requests_total", service="app", release="v2")
    assert panic == 0, "%r requests of v2 went to its ejected endpoint (panic mode): %r" \
        % (panic, answers)
    assert "panic" not in fb.stderr_text(), fb.stderr_tail()


def test_one_failing_endpoint_is_ejected_and_the_release_keeps_serving(
        start_firebreak, tmp_path, upstream, upstream2, failing_upstream):
    """v2 has a good and a failing endpoint: only the failing one is ejected,
    and v2's users stay on v2, served by the good one."""
    rels = [{"name": "v1", "endpoints": [upstream.addr], "weight": 0},
            {"name": "v2", "endpoints": [failing_upstream.addr, upstream2.addr], "weight": 100}]
    fb = start_firebreak(None, config=relhelp.release_config(str(tmp_path), rels))
    statuses = []
    for k in range(40):
        r = fbproc.get(fb.port, "/partial/%d" % k, [("Cookie", "fb_uid=pe-%d" % k)])
        assert r.get("X-Firebreak-Release") == "v2", r
        statuses.append(r.status)
        if r.status == 200:
            assert r.json()["upstream_port"] == upstream2.port
    assert statuses.count(500) == 5, statuses
    assert statuses[-20:] == [200] * 20, statuses
    eps = {e["address"]: e for rel in Api(fb).service()["releases"] for e in rel["endpoints"]}
    assert eps[failing_upstream.addr]["state"] == "ejected"
    assert eps[upstream2.addr]["state"] == "healthy"
    assert not upstream.requests, "stable served v2's users though v2 had a healthy endpoint"


def test_stable_is_never_emptied(start_firebreak, tmp_path, failing_upstream):
    """Stable's only endpoint fails: after 5 failures it is ejected, yet users
    still reach it (panic mode, counted), never a gateway error."""
    cfg = relhelp.release_config(str(tmp_path),
                                 [{"name": "v1", "endpoints": [failing_upstream.addr]}])
    fb = start_firebreak(None, config=cfg)
    for k in range(12):
        r = fbproc.get(fb.port, "/panic/%d" % k)
        assert r.status == 500 and r.body.startswith(b"status 500 from"), \
            "request %d: %d %r (want the upstream's own 500)" % (k, r.status, r.body[:80])
        assert r.get("X-Firebreak-Release") == "v1"
    assert len(failing_upstream.requests) == 12
    ep = Api(fb).service()["releases"][0]["endpoints"][0]
    assert ep["state"] == "ejected", ep
    panic = fb.metrics().value("firebreak_panic_requests_total", service="app", release="v1")
    assert panic == 7, "12 requests, 5 before the ejection: want 7 panic requests, got %r" \
        % panic


def test_events_filters(start_firebreak, tmp_path, upstream, upstream2):
    cfg = relhelp.release_config(
        str(tmp_path), two_releases(upstream.addr, upstream2.addr),
        extra_services=[relhelp.service_entry("other", two_releases(upstream.addr,
                                                                     upstream2.addr),
                                              host="other.test")])
    fb = start_firebreak(None, config=cfg)
    api = Api(fb)
    api.set_weights({"v1": 90, "v2": 10})
    api.set_weights({"v1": 80, "v2": 20}, name="other")
    api.set_weights({"v1": 70, "v2": 30})
    every = api.events()
    assert [e["type"] for e in every if e["type"] == "weights_changed"] == \
        ["weights_changed"] * 3
    for e in every:
        assert e["time"].endswith("Z") and isinstance(e["time_ms"], int), e
    ids = [e["id"] for e in every]
    assert ids == sorted(ids)

    app = api.events("?service=app")
    assert app and all(e["service"] == "app" for e in app), app
    assert [e["details"]["weights"]["v2"] for e in app if e["type"] == "weights_changed"] == \
        [10, 30]
    after = api.events("?after=%d" % ids[-2])
    assert [e["id"] for e in after] == [ids[-1]]
    assert [e["id"] for e in api.events("?limit=2")] == ids[:2]
    assert [e["id"] for e in api.events("?since=10m")] == ids
    assert api.events("?since=%d" % (every[-1]["time_ms"] + 60000)) == []
    last = every[-1]
    assert last["id"] in [e["id"] for e in api.events("?since=" + last["time"])]
    for bad in ("?since=yesterday", "?limit=0", "?limit=5001", "?after=x"):
        assert_error(api.get("events" + bad), 400, "invalid")


def test_rollback_is_recorded_after_the_reply(start_firebreak, tmp_path, upstream, upstream2):
    cfg = relhelp.release_config(str(tmp_path), two_releases(upstream.addr, upstream2.addr,
                                                             90, 10))
    fb = start_firebreak(None, config=cfg)
    api = Api(fb)
    r = api.post("services/app/rollback", {"reason": "id check"})
    assert r.status == 200, r
    assert "published_us" in r.doc and r.doc["weights"] == {"v1": 100.0, "v2": 0.0}, r.doc
    ev = wait_for(lambda: events_of(api, "rollback"), timeout=5, what="the rollback event")
    assert ev[0]["details"]["reason"] == "id check", ev[0]


# releases and weights API ------------------------------------------------------
def assert_error(r, status, name):
    assert r.status == status, "want %d, got %r" % (status, r)
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    assert r.doc and r.doc.get("error") == name and r.doc.get("message"), r


def test_releases_api(start_firebreak, tmp_path, upstream, upstream2, upstream3):
    cfg = relhelp.release_config(str(tmp_path), two_releases(upstream.addr, upstream2.addr))
    fb = start_firebreak(None, config=cfg)
    api = Api(fb)

    # add: 201 with the service, the new release at weight 0
    r = api.post("services/app/releases", {"name": "v3", "endpoints": [upstream3.addr]})
    assert r.status == 201, r
    rels = {rel["name"]: rel for rel in r.doc["releases"]}
    assert set(rels) == {"v1", "v2", "v3"} and rels["v3"]["weight"] == 0
    assert rels["v3"]["endpoints"][0]["address"] == upstream3.addr
    assert [e for e in api.events() if e["type"] == "release_added" and e["release"] == "v3"]

    # refused: duplicate (409, see test_duplicate_release), bad endpoints, bad
    # name, unknown service
    for name in ("v3", "v2"):
        r = api.post("services/app/releases", {"name": name, "endpoints": [upstream.addr]})
        assert r.status == 409 and r.doc.get("message"), r
    for eps in (["db.internal:5432"], ["127.0.0.1:99999"], ["127.0.0.1"], [], [7]):
        assert_error(api.post("services/app/releases", {"name": "v4", "endpoints": eps}),
                     400, "invalid")
    assert_error(api.post("services/app/releases", {"name": "bad name", "endpoints":
                                                    [upstream.addr]}), 400, "invalid")
    assert_error(api.post("services/app/releases", raw=b"{not json"), 400, "invalid")
    assert_error(api.post("services/nosuch/releases", {"name": "v4", "endpoints":
                                                       [upstream.addr]}), 404, "not_found")
    assert set(api.weights()) == {"v1", "v2", "v3"}

    # weights: must add up to 100, unknown service 404; nothing changes on a refusal
    assert_error(api.put("services/app/weights", {"weights": {"v1": 90, "v3": 5}}),
                 400, "invalid")
    assert_error(api.put("services/app/weights", {"weights": {"v1": 90, "v3": 10.001}}),
                 400, "invalid")
    assert_error(api.put("services/app/weights", {"weights": {"v1": 110, "v3": -10}}),
                 400, "invalid")
    assert_error(api.put("services/nosuch/weights", {"weights": {"v1": 100}}), 404, "not_found")
    assert_error(api.get("services/nosuch"), 404, "not_found")
    assert_error(api.post("services/nosuch/rollback"), 404, "not_found")
    assert api.weights() == {"v1": 100, "v2": 0, "v3": 0}

    # 0.01 resolution
    doc = api.set_weights({"v1": 99.99, "v3": 0.01})
    assert {rel["name"]: rel["weight"] for rel in doc["releases"]} == \
        {"v1": 99.99, "v2": 0, "v3": 0.01}

    # the new release takes traffic once weighted; unlisted releases get 0
    doc = api.set_weights({"v1": 49.5, "v3": 50.5})
    assert {rel["name"]: rel["weight"] for rel in doc["releases"]} == \
        {"v1": 49.5, "v2": 0, "v3": 50.5}
    served = set()
    for k in range(40):
        r = fbproc.get(fb.port, "/r", [("Cookie", "fb_uid=api-user-%d" % k)])
        assert r.status == 200
        served.add((r.get("X-Firebreak-Release"), r.json()["upstream_port"]))
    assert served == {("v1", upstream.port), ("v3", upstream3.port)}, served

    # delete: refused while it takes traffic, 204 at weight 0, then gone
    assert_error(api.delete("services/app/releases/v3"), 409, "conflict")
    assert_error(api.delete("services/app/releases/v1"), 409, "conflict")  # stable
    api.set_weights({"v1": 100})
    r = api.delete("services/app/releases/v3")
    assert r.status == 204 and not r.raw, r
    assert set(api.weights()) == {"v1", "v2"}
    assert_error(api.delete("services/app/releases/v3"), 404, "not_found")
    assert [e for e in api.events() if e["type"] == "release_removed" and e["release"] == "v3"]
    r = fbproc.get(fb.port, "/r", [("Cookie", "fb_uid=api-user-1")])
    assert r.status == 200 and r.get("X-Firebreak-Release") == "v1"


def test_duplicate_release_is_refused(start_firebreak, tmp_path, upstream, upstream2):
    cfg = relhelp.release_config(str(tmp_path), two_releases(upstream.addr, upstream2.addr))
    fb = start_firebreak(None, config=cfg)
    api = Api(fb)
    r = api.post("services/app/releases", {"name": "v2", "endpoints": [upstream.addr]})
    assert_error(r, 409, "exists")
    assert [rel["endpoints"][0]["address"] for rel in api.service()["releases"]] == \
        [upstream.addr, upstream2.addr], "a refused duplicate changed the release"


# persistence --------------------------------------------------------------------
@pytest.mark.timeout_s(60)
def test_weights_and_events_survive_kill9(start_firebreak, tmp_path, upstream, upstream2,
                                          upstream3):
    cfg = relhelp.release_config(str(tmp_path), two_releases(upstream.addr, upstream2.addr))
    fb = start_firebreak(None, config=cfg)
    api = Api(fb)
    api.set_weights({"v1": 80, "v2": 20})
    r = api.post("services/app/rollback", {"reason": "kill9 test"})
    assert r.status == 200, r
    # The rollback answers once the swap is published and records its event
    # right after; wait until the event is visible before killing.
    wait_for(lambda: events_of(api, "rollback"), timeout=5, what="the rollback event")
    api.add_release("v3", [upstream3.addr])
    # A weight change answers once it is committed: kill -9 right after it.
    api.set_weights({"v1": 85, "v2": 10, "v3": 5})
    relhelp.kill9(fb)
    relhelp.restart(fb)

    assert api.weights() == {"v1": 85, "v2": 10, "v3": 5}, "weights lost across kill -9"
    v3 = [rel for rel in api.service()["releases"] if rel["name"] == "v3"]
    assert v3 and v3[0]["endpoints"][0]["address"] == upstream3.addr, \
        "the release added with the API was lost across kill -9"
    events = api.events()
    changed = [e for e in events if e["type"] == "weights_changed" and e["service"] == "app"]
    assert [e["details"]["weights"] for e in changed] == \
        [{"v1": 80, "v2": 20}, {"v1": 85, "v2": 10, "v3": 5}], changed
    assert [e for e in events if e["type"] == "release_added" and e["release"] == "v3"]
    rb = [e for e in events if e["type"] == "rollback" and e["service"] == "app"]
    assert len(rb) == 1 and rb[0]["details"]["reason"] == "kill9 test", rb
    assert rb[0]["release"] == "v2" and rb[0]["details"]["weights"] == {"v1": 100, "v2": 0}
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
    assert changed[0]["id"] < rb[0]["id"] < changed[1]["id"]
    # Traffic follows the restored weights.
    seen = set()
    for k in range(200):
        r = fbproc.get(fb.port, "/p", [("Cookie", "fb_uid=k9-%d" % k)])
        assert r.status == 200
        seen.add(r.get("X-Firebreak-Release"))
    assert seen == {"v1", "v2", "v3"}


def test_rollback_survives_kill9(start_firebreak, tmp_path, upstream, upstream2):
    """A restart after a crash must not send users back to the release that
    was rolled back."""
    cfg = relhelp.release_config(str(tmp_path), two_releases(upstream.addr, upstream2.addr,
                                                             50, 50))
    fb = start_firebreak(None, config=cfg)
    api = Api(fb)
    assert api.post("services/app/rollback", {"reason": "bad deploy"}).status == 200
    # The rollback is recorded right after it answers: wait for its event.
    wait_for(lambda: events_of(api, "rollback"), timeout=5, what="the rollback event")
    relhelp.kill9(fb)
    relhelp.restart(fb)
    assert api.weights() == {"v1": 100, "v2": 0}, "the rollback was undone by kill -9"
    for k in range(30):
        r = fbproc.get(fb.port, "/after-crash", [("Cookie", "fb_uid=rb-%d" % k)])
        assert r.status == 200 and r.get("X-Firebreak-Release") == "v1", r
    assert len(events_of(api, "rollback")) == 1


@pytest.mark.timeout_s(60)
def test_concurrent_weight_changes_what_you_see_survives_kill9(start_firebreak, tmp_path,
                                                               upstream, upstream2):
    """4 clients change weights 15 times each at once; every call is answered
    200 and recorded; the weights GET shows are the ones a kill -9 keeps."""
    cfg = relhelp.release_config(str(tmp_path), two_releases(upstream.addr, upstream2.addr))
    fb = start_firebreak(None, config=cfg)
    api = Api(fb)
    results = []
    lock = threading.Lock()

    def changer(t):
        for k in range(15):
            w2 = t * 15 + k + 1  # 1 .. 60, each once
            r = api.put("services/app/weights", {"weights": {"v1": 100 - w2, "v2": w2}})
            with lock:
                results.append((w2, r.status, r.raw[:200]))

    ts = [threading.Thread(target=changer, args=(t,)) for t in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(40)
    bad = [x for x in results if x[1] != 200]
    assert len(results) == 60 and not bad, bad[:5]
    live = api.weights()
    changed = [e for e in api.events("?limit=5000") if e["type"] == "weights_changed"]
    assert sorted(e["details"]["weights"]["v2"] for e in changed) == list(range(1, 61))
    assert changed[-1]["details"]["weights"] == live, \
        "the last weights_changed event %r is not what GET shows %r" \
        % (changed[-1]["details"]["weights"], live)
    relhelp.kill9(fb)
    relhelp.restart(fb)
    assert api.weights() == live, "GET showed %r before kill -9, %r after" % (live,
                                                                              api.weights())


# reload ---------------------------------------------------------------------------
@pytest.mark.timeout_s(60)
def test_reload_keeps_rollback(start_firebreak, tmp_path, upstream, upstream2, upstream3):
    """The config declares 50/50; after a rollback, a reload that adds an
    endpoint to v1 keeps v1 at 100 and v2 at 0."""
    cfg = relhelp.release_config(str(tmp_path), two_releases(upstream.addr, upstream2.addr,
                                                             50, 50))
    fb = start_firebreak(None, config=cfg)
    api = Api(fb)
    assert api.weights() == {"v1": 50, "v2": 50}
    assert api.post("services/app/rollback").status == 200
    new = copy.deepcopy(cfg)
    new["services"][0]["releases"][0]["endpoints"].append(upstream3.addr)
    fb.reload(new)

    def v1_endpoints():
        rel = [x for x in api.service()["releases"] if x["name"] == "v1"][0]
        return len(rel["endpoints"]) == 2 and rel

    wait_for(v1_endpoints, timeout=10, what="v1 with two endpoints after SIGHUP")
    assert api.weights() == {"v1": 100, "v2": 0}, "the reload undid the rollback"
    wait_for(lambda: [e for e in api.events() if e["type"] == "config_reload"], timeout=5,
             what="a config_reload event")
    ports = set()
    for k in range(40):
        r = fbproc.get(fb.port, "/reload", [("Cookie", "fb_uid=rl-%d" % k)])
        assert r.status == 200 and r.get("X-Firebreak-Release") == "v1", r
        ports.add(r.json()["upstream_port"])
    assert ports == {upstream.port, upstream3.port}, ports
    assert not upstream2.requests, "v2 got traffic after rollback and reload"

    # A release new in the config joins at weight 0 whatever the file says, and
    # the file's `stable:` does not override the runtime stable.
    newer = copy.deepcopy(new)
    svc = newer["services"][0]
    svc["releases"] = [{"name": "v1", "endpoints": [upstream.addr], "weight": 40},
                       {"name": "v2", "endpoints": [upstream2.addr], "weight": 30},
                       {"name": "v3", "endpoints": [upstream3.addr], "weight": 30}]
    svc["stable"] = "v2"
    fb.reload(newer)
    wait_for(lambda: "v3" in api.weights(), timeout=10, what="v3 after SIGHUP")
    assert api.weights() == {"v1": 100, "v2": 0, "v3": 0}
    assert api.service()["stable"] == "v1"


@pytest.mark.timeout_s(60)
def test_service_removed_from_config_comes_back_with_its_weights(start_firebreak, tmp_path,
                                                                 upstream, upstream2):
    rels = two_releases(upstream.addr, upstream2.addr)
    other = relhelp.service_entry("other", rels, host="other.test")
    cfg = relhelp.release_config(str(tmp_path), rels, extra_services=[other])
    cfg["services"][0]["match"]["host"] = "app.test"
    fb = start_firebreak(None, config=cfg)
    api = Api(fb)
    api.set_weights({"v1": 70, "v2": 30}, name="other")
    without = copy.deepcopy(cfg)
    without["services"].pop()
    fb.reload(without)
    wait_for(lambda: api.get("services/other").status == 404, timeout=10,
             what="service other gone after SIGHUP")
    r = fbproc.get(fb.port, "/x", host="other.test")
    assert r.status == 404, "a service removed from the config is still routed: %r" % r
    fb.reload(cfg)
    wait_for(lambda: api.get("services/other").status == 200, timeout=10,
             what="service other back after SIGHUP")
    assert api.weights("other") == {"v1": 70, "v2": 30}
    r = fbproc.get(fb.port, "/x", host="other.test")
    assert r.status == 200
