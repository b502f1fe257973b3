"""Deterministic rules: records sharing an identifier link, unless the identifier is junk.

An identifier (an email, a phone, an external id) links two records when both
carry it and they look like the same person (compatible given names and dates
of birth). Values on the blocked list, placeholder junk, and values shared by
more than ``shared_identifier_limit`` distinct-looking people (a shop's phone,
a family email) link nothing and are listed in the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

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
    wanted = {t.name for t in settings.identifiers}
    parts: list[pd.DataFrame] = []
    rids = records["rid"].to_numpy(dtype=object)
    for type_, col in (("email", "std_emails"), ("phone", "std_phones")):
        if type_ in wanted and col in records:
            parts.append(_list_identifiers(rids, records[col].to_numpy(dtype=object), type_))
    if "external_ids" in records:
        parts.append(_external_identifiers(rids, records["external_ids"].to_numpy(dtype=object), wanted))
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=["rid", "type", "value"])
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)


_WS = r"[ \t\n\r]*"
_TEXT = r'"[^"\\\x00-\x1f\x7f-\x{10ffff}]*"'
_SIMPLE_OBJECT = rf"^{_WS}\{{{_WS}(?:{_TEXT}{_WS}:{_WS}{_TEXT}(?:{_WS},{_WS}{_TEXT}{_WS}:{_WS}{_TEXT})*)?{_WS}\}}{_WS}$"
"""A JSON object of ASCII string keys and values without escapes: split in Arrow, no JSON parser."""


def _external_identifiers(rids: np.ndarray, cells: np.ndarray, wanted: set[str]) -> pd.DataFrame:
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
    return out.iloc[np.argsort(np.concatenate(at), kind="stable")].reset_index(drop=True)


def _list_identifiers(rids: np.ndarray, values: np.ndarray, type_: str) -> pd.DataFrame:
    """(rid, type_, value) for each value of each record's list, in record then list order: one Arrow
    flatten instead of a Python loop over a million lists; JSON text or plain strings take ``_as_list``."""
    try:
        if any(isinstance(v, str) for v in values):
            raise TypeError("text among the lists")
        array = pa.array(values, pa.list_(pa.string()), from_pandas=True)
    except (TypeError, pa.ArrowInvalid, pa.ArrowTypeError):
        rows = [(rid, type_, v) for rid, vs in zip(rids.tolist(), values.tolist()) for v in _as_list(vs)]
        return pd.DataFrame(rows, columns=["rid", "type", "value"])
    flat = pc.list_flatten(array)
    parent = pc.list_parent_indices(array).to_numpy()
    keep = pc.fill_null(pc.not_equal(flat, ""), False).to_numpy(zero_copy_only=False)
    return pd.DataFrame({"rid": rids[parent[keep]], "type": type_,
                         "value": flat.filter(pa.array(keep)).to_numpy(zero_copy_only=False).astype(object)})


def apply_rules(records: pd.DataFrame, settings: IdentitySettings) -> RuleResult:
    """Deterministic link edges between standardized records (column ``rid`` names each)."""
    carried = record_identifiers(records, settings)
    ids = carried.drop_duplicates()
    excluded: list[ExcludedIdentifier] = []

    blocked = {v.strip().lower() for v in settings.blocked_values}
    is_blocked = ids["value"].str.lower().isin(blocked) if blocked else pd.Series(False, index=ids.index)
    bad = is_blocked | _junk_mask(ids["value"])
    for (type_, value), group in ids[bad].groupby(["type", "value"], sort=True):
        reason = "blocked" if value.lower() in blocked else "placeholder"
        excluded.append(ExcludedIdentifier(type_, value, reason, len(group), 0))
    ids = ids[~bad]

    shared = ids[ids.duplicated(["type", "value"], keep=False)].sort_values(["type", "value", "rid"])
    # One group per shared value, in (type, value) order; its members are its rows, sorted by rid.
    s_type, s_value, s_rid = (shared[c].to_numpy(dtype=object) for c in ("type", "value", "rid"))
    new_group = np.r_[True, (s_type[1:] != s_type[:-1]) | (s_value[1:] != s_value[:-1])] if len(shared) else \
        np.zeros(0, dtype=bool)
    number = np.cumsum(new_group) - 1
    starts = np.flatnonzero(new_group)
    sizes = np.diff(np.r_[starts, len(number)])
    holders = records[records["rid"].isin(shared["rid"].unique())]
    look = _look_arrays(holders)
    position = pd.Index(holders["rid"].to_numpy(dtype=object))
    big = np.repeat(sizes > 2, sizes)
    in_big = pd.unique(s_rid[big])
    at_big = position.get_indexer(in_big)
    looks = {r: Look(g, f, d, grp) for r, g, f, d, grp in
             zip(in_big.tolist(), *(look[k][at_big].tolist() for k in ("given", "family", "dob", "group")))}
    priorities = _priorities(settings)
    # (group number, edges or exclusion): the two paths below are merged back into group order.
    edge_parts: list[tuple[np.ndarray, pd.DataFrame]] = []
    found: list[tuple[int, ExcludedIdentifier]] = []
    dropped_groups: list[int] = []

    pairs = starts[sizes == 2]
    if len(pairs):
        people, compatible = _pair_verdicts(*({f: look[f][position.get_indexer(s_rid[at])] for f in look}
                                              for at in (pairs, pairs + 1)))
        too_many = people > settings.shared_identifier_limit
        for i in np.flatnonzero(too_many).tolist():
            at = int(pairs[i])
            found.append((at, ExcludedIdentifier(s_type[at], s_value[at], "shared_by_too_many_people", 2,
                                                 int(people[i]))))
            dropped_groups.append(at)
        link = pairs[~too_many & compatible]
        types = s_type[link]
        edge_parts.append((link, pd.DataFrame({
            "record_a": s_rid[link], "record_b": s_rid[link + 1], "rule": [f"rule:{t}" for t in types],
            "priority": np.array([priorities(t) for t in types], dtype=np.int64)})))

    # Three or more records share a value: the general path, one value at a time.
    rows: list[tuple[str, str, str, int]] = []
    at_rows: list[int] = []
    for at, size in zip(starts[sizes > 2].tolist(), sizes[sizes > 2].tolist()):
        type_, value = s_type[at], s_value[at]
        members = s_rid[at:at + size].tolist()
        people = _distinct_people([looks[r] for r in members])
        if people > settings.shared_identifier_limit:
            found.append((at, ExcludedIdentifier(type_, value, "shared_by_too_many_people", len(members), people)))
            dropped_groups.append(at)
            continue
        for group_members in _compatible_groups(members, looks):
            head = group_members[0]
            rows += [(head, other, f"rule:{type_}", priorities(type_)) for other in group_members[1:]]
            at_rows += [at] * (len(group_members) - 1)
    if rows:
        edge_parts.append((np.asarray(at_rows, dtype=np.int64), pd.DataFrame(rows, columns=list(EDGE_COLUMNS))))

    excluded += [e for _, e in sorted(found, key=lambda item: item[0])]
    if dropped_groups:
        starts_dropped = np.asarray(dropped_groups, dtype=np.int64)
        dropped_rows = np.isin(number, number[starts_dropped])
        ids = ids.drop(index=shared.index[dropped_rows])
    edge_parts = [(a, f) for a, f in edge_parts if len(f)]
    if edge_parts:
        at = np.concatenate([a for a, _ in edge_parts])
        edge_frame = pd.concat([f for _, f in edge_parts], ignore_index=True)
        edge_frame = edge_frame.iloc[np.argsort(at, kind="stable")].reset_index(drop=True)
    else:
        edge_frame = pd.DataFrame(columns=list(EDGE_COLUMNS))
    return RuleResult(edge_frame, ids.reset_index(drop=True), excluded, carried)


def _pair_verdicts(first: dict[str, np.ndarray], second: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """For values shared by exactly two records (their ``_look_arrays`` fields): how many people they
    show (``_distinct_people``) and whether they could be one person (``_compatible_groups`` joins
    them), decided in arrays where the two records agree, and by the same tests as the general path
    where they differ."""
    g0, g1 = first["given"], second["given"]
    f0, f1 = first["family"], second["family"]
    d0, d1 = first["dob"], second["dob"]
    n0, n1 = first["group"], second["group"]

    def present(v: np.ndarray) -> np.ndarray:
        return pd.notna(v) & (v != None)  # noqa: E711 - element-wise

    def full_name(group: np.ndarray, family: np.ndarray) -> np.ndarray:
        return present(group) & present(family) & np.array([g is not None and len(g) > 1 for g in group], bool)

    v0, v1 = full_name(n0, f0), full_name(n1, f1)
    names = v0.astype(int) + v1 - (v0 & v1 & (n0 == n1) & (f0 == f1))
    p0, p1 = present(d0), present(d1)
    dobs = p0.astype(int) + p1 - (p0 & p1 & (d0 == d1))
    people = np.maximum(np.maximum(names, dobs), 1)
    settled = (~present(g0) | ~present(g1) | (g0 == g1)) & (~p0 | ~p1 | (d0 == d1))
    compatible = settled.copy()
    for i in np.flatnonzero(~settled).tolist():
        if p0[i] and p1[i] and dob_conflict(d1[i], d0[i]):
            continue
        if g0[i] and g1[i] and groups_conflict({(g0[i], f0[i])}, {(g1[i], f1[i])}):
            continue
        compatible[i] = True
    return people, compatible


# --- what a record looks like ---------------------------------------------------------------

@dataclass(frozen=True)
class Look:
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

    g, f, d, grp = (value(c) for c in ("std_given_name", "std_family_name", "std_dob", "std_name_group"))
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
