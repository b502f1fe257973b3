"""``accord churn fit``: the churn model on any table of customers with a churned / retained label."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from accord.errors import AccordError
from accord.traits.churn import ChurnDataError, ChurnModel

TRUE_WORDS = {"1", "true", "yes", "y", "churned", "churn", "t"}
FALSE_WORDS = {"0", "false", "no", "n", "retained", "active", "f"}


class ChurnTableError(AccordError):
    """A churn table cannot be read or its label cannot be understood."""


@dataclass
class ChurnFit:
    report: dict[str, Any]
    predictions: pd.DataFrame = field(repr=False)

    def write_predictions(self, path: Path) -> None:
        if path.suffix.lower() in (".parquet", ".pq"):
            self.predictions.to_parquet(path, index=False)
        elif path.suffix.lower() == ".csv":
            self.predictions.to_csv(path, index=False, float_format="%.6g")
        else:
            raise ChurnTableError(f"--out {path}: expected a .csv or .parquet file")


def read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise ChurnTableError(f"{path}: no such file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if path.suffix.lower() in (".csv", ".tsv"):
            # Numbers stay numbers; empty cells are missing values, which LightGBM handles.
            return pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
    except Exception as exc:  # pandas and pyarrow raise many kinds for unreadable files
        raise ChurnTableError(f"{path}: cannot read: {exc}") from None
    raise ChurnTableError(f"{path}: expected a .csv, .tsv or .parquet file")


def _label(path: Path, column: pd.Series, positive: str | None) -> np.ndarray:
    text = column.astype("string").str.strip()
    if positive is not None:
        return (text == positive).fillna(False).to_numpy(dtype=int)
    lowered = text.str.lower()
    known = lowered.isin(TRUE_WORDS | FALSE_WORDS)
    if not known.all():
        i = int(np.flatnonzero(~known.fillna(False).to_numpy())[0])
        raise ChurnTableError(f"{path}:{i + 2}: column {column.name!r}: cannot read {column.iloc[i]!r} as churned "
                              f"or retained; expected 1/0, yes/no or true/false, or name the churned value with "
                              f"--positive")
    return lowered.isin(TRUE_WORDS).to_numpy(dtype=int)


def fit_table(path: Path, *, label: str, id_column: str | None = None, positive: str | None = None,
              drop: list[str] | None = None, holdout: float = 0.25, calibration: str = "sigmoid",
              seed: int = 42, top_reasons: int = 3) -> ChurnFit:
    """Train on a stratified (1 - holdout) share of the rows, report metrics on the rest, and score all rows."""
    table = read_table(path)
    wanted = [label] + ([id_column] if id_column else []) + list(drop or [])
    missing = [c for c in wanted if c not in table.columns]
    if missing:
        raise ChurnTableError(f"{path}: no column {', '.join(repr(c) for c in missing)}; "
                              f"the file has: {', '.join(map(str, table.columns))}")
    y = _label(path, table[label], positive)
    features = table.drop(columns=wanted)
    if features.empty or features.shape[1] == 0:
        raise ChurnTableError(f"{path}: no feature columns left besides {', '.join(wanted)}")
    ids = table[id_column].astype(str) if id_column else pd.Series(np.arange(len(table)).astype(str))
    try:
        X_train, X_test, y_train, y_test = train_test_split(features, y, test_size=holdout, stratify=y,
                                                            random_state=seed)
    except ValueError as exc:
        raise ChurnTableError(f"{path}: cannot hold out {holdout:.0%} of {len(y)} rows stratified by "
                              f"{label!r}: {exc}") from None
    try:
        model = ChurnModel(calibration=calibration, seed=seed).fit(X_train, y_train)  # type: ignore[arg-type]
        metrics = model.evaluate(X_test, y_test)
    except ChurnDataError as exc:
        raise ChurnTableError(f"{path}: {exc}") from None
    importance = model.feature_importance()
    risk = model.predict_proba(features)
    reasons = [json.dumps([r.as_dict() for r in rs]) for rs in model.reasons(features, top_reasons)]
    held_out = np.zeros(len(table), dtype=bool)
    held_out[table.index.get_indexer(X_test.index)] = True
    predictions = pd.DataFrame({"id": ids.to_numpy(), "churned": y, "held_out": held_out, "churn_risk": risk,
                                "churn_reasons": reasons})
    report = {
        "file": str(path), "rows": int(len(table)), "features": model.features_,
        "categorical": sorted(model.categories_), "train_rows": int(len(y_train)), "held_out": metrics,
        "calibration": calibration, "trees": int(model.booster.num_trees()),
        "importance": [{"feature": r.feature, "gain_share": round(float(r.gain_share), 4), "splits": int(r.splits)}
                       for r in importance.itertuples()],
    }
    return ChurnFit(report, predictions)
