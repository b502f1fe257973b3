"""Company names without legal-form suffixes."""

from __future__ import annotations

import re
from functools import lru_cache

from unidecode import unidecode

from accord.standardize.placeholders import blank_to_none, is_placeholder_text

LEGAL_SUFFIXES = frozenset(
    {
        "ltd", "limited", "inc", "incorporated", "corp", "corporation", "co", "company",
        "llc", "llp", "lp", "plc", "gmbh", "ag", "kg", "ug", "mbh", "sa", "sas", "sarl",
        "srl", "spa", "bv", "nv", "pty", "pte", "oy", "ab", "as", "asa", "aps", "kk",
        "pvt", "pc", "pllc", "se",
    }
)
_NOT_WORD = re.compile(r"[^a-z0-9&]+")


@lru_cache(maxsize=65536)
def standardize_company(raw: str | None) -> str | None:
    """Lowercase ASCII words with trailing legal forms removed: "ACME Widgets, Ltd." -> "acme widgets".

    Dotted forms count too ("S.A.", "G.m.b.H."); "&" becomes "and"; a leading
    "the" is dropped.
    """
    text = blank_to_none(raw)
    if text is None or is_placeholder_text(text):
        return None
    text = unidecode(text).lower()
    # Join dotted abbreviations before splitting: "s.a." -> "sa", "g.m.b.h." -> "gmbh".
    text = re.sub(r"\b(?:[a-z]\.){2,}", lambda m: m[0].replace(".", "") + " ", text)
    words = _NOT_WORD.sub(" ", text.replace("'", "")).replace("&", " and ").split()
    stripped = False
    # "GmbH & Co. KG": legal forms joined by "and" go together.
    while len(words) > 1 and (words[-1] in LEGAL_SUFFIXES or (words[-1] == "and" and stripped)):
        stripped = words.pop() != "and" or stripped
    if len(words) > 1 and words[0] == "the":
        words.pop(0)
    return " ".join(words) or None
