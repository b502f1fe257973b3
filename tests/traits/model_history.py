"""Synthetic customer history for the model-trait store tests: events and identifiers written straight
into the store, with known behaviour (who stops, who keeps buying)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa

from accord.store.backend import Store

START = datetime(2024, 1, 1)


@dataclass(frozen=True)
class History:
    customers: list[str]
    stopped: set[str]
    """Customers whose activity ended 90 days or more before the last day."""
    last_day: datetime


def write_history(store: Store, *, customers: int = 300, days: int = 450, seed: int = 3) -> History:
    """Each customer starts in the first 120 days; 55 % stay active to the end, the rest stop on a random
    day. Active days are Bernoulli per day; each holds 1-3 'Product Viewed' events and, one day in four,
    an 'Order Completed' with revenue."""
    rng = np.random.default_rng(seed)
    ids, begin = [f"cust-{i:04d}" for i in range(customers)], rng.integers(0, 120, customers)
    loyal = rng.random(customers) < 0.55
    end = np.where(loyal, days, begin + rng.integers(30, days - 120, customers)).clip(max=days)
    rate = np.where(loyal, rng.uniform(0.08, 0.3, customers), rng.uniform(0.05, 0.2, customers))
    spend = rng.uniform(20, 120, customers)
    cols: dict[str, list] = {k: [] for k in ("event_id", "event", "ts", "identity_value", "revenue")}
    for i, cid in enumerate(ids):
        span = np.arange(begin[i], end[i])
        active = span[rng.random(len(span)) < rate[i]]
        if len(active) == 0:
            active = span[:1]
        for d in active:
            when = START + timedelta(days=int(d), hours=int(rng.integers(8, 20)))
            for k in range(int(rng.integers(1, 4))):
                cols["event_id"].append(f"{cid}-{d}-v{k}")
                cols["event"].append("Product Viewed")
                cols["ts"].append(when + timedelta(minutes=k))
                cols["identity_value"].append(f"u{i}")
                cols["revenue"].append(None)
            if rng.random() < 0.25 or d == active[0]:
                cols["event_id"].append(f"{cid}-{d}-o")
                cols["event"].append("Order Completed")
                cols["ts"].append(when + timedelta(minutes=30))
                cols["identity_value"].append(f"u{i}")
                cols["revenue"].append(float(round(spend[i] * rng.gamma(4, 0.25), 2)))
    write_events(store, cols)
    write_identifiers(store, [("user_id", f"u{i}", cid) for i, cid in enumerate(ids)])
    write_customers(store, ids)
    last_day = START + timedelta(days=days - 1)
    stopped = {cid for i, cid in enumerate(ids) if end[i] <= days - 90}
    return History(ids, stopped, last_day)


def write_events(store: Store, cols: dict[str, list], identity_type: str = "user_id") -> None:
    n = len(cols["event_id"])
    table = pa.table({
        "event_id": pa.array(cols["event_id"], pa.string()),
        "source": pa.array(cols.get("source", ["test"] * n), pa.string()),
        "type": pa.array(cols.get("type", ["track"] * n), pa.string()),
        "event": pa.array(cols["event"], pa.string()),
        "ts": pa.array(cols["ts"], pa.timestamp("us")),
        "received_at": pa.array(cols["ts"], pa.timestamp("us")),
        "identity_type": pa.array(cols.get("identity_type", [identity_type] * n), pa.string()),
        "identity_value": pa.array(cols["identity_value"], pa.string()),
        "anonymous_id": pa.array(cols.get("anonymous_id", [None] * n), pa.string()),
        "revenue": pa.array(cols["revenue"], pa.float64()),
        "run_id": pa.array(["test"] * n, pa.string()),
    })
    with store.transaction():
        store.load_arrow("events", table)


def write_identifiers(store: Store, rows: list[tuple[str, str, str]]) -> None:
    table = pa.table({
        "id_type": pa.array([r[0] for r in rows], pa.string()),
        "value": pa.array([r[1] for r in rows], pa.string()),
        "customer_id": pa.array([r[2] for r in rows], pa.string()),
        "origin": pa.array(["test"] * len(rows), pa.string()),
    })
    with store.transaction():
        store.load_arrow("customer_identifiers", table)


def write_customers(store: Store, ids: list[str]) -> None:
    """Active customer ids, so lookups such as `accord churn show ID` resolve them."""
    n = len(ids)
    table = pa.table({
        "customer_id": pa.array(ids, pa.string()),
        "seq": pa.array(range(1, n + 1), pa.int64()),
        "status": pa.array(["active"] * n, pa.string()),
        "created_at": pa.array([START] * n, pa.timestamp("us")),
        "created_by": pa.array(["test"] * n, pa.string()),
    })
    with store.transaction():
        store.load_arrow("customers", table)
