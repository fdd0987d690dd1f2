"""Bearer tokens on /api/v1: the admin token file, no or unknown token (401),
roles (a viewer reads but may not act: 403), all with the JSON error body."""

import os
import stat

import pytest

import relhelp
from relhelp import Api


def two_releases(a1, a2):
    return [{"name": "v1", "endpoints": [a1]}, {"name": "v2", "endpoints": [a2]}]


@pytest.fixture
def fb2(start_firebreak, tmp_path, upstream, upstream2):
    cfg = relhelp.release_config(str(tmp_path), two_releases(upstream.addr, upstream2.addr))
    return start_firebreak(None, config=cfg)


def assert_error(r, status, name):
    assert r.status == status, "want %d, got %r" % (status, r)
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    assert r.doc and r.doc.get("error") == name, r
    assert isinstance(r.doc.get("message"), str) and r.doc["message"], r


CALLS = [
    ("GET", "services", None),
    ("GET", "services/app", None),
    ("PUT", "services/app/weights", {"weights": {"v1": 50, "v2": 50}}),
    ("POST", "services/app/rollback", {"reason": "x"}),
    ("POST", "services/app/releases", {"name": "v9", "endpoints": ["127.0.0.1:9"]}),
    ("DELETE", "services/app/releases/v2", None),
    ("GET", "events", None),
    ("GET", "tokens", None),
    ("POST", "tokens", {"name": "x", "role": "admin"}),
]


def test_token_file_is_private_and_works(fb2):
    path = os.path.join(relhelp.state_dir(fb2), "admin.token")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600, "admin.token has mode %o, want 600" % mode
    token = relhelp.admin_token(fb2)
    assert len(token) >= 20
    r = Api(fb2, token).get("services/app")
    assert r.status == 200 and r.doc["name"] == "app"
    # printed once, at first start
    with open(fb2.stdout_path) as f:
        assert f.read().count(token) == 1


def test_no_token_is_401_everywhere_and_changes_nothing(fb2):
    anon = Api(fb2, None)
    for method, path, body in CALLS:
        r = anon.call(method, path, body)
        assert_error(r, 401, "unauthorized")
        assert r.headers.get("www-authenticate", "").lower().startswith("bearer"), r.headers
    admin = Api(fb2)
    assert admin.weights() == {"v1": 100, "v2": 0}
    assert not [e for e in admin.events() if e["type"] in ("rollback", "weights_changed",
                                                           "release_added", "token_created")]


@pytest.mark.parametrize("header", [
    "Bearer fbt_0000000000000000000000000000000000000000",
    "Bearer ",
    "Basic YWRtaW46YWRtaW4=",
    "bearer-but-not-really",
])
def test_unknown_or_malformed_token_is_401(fb2, header):
    r = Api(fb2, None).call("GET", "services", headers={"Authorization": header})
    assert_error(r, 401, "unauthorized")


def test_admin_token_with_one_byte_changed_is_401(fb2):
    token = relhelp.admin_token(fb2)
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert_error(Api(fb2, wrong).get("services"), 401, "unauthorized")
    assert_error(Api(fb2, token + "x").get("services"), 401, "unauthorized")


def test_viewer_reads_but_may_not_act(fb2):
    admin = Api(fb2)
    admin.set_weights({"v1": 90, "v2": 10})
    r = admin.post("tokens", {"name": "dash", "role": "viewer"})
    assert r.status == 201, r
    assert r.doc["name"] == "dash" and r.doc["role"] == "viewer"
    viewer = admin.with_token(r.doc["token"])

    assert viewer.get("services").status == 200
    assert viewer.get("services/app").status == 200
    assert viewer.get("events").status == 200
    assert_error(viewer.post("services/app/rollback", {"reason": "viewer"}), 403, "forbidden")
    assert_error(viewer.put("services/app/weights", {"weights": {"v1": 100}}), 403, "forbidden")
    assert_error(viewer.post("services/app/releases", {"name": "v9", "endpoints":
                                                       ["127.0.0.1:9"]}), 403, "forbidden")
    assert_error(viewer.post("tokens", {"name": "mine", "role": "admin"}), 403, "forbidden")
    assert_error(viewer.get("tokens"), 403, "forbidden")
    # nothing happened
    assert admin.weights() == {"v1": 90, "v2": 10}, "a viewer's call changed the weights"
    assert not relhelp.events_of(admin, "rollback")
    names = [t["name"] for t in admin.get("tokens").doc["tokens"]]
    assert sorted(names) == ["admin", "dash"], names


def test_responder_may_roll_back_but_not_create_tokens(fb2):
    admin = Api(fb2)
    admin.set_weights({"v1": 90, "v2": 10})
    responder = admin.with_token(admin.create_token("oncall", "responder"))
    assert_error(responder.post("tokens", {"name": "x", "role": "viewer"}), 403, "forbidden")
    r = responder.post("services/app/rollback", {"reason": "paged"})
    assert r.status == 200 and r.doc["weights"] == {"v1": 100, "v2": 0}, r
    ev = relhelp.wait_for(lambda: relhelp.events_of(admin, "rollback"), timeout=5,
                          what="the rollback event")
    assert ev[0]["actor"] == "oncall", ev


def test_token_listing_hides_secrets_and_tokens_survive_restart(fb2):
    admin = Api(fb2)
    r = admin.post("tokens", {"name": "ci", "role": "viewer"})
    assert r.status == 201
    secret = r.doc["token"]
    listing = admin.get("tokens")
    assert listing.status == 200
    assert secret not in listing.raw.decode()
    assert relhelp.admin_token(fb2) not in listing.raw.decode()
    assert_error(admin.post("tokens", {"name": "ci2", "role": "root"}), 400, "invalid")
    relhelp.stop(fb2)
    relhelp.restart(fb2)
    assert admin.with_token(secret).get("services").status == 200
    assert_error(admin.with_token(secret).post("services/app/rollback"), 403, "forbidden")
    with open(fb2.stdout_path) as f:
        assert f.read().count(relhelp.admin_token(fb2)) == 1, \
            "the admin token was printed again on a later start"
