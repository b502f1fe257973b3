"""A small store in which one person, Ann Quill, is everywhere Accord keeps people; Bob Stone beside her."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from accord.config import ProjectConfig
from accord.privacy.consent import refresh_consent
from accord.profiles import build_profiles
from accord.sources import ingest
from accord.store import Store
from tests.profiles.helpers import clustering

CRM = """id,first,last,email,phone,opt_in,updated
1001,Ann,Quill,Ann.Quill@Example.com,(415) 555-0142,yes,2024-03-01T10:00:00
1002,Bob,Stone,bob.stone@example.org,(415) 555-0199,no,2024-03-02T10:00:00
1001,Ann,Quill,Ann.Quill@Example.com,(415) 555-0142,yes,2024-03-01T10:00:00
"""
SHOP = """key,name,email,phone,marketing,modified
S-77,Ann Quill,ann.quill@example.com,+1 415 555 0142,false,2024-05-01T09:00:00
S-88,Bob Stone,bob.stone@example.org,,true,2024-05-02T09:00:00
"""
ORDERS = """order_id,email,total,at
O-1,Ann.Quill@Example.com,25.5,2024-04-01T12:00:00
O-2,bob.stone@example.org,10,2024-04-02T12:00:00
"""

ANN_IDENTIFIERS = ("Ann.Quill@Example.com", "ann.quill@example.com", "(415) 555-0142", "+14155550142",
                   "+1 415 555 0142", "anon-ann-7f3e", "user-ann-5521", "Quill")
BOB_IDENTIFIERS = ("bob.stone@example.org", "Stone")


def project_config(store_url: str, data_dir: Path, privacy: dict[str, Any] | None = None) -> ProjectConfig:
    return ProjectConfig.model_validate(project_dict(store_url, data_dir, privacy))


def project_dict(store_url: str, data_dir: Path, privacy: dict[str, Any] | None = None) -> dict[str, Any]:
    return ({
        "store": store_url,
        "sources": [
            {"name": "crm", "format": "csv", "path": str(data_dir / "crm.csv"), "primary_key": "id", "priority": 1,
             "fields": {"given_name": "first", "family_name": "last", "emails": ["email"], "phones": ["phone"],
                        "updated_at": "updated", "external_ids": {"crm_id": "id"},
                        "consent": {"email_marketing": "opt_in"}}},
            {"name": "shop", "format": "csv", "path": str(data_dir / "shop.csv"), "primary_key": "key",
             "fields": {"full_name": {"column": "name", "split": "given family"}, "emails": ["email"],
                        "phones": ["phone"], "updated_at": "modified", "consent": {"email_marketing": "marketing"}}},
            {"name": "orders", "format": "csv", "path": str(data_dir / "orders.csv"), "primary_key": "order_id",
             "kind": "events", "events": {"event": {"constant": "Order Completed"}, "timestamp": "at",
                                          "identity_type": "email", "identity": "email", "revenue": "total"}},
        ],
        "privacy": privacy or {},
    })


@dataclass
class World:
    store: Store
    cfg: ProjectConfig
    data_dir: Path
    ann: str
    bob: str


def write_sources(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "crm.csv").write_text(CRM, encoding="utf-8")
    (data_dir / "shop.csv").write_text(SHOP, encoding="utf-8")
    (data_dir / "orders.csv").write_text(ORDERS, encoding="utf-8")


def customer_of(store: Store, source: str, key: str) -> str:
    return store.scalar("SELECT customer_id FROM record_customer WHERE source = ? AND record_key = ?", (source, key))


def build_world(store: Store, store_url: str, data_dir: Path) -> World:
    write_sources(data_dir)
    cfg = project_config(store_url, data_dir)
    reports = ingest(store, cfg, run_id="run_1")
    assert [r.error for r in reports] == [None, None, None]
    build_profiles(store, cfg, clustering(["crm:1001", "shop:S-77"], ["crm:1002", "shop:S-88"]), "run_1")
    ann, bob = customer_of(store, "crm", "1001"), customer_of(store, "crm", "1002")
    t = datetime(2024, 6, 1)
    with store.transaction():
        store.executemany(store.type_sql(
            "INSERT INTO events (event_id, source, type, event, ts, received_at, identity_type, identity_value, "
            "anonymous_id, properties, run_id) VALUES (?, 'api', ?, ?, ?, ?, ?, ?, ?, CAST(? AS ${JSON}), 'api')"), [
            ("m-1", "track", "Product Viewed", t, t, None, None, "anon-ann-7f3e", json.dumps({"sku": "X"})),
            ("m-2", "identify", None, t, t, "user_id", "user-ann-5521", "anon-ann-7f3e",
             json.dumps({"traits": {"email": "ann.quill@example.com"}})),
            ("m-3", "track", "Product Viewed", t, t, "user_id", "user-bob-1", None, json.dumps({"sku": "Y"})),
        ])
        store.execute(store.type_sql(
            "INSERT INTO identity_signals (event_id, type, user_id, anonymous_id, traits, ts, received_at) "
            "VALUES ('m-2', 'identify', 'user-ann-5521', 'anon-ann-7f3e', CAST(? AS ${JSON}), ?, ?)"),
            (json.dumps({"email": "ann.quill@example.com", "name": "Ann Quill"}), t, t))
        store.executemany(
            "INSERT INTO customer_identifiers (id_type, value, customer_id, origin, first_seen, last_seen) "
            "VALUES (?, ?, ?, 'test', ?, ?) ON CONFLICT DO NOTHING", [
                ("email", "ann.quill@example.com", ann, t, t), ("phone", "+14155550142", ann, t, t),
                ("user_id", "user-ann-5521", ann, t, t), ("anonymous_id", "anon-ann-7f3e", ann, t, t),
                ("email", "bob.stone@example.org", bob, t, t), ("user_id", "user-bob-1", bob, t, t)])
        store.executemany("INSERT INTO customer_traits (customer_id, name, value_num, value_text, computed_at) "
                          "VALUES (?, ?, ?, ?, ?)", [(ann, "orders_90d", 1, None, t), (bob, "orders_90d", 1, None, t)])
        store.execute("INSERT INTO accounts (account_id, name, origin, first_seen, last_seen) "
                      "VALUES ('acme', 'Acme', 'test', ?, ?)", (t, t))
        store.executemany("INSERT INTO account_members (account_id, customer_id, origin, first_seen, last_seen) "
                          "VALUES ('acme', ?, 'test', ?, ?)", [(ann, t, t), (bob, t, t)])
        store.executemany(
            "INSERT INTO match_edges (record_a, record_b, probability, match_weight, rule_or_model, status, run_id) "
            "VALUES (?, ?, ?, ?, ?, ?, 'run_1')", [
                ("crm:1001", "shop:S-77", 0.99, 9.1, "model", "auto"),
                ("crm:1002", "shop:S-88", 0.98, 8.7, "model", "auto"),
                ("crm:1001", "crm:1002", 0.7, 1.2, "model", "review")])
        store.execute("INSERT INTO identity_constraints (constraint_id, record_a, record_b, kind, actor, reason, "
                      "created_at) VALUES (1, 'crm:1001', 'crm:1002', 'cannot_link', 'user:steward', "
                      "'Ann Quill is not Bob', ?)", (t,))
        store.execute(store.type_sql("INSERT INTO runs (run_id, command, started_at, status, report) VALUES "
                                     "('run_0', 'resolve', ?, 'ok', CAST(? AS ${JSON}))"),
                      (t, json.dumps({"warnings": ["shared identifier ann.quill@example.com excluded"]})))
    refresh_consent(store, cfg)
    return World(store, cfg, data_dir, ann, bob)


@pytest.fixture
def world(store: Store, store_url: str, tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(store, store_url, tmp_path_factory.mktemp("sources"))


ROLE_KEYS = {"admin": "k-admin", "steward": "k-steward", "analyst": "k-analyst", "marketer": "k-marketer",
             "ingest": "k-ingest", "read": "k-read", "write": "k-write"}


class Client:
    """The API on a world's store, with a key per role."""

    def __init__(self, client: Any):
        self.client = client

    def call(self, method: str, path: str, role: str = "admin", purpose: str | None = None, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {ROLE_KEYS[role]}", **kw.pop("headers", {})}
        if purpose:
            headers["X-Accord-Purpose"] = purpose
        return self.client.request(method, path, headers=headers, **kw)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        worker = self.client.app.state.store_worker
        return self.client.portal.call(worker.call, lambda store: store.fetchall(sql, params))


@pytest.fixture
def api(world: World, store_url: str) -> Any:
    from fastapi.testclient import TestClient

    from accord.api import create_app

    env = {f"ACCORD_{r.upper()}_KEY": k for r, k in ROLE_KEYS.items()}
    world.store.close()  # the app's store thread is the one connection (DuckDB allows one writer)
    with TestClient(create_app(world.cfg, environ=env)) as client:
        yield Client(client)
