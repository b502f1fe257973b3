"""The few SQL expressions traits need that DuckDB and PostgreSQL spell differently.

Property paths reach SQL only through ``json_text``, after ``check_property`` has accepted them
(plain keys: letters, digits, ``_``, ``$``, ``-``), and are quoted as one SQL string literal; event
names and property values are always bound as parameters.
"""

from __future__ import annotations

import math

from accord.store.backend import Store
from accord.traits.settings import check_property

# No '?' in it: the store turns every '?' into a bind parameter on PostgreSQL.
_NUMBER = r"^\s*-{0,1}(\d+(\.\d*){0,1}|\.\d+)([eE][-+]{0,1}\d+){0,1}\s*$"


def json_text(store: Store, column: str, path: str) -> str:
    """The text at ``path`` (dotted keys) inside the JSON ``column``; NULL when absent."""
    keys = check_property(path).split(".")
    if store.dialect == "duckdb":
        return f"json_extract_string({column}, '$." + ".".join(f'"{k}"' for k in keys) + "')"
    return f"({column} #>> '{{" + ",".join(f'"{k}"' for k in keys) + "}')"


def to_number(store: Store, text_expr: str) -> str:
    """A DOUBLE from text, NULL when the text is not a number (never an error)."""
    if store.dialect == "duckdb":
        return f"TRY_CAST({text_expr} AS DOUBLE)"
    return (f"(CASE WHEN ({text_expr}) ~ '{_NUMBER}' THEN CAST({text_expr} AS DOUBLE PRECISION) END)")


def epoch(expr: str) -> str:
    """Seconds since 1970 of a timestamp, as a double, on both engines."""
    return f"CAST(EXTRACT(EPOCH FROM {expr}) AS DOUBLE PRECISION)"


def iso_text(store: Store, expr: str) -> str:
    """A timestamp as ISO 8601 text without a zone (the store holds naive UTC)."""
    if store.dialect == "duckdb":
        return f"strftime({expr}, '%Y-%m-%dT%H:%M:%S')"
    return f"to_char({expr}, 'YYYY-MM-DD\"T\"HH24:MI:SS')"


def text_order(store: Store, expr: str) -> str:
    """Byte-order sorting of text, so both engines sort (and break ties) the same way."""
    return f'{expr} COLLATE "C"' if store.dialect == "postgresql" else expr


def first_by(store: Store, value: str, order: list[str], condition: str, last: bool = False) -> str:
    """The value of the first (or last) row by the ``order`` columns among rows where ``condition`` holds."""
    if store.dialect == "duckdb":
        fn = "arg_max" if last else "arg_min"
        key = order[0] if len(order) == 1 else f"row({', '.join(order)})"
        return f"{fn}({value}, {key}) FILTER (WHERE {condition})"
    direction = "DESC" if last else "ASC"
    parts = ", ".join(f"{col} {direction}" for col in order)
    return f"(array_agg({value} ORDER BY {parts}) FILTER (WHERE {condition}))[1]"


def count_distinct_small(store: Store, expr: str, condition: str, below: int) -> str:
    """How many distinct values ``expr`` takes where ``condition`` holds, for an ``expr`` known to be a
    whole number in [0, ``below``). Up to 63 values this is the popcount of a bitmask OR-ed together,
    an ordinary aggregate (a DISTINCT aggregate costs a hash table per group: ~40 % of the traits
    aggregation at 64 values or more, where it is still used)."""
    if below > 63:
        return f"count(DISTINCT {expr}) FILTER (WHERE {condition})"
    # Clamped because DuckDB computes the argument for the rows the FILTER then drops, too.
    bit = f"CAST(LEAST(GREATEST({expr}, 0), {below - 1}) AS INTEGER)"
    mask = f"bit_or(CAST(1 AS BIGINT) << {bit}) FILTER (WHERE {condition})"
    if store.dialect == "postgresql":
        mask = f"CAST({mask} AS bit(64))"
    return f"COALESCE(bit_count({mask}), 0)"


def num(value: float) -> str:
    """A number computed by Accord (never user text) as an SQL literal."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value}")
    return repr(value)


def json_cast(store: Store, expr: str) -> str:
    return store.type_sql(f"CAST({expr} AS ${{JSON}})")
