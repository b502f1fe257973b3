"""Identity benchmark: Accord beside bare Splink on FEBRL3, FEBRL4 and generated data.

FEBRL3 (dedupe) and FEBRL4 (linkage) use Splink's documented settings for each
dataset (accord.evaluate.febrl). Bare Splink clusters its predictions with
cluster_pairwise_predictions_at_threshold; Accord clusters the same model's edges
with its constrained clustering (FEBRL4: at most one record per file in a cluster).
Targets: FEBRL4 pairwise F1 >= 0.998, FEBRL3 pairwise F1 >= 0.996.

Generated data (``--people N``, default 100,000): ``accord.synth.generate`` writes
six sources, they are ingested into a fresh DuckDB store, then, each in its own
process (so peak memory is its own):

- accord: ``accord.identity.resolve`` (standardize, rules, train, predict, constrained clustering);
- splink: the same standardized columns, comparisons, blocking rules and training, Splink's
  predict at the review threshold and cluster_pairwise_predictions_at_threshold at the
  auto-merge threshold; no rules, no constraints.

Both are scored against truth.csv. Targets (issue #4): accord pairwise F1 >= 0.97 with
precision >= 0.99, better F1 than splink, fewer people merged with someone else.

    .venv/bin/python bench/bench_identity.py                    # FEBRL and generated (100,000 people)
    .venv/bin/python bench/bench_identity.py --only generated --people 20000

Scale (``--scale N`` people, about 2 records each; issue #4's 1,000,000-record target): the model is
trained once and saved in the store (untimed, as in production, where a trained model serves many
runs); then, each in its own process, Accord's whole resolution with that model (standardize, rules,
predict, constrained clustering, write) is timed beside bare Splink's predict + cluster with the same
model, blocking and records. Target: Accord's wall time / Splink's <= 1.0, peak memory <= 8 GB.

    .venv/bin/python bench/bench_identity.py --scale 500000 --folder bench/out/identity_500k

With a kept ``--folder`` the steps can run apart (``--steps none``: only generate and ingest the
people sources; ``--steps train``; ``--steps splink``; ``--steps accord``): each side's result is
saved there (``scale_accord.json``, ``scale_splink.json``) and the ratio is printed once both exist,
so the timed sides can be re-run alone on a quiet machine. Accord's run leaves the store resolved,
which ``bench_incremental.py --resolved FOLDER`` starts from.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from accord.evaluate.febrl import febrl3, febrl3_settings, febrl4, febrl4_settings
from accord.evaluate.metrics import score_clusters
from accord.identity.clustering import ClusterOptions, cluster_edges
from accord.identity.model import IdentityModel

THRESHOLD = 0.7
TARGETS = {"febrl3": 0.996, "febrl4": 0.998}


def run(name: str, frames, model: IdentityModel, unique=None) -> list[dict]:
    records = pd.concat(frames) if isinstance(frames, list) else frames
    truth = dict(zip(records["rid"], records["person_id"]))
    started = time.perf_counter()
    model.fit(frames)
    edges = model.predict(frames, 0.2)
    trained = time.perf_counter() - started
    linker = model._linker_for(frames)
    bare_started = time.perf_counter()
    predictions = linker.inference.predict(threshold_match_probability=0.2, warning_mode="never")
    bare = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=THRESHOLD).as_pandas_dataframe()
    bare_seconds = time.perf_counter() - bare_started
    bare_clusters = dict(zip(bare["rid"].astype(str), bare["cluster_id"].astype(str)))
    started = time.perf_counter()
    result = cluster_edges(records["rid"], edges.assign(rule_or_model="model", priority=None),
                           ClusterOptions(auto_merge_threshold=THRESHOLD, review_threshold=0.2),
                           unique_values=unique)
    cluster_seconds = time.perf_counter() - started
    rows = []
    for system, clusters, seconds in (("splink", bare_clusters, bare_seconds),
                                      ("accord", result.clusters, cluster_seconds)):
        s = score_clusters(clusters, truth)
        rows.append({"dataset": name, "system": system, "pairwise_p": s["pairwise"]["precision"],
                     "pairwise_r": s["pairwise"]["recall"], "pairwise_f1": s["pairwise"]["f1"],
                     "bcubed_f1": s["bcubed"]["f1"], "true": s["clusters"]["true"],
                     "found": s["clusters"]["found"], "over_merged_people": s["over_merged_people"],
                     "train_predict_s": round(trained, 2), "cluster_s": round(seconds, 2)})
    return rows


def febrl_rows() -> list[dict]:
    rows = []
    df = febrl3()
    rows += run("febrl3", df, IdentityModel(febrl3_settings()))
    a, b = febrl4()
    one_per_file = {r: {f"file:{i}": r} for i, f in enumerate((a, b)) for r in f["rid"]}
    rows += run("febrl4", [a, b], IdentityModel(febrl4_settings(), link_type="link_only"), one_per_file)
    return rows


# --- generated data ---------------------------------------------------------------------------

def prepare_generated(people: int, seed: int, folder: Path) -> dict:
    """Generate the sources and ingest them into a fresh store in ``folder``."""
    from accord.config import load_config
    from accord.sources import ingest
    from accord.store import open_store
    from accord.synth import generate

    started = time.perf_counter()
    generate(folder, people=people, seed=seed)
    generated = time.perf_counter() - started
    cfg = load_config(folder / "accord.yaml")
    store = open_store(cfg.store_url())
    started = time.perf_counter()
    # Identity reads people records only: the event sources (most of the bytes at scale) stay out.
    people_sources = [s.name for s in cfg.sources if s.kind == "people"]
    reports = ingest(store, cfg, people_sources, run_id="bench_ingest")
    failed = [r.source for r in reports if r.error]
    if failed:
        raise SystemExit(f"ingest failed for {failed}")
    records = store.scalar("SELECT COUNT(*) FROM source_records WHERE deleted_at IS NULL")
    store.close()
    return {"generate_s": round(generated, 1), "ingest_s": round(time.perf_counter() - started, 1),
            "people_records": int(records)}


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def system_accord(folder: Path) -> dict:
    """Accord's identity stage over the store, clusters scored against truth.csv."""
    from accord.config import load_config
    from accord.evaluate import evaluate
    from accord.identity import resolve
    from accord.store import open_store

    cfg = load_config(folder / "accord.yaml")
    store = open_store(cfg.store_url())
    started = time.perf_counter()
    report = resolve(store, cfg, "bench_accord", retrain=True)
    seconds = time.perf_counter() - started
    scores = evaluate(store, folder / "truth.csv")
    return {**_scored(scores), "wall_s": round(seconds, 1), "peak_mb": round(_peak_rss_mb()),
            "timings": report.timings}


def system_splink(folder: Path) -> dict:
    """Bare Splink: the same standardized columns, comparisons, blocking, training and thresholds."""
    from accord.config import load_config
    from accord.identity.settings import identity_settings
    from accord.identity.stage import load_records, prepare
    from accord.store import open_store

    cfg = load_config(folder / "accord.yaml")
    settings = identity_settings(cfg.identity)
    store = open_store(cfg.store_url())
    started = time.perf_counter()
    std = prepare(load_records(store), cfg.identity.default_region)
    timings = {"standardize": time.perf_counter() - started}
    lap = time.perf_counter()
    model = IdentityModel(settings.model).fit(std)
    timings["train"] = time.perf_counter() - lap
    return _splink_predict_and_cluster(model, std, cfg, folder, started, timings)


def scale_accord(folder: Path) -> dict:
    """Accord's identity stage with the saved model: standardize, rules, predict, cluster, write."""
    from accord.config import load_config
    from accord.evaluate import evaluate
    from accord.identity import resolve
    from accord.store import open_store

    cfg = load_config(folder / "accord.yaml")
    store = open_store(cfg.store_url())
    started = time.perf_counter()
    report = resolve(store, cfg, "bench_scale_accord")
    seconds = time.perf_counter() - started
    if report.model_trained:
        raise SystemExit("the saved model was not used: train it first (bench does) and keep accord.yaml unchanged")
    scores = evaluate(store, folder / "truth.csv")
    return {**_scored(scores), "wall_s": round(seconds, 1), "peak_mb": round(_peak_rss_mb()),
            "timings": report.timings}


def scale_splink(folder: Path) -> dict:
    """Bare Splink's predict + cluster with Accord's saved model on the same standardized records
    (standardizing is not timed: Splink does not do it)."""
    from accord.config import load_config
    from accord.identity.settings import identity_settings
    from accord.identity.stage import latest_model, load_records, prepare
    from accord.store import open_store

    cfg = load_config(folder / "accord.yaml")
    settings = identity_settings(cfg.identity)
    store = open_store(cfg.store_url())
    saved = latest_model(store)
    if saved is None or saved[1] != settings.model.fingerprint():
        raise SystemExit("no saved model fits accord.yaml: train it first (bench does)")
    model = IdentityModel.from_json(settings.model, saved[2])
    std = prepare(load_records(store), cfg.identity.default_region)
    store.close()
    return _splink_predict_and_cluster(model, std, cfg, folder, time.perf_counter(), {})


def train_once(folder: Path) -> dict:
    from accord.config import load_config
    from accord.identity import resolve
    from accord.store import open_store

    cfg = load_config(folder / "accord.yaml")
    store = open_store(cfg.store_url())
    started = time.perf_counter()
    report = resolve(store, cfg, "bench_scale_train", retrain=True)
    return {"train_run_s": round(time.perf_counter() - started, 1), "peak_mb": round(_peak_rss_mb()),
            "timings": report.timings}


SCALE_STEPS = ("train", "accord", "splink")


def scale_rows(people: int, seed: int, folder: Path | None, steps: tuple[str, ...] = SCALE_STEPS) -> list[dict]:
    """``steps``: which of train, accord, splink to run (a kept ``--folder`` lets them run apart:
    prepare once, train once, then time each side when the machine is quiet)."""
    with tempfile.TemporaryDirectory(prefix="accord-bench-") as tmp:
        folder = folder or Path(tmp) / "synth"
        if not (folder / "truth.csv").exists():
            prep = prepare_generated(people, seed, folder)
            print(f"generated {people:,} people in {prep['generate_s']} s; ingested "
                  f"{prep['people_records']:,} people records in {prep['ingest_s']} s", flush=True)
        rows = []
        for system in [s if s == "train" else f"scale_{s}" for s in SCALE_STEPS if s in steps]:
            out = subprocess.run([sys.executable, __file__, "--system", system, "--folder", str(folder)],
                                 check=True, capture_output=True, text=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{system}: {result}", flush=True)
            # Kept beside the data: the two sides may run apart (--steps), the ratio needs both.
            (folder / f"{system}.json").write_text(json.dumps(result, default=float))
        for system in ("scale_accord", "scale_splink"):
            saved = folder / f"{system}.json"
            if saved.exists():
                result = json.loads(saved.read_text())
                result.pop("timings", None)
                rows.append({"dataset": f"scale_{people}", "system": system.removeprefix("scale_"), **result})
        if len(rows) < 2:
            return rows
        accord, splink = rows[0]["wall_s"], rows[1]["wall_s"]
        print(f"scale {people:,} people: accord end to end {accord} s / splink predict+cluster {splink} s "
              f"= ratio {accord / splink:.2f} (target <= 1.0); peak {rows[0]['peak_mb']} MB (target <= 8192)")
        return rows


def _splink_predict_and_cluster(model: IdentityModel, std: pd.DataFrame, cfg, folder: Path, started: float,
                                timings: dict[str, float]) -> dict:
    """Bare Splink's predict at the review threshold and clustering at the auto-merge threshold, scored
    against truth.csv; wall time counts from ``started``. The peer runs lean, as Accord's scoring does:
    its predictions keep neither the compared values nor the per-comparison weights (the saved model
    keeps them for ``accord explain``; Splink's default keeps the compared values)."""
    from accord.evaluate import read_truth
    from accord.identity.model import splink_warnings

    lap = time.perf_counter()
    with splink_warnings():
        linker = model._new_linker(std, model._scoring_settings())
        predictions = linker.inference.predict(threshold_match_probability=cfg.identity.review_threshold,
                                               warning_mode="never")
        timings["predict"] = time.perf_counter() - lap
        lap = time.perf_counter()
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_probability=cfg.identity.auto_merge_threshold).as_pandas_dataframe()
    timings["cluster"] = time.perf_counter() - lap
    seconds = time.perf_counter() - started
    predicted = dict(zip(clusters["rid"].astype(str), clusters["cluster_id"].astype(str)))
    scores = score_clusters(predicted, read_truth(folder / "truth.csv"))
    return {**_scored(scores), "wall_s": round(seconds, 1), "peak_mb": round(_peak_rss_mb()),
            "timings": {k: round(v, 1) for k, v in timings.items()}}


def _scored(scores: dict) -> dict:
    return {"pairwise_p": scores["pairwise"]["precision"], "pairwise_r": scores["pairwise"]["recall"],
            "pairwise_f1": scores["pairwise"]["f1"], "bcubed_f1": scores["bcubed"]["f1"],
            "true": scores["clusters"]["true"], "found": scores["clusters"]["found"],
            "over_merged_people": scores["over_merged_people"]}


def generated_rows(people: int, seed: int, folder: Path | None) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="accord-bench-") as tmp:
        folder = folder or Path(tmp) / "synth"
        if not (folder / "truth.csv").exists():
            prep = prepare_generated(people, seed, folder)
            print(f"generated {people:,} people in {prep['generate_s']} s; ingested "
                  f"{prep['people_records']:,} people records in {prep['ingest_s']} s", flush=True)
        rows = []
        for system in ("accord", "splink"):
            # One process per system: its peak memory is its own, and caches do not carry over.
            out = subprocess.run([sys.executable, __file__, "--system", system, "--folder", str(folder)],
                                 check=True, capture_output=True, text=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{system}: timings {result.pop('timings')}", flush=True)
            rows.append({"dataset": f"generated_{people}", "system": system, **result})
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["febrl", "generated"])
    parser.add_argument("--people", type=int, default=100_000, help="generated people (default 100,000)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--folder", type=Path, help="reuse (or keep) the generated project here")
    parser.add_argument("--scale", type=int, metavar="PEOPLE",
                        help="time end-to-end resolution with a saved model beside Splink's predict + cluster")
    parser.add_argument("--steps", default=",".join(SCALE_STEPS),
                        help="--scale: comma-separated steps among train, accord, splink (default: all; "
                             "none: only generate and ingest into --folder)")
    parser.add_argument("--system", choices=sorted(SYSTEMS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.system:
        print(json.dumps(SYSTEMS[args.system](args.folder), default=float))
        return
    if args.scale:
        steps = tuple(s.strip() for s in args.steps.split(",") if s.strip() and s.strip() != "none")
        unknown = set(steps) - set(SCALE_STEPS)
        if unknown:
            parser.error(f"--steps: unknown {', '.join(sorted(unknown))}; choose among {', '.join(SCALE_STEPS)}")
        rows = scale_rows(args.scale, args.seed, args.folder, steps)
        if not rows:
            return
        pd.set_option("display.width", 250)
        print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        return
    rows = []
    if args.only != "generated":
        rows += febrl_rows()
    if args.only != "febrl":
        rows += generated_rows(args.people, args.seed, args.folder)
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 250)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for name, target in TARGETS.items():
        if name in set(table.dataset):
            got = table[(table.dataset == name) & (table.system == "accord")]["pairwise_f1"].iloc[0]
            print(f"{name}: accord pairwise F1 {got:.4f} {'>=' if got >= target else '<'} target {target}")


SYSTEMS = {"accord": system_accord, "splink": system_splink, "train": train_once,
           "scale_accord": scale_accord, "scale_splink": scale_splink}

if __name__ == "__main__":
    main()
