"""accord models report: PSI drift, calibration and demographic parity difference."""

from __future__ import annotations

import numpy as np
import pytest

from accord.decisions.engine import DecideRequest
from accord.decisions.monitoring import calibration, demographic_parity_difference, models_report, psi
from accord.decisions.training import reference_distribution, train_model
from accord.errors import AccordError
from tests.decisions.helpers import NOW, add_customer, settings
from tests.decisions.simulate import OFFERS, customers, log_uniform


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shifted_one():
    rng = np.random.default_rng(0)
    reference = reference_distribution(rng.normal(0, 1, 20000), 10)
    same, shifted = psi(reference, rng.normal(0, 1, 20000)), psi(reference, rng.normal(1, 1, 20000))
    assert same < 0.01 and shifted > 0.2


def test_calibration_compares_predicted_and_observed_rates_per_bin():
    result = calibration(np.array([0.1, 0.1, 0.9, 0.9]), np.array([0.0, 0.0, 1.0, 0.0]), bins=10)
    assert [(b["rows"], b["mean_predicted"], b["observed_rate"]) for b in result["bins"]] == [
        (2, 0.1, 0.0), (2, 0.9, 0.5)]
    assert (result["ece"], result["brier"]) == pytest.approx((0.25, (0.01 * 2 + 0.01 + 0.81) / 4))


def test_demographic_parity_difference_is_the_largest_gap_in_selection_rates():
    selected = np.array([1, 1, 0, 0, 1, 0, 0, 0], dtype=float)
    groups = np.array(["f", "f", "f", "f", "m", "m", "m", "m"])
    assert demographic_parity_difference(selected, groups) == 0.25


def test_the_report_needs_a_trained_model(store):
    with pytest.raises(AccordError, match="accord decisions train"):
        models_report(store, settings())


def test_the_report_shows_drift_calibration_and_fairness_by_the_group_attribute(store, engine_for):
    s = settings(policy="epsilon_greedy", exploration={"epsilon": 1.0}, offers=OFFERS,
                 guardrails={"frequency_cap": {"max": 100000, "days": 1}},
                 model={"min_training_rows": 100}, monitoring={"group_attribute": "gender"})
    ids = customers(store)
    log_uniform(store, engine_for(s), ids, 600)
    train_model(store, s, NOW)
    served = engine_for(settings(**{**s.model_dump(), "policy": "model"}))
    for cid in ids:
        served.decide(store, DecideRequest(cid, channel="web"))
    report = models_report(store, s, NOW)
    assert report["model_version"] == 1
    assert [d["feature"] for d in report["features"]] == ["orders_90d"]
    assert report["features"][0]["psi"] < 0.2 and report["features"][0]["flagged"] is False
    assert report["score"]["rows"] == 120 and report["calibration"]["rows"] == 0
    fairness = report["fairness"]
    assert fairness["attribute"] == "gender" and fairness["groups"] == {"0": 330, "1": 330}
    assert 0 <= fairness["max_difference"] <= 1


def test_a_shifted_population_is_flagged_as_drift(store, engine_for):
    s = settings(policy="epsilon_greedy", exploration={"epsilon": 1.0}, offers=OFFERS,
                 guardrails={"frequency_cap": {"max": 100000, "days": 1}}, model={"min_training_rows": 100})
    log_uniform(store, engine_for(s), customers(store), 600)
    train_model(store, s, NOW)
    store.execute("DELETE FROM decisions")
    for i in range(50):
        add_customer(store, f"new_{i}", traits={"orders_90d": 40 + i}, consent={"personalization": "granted"})
        engine_for(s).decide(store, DecideRequest(f"new_{i}"))
    report = models_report(store, s, NOW)
    assert report["features"][0]["flagged"] is True
