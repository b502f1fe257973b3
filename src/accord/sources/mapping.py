"""Map a source's rows onto Accord's canonical person fields (or event fields), vectorized in DuckDB.

The mapping is compiled from the typed config into one SELECT over the rows read. Each row gets
its record key, a hash of its raw row (to detect changes) and ``_error``: why it cannot be
stored, or null. Values from config reach SQL only as escaped literals; data never becomes SQL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from accord.config import EVENT_TYPES, LIST_FIELDS, MAP_FIELDS, FieldSpec, SourceConfig

RESERVED_COLUMNS = ("_line", "_line_end", "_raw")
"""Columns readers add beside the source's own; every other column, "_id" included, is data."""

MAX_FIELD_CHARS = 1_048_576
"""A value longer than this quarantines its row: it is almost certainly a broken export."""

_TIMESTAMP_FIELDS = ("created_at", "updated_at")

# The staging table every source's rows pass through on the way to the store.
PEOPLE_STAGE_COLUMNS = (
    "given_name", "family_name", "full_name", "emails", "phones", "street", "city", "region",
    "postcode", "country", "date_of_birth", "company", "external_ids", "consent",
    "source_created_at", "source_updated_at",
)
EVENT_STAGE_COLUMNS = ("type", "event", "ts", "identity_type", "identity_value", "anonymous_id", "revenue")
STAGE_RENAMES = {"source_created_at": "created_at", "source_updated_at": "updated_at"}
STAGE_TYPES = {"source_created_at": "TIMESTAMP", "source_updated_at": "TIMESTAMP", "ts": "TIMESTAMP",
               "revenue": "DOUBLE"}


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def sql_literal(value: str) -> str:
    """A SQL string literal for a value from config (quotes doubled); data never goes through here."""
    return "'" + value.replace("'", "''") + "'"


def _transform(expr: str, name: str) -> str:
    if name == "trim":
        return f"trim({expr})"
    if name == "lower":
        return f"lower({expr})"
    if name == "upper":
        return f"upper({expr})"
    if name == "title":
        return (f"array_to_string(list_transform(string_split(lower({expr}), ' '), "
                f"lambda w: upper(w[1]) || w[2:]), ' ')")
    if name == "digits":
        return f"regexp_replace({expr}, '[^0-9]', '', 'g')"
    if name == "null_if_empty":
        return f"nullif(trim({expr}), '')"
    raise ValueError(name)


@dataclass(frozen=True)
class _Compiled:
    value: str
    error: str | None


def _compile_spec(spec: FieldSpec, label: str, kind: str = "text") -> _Compiled:
    """SQL for one value and for its error message (null when fine). kind: text, date, timestamp, number."""
    expr = f"CAST({_q(spec.column)} AS VARCHAR)" if spec.column else sql_literal(spec.constant or "")
    for t in spec.transforms:
        expr = _transform(expr, t)
    raw = expr
    error = None
    if spec.date_format:
        parsed = f"try_strptime({raw}, {sql_literal(spec.date_format)})"
        expr = f"strftime({parsed}, '%Y-%m-%d')" if kind == "date" else parsed
        bad = f"({raw} IS NOT NULL AND trim({raw}) <> '' AND {parsed} IS NULL)"
        message = f"'{label}: ' || {raw} || ' does not match date format ' || {sql_literal(spec.date_format)}"
    elif kind == "timestamp":
        expr = f"try_cast(try_cast(nullif(trim({raw}), '') AS TIMESTAMPTZ) AS TIMESTAMP)"
        bad = f"(nullif(trim({raw}), '') IS NOT NULL AND {expr} IS NULL)"
        message = f"'{label}: ' || {raw} || ' is not an ISO 8601 time (set date_format)'"
    elif kind == "number":
        expr = f"try_cast(nullif(trim({raw}), '') AS DOUBLE)"
        bad = f"(nullif(trim({raw}), '') IS NOT NULL AND {expr} IS NULL)"
        message = f"'{label}: ' || {raw} || ' is not a number'"
    else:
        bad = None
        message = ""
    if bad is not None:
        if spec.on_error == "quarantine":
            error = f"CASE WHEN {bad} THEN {message} END"
        else:
            expr = f"CASE WHEN {bad} THEN NULL ELSE {expr} END"
    return _Compiled(expr, error)


def _json_list(values: list[str]) -> str:
    items = ", ".join(f"nullif(trim({v}), '')" for v in values)
    return f"CAST(to_json(list_filter([{items}], lambda x: x IS NOT NULL)) AS VARCHAR)"


def _json_map(pairs: list[tuple[str, str]]) -> str:
    args = ", ".join(f"{sql_literal(k)}, nullif(trim({v}), '')" for k, v in pairs)
    return f"CAST(json_object({args}) AS VARCHAR)"


def _people_columns(source: SourceConfig) -> tuple[dict[str, str], list[str]]:
    values: dict[str, str] = {}
    errors: list[str] = []
    specs = source.field_specs()
    for name, spec in specs.items():
        if name in LIST_FIELDS:
            compiled = [_compile_spec(s, f"{name}[{i}]") for i, s in enumerate(spec)]
            values[name] = _json_list([c.value for c in compiled])
        elif name in MAP_FIELDS:
            compiled_map = {k: _compile_spec(s, f"{name}.{k}") for k, s in spec.items()}
            values[name] = _json_map([(k, c.value) for k, c in compiled_map.items()])
            compiled = list(compiled_map.values())
        else:
            kind = "date" if name == "date_of_birth" and spec.date_format else (
                "timestamp" if name in _TIMESTAMP_FIELDS else "text")
            c = _compile_spec(spec, name, kind)
            values[name] = c.value
            compiled = [c]
        errors.extend(c.error for c in compiled if c.error)

    full = specs.get("full_name")
    if isinstance(full, FieldSpec) and full.split:
        f = values["full_name"]
        if full.split == "family, given":
            given = f"nullif(trim(regexp_extract({f}, ',(.*)$', 1)), '')"
            family = f"nullif(trim(CASE WHEN strpos({f}, ',') > 0 THEN regexp_extract({f}, '^([^,]*)', 1) END), '')"
        else:
            given = f"nullif(trim(regexp_extract({f}, '^\\s*(\\S+)', 1)), '')"
            family = f"nullif(trim(regexp_replace({f}, '^\\s*\\S+\\s*', '')), '')"
        values["given_name"] = f"coalesce({values['given_name']}, {given})" if "given_name" in values else given
        values["family_name"] = f"coalesce({values['family_name']}, {family})" if "family_name" in values else family
    return values, errors


def _event_columns(source: SourceConfig) -> tuple[dict[str, str], list[str]]:
    e = source.events
    assert e is not None
    parts = {
        "event": _compile_spec(e.event, "events.event"),
        "ts": _compile_spec(e.timestamp, "events.timestamp", "timestamp"),
        "identity_value": _compile_spec(e.identity, "events.identity"),
    }
    if e.anonymous_id:
        parts["anonymous_id"] = _compile_spec(e.anonymous_id, "events.anonymous_id")
    if e.revenue:
        parts["revenue"] = _compile_spec(e.revenue, "events.revenue", "number")
    values = {k: c.value for k, c in parts.items()}
    errors = [c.error for c in parts.values() if c.error]
    errors.append(f"CASE WHEN ({values['ts']}) IS NULL THEN 'events.timestamp: missing' END")
    values["identity_type"] = sql_literal(e.identity_type)
    event_type = _compile_spec(e.type, "events.type")
    values["type"] = event_type.value
    allowed = ", ".join(sql_literal(t) for t in EVENT_TYPES)
    errors.append(f"CASE WHEN ({event_type.value}) IS NULL OR ({event_type.value}) NOT IN ({allowed}) THEN "
                  f"'events.type: ' || coalesce({event_type.value}, 'empty') || ' is not one of "
                  f"{', '.join(EVENT_TYPES)}' END")
    if e.anonymous_id:
        errors.append(
            f"CASE WHEN ({values['identity_value']}) IS NULL AND ({values['anonymous_id']}) IS NULL "
            f"THEN 'events.identity: neither the identity nor the anonymous id is set' END")
    else:
        errors.append(f"CASE WHEN nullif(trim({values['identity_value']}), '') IS NULL "
                      f"THEN 'events.identity: missing' END")
    return values, errors


def engine() -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SET enable_progress_bar = false")
    conn.execute("SET memory_limit = '512MB'")
    return conn


class Mapper:
    """The mapping of one source compiled once to SQL, applied batch by batch.

    ``map(batch)`` returns (good, bad): good rows with record_key, raw, row_hash, _line, _line_end and the
    canonical (or event) columns; bad rows with _line, _line_end, record_key, reason, raw.
    Duplicate keys across batches are the caller's to find (see ingest).
    """

    def __init__(self, source: SourceConfig, max_field_chars: int = MAX_FIELD_CHARS,
                 conn: duckdb.DuckDBPyConnection | None = None, hash_key: bytes | None = None):
        """``conn``: a DuckDB connection to map in (a DuckDB store's own, so one buffer pool serves both);
        by default an in-memory engine of the mapper's own. ``hash_key``: the PII hash key when person
        fields are encrypted (``privacy.encryption``); ``row_hash`` is then keyed with it."""
        self.source = source
        self.max_field_chars = max_field_chars
        self.own_conn = conn is None
        self.conn = conn if conn is not None else engine()
        if source.kind == "people":
            self.values, self.errors = _people_columns(source)
        else:
            self.values, self.errors = _event_columns(source)
        pk = source.primary_key
        key_parts = [f"nullif(trim(CAST({_q(c)} AS VARCHAR)), '')" for c in pk]
        self.record_key = key_parts[0] if len(pk) == 1 else f"concat_ws('|', {', '.join(key_parts)})"
        key_missing = " OR ".join(f"{p} IS NULL" for p in key_parts)
        self.key_error = f"CASE WHEN {key_missing} THEN 'primary key ({', '.join(pk)}) is empty' END"
        self.referenced = sorted(source.referenced_columns())
        self.stage_columns = PEOPLE_STAGE_COLUMNS if source.kind == "people" else EVENT_STAGE_COLUMNS
        mapping = source.model_dump(mode="json", include={"kind", "primary_key", "fields", "events"})
        self.fingerprint = hashlib.sha256(json.dumps(mapping, sort_keys=True).encode()).hexdigest()[:16]
        # A key of this source's row hashes, derived from the PII hash key (never the key itself in SQL).
        self.row_key = None if hash_key is None else hmac.new(
            hash_key, f"row_hash:{self.fingerprint}".encode(), hashlib.sha256).hexdigest()

    def _sql(self, columns: list[str], where: str = "") -> str:
        present = [c for c in columns if c not in RESERVED_COLUMNS]
        errors = [self.key_error] + self.errors
        if present:
            longest = f"greatest({', '.join(f'coalesce(length({_q(c)}), 0)' for c in present)})"
            errors.insert(0, f"CASE WHEN {longest} > {self.max_field_chars} THEN 'a value is ' || {longest} || "
                             f"' characters long; the limit is {self.max_field_chars}' END")
        select = [f"{self.record_key} AS record_key", f"{self._raw_sql(columns)} AS raw", "_line", "_line_end"]
        for name in self.stage_columns:
            origin = STAGE_RENAMES.get(name, name)
            if origin in self.values:
                select.append(f"{self.values[origin]} AS {_q(name)}")
            else:
                select.append(f"CAST(NULL AS {STAGE_TYPES.get(name, 'VARCHAR')}) AS {_q(name)}")
        error_expr = f"nullif(concat_ws('; ', {', '.join(errors)}), '')"
        return (f"SELECT *, {self._hash('raw')} AS row_hash FROM (SELECT {', '.join(select)}, {error_expr} "
                f"AS _error FROM _accord_batch_in b {where})")

    def _raw_sql(self, columns: list[str]) -> str:
        if "_raw" in columns:
            return "_raw"
        present = [c for c in columns if c not in RESERVED_COLUMNS]
        return "CAST(to_json({" + ", ".join(f"{sql_literal(c)}: {_q(c)}" for c in present) + "}) AS VARCHAR)"

    def _hash(self, raw: str) -> str:
        # The mapping takes part in the hash: after a change to accord.yaml every row maps again.
        if self.row_key is None:
            return f"md5({raw} || {sql_literal(self.fingerprint)})"
        # With encrypted fields, a plain MD5 of the row would let anyone holding the store confirm a guessed
        # row (and so a person's values): the hash is keyed, SHA-256 over key || row || key, 32 hex digits.
        key = sql_literal(self.row_key)
        return f"substr(sha256({key} || {raw} || {key}), 1, 32)"

    def map_into_stage(self, batch: pa.Table, first: bool, known: str) -> pa.Table:
        """Map a batch straight into the ``_stage`` table of this mapper's own connection (a DuckDB store);
        return the rejected rows. Rows whose key and hash ``known`` (SQL giving record_key, row_hash of what
        the store holds) already has are not mapped again: their keys go to ``_seen``."""
        batch = self._complete(batch)
        self.conn.register("_accord_batch_in", batch)
        try:
            self.conn.execute(
                f"CREATE OR REPLACE TEMP TABLE _accord_same AS SELECT k.record_key, k._line, k._line_end FROM "
                f"(SELECT {self.record_key} AS record_key, {self._hash(self._raw_sql(batch.column_names))} "
                f"AS row_hash, _line, _line_end FROM _accord_batch_in) k "
                f"JOIN ({known}) c ON c.record_key = k.record_key AND c.row_hash = k.row_hash")
            self.conn.execute("INSERT INTO _seen SELECT record_key, _line, _line_end FROM _accord_same")
            where = "WHERE NOT EXISTS (SELECT 1 FROM _accord_same s WHERE s._line = b._line)"
            self.conn.execute(
                f"CREATE OR REPLACE TEMP TABLE _accord_mapped AS {self._sql(batch.column_names, where)}")
        finally:
            self.conn.unregister("_accord_batch_in")
        self.conn.execute("DROP TABLE _accord_same")
        verb = "CREATE TEMP TABLE _stage AS" if first else "INSERT INTO _stage"
        self.conn.execute(f"{verb} SELECT * EXCLUDE (_error) FROM _accord_mapped WHERE _error IS NULL")
        bad = self.conn.sql(
            "SELECT _line, _line_end, record_key, _error AS reason, raw FROM _accord_mapped WHERE _error IS NOT NULL"
        ).to_arrow_table()
        self.conn.execute("DROP TABLE _accord_mapped")
        return bad

    def _complete(self, batch: pa.Table) -> pa.Table:
        missing = [c for c in self.referenced if c not in batch.column_names]
        for c in missing:  # JSON objects may leave keys out
            batch = batch.append_column(c, pa.nulls(batch.num_rows, pa.string()))
        return batch

    def _map(self, batch: pa.Table) -> None:
        batch = self._complete(batch)
        self.conn.register("_accord_batch_in", batch)
        try:
            self.conn.execute(f"CREATE OR REPLACE TEMP TABLE _accord_mapped AS {self._sql(batch.column_names)}")
        finally:
            self.conn.unregister("_accord_batch_in")

    def map(self, batch: pa.Table) -> tuple[pa.Table, pa.Table]:
        self._map(batch)
        good = self.conn.sql("SELECT * EXCLUDE (_error) FROM _accord_mapped WHERE _error IS NULL").to_arrow_table()
        bad = self.conn.sql(
            "SELECT _line, _line_end, record_key, _error AS reason, raw FROM _accord_mapped WHERE _error IS NOT NULL"
        ).to_arrow_table()
        self.conn.execute("DROP TABLE _accord_mapped")
        return good, bad

    def close(self) -> None:
        if self.own_conn:
            self.conn.close()
