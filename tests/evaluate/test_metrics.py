from accord.evaluate.metrics import (
    bcubed_scores,
    cluster_counts,
    missed_links,
    missed_pair_count,
    over_merged_people,
    over_merges,
    pairwise_scores,
    score_clusters,
)

# Truth: people P = {a, b, c}, Q = {d, e}, R = {f}. Found: {a, b}, {c, d, e}, {f}.
TRUTH = {"a": "P", "b": "P", "c": "P", "d": "Q", "e": "Q", "f": "R"}
FOUND = {"a": 1, "b": 1, "c": 2, "d": 2, "e": 2, "f": 3}


def test_pairwise_counts_record_pairs():
    # True pairs: ab ac bc de (4). Found pairs: ab cd ce de (4). Both: ab de (2).
    scores = pairwise_scores(FOUND, TRUTH)
    assert (scores.precision, scores.recall, scores.f1) == (0.5, 0.5, 0.5)


def test_bcubed_averages_per_record_shares():
    scores = bcubed_scores(FOUND, TRUTH)
    # precision per record: a,b 1; c 1/3; d,e 2/3; f 1 -> 14/3 / 6
    assert abs(scores.precision - (2 + 1 / 3 + 4 / 3 + 1) / 6) < 1e-12
    # recall per record: a,b 2/3; c 1/3; d,e 1; f 1 -> 5 / 6... (4/3 + 1/3 + 2 + 1) / 6
    assert abs(scores.recall - (4 / 3 + 1 / 3 + 2 + 1) / 6) < 1e-12


def test_perfect_clustering_scores_one():
    assert pairwise_scores(TRUTH, TRUTH).f1 == 1.0
    assert bcubed_scores(TRUTH, TRUTH).f1 == 1.0


def test_all_singletons_have_full_precision_and_no_recall():
    singletons = {r: r for r in TRUTH}
    scores = pairwise_scores(singletons, TRUTH)
    assert (scores.precision, scores.recall, scores.f1) == (1.0, 0.0, 0.0)


def test_cluster_counts():
    assert cluster_counts(FOUND, TRUTH) == {"true": 3, "found": 3}


def test_over_merges_list_clusters_with_several_people():
    assert over_merges(FOUND, TRUTH) == [
        {"cluster_id": 2, "people": 2, "records": 3, "members": {"P": ["c"], "Q": ["d", "e"]}}]


def test_over_merged_people_counts_people_sharing_a_cluster_with_someone_else():
    assert over_merged_people(FOUND, TRUTH) == 2


def test_missed_links_carry_the_pair_probability_strongest_first():
    missed = missed_links(FOUND, TRUTH, {("a", "c"): 0.4})
    assert missed == [
        {"person_id": "P", "record_a": "a", "record_b": "c", "probability": 0.4},
        {"person_id": "P", "record_a": "b", "record_b": "c", "probability": None},
    ]
    assert missed_pair_count(FOUND, TRUTH) == 2


def test_score_clusters_has_the_documented_shape():
    report = score_clusters(FOUND, {**TRUTH, "z": "Z"})
    assert report["pairwise"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    assert set(report["bcubed"]) == {"precision", "recall", "f1"}
    assert report["clusters"] == {"true": 3, "found": 3}
    assert report["records"] == {"scored": 6, "predicted_only": 0, "truth_only": 1}
