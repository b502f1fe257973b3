"""update_customer_traits: one customer recomputed after an event, the same as a batch run would give."""

from __future__ import annotations

import pytest

from accord.traits import compute_traits, stage, update_customer_traits, update_traits
from tests.traits.conftest import days_ago, settings, traits_of

DECLARED = {"computed": {"categories": {"unique": "category"}, "favourite": {"most_frequent": "category"},
                         "orders_7d": {"count": {"event": "Order Completed"}, "within": "7d"}}}


def _shop(data) -> None:
    for i in range(6):
        cid = data.customer(f"c{i}", ("user_id", f"c{i}"), ("anonymous_id", f"anon-{i}"))
        for k in range(i + 1):
            data.order(cid, days_ago(3 + 40 * k), 20.0 + k, category=("Books", "Toys")[k % 2])
        data.ticket(cid, days_ago(9), sentiment=str(i / 10), satisfaction="4")


@pytest.mark.parametrize("lookup_indexes", [False, True], ids=["scan", "indexed"])
def test_one_customer_updated_after_an_event_equals_a_batch_recompute(data, store, lookup_indexes):
    if lookup_indexes:  # as the API server has them
        from accord.traits.lookups import ensure_lookup_indexes

        ensure_lookup_indexes(store)
    _shop(data)
    data.event(("email", "C2@Example.com"), "open", days_ago(1))  # c2's email, written in another case
    store.execute("INSERT INTO customer_identifiers (id_type, value, customer_id, origin) "
                  "VALUES ('email', 'c2@example.com', 'c2', 'record')")
    compute_traits(store, settings(**DECLARED), "run_1")
    data.event(None, "Product Viewed", days_ago(0.5), anonymous_id="anon-2", properties={"category": "Games"})
    updated = update_customer_traits(store, settings(**DECLARED), "c2")
    incremental = traits_of(store, "c2")
    compute_traits(store, settings(**DECLARED), "run_2")
    assert incremental == traits_of(store, "c2")
    assert (updated.values["events_total"], updated.values["categories"]) == (5, ["Books", "Games", "Toys"])


def test_an_update_leaves_other_customers_alone(data, store):
    _shop(data)
    compute_traits(store, settings(), "run_1")
    before = store.fetchall("SELECT customer_id, name, value_num, value_text, computed_at FROM customer_traits "
                            "WHERE customer_id <> 'c1' ORDER BY 1, 2")
    data.order("c1", days_ago(1), 99.0)
    update_customer_traits(store, settings(), "c1")
    after = store.fetchall("SELECT customer_id, name, value_num, value_text, computed_at FROM customer_traits "
                           "WHERE customer_id <> 'c1' ORDER BY 1, 2")
    assert after == before
    assert traits_of(store, "c1")["orders_total"] == 3


def test_a_customer_seen_first_in_real_time_gets_traits_before_any_batch_run(data, store):
    data.customer("new", ("anonymous_id", "anon-x"))
    data.event(None, "Page", days_ago(0.1), anonymous_id="anon-x", type="page")
    result = update_customer_traits(store, settings(), "new")
    assert (result.values["events_total"], result.values["events_30d"], "rfm_recency" in result.values) == (
        1, 1, False)


def test_a_failing_run_leaves_the_previous_traits_in_place(data, store, monkeypatch):
    _shop(data)
    compute_traits(store, settings(), "run_1")
    before = store.fetchall("SELECT customer_id, name, value_num, value_text FROM customer_traits ORDER BY 1, 2")
    data.order("c0", days_ago(1), 500.0)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(stage, "write_account_traits", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        compute_traits(store, settings(), "run_2")
    after = store.fetchall("SELECT customer_id, name, value_num, value_text FROM customer_traits ORDER BY 1, 2")
    assert after == before


def _all_traits(store) -> list[tuple]:
    return store.fetchall("SELECT customer_id, name, value_num, value_text FROM customer_traits ORDER BY 1, 2")


@pytest.mark.parametrize("plan", ["lookups", "chunked", "scan"])
def test_many_customers_updated_at_once_equal_a_batch_recompute(data, store, plan, monkeypatch):
    from accord.traits import events
    from accord.traits.lookups import ensure_lookup_indexes

    ensure_lookup_indexes(store)  # as the API server has them
    if plan != "lookups":  # a scope larger than a statement's lookups: identifiers joined on DuckDB, old
        monkeypatch.setattr(events, "LOOKUP_CHUNK", 2)  # traits deleted with one statement
        monkeypatch.setattr(stage, "FEW_CUSTOMERS", 2)
    if plan == "chunked":  # events still found by index lookups, a few per statement
        monkeypatch.setattr(events, "ROWS_PER_LOOKUP", 0)
    if plan == "scan":  # DuckDB: more lookups than a scan of the events costs (PostgreSQL still looks up)
        monkeypatch.setattr(events, "ROWS_PER_LOOKUP", 10**9)
    _shop(data)
    data.customer("shared", ("email", "family@example.com"))  # an email two customers share
    data.churn_risk("c3", 0.7)  # the health score reads it
    store.execute("INSERT INTO customer_identifiers (id_type, value, customer_id, origin) "
                  "VALUES ('email', 'family@example.com', 'c4', 'record')")
    compute_traits(store, settings(**DECLARED), "run_1")
    data.event(None, "Product Viewed", days_ago(0.5), anonymous_id="anon-2", properties={"category": "Games"})
    # No new purchases: they would move the RFM boundaries, which only a batch run recomputes.
    data.event(("user_id", "c2"), "Product Viewed", days_ago(0.2), anonymous_id="anon-2",  # counted once
               properties={"category": "Books"})
    data.event(("email", "Family@Example.com"), "Signed In", days_ago(0.3))
    data.event(("user_id", "c5"), "Product Viewed", days_ago(0.1), properties={"category": "Toys"})
    data.ticket("c3", days_ago(1), sentiment="-1", satisfaction="1")
    assert update_traits(store, settings(**DECLARED), ["c2", "c3", "c4", "shared", "c5", "c2"]) == 5
    incremental = _all_traits(store)
    compute_traits(store, settings(**DECLARED), "run_2")
    assert incremental == _all_traits(store)
    assert traits_of(store, "shared")["events_total"] == 1


def test_a_customer_no_longer_active_loses_the_stage_traits_as_in_a_batch_run(data, store):
    _shop(data)
    data.churn_risk("c1", 0.4)
    compute_traits(store, settings(), "run_1")
    store.execute("UPDATE customers SET status = 'retired' WHERE customer_id = 'c1'")
    assert update_traits(store, settings(), ["c1", "c0"]) == 1
    assert traits_of(store, "c1") == {"churn_risk": 0.4}  # another stage's trait stays
    incremental = _all_traits(store)
    compute_traits(store, settings(), "run_2")
    assert incremental == _all_traits(store)


def test_updating_no_customer_writes_nothing(data, store):
    _shop(data)
    compute_traits(store, settings(), "run_1")
    before = _all_traits(store)
    assert update_traits(store, settings(), []) == 0
    assert _all_traits(store) == before
