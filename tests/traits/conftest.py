"""Tiny hand-made stores for the traits tests: customers, their identifiers, events, tickets, companies."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from accord.store import Store
from accord.traits.settings import TraitsSettings

AS_OF = datetime(2024, 7, 1, 12, 0, 0)
NOW = datetime(2024, 7, 1, 12, 0, 0)


def days_ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


@dataclass
class TraitData:
    """Writes customers and what they did straight into the store's tables."""

    store: Store
    seq: int = 0
    events: int = 0
    tickets: int = 0
    customers: list[str] = field(default_factory=list)

    def customer(self, customer_id: str, *identifiers: tuple[str, str], company: str | None = None,
                 status: str = "active") -> str:
        self.seq += 1
        self.store.execute(
            "INSERT INTO customers (customer_id, seq, status, created_at, created_by) VALUES (?, ?, ?, ?, 'test')",
            (customer_id, self.seq, status, NOW))
        for id_type, value in identifiers or (("user_id", customer_id),):
            self.store.execute(
                "INSERT INTO customer_identifiers (id_type, value, customer_id, origin) VALUES (?, ?, ?, 'record')",
                (id_type, value, customer_id))
        if company is not None:
            self.store.execute(
                "INSERT INTO golden_values (customer_id, attribute, value, source, record_key, rule) "
                "VALUES (?, 'company', ?, 'crm', ?, 'most_recent')", (customer_id, company, customer_id))
        self.customers.append(customer_id)
        return customer_id

    def event(self, identity: tuple[str, str] | None, event: str | None, at: datetime, *, revenue: float | None = None,
              properties: dict[str, Any] | None = None, type: str = "track", anonymous_id: str | None = None,
              source: str = "web") -> str:
        self.events += 1
        event_id = f"{source}:e{self.events}"
        id_type, value = identity if identity else (None, None)
        self.store.execute(
            self.store.type_sql(
                "INSERT INTO events (event_id, source, type, event, ts, received_at, identity_type, identity_value, "
                "anonymous_id, revenue, properties, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS ${JSON}), "
                "'test')"),
            (event_id, source, type, event, at, at, id_type, value, anonymous_id, revenue,
             json.dumps(properties or {})))
        return event_id

    def order(self, customer_id: str, at: datetime, revenue: float, **properties: Any) -> str:
        return self.event(("user_id", customer_id), "Order Completed", at, revenue=revenue, properties=properties)

    def ticket(self, customer_id: str, at: datetime, *, sentiment: str = "", satisfaction: str = "",
               source: str = "support") -> str:
        self.tickets += 1
        key = f"T{self.tickets}"
        raw = {"ticket_id": key, "sentiment": sentiment, "satisfaction": satisfaction}
        self.store.execute(
            self.store.type_sql(
                "INSERT INTO source_records (source, record_key, row_hash, raw, source_created_at, first_seen_at, "
                "valid_from, run_id) VALUES (?, ?, 'h', CAST(? AS ${JSON}), ?, ?, ?, 'test')"),
            (source, key, json.dumps(raw), at, at, at))
        self.store.execute(
            "INSERT INTO record_customer (source, record_key, customer_id, assigned_at, actor) "
            "VALUES (?, ?, ?, ?, 'test')",
            (source, key, customer_id, NOW))
        return key

    def churn_risk(self, customer_id: str, risk: float) -> None:
        self.store.execute(
            "INSERT INTO customer_traits (customer_id, name, value_num, computed_at) VALUES (?, 'churn_risk', ?, ?)",
            (customer_id, risk, NOW))


@pytest.fixture
def data(store: Store) -> TraitData:
    return TraitData(store)


def settings(**section: Any) -> TraitsSettings:
    """Traits settings as accord.yaml would give them, evaluated at AS_OF."""
    return TraitsSettings.model_validate({"as_of": AS_OF, **section})


def traits_of(store: Store, customer_id: str) -> dict[str, Any]:
    """name -> value_num, or value_text when the trait is text."""
    return {name: text if text is not None else number for name, number, text in store.fetchall(
        "SELECT name, value_num, value_text FROM customer_traits WHERE customer_id = ? ORDER BY name", (customer_id,))}


@pytest.fixture
def compute(store: Store) -> Callable[..., Any]:
    from accord.traits import compute_traits

    def run(**section: Any) -> Any:
        return compute_traits(store, settings(**section), "run_test")

    return run
