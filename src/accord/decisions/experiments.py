"""Experiment results: units per group, the metric per unit, and GrowthBook's statistics.

A unit is a customer (or an anonymous visitor); its metric joins every outcome of its decisions in
the experiment: clicked or converted at least once (a proportion), or total revenue (a mean).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from accord.decisions.settings import DecisionsSettings, ExperimentSpec
from accord.decisions.stats import SRM_P_THRESHOLD, GroupStats, as_dict, bayesian, srm_p_value, t_test
from accord.errors import ConfigError
from accord.store import Store


@dataclass
class ExperimentReport:
    experiment: str
    metric: str
    baseline: str
    groups: list[dict[str, Any]] = field(default_factory=list)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    srm: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "metric": self.metric, "baseline": self.baseline,
                "groups": self.groups, "comparisons": self.comparisons, "srm": self.srm}


def find_experiment(settings: DecisionsSettings, name: str) -> ExperimentSpec:
    found = settings.experiment(name)
    if found is None:
        known = ", ".join(e.name for e in settings.experiments) or "none"
        raise ConfigError(f"no experiment {name!r} in decisions.experiments; known: {known}")
    return found


def unit_metrics(store: Store, experiment: ExperimentSpec) -> dict[str, list[tuple[str, float]]]:
    """group -> [(unit, metric value)] for every unit that got a decision in the experiment."""
    if experiment.metric == "revenue":
        value = "COALESCE(SUM(o.revenue), 0)"
    else:
        value = f"MAX(CASE WHEN o.{experiment.metric} THEN 1 ELSE 0 END)"
    rows = store.fetchall(
        f"SELECT d.variant, d.unit, {value} FROM decisions d "
        "LEFT JOIN decision_outcomes o ON o.decision_id = d.decision_id "
        "WHERE d.experiment = ? GROUP BY d.variant, d.unit ORDER BY d.variant, d.unit", (experiment.name,))
    out: dict[str, list[tuple[str, float]]] = {}
    for variant, unit, v in rows:
        out.setdefault(variant, []).append((unit, float(v or 0)))
    return out


def _stats(values: list[float], metric: str) -> GroupStats:
    n = len(values)
    if metric == "revenue":
        return GroupStats.sample(n, sum(values), sum(v * v for v in values))
    return GroupStats.proportion(n, int(sum(values)))


def experiment_report(store: Store, settings: DecisionsSettings, name: str) -> ExperimentReport:
    experiment = find_experiment(settings, name)
    per_group = unit_metrics(store, experiment)
    planned = experiment.groups()
    baseline = experiment.baseline_group()
    report = ExperimentReport(experiment.name, experiment.metric, baseline)
    stats: dict[str, GroupStats] = {}
    for group, share in planned.items():
        values = [v for _, v in per_group.get(group, [])]
        stats[group] = _stats(values, experiment.metric)
        report.groups.append({"group": group, "planned_share": round(share, 6), "units": stats[group].n,
                              "mean": stats[group].mean, "variance": stats[group].variance})
    unexpected = sorted(set(per_group) - set(planned))
    p = srm_p_value([stats[g].n for g in planned], list(planned.values()))
    report.srm = {"p_value": p, "mismatch": p < SRM_P_THRESHOLD, "threshold": SRM_P_THRESHOLD,
                  "observed": {g: stats[g].n for g in planned}, "groups_not_in_config": unexpected}
    for group in planned:
        if group == baseline:
            continue
        a, b = stats[baseline], stats[group]
        report.comparisons.append({"group": group, "versus": baseline,
                                   "frequentist": as_dict(t_test(a, b)), "bayesian": as_dict(bayesian(a, b))})
    return report
