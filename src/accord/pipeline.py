"""`accord run`: every stage in order, each reading what changed and returning a report."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from accord.config import ProjectConfig
from accord.runs import tracked_run
from accord.sources import ingest


def run_pipeline(cfg: ProjectConfig, *, full: bool = False,
                 progress: Callable[[str], Callable[[int, int], None]] | None = None) -> dict[str, Any]:
    """Run ingest and every later stage; stop at the first stage that fails."""
    with tracked_run(cfg, "run --full" if full else "run") as run:
        started = time.perf_counter()
        reports = ingest(run.store, cfg, run_id=run.run_id, progress=progress)
        run.report["ingest"] = [r.as_dict() for r in reports]
        failed = [r.source for r in reports if r.error]
        run.report["failed"] = bool(failed)
        stages: dict[str, Any] = {}
        run.report["stages"] = stages
        if not failed and any(s.kind == "people" for s in cfg.sources):
            from accord.identity import resolve
            from accord.identity.incremental import resolve_changes

            # Incremental unless --full: only new, changed and removed records, and what links to them.
            identity = (resolve(run.store, cfg, run.run_id) if full
                        else resolve_changes(run.store, cfg, run.run_id))
            stages["identity"] = identity.as_dict()

            from accord.profiles import build_profiles

            profiles = build_profiles(run.store, cfg, None, run.run_id, scope=identity.scope)
            stages["profiles"] = profiles.as_dict()

            from accord.privacy.stage import run_privacy

            stages["privacy"] = run_privacy(run.store, cfg, run.run_id).as_dict()  # consent, then retention

            # Lifetime value and churn risk; before the computed traits, whose health score reads churn_risk.
            from accord.traits.model_traits import compute_model_traits

            stages["model_traits"] = compute_model_traits(run.store, cfg, run.run_id).as_dict()

            from accord.traits import compute_traits

            stages["traits"] = compute_traits(run.store, cfg, run.run_id).as_dict()

            from accord.segments.batch import evaluate_segments

            stages["segments"] = evaluate_segments(run.store, cfg, run.run_id).as_dict()

            from accord.decisions.stage import run_decisions_stage

            stages["decisions"] = run_decisions_stage(run.store, cfg, run.run_id).as_dict()  # retrain on schedule
        # The write-ahead log holds the run's commits (store.backend.DUCKDB_CHECKPOINT_THRESHOLD): written
        # into the file once, here, so the next run starts from an empty log.
        checkpointing = time.perf_counter()
        run.store.checkpoint()
        run.report["checkpoint_seconds"] = round(time.perf_counter() - checkpointing, 3)
        run.report["seconds"] = round(time.perf_counter() - started, 3)
        run_id = run.run_id
    return {
        "run_id": run_id,
        "status": "failed" if failed else "ok",
        "failed_sources": failed,
        "ingest_reports": reports,
        "ingest": [r.as_dict() for r in reports],
        "stages": stages,
        "seconds": run.report["seconds"],
        "checkpoint_seconds": run.report["checkpoint_seconds"],
    }
