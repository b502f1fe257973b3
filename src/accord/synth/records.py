"""People-source records (crm, shop, pos, support): each a messy view of one true person."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from accord.synth import lists, variation
from accord.synth.people import SEGMENTS, People
from accord.synth.rates import VariationRates
from accord.synth.timefmt import DAY, epoch_seconds, iso

PHONE_DEFAULT_STYLE = {"crm": "national", "shop": "international", "pos": "digits"}
NAME_KINDS = ("typo", "transposition", "deletion", "nickname", "initial", "swapped_names")


@dataclass
class SourceRecords:
    """One people source: the rows as written and, per row, the true person (index into People)."""

    name: str
    key_column: str
    person: np.ndarray
    table: pa.Table
    created_seconds: np.ndarray  # int64, for linking activity to accounts


def sequential_ids(prefix: str, n: int, width: int, first: int = 1) -> pa.Array:
    """``prefix`` + zero-padded running numbers, built in Arrow (no Python string per id)."""
    numbers = pa.array(np.arange(first, first + n, dtype=np.int64)).cast(pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(numbers, width, "0"), "")


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Person index per record, and the copy number (0 for a person's first record in the source)."""
    person = np.repeat(np.arange(len(counts)), counts.astype(np.int64))
    starts = np.repeat(np.cumsum(counts) - counts, counts.astype(np.int64))
    return person, np.arange(len(person)) - starts


class _Renderer:
    """Applies the variation rates to one source's records."""

    def __init__(self, people: People, rates: VariationRates, rng: np.random.Generator):
        self.p, self.rates, self.rng = people, rates, rng
        self.rnd = random.Random(int(rng.integers(0, 2**63)))

    def _apply(self, values: np.ndarray, mask: np.ndarray, fn) -> None:
        for i in np.flatnonzero(mask):
            if values[i]:
                values[i] = fn(values[i], self.rnd)

    def names(self, pi: np.ndarray, asof: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p, r, rng = self.p, self.rates, self.rng
        gn, fn = lists.given_names(), lists.family_names()
        given = gn.names[p.given[pi]].copy()
        fam_idx = np.where(
            (p.previous_family[pi] >= 0) & (asof < p.marriage_day[pi]), p.previous_family[pi], p.family[pi]
        )
        family = fn.names[fam_idx].copy()
        u = rng.random(len(pi))
        side = rng.random(len(pi)) < 0.5
        edges = np.cumsum([r.typo, r.transposition, r.deletion, r.nickname, r.initial, r.swapped_names])
        kind = np.searchsorted(edges, u, side="right")  # 0..5 a variation, 6 none
        for k, fn_ in ((0, variation.typo), (1, variation.transpose), (2, variation.delete)):
            self._apply(given, (kind == k) & side, fn_)
            self._apply(family, (kind == k) & ~side, fn_)
        self._apply(given, kind == 3, variation.nickname)
        self._apply(given, kind == 4, variation.initial)
        swap = kind == 5
        given[swap], family[swap] = family[swap], given[swap].copy()
        accent = rng.random(len(pi)) < r.accent_stripped
        self._apply(given, accent, lambda s, rnd: variation.strip_accents(s, rnd) if variation.has_accent(s) else s)
        self._apply(family, accent, lambda s, rnd: variation.strip_accents(s, rnd) if variation.has_accent(s) else s)
        case = rng.random(len(pi)) < r.mixed_case
        upper = rng.random(len(pi)) < 0.5
        for i in np.flatnonzero(case):
            given[i], family[i] = (
                (given[i].upper(), family[i].upper()) if upper[i] else (given[i].lower(), family[i].lower())
            )
        return given, family

    def missing(self, values: np.ndarray) -> np.ndarray:
        values[self.rng.random(len(values)) < self.rates.missing_field] = None
        return values

    def email(self, pi: np.ndarray, asof: np.ndarray) -> np.ndarray:
        p = self.p
        use_old = (p.old_email[pi] != None) & (asof < p.email_change_day[pi])
        out = np.where(use_old, p.old_email[pi], p.email[pi])
        junk = self.rng.random(len(pi)) < self.rates.junk
        out[junk] = np.array(variation.JUNK_EMAILS, dtype=object)[self.rng.integers(0, 6, int(junk.sum()))]
        case = self.rng.random(len(pi)) < self.rates.mixed_case
        self._apply(out, case & ~junk, lambda s, rnd: s[0].upper() + s[1:] if rnd.random() < 0.5 else s.upper())
        return self.missing(out)

    def phone(self, pi: np.ndarray, default_style: str) -> np.ndarray:
        p, rng = self.p, self.rng
        other = rng.random(len(pi)) < self.rates.phone_format
        styles = [s for s in variation.PHONE_STYLES if s != default_style]
        style_pick = rng.integers(0, len(styles), len(pi))
        out = np.empty(len(pi), dtype=object)
        for j, i in enumerate(pi):
            style = styles[style_pick[j]] if other[j] else default_style
            out[j] = variation.format_phone(p.phone[i], lists.COUNTRIES[p.country[i]], int(p.phone_area[i]), style)
        junk = rng.random(len(pi)) < self.rates.junk
        out[junk] = np.array(variation.JUNK_PHONES, dtype=object)[rng.integers(0, 6, int(junk.sum()))]
        return self.missing(out)

    def address(self, pi: np.ndarray, asof: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p, rng = self.p, self.rng
        old = p.moved[pi] & (asof < p.move_day[pi])
        short = rng.random(len(pi)) < self.rates.address_format
        street = np.where(
            old,
            np.where(short, p.old_street_short[pi], p.old_street[pi]),
            np.where(short, p.street_short[pi], p.street[pi]),
        )
        city = lists.cities().city[np.where(old, p.old_city[pi], p.city[pi])]
        postcode = np.where(old, p.old_postcode[pi], p.postcode[pi])
        variant = np.flatnonzero(rng.random(len(pi)) < self.rates.postcode_format)
        for j in variant:
            postcode[j] = variation.postcode_variant(postcode[j], lists.COUNTRIES[p.country[pi[j]]], self.rnd)
        return self.missing(street), city, self.missing(postcode)

    def dob(self, pi: np.ndarray, default_format: str) -> np.ndarray:
        p = self.p
        variant = self.rng.random(len(pi)) < self.rates.date_format
        out = np.empty(len(pi), dtype=object)
        for j, i in enumerate(pi):
            d = p.dob[i].item()
            out[j] = (
                variation.date_variant(d, lists.COUNTRIES[p.country[i]], self.rnd)
                if variant[j]
                else d.strftime(default_format)
            )
        return self.missing(out)


def _times(people: People, pi: np.ndarray, copy: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Created and updated day offsets: first records near first seen, later copies anywhere after."""
    lo = people.first_seen[pi].astype(np.float64)
    hi = np.maximum(people.last_active[pi], lo + 1)
    created = np.where(copy == 0, lo + rng.random(len(pi)) * 30, lo + rng.random(len(pi)) * (hi - lo))
    created = np.minimum(created, people.days - 1)
    updated = created + rng.random(len(pi)) ** 2 * np.maximum(people.days - created, 0)
    return created, updated


def _seconds(people: People, day: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    base = epoch_seconds(people.start)
    return (base + np.floor(day) * DAY + rng.integers(7 * 3600, 22 * 3600, len(day))).astype(np.int64)


def _timed(people: People, counts: np.ndarray, rng: np.random.Generator):
    """Records of a source ordered by creation time, so sequential ids grow with time as in real systems."""
    pi, copy = _expand(counts)
    created, updated = _times(people, pi, copy, rng)
    created_s = _seconds(people, created, rng)
    updated_s = np.maximum(_seconds(people, updated, rng), created_s)
    order = np.argsort(created_s, kind="stable")
    return pi[order], created[order], updated[order], created_s[order], updated_s[order]


def _company(people: People, pi: np.ndarray) -> np.ndarray:
    comp = people.company[pi]
    out = np.full(len(pi), None, dtype=object)
    has = comp >= 0
    out[has] = people.company_names[comp[has]]
    return out


def crm(people: People, rates: VariationRates, rng: np.random.Generator) -> SourceRecords:
    pi, _, updated, created_s, updated_s = _timed(people, people.n_crm, rng)
    r = _Renderer(people, rates, rng)
    given, family = r.names(pi, updated)
    street, city, postcode = r.address(pi, updated)
    opt_in = np.where(people.email_subscriber[pi], rng.random(len(pi)) < 0.9, rng.random(len(pi)) < 0.1)
    keys = sequential_ids("CRM-", len(pi), 7)
    table = pa.table(
        {
            "contact_id": keys,
            "first_name": given,
            "last_name": family,
            "email": r.email(pi, updated),
            "phone": r.phone(pi, PHONE_DEFAULT_STYLE["crm"]),
            "street": street,
            "city": city,
            "postcode": postcode,
            "country": np.array(lists.COUNTRIES, dtype=object)[people.country[pi]],
            "dob": r.dob(pi, "%Y-%m-%d"),
            "company": _company(people, pi),
            "created_at": iso(created_s),
            "updated_at": iso(updated_s),
            "marketing_opt_in": np.where(opt_in, "true", "false").astype(object),
        }
    )
    return SourceRecords("crm", "contact_id", pi, table, created_s)


def shop(people: People, rates: VariationRates, rng: np.random.Generator) -> SourceRecords:
    pi, _, updated, created_s, updated_s = _timed(people, people.n_shop, rng)
    r = _Renderer(people, rates, rng)
    given, family = r.names(pi, updated)
    full = np.array([f"{g} {f}" for g, f in zip(given, family)], dtype=object)
    street, city, postcode = r.address(pi, updated)
    keys = sequential_ids("SH", len(pi), 8, first=100001)
    names = np.array([lists.COUNTRY_NAMES[c] for c in lists.COUNTRIES], dtype=object)
    table = pa.table(
        {
            "customer_id": keys,
            "name": full,
            "email": r.email(pi, updated),
            "phone": r.phone(pi, PHONE_DEFAULT_STYLE["shop"]),
            "ship_street": street,
            "ship_city": city,
            "ship_postcode": postcode,
            "ship_country": names[people.country[pi]],
            "company": _company(people, pi),
            "accepts_marketing": people.email_subscriber[pi],
            "created_at": iso(created_s),
            "updated_at": iso(updated_s),
        }
    )
    return SourceRecords("shop", "customer_id", pi, table, created_s)


def pos(people: People, rates: VariationRates, rng: np.random.Generator) -> SourceRecords:
    pi, created, _, created_s, _ = _timed(people, people.n_pos, rng)
    r = _Renderer(people, rates, rng)
    given, family = r.names(pi, created)
    name = np.array([f"{f.upper()}, {g}" for g, f in zip(given, family)], dtype=object)
    _, _, postcode = r.address(pi, created)
    # Card numbers are printed on plastic: random and unique, not sequential.
    cards = np.unique(rng.integers(10**9, 10**10, size=len(pi) + 1000))[: len(pi)]
    rng.shuffle(cards)
    dob = r.dob(pi, "%d/%m/%Y")
    dob[rng.random(len(pi)) < 0.5] = None  # half the tills never ask
    table = pa.table(
        {
            "loyalty_id": pc.binary_join_element_wise("L", pa.array(cards).cast(pa.string()), ""),
            "name": name,
            "phone": r.phone(pi, PHONE_DEFAULT_STYLE["pos"]),
            "postcode": postcode,
            # A till knows which country its store is in; without it national phone numbers are ambiguous.
            "store_country": np.array(lists.COUNTRIES, dtype=object)[people.country[pi]],
            "dob": dob,
            "joined_at": iso(created_s),
        }
    )
    return SourceRecords("pos", "loyalty_id", pi, table, created_s)


SUPPORT_CHANNELS = ("email", "chat", "phone", "web_form")
SUPPORT_CATEGORIES = ("delivery", "return", "billing", "product", "account")


def support(people: People, rates: VariationRates, rng: np.random.Generator) -> SourceRecords:
    pi, _ = _expand(people.n_tickets)
    lo = np.maximum(people.first_seen[pi], 0).astype(np.float64)
    hi = np.maximum(people.last_active[pi], lo + 1)
    day = lo + rng.random(len(pi)) * (hi - lo)
    created_s = _seconds(people, day, rng)
    order = np.argsort(created_s, kind="stable")
    pi, day, created_s = pi[order], day[order], created_s[order]
    r = _Renderer(people, rates, rng)
    given, family = r.names(pi, day)
    style = rng.integers(0, 4, len(pi))
    display = np.empty(len(pi), dtype=object)
    for j in range(len(pi)):
        g, f = given[j], family[j]
        display[j] = (f"{g} {f}", f"{g} {f}", f"{g[0]}. {f}" if g else f, g)[style[j]]
    heavy = people.segment[pi] == SEGMENTS.index("support_heavy")
    score = np.clip(np.round(rng.normal(np.where(heavy, 2.6, 4.1), 1.0)), 1, 5).astype(np.int64)
    answered = rng.random(len(pi)) < 0.6
    sentiment = np.round(np.clip(rng.normal((score - 3) / 2.5, 0.25), -1, 1), 2)
    email = r.email(pi, day)
    email[email == None] = people.email[pi[email == None]]
    table = pa.table(
        {
            "ticket_id": sequential_ids("T-", len(pi), 7),
            "requester_email": email,
            "requester_name": display,
            "created_at": iso(created_s),
            "channel": np.array(SUPPORT_CHANNELS, dtype=object)[rng.integers(0, 4, len(pi))],
            "category": np.array(SUPPORT_CATEGORIES, dtype=object)[rng.integers(0, 5, len(pi))],
            "satisfaction": pa.array(score, mask=~answered),
            "sentiment": sentiment,
        }
    )
    return SourceRecords("support", "ticket_id", pi, table, created_s)
