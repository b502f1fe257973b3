"""The usual profile lookup, in as few store round trips as each engine allows.

Usually an identifier names one active customer whose profile document is stored. On PostgreSQL one
statement resolves the identifier, checks the customer is active, reads its document and the
identifiers the index holds for it, and inserts the access-audit row (a data-modifying CTE): one
round trip, and the row is committed when the statement returns, before the answer. The API runs it
on the event loop over this process's own async connections (``PostgresProfileReads``): no hand-off
to a reader thread, and no wait for the GIL a busy loop holds. On DuckDB a
query costs ~0.4 ms of CPU however small, and a join is planned as a scan rather than index probes,
so it is three point queries on statements parsed once per connection; the audit row then goes to
the journal (``audit_journal.py``). Anything else (several candidates, a retired id, no document)
returns None here and takes the general path in ``routers/profiles.py``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any

from accord.errors import StoreError
from accord.profiles.lookup import revealed_document
from accord.store.backend import PostgresStore, Store, postgres_conninfo

Found = tuple[str, dict[str, Any], list[tuple[str, str]], bool]
"""(customer_id, the document revealed, the (id_type, value) pairs the index holds, whether the access
row was written in the same statement)."""

_AUDIT_INSERT = ("audited AS (INSERT INTO access_log (access_id, accessed_at, actor, role, channel, action, "
                 "customer_id, purpose, detail) SELECT ?, ?, ?, ?, ?, ?, customer_id, ?, ? FROM hit RETURNING 1)")
_PG_SQL = (
    "WITH named AS ({named}), "
    "hit AS (SELECT d.customer_id, d.document FROM named n "
    "JOIN customers c ON c.customer_id = n.customer_id AND c.status = 'active' "
    "JOIN profile_documents d ON d.customer_id = n.customer_id WHERE (SELECT COUNT(*) FROM named) = 1), "
    f"{_AUDIT_INSERT} "
    "SELECT h.customer_id, h.document, "
    "ARRAY(SELECT ARRAY[i.id_type, i.value] FROM customer_identifiers i WHERE i.customer_id = h.customer_id) "
    "FROM hit h")
_PG_BY_IDENTIFIER = _PG_SQL.format(
    named="SELECT DISTINCT customer_id FROM customer_identifiers WHERE value = ANY(?) AND id_type = ?")
_PG_BY_CUSTOMER_ID = _PG_SQL.format(named="SELECT customer_id FROM customers WHERE customer_id = ?")
_DOCUMENT_SQL = "SELECT document FROM profile_documents WHERE customer_id = ?"
_INDEXED_SQL = "SELECT id_type, value FROM customer_identifiers WHERE customer_id = ?"
_AUDIT_CUSTOMER = 6
"""Position of customer_id in an access row (``routers.profiles.ACCESS_COLUMNS``): the statement fills it."""


def read_active_profile(store: Store, id_type: str, forms: Sequence[str], access: tuple[Any, ...]) -> Found | None:
    """The profile of the one active customer ``id_type`` in ``forms`` names, when its document is
    stored (``forms``: the identifier's index forms; for customer_id, the id). ``access`` is the
    access row of this read; PostgreSQL writes it here (the last element of the result says so)."""
    if not forms:
        return None
    if store.dialect == "postgresql":
        return _postgresql(store, id_type, forms, access)
    return _point_queries(store, id_type, forms)


def _pg_statement(id_type: str, forms: Sequence[str], access: tuple[Any, ...]) -> tuple[str, list[Any]]:
    row_values = [*access[:_AUDIT_CUSTOMER], *access[_AUDIT_CUSTOMER + 1:]]
    if id_type == "customer_id":
        return _PG_BY_CUSTOMER_ID, [forms[0], *row_values]
    return _PG_BY_IDENTIFIER, [list(forms), id_type, *row_values]


def _pg_found(rows: list[tuple[Any, ...]]) -> Found | None:
    if not rows:
        return None
    customer_id, text, indexed = rows[0]
    return customer_id, revealed_document(text), [(t, v) for t, v in indexed], True


def _postgresql(store: Store, id_type: str, forms: Sequence[str], access: tuple[Any, ...]) -> Found | None:
    return _pg_found(store.fetchall_reused(*_pg_statement(id_type, forms, access)))


class PostgresProfileReads:
    """Async connections of one API process for ``read_active_profile`` on PostgreSQL, opened as
    needed up to ``size`` (a statement holds one for ~0.3 ms: a few serve hundreds of lookups a second)."""

    def __init__(self, url: str, size: int = 4):
        self.conninfo, self.schema = postgres_conninfo(url)
        if self.schema and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.schema):
            raise StoreError(f"store URL: schema must be an identifier; got {self.schema!r}")
        self.size = size
        self._idle: list[Any] = []
        self._opened = 0
        self._freed: asyncio.Condition | None = None

    async def read_active_profile(self, id_type: str, forms: Sequence[str], access: tuple[Any, ...]) -> Found | None:
        """``read_active_profile`` on one of these connections."""
        if not forms:
            return None
        sql, params = _pg_statement(id_type, forms, access)
        conn = await self._take()
        try:
            cursor = await conn.execute(PostgresStore._pg(sql), params)
            rows = await cursor.fetchall()
        except BaseException:
            await self._discard(conn)
            raise
        await self._give(conn)
        return _pg_found(rows)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()

    async def _take(self) -> Any:
        if self._freed is None:
            self._freed = asyncio.Condition()
        async with self._freed:
            while not self._idle and self._opened >= self.size:
                await self._freed.wait()
            if self._idle:
                return self._idle.pop()
            self._opened += 1
        try:
            return await self._connect()
        except BaseException:
            async with self._freed:
                self._opened -= 1
                self._freed.notify()
            raise

    async def _connect(self) -> Any:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True, connect_timeout=5)
        if self.schema:
            await conn.execute(f'SET search_path TO "{self.schema}"')
        return conn

    async def _give(self, conn: Any) -> None:
        assert self._freed is not None
        async with self._freed:
            self._idle.append(conn)
            self._freed.notify()

    async def _discard(self, conn: Any) -> None:
        """After an error the connection may be broken: close it; the next lookup opens another."""
        assert self._freed is not None
        try:
            await conn.close()
        finally:
            async with self._freed:
                self._opened -= 1
                self._freed.notify()


def _point_queries(store: Store, id_type: str, forms: Sequence[str]) -> Found | None:
    if id_type == "customer_id":
        candidate = forms[0]
    else:
        # value alone: DuckDB probes the index on value, but scans once the filter adds id_type
        marks = "= ?" if len(forms) == 1 else f"IN ({', '.join('?' for _ in forms)})"
        named = {c for t, c in store.fetchall_reused(
            f"SELECT id_type, customer_id FROM customer_identifiers WHERE value {marks}", forms) if t == id_type}
        if len(named) != 1:
            return None
        (candidate,) = named
    rows = store.fetchall_reused(_DOCUMENT_SQL, (candidate,))
    if not rows:
        return None
    document = revealed_document(rows[0][0])
    if document.get("status") != "active":
        return None
    indexed = store.fetchall_reused(_INDEXED_SQL, (candidate,))
    return candidate, document, [(t, v) for t, v in indexed], False
