"""Identity metrics: how found clusters compare with the true people."""

from accord.evaluate.metrics import (
    Scores,
    bcubed_scores,
    cluster_counts,
    missed_links,
    missed_pair_count,
    over_merged_people,
    over_merges,
    pairwise_scores,
    score_clusters,
)
from accord.evaluate.report import evaluate, read_truth

__all__ = [
    "Scores", "bcubed_scores", "cluster_counts", "evaluate", "missed_links", "missed_pair_count",
    "over_merged_people", "over_merges", "pairwise_scores", "read_truth", "score_clusters",
]
