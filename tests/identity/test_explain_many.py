"""Explaining many pairs at once (the review queue's waterfalls) gives what explaining each gives."""

from __future__ import annotations

import pytest

from accord.config import ProjectConfig
from accord.errors import AccordError
from accord.identity import model as model_module
from accord.identity import stage as stage_module
from accord.identity.stage import explain, explain_many
from accord.ui.data.review import EvidenceCache
from tests.identity.test_stage import resolved  # noqa: F401 - the fixture

CFG = ProjectConfig()


def _edges(store, limit: int) -> list[tuple[str, str, float]]:
    return [(a, b, float(p)) for a, b, p in store.fetchall(
        "SELECT record_a, record_b, MAX(probability) FROM match_edges WHERE probability IS NOT NULL "
        f"GROUP BY record_a, record_b ORDER BY 3, 1, 2 LIMIT {limit}")]


def test_explaining_pairs_together_equals_explaining_each_and_the_stored_scores(resolved, monkeypatch):  # noqa: F811
    store = resolved[0]
    monkeypatch.setattr(model_module, "EXPLAIN_CHUNK", 3)  # several Splink calls, and a partial last one
    edges = _edges(store, 8)
    assert len(edges) == 8
    together = explain_many(store, CFG, [(a, b) for a, b, _ in edges])
    for a, b, probability in edges:
        found = together[(a, b)]
        assert found["match_probability"] == pytest.approx(probability, rel=1e-9)
        assert found == explain(store, CFG, a, b)


def test_a_pair_with_a_record_that_is_gone_gets_its_own_error(resolved):  # noqa: F811
    store = resolved[0]
    (a, b, _), = _edges(store, 1)
    found = explain_many(store, CFG, [(a, b), ("crm:nope", a)])
    assert found[(a, b)]["record_a"] == a
    assert isinstance(found[("crm:nope", a)], AccordError)
    assert "'crm:nope' is not a current source record" in str(found[("crm:nope", a)])


def test_a_cache_miss_explains_the_next_review_pairs_too(resolved, monkeypatch):  # noqa: F811
    store = resolved[0]
    edges = _edges(store, 5)
    for a, b, _ in edges:
        store.execute("UPDATE match_edges SET status = 'review' WHERE record_a = ? AND record_b = ?", (a, b))
    calls: list[int] = []
    real = stage_module.explain_many

    def counting(store_, cfg, pairs):
        calls.append(len(pairs))
        return real(store_, cfg, pairs)

    monkeypatch.setattr("accord.ui.data.review.explain_many", counting)
    cache = EvidenceCache(batch=4)
    a, b, _ = edges[0]  # the weakest of the five
    first = cache.get(store, CFG, a, b)
    assert calls == [4]  # the asked pair and the three strongest others
    assert first["steps"] and first["model_version"] == 1
    assert cache.prefetch(store, CFG) == 1  # the front of the queue: the fourth strongest was left out
    assert cache.prefetch(store, CFG) == 0
    assert calls == [4, 1]
    for a2, b2, _ in edges:
        cache.get(store, CFG, a2, b2)
    assert calls == [4, 1]  # every pair from the cache
    store.execute("UPDATE source_records SET row_hash = 'changed' WHERE source || ':' || record_key = ?", (a,))
    assert cache.get(store, CFG, a, b) is not first
