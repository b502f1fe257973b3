"""Identity fixtures."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from accord.identity.model import IdentityModel
from accord.identity.settings import IdentitySettings, default_model_settings
from accord.identity.stage import prepare
from accord.store import Store
from tests.identity.people import population


def _settings() -> IdentitySettings:
    return IdentitySettings(model=default_model_settings().model_copy(update={"u_max_pairs": 1e5}))


@pytest.fixture
def settings() -> IdentitySettings:
    """Default identity settings with fewer u-sampling pairs: test populations are small and each
    store test runs twice."""
    return _settings()


@pytest.fixture(scope="session")
def trained_model() -> dict:
    """A model trained once on the test population (Splink JSON), for tests about what comes after."""
    records, _, _ = population()
    import pandas as pd

    frame = pd.DataFrame(records)
    frame["rid"] = frame["source"] + ":" + frame["record_key"]
    for col in ("emails", "phones"):
        frame[col] = [json.dumps(v) for v in frame[col]]
    std = prepare(frame, "US")
    return IdentityModel(_settings().model).fit(std).model_json_


def save_model(store: Store, settings: IdentitySettings, model_json: dict) -> None:
    """Store ``model_json`` as model version 1, as the identity stage would after training."""
    store.execute(store.type_sql(
        "INSERT INTO identity_models (version, trained_at, run_id, fingerprint, settings, summary) "
        "VALUES (1, ?, 'run_train', ?, CAST(? AS ${JSON}), CAST('{}' AS ${JSON}))"),
        (datetime(2024, 1, 1), settings.model.fingerprint(), json.dumps(model_json)))
