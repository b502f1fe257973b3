"""The propensity model: LightGBM on profile traits, the request's context and the offer.

One binary model scores every (customer, context, offer) row; each version is kept in
``decision_models`` with its features, categories, validation AUC and the reference distributions
drift monitoring compares against. Explanations come from LightGBM's own ``pred_contrib``.

Scoring calls LightGBM's C API directly (``NativePredictor``): on a decision's 50 rows the Python
wrapper's set-up per call (parameter string, a predictor object, shape checks) cost about as much
as the scoring, and ``pred_contrib`` through it built a SHAP predictor for every request.
"""

from __future__ import annotations

import ctypes
import json
import math
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accord.store import Store

CONTEXT_FEATURES = ("channel", "placement", "device")
OFFER_FEATURE = "offer_id"
_PREDICT_NORMAL, _PREDICT_CONTRIB, _FLOAT64, _ROW_MAJOR = 0, 3, 1, 1  # LightGBM's C_API_* constants


class NativePredictor:
    """A booster's predictions and ``pred_contrib`` contributions through LightGBM's C API, one thread
    each (``num_threads=1``): the same numbers ``Booster.predict`` gives, without its per-call set-up.
    Contributions go row by row through the single-row API, whose predictor LightGBM builds once."""

    def __init__(self, booster: Any):
        from lightgbm.basic import _LIB, _c_str, _safe_call

        self._booster = booster  # keeps the handle alive as long as this predictor
        self._lib, self._check = _LIB, _safe_call
        self._handle = booster._handle
        self._param = _c_str("num_threads=1")
        self.n_features = booster.num_feature()
        self._contrib = ctypes.c_void_p()
        _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
            self._handle, ctypes.c_int(_PREDICT_CONTRIB), ctypes.c_int(0), ctypes.c_int(-1), ctypes.c_int(_FLOAT64),
            ctypes.c_int32(self.n_features), self._param, ctypes.byref(self._contrib)))
        weakref.finalize(self, _LIB.LGBM_FastConfigFree, self._contrib)
        self._contrib_lock = threading.Lock()  # one single-row predictor per booster: one caller at a time

    def _matrix(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {x.shape}")
        return x

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The probability of each row (binary objective)."""
        x = self._matrix(x)
        out = np.empty(x.shape[0], dtype=np.float64)
        if not len(x):
            return out
        n = ctypes.c_int64(0)
        self._check(self._lib.LGBM_BoosterPredictForMat(
            self._handle, x.ctypes.data_as(ctypes.c_void_p), ctypes.c_int(_FLOAT64), ctypes.c_int32(x.shape[0]),
            ctypes.c_int32(x.shape[1]), ctypes.c_int(_ROW_MAJOR), ctypes.c_int(_PREDICT_NORMAL), ctypes.c_int(0),
            ctypes.c_int(-1), self._param, ctypes.byref(n), out.ctypes.data_as(ctypes.c_void_p)))
        if n.value != len(out):
            raise ValueError(f"LightGBM answered {n.value} predictions for {len(out)} rows")
        return out

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per-row contribution of each feature, the bias last (``pred_contrib``)."""
        x = self._matrix(x)
        out = np.empty((x.shape[0], self.n_features + 1), dtype=np.float64)
        n = ctypes.c_int64(0)
        fast = self._lib.LGBM_BoosterPredictForMatSingleRowFast
        with self._contrib_lock:
            for i in range(x.shape[0]):
                self._check(fast(self._contrib, x[i].ctypes.data_as(ctypes.c_void_p), ctypes.byref(n),
                                 out[i].ctypes.data_as(ctypes.c_void_p)))
                if n.value != out.shape[1]:
                    raise ValueError(f"LightGBM answered {n.value} contributions for {out.shape[1]} columns")
        return out


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
    _native: NativePredictor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._codes = {name: {v: i for i, v in enumerate(values)} for name, values in self.categories.items()}
        self._names = (*self.traits, *CONTEXT_FEATURES, OFFER_FEATURE)

    @property
    def native(self) -> NativePredictor:
        if self._native is None:
            self._native = NativePredictor(self.booster)
        return self._native

    @property
    def feature_names(self) -> list[str]:
        return list(self._names)

    def rows(self, traits: Mapping[str, Any], context: Mapping[str, str | None], offer_ids: Sequence[str]
             ) -> np.ndarray:
        """One input row per offer (unknown categories and missing traits are NaN: LightGBM's missing)."""
        return self.rows_for(traits, context, self.offer_codes(offer_ids))

    def offer_codes(self, offer_ids: Sequence[str]) -> np.ndarray:
        """The offer feature's value for each offer id (NaN for an offer the model never saw)."""
        codes = self._codes[OFFER_FEATURE]
        return np.array([codes.get(o, np.nan) for o in offer_ids], dtype=float)

    def rows_for(self, traits: Mapping[str, Any], context: Mapping[str, str | None], offer_codes: np.ndarray
                 ) -> np.ndarray:
        """``rows`` with the offers given by their codes (``offer_codes``): the traits and context fill one
        row, copied once per offer."""
        row: list[float] = []
        for name in self.traits:
            value = traits.get(name)
            row.append(float(value) if isinstance(value, (int, float)) else math.nan)  # booleans as 1/0
        for name in CONTEXT_FEATURES:
            code = self._codes[name].get(context.get(name) or "")
            row.append(math.nan if code is None else float(code))
        row.append(math.nan)
        x = np.empty((len(offer_codes), len(row)))
        x[:] = row
        x[:, -1] = offer_codes
        return x

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.native.predict(x)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per-row log-odds contribution of each feature, the bias last (LightGBM ``pred_contrib``)."""
        return self.native.contributions(x)

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
    model = PropensityModel(version=int(version), booster=booster, traits=list(summary["traits"]),
                            categories={k: list(v) for k, v in summary["categories"].items()},
                            offer_examples={k: int(v) for k, v in summary["offer_examples"].items()},
                            auc=None if auc is None else float(auc), label=label, summary=summary)
    model.native  # noqa: B018 - set up here, where the catalog is read, not in the first decision
    return model


def active_model_version(store: Store) -> int | None:
    return store.scalar("SELECT MAX(version) FROM decision_models WHERE active")
