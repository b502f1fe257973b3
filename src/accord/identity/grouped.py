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


def composite_records(std: pd.DataFrame, groups: np.ndarray, model: IdentityModel) -> pd.DataFrame:
    """One row per group: ``rid`` of its most complete member (ties: the smallest rid), per column the
    value of the most complete member that has one, list columns the members' values in that order."""
    columns = [c for c in input_columns(model.settings) if c in std and c != UNIQUE_ID]
    lists = list_columns(model.settings)
    frame = std[[UNIQUE_ID, *columns]].copy()
    frame["_group"] = groups
    frame["_filled"] = frame[columns].notna().sum(axis=1)
    # By group, most complete first, then rid: one numeric sort (rids as sorted codes), not a frame sort on text.
    rid_code = pd.factorize(frame[UNIQUE_ID].to_numpy(dtype=object), sort=True)[0]
    frame = frame.iloc[np.lexsort((rid_code, -frame["_filled"].to_numpy(), frame["_group"].to_numpy()))]
    by_group = frame.groupby("_group", sort=True)
    scalars = [c for c in columns if c not in lists]
    out = by_group[[UNIQUE_ID, *scalars]].first()
    for col in (c for c in columns if c in lists):
        exploded = frame[["_group", col]].explode(col)
        exploded = exploded[exploded[col].notna()].drop_duplicates(["_group", col])
        # Split the (group-sorted) values at group boundaries: a groupby(...).agg(list) runs Python per group.
        codes = exploded["_group"].to_numpy()
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(codes) else np.zeros(0, int)
        # np.split of an empty array gives one empty chunk: no values at all (every phone invalid) is no chunk.
        values = np.split(exploded[col].to_numpy(dtype=object), starts[1:]) if len(codes) else []
        merged = pd.Series([list(v) for v in values], index=codes[starts], dtype=object)
        out[col] = merged.reindex(out.index).where(lambda v: v.notna(), None)
    out = out.reset_index()
    return out[["_group", UNIQUE_ID, *columns]]


def model_table(frame: pd.DataFrame, model: IdentityModel) -> pa.Table:
    """``IdentityModel.input_table`` for a frame of standardized records, column by column in Arrow
    (no Python per value): strings with empty as null, lists as list<string> with empty as null."""
    lists = list_columns(model.settings)
    out: dict[str, pa.Array] = {}
    for col in [UNIQUE_ID] + [c for c in input_columns(model.settings) if c != UNIQUE_ID]:
        if col not in frame:
            out[col] = pa.nulls(len(frame), pa.list_(pa.string()) if col in lists else pa.string())
        elif col in lists:
            values = frame[col].to_numpy(dtype=object)
            array = pa.array(values, pa.list_(pa.string()), from_pandas=True)
            out[col] = pc.if_else(pc.greater(pc.fill_null(pc.list_value_length(array), 0), 0), array,
                                  pa.nulls(len(array), array.type))
        else:
            array = pa.array(frame[col].to_numpy(dtype=object), pa.string(), from_pandas=True)
            out[col] = pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)
    return pa.table(out)


def predict_through_groups(model: IdentityModel, std: pd.DataFrame, rule_edges: pd.DataFrame, threshold: float,
                           ) -> tuple[pd.DataFrame, GroupedScoring]:
    """Model edges (record_a, record_b, probability, match_weight) at or above ``threshold`` between
    records of different rule groups, scored through the groups (see the module's description)."""
    tf = term_frequency_tables(std, model.settings)
    groups = rule_groups(std[UNIQUE_ID], rule_edges)
    composites = composite_records(std, groups, model)
    size = np.bincount(groups)
    candidates = model.predict(model_table(composites, model), threshold * CANDIDATE_SHARE, term_frequencies=tf)
    group_of = pd.Series(composites["_group"].to_numpy(), index=composites[UNIQUE_ID].to_numpy())
    ga = group_of.reindex(candidates["record_a"]).to_numpy(dtype=np.int64)
    gb = group_of.reindex(candidates["record_b"]).to_numpy(dtype=np.int64)
    lone = (size[ga] == 1) & (size[gb] == 1)
    direct = candidates[lone & (candidates["probability"].to_numpy() >= threshold)]
    members = pd.DataFrame({"g": groups, "rid": std[UNIQUE_ID].astype(str).to_numpy()})
    wanted = pd.DataFrame({"ga": ga[~lone], "gb": gb[~lone]})
    expanded = (wanted.merge(members.rename(columns={"g": "ga", "rid": "record_a"}), on="ga")
                .merge(members.rename(columns={"g": "gb", "rid": "record_b"}), on="gb"))
    scored = model.score_pairs(model_table(std, model), expanded[["record_a", "record_b"]], term_frequencies=tf)
    scored = scored[scored["probability"] >= threshold]
    edges = sort_pairs(pd.concat([direct, scored], ignore_index=True))
    return edges, GroupedScoring(len(std), len(composites), len(candidates), len(expanded))
