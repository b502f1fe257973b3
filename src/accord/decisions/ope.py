"""Off-policy evaluation: what another policy would have earned on logged decisions.

The estimators follow Open Bandit Pipeline's definitions (``obp.ope``), for slates with positions:

* IPW   mean( r · w ),                     w = pi_e(a | x, pos) / pi_b(a | x, pos)
* SNIPW sum( r · w ) / sum( w )
* DR    mean( sum_a pi_e(a | x, pos) q(x, a, pos) + w · (r - q(x, a_logged, pos)) )

``action_dist`` has shape (rounds, actions, positions) as in obp; ``q_hat`` the same shape.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LoggedFeedback:
    """Logged bandit feedback: the action taken at each round, its position, reward and propensity."""

    action: np.ndarray
    position: np.ndarray
    reward: np.ndarray
    pscore: np.ndarray
    n_actions: int
    len_list: int

    @property
    def n_rounds(self) -> int:
        return int(self.action.shape[0])


@dataclass(frozen=True)
class PolicyValue:
    ipw: float
    snipw: float
    dr: float | None
    logged: float
    """The logging policy's own value: the mean reward on the log (on-policy)."""

    def relative(self) -> dict[str, float | None]:
        return {"ipw": self.ipw / self.logged if self.logged else None,
                "snipw": self.snipw / self.logged if self.logged else None,
                "dr": None if self.dr is None or not self.logged else self.dr / self.logged}

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "relative": self.relative()}


def importance_weights(log: LoggedFeedback, action_dist: np.ndarray) -> np.ndarray:
    rounds = np.arange(log.n_rounds)
    return action_dist[rounds, log.action, log.position] / log.pscore


def ipw(log: LoggedFeedback, action_dist: np.ndarray) -> float:
    return float(np.mean(log.reward * importance_weights(log, action_dist)))


def snipw(log: LoggedFeedback, action_dist: np.ndarray) -> float:
    w = importance_weights(log, action_dist)
    return float(np.sum(log.reward * w) / np.sum(w))


def doubly_robust(log: LoggedFeedback, action_dist: np.ndarray, q_hat: np.ndarray) -> float:
    rounds = np.arange(log.n_rounds)
    q_pos = q_hat[rounds, :, log.position]
    pi_pos = action_dist[rounds, :, log.position]
    baseline = np.sum(q_pos * pi_pos, axis=1)
    w = importance_weights(log, action_dist)
    return float(np.mean(baseline + w * (log.reward - q_hat[rounds, log.action, log.position])))


def evaluate(log: LoggedFeedback, action_dist: np.ndarray, q_hat: np.ndarray | None = None) -> PolicyValue:
    """IPW, SNIPW and (with a reward model ``q_hat``) DR estimates of the evaluation policy's value."""
    expected = (log.n_rounds, log.n_actions, log.len_list)
    if action_dist.shape != expected:
        raise ValueError(f"action_dist has shape {action_dist.shape}; expected (rounds, actions, positions) "
                         f"= {expected}")
    dr = None if q_hat is None else doubly_robust(log, action_dist, q_hat)
    return PolicyValue(ipw(log, action_dist), snipw(log, action_dist), dr, float(np.mean(log.reward)))


def mean_reward_model(log: LoggedFeedback, prior_weight: float = 1.0) -> np.ndarray:
    """A simple reward model for DR: the smoothed mean reward of each (action, position) in the log,
    the same for every round (context-free, like the policies it is used to evaluate)."""
    shows = np.zeros((log.n_actions, log.len_list))
    rewards = np.zeros((log.n_actions, log.len_list))
    np.add.at(shows, (log.action, log.position), 1)
    np.add.at(rewards, (log.action, log.position), log.reward)
    overall = float(np.mean(log.reward))
    q = (rewards + prior_weight * overall) / (shows + prior_weight)
    return np.broadcast_to(q, (log.n_rounds, log.n_actions, log.len_list))
