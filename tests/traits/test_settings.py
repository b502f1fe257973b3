"""The traits section of accord.yaml: typed, strict, and errors that name the line and field."""

from __future__ import annotations

import textwrap
from datetime import timedelta

import pytest

from accord.config import parse_config
from accord.errors import ConfigError


def load(text: str):
    return parse_config(textwrap.dedent(text).lstrip("\n"))


def error(text: str) -> str:
    with pytest.raises(ConfigError) as exc:
        load(text)
    return str(exc.value)


def test_a_declared_trait_reads_its_aggregation_filter_and_window():
    cfg = load("""
        traits:
          computed:
            orders_90d: {count: {event: Order Completed}, within: 90d}
            revenue_365d: {sum: revenue, purchase: true, within: 52w}
        """)
    orders = cfg.traits.computed["orders_90d"]
    revenue = cfg.traits.computed["revenue_365d"]
    assert (orders.aggregation, orders.filter.event, orders.within) == ("count", ["Order Completed"],
                                                                        timedelta(days=90))
    assert (revenue.aggregation, revenue.argument, revenue.filter.purchase, revenue.within) == (
        "sum", "revenue", True, timedelta(weeks=52))


def test_the_section_may_be_absent():
    cfg = load("project: p\n")
    assert (cfg.traits.defaults, cfg.traits.engagement.weeks, cfg.traits.health.weights.engagement) == (True, 12, 0.3)


def test_a_bad_window_names_line_and_field():
    message = error("""
        traits:
          computed:
            orders_90d: {count: {event: Order Completed}, within: 3 months}
        """)
    assert message == ("accord.yaml:3: traits.computed.orders_90d.within: expected a duration such as 30m, 24h, "
                       "90d or 12w; got '3 months'")


def test_two_aggregations_in_one_trait_are_refused():
    message = error("""
        traits:
          computed:
            both: {count: all, sum: revenue}
        """)
    assert message.startswith("accord.yaml:3: traits.computed.both: give exactly one of count, sum,")
    assert message.endswith("got count, sum")


def test_a_property_path_with_quotes_is_refused():
    message = error("""
        traits:
          computed:
            bad: {last: "x') OR 1=1 --"}
        """)
    assert message.startswith("accord.yaml:3: traits.computed.bad.last: expected a property name or dotted path")


def test_a_name_accord_computes_itself_is_refused():
    message = error("""
        traits:
          computed:
            health_score: {count: all}
        """)
    assert "traits.computed: trait name 'health_score' is computed by Accord itself" in message


def test_an_unknown_key_is_refused():
    message = error("""
        traits:
          computed:
            orders: {count: all, window: 30d}
        """)
    assert message.startswith("accord.yaml:3: traits.computed.orders.window: unknown key")


def test_filters_given_twice_must_agree():
    message = error("""
        traits:
          computed:
            orders: {count: {event: Order Completed}, event: Page}
        """)
    assert "'event' is given twice with no value in common" in message


def test_weights_must_not_all_be_zero():
    message = error("""
        traits:
          health:
            weights: {engagement: 0, purchases: 0, support: 0, churn: 0}
        """)
    assert "traits.health.weights: at least one weight must be above zero" in message
