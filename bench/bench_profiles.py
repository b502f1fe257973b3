"""Profiles benchmark: stable ids, audit and golden records for N synthetic records (default 1,000,000).

    .venv/bin/python bench/bench_profiles.py [--records N] [--store URL]

Records and clusters are generated directly (no ingest, no identity resolution): about two records
per person across three sources with different priorities, names with case variants, one or two
emails, a phone and an address each. Then `build_profiles` runs three times:

1. first build: every id created, every golden value computed;
2. the same clustering again: no id changes, no audit events (golden recomputed);
3. 1% new records, 0.1% of customers merged in pairs and 0.1% split.

Target (issue #5): 1,000,000 records in <= 60 s for the first build.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from accord.config import ProjectConfig, SourceConfig
from accord.profiles import build_profiles
from accord.store import open_store

GIVEN = np.array(["Ann", "Bob", "Cara", "Dan", "Eve", "Finn", "Gia", "Hal", "Ivy", "Jon", "Kim", "Leo", "Mia", "Ned"])
FAMILY = np.array(["Lee", "Smith", "Jones", "Khan", "Garcia", "Novak", "Okafor", "Rossi", "Tanaka", "Weber"])
CITY = np.array(["York", "Leeds", "Bath", "Derby", "Hull", "Ely"])
COMPANY = np.array(["Acme", "Globex", "Initech", "Umbrella", "", "Hooli"])
SOURCES = np.array(["crm", "shop", "support"])
T0 = datetime(2023, 1, 1)


def config() -> ProjectConfig:
    return ProjectConfig(sources=[
        SourceConfig(name=s, format="csv", path=f"{s}.csv", primary_key="id", fields={"given_name": "g"}, priority=p)
        for s, p in (("crm", 1), ("shop", 2), ("support", 3))])


def people_records(n: int, start: int, rng: np.random.Generator) -> tuple[pa.Table, pd.DataFrame]:
    """``n`` records numbered from ``start``; person = record // 2 (about two records per person)."""
    idx = np.arange(start, start + n)
    person = idx // 2
    src = SOURCES[rng.integers(0, 3, n)]
    key = pd.Series(idx).astype(str).to_numpy()
    given = GIVEN[person % len(GIVEN)]
    given = np.where(rng.random(n) < 0.2, np.char.upper(given.astype(str)), given)
    family = FAMILY[(person // 7) % len(FAMILY)]
    pstr = pd.Series(person).astype(str)
    email = (pd.Series(given).str.lower() + "." + pd.Series(family).str.lower() + pstr + "@example.com")
    email2 = "p" + pstr + "@work.example"
    emails = np.where(rng.random(n) < 0.3, '["' + email + '","' + email2 + '"]', '["' + email + '"]')
    phones = '["+44 7700 ' + pstr.str.zfill(6) + '"]'
    street = (pd.Series(person % 200 + 1).astype(str) + " High St").to_numpy()
    first = np.array([T0], dtype="datetime64[us]") + (rng.integers(0, 600, n) * 86_400_000_000).astype("timedelta64[us]")
    updated = first + (rng.integers(0, 100, n) * 86_400_000_000).astype("timedelta64[us]")
    table = pa.table({
        "source": pa.array(src), "record_key": pa.array(key), "row_hash": pa.array(key),
        "raw": pa.array(np.full(n, "{}")),
        "given_name": pa.array(given), "family_name": pa.array(family),
        "emails": pa.array(emails), "phones": pa.array(phones.to_numpy()),
        "street": pa.array(street), "city": pa.array(CITY[person % len(CITY)]),
        "postcode": pa.array(("P" + pstr.str.zfill(5)).to_numpy()), "country": pa.array(np.full(n, "GB")),
        "date_of_birth": pa.array(np.where(rng.random(n) < 0.9, "1980-01-01", "1981-01-01")),
        "company": pa.array(COMPANY[rng.integers(0, len(COMPANY), n)]),
        "external_ids": pa.array(np.full(n, "{}")), "consent": pa.array(np.full(n, "{}")),
        "source_updated_at": pa.array(updated), "first_seen_at": pa.array(first), "valid_from": pa.array(first),
        "run_id": pa.array(np.full(n, "run_bench")),
    })
    clusters = pd.DataFrame({"source": src, "record_key": key, "cluster_id": ("p" + pstr).to_numpy()})
    return table, clusters


def match_edges(clusters: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """One auto edge per pair of consecutive records of a person, as the identity stage would give."""
    rid = (clusters["source"] + ":" + clusters["record_key"]).to_numpy()
    same = clusters["cluster_id"].to_numpy()[:-1] == clusters["cluster_id"].to_numpy()[1:]
    a, b = rid[:-1][same], rid[1:][same]
    n = len(a)
    return pd.DataFrame({"record_a": np.minimum(a, b), "record_b": np.maximum(a, b),
                         "probability": rng.uniform(0.95, 1.0, n), "match_weight": rng.uniform(5, 15, n),
                         "rule_or_model": "model:v1", "status": "auto"})


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(label: str, fn) -> object:
    """Wall time, and this process's CPU time (meaningful when the machine is shared)."""
    started, cpu = time.perf_counter(), cpu_seconds()
    result = fn()
    print(f"{label}: {time.perf_counter() - started:.1f} s wall, {cpu_seconds() - cpu:.1f} s CPU", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--store", help="Store URL (default: a new DuckDB file in a temp folder).")
    parser.add_argument("--no-edges", action="store_true", help="Run without match edges (no audit evidence).")
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    cfg = config()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.store or f"duckdb:///{Path(tmp) / 'bench.duckdb'}"
        store = open_store(url)
        print(f"{args.records:,} records, {platform.python_implementation()} {platform.python_version()}, "
              f"{store.dialect}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
        table, clusters = people_records(args.records, 0, rng)
        timed("load source records", lambda: store.load_arrow("source_records", table))
        edges = pd.DataFrame() if args.no_edges else match_edges(clusters, rng)
        print(f"{len(clusters['cluster_id'].unique()):,} people, {len(edges):,} match edges", flush=True)

        r1 = timed("1. first build (ids + audit + golden)",
                   lambda: build_profiles(store, cfg, clusters, "run_1", edges=edges))
        print("   ", json.dumps({"customers": r1.ids.customers, "created": r1.ids.created, "events": r1.ids.events,
                                 "golden_values": r1.golden.values, "multi_values": r1.golden.multi_values,
                                 "ids_s": r1.ids.timings, "golden_s": r1.golden.timings}), flush=True)

        shuffled = clusters.assign(cluster_id="x" + clusters["cluster_id"])
        r2 = timed("2. same clustering again", lambda: build_profiles(store, cfg, shuffled, "run_2", edges=edges))
        print("   ", json.dumps({"events": r2.ids.events, "created": r2.ids.created, "ids_s": r2.ids.timings,
                                 "golden_s": r2.golden.timings}), flush=True)

        n_new = args.records // 100
        new_table, new_clusters = people_records(n_new, args.records + 1_000_000_000, rng)
        store.load_arrow("source_records", new_table)
        changed = clusters.copy()
        people = changed["cluster_id"].unique()
        k = max(1, len(people) // 1000)
        merge_from, merge_to = people[:k], people[k:2 * k]
        changed["cluster_id"] = changed["cluster_id"].replace(dict(zip(merge_from, merge_to)))
        split = changed["cluster_id"].isin(people[2 * k:3 * k]) & (changed.index % 2 == 1)
        changed.loc[split, "cluster_id"] = changed.loc[split, "cluster_id"] + "_b"
        edges3 = edges if args.no_edges else pd.concat([edges, match_edges(new_clusters, rng)])
        r3 = timed("3. 1% new records, 0.1% merged, 0.1% split",
                   lambda: build_profiles(store, cfg, pd.concat([changed, new_clusters]), "run_3", edges=edges3))
        print("   ", json.dumps({"created": r3.ids.created, "merged": r3.ids.merged, "split": r3.ids.split,
                                 "events": r3.ids.events, "ids_s": r3.ids.timings}), flush=True)
        store.close()
    print(f"load average at the end: {os.getloadavg()[0]:.1f}", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory: {peak:,.0f} MB", flush=True)


if __name__ == "__main__":
    sys.exit(main())
