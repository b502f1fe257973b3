"""The identity audit: an append-only log of every change to who is who.

Kinds: ``created``, ``merged`` (another id retired into this one), ``split`` (records left this
customer for a new one), ``record_added``, ``record_moved``, ``record_removed``, ``retired``
(no records left), ``unmerged`` (a person split records out by hand) and ``decision`` (a review
decision on a pair). Each event names its actor (a run id or a user), a reason, the records
involved and its evidence: the match edges, with their scores, behind the change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from accord.profiles._sql import reserve, str_array
from accord.store.backend import Store

EVENT_KINDS = ("created", "merged", "split", "record_added", "record_moved", "record_removed", "retired",
               "unmerged", "decision")


@dataclass
class AuditEvent:
    kind: str
    customer_id: str | None
    other_customer_id: str | None = None
    records: list[str] | None = None
    reason: str | None = None
    evidence: list[dict[str, Any]] | None = None


def append_events(store: Store, events: list[AuditEvent], actor: str, at: datetime) -> int:
    """Append events in order (event ids increase); return how many."""
    if not events:
        return 0
    first = reserve(store, "audit", len(events))
    store.load_arrow("identity_audit", pa.table({
        "event_id": pa.array(range(first, first + len(events)), pa.int64()),
        "occurred_at": pa.array([at] * len(events), pa.timestamp("us")),
        "actor": pa.array([actor] * len(events), pa.string()),
        "kind": pa.array([e.kind for e in events], pa.string()),
        "customer_id": str_array([e.customer_id for e in events]),
        "other_customer_id": str_array([e.other_customer_id for e in events]),
        "records": pa.array([json.dumps(e.records or []) for e in events], pa.string()),
        "reason": str_array([e.reason for e in events]),
        "evidence": pa.array([json.dumps(e.evidence or [], default=str) for e in events], pa.string()),
    }))
    return len(events)


def related_ids(store: Store, customer_id: str) -> list[str]:
    """The id, the id it resolves to, and every id that was merged into that one."""
    from accord.profiles.ids import resolve_customer_id

    current, _ = resolve_customer_id(store, customer_id)
    ids = {customer_id, current}
    ids.update(r[0] for r in store.fetchall("SELECT from_id FROM customer_redirects WHERE to_id = ?", (current,)))
    return sorted(ids)


def history(store: Store, customer_id: str) -> list[dict[str, Any]]:
    """Every audit event of a customer, oldest first: its own, and those of the ids merged into it.

    A retired id is followed to the customer it now resolves to."""
    ids = related_ids(store, customer_id)
    marks = ", ".join("?" for _ in ids)
    rows = store.fetchall(
        "SELECT event_id, occurred_at, actor, kind, customer_id, other_customer_id, CAST(records AS TEXT), reason, "
        f"CAST(evidence AS TEXT) FROM identity_audit WHERE customer_id IN ({marks}) "
        f"OR other_customer_id IN ({marks}) ORDER BY event_id", (*ids, *ids))
    return [{
        "event_id": int(r[0]), "occurred_at": r[1], "actor": r[2], "kind": r[3], "customer_id": r[4],
        "other_customer_id": r[5], "records": json.loads(r[6]) if r[6] else [], "reason": r[7],
        "evidence": json.loads(r[8]) if r[8] else [],
    } for r in rows]
