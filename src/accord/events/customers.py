"""What real-time stitching reads and changes: the identifier index and customers.

Point queries only (``value IN (...)``, ``customer_id = ?``), which use the indexes of
``customer_identifiers`` on both engines, so a message is stitched in milliseconds against
millions of identifiers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from accord.events.rules import Identifier
from accord.profiles.audit import AuditEvent, append_events
from accord.profiles._sql import reserve_each
from accord.profiles.ids import format_id
from accord.profiles.lookup import invalidate_profile_documents
from accord.store.backend import Store

ORIGIN = "realtime"
ACTOR = "api"


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def current_ids(store: Store, customer_ids: Iterable[str]) -> dict[str, str | None]:
    """Each id -> the active id it resolves to now (itself, or where it merged), or None when it
    was retired without a successor."""
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    redirect = dict(store.fetchall(f"SELECT from_id, to_id FROM customer_redirects WHERE from_id IN ({_marks(ids)})",
                                   ids))
    targets = sorted({redirect.get(i, i) for i in ids})
    active = {r[0] for r in store.fetchall(
        f"SELECT customer_id FROM customers WHERE customer_id IN ({_marks(targets)}) AND status = 'active'", targets)}
    return {i: (redirect.get(i, i) if redirect.get(i, i) in active else None) for i in ids}


def customers_of(store: Store, identifiers: Sequence[Identifier]) -> dict[Identifier, list[str]]:
    """Each identifier -> the active customers it names now (oldest id first; usually one)."""
    if not identifiers:
        return {}
    by_form: dict[tuple[str, str], list[Identifier]] = {}
    for ident in identifiers:
        for form in ident.forms:
            by_form.setdefault((ident.id_type, form), []).append(ident)
    values = sorted({form for _, form in by_form})
    rows = store.fetchall(
        f"SELECT id_type, value, customer_id FROM customer_identifiers WHERE value IN ({_marks(values)})", values)
    found: dict[Identifier, set[str]] = {i: set() for i in identifiers}
    for id_type, value, customer_id in rows:
        for ident in by_form.get((id_type, value), ()):
            found[ident].add(customer_id)
    current = current_ids(store, {c for cs in found.values() for c in cs})
    return {i: sorted({current[c] for c in cs if current[c] is not None}, key=_seq)  # type: ignore[misc]
            for i, cs in found.items()}


def _seq(customer_id: str) -> tuple[int, str]:
    digits = customer_id.removeprefix("cus_")
    return (int(digits), customer_id) if digits.isdigit() else (1 << 62, customer_id)


def oldest(customer_ids: Iterable[str]) -> str:
    return min(customer_ids, key=_seq)


def identifier_counts(store: Store, customer_id: str) -> dict[str, int]:
    """How many values of each identifier type the customer holds."""
    return {t: int(n) for t, n in store.fetchall(
        "SELECT id_type, COUNT(*) FROM customer_identifiers WHERE customer_id = ? GROUP BY id_type", (customer_id,))}


def attach(store: Store, customer_id: str, identifiers: Sequence[Identifier], at: datetime, *,
           new_customer: bool = False) -> None:
    """Index ``identifiers`` as naming ``customer_id`` (origin 'realtime'); already indexed ones get last_seen.

    ``new_customer``: the customer was created in this transaction, so holds nothing yet (no lookup)."""
    if not identifiers:
        return
    values = sorted({f for i in identifiers for f in i.forms})
    # Filtered on value alone, which DuckDB answers from its index; a second condition makes it scan.
    indexed = set() if new_customer else {(t, v) for t, v, c in store.fetchall(
        f"SELECT id_type, value, customer_id FROM customer_identifiers WHERE value IN ({_marks(values)})", values)
        if c == customer_id}
    fresh: dict[tuple[str, str], None] = {}
    seen: list[str] = []
    for ident in identifiers:
        forms = [f for f in ident.forms if (ident.id_type, f) in indexed]
        if forms:
            seen += forms
        else:
            fresh[(ident.id_type, ident.value)] = None
            if ident.id_type == "email":  # the canonical form too, so 'a.da@gmail.com' finds 'ada@gmail.com'
                fresh.update({(ident.id_type, f): None for f in ident.forms})
    if fresh:
        rows = [(t, v, customer_id, ORIGIN, at, at) for t, v in fresh]
        store.execute("INSERT INTO customer_identifiers (id_type, value, customer_id, origin, first_seen, last_seen) "
                      f"VALUES {', '.join('(?, ?, ?, ?, ?, ?)' for _ in rows)}", [x for r in rows for x in r])
    if seen:
        store.execute(f"UPDATE customer_identifiers SET last_seen = ? WHERE customer_id = ? AND value IN "
                      f"({_marks(seen)}) AND (last_seen IS NULL OR last_seen < ?)", (at, customer_id, *seen, at))


def new_customer(store: Store, at: datetime, reason: str, evidence: list[dict[str, Any]]) -> str:
    """A new customer id (never given before), with its 'created' audit event.

    On the identify hot path: one statement reserves both the id and the audit event number (the counters
    ``reserve`` and ``append_events`` keep, locked in their usual order), and each row is one INSERT."""
    seq, audit_id = reserve_each(store, ["customer", "audit"])
    customer_id = format_id(seq)
    store.execute("INSERT INTO customers (customer_id, seq, status, merged_into, created_at, created_by, retired_at) "
                  "VALUES (?, ?, 'active', NULL, ?, ?, NULL)", (customer_id, seq, at, ACTOR))
    store.execute(store.type_sql(
        "INSERT INTO identity_audit (event_id, occurred_at, actor, kind, customer_id, other_customer_id, records, "
        "reason, evidence) VALUES (?, ?, ?, 'created', ?, NULL, CAST(? AS ${JSON}), ?, CAST(? AS ${JSON}))"),
        (audit_id, at, ACTOR, customer_id, "[]", reason, json.dumps(evidence, default=str)))
    return customer_id


def merge(store: Store, a: str, b: str, at: datetime, reason: str, evidence: list[dict[str, Any]]) -> str:
    """Merge two active customers: the oldest id survives, the other retires and redirects to it.

    Its identifiers, records and account memberships move to the survivor; its computed traits are
    dropped (the survivor's are recomputed). Returns the surviving id."""
    survivor = oldest((a, b))
    retired = b if survivor == a else a
    store.execute("UPDATE customers SET status = 'retired', retired_at = ?, merged_into = ? WHERE customer_id = ?",
                  (at, survivor, retired))
    # Redirects stay one step deep: whatever pointed at the retired id now points at the survivor.
    store.execute("UPDATE customer_redirects SET to_id = ? WHERE to_id = ?", (survivor, retired))
    store.execute("INSERT INTO customer_redirects (from_id, to_id, created_at, actor) VALUES (?, ?, ?, ?)",
                  (retired, survivor, at, ACTOR))
    _move(store, "customer_identifiers", ("id_type", "value"), retired, survivor)
    _move(store, "account_members", ("account_id",), retired, survivor)
    store.execute("UPDATE record_customer SET customer_id = ?, assigned_at = ?, actor = ? WHERE customer_id = ?",
                  (survivor, at, ACTOR, retired))
    store.execute("DELETE FROM customer_traits WHERE customer_id = ?", (retired,))
    # Consent: the survivor's own decision per purpose stands; purposes only the retired id decided move over.
    _move(store, "customer_consent", ("purpose",), retired, survivor)
    append_events(store, [AuditEvent("merged", survivor, retired, [], reason, evidence)], ACTOR, at)
    invalidate_profile_documents(store, [survivor, retired])  # records, status and merged ids changed
    return survivor


def _move(store: Store, table: str, keys: tuple[str, ...], old: str, new: str) -> None:
    """Re-point ``table``'s rows from customer ``old`` to ``new``; rows ``new`` already has are dropped."""
    same = " AND ".join(f"n.{k} = {table}.{k}" for k in keys)
    store.execute(f"DELETE FROM {table} WHERE customer_id = ? AND EXISTS "
                  f"(SELECT 1 FROM {table} n WHERE n.customer_id = ? AND {same})", (old, new))
    store.execute(f"UPDATE {table} SET customer_id = ? WHERE customer_id = ?", (new, old))


def records_of(store: Store, customer_id: str, limit: int = 1) -> list[str]:
    """The customer's oldest source records as 'source:record_key'."""
    return [f"{s}:{k}" for s, k in store.fetchall(
        "SELECT rc.source, rc.record_key FROM record_customer rc LEFT JOIN source_records sr "
        "ON sr.source = rc.source AND sr.record_key = rc.record_key WHERE rc.customer_id = ? "
        f"ORDER BY sr.first_seen_at NULLS LAST, rc.source, rc.record_key LIMIT {int(limit)}", (customer_id,))]
