"""Signals: SIGHUP reloads the config without failing a request (a bad file
keeps the running one); SIGTERM stops accepting and drains in-flight requests."""

import copy
import os
import signal
import socket
import threading
import time

import pytest

import fbproc
from fbproc import ClosedError, RawConn, build_request, get


def _with_endpoints(cfg, endpoints):
    new = copy.deepcopy(cfg)
    new["services"][0]["releases"][0]["endpoints"] = list(endpoints)
    return new


class Load:
    """n_threads clients, each sending `per_thread` GETs over keep-alive
    connections (reconnecting only after a response with Connection: close).
    Any request without a correct 200 answer is a failure."""

    def __init__(self, port, n_threads=4, per_thread=500):
        self.port = port
        self.n_threads = n_threads
        self.per_thread = per_thread
        self.ok = 0
        self.failures = []
        self.by_upstream = {}
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(n_threads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def join(self, timeout):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self.threads)

    def done(self):
        return self.ok + len(self.failures)

    def _run(self, tid):
        c = None
        for i in range(self.per_thread):
            target = "/echo?t=%d&i=%d" % (tid, i)
            try:
                if c is None:
                    c = RawConn(self.port, timeout=10)
                c.send(build_request("GET", target, [("Host", "app.test")]))
                r = c.read_response()
                doc = r.json() if r.status == 200 else None
                if r.status != 200 or doc["target"] != target:
                    raise AssertionError("status %d for %s: %r" % (r.status, target, r.body[:200]))
                with self.lock:
                    self.ok += 1
                    port = doc["upstream_port"]
                    self.by_upstream[port] = self.by_upstream.get(port, 0) + 1
                if (r.get("Connection") or "").lower() == "close":
                    c.close()
                    c = None
            except (OSError, ClosedError, AssertionError, ValueError) as e:
                with self.lock:
                    self.failures.append("%s: %s: %s" % (target, type(e).__name__, e))
                if c is not None:
                    c.close()
                c = None
        if c is not None:
            c.close()


@pytest.mark.timeout_s(120)
def test_reload_under_load_fails_no_request(start_firebreak, upstream, upstream2):
    fb = start_firebreak([upstream.addr])
    base = fb.config
    load = Load(fb.port, n_threads=4, per_thread=500).start()
    configs = [[upstream.addr, upstream2.addr], [upstream2.addr], [upstream.addr, upstream2.addr],
               [upstream.addr], [upstream.addr, upstream2.addr]]
    total = load.n_threads * load.per_thread
    for k, eps in enumerate(configs):
        # spread the reloads over the run
        while load.done() < total * (k + 1) // (len(configs) + 1) and \
                any(t.is_alive() for t in load.threads):
            time.sleep(0.02)
        fb.reload(_with_endpoints(base, eps))
    assert load.join(100), "load did not finish"
    assert fb.alive(), "firebreak died during the reloads (%d requests failed):\n%s" % (
        len(load.failures), fb.sanitizer_report() or fb.stderr_tail())
    assert not load.failures, "%d of %d requests failed across reloads, first: %s" % (
        len(load.failures), total, load.failures[:5])
    assert load.ok == total
    assert load.by_upstream.get(upstream2.port, 0) > 0, "the reloaded endpoint got no traffic"
    # after the last reload both endpoints serve
    seen = set()
    for _ in range(10):
        seen.add(get(fb.port, "/echo").json()["upstream_port"])
    assert seen == {upstream.port, upstream2.port}


def _wait_for_upstream(fb, port, tries=50):
    for _ in range(tries):
        if get(fb.port, "/echo").json()["upstream_port"] == port:
            return True
        time.sleep(0.05)
    return False


def test_bad_file_on_reload_keeps_serving(start_firebreak, upstream, upstream2):
    fb = start_firebreak([upstream.addr])
    good = fb.config
    before = len(fb.stderr_text())
    fb.reload(text=fbproc.to_yaml(good).replace("workers: 2", "workers: [oops") + "\n")
    time.sleep(0.5)
    assert fb.alive(), "firebreak exited on a bad reload:\n%s" % fb.stderr_tail()
    for _ in range(10):
        r = get(fb.port, "/echo")
        assert r.status == 200 and r.json()["upstream_port"] == upstream.port
    logged = fb.stderr_text()[before:]
    assert os.path.basename(fb.config_path) in logged, \
        "the bad reload was not logged with the file name:\n%s" % logged[-2000:]
    # a later good file is taken
    fb.reload(_with_endpoints(good, [upstream2.addr]))
    try:
        taken = _wait_for_upstream(fb, upstream2.port)
    except (OSError, ClosedError) as e:
        raise AssertionError("request failed after a good reload (%s), firebreak %s:\n%s" % (
            e, "alive" if fb.alive() else "dead", fb.sanitizer_report() or fb.stderr_tail()))
    assert taken, "the good reload after a bad one was ignored"


def test_reload_keeps_in_flight_request(start_firebreak, upstream, upstream2):
    fb = start_firebreak([upstream.addr])
    result = {}

    def slow():
        result["r"] = get(fb.port, "/slow/1000")

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)
    fb.reload(_with_endpoints(fb.config, [upstream2.addr]))
    t.join(10)
    assert result["r"].status == 200
    assert result["r"].json()["upstream_port"] == upstream.port
    assert _wait_for_upstream(fb, upstream2.port)


def _refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


def test_sigterm_drains_in_flight_then_exits_0(start_firebreak, upstream):
    fb = start_firebreak([upstream.addr])
    result = {}
    idle = RawConn(fb.port)  # an idle keep-alive client must not hold up the exit
    idle.send(build_request("GET", "/echo", [("Host", "app.test")]))
    assert idle.read_response().status == 200

    def slow():
        try:
            result["r"] = get(fb.port, "/slow/1000")
        except Exception as e:  # noqa: BLE001 - reported by the assert below
            result["e"] = e

    t = threading.Thread(target=slow)
    t.start()
    assert upstream.wait_requests(2, timeout=5)[-1]["path"] == "/slow/1000"
    t0 = time.monotonic()
    fb.signal(signal.SIGTERM)
    time.sleep(0.3)
    assert fb.alive(), "exited before the in-flight request finished"
    assert _refused(fb.port), "new connections still accepted after SIGTERM"
    t.join(10)
    assert "e" not in result, "in-flight request failed: %r" % result.get("e")
    assert result["r"].status == 200
    rc = fb.wait_exit(5)
    elapsed = time.monotonic() - t0
    assert rc == 0, "exit status %r after SIGTERM\n%s" % (rc, fb.stderr_tail())
    assert elapsed < 4, "took %.1f s to exit after the last request ended" % elapsed
    idle.close()


def test_sigterm_drain_deadline(start_firebreak, upstream):
    fb = start_firebreak([upstream.addr], timeouts={"drain": "1s"})

    def slow():
        try:
            get(fb.port, "/slow/8000", timeout=12)
        except Exception:  # noqa: BLE001 - the request is cut by the deadline
            pass

    t = threading.Thread(target=slow, daemon=True)
    t.start()
    assert upstream.wait_requests(1, timeout=5)
    t0 = time.monotonic()
    fb.signal(signal.SIGTERM)
    rc = fb.wait_exit(6)
    elapsed = time.monotonic() - t0
    assert rc == 0, "exit status %r\n%s" % (rc, fb.stderr_tail())
    assert 0.8 <= elapsed <= 3.0, "exited %.1f s after SIGTERM with a 1 s drain" % elapsed
