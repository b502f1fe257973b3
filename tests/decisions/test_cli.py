"""The decisions verbs: train, models, experiments report, models report, ope, offers."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from accord.cli import main
from accord.decisions.engine import DecideRequest, DecisionEngine
from accord.store import open_store
from tests.decisions.helpers import NOW, settings

SECTION = {"offers": [{"id": "a", "priority": 2}, {"id": "b", "priority": 1, "inventory": "sku-b"}],
           "experiments": [{"name": "hero", "variants": {"control": {"policy": "rules"},
                                                         "treatment": {"policy": "epsilon_greedy"}},
                            "metric": "clicked"}]}


@pytest.fixture
def project(store_url, tmp_path):
    (tmp_path / "accord.yaml").write_text(yaml.safe_dump({"store": store_url, "decisions": SECTION}), encoding="utf-8")
    return tmp_path


def run(project, *args):
    return CliRunner().invoke(main, ["-c", str(project), *args], catch_exceptions=False)


def test_experiments_report_prints_the_statistics_as_json(project, store_url):
    with open_store(store_url) as store:
        engine = DecisionEngine(settings(**SECTION), seed=1, clock=lambda: NOW)
        for i in range(40):
            engine.decide(store, DecideRequest(f"cus_{i}"))
    result = run(project, "experiments", "report", "hero", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["experiment"], report["baseline"], sum(g["units"] for g in report["groups"])) == (
        "hero", "control", 40)
    assert set(report["comparisons"][0]) == {"group", "versus", "frequentist", "bayesian"}


def test_models_report_without_a_model_says_to_train_first(project):
    result = CliRunner().invoke(main, ["-c", str(project), "models", "report"])
    assert result.exit_code == 1
    assert "run 'accord decisions train' first" in result.output


def test_train_without_feedback_says_why_it_did_not(project):
    result = run(project, "decisions", "train")
    assert result.exit_code == 0
    assert result.output.strip() == "not trained: 0 shown offers with feedback; model.min_training_rows is 200"


def test_offers_stock_sets_the_stock_an_offer_links_to(project, store_url):
    assert run(project, "offers", "stock", "sku-b", "0").exit_code == 0
    with open_store(store_url) as store:
        decision = DecisionEngine(settings(**{**SECTION, "experiments": []}), clock=lambda: NOW).decide(
            store, DecideRequest("cus_1"))
    assert [o.offer_id for o in decision.offers] == ["a"]


def test_ope_obd_reproduces_obps_readme_figures(tmp_path):
    result = run(tmp_path, "decisions", "ope", "--obd", "--json")
    figures = json.loads(result.output)
    assert (round(figures["ipw"], 6), round(figures["relative_ipw"], 3)) == (0.004553, 1.198)


def test_a_sensitive_attribute_named_as_a_model_feature_is_a_config_error(tmp_path):
    (tmp_path / "accord.yaml").write_text(yaml.safe_dump({"decisions": {
        "model": {"features": ["orders_90d", "gender"]}}}), encoding="utf-8")
    result = CliRunner().invoke(main, ["-c", str(tmp_path), "offers", "list"])
    assert result.exit_code == 1
    assert ("decisions: model.features: gender is listed in guardrails.sensitive_attributes and may not be a "
            "model feature") in result.output
