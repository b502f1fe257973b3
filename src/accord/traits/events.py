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


def create_temp(store: Store, table: str) -> str:
    """The start of a statement (re)creating temporary ``table``: ``<this> AS SELECT ...``."""
    if store.dialect == "duckdb":
        return f"CREATE OR REPLACE TEMP TABLE {table}"
    store.execute(f"DROP TABLE IF EXISTS {table}")
    return f"CREATE TEMP TABLE {table}"


def drop(store: Store, *tables: str) -> None:
    for table in tables:
        store.execute(f"DROP TABLE IF EXISTS {table}")


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
                       customer_id: str | None = None) -> int:
    """Create ``_trait_events`` (all customers, or one); return its row count."""
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
        store.execute(f"{create_temp(store, OWN_TABLE)} AS {found}", found_params)
        where, where_params = _belongs_sql(identifiers)
        store.execute(f"{create_temp(store, TABLE)} AS SELECT CAST(? AS TEXT) AS customer_id, {columns_sql} "
                      f"FROM (SELECT DISTINCT ON (event_id) * FROM {OWN_TABLE}) e WHERE {where} AND e.ts <= ?",
                      [customer_id, *params, *where_params, as_of])
        drop(store, OWN_TABLE)
        return -1
    # Every customer: events by identity, then by anonymous id where the identity did not already give the
    # event to that same customer — the union of both without a dedupe over every event.
    identity = event_identity_value("e")
    store.execute(
        f"{create_temp(store, TABLE)} AS SELECT ci.customer_id, {columns_sql} FROM events e "
        f"JOIN customer_identifiers ci ON ci.id_type = e.identity_type AND ci.value = {identity} WHERE e.ts <= ? "
        f"UNION ALL SELECT a.customer_id, {columns_sql} FROM events e JOIN customer_identifiers a "
        f"ON a.id_type = 'anonymous_id' AND a.value = e.anonymous_id LEFT JOIN customer_identifiers b "
        f"ON b.id_type = e.identity_type AND b.value = {identity} AND b.customer_id = a.customer_id "
        f"WHERE e.ts <= ? AND b.customer_id IS NULL",
        params + [as_of] + params + [as_of])
    return int(store.scalar(f"SELECT count(*) FROM {TABLE}") or 0)
