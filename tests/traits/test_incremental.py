"""update_customer_traits: one customer recomputed after an event, the same as a batch run would give."""

from __future__ import annotations

import pytest

from accord.traits import compute_traits, stage, update_customer_traits
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
