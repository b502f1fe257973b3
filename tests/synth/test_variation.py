"""Each kind of variation appears at about its configured rate (measured on the written files)."""

from __future__ import annotations

import unicodedata
from datetime import date
from pathlib import Path

import numpy as np
import phonenumbers
import pytest

from accord.synth import VariationRates, generate, lists, variation
from accord.synth.people import build_people
from tests.synth.conftest import Sample, read_csv

RATES = VariationRates()


def _fold(s: str) -> str:
    s = "".join(ch for ch in unicodedata.normalize("NFKD", s) if not unicodedata.combining(ch))
    return s.replace("ß", "ss").lower()


def _forms(name: str) -> set[str]:
    """The ways a true name may be written without an error: case, accents, German transliteration."""
    de = name.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("Ä", "Ae").replace("Ö", "Oe")
    return {_fold(name), _fold(de.replace("Ü", "Ue"))}


def _one_edit(written: str, true: str) -> str | None:
    w, t = _fold(written), _fold(true)
    if len(w) == len(t):
        diff = [i for i in range(len(t)) if w[i] != t[i]]
        if len(diff) == 1:
            return "typo"
        if len(diff) == 2 and diff[1] == diff[0] + 1 and w[diff[0]] == t[diff[1]] and w[diff[1]] == t[diff[0]]:
            return "transposition"
    if len(w) == len(t) - 1 and any(t[:i] + t[i + 1 :] == w for i in range(len(t))):
        return "deletion"
    return None


def classify(given: str, family: str, true_given: str, true_families: list[str]) -> str:
    g_ok = _fold(given) in _forms(true_given)
    f_ok = any(_fold(family) in _forms(f) for f in true_families)
    if g_ok and f_ok:
        return "none"
    if _fold(given) in set().union(*(_forms(f) for f in true_families)) and _fold(family) in _forms(true_given):
        return "swapped_names"
    if f_ok and given.lower() in lists.nicknames().get(true_given.lower(), ()):
        return "nickname"
    if f_ok and given.rstrip(".") == true_given[0] and len(given) <= 2:
        return "initial"
    if f_ok:
        return _one_edit(given, true_given) or "other"
    if g_ok:
        return min((_one_edit(family, f) or "other" for f in true_families), key=lambda k: k == "other")
    return "other"


def _name_records(sample: Sample) -> list[tuple[str, str, int]]:
    """(written given, written family, true person) for crm, shop and pos records."""
    out = []
    crm = sample.table("crm_contacts.csv").to_pydict()
    for g, f, i in zip(crm["first_name"], crm["last_name"], sample.person_index("crm", crm["contact_id"])):
        out.append((g, f, i))
    shop = sample.table("shop_customers.jsonl").to_pydict()
    for name, i in zip(shop["name"], sample.person_index("shop", shop["customer_id"])):
        g, f = name.split(" ", 1)
        out.append((g, f, i))
    pos = sample.table("pos_loyalty.csv").to_pydict()
    for name, i in zip(pos["name"], sample.person_index("pos", pos["loyalty_id"])):
        f, g = name.split(", ", 1)
        out.append((g, f, i))
    return out


def _kinds(sample: Sample) -> tuple[list[str], list[bool]]:
    p = sample.people
    gn, fn = lists.given_names(), lists.family_names()
    kinds, eligible = [], []
    for g, f, i in _name_records(sample):
        families = [fn.names[p.family[i]]] + ([fn.names[p.previous_family[i]]] if p.previous_family[i] >= 0 else [])
        true_given = gn.names[p.given[i]]
        kinds.append(classify(g, f, true_given, families))
        eligible.append(true_given.lower() in lists.nicknames())
    return kinds, eligible


@pytest.mark.parametrize("kind", ["typo", "transposition", "deletion", "initial", "swapped_names"])
def test_name_variation_appears_at_its_rate(sample, kind):
    kinds, _ = _kinds(sample)
    measured = kinds.count(kind) / len(kinds)
    expected = getattr(RATES, kind)
    # A few edits are impossible (short names, no keyboard neighbour) or look like another kind.
    assert expected * 0.6 <= measured <= expected * 1.3 + 0.003, (kind, measured)


def test_nicknames_appear_at_their_rate_among_names_that_have_one(sample):
    kinds, eligible = _kinds(sample)
    chosen = [k for k, e in zip(kinds, eligible) if e]
    assert abs(chosen.count("nickname") / len(chosen) - RATES.nickname) < 0.03


def test_almost_every_name_difference_is_a_documented_variation(sample):
    kinds, _ = _kinds(sample)
    assert kinds.count("other") / len(kinds) < 0.01


def test_no_variation_at_all_when_every_rate_is_zero(tmp_path: Path):
    generate(tmp_path, people=400, seed=5, rates=VariationRates.none())
    p = build_people(400, 5, rates=VariationRates.none())
    s = Sample(tmp_path, p)
    kinds, _ = _kinds(s)
    assert set(kinds) == {"none"}
    crm = s.table("crm_contacts.csv").to_pydict()
    idx = s.person_index("crm", crm["contact_id"])
    assert None not in crm["email"] and None not in crm["phone"] and None not in crm["dob"]
    assert crm["dob"] == [str(p.dob[i]) for i in idx]
    assert crm["email"] == [p.email[i] for i in idx]


def test_a_raised_rate_shows_up_in_the_output(tmp_path: Path):
    rates = VariationRates(typo=0.3, nickname=0.0)
    generate(tmp_path, people=600, seed=9, rates=rates)
    s = Sample(tmp_path, build_people(600, 9, rates=rates))
    kinds, _ = _kinds(s)
    assert 0.22 <= kinds.count("typo") / len(kinds) <= 0.33


def _crm(sample: Sample):
    crm = sample.table("crm_contacts.csv").to_pydict()
    return crm, sample.person_index("crm", crm["contact_id"])


@pytest.mark.parametrize("column", ["email", "phone", "street", "dob", "postcode"])
def test_optional_crm_fields_are_missing_at_the_configured_rate(sample, column):
    crm, _ = _crm(sample)
    values = crm[column]
    assert abs(sum(v is None for v in values) / len(values) - RATES.missing_field) < 0.015


def test_placeholder_junk_appears_at_the_configured_rate(sample):
    crm, _ = _crm(sample)
    emails = [e for e in crm["email"] if e is not None]
    phones = [ph for ph in crm["phone"] if ph is not None]
    assert abs(sum(e in variation.JUNK_EMAILS for e in emails) / len(emails) - RATES.junk) < 0.008
    assert abs(sum(ph in variation.JUNK_PHONES for ph in phones) / len(phones) - RATES.junk) < 0.008


def test_phone_formats_vary_at_the_configured_rate(sample):
    crm, idx = _crm(sample)
    p = sample.people
    written = [(ph, i) for ph, i in zip(crm["phone"], idx) if ph is not None and ph not in variation.JUNK_PHONES]
    other = sum(
        ph != variation.format_phone(p.phone[i], lists.COUNTRIES[p.country[i]], int(p.phone_area[i]), "national")
        for ph, i in written
    )
    assert abs(other / len(written) - RATES.phone_format) < 0.03


def test_written_phones_are_valid_numbers_in_their_country(sample):
    crm, idx = _crm(sample)
    p = sample.people
    checked = valid = 0
    for ph, i in zip(crm["phone"], idx):
        if ph is None or ph in variation.JUNK_PHONES:
            continue
        checked += 1
        number = phonenumbers.parse(ph, lists.COUNTRIES[p.country[i]])
        valid += phonenumbers.is_valid_number(number)
    assert valid / checked > 0.97


def test_date_and_postcode_formats_vary_at_the_configured_rate(sample):
    crm, idx = _crm(sample)
    p = sample.people
    dobs = [(d, i) for d, i in zip(crm["dob"], idx) if d is not None]
    assert abs(sum(d != str(p.dob[i]) for d, i in dobs) / len(dobs) - RATES.date_format) < 0.015
    codes = [(c, i) for c, i in zip(crm["postcode"], idx) if c is not None]
    variant = sum(c not in (p.postcode[i], p.old_postcode[i]) for c, i in codes)
    assert abs(variant / len(codes) - RATES.postcode_format) < 0.015


def test_movers_show_old_and_new_addresses_in_different_records(sample):
    p = sample.people
    assert abs(p.moved.mean() - RATES.moved) < 0.015
    crm, idx = _crm(sample)
    movers = [(s, i) for s, i in zip(crm["street"], idx) if p.moved[i] and s is not None]
    old = sum(s in (p.old_street[i], p.old_street_short[i]) for s, i in movers)
    new = sum(s in (p.street[i], p.street_short[i]) for s, i in movers)
    assert old > 0 and new > 0 and old + new == len(movers)


def test_person_level_variations_happen_at_their_rates(sample):
    p = sample.people
    assert abs((p.old_email != None).mean() - RATES.changed_email) < 0.015
    assert abs((p.previous_family >= 0)[p.female].mean() - RATES.married_name) < 0.02
    assert abs((p.household_head >= 0).mean() - RATES.household) < 0.015
    assert abs(p.twin.mean() - RATES.twin) < 0.004
    assert abs((p.namesake_of >= 0).mean() - RATES.namesake) < 0.006


def test_households_share_surname_and_address_but_not_identity(sample):
    p = sample.people
    members = np.flatnonzero(p.household_head >= 0)
    heads = p.household_head[members]
    assert (p.family[members] == p.family[heads]).all()
    assert (p.street[members] == p.street[heads]).all()
    assert (p.dob[members][p.twin[members]] == p.dob[heads][p.twin[members]]).all()
    shared = p.shares_email[members]
    assert (p.email[members][shared] == p.email[heads][shared]).all()
    assert abs(shared.mean() - RATES.shared_email) < 0.06


def test_people_come_from_four_countries_with_their_own_conventions(sample):
    crm, _ = _crm(sample)
    assert set(crm["country"]) == {"US", "GB", "DE", "FR"}
    p = sample.people
    assert all(
        phonenumbers.is_valid_number(
            phonenumbers.parse("+" + lists.CALLING_CODES[lists.COUNTRIES[p.country[i]]] + p.phone[i])
        )
        for i in range(0, p.n, 7)
    )


def test_accented_names_are_sometimes_written_without_accents(sample):
    crm, idx = _crm(sample)
    p = sample.people
    fn = lists.family_names()
    accented = [
        (f, fn.names[p.family[i]])
        for f, i in zip(crm["last_name"], idx)
        if variation.has_accent(fn.names[p.family[i]]) and p.previous_family[i] < 0
    ]
    stripped = sum(not variation.has_accent(f) for f, _ in accented)
    assert len(accented) > 30
    assert abs(stripped / len(accented) - RATES.accent_stripped) < 0.15


def test_dates_of_birth_are_plausible_adults(sample):
    p = sample.people
    ages = (np.datetime64(date(2023, 1, 1)) - p.dob).astype(int) / 365.25
    assert ages.min() >= 17.9 and ages.max() <= 86


def test_read_csv_keeps_leading_zeros(sample):
    # US ZIP codes such as 02139 must survive a round trip as text.
    t = read_csv(sample.out / "crm_contacts.csv").to_pydict()
    assert any(c and c.startswith("0") for c in t["postcode"])
