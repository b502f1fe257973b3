"""Postal addresses: street line (with house number and unit pulled out), city, postcode."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from unidecode import unidecode

from accord.standardize.placeholders import blank_to_none, is_placeholder_text

# Every spelling maps to one form (the USPS abbreviation where there is one).
STREET_WORDS = {
    "street": "st", "str": "st", "strasse": "st", "road": "rd", "avenue": "ave",
    "av": "ave", "avn": "ave", "boulevard": "blvd", "boul": "blvd", "drive": "dr",
    "drv": "dr", "lane": "ln", "court": "ct", "crt": "ct", "place": "pl",
    "terrace": "ter", "terr": "ter", "crescent": "cres", "cresc": "cres",
    "highway": "hwy", "parkway": "pkwy", "pky": "pkwy", "square": "sq",
    "circle": "cir", "circ": "cir", "close": "cl", "gardens": "gdns", "garden": "gdn",
    "trail": "trl", "expressway": "expy", "freeway": "fwy", "mount": "mt",
    "mountain": "mtn", "point": "pt", "heights": "hts", "grove": "grv", "park": "park",
    "alley": "aly", "center": "ctr", "centre": "ctr", "estate": "est", "way": "way",
    "saint": "st", "fort": "ft", "route": "rte", "parade": "pde", "esplanade": "esp",
    "north": "n", "south": "s", "east": "e", "west": "w", "northeast": "ne",
    "northwest": "nw", "southeast": "se", "southwest": "sw",
    "first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th", "fifth": "5th",
    "sixth": "6th", "seventh": "7th", "eighth": "8th", "ninth": "9th", "tenth": "10th",
    "eleventh": "11th", "twelfth": "12th",
}
# German compounds: "Hauptstraße" -> "hauptstrasse" -> "haupt st".
_COMPOUND_STREET = re.compile(r"^(\w{3,})(strasse|str)$")

_UNIT = re.compile(
    r"(?:\b(?:apartment|apt|flat|unit|suite|ste|room|rm|floor|fl)\b\.?|#)\s*(?:no\.?\s*|#\s*)?"
    r"(?P<unit>[a-z0-9]+(?:-[a-z0-9]+)?)\b",
)
_HOUSE_NUMBER = re.compile(r"^\d+[a-z]?(?:-\d+[a-z]?)?$")
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_APOSTROPHES = re.compile(r"['`´’‘]")


@dataclass(frozen=True, slots=True)
class StreetParts:
    """A street line split into street name, house number and unit; lowercase ASCII."""

    street: str | None = None
    house_number: str | None = None
    unit: str | None = None


def _ascii_lower(text: str) -> str:
    return _APOSTROPHES.sub("", unidecode(text).lower())


def _street_word(word: str) -> list[str]:
    compound = _COMPOUND_STREET.match(word)
    if compound and word not in STREET_WORDS:
        return [compound[1], "st"]
    return [STREET_WORDS.get(word, word)]


@lru_cache(maxsize=262144)
def standardize_street(raw: str | None) -> StreetParts:
    """Split and normalize a street line: "123 North Main Street, Apt 4B" ->
    street "n main st", house number "123", unit "4b".

    The house number is the leading number ("221B Baker St") or, when there is
    none, a trailing one ("Hauptstraße 5").
    """
    text = blank_to_none(raw)
    if text is None or is_placeholder_text(text):
        return StreetParts()
    text = _ascii_lower(text)
    unit = None
    match = _UNIT.search(text)
    if match:
        unit = match["unit"].replace("-", "")
        text = text[: match.start()] + " " + text[match.end():]
    # "12-14 High St" keeps its range; other hyphens separate words.
    words = [w for w in re.sub(r"[^a-z0-9-]+", " ", text).split()]
    words = [part for w in words for part in ([w] if _HOUSE_NUMBER.match(w) else w.split("-")) if part]
    house_number = None
    if words and _HOUSE_NUMBER.match(words[0]):
        house_number = words.pop(0)
    elif len(words) > 1 and _HOUSE_NUMBER.match(words[-1]):
        house_number = words.pop()
    street = " ".join(part for w in words for part in _street_word(w))
    return StreetParts(street=street or None, house_number=house_number, unit=unit)


_CITY_WORDS = {"st": "saint", "ste": "sainte", "ft": "fort", "mt": "mount"}


@lru_cache(maxsize=65536)
def standardize_city(raw: str | None) -> str | None:
    """Lowercase ASCII words: "St. Louis" and "Saint Louis" -> "saint louis"."""
    text = blank_to_none(raw)
    if text is None or is_placeholder_text(text):
        return None
    words = _NOT_WORD.sub(" ", _ascii_lower(text)).split()
    return " ".join(_CITY_WORDS.get(w, w) for w in words) or None


_US_ZIP = re.compile(r"^(\d{5})(\d{4})?$")


@lru_cache(maxsize=262144)
def standardize_postcode(raw: str | None, country: str | None = None) -> str | None:
    """Uppercase with spaces and dashes removed; US ZIP+4 and ZIP cut to 5 digits.

    A 4-digit US ZIP regains the leading zero spreadsheets strip ("2134" -> "02134").
    """
    text = blank_to_none(raw)
    if text is None or is_placeholder_text(text):
        return None
    code = re.sub(r"[\s\-.]+", "", unidecode(text).upper())
    if not code.isalnum() or set(code) <= {"0"}:
        return None
    if country == "US":
        if code.isdigit() and len(code) == 4:
            code = "0" + code
        zip_match = _US_ZIP.match(code)
        if zip_match:
            return zip_match[1]
    return code
