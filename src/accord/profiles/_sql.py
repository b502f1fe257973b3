"""Small SQL helpers shared by the profiles modules.

The one dialect difference (expanding a JSON list) is kept here until the store backend
offers it; everything else is SQL that DuckDB and PostgreSQL share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from accord.errors import AccordError
from accord.store.backend import Store


def temp_as(store: Store, name: str, select_sql: str) -> None:
    """(Re)create a session temp table from a query (no parameters: PostgreSQL cannot bind them here)."""
    store.create_temp_table_as(name, select_sql)


def drop_temp(store: Store, *names: str) -> None:
    """Drop session temp tables (PostgreSQL keeps small ones for reuse: ``Store.drop_temp_table``)."""
    store.drop_temp_table(*names)


def reserve(store: Store, counter: str, n: int) -> int:
    """Reserve ``n`` values of a monotonic counter; return the first. The UPDATE locks the row on PostgreSQL."""
    last = store.scalar("UPDATE profile_counters SET last_value = last_value + ? WHERE name = ? RETURNING last_value",
                        (n, counter))
    if last is None:
        raise AccordError(f"profile_counters has no counter {counter!r}: the store's migrations did not run")
    return int(last) - n + 1


def reserve_each(store: Store, counters: Sequence[str]) -> list[int]:
    """Reserve one value of each counter in one statement; the values, in the order given. On PostgreSQL the
    rows are locked in that order (every writer takes 'customer' before 'audit', as ``reserve`` calls in
    turn do), so two transactions never wait on each other's counter."""
    marks = ", ".join("?" for _ in counters)
    if store.dialect == "postgresql":
        order = " ".join(f"WHEN ? THEN {i}" for i in range(len(counters)))
        rows = store.fetchall(
            f"WITH locked AS (SELECT name FROM profile_counters WHERE name IN ({marks}) "
            f"ORDER BY CASE name {order} END FOR UPDATE) "
            "UPDATE profile_counters c SET last_value = c.last_value + 1 FROM locked WHERE c.name = locked.name "
            "RETURNING c.name, c.last_value", (*counters, *counters))
    else:  # one writing process: nothing to order
        rows = store.fetchall(f"UPDATE profile_counters SET last_value = last_value + 1 WHERE name IN ({marks}) "
                              "RETURNING name, last_value", tuple(counters))
    values = {name: int(value) for name, value in rows}
    missing = [c for c in counters if c not in values]
    if missing:
        raise AccordError(f"profile_counters has no counter {missing[0]!r}: the store's migrations did not run")
    return [values[c] for c in counters]


def json_list_distinct(store: Store, column: str, normalise: str) -> str:
    """A set-returning select-list expression: the distinct normalised text elements of a JSON list column.

    ``normalise`` is an expression of ``x``, e.g. ``LOWER(TRIM(x))``."""
    if store.dialect == "duckdb":
        return f"unnest(list_distinct(list_transform(from_json({column}, '[\"VARCHAR\"]'), lambda x: {normalise})))"
    return (f"unnest(ARRAY(SELECT DISTINCT {normalise} FROM jsonb_array_elements_text(CASE WHEN "
            f"jsonb_typeof({column}) = 'array' THEN {column} ELSE '[]'::jsonb END) AS t(x)))")


def first_by(store: Store, expr: str, order: list[tuple[str, str]]) -> str:
    """Aggregate: ``expr`` of the first row in ``order``, a list of (column, 'asc'|'desc'); columns must be
    non-null, 'desc' ones integers or timestamps. Much faster than a window on DuckDB."""
    if store.dialect == "duckdb":
        keys = []
        for column, direction in order:
            if direction == "desc":
                keys.append(f"-epoch_us({column})" if column.endswith("_at") else f"-{column}")
            else:
                keys.append(column)
        return f"arg_min({expr}, ({', '.join(keys)}))"
    terms = ", ".join(f"{c} {d.upper()}" for c, d in order)
    return f"(array_agg({expr} ORDER BY {terms}))[1]"


def first_fields(store: Store, fields: Sequence[str], order: list[tuple[str, str]], name: str
                 ) -> tuple[str, dict[str, str]]:
    """Aggregate select items giving ``fields`` of the first row in ``order`` (as ``first_by``), and
    the expression reading each field in the query around the aggregate.

    DuckDB takes one ``arg_min`` of a struct instead of one per field: the ordering key is built and
    compared once."""
    if store.dialect == "duckdb":
        packed = ", ".join(f"{f} := {f}" for f in fields)
        key = first_by(store, "", order).removeprefix("arg_min(, ").removesuffix(")")
        return (f"arg_min(struct_pack({packed}), {key}) AS {name}",
                {f: f"struct_extract({name}, '{f}')" for f in fields})
    return (", ".join(f"{first_by(store, f, order)} AS {name}_{f}" for f in fields),
            {f: f"{name}_{f}" for f in fields})


def latest_fields(store: Store, fields: Sequence[str], name: str) -> tuple[str, dict[str, str]]:
    """As ``first_fields``, for the row with the greatest (observed_at, source, record_key)."""
    if store.dialect == "duckdb":
        packed = ", ".join(f"{f} := {f}" for f in fields)
        return (f"arg_max(struct_pack({packed}), (observed_at, source, record_key)) AS {name}",
                {f: f"struct_extract({name}, '{f}')" for f in fields})
    return (", ".join(f"{latest(store, f)} AS {name}_{f}" for f in fields), {f: f"{name}_{f}" for f in fields})


def latest(store: Store, expr: str) -> str:
    """Aggregate: ``expr`` of the row with the greatest (observed_at, source, record_key)."""
    if store.dialect == "duckdb":
        return f"arg_max({expr}, (observed_at, source, record_key))"
    return f"(array_agg({expr} ORDER BY observed_at DESC, source DESC, record_key DESC))[1]"


def rows_for_keys(store: Store, table: str, keys_sql: str, columns: Sequence[str] = ()) -> str:
    """A subquery: ``columns`` (default: every column) of the rows of ``table`` whose (source, record_key)
    ``keys_sql`` selects.

    On DuckDB the keys are matched reading the two key columns only, then the rows are fetched by
    rowid (the scan skips every other row): a plain join reads every column of every row, which for
    a few thousand records of source_records costs ~6 times as much. Naming the columns saves reading
    the others (source_records' raw JSON above all). PostgreSQL uses its key index."""
    if store.dialect == "duckdb":
        return (f"(SELECT {_columns(columns)} FROM {table} WHERE rowid IN (SELECT t.rowid FROM {table} t "
                f"JOIN ({keys_sql}) k ON t.source = k.source AND t.record_key = k.record_key))")
    return (f"(SELECT {_columns(columns, 't.')} FROM {table} t JOIN ({keys_sql}) k "
            f"ON t.source = k.source AND t.record_key = k.record_key)")


def rows_where(store: Store, table: str, condition: str, columns: Sequence[str] = ()) -> str:
    """A query of ``columns`` (default: every column) of the rows of ``table`` that meet ``condition``
    (on its own columns).

    On DuckDB the condition is evaluated reading its columns only, then the rows are fetched by rowid:
    for a few thousand rows of a table of millions that reads ~5 times less. PostgreSQL uses its indexes."""
    if store.dialect == "duckdb":
        return (f"SELECT {_columns(columns)} FROM {table} WHERE rowid IN "
                f"(SELECT rowid FROM {table} WHERE {condition})")
    return f"SELECT {_columns(columns)} FROM {table} WHERE {condition}"


def _columns(columns: Sequence[str], prefix: str = "") -> str:
    return ", ".join(prefix + c for c in columns) if columns else f"{prefix}*"


def lookup_indexes(store: Store) -> dict[str, str]:
    """Indexes on the golden tables (name -> table), by customer_id: PostgreSQL only.

    On DuckDB an ART index makes rewriting these tables' rows ~15x slower at commit (measured:
    800k rows, 6 s vs 0.2 s), while zone maps already serve lookups by customer in milliseconds.
    Migrations cannot yet say "PostgreSQL only", so the stage creates them."""
    if store.dialect != "postgresql":
        return {}
    return {"golden_values_customer": "golden_values", "golden_multi_customer": "golden_multi"}


def create_lookup_indexes(store: Store) -> None:
    """The ``lookup_indexes`` (PostgreSQL only), where they are missing."""
    for index, table in lookup_indexes(store).items():
        store.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {table} (customer_id)")


def rid(source: str, record_key: str) -> str:
    """A record's name across Accord: ``source:record_key``."""
    return f"{source}:{record_key}"


def split_rid(value: str) -> tuple[str, str]:
    source, sep, key = str(value).partition(":")
    if not sep or not source or not key:
        raise AccordError(f"record {value!r}: expected SOURCE:RECORD_KEY")
    return source, key


def to_frame(data: pa.Table | pd.DataFrame | None) -> pd.DataFrame | None:
    if data is None:
        return None
    return data.to_pandas() if isinstance(data, pa.Table) else data


def str_array(values: Sequence[Any]) -> pa.Array:
    return pa.array([None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in values],
                    pa.string())
