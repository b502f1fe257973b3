"""Real-time identity stitching: identify, alias and group name a customer before the response returns."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from accord.profiles._sql import reserve
from accord.profiles.ids import format_id
from accord.store.backend import Store
from tests.api.conftest import Api

T0 = datetime(2026, 1, 1)


def seed_customer(api: Api, *identifiers: tuple[str, str]) -> str:
    """A customer made by the batch pipeline, indexed under ``identifiers`` (origin 'golden')."""
    def seed(store: Store) -> str:
        seq = reserve(store, "customer", 1)
        cid = format_id(seq)
        store.execute("INSERT INTO customers (customer_id, seq, status, merged_into, created_at, created_by, "
                      "retired_at) VALUES (?, ?, 'active', NULL, ?, 'run_1', NULL)", (cid, seq, T0))
        for id_type, value in identifiers:
            store.execute("INSERT INTO customer_identifiers (id_type, value, customer_id, origin, first_seen, "
                          "last_seen) VALUES (?, ?, ?, 'golden', ?, ?)", (id_type, value, cid, T0, T0))
        return cid

    return api.run(seed)


def customer_of(api: Api, id_type: str, value: str) -> list[str]:
    return [r[0] for r in api.rows("SELECT customer_id FROM customer_identifiers WHERE id_type = ? AND value = ? "
                                   "ORDER BY customer_id", (id_type, value))]


def identify(api: Api, message_id: str, **fields: Any) -> None:
    r = api.post("/v1/identify", {"messageId": message_id, **fields})
    assert r.status_code == 200, r.text


def customers(api: Api) -> list[tuple[Any, ...]]:
    return api.rows("SELECT customer_id, status, merged_into, created_by FROM customers ORDER BY customer_id")


# --- identify ----------------------------------------------------------------------------------

def test_identified_event_is_on_the_profile_when_the_response_returns(api: Api) -> None:
    identify(api, "m1", anonymousId="a1", traits={"email": "ada@lovelace.org"})
    r = api.get("/v1/profiles/anonymous_id:a1/events")
    assert r.status_code == 200, r.text
    assert [e["event_id"] for e in r.json()["events"]] == ["m1"]


def test_new_person_gets_a_new_customer_id_with_a_created_audit_event(api: Api) -> None:
    identify(api, "m1", userId="u1", traits={"email": "ada@lovelace.org"})
    assert customers(api) == [("cus_00000001", "active", None, "api")]
    audit = api.rows("SELECT kind, customer_id, actor, CAST(evidence AS TEXT) FROM identity_audit")
    assert [a[:3] for a in audit] == [("created", "cus_00000001", "api")]
    assert json.loads(audit[0][3]) == [{"rule": "realtime:new_identity", "message_id": "m1", "type": "identify",
                                        "identifiers": ["email:ada@lovelace.org", "user_id:u1"]}]


def test_new_person_is_indexed_under_every_identifier_of_the_message(api: Api) -> None:
    identify(api, "m1", userId="u1", anonymousId="a1", traits={"email": "Ada@Lovelace.org", "phone": "(212) 736-5000"})
    assert api.rows("SELECT id_type, value, customer_id, origin FROM customer_identifiers ORDER BY id_type") == [
        ("anonymous_id", "a1", "cus_00000001", "realtime"), ("email", "ada@lovelace.org", "cus_00000001", "realtime"),
        ("phone", "+12127365000", "cus_00000001", "realtime"), ("user_id", "u1", "cus_00000001", "realtime")]


def test_profile_of_a_new_person_answers_by_each_identifier(api: Api) -> None:
    identify(api, "m1", userId="u1", anonymousId="a1", traits={"email": "ada@lovelace.org", "phone": "+12127365000"})
    for ref in ("user_id:u1", "anonymous_id:a1", "email:ADA@lovelace.org", "phone:(212) 736-5000"):
        r = api.get(f"/v1/profiles/{ref}")
        assert (ref, r.status_code, r.json()["customer_id"]) == (ref, 200, "cus_00000001")


def test_same_email_from_another_device_stitches_to_the_same_customer(api: Api) -> None:
    identify(api, "m1", anonymousId="a1", traits={"email": "ada@lovelace.org"})
    identify(api, "m2", anonymousId="a2", traits={"email": "ADA@lovelace.org "})
    assert len(customers(api)) == 1
    assert customer_of(api, "anonymous_id", "a2") == ["cus_00000001"]


def test_gmail_addresses_match_in_canonical_form(api: Api) -> None:
    identify(api, "m1", userId="u1", traits={"email": "Ada.Lovelace+news@gmail.com"})
    identify(api, "m2", anonymousId="a2", traits={"email": "adalovelace@googlemail.com"})
    assert customer_of(api, "anonymous_id", "a2") == ["cus_00000001"]


def test_identify_matches_a_customer_of_the_batch_pipeline_and_indexes_the_user_id(api: Api) -> None:
    cid = seed_customer(api, ("email", "ada@lovelace.org"))
    identify(api, "m1", userId="u9", traits={"email": "ada@lovelace.org"})
    assert customer_of(api, "user_id", "u9") == [cid]
    assert [c[0] for c in customers(api)] == [cid]


def test_user_id_known_to_the_index_decides_without_traits(api: Api) -> None:
    cid = seed_customer(api, ("user_id", "u9"))
    identify(api, "m1", userId="u9", anonymousId="a7")
    assert customer_of(api, "anonymous_id", "a7") == [cid]


def test_higher_priority_identifier_decides_and_a_conflicting_one_stays_with_its_customer(api: Api) -> None:
    by_email = seed_customer(api, ("email", "ada@lovelace.org"))
    by_user = seed_customer(api, ("user_id", "u9"))
    identify(api, "m1", userId="u9", anonymousId="a1", traits={"email": "ada@lovelace.org"})
    assert customer_of(api, "anonymous_id", "a1") == [by_email]  # email: priority 10, before external ids (30)
    assert customer_of(api, "user_id", "u9") == [by_user]  # no merge from one message
    assert api.rows("SELECT status FROM customers ORDER BY customer_id") == [("active",), ("active",)]


def test_blocked_email_links_nobody(make_api: Any) -> None:
    api = make_api(identity={"blocked_values": ["info@lovelace.org"]})
    identify(api, "m1", userId="u1", traits={"email": "info@lovelace.org"})
    identify(api, "m2", userId="u2", traits={"email": "INFO@lovelace.org"})
    assert [c[0] for c in customers(api)] == ["cus_00000001", "cus_00000002"]
    assert customer_of(api, "email", "info@lovelace.org") == []


def test_placeholder_email_links_nobody(api: Api) -> None:
    identify(api, "m1", userId="u1", traits={"email": "test@test.com"})
    identify(api, "m2", userId="u2", traits={"email": "test@test.com"})
    assert len(customers(api)) == 2


def test_identifier_shared_by_more_people_than_the_limit_decides_nothing(api: Api) -> None:
    for _ in range(4):  # shared_identifier_limit is 3
        seed_customer(api, ("phone", "+12127365000"))
    identify(api, "m1", userId="u1", traits={"phone": "+1 212 736 5000"})
    assert customer_of(api, "user_id", "u1") == ["cus_00000005"]


def test_customer_at_its_email_limit_takes_no_more_emails(api: Api) -> None:
    cid = seed_customer(api, ("user_id", "u1"), *[("email", f"e{i}@lovelace.org") for i in range(5)])
    identify(api, "m1", userId="u1", traits={"email": "sixth@lovelace.org"})
    assert customer_of(api, "email", "sixth@lovelace.org") == []
    assert customer_of(api, "user_id", "u1") == [cid]


def test_anonymous_only_identify_creates_nobody(api: Api) -> None:
    identify(api, "m1", anonymousId="a1", traits={"plan": "free"})
    assert customers(api) == []
    assert api.rows("SELECT processed_at IS NOT NULL FROM identity_signals") == [(True,)]


def test_anonymous_id_of_a_known_customer_stitches_a_new_email(api: Api) -> None:
    identify(api, "m1", anonymousId="a1", traits={"email": "ada@lovelace.org"})
    identify(api, "m2", anonymousId="a1", traits={"email": "ada@engines.co.uk"})
    assert customer_of(api, "email", "ada@engines.co.uk") == ["cus_00000001"]


def test_shared_browser_does_not_join_two_user_ids(api: Api) -> None:
    identify(api, "m1", userId="u1", anonymousId="a1")
    identify(api, "m2", userId="u2", anonymousId="a1")
    assert (customer_of(api, "user_id", "u1"), customer_of(api, "user_id", "u2")) == (
        ["cus_00000001"], ["cus_00000002"])


def test_retried_identify_is_stitched_once(api: Api) -> None:
    identify(api, "m1", userId="u1", traits={"email": "ada@lovelace.org"})
    identify(api, "m1", userId="u1", traits={"email": "ada@lovelace.org"})
    assert (len(customers(api)), api.rows("SELECT COUNT(*) FROM identity_audit")) == (1, [(1,)])


def test_batch_stitches_its_messages_in_order(api: Api) -> None:
    r = api.post("/v1/batch", {"batch": [
        {"type": "identify", "messageId": "m1", "anonymousId": "a1", "traits": {"email": "ada@lovelace.org"}},
        {"type": "identify", "messageId": "m2", "userId": "u1", "traits": {"email": "ada@lovelace.org"}},
        {"type": "track", "messageId": "m3", "userId": "u1", "event": "Order Completed"},
    ]})
    assert r.status_code == 200
    assert (customer_of(api, "user_id", "u1"), len(customers(api))) == (["cus_00000001"], 1)
    events = api.get("/v1/profiles/anonymous_id:a1/events").json()["events"]
    assert sorted(e["event_id"] for e in events) == ["m1", "m2", "m3"]


def test_signal_left_pending_by_a_stopped_server_is_stitched_at_start(store_url: str, make_api: Any) -> None:
    from accord.store import open_store

    with open_store(store_url) as store:
        store.execute("INSERT INTO identity_signals (event_id, type, user_id, anonymous_id, traits, ts, received_at) "
                      "VALUES ('m1', 'identify', 'u1', 'a1', '{\"email\": \"ada@lovelace.org\"}', ?, ?)", (T0, T0))
    api = make_api()
    assert customer_of(api, "user_id", "u1") == ["cus_00000001"]
    assert api.rows("SELECT processed_at IS NOT NULL FROM identity_signals") == [(True,)]


# --- alias -------------------------------------------------------------------------------------

def test_alias_merges_previous_ids_customer_into_the_oldest_id(api: Api) -> None:
    identify(api, "m1", userId="u1", traits={"email": "ada@lovelace.org"})
    identify(api, "m2", userId="u2", traits={"email": "ada@engines.co.uk"})
    r = api.post("/v1/alias", {"messageId": "m3", "previousId": "u2", "userId": "u1"})
    assert r.status_code == 200
    assert customers(api) == [("cus_00000001", "active", None, "api"),
                              ("cus_00000002", "retired", "cus_00000001", "api")]
    assert api.rows("SELECT from_id, to_id FROM customer_redirects") == [("cus_00000002", "cus_00000001")]
    assert customer_of(api, "email", "ada@engines.co.uk") == ["cus_00000001"]
    merged = api.rows("SELECT customer_id, other_customer_id, actor FROM identity_audit WHERE kind = 'merged'")
    assert merged == [("cus_00000001", "cus_00000002", "api")]


def test_alias_survivor_is_the_oldest_id_whichever_side_it_is_on(api: Api) -> None:
    identify(api, "m1", userId="u1")
    identify(api, "m2", userId="u2")
    api.post("/v1/alias", {"messageId": "m3", "previousId": "u1", "userId": "u2"})
    assert api.rows("SELECT from_id, to_id FROM customer_redirects") == [("cus_00000002", "cus_00000001")]


def test_merged_id_redirects_in_the_profile_api(api: Api) -> None:
    identify(api, "m1", userId="u1")
    identify(api, "m2", userId="u2")
    api.post("/v1/alias", {"messageId": "m3", "previousId": "u2", "userId": "u1"})
    body = api.get("/v1/profiles/customer_id:cus_00000002").json()
    assert (body["customer_id"], body["redirected"], body["redirected_from"]) == (
        "cus_00000001", True, "cus_00000002")


def test_alias_with_an_unknown_previous_id_adds_it_as_an_anonymous_id(api: Api) -> None:
    identify(api, "m1", userId="u1")
    api.post("/v1/alias", {"messageId": "m2", "previousId": "visitor-7", "userId": "u1"})
    assert customer_of(api, "anonymous_id", "visitor-7") == ["cus_00000001"]


def test_alias_of_two_unknown_ids_creates_one_customer(api: Api) -> None:
    api.post("/v1/alias", {"messageId": "m1", "previousId": "visitor-7", "userId": "u1"})
    assert (customer_of(api, "anonymous_id", "visitor-7"), customer_of(api, "user_id", "u1")) == (
        ["cus_00000001"], ["cus_00000001"])


def test_alias_of_customers_with_records_writes_a_must_link_decision(api: Api) -> None:
    a = seed_customer(api, ("user_id", "u1"))
    b = seed_customer(api, ("user_id", "u2"))

    def records(store: Store) -> None:
        for cid, key in ((a, "k1"), (b, "k2")):
            store.execute("INSERT INTO record_customer (source, record_key, customer_id, assigned_at, actor) "
                          "VALUES ('crm', ?, ?, ?, 'run_1')", (key, cid, T0))

    api.run(records)
    api.post("/v1/alias", {"messageId": "m1", "previousId": "u2", "userId": "u1"})
    assert api.rows("SELECT record_a, record_b, kind FROM identity_constraints") == [("crm:k1", "crm:k2", "must_link")]
    assert api.rows("SELECT record_key, customer_id FROM record_customer ORDER BY record_key") == [
        ("k1", a), ("k2", a)]


# --- group -------------------------------------------------------------------------------------

def test_group_attaches_the_person_to_the_account_with_its_traits(api: Api) -> None:
    identify(api, "m1", userId="u1")
    api.post("/v1/group", {"messageId": "m2", "userId": "u1", "groupId": "acme",
                           "traits": {"name": "Acme Inc", "plan": "pro"}})
    rows = api.rows("SELECT account_id, name, CAST(traits AS TEXT), origin FROM accounts")
    assert [(r[0], r[1], json.loads(r[2]), r[3]) for r in rows] == [
        ("acme", "Acme Inc", {"name": "Acme Inc", "plan": "pro"}, "group")]
    assert api.rows("SELECT account_id, customer_id, origin FROM account_members") == [
        ("acme", "cus_00000001", "group")]


def test_group_traits_are_merged_with_the_accounts_earlier_traits(api: Api) -> None:
    api.post("/v1/group", {"messageId": "m1", "userId": "u1", "groupId": "acme",
                           "traits": {"name": "Acme", "plan": "free"}})
    api.post("/v1/group", {"messageId": "m2", "userId": "u1", "groupId": "acme",
                           "traits": {"plan": "pro", "employees": 50}})
    rows = api.rows("SELECT name, CAST(traits AS TEXT) FROM accounts")
    assert [(r[0], json.loads(r[1])) for r in rows] == [("Acme", {"name": "Acme", "plan": "pro", "employees": 50})]
    assert api.rows("SELECT COUNT(*) FROM account_members") == [(1,)]


def test_group_from_an_unknown_user_id_creates_the_person(api: Api) -> None:
    api.post("/v1/group", {"messageId": "m1", "userId": "u1", "groupId": "acme"})
    assert api.rows("SELECT account_id, customer_id FROM account_members") == [("acme", "cus_00000001")]
    assert customer_of(api, "user_id", "u1") == ["cus_00000001"]


def test_group_from_an_unknown_anonymous_visitor_records_the_account_only(api: Api) -> None:
    api.post("/v1/group", {"messageId": "m1", "anonymousId": "a1", "groupId": "acme"})
    assert (api.rows("SELECT account_id FROM accounts"), api.rows("SELECT COUNT(*) FROM account_members")) == (
        [("acme",)], [(0,)])


def test_profile_of_a_person_known_only_from_events_lists_the_stitched_identifiers(api: Api) -> None:
    identify(api, "m1", userId="u1", anonymousId="a1", traits={"email": "ada@lovelace.org"})
    body = api.get("/v1/profiles/user_id:u1").json()
    assert (body["customer_id"], body["identifiers"], body["records"]) == (
        "cus_00000001", {"anonymous_id": ["a1"], "email": ["ada@lovelace.org"], "user_id": ["u1"]}, [])


def test_failing_stitching_still_stores_the_events_and_leaves_the_message_pending(api: Api) -> None:
    def broken_model(store: Store, record: dict[str, Any]) -> str | None:
        raise RuntimeError("model crashed")

    api.client.app.state.store_worker.stitcher.model = broken_model  # type: ignore[attr-defined]
    r = api.post("/v1/batch", {"batch": [
        {"type": "identify", "messageId": "m1", "userId": "u1", "traits": {"email": "ada@lovelace.org"}},
        {"type": "track", "messageId": "m2", "userId": "u1", "event": "Viewed"}]})
    assert r.status_code == 200
    assert api.rows("SELECT event_id FROM events ORDER BY event_id") == [("m1",), ("m2",)]
    assert (api.rows("SELECT processed_at FROM identity_signals"), customers(api)) == ([(None,)], [])


def test_one_failing_message_does_not_keep_the_others_of_its_batch_from_being_stitched(api: Api) -> None:
    def model(store: Store, record: dict[str, Any]) -> str | None:
        if record["record_key"] == "bad":
            raise RuntimeError("model crashed")
        return None

    api.client.app.state.store_worker.stitcher.model = model  # type: ignore[attr-defined]
    api.post("/v1/batch", {"batch": [
        {"type": "identify", "messageId": "m1", "userId": "bad", "traits": {"email": "bad@lovelace.org"}},
        {"type": "identify", "messageId": "m2", "userId": "good", "traits": {"email": "good@lovelace.org"}}]})
    assert api.rows("SELECT event_id, processed_at IS NOT NULL FROM identity_signals ORDER BY event_id") == [
        ("m1", False), ("m2", True)]
    assert customer_of(api, "user_id", "good") == ["cus_00000001"]
