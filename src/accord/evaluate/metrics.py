"""Identity metrics: predicted clusters against true people.

Both inputs map a record id to a label (cluster id, person id). Only records
present in both are scored; the caller reports the rest.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Hashable


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float

    def as_dict(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1}


def _f1(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def _common(predicted: Mapping[Hashable, Hashable], truth: Mapping[Hashable, Hashable]) -> list[Hashable]:
    return [r for r in predicted if r in truth]


def pairwise_scores(predicted: Mapping[Hashable, Hashable], truth: Mapping[Hashable, Hashable]) -> Scores:
    """Precision and recall over record pairs: a pair is positive when both records share a label.

    With no pairs on a side the score on that side is 1.0 (nothing claimed, nothing missed).
    """
    records = _common(predicted, truth)
    both = Counter((predicted[r], truth[r]) for r in records)
    true_positive = sum(_pairs(n) for n in both.values())
    found = sum(_pairs(n) for n in Counter(predicted[r] for r in records).values())
    actual = sum(_pairs(n) for n in Counter(truth[r] for r in records).values())
    p = true_positive / found if found else 1.0
    r = true_positive / actual if actual else 1.0
    return Scores(p, r, _f1(p, r))


def bcubed_scores(predicted: Mapping[Hashable, Hashable], truth: Mapping[Hashable, Hashable]) -> Scores:
    """B-cubed: per record, the share of its found cluster that is truly its person (precision)
    and the share of its person that is in its found cluster (recall), averaged over records."""
    records = _common(predicted, truth)
    if not records:
        return Scores(1.0, 1.0, 1.0)
    both = Counter((predicted[r], truth[r]) for r in records)
    found_size = Counter(predicted[r] for r in records)
    true_size = Counter(truth[r] for r in records)
    p = sum(both[(predicted[r], truth[r])] / found_size[predicted[r]] for r in records) / len(records)
    rc = sum(both[(predicted[r], truth[r])] / true_size[truth[r]] for r in records) / len(records)
    return Scores(p, rc, _f1(p, rc))


def cluster_counts(predicted: Mapping[Hashable, Hashable], truth: Mapping[Hashable, Hashable]) -> dict[str, int]:
    records = _common(predicted, truth)
    return {"true": len({truth[r] for r in records}), "found": len({predicted[r] for r in records})}


def over_merges(predicted: Mapping[Hashable, Hashable], truth: Mapping[Hashable, Hashable],
                limit: int = 10) -> list[dict]:
    """Found clusters holding more than one true person, most people first."""
    people: dict[Hashable, dict[Hashable, list[Hashable]]] = defaultdict(lambda: defaultdict(list))
    for r in _common(predicted, truth):
        people[predicted[r]][truth[r]].append(r)
    merged = [(cid, by_person) for cid, by_person in people.items() if len(by_person) > 1]
    merged.sort(key=lambda x: (-len(x[1]), -sum(map(len, x[1].values())), str(x[0])))
    return [{"cluster_id": cid, "people": len(by_person), "records": sum(map(len, by_person.values())),
             "members": {str(p): sorted(map(str, rs)) for p, rs in sorted(by_person.items(), key=lambda x: str(x[0]))}}
            for cid, by_person in merged[:limit]]


def over_merged_people(predicted: Mapping[Hashable, Hashable], truth: Mapping[Hashable, Hashable]) -> int:
    """True people with at least one record in a found cluster that also holds someone else."""
    people_in: dict[Hashable, set[Hashable]] = defaultdict(set)
    records = _common(predicted, truth)
    for r in records:
        people_in[predicted[r]].add(truth[r])
    return len({truth[r] for r in records if len(people_in[predicted[r]]) > 1})


def missed_links(predicted: Mapping[Hashable, Hashable], truth: Mapping[Hashable, Hashable],
                 evidence: Mapping[tuple[Hashable, Hashable], float] | None = None,
                 limit: int = 10) -> list[dict]:
    """Record pairs of one true person left in different found clusters, with the model's
    probability for the pair when it was scored (``evidence[(a, b)]`` with a < b), strongest first."""
    evidence = evidence or {}
    by_person: dict[Hashable, list[Hashable]] = defaultdict(list)
    for r in _common(predicted, truth):
        by_person[truth[r]].append(r)
    missed = []
    for person, records in by_person.items():
        records = sorted(records, key=str)
        for i, a in enumerate(records):
            for b in records[i + 1:]:
                if predicted[a] != predicted[b]:
                    key = (a, b) if str(a) < str(b) else (b, a)
                    missed.append({"person_id": str(person), "record_a": str(key[0]), "record_b": str(key[1]),
                                   "probability": evidence.get(key)})
    missed.sort(key=lambda m: (-(m["probability"] if m["probability"] is not None else -1.0),
                               m["record_a"], m["record_b"]))
    return missed[:limit]


def score_clusters(predicted: Mapping[Hashable, Hashable], truth: Mapping[Hashable, Hashable],
                   evidence: Mapping[tuple[Hashable, Hashable], float] | None = None,
                   limit: int = 10) -> dict:
    """Every metric in one dict, the shape ``accord evaluate`` prints."""
    records = _common(predicted, truth)
    return {
        "pairwise": pairwise_scores(predicted, truth).as_dict(),
        "bcubed": bcubed_scores(predicted, truth).as_dict(),
        "clusters": cluster_counts(predicted, truth),
        "records": {"scored": len(records), "predicted_only": len(predicted) - len(records),
                    "truth_only": sum(1 for r in truth if r not in predicted)},
        "over_merged_people": over_merged_people(predicted, truth),
        "worst_over_merges": over_merges(predicted, truth, limit),
        "missed_link_pairs": missed_pair_count(predicted, truth),
        "missed_links": missed_links(predicted, truth, evidence, limit),
    }


def missed_pair_count(predicted: Mapping[Hashable, Hashable], truth: Mapping[Hashable, Hashable]) -> int:
    """True record pairs left in different found clusters."""
    records = _common(predicted, truth)
    both = Counter((predicted[r], truth[r]) for r in records)
    actual = sum(_pairs(n) for n in Counter(truth[r] for r in records).values())
    return actual - sum(_pairs(n) for n in both.values())
