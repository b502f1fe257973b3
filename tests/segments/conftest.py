"""Segment fixtures: a small world of customers written straight into the shared tables."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from accord.config import ProjectConfig, parse_config
from accord.store import Store

NOW = datetime(2026, 3, 1, 12, 0, 0)
_SEQ = itertools.count(1)


@dataclass
class World:
    """Writes customers, their golden values, traits, consent, accounts, identifiers and events."""

    store: Store
    customers: list[str] = field(default_factory=list)

    def customer(self, customer_id: str, *, status: str = "active", attributes: dict[str, str] | None = None,
                 traits: dict[str, Any] | None = None, consent: dict[str, str] | None = None,
                 accounts: list[str] | None = None, identifiers: list[tuple[str, str]] | None = None) -> str:
        s = self.store
        s.execute("INSERT INTO customers (customer_id, seq, status, created_at, created_by) VALUES (?, ?, ?, ?, 'test')",
                  (customer_id, next(_SEQ), status, NOW))
        for name, value in (attributes or {}).items():
            s.execute("INSERT INTO golden_values (customer_id, attribute, value, source, record_key, observed_at, rule) "
                      "VALUES (?, ?, ?, 'crm', ?, ?, 'only_value')", (customer_id, name, value, customer_id, NOW))
        for name, value in (traits or {}).items():
            num, text = _trait_columns(value)
            s.execute("INSERT INTO customer_traits (customer_id, name, value_num, value_text, computed_at) "
                      "VALUES (?, ?, ?, ?, ?)", (customer_id, name, num, text, NOW))
        for purpose, status_ in (consent or {}).items():
            s.execute("INSERT INTO customer_consent (customer_id, purpose, status, decided_at, source) "
                      "VALUES (?, ?, ?, ?, 'test')", (customer_id, purpose, status_, NOW))
        for account in accounts or []:
            if not s.fetchone("SELECT 1 FROM accounts WHERE account_id = ?", (account,)):
                s.execute("INSERT INTO accounts (account_id, name, origin, first_seen, last_seen) VALUES (?, ?, 'test', ?, ?)",
                          (account, f"{account.title()} Inc", NOW, NOW))
            s.execute("INSERT INTO account_members (account_id, customer_id, origin, first_seen, last_seen) "
                      "VALUES (?, ?, 'test', ?, ?)", (account, customer_id, NOW, NOW))
        for id_type, value in identifiers if identifiers is not None else [("user_id", customer_id)]:
            s.execute("INSERT INTO customer_identifiers (id_type, value, customer_id, origin) VALUES (?, ?, ?, 'test')",
                      (id_type, value, customer_id))
        self.customers.append(customer_id)
        return customer_id

    def event(self, event_id: str, *, ago: timedelta, event: str | None = "Product Viewed", type: str = "track",
              identity: tuple[str, str] | None = None, anonymous_id: str | None = None, now: datetime = NOW) -> None:
        id_type, value = identity or (None, None)
        self.store.execute(
            "INSERT INTO events (event_id, source, type, event, ts, received_at, identity_type, identity_value, "
            "anonymous_id, run_id) VALUES (?, 'api', ?, ?, ?, ?, ?, ?, ?, 'test')",
            (event_id, type, event, now - ago, now - ago, id_type, value, anonymous_id))

    def clear(self) -> None:
        for table in ("customers", "golden_values", "customer_traits", "customer_consent", "accounts",
                      "account_members", "customer_identifiers", "events", "segment_membership", "segments",
                      "webhook_deliveries"):
            self.store.execute(f"DELETE FROM {table}")
        self.customers.clear()


def _trait_columns(value: Any) -> tuple[float | None, str | None]:
    """(value_num, value_text) as the traits stage stores a value: booleans as 1/0, text as text."""
    if isinstance(value, tuple):
        return value
    if isinstance(value, bool):
        return (1.0 if value else 0.0), None
    if isinstance(value, (int, float)):
        return float(value), None
    return None, value


@pytest.fixture
def world(store: Store) -> World:
    return World(store)


def project(store_url: str, segments_yaml: str = "", tmp_path: Path | None = None) -> ProjectConfig:
    """A ProjectConfig on ``store_url`` with this ``segments:`` section (YAML text, indented)."""
    text = f"store: {store_url!r}\n" + (f"segments:\n{segments_yaml}" if segments_yaml else "")
    return parse_config(text, base_dir=tmp_path)


@pytest.fixture
def config_for(store: Store, tmp_path: Path) -> Any:
    def make(segments_yaml: str = "") -> ProjectConfig:
        return project(store.url, segments_yaml, tmp_path)
    return make
