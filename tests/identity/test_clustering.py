import itertools
import random

import numpy as np
import pandas as pd
import pytest

from accord.identity.clustering import ClusterOptions, _merge_order, cluster_edges


def edges(*rows: tuple) -> pd.DataFrame:
    """(a, b, probability) for model edges; (a, b, None, rule) for rule edges."""
    out = []
    for row in rows:
        a, b, p = row[:3]
        out.append({"record_a": a, "record_b": b, "probability": p, "match_weight": None,
                    "rule_or_model": row[3] if len(row) > 3 else "model", "priority": 10 if p is None else None})
    return pd.DataFrame(out)


def groups(result) -> list[list[str]]:
    by_cluster: dict[str, list[str]] = {}
    for rid, cid in sorted(result.clusters.items()):
        by_cluster.setdefault(cid, []).append(rid)
    return sorted(by_cluster.values())


def status(result) -> dict[tuple[str, str], tuple[str, str | None]]:
    e = result.edges
    return {(a, b): (s, r) for a, b, s, r in zip(e["record_a"], e["record_b"], e["status"], e["reason"])}


def test_edges_above_auto_merge_join_and_below_go_to_review():
    result = cluster_edges("abcd", edges(("a", "b", 0.97), ("c", "d", 0.7)))
    assert groups(result) == [["a", "b"], ["c"], ["d"]]
    assert status(result) == {("a", "b"): ("auto", None), ("c", "d"): ("review", None)}


def test_a_chain_of_edges_never_joins_records_that_cannot_link():
    # a and d have different birth dates; every neighbouring pair is a strong match.
    dob = {"a": {"dob": "1980-01-01"}, "d": {"dob": "1990-06-15"}}
    result = cluster_edges("abcd", edges(("a", "b", 0.999), ("b", "c", 0.998), ("c", "d", 0.997)),
                           unique_values=dob)
    assert result.clusters["a"] != result.clusters["d"]
    assert groups(result) == [["a", "b", "c"], ["d"]]
    assert status(result)[("c", "d")] == ("rejected", "cannot_link:dob")


def test_cannot_link_holds_for_every_pair_on_a_dense_random_graph():
    import random

    rng = random.Random(3)
    nodes = [f"r{i:02d}" for i in range(40)]
    dobs = {n: {"dob": rng.choice(["1970-01-01", "1983-05-20", "1996-11-30"])} for n in nodes if rng.random() < 0.6}
    rows = [(a, b, rng.uniform(0.95, 1.0)) for a, b in itertools.combinations(nodes, 2) if rng.random() < 0.15]
    result = cluster_edges(nodes, edges(*rows), unique_values=dobs)
    for a, b in itertools.combinations(nodes, 2):
        if result.clusters[a] == result.clusters[b] and a in dobs and b in dobs:
            assert dobs[a]["dob"] == dobs[b]["dob"]


def test_a_weak_bridge_between_two_groups_is_cut_and_kept_for_review():
    rows = [("a", "b", 0.999), ("b", "c", 0.999), ("a", "c", 0.999),
            ("d", "e", 0.999), ("e", "f", 0.999), ("d", "f", 0.999),
            ("c", "d", 0.96)]
    result = cluster_edges("abcdef", edges(*rows), ClusterOptions(bridge_threshold=0.99))
    assert groups(result) == [["a", "b", "c"], ["d", "e", "f"]]
    assert status(result)[("c", "d")] == ("review", "weak_bridge")
    assert result.bridges_cut == 1


def test_a_strong_bridge_and_a_single_record_on_a_weak_one_stay_merged():
    rows = [("a", "b", 0.999), ("b", "c", 0.999), ("a", "c", 0.999), ("c", "d", 0.999),
            ("d", "e", 0.999), ("e", "f", 0.999), ("d", "f", 0.999), ("f", "g", 0.96)]
    result = cluster_edges("abcdefg", edges(*rows), ClusterOptions(bridge_threshold=0.99))
    assert groups(result) == [["a", "b", "c", "d", "e", "f", "g"]]


def test_rule_edges_are_never_cut_as_bridges():
    rows = [("a", "b", 0.999), ("c", "d", 0.999), ("b", "c", None, "rule:email")]
    result = cluster_edges("abcd", edges(*rows), ClusterOptions(bridge_threshold=0.99))
    assert groups(result) == [["a", "b", "c", "d"]]


def test_per_customer_limit_refuses_a_merge_that_would_exceed_it():
    ids = {"a": {"email": {"1@x", "2@x"}}, "b": {"email": {"3@x"}}}
    result = cluster_edges("ab", edges(("a", "b", 0.99)), identifiers=ids, limits={"email": 2})
    assert groups(result) == [["a"], ["b"]]
    assert status(result)[("a", "b")] == ("rejected", "limit:email")


def test_household_twins_and_namesakes_stay_apart():
    # A model scores these high (shared surname, address, birth date); the constraints refuse them.
    given = {"h1": "mary", "h2": "robert", "t1": "thomas", "t2": "michael", "n1": "john", "n2": "john"}
    dob = {"h1": {"dob": "1961-03-04"}, "h2": {"dob": "1959-11-30"}, "t1": {"dob": "1990-07-01"},
           "t2": {"dob": "1990-07-01"}, "n1": {"dob": "1975-02-02"}, "n2": {"dob": "1988-09-09"}}
    rows = [("h1", "h2", 0.97), ("t1", "t2", 0.998), ("n1", "n2", 0.96), ("h1", "h2", None, "rule:phone")]
    result = cluster_edges(given, edges(*rows), given_names=given, unique_values=dob)
    assert groups(result) == [["h1"], ["h2"], ["n1"], ["n2"], ["t1"], ["t2"]]
    assert status(result)[("t1", "t2")] == ("rejected", "cannot_link:given_name")
    assert status(result)[("n1", "n2")] == ("rejected", "cannot_link:dob")


def test_nicknames_in_one_name_group_do_not_conflict():
    given = {"a": "robert", "b": "robert", "c": "jon", "d": "john"}
    result = cluster_edges("abcd", edges(("a", "b", 0.99), ("c", "d", 0.99)), given_names=given)
    assert groups(result) == [["a", "b"], ["c", "d"]]


def test_cluster_ids_depend_only_on_members():
    one = cluster_edges("abc", edges(("a", "b", 0.99)))
    two = cluster_edges("cba", edges(("b", "a", 0.98)))
    assert one.clusters == two.clusters


def test_a_day_month_swap_does_not_refuse_a_merge():
    dob = {"crm": {"dob": "1972-11-08"}, "pos": {"dob": "1972-08-11"}}
    result = cluster_edges(["crm", "pos"], edges(("crm", "pos", 0.999)), unique_values=dob)
    assert groups(result) == [["crm", "pos"]]


def test_bob_and_robert_merge_but_twins_with_different_given_names_stay_apart():
    names = {"a": ("robert", "wood"), "b": ("bob", "wood"), "c": ("r", "wood"), "d": ("richard", "wood")}
    dob = {r: {"dob": "1990-07-01"} for r in names}  # twins share a birth date
    rows = [("a", "b", 0.999), ("b", "c", 0.99), ("c", "d", 0.99), ("a", "d", 0.98)]
    result = cluster_edges(names, edges(*rows), given_names=names, unique_values=dob)
    assert groups(result) == [["a", "b", "c"], ["d"]]
    assert status(result)[("a", "d")] == ("rejected", "cannot_link:given_name")


def test_a_human_cannot_link_refuses_every_merge_that_joins_the_pair():
    # a-b-c are strong matches; a human said a and c are two people: the chain cannot join them.
    rows = [("a", "b", 0.999), ("b", "c", 0.998), ("a", "c", None, "rule:email")]
    result = cluster_edges("abc", edges(*rows), cannot_link={"a": {"c"}, "c": {"a"}})
    assert groups(result) == [["a", "b"], ["c"]]
    assert status(result)[("a", "c")] == ("rejected", "cannot_link:decision")
    assert status(result)[("b", "c")] == ("rejected", "cannot_link:decision")


def test_a_human_must_link_merges_what_the_automatic_tests_would_refuse():
    # Different birth dates: a cannot-link the clustering enforces, unless a human said "same".
    dob = {"a": {"dob": "1980-01-01"}, "b": {"dob": "1990-06-15"}}
    result = cluster_edges("ab", edges(("a", "b", None, "decision:must_link")), unique_values=dob)
    assert groups(result) == [["a", "b"]]
    assert status(result)[("a", "b")] == ("auto", None)


def test_a_human_cannot_link_wins_over_a_must_link():
    rows = [("a", "b", None, "decision:must_link"), ("b", "c", None, "decision:must_link")]
    result = cluster_edges("abc", edges(*rows), cannot_link={"a": {"c"}, "c": {"a"}})
    assert groups(result) == [["a", "b"], ["c"]]
    assert status(result)[("b", "c")] == ("rejected", "cannot_link:decision")


def _reference_components(rids: list[str], pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Plain union-find, as the clustering once did it: the specification of _components."""
    from accord.identity.clustering import cluster_id_for

    parent = {r: r for r in rids}

    def find(r: str) -> str:
        while parent[r] != r:
            r = parent[r]
        return r

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[str, list[str]] = {}
    for r in rids:
        members.setdefault(find(r), []).append(r)
    return {r: cluster_id_for(group) for group in members.values() for r in group}


def test_graph_components_equal_a_plain_union_find_on_random_graphs():
    import random

    from accord.identity.clustering import _components

    rng = random.Random(7)
    for trial in range(30):
        rids = sorted({f"s{rng.randint(0, 3)}:{rng.randint(0, 500)}" for _ in range(rng.randint(1, 300))})
        pairs = [tuple(rng.sample(rids, 2)) for _ in range(rng.randint(0, len(rids)))] if len(rids) > 1 else []
        kept = sorted(rng.sample(range(len(pairs)), rng.randint(0, len(pairs)))) if pairs else []
        position = {r: i for i, r in enumerate(rids)}
        ea = np.array([position[a] for a, _ in pairs], dtype=np.int64)
        eb = np.array([position[b] for _, b in pairs], dtype=np.int64)
        labels, ids = _components(rids, ea, eb, kept)
        got = dict(zip(rids, ids[labels].tolist()))
        assert got == _reference_components(rids, [pairs[i] for i in kept]), trial


def test_two_groups_sharing_a_full_name_never_conflict_by_name():
    import random

    from accord.identity.clustering import _share_full_name
    from accord.identity.constraints import groups_conflict

    rng = random.Random(5)
    pool = [("robert", "lee"), ("bob", "lee"), ("r", "lee"), ("ann", None), ("a", None), ("lee", "robert"),
            ("francis", "ng"), ("francesca", "ng"), ("f", "ng"), ("b", None)]
    checked = 0
    for _ in range(3000):
        a, b = set(rng.sample(pool, rng.randint(1, 3))), set(rng.sample(pool, rng.randint(1, 3)))
        if _share_full_name(a, b):
            checked += 1
            assert not groups_conflict(a, b), (a, b)
    assert checked > 100


def test_weak_bridges_are_found_among_many_clusters_without_one():
    # Many strong pairs, and one cluster where a weak edge alone joins two strong triangles.
    rows = [(f"p{i}a", f"p{i}b", 0.999) for i in range(50)]
    rows += [("a", "b", 0.999), ("b", "c", 0.999), ("a", "c", 0.999),
             ("d", "e", 0.999), ("e", "f", 0.999), ("d", "f", 0.999), ("c", "d", 0.96)]
    nodes = sorted({n for a, b, _ in rows for n in (a, b)})
    result = cluster_edges(nodes, edges(*rows), ClusterOptions(auto_merge_threshold=0.95))
    assert result.bridges_cut == 1
    assert status(result)[("c", "d")] == ("review", "weak_bridge")
    assert result.clusters["a"] != result.clusters["f"]
    assert sum(1 for g in groups(result) if len(g) == 2) == 50


@pytest.mark.parametrize("seed", range(6))
def test_components_merged_whole_without_the_per_edge_loop_give_the_same_result(monkeypatch, seed):
    """The shortcut for components no constraint can split changes nothing: random graphs with
    clashing and compatible birth dates, names, external ids, limited emails, cannot-links and
    must-links cluster the same with every edge sent through the per-edge merge loop."""
    from accord.identity import clustering

    rng = random.Random(seed)
    records = [f"r{i:03d}" for i in range(240)]
    rows = []
    for _ in range(300):
        # Mostly within small neighbourhoods (many components), now and then across.
        a = rng.choice(records)
        b = rng.choice(records) if rng.random() < 0.03 else records[(records.index(a) + rng.randint(1, 3)) % 240]
        kind = rng.random()
        if kind < 0.25:
            rows.append((a, b, None, "email"))
        elif kind < 0.3:
            rows.append((a, b, None, "decision:must_link"))
        else:
            rows.append((a, b, round(rng.uniform(0.5, 1.0), 3)))
    unique = {r: {"dob": rng.choice(["1980-01-01", "1980-01-10", "1975-05-05"])} for r in records
              if rng.random() < 0.35}
    for r in records:
        if rng.random() < 0.2:
            unique.setdefault(r, {})["external:crm:id"] = rng.choice(["1", "2"])
    given = {r: rng.choice(["robert", "bob", "alice", ("j", "smith")]) for r in records if rng.random() < 0.3}
    identifiers = {r: {"email": set(rng.sample("vwxyz", rng.randint(1, 2)))} for r in records
                   if rng.random() < 0.5}
    cannot: dict[str, set[str]] = {}
    for a, b in ((r, records[records.index(r) + 1]) for r in rng.sample(records[:-1], 12)):
        cannot.setdefault(a, set()).add(b)
        cannot.setdefault(b, set()).add(a)
    kwargs = dict(unique_values=unique, given_names=given, identifiers=identifiers, limits={"email": 2},
                  cannot_link=cannot)
    options = ClusterOptions(bridge_threshold=0.97)
    fast = cluster_edges(records, edges(*rows), options, **kwargs)
    assert fast.rejected_merges > 0  # the random data do exercise the constraints
    monkeypatch.setattr(clustering, "_unconstrained_edges",
                        lambda a_code, *rest: np.zeros(len(a_code), dtype=bool))
    slow = cluster_edges(records, edges(*rows), options, **kwargs)
    assert fast.clusters == slow.clusters
    assert status(fast) == status(slow)
    assert (fast.rejected_merges, fast.bridges_cut) == (slow.rejected_merges, slow.bridges_cut)

    # Pairs below auto-merge are judged record by record, as a group of one each would be.
    values = clustering.ConstraintValues.from_dicts(unique, given, identifiers, {"email": 2}, cannot)
    pairs = [tuple(rng.sample(records, 2)) for _ in range(400)] + [(a, b) for a, bs in cannot.items() for b in bs]
    one_by_one = [clustering._conflict(clustering._group_for(a, unique, given, identifiers, cannot),
                                       clustering._group_for(b, unique, given, identifiers, cannot), {})
                  for a, b in pairs]
    index = pd.Index(records)
    a_code, b_code = index.get_indexer([a for a, _ in pairs]), index.get_indexer([b for _, b in pairs])
    assert clustering._pair_conflicts(records, a_code, b_code, values, values.codes(index)) == one_by_one
    assert len({r for r in one_by_one if r}) >= 3  # decisions, birth dates, names (and external ids)


def test_a_component_with_one_name_and_one_birth_date_merges_without_refusals():
    dob = {r: {"dob": "1980-01-01"} for r in "abc"}
    result = cluster_edges("abcd", edges(("a", "b", 0.99), ("b", "c", None, "email"), ("c", "d", 0.98)),
                           unique_values=dob, given_names={"a": "ann", "c": "ann", "d": ("ann", "lee")},
                           identifiers={"a": {"email": {"x"}}, "b": {"email": {"x"}}}, limits={"email": 1})
    assert groups(result) == [["a", "b", "c", "d"]]
    assert result.rejected_merges == 0


def test_records_in_any_order_or_repeated_give_the_same_clusters():
    from accord.identity.clustering import _sorted_distinct

    assert _sorted_distinct(["b", "a", "b", "c"]) == ["a", "b", "c"]
    assert _sorted_distinct(["a", "b", "c"]) == ["a", "b", "c"]
    assert _sorted_distinct(["a", "a"]) == ["a"]
    assert _sorted_distinct([]) == []
    edges = pd.DataFrame({"record_a": ["x:1"], "record_b": ["x:2"], "probability": [None],
                          "rule_or_model": ["rule:email"], "priority": [1]})
    shuffled = cluster_edges(["x:3", "x:2", "x:1", "x:2"], edges)
    ordered = cluster_edges(["x:1", "x:2", "x:3"], edges)
    assert shuffled.clusters == ordered.clusters and len(ordered.clusters) == 3


def test_the_merge_order_is_rules_by_priority_then_the_strongest_then_the_pair():
    """``_merge_order`` packs its five keys into two sorts: the order is lexsort's over all five."""
    rng = np.random.default_rng(7)
    for n in (0, 1, 7, 5_000):
        a, b = rng.integers(0, 300, n), rng.integers(0, 300, n)
        prob = rng.choice([0.95, 0.97, 0.99, 1.0], n)
        priority = rng.choice([-1.0, 1.0, 2.5, 10_000.0], n)
        is_rule = rng.random(n) < 0.5
        expected = np.lexsort((b, a, -prob, priority, ~is_rule))
        assert _merge_order(is_rule, priority, prob, a, b, 300).tolist() == expected.tolist()
