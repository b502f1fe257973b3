"""The Open Bandit Dataset sample bundled in the ``obp`` package, and obp's README check.

obp's README evaluates Bernoulli Thompson sampling (with ZOZOTOWN's production prior) on the log of
the uniform-random policy, campaign 'all', and prints an IPW estimate of 0.004553 and a value 1.198
times the logged policy's. ``bts_action_dist`` reproduces obp's
``BernoulliTS.compute_batch_action_dist`` draw for draw (the same legacy ``RandomState`` stream), so
the estimate is the same to the last digit.

obp itself needs Python < 3.11, so ``make setup`` installs it without its dependencies
(``pip install --no-deps --ignore-requires-python obp==0.5.7``) only for its data: the CSVs and the
prior are read from the installed package directory, never imported as code, never downloaded here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.stats import rankdata

from accord.decisions.ope import LoggedFeedback
from accord.errors import AccordError

BEHAVIOR_POLICIES = ("random", "bts")
CAMPAIGNS = ("all", "men", "women")
PUBLISHED_IPW = 0.004553
PUBLISHED_RELATIVE = 1.198


class DatasetMissing(AccordError):
    """The obp package (and so the Open Bandit Dataset sample) is not installed."""


def obp_dir() -> Path:
    spec = importlib.util.find_spec("obp")  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise DatasetMissing("the Open Bandit Dataset sample comes from the obp package, which is not installed: "
                             "run make setup, or pip install --no-deps --ignore-requires-python obp==0.5.7")
    return Path(next(iter(spec.submodule_search_locations)))


def load_obd(behavior_policy: str = "random", campaign: str = "all") -> LoggedFeedback:
    """The bundled sample as obp's ``OpenBanditDataset.obtain_batch_bandit_feedback`` reads it."""
    if behavior_policy not in BEHAVIOR_POLICIES or campaign not in CAMPAIGNS:
        raise ValueError(f"expected a behavior policy in {BEHAVIOR_POLICIES} and a campaign in {CAMPAIGNS}")
    folder = obp_dir() / "dataset" / "obd" / behavior_policy / campaign
    data = pd.read_csv(folder / f"{campaign}.csv", index_col=0)
    items = pd.read_csv(folder / "item_context.csv", index_col=0)
    data = data.sort_values("timestamp")
    position = (rankdata(data["position"].to_numpy(), "dense") - 1).astype(int)
    return LoggedFeedback(action=data["item_id"].to_numpy(), position=position,
                          reward=data["click"].to_numpy(), pscore=data["propensity_score"].to_numpy(),
                          n_actions=int(items.shape[0]), len_list=int(position.max() + 1))


def zozotown_prior(campaign: str = "all") -> tuple[np.ndarray, np.ndarray]:
    with (obp_dir() / "policy" / "conf" / "prior_bts.yaml").open("rb") as f:
        prior = yaml.safe_load(f)[campaign]
    return np.asarray(prior["alpha"], dtype=float), np.asarray(prior["beta"], dtype=float)


def bts_action_dist(alpha: np.ndarray, beta: np.ndarray, len_list: int, n_rounds: int, n_sim: int = 100_000,
                    random_state: int = 12345) -> np.ndarray:
    """How often Bernoulli Thompson sampling with Beta(alpha, beta) puts each action at each position.

    obp draws one Beta vector per simulation from ``np.random.RandomState(random_state)`` and ranks it;
    drawing all simulations at once from the same legacy stream gives the same numbers, faster."""
    rs = np.random.RandomState(random_state)
    draws = rs.beta(alpha, beta, size=(n_sim, alpha.shape[0]))
    ranked = np.argsort(-draws, axis=1)[:, :len_list]
    counts = np.zeros((alpha.shape[0], len_list))
    for pos in range(len_list):
        counts[:, pos] = np.bincount(ranked[:, pos], minlength=alpha.shape[0])
    return np.tile(counts / n_sim, (n_rounds, 1, 1))


def readme_check(n_sim: int = 100_000, random_state: int = 12345) -> dict[str, float]:
    """obp's README example: BernoulliTS (ZOZOTOWN prior) evaluated on the random policy's log."""
    from accord.decisions.ope import evaluate, mean_reward_model

    log = load_obd("random", "all")
    alpha, beta = zozotown_prior("all")
    dist = bts_action_dist(alpha, beta, log.len_list, log.n_rounds, n_sim, random_state)
    value = evaluate(log, dist, mean_reward_model(log))
    rel = value.relative()
    return {"rounds": log.n_rounds, "ipw": value.ipw, "relative_ipw": rel["ipw"] or 0.0, "snipw": value.snipw,
            "dr": value.dr or 0.0, "logged_ctr": value.logged, "published_ipw": PUBLISHED_IPW,
            "published_relative": PUBLISHED_RELATIVE}
