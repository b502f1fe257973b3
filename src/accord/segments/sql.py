"""Segment conditions compiled to parameterized SQL that DuckDB and PostgreSQL share.

Every value a user wrote travels as a ``?`` parameter; the SQL text holds only generated aliases.
One query decides any number of conditions over all active customers: each golden attribute,
trait, consent purpose, account and event count the conditions mention becomes one column of a
``seg_features`` row per customer (joined once however many conditions use it), and each
condition is a boolean expression over those columns. Every comparison is wrapped in
``COALESCE(..., FALSE)``, so a missing value gives false rather than NULL and ``NOT`` behaves as
it does in process (``Condition.evaluate``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from accord.clock import utcnow
from accord.segments.conditions import (
    And,
    Attribute,
    Compare,
    Condition,
    Consent,
    EventCount,
    Holds,
    In,
    InAccount,
    IsNull,
    Not,
    Or,
    Reference,
    Trait,
)

DIALECTS = ("duckdb", "postgresql")
_NAN = "CAST('NaN' AS DOUBLE PRECISION)"


def _param(value: object) -> object:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    return value


@dataclass
class FeatureCompiler:
    """Collects the features conditions need and compiles each condition over them."""

    dialect: str
    now: datetime
    attributes: dict[str, int] = field(default_factory=dict)
    traits: dict[str, int] = field(default_factory=dict)
    consents: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, int] = field(default_factory=dict)
    counts: dict[tuple[str | None, str | None, Any], int] = field(default_factory=dict)
    count_specs: list[EventCount] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.dialect not in DIALECTS:
            raise ValueError(f"dialect: expected one of {', '.join(DIALECTS)}; got {self.dialect!r}")

    # --- features -------------------------------------------------------------------------------

    @staticmethod
    def _slot(table: dict[Any, int], key: Any) -> int:
        if key not in table:
            table[key] = len(table)
        return table[key]

    def column(self, ref: Reference, want: str = "value") -> str:
        """The seg_features column holding ``ref``; for traits ``want`` is 'number' or 'text'."""
        if isinstance(ref, Attribute):
            return f"a{self._slot(self.attributes, ref.name)}"
        if isinstance(ref, Trait):
            i = self._slot(self.traits, ref.name)
            return f"tt{i}" if want == "text" else f"tn{i}"
        if isinstance(ref, Consent):
            return f"k{self._slot(self.consents, ref.purpose)}"
        if isinstance(ref, InAccount):
            return f"m{self._slot(self.accounts, ref.account)}"
        key = (ref.event, ref.type, ref.within)
        if key not in self.counts:
            self.counts[key] = len(self.counts)
            self.count_specs.append(ref)
        return f"n{self.counts[key]}"

    # --- conditions -----------------------------------------------------------------------------

    def condition(self, cond: Condition) -> tuple[str, list[Any]]:
        """A boolean SQL expression (never NULL) over seg_features columns, and its parameters."""
        if isinstance(cond, (And, Or)):
            parts = [self.condition(p) for p in cond.parts]
            joiner = " AND " if isinstance(cond, And) else " OR "
            return "(" + joiner.join(s for s, _ in parts) + ")", [p for _, ps in parts for p in ps]
        if isinstance(cond, Not):
            sql, params = self.condition(cond.part)
            return f"(NOT {sql})", params
        if isinstance(cond, Compare):
            want = "text" if isinstance(cond.value, str) else "number"
            col = self.column(cond.ref, want)
            return f"COALESCE({col} {'<>' if cond.op == '!=' else cond.op} ?, FALSE)", [_param(cond.value)]
        if isinstance(cond, In):
            want = "text" if isinstance(cond.values[0], str) else "number"
            col = self.column(cond.ref, want)
            marks = ", ".join("?" for _ in cond.values)
            return f"COALESCE({col} IN ({marks}), FALSE)", [_param(v) for v in cond.values]
        if isinstance(cond, IsNull):
            if isinstance(cond.ref, Trait):
                return f"({self.column(cond.ref, 'number')} IS NULL AND {self.column(cond.ref, 'text')} IS NULL)", []
            return f"({self.column(cond.ref)} IS NULL)", []
        if isinstance(cond, Holds):
            if isinstance(cond.ref, Consent):
                return f"COALESCE({self.column(cond.ref)} = 'granted', FALSE)", []
            if isinstance(cond.ref, InAccount):
                return self.column(cond.ref), []
            return f"COALESCE({self.column(cond.ref, 'number')} <> 0, FALSE)", []
        raise TypeError(f"not a condition: {cond!r}")

    # --- the feature rows -----------------------------------------------------------------------

    def features_sql(self) -> tuple[str, list[Any]]:
        """``WITH ... seg_features AS (...)``: one row per active customer with every feature."""
        ctes = ["seg_customers AS (SELECT customer_id FROM customers WHERE status = 'active')"]
        params: list[Any] = []
        columns = ["c.customer_id"]
        joins: list[str] = []
        if self.counts:
            events_sql, events_params = self._events_sql()
            ctes.append(f"seg_events AS ({events_sql})")
            params += events_params
            sums = []
            for i, spec in enumerate(self.count_specs):
                tests, tparams = [], []
                if spec.event is not None:
                    tests.append("event = ?")
                    tparams.append(spec.event)
                if spec.type is not None:
                    tests.append("type = ?")
                    tparams.append(spec.type)
                if spec.within is not None:
                    tests.append("ts >= ?")
                    tparams.append(self.now - spec.within)
                sums.append(f"COUNT(CASE WHEN {' AND '.join(tests) or 'TRUE'} THEN 1 END) AS n{i}")
                params += tparams
            ctes.append(f"seg_counts AS (SELECT customer_id, {', '.join(sums)} FROM seg_events GROUP BY customer_id)")
        # One pivot per table (a single grouped scan), however many of its features the conditions use.
        if self.attributes:
            names = list(self.attributes)
            pivots = ", ".join(f"MIN(CASE WHEN attribute = ? THEN value END) AS a{i}" for i in self.attributes.values())
            ctes.append(f"seg_golden AS (SELECT customer_id, {pivots} FROM golden_values WHERE attribute IN "
                        f"({', '.join('?' for _ in names)}) GROUP BY customer_id)")
            params += names + names
            joins.append("LEFT JOIN seg_golden jg ON jg.customer_id = c.customer_id")
            columns += [f"jg.a{i}" for i in self.attributes.values()]
        if self.traits:
            names = list(self.traits)
            pivots = ", ".join(f"MAX(CASE WHEN name = ? THEN value_num END) AS tn{i}, "
                               f"MAX(CASE WHEN name = ? THEN value_text END) AS tt{i}" for i in self.traits.values())
            ctes.append(f"seg_traits AS (SELECT customer_id, {pivots} FROM customer_traits WHERE name IN "
                        f"({', '.join('?' for _ in names)}) GROUP BY customer_id)")
            params += [n for n in names for _ in (0, 1)] + names
            joins.append("LEFT JOIN seg_traits jt ON jt.customer_id = c.customer_id")
            columns += [f"NULLIF(jt.tn{i}, {_NAN}) AS tn{i}, jt.tt{i}" for i in self.traits.values()]
        if self.consents:
            names = list(self.consents)
            pivots = ", ".join(f"MAX(CASE WHEN purpose = ? THEN status END) AS k{i}" for i in self.consents.values())
            ctes.append(f"seg_consent AS (SELECT customer_id, {pivots} FROM customer_consent WHERE purpose IN "
                        f"({', '.join('?' for _ in names)}) GROUP BY customer_id)")
            params += names + names
            joins.append("LEFT JOIN seg_consent jk ON jk.customer_id = c.customer_id")
            columns += [f"jk.k{i}" for i in self.consents.values()]
        if self.accounts:
            pivots = ", ".join(f"MAX(CASE WHEN am.account_id = ? OR ac.name = ? THEN 1 ELSE 0 END) AS m{i}"
                               for i in self.accounts.values())
            ctes.append(f"seg_accounts AS (SELECT am.customer_id, {pivots} FROM account_members am "
                        "LEFT JOIN accounts ac ON ac.account_id = am.account_id GROUP BY am.customer_id)")
            params += [a for a in self.accounts for _ in (0, 1)]
            joins.append("LEFT JOIN seg_accounts jm ON jm.customer_id = c.customer_id")
            columns += [f"(COALESCE(jm.m{i}, 0) = 1) AS m{i}" for i in self.accounts.values()]
        if self.counts:
            joins.append("LEFT JOIN seg_counts jn ON jn.customer_id = c.customer_id")
            columns += [f"COALESCE(jn.n{i}, 0) AS n{i}" for i in range(len(self.count_specs))]
        ctes.append(f"seg_features AS (SELECT {', '.join(columns)} FROM seg_customers c {' '.join(joins)})")
        return "WITH " + ",\n".join(ctes), params

    def _events_sql(self) -> tuple[str, list[Any]]:
        """Each customer's events (each once) in the widest window any count needs, up to now."""
        bound = "e.ts <= ?"
        bound_params: list[Any] = [self.now]
        if all(spec.within is not None for spec in self.count_specs):
            bound += " AND e.ts >= ?"
            bound_params.append(self.now - max(spec.within for spec in self.count_specs if spec.within))
        by_identity = ("SELECT ci.customer_id, e.event_id, e.event, e.type, e.ts FROM events e "
                       "JOIN customer_identifiers ci ON ci.id_type = e.identity_type AND ci.value = "
                       "CASE WHEN e.identity_type = 'email' THEN LOWER(e.identity_value) ELSE e.identity_value END "
                       f"WHERE {bound}")
        by_anonymous = ("SELECT ci.customer_id, e.event_id, e.event, e.type, e.ts FROM events e "
                        "JOIN customer_identifiers ci ON ci.id_type = 'anonymous_id' AND ci.value = e.anonymous_id "
                        f"WHERE {bound}")
        # The anonymous branch leaves out what the identity branch already gave the same customer: both
        # branches together give each (customer, event) once, without a dedupe over every event.
        by_anonymous += (" AND NOT EXISTS (SELECT 1 FROM customer_identifiers cb WHERE cb.customer_id = ci.customer_id "
                         "AND cb.id_type = e.identity_type AND cb.value = CASE WHEN e.identity_type = 'email' "
                         "THEN LOWER(e.identity_value) ELSE e.identity_value END)")
        return f"{by_identity} UNION ALL {by_anonymous}", bound_params + bound_params


def compile_condition(cond: Condition, dialect: str, now: datetime | None = None) -> tuple[str, list[Any]]:
    """``SELECT customer_id`` of every active customer ``cond`` holds for, and its parameters."""
    compiler = FeatureCompiler(dialect, now or utcnow())
    where, where_params = compiler.condition(cond)
    features, params = compiler.features_sql()
    return f"{features}\nSELECT customer_id FROM seg_features WHERE {where}", params + where_params


def compile_flags(conditions: dict[str, Condition], dialect: str, now: datetime | None = None
                  ) -> tuple[str, list[Any]]:
    """``SELECT customer_id, s0, s1, ...``: one row per active customer, ``s<i>`` whether the i-th of
    ``conditions`` holds, all decided over one row of features per customer."""
    if not conditions:
        raise ValueError("compile_flags needs at least one condition")
    compiler = FeatureCompiler(dialect, now or utcnow())
    flags, flag_params = [], []
    for i, cond in enumerate(conditions.values()):
        sql, params = compiler.condition(cond)
        flags.append(f"{sql} AS s{i}")
        flag_params += params
    features, params = compiler.features_sql()
    return f"{features}\nSELECT customer_id, {', '.join(flags)} FROM seg_features", params + flag_params


def members_of_flags(names: list[str], flags: str) -> tuple[str, list[Any]]:
    """``SELECT segment, customer_id`` from a relation ``flags`` that ``compile_flags`` made: one pass
    over it, so rows come out in its order (a customer's segments together)."""
    segments = ", ".join(f"({i}, CAST(? AS TEXT))" for i in range(len(names)))
    holds = " ".join(f"WHEN {i} THEN f.s{i}" for i in range(len(names)))
    return (f"SELECT n.segment, f.customer_id FROM {flags} f CROSS JOIN (VALUES {segments}) AS n(i, segment) "
            f"WHERE CASE n.i {holds} END", list(names))


def compile_memberships(conditions: dict[str, Condition], dialect: str, now: datetime | None = None
                        ) -> tuple[str, list[Any]]:
    """``SELECT segment, customer_id`` for every (segment, member) pair of ``conditions`` in one query."""
    if not conditions:
        raise ValueError("compile_memberships needs at least one condition")
    flags, params = compile_flags(conditions, dialect, now)
    selects, names = members_of_flags(list(conditions), "seg_flags")
    return f"WITH seg_flags AS ({flags})\n{selects}", params + names
