"""`firebreak check -c FILE` and config errors at start: exit codes and
messages of the form FILE:LINE:COL: PATH: MESSAGE."""

import os
import re
import subprocess

import pytest

import fbproc


def run(binary, *args, timeout=20):
    p = subprocess.run([binary] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def good_text(tmp_path, **kw):
    cfg = fbproc.base_config(str(tmp_path), ["127.0.0.1:7001", "127.0.0.1:7002"], **kw)
    return fbproc.to_yaml(cfg) + "\n"


def write(tmp_path, text, name="fb.yaml"):
    path = os.path.join(str(tmp_path), name)
    with open(path, "w") as f:
        f.write(text)
    return path


def line_of(text, needle):
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError("%r not in config" % needle)


def test_check_good_file(firebreak_bin, tmp_path):
    path = write(tmp_path, good_text(tmp_path, timeouts={"upstream_connect": "500ms"}))
    rc, out = run(firebreak_bin, "check", "-c", path)
    assert rc == 0, out


def test_check_good_json_file(firebreak_bin, tmp_path):
    import json
    cfg = fbproc.base_config(str(tmp_path), ["127.0.0.1:7001"])
    path = write(tmp_path, json.dumps(cfg, indent=2) + "\n", name="fb.json")
    rc, out = run(firebreak_bin, "check", "-c", path)
    assert rc == 0, out


BAD = [
    # (name, old line fragment, new line, expected key path)
    ("unknown_key", "workers: 2", "workerz: 2", "workerz"),
    ("bad_duration", "upstream_connect: 2s", "upstream_connect: 2 parsecs",
     "timeouts.upstream_connect"),
    ("bad_size", "request_line: 8KiB", "request_line: lots", "limits.request_line"),
    ("bad_workers", "workers: 2", "workers: many", "workers"),
    ("bad_endpoint", 'endpoints: ["127.0.0.1:7001", "127.0.0.1:7002"]',
     'endpoints: ["127.0.0.1:7001", "127.0.0.1:99999"]', "services[0].releases[0].endpoints[1]"),
    ("missing_stable_release", "stable: v1", "stable: v9", "services[0].stable"),
    ("bad_listen", "listen: 127.0.0.1:", "listen: nowhere", "listen"),
]


@pytest.mark.parametrize("name,old,new,keypath", BAD, ids=[b[0] for b in BAD])
def test_check_bad_file_names_path_and_line(firebreak_bin, tmp_path, name, old, new, keypath):
    text = good_text(tmp_path)
    # replace the first line holding `old` (the top-level one for listen/workers)
    lines = text.splitlines()
    idx = next(i for i, ln in enumerate(lines) if old in ln)
    indent = lines[idx][: len(lines[idx]) - len(lines[idx].lstrip())]
    if name == "bad_listen":
        lines[idx] = "listen: nowhere"
    else:
        lines[idx] = lines[idx].replace(old, new)
    assert lines[idx].startswith(indent)
    text = "\n".join(lines) + "\n"
    path = write(tmp_path, text)
    want_line = idx + 1
    rc, out = run(firebreak_bin, "check", "-c", path)
    assert rc == 1, "exit %d for %s:\n%s" % (rc, name, out)
    m = re.search(re.escape(path) + r":(\d+):(\d+): " + re.escape(keypath) + r": (\S.*)", out)
    assert m, "no `%s:LINE:COL: %s: MESSAGE` in:\n%s" % (path, keypath, out)
    assert int(m.group(1)) == want_line, "line %s, want %d:\n%s" % (m.group(1), want_line, out)


def test_check_yaml_syntax_error(firebreak_bin, tmp_path):
    text = good_text(tmp_path) + "extra: [unclosed\n"
    path = write(tmp_path, text)
    rc, out = run(firebreak_bin, "check", "-c", path)
    assert rc == 1, out
    assert re.search(re.escape(path) + r":\d+:\d+: ", out), out


def test_check_missing_file(firebreak_bin, tmp_path):
    path = os.path.join(str(tmp_path), "does-not-exist.yaml")
    rc, out = run(firebreak_bin, "check", "-c", path)
    assert rc == 1, out
    assert path in out


def test_check_without_file_is_usage_error(firebreak_bin):
    rc, out = run(firebreak_bin, "check")
    assert rc == 2, out


def test_serve_with_bad_file_exits_1(firebreak_bin, tmp_path):
    text = good_text(tmp_path).replace("workers: 2", "workers: many")
    path = write(tmp_path, text)
    rc, out = run(firebreak_bin, "serve", "-c", path, timeout=20)
    assert rc == 1, out
    assert re.search(re.escape(path) + r":\d+:\d+: workers: ", out), out
