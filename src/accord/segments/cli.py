"""CLI verbs for segments and webhooks; registered on the main ``accord`` group in accord.cli.

    accord segments list | preview "DEF" | save NAME "DEF" | delete NAME | run [NAME...]
    accord segments members NAME | history NAME | cluster [--k N]
    accord webhooks status | dead-letters | replay [ID...] | deliver [--wait]
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Table

from accord.cli_context import echo_json as _echo_json, project_config as _cfg, project_store as _store

out = Console()
err = Console(stderr=True)


@click.group()
def segments() -> None:
    """Segments: define, preview, evaluate, list members and history, cluster."""


@segments.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    """Every segment with its kind, members and definition (config segments appear after a run)."""
    from accord.segments.catalog import config_segments

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        rows = store.fetchall(
            "SELECT name, kind, origin, status, members, definition, description, last_evaluated_at FROM segments "
            "ORDER BY status, name")
    known = {r[0] for r in rows}
    items = [dict(zip(("name", "kind", "origin", "status", "members", "definition", "description",
                       "last_evaluated_at"), r)) for r in rows]
    items += [{"name": s.name, "kind": s.kind, "origin": s.origin, "status": "not run yet", "members": None,
               "definition": s.definition, "description": s.description, "last_evaluated_at": None}
              for s in config_segments(cfg) if s.name not in known]
    if as_json:
        _echo_json(items)
        return
    table = Table("segment", "kind", "status", "members", "definition / description", "evaluated")
    for i in items:
        table.add_row(i["name"], f"{i['kind']} ({i['origin']})", i["status"],
                      "" if i["members"] is None else f"{i['members']:,}",
                      i["definition"] or i["description"] or "", str(i["last_evaluated_at"] or ""))
    out.print(table)


@segments.command()
@click.argument("definition")
@click.option("--sample", default=10, show_default=True, type=click.IntRange(0, 1000), help="Customers to show.")
@click.option("--consent", "consent", multiple=True, help="A consent purpose members must have granted (repeatable).")
@click.option("--save", "save_as", help="Then save it as a segment of this name.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def preview(ctx: click.Context, definition: str, sample: int, consent: tuple[str, ...], save_as: str | None,
            as_json: bool) -> None:
    """How many customers DEFINITION selects now, and a sample of them, before saving it."""
    from accord.segments.batch import preview as run_preview
    from accord.segments.catalog import save_segment

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        result = run_preview(store, definition, sample=sample, requires_consent=list(consent))
        if save_as:
            save_segment(store, cfg, save_as, definition, requires_consent=list(consent))
    if as_json:
        _echo_json({**result, "saved_as": save_as})
        return
    share = f" ({100 * result['count'] / result['customers']:.1f}% of {result['customers']:,})" \
        if result["customers"] else ""
    out.print(f"{result['condition']}\n[bold]{result['count']:,}[/] customers{share}", highlight=False)
    if result["sample"]:
        columns = sorted({k for row in result["sample"] for k in row if k != "customer_id"})
        table = Table("customer_id", *columns, title="sample")
        for row in result["sample"]:
            table.add_row(row["customer_id"], *(row.get(c, "") for c in columns))
        out.print(table)
    if save_as:
        out.print(f"saved as segment {save_as!r}; 'accord segments run' or the next 'accord run' fills it",
                  highlight=False)


@segments.command()
@click.argument("name")
@click.argument("definition")
@click.option("--description", help="What the segment is for.")
@click.option("--consent", "consent", multiple=True, help="A consent purpose members must have granted (repeatable).")
@click.option("--batch-only", is_flag=True, help="Change membership only in batch runs, not as events arrive.")
@click.pass_context
def save(ctx: click.Context, name: str, definition: str, description: str | None, consent: tuple[str, ...],
         batch_only: bool) -> None:
    """Save DEFINITION as segment NAME (outside accord.yaml)."""
    from accord.segments.catalog import save_segment

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        s = save_segment(store, cfg, name, definition, description=description, requires_consent=list(consent),
                         realtime=not batch_only)
    out.print(f"saved segment {s.name!r}: {s.effective}", highlight=False)


@segments.command()
@click.argument("name")
@click.pass_context
def delete(ctx: click.Context, name: str) -> None:
    """Retire a saved segment; its members exit (history is kept)."""
    from accord.clock import utcnow
    from accord.segments.catalog import SegmentError, retire

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        row = store.fetchone("SELECT origin, status FROM segments WHERE name = ?", (name,))
        if row is None or row[1] != "active":
            raise SegmentError(f"no active segment named {name!r}")
        if row[0] == "config":
            raise SegmentError(f"segment {name!r} is defined in the config; remove it there")
        closed = retire(store, name, utcnow(), "deleted")
    out.print(f"retired {name!r}; {closed:,} member(s) exited", highlight=False)


@segments.command()
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def run(ctx: click.Context, names: tuple[str, ...], as_json: bool) -> None:
    """Evaluate every rule segment (or NAMES) over all customers now; record enters and exits."""
    from accord.runs import tracked_run
    from accord.segments.batch import evaluate_segments

    cfg = _cfg(ctx)
    with tracked_run(cfg, "segments run") as tracked, err.status("evaluating segments"):
        report = evaluate_segments(tracked.store, cfg, tracked.run_id, names=list(names) or None)
        tracked.report = {"segments": report.as_dict()}
    if as_json:
        _echo_json(report.as_dict())
        return
    print_report(report.as_dict())


def print_report(report: dict[str, Any]) -> None:
    table = Table("segment", "members", "entered", "exited", title=f"segments ({report['seconds']:.2f} s)")
    for name, r in report["segments"].items():
        table.add_row(name, f"{r['members']:,}", f"{r['entered']:,}", f"{r['exited']:,}")
    out.print(table)
    if report.get("retired"):
        out.print(f"retired (no longer in the config): {', '.join(report['retired'])}", highlight=False)
    if report.get("webhooks_queued"):
        out.print(f"{report['webhooks_queued']:,} webhook deliveries queued", highlight=False)


@segments.command()
@click.argument("name")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--cursor", help="next_cursor of the previous page.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def members(ctx: click.Context, name: str, limit: int, cursor: str | None, as_json: bool) -> None:
    """The current members of segment NAME, by when they entered."""
    from accord.segments.catalog import load_catalog
    from accord.segments.membership import members as load_members

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        load_catalog(store, cfg).get(name)
        page = load_members(store, name, limit, cursor)
    if as_json:
        _echo_json(page)
        return
    table = Table("customer_id", "entered", "via", title=name)
    for m in page["members"]:
        table.add_row(m["customer_id"], str(m["entered_at"]), m["via"])
    out.print(table)
    if page["next_cursor"]:
        out.print(f"more: accord segments members {name} --cursor {page['next_cursor']}", highlight=False)


@segments.command()
@click.argument("name")
@click.option("--customer", help="Only this customer.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def history(ctx: click.Context, name: str, customer: str | None, limit: int, as_json: bool) -> None:
    """Who entered and left segment NAME, and when, newest first."""
    from accord.segments.membership import history as load_history

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        if not store.fetchone("SELECT 1 FROM segments WHERE name = ?", (name,)):
            from accord.segments.catalog import SegmentError

            raise SegmentError(f"no segment named {name!r} has been evaluated; see 'accord segments list'")
        rows = load_history(store, name, limit, customer)
    if as_json:
        _echo_json(rows)
        return
    table = Table("when", "customer_id", "change", "via", "run", title=f"{name} history")
    for r in rows:
        table.add_row(str(r["at"]), r["customer_id"], r["change"], r["via"], r["run_id"] or "")
    out.print(table)


@segments.command()
@click.option("--k", type=click.IntRange(2, 50), help="Use this many clusters instead of choosing by silhouette.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def cluster(ctx: click.Context, k: int | None, as_json: bool) -> None:
    """K-Means segments on standardized RFM and engagement features, each described in words."""
    from accord.segments.clustering import cluster_segments

    cfg = _cfg(ctx)
    with _store(cfg) as store, err.status("clustering") as status:
        report = cluster_segments(store, cfg, k=k, progress=lambda m: status.update(f"clustering: {m}"))
    if as_json:
        _echo_json(report.as_dict())
        return
    scores = ", ".join(f"k={k_}: {s:.3f}" for k_, s in report.silhouette.items())
    out.print(f"{report.customers:,} customers on {', '.join(report.features)}"
              f"{' (computed from events)' if report.computed_from_events else ''}; k = {report.k} "
              f"by silhouette ({scores})", highlight=False)
    table = Table("segment", "customers", "what sets it apart")
    for c in report.clusters:
        table.add_row(c["segment"], f"{c['customers']:,}", c["description"])
    out.print(table)


# --- webhooks --------------------------------------------------------------------------------------


@click.group()
def webhooks() -> None:
    """Segment webhooks: the delivery queue, dead letters and replay."""


@webhooks.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Deliveries per webhook and status (pending, sending, delivered, dead)."""
    from accord.segments.webhooks import queue_counts

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        counts = queue_counts(store)
    if as_json:
        _echo_json(counts)
        return
    table = Table("webhook", "pending", "sending", "delivered", "dead")
    for hook, c in counts.items():
        table.add_row(hook, *(f"{c.get(k, 0):,}" for k in ("pending", "sending", "delivered", "dead")))
    out.print(table)


@webhooks.command("dead-letters")
@click.option("--webhook", help="Only this webhook.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def dead_letters_cmd(ctx: click.Context, webhook: str | None, limit: int, as_json: bool) -> None:
    """Deliveries that failed every attempt, with the last error."""
    from accord.segments.webhooks import dead_letters

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        rows = dead_letters(store, webhook, limit)
    if as_json:
        _echo_json(rows)
        return
    table = Table("id", "webhook", "segment", "customer", "change", "attempts", "last attempt", "last error")
    for r in rows:
        table.add_row(r["delivery_id"][:12], r["webhook"], r["segment"], r["customer_id"], r["kind"],
                      str(r["attempts"]), str(r["last_attempt_at"]), (r["last_error"] or "")[:80])
    out.print(table)
    if rows:
        out.print("replay: accord webhooks replay ID... (or --all)", highlight=False)


@webhooks.command()
@click.argument("ids", nargs=-1)
@click.option("--all", "replay_all", is_flag=True, help="Every dead-lettered delivery (of --webhook, if given).")
@click.option("--webhook", help="Only this webhook.")
@click.pass_context
def replay(ctx: click.Context, ids: tuple[str, ...], replay_all: bool, webhook: str | None) -> None:
    """Queue dead-lettered deliveries (ID prefixes as listed) again with fresh attempts."""
    from accord.errors import AccordError
    from accord.segments.webhooks import replay as run_replay

    if not ids and not replay_all:
        raise AccordError("replay: name delivery ids (see 'accord webhooks dead-letters') or pass --all")
    cfg = _cfg(ctx)
    with _store(cfg) as store:
        n = run_replay(store, list(ids) or None, webhook)
    out.print(f"queued {n} deliver{'y' if n == 1 else 'ies'} again; 'accord serve' sends them, or "
              "'accord webhooks deliver'", highlight=False)


@webhooks.command()
@click.option("--wait", is_flag=True, help="Keep going, waiting out retry backoffs, until nothing is pending.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def deliver(ctx: click.Context, wait: bool, as_json: bool) -> None:
    """Send the deliveries that are due now (without 'accord serve')."""
    from accord.segments.webhooks import drain

    cfg = _cfg(ctx)
    with _store(cfg) as store, err.status("delivering webhooks"):
        report = drain(store, cfg, until_empty=wait)
    if as_json:
        _echo_json(report.as_dict())
        return
    out.print(f"delivered {report.delivered}, retrying later {report.retrying}, dead-lettered {report.dead}",
              highlight=False)


COMMANDS = (segments, webhooks)
