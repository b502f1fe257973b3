"""The profiles stage: clusters in; stable ids, audit events and golden records out, in one transaction.

After an incremental identity run only the records it touched (its ``scope``) are reassigned, and
only the golden records of the customers they had or now have are recomputed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from accord.profiles.decisions import apply_constraints, constraints
from accord.profiles._sql import drop_temp, temp_as
from accord.profiles.golden import SCOPE_RECORDS, GoldenReport, build_golden, golden_of_one_record, source_priorities
from accord.profiles.identifiers import IdentifierReport, refresh_customer_identifiers
from accord.profiles.ids import ASSIGNED_RECORDS, IdReport, assign_customer_ids, assign_new_record
from accord.profiles.settings import profiles_settings
from accord.store.backend import Store


@dataclass
class ProfilesReport:
    run_id: str
    ids: IdReport
    golden: GoldenReport
    identifiers: IdentifierReport | None = None
    """The identifier index refresh (None when the caller refreshes it)."""
    constraints_applied: int = 0
    clusters_split_by_constraints: int = 0
    seconds: float = 0.0
    commit_seconds: float = 0.0
    """Of ``seconds``, the commit of the ids, golden records and identifier index (the store's own work)."""
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("customer_ids", "merges"):
            out["ids"].pop(key, None)
        return out


def _scoped_clusters(store: Store, scope: list[tuple[str, str]]) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """The ``identity`` rows of ``scope`` and of every other record of the customers ``scope`` holds,
    and the records among them no longer in ``identity`` (they lose their customer).

    Leaves ``_pf_assigned`` (the caller drops it): the ``record_customer`` rows of those records, with
    each row's position on DuckDB, as ``assign_customer_ids`` takes them (``assigned``)."""
    store.create_temp_table("_pf_scope", pa.table({
        "source": pa.array([s for s, _ in scope], pa.string()),
        "record_key": pa.array([k for _, k in scope], pa.string())}))
    position = ", rc.rowid AS row_position" if store.dialect == "duckdb" else ""
    temp_as(store, "_pf_assigned", f"""
        SELECT rc.source, rc.record_key, rc.customer_id{position} FROM record_customer rc
        WHERE rc.customer_id IN (SELECT r.customer_id FROM record_customer r
                                 JOIN _pf_scope s ON s.source = r.source AND s.record_key = r.record_key)""")
    temp_as(store, "_pf_all", "SELECT source, record_key FROM _pf_scope UNION SELECT source, record_key FROM _pf_assigned")
    # One pass over identity: the records in it and (cluster_id null) those no longer in it.
    found = store.fetch_arrow("""
        SELECT a.source, a.record_key, i.cluster_id FROM _pf_all a
        LEFT JOIN identity i ON i.source = a.source AND i.record_key = a.record_key
        ORDER BY a.source, a.record_key""").to_pandas()
    gone = found["cluster_id"].isna()
    frame = found[~gone].reset_index(drop=True)
    removed = list(zip(found.loc[gone, "source"], found.loc[gone, "record_key"]))
    drop_temp(store, "_pf_scope", "_pf_all")
    return frame, [(s, k) for s, k in removed]


def build_profiles(store: Store, cfg: Any, clusters: pa.Table | pd.DataFrame | None, run_id: str,
                   edges: pa.Table | pd.DataFrame | None = None, *, scope: list[tuple[str, str]] | None = None,
                   actor: str | None = None, refresh_identifiers: bool = True) -> ProfilesReport:
    """Assign stable ids to ``clusters`` (None: read the ``identity`` table), audit the changes and
    recompute golden records. Human decisions are applied to the clustering first (see
    ``apply_constraints``), unless ``profiles.enforce_constraints`` is false.

    ``scope`` (source, record_key pairs, from an incremental identity run): only these records
    (and the other records of their customers) are reassigned, read from ``identity``, and only
    the golden records of the customers they had or now have are recomputed, and their rows of the
    identifier index (``refresh_customer_identifiers``).
    ``refresh_identifiers=False`` leaves ``customer_identifiers`` to the caller (real-time stitching
    writes its own rows; the next run's refresh takes the customers it changed)."""
    started = time.perf_counter()
    settings = profiles_settings(getattr(cfg, "profiles", None))
    # One transaction from the first read: the assignment deletes the scope's record_customer rows by
    # the positions _scoped_clusters read.
    with store.transaction():
        removed: list[tuple[str, str]] = []
        if scope is not None:
            clusters, removed = _scoped_clusters(store, scope)
        elif clusters is None:
            clusters = store.fetch_arrow(
                "SELECT source, record_key, cluster_id FROM identity ORDER BY source, record_key")
        frame = clusters.to_pandas() if isinstance(clusters, pa.Table) else clusters
        applied, split = 0, 0
        # An incremental identity run clustered under the decisions already (identity.state.decisions).
        if settings.enforce_constraints and scope is None:
            decided = constraints(store)
            applied = len(decided)
            if applied:
                label = "cluster_id" if "cluster_id" in frame.columns else "cluster"
                before = frame[label].nunique()
                source = edges if edges is not None else store.fetch_arrow(
                    "SELECT record_a, record_b, status FROM match_edges WHERE status = 'auto'")
                edge_frame = source.to_pandas() if isinstance(source, pa.Table) else source
                auto = edge_frame[edge_frame["status"] == "auto"] if "status" in edge_frame.columns else edge_frame
                frame = apply_constraints(frame, decided, auto)
                split = int(frame[label].nunique() - before)
        ids = assign_customer_ids(store, frame, run_id, actor or run_id, edges, evidence_limit=settings.evidence_limit,
                                  partial=scope is not None, removed=removed,
                                  assigned="_pf_assigned" if scope is not None else None,
                                  keep_records=scope is not None)
        share = refresh_identifiers and scope is not None  # the index refresh reads the golden records' rows
        golden = build_golden(store, settings, source_priorities(cfg), customer_ids=ids.customer_ids,
                              keep_scope_records=share,
                              customer_records=ASSIGNED_RECORDS if scope is not None else None)
        identifiers = None
        if refresh_identifiers:  # scoped like the golden records, after an incremental run
            identifiers = refresh_customer_identifiers(store, ids.customer_ids if scope is not None else None,
                                                       scope_records=SCOPE_RECORDS if share else None)
        drop_temp(store, *SCOPE_RECORDS, "_pf_assigned", ASSIGNED_RECORDS)
        committing = time.perf_counter()
    done = time.perf_counter()
    return ProfilesReport(run_id, ids, golden, identifiers, applied, split, round(done - started, 3),
                          round(done - committing, 3))


def build_new_profile(store: Store, cfg: Any, source: str, record_key: str, run_id: str,
                      record: tuple[Mapping[str, Any], datetime], actor: str | None = None) -> ProfilesReport:
    """``build_profiles(scope=[(source, record_key)])`` for a new record clustered alone: a new customer
    (``ids.assign_new_record``) and its golden record (``golden.golden_of_one_record``, else
    ``build_golden``). The identifier index is the caller's, as with ``refresh_identifiers=False``.
    ``record``: the record as stored just now and when (``realtime.record_row``, ``store_records``)."""
    started = time.perf_counter()
    settings = profiles_settings(getattr(cfg, "profiles", None))
    with store.transaction():
        ids = assign_new_record(store, source, record_key, run_id, actor)
        assert ids.customer_ids is not None
        golden = golden_of_one_record(store, ids.customer_ids[0], source, record_key, record) or build_golden(
            store, settings, source_priorities(cfg), customer_ids=ids.customer_ids)
        committing = time.perf_counter()
    done = time.perf_counter()
    return ProfilesReport(run_id, ids, golden, None, 0, 0, round(done - started, 3), round(done - committing, 3))
