"""Segments benchmark: 20 segments over N profiles in batch, and event -> webhook latency.

    .venv/bin/python bench/bench_segments.py [--people N] [--events-per-person E] [--only batch|latency]
                                             [--latency-events K] [--dir DIR]

The store (DuckDB) is generated directly in SQL: per customer 4 golden attributes, 5 traits, 2
consent purposes, identifiers (user_id, email, anonymous_id), 2% in accounts, and E events over 30
days (80% by user_id, 10% by upper-cased email, 10% by anonymous id only).

batch: ``evaluate_segments`` for 20 segments mixing attributes, traits, consent, accounts and
event counts in windows: the first run (everyone enters) and a second run (nothing changes).
Baseline in the same run: the same 20 conditions as 20 separate queries (``compile_condition``
each), counting members only, with no membership bookkeeping.
Target (issue #7): 20 segments over 1,000,000 profiles <= 30 s.

latency: ``accord serve`` in a subprocess on that store with a webhook to a receiver in this
process; K track events, one after another, each putting a different customer into a segment.
Latency = when the receiver got the webhook minus when the client had the 200 (and minus when it
sent the request). Target: <= 100 ms. Peer: Segment refreshes windowed audiences at most every 8 hours.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from accord.clock import utcnow
from accord.config import load_config
from accord.segments.batch import evaluate_segments
from accord.segments.catalog import config_segments
from accord.segments.sql import compile_condition
from accord.store import open_store

NOW = utcnow().replace(microsecond=0)
SEGMENTS = {
    "buyers": "orders_90d >= 2",
    "vip": "vip",
    "paris": "city = 'Paris'",
    "eu": "country in ('FR', 'DE', 'IT')",
    "big_spenders": "revenue_total > 800",
    "lapsed": "days_since_last_order between 180 and 365",
    "browsers_24h": "count(event = 'Product Viewed', within = '24h') >= 1",
    "engaged_7d": "count(within = '7d') >= 3",
    "cart_abandoners": "count(event = 'Cart Abandoned', within = '7d') >= 1 and "
                       "count(event = 'Order Completed', within = '7d') = 0",
    "sms_buyers": "consent.sms and orders_90d >= 1",
    "no_email": "email is null",
    "champions": "rfm_segment = 'champions'",
    "at_risk_mailable": "rfm_segment in ('at_risk', 'cant_lose_them') and consent.email_marketing",
    "b2b": "in_account('acct_7') or in_account('Account 8')",
    "not_buyers": "not orders_90d >= 1",
    "rome_spenders": "(city = 'Rome' or city = 'Milan') and revenue_total >= 100",
    "hot_vips": "count(event = 'Product Viewed', within = '1h') >= 1 and vip",
    "page_readers": "count(type = 'page', within = '30d') >= 2",
    "mailable_buyers": "orders_90d >= 1",  # with requires_consent below
    "bench_ping": "count(event = 'Bench Ping', within = '1h') >= 1",
}
CONSENT = {"mailable_buyers": ["email_marketing"]}


def build_store(directory: Path, people: int, events_per_person: int) -> str:
    url = f"duckdb:///{directory / 'bench.duckdb'}"
    store = open_store(url)
    c = store.conn
    t0 = time.perf_counter()
    c.execute(f"CREATE TEMP TABLE p AS SELECT i, printf('cus_%08d', i) AS cid FROM range({people}) t(i)")
    c.execute("INSERT INTO customers (customer_id, seq, status, created_at, created_by) "
              "SELECT cid, i, 'active', TIMESTAMP '2026-01-01', 'bench' FROM p")
    c.execute("INSERT INTO customer_identifiers (id_type, value, customer_id, origin) "
              "SELECT 'user_id', 'u' || i, cid, 'bench' FROM p UNION ALL "
              "SELECT 'email', 'p' || i || '@example.com', cid, 'bench' FROM p UNION ALL "
              "SELECT 'anonymous_id', 'a' || i, cid, 'bench' FROM p")
    # In customer order, as the profiles stage writes them.
    c.execute("INSERT INTO golden_values (customer_id, attribute, value, source, record_key, observed_at, rule) "
              "SELECT * FROM (SELECT cid, 'city', (['Paris', 'Rome', 'Milan', 'Lyon', 'Berlin', 'Madrid', 'Leeds', 'Porto'])[1 + i % 8], "
              "'crm', cid, TIMESTAMP '2026-01-01', 'only_value' FROM p UNION ALL "
              "SELECT cid, 'country', (['FR', 'IT', 'DE', 'ES', 'GB', 'PT'])[1 + (i // 3) % 6], 'crm', cid, "
              "TIMESTAMP '2026-01-01', 'only_value' FROM p UNION ALL "
              "SELECT cid, 'given_name', (['Ann', 'Bob', 'Cara', 'Dan'])[1 + i % 4], 'crm', cid, TIMESTAMP '2026-01-01', "
              "'only_value' FROM p UNION ALL "
              "SELECT cid, 'email', 'p' || i || '@example.com', 'crm', cid, TIMESTAMP '2026-01-01', 'only_value' "
              "FROM p WHERE i % 5 <> 0) t ORDER BY 1, 2")
    # In customer order, as the traits stage writes them (so one customer's traits share a row group).
    c.execute("INSERT INTO customer_traits (customer_id, name, value_num, value_text, computed_at) SELECT * FROM ("
              "SELECT cid, 'orders_90d', i % 7, NULL, TIMESTAMP '2026-01-01' FROM p UNION ALL "
              "SELECT cid, 'revenue_total', (i * 37) % 1000, NULL, TIMESTAMP '2026-01-01' FROM p UNION ALL "
              "SELECT cid, 'days_since_last_order', i % 400, NULL, TIMESTAMP '2026-01-01' FROM p UNION ALL "
              "SELECT cid, 'vip', CASE WHEN i % 10 = 0 THEN 1 ELSE 0 END, NULL, TIMESTAMP '2026-01-01' FROM p UNION ALL "
              "SELECT cid, 'rfm_segment', NULL, (['champions', 'loyal', 'at_risk', 'cant_lose_them', 'lost'])[1 + i % 5], "
              "TIMESTAMP '2026-01-01' FROM p) t ORDER BY 1, 2")
    c.execute("INSERT INTO customer_consent (customer_id, purpose, status, decided_at, source) "
              "SELECT cid, 'email_marketing', CASE WHEN i % 3 = 0 THEN 'denied' ELSE 'granted' END, "
              "TIMESTAMP '2026-01-01', 'bench' FROM p UNION ALL "
              "SELECT cid, 'sms', 'granted', TIMESTAMP '2026-01-01', 'bench' FROM p WHERE i % 4 = 0")
    c.execute("INSERT INTO accounts (account_id, name, origin, first_seen, last_seen) "
              "SELECT 'acct_' || i, 'Account ' || i, 'bench', TIMESTAMP '2026-01-01', TIMESTAMP '2026-01-01' "
              "FROM range(1000) t(i)")
    c.execute("INSERT INTO account_members (account_id, customer_id, origin, first_seen, last_seen) "
              "SELECT 'acct_' || ((i // 50) % 1000), cid, 'bench', TIMESTAMP '2026-01-01', TIMESTAMP '2026-01-01' "
              "FROM p WHERE i % 50 = 0")
    n_events = people * events_per_person
    minutes = 30 * 24 * 60
    c.execute(
        "INSERT INTO events (event_id, source, type, event, ts, received_at, identity_type, identity_value, "
        "anonymous_id, revenue, run_id) "
        "SELECT 'ev' || j, 'bench', CASE WHEN j % 7 = 0 THEN 'page' ELSE 'track' END, "
        "(['Product Viewed', 'Product Viewed', 'Cart Abandoned', 'Order Completed', 'Signed In'])[1 + j % 5], "
        "ts, ts, CASE WHEN j % 10 < 8 THEN 'user_id' WHEN j % 10 = 8 THEN 'email' ELSE 'anonymous_id' END, "
        "CASE WHEN j % 10 < 8 THEN 'u' || k WHEN j % 10 = 8 THEN 'P' || k || '@Example.com' ELSE 'a' || k END, "
        "CASE WHEN j % 10 = 9 THEN 'a' || k END, CASE WHEN j % 5 = 3 THEN 20.0 + k % 100 END, 'bench' "
        f"FROM (SELECT j, hash(j) % {people} AS k, "
        f"CAST(? AS TIMESTAMP) - to_minutes(CAST((j * 7919) % {minutes} AS BIGINT)) AS ts FROM range({n_events}) t(j)) "
        "ORDER BY ts", [NOW])
    store.close()
    print(f"built {people:,} profiles and {n_events:,} events in {time.perf_counter() - t0:.1f} s", flush=True)
    return url


COPIED_TABLES = ("customers", "customer_identifiers", "golden_values", "customer_traits", "customer_consent",
                 "accounts", "account_members", "events")


def copy_to_postgres(duck_url: str, pg_url: str) -> str:
    """The generated store copied into a fresh PostgreSQL schema (for the latency run on PostgreSQL)."""
    import psycopg

    from accord.store.backend import PostgresStore

    t0 = time.perf_counter()
    schema = PostgresStore(pg_url).schema
    base = pg_url.split("?")[0]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    with open_store(duck_url) as duck, open_store(pg_url) as pg:
        for table in COPIED_TABLES:
            data = duck.fetch_arrow(f"SELECT * FROM {table}")
            with pg.transaction():
                pg.load_arrow(table, data)
            pg.execute(f"ANALYZE {table}")
        pg.execute("CREATE INDEX IF NOT EXISTS golden_values_customer ON golden_values (customer_id)")
    print(f"copied to PostgreSQL in {time.perf_counter() - t0:.1f} s", flush=True)
    return pg_url


TRAIT_REFRESH = True
"""Whether the server's trait refresher runs (``--trait-refresh``)."""


def write_project(directory: Path, store_url: str, webhook_url: str | None) -> Path:
    lines = [f"store: {store_url!r}", "traits:", f"  realtime: {{enabled: {str(TRAIT_REFRESH).lower()}}}",
             "segments:", "  definitions:"]
    for name, text in SEGMENTS.items():
        lines += [f"    - name: {name}", f"      condition: {json.dumps(text)}"]
        if name in CONSENT:
            lines.append(f"      requires_consent: {json.dumps(CONSENT[name])}")
    if webhook_url:
        lines += ["  webhooks:", "    - name: bench", f"      url: {webhook_url}", "      secret: bench-secret",
                  "      segments: [bench_ping]", "      events: [enter]"]
    (directory / "accord.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_batch(directory: Path, store_url: str) -> dict[str, Any]:
    cfg = load_config(write_project(directory, store_url, None))
    out: dict[str, Any] = {}
    with open_store(store_url) as store:
        for label in ("first_run", "second_run"):
            t0 = time.perf_counter()
            report = evaluate_segments(store, cfg, f"bench_{label}", now=NOW)
            out[label] = {"seconds": round(time.perf_counter() - t0, 2), "timings": report.timings,
                          "memberships": sum(s["members"] for s in report.segments.values()),
                          "entered": sum(s["entered"] for s in report.segments.values())}
            print(f"{label}: {out[label]}", flush=True)
        t0 = time.perf_counter()
        counts = {}
        for segment in config_segments(cfg):
            sql, params = compile_condition(segment.effective, store.dialect, NOW)
            counts[segment.name] = store.scalar(f"SELECT COUNT(*) FROM ({sql}) q", params)
        out["baseline_separate_queries"] = {"seconds": round(time.perf_counter() - t0, 2),
                                            "memberships": sum(counts.values())}
        print(f"baseline: {out['baseline_separate_queries']}", flush=True)
        assert out["baseline_separate_queries"]["memberships"] == out["first_run"]["memberships"]
    out["ratio_first_run_to_baseline"] = round(out["first_run"]["seconds"] / out["baseline_separate_queries"]["seconds"], 2)
    out["peak_mb"] = round(peak_mb())
    return out


class _Receiver:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                at = time.perf_counter()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver.cond:
                    receiver.arrivals[body["customer_id"]] = at
                    receiver.cond.notify_all()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(self, customer_id: str, timeout: float) -> float | None:
        deadline = time.perf_counter() + timeout
        with self.cond:
            while customer_id not in self.arrivals:
                left = deadline - time.perf_counter()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.arrivals[customer_id]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_latency(directory: Path, store_url: str, n: int, people: int) -> dict[str, Any]:
    receiver = _Receiver()
    project = write_project(directory, store_url, receiver.url)
    port = _free_port()
    env = {**os.environ, "ACCORD_WRITE_KEY": "bench-write-key"}
    log = (directory / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "accord.cli", "-c", str(project), "serve", "--port", str(port)],
                            env=env, stdout=log, stderr=log, start_new_session=True)
    after_accept, after_send, missing = [], [], 0
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": "Bearer bench-write-key"})
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        step = max(1, people // (n + 1))
        for i in range(n):
            k = 1 + i * step
            t_send = time.perf_counter()
            response = client.post("/v1/track", json={"userId": f"u{k}", "event": "Bench Ping"})
            t_accept = time.perf_counter()
            assert response.status_code == 200, response.text
            arrived = receiver.wait_for(f"cus_{k:08d}", 10)
            if arrived is None:
                missing += 1
                continue
            after_accept.append((arrived - t_accept) * 1000)
            after_send.append((arrived - t_send) * 1000)
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else float("nan")

    return {"events": n, "missing_webhooks": missing,
            "ms_after_accepted": {"p50": pct(after_accept, 0.5), "p99": pct(after_accept, 0.99),
                                  "max": round(max(after_accept, default=float("nan")), 1)},
            "ms_after_sent": {"p50": pct(after_send, 0.5), "p99": pct(after_send, 0.99)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--events-per-person", type=int, default=3)
    parser.add_argument("--latency-events", type=int, default=200)
    parser.add_argument("--only", choices=["batch", "latency"])
    parser.add_argument("--dir", type=Path, help="Work folder (default: a temporary one).")
    parser.add_argument("--reuse", action="store_true", help="Reuse the store an earlier run built in --dir.")
    parser.add_argument("--trait-refresh", choices=["on", "off"], default="on",
                        help="The server's trait refresher (traits.realtime.enabled; default on, as accord.yaml).")
    parser.add_argument("--postgresql", metavar="URL", help="Also run on PostgreSQL: the store is copied into "
                        "this URL's schema (e.g. postgresql://postgres@127.0.0.1:5432/test?schema=bench_segments), "
                        "which is dropped first and at the end.")
    args = parser.parse_args()
    global TRAIT_REFRESH
    TRAIT_REFRESH = args.trait_refresh == "on"
    directory = args.dir or Path(tempfile.mkdtemp(prefix="accord-bench-segments-"))
    directory.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"people": args.people, "events": args.people * args.events_per_person,
                              "machine": f"{os.cpu_count()} cores {platform.machine()}, Python {platform.python_version()}",
                              "load_before": os.getloadavg(), "trait_refresh": args.trait_refresh}
    if args.reuse and (directory / "bench.duckdb").exists():
        store_url = f"duckdb:///{directory / 'bench.duckdb'}"
        with open_store(store_url) as store:  # a fresh start for the segments, on the same profiles and events
            for table in ("segment_membership", "segments", "webhook_deliveries"):
                store.execute(f"DELETE FROM {table}")
            # An earlier latency run's pings (within the hour bench_ping counts) would keep their customers
            # in the segment, so a new ping would change nothing and send no webhook.
            store.execute("DELETE FROM events WHERE event = 'Bench Ping'")
        print(f"reusing {store_url}", flush=True)
    else:
        store_url = build_store(directory, args.people, args.events_per_person)
    if args.only in (None, "batch"):
        result["batch"] = bench_batch(directory, store_url)
    if args.only in (None, "latency"):
        result["latency"] = bench_latency(directory, store_url, args.latency_events, args.people)
    if args.postgresql:
        pg_url = copy_to_postgres(store_url, args.postgresql)
        pg_dir = directory / "postgresql"
        pg_dir.mkdir(exist_ok=True)
        try:
            if args.only in (None, "batch"):
                result["postgresql_batch"] = bench_batch(pg_dir, pg_url)
            if args.only in (None, "latency"):
                result["postgresql_latency"] = bench_latency(pg_dir, pg_url, args.latency_events, args.people)
        finally:
            import psycopg

            from accord.store.backend import PostgresStore

            with psycopg.connect(pg_url.split("?")[0], autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{PostgresStore(pg_url).schema}" CASCADE')
    result["load_after"] = os.getloadavg()
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
