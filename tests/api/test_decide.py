"""The decision API: POST /v1/decide, outcomes joined to decisions, offers through the API, roles."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from accord.api import create_app
from accord.config import ProjectConfig
from tests.api.conftest import KEYS_ENV, READ_KEY, WRITE_KEY, bearer

MARKETER_KEY = "test-marketer-key"
OFFERS = [{"id": "spring", "priority": 5, "content": {"title": "Spring sale"}, "channels": ["web"]},
          {"id": "loyal", "priority": 9, "eligibility": "orders_90d >= 2"},
          {"id": "welcome", "priority": 1}]


@pytest.fixture
def client(store_url: str) -> Iterator[TestClient]:
    cfg = ProjectConfig.model_validate({"store": store_url, "decisions": {"policy": "hybrid", "offers": OFFERS}})
    with TestClient(create_app(cfg, environ={**KEYS_ENV, "ACCORD_MARKETER_KEY": MARKETER_KEY})) as c:
        c.app.state.store_worker  # noqa: B018 - started
        yield c


def rows(client: TestClient, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    worker = client.app.state.store_worker  # type: ignore[attr-defined]
    return client.portal.call(worker.call, lambda store: store.fetchall(sql, params))  # type: ignore[union-attr]


def add_customer(client: TestClient, customer_id: str, email: str, orders: float) -> None:
    def run(store: Any) -> None:
        store.execute("INSERT INTO customers (customer_id, seq, status, created_at, created_by) "
                      "VALUES (?, 1, 'active', now(), 'test')", (customer_id,))
        store.execute(store.type_sql(
            "INSERT INTO golden_multi (customer_id, attribute, value, sources, records, source, record_key, rule) "
            "VALUES (?, 'emails', ?, CAST('[\"crm\"]' AS ${JSON}), 1, 'crm', 'r1', 'test')"), (customer_id, email))
        store.execute("INSERT INTO customer_traits (customer_id, name, value_num, computed_at) "
                      "VALUES (?, 'orders_90d', ?, now())", (customer_id, orders))

    client.portal.call(client.app.state.store_worker.call, run)  # type: ignore[attr-defined]


def decide(client: TestClient, customer: str, key: str = READ_KEY, **context: Any) -> Any:
    return client.post("/v1/decide", json={"customer": customer, "context": context}, headers=bearer(key))


def test_decide_answers_ranked_offers_with_score_policy_propensity_and_explanation(client):
    r = decide(client, "anonymous_id:visitor-1", channel="web", placement="home", device="mobile")
    assert r.status_code == 200
    body = r.json()
    assert body["decision_id"].startswith("dec_") and body["customer_id"] is None
    assert [o["offer_id"] for o in body["offers"]] == ["spring", "welcome"]
    first = body["offers"][0]
    assert (first["score"], first["policy"], first["propensity"], first["content"]) == (
        5.0, "rules", 1.0, {"title": "Spring sale"})
    assert first["explanation"] == {"rules": ["channel web", "frequency 0 of 3 in 7 days"], "features": [],
                                    "exploration": False}


def test_a_customer_is_found_by_any_identifier_and_gets_eligible_offers(client):
    add_customer(client, "cus_00000001", "ada@example.com", 4)
    body = decide(client, "email:Ada@Example.com", channel="app").json()
    assert (body["customer_id"], [o["offer_id"] for o in body["offers"]]) == ("cus_00000001", ["loyal", "welcome"])


def test_an_unknown_identifier_is_a_404_and_a_malformed_one_a_400(client):
    assert decide(client, "email:nobody@example.com").status_code == 404
    assert decide(client, "no-colon").status_code == 400


def test_decisions_are_logged_with_their_propensities(client):
    body = decide(client, "anonymous_id:v2", channel="web").json()
    client.__exit__(None, None, None)  # shutdown writes what is pending
    client.__enter__()
    logged = rows(client, "SELECT offer_id, position, propensity, explored FROM decision_offers WHERE decision_id = ? "
                          "ORDER BY position", (body["decision_id"],))
    assert logged == [("spring", 0, 1.0, False), ("welcome", 1, 1.0, False)]


def test_an_outcome_is_joined_to_its_decision(client):
    body = decide(client, "anonymous_id:v3", channel="web").json()
    r = client.post(f"/v1/decisions/{body['decision_id']}/outcome",
                    json={"offer_id": "spring", "clicked": True, "revenue": 12.5}, headers=bearer(WRITE_KEY))
    assert r.status_code == 201
    got = client.get(f"/v1/decisions/{body['decision_id']}", headers=bearer(READ_KEY)).json()
    assert got["offers"][0]["outcome"] == {"shown": True, "clicked": True, "converted": False, "revenue": 12.5}
    assert got["offers"][1]["outcome"] is None


def test_an_outcome_for_an_unknown_decision_or_offer_is_a_404(client):
    body = decide(client, "anonymous_id:v4", channel="web").json()
    missing = client.post("/v1/decisions/dec_nope/outcome", json={"clicked": True}, headers=bearer(WRITE_KEY))
    wrong = client.post(f"/v1/decisions/{body['decision_id']}/outcome", json={"offer_id": "loyal", "clicked": True},
                        headers=bearer(WRITE_KEY))
    assert (missing.status_code, wrong.status_code) == (404, 404)
    assert wrong.json()["message"] == (f"offer_id 'loyal' was not in decision {body['decision_id']!r}; "
                                       "it offered spring, welcome")


def test_offers_can_be_created_through_the_api_and_are_decided_with(client):
    r = client.post("/v1/offers", json={"id": "flash", "priority": 20, "inventory": "sku-9"}, headers=bearer(MARKETER_KEY))
    assert r.status_code == 201
    assert client.put("/v1/inventory/sku-9", json={"stock": 3}, headers=bearer(MARKETER_KEY)).status_code == 200
    assert decide(client, "anonymous_id:v5").json()["offers"][0]["offer_id"] == "flash"
    assert client.put("/v1/inventory/sku-9", json={"stock": 0}, headers=bearer(MARKETER_KEY)).status_code == 200
    assert [o["offer_id"] for o in decide(client, "anonymous_id:v6").json()["offers"]] == ["welcome"]
    listed = client.get("/v1/offers", headers=bearer(READ_KEY)).json()["offers"]
    assert [(o["id"], o["origin"]) for o in listed] == [("spring", "config"), ("loyal", "config"),
                                                        ("welcome", "config"), ("flash", "api")]


def test_an_offer_with_a_bad_eligibility_condition_is_refused_with_its_column(client):
    r = client.post("/v1/offers", json={"id": "bad", "eligibility": "orders_90d >="}, headers=bearer(MARKETER_KEY))
    assert r.status_code == 422
    assert r.json()["message"].startswith("offer 'bad': eligibility: column ")


def test_an_offer_defined_in_accord_yaml_cannot_be_replaced_through_the_api(client):
    r = client.post("/v1/offers", json={"id": "spring"}, headers=bearer(MARKETER_KEY))
    assert (r.status_code, r.json()["message"]) == (
        409, "offer 'spring' is defined in accord.yaml (decisions.offers); change it there")


def test_roles_decide_needs_read_or_marketer_and_offers_need_marketer(client):
    assert decide(client, "anonymous_id:v7", key=WRITE_KEY).status_code == 403
    assert decide(client, "anonymous_id:v7", key=MARKETER_KEY).status_code == 200
    assert client.post("/v1/offers", json={"id": "x"}, headers=bearer(READ_KEY)).status_code == 403
    assert client.post("/v1/offers", json={"id": "x"}, headers=bearer(MARKETER_KEY)).status_code == 201
    assert client.post("/v1/decide", json={"customer": "anonymous_id:v8"}).status_code == 401


def test_an_unknown_customer_id_is_a_404(client):
    r = decide(client, "customer_id:cus_99999999")
    assert (r.status_code, r.json()["message"]) == (404, "no customer 'cus_99999999'; customer ids look like "
                                                         "cus_00000042")


def test_an_outcome_is_stored_only_once_its_decision_is_in_the_log(client):
    body = decide(client, "anonymous_id:v9", channel="web").json()
    r = client.post(f"/v1/decisions/{body['decision_id']}/outcome", json={"offer_id": "spring", "shown": True},
                    headers=bearer(WRITE_KEY))
    assert r.status_code == 201
    # Read at once, without waiting for the log writer: the outcome's answer waited for the decision's write.
    assert rows(client, "SELECT d.decision_id, o.outcome_id FROM decisions d JOIN decision_outcomes o "
                        "ON o.decision_id = d.decision_id WHERE d.decision_id = ?", (body["decision_id"],)) == [
        (body["decision_id"], r.json()["outcome_id"])]
