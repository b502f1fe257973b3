"""Records arriving one at a time (an identify call): validated, hashed and stored in ``source_records``.

``incremental.resolve_records`` stores them here, then resolves them against the stored graph.
A record changed since it was last stored keeps its previous version in ``source_records_history``,
as an ingest would; an unchanged one is left alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from accord.clock import utcnow
from accord.errors import AccordError
from accord.store.backend import Store

RECORD_FIELDS = ("given_name", "family_name", "full_name", "street", "city", "region", "postcode", "country",
                 "date_of_birth", "company")
JSON_FIELDS = ("emails", "phones", "external_ids", "consent")


def record_row(record: Mapping[str, Any], index: int) -> dict[str, Any]:
    """One record (mapping) as source_records values: JSON lists and maps, raw JSON, row hash."""
    source, key = record.get("source"), record.get("record_key")
    if not source or not key:
        raise AccordError(f"records[{index}]: 'source' and 'record_key' are required")
    row: dict[str, Any] = {"source": str(source), "record_key": str(key)}
    for name in RECORD_FIELDS:
        value = record.get(name)
        row[name] = None if value is None or str(value).strip() == "" else str(value)
    for name in ("emails", "phones"):
        value = record.get(name)
        items = [value] if isinstance(value, str) else list(value or [])
        row[name] = json.dumps([str(v) for v in items if v not in (None, "")])
    for name in ("external_ids", "consent"):
        value = record.get(name) or {}
        if not isinstance(value, Mapping):
            raise AccordError(f"records[{index}].{name}: expected a mapping, got {type(value).__name__}")
        row[name] = json.dumps(dict(value), sort_keys=True, default=str)
    row["raw"] = json.dumps({k: row[k] for k in (*RECORD_FIELDS, *JSON_FIELDS)}, sort_keys=True)
    row["row_hash"] = hashlib.sha256(row["raw"].encode()).hexdigest()[:32]
    return row


def store_records(store: Store, rows: list[dict[str, Any]], run_id: str, *, new: bool = False) -> datetime:
    """Upsert records into ``source_records``: a changed one's old version moves to the history. Answers
    the time they were stored at (``valid_from``; a new record's ``first_seen_at`` too).

    ``new``: the caller has found none of them stored (a real-time placement has)."""
    now = utcnow()
    cols = ("row_hash", "raw", *RECORD_FIELDS, *JSON_FIELDS)
    json_cols = {"raw", *JSON_FIELDS}
    for row in rows:
        old = None if new else store.fetchone("SELECT row_hash, first_seen_at, deleted_at FROM source_records "
                                              "WHERE source = ? AND record_key = ?", (row["source"], row["record_key"]))
        if old is not None and old[0] == row["row_hash"] and old[2] is None:
            continue
        if old is not None:
            keep = ("row_hash", "raw", *RECORD_FIELDS, "emails", "phones", "external_ids", "consent",
                    "source_created_at", "source_updated_at", "source_file", "source_line", "first_seen_at",
                    "valid_from", "deleted_at", "run_id")
            names = ", ".join(keep)
            store.execute(f"INSERT INTO source_records_history (source, record_key, {names}, valid_to) "
                          f"SELECT source, record_key, {names}, ? FROM source_records "
                          "WHERE source = ? AND record_key = ?", (now, row["source"], row["record_key"]))
            store.execute("DELETE FROM source_records WHERE source = ? AND record_key = ?",
                          (row["source"], row["record_key"]))
        placeholders = ", ".join(store.type_sql("CAST(? AS ${JSON})") if c in json_cols else "?" for c in cols)
        store.execute(
            f"INSERT INTO source_records (source, record_key, {', '.join(cols)}, first_seen_at, valid_from, "
            f"run_id) VALUES (?, ?, {placeholders}, ?, ?, ?)",
            (row["source"], row["record_key"], *(row[c] for c in cols), old[1] if old else now, now, run_id))
    return now
