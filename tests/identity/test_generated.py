"""Issue #4 on Accord's own generated data, small enough for the test suite.

bench/bench_identity.py measures the same at 20,000-100,000 people beside bare Splink.
"""

import pytest

from accord.config import load_config
from accord.evaluate import evaluate
from accord.identity.settings import IdentitySettings, default_model_settings
from accord.identity.stage import resolve
from accord.sources import ingest
from accord.store import open_store
from accord.synth import generate


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth")
    generate(folder, people=600, seed=5)
    cfg = load_config(folder / "accord.yaml")
    store = open_store(f"duckdb:///{folder / 'accord.duckdb'}")
    ingest(store, cfg, names=["crm", "shop", "pos", "support"], run_id="run_1")
    settings = IdentitySettings(model=default_model_settings().model_copy(update={"u_max_pairs": 2e5}))
    report = resolve(store, cfg, "run_1", settings=settings)
    result = evaluate(store, folder / "truth.csv")
    store.close()
    return report, result


@pytest.mark.slow
def test_generated_people_resolve_with_pairwise_f1_above_0_95_and_precision_above_0_99(scores):
    _, result = scores
    assert result["pairwise"]["precision"] >= 0.99
    assert result["pairwise"]["f1"] >= 0.95


@pytest.mark.slow
def test_generated_households_twins_and_namesakes_are_rarely_merged(scores):
    _, result = scores
    assert result["over_merged_people"] <= 0.01 * result["clusters"]["true"]
