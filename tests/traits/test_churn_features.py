"""Churn features and labels as of a cutoff, on a hand-made history with exact answers."""

from __future__ import annotations

import math

import pandas as pd

from accord.traits.churn_features import History, snapshot_features, snapshot_labels

CUTOFF = pd.Timestamp("2024-04-01")


def _history() -> History:
    activity = pd.DataFrame({
        "customer": ["a", "a", "a", "a", "b", "c", "c"],
        "day": pd.to_datetime(["2023-06-01", "2024-03-01", "2024-03-25", "2024-04-10",
                               "2023-01-15", "2024-03-31", "2024-06-01"]),
        "events": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
    })
    purchases = pd.DataFrame({
        "customer": ["a", "a", "a", "c"],
        "ts": pd.to_datetime(["2023-06-01 12:00", "2024-03-25 06:00", "2024-04-10 10:00", "2024-06-01 09:00"]),
        "amount": [10.0, 30.0, 99.0, 5.0],
    })
    return History.build(activity, purchases)


def test_features_count_only_what_happened_before_the_cutoff() -> None:
    X = snapshot_features(_history(), CUTOFF, lookback_days=365)
    a = X.loc["a"]
    assert (a["tenure_days"], a["days_since_last_event"]) == (305.0, 7.0)
    assert (a["events_7d"], a["events_30d"], a["events_90d"], a["events_365d"]) == (3.0, 3.0, 5.0, 6.0)
    assert (a["active_days_30d"], a["active_days_365d"]) == (1.0, 3.0)
    assert a["events_trend"] == 3.0 - 5.0 / 3
    assert (a["purchases_total"], a["revenue_total"], a["purchases_90d"], a["revenue_90d"]) == (2.0, 40.0, 1.0, 30.0)
    assert a["days_since_last_purchase"] == 6.75  # 2024-03-25 06:00 -> 2024-04-01 00:00
    assert a["days_between_purchases"] == (pd.Timestamp("2024-03-25 06:00") - pd.Timestamp("2023-06-01 12:00")) / \
        pd.Timedelta(days=1)


def test_customers_silent_for_longer_than_the_lookback_are_left_out() -> None:
    X = snapshot_features(_history(), CUTOFF, lookback_days=365)
    assert sorted(X.index) == ["a", "c"]  # b's only activity is 442 days before the cutoff


def test_a_customer_without_purchases_has_no_purchase_timing() -> None:
    c = snapshot_features(_history(), CUTOFF, lookback_days=365).loc["c"]
    assert c["purchases_total"] == 0.0 and math.isnan(c["days_since_last_purchase"])


def test_labels_mark_customers_without_activity_or_purchase_in_the_window() -> None:
    history = _history()
    customers = pd.Index(["a", "c"], name="customer")
    # a is active on 04-10 (inside 30 days); c only on 06-01 (outside).
    assert snapshot_labels(history, customers, CUTOFF, 30, "activity").to_dict() == {"a": 0, "c": 1}
    assert snapshot_labels(history, customers, CUTOFF, 90, "activity").to_dict() == {"a": 0, "c": 0}
    assert snapshot_labels(history, customers, CUTOFF, 60, "purchase").to_dict() == {"a": 0, "c": 1}
