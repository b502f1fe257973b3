"""`accord evaluate`: score the store's current clusters against a truth file."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from accord.errors import AccordError
from accord.evaluate.metrics import score_clusters
from accord.store.backend import Store

TRUTH_COLUMNS = ("source", "record_key", "person_id")


def read_truth(path: str | Path) -> dict[str, str]:
    """``source:record_key`` -> person_id from a CSV with columns source, record_key, person_id."""
    p = Path(path)
    try:
        handle = p.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise AccordError(f"{p}: cannot read truth file: {exc}") from None
    truth: dict[str, str] = {}
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in TRUTH_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise AccordError(f"{p}:1: missing column(s) {', '.join(missing)}; expected {', '.join(TRUTH_COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            if not row["source"] or not row["record_key"] or not row["person_id"]:
                raise AccordError(f"{p}:{line}: source, record_key and person_id must all be filled")
            truth[f"{row['source']}:{row['record_key']}"] = row["person_id"]
    return truth


def evaluate(store: Store, truth_csv_path: str | Path, limit: int = 10) -> dict[str, Any]:
    """Pairwise and B-cubed precision/recall/F1, cluster counts, over-merges and missed links.

    Missed links carry the best model probability the pair got in the last run, when it was scored.
    """
    truth = read_truth(truth_csv_path)
    rows = store.fetchall("SELECT source, record_key, cluster_id FROM identity")
    if not rows:
        raise AccordError("the store has no identity clusters yet; run 'accord resolve' first")
    predicted = {f"{s}:{k}": c for s, k, c in rows}
    evidence: dict[tuple[str, str], float] = {}
    for a, b, p in store.fetchall("SELECT record_a, record_b, MAX(probability) FROM match_edges "
                                  "WHERE probability IS NOT NULL GROUP BY record_a, record_b"):
        evidence[(a, b) if a < b else (b, a)] = float(p)
    return score_clusters(predicted, truth, evidence, limit)
