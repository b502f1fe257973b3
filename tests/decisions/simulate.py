"""A small simulated world for model, bandit and OPE tests: customers whose clicks depend on a trait.

Customers ``cus_0000``… have ``orders_90d`` from 0 to 9 (and a sensitive ``gender``); offer ``a``
is clicked by frequent buyers (orders_90d >= 5) and offer ``b`` by the others, each with
probability 0.6, and never otherwise. Decisions are logged by a uniformly random policy.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np

from accord.decisions.engine import DecideRequest, DecisionEngine
from accord.store import Store
from tests.decisions.helpers import NOW, add_customer

OFFERS = [{"id": "a", "priority": 1}, {"id": "b", "priority": 2}]


def customers(store: Store, n: int = 60) -> list[str]:
    ids = [f"cus_{i:04d}" for i in range(n)]
    for i, cid in enumerate(ids):
        add_customer(store, cid, traits={"orders_90d": i % 10, "gender": i % 2}, consent={"personalization": "granted"})
    return ids


def clicks(customer_index: int, offer_id: str, rng: np.random.Generator) -> bool:
    frequent = customer_index % 10 >= 5
    likes = (offer_id == "a") == frequent
    return bool(likes and rng.random() < 0.6)


def log_uniform(store: Store, engine: DecisionEngine, ids: list[str], rounds: int, seed: int = 3,
                channel: str = "web") -> list[Any]:
    """``rounds`` decisions (epsilon-greedy with epsilon 1 is uniform); the first offer is shown and
    clicked per ``clicks``. Returns the decisions."""
    rng = np.random.default_rng(seed)
    made = []
    for r in range(rounds):
        i = r % len(ids)
        made.append(engine.decide(store, DecideRequest(customer_id=ids[i], channel=channel), write=False))
    engine.log.flush(store)
    rows = []
    for r, d in enumerate(made):
        if not d.offers:
            continue
        first = d.offers[0].offer_id
        clicked = clicks(r % len(ids), first, rng)
        rows.append(("out_" + uuid.uuid4().hex, d.decision_id, first, True, clicked, False, None, NOW, NOW))
    with store.transaction():
        store.executemany("INSERT INTO decision_outcomes (outcome_id, decision_id, offer_id, shown, clicked, converted, "
                          "revenue, occurred_at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return made
