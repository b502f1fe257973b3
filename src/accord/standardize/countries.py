"""Country names and codes to ISO 3166-1 alpha-2.

Names come from the locale data shipped with `phonenumbers` (every region's
name in dozens of languages, so "Deutschland" and "Allemagne" both give DE),
plus the aliases people actually type ("UK", "England", "U.S.A.", "Holland")
and the common alpha-3 codes.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

import phonenumbers
from unidecode import unidecode

_ALIASES = {
    "uk": "GB", "u k": "GB", "great britain": "GB", "britain": "GB", "england": "GB",
    "scotland": "GB", "wales": "GB", "northern ireland": "GB", "united kingdom": "GB",
    "united kingdom of great britain and northern ireland": "GB",
    "us": "US", "usa": "US", "u s": "US", "u s a": "US", "america": "US",
    "united states": "US", "united states of america": "US", "the united states": "US",
    "holland": "NL", "the netherlands": "NL", "deutschland": "DE", "west germany": "DE",
    "czechia": "CZ", "czech republic": "CZ", "south korea": "KR", "korea": "KR",
    "north korea": "KP", "russia": "RU", "russian federation": "RU", "vietnam": "VN",
    "viet nam": "VN", "ivory coast": "CI", "uae": "AE", "emirates": "AE",
    "republic of ireland": "IE", "eire": "IE", "turkey": "TR", "turkiye": "TR",
    "macedonia": "MK", "burma": "MM", "persia": "IR", "iran": "IR", "syria": "SY",
    "laos": "LA", "moldova": "MD", "bolivia": "BO", "venezuela": "VE", "tanzania": "TZ",
    "taiwan": "TW", "hong kong": "HK", "macau": "MO", "palestine": "PS", "vatican": "VA",
    "cape verde": "CV", "swaziland": "SZ", "east timor": "TL", "brasil": "BR",
    "espana": "ES", "italia": "IT", "schweiz": "CH", "suisse": "CH", "osterreich": "AT",
    "oesterreich": "AT", "sverige": "SE", "norge": "NO", "danmark": "DK", "suomi": "FI",
    "polska": "PL", "nederland": "NL", "belgique": "BE", "belgie": "BE", "mexique": "MX",
}

# Alpha-3 codes for the countries customer data most often comes from.
_ALPHA3 = {
    "usa": "US", "gbr": "GB", "deu": "DE", "fra": "FR", "esp": "ES", "ita": "IT",
    "nld": "NL", "bel": "BE", "che": "CH", "aut": "AT", "irl": "IE", "prt": "PT",
    "swe": "SE", "nor": "NO", "dnk": "DK", "fin": "FI", "pol": "PL", "cze": "CZ",
    "hun": "HU", "rou": "RO", "grc": "GR", "tur": "TR", "rus": "RU", "ukr": "UA",
    "can": "CA", "mex": "MX", "bra": "BR", "arg": "AR", "chl": "CL", "col": "CO",
    "per": "PE", "aus": "AU", "nzl": "NZ", "jpn": "JP", "chn": "CN", "kor": "KR",
    "ind": "IN", "sgp": "SG", "hkg": "HK", "twn": "TW", "zaf": "ZA", "nga": "NG",
    "ken": "KE", "egy": "EG", "isr": "IL", "are": "AE", "sau": "SA", "phl": "PH",
    "idn": "ID", "mys": "MY", "tha": "TH", "vnm": "VN", "lux": "LU", "isl": "IS",
}

# English names of the countries customer data most often comes from (the rest via _names()).
_COMMON = {
    "germany": "DE", "france": "FR", "spain": "ES", "italy": "IT", "netherlands": "NL",
    "belgium": "BE", "switzerland": "CH", "austria": "AT", "ireland": "IE", "portugal": "PT",
    "sweden": "SE", "norway": "NO", "denmark": "DK", "finland": "FI", "poland": "PL",
    "canada": "CA", "mexico": "MX", "brazil": "BR", "australia": "AU", "new zealand": "NZ",
    "japan": "JP", "china": "CN", "india": "IN", "singapore": "SG", "south africa": "ZA",
}

# Region codes that are not ISO 3166-1 countries (phonenumbers' non-geographic "001").
_NOT_COUNTRIES = frozenset({"001", "ZZ"})


def _key(text: str) -> str:
    """Lowercase ASCII with punctuation as single spaces: 'U.S.A.' -> 'u s a'."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", unidecode(text).lower()).split())


@cache
def _names() -> dict[str, str]:
    from phonenumbers.geodata.locale import LOCALE_DATA

    seen: dict[str, set[str]] = {}
    for region, by_language in LOCALE_DATA.items():
        if region in _NOT_COUNTRIES:
            continue
        for name in by_language.values():
            if name.startswith("*"):  # "*aa": same as another language's entry
                continue
            key = _key(name)
            if key:
                seen.setdefault(key, set()).add(region)
    # A transliterated name shared by two regions identifies neither.
    names = {key: regions.pop() for key, regions in seen.items() if len(regions) == 1}
    names.update(_ALPHA3)
    names.update(_ALIASES)
    return names


def known_region_codes() -> frozenset[str]:
    """The ISO alpha-2 codes this module can return."""
    return frozenset(phonenumbers.SUPPORTED_REGIONS) - _NOT_COUNTRIES


@lru_cache(maxsize=4096)
def standardize_country(raw: str | None) -> str | None:
    """ISO 3166-1 alpha-2 for a country name or code, or None when it is not recognised.

    >>> standardize_country("United Kingdom"), standardize_country("U.S.")
    ('GB', 'US')
    """
    if raw is None:
        return None
    key = _key(raw)
    if not key:
        return None
    if len(key) == 2 and key.upper() in _REGIONS:
        return key.upper()
    if key == "u s":
        return "US"
    # The aliases and common English names first: the locale table takes seconds to load.
    return _ALIASES.get(key) or _ALPHA3.get(key) or _COMMON.get(key) or _names().get(key)


_REGIONS = known_region_codes()
