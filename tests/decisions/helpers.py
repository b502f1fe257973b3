"""Helpers for decisions tests: settings from plain dicts, customers with traits, consent and purchases."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from accord.decisions.engine import DecideRequest
from accord.decisions.settings import DecisionsSettings
from accord.store import Store

NOW = datetime(2026, 6, 1, 12, 0, 0)


def settings(**section: Any) -> DecisionsSettings:
    return DecisionsSettings.model_validate(section)


def add_customer(store: Store, customer_id: str, traits: dict[str, float | str] | None = None,
                 consent: dict[str, str] | None = None, identifiers: dict[str, str] | None = None) -> None:
    with store.transaction():
        for name, value in (traits or {}).items():
            num, text = (float(value), None) if isinstance(value, (int, float)) else (None, str(value))
            store.execute("INSERT INTO customer_traits (customer_id, name, value_num, value_text, computed_at) "
                          "VALUES (?, ?, ?, ?, ?)", (customer_id, name, num, text, NOW))
        for purpose, status in (consent or {}).items():
            store.execute("INSERT INTO customer_consent (customer_id, purpose, status, decided_at, source) "
                          "VALUES (?, ?, ?, ?, 'test')", (customer_id, purpose, status, NOW))
        for id_type, value in (identifiers or {}).items():
            store.execute("INSERT INTO customer_identifiers (id_type, value, customer_id, origin) VALUES (?, ?, ?, ?)",
                          (id_type, value, customer_id, "test"))


def add_purchase(store: Store, user_id: str, product_id: str, ts: datetime, event_id: str) -> None:
    store.execute(store.type_sql(
        "INSERT INTO events (event_id, source, type, event, ts, received_at, identity_type, identity_value, "
        "properties, run_id) VALUES (?, 'shop', 'track', 'Order Completed', ?, ?, 'user_id', ?, "
        "CAST(? AS ${JSON}), 'test')"), (event_id, ts, ts, user_id, json.dumps({"product_id": product_id})))


def offered(decision: Any) -> list[str]:
    return [o.offer_id for o in decision.offers]


def request(customer_id: str | None = "cus_1", **context: Any) -> DecideRequest:
    return DecideRequest(customer_id=customer_id, anonymous_id=None if customer_id else "anon_1", **context)


def at(days: float) -> datetime:
    return NOW - timedelta(days=days)
