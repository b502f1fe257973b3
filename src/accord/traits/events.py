"""Events attributed to customers, with the properties traits read pulled out into columns.

An event belongs to every customer its identity (``identity_type``/``identity_value``, emails
compared lowercased) or its ``anonymous_id`` names in ``customer_identifiers`` — the same rule the
profile API and segments use. The table built here, ``_trait_events``, holds one row per (customer,
event) up to ``as_of``, with:

- ``age``: seconds between the event and ``as_of`` (windows are ``age < seconds``),
- ``is_purchase`` / ``is_activity``: the purchase and activity rules of the settings,
- ``p0``, ``p1``, ...: the text of each property path any trait needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from accord.profiles.identifiers import event_identity_value
from accord.store.backend import Store
from accord.traits.dialect import epoch, json_text
from accord.traits.lookups import Identifier, customer_identifiers, events_sql
from accord.traits.settings import TraitsSettings

TABLE = "_trait_events"
OWN_TABLE = "_trait_own"
SCOPE_TABLE = "_trait_scope"
"""customer_id of each customer a many-customer update recomputes (``update_traits``)."""
SCOPE_IDS_TABLE = "_trait_scope_ids"
LOOKUP_CHUNK = 50
"""Index lookups per statement: a UNION ALL of thousands of branches takes DuckDB long to plan."""
ROWS_PER_LOOKUP = 20_000
"""DuckDB: one index lookup costs about as much as scanning this many events (measured on 240k events)."""
OWN_COLUMNS = "event_id, event, type, source, ts, revenue, properties"
EVENT_COLUMNS = ("event", "type", "source", "revenue")
"""Names that mean the event's own column rather than a path into its stored row."""


@dataclass
class PropertyColumns:
    """Property path -> column of ``_trait_events`` (event columns map to themselves)."""

    paths: dict[str, str] = field(default_factory=dict)

    def column(self, path: str) -> str:
        if path in EVENT_COLUMNS:
            return path
        if path not in self.paths:
            self.paths[path] = f"p{len(self.paths)}"
        return self.paths[path]


def drop(store: Store, *tables: str) -> None:
    store.drop_temp_table(*tables)


def _belongs_sql(identifiers: set[Identifier]) -> tuple[str, list[Any]]:
    """The condition on ``e`` (rows with the events columns) that an event belongs to the customer these
    identifiers name, and its parameters."""
    conditions, params = [], []
    for id_type, value in sorted(identifiers):
        if id_type == "anonymous_id":
            conditions.append("e.anonymous_id = ?")
            params.append(value)
        elif id_type == "email":
            conditions.append("(e.identity_type = 'email' AND lower(e.identity_value) = ?)")
            params.append(value)
        else:
            conditions.append("(e.identity_type = ? AND e.identity_value = ?)")
            params += [id_type, value]
    return f"({' OR '.join(conditions) or 'FALSE'})", params


def build_trait_events(store: Store, settings: TraitsSettings, columns: PropertyColumns, as_of: datetime,
                       customer_id: str | None = None, scoped: bool = False) -> int:
    """Create ``_trait_events`` (all customers, one, or with ``scoped`` those in ``_trait_scope``); return
    its row count (-1 for one customer)."""
    params: list[Any] = [as_of]
    if settings.purchase.events is None:
        purchase = "e.revenue IS NOT NULL"
    else:
        purchase = f"COALESCE(e.event IN ({', '.join('?' * len(settings.purchase.events))}), FALSE)"
        params += settings.purchase.events
    excluded = settings.activity.exclude_events
    if excluded:
        activity = f"COALESCE(e.event NOT IN ({', '.join('?' * len(excluded))}), TRUE)"
        params += excluded
    else:
        activity = "TRUE"
    props = "".join(f", {json_text(store, 'e.properties', path)} AS {col}" for path, col in columns.paths.items())
    columns_sql = (f"e.event_id, e.event, e.type, e.source, e.ts, e.revenue, "
                   f"{epoch('CAST(? AS TIMESTAMP)')} - {epoch('e.ts')} AS age, {purchase} AS is_purchase, "
                   f"{activity} AS is_activity{props}")
    if customer_id is not None:
        # The customer's candidate events by index (see accord.traits.lookups), then the exact rule over them.
        identifiers = customer_identifiers(store, customer_id)
        found, found_params = events_sql(store, identifiers, OWN_COLUMNS)
        store.create_temp_table_as(OWN_TABLE, found, found_params)
        where, where_params = _belongs_sql(identifiers)
        store.create_temp_table_as(TABLE, f"SELECT CAST(? AS TEXT) AS customer_id, {columns_sql} "
                      f"FROM (SELECT DISTINCT ON (event_id) * FROM {OWN_TABLE}) e WHERE {where} AND e.ts <= ?",
                      [customer_id, *params, *where_params, as_of])
        drop(store, OWN_TABLE)
        return -1
    events, identifiers = "events", "customer_identifiers"
    if scoped:
        # The scope's identifiers and their candidate events, then the batch rule below over them.
        events, identifiers = _scope_events(store), SCOPE_IDS_TABLE
    # Every customer: events by identity, then by anonymous id where the identity did not already give the
    # event to that same customer — the union of both without a dedupe over every event.
    identity = event_identity_value("e")
    store.create_temp_table_as(
        TABLE, f"SELECT ci.customer_id, {columns_sql} FROM {events} e "
        f"JOIN {identifiers} ci ON ci.id_type = e.identity_type AND ci.value = {identity} WHERE e.ts <= ? "
        f"UNION ALL SELECT a.customer_id, {columns_sql} FROM {events} e JOIN {identifiers} a "
        f"ON a.id_type = 'anonymous_id' AND a.value = e.anonymous_id LEFT JOIN {identifiers} b "
        f"ON b.id_type = e.identity_type AND b.value = {identity} AND b.customer_id = a.customer_id "
        f"WHERE e.ts <= ? AND b.customer_id IS NULL",
        params + [as_of] + params + [as_of])
    if scoped:
        drop(store, OWN_TABLE)
    return int(store.scalar(f"SELECT count(*) FROM {TABLE}") or 0)


def _scope_events(store: Store) -> str:
    """``_trait_scope_ids``: the identifiers of the customers in ``_trait_scope``; returns where their
    events are: ``_trait_own``, every event that may belong to them (rows may repeat) found by index
    lookups, or on DuckDB, when the lookups would cost more than a scan, ``events`` itself."""
    scope = [c for (c,) in store.fetchall(f"SELECT customer_id FROM {SCOPE_TABLE} ORDER BY customer_id")]
    duckdb = store.dialect == "duckdb"
    if duckdb and len(scope) > LOOKUP_CHUNK:  # a hash join over the identifier index beats that many lookups
        store.create_temp_table_as(SCOPE_IDS_TABLE, f"SELECT ci.customer_id, ci.id_type, ci.value "
                      f"FROM customer_identifiers ci JOIN {SCOPE_TABLE} s ON s.customer_id = ci.customer_id")
    else:
        store.create_temp_table_as(SCOPE_IDS_TABLE, "SELECT customer_id, id_type, value "
                                   "FROM customer_identifiers WHERE 1 = 0")
        for lo in range(0, len(scope), LOOKUP_CHUNK):  # one branch per customer: each an index lookup
            chunk = scope[lo:lo + LOOKUP_CHUNK]
            store.execute(f"INSERT INTO {SCOPE_IDS_TABLE} " + " UNION ALL ".join(
                "SELECT customer_id, id_type, value FROM customer_identifiers WHERE customer_id = ?"
                for _ in chunk), chunk)
    keys = sorted({(t, v) for t, v in store.fetchall(f"SELECT id_type, value FROM {SCOPE_IDS_TABLE}")})
    if duckdb and len(keys) > LOOKUP_CHUNK and (
            len(keys) * ROWS_PER_LOOKUP > int(store.scalar("SELECT count(*) FROM events") or 0)):
        return "events"
    empty, _ = events_sql(store, [], OWN_COLUMNS)
    store.create_temp_table_as(OWN_TABLE, empty)
    for lo in range(0, len(keys), LOOKUP_CHUNK):
        found, found_params = events_sql(store, keys[lo:lo + LOOKUP_CHUNK], OWN_COLUMNS)
        store.execute(f"INSERT INTO {OWN_TABLE} {found}", found_params)
    return f"(SELECT DISTINCT ON (event_id) * FROM {OWN_TABLE})"
