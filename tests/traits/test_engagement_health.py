"""Engagement trend (least-squares slope of weekly activity), support sentiment and the health score."""

from __future__ import annotations

import numpy as np
import pytest

from accord.traits.health import slope
from tests.traits.conftest import days_ago, traits_of

ONLY_ENGAGEMENT_AND_SUPPORT = {"engagement": 1, "purchases": 0, "support": 1, "churn": 0}


def _weekly(data, customer_id: str, counts: list[int]) -> None:
    """``counts[k]`` events in week k of the last len(counts) weeks, oldest first."""
    weeks = len(counts)
    for k, n in enumerate(counts):
        for j in range(n):
            data.event(("user_id", customer_id), "Page", days_ago(7 * (weeks - 1 - k) + 1 + j * 0.1))


def test_trend_is_the_least_squares_slope_of_weekly_activity(data, compute):
    data.customer("c1")
    _weekly(data, "c1", [0, 1, 2, 3])
    data.event(("user_id", "c1"), "Page", days_ago(40))  # before the 4 weeks
    compute(engagement={"weeks": 4})
    values = traits_of(data.store, "c1")
    assert (values["engagement_trend"], values["engagement_active_weeks"]) == (1.0, 3)


def test_trend_matches_numpy_polyfit_for_an_irregular_pattern(data, compute):
    counts = [3, 0, 5, 1, 0, 0, 2, 4, 0, 1, 0, 6]
    data.customer("c1")
    _weekly(data, "c1", counts)
    compute()
    expected = float(np.polyfit(np.arange(12), np.array(counts, dtype=float), 1)[0])
    assert traits_of(data.store, "c1")["engagement_trend"] == pytest.approx(expected, abs=1e-12)
    assert slope([float(c) for c in counts]) == pytest.approx(expected, abs=1e-12)


def test_what_the_business_does_to_a_customer_is_not_activity(data, compute):
    data.customer("c1", ("user_id", "c1"), ("email", "c1@example.com"))
    data.event(("email", "c1@example.com"), "sent", days_ago(1), source="email")
    data.event(("email", "c1@example.com"), "open", days_ago(8), source="email")
    compute(engagement={"weeks": 2})
    values = traits_of(data.store, "c1")
    assert (values["engagement_trend"], values["engagement_active_weeks"]) == (-1.0, 1)


def test_support_sentiment_averages_tickets_in_the_window(data, compute):
    data.customer("c1")
    data.ticket("c1", days_ago(10), sentiment="0.5", satisfaction="5")  # (0.75 + 1.0) / 2
    data.ticket("c1", days_ago(20), sentiment="-1", satisfaction="")  # 0.0
    data.ticket("c1", days_ago(400), sentiment="1", satisfaction="5")  # outside 365d
    data.ticket("c1", days_ago(5), sentiment="1", satisfaction="5", source="crm")  # not a support source
    compute()
    assert traits_of(data.store, "c1")["support_sentiment"] == 0.4375


def test_support_tickets_can_be_events(data, compute):
    data.customer("c1")
    data.event(("user_id", "c1"), "Ticket Solved", days_ago(3), properties={"sentiment": 0.2, "satisfaction": 4})
    compute(health={"support": {"sources": [], "events": ["Ticket Solved"]}})
    assert traits_of(data.store, "c1")["support_sentiment"] == pytest.approx(0.675)


def test_health_combines_components_with_the_configured_weights(data, compute):
    data.customer("c1")
    _weekly(data, "c1", [1, 0, 1, 0])  # 2 of 4 weeks active: 0.5
    data.ticket("c1", days_ago(3), sentiment="0.5", satisfaction="5")  # 0.875
    compute(engagement={"weeks": 4}, health={"weights": ONLY_ENGAGEMENT_AND_SUPPORT})
    assert traits_of(data.store, "c1")["health_score"] == 68.8  # 100 * (0.5 + 0.875) / 2


def test_purchases_component_is_the_rfm_score_share(data, compute):
    data.customer("best")
    data.customer("least")
    for k in range(3):
        data.order("best", days_ago(1 + k), 100.0)
    data.order("least", days_ago(200), 5.0)
    compute(health={"weights": {"engagement": 0, "purchases": 1, "support": 0, "churn": 0}})
    assert (traits_of(data.store, "best")["health_score"], traits_of(data.store, "least")["health_score"]) == (
        100.0, 0.0)


def test_missing_churn_risk_and_support_are_left_out_and_weights_renormalized(data, compute):
    weights = {"engagement": 0.6, "purchases": 0, "support": 0.3, "churn": 0.4}
    for cid in ("without", "with"):
        data.customer(cid)
        data.event(("user_id", cid), "Page", days_ago(1))  # 1 of 12 weeks
    data.churn_risk("with", 0.25)
    compute(health={"weights": weights})
    assert traits_of(data.store, "without")["health_score"] == 8.3  # 100 * 0.6 * (1/12) / 0.6
    assert traits_of(data.store, "with")["health_score"] == 35.0  # 100 * (0.6/12 + 0.4 * 0.75) / 1.0


@pytest.mark.parametrize("weeks", [12, 63, 64, 100])
def test_active_weeks_count_each_week_with_activity_once_however_long_the_window(data, compute, weeks):
    data.customer("c1")
    for days in (1, 1.5, 2, 20, 60, 61, 7 * (weeks - 1) + 1):  # weeks 0, 0, 0, 2, 8, 8 and the oldest one
        data.event(("user_id", "c1"), "Page", days_ago(days))
    data.event(("user_id", "c1"), "Page", days_ago(7 * weeks + 1))  # outside the window
    compute(engagement={"weeks": weeks})
    assert traits_of(data.store, "c1")["engagement_active_weeks"] == 4
