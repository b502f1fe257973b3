"""`accord demo`: sample data in a fresh folder, then the whole pipeline on the embedded store."""

from __future__ import annotations

import shutil
from pathlib import Path

from rich.console import Console

from accord.config import load_config
from accord.errors import AccordError
from accord.evaluate import evaluate
from accord.pipeline import run_pipeline
from accord.sources.quality import quality_report, render_quality
from accord.store import open_store
from accord.synth import generate

MARKER = ".accord-demo"


def _fresh_folder(directory: Path) -> None:
    """A demo folder is made anew each time; a folder that is not a demo's is never deleted."""
    if directory.exists():
        if not (directory / MARKER).exists() and any(directory.iterdir()):
            raise AccordError(f"{directory} exists and is not an Accord demo folder; choose another --dir")
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MARKER).write_text("created by accord demo; deleted and made anew by the next one\n")


def run_demo(directory: Path, *, people: int, seed: int, console: Console) -> dict[str, object]:
    _fresh_folder(directory)
    console.rule("1. sample data")
    synth = generate(directory, people=people, seed=seed)
    console.print(synth.summary())

    console.rule("2. accord run (embedded DuckDB store)")
    cfg = load_config(directory)
    report = run_pipeline(cfg)
    for r in report["ingest_reports"]:
        line = (f"{r.source:<16} read {r.read:>8,}  new {r.new:>8,}  quarantined {r.quarantined:>5,}  "
                f"{r.seconds:6.2f} s")
        console.print(line if not r.error else f"{r.source:<16} [red]failed[/]: {r.error}", highlight=False)
    if report["status"] != "ok":
        raise AccordError(f"the demo run failed: {', '.join(report['failed_sources'])}")
    identity = report["stages"].get("identity")
    if identity:
        console.print(f"identity: {identity['records']:,} records -> {identity['clusters']:,} customers, "
                      f"{identity['auto_edges']:,} merges, {identity['review_edges']:,} pairs for review, "
                      f"{identity['rejected_edges']:,} refused by constraints", highlight=False)
    traits = report["stages"].get("traits")
    if traits:
        console.print(f"traits: {len(traits.get('traits', [])):,} traits for {traits.get('customers', 0):,} customers "
                      f"from {traits.get('events_attributed', 0):,} attributed events", highlight=False)
    segments = (report["stages"].get("segments") or {}).get("segments") or {}
    for name, seg in segments.items():
        size = seg.get("members", seg.get("size")) if isinstance(seg, dict) else seg
        console.print(f"segment {name}: {size} members", highlight=False)

    if identity:
        console.rule("3. identity resolution against the known truth")
        with open_store(cfg.store_url()) as store:
            scores = evaluate(store, directory / "truth.csv")
        for name in ("pairwise", "bcubed"):
            m = scores[name]
            console.print(f"{name:<9} precision {m['precision']:.4f}  recall {m['recall']:.4f}  f1 {m['f1']:.4f}",
                          highlight=False)
        console.print(f"true people {scores['clusters']['true']:,}, customers found {scores['clusters']['found']:,}, "
                      f"people merged with someone else {scores['over_merged_people']}", highlight=False)

    console.rule("4. data quality")
    with open_store(cfg.store_url()) as store:
        render_quality(quality_report(store, cfg), console)

    console.rule("where to look")
    console.print(f"project:  {directory.resolve()}/accord.yaml")
    console.print(f"store:    {cfg.store_url()}")
    console.print(f"truth:    {directory.resolve()}/truth.csv (which records are the same person)")
    console.print(f"next:     cd {directory} && accord evaluate --truth truth.csv && accord quality")
    return report
