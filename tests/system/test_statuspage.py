"""The public status page (issue 5) on status_page.listen: Statuspage-shaped JSON
and an HTML page; a component per service whose status follows the open
incidents; public updates only, and nothing internal: no endpoint, no release
or rollout name, no user key."""

import json
import re
import time
import urllib.error
import urllib.request

import pytest

import fbproc
import relhelp
from relhelp import Api
from rohelp import BadRollout, PlainUpstream, rollout_config, settled_incident

TITLE = "Shop status"


class StatusPage:
    def __init__(self, addr):
        self.base = "http://" + addr

    def fetch(self, path, method="GET"):
        req = urllib.request.Request(self.base + path, method=method)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.headers.get("Content-Type", ""), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", ""), e.read().decode()

    def json(self, name):
        status, ctype, text = self.fetch("/api/v2/" + name)
        assert status == 200, (name, status, text)
        assert ctype.startswith("application/json"), (name, ctype)
        return json.loads(text), text

    def html(self):
        status, ctype, text = self.fetch("/")
        assert status == 200 and ctype.startswith("text/html"), (status, ctype)
        return text


def status_config(tmp_path, v1_addr, extra_service_addr=None):
    addr = "127.0.0.1:%d" % fbproc.free_port()
    cfg = rollout_config(str(tmp_path), v1_addr, status_page={"listen": addr, "title": TITLE})
    if extra_service_addr:
        cfg["services"].insert(0, relhelp.service_entry(
            "search", [{"name": "s1", "endpoints": [extra_service_addr]}], stable="s1",
            host="search.test"))
    return cfg, StatusPage(addr)


def check_shape(doc, name):
    """The Statuspage public API shape of one document."""
    page = doc["page"]
    assert set(page) >= {"id", "name", "url", "time_zone", "updated_at"}, page
    assert page["name"] == TITLE, page
    if name in ("summary.json", "status.json"):
        st = doc["status"]
        assert st["indicator"] in ("none", "minor", "major", "critical"), st
        assert isinstance(st["description"], str) and st["description"], st
    if name in ("summary.json", "components.json"):
        for c in doc["components"]:
            assert set(c) >= {"id", "name", "status", "position"}, c
            assert c["status"] in ("operational", "degraded_performance", "partial_outage",
                                   "major_outage", "under_maintenance"), c
    if name in ("summary.json", "incidents.json"):
        for inc in doc["incidents"]:
            assert set(inc) >= {"id", "name", "status", "impact", "created_at",
                                "incident_updates", "resolved_at"}, inc
            assert inc["status"] in ("investigating", "identified", "monitoring",
                                     "resolved"), inc
            for u in inc["incident_updates"]:
                assert set(u) >= {"id", "status", "body", "created_at", "incident_id"}, u


def components(sp):
    doc, _ = sp.json("components.json")
    return {c["name"]: c["status"] for c in doc["components"]}


def test_status_page_with_nothing_wrong(start_firebreak, tmp_path, v1):
    up = PlainUpstream().start()
    try:
        cfg, sp = status_config(tmp_path, v1.addr, extra_service_addr=up.addr)
        start_firebreak(None, config=cfg)
        for name in ("summary.json", "status.json", "components.json", "incidents.json"):
            doc, _ = sp.json(name)
            check_shape(doc, name)
        summary, _ = sp.json("summary.json")
        assert summary["status"]["indicator"] == "none", summary
        assert {c["name"]: c["status"] for c in summary["components"]} == \
            {"search": "operational", "app": "operational"}, summary
        assert summary["incidents"] == [], summary
        assert sp.json("incidents.json")[0]["incidents"] == []
        html = sp.html()
        assert "<title>%s</title>" % TITLE in html, html[:300]
        for name in ("app", "search"):
            assert re.search(r"<li>%s<span[^>]*>operational</span>" % name, html), html
        assert sp.fetch("/api/v2/nothing.json")[0] == 404
        assert sp.fetch("/api/v2/summary.json", method="POST")[0] == 405
    finally:
        up.stop()


@pytest.mark.timeout_s(60)
def test_status_page_during_and_after_a_bad_rollout_leaks_nothing(start_firebreak, tmp_path,
                                                                   v1, flaky):
    cfg, sp = status_config(tmp_path, v1.addr)
    fb = start_firebreak(None, config=cfg)
    sc = BadRollout(fb, flaky).run()
    api = sc.api
    assert sc.rollout["state"] == "rolled_back", sc.rollout
    incs = api.get("incidents").doc["incidents"]
    assert len(incs) == 1, incs
    iid = incs[0]["id"]
    settled_incident(api, iid)

    # what must never reach the public: endpoints, the bad release, the rollout, user keys
    user_keys = sorted({r.user for r in sc.load.snapshot()})
    assert len(user_keys) > 100

    def leaks(text):
        found = []
        for addr in (v1.addr, flaky.addr):
            if addr in text or addr.split(":")[1] in text:
                found.append(addr)
        if re.search(r"(?<![\w/])v2\b", text):
            found.append("release v2")
        if "app#" in text:
            found.append("rollout id")
        keys = set(re.findall(r"\bu-\d+\b", text)) & set(user_keys)
        if keys:
            found.append("user keys %s" % sorted(keys)[:3])
        return found

    # a public update drafted from the incident names nothing internal
    r = api.get("incidents/%s/updates/draft?audience=public" % iid)
    assert r.status == 200, r
    pub = r.doc
    assert leaks(json.dumps(pub)) == [], (leaks(json.dumps(pub)), pub)
    for key in ("known", "unknown", "next_steps", "next_update"):
        assert pub.get(key), pub
    # and one that names them is refused
    for bad in ("Release v2 failed.", "The instance %s failed." % flaky.addr):
        body = dict((k, pub[k]) for k in ("audience", "unknown", "next_steps", "next_update"))
        body["known"] = bad
        r = api.post("incidents/%s/updates" % iid, body)
        assert r.status == 400 and r.doc["error"] == "invalid", (bad, r)
    # publish the public draft, and an internal one (with figures) that must stay inside
    assert api.post("incidents/%s/updates" % iid,
                    {"audience": "public", "draft": True}).status == 201
    r = api.post("incidents/%s/updates" % iid, {"audience": "internal", "draft": True})
    assert r.status == 201, r
    internal_text = r.doc["updates"][-1]["text"]
    assert "v2" in internal_text, internal_text

    texts = {}
    for name in ("summary.json", "status.json", "components.json", "incidents.json"):
        doc, texts[name] = sp.json(name)
        check_shape(doc, name)
    texts["/"] = sp.html()
    for name, text in texts.items():
        assert leaks(text) == [], "%s leaks %s" % (name, leaks(text))
        assert internal_text[:40] not in text, "%s shows the internal update" % name

    summary = json.loads(texts["summary.json"])
    comp = {c["name"]: c["status"] for c in summary["components"]}
    assert comp["app"] != "operational", summary["components"]
    assert summary["status"]["indicator"] != "none", summary["status"]
    assert [i["id"] for i in summary["incidents"]] == [iid], summary["incidents"]
    shown = summary["incidents"][0]
    assert shown["status"] == "identified", shown
    assert len(shown["incident_updates"]) == 1, "only the public update is shown: %s" % shown
    assert shown["incident_updates"][0]["body"].startswith(pub["known"]), shown
    html = texts["/"]
    assert re.search(r"<li>app<span[^>]*>%s</span>" % comp["app"], html), html
    assert pub["known"].split(".")[0] in html, html

    # resolved: operational again, the incident in the history
    r = api.post("incidents/%s/resolve" % iid)
    assert r.status == 200, r
    assert components(sp) == {"app": "operational"}
    summary, _ = sp.json("summary.json")
    assert summary["status"]["indicator"] == "none" and summary["incidents"] == [], summary
    hist, text = sp.json("incidents.json")
    assert [(i["id"], i["status"]) for i in hist["incidents"]] == [(iid, "resolved")], hist
    assert hist["incidents"][0]["resolved_at"], hist
    assert leaks(text) == []
    html = sp.html()
    assert re.search(r"<li>app<span[^>]*>operational</span>", html), html
    assert leaks(html) == []
