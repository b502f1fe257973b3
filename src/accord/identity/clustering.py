"""Constrained clustering of match edges into customers.

Edges merge records strongest first: deterministic rule edges by identifier
priority, then model edges at or above the auto-merge threshold by probability.
A merge is refused when the two groups disagree on a value unique to a person
(a cannot-link: birth dates no day/month swap or typo explains, different
external ids of the same type from the same source, given names that are not
the same name written another way; see ``constraints``) or when the
result would hold more identifiers of a type than the per-customer limit.
Refusal is checked on whole groups, so no chain of edges can smuggle two
conflicting records into one cluster. Afterwards, a model edge below the
bridge threshold that alone holds two groups of records together is cut.

Human decisions take part as well: a must-link is an edge (``rule_or_model``
``decision:must_link``) merged before every other and exempt from the automatic
cannot-link tests, and a cannot-link (``cannot_link`` pairs) refuses every merge
that would put its two records together, must-links included.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from accord.identity.constraints import Name, dob_conflict, groups_conflict, is_initial

# unique_values keys compared leniently (see constraints) rather than for equality.
DOB_KEY = "dob"
DECISION_PREFIX = "decision:"
MUST_LINK_EDGE = "decision:must_link"


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


class _Group:
    """A group of records being merged: its members and the values its constraints compare.
    A plain class with slots: the clustering makes one per record an edge touches."""

    __slots__ = ("members", "unique", "dobs", "names", "identifiers", "forbidden")

    def __init__(self, members: list[str], unique: dict[str, str] | None = None, dobs: set[str] | None = None
                 ) -> None:
        self.members = members
        self.unique: dict[str, str] = {} if unique is None else unique
        self.dobs: set[str] = set() if dobs is None else dobs
        self.names: set[Name] = set()
        self.identifiers: dict[str, set[str]] = defaultdict(set)
        self.forbidden: set[str] = set()
        """Records a human decided are someone else (cannot-link partners of the members)."""


def cluster_edges(
    records: Iterable[str],
    edges: pd.DataFrame,
    options: ClusterOptions = ClusterOptions(),
    *,
    unique_values: dict[str, dict[str, str]] | None = None,
    given_names: dict[str, str | Name] | None = None,
    identifiers: dict[str, dict[str, set[str]]] | None = None,
    limits: dict[str, int] | None = None,
    cannot_link: dict[str, set[str]] | None = None,
) -> ClusterResult:
    """Cluster records joined by ``edges`` (record_a, record_b, probability, rule_or_model, priority).

    ``probability`` is null for rule edges. ``unique_values[rid]`` maps a key such
    as 'dob' to the record's value: records with different values for a key never
    share a cluster, except 'dob', which conflicts only as ``constraints.dob_conflict`` says.
    ``given_names[rid]`` (a given name, or a (given, family) pair) adds the given-name
    cannot-link (``constraints.names_conflict``); ``identifiers[rid][type]`` with ``limits[type]`` adds per-customer limits.
    ``cannot_link[rid]`` holds the records a human decided are other people; edges whose ``rule_or_model``
    starts with ``decision:`` (must-links) merge first and skip the automatic tests, not these.
    """
    unique_values = unique_values or {}
    given_names = given_names or {}
    identifiers = identifiers or {}
    limits = limits or {}
    cannot_link = cannot_link or {}
    rids = sorted(set(records))
    parent: dict[str, str] = {}
    groups: dict[str, _Group] = {}  # made on first use: most records never meet an edge

    def find(r: str) -> str:
        if r not in parent:
            parent[r] = r
            groups[r] = _group_for(r, unique_values, given_names, identifiers, cannot_link)
            return r
        while parent[r] != r:
            parent[r] = parent[parent[r]]
            r = parent[r]
        return r

    edges = edges.reset_index(drop=True).copy()
    ea, eb = edges["record_a"].tolist(), edges["record_b"].tolist()
    probability = pd.to_numeric(edges["probability"], errors="coerce")
    is_rule = probability.isna().to_numpy()
    prob = probability.fillna(1.0).to_numpy()
    priority = (pd.to_numeric(edges["priority"], errors="coerce").fillna(10_000).to_numpy() if "priority" in edges
                else np.full(len(edges), 10_000.0))
    forced = (edges["rule_or_model"].astype(str).str.startswith(DECISION_PREFIX).to_numpy()
              if "rule_or_model" in edges and len(edges) else np.zeros(len(edges), dtype=bool))
    priority = np.where(forced, -1.0, priority)
    status: list[str] = ["review"] * len(edges)
    reason: list[str | None] = [None] * len(edges)

    mergeable = is_rule | (prob >= options.auto_merge_threshold)
    order = np.flatnonzero(mergeable)
    # Rules first (by identifier priority), then model edges strongest first; ties by record names.
    # Record names as sorted codes: one stable sort of numbers instead of a frame sort on strings.
    a_code = pd.factorize(np.asarray(ea, dtype=object)[order], sort=True)[0]
    b_code = pd.factorize(np.asarray(eb, dtype=object)[order], sort=True)[0]
    order = order[np.lexsort((b_code, a_code, -prob[order], priority[order], ~is_rule[order]))]
    accepted: list[int] = []
    rejected = 0
    for idx in order.tolist():
        ra, rb = find(ea[idx]), find(eb[idx])
        if ra != rb:
            conflict = (_decided_apart(groups[ra], groups[rb]) if forced[idx]
                        else _conflict(groups[ra], groups[rb], limits))
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

    kept, cut = _split_weak_bridges(ea, eb, accepted, is_rule, prob, options)
    for idx in cut:
        status[idx], reason[idx] = "review", "weak_bridge"

    clusters = _components(rids, ea, eb, kept)
    # Edges below auto-merge: review unless their records ended up together, or cannot be together.
    alone: dict[str, _Group] = {}

    def group_of(r: str) -> _Group:
        if r not in alone:
            alone[r] = _group_for(r, unique_values, given_names, identifiers, cannot_link)
        return alone[r]

    for idx in np.flatnonzero(~mergeable).tolist():
        a, b = ea[idx], eb[idx]
        if clusters[a] == clusters[b]:
            status[idx], reason[idx] = "auto", "same_cluster"
        else:
            conflict = _conflict(group_of(a), group_of(b), {})
            if conflict:
                status[idx], reason[idx] = "rejected", conflict
    edges["status"] = status
    edges["reason"] = reason
    return ClusterResult(clusters, edges, rejected_merges=rejected, bridges_cut=len(cut))


def cluster_id_for(members: Iterable[str]) -> str:
    """A cluster's id from its smallest member: the same records give the same id on every engine."""
    return "cl_" + hashlib.sha1(min(members).encode()).hexdigest()[:16]


def _group_for(rid: str, unique_values: dict, given_names: dict, identifiers: dict,
               cannot_link: dict[str, set[str]] | None = None) -> _Group:
    unique = dict(unique_values.get(rid, {}))
    dob = unique.pop(DOB_KEY, None)
    group = _Group([rid], unique, {dob} if dob else set())
    if cannot_link and rid in cannot_link:
        group.forbidden = set(cannot_link[rid])
    name = given_names.get(rid)
    if name:
        group.names.add((name, None) if isinstance(name, str) else tuple(name))
    for type_, values in identifiers.get(rid, {}).items():
        group.identifiers[type_] |= set(values)
    return group


def _decided_apart(a: _Group, b: _Group) -> str | None:
    """A human cannot-link between the two groups."""
    for one, other in ((a, b), (b, a)):
        if one.forbidden and any(m in one.forbidden for m in other.members):
            return "cannot_link:decision"
    return None


def _conflict(a: _Group, b: _Group, limits: dict[str, int]) -> str | None:
    decided = _decided_apart(a, b)
    if decided:
        return decided
    small, large = (a, b) if len(a.unique) <= len(b.unique) else (b, a)
    for key, value in small.unique.items():
        other = large.unique.get(key)
        if other is not None and other != value:
            return f"cannot_link:{key}"
    if a.dobs and b.dobs and a.dobs != b.dobs and any(dob_conflict(x, y) for x in a.dobs for y in b.dobs):
        return "cannot_link:dob"
    if a.names and b.names and not _share_full_name(a.names, b.names) and groups_conflict(a.names, b.names):
        return "cannot_link:given_name"
    for type_, limit in limits.items():
        if type_ in a.identifiers and type_ in b.identifiers:
            ids_a, ids_b = a.identifiers[type_], b.identifiers[type_]
            if len(ids_a) + len(ids_b) > limit and len(ids_a | ids_b) > limit:
                return f"limit:{type_}"
    return None


def _share_full_name(a: set[Name], b: set[Name]) -> bool:
    """Both groups hold one same full (not initial) given name: ``groups_conflict`` is then False, as
    it compares full names first and a pair with one given name never conflicts. The common merge,
    decided without the product of both groups' names."""
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    givens = {n[0] for n in large}
    return any(n[0] in givens and not is_initial(n[0]) for n in small)


def _absorb(into: _Group, other: _Group) -> None:
    into.members += other.members
    into.unique.update(other.unique)
    into.dobs |= other.dobs
    into.names |= other.names
    into.forbidden |= other.forbidden
    for type_, values in other.identifiers.items():
        into.identifiers[type_] |= values


def _split_weak_bridges(ea: list[str], eb: list[str], accepted: list[int], is_rule: np.ndarray,
                        prob: np.ndarray, options: ClusterOptions) -> tuple[list[int], list[int]]:
    """Cut, weakest first, model edges below the bridge threshold whose removal leaves two groups
    of at least ``bridge_min_side`` records each. Returns (kept, cut) edge indexes.

    Works one cluster at a time: a cut only changes the cluster it was in, and only the clusters that
    hold a weak pair are looked at (found with array operations: most clusters hold none)."""
    if not accepted:
        return [], []
    at = np.asarray(accepted, dtype=np.int64)
    a = np.asarray(ea, dtype=object)[at]
    b = np.asarray(eb, dtype=object)[at]
    swap = b < a
    lo, hi = np.where(swap, b, a), np.where(swap, a, b)
    codes, names = pd.factorize(np.concatenate([lo, hi]))
    lo_code, hi_code = codes[:len(at)], codes[len(at):]
    pair_code = pd.factorize(lo_code.astype(np.int64) * len(names) + hi_code)[0]
    n_pairs = int(pair_code.max()) + 1
    has_rule = np.zeros(n_pairs, dtype=bool)
    np.logical_or.at(has_rule, pair_code, is_rule[at])
    best = np.full(n_pairs, -np.inf)
    np.maximum.at(best, pair_code, prob[at])
    weak_pair = ~has_rule & (best < options.bridge_threshold)
    if not weak_pair.any():
        return sorted(accepted), []
    graph = coo_matrix((np.ones(len(at), dtype=np.int8), (lo_code, hi_code)), shape=(len(names), len(names)))
    _, label = connected_components(graph, directed=False)
    edge_label = label[lo_code]
    in_play = np.isin(edge_label, np.unique(edge_label[weak_pair[pair_code]]))
    pairs: dict[tuple[str, str], list[int]] = defaultdict(list)
    weak: dict[tuple[str, str], float] = {}
    by_label: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for i in np.flatnonzero(in_play).tolist():
        pair = (lo[i], hi[i])
        if pair not in pairs:
            by_label[int(edge_label[i])].append(pair)
            if weak_pair[pair_code[i]]:
                weak[pair] = float(best[pair_code[i]])
        pairs[pair].append(int(at[i]))
    cut: list[int] = []
    for component in by_label.values():
        component_weak = {p: weak[p] for p in component if p in weak}
        while component_weak:
            candidates = [(p, pair) for pair, (p, small_side) in
                          _bridges_with_sides(component, component_weak).items()
                          if small_side >= options.bridge_min_side]
            if not candidates:
                break
            _, pair = min(candidates)
            cut += pairs[pair]
            component = [p for p in component if p != pair]
            del component_weak[pair]
    cut_set = set(cut)
    return sorted(i for i in accepted if i not in cut_set), cut


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


def _components(rids: list[str], ea: list[str], eb: list[str], kept: list[int]) -> dict[str, str]:
    """rid -> cluster id: the connected components of the ``kept`` edges over ``rids`` (sorted, distinct).

    Graph components in scipy and one id per component, not a Python union-find over every record:
    at a million records most are alone, and each is one array slot here."""
    ids = pd.Index(rids)
    n = len(ids)
    if n == 0:
        return {}
    pick = np.asarray(kept, dtype=np.int64)
    a = ids.get_indexer(pd.Index(ea).take(pick)) if len(pick) else np.zeros(0, np.int64)
    b = ids.get_indexer(pd.Index(eb).take(pick)) if len(pick) else np.zeros(0, np.int64)
    if (a < 0).any() or (b < 0).any():
        missing = [ea[i] if x < 0 else eb[i] for i, x, y in zip(pick.tolist(), a, b) if x < 0 or y < 0]
        raise KeyError(missing[0])
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # ``rids`` are sorted, so a component's first position is its smallest member.
    _, first = np.unique(labels, return_index=True)
    names = np.asarray(rids, dtype=object)[first]
    component_ids = np.array([cluster_id_for((r,)) for r in names], dtype=object)
    return dict(zip(rids, component_ids[labels].tolist()))
