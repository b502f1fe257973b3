"""Quarantine: rows that could not be stored, kept with reason, file, line and raw text until handled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accord.config import ProjectConfig, SourceConfig
from accord.errors import AccordError
from accord.privacy.pii import reveal_tree
from accord.clock import utcnow
from accord.store import Store

_COLUMNS = ("quarantine_id", "source", "file", "line", "record_key", "reason", "raw_text", "first_run_id",
            "last_run_id", "quarantined_at", "resolved_at", "resolution")


def list_quarantine(store: Store, source: str | None = None, include_resolved: bool = False,
                    limit: int | None = None) -> list[dict[str, Any]]:
    where, params = [], []
    if source:
        where.append("source = ?")
        params.append(source)
    if not include_resolved:
        where.append("resolved_at IS NULL")
    sql = f"SELECT {', '.join(_COLUMNS)} FROM quarantine"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY source, quarantined_at, line"
    if limit:
        sql += f" LIMIT {int(limit)}"
    # Encrypted raw text and reasons (privacy.encryption) are shown decrypted, with the environment's keys.
    return [reveal_tree(None, dict(zip(_COLUMNS, row))) for row in store.fetchall(sql, params)]


def _csv_header(cfg: ProjectConfig, source: SourceConfig) -> str:
    if not source.csv.header:
        return ""
    path = cfg.resolve_path(source.path or "")
    with open(path, encoding=source.csv.encoding, errors="replace", newline="") as f:
        return f.readline().lstrip("\ufeff")


def export_quarantine(store: Store, cfg: ProjectConfig, source: SourceConfig, out: Path) -> int:
    """Write the open rows of a CSV or JSON Lines source, in its own format, for fixing and re-ingesting."""
    if source.format not in ("csv", "jsonl"):
        raise AccordError(
            f"source {source.name!r} is {source.format}: fix its quarantined rows in the source system and "
            "ingest again ('accord quarantine list' shows each row's raw values)")
    rows = list_quarantine(store, source=source.name)
    text = _csv_header(cfg, source) if source.format == "csv" else ""
    for r in rows:
        raw = r["raw_text"] or ""
        text += raw if raw.endswith("\n") else raw + "\n"
    encoding = source.csv.encoding if source.format == "csv" else "utf-8"
    out.write_text(text, encoding=encoding, errors="replace", newline="")
    return len(rows)


def dismiss(store: Store, id_prefixes: list[str], reason: str) -> int:
    count = 0
    with store.transaction():
        for prefix in id_prefixes:
            matches = store.fetchall(
                "SELECT quarantine_id FROM quarantine WHERE quarantine_id LIKE ? AND resolved_at IS NULL",
                (prefix + "%",))
            if len(matches) != 1:
                raise AccordError(f"quarantine id {prefix!r} matches {len(matches)} open rows; give more characters")
            store.execute("UPDATE quarantine SET resolved_at = ?, resolution = ? WHERE quarantine_id = ?",
                          (utcnow(), f"dismissed: {reason}", matches[0][0]))
            count += 1
    return count
