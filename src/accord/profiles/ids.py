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

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from accord.errors import AccordError
from accord.profiles._sql import drop_temp, reserve, reserve_each, temp_as, to_frame
from accord.profiles.audit_sql import write_audit
from accord.clock import utcnow
from accord.store.backend import Store

ID_PREFIX = "cus_"
ASSIGNED_RECORDS = "_pc_records"
"""The temp table a partial assignment with ``keep_records`` leaves for its caller (who drops it): (source,
record_key, customer_id) of every record of the customers it names (``IdReport.customer_ids``)."""
_TEMPS = ("_pc_clusters", "_pc_rec", "_pc_part", "_pc_heir", "_pc_cid", "_pc_newids", "_pc_assign", "_pc_new",
          "_pc_retired", "_pc_ev_rec", "_pc_edges", "_pc_scope_rec", "_pc_old")


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
        "source": pa.array(df["source"].astype(str).to_numpy(dtype=object), pa.string()),
        "record_key": pa.array(df["record_key"].astype(str).to_numpy(dtype=object), pa.string()),
        "cluster": pa.array(df[label].astype(str).to_numpy(dtype=object), pa.string()),
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
                        partial: bool = False, removed: list[tuple[str, str]] | None = None,
                        assigned: str | None = None, keep_records: bool = False) -> IdReport:
    """Map every clustered record to a stable customer id, in one transaction; audit every change.

    ``clusters``: (source, record_key, cluster_id) for every current record; records absent from it
    lose their customer. ``edges``: match edges (record_a, record_b, probability, match_weight,
    rule_or_model, status) used as the audit's evidence; None reads ``match_edges``.
    ``partial``: ``clusters`` holds only the records that may change (with every record of each
    customer they belong to) and ``removed`` the records that lose their customer; no other record
    is touched. ``assigned`` (partial): a temp table of those records' ``record_customer`` rows (source,
    record_key, customer_id and, on DuckDB, row_position: the row's rowid), when the caller has read them.
    ``keep_records`` (partial): leave ``ASSIGNED_RECORDS``, the records of the customers it names, which by
    the contract above are the records given that keep a customer."""
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
        if not partial:
            assigned = "record_customer"
        elif assigned is None:
            gone = removed or []
            store.create_temp_table("_pc_scope_rec", pa.table({
                "source": pa.concat_arrays([data["source"].combine_chunks(),
                                            pa.array([s for s, _ in gone], pa.string())]),
                "record_key": pa.concat_arrays([data["record_key"].combine_chunks(),
                                                pa.array([k for _, k in gone], pa.string())])}))
            # The scope's current assignments, read once (every later step would scan record_customer
            # again); on DuckDB with each row's position, so the delete finds its rows without a scan.
            position = ", rc.rowid AS row_position" if store.dialect == "duckdb" else ""
            temp_as(store, "_pc_old", f"""
                SELECT rc.source, rc.record_key, rc.customer_id{position} FROM record_customer rc
                JOIN _pc_scope_rec s ON s.source = rc.source AND s.record_key = rc.record_key""")
            assigned = "_pc_old"
        _plan(store, assigned)
        report.timings["plan"] = round(time.perf_counter() - clock, 3)
        audit = write_audit(store, partial, assigned, edges, evidence_limit, actor, now)
        for name in ("events", "created", "split", "merged", "retired_empty", "records_added", "records_moved",
                     "records_removed", "merges"):
            setattr(report, name, getattr(audit, name))
        report.timings["audit"] = round(time.perf_counter() - clock - report.timings["plan"], 3)
        _apply(store, now, actor, assigned)
        report.records = int(store.scalar("SELECT COUNT(*) FROM _pc_new"))
        report.customers = int(store.scalar("SELECT COUNT(*) FROM _pc_assign"))
        if partial:
            report.customer_ids = sorted({c for (c,) in store.fetchall(
                "SELECT customer_id FROM _pc_new UNION SELECT old_id FROM _pc_new WHERE old_id IS NOT NULL "
                "UNION SELECT old_id FROM _pc_retired")})
            if keep_records:
                temp_as(store, ASSIGNED_RECORDS, "SELECT source, record_key, customer_id FROM _pc_new")
        drop_temp(store, *_TEMPS)
    report.timings["total"] = round(time.perf_counter() - clock, 3)
    return report


def _plan(store: Store, assigned: str = "record_customer") -> None:
    """Temp tables: _pc_new (record -> old id, new id, is_new) and _pc_retired (old id -> merged_into).

    ``assigned``: the record_customer rows the assignment may change (the table, or a temp table of the
    rows of a partial assignment's records)."""
    temp_as(store, "_pc_rec", f"""
        SELECT c.source, c.record_key, c.cluster, rc.customer_id AS old_id, sr.first_seen_at
        FROM _pc_clusters c
        LEFT JOIN {assigned} rc ON rc.source = c.source AND rc.record_key = c.record_key
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
    temp_as(store, "_pc_retired", f"""
        SELECT o.customer_id AS old_id, a.customer_id AS merged_into
        FROM (SELECT DISTINCT customer_id FROM {assigned}) o
        LEFT JOIN _pc_heir h ON h.old_id = o.customer_id
        LEFT JOIN _pc_assign a ON a.cluster = h.cluster
        WHERE h.keeps IS NOT TRUE""")


def _apply(store: Store, now: Any, actor: str, assigned: str = "record_customer") -> None:
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
    kept = ("SELECT 1 FROM _pc_new n WHERE n.source = {t}.source AND n.record_key = {t}.record_key "
            "AND n.customer_id = {t}.customer_id")
    if assigned == "record_customer":
        store.execute(f"DELETE FROM record_customer WHERE NOT EXISTS ({kept.format(t='record_customer')})")
    elif store.dialect == "duckdb":  # by position (the assigned rows' row_position)
        store.execute(f"DELETE FROM record_customer WHERE rowid IN (SELECT o.row_position FROM {assigned} o "
                      f"WHERE NOT EXISTS ({kept.format(t='o')}))")
    else:
        store.execute(f"DELETE FROM record_customer WHERE EXISTS (SELECT 1 FROM {assigned} o "
                      "WHERE o.source = record_customer.source AND o.record_key = record_customer.record_key) "
                      f"AND NOT EXISTS ({kept.format(t='record_customer')})")
    store.execute("INSERT INTO record_customer (source, record_key, customer_id, assigned_at, actor) "
                  "SELECT source, record_key, customer_id, ?, ? FROM _pc_new "
                  "WHERE old_id IS DISTINCT FROM customer_id", (now, actor))


def assign_new_record(store: Store, source: str, record_key: str, run_id: str, actor: str | None = None) -> IdReport:
    """A new record clustered alone (real-time placement's usual outcome): a new customer for it.

    What ``assign_customer_ids(partial=True)`` writes for such a cluster — the customer, its record,
    one ``created`` event ('new records'; no evidence: no other record is in its cluster) — without
    that plan's temp tables, which cost more than the rest of an identify call. The caller has checked
    that the record has no customer and is the only record of its cluster."""
    actor = actor or run_id
    report = IdReport(run_id, records=1, customers=1, created=1, events=1)
    clock = time.perf_counter()
    now = utcnow()
    with store.transaction():
        seq, event = reserve_each(store, ["customer", "audit"])
        customer_id = format_id(seq)
        store.execute("INSERT INTO customers (customer_id, seq, status, merged_into, created_at, created_by, "
                      "retired_at) VALUES (?, ?, 'active', NULL, ?, ?, NULL)", (customer_id, seq, now, actor))
        store.execute("INSERT INTO record_customer (source, record_key, customer_id, assigned_at, actor) "
                      "VALUES (?, ?, ?, ?, ?)", (source, record_key, customer_id, now, actor))
        store.execute(store.type_sql(
            "INSERT INTO identity_audit (event_id, occurred_at, actor, kind, customer_id, other_customer_id, "
            "records, reason, evidence) VALUES (?, ?, ?, 'created', ?, NULL, CAST(? AS ${JSON}), 'new records', "
            "CAST('[]' AS ${JSON}))"), (event, now, actor, customer_id, json.dumps([f"{source}:{record_key}"])))
    report.customer_ids = [customer_id]
    report.timings["total"] = round(time.perf_counter() - clock, 3)
    return report
