"""Helpers of the release tests (split, ejection, rollback, auth, events).

- release_config(workdir, releases, ...): a config with service `app` holding
  several releases, with sticky, allow_pin and initial weights; extra services.
- Api: the admin JSON API with a bearer token: api.get/put/post/delete(path, body)
  return an ApiReply (status, JSON document or None, headers).
- admin_token(fb): the token firebreak wrote to STATE/admin.token on first start.
- StatusUpstream: an upstream.py server that answers one fixed status to every
  request (a release that fails everything), recording requests like Upstream.
- Sent, fan_out(port, sent, threads, batch): requests spread over several
  keep-alive connections in threads, sent in pipelined batches and read with
  the strict fbproc parser; each Sent gets its response (or error) and times.
- PortUpstreams(workdir, n): n fast upstreams (Debian nginx when installed, else a
  Python one) answering every request with 200 and the body `upstream=PORT`, for
  tests that send tens of thousands of requests.
- kill9(fb), restart(fb): SIGKILL a gateway and start it again on the same config
  and state directory.
- wait_for(predicate, timeout): poll until true.
- sigma_bound(n, p): 3 standard deviations of a Binomial(n, p) count.
"""

import copy
import http.client
import json
import math
import os
import signal
import threading
import time

import fbproc
from fbproc import RawConn, build_request
from upstream import Upstream


# config -----------------------------------------------------------------------
def release_config(workdir, releases, stable="v1", sticky=None, allow_pin=False,
                   workers=2, extra_services=None, **kw):
    """A base_config whose service `app` has the given releases.

    releases: [{"name": "v1", "endpoints": [...], "weight": 95}, ...] (weight optional).
    sticky: None (the default cookie fb_uid), or {"header": "X-User-Id"}, {"ip": True}...
    extra_services: more service dicts appended as given.
    """
    cfg = fbproc.base_config(workdir, [], workers=workers, releases=copy.deepcopy(releases),
                             **kw)
    svc = cfg["services"][0]
    svc["stable"] = stable
    if sticky is not None:
        svc["sticky"] = dict(sticky)
    if allow_pin:
        svc["allow_pin"] = True
    for extra in extra_services or []:
        cfg["services"].append(copy.deepcopy(extra))
    return cfg


def service_entry(name, releases, stable="v1", host="*", path_prefix="/", sticky=None,
                  allow_pin=False):
    """One services[] entry (for extra_services)."""
    svc = {"name": name, "match": {"host": host, "path_prefix": path_prefix},
           "releases": copy.deepcopy(releases), "stable": stable}
    if sticky is not None:
        svc["sticky"] = dict(sticky)
    if allow_pin:
        svc["allow_pin"] = True
    return svc


def kill9(fb):
    """SIGKILL the gateway (no drain, no clean shutdown) and reap it."""
    fb.proc.send_signal(signal.SIGKILL)
    fb.proc.wait(10)
    for f in (fb._err, fb._out):
        f.close()


def restart(fb):
    """Start the same gateway again (same config file and state directory).
    The previous run's exit status is forgotten, so that the fixture's teardown
    judges this run (a crash of it is not hidden behind an earlier clean exit)."""
    fb.returncode = None
    return fb.start()


def stop(fb):
    """SIGTERM and wait; assert a clean exit (0)."""
    rc = fb.stop()
    assert rc == 0, "%s exited with %r after SIGTERM:\n%s" % (fb.name, rc, fb.stderr_tail())
    return rc


def state_dir(fb):
    return fb.config["state"]


def admin_token(fb):
    with open(os.path.join(state_dir(fb), "admin.token")) as f:
        return f.read().strip()


# admin API --------------------------------------------------------------------
class ApiReply:
    def __init__(self, status, body, headers):
        self.status = status
        self.raw = body
        self.headers = headers  # {lower name: value}
        try:
            self.doc = json.loads(body) if body else None
        except ValueError:
            self.doc = None

    def __repr__(self):
        return "<ApiReply %d %r>" % (self.status, self.raw[:300])


class Api:
    """The /api/v1 JSON API of one firebreak, with one token (None: no header)."""

    def __init__(self, fb, token="admin-file", timeout=10.0):
        self.fb = fb
        self.token = admin_token(fb) if token == "admin-file" else token
        self.timeout = timeout

    def with_token(self, token):
        return Api(self.fb, token, self.timeout)

    def call(self, method, path, body=None, raw=None, headers=None):
        """One call on a fresh connection; path is under /api/v1 unless it starts with /."""
        if not path.startswith("/"):
            path = "/api/v1/" + path
        hdrs = dict(headers or {})
        if self.token is not None:
            hdrs["Authorization"] = "Bearer " + self.token
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection("127.0.0.1", self.fb.admin_port, timeout=self.timeout)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            return ApiReply(r.status, r.read(), {k.lower(): v for k, v in r.getheaders()})
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.call("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    # shortcuts that assert success
    def service(self, name="app"):
        r = self.get("services/" + name)
        assert r.status == 200, "GET services/%s: %r" % (name, r)
        return r.doc

    def weights(self, name="app"):
        """{release: weight} as the API reports it."""
        return {rel["name"]: rel["weight"] for rel in self.service(name)["releases"]}

    def set_weights(self, weights, name="app"):
        r = self.put("services/%s/weights" % name, {"weights": weights})
        assert r.status == 200, "PUT weights %r: %r" % (weights, r)
        return r.doc

    def add_release(self, release, endpoints, name="app"):
        r = self.post("services/%s/releases" % name, {"name": release, "endpoints": endpoints})
        assert r.status == 201, "POST releases %s: %r" % (release, r)
        return r.doc

    def events(self, query=""):
        r = self.get("events" + query)
        assert r.status == 200, "GET events: %r" % r
        return r.doc["events"]

    def create_token(self, name, role):
        r = self.post("tokens", {"name": name, "role": role})
        assert r.status == 201, "POST tokens: %r" % r
        return r.doc["token"]


def wait_for(predicate, timeout=5.0, interval=0.05, what="condition"):
    """Poll predicate() until it returns something true; return it, or fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("%s not met after %.1fs" % (what, timeout))
        time.sleep(interval)


def events_of(api, etype, service="app"):
    return [e for e in api.events() if e["type"] == etype and e["service"] == service]


# upstreams --------------------------------------------------------------------
class StatusUpstream(Upstream):
    """An upstream that answers `status` (default 500) to every request, whatever
    the path, with `headers` added; it still records requests and checks their
    framing."""

    def __init__(self, status=500, headers=(), **kw):
        super().__init__(**kw)
        self.status = status
        self.extra_headers = list(headers)

    def _answer(self, c, rec, method, path, keep):
        body = b"status %d from %d\n" % (self.status, self.port)
        return self._send_simple(c, method, self.status,
                                 [("Content-Type", "text/plain")] + self.extra_headers,
                                 body, keep)


class PortUpstream(Upstream):
    """Answers 200 `upstream=PORT` to every request (the Python fallback of
    PortUpstreams)."""

    def _answer(self, c, rec, method, path, keep):
        return self._send_simple(c, method, 200, [("Content-Type", "text/plain")],
                                 b"upstream=%d\n" % self.port, keep)


NGINX_PORT_BODY = """
        default_type text/plain;
        location / { return 200 "upstream=$server_port\\n"; }
"""


class PortUpstreams:
    """n upstreams answering `upstream=PORT`: nginx when available (fast), else
    PortUpstream. .addrs lists HOST:PORT; stop() stops them all."""

    def __init__(self, workdir, n):
        self.servers = []
        self.kind = "nginx" if fbproc.Nginx.available() else "python"
        try:
            for i in range(n):
                if self.kind == "nginx":
                    srv = fbproc.Nginx(os.path.join(workdir, "nginx%d" % i), NGINX_PORT_BODY)
                    self.servers.append(srv)
                    srv.start()
                else:
                    self.servers.append(PortUpstream().start())
        except Exception:
            self.stop()
            raise

    @property
    def addrs(self):
        return ["127.0.0.1:%d" % s.port for s in self.servers]

    @property
    def ports(self):
        return [s.port for s in self.servers]

    def stop(self):
        for s in self.servers:
            s.stop()


def upstream_port_of(resp):
    """The PORT of a body `upstream=PORT`, or None."""
    body = resp.body.strip()
    if not body.startswith(b"upstream="):
        return None
    try:
        return int(body[len(b"upstream="):])
    except ValueError:
        return None


def seen_header(up, name):
    """Values of request header `name` at upstream `up`, one per recorded request."""
    name = name.lower()
    with up.lock:
        recs = list(up.requests)
    out = []
    for rec in recs:
        vals = [v for n, v in rec["headers"] if n.lower() == name]
        out.append(vals[0] if vals else None)
    return out


# traffic ----------------------------------------------------------------------
class Sent:
    """One request to send: target, extra headers; after sending: the response
    and the monotonic times it was sent and answered."""

    __slots__ = ("target", "headers", "resp", "sent_at", "answered_at", "error")

    def __init__(self, target="/echo", headers=()):
        self.target = target
        self.headers = list(headers)
        self.resp = None
        self.sent_at = None
        self.answered_at = None
        self.error = None


def _send_batch(conn, batch, host):
    data = b"".join(build_request("GET", s.target, [("Host", host)] + s.headers)
                    for s in batch)
    now = time.monotonic()
    for s in batch:
        s.sent_at = now
    conn.send(data)
    for s in batch:
        s.resp = conn.read_response()
        s.answered_at = time.monotonic()


def fan_out(port, sent, threads=8, batch=16, host="app.test", timeout=20.0):
    """Send every Sent over `threads` keep-alive connections, `batch` pipelined
    requests per write. Each thread reconnects after a response with
    Connection: close. Fills in .resp (or .error); returns sent."""
    slices = [sent[i::threads] for i in range(threads)]

    def run(items):
        conn = None
        i = 0
        try:
            while i < len(items):
                part = items[i:i + batch]
                if conn is None:
                    conn = RawConn(port, timeout=timeout)
                try:
                    _send_batch(conn, part, host)
                except (OSError, fbproc.ClosedError, AssertionError) as e:
                    for s in part:
                        if s.resp is None:
                            s.error = "%s: %s" % (type(e).__name__, e)
                    conn.close()
                    conn = None
                    i += len(part)
                    continue
                if any((s.resp.get("Connection") or "").lower() == "close" for s in part):
                    conn.close()
                    conn = None
                i += len(part)
        finally:
            if conn is not None:
                conn.close()

    run_threads(run, slices, timeout, "clients")
    return sent


def run_threads(fn, slices, timeout, what):
    """Runs fn(slice) for each slice on its own thread and waits for all of them, at most
    timeout seconds in all; fails when one is still running then."""
    ts = [threading.Thread(target=fn, args=(sl,), daemon=True) for sl in slices]
    for t in ts:
        t.start()
    deadline = time.monotonic() + timeout
    for t in ts:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in ts), "%s still running after %.0fs" % (what, timeout)


def release_of(s):
    return s.resp.get("X-Firebreak-Release") if s.resp is not None else None


def sigma_bound(n, p):
    """Three standard deviations of a Binomial(n, p) count."""
    return 3.0 * math.sqrt(n * p * (1.0 - p))
