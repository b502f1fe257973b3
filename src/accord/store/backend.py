"""One store interface over DuckDB (embedded default) and PostgreSQL (server).

Call sites write SQL that both engines share, with ``?`` placeholders; what differs
(connection, placeholders, bulk loading, type names) lives here.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlparse, urlunparse

import pyarrow as pa

from accord.errors import StoreError

# Types that differ between the engines; migrations write ${NAME}.
DIALECT_TYPES = {
    "duckdb": {"JSON": "JSON", "TIMESTAMP": "TIMESTAMP", "DOUBLE": "DOUBLE", "BIGSERIAL": "BIGINT"},
    "postgresql": {"JSON": "JSONB", "TIMESTAMP": "TIMESTAMP", "DOUBLE": "DOUBLE PRECISION", "BIGSERIAL": "BIGSERIAL"},
}


class Store(ABC):
    """A connection to Accord's store. Use ``transaction()`` for every write."""

    dialect: str
    url: str

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    @abstractmethod
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    @abstractmethod
    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def fetch_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table: ...

    @abstractmethod
    def load_arrow(self, table: str, data: pa.Table) -> None:
        """Append an Arrow table to ``table`` (columns matched by name)."""

    @abstractmethod
    def create_temp_table(self, name: str, data: pa.Table) -> None:
        """Create (or replace) a session-scoped table holding ``data``."""

    def create_temp_table_as(self, name: str, select_sql: str, params: Sequence[Any] = ()) -> None:
        """Create (or replace) a session-scoped table holding what ``select_sql`` selects."""
        self.execute(f"DROP TABLE IF EXISTS {name}")
        self.execute(f"CREATE TEMP TABLE {name} AS {select_sql}", params)

    @abstractmethod
    def insert_new(self, table: str, data: pa.Table, key_columns: Sequence[str]) -> int:
        """Insert the rows of ``data`` whose key is not stored yet; return how many were inserted.

        A key repeated inside ``data`` is inserted once (its first row). ``key_columns`` must be the
        table's primary key (or a unique index): PostgreSQL's ON CONFLICT needs it, and it keeps
        concurrent writers from inserting the same key twice."""

    @abstractmethod
    def is_unique_violation(self, exc: BaseException) -> bool:
        """Whether ``exc`` is this engine's duplicate-key error (a primary key or unique index refused a row)."""

    def lock_for_transaction(self, name: str) -> None:
        """Serialize writers across processes on ``name`` until this transaction ends (PostgreSQL's
        advisory lock; DuckDB has one writing process, so there is nothing to wait for)."""

    @abstractmethod
    def reader(self) -> Store:
        """Another connection to the same store, for use on another thread (reads run in parallel with
        this connection's writes and see what is committed). DuckDB: a cursor of the same database
        instance, so it works while this process holds the file; PostgreSQL: a new connection."""

    conn: Any
    """The engine's own connection (duckdb or psycopg)."""

    @abstractmethod
    def _begin(self) -> None: ...

    def _commit(self) -> None:
        self.conn.execute("COMMIT")

    def _rollback(self) -> None:
        self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()

    def checkpoint(self) -> None:
        """Write what committed transactions left in the write-ahead log into the store's file, now
        (DuckDB; the end of ``accord run`` calls it, so a run leaves no log behind). PostgreSQL
        checkpoints on its own schedule: nothing to do."""

    def table_names(self) -> list[str]:
        rows = self.fetchall(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_type = 'BASE TABLE' ORDER BY 1"
        )
        return [r[0] for r in rows]

    _depth = 0

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """All or nothing: an exception inside rolls everything back. Nested calls join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self._begin()
        self._depth = 1
        try:
            yield self
        except BaseException:
            self._depth = 0
            self._rollback()
            raise
        self._depth = 0
        self._commit()

    def fetchall_reused(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """``fetchall`` of one statement a hot path runs again and again with new parameters (PostgreSQL
        prepares it after a few runs; DuckDB parses it once per connection, 0.1-0.2 ms a query saved)."""
        return self.fetchall(sql, params)

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.fetchone(sql, params)
        return row[0] if row else None

    def type_sql(self, sql: str) -> str:
        types = DIALECT_TYPES[self.dialect]
        return re.sub(r"\$\{(\w+)\}", lambda m: types[m.group(1)], sql)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _duckdb_memory() -> str:
    value = os.environ.get("ACCORD_DUCKDB_MEMORY", "1GB")
    if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", value):
        raise StoreError(f"ACCORD_DUCKDB_MEMORY: expected a size such as 1GB or 512MB; got {value!r}")
    return value


DUCKDB_CHECKPOINT_THRESHOLD = "256MB"
"""DuckDB's write-ahead log may grow to this before a commit checkpoints it into the database file.

DuckDB's own default (16 MB) makes whichever commit crosses it write every table it touched back into
the file: after an incremental run at a million records, 1.3-2 s inside the profiles commit, whatever
the commit wrote. With a larger threshold the log holds a whole run, ``accord run`` checkpoints once
at its end (``Store.checkpoint``) and closing the store checkpoints too. Committed data is safe either
way: DuckDB replays the log when the store is opened again."""


def _duckdb_checkpoint_threshold() -> str:
    value = os.environ.get("ACCORD_DUCKDB_CHECKPOINT_THRESHOLD", DUCKDB_CHECKPOINT_THRESHOLD)
    if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", value):
        raise StoreError(f"ACCORD_DUCKDB_CHECKPOINT_THRESHOLD: expected a size such as 256MB or 1GB; got {value!r}")
    return value


class DuckDBStore(Store):
    dialect = "duckdb"

    def __init__(self, url: str, path: str):
        import duckdb

        self.url = url
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = duckdb.connect(path)
        except duckdb.Error as exc:
            if "lock" in str(exc).lower():
                raise StoreError(
                    f"cannot open DuckDB store {path}: another process has it open (an 'accord serve' or "
                    "another 'accord' command). DuckDB allows one writing process; stop the other one, or "
                    "use a PostgreSQL store for several processes."
                ) from None
            raise StoreError(f"cannot open DuckDB store {path}: {exc}") from None
        self.conn.execute("SET enable_progress_bar = false")
        self.conn.execute("SET TimeZone = 'UTC'")
        # DuckDB takes 80% of RAM by default; Accord's stages stream, so a bounded pool (spilling to disk
        # past it) keeps a laptop usable. ACCORD_DUCKDB_MEMORY overrides it.
        self.conn.execute(f"SET memory_limit = '{_duckdb_memory()}'")
        self.conn.execute("SET preserve_insertion_order = false")
        self.conn.execute(f"SET checkpoint_threshold = '{_duckdb_checkpoint_threshold()}'")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(sql, list(params) if params else None)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.conn.executemany(sql, [list(r) for r in rows])

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, list(params) if params else None).fetchall()

    def fetchall_reused(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        parsed = self.__dict__.setdefault("_parsed", {})  # reader() builds instances without __init__
        statement = parsed.get(sql)
        if statement is None:
            (statement,) = self.conn.extract_statements(sql)
            if len(parsed) < 256:  # hot paths run a handful of statements; never grow without bound
                parsed[sql] = statement
        return self.conn.execute(statement, list(params) if params else None).fetchall()

    def fetch_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        return self.conn.sql(sql, params=list(params) if params else None).to_arrow_table()

    def load_arrow(self, table: str, data: pa.Table) -> None:
        if data.num_rows == 0:
            return
        cols = ", ".join(f'"{c}"' for c in data.column_names)
        self.conn.register("_accord_load", data)
        try:
            self.conn.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _accord_load")
        finally:
            self._unregister("_accord_load")

    def _unregister(self, name: str) -> None:
        """Drop a registered Arrow view; after a failed statement DuckDB refuses until ROLLBACK, and the
        next register() of the name replaces it anyway, so the first error is the one that surfaces."""
        import duckdb

        try:
            self.conn.unregister(name)
        except duckdb.TransactionException:
            pass

    def create_temp_table(self, name: str, data: pa.Table) -> None:
        self.conn.register("_accord_tmp", data)
        try:
            self.conn.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _accord_tmp")
        finally:
            self.conn.unregister("_accord_tmp")

    def insert_new(self, table: str, data: pa.Table, key_columns: Sequence[str]) -> int:
        if data.num_rows == 0:
            return 0
        keys = ", ".join(f'"{k}"' for k in key_columns)
        cols = ", ".join(f'"{c}"' for c in data.column_names)
        same = " AND ".join(f't."{k}" = s."{k}"' for k in key_columns)
        self.conn.register("_accord_new", data.append_column("_accord_n", pa.array(range(data.num_rows), pa.int64())))
        try:
            row = self.conn.execute(
                f"INSERT INTO {table} ({cols}) SELECT {cols} FROM ("
                f"SELECT * FROM _accord_new s WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {same}) "
                f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY _accord_n) = 1) n").fetchone()
        finally:
            self._unregister("_accord_new")
        return int(row[0]) if row else 0

    def reader(self) -> Store:
        other = DuckDBStore.__new__(DuckDBStore)
        other.url, other.path, other.conn = self.url, self.path, self.conn.cursor()
        other.conn.execute("SET TimeZone = 'UTC'")
        return other

    def is_unique_violation(self, exc: BaseException) -> bool:
        import duckdb

        return isinstance(exc, duckdb.ConstraintException) and (
            "duplicate key" in str(exc).lower() or "unique" in str(exc).lower())

    def _begin(self) -> None:
        self.conn.execute("BEGIN TRANSACTION")

    def checkpoint(self) -> None:
        if self.path != ":memory:":
            self.conn.execute("CHECKPOINT")



_ARROW_TO_PG = {
    pa.string(): "TEXT",
    pa.large_string(): "TEXT",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.float64(): "DOUBLE PRECISION",
    pa.bool_(): "BOOLEAN",
    pa.date32(): "DATE",
}


def _pg_type(t: pa.DataType) -> str:
    # Timestamps must stay timestamps: a TEXT staging column cannot be assigned to a TIMESTAMP column.
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    return _ARROW_TO_PG.get(t, "TEXT")


class PostgresStore(Store):
    dialect = "postgresql"

    def __init__(self, url: str):
        import psycopg

        self.url = url
        conninfo, self.schema = postgres_conninfo(url)
        try:
            self.conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=5)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL store {_redact(url)}: {str(exc).strip()}") from None
        # JSON comes back as text, as from DuckDB, so callers see the same values on both backends.
        from psycopg.types.string import TextLoader

        self.conn.adapters.register_loader("jsonb", TextLoader)
        self.conn.adapters.register_loader("json", TextLoader)
        if self.schema:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.schema):
                raise StoreError(f"store URL: schema must be an identifier; got {self.schema!r}")
            self.conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            self.conn.execute(f'SET search_path TO "{self.schema}"')

    @staticmethod
    def _pg(sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(self._pg(sql) if params else sql, list(params) if params else None)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self.conn.cursor() as cur:
                cur.executemany(self._pg(sql), [list(r) for r in rows])

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(self._pg(sql) if params else sql, list(params) if params else None)
            return cur.fetchall() if cur.description else []

    def fetch_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        with self.conn.cursor() as cur:
            cur.execute(self._pg(sql) if params else sql, list(params) if params else None)
            names = [d.name for d in cur.description]
            rows = cur.fetchall()
        columns = list(zip(*rows)) if rows else [[] for _ in names]
        return pa.table({n: pa.array(list(c)) if rows else pa.array([], pa.string()) for n, c in zip(names, columns)})

    def load_arrow(self, table: str, data: pa.Table) -> None:
        if data.num_rows == 0:
            return
        cols = ", ".join(f'"{c}"' for c in data.column_names)
        with self.conn.cursor() as cur:
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for batch in data.to_batches(max_chunksize=50_000):
                    for row in zip(*(col.to_pylist() for col in batch.columns)):
                        copy.write_row(row)

    def create_temp_table(self, name: str, data: pa.Table) -> None:
        defs = ", ".join(f'"{f.name}" {_pg_type(f.type)}' for f in data.schema)
        self.conn.execute(f"DROP TABLE IF EXISTS {name}")
        self.conn.execute(f"CREATE TEMP TABLE {name} ({defs})")
        self.load_arrow(name, data)
        self._analyze(name)

    def create_temp_table_as(self, name: str, select_sql: str, params: Sequence[Any] = ()) -> None:
        super().create_temp_table_as(name, select_sql, params)
        self._analyze(name)

    def _analyze(self, temp_table: str) -> None:
        """Autovacuum never analyzes temp tables: without statistics the planner takes a table of a few
        rows for thousands and joins a million-row table to it by scanning it rather than its index."""
        self.conn.execute(f"ANALYZE {temp_table}")

    def insert_new(self, table: str, data: pa.Table, key_columns: Sequence[str]) -> int:
        if data.num_rows == 0:
            return 0
        keys = ", ".join(f'"{k}"' for k in key_columns)
        cols = ", ".join(f'"{c}"' for c in data.column_names)
        # COPY into a staging table with the target's column types (JSON text becomes jsonb on the way in),
        # then one INSERT ... ON CONFLICT: concurrent workers may race on a key.
        self.conn.execute("DROP TABLE IF EXISTS _accord_new")
        self.conn.execute(f"CREATE TEMP TABLE _accord_new AS SELECT {cols} FROM {table} LIMIT 0")
        self.conn.execute("ALTER TABLE _accord_new ADD COLUMN _accord_n BIGINT")
        try:
            self.load_arrow("_accord_new", data.append_column("_accord_n", pa.array(range(data.num_rows), pa.int64())))
            with self.conn.cursor() as cur:
                cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM ("
                            f"SELECT DISTINCT ON ({keys}) * FROM _accord_new ORDER BY {keys}, _accord_n) n "
                            f"ON CONFLICT ({keys}) DO NOTHING")
                return max(cur.rowcount, 0)
        finally:
            from psycopg.pq import TransactionStatus

            if self.conn.info.transaction_status != TransactionStatus.INERROR:  # else the rollback drops it
                self.conn.execute("DROP TABLE IF EXISTS _accord_new")

    def lock_for_transaction(self, name: str) -> None:
        self.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (name,))

    def reader(self) -> Store:
        return PostgresStore(self.url)

    def is_unique_violation(self, exc: BaseException) -> bool:
        import psycopg.errors

        return isinstance(exc, psycopg.errors.UniqueViolation)

    def _begin(self) -> None:
        self.conn.execute("BEGIN")



def postgres_conninfo(url: str) -> tuple[str, str | None]:
    """(libpq connection string, schema) of a store URL (``?schema=NAME`` is Accord's, not libpq's)."""
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    schema = query.pop("schema", [None])[0]
    # Re-encoded: parse_qs decoded the values, and libpq options such as "-c key=value" need escaping again.
    rest = urlencode({k: v[0] for k, v in query.items()}, quote_via=quote)
    return urlunparse(parsed._replace(scheme="postgresql", query=rest)), schema


def _redact(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
        return urlunparse(parsed._replace(netloc=netloc))
    return url


def connect(url: str) -> Store:
    """Open a store by URL without migrating: ``duckdb:///path.duckdb`` or ``postgresql://...``."""
    if url.startswith("duckdb:///"):
        # SQLAlchemy's convention: duckdb:///relative.duckdb, duckdb:////absolute/path.duckdb
        path = url[len("duckdb:///") :] or ":memory:"
        return DuckDBStore(url, path)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url)
    raise StoreError(
        f"store URL {url!r}: expected duckdb:///PATH (relative), duckdb:////PATH (absolute) "
        "or postgresql://USER@HOST:PORT/DB"
    )
