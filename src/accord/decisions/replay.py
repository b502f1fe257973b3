"""Off-policy evaluation on Accord's own decision log, for the first position.

Each logged decision with feedback on its first offer is one round: the action is that offer, its
propensity the one logged, the reward clicked (or converted). A candidate policy is evaluated over
the candidates the decision logged (the offers that passed the guardrails): ``rules`` (priority,
then margin) or ``uniform`` (each candidate alike).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np

from accord.clock import utcnow
from accord.decisions.offers import load_offers
from accord.decisions.ope import LoggedFeedback, evaluate, mean_reward_model
from accord.decisions.settings import DecisionsSettings
from accord.errors import AccordError
from accord.store import Store

TargetPolicy = Literal["rules", "uniform"]


def logged_rounds(store: Store, settings: DecisionsSettings, since: datetime) -> list[tuple[Any, ...]]:
    label = "converted" if settings.model.label == "converted" else "clicked"
    return store.fetchall(
        "SELECT d.decision_id, CAST(d.candidates AS TEXT), o.offer_id, o.propensity, x.y FROM decisions d "
        "JOIN decision_offers o ON o.decision_id = d.decision_id AND o.position = 0 "
        f"JOIN (SELECT decision_id, offer_id, MAX(CASE WHEN {label} THEN 1 ELSE 0 END) AS y FROM decision_outcomes "
        "      WHERE offer_id IS NOT NULL AND (shown OR clicked OR converted) GROUP BY decision_id, offer_id) x "
        "  ON x.decision_id = o.decision_id AND x.offer_id = o.offer_id "
        "WHERE d.decided_at >= ? ORDER BY d.decided_at, d.decision_id", (since,))


def evaluate_log(store: Store, settings: DecisionsSettings, policy: TargetPolicy, days: int = 30,
                 now: datetime | None = None) -> dict[str, Any]:
    rows = logged_rounds(store, settings, (now or utcnow()) - timedelta(days=days))
    if not rows:
        raise AccordError(f"no logged decision of the last {days} days has feedback on its first offer; "
                          "report outcomes with POST /v1/decisions/{id}/outcome first")
    specs = {o.id: o.spec for o in load_offers(store, settings)}
    actions = sorted({r[2] for r in rows} | {c for r in rows for c in json.loads(r[1] or "[]")})
    index = {a: i for i, a in enumerate(actions)}
    n = len(rows)
    dist = np.zeros((n, len(actions), 1))
    for t, (_, cand_text, chosen, _, _) in enumerate(rows):
        cands = json.loads(cand_text or "[]") or [chosen]
        if policy == "uniform":
            for c in cands:
                dist[t, index[c], 0] = 1 / len(cands)
        else:
            def key(offer_id: str) -> tuple[float, float, str]:
                spec = specs.get(offer_id)
                return (-(spec.priority if spec else 0), -(spec.margin if spec else 0.0), offer_id)
            dist[t, index[min(cands, key=key)], 0] = 1.0
    log = LoggedFeedback(action=np.array([index[r[2]] for r in rows]), position=np.zeros(n, dtype=int),
                         reward=np.array([float(r[4]) for r in rows]), pscore=np.array([float(r[3]) for r in rows]),
                         n_actions=len(actions), len_list=1)
    value = evaluate(log, dist, mean_reward_model(log))
    return {"policy": policy, "rounds": n, "days": days, **value.as_dict()}
