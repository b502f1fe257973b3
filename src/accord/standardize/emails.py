"""Email addresses: syntax check, lowercase, provider-specific canonical mailbox."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from accord.standardize.placeholders import blank_to_none, is_placeholder_email, is_placeholder_text

# Practical syntax (not full RFC 5322): dot-atom local part, dotted domain of
# letter/digit/hyphen labels, alphabetic top-level domain.
_EMAIL = re.compile(
    r"^(?P<local>[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
    r"@(?P<domain>(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})$"
)

GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
# Providers that deliver user+tag@ to user@ ("plus addressing").
PLUS_TAG_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com",
        "outlook.com", "hotmail.com", "hotmail.co.uk", "hotmail.fr", "hotmail.de",
        "hotmail.it", "hotmail.es", "live.com", "live.co.uk", "live.fr", "msn.com",
        "outlook.co.uk", "outlook.fr", "outlook.de",
        "icloud.com", "me.com", "mac.com",
        "fastmail.com", "fastmail.fm",
        "protonmail.com", "protonmail.ch", "proton.me", "pm.me",
    }
)
# Yahoo has no plus addressing ('+' stays part of the address); its disposable
# addresses are "basename-keyword@", and a basename belongs to one account, so
# everything from the first '-' on is dropped.
HYPHEN_TAG_DOMAINS = frozenset(
    {"yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "yahoo.es", "yahoo.it",
     "yahoo.ca", "yahoo.com.au", "ymail.com", "rocketmail.com"}
)


@dataclass(frozen=True, slots=True)
class StandardEmail:
    """A standardized address, or None with the reason in `flag`."""

    email: str | None
    flag: str | None = None

    @property
    def user(self) -> str | None:
        return self.email.partition("@")[0] if self.email else None


@lru_cache(maxsize=262144)
def standardize_email(raw: str | None) -> StandardEmail:
    """Trim, lowercase and canonicalize one address.

    gmail/googlemail: dots and +tags removed, domain becomes gmail.com.
    Other plus-addressing providers: +tag removed. Yahoo: -keyword removed.
    Bad syntax gives flag "invalid_email"; test@test.com, noemail@... give
    "placeholder_email"; empty input gives neither.
    """
    text = blank_to_none(raw)
    if text is None:
        return StandardEmail(None)
    if is_placeholder_text(text):
        return StandardEmail(None, "placeholder_email")
    text = text.lower()
    if text.startswith("mailto:"):
        text = text[len("mailto:"):]
    text = text.strip().strip("<>").strip()
    match = _EMAIL.match(text)
    if match is None:
        return StandardEmail(None, "invalid_email")
    local, domain = match["local"], match["domain"]
    if is_placeholder_email(local, domain):
        return StandardEmail(None, "placeholder_email")
    if domain in PLUS_TAG_DOMAINS:
        local = local.partition("+")[0]
    elif domain in HYPHEN_TAG_DOMAINS:
        local = local.partition("-")[0]
    if domain in GMAIL_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    if not local:
        return StandardEmail(None, "invalid_email")
    return StandardEmail(f"{local}@{domain}")


def parse_text_list(raw: object) -> list[str]:
    """The strings in a JSON list cell ('["a@b.com"]'); a bare value is a one-item list.

    Text that is not JSON is split on commas and semicolons, so 'a@b.com; c@d.com'
    still yields both.
    """
    text = blank_to_none(raw)
    if text is None:
        return []
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            items = None
        if isinstance(items, list):
            return [str(item) for item in items if item is not None]
        text = text.strip("[]")
    return [part.strip().strip("\"'") for part in re.split(r"[;,]", text)]


@lru_cache(maxsize=262144)
def standardize_email_list(raw: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(distinct standardized addresses in order, flags) for a JSON list cell."""
    emails: list[str] = []
    flags: list[str] = []
    for item in parse_text_list(raw):
        result = standardize_email(item)
        if result.email is not None and result.email not in emails:
            emails.append(result.email)
        if result.flag is not None and result.flag not in flags:
            flags.append(result.flag)
    return tuple(emails), tuple(flags)


# A JSON list of plain strings (no escapes, no control characters): split without a JSON parser.
_WS = r"[ \t\n\r]*"
_SIMPLE_LIST = rf'^{_WS}\[{_WS}(?:"[^"\\\x00-\x1f]*"(?:{_WS},{_WS}"[^"\\\x00-\x1f]*")*)?{_WS}\]{_WS}$'


def split_simple_lists(cells: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, list[list[str] | None]]:
    """(simple, empty, items) per cell: ``simple`` where the cell is a JSON list of plain strings
    (``parse_text_list`` gives exactly ``items`` for it, split in Arrow), ``empty`` where that list is
    ``[]``. Other cells (null, not text, escapes, bare values) are for ``parse_text_list``."""
    array = pa.array([c if isinstance(c, str) else None for c in cells], pa.string())

    def matches(pattern: str) -> np.ndarray:
        found = pc.fill_null(pc.match_substring_regex(array, pattern), False)
        return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)

    simple = matches(_SIMPLE_LIST)
    empty = matches(rf"^{_WS}\[{_WS}\]{_WS}$")
    inner = pc.replace_substring_regex(pc.replace_substring_regex(array, rf'^{_WS}\[{_WS}"?', ""),
                                       rf'"?{_WS}\]{_WS}$', "")
    items = pc.split_pattern_regex(inner, rf'"{_WS},{_WS}"').to_pylist()
    return simple, empty, items
