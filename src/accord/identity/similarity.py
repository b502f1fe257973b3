"""String similarity used by the cannot-link checks (the model's own run in SQL inside Splink)."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=65_536)
def jaro_winkler(a: str, b: str, prefix_scale: float = 0.1) -> float:
    """Jaro-Winkler similarity in [0, 1], the textbook form (prefix bonus at any Jaro value).

    Not DuckDB's ``jaro_winkler_similarity`` (which Splink's comparisons run): DuckDB gives the prefix
    bonus only above 0.7, rounds transpositions down and matches in the other direction, so about one
    random pair in ten differs. The cannot-link thresholds were set with this one; the model's exact
    in-process copy of DuckDB's is ``accord.identity.scorer.jaro_winkler``."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    window = max(max(len(a), len(b)) // 2 - 1, 0)
    a_matched = [False] * len(a)
    b_matched = [False] * len(b)
    matches = 0
    for i, ch in enumerate(a):
        for j in range(max(0, i - window), min(len(b), i + window + 1)):
            if not b_matched[j] and b[j] == ch:
                a_matched[i] = b_matched[j] = True
                matches += 1
                break
    if not matches:
        return 0.0
    a_chars = [c for c, m in zip(a, a_matched) if m]
    b_chars = [c for c, m in zip(b, b_matched) if m]
    transpositions = sum(x != y for x, y in zip(a_chars, b_chars)) / 2
    jaro = (matches / len(a) + matches / len(b) + (matches - transpositions) / matches) / 3
    prefix = 0
    for x, y in zip(a[:4], b[:4]):
        if x != y:
            break
        prefix += 1
    return jaro + prefix * prefix_scale * (1 - jaro)
