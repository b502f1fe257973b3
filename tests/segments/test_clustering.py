"""Clustering segments: k by silhouette, clusters described by what sets them apart, membership history."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from accord.segments.catalog import SegmentError
from accord.segments.clustering import cluster_segments, describe
from accord.segments.membership import members
from tests.segments.conftest import NOW, World

# (how many, rfm_recency, rfm_frequency, rfm_monetary, engagement_trend)
GROUPS = [(30, 5, 5, 5, 1.0), (20, 1, 1, 1, -1.0), (10, 5, 1, 1, 0.0)]


def _seed_groups(world: World) -> None:
    noise = random.Random(7)
    n = 0
    for size, r, f, m, trend in GROUPS:
        for _ in range(size):
            r_, f_, m_, t_ = (v + noise.gauss(0, 0.3) for v in (r, f, m, trend))
            world.customer(f"cus_{n:03d}", traits={"rfm_recency": r_, "rfm_frequency": f_, "rfm_monetary": m_,
                                                    "engagement_trend": t_})
            n += 1


def test_describe_names_the_features_furthest_from_average_strongest_first() -> None:
    assert describe({"rfm_monetary": 1.4, "rfm_recency": 0.9, "rfm_frequency": 0.2, "engagement_trend": -0.6}) == \
        "high spend, recent, falling engagement"
    assert describe({"rfm_monetary": 0.1, "rfm_recency": -0.2}) == "typical on every feature"
    assert describe({"visits": 2.0}) == "high visits"


def test_clusters_are_found_by_silhouette_described_and_written_as_segments(world: World, config_for) -> None:
    _seed_groups(world)
    report = cluster_segments(world.store, config_for(), now=NOW)
    assert report.k == 3
    assert report.k == max(report.silhouette, key=report.silhouette.get)
    assert [(c["segment"], c["customers"]) for c in report.clusters] == [
        ("cluster_1", 30), ("cluster_2", 20), ("cluster_3", 10)]
    words = [set(c["description"].split(", ")) for c in report.clusters]
    assert words[0] <= {"recent", "frequent", "high spend", "rising engagement"} and len(words[0]) == 3
    assert words[1] <= {"lapsed", "infrequent", "low spend", "falling engagement"} and len(words[1]) == 3
    assert "recent" not in words[1] and "high spend" not in words[2]
    assert [m["customer_id"] for m in members(world.store, "cluster_3", limit=100)["members"]] == \
        [f"cus_{i:03d}" for i in range(50, 60)]
    assert world.store.fetchall("SELECT kind, origin, description FROM segments WHERE name = 'cluster_1'") == [
        ("cluster", "cluster", report.clusters[0]["description"])]


def test_clustering_again_with_the_same_data_changes_no_membership(world: World, config_for) -> None:
    _seed_groups(world)
    cluster_segments(world.store, config_for(), now=NOW)
    cluster_segments(world.store, config_for(), now=NOW + timedelta(days=1))
    assert world.store.scalar("SELECT COUNT(*) FROM segment_membership") == 60
    assert world.store.scalar("SELECT COUNT(*) FROM segment_membership WHERE exited_at IS NOT NULL") == 0


def test_a_fixed_k_that_is_smaller_retires_the_clusters_left_over(world: World, config_for) -> None:
    _seed_groups(world)
    cluster_segments(world.store, config_for(), now=NOW)
    report = cluster_segments(world.store, config_for(), k=2, now=NOW + timedelta(days=1))
    assert report.k == 2
    assert world.store.fetchall("SELECT status FROM segments WHERE name = 'cluster_3'") == [("retired",)]
    assert world.store.scalar("SELECT COUNT(*) FROM segment_membership WHERE exited_at IS NULL") == 60


def test_without_rfm_traits_recency_frequency_and_monetary_come_from_events(world: World, config_for) -> None:
    for i in range(30):
        world.customer(f"cus_{i:02d}")
        big = i < 10
        for j in range(5 if big else 1):
            world.event(f"e{i}_{j}", ago=timedelta(days=1 if big else 200), event="Order Completed",
                        identity=("user_id", f"cus_{i:02d}"))
            world.store.execute("UPDATE events SET revenue = ? WHERE event_id = ?", (500.0 if big else 5.0, f"e{i}_{j}"))
    report = cluster_segments(world.store, config_for(), k=2, now=NOW)
    assert report.computed_from_events
    assert report.features == ["recency_days", "frequency", "monetary"]
    assert [(c["customers"], set(c["description"].split(", "))) for c in report.clusters] == [
        (20, {"lapsed", "infrequent", "low spend"}),
        (10, {"recent", "frequent", "high spend"})]


def test_too_few_customers_is_a_clear_error(world: World, config_for) -> None:
    world.customer("cus_1", traits={"rfm_recency": 1, "rfm_frequency": 2})
    with pytest.raises(SegmentError, match="clustering needs at least 20 active customers"):
        cluster_segments(world.store, config_for(), now=NOW)
