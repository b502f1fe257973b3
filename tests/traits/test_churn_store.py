"""The model-traits stage on the store (DuckDB and PostgreSQL): traits written, models versioned,
churn risk that tells stopped customers from active ones, and honest skips when history is short."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accord.config import parse_config
from accord.store.backend import Store
from accord.traits.model_traits import (
    compute_model_traits,
    customer_model_traits,
    latest_model,
    load_churn_model,
)

from .model_history import History, write_history

CONFIG = """
clv:
  horizons: [90d, 365d]
churn:
  window_days: 60
  lookback_days: 120
  snapshots: 4
  min_rows: 50
"""


@pytest.fixture
def history(store: Store) -> History:
    return write_history(store)


def _traits(store: Store, name: str) -> dict[str, float | str]:
    return {c: (t if t is not None else v) for c, v, t in store.fetchall(
        "SELECT customer_id, value_num, value_text FROM customer_traits WHERE name = ?", [name])}


def test_stage_fits_both_models_and_writes_every_trait(store: Store, history: History) -> None:
    report = compute_model_traits(store, parse_config(CONFIG), "run-1")
    assert (report.clv["status"], report.clv["version"]) == ("fitted", 1)
    assert (report.churn["status"], report.churn["version"]) == ("trained", 1)
    names = {r[0] for r in store.fetchall("SELECT DISTINCT name FROM customer_traits")}
    assert names == {"p_alive", "clv_expected_purchases_90d", "clv_value_90d", "clv_expected_purchases_365d",
                     "clv_value_365d", "churn_risk", "churn_reasons"}
    # Every customer bought at least once, so every customer has lifetime-value traits.
    assert set(_traits(store, "clv_value_365d")) == set(history.customers)
    assert all(0 <= p <= 1 for p in _traits(store, "p_alive").values())
    assert report.traits_written == store.scalar("SELECT COUNT(*) FROM customer_traits")


def test_longer_horizons_expect_more_purchases(store: Store, history: History) -> None:
    compute_model_traits(store, parse_config(CONFIG), "run-1")
    short, long = _traits(store, "clv_expected_purchases_90d"), _traits(store, "clv_expected_purchases_365d")
    assert all(long[c] > short[c] > 0 for c in history.customers)


def test_customers_who_stopped_have_lower_p_alive_and_higher_churn_risk(store: Store, history: History) -> None:
    report = compute_model_traits(store, parse_config(CONFIG), "run-1")
    p_alive, risk = _traits(store, "p_alive"), _traits(store, "churn_risk")
    active = [c for c in history.customers if c not in history.stopped]
    stopped = sorted(history.stopped)

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    assert mean([p_alive[c] for c in stopped]) < mean([p_alive[c] for c in active])
    # Churn risk is scored for customers active in the lookback before as_of; stopped ones score higher.
    scored_stopped = [risk[c] for c in stopped if c in risk]
    assert scored_stopped and mean(scored_stopped) > mean([risk[c] for c in active if c in risk])
    assert report.churn["test"]["roc_auc"] > 0.75


def test_churn_reasons_are_json_lists_of_features_raising_the_risk(store: Store, history: History) -> None:
    compute_model_traits(store, parse_config(CONFIG), "run-1")
    reasons = _traits(store, "churn_reasons")
    assert set(reasons) == set(_traits(store, "churn_risk"))
    parsed = [json.loads(text) for text in reasons.values()]
    assert all(len(r) <= 3 and all(x["contribution"] > 0 and set(x) == {"feature", "value", "contribution"}
                                   for x in r) for r in parsed)
    assert any(parsed)


def test_a_second_run_adds_model_versions_and_replaces_the_traits(store: Store, history: History) -> None:
    cfg = parse_config(CONFIG)
    first = compute_model_traits(store, cfg, "run-1")
    second = compute_model_traits(store, cfg, "run-2")
    assert (second.clv["version"], second.churn["version"]) == (2, 2)
    assert second.traits_written == first.traits_written == store.scalar("SELECT COUNT(*) FROM customer_traits")
    assert store.fetchall("SELECT kind, version, run_id FROM trait_models ORDER BY kind, version") == [
        ("churn", 1, "run-1"), ("churn", 2, "run-2"), ("clv", 1, "run-1"), ("clv", 2, "run-2")]


def test_the_stored_churn_model_scores_again_and_reports_its_metrics(store: Store, history: History) -> None:
    compute_model_traits(store, parse_config(CONFIG), "run-1")
    model = load_churn_model(store)
    info = latest_model(store, "churn")
    assert model is not None and info is not None
    assert info["params"]["window_days"] == 60 and info["metrics"]["roc_auc"] > 0.75
    assert {i["feature"] for i in info["metrics"]["importance"]} == set(model.features_)


def test_customer_model_traits_gathers_one_customers_values(store: Store, history: History) -> None:
    compute_model_traits(store, parse_config(CONFIG), "run-1")
    customer = next(c for c in history.customers if c not in history.stopped)
    traits = customer_model_traits(store, customer)
    assert {"p_alive", "clv_value_90d", "clv_value_365d", "churn_risk"} <= set(traits)
    assert isinstance(traits["churn_reasons"], list)


def test_too_little_history_skips_churn_with_a_warning_and_writes_no_churn_traits(store: Store) -> None:
    write_history(store, customers=60, days=200)
    report = compute_model_traits(store, parse_config(CONFIG.replace("snapshots: 4", "snapshots: 6")), "run-1")
    assert report.churn["status"] == "skipped"
    assert any(w.startswith("churn: too little history for 6 snapshots 60 days apart") for w in report.warnings)
    assert store.scalar("SELECT COUNT(*) FROM customer_traits WHERE name LIKE 'churn%'") == 0
    assert store.scalar("SELECT COUNT(*) FROM trait_models WHERE kind = 'churn'") == 0


def test_an_empty_store_skips_both_models_with_warnings(store: Store) -> None:
    report = compute_model_traits(store, parse_config(CONFIG), "run-1")
    assert (report.clv["status"], report.churn["status"]) == ("skipped", "skipped")
    assert len(report.warnings) == 2 and report.traits_written == 0


def test_disabled_models_are_not_run(store: Store, history: History) -> None:
    report = compute_model_traits(store, parse_config("clv: {enabled: false}\nchurn: {enabled: false}\n"), "r")
    assert (report.clv, report.churn, report.traits_written) == ({}, {}, 0)


def test_duckdb_and_postgresql_give_the_same_model_traits(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    import uuid

    import psycopg

    from accord.store import open_store
    from tests.conftest import PG_URL

    schema = f"t_{uuid.uuid4().hex[:12]}"

    def drop_schema() -> None:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    request.addfinalizer(drop_schema)
    results = []
    for url in (f"duckdb:///{tmp_path / 'a.duckdb'}", f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"):
        with open_store(url) as store:
            write_history(store, customers=150)
            compute_model_traits(store, parse_config(CONFIG), "run-1")
            results.append({(c, n): (v, t) for c, n, v, t in store.fetchall(
                "SELECT customer_id, name, value_num, value_text FROM customer_traits")})
    duck, pg = results
    assert set(duck) == set(pg) and len(duck) > 0
    for key, (value, text) in duck.items():
        assert pg[key][0] == pytest.approx(value, rel=1e-9, abs=1e-12) if value is not None else pg[key][0] is None
        assert text == pg[key][1]  # churn_reasons: the same features, values and rounded contributions
