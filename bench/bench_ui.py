"""Dashboard page latency on demo data: every page through a real ``accord serve``.

Builds the ``accord demo`` project (2,000 people by default) in a temporary folder, serves it on
loopback, signs in with an admin key and requests each page --repeat times from this (separate)
process, after one warm-up request each. Reports median, p95 and max per page against the 300 ms
target, and beside the Customer 360 page the profile API calls that return the same data as JSON
(the peer: what the page costs over the API it builds on).

    .venv/bin/python bench/bench_ui.py [--people 2000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlencode

from accord.config import load_config
from accord.identity.model import EXPLAIN_CHUNK
from accord.pipeline import run_pipeline
from accord.profiles.review import pending_pairs
from accord.store import open_store
from accord.synth import generate
from serving import LOOPBACK, accord_serve, free_port, start, stop

ADMIN_KEY = "bench-admin-key"
TARGET_MS = 300.0
SEGMENT = "country = 'GB'"


def start_server(project: Path, port: int) -> subprocess.Popen[bytes]:
    return start(accord_serve(project, port), port, {**os.environ, "ACCORD_ADMIN_KEY": ADMIN_KEY})


class Client:
    """One keep-alive connection carrying the session cookie."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection(LOOPBACK, port, timeout=120)
        self.headers: dict[str, str] = {}

    def request(self, method: str, path: str, body: str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str, float]:
        all_headers = {**self.headers, **(headers or {})}
        if body is not None:
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=all_headers)
            resp = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # the server closed an idle keep-alive connection: reconnect (not timed)
            self.conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=120)
            return self.request(method, path, body, headers)
        text = resp.read().decode()
        elapsed = (time.perf_counter() - started) * 1000
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, text, elapsed

    def sign_in(self) -> str:
        status, headers, _, _ = self.request("POST", "/ui/login", urlencode({"api_key": ADMIN_KEY, "next": "/ui/"}))
        assert status == 303, status
        self.headers["Cookie"] = headers["set-cookie"].split(";")[0]
        _, _, html, _ = self.request("GET", "/ui/review")
        return re.search(r'name="csrf" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


def measure(client: Client, path: str, repeat: int, headers: dict[str, str] | None = None) -> list[float]:
    status, _, _, _ = client.request("GET", path, headers=headers)  # warm-up (template compile, caches)
    assert status in (200, 303), f"{path}: {status}"
    return [client.request("GET", path, headers=headers)[3] for _ in range(repeat)]


def row(name: str, times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    met = "yes" if p95 <= TARGET_MS else "NO"
    return f"{name:<44} {statistics.median(times):8.1f} {p95:8.1f} {max(times):8.1f}   {met}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="accord-bench-ui-") as tmp:
        project = Path(tmp)
        print(f"demo project: {args.people:,} people ...", flush=True)
        generate(project, people=args.people, seed=7)
        report = run_pipeline(load_config(project))
        assert report["status"] == "ok", report
        with open_store(load_config(project).store_url()) as store:
            customer_id, email = store.fetchone(
                "SELECT g.customer_id, g.value FROM golden_values g JOIN (SELECT customer_id FROM record_customer "
                "GROUP BY customer_id HAVING COUNT(*) >= 3) r ON r.customer_id = g.customer_id "
                "WHERE g.attribute = 'email' ORDER BY g.customer_id LIMIT 1")
            queue = [(p.record_a, p.record_b) for p in pending_pairs(store)]
            pairs = queue[:10]  # the reviewer's walk: the front of the queue, in its order
            deep = queue[-5:] if len(queue) > EXPLAIN_CHUNK + 5 else []  # far past what the server explains ahead
            customers = store.scalar("SELECT COUNT(*) FROM customers WHERE status = 'active'")
            events = store.scalar("SELECT COUNT(*) FROM events")
        port = free_port()
        server = start_server(project, port)
        try:
            client = Client(port)
            csrf = client.sign_in()
            status, _, _, _ = client.request("POST", "/ui/segments", urlencode(
                {"csrf": csrf, "name": "bench_gb", "condition": SEGMENT, "description": ""}))
            assert status == 303, status
            pages = [
                ("overview /ui/", "/ui/"),
                ("overview quality warnings (cached report)", "/ui/fragments/quality-warnings"),
                ("data quality /ui/quality", "/ui/quality"),
                ("search by email", f"/ui/customers?q={quote(email)}"),
                ("customer 360", f"/ui/customers/{customer_id}"),
                ("customer 360 timeline (loaded after it)", f"/ui/customers/{customer_id}/events"),
                ("review queue", "/ui/review"),
                ("audit", "/ui/audit"),
                ("segments list", "/ui/segments"),
                ("segment builder live count", f"/ui/segments/preview?{urlencode({'condition': SEGMENT})}"),
                ("segment detail", "/ui/segments/bench_gb"),
            ]
            evidence = [f"/ui/review/evidence?{urlencode({'a': a, 'b': b})}" for a, b in pairs]
            cold = [f"/ui/review/evidence?{urlencode({'a': a, 'b': b})}" for a, b in deep]
            if evidence:
                pages.append(("review waterfall, a pair seen before", evidence[0]))
            print(f"{customers:,} customers, {events:,} events; {args.repeat} requests per page after a warm-up; "
                  f"load average {os.getloadavg()[0]:.2f}")
            print(f"{'page':<44} {'median':>8} {'p95':>8} {'max':>8}   ≤ {TARGET_MS:.0f} ms (p95)")
            if evidence:  # each pair's first view, walking the queue from the review page
                client.request("GET", "/ui/review")
                print(row(f"review waterfall, first view ({len(evidence)} pairs in queue order)",
                          [client.request("GET", path)[3] for path in evidence]), flush=True)
            if cold:  # a pair nobody explained ahead: the model explains it with the pairs after it
                print(row(f"review waterfall, first view deep in the queue ({len(cold)})",
                          [client.request("GET", path)[3] for path in cold]), flush=True)
            for name, path in pages:
                print(row(name, measure(client, path, args.repeat)), flush=True)

            api = Client(port)
            api.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
            ref = f"customer_id:{customer_id}"
            parts = [measure(api, f"/v1/profiles/{ref}{suffix}", args.repeat)
                     for suffix in ("", "/records", "/events?limit=25", "/history")]
            peer = [sum(ts) for ts in zip(*parts)]
            page = [a + b for a, b in zip(measure(client, f"/ui/customers/{customer_id}", args.repeat),
                                          measure(client, f"/ui/customers/{customer_id}/events", args.repeat))]
            print(row("customer 360 page + its timeline", page))
            print(row("peer: profile API, the 360's four JSON calls", peer))
            print(f"customer 360 page and timeline / profile API calls (median): "
                  f"{statistics.median(page) / statistics.median(peer):.2f}; load average {os.getloadavg()[0]:.2f}")
        finally:
            stop(server)


if __name__ == "__main__":
    main()
