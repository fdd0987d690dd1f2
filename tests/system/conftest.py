"""Fixtures of the system tests.

- firebreak_bin: the binary under test, from FIREBREAK_BIN (make test sets it).
- upstream, upstream2: a started tests/system/upstream.py server each; a test
  fails at teardown if its upstream saw a request that breaks HTTP/1.1 framing.
- start_firebreak(endpoints=None, **config): start a gateway with a generated
  config (fbproc.base_config) in the test's tmp dir; stopped at teardown with
  SIGTERM (SIGKILL after a bound). Teardown fails the test when the process
  crashed, did not exit 0, or its stderr holds a sanitizer report.
- fb: a gateway in front of `upstream` with the default config.
A failing test gets the tail of each gateway's stderr in its report.
Every test runs under an alarm (default 60 s; @pytest.mark.timeout_s(N) to change).
"""

import os
import signal

import pytest

import fbproc
import rohelp
from upstream import Upstream

DEFAULT_TEST_SECONDS = 60


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout_s(n): fail the test after n seconds")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for fb in getattr(item, "_firebreaks", []):
            rep.sections.append(("%s stderr (tail)" % fb.name, fb.stderr_tail(60)))


class TimeBoundExceeded(Exception):
    pass


@pytest.fixture(autouse=True)
def _bounded_time(request):
    """Fail a test that runs longer than its bound instead of hanging the suite."""
    mark = request.node.get_closest_marker("timeout_s")
    seconds = mark.args[0] if mark else DEFAULT_TEST_SECONDS

    def on_alarm(signum, frame):
        raise TimeBoundExceeded("test still running after %ds" % seconds)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="session")
def firebreak_bin():
    path = os.environ.get("FIREBREAK_BIN", "")
    if not path:
        pytest.fail("FIREBREAK_BIN is not set (make test sets it to build-asan/firebreak)")
    if not os.access(path, os.X_OK):
        pytest.fail("FIREBREAK_BIN=%s is not an executable file" % path)
    return os.path.abspath(path)


def _upstream():
    up = Upstream().start()
    yield up
    up.stop()
    assert not up.errors, "the upstream saw broken HTTP/1.1 framing: %s" % up.errors


@pytest.fixture
def upstream():
    yield from _upstream()


@pytest.fixture
def upstream2():
    yield from _upstream()


@pytest.fixture
def start_firebreak(request, firebreak_bin, tmp_path):
    """Factory: start_firebreak(endpoints, timeouts=..., limits=..., ...) -> Firebreak."""
    started = []
    request.node._firebreaks = started

    def start(endpoints, name=None, config=None, **kw):
        name = name or "firebreak%d" % (len(started) + 1)
        workdir = str(tmp_path)
        cfg = config or fbproc.base_config(workdir, endpoints, **kw)
        fb = fbproc.Firebreak(firebreak_bin, workdir, cfg, name=name)
        started.append(fb)
        try:
            fb.start()
        except fbproc.StartError:
            fb.expect_exit = True  # reported by the test already
            raise
        return fb

    yield start
    problems = []
    for fb in started:
        was_alive = fb.proc is not None and fb.proc.poll() is None
        rc = fb.stop()
        report = fb.sanitizer_report()
        if report:
            problems.append("%s: sanitizer report:\n%s" % (fb.name, report))
        elif was_alive and rc != 0:
            problems.append("%s: exit status %r after SIGTERM\n%s"
                            % (fb.name, rc, fb.stderr_tail()))
        elif not was_alive and rc not in (0, None) and not getattr(fb, "expect_exit", False):
            problems.append("%s: exited by itself with %r\n%s" % (fb.name, rc, fb.stderr_tail()))
    assert not problems, "\n".join(problems)


@pytest.fixture
def fb(start_firebreak, upstream):
    return start_firebreak([upstream.addr])


# Releases for the rollout, incident and status page tests (rohelp's upstreams): each fixture
# fails its test when the upstream saw broken framing from the gateway.
def _release(up, name):
    up.start()
    yield up
    up.stop()
    assert not up.errors, "%s saw broken framing: %s" % (name, up.errors)


@pytest.fixture
def v1():
    yield from _release(rohelp.PlainUpstream(), "v1")


@pytest.fixture
def v1_slower():
    """A stable release a steady 4 ms slower than PlainUpstream: a new release on
    fresh connections is then still no slower than stable (see the healthy tests)."""
    yield from _release(rohelp.PlainUpstream(delay_ms=4), "v1")


@pytest.fixture
def v2():
    yield from _release(rohelp.PlainUpstream(), "v2")


@pytest.fixture
def flaky():
    yield from _release(rohelp.FlakyUpstream(every=5), "the flaky release")
