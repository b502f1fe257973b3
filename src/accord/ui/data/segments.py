"""Segments for the dashboard: sizes, trends, memberships and the builder's live preview.

Reads the tables the segments stage keeps (``segments``, ``segment_membership``: one row per stint,
``exited_at`` NULL while it lasts) and calls ``accord.segments`` to preview and save.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from accord.config import ProjectConfig
from accord.segments.batch import evaluate_segments, preview
from accord.segments.catalog import save_segment
from accord.store import Store
from accord.ui.masking import Masker

TREND_DAYS = 30
CHANGES_PAGE = 50
PREVIEW_SAMPLE = 10


def customer_segments(store: Store, customer_id: str) -> list[dict[str, Any]]:
    """The segments a customer is in now, with when and how they entered."""
    return [{"name": s, "entered_at": at, "entered_by": how} for s, at, how in store.fetchall(
        "SELECT segment, entered_at, entered_by FROM segment_membership WHERE customer_id = ? AND exited_at IS NULL "
        "ORDER BY segment", (customer_id,))]


def segment_sizes(store: Store) -> list[dict[str, Any]]:
    """Every active segment with its current size (open stints), biggest first."""
    sizes = dict(store.fetchall(
        "SELECT segment, COUNT(*) FROM segment_membership WHERE exited_at IS NULL GROUP BY segment"))
    rows = store.fetchall("SELECT name, kind, origin, definition, description, last_evaluated_at FROM segments "
                          "WHERE status = 'active'")
    out = [{"name": n, "kind": k, "origin": o, "definition": d, "description": desc, "evaluated_at": at,
            "size": int(sizes.get(n, 0))} for n, k, o, d, desc, at in rows]
    return sorted(out, key=lambda s: (-s["size"], s["name"]))


def daily_members(store: Store, segment: str | None, days: int = TREND_DAYS,
                  today: date | None = None) -> dict[str, dict[str, list[Any]]]:
    """Per segment (one, or all when None): members at the end of each of the last ``days`` days, and
    how many entered and exited on each. Built from daily counts of enters and exits, so the cost is one
    grouped scan whatever the number of members."""
    where, params = ("WHERE segment = ?", (segment,)) if segment else ("", ())
    entered = store.fetchall(f"SELECT segment, CAST(entered_at AS DATE), COUNT(*) FROM segment_membership {where} "
                             "GROUP BY 1, 2", params)
    exited = store.fetchall(f"SELECT segment, CAST(exited_at AS DATE), COUNT(*) FROM segment_membership {where} "
                            f"{'AND' if where else 'WHERE'} exited_at IS NOT NULL GROUP BY 1, 2", params)
    last = today or max([d for _, d, _ in entered + exited] or [date.today()])
    window = [last - timedelta(days=days - 1 - i) for i in range(days)]
    delta: dict[str, dict[date, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for s, d, n in entered:
        delta[s][_day(d)][0] += int(n)
    for s, d, n in exited:
        delta[s][_day(d)][1] += int(n)
    out = {}
    for s, by_day in delta.items():
        members = sum(e - x for d, (e, x) in by_day.items() if d < window[0])
        series: dict[str, list[Any]] = {"days": [d.isoformat() for d in window], "members": [], "entered": [],
                                        "exited": []}
        for d in window:
            e, x = by_day.get(d, (0, 0))
            members += e - x
            series["members"].append(members)
            series["entered"].append(e)
            series["exited"].append(x)
        out[s] = series
    return out


def segment_detail(store: Store, name: str, masker: Masker | None) -> dict[str, Any] | None:
    """A segment's definition, size, daily trend and latest membership changes; None if unknown."""
    row = store.fetchone("SELECT name, kind, origin, status, definition, description, created_at, "
                         "last_evaluated_at FROM segments WHERE name = ?", (name,))
    if row is None:
        return None
    info = dict(zip(("name", "kind", "origin", "status", "definition", "description", "created_at",
                     "evaluated_at"), row))
    size = int(store.scalar("SELECT COUNT(*) FROM segment_membership WHERE segment = ? AND exited_at IS NULL",
                            (name,)) or 0)
    changes = []
    for customer_id, entered, exited, entered_by, exited_by in store.fetchall(
            "SELECT customer_id, entered_at, exited_at, entered_by, exited_by FROM segment_membership "
            "WHERE segment = ? ORDER BY COALESCE(exited_at, entered_at) DESC, customer_id "
            f"LIMIT {CHANGES_PAGE}", (name,)):
        if exited is not None:
            changes.append({"customer_id": customer_id, "change": "exited", "at": exited, "how": exited_by})
        else:
            changes.append({"customer_id": customer_id, "change": "entered", "at": entered, "how": entered_by})
    trend = daily_members(store, name).get(name)
    return {**info, "size": size, "trend": trend, "changes": changes}


def preview_segment(store: Store, text: str, masker: Masker | None) -> dict[str, Any]:
    """How many customers ``text`` selects now and a sample (masked when a ``masker`` is given).
    Raises ``accord.errors.AccordError`` (with the column) when the condition is not valid."""
    result = preview(store, text, sample=PREVIEW_SAMPLE)
    if masker is not None:
        result["sample"] = [{k: masker.field(k, v) if k != "customer_id" else v for k, v in row.items()}
                            for row in result["sample"]]
    return result


def save_and_evaluate(store: Store, cfg: ProjectConfig, name: str, text: str, description: str | None) -> int:
    """Save a segment (origin 'saved') and decide its members now; returns its size."""
    save_segment(store, cfg, name, text, description=description or None)
    report = evaluate_segments(store, cfg, None, names=[name])
    return int(report.segments.get(name, {}).get("members", 0))


def _day(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else value
