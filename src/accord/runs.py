"""Runs: every command that changes the store is a run with an id, a status and a report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from accord.config import ProjectConfig
from accord.clock import new_run_id, utcnow
from accord.store import Store, open_store


@dataclass
class Run:
    store: Store
    run_id: str
    report: dict[str, Any] = field(default_factory=dict)


@contextmanager
def tracked_run(cfg: ProjectConfig, command: str) -> Iterator[Run]:
    """Open the store and record the run: 'running' at start, then 'ok' or 'failed' with the report."""
    store = open_store(cfg.store_url())
    run = Run(store, new_run_id())
    store.execute("INSERT INTO runs (run_id, command, started_at, status) VALUES (?, ?, ?, 'running')",
                  (run.run_id, command, utcnow()))
    status = "failed"
    try:
        yield run
        status = "failed" if run.report.get("failed") else "ok"
    finally:
        store.execute(
            store.type_sql("UPDATE runs SET finished_at = ?, status = ?, report = CAST(? AS ${JSON}) WHERE run_id = ?"),
            (utcnow(), status, json.dumps(run.report, default=str), run.run_id))
        store.close()
