"""What a decision reads about one customer: traits, consent, recent purchases, recent offers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from accord.store import Store

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


def _identifiers(store: Store, customer_id: str) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = {}
    for id_type, value in store.fetchall(
            "SELECT id_type, value FROM customer_identifiers WHERE customer_id = ? ORDER BY 1, 2", (customer_id,)):
        ids.setdefault(id_type, []).append(value)
    return ids


@dataclass
class RequestFacts:
    """What the guardrails read for one request, in one round trip."""

    stock: dict[str, int] = field(default_factory=dict)
    given: list[tuple[str, datetime]] = field(default_factory=list)
    identifiers: dict[str, list[str]] = field(default_factory=dict)
    traits: dict[str, tuple[float | None, str | None]] = field(default_factory=dict)
    consent: dict[str, str] = field(default_factory=dict)


def request_facts(store: Store, unit: str, since: datetime | None, items: list[str], customer_id: str | None,
                  profile_of: str | None = None) -> RequestFacts:
    """Stock of ``items``, the offers ``unit`` was given since ``since`` (None: skip), the identifiers of
    ``customer_id`` and the traits and consent of ``profile_of`` (None: skip), in one query."""
    parts: list[str] = []
    params: list[Any] = []
    if profile_of is not None:
        parts.append("SELECT 'trait' AS kind, name AS k, value_text AS t, value_num AS n, CAST(NULL AS TIMESTAMP) AS ts "
                     "FROM customer_traits WHERE customer_id = ?")
        parts.append("SELECT 'consent', purpose, status, NULL, NULL FROM customer_consent WHERE customer_id = ?")
        params += [profile_of, profile_of]
    if items:
        parts.append("SELECT 'stock' AS kind, item AS k, CAST(NULL AS TEXT) AS t, CAST(stock AS ${DOUBLE}) AS n, "
                     "CAST(NULL AS TIMESTAMP) AS ts FROM offer_inventory "
                     f"WHERE item IN ({', '.join('?' for _ in items)})")
        params += items
    if since is not None:
        parts.append("SELECT 'given', CAST(NULL AS TEXT), CAST(offered AS TEXT), NULL, decided_at FROM decisions "
                     "WHERE unit = ? AND decided_at >= ?")
        params += [unit, since]
    if customer_id is not None:
        parts.append("SELECT 'identifier', id_type, value, NULL, NULL FROM customer_identifiers WHERE customer_id = ?")
        params.append(customer_id)
    out = RequestFacts()
    if not parts:
        return out
    for kind, key, text, num, ts in store.fetchall(store.type_sql(" UNION ALL ".join(parts)), params):
        if kind == "stock":
            out.stock[key] = int(num)
        elif kind == "given":
            out.given += [(offer_id, ts) for offer_id in json.loads(text or "[]")]
        elif kind == "trait":
            out.traits[key] = (None if num is None else float(num), text)
        elif kind == "consent":
            out.consent[key] = text
        else:
            out.identifiers.setdefault(key, []).append(text)
    for values in out.identifiers.values():
        values.sort()
    return out


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


def bought_products(store: Store, customer_id: str, since: datetime, purchase_event: str, product_property: str,
                    identifiers: dict[str, list[str]] | None = None) -> set[str]:
    """Products the customer bought since ``since``: purchase events attributed to the customer
    through customer_identifiers (the event's identity, or its anonymous id)."""
    ids = _identifiers(store, customer_id) if identifiers is None else identifiers
    clauses: list[str] = []
    params: list[Any] = []
    for id_type, values in ids.items():
        marks = ", ".join("?" for _ in values)
        if id_type == "anonymous_id":
            clauses.append(f"anonymous_id IN ({marks})")
            params += values
        else:
            column = "LOWER(identity_value)" if id_type == "email" else "identity_value"
            clauses.append(f"(identity_type = ? AND {column} IN ({marks}))")
            params += [id_type, *values]
    if not clauses:
        return set()
    rows = store.fetchall(
        f"SELECT CAST(properties AS TEXT) FROM events WHERE event = ? AND ts >= ? AND ({' OR '.join(clauses)})",
        [purchase_event, since, *params])
    found: set[str] = set()
    for (text,) in rows:
        if text:
            found |= _products(json.loads(text), product_property)
    return found


def count_since(given: list[tuple[str, datetime]], offer_id: str, since: datetime) -> int:
    return sum(1 for o, t in given if o == offer_id and t >= since)
