"""The model-traits stage: lifetime value and churn risk for every customer, from the store's events.

``compute_model_traits(store, cfg, run_id)`` fits BG/NBD + Gamma-Gamma on purchase events and trains
the churn model on activity history, writes the traits below into ``customer_traits`` and records
each fit as a new version in ``trait_models`` — each model in one transaction, so a failure leaves
that model's traits and versions as they were.

Traits: ``p_alive``, ``clv_expected_purchases_<h>`` and ``clv_value_<h>`` per configured horizon
``h`` (e.g. ``365d``), ``churn_risk`` (calibrated probability of no activity in the next window) and
``churn_reasons`` (JSON list of the features raising the risk most, with value and log-odds push).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from accord.clock import utcnow
from accord.config import ProjectConfig
from accord.store.backend import Store
from accord.traits.churn import ChurnDataError, ChurnModel
from accord.traits.churn_features import History, snapshot_features, snapshot_labels
from accord.traits.clv import BetaGeoModel, GammaGammaModel, ModelFitError, customer_lifetime_value
from accord.traits.clv_summary import summarize_transactions
from accord.traits.model_inputs import load_daily_activity, load_profile_flags, load_purchases
from accord.traits.model_settings import ChurnSettings, ClvSettings, horizon_days

Progress = Callable[[str], None]

CLV_TRAIT_PATTERNS = ("clv_expected_purchases_%", "clv_value_%")
CHURN_TRAITS = ("churn_risk", "churn_reasons")


@dataclass
class ModelTraitsReport:
    clv: dict[str, Any] = field(default_factory=dict)
    churn: dict[str, Any] = field(default_factory=dict)
    traits_written: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compute_model_traits(store: Store, cfg: ProjectConfig, run_id: str | None,
                         progress: Progress | None = None) -> ModelTraitsReport:
    """Fit both models on the store's history and write their traits (see the module docstring)."""
    started = time.perf_counter()
    report = ModelTraitsReport()
    if cfg.clv.enabled:
        report.clv = fit_store_clv(store, cfg.clv, run_id, report.warnings, progress)
        report.traits_written += report.clv.get("traits_written", 0)
    if cfg.churn.enabled:
        report.churn = train_store_churn(store, cfg.churn, run_id, report.warnings, progress)
        report.traits_written += report.churn.get("traits_written", 0)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


# --- lifetime value --------------------------------------------------------------------------------


def fit_store_clv(store: Store, settings: ClvSettings, run_id: str | None, warnings: list[str],
                  progress: Progress | None = None) -> dict[str, Any]:
    """BG/NBD + Gamma-Gamma on the store's purchases; writes p_alive and the clv_* traits."""
    _say(progress, "lifetime value: reading purchases")
    until = pd.Timestamp(settings.as_of) if settings.as_of else None
    purchases = load_purchases(store, settings.purchase_events, until=until)
    buyers = purchases["customer"].nunique()
    if buyers < settings.min_customers:
        warnings.append(f"clv: {buyers} customer(s) with purchases, fewer than clv.min_customers "
                        f"({settings.min_customers}); lifetime value not fitted")
        return {"status": "skipped", "customers": int(buyers)}
    tx = pd.DataFrame({"customer": purchases["customer"], "date": purchases["ts"], "amount": purchases["amount"]})
    end = pd.Timestamp(settings.as_of).normalize() if settings.as_of else tx["date"].max().normalize()
    summary = summarize_transactions(tx, calibration_end=end, observation_end=end, unit_days=settings.unit_days)
    _say(progress, f"lifetime value: fitting BG/NBD and Gamma-Gamma on {len(summary):,} customers")
    try:
        frequency = BetaGeoModel(settings.penalizer).fit(summary["frequency"], summary["recency"], summary["T"])
    except ModelFitError as exc:
        warnings.append(f"clv: {exc}; lifetime value not fitted")
        return {"status": "skipped", "customers": int(len(summary))}
    spend: GammaGammaModel | None = None
    try:
        spend = GammaGammaModel(settings.penalizer).fit(summary["frequency"], summary["monetary_value"])
    except ModelFitError as exc:
        # Purchases without amounts still give p_alive and expected purchases.
        warnings.append(f"clv: {exc}; only p_alive and clv_expected_purchases_* written, no clv_value_*")
    for model, name in ((frequency, "BG/NBD"), (spend, "Gamma-Gamma")):
        if model is not None and model.at_bounds_:
            warnings.append(f"clv: {name} parameter(s) {', '.join(model.at_bounds_)} ran off to an extreme (the data "
                            "cannot pin them down); clv.penalizer: 0.001 steadies the fit")
    x, t_x, big_t = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    columns: dict[str, np.ndarray] = {"p_alive": frequency.p_alive(x, t_x, big_t)}
    for h in settings.horizons:
        days = horizon_days(h)
        columns[f"clv_expected_purchases_{h}"] = frequency.expected_purchases(days / settings.unit_days, x, t_x, big_t)
        if spend is not None:
            columns[f"clv_value_{h}"] = customer_lifetime_value(
                frequency, spend, summary, horizon_days=days, unit_days=settings.unit_days,
                annual_discount_rate=settings.annual_discount_rate)
    now = utcnow()
    rows = _number_traits(summary.index, columns, now)
    params = {"bgnbd": frequency.params.as_dict(), "gamma_gamma": spend.params.as_dict() if spend else None,
              "unit": settings.unit, "horizons": settings.horizons,
              "annual_discount_rate": settings.annual_discount_rate, "penalizer": settings.penalizer,
              "observation_end": end.date().isoformat()}
    metrics = {"customers": int(len(summary)), "repeat_buyers": int((summary["frequency"] > 0).sum()),
               "bgnbd_log_likelihood": frequency.log_likelihood_,
               "gamma_gamma_log_likelihood": spend.log_likelihood_ if spend else None,
               "gamma_gamma_customers": spend.n_customers_ if spend else 0}
    with store.transaction():
        _delete_traits(store, names=["p_alive"], patterns=CLV_TRAIT_PATTERNS)
        store.load_arrow("customer_traits", in_customer_order(rows))
        version = _record_model(store, "clv", run_id, params, metrics, None, now)
    return {"status": "fitted", "version": version, **params, **metrics, "traits_written": rows.num_rows}


# --- churn risk ------------------------------------------------------------------------------------


def train_store_churn(store: Store, settings: ChurnSettings, run_id: str | None, warnings: list[str],
                      progress: Progress | None = None) -> dict[str, Any]:
    """Train on past cutoffs (oldest snapshots train, the next-to-last calibrates, the last one tests),
    then score every recently active customer as of now; writes churn_risk and churn_reasons."""
    _say(progress, "churn: reading activity")
    activity = load_daily_activity(store, settings.exclude_events)
    purchases = load_purchases(store, settings.purchase_events)
    if activity.empty:
        warnings.append("churn: no customer activity attributed to customers; churn model not trained")
        return {"status": "skipped"}
    flags = load_profile_flags(store)
    history = History.build(activity, purchases)
    as_of = (pd.Timestamp(settings.as_of).normalize() if settings.as_of
             else history.last_day + pd.Timedelta(days=1))
    window = pd.Timedelta(days=settings.window_days)
    snapshots = []
    for k in range(1, settings.snapshots + 1):
        cutoff = as_of - k * window
        X = snapshot_features(history, cutoff, lookback_days=settings.lookback_days, flags=flags)
        y = snapshot_labels(history, X.index, cutoff, settings.window_days, settings.label)
        snapshots.append((cutoff, X, y))
    sizes = [{"cutoff": c.date().isoformat(), "rows": int(len(y)), "churned": int(y.sum())} for c, _, y in snapshots]
    (_, X_test, y_test), (_, X_cal, y_cal) = snapshots[0], snapshots[1]
    X_train = pd.concat([X for _, X, _ in snapshots[2:]])
    y_train = pd.concat([y for _, _, y in snapshots[2:]])
    too_small = [s for s in sizes if s["rows"] < settings.min_rows]
    if len(y_train) < settings.min_rows or too_small:
        warnings.append(f"churn: too little history for {settings.snapshots} snapshots {settings.window_days} days "
                        f"apart before {as_of.date()} (rows per snapshot: "
                        f"{', '.join(str(s['rows']) for s in sizes)}; churn.min_rows is {settings.min_rows}); "
                        "churn model not trained")
        return {"status": "skipped", "snapshots": sizes}
    _say(progress, f"churn: training LightGBM on {len(y_train):,} rows")
    try:
        model = ChurnModel(calibration=settings.calibration).fit(
            X_train, y_train, X_calibration=X_cal, y_calibration=y_cal)
        metrics = model.evaluate(X_test, y_test)
    except ChurnDataError as exc:
        warnings.append(f"churn: {exc}; churn model not trained")
        return {"status": "skipped", "snapshots": sizes}
    _say(progress, "churn: scoring customers")
    X_now = snapshot_features(history, as_of, lookback_days=settings.lookback_days, flags=flags)
    importance = model.feature_importance()
    params = {"window_days": settings.window_days, "label": settings.label, "lookback_days": settings.lookback_days,
              "calibration": settings.calibration, "as_of": as_of.date().isoformat(), "snapshots": sizes,
              "trees": int(model.booster.num_trees())}
    metrics = {**metrics, "importance": [
        {"feature": r.feature, "gain_share": round(float(r.gain_share), 4), "splits": int(r.splits)}
        for r in importance.itertuples()]}
    now = utcnow()
    rows = _churn_traits(model, X_now, settings.top_reasons, now)
    with store.transaction():
        _delete_traits(store, names=list(CHURN_TRAITS), patterns=())
        store.load_arrow("customer_traits", in_customer_order(rows))
        version = _record_model(store, "churn", run_id, params, metrics, model.to_json(), now)
    return {"status": "trained", "version": version, "scored": int(len(X_now)), **params,
            "test": {k: v for k, v in metrics.items() if k != "importance"},
            "top_features": [i["feature"] for i in metrics["importance"][:5]],
            "traits_written": rows.num_rows}


def _churn_traits(model: ChurnModel, X: pd.DataFrame, top: int, now: Any) -> pa.Table:
    if X.empty:
        return _empty_traits()
    risk = model.predict_proba(X)
    reasons = [json.dumps([r.as_dict() for r in rs]) for rs in model.reasons(X, top)]
    ids = [str(c) for c in X.index]
    n = len(ids)
    return pa.table({
        "customer_id": pa.array(ids + ids, pa.string()),
        "name": pa.array(["churn_risk"] * n + ["churn_reasons"] * n, pa.string()),
        "value_num": pa.array(list(map(float, risk)) + [None] * n, pa.float64()),
        "value_text": pa.array([None] * n + reasons, pa.string()),
        "computed_at": pa.array([now] * (2 * n), pa.timestamp("us")),
    })


# --- writing ---------------------------------------------------------------------------------------


def in_customer_order(rows: pa.Table) -> pa.Table:
    """Trait rows sorted by customer, so that on DuckDB one customer's rows share a row group and its
    zone maps find them without a scan (the real-time paths read traits one customer at a time)."""
    return rows.sort_by([("customer_id", "ascending"), ("name", "ascending")])


def _number_traits(customers: pd.Index, columns: dict[str, np.ndarray], now: Any) -> pa.Table:
    ids = [str(c) for c in customers]
    names: list[str] = []
    values: list[float] = []
    for name, column in columns.items():
        names.extend([name] * len(ids))
        values.extend(float(v) for v in column)
    total = len(names)
    return pa.table({
        "customer_id": pa.array(ids * len(columns), pa.string()),
        "name": pa.array(names, pa.string()),
        "value_num": pa.array(values, pa.float64()),
        "value_text": pa.array([None] * total, pa.string()),
        "computed_at": pa.array([now] * total, pa.timestamp("us")),
    })


def _empty_traits() -> pa.Table:
    return pa.table({"customer_id": pa.array([], pa.string()), "name": pa.array([], pa.string()),
                     "value_num": pa.array([], pa.float64()), "value_text": pa.array([], pa.string()),
                     "computed_at": pa.array([], pa.timestamp("us"))})


def _delete_traits(store: Store, names: list[str], patterns: tuple[str, ...]) -> None:
    clauses = [f"name IN ({', '.join('?' for _ in names)})"] if names else []
    clauses += ["name LIKE ?" for _ in patterns]
    store.execute(f"DELETE FROM customer_traits WHERE {' OR '.join(clauses)}", [*names, *patterns])


def _record_model(store: Store, kind: str, run_id: str | None, params: dict[str, Any], metrics: dict[str, Any],
                  artifact: str | None, now: Any) -> int:
    version = int(store.scalar("SELECT COALESCE(MAX(version), 0) FROM trait_models WHERE kind = ?", [kind])) + 1
    store.execute(store.type_sql(
        "INSERT INTO trait_models (kind, version, trained_at, run_id, params, metrics, artifact) "
        "VALUES (?, ?, ?, ?, CAST(? AS ${JSON}), CAST(? AS ${JSON}), ?)"),
        [kind, version, now, run_id, json.dumps(params, default=str), json.dumps(metrics, default=str), artifact])
    return version


# --- reading back ----------------------------------------------------------------------------------


def latest_model(store: Store, kind: str) -> dict[str, Any] | None:
    """The newest version of a model kind ('clv' or 'churn'), with params and metrics, or None."""
    row = store.fetchone("SELECT version, trained_at, run_id, params, metrics FROM trait_models WHERE kind = ? "
                         "ORDER BY version DESC LIMIT 1", [kind])
    if row is None:
        return None
    version, trained_at, run, params, metrics = row
    return {"kind": kind, "version": int(version), "trained_at": trained_at, "run_id": run,
            "params": json.loads(params), "metrics": json.loads(metrics)}


def load_churn_model(store: Store) -> ChurnModel | None:
    """The newest trained churn model, ready to score, or None."""
    text = store.scalar("SELECT artifact FROM trait_models WHERE kind = 'churn' ORDER BY version DESC LIMIT 1")
    return ChurnModel.from_json(text) if text else None


def customer_model_traits(store: Store, customer_id: str) -> dict[str, Any]:
    """A customer's model traits by name (numbers as floats, churn_reasons parsed)."""
    rows = store.fetchall(
        "SELECT name, value_num, value_text FROM customer_traits WHERE customer_id = ? AND "
        "(name IN ('p_alive', 'churn_risk', 'churn_reasons') OR name LIKE 'clv_expected_purchases_%' "
        "OR name LIKE 'clv_value_%') ORDER BY name", [customer_id])
    out: dict[str, Any] = {}
    for name, num, text in rows:
        out[name] = json.loads(text) if name == "churn_reasons" and text else (num if text is None else text)
    return out


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)
