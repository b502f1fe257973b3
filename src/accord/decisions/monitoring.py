"""``accord models report``: drift, calibration and fairness of the active propensity model.

* Drift: the population stability index of each input feature and of the score, recent decisions
  against the training data, in the training data's quantile bins; PSI above 0.2 is flagged.
* Calibration: recent scored offers with feedback, in bins of predicted probability, against the
  observed rate; the expected calibration error and the Brier score summarise it.
* Fairness: the demographic parity difference across a configured group attribute (a trait):
  for each offer, the largest gap between groups in how often it is ranked first.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from accord.clock import utcnow
from accord.decisions.model import load_active_model
from accord.decisions.settings import DecisionsSettings
from accord.errors import AccordError
from accord.store import Store

_EPS = 1e-4


def psi(reference: dict[str, Any], values: np.ndarray) -> float | None:
    """Population stability index of ``values`` against a reference from ``reference_distribution``."""
    if values.size == 0:
        return None
    edges = np.asarray(reference["edges"], dtype=float)
    present = values[~np.isnan(values)]
    counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1)
    actual = np.append(counts / values.size, (values.size - present.size) / values.size)
    expected = np.append(np.asarray(reference["shares"], dtype=float), reference.get("missing", 0.0))
    actual, expected = np.clip(actual, _EPS, None), np.clip(expected, _EPS, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def calibration(predicted: np.ndarray, observed: np.ndarray, bins: int) -> dict[str, Any]:
    if predicted.size == 0:
        return {"rows": 0, "bins": [], "ece": None, "brier": None}
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.searchsorted(edges, predicted, side="right") - 1, 0, bins - 1)
    table = []
    ece = 0.0
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        if not n:
            continue
        mean_p, rate = float(predicted[mask].mean()), float(observed[mask].mean())
        ece += n / predicted.size * abs(mean_p - rate)
        table.append({"from": round(float(edges[b]), 3), "to": round(float(edges[b + 1]), 3), "rows": n,
                      "mean_predicted": mean_p, "observed_rate": rate})
    return {"rows": int(predicted.size), "bins": table, "ece": ece,
            "brier": float(np.mean((predicted - observed) ** 2))}


def demographic_parity_difference(selected: np.ndarray, groups: np.ndarray) -> float | None:
    """max over groups of P(selected | group) minus the min (fairlearn's definition)."""
    rates = [float(selected[groups == g].mean()) for g in np.unique(groups)]
    return max(rates) - min(rates) if len(rates) >= 2 else None


def _recent(store: Store, since: datetime) -> list[tuple[Any, ...]]:
    return store.fetchall(
        "SELECT d.decision_id, d.customer_id, d.channel, d.placement, d.device, CAST(d.features AS TEXT), "
        "o.offer_id, o.position, o.score, d.model_version FROM decisions d "
        "JOIN decision_offers o ON o.decision_id = d.decision_id WHERE d.decided_at >= ? "
        "ORDER BY d.decided_at, d.decision_id, o.position", (since,))


def models_report(store: Store, settings: DecisionsSettings, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    mon = settings.monitoring
    model = load_active_model(store)
    if model is None:
        raise AccordError("no propensity model has been trained yet: run 'accord decisions train' first")
    since = now - timedelta(days=mon.days)
    rows = _recent(store, since)
    reference = model.summary.get("reference", {})
    report: dict[str, Any] = {"model_version": model.version, "auc": model.auc, "window_days": mon.days,
                              "decisions": len({r[0] for r in rows}), "psi_threshold": mon.psi_threshold}
    # one input row per decision (features are per customer, not per offer)
    firsts = [r for r in rows if r[7] == 0]
    feats = [json.loads(r[5]).get("traits", {}) if r[5] else {} for r in firsts]
    drift = []
    for name in model.traits:
        ref = (reference.get("features") or {}).get(name)
        values = np.array([f.get(name, np.nan) if isinstance(f.get(name), (int, float)) else np.nan for f in feats],
                          dtype=float)
        value = psi(ref, values) if ref else None
        drift.append({"feature": name, "psi": value, "flagged": value is not None and value > mon.psi_threshold})
    report["features"] = drift
    scored = [r for r in rows if r[9] == model.version and r[8] is not None]
    score_ref = reference.get("score")
    score_psi = psi(score_ref, np.array([r[8] for r in scored], dtype=float)) if score_ref and scored else None
    report["score"] = {"psi": score_psi, "flagged": score_psi is not None and score_psi > mon.psi_threshold,
                       "rows": len(scored)}
    report["calibration"] = _calibration(store, settings, model.version, since)
    report["fairness"] = _fairness(store, settings, rows)
    return report


def _calibration(store: Store, settings: DecisionsSettings, version: int, since: datetime) -> dict[str, Any]:
    label = "converted" if settings.model.label == "converted" else "clicked"
    rows = store.fetchall(
        "SELECT o.score, x.y FROM decision_offers o JOIN decisions d ON d.decision_id = o.decision_id "
        f"JOIN (SELECT decision_id, offer_id, MAX(CASE WHEN {label} THEN 1 ELSE 0 END) AS y FROM decision_outcomes "
        "      WHERE offer_id IS NOT NULL AND (shown OR clicked OR converted) GROUP BY decision_id, offer_id) x "
        "  ON x.decision_id = o.decision_id AND x.offer_id = o.offer_id "
        "WHERE d.model_version = ? AND d.decided_at >= ? AND o.score IS NOT NULL", (version, since))
    predicted = np.array([float(r[0]) for r in rows])
    observed = np.array([float(r[1]) for r in rows])
    if settings.model.objective == "margin":
        return {"rows": 0, "bins": [], "ece": None, "brier": None,
                "note": "scores are probability times margin (model.objective: margin); not calibrated probabilities"}
    return calibration(predicted, observed, settings.monitoring.bins)


def _fairness(store: Store, settings: DecisionsSettings, rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    attribute = settings.monitoring.group_attribute
    if not attribute:
        return {"attribute": None, "note": "set decisions.monitoring.group_attribute to compare groups"}
    customers = sorted({r[1] for r in rows if r[1]})
    groups: dict[str, str] = {}
    for start in range(0, len(customers), 500):
        chunk = customers[start:start + 500]
        marks = ", ".join("?" for _ in chunk)
        for cid, num, text in store.fetchall(
                f"SELECT customer_id, value_num, value_text FROM customer_traits WHERE name = ? "
                f"AND customer_id IN ({marks})", [attribute, *chunk]):
            groups[cid] = text if text is not None else ("" if num is None else f"{num:g}")
    tops = [(r[1], r[6]) for r in rows if r[7] == 0 and r[1] in groups]
    if not tops:
        return {"attribute": attribute, "groups": {}, "offers": [], "max_difference": None}
    decided_groups = np.array([groups[c] for c, _ in tops])
    top_offers = np.array([o for _, o in tops])
    per_offer = []
    for offer in sorted(set(top_offers.tolist())):
        selected = (top_offers == offer).astype(float)
        dpd = demographic_parity_difference(selected, decided_groups)
        rates = {g: float(selected[decided_groups == g].mean()) for g in sorted(set(decided_groups.tolist()))}
        per_offer.append({"offer_id": offer, "difference": dpd, "rates": rates})
    diffs = [p["difference"] for p in per_offer if p["difference"] is not None and not math.isnan(p["difference"])]
    counts = {g: int((decided_groups == g).sum()) for g in sorted(set(decided_groups.tolist()))}
    return {"attribute": attribute, "groups": counts, "offers": per_offer, "max_difference": max(diffs) if diffs else None}
