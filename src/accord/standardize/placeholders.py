"""Placeholder junk that source systems type in when they have no real value.

A placeholder is not missing data by accident: someone filled a mandatory field
with "N/A" or "test@test.com". Standardization turns it into None and flags it,
so it neither matches people together nor passes for a real value.
"""

from __future__ import annotations

import re

# Compared after lowercasing and trimming. "na" is deliberately absent: it is a
# real given name and family name.
PLACEHOLDER_TEXT = frozenset(
    {
        "n/a", "n.a.", "n.a", "n\\a", "none", "null", "nil", "nan", "unknown", "unk",
        "-", "--", "---", ".", "?", "??", "tbd", "tba", "test", "xxx", "xxxx",
        "not available", "not applicable", "not provided", "not known", "no name",
        "noname", "#n/a", "undefined", "blank", "empty",
    }
)


def blank_to_none(raw: object) -> str | None:
    """The trimmed text of a raw cell, or None for null, NaN and empty cells."""
    if raw is None:
        return None
    if isinstance(raw, float) and raw != raw:  # NaN from pandas
        return None
    text = str(raw).strip()
    return text or None


def is_placeholder_text(text: str) -> bool:
    """True for filler such as "N/A", "none", "unknown" or "-" (case-insensitive)."""
    return text.strip().lower() in PLACEHOLDER_TEXT


DIGIT_SEQUENCES = ("01234567890", "98765432109")
"""Digits counted up or down: a phone number inside one of these (six or more digits) is a placeholder."""


def is_placeholder_phone_digits(digits: str) -> bool:
    """True for digit strings nobody is reachable at: 000-000-0000, 1234567890, 9876543210."""
    if len(digits) < 6:
        return False
    if len(set(digits)) == 1:
        return True
    return any(digits in seq for seq in DIGIT_SEQUENCES)


_PLACEHOLDER_EMAIL_LOCALS = frozenset(
    {
        "noemail", "no.email", "no-email", "no_email", "nomail", "no-mail", "none",
        "null", "nil", "na", "n/a", "unknown", "noreply", "no-reply", "no_reply",
        "donotreply", "do-not-reply", "do_not_reply", "nobody", "noone", "no-one",
        "dummy", "fake", "asdf", "xxx",
    }
)
_PLACEHOLDER_EMAIL_DOMAINS = frozenset(
    {
        "test.com", "example.com", "example.org", "example.net", "none.com",
        "noemail.com", "nomail.com", "no-email.com", "null.com", "fake.com",
        "invalid", "invalid.com", "localhost", "domain.com", "xxx.com", "asdf.com",
    }
)
_PLACEHOLDER_NAME_LOCAL = re.compile(r"^(test|none|null|na|unknown|a|x+|asdf)$")


def is_placeholder_email(local: str, domain: str) -> bool:
    """True for addresses such as test@test.com, noemail@anything, none@none.com.

    Expects a lowercased local part and domain.
    """
    if local in _PLACEHOLDER_EMAIL_LOCALS or domain in _PLACEHOLDER_EMAIL_DOMAINS:
        return True
    # test@test.com, a@a.com: the local part repeats the domain's own label.
    label = domain.split(".", 1)[0]
    return local == label and bool(_PLACEHOLDER_NAME_LOCAL.match(local))
