"""Ingest benchmark: 1,000,000 CSV rows of 15 columns into DuckDB, side by side with DuckDB's own read_csv.

    .venv/bin/python bench/bench_ingest.py [--rows N]

Each measurement runs in its own process so its peak memory (ru_maxrss) is its own.
Targets (issue #2): first ingest <= 30 s with peak memory <= 2 GB; re-ingest with 1% changed <= 15 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "ingest"

CONFIG = """\
store: duckdb:///accord.duckdb
sources:
  - name: crm
    format: csv
    path: people.csv
    primary_key: id
    snapshot: full
    fields:
      given_name: first_name
      family_name: {column: last_name, transforms: [trim]}
      emails: [email]
      phones: [phone]
      street: street
      city: city
      postcode: {column: postcode, transforms: [trim, upper]}
      country: country
      date_of_birth: dob
      company: company
      created_at: created_at
      updated_at: updated_at
      external_ids: {crm_id: id}
      consent: {email_marketing: opt_in}
"""


def make_rows(n: int, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    first = np.array(["Ann", "Bob", "Carla", "Dev", "Elif", "Femi", "Greta", "Hiro", "Ines", "Jon"])
    last = np.array(["Lee", "Smith", "Garcia", "Patel", "Yilmaz", "Okafor", "Berg", "Sato", "Silva", "Doe"])
    cities = np.array(["London", "Leeds", "Paris", "Lyon", "Berlin", "Munich", "Boston", "Austin"])
    ids = np.arange(1, n + 1)
    f = first[rng.integers(0, len(first), n)]
    la = last[rng.integers(0, len(last), n)]
    idx = ids.astype(str)
    return pa.table({
        "id": idx,
        "first_name": f,
        "last_name": la,
        "email": np.char.add(np.char.add(np.char.lower(f), idx), "@example.com"),
        "phone": np.char.add("+4420794", np.char.zfill(rng.integers(0, 99999, n).astype(str), 5)),
        "street": np.char.add(rng.integers(1, 300, n).astype(str), " High Street"),
        "city": cities[rng.integers(0, len(cities), n)],
        "postcode": np.char.add("SW1A ", rng.integers(1, 9, n).astype(str)),
        "country": np.full(n, "GB"),
        "dob": np.char.add("19", np.char.add(rng.integers(50, 99, n).astype(str), "-03-07")),
        "company": np.full(n, ""),
        "created_at": np.full(n, "2024-01-02T03:04:05Z"),
        "updated_at": np.full(n, "2024-06-01T00:00:00Z"),
        "opt_in": np.where(rng.random(n) < 0.6, "true", "false"),
        "notes": np.full(n, "customer since 2024"),
    })


def in_child(code: str, cwd: Path) -> dict[str, float]:
    """Run code in a fresh Python; it sets `seconds`; return seconds and peak RSS in MB."""
    wrapper = textwrap.dedent("""
        import json, resource, time
        t0 = time.perf_counter()
        {code}
        seconds = time.perf_counter() - t0
        print(json.dumps({{"seconds": seconds,
                           "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
    """).format(code=textwrap.dedent(code).strip())
    out = subprocess.run([sys.executable, "-c", wrapper], cwd=cwd, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"benchmark step failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


ACCORD_INGEST = """
from accord.config import load_config
from accord.store import open_store
from accord.sources import ingest
cfg = load_config(".")
store = open_store(cfg.store_url())
reports = ingest(store, cfg)
assert not reports[0].error, reports[0].error
store.close()
"""

DUCKDB_FLOOR = """
import duckdb
con = duckdb.connect("floor.duckdb")
con.execute("CREATE OR REPLACE TABLE t AS SELECT * FROM read_csv('people.csv', all_varchar = true)")
con.close()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    for f in OUT.glob("*.duckdb*"):
        f.unlink()
    table = make_rows(args.rows)
    pacsv.write_csv(table, OUT / "people.csv")
    (OUT / "accord.yaml").write_text(CONFIG)
    size_mb = (OUT / "people.csv").stat().st_size / 1e6

    floor = in_child(DUCKDB_FLOOR, OUT)
    first = in_child(ACCORD_INGEST, OUT)

    # 1% of rows change one value.
    changed = table.to_pandas()
    pick = np.random.default_rng(2).choice(args.rows, size=args.rows // 100, replace=False)
    changed.loc[pick, "city"] = "Glasgow"
    pacsv.write_csv(pa.Table.from_pandas(changed, preserve_index=False), OUT / "people.csv")
    again = in_child(ACCORD_INGEST, OUT)

    machine = f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    result = {
        "rows": args.rows, "csv_mb": round(size_mb, 1), "machine": machine,
        "duckdb_read_csv_s": round(floor["seconds"], 2), "duckdb_peak_mb": round(floor["peak_mb"]),
        "accord_ingest_s": round(first["seconds"], 2), "accord_peak_mb": round(first["peak_mb"]),
        "ratio_vs_duckdb": round(first["seconds"] / floor["seconds"], 1),
        "reingest_1pct_changed_s": round(again["seconds"], 2), "reingest_peak_mb": round(again["peak_mb"]),
    }
    print(json.dumps(result, indent=2))
    print(f"| Ingest {args.rows:,} CSV rows x 15 columns (DuckDB store) | {result['accord_ingest_s']} s, "
          f"peak {result['accord_peak_mb']} MB | DuckDB read_csv: {result['duckdb_read_csv_s']} s "
          f"(ratio {result['ratio_vs_duckdb']}) | <= 30 s, <= 2 GB | {machine} |")
    print(f"| Re-ingest with 1% changed | {result['reingest_1pct_changed_s']} s, peak {result['reingest_peak_mb']} MB "
          f"| | <= 15 s | {machine} |")


if __name__ == "__main__":
    main()
