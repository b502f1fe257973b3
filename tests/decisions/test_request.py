"""A customer id a client sends is checked in the same read as the customer's facts."""

from __future__ import annotations

import pytest

from accord.decisions.engine import DecideRequest, UnknownCustomer
from tests.decisions.helpers import NOW, add_customer, offered


def add_active(store, customer_id: str, seq: int) -> None:
    store.execute("INSERT INTO customers (customer_id, seq, status, created_at, created_by) "
                  "VALUES (?, ?, 'active', ?, 'test')", (customer_id, seq, NOW))


def test_a_customer_id_never_given_is_refused(store, engine_for):
    engine = engine_for({"offers": [{"id": "a"}]})
    with pytest.raises(UnknownCustomer, match="no customer 'cus_404'"):
        engine.decide(store, DecideRequest("cus_404", check_customer=True))


def test_a_merged_customer_id_decides_for_the_customer_it_was_merged_into(store, engine_for):
    add_active(store, "cus_1", 1)
    add_customer(store, "cus_1", traits={"orders_90d": 4})
    store.execute("INSERT INTO customer_redirects (from_id, to_id, created_at, actor) VALUES (?, ?, ?, ?)",
                  ("cus_2", "cus_1", NOW, "test"))
    engine = engine_for({"offers": [{"id": "loyal", "eligibility": "orders_90d >= 2"}]})
    decision = engine.decide(store, DecideRequest("cus_2", check_customer=True))
    assert (decision.customer_id, decision.unit, offered(decision)) == ("cus_1", "cus_1", ["loyal"])


def test_a_known_customer_id_is_decided_for_as_it_is(store, engine_for):
    add_active(store, "cus_1", 1)
    engine = engine_for({"offers": [{"id": "a"}]})
    assert engine.decide(store, DecideRequest("cus_1", check_customer=True)).customer_id == "cus_1"


def test_a_decision_reads_the_store_in_one_query_two_on_duckdb_when_an_offer_names_a_product(store, engine_for,
                                                                                             monkeypatch):
    add_active(store, "cus_1", 1)
    add_customer(store, "cus_1", traits={"orders_90d": 4}, consent={"personalization": "granted"},
                 identifiers={"user_id": "u1"})
    engine = engine_for({"offers": [{"id": "loyal", "eligibility": "orders_90d >= 2", "inventory": "sku"},
                                    {"id": "shoes", "product_id": "p1"}]})
    engine.refresh(store)
    queries: list[str] = []
    fetchall = store.fetchall

    def counted(sql, params=()):
        queries.append(sql)
        return fetchall(sql, params)

    monkeypatch.setattr(store, "fetchall", counted)
    decision = engine.decide(store, DecideRequest("cus_1", check_customer=True), write=False)
    assert sorted(offered(decision)) == ["loyal", "shoes"]
    assert len(queries) == (2 if store.dialect == "duckdb" else 1)
