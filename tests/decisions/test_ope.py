"""Off-policy evaluation: obp's README figures on the Open Bandit Dataset, and the estimators."""

from __future__ import annotations

import numpy as np
import pytest

from accord.decisions.obd import bts_action_dist, load_obd, readme_check, zozotown_prior
from accord.decisions.ope import LoggedFeedback, doubly_robust, evaluate, ipw, snipw
from accord.decisions.replay import evaluate_log
from tests.decisions.helpers import NOW, settings
from tests.decisions.simulate import customers, log_uniform


def test_bernoulli_ts_on_the_random_log_reproduces_obps_readme():
    result = readme_check()
    assert (result["rounds"], round(result["ipw"], 6), round(result["relative_ipw"], 3)) == (10000, 0.004553, 1.198)


def test_the_action_distribution_is_obps_draw_for_draw():
    """obp's BernoulliTS.compute_batch_action_dist, one select_action() per simulation."""
    alpha, beta = zozotown_prior("all")
    rs = np.random.RandomState(12345)
    counts = np.zeros((alpha.size, 3))
    for _ in range(2000):
        ranked = rs.beta(a=np.zeros(alpha.size) + alpha, b=np.zeros(alpha.size) + beta).argsort()[::-1][:3]
        for pos in range(3):
            counts[ranked[pos], pos] += 1
    assert np.array_equal(bts_action_dist(alpha, beta, 3, 1, n_sim=2000)[0], counts / 2000)


def test_the_bundled_sample_has_obds_shape():
    log = load_obd("random", "all")
    assert (log.n_rounds, log.n_actions, log.len_list, round(float(log.reward.mean()), 4)) == (10000, 80, 3, 0.0038)


def _log() -> LoggedFeedback:
    return LoggedFeedback(action=np.array([0, 1, 1, 0]), position=np.zeros(4, dtype=int),
                          reward=np.array([1.0, 0.0, 1.0, 0.0]), pscore=np.array([0.5, 0.5, 0.5, 0.5]),
                          n_actions=2, len_list=1)


def test_ipw_and_snipw_by_hand():
    dist = np.tile(np.array([[0.8], [0.2]]), (4, 1, 1))
    # weights 1.6, 0.4, 0.4, 1.6; rewards 1, 0, 1, 0
    assert (ipw(_log(), dist), snipw(_log(), dist)) == pytest.approx((0.5, 0.5))


def test_doubly_robust_with_a_zero_reward_model_is_ipw_and_with_a_perfect_one_is_its_value():
    dist = np.tile(np.array([[0.8], [0.2]]), (4, 1, 1))
    assert doubly_robust(_log(), dist, np.zeros((4, 2, 1))) == pytest.approx(ipw(_log(), dist))
    q = np.tile(np.array([[0.5], [0.5]]), (4, 1, 1))  # the true mean of both actions here
    assert doubly_robust(_log(), dist, q) == pytest.approx(0.5)


def test_a_wrongly_shaped_action_distribution_is_refused():
    with pytest.raises(ValueError, match=r"expected \(rounds, actions, positions\) = \(4, 2, 1\)"):
        evaluate(_log(), np.zeros((4, 3, 1)))


def test_evaluating_the_logging_policy_on_its_own_log_gives_its_mean_reward(store, engine_for):
    s = settings(policy="epsilon_greedy", exploration={"epsilon": 1.0}, offers=[{"id": "a"}, {"id": "b"}],
                 guardrails={"frequency_cap": {"max": 100000, "days": 1}})
    log_uniform(store, engine_for(s), customers(store, 10), 200)
    result = evaluate_log(store, s, "uniform", now=NOW)
    assert result["rounds"] == 200 and result["ipw"] == pytest.approx(result["logged"])
    assert result["snipw"] == pytest.approx(result["logged"])
