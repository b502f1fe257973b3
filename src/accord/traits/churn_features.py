"""Churn features and labels as of a cutoff, from daily activity and purchases.

Everything is computed from what happened strictly before the cutoff, so a snapshot at a past cutoff
sees what the model would have seen then; the label is what happened in the ``window_days`` after it.
A customer is in a snapshot when they were active in the ``lookback_days`` before the cutoff (customers
silent for longer are already lost, and would make any model look good).

The history is turned into integer arrays once (customer codes, day numbers) and every window is a
``np.bincount`` over them, so a snapshot of a million customers costs a few passes over the arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ACTIVITY_WINDOWS = (7, 30, 90, 365)
PURCHASE_WINDOWS = (90, 365)
_EPOCH = np.datetime64("1970-01-01", "D")
_DAY_NS = 86_400 * 10**9


@dataclass(frozen=True)
class History:
    """Activity and purchases as arrays over customer codes (``customers[code]`` is the id)."""

    customers: pd.Index
    activity_customer: np.ndarray
    activity_day: np.ndarray
    """Whole days since 1970-01-01."""
    activity_events: np.ndarray
    purchase_customer: np.ndarray
    purchase_time: np.ndarray
    """Days since 1970-01-01, with the time of day as a fraction."""
    purchase_amount: np.ndarray

    @classmethod
    def build(cls, activity: pd.DataFrame, purchases: pd.DataFrame) -> History:
        """``activity``: customer, day, events. ``purchases``: customer, ts, amount."""
        customers = pd.Index(pd.unique(pd.concat([activity["customer"], purchases["customer"]], ignore_index=True)))
        return cls(
            customers=customers,
            activity_customer=customers.get_indexer(activity["customer"]),
            activity_day=(activity["day"].to_numpy("datetime64[D]") - _EPOCH).astype(np.int64),
            activity_events=activity["events"].to_numpy(dtype=float),
            purchase_customer=customers.get_indexer(purchases["customer"]),
            purchase_time=purchases["ts"].to_numpy("datetime64[ns]").astype(np.int64) / _DAY_NS,
            purchase_amount=purchases["amount"].to_numpy(dtype=float),
        )

    @property
    def last_day(self) -> pd.Timestamp:
        return pd.Timestamp(int(self.activity_day.max()), unit="D")


def _day_number(cutoff: pd.Timestamp) -> int:
    return int((np.datetime64(cutoff.normalize(), "D") - _EPOCH).astype(np.int64))


def snapshot_features(history: History, cutoff: pd.Timestamp, *, lookback_days: int,
                      flags: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per customer active in the lookback before ``cutoff``, indexed by customer id."""
    c = _day_number(cutoff)
    n = len(history.customers)
    before = history.activity_day < c
    who, day, events = history.activity_customer[before], history.activity_day[before], history.activity_events[before]
    age = c - day  # 1 = the day before the cutoff
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(first, who, day)
    np.maximum.at(last, who, day)
    eligible = np.flatnonzero(last >= c - lookback_days)
    columns: dict[str, np.ndarray] = {
        "tenure_days": (c - first[eligible]).astype(float),
        "days_since_last_event": (c - last[eligible]).astype(float),
    }
    for days in ACTIVITY_WINDOWS:
        inside = age <= days
        columns[f"events_{days}d"] = np.bincount(who[inside], weights=events[inside], minlength=n)[eligible]
        columns[f"active_days_{days}d"] = np.bincount(who[inside], minlength=n)[eligible].astype(float)
    # Momentum: the last 30 days against the 30-day average of the last 90.
    columns["events_trend"] = columns["events_30d"] - columns["events_90d"] / 3.0

    bought = history.purchase_time < c
    buyer, when, amount = (history.purchase_customer[bought], history.purchase_time[bought],
                           history.purchase_amount[bought])
    count = np.bincount(buyer, minlength=n).astype(float)
    columns["purchases_total"] = count[eligible]
    columns["revenue_total"] = np.bincount(buyer, weights=amount, minlength=n)[eligible]
    for days in PURCHASE_WINDOWS:
        inside = when >= c - days
        columns[f"purchases_{days}d"] = np.bincount(buyer[inside], minlength=n)[eligible].astype(float)
        columns[f"revenue_{days}d"] = np.bincount(buyer[inside], weights=amount[inside], minlength=n)[eligible]
    first_buy = np.full(n, np.inf)
    last_buy = np.full(n, -np.inf)
    np.minimum.at(first_buy, buyer, when)
    np.maximum.at(last_buy, buyer, when)
    has_bought = count[eligible] > 0
    columns["days_since_last_purchase"] = np.where(has_bought, c - last_buy[eligible], np.nan)
    repeats = count[eligible] - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        columns["days_between_purchases"] = np.where(
            repeats > 0, (last_buy[eligible] - first_buy[eligible]) / np.maximum(repeats, 1), np.nan)
    out = pd.DataFrame(columns, index=pd.Index(history.customers[eligible], name="customer"))
    if flags is not None and not flags.empty:
        out = out.join(flags, how="left")
        out[flags.columns] = out[flags.columns].fillna(0.0)
    return out


def snapshot_labels(history: History, customers: pd.Index, cutoff: pd.Timestamp, window_days: int,
                    label: str) -> pd.Series:
    """1 when the customer did nothing (``label='activity'``) or bought nothing (``'purchase'``) in
    [cutoff, cutoff + window_days)."""
    c = _day_number(cutoff)
    if label == "purchase":
        inside = (history.purchase_time >= c) & (history.purchase_time < c + window_days)
        acted = history.purchase_customer[inside]
    else:
        inside = (history.activity_day >= c) & (history.activity_day < c + window_days)
        acted = history.activity_customer[inside]
    did = np.bincount(acted, minlength=len(history.customers)) > 0
    codes = history.customers.get_indexer(customers)
    return pd.Series((~did[codes]).astype(int), index=customers, name="churned")
