"""CLI verbs for decisions; registered on the main ``accord`` group in accord.cli.

    accord decisions train [--json]              retrain the propensity model now (a new version)
    accord decisions models [--activate N]       kept model versions; make one active (rollback)
    accord decisions show DECISION_ID            a logged decision with its offers and outcomes
    accord decisions ope [--policy rules|uniform] [--days N] [--obd]
    accord offers list | stock ITEM COUNT
    accord experiments list | report NAME [--json]
    accord models report [--json]
"""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from accord.cli_context import echo_json as _dump, project_config as _cfg, project_store as _store

out = Console()



def _f(value: float | None, spec: str = ".4f") -> str:
    return "—" if value is None else format(value, spec)


@click.group()
def decisions() -> None:
    """Personalization decisions: train the propensity model, inspect decisions, evaluate policies."""


@decisions.command("train")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def train(ctx: click.Context, as_json: bool) -> None:
    """Train a new propensity model version from the decision log and its outcomes; it becomes active."""
    from accord.decisions.training import train_model

    cfg = _cfg(ctx)
    with _store(cfg) as store, out.status("training the propensity model"):
        report = train_model(store, cfg.decisions)
    if as_json:
        _dump(report.as_dict())
    elif report.trained:
        out.print(f"model v{report.version}: {report.training_rows:,} examples ({report.positives:,} positive), "
                  f"validation AUC {_f(report.auc)}, {len(report.features)} trait features, {report.seconds}s",
                  highlight=False)
    else:
        out.print(f"not trained: {report.reason}", highlight=False)


@decisions.command("models")
@click.option("--activate", type=int, help="Make this kept version the active model.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def models_list(ctx: click.Context, activate: int | None, as_json: bool) -> None:
    """The kept propensity model versions, newest first."""
    from accord.decisions.training import activate_model, list_models

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        if activate is not None:
            activate_model(store, activate)
        rows = list_models(store)
    if as_json:
        _dump(rows)
        return
    table = Table("version", "trained at", "label", "examples", "AUC", "active")
    for m in rows:
        table.add_row(str(m["version"]), f"{m['trained_at']:%Y-%m-%d %H:%M}", m["label"], f"{m['training_rows']:,}",
                      _f(m["auc"]), "yes" if m["active"] else "")
    out.print(table)


@decisions.command("show")
@click.argument("decision_id")
@click.pass_context
def show(ctx: click.Context, decision_id: str) -> None:
    """A logged decision: context, policy, ranked offers with propensities, and outcomes."""
    from accord.decisions.log import read_decision
    from accord.errors import AccordError

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        found = read_decision(store, decision_id)
    if found is None:
        raise AccordError(f"no decision {decision_id!r}")
    _dump(found)


@decisions.command("ope")
@click.option("--policy", type=click.Choice(["rules", "uniform"]), default="rules", show_default=True,
              help="The policy to evaluate on the logged decisions.")
@click.option("--days", default=30, show_default=True, help="Logged decisions of the last N days.")
@click.option("--obd", is_flag=True, help="Instead: reproduce obp's README example on the Open Bandit Dataset "
                                          "sample (Bernoulli TS on the random policy's log).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def ope(ctx: click.Context, policy: str, days: int, obd: bool, as_json: bool) -> None:
    """Off-policy evaluation: IPW, self-normalized IPW and doubly robust estimates of a policy's value."""
    if obd:
        from accord.decisions.obd import readme_check

        with out.status("simulating Bernoulli TS (100,000 draws)"):
            result = readme_check()
        if as_json:
            _dump(result)
            return
        out.print(f"Open Bandit Dataset sample (random policy, campaign all, {result['rounds']:,} rounds)\n"
                  f"  Bernoulli TS, IPW {result['ipw']:.6f} (obp README {result['published_ipw']}), "
                  f"relative to the logged policy {result['relative_ipw']:.3f} "
                  f"(obp README {result['published_relative']})\n"
                  f"  SNIPW {result['snipw']:.6f}, DR {result['dr']:.6f}, logged CTR {result['logged_ctr']:.6f}",
                  highlight=False)
        return
    from accord.decisions.replay import evaluate_log

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        result = evaluate_log(store, cfg.decisions, policy, days)  # type: ignore[arg-type]
    if as_json:
        _dump(result)
        return
    rel = result["relative"]
    out.print(f"{policy} on {result['rounds']:,} logged decisions: IPW {result['ipw']:.4f}, SNIPW "
              f"{result['snipw']:.4f}, DR {_f(result['dr'])}; logged {result['logged']:.4f} "
              f"(relative IPW {_f(rel['ipw'], '.3f')}, DR {_f(rel['dr'], '.3f')})", highlight=False)


@click.group()
def offers() -> None:
    """Offers from accord.yaml and the API, and the stock they link to."""


@offers.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def offers_list(ctx: click.Context, as_json: bool) -> None:
    """Every offer with its priority, margin, channels, validity and eligibility."""
    from accord.decisions.offers import load_offers

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        found = load_offers(store, cfg.decisions)
    if as_json:
        _dump([o.as_dict() for o in found])
        return
    table = Table("id", "origin", "priority", "margin", "channels", "valid", "inventory", "eligibility")
    for o in found:
        s = o.spec
        table.add_row(s.id, o.origin, str(s.priority), f"{s.margin:g}", ", ".join(s.channels) or "all",
                      f"{s.valid_from or '…'} – {s.valid_to or '…'}", s.inventory or "", s.eligibility or "")
    out.print(table)


@offers.command("stock")
@click.argument("item")
@click.argument("count", type=int)
@click.pass_context
def offers_stock(ctx: click.Context, item: str, count: int) -> None:
    """Set the stock of an inventory item (offers link to it with 'inventory')."""
    from accord.decisions.offers import set_stock

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        set_stock(store, item, count)
    out.print(f"stock of {item}: {count}", highlight=False)


@click.group()
def experiments() -> None:
    """A/B tests and holdouts of decision policies."""


@experiments.command("list")
@click.pass_context
def experiments_list(ctx: click.Context) -> None:
    """The experiments in accord.yaml with their groups and planned shares."""
    cfg = _cfg(ctx)
    table = Table("name", "active", "metric", "groups", "placements")
    for e in cfg.decisions.experiments:
        groups = ", ".join(f"{g} {share:.0%}" for g, share in e.groups().items())
        table.add_row(e.name, "yes" if e.active else "no", e.metric, groups, ", ".join(e.placements) or "all")
    out.print(table)


@experiments.command("report")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def experiments_report(ctx: click.Context, name: str, as_json: bool) -> None:
    """Results of experiment NAME: t-test and CI, chance to win and expected loss, SRM check."""
    from accord.decisions.experiments import experiment_report

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        report = experiment_report(store, cfg.decisions, name).as_dict()
    if as_json:
        _dump(report)
        return
    srm = report["srm"]
    out.print(f"experiment {name}: metric {report['metric']}, baseline {report['baseline']}", highlight=False)
    groups = Table("group", "planned", "units", "mean")
    for g in report["groups"]:
        groups.add_row(g["group"], f"{g['planned_share']:.1%}", f"{g['units']:,}", f"{g['mean']:.4f}")
    out.print(groups)
    table = Table("group", "lift", "95% CI", "p-value", "chance to win", "risk (baseline / group)")
    for c in report["comparisons"]:
        f, b = c["frequentist"], c["bayesian"]
        table.add_row(c["group"], f"{f['lift']:+.2%}", f"[{f['ci'][0]:+.2%}, {f['ci'][1]:+.2%}]",
                      f"{f['p_value']:.4f}", f"{b['chance_to_win']:.1%}",
                      f"{b['risk_baseline']:.4f} / {b['risk_treatment']:.4f}")
    out.print(table)
    for c in report["comparisons"]:
        if c["frequentist"]["error"]:
            out.print(f"  {c['group']}: {c['frequentist']['error']}", highlight=False)
    verdict = "SAMPLE RATIO MISMATCH: do not trust these results" if srm["mismatch"] else "no sample ratio mismatch"
    out.print(f"SRM chi-squared p = {srm['p_value']:.4g} ({verdict}; threshold {srm['threshold']})", highlight=False)


@click.group()
def models() -> None:
    """Monitoring of the propensity model."""


@models.command("report")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def models_report_cmd(ctx: click.Context, as_json: bool) -> None:
    """Input and score drift (PSI, flagged above the threshold), calibration, demographic parity difference."""
    from accord.decisions.monitoring import models_report

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        report = models_report(store, cfg.decisions)
    if as_json:
        _dump(report)
        return
    out.print(f"model v{report['model_version']} (validation AUC {_f(report['auc'])}), "
              f"{report['decisions']:,} decisions in the last {report['window_days']} days", highlight=False)
    table = Table("input", "PSI", f"> {report['psi_threshold']}")
    for d in report["features"]:
        table.add_row(d["feature"], _f(d["psi"]), "DRIFT" if d["flagged"] else "")
    s = report["score"]
    table.add_row("(score)", _f(s["psi"]), "DRIFT" if s["flagged"] else "")
    out.print(table)
    cal = report["calibration"]
    out.print(f"calibration: {cal['rows']:,} scored offers with feedback, ECE {_f(cal['ece'])}, "
              f"Brier {_f(cal['brier'])}", highlight=False)
    fair = report["fairness"]
    if fair.get("attribute"):
        out.print(f"fairness by {fair['attribute']}: demographic parity difference (largest over offers) "
                  f"{_f(fair.get('max_difference'))}; groups {fair.get('groups')}", highlight=False)
    else:
        out.print(f"fairness: {fair['note']}", highlight=False)


COMMANDS = [decisions, offers, experiments, models]
