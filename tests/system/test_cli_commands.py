"""The rollout, gate, incident and journal commands of the CLI against a real gateway.

Each test starts `firebreak serve` in front of real upstreams and runs the
`firebreak` client commands as a user would (`-c CONFIG`: the admin address
and the token file come from the configuration), checking exit codes, what
they print, and what the API holds afterwards.
"""

import json
import os
import re
import subprocess
import time

import fbproc
import relhelp
from relhelp import Api, wait_for

CLI_TIMEOUT = 15


class Cli:
    """Runs `firebreak ARGS -c CONFIG` for one gateway; FIREBREAK_* unset."""

    def __init__(self, fb):
        self.fb = fb
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FIREBREAK_")}

    def __call__(self, *args, rc=0):
        p = subprocess.run([self.fb.binary] + list(args) + ["-c", self.fb.config_path],
                           capture_output=True, text=True, timeout=CLI_TIMEOUT, env=self.env,
                           cwd=self.fb.workdir)
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            assert bad not in p.stderr, "firebreak %s: %s" % (" ".join(args), p.stderr)
        if rc is not None:
            assert p.returncode == rc, "firebreak %s: exit %d, wanted %d\nstdout:\n%s\nstderr:\n%s" \
                % (" ".join(args), p.returncode, rc, p.stdout, p.stderr)
        return p

    def json(self, *args, rc=0):
        return json.loads(self(*(list(args) + ["--json"]), rc=rc).stdout)


def traffic(fb, n):
    """n GETs through the gateway; returns the statuses."""
    return [fbproc.get(fb.port, "/echo?i=%d" % i).status for i in range(n)]


def test_rollout_start_status_abort_and_the_gate(start_firebreak, upstream, upstream2):
    fb = start_firebreak([upstream.addr])
    cli = Cli(fb)

    p = cli("release", "add", "app", "v2", "--endpoint", upstream2.addr)
    assert "added release v2 to app" in p.stdout
    assert cli("gate", "app").stdout == "open\n"

    # a step that does not parse is a usage error, and nothing starts
    p = cli("rollout", "start", "app", "v2", "--steps", "10%:30s,half", rc=2)
    assert "--steps: steps[1]" in p.stderr and "usage: firebreak rollout start" in p.stderr
    p = cli("rollout", "status", "app", rc=1)
    assert "not_found" in p.stderr

    p = cli("rollout", "start", "app", "v2", "--steps", "10%:30s,100%")
    assert "started the rollout of v2 to app" in p.stdout
    assert "state      progressing" in p.stdout
    assert "step       1 of 2 at 10%, hold 30.0s" in p.stdout
    assert Api(fb).weights() == {"v1": 90, "v2": 10}

    assert all(s == 200 for s in traffic(fb, 40))
    doc = wait_for(lambda: (lambda d: d if d.get("verdict") else None)(
        cli.json("rollout", "status", "app")), what="a verdict")
    p = cli("rollout", "status", "app")
    assert "rollout    app#%d: v2 against stable v1" % doc["id"] in p.stdout
    left = re.search(r"step       1 of 2 at 10%, hold 30.0s, ([0-9.]+)s left", p.stdout)
    assert left and 0 < float(left.group(1)) <= 30.0, p.stdout
    assert re.search(r"^verdict    (pass|inconclusive|error)", p.stdout, re.M), p.stdout
    assert re.search(r"^errors   \S+ +\d+/\d+ ", p.stdout, re.M), p.stdout

    p = cli("gate", "app", rc=1)
    assert p.stdout == "closed: rollout app#%d of v2 is progressing at step 1 of 2\n" % doc["id"]
    assert cli.json("gate", "app", rc=1)["ok"] is False

    p = cli("rollout", "pause", "app")
    assert "paused the rollout of app" in p.stdout and "state      paused" in p.stdout
    p = cli("rollout", "abort", "app")
    assert "state      aborted" in p.stdout
    assert re.search(r"^ended      \d{4}-\d\d-\d\dT", p.stdout, re.M), p.stdout
    assert Api(fb).weights() == {"v1": 100, "v2": 0}
    p = cli("rollout", "abort", "app", rc=1)
    assert p.stderr.startswith("firebreak: conflict: ")
    assert cli("gate", "app").stdout == "open\n"


def test_incident_from_declaration_to_postmortem(start_firebreak, upstream):
    fb = start_firebreak([upstream.addr])
    cli = Cli(fb)

    p = cli("incident", "declare", "--title", "checkout errors", "--severity", "SEV2",
            "--service", "app")
    assert p.stdout == "declared INC-1 (SEV2, investigating): checkout errors\n"
    cli("incident", "declare", "--title", "x", "--severity", "SEV7", rc=2)
    p = cli("gate", "app", rc=1)
    assert "closed: incident INC-1 (SEV2, investigating) is open: checkout errors" in p.stdout

    assert cli("incident", "assign", "INC-1", "commander", "Ada", "Lovelace").stdout == \
        "INC-1: commander is Ada Lovelace\n"
    p = cli("incident", "assign", "INC-1", "chief", "Bob", rc=1)
    assert "role must be" in p.stderr
    cli("incident", "note", "INC-1", "rolled", "back", "by", "hand")

    p = cli("incident", "update", "INC-1", "--draft")
    for label in ("draft internal update of INC-1", "known:", "unknown:", "next steps:",
                  "next update:"):
        assert label in p.stdout, p.stdout
    draft = cli.json("incident", "update", "INC-1", "--draft", "--audience", "public")
    assert draft["audience"] == "public" and draft["known"]

    # the server refuses an incomplete update, and says what is missing
    p = cli("incident", "update", "INC-1", "--publish", "--known", "checkout fails", rc=1)
    assert 'an update needs "unknown"' in p.stderr
    p = cli("incident", "update", "INC-1", "--publish", "--known", "checkout fails",
            "--unknown", "the cause", "--next-steps", "read the logs", rc=1)
    assert 'an update needs "next_update"' in p.stderr

    p = cli("incident", "update", "INC-1", "--publish", "--audience", "public")
    assert p.stdout.startswith("published public update of INC-1\n")
    before = time.time() * 1000
    p = cli("incident", "update", "INC-1", "--publish", "--known", "checkout fails",
            "--unknown", "the cause", "--next-steps", "read the logs", "--next-update", "30m")
    assert "  checkout fails\n  What we don't know yet: the cause\n" in p.stdout
    inc = cli.json("incident", "show", "INC-1")
    assert [u["audience"] for u in inc["updates"]] == ["public", "internal"]
    due = inc["updates"][1]["next_update_ms"]
    assert before + 1800000 - 1000 <= due <= time.time() * 1000 + 1800000

    cli("incident", "check", "INC-1", "learn")
    cli("incident", "action", "add", "INC-1", "--type", "detect", "--text", "alert on 5xx",
        "--owner", "sre")
    assert cli("incident", "action", "done", "INC-1", "1").stdout == \
        "action 1 of INC-1 is done\n"
    cli("incident", "action", "done", "INC-1", "2", rc=1)

    assert cli("incident", "resolve", "INC-1").stdout == "resolved INC-1\n"
    p = cli("incident", "list")
    assert re.search(r"^INC-1\s+SEV2\s+resolved\s+checkout errors\s+app\s+\S+Z\s+due$",
                     p.stdout, re.M), p.stdout
    assert cli("gate", "app").stdout == "open\n"

    p = cli("incident", "postmortem", "INC-1")
    path = p.stdout.strip().rsplit(" ", 1)[1]
    assert path == os.path.join(fb.config["state"], "postmortems", "INC-1.md"), p.stdout
    with open(path) as f:
        assert f.read().startswith("# Postmortem: INC-1")
    p = cli("incident", "postmortem", "INC-1", "--print")
    assert p.stdout.startswith("# Postmortem: INC-1") and path in p.stderr
    assert re.search(r"^INC-1\s.*\swritten$", cli("incident", "list").stdout, re.M)

    p = cli("incident", "show", "INC-1")
    out = p.stdout
    assert out.startswith("INC-1  SEV2  resolved  checkout errors\n")
    assert "  commander  Ada Lovelace\n" in out
    assert re.search(r"^  learn\s+done\s+\d{4}-", out, re.M)
    assert re.search(r"^1\s+detect\s+done\s+sre\s+alert on 5xx$", out, re.M)
    assert "postmortem    %s (written " % path in out
    # the timeline, in order, with absolute and T+ times
    rows = re.findall(r"^(\d{4}-\S+Z)\s+(T[+-]\S+)\s+(\S+)\s", out.split("\ntimeline\n")[1],
                      re.M)
    types = [t for _, _, t in rows]
    assert types[:3] == ["incident_declared", "incident_role", "incident_note"], types
    assert "incident_resolved" in types and types[-1] == "postmortem_written"
    # T+ counts from the declaration (no impact was measured); the declared event is
    # stamped a few ms after the declaration time it carries
    assert re.fullmatch(r"T\+\d{1,3}ms", rows[0][1]) and all(r[1].startswith("T+") for r in rows)
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)


def test_bad_release_rolled_back_shows_in_the_incident(start_firebreak, upstream):
    bad = relhelp.StatusUpstream(500).start()
    try:
        fb = start_firebreak([upstream.addr])
        cli = Cli(fb)
        cli("release", "add", "app", "v2", "--endpoint", bad.addr)
        cli("rollout", "start", "app", "v2", "--steps", "50%:30s,100%")
        traffic(fb, 60)
        wait_for(lambda: cli.json("rollout", "status", "app")["state"] == "rolled_back",
                 what="the automatic rollback")
        p = cli("rollout", "status", "app")
        assert "state      rolled_back" in p.stdout
        assert re.search(r"^reason     (guard|judge)", p.stdout, re.M) or \
            re.search(r"^reason     .*(ejected|5xx|errors)", p.stdout, re.M), p.stdout

        p = cli("incident", "list")
        assert re.search(r"^INC-1\s+SEV\d\s+identified\s+app release v2 rolled back "
                         r"automatically", p.stdout, re.M), p.stdout
        out = cli("incident", "show", "INC-1").stdout
        assert "declared by   firebreak (automatic)" in out
        assert re.search(r"^caused by     rollout app#\d+ of release v2, started \d{4}-", out,
                         re.M), out
        assert re.search(r"^fixed by      rollback by (guard|judge) at \d{4}-", out, re.M), out
        assert re.search(r"^  release v2: \d+ of \d+ requests failed", out, re.M), out
        assert re.search(r"^  contained\s+\d{4}-\S+Z\s+T\+", out, re.M), out
        types = re.findall(r"^\d{4}-\S+Z\s+T[+-]\S+\s+(\S+)\s", out.split("\ntimeline\n")[1],
                           re.M)
        assert types.index("rollout_started") < types.index("rollback") < \
            types.index("incident_declared"), types
        p = cli("gate", "app", rc=1)
        assert "closed: incident INC-1" in p.stdout
    finally:
        bad.stop()
