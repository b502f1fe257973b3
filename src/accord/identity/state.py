"""What the identity stage keeps between runs so the next one resolves only what changed.

* ``identity_standardized``: every resolved record's standardized columns and the row hash they
  were computed from (so a run standardizes only new and changed records);
* ``identity_record_identifiers``: every record's identifiers (who shares an email, a phone, an
  external id), before exclusions;
* ``identity_watermarks``: the last human decision the clustering has seen;
* the human decisions themselves (``identity_constraints``, written by review and unmerge), read
  here as must-link edges and cannot-link partners.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa

from accord.identity.clustering import MUST_LINK_EDGE
from accord.store.backend import Store

TEXT_COLUMNS = (
    "std_given_name", "std_family_name", "std_given_initial", "std_name_group", "std_family_name_metaphone",
    "std_email", "std_email_user", "std_phone", "std_street", "std_house_number", "std_unit", "std_city",
    "std_postcode", "std_country", "std_dob", "std_company", "external_ids",
)
LIST_COLUMNS = ("std_emails", "std_phones", "quality_flags")
STATE_COLUMNS = ("source", "record_key", "rid", "row_hash", *TEXT_COLUMNS, *LIST_COLUMNS)
CONSTRAINT_WATERMARK = "constraint"
SETTINGS_WATERMARK = "settings"
"""A hash of the settings the stored clustering was made with: when they change, a full rebuild."""

# PostgreSQL only (see profiles/_sql.lookup_indexes for why not DuckDB): name -> (table, columns).
_PG_INDEXES = {
    "identity_standardized_key": ("identity_standardized", "source, record_key"),
    "identity_standardized_rid": ("identity_standardized", "rid"),
    "identity_standardized_email": ("identity_standardized", "std_email"),
    "identity_standardized_phone": ("identity_standardized", "std_phone"),
    "identity_standardized_dob": ("identity_standardized", "std_dob"),
    "identity_standardized_family": ("identity_standardized", "std_family_name, std_given_initial"),
    "identity_standardized_given": ("identity_standardized", "std_given_name"),  # its term frequencies
    "identity_standardized_postcode": ("identity_standardized", "std_postcode"),
    "identity_standardized_email_user": ("identity_standardized", "std_email_user"),
    "identity_record_identifiers_value": ("identity_record_identifiers", "id_type, value"),
    "identity_record_identifiers_rid": ("identity_record_identifiers", "rid"),
    # identity and match_edges have none on DuckDB either (migration 0016).
    "identity_record": ("identity", "source, record_key"),
    "identity_cluster": ("identity", "cluster_id"),
    "match_edges_a": ("match_edges", "record_a"),
    "match_edges_b": ("match_edges", "record_b"),
    "match_edges_status": ("match_edges", "status"),
}


def _text(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and v != v):
        return None
    return v if isinstance(v, str) else str(v)


def _json_list(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and v != v):
        return None
    return orjson.dumps(list(v)).decode() if len(v) else None


def state_table(std: pd.DataFrame) -> pa.Table:
    """The ``identity_standardized`` rows of prepared (standardized) records with ``rid`` and ``row_hash``."""
    data: dict[str, pa.Array] = {}
    for col in ("source", "record_key", "rid", "row_hash"):
        data[col] = pa.array(std[col].astype(str), pa.string(), from_pandas=True)
    for col in TEXT_COLUMNS:
        if col not in std:
            data[col] = pa.nulls(len(std), pa.string())
            continue
        try:  # standardized columns hold text or nulls: converted whole
            data[col] = pa.array(std[col], pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            data[col] = pa.array([_text(v) for v in std[col].tolist()], pa.string())
    for col in LIST_COLUMNS:
        values = std[col].tolist() if col in std else [None] * len(std)
        data[col] = pa.array([_json_list(v) for v in values], pa.string())
    return pa.table(data)


def state_row(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """One prepared record's ``identity_standardized`` values, in ``STATE_COLUMNS`` order, as
    ``state_table`` converts them (a real-time placement writes one row)."""
    return tuple(_json_list(record.get(c)) if c in LIST_COLUMNS else _text(record.get(c)) for c in STATE_COLUMNS)


def frame_from_state(table: pa.Table) -> pd.DataFrame:
    """Stored rows back in the prepared form: lists as lists (empty ones as None), text as text.

    List columns may come as JSON text (as stored) or already as lists (``read_state`` has the store
    parse them)."""
    lists = {c: table[c] for c in LIST_COLUMNS}
    df = table.drop_columns(list(LIST_COLUMNS)).to_pandas()
    df = df.astype(object).where(df.notna(), None)
    for col, column in lists.items():
        if pa.types.is_list(column.type):
            parsed = [v or None for v in column.to_pylist()]
        else:
            parsed = [json.loads(v) if v else None for v in column.to_pylist()]
        df[col] = pd.Series(parsed if col != "quality_flags" else [p or [] for p in parsed],
                            index=df.index, dtype=object)
    return df[list(table.column_names)]


def _list_sql(store: Store, col: str) -> str:
    """A stored JSON list column read as a list of text (NULL stays NULL)."""
    if store.dialect == "duckdb":
        return f"CAST(from_json(s.{col}, '[\"VARCHAR\"]') AS VARCHAR[]) AS {col}"
    return (f"CASE WHEN s.{col} IS NULL THEN NULL ELSE "
            f"ARRAY(SELECT jsonb_array_elements_text(CAST(s.{col} AS JSONB))) END AS {col}")


def read_state(store: Store, where: str = "", params: tuple = ()) -> pd.DataFrame:
    """Stored standardized records (``where`` filters ``identity_standardized s``)."""
    cols = ", ".join(_list_sql(store, c) if c in LIST_COLUMNS else f"s.{c}" for c in STATE_COLUMNS)
    table = store.fetch_arrow(f"SELECT {cols} FROM identity_standardized s {where}", params)
    if table.num_rows == 0:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in STATE_COLUMNS})
    return frame_from_state(table)


def read_model_input(store: Store, columns: list[str], where: str = "") -> pa.Table:
    """Stored records as the model reads them, straight into Arrow: ``rid`` and ``columns``, the
    list columns (std_emails, std_phones) as lists (``where`` filters ``identity_standardized s``)."""
    selects = ["s.rid"]
    for col in columns:
        if col in LIST_COLUMNS:
            selects.append(_list_sql(store, col))
        elif col in STATE_COLUMNS:
            selects.append(f"s.{col}")
    return store.fetch_arrow(f"SELECT {', '.join(selects)} FROM identity_standardized s {where}")


def identifier_rows(ids: pd.DataFrame) -> pa.Table:
    """``identity_record_identifiers`` rows from ``rules.record_identifiers`` (rid, type, value)."""
    return pa.table({
        "rid": pa.array(ids["rid"].astype(str).tolist(), pa.string()),
        "id_type": pa.array(ids["type"].astype(str).tolist(), pa.string()),
        "value": pa.array(ids["value"].astype(str).tolist(), pa.string()),
    })


def ensure_indexes(store: Store) -> None:
    if store.dialect != "postgresql":
        return
    for name, (table, cols) in _PG_INDEXES.items():
        store.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({cols})")


def drop_indexes(store: Store) -> None:
    if store.dialect != "postgresql":
        return
    for name in _PG_INDEXES:
        store.execute(f"DROP INDEX IF EXISTS {name}")


def settings_hash(settings: object, *extra: object) -> int:
    """A stable 60-bit hash of identity settings (a pydantic model) and other values that shape clusters."""
    text = json.dumps([settings.model_dump(mode="json"), *extra], sort_keys=True, default=str)  # type: ignore[attr-defined]
    return int(hashlib.sha256(text.encode()).hexdigest()[:15], 16)


def edges_touching(store: Store, rids: str, *, columns: str = "*", table: str = "match_edges",
                   where: str = "") -> str:
    """A query of the edges of ``table`` (match_edges' columns) with an end among ``rids`` (a query of
    rids) and meeting ``where``. DuckDB scans once with an OR. PostgreSQL plans an OR of two IN
    subqueries as a scan of the whole table with a hashed subplan (~0.3 s at a million edges); as two
    branches each is answered by its index (the second leaves out the rows the first gave)."""
    cond = f"({where}) AND " if where else ""
    if store.dialect != "postgresql":
        return f"SELECT {columns} FROM {table} WHERE {cond}(record_a IN ({rids}) OR record_b IN ({rids}))"
    return (f"SELECT {columns} FROM {table} WHERE {cond}record_a IN ({rids}) UNION ALL "
            f"SELECT {columns} FROM {table} WHERE {cond}record_b IN ({rids}) AND record_a NOT IN ({rids})")


def watermark(store: Store, name: str) -> int | None:
    value = store.scalar("SELECT value FROM identity_watermarks WHERE name = ?", (name,))
    return None if value is None else int(value)


def set_watermark(store: Store, name: str, value: int) -> None:
    store.execute("DELETE FROM identity_watermarks WHERE name = ?", (name,))
    store.execute("INSERT INTO identity_watermarks (name, value) VALUES (?, ?)", (name, int(value)))


@dataclass
class Decisions:
    """Human decisions in force: must-link pairs and each record's cannot-link partners."""

    must_link: list[tuple[str, str]] = field(default_factory=list)
    cannot_link: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    last_id: int = 0

    def edges(self, current: set[str] | None = None) -> pd.DataFrame:
        """Must-link edges (between current records, when ``current`` is given) for ``cluster_edges``."""
        pairs = [(a, b) for a, b in self.must_link if current is None or (a in current and b in current)]
        return pd.DataFrame({
            "record_a": [a for a, _ in pairs], "record_b": [b for _, b in pairs],
            "probability": [None] * len(pairs), "match_weight": [None] * len(pairs),
            "rule_or_model": [MUST_LINK_EDGE] * len(pairs), "priority": [-1] * len(pairs),
        }, dtype=object)

    def records(self) -> set[str]:
        out = {r for pair in self.must_link for r in pair}
        return out | set(self.cannot_link)


def decisions(store: Store, naming: str | None = None) -> Decisions:
    """The latest decision per pair (identity_constraints is append-only). ``naming`` (an SQL list of
    record ids): only the decisions naming one of them, the only ones clustering them can meet (a
    real-time placement)."""
    where = f"WHERE c.record_a IN ({naming}) OR c.record_b IN ({naming})" if naming else ""
    rows = store.fetchall(f"""
        SELECT record_a, record_b, kind FROM (
            SELECT c.record_a, c.record_b, c.kind,
                   ROW_NUMBER() OVER (PARTITION BY record_a, record_b ORDER BY constraint_id DESC) AS rn
            FROM identity_constraints c {where}) x
        WHERE rn = 1 ORDER BY record_a, record_b""")
    out = Decisions(last_id=int(store.scalar("SELECT COALESCE(MAX(constraint_id), 0) FROM identity_constraints")))
    for a, b, kind in rows:
        if kind == "must_link":
            out.must_link.append((a, b))
        elif kind == "cannot_link":
            out.cannot_link[a].add(b)
            out.cannot_link[b].add(a)
    return out


def decided_since(store: Store, last_id: int) -> set[str]:
    """Records named by decisions newer than ``last_id``."""
    rows = store.fetchall("SELECT record_a, record_b FROM identity_constraints WHERE constraint_id > ?", (last_id,))
    return {r for pair in rows for r in pair}
