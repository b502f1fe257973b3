"""Experiment groups by hashed unit id: the same customer always lands in the same group."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from accord.decisions.settings import ExperimentSpec


def bucket(experiment: str, unit: str) -> float:
    """A number in [0, 1) fixed by the experiment's name and the unit (customer id or anonymous id)."""
    digest = hashlib.sha256(f"{experiment}\x1f{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(experiment: ExperimentSpec, unit: str) -> str:
    """The unit's group: 'holdout' for the first ``holdout`` share of buckets, else a variant by weight."""
    b = bucket(experiment.name, unit)
    groups = experiment.groups()
    if experiment.holdout and b < experiment.holdout:
        return "holdout"
    edge = experiment.holdout
    names = [n for n in groups if n != "holdout"]
    for name in names:
        edge += groups[name]
        if b < edge:
            return name
    return names[-1]  # float rounding at the very top


def running_experiment(experiments: Sequence[ExperimentSpec], placement: str | None) -> ExperimentSpec | None:
    """The first active experiment that runs in this placement."""
    for e in experiments:
        if e.active and (not e.placements or (placement in e.placements)):
            return e
    return None
