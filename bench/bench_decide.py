"""POST /v1/decide latency at a fixed request rate: 50 eligible offers, model scoring, every guardrail.

Builds a store with --customers customers (traits, consent, identifiers, purchases), 50 offers that
all pass the guardrails (eligibility conditions, stock, purchase and frequency checks all run), and a
LightGBM propensity model trained on a synthetic decision log, so the hybrid policy scores all 50
offers and explains the top ones with pred_contrib. Then ``accord serve`` runs on loopback and a
load generator in a separate process sends an open-loop --rate requests/s for --duration seconds.
Latency is measured from each request's scheduled time (queueing included) to its response.

The peer, in the same run and under the same load generator: a bare FastAPI app on uvicorn that
answers the same JSON shape from a cache (the floor this stack can reach; the issue cites a Go
recommender serving cached results in about 0.35 ms).

    .venv/bin/python bench/bench_decide.py                    # DuckDB, 200 req/s, 30 s
    .venv/bin/python bench/bench_decide.py --reuse /work/benchdata/h1/decide-10k   # build once, then reuse
    .venv/bin/python bench/bench_decide.py --store postgresql://postgres@127.0.0.1:5432/test?schema=bench_decide
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from fastapi import FastAPI, Request
from fastapi.responses import Response
from serving import LOOPBACK, accord_serve, free_port, start, stop

READ_KEY = "bench-read-key"
N_OFFERS = 50
TRAITS = ["orders_90d", "revenue_365d", "days_since_last_event", "events_30d", "rfm_recency", "rfm_frequency",
          "rfm_monetary", "engagement_trend", "sessions_7d", "avg_order_value"]


def offers() -> list[dict[str, Any]]:
    out = []
    for i in range(N_OFFERS):
        o: dict[str, Any] = {"id": f"offer_{i:02d}", "priority": i % 7, "margin": round(1 + (i % 5) * 0.5, 2),
                             "content": {"title": f"Offer {i}", "url": f"https://shop.example/o/{i}"},
                             "channels": ["web", "app"]}
        if i % 5 == 0:
            o["eligibility"] = "orders_90d >= 0 and consent.personalization"
        if i % 5 == 1:
            o["inventory"] = f"sku_{i}"
        if i % 5 == 2:
            o["product_id"] = f"prod_{i}"
        out.append(o)
    return out


def decisions_section() -> dict[str, Any]:
    return {"policy": "hybrid", "max_offers": 3, "offers": offers(),
            "guardrails": {"frequency_cap": {"max": 1000, "days": 7}},
            "model": {"min_training_rows": 1000, "min_offer_examples": 20, "num_boost_round": 100}}


def build_store(url: str, customers: int, log_rounds: int, seed: int = 11) -> dict[str, Any]:
    """Customers, their traits/consent/identifiers/purchases, stock, a synthetic log, a trained model."""
    from accord.clock import utcnow
    from accord.decisions.settings import DecisionsSettings
    from accord.decisions.training import train_model
    from accord.store import open_store
    from accord.traits.stage import ensure_trait_index

    rng = np.random.default_rng(seed)
    now = utcnow()
    settings = DecisionsSettings.model_validate(decisions_section())
    ids = [f"cus_{i:08d}" for i in range(customers)]
    started = time.perf_counter()
    with open_store(url) as store, store.transaction():
        store.load_arrow("customers", pa.table({
            "customer_id": ids, "seq": list(range(customers)), "status": ["active"] * customers,
            "created_at": pa.array([now] * customers, pa.timestamp("us")), "created_by": ["bench"] * customers}))
        values = rng.gamma(2.0, 3.0, size=(customers, len(TRAITS)))
        store.load_arrow("customer_traits", pa.table({
            "customer_id": [c for c in ids for _ in TRAITS], "name": TRAITS * customers,
            "value_num": values.reshape(-1).tolist(), "value_text": pa.nulls(customers * len(TRAITS), pa.string()),
            "computed_at": pa.array([now] * (customers * len(TRAITS)), pa.timestamp("us"))}))
        store.load_arrow("customer_consent", pa.table({
            "customer_id": ids, "purpose": ["personalization"] * customers, "status": ["granted"] * customers,
            "decided_at": pa.array([now] * customers, pa.timestamp("us")), "source": ["bench"] * customers,
            "lawful_basis": ["consent"] * customers}))
        store.load_arrow("customer_identifiers", pa.table({
            "id_type": ["user_id"] * customers, "value": [f"u{i}" for i in range(customers)], "customer_id": ids,
            "origin": ["bench"] * customers, "first_seen": pa.array([now] * customers, pa.timestamp("us")),
            "last_seen": pa.array([now] * customers, pa.timestamp("us"))}))
        n_events = customers  # one purchase of an unrelated product each: the check runs, nothing is excluded
        store.load_arrow("events", pa.table({
            "event_id": [uuid.uuid4().hex for _ in range(n_events)], "source": ["shop"] * n_events,
            "type": ["track"] * n_events, "event": ["Order Completed"] * n_events,
            "ts": pa.array([now - timedelta(days=2)] * n_events, pa.timestamp("us")),
            "received_at": pa.array([now] * n_events, pa.timestamp("us")),
            "identity_type": ["user_id"] * n_events, "identity_value": [f"u{i}" for i in range(n_events)],
            "properties": [json.dumps({"product_id": "prod_other"})] * n_events, "run_id": ["bench"] * n_events}))
        for i in range(1, N_OFFERS, 5):
            store.execute("INSERT INTO offer_inventory (item, stock, updated_at) VALUES (?, ?, ?)",
                          (f"sku_{i}", 1_000_000, now))
        _synthetic_log(store, rng, ids, values, log_rounds, now - timedelta(days=1))
        ensure_trait_index(store)  # as the traits stage leaves a PostgreSQL store (a no-op on DuckDB)
    with open_store(url) as store:
        report = train_model(store, settings, now)
    return {"customers": customers, "log_rounds": log_rounds, "model": report.as_dict(),
            "setup_seconds": round(time.perf_counter() - started, 1)}


def _synthetic_log(store: Any, rng: np.random.Generator, ids: list[str], values: np.ndarray, rounds: int,
                   when: Any) -> None:
    """Uniform-random logged decisions of 3 offers each, all shown; clicks depend on two traits and the offer."""
    offer_ids = [f"offer_{i:02d}" for i in range(N_OFFERS)]
    affinity = rng.normal(0, 1, size=(N_OFFERS, 2))
    heads: dict[str, list[Any]] = {k: [] for k in ("decision_id", "unit", "customer_id", "channel", "policy",
                                                    "personalized", "features", "candidates", "offered", "decided_at")}
    rows: dict[str, list[Any]] = {k: [] for k in ("decision_id", "position", "offer_id", "score", "propensity",
                                                   "explored")}
    outs: dict[str, list[Any]] = {k: [] for k in ("outcome_id", "decision_id", "offer_id", "shown", "clicked",
                                                   "converted", "occurred_at", "received_at")}
    for r in range(rounds):
        c = int(rng.integers(len(ids)))
        d = f"dec_bench_{r}"
        heads["decision_id"].append(d)
        heads["unit"].append(ids[c])
        heads["customer_id"].append(ids[c])
        heads["channel"].append("web" if r % 2 else "app")
        heads["policy"].append("epsilon_greedy")
        heads["personalized"].append(True)
        heads["features"].append(json.dumps({"traits": dict(zip(TRAITS, values[c].round(3).tolist()))}))
        heads["candidates"].append("[]")
        heads["decided_at"].append(when)
        chosen = rng.choice(N_OFFERS, 3, replace=False)
        heads["offered"].append(json.dumps([offer_ids[o] for o in chosen]))
        for pos, o in enumerate(chosen):
            z = affinity[o, 0] * (values[c, 0] - 6) / 4 + affinity[o, 1] * (values[c, 1] - 6) / 4 - 2
            rows["decision_id"].append(d)
            rows["position"].append(pos)
            rows["offer_id"].append(offer_ids[o])
            rows["score"].append(None)
            rows["propensity"].append(1 / N_OFFERS)
            rows["explored"].append(True)
            outs["outcome_id"].append(f"out_{r}_{pos}")
            outs["decision_id"].append(d)
            outs["offer_id"].append(offer_ids[o])
            outs["shown"].append(True)
            outs["clicked"].append(bool(rng.random() < 1 / (1 + np.exp(-z))))
            outs["converted"].append(False)
            outs["occurred_at"].append(when)
            outs["received_at"].append(when)
    ts = pa.timestamp("us")
    store.load_arrow("decisions", pa.table({**heads, "decided_at": pa.array(heads["decided_at"], ts)}))
    store.load_arrow("decision_offers", pa.table({**rows, "score": pa.array(rows["score"], pa.float64())}))
    store.load_arrow("decision_outcomes", pa.table({**outs, "occurred_at": pa.array(outs["occurred_at"], ts),
                                                    "received_at": pa.array(outs["received_at"], ts)}))


def prepared_store(args: argparse.Namespace, folder: Path, url: str) -> dict[str, Any]:
    """Build the store at ``url`` with accord.yaml in ``folder``, or with ``--reuse DIR`` take the one built
    there before (same --customers and --log-rounds); DuckDB stores are copied so every run starts alike."""
    import shutil

    import yaml

    (folder / "accord.yaml").write_text(yaml.safe_dump({"store": url, "decisions": decisions_section()}),
                                        encoding="utf-8")
    if args.reuse is None:
        print(f"building the store in {folder} ...", flush=True)
        return build_store(url, args.customers, args.log_rounds)
    marker = args.reuse / "setup.json"
    built = args.reuse / "store.duckdb"
    if marker.exists():
        setup = json.loads(marker.read_text(encoding="utf-8"))
        if (setup["customers"], setup["log_rounds"]) != (args.customers, args.log_rounds):
            raise SystemExit(f"{args.reuse} holds a store of {setup['customers']} customers and {setup['log_rounds']} "
                             "log rounds; pass those, or another --reuse folder")
        print(f"reusing the store built in {args.reuse}", flush=True)
    else:
        args.reuse.mkdir(parents=True, exist_ok=True)
        print(f"building the store in {args.reuse} ...", flush=True)
        setup = build_store(args.store or f"duckdb:///{built}", args.customers, args.log_rounds)
        marker.write_text(json.dumps(setup, indent=2), encoding="utf-8")
    if args.store is not None:  # a server store cannot be copied: forget the decisions earlier runs made
        from accord.store import open_store

        with open_store(args.store) as store, store.transaction():
            store.execute("DELETE FROM decision_offers WHERE decision_id NOT LIKE 'dec_bench_%'")
            store.execute("DELETE FROM decisions WHERE decision_id NOT LIKE 'dec_bench_%'")
    else:
        shutil.copyfile(built, folder / "store.duckdb")
        if built.with_suffix(".duckdb.wal").exists():
            shutil.copyfile(built.with_suffix(".duckdb.wal"), folder / "store.duckdb.wal")
    return {**setup, "reused": str(args.reuse)}


def peer_app() -> Any:
    """The peer: the same request and answer shape, served from a cache with no store and no model."""
    app = FastAPI()
    cached = orjson.dumps({"decision_id": "dec_cached", "customer_id": "cus_00000001", "policy": "cached",
                           "personalized": True, "offers": [
                               {"offer_id": f"offer_{i:02d}", "score": 0.5, "policy": "cached", "propensity": 1.0,
                                "explanation": {"rules": [], "features": [], "exploration": False},
                                "content": {"title": f"Offer {i}"}} for i in range(3)]})

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/decide")
    async def decide(request: Request) -> Response:
        await request.body()
        return Response(cached, media_type="application/json")

    return app


# --- the load generator (a separate process) ---------------------------------------------------

def _load(port: int, rate: float, duration: float, customers: int, result: Any) -> None:
    """Open loop: request i is due at start + i / rate; latency counts from when it was due."""
    threads = 16
    total = int(rate * duration)
    latencies: list[float] = []
    service: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(total))
    start_at = time.perf_counter() + 0.5
    rng = np.random.default_rng(5)
    who = [f"customer_id:cus_{int(i):08d}" for i in rng.integers(customers, size=total)]

    def worker() -> None:
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            due = start_at + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            body = orjson.dumps({"customer": who[i], "context": {"channel": "web" if i % 2 else "app",
                                                                  "placement": "home", "device": "mobile"}})
            sent = time.perf_counter()
            try:
                conn.request("POST", "/v1/decide", body, {"Authorization": f"Bearer {READ_KEY}",
                                                          "Content-Type": "application/json"})
                resp = conn.getresponse()
                payload = resp.read()
                done = time.perf_counter()
                if resp.status != 200:
                    with lock:
                        errors.append(f"{resp.status} {payload[:200]!r}")
                    continue
                with lock:
                    latencies.append(done - due)
                    service.append(done - sent)
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    errors.append(repr(exc))
                conn = http.client.HTTPConnection(LOOPBACK, port, timeout=10)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start_at
    result.put({"sent": total, "ok": len(latencies), "errors": len(errors), "first_errors": errors[:3],
                "achieved_rate": round(len(latencies) / elapsed, 1), "latency_ms": _percentiles(latencies),
                "service_ms": _percentiles(service)})


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    a = np.array(values) * 1000
    return {"p50": round(float(np.percentile(a, 50)), 3), "p95": round(float(np.percentile(a, 95)), 3),
            "p99": round(float(np.percentile(a, 99)), 3), "max": round(float(a.max()), 3)}


def run_load(port: int, rate: float, duration: float, customers: int, server: int | None = None) -> dict[str, Any]:
    """The load generator in a process of its own; with ``server`` (a pid), also the CPU time the server's
    processes (it and its workers) spent per answered request."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_load, args=(port, rate, duration, customers, q))
    before = _tree_cpu(server) if server else 0.0
    p.start()
    out = q.get()
    if server and out["ok"]:
        out["server_cpu_ms_per_request"] = round((_tree_cpu(server) - before) / out["ok"] * 1000, 3)
    p.join()
    return out


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its live descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        pid = todo.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="store URL (default: a fresh DuckDB file)")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--log-rounds", type=int, default=20_000, help="synthetic logged decisions to train on")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=1, help="API worker processes (PostgreSQL only)")
    parser.add_argument("--reuse", type=Path, help="keep the built store in this folder and reuse it when it is "
                        "there (DuckDB: each run decides on a fresh copy, so runs start from the same log)")
    parser.add_argument("--peer-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer_server:
        import uvicorn

        uvicorn.run(peer_app(), host=LOOPBACK, port=args.peer_server, access_log=False, log_level="warning")
        return
    folder = Path(tempfile.mkdtemp(prefix="accord-bench-decide-"))
    url = args.store or f"duckdb:///{folder / 'store.duckdb'}"
    setup = prepared_store(args, folder, url)
    print(f"model: {setup['model']}", flush=True)
    load_before = os.getloadavg()
    env = {**os.environ, "ACCORD_READ_KEY": READ_KEY}
    results: dict[str, Any] = {"setup": setup, "rate": args.rate, "duration": args.duration}
    port = free_port()
    server = start(accord_serve(folder, port, "--workers", str(args.workers)), port, env, timeout=180)
    try:
        run_load(port, args.rate, args.warmup, args.customers)  # warm caches, JIT-free but lazy imports
        results["accord"] = run_load(port, args.rate, args.duration, args.customers, server.pid)
    finally:
        stop(server)
    port = free_port()
    peer = start([sys.executable, __file__, "--peer-server", str(port)], port, env, timeout=180)
    try:
        run_load(port, args.rate, args.warmup, args.customers)
        results["peer_cached_fastapi"] = run_load(port, args.rate, args.duration, args.customers, peer.pid)
    finally:
        stop(peer)
    results["loadavg_before"] = [round(x, 2) for x in load_before]
    results["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    a, p = results["accord"]["latency_ms"], results["peer_cached_fastapi"]["latency_ms"]
    if a["p99"] is not None and p["p99"]:
        results["p99_ratio_vs_peer"] = round(a["p99"] / p["p99"], 2)
    out_dir = Path(__file__).parent / "out"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "decide.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(json.dumps(results, indent=2))
    met = a["p99"] is not None and a["p99"] <= 10 and results["accord"]["achieved_rate"] >= 0.98 * args.rate
    print(f"\n/v1/decide, {N_OFFERS} eligible offers, {args.rate:g} req/s for {args.duration:g} s: "
          f"p50 {a['p50']} ms, p99 {a['p99']} ms, errors {results['accord']['errors']}, "
          f"server CPU {results['accord'].get('server_cpu_ms_per_request')} ms/request; "
          f"peer (cached FastAPI) p99 {p['p99']} ms; target p99 <= 10 ms: {'met' if met else 'NOT met'}; "
          f"load {results['loadavg_before']}")


if __name__ == "__main__":
    main()
