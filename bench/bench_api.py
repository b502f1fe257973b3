"""API benchmarks: sustained collection through POST /v1/batch, and profile-lookup and identify latency.

``--scenario collect`` (default) starts ``accord serve`` on a fresh store on loopback, sends batches
from this (separate) process for --duration seconds over keep-alive connections, then checks that
the store holds exactly the events the server acknowledged, and reports events/s.

``--scenario latency`` builds (once, into --data-dir, default /work/benchdata/h2) a store of --people
customers with two source records each (2 × 500,000 = 1,000,000 records by default: customers,
records, golden values, the identifier index and the profile documents, written in the shape the
pipeline writes them), serves it, and sends open-loop load from a separate process
(bench/api_load.py): profile lookups by email at --lookup-rate requests/s, then identify calls
each with a new email and user id (and a stored person's name) at --identify-rate, resolved through
the model the build trained (identity.stage.resolve on the built records). Each is preceded by 5 s of
the same load, not counted (other new people for identify). Latency runs from each request's scheduled
time to its response. In the same run it times the bare store's point query the lookup starts with,
as the floor.

    .venv/bin/python bench/bench_api.py                       # DuckDB, 60 s
    .venv/bin/python bench/bench_api.py --store postgresql://postgres@127.0.0.1:5432/test --workers 2
    .venv/bin/python bench/bench_api.py --scenario latency [--people 500000] [--seconds 30]
    .venv/bin/python bench/bench_api.py --scenario latency --store postgresql://postgres@127.0.0.1:5432/test --workers 2
    .venv/bin/python bench/bench_api.py --scenario latency --identify-rate 0 --lookup-rate 200 \
        --data-dir /work/benchdata/api1m --store 'postgresql://127.0.0.1:5432/test?schema=h6_api' --workers 2

With PostgreSQL, the store is copied once into the URL's ``schema`` (default bench_api_PEOPLE).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import orjson
from serving import LOOPBACK, accord_serve, free_port, start, stop

WRITE_KEY = "bench-write-key"
READ_KEY = "bench-read-key"
DATA = Path("/work/benchdata/h2")


def start_server(project: Path, port: int, workers: int | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ACCORD_WRITE_KEY": WRITE_KEY, "ACCORD_READ_KEY": READ_KEY}
    return start(accord_serve(project, port, *(["--workers", str(workers)] if workers else [])), port, env)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children so far, from /proc (Linux)."""
    def one(p: int) -> float:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(c) for c in children.read_text().split()] if children.exists() else []
    return one(pid) + sum(one(k) for k in kids)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server; one still draining a backlog after 30 s is killed (its store is read next)."""
    stop(proc, timeout=30)


_BASE = "B" * 32  # stands for a request's unique messageId prefix in a cached body
_TEMPLATES: dict[tuple[int, int], bytes] = {}


def batch_body(size: int, seq: int, pii: bool = False) -> bytes:
    """A /v1/batch body of ``size`` track events with new messageIds. The JSON of each of 500 user-id
    ranges is built once and only its messageIds replaced, so that the sending process spends its CPU
    on sending, not on building bodies (it shares the machine with the server)."""
    key = (size, seq % 500, pii)
    if key not in _TEMPLATES:
        _TEMPLATES[key] = _batch_json(size, seq % 500, _BASE, pii)
    return _TEMPLATES[key].replace(_BASE.encode(), uuid.uuid4().hex.encode())


def _batch_json(size: int, seq: int, base: str, pii: bool = False) -> bytes:
    def context(user: int) -> dict:
        # --pii: server-side SDKs send the user's traits with every event (here an email and a name)
        traits = {"traits": {"email": f"user-{user}@example.com", "name": f"Person {user}"}} if pii else {}
        return {"library": {"name": "bench", "version": "1"}, "ip": "127.0.0.1", **traits}

    return orjson.dumps({"batch": [
        {"type": "track", "messageId": f"{base}-{i}", "userId": f"user-{(seq * size + i) % 50_000}",
         "anonymousId": f"anon-{i}", "event": "Order Completed", "timestamp": "2026-01-01T12:00:00Z",
         "properties": {"revenue": 19.99, "currency": "EUR", "sku": f"SKU-{i % 300}", "quantity": 1},
         "context": context((seq * size + i) % 50_000)}
        for i in range(size)
    ], "sentAt": "2026-01-01T12:00:00Z"})


def sender(port: int, size: int, stop_at: float, totals: dict[str, int], lock: threading.Lock,
           pii: bool = False) -> None:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {WRITE_KEY}"}
    acked = failed = requests = 0
    seq = 0
    while time.monotonic() < stop_at:
        body = batch_body(size, seq, pii)
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


def collect(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        schema = None
        if args.store == "duckdb":
            store_url = f"duckdb:///{project / 'bench.duckdb'}"
        else:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            store_url = f"{args.store}{'&' if '?' in args.store else '?'}schema={schema}"
        privacy = ""
        if args.encrypt:  # PII at rest: the person fields of collected messages stored as tokens
            from cryptography.fernet import Fernet

            privacy = ("privacy:\n  encryption:\n    fields: [emails, phones, given_name, family_name, full_name, "
                       "street, city, postcode, date_of_birth, company]\n")
            os.environ.setdefault("ACCORD_PII_KEYS", Fernet.generate_key().decode())
            os.environ.setdefault("ACCORD_PII_HASH_KEY", uuid.uuid4().hex)
        (project / "accord.yaml").write_text(f"store: {store_url!r}\n{privacy}", encoding="utf-8")
        port = free_port()
        server = start_server(project, port, args.workers)
        totals = {"acked": 0, "failed": 0, "requests": 0}
        lock = threading.Lock()
        try:
            cpu_before, client_before = cpu_seconds(server.pid), time.process_time()
            started = time.monotonic()
            stop_at = started + args.duration
            threads = [threading.Thread(target=sender, args=(port, args.batch_size, stop_at, totals, lock, args.pii))
                       for _ in range(args.connections)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - started
            server_cpu = cpu_seconds(server.pid) - cpu_before
            client_cpu = time.process_time() - client_before
        finally:
            stop_server(server)
        stored = count_stored(store_url)
        if schema:
            import psycopg

            with psycopg.connect(args.store.split("?")[0], autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    rate = totals["acked"] / elapsed
    print(f"store={args.store.split(':')[0]} workers={args.workers or 1} batch={args.batch_size} "
          f"connections={args.connections} encrypt={args.encrypt} pii={args.pii} duration={elapsed:.1f}s "
          f"load={os.getloadavg()[0]:.1f}")
    print(f"requests={totals['requests']} acknowledged={totals['acked']} failed={totals['failed']} "
          f"stored={stored}")
    print(f"throughput={rate:,.0f} events/s  loss={'none' if stored == totals['acked'] else 'YES'}  "
          f"server CPU={server_cpu:.1f} s ({1000 * server_cpu / max(totals['acked'], 1):.3f} ms per event), "
          f"client CPU={client_cpu:.1f} s")
    if stored != totals["acked"]:
        raise SystemExit(1)


# --- latency ---------------------------------------------------------------------------------------

def email_of(i: int) -> str:
    return f"p{i}@mail{i % 50}.net"


_SYLLABLES = ("an", "bel", "cor", "da", "el", "fin", "gar", "hel", "is", "jo", "ka", "lin", "mar", "nor", "ol",
              "per", "quin", "ros", "sam", "tor", "ul", "ver", "wil", "xan", "yor", "zed")


def _names(count: int, seed: int) -> list[str]:
    """``count`` distinct made-up names (two or three syllables), so that blocking on family name and
    initial gives blocks of a realistic size."""
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < count:
        out["".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 3)))).capitalize()] = None
    return list(out)


GIVEN = _names(997, 1)
FAMILY = _names(4999, 2)


def name_of(i: int) -> tuple[str, str]:
    """Person i's given and family name, as build_store writes them."""
    return GIVEN[i % len(GIVEN)], FAMILY[i % len(FAMILY)]


def build_store(path: Path, people: int) -> None:
    """``people`` customers, each with a crm and a shop record, golden values and indexed identifiers."""
    from accord.store import open_store

    store = open_store(f"duckdb:///{path}")
    c = store.conn
    started = time.monotonic()
    ts = "TIMESTAMP '2025-01-01 00:00:00'"
    cid = "'cus_' || lpad(CAST(i AS TEXT), 8, '0')"
    people_sql = f"FROM range(1, {people + 1}) t(i)"
    given = f"(SELECT list_value({', '.join(repr(n) for n in GIVEN)}))[1 + i % {len(GIVEN)}]"
    family = f"(SELECT list_value({', '.join(repr(n) for n in FAMILY)}))[1 + i % {len(FAMILY)}]"
    steps = {
        "customers": f"INSERT INTO customers SELECT {cid}, i, 'active', NULL, {ts}, 'bench', NULL {people_sql}",
        "records": f"""INSERT INTO source_records (source, record_key, row_hash, raw, given_name, family_name,
                emails, phones, city, postcode, country, date_of_birth, external_ids, first_seen_at, valid_from, run_id)
            SELECT s.source, s.prefix || i, md5(s.source || i),
                   json_object('id', s.prefix || i, 'first', n.given, 'last', n.family),
                   n.given, n.family,
                   json_array('p' || i || '@mail' || (i % 50) || '.net'),
                   json_array('+1212' || CAST(2000000 + i % 7999999 AS TEXT)),
                   'City' || (i % 300), lpad(CAST(i % 99999 AS TEXT), 5, '0'), 'US',
                   CAST(DATE '1940-01-01' + CAST((i * 7919) % 25000 AS INTEGER) AS TEXT),
                   json_object(s.source || '_id', s.prefix || i), {ts}, {ts}, 'bench'
            FROM (SELECT i, {given} AS given, {family} AS family {people_sql}) n,
                 (VALUES ('crm', 'C'), ('shop', 'S')) s(source, prefix)""",
        "record_customer": "INSERT INTO record_customer SELECT source, record_key, "
                           "'cus_' || lpad(substr(record_key, 2), 8, '0'), first_seen_at, 'bench' FROM source_records",
        "golden_values": f"""INSERT INTO golden_values
            SELECT {cid}, a.attribute, CASE a.attribute WHEN 'given_name' THEN {given}
                       WHEN 'family_name' THEN {family} WHEN 'city' THEN 'City' || (i % 300)
                       WHEN 'postcode' THEN lpad(CAST(i % 99999 AS TEXT), 5, '0') ELSE 'US' END,
                   'crm', 'C' || i, {ts}, 'most_recent'
            {people_sql}, (VALUES ('given_name'), ('family_name'), ('city'), ('postcode'), ('country')) a(attribute)
            ORDER BY 1, 2""",
        "golden_multi": f"""INSERT INTO golden_multi
            SELECT {cid}, m.attribute, CASE m.attribute WHEN 'emails' THEN 'p' || i || '@mail' || (i % 50) || '.net'
                       ELSE '+1212' || CAST(2000000 + i % 7999999 AS TEXT) END,
                   {ts}, {ts}, '["crm", "shop"]', 2, 'shop', 'S' || i, 'all_values'
            {people_sql}, (VALUES ('emails'), ('phones')) m(attribute) ORDER BY 1, 2""",
        "customer_identifiers": f"""INSERT INTO customer_identifiers
            SELECT x.id_type, CASE x.id_type WHEN 'email' THEN 'p' || i || '@mail' || (i % 50) || '.net'
                       WHEN 'phone' THEN '+1212' || CAST(2000000 + i % 7999999 AS TEXT)
                       WHEN 'crm_id' THEN 'C' || i WHEN 'shop_id' THEN 'S' || i ELSE 'C' || i END,
                   {cid}, 'golden', {ts}, {ts}
            {people_sql}, (VALUES ('email'), ('phone'), ('crm_id'), ('shop_id'), ('user_id')) x(id_type)""",
    }
    for name, sql in steps.items():
        with store.transaction():
            c.execute(sql)
        print(f"  built {name} ({time.monotonic() - started:.0f} s)", flush=True)
    store.execute("UPDATE profile_counters SET last_value = ? WHERE name = 'customer'", (people,))
    store.execute("CHECKPOINT")
    store.close()


def build_documents(path: Path) -> None:
    """Every customer's profile document, as after a profiles run (``build_profile_documents``)."""
    from accord.profiles.lookup import build_profile_documents
    from accord.store import open_store

    started = time.monotonic()
    with open_store(f"duckdb:///{path}") as store:
        n = build_profile_documents(store)
        store.execute("CHECKPOINT")
    print(f"  built {n:,} profile documents ({time.monotonic() - started:.0f} s)", flush=True)


def build_identity(folder: Path) -> None:
    """Resolve the records as the identity stage does (``identity.stage.resolve``: standardize, rules,
    train the model, score, cluster), so that the store holds a trained model and the incremental state
    identify resolves new identities against. Customers and golden records stay as build_store wrote
    them (the clusters are the same: each person's two records share an email)."""
    from accord.clock import new_run_id
    from accord.config import load_config
    from accord.identity.stage import resolve
    from accord.store import open_store

    started = time.monotonic()
    cfg = load_config(folder)
    with open_store(cfg.store_url()) as store:
        report = resolve(store, cfg, new_run_id())
        store.execute("CHECKPOINT")
    timings = ", ".join(f"{k} {v:.0f}" for k, v in report.timings.items())
    print(f"  resolved identities: model v{report.model_version}, {report.rule_edges:,} rule edges, "
          f"{report.model_edges:,} model edges ({timings}; {time.monotonic() - started:.0f} s)", flush=True)


def percentiles(values: list[float]) -> str:
    if not values:
        return "no answers"
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50={q[49]:.2f} p95={q[94]:.2f} p99={q[98]:.2f} max={max(values):.2f} ms"


def open_loop(port: int, rate: float, seconds: float, requests: list[dict]) -> dict:
    """Run bench/api_load.py in its own process; its result."""
    lines = b"\n".join(json.dumps(r).encode() for r in requests)
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("api_load.py")), str(port), str(rate),
                           str(seconds)], input=lines, capture_output=True, check=True)
    return json.loads(proc.stdout)


def store_floor(store_url: str, people: int, n: int = 2000) -> list[float]:
    """Latency of the bare point query on the identifier index, in process (the lookup's floor)."""
    from accord.store import connect

    store = connect(store_url)
    rng = random.Random(7)
    out = []
    for _ in range(n):
        value = email_of(rng.randint(1, people))
        t = time.perf_counter()
        store.fetchall("SELECT id_type, customer_id FROM customer_identifiers WHERE value IN (?)", (value,))
        out.append((time.perf_counter() - t) * 1000)
    store.close()
    return out


def build_postgresql(path: Path, url: str) -> None:
    """Copy the DuckDB bench store into the PostgreSQL schema of ``url`` (migrated first by open_store):
    each table through a CSV file and COPY, then the PostgreSQL-only indexes the identity and profiles
    stages leave after a full run (the migrations do not create them), then VACUUM (ANALYZE)."""
    import duckdb

    from accord.identity.state import ensure_indexes
    from accord.profiles._sql import create_lookup_indexes
    from accord.store import open_store

    started = time.monotonic()
    duck = duckdb.connect(str(path), read_only=True)
    tables = [t for (t,) in duck.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' AND table_type = 'BASE TABLE' "
        "AND table_name <> 'schema_migrations' ORDER BY 1").fetchall()]
    csv = path.with_suffix(".copy.csv")
    with open_store(url) as pg:
        with pg.transaction():
            for table in tables:
                if not duck.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]:
                    continue
                cols = ", ".join(f'"{c}"' for (c,) in duck.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
                    (table,)).fetchall())
                duck.execute(f"COPY (SELECT {cols} FROM \"{table}\") TO '{csv}' (HEADER false)")
                pg.execute(f"DELETE FROM {table}")
                with pg.conn.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv)") as copy:
                    with open(csv, "rb") as f:
                        while chunk := f.read(1 << 20):
                            copy.write(chunk)
                print(f"  copied {table} ({time.monotonic() - started:.0f} s)", flush=True)
            ensure_indexes(pg)
            create_lookup_indexes(pg)
            print(f"  indexed ({time.monotonic() - started:.0f} s)", flush=True)
        # VACUUM as well: a serving store's tables have been vacuumed (autovacuum), and only then are the
        # visibility maps set and counts by index answered from the index (a real-time identify's term
        # frequencies: ~0.3 ms for a thousand rows, against 5-10 ms through the heap of a fresh copy).
        copied = ", ".join(t for t in tables if duck.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0])
        pg.execute(f"VACUUM (ANALYZE) {copied}" if copied else "ANALYZE")
    csv.unlink(missing_ok=True)
    duck.close()


def latency(args: argparse.Namespace) -> None:
    folder = Path(args.data_dir) / f"api_{args.people}"
    path = folder / "store.duckdb"
    if not (folder / "built").exists():
        folder.mkdir(parents=True, exist_ok=True)
        for p in folder.glob("store.duckdb*"):
            p.unlink()
        print(f"building a store of {args.people:,} customers / {2 * args.people:,} records into {folder}", flush=True)
        build_store(path, args.people)
        (folder / "built").write_text("ok\n")
    if not (folder / "documents").exists():
        build_documents(path)
        (folder / "documents").write_text("ok\n")
    (folder / "accord.yaml").write_text(f"store: 'duckdb:///{path}'\n", encoding="utf-8")
    if not (folder / "identity").exists():
        build_identity(folder)
        (folder / "identity").write_text("ok\n")
    store_url, project = f"duckdb:///{path}", folder
    if args.store != "duckdb":  # the same store copied once into a PostgreSQL schema
        from urllib.parse import parse_qs, urlparse

        schema = parse_qs(urlparse(args.store).query).get("schema", [f"bench_api_{args.people}"])[0]
        store_url = args.store if "schema=" in args.store else f"{args.store}{'&' if '?' in args.store else '?'}schema={schema}"
        marker = folder / f"postgresql_{schema}"
        if not marker.exists():
            print(f"copying the store into PostgreSQL schema {schema}", flush=True)
            build_postgresql(path, store_url)
            marker.write_text("ok\n")
        project = folder / "postgresql"
        project.mkdir(exist_ok=True)
        (project / "accord.yaml").write_text(f"store: {store_url!r}\n", encoding="utf-8")
    if args.build_only:
        return
    floor = store_floor(store_url, args.people)
    rng = random.Random(42)
    read = {"Authorization": f"Bearer {READ_KEY}"}
    lookups = [{"method": "GET", "path": f"/v1/profiles/email:{email_of(rng.randint(1, args.people))}",
                "headers": read} for _ in range(20_000)]
    run = uuid.uuid4().hex[:8]
    write = {"Authorization": f"Bearer {WRITE_KEY}"}
    n_identify = int(args.identify_rate * args.seconds)
    # A new email and user id with the name of a stored person: the model's blocking rules (family
    # name and initial, name group and postcode) find candidates, and the model scores them.
    names = [name_of(rng.randint(1, args.people)) for _ in range(n_identify)]
    identifies = [{"method": "POST", "path": "/v1/identify", "headers": write, "body": json.dumps({
        "messageId": f"{run}-{i}", "userId": f"new-{run}-{i}", "anonymousId": f"anon-{run}-{i}",
        "traits": {"email": f"new-{run}-{i}@fresh{i % 97}.io", "firstName": g, "lastName": f}})}
        for i, (g, f) in enumerate(names)]
    # As many new people again, for a warm-up that is not counted (as the lookups have): the first
    # calls of a fresh process pay for what it loads and caches once.
    warm = [{**r, "body": r["body"].replace(f"{run}-", f"{run}w-")}
            for r in identifies[:max(1, int(5 * args.identify_rate))]]
    print(f"store={args.store.split(':')[0]} workers={args.workers or 1} people={args.people:,} "
          f"records={2 * args.people:,} seconds={args.seconds:g} load={os.getloadavg()[0]:.1f}")
    print(f"bare store point query (floor, in process): {percentiles(floor)}", flush=True)
    port = free_port()
    server = start_server(project, port, args.workers)
    try:
        if args.lookup_rate > 0:
            open_loop(port, args.lookup_rate, 5, lookups[-2000:])  # warm-up, not counted
            cpu = cpu_seconds(server.pid)
            looked = open_loop(port, args.lookup_rate, args.seconds, lookups)
            lookup_cpu = (cpu_seconds(server.pid) - cpu) / max(looked["sent"], 1) * 1000
            print(f"profile lookup GET /v1/profiles/email:X at {args.lookup_rate:g}/s: sent={looked['sent']} "
                  f"ok={looked['ok']} errors={looked['errors']} statuses={looked['statuses']} "
                  f"{percentiles(looked['latencies_ms'])}; server CPU {lookup_cpu:.2f} ms per lookup; "
                  f"load={os.getloadavg()[0]:.1f}", flush=True)
        identified = None
        if args.identify_rate > 0:
            open_loop(port, args.identify_rate, 5, warm)  # warm-up, not counted
            cpu = cpu_seconds(server.pid)
            identified = open_loop(port, args.identify_rate, args.seconds, identifies)
            identify_cpu = (cpu_seconds(server.pid) - cpu) / max(identified["sent"], 1) * 1000
    finally:
        stop_server(server)
    if identified is None:
        return
    from accord.store import connect

    with connect(store_url) as store:
        stitched = store.scalar("SELECT COUNT(*) FROM customer_identifiers WHERE id_type = 'user_id' "
                                "AND value LIKE ?", (f"new-{run}-%",))
        records = store.scalar("SELECT COUNT(*) FROM source_records WHERE source = 'api' AND record_key LIKE ?",
                               (f"new-{run}-%",))
        models = store.scalar("SELECT COUNT(*) FROM identity_models")
    way = "rules, then the trained model" if models else "rules only (no trained model in the store)"
    print(f"identify path: {way}")
    print(f"identify with a new email at {args.identify_rate:g}/s: sent={identified['sent']} "
          f"ok={identified['ok']} errors={identified['errors']} statuses={identified['statuses']} "
          f"stitched={stitched} resolved as records by the model path={records} "
          f"{percentiles(identified['latencies_ms'])}; server CPU {identify_cpu:.2f} ms per identify; "
          f"load={os.getloadavg()[0]:.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", choices=("collect", "latency"), default="collect")
    p.add_argument("--duration", type=float, default=60.0, help="collect: seconds of sending (default 60)")
    p.add_argument("--store", default="duckdb", help="'duckdb' or a postgresql:// URL (collect: a fresh store; "
                                                     "latency: the DuckDB bench store copied once into the URL's "
                                                     "?schema=, default bench_api_PEOPLE)")
    p.add_argument("--batch-size", type=int, default=100, help="collect: events per /v1/batch request (default "
                                                               "100, the Segment and RudderStack SDKs' default)")
    p.add_argument("--connections", type=int, default=8, help="collect: concurrent client connections (default 8)")
    p.add_argument("--workers", type=int, default=None, help="server worker processes (PostgreSQL only)")
    p.add_argument("--encrypt", action="store_true", help="collect: privacy.encryption on (person fields as tokens)")
    p.add_argument("--pii", action="store_true", help="collect: every event carries context.traits (email, name)")
    p.add_argument("--people", type=int, default=500_000, help="latency: customers in the store (2 records each)")
    p.add_argument("--data-dir", default=str(DATA), help="latency: where the store is built once and reused "
                                                         "(default /work/benchdata/h2)")
    p.add_argument("--seconds", type=float, default=30.0, help="latency: seconds of load per measurement")
    p.add_argument("--lookup-rate", type=float, default=500.0, help="latency: profile lookups per second")
    p.add_argument("--identify-rate", type=float, default=100.0, help="latency: identify calls per second")
    p.add_argument("--build-only", action="store_true", help="latency: build the store (once) and stop")
    args = p.parse_args()
    if args.scenario == "collect":
        collect(args)
    else:
        latency(args)


if __name__ == "__main__":
    main()
