"""BG/NBD and Gamma-Gamma: hand-computed likelihoods, the transaction summary, and the published CDNOW fits."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from accord.traits.clv import (
    BetaGeoModel,
    BetaGeoParams,
    GammaGammaModel,
    GammaGammaParams,
    bgnbd_log_likelihood,
    customer_lifetime_value,
    gamma_gamma_log_likelihood,
)
from accord.traits.clv_summary import summarize_transactions


def _lifetimes_datasets() -> Path:
    # The CDNOW files ship inside the `lifetimes` package (a dev dependency); find them without
    # importing lifetimes itself, whose own code is not needed.
    spec = importlib.util.find_spec("lifetimes")
    assert spec is not None and spec.submodule_search_locations, "install the dev extra: pip install -e '.[dev]'"
    return Path(list(spec.submodule_search_locations)[0]) / "datasets"


@pytest.fixture(scope="module")
def cdnow_transactions() -> pd.DataFrame:
    """The 2,357-customer CDNOW sample: one row per transaction (customer, date, amount), 1997-01 .. 1998-06."""
    raw = pd.read_csv(_lifetimes_datasets() / "CDNOW_sample.txt", sep=r"\s+", header=None,
                      names=["master_id", "customer", "date", "quantity", "amount"], dtype={"date": str})
    return pd.DataFrame({"customer": raw["customer"], "date": pd.to_datetime(raw["date"], format="%Y%m%d"),
                         "amount": raw["amount"]})


@pytest.fixture(scope="module")
def cdnow_summary(cdnow_transactions: pd.DataFrame) -> pd.DataFrame:
    # 39-week calibration period: 1997-01-01 .. 1997-09-30.
    return summarize_transactions(cdnow_transactions, calibration_end=pd.Timestamp("1997-09-30"),
                                  observation_end=pd.Timestamp("1998-06-30"), unit_days=7)


def _within_one_percent(got: float, published: float) -> bool:
    return abs(got - published) <= 0.01 * abs(published)


# --- likelihoods by hand -------------------------------------------------------------------------


def test_bgnbd_likelihood_of_a_one_time_buyer_matches_the_closed_form() -> None:
    # x = 0: L = B(a, b)/B(a, b) * alpha^r / (alpha + T)^r = 1/2 with every parameter 1 and T = 1.
    ll = bgnbd_log_likelihood(BetaGeoParams(1, 1, 1, 1), [0], [0], [1])
    assert ll[0] == pytest.approx(math.log(1 / 2), abs=1e-12)


def test_bgnbd_likelihood_of_a_repeat_buyer_adds_the_dropped_out_branch() -> None:
    # x = 1, t_x = 1, T = 2, all parameters 1:
    # alive: B(1,2)/B(1,1) * 1/3^2 = 1/18; dropped after the purchase: B(2,1)/B(1,1) * 1/2^2 = 1/8.
    ll = bgnbd_log_likelihood(BetaGeoParams(1, 1, 1, 1), [1], [1], [2])
    assert ll[0] == pytest.approx(math.log(1 / 18 + 1 / 8), abs=1e-12)


def test_gamma_gamma_likelihood_matches_the_marginal_density() -> None:
    # p = q = gamma = 1, one transaction of 1: the marginal density is 1 / (1 + m)^2 = 1/4.
    ll = gamma_gamma_log_likelihood(GammaGammaParams(1, 1, 1), [1], [1])
    assert ll[0] == pytest.approx(math.log(1 / 4), abs=1e-12)


def test_p_alive_is_one_without_repeat_purchases() -> None:
    model = BetaGeoModel()
    model.params_ = BetaGeoParams(0.243, 4.414, 0.793, 2.426)
    assert model.p_alive([0, 0], [0, 0], [10, 38]).tolist() == [1.0, 1.0]


def test_conditional_expectation_matches_the_published_example() -> None:
    # Fader, Hardie and Lee (2005), section 4: a customer with x = 2, t_x = 30.43, T = 38.86 weeks is
    # expected to make 1.226 purchases in the next 39 weeks.
    model = BetaGeoModel()
    model.params_ = BetaGeoParams(0.243, 4.414, 0.793, 2.426)
    assert model.expected_purchases(39, [2], [30.43], [38.86])[0] == pytest.approx(1.226, abs=0.001)


def test_clv_without_discount_is_expected_purchases_times_expected_spend() -> None:
    bg, gg = BetaGeoModel(), GammaGammaModel()
    bg.params_ = BetaGeoParams(0.243, 4.414, 0.793, 2.426)
    gg.params_ = GammaGammaParams(6.25, 3.74, 15.44)
    summary = pd.DataFrame({"frequency": [2.0, 0.0], "recency": [30.43, 0.0], "T": [38.86, 38.86],
                            "monetary_value": [22.35, 0.0]})
    clv = customer_lifetime_value(bg, gg, summary, horizon_days=273, unit_days=7, annual_discount_rate=0.0)
    expected = (bg.expected_purchases(39, summary["frequency"], summary["recency"], summary["T"])
                * gg.expected_average_value(summary["frequency"], summary["monetary_value"]))
    assert clv == pytest.approx(expected, rel=1e-9)


def test_discounting_lowers_clv() -> None:
    bg, gg = BetaGeoModel(), GammaGammaModel()
    bg.params_ = BetaGeoParams(0.243, 4.414, 0.793, 2.426)
    gg.params_ = GammaGammaParams(6.25, 3.74, 15.44)
    summary = pd.DataFrame({"frequency": [5.0], "recency": [30.0], "T": [38.0], "monetary_value": [40.0]})
    plain = customer_lifetime_value(bg, gg, summary, horizon_days=730, unit_days=7, annual_discount_rate=0.0)
    discounted = customer_lifetime_value(bg, gg, summary, horizon_days=730, unit_days=7, annual_discount_rate=0.2)
    assert discounted[0] < plain[0]


def test_customers_without_repeat_purchases_get_the_population_mean_spend() -> None:
    gg = GammaGammaModel()
    gg.params_ = GammaGammaParams(6.25, 3.74, 15.44)
    assert gg.expected_average_value([0], [0])[0] == pytest.approx(6.25 * 15.44 / 2.74)


# --- the summary ---------------------------------------------------------------------------------


def test_summary_counts_repeat_purchase_days_and_excludes_the_first_purchase_from_spend() -> None:
    tx = pd.DataFrame({
        "customer": ["a", "a", "a", "a", "a", "b"],
        "date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-08", "2024-01-15", "2024-02-05",
                                "2024-01-29"]),
        "amount": [10.0, 5.0, 20.0, 30.0, 40.0, 7.0],
    })
    s = summarize_transactions(tx, calibration_end=pd.Timestamp("2024-01-29"),
                               observation_end=pd.Timestamp("2024-02-05"), unit_days=7)
    a = s.loc["a"]
    assert (a["frequency"], a["recency"], a["T"], a["monetary_value"]) == (2.0, 2.0, 4.0, 25.0)
    assert (a["frequency_holdout"], a["monetary_value_holdout"], a["duration_holdout"]) == (1.0, 40.0, 1.0)
    b = s.loc["b"]
    assert (b["frequency"], b["recency"], b["T"], b["monetary_value"]) == (0.0, 0.0, 0.0, 0.0)


def test_summary_leaves_out_customers_who_first_buy_after_the_calibration_end() -> None:
    tx = pd.DataFrame({"customer": ["a", "b"], "date": pd.to_datetime(["2024-01-01", "2024-03-01"]),
                       "amount": [1.0, 2.0]})
    s = summarize_transactions(tx, calibration_end=pd.Timestamp("2024-02-01"), unit_days=1)
    assert s.index.tolist() == ["a"]


# --- CDNOW: the published fits -------------------------------------------------------------------


def test_cdnow_summary_built_from_the_transaction_log_matches_the_published_summary(
        cdnow_summary: pd.DataFrame) -> None:
    published = pd.read_csv(_lifetimes_datasets() / "cdnow_customers_summary_with_transactions.csv").set_index("ID")
    assert len(cdnow_summary) == 2357
    assert np.array_equal(cdnow_summary["frequency"].to_numpy(), published["x"].to_numpy())
    # The published file rounds to two decimals.
    assert np.abs(cdnow_summary["recency"].to_numpy() - published["t_x"].to_numpy()).max() < 0.006
    assert np.abs(cdnow_summary["T"].to_numpy() - published["T"].to_numpy()).max() < 0.006
    assert np.abs(cdnow_summary["monetary_value"].to_numpy() - published["zbar"].to_numpy()).max() < 0.006


def test_bgnbd_reproduces_the_published_cdnow_fit_within_one_percent(cdnow_summary: pd.DataFrame) -> None:
    model = BetaGeoModel().fit(cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"])
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    got = model.params.as_dict()
    assert all(_within_one_percent(got[k], v) for k, v in published.items()), got
    assert model.log_likelihood_ == pytest.approx(-9582.4, abs=0.5)  # the paper's log-likelihood


def test_gamma_gamma_reproduces_the_published_cdnow_fit_within_one_percent(cdnow_summary: pd.DataFrame) -> None:
    model = GammaGammaModel().fit(cdnow_summary["frequency"], cdnow_summary["monetary_value"])
    published = {"p": 6.25, "q": 3.74, "gamma": 15.44}
    got = model.params.as_dict()
    assert model.n_customers_ == 946
    assert all(_within_one_percent(got[k], v) for k, v in published.items()), got


def test_fit_on_the_published_summary_file_matches_too() -> None:
    published = pd.read_csv(_lifetimes_datasets() / "cdnow_customers_summary.csv")
    model = BetaGeoModel().fit(published["frequency"], published["recency"], published["T"])
    assert model.params.as_dict() == pytest.approx({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, rel=0.01)


def test_quadrature_agrees_with_the_closed_form_expectation() -> None:
    model = BetaGeoModel()
    model.params_ = BetaGeoParams(0.243, 4.414, 0.793, 2.426)
    for x, t_x, big_t in [(0, 0.0, 38.86), (2, 30.43, 38.86), (10, 30.0, 38.0)]:
        closed = model.expected_purchases(39, [x], [t_x], [big_t])[0]
        integrated = model._expected_if_alive_by_quadrature(39, x, big_t) * model.p_alive([x], [t_x], [big_t])[0]
        assert integrated == pytest.approx(closed, rel=1e-9)


def test_a_fit_at_the_boundary_names_the_parameters_and_still_predicts() -> None:
    # Five customers buying like clockwork: no heterogeneity and no drop-out to estimate.
    frequency, recency, T = [3, 2, 2, 1, 2], [8.0, 7.0, 8.6, 1.0, 8.0], [9.0, 9.0, 9.0, 9.0, 9.0]
    model = BetaGeoModel().fit(frequency, recency, T)
    assert model.at_bounds_ != []
    predicted = model.expected_purchases(13, frequency, recency, T)
    assert np.all(np.isfinite(predicted)) and np.all(predicted > 0) and np.all(predicted < 13)


def test_analytic_gradients_match_finite_differences() -> None:
    from scipy import optimize

    from accord.traits.clv import _bgnbd_gradient, _bgnbd_ll, _gamma_gamma_gradient

    rng = np.random.default_rng(1)
    x = rng.integers(0, 8, 300).astype(float)
    T = rng.uniform(10, 40, 300)
    t_x = np.where(x > 0, rng.uniform(0, 1, 300) * T, 0.0)
    w = rng.integers(1, 3, 300).astype(float)
    unique_x, x_index = np.unique(x, return_inverse=True)

    def bgnbd(log_params: np.ndarray) -> float:
        return float(np.sum(w * _bgnbd_ll(BetaGeoParams(*np.exp(log_params)), x, t_x, T, unique_x, x_index)))

    at = np.log([0.4, 3.0, 0.9, 2.2])
    analytic = _bgnbd_gradient(BetaGeoParams(*np.exp(at)), x, t_x, T, unique_x, x_index, w)
    assert analytic == pytest.approx(optimize.approx_fprime(at, bgnbd, 1e-6), rel=1e-4)

    m, repeats = rng.gamma(5, 5, 300), x + 1

    def gamma_gamma(log_params: np.ndarray) -> float:
        return float(np.sum(w * gamma_gamma_log_likelihood(GammaGammaParams(*np.exp(log_params)), repeats, m)))

    at = np.log([3.0, 4.0, 12.0])
    analytic = _gamma_gamma_gradient(GammaGammaParams(*np.exp(at)), repeats, m, w)
    assert analytic == pytest.approx(optimize.approx_fprime(at, gamma_gamma, 1e-6), rel=1e-4)
