"""RFM: recency, frequency and monetary quintile scores (1-5) and the named RFM segments.

Scores are quintiles of the customers with at least one purchase: a customer's score is
``floor(5 * percent_rank) + 1`` of their value (recency ranked from the longest ago, so recent
buyers score 5), which keeps equal values in one score on both engines. The batch run stores, per
dimension and score, the value where that score begins (``trait_thresholds``), so one customer
updated in real time is scored against the same boundaries.

Segments come from R and FM = ceil((F + M) / 2), using the widely used R x F segment map with
"lost" split from "hibernating" at R = 1 (eleven segments; the grid is in docs/traits.md).
"""

from __future__ import annotations

from datetime import datetime

from accord.store.backend import Store
from accord.traits.dialect import num

DIMENSIONS = {"recency": "rfm_recency_days", "frequency": "rfm_frequency_n", "monetary": "rfm_monetary_v"}
"""Dimension -> column of ``_trait_agg`` holding the customer's raw value."""
DESCENDING = {"recency"}
"""Smaller is better: ranked from the largest value, thresholds are upper bounds."""

SEGMENTS = ("champions", "loyal", "potential_loyalist", "new", "promising", "need_attention",
            "about_to_sleep", "at_risk", "cant_lose_them", "hibernating", "lost")

# SEGMENT_GRID[r][fm] for r, fm in 1..5.
SEGMENT_GRID: dict[int, dict[int, str]] = {
    5: {1: "new", 2: "potential_loyalist", 3: "potential_loyalist", 4: "champions", 5: "champions"},
    4: {1: "promising", 2: "potential_loyalist", 3: "potential_loyalist", 4: "loyal", 5: "loyal"},
    3: {1: "about_to_sleep", 2: "about_to_sleep", 3: "need_attention", 4: "loyal", 5: "loyal"},
    2: {1: "hibernating", 2: "hibernating", 3: "at_risk", 4: "at_risk", 5: "cant_lose_them"},
    1: {1: "lost", 2: "lost", 3: "at_risk", 4: "at_risk", 5: "cant_lose_them"},
}


def segment_name(r: int, f: int, m: int) -> str:
    return SEGMENT_GRID[r][(f + m + 1) // 2]


Thresholds = dict[str, dict[int, float]]


def compute_thresholds(store: Store, agg_table: str) -> Thresholds:
    """Per dimension, the value at which each score begins, from every customer with a purchase."""
    out: Thresholds = {}
    for dim, col in DIMENSIONS.items():
        order = f"{col} DESC" if dim in DESCENDING else col
        edge = "max" if dim in DESCENDING else "min"
        rows = store.fetchall(
            f"SELECT score, {edge}(v) FROM (SELECT {col} AS v, CAST(LEAST(5, FLOOR(5 * percent_rank() OVER "
            f"(ORDER BY {order})) + 1) AS INTEGER) AS score FROM {agg_table} WHERE rfm_frequency_n > 0) s "
            f"GROUP BY score ORDER BY score")
        out[dim] = {int(score): float(value) for score, value in rows}
    return out


def save_thresholds(store: Store, thresholds: Thresholds, computed_at: datetime) -> None:
    store.execute("DELETE FROM trait_thresholds WHERE dimension IN ('recency', 'frequency', 'monetary')")
    store.executemany(
        "INSERT INTO trait_thresholds (dimension, score, threshold, computed_at) VALUES (?, ?, ?, ?)",
        [(dim, score, value, computed_at) for dim, scores in thresholds.items() for score, value in scores.items()])


def load_thresholds(store: Store) -> Thresholds:
    out: Thresholds = {dim: {} for dim in DIMENSIONS}
    for dim, score, value in store.fetchall(
            "SELECT dimension, score, threshold FROM trait_thresholds WHERE dimension IN "
            "('recency', 'frequency', 'monetary')"):
        out[dim][int(score)] = float(value)
    return out


def score_of(dim: str, value: float, thresholds: dict[int, float]) -> int:
    """The score of one value against stored thresholds (Python twin of ``score_sql``)."""
    best = 1
    for score, edge in thresholds.items():
        if (value <= edge) if dim in DESCENDING else (value >= edge):
            best = max(best, score)
    return best


def score_sql(dim: str, column: str, thresholds: dict[int, float]) -> str:
    """SQL scoring ``column`` 1-5 against ``thresholds``; NULL for customers without purchases."""
    cmp = "<=" if dim in DESCENDING else ">="
    whens = " ".join(f"WHEN {column} {cmp} {num(edge)} THEN {score}"
                     for score, edge in sorted(thresholds.items(), reverse=True) if score > 1)
    return f"(CASE WHEN rfm_frequency_n IS NULL OR rfm_frequency_n = 0 THEN NULL {whens} ELSE 1 END)"


def fm_sql(f: str, m: str) -> str:
    """FM = ceil((F + M) / 2) of scores in columns f and m."""
    return f"CAST(FLOOR(({f} + {m} + 1) / 2) AS INTEGER)"


def segment_table_sql() -> str:
    """The segment grid as a relation ``seg(seg_r, seg_fm, segment)``, to join on R and FM.

    A join on 25 constant rows plans in a fraction of the time a 25-branch CASE over computed
    scores takes, which matters when one profile is updated per event."""
    rows = ", ".join(f"({r}, {fm}, '{name}')" for r, row in SEGMENT_GRID.items() for fm, name in row.items())
    return f"(VALUES {rows}) AS seg(seg_r, seg_fm, segment)"
