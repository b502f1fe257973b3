"""What a decision reads about one customer: traits, consent, recent purchases, recent offers.

``request_facts`` reads all of it for one request in one round trip (a UNION ALL of point queries;
on DuckDB, two): every statement costs a parse, a plan and a round trip, and a decision used to make
four of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from accord.store import Store
from accord.traits.lookups import belongs, events_sql

Trait = float | str


def customer_traits(store: Store, customer_id: str) -> dict[str, Trait]:
    """The customer's computed traits: numbers (booleans as 1/0) or text."""
    out: dict[str, Trait] = {}
    for name, num, text in store.fetchall(
            "SELECT name, value_num, value_text FROM customer_traits WHERE customer_id = ?", (customer_id,)):
        if num is not None:
            out[name] = float(num)
        elif text is not None:
            out[name] = str(text)
    return out


def customer_consent(store: Store, customer_id: str) -> dict[str, str]:
    """purpose -> current status (granted, denied, withdrawn)."""
    return {p: s for p, s in store.fetchall(
        "SELECT purpose, status FROM customer_consent WHERE customer_id = ?", (customer_id,))}


@dataclass(frozen=True)
class FactsQuery:
    """What one request reads. ``unit`` is whom frequency caps count for (the customer id, or
    ``anonymous_id:…``); ``customer_id`` None is an anonymous visitor."""

    unit: str
    customer_id: str | None = None
    check_customer: bool = False
    """Also read whether ``customer_id`` exists and where it redirects (an id a client sent)."""
    profile: bool = False
    """Read the customer's traits and consent."""
    items: tuple[str, ...] = ()
    """Inventory items whose stock to read."""
    given_since: datetime | None = None
    """Read the offers given to ``unit`` since then (None: skip)."""
    bought_since: datetime | None = None
    """Read the customer's purchase events since then (None: skip)."""
    purchase_event: str = "Order Completed"


@dataclass
class RequestFacts:
    """What the guardrails read for one request."""

    exists: bool = True
    redirect: str | None = None
    """The id ``customer_id`` was merged into (``check_customer``), else None."""
    stock: dict[str, int] = field(default_factory=dict)
    given: dict[str, tuple[list[str], datetime]] = field(default_factory=dict)
    """decision_id -> (the offers it gave, when), for decisions of the unit in the cap window."""
    purchases: list[str] = field(default_factory=list)
    """The properties (JSON text) of the customer's purchase events in the already-bought window."""
    traits: dict[str, tuple[float | None, str | None]] = field(default_factory=dict)
    consent: dict[str, str] = field(default_factory=dict)


_COLUMNS = ("CAST(NULL AS TEXT) AS k, CAST(NULL AS TEXT) AS t, CAST(NULL AS ${DOUBLE}) AS n, "
            "CAST(NULL AS TIMESTAMP) AS ts")


def _sql(q: FactsQuery, purchases_joined: bool) -> tuple[str, list[Any]]:
    # The first part fixes the column types; the others follow it.
    parts = [f"SELECT 'none' AS kind, {_COLUMNS} WHERE 1 = 0"]
    params: list[Any] = []
    cid = q.customer_id
    if cid is not None and q.check_customer:
        # Two point reads rather than one row of scalar subqueries: a third cheaper on DuckDB.
        parts.append("SELECT 'redirect', to_id, NULL, NULL, NULL FROM customer_redirects WHERE from_id = ?")
        parts.append("SELECT 'exists', customer_id, NULL, NULL, NULL FROM customers WHERE customer_id = ?")
        params += [cid, cid]
    if cid is not None and q.profile:
        parts.append("SELECT 'trait', name, value_text, value_num, NULL FROM customer_traits WHERE customer_id = ?")
        parts.append("SELECT 'consent', purpose, status, NULL, NULL FROM customer_consent WHERE customer_id = ?")
        params += [cid, cid]
    if q.items:
        parts.append("SELECT 'stock', item, NULL, stock, NULL FROM offer_inventory "
                     f"WHERE item IN ({', '.join('?' for _ in q.items)})")
        params += list(q.items)
    if q.given_since is not None:
        parts.append("SELECT 'given', decision_id, CAST(offered AS TEXT), NULL, decided_at FROM decisions "
                     "WHERE unit = ? AND decided_at >= ?")
        params += [q.unit, q.given_since]
    if cid is not None and q.bought_since is not None:
        if purchases_joined:
            # One part per way an event names the customer, so that each uses its index.
            head = ("SELECT 'bought', NULL, CAST(e.properties AS TEXT), NULL, NULL FROM customer_identifiers i "
                    "JOIN events e ")
            tail = " WHERE i.customer_id = ? AND e.event = ? AND e.ts >= ?"
            parts.append(head + "ON e.identity_type = i.id_type AND e.identity_value = i.value" + tail
                         + " AND i.id_type NOT IN ('anonymous_id', 'email')")
            parts.append(head + "ON e.identity_type = 'email' AND LOWER(e.identity_value) = i.value" + tail
                         + " AND i.id_type = 'email'")
            parts.append(head + "ON e.anonymous_id = i.value" + tail + " AND i.id_type = 'anonymous_id'")
            params += [cid, q.purchase_event, q.bought_since] * 3
        else:
            parts.append("SELECT 'identifier', id_type, value, NULL, NULL FROM customer_identifiers "
                         "WHERE customer_id = ?")
            params.append(cid)
    return " UNION ALL ".join(parts), params


_TYPED: dict[tuple[str, str], str] = {}


def request_facts(store: Store, q: FactsQuery) -> RequestFacts:
    """Everything ``q`` asks for, in one query on PostgreSQL. DuckDB has no index-driven join: there
    the purchases are a second query, one index lookup per identifier the first one read (a join would
    scan the events once per way of naming the customer)."""
    out = RequestFacts()
    joined = store.dialect == "postgresql"
    sql, params = _sql(q, joined)
    if not params:
        return out
    identifiers: dict[str, list[str]] = {}
    if q.customer_id is not None and q.check_customer:
        out.exists = False  # until the customers row is read
    typed = _TYPED.get((store.dialect, sql))
    if typed is None:
        typed = _TYPED[(store.dialect, sql)] = store.type_sql(sql)  # a handful of shapes per offer set
    for kind, key, text, num, ts in store.fetchall(typed, params):
        if kind == "trait":
            out.traits[key] = (None if num is None else float(num), text)
        elif kind == "consent":
            out.consent[key] = text
        elif kind == "stock":
            out.stock[key] = int(num)
        elif kind == "given":
            out.given[key] = (orjson.loads(text or "[]"), ts)  # offer ids, as the log wrote them
        elif kind == "bought":
            if text:
                out.purchases.append(text)
        elif kind == "identifier":
            identifiers.setdefault(key, []).append(text)
        elif kind == "redirect":
            out.redirect = key if out.redirect is None else min(out.redirect, key)
        elif kind == "exists":
            out.exists = True
    if identifiers and q.bought_since is not None and out.exists and out.redirect is None:
        out.purchases = purchase_properties(store, identifiers, q.bought_since, q.purchase_event)
    return out


def purchase_properties(store: Store, identifiers: dict[str, list[str]], since: datetime, purchase_event: str
                        ) -> list[str]:
    """The properties (JSON text) of purchase events since ``since`` that name one of ``identifiers``
    (id_type -> values): as the event's identity (emails compared lowercased) or its anonymous id.

    One index lookup per identifier (``accord.traits.lookups``: DuckDB uses an index only for a filter
    that is exactly the indexed expression; the API creates those indexes at start), the event name, time
    and exact identity checked on the few rows found: an ``OR`` of the identifiers would scan the events."""
    keys = {(id_type, value) for id_type, values in identifiers.items() for value in values}
    sql, params = events_sql(store, keys, "event_id, event, ts, CAST(properties AS TEXT)")
    found: dict[str, str] = {}
    for event_id, event, ts, text, identity_type, identity_value, anonymous_id in store.fetchall(sql, params):
        if (event == purchase_event and ts >= since and text and event_id not in found
                and belongs(keys, identity_type, identity_value, anonymous_id)):
            found[event_id] = text
    return list(found.values())


def _products(properties: Any, prop: str) -> set[str]:
    if not isinstance(properties, dict):
        return set()
    found = set()
    if properties.get(prop) is not None:
        found.add(str(properties[prop]))
    products = properties.get("products")
    if isinstance(products, list):
        found.update(str(p[prop]) for p in products if isinstance(p, dict) and p.get(prop) is not None)
    return found


def bought_products(purchases: list[str], product_property: str) -> set[str]:
    """The products named in these purchase events' properties (``product_property``, top level or in
    ``products``)."""
    found: set[str] = set()
    for text in purchases:
        found |= _products(json.loads(text), product_property)  # any JSON an event holds (orjson refuses > 64-bit ints)
    return found

