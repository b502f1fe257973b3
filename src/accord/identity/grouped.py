"""Scoring through rule groups: the model scores fewer records when the rules have joined many.

Records that the deterministic rules already join (they share an email, a phone or an external id,
and look like one person) form a *rule group*. Instead of letting the blocking rules pair every
record with every other, the model runs in two steps:

1. **Candidates.** Each rule group is folded into one composite record (per column the value of
   its most complete member that has one; list columns hold every member's values) and the
   composites are scored under the usual blocking rules, at a lower ``candidate_threshold``.
   A million records that the rules fold into 600,000 composites give roughly a third of the pairs.
2. **Scores.** Every pair of real records behind a candidate pair (one from each side) is scored
   with ``IdentityModel.score_pairs``; those at or above the threshold are the edges. Pairs of two
   lone records were scored as themselves in step 1 already.

Every edge is therefore a real pair with its own score (``accord explain`` gives the same number),
and term frequencies come from every record, as a direct ``predict`` over all of them would.
Pairs inside a rule group are not scored: the rule edge joins them (the clustering still judges
it), as it would have whatever the model said.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from accord.identity.model import (
    UNIQUE_ID,
    IdentityModel,
    input_columns,
    list_columns,
    sort_pairs,
    term_frequency_tables,
)

CANDIDATE_SHARE = 0.1
"""Composites are kept as candidates from this share of the threshold probability (0.6 -> 0.06, about
4.5 bits of match weight lower): a composite can score below its best member pair when members
disagree with each other."""


@dataclass
class GroupedScoring:
    """What scoring through rule groups did (for the run report)."""

    records: int
    composites: int
    candidate_pairs: int
    scored_pairs: int


def rule_groups(rids: pd.Series | list[str], rule_edges: pd.DataFrame) -> np.ndarray:
    """A group number per record: records joined, directly or through others, by a rule edge."""
    ids = pd.Index(list(rids))
    n = len(ids)
    if n == 0 or rule_edges is None or not len(rule_edges):
        return np.arange(n)
    a = ids.get_indexer(rule_edges["record_a"].astype(str))
    b = ids.get_indexer(rule_edges["record_b"].astype(str))
    keep = (a >= 0) & (b >= 0)
    graph = coo_matrix((np.ones(int(keep.sum()), dtype=np.int8), (a[keep], b[keep])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def raw_columns(frame: pd.DataFrame, model: IdentityModel) -> dict[str, pa.Array]:
    """The model's input columns of a frame of standardized records as Arrow arrays, values as they are
    (null where pandas sees none: an empty string or list is a value here): ``rid`` first, lists as
    list<string>, the rest as strings. ``model_input`` turns them into the model's input table."""
    lists = list_columns(model.settings)
    out: dict[str, pa.Array] = {}
    for col in [UNIQUE_ID] + [c for c in input_columns(model.settings) if c != UNIQUE_ID]:
        kind = pa.list_(pa.string()) if col in lists else pa.string()
        out[col] = (pa.array(frame[col].to_numpy(dtype=object), kind, from_pandas=True) if col in frame
                    else pa.nulls(len(frame), kind))
    return out


def model_input(raw: dict[str, pa.Array]) -> pa.Table:
    """``IdentityModel.input_table`` of ``raw_columns``: empty strings and empty lists as null."""
    out: dict[str, pa.Array] = {}
    for col, array in raw.items():
        if pa.types.is_list(array.type):
            out[col] = pc.if_else(pc.greater(pc.fill_null(pc.list_value_length(array), 0), 0), array,
                                  pa.nulls(len(array), array.type))
        else:
            out[col] = pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)
    return pa.table(out)


def model_table(frame: pd.DataFrame, model: IdentityModel) -> pa.Table:
    """``IdentityModel.input_table`` for a frame of standardized records, column by column in Arrow
    (no Python per value): strings with empty as null, lists as list<string> with empty as null."""
    return model_input(raw_columns(frame, model))


def composite_table(raw: dict[str, pa.Array], groups: np.ndarray) -> tuple[np.ndarray, pa.Table]:
    """One composite per group of the records ``raw`` (``raw_columns``), as (group numbers, the
    composites' model input table, in that order).

    A composite's ``rid`` is its most complete member's (most values, ties: the smallest rid); per
    column the value of the most complete member that has one; list columns hold the members' values
    in that order, each once. All in Arrow and numpy: no Python per record."""
    columns = [c for c in raw if c != UNIQUE_ID]
    n = len(raw[UNIQUE_ID])
    filled = np.zeros(n, dtype=np.int64)
    for col in columns:
        filled += raw[col].is_valid().to_numpy(zero_copy_only=False)
    # By group, most complete first, then rid: one numeric sort (rids as sorted codes), not a sort on text.
    rid_rank = pc.rank(raw[UNIQUE_ID], sort_keys="ascending", tiebreaker="first").to_numpy()
    group = np.asarray(groups, dtype=np.int64)
    order = np.lexsort((rid_rank, -filled, group))
    sorted_group = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]]) if n else np.zeros(0, np.int64)
    group_ids = sorted_group[starts]
    out: dict[str, pa.Array] = {UNIQUE_ID: raw[UNIQUE_ID].take(pa.array(order[starts]))}
    for col in columns:
        column = raw[col].take(pa.array(order))
        if pa.types.is_list(column.type):
            out[col] = _merged_lists(column, sorted_group, group_ids)
            continue
        # Per group, the first member (in the order above) that has a value.
        has = np.flatnonzero(column.is_valid().to_numpy(zero_copy_only=False))
        first = has[np.r_[True, sorted_group[has[1:]] != sorted_group[has[:-1]]]] if len(has) else has
        at = np.zeros(len(group_ids), dtype=np.int64)
        found = np.zeros(len(group_ids), dtype=bool)
        slot = np.searchsorted(group_ids, sorted_group[first])
        at[slot], found[slot] = first, True
        out[col] = column.take(pa.array(at, mask=~found))
    return group_ids, model_input(out)


def _merged_lists(column: pa.Array, sorted_group: np.ndarray, group_ids: np.ndarray) -> pa.Array:
    """Per group (``column``'s rows in group order), its members' list values in order, each value
    once; null for a group without any."""
    values = pc.list_flatten(column)
    owner = sorted_group[pc.list_parent_indices(column).to_numpy()]
    keep = values.is_valid().to_numpy(zero_copy_only=False)
    values, owner = values.filter(pa.array(keep)), owner[keep]
    # Each value once per group (its first place): group and value as one integer key.
    code = pc.dictionary_encode(values).indices.to_numpy().astype(np.int64)
    first = ~pd.Series(owner * (int(code.max(initial=0)) + 1) + code).duplicated().to_numpy()
    values, owner = values.filter(pa.array(first)), owner[first]
    counts = np.zeros(len(group_ids), dtype=np.int64)
    np.add.at(counts, np.searchsorted(group_ids, owner), 1)
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(counts == 0))


def predict_through_groups(model: IdentityModel, std: pd.DataFrame, rule_edges: pd.DataFrame, threshold: float,
                           ) -> tuple[pd.DataFrame, GroupedScoring]:
    """Model edges (record_a, record_b, probability, match_weight) at or above ``threshold`` between
    records of different rule groups, scored through the groups (see the module's description)."""
    raw = raw_columns(std, model)
    records = model_input(raw)
    tf = term_frequency_tables(records, model.settings)
    groups = rule_groups(std[UNIQUE_ID], rule_edges)
    group_ids, composites = composite_table(raw, groups)
    del raw
    size = np.bincount(groups)
    candidates = model.predict(composites, threshold * CANDIDATE_SHARE, term_frequencies=tf)
    group_of = pd.Series(group_ids, index=composites[UNIQUE_ID].to_numpy())
    ga = group_of.reindex(candidates["record_a"]).to_numpy(dtype=np.int64)
    gb = group_of.reindex(candidates["record_b"]).to_numpy(dtype=np.int64)
    lone = (size[ga] == 1) & (size[gb] == 1)
    direct = candidates[lone & (candidates["probability"].to_numpy() >= threshold)]
    members = pd.DataFrame({"g": groups, "rid": std[UNIQUE_ID].astype(str).to_numpy()})
    wanted = pd.DataFrame({"ga": ga[~lone], "gb": gb[~lone]})
    expanded = (wanted.merge(members.rename(columns={"g": "ga", "rid": "record_a"}), on="ga")
                .merge(members.rename(columns={"g": "gb", "rid": "record_b"}), on="gb"))
    # Distinct already: every record is in one group, and the candidates are distinct pairs of groups.
    a, b = expanded["record_a"].to_numpy(dtype=object), expanded["record_b"].to_numpy(dtype=object)
    ordered = pd.DataFrame({"record_a": np.minimum(a, b), "record_b": np.maximum(a, b)})
    scored = model.score_pairs(records, ordered, term_frequencies=tf, distinct=True, threshold=threshold)
    edges = sort_pairs(pd.concat([direct, scored], ignore_index=True))
    return edges, GroupedScoring(len(std), composites.num_rows, len(candidates), len(expanded))
