"""CLI verbs for profiles; registered on the main ``accord`` group in accord.cli.

    accord history CUSTOMER_ID [--json]
    accord profile CUSTOMER_ID [--json]
    accord export identities --out FILE.csv|.parquet
    accord export profiles --out FILE.csv|.parquet
    accord unmerge CUSTOMER_ID SOURCE:KEY... --reason TEXT [--actor NAME]
    accord decide SOURCE:KEY SOURCE:KEY --same|--different|--skip [--reason TEXT] [--actor NAME]
    accord review [--limit N] [--reviewer NAME]
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from accord.cli_context import project_config as _cfg, project_store as _store

out = Console()


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return f"user:{getpass.getuser()}"
    except (OSError, KeyError):  # no user name in some containers
        return "user:unknown"


@click.command()
@click.argument("customer_id")
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON.")
@click.pass_context
def history(ctx: click.Context, customer_id: str, as_json: bool) -> None:
    """Every identity change of a customer, oldest first (a retired id shows the customer it went to)."""
    from accord.profiles.audit import history as load_history
    from accord.profiles.ids import resolve_customer_id

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        current, redirected = resolve_customer_id(store, customer_id)
        events = load_history(store, customer_id)
    if as_json:
        out.print_json(json.dumps({"customer_id": current, "requested_id": customer_id, "redirected": redirected,
                                   "events": events}, default=str))
        return
    if redirected:
        out.print(f"{customer_id} was merged into [bold]{current}[/]", highlight=False)
    table = Table("#", "when", "event", "customer", "other", "records", "actor", "reason", "evidence")
    for e in events:
        records = ", ".join(e["records"][:3]) + (f" (+{len(e['records']) - 3})" if len(e["records"]) > 3 else "")
        evidence = "; ".join(
            f"{x['record_a']}~{x['record_b']} {x['rule_or_model']} "
            f"{'' if x['probability'] is None else format(x['probability'], '.3f')}".strip()
            for x in e["evidence"][:2]) + (f" (+{len(e['evidence']) - 2})" if len(e["evidence"]) > 2 else "")
        table.add_row(str(e["event_id"]), f"{e['occurred_at']:%Y-%m-%d %H:%M:%S}", e["kind"], e["customer_id"] or "",
                      e["other_customer_id"] or "", records, e["actor"], e["reason"] or "", evidence)
    out.print(table)


@click.command()
@click.argument("customer_id")
@click.option("--json", "as_json", is_flag=True, help="Print the profile as JSON.")
@click.pass_context
def profile(ctx: click.Context, customer_id: str, as_json: bool) -> None:
    """A customer's golden record, with where every value came from."""
    from accord.profiles.lookup import profile as load_profile

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        p = load_profile(store, customer_id)
    if as_json:
        out.print_json(json.dumps(p, default=str))
        return
    if p["redirected"]:
        out.print(f"{customer_id} was merged into [bold]{p['customer_id']}[/]", highlight=False)
    table = Table("attribute", "value", "record", "observed", "rule", title=f"{p['customer_id']} ({p['status']})")
    for name, v in p["attributes"].items():
        table.add_row(name, v["value"], v["record"], str(v["observed_at"] or ""), v["rule"])
    for name, values in p["multi"].items():
        for v in values:
            table.add_row(name, v["value"], f"{v['records']} record(s): {', '.join(v['sources'])}",
                          f"{v['first_seen']} .. {v['last_seen']}", v["rule"])
    out.print(table)
    out.print(f"records: {', '.join(r['record'] for r in p['records'])}", highlight=False)


@click.group()
def export() -> None:
    """Export identities or golden profiles to CSV or Parquet."""


@export.command("identities")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="FILE.csv or FILE.parquet")
@click.pass_context
def export_identities_cmd(ctx: click.Context, out_path: Path) -> None:
    """source, record_key, customer_id for every resolved record."""
    from accord.profiles.export import export_identities

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        n = export_identities(store, out_path)
    out.print(f"wrote {n} records to {out_path}", highlight=False)


@export.command("profiles")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="FILE.csv or FILE.parquet")
@click.pass_context
def export_profiles_cmd(ctx: click.Context, out_path: Path) -> None:
    """One golden record per active customer."""
    from accord.profiles.export import export_profiles

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        n = export_profiles(store, out_path)
    out.print(f"wrote {n} profiles to {out_path}", highlight=False)


@click.command()
@click.argument("customer_id")
@click.argument("records", nargs=-1, required=True)
@click.option("--reason", required=True, help="Why these records are not this customer.")
@click.option("--actor", help="Who decides (default: user:$USER).")
@click.pass_context
def unmerge(ctx: click.Context, customer_id: str, records: tuple[str, ...], reason: str, actor: str | None) -> None:
    """Split RECORDS (SOURCE:KEY) out of CUSTOMER_ID into a new customer; later runs keep them apart."""
    from accord.profiles.decisions import unmerge as do_unmerge

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        result = do_unmerge(store, customer_id, list(records), _actor(actor), reason, cfg)
    out.print(f"{', '.join(result.records)} -> new customer [bold]{result.new_customer_id}[/] "
              f"({result.constraints_added} cannot-link constraint(s))", highlight=False)


@click.command()
@click.argument("record_a")
@click.argument("record_b")
@click.option("--same", "decision", flag_value="same", help="The same person (must-link).")
@click.option("--different", "decision", flag_value="different", help="Different people (cannot-link).")
@click.option("--skip", "decision", flag_value="skip", help="Not sure; record nothing.")
@click.option("--reason", help="Why.")
@click.option("--actor", help="Who decides (default: user:$USER).")
@click.pass_context
def decide(ctx: click.Context, record_a: str, record_b: str, decision: str | None, reason: str | None,
           actor: str | None) -> None:
    """Decide a review pair (SOURCE:KEY SOURCE:KEY); takes effect at the next run."""
    from accord.errors import AccordError
    from accord.profiles.decisions import record_decision

    if decision is None:
        raise AccordError("decide: give one of --same, --different or --skip")
    cfg = _cfg(ctx)
    with _store(cfg) as store:
        kind = record_decision(store, record_a, record_b, {"same": True, "different": False}.get(decision),
                               _actor(actor), reason)
    out.print(f"recorded {kind}" if kind else "skipped; nothing recorded", highlight=False)


def _show_pair(number: int, total: int, view: dict[str, Any]) -> None:
    a, b = view["record_a"], view["record_b"]
    p, w = view["probability"], view["match_weight"]
    score = "" if p is None else f"probability {p:.3f}" + ("" if w is None else f", match weight {w:+.2f}")
    model = f" (model v{view['model_version']})" if view["model_version"] else ""
    out.print(f"\n[bold]pair {number} of {total}[/]: {a} ~ {b}  {score}{model}", highlight=False)
    table = Table("field", a, b, "")
    for f in view["fields"]:
        table.add_row(f["field"], f["a"], f["b"], "=" if f["same"] else "")
    out.print(table)
    if view["evidence"]:
        evidence = Table("comparison", "level", "weight", title="evidence (log2 weights; they sum to the match weight)")
        for e in view["evidence"]:
            evidence.add_row(e["comparison"], e["label"], f"{e['match_weight']:+.2f}")
        out.print(evidence)
    if view["note"]:
        out.print(view["note"], highlight=False)


@click.command()
@click.option("--limit", type=click.IntRange(min=1), help="Review at most N pairs.")
@click.option("--reviewer", help="Who decides (default: user:$USER).")
@click.pass_context
def review(ctx: click.Context, limit: int | None, reviewer: str | None) -> None:
    """Walk the pairs held for review, strongest first: same, different, skip or quit."""
    from accord.profiles.review import (
        apply_review_decision,
        count_pending,
        pair_view,
        pending_pairs,
    )

    cfg = _cfg(ctx)
    who = _actor(reviewer)
    counts = {"same": 0, "different": 0, "skipped": 0}
    with _store(cfg) as store:
        pairs = pending_pairs(store, limit)
        if not pairs:
            out.print("no pairs waiting for review", highlight=False)
            return
        for number, pair in enumerate(pairs, 1):
            _show_pair(number, len(pairs), pair_view(store, cfg, pair.record_a, pair.record_b))
            try:
                choice = click.prompt("[s]ame / [d]ifferent / [k] skip / [q]uit",
                                      type=click.Choice(["s", "d", "k", "q"], case_sensitive=False),
                                      show_choices=False)
            except click.Abort:  # end of input (Ctrl-D, or a pipe that ran dry) stops like quit
                choice = "q"
            if choice.lower() == "q":
                break
            kind = apply_review_decision(store, pair.record_a, pair.record_b, choice, who)
            if kind is None:
                counts["skipped"] += 1
                out.print(f"skipped {pair.record_a} ~ {pair.record_b}", highlight=False)
            else:
                counts["same" if choice.lower() == "s" else "different"] += 1
                out.print(f"recorded {kind} {pair.record_a} ~ {pair.record_b} by {who}", highlight=False)
        left = count_pending(store)
    out.print(f"\ndecided same {counts['same']}, different {counts['different']}; skipped {counts['skipped']}; "
              f"{left} left (decisions take effect at the next run)", highlight=False)


COMMANDS = (history, profile, export, unmerge, decide, review)
