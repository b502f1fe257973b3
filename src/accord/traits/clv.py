"""Lifetime value: BG/NBD for how often a customer buys, Gamma-Gamma for how much, and CLV from both.

Both models are fitted by maximum likelihood on the analytic log-likelihoods of Fader, Hardie and Lee
("Counting your customers the easy way", Marketing Science 2005; "RFM and CLV: using iso-value curves",
JMR 2005), with every parameter optimized on the log scale so it stays positive.

Inputs are the per-customer summary built by :mod:`accord.traits.clv_summary`: ``frequency`` (repeat
purchase days), ``recency`` (first to last purchase) and ``T`` (first purchase to the end of the
calibration period), in one time unit, and ``monetary_value`` (mean spend of the repeat purchases).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special
from threadpoolctl import threadpool_limits

from accord.errors import AccordError


class ModelFitError(AccordError):
    """The data cannot support the model (too few customers or repeat buyers, or no convergence)."""


def _as_arrays(*columns: object) -> list[np.ndarray]:
    return [np.asarray(c, dtype=float) for c in columns]


def _compress(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Identical summary rows collapse into one with a weight: a million customers hold far fewer
    distinct (frequency, recency, T) triples, and the likelihood only needs each once."""
    stacked = np.column_stack(columns)
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return [unique[:, i] for i in range(unique.shape[1])], counts.astype(float)


LOG_BOUND = 12.0
"""Every parameter stays within exp(+-12) (6e-6 .. 1.6e5). Small or homogeneous samples put the
maximum at a boundary (no heterogeneity, no drop-out: a -> 0, b -> inf); bounded, the predictions stay
finite (quadrature takes over where the closed form fails), and each parameter that runs off to an
extreme is reported (LOG_EDGE)."""


LOG_EDGE = float(np.log(1000.0))
"""A fitted parameter beyond 1000 or below 1/1000 sits on a flat ridge of the likelihood (for example
r and alpha growing together when customers do not differ): reported in ``at_bounds_``."""


def _weighted_sum(weights: np.ndarray, values: np.ndarray) -> float:
    # Not ``weights @ values``: a BLAS dot product starts threads that spin on a busy machine, which
    # made each likelihood evaluation ~10x slower than the arithmetic itself.
    return float(np.sum(weights * values))


def _minimize(objective, n_params: int, gradient=None) -> tuple[np.ndarray, list[int]]:
    """L-BFGS-B from log-parameters 0 (every parameter 1), with the analytic ``gradient`` when given;
    Nelder-Mead finishes when it stops without converging (a flat ridge of the likelihood). Returns the
    log-parameters and the indices of those that ran off to an extreme (LOG_EDGE)."""
    start = np.zeros(n_params)

    def bounded(log_params: np.ndarray) -> float:
        return objective(np.clip(log_params, -LOG_BOUND, LOG_BOUND))

    # L-BFGS-B's few-parameter linear algebra goes through BLAS, whose threads only spin at this size.
    with threadpool_limits(limits=1, user_api="blas"):
        first = optimize.minimize(bounded, start, jac=gradient, method="L-BFGS-B",
                                  bounds=[(-LOG_BOUND, LOG_BOUND)] * n_params,
                                  options={"ftol": 1e-14, "gtol": 1e-9, "maxiter": 2_000})
    best = first.x if np.all(np.isfinite(first.x)) else start
    if not first.success:
        # A small simplex around where the gradient search stopped: finish it, do not search again.
        simplex = np.vstack([best] + [best + 0.01 * np.eye(n_params)[i] for i in range(n_params)])
        polished = optimize.minimize(bounded, best, method="Nelder-Mead",
                                     options={"xatol": 1e-7, "fatol": 1e-12, "maxfev": 600,
                                              "initial_simplex": simplex})
        if polished.fun <= first.fun:
            best = polished.x
    best = np.clip(best, -LOG_BOUND, LOG_BOUND)
    return best, [i for i, v in enumerate(best) if abs(v) > LOG_EDGE]


# --- BG/NBD ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BetaGeoParams:
    """Purchase rate ~ Gamma(r, alpha); drop-out probability after each purchase ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


def bgnbd_log_likelihood(params: BetaGeoParams, frequency: object, recency: object, T: object) -> np.ndarray:
    """Each customer's log-likelihood under BG/NBD (Fader, Hardie and Lee 2005, equation 6)."""
    x, t_x, t = _as_arrays(frequency, recency, T)
    unique_x, x_index = np.unique(x, return_inverse=True)
    return _bgnbd_ll(params, x, t_x, t, unique_x, x_index)


def _bgnbd_ll(params: BetaGeoParams, x: np.ndarray, t_x: np.ndarray, t: np.ndarray, unique_x: np.ndarray,
              x_index: np.ndarray) -> np.ndarray:
    # The gamma and beta functions depend on the frequency alone, which takes few distinct values:
    # evaluated once per value, they cost nothing even for millions of customers.
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    common = (special.gammaln(r + unique_x) - special.gammaln(r) + r * np.log(alpha)
              + special.betaln(a, b + unique_x) - special.betaln(a, b))[x_index]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_drop = np.where(unique_x > 0, np.log(a) - np.log(np.maximum(b + unique_x - 1, 1e-300)), -np.inf)[x_index]
    still_alive = -(r + x) * np.log(alpha + t)
    dropped = np.where(x > 0, log_drop - (r + x) * np.log(alpha + t_x), -np.inf)
    return common + np.logaddexp(still_alive, dropped)


def _bgnbd_gradient(params: BetaGeoParams, x: np.ndarray, t_x: np.ndarray, t: np.ndarray, unique_x: np.ndarray,
                    x_index: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """d(weighted log-likelihood) / d(log r, log alpha, log a, log b)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    still_alive = -(r + x) * np.log(alpha + t)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_drop = np.where(unique_x > 0, np.log(a) - np.log(np.maximum(b + unique_x - 1, 1e-300)), -np.inf)[x_index]
        dropped = np.where(x > 0, log_drop - (r + x) * np.log(alpha + t_x), -np.inf)
    w = np.exp(dropped - np.logaddexp(still_alive, dropped))  # the dropped-out branch's share
    psi = special.digamma
    d_r = (psi(r + unique_x)[x_index] - psi(r) + np.log(alpha)
           - (1 - w) * np.log(alpha + t) - w * np.log(alpha + t_x))
    d_alpha = r / alpha - (r + x) * ((1 - w) / (alpha + t) + w / (alpha + t_x))
    d_a = (psi(a + b) - psi(a + b + unique_x))[x_index] + w / a
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_b = np.where(unique_x > 0, 1.0 / np.maximum(b + unique_x - 1, 1e-300), 0.0)[x_index]
    d_b = (psi(b + unique_x) - psi(a + b + unique_x) - psi(b) + psi(a + b))[x_index] - w * inv_b
    grads = np.array([_weighted_sum(weights, g) for g in (d_r, d_alpha, d_a, d_b)])
    return grads * np.array([r, alpha, a, b])


class BetaGeoModel:
    """BG/NBD ("beta-geometric / negative binomial distribution") model of repeat purchasing.

    ``penalizer`` adds ``penalizer * sum(params**2)`` to the negative mean log-likelihood, which keeps
    small or degenerate samples from sending a or b to infinity; 0 gives the plain maximum-likelihood fit.
    """

    def __init__(self, penalizer: float = 0.0):
        if penalizer < 0:
            raise ValueError("penalizer must be >= 0")
        self.penalizer = penalizer
        self.params_: BetaGeoParams | None = None
        self.log_likelihood_: float | None = None
        self.n_customers_: int = 0
        self.at_bounds_: list[str] = []
        """Parameters that ended beyond 1e+-3 or at a bound: the data cannot pin them down (LOG_EDGE)."""

    def fit(self, frequency: object, recency: object, T: object) -> BetaGeoModel:
        x, t_x, t = _as_arrays(frequency, recency, T)
        _check_summary(x, t_x, t)
        if len(x) < 2 or not np.any(x > 0):
            raise ModelFitError(f"BG/NBD needs at least 2 customers and one repeat purchase; got {len(x)} "
                                f"customer(s) and {int(np.sum(x > 0))} repeat buyer(s)")
        (x, t_x, t), weights = _compress(x, t_x, t)
        total = weights.sum()
        unique_x, x_index = np.unique(x, return_inverse=True)

        def objective(log_params: np.ndarray) -> float:
            p = np.exp(log_params)
            ll = _bgnbd_ll(BetaGeoParams(*p), x, t_x, t, unique_x, x_index)
            value = -_weighted_sum(weights, ll) / total + self.penalizer * float(np.sum(p ** 2))
            return float(value) if np.isfinite(value) else 1e300

        def gradient(log_params: np.ndarray) -> np.ndarray:
            p = np.exp(log_params)
            g = -_bgnbd_gradient(BetaGeoParams(*p), x, t_x, t, unique_x, x_index, weights) / total
            g = g + 2 * self.penalizer * p ** 2
            return np.where(np.isfinite(g), g, 0.0)

        log_params, at_bound = _minimize(objective, 4, gradient)
        self.params_ = BetaGeoParams(*(float(v) for v in np.exp(log_params)))
        self.at_bounds_ = [("r", "alpha", "a", "b")[i] for i in at_bound]
        self.log_likelihood_ = float(_weighted_sum(weights, bgnbd_log_likelihood(self.params_, x, t_x, t)))
        self.n_customers_ = int(total)
        return self

    @property
    def params(self) -> BetaGeoParams:
        if self.params_ is None:
            raise RuntimeError("fit the model first")
        return self.params_

    def p_alive(self, frequency: object, recency: object, T: object) -> np.ndarray:
        """Probability that each customer has not dropped out by the end of their observation period."""
        x, t_x, t = _as_arrays(frequency, recency, T)
        r, alpha, a, b = self.params.r, self.params.alpha, self.params.a, self.params.b
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratio = (np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                         + (r + x) * (np.log(alpha + t) - np.log(alpha + t_x)))
        return np.where(x > 0, 1.0 / (1.0 + np.exp(log_ratio)), 1.0)

    def expected_purchases(self, t: float, frequency: object, recency: object, T: object) -> np.ndarray:
        """Expected number of purchases in the next ``t`` time units given each customer's history
        (Fader, Hardie and Lee 2005, equation 10)."""
        x, t_x, big_t = _as_arrays(frequency, recency, T)
        r, alpha, a, b = self.params.r, self.params.alpha, self.params.a, self.params.b
        if t <= 0:
            return np.zeros_like(x)
        if abs(a - 1) < 1e-9:
            a = 1 + 1e-9  # the closed form divides by a - 1; its limit at a = 1 is continuous
        with np.errstate(all="ignore"):
            hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + big_t + t))
            if_alive = (a + b + x - 1) / (a - 1) * (1 - ((alpha + big_t) / (alpha + big_t + t)) ** (r + x) * hyp)
        # Near a boundary (a or b tiny, a + b + x - 1 close to a non-positive integer) the hypergeometric
        # closed form breaks down; there, integrate over the drop-out probability instead.
        broken = ~np.isfinite(if_alive) | (if_alive < 0) | (if_alive > (r + x) * t / (alpha + big_t) * (1 + 1e-9))
        for i in np.flatnonzero(broken):
            if_alive[i] = self._expected_if_alive_by_quadrature(t, x[i], big_t[i])
        return if_alive * self.p_alive(x, t_x, big_t)

    def _expected_if_alive_by_quadrature(self, t: float, x: float, big_t: float) -> float:
        """E[purchases in the next t | alive at T] = E_p[(1 - ((alpha+T)/(alpha+T+p t))^(r+x)) / p] with the
        drop-out probability p ~ Beta(a, c = b + x) given x purchases survived, by adaptive quadrature.

        Tiny a or c pile the Beta mass at p = 0 or p = 1; the two halves are therefore integrated after
        substituting u = p^a on [0, 1/2] and v = (1-p)^c on [1/2, 1], which absorb p^(a-1) and
        (1-p)^(c-1) and leave bounded integrands."""
        from scipy import integrate

        r, alpha, a, b = self.params.r, self.params.alpha, self.params.a, self.params.b
        k, base, c = r + x, alpha + big_t, b + x

        def purchases_before_drop_out(p: float) -> float:
            return k * t / base if p < 1e-12 else float(-np.expm1(-k * np.log1p(p * t / base)) / p)

        def low(u: float) -> float:  # p = u^(1/a) in [0, 1/2]
            p = u ** (1.0 / a)
            return purchases_before_drop_out(p) * float(np.exp((c - 1) * np.log1p(-p)))

        def high(v: float) -> float:  # p = 1 - v^(1/c) in [1/2, 1]
            p = 1.0 - v ** (1.0 / c)
            return purchases_before_drop_out(p) * float(np.exp((a - 1) * np.log(p)))

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", integrate.IntegrationWarning)
            first, _ = integrate.quad(low, 0.0, 0.5 ** a, limit=400)
            second, _ = integrate.quad(high, 0.0, 0.5 ** c, limit=400)
        return float((first / a + second / c) / np.exp(special.betaln(a, c)))

    def expected_purchases_new_customer(self, t: float) -> float:
        """E[X(t)] for a customer just acquired (equation 9)."""
        r, alpha, a, b = self.params.r, self.params.alpha, self.params.a, self.params.b
        hyp = special.hyp2f1(r, b, a + b - 1, t / (alpha + t))
        return float((a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp))


# --- Gamma-Gamma -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GammaGammaParams:
    """Spend per transaction ~ Gamma(p, nu); nu across customers ~ Gamma(q, gamma)."""

    p: float
    q: float
    gamma: float

    def as_dict(self) -> dict[str, float]:
        return {"p": self.p, "q": self.q, "gamma": self.gamma}


def gamma_gamma_log_likelihood(params: GammaGammaParams, frequency: object, monetary_value: object) -> np.ndarray:
    """Each repeat buyer's log-likelihood of their mean spend over ``frequency`` transactions
    (Fader, Hardie and Lee 2005, "RFM and CLV", equation 3, up to the Jacobian of the mean)."""
    x, m = _as_arrays(frequency, monetary_value)
    p, q, g = params.p, params.q, params.gamma
    return (special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q) + q * np.log(g)
            + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(g + m * x))


def _gamma_gamma_gradient(params: GammaGammaParams, x: np.ndarray, m: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """d(weighted log-likelihood) / d(log p, log q, log gamma)."""
    p, q, g = params.p, params.q, params.gamma
    psi = special.digamma
    log_total = np.log(g + m * x)
    d_p = x * (psi(p * x + q) - psi(p * x) + np.log(m) + np.log(x) - log_total)
    d_q = psi(p * x + q) - psi(q) + np.log(g) - log_total
    d_g = q / g - (p * x + q) / (g + m * x)
    return np.array([_weighted_sum(weights, d) for d in (d_p, d_q, d_g)]) * np.array([p, q, g])


class GammaGammaModel:
    """Gamma-Gamma model of average spend, fitted on repeat buyers (frequency > 0, spend > 0)."""

    def __init__(self, penalizer: float = 0.0):
        if penalizer < 0:
            raise ValueError("penalizer must be >= 0")
        self.penalizer = penalizer
        self.params_: GammaGammaParams | None = None
        self.log_likelihood_: float | None = None
        self.n_customers_: int = 0
        self.at_bounds_: list[str] = []
        """Parameters that ended beyond 1e+-3 or at a bound: the data cannot pin them down (LOG_EDGE)."""

    def fit(self, frequency: object, monetary_value: object) -> GammaGammaModel:
        x, m = _as_arrays(frequency, monetary_value)
        keep = (x > 0) & (m > 0)
        x, m = x[keep], m[keep]
        if len(x) < 2:
            raise ModelFitError(f"Gamma-Gamma needs at least 2 repeat buyers with positive spend; got {len(x)}")
        (x, m), weights = _compress(x, m)
        total = weights.sum()

        def objective(log_params: np.ndarray) -> float:
            p = np.exp(log_params)
            ll = gamma_gamma_log_likelihood(GammaGammaParams(*p), x, m)
            value = -_weighted_sum(weights, ll) / total + self.penalizer * float(np.sum(p ** 2))
            return float(value) if np.isfinite(value) else 1e300

        def gradient(log_params: np.ndarray) -> np.ndarray:
            p = np.exp(log_params)
            g = -_gamma_gamma_gradient(GammaGammaParams(*p), x, m, weights) / total + 2 * self.penalizer * p ** 2
            return np.where(np.isfinite(g), g, 0.0)

        log_params, at_bound = _minimize(objective, 3, gradient)
        self.params_ = GammaGammaParams(*(float(v) for v in np.exp(log_params)))
        self.at_bounds_ = [("p", "q", "gamma")[i] for i in at_bound]
        self.log_likelihood_ = float(_weighted_sum(weights, gamma_gamma_log_likelihood(self.params_, x, m)))
        self.n_customers_ = int(total)
        return self

    @property
    def params(self) -> GammaGammaParams:
        if self.params_ is None:
            raise RuntimeError("fit the model first")
        return self.params_

    def expected_average_value(self, frequency: object, monetary_value: object) -> np.ndarray:
        """E[spend per transaction | history]: a weighted mean of the population mean p*gamma/(q-1) and
        the customer's own mean, weighted by how many repeat purchases they made. Customers without
        repeat purchases get the population mean."""
        x, m = _as_arrays(frequency, monetary_value)
        p, q, g = self.params.p, self.params.q, self.params.gamma
        m = np.where(x > 0, m, 0.0)
        return p * (g + x * m) / (p * x + q - 1)


# --- lifetime value --------------------------------------------------------------------------------


def customer_lifetime_value(
    purchases: BetaGeoModel,
    spend: GammaGammaModel,
    summary: pd.DataFrame,
    *,
    horizon_days: float,
    unit_days: float,
    annual_discount_rate: float = 0.10,
    step_days: float = 30.0,
) -> np.ndarray:
    """Discounted expected revenue of each customer over the next ``horizon_days``.

    The horizon is cut into steps of ``step_days`` (the last one shorter when it does not divide);
    each step's expected purchases (the increase in the BG/NBD expectation) times the Gamma-Gamma
    expected spend is discounted to today at the step's end.
    """
    if horizon_days <= 0:
        raise ValueError("horizon_days must be > 0")
    x, t_x, big_t = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    value = spend.expected_average_value(x, summary["monetary_value"].to_numpy(dtype=float))
    ends = np.append(np.arange(step_days, horizon_days, step_days), horizon_days)
    total = np.zeros_like(x)
    previous = np.zeros_like(x)
    for end in ends:
        cumulative = purchases.expected_purchases(end / unit_days, x, t_x, big_t)
        discount = (1 + annual_discount_rate) ** (end / 365.0)
        total += (cumulative - previous) * value / discount
        previous = cumulative
    return total


def _check_summary(x: np.ndarray, t_x: np.ndarray, t: np.ndarray) -> None:
    if not (len(x) == len(t_x) == len(t)):
        raise ValueError("frequency, recency and T must have the same length")
    if np.any(~np.isfinite(x) | ~np.isfinite(t_x) | ~np.isfinite(t)):
        raise ValueError("frequency, recency and T must be finite numbers")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > t + 1e-9):
        raise ValueError("expected 0 <= recency <= T and frequency >= 0 for every customer")
