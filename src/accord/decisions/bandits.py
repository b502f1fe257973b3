"""Exploration: epsilon-greedy and Thompson sampling (Beta-Bernoulli per offer and context).

Both report, for each offer they rank, the probability that the policy puts that offer at that
position: the propensity that off-policy evaluation divides by.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from accord.store import Store


def epsilon_greedy(greedy_order: Sequence[str], epsilon: float, rng: np.random.Generator
                   ) -> tuple[list[str], list[float], bool]:
    """(order, propensity per position, explored). With probability epsilon the order is a uniformly
    random permutation; a given offer then lands at any position with probability 1/K."""
    k = len(greedy_order)
    if k == 0:
        return [], [], False
    explored = bool(rng.random() < epsilon)
    order = [greedy_order[i] for i in rng.permutation(k)] if explored else list(greedy_order)
    greedy_pos = {o: i for i, o in enumerate(greedy_order)}
    props = [(1 - epsilon) * (greedy_pos[o] == i) + epsilon / k for i, o in enumerate(order)]
    return order, props, explored


def context_key(context: dict[str, str | None], fields: Sequence[str]) -> str:
    return "|".join(f"{f}={context.get(f) or ''}" for f in fields)


@dataclass
class BetaPosteriors:
    """Shows and rewards per (offer, context key); the posterior is Beta(alpha + r, beta + n - r)."""

    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    counts: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    loaded_at: datetime | None = None

    def parameters(self, offer_ids: Sequence[str], key: str) -> tuple[np.ndarray, np.ndarray]:
        shows = np.array([self.counts.get((o, key), (0, 0))[0] for o in offer_ids], dtype=float)
        rewards = np.array([self.counts.get((o, key), (0, 0))[1] for o in offer_ids], dtype=float)
        return self.prior_alpha + rewards, self.prior_beta + shows - rewards

    def mean(self, offer_ids: Sequence[str], key: str) -> np.ndarray:
        a, b = self.parameters(offer_ids, key)
        return a / (a + b)


def thompson(offer_ids: Sequence[str], alpha: np.ndarray, beta: np.ndarray, rng: np.random.Generator,
             positions: int, simulations: int) -> tuple[list[str], list[float], list[float], list[bool]]:
    """Rank by one draw from each posterior. Returns (order, sampled score, propensity, explored) for the
    first ``positions`` offers. The propensity of an offer at a position is estimated by Monte Carlo as
    obp's ``compute_batch_action_dist`` does, counting the realised draw as one of the simulations;
    an offer is an exploration pick when the posterior means would not have put it there."""
    k = len(offer_ids)
    if k == 0:
        return [], [], [], []
    positions = min(positions, k)
    draw = rng.beta(alpha, beta)
    order = np.argsort(-draw)[:positions]
    sims = rng.beta(alpha, beta, size=(simulations, k))
    sim_order = np.argsort(-sims, axis=1)[:, :positions]
    props = [(int(np.count_nonzero(sim_order[:, p] == i)) + 1) / (simulations + 1) for p, i in enumerate(order)]
    by_mean = np.argsort(-(alpha / (alpha + beta)), kind="stable")[:positions]
    explored = [bool(by_mean[p] != i) for p, i in enumerate(order)]
    return [offer_ids[i] for i in order], [float(draw[i]) for i in order], props, explored


def load_posteriors(store: Store, label: str, context_fields: Sequence[str], prior_alpha: float,
                    prior_beta: float, now: datetime) -> BetaPosteriors:
    """Shows and rewards per offer and context from the outcomes of logged decisions."""
    reward = "converted" if label == "converted" else "clicked"
    cols = ", ".join(f"d.{f}" for f in context_fields) or "NULL"
    rows = store.fetchall(
        f"SELECT x.offer_id, {cols}, COUNT(*), SUM(x.y) FROM ("
        f"  SELECT decision_id, offer_id, MAX(CASE WHEN {reward} THEN 1 ELSE 0 END) AS y FROM decision_outcomes "
        "   WHERE offer_id IS NOT NULL AND (shown OR clicked OR converted) GROUP BY decision_id, offer_id) x "
        f"JOIN decisions d ON d.decision_id = x.decision_id GROUP BY x.offer_id{', ' + cols if context_fields else ''}")
    counts: dict[tuple[str, str], tuple[int, int]] = {}
    for row in rows:
        offer_id, ctx_values, n, r = row[0], row[1:-2], int(row[-2]), int(row[-1] or 0)
        key = context_key(dict(zip(context_fields, ctx_values)), context_fields)
        counts[(offer_id, key)] = (n, r)
    return BetaPosteriors(prior_alpha, prior_beta, counts, now)
