"""Sustained event collection through POST /v1/batch, with a zero-loss check.

Starts ``accord serve`` on a fresh store on loopback, sends batches from this (separate)
process for --duration seconds over keep-alive connections, then checks that the store holds
exactly the events the server acknowledged, and reports events/s.

    .venv/bin/python bench/bench_api.py                       # DuckDB, 60 s
    .venv/bin/python bench/bench_api.py --store postgresql://postgres@127.0.0.1:5432/test --workers 2
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import orjson

LOOPBACK = "127.0.0.1"
WRITE_KEY = "bench-write-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def start_server(project: Path, port: int, workers: int | None) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "accord.api.cli", "-c", str(project), "serve", "--host", LOOPBACK,
           "--port", str(port)]
    if workers:
        cmd += ["--workers", str(workers)]
    env = {**os.environ, "ACCORD_WRITE_KEY": WRITE_KEY}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            conn = http.client.HTTPConnection(LOOPBACK, port, timeout=1)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not become healthy within 60 s")


def batch_body(size: int, seq: int) -> bytes:
    base = uuid.uuid4().hex
    return orjson.dumps({"batch": [
        {"type": "track", "messageId": f"{base}-{i}", "userId": f"user-{(seq * size + i) % 50_000}",
         "anonymousId": f"anon-{i}", "event": "Order Completed", "timestamp": "2026-01-01T12:00:00Z",
         "properties": {"revenue": 19.99, "currency": "EUR", "sku": f"SKU-{i % 300}", "quantity": 1},
         "context": {"library": {"name": "bench", "version": "1"}, "ip": "127.0.0.1"}}
        for i in range(size)
    ], "sentAt": "2026-01-01T12:00:00Z"})


def sender(port: int, size: int, stop_at: float, totals: dict[str, int], lock: threading.Lock) -> None:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {WRITE_KEY}"}
    acked = failed = requests = 0
    seq = 0
    while time.monotonic() < stop_at:
        body = batch_body(size, seq)
        seq += 1
        try:
            conn.request("POST", "/v1/batch", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                acked += size
            else:
                failed += size
        except OSError:
            failed += size
            conn.close()
            conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
        requests += 1
    with lock:
        totals["acked"] += acked
        totals["failed"] += failed
        totals["requests"] += requests


def count_stored(store_url: str) -> int:
    from accord.store import connect

    store = connect(store_url)
    try:
        return int(store.scalar("SELECT count(*) FROM events WHERE source = 'api'"))
    finally:
        store.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of sending (default 60)")
    p.add_argument("--store", default="duckdb", help="'duckdb' (a fresh file) or a postgresql:// URL")
    p.add_argument("--batch-size", type=int, default=100, help="events per /v1/batch request (default 100, "
                                                               "the Segment and RudderStack SDKs' default)")
    p.add_argument("--connections", type=int, default=8, help="concurrent client connections (default 8)")
    p.add_argument("--workers", type=int, default=None, help="server worker processes (PostgreSQL only)")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        schema = None
        if args.store == "duckdb":
            store_url = f"duckdb:///{project / 'bench.duckdb'}"
        else:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            store_url = f"{args.store}{'&' if '?' in args.store else '?'}schema={schema}"
        (project / "accord.yaml").write_text(f"store: {store_url!r}\n", encoding="utf-8")
        port = free_port()
        server = start_server(project, port, args.workers)
        totals = {"acked": 0, "failed": 0, "requests": 0}
        lock = threading.Lock()
        try:
            started = time.monotonic()
            stop_at = started + args.duration
            threads = [threading.Thread(target=sender, args=(port, args.batch_size, stop_at, totals, lock))
                       for _ in range(args.connections)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - started
        finally:
            server.terminate()
            server.wait(timeout=30)
        stored = count_stored(store_url)
        if schema:
            import psycopg

            with psycopg.connect(args.store.split("?")[0], autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    rate = totals["acked"] / elapsed
    print(f"store={args.store.split(':')[0]} workers={args.workers or 1} batch={args.batch_size} "
          f"connections={args.connections} duration={elapsed:.1f}s")
    print(f"requests={totals['requests']} acknowledged={totals['acked']} failed={totals['failed']} "
          f"stored={stored}")
    print(f"throughput={rate:,.0f} events/s  loss={'none' if stored == totals['acked'] else 'YES'}")
    if stored != totals["acked"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
