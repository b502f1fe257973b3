"""``accord privacy``: consent, export, erasure, purge, retention, receipts and the access audit.

    accord privacy consent ID [--set PURPOSE=STATUS ...] [--source S] [--json]
    accord privacy export ID [--format json|zip] --out FILE [--purpose TEXT]
    accord privacy erase ID [--purpose TEXT] [--yes] [--no-purge] [--json]
    accord privacy purge
    accord privacy retention [--dry-run] [--json]
    accord privacy receipts [RECEIPT_ID] [--json]
    accord privacy audit [--customer ID] [--limit N] [--json]
    accord privacy tables
    accord privacy rotate-key [--json] / new-key

ID is a customer id (cus_00000042) or any identifier (email:ann@example.com, phone:+14155550100, crm_id:C-17).
Verbs that read PII log who (the OS user), what (the customer id), when and ``--purpose``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from accord.cli_context import echo_json as _print_json, project_config as _cfg, project_store as _store

out = Console()
err = Console(stderr=True)


@click.group()
def privacy() -> None:
    """Consent, access and erasure requests, retention and the access audit."""


@privacy.command()
@click.argument("ref")
@click.option("--set", "decisions", multiple=True, metavar="PURPOSE=STATUS",
              help="Record a decision, e.g. --set email_marketing=withdrawn (repeatable).")
@click.option("--source", default="cli", show_default=True, help="Where the decision was taken.")
@click.option("--lawful-basis", default=None, help="Lawful basis of the decisions (default: the purpose's).")
@click.option("--purpose", "access_purpose", default=None, help="Why you are looking (logged).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def consent(ctx: click.Context, ref: str, decisions: tuple[str, ...], source: str, lawful_basis: str | None,
            access_purpose: str | None, as_json: bool) -> None:
    """A customer's consent per purpose and its history; --set records decisions."""
    from accord.privacy.access import log_access, os_actor
    from accord.privacy.consent import consent_history_of, current_consent, set_consent
    from accord.privacy.settings import privacy_settings
    from accord.privacy.subject import resolve_subject

    cfg = _cfg(ctx)
    settings = privacy_settings(cfg.privacy)
    parsed = []
    for d in decisions:
        purpose, sep, status = d.partition("=")
        if not sep:
            raise click.BadParameter(f"expected PURPOSE=STATUS, e.g. email_marketing=granted; got {d!r}",
                                     param_hint="--set")
        parsed.append({"purpose": purpose.strip(), "status": status.strip(), "lawful_basis": lawful_basis})
    with _store(cfg) as store:
        subject = resolve_subject(store, ref, cfg.identity.default_region)
        if subject.customer_id is None:
            raise click.ClickException(f"{ref}: no customer has this identifier")
        cid = subject.customer_id
        if parsed:
            set_consent(store, settings, cid, parsed, source, os_actor())
        current = current_consent(store, settings, cid)
        past = consent_history_of(store, cid)
        with store.transaction():
            log_access(store, actor=os_actor(), channel="cli", action="consent.write" if parsed else "consent.read",
                       customer_id=cid, purpose=access_purpose)
    if as_json:
        _print_json({"customer_id": cid, "consent": current, "history": past})
        return
    table = Table("purpose", "status", "decided at", "source", "lawful basis", title=f"consent of {cid}")
    for c in current:
        table.add_row(c["purpose"], c["status"] + ("" if c["recorded"] else " (default)"),
                      str(c["decided_at"] or ""), c["source"], c["lawful_basis"] or "")
    out.print(table)
    out.print(f"{len(past)} decision(s) in the history; --json shows them", highlight=False)


@privacy.command()
@click.argument("ref")
@click.option("--format", "fmt", type=click.Choice(["json", "zip"]), default="json", show_default=True)
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--purpose", default=None, help="Why the data is exported (logged), e.g. 'access request 42'.")
@click.pass_context
def export(ctx: click.Context, ref: str, fmt: str, out_path: Path, purpose: str | None) -> None:
    """Everything held on a person: records, history, events, golden profile with lineage, traits, segments,
    decisions, consent and identity history, quarantined rows; JSON, or a zip of CSV files."""
    from accord.privacy.access import log_access, os_actor
    from accord.privacy.export import export_person, write_export

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        data = export_person(store, ref, cfg.identity.default_region)
        with store.transaction():
            log_access(store, actor=os_actor(), channel="cli", action="export",
                       customer_id=data["customer_ids"][0] if data["customer_ids"] else None, purpose=purpose,
                       detail=fmt)
    size = write_export(data, out_path, fmt)
    rows = sum(len(v) for v in data["tables"].values())
    out.print(f"wrote {out_path} ({size:,} bytes): {rows} row(s) from {sum(1 for v in data['tables'].values() if v)} "
              f"table(s) for {', '.join(data['customer_ids']) or 'no customer id'}", highlight=False)


@privacy.command()
@click.argument("ref")
@click.option("--purpose", default=None, help="The request behind the erasure (logged, kept on the receipt).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--purge/--no-purge", default=True, show_default=True,
              help="Then rewrite the store so no erased byte remains in its files (DuckDB; VACUUM FULL on "
                   "PostgreSQL).")
@click.option("--json", "as_json", is_flag=True, help="Print the receipt as JSON.")
@click.pass_context
def erase(ctx: click.Context, ref: str, purpose: str | None, yes: bool, purge: bool, as_json: bool) -> None:
    """Erase a person from every table; store a receipt (counts per table, no PII) and suppress their
    identifiers so re-ingesting their rows does not bring them back."""
    from accord.privacy.access import os_actor
    from accord.privacy.erasure import erase as run_erase
    from accord.privacy.purge import purge as run_purge

    cfg = _cfg(ctx)
    if not yes:
        click.confirm(f"Erase {ref} from every table of {cfg.store.split('?')[0]}? This cannot be undone",
                      abort=True)
    with _store(cfg) as store:
        receipt = run_erase(store, ref, actor=os_actor(), purpose=purpose, region=cfg.identity.default_region,
                            salt_env=cfg.privacy.suppression_salt_env)
    purged = run_purge(cfg.store_url()) if purge else None
    if as_json:
        _print_json({**receipt.as_dict(), "purge": purged})
        return
    who = ", ".join(receipt.customer_ids) or "an identifier no customer has"
    out.print(f"erased {who}: "
              f"{receipt.total} row(s) in {sum(1 for n in receipt.counts.values() if n)} table(s), "
              f"{receipt.suppressed} identifier(s) suppressed, {receipt.seconds:.3f} s; receipt {receipt.receipt_id}",
              highlight=False)
    for table, n in receipt.counts.items():
        if n:
            out.print(f"  {table}: {n}", highlight=False)
    for note in receipt.notes:
        out.print(f"  note: {note}", highlight=False)
    if purged:
        out.print(f"purged the store files in {purged['seconds']} s", highlight=False)


@privacy.command()
@click.pass_context
def purge(ctx: click.Context) -> None:
    """Rewrite the store so bytes of erased people are gone from its files (run after API erasures; stop
    'accord serve' first when the store is DuckDB)."""
    from accord.privacy.purge import purge as run_purge

    report = run_purge(_cfg(ctx).store_url())
    out.print(f"purged: {report['receipts']} erasure(s), {report['seconds']} s", highlight=False)


@privacy.command()
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def retention(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Delete rows older than their table's retention period (privacy.retention in accord.yaml)."""
    from accord.privacy.retention import enforce_retention
    from accord.privacy.settings import privacy_settings

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        report = enforce_retention(store, privacy_settings(cfg.privacy), dry_run=dry_run)
    if as_json:
        _print_json(report.as_dict())
        return
    if not report.rules:
        out.print("no retention periods configured (privacy.retention in accord.yaml)")
        return
    table = Table("table", "event", "period", "older than", "would delete" if dry_run else "deleted")
    for r in report.rules:
        table.add_row(r.table, r.event or "", r.period, f"{r.cutoff:%Y-%m-%d %H:%M}", f"{r.rows:,}")
    out.print(table)


@privacy.command()
@click.argument("receipt_id", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def receipts(ctx: click.Context, receipt_id: str | None, as_json: bool) -> None:
    """Erasure receipts: when, by whom, why, rows per table; never the person's identifiers."""
    from accord.privacy.erasure import receipts as load

    with _store(_cfg(ctx)) as store:
        found = load(store, receipt_id)
    if as_json:
        _print_json([r.as_dict() for r in found])
        return
    table = Table("receipt", "erased at", "actor", "purpose", "customers", "rows", "purged")
    for r in found:
        table.add_row(r.receipt_id, f"{r.erased_at:%Y-%m-%d %H:%M:%S}", r.actor, r.purpose or "",
                      ", ".join(r.customer_ids), str(r.total), "yes" if r.purged_at else "pending")
    out.print(table)


@privacy.command()
@click.option("--customer", default=None, help="Only accesses to this customer id.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def audit(ctx: click.Context, customer: str | None, limit: int, as_json: bool) -> None:
    """The access audit, newest first: who read, exported, changed or erased whose data, and why."""
    from accord.privacy.access import access_entries

    with _store(_cfg(ctx)) as store:
        rows = access_entries(store, customer, limit=limit)
    if as_json:
        _print_json(rows)
        return
    table = Table("when", "who", "role", "via", "action", "customer", "purpose", "detail")
    for r in rows:
        table.add_row(f"{r['accessed_at']:%Y-%m-%d %H:%M:%S}", r["actor"], r["role"] or "", r["channel"], r["action"],
                      r["customer_id"] or "", r["purpose"] or "", r["detail"] or "")
    out.print(table)


@privacy.command("rotate-key")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def rotate_key(ctx: click.Context, as_json: bool) -> None:
    """Re-encrypt every encrypted value with the newest key of $ACCORD_PII_KEYS (keys newest first, comma-separated).
    Resumable: values already under the newest key are skipped. Then the old keys can be dropped."""
    from accord.privacy.encryption import rotate_keys
    from accord.privacy.pii import PiiCodec

    codec = PiiCodec.from_env()  # a missing key stops here, before the store is opened
    with _store(_cfg(ctx)) as store:
        report = rotate_keys(store, codec)
    if as_json:
        _print_json(report.as_dict())
        return
    done = ", ".join(f"{t} {n:,}" for t, n in report.tables.items()) or "nothing to re-encrypt"
    out.print(f"re-encrypted with the newest key: {done}; already current: {report.current:,} rows; "
              f"{report.seconds} s", highlight=False)


@privacy.command("new-key")
def new_key_command() -> None:
    """Print a new encryption key for $ACCORD_PII_KEYS (put it first to rotate)."""
    from accord.privacy.pii import new_key

    click.echo(new_key())


@privacy.command()
def tables() -> None:
    """Every table of the store and how erasure, export and retention treat it (the privacy registry)."""
    from accord.privacy.registry import REGISTRY

    table = Table("table", "erasure", "person found by", "retention column", "why kept")
    for e in REGISTRY:
        how = ", ".join(filter(None, [
            f"customer ({', '.join(e.customer)})" if e.customer else "",
            f"record ({', '.join(e.record)})" if e.record else "",
            f"record refs ({', '.join(e.record_refs)})" if e.record_refs else "",
            "identifiers (" + ", ".join(v for _, v in e.identifiers) + ")" if e.identifiers else "",
            f"text ({', '.join(e.text)})" if e.text else "",
            f"parent {e.parent[1]}" if e.parent else ""]))
        table.add_row(e.table, e.action, how, e.retention_column or "", e.reason)
    out.print(table)


# --- --purpose and access logging on the verbs that read PII --------------------------------------

PII_VERBS = {"profile": "customer_id", "history": "customer_id"}
"""Verbs of other areas that print a person's data -> the argument naming the customer."""


def guard_pii_verbs(group: click.Group) -> None:
    """Give each verb of PII_VERBS a ``--purpose`` option and log every use in the access audit."""
    for name, arg in PII_VERBS.items():
        command = group.commands.get(name)
        if command is None or getattr(command, "_accord_guarded", False):
            continue
        command.params.append(click.Option(["--purpose"], default=None,
                                           help="Why you are looking at this person's data (logged)."))
        command.callback = _logged(command.callback, name, arg)  # type: ignore[arg-type]
        command._accord_guarded = True  # type: ignore[attr-defined]


def _logged(callback: Callable[..., Any], verb: str, arg: str) -> Callable[..., Any]:
    @functools.wraps(callback)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        purpose = kwargs.pop("purpose", None)
        result = callback(*args, **kwargs)
        ctx = click.get_current_context()
        try:
            _log_cli_read(ctx, verb, kwargs.get(arg), purpose)
        except Exception as exc:  # noqa: BLE001 - the data was shown; say the log failed, loudly
            err.print(f"warning: could not write the access audit: {exc}", highlight=False)
        return result
    return wrapper


def _log_cli_read(ctx: click.Context, verb: str, ref: Any, purpose: str | None) -> None:
    from accord.privacy.access import log_access, os_actor
    from accord.profiles.ids import resolve_customer_id

    cfg = _cfg(ctx)
    with _store(cfg) as store:
        try:
            customer_id, _ = resolve_customer_id(store, str(ref))
        except Exception:  # noqa: BLE001 - an unknown id was already reported by the verb
            customer_id = None
        with store.transaction():
            log_access(store, actor=os_actor(), channel="cli", action=f"{verb}.read", customer_id=customer_id,
                       purpose=purpose)


COMMANDS = [privacy]
