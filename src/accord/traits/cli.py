"""CLI verbs for computed traits; registered on the main ``accord`` group in accord.cli.

    accord traits [--as-of TIMESTAMP] [--json]     recompute every customer's traits and account traits
    accord traits show CUSTOMER_ID [--json]        one customer's traits (every stage's)
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from accord.cli_context import project_config as _cfg

out = Console()
err = Console(stderr=True)


def _print_report(report: Any) -> None:
    table = Table("step", "seconds", title=f"traits as of {report.as_of}")
    for step, seconds in report.timings.items():
        table.add_row(step, f"{seconds:.2f}")
    out.print(table)
    out.print(f"{report.customers:,} customers, {report.events_attributed:,} attributed events, "
              f"{len(report.traits)} traits, {report.rows_written:,} values written; RFM for "
              f"{report.rfm_customers:,} buyers; support sentiment for {report.support_customers:,}; "
              f"churn risk for {report.churn_risk_customers:,}", highlight=False)
    if report.accounts:
        a = report.accounts
        out.print(f"accounts: {a.accounts:,} with members ({a.company_accounts:,} from company fields; "
                  f"{a.added:,} members added, {a.removed:,} removed)", highlight=False)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    out.print(f"done in {report.seconds:.1f} s", highlight=False)


@click.group(invoke_without_command=True)
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              help="Compute windows ending at this time (UTC) instead of now (overrides traits.as_of).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def traits(ctx: click.Context, as_of: datetime | None, as_json: bool) -> None:
    """Recompute every customer's computed traits, RFM, engagement, health and account traits."""
    if ctx.invoked_subcommand is not None:
        return
    from accord.runs import tracked_run
    from accord.traits.stage import compute_traits

    cfg = _cfg(ctx)
    with tracked_run(cfg, "traits") as run:
        if as_json:
            report = compute_traits(run.store, cfg, run.run_id, as_of=as_of)
        else:
            with err.status("computing traits") as status:
                report = compute_traits(run.store, cfg, run.run_id, as_of=as_of,
                                        progress=lambda step: status.update(f"traits: {step} done"))
        run.report = {"traits": report.as_dict()}
    if as_json:
        out.print_json(json.dumps(report.as_dict(), default=str))
    else:
        _print_report(report)


@traits.command("show")
@click.argument("customer_id")
@click.option("--json", "as_json", is_flag=True, help="Print the traits as JSON.")
@click.pass_context
def show(ctx: click.Context, customer_id: str, as_json: bool) -> None:
    """Every trait of CUSTOMER_ID (a retired id shows the customer it was merged into)."""
    from accord.profiles.ids import resolve_customer_id
    from accord.store import open_store
    from accord.traits.stage import customer_trait_values

    cfg = _cfg(ctx)
    with open_store(cfg.store_url()) as store:
        current, redirected = resolve_customer_id(store, customer_id)
        values = customer_trait_values(store, current)
    if as_json:
        out.print_json(json.dumps({"customer_id": current, "requested_id": customer_id, "redirected": redirected,
                                   "traits": values}, default=str))
        return
    if redirected:
        out.print(f"{customer_id} was merged into [bold]{current}[/]", highlight=False)
    if not values:
        out.print(f"{current} has no traits yet; run 'accord traits' (or 'accord run')", highlight=False)
        return
    table = Table("trait", "value", title=current)
    for name, value in values.items():
        table.add_row(name, json.dumps(value) if isinstance(value, list) else str(value))
    out.print(table)


COMMANDS = (traits,)
