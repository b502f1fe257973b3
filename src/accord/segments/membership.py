"""Segment membership with history: one row per stint, ``exited_at`` NULL while it lasts."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from accord.errors import AccordError
from accord.store.backend import Store


@dataclass(frozen=True)
class Change:
    segment: str
    customer_id: str
    kind: str  # 'enter' or 'exit'


def ensure_indexes(store: Store) -> None:
    """PostgreSQL's lookup indexes for membership and the webhook queue (DuckDB reads them by zone maps)."""
    if store.dialect != "postgresql":
        return
    for sql in (
        "CREATE INDEX IF NOT EXISTS segment_membership_open ON segment_membership (segment, customer_id) "
        "WHERE exited_at IS NULL",
        "CREATE INDEX IF NOT EXISTS segment_membership_customer ON segment_membership (customer_id)",
        "CREATE INDEX IF NOT EXISTS segment_membership_segment ON segment_membership (segment, entered_at)",
        "CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at)",
        # Real-time segments read one customer's events by anonymous id (identity has its own index).
        "CREATE INDEX IF NOT EXISTS events_anonymous_id ON events (anonymous_id)",
    ):
        store.execute(sql)


def open_segments(store: Store, customer_id: str) -> set[str]:
    return {r[0] for r in store.fetchall(
        "SELECT segment FROM segment_membership WHERE customer_id = ? AND exited_at IS NULL", (customer_id,))}


def record_changes(store: Store, changes: Iterable[Change], now: datetime, how: str, run_id: str | None = None) -> None:
    """Apply one customer's (or a few customers') enters and exits; the caller holds the transaction.

    A handful of statements however many changes (one event can move a customer into several
    segments at once): every enter in one INSERT, each customer's exits in one UPDATE, every
    segment's member count in one UPDATE."""
    changes = list(changes)
    if not changes:
        return
    enters = [c for c in changes if c.kind == "enter"]
    if enters:
        store.execute(
            "INSERT INTO segment_membership (segment, customer_id, entered_at, entered_by, entered_run) VALUES "
            + ", ".join("(?, ?, ?, ?, ?)" for _ in enters),
            [p for c in enters for p in (c.segment, c.customer_id, now, how, run_id)])
    exits: dict[str, list[str]] = {}
    for c in changes:
        if c.kind != "enter":
            exits.setdefault(c.customer_id, []).append(c.segment)
    for customer_id, segments in exits.items():
        store.execute(
            "UPDATE segment_membership SET exited_at = ?, exited_by = ?, exited_run = ? WHERE customer_id = ? "
            f"AND exited_at IS NULL AND segment IN ({', '.join('?' for _ in segments)})",
            [now, how, run_id, customer_id, *segments])
    delta: dict[str, int] = {}
    for c in changes:
        delta[c.segment] = delta.get(c.segment, 0) + (1 if c.kind == "enter" else -1)
    delta = {name: d for name, d in delta.items() if d}
    if delta:
        cases = " ".join("WHEN ? THEN ?" for _ in delta)
        store.execute(
            f"UPDATE segments SET members = GREATEST(members + CASE name {cases} ELSE 0 END, 0) "
            f"WHERE name IN ({', '.join('?' for _ in delta)})",
            [p for name, d in delta.items() for p in (name, d)] + list(delta))


def apply_new_members(store: Store, now: datetime, how: str, run_id: str | None) -> dict[str, dict[str, int]]:
    """Diff ``_seg_new`` (segment, customer_id: who is in now) against the open stints of the segments
    in ``_seg_scope`` (segment); record enters and exits; leave them in ``_seg_changes``.
    Returns per segment: entered, exited, members. The caller holds the transaction."""
    store.drop_temp_table("_seg_changes")
    store.execute("CREATE TEMP TABLE _seg_changes (segment TEXT, customer_id TEXT, kind TEXT)")
    if not store.fetchone("SELECT 1 FROM segment_membership o JOIN _seg_scope s ON s.segment = o.segment "
                          "WHERE o.exited_at IS NULL LIMIT 1"):
        # Nobody is in these segments yet (their first run): everyone found enters, in the order found,
        # which is customer order when ``_seg_new`` comes from ``members_of_flags`` over ordered flags.
        store.execute("INSERT INTO _seg_changes SELECT segment, customer_id, 'enter' FROM _seg_new")
        store.execute("INSERT INTO segment_membership (segment, customer_id, entered_at, entered_by, entered_run) "
                      "SELECT segment, customer_id, ?, ?, ? FROM _seg_changes", (now, how, run_id))
        return _counts(store, run_id, now)
    # One full outer join finds both: new without an open stint (enter), open stint not new (exit).
    store.execute(
        "INSERT INTO _seg_changes SELECT COALESCE(n.segment, m.segment), COALESCE(n.customer_id, m.customer_id), "
        "CASE WHEN m.customer_id IS NULL THEN 'enter' ELSE 'exit' END "
        "FROM _seg_new n FULL OUTER JOIN (SELECT o.segment, o.customer_id FROM segment_membership o "
        "JOIN _seg_scope s ON s.segment = o.segment WHERE o.exited_at IS NULL) m "
        "ON m.segment = n.segment AND m.customer_id = n.customer_id "
        "WHERE n.customer_id IS NULL OR m.customer_id IS NULL")
    store.execute(
        "UPDATE segment_membership SET exited_at = ?, exited_by = ?, exited_run = ? WHERE exited_at IS NULL "
        "AND EXISTS (SELECT 1 FROM _seg_changes c WHERE c.kind = 'exit' AND c.segment = segment_membership.segment "
        "AND c.customer_id = segment_membership.customer_id)", (now, how, run_id))
    store.execute(
        "INSERT INTO segment_membership (segment, customer_id, entered_at, entered_by, entered_run) "
        # In customer order, so that DuckDB's zone maps find one customer's rows without a full scan.
        "SELECT segment, customer_id, ?, ?, ? FROM _seg_changes WHERE kind = 'enter' ORDER BY customer_id",
        (now, how, run_id))
    return _counts(store, run_id, now)


def _counts(store: Store, run_id: str | None, now: datetime) -> dict[str, dict[str, int]]:
    """Per segment of ``_seg_scope``: entered, exited (``_seg_changes``), members (``_seg_new``); stored."""
    out: dict[str, dict[str, int]] = {r[0]: {"entered": 0, "exited": 0, "members": 0}
                                      for r in store.fetchall("SELECT segment FROM _seg_scope")}
    for segment, kind, n in store.fetchall("SELECT segment, kind, COUNT(*) FROM _seg_changes GROUP BY segment, kind"):
        out[segment]["entered" if kind == "enter" else "exited"] = int(n)
    for segment, n in store.fetchall("SELECT segment, COUNT(*) FROM _seg_new GROUP BY segment"):
        out[segment]["members"] = int(n)
    for segment, counts in out.items():
        store.execute("UPDATE segments SET members = ?, last_run_id = ?, last_evaluated_at = ? WHERE name = ?",
                      (counts["members"], run_id, now, segment))
    return out


def close_memberships(store: Store, segment: str, now: datetime, how: str) -> int:
    n = store.scalar("SELECT COUNT(*) FROM segment_membership WHERE segment = ? AND exited_at IS NULL", (segment,))
    store.execute("UPDATE segment_membership SET exited_at = ?, exited_by = ? WHERE segment = ? AND exited_at IS NULL",
                  (now, how, segment))
    return int(n or 0)


# --- reading ---------------------------------------------------------------------------------------


def encode_cursor(entered_at: datetime, customer_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([entered_at.isoformat(), customer_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        entered, customer = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(entered), str(customer)
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise AccordError("cursor: not a cursor this API gave; pass next_cursor from the previous page "
                          "unchanged") from None


def members(store: Store, segment: str, limit: int = 100, cursor: str | None = None) -> dict[str, Any]:
    """Current members, by when they entered (then customer id), a page at a time."""
    where, params = "segment = ? AND exited_at IS NULL", [segment]
    if cursor:
        entered, customer = decode_cursor(cursor)
        where += " AND (entered_at > ? OR (entered_at = ? AND customer_id > ?))"
        params += [entered, entered, customer]
    rows = store.fetchall(
        f"SELECT customer_id, entered_at, entered_by FROM segment_membership WHERE {where} "
        f"ORDER BY entered_at, customer_id LIMIT {int(limit) + 1}", params)
    page = rows[:limit]
    nxt = encode_cursor(page[-1][1], page[-1][0]) if len(rows) > limit else None
    return {"segment": segment, "members": [{"customer_id": c, "entered_at": e, "via": how} for c, e, how in page],
            "next_cursor": nxt}


def history(store: Store, segment: str, limit: int = 100, customer_id: str | None = None) -> list[dict[str, Any]]:
    """Enters and exits, newest first: one entry per change."""
    where, params = "segment = ?", [segment]
    if customer_id:
        where += " AND customer_id = ?"
        params.append(customer_id)
    rows = store.fetchall(
        f"SELECT customer_id, 'enter', entered_at, entered_by, entered_run FROM segment_membership WHERE {where} "
        f"UNION ALL SELECT customer_id, 'exit', exited_at, exited_by, exited_run FROM segment_membership "
        f"WHERE {where} AND exited_at IS NOT NULL ORDER BY 3 DESC, 1, 2 DESC LIMIT {int(limit)}", params + params)
    return [{"customer_id": c, "change": k, "at": at, "via": how, "run_id": run} for c, k, at, how, run in rows]


def customer_segments(store: Store, customer_id: str) -> list[dict[str, Any]]:
    return [{"segment": s, "entered_at": e} for s, e in store.fetchall(
        "SELECT segment, entered_at FROM segment_membership WHERE customer_id = ? AND exited_at IS NULL "
        "ORDER BY segment", (customer_id,))]
