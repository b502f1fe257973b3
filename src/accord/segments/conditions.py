"""The segment condition tree: what the DSL parses into, evaluated in process for one profile.

The same tree compiles to SQL (``accord.segments.sql``) for batch evaluation; both follow one rule
for missing values, so the two always agree: a comparison with a missing value is false, and
``not`` flips whatever its operand gave (``not city = 'Paris'`` is true for a customer without a
city). ``x not in (...)`` means ``not (x in (...))``; ``x != v`` is a comparison (false when x is
missing).

References (the left side of a comparison):

* ``Attribute``: a golden attribute (``city``, ``email``, ...), text;
* ``Trait``: a computed trait (``orders_90d``), a number or text, or true/false stored as 1/0;
* ``Consent``: the current consent status for a purpose (``granted``, ``denied``, ``withdrawn``);
  on its own it is a condition: granted;
* ``InAccount``: membership of an account, by account id or name; a condition on its own;
* ``EventCount``: how many of the customer's events match, optionally within a time window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Union

from accord.profiles.settings import ADDRESS_PARTS, SINGLE_ATTRIBUTES

if TYPE_CHECKING:
    from accord.segments.context import ProfileContext

GOLDEN_ATTRIBUTES: frozenset[str] = frozenset(SINGLE_ATTRIBUTES) | frozenset(ADDRESS_PARTS)
Literal = Union[str, float, int, bool]
OPERATORS = ("=", "!=", "<", "<=", ">", ">=")
EQUALITY = ("=", "!=")


def _quote(value: Literal) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _compare(left: object, op: str, right: object) -> bool:
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    if op == "<":
        return left < right  # type: ignore[operator]
    if op == "<=":
        return left <= right  # type: ignore[operator]
    if op == ">":
        return left > right  # type: ignore[operator]
    return left >= right  # type: ignore[operator]


# --- references ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attribute:
    name: str
    kind = "text"

    def __str__(self) -> str:
        return self.name

    def value(self, ctx: ProfileContext) -> str | None:
        return ctx.attributes.get(self.name)


@dataclass(frozen=True)
class Trait:
    name: str
    kind = "trait"

    def __str__(self) -> str:
        # The prefix only where a bare name would read as a golden attribute.
        return f"trait.{self.name}" if self.name in GOLDEN_ATTRIBUTES else self.name

    def number(self, ctx: ProfileContext) -> float | None:
        found = ctx.traits.get(self.name)
        # NaN counts as missing on every path (SQL turns it into NULL the same way).
        return None if found is None or found[0] is None or math.isnan(found[0]) else found[0]

    def text(self, ctx: ProfileContext) -> str | None:
        found = ctx.traits.get(self.name)
        return None if found is None else found[1]


@dataclass(frozen=True)
class Consent:
    purpose: str
    kind = "consent"

    def __str__(self) -> str:
        return f"consent.{self.purpose}"

    def value(self, ctx: ProfileContext) -> str | None:
        return ctx.consent.get(self.purpose)


@dataclass(frozen=True)
class InAccount:
    account: str
    kind = "account"

    def __str__(self) -> str:
        return f"in_account({_quote(self.account)})"

    def holds(self, ctx: ProfileContext) -> bool:
        return any(self.account in (account_id, name) for account_id, name in ctx.accounts)


@dataclass(frozen=True)
class EventCount:
    event: str | None = None
    type: str | None = None
    within: timedelta | None = None
    within_text: str | None = None
    kind = "count"

    def __str__(self) -> str:
        args = [f"{k} = {_quote(v)}" for k, v in (("event", self.event), ("type", self.type),
                                                  ("within", self.within_text)) if v is not None]
        return f"count({', '.join(args)})"

    def value(self, ctx: ProfileContext) -> int:
        since = ctx.now - self.within if self.within is not None else None
        return sum(1 for e in ctx.events
                   if e.ts <= ctx.now and (since is None or e.ts >= since)
                   and (self.event is None or e.event == self.event)
                   and (self.type is None or e.type == self.type))


Reference = Union[Attribute, Trait, Consent, InAccount, EventCount]


# --- conditions ----------------------------------------------------------------------------------


class Condition:
    """A node of the condition tree; ``evaluate(ctx)`` decides it for one profile."""

    def evaluate(self, ctx: ProfileContext) -> bool:
        raise NotImplementedError

    def references(self) -> list[Reference]:
        """Every reference in the tree, in order (for SQL features and context loading)."""
        raise NotImplementedError

    def max_window(self) -> timedelta | None:
        """The longest event window any count needs; None when some count has no window (all time)
        or there is no count at all (then ``needs_events`` is false)."""
        counts = [r for r in self.references() if isinstance(r, EventCount)]
        if not counts or any(c.within is None for c in counts):
            return None
        return max(c.within for c in counts if c.within is not None)

    def needs_events(self) -> bool:
        return any(isinstance(r, EventCount) for r in self.references())


@dataclass(frozen=True)
class And(Condition):
    parts: tuple[Condition, ...]

    def evaluate(self, ctx: ProfileContext) -> bool:
        return all(p.evaluate(ctx) for p in self.parts)

    def references(self) -> list[Reference]:
        return [r for p in self.parts for r in p.references()]

    def __str__(self) -> str:
        return " and ".join(f"({p})" if isinstance(p, Or) else str(p) for p in self.parts)


@dataclass(frozen=True)
class Or(Condition):
    parts: tuple[Condition, ...]

    def evaluate(self, ctx: ProfileContext) -> bool:
        return any(p.evaluate(ctx) for p in self.parts)

    def references(self) -> list[Reference]:
        return [r for p in self.parts for r in p.references()]

    def __str__(self) -> str:
        return " or ".join(str(p) for p in self.parts)


@dataclass(frozen=True)
class Not(Condition):
    part: Condition

    def evaluate(self, ctx: ProfileContext) -> bool:
        return not self.part.evaluate(ctx)

    def references(self) -> list[Reference]:
        return self.part.references()

    def __str__(self) -> str:
        if isinstance(self.part, IsNull):
            return f"{self.part.ref} is not null"
        inner = str(self.part)
        return f"not ({inner})" if isinstance(self.part, (And, Or)) else f"not {inner}"


@dataclass(frozen=True)
class Compare(Condition):
    """``ref op literal``. Text (attributes, consent, text traits) takes = and != only: ordering text
    differs between databases' collations, and the two evaluations must agree."""

    ref: Reference
    op: str
    value: Literal

    def evaluate(self, ctx: ProfileContext) -> bool:
        left = _comparable(self.ref, self.value, ctx)
        if left is None:
            return False
        right = _literal_value(self.value)
        return _compare(left, self.op, right)

    def references(self) -> list[Reference]:
        return [self.ref]

    def __str__(self) -> str:
        return f"{self.ref} {self.op} {_quote(self.value)}"


@dataclass(frozen=True)
class In(Condition):
    ref: Reference
    values: tuple[Literal, ...]

    def evaluate(self, ctx: ProfileContext) -> bool:
        left = _comparable(self.ref, self.values[0], ctx)
        if left is None:
            return False
        return any(left == _literal_value(v) for v in self.values)

    def references(self) -> list[Reference]:
        return [self.ref]

    def __str__(self) -> str:
        return f"{self.ref} in ({', '.join(_quote(v) for v in self.values)})"


@dataclass(frozen=True)
class IsNull(Condition):
    ref: Reference

    def evaluate(self, ctx: ProfileContext) -> bool:
        if isinstance(self.ref, Trait):
            return self.ref.number(ctx) is None and self.ref.text(ctx) is None
        return self.ref.value(ctx) is None  # type: ignore[union-attr]

    def references(self) -> list[Reference]:
        return [self.ref]

    def __str__(self) -> str:
        return f"{self.ref} is null"


@dataclass(frozen=True)
class Holds(Condition):
    """A reference used as a condition on its own: consent granted, account membership, or a trait
    that is a non-zero number (true/false traits are stored as 1/0)."""

    ref: Consent | InAccount | Trait

    def evaluate(self, ctx: ProfileContext) -> bool:
        if isinstance(self.ref, Consent):
            return self.ref.value(ctx) == "granted"
        if isinstance(self.ref, InAccount):
            return self.ref.holds(ctx)
        number = self.ref.number(ctx)
        return number is not None and number != 0

    def references(self) -> list[Reference]:
        return [self.ref]

    def __str__(self) -> str:
        return str(self.ref)


def _literal_value(value: Literal) -> object:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    return value


def _comparable(ref: Reference, literal: Literal, ctx: ProfileContext) -> object | None:
    """The profile's value of ``ref`` in the type of ``literal`` (None when missing)."""
    if isinstance(ref, Trait):
        return ref.text(ctx) if isinstance(literal, str) else ref.number(ctx)
    if isinstance(ref, EventCount):
        return ref.value(ctx)
    return ref.value(ctx)  # type: ignore[union-attr]
