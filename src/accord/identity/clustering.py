"""Constrained clustering of match edges into customers.

Edges merge records strongest first: deterministic rule edges by identifier
priority, then model edges at or above the auto-merge threshold by probability.
A merge is refused when the two groups disagree on a value unique to a person
(a cannot-link: different valid dates of birth, different external ids of the
same type from the same source, clearly different given names) or when the
result would hold more identifiers of a type than the per-customer limit.
Refusal is checked on whole groups, so no chain of edges can smuggle two
conflicting records into one cluster. Afterwards, a model edge below the
bridge threshold that alone holds two groups of records together is cut.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from accord.identity.similarity import jaro_winkler

# Given names this dissimilar, and not nicknames of each other, are different people.
GIVEN_NAME_CONFLICT_BELOW = 0.8


@dataclass(frozen=True)
class ClusterOptions:
    auto_merge_threshold: float = 0.95
    review_threshold: float = 0.6
    bridge_threshold: float = 0.99
    bridge_min_side: int = 2


@dataclass
class ClusterResult:
    clusters: dict[str, str]
    """rid -> cluster_id."""
    edges: pd.DataFrame
    """The input edges with status ('auto', 'review', 'rejected') and reason."""
    rejected_merges: int = 0
    bridges_cut: int = 0


@dataclass
class _Group:
    members: list[str]
    unique: dict[str, str] = field(default_factory=dict)
    given: set[str] = field(default_factory=set)
    identifiers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def cluster_edges(
    records: Iterable[str],
    edges: pd.DataFrame,
    options: ClusterOptions = ClusterOptions(),
    *,
    unique_values: dict[str, dict[str, str]] | None = None,
    given_names: dict[str, str] | None = None,
    identifiers: dict[str, dict[str, set[str]]] | None = None,
    limits: dict[str, int] | None = None,
) -> ClusterResult:
    """Cluster records joined by ``edges`` (record_a, record_b, probability, rule_or_model, priority).

    ``probability`` is null for rule edges. ``unique_values[rid]`` maps a key such
    as 'dob' to the record's value: records with different values for a key never
    share a cluster. ``given_names[rid]`` (a name group) adds the given-name
    cannot-link; ``identifiers[rid][type]`` with ``limits[type]`` adds per-customer limits.
    """
    unique_values = unique_values or {}
    given_names = given_names or {}
    identifiers = identifiers or {}
    limits = limits or {}
    rids = sorted(set(records))
    parent = {r: r for r in rids}
    groups = {r: _group_for(r, unique_values, given_names, identifiers) for r in rids}

    def find(r: str) -> str:
        while parent[r] != r:
            parent[r] = parent[parent[r]]
            r = parent[r]
        return r

    edges = edges.reset_index(drop=True).copy()
    probability = pd.to_numeric(edges["probability"], errors="coerce")
    is_rule = probability.isna()
    prob = probability.fillna(1.0)
    priority = (pd.to_numeric(edges["priority"], errors="coerce").fillna(10_000) if "priority" in edges
                else pd.Series(10_000, index=edges.index))
    status = pd.Series("review", index=edges.index, dtype=object)
    reason = pd.Series([None] * len(edges), index=edges.index, dtype=object)

    mergeable = is_rule | (prob >= options.auto_merge_threshold)
    order = edges[mergeable].assign(_rule=~is_rule[mergeable], _p=-prob[mergeable],
                                    _prio=priority[mergeable])
    order = order.sort_values(["_rule", "_prio", "_p", "record_a", "record_b"], kind="stable")
    accepted: list[int] = []
    rejected = 0
    for idx, a, b in zip(order.index, order["record_a"], order["record_b"]):
        ra, rb = find(a), find(b)
        if ra != rb:
            conflict = _conflict(groups[ra], groups[rb], limits)
            if conflict:
                status[idx], reason[idx] = "rejected", conflict
                rejected += 1
                continue
            if len(groups[ra].members) < len(groups[rb].members):
                ra, rb = rb, ra
            parent[rb] = ra
            _absorb(groups[ra], groups.pop(rb))
        status[idx] = "auto"
        accepted.append(idx)

    kept, cut = _split_weak_bridges(edges, accepted, is_rule, prob, options)
    for idx in cut:
        status[idx], reason[idx] = "review", "weak_bridge"

    clusters = _components(rids, edges, kept)
    # Edges below auto-merge: review unless their records ended up together, or cannot be together.
    for idx in edges.index[~mergeable]:
        a, b = edges.at[idx, "record_a"], edges.at[idx, "record_b"]
        if clusters[a] == clusters[b]:
            status[idx], reason[idx] = "auto", "same_cluster"
        else:
            conflict = _conflict(_group_for(a, unique_values, given_names, identifiers),
                                 _group_for(b, unique_values, given_names, identifiers), {})
            if conflict:
                status[idx], reason[idx] = "rejected", conflict
    edges["status"] = status
    edges["reason"] = [None if r is None or r != r else r for r in reason]
    return ClusterResult(clusters, edges, rejected_merges=rejected, bridges_cut=len(cut))


def cluster_id_for(members: Iterable[str]) -> str:
    """A cluster's id from its smallest member: the same records give the same id on every engine."""
    return "cl_" + hashlib.sha1(min(members).encode()).hexdigest()[:16]


def _group_for(rid: str, unique_values: dict, given_names: dict, identifiers: dict) -> _Group:
    group = _Group([rid], dict(unique_values.get(rid, {})))
    if given_names.get(rid):
        group.given.add(given_names[rid])
    for type_, values in identifiers.get(rid, {}).items():
        group.identifiers[type_] |= set(values)
    return group


def _conflict(a: _Group, b: _Group, limits: dict[str, int]) -> str | None:
    small, large = (a, b) if len(a.unique) <= len(b.unique) else (b, a)
    for key, value in small.unique.items():
        other = large.unique.get(key)
        if other is not None and other != value:
            return f"cannot_link:{key}"
    for x in a.given:
        for y in b.given:
            if x != y and jaro_winkler(x, y) < GIVEN_NAME_CONFLICT_BELOW:
                return "cannot_link:given_name"
    for type_, limit in limits.items():
        if type_ in a.identifiers and type_ in b.identifiers:
            if len(a.identifiers[type_] | b.identifiers[type_]) > limit:
                return f"limit:{type_}"
    return None


def _absorb(into: _Group, other: _Group) -> None:
    into.members += other.members
    into.unique.update(other.unique)
    into.given |= other.given
    for type_, values in other.identifiers.items():
        into.identifiers[type_] |= values


def _split_weak_bridges(edges: pd.DataFrame, accepted: list[int], is_rule: pd.Series, prob: pd.Series,
                        options: ClusterOptions) -> tuple[list[int], list[int]]:
    """Cut, weakest first, model edges below the bridge threshold whose removal leaves two groups
    of at least ``bridge_min_side`` records each. Returns (kept, cut) edge indexes."""
    kept = set(accepted)
    cut: list[int] = []
    while True:
        pairs: dict[tuple[str, str], list[int]] = defaultdict(list)
        for idx in kept:
            a, b = edges.at[idx, "record_a"], edges.at[idx, "record_b"]
            pairs[(a, b) if a < b else (b, a)].append(idx)
        weak = {pair: max(prob[i] for i in idxs) for pair, idxs in pairs.items()
                if not any(is_rule[i] for i in idxs) and max(prob[i] for i in idxs) < options.bridge_threshold}
        if not weak:
            break
        candidates = [(p, pair) for pair, (p, small_side) in
                      _bridges_with_sides(list(pairs), weak).items() if small_side >= options.bridge_min_side]
        if not candidates:
            break
        _, pair = min(candidates)
        for idx in pairs[pair]:
            kept.discard(idx)
            cut.append(idx)
    return sorted(kept), cut


def _bridges_with_sides(pairs: list[tuple[str, str]], weak: dict[tuple[str, str], float]
                        ) -> dict[tuple[str, str], tuple[float, int]]:
    """For each weak pair that is a bridge: (its probability, records on its smaller side)."""
    adjacency: dict[str, list[str]] = defaultdict(list)
    for a, b in pairs:
        adjacency[a].append(b)
        adjacency[b].append(a)
    disc: dict[str, int] = {}
    low: dict[str, int] = {}
    size: dict[str, int] = {}
    out: dict[tuple[str, str], tuple[float, int]] = {}
    counter = 0
    for root in sorted(adjacency):
        if root in disc:
            continue
        component: list[str] = []
        stack: list[tuple[str, str | None, int]] = [(root, None, 0)]
        disc[root] = low[root] = counter
        counter += 1
        size[root] = 1
        component.append(root)
        tree_edges: list[tuple[str, str]] = []
        while stack:
            node, parent, i = stack[-1]
            neighbours = adjacency[node]
            if i < len(neighbours):
                stack[-1] = (node, parent, i + 1)
                nxt = neighbours[i]
                if nxt == parent:
                    continue
                if nxt in disc:
                    low[node] = min(low[node], disc[nxt])
                else:
                    disc[nxt] = low[nxt] = counter
                    counter += 1
                    size[nxt] = 1
                    component.append(nxt)
                    tree_edges.append((node, nxt))
                    stack.append((nxt, node, 0))
            else:
                stack.pop()
                if parent is not None:
                    low[parent] = min(low[parent], low[node])
                    size[parent] += size[node]
        total = len(component)
        for parent, child in tree_edges:
            pair = (parent, child) if parent < child else (child, parent)
            if low[child] > disc[parent] and pair in weak:
                out[pair] = (weak[pair], min(size[child], total - size[child]))
    return out


def _components(rids: list[str], edges: pd.DataFrame, kept: list[int]) -> dict[str, str]:
    parent = {r: r for r in rids}

    def find(r: str) -> str:
        while parent[r] != r:
            parent[r] = parent[parent[r]]
            r = parent[r]
        return r

    for idx in kept:
        ra, rb = find(edges.at[idx, "record_a"]), find(edges.at[idx, "record_b"])
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[str, list[str]] = defaultdict(list)
    for r in rids:
        members[find(r)].append(r)
    out = {}
    for group in members.values():
        cid = cluster_id_for(group)
        for r in group:
            out[r] = cid
    return out
