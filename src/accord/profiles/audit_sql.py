"""The audit events of one id assignment, built and written in SQL (no Python per record).

``profiles.ids`` plans the assignment in temp tables (``_pc_new``: record -> old id, new id,
``_pc_retired``: old id -> the id it merged into). From those, one event per (kind, customer, other
customer) names its records, a reason and its evidence: the match edges from its records to the
customers it names, strongest first. Event ids follow the order (kind, customer, other customer),
then the customers retired with no records left, so the same change gives the same log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
import pandas as pd
import pyarrow as pa

from accord.identity.state import edges_touching
from accord.profiles._sql import drop_temp, reserve, rows_where, temp_as, to_frame
from accord.store.backend import Store

KIND_ORDER = ("created", "merged", "split", "record_moved", "record_added", "record_removed")
_TEMPS = ("_pc_chg", "_pc_evrow", "_pc_ev", "_pc_origin", "_pc_evid", "_pc_edges", "_pc_evrid", "_pc_evedges")
EDGE_COLUMNS = ("record_a", "record_b", "probability", "match_weight", "rule_or_model", "status")


@dataclass
class AuditCounts:
    events: int = 0
    created: int = 0
    split: int = 0
    merged: int = 0
    retired_empty: int = 0
    records_added: int = 0
    records_moved: int = 0
    records_removed: int = 0
    merges: list[tuple[str, str]] = field(default_factory=list)


def _binary(store: Store, expr: str) -> str:
    """``expr`` ordered by code point, as Python orders strings (PostgreSQL's default collation does not)."""
    return f'{expr} COLLATE "C"' if store.dialect == "postgresql" else expr


def _json_list(store: Store, expr: str, order: str) -> str:
    if store.dialect == "duckdb":
        return f"to_json(list({expr} ORDER BY {order}))"
    return f"json_agg({expr} ORDER BY {order})"


def _json_objects(store: Store, fields: tuple[str, ...], order: str) -> str:
    if store.dialect == "duckdb":
        packed = ", ".join(f"{f} := {f}" for f in fields)
        return f"to_json(list(struct_pack({packed}) ORDER BY {order}))"
    built = ", ".join(f"'{f}', {f}" for f in fields)
    return f"json_agg(json_build_object({built}) ORDER BY {order})"


def write_audit(store: Store, partial: bool, assigned: str, edges: pa.Table | pd.DataFrame | None,
                evidence_limit: int, actor: str, at: datetime) -> AuditCounts:
    """Append the events of the planned assignment to ``identity_audit``; return what was written.

    Call before the assignment is applied (removed records are read from ``assigned``: the
    ``record_customer`` rows the assignment may change, the table itself or, for a partial assignment,
    a temp table of its records' rows). ``edges``: the evidence (None reads ``match_edges``)."""
    counts = AuditCounts()
    temp_as(store, "_pc_chg", f"""
        SELECT source || ':' || record_key AS rid, old_id, customer_id, is_new FROM _pc_new
        WHERE old_id IS DISTINCT FROM customer_id
        UNION ALL
        SELECT source || ':' || record_key AS rid, customer_id AS old_id, NULL AS customer_id, FALSE AS is_new
        FROM {assigned} a
        WHERE NOT EXISTS (SELECT 1 FROM _pc_clusters c WHERE c.source = a.source AND c.record_key = a.record_key)""")
    temp_as(store, "_pc_evrow", """
        SELECT CASE WHEN c.customer_id IS NULL THEN 'record_removed'
                    WHEN c.is_new THEN 'created'
                    WHEN c.old_id IS NULL THEN 'record_added'
                    WHEN r.merged_into = c.customer_id THEN 'merged'
                    ELSE 'record_moved' END AS kind,
               COALESCE(c.customer_id, c.old_id) AS cid,
               CASE WHEN c.customer_id IS NULL OR c.is_new OR c.old_id IS NULL THEN NULL ELSE c.old_id END AS other,
               c.rid
        FROM _pc_chg c LEFT JOIN _pc_retired r ON r.old_id = c.old_id
        UNION ALL
        SELECT 'split' AS kind, old_id AS cid, customer_id AS other, rid FROM _pc_chg
        WHERE is_new AND old_id IS NOT NULL""")
    order = "CASE kind " + " ".join(f"WHEN '{k}' THEN {i}" for i, k in enumerate(KIND_ORDER)) + " END"
    temp_as(store, "_pc_ev", f"""
        SELECT kind, cid, other, COALESCE(other, '') AS okey, records,
               ROW_NUMBER() OVER (ORDER BY {order}, {_binary(store, 'cid')}, {_binary(store, "COALESCE(other, '')")})
                   AS k
        FROM (SELECT kind, cid, other, {_json_list(store, 'rid', _binary(store, 'rid'))} AS records
              FROM _pc_evrow GROUP BY kind, cid, other) g""")
    temp_as(store, "_pc_origin", """
        SELECT customer_id AS new_id, string_agg(DISTINCT old_id, ', ' ORDER BY old_id) AS origins
        FROM _pc_chg WHERE is_new AND old_id IS NOT NULL GROUP BY customer_id""")
    has_evidence = _evidence(store, edges, evidence_limit, partial)
    grouped = int(store.scalar("SELECT COUNT(*) FROM _pc_ev"))
    empty = int(store.scalar("SELECT COUNT(*) FROM _pc_retired WHERE merged_into IS NULL"))
    total = grouped + empty
    if total:
        first = reserve(store, "audit", total)
        evidence = "COALESCE(v.evidence, '[]')" if has_evidence else "'[]'"
        join = "LEFT JOIN _pc_evid v ON v.k = e.k" if has_evidence else ""
        store.execute(store.type_sql(f"""
            INSERT INTO identity_audit (event_id, occurred_at, actor, kind, customer_id, other_customer_id,
                                        records, reason, evidence)
            SELECT {first - 1} + e.k, ?, ?, e.kind, e.cid, e.other, CAST(e.records AS ${{JSON}}),
                   CASE e.kind
                       WHEN 'created' THEN COALESCE('split from ' || o.origins, 'new records')
                       WHEN 'merged' THEN e.other || ' merged into ' || e.cid || ': ' || e.cid
                                          || ' is the oldest id of the cluster'
                       WHEN 'split' THEN 'records split out into ' || e.other || '; ' || e.cid
                                         || ' keeps the part holding most of its records'
                       WHEN 'record_moved' THEN 'records moved from ' || e.other
                       WHEN 'record_added' THEN 'new records joined this customer'
                       ELSE 'records no longer current (deleted at the source or not clustered)' END,
                   CAST({evidence} AS ${{JSON}})
            FROM _pc_ev e LEFT JOIN _pc_origin o ON e.kind = 'created' AND o.new_id = e.cid {join}"""),
            (at, actor))
        if empty:
            store.execute(store.type_sql(f"""
                INSERT INTO identity_audit (event_id, occurred_at, actor, kind, customer_id, other_customer_id,
                                            records, reason, evidence)
                SELECT {first - 1 + grouped} + ROW_NUMBER() OVER (ORDER BY {_binary(store, 'old_id')}), ?, ?,
                       'retired', old_id, NULL, CAST('[]' AS ${{JSON}}), 'no records left', CAST('[]' AS ${{JSON}})
                FROM _pc_retired WHERE merged_into IS NULL"""), (at, actor))
    counts.events = total
    by_kind = dict(store.fetchall("SELECT kind, COUNT(*) FROM _pc_evrow GROUP BY kind"))
    counts.records_added = int(by_kind.get("record_added", 0))
    counts.records_moved = int(by_kind.get("record_moved", 0))
    counts.records_removed = int(by_kind.get("record_removed", 0))
    counts.created = int(store.scalar("SELECT COUNT(*) FROM _pc_ev WHERE kind = 'created'"))
    counts.split = int(store.scalar("SELECT COUNT(DISTINCT cid) FROM _pc_ev WHERE kind = 'split'"))
    counts.merged = int(store.scalar("SELECT COUNT(*) FROM _pc_retired WHERE merged_into IS NOT NULL"))
    counts.retired_empty = empty
    counts.merges = [(o, c) for o, c in store.fetchall(
        "SELECT other, cid FROM _pc_ev WHERE kind = 'merged' AND other IS NOT NULL ORDER BY k")]
    drop_temp(store, *_TEMPS)
    return counts


def _evidence(store: Store, edges: pa.Table | pd.DataFrame | None, limit: int, partial: bool = False) -> bool:
    """_pc_evid (k, evidence JSON): each event's edges from its records to the customers it names
    (new or old id of the record at the other end), strongest first, at most ``limit``. ``partial``:
    few records change, so their edges are picked out of the table first."""
    if limit <= 0:
        return False
    if edges is None:
        table = "match_edges"
    else:
        df = to_frame(edges)
        assert df is not None
        if df.empty:
            return False
        store.create_temp_table("_pc_edges", _edge_table(df))
        table = "_pc_edges"
    cols = ", ".join(f"e.{c}" for c in EDGE_COLUMNS)
    rank = "probability DESC NULLS FIRST, " + ", ".join(_binary(store, c) for c in ("record_a", "record_b",
                                                                                     "rule_or_model"))
    if partial:
        # The edges of the events' records first (match_edges holds every record's: reading all of it,
        # both ways round, cost more than the rest of the audit after an incremental run).
        temp_as(store, "_pc_evrid", "SELECT DISTINCT rid FROM _pc_evrow WHERE kind <> 'record_removed'")
        rids = "SELECT rid FROM _pc_evrid"
        temp_as(store, "_pc_evedges", rows_where(store, table, f"record_a IN ({rids}) OR record_b IN ({rids})")
                if store.dialect == "duckdb" else edges_touching(store, rids, table=table))
        table = "_pc_evedges"
    temp_as(store, "_pc_evid", f"""
        WITH ev AS (SELECT r.rid, e.k, e.cid, COALESCE(e.other, e.cid) AS other_id
                    FROM _pc_evrow r JOIN _pc_ev e ON e.kind = r.kind AND e.cid = r.cid
                                                  AND e.okey = COALESCE(r.other, '')
                    WHERE r.kind <> 'record_removed'),
        m AS (SELECT source || ':' || record_key AS rid, customer_id AS new_id, old_id FROM _pc_new),
        e2 AS (SELECT record_a AS rid, record_b AS other, {cols} FROM {table} e
               UNION ALL SELECT record_b AS rid, record_a AS other, {cols} FROM {table} e),
        hits AS (SELECT DISTINCT ev.k, e2.record_a, e2.record_b, e2.probability, e2.match_weight,
                        e2.rule_or_model, e2.status
                 FROM ev JOIN e2 ON e2.rid = ev.rid JOIN m ON m.rid = e2.other
                 WHERE m.new_id = ev.cid OR m.new_id = ev.other_id OR m.old_id = ev.cid OR m.old_id = ev.other_id),
        ranked AS (SELECT hits.*, ROW_NUMBER() OVER (PARTITION BY k ORDER BY {rank}) AS rn FROM hits)
        SELECT k, {_json_objects(store, EDGE_COLUMNS, 'rn')} AS evidence
        FROM ranked WHERE rn <= {int(limit)} GROUP BY k""")
    return True


def _edge_table(df: pd.DataFrame) -> pa.Table:
    n = len(df)

    def text(col: str, default: str | None) -> pa.Array:
        if col not in df:
            return pa.array([default] * n, pa.string())
        return pa.array(df[col].astype(str).to_numpy(dtype=object), pa.string())

    def number(col: str) -> pa.Array:
        if col not in df:
            return pa.nulls(n, pa.float64())
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        return pa.array(values, pa.float64(), from_pandas=True)

    return pa.table({"record_a": text("record_a", None), "record_b": text("record_b", None),
                     "probability": number("probability"), "match_weight": number("match_weight"),
                     "rule_or_model": text("rule_or_model", "?"), "status": text("status", "auto")})
