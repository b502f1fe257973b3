"""The profile API: lookup by any identifier, records, paged events, history, and its errors."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from accord.api.models import Profile, ProfileEvents, ProfileHistory, ProfileRecords
from accord.config import ProjectConfig
from accord.profiles import build_profiles
from accord.store import open_store
from tests.api.conftest import ADMIN_KEY, READ_KEY, WRITE_KEY, Api, bearer
from tests.profiles.helpers import add_records, clustering

ADA = [
    {"rid": "crm:c1", "given_name": "Ada", "family_name": "Lovelace", "emails": ["Ada@Example.com"],
     "phones": ["(212) 736-5000"], "external_ids": {"crm_contact_id": "C-1"}, "day": 0},
    {"rid": "shop:s1", "emails": ["ada@example.com"], "external_ids": {"shop_customer_id": "S-1", "loyalty_id": "Zoë-7"},
     "day": 1},
]
BOB = [{"rid": "crm:c2", "given_name": "Bob", "emails": ["bob@example.com"],
        "external_ids": {"crm_contact_id": "C-2"}, "day": 2}]
T = datetime(2024, 3, 1)
# (event_id, minutes after T, identity_type, identity_value, anonymous_id): Ada's six, then Bob's one.
EVENTS = [
    ("e1", 1, "shop_customer_id", "S-1", None),
    ("e2", 2, "shop_customer_id", "S-1", None),
    ("e3", 3, "email", "ADA@example.com", None),
    ("e4", 4, "user_id", "S-1", "anon-1"),
    ("e5", 5, "anonymous_id", "anon-1", "anon-1"),
    ("e6", 5, "crm_contact_id", "C-1", None),  # same time as e5: the event id breaks the tie
    ("b1", 6, "crm_contact_id", "C-2", None),
]


def _add_events(store: Any) -> None:
    sql = store.type_sql("INSERT INTO events (event_id, source, type, event, ts, received_at, identity_type, "
                         "identity_value, anonymous_id, revenue, properties, run_id) "
                         "VALUES (?, 'web', 'track', 'Viewed', ?, ?, ?, ?, ?, NULL, CAST(? AS ${JSON}), 'run_test')")
    with store.transaction():
        store.executemany(sql, [(e, T + timedelta(minutes=m), T + timedelta(minutes=m), t, v, a,
                                 json.dumps({"n": e})) for e, m, t, v, a in EVENTS])


@pytest.fixture
def profiles_api(store_url: str, make_api: Any) -> Api:
    """Ada (crm:c1 and shop:s1, first two customers, then merged: cus_00000002 retired into
    cus_00000001) and Bob (crm:c2, cus_00000003), with events; then the app on that store."""
    cfg = ProjectConfig.model_validate({"store": store_url})
    store = open_store(store_url)
    try:
        add_records(store, ADA + BOB)
        build_profiles(store, cfg, clustering(["crm:c1"], ["shop:s1"], ["crm:c2"]), "run_1")
        build_profiles(store, cfg, clustering(["crm:c1", "shop:s1"], ["crm:c2"]), "run_2")
        _add_events(store)
    finally:
        store.close()
    return make_api()


def get(api: Api, path: str, key: str | None = READ_KEY, **params: Any) -> Any:
    return api.client.get(path, headers=bearer(key) if key else {}, params=params)


def test_lookup_by_customer_id_answers_the_golden_profile_with_lineage(profiles_api: Api) -> None:
    r = get(profiles_api, "/v1/profiles/customer_id:cus_00000001")
    assert r.status_code == 200
    body = r.json()
    assert (body["customer_id"], body["redirected"], body["redirected_from"]) == ("cus_00000001", False, None)
    assert body["attributes"]["given_name"]["value"] == "Ada"
    assert body["attributes"]["given_name"]["record"] == "crm:c1"
    assert body["identifiers"]["email"] == ["ada@example.com"]
    assert body["identifiers"]["shop_customer_id"] == ["S-1"]
    assert [rec["record"] for rec in body["records"]] == ["crm:c1", "shop:s1"]
    assert body["merged_ids"] == ["cus_00000002"]


def test_retired_customer_id_answers_the_surviving_customer_and_says_so(profiles_api: Api) -> None:
    body = get(profiles_api, "/v1/profiles/customer_id:cus_00000002").json()
    assert (body["customer_id"], body["redirected"], body["redirected_from"]) == (
        "cus_00000001", True, "cus_00000002")


def test_every_kind_of_identifier_finds_the_customer(profiles_api: Api) -> None:
    refs = ["email:ada@example.com", "email: ADA@Example.COM ", "phone:+12127365000", "phone:(212) 736-5000",
            "crm_contact_id:C-1", "shop_customer_id:S-1", "loyalty_id:Zoë-7", "user_id:S-1", "anonymous_id:anon-1"]
    found = {ref: get(profiles_api, f"/v1/profiles/{ref}").json().get("customer_id") for ref in refs}
    assert found == dict.fromkeys(refs, "cus_00000001")


def test_an_external_id_of_another_name_does_not_match(profiles_api: Api) -> None:
    r = get(profiles_api, "/v1/profiles/shop_customer_id:C-1")
    assert (r.status_code, r.json()["code"]) == (404, "not_found")


def test_records_carry_raw_values_and_external_ids(profiles_api: Api) -> None:
    body = get(profiles_api, "/v1/profiles/email:bob@example.com/records").json()
    assert body["customer_id"] == "cus_00000003"
    assert [(r["record"], r["raw"], r["external_ids"], r["emails"]) for r in body["records"]] == [
        ("crm:c2", {"k": "c2"}, {"crm_contact_id": "C-2"}, ["bob@example.com"])]


def test_events_page_newest_first_without_overlap(profiles_api: Api) -> None:
    first = get(profiles_api, "/v1/profiles/customer_id:cus_00000001/events", limit=4).json()
    assert [e["event_id"] for e in first["events"]] == ["e6", "e5", "e4", "e3"]
    second = get(profiles_api, "/v1/profiles/customer_id:cus_00000001/events", limit=4,
                 cursor=first["next_cursor"]).json()
    assert [e["event_id"] for e in second["events"]] == ["e2", "e1"]
    assert second["next_cursor"] is None


def test_an_exact_last_page_has_no_next_cursor(profiles_api: Api) -> None:
    body = get(profiles_api, "/v1/profiles/customer_id:cus_00000003/events", limit=1).json()
    assert ([e["event_id"] for e in body["events"]], body["next_cursor"]) == (["b1"], None)


def test_events_carry_their_properties(profiles_api: Api) -> None:
    event = get(profiles_api, "/v1/profiles/customer_id:cus_00000003/events").json()["events"][0]
    assert (event["identity_type"], event["identity_value"], event["properties"]) == (
        "crm_contact_id", "C-2", {"n": "b1"})


def test_a_cursor_the_api_did_not_give_is_400(profiles_api: Api) -> None:
    r = get(profiles_api, "/v1/profiles/customer_id:cus_00000001/events", cursor="not-a-cursor")
    assert (r.status_code, r.json()["code"]) == (400, "invalid_cursor")


def test_history_lists_the_audit_of_the_customer_and_the_ids_merged_into_it(profiles_api: Api) -> None:
    body = get(profiles_api, "/v1/profiles/customer_id:cus_00000002/history").json()
    assert body["customer_id"] == "cus_00000001"
    assert [(e["kind"], e["customer_id"], e["other_customer_id"]) for e in body["events"]] == [
        ("created", "cus_00000001", None), ("created", "cus_00000002", None),
        ("merged", "cus_00000001", "cus_00000002")]


def test_admin_key_may_read_profiles(profiles_api: Api) -> None:
    assert get(profiles_api, "/v1/profiles/customer_id:cus_00000001", key=ADMIN_KEY).status_code == 200


def test_write_key_is_403(profiles_api: Api) -> None:
    r = get(profiles_api, "/v1/profiles/customer_id:cus_00000001", key=WRITE_KEY)
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")


def test_no_key_is_401(profiles_api: Api) -> None:
    r = get(profiles_api, "/v1/profiles/customer_id:cus_00000001/history", key=None)
    assert (r.status_code, r.json()["code"]) == (401, "unauthorized")


def test_unknown_identifiers_are_404_with_a_message_naming_them(profiles_api: Api) -> None:
    expected = {
        "customer_id:cus_00000099": "no customer 'cus_00000099'",
        "email:nobody@example.com": "no customer has email 'nobody@example.com'",
        "favourite_colour:blue": "unknown identifier type 'favourite_colour'",
        "anonymous_id:anon-404": "no event links it to a user_id",
    }
    for ref, message in expected.items():
        r = get(profiles_api, f"/v1/profiles/{ref}/records")
        assert (r.status_code, r.json()["code"]) == (404, "not_found"), ref
        assert message in r.json()["message"]


def test_malformed_identifier_is_400(api: Api) -> None:
    for ref in ("cus_00000001", "email:", ":x"):
        r = get(api, f"/v1/profiles/{ref}")
        assert (r.status_code, r.json()["code"]) == (400, "invalid_identifier"), ref
        assert "expected ID_TYPE:VALUE" in r.json()["message"]


def test_every_answer_conforms_to_its_declared_model(profiles_api: Api) -> None:
    ref = "/v1/profiles/customer_id:cus_00000002"
    for suffix, model in (("", Profile), ("/records", ProfileRecords), ("/events", ProfileEvents),
                          ("/history", ProfileHistory)):
        model.model_validate(get(profiles_api, ref + suffix).json())


def test_every_answered_profile_read_is_audited_once_whichever_path_answers_it(profiles_api: Api) -> None:
    refs = ["email:ada@example.com",           # no document yet: computed, then stored
            "email:ada@example.com",           # the usual case: the index names one customer with a document
            "customer_id:cus_00000001",        # by id, from the document
            "customer_id:cus_00000002",        # a retired id: the general path, redirected
            "crm_contact_id:C-2"]              # an external id name
    assert [get(profiles_api, f"/v1/profiles/{r}").status_code for r in refs] == [200] * 5
    assert get(profiles_api, "/v1/profiles/email:nobody@example.com").status_code == 404
    rows = profiles_api.rows("SELECT customer_id, action, detail FROM access_log ORDER BY accessed_at, access_id")
    assert rows == [("cus_00000001", "profile.read", "get_profile")] * 4 + [("cus_00000003", "profile.read",
                                                                            "get_profile")]
