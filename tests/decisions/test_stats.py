"""A/B statistics equal GrowthBook's stats engine (gbstats 0.8.0) to the last digit.

The expected numbers were computed with gbstats 0.8.0 itself (TwoSidedTTest, EffectBayesianABTest
with its default flat prior, check_srm) in a separate environment: gbstats pins numpy < 2, so it
cannot be installed beside Accord.
"""

from __future__ import annotations

import pytest

from accord.decisions.stats import GroupStats, bayesian, srm_p_value, t_test

CONVERSIONS = (GroupStats.proportion(5000, 480), GroupStats.proportion(5100, 551))
MEANS = (GroupStats.sample(10, 100, 1002.25), GroupStats.sample(10, 105, 1111.5))


def test_t_test_on_conversion_rates_matches_gbstats():
    r = t_test(*CONVERSIONS)
    assert (r.lift, *r.ci, r.p_value, r.stddev) == pytest.approx(
        (0.12540849673202606, -0.005141527199293533, 0.2559585206633457, 0.059729181511460894,
         0.06660038677176396), rel=1e-9)


def test_bayesian_chance_to_win_and_risk_on_conversion_rates_match_gbstats():
    r = bayesian(*CONVERSIONS)
    assert (r.lift, *r.ci, r.chance_to_win, r.risk_baseline, r.risk_treatment) == pytest.approx(
        (0.12540849673202606, -0.005125862697069161, 0.2559428561611212, 0.9701497839107466,
         0.1261778731214695, 0.0007693763894434434), rel=1e-9)


def test_t_test_on_means_matches_gbstats():
    r = t_test(*MEANS)
    assert (r.lift, *r.ci, r.p_value) == pytest.approx(
        (0.05, -0.027020287095229606, 0.1270202870952296, 0.18453441914691737), rel=1e-9)


def test_bayesian_on_means_matches_gbstats():
    r = bayesian(*MEANS)
    assert (r.chance_to_win, r.risk_baseline, r.risk_treatment) == pytest.approx(
        (0.9192339081566245, 0.05130981716392653, 0.001309817163926532), rel=1e-9)


def test_growthbooks_published_t_test_example():
    # packages/stats/tests/frequentist/test_tests.py in GrowthBook's repository
    r = t_test(GroupStats(3407, 0.41, 3.9**2), GroupStats(3461, 0.70, 6.2**2))
    assert (round(r.lift, 5), [round(x, 5) for x in r.ci], round(r.stddev, 5), round(r.p_value, 5)) == (
        0.70732, [-0.03526, 1.44989], 0.37879, 0.06191)


def test_srm_p_values_match_gbstats():
    assert srm_p_value([5000, 5100], [0.5, 0.5]) == pytest.approx(0.3197181768128675, rel=1e-9)
    assert srm_p_value([5000, 4700, 300], [0.475, 0.475, 0.05]) == pytest.approx(4.5366174972776645e-21, rel=1e-6)


def test_a_zero_baseline_gives_no_lift_and_says_why():
    r = t_test(GroupStats.proportion(100, 0), GroupStats.proportion(100, 5))
    assert (r.lift, r.p_value, r.error) == (0.0, 1.0, "the baseline mean is zero; relative lift is undefined")
