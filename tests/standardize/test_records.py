import json

import pandas as pd
import pytest

from accord.standardize import STANDARD_COLUMNS, standardize_records


def _record(**fields):
    base = dict.fromkeys(
        ["source", "record_key", "given_name", "family_name", "full_name", "emails", "phones",
         "street", "city", "region", "postcode", "country", "date_of_birth", "company"]
    )
    base.update(source="crm", record_key="1")
    base.update(fields)
    return base


def _one(**fields):
    return standardize_records(pd.DataFrame([_record(**fields)]), workers=1).iloc[0]


def test_raw_columns_are_kept_unchanged_and_std_columns_added():
    frame = pd.DataFrame([_record(given_name="José", emails='["A@B.com"]')])
    out = standardize_records(frame, workers=1)
    assert out is not frame
    pd.testing.assert_frame_equal(out[frame.columns], frame)
    assert list(out.columns) == list(frame.columns) + list(STANDARD_COLUMNS)
    assert list(frame.columns) == list(_record())


def test_given_and_family_come_from_full_name_when_empty():
    row = _one(full_name="SMITH, Robert")
    assert (row.std_given_name, row.std_family_name, row.std_given_initial) == ("robert", "smith", "r")


def test_separate_name_fields_win_over_full_name():
    row = _one(given_name="Bob", family_name="Jones", full_name="Robert Smith")
    assert (row.std_given_name, row.std_family_name, row.std_name_group) == ("bob", "jones", "robert")


def test_email_columns_hold_list_first_and_user():
    row = _one(emails='["bad@", "Ann.Lee+x@gmail.com", "ann@work.com"]')
    assert row.std_emails == ["annlee@gmail.com", "ann@work.com"]
    assert (row.std_email, row.std_email_user) == ("annlee@gmail.com", "annlee")
    assert row.quality_flags == ["invalid_email"]


def test_phone_region_comes_from_the_record_country():
    row = _one(phones='["020 7946 0018"]', country="United Kingdom")
    assert (row.std_phones, row.std_phone, row.std_country) == (["+442079460018"], "+442079460018", "GB")


def test_phone_region_falls_back_to_default_region():
    frame = pd.DataFrame([_record(phones='["020 7946 0018"]')])
    assert standardize_records(frame, default_region="GB", workers=1).iloc[0].std_phone == "+442079460018"


def test_dob_order_follows_the_record_country():
    us = _one(date_of_birth="03/07/1984", country="USA")
    de = _one(date_of_birth="03/07/1984", country="Deutschland")
    assert (us.std_dob, de.std_dob) == ("1984-03-07", "1984-07-03")


def test_address_columns_are_filled():
    row = _one(street="123 North Main Street, Apt 4B", city="St. Louis", postcode="63101-1234", country="US")
    assert (row.std_street, row.std_house_number, row.std_unit, row.std_city, row.std_postcode) == (
        "n main st", "123", "4b", "saint louis", "63101")


def test_company_suffix_is_stripped():
    assert _one(company="Acme Ltd").std_company == "acme"


def test_placeholders_in_any_field_become_none_with_flags():
    row = _one(given_name="N/A", family_name="unknown", emails='["test@test.com"]',
               phones='["000-000-0000"]', street="-", city="null", postcode="n/a",
               country="none", date_of_birth="N/A", company="n/a")
    assert row[list(STANDARD_COLUMNS[:-1])].map(lambda v: v in (None, [])).all()
    assert row.quality_flags == [
        "placeholder_country", "placeholder_given_name", "placeholder_family_name",
        "placeholder_email", "placeholder_phone", "placeholder_street", "placeholder_city",
        "placeholder_postcode", "placeholder_dob", "placeholder_company",
    ]


def test_unknown_country_is_flagged():
    row = _one(country="Atlantis")
    assert (row.std_country, row.quality_flags) == (None, ["unknown_country"])


def test_row_lists_are_independent_objects():
    frame = pd.DataFrame([_record(emails='["a@b.com"]'), _record(emails='["a@b.com"]')])
    out = standardize_records(frame, workers=1)
    out.std_emails.iloc[0].append("x@y.com")
    assert out.std_emails.iloc[1] == ["a@b.com"]


def test_empty_frame_gives_empty_frame_with_all_columns():
    out = standardize_records(pd.DataFrame([_record()]).iloc[:0], workers=1)
    assert len(out) == 0 and list(out.columns)[-len(STANDARD_COLUMNS):] == list(STANDARD_COLUMNS)


def test_missing_input_columns_are_treated_as_null():
    out = standardize_records(pd.DataFrame({"given_name": ["Ann"]}), workers=1)
    assert (out.iloc[0].std_given_name, out.iloc[0].std_email, out.iloc[0].quality_flags) == ("ann", None, [])


def test_index_is_preserved():
    frame = pd.DataFrame([_record(given_name="Ann")], index=[42])
    assert list(standardize_records(frame, workers=1).index) == [42]


def test_parallel_and_serial_results_are_equal(monkeypatch):
    import accord.standardize.records as records

    monkeypatch.setattr(records, "PARALLEL_MIN_DISTINCT", 2)
    frame = pd.DataFrame([
        _record(record_key=str(i), given_name=f"Ann{i}", phones=json.dumps([f"(415) 555-{i:04d}"]),
                street=f"{i} Main Street", emails=json.dumps([f"a{i}@x.com"]))
        for i in range(40)
    ])
    pd.testing.assert_frame_equal(standardize_records(frame, workers=2), standardize_records(frame, workers=1))


def test_names_in_one_pass_equal_the_per_combination_rows():
    import random

    from accord.standardize.records import _name_row, _name_rows

    rng = random.Random(8)
    givens = ["Ann", "ANNE", " bob ", "Robert", "Dr. Jean-Luc", "N/A", "", None, "José", "B.", "Mary Jane", "unknown"]
    families = ["Lee", "SMITH jr", "O'Brien", "von Trapp", "n/a", "", None, "Müller", "Ng", "-"]
    fulls = ["Ann Lee", "SMITH, Bob", "Dr. Robert Ng III", "", None, "N/A", "Jean-Luc Picard", "Lee"]
    combos = list(dict.fromkeys((rng.choice(givens), rng.choice(families), rng.choice(fulls)) for _ in range(600)))
    got = _name_rows(*[list(c) for c in zip(*combos)])
    assert got == [_name_row(*c) for c in combos]
