"""Engagement trend, support sentiment and the health score.

Engagement: activity (the customer's own events) per week over the last ``weeks`` weeks up to
``as_of``, week 0 the oldest. The trend is the least-squares slope of that weekly count, which
with fixed x = 0..N-1 is sum((x_e - mean(x)) over events) / Sxx, so it is one aggregate.

Support sentiment (0-1) per customer: the mean over their tickets in the window of each ticket's
score, the mean of (sentiment + 1) / 2 and (satisfaction - 1) / 4 where present. Tickets are the
records of the support sources (matched to customers through record_customer) and support events.

Health (0-100) = 100 * sum(w_i * c_i) / sum(w_i) over the components a customer has:
engagement = active weeks / weeks; purchases = (R + F + M - 3) / 12 (0 without purchases);
support = support sentiment; churn = 1 - churn_risk. A customer without tickets, or without a
churn_risk trait, has that component left out and the other weights renormalized.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from accord.store.backend import Store
from accord.traits.computed import Fragment
from accord.traits.dialect import count_distinct_small, epoch, json_text, num, to_number
from accord.traits.events import SCOPE_TABLE, TABLE, PropertyColumns
from accord.traits.settings import HealthSettings, SupportSettings

WEEK = 7 * 86400
SUPPORT_TABLE = "_trait_support"


def engagement_columns(store: Store, weeks: int) -> list[Fragment]:
    mean_x = (weeks - 1) / 2
    cond = f"is_activity AND age < {num(weeks * WEEK)}"
    week = f"({weeks - 1} - FLOOR(age / {WEEK}))"
    return [
        Fragment(f"sum({week} - {num(mean_x)}) FILTER (WHERE {cond}) AS eng_num"),
        Fragment(f"{count_distinct_small(store, f'FLOOR(age / {WEEK})', cond, weeks)} AS eng_weeks"),
        Fragment("min(age) FILTER (WHERE is_activity) AS last_activity_age"),
    ]


def trend_sql(weeks: int) -> str:
    sxx = weeks * (weeks * weeks - 1) / 12
    return f"(COALESCE(eng_num, 0) / {num(sxx)})"


def slope(counts: list[float]) -> float:
    """Least-squares slope of weekly counts (oldest first): the Python statement of ``trend_sql``."""
    n = len(counts)
    mean_x, mean_y = (n - 1) / 2, sum(counts) / n
    return sum((x - mean_x) * (y - mean_y) for x, y in enumerate(counts)) / sum((x - mean_x) ** 2 for x in range(n))


def register_columns(settings: SupportSettings, columns: PropertyColumns) -> None:
    if settings.events:
        for path in (settings.sentiment, settings.satisfaction):
            if path:
                columns.column(path)


def clamp(expr: str, low: float, high: float) -> str:
    """``expr`` held inside [low, high], NULL staying NULL (GREATEST and LEAST skip NULLs on both engines)."""
    return f"(CASE WHEN {expr} IS NULL THEN NULL ELSE GREATEST({num(low)}, LEAST({num(high)}, {expr})) END)"


def _ticket_score(sentiment: str, satisfaction: str) -> str:
    s = clamp(sentiment, -1, 1)
    q = clamp(satisfaction, 1, 5)
    return (f"((COALESCE(({s} + 1) / 2, 0) + COALESCE(({q} - 1) / 4, 0)) / NULLIF("
            f"(CASE WHEN {sentiment} IS NULL THEN 0 ELSE 1 END) + "
            f"(CASE WHEN {satisfaction} IS NULL THEN 0 ELSE 1 END), 0))")


def build_support_table(store: Store, settings: SupportSettings, columns: PropertyColumns, as_of: datetime,
                        customer_id: str | None = None, scoped: bool = False) -> int:
    """``_trait_support(customer_id, support)`` (every customer, one, or with ``scoped`` those in
    ``_trait_scope``); returns the number of customers with tickets."""
    parts: list[str] = []
    params: list[Any] = []
    window = settings.within.total_seconds()
    if settings.sources and (settings.sentiment or settings.satisfaction):
        s = to_number(store, json_text(store, "sr.raw", settings.sentiment)) if settings.sentiment else "NULL"
        q = to_number(store, json_text(store, "sr.raw", settings.satisfaction)) if settings.satisfaction else "NULL"
        at = "COALESCE(sr.source_created_at, sr.first_seen_at)"
        only = " AND rc.customer_id = ?" if customer_id is not None else ""
        if scoped:
            only = f" AND rc.customer_id IN (SELECT customer_id FROM {SCOPE_TABLE})"
        parts.append(
            f"SELECT rc.customer_id, {_ticket_score('s', 'q')} AS score FROM (SELECT rc.customer_id, {s} AS s, "
            f"{q} AS q FROM source_records sr JOIN record_customer rc ON rc.source = sr.source AND "
            f"rc.record_key = sr.record_key WHERE sr.source IN ({', '.join('?' * len(settings.sources))}) "
            f"AND sr.deleted_at IS NULL AND {at} <= ? AND {epoch('CAST(? AS TIMESTAMP)')} - {epoch(at)} < {num(window)}"
            f"{only}) rc")
        params += [*settings.sources, as_of, as_of] + ([customer_id] if customer_id is not None else [])
    if settings.events and (settings.sentiment or settings.satisfaction):
        s = to_number(store, columns.column(settings.sentiment)) if settings.sentiment else "NULL"
        q = to_number(store, columns.column(settings.satisfaction)) if settings.satisfaction else "NULL"
        parts.append(
            f"SELECT customer_id, {_ticket_score('s', 'q')} AS score FROM (SELECT customer_id, {s} AS s, {q} AS q "
            f"FROM {TABLE} WHERE event IN ({', '.join('?' * len(settings.events))}) AND age < {num(window)}) te")
        params += settings.events
    body = " UNION ALL ".join(parts) if parts else (
        "SELECT CAST(NULL AS TEXT) AS customer_id, CAST(NULL AS DOUBLE PRECISION) AS score")
    store.create_temp_table_as(SUPPORT_TABLE, f"SELECT customer_id, avg(score) AS support FROM ({body}) t "
                  f"WHERE score IS NOT NULL GROUP BY customer_id", params)
    return -1 if customer_id is not None or scoped else int(store.scalar(f"SELECT count(*) FROM {SUPPORT_TABLE}") or 0)


def health_sql(settings: HealthSettings, weeks: int, rfm_enabled: bool) -> str:
    """The health score over ``_trait_base`` columns eng_weeks, r, f, m, support, churn_risk."""
    w = settings.weights
    terms = [(w.engagement, f"(COALESCE(eng_weeks, 0) / {num(weeks)})")]
    if rfm_enabled:
        terms.append((w.purchases, "(CASE WHEN r IS NULL THEN 0.0 ELSE (r + f + m - 3) / 12.0 END)"))
    terms.append((w.support, "support"))
    terms.append((w.churn, f"(1.0 - {clamp('churn_risk', 0, 1)})"))
    top = " + ".join(f"COALESCE({num(weight)} * {expr}, 0)" for weight, expr in terms if weight > 0)
    bottom = " + ".join(f"(CASE WHEN {expr} IS NULL THEN 0 ELSE {num(weight)} END)" for weight, expr in terms
                        if weight > 0)
    return f"ROUND(CAST(100.0 * ({top}) / NULLIF({bottom}, 0) AS NUMERIC), 1)"
