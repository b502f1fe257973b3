"""`accord run` resolves incrementally after the first run; `accord run --full` rebuilds."""

from __future__ import annotations

from accord.config import load_config
from accord.pipeline import run_pipeline
from accord.synth import generate


def test_a_second_run_is_incremental_and_a_full_run_rebuilds(tmp_path):
    generate(tmp_path, people=60, seed=3)
    cfg = load_config(tmp_path / "accord.yaml")
    first = run_pipeline(cfg)["stages"]["identity"]
    second = run_pipeline(cfg)["stages"]
    full = run_pipeline(cfg, full=True)["stages"]["identity"]
    assert first["mode"] == "full" and first["warnings"][0].startswith("full rebuild: no trained model yet")
    assert (second["identity"]["mode"], second["identity"]["changed_records"]) == ("incremental", 0)
    assert (second["profiles"]["ids"]["events"], second["profiles"]["golden"]["customers"]) == (0, 0)
    assert full["mode"] == "full" and full["clusters"] == first["clusters"]


def test_an_incremental_run_reports_the_time_its_commits_took(tmp_path):
    generate(tmp_path, people=30, seed=5)
    cfg = load_config(tmp_path / "accord.yaml")
    run_pipeline(cfg)
    stages = run_pipeline(cfg)["stages"]
    assert stages["identity"]["mode"] == "incremental"
    assert stages["identity"]["timings"]["commit"] >= 0
    assert 0 <= stages["profiles"]["commit_seconds"] <= stages["profiles"]["seconds"]
