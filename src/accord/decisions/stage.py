"""The decisions stage of ``accord run``: retrain the propensity model when the schedule says so."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from accord.clock import utcnow
from accord.config import ProjectConfig
from accord.decisions.training import retrain_due, train_model
from accord.store import Store


@dataclass
class DecisionsStageReport:
    run_id: str
    retrain_due: bool
    training: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "retrain_due": self.retrain_due, "training": self.training}


def run_decisions_stage(store: Store, cfg: ProjectConfig, run_id: str, now: datetime | None = None
                        ) -> DecisionsStageReport:
    """Train a new model version when none exists or the active one is older than model.retrain_hours
    (and there is enough feedback; otherwise the report says why not)."""
    now = now or utcnow()
    due = retrain_due(store, cfg.decisions, now)
    if not due:
        return DecisionsStageReport(run_id, False)
    return DecisionsStageReport(run_id, True, train_model(store, cfg.decisions, now).as_dict())
