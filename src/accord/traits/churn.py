"""Churn / renewal risk: a LightGBM classifier with calibrated probabilities and per-customer reasons.

The model is plain tabular: a DataFrame of features (numbers, and categories as text or pandas
categories) and a 0/1 label. Text columns become pandas categories whose levels are fixed at training,
so LightGBM splits on them natively (no one-hot); a level never seen in training scores as missing.
Raw scores are calibrated on rows the trees did not train on — Platt scaling (``sigmoid``, keeps the
ranking) or isotonic regression — so a risk of 0.3 means about 30 in 100 such customers churn.
``reasons`` gives each customer's features that push the risk up most (LightGBM ``pred_contrib``, the
exact TreeSHAP contributions in log-odds).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from accord.errors import AccordError

Calibration = Literal["sigmoid", "isotonic"]

DEFAULT_PARAMS: dict[str, Any] = {
    # Small, strongly regularized trees: churn tables are a few thousand to a few million rows of
    # noisy behaviour, where shallow trees with a slow learning rate generalize best.
    "objective": "binary",
    "learning_rate": 0.03,
    "num_leaves": 15,
    "max_depth": 4,  # bounds TreeSHAP's cost per customer (depth squared) at no loss of AUC on Telco
    "min_child_samples": 40,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "cat_smooth": 20,
    "min_data_per_group": 50,
    "verbose": -1,
}
THREADED_ROWS = 2_000_000
"""Below this many rows LightGBM runs on one thread: OpenMP's spinning threads made training and
TreeSHAP 5-10x slower on a busy two-core machine (measured at 10k and 100k customers)."""


MIN_REASON = 1e-3
"""Smaller pushes (in log-odds) are noise, not a reason to tell anyone."""


class ChurnDataError(AccordError):
    """The training data cannot support a churn model (too few rows, one class only, bad columns)."""


@dataclass(frozen=True)
class Reason:
    """One feature's push on a customer's risk, in log-odds (positive raises the risk)."""

    feature: str
    value: Any
    contribution: float

    def as_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "value": self.value, "contribution": round(self.contribution, 4)}


class ChurnModel:
    """LightGBM churn classifier. ``fit`` then ``predict_proba`` / ``reasons`` / ``feature_importance``."""

    def __init__(self, *, calibration: Calibration = "sigmoid", params: dict[str, Any] | None = None,
                 max_rounds: int = 2000, early_stopping_rounds: int = 100, seed: int = 7):
        self.calibration = calibration
        self.params = {**DEFAULT_PARAMS, **(params or {}), "seed": seed}
        self.max_rounds = max_rounds
        self.early_stopping_rounds = early_stopping_rounds
        self.booster_: lgb.Booster | None = None
        self.features_: list[str] = []
        self.categories_: dict[str, list[str]] = {}
        self.calibrator_: dict[str, Any] = {}

    # --- training ----------------------------------------------------------------------------------

    def fit(self, X: pd.DataFrame, y: Any, *, X_calibration: pd.DataFrame | None = None,
            y_calibration: Any = None, calibration_share: float = 0.2) -> ChurnModel:
        """Train on ``X``/``y``; calibrate (and stop early) on ``X_calibration``/``y_calibration``, or on a
        stratified ``calibration_share`` of the training rows held out when none are given."""
        y_arr = _labels(y, "training")
        if X_calibration is None:
            X, X_calibration, y_arr, y_cal = _stratified_split(X, y_arr, calibration_share, self.params["seed"])
        else:
            y_cal = _labels(y_calibration, "calibration")
        self.features_ = list(X.columns)
        self.categories_ = {
            c: sorted(map(str, pd.Series(X[c]).dropna().unique()))
            for c in X.columns if not pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c])
        }
        params = dict(self.params)
        params.setdefault("num_threads", _threads(len(X)))
        train = lgb.Dataset(self._frame(X), y_arr, free_raw_data=False)
        valid = lgb.Dataset(self._frame(X_calibration), y_cal, reference=train)
        self.booster_ = lgb.train(
            params, train, num_boost_round=self.max_rounds, valid_sets=[valid],
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
        )
        self._fit_calibrator(self._raw(X_calibration), y_cal)
        return self

    def _fit_calibrator(self, raw: np.ndarray, y: np.ndarray) -> None:
        if self.calibration == "isotonic":
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
            self.calibrator_ = {"method": "isotonic", "x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
        else:
            platt = LogisticRegression(C=1e6).fit(raw.reshape(-1, 1), y)
            self.calibrator_ = {"method": "sigmoid", "slope": float(platt.coef_[0, 0]),
                                "intercept": float(platt.intercept_[0])}

    # --- scoring -----------------------------------------------------------------------------------

    def _frame(self, X: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.features_ if c not in X.columns]
        if missing:
            raise ChurnDataError(f"missing feature column(s): {', '.join(missing)}")
        frame = X[self.features_].copy()
        for col, levels in self.categories_.items():
            values = frame[col].astype("string")
            frame[col] = pd.Categorical(values.where(values.notna(), None), categories=levels)
        for col in self.features_:
            if col not in self.categories_:
                frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
        return frame

    def _raw(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.booster.predict(self._frame(X), raw_score=True, num_threads=_threads(len(X))),
                          dtype=float)

    @property
    def booster(self) -> lgb.Booster:
        if self.booster_ is None:
            raise RuntimeError("fit the model first")
        return self.booster_

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of churn for each row."""
        raw = self._raw(X)
        cal = self.calibrator_
        if cal["method"] == "isotonic":
            return np.interp(raw, cal["x"], cal["y"])
        return 1.0 / (1.0 + np.exp(-(cal["slope"] * raw + cal["intercept"])))

    def reasons(self, X: pd.DataFrame, top: int = 3) -> list[list[Reason]]:
        """Per row, the ``top`` features that raise the risk most (contributions of at least MIN_REASON)."""
        frame = self._frame(X)
        contrib = np.asarray(self.booster.predict(frame, pred_contrib=True, num_threads=_threads(len(X))))
        contrib = contrib[:, :-1]  # the last column is the bias
        order = np.argsort(-contrib, axis=1)[:, :top]
        out: list[list[Reason]] = []
        values = X[self.features_].to_numpy(dtype=object)
        for i, cols in enumerate(order):
            out.append([Reason(self.features_[j], _plain(values[i, j]), float(contrib[i, j]))
                        for j in cols if contrib[i, j] >= MIN_REASON])
        return out

    def feature_importance(self) -> pd.DataFrame:
        """Total gain and split count per feature, largest gain first."""
        b = self.booster
        table = pd.DataFrame({
            "feature": b.feature_name(),
            "gain": b.feature_importance("gain"),
            "splits": b.feature_importance("split"),
        })
        table["gain_share"] = table["gain"] / max(table["gain"].sum(), 1e-12)
        return table.sort_values("gain", ascending=False, ignore_index=True)

    def evaluate(self, X: pd.DataFrame, y: Any) -> dict[str, float]:
        """ROC AUC, Brier score, log loss and churn rates of held-out rows."""
        y_arr = _labels(y, "evaluation")
        p = self.predict_proba(X)
        return {
            "rows": int(len(y_arr)),
            "roc_auc": float(roc_auc_score(y_arr, p)),
            "brier": float(brier_score_loss(y_arr, p)),
            "log_loss": float(log_loss(y_arr, np.clip(p, 1e-6, 1 - 1e-6))),
            "churn_rate": float(y_arr.mean()),
            "mean_predicted": float(p.mean()),
        }

    # --- persistence -------------------------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps({
            "booster": self.booster.model_to_string(), "features": self.features_,
            "categories": self.categories_, "calibrator": self.calibrator_, "calibration": self.calibration,
            "params": self.params,
        })

    @classmethod
    def from_json(cls, text: str) -> ChurnModel:
        data = json.loads(text)
        model = cls(calibration=data["calibration"], params=data["params"])
        model.booster_ = lgb.Booster(model_str=data["booster"])
        model.features_ = data["features"]
        model.categories_ = data["categories"]
        model.calibrator_ = data["calibrator"]
        return model


def _threads(rows: int) -> int:
    """One thread below THREADED_ROWS rows, else LightGBM's default (all cores)."""
    return 1 if rows < THREADED_ROWS else 0


def _labels(y: Any, what: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.dtype == bool:
        arr = arr.astype(int)
    if not np.isin(arr, [0, 1]).all():
        raise ChurnDataError(f"the {what} label must be 0/1 (or true/false)")
    arr = arr.astype(int)
    if len(np.unique(arr)) < 2:
        only = int(arr[0]) if len(arr) else "-"
        raise ChurnDataError(f"the {what} rows hold only one class ({len(arr)} rows, all {only}); "
                             "a churn model needs churned and retained customers")
    return arr


def _stratified_split(X: pd.DataFrame, y: np.ndarray, share: float,
                      seed: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    X_fit, X_cal, y_fit, y_cal = train_test_split(X, y, test_size=share, stratify=y, random_state=seed)
    return X_fit, X_cal, np.asarray(y_fit), np.asarray(y_cal)


def _plain(value: Any) -> Any:
    """A JSON-friendly scalar for a reason's value."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round(value, 4)
    return value if isinstance(value, (int, str, bool)) else str(value)
