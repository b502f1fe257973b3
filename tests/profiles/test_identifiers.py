"""The identifier index: which customer each email, phone, external id, user id and anonymous id names."""

from datetime import datetime

from accord.clock import utcnow
from accord.events.customers import merge
from accord.profiles import assign_customer_ids, build_golden
from accord.profiles.golden import SCOPE_RECORDS
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


def add_event(store, event_id, identity_type, identity_value, anonymous_id=None, received_at=None):
    t = datetime(2024, 2, 1)
    with store.transaction():
        store.execute("INSERT INTO events (event_id, source, type, event, ts, received_at, identity_type, "
                      "identity_value, anonymous_id, run_id) VALUES (?, 'web', 'track', 'Viewed', ?, ?, ?, ?, ?, 'r')",
                      (event_id, t, received_at or t, identity_type, identity_value, anonymous_id))


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


def full_index(store):
    return sorted(store.fetchall("SELECT id_type, value, customer_id, origin, first_seen, last_seen "
                                 "FROM customer_identifiers"))


def add_signal(store, event_id, user_id, anonymous_id):
    t = datetime(2024, 3, 1)
    with store.transaction():
        store.execute("INSERT INTO identity_signals (event_id, type, user_id, anonymous_id, ts, received_at) "
                      "VALUES (?, 'identify', ?, ?, ?, ?)", (event_id, user_id, anonymous_id, t, t))


SCOPED_RECORDS = [
    {"rid": "crm:1", "emails": ["ann@example.com"], "external_ids": {"crm_id": "C1"}},
    {"rid": "crm:2", "emails": ["bob@example.com"], "phones": ["+14155550101"], "day": 1},
    {"rid": "shop:1", "external_ids": {"shop_customer_id": "S1"}, "emails": ["Ann@Example.com"], "day": 2},
    {"rid": "shop:2", "external_ids": {"shop_customer_id": "S2"}, "phones": ["+14155550102"], "day": 3},
    {"rid": "shop:3", "emails": ["cy@example.com"], "external_ids": {"shop_customer_id": "S3"}, "day": 4},
]


def scoped_base(store):
    """Four customers, events and a signal naming them by anonymous id, one realtime row."""
    build(store, SCOPED_RECORDS, ["crm:1", "shop:1"], ["crm:2", "shop:2"], ["shop:3"])
    add_event(store, "e1", "email", "bob@example.com", anonymous_id="anon-b")
    add_event(store, "e2", "user_id", "S1", anonymous_id="anon-a")
    add_signal(store, "s1", "S3", "anon-c")
    with store.transaction():
        store.execute("INSERT INTO customer_identifiers (id_type, value, customer_id, origin) "
                      "VALUES ('anonymous_id', 'anon-r', 'cus_00000003', 'realtime')")
        refresh_customer_identifiers(store)
    return full_index(store)


def test_a_scoped_refresh_after_a_partial_assignment_equals_a_whole_refresh(store):
    before = scoped_base(store)
    add_records(store, [{"rid": "web:9", "external_ids": {"web_user": "W9"}, "emails": ["bob@example.com"],
                         "day": 5}])
    add_event(store, "e3", "user_id", "W9", anonymous_id="anon-w")
    with store.transaction():  # crm:2 and shop:3 merge with the new web:9; shop:2 splits off alone
        ids = assign_customer_ids(store, clustering(["crm:2", "shop:3", "web:9"], ["shop:2"], prefix="m"),
                                  "run_2", partial=True)
        build_golden(store, None, PRIORITIES, customer_ids=ids.customer_ids)
        refresh_customer_identifiers(store, ids.customer_ids)
    scoped = full_index(store)
    with store.transaction():
        refresh_customer_identifiers(store)
    assert scoped == full_index(store)
    assert scoped != before
    assert ("web_user", "W9", "cus_00000002", "record") in {r[:4] for r in scoped}
    assert ("anonymous_id", "anon-c", "cus_00000002", "signal") in {r[:4] for r in scoped}


def test_a_scoped_refresh_takes_customers_real_time_stitching_changed_since_the_last_refresh(store):
    scoped_base(store)
    with store.transaction():  # an alias call merges shop:3's customer into cus_00000001 between runs
        merge(store, "cus_00000001", "cus_00000003", utcnow(), "alias", [])
    with store.transaction():
        build_golden(store, None, PRIORITIES, customer_ids=["cus_00000001"])
        refresh_customer_identifiers(store, [])
    scoped = full_index(store)
    with store.transaction():
        refresh_customer_identifiers(store)
    assert scoped == full_index(store)
    assert ("shop_customer_id", "S3", "cus_00000001", "record") in {r[:4] for r in scoped}


def test_a_scoped_refresh_takes_customers_named_by_events_received_since_the_last_refresh(store):
    scoped_base(store)
    add_event(store, "e9", "email", "CY@example.com", anonymous_id="anon-new", received_at=utcnow())
    with store.transaction():
        refresh_customer_identifiers(store, [])
    scoped = full_index(store)
    with store.transaction():
        refresh_customer_identifiers(store)
    assert scoped == full_index(store)
    assert ("anonymous_id", "anon-new", "cus_00000003", "event") in {r[:4] for r in scoped}


def test_a_scoped_refresh_leaves_customers_outside_its_scope_alone(store):
    scoped_base(store)
    with store.transaction():  # a stale row of a customer nothing changed: only a whole refresh sees it
        store.execute("INSERT INTO customer_identifiers (id_type, value, customer_id, origin) "
                      "VALUES ('crm_id', 'STALE', 'cus_00000001', 'record')")
        refresh_customer_identifiers(store, ["cus_00000002"])
    assert ("crm_id", "STALE", "cus_00000001", "record") in index(store)
    with store.transaction():
        refresh_customer_identifiers(store, ["cus_00000001"])
    assert ("crm_id", "STALE", "cus_00000001", "record") not in index(store)


def test_a_scoped_refresh_reading_the_golden_records_rows_equals_a_whole_refresh(store):
    scoped_base(store)
    add_records(store, [{"rid": "web:9", "external_ids": {"web_user": "W9"}, "emails": ["bob@example.com"],
                         "day": 5}])
    with store.transaction():  # crm:2 and shop:3 merge with the new web:9; shop:2 splits off alone
        ids = assign_customer_ids(store, clustering(["crm:2", "shop:3", "web:9"], ["shop:2"], prefix="m"),
                                  "run_2", partial=True)
        build_golden(store, None, PRIORITIES, customer_ids=ids.customer_ids, keep_scope_records=True)
        refresh_customer_identifiers(store, ids.customer_ids, scope_records=SCOPE_RECORDS)
    scoped = full_index(store)
    with store.transaction():
        refresh_customer_identifiers(store)
    assert scoped == full_index(store)
    assert ("web_user", "W9", "cus_00000002", "record") in {r[:4] for r in scoped}


def test_a_scoped_refresh_reads_the_store_for_customers_the_golden_records_did_not_read(store):
    scoped_base(store)
    # An event since the last refresh names cus_00000003, whose golden records this run did not rebuild.
    add_event(store, "e9", "email", "CY@example.com", anonymous_id="anon-new", received_at=utcnow())
    with store.transaction():
        build_golden(store, None, PRIORITIES, customer_ids=[], keep_scope_records=True)
        refresh_customer_identifiers(store, [], scope_records=SCOPE_RECORDS)
    scoped = full_index(store)
    with store.transaction():
        refresh_customer_identifiers(store)
    assert scoped == full_index(store)
    assert ("anonymous_id", "anon-new", "cus_00000003", "event") in {r[:4] for r in scoped}
