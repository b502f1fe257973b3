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

Most components of the mergeable edges hold nothing a constraint could refuse (one birth date,
compatible names, one value per unique key, identifiers within their limits, no human cannot-link):
they merge whole, found with array operations; only the others go through the per-edge loop, and
edges below auto-merge are judged record by record without building a group each. The values the
constraints compare arrive in long form (``ConstraintValues``), so a million records need no dict
each.

Human decisions take part as well: a must-link is an edge (``rule_or_model``
``decision:must_link``) merged before every other and exempt from the automatic
cannot-link tests, and a cannot-link (``cannot_link`` pairs) refuses every merge
that would put its two records together, must-links included.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from accord.identity.constraints import Name, dob_conflict, groups_conflict, is_initial, names_conflict

# unique_values keys compared leniently (see constraints) rather than for equality.
DOB_KEY = "dob"
DECISION_PREFIX = "decision:"
MUST_LINK_EDGE = "decision:must_link"
NAME_KEY = "\0name"
"""``ConstraintValues.values``' key of names (no unique_values key: it starts with NUL)."""


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
class ConstraintValues:
    """The values the constraints compare, one row per record and value (long form), so that a
    million records need no dict each: only the records a constraint is actually checked on get one
    (``dicts_for``).

    ``values`` (rid, key, value): the unique keys ('dob', 'external:SOURCE:KEY') and, under the key
    ``NAME_KEY``, the (given, family) name written ``join_name`` gives; ``identifiers`` (rid, type,
    value): identifiers of the types with a per-customer limit; ``cannot_link[rid]``: the records a
    human decided are other people."""

    values: pd.DataFrame
    identifiers: pd.DataFrame
    cannot_link: dict[str, set[str]]

    @classmethod
    def from_dicts(cls, unique_values: dict[str, dict[str, str]], given_names: dict[str, str | Name],
                   identifiers: dict[str, dict[str, set[str]]], limits: dict[str, int],
                   cannot_link: dict[str, set[str]]) -> ConstraintValues:
        rows: list[tuple[str, str, str]] = [(r, k, v) for r, held in unique_values.items() for k, v in held.items()]
        for r, name in given_names.items():
            name = (name, None) if isinstance(name, str) else tuple(name)
            if name and name[0]:
                rows.append((r, NAME_KEY, join_name(name)))
        ids = [(r, t, v) for r, held in identifiers.items() for t, vals in held.items() if t in limits for v in vals]
        return cls(pd.DataFrame(rows, columns=["rid", "key", "value"], dtype=object),
                   pd.DataFrame(ids, columns=["rid", "type", "value"], dtype=object), cannot_link)

    def codes(self, index: pd.Index) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The position in ``index`` (-1: none) of each ``values`` row's record, each ``identifiers``
        row's record and each record with a human cannot-link."""
        return (index.get_indexer(self.values["rid"]), index.get_indexer(self.identifiers["rid"]),
                index.get_indexer(list(self.cannot_link)) if self.cannot_link else np.zeros(0, dtype=np.int64))

    def dicts_for(self, codes: tuple[np.ndarray, np.ndarray, np.ndarray], records: np.ndarray, n: int
                  ) -> tuple[dict, dict, dict]:
        """(unique_values, given_names, identifiers) as ``cluster_edges`` takes them, for ``records``
        only (positions among ``n``, as ``codes`` gives them)."""
        wanted = np.zeros(n + 1, dtype=bool)  # the last slot: rows of no record (-1)
        wanted[records] = True
        unique: dict[str, dict[str, str]] = {}
        given: dict[str, Name] = {}
        rows = self.values[wanted[codes[0]]]
        for r, key, value in zip(rows["rid"].tolist(), rows["key"].tolist(), rows["value"].tolist()):
            if key == NAME_KEY:
                given[r] = split_name(value)
            else:
                unique.setdefault(r, {})[key] = value
        identifiers: dict[str, dict[str, set[str]]] = {}
        rows = self.identifiers[wanted[codes[1]]]
        for r, type_, value in zip(rows["rid"].tolist(), rows["type"].tolist(), rows["value"].tolist()):
            identifiers.setdefault(r, {}).setdefault(type_, set()).add(value)
        return unique, given, identifiers


NAME_SEPARATOR = "\x1f"
"""Between given and family name in a ``NAME_KEY`` value (the ASCII unit separator: in no name)."""


def join_name(name: Name) -> str:
    return f"{name[0]}{NAME_SEPARATOR}{name[1] or ''}"


def split_name(text: str) -> Name:
    given, family = text.split(NAME_SEPARATOR, 1)
    return given, family or None


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
    values: ConstraintValues | None = None,
) -> ClusterResult:
    """Cluster records joined by ``edges`` (record_a, record_b, probability, rule_or_model, priority).

    ``probability`` is null for rule edges. ``unique_values[rid]`` maps a key such
    as 'dob' to the record's value: records with different values for a key never
    share a cluster, except 'dob', which conflicts only as ``constraints.dob_conflict`` says.
    ``given_names[rid]`` (a given name, or a (given, family) pair) adds the given-name
    cannot-link (``constraints.names_conflict``); ``identifiers[rid][type]`` with ``limits[type]`` adds per-customer limits.
    ``cannot_link[rid]`` holds the records a human decided are other people; edges whose ``rule_or_model``
    starts with ``decision:`` (must-links) merge first and skip the automatic tests, not these.
    ``values`` holds all of these but the limits in long form instead (for many records).
    """
    limits = limits or {}
    if values is None:
        values = ConstraintValues.from_dicts(unique_values or {}, given_names or {}, identifiers or {}, limits,
                                             cannot_link or {})
    cannot_link = values.cannot_link
    rids = _sorted_distinct(records)
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
    # Every record as its position among the sorted records: one hash of each name, then numbers.
    index = pd.Index(rids)
    a_code, b_code = index.get_indexer(ea), index.get_indexer(eb)
    if (a_code < 0).any() or (b_code < 0).any():
        raise KeyError(ea[int(np.argmax(a_code < 0))] if (a_code < 0).any() else eb[int(np.argmax(b_code < 0))])
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
    # Rules first (by identifier priority), then model edges strongest first; ties by record names
    # (their sorted positions).
    order = order[_merge_order(is_rule[order], priority[order], prob[order], a_code[order], b_code[order],
                               len(rids))]
    # Components of the mergeable edges whose records hold no two values a constraint could compare
    # apart merge whole, in any order: their edges are accepted without the per-edge loop below.
    value_code = values.codes(index)
    free = _unconstrained_edges(a_code[order], b_code[order], len(rids), values, value_code, limits)
    # Dicts only for the records the merge loop checks constraints on.
    checked = order[~free]
    unique_values, given_names, identifiers = values.dicts_for(
        value_code, np.concatenate([a_code[checked], b_code[checked]]), len(rids))
    accepted: list[int] = order[free].tolist()
    for idx in accepted:
        status[idx] = "auto"
    rejected = 0
    for idx in order[~free].tolist():
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

    labels, component_ids = _components(rids, a_code, b_code, kept)
    # Edges below auto-merge: review unless their records ended up together, or cannot be together.
    below = np.flatnonzero(~mergeable)
    if len(below):
        together = labels[a_code[below]] == labels[b_code[below]]
        for idx in below[together].tolist():
            status[idx], reason[idx] = "auto", "same_cluster"
        apart = below[~together]
        for idx, conflict in zip(apart.tolist(), _pair_conflicts(rids, a_code[apart], b_code[apart], values,
                                                                 value_code)):
            if conflict:
                status[idx], reason[idx] = "rejected", conflict
    edges["status"] = status
    edges["reason"] = reason
    clusters = dict(zip(rids, component_ids[labels].tolist()))
    return ClusterResult(clusters, edges, rejected_merges=rejected, bridges_cut=len(cut))


def _merge_order(is_rule: np.ndarray, priority: np.ndarray, prob: np.ndarray, a_code: np.ndarray,
                 b_code: np.ndarray, n: int) -> np.ndarray:
    """``np.lexsort((b_code, a_code, -prob, priority, ~is_rule))``: rules first by priority, then the
    strongest, ties by the pair (records as positions among ``n``). The keys are packed into two
    integers, (rule first, priority, -prob) as ranks and the pair, and sorted by two stable sorts:
    a fifth of lexsort's time on a million edges."""
    priority_rank = np.unique(priority, return_inverse=True)[1].astype(np.int64).reshape(-1)
    kind = np.where(is_rule, 0, len(is_rule) + 1) + priority_rank
    prob_values, prob_rank = np.unique(-prob, return_inverse=True)
    first = kind * len(prob_values) + prob_rank.reshape(-1)
    order = np.argsort(a_code.astype(np.int64) * n + b_code, kind="stable")
    return order[np.argsort(first[order], kind="stable")]


def _pair_conflicts(rids: list[str], a: np.ndarray, b: np.ndarray, values: ConstraintValues,
                    value_code: tuple[np.ndarray, np.ndarray, np.ndarray]) -> list[str | None]:
    """``_conflict`` of each pair of single records (a[i], b[i], positions in ``rids``; ``value_code``:
    ``values.codes`` of them), without a group each: the reason two records cannot be one person, or
    None. Pairs that differ on a strict unique key (rare) go to ``_conflict`` itself, which names the
    key it meets first."""
    out: list[str | None] = [None] * len(a)
    if not len(a):
        return out
    n = len(rids)
    code = value_code[0]
    key = values.values["key"].to_numpy(dtype=object)
    value = values.values["value"].to_numpy(dtype=object)
    by_code: dict[str, np.ndarray] = {}
    for lenient_key in (DOB_KEY, NAME_KEY):
        held = np.full(n + 1, None, dtype=object)  # the last slot: rows of no record (-1)
        at = key == lenient_key
        held[code[at]] = value[at]
        by_code[lenient_key] = held
    strict = (key != DOB_KEY) & (key != NAME_KEY) & (code >= 0)
    by_group: set[int] = set()
    if strict.any():
        rows = pd.DataFrame({"code": code[strict], "key": key[strict], "value": value[strict]})
        pairs = pd.DataFrame({"pair": np.arange(len(a)), "a": a, "b": b})
        left = pairs.merge(rows, left_on="a", right_on="code")[["pair", "key", "value"]]
        right = pairs.merge(rows, left_on="b", right_on="code")[["pair", "key", "value"]]
        both = left.merge(right, on=["pair", "key"], suffixes=("_a", "_b"))
        by_group = set(both.loc[both["value_a"] != both["value_b"], "pair"].tolist())
    cannot = values.cannot_link
    alone: dict[str, _Group] = {}
    unique = given = identifiers = None
    dob_a, dob_b = by_code[DOB_KEY][a].tolist(), by_code[DOB_KEY][b].tolist()
    name_a, name_b = by_code[NAME_KEY][a].tolist(), by_code[NAME_KEY][b].tolist()
    for i, (ca, cb) in enumerate(zip(a.tolist(), b.tolist())):
        ra, rb = rids[ca], rids[cb]
        if cannot and (rb in cannot.get(ra, ()) or ra in cannot.get(rb, ())):
            out[i] = "cannot_link:decision"
        elif i in by_group:
            if unique is None:
                picked = np.asarray(sorted(by_group))
                unique, given, identifiers = values.dicts_for(value_code, np.concatenate([a[picked], b[picked]]), n)
            for r in (ra, rb):
                if r not in alone:
                    alone[r] = _group_for(r, unique, given, identifiers, cannot)
            out[i] = _conflict(alone[ra], alone[rb], {})
        else:
            da, db = dob_a[i], dob_b[i]
            if da and db and dob_conflict(da, db):
                out[i] = "cannot_link:dob"
                continue
            na, nb = name_a[i], name_b[i]
            if na and nb and na != nb and names_conflict(split_name(na), split_name(nb)):
                out[i] = "cannot_link:given_name"
    return out


def _unconstrained_edges(a_code: np.ndarray, b_code: np.ndarray, n: int, values: ConstraintValues,
                         value_code: tuple[np.ndarray, np.ndarray, np.ndarray], limits: dict[str, int]) -> np.ndarray:
    """For each mergeable edge (a_code[i], b_code[i], records as positions among ``n``): True when
    its component of mergeable edges can merge whole with no constraint refusing any merge,
    whatever the order. ``value_code``: ``values.codes`` of the same records.

    That holds when, across the component's records, no two birth dates conflict, no two names
    conflict (then no two groups of them do: ``groups_conflict`` needs a conflicting pair), every
    other unique key has at most one value, no limited identifier type holds more values than its
    limit and no record has a human cannot-link (must-links then merge like any edge). Every other
    component goes through the per-edge merge loop."""
    n_edges = len(a_code)
    if n_edges == 0:
        return np.zeros(0, dtype=bool)
    graph = coo_matrix((np.ones(n_edges, dtype=np.int8), (a_code, b_code)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    in_graph = np.zeros(n, dtype=bool)
    in_graph[a_code] = True
    in_graph[b_code] = True
    unsafe = np.zeros(int(label.max()) + 1, dtype=bool)
    value_rows, identifier_rows, held = value_code
    held = held[held >= 0]
    unsafe[label[held[in_graph[held]]]] = True

    code = value_rows
    keep = code >= 0
    keep[keep] = in_graph[code[keep]]
    # Distinct (label, key, value) rows of the labels holding two values or more of a key, by label and
    # key: as integer codes (hashing a million strings once each, not three frame passes over them).
    row_label = label[code[keep]].astype(np.int64)
    key_code, keys = pd.factorize(values.values["key"].to_numpy(dtype=object)[keep], use_na_sentinel=False)
    value_code, _ = pd.factorize(values.values["value"].to_numpy(dtype=object)[keep], use_na_sentinel=False)
    label_key = row_label * max(len(keys), 1) + key_code
    first = ~pd.Series(label_key * (int(value_code.max(initial=0)) + 1) + value_code).duplicated().to_numpy()
    several = first & pd.Series(np.where(first, label_key, -1 - np.arange(len(first)))).duplicated(keep=False).to_numpy()
    picked = np.flatnonzero(several)
    picked = picked[np.argsort(label_key[picked], kind="stable")]
    rows = pd.DataFrame({"label": row_label[picked], "key": np.asarray(keys, dtype=object)[key_code[picked]],
                         "value": values.values["value"].to_numpy(dtype=object)[keep][picked]})
    # Birth dates and names conflict only pair by pair (a typo, a nickname is no conflict).
    strict = ~rows["key"].isin([DOB_KEY, NAME_KEY]).to_numpy()
    unsafe[rows["label"].to_numpy()[strict]] = True
    lenient = rows[~strict]
    for (lab, key), group in itertools.groupby(
            zip(lenient["label"].tolist(), lenient["key"].tolist(), lenient["value"].tolist()),
            key=lambda row: (row[0], row[1])):
        if unsafe[lab]:
            continue
        held_values = [row[2] for row in group]
        if key == NAME_KEY:
            conflict = any(names_conflict(split_name(x), split_name(y))
                           for x, y in itertools.combinations(held_values, 2))
        else:
            conflict = any(dob_conflict(x, y) for x, y in itertools.combinations(held_values, 2))
        if conflict:
            unsafe[lab] = True
    if limits and len(values.identifiers):
        code = identifier_rows
        keep = code >= 0
        keep[keep] = in_graph[code[keep]]
        # Distinct values per (label, type), counted on integer codes.
        type_code, types = pd.factorize(values.identifiers["type"].to_numpy(dtype=object)[keep])
        value_code, _ = pd.factorize(values.identifiers["value"].to_numpy(dtype=object)[keep])
        label_type = label[code[keep]].astype(np.int64) * max(len(types), 1) + type_code
        label_type, value_code = label_type[value_code >= 0], value_code[value_code >= 0]  # nulls: no value
        distinct = np.unique(label_type * (int(value_code.max(initial=0)) + 1) + value_code) // (
            int(value_code.max(initial=0)) + 1)
        groups, counts = np.unique(distinct, return_counts=True)
        limit = np.array([limits.get(t, np.inf) for t in types], dtype=float)
        over = counts > limit[groups % max(len(types), 1)]
        unsafe[groups[over] // max(len(types), 1)] = True
    return ~unsafe[label[a_code]]


def _sorted_distinct(records: Iterable[str]) -> list[str]:
    """``sorted(set(records))``; records usually arrive in order already, which one comparison each
    confirms (a million names sort in seconds)."""
    names = list(records)
    array = np.asarray(names, dtype=object)
    if len(names) < 2 or bool((array[1:] > array[:-1]).all()):
        return names
    return sorted(set(names))


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


def _components(rids: list[str], a_code: np.ndarray, b_code: np.ndarray, kept: list[int]
                ) -> tuple[np.ndarray, np.ndarray]:
    """(label of each of ``rids`` (sorted, distinct), cluster id of each label): the connected
    components of the ``kept`` edges (records as positions in ``rids``).

    Graph components in scipy and one id per component, not a Python union-find over every record:
    at a million records most are alone, and each is one array slot here."""
    n = len(rids)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object)
    pick = np.asarray(kept, dtype=np.int64)
    graph = coo_matrix((np.ones(len(pick), dtype=np.int8), (a_code[pick], b_code[pick])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # ``rids`` are sorted, so a component's first position is its smallest member.
    _, first = np.unique(labels, return_index=True)
    names = np.asarray(rids, dtype=object)[first]
    return labels, np.array([cluster_id_for((r,)) for r in names], dtype=object)
