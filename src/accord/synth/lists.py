"""The shipped reference lists: names, cities, streets, nicknames, phone plans."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
from unidecode import unidecode

COUNTRIES = ("US", "GB", "DE", "FR")
COUNTRY_SHARES = (0.45, 0.25, 0.15, 0.15)
COUNTRY_NAMES = {"US": "United States", "GB": "United Kingdom", "DE": "Germany", "FR": "France"}
CALLING_CODES = {"US": "1", "GB": "44", "DE": "49", "FR": "33"}

# National significant number plans: (leading digits, total length, grouping after the area part, area length).
# Each prefix was checked with phonenumbers.is_valid_number on random completions.
PHONE_PLANS: dict[str, list[tuple[str, int, int]]] = {
    # (prefix, NSN length, area-code length)
    "US": [
        (a, 10, 3)
        for a in (
            "212",
            "718",
            "917",
            "347",
            "213",
            "310",
            "415",
            "619",
            "312",
            "773",
            "713",
            "214",
            "512",
            "602",
            "215",
            "206",
            "303",
            "617",
            "404",
            "305",
            "407",
            "612",
            "503",
            "615",
            "614",
            "313",
            "217",
            "413",
        )
    ],
    "GB": [
        ("74", 10, 4),
        ("75", 10, 4),
        ("78", 10, 4),
        ("79", 10, 4),
        ("207", 10, 2),
        ("208", 10, 2),
        ("161", 10, 3),
        ("141", 10, 3),
    ],
    "DE": [
        ("151", 11, 3),
        ("152", 11, 3),
        ("160", 10, 3),
        ("170", 10, 3),
        ("171", 10, 3),
        ("172", 10, 3),
        ("176", 11, 3),
        ("30", 10, 2),
        ("89", 10, 2),
        ("40", 10, 2),
        ("221", 10, 3),
        ("69", 10, 2),
    ],
    "FR": [("6", 9, 1), ("1", 9, 1), ("3", 9, 1), ("2", 9, 1), ("5", 9, 1)],
}

EMAIL_DOMAINS = {
    "US": (
        ("gmail.com", 40),
        ("yahoo.com", 15),
        ("outlook.com", 10),
        ("hotmail.com", 8),
        ("icloud.com", 10),
        ("aol.com", 3),
        ("comcast.net", 3),
    ),
    "GB": (
        ("gmail.com", 35),
        ("hotmail.co.uk", 15),
        ("yahoo.co.uk", 10),
        ("outlook.com", 10),
        ("btinternet.com", 8),
        ("sky.com", 5),
        ("icloud.com", 7),
    ),
    "DE": (("gmail.com", 25), ("web.de", 20), ("gmx.de", 20), ("t-online.de", 10), ("outlook.de", 5), ("yahoo.de", 5)),
    "FR": (
        ("gmail.com", 30),
        ("orange.fr", 15),
        ("free.fr", 10),
        ("hotmail.fr", 10),
        ("laposte.net", 8),
        ("sfr.fr", 7),
        ("yahoo.fr", 5),
    ),
}

STREET_TYPES = {
    # (long, short) forms; DE/FR street roots carry their own pattern.
    "US": (("Street", "St"), ("Avenue", "Ave"), ("Road", "Rd"), ("Drive", "Dr"), ("Lane", "Ln"), ("Boulevard", "Blvd")),
    "GB": (("Road", "Rd"), ("Street", "St"), ("Lane", "Ln"), ("Close", "Cl"), ("Avenue", "Ave"), ("Gardens", "Gdns")),
    "DE": (("straße", "str."), ("weg", "weg"), ("allee", "allee"), ("platz", "pl."), ("gasse", "gasse")),
    "FR": (("rue", "r."), ("avenue", "av."), ("boulevard", "bd"), ("place", "pl."), ("impasse", "imp.")),
}


@dataclass(frozen=True)
class NameTable:
    """All names of one kind in one array; per (country, gender) the slice and sampling weights."""

    names: np.ndarray  # object array of str
    ascii_lower: np.ndarray  # for emails
    groups: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]  # key -> (indices, probabilities)


def _read(name: str) -> list[dict[str, str]]:
    text = resources.files("accord.synth").joinpath("data").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def _ascii(name: str) -> str:
    return "".join(ch for ch in unidecode(name).lower() if ch.isalnum())


def _table(rows: list[dict[str, str]], key) -> NameTable:
    names = np.array([r["name"] for r in rows], dtype=object)
    groups: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    keys = [key(r) for r in rows]
    for k in sorted(set(keys)):
        idx = np.array([i for i, kk in enumerate(keys) if kk == k], dtype=np.int64)
        w = np.array([float(rows[i]["weight"]) for i in idx])
        groups[k] = (idx, w / w.sum())
    return NameTable(names, np.array([_ascii(n) for n in names], dtype=object), groups)


@lru_cache(maxsize=1)
def given_names() -> NameTable:
    return _table(_read("given_names.csv"), lambda r: (r["country"], r["gender"]))


@lru_cache(maxsize=1)
def family_names() -> NameTable:
    return _table(_read("family_names.csv"), lambda r: (r["country"], ""))


@dataclass(frozen=True)
class Cities:
    country: np.ndarray  # object: country code
    city: np.ndarray
    region: np.ndarray
    prefix: np.ndarray
    by_country: dict[str, tuple[np.ndarray, np.ndarray]]


@lru_cache(maxsize=1)
def cities() -> Cities:
    rows = _read("cities.csv")
    by_country = {}
    for c in COUNTRIES:
        idx = np.array([i for i, r in enumerate(rows) if r["country"] == c], dtype=np.int64)
        w = np.array([float(rows[i]["weight"]) for i in idx])
        by_country[c] = (idx, w / w.sum())
    col = lambda k: np.array([r[k] for r in rows], dtype=object)
    return Cities(col("country"), col("city"), col("region"), col("postcode_prefix"), by_country)


@lru_cache(maxsize=1)
def street_roots() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {c: [] for c in COUNTRIES}
    for r in _read("streets.csv"):
        out[r["country"]].append(r["name"])
    return out


@lru_cache(maxsize=1)
def nicknames() -> dict[str, tuple[str, ...]]:
    """Lower-case given name -> its nicknames, sorted (never set order, for determinism)."""
    pairs: dict[str, set[str]] = {}
    text = resources.files("nicknames").joinpath("names.csv").read_text(encoding="utf-8")
    for row in csv.DictReader(text.splitlines()):
        if row["relationship"] == "has_nickname":
            pairs.setdefault(row["name1"].strip().lower(), set()).add(row["name2"].strip().lower())
    for row in _read("extra_nicknames.csv"):
        pairs.setdefault(row["name"], set()).add(row["nickname"])
    return {k: tuple(sorted(v)) for k, v in sorted(pairs.items()) if v}
