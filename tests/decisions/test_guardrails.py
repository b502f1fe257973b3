"""Guardrails hold under every policy: consent, validity, channels, stock, purchases, frequency caps."""

from __future__ import annotations

import pytest

from accord.decisions.offers import set_stock
from tests.decisions.helpers import add_customer, add_purchase, at, offered, request

POLICIES = ["rules", "hybrid", "epsilon_greedy", "thompson"]


def section(policy: str = "rules", **extra: object) -> dict[str, object]:
    return {"policy": policy, "max_offers": 10, "exploration": {"epsilon": 0.5}, **extra}


@pytest.mark.parametrize("policy", POLICIES)
def test_an_offer_outside_its_validity_window_is_not_offered(store, engine_for, policy):
    engine = engine_for(section(policy, offers=[
        {"id": "past", "valid_to": "2026-05-01T00:00:00"},
        {"id": "future", "valid_from": "2026-07-01T00:00:00"},
        {"id": "now", "valid_from": "2026-05-01T00:00:00", "valid_to": "2026-07-01T00:00:00"}]))
    assert offered(engine.decide(store, request())) == ["now"]


@pytest.mark.parametrize("policy", POLICIES)
def test_an_offer_for_other_channels_is_not_offered(store, engine_for, policy):
    engine = engine_for(section(policy, offers=[{"id": "mail", "channels": ["email"]}, {"id": "any"}]))
    assert offered(engine.decide(store, request(channel="web"))) == ["any"]


@pytest.mark.parametrize("policy", POLICIES)
def test_an_out_of_stock_offer_is_not_offered_and_untracked_stock_is(store, engine_for, policy):
    engine = engine_for(section(policy, offers=[{"id": "gone", "inventory": "sku_gone"},
                                                {"id": "left", "inventory": "sku_left"},
                                                {"id": "untracked", "inventory": "sku_unknown"}]))
    set_stock(store, "sku_gone", 0)
    set_stock(store, "sku_left", 4)
    assert sorted(offered(engine.decide(store, request()))) == ["left", "untracked"]


@pytest.mark.parametrize("policy", POLICIES)
def test_a_product_bought_within_the_window_is_not_offered_again(store, engine_for, policy):
    add_customer(store, "cus_1", identifiers={"user_id": "u1"})
    add_purchase(store, "u1", "p_recent", at(3), "e1")
    add_purchase(store, "u1", "p_old", at(45), "e2")
    engine = engine_for(section(policy, guardrails={"already_bought_days": 30},
                                offers=[{"id": "recent", "product_id": "p_recent"},
                                        {"id": "old", "product_id": "p_old"}]))
    assert offered(engine.decide(store, request())) == ["old"]


@pytest.mark.parametrize("policy", POLICIES)
def test_the_same_offer_is_given_at_most_max_times_in_the_cap_window(store, engine_for, policy):
    engine = engine_for(section(policy, guardrails={"frequency_cap": {"max": 2, "days": 7}}, offers=[{"id": "a"}]))
    first, second, third = (offered(engine.decide(store, request())) for _ in range(3))
    assert (first, second, third) == (["a"], ["a"], [])


def test_decisions_older_than_the_cap_window_do_not_count(store, engine_for):
    old = engine_for(section(offers=[{"id": "a", "frequency_cap": {"max": 1, "days": 7}}]), now=at(8))
    old.decide(store, request())
    engine = engine_for(section(offers=[{"id": "a", "frequency_cap": {"max": 1, "days": 7}}]))
    assert offered(engine.decide(store, request())) == ["a"]


def test_a_decision_not_yet_written_counts_toward_the_cap(store, engine_for):
    engine = engine_for(section(offers=[{"id": "a", "frequency_cap": {"max": 1, "days": 7}}]))
    engine.decide(store, request(), write=False)
    assert offered(engine.decide(store, request(), write=False)) == []


@pytest.mark.parametrize("status", ["denied", "withdrawn"])
def test_without_personalization_consent_no_profile_data_is_used(store, engine_for, status):
    add_customer(store, "cus_1", traits={"orders_90d": 5}, consent={"personalization": status})
    engine = engine_for(section("hybrid", offers=[{"id": "loyal", "eligibility": "orders_90d >= 2"},
                                                  {"id": "generic"}]))
    decision = engine.decide(store, request())
    assert (decision.personalized, decision.policy, decision.features, offered(decision)) == (
        False, "rules", {"traits": {}}, ["generic"])


def test_consent_required_means_no_personalization_until_granted(store, engine_for):
    add_customer(store, "cus_1", traits={"orders_90d": 5})
    add_customer(store, "cus_2", traits={"orders_90d": 5}, consent={"personalization": "granted"})
    engine = engine_for(section(guardrails={"consent_required": True}, offers=[{"id": "a"}]))
    assert [engine.decide(store, request(c)).personalized for c in ("cus_1", "cus_2")] == [False, True]


def test_an_offer_needing_a_consent_purpose_is_offered_only_when_granted(store, engine_for):
    add_customer(store, "cus_1", consent={"email_marketing": "granted"})
    add_customer(store, "cus_2", consent={"email_marketing": "withdrawn"})
    engine = engine_for(section(offers=[{"id": "mail", "requires_consent": ["email_marketing"]}, {"id": "any"}]))
    assert [sorted(offered(engine.decide(store, request(c)))) for c in ("cus_1", "cus_2", None)] == [
        ["any", "mail"], ["any"], ["any"]]


def test_eligibility_is_a_segment_condition_on_the_profile(store, engine_for):
    add_customer(store, "cus_1", traits={"orders_90d": 3})
    add_customer(store, "cus_2", traits={"orders_90d": 1})
    engine = engine_for(section(offers=[{"id": "loyal", "eligibility": "orders_90d >= 2", "priority": 5},
                                        {"id": "generic"}]))
    first = engine.decide(store, request("cus_1"))
    assert [offered(first), offered(engine.decide(store, request("cus_2")))] == [["loyal", "generic"], ["generic"]]
    assert "eligibility: orders_90d >= 2" in first.offers[0].explanation["rules"]


def test_an_anonymous_visitor_gets_only_offers_without_eligibility(store, engine_for):
    engine = engine_for(section(offers=[{"id": "loyal", "eligibility": "orders_90d >= 2"}, {"id": "generic"}]))
    decision = engine.decide(store, request(None))
    assert (decision.unit, decision.customer_id, offered(decision)) == ("anonymous_id:anon_1", None, ["generic"])


def test_sensitive_traits_are_never_decision_features(store, engine_for):
    add_customer(store, "cus_1", traits={"orders_90d": 3, "gender": 1, "Age": 40, "ltv": 120.5, "segment": "vip"},
                 consent={"personalization": "granted"})
    engine = engine_for(section(guardrails={"sensitive_attributes": ["gender", "age"]}, offers=[{"id": "a"}]))
    assert engine.decide(store, request()).features == {"traits": {"orders_90d": 3.0, "ltv": 120.5}}


def test_explanations_list_the_rules_each_offer_passed(store, engine_for):
    set_stock(store, "sku", 7)
    engine = engine_for(section(offers=[{"id": "a", "inventory": "sku", "channels": ["web"]}]))
    rules = engine.decide(store, request(channel="web")).offers[0].explanation["rules"]
    assert rules == ["channel web", "in stock: 7 of sku", "frequency 0 of 3 in 7 days"]


def test_eligibility_may_count_the_customers_events(store, engine_for):
    add_customer(store, "cus_1", identifiers={"user_id": "u1"})
    add_customer(store, "cus_2", identifiers={"user_id": "u2"})
    add_purchase(store, "u1", "p1", at(2), "e1")
    engine = engine_for(section(offers=[{"id": "buyer", "eligibility": "count(event = 'Order Completed', "
                                                                     "within = '7d') >= 1"}]))
    assert [offered(engine.decide(store, request(c))) for c in ("cus_1", "cus_2")] == [["buyer"], []]


def test_a_purchase_counts_through_any_identifier_of_the_customer(store, engine_for):
    add_customer(store, "cus_1", identifiers={"email": "ada@example.com", "anonymous_id": "a-1"})
    store.execute(store.type_sql(
        "INSERT INTO events (event_id, source, type, event, ts, received_at, identity_type, identity_value, "
        "anonymous_id, properties, run_id) VALUES (?, 'shop', 'track', 'Order Completed', ?, ?, ?, ?, ?, "
        "CAST(? AS ${JSON}), 'test')"),
        ("e1", at(1), at(1), "email", "Ada@Example.com", None, '{"product_id": "p_mail"}'))
    store.execute(store.type_sql(
        "INSERT INTO events (event_id, source, type, event, ts, received_at, identity_type, identity_value, "
        "anonymous_id, properties, run_id) VALUES (?, 'shop', 'track', 'Order Completed', ?, ?, ?, ?, ?, "
        "CAST(? AS ${JSON}), 'test')"),
        ("e2", at(1), at(1), None, None, "a-1", '{"products": [{"product_id": "p_anon"}]}'))
    engine = engine_for(section(offers=[{"id": p, "product_id": p} for p in ("p_mail", "p_anon", "p_other")]))
    assert offered(engine.decide(store, request())) == ["p_other"]
