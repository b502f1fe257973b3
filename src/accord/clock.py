"""Time and run ids, the same everywhere: naive UTC timestamps in the store."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def new_run_id() -> str:
    return f"run_{utcnow():%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:6]}"
