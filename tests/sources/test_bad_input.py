"""Bad input: each gets a clear message naming file, line or field, and either quarantine or a refusal
that leaves the store exactly as it was. Every test runs on DuckDB and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from accord.sources import ingest
from accord.sources.mapping import MAX_FIELD_CHARS

FIELDS = {"given_name": "first", "family_name": "last", "emails": ["email"]}
HEADER = "id,first,last,email\n"
GOOD_ROW = "1,Ann,Lee,ann@example.com\n"


def crm(**overrides: Any) -> dict[str, Any]:
    return {"name": "crm", "format": "csv", "path": "crm.csv", "primary_key": "id", "fields": FIELDS, **overrides}


def ingest_one(store, cfg, **kwargs):
    (report,) = ingest(store, cfg, **kwargs)
    return report


@pytest.fixture
def seeded(store, project):
    """A store already holding one good ingest of crm, so a refusal has something to leave unchanged."""
    project.file("crm.csv", HEADER + GOOD_ROW)
    cfg = project.config(crm())
    assert ingest_one(store, cfg).error is None
    return store


def reasons(store) -> list[tuple[int, str]]:
    return store.fetchall("SELECT line, reason FROM quarantine WHERE resolved_at IS NULL ORDER BY line")


# --- quarantined rows ---------------------------------------------------------------------------


def test_ragged_rows_are_quarantined_with_their_field_count(store, project, records):
    project.file("crm.csv", HEADER + GOOD_ROW + "2,Bob,Smith\n" + "3,Cy,Lu,cy@example.com,extra\n")
    cfg = project.config(crm())

    report = ingest_one(store, cfg)

    assert (report.read, report.new, report.quarantined) == (3, 1, 2)
    assert list(records(store, "crm")) == ["1"]
    assert reasons(store) == [(3, "3 fields, expected 4"), (4, "5 fields, expected 4")]


def test_an_unclosed_quote_is_quarantined_and_the_lines_it_swallowed_are_read_again(store, project, records):
    project.file("crm.csv", HEADER + '1,"Ann,Lee,ann@example.com\n' + '2,Bob,Smith,"bob@example.com"\n')
    cfg = project.config(crm())

    report = ingest_one(store, cfg)

    assert (report.read, report.new, report.quarantined) == (2, 1, 1)
    assert list(records(store, "crm")) == ["2"]
    assert reasons(store) == [(2, ("unbalanced quote: a quoted field opened on line 2 does not close before line 3 "
                                   "(2 fields, expected 4); the following lines were read again"))]


def test_an_unclosed_quote_in_the_last_column_does_not_swallow_the_rest_of_the_file(store, project, records):
    project.file("crm.csv", HEADER + '1,Ann,Lee,"ann@example.com\n' + "2,Bob,Smith,bob@example.com\n"
                 + "3,Cy,Lu,cy@example.com\n")
    cfg = project.config(crm())

    report = ingest_one(store, cfg)

    assert (report.read, report.new, report.quarantined) == (3, 2, 1)
    assert records(store, "crm", "emails") == {"2": {"emails": ["bob@example.com"]},
                                               "3": {"emails": ["cy@example.com"]}}
    assert reasons(store) == [(2, ("unbalanced quote: a quoted field opened on line 2 does not close before "
                                   "the end of the file; the following lines were read again"))]


def test_a_carriage_return_inside_an_unquoted_value_is_quarantined_and_later_lines_keep_their_numbers(
        store, project):
    project.file("crm.csv", HEADER + "1,Ann\rMarie,Lee,ann@example.com\n" + "2,Bob\n" + '3,"Cy\rLu",Lu,cy@x\n')
    cfg = project.config(crm())

    report = ingest_one(store, cfg)

    assert (report.read, report.new, report.quarantined) == (3, 1, 2)
    assert reasons(store) == [
        (2, "a carriage return (\\r) inside an unquoted value; quote the value or remove the character"),
        (3, "2 fields, expected 4")]
    assert store.fetchall("SELECT record_key, given_name, source_line FROM source_records") == [("3", "Cy\rLu", 4)]


def test_latin1_bytes_declared_utf8_are_quarantined_with_the_encoding_named(store, project, records):
    project.file("crm.csv", (HEADER + GOOD_ROW + "2,Jürgen,Müller,j@example.com\n").encode("latin-1"))
    cfg = project.config(crm())

    report = ingest_one(store, cfg)

    assert (report.new, report.quarantined) == (1, 1)
    assert reasons(store) == [(3, "not valid utf-8 (set csv.encoding if the file uses another encoding)")]
    assert store.scalar("SELECT raw_text FROM quarantine") == "2,Jürgen,Müller,j@example.com\n"


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column_name(store, project, records):
    project.file("crm.csv", ("\ufeff" + HEADER + GOOD_ROW).encode("utf-8"))
    cfg = project.config(crm())

    report = ingest_one(store, cfg)

    assert (report.error, report.new) == (None, 1)
    assert records(store, "crm", "raw") == {
        "1": {"raw": {"id": "1", "first": "Ann", "last": "Lee", "email": "ann@example.com"}}}


def test_broken_json_lines_are_quarantined_with_line_and_column(store, project, records):
    project.file("shop.jsonl", '{"id": 1, "first": "Ann"}\n'
                               '{"id": 2, "first": "Bob"\n'
                               '[3]\n'
                               '{"id": 4, "first": "Dee"}\n')
    cfg = project.config({"name": "shop", "format": "jsonl", "path": "shop.jsonl", "primary_key": "id",
                          "fields": {"given_name": "first"}})

    report = ingest_one(store, cfg)

    assert (report.read, report.new, report.quarantined) == (4, 2, 2)
    assert list(records(store, "shop")) == ["1", "4"]
    assert store.fetchall("SELECT line, record_key, reason, raw_text FROM quarantine ORDER BY line") == [
        (2, "2", "not valid JSON: Expecting ',' delimiter at column 25", '{"id": 2, "first": "Bob"\n'),
        (3, None, "expected a JSON object, got list", "[3]\n"),
    ]


def test_duplicate_primary_keys_keep_the_first_row_and_quarantine_the_rest(store, project, records):
    project.file("crm.csv", HEADER + GOOD_ROW + "2,Bob,Smith,bob@example.com\n"
                 + "1,Anne,Lee,anne@example.com\n" + "1,Annie,Lee,annie@example.com\n")
    cfg = project.config(crm())

    report = ingest_one(store, cfg)

    assert (report.read, report.new, report.quarantined) == (4, 2, 2)
    assert records(store, "crm", "given_name") == {"1": {"given_name": "Ann"}, "2": {"given_name": "Bob"}}
    assert reasons(store) == [(4, "duplicate primary key 1 (first at line 2)"),
                              (5, "duplicate primary key 1 (first at line 2)")]


def test_a_10_mb_field_is_quarantined_with_its_size_and_the_limit(store, project, records):
    huge = "x" * 10_485_760
    project.file("crm.csv", HEADER + f"1,{huge},Lee,ann@example.com\n" + "2,Bob,Smith,bob@example.com\n")
    cfg = project.config(crm())

    report = ingest_one(store, cfg)

    assert (report.new, report.quarantined) == (1, 1)
    assert list(records(store, "crm")) == ["2"]
    assert reasons(store) == [(2, f"a value is 10485760 characters long; the limit is {MAX_FIELD_CHARS}")]


# --- refusals: the store is left as it was --------------------------------------------------------


def test_a_missing_file_is_refused_naming_the_file(seeded, project, dump):
    cfg = project.config(crm(path="nowhere.csv"))
    before = dump(seeded)

    report = ingest_one(seeded, cfg)

    assert report.error == f"{project.root / 'nowhere.csv'}: no such file (source 'crm', path 'nowhere.csv' in accord.yaml)"
    assert dump(seeded) == before


def test_an_empty_file_is_refused(seeded, project, dump):
    path = project.file("crm.csv", "")
    before = dump(seeded)

    report = ingest_one(seeded, project.config(crm()))

    assert report.error == f"{path}: the file is empty; expected a header row and data rows"
    assert dump(seeded) == before


def test_a_mapping_naming_a_column_the_file_lacks_is_refused_naming_the_column(seeded, project, dump):
    path = project.file("crm.csv", HEADER + GOOD_ROW)
    cfg = project.config(crm(fields={"given_name": "firstname", "emails": ["email"]}))
    before = dump(seeded)

    report = ingest_one(seeded, cfg)

    assert report.error == (f"{path}: column(s) 'firstname' named in the mapping of source 'crm' are not in the "
                            "data; its columns are: id, first, last, email")
    assert dump(seeded) == before


def test_a_column_named_like_one_accord_adds_is_refused(seeded, project, dump):
    path = project.file("crm.csv", "id,first,last,email,_line\n1,Ann,Lee,ann@example.com,7\n")
    before = dump(seeded)

    report = ingest_one(seeded, project.config(crm()))

    assert report.error == (f"{path}: column name(s) '_line' are reserved by Accord; rename them in the data "
                            "(or in the query) of source 'crm'")
    assert dump(seeded) == before


def test_a_parquet_file_with_the_wrong_schema_is_refused_naming_the_column(store, project, dump):
    pq.write_table(pa.table({"id": [1], "name": ["Ann"]}), project.root / "web.parquet")
    cfg = project.config({"name": "web", "format": "parquet", "path": "web.parquet", "primary_key": "id",
                          "fields": {"given_name": "first", "emails": ["email"]}})
    before = dump(store)

    report = ingest_one(store, cfg)

    assert report.error == (f"{project.root / 'web.parquet'}: column(s) 'email', 'first' named in the mapping of "
                            "source 'web' are not in the data; its columns are: id, name")
    assert dump(store) == before


def test_a_file_that_is_not_parquet_is_refused(store, project, dump):
    path = project.file("web.parquet", "id,first\n1,Ann\n")
    cfg = project.config({"name": "web", "format": "parquet", "path": "web.parquet", "primary_key": "id",
                          "fields": {"given_name": "first"}})
    before = dump(store)

    report = ingest_one(store, cfg)

    assert report.error.startswith(f"{path}: not a readable Parquet file: ")
    assert dump(store) == before


def test_an_unreachable_database_is_refused_naming_the_source(seeded, project, dump):
    cfg = project.config({"name": "billing", "format": "sql", "primary_key": "id", "fields": {"given_name": "name"},
                          "sql": {"url": "postgresql://127.0.0.1:1/x", "query": "SELECT 1 AS id"}})
    before = dump(seeded)

    report = ingest_one(seeded, cfg)

    assert report.error.startswith("source 'billing' (sql): cannot reach the database: ")
    assert "127.0.0.1" in report.error and "port 1" in report.error
    assert dump(seeded) == before


def test_a_crash_mid_ingest_leaves_the_store_unchanged(seeded, project, dump, monkeypatch):
    project.file("crm.csv", HEADER + "1,Ann,Lee-Park,ann@example.com\n" + "2,Bob\n" + "3,Cy,Lu,cy@example.com\n")
    cfg = project.config(crm())
    before = dump(seeded)
    real_execute = seeded.execute

    def execute(sql, params=()):
        # After the old version went to history and was deleted, before the new one is written.
        if sql.startswith("INSERT INTO source_records ("):
            raise RuntimeError("disk on fire")
        return real_execute(sql, params)

    monkeypatch.setattr(seeded, "execute", execute)

    with pytest.raises(RuntimeError, match="disk on fire"):
        ingest(seeded, cfg)

    monkeypatch.undo()
    assert dump(seeded) == before
    assert seeded.scalar("SELECT count(*) FROM source_records") == 1


def test_a_failing_source_does_not_stop_the_others(store, project, records):
    project.file("crm.csv", HEADER + GOOD_ROW)
    cfg = project.config(crm(), crm(name="shop", path="missing.csv"))

    crm_report, shop_report = ingest(store, cfg)

    assert (crm_report.error, crm_report.new) == (None, 1)
    assert shop_report.error.endswith("missing.csv: no such file (source 'shop', path 'missing.csv' in accord.yaml)")
    assert list(records(store, "crm")) == ["1"]
