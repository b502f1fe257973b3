"""The propensity model: LightGBM on profile traits, the request's context and the offer.

One binary model scores every (customer, context, offer) row; each version is kept in
``decision_models`` with its features, categories, validation AUC and the reference distributions
drift monitoring compares against. Explanations come from LightGBM's own ``pred_contrib``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accord.store import Store

CONTEXT_FEATURES = ("channel", "placement", "device")
OFFER_FEATURE = "offer_id"


@dataclass
class PropensityModel:
    """A trained model and what it needs to build its input rows."""

    version: int
    booster: Any  # lightgbm.Booster
    traits: list[str]
    categories: dict[str, list[str]]
    offer_examples: dict[str, int]
    auc: float | None
    label: str
    summary: dict[str, Any] = field(default_factory=dict)
    _codes: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)
    _names: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        self._codes = {name: {v: i for i, v in enumerate(values)} for name, values in self.categories.items()}
        self._names = (*self.traits, *CONTEXT_FEATURES, OFFER_FEATURE)

    @property
    def feature_names(self) -> list[str]:
        return list(self._names)

    def rows(self, traits: Mapping[str, Any], context: Mapping[str, str | None], offer_ids: Sequence[str]
             ) -> np.ndarray:
        """One input row per offer (unknown categories and missing traits are NaN: LightGBM's missing)."""
        x = np.full((len(offer_ids), len(self.traits) + len(CONTEXT_FEATURES) + 1), np.nan)
        for j, name in enumerate(self.traits):
            value = traits.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                x[:, j] = float(value)
            elif isinstance(value, bool):
                x[:, j] = float(value)
        base = len(self.traits)
        for k, name in enumerate(CONTEXT_FEATURES):
            code = self._codes[name].get(context.get(name) or "")
            if code is not None:
                x[:, base + k] = code
        offer_codes = self._codes[OFFER_FEATURE]
        x[:, -1] = [offer_codes.get(o, np.nan) for o in offer_ids]
        return x

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.predict(x, num_threads=1), dtype=float)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per-row log-odds contribution of each feature, the bias last (LightGBM ``pred_contrib``)."""
        return np.asarray(self.booster.predict(x, pred_contrib=True, num_threads=1), dtype=float)

    def top_contributions(self, contrib_row: np.ndarray, x_row: np.ndarray, n: int = 3) -> list[dict[str, Any]]:
        names = self._names
        order = np.argsort(-np.abs(contrib_row[:-1]))[:n].tolist()
        contrib, values = contrib_row.tolist(), x_row.tolist()  # plain floats: numpy scalars cost more each
        out = []
        for j in order:
            if contrib[j] == 0:
                continue
            out.append({"feature": names[j], "value": self._display(j, values[j]),
                        "contribution": round(contrib[j], 6)})
        return out

    def _display(self, j: int, value: float) -> Any:
        if value != value:  # NaN: missing
            return None
        name = self._names[j]
        if name in self.categories:
            return self.categories[name][int(value)]
        return float(value)

    def is_warm(self, offer_id: str, min_examples: int) -> bool:
        return self.offer_examples.get(offer_id, 0) >= min_examples


def load_active_model(store: Store) -> PropensityModel | None:
    row = store.fetchone("SELECT version, label, auc, CAST(summary AS TEXT), model FROM decision_models "
                         "WHERE active ORDER BY version DESC LIMIT 1")
    if row is None:
        return None
    return model_from_row(*row)


def model_from_row(version: int, label: str, auc: float | None, summary_text: str, model_text: str
                   ) -> PropensityModel:
    import lightgbm as lgb

    summary = json.loads(summary_text)
    booster = lgb.Booster(model_str=model_text)
    return PropensityModel(version=int(version), booster=booster, traits=list(summary["traits"]),
                           categories={k: list(v) for k, v in summary["categories"].items()},
                           offer_examples={k: int(v) for k, v in summary["offer_examples"].items()},
                           auc=None if auc is None else float(auc), label=label, summary=summary)


def active_model_version(store: Store) -> int | None:
    return store.scalar("SELECT MAX(version) FROM decision_models WHERE active")
