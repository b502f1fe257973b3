"""Traits benchmark: every trait for N profiles (default 1,000,000) on DuckDB.

    .venv/bin/python bench/bench_traits.py [--customers N] [--events-per-customer K] [--out DIR] [--keep]
                                           [--reuse] [--serve-events K]

``--serve-events K`` (default 100) then serves the store with `accord serve` and times K events one after
another from the 200 to the customer's traits counting the event (the trait refresher, `docs/traits.md`).

``--reuse`` runs on the store an earlier ``--keep`` run left in ``--out`` (the build takes minutes at
1,000,000 customers): what the traits stage wrote there is deleted first (every trait but churn_risk,
trait definitions and boundaries, accounts), so each run starts from the same inputs.

The store is synthesized directly (no ingest, no identity resolution), shaped like `accord synth`
output after `accord run`: active customers with user ids, emails and anonymous ids in
customer_identifiers; web, email and order events (about K per customer, Poisson) over two years,
orders and store purchases carrying revenue and a product category; support tickets (source records
with sentiment and satisfaction) for a quarter of the customers; a company for 8 % of them; a
churn_risk trait for everyone (as the model stage leaves it).

Then, in a child process (so its peak memory is its own): `compute_traits` with the default traits
plus one declared trait of every kind, and, side by side, the peer: one bare DuckDB GROUP BY over
the same attributed events computing the default counters (events_total, events_30d, orders_total,
orders_90d, revenue_total, revenue_365d, last_seen) into a table. Last, 50 single-customer updates
(`update_customer_traits`), as a caller would after an event, once the lookup indexes that `accord serve`
creates at start on DuckDB exist (`accord.traits.lookups.ensure_lookup_indexes`, timed on its own).

Target (issue #7): all traits for 1,000,000 profiles in <= 2 minutes.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

AS_OF = datetime(2025, 1, 1)
EVENT_NAMES = np.array(["Page", "Product Viewed", "sent", "open", "click", "Order Completed", "Store Purchase"])
EVENT_SHARE = np.array([0.30, 0.25, 0.17, 0.10, 0.03, 0.10, 0.05])
CATEGORIES = np.array(["Apparel", "Footwear", "Electronics", "Home", "Beauty", "Sports", "Books", "Toys", "Grocery",
                       "Office"])
DECLARED = {
    "favourite_category": {"most_frequent": "category", "event": "Product Viewed"},
    "categories_bought": {"unique": "category", "purchase": True, "limit": 10},
    "last_category": {"last": "category"},
    "store_visits_365d": {"count": {"event": "Store Purchase"}, "within": "365d"},
    "largest_order": {"max": "revenue", "purchase": True},
    "mail_opens_90d": {"count": {"event": "open"}, "within": "90d"},
}


REFRESH_BATCH = 200


def _ids(prefix: str, n: int) -> pa.Array:
    return pc.binary_join_element_wise(pa.array(np.full(n, prefix)), pc.cast(pa.array(np.arange(n)), pa.string()), "")


def build_store(path: Path, customers: int, per_customer: float, seed: int = 7) -> dict[str, int]:
    from accord.store import open_store

    rng = np.random.default_rng(seed)
    if path.exists():
        path.unlink()
    store = open_store(f"duckdb:///{path}")
    n = customers
    cid = _ids("C", n)
    store.load_arrow("customers", pa.table({
        "customer_id": cid, "seq": pa.array(np.arange(1, n + 1)), "status": pa.array(np.full(n, "active")),
        "created_at": pa.array(np.full(n, np.datetime64("2023-01-01T00:00:00", "us"))),
        "created_by": pa.array(np.full(n, "bench"))}))
    email = pc.binary_join_element_wise(cid, pa.array(np.full(n, "@example.com")), "")
    has_anon = rng.random(n) < 0.6
    anon = _ids("A", n)
    ident = pa.concat_tables([
        pa.table({"id_type": pa.array(np.full(n, "user_id")), "value": cid, "customer_id": cid}),
        pa.table({"id_type": pa.array(np.full(n, "email")), "value": pc.utf8_lower(email), "customer_id": cid}),
        pa.table({"id_type": pa.array(np.full(int(has_anon.sum()), "anonymous_id")),
                  "value": anon.filter(pa.array(has_anon)), "customer_id": cid.filter(pa.array(has_anon))}),
    ])
    ident = ident.append_column("origin", pa.array(np.full(ident.num_rows, "record")))
    store.load_arrow("customer_identifiers", ident)

    counts = rng.poisson(per_customer, n)
    who = np.repeat(np.arange(n), counts)
    m = len(who)
    kind = rng.choice(len(EVENT_NAMES), m, p=EVENT_SHARE)
    ts = np.datetime64(AS_OF, "s") - rng.integers(0, 730 * 86400, m).astype("timedelta64[s]")
    names = EVENT_NAMES[kind]
    is_mail = np.isin(names, ["sent", "open", "click"])
    anonymous = ~is_mail & has_anon[who] & (rng.random(m) < 0.3)
    id_type = np.where(is_mail, "email", np.where(anonymous, None, "user_id"))
    who_ids = cid.take(pa.array(who))
    id_value = pc.if_else(pa.array(is_mail), pc.take(email, pa.array(who)),
                          pc.if_else(pa.array(anonymous), pa.nulls(m, pa.string()), who_ids))
    revenue = np.where(np.isin(names, ["Order Completed", "Store Purchase"]), np.round(rng.gamma(2.0, 30.0, m), 2),
                       np.nan)
    category = CATEGORIES[rng.integers(0, len(CATEGORIES), m)]
    props = pc.binary_join_element_wise(pa.array(np.full(m, '{"category":"')), pa.array(category),
                                        pa.array(np.full(m, '"}')), "")
    events = pa.table({
        "event_id": _ids("E", m), "source": pa.array(np.where(is_mail, "email", "web")),
        "type": pa.array(np.where(names == "Page", "page", "track")),
        "event": pa.array(np.where(names == "Page", None, names)),
        "ts": pa.array(ts.astype("datetime64[us]")), "received_at": pa.array(ts.astype("datetime64[us]")),
        "identity_type": pa.array(id_type), "identity_value": id_value,
        "anonymous_id": pc.if_else(pa.array(anonymous), anon.take(pa.array(who)), pa.nulls(m, pa.string())),
        "revenue": pa.array(revenue, from_pandas=True), "properties": props,
        "run_id": pa.array(np.full(m, "bench"))})
    for lo in range(0, m, 2_000_000):
        store.load_arrow("events", events.slice(lo, 2_000_000))
    del events

    with_tickets = np.flatnonzero(rng.random(n) < 0.25)
    t_who = np.repeat(with_tickets, 1 + rng.poisson(0.6, len(with_tickets)))
    t = len(t_who)
    sentiment = np.round(rng.uniform(-1, 1, t), 2).astype(str)
    satisfaction = np.where(rng.random(t) < 0.4, "", rng.integers(1, 6, t).astype(str))
    raw = pc.binary_join_element_wise(pa.array(np.full(t, '{"sentiment":"')), pa.array(sentiment),
                                      pa.array(np.full(t, '","satisfaction":"')), pa.array(satisfaction),
                                      pa.array(np.full(t, '"}')), "")
    t_ts = np.datetime64(AS_OF, "s") - rng.integers(0, 500 * 86400, t).astype("timedelta64[s]")
    keys = _ids("T", t)
    store.load_arrow("source_records", pa.table({
        "source": pa.array(np.full(t, "support")), "record_key": keys, "row_hash": keys, "raw": raw,
        "source_created_at": pa.array(t_ts.astype("datetime64[us]")),
        "first_seen_at": pa.array(t_ts.astype("datetime64[us]")), "valid_from": pa.array(t_ts.astype("datetime64[us]")),
        "run_id": pa.array(np.full(t, "bench"))}))
    store.load_arrow("record_customer", pa.table({
        "source": pa.array(np.full(t, "support")), "record_key": keys, "customer_id": cid.take(pa.array(t_who)),
        "assigned_at": pa.array(np.full(t, np.datetime64("2024-01-01T00:00:00", "us"))),
        "actor": pa.array(np.full(t, "bench"))}))

    b2b = np.flatnonzero(rng.random(n) < 0.08)
    company = (np.arange(len(b2b)) // 3.5).astype(np.int64)
    suffix = np.array(["Ltd", "GmbH", "Inc.", "LLC"])[company % 4]
    company_name = pc.binary_join_element_wise(pa.array(np.full(len(b2b), "Company ")),
                                               pc.cast(pa.array(company), pa.string()), pa.array(suffix), " ")
    store.load_arrow("golden_values", pa.table({
        "customer_id": cid.take(pa.array(b2b)), "attribute": pa.array(np.full(len(b2b), "company")),
        "value": company_name, "source": pa.array(np.full(len(b2b), "crm")), "record_key": cid.take(pa.array(b2b)),
        "rule": pa.array(np.full(len(b2b), "most_recent"))}))
    store.load_arrow("customer_traits", pa.table({
        "customer_id": cid, "name": pa.array(np.full(n, "churn_risk")), "value_num": pa.array(rng.random(n)),
        "computed_at": pa.array(np.full(n, np.datetime64("2024-12-31T00:00:00", "us")))}))
    store.execute("CHECKPOINT")
    store.close()
    return {"customers": n, "events": m, "tickets": t, "company_members": len(b2b)}


def reset_store(path: Path) -> None:
    """Delete what an earlier run of the traits stage wrote, keeping the generated inputs."""
    from accord.store import open_store

    store = open_store(f"duckdb:///{path}")
    for sql in ("DROP INDEX IF EXISTS events_identity_lower", "DROP INDEX IF EXISTS events_anonymous_id",
                "DELETE FROM customer_traits WHERE name <> 'churn_risk'", "DELETE FROM trait_definitions",
                "DELETE FROM trait_thresholds", "DELETE FROM account_members", "DELETE FROM accounts", "CHECKPOINT"):
        store.execute(sql)
    store.close()


def _peer_sql(as_of: str) -> str:
    """The default counters in one bare DuckDB GROUP BY over the attributed events."""
    age = f"epoch(TIMESTAMP '{as_of}') - epoch(e.ts)"
    return (
        "CREATE OR REPLACE TABLE peer_traits AS SELECT x.customer_id, count(*) AS events_total, "
        f"count(*) FILTER (WHERE {age} < 30 * 86400) AS events_30d, "
        "count(*) FILTER (WHERE e.revenue IS NOT NULL) AS orders_total, "
        f"count(*) FILTER (WHERE e.revenue IS NOT NULL AND {age} < 90 * 86400) AS orders_90d, "
        "sum(e.revenue) AS revenue_total, "
        f"sum(e.revenue) FILTER (WHERE {age} < 365 * 86400) AS revenue_365d, max(e.ts) AS last_seen "
        "FROM (SELECT e.event_id, ci.customer_id FROM events e JOIN customer_identifiers ci ON ci.id_type = "
        "e.identity_type AND ci.value = CASE WHEN e.identity_type = 'email' THEN lower(e.identity_value) ELSE "
        "e.identity_value END UNION SELECT e.event_id, ci.customer_id FROM events e JOIN customer_identifiers ci "
        "ON ci.id_type = 'anonymous_id' AND ci.value = e.anonymous_id) x JOIN events e ON e.event_id = x.event_id "
        f"WHERE e.ts <= TIMESTAMP '{as_of}' GROUP BY x.customer_id")


def child(path: str, customers: int) -> None:
    """Runs in its own process: the peer, then compute_traits, then single-customer updates."""
    from accord.store import open_store
    from accord.traits import compute_traits, update_customer_traits
    from accord.traits.settings import TraitsSettings

    settings = TraitsSettings.model_validate({"as_of": AS_OF, "computed": DECLARED})
    store = open_store(f"duckdb:///{path}")
    started = time.perf_counter()
    store.execute(_peer_sql(AS_OF.isoformat(sep=" ")))
    peer = time.perf_counter() - started
    store.execute("DROP TABLE peer_traits")
    report = compute_traits(store, settings, "bench", progress=lambda step: print(f"  {step}", file=sys.stderr))
    from accord.traits.lookups import ensure_lookup_indexes

    started = time.perf_counter()
    ensure_lookup_indexes(store)
    indexes = time.perf_counter() - started
    rng = np.random.default_rng(3)
    picks = [f"C{i}" for i in rng.integers(0, customers, 50)]
    started = time.perf_counter()
    for customer_id in picks:
        update_customer_traits(store, settings, customer_id)
    single = (time.perf_counter() - started) / len(picks)
    # The refresher's unit of work: many customers recomputed in one transaction (update_traits).
    from accord.traits import update_traits

    batches = [[f"C{i}" for i in rng.integers(0, customers, REFRESH_BATCH)] for _ in range(3)]
    started = time.perf_counter()
    for batch in batches:
        update_traits(store, settings, batch)
    batched = (time.perf_counter() - started) / len(batches)
    store.close()
    print(json.dumps({"seconds": report.seconds, "timings": report.timings, "customers": report.customers,
                      "events_attributed": report.events_attributed, "rows_written": report.rows_written,
                      "accounts": report.accounts.accounts if report.accounts else 0, "peer_seconds": round(peer, 3),
                      "single_customer_ms": round(single * 1000, 1), "lookup_indexes_seconds": round(indexes, 1),
                      f"batch_of_{REFRESH_BATCH}_ms": round(batched * 1000, 1),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


def refresh_latency(path: Path, customers: int, events: int) -> dict[str, Any]:
    """``accord serve`` on the store (its trait refresher on, the default); ``events`` track events one after
    another, each for another customer. Latency: from the client having the 200 to the customer's
    ``events_total`` (GET /v1/profiles/customer_id:ID/traits, polled every 2 ms) counting the event."""
    sys.path.insert(0, str(Path(__file__).parent))
    from serving import LOOPBACK, accord_serve, free_port, start, stop

    project = path.parent / "serve"
    project.mkdir(exist_ok=True)
    (project / "accord.yaml").write_text(f"store: 'duckdb:///{path.resolve()}'\ntraits:\n"
                                         f"  computed: {json.dumps(DECLARED)}\n", encoding="utf-8")
    port = free_port()
    env = {**os.environ, "ACCORD_WRITE_KEY": "bench-write", "ACCORD_READ_KEY": "bench-read"}
    proc = start(accord_serve(project, port), port, env, timeout=600)
    write = {"Authorization": "Bearer bench-write", "Content-Type": "application/json"}
    read = {"Authorization": "Bearer bench-read"}
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)

    def get(path_: str) -> Any:
        conn.request("GET", path_, headers=read)
        response = conn.getresponse()
        return json.loads(response.read())

    def events_total(customer_id: str) -> float:
        found = get(f"/v1/profiles/customer_id:{customer_id}/traits")["traits"].get("events_total")
        return found["value"] if found else 0

    latencies, missing = [], 0
    try:
        rng = np.random.default_rng(11)
        for i in rng.choice(customers, events, replace=False):
            customer_id = f"C{i}"
            before = events_total(customer_id)
            conn.request("POST", "/v1/track", headers=write, body=json.dumps(
                {"userId": customer_id, "event": "Bench Ping", "messageId": uuid.uuid4().hex}))
            response = conn.getresponse()
            response.read()
            accepted = time.perf_counter()
            assert response.status == 200
            while events_total(customer_id) != before + 1:
                if time.perf_counter() - accepted > 10:
                    missing += 1
                    break
                time.sleep(0.002)
            else:
                latencies.append((time.perf_counter() - accepted) * 1000)
        refresher = get("/health")["trait_refresher"]
    finally:
        conn.close()
        stop(proc)
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else float("nan")

    return {"events": events, "missing": missing, "ms_after_accepted": {
        "p50": pct(0.5), "p99": pct(0.99), "max": round(max(ordered, default=float("nan")), 1)},
        "refresher": refresher}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events-per-customer", type=float, default=12.0)
    parser.add_argument("--out", type=Path, default=Path("bench/out/traits"))
    parser.add_argument("--keep", action="store_true", help="Keep the generated store.")
    parser.add_argument("--reuse", action="store_true", help="Reuse the store a --keep run left in --out.")
    parser.add_argument("--serve-events", type=int, default=100,
                        help="Then serve the store and time event accepted -> traits updated for this many "
                             "events (0: skip).")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.customers)
        return
    os.environ.setdefault("ACCORD_DUCKDB_MEMORY", "4GB")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "traits.duckdb"
    shape_file = args.out / "shape.json"
    if args.reuse and path.exists() and shape_file.exists():
        shape = json.loads(shape_file.read_text())
        reset_store(path)
        print(f"reusing {path}: {shape}", file=sys.stderr)
    else:
        print(f"building a store with {args.customers:,} customers ...", file=sys.stderr)
        started = time.perf_counter()
        shape = build_store(path, args.customers, args.events_per_customer)
        shape_file.write_text(json.dumps(shape))
        print(f"built in {time.perf_counter() - started:.1f} s: {shape}", file=sys.stderr)
    args.customers = shape["customers"]
    result = subprocess.run([sys.executable, __file__, "--child", str(path), "--customers", str(args.customers)],
                            check=True, capture_output=True, text=True, env=os.environ.copy())
    sys.stderr.write(result.stderr)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    load = os.getloadavg()
    summary = {**shape, **figures, "ratio_to_peer": round(figures["seconds"] / figures["peer_seconds"], 2),
               "target_seconds": 120, "met": figures["seconds"] <= 120,
               "duckdb_memory": os.environ["ACCORD_DUCKDB_MEMORY"], "load_average": [round(x, 2) for x in load],
               "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"}
    if args.serve_events:
        summary["event_to_traits"] = refresh_latency(path, args.customers, args.serve_events)
        summary["load_average_after_serve"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(summary, indent=2))
    if not args.keep and not args.reuse:
        shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()
