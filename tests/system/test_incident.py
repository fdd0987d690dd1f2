"""Incidents from the outside (issue 5): a bad rollout rolled back by the judge
declares an incident whose timeline, cause, measured impact and times match
what happened and what the clients saw; drafted updates and the rules of
publishing; reminders on a clock advanced through the API; roles, notes,
checklist, action items, resolution and the postmortem; kill -9."""

import json
import os
import re
import time

import pytest

import fbproc
import relhelp
from relhelp import Api
from rohelp import (BadRollout, HookReceiver, event_types, in_order, rollout_config,
                    settled_incident, signature_ok)

POSTMORTEM_SECTIONS = ["Summary", "Impact", "Data impact", "Timeline", "Detection", "Response",
                       "Trigger and root cause", "What went well", "What went badly",
                       "Where we got lucky", "Action items"]


def rfc3339(ms):
    """Unix milliseconds as the API writes times: 2026-11-26T18:30:45.599Z."""
    sec, msec = divmod(int(ms), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + ".%03dZ" % msec


def only_incident(api):
    r = api.get("incidents")
    assert r.status == 200, r
    assert len(r.doc["incidents"]) == 1, r.doc
    return r.doc["incidents"][0]


def show(api, iid):
    r = api.get("incidents/" + iid)
    assert r.status == 200, r
    return r.doc


def error_of(r, status, name):
    assert r.status == status, "expected %d, got %r" % (status, r)
    assert r.doc and r.doc.get("error") == name, r
    return r.doc["message"]


def sections(markdown):
    """The '## ' headings of a Markdown text, in order."""
    return [line[3:].strip() for line in markdown.splitlines() if line.startswith("## ")]


def timeline_rows(markdown):
    """(time, event) of each row of the postmortem's Timeline table."""
    text = markdown.split("## Timeline", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"\d{4}-\d\d-\d\dT[0-9:.]+Z", cells[0]):
            rows.append((cells[0], cells[2]))
    return rows


# a bad rollout declares an incident ----------------------------------------------------
@pytest.mark.timeout_s(75)
def test_bad_rollout_declares_an_incident_with_timeline_impact_and_updates(
        start_firebreak, tmp_path, v1, flaky):
    fb = start_firebreak(None, config=rollout_config(str(tmp_path), v1.addr))
    sc = BadRollout(fb, flaky).run()
    api = sc.api
    assert sc.rollout["state"] == "rolled_back", sc.rollout
    inc = only_incident(api)
    iid = inc["id"]
    assert iid == "INC-1" and inc["automatic"] is True, inc
    assert inc["services"] == ["app"] and inc["status"] == "identified", inc
    assert inc["severity"] in ("SEV1", "SEV2", "SEV3", "SEV4"), inc
    assert inc["caused_by"]["type"] == "rollout" and inc["caused_by"]["release"] == "v2", inc
    assert inc["caused_by"]["rollout"] == "app#%d" % sc.rollout["id"], inc
    assert inc["fixed_by"]["type"] == "rollback" and inc["fixed_by"]["trigger"] == "judge", inc
    assert inc["checklist"]["contain"]["state"] == "done", inc["checklist"]

    # the timeline, in order
    doc = settled_incident(api, iid)
    tl = doc["timeline"]
    times = [e["time_ms"] for e in tl]
    assert times == sorted(times), "timeline not in time order: %s" % event_types(tl)
    idx = in_order(tl, [
        lambda e: e["type"] == "release_added" and e["release"] == "v2",
        lambda e: e["type"] == "rollout_started",
        lambda e: e["type"] == "weights_changed",
        lambda e: e["type"] == "verdict" and e["details"]["verdict"] == "fail",
        lambda e: e["type"] == "rollback" and e["details"]["trigger"] == "judge",
    ])
    assert None not in idx, "timeline %s: steps found at %s" % (event_types(tl), idx)
    started, rollback = tl[idx[1]], tl[idx[4]]
    assert "incident_declared" in event_types(tl[idx[4]:]), event_types(tl)

    # the impact, against what the clients saw
    failed, users = sc.failed(), sc.users_failed()
    served = sc.load.served_by("v2")
    im = doc["impact"]
    print("\nclients: %d 5xx from v2 of %d answers, %d users; incident: %d of %d, %d users"
          % (len(failed), len(served), len(users), im["requests_failed"],
             im["requests_served"], im["users_affected"]))
    assert im["release"] == "v2", im
    assert im["requests_failed"] == len(failed), (im, len(failed))
    assert im["requests_served"] == len(served), (im, len(served))
    assert im["users_affected"] == len(users), (im, len(users))
    assert im["writes"] == 0, im  # GETs only
    assert im["peak_error_rate"] >= 0.1, im
    # docs/incidents.md: SEV2 takes 5% of at least 10 failed requests, 100 users or a write;
    # SEV3 any failure users saw.
    want = "SEV2" if (im["peak_error_rate"] >= 0.05 and im["requests_failed"] >= 10) or \
        im["users_affected"] >= 100 or im["writes"] > 0 else "SEV3"
    assert doc["suggested_severity"] == want, doc

    # times and durations
    t = doc["times"]
    first_5xx = min(r.time for r in failed)
    assert started["time_ms"] - 1000 <= t["impact_start_ms"] <= first_5xx * 1000 + 50, \
        (t, started["time_ms"], first_5xx)
    assert abs(t["contained_ms"] - rollback["time_ms"]) < 1000, (t, rollback)
    assert t["impact_start_ms"] < t["detected_ms"] <= t["contained_ms"], t
    d = doc["durations"]
    assert d["time_to_detect_s"] == pytest.approx(
        (t["detected_ms"] - t["impact_start_ms"]) / 1000.0, abs=0.01), (d, t)
    assert 0 < d["time_to_detect_s"] <= d["time_to_contain_s"] < 30, d
    assert d["time_to_resolve_s"] is None, d

    # a drafted internal update quotes the figures
    r = api.get("incidents/%s/updates/draft?audience=internal" % iid)
    assert r.status == 200, r
    draft = r.doc
    for key in ("known", "unknown", "next_steps", "next_update"):
        assert draft.get(key), "draft has no %s: %s" % (key, draft)
    known = draft["known"]
    for figure in ("%d of %d requests" % (im["requests_failed"], im["requests_served"]),
                   "%d users" % im["users_affected"], "v2"):
        assert figure in known, "%r not in the draft: %s" % (figure, known)
    assert draft["next_update_ms"] > time.time() * 1000, draft
    error_of(api.get("incidents/%s/updates/draft?audience=press" % iid), 400, "invalid")
    error_of(api.get("incidents/INC-99/updates/draft"), 404, "not_found")

    # publishing: the four parts are required
    body = {k: draft[k] for k in ("audience", "known", "unknown", "next_steps")}
    msg = error_of(api.post("incidents/%s/updates" % iid, body), 400, "invalid")
    assert "next_update" in msg, msg
    past = dict(body, next_update="2020-01-01T00:00:00.000Z")
    assert "next_update" in error_of(api.post("incidents/%s/updates" % iid, past), 400,
                                     "invalid")
    no_known = dict(body, next_update=rfc3339(time.time() * 1000 + 30 * 60000))
    del no_known["known"]
    assert "known" in error_of(api.post("incidents/%s/updates" % iid, no_known), 400, "invalid")
    assert show(api, iid)["updates"] == [], "a refused update was kept"
    r = api.post("incidents/%s/updates" % iid, {"audience": "internal", "draft": True})
    assert r.status == 201, r
    ups = r.doc["updates"]
    assert len(ups) == 1 and ups[0]["audience"] == "internal", ups
    assert "%d users" % im["users_affected"] in ups[0]["text"], ups[0]
    assert ups[0]["next_update_ms"] > time.time() * 1000, ups[0]
    assert r.doc["checklist"]["report"]["state"] == "done", r.doc["checklist"]

    # the postmortem of this incident: every section, the timeline in order
    r = api.post("incidents/%s/postmortem" % iid)
    assert r.status == 201, r
    md = r.doc["markdown"]
    assert [s for s in sections(md) if s in POSTMORTEM_SECTIONS] == POSTMORTEM_SECTIONS, \
        sections(md)
    rows = timeline_rows(md)
    assert [x for x, _ in rows] == sorted(x for x, _ in rows), rows
    kinds = [k for _, k in rows]
    ro = in_order([{"type": k} for k in kinds], [
        lambda e: e["type"] == "release_added", lambda e: e["type"] == "rollout_started",
        lambda e: e["type"] == "weights_changed", lambda e: e["type"] == "verdict",
        lambda e: e["type"] == "rollback"])
    assert None not in ro, kinds
    assert "app#%d" % sc.rollout["id"] in md.split("## Trigger and root cause", 1)[1], md
    assert "| requests failed | %d |" % im["requests_failed"] in md, md
    with open(r.doc["path"]) as f:
        assert f.read() == md

    # the incident survives kill -9, figures and all
    before = show(api, iid)
    relhelp.kill9(fb)
    relhelp.restart(fb)
    time.sleep(2.2)  # two measurement ticks of the restarted gateway
    after = show(api, iid)
    for key in ("id", "title", "severity", "status", "services", "caused_by", "fixed_by",
                "times", "durations", "updates", "checklist", "postmortem"):
        assert after.get(key) == before.get(key), "%s changed across kill -9: %r -> %r" % (
            key, before.get(key), after.get(key))
    assert event_types(after["timeline"])[:len(before["timeline"])] == \
        event_types(before["timeline"])
    # (the measured impact itself: test_measured_impact_survives_kill9)


def _impact_after_restart_bug():
    return ("after a restart, an open incident's impact is re-measured from the new "
            "process's empty one-second series and reset to zero")


@pytest.mark.timeout_s(60)
def test_measured_impact_survives_kill9(start_firebreak, tmp_path, v1, flaky):
    fb = start_firebreak(None, config=rollout_config(str(tmp_path), v1.addr))
    sc = BadRollout(fb, flaky, warmup=1.5, settle=0.5).run()
    api = sc.api
    iid = only_incident(api)["id"]
    before = settled_incident(api, iid)
    assert before["impact"]["requests_failed"] == len(sc.failed()) > 0, before["impact"]
    relhelp.kill9(fb)
    relhelp.restart(fb)
    time.sleep(2.2)  # two measurement ticks of the restarted gateway
    after = show(api, iid)
    assert after["status"] == "identified", after
    assert after["impact"] == before["impact"], \
        "the measured impact changed after a restart: %s -> %s" % (before["impact"],
                                                                   after["impact"])


@pytest.mark.timeout_s(60)
def test_impact_counts_a_release_rolled_out_as_soon_as_it_is_added(start_firebreak, tmp_path,
                                                                  v1, flaky):
    # `release add` then `rollout start` at once, as a pipeline does; the
    # release is added just after a series sample, so nearly a second of its
    # traffic comes before the series first looks at it.
    fb = start_firebreak(None, config=rollout_config(str(tmp_path), v1.addr))
    sc = BadRollout(fb, flaky, warmup=1.5, settle=0.5, add_gap=0, align_to_tick=True).run()
    api = sc.api
    iid = only_incident(api)["id"]
    doc = settled_incident(api, iid)
    im = doc["impact"]
    failed, served = sc.failed(), sc.load.served_by("v2")
    print("\nclients: %d 5xx from v2 of %d answers, %d users; incident: %d of %d, %d users; "
          "impact_start %s, first 5xx %.3f"
          % (len(failed), len(served), len(sc.users_failed()), im["requests_failed"],
             im["requests_served"], im["users_affected"], doc["times"]["impact_start"],
             min(r.time for r in failed)))
    assert (im["requests_failed"], im["requests_served"], im["users_affected"]) == \
        (len(failed), len(served), len(sc.users_failed()))
    assert doc["times"]["impact_start_ms"] <= min(r.time for r in failed) * 1000 + 50, doc


# declared by hand: roles, notes, status, checklist, actions, resolve, postmortem ------------
@pytest.mark.timeout_s(40)
def test_incident_by_hand_from_declaration_to_postmortem(start_firebreak, tmp_path, v1):
    fb = start_firebreak(None, config=rollout_config(str(tmp_path), v1.addr))
    api = Api(fb)
    base = "incidents"
    # refused declarations
    error_of(api.post(base, {"title": "x", "severity": "SEV5", "services": ["app"]}), 400,
             "invalid")
    error_of(api.post(base, {"title": "", "severity": "SEV2"}), 400, "invalid")
    error_of(api.post(base, {"severity": "SEV2"}), 400, "invalid")
    error_of(api.post(base, {"title": "x", "severity": "SEV2", "services": ["nope"]}), 404,
             "not_found")
    viewer = api.with_token(api.create_token("watcher", "viewer"))
    # (a viewer's POST /incidents: test_refused_declaration_leaves_the_gateway_sound)
    assert api.get(base).doc["incidents"] == []

    r = api.post(base, {"title": "Checkout errors", "severity": "SEV2", "services": ["app"]})
    assert r.status == 201, r
    inc = r.doc
    iid = inc["id"]
    assert iid == "INC-1" and inc["status"] == "investigating" and inc["automatic"] is False
    assert inc["roles"] == {"commander": None, "comms": None, "ops": None, "scribe": None}, inc
    assert set(inc["checklist"]) >= {"comprehend", "identify", "report", "contain", "learn",
                                     "execute", "sustain"}, inc["checklist"]
    assert inc["times"]["declared_ms"] and inc["times"]["resolved_ms"] is None, inc["times"]
    assert viewer.get(base + "/" + iid).status == 200
    error_of(viewer.post(base + "/%s/notes" % iid, {"text": "hi"}), 403, "forbidden")
    error_of(api.get(base + "/INC-404"), 404, "not_found")
    error_of(api.post(base + "/INC-404/notes", {"text": "x"}), 404, "not_found")

    def post(verb, body=None, status=200):
        r = api.post("%s/%s/%s" % (base, iid, verb), body)
        assert r.status == status, "%s %r: %r" % (verb, body, r)
        return r.doc

    doc = post("assign", {"role": "commander", "name": "Ada"})
    assert doc["roles"]["commander"] == "Ada", doc["roles"]
    assert doc["checklist"]["identify"]["state"] == "done", doc["checklist"]
    doc = post("assign", {"role": "comms", "name": "Grace"})
    assert doc["roles"]["comms"] == "Grace" and doc["roles"]["commander"] == "Ada"
    error_of(api.post("%s/%s/assign" % (base, iid), {"role": "hero", "name": "X"}), 400,
             "invalid")
    error_of(api.post("%s/%s/assign" % (base, iid), {"role": "ops"}), 400, "invalid")
    post("notes", {"text": "checkout answers 502 for some users"})
    error_of(api.post("%s/%s/notes" % (base, iid), {"text": ""}), 400, "invalid")
    doc = post("status", {"status": "identified"})
    assert doc["status"] == "identified"
    error_of(api.post("%s/%s/status" % (base, iid), {"status": "fixed"}), 400, "invalid")
    doc = post("checklist", {"item": "learn", "done": True})
    assert doc["checklist"]["learn"]["state"] == "done" and doc["checklist"]["learn"]["time"]
    doc = post("checklist", {"item": "learn", "done": False})
    assert doc["checklist"]["learn"]["state"] == "open"
    error_of(api.post("%s/%s/checklist" % (base, iid), {"item": "pray"}), 400, "invalid")
    doc = post("actions", {"type": "prevent", "text": "Load test checkout", "owner": "Ada"})
    doc = post("actions", {"type": "detect", "text": "Alert on 502s"})
    assert [(a["id"], a["type"], a["status"]) for a in doc["actions"]] == \
        [(1, "prevent", "open"), (2, "detect", "open")], doc["actions"]
    assert doc["actions"][0]["owner"] == "Ada", doc["actions"]
    error_of(api.post("%s/%s/actions" % (base, iid), {"type": "blame", "text": "x"}), 400,
             "invalid")
    doc = post("actions/1/done")
    assert doc["actions"][0]["status"] == "done" and doc["actions"][1]["status"] == "open"
    error_of(api.post("%s/%s/actions/9/done" % (base, iid)), 400, "invalid")
    doc = post("status", {"status": "monitoring"})
    assert doc["status"] == "monitoring" and doc["postmortem_due"] is False, doc

    doc = post("resolve")
    assert doc["status"] == "resolved" and doc["times"]["resolved_ms"], doc["times"]
    assert doc["times"]["resolved_ms"] >= doc["times"]["declared_ms"]
    assert doc["postmortem_due"] is True, "a resolved SEV2 owes a postmortem: %s" % doc
    assert api.get(base).doc["incidents"][0]["postmortem_due"] is True
    assert show(api, iid)["postmortem_due"] is True
    error_of(api.post("%s/%s/status" % (base, iid), {"status": "investigating"}), 409,
             "conflict")
    error_of(api.post("%s/%s/resolve" % (base, iid)), 409, "conflict")

    r = api.post("%s/%s/postmortem" % (base, iid))
    assert r.status == 201, r
    md = r.doc["markdown"]
    assert [s for s in sections(md) if s in POSTMORTEM_SECTIONS] == POSTMORTEM_SECTIONS, \
        sections(md)
    rows = timeline_rows(md)
    assert [x for x, _ in rows] == sorted(x for x, _ in rows), rows
    kinds = [k for _, k in rows]
    assert None not in in_order([{"type": k} for k in kinds], [
        lambda e: e["type"] == "incident_declared", lambda e: e["type"] == "incident_role",
        lambda e: e["type"] == "incident_note", lambda e: e["type"] == "incident_action",
        lambda e: e["type"] == "incident_resolved"]), kinds
    response = md.split("## Response", 1)[1].split("\n## ", 1)[0]
    assert "Ada" in response and "Grace" in response, response
    actions = md.split("## Action items", 1)[1]
    assert re.search(r"\|\s*1\s*\|\s*prevent\s*\|\s*Load test checkout\s*\|\s*Ada\s*\|\s*done",
                     actions), actions
    assert re.search(r"\|\s*2\s*\|\s*detect\s*\|\s*Alert on 502s\s*\|.*\|\s*open", actions), \
        actions
    assert os.path.isfile(r.doc["path"])
    assert show(api, iid)["postmortem_due"] is False
    assert api.get(base).doc["incidents"][0]["postmortem_due"] is False

    # a resolved SEV3 owes none
    r = api.post(base, {"title": "Minor glitch", "severity": "SEV3", "services": ["app"]})
    assert r.status == 201 and r.doc["id"] == "INC-2", r
    assert api.post("%s/INC-2/resolve" % base).doc["postmortem_due"] is False


@pytest.mark.timeout_s(40)
def test_incidents_by_hand_survive_kill9(start_firebreak, tmp_path, v1):
    fb = start_firebreak(None, config=rollout_config(str(tmp_path), v1.addr))
    api = Api(fb)
    r = api.post("incidents", {"title": "Login failing", "severity": "SEV1", "services": ["app"]})
    assert r.status == 201, r
    iid = r.doc["id"]
    api.post("incidents/%s/assign" % iid, {"role": "commander", "name": "Ada"})
    api.post("incidents/%s/notes" % iid, {"text": "rolled the config back"})
    api.post("incidents/%s/actions" % iid, {"type": "process", "text": "Review config changes"})
    assert api.post("incidents/%s/updates" % iid,
                    {"audience": "internal", "known": "login fails for some users",
                     "unknown": "the cause", "next_steps": "bisect the config",
                     "next_update": rfc3339(time.time() * 1000 + 20 * 60000)}).status == 201
    api.post("incidents/%s/status" % iid, {"status": "monitoring"})
    r = api.post("incidents", {"title": "Old", "severity": "SEV4", "services": ["app"]})
    api.post("incidents/%s/resolve" % r.doc["id"])
    before = api.get("incidents").doc["incidents"]
    tl_before = show(api, iid)["timeline"]
    time.sleep(0.3)
    relhelp.kill9(fb)
    relhelp.restart(fb)
    after = api.get("incidents").doc["incidents"]
    assert after == before, "incidents changed across kill -9:\n%s\n%s" % (
        json.dumps(before), json.dumps(after))
    tl_after = show(api, iid)["timeline"]
    assert [(e["id"], e["type"]) for e in tl_after] == [(e["id"], e["type"]) for e in tl_before]
    r = api.post("incidents", {"title": "Next", "severity": "SEV3"})
    assert r.status == 201 and r.doc["id"] == "INC-3", r


@pytest.mark.timeout_s(30)
def test_refused_declaration_leaves_the_gateway_sound(firebreak_bin, tmp_path, v1):
    # Run outside the start_firebreak fixture: its teardown would report the
    # sanitizer's finding as an error of its own; here the test itself fails.
    fb = fbproc.Firebreak(firebreak_bin, str(tmp_path),
                          rollout_config(str(tmp_path), v1.addr), name="declare")
    fb.start()
    try:
        api = Api(fb)
        viewer = api.with_token(api.create_token("watcher", "viewer"))
        body = {"title": "x", "severity": "SEV2", "services": ["app"]}
        try:
            r403 = viewer.post("incidents", body)
            r401 = api.with_token(None).post("incidents", body)
        except OSError as e:
            r403 = r401 = "no answer: %s" % e
        time.sleep(0.3)
        report = fb.sanitizer_report()
        assert not report, report
        assert fb.alive(), "firebreak exited:\n%s" % fb.stderr_tail()
        assert getattr(r403, "status", None) == 403, r403
        assert getattr(r401, "status", None) == 401, r401
        assert api.get("incidents").doc["incidents"] == []
    finally:
        fb.stop()


# reminders on the debug clock ------------------------------------------------------------
def reminders(api, iid):
    return [e for e in api.events() if e["type"] == "reminder"
            and e["details"].get("incident") == iid]


@pytest.mark.timeout_s(40)
def test_overdue_update_raises_a_reminder_without_sleeping(start_firebreak, tmp_path, v1,
                                                           monkeypatch):
    monkeypatch.setenv("FIREBREAK_DEBUG_CLOCK", "1")
    fb = start_firebreak(None, config=rollout_config(str(tmp_path), v1.addr))
    api = Api(fb)
    r = api.post("incidents", {"title": "Payments down", "severity": "SEV1", "services": ["app"]})
    assert r.status == 201, r
    iid = r.doc["id"]
    r = api.post("incidents", {"title": "Cosmetic", "severity": "SEV4", "services": ["app"]})
    quiet = r.doc["id"]
    responder = api.with_token(api.create_token("oncall", "responder"))
    error_of(responder.post("debug/clock", {"advance_ms": 1000}), 403, "forbidden")
    error_of(api.post("debug/clock", {"advance_ms": -5}), 400, "invalid")

    r = api.post("debug/clock", {"advance_ms": 5 * 60000})
    assert r.status == 200, r
    assert reminders(api, iid) == [], "a reminder 5 minutes into a SEV1 (cadence 15 min)"
    t0 = r.doc["now_ms"]
    r = api.post("debug/clock", {"advance_ms": 1000000})
    assert r.status == 200 and r.doc["now_ms"] >= t0 + 1000000, r
    rem = reminders(api, iid)
    assert len(rem) == 1, rem
    assert rem[0]["details"]["kind"] == "update" and iid in rem[0]["details"]["text"], rem
    assert reminders(api, quiet) == [], "SEV4 has no update cadence"
    # no second reminder for the same overdue update
    api.post("debug/clock", {"advance_ms": 60000})
    assert len(reminders(api, iid)) == 1

    # an update sets the next due time; the next reminder comes after it
    now_ms = api.post("debug/clock", {"advance_ms": 0}).doc["now_ms"]
    r = api.post("incidents/%s/updates" % iid,
                 {"audience": "internal", "known": "card payments fail",
                  "unknown": "the cause", "next_steps": "call the provider",
                  "next_update": rfc3339(now_ms + 10 * 60000)})
    assert r.status == 201, r
    api.post("debug/clock", {"advance_ms": 9 * 60000})
    assert len(reminders(api, iid)) == 1, "reminded before the promised update time"
    api.post("debug/clock", {"advance_ms": 2 * 60000})
    assert len(reminders(api, iid)) == 2, reminders(api, iid)
    # resolved incidents are not chased
    api.post("incidents/%s/resolve" % iid)
    api.post("debug/clock", {"advance_ms": 3600000})
    assert len(reminders(api, iid)) == 2


def test_debug_clock_is_off_by_default(start_firebreak, tmp_path, v1, monkeypatch):
    monkeypatch.delenv("FIREBREAK_DEBUG_CLOCK", raising=False)
    fb = start_firebreak(None, config=rollout_config(str(tmp_path), v1.addr))
    msg = error_of(Api(fb).post("debug/clock", {"advance_ms": 1000000}), 404, "not_found")
    assert "FIREBREAK_DEBUG_CLOCK" in msg, msg


# webhooks ----------------------------------------------------------------------------------
SECRET = "a long random string shared with the receiver"


@pytest.mark.timeout_s(40)
def test_webhook_is_signed_and_retried_after_a_500(start_firebreak, tmp_path, v1, monkeypatch):
    monkeypatch.setenv("FIREBREAK_DEBUG_CLOCK", "1")
    recv = HookReceiver(fail_first=1).start()
    try:
        hooks = [{"name": "oncall", "url": recv.url,
                  "events": ["incident_declared", "reminder"], "secret": SECRET,
                  "timeout": "2s"}]
        fb = start_firebreak(None, config=rollout_config(str(tmp_path), v1.addr,
                                                         webhooks=hooks))
        api = Api(fb)
        r = api.post("incidents", {"title": "Payments down", "severity": "SEV1",
                                   "services": ["app"]})
        assert r.status == 201, r
        iid = r.doc["id"]
        api.post("incidents/%s/notes" % iid, {"text": "not for the hook"})
        hits = relhelp.wait_for(lambda: len(recv.of_type("incident_declared")) >= 2 and
                                recv.of_type("incident_declared"), 10,
                                what="the declaration delivered twice (500, then retried)")
        first, second = hits[0], hits[1]
        assert (first["answered"], second["answered"]) == (500, 200), hits
        assert first["headers"]["x-firebreak-delivery"] == \
            second["headers"]["x-firebreak-delivery"], "a retry must keep its delivery id"
        assert second["time"] - first["time"] >= 0.9, "retried without backoff"
        for h in (first, second):
            assert h["path"] == "/hook", h["path"]
            assert signature_ok(SECRET, h), "bad signature: %s" % h["headers"]
            assert abs(int(h["headers"]["x-firebreak-timestamp"]) - h["time"]) < 5, h
            assert h["headers"]["content-type"].startswith("application/json"), h["headers"]
        assert first["body"] == second["body"]
        body = json.loads(second["body"])
        assert body["type"] == "incident_declared", body
        assert body["data"]["incident"] == iid, body
        assert "Payments down" in body["text"] and "\n" not in body["text"], body["text"]
        assert body["time"] and re.fullmatch(r"\d{4}-.*Z", body["time"]), body
        # a signature made with another secret, or over another body, does not match
        forged = dict(second, body=second["body"].replace(b"SEV1", b"SEV4"))
        assert not signature_ok(SECRET, forged)
        assert not signature_ok("another secret", second)

        # the delivery log and the metrics say the same
        def delivered():
            r = api.get("webhooks/deliveries")
            assert r.status == 200, r
            return [d for d in r.doc["deliveries"] if d["type"] == "incident_declared"
                    and d["state"] == "ok"]
        log = relhelp.wait_for(delivered, 5, what="the delivery logged ok")
        assert log[0]["hook"] == "oncall" and log[0]["attempts"] == 2, log
        assert log[0]["status"] == 200 and log[0]["id"] == first["headers"][
            "x-firebreak-delivery"], log
        assert recv.url not in json.dumps(api.get("webhooks/deliveries").doc)
        m = fb.metrics()
        assert m.value("firebreak_webhook_attempts_total", hook="oncall") >= 2
        assert m.value("firebreak_webhook_deliveries_total", hook="oncall", result="ok") >= 1

        # an overdue update is a reminder and reaches the hook too; notes are filtered out
        assert api.post("debug/clock", {"advance_ms": 1000000}).status == 200
        rem = relhelp.wait_for(lambda: [h for h in recv.of_type("reminder")
                                        if h["answered"] == 200], 10,
                               what="the reminder delivered")
        assert signature_ok(SECRET, rem[0]), rem[0]["headers"]
        assert json.loads(rem[0]["body"])["data"]["incident"] == iid
        assert recv.of_type("incident_note") == [], "a note went to a hook that did not ask"
    finally:
        recv.stop()


@pytest.mark.timeout_s(30)
def test_webhook_text_escapes_slack_markup(start_firebreak, tmp_path, v1):
    recv = HookReceiver().start()
    try:
        hooks = [{"name": "chat", "url": recv.url, "events": ["incident_declared"]}]
        fb = start_firebreak(None, config=rollout_config(str(tmp_path), v1.addr,
                                                         webhooks=hooks))
        r = Api(fb).post("incidents", {"title": "<!channel> checkout & payments",
                                       "severity": "SEV2", "services": ["app"]})
        assert r.status == 201, r
        hit = relhelp.wait_for(lambda: recv.of_type("incident_declared"), 10,
                               what="the declaration delivered")[0]
        assert "x-firebreak-signature" not in hit["headers"], "signed without a secret"
        text = json.loads(hit["body"])["text"]
        assert "<!channel>" not in text and "&lt;!channel&gt;" in text, text
        assert "&amp;" in text, text
    finally:
        recv.stop()
