"""The identifier index: which customer each email, phone, external id, user id and anonymous id names."""

from datetime import datetime

from accord.profiles import assign_customer_ids, build_golden
from accord.profiles.identifiers import event_customers_sql, refresh_customer_identifiers
from tests.profiles.helpers import add_records, clustering

PRIORITIES = {"crm": 1, "shop": 2}


def build(store, recs, *groups):
    add_records(store, recs)
    with store.transaction():
        assign_customer_ids(store, clustering(*groups), "run_1")
        build_golden(store, None, PRIORITIES)
        return refresh_customer_identifiers(store)


def index(store):
    return set(store.fetchall("SELECT id_type, value, customer_id, origin FROM customer_identifiers"))


def add_event(store, event_id, identity_type, identity_value, anonymous_id=None):
    t = datetime(2024, 2, 1)
    with store.transaction():
        store.execute("INSERT INTO events (event_id, source, type, event, ts, received_at, identity_type, "
                      "identity_value, anonymous_id, run_id) VALUES (?, 'web', 'track', 'Viewed', ?, ?, ?, ?, ?, 'r')",
                      (event_id, t, t, identity_type, identity_value, anonymous_id))


def test_external_ids_index_under_their_name_and_as_user_id(store):
    build(store, [{"rid": "shop:1", "external_ids": {"shop_customer_id": "SH1"}}], ["shop:1"])
    assert index(store) == {("shop_customer_id", "SH1", "cus_00000001", "record"),
                            ("user_id", "SH1", "cus_00000001", "record")}


def test_emails_are_indexed_lowercased_and_phones_as_golden_records_hold_them(store):
    build(store, [{"rid": "crm:1", "emails": ["Ann@Example.com"], "phones": ["+14155550100"]}], ["crm:1"])
    assert ("email", "ann@example.com", "cus_00000001", "golden") in index(store)
    assert ("phone", "+14155550100", "cus_00000001", "golden") in index(store)


def test_an_anonymous_id_seen_with_a_known_identity_names_that_customer(store):
    build(store, [{"rid": "shop:1", "external_ids": {"shop_customer_id": "SH1"}}], ["shop:1"])
    add_event(store, "e1", "user_id", "SH1", anonymous_id="anon-1")
    with store.transaction():
        refresh_customer_identifiers(store)
    assert ("anonymous_id", "anon-1", "cus_00000001", "event") in index(store)


def test_a_shared_email_names_both_customers_identity_kept_apart(store):
    build(store, [{"rid": "crm:1", "emails": ["home@example.com"]}, {"rid": "crm:2", "emails": ["home@example.com"]}],
          ["crm:1"], ["crm:2"])
    names = {c for t, v, c, _ in index(store) if t == "email"}
    assert names == {"cus_00000001", "cus_00000002"}


def test_realtime_rows_survive_a_rebuild_and_follow_a_merge_to_the_surviving_id(store):
    build(store, [{"rid": "crm:1", "day": 0}, {"rid": "crm:2", "day": 1}], ["crm:1"], ["crm:2"])
    with store.transaction():
        store.execute("INSERT INTO customer_identifiers (id_type, value, customer_id, origin) "
                      "VALUES ('anonymous_id', 'a-2', 'cus_00000002', 'realtime')")
    with store.transaction():
        assign_customer_ids(store, clustering(["crm:1", "crm:2"]), "run_2")
        build_golden(store, None, PRIORITIES)
        report = refresh_customer_identifiers(store)
    assert ("anonymous_id", "a-2", "cus_00000001", "realtime") in index(store)
    assert report.realtime_kept == 1


def test_rebuild_drops_identifiers_of_records_no_longer_held(store):
    build(store, [{"rid": "shop:1", "external_ids": {"shop_customer_id": "SH1"}}], ["shop:1"])
    with store.transaction():
        store.execute("UPDATE source_records SET external_ids = CAST('{}' AS " +
                      ("JSON" if store.dialect == "duckdb" else "JSONB") + ")")
        refresh_customer_identifiers(store)
    assert index(store) == set()


def test_events_are_attributed_by_identity_and_by_anonymous_id(store):
    build(store, [{"rid": "crm:1", "emails": ["ann@example.com"]}], ["crm:1"])
    add_event(store, "e1", "email", "ANN@example.com", anonymous_id="anon-9")
    add_event(store, "e2", "user_id", "unknown", anonymous_id="anon-9")
    add_event(store, "e3", "user_id", "nobody")
    with store.transaction():
        refresh_customer_identifiers(store)
    assert sorted(store.fetchall(event_customers_sql())) == [("e1", "cus_00000001"), ("e2", "cus_00000001")]
