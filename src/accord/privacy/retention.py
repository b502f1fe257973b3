"""Retention: rows older than their table's period (``privacy.retention``) are deleted by ``accord run``;
``accord privacy retention --dry-run`` shows what would go. Events may have a period per event name."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from accord.clock import utcnow
from accord.privacy.registry import retention_tables
from accord.privacy.settings import PrivacySettings
from accord.store.backend import Store


@dataclass
class RetentionRule:
    table: str
    column: str
    period: str
    cutoff: datetime
    rows: int
    event: str | None = None


@dataclass
class RetentionReport:
    dry_run: bool
    rules: list[RetentionRule] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.rules)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows": self.rows}


def enforce_retention(store: Store, settings: PrivacySettings, *, dry_run: bool = False,
                      now: datetime | None = None) -> RetentionReport:
    """Delete (or, with ``dry_run``, count) every row past its retention period, in one transaction."""
    started = time.perf_counter()
    now = now or utcnow()
    report = RetentionReport(dry_run)
    columns = retention_tables()
    present = set(store.table_names())
    raw = settings.retention.model_extra or {}
    event_periods = settings.retention.event_periods()
    with store.transaction():
        for event, period in sorted(event_periods.items()):
            cutoff = now - period
            where, params = "event = ? AND ts < ?", [event, cutoff]
            report.rules.append(RetentionRule("events", "ts", settings.retention.event_types[event], cutoff,
                                              _apply(store, "events", where, params, dry_run), event))
        for table, period in sorted(settings.retention.periods().items()):
            if table not in present:
                continue
            column = columns[table]
            cutoff = now - period
            where, params = f"{column} < ?", [cutoff]
            if table == "events" and event_periods:
                # Events with their own period follow it, even when it is longer than the table's.
                marks = ", ".join("?" for _ in event_periods)
                where += f" AND (event IS NULL OR event NOT IN ({marks}))"
                params += sorted(event_periods)
            report.rules.append(RetentionRule(table, column, str(raw[table]), cutoff,
                                              _apply(store, table, where, params, dry_run)))
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _apply(store: Store, table: str, where: str, params: list[Any], dry_run: bool) -> int:
    if dry_run:
        return int(store.scalar(f"SELECT count(*) FROM {table} WHERE {where}", params) or 0)
    return len(store.fetchall(f"DELETE FROM {table} WHERE {where} RETURNING 1", params))
