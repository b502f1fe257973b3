"""Clustering segments: K-Means on standardized RFM and engagement features, k chosen by silhouette,
each cluster described in words by the features that set it apart.

Features are traits (``segments.clustering.features``; by default the RFM scores and the engagement
trend the traits stage writes). When none of the RFM traits exist yet, recency (days since the last
event with revenue), frequency (events with revenue) and monetary (their revenue) are computed from
the events. A customer without a value of a feature counts as 0 there (no purchase scores below
the lowest quintile; no trend is flat). Each cluster becomes a segment ``<prefix>_<n>`` (largest
first) whose membership has the same history as any segment.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from accord.clock import new_run_id, utcnow
from accord.segments.catalog import SegmentError, retire, settings_of
from accord.segments.membership import apply_new_members, ensure_indexes
from accord.segments.webhooks import enqueue_batch_changes
from accord.store.backend import Store

# Per feature: (word when the cluster is high, word when it is low).
FEATURE_WORDS: dict[str, tuple[str, str]] = {
    "rfm_recency": ("recent", "lapsed"),  # quintile score: 5 = bought most recently
    "rfm_frequency": ("frequent", "infrequent"),
    "rfm_monetary": ("high spend", "low spend"),
    "engagement_trend": ("rising engagement", "falling engagement"),
    "recency_days": ("lapsed", "recent"),  # days since: high = long ago
    "frequency": ("frequent", "infrequent"),
    "monetary": ("high spend", "low spend"),
    "days_since_last_order": ("lapsed", "recent"),
    "days_since_last_event": ("dormant", "active"),
    "orders_total": ("frequent", "infrequent"),
    "revenue_total": ("high spend", "low spend"),
    "health_score": ("healthy", "unhealthy"),
    "churn_risk": ("likely to churn", "unlikely to churn"),
}
STANDS_OUT = 0.5
"""How far (in standard deviations) a cluster's mean must be from everyone's to be described by it."""


@dataclass
class ClusterReport:
    run_id: str
    customers: int = 0
    features: list[str] = field(default_factory=list)
    computed_from_events: bool = False
    k: int = 0
    silhouette: dict[int, float] = field(default_factory=dict)
    clusters: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe(center: dict[str, float]) -> str:
    """Words for a cluster centre in standard units: the features furthest from average, strongest first."""
    notable = sorted(((abs(z), name, z) for name, z in center.items() if abs(z) >= STANDS_OUT), reverse=True)[:3]
    if not notable:
        return "typical on every feature"
    words = []
    for _, name, z in notable:
        high, low = FEATURE_WORDS.get(name, (f"high {name.replace('_', ' ')}", f"low {name.replace('_', ' ')}"))
        words.append(high if z > 0 else low)
    return ", ".join(words)


def load_features(store: Store, names: list[str]) -> tuple[list[str], list[str], np.ndarray, bool]:
    """(customer ids, feature names, matrix, computed from events) for every active customer."""
    present = {r[0] for r in store.fetchall(
        f"SELECT DISTINCT name FROM customer_traits WHERE name IN ({', '.join('?' for _ in names)})", names)}
    from_events = not present & {"rfm_recency", "rfm_frequency", "rfm_monetary"}
    features = [n for n in names if n in present]
    columns = ", ".join(f"MAX(CASE WHEN t.name = ? THEN t.value_num END) AS f{i}" for i in range(len(features)))
    sql = f"SELECT c.customer_id{', ' + columns if columns else ''} FROM customers c " \
          "LEFT JOIN customer_traits t ON t.customer_id = c.customer_id " \
          "WHERE c.status = 'active' GROUP BY c.customer_id ORDER BY c.customer_id"
    table = store.fetch_arrow(sql, features)
    ids = table.column("customer_id").to_pylist()
    matrix = [np.asarray(table.column(f"f{i}").to_pylist(), dtype=float) for i in range(len(features))]
    if from_events:
        rfm = _rfm_from_events(store, ids)
        for name, values in rfm.items():
            features.append(name)
            matrix.append(values)
    if not matrix:
        return ids, [], np.zeros((len(ids), 0)), from_events
    return ids, features, np.nan_to_num(np.column_stack(matrix), nan=0.0), from_events


def _rfm_from_events(store: Store, ids: list[str]) -> dict[str, np.ndarray]:
    now = utcnow()
    rows = store.fetchall(
        "WITH attributed AS ("
        "SELECT ci.customer_id, e.event_id, e.ts, e.revenue FROM events e JOIN customer_identifiers ci "
        "ON ci.id_type = e.identity_type AND ci.value = CASE WHEN e.identity_type = 'email' "
        "THEN LOWER(e.identity_value) ELSE e.identity_value END WHERE e.revenue IS NOT NULL AND e.ts <= ? "
        "UNION SELECT ci.customer_id, e.event_id, e.ts, e.revenue FROM events e JOIN customer_identifiers ci "
        "ON ci.id_type = 'anonymous_id' AND ci.value = e.anonymous_id WHERE e.revenue IS NOT NULL AND e.ts <= ?) "
        "SELECT customer_id, MAX(ts), COUNT(*), SUM(revenue) FROM attributed GROUP BY customer_id", (now, now))
    index = {cid: i for i, cid in enumerate(ids)}
    recency = np.full(len(ids), np.nan)
    frequency = np.zeros(len(ids))
    monetary = np.zeros(len(ids))
    for cid, last, n, total in rows:
        i = index.get(cid)
        if i is None:
            continue
        recency[i] = (now - last).total_seconds() / 86400
        frequency[i] = n
        monetary[i] = total or 0
    # Never bought: as long ago as the longest-lapsed buyer, so they sit at the lapsed end.
    fill = np.nanmax(recency) if np.isfinite(recency).any() else 0.0
    return {"recency_days": np.where(np.isnan(recency), fill, recency), "frequency": frequency, "monetary": monetary}


def choose_k(x: np.ndarray, k_min: int, k_max: int, seed: int, sample: int,
             progress: Callable[[str], None] | None = None) -> tuple[int, dict[int, float], Any]:
    """Fit K-Means for each k and keep the one with the best silhouette (on a sample)."""
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    n = len(x)
    scored_rows = rng.choice(n, size=min(n, sample), replace=False) if n > sample else np.arange(n)
    scores: dict[int, float] = {}
    best: tuple[float, int, Any] | None = None
    for k in range(k_min, min(k_max, n - 1) + 1):
        model = (MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096) if n > 200_000
                 else KMeans(n_clusters=k, random_state=seed, n_init=4))
        labels = model.fit_predict(x)
        sample_labels = labels[scored_rows]
        if len(set(sample_labels.tolist())) < 2:
            continue
        score = float(silhouette_score(x[scored_rows], sample_labels))
        scores[k] = round(score, 4)
        if progress:
            progress(f"k={k}: silhouette {score:.3f}")
        if best is None or score > best[0]:
            best = (score, k, model)
    if best is None:
        raise SegmentError("clustering: the customers' features do not separate into two or more groups "
                           "(all values alike); compute traits first ('accord run') or choose other features")
    return best[1], scores, best[2]


def cluster_segments(store: Store, cfg: Any, *, k: int | None = None, now: datetime | None = None,
                     progress: Callable[[str], None] | None = None) -> ClusterReport:
    """Cluster active customers and write each cluster as a segment with membership history."""
    import time

    from sklearn.preprocessing import StandardScaler

    started = time.perf_counter()
    settings = settings_of(cfg).clustering
    now = now or utcnow()
    report = ClusterReport(run_id=new_run_id())
    ids, features, raw, from_events = load_features(store, list(settings.features))
    report.customers, report.features, report.computed_from_events = len(ids), features, from_events
    if len(ids) < settings.min_customers:
        raise SegmentError(f"clustering needs at least {settings.min_customers} active customers "
                           f"(segments.clustering.min_customers); the store has {len(ids)}")
    if len(features) < 2:
        raise SegmentError(f"clustering needs at least two features; found {features or 'none'} of "
                           f"segments.clustering.features {list(settings.features)}")
    x = StandardScaler().fit_transform(raw)
    k_min, k_max = (k, k) if k else (settings.k_min, settings.k_max)
    report.k, report.silhouette, model = choose_k(x, k_min, k_max, settings.seed, settings.silhouette_sample, progress)
    labels = model.predict(x)
    sizes = np.bincount(labels, minlength=report.k)
    order = [int(c) for c in np.argsort(-sizes, kind="stable")]
    names = {c: f"{settings.name_prefix}_{rank + 1}" for rank, c in enumerate(order)}
    for c in order:
        members = labels == c
        center = {f: round(float(v), 3) for f, v in zip(features, x[members].mean(axis=0))}
        means = {f: round(float(v), 3) for f, v in zip(features, raw[members].mean(axis=0))}
        report.clusters.append({"segment": names[c], "customers": int(sizes[c]), "description": describe(center),
                                "center_z": center, "means": means})
    _write(store, cfg, report, ids, [names[int(c)] for c in labels], now)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _write(store: Store, cfg: Any, report: ClusterReport, ids: list[str], segment_of: list[str], now: datetime) -> None:
    ensure_indexes(store)
    prefix = settings_of(cfg).clustering.name_prefix
    taken = {r[0]: r[1] for r in store.fetchall("SELECT name, origin FROM segments")}
    for cluster in report.clusters:
        if taken.get(cluster["segment"], "cluster") != "cluster":
            raise SegmentError(f"clustering would name a segment {cluster['segment']!r}, which is already a "
                               f"{taken[cluster['segment']]} segment; set segments.clustering.name_prefix")
    with store.transaction():
        for cluster in report.clusters:
            name = cluster["segment"]
            if name in taken:
                store.execute("UPDATE segments SET status = 'active', description = ?, updated_at = ?, "
                              "last_run_id = ?, last_evaluated_at = ? WHERE name = ?",
                              (cluster["description"], now, report.run_id, now, name))
            else:
                store.execute("INSERT INTO segments (name, kind, origin, status, description, realtime, created_at, "
                              "updated_at, last_run_id, last_evaluated_at, members) "
                              "VALUES (?, 'cluster', 'cluster', 'active', ?, FALSE, ?, ?, ?, ?, 0)",
                              (name, cluster["description"], now, now, report.run_id, now))
        store.create_temp_table("_seg_new", pa.table({"segment": pa.array(segment_of, pa.string()),
                                                      "customer_id": pa.array(ids, pa.string())}))
        current = [c["segment"] for c in report.clusters]
        old = [n for n, origin in taken.items() if origin == "cluster" and n not in current
               and n.startswith(prefix + "_")]
        store.create_temp_table("_seg_scope", pa.table({"segment": pa.array(current + old, pa.string())}))
        apply_new_members(store, now, "cluster", report.run_id)
        enqueue_batch_changes(store, cfg, now, "cluster")
        for name in old:
            retire(store, name, now, "cluster")
        store.execute(store.type_sql(
            "INSERT INTO segment_clusterings (run_id, created_at, k, features, scores, clusters) "
            "VALUES (?, ?, ?, CAST(? AS ${JSON}), CAST(? AS ${JSON}), CAST(? AS ${JSON}))"),
            (report.run_id, now, report.k, json.dumps(report.features), json.dumps(report.silhouette),
             json.dumps(report.clusters)))
        store.drop_temp_table("_seg_new", "_seg_scope", "_seg_changes")
