"""Deterministic rules: records sharing an identifier link, unless the identifier is junk.

An identifier (an email, a phone, an external id) links two records when both
carry it and they look like the same person (compatible given names and dates
of birth). Values on the blocked list, placeholder junk, and values shared by
more than ``shared_identifier_limit`` distinct-looking people (a shop's phone,
a family email) link nothing and are listed in the report.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import orjson
import pandas as pd

from accord.identity.constraints import dob_conflict, groups_conflict, names_conflict
from accord.identity.settings import IdentitySettings
from accord.standardize import is_placeholder_text

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
    rows: list[tuple[str, str, str]] = []
    rids = records["rid"].tolist()
    if "email" in wanted and "std_emails" in records:
        rows += [(rid, "email", v) for rid, vs in zip(rids, records["std_emails"]) for v in _as_list(vs)]
    if "phone" in wanted and "std_phones" in records:
        rows += [(rid, "phone", v) for rid, vs in zip(rids, records["std_phones"]) for v in _as_list(vs)]
    if "external_ids" in records:
        for rid, raw in zip(rids, records["external_ids"]):
            for key, value in _as_map(raw).items():
                type_ = f"external:{key}"
                if ("external" in wanted or type_ in wanted) and value not in (None, ""):
                    rows.append((rid, type_, str(value).strip()))
    return pd.DataFrame(rows, columns=["rid", "type", "value"])


def apply_rules(records: pd.DataFrame, settings: IdentitySettings) -> RuleResult:
    """Deterministic link edges between standardized records (column ``rid`` names each)."""
    carried = record_identifiers(records, settings)
    ids = carried.drop_duplicates()
    excluded: list[ExcludedIdentifier] = []

    blocked = {v.strip().lower() for v in settings.blocked_values}
    is_blocked = ids["value"].str.lower().isin(blocked)
    is_junk = ids["value"].map(_is_junk)
    for (type_, value), group in ids[is_blocked | is_junk].groupby(["type", "value"], sort=True):
        reason = "blocked" if value.lower() in blocked else "placeholder"
        excluded.append(ExcludedIdentifier(type_, value, reason, len(group), 0))
    ids = ids[~(is_blocked | is_junk)]

    looks = _looks(records)
    shared = ids[ids.duplicated(["type", "value"], keep=False)].sort_values(["type", "value", "rid"])
    edges: list[tuple[str, str, str, int]] = []
    dropped: set[tuple[str, str]] = set()
    priorities = _priorities(settings)
    # Plain tuples, not a pandas groupby: there is one group per shared value, tens of thousands.
    rows = zip(shared["type"].tolist(), shared["value"].tolist(), shared["rid"].tolist())
    for (type_, value), group in itertools.groupby(rows, key=lambda row: (row[0], row[1])):
        members = sorted({row[2] for row in group})
        people = _distinct_people([looks[r] for r in members])
        if people > settings.shared_identifier_limit:
            excluded.append(ExcludedIdentifier(type_, value, "shared_by_too_many_people", len(members), people))
            dropped.add((type_, value))
            continue
        for group_members in _compatible_groups(members, looks):
            head = group_members[0]
            edges += [(head, other, f"rule:{type_}", priorities(type_)) for other in group_members[1:]]
    if dropped:
        keys = list(zip(ids["type"], ids["value"]))
        ids = ids[[k not in dropped for k in keys]]
    edge_frame = pd.DataFrame(edges, columns=list(EDGE_COLUMNS))
    return RuleResult(edge_frame, ids.reset_index(drop=True), excluded, carried)


# --- what a record looks like ---------------------------------------------------------------

@dataclass(frozen=True)
class Look:
    given: str | None
    family: str | None
    dob: str | None
    group: str | None = None
    """The given name's nickname group: counts people, where ``given`` decides compatibility."""


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
