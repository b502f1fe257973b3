"""Fixtures for decisions tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from accord.decisions.engine import DecisionEngine
from accord.decisions.settings import DecisionsSettings
from tests.decisions.helpers import NOW, settings


@pytest.fixture
def engine_for() -> Callable[..., DecisionEngine]:
    """``engine_for(section, now=NOW, seed=1)``: an engine over these settings at a fixed time."""

    def make(section: dict[str, Any] | DecisionsSettings, now: datetime = NOW, seed: int = 1) -> DecisionEngine:
        s = section if isinstance(section, DecisionsSettings) else settings(**section)
        return DecisionEngine(s, seed=seed, clock=lambda: now, refresh_seconds=3600)

    return make

