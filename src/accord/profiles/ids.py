"""Stable customer ids: a clustering of the current records in, ``customer_id`` per record out.

An id is given once and never reused (``customers`` keeps every id ever given). When the
clustering changes, ids follow the records:

* each existing id picks its *heir*: the new cluster holding most of its records (a tie goes to
  the part with the oldest record, by first_seen_at, then source and record key);
* a cluster that is the heir of several ids keeps the oldest of them (merge); the others retire
  and redirect to it (``customer_redirects``);
* a cluster that is nobody's heir gets a new id (new people, and the smaller parts of a split).

Re-running on the same clustering changes no id and writes no audit event. All of it is SQL
over temp tables, so it runs at the store's speed. A *partial* assignment (after an incremental
identity run) considers only the records given (and the ``removed`` ones): every other record
keeps its customer untouched, so the caller passes every record of any customer it touches.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from accord.errors import AccordError
from accord.profiles._sql import drop_temp, reserve, temp_as, to_frame
from accord.profiles.audit import AuditEvent, append_events
from accord.clock import utcnow
from accord.store.backend import Store

ID_PREFIX = "cus_"
_TEMPS = ("_pc_clusters", "_pc_rec", "_pc_part", "_pc_heir", "_pc_cid", "_pc_newids", "_pc_assign", "_pc_new",
          "_pc_retired", "_pc_ev_rec", "_pc_edges", "_pc_scope_rec")


@dataclass
class IdReport:
    run_id: str
    records: int = 0
    customers: int = 0
    created: int = 0
    merged: int = 0
    split: int = 0
    retired_empty: int = 0
    records_added: int = 0
    records_moved: int = 0
    records_removed: int = 0
    events: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    customer_ids: list[str] | None = field(default=None, repr=False)
    """Partial assignments: every customer id the records had or now have (whose golden records change)."""
    merges: list[tuple[str, str]] = field(default_factory=list, repr=False)
    """(retired id, id it merged into) of this assignment."""

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("customer_ids")
        out.pop("merges")
        return out


def format_id(seq: int) -> str:
    return f"{ID_PREFIX}{seq:08d}"


def _id_sql(expr: str) -> str:
    """SQL for format_id: zero-padded to 8 digits, longer numbers as they are (lpad would cut them)."""
    return (f"'{ID_PREFIX}' || CASE WHEN {expr} < 100000000 THEN lpad(CAST({expr} AS TEXT), 8, '0') "
            f"ELSE CAST({expr} AS TEXT) END")


def clusters_table(clusters: pa.Table | pd.DataFrame) -> pa.Table:
    """(source, record_key, cluster) as strings, from a frame with a ``cluster_id`` or ``cluster`` column."""
    df = to_frame(clusters)
    assert df is not None
    label = next((c for c in ("cluster_id", "cluster") if c in df.columns), None)
    missing = {"source", "record_key"} - set(df.columns)
    if missing or label is None:
        raise AccordError("clusters: expected columns source, record_key and cluster_id (or cluster); "
                          f"got {', '.join(map(str, df.columns))}")
    return pa.table({
        "source": pa.array(df["source"].astype(str).tolist(), pa.string()),
        "record_key": pa.array(df["record_key"].astype(str).tolist(), pa.string()),
        "cluster": pa.array(df[label].astype(str).tolist(), pa.string()),
    })


def resolve_customer_id(store: Store, customer_id: str) -> tuple[str, bool]:
    """The id a (possibly retired) customer id resolves to now, and whether it was redirected.

    Raises AccordError for an id that was never given."""
    current, redirected = customer_id, False
    for _ in range(64):  # redirects are kept one step deep; the bound guards against a corrupted chain
        row = store.fetchone("SELECT to_id FROM customer_redirects WHERE from_id = ?", (current,))
        if row is None:
            break
        current, redirected = row[0], True
    if store.fetchone("SELECT 1 FROM customers WHERE customer_id = ?", (current,)) is None:
        raise AccordError(f"no customer {customer_id!r}; ids look like {format_id(1)}")
    return current, redirected


def assign_customer_ids(store: Store, clusters: pa.Table | pd.DataFrame, run_id: str, actor: str | None = None,
                        edges: pa.Table | pd.DataFrame | None = None, *, evidence_limit: int = 20,
                        partial: bool = False, removed: list[tuple[str, str]] | None = None) -> IdReport:
    """Map every clustered record to a stable customer id, in one transaction; audit every change.

    ``clusters``: (source, record_key, cluster_id) for every current record; records absent from it
    lose their customer. ``edges``: match edges (record_a, record_b, probability, match_weight,
    rule_or_model, status) used as the audit's evidence; None reads ``match_edges``.
    ``partial``: ``clusters`` holds only the records that may change (with every record of each
    customer they belong to) and ``removed`` the records that lose their customer; no other record
    is touched."""
    actor = actor or run_id
    report = IdReport(run_id)
    clock = time.perf_counter()
    now = utcnow()
    data = clusters_table(clusters)
    with store.transaction():
        store.create_temp_table("_pc_clusters", data)
        dupes = store.fetchall("SELECT source, record_key FROM _pc_clusters GROUP BY source, record_key "
                               "HAVING COUNT(*) > 1 LIMIT 3")
        if dupes:
            names = ", ".join(f"{s}:{k}" for s, k in dupes)
            raise AccordError(f"clusters: a record is in more than one cluster ({names})")
        if partial:
            gone = removed or []
            store.create_temp_table("_pc_scope_rec", pa.table({
                "source": pa.concat_arrays([data["source"].combine_chunks(),
                                            pa.array([s for s, _ in gone], pa.string())]),
                "record_key": pa.concat_arrays([data["record_key"].combine_chunks(),
                                                pa.array([k for _, k in gone], pa.string())])}))
        _plan(store, partial)
        report.timings["plan"] = round(time.perf_counter() - clock, 3)
        events = _events(store, report, partial)
        _attach_evidence(store, events, edges, evidence_limit)
        report.timings["audit"] = round(time.perf_counter() - clock - report.timings["plan"], 3)
        _apply(store, now, actor, partial)
        report.events = append_events(store, events, actor, now)
        report.records = int(store.scalar("SELECT COUNT(*) FROM _pc_new"))
        report.customers = int(store.scalar("SELECT COUNT(*) FROM _pc_assign"))
        report.merges = [(e.other_customer_id, e.customer_id) for e in events
                         if e.kind == "merged" and e.other_customer_id]
        if partial:
            report.customer_ids = sorted({c for (c,) in store.fetchall(
                "SELECT customer_id FROM _pc_new UNION SELECT old_id FROM _pc_new WHERE old_id IS NOT NULL "
                "UNION SELECT old_id FROM _pc_retired")})
        drop_temp(store, *_TEMPS)
    report.timings["total"] = round(time.perf_counter() - clock, 3)
    return report


def _in_scope(table: str) -> str:
    return (f"EXISTS (SELECT 1 FROM _pc_scope_rec s WHERE s.source = {table}.source "
            f"AND s.record_key = {table}.record_key)")


def _plan(store: Store, partial: bool = False) -> None:
    """Temp tables: _pc_new (record -> old id, new id, is_new) and _pc_retired (old id -> merged_into)."""
    temp_as(store, "_pc_rec", """
        SELECT c.source, c.record_key, c.cluster, rc.customer_id AS old_id, sr.first_seen_at
        FROM _pc_clusters c
        LEFT JOIN record_customer rc ON rc.source = c.source AND rc.record_key = c.record_key
        LEFT JOIN source_records sr ON sr.source = c.source AND sr.record_key = c.record_key""")
    # Each (old id, new cluster) part: its size and its oldest record.
    temp_as(store, "_pc_part", """
        SELECT old_id, cluster, n, first_seen_at, source, record_key FROM (
            SELECT old_id, cluster, source, record_key, first_seen_at,
                   COUNT(*) OVER (PARTITION BY old_id, cluster) AS n,
                   ROW_NUMBER() OVER (PARTITION BY old_id, cluster
                                      ORDER BY first_seen_at NULLS LAST, source, record_key) AS rn
            FROM _pc_rec WHERE old_id IS NOT NULL) p
        WHERE rn = 1""")
    # Each old id's heir (largest part; tie: oldest record), and whether it is the oldest id there.
    temp_as(store, "_pc_heir", """
        SELECT old_id, cluster, seq, ROW_NUMBER() OVER (PARTITION BY cluster ORDER BY seq) = 1 AS keeps
        FROM (
            SELECT p.old_id, p.cluster, cu.seq,
                   ROW_NUMBER() OVER (PARTITION BY p.old_id
                                      ORDER BY p.n DESC, p.first_seen_at NULLS LAST, p.source, p.record_key) AS rn
            FROM _pc_part p JOIN customers cu ON cu.customer_id = p.old_id) h
        WHERE rn = 1""")
    temp_as(store, "_pc_cid", """
        SELECT c.cluster, h.old_id AS kept_id, c.first_seen_at, c.source, c.record_key
        FROM (SELECT cluster, first_seen_at, source, record_key,
                     ROW_NUMBER() OVER (PARTITION BY cluster ORDER BY first_seen_at NULLS LAST, source, record_key) AS rn
              FROM _pc_rec) c
        LEFT JOIN _pc_heir h ON h.cluster = c.cluster AND h.keeps
        WHERE c.rn = 1""")
    # New ids in the order of each cluster's oldest record, so the same input gives the same ids.
    temp_as(store, "_pc_newids", """
        SELECT cluster, ROW_NUMBER() OVER (ORDER BY first_seen_at NULLS LAST, source, record_key) AS k
        FROM _pc_cid WHERE kept_id IS NULL""")
    n_new = int(store.scalar("SELECT COUNT(*) FROM _pc_newids"))
    offset = reserve(store, "customer", n_new) - 1 if n_new else 0
    seq = f"(n.k + {int(offset)})"
    temp_as(store, "_pc_assign", f"""
        SELECT c.cluster, COALESCE(c.kept_id, {_id_sql(seq)}) AS customer_id,
               c.kept_id IS NULL AS is_new, {seq} AS seq
        FROM _pc_cid c LEFT JOIN _pc_newids n ON n.cluster = c.cluster""")
    temp_as(store, "_pc_new", """
        SELECT r.source, r.record_key, r.old_id, a.customer_id, a.is_new
        FROM _pc_rec r JOIN _pc_assign a ON a.cluster = r.cluster""")
    # Old ids kept nowhere: merged into the id their heir cluster kept, or left with no records.
    where = f"WHERE {_in_scope('record_customer')}" if partial else ""
    temp_as(store, "_pc_retired", f"""
        SELECT o.customer_id AS old_id, a.customer_id AS merged_into
        FROM (SELECT DISTINCT customer_id FROM record_customer {where}) o
        LEFT JOIN _pc_heir h ON h.old_id = o.customer_id
        LEFT JOIN _pc_assign a ON a.cluster = h.cluster
        WHERE h.keeps IS NOT TRUE""")


_KIND_ORDER = ("created", "merged", "split", "record_moved", "record_added", "record_removed")
_REASONS = {
    "merged": "{other} merged into {cid}: {cid} is the oldest id of the cluster",
    "split": "records split out into {other}; {cid} keeps the part holding most of its records",
    "record_moved": "records moved from {other}",
    "record_added": "new records joined this customer",
    "record_removed": "records no longer current (deleted at the source or not clustered)",
}


def _events(store: Store, report: IdReport, partial: bool = False) -> list[AuditEvent]:
    """One event per (kind, customer, other customer) with its records, from the planned changes."""
    scope = f"AND {_in_scope('record_customer')}" if partial else ""
    changes = store.fetch_arrow(f"""
        SELECT source || ':' || record_key AS rid, old_id, customer_id, is_new FROM _pc_new
        WHERE old_id IS DISTINCT FROM customer_id
        UNION ALL
        SELECT source || ':' || record_key AS rid, customer_id AS old_id, NULL AS customer_id, FALSE AS is_new
        FROM record_customer
        WHERE NOT EXISTS (SELECT 1 FROM _pc_clusters c
                          WHERE c.source = record_customer.source AND c.record_key = record_customer.record_key)
        {scope}""").to_pandas()
    retired = dict(store.fetchall("SELECT old_id, merged_into FROM _pc_retired"))
    events: list[AuditEvent] = []
    if len(changes):
        old, new = changes["old_id"], changes["customer_id"]
        is_new = changes["is_new"].fillna(False).astype(bool)
        kind = np.select(
            [new.isna(), is_new, old.isna(), old.map(retired).eq(new)],
            ["record_removed", "created", "record_added", "merged"], "record_moved")
        main = pd.DataFrame({"kind": kind, "cid": new.where(new.notna(), old), "other": old, "rid": changes["rid"]})
        main.loc[main["kind"].isin(["created", "record_added", "record_removed"]), "other"] = None
        splits = changes[is_new & old.notna()]
        split = pd.DataFrame({"kind": "split", "cid": splits["old_id"], "other": splits["customer_id"],
                              "rid": splits["rid"]})
        rows = pd.concat([main, split], ignore_index=True)
        rows["order"] = rows["kind"].map({k: i for i, k in enumerate(_KIND_ORDER)})
        rows["other"] = rows["other"].fillna("")
        rows = rows.sort_values(["order", "cid", "other", "rid"], kind="stable").reset_index(drop=True)
        keys = rows[["order", "cid", "other"]]
        starts = np.flatnonzero((keys != keys.shift()).any(axis=1).to_numpy())
        bounds = list(starts) + [len(rows)]
        kinds, cids, others, rids = (rows[c].tolist() for c in ("kind", "cid", "other", "rid"))
        origins = split.groupby("other")["cid"].agg(lambda v: ", ".join(sorted(set(v)))).to_dict() if len(split) else {}
        for a, b in pairwise(bounds):
            k, cid, other = kinds[a], cids[a], others[a] or None
            if k == "created":
                reason = f"split from {origins[cid]}" if cid in origins else "new records"
            else:
                reason = _REASONS[k].format(cid=cid, other=other)
            events.append(AuditEvent(k, cid, other, rids[a:b], reason))
        counts = rows["kind"].value_counts()
        report.created = sum(1 for e in events if e.kind == "created")
        report.split = len({e.customer_id for e in events if e.kind == "split"})
        report.records_added = int(counts.get("record_added", 0))
        report.records_moved = int(counts.get("record_moved", 0))
        report.records_removed = int(counts.get("record_removed", 0))
    for old_id, target in sorted(retired.items()):
        if target is None:
            events.append(AuditEvent("retired", old_id, None, [], "no records left"))
    report.merged = sum(1 for t in retired.values() if t is not None)
    report.retired_empty = sum(1 for t in retired.values() if t is None)
    return events


_EDGE_COLUMNS = ("record_a", "record_b", "probability", "match_weight", "rule_or_model", "status")


def _attach_evidence(store: Store, events: list[AuditEvent], edges: pa.Table | pd.DataFrame | None,
                     limit: int) -> None:
    """Each event's evidence: the edges from its records to the customers it names (strongest first)."""
    candidates = [i for i, e in enumerate(events) if e.records and e.kind != "record_removed"]
    if not candidates or limit <= 0:
        return
    if edges is None:
        table = "match_edges"
    else:
        df = to_frame(edges)
        assert df is not None
        if df.empty:
            return
        store.create_temp_table("_pc_edges", pa.table({
            "record_a": pa.array(df["record_a"].astype(str).tolist(), pa.string()),
            "record_b": pa.array(df["record_b"].astype(str).tolist(), pa.string()),
            "probability": pa.array([_num(v) for v in df.get("probability", [None] * len(df))], pa.float64()),
            "match_weight": pa.array([_num(v) for v in df.get("match_weight", [None] * len(df))], pa.float64()),
            "rule_or_model": pa.array([str(v) for v in df.get("rule_or_model", ["?"] * len(df))], pa.string()),
            "status": pa.array([str(v) for v in df.get("status", ["auto"] * len(df))], pa.string()),
        }))
        table = "_pc_edges"
    if not store.fetchone(f"SELECT 1 FROM {table} LIMIT 1"):
        return
    ev_no, rids, cids, others = [], [], [], []
    for i in candidates:
        e = events[i]
        for r in e.records or ():
            ev_no.append(i)
            rids.append(r)
            cids.append(e.customer_id)
            others.append(e.other_customer_id or e.customer_id)
    store.create_temp_table("_pc_ev_rec", pa.table({
        "event_no": pa.array(ev_no, pa.int64()), "rid": pa.array(rids, pa.string()),
        "customer_id": pa.array(cids, pa.string()), "other_id": pa.array(others, pa.string())}))
    cols = ", ".join(f"e.{c}" for c in _EDGE_COLUMNS)
    rows = store.fetch_arrow(f"""
        WITH m AS (SELECT source || ':' || record_key AS rid, customer_id AS new_id, old_id FROM _pc_new),
        e2 AS (SELECT record_a AS rid, record_b AS other, {cols} FROM {table} e
               UNION ALL SELECT record_b AS rid, record_a AS other, {cols} FROM {table} e),
        hits AS (SELECT DISTINCT ev.event_no, e2.record_a, e2.record_b, e2.probability, e2.match_weight,
                        e2.rule_or_model, e2.status
                 FROM _pc_ev_rec ev JOIN e2 ON e2.rid = ev.rid JOIN m ON m.rid = e2.other
                 WHERE m.new_id = ev.customer_id OR m.new_id = ev.other_id
                    OR m.old_id = ev.customer_id OR m.old_id = ev.other_id),
        ranked AS (SELECT hits.*, ROW_NUMBER() OVER (PARTITION BY event_no
                          ORDER BY probability DESC NULLS FIRST, record_a, record_b, rule_or_model) AS rn FROM hits)
        SELECT event_no, record_a, record_b, probability, match_weight, rule_or_model, status
        FROM ranked WHERE rn <= {int(limit)} ORDER BY event_no, rn""").to_pylist()
    for row in rows:
        e = events[int(row.pop("event_no"))]
        if e.evidence is None:
            e.evidence = []
        e.evidence.append(row)


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _apply(store: Store, now: Any, actor: str, partial: bool = False) -> None:
    store.execute("INSERT INTO customers (customer_id, seq, status, merged_into, created_at, created_by, retired_at) "
                  "SELECT customer_id, seq, 'active', NULL, ?, ?, NULL FROM _pc_assign WHERE is_new", (now, actor))
    store.execute("UPDATE customers SET status = 'retired', retired_at = ?, "
                  "merged_into = (SELECT r.merged_into FROM _pc_retired r WHERE r.old_id = customers.customer_id) "
                  "WHERE customer_id IN (SELECT old_id FROM _pc_retired)", (now,))
    # Keep redirects one step deep: whatever pointed at a retired id now points where it went.
    store.execute("UPDATE customer_redirects SET to_id = "
                  "(SELECT r.merged_into FROM _pc_retired r WHERE r.old_id = customer_redirects.to_id) "
                  "WHERE to_id IN (SELECT old_id FROM _pc_retired WHERE merged_into IS NOT NULL)")
    store.execute("INSERT INTO customer_redirects (from_id, to_id, created_at, actor) "
                  "SELECT old_id, merged_into, ?, ? FROM _pc_retired WHERE merged_into IS NOT NULL", (now, actor))
    scope = f" AND {_in_scope('record_customer')}" if partial else ""
    store.execute("DELETE FROM record_customer WHERE NOT EXISTS (SELECT 1 FROM _pc_new n "
                  "WHERE n.source = record_customer.source AND n.record_key = record_customer.record_key "
                  "AND n.customer_id = record_customer.customer_id)" + scope)
    store.execute("INSERT INTO record_customer (source, record_key, customer_id, assigned_at, actor) "
                  "SELECT source, record_key, customer_id, ?, ? FROM _pc_new "
                  "WHERE old_id IS DISTINCT FROM customer_id", (now, actor))
