"""One store interface over DuckDB (embedded default) and PostgreSQL (server).

Call sites write SQL that both engines share, with ``?`` placeholders; what differs
(connection, placeholders, bulk loading, type names) lives here.
"""

from __future__ import annotations

import logging
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlparse, urlunparse

import pyarrow as pa

from accord.errors import StoreError

log = logging.getLogger("accord.store")

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

    def drop_temp_table(self, *names: str) -> None:
        """Drop session-scoped tables made by ``create_temp_table``/``create_temp_table_as`` (or by hand);
        a missing one is no error. PostgreSQL may keep a small one, emptied, to fill it again (see
        ``PostgresStore``): afterwards read a name only once it was created again."""
        for name in names:
            self.execute(f"DROP TABLE IF EXISTS {name}")

    @abstractmethod
    def insert_new(self, table: str, data: pa.Table, key_columns: Sequence[str]) -> int:
        """Insert the rows of ``data`` whose key is not stored yet; return how many were inserted.

        A key repeated inside ``data`` is inserted once (its first row). ``key_columns`` must be the
        table's primary key (or a unique index): PostgreSQL's ON CONFLICT needs it, and it keeps
        concurrent writers from inserting the same key twice."""

    @abstractmethod
    def is_unique_violation(self, exc: BaseException) -> bool:
        """Whether ``exc`` is this engine's duplicate-key error (a primary key or unique index refused a row)."""

    def refused_by(self, exc: BaseException) -> str | None:
        """The table whose constraint refused a row in ``exc``, where the engine names it (PostgreSQL; a
        write ``pipeline()`` held back fails at a later statement, and this tells whose it was)."""
        return None

    def lock_for_transaction(self, name: str) -> None:
        """Serialize writers across processes on ``name`` until this transaction ends (PostgreSQL's
        advisory lock; DuckDB has one writing process, so there is nothing to wait for)."""

    @contextmanager
    def pipeline(self) -> Iterator[Store]:
        """Statements inside are sent without waiting for each answer where the engine can (PostgreSQL:
        writes are held back and go out with the next read, the commit or the block's end, in one round
        trip; an error surfaces there). DuckDB runs in process: nothing to save."""
        yield self

    def flush(self) -> None:
        """Send what ``pipeline()`` holds back now (an error in it surfaces here)."""

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

    def fetch_many(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]]]:
        """``fetchall`` of each (sql, params) in turn; on PostgreSQL in one round trip (each statement
        still reads with its own snapshot), together with the writes ``pipeline()`` holds back."""
        return [self.fetchall(sql, params) for sql, params in statements]

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


def _quote(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _pg_type(t: pa.DataType) -> str:
    # Timestamps must stay timestamps: a TEXT staging column cannot be assigned to a TIMESTAMP column.
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    return _ARROW_TO_PG.get(t, "TEXT")


SMALL_TEMP_ROWS = 1_000
"""PostgreSQL: a temp table of fewer rows is kept for reuse (emptied when dropped, refilled when created
again) and is not analyzed on every refill. Creating, analyzing and dropping a temp table writes the
catalog, ~1 ms a table: most of a real-time call's profiles build, dozens of scoped tables of a few rows.
Emptying and refilling one costs ~0.1-0.2 ms. Past this size the DELETE and the dead rows it leaves cost
more than a new table, and statistics (distinct and common values) start to decide plans, as in a batch
run: such a table is analyzed after every fill and dropped for real."""

TEMP_CHURN_ROWS = 2_000
"""PostgreSQL: a reused temp table is dropped and created anew once this many rows were put in it since it
was created. Autovacuum never vacuums temp tables and an insert rarely finds the room a DELETE left, so
each refill grows the file and every later scan reads the dead pages (measured: 3,000 refills of 10 rows
left 1 MB; of 150 rows, 40 MB and 3.6 ms a refill). Over 1,500 refills of 5 or 50 rows, limits from
1,000 to 8,000 rows cost about the same (0.1-0.27 ms a refill); no limit, 1.2-1.4 ms."""

SMALL_TEMP_BYTES = 128 * 1024
"""PostgreSQL: a reused temp table that statements run by hand wrote (its rows unknown to the store) is kept
at a drop when its file, dead rows included, is at most this size (~1,000 rows of ~100 bytes); asking
costs a round trip (~0.07 ms), creating it anew ~1 ms."""

REANALYZE_SLACK_ROWS = 64
"""PostgreSQL: a refilled small temp table is analyzed again when its row count moved by more than this
and by more than the count it was analyzed at, so the planner's estimate stays within about a factor of
two. Between analyzes the planner scales the rows per page it analyzed by the table's pages now; the first
fill is always analyzed (a never-analyzed table is taken for ten pages, thousands of rows)."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME = r'(?:pg_temp\s*\.\s*)?"?[A-Za-z_][A-Za-z0-9_$]*"?'
_TOUCHES = re.compile(
    r"(?:DROP\s+TABLE(?:\s+IF\s+EXISTS)?|TRUNCATE(?:\s+TABLE)?(?:\s+ONLY)?"
    r"|ALTER\s+TABLE(?:\s+IF\s+EXISTS)?(?:\s+ONLY)?|CREATE\s+(?:UNIQUE\s+)?INDEX\b[^;]*?\bON(?:\s+ONLY)?"
    r"|CREATE\s+(?:(?:GLOBAL|LOCAL)\s+)?TEMP(?:ORARY)?\s+TABLE(?:\s+IF\s+NOT\s+EXISTS)?"
    r"|INSERT\s+INTO|UPDATE(?:\s+ONLY)?|DELETE\s+FROM(?:\s+ONLY)?|COPY|MERGE\s+INTO)"
    rf"\s+(?P<names>{_NAME}(?:\s*,\s*{_NAME})*)", re.IGNORECASE)
"""A statement dropping, reshaping or writing tables, and the tables it names (``PostgresStore._observe``)."""

_VERBS = ("DROP", "TRUNCATE", "ALTER", "CREATE", "INSERT", "UPDATE", "DELETE", "COPY", "MERGE")
_WRITES = frozenset({"TRUNCATE", "INSERT", "UPDATE", "DELETE", "COPY", "MERGE"})


def _touched_tables(sql: str) -> Iterator[tuple[str, str]]:
    """(verb, table) of each table ``sql`` drops, reshapes or writes; the table as written (with ``pg_temp.``,
    quotes). The verb: DROP, TRUNCATE, ALTER, CREATE (an index or a table) or a write. ``_TOUCHES`` is
    tried only where a verb starts a word: over 6 kB of SQL, 36 us rather than 165 us for a scan with it;
    a real-time call's statements (~300 characters), 6.5 us each."""
    upper = sql.upper()
    for verb in _VERBS:
        at = upper.find(verb)
        while at >= 0:
            if (at == 0 or not (upper[at - 1].isalnum() or upper[at - 1] == "_")) and (
                    match := _TOUCHES.match(sql, at)):
                yield from ((verb, name) for name in match.group("names").split(","))
            at = upper.find(verb, at + len(verb))


Signature = tuple[tuple[Any, ...], ...]
"""A temp table's columns: (name, type OID, type modifier) from a query, (name, type) from Arrow data."""


@dataclass(frozen=True)
class _TempTable:
    """What a PostgresStore knows of a temp table it made on its connection (see ``SMALL_TEMP_ROWS``)."""

    signature: Signature
    rows: int
    """Rows it holds (at most: after a refill that failed outside a transaction it may hold none)."""
    live: bool
    """False once ``drop_temp_table`` emptied it: dropped for the caller, kept for the next create."""
    filled: int
    """Rows put in it since it was created: DELETE leaves them behind as dead rows (``TEMP_CHURN_ROWS``)."""
    analyzed: int
    """Rows it held when last analyzed."""
    written: bool = False
    """Written by a statement run by hand since the store filled it: ``rows`` is unknown (``SMALL_TEMP_BYTES``)."""

    def reusable(self, signature: Signature) -> bool:
        """Whether a create with these columns may empty and refill it rather than make a new table."""
        return self.signature == signature and self.keepable()

    def keepable(self) -> bool:
        """Whether a drop may empty it and keep it (dropping a dropped one again keeps it too)."""
        return not self.written and self.rows < SMALL_TEMP_ROWS and self.filled < TEMP_CHURN_ROWS


def _needs_analyze(rows: int, analyzed: int) -> bool:
    return rows >= SMALL_TEMP_ROWS or abs(rows - analyzed) > max(REANALYZE_SLACK_ROWS, analyzed)


PREPARE_AFTER = 2
"""A read sent in a multi-statement round trip this many times is prepared on the server (psycopg prepares
what it sends itself after 5)."""
MAX_PREPARED = 200
"""Reads prepared per connection at most; later ones are sent as they are."""
_PLAIN = (str, int, float, type(None))
"""Values passed to a prepared read as untyped literals (the statement's own types apply)."""


class PostgresStore(Store):
    """A PostgreSQL connection, autocommitting outside ``transaction()``.

    Temp tables are reused on the connection: ``_temps`` holds those ``create_temp_table`` and
    ``create_temp_table_as`` made. Creating one of a name it holds, with the same columns, empties and
    refills it; ``drop_temp_table`` of a small one empties it and keeps it (``SMALL_TEMP_ROWS``). The
    registry follows the tables: a rolled-back transaction restores it as it was at BEGIN (as the catalog
    is), and statements run by hand are watched (``_observe``). Statements on a reused table name it
    ``pg_temp.NAME``: a registry wrong about it meets an error, never a permanent table of that name."""

    dialect = "postgresql"

    def __init__(self, url: str):
        import psycopg

        self.url = url
        self._temps: dict[str, _TempTable] = {}
        self._temps_at_begin: dict[str, _TempTable] | None = None
        self._deferred: list[str] | None = None
        """While ``pipeline()`` is open: the writes not sent yet, as SQL with their values inlined."""
        self._mogrifier: Any = None  # a ClientCursor that renders statements (never executes)
        self._prepared: dict[str, str] = {}  # read SQL -> the name it is prepared under on this connection
        self._read_uses: dict[str, int] = {}
        conninfo, self.schema = postgres_conninfo(url)
        try:
            self._conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=5)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL store {_redact(url)}: {str(exc).strip()}") from None
        # JSON comes back as text, as from DuckDB, so callers see the same values on both backends.
        from psycopg.types.string import TextLoader

        self._conn.adapters.register_loader("jsonb", TextLoader)
        self._conn.adapters.register_loader("json", TextLoader)
        if self.schema:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.schema):
                raise StoreError(f"store URL: schema must be an identifier; got {self.schema!r}")
            self._conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            self._conn.execute(f'SET search_path TO "{self.schema}"')

    @property
    def conn(self) -> Any:  # type: ignore[override]
        """The psycopg connection, once the writes ``pipeline()`` holds back are sent: whatever runs on
        it directly runs after them."""
        if self._deferred:
            self._send_deferred().close()
        return self._conn

    def _render(self, sql: str, params: Sequence[Any]) -> str:
        """``sql`` with its values inlined as literals (psycopg's client-side binding, its own adapters)."""
        if not params:
            return sql
        if self._mogrifier is None:
            from psycopg import ClientCursor

            self._mogrifier = ClientCursor(self._conn)
        return self._mogrifier.mogrify(self._pg(sql), list(params))

    def _render_read(self, sql: str, params: Sequence[Any]) -> str:
        """A read to send in a multi-statement round trip: after ``PREPARE_AFTER`` uses as ``EXECUTE`` of a
        statement prepared on the server, so that its plan is reused (a simple query is planned each
        time: ~0.5 ms for placement's readiness query), else rendered as it is."""
        if not params or not all(isinstance(p, _PLAIN) for p in params):  # a value whose literal carries
            return self._render(sql, params)                             # a type of its own: as it is
        name = self._prepared.get(sql)
        if name is None and len(self._prepared) < MAX_PREPARED:
            uses = self._read_uses.get(sql, 0) + 1
            if len(self._read_uses) < 10 * MAX_PREPARED:
                self._read_uses[sql] = uses
            if uses >= PREPARE_AFTER:
                name = self._prepare(sql)
        if name is None:
            return self._render(sql, params)
        return f"EXECUTE {name} " + self._render("(" + ", ".join("?" for _ in params) + ")", params)

    def _prepare(self, sql: str) -> str | None:
        """Prepare ``sql`` (``?`` parameters) on the server now, ahead of any held-back writes (it reads
        nothing); inside a transaction under a savepoint, so that a statement PostgreSQL cannot prepare
        (a parameter of no inferable type) leaves the transaction as it was. Its name, or None."""
        status = self._conn.info.transaction_status.name
        if status not in ("IDLE", "INTRANS"):
            return None
        name = f"accord_read_{len(self._prepared) + 1}"
        numbered = iter(range(1, sql.count("?") + 1))
        prepare = f"PREPARE {name} AS " + re.sub(r"\?", lambda _: f"${next(numbered)}", sql)
        try:
            if status == "INTRANS":
                self._conn.execute(f"SAVEPOINT accord_prepare; {prepare}; RELEASE SAVEPOINT accord_prepare")
            else:
                self._conn.execute(prepare)
        except Exception:  # noqa: BLE001 - not preparable: sent as it is from now on
            if status == "INTRANS":
                self._conn.execute("ROLLBACK TO SAVEPOINT accord_prepare; RELEASE SAVEPOINT accord_prepare")
            self._read_uses[sql] = -(10 ** 9)
            log.debug("could not prepare a read; it is sent as it is", exc_info=True)
            return None
        self._prepared[sql] = name
        return name

    def _send_deferred(self, *then: str) -> Any:
        """Send the held-back writes and the statements ``then`` as one round trip (several statements in
        one simple query, each with its own snapshot); the cursor, on the result of the first of ``then``."""
        from psycopg import ClientCursor

        held = self._deferred or []
        if self._deferred is not None:
            self._deferred = []
        cur = ClientCursor(self._conn)
        try:
            cur.execute(";\n".join([*held, *then]))
            for _ in held:
                cur.nextset()
        except BaseException:
            cur.close()
            raise
        return cur

    @staticmethod
    def _pg(sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._observe(sql)
        if self._deferred is not None:
            self._deferred.append(self._render(sql, params))
            return
        self._conn.execute(self._pg(sql) if params else sql, list(params) if params else None)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._observe(sql)
            if self._deferred is not None:
                self._deferred.extend(self._render(sql, r) for r in rows)
                return
            with self.conn.cursor() as cur:
                cur.executemany(self._pg(sql), [list(r) for r in rows])

    def _cursor(self, sql: str, params: Sequence[Any]) -> Any:
        """A cursor that ran ``sql`` (a read): with the held-back writes before it in one round trip."""
        if self._deferred:
            return self._send_deferred(self._render_read(sql, params))
        cur = self._conn.cursor()
        try:
            cur.execute(self._pg(sql) if params else sql, list(params) if params else None)
        except BaseException:
            cur.close()
            raise
        return cur

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._observe(sql)
        with self._cursor(sql, params) as cur:
            return cur.fetchall() if cur.description else []

    def fetch_many(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]]]:
        if len(statements) < 2 and not self._deferred:
            return super().fetch_many(statements)
        for sql, _ in statements:
            self._observe(sql)
        out: list[list[tuple[Any, ...]]] = []
        with self._send_deferred(*(self._render_read(sql, params) for sql, params in statements)) as cur:
            for _ in statements:
                out.append(cur.fetchall() if cur.description else [])
                cur.nextset()
        return out

    def fetch_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        self._observe(sql)
        with self._cursor(sql, params) as cur:
            names = [d.name for d in cur.description]
            rows = cur.fetchall()
        columns = list(zip(*rows)) if rows else [[] for _ in names]
        return pa.table({n: pa.array(list(c)) if rows else pa.array([], pa.string()) for n, c in zip(names, columns)})

    def load_arrow(self, table: str, data: pa.Table) -> None:
        self._observe_name("COPY", table)
        self._copy(table, data)

    def _copy(self, table: str, data: pa.Table) -> None:
        if data.num_rows == 0:
            return
        cols = ", ".join(f'"{c}"' for c in data.column_names)
        if self._deferred is not None:  # held back as one INSERT (COPY cannot share a round trip)
            marks = "(" + ", ".join("?" for _ in data.column_names) + ")"
            rows = list(zip(*(col.to_pylist() for col in data.columns)))
            self._deferred.append(self._render(f"INSERT INTO {table} ({cols}) VALUES {', '.join(marks for _ in rows)}",
                                               [v for row in rows for v in row]))
            return
        with self.conn.cursor() as cur:
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for batch in data.to_batches(max_chunksize=50_000):
                    for row in zip(*(col.to_pylist() for col in batch.columns)):
                        copy.write_row(row)

    def create_temp_table(self, name: str, data: pa.Table) -> None:
        types = tuple((f.name, _pg_type(f.type)) for f in data.schema)
        entry = self._registered(name)
        if entry is not None and entry.reusable(types):
            def fill() -> int:
                self._copy(f"pg_temp.{name}", data)
                return data.num_rows

            self._refill(name.lower(), entry, fill)
            return
        self._forget(name)
        self.conn.execute(f"DROP TABLE IF EXISTS {name}")
        self.conn.execute(f"CREATE TEMP TABLE {name} ({', '.join(f'{_quote(c)} {t}' for c, t in types)})")
        self._copy(name, data)
        self._analyze(name)
        self._remember(name, types, data.num_rows)

    def create_temp_table_as(self, name: str, select_sql: str, params: Sequence[Any] = ()) -> None:
        if not _IDENTIFIER.fullmatch(name):  # the registry holds plain names only (PostgreSQL folds them)
            super().create_temp_table_as(name, select_sql, params)
            self._analyze(name)
            return
        signature = self._signature(select_sql, params)
        entry = self._registered(name)
        if entry is not None and entry.reusable(signature):
            self._refill(name.lower(), entry, lambda: self._rowcount(
                f"INSERT INTO pg_temp.{name} SELECT * FROM (\n{select_sql}\n) q", params))
            return
        self._forget(name)
        self.conn.execute(f"DROP TABLE IF EXISTS {name}")
        rows = self._rowcount(f"CREATE TEMP TABLE {name} AS {select_sql}", params)
        self._analyze(name)
        self._remember(name, signature, rows)

    def drop_temp_table(self, *names: str) -> None:
        """A small table the store made is emptied and kept for reuse; any other is dropped. One round trip,
        two when statements run by hand wrote some of them (``SMALL_TEMP_BYTES``)."""
        small = self._small_written(names)
        statements, kept, dropped = [], [], []
        for name in names:
            entry = self._registered(name)
            if entry is not None and (entry.keepable() or name.lower() in small):
                kept.append(name.lower())
                if entry.rows or entry.written:
                    statements.append(f"DELETE FROM pg_temp.{name}")
            else:
                self._forget(name)
                dropped.append(name)
        if dropped:
            statements.append(f"DROP TABLE IF EXISTS {', '.join(dropped)}")
        if statements and self._deferred is not None:  # held back with the other writes
            self._deferred.extend(statements)
        elif statements:  # statements without parameters run as one (implicit) transaction: all or none
            self.conn.execute("; ".join(statements))
        for key in kept:
            self._temps[key] = replace(self._temps[key], live=False, rows=0, written=False)

    def _small_written(self, names: Sequence[str]) -> set[str]:
        """Of ``names``, the registered tables written by hand whose file is at most ``SMALL_TEMP_BYTES``."""
        written = [key for key in dict.fromkeys(n.lower() for n in names)
                   if (entry := self._registered(key)) is not None and entry.written
                   and entry.filled < TEMP_CHURN_ROWS]
        if not written:
            return set()
        sizes = self.conn.execute("SELECT " + ", ".join(f"pg_relation_size('pg_temp.{key}')" for key in written)
                                  ).fetchone() or ()
        return {key for key, size in zip(written, sizes) if size <= SMALL_TEMP_BYTES}

    def _analyze(self, temp_table: str) -> None:
        """Autovacuum never analyzes temp tables: without statistics the planner takes a table of a few
        rows for thousands and joins a million-row table to it by scanning it rather than its index."""
        self.conn.execute(f"ANALYZE {temp_table}")

    def _copy_registered(self, name: str, data: pa.Table) -> None:
        """Append ``data`` to a temp table the registry holds, counting its rows there (a drop empties it)."""
        self._copy(f"pg_temp.{name}", data)
        key = name.lower()
        entry = self._temps[key]
        self._temps[key] = replace(entry, rows=entry.rows + data.num_rows, filled=entry.filled + data.num_rows)

    def _signature(self, select_sql: str, params: Sequence[Any]) -> Signature:
        """The columns ``select_sql`` gives, without running it (planned once more: ~0.07 ms, a round trip).
        The type modifier counts: a refill must not cut a varchar(20) value to a varchar(10) column. The
        newlines keep a trailing comment from hiding the end of the statement."""
        sql = f"SELECT * FROM (\n{select_sql.strip().rstrip(';')}\n) q LIMIT 0"
        with self._cursor(sql, params) as cur:
            result, columns = cur.pgresult, cur.description or []
            return tuple((c.name, c.type_code, result.fmod(i) if result else -1) for i, c in enumerate(columns))

    def _rowcount(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._cursor(sql, params) as cur:
            return max(cur.rowcount, 0)

    def _refill(self, key: str, entry: _TempTable, fill: Callable[[], int]) -> None:
        """Empty a registered table (when it holds rows), ``fill`` it (giving the rows it put in), analyze
        it when its size moved (``_needs_analyze``)."""
        try:
            if entry.rows:
                self.conn.execute(f"DELETE FROM pg_temp.{key}")
            rows = fill()
        except BaseException:
            # Outside a transaction the DELETE stays: the table is dropped for the caller, as after a
            # DROP and a failed CREATE. Inside one, the rollback restores the registry as it was at BEGIN.
            self._temps[key] = replace(entry, live=False)
            raise
        analyzed = entry.analyzed
        if _needs_analyze(rows, analyzed):
            self._analyze(key)
            analyzed = rows
        self._temps[key] = _TempTable(entry.signature, rows, True, entry.filled + rows, analyzed)

    def _registered(self, name: str) -> _TempTable | None:
        return self._temps.get(name.lower()) if _IDENTIFIER.fullmatch(name) else None

    def _remember(self, name: str, signature: Signature, rows: int) -> None:
        if _IDENTIFIER.fullmatch(name):
            self._temps[name.lower()] = _TempTable(signature, rows, True, rows, rows)

    def _forget(self, name: str, *, drop: bool = False) -> None:
        """Take ``name`` out of the registry; with ``drop``, drop the table too."""
        if self._temps.pop(name.lower(), None) is not None and drop:
            self.conn.execute(f"DROP TABLE IF EXISTS pg_temp.{name.lower()}")

    def _observe(self, sql: str) -> None:
        """Keep the registry true to a statement run by hand, before it runs. The tables it drops, alters,
        indexes or writes are forgotten (their rows or columns are no longer the registry's to know), and
        one the caller had dropped (kept empty) is first dropped for real, so the statement meets no table
        as it would have without reuse. What is left: reading a dropped-and-kept table finds no rows
        instead of failing. ~6.5 us a statement (``_touched_tables``)."""
        if len(sql) < 32:
            self._observe_transaction(sql)
        if self._temps:
            for verb, name in list(_touched_tables(sql)):
                self._observe_name(verb, name)

    def _observe_name(self, verb: str, name: str) -> None:
        """A table the caller dropped is dropped for real; a live one written is marked so (its rows are
        no longer known), one dropped, altered, indexed or created again is forgotten."""
        key = name.strip().rsplit(".", 1)[-1].strip().strip('"').lower()
        entry = self._temps.get(key)
        if entry is None:
            return
        if entry.live and verb in _WRITES:
            self._temps[key] = replace(entry, written=True)
        else:
            self._forget(key, drop=not entry.live)

    def _observe_transaction(self, sql: str) -> None:
        """BEGIN, COMMIT, ROLLBACK or DISCARD run by hand move the registry as ``transaction()`` does."""
        word = sql.strip().rstrip(";").strip().upper()
        if word in ("BEGIN", "START TRANSACTION"):
            self._temps_at_begin = dict(self._temps)
        elif word in ("COMMIT", "END"):
            self._temps_at_begin = None
        elif word in ("ROLLBACK", "ABORT"):
            self._restore_registry()
        elif word.startswith("DISCARD"):
            self._temps.clear()
            self._prepared.clear()

    def _restore_registry(self) -> None:
        """After a rollback the temp tables are as they were at BEGIN (made since: gone; dropped, emptied
        or refilled since: back as they were), and so is what the registry knew of them."""
        if self._temps_at_begin is not None:
            self._temps = self._temps_at_begin
        self._temps_at_begin = None

    def insert_new(self, table: str, data: pa.Table, key_columns: Sequence[str]) -> int:
        if data.num_rows == 0:
            return 0
        keys = ", ".join(f'"{k}"' for k in key_columns)
        cols = ", ".join(f'"{c}"' for c in data.column_names)
        # COPY into a staging table with the target's column types (JSON text becomes jsonb on the way in),
        # then one INSERT ... ON CONFLICT: concurrent workers may race on a key. The staging table is a
        # reused temp table (SMALL_TEMP_ROWS): a batch of events pays no catalog writes for it.
        self.create_temp_table_as("_accord_new",
                                  f"SELECT {cols}, CAST(NULL AS BIGINT) AS _accord_n FROM {table} LIMIT 0")
        try:
            self._copy_registered("_accord_new", data.append_column(
                "_accord_n", pa.array(range(data.num_rows), pa.int64())))
            with self.conn.cursor() as cur:
                cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM ("
                            f"SELECT DISTINCT ON ({keys}) * FROM _accord_new ORDER BY {keys}, _accord_n) n "
                            f"ON CONFLICT ({keys}) DO NOTHING")
                return max(cur.rowcount, 0)
        finally:
            from psycopg.pq import TransactionStatus

            if self.conn.info.transaction_status != TransactionStatus.INERROR:  # else the rollback drops it
                self.drop_temp_table("_accord_new")

    def lock_for_transaction(self, name: str) -> None:
        self.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (name,))

    @contextmanager
    def pipeline(self) -> Iterator[Store]:
        """Writes (``execute``, ``executemany``, ``load_arrow``, a transaction's BEGIN) are held back,
        their values inlined by psycopg's client-side binding, and sent together with the next read, the
        COMMIT or the block's end: one round trip, and no per-statement cost of the extended protocol
        (psycopg's own pipeline mode costs ~55 us of CPU a statement, this ~20). Whatever uses ``conn``
        directly sends them first. Held-back statements sent outside a transaction run as one (a
        multi-statement query is one implicit transaction). Nested blocks join the outer one."""
        if self._deferred is not None:
            yield self
            return
        self._deferred = []
        try:
            yield self
            self.flush()
        except BaseException:
            try:  # as psycopg's pipeline mode would have, the writes before the error are sent
                self.flush()
            except Exception:  # noqa: BLE001 - the block's own error is the one to see
                log.debug("sending held-back writes after an error failed", exc_info=True)
            raise
        finally:
            self._deferred = None

    def flush(self) -> None:
        if self._deferred:
            self._send_deferred().close()

    def reader(self) -> Store:
        return PostgresStore(self.url)

    def is_unique_violation(self, exc: BaseException) -> bool:
        import psycopg.errors

        return isinstance(exc, psycopg.errors.UniqueViolation)

    def refused_by(self, exc: BaseException) -> str | None:
        import psycopg

        return exc.diag.table_name if isinstance(exc, psycopg.Error) else None

    def _begin(self) -> None:
        if self._deferred is not None:
            self._deferred.append("BEGIN")
        else:
            self._conn.execute("BEGIN")
        self._temps_at_begin = dict(self._temps)

    def _commit(self) -> None:
        try:
            if self._deferred:  # the held-back writes and the COMMIT: one round trip
                self._send_deferred("COMMIT").close()
            else:
                self._conn.execute("COMMIT")
        except BaseException:  # a failed COMMIT rolls the transaction back
            self._restore_registry()
            if self._conn.info.transaction_status.name in ("INTRANS", "INERROR"):
                # A held-back write failed before the COMMIT it was sent with: the transaction is open.
                try:
                    self._conn.execute("ROLLBACK")
                except Exception:  # noqa: BLE001 - the COMMIT's error is the one to see
                    log.debug("rolling back after a failed COMMIT failed", exc_info=True)
            raise
        self._temps_at_begin = None

    def _rollback(self) -> None:
        try:
            if self._deferred:  # what the transaction held back is rolled back: not sent
                self._deferred = self._deferred[:self._deferred.index("BEGIN")] if "BEGIN" in self._deferred else []
                self.flush()  # what came before its BEGIN (held back outside it) still runs
            if self._conn.info.transaction_status.name != "IDLE":
                self._conn.execute("ROLLBACK")
        finally:
            self._restore_registry()

    def close(self) -> None:
        self._temps.clear()  # a new connection starts without temp tables
        self._temps_at_begin = None
        self._deferred = None
        self._conn.close()



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
