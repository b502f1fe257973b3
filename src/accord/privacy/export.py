"""Access and portability: everything Accord holds on a person, as JSON or as a zip of CSV files.

The rows come from every table the registry marks as holding people (source records and their history,
quarantined rows, events, identity signals, match edges, identifiers, traits, segment memberships,
decisions, consent history, the access log, ...), found the same way erasure finds them, plus the
golden profile with its lineage and the identity history.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

from accord.privacy.erasure import match_clause
from accord.privacy.registry import REGISTRY
from accord.privacy.pii import reveal_tree
from accord.privacy.subject import Subject, resolve_subject
from accord.store.backend import Store

FORMATS = ("json", "zip")


def _json_columns(store: Store, table: str) -> set[str]:
    return {r[0] for r in store.fetchall(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = ? AND lower(data_type) IN ('json', 'jsonb')", (table,))}


def _columns(store: Store, table: str) -> list[str]:
    return [r[0] for r in store.fetchall(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = ? ORDER BY ordinal_position", (table,))]


def person_rows(store: Store, subject: Subject) -> dict[str, list[dict[str, Any]]]:
    """table -> the person's rows (JSON columns parsed), for every table that holds people."""
    present = set(store.table_names())
    out: dict[str, list[dict[str, Any]]] = {}
    for entry in REGISTRY:
        if entry.table not in present or not entry.export or not entry.holds_people:
            continue
        where, params = match_clause(entry, subject)
        if not where:
            out[entry.table] = []
            continue
        cols = _columns(store, entry.table)
        json_cols = _json_columns(store, entry.table)
        select = ", ".join(f'CAST("{c}" AS TEXT)' if c in json_cols else f'"{c}"' for c in cols)
        rows = store.fetchall(f"SELECT {select} FROM {entry.table} WHERE {where}", params)
        out[entry.table] = [{c: (json.loads(v) if c in json_cols and v is not None else v)
                             for c, v in zip(cols, r, strict=True)} for r in rows]
    return out


def export_person(store: Store, ref: str, region: str = "US") -> dict[str, Any]:
    """Everything held on the person ``ref`` names (a customer id or any ID_TYPE:VALUE)."""
    from accord.privacy.consent import consent_history_of
    from accord.profiles.audit import history
    from accord.profiles.lookup import profile

    subject = resolve_subject(store, ref, region)
    cid = subject.customer_id
    return reveal_tree(None, {  # encrypted fields (privacy.encryption) decrypted: the person gets their values
        "exported_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "customer_ids": subject.customer_ids,
        "records": subject.record_refs,
        "profile": profile(store, cid) if cid else None,
        "identity_history": history(store, cid) if cid else [],
        "consent_history": consent_history_of(store, cid) if cid else [],
        "tables": person_rows(store, subject),
    })


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def to_json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, default=_default, indent=2, ensure_ascii=False).encode("utf-8")


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, default=_default, ensure_ascii=False)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return "" if value is None else value


def _csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    columns: list[str] = []
    for r in rows:
        columns += [c for c in r if c not in columns]
    writer = csv.DictWriter(buf, fieldnames=columns or ["(no rows)"])
    writer.writeheader()
    for r in rows:
        writer.writerow({c: _cell(r.get(c)) for c in columns})
    return buf.getvalue()


def to_zip(data: dict[str, Any]) -> bytes:
    """A zip with one CSV per table, golden.csv (attributes with lineage), identity_history.csv,
    consent_history.csv, and export.json holding the same as the JSON export."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for table, rows in data["tables"].items():
            z.writestr(f"tables/{table}.csv", _csv(rows))
        profile = data.get("profile") or {}
        golden = [{"attribute": a, **v} for a, v in (profile.get("attributes") or {}).items()]
        golden += [{"attribute": a, **v} for a, vs in (profile.get("multi") or {}).items() for v in vs]
        z.writestr("golden.csv", _csv(golden))
        z.writestr("identity_history.csv", _csv(data.get("identity_history") or []))
        z.writestr("consent_history.csv", _csv(data.get("consent_history") or []))
        z.writestr("export.json", to_json(data))
    return buf.getvalue()


def write_export(data: dict[str, Any], path: Path, fmt: str) -> int:
    payload = to_zip(data) if fmt == "zip" else to_json(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return len(payload)
