"""Incremental identity benchmark: new records against a resolved store, beside a full rebuild.

    .venv/bin/python bench/bench_incremental.py [--people N] [--new 1000] [--folder DIR] [--no-full-check]
                                                [--resolved DIR] [--steps incremental,full-check]

Generated data (``accord.synth``, N people, default 500,000: about 1,000,000 people records in
four sources). The base is built once into ``--folder`` (default ``bench/out/incremental_<N>``) and
reused: the people sources are ingested, ``--new`` records plus 1% are held back, and the rest is
resolved in full (model trained) with profiles (``--resolved DIR`` starts instead from a store
resolved in full elsewhere, e.g. bench_identity's ``--scale`` folder, and takes the held-back
records out with an incremental run). Each run then works on a copy of the base:

1. re-run on unchanged data: identity changes and customer ids changed (target: 0);
2. ``--new`` held-back records arrive: ``accord run``'s incremental identity + profiles (ids, audit,
   golden records and identifier index of the customers touched), timed together with their commits
   (target: 1,000 new records against 1,000,000 in <= 5 s). Not in that figure, each timed apart:
   moving the rows into source_records (it stands for the ingest) and the checkpoint that ends
   ``accord run`` (``Store.checkpoint``: the run's write-ahead log written into the database file);
3. 1% more records arrive: the share of existing customers that keep their id (target: >= 99%);
4. full rebuild with the same model (``--no-full-check`` skips it): the share of step 2's new
   records, and of all records, whose cluster after the incremental runs equals the rebuild's
   (target: >= 99.9%). ``--steps incremental`` keeps the store steps 1-3 leave (``work.duckdb``),
   and ``--steps full-check`` runs step 4 on it later, e.g. under its own hold of a benchmark lock.

Prints wall and CPU seconds, the machine's load average and this process's peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

from accord.config import load_config
from accord.identity.incremental import resolve_changes
from accord.identity.stage import resolve
from accord.profiles import build_profiles
from accord.sources import ingest
from accord.store import open_store
from accord.synth import generate

SEED = 11


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label: str, fn):
    started, cpu = time.perf_counter(), cpu_seconds()
    result = fn()
    wall = time.perf_counter() - started
    print(f"{label}: {wall:.2f} s wall, {cpu_seconds() - cpu:.2f} s CPU (load {os.getloadavg()[0]:.1f})", flush=True)
    return result, wall


def build_base(folder: Path, people: int, new: int, resolved: Path | None = None) -> None:
    """Generate, ingest the people sources, hold back ``new`` records and 1%, resolve the rest.

    ``resolved``: a store resolved in full already (accord.yaml beside it), e.g. bench_identity's
    --scale folder: copied, the held-back records are taken out by an incremental run."""
    if resolved is not None:
        shutil.copyfile(resolved / "accord.yaml", folder / "accord.yaml")
        timed("copy the resolved store", lambda: shutil.copyfile(resolved / "accord.duckdb", folder / "base.duckdb"))
    elif not (folder / "accord.yaml").exists():
        timed(f"generate {people:,} people", lambda: generate(folder, people=people, seed=SEED))
    cfg = load_config(folder / "accord.yaml")
    store = open_store(f"duckdb:///{folder / 'base.duckdb'}")
    if resolved is None:
        names = [s.name for s in cfg.sources if s.kind == "people"]
        timed("ingest people sources", lambda: ingest(store, cfg, names, run_id="bench_ingest"))
    total = int(store.scalar("SELECT COUNT(*) FROM source_records"))
    held = new + total // 100
    # A fixed pseudo-random sample: the first `new` are the new batch, the rest the 1% batch.
    store.execute(f"""
        CREATE TABLE bench_held AS
        SELECT *, CASE WHEN rn <= {new} THEN 'new' ELSE 'one_percent' END AS batch FROM (
            SELECT r.*, ROW_NUMBER() OVER (ORDER BY hash(source || ':' || record_key || '{SEED}')) AS rn
            FROM source_records r) x
        WHERE rn <= {held}""")
    store.execute("DELETE FROM source_records WHERE source || ':' || record_key IN "
                  "(SELECT source || ':' || record_key FROM bench_held)")
    print(f"{total:,} people records; {held:,} held back ({new:,} new, {held - new:,} = 1%)", flush=True)
    if resolved is None:
        report, _ = timed("base: full resolve (trains the model)", lambda: resolve(store, cfg, "bench_base"))
    else:
        report, _ = timed("base: incremental run taking the held-back records out",
                          lambda: resolve_changes(store, cfg, "bench_base"))
    print("   ", json.dumps({"mode": report.mode, "timings": report.timings, "warnings": report.warnings[:3]}),
          flush=True)
    profiles, _ = timed("base: profiles, first build (ids, audit, golden records)",
                        lambda: build_profiles(store, cfg, None, "bench_base"))
    print("   ", json.dumps({"customers": profiles.ids.customers, "ids": profiles.ids.timings,
                             "golden": profiles.golden.timings, "golden_s": sum(profiles.golden.timings.values())}),
          flush=True)
    store.close()


def arrive(store, batch: str) -> int:
    """Move a held-back batch into source_records, as an ingest of new rows would."""
    cols = [r[0] for r in store.fetchall(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'source_records' "
        "ORDER BY ordinal_position")]
    names = ", ".join(cols)
    # As in `accord run`, the ingest's rows stay in the write-ahead log until the run's closing checkpoint.
    timed("   the batch moved into source_records (stands for the ingest; not timed in the figure)",
          lambda: store.execute(f"INSERT INTO source_records ({names}) SELECT {names} FROM bench_held "
                                "WHERE batch = ?", (batch,)))
    return int(store.scalar("SELECT COUNT(*) FROM bench_held WHERE batch = ?", (batch,)))


def wal_mb(store) -> float:
    """The store's write-ahead log, MB: what the next checkpoint writes to the file (a commit past the
    store's checkpoint_threshold, store.backend.DUCKDB_CHECKPOINT_THRESHOLD, checkpoints on its own)."""
    wal = Path(f"{store.path}.wal")
    return wal.stat().st_size / 1e6 if wal.exists() else 0.0


def assignments(store) -> dict[str, str]:
    return dict(store.fetchall("SELECT source || ':' || record_key, customer_id FROM record_customer"))


def clusters(store) -> dict[str, str]:
    return dict(store.fetchall("SELECT source || ':' || record_key, cluster_id FROM identity"))


def run_step(store, cfg, run_id: str, label: str):
    """`accord run`'s identity and profiles stages (ids, audit, golden records and the identifier index
    of the touched customers), as the pipeline calls them, each timed, and their sum; then the run's
    closing checkpoint, timed apart."""
    print(label, flush=True)
    identity, wall_identity = timed("   identity (incremental)", lambda: resolve_changes(store, cfg, run_id))
    profiles, wall_profiles = timed("   profiles: ids, golden records and identifier index of the touched customers",
                                    lambda: build_profiles(store, cfg, None, run_id, scope=identity.scope))
    wall = wall_identity + wall_profiles
    print(f"   identity + profiles: {wall:.2f} s wall (load {os.getloadavg()[0]:.1f}); write-ahead log now "
          f"{wal_mb(store):.1f} MB", flush=True)
    _, wall_checkpoint = timed("   the run's closing checkpoint (not in the identity + profiles figure)",
                               store.checkpoint)
    print("    identity", json.dumps({k: identity.as_dict()[k] for k in (
        "mode", "records", "changed_records", "candidate_records", "affected_records", "model_edges", "rule_edges",
        "timings")}),
        flush=True)
    print("    profiles", json.dumps({"seconds": profiles.seconds, "commit": profiles.commit_seconds,
                                      "ids": profiles.ids.timings,
                                      "golden_customers": profiles.golden.customers,
                                      "golden": profiles.golden.timings, "identifiers": profiles.identifiers.timings}),
          flush=True)
    return identity, profiles, wall, wall_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=500_000)
    parser.add_argument("--new", type=int, default=1000)
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--no-full-check", action="store_true", help="Skip the full rebuild at the end.")
    parser.add_argument("--resolved", type=Path, help="Build the base from this folder's store, resolved in full "
                        "already (accord.duckdb and accord.yaml), instead of generating and resolving.")
    parser.add_argument("--steps", default="incremental,full-check",
                        help="incremental (steps 1-3 on a fresh copy of the base; the copy is kept when the "
                        "full check is not among the steps) and/or full-check (step 4 on that copy).")
    args = parser.parse_args()
    steps = set(args.steps.split(","))
    if args.no_full_check:
        steps.discard("full-check")
    folder = args.folder or Path("bench/out") / f"incremental_{args.people}"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"{args.people:,} people, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    if not (folder / "base.duckdb").exists():
        build_base(folder, args.people, args.new, args.resolved)
    work = folder / "work.duckdb"
    cfg = load_config(folder / "accord.yaml")
    step2 = None
    if "incremental" in steps:
        shutil.copyfile(folder / "base.duckdb", work)
        store = open_store(f"duckdb:///{work}")
        step2 = incremental_steps(store, cfg)
        store.close()
    if "full-check" in steps:
        store = open_store(f"duckdb:///{work}")
        full_check(store, cfg)
        store.close()
        work.unlink()
    if step2 is not None:
        wall_new, wall_checkpoint = step2
        print(f"2. identity + profiles took {wall_new:.2f} s wall (target <= 5 s): both stages and their commits; "
              f"not in it: the ingest (the rows moved in) and the run's closing checkpoint, {wall_checkpoint:.2f} s "
              f"(together {wall_new + wall_checkpoint:.2f} s); load average at the end {os.getloadavg()[0]:.1f}; "
              f"peak memory {peak_mb():,.0f} MB", flush=True)


def incremental_steps(store, cfg) -> tuple[float, float]:
    """Steps 1-3; returns step 2's wall seconds: identity + profiles, and the closing checkpoint."""
    resolved = int(store.scalar("SELECT COUNT(*) FROM identity"))
    print(f"base: {resolved:,} resolved records", flush=True)

    before = assignments(store)
    identity, profiles, _, _ = run_step(store, cfg, "bench_same", "1. re-run on unchanged data")
    after = assignments(store)
    changed_ids = sum(after.get(r) != c for r, c in before.items())
    print(f"   ids changed: {changed_ids} (target 0); audit events: {profiles.ids.events}", flush=True)

    n_new = arrive(store, "new")
    _, _, wall_new, wall_checkpoint = run_step(store, cfg, "bench_new",
                                               f"2. {n_new:,} new records against {resolved:,}")

    before = assignments(store)
    by_customer: dict[str, set[str]] = {}
    for r, c in before.items():
        by_customer.setdefault(c, set()).add(r)
    n_more = arrive(store, "one_percent")
    run_step(store, cfg, "bench_more", f"3. {n_more:,} more records (1%)")
    after = assignments(store)
    kept = sum(all(after.get(r) == c for r in rs) for c, rs in by_customer.items())
    print(f"   existing customers keeping their id: {kept:,} / {len(by_customer):,} = "
          f"{kept / len(by_customer):.4%} (target >= 99%)", flush=True)
    return wall_new, wall_checkpoint


def full_check(store, cfg) -> None:
    """Step 4: a full rebuild of the store the incremental steps left, compared record by record."""
    new_rids = {r for (r,) in store.fetchall("SELECT source || ':' || record_key FROM bench_held WHERE batch = 'new'")}
    incremental_all = clusters(store)
    incremental_new = {r: c for r, c in incremental_all.items() if r in new_rids}
    timed("4. full rebuild, same model", lambda: resolve(store, cfg, "bench_full"))
    full = clusters(store)
    agree_new = sum(full.get(r) == c for r, c in incremental_new.items())
    agree_all = sum(full.get(r) == c for r, c in incremental_all.items())
    print(f"   step 2's new records agreeing with the rebuild: {agree_new:,} / {len(incremental_new):,} = "
          f"{agree_new / max(len(incremental_new), 1):.4%}; all records: {agree_all:,} / {len(full):,} = "
          f"{agree_all / max(len(full), 1):.4%} (target >= 99.9%)", flush=True)

if __name__ == "__main__":
    sys.exit(main())
