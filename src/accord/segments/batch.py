"""The segments stage: every rule segment decided over all customers in one SQL query, membership
diffed against the open stints (enters and exits recorded with the run), webhooks queued."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from accord.clock import Stopwatch, utcnow
from accord.segments.catalog import load_catalog, sync_config_segments
from accord.segments.membership import apply_new_members, ensure_indexes
from accord.segments.settings import build_condition
from accord.segments.sql import compile_condition, compile_flags, members_of_flags
from accord.segments.webhooks import enqueue_batch_changes
from accord.store.backend import Store


@dataclass
class SegmentsReport:
    segments: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per segment: members, entered, exited."""
    retired: list[str] = field(default_factory=list)
    webhooks_queued: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_segments(store: Store, cfg: Any, run_id: str | None, *, names: list[str] | None = None,
                      now: datetime | None = None) -> SegmentsReport:
    """Decide every rule segment (or those ``names``) for every active customer, as of ``now``."""
    started = time.perf_counter()
    now = now or utcnow()
    report = SegmentsReport()
    watch = Stopwatch(report.timings)
    ensure_indexes(store)
    with store.transaction():  # all or nothing: definitions, membership and the webhook queue
        report.retired = sync_config_segments(store, cfg, now)
        segments = load_catalog(store, cfg).rules(names)
        watch.lap("definitions")
        if segments:
            # Every condition decided in one pass over the customers' features, kept in a table so the
            # members of each segment are read from it rather than the features computed again per segment.
            sql, params = compile_flags({s.name: s.effective for s in segments}, store.dialect, now)
            store.drop_temp_table("_seg_flags", "_seg_new")
            # In customer order, which the members keep (see apply_new_members).
            store.execute(f"CREATE TEMP TABLE _seg_flags AS {sql} ORDER BY customer_id", params)
            store.execute("CREATE TEMP TABLE _seg_new (segment TEXT, customer_id TEXT)")
            members, names = members_of_flags([s.name for s in segments], "_seg_flags")
            store.execute(f"INSERT INTO _seg_new (segment, customer_id) {members}", names)
            watch.lap("evaluate")
            store.create_temp_table("_seg_scope", pa.table({"segment": pa.array([s.name for s in segments],
                                                                                pa.string())}))
            report.segments = apply_new_members(store, now, "batch", run_id)
            watch.lap("membership")
            report.webhooks_queued = enqueue_batch_changes(store, cfg, now, "batch")
            watch.lap("webhooks")
            store.drop_temp_table("_seg_flags", "_seg_new", "_seg_scope", "_seg_changes")
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def preview(store: Store, text: str, *, now: datetime | None = None, sample: int = 10,
            requires_consent: list[str] | None = None) -> dict[str, Any]:
    """How many active customers a condition selects now, and a sample of them; nothing is saved."""
    from accord.segments.catalog import Segment, SegmentError

    try:
        condition = build_condition(text)
    except ValueError as exc:
        raise SegmentError(str(exc)) from None
    segment = Segment("preview", condition, requires_consent=tuple(requires_consent or ()))
    sql, params = compile_condition(segment.effective, store.dialect, now or utcnow())
    count = store.scalar(f"SELECT COUNT(*) FROM ({sql}) q", params)
    ids = [r[0] for r in store.fetchall(f"SELECT customer_id FROM ({sql}) q ORDER BY customer_id LIMIT {int(sample)}",
                                        params)]
    sample_rows = []
    for customer_id in ids:
        attrs = {a: v for a, v in store.fetchall(
            "SELECT attribute, MIN(value) FROM golden_values WHERE customer_id = ? AND attribute IN "
            "('given_name', 'family_name', 'email', 'city', 'country') GROUP BY attribute", (customer_id,))}
        sample_rows.append({"customer_id": customer_id, **attrs})
    total = store.scalar("SELECT COUNT(*) FROM customers WHERE status = 'active'")
    return {"condition": str(segment.effective), "count": int(count or 0), "customers": int(total or 0),
            "sample": sample_rows}
