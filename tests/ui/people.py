"""A small hand-made store for the in-process dashboard tests: Ada (two records), Bob and Robert (one each,
a review pair), traits, consent, an event and a segment."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from accord.config import ProjectConfig
from accord.profiles import build_profiles
from accord.store import Store, open_store
from tests.profiles.helpers import add_records, clustering

ADA_EMAIL = "ada@example.com"
ADA_PHONE = "+44 20 7946 0018"
RECORDS = [
    {"rid": "crm:c1", "given_name": "Ada", "family_name": "Lovelace", "emails": [ADA_EMAIL], "phones": [ADA_PHONE],
     "street": "12 St James's Square", "city": "London", "postcode": "SW1Y 4JH", "country": "GB",
     "external_ids": {"crm_contact_id": "C-1"}, "day": 0},
    {"rid": "shop:s1", "emails": [ADA_EMAIL], "external_ids": {"shop_customer_id": "S-1"}, "day": 1},
    {"rid": "crm:c2", "given_name": "Bob", "family_name": "Babbage", "emails": ["bob@example.com"],
     "external_ids": {"crm_contact_id": "C-2"}, "day": 2},
    {"rid": "pos:p1", "given_name": "Robert", "family_name": "Babbage", "phones": ["+44 20 7946 0999"],
     "external_ids": {"loyalty_id": "L-9"}, "day": 3},
]
REVIEW_PAIR = ("crm:c2", "pos:p1")
NOW = datetime(2024, 6, 1)


def customer_of(store: Store, record: str) -> str:
    source, key = record.split(":")
    return store.scalar("SELECT customer_id FROM record_customer WHERE source = ? AND record_key = ?", (source, key))


def fill(store_url: str) -> dict[str, str]:
    """Fill the store; returns the customer ids of ada, bob and robert."""
    store = open_store(store_url)
    try:
        add_records(store, RECORDS)
        build_profiles(store, ProjectConfig.model_validate({"store": store_url}),
                       clustering(["crm:c1", "shop:s1"], ["crm:c2"], ["pos:p1"]), "run_1")
        ids = {"ada": customer_of(store, "crm:c1"), "bob": customer_of(store, "crm:c2"),
               "robert": customer_of(store, "pos:p1")}
        with store.transaction():
            store.execute("INSERT INTO match_edges (record_a, record_b, probability, match_weight, rule_or_model, "
                          "status, reason, run_id) VALUES (?, ?, 0.8, 2.0, 'model:v1', 'review', NULL, 'run_1')",
                          REVIEW_PAIR)
            store.executemany("INSERT INTO customer_traits (customer_id, name, value_num, value_text, computed_at) "
                              "VALUES (?, ?, ?, NULL, ?)",
                              [(ids["ada"], "health_score", 85.0, NOW), (ids["ada"], "churn_risk", 0.1, NOW),
                               (ids["bob"], "health_score", 35.0, NOW), (ids["bob"], "churn_risk", 0.75, NOW)])
            store.execute("INSERT INTO customer_consent (customer_id, purpose, status, decided_at, source, "
                          "lawful_basis) VALUES (?, 'email_marketing', 'granted', ?, 'crm', 'consent')",
                          (ids["ada"], NOW))
            store.execute(store.type_sql(
                "INSERT INTO events (event_id, source, type, event, ts, received_at, identity_type, identity_value, "
                "anonymous_id, revenue, properties, run_id) VALUES ('e1', 'web', 'track', 'Order Completed', ?, ?, "
                "'shop_customer_id', 'S-1', NULL, 42.5, CAST(? AS ${JSON}), 'run_1')"),
                (NOW, NOW, json.dumps({"email": ADA_EMAIL, "note": "gift for Ada Lovelace"})))
            store.execute(store.type_sql(
                "INSERT INTO segments (name, kind, origin, status, definition, description, requires_consent, "
                "realtime, created_at, updated_at, members) VALUES ('healthy', 'rule', 'saved', 'active', "
                "'health_score >= 50', NULL, CAST('[]' AS ${JSON}), TRUE, ?, ?, 1)"), (NOW, NOW))
            store.executemany(
                "INSERT INTO segment_membership (segment, customer_id, entered_at, exited_at, entered_by, exited_by) "
                "VALUES ('healthy', ?, ?, ?, 'batch', ?)",
                [(ids["ada"], NOW - timedelta(days=3), None, None),
                 (ids["bob"], NOW - timedelta(days=3), NOW - timedelta(days=1), "batch")])
        return ids
    finally:
        store.close()
