"""Rules, epsilon-greedy and Thompson sampling: order, propensities and exploration flags."""

from __future__ import annotations

import numpy as np

from accord.decisions.bandits import BetaPosteriors, epsilon_greedy, thompson
from accord.decisions.engine import DecideRequest
from tests.decisions.helpers import offered
from tests.decisions.simulate import customers, log_uniform

THREE = [{"id": "low", "priority": 1}, {"id": "high", "priority": 9}, {"id": "mid", "priority": 5, "margin": 1},
         {"id": "mid2", "priority": 5, "margin": 3}]


def test_rules_rank_by_priority_then_margin(store, engine_for):
    decision = engine_for({"policy": "rules", "max_offers": 10, "offers": THREE}).decide(store, DecideRequest("c1"))
    assert (offered(decision), [o.propensity for o in decision.offers]) == (["high", "mid2", "mid", "low"], [1.0] * 4)


def test_max_offers_and_the_request_limit_cut_the_list(store, engine_for):
    engine = engine_for({"policy": "rules", "max_offers": 3, "offers": THREE})
    assert [len(engine.decide(store, DecideRequest(f"c{n}", limit=n)).offers) for n in (None, 2, 10)] == [3, 2, 3]


def test_epsilon_greedy_propensities_are_those_of_its_mixture():
    rng = np.random.default_rng(0)
    greedy = ["a", "b", "c", "d"]
    exploit = epsilon_greedy(greedy, 0.0, rng)
    explore = epsilon_greedy(greedy, 1.0, rng)
    assert exploit == (greedy, [1.0, 1.0, 1.0, 1.0], False)
    assert (explore[1], explore[2]) == ([0.25, 0.25, 0.25, 0.25], True)


def test_epsilon_greedy_marks_exploration_in_the_explanation(store, engine_for):
    engine = engine_for({"policy": "epsilon_greedy", "exploration": {"epsilon": 1.0}, "offers": THREE[:2],
                         "max_offers": 2})
    decision = engine.decide(store, DecideRequest("c1"))
    assert [(o.policy, o.propensity, o.explanation["exploration"]) for o in decision.offers] == [
        ("epsilon_greedy", 0.5, True), ("epsilon_greedy", 0.5, True)]


def test_thompson_puts_a_clearly_better_offer_first_with_propensity_one():
    rng = np.random.default_rng(1)
    order, _, props, explored = thompson(["good", "bad"], np.array([901.0, 1.0]), np.array([101.0, 1001.0]), rng,
                                         positions=2, simulations=200)
    assert (order, props, explored) == (["good", "bad"], [1.0, 1.0], [False, False])


def test_thompson_propensities_estimate_how_often_each_offer_comes_first():
    rng = np.random.default_rng(2)
    alpha, beta = np.array([1.0, 1.0, 1.0]), np.array([1.0, 1.0, 1.0])
    firsts = [thompson(["a", "b", "c"], alpha, beta, rng, 1, 3000)[2][0] for _ in range(5)]
    assert all(abs(p - 1 / 3) < 0.04 for p in firsts)


def test_thompson_learns_from_outcomes_per_context(store, engine_for):
    section = {"policy": "epsilon_greedy", "exploration": {"epsilon": 1.0},
               "offers": [{"id": "a"}, {"id": "b"}], "guardrails": {"frequency_cap": {"max": 100000, "days": 1}}}
    ids = customers(store, 10)
    log_uniform(store, engine_for(section), ids, 400)  # web: frequent buyers click 'a', others 'b'
    engine = engine_for({**section, "policy": "thompson", "max_offers": 1})
    engine.refresh(store, force=True)
    web = engine.posteriors.parameters(["a", "b"], "channel=web|placement=")
    app = engine.posteriors.parameters(["a", "b"], "channel=app|placement=")
    shown = int(web[0].sum() + web[1].sum() - 4)  # minus the Beta(1, 1) priors
    assert (shown, app[0].tolist(), app[1].tolist()) == (400, [1.0, 1.0], [1.0, 1.0])
    decision = engine.decide(store, DecideRequest("cus_0001", channel="web"))
    assert decision.offers[0].policy == "thompson" and 0 < decision.offers[0].propensity <= 1


def test_posterior_means_start_at_the_prior():
    assert BetaPosteriors(2.0, 6.0).mean(["x"], "k").tolist() == [0.25]
