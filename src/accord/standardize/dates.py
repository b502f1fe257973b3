"""Dates of birth in unknown formats to ISO "YYYY-MM-DD"."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache

from accord.standardize.placeholders import blank_to_none, is_placeholder_text

# Regions that write numeric dates month first; everyone else writes day first.
MONTH_FIRST_REGIONS = frozenset({"US", "PH", "FM", "MH", "PW", "AS", "GU", "MP", "PR", "VI", "UM"})

EARLIEST_BIRTH_YEAR = 1900
# Dates systems use when they have no real one.
PLACEHOLDER_DATES = frozenset({"1900-01-01", "1901-01-01"})

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
            ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
            ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = "(?P<month_name>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>\d{4}|\d{2})"

_ISO = re.compile(r"^(?P<year>\d{4})[-/.](?P<month>\d{1,2})[-/.](?P<day>\d{1,2})(?:[t ].*)?$")
_COMPACT = re.compile(r"^(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})$")
_NUMERIC = re.compile(r"^(?P<a>\d{1,2})[-/.](?P<b>\d{1,2})[-/.]" + _YEAR + r"(?:[t ].*)?$")
_DAY_MONTH_NAME = re.compile(r"^" + _DAY + r"[\s\-/.,]*(?:of\s+)?" + _MONTH + r"[\s\-/.,]*" + _YEAR + "$")
_MONTH_NAME_DAY = re.compile(r"^" + _MONTH + r"[\s\-/.]*" + _DAY + r"[\s,\-/.]*" + _YEAR + "$")


@dataclass(frozen=True, slots=True)
class StandardDate:
    """An ISO date string, or None with the reason in `flag`."""

    iso: str | None
    flag: str | None = None


def _full_year(year: str, today: dt.date) -> int:
    if len(year) == 4:
        return int(year)
    # Two-digit birth years are in the past: "84" -> 1984, "05" -> 2005.
    value = int(year)
    century = today.year // 100 * 100
    return century + value if century + value <= today.year else century - 100 + value


def _parts(text: str, month_first: bool, today: dt.date) -> tuple[int, int, int] | None:
    """(year, month, day) as written, not yet checked for being a real date."""
    if m := _ISO.match(text) or _COMPACT.match(text):
        return int(m["year"]), int(m["month"]), int(m["day"])
    if m := _NUMERIC.match(text):
        a, b = int(m["a"]), int(m["b"])
        year = _full_year(m["year"], today)
        # The convention decides only when both orders are possible.
        if a > 12 >= b:
            return year, b, a
        if b > 12 >= a:
            return year, a, b
        return (year, a, b) if month_first else (year, b, a)
    if m := _DAY_MONTH_NAME.match(text) or _MONTH_NAME_DAY.match(text):
        return _full_year(m["year"], today), _MONTHS[m["month_name"]], int(m["day"])
    return None


@lru_cache(maxsize=262144)
def standardize_dob(raw: str | None, month_first: bool = True, today: dt.date | None = None) -> StandardDate:
    """ISO date of birth from ISO, YYYYMMDD, DD/MM/YYYY or MM/DD/YYYY, DD.MM.YYYY,
    "7 March 1984" or "March 7, 1984".

    `month_first` settles numeric dates where both day and month are 12 or less
    (True for US records). Dates that cannot exist (Feb 30), lie in the future
    or before 1900 give flag "impossible_dob"; text that is no date gives
    "invalid_dob"; 1900-01-01 and 0000-00-00 give "placeholder_dob".
    """
    text = blank_to_none(raw)
    if text is None:
        return StandardDate(None)
    if is_placeholder_text(text):
        return StandardDate(None, "placeholder_dob")
    today = today or dt.date.today()
    text = " ".join(text.lower().split())
    parts = _parts(text, month_first, today)
    if parts is None:
        return StandardDate(None, "invalid_dob")
    year, month, day = parts
    if year == 0 and month == 0 and day == 0:
        return StandardDate(None, "placeholder_dob")
    try:
        date = dt.date(year, month, day)
    except ValueError:
        return StandardDate(None, "impossible_dob")
    if date > today or year < EARLIEST_BIRTH_YEAR:
        return StandardDate(None, "impossible_dob")
    iso = date.isoformat()
    if iso in PLACEHOLDER_DATES:
        return StandardDate(None, "placeholder_dob")
    return StandardDate(iso)


def writes_month_first(region: str | None) -> bool:
    """True where numeric dates are written month first (the US and its territories)."""
    return region in MONTH_FIRST_REGIONS
