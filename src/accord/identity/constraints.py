"""Cannot-link tests: could two records' values belong to one person?

Each test is lenient where real data are messy and strict where they are not.
A birth date conflicts only when no day/month swap (a DD/MM date read as
MM/DD) or a single typo explains the difference. A given name conflicts only
when it is not the same name written another way: an initial, a nickname, a
typo, or given and family name exchanged.
"""

from __future__ import annotations

from functools import lru_cache

from accord.standardize.names import name_group, name_variants, nickname_related

Name = tuple[str | None, str | None]
"""(given, family), cleaned lowercase ASCII; either may be None."""


@lru_cache(maxsize=262_144)
def dob_conflict(a: str, b: str) -> bool:
    """True when two ISO dates cannot be one person's birth date written twice."""
    if a == b:
        return False
    if len(a) == len(b) == 10 and a[:4] == b[:4] and a[5:7] == b[8:10] and a[8:10] == b[5:7]:
        return False  # day and month swapped: one side was read with the other order
    return not _one_edit_apart(a, b)


def _one_edit_apart(a: str, b: str) -> bool:
    """One substituted character, or two adjacent characters transposed (same length)."""
    if len(a) != len(b):
        return False
    diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    if len(diff) == 1:
        return True
    i, j = (diff + [0, 0])[:2]
    return len(diff) == 2 and j == i + 1 and a[i] == b[j] and a[j] == b[i]


@lru_cache(maxsize=262_144)
def is_initial(name: str) -> bool:
    return len(name.split()[0]) == 1


@lru_cache(maxsize=262_144)
def given_names_compatible(a: str, b: str) -> bool:
    """Could two given names be one person's? Same name, initial, nickname, or a typo apart.

    An initial fits a name that starts with it or one of the name's nicknames or
    formal forms that does (``B`` fits ``Robert``: Bob).
    """
    if a == b:
        return True
    first_a, first_b = a.split()[0], b.split()[0]
    if len(first_a) == 1 and len(first_b) == 1:
        return first_a == first_b
    if len(first_a) == 1 or len(first_b) == 1:
        letter, name = (first_a, first_b) if len(first_a) == 1 else (first_b, first_a)
        return name[0] == letter or any(v[:1] == letter for v in name_variants(name))
    if first_a == first_b or name_group(first_a) == name_group(first_b):
        return True
    if nickname_related(first_a, first_b):
        return True
    # A typo, not a similar name: Francis and Francesca, Frank and Franziska are two people.
    return min(len(first_a), len(first_b)) >= 3 and _one_typo_apart(first_a, first_b)


def _one_typo_apart(a: str, b: str) -> bool:
    """One letter substituted, dropped or two adjacent letters swapped."""
    if len(a) == len(b):
        return _one_edit_apart(a, b)
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    if len(long_) - len(short) != 1:
        return False
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


@lru_cache(maxsize=262_144)
def names_conflict(a: Name, b: Name) -> bool:
    """True when two records' names show two different people.

    Missing given names never conflict. Given and family name exchanged on one
    side (``Pollard Brett`` and ``Brett Pollard``) is the same name.
    """
    given_a, family_a = a
    given_b, family_b = b
    if not given_a or not given_b:
        return False
    if given_names_compatible(given_a, given_b):
        return False
    # One side wrote the family name first: its given is the other's family and vice versa
    # (or, when the other shows no family name, its given name is this side's family name).
    if family_b and given_a == family_b and (not family_a or given_names_compatible(family_a, given_b)):
        return False
    if family_a and given_b == family_a and (not family_b or given_names_compatible(family_b, given_a)):
        return False
    if family_a and not family_b and given_names_compatible(family_a, given_b):
        return False
    if family_b and not family_a and given_names_compatible(family_b, given_a):
        return False
    return True


def groups_conflict(a: set[Name], b: set[Name]) -> bool:
    """True when two groups of records show two different people by their names.

    Each group already holds one person's names, each compatible with another
    (``Robert``, ``Bob``, a typo ``Rboert``), so two groups are one person when
    a full name on one side fits a full name on the other. An initial must fit
    a full name of the other group; two groups of initials alone need one in common.
    """
    full_a, initials_a = _split(a)
    full_b, initials_b = _split(b)
    if full_a and full_b:
        return all(names_conflict(x, y) for x in full_a for y in full_b)
    for initials, full in ((initials_b, full_a), (initials_a, full_b)):
        if full and any(all(names_conflict(x, y) for y in full) for x in initials):
            return True
    if initials_a and initials_b and not full_a and not full_b:
        return all(names_conflict(x, y) for x in initials_a for y in initials_b)
    return False


def _split(names: set[Name]) -> tuple[list[Name], list[Name]]:
    """(full names, initials) among a group's names."""
    full: list[Name] = []
    initials: list[Name] = []
    for n in names:
        if n[0]:
            (initials if is_initial(n[0]) else full).append(n)
    return full, initials
