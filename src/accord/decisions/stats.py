"""A/B statistics as GrowthBook's stats engine (gbstats) reports them.

* Frequentist: a two-sided Welch t-test on the relative lift (treatment - baseline) / baseline with the
  delta-method variance, its p-value and confidence interval (``gbstats.frequentist.tests.TwoSidedTTest``).
* Bayesian: a normal posterior on the relative lift with a flat prior: chance to win and the expected
  loss (risk) of choosing baseline or treatment (``gbstats.bayesian.tests.EffectBayesianABTest``).
* Sample-ratio mismatch: Pearson's chi-squared of the units per group against the planned split
  (``gbstats.utils.check_srm``); GrowthBook warns below p = 0.001.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scipy.stats import chi2, norm, t, truncnorm

SRM_P_THRESHOLD = 0.001


@dataclass(frozen=True)
class GroupStats:
    """One group's metric: units, mean and variance per unit."""

    n: int
    mean: float
    variance: float

    @classmethod
    def proportion(cls, n: int, successes: int) -> GroupStats:
        p = successes / n if n else 0.0
        return cls(n, p, p * (1 - p))

    @classmethod
    def sample(cls, n: int, total: float, sum_squares: float) -> GroupStats:
        if n < 2:
            return cls(n, total / n if n else 0.0, 0.0)
        return cls(n, total / n, (sum_squares - total**2 / n) / (n - 1))


@dataclass(frozen=True)
class Frequentist:
    lift: float
    ci: tuple[float, float]
    p_value: float
    stddev: float
    error: str | None = None


@dataclass(frozen=True)
class Bayesian:
    lift: float
    ci: tuple[float, float]
    chance_to_win: float
    risk_baseline: float
    risk_treatment: float
    stddev: float
    error: str | None = None


def _relative(a: GroupStats, b: GroupStats) -> tuple[float, float]:
    lift = (b.mean - a.mean) / a.mean
    variance = b.variance / (a.mean**2 * b.n) + a.variance * b.mean**2 / (a.mean**4 * a.n)
    return lift, variance


def _problem(a: GroupStats, b: GroupStats) -> str | None:
    if a.n == 0 or b.n == 0:
        return "a group has no units"
    if a.mean == 0:
        return "the baseline mean is zero; relative lift is undefined"
    if a.variance <= 0 or b.variance <= 0:
        return "a group has zero variance"
    return None


def t_test(a: GroupStats, b: GroupStats, alpha: float = 0.05) -> Frequentist:
    """Two-sided Welch t-test of the relative lift of b over a."""
    problem = _problem(a, b)
    if problem:
        return Frequentist(0.0, (0.0, 0.0), 1.0, 0.0, problem)
    lift, variance = _relative(a, b)
    se = math.sqrt(variance)
    dof = (b.variance / b.n + a.variance / a.n) ** 2 / (
        b.variance**2 / (b.n**2 * (b.n - 1)) + a.variance**2 / (a.n**2 * (a.n - 1)))
    p = 2 * (1 - float(t.cdf(abs(lift / se), dof)))
    width = float(t.ppf(1 - alpha / 2, dof)) * se
    return Frequentist(lift, (lift - width, lift + width), p, se)


def bayesian(a: GroupStats, b: GroupStats, alpha: float = 0.05) -> Bayesian:
    """Chance that b beats a and the expected loss of each choice, on the relative lift."""
    problem = _problem(a, b)
    if problem:
        return Bayesian(0.0, (0.0, 0.0), 0.5, 0.0, 0.0, 0.0, problem)
    mu, variance = _relative(a, b)
    sigma = math.sqrt(variance)
    ctw = float(norm.sf(0, mu, sigma))
    lo, hi = norm.ppf([alpha / 2, 1 - alpha / 2], mu, sigma)
    p_baseline_better = float(norm.cdf(0.0, loc=mu, scale=sigma))
    mean_neg = float(truncnorm.stats(-math.inf, (0 - mu) / sigma, loc=mu, scale=sigma, moments="m"))
    mean_pos = float(truncnorm.stats((0 - mu) / sigma, math.inf, loc=mu, scale=sigma, moments="m"))
    risk_baseline = (1 - p_baseline_better) * mean_pos
    risk_treatment = -p_baseline_better * mean_neg
    return Bayesian(mu, (float(lo), float(hi)), ctw, risk_baseline, risk_treatment, sigma)


def srm_p_value(observed: list[int], weights: list[float]) -> float:
    """Chi-squared goodness of fit of the units per group to the planned weights."""
    total = sum(observed)
    if not total:
        return 1.0
    weight_total = sum(weights)
    x = 0.0
    for o, w in zip(observed, weights):
        if w <= 0:
            continue
        e = w / weight_total * total
        x += (o - e) ** 2 / e
    return float(chi2.sf(x, len(observed) - 1))


def as_dict(result: Frequentist | Bayesian) -> dict[str, object]:
    out = asdict(result)
    out["ci"] = list(out["ci"])
    return out
