import pandas as pd
import pytest

from accord.config import ProjectConfig
from accord.errors import AccordError
from accord.profiles import (
    apply_constraints,
    build_profiles,
    constraints,
    history,
    labelled_pairs,
    record_decision,
    unmerge,
)
from tests.profiles.helpers import add_records, clustering, mapping, records


@pytest.fixture
def merged(store):
    """One customer, cus_00000001, holding s:1, s:2 and s:3."""
    add_records(store, [{"rid": "s:1", "given_name": "Ann"}, {"rid": "s:2", "given_name": "Ann", "day": 1},
                        {"rid": "s:3", "given_name": "Bob", "day": 2}])
    build_profiles(store, ProjectConfig(), clustering(["s:1", "s:2", "s:3"]), "run_1")
    return store


def test_unmerge_moves_records_to_a_new_customer_with_cannot_links(merged):
    result = unmerge(merged, "cus_00000001", ["s:3"], "user:ana", "Bob is Ann's son")
    assert result.new_customer_id == "cus_00000002"
    assert mapping(merged) == {"s:1": "cus_00000001", "s:2": "cus_00000001", "s:3": "cus_00000002"}
    c = constraints(merged)
    assert c[["record_a", "record_b", "kind", "actor"]].values.tolist() == [
        ["s:1", "s:3", "cannot_link", "user:ana"], ["s:2", "s:3", "cannot_link", "user:ana"]]
    kinds = [(e["kind"], e["customer_id"], e["other_customer_id"], e["actor"]) for e in history(merged, "cus_00000002")]
    assert kinds == [("unmerged", "cus_00000001", "cus_00000002", "user:ana"),
                     ("created", "cus_00000002", None, "user:ana")]
    # Both golden records are refreshed at once.
    assert merged.fetchall("SELECT customer_id, value FROM golden_values WHERE attribute = 'given_name' "
                           "ORDER BY customer_id") == [("cus_00000001", "Ann"), ("cus_00000002", "Bob")]


def test_cannot_link_survives_a_rebuild_that_would_merge_again(merged):
    unmerge(merged, "cus_00000001", ["s:3"], "user:ana")
    after_unmerge = mapping(merged)
    # A full rebuild: the identity tables are rebuilt and the clustering puts all three together again.
    merged.execute("DELETE FROM identity")
    merged.execute("DELETE FROM match_edges")
    rebuilt = clustering(["s:1", "s:2", "s:3"], prefix="rebuilt")
    honoured = apply_constraints(rebuilt, constraints(merged))
    assert honoured.groupby("cluster_id")["record_key"].apply(sorted).tolist() == [["1", "2"], ["3"]]
    n_events = merged.scalar("SELECT COUNT(*) FROM identity_audit")
    report = build_profiles(merged, ProjectConfig(), honoured, "run_2")
    assert mapping(merged) == after_unmerge
    assert report.ids.events == 0 and merged.scalar("SELECT COUNT(*) FROM identity_audit") == n_events


def test_build_profiles_applies_decisions_to_a_clustering_that_ignores_them(merged):
    unmerge(merged, "cus_00000001", ["s:3"], "user:ana")
    after_unmerge = mapping(merged)
    report = build_profiles(merged, ProjectConfig(), clustering(["s:1", "s:2", "s:3"]), "run_2")
    assert mapping(merged) == after_unmerge
    assert report.clusters_split_by_constraints == 1


def test_unmerge_refuses_records_of_another_customer_and_moving_everything(merged):
    with pytest.raises(AccordError, match="shop:9 not in customer cus_00000001"):
        unmerge(merged, "cus_00000001", ["shop:9"], "user:ana")
    with pytest.raises(AccordError, match="leave at least one"):
        unmerge(merged, "cus_00000001", ["s:1", "s:2", "s:3"], "user:ana")
    with pytest.raises(AccordError, match="expected SOURCE:RECORD_KEY"):
        unmerge(merged, "cus_00000001", ["nokey"], "user:ana")


def test_review_decisions_become_constraints_and_labels(merged):
    assert record_decision(merged, "s:2", "s:1", True, "user:ana") == "must_link"
    assert record_decision(merged, "s:1", "s:3", False, "user:bo", "different birth years") == "cannot_link"
    assert record_decision(merged, "s:2", "s:3", None, "user:bo") is None
    assert constraints(merged)[["record_a", "record_b", "kind"]].values.tolist() == [
        ["s:1", "s:2", "must_link"], ["s:1", "s:3", "cannot_link"]]
    labels = labelled_pairs(merged)
    assert labels[["record_a", "record_b", "is_match", "actor"]].values.tolist() == [
        ["s:1", "s:2", 1, "user:ana"], ["s:1", "s:3", 0, "user:bo"]]
    decisions = [e for e in history(merged, "cus_00000001") if e["kind"] == "decision"]
    assert [d["records"] for d in decisions] == [["s:1", "s:2"], ["s:1", "s:3"]]


def test_the_latest_decision_on_a_pair_is_in_force(store):
    record_decision(store, "s:1", "s:2", False, "user:ana")
    record_decision(store, "s:1", "s:2", True, "user:bo")
    assert constraints(store)[["kind", "actor"]].values.tolist() == [["must_link", "user:bo"]]


def test_decisions_need_two_different_records(store):
    with pytest.raises(AccordError, match="given twice"):
        record_decision(store, "s:1", "s:1", True, "user:ana")


def cl(rows):
    return pd.DataFrame(rows, columns=["record_a", "record_b", "kind"])


def test_apply_constraints_must_link_merges_clusters():
    out = apply_constraints(clustering(["s:1"], ["s:2"], ["s:3"]), cl([("s:1", "s:2", "must_link")]))
    assert out["cluster_id"].tolist() == ["k0", "k0", "k2"]


def test_apply_constraints_cannot_link_wins_over_must_link():
    out = apply_constraints(clustering(["s:1"], ["s:2"]),
                            cl([("s:1", "s:2", "must_link"), ("s:1", "s:2", "cannot_link")]))
    assert out["cluster_id"].nunique() == 2


def test_apply_constraints_split_sends_free_records_along_the_edges():
    # s:1 -- s:2 ... s:3 -- s:4, with s:1 and s:4 different people; s:5 has no edge and stays with s:1.
    edges = pd.DataFrame({"record_a": ["s:1", "s:2", "s:3"], "record_b": ["s:2", "s:3", "s:4"]})
    out = apply_constraints(clustering(["s:1", "s:2", "s:3", "s:4", "s:5"]), cl([("s:1", "s:4", "cannot_link")]),
                            edges)
    assert dict(zip(out["record_key"], out["cluster_id"])) == {"1": "k0", "2": "k0", "3": "k0~1", "4": "k0~1",
                                                               "5": "k0"}


def test_apply_constraints_leaves_a_clustering_without_violations_alone():
    c = clustering(["s:1"], ["s:2"])
    assert apply_constraints(c, cl([("s:1", "s:2", "cannot_link")])).equals(c)


def test_a_failing_build_leaves_the_store_as_it_was(store, monkeypatch):
    import accord.profiles.stage

    add_records(store, records("s:1", "s:2"))

    def broken(*args, **kwargs):
        raise RuntimeError("golden failed")

    monkeypatch.setattr(accord.profiles.stage, "build_golden", broken)
    with pytest.raises(RuntimeError, match="golden failed"):
        build_profiles(store, ProjectConfig(), clustering(["s:1", "s:2"]), "run_1")
    assert mapping(store) == {}
    assert store.scalar("SELECT COUNT(*) FROM customers") == 0
    assert store.scalar("SELECT COUNT(*) FROM identity_audit") == 0
    assert store.scalar("SELECT last_value FROM profile_counters WHERE name = 'customer'") == 0
