"""Deterministic rules: records sharing an identifier link, unless the identifier is junk.

An identifier (an email, a phone, an external id) links two records when both
carry it and they look like the same person (compatible given names and dates
of birth). Values on the blocked list, placeholder junk, and values shared by
more than ``shared_identifier_limit`` distinct-looking people (a shop's phone,
a family email) link nothing and are listed in the report.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from accord.identity.constraints import dob_conflict, groups_conflict, names_conflict
from accord.identity.settings import IdentitySettings
from accord.standardize import is_placeholder_text
from accord.standardize.placeholders import PLACEHOLDER_TEXT

EDGE_COLUMNS = ("record_a", "record_b", "rule", "priority")

# External ids that are never real: empty-ish words, a single repeated character, all zeros.
_JUNK_ID = re.compile(r"^(?:(.)\1*|0+|n/?a|none|null|unknown|-+|\?+|tbd|test)$", re.IGNORECASE)


@dataclass
class ExcludedIdentifier:
    type: str
    value: str
    reason: str
    records: int
    people: int

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "value": self.value, "reason": self.reason,
                "records": self.records, "people": self.people}


@dataclass
class RuleResult:
    edges: pd.DataFrame
    """record_a, record_b, rule ('rule:<type>'), priority."""
    identifiers: pd.DataFrame
    """rid, type, value: the identifiers each record carries after exclusions (for per-customer limits)."""
    excluded: list[ExcludedIdentifier] = field(default_factory=list)
    carried: pd.DataFrame | None = None
    """rid, type, value: every identifier the records carry, before exclusions (``record_identifiers``)."""


def record_identifiers(records: pd.DataFrame, settings: IdentitySettings) -> pd.DataFrame:
    """One row per (rid, identifier type, value) from std_emails, std_phones and external_ids."""
    return _identifier_rows(records, settings)[1]


def identifiers_of(record: Mapping[str, Any], settings: IdentitySettings) -> list[tuple[str, str]]:
    """``record_identifiers`` of one standardized record, as (type, value) in the same order: its emails,
    its phones, then its external ids in the order its JSON lists them (a real-time identify has one
    record, and a frame for it costs milliseconds)."""
    wanted = {t.name for t in settings.identifiers}
    out: list[tuple[str, str]] = []
    for type_, col in (("email", "std_emails"), ("phone", "std_phones")):
        if type_ in wanted:
            out += [(type_, v) for v in _as_list(record.get(col))]
    for key, value in _as_map(record.get("external_ids")).items():
        type_ = f"external:{key}"
        if ("external" in wanted or type_ in wanted) and value not in (None, ""):
            out.append((type_, str(value).strip()))
    return out


def _identifier_rows(records: pd.DataFrame, settings: IdentitySettings) -> tuple[np.ndarray, pd.DataFrame]:
    """``record_identifiers`` and, per row, the position of its record in ``records``."""
    wanted = {t.name for t in settings.identifiers}
    parts: list[tuple[np.ndarray, pd.DataFrame]] = []
    rids = records["rid"].to_numpy(dtype=object)
    for type_, col in (("email", "std_emails"), ("phone", "std_phones")):
        if type_ in wanted and col in records:
            parts.append(_list_identifiers(rids, records[col].to_numpy(dtype=object), type_))
    if "external_ids" in records:
        parts.append(_external_identifiers(rids, records["external_ids"].to_numpy(dtype=object), wanted))
    parts = [p for p in parts if len(p[1])]
    if not parts:
        return np.zeros(0, dtype=np.int64), pd.DataFrame(columns=["rid", "type", "value"])
    if len(parts) == 1:
        return parts[0][0], parts[0][1].reset_index(drop=True)
    return (np.concatenate([at for at, _ in parts]),
            pd.concat([frame for _, frame in parts], ignore_index=True))


_WS = r"[ \t\n\r]*"
_TEXT = r'"[^"\\\x00-\x1f\x7f-\x{10ffff}]*"'
_SIMPLE_OBJECT = rf"^{_WS}\{{{_WS}(?:{_TEXT}{_WS}:{_WS}{_TEXT}(?:{_WS},{_WS}{_TEXT}{_WS}:{_WS}{_TEXT})*)?{_WS}\}}{_WS}$"
"""A JSON object of ASCII string keys and values without escapes: split in Arrow, no JSON parser."""


def _external_identifiers(rids: np.ndarray, cells: np.ndarray, wanted: set[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """(rid, 'external:<key>', value) per key of each record's external_ids, in record then key order,
    as the per-record loop over ``_as_map`` gives them; plain objects (almost all) are split in Arrow."""
    array = pa.array([c if isinstance(c, str) else None for c in cells], pa.string())
    simple = np.asarray(pc.fill_null(pc.match_substring_regex(array, _SIMPLE_OBJECT), False)
                        .to_numpy(zero_copy_only=False), dtype=bool)
    empty = np.asarray(pc.fill_null(pc.match_substring_regex(array, rf"^{_WS}\{{{_WS}\}}{_WS}$"), False)
                       .to_numpy(zero_copy_only=False), dtype=bool)
    fast = simple & ~empty
    inner = pc.replace_substring_regex(pc.replace_substring_regex(array.filter(pa.array(fast)), rf'^{_WS}\{{{_WS}"', ""),
                                       rf'"{_WS}\}}{_WS}$', "")
    items = pc.split_pattern_regex(inner, rf'"{_WS},{_WS}"')
    owner = np.flatnonzero(fast)[pc.list_parent_indices(items).to_numpy()]
    pairs = pc.split_pattern_regex(pc.list_flatten(items), rf'"{_WS}:{_WS}"')
    keys = pc.list_element(pairs, 0).to_numpy(zero_copy_only=False).astype(object)
    values = pc.list_element(pairs, 1)
    # A key written twice: JSON keeps the last value where it first stood; the per-record path does that.
    twice = pd.DataFrame({"o": owner, "k": keys}).duplicated(keep=False).to_numpy()
    if twice.any():
        fast[np.unique(owner[twice])] = False
        keep_rows = ~np.isin(owner, np.flatnonzero(~fast & simple & ~empty))
        owner, keys, values = owner[keep_rows], keys[keep_rows], values.filter(pa.array(keep_rows))
    types = np.array([f"external:{k}" for k in keys], dtype=object)
    take = np.asarray(pc.not_equal(values, "").to_numpy(zero_copy_only=False), dtype=bool)
    if "external" not in wanted:
        take &= np.isin(types, list(wanted))
    stripped = pc.utf8_trim_whitespace(values).to_numpy(zero_copy_only=False).astype(object)
    at = [owner[take]]
    frame = [pd.DataFrame({"rid": rids[owner[take]], "type": types[take], "value": stripped[take]})]
    rows: list[tuple[str, str, str]] = []
    rows_at: list[int] = []
    for i in np.flatnonzero(~fast & ~empty).tolist():
        raw = cells[i]
        if raw is None:
            continue
        for key, value in _as_map(raw).items():
            type_ = f"external:{key}"
            if ("external" in wanted or type_ in wanted) and value not in (None, ""):
                rows.append((rids[i], type_, str(value).strip()))
                rows_at.append(i)
    if rows:
        at.append(np.asarray(rows_at, dtype=np.int64))
        frame.append(pd.DataFrame(rows, columns=["rid", "type", "value"]))
    out = pd.concat(frame, ignore_index=True)
    positions = np.concatenate(at)
    order = np.argsort(positions, kind="stable")
    return positions[order], out.iloc[order].reset_index(drop=True)


def _list_identifiers(rids: np.ndarray, values: np.ndarray, type_: str) -> tuple[np.ndarray, pd.DataFrame]:
    """(rid, type_, value) for each value of each record's list, in record then list order: one Arrow
    flatten instead of a Python loop over a million lists; JSON text or plain strings take ``_as_list``."""
    try:
        if any(isinstance(v, str) for v in values):
            raise TypeError("text among the lists")
        array = pa.array(values, pa.list_(pa.string()), from_pandas=True)
    except (TypeError, pa.ArrowInvalid, pa.ArrowTypeError):
        rows = [(i, v) for i, vs in enumerate(values.tolist()) for v in _as_list(vs)]
        at = np.fromiter((i for i, _ in rows), dtype=np.int64, count=len(rows))
        return at, pd.DataFrame({"rid": rids[at], "type": type_,
                                 "value": np.array([v for _, v in rows], dtype=object)})
    flat = pc.list_flatten(array)
    parent = pc.list_parent_indices(array).to_numpy()
    keep = pc.fill_null(pc.not_equal(flat, ""), False).to_numpy(zero_copy_only=False)
    at = parent[keep].astype(np.int64)
    return at, pd.DataFrame({"rid": rids[at], "type": type_,
                             "value": flat.filter(pa.array(keep)).to_numpy(zero_copy_only=False).astype(object)})


def apply_rules(records: pd.DataFrame, settings: IdentitySettings) -> RuleResult:
    """Deterministic link edges between standardized records (column ``rid`` names each).

    Identifiers are numbered once (a code per (type, value), a rank per record in rid order), so the
    de-duplication, the grouping of shared values and their (type, value, rid) order are integer
    work. A shared value whose records show at most one given name and one birth date is settled in
    arrays: its records are one person's. Only the values whose records differ somewhere go through
    ``_compatible_groups`` one by one."""
    at, carried = _identifier_rows(records, settings)
    excluded: list[ExcludedIdentifier] = []
    if carried.empty:
        return RuleResult(pd.DataFrame(columns=list(EDGE_COLUMNS)), carried.copy(), excluded, carried)
    record_rank = _rid_ranks(records["rid"].to_numpy(dtype=object))
    type_codes, types = pd.factorize(carried["type"].to_numpy(dtype=object))
    value_codes, values = pd.factorize(carried["value"].to_numpy(dtype=object))
    types, values = np.asarray(types, dtype=object), np.asarray(values, dtype=object)
    key = type_codes.astype(np.int64) * len(values) + value_codes  # one code per (type, value)
    rank = record_rank[at]
    # drop_duplicates of (rid, type, value), the first kept: ``keep`` marks the rows that stay.
    keep = ~pd.Series(rank * (len(types) * len(values)) + key).duplicated().to_numpy()

    blocked = {v.strip().lower() for v in settings.blocked_values}
    value_blocked = (np.array([v.lower() in blocked for v in values.tolist()], dtype=bool) if blocked
                     else np.zeros(len(values), dtype=bool))
    value_bad = value_blocked | _junk_mask(pd.Series(values, dtype=object)).to_numpy(dtype=bool)
    bad = keep & value_bad[value_codes]
    if bad.any():
        bad_rows = pd.DataFrame({"type": types[type_codes[bad]], "value": values[value_codes[bad]]})
        for (type_, value), group in bad_rows.groupby(["type", "value"], sort=True):
            reason = "blocked" if value.lower() in blocked else "placeholder"
            excluded.append(ExcludedIdentifier(type_, value, reason, len(group), 0))
    keep &= ~bad

    # The values two or more records share, in (type, value, rid) order: one group per value.
    kept = np.flatnonzero(keep)
    shared = kept[pd.Series(key[kept]).duplicated(keep=False).to_numpy()]
    shared_values = np.unique(value_codes[shared])
    value_rank = np.zeros(len(values), dtype=np.int64)
    value_rank[shared_values] = _ranks(values[shared_values])
    shared = shared[np.lexsort((rank[shared], value_rank[value_codes[shared]], _ranks(types)[type_codes[shared]]))]
    s_type = types[type_codes[shared]]
    s_value = values[value_codes[shared]]
    s_rid = carried["rid"].to_numpy(dtype=object)[shared]
    s_key = key[shared]
    new_group = np.r_[True, s_key[1:] != s_key[:-1]] if len(shared) else np.zeros(0, dtype=bool)
    starts = np.flatnonzero(new_group)
    sizes = np.diff(np.r_[starts, len(shared)])
    number = np.cumsum(new_group) - 1

    look = _look_arrays(records[[c for c in LOOK_COLUMNS if c in records]].iloc[at[shared]])
    dob = _codes(look["dob"])
    dobs = _group_counts(number, dob, len(starts))  # distinct birth dates per group
    people = _people_per_group(look, number, dobs)
    settled = _settled_groups(look, number, dob, dobs)
    too_many = people > settings.shared_identifier_limit
    priorities = _priorities(settings)
    for g in np.flatnonzero(too_many).tolist():
        first = int(starts[g])
        excluded.append(ExcludedIdentifier(s_type[first], s_value[first], "shared_by_too_many_people",
                                           int(sizes[g]), int(people[g])))

    # (group start, edges): the settled groups and the loop's are merged back into group order.
    edge_parts: list[tuple[np.ndarray, pd.DataFrame]] = []
    linked_whole = np.repeat(settled & ~too_many, sizes) & ~new_group  # each member but the first links to it
    if linked_whole.any():
        rows = np.flatnonzero(linked_whole)
        heads = starts[number[rows]]
        link_types = s_type[rows]
        by_type = {t: priorities(t) for t in pd.unique(link_types).tolist()}
        edge_parts.append((heads, pd.DataFrame({
            "record_a": s_rid[heads], "record_b": s_rid[rows], "rule": [f"rule:{t}" for t in link_types.tolist()],
            "priority": np.array([by_type[t] for t in link_types.tolist()], dtype=np.int64)})))

    # Values whose records differ somewhere: split into groups that could each be one person.
    unsettled = np.flatnonzero(~settled & ~too_many)
    if len(unsettled):
        in_loop = np.repeat(~settled & ~too_many, sizes)
        looks = {r: Look(g, f, d, grp) for r, g, f, d, grp in zip(
            s_rid[in_loop].tolist(), *(look[k][in_loop].tolist() for k in ("given", "family", "dob", "group")))}
        loop_rows: list[tuple[str, str, str, int]] = []
        loop_at: list[int] = []
        for first, size in zip(starts[unsettled].tolist(), sizes[unsettled].tolist()):
            type_ = s_type[first]
            for group_members in _compatible_groups(s_rid[first:first + size].tolist(), looks):
                head = group_members[0]
                loop_rows += [(head, other, f"rule:{type_}", priorities(type_)) for other in group_members[1:]]
                loop_at += [first] * (len(group_members) - 1)
        if loop_rows:
            edge_parts.append((np.asarray(loop_at, dtype=np.int64),
                               pd.DataFrame(loop_rows, columns=list(EDGE_COLUMNS))))

    if too_many.any():
        keep[shared[np.repeat(too_many, sizes)]] = False
    if edge_parts:
        group_at = np.concatenate([a for a, _ in edge_parts])
        edge_frame = pd.concat([f for _, f in edge_parts], ignore_index=True)
        edge_frame = edge_frame.iloc[np.argsort(group_at, kind="stable")].reset_index(drop=True)
    else:
        edge_frame = pd.DataFrame(columns=list(EDGE_COLUMNS))
    return RuleResult(edge_frame, carried[keep].reset_index(drop=True), excluded, carried)


def _ranks(values: np.ndarray) -> np.ndarray:
    """Each value's position in the sorted order of ``values`` (distinct strings)."""
    ranks = np.empty(len(values), dtype=np.int64)
    ranks[np.argsort(values, kind="stable")] = np.arange(len(values))
    return ranks


def _rid_ranks(rids: np.ndarray) -> np.ndarray:
    """Each record's rank in rid order. Stores hand records over in that order mostly, which one
    comparison per record confirms. A rid given twice (a record twice) has one rank."""
    if len(rids) < 2 or bool((rids[1:] > rids[:-1]).all()):
        return np.arange(len(rids), dtype=np.int64)
    codes, uniques = pd.factorize(rids)
    return _ranks(np.asarray(uniques, dtype=object))[codes]


def _group_counts(number: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group (``number`` of each row), how many distinct codes >= 0 its rows carry."""
    valid = codes >= 0
    width = int(codes.max(initial=0)) + 1
    pairs = np.unique(number[valid] * width + codes[valid])
    return np.bincount(pairs // width, minlength=n_groups)


def _codes(values: np.ndarray) -> np.ndarray:
    """A code per value, -1 for None."""
    return pd.factorize(values, use_na_sentinel=True)[0].astype(np.int64)


def _people_per_group(look: dict[str, np.ndarray], number: np.ndarray, dobs: np.ndarray) -> np.ndarray:
    """``_distinct_people`` of each group's records: distinct full names (nickname group and family
    name, the group longer than an initial) or distinct birth dates (``dobs``, per group), at least one."""
    group, family = look["group"], look["family"]
    full = (group != None) & (family != None)  # noqa: E711 - element-wise
    full[full] = np.fromiter((len(g) > 1 for g in group[full]), dtype=bool, count=int(full.sum()))
    name_codes = np.full(len(group), -1, dtype=np.int64)
    if full.any():
        group_codes, family_codes = _codes(group[full]), _codes(family[full])
        name_codes[full] = pd.factorize(group_codes * (int(family_codes.max()) + 1) + family_codes)[0]
    names = _group_counts(number, name_codes, len(dobs))
    return np.maximum(np.maximum(names, dobs), 1)


def _settled_groups(look: dict[str, np.ndarray], number: np.ndarray, dob: np.ndarray, dobs: np.ndarray
                    ) -> np.ndarray:
    """Per group, whether no cannot-link test parts any two of its records: each two of its distinct
    names (given name present) and each two of its distinct birth dates are compatible, both ways
    round. Then ``_compatible_groups`` keeps all its records together, whatever their order. ``dob``:
    each row's birth-date code (-1: none); ``dobs``: each group's count of distinct ones."""
    given = _codes(look["given"])
    settled = (_group_counts(number, given, len(dobs)) <= 1) & (dobs <= 1)
    if settled.all():
        return settled
    rest = ~settled[number]
    settled[:] = True  # unless two of its names or birth dates below conflict
    family = _codes(look["family"])
    names = pd.DataFrame({"g": number[rest], "given": given[rest], "family": family[rest],
                          "row": np.flatnonzero(rest)})
    for g, rows in _distinct_within_groups(names[names["given"] >= 0], ["given", "family"]):
        pairs = list(zip(look["given"][rows].tolist(), look["family"][rows].tolist()))
        if any(names_conflict(a, b) or names_conflict(b, a) for i, a in enumerate(pairs) for b in pairs[i + 1:]):
            settled[g] = False
    dated = pd.DataFrame({"g": number[rest], "dob": dob[rest], "row": np.flatnonzero(rest)})
    for g, rows in _distinct_within_groups(dated[dated["dob"] >= 0], ["dob"]):
        values = look["dob"][rows].tolist()
        if any(dob_conflict(a, b) or dob_conflict(b, a) for i, a in enumerate(values) for b in values[i + 1:]):
            settled[g] = False
    return settled


def _distinct_within_groups(rows: pd.DataFrame, by: list[str]) -> Iterator[tuple[int, np.ndarray]]:
    """(group, rows) for each group ``g`` with two or more distinct ``by`` values: one row per value."""
    distinct = rows.drop_duplicates(["g", *by]).sort_values("g", kind="stable")
    group = distinct["g"].to_numpy()
    row = distinct["row"].to_numpy()
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if len(group) else np.zeros(0, dtype=np.int64)
    ends = np.r_[starts[1:], len(group)]
    for start, end in zip(starts[ends - starts > 1].tolist(), ends[ends - starts > 1].tolist()):
        yield int(group[start]), row[start:end]


# --- what a record looks like ---------------------------------------------------------------

LOOK_COLUMNS = ("std_given_name", "std_family_name", "std_dob", "std_name_group")


class Look(NamedTuple):
    given: str | None
    family: str | None
    dob: str | None
    group: str | None = None
    """The given name's nickname group: counts people, where ``given`` decides compatibility."""


def _look_arrays(records: pd.DataFrame) -> dict[str, np.ndarray]:
    """``_looks`` as arrays, one per Look field, in the records' order (None where missing)."""
    def value(name: str) -> np.ndarray:
        if name not in records:
            return np.full(len(records), None, dtype=object)
        v = records[name].to_numpy(dtype=object)
        return np.where(pd.notna(v) & (v != ""), v, None)

    g, f, d, grp = (value(c) for c in LOOK_COLUMNS)
    has_g, has_grp = g != None, grp != None  # noqa: E711 - element-wise
    return {"given": np.where(has_g, g, grp), "family": f, "dob": d, "group": np.where(has_grp, grp, g)}


def _looks(records: pd.DataFrame) -> dict[str, Look]:
    def col(name: str) -> list[Any]:
        return records[name].tolist() if name in records else [None] * len(records)

    def value(v: Any) -> str | None:
        return v if _present(v) else None

    return {rid: Look(value(g) or value(grp), value(f), value(d), value(grp) or value(g))
            for rid, g, f, d, grp in zip(records["rid"], col("std_given_name"), col("std_family_name"),
                                         col("std_dob"), col("std_name_group"))}


def compatible(a: Look, b: Look) -> bool:
    """Could two records be the same person? The clustering's cannot-link tests; missing values never disagree."""
    if names_conflict((a.given, a.family), (b.given, b.family)):
        return False
    return not (a.dob and b.dob and dob_conflict(a.dob, b.dob))


def _distinct_people(looks: list[Look]) -> int:
    """How many different people a set of records shows: distinct full names (nickname groups)
    or distinct birth dates."""
    names = {(lk.group, lk.family) for lk in looks if lk.group and len(lk.group) > 1 and lk.family}
    dobs = {lk.dob for lk in looks if lk.dob}
    return max(len(names), len(dobs), 1)


def _compatible_groups(members: list[str], looks: dict[str, Look]) -> list[list[str]]:
    """Records sharing one identifier, split into groups that could each be one person.

    A record joins the first group it has no cannot-link with, judged as the clustering judges
    two groups (so ``Al`` joins ``Alfred`` and ``Aflred``, although ``Al`` and ``Aflred`` alone differ).
    """
    groups: list[tuple[list[str], set[tuple[str | None, str | None]], set[str]]] = []
    for rid in members:
        look = looks[rid]
        name = {(look.given, look.family)} if look.given else set()
        for group, names, dobs in groups:
            if look.dob and any(dob_conflict(look.dob, d) for d in dobs):
                continue
            if name and names and groups_conflict(names, name):
                continue
            group.append(rid)
            names |= name
            if look.dob:
                dobs.add(look.dob)
            break
        else:
            groups.append(([rid], set(name), {look.dob} if look.dob else set()))
    return [g for g, _, _ in groups if len(g) > 1]


def _priorities(settings: IdentitySettings):
    by_name = {t.name: t.priority for t in settings.identifiers}

    def priority(type_: str) -> int:
        if type_ in by_name:
            return by_name[type_]
        return by_name.get(type_.split(":")[0], 1000)

    return priority


def identifier_limits(settings: IdentitySettings, types: list[str]) -> dict[str, int]:
    """The per-customer limit of each identifier type present (external types inherit 'external')."""
    by_name = {t.name: t.max_per_customer for t in settings.identifiers}
    limits = {}
    for type_ in types:
        limit = by_name.get(type_, by_name.get(type_.split(":")[0]))
        if limit is not None:
            limits[type_] = limit
    return limits


_JUNK_WORDS = ("n/a", "na", "none", "null", "unknown", "tbd", "test")
"""The words ``_JUNK_ID`` matches (besides repeated characters), for ``_junk_mask``'s first pass."""


def _junk_mask(values: pd.Series) -> pd.Series:
    """``_is_junk`` of each value, run only on the values that could be junk and once per distinct
    value: a million identifiers are e-mail addresses, E.164 phones and record keys, which never are.

    Could be junk: one repeated character (or nothing) once trimmed, a junk or placeholder word in any
    case, or any character outside printable ASCII (whose trimming or lowercasing Python may do
    differently from Arrow); the exact test decides among those."""
    if values.empty:
        return pd.Series(False, index=values.index)
    array = pa.array(values.to_numpy(dtype=object), pa.string())
    text = pc.utf8_lower(pc.utf8_trim_whitespace(array))  # _JUNK_ID ignores case, repeats included
    words = pa.array(sorted(set(_JUNK_WORDS) | PLACEHOLDER_TEXT), pa.string())
    candidate = pc.or_(
        pc.or_(pc.is_in(text, value_set=words),
               pc.equal(pc.utf8_slice_codeunits(text, 1), pc.utf8_slice_codeunits(text, 0, -1))),
        pc.match_substring_regex(array, "[^\\x20-\\x7e\\t\\n\\r\\x0b\\x0c]"))
    mask = np.asarray(pc.fill_null(candidate, True).to_numpy(zero_copy_only=False), dtype=bool)
    out = np.zeros(len(values), dtype=bool)
    if mask.any():
        out[mask] = values[mask].map({v: _is_junk(v) for v in pd.unique(values[mask])}).to_numpy(dtype=bool)
    return pd.Series(out, index=values.index)


def _is_junk(value: str) -> bool:
    text = value.strip()
    return not text or bool(_JUNK_ID.match(text)) or is_placeholder_text(text)


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and value != value) and value != ""


def _as_list(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and value != value):
        return []
    if isinstance(value, str):
        value = orjson.loads(value) if value.startswith("[") else [value]
    return [str(v) for v in value if v not in (None, "")]


def _as_map(value: Any) -> dict[str, Any]:
    if value is None or (isinstance(value, float) and value != value):
        return {}
    if isinstance(value, str):
        value = orjson.loads(value) if value.strip() else {}
    return dict(value) if isinstance(value, dict) else {}
