"""Helpers of the rollout, incident and status page system tests.

- PlainUpstream(delay_ms=0): answers 200 `ok` to every request (a healthy
  release), after a fixed delay when asked.
- FlakyUpstream(every=5): answers 500 to every `every`-th request it reads,
  counted over all its connections (every=5: a deterministic 20%), 200 `ok`
  to the others.
- Load(port, rps, threads, users): a bounded load generator: `threads` keep-alive
  connections sending GETs paced to `rps` requests per second in all, each
  request for one of `users` distinct users (sticky header X-User-Id: u-N).
  Every answer is recorded as Reply(time, user, status, release); start(),
  stop(), and the counting helpers below.
- rollout_config(workdir, v1, ...): a config for service `app` with release v1
  only, sticky on X-User-Id, optional status page, judge and webhooks.
- start_rollout / rollout_doc / wait_rollout: the rollout API.
- event_types / first_index: reading GET /api/v1/events.
- BadRollout: the scenario of issues 4 and 5: v2 (a FlakyUpstream) is added by
  the API under load and rolled out; the judge rolls it back. Holds the load's
  record, the events and figures the tests check.
- wait_series_tick(api): just after the one-second series sampled.
- settled_incident(api, id): the incident once its measured impact is final.
- HookReceiver(fail_first=N): a local webhook receiver recording every POST
  (headers and raw body); it answers 500 to the first N of each delivery id,
  200 after; signature_ok(secret, hit) checks X-Firebreak-Signature.
"""

import hashlib
import hmac
import http.server
import json
import threading
import time

import fbproc
import relhelp
from fbproc import RawConn, build_request
from relhelp import Api, wait_for
from upstream import Upstream

USER_HEADER = "X-User-Id"


# upstreams ----------------------------------------------------------------------
class PlainUpstream(Upstream):
    """200 `ok` to every request (cheaper than /echo at hundreds of requests/s),
    after `delay_ms` when given."""

    def __init__(self, delay_ms=0, **kw):
        super().__init__(**kw)
        self.delay_ms = delay_ms

    def _answer(self, c, rec, method, path, keep):
        if self.delay_ms:
            self.stop_event.wait(self.delay_ms / 1000.0)
        return self._send_simple(c, method, 200, [("Content-Type", "text/plain")], b"ok\n",
                                 keep)


class FlakyUpstream(Upstream):
    """500 to every `every`-th request read (over all connections), 200 to the rest."""

    def __init__(self, every=5, **kw):
        super().__init__(**kw)
        self.every = every
        self.count = 0
        self.failed = 0
        self._count_lock = threading.Lock()

    def _answer(self, c, rec, method, path, keep):
        with self._count_lock:
            self.count += 1
            fail = self.count % self.every == 0
            if fail:
                self.failed += 1
        if fail:
            return self._send_simple(c, method, 500, [("Content-Type", "text/plain")],
                                     b"release failure\n", keep)
        return self._send_simple(c, method, 200, [("Content-Type", "text/plain")], b"ok\n",
                                 keep)


# load ---------------------------------------------------------------------------
class Reply:
    __slots__ = ("time", "user", "status", "release", "error")

    def __init__(self, t, user, status, release, error=None):
        self.time = t            # time.time() when the answer came
        self.user = user
        self.status = status     # None on a transport error
        self.release = release   # X-Firebreak-Release of the answer
        self.error = error


class Load:
    """Paced GETs over keep-alive connections from several threads."""

    def __init__(self, port, rps=200, threads=8, users=400, path="/shop", timeout=10.0):
        self.port = port
        self.rps = rps
        self.nthreads = threads
        self.users = users
        self.path = path
        self.timeout = timeout
        self.replies = []
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.threads = []

    def _run(self, idx):
        interval = self.nthreads / float(self.rps)
        conn = None
        n = 0
        next_at = time.monotonic() + idx * interval / self.nthreads
        while not self.stop_event.is_set():
            delay = next_at - time.monotonic()
            if delay > 0 and self.stop_event.wait(delay):
                break
            next_at = max(next_at + interval, time.monotonic() - interval)
            user = "u-%d" % ((idx + n * self.nthreads) % self.users)
            n += 1
            try:
                if conn is None:
                    conn = RawConn(self.port, timeout=self.timeout)
                conn.send(build_request("GET", self.path,
                                        [("Host", "app.test"), (USER_HEADER, user)]))
                r = conn.read_response()
                rep = Reply(time.time(), user, r.status, r.get("X-Firebreak-Release"))
                if (r.get("Connection") or "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, fbproc.ClosedError, AssertionError) as e:
                rep = Reply(time.time(), user, None, None, "%s: %s" % (type(e).__name__, e))
                if conn is not None:
                    conn.close()
                conn = None
            with self.lock:
                self.replies.append(rep)
        if conn is not None:
            conn.close()

    def start(self):
        for i in range(self.nthreads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(self.timeout + 5)
        assert not any(t.is_alive() for t in self.threads), "load threads still running"

    def snapshot(self):
        with self.lock:
            return list(self.replies)

    def wait_count(self, n, timeout=10.0):
        wait_for(lambda: len(self.snapshot()) >= n, timeout, what="%d answers" % n)

    # figures
    def failed_by(self, release):
        """Answers from release with a 5xx status."""
        return [r for r in self.snapshot()
                if r.release == release and r.status is not None and r.status >= 500]

    def served_by(self, release):
        return [r for r in self.snapshot() if r.release == release]

    def errors(self):
        return [r for r in self.snapshot() if r.status is None]

    def rate(self):
        """Answers per second over the whole run."""
        reps = self.snapshot()
        if len(reps) < 2:
            return 0.0
        return len(reps) / max(1e-3, reps[-1].time - reps[0].time)


# config -------------------------------------------------------------------------
def rollout_config(workdir, v1_addr, status_page=None, judge=None, steps=None, webhooks=None,
                   workers=2):
    """Service `app`: release v1 at 100, sticky on X-User-Id."""
    cfg = relhelp.release_config(workdir, [{"name": "v1", "endpoints": [v1_addr]}],
                                 sticky={"header": USER_HEADER}, workers=workers)
    svc = cfg["services"][0]
    if judge:
        svc["judge"] = dict(judge)
    if steps:
        svc["rollout"] = {"steps": list(steps)}
    if status_page:
        cfg["status_page"] = dict(status_page)
    if webhooks:
        cfg["webhooks"] = list(webhooks)
    return cfg


# rollout API ----------------------------------------------------------------------
def start_rollout(api, release, steps=None, service="app"):
    body = {"release": release}
    if steps is not None:
        body["steps"] = list(steps)
    r = api.post("services/%s/rollout" % service, body)
    assert r.status == 201, "POST rollout %s: %r" % (release, r)
    return r.doc


def rollout_doc(api, service="app"):
    r = api.get("services/%s/rollout" % service)
    assert r.status == 200, "GET rollout: %r" % r
    return r.doc


def wait_rollout(api, predicate, timeout, what, service="app"):
    """Poll the rollout until predicate(doc); return the doc."""
    box = {}

    def check():
        box["doc"] = rollout_doc(api, service)
        return predicate(box["doc"])

    try:
        wait_for(check, timeout, interval=0.1, what=what)
    except AssertionError as e:
        raise AssertionError("%s; last rollout: %s" % (e, json.dumps(box.get("doc"))))
    return box["doc"]


def gate(api, service="app"):
    r = api.get("services/%s/gate" % service)
    assert r.status == 200, "GET gate: %r" % r
    return r.doc


# events -------------------------------------------------------------------------
def event_types(events):
    return [e["type"] for e in events]


def first_index(events, predicate, start=0):
    """Index of the first event at or after start matching predicate, or None."""
    for i in range(start, len(events)):
        if predicate(events[i]):
            return i
    return None


def in_order(events, predicates):
    """Indexes of events matching each predicate in turn, each after the last;
    None for the first one not found."""
    out = []
    pos = 0
    for p in predicates:
        i = first_index(events, p, pos)
        out.append(i)
        if i is None:
            break
        pos = i + 1
    return out


# the bad rollout ------------------------------------------------------------------
def wait_series_tick(api, timeout=3.0):
    """Return just after the one-second series sampled (the 10-second request
    count of v1 in GET /services/app changed); needs traffic on v1."""
    def count():
        for rel in api.service()["releases"]:
            if rel["name"] == "v1":
                return (rel.get("rates") or {}).get("requests")
        return None

    first = count()
    wait_for(lambda: count() != first, timeout, interval=0.01, what="a series tick")


class BadRollout:
    """v1 (healthy) serves `app`; under load, v2 (20% errors) is added through
    the API, `add_gap` seconds later rolled out; run() returns when the rollout
    has ended and the load has run on for `settle` seconds after it.

    align_to_tick: add v2 and start the rollout together, just after the
    one-second series sampled (the worst case for a series that starts
    counting a release at its first sample)."""

    STEPS = ["10%:30s", "50%:30s", "100%"]

    def __init__(self, fb, bad_upstream, rps=200, users=400, warmup=2.5, settle=2.0,
                 add_gap=1.5, align_to_tick=False):
        self.fb = fb
        self.bad = bad_upstream
        self.api = Api(fb)
        self.load = Load(fb.port, rps=rps, users=users)
        self.warmup = warmup
        self.settle = settle
        self.add_gap = add_gap
        self.align_to_tick = align_to_tick
        self.rollout = None
        self.started_at = None
        self.ended_at = None

    def run(self, timeout=25.0):
        self.load.start()
        try:
            self.load.wait_count(int(self.load.rps * self.warmup * 0.6), timeout=self.warmup * 3)
            time.sleep(max(0.0, self.warmup - 1.0))
            if self.align_to_tick:
                wait_series_tick(self.api)
            self.api.add_release("v2", [self.bad.addr])
            if self.add_gap:
                time.sleep(self.add_gap)
            self.started_at = time.time()
            start_rollout(self.api, "v2", self.STEPS)
            self.rollout = wait_rollout(self.api, lambda d: d["state"] not in
                                        ("pending", "progressing", "paused"), timeout,
                                        "the rollout of v2 ending")
            self.ended_at = time.time()
            time.sleep(self.settle)
        finally:
            self.load.stop()
        return self

    def failed(self):
        """What the clients saw: 5xx answers from v2."""
        return self.load.failed_by("v2")

    def users_failed(self):
        return {r.user for r in self.failed()}


def settled_incident(api, iid, timeout=8.0):
    """The incident once its impact is final: firebreak measures for 2 s after
    containment and re-measures once a second while the incident is open; wait
    until 3.5 s after containment, then for two equal readings a tick apart."""
    doc = api.get("incidents/" + iid).doc
    contained = doc["times"]["contained_ms"]
    if contained:
        left = contained / 1000.0 + 3.5 - time.time()
        if left > 0:
            time.sleep(left)
    deadline = time.monotonic() + timeout
    while True:
        time.sleep(1.1)
        again = api.get("incidents/" + iid).doc
        if again["impact"] == doc["impact"] or time.monotonic() > deadline:
            return again
        doc = again


# webhooks -----------------------------------------------------------------------------
class HookReceiver:
    """An HTTP server on 127.0.0.1 recording webhook POSTs as dicts
    {time, path, headers {lower: value}, body bytes, answered}; the first
    `fail_first` attempts of each delivery id are answered 500."""

    def __init__(self, fail_first=0):
        self.fail_first = fail_first
        self.hits = []
        self.lock = threading.Lock()
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                hdrs = {k.lower(): v for k, v in self.headers.items()}
                with recv.lock:
                    seen = sum(1 for h in recv.hits
                               if h["headers"].get("x-firebreak-delivery")
                               == hdrs.get("x-firebreak-delivery"))
                    status = 500 if seen < recv.fail_first else 200
                    recv.hits.append({"time": time.time(), "path": self.path,
                                      "headers": hdrs, "body": body, "answered": status})
                text = b"receiver down\n" if status == 500 else b"ok\n"
                self.send_response(status)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:%d/hook" % self.port

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def of_type(self, etype):
        with self.lock:
            return [h for h in self.hits if h["headers"].get("x-firebreak-event") == etype]


def signature_ok(secret, hit):
    ts = hit["headers"].get("x-firebreak-timestamp", "")
    mac = hmac.new(secret.encode(), ts.encode() + b"." + hit["body"], hashlib.sha256)
    return hmac.compare_digest("sha256=" + mac.hexdigest(),
                               hit["headers"].get("x-firebreak-signature", ""))
