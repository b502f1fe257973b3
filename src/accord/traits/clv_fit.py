"""``accord clv fit``: lifetime value for any transaction file, with an optional holdout check."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from accord.traits.clv import BetaGeoModel, GammaGammaModel, ModelFitError, customer_lifetime_value
from accord.traits.clv_summary import TransactionsError, read_transactions, summarize_transactions
from accord.traits.model_settings import horizon_days

TOP_CUSTOMERS = 10


@dataclass
class ClvFit:
    """The fitted models, the per-customer predictions and the numbers `accord clv fit` reports."""

    summary: dict[str, Any]
    predictions: pd.DataFrame = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        return self.summary

    def write_predictions(self, path: Path) -> None:
        frame = self.predictions.reset_index()
        for col in ("first_purchase", "last_purchase"):
            frame[col] = frame[col].dt.date.astype(str)
        if path.suffix.lower() in (".parquet", ".pq"):
            frame.to_parquet(path, index=False)
        elif path.suffix.lower() == ".csv":
            frame.to_csv(path, index=False, float_format="%.6g")
        else:
            raise TransactionsError(f"--out {path}: expected a .csv or .parquet file")


def fit_transactions(
    path: Path,
    *,
    customer: str,
    date: str,
    amount: str | None = None,
    date_format: str | None = None,
    calibration_end: pd.Timestamp | None = None,
    observation_end: pd.Timestamp | None = None,
    horizons: list[str] | None = None,
    unit: str = "week",
    annual_discount_rate: float = 0.10,
    penalizer: float = 0.0,
) -> ClvFit:
    """Read ``path``, build the summary, fit BG/NBD (and Gamma-Gamma when there is an amount) and predict.

    With a calibration end before the observation end, the models are fitted on the calibration
    period and the report compares predicted with actual repeat purchases in the holdout period.
    """
    horizons = horizons or ["365d"]
    unit_days = 7.0 if unit == "week" else 1.0
    tx = read_transactions(path, customer=customer, date=date, amount=amount, date_format=date_format)
    last_day = tx["date"].max()
    if calibration_end is not None and calibration_end < tx["date"].min():
        raise TransactionsError(f"{path}: --calibration-end {calibration_end.date()} is before the first "
                                f"transaction ({tx['date'].min().date()})")
    obs_end = observation_end if observation_end is not None else last_day
    summary = summarize_transactions(tx, calibration_end=calibration_end, observation_end=obs_end, unit_days=unit_days)
    x, t_x, big_t = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    try:
        frequency = BetaGeoModel(penalizer).fit(x, t_x, big_t)
    except ModelFitError as exc:
        raise TransactionsError(f"{path}: {exc}") from None
    spend: GammaGammaModel | None = None
    if amount:
        try:
            spend = GammaGammaModel(penalizer).fit(x, summary["monetary_value"])
        except ModelFitError as exc:
            raise TransactionsError(f"{path}: {exc}") from None

    predictions = summary.copy()
    predictions["p_alive"] = frequency.p_alive(x, t_x, big_t)
    for h in horizons:
        days = horizon_days(h)
        predictions[f"expected_purchases_{h}"] = frequency.expected_purchases(days / unit_days, x, t_x, big_t)
        if spend is not None:
            predictions[f"clv_{h}"] = customer_lifetime_value(
                frequency, spend, summary, horizon_days=days, unit_days=unit_days,
                annual_discount_rate=annual_discount_rate)
    if spend is not None:
        predictions["expected_average_value"] = spend.expected_average_value(x, summary["monetary_value"])

    cal_end_day = calibration_end if calibration_end is not None else obs_end
    report: dict[str, Any] = {
        "file": str(path),
        "customers": int(len(summary)),
        "repeat_buyers": int((summary["frequency"] > 0).sum()),
        "transactions": int(len(tx)),
        "unit": unit,
        "calibration_start": summary["first_purchase"].min().date().isoformat(),
        "calibration_end": pd.Timestamp(cal_end_day).date().isoformat(),
        "bgnbd": frequency.params.as_dict(),
        "bgnbd_log_likelihood": frequency.log_likelihood_,
        "horizons": horizons,
        "annual_discount_rate": annual_discount_rate,
    }
    report["warnings"] = _boundary_warnings(frequency, spend)
    if spend is not None:
        report["gamma_gamma"] = spend.params.as_dict()
        report["gamma_gamma_customers"] = spend.n_customers_
        report["gamma_gamma_log_likelihood"] = spend.log_likelihood_
    if "frequency_holdout" in summary.columns:
        duration = float(summary["duration_holdout"].iloc[0])
        predicted = frequency.expected_purchases(duration, x, t_x, big_t)
        actual = summary["frequency_holdout"].to_numpy()
        predictions["expected_purchases_holdout"] = predicted
        report["holdout"] = {
            "start": (pd.Timestamp(cal_end_day) + pd.Timedelta(days=1)).date().isoformat(),
            "end": pd.Timestamp(obs_end).date().isoformat(),
            "duration": duration,
            "predicted_purchases": float(predicted.sum()),
            "actual_purchases": int(actual.sum()),
            "mean_absolute_error": float(np.mean(np.abs(predicted - actual))),
        }
    rank_by = f"clv_{horizons[0]}" if spend is not None else f"expected_purchases_{horizons[0]}"
    top = predictions.sort_values(rank_by, ascending=False).head(TOP_CUSTOMERS)
    shown = ["frequency", "recency", "T", "p_alive", f"expected_purchases_{horizons[0]}"]
    if spend is not None:
        shown += ["monetary_value", rank_by]
    report["top_customers"] = [{"customer": str(idx), **{c: float(row[c]) for c in shown}}
                               for idx, row in top.iterrows()]
    return ClvFit(report, predictions)


def _boundary_warnings(frequency: BetaGeoModel, spend: GammaGammaModel | None) -> list[str]:
    """Parameters the data could not pin down (the fit ran off to an extreme), said plainly."""
    out = []
    if frequency.at_bounds_:
        out.append(f"BG/NBD parameter(s) {', '.join(frequency.at_bounds_)} ran off to an extreme (beyond 1e+-3): "
                   "the purchases show little variation between customers or little drop-out; predictions are "
                   "usable but the parameters are not (more customers, or --penalizer 0.001, help)")
    if spend is not None and spend.at_bounds_:
        out.append(f"Gamma-Gamma parameter(s) {', '.join(spend.at_bounds_)} ran off to an extreme (beyond 1e+-3): "
                   "spend varies little between customers, so everyone's expected spend is close to the mean")
    return out
