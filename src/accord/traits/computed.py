"""Declared traits compiled to SQL over ``_trait_events``.

Counts, sums, averages, extremes, first/last values, first/last times and days-since become
aggregates of one ``GROUP BY customer_id`` (each with its own ``FILTER``); most-frequent values and
unique lists need their own grouping and get a table each. Event names and property values are
bound parameters; property paths go through ``dialect.json_text``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from accord.store.backend import Store
from accord.traits.dialect import first_by, iso_text, num, text_order, to_number
from accord.traits.events import TABLE, PropertyColumns
from accord.traits.settings import EventFilter, TraitSpec

NUMERIC_AGGREGATES = {"sum": "sum", "avg": "avg", "min": "min", "max": "max"}
SEPARATE = ("most_frequent", "unique")


@dataclass
class Fragment:
    sql: str
    params: list[Any] = field(default_factory=list)


def filter_sql(store: Store, f: EventFilter, columns: PropertyColumns, within_seconds: float | None) -> Fragment:
    """The condition an event must meet, as SQL over ``_trait_events`` columns."""
    parts: list[str] = []
    params: list[Any] = []
    if f.event:
        parts.append(f"event IN ({', '.join('?' * len(f.event))})")
        params += f.event
    if f.type:
        parts.append(f"type IN ({', '.join('?' * len(f.type))})")
        params += f.type
    for path, value in (f.where or {}).items():
        col = columns.column(path)
        if isinstance(value, bool):
            parts.append(f"lower({col}) = ?")
            params.append("true" if value else "false")
        elif isinstance(value, (int, float)):
            parts.append(f"{col} = ?" if col == "revenue" else f"{to_number(store, col)} = ?")
            params.append(float(value))
        else:
            parts.append(f"CAST({col} AS TEXT) = ?")
            params.append(value)
    if f.purchase is not None:
        parts.append("is_purchase" if f.purchase else "NOT is_purchase")
    if f.activity is not None:
        parts.append("is_activity" if f.activity else "NOT is_activity")
    if within_seconds is not None:
        parts.append(f"age < {num(within_seconds)}")
    return Fragment(" AND ".join(parts) or "TRUE", params)


def register_columns(specs: dict[str, TraitSpec], columns: PropertyColumns) -> None:
    """Make sure every property a trait reads or filters on has a column in ``_trait_events``."""
    for spec in specs.values():
        if spec.argument:
            columns.column(spec.argument)
        for path in spec.filter.where or {}:
            columns.column(path)


def _value(store: Store, spec: TraitSpec, columns: PropertyColumns, numeric: bool) -> str:
    col = columns.column(spec.argument or "")
    if col == "revenue":
        return col if numeric else "CAST(revenue AS TEXT)"
    return to_number(store, col) if numeric else col


def aggregate_columns(store: Store, specs: dict[str, TraitSpec], columns: PropertyColumns) -> list[Fragment]:
    """One ``expr AS c<i>`` per trait computed in the main grouping (in the order of ``specs``)."""
    out = []
    for i, (_name, spec) in enumerate(specs.items()):
        kind = spec.aggregation
        if kind in SEPARATE:
            continue
        window = spec.within.total_seconds() if spec.within else None
        cond = filter_sql(store, spec.filter, columns, window)
        if kind == "count":
            sql = f"count(*) FILTER (WHERE {cond.sql})"
        elif kind in NUMERIC_AGGREGATES:
            sql = f"{NUMERIC_AGGREGATES[kind]}({_value(store, spec, columns, True)}) FILTER (WHERE {cond.sql})"
        elif kind in ("first", "last"):
            value = _value(store, spec, columns, False)
            order = ["ts", text_order(store, "event_id")]
            sql = first_by(store, value, order, f"{cond.sql} AND {value} IS NOT NULL", last=kind == "last")
        elif kind == "first_seen":
            sql = f"min(ts) FILTER (WHERE {cond.sql})"
        elif kind == "last_seen":
            sql = f"max(ts) FILTER (WHERE {cond.sql})"
        elif kind == "days_since":
            sql = f"min(age) FILTER (WHERE {cond.sql}) / 86400.0"
        else:  # pragma: no cover - AGGREGATIONS and this function move together
            raise AssertionError(kind)
        out.append(Fragment(f"{sql} AS c{i}", cond.params))
    return out


def build_separate_tables(store: Store, specs: dict[str, TraitSpec], columns: PropertyColumns) -> list[str]:
    """A table ``_trait_c<i>(customer_id, value)`` per most-frequent or unique trait; returns their names."""
    tables = []
    for i, (_name, spec) in enumerate(specs.items()):
        if spec.aggregation not in SEPARATE:
            continue
        window = spec.within.total_seconds() if spec.within else None
        cond = filter_sql(store, spec.filter, columns, window)
        value = _value(store, spec, columns, False)
        table = f"_trait_c{i}"
        if spec.aggregation == "most_frequent":
            # The most frequent value; a tie goes to the value that sorts first, the same on both engines.
            sql = (f"SELECT customer_id, value FROM (SELECT customer_id, value, "
                   f"row_number() OVER (PARTITION BY customer_id ORDER BY n DESC, {text_order(store, 'value')}) AS rn "
                   f"FROM (SELECT customer_id, {value} AS value, count(*) AS n FROM {TABLE} "
                   f"WHERE {cond.sql} AND {value} IS NOT NULL GROUP BY customer_id, {value}) g) r WHERE rn = 1")
        else:
            # Distinct values in byte order, at most ``limit``, as a JSON list.
            sql = (f"SELECT customer_id, "
                   f"'[' || string_agg(CAST(to_json(value) AS TEXT), ',' ORDER BY {text_order(store, 'value')}) "
                   f"|| ']' AS value FROM (SELECT customer_id, value, "
                   f"row_number() OVER (PARTITION BY customer_id ORDER BY {text_order(store, 'value')}) AS rn "
                   f"FROM (SELECT DISTINCT customer_id, {value} AS value FROM {TABLE} "
                   f"WHERE {cond.sql} AND {value} IS NOT NULL) d) r WHERE rn <= {int(spec.limit)} "
                   f"GROUP BY customer_id")
        store.create_temp_table_as(table, sql, cond.params)
        tables.append(table)
    return tables


def output_columns(store: Store, specs: dict[str, TraitSpec]) -> list[tuple[str, str, str]]:
    """(name, number expr, text expr) per computed trait over ``_trait_base`` columns ``c<i>``."""
    out = []
    for i, (name, spec) in enumerate(specs.items()):
        col = f"c{i}"
        kind = spec.aggregation
        if kind in ("count", "sum"):
            out.append((name, f"COALESCE({col}, 0)", "NULL"))
        elif kind in ("avg", "min", "max", "days_since"):
            out.append((name, col, "NULL"))
        elif kind in ("first_seen", "last_seen"):
            out.append((name, f"CAST(EXTRACT(EPOCH FROM {col}) AS DOUBLE PRECISION)", iso_text(store, col)))
        else:
            out.append((name, "NULL", col))
    return out
