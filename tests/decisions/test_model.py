"""The propensity model: trained from the log, versioned, used by the model and hybrid policies."""

from __future__ import annotations

from accord.decisions.engine import DecideRequest
from accord.decisions.training import activate_model, list_models, train_model
from tests.decisions.helpers import NOW, offered, settings
from tests.decisions.simulate import OFFERS, customers, log_uniform

UNCAPPED = {"frequency_cap": {"max": 100000, "days": 1}}


def world(**extra: object) -> dict[str, object]:
    return {"policy": "epsilon_greedy", "exploration": {"epsilon": 1.0}, "offers": OFFERS, "guardrails": UNCAPPED,
            "model": {"min_training_rows": 100, "min_offer_examples": 20}, **extra}


def trained(store, engine_for, **extra):
    s = settings(**world(**extra))
    ids = customers(store)
    log_uniform(store, engine_for(s), ids, 600)
    report = train_model(store, s, NOW)
    return s, report


def test_without_a_model_the_hybrid_policy_ranks_by_rules_and_says_why(store, engine_for):
    customers(store, 2)
    decision = engine_for(settings(**world(policy="hybrid"))).decide(store, DecideRequest("cus_0000"))
    assert (offered(decision), [o.policy for o in decision.offers], decision.notes) == (
        ["b", "a"], ["rules", "rules"], ["model: cold (no model trained yet); ranked by rules"])


def test_too_little_feedback_trains_nothing(store, engine_for):
    s = settings(**world())
    log_uniform(store, engine_for(s), customers(store, 5), 20)
    report = train_model(store, s, NOW)
    assert (report.trained, report.version, report.training_rows) == (False, None, 20)


def test_training_uses_traits_but_never_sensitive_ones(store, engine_for):
    _, report = trained(store, engine_for)
    assert (report.trained, report.version, report.training_rows, report.features) == (True, 1, 600, ["orders_90d"])


def test_the_hybrid_policy_ranks_by_the_model_once_it_is_trained(store, engine_for):
    s, report = trained(store, engine_for)
    assert report.auc is not None and report.auc > 0.75
    engine = engine_for(settings(**world(policy="hybrid")))
    frequent, other = (engine.decide(store, DecideRequest(c, channel="web")) for c in ("cus_0007", "cus_0002"))
    assert (offered(frequent), offered(other)) == (["a", "b"], ["b", "a"])
    assert [o.policy for o in frequent.offers] == ["model", "model"]
    assert frequent.model_version == 1


def test_model_explanations_name_the_features_with_their_contributions(store, engine_for):
    trained(store, engine_for)
    decision = engine_for(settings(**world(policy="model"))).decide(store, DecideRequest("cus_0007", channel="web"))
    top = decision.offers[0].explanation["features"]
    assert {f["feature"] for f in top} <= {"orders_90d", "offer_id", "channel", "placement", "device"}
    assert any(f["feature"] == "orders_90d" and f["value"] == 7.0 and f["contribution"] != 0 for f in top)


def test_an_unsure_model_makes_the_hybrid_policy_fall_back_to_rules(store, engine_for):
    trained(store, engine_for)
    engine = engine_for(settings(**world(policy="hybrid", model={"min_auc": 0.999, "min_training_rows": 100})))
    decision = engine.decide(store, DecideRequest("cus_0007"))
    assert [o.policy for o in decision.offers] == ["rules", "rules"]
    assert decision.notes[0].startswith("model v1: unsure (validation AUC")


def test_an_offer_the_model_has_not_seen_makes_the_hybrid_policy_fall_back_to_rules(store, engine_for):
    trained(store, engine_for)
    engine = engine_for(settings(**world(policy="hybrid", offers=[*OFFERS, {"id": "new", "priority": 9}])))
    decision = engine.decide(store, DecideRequest("cus_0007"))
    assert (offered(decision), decision.notes) == (
        ["new", "b", "a"], ["model v1: cold for new (fewer than 20 examples); ranked by rules"])


def test_every_trained_version_is_kept_and_an_older_one_can_be_made_active(store, engine_for):
    s, _ = trained(store, engine_for)
    train_model(store, s, NOW)
    before = [(m["version"], m["active"]) for m in list_models(store)]
    activate_model(store, 1)
    after = [(m["version"], m["active"]) for m in list_models(store)]
    assert (before, after) == ([(2, True), (1, False)], [(2, False), (1, True)])


def test_the_run_stage_retrains_only_when_the_active_model_is_older_than_retrain_hours(store, engine_for):
    from datetime import timedelta

    from accord.config import ProjectConfig
    from accord.decisions.stage import run_decisions_stage

    s = settings(**world(model={"min_training_rows": 100, "retrain_hours": 24}))
    log_uniform(store, engine_for(s), customers(store), 300)
    cfg = ProjectConfig.model_validate({"decisions": s.model_dump()})
    first = run_decisions_stage(store, cfg, "run_1", NOW)
    fresh = run_decisions_stage(store, cfg, "run_2", NOW + timedelta(hours=1))
    stale = run_decisions_stage(store, cfg, "run_3", NOW + timedelta(hours=25))
    assert (first.training["version"], fresh.retrain_due, stale.training["version"]) == (1, False, 2)


def test_scores_and_contributions_are_lightgbms_own_predict_and_pred_contrib(store, engine_for):
    import numpy as np

    from accord.decisions.model import load_active_model

    trained(store, engine_for)
    model = load_active_model(store)
    x = model.rows({"orders_90d": 3.0, "days_since_last_event": None}, {"channel": "web", "device": "unknown"},
                   [o["id"] for o in OFFERS] + ["never_seen"])
    assert np.array_equal(model.predict(x), model.booster.predict(x, num_threads=1))
    assert np.array_equal(model.contributions(x[:3]), model.booster.predict(x[:3], pred_contrib=True, num_threads=1))
