"""Declared computed traits: each aggregation kind, filters, windows and attribution, on both backends."""

from __future__ import annotations

from datetime import timedelta

from tests.traits.conftest import AS_OF, days_ago, traits_of


def test_count_with_event_filter_counts_only_that_event_inside_the_window(data, compute):
    data.customer("c1")
    data.order("c1", days_ago(10), 20.0)
    data.order("c1", days_ago(89), 20.0)
    data.order("c1", days_ago(91), 20.0)
    data.event(("user_id", "c1"), "Product Viewed", days_ago(5))
    compute(computed={"orders_90d": {"count": {"event": "Order Completed"}, "within": "90d"}})
    assert traits_of(data.store, "c1")["orders_90d"] == 2


def test_events_after_as_of_are_not_counted(data, compute):
    data.customer("c1")
    data.order("c1", days_ago(1), 20.0)
    data.order("c1", AS_OF + timedelta(hours=1), 20.0)
    compute()
    assert traits_of(data.store, "c1")["orders_total"] == 1


def test_sum_of_revenue_over_purchases_in_a_window(data, compute):
    data.customer("c1")
    data.order("c1", days_ago(30), 19.5)
    data.order("c1", days_ago(300), 10.25)
    data.order("c1", days_ago(400), 1000.0)
    data.event(("user_id", "c1"), "Product Viewed", days_ago(3))
    compute(computed={"revenue_365d": {"sum": "revenue", "purchase": True, "within": "365d"}})
    assert traits_of(data.store, "c1")["revenue_365d"] == 29.75


def test_avg_min_and_max_read_numbers_from_properties_and_ignore_text(data, compute):
    data.customer("c1")
    for items in (2, "4", 9, "n/a"):
        data.event(("user_id", "c1"), "Order Completed", days_ago(5), properties={"items": items})
    compute(defaults=False, computed={"avg_items": {"avg": "items"}, "min_items": {"min": "items"},
                                      "max_items": {"max": "items"}})
    values = traits_of(data.store, "c1")
    assert (values["avg_items"], values["min_items"], values["max_items"]) == (5.0, 2.0, 9.0)


def test_first_and_last_take_the_earliest_and_latest_value_of_a_property(data, compute):
    data.customer("c1")
    data.event(("user_id", "c1"), "Page", days_ago(50), properties={"utm": {"source": "google"}})
    data.event(("user_id", "c1"), "Page", days_ago(20), properties={"utm": {"source": "newsletter"}})
    data.event(("user_id", "c1"), "Page", days_ago(2), properties={"other": 1})
    compute(computed={"first_source": {"first": "utm.source"}, "last_source": {"last": "utm.source"}})
    values = traits_of(data.store, "c1")
    assert (values["first_source"], values["last_source"]) == ("google", "newsletter")


def test_most_frequent_value_breaks_a_tie_by_sort_order(data, compute):
    data.customer("c1")
    data.customer("c2")
    for category in ("Shoes", "Books", "Shoes", "Books", "Toys"):
        data.event(("user_id", "c1"), "Product Viewed", days_ago(3), properties={"category": category})
    for category in ("Toys", "Toys", "Books"):
        data.event(("user_id", "c2"), "Product Viewed", days_ago(3), properties={"category": category})
    compute(computed={"favourite_category": {"most_frequent": "category", "event": "Product Viewed"}})
    assert traits_of(data.store, "c1")["favourite_category"] == "Books"
    assert traits_of(data.store, "c2")["favourite_category"] == "Toys"


def test_unique_lists_distinct_values_sorted_and_capped_as_json(data, compute):
    data.customer("c1")
    for category in ("Toys", "Books", "Toys", "Apparel", 'Say "hi"'):
        data.event(("user_id", "c1"), "Product Viewed", days_ago(3), properties={"category": category})
    compute(computed={"categories": {"unique": "category"}, "two_categories": {"unique": "category", "limit": 2}})
    values = traits_of(data.store, "c1")
    assert values["categories"] == '["Apparel","Books","Say \\"hi\\"","Toys"]'
    assert values["two_categories"] == '["Apparel","Books"]'


def test_first_seen_and_last_seen_are_iso_text_with_unix_seconds(data, compute):
    data.customer("c1")
    data.event(("user_id", "c1"), "Page", AS_OF - timedelta(days=3, hours=2))
    data.event(("user_id", "c1"), "Page", AS_OF - timedelta(days=1))
    compute()
    rows = dict((name, (num, text)) for name, num, text in data.store.fetchall(
        "SELECT name, value_num, value_text FROM customer_traits WHERE customer_id = 'c1' "
        "AND name IN ('first_seen', 'last_seen')"))
    assert rows["first_seen"] == (1719568800.0, "2024-06-28T10:00:00")
    assert rows["last_seen"] == (1719748800.0, "2024-06-30T12:00:00")


def test_days_since_last_event_and_last_order(data, compute):
    data.customer("c1")
    data.order("c1", days_ago(12.5), 5.0)
    data.event(("user_id", "c1"), "Page", days_ago(2))
    compute()
    values = traits_of(data.store, "c1")
    assert (values["days_since_last_event"], values["days_since_last_order"]) == (2.0, 12.5)


def test_where_filters_on_a_property_value(data, compute):
    data.customer("c1")
    data.event(("user_id", "c1"), "Order Completed", days_ago(3), revenue=10.0, properties={"status": "returned"})
    data.event(("user_id", "c1"), "Order Completed", days_ago(3), revenue=12.0, properties={"status": "completed"})
    data.event(("user_id", "c1"), "Order Completed", days_ago(3), revenue=15.0, properties={"status": "completed"})
    compute(computed={"returns": {"count": {"where": {"status": "returned"}}},
                      "kept_revenue": {"sum": "revenue", "where": {"status": "completed"}}})
    values = traits_of(data.store, "c1")
    assert (values["returns"], values["kept_revenue"]) == (1, 27.0)


def test_events_reach_customers_by_lowercased_email_and_by_anonymous_id(data, compute):
    data.customer("c1", ("email", "ann@example.com"), ("anonymous_id", "anon-1"))
    data.event(("email", "Ann@Example.COM"), "open", days_ago(1), source="email")
    data.event(None, "Product Viewed", days_ago(1), anonymous_id="anon-1")
    data.event(("email", "bob@example.com"), "open", days_ago(1), source="email")
    compute()
    assert traits_of(data.store, "c1")["events_total"] == 2


def test_an_identifier_shared_by_two_customers_counts_for_both(data, compute):
    data.customer("c1", ("email", "home@example.com"))
    data.customer("c2", ("email", "home@example.com"))
    data.event(("email", "home@example.com"), "open", days_ago(1), source="email")
    compute()
    assert (traits_of(data.store, "c1")["events_total"], traits_of(data.store, "c2")["events_total"]) == (1, 1)


def test_customers_without_events_get_zero_counts_and_no_empty_values(data, compute):
    data.customer("c1")
    compute()
    assert traits_of(data.store, "c1") == {
        "events_total": 0, "events_30d": 0, "orders_total": 0, "orders_90d": 0, "revenue_total": 0,
        "revenue_365d": 0, "engagement_trend": 0, "engagement_active_weeks": 0, "health_score": 0}


def test_retired_customers_get_no_traits(data, compute):
    data.customer("c1", status="retired")
    compute()
    assert traits_of(data.store, "c1") == {}


def test_defaults_are_computed_when_the_section_is_absent(data, compute):
    data.customer("c1")
    data.order("c1", days_ago(3), 40.0)
    data.order("c1", days_ago(200), 60.0)
    report = compute()
    values = traits_of(data.store, "c1")
    assert {k: values[k] for k in ("events_total", "events_30d", "orders_total", "orders_90d", "revenue_total",
                                   "revenue_365d", "average_order_value", "days_since_last_order")} == {
        "events_total": 2, "events_30d": 1, "orders_total": 2, "orders_90d": 1, "revenue_total": 100.0,
        "revenue_365d": 100.0, "average_order_value": 50.0, "days_since_last_order": 3.0}
    assert report.traits[:11] == ["events_total", "events_30d", "orders_total", "orders_90d", "revenue_total",
                                  "revenue_365d", "average_order_value", "first_seen", "last_seen",
                                  "days_since_last_event", "days_since_last_order"]


def test_purchase_events_can_be_named_instead_of_any_event_with_revenue(data, compute):
    data.customer("c1")
    data.order("c1", days_ago(3), 40.0)
    data.event(("user_id", "c1"), "Refund Issued", days_ago(2), revenue=-40.0)
    compute(purchase={"events": ["Order Completed"]})
    assert traits_of(data.store, "c1")["orders_total"] == 1


def test_a_trait_removed_from_the_settings_loses_its_values_and_other_stages_traits_stay(data, compute):
    data.customer("c1")
    data.churn_risk("c1", 0.3)
    data.event(("user_id", "c1"), "Page", days_ago(1))
    compute(computed={"pages": {"count": {"event": "Page"}}})
    assert traits_of(data.store, "c1")["pages"] == 1
    compute()
    values = traits_of(data.store, "c1")
    assert "pages" not in values
    assert values["churn_risk"] == 0.3


def test_recomputing_replaces_values_rather_than_adding_rows(data, compute):
    data.customer("c1")
    data.order("c1", days_ago(3), 40.0)
    compute()
    data.order("c1", days_ago(2), 10.0)
    compute()
    assert data.store.scalar(
        "SELECT count(*) FROM customer_traits WHERE customer_id = 'c1' AND name = 'orders_total'") == 1
    assert traits_of(data.store, "c1")["orders_total"] == 2
