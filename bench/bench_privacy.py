"""Erasure of one person from a store of N profiles (default 1,000,000), receipt included.

Builds a DuckDB store shaped like a resolved Accord project (two source records per person with history,
events, match edges, golden values, identifiers, traits, consent, audit, segment memberships, decisions,
quarantined rows, ...) straight in SQL, then times:

* accord: ``accord.privacy.erasure.erase`` by email: find the person, delete/scrub/redact their rows in every
  registered table, suppression entries, receipt (one transaction);
* peer: bare SQL deleting the same person's rows by known keys from the same tables (no discovery, no text
  search, no receipt) — the floor any erasure pays on this engine;
* purge: rewriting the file so the erased bytes are gone from disk (``accord privacy purge``).

    python bench/bench_privacy.py [--profiles N] [--dir DIR] [--reuse]

With ``--dir DIR --reuse``, a store built by an earlier run (``DIR/pristine.duckdb``) is copied to
``DIR/store.duckdb`` and measured, instead of being built again.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from accord.privacy.erasure import erase
from accord.privacy.purge import purge
from accord.privacy.suppression import salt
from accord.store import open_store


def build(store, n: int) -> None:  # noqa: ANN001
    c = store.conn
    t = "TIMESTAMP '2024-01-01' + to_days(CAST(i % 700 AS INTEGER))"
    cid = "'cus_' || lpad(CAST(i + 1 AS VARCHAR), 8, '0')"
    steps = {
        "source_records": f"""INSERT INTO source_records (source, record_key, row_hash, raw, given_name, family_name,
            emails, phones, city, country, external_ids, consent, source_updated_at, first_seen_at, valid_from, run_id)
            SELECT s, k, md5(k), json_object('id', k, 'email', e, 'phone', p, 'name', 'Given' || i || ' Family' || i),
                   'Given' || i, 'Family' || i, to_json([e]), to_json([p]), 'Springfield', 'US',
                   json_object('crm_id', 'C' || i), json_object('email_marketing', CASE WHEN i % 3 = 0 THEN 'no'
                   ELSE 'yes' END), {t}, {t}, {t}, 'run_bench'
            FROM (SELECT i, unnest(['crm', 'shop']) AS s, unnest(['C' || i, 'S' || i]) AS k,
                         'user' || i || '@example.com' AS e, '+1415' || lpad(CAST(i AS VARCHAR), 7, '0') AS p
                  FROM range({n}) r(i))""",
        "source_records_history": f"""INSERT INTO source_records_history SELECT *, valid_from + INTERVAL 1 DAY
            FROM source_records WHERE source = 'crm' AND record_key IN (SELECT 'C' || i FROM range(0, {n}, 10) r(i))""",
        "record_customer": f"""INSERT INTO record_customer SELECT s, k, {cid}, {t}, 'run_bench' FROM
            (SELECT i, unnest(['crm', 'shop']) AS s, unnest(['C' || i, 'S' || i]) AS k FROM range({n}) r(i))""",
        "identity": "INSERT INTO identity SELECT source, record_key, customer_id, 'run_bench' FROM record_customer",
        "customers": f"INSERT INTO customers SELECT {cid}, i + 1, 'active', NULL, {t}, 'run_bench', NULL FROM range({n}) r(i)",
        "match_edges": f"""INSERT INTO match_edges SELECT 'crm:C' || i, 'shop:S' || i, 0.99, 8.5, 'model', 'auto',
            NULL, 'run_bench' FROM range({n}) r(i)""",
        "identity_audit": f"""INSERT INTO identity_audit SELECT i + 1, {t}, 'run_bench', 'created', {cid}, NULL,
            to_json(['crm:C' || i, 'shop:S' || i]), 'new cluster', '[]' FROM range({n}) r(i)""",
        "golden_values": f"""INSERT INTO golden_values SELECT {cid}, a, v, 'crm', 'C' || i, {t}, 'source_priority'
            FROM (SELECT i, unnest(['given_name', 'family_name', 'email', 'phone']) AS a,
                  unnest(['Given' || i, 'Family' || i, 'user' || i || '@example.com',
                          '+1415' || lpad(CAST(i AS VARCHAR), 7, '0')]) AS v FROM range({n}) r(i))""",
        "golden_multi": f"""INSERT INTO golden_multi SELECT {cid}, a, v, {t}, {t}, '["crm", "shop"]', 2, 'crm',
            'C' || i, 'union' FROM (SELECT i, unnest(['emails', 'phones']) AS a, unnest(['user' || i || '@example.com',
            '+1415' || lpad(CAST(i AS VARCHAR), 7, '0')]) AS v FROM range({n}) r(i))""",
        "customer_identifiers": f"""INSERT INTO customer_identifiers SELECT t, v, {cid}, 'profiles', {t}, {t}
            FROM (SELECT i, unnest(['email', 'phone', 'user_id']) AS t, unnest(['user' || i || '@example.com',
            '+1415' || lpad(CAST(i AS VARCHAR), 7, '0'), 'C' || i]) AS v FROM range({n}) r(i))""",
        "customer_traits": f"""INSERT INTO customer_traits SELECT {cid}, name, i % 17, NULL, {t} FROM range({n}) r(i),
            (SELECT unnest(['orders_90d', 'revenue_365d', 'days_since_last_event']) AS name)""",
        "events": f"""INSERT INTO events (event_id, source, type, event, ts, received_at, identity_type, identity_value,
            anonymous_id, revenue, properties, run_id)
            SELECT 'e' || i || '_' || j, 'shop', 'track', CASE WHEN j = 0 THEN 'Order Completed' ELSE 'Page Viewed' END,
                   {t}, {t}, 'email', 'user' || i || '@example.com', 'anon-' || i, 10.0, json_object('sku', j), 'run_bench'
            FROM range({n}) r(i), range(3) s(j)""",
        "identity_signals": f"""INSERT INTO identity_signals SELECT 'sig' || i, 'identify', 'C' || i, 'anon-' || i,
            NULL, NULL, json_object('email', 'user' || i || '@example.com'), {t}, {t}, {t} FROM range(0, {n}, 10) r(i)""",
        "consent_history": f"""INSERT INTO consent_history (decision_id, purpose, status, decided_at, source,
            lawful_basis, origin, record_source, record_key, recorded_at, actor)
            SELECT 'con_' || i, 'email_marketing', 'granted', {t}, 'crm', 'consent', 'record', 'crm', 'C' || i, {t},
                   'ingest' FROM range({n}) r(i)""",
        "customer_consent": f"""INSERT INTO customer_consent SELECT {cid}, 'email_marketing', 'granted', {t}, 'crm',
            'consent' FROM range({n}) r(i)""",
        "account_members": f"""INSERT INTO account_members SELECT 'acct' || (i % 5000), {cid}, 'company', {t}, {t}
            FROM range(0, {n}, 10) r(i)""",
        "quarantine": f"""INSERT INTO quarantine SELECT 'q' || i, 'crm', 'crm.csv', i, 'C' || (i * 97),
            'bad date', 'C' || (i * 97) || ',Given,Family,user' || (i * 97) || '@example.com,31/02/1990', md5('q' || i),
            'run_bench', 'run_bench', {t}, NULL, NULL FROM range({max(n // 1000, 10)}) r(i)""",
    }
    optional = {
        "segment_membership": f"""INSERT INTO segment_membership SELECT 'loyal', {cid}, {t}, NULL, 'batch', NULL,
            'run_bench', NULL FROM range({n}) r(i)""",
        "decisions": f"""INSERT INTO decisions (decision_id, unit, customer_id, policy, personalized, decided_at)
            SELECT 'd' || i, {cid}, {cid}, 'rules', false, {t} FROM range(0, {n}, 2) r(i)""",
        "decision_offers": f"""INSERT INTO decision_offers SELECT 'd' || i, 0, 'offer_a', 0.5, 1.0, false
            FROM range(0, {n}, 2) r(i)""",
        "identity_standardized": """INSERT INTO identity_standardized (source, record_key, rid, row_hash, std_email,
            std_phone) SELECT source, record_key, source || ':' || record_key, row_hash,
            json_extract_string(emails, '$[0]'), json_extract_string(phones, '$[0]') FROM source_records""",
        "identity_record_identifiers": """INSERT INTO identity_record_identifiers SELECT source || ':' || record_key,
            'email', json_extract_string(emails, '$[0]') FROM source_records""",
        "webhook_deliveries": f"""INSERT INTO webhook_deliveries (delivery_id, webhook, url, segment, customer_id, kind,
            body, status, attempts, created_at, next_attempt_at) SELECT 'w' || i, 'crm', 'https://x.test/hook', 'loyal',
            {cid}, 'enter', json_object('customer_id', {cid}), 'delivered', 1, {t}, {t} FROM range(0, {n}, 100) r(i)""",
    }
    present = set(store.table_names())
    for name, sql in {**steps, **{k: v for k, v in optional.items() if k in present}}.items():
        started = time.perf_counter()
        c.execute(sql)
        print(f"  built {name}: {time.perf_counter() - started:.1f} s", flush=True)
    c.execute("UPDATE profile_counters SET last_value = ? WHERE name IN ('audit', 'customer')", [n])
    c.execute("CHECKPOINT")


def bare_delete(store, i: int) -> float:  # noqa: ANN001
    """The peer: delete person i's rows by keys already known, no discovery, no receipt."""
    cid = f"cus_{i + 1:08d}"
    email = f"user{i}@example.com"
    recs = [("crm", f"C{i}"), ("shop", f"S{i}")]
    started = time.perf_counter()
    with store.transaction():
        for table in ("source_records", "source_records_history", "record_customer", "identity",
                      "identity_standardized"):
            for s, k in recs:
                store.execute(f"DELETE FROM {table} WHERE source = ? AND record_key = ?", (s, k))
        for table in ("golden_values", "golden_multi", "customer_identifiers", "customer_traits", "customer_consent",
                      "account_members", "segment_membership", "decisions", "webhook_deliveries", "identity_audit"):
            store.execute(f"DELETE FROM {table} WHERE customer_id = ?", (cid,))
        store.execute("DELETE FROM match_edges WHERE record_a = ? OR record_b = ?", (f"crm:C{i}", f"shop:S{i}"))
        store.execute("DELETE FROM events WHERE identity_type = 'email' AND identity_value = ?", (email,))
        store.execute("DELETE FROM identity_signals WHERE user_id = ?", (f"C{i}",))
        store.execute("DELETE FROM consent_history WHERE record_source = 'crm' AND record_key = ?", (f"C{i}",))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None, help="Where to build the store (default: a temp folder).")
    parser.add_argument("--no-purge", action="store_true", help="Skip timing the file rewrite.")
    parser.add_argument("--reuse", action="store_true",
                        help="With --dir: measure a copy of the store an earlier run built there (pristine.duckdb).")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="accord-bench-privacy-"))
    folder.mkdir(parents=True, exist_ok=True)
    pristine = folder / "pristine.duckdb"
    url = f"duckdb:///{folder / 'store.duckdb'}"
    n = args.profiles
    build_s = None
    if not (args.reuse and args.dir and pristine.exists()):
        print(f"building a store of {n:,} profiles in {folder}", flush=True)
        pristine.unlink(missing_ok=True)
        started = time.perf_counter()
        with open_store(f"duckdb:///{pristine}") as store:
            build(store, n)
        build_s = round(time.perf_counter() - started, 1)
    else:
        with open_store(f"duckdb:///{pristine}") as store:
            n = int(store.scalar("SELECT count(*) FROM customers"))
        print(f"reusing the store of {n:,} profiles in {pristine}", flush=True)
    for leftover in folder.glob("store.duckdb*"):
        leftover.unlink()
    shutil.copyfile(pristine, folder / "store.duckdb")
    size = (folder / "store.duckdb").stat().st_size
    rows = {}
    with open_store(url) as store:
        for table in store.table_names():
            rows[table] = int(store.scalar(f"SELECT count(*) FROM {table}"))
        salt(store)  # made by `accord run` (the privacy stage) in a real store, not by its first erasure
        target = n // 2 + 1  # quarantine holds rows of people whose index is a multiple of 97
        target -= target % 97
        times = []
        for k, i in enumerate((target, target + 97, target + 194)):
            t0 = time.perf_counter()
            receipt = erase(store, f"email:user{i}@example.com", actor="bench")
            times.append(time.perf_counter() - t0)
            if k == 0:
                first = receipt
        peers = [bare_delete(store, i) for i in (target + 1, target + 2, target + 3)]
    purge_s = None
    if not args.no_purge:
        t0 = time.perf_counter()
        purge(url)
        purge_s = time.perf_counter() - t0
    result = {
        "profiles": n, "total_rows": sum(rows.values()), "store_bytes": size, "build_seconds": build_s,
        "erase_seconds": [round(t, 3) for t in times], "receipt_seconds": first.seconds,
        "rows_erased": first.total, "tables_touched": sum(1 for v in first.counts.values() if v),
        "peer_bare_delete_seconds": [round(t, 3) for t in peers],
        "ratio_median": round(sorted(times)[1] / sorted(peers)[1], 2),
        "purge_seconds": round(purge_s, 1) if purge_s is not None else None,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "load_average": os.getloadavg(),
    }
    print(json.dumps(result, indent=2))
    if args.dir is None:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
