"""Human decisions: unmerge, review decisions, the constraints they leave, and training labels.

Decisions live in ``identity_constraints`` (append-only; the latest row per pair is in force), a
table no rebuild touches, so they survive ``accord run --full``. The identity stage reads them with
``constraints(store)``; ``apply_constraints`` applies them to any clustering, and
``build_profiles`` applies them before ids are assigned, so a decision holds whatever produced
the clusters.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

from accord.errors import AccordError
from accord.profiles._sql import reserve, split_rid, to_frame
from accord.profiles.audit import AuditEvent, append_events
from accord.profiles.ids import format_id, resolve_customer_id
from accord.clock import utcnow
from accord.store.backend import Store

MUST_LINK = "must_link"
CANNOT_LINK = "cannot_link"


@dataclass
class UnmergeResult:
    customer_id: str
    new_customer_id: str
    records: list[str]
    constraints_added: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pair(record_a: str, record_b: str) -> tuple[str, str]:
    split_rid(record_a)
    split_rid(record_b)
    if record_a == record_b:
        raise AccordError(f"record {record_a!r} given twice; a decision needs two different records")
    return (record_a, record_b) if record_a < record_b else (record_b, record_a)


def _add_constraints(store: Store, pairs: list[tuple[str, str]], kind: str, actor: str, reason: str | None,
                     at: Any) -> int:
    if not pairs:
        return 0
    first = reserve(store, "constraint", len(pairs))
    store.load_arrow("identity_constraints", pa.table({
        "constraint_id": pa.array(range(first, first + len(pairs)), pa.int64()),
        "record_a": pa.array([a for a, _ in pairs], pa.string()),
        "record_b": pa.array([b for _, b in pairs], pa.string()),
        "kind": pa.array([kind] * len(pairs), pa.string()),
        "actor": pa.array([actor] * len(pairs), pa.string()),
        "reason": pa.array([reason] * len(pairs), pa.string()),
        "created_at": pa.array([at] * len(pairs), pa.timestamp("us")),
    }))
    return len(pairs)


def constraints(store: Store) -> pd.DataFrame:
    """The decisions in force: record_a, record_b, kind (must_link/cannot_link), actor, reason, created_at."""
    rows = store.fetchall("""
        SELECT record_a, record_b, kind, actor, reason, created_at FROM (
            SELECT c.*, ROW_NUMBER() OVER (PARTITION BY record_a, record_b ORDER BY constraint_id DESC) AS rn
            FROM identity_constraints c) x
        WHERE rn = 1 ORDER BY record_a, record_b""")
    return pd.DataFrame(rows, columns=["record_a", "record_b", "kind", "actor", "reason", "created_at"])


def labelled_pairs(store: Store) -> pd.DataFrame:
    """Decisions as training labels: record_a, record_b, is_match (1 same person, 0 different), actor, decided_at."""
    c = constraints(store)
    return pd.DataFrame({
        "record_a": c["record_a"], "record_b": c["record_b"],
        "is_match": (c["kind"] == MUST_LINK).astype(int), "actor": c["actor"], "decided_at": c["created_at"],
    })


def _customer_of(store: Store, record: str) -> str | None:
    source, key = split_rid(record)
    return store.scalar("SELECT customer_id FROM record_customer WHERE source = ? AND record_key = ?", (source, key))


def record_decision(store: Store, record_a: str, record_b: str, same: bool | None, actor: str,
                    reason: str | None = None) -> str | None:
    """A review decision on a pair: same -> must_link, different -> cannot_link, None (skip) -> nothing.

    Returns the constraint kind written (None when skipped). Takes effect at the next run."""
    if same is None:
        return None
    a, b = _pair(record_a, record_b)
    kind = MUST_LINK if same else CANNOT_LINK
    now = utcnow()
    evidence = [dict(zip(("record_a", "record_b", "probability", "match_weight", "rule_or_model", "status"), r))
                for r in store.fetchall("SELECT record_a, record_b, probability, match_weight, rule_or_model, status "
                                        "FROM match_edges WHERE record_a = ? AND record_b = ?", (a, b))]
    with store.transaction():
        _add_constraints(store, [(a, b)], kind, actor, reason, now)
        append_events(store, [AuditEvent("decision", _customer_of(store, a), _customer_of(store, b), [a, b],
                                         f"{'same person' if same else 'different people'}"
                                         f"{': ' + reason if reason else ''} ({kind})", evidence)], actor, now)
    return kind


def unmerge(store: Store, customer_id: str, records: Iterable[str], actor: str, reason: str | None = None,
            cfg: Any = None) -> UnmergeResult:
    """Split ``records`` out of a customer into a new customer, and forbid them to rejoin it.

    Writes cannot-link constraints between every record split out and every record that stays,
    an ``unmerged`` and a ``created`` audit event, and refreshes both golden records (with the
    source priorities of ``cfg`` when given)."""
    from accord.profiles.golden import build_golden, source_priorities
    from accord.profiles.settings import profiles_settings

    current, _ = resolve_customer_id(store, customer_id)
    moving = sorted(set(records))
    if not moving:
        raise AccordError("unmerge: name at least one record (SOURCE:RECORD_KEY) to split out")
    for r in moving:
        split_rid(r)
    members = sorted(f"{s}:{k}" for s, k in store.fetchall(
        "SELECT source, record_key FROM record_customer WHERE customer_id = ?", (current,)))
    unknown = [r for r in moving if r not in set(members)]
    if unknown:
        raise AccordError(f"unmerge: {', '.join(unknown)} not in customer {current}; "
                          f"its records are {', '.join(members[:10])}{' ...' if len(members) > 10 else ''}")
    staying = [r for r in members if r not in set(moving)]
    if not staying:
        raise AccordError(f"unmerge: that would move every record of {current}; leave at least one")
    now = utcnow()
    with store.transaction():
        new_id = format_id(reserve(store, "customer", 1))
        seq = int(new_id.removeprefix("cus_"))
        store.execute("INSERT INTO customers (customer_id, seq, status, merged_into, created_at, created_by, retired_at) "
                      "VALUES (?, ?, 'active', NULL, ?, ?, NULL)", (new_id, seq, now, actor))
        store.executemany("UPDATE record_customer SET customer_id = ?, assigned_at = ?, actor = ? "
                          "WHERE source = ? AND record_key = ?",
                          [(new_id, now, actor, *split_rid(r)) for r in moving])
        pairs = sorted({_pair(a, b) for a in moving for b in staying})
        added = _add_constraints(store, pairs, CANNOT_LINK, actor, reason or f"unmerged from {current}", now)
        why = reason or "manual unmerge"
        append_events(store, [
            AuditEvent("unmerged", current, new_id, moving, f"{why}; cannot-link with the {len(staying)} "
                       "record(s) that stay"),
            AuditEvent("created", new_id, None, moving, f"split from {current} by hand"),
        ], actor, now)
        settings = profiles_settings(getattr(cfg, "profiles", None))
        build_golden(store, settings, source_priorities(cfg), customer_ids=[current, new_id])
    return UnmergeResult(current, new_id, moving, added)


def apply_constraints(clusters: pa.Table | pd.DataFrame, constraints: pd.DataFrame,
                      edges: pa.Table | pd.DataFrame | None = None) -> pd.DataFrame:
    """Make a clustering honour human decisions; return the clustering with new labels where needed.

    1. must_link: the clusters of the two records are merged (label: the smaller one).
    2. cannot_link (wins over must_link): a cluster holding both records of a pair is split.
       Its constrained records, in sorted order, each join the first part holding none of their
       cannot-link partners (else a new part). The other records follow the edges (when given)
       to the part they reach first, breadth-first; records no edge reaches stay in the first part.
       The first part keeps the label; the others get ``LABEL~1``, ``LABEL~2``, ...

    Greedy, not optimal: it never merges what the clustering kept apart beyond must-link pairs.
    """
    df = to_frame(clusters)
    assert df is not None
    df = df.copy()
    label = next((c for c in ("cluster_id", "cluster") if c in df.columns), None)
    if label is None:
        raise AccordError("clusters: expected a cluster_id (or cluster) column")
    if constraints is None or len(constraints) == 0:
        return df
    rids = (df["source"].astype(str) + ":" + df["record_key"].astype(str)).tolist()
    labels = df[label].astype(str).tolist()
    cluster_of = dict(zip(rids, labels))

    must = constraints[constraints["kind"] == MUST_LINK]
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    for a, b in zip(must["record_a"], must["record_b"]):
        if a in cluster_of and b in cluster_of:
            ra, rb = find(cluster_of[a]), find(cluster_of[b])
            if ra != rb:
                lo, hi = sorted((ra, rb))
                parent[hi] = lo
    if parent:
        labels = [find(c) for c in labels]
        cluster_of = dict(zip(rids, labels))

    cannot = constraints[constraints["kind"] == CANNOT_LINK]
    conflicts: dict[str, set[str]] = defaultdict(set)
    violating: set[str] = set()
    for a, b in zip(cannot["record_a"], cannot["record_b"]):
        if a in cluster_of and b in cluster_of and cluster_of[a] == cluster_of[b]:
            conflicts[a].add(b)
            conflicts[b].add(a)
            violating.add(cluster_of[a])
    if violating:
        members: dict[str, list[str]] = defaultdict(list)
        for r, c in zip(rids, labels):
            if c in violating:
                members[c].append(r)
        adjacency: dict[str, list[str]] = defaultdict(list)
        e = to_frame(edges)
        if e is not None and len(e):
            for a, b in zip(e["record_a"].astype(str), e["record_b"].astype(str)):
                ca, cb = cluster_of.get(a), cluster_of.get(b)
                if ca is not None and ca == cb and ca in violating:
                    adjacency[a].append(b)
                    adjacency[b].append(a)
        new_label: dict[str, str] = {}
        for c, recs in members.items():
            part: dict[str, int] = {}
            parts: list[set[str]] = []
            for r in sorted(x for x in recs if conflicts.get(x)):
                for i, p in enumerate(parts):
                    if not (conflicts[r] & p):
                        p.add(r)
                        part[r] = i
                        break
                else:
                    parts.append({r})
                    part[r] = len(parts) - 1
            queue = sorted(part, key=lambda r: (part[r], r))
            while queue:  # breadth-first: each free record joins the part that reaches it first
                nxt = []
                for r in queue:
                    for n in sorted(adjacency.get(r, ())):
                        if n not in part and not conflicts.get(n):
                            part[n] = part[r]
                            nxt.append(n)
                queue = nxt
            for r in recs:
                i = part.get(r, 0)
                new_label[r] = c if i == 0 else f"{c}~{i}"
        labels = [new_label.get(r, c) for r, c in zip(rids, labels)]
    df[label] = labels
    return df
