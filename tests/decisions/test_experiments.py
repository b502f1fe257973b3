"""Experiments: sticky hashed groups, holdouts, and the report with its SRM check."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from accord.decisions.assignment import assign, bucket
from accord.decisions.engine import DecideRequest
from accord.decisions.experiments import experiment_report
from accord.decisions.settings import ExperimentSpec
from accord.errors import ConfigError
from tests.decisions.helpers import NOW, settings

AB = {"name": "hero", "variants": {"control": {"policy": "rules"}, "treatment": {"policy": "epsilon_greedy"}},
      "holdout": 0.1, "metric": "clicked"}


def test_a_unit_always_gets_the_same_group():
    exp = ExperimentSpec.model_validate(AB)
    assert len({assign(exp, "cus_00000042") for _ in range(20)}) == 1
    assert bucket("hero", "cus_1") == bucket("hero", "cus_1") != bucket("other", "cus_1")


def test_groups_follow_the_planned_shares():
    exp = ExperimentSpec.model_validate(AB)
    counts = Counter(assign(exp, f"cus_{i}") for i in range(20000))
    shares = {g: n / 20000 for g, n in counts.items()}
    assert shares == pytest.approx({"holdout": 0.1, "control": 0.45, "treatment": 0.45}, abs=0.01)


def test_the_holdout_group_gets_no_offers_and_is_logged(store, engine_for):
    engine = engine_for({"offers": [{"id": "a"}], "experiments": [{**AB, "holdout": 0.5}]})
    by_group = {}
    for i in range(40):
        d = engine.decide(store, DecideRequest(f"cus_{i}"))
        by_group.setdefault(d.variant, []).append(d)
    assert {len(d.offers) for d in by_group["holdout"]} == {0}
    assert {d.policy for d in by_group["holdout"]} == {"holdout"}
    assert {len(d.offers) for d in by_group["control"]} == {1}
    assert store.scalar("SELECT COUNT(*) FROM decisions WHERE variant = 'holdout'") == len(by_group["holdout"])


def test_each_variant_decides_with_its_own_policy(store, engine_for):
    engine = engine_for({"offers": [{"id": "a"}], "exploration": {"epsilon": 1.0}, "experiments": [AB]})
    seen = {}
    for i in range(30):
        d = engine.decide(store, DecideRequest(f"cus_{i}"))
        if d.offers:
            seen[d.variant] = d.offers[0].policy
    assert seen == {"control": "rules", "treatment": "epsilon_greedy"}


def _outcome(store, decision_id, offer_id, clicked):
    store.execute("INSERT INTO decision_outcomes (outcome_id, decision_id, offer_id, shown, clicked, converted, "
                  "revenue, occurred_at, received_at) VALUES (?, ?, ?, true, ?, false, NULL, ?, ?)",
                  ("out_" + uuid.uuid4().hex, decision_id, offer_id, clicked, NOW, NOW))


def test_the_report_counts_units_and_compares_each_group_with_the_baseline(store, engine_for):
    s = settings(offers=[{"id": "a"}], experiments=[{**AB, "holdout": 0.0}],
                 guardrails={"frequency_cap": {"max": 1000, "days": 1}})
    engine = engine_for(s)
    for i in range(200):
        d = engine.decide(store, DecideRequest(f"cus_{i}"))
        # treatment clicks every second unit, control every fourth
        _outcome(store, d.decision_id, "a", i % (2 if d.variant == "treatment" else 4) == 0)
    engine.decide(store, DecideRequest("cus_0"))  # a second decision for a unit counts once
    report = experiment_report(store, s, "hero").as_dict()
    units = {g["group"]: g["units"] for g in report["groups"]}
    assert sum(units.values()) == 200
    comparison = report["comparisons"][0]
    assert (comparison["group"], comparison["versus"]) == ("treatment", "control")
    assert comparison["frequentist"]["lift"] > 0.5 and comparison["bayesian"]["chance_to_win"] > 0.95
    assert report["srm"]["mismatch"] is False


def test_a_sample_ratio_mismatch_is_flagged(store, engine_for):
    s = settings(offers=[{"id": "a"}], experiments=[{**AB, "holdout": 0.0}])
    engine = engine_for(s)
    for i in range(300):
        engine.decide(store, DecideRequest(f"cus_{i}"))
    store.execute("UPDATE decisions SET variant = 'treatment' WHERE variant = 'control' AND unit < 'cus_2'")
    report = experiment_report(store, s, "hero").as_dict()
    assert report["srm"]["mismatch"] is True and report["srm"]["p_value"] < 0.001


def test_an_unknown_experiment_names_the_known_ones(store):
    with pytest.raises(ConfigError, match="no experiment 'nope' in decisions.experiments; known: hero"):
        experiment_report(store, settings(experiments=[AB]), "nope")
