"""The trained model's match weights computed in Python, for the few pairs of a real-time identify.

Splink compiles a model to SQL and runs it in an engine: right for millions of pairs, ~100 ms of
set-up for a handful. ``PairScorer`` reads the same saved model (Splink's JSON, through Splink's own
settings objects, so m/u clamping, unobserved levels, the prior and the u-probability that term
frequencies adjust against are Splink's), evaluates each level's condition in Python exactly as
DuckDB evaluates the SQL Splink writes, and adds the weights in Splink's order:

    match_weight = log2(prior / (1 - prior)) + sum over comparisons (level weight + tf adjustment)
    tf adjustment = tf_weight * (log2(u of the exact level) - log2(max(tf_l, tf_r, tf_minimum_u)))

String functions follow DuckDB's (rapidfuzz's Jaro-Winkler: the prefix bonus only above 0.7,
transpositions halved as an integer; Levenshtein and Damerau-Levenshtein over UTF-8 bytes). A
condition this module does not know (a custom SQL level or blocking rule) makes ``PairScorer.for_model``
answer None, and the caller keeps Splink. ``tests/identity/test_scorer.py`` pins the weights and
probabilities to Splink's ``predict`` over generated pairs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from functools import lru_cache
from typing import Any

import pandas as pd
import pyarrow as pa

Record = Mapping[str, Any]
Condition = Callable[[Record, Record], bool]

_COL = r'"(?P<{0}>[^"]+)_l"'
_NULL = re.compile(r'^"(?P<a>[^"]+)_l" IS NULL OR "(?P=a)_r" IS NULL$')
_DATE_NULL = re.compile(r"^try_strptime\(\"(?P<a>[^\"]+)_l\", '(?P<f>[^']*)'\) IS NULL OR "
                        r"try_strptime\(\"(?P=a)_r\", '(?P=f)'\) IS NULL$")
_EXACT = re.compile(r'^"(?P<a>[^"]+)_l" = "(?P=a)_r"$')
_JW = re.compile(r'^jaro_winkler_similarity\("(?P<a>[^"]+)_l", "(?P=a)_r"\) >= (?P<t>[0-9.eE+-]+)$')
_LEV = re.compile(r'^(?P<fn>levenshtein|damerau_levenshtein)\("(?P<a>[^"]+)_l", "(?P=a)_r"\) <= (?P<t>[0-9]+)$')
_OVERLAP = re.compile(r'^array_length\(list_intersect\("(?P<a>[^"]+)_l", "(?P=a)_r"\)\) >= (?P<t>[0-9]+)$')
_DATE_DIFF = re.compile(r"^ABS\(EPOCH\(try_strptime\(\"(?P<a>[^\"]+)_l\", '(?P<f>[^']*)'\)\) - "
                        r"EPOCH\(try_strptime\(\"(?P=a)_r\", '(?P=f)'\)\)\) <= (?P<t>[0-9.eE+-]+)$")


# --- DuckDB's string functions -------------------------------------------------------------------

@lru_cache(maxsize=65_536)
def jaro_winkler(a: str, b: str) -> float:
    """DuckDB's ``jaro_winkler_similarity(a, b)`` (rapidfuzz): bytes, greedy matches of b's bytes in
    a's window, transpositions // 2, prefix bonus (<= 4, scale 0.1) only when Jaro is above 0.7."""
    p, t = a.encode(), b.encode()
    if not p or not t:
        return 0.0
    if len(p) == 1 and len(t) == 1:
        return float(p == t)
    bound = max(len(p), len(t)) // 2 - 1
    p_flag = [False] * len(p)
    t_flag = [False] * len(t)
    common = 0
    for j, ch in enumerate(t):
        for i in range(max(0, j - bound), min(len(p), j + bound + 1)):
            if not p_flag[i] and p[i] == ch:
                p_flag[i] = t_flag[j] = True
                common += 1
                break
    if not common:
        return 0.0
    p_chars = [c for c, f in zip(p, p_flag) if f]
    t_chars = [c for c, f in zip(t, t_flag) if f]
    transpositions = sum(x != y for x, y in zip(p_chars, t_chars)) // 2
    sim = (common / len(p) + common / len(t) + (common - transpositions) / common) / 3.0
    if sim > 0.7:
        prefix = 0
        for x, y in zip(p[:4], t[:4]):
            if x != y:
                break
            prefix += 1
        sim = _fma(prefix * 0.1, 1.0 - sim, sim)
    return sim


def _fma(x: float, y: float, z: float) -> float:
    """x * y + z rounded once, as DuckDB's compiled Jaro-Winkler computes its prefix bonus."""
    return float(Fraction(x) * Fraction(y) + Fraction(z))


@lru_cache(maxsize=65_536)
def levenshtein(a: str, b: str) -> int:
    """DuckDB's ``levenshtein`` (over UTF-8 bytes)."""
    s, t = a.encode(), b.encode()
    previous = list(range(len(t) + 1))
    for i, x in enumerate(s, 1):
        current = [i]
        for j, y in enumerate(t, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


@lru_cache(maxsize=65_536)
def damerau_levenshtein(a: str, b: str) -> int:
    """DuckDB's ``damerau_levenshtein``: unrestricted (Lowrance-Wagner), over UTF-8 bytes."""
    s, t = a.encode(), b.encode()
    big = len(s) + len(t)
    last_row: dict[int, int] = {}
    d = [[big] * (len(t) + 2) for _ in range(len(s) + 2)]
    for i in range(len(s) + 1):
        d[i + 1][0], d[i + 1][1] = big, i
    for j in range(len(t) + 1):
        d[0][j + 1], d[1][j + 1] = big, j
    for i in range(1, len(s) + 1):
        last_match_col = 0
        for j in range(1, len(t) + 1):
            k = last_row.get(t[j - 1], 0)
            m = last_match_col
            cost = 1
            if s[i - 1] == t[j - 1]:
                cost, last_match_col = 0, j
            d[i + 1][j + 1] = min(d[i][j] + cost, d[i + 1][j] + 1, d[i][j + 1] + 1,
                                  d[k][m] + (i - k - 1) + 1 + (j - m - 1))
        last_row[s[i - 1]] = i
    return d[len(s) + 1][len(t) + 1]


def _strptime(value: Any, fmt: str) -> datetime | None:
    """``try_strptime`` as the comparison reads it: None when the value does not parse."""
    if value is None:
        return None
    try:
        return datetime.strptime(str(value), fmt)
    except ValueError:
        return None


# --- conditions ------------------------------------------------------------------------------------

def _condition(sql: str) -> Condition | None:
    """The Python form of one level's SQL condition, or None when it is not one Splink's library writes
    for Accord's comparison kinds."""
    text = " ".join(sql.split())
    if m := _NULL.match(text):
        a = m["a"]
        return lambda l, r: l.get(a) is None or r.get(a) is None
    if m := _DATE_NULL.match(text):
        a, f = m["a"], m["f"]
        return lambda l, r: _strptime(l.get(a), f) is None or _strptime(r.get(a), f) is None
    if m := _EXACT.match(text):
        a = m["a"]

        def exact(l: Record, r: Record) -> bool:
            x, y = l.get(a), r.get(a)
            return x is not None and y is not None and x == y
        return exact
    if m := _JW.match(text):
        a, threshold = m["a"], float(m["t"])

        def jw(l: Record, r: Record) -> bool:
            x, y = l.get(a), r.get(a)
            return x is not None and y is not None and jaro_winkler(x, y) >= threshold
        return jw
    if m := _LEV.match(text):
        a, limit = m["a"], int(m["t"])
        fn = levenshtein if m["fn"] == "levenshtein" else damerau_levenshtein

        def lev(l: Record, r: Record) -> bool:
            x, y = l.get(a), r.get(a)
            return x is not None and y is not None and fn(x, y) <= limit
        return lev
    if m := _OVERLAP.match(text):
        a, least = m["a"], int(m["t"])

        def overlap(l: Record, r: Record) -> bool:
            x, y = l.get(a), r.get(a)
            if x is None or y is None:
                return False
            return len({v for v in x if v is not None} & {v for v in y if v is not None}) >= least
        return overlap
    if m := _DATE_DIFF.match(text):
        a, f, limit = m["a"], m["f"], float(m["t"])

        def within(l: Record, r: Record) -> bool:
            x, y = _strptime(l.get(a), f), _strptime(r.get(a), f)
            return x is not None and y is not None and abs(_epoch(x) - _epoch(y)) <= limit
        return within
    return None


def _epoch(value: datetime) -> float:
    return (value - datetime(1970, 1, 1)).total_seconds()


@dataclass(frozen=True)
class _Level:
    condition: Condition | None
    """None: the ELSE level."""
    weight: float
    tf_column: str | None = None
    tf_weight: float = 0.0
    tf_minimum_u: float = 0.0
    log2_u_exact: float = 0.0


@dataclass(frozen=True)
class _Comparison:
    name: str
    levels: tuple[_Level, ...]


# --- the scorer ------------------------------------------------------------------------------------

class PairScorer:
    """Splink's match weight and probability of record pairs, computed in Python.

    Records are mappings of the model's input columns (strings, lists of strings for list columns,
    None for missing). Term frequencies: column -> {value: share of the column's values}."""

    def __init__(self, prior_weight: float, comparisons: Sequence[_Comparison],
                 blocking_rules: Sequence[Sequence[str]]):
        self.prior_weight_ = prior_weight
        self.comparisons_ = tuple(comparisons)
        self.blocking_rules_ = tuple(tuple(r) for r in blocking_rules)

    @classmethod
    def for_model(cls, model_json: Mapping[str, Any], blocking_rules: Sequence[Any]) -> PairScorer | None:
        """The scorer of a saved model, or None when a level or blocking rule is SQL it cannot run."""
        from splink import SettingsCreator

        if any(not isinstance(r, list) for r in blocking_rules):
            return None
        settings = SettingsCreator.from_path_or_dict(dict(model_json)).get_settings("duckdb")
        prior = settings._probability_two_random_records_match
        comparisons = []
        for comparison in settings.comparisons:
            levels = []
            for level in comparison.comparison_levels:
                condition = None if level._is_else_level else _condition(level.sql_condition)
                if condition is None and not level._is_else_level:
                    return None
                weight = level._match_weight
                if weight is None:  # m or u unknown: Splink cannot score it either
                    return None
                tf = dict(tf_column=None)
                if level._has_tf_adjustments and level._tf_adjustment_weight != 0 and not level.is_null_level \
                        and not level._is_else_level:
                    tf = dict(tf_column=level._tf_adjustment_input_column_name,
                              tf_weight=float(level._tf_adjustment_weight),
                              tf_minimum_u=float(level._tf_minimum_u_value),
                              log2_u_exact=math.log2(
                                  level._u_probability_corresponding_to_exact_match(comparison.comparison_levels)))
                levels.append(_Level(condition, float(weight), **tf))
            comparisons.append(_Comparison(comparison.output_column_name, tuple(levels)))
        return cls(math.log2(prior / (1 - prior)), comparisons, blocking_rules)

    def match_weight(self, left: Record, right: Record,
                     term_frequencies: Mapping[str, Mapping[str, float]] | None = None) -> float:
        """The pair's match weight, as Splink's predict computes it."""
        tfs = term_frequencies or {}
        total = self.prior_weight_
        for comparison in self.comparisons_:
            for level in comparison.levels:
                if level.condition is None or level.condition(left, right):
                    total += level.weight
                    if level.tf_column is not None:
                        total += _tf_adjustment(level, left.get(level.tf_column), right.get(level.tf_column),
                                                tfs.get(level.tf_column, {}))
                    break
        return total

    def score(self, left: Record, right: Record,
              term_frequencies: Mapping[str, Mapping[str, float]] | None = None) -> tuple[float, float]:
        """(match_weight, match_probability) of one pair."""
        weight = self.match_weight(left, right, term_frequencies)
        return weight, probability(weight)

    def blocked(self, left: Record, right: Record) -> bool:
        """Whether any blocking rule pairs the two records (equal, non-null values on every column)."""
        for rule in self.blocking_rules_:
            if all(left.get(c) is not None and left.get(c) == right.get(c) for c in rule):
                return True
        return False

    def predict_new(self, new: pa.Table, existing: pa.Table, threshold: float = 0.0,
                    term_frequencies: Mapping[str, pa.Table] | None = None) -> pd.DataFrame:
        """``IdentityModel.predict_new`` for a few records: pairs a blocking rule gives between a new
        record and a new or existing one, at or above ``threshold`` probability; record_a < record_b."""
        tfs = {col: dict(zip(t.column(col).to_pylist(), t.column(f"tf_{col}").to_pylist(), strict=True))
               for col, t in (term_frequencies or {}).items()}
        new_rows = new.to_pylist()
        new_ids = {r["rid"] for r in new_rows}
        others = new_rows + [r for r in existing.to_pylist() if r["rid"] not in new_ids]
        least = -math.inf if threshold <= 0 else math.log2(threshold / (1 - threshold)) if threshold < 1 else math.inf
        seen: dict[tuple[str, str], tuple[float, float]] = {}
        for left in new_rows:
            for right in others:
                a, b = str(left["rid"]), str(right["rid"])
                if a == b or (min(a, b), max(a, b)) in seen or not self.blocked(left, right):
                    continue
                weight = self.match_weight(left, right, tfs)
                if weight >= least:
                    seen[(min(a, b), max(a, b))] = (probability(weight), weight)
        keys = sorted(seen)
        return pd.DataFrame({"record_a": [a for a, _ in keys], "record_b": [b for _, b in keys],
                             "probability": pd.Series([seen[k][0] for k in keys], dtype=float),
                             "match_weight": pd.Series([seen[k][1] for k in keys], dtype=float)})


_CACHE: dict[str, PairScorer | None] = {}


def cached_scorer(model_json: Mapping[str, Any], blocking_rules: Sequence[Any]) -> PairScorer | None:
    """``PairScorer.for_model``, built once per model: each identify loads the saved model anew, and
    reading Splink's settings (SQL parsed by sqlglot) costs ~50 ms, the scoring well under one."""
    key = json.dumps([model_json, blocking_rules], sort_keys=True, default=str)
    if key not in _CACHE:
        if len(_CACHE) >= 8:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = PairScorer.for_model(model_json, blocking_rules)
    return _CACHE[key]


def _tf_adjustment(level: _Level, left: Any, right: Any, tf: Mapping[str, float]) -> float:
    tf_l = tf.get(left) if left is not None else None
    tf_r = tf.get(right) if right is not None else None
    if tf_l is None and tf_r is None:
        return 0.0
    first = tf_l if tf_l is not None else tf_r
    second = tf_r if tf_r is not None else tf_l
    return level.tf_weight * (level.log2_u_exact - math.log2(max(first, second, level.tf_minimum_u)))


def probability(weight: float) -> float:
    """Splink's match probability of a match weight (stable on both sides of zero)."""
    if weight >= 0:
        return 1.0 / (1.0 + 2.0 ** -weight)
    return 2.0 ** weight / (1.0 + 2.0 ** weight)
