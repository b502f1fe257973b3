"""Hand-made records and clusterings for the profiles tests."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pandas as pd

from accord.store import Store

T0 = datetime(2024, 1, 1)


def add_records(store: Store, records: list[dict]) -> None:
    """Write records straight into source_records. ``day`` sets first_seen_at (T0 + day days);
    ``updated`` (days) sets source_updated_at."""
    sql = store.type_sql(
        "INSERT INTO source_records (source, record_key, row_hash, raw, given_name, family_name, full_name, emails, "
        "phones, street, city, region, postcode, country, date_of_birth, company, external_ids, source_updated_at, "
        "first_seen_at, valid_from, run_id) VALUES (?, ?, ?, CAST(? AS ${JSON}), ?, ?, ?, CAST(? AS ${JSON}), "
        "CAST(? AS ${JSON}), ?, ?, ?, ?, ?, ?, ?, CAST(? AS ${JSON}), ?, ?, ?, ?)")
    rows = []
    for i, r in enumerate(records):
        source, key = r["rid"].split(":", 1)
        first = T0 + timedelta(days=r.get("day", 0))
        updated = T0 + timedelta(days=r["updated"]) if "updated" in r else None
        rows.append((source, key, f"h{i}", json.dumps({"k": key}), r.get("given_name"), r.get("family_name"),
                     r.get("full_name"), json.dumps(r.get("emails") or []), json.dumps(r.get("phones") or []),
                     r.get("street"), r.get("city"), r.get("region"), r.get("postcode"), r.get("country"),
                     r.get("date_of_birth"), r.get("company"), json.dumps(r.get("external_ids") or {}),
                     updated, first, first, "run_test"))
    with store.transaction():
        store.executemany(sql, rows)


def records(*rids: str, day: int = 0) -> list[dict]:
    """Bare records, first seen one day apart in the order given (from ``day``)."""
    return [{"rid": r, "day": day + i} for i, r in enumerate(rids)]


def clustering(*groups: list[str] | tuple[str, ...], prefix: str = "k") -> pd.DataFrame:
    rows = []
    for i, group in enumerate(groups):
        for r in group:
            source, key = r.split(":", 1)
            rows.append({"source": source, "record_key": key, "cluster_id": f"{prefix}{i}"})
    return pd.DataFrame(rows, columns=["source", "record_key", "cluster_id"])


def mapping(store: Store) -> dict[str, str]:
    return {f"{s}:{k}": c for s, k, c in store.fetchall("SELECT source, record_key, customer_id FROM record_customer")}


def events(store: Store) -> list[tuple]:
    return store.fetchall("SELECT kind, customer_id, other_customer_id, CAST(records AS TEXT) FROM identity_audit "
                          "ORDER BY event_id")
