"""What lifetime value reads from the store: purchases attributed to customers, each counted once."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from accord.store.backend import Store
from accord.traits.model_inputs import load_daily_activity, load_purchases

from .model_history import write_events, write_identifiers

T1, T2, T3 = datetime(2024, 3, 1, 10), datetime(2024, 3, 2, 11), datetime(2024, 3, 9, 12)


def _events(store: Store) -> None:
    write_identifiers(store, [("email", "ann@example.com", "c-ann"), ("anonymous_id", "anon-7", "c-ann"),
                              ("shop_customer_id", "S1", "c-bob")])
    write_events(store, {
        "event_id": ["e1", "e2", "e3", "e4", "e5", "e6", "e7"],
        "event": ["Order Completed", "Order Completed", "Order Completed", "Store Purchase", "Product Viewed",
                  "Order Completed", "sent"],
        "ts": [T1, T1, T2, T3, T3, T1, T2],
        "identity_type": ["email", "shop_customer_id", "user_id", "shop_customer_id", "email", "email", "email"],
        "identity_value": ["Ann@Example.com", "S1", "nobody", "S1", "ann@example.com", "zed@example.com",
                           "ann@example.com"],
        "anonymous_id": [None, None, "anon-7", None, None, None, None],
        "revenue": [30.0, 12.5, 18.0, 40.0, None, 99.0, None],
        "source": ["shop", "shop", "web", "pos", "web", "shop", "mail"],
    })


def _rows(frame: pd.DataFrame) -> list[tuple]:
    return sorted(tuple(r) for r in frame.itertuples(index=False))


def test_purchases_reach_customers_by_identifier_lowercased_email_and_anonymous_id(store: Store) -> None:
    _events(store)
    purchases = load_purchases(store, None)
    # e1 via the email (any case), e3 via its anonymous id; e6 names nobody known and is left out.
    assert _rows(purchases) == [
        ("c-ann", pd.Timestamp(T1), 30.0), ("c-ann", pd.Timestamp(T2), 18.0),
        ("c-bob", pd.Timestamp(T1), 12.5), ("c-bob", pd.Timestamp(T3), 40.0)]


def test_named_purchase_events_limit_what_counts(store: Store) -> None:
    _events(store)
    purchases = load_purchases(store, ["Store Purchase"])
    assert _rows(purchases) == [("c-bob", pd.Timestamp(T3), 40.0)]


def test_the_same_purchase_reported_by_two_systems_counts_once(store: Store) -> None:
    _events(store)
    write_events(store, {"event_id": ["web-copy"], "event": ["Order Completed"], "ts": [T1],
                         "identity_value": ["S1"], "revenue": [12.5], "source": ["web"]},
                 identity_type="shop_customer_id")
    assert len(load_purchases(store, None).query("customer == 'c-bob'")) == 2


def test_purchases_before_a_day_only(store: Store) -> None:
    _events(store)
    assert len(load_purchases(store, None, until=pd.Timestamp("2024-03-02"))) == 2


def test_daily_activity_counts_customer_actions_not_mail_sent_to_them(store: Store) -> None:
    _events(store)
    activity = load_daily_activity(store, ["sent"])
    assert _rows(activity) == [
        ("c-ann", pd.Timestamp("2024-03-01"), 1.0), ("c-ann", pd.Timestamp("2024-03-02"), 1.0),
        ("c-ann", pd.Timestamp("2024-03-09"), 1.0),
        ("c-bob", pd.Timestamp("2024-03-01"), 1.0), ("c-bob", pd.Timestamp("2024-03-09"), 1.0)]


def test_purchases_without_amounts_still_get_p_alive_and_expected_purchases(store: Store) -> None:
    from accord.config import parse_config
    from accord.traits.model_traits import fit_store_clv

    ids = [f"c{i}" for i in range(40)]
    write_identifiers(store, [("user_id", c, c) for c in ids])
    days = [pd.Timestamp("2024-01-01") + pd.Timedelta(days=7 * k) for k in range(6)]
    cols: dict[str, list] = {"event_id": [], "event": [], "ts": [], "identity_value": [], "revenue": []}
    for i, c in enumerate(ids):
        for k, day in enumerate(days[: 1 + i % 5]):
            cols["event_id"].append(f"{c}-{k}")
            cols["event"].append("Order Completed")
            cols["ts"].append(day.to_pydatetime())
            cols["identity_value"].append(c)
            cols["revenue"].append(None)
    write_events(store, cols)
    warnings: list[str] = []
    cfg = parse_config("clv: {purchase_events: [Order Completed], min_customers: 10}\n")
    result = fit_store_clv(store, cfg.clv, "run-1", warnings)
    assert result["status"] == "fitted" and result["gamma_gamma"] is None
    names = {r[0] for r in store.fetchall("SELECT DISTINCT name FROM customer_traits")}
    assert names == {"p_alive", "clv_expected_purchases_365d"}
    assert any("no clv_value_*" in w for w in warnings)
