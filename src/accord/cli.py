"""The ``accord`` command: one thin function per verb; the work lives in the stage modules."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from accord import __version__
from accord.config import ProjectConfig, load_config
from accord.errors import AccordError

console = Console(stderr=True)
out = Console()


def _config(ctx: click.Context) -> ProjectConfig:
    return load_config(ctx.obj["config"])


@contextmanager
def _progress_factory(enabled: bool) -> Iterator[Callable[[str], Callable[[int, int], None]] | None]:
    if not enabled:
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        def factory(name: str) -> Callable[[int, int], None]:
            task = bar.add_task(f"reading {name}", total=None)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)
            return update
        yield factory


class AccordGroup(click.Group):
    """Prints user errors as one clear message and exits 1; tracebacks are for bugs."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AccordError as exc:
            console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
            sys.exit(1)


@click.group(cls=AccordGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "-c", "config", default="accord.yaml", show_default=True,
              help="The project file, or its folder.")
@click.version_option(__version__, prog_name="accord")
@click.pass_context
def main(ctx: click.Context, config: str) -> None:
    """Accord: unify customer records from every source into one explainable profile per person."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing accord.yaml.")
def init(directory: Path, force: bool) -> None:
    """Write a commented starter project (accord.yaml and a small example source) into DIRECTORY."""
    from accord.project import write_starter_project

    written = write_starter_project(directory, force=force)
    for path in written:
        out.print(f"wrote {path}")
    out.print(f"next: cd {directory} && accord ingest && accord quality")


@main.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Bring the store's schema up to date (also done automatically by every verb)."""
    from accord.store import connect
    from accord.store import migrate as run_migrations

    cfg = _config(ctx)
    with connect(cfg.store_url()) as store:
        applied = run_migrations(store)
    if applied:
        for m in applied:
            out.print(f"applied {m.version:04d}_{m.name}")
    else:
        out.print("the store is up to date")


def _print_ingest(reports: list[Any]) -> None:
    table = Table(title="ingest")
    for col in ("source", "read", "new", "updated", "unchanged", "deleted", "quarantined", "seconds"):
        table.add_column(col, justify="left" if col == "source" else "right")
    for r in reports:
        if r.error:
            table.add_row(r.source, "[red]failed[/]", "", "", "", "", "", f"{r.seconds:.2f}")
        else:
            table.add_row(r.source, *(f"{getattr(r, c):,}" for c in
                                      ("read", "new", "updated", "unchanged", "deleted", "quarantined")),
                          f"{r.seconds:.2f}")
    out.print(table)
    for r in reports:
        if r.error:
            console.print(f"[bold red]error:[/] {r.source}: {r.error}", highlight=False, soft_wrap=True)
        elif r.quarantined:
            console.print(f"{r.source}: {r.quarantined} row(s) quarantined; see 'accord quarantine list --source "
                          f"{r.source}'", highlight=False)


@main.command()
@click.argument("sources", nargs=-1)
@click.option("--file", "file", type=click.Path(dir_okay=False, path_type=Path),
              help="Read this file instead of the source's path (e.g. fixed quarantined rows); one SOURCE only.")
@click.option("--allow-empty-snapshot", is_flag=True,
              help="Let a full-snapshot source with no rows mark all its records deleted.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def ingest(ctx: click.Context, sources: tuple[str, ...], file: Path | None, allow_empty_snapshot: bool,
           as_json: bool) -> None:
    """Read SOURCES (all when none are named) into the store; bad rows go to quarantine."""
    from accord.runs import tracked_run
    from accord.sources import ingest as run_ingest

    cfg = _config(ctx)
    with tracked_run(cfg, "ingest") as run, _progress_factory(not as_json) as progress:
        reports = run_ingest(run.store, cfg, list(sources) or None, run_id=run.run_id, path_override=file,
                             allow_empty_snapshot=allow_empty_snapshot, progress=progress)
        run.report = {"ingest": [r.as_dict() for r in reports], "failed": any(r.error for r in reports)}
    if as_json:
        out.print_json(data=[r.as_dict() for r in reports])
    else:
        _print_ingest(reports)
    if any(r.error for r in reports):
        sys.exit(1)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def quality(ctx: click.Context, as_json: bool) -> None:
    """Data-quality report per source and field: completeness, validity, uniqueness, consistency, freshness."""
    from accord.sources.quality import quality_report, render_quality
    from accord.store import open_store

    cfg = _config(ctx)
    with open_store(cfg.store_url()) as store:
        report = quality_report(store, cfg)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        render_quality(report, out)


@main.group()
def quarantine() -> None:
    """Rows that could not be stored: list them, export them for fixing, dismiss them."""


@quarantine.command("list")
@click.option("--source", help="Only this source.")
@click.option("--all", "show_all", is_flag=True, help="Include resolved rows.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def quarantine_list(ctx: click.Context, source: str | None, show_all: bool, limit: int, as_json: bool) -> None:
    """List quarantined rows with their reason, file and line."""
    from accord.sources.quarantine import list_quarantine
    from accord.store import open_store

    cfg = _config(ctx.parent.parent)  # type: ignore[arg-type]
    with open_store(cfg.store_url()) as store:
        rows = list_quarantine(store, source=source, include_resolved=show_all, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    table = Table(title="quarantine")
    for col in ("id", "source", "file:line", "reason", "raw text"):
        table.add_column(col, overflow="fold")
    for r in rows:
        text = (r["raw_text"] or "").strip()
        table.add_row(r["quarantine_id"][:8], r["source"], f"{Path(r['file'] or '').name}:{r['line']}",
                      r["reason"], text[:80] + ("…" if len(text) > 80 else ""))
    out.print(table)


@quarantine.command("export")
@click.option("--source", required=True)
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def quarantine_export(ctx: click.Context, source: str, out_path: Path) -> None:
    """Write a source's open quarantined rows to a file (with the header for CSV) to fix and re-ingest
    with 'accord ingest SOURCE --file FILE'."""
    from accord.sources.quarantine import export_quarantine
    from accord.store import open_store

    cfg = _config(ctx.parent.parent)  # type: ignore[arg-type]
    with open_store(cfg.store_url()) as store:
        n = export_quarantine(store, cfg, cfg.source(source), out_path)
    out.print(f"wrote {n} row(s) to {out_path}; fix them, then: accord ingest {source} --file {out_path}")


@quarantine.command("dismiss")
@click.argument("ids", nargs=-1, required=True)
@click.option("--reason", required=True, help="Why these rows are not to be stored.")
@click.pass_context
def quarantine_dismiss(ctx: click.Context, ids: tuple[str, ...], reason: str) -> None:
    """Mark quarantined rows as handled without storing them (ID prefixes as listed)."""
    from accord.sources.quarantine import dismiss
    from accord.store import open_store

    cfg = _config(ctx.parent.parent)  # type: ignore[arg-type]
    with open_store(cfg.store_url()) as store:
        n = dismiss(store, list(ids), reason)
    out.print(f"dismissed {n} row(s)")


@main.command()
@click.option("--retrain", is_flag=True, help="Train a new model even when a saved one fits.")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False),
              help="CSV of labelled pairs (record_a,record_b,is_match) to train with.")
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default=None,
              help="Splink backend for the model (default: identity.engine in accord.yaml).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def resolve(ctx: click.Context, retrain: bool, labels: str | None, engine: str | None, as_json: bool) -> None:
    """Resolve identities over the current source records: rules, model, constrained clustering."""
    from accord.identity import resolve as run_resolve
    from accord.runs import tracked_run

    cfg = _config(ctx)
    with tracked_run(cfg, "resolve") as run:
        report = run_resolve(run.store, cfg, run.run_id, retrain=retrain, labels_csv=labels,
                             engine=engine)  # type: ignore[arg-type]
        run.report = {"identity": report.as_dict()}
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        _print_identity(report.as_dict())


def _print_identity(r: dict[str, Any]) -> None:
    out.print(f"identity: {r['records']:,} records -> {r['clusters']:,} customers; "
              f"{r['auto_edges']:,} merges, {r['review_edges']:,} pairs for review, "
              f"{r['rejected_edges']:,} refused; model v{r['model_version']}"
              f"{' (trained now)' if r['model_trained'] else ''}", highlight=False)
    for e in r.get("excluded_identifiers", [])[:10]:
        out.print(f"  excluded shared identifier: {e}", highlight=False)
    for w in r.get("warnings", [])[:10]:
        console.print(f"  warning: {w}", highlight=False)


@main.command()
@click.argument("record_a")
@click.argument("record_b")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def explain(ctx: click.Context, record_a: str, record_b: str, as_json: bool) -> None:
    """Why the model scores two records (each SOURCE:RECORD_KEY) as it does: each field's contribution."""
    from accord.identity import explain as run_explain
    from accord.store import open_store

    cfg = _config(ctx)
    with open_store(cfg.store_url()) as store:
        result = run_explain(store, cfg, record_a, record_b)
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    out.print(f"{record_a} vs {record_b}: match probability {result['probability']:.4f}, "
              f"match weight {result['match_weight']:+.2f} (model v{result['model_version']})", highlight=False)
    table = Table()
    for col in ("comparison", "level", "value a", "value b", "weight"):
        table.add_column(col, justify="right" if col == "weight" else "left")
    for c in result.get("comparisons", []):
        table.add_row(str(c.get("comparison")), str(c.get("level")), str(c.get("value_a", "")),
                      str(c.get("value_b", "")), f"{c.get('log2_weight', 0):+.2f}")
    out.print(table)


@main.command()
@click.option("--truth", required=True, type=click.Path(exists=True, dir_okay=False),
              help="CSV with columns source,record_key,person_id.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def evaluate(ctx: click.Context, truth: str, as_json: bool) -> None:
    """Score the resolved identities against known truth: pairwise and B-cubed precision/recall/F1."""
    from accord.evaluate import evaluate as run_evaluate
    from accord.store import open_store

    cfg = _config(ctx)
    with open_store(cfg.store_url()) as store:
        result = run_evaluate(store, truth)
    if as_json:
        click.echo(json.dumps(result, default=str))
        return
    table = Table(title="identity evaluation")
    for col in ("measure", "precision", "recall", "f1"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for name in ("pairwise", "bcubed"):
        m = result[name]
        table.add_row(name, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}")
    out.print(table)
    out.print(f"clusters: {result['clusters']['true']:,} true, {result['clusters']['found']:,} found; "
              f"people merged with someone else: {result.get('over_merged_people', 0)}", highlight=False)
    for m in result.get("worst_over_merges", [])[:5]:
        out.print(f"  over-merge: {m}", highlight=False)
    for m in result.get("missed_links", [])[:5]:
        out.print(f"  missed link: {m}", highlight=False)


@main.command()
@click.option("--people", default=1000, show_default=True, help="How many true people to generate.")
@click.option("--seed", default=42, show_default=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--start", default=None, help="First day of activity, YYYY-MM-DD (default: two years before today).")
@click.option("--months", default=24, show_default=True, help="Months of activity.")
def synth(people: int, seed: int, out_dir: Path, start: str | None, months: int) -> None:
    """Generate six source systems of sample customer data with known truth (truth.csv) and an accord.yaml."""
    from datetime import date

    from accord.synth import generate

    try:
        first_day = date.fromisoformat(start) if start else None
    except ValueError:
        raise click.BadParameter(f"expected YYYY-MM-DD; got {start!r}", param_hint="--start") from None
    if people < 1:
        raise click.BadParameter(f"expected at least 1; got {people}", param_hint="--people")
    if months < 1:
        raise click.BadParameter(f"expected at least 1; got {months}", param_hint="--months")
    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("generating", total=None)

        def progress(name: str, done: int, total: int) -> None:
            bar.update(task, description=f"wrote {name}", completed=done, total=total)

        report = generate(out_dir, people=people, seed=seed, start=first_day, months=months, progress=progress)
    out.print(report.summary())
    out.print(f"next: cd {out_dir} && accord run && accord evaluate --truth truth.csv")


@main.command()
@click.option("--full", is_flag=True, help="Rebuild from source records instead of the changes since the last run.")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
@click.pass_context
def run(ctx: click.Context, full: bool, as_json: bool) -> None:
    """Run every stage in order: ingest, then each later stage that exists."""
    from accord.pipeline import run_pipeline

    cfg = _config(ctx)
    with _progress_factory(not as_json) as progress:
        report = run_pipeline(cfg, full=full, progress=progress)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        _print_ingest(report["ingest_reports"])
        out.print(f"run {report['run_id']}: {report['status']}")
    if report["status"] != "ok":
        sys.exit(1)


@main.command()
@click.option("--dir", "directory", default="accord-demo", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="The folder to create the demo in.")
@click.option("--people", default=2000, show_default=True)
@click.option("--seed", default=7, show_default=True)
@click.option("--serve", is_flag=True, help="Then serve the API on 127.0.0.1:8000 until Ctrl-C.")
@click.pass_context
def demo(ctx: click.Context, directory: Path, people: int, seed: int, serve: bool) -> None:
    """Generate sample data in a fresh folder and run the whole pipeline on the embedded store."""
    import os
    import secrets

    from accord.demo import run_demo

    run_demo(directory, people=people, seed=seed, console=out)
    if not serve:
        out.print(f"serve it:  accord -c {directory} serve   (API docs at http://127.0.0.1:8000/docs)")
        return
    for role in ("ADMIN", "READ", "WRITE"):
        name = f"ACCORD_{role}_KEY"
        if not os.environ.get(name):
            os.environ[name] = secrets.token_urlsafe(24)
        out.print(f"{name}={os.environ[name]}")
    ctx.obj["config"] = str(directory)
    ctx.invoke(main.commands["serve"])


def _register_area_commands() -> None:
    """Verbs that live beside the area they drive."""
    from accord.api.cli import serve
    from accord.decisions.cli import COMMANDS as DECISION_COMMANDS
    from accord.privacy.cli import COMMANDS as PRIVACY_COMMANDS
    from accord.privacy.cli import guard_pii_verbs
    from accord.profiles.cli import COMMANDS as PROFILE_COMMANDS
    from accord.segments.cli import COMMANDS as SEGMENT_COMMANDS
    from accord.traits.models_cli import COMMANDS as MODEL_COMMANDS
    from accord.traits.cli import COMMANDS as TRAIT_COMMANDS

    main.add_command(serve)
    for command in DECISION_COMMANDS:
        main.add_command(command)
    for command in PROFILE_COMMANDS:
        main.add_command(command)
    for command in SEGMENT_COMMANDS:
        main.add_command(command)
    for command in MODEL_COMMANDS:
        main.add_command(command)
    for command in TRAIT_COMMANDS:
        main.add_command(command)
    for command in PRIVACY_COMMANDS:
        main.add_command(command)
    guard_pii_verbs(main)  # --purpose and the access audit on verbs that print a person's data


_register_area_commands()

if __name__ == "__main__":
    main()
