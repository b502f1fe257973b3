"""One record standardized without a frame (``standardize_record``, ``prepare_record``) gives exactly the
row the frame path (``standardize_records``, ``prepare``) gives: every std column, value and type.

The real-time identify path standardizes one record at a time and must agree with the batch path that
resolved every stored record, or the same person would standardize two ways.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pandas as pd
import pytest

from accord.config import load_config
from accord.identity.stage import load_records, prepare, prepare_record
from accord.sources import ingest
from accord.standardize import STANDARD_COLUMNS, standardize_records
from accord.standardize.records import INPUT_COLUMNS, standardize_record
from accord.store import open_store
from accord.synth import VariationRates, generate

# Messier than the default rates: more junk, missing fields, initials, typos and case changes.
MESSY_RATES = VariationRates(junk=0.1, missing_field=0.15, mixed_case=0.1, initial=0.05, typo=0.05,
                             phone_format=0.5, postcode_format=0.2, date_format=0.2, address_format=0.3)


def _normalized(value: Any) -> Any:
    """NaN as None (a frame may hold either for null); everything else as it is, lists as lists."""
    return None if isinstance(value, float) and math.isnan(value) else value


def _mismatches(records: list[dict[str, Any]], batch: pd.DataFrame,
                single: list[dict[str, Any]]) -> list[tuple[int, str, Any, Any]]:
    """(row, column, one-record value, frame value) wherever the two differ in value or type."""
    out = []
    for i, (row, got) in enumerate(zip(batch[list(STANDARD_COLUMNS)].to_dict("records"), single)):
        for column in STANDARD_COLUMNS:
            want, have = _normalized(row[column]), _normalized(got[column])
            if type(have) is not type(want) or have != want:
                out.append((i, column, have, want))
        for key, value in records[i].items():  # the record's own keys pass through unchanged
            if got[key] is not value and not (_normalized(got[key]) is None and _normalized(value) is None):
                out.append((i, key, got[key], value))
    return out


def _assert_prepare_agrees(records: list[dict[str, Any]], default_region: str) -> None:
    batch = prepare(pd.DataFrame(records), default_region)
    single = [prepare_record(record, default_region) for record in records]
    assert _mismatches(records, batch, single)[:20] == []


# --- generated sample data, as ingested into source_records ---------------------------------------

@pytest.fixture(scope="module")
def sample_records(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Every current record of a messy generated sample (crm, shop, pos, support), as
    ``load_records`` reads them: JSON text lists, full names only in some sources, four countries."""
    folder = tmp_path_factory.mktemp("synth")
    generate(folder, people=1500, seed=17, rates=MESSY_RATES)
    store = open_store(f"duckdb:///{folder / 'accord.duckdb'}")
    try:
        ingest(store, load_config(folder / "accord.yaml"), names=["crm", "shop", "pos", "support"], run_id="run_1")
        frame = load_records(store)
    finally:
        store.close()
    return frame.to_dict("records")


def test_the_sample_is_large_and_varied(sample_records):
    frame = pd.DataFrame(sample_records)
    std = standardize_records(frame, workers=1)
    flags = {flag for flags in std.quality_flags for flag in flags}
    assert len(frame) > 2500
    assert set(frame.source) == {"crm", "shop", "pos", "support"}
    assert {"placeholder_email", "placeholder_phone", "invalid_phone"} <= flags
    assert {"US", "GB", "DE", "FR"} <= set(std.std_country)
    assert frame.full_name.isna().any() and frame.full_name.notna().any()
    assert frame.emails.isna().any() and frame.phones.isna().any()


@pytest.mark.parametrize("default_region", ["US", "DE"])
def test_every_sample_record_prepares_as_its_row_of_the_frame(sample_records, default_region):
    _assert_prepare_agrees(sample_records, default_region)


# --- hand-picked messy values, combined at random --------------------------------------------------

VALUES: dict[str, list[Any]] = {
    "given_name": ["Ann", "ANNE", " bob ", "Robert", "Bob", "Bill", "Peggy", "Dr. Jean-Luc", "N/A", "", "  ",
                   None, math.nan, "José", "B.", "J", "Mary Jane", "unknown", "test", "Zoë", "o'neil", "nan"],
    "family_name": ["Lee", "SMITH jr", "O'Brien", "von Trapp", "n/a", "", None, math.nan, "Müller", "Ng", "-",
                    "Smith-Jones", "de la Cruz", "MCDONALD", "Garcia III", "Nguyễn"],
    "full_name": ["Ann Lee", "SMITH, Bob", "Dr. Robert Ng III", "", None, "N/A", "Jean-Luc Picard", "Lee",
                  "Bill Gates", "Ms. Mary-Jane Watson-Parker", "Peggy  Sue", "unknown", "MÜLLER, Jürgen",
                  "Liz", "van der Berg, Anneke", "-"],
    "emails": [None, "", "[]", '["Ann.Lee+x@gmail.com"]', '["a.b.c@googlemail.com", "ABC@gmail.com"]',
               '["test@test.com"]', '["bad@", "x@y.com"]', "plain@example.org", "Bob.Smith@Yahoo.com",
               '["bob-shopping@yahoo.com"]', '["noreply@foo.com"]', "N/A",
               '["user+tag@outlook.com","user@outlook.com"]', "not json [", '["a@b.co.uk", null]', "[1, 2]",
               ' ["x@y.com"] ', "a@b.com, c@d.com", '["caf\\u00e9@x.com"]', '["  Mixed.Case@Hotmail.FR "]',
               '["none@none.com", "real.person@web.de"]'],
    "phones": [None, "", "[]", '["(415) 555-2671"]', '["415.555.2671 x123"]', '["000-000-0000"]',
               '["1234567890"]', '["+44 20 7946 0018"]', '["020 7946 0018"]', '["030 12345678"]',
               '["+49 30 12345678"]', '["01 23 45 67 89"]', '["06 12 34 56 78"]', '["+33 6 12 34 56 78"]',
               "555-1234", "n/a", '["abc"]', '["+1 (212) 555-0123", "212-555-0123"]',
               '["+ 44 20 7946 0018"]', '["11 2345-6789"]', '["011 15 2345-6789"]', '["03-1234-5678"]',
               '["tel: 4155552671"]', '["\\t415 555 2671"]', '["+1 415 555 2671", "not a phone"]',
               '["٤١٥٥٥٥٢٦٧١"]', '["0000000"]', '["98765432"]', "(415) 555-2671", '["07700 900123"]',
               '["+61 2 9374 4000"]', '["0151 97819499"]', '["01.77.04.10.21"]', '[4155552671]'],
    "street": [None, "", "123 North Main Street, Apt 4B", "-", "Sonnenstraße 11", "10 Downing St", "PO Box 12",
               "1600 Pennsylvania Ave NW Suite 200", "12 rue de la Paix", "n/a", "Flat 3, 22 Baker Street",
               "Birkenweg 186", "  42 elm st.  "],
    "city": [None, "", "St. Louis", "null", "München", "NEW YORK", "Saint-Étienne", "London", "unknown",
             "Ft. Worth", "  paris "],
    "region": [None, "CA", "Bavaria", "n/a"],
    "postcode": [None, "", "63101-1234", "n/a", "sw1a 1aa", "SW1A1AA", "10115", "D-10115", "F-75001", "2134",
                 "75001", "abc", "ZZ99 9ZZ", "H2X 1Y4", "12345678", "02134", "0"],
    "country": [None, "", "US", "USA", "United States", "United Kingdom", "GB", "UK", "Deutschland", "DE",
                "France", "fr", "Brazil", "Argentina", "Japan", "Canada", "Australia", "Atlantis", "none", "n/a",
                "Philippines", "Puerto Rico", " germany "],
    "date_of_birth": [None, "", "03/07/1984", "1984-03-07", "7 March 1984", "March 7, 1984", "19840307", "N/A",
                      "1900-01-01", "0000-00-00", "31/02/1990", "2099-01-01", "12.11.85", "yesterday",
                      "13/01/2001", "01/13/2001", "1984-03-07T00:00:00", "5th of May 1990"],
    "company": [None, "", "Acme Ltd", "n/a", "ACME, Inc.", "Müller GmbH", "The Widget Co", "-", "IBM"],
}


def _messy_records(count: int, seed: int) -> list[dict[str, Any]]:
    """Records whose every field is drawn from ``VALUES``, with pass-through keys beside them."""
    rng = random.Random(seed)
    records = []
    for i in range(count):
        record = {"source": rng.choice(["crm", "shop"]), "record_key": str(i)}
        record.update({name: rng.choice(options) for name, options in VALUES.items()})
        record.update(rid=f"{record['source']}:{i}", row_hash=f"h{i}",
                      external_ids=json.dumps({"crm_contact_id": str(i)}), consent='{"email_marketing": true}')
        records.append(record)
    return records


@pytest.mark.parametrize("default_region", ["US", "GB", "fr"])
def test_messy_records_prepare_as_their_rows_of_the_frame(default_region):
    _assert_prepare_agrees(_messy_records(2500, seed=3), default_region)


def test_messy_records_standardize_as_their_rows_of_the_frame():
    records = _messy_records(800, seed=4)
    batch = standardize_records(pd.DataFrame(records), "US", workers=1)
    single = [standardize_record(record, "US") for record in records]
    assert _mismatches(records, batch, single)[:20] == []
    assert list(single[0]) == list(batch.columns)


def test_a_record_lacking_input_keys_treats_them_as_null_as_a_frame_lacking_the_columns_does():
    records = [{"given_name": "Ann", "phones": '["020 7946 0018"]', "country": "UK"},
               {"given_name": None, "phones": '["000-000-0000"]', "country": "Atlantis"}]
    batch = prepare(pd.DataFrame(records), "US")
    single = [prepare_record(record, "US") for record in records]
    assert not set(INPUT_COLUMNS) <= set(batch.columns)
    assert _mismatches(records, batch, single) == []
    assert list(single[0]) == list(batch.columns)


def test_the_comparison_notices_a_changed_value_and_a_tuple_for_a_list():
    records = _messy_records(3, seed=5)
    batch = prepare(pd.DataFrame(records), "US")
    single = [prepare_record(record, "US") for record in records]
    single[1] = {**single[1], "std_city": "elsewhere", "quality_flags": tuple(single[1]["quality_flags"])}
    assert [(row, column) for row, column, _, _ in _mismatches(records, batch, single)] == [
        (1, "std_city"), (1, "quality_flags")]


# --- written out by hand ---------------------------------------------------------------------------

def test_a_uk_record_with_a_full_name_only_tagged_emails_and_a_junk_phone():
    record = {
        "source": "shop", "record_key": "42", "rid": "shop:42", "row_hash": "abc",
        "given_name": None, "family_name": "", "full_name": "SMITH, Robert",
        "emails": '["Rob.Smith+promo@gmail.com", "robsmith@gmail.com", "bad@"]',
        "phones": '["020 7946 0018 ext. 12", "000-000-0000"]',
        "street": "Flat 3, 22 Baker Street", "city": "London", "region": None, "postcode": "nw1 6xe",
        "country": "United Kingdom", "date_of_birth": "03/07/1984", "company": "Acme Ltd",
        "external_ids": '{"shop_customer_id": "42"}',
    }
    got = prepare_record(record, "US")
    assert {key: got[key] for key in record} == record
    assert got["std_given_name"] == "robert" and got["std_family_name"] == "smith"
    assert got["std_emails"] == ["robsmith@gmail.com"] and got["std_email_user"] == "robsmith"
    assert got["std_phones"] == ["+442079460018"]
    assert got["std_country"] == "GB"
    assert got["std_dob"] == "1984-07-03"  # day first: the record's country, not the default US
    assert got["quality_flags"] == ["invalid_email", "placeholder_phone"]
    assert _mismatches([record], prepare(pd.DataFrame([record]), "US"), [got]) == []


def test_an_empty_record_gives_nulls_and_no_flags():
    record = {"source": "crm", "record_key": "1", "emails": "[]", "phones": None}
    got = prepare_record(record, "US")
    assert {column: got[column] for column in STANDARD_COLUMNS} == {
        **dict.fromkeys(STANDARD_COLUMNS), "quality_flags": []}
    assert _mismatches([record], prepare(pd.DataFrame([record]), "US"), [got]) == []


def test_standardize_record_keeps_empty_lists_that_prepare_record_makes_null():
    record = {"source": "crm", "record_key": "1", "emails": '["test@test.com"]', "phones": "[]"}
    std = standardize_record(record)
    assert (std["std_emails"], std["std_phones"], std["quality_flags"]) == ([], [], ["placeholder_email"])
    assert (prepare_record(record, "US")["std_emails"], prepare_record(record, "US")["std_phones"]) == (None, None)


def test_each_record_gets_lists_of_its_own():
    record = {"source": "crm", "record_key": "1", "emails": '["a@b.com"]', "phones": '["(415) 555-2671"]'}
    first, second = standardize_record(record), standardize_record(record)
    first["std_emails"].append("x@y.com")
    first["quality_flags"].append("edited")
    assert (second["std_emails"], second["quality_flags"]) == (["a@b.com"], [])
