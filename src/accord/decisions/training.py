"""Training the propensity model from the decision log joined to its outcomes; every version kept.

An example is an offer a decision returned and the client reported as shown (a click or a
conversion implies shown); its label is whether it was clicked (or converted, by ``model.label``).
Only decisions made with personalization consent are used, and only with the traits stored at
decision time, so a model never learns from data it was not allowed to use.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from accord.clock import utcnow
from accord.decisions.model import CONTEXT_FEATURES, OFFER_FEATURE, PropensityModel
from accord.decisions.settings import DecisionsSettings
from accord.errors import AccordError
from accord.store import Store


class TrainingError(AccordError):
    """Not enough data to train, or data that cannot train a model."""


@dataclass
class TrainReport:
    trained: bool
    version: int | None = None
    training_rows: int = 0
    positives: int = 0
    auc: float | None = None
    features: list[str] = field(default_factory=list)
    reason: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _examples(store: Store, settings: DecisionsSettings, since: datetime) -> list[tuple[Any, ...]]:
    label = "converted" if settings.model.label == "converted" else "clicked"
    return store.fetchall(
        "SELECT d.decided_at, d.channel, d.placement, d.device, CAST(d.features AS TEXT), x.offer_id, x.y "
        "FROM (SELECT decision_id, offer_id, "
        f"      MAX(CASE WHEN {label} THEN 1 ELSE 0 END) AS y FROM decision_outcomes "
        "      WHERE offer_id IS NOT NULL AND (shown OR clicked OR converted) GROUP BY decision_id, offer_id) x "
        "JOIN decisions d ON d.decision_id = x.decision_id "
        "JOIN decision_offers o ON o.decision_id = x.decision_id AND o.offer_id = x.offer_id "
        "WHERE d.personalized AND d.decided_at >= ? ORDER BY d.decided_at, d.decision_id, x.offer_id", (since,))


def choose_traits(settings: DecisionsSettings, seen: dict[str, int]) -> list[str]:
    """The trait features: the configured list, or every numeric trait seen; never a sensitive one."""
    sensitive = {s.lower() for s in settings.guardrails.sensitive_attributes}
    names = settings.model.features or sorted(seen)
    return [n for n in names if n.lower() not in sensitive]


def _auc(y: np.ndarray, p: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(set(y.tolist())) < 2:
        return None
    return float(roc_auc_score(y, p))


def reference_distribution(values: np.ndarray, bins: int) -> dict[str, Any] | None:
    """Quantile bin edges of ``values`` and the share in each bin (missing values in their own bin)."""
    present = values[~np.isnan(values)]
    if present.size == 0:
        return None
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1)
    missing = int(values.size - present.size)
    return {"edges": edges.tolist(), "shares": (counts / values.size).tolist(), "missing": missing / values.size}


def train_model(store: Store, settings: DecisionsSettings, now: datetime | None = None, *,
                seed: int = 7) -> TrainReport:
    """Train a new version from the log; it becomes the active model. Too little data: not trained."""
    import time

    import lightgbm as lgb

    started = time.perf_counter()
    now = now or utcnow()
    ms = settings.model
    rows = _examples(store, settings, now - timedelta(days=ms.training_days))
    if len(rows) < ms.min_training_rows:
        return TrainReport(False, training_rows=len(rows),
                           reason=f"{len(rows)} shown offers with feedback; model.min_training_rows is "
                                  f"{ms.min_training_rows}")
    feats = [json.loads(r[4]) if r[4] else {} for r in rows]
    seen: dict[str, int] = {}
    for f in feats:
        for name, value in (f.get("traits") or {}).items():
            if isinstance(value, (int, float)):
                seen[name] = seen.get(name, 0) + 1
    traits = choose_traits(settings, seen)
    categories: dict[str, list[str]] = {}
    for k, name in enumerate(CONTEXT_FEATURES):
        categories[name] = sorted({r[1 + k] or "" for r in rows})
    categories[OFFER_FEATURE] = sorted({r[5] for r in rows})
    y = np.array([int(r[6]) for r in rows], dtype=float)
    if y.sum() == 0 or y.sum() == len(y):
        return TrainReport(False, training_rows=len(rows), positives=int(y.sum()),
                           reason=f"every example has the same label ({settings.model.label}); nothing to learn")
    offer_examples: dict[str, int] = {}
    for r in rows:
        offer_examples[r[5]] = offer_examples.get(r[5], 0) + 1
    shell = PropensityModel(0, None, traits, categories, offer_examples, None, ms.label)
    x = np.vstack([shell.rows(f.get("traits") or {}, dict(zip(CONTEXT_FEATURES, r[1:4])), [r[5]])
                   for f, r in zip(feats, rows)])
    n_features = x.shape[1]
    categorical = list(range(len(traits), n_features))
    params = {"objective": "binary", "learning_rate": ms.learning_rate, "num_leaves": ms.num_leaves,
              "min_data_in_leaf": max(5, len(rows) // 200), "verbose": -1, "seed": seed, "num_threads": 1,
              "deterministic": True, "force_row_wise": True, "cat_smooth": 10, "min_data_per_group": 5}
    cut = int(len(rows) * 0.8)  # rows are in time order: validate on the most recent fifth
    names = shell.feature_names
    valid_auc = None
    if 0 < cut < len(rows) and len(set(y[cut:].tolist())) == 2:
        probe = lgb.train(params, lgb.Dataset(x[:cut], y[:cut], feature_name=names, categorical_feature=categorical,
                                              free_raw_data=False), num_boost_round=ms.num_boost_round)
        valid_auc = _auc(y[cut:], probe.predict(x[cut:], num_threads=1))
    booster = lgb.train(params, lgb.Dataset(x, y, feature_name=names, categorical_feature=categorical,
                                            free_raw_data=False), num_boost_round=ms.num_boost_round)
    scores = booster.predict(x, num_threads=1)
    bins = settings.monitoring.bins
    reference = {name: reference_distribution(x[:, j], bins) for j, name in enumerate(traits)}
    summary = {"traits": traits, "categories": categories, "offer_examples": offer_examples,
               "positives": int(y.sum()), "trained_until": now.isoformat(), "params": params,
               "reference": {"features": reference, "score": reference_distribution(scores, bins)}}
    with store.transaction():
        version = int(store.scalar("SELECT COALESCE(MAX(version), 0) FROM decision_models")) + 1
        store.execute("UPDATE decision_models SET active = false WHERE active")
        store.execute(store.type_sql(
            "INSERT INTO decision_models (version, trained_at, label, training_rows, auc, active, summary, model) "
            "VALUES (?, ?, ?, ?, ?, true, CAST(? AS ${JSON}), ?)"),
            (version, now, ms.label, len(rows), valid_auc, json.dumps(summary), booster.model_to_string()))
        store.execute("DELETE FROM decision_models WHERE version <= ? AND NOT active", (version - ms.keep_versions,))
    return TrainReport(True, version, len(rows), int(y.sum()), valid_auc, traits,
                       seconds=round(time.perf_counter() - started, 3))


def list_models(store: Store) -> list[dict[str, Any]]:
    return [{"version": v, "trained_at": t, "label": lab, "training_rows": n, "auc": auc, "active": bool(a)}
            for v, t, lab, n, auc, a in store.fetchall(
                "SELECT version, trained_at, label, training_rows, auc, active FROM decision_models "
                "ORDER BY version DESC")]


def activate_model(store: Store, version: int) -> None:
    """Make an older (or newer) version the active one: a rollback."""
    with store.transaction():
        if store.fetchone("SELECT 1 FROM decision_models WHERE version = ?", (version,)) is None:
            known = ", ".join(str(m["version"]) for m in list_models(store)) or "none"
            raise TrainingError(f"no model version {version}; kept versions: {known}")
        store.execute("UPDATE decision_models SET active = (version = ?)", (version,))


def retrain_due(store: Store, settings: DecisionsSettings, now: datetime) -> bool:
    """The schedule: retrain when there is no model or the active one is older than retrain_hours."""
    hours = settings.model.retrain_hours
    if hours is None:
        return False
    last = store.scalar("SELECT MAX(trained_at) FROM decision_models WHERE active")
    return last is None or last <= now - timedelta(hours=hours)
