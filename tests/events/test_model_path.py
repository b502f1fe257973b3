"""The model path of stitching: a new identity with person fields goes to identity's incremental resolution."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from accord.events import Signal, StitchRules, stitch_signals
from accord.events.model import Placed, identify_record
from accord.identity.settings import IdentitySettings
from accord.store.backend import Store

T0 = datetime(2026, 1, 1)
RULES = StitchRules.from_settings(IdentitySettings(), "US")


def _existing_customer(store: Store) -> str:
    store.execute("UPDATE profile_counters SET last_value = 1 WHERE name = 'customer'")
    store.execute("INSERT INTO customers (customer_id, seq, status, created_at, created_by) "
                  "VALUES ('cus_00000001', 1, 'active', ?, 'run_1')", (T0,))
    return "cus_00000001"


def test_identify_record_maps_segment_traits_to_canonical_fields() -> None:
    traits = {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@lovelace.org", "phone": "+44 20 7946 0000",
              "birthday": "1815-12-10", "company": {"name": "Analytical Engines"},
              "address": {"street": "12 St James's Square", "city": "London", "postalCode": "SW1Y 4JH",
                          "country": "GB"}, "plan": "pro"}
    assert identify_record("u1", traits, "u1") == {
        "source": "api", "record_key": "u1", "given_name": "Ada", "family_name": "Lovelace",
        "emails": "ada@lovelace.org", "phones": "+44 20 7946 0000", "date_of_birth": "1815-12-10",
        "company": "Analytical Engines", "street": "12 St James's Square", "city": "London", "postcode": "SW1Y 4JH",
        "country": "GB", "external_ids": {"user_id": "u1"}}


def test_model_match_places_a_new_identity_on_the_customer_it_names(store: Store) -> None:
    cid = _existing_customer(store)
    asked: list[dict[str, Any]] = []

    def model(s: Store, record: dict[str, Any]) -> Placed | None:
        asked.append(record)
        return Placed(cid)

    signal = Signal("m1", "identify", user_id="u1", traits={"email": "ada@lovelace.org", "firstName": "Ada"})
    with store.transaction():
        [result] = stitch_signals(store, RULES, [signal], T0, model)
    assert (result.customer_id, result.outcome) == (cid, "model")
    assert [(r["record_key"], r["emails"]) for r in asked] == [("u1", "ada@lovelace.org")]
    assert store.fetchall("SELECT id_type, value, customer_id FROM customer_identifiers ORDER BY id_type") == [
        ("email", "ada@lovelace.org", cid), ("user_id", "u1", cid)]


def test_model_without_an_answer_leaves_a_new_customer(store: Store) -> None:
    _existing_customer(store)
    signal = Signal("m1", "identify", user_id="u1", traits={"email": "ada@lovelace.org"})
    with store.transaction():
        [result] = stitch_signals(store, RULES, [signal], T0, lambda s, r: None)
    assert (result.customer_id, result.outcome) == ("cus_00000002", "created")


def test_model_is_not_asked_when_the_rules_decide(store: Store) -> None:
    cid = _existing_customer(store)
    store.execute("INSERT INTO customer_identifiers (id_type, value, customer_id, origin) "
                  "VALUES ('user_id', 'u1', ?, 'golden')", (cid,))

    def model(s: Store, record: dict[str, Any]) -> Placed | None:
        raise AssertionError("the model was asked")

    with store.transaction():
        [result] = stitch_signals(store, RULES, [Signal("m1", "identify", user_id="u1",
                                                        traits={"email": "ada@lovelace.org"})], T0, model)
    assert (result.customer_id, result.outcome) == (cid, "matched")


def test_model_is_not_asked_about_an_identify_without_person_fields(store: Store) -> None:
    def model(s: Store, record: dict[str, Any]) -> Placed | None:
        raise AssertionError("the model was asked")

    with store.transaction():
        [result] = stitch_signals(store, RULES, [Signal("m1", "identify", user_id="u1", traits={"plan": "pro"})],
                                  T0, model)
    assert result.outcome == "created"


def test_a_customer_the_model_created_gets_the_message_identifiers_without_a_lookup(store: Store) -> None:
    cid = _existing_customer(store)  # stands for the customer the model path made for the record
    looked = []
    real = store.fetchall

    def fetchall(sql, params=()):
        looked.append(sql)
        return real(sql, params)

    signal = Signal("m1", "identify", user_id="u1", traits={"email": "ada@lovelace.org", "firstName": "Ada"})
    with store.transaction():
        store.fetchall = fetchall  # type: ignore[method-assign]
        try:
            [result] = stitch_signals(store, RULES, [signal], T0, lambda s, r: Placed(cid, created=True))
        finally:
            del store.fetchall
    assert (result.customer_id, result.outcome) == (cid, "model")
    assert len([q for q in looked if "FROM customer_identifiers" in q]) == 1  # the message's lookup only
    assert store.fetchall("SELECT id_type, value, customer_id FROM customer_identifiers ORDER BY id_type") == [
        ("email", "ada@lovelace.org", cid), ("user_id", "u1", cid)]
