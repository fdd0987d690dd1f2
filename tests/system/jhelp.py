"""Helpers of the write journal system tests (issue 6, docs/journal.md).

- WriteUpstream(first_id, fail_every=0): an application taking writes: a POST
  answers 201 with `Location: <path>/N` (N counts up from first_id; a POST to
  .../login answers 200 without a Location), PUT and
  PATCH 200, DELETE 204, anything else 200; with fail_every=k every k-th
  request it reads (over all connections) is answered 500 without a Location.
- journal_config(workdir, releases, identity, journal=None, ...): service `app`
  with the releases, sticky on X-User-Id, `identity:` and `journal:` as given.
- Write: one write a client sent and what it saw: method, path, headers, body,
  user, identity, request id, status, release (X-Firebreak-Release), Location,
  wall-clock times sent and answered; expected_entity() says which record the
  journal should name (the rules of docs/journal.md, for the paths used here).
- send_writes(port, writes, threads): the writes over keep-alive connections in
  threads, one at a time per connection (each answer read before the next).
- user_writes(n_users, ...): a few writes for each of n users, of every shape
  the entity rules cover; each with its own X-Request-Id.
- WriteLoad(port, ...): rohelp.Load sending POST writes (paced, or as fast as it
  can with rps=None), each answer recorded as a WriteReply.
- impact(api, release, **query), export(api, release, fmt, **query): the
  journal API; export parses CSV or JSON lines into dicts.
- wait_exported(api, release, request_ids): poll the export until it lists
  every given request id (the writer commits at least every 50 ms).
- jwt(payload): an unsigned-looking bearer token carrying a JSON payload.
- journal_bytes(state): the bytes of every STATE/journal* file (-wal first).
- longest_silence(times, start, end): the longest gap between answers.
- cli(binary, fb, *args): run a client command against a gateway.
"""

import base64
import csv
import io
import json
import os
import subprocess
import threading
import time

import fbproc
import relhelp
import rohelp
from fbproc import RawConn, build_request
from upstream import Upstream

USER_HEADER = "X-User-Id"        # sticky: keeps a user on one release
ACCOUNT_HEADER = "X-Account-Id"  # identity: who the write belongs to
EXPORT_COLUMNS = {"id", "time", "time_ms", "request_id", "service", "release", "method", "path",
                  "route", "identity", "entity", "location", "status", "duration_us",
                  "upstream_us", "body"}


# the application ------------------------------------------------------------------
class WriteUpstream(Upstream):
    """A REST-ish application: POST creates (201 + Location; a POST to a path
    ending in /login answers 200 without one), PUT/PATCH 200, DELETE 204;
    every `fail_every`-th request gets a 500 when fail_every > 0."""

    def __init__(self, first_id=1, fail_every=0, **kw):
        super().__init__(**kw)
        self.next_id = first_id
        self.fail_every = fail_every
        self.count = 0
        self.failed = 0
        self._id_lock = threading.Lock()

    def _answer(self, c, rec, method, path, keep):
        text = [("Content-Type", "application/json")]
        with self._id_lock:
            self.count += 1
            fail = self.fail_every and self.count % self.fail_every == 0
            if fail:
                self.failed += 1
            new_id = self.next_id
            if method == "POST" and not fail:
                self.next_id += 1
        if fail:
            return self._send_simple(c, method, 500, text, b'{"error":"release failure"}', keep)
        if method == "POST" and not path.endswith("/login"):
            loc = "%s/%d" % (path.rstrip("/"), new_id)
            return self._send_simple(c, method, 201, text + [("Location", loc)],
                                     b'{"id":%d}' % new_id, keep)
        if method == "DELETE":
            return self._send_simple(c, method, 204, [], b"", keep)
        return self._send_simple(c, method, 200, text, b'{"ok":true}', keep)


# config -----------------------------------------------------------------------------
def journal_config(workdir, releases, identity=None, journal=None, top_journal=None,
                   workers=2, **kw):
    """Service `app` with `releases` (weights optional), sticky on X-User-Id,
    `identity` ({"header": ...} / {"jwt": "sub"}), `journal` (services[].journal)
    and `top_journal` (the top-level journal mapping) when given."""
    cfg = relhelp.release_config(workdir, releases, sticky={"header": USER_HEADER},
                                 workers=workers, **kw)
    svc = cfg["services"][0]
    if identity is not None:
        svc["identity"] = dict(identity)
    if journal is not None:
        svc["journal"] = dict(journal)
    if top_journal is not None:
        cfg["journal"] = dict(top_journal)
    return cfg


# writes -----------------------------------------------------------------------------
class Write:
    """One write request and what its client saw."""

    __slots__ = ("method", "path", "headers", "body", "user", "identity", "request_id",
                 "status", "release", "location", "sent_at", "answered_at", "error")

    def __init__(self, method, path, user, identity=None, request_id=None, body=None,
                 headers=()):
        self.method = method
        self.path = path
        self.user = user
        self.identity = identity
        self.request_id = request_id
        self.body = body
        self.headers = list(headers)
        self.status = None
        self.release = None
        self.location = None
        self.sent_at = None
        self.answered_at = None
        self.error = None

    def request_bytes(self, host="app.test"):
        hdrs = [("Host", host), (USER_HEADER, self.user)]
        if self.identity is not None:
            hdrs.append((ACCOUNT_HEADER, self.identity))
        if self.request_id is not None:
            hdrs.append(("X-Request-Id", self.request_id))
        hdrs += self.headers
        if self.body is not None:
            hdrs.append(("Content-Type", "application/json"))
            hdrs.append(("Content-Length", str(len(self.body))))
        elif self.method in ("POST", "PUT", "PATCH"):
            hdrs.append(("Content-Length", "0"))
        return build_request(self.method, self.path, hdrs, self.body)

    @property
    def is_write(self):
        return self.method in ("POST", "PUT", "PATCH", "DELETE")

    def route(self):
        """The route class firebreak should give the path (numbers become :id)."""
        segs = self.path.split("?", 1)[0].split("/")
        return self.method + " " + "/".join(":id" if s.isdigit() else s for s in segs)

    def expected_entity(self):
        """The entity docs/journal.md names for this write: the identifier
        segments of the path with the segment before each; when the path has
        none, those of the Location; None when neither has one."""
        def pairs(path):
            if "://" in path:
                path = "/" + path.split("://", 1)[1].split("/", 1)[1]
            segs = [s for s in path.split("?", 1)[0].split("/") if s]
            out = []
            for i, s in enumerate(segs):
                if s.isdigit() and i > 0:
                    out.append(segs[i - 1] + "/" + s)
            return "/".join(out)

        ent = pairs(self.path)
        if not ent and self.location:
            ent = pairs(self.location)
        return ent or None


def send_writes(port, writes, threads=8, host="app.test", timeout=30.0):
    """Send every Write over `threads` keep-alive connections; fill in status,
    release, location, times (time.time()) or error. Returns writes."""
    slices = [writes[i::threads] for i in range(threads)]

    def run(items):
        conn = None
        for w in items:
            try:
                if conn is None:
                    conn = RawConn(port, timeout=timeout)
                data = w.request_bytes(host)
                w.sent_at = time.time()
                conn.send(data)
                r = conn.read_response(w.method)
                w.answered_at = time.time()
                w.status = r.status
                w.release = r.get("X-Firebreak-Release")
                w.location = r.get("Location")
                if (r.get("Connection") or "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, fbproc.ClosedError, AssertionError) as e:
                w.error = "%s: %s" % (type(e).__name__, e)
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    relhelp.run_threads(run, slices, timeout, "writers")
    return writes


def user_writes(n_users, tag, anonymous_every=0):
    """For each user u: POST a new order (entity from Location), PUT and DELETE
    orders by id (one with a query), PATCH a nested record, POST an item under
    an order (the path's order wins over the Location), POST /api/login (no
    entity), and a GET that is not a write. Users whose number is a multiple of
    anonymous_every send no identity. Ids are unique per user."""
    out = []
    for u in range(n_users):
        user = "%s-u%d" % (tag, u)
        ident = None if anonymous_every and u % anonymous_every == 0 else "acct-%s-%d" % (tag, u)
        oid = 100000 + u * 10
        shapes = [
            ("POST", "/api/orders", b'{"item":"book","qty":%d}' % (u % 7 + 1)),
            ("PUT", "/api/orders/%d" % oid, b'{"qty":2}'),
            ("DELETE", "/api/orders/%d?soft=1" % (oid + 1), None),
            ("PATCH", "/api/users/%d/orders/%d" % (u + 1, oid + 2), b'{"note":"x"}'),
            ("POST", "/api/orders/%d/items" % (oid + 3), b'{"sku":"a-1"}'),
            ("POST", "/api/login", b'{"user":"%s"}' % user.encode()),
            ("GET", "/api/orders/%d" % oid, None),
        ]
        for k, (method, path, body) in enumerate(shapes):
            out.append(Write(method, path, user, ident, "%s-%d-%d" % (tag, u, k), body))
    return out


# load -------------------------------------------------------------------------------
class WriteReply(rohelp.Reply):
    __slots__ = ("request_id", "sent", "location")


class WriteLoad(rohelp.Load):
    """rohelp.Load sending `POST /api/orders` with a JSON body, the identity
    header and a unique X-Request-Id; rps=None sends as fast as each thread can.
    Replies are WriteReply (time = answered, sent = before sending, both
    time.time())."""

    def __init__(self, port, rps=200, threads=8, users=400, tag="w", **kw):
        super().__init__(port, rps=rps or 1, threads=threads, users=users, path="/api/orders",
                         **kw)
        self.paced = rps is not None
        self.tag = tag

    def _run(self, idx):
        interval = self.nthreads / float(self.rps)
        conn = None
        n = 0
        next_at = time.monotonic() + idx * interval / self.nthreads
        while not self.stop_event.is_set():
            if self.paced:
                delay = next_at - time.monotonic()
                if delay > 0 and self.stop_event.wait(delay):
                    break
                next_at = max(next_at + interval, time.monotonic() - interval)
            u = (idx + n * self.nthreads) % self.users
            user = "u-%d" % u
            rid = "%s-%d-%d" % (self.tag, idx, n)
            n += 1
            body = b'{"item":"pen","qty":%d}' % (n % 9 + 1)
            hdrs = [("Host", "app.test"), (USER_HEADER, user), (ACCOUNT_HEADER, "acct-%d" % u),
                    ("X-Request-Id", rid), ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body)))]
            sent = time.time()
            try:
                if conn is None:
                    conn = RawConn(self.port, timeout=self.timeout)
                sent = time.time()
                conn.send(build_request("POST", self.path, hdrs, body))
                r = conn.read_response("POST")
                rep = WriteReply(time.time(), user, r.status, r.get("X-Firebreak-Release"))
                rep.location = r.get("Location")
                if (r.get("Connection") or "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, fbproc.ClosedError, AssertionError) as e:
                rep = WriteReply(time.time(), user, None, None, "%s: %s" % (type(e).__name__, e))
                rep.location = None
                if conn is not None:
                    conn.close()
                conn = None
            rep.request_id = rid
            rep.sent = sent
            with self.lock:
                self.replies.append(rep)
        if conn is not None:
            conn.close()


# the journal API --------------------------------------------------------------------
def _query(release=None, **q):
    parts = []
    if release is not None:
        parts.append(("release", release))
    parts += [(k, str(v)) for k, v in q.items() if v is not None]
    return "&".join("%s=%s" % kv for kv in parts)


def impact(api, release, service="app", **q):
    """The impact report (asserts 200)."""
    r = api.get("services/%s/journal/impact?%s" % (service, _query(release, **q)))
    assert r.status == 200, "GET impact of %s: %r" % (release, r)
    return r.doc


class Export:
    def __init__(self, reply, rows):
        self.reply = reply
        self.rows = rows          # [dict]
        self.headers = reply.headers

    @property
    def dropped(self):
        return self.headers.get("x-firebreak-journal-dropped")


def parse_csv(raw):
    text = raw.decode("utf-8")
    assert text == "" or text.endswith("\r\n"), "CSV does not end in CRLF: %r" % text[-50:]
    return list(csv.DictReader(io.StringIO(text, newline="")))


def parse_jsonl(raw):
    return [json.loads(line) for line in raw.decode("utf-8").splitlines() if line]


def export(api, release, fmt="jsonl", service="app", **q):
    """The export's records as dicts (asserts 200)."""
    r = api.get("services/%s/journal/export?%s" % (service, _query(release, format=fmt, **q)))
    assert r.status == 200, "GET export of %s (%s): %r" % (release, fmt, r)
    rows = parse_csv(r.raw) if fmt == "csv" else parse_jsonl(r.raw)
    return Export(r, rows)


def wait_exported(api, release, request_ids, timeout=10.0, service="app"):
    """Poll the export until every request id in request_ids is listed; return
    the last Export."""
    want = set(request_ids)
    box = {}

    def check():
        box["ex"] = export(api, release, "jsonl", service)
        return want <= {row["request_id"] for row in box["ex"].rows}

    try:
        relhelp.wait_for(check, timeout, interval=0.1, what="the export listing the writes")
    except AssertionError:
        got = {row["request_id"] for row in box["ex"].rows}
        raise AssertionError("after %.0fs the export of %s lacks %d of %d writes, e.g. %s"
                             % (timeout, release, len(want - got), len(want),
                                sorted(want - got)[:5]))
    return box["ex"]


# identity ---------------------------------------------------------------------------
def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(payload, header=None):
    """header.payload.signature with base64url parts; the signature is junk."""
    head = header or {"alg": "HS256", "typ": "JWT"}
    return "%s.%s.%s" % (b64url(json.dumps(head).encode()), b64url(json.dumps(payload).encode()),
                         b64url(b"not-a-real-signature"))


# files and the command line -----------------------------------------------------------
def journal_bytes(state):
    """{name: bytes} of every journal file in the state directory: the spool's
    segments (records committed and not yet loaded), then journal.db, its index
    file and their -wal files, each -wal read before its database. A record
    leaves the spool only after it is in journal.db, and a checkpoint between
    the two reads copies the WAL into the database, so every committed byte is
    in one of the files read."""
    out = {}
    spool = os.path.join(state, "journal-spool")
    for n in sorted(os.listdir(spool)) if os.path.isdir(spool) else []:
        try:
            with open(os.path.join(spool, n), "rb") as f:
                out[os.path.join("journal-spool", n)] = f.read()
        except FileNotFoundError:  # loaded and removed since the listing
            pass
    names = sorted((n for n in os.listdir(state) if n.startswith("journal")
                    and os.path.isfile(os.path.join(state, n))),
                   key=lambda n: (n.replace("-wal", ""), not n.endswith("-wal")))
    for name in names:
        with open(os.path.join(state, name), "rb") as f:
            out[name] = f.read()
    return out


def longest_silence(times, start, end):
    """The longest stretch within [start, end] with none of `times` in it
    (seconds)."""
    pts = [start] + sorted(t for t in times if start <= t <= end) + [end]
    return max(b - a for a, b in zip(pts, pts[1:]))


def cli(binary, fb, *args, timeout=20):
    """Run `firebreak ARGS --admin URL` with the admin token; CompletedProcess
    whose stdout and stderr are str decoded as UTF-8, line ends kept as sent."""
    env = dict(os.environ, FIREBREAK_TOKEN=relhelp.admin_token(fb))
    cmd = [binary] + list(args) + ["--admin", "http://127.0.0.1:%d" % fb.admin_port]
    out = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout)
    out.stdout = out.stdout.decode("utf-8")
    out.stderr = out.stderr.decode("utf-8")
    return out
