"""One customer's events and identifiers found by index, for the real-time paths (trait updates and
segment decisions after an event): point lookups, never a scan of the events table.

Each lookup is its own ``UNION ALL`` branch holding only the indexed predicate, because DuckDB uses an
index only for a filter that is exactly the indexed expression (one more condition, an ``OR`` or an
``IN`` list and it scans); the exact rule — identity type, emails compared in lower case, the time
window — is applied to the few rows found. On DuckDB the indexes are created by
``ensure_lookup_indexes`` (the API server does at start): each makes bulk inserts into its table
slower, so batch-only stores go without them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from accord.store.backend import Store

# DuckDB: events only (customer_identifiers has its index on value from migration 0010). The tables
# stages rewrite in bulk by customer (golden values, traits, consent) get no index: an ART index makes
# those rewrites many times slower, and written in customer order their zone maps find one customer's
# rows in a row group or two.
_DUCKDB_INDEXES = (
    "CREATE INDEX IF NOT EXISTS events_identity_lower ON events (lower(identity_value))",
    "CREATE INDEX IF NOT EXISTS events_anonymous_id ON events (anonymous_id)",
)
_POSTGRESQL_INDEXES = (
    "CREATE INDEX IF NOT EXISTS events_identity_lower ON events (identity_type, lower(identity_value))",
    "CREATE INDEX IF NOT EXISTS events_anonymous_id ON events (anonymous_id)",
    "CREATE INDEX IF NOT EXISTS golden_values_customer ON golden_values (customer_id)",
)

Identifier = tuple[str, str]
"""(id_type, value) as customer_identifiers holds it: emails lowercased."""


def ensure_lookup_indexes(store: Store) -> None:
    """The indexes the lookups below need (on PostgreSQL customer_identifiers' key serves by value)."""
    for sql in _DUCKDB_INDEXES if store.dialect == "duckdb" else _POSTGRESQL_INDEXES:
        store.execute(sql)


def _identity_branch(store: Store, id_type: str, value: str) -> tuple[str, list[Any]]:
    if store.dialect == "duckdb":
        return "lower(identity_value) = ?", [value.lower()]
    return "identity_type = ? AND lower(identity_value) = ?", [id_type, value.lower()]


def events_sql(store: Store, identifiers: Iterable[Identifier], columns: str) -> tuple[str, list[Any]]:
    """``SELECT <columns>, identity_type, identity_value, anonymous_id`` of every event that may belong to
    these identifiers (each branch one index lookup; rows may repeat and include other identity types
    with the same lowercased value: filter them with ``belongs``)."""
    branches, params = [], []
    select = f"SELECT {columns}, identity_type, identity_value, anonymous_id FROM events WHERE "
    for id_type, value in sorted(set(identifiers)):
        if id_type == "anonymous_id":
            branches.append(select + "anonymous_id = ?")
            params.append(value)
        else:
            where, where_params = _identity_branch(store, id_type, value)
            branches.append(select + where)
            params += where_params
    if not branches:
        return f"SELECT {columns}, identity_type, identity_value, anonymous_id FROM events WHERE 1 = 0", []
    return " UNION ALL ".join(branches), params


def belongs(identifiers: set[Identifier], identity_type: str | None, identity_value: str | None,
            anonymous_id: str | None) -> bool:
    """Does an event with this identity and anonymous id belong to the customer these identifiers name
    (the attribution rule of the batch SQL)?"""
    if identity_type and identity_value is not None:
        value = identity_value.lower() if identity_type == "email" else identity_value
        if (identity_type, value) in identifiers:
            return True
    return anonymous_id is not None and ("anonymous_id", anonymous_id) in identifiers


def customer_identifiers(store: Store, customer_id: str) -> set[Identifier]:
    return {(t, v) for t, v in store.fetchall(
        "SELECT id_type, value FROM customer_identifiers WHERE customer_id = ?", (customer_id,))}


def own_events(store: Store, identifiers: set[Identifier], columns: list[str], until: datetime,
               since: datetime | None = None) -> list[tuple[Any, ...]]:
    """The ``columns`` (the first must be event_id) of every event of these identifiers with
    ``since <= ts <= until``, each once; ``ts`` must be among the columns."""
    sql, params = events_sql(store, identifiers, ", ".join(columns))
    at = columns.index("ts")
    n = len(columns)
    seen: dict[Any, tuple[Any, ...]] = {}
    for row in store.fetchall(sql, params):
        ts = row[at]
        if ts > until or (since is not None and ts < since) or row[0] in seen:
            continue
        if belongs(identifiers, row[n], row[n + 1], row[n + 2]):
            seen[row[0]] = row[:n]
    return list(seen.values())


def customers_named(store: Store, keys: Iterable[Identifier]) -> set[str]:
    """The customers customer_identifiers gives for these (id_type, value) keys, by index."""
    found: set[str] = set()
    items = sorted(set(keys))
    duckdb = store.dialect == "duckdb"
    branch = "SELECT id_type, value, customer_id FROM customer_identifiers WHERE " + (
        "value = ?" if duckdb else "id_type = ? AND value = ?")
    for start in range(0, len(items), 200):
        chunk = items[start:start + 200]
        params = [v for _, v in chunk] if duckdb else [p for key in chunk for p in key]
        wanted = set(chunk)
        found.update(c for t, v, c in store.fetchall(" UNION ALL ".join(branch for _ in chunk), params)
                     if (t, v) in wanted)
    return found


def customers_owning(store: Store, keys: Iterable[Identifier]) -> set[str]:
    """``customers_named`` for many keys at once: filtered on ``value IN (...)`` alone, then matched on the
    type here. PostgreSQL answers the list from the value index; DuckDB turns a long list into a hash join
    over one scan of the table, so it gets long lists (a UNION ALL per key costs it a plan per branch)."""
    wanted = set(keys)
    chunk = 5000 if store.dialect == "duckdb" else 500
    values = sorted({v for _, v in wanted})
    found: set[str] = set()
    for start in range(0, len(values), chunk):
        part = values[start:start + chunk]
        found.update(c for t, v, c in store.fetchall(
            f"SELECT id_type, value, customer_id FROM customer_identifiers WHERE value IN "
            f"({', '.join('?' for _ in part)})", part) if (t, v) in wanted)
    return found
