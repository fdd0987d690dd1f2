#!/usr/bin/python3
"""The bad-deploy scenario of `make demo`, end to end, with real processes.

    demo.py --firebreak PATH [--keep] [--json PATH] [--users N] [--rate R]

`firebreak demo [--keep]` runs this file. In a fresh temporary directory it
writes a firebreak config, starts `firebreak serve`, the shop's release v1
(stable) and v2 (the new "discount at checkout" feature, with two faults) on
one shared SQLite file, and simulated users (distinct X-User-Id identities
browsing and ordering at a bounded rate). It adds v2 through the admin API,
starts a judged rollout, waits (bounded) for firebreak to roll it back, then
prints what happened, step by step.

Every figure printed under "firebreak" is read back from firebreak's API;
the driver's own counts of what its simulated users saw are printed beside
them, labelled as such, only to check them. The last section finds the
orders v2 damaged through the journal (when this build has one) and checks
each against the shop's database, read with the sqlite3 module.

Exit status: 0 when the scenario happened as expected (v2 rolled back during
the rollout, an incident caused by it, every damaged order accounted for);
1 otherwise, with the reason; 2 for a usage error. Child processes are
stopped on every way out (normal end, error, Ctrl-C, SIGTERM).
"""

import argparse
import atexit
import csv
import ctypes
import io
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import http.client
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SHOP = os.path.join(HERE, "shop.py")
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
SERVICE = "shop"
STEPS = ["5%:20s", "25%:20s", "50%:20s", "100%"]
WARMUP_S = 3.0           # stable-only traffic before v2 is added
ROLLBACK_BOUND_S = 60.0  # the rollout must be rolled back within this
SETTLE_S = 3.0           # traffic kept flowing after the rollback, so impact is final
READY_BOUND_S = 15.0
EXPORT_SHOWN = 20        # export records printed (all are saved to a file)
PR_SET_PDEATHSIG = 1


class ScenarioFailed(Exception):
    """The scenario did not happen as expected; the message says what."""


# ---- output ----------------------------------------------------------------------------------

def section(title):
    print("\n== %s" % title, flush=True)


def say(text="", indent=2):
    pad = " " * indent
    for line in str(text).split("\n"):
        print((pad + line).rstrip(), flush=True)


def fmt_time(ms):
    if not ms:
        return "-"
    return time.strftime("%H:%M:%S", time.gmtime(ms / 1000.0)) + ".%03dZ" % (int(ms) % 1000)


def fmt_s(x):
    return "-" if x is None else "%.1f s" % x


def wrap(text, width=96, indent=4, sep=None):
    """text folded at spaces (or into the items of the list `sep` is given for)."""
    words = list(text) if sep is not None else str(text).split()
    line, out = "", []
    sep = " " if sep is None else sep
    for w in words:
        if line and len(line) + len(sep) + len(w) > width - indent:
            out.append(line + sep.rstrip())
            line = w
        else:
            line = w if not line else line + sep + w
    if line:
        out.append(line)
    return "\n".join(" " * indent + x for x in out)


# ---- processes -------------------------------------------------------------------------------

def free_ports(n):
    """n distinct ports on 127.0.0.1 that are free now."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def _die_with_parent():
    """Runs in the child: SIGTERM it when the driver dies, even by SIGKILL."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class Children:
    """The processes the demo started; stop_all() ends each of them, by pid."""

    def __init__(self):
        self.procs = []  # (name, Popen, log file)

    def start(self, name, argv, log_path):
        log = open(log_path, "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             start_new_session=True, preexec_fn=_die_with_parent)
        self.procs.append((name, p, log))
        return p

    def check_alive(self):
        for name, p, log in self.procs:
            if p.poll() is not None:
                raise ScenarioFailed("%s exited early with status %s; see %s"
                                     % (name, p.returncode, log.name))

    def stop_all(self):
        """SIGTERM to each (SIGKILL after a bound); returns {name: exit status}."""
        status = {}
        for _, p, _ in reversed(self.procs):
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 8
        for _, p, log in reversed(self.procs):
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            log.close()
        for name, p, _ in self.procs:
            status[name] = p.returncode
        self.procs = []
        return status


def http_ok(url, timeout=1.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status == 200
    except (OSError, http.client.HTTPException):
        return False


def wait_ready(children, what, url, bound=READY_BOUND_S):
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        children.check_alive()
        if http_ok(url):
            return
        time.sleep(0.1)
    raise ScenarioFailed("%s did not answer %s within %.0f s" % (what, url, bound))


# ---- the admin API ---------------------------------------------------------------------------

class Api:
    """A small client of firebreak's admin API (docs/api.md)."""

    def __init__(self, base, token):
        self.base = base
        self.token = token

    def call(self, method, path, body=None, raw=False, timeout=10):
        """Returns (status, parsed JSON or text). Never raises on an HTTP status."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, text = r.status, r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode("utf-8", "replace")
        if raw:
            return status, text
        try:
            return status, json.loads(text) if text.strip() else None
        except ValueError:
            return status, text

    def need(self, method, path, body=None, expect=(200, 201)):
        status, j = self.call(method, path, body)
        if status not in expect:
            raise ScenarioFailed("%s %s answered %d: %s" % (method, path, status, j))
        return j


# ---- simulated users -------------------------------------------------------------------------

class Load:
    """Simulated users: distinct identities browsing and ordering through firebreak.

    Each of `threads` threads keeps one keep-alive connection and sends its
    share of `rate` requests per second until stop() or `bound_s`. Every answer
    is recorded (time, user, method, path, status, X-Firebreak-Release,
    Location) so the driver can check firebreak's figures against what the
    users saw.
    """

    MIX = (("browse", 0.40), ("orders", 0.20), ("order", 0.35), ("page", 0.05))

    def __init__(self, port, users, rate, threads, bound_s, seed=7):
        self.port = port
        self.users = ["user-%03d" % (i + 1) for i in range(users)]
        self.rate = rate
        self.nthreads = threads
        self.bound_s = bound_s
        self.seed = seed
        self.stop_ev = threading.Event()
        self.records = []
        self.lock = threading.Lock()
        self.threads = []
        self.transport_errors = 0

    def start(self):
        self.t0 = time.monotonic()
        for i in range(self.nthreads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(timeout=10)

    def _request(self, rnd):
        user = rnd.choice(self.users)
        x, kind = rnd.random(), "browse"
        for k, share in self.MIX:
            if x < share:
                kind = k
                break
            x -= share
        headers = {"X-User-Id": user}
        if kind == "browse":
            return user, "GET", "/api/products", None, headers
        if kind == "page":
            return user, "GET", "/", None, headers
        if kind == "orders":
            return user, "GET", "/api/orders?user=" + user, None, headers
        items = [{"product": rnd.randint(1, 8), "qty": rnd.randint(1, 3)}
                 for _ in range(rnd.randint(1, 3))]
        headers["Content-Type"] = "application/json"
        return user, "POST", "/api/orders", json.dumps({"user": user, "items": items}), headers

    def _run(self, idx):
        rnd = random.Random(self.seed * 1000 + idx)
        interval = self.nthreads / float(self.rate)
        nxt = time.monotonic() + idx * interval / self.nthreads
        conn = None
        while not self.stop_ev.is_set() and time.monotonic() - self.t0 < self.bound_s:
            now = time.monotonic()
            if nxt > now:
                self.stop_ev.wait(nxt - now)
                continue
            nxt = max(nxt + interval, now - 1.0)
            user, method, path, body, headers = self._request(rnd)
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request(method, path, body=body, headers=headers)
                r = conn.getresponse()
                r.read()
                rec = (time.time(), user, method, path, r.status,
                       r.getheader("X-Firebreak-Release", ""), r.getheader("Location", ""))
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                with self.lock:
                    self.transport_errors += 1
                if conn:
                    conn.close()
                conn = None
                continue
            with self.lock:
                self.records.append(rec)
        if conn:
            conn.close()

    def snapshot(self):
        with self.lock:
            return list(self.records)


# ---- the shop's database ---------------------------------------------------------------------

def wrong_totals(db_path, ids=None):
    """Orders whose stored total differs from sum(price * qty) of their items.

    Returns {order id: (user, release, stored total, sum of items)}; only among
    `ids` when given. Read-only, through the sqlite3 module.
    """
    conn = sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(db_path), uri=True, timeout=10)
    try:
        rows = conn.execute(
            "SELECT o.id, o.user, o.release, o.total, COALESCE(SUM(i.price * i.qty), 0) "
            "FROM orders o LEFT JOIN order_items i ON i.order_id = o.id GROUP BY o.id").fetchall()
    finally:
        conn.close()
    out = {}
    for oid, user, rel, total, items in rows:
        if total != items and (ids is None or oid in ids):
            out[oid] = (user, rel, total, items)
    return out


def order_count(db_path):
    conn = sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(db_path), uri=True, timeout=10)
    try:
        return conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    finally:
        conn.close()


ORDER_RE = re.compile(r"(?:^|/)orders/([0-9]+)(?:$|[/?#])")


def order_ids_of(record):
    """Order ids a journal record names (its entity, Location or path)."""
    ids = set()
    for key in ("entity", "location", "entities", "path"):
        v = record.get(key)
        for s in (v if isinstance(v, list) else [v]):
            if isinstance(s, str):
                ids.update(int(m) for m in ORDER_RE.findall(s))
    return ids


# ---- the scenario ----------------------------------------------------------------------------

class Demo:
    def __init__(self, args):
        self.args = args
        self.children = Children()
        self.dir = tempfile.mkdtemp(prefix="firebreak-demo-")
        self.state = os.path.join(self.dir, "state")
        self.db = os.path.join(self.dir, "shop.db")
        self.config = os.path.join(self.dir, "firebreak.yaml")
        self.load = None
        self.out = {"ok": False, "dir": self.dir}
        self.failures = []

    # -- set-up --

    def write_config(self):
        p = self.ports
        text = """\
# The firebreak demo's configuration (docs/config.md describes every key).
listen: 127.0.0.1:{traffic}
workers: 2
access_log: off
admin: {{ listen: 127.0.0.1:{admin} }}
status_page: {{ listen: 127.0.0.1:{status}, title: "Coffee shop status" }}
state: {state}
timeouts: {{ drain: 2s }}
services:
  - name: {svc}
    match: {{ host: "*", path_prefix: "/" }}
    sticky: {{ header: X-User-Id }}
    identity: {{ header: X-User-Id }}
    releases:
      - {{ name: v1, endpoints: ["127.0.0.1:{v1}"] }}
    stable: v1
    judge: {{ alpha: 0.001, min_error_ratio: 2.0, max_latency_ratio: 1.25 }}
    rollout: {{ steps: [{steps}] }}
""".format(state=json.dumps(self.state), svc=SERVICE,
           steps=", ".join(json.dumps(s) for s in STEPS), **p)
        with open(self.config, "w") as f:
            f.write(text)

    def start_processes(self):
        fb = self.args.firebreak
        tr, ad, st = self.ports["traffic"], self.ports["admin"], self.ports["status"]
        self.urls = {"shop": "http://127.0.0.1:%d/" % tr, "admin": "http://127.0.0.1:%d" % ad,
                     "status": "http://127.0.0.1:%d/" % st}
        self.children.start("firebreak", [fb, "serve", "-c", self.config],
                            os.path.join(self.dir, "firebreak.log"))
        for rel in ("v1", "v2"):
            self.children.start("shop " + rel, [PYTHON, SHOP, "--release", rel, "--port",
                                                str(self.ports[rel]), "--db", self.db],
                                os.path.join(self.dir, "shop-%s.log" % rel))
        wait_ready(self.children, "firebreak", self.urls["admin"] + "/healthz")
        for rel in ("v1", "v2"):
            wait_ready(self.children, "shop " + rel,
                       "http://127.0.0.1:%d/healthz" % self.ports[rel])
        self.token_path = os.path.join(self.state, "admin.token")
        with open(self.token_path) as f:
            self.api = Api(self.urls["admin"], f.read().strip())
        self.api.need("GET", "/api/v1/services/" + SERVICE)

    def setup(self):
        section("1. Setting up (everything in %s)" % self.dir)
        self.ports = dict(zip(("traffic", "admin", "status", "v1", "v2"), free_ports(5)))
        self.write_config()
        self.start_processes()
        say("firebreak   %s serve -c %s" % (self.args.firebreak, self.config))
        say("            traffic %s, admin %s," % (self.urls["shop"], self.urls["admin"]))
        say("            status page %s" % self.urls["status"])
        say("shop v1     127.0.0.1:%d, stable, the only release firebreak routes to"
            % self.ports["v1"])
        say("shop v2     127.0.0.1:%d, running but not deployed yet: the \"discount at checkout\""
            % self.ports["v2"])
        say("            feature (it carries two faults: a missing migration, a double discount)")
        say("database    %s (SQLite, shared by both releases)" % self.db)
        say("users       %d simulated users (X-User-Id), about %d requests/s through firebreak:"
            % (self.args.users, self.args.rate))
        say("            browse products 40%, view their orders 20%, place an order 35%, "
            "open the page 5%")
        say("service     shop: sticky and identity by X-User-Id; rollout steps %s"
            % " ".join(STEPS))

    # -- the deploy --

    def deploy(self):
        section("2. Deploying v2 with a judged rollout")
        self.load = Load(self.ports["traffic"], self.args.users, self.args.rate,
                         threads=self.args.threads, bound_s=WARMUP_S + ROLLBACK_BOUND_S + 30)
        self.load.start()
        say("users start; %.0f s of traffic on v1 alone, so the judge has a baseline" % WARMUP_S)
        time.sleep(WARMUP_S)
        self.children.check_alive()
        self.api.need("POST", "/api/v1/services/%s/releases" % SERVICE,
                      {"name": "v2", "endpoints": ["127.0.0.1:%d" % self.ports["v2"]]})
        say("POST /api/v1/services/shop/releases {\"name\": \"v2\", ...}        -> 201 (weight 0)")
        ro = self.api.need("POST", "/api/v1/services/%s/rollout" % SERVICE, {"release": "v2"})
        self.rollout_start_wall = time.time()
        say("POST /api/v1/services/shop/rollout {\"release\": \"v2\"}             -> 201")
        say("the rollout's steps (from the config): %s" % " ".join(
            re.sub(r"([0-9]+)000ms$", r"\1s", x) for x in ro.get("steps") or []))
        say("watching GET /api/v1/services/shop/rollout (4 times a second):")
        self.watch_rollout()

    def watch_rollout(self):
        t0 = time.monotonic()
        last = None
        ro = None
        while time.monotonic() - t0 < ROLLBACK_BOUND_S:
            self.children.check_alive()
            status, ro = self.api.call("GET", "/api/v1/services/%s/rollout" % SERVICE)
            if status != 200:
                raise ScenarioFailed("GET rollout answered %d: %s" % (status, ro))
            v = ro.get("verdict") or {}
            key = (ro.get("state"), ro.get("step"), v.get("verdict"))
            if key != last:
                last = key
                say("  [+%5.1f s] %-11s step %d/%d, v2 at %g%%, judge: %s" % (
                    time.monotonic() - t0, ro.get("state"), ro.get("step_human", 0),
                    ro.get("step_of", 0), ro.get("weight", 0), v.get("verdict", "no verdict yet")))
            if ro.get("state") not in ("pending", "progressing"):
                break
            time.sleep(0.25)
        self.rollout = ro
        if ro.get("state") != "rolled_back":
            raise ScenarioFailed("the rollout did not roll back within %.0f s (state %s, step "
                                 "%s): the judge did not catch v2" % (
                                     ROLLBACK_BOUND_S, ro.get("state"), ro.get("step_human")))
        say(wrap("rolled back: %s" % ro.get("reason", ""), indent=4), 0)
        say("traffic keeps flowing for %.0f s more (all users on v1 again), then stops" % SETTLE_S)
        time.sleep(SETTLE_S)
        self.load.stop()

    # -- what happened --

    def verdict(self):
        ro = self.rollout
        v = ro.get("verdict") or {}
        section("3. The judge's verdict (GET /api/v1/services/shop/rollout)")
        say("rollout %s of v2: state %s at step %s of %s (v2 at %g%%)" % (
            ro.get("id"), ro.get("state"), ro.get("step_human"), ro.get("step_of"),
            ro.get("weight", 0)))
        parts = str(v.get("summary", v.get("verdict"))).split("; ")
        say("verdict:")
        for p in parts:
            say(wrap(p, indent=4), 0)
        self.out["rollback_step"] = ro.get("step_human")
        self.out["rollout_state"] = ro.get("state")
        self.out["verdict"] = v.get("verdict")

    def find_incident(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lst = self.api.need("GET", "/api/v1/incidents").get("incidents", [])
            for inc in lst:
                cb = inc.get("caused_by") or {}
                if cb.get("release") == "v2" and SERVICE in (inc.get("services") or []):
                    return self.api.need("GET", "/api/v1/incidents/" + inc["id"])
            time.sleep(0.25)
        raise ScenarioFailed("no incident caused by v2 appeared in GET /api/v1/incidents")

    def client_view(self, rollback_ms):
        """What the simulated users saw of v2 (the driver's own record, for checking)."""
        recs = self.load.snapshot()
        v2 = [r for r in recs if r[5] == "v2"]
        bad = [r for r in v2 if r[4] >= 500]
        writes = [r for r in v2 if r[2] in ("POST", "PUT", "PATCH", "DELETE")]
        first_bad = min((r[0] for r in bad), default=None)
        return {
            "requests": len(recs), "v2_requests": len(v2), "failed": len(bad),
            "users": len({r[1] for r in bad}), "writes": len(writes),
            "write_users": len({r[1] for r in writes}),
            "accepted_orders": sorted(int(m) for r in writes if r[4] == 201
                                      for m in ORDER_RE.findall(r[6] + "/")),
            "first_bad_ms": int(first_bad * 1000) if first_bad else None,
            "first_bad_to_rollback_s": (rollback_ms / 1000.0 - first_bad)
            if first_bad and rollback_ms else None,
            "transport_errors": self.load.transport_errors,
        }

    def rollback_event(self):
        ev = self.api.need("GET", "/api/v1/events?service=%s&limit=5000" % SERVICE)
        for e in ev.get("events", []):
            if e.get("type") == "rollback" and e.get("release") in ("v2", None):
                return e
        return None

    def impact(self):
        self.inc = inc = self.find_incident()
        iid = inc["id"]
        im, times, dur = inc.get("impact") or {}, inc.get("times") or {}, inc.get("durations") or {}
        rb = self.rollback_event()
        rb_ms = rb.get("time_ms") if rb else times.get("contained_ms")
        seen = self.client_view(rb_ms)
        self.seen = seen
        section("4. Impact, measured by firebreak (GET /api/v1/incidents/%s)" % iid)
        say("The left column is firebreak's own measurement, read from its API. The right column")
        say("is what the demo's simulated users saw themselves, counted by this driver: a check.")
        say("")
        rows = [
            ("first bad request -> rollback", fmt_s(dur.get("time_to_contain_s")),
             fmt_s(seen["first_bad_to_rollback_s"])),
            ("first bad request -> detection", fmt_s(dur.get("time_to_detect_s")), ""),
            ("requests v2 served", im.get("requests_served"), seen["v2_requests"]),
            ("requests failed (5xx from v2)", im.get("requests_failed"), seen["failed"]),
            ("users affected (a 5xx from v2)", im.get("users_affected"), seen["users"]),
            ("write requests v2 served", im.get("writes"), seen["writes"]),
            ("users who wrote through v2 (journal)", (im.get("journal") or {}).get("identities"),
             seen["write_users"]),
            ("records v2 wrote (journal)", (im.get("journal") or {}).get("entities"),
             len(seen["accepted_orders"])),
            ("peak error rate of v2 in one second",
             "%.0f%%" % (100 * im["peak_error_rate"]) if "peak_error_rate" in im else "-", ""),
            ("severity suggested from the impact", inc.get("suggested_severity",
                                                            inc.get("severity")), ""),
        ]
        say("%-38s %-14s %s" % ("", "firebreak", "users saw"))
        for name, fbv, mine in rows:
            say("%-38s %-14s %s" % (name, "" if fbv is None else fbv, mine))
        say("")
        say("firebreak: impact started %s (the first second v2's error rate rose above v1's),"
            % fmt_time(times.get("impact_start_ms")))
        say("           detected %s, contained %s (the rollback)." % (
            fmt_time(times.get("detected_ms")), fmt_time(times.get("contained_ms"))))
        say("users:     first 5xx from v2 at %s; rollback event at %s." % (
            fmt_time(seen["first_bad_ms"]), fmt_time(rb_ms)))
        say("")
        say("%d requests in all; of every user, only those sticky to v2 (its %g%% share) could"
            % (seen["requests"], self.rollout.get("weight", 0)))
        say("meet it. Transport errors seen by the users: %d." % seen["transport_errors"])
        self.out.update({
            "incident": iid, "caused_by": inc.get("caused_by"), "fixed_by": inc.get("fixed_by"),
            "severity": inc.get("severity"), "impact": im, "times": times, "durations": dur,
            "clients_saw": {k: v for k, v in seen.items() if k != "accepted_orders"},
        })
        if im.get("requests_failed", 0) <= 0:
            self.failures.append("the incident's impact shows no failed requests")

    def journal_impact(self):
        section("5. Writes v2 made, and for whom (the journal)")
        path = "/api/v1/services/%s/journal/impact?release=v2" % SERVICE
        status, j = self.api.call("GET", path)
        self.journal = status == 200 and isinstance(j, dict)
        self.out["journal_available"] = self.journal
        if not self.journal:
            say("journal not available in this build (GET %s answered %d)" % (path, status))
            say("Without it firebreak still counts v2's writes (section 4), but cannot say which")
            say("records they touched; section 11 falls back to a scan of the whole database.")
            return
        say("GET %s" % path)
        self.out["journal_impact"] = j
        say("writes        %s between %s and %s%s" % (
            j.get("writes"), fmt_time(j.get("first_ms")), fmt_time(j.get("last_ms")),
            "" if j.get("complete", True) else
            "   INCOMPLETE: %s records dropped" % j.get("dropped")))
        for r in j.get("by_route") or []:
            say("  %-30s status %s: %s" % (r.get("route"), r.get("status"), r.get("writes")))
        say("for whom      %s identities (%s writes without one):" % (
            j.get("identities"), j.get("anonymous_writes", 0)))
        say(wrap(["%s (%s)" % (x.get("identity"), x.get("writes"))
                  for x in j.get("identity_list") or []], indent=16, sep=", "), 0)
        say("records       %s entities (%s writes without one):" % (
            j.get("entities"), j.get("writes_without_entity", 0)))
        say(wrap([str(x.get("entity")) for x in j.get("entity_list") or []], indent=16,
                 sep=", "), 0)
        say("dropped       %s records (the report is %s)" % (
            j.get("dropped", 0), "complete" if j.get("complete", True) else "NOT complete"))
        if j.get("writes") != self.seen["writes"]:
            say("check: the users saw v2 answer %d write requests" % self.seen["writes"])

    def timeline(self):
        inc = self.inc
        section("6. The incident %s and its timeline" % inc["id"])
        say("title      %s" % inc.get("title"))
        say("severity   %s   status %s   automatic %s" % (inc.get("severity"), inc.get("status"),
                                                         inc.get("automatic")))
        cb, fb = inc.get("caused_by") or {}, inc.get("fixed_by") or {}
        say("caused_by  %s %s: release %s of %s, started %s" % (
            cb.get("type"), cb.get("rollout"), cb.get("release"), cb.get("service"),
            fmt_time(cb.get("started_ms"))))
        say("fixed_by   %s (trigger %s) at %s" % (fb.get("type"), fb.get("trigger"),
                                                 fmt_time(fb.get("time_ms"))))
        say("")
        say("%-14s %8s  %-22s %s" % ("time (UTC)", "T+", "event", "details"))
        for e in inc.get("timeline") or []:
            tp = e.get("t_plus_s") or 0.0
            say("%-14s %7.1fs  %-22s %s" % (fmt_time(e.get("time_ms")), tp if
                                             abs(tp) >= 0.05 else 0.0, e.get("type"),
                                             describe(e)[:54]))
        self.out["timeline"] = [[e.get("time"), e.get("t_plus_s"), e.get("type")]
                                for e in inc.get("timeline") or []]

    def drafts(self):
        iid = self.inc["id"]
        section("7. Drafted updates (GET /api/v1/incidents/%s/updates/draft)" % iid)
        self.out["drafts"] = {}
        for aud in ("internal", "public"):
            d = self.api.need("GET", "/api/v1/incidents/%s/updates/draft?audience=%s"
                              % (iid, aud))
            self.out["drafts"][aud] = d
            say("-- %s --" % aud)
            for key, label in (("known", "What we know"), ("unknown", "What we do not know yet"),
                               ("next_steps", "Next steps")):
                say("%s:" % label)
                say(wrap(d.get(key, "")), 0)
            say("Next update: %s" % d.get("next_update"))
            say("")

    def status_page(self):
        section("8. Status page")
        url = self.urls["status"]
        try:
            with urllib.request.urlopen(url + "api/v2/summary.json", timeout=5) as r:
                s = json.loads(r.read())
            st = s.get("status") or {}
            say("%s  (JSON: %sapi/v2/summary.json)" % (url, url))
            say("indicator: %s (%s)" % (st.get("indicator"), st.get("description")))
            for c in s.get("components") or []:
                say("component %s: %s" % (c.get("name"), c.get("status")))
            for i in s.get("incidents") or []:
                say("incident: %s (%s)" % (i.get("name"), i.get("status")))
            self.out["status_indicator"] = st.get("indicator")
        except (OSError, ValueError) as e:
            say("%s did not answer: %s" % (url, e))
            self.failures.append("the status page did not answer")

    def postmortem(self):
        iid = self.inc["id"]
        section("9. Postmortem draft (POST /api/v1/incidents/%s/postmortem)" % iid)
        pm = self.api.need("POST", "/api/v1/incidents/%s/postmortem" % iid)
        path = pm.get("path")
        self.out["postmortem"] = path
        say("written to %s" % path)
        if path and os.path.exists(path):
            with open(path) as f:
                heads = [ln.strip() for ln in f if ln.startswith("#")]
            say("sections:")
            say(wrap([h.lstrip("# ") for h in heads[1:20]], sep="; "), 0)
        else:
            self.failures.append("the postmortem file %s does not exist" % path)

    def export(self):
        section("10. Journal export of v2's writes (the affected orders)")
        self.v2_writes = []
        if not self.journal:
            say("journal not available in this build: no export")
            return
        base = "/api/v1/services/%s/journal/export?release=v2&format=" % SERVICE
        status, text = self.api.call("GET", base + "jsonl", raw=True)
        if status != 200:
            say("GET %sjsonl answered %d: %s" % (base, status, text[:200]))
            self.failures.append("the journal export failed")
            return
        self.v2_writes = [json.loads(ln) for ln in text.splitlines() if ln.strip()]
        jpath = os.path.join(self.dir, "v2-writes.jsonl")
        with open(jpath, "w") as f:
            f.write(text)
        status, ctext = self.api.call("GET", base + "csv", raw=True)
        cpath = os.path.join(self.dir, "v2-writes.csv")
        if status == 200:
            with open(cpath, "w") as f:
                f.write(ctext)
        say("GET %s{jsonl,csv}" % base)
        say("%d records, saved to %s" % (len(self.v2_writes), jpath))
        say("%18s and %s" % ("", cpath) if status == 200 else "the CSV export answered %d"
            % status)
        say("")
        say("%-14s %-10s %-22s %6s  %s" % ("time (UTC)", "identity", "request", "status",
                                            "entity (Location)"))
        for r in self.v2_writes[:EXPORT_SHOWN]:
            say("%-14s %-10s %-22s %6s  %s" % (
                fmt_time(r["time_ms"]) if r.get("time_ms") else r.get("time"), r.get("identity") or "-",
                "%s %s" % (r.get("method"), r.get("path")), r.get("status"),
                r.get("entity") or "-"))
        if len(self.v2_writes) > EXPORT_SHOWN:
            say("... %d more in %s" % (len(self.v2_writes) - EXPORT_SHOWN, jpath))
        if status == 200:
            nrows = max(0, len(list(csv.reader(io.StringIO(ctext)))) - 1)
            if nrows != len(self.v2_writes):
                self.failures.append("the CSV export has %d records, the JSON lines export %d"
                                     % (nrows, len(self.v2_writes)))

    def damaged(self):
        section("11. Orders with a wrong total, found through the journal, checked in the database")
        all_bad = wrong_totals(self.db)
        self.out["orders_in_db"] = order_count(self.db)
        self.out["damaged_in_db"] = sorted(all_bad)
        if not self.journal:
            say("journal not available in this build: the damaged orders cannot be found through")
            say("it. A scan of the whole database (the demo reads %s itself) finds:" % self.db)
            self._print_orders(all_bad)
            self.out["damaged_via_journal"] = None
            self.out["journal_v2_orders"] = None
            return
        ids = set()
        for rec in self.v2_writes:
            ids |= order_ids_of(rec)
        self.out["journal_v2_orders"] = sorted(ids)
        found = wrong_totals(self.db, ids)
        self.out["damaged_via_journal"] = sorted(found)
        say("the journal's %d writes by v2 name %d orders (their Location / entity);"
            % (len(self.v2_writes), len(ids)))
        say("each is checked in %s:" % self.db)
        say("its stored total against sum(price * qty) of its items. Wrong:")
        self._print_orders(found)
        missed = sorted(set(all_bad) - set(found))
        say("")
        say("check: a scan of the whole database finds %d orders with a wrong total among %d;"
            % (len(all_bad), self.out["orders_in_db"]))
        if missed:
            say("NOT all of them were found through the journal: %s" % missed)
            self.failures.append("orders with a wrong total missing from v2's journal: %s"
                                 % missed)
        else:
            say("every one of them is among v2's journaled writes, and no other order is wrong.")
        mine = set(self.seen["accepted_orders"])
        if ids != mine:
            say("note: the users saw v2 accept orders %s; the journal names %s"
                % (sorted(mine - ids), sorted(ids - mine)))

    def _print_orders(self, bad):
        if not bad:
            say("no order has a wrong total")
            return
        say("%8s  %-10s %-4s %12s %14s %10s" % ("order", "user", "by", "stored total",
                                                 "sum(price*qty)", "difference"))
        for oid in sorted(bad):
            user, rel, total, items = bad[oid]
            say("%8d  %-10s %-4s %12.2f %14.2f %10.2f" % (oid, user, rel, total / 100.0,
                                                          items / 100.0, (total - items) / 100.0))
        say("%d orders, %.2f missing in total" % (
            len(bad), sum(b[3] - b[2] for b in bad.values()) / 100.0))

    def finish(self):
        section("Result")
        self.out["ok"] = not self.failures
        if self.failures:
            for f in self.failures:
                say("FAILED: %s" % f)
            say("logs and state kept in %s" % self.dir)
        else:
            say("v2 was rolled back automatically at step %s of %s; incident %s holds the impact,"
                % (self.rollout.get("step_human"), self.rollout.get("step_of"), self.inc["id"]))
            say("the timeline, the drafted updates and the postmortem draft.")
            if self.journal:
                say("The journal names every order v2 damaged.")
            say("Left behind in %s:" % self.dir)
            say("the config, the logs, the shop's database,%s firebreak's state" % (
                " the journal exports," if self.journal else ""))
            say("and the postmortem draft.")

    def write_json(self):
        if self.args.json:
            with open(self.args.json, "w") as f:
                json.dump(self.out, f, indent=2, sort_keys=True)
                f.write("\n")

    def keep(self):
        section("Still running (--keep): Ctrl-C stops everything")
        say("shop through firebreak  %s" % self.urls["shop"])
        say("admin API               %s  (token in %s)" % (self.urls["admin"], self.token_path))
        say("status page             %s" % self.urls["status"])
        say("try: FIREBREAK_ADMIN=%s FIREBREAK_TOKEN=$(cat %s) %s status" % (
            self.urls["admin"], self.token_path, self.args.firebreak))
        while True:
            self.children.check_alive()
            time.sleep(1)

    def run(self):
        self.setup()
        self.deploy()
        self.verdict()
        self.impact()
        self.journal_impact()
        self.timeline()
        self.drafts()
        self.status_page()
        self.postmortem()
        self.export()
        self.damaged()
        if not self.args.keep:
            self.stop()
        self.finish()
        self.write_json()
        if self.args.keep and not self.failures:
            self.keep()
        return 0 if self.out["ok"] else 1

    def stop(self):
        """Stops every process and checks how firebreak ended."""
        self.out["exit_status"] = self.children.stop_all()
        with open(os.path.join(self.dir, "firebreak.log"), errors="replace") as f:
            log = f.read()
        reports = [ln for ln in log.splitlines() if "Sanitizer" in ln or "runtime error:" in ln]
        self.out["sanitizer_reports"] = reports[:20]
        if reports:
            self.failures.append("firebreak's log holds sanitizer reports: %s" % reports[0])
        if self.out["exit_status"].get("firebreak") != 0:
            self.failures.append("firebreak exited with status %s after SIGTERM (see %s)" % (
                self.out["exit_status"].get("firebreak"),
                os.path.join(self.dir, "firebreak.log")))

    def cleanup(self):
        if self.load:
            self.load.stop()
        self.children.stop_all()


def describe(e):
    d = e.get("details") or {}
    t = e.get("type", "")
    if t == "weights_changed":
        return "weights %s" % json.dumps(d.get("weights"))
    if t == "rollback":
        return "trigger %s, weights %s" % (d.get("trigger"), json.dumps(d.get("weights")))
    if t.startswith("rollout_"):
        extra = ("judge: %s" % d["verdict"]) if d.get("verdict") else \
            ("trigger %s" % d["trigger"]) if d.get("trigger") else ""
        return ("step %s at %g%%, %s" % (d.get("step"), d.get("weight", 0), extra)).strip(", ")
    if t == "verdict":
        return "judge: %s" % d.get("verdict", "")
    if t == "release_added":
        return "release %s" % e.get("release")
    if t.startswith("incident"):
        return " ".join(str(x) for x in (d.get("incident"), d.get("cause") or d.get("item")
                                        or d.get("path") or "") if x)
    return ", ".join("%s=%s" % (k, v) for k, v in list(d.items())[:3]
                     if not isinstance(v, (dict, list)))


def main(argv=None):
    ap = argparse.ArgumentParser(description="firebreak's bad-deploy demo")
    ap.add_argument("--firebreak", required=True, help="the firebreak binary")
    ap.add_argument("--keep", action="store_true",
                    help="leave everything running after the scenario, until Ctrl-C")
    ap.add_argument("--json", metavar="PATH", help="write the figures and lists to PATH")
    ap.add_argument("--users", type=int, default=300, help="simulated users (default 300)")
    ap.add_argument("--rate", type=int, default=200, help="requests per second (default 200)")
    ap.add_argument("--threads", type=int, default=16, help="client threads (default 16)")
    args = ap.parse_args(argv)
    if not os.access(args.firebreak, os.X_OK):
        print("demo: --firebreak %s is not an executable file" % args.firebreak, file=sys.stderr)
        return 2
    if not 10 <= args.users <= 100000 or not 10 <= args.rate <= 5000 \
            or not 1 <= args.threads <= 256:
        print("demo: --users 10..100000, --rate 10..5000, --threads 1..256", file=sys.stderr)
        return 2
    args.firebreak = os.path.abspath(args.firebreak)

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)  # also when started with SIGINT ignored (background)
    demo = Demo(args)
    atexit.register(demo.children.stop_all)
    print("firebreak demo: a bad deploy, end to end", flush=True)
    rc = 1
    try:
        rc = demo.run()
    except ScenarioFailed as e:
        print("\ndemo FAILED: %s" % e, flush=True)
        print("logs and state kept in %s" % demo.dir, flush=True)
        demo.out["error"] = str(e)
        demo.write_json()
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything", flush=True)
        rc = 0 if demo.out.get("ok") else 1
    except Exception:  # a bug or an unexpected answer: say so, stop everything, exit 1
        traceback.print_exc()
        print("\ndemo FAILED with an unexpected error; logs and state kept in %s" % demo.dir,
              flush=True)
    finally:
        demo.cleanup()
    return rc


if __name__ == "__main__":
    sys.exit(main())
