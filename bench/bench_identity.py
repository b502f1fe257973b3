"""Identity benchmark: FEBRL3 (dedupe) and FEBRL4 (linkage), Accord beside bare Splink.

Both use Splink's documented settings for each dataset (accord.evaluate.febrl).
Bare Splink clusters its predictions with cluster_pairwise_predictions_at_threshold;
Accord clusters the same model's edges with its constrained clustering (FEBRL4:
at most one record per file in a cluster). Targets: FEBRL4 pairwise F1 >= 0.998,
FEBRL3 pairwise F1 >= 0.996.

    .venv/bin/python bench/bench_identity.py
"""

from __future__ import annotations

import time

import pandas as pd

from accord.evaluate.febrl import febrl3, febrl3_settings, febrl4, febrl4_settings
from accord.evaluate.metrics import score_clusters
from accord.identity.clustering import ClusterOptions, cluster_edges
from accord.identity.model import IdentityModel

THRESHOLD = 0.7
TARGETS = {"febrl3": 0.996, "febrl4": 0.998}


def run(name: str, frames, model: IdentityModel, unique=None) -> list[dict]:
    records = pd.concat(frames) if isinstance(frames, list) else frames
    truth = dict(zip(records["rid"], records["person_id"]))
    started = time.perf_counter()
    model.fit(frames)
    edges = model.predict(frames, 0.2)
    trained = time.perf_counter() - started
    linker = model._linker_for(frames)
    bare_started = time.perf_counter()
    predictions = linker.inference.predict(threshold_match_probability=0.2, warning_mode="never")
    bare = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=THRESHOLD).as_pandas_dataframe()
    bare_seconds = time.perf_counter() - bare_started
    bare_clusters = dict(zip(bare["rid"].astype(str), bare["cluster_id"].astype(str)))
    started = time.perf_counter()
    result = cluster_edges(records["rid"], edges.assign(rule_or_model="model", priority=None),
                           ClusterOptions(auto_merge_threshold=THRESHOLD, review_threshold=0.2),
                           unique_values=unique)
    cluster_seconds = time.perf_counter() - started
    rows = []
    for system, clusters, seconds in (("splink", bare_clusters, bare_seconds),
                                      ("accord", result.clusters, cluster_seconds)):
        s = score_clusters(clusters, truth)
        rows.append({"dataset": name, "system": system, "pairwise_p": s["pairwise"]["precision"],
                     "pairwise_r": s["pairwise"]["recall"], "pairwise_f1": s["pairwise"]["f1"],
                     "bcubed_f1": s["bcubed"]["f1"], "true": s["clusters"]["true"],
                     "found": s["clusters"]["found"], "over_merged_people": s["over_merged_people"],
                     "train_predict_s": round(trained, 2), "cluster_s": round(seconds, 2)})
    return rows


def main() -> None:
    rows = []
    df = febrl3()
    rows += run("febrl3", df, IdentityModel(febrl3_settings()))
    a, b = febrl4()
    one_per_file = {r: {f"file:{i}": r} for i, f in enumerate((a, b)) for r in f["rid"]}
    rows += run("febrl4", [a, b], IdentityModel(febrl4_settings(), link_type="link_only"), one_per_file)
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for name, target in TARGETS.items():
        got = table[(table.dataset == name) & (table.system == "accord")]["pairwise_f1"].iloc[0]
        print(f"{name}: accord pairwise F1 {got:.4f} {'>=' if got >= target else '<'} target {target}")


if __name__ == "__main__":
    main()
