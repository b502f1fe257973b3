"""The overview page's numbers: the signals every team shares, read straight from the store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accord.profiles.review import count_pending
from accord.store import Store

SIZE_BUCKETS = 5
"""Customers are counted by records held: 1, 2, ... and a last bucket 'SIZE_BUCKETS or more'."""


@dataclass(frozen=True)
class Distribution:
    """A trait's histogram: ``bins`` equal-width buckets from ``low`` to ``high``."""

    trait: str
    low: float
    high: float
    bins: int = 10


DISTRIBUTIONS = (Distribution("health_score", 0, 100), Distribution("churn_risk", 0, 1))


def identity_summary(store: Store) -> dict[str, Any]:
    """Customers, records, records per customer, match rate and duplicates resolved.

    The match rate is the share of resolved records that share their customer with at least one other
    record; duplicates resolved is records minus the customers holding them."""
    customers = int(store.scalar("SELECT COUNT(*) FROM customers WHERE status = 'active'") or 0)
    sizes = store.fetchall(
        "SELECT n, COUNT(*) FROM (SELECT customer_id, COUNT(*) AS n FROM record_customer GROUP BY customer_id) c "
        "GROUP BY n ORDER BY n")
    records = sum(int(n) * int(k) for n, k in sizes)
    holders = sum(int(k) for _, k in sizes)
    matched = sum(int(n) * int(k) for n, k in sizes if int(n) > 1)
    buckets = [0] * SIZE_BUCKETS
    for n, k in sizes:
        buckets[min(int(n), SIZE_BUCKETS) - 1] += int(k)
    return {
        "customers": customers,
        "records": records,
        "records_per_customer": round(records / holders, 2) if holders else None,
        "match_rate": round(matched / records, 4) if records else None,
        "duplicates_resolved": records - holders,
        "size_labels": [str(i) for i in range(1, SIZE_BUCKETS)] + [f"{SIZE_BUCKETS}+"],
        "size_counts": buckets,
    }


def source_summary(store: Store) -> list[dict[str, Any]]:
    """Current records, open quarantine and last change per people source."""
    quarantined = dict(store.fetchall(
        "SELECT source, COUNT(*) FROM quarantine WHERE resolved_at IS NULL GROUP BY source"))
    return [{"source": s, "records": int(n), "quarantined": int(quarantined.get(s, 0)), "last_change": last}
            for s, n, last in store.fetchall(
                "SELECT source, COUNT(*), MAX(valid_from) FROM source_records WHERE deleted_at IS NULL "
                "GROUP BY source ORDER BY source")]


def event_summary(store: Store) -> dict[str, Any]:
    total, first, last = store.fetchone("SELECT COUNT(*), MIN(ts), MAX(ts) FROM events") or (0, None, None)
    top = store.fetchall("SELECT COALESCE(event, type), COUNT(*) FROM events GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 8")
    return {"events": int(total or 0), "first": first, "last": last,
            "top": [{"event": e, "count": int(n)} for e, n in top]}


def trait_distribution(store: Store, spec: Distribution) -> dict[str, Any]:
    """The histogram of a numeric trait in customer_traits (counts all zero when nobody has it)."""
    width = (spec.high - spec.low) / spec.bins
    rows = store.fetchall(
        "SELECT GREATEST(LEAST(CAST(FLOOR((value_num - ?) / ?) AS INTEGER), ?), 0) AS bin, COUNT(*) "
        "FROM customer_traits WHERE name = ? AND value_num IS NOT NULL GROUP BY 1",
        (spec.low, width, spec.bins - 1, spec.trait))
    counts = [0] * spec.bins
    for b, n in rows:
        counts[int(b)] += int(n)
    labels = [_fmt(spec.low + i * width) + "–" + _fmt(spec.low + (i + 1) * width) for i in range(spec.bins)]
    return {"trait": spec.trait, "labels": labels, "counts": counts, "customers": sum(counts)}


def last_run(store: Store) -> dict[str, Any] | None:
    row = store.fetchone("SELECT run_id, command, started_at, finished_at, status FROM runs "
                         "ORDER BY started_at DESC LIMIT 1")
    return dict(zip(("run_id", "command", "started_at", "finished_at", "status"), row)) if row else None


def overview(store: Store) -> dict[str, Any]:
    return {
        "identity": identity_summary(store),
        "sources": source_summary(store),
        "events": event_summary(store),
        "review_backlog": count_pending(store),
        "distributions": [trait_distribution(store, d) for d in DISTRIBUTIONS],
        "last_run": last_run(store),
    }


def _fmt(x: float) -> str:
    return f"{x:g}"
