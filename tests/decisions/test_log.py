"""The decision log holds every field of a written decision exactly, on both backends (PostgreSQL
writes a group in one statement from JSON, DuckDB from Arrow)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from accord.decisions.log import Decision, RankedOffer, read_decision, write_decisions
from accord.store import Store

AT = datetime(2024, 5, 6, 7, 8, 9, 123456)


def decision(decision_id: str, **kw: Any) -> Decision:
    fields: dict[str, Any] = {
        "unit": "cus_00000001", "customer_id": "cus_00000001", "anonymous_id": None,
        "context": {"channel": "web", "placement": "home", "device": None}, "policy": "hybrid", "model_version": 3,
        "experiment": "spring", "variant": "b", "personalized": True,
        "features": {"traits": {"orders_90d": 2.0, "rfm_monetary": 0.1 + 0.2, "name's \"quoted\"": 1e-7}},
        "candidates": ["welcome", "spring", "été"], "decided_at": AT,
        "offers": [RankedOffer("spring", 0.123456789012345, "model", 1.0, False, {}),
                   RankedOffer("welcome", None, "epsilon_greedy", 0.05, True, {})]}
    return Decision(decision_id, **{**fields, **kw})


def head(store: Store, decision_id: str) -> tuple[Any, ...]:
    row = store.fetchone("SELECT unit, customer_id, anonymous_id, channel, placement, device, policy, model_version, "
                         "experiment, variant, personalized, CAST(features AS TEXT), CAST(candidates AS TEXT), "
                         "CAST(offered AS TEXT), decided_at FROM decisions WHERE decision_id = ?", (decision_id,))
    assert row is not None
    *plain, features, candidates, offered, at = row
    return (*plain, json.loads(features), json.loads(candidates), json.loads(offered), at)


def test_every_field_of_a_decision_and_its_offers_is_written_exactly(store: Store) -> None:
    d = decision("dec_1")
    write_decisions(store, [d])
    assert head(store, "dec_1") == ("cus_00000001", "cus_00000001", None, "web", "home", None, "hybrid", 3, "spring",
                                    "b", True, d.features, ["welcome", "spring", "été"], ["spring", "welcome"], AT)
    assert store.fetchall("SELECT position, offer_id, score, propensity, explored FROM decision_offers "
                          "WHERE decision_id = 'dec_1' ORDER BY position") == [
        (0, "spring", 0.123456789012345, 1.0, False), (1, "welcome", None, 0.05, True)]


def test_a_group_with_a_decision_that_offers_nothing_is_written_whole(store: Store) -> None:
    visitor = decision("dec_2", unit="anonymous_id:v1", customer_id=None, anonymous_id="v1", model_version=None,
                       experiment=None, variant=None, personalized=False, features={"traits": {}}, candidates=[],
                       offers=[], context={"channel": None, "placement": None, "device": None})
    write_decisions(store, [visitor, decision("dec_3")])
    found = read_decision(store, "dec_2")
    assert found is not None and (found["anonymous_id"], found["model_version"], found["offers"]) == ("v1", None, [])
    assert head(store, "dec_2")[11:14] == ({"traits": {}}, [], [])
    assert store.fetchall("SELECT COUNT(*) FROM decision_offers") == [(2,)]


def test_writing_no_decisions_writes_nothing(store: Store) -> None:
    write_decisions(store, [])
    assert store.fetchall("SELECT COUNT(*) FROM decisions") == [(0,)]
