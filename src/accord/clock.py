"""Time and run ids, the same everywhere: naive UTC timestamps in the store."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def new_run_id() -> str:
    return f"run_{utcnow():%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:6]}"


class Stopwatch:
    """Times consecutive steps of a stage into ``timings`` (seconds per step name)."""

    def __init__(self, timings: dict[str, float], on_lap: Callable[[str], None] | None = None):
        self.timings = timings
        self.on_lap = on_lap
        self.clock = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.timings[step] = round(now - self.clock, 3)
        self.clock = now
        if self.on_lap:
            self.on_lap(step)
