"""Phone numbers to E.164 with `phonenumbers`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

from accord.standardize.emails import parse_text_list, split_simple_lists
from accord.standardize.placeholders import DIGIT_SEQUENCES, blank_to_none, is_placeholder_phone_digits, is_placeholder_text

_NON_DIGITS = re.compile(r"\D+")
# Extensions are not part of the person's number: "x123", "ext. 12", "#4".
_EXTENSION = re.compile(r"\s*(?:ext\.?|extension|x|#)\s*\d+\s*$", re.IGNORECASE)


_INTERNATIONAL_TEXT = re.compile(r"^\+\d[\d\s().\-/]*$")
_NATIONAL_TEXT = re.compile(r"^[\d\s().\-/]+$")
_TYPE_DESCS = ("fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "personal_number",
               "voip", "pager", "uan", "voicemail")


@cache
def _national_rules(region: str) -> tuple[str, str | None, re.Pattern[str], re.Pattern[str]] | None:
    """(country code, national prefix, general pattern, any-valid-type pattern) for the fast path.

    None for regions whose national prefix is a pattern or has a transform rule
    (Argentina, Brazil, ...): those always take phonenumbers' full parse.
    """
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.national_prefix_transform_rule:
        return None
    prefix = metadata.national_prefix_for_parsing
    if prefix is not None and not prefix.isdigit():
        # "0|180020" (GB): keep the plain-digit alternative that is the national prefix.
        if metadata.national_prefix and metadata.national_prefix in prefix.split("|"):
            prefix = metadata.national_prefix
        else:
            return None
    general = metadata.general_desc.national_number_pattern if metadata.general_desc else None
    types = [getattr(metadata, name) for name in _TYPE_DESCS]
    patterns = [d.national_number_pattern for d in types if d is not None and d.national_number_pattern]
    if general is None or not patterns:
        return None
    return (
        str(metadata.country_code),
        prefix,
        re.compile(f"(?:{general})"),
        re.compile("(?:" + "|".join(f"(?:{pattern})" for pattern in patterns) + ")"),
    )


def _fast_e164(text: str, region: str) -> str | None:
    """E.164 for a plainly written national number valid in `region`, else None (use the full parse).

    Checks the same metadata patterns phonenumbers' validity check does, for
    the one region, without its general parser: about ten times faster.
    """
    international = _INTERNATIONAL_TEXT.match(text) is not None
    if not international and not _NATIONAL_TEXT.match(text):
        return None
    rules = _national_rules(region)
    if rules is None:
        return None
    country_code, prefix, general, valid_type = rules
    digits = _NON_DIGITS.sub("", text)
    if international:
        # "+44 20 7946 0018" for a GB record: the region's own country code, then a national number.
        if not digits.startswith(country_code):
            return None
        national = digits[len(country_code):]
        if general.fullmatch(national) and valid_type.fullmatch(national):
            return f"+{country_code}{national}"
        return None
    candidates = [digits[len(prefix):], digits] if prefix and digits.startswith(prefix) else [digits]
    for national in candidates:
        if general.fullmatch(national) and valid_type.fullmatch(national):
            return f"+{country_code}{national}"
    return None


@dataclass(frozen=True, slots=True)
class StandardPhone:
    """A number in E.164 ("+447946000123"), or None with the reason in `flag`."""

    e164: str | None
    flag: str | None = None


# phonenumbers takes 20-50 µs a number, and sources repeat numbers a lot.
@lru_cache(maxsize=1_048_576)
def standardize_phone(raw: str | None, region: str = "US") -> StandardPhone:
    """E.164 for a phone number written nationally for `region` or internationally.

    Numbers phonenumbers does not consider valid give flag "invalid_phone";
    000-000-0000 and 1234567890 give "placeholder_phone".
    """
    text = blank_to_none(raw)
    if text is None:
        return StandardPhone(None)
    if is_placeholder_text(text):
        return StandardPhone(None, "placeholder_phone")
    text = _EXTENSION.sub("", text)
    digits = _NON_DIGITS.sub("", text)
    if is_placeholder_phone_digits(digits):
        return StandardPhone(None, "placeholder_phone")
    fast = _fast_e164(text, region)
    if fast is not None:
        return StandardPhone(fast)
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return StandardPhone(None, "invalid_phone")
    # Checking the expected region first skips the search across every region
    # that shares a country code (+1 has 25); foreign numbers take the full check.
    if not (phonenumbers.is_valid_number_for_region(number, region)
            or phonenumbers.is_valid_number(number)):
        return StandardPhone(None, "invalid_phone")
    if is_placeholder_phone_digits(str(number.national_number)):
        return StandardPhone(None, "placeholder_phone")
    return StandardPhone(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def standardize_phone_list(raw: str | None, region: str = "US") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(distinct E.164 numbers in order, flags) for a JSON list cell."""
    phones: list[str] = []
    flags: list[str] = []
    for item in parse_text_list(raw):
        result = standardize_phone(item, region)
        if result.e164 is not None and result.e164 not in phones:
            phones.append(result.e164)
        if result.flag is not None and result.flag not in flags:
            flags.append(result.flag)
    return tuple(phones), tuple(flags)


# --- many cells at once ---------------------------------------------------------------------------

# A number written with digits and separators only, at least one digit: no words, no extension.
_PLAIN_NUMBER = r"^ *\+?[0-9 ().\-/]*[0-9][0-9 ().\-/]* *$"
# Every run of six or more digits that is_placeholder_phone_digits finds inside its sequences.
_SEQUENCE_PARTS = sorted({seq[i:j] for seq in DIGIT_SEQUENCES for i in range(len(seq)) for j in range(i + 6, len(seq) + 1)})


def standardize_phone_cells(cells: Sequence[Any], regions: Sequence[str]) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """``standardize_phone_list(cell, region)`` for each pair, the common cases in Arrow.

    Cells that are plain JSON lists of strings are split in Arrow, and numbers written with digits and
    separators only take ``_fast_e164``'s test as one regular-expression match per region over all of
    them; every other cell or number (words, extensions, foreign numbers, other regions' rules) takes
    the per-value functions. Same results, value for value, as the per-value path."""
    n = len(cells)
    if n == 0:
        return []
    simple, empty_list, lists = split_simple_lists(cells)
    wanted: dict[tuple[str, str], None] = {}
    for i in np.flatnonzero(simple & ~empty_list).tolist():
        for item in lists[i]:
            wanted[(item, regions[i])] = None
    results = _phone_items(list(wanted))
    out: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    for i in range(n):
        if not simple[i]:
            out.append(standardize_phone_list(cells[i], regions[i]))
            continue
        if empty_list[i]:
            out.append(((), ()))
            continue
        phones: list[str] = []
        flags: list[str] = []
        region = regions[i]
        for item in lists[i]:
            e164, flag = results[(item, region)]
            if e164 is not None and e164 not in phones:
                phones.append(e164)
            if flag is not None and flag not in flags:
                flags.append(flag)
        out.append((tuple(phones), tuple(flags)))
    return out


def _phone_items(pairs: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """(item, region) -> (E.164 or None, flag or None), as ``standardize_phone`` gives them."""
    out: dict[tuple[str, str], tuple[str | None, str | None]] = {}
    if not pairs:
        return out
    items = pa.array([p[0] for p in pairs], pa.string())
    region_of = np.array([p[1] for p in pairs], dtype=object)
    plain = np.asarray(pc.match_substring_regex(items, _PLAIN_NUMBER).to_numpy(zero_copy_only=False), dtype=bool)
    text = pc.utf8_trim(items, " ")
    digits = pc.replace_substring_regex(text, r"[^0-9]+", "")
    n_digits = pc.utf8_length(digits).to_numpy(zero_copy_only=False)
    repeated = pc.equal(pc.utf8_slice_codeunits(digits, 1), pc.utf8_slice_codeunits(digits, 0, -1))
    in_sequence = pc.is_in(digits, value_set=pa.array(_SEQUENCE_PARTS, pa.string()))
    placeholder = (n_digits >= 6) & np.asarray(pc.or_(repeated, in_sequence).to_numpy(zero_copy_only=False), bool)
    international = np.asarray(pc.match_substring_regex(text, r"^\+[0-9]").to_numpy(zero_copy_only=False), dtype=bool)
    # "+ 44 ..." is neither international nor national text to _fast_e164: phonenumbers decides it.
    plain &= international | ~np.asarray(pc.starts_with(text, "+").to_numpy(zero_copy_only=False), dtype=bool)
    e164 = np.full(len(pairs), None, dtype=object)
    settled = plain & placeholder
    digit_list = digits.to_numpy(zero_copy_only=False)
    for region in pd.unique(region_of[plain & ~placeholder]):
        rules = _national_rules(region)
        rows = np.flatnonzero(plain & ~placeholder & (region_of == region))
        if rules is None:
            continue
        country_code, prefix, general, valid_type = rules
        general_re = "^(?:" + general.pattern + ")$"
        valid_re = "^(?:" + valid_type.pattern + ")$"

        def valid(numbers: list[str]) -> np.ndarray:
            arr = pa.array(numbers, pa.string())
            return np.asarray(pc.and_(pc.match_substring_regex(arr, general_re),
                                      pc.match_substring_regex(arr, valid_re)).to_numpy(zero_copy_only=False), bool)

        region_digits = digit_list[rows]
        intl = international[rows]
        # International: the region's own country code, then a valid national number.
        own = np.array([d.startswith(country_code) for d in region_digits], dtype=bool) & intl
        national = [d[len(country_code):] if o else d for d, o in zip(region_digits, own)]
        ok = valid(national) & own
        # National: without the national prefix first, then as written.
        stripped = [d[len(prefix):] if prefix and not i and d.startswith(prefix) else None
                    for d, i in zip(region_digits, intl)]
        has_stripped = np.array([s is not None for s in stripped], dtype=bool)
        ok_stripped = valid([s or "" for s in stripped]) & has_stripped & ~intl
        ok_written = valid(list(region_digits)) & ~intl & ~ok_stripped
        for k in np.flatnonzero(ok | ok_stripped | ok_written).tolist():
            number = national[k] if ok[k] else (stripped[k] if ok_stripped[k] else region_digits[k])
            e164[rows[k]] = f"+{country_code}{number}"
        settled[rows[ok | ok_stripped | ok_written]] = True
    for k, (item, region) in enumerate(pairs):
        if settled[k]:
            out[(item, region)] = (None, "placeholder_phone") if e164[k] is None else (e164[k], None)
        else:
            result = standardize_phone(item, region)
            out[(item, region)] = (result.e164, result.flag)
    return out
