"""What the model traits read from the store: purchases and daily activity per customer.

Events reach customers through ``customer_identifiers`` (0005_shared.sql), the one way every stage
attributes them (``accord.profiles.identifiers.event_customers_sql``): an event's (identity_type,
identity_value) — emails compared lowercased — or its anonymous_id as id_type 'anonymous_id'. An
identifier naming two customers (a shared household email) gives the event to both.
Event names are always bound as parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from accord.profiles.identifiers import event_customers_sql
from accord.store.backend import Store

def _attributed() -> str:
    """Every event with the customer it names (one row per event and customer)."""
    return (f"SELECT ec.customer_id, e.event_id, e.ts, e.type, e.event, e.revenue "
            f"FROM ({event_customers_sql()}) ec JOIN events e ON e.event_id = ec.event_id")


def _placeholders(values: Sequence[str]) -> str:
    return ", ".join("?" for _ in values)


def _purchase_condition(purchase_events: Sequence[str] | None) -> tuple[str, list[str]]:
    if purchase_events:
        return f"event IN ({_placeholders(purchase_events)})", list(purchase_events)
    return "revenue IS NOT NULL", []


def load_purchases(store: Store, purchase_events: Sequence[str] | None,
                   until: pd.Timestamp | None = None) -> pd.DataFrame:
    """Purchases as columns customer, ts, amount (revenue, 0 when absent).

    The same purchase reported by two systems (the shop's order and the web tracker's
    'Order Completed') has the same customer, instant and amount, and is counted once.
    """
    condition, params = _purchase_condition(purchase_events)
    sql = (f"SELECT DISTINCT customer_id, ts, COALESCE(revenue, 0) AS amount FROM ({_attributed()}) a "
           f"WHERE {condition}")
    if until is not None:
        sql += " AND ts < ?"
        params.append(until.to_pydatetime())
    frame = store.fetch_arrow(sql, params).to_pandas()
    frame = frame.rename(columns={"customer_id": "customer"})
    if frame.empty:
        return pd.DataFrame({"customer": pd.Series(dtype=str), "ts": pd.Series(dtype="datetime64[us]"),
                             "amount": pd.Series(dtype=float)})
    frame["ts"] = pd.to_datetime(frame["ts"])
    frame["amount"] = frame["amount"].astype(float)
    # A fixed order, so both engines hand the models identical input and get identical fits.
    return frame.sort_values(["customer", "ts", "amount"], ignore_index=True)


def load_daily_activity(store: Store, exclude_events: Sequence[str]) -> pd.DataFrame:
    """Events per customer and day (columns customer, day, events): actions of the customer only —
    track, page and screen calls, without the events named in ``exclude_events``."""
    params: list[str] = list(exclude_events)
    excluded = f"AND (event IS NULL OR event NOT IN ({_placeholders(exclude_events)}))" if exclude_events else ""
    sql = (f"SELECT customer_id, CAST(ts AS DATE) AS day, COUNT(*) AS events FROM ({_attributed()}) a "
           f"WHERE type IN ('track', 'page', 'screen') {excluded} GROUP BY customer_id, CAST(ts AS DATE)")
    frame = store.fetch_arrow(sql, params).to_pandas()
    frame = frame.rename(columns={"customer_id": "customer"})
    if frame.empty:
        return pd.DataFrame({"customer": pd.Series(dtype=str), "day": pd.Series(dtype="datetime64[us]"),
                             "events": pd.Series(dtype=float)})
    frame["day"] = pd.to_datetime(frame["day"])
    frame["events"] = frame["events"].astype(float)
    return frame.sort_values(["customer", "day"], ignore_index=True)


def load_profile_flags(store: Store, attributes: Sequence[str] = ("company",)) -> pd.DataFrame:
    """One 0/1 column ``has_<attribute>`` per golden attribute, indexed by customer (only customers
    holding at least one of them appear)."""
    if not attributes:
        return pd.DataFrame()
    sql = (f"SELECT DISTINCT customer_id, attribute FROM golden_values "
           f"WHERE attribute IN ({_placeholders(attributes)})")
    rows = store.fetchall(sql, list(attributes))
    frame = pd.DataFrame(rows, columns=["customer", "attribute"])
    if frame.empty:
        return pd.DataFrame(columns=[f"has_{a}" for a in attributes])
    flags = pd.crosstab(frame["customer"], frame["attribute"]).clip(upper=1)
    flags = flags.reindex(columns=list(attributes), fill_value=0)
    flags.columns = [f"has_{a}" for a in flags.columns]
    return flags.astype(float)
