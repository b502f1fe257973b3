"""The profiles stage: clusters in; stable ids, audit events and golden records out, in one transaction."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from accord.profiles.decisions import apply_constraints, constraints
from accord.profiles.golden import GoldenReport, build_golden, source_priorities
from accord.profiles.identifiers import refresh_customer_identifiers
from accord.profiles.ids import IdReport, assign_customer_ids
from accord.profiles.settings import profiles_settings
from accord.store.backend import Store


@dataclass
class ProfilesReport:
    run_id: str
    ids: IdReport
    golden: GoldenReport
    constraints_applied: int = 0
    clusters_split_by_constraints: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_profiles(store: Store, cfg: Any, clusters: pa.Table | pd.DataFrame | None, run_id: str,
                   edges: pa.Table | pd.DataFrame | None = None) -> ProfilesReport:
    """Assign stable ids to ``clusters`` (None: read the ``identity`` table), audit the changes and
    recompute golden records. Human decisions are applied to the clustering first (see
    ``apply_constraints``), unless ``profiles.enforce_constraints`` is false."""
    started = time.perf_counter()
    settings = profiles_settings(getattr(cfg, "profiles", None))
    if clusters is None:
        clusters = store.fetch_arrow("SELECT source, record_key, cluster_id FROM identity ORDER BY source, record_key")
    frame = clusters.to_pandas() if isinstance(clusters, pa.Table) else clusters
    applied, split = 0, 0
    if settings.enforce_constraints:
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
    with store.transaction():
        ids = assign_customer_ids(store, frame, run_id, run_id, edges, evidence_limit=settings.evidence_limit)
        golden = build_golden(store, settings, source_priorities(cfg))
        refresh_customer_identifiers(store)
    return ProfilesReport(run_id, ids, golden, applied, split, round(time.perf_counter() - started, 3))
