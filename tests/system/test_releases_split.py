"""The weighted sticky split as users see it: the share of users each release
gets, that a user stays on one release, the cookie that keys them, and pinning.

Each split check sends one request for each of 20,000 distinct users (as the
issue asks) through keep-alive connections with pipelined batches, to two fast
upstreams (Debian nginx) that name themselves in the body, so the release is
counted twice: from X-Firebreak-Release and from the upstream that answered.
User ids come from a seeded generator: the populations are fixed, so a
failure reproduces, and a run takes a few seconds with the ASan binary.
"""

import random
import re

import pytest

import fbproc
import relhelp
from relhelp import Sent, fan_out, release_of, sigma_bound, upstream_port_of

USERS = 20000


@pytest.fixture
def fast_pair(tmp_path):
    ups = relhelp.PortUpstreams(str(tmp_path), 2)
    yield ups
    ups.stop()


def two_releases(addrs):
    return [{"name": "v1", "endpoints": [addrs[0]]}, {"name": "v2", "endpoints": [addrs[1]]}]


def user_ids(seed, n):
    rng = random.Random(seed)
    return ["%032x" % rng.getrandbits(128) for _ in range(n)]


def assign(port, ids, header_of, ports_to_release, threads=6, batch=32):
    """Send one GET per user; return {user: release}, checking that every answer
    is 200, names its release, came from that release's upstream, and sets no
    cookie when the request carried one."""
    sent = [Sent("/item/%d" % i, [header_of(uid)]) for i, uid in enumerate(ids)]
    fan_out(port, sent, threads=threads, batch=batch, timeout=50)
    out = {}
    problems = []
    for uid, s in zip(ids, sent):
        if s.resp is None:
            problems.append("%s: no answer (%s)" % (uid, s.error))
            continue
        rel = release_of(s)
        served = ports_to_release.get(upstream_port_of(s.resp))
        if s.resp.status != 200 or rel is None or rel != served:
            problems.append("%s: status %d, X-Firebreak-Release %r, served by %r"
                            % (uid, s.resp.status, rel, served))
        elif header_of(uid)[0] == "Cookie" and s.resp.get("Set-Cookie"):
            problems.append("%s: a cookie was sent, yet got Set-Cookie %r"
                            % (uid, s.resp.get("Set-Cookie")))
        out[uid] = rel
    assert not problems, "%d bad answers, first: %s" % (len(problems), problems[:5])
    return out


def cookie(uid):
    return ("Cookie", "fb_uid=" + uid)


def check_share(assigned, release, percent):
    n = len(assigned)
    got = sum(1 for r in assigned.values() if r == release)
    expect = n * percent / 100.0
    bound = sigma_bound(n, percent / 100.0)
    assert abs(got - expect) <= bound, \
        "%s got %d of %d users at %s%%: expected %.0f +- %.0f (3 sigma)" \
        % (release, got, n, percent, expect, bound)
    return got


@pytest.mark.timeout_s(90)
@pytest.mark.parametrize("percent", [1, 5, 50])
def test_cookie_split_within_3_sigma(start_firebreak, tmp_path, fast_pair, percent):
    cfg = relhelp.release_config(str(tmp_path), two_releases(fast_pair.addrs))
    fb = start_firebreak(None, config=cfg)
    api = relhelp.Api(fb)
    api.set_weights({"v1": 100 - percent, "v2": percent})
    assert api.weights() == {"v1": 100 - percent, "v2": percent}
    ports = dict(zip(fast_pair.ports, ("v1", "v2")))
    assigned = assign(fb.port, user_ids(percent, USERS), cookie, ports)
    assert len(assigned) == USERS
    check_share(assigned, "v2", percent)
    assert sum(1 for r in assigned.values() if r == "v1") + \
        sum(1 for r in assigned.values() if r == "v2") == USERS


@pytest.mark.timeout_s(90)
def test_header_split_within_3_sigma(start_firebreak, tmp_path, fast_pair):
    cfg = relhelp.release_config(str(tmp_path), two_releases(fast_pair.addrs),
                                 sticky={"header": "X-User-Id"})
    fb = start_firebreak(None, config=cfg)
    api = relhelp.Api(fb)
    api.set_weights({"v1": 95, "v2": 5})
    ports = dict(zip(fast_pair.ports, ("v1", "v2")))
    ids = user_ids(7, USERS)
    assigned = assign(fb.port, ids, lambda uid: ("X-User-Id", uid), ports)
    check_share(assigned, "v2", 5)
    # The header keys the user: asked again (other connections, another
    # order), every user lands where they did.
    again = assign(fb.port, ids[::-1][:4000], lambda uid: ("X-User-Id", uid), ports,
                   threads=3, batch=16)
    moved = [u for u, r in again.items() if assigned[u] != r]
    assert not moved, "%d users changed release with the same X-User-Id: %s" \
        % (len(moved), moved[:5])
    # Without the header the client address keys the user: one release, no cookie.
    seen = set()
    for _ in range(10):
        r = fbproc.get(fb.port, "/anon", [("Cookie", "fb_uid=ignored")])
        assert r.status == 200 and not r.get_all("Set-Cookie"), r
        seen.add(r.get("X-Firebreak-Release"))
    assert len(seen) == 1, seen


@pytest.mark.timeout_s(90)
def test_ramp_moves_users_only_from_stable_and_survives_restart(start_firebreak, tmp_path,
                                                                 fast_pair):
    """5% -> 25%: every v2 user stays on v2, users move only from v1 to v2; the
    assignment and the weights are the same after a restart; going back to 5%
    and up to 25% again after the restart gives exactly the same users."""
    cfg = relhelp.release_config(str(tmp_path), two_releases(fast_pair.addrs))
    fb = start_firebreak(None, config=cfg)
    api = relhelp.Api(fb)
    ports = dict(zip(fast_pair.ports, ("v1", "v2")))
    ids = user_ids(525, 6000)

    def run():
        return assign(fb.port, ids, cookie, ports)

    api.set_weights({"v1": 95, "v2": 5})
    at5 = run()
    assert run() == at5, "a user changed release with no weight change"
    api.set_weights({"v1": 75, "v2": 25})
    at25 = run()
    back = [u for u in ids if at5[u] == "v2" and at25[u] != "v2"]
    assert not back, "%d users on v2 at 5%% went back to v1 at 25%%: %s" % (len(back), back[:5])
    n5 = sum(1 for r in at5.values() if r == "v2")
    n25 = check_share(at25, "v2", 25)
    assert n25 > n5 > 0

    relhelp.stop(fb)
    relhelp.restart(fb)
    assert api.weights() == {"v1": 75, "v2": 25}, "weights did not survive the restart"
    after = run()
    changed = [u for u in ids if after[u] != at25[u]]
    assert not changed, "%d users changed release across a restart: %s" \
        % (len(changed), changed[:5])
    api.set_weights({"v1": 95, "v2": 5})
    assert run() == at5, "after the restart, 5% is not the same set of users as before"
    api.set_weights({"v1": 75, "v2": 25})
    assert run() == at25, "after the restart, 25% is not the same set of users as before"


COOKIE_RE = re.compile(r"^fb_uid=([^;]+)(;.*)$")


def test_cookie_issued_when_absent_and_keeps_user(start_firebreak, tmp_path, upstream,
                                                  upstream2):
    cfg = relhelp.release_config(str(tmp_path), two_releases([upstream.addr, upstream2.addr]))
    fb = start_firebreak(None, config=cfg)
    relhelp.Api(fb).set_weights({"v1": 50, "v2": 50})
    by_port = {upstream.port: "v1", upstream2.port: "v2"}
    seen_releases = set()
    values = set()
    for _ in range(30):
        r = fbproc.get(fb.port, "/first")
        assert r.status == 200
        set_cookie = r.get_all("Set-Cookie")
        assert len(set_cookie) == 1, "want one Set-Cookie, got %r" % set_cookie
        m = COOKIE_RE.match(set_cookie[0])
        assert m, "Set-Cookie %r does not set fb_uid" % set_cookie[0]
        value = m.group(1)
        attrs = [a.strip() for a in m.group(2).split(";") if a.strip()]
        names = {a.split("=", 1)[0].lower(): a for a in attrs}
        assert "httponly" in names, set_cookie
        assert names.get("samesite", "").lower() == "samesite=lax", set_cookie
        max_age = names.get("max-age", "max-age=").split("=", 1)[1]
        assert max_age.isdigit() and int(max_age) > 0, set_cookie
        assert value not in values, "the same cookie value was issued twice"
        values.add(value)
        first = r.get("X-Firebreak-Release")
        assert first == by_port[r.json()["upstream_port"]]
        seen_releases.add(first)
        # Reusing the cookie keeps the user where the first answer put them,
        # and no new cookie is issued.
        with fbproc.RawConn(fb.port) as c:
            for i in range(5):
                c.send(fbproc.build_request("GET", "/again/%d" % i,
                                            [("Host", "app.test"),
                                             ("Cookie", "theme=dark; fb_uid=" + value)]))
                r2 = c.read_response()
                assert r2.status == 200
                assert r2.get("X-Firebreak-Release") == first, \
                    "cookie %s: first %s, then %s" % (value, first, r2.get("X-Firebreak-Release"))
                assert by_port[r2.json()["upstream_port"]] == first
                assert not r2.get_all("Set-Cookie"), "a cookie was sent, yet a new one was set"
    # 30 fresh users at 50/50 all landing on one release has probability 2^-29.
    assert seen_releases == {"v1", "v2"}


def test_pin_only_where_allowed(start_firebreak, tmp_path, upstream, upstream2):
    rels = two_releases([upstream.addr, upstream2.addr])
    cfg = relhelp.release_config(
        str(tmp_path), rels, allow_pin=True,
        extra_services=[relhelp.service_entry("nopin", rels, host="nopin.test")])
    cfg["services"][0]["match"]["host"] = "pin.test"
    fb = start_firebreak(None, config=cfg)
    api = relhelp.Api(fb)
    assert api.weights("app") == {"v1": 100, "v2": 0}
    assert api.weights("nopin") == {"v1": 100, "v2": 0}
    by_port = {upstream.port: "v1", upstream2.port: "v2"}

    def ask(host, pin):
        hdrs = [("Cookie", "fb_uid=pinuser")]
        if pin is not None:
            hdrs.append(("X-Firebreak-Release", pin))
        r = fbproc.get(fb.port, "/pin", hdrs, host=host)
        assert r.status == 200, r
        return r.get("X-Firebreak-Release"), by_port[r.json()["upstream_port"]]

    for _ in range(3):
        assert ask("pin.test", "v2") == ("v2", "v2"), "pin to v2 ignored where allow_pin is true"
        assert ask("pin.test", None) == ("v1", "v1")
        assert ask("pin.test", "nosuch") == ("v1", "v1"), "an unknown pin must fall to the split"
        assert ask("nopin.test", "v2") == ("v1", "v1"), "pin honoured where allow_pin is false"
    n2 = len(upstream2.requests)
    assert n2 == 3, "v2's upstream saw %d requests; only the 3 pinned ones belong there" % n2


def test_release_header_is_firebreaks_own(start_firebreak, tmp_path):
    """An upstream's own X-Firebreak-Release (a chained gateway, a stray
    header) must not reach the client next to firebreak's: the client sees one
    value, the release that served it."""
    up = relhelp.StatusUpstream(200, headers=[("X-Firebreak-Release", "v9")]).start()
    try:
        cfg = relhelp.release_config(str(tmp_path), [{"name": "v1", "endpoints": [up.addr]}])
        fb = start_firebreak(None, config=cfg)
        r = fbproc.get(fb.port, "/own")
        assert r.status == 200
        assert r.get_all("X-Firebreak-Release") == ["v1"], r.headers
    finally:
        up.stop()
