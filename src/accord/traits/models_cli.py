"""CLI verbs for the model traits; registered on the main ``accord`` group in accord.cli.

    accord clv fit --transactions FILE --customer COL --date COL [--amount COL] [--calibration-end DATE]
                   [--observation-end DATE] [--horizon 365d ...] [--unit week|day] [--out FILE] [--json]
    accord clv train [--json]                 fit on the store's purchases and write the clv traits
    accord churn fit --table FILE --label COL [--id COL] [--positive V] [--holdout 0.25] [--out FILE] [--json]
                                              the churn model on any customer table, measured on held-out rows
    accord churn train [--json]               train on the store's history and write churn_risk / reasons
    accord churn show [CUSTOMER_ID] [--json]  the model's test metrics and feature importance, or one
                                              customer's risk, reasons and lifetime value
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from accord.cli_context import project_config as _cfg
from accord.errors import AccordError

out = Console()
err = Console(stderr=True)


def _date(value: str | None, option: str) -> Any:
    """A day as a pandas Timestamp (pandas is imported here, not when the CLI starts)."""
    import pandas as pd

    if value is None:
        return None
    try:
        return pd.Timestamp(value).normalize()
    except (ValueError, TypeError):
        raise AccordError(f"{option}: cannot read {value!r} as a date; expected YYYY-MM-DD") from None


def _horizons(values: tuple[str, ...]) -> list[str]:
    from accord.traits.model_settings import horizon_days

    for v in values:
        try:
            horizon_days(v)
        except ValueError as exc:
            raise AccordError(f"--horizon: {exc}") from None
    return list(values) or ["365d"]


@click.group()
def clv() -> None:
    """Lifetime value: BG/NBD purchase frequency and Gamma-Gamma spend, by maximum likelihood."""


@clv.command("fit")
@click.option("--transactions", "path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A CSV, TSV or Parquet file with one row per transaction.")
@click.option("--customer", required=True, help="The column naming the customer.")
@click.option("--date", "date_col", required=True, help="The column with the transaction date or time.")
@click.option("--amount", help="The column with the transaction amount (enables spend and CLV).")
@click.option("--date-format", help="strptime format of the date column when it is not ISO 8601.")
@click.option("--calibration-end", help="Fit on transactions up to this day; later ones test the predictions.")
@click.option("--observation-end", help="The last day of data (default: the last transaction day).")
@click.option("--horizon", "horizons", multiple=True, help="Prediction horizon, e.g. 90d, 26w, 1y (repeatable).")
@click.option("--unit", type=click.Choice(["week", "day"]), default="week", show_default=True,
              help="The time unit recency, T and alpha are expressed in.")
@click.option("--discount-rate", default=0.10, show_default=True, type=click.FloatRange(0, 1),
              help="Yearly rate future revenue is discounted at.")
@click.option("--penalizer", default=0.0, show_default=True, type=click.FloatRange(0),
              help="L2 penalty on the parameters (a little steadies small samples).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the per-customer predictions to this .csv or .parquet file.")
@click.option("--json", "as_json", is_flag=True, help="Print the fit as JSON.")
def clv_fit(path: Path, customer: str, date_col: str, amount: str | None, date_format: str | None,
            calibration_end: str | None, observation_end: str | None, horizons: tuple[str, ...], unit: str,
            discount_rate: float, penalizer: float, out_path: Path | None, as_json: bool) -> None:
    """Fit lifetime-value models on any transaction file and predict each customer's purchases and value."""
    from accord.traits.clv_fit import fit_transactions

    result = fit_transactions(
        path, customer=customer, date=date_col, amount=amount, date_format=date_format,
        calibration_end=_date(calibration_end, "--calibration-end"),
        observation_end=_date(observation_end, "--observation-end"), horizons=_horizons(horizons),
        unit=unit, annual_discount_rate=discount_rate, penalizer=penalizer)
    if out_path is not None:
        result.write_predictions(out_path)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, default=str))
        return
    _print_fit(result.as_dict())
    if out_path is not None:
        out.print(f"wrote {len(result.predictions):,} customer(s) to {out_path}")


def _print_fit(r: dict[str, Any]) -> None:
    out.print(f"{r['customers']:,} customers, {r['repeat_buyers']:,} repeat buyers; calibration "
              f"{r['calibration_start']} .. {r['calibration_end']}; unit {r['unit']}", highlight=False)
    bg = r["bgnbd"]
    out.print(f"BG/NBD      r={bg['r']:.4f} alpha={bg['alpha']:.4f} a={bg['a']:.4f} b={bg['b']:.4f}  "
              f"log-likelihood {r['bgnbd_log_likelihood']:.2f}", highlight=False)
    if r.get("gamma_gamma"):
        gg = r["gamma_gamma"]
        out.print(f"Gamma-Gamma p={gg['p']:.4f} q={gg['q']:.4f} gamma={gg['gamma']:.4f}  "
                  f"on {r['gamma_gamma_customers']:,} repeat buyers", highlight=False)
    if r.get("holdout"):
        h = r["holdout"]
        out.print(f"holdout {h['start']} .. {h['end']}: predicted {h['predicted_purchases']:,.1f} repeat "
                  f"purchases, actual {h['actual_purchases']:,}; mean absolute error per customer "
                  f"{h['mean_absolute_error']:.3f}", highlight=False)
    for w in r.get("warnings", []):
        err.print(f"[yellow]warning:[/] {w}", highlight=False)
    table = Table(title="highest predicted value" if r.get("gamma_gamma") else "most expected purchases")
    top = r["top_customers"]
    if top:
        for col in top[0]:
            table.add_column(col, justify="left" if col == "customer" else "right")
        for row in top:
            table.add_row(*(f"{v:,.3f}" if isinstance(v, float) else str(v) for v in row.values()))
        out.print(table)


@clv.command("train")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def clv_train(ctx: click.Context, as_json: bool) -> None:
    """Fit lifetime value on the store's purchase events and write p_alive and clv_* traits."""
    from accord.runs import tracked_run
    from accord.traits.model_traits import fit_store_clv

    cfg = _cfg(ctx)
    warnings: list[str] = []
    with tracked_run(cfg, "clv train") as run:
        result = fit_store_clv(run.store, cfg.clv, run.run_id, warnings, progress=_progress(as_json))
        run.report = {"clv": result, "warnings": warnings}
    _print_report({"clv": result, "warnings": warnings}, as_json)


@click.group()
def churn() -> None:
    """Churn risk: LightGBM on activity history, calibrated, with each customer's top reasons."""


@churn.command("fit")
@click.option("--table", "path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A CSV, TSV or Parquet file with one row per customer: features and the label.")
@click.option("--label", required=True, help="The column saying whether the customer churned.")
@click.option("--positive", help="The label value meaning churned (default: 1, yes, true, churned).")
@click.option("--id", "id_column", help="The column naming the customer (kept out of the features).")
@click.option("--drop", multiple=True, help="A column to leave out of the features (repeatable).")
@click.option("--holdout", default=0.25, show_default=True, type=click.FloatRange(0.05, 0.5),
              help="Share of rows held out, stratified, to measure the model on.")
@click.option("--calibration", type=click.Choice(["sigmoid", "isotonic"]), default="sigmoid", show_default=True)
@click.option("--seed", default=42, show_default=True)
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write every row's churn_risk and churn_reasons to this .csv or .parquet file.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def churn_fit(path: Path, label: str, positive: str | None, id_column: str | None, drop: tuple[str, ...],
              holdout: float, calibration: str, seed: int, out_path: Path | None, as_json: bool) -> None:
    """Train the churn model on any customer table and measure it on held-out rows."""
    from accord.traits.churn_fit import fit_table

    result = fit_table(path, label=label, id_column=id_column, positive=positive, drop=list(drop),
                       holdout=holdout, calibration=calibration, seed=seed)
    if out_path is not None:
        result.write_predictions(out_path)
    if as_json:
        click.echo(json.dumps(result.report, indent=2, default=str))
        return
    r, h = result.report, result.report["held_out"]
    out.print(f"{r['rows']:,} rows, {len(r['features'])} features ({len(r['categorical'])} categorical); "
              f"{r['trees']} trees; held out {h['rows']:,}: ROC AUC {h['roc_auc']:.4f}, Brier {h['brier']:.4f}, "
              f"churn rate {h['churn_rate']:.3f}, mean predicted {h['mean_predicted']:.3f}", highlight=False)
    _print_model_importance(r["importance"][:10])
    if out_path is not None:
        out.print(f"wrote {len(result.predictions):,} row(s) to {out_path}")


@churn.command("train")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def churn_train(ctx: click.Context, as_json: bool) -> None:
    """Train on past cutoffs, test on the latest one, and write churn_risk and churn_reasons."""
    from accord.runs import tracked_run
    from accord.traits.model_traits import train_store_churn

    cfg = _cfg(ctx)
    warnings: list[str] = []
    with tracked_run(cfg, "churn train") as run:
        result = train_store_churn(run.store, cfg.churn, run.run_id, warnings, progress=_progress(as_json))
        run.report = {"churn": result, "warnings": warnings}
    _print_report({"churn": result, "warnings": warnings}, as_json)


@churn.command("show")
@click.argument("customer_id", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def churn_show(ctx: click.Context, customer_id: str | None, as_json: bool) -> None:
    """The churn model's test metrics and feature importance; with CUSTOMER_ID, that customer's risk,
    reasons and lifetime value."""
    from accord.store import open_store
    from accord.traits.model_traits import customer_model_traits, latest_model

    cfg = _cfg(ctx)
    with open_store(cfg.store_url()) as store:
        if customer_id:
            from accord.profiles.ids import resolve_customer_id

            current, _ = resolve_customer_id(store, customer_id)
            data: dict[str, Any] = {"customer_id": current, **customer_model_traits(store, current)}
        else:
            model = latest_model(store, "churn")
            if model is None:
                raise AccordError("no churn model yet; run 'accord churn train' (or 'accord run')")
            data = model
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    if customer_id:
        _print_customer(data)
    else:
        _print_model(data)


def _print_customer(d: dict[str, Any]) -> None:
    out.print(f"customer {d['customer_id']}", highlight=False)
    if "churn_risk" not in d and "p_alive" not in d:
        out.print("  no model traits: the customer has no recent activity, or the models have not run")
    for name, value in d.items():
        if name in ("customer_id", "churn_reasons"):
            continue
        out.print(f"  {name}: {value:,.4f}" if isinstance(value, float) else f"  {name}: {value}", highlight=False)
    for r in d.get("churn_reasons") or []:
        out.print(f"    raises risk: {r['feature']} = {r['value']} (+{r['contribution']:.3f} log-odds)",
                  highlight=False)


def _print_model(m: dict[str, Any]) -> None:
    met = m["metrics"]
    out.print(f"churn model v{m['version']} trained {m['trained_at']}: window {m['params']['window_days']} days, "
              f"as of {m['params']['as_of']}", highlight=False)
    out.print(f"test snapshot: {met['rows']:,} customers, churn rate {met['churn_rate']:.3f}, ROC AUC "
              f"{met['roc_auc']:.3f}, Brier {met['brier']:.4f}", highlight=False)
    _print_model_importance(met["importance"])


def _print_model_importance(importance: list[dict[str, Any]]) -> None:
    table = Table(title="feature importance")
    for col in ("feature", "gain share", "splits"):
        table.add_column(col, justify="left" if col == "feature" else "right")
    for i in importance:
        table.add_row(i["feature"], f"{i['gain_share']:.3f}", str(i["splits"]))
    out.print(table)


def _progress(quiet: bool) -> Any:
    return None if quiet else (lambda message: err.print(message, highlight=False))


def _print_report(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    for kind in ("clv", "churn"):
        r = report.get(kind)
        if not r:
            continue
        if r.get("status") == "skipped":
            out.print(f"{kind}: skipped")
        elif kind == "clv":
            out.print(f"clv v{r['version']}: {r['customers']:,} customers, {r['repeat_buyers']:,} repeat buyers; "
                      f"BG/NBD {_fmt(r['bgnbd'])}; Gamma-Gamma {_fmt(r['gamma_gamma'] or {})}; "
                      f"{r['traits_written']:,} trait values written", highlight=False)
        else:
            t = r["test"]
            out.print(f"churn v{r['version']}: test ROC AUC {t['roc_auc']:.3f} on {t['rows']:,} customers "
                      f"(churn rate {t['churn_rate']:.3f}); {r['scored']:,} customers scored; top features "
                      f"{', '.join(r['top_features'])}", highlight=False)
    for w in report.get("warnings", []):
        err.print(f"[yellow]warning:[/] {w}", highlight=False)


def _fmt(params: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in params.items())


COMMANDS = [clv, churn]
