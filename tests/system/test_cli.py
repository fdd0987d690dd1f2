"""The firebreak command line against a running gateway: status, release add,
list and remove, weights, rollback, events and token create. Exit codes: 0 ok,
1 refused or failed, 2 usage; --json prints JSON that parses; the human output
names the releases. Each command runs the binary under test (the ASan build in
`make test`), so a sanitizer report in its stderr fails the test too."""

import json
import os
import subprocess

import pytest

import fbproc
import relhelp
from relhelp import Api
from upstream import Upstream

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


@pytest.fixture
def gw(start_firebreak, tmp_path, upstream, upstream2):
    rels = [{"name": "v1", "endpoints": [upstream.addr]},
            {"name": "v2", "endpoints": [upstream2.addr]}]
    return start_firebreak(None, config=relhelp.release_config(str(tmp_path), rels))


@pytest.fixture
def cli(firebreak_bin, tmp_path):
    """cli(*args, env={}) -> CompletedProcess; runs in an empty directory with
    no FIREBREAK_* variables unless given."""
    cwd = tmp_path / "cli-cwd"
    cwd.mkdir()

    def run(*args, env=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("FIREBREAK_")}
        e.update(env or {})
        p = subprocess.run([firebreak_bin] + [str(a) for a in args], capture_output=True,
                           text=True, cwd=str(cwd), env=e, timeout=30)
        for mark in SANITIZER_MARKS:
            assert mark not in p.stderr, "firebreak %s:\n%s" % (" ".join(args), p.stderr)
        return p

    return run


def ok(p):
    assert p.returncode == 0, "exit %d\nstdout: %s\nstderr: %s" % (p.returncode, p.stdout,
                                                                    p.stderr)
    return p


def parsed(p):
    try:
        return json.loads(p.stdout)
    except ValueError:
        raise AssertionError("--json output does not parse: %r" % p.stdout[:500])


def test_status_and_release_list(gw, cli, upstream, upstream2):
    c = gw.config_path
    p = ok(cli("status", "-c", c))
    for word in ("app", "v1", "v2", upstream.addr, upstream2.addr):
        assert word in p.stdout, "status does not name %s:\n%s" % (word, p.stdout)
    doc = parsed(ok(cli("status", "app", "-c", c, "--json")))
    assert doc["name"] == "app" and [r["name"] for r in doc["releases"]] == ["v1", "v2"]
    assert [r["weight"] for r in doc["releases"]] == [100, 0]
    p = ok(cli("release", "list", "app", "-c", c))
    assert "v1" in p.stdout and "v2" in p.stdout
    parsed(ok(cli("release", "list", "app", "-c", c, "--json")))
    p = cli("status", "nosuch", "-c", c)
    assert p.returncode == 1 and "nosuch" in p.stderr, (p.returncode, p.stderr)


def test_release_weights_rollback_events(gw, cli, upstream3_addr):
    c = gw.config_path
    api = Api(gw)
    p = ok(cli("release", "add", "app", "v3", "--endpoint", upstream3_addr, "-c", c))
    assert "v3" in p.stdout
    assert set(api.weights()) == {"v1", "v2", "v3"}
    p = cli("release", "add", "app", "v3", "--endpoint", upstream3_addr, "-c", c)
    assert p.returncode == 1 and "v3" in p.stderr, (p.returncode, p.stderr)

    p = ok(cli("weights", "app", "v1=90", "v3=10", "-c", c))
    assert "v3" in p.stdout
    assert api.weights() == {"v1": 90, "v2": 0, "v3": 10}
    p = cli("weights", "app", "v1=90", "v3=20", "-c", c, "--json")
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert parsed(p)["error"] == "invalid"
    assert api.weights() == {"v1": 90, "v2": 0, "v3": 10}, "a refused change changed weights"

    doc = parsed(ok(cli("rollback", "app", "--reason", "cli test", "-c", c, "--json")))
    assert doc["weights"] == {"v1": 100, "v2": 0, "v3": 0}
    assert isinstance(doc["published_us"], (int, float))
    assert api.weights() == {"v1": 100, "v2": 0, "v3": 0}
    relhelp.wait_for(lambda: relhelp.events_of(api, "rollback"), timeout=5,
                     what="the rollback event")

    events = parsed(ok(cli("events", "-c", c, "--json")))["events"]
    rb = [e for e in events if e["type"] == "rollback"]
    assert len(rb) == 1 and rb[0]["details"]["reason"] == "cli test" and \
        rb[0]["actor"] == "admin", rb
    p = ok(cli("events", "-c", c))
    for word in ("release_added", "weights_changed", "rollback", "cli test"):
        assert word in p.stdout, "events does not show %s:\n%s" % (word, p.stdout)

    p = ok(cli("release", "remove", "app", "v3", "-c", c))
    assert set(api.weights()) == {"v1", "v2"}


@pytest.fixture
def upstream3_addr():
    up = Upstream().start()
    yield up.addr
    up.stop()


@pytest.mark.parametrize("args", [
    ["bogus"],
    ["weights"],
    ["weights", "app", "v1=abc"],
    ["weights", "app", "v1"],
    ["release", "add", "app", "v4"],
    ["release", "frob", "app"],
    ["status", "--no-such-flag"],
    ["token", "create", "--role"],
])
def test_usage_errors_exit_2(gw, cli, args):
    p = cli(*(args + ["-c", gw.config_path]))
    assert p.returncode == 2, "firebreak %s: exit %d, stderr %r" % (" ".join(args),
                                                                     p.returncode, p.stderr)
    assert "usage" in p.stderr.lower(), p.stderr


def test_tokens_and_roles(gw, cli):
    c = gw.config_path
    admin_url = "http://127.0.0.1:%d" % gw.admin_port
    doc = parsed(ok(cli("token", "create", "--role", "viewer", "--name", "ci", "-c", c,
                        "--json")))
    assert doc["role"] == "viewer" and doc["token"]
    viewer = doc["token"]
    # the viewer reads, through --admin and FIREBREAK_TOKEN
    ok(cli("status", "--admin", admin_url, env={"FIREBREAK_TOKEN": viewer}))
    ok(cli("status", env={"FIREBREAK_ADMIN": admin_url, "FIREBREAK_TOKEN": viewer}))
    # and may not roll back: exit 1, nothing changed
    Api(gw).set_weights({"v1": 80, "v2": 20})
    p = cli("rollback", "app", "--admin", admin_url, "--token", viewer)
    assert p.returncode == 1 and "forbidden" in p.stderr, (p.returncode, p.stderr)
    assert Api(gw).weights() == {"v1": 80, "v2": 20}
    # no token at all, or an unknown one: exit 1, saying so
    p = cli("status", "--admin", admin_url)
    assert p.returncode == 1 and "token" in p.stderr.lower(), (p.returncode, p.stderr)
    p = cli("status", "--admin", admin_url, "--token", "fbt_" + "0" * 48)
    assert p.returncode == 1 and "unauthorized" in p.stderr, (p.returncode, p.stderr)
    p = ok(cli("token", "list", "-c", c))
    assert "ci" in p.stdout and viewer not in p.stdout


def test_no_server_exits_1(cli):
    p = cli("status", "--admin", "http://127.0.0.1:%d" % fbproc.refused_port(),
            "--token", "fbt_x")
    assert p.returncode == 1 and p.stderr.strip(), (p.returncode, p.stderr)
