"""The hot routes (POST /v1/decide, GET /v1/profiles/{ref}, collection's POST /v1/{type} and /v1/batch)
are answered in front of FastAPI (``fast_routes``): with the same status, headers and body as their
FastAPI routes give, and the same access-audit and event rows. Each case is asked both ways on one app
(``fast_routes.enabled`` off and on)."""

from __future__ import annotations

from typing import Any

import gzip

import pytest

from accord.api.fast_routes import FastRoutes
from accord.config import ProjectConfig
from accord.profiles import build_profiles
from accord.store import open_store
from tests.api.conftest import READ_KEY, WRITE_KEY, Api, basic, bearer
from tests.profiles.helpers import add_records, clustering

ANALYST_KEY = "test-analyst-key"
MARKETER_KEY = "test-marketer-key"
KEYS = {"ACCORD_READ_KEY": READ_KEY, "ACCORD_WRITE_KEY": WRITE_KEY, "ACCORD_ANALYST_KEY": ANALYST_KEY,
        "ACCORD_MARKETER_KEY": MARKETER_KEY}
ADA = [{"rid": "crm:c1", "given_name": "Ada", "family_name": "Lovelace", "emails": ["ada@example.com"],
        "phones": ["(212) 736-5000"], "external_ids": {"crm_contact_id": "C-1"}, "day": 0}]
DECIDE = {"offers": [{"id": "welcome", "content": {"title": "Hello"}}, {"id": "spring", "priority": 2}]}


@pytest.fixture
def api(store_url: str, make_api: Any) -> Api:
    """Ada (cus_00000001), the app on that store, with read, write, analyst and marketer keys."""
    store = open_store(store_url)
    try:
        add_records(store, ADA)
        build_profiles(store, ProjectConfig.model_validate({"store": store_url}), clustering(["crm:c1"]), "run_1")
    finally:
        store.close()
    return make_api(environ=KEYS, decisions=DECIDE)


def both_ways(api: Api, method: str, path: str, **kw: Any) -> tuple[Any, Any]:
    """The response through FastAPI's route, then through the fast route."""
    routes: FastRoutes = api.client.app.fast_routes  # type: ignore[attr-defined]
    routes.enabled = False
    try:
        slow = api.client.request(method, path, **kw)
    finally:
        routes.enabled = True
    return slow, api.client.request(method, path, **kw)


def same(slow: Any, fast: Any, *, ignore: tuple[str, ...] = ()) -> int:
    """Assert the two responses are alike (but for the body fields ``ignore``); return their status."""
    assert fast.status_code == slow.status_code
    assert fast.headers.multi_items() == slow.headers.multi_items()
    if ignore:
        a, b = slow.json(), fast.json()
        assert {k: v for k, v in b.items() if k not in ignore} == {k: v for k, v in a.items() if k not in ignore}
    else:
        assert fast.content == slow.content
    return fast.status_code


# --- POST /v1/decide ---------------------------------------------------------------------------

def test_a_decision_is_answered_alike(api: Api) -> None:
    # Two visitors: a decision counts toward the next one's frequency caps (and its explanation says so).
    slow, _ = both_ways(api, "POST", "/v1/decide", json={"customer": "anonymous_id:v1", "context": {"channel": "web"}},
                        headers=bearer(READ_KEY))
    fast = api.client.post("/v1/decide", json={"customer": "anonymous_id:v2", "context": {"channel": "web"}},
                           headers=bearer(READ_KEY))
    assert same(slow, fast, ignore=("decision_id",)) == 200
    assert [o["offer_id"] for o in fast.json()["offers"]] == ["spring", "welcome"]
    assert fast.json()["decision_id"] != slow.json()["decision_id"]


def test_a_customers_decision_is_answered_by_the_fast_route(api: Api) -> None:
    _, fast = both_ways(api, "POST", "/v1/decide", json={"customer": "email:ada@example.com"},
                        headers=bearer(READ_KEY))
    assert (fast.status_code, fast.json()["customer_id"]) == (200, "cus_00000001")
    rules = fast.json()["offers"][0]["explanation"]["rules"]
    assert rules[-1].startswith("frequency 1 of ")  # the FastAPI route's decision counted: one log, one engine


@pytest.mark.parametrize(("headers", "status", "message"), [
    ({}, 401, "missing API key: send Authorization: Bearer API_KEY"),
    (bearer("no-such-key"), 401, "unknown API key"),
    (basic(READ_KEY), 401, "this endpoint takes Authorization: Bearer API_KEY"),
    ({"Authorization": "Token x"}, 401, "Authorization header: expected 'Bearer API_KEY'"),
    (bearer(WRITE_KEY), 403, "key 'env:ACCORD_WRITE_KEY' has role 'write'; this endpoint needs one of: admin, "
                             "analyst, marketer, read, steward"),
])
def test_a_decision_refused_for_its_key_is_refused_alike(api: Api, headers: dict[str, str], status: int,
                                                         message: str) -> None:
    slow, fast = both_ways(api, "POST", "/v1/decide", json={"customer": "anonymous_id:v1"}, headers=headers)
    assert (same(slow, fast), fast.json()) == (status, {"code": "unauthorized" if status == 401 else "forbidden",
                                                        "message": message})


@pytest.mark.parametrize(("kw", "message"), [
    ({"json": {"customer": "anonymous_id:v1", "limit": 0}}, "limit: Input should be greater than or equal to 1"),
    ({"json": {"customer": "anonymous_id:v1", "context": {"chanel": "web"}}},
     "context.chanel: Extra inputs are not permitted"),
    ({"content": b"", "headers": {"Content-Type": "application/json"}}, "(request): Field required"),
    ({"content": b'{"customer": "anonymous_id:v1"}', "headers": {"Content-Type": "text/plain"}},
     "(request): expected a JSON body (Content-Type: application/json)"),
])
def test_a_body_that_breaks_the_spec_is_the_same_422(api: Api, kw: dict[str, Any], message: str) -> None:
    headers = {**bearer(MARKETER_KEY), **kw.pop("headers", {})}
    slow, fast = both_ways(api, "POST", "/v1/decide", headers=headers, **kw)
    assert (same(slow, fast), fast.json()["message"]) == (422, message)


def test_malformed_json_is_the_same_422(api: Api) -> None:
    slow, fast = both_ways(api, "POST", "/v1/decide", content=b'{"customer": ',
                           headers={**bearer(READ_KEY), "Content-Type": "application/json"})
    assert same(slow, fast) == 422 and fast.json()["message"].startswith("(request): Invalid JSON")


def test_an_unknown_customer_is_the_same_404(api: Api) -> None:
    slow, fast = both_ways(api, "POST", "/v1/decide", json={"customer": "customer_id:cus_09999999"},
                           headers=bearer(READ_KEY))
    assert (same(slow, fast), fast.json()["code"]) == (404, "not_found")


def test_a_malformed_identifier_is_the_same_400(api: Api) -> None:
    slow, fast = both_ways(api, "POST", "/v1/decide", json={"customer": "nocolon"}, headers=bearer(READ_KEY))
    assert (same(slow, fast), fast.json()["code"]) == (400, "invalid_identifier")


# --- GET /v1/profiles/{ref} --------------------------------------------------------------------

def test_a_profile_is_answered_alike(api: Api) -> None:
    api.get("/v1/profiles/customer_id:cus_00000001")  # the first read stores the profile's document
    slow, fast = both_ways(api, "GET", "/v1/profiles/email:ADA@example.com", headers=bearer(READ_KEY))
    assert same(slow, fast) == 200
    assert (fast.json()["customer_id"], fast.json()["attributes"]["given_name"]["value"]) == ("cus_00000001", "Ada")


def test_an_analyst_sees_the_same_masked_profile(api: Api) -> None:
    api.get("/v1/profiles/customer_id:cus_00000001")
    slow, fast = both_ways(api, "GET", "/v1/profiles/customer_id:cus_00000001", headers=bearer(ANALYST_KEY))
    assert same(slow, fast) == 200
    assert fast.json()["attributes"]["given_name"]["value"] != "Ada"


@pytest.mark.parametrize(("path", "headers", "status", "code"), [
    ("/v1/profiles/customer_id:cus_00000001", {}, 401, "unauthorized"),
    ("/v1/profiles/customer_id:cus_00000001", bearer(MARKETER_KEY), 403, "forbidden"),
    ("/v1/profiles/email:nobody@example.com", bearer(READ_KEY), 404, "not_found"),
    ("/v1/profiles/customer_id:cus_09999999", bearer(READ_KEY), 404, "not_found"),
    ("/v1/profiles/nocolon", bearer(READ_KEY), 400, "invalid_identifier"),
])
def test_a_profile_read_refused_is_refused_alike(api: Api, path: str, headers: dict[str, str], status: int,
                                                 code: str) -> None:
    slow, fast = both_ways(api, "GET", path, headers=headers)
    assert (same(slow, fast), fast.json()["code"]) == (status, code)


def test_both_ways_write_the_same_access_audit_row(api: Api) -> None:
    api.get("/v1/profiles/customer_id:cus_00000001")  # stores the document
    both_ways(api, "GET", "/v1/profiles/email:ada@example.com",
              headers={**bearer(READ_KEY), "X-Accord-Purpose": "support ticket 42"})
    rows = api.rows("SELECT actor, role, channel, action, customer_id, purpose, detail FROM access_log "
                    "WHERE purpose IS NOT NULL")
    assert rows == [("key:env:ACCORD_READ_KEY", "read", "api", "profile.read", "cus_00000001", "support ticket 42",
                     "get_profile")] * 2


def test_a_refused_read_writes_no_access_row(api: Api) -> None:
    api.client.get("/v1/profiles/customer_id:cus_00000001", headers=bearer(MARKETER_KEY))
    api.client.get("/v1/profiles/email:nobody@example.com", headers=bearer(READ_KEY))
    assert api.rows("SELECT COUNT(*) FROM access_log") == [(0,)]


def test_the_sub_resources_and_other_methods_stay_with_fastapi(api: Api) -> None:
    routes: FastRoutes = api.client.app.fast_routes  # type: ignore[attr-defined]
    assert routes.match("GET", "/v1/profiles/customer_id:cus_00000001") is not None
    assert routes.match("POST", "/v1/decide") is not None
    assert routes.match("POST", "/v1/identify") is not None and routes.match("POST", "/v1/batch") is not None
    for method, path in [("GET", "/v1/profiles/customer_id:cus_00000001/records"), ("GET", "/v1/profiles/"),
                         ("HEAD", "/v1/profiles/customer_id:cus_00000001"), ("GET", "/v1/decide"),
                         ("POST", "/v1/decide/"), ("GET", "/v1/profiles/customer_id:cus_00000001/"),
                         ("GET", "/v1/identify"), ("POST", "/v1/identify/"), ("POST", "/v1/unknown")]:
        assert routes.match(method, path) is None, (method, path)
    assert api.get("/v1/profiles/customer_id:cus_00000001/records").status_code == 200


# --- POST /v1/{type}, /v1/batch --------------------------------------------------------------

def _identify(message_id: str, **fields: Any) -> dict[str, Any]:
    return {"messageId": message_id, "userId": f"u-{message_id}", "traits": {"email": f"{message_id}@lovelace.org"},
            **fields}


def test_a_collected_message_is_answered_and_stored_alike(api: Api) -> None:
    routes: FastRoutes = api.client.app.fast_routes  # type: ignore[attr-defined]
    routes.enabled = False
    try:
        slow = api.client.post("/v1/identify", json=_identify("m-slow"), headers=bearer(WRITE_KEY))
    finally:
        routes.enabled = True
    fast = api.client.post("/v1/identify", json=_identify("m-fast"), headers=bearer(WRITE_KEY))
    assert (same(slow, fast), fast.json()) == (200, {"success": True})
    stored = api.rows("SELECT event_id, type, identity_type, identity_value FROM events WHERE event_id LIKE 'm-%' "
                      "ORDER BY event_id")
    assert stored == [("m-fast", "identify", "user_id", "u-m-fast"), ("m-slow", "identify", "user_id", "u-m-slow")]
    owners = api.rows("SELECT value FROM customer_identifiers WHERE id_type = 'email' AND value LIKE 'm-%' "
                      "ORDER BY value")
    assert owners == [("m-fast@lovelace.org",), ("m-slow@lovelace.org",)]  # both stitched


def test_a_batch_and_segments_basic_auth_are_answered_alike(api: Api) -> None:
    body = {"batch": [{"type": "track", "event": "Viewed", "anonymousId": "a1", "messageId": "b1"},
                      {"type": "page", "anonymousId": "a1", "messageId": "b2"}]}
    slow, fast = both_ways(api, "POST", "/v1/batch", json=body, headers=basic(WRITE_KEY))
    assert same(slow, fast) == 200
    assert api.rows("SELECT COUNT(*) FROM events WHERE event_id IN ('b1', 'b2')") == [(2,)]  # a retry: stored once
    slow, fast = both_ways(api, "POST", "/v1/track", content=gzip.compress(b'{"event": "E", "anonymousId": "a2", '
                                                                          b'"messageId": "g1"}'),
                           headers={**bearer(WRITE_KEY), "Content-Encoding": "gzip",
                                    "Content-Type": "application/json"})
    assert same(slow, fast) == 200


@pytest.mark.parametrize(("path", "kw", "status"), [
    ("/v1/identify", {"headers": {}}, 401),
    ("/v1/identify", {"headers": bearer("no-such-key")}, 401),
    ("/v1/track", {"headers": bearer(READ_KEY)}, 403),
    ("/v1/identify", {"headers": {"Authorization": "Basic !!"}}, 401),
    ("/v1/identify", {"content": b'{"userId": ', "headers": {**bearer(WRITE_KEY), "Content-Type": "application/json"}},
     400),
    ("/v1/identify", {"json": {"traits": {"email": "x@example.com"}}}, 422),  # neither userId nor anonymousId
    ("/v1/identify", {"json": {"type": "track", "userId": "u1"}}, 422),
    ("/v1/batch", {"json": {"batch": "nope"}}, 422),
    ("/v1/track", {"content": b"{}", "headers": {**bearer(WRITE_KEY), "Content-Encoding": "br",
                                                 "Content-Type": "application/json"}}, 415),
    ("/v1/track", {"json": {"event": "E", "anonymousId": "a", "properties": {"pad": "x" * 40_000}}}, 413),
    ("/v1/batch", {"json": {"batch": [{"type": "track", "event": "E", "anonymousId": "a",
                                       "properties": {"pad": "x" * 20_000}}] * 30}}, 413),
])
def test_collection_refused_is_refused_alike(api: Api, path: str, kw: dict[str, Any], status: int) -> None:
    kw.setdefault("headers", bearer(WRITE_KEY))
    slow, fast = both_ways(api, "POST", path, **kw)
    assert same(slow, fast) == status


# --- the route table itself --------------------------------------------------------------------

async def _answer(state: Any, request: Any, param: str) -> str:
    return param


def test_a_parameter_is_one_non_empty_last_segment() -> None:
    routes = FastRoutes()
    routes.add("GET", "/v1/things/{ref}", _answer)
    routes.add("POST", "/v1/act", _answer)
    found = routes.match("GET", "/v1/things/a:b c")
    assert found is not None and found[1] == "a:b c"
    assert routes.match("GET", "/v1/things/a/b") is None
    assert routes.match("GET", "/v1/things/") is None
    assert routes.match("GET", "/v1/thingsx/a") is None
    assert routes.match("POST", "/v1/act") is not None and routes.match("POST", "/v1/act/x") is None


def test_only_a_last_segment_may_be_a_parameter() -> None:
    with pytest.raises(ValueError, match="only a last segment"):
        FastRoutes().add("GET", "/v1/{a}/b/{c}", _answer)


def test_a_bug_is_logged_and_answered_500_as_fastapi_answers_it(caplog: pytest.LogCaptureFixture) -> None:
    from fastapi.testclient import TestClient

    from accord.api.errors import install_error_handlers
    from accord.api.fast_routes import AccordApp

    async def boom(ref: str) -> Any:
        raise RuntimeError("a bug")

    async def fast_boom(state: Any, request: Any, ref: str) -> Any:
        return await boom(ref)

    app = AccordApp()
    install_error_handlers(app)
    app.get("/v1/things/{ref}")(boom)
    app.fast_routes.add("GET", "/v1/things/{ref}", fast_boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        app.fast_routes.enabled = False
        slow = client.get("/v1/things/x")
        app.fast_routes.enabled = True
        fast = client.get("/v1/things/x")
    assert same(slow, fast) == 500 and fast.json()["code"] == "internal_error"
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "unhandled error on GET /v1/things/x"] * 2
