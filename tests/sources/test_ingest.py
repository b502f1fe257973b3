"""Ingestion: readers, canonical mapping, idempotence, history, snapshots and quarantine.

Every test runs on DuckDB and on PostgreSQL (the ``store`` fixture).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from accord.sources import ingest
from accord.sources.quarantine import export_quarantine

PEOPLE_FIELDS = {"given_name": "first", "family_name": "last", "emails": ["email"]}
PEOPLE_CSV = (
    "id,first,last,email\n"
    "1,Ann,Lee,ann@example.com\n"
    "2,Bob,Smith,bob@example.com\n"
)


def crm(**overrides: Any) -> dict[str, Any]:
    """A CSV people source named crm reading crm.csv, keyed on id."""
    return {"name": "crm", "format": "csv", "path": "crm.csv", "primary_key": "id", "fields": PEOPLE_FIELDS,
            **overrides}


def ingest_one(store, cfg, **kwargs):
    (report,) = ingest(store, cfg, **kwargs)
    assert report.error is None, report.error
    return report


def counts(report) -> dict[str, int]:
    return {k: getattr(report, k) for k in ("read", "new", "updated", "unchanged", "deleted", "quarantined")}


# --- readers ------------------------------------------------------------------------------------


def test_csv_with_semicolon_delimiter_and_quoted_fields(store, project, records):
    project.file("crm.csv", 'id;first;last;street\n'
                            '1;"Ann ""Annie""";"Lee; Jr";"1 Main St\nApt 2"\n'
                            '2;Bob;Smith;2 Oak Ave\n')
    cfg = project.config(crm(csv={"delimiter": ";"}, fields={"given_name": "first", "family_name": "last",
                                                             "street": "street"}))

    report = ingest_one(store, cfg)

    assert counts(report) == {"read": 2, "new": 2, "updated": 0, "unchanged": 0, "deleted": 0, "quarantined": 0}
    assert records(store, "crm", "given_name", "family_name", "street", "source_line") == {
        "1": {"given_name": 'Ann "Annie"', "family_name": "Lee; Jr", "street": "1 Main St\nApt 2", "source_line": 2},
        "2": {"given_name": "Bob", "family_name": "Smith", "street": "2 Oak Ave", "source_line": 4},
    }


def test_csv_with_windows_line_endings_reads_values_without_the_carriage_return(store, project, records):
    project.file("crm.csv", "id,first,last,email\r\n1,Ann,Lee,ann@example.com\r\n2,Bob\r\n")
    cfg = project.config(crm())

    report = ingest_one(store, cfg)

    assert (report.new, report.quarantined) == (1, 1)
    assert records(store, "crm", "emails") == {"1": {"emails": ["ann@example.com"]}}
    assert store.fetchall("SELECT line, raw_text FROM quarantine") == [(3, "2,Bob\r\n")]


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1"])
def test_csv_in_a_declared_encoding_is_decoded(store, project, records, encoding):
    project.file("crm.csv", "id,first,last,email\n1,Jürgen,Müller,j@example.com\n", encoding=encoding)
    cfg = project.config(crm(csv={"encoding": encoding}))

    ingest_one(store, cfg)

    assert records(store, "crm") == {"1": {"given_name": "Jürgen", "family_name": "Müller"}}


def test_csv_without_header_takes_column_names_from_csv_columns(store, project, records):
    project.file("crm.csv", "1,Ann,Lee,ann@example.com\n2,Bob,Smith,bob@example.com\n")
    cfg = project.config(crm(csv={"header": False, "columns": ["id", "first", "last", "email"]}))

    report = ingest_one(store, cfg)

    assert report.new == 2
    assert records(store, "crm", "given_name", "source_line") == {
        "1": {"given_name": "Ann", "source_line": 1},
        "2": {"given_name": "Bob", "source_line": 2},
    }


def test_json_lines_values_become_text_and_missing_keys_null(store, project, records):
    project.file("shop.jsonl",
                 '{"id": 7, "first": "Ann", "email": "ann@example.com", "vip": true, "tags": ["a", "b"]}\n'
                 '\n'
                 '{"id": 8, "first": "Bob"}\n')
    cfg = project.config({"name": "shop", "format": "jsonl", "path": "shop.jsonl", "primary_key": "id",
                          "fields": {"given_name": "first", "emails": ["email"], "external_ids": {"vip": "vip"}}})

    report = ingest_one(store, cfg)

    assert counts(report) == {"read": 2, "new": 2, "updated": 0, "unchanged": 0, "deleted": 0, "quarantined": 0}
    assert records(store, "shop", "given_name", "emails", "external_ids", "source_line") == {
        "7": {"given_name": "Ann", "emails": ["ann@example.com"], "external_ids": {"vip": "true"}, "source_line": 1},
        "8": {"given_name": "Bob", "emails": [], "external_ids": {"vip": None}, "source_line": 3},
    }


def test_parquet_columns_of_any_type_are_read_as_text(store, project, records):
    table = pa.table({
        "id": pa.array([1, 2], pa.int64()),
        "first": ["Ann", None],
        "signed_up": pa.array([dt.datetime(2024, 1, 15, 10, 0), None], pa.timestamp("us")),
        "score": [1.5, 2.0],
    })
    pq.write_table(table, project.root / "web.parquet")
    cfg = project.config({"name": "web", "format": "parquet", "path": "web.parquet", "primary_key": "id",
                          "fields": {"given_name": "first", "created_at": "signed_up"}})

    report = ingest_one(store, cfg)

    assert report.new == 2
    assert records(store, "web", "given_name", "source_created_at", "raw", "source_line") == {
        "1": {"given_name": "Ann", "source_created_at": dt.datetime(2024, 1, 15, 10, 0), "source_line": 1,
              "raw": {"id": "1", "first": "Ann", "signed_up": "2024-01-15T10:00:00", "score": "1.5"}},
        "2": {"given_name": None, "source_created_at": None, "source_line": 2,
              "raw": {"id": "2", "first": None, "signed_up": None, "score": "2.0"}},
    }


# --- canonical mapping --------------------------------------------------------------------------


@pytest.mark.parametrize(("transforms", "value", "expected"), [
    (["trim"], "  Ann  ", "Ann"),
    (["lower"], "ANN", "ann"),
    (["upper"], "ann", "ANN"),
    (["title"], "ann MARIE", "Ann Marie"),
    (["digits"], "(415) 555-0101", "4155550101"),
    (["null_if_empty"], "   ", None),
    (["trim", "lower"], "  ANN@Example.COM ", "ann@example.com"),
])
def test_transforms_apply_in_order(store, project, records, transforms, value, expected):
    project.file("crm.csv", f"id,first\n1,{value}\n")
    cfg = project.config(crm(fields={"given_name": {"column": "first", "transforms": transforms}}))

    ingest_one(store, cfg)

    assert records(store, "crm", "given_name") == {"1": {"given_name": expected}}


def test_a_constant_fills_every_row(store, project, records):
    project.file("crm.csv", PEOPLE_CSV)
    cfg = project.config(crm(fields={**PEOPLE_FIELDS, "country": {"constant": "US"}}))

    ingest_one(store, cfg)

    assert records(store, "crm", "country") == {"1": {"country": "US"}, "2": {"country": "US"}}


def test_date_format_stores_the_date_as_iso_8601(store, project, records):
    project.file("crm.csv", "id,dob\n1,07/03/1984\n2,\n")
    cfg = project.config(crm(fields={"date_of_birth": {"column": "dob", "date_format": "%d/%m/%Y"}}))

    ingest_one(store, cfg)

    assert records(store, "crm", "date_of_birth") == {"1": {"date_of_birth": "1984-03-07"},
                                                       "2": {"date_of_birth": None}}


def test_a_value_not_matching_date_format_quarantines_its_row(store, project, records, open_quarantine):
    project.file("crm.csv", "id,dob\n1,1984-03-07\n2,07/03/1984\n")
    cfg = project.config(crm(fields={"date_of_birth": {"column": "dob", "date_format": "%d/%m/%Y"}}))

    report = ingest_one(store, cfg)

    assert (report.new, report.quarantined) == (1, 1)
    assert list(records(store, "crm")) == ["2"]
    assert [(q["line"], q["record_key"], q["reason"]) for q in open_quarantine(store, "crm")] == [
        (2, "1", "date_of_birth: 1984-03-07 does not match date format %d/%m/%Y")]


def test_on_error_keep_row_stores_the_row_with_the_value_empty(store, project, records):
    project.file("crm.csv", "id,dob\n1,1984-03-07\n")
    cfg = project.config(crm(fields={"date_of_birth": {"column": "dob", "date_format": "%d/%m/%Y",
                                                       "on_error": "keep_row"}}))

    report = ingest_one(store, cfg)

    assert (report.new, report.quarantined) == (1, 0)
    assert records(store, "crm", "date_of_birth") == {"1": {"date_of_birth": None}}


def test_split_given_family_takes_the_first_word_as_given_name(store, project, records):
    project.file("crm.csv", "id,name\n1,Ann Marie Lee\n2,Cher\n")
    cfg = project.config(crm(fields={"full_name": {"column": "name", "split": "given family"}}))

    ingest_one(store, cfg)

    assert records(store, "crm", "full_name", "given_name", "family_name") == {
        "1": {"full_name": "Ann Marie Lee", "given_name": "Ann", "family_name": "Marie Lee"},
        "2": {"full_name": "Cher", "given_name": "Cher", "family_name": None},
    }


def test_split_family_comma_given_splits_at_the_comma(store, project, records):
    project.file("crm.csv", 'id,name\n1,"Lee, Ann Marie"\n')
    cfg = project.config(crm(fields={"full_name": {"column": "name", "split": "family, given"}}))

    ingest_one(store, cfg)

    assert records(store, "crm", "given_name", "family_name") == {
        "1": {"given_name": "Ann Marie", "family_name": "Lee"}}


def test_split_does_not_replace_a_mapped_given_name(store, project, records):
    project.file("crm.csv", "id,first,name\n1,Annie,Ann Lee\n2,,Bob Smith\n")
    cfg = project.config(crm(fields={"given_name": {"column": "first", "transforms": ["null_if_empty"]},
                                     "full_name": {"column": "name", "split": "given family"}}))

    ingest_one(store, cfg)

    assert records(store, "crm", "given_name", "family_name") == {
        "1": {"given_name": "Annie", "family_name": "Lee"},
        "2": {"given_name": "Bob", "family_name": "Smith"},
    }


def test_emails_and_phones_are_lists_without_empty_values(store, project, records):
    project.file("crm.csv", "id,email,email2,phone\n1,ann@example.com, ,415-555-0101\n2,,,\n")
    cfg = project.config(crm(fields={"emails": ["email", "email2"],
                                     "phones": [{"column": "phone", "transforms": ["digits"]}]}))

    ingest_one(store, cfg)

    assert records(store, "crm", "emails", "phones") == {
        "1": {"emails": ["ann@example.com"], "phones": ["4155550101"]},
        "2": {"emails": [], "phones": []},
    }


def test_external_ids_and_consent_are_maps_by_name(store, project, records):
    project.file("crm.csv", "id,first,loyalty,opt_in\n1,Ann,L-77,yes\n2,Bob,,no\n")
    cfg = project.config(crm(fields={"given_name": "first",
                                     "external_ids": {"crm_id": "id", "loyalty": "loyalty"},
                                     "consent": {"email_marketing": "opt_in", "sms": {"constant": "unknown"}}}))

    ingest_one(store, cfg)

    assert records(store, "crm", "external_ids", "consent") == {
        "1": {"external_ids": {"crm_id": "1", "loyalty": "L-77"},
              "consent": {"email_marketing": "yes", "sms": "unknown"}},
        "2": {"external_ids": {"crm_id": "2", "loyalty": None},
              "consent": {"email_marketing": "no", "sms": "unknown"}},
    }


def test_created_and_updated_at_parse_iso_8601_into_utc(store, project, records):
    project.file("crm.csv", "id,created,updated\n"
                            "1,2024-01-15T10:00:00Z,2024-01-15T10:00:00+02:00\n"
                            "2,2024-01-15,\n")
    cfg = project.config(crm(fields={"created_at": "created", "updated_at": "updated"}))

    ingest_one(store, cfg)

    assert records(store, "crm", "source_created_at", "source_updated_at") == {
        "1": {"source_created_at": dt.datetime(2024, 1, 15, 10, 0), "source_updated_at": dt.datetime(2024, 1, 15, 8, 0)},
        "2": {"source_created_at": dt.datetime(2024, 1, 15, 0, 0), "source_updated_at": None},
    }


def test_a_time_that_is_not_iso_8601_quarantines_its_row(store, project, open_quarantine):
    project.file("crm.csv", "id,created\n1,15/01/2024\n")
    cfg = project.config(crm(fields={"created_at": "created"}))

    ingest_one(store, cfg)

    assert [q["reason"] for q in open_quarantine(store, "crm")] == [
        "created_at: 15/01/2024 is not an ISO 8601 time (set date_format)"]


def test_the_raw_row_is_kept_whole_including_unmapped_columns(store, project, records):
    project.file("crm.csv", "id,first,last,email,notes\n1, Ann ,Lee,ann@example.com,likes tea\n")
    cfg = project.config(crm())

    ingest_one(store, cfg)

    assert records(store, "crm", "raw")["1"]["raw"] == {
        "id": "1", "first": " Ann ", "last": "Lee", "email": "ann@example.com", "notes": "likes tea"}


def test_columns_starting_with_an_underscore_are_data_like_any_other(store, project, records):
    project.file("crm.csv", "_id,first,_rev\nA1,Ann,3\n")
    cfg = project.config(crm(primary_key="_id", fields={"given_name": "first", "external_ids": {"mongo": "_id"}}))

    ingest_one(store, cfg)

    assert records(store, "crm", "raw", "external_ids") == {
        "A1": {"raw": {"_id": "A1", "first": "Ann", "_rev": "3"}, "external_ids": {"mongo": "A1"}}}


def test_each_record_names_its_file_line_and_run(store, project):
    path = project.file("crm.csv", PEOPLE_CSV)
    cfg = project.config(crm())

    ingest(store, cfg, run_id="run_test")

    assert store.fetchall("SELECT record_key, source_file, source_line, run_id FROM source_records ORDER BY 1") == [
        ("1", str(path), 2, "run_test"), ("2", str(path), 3, "run_test")]


def test_a_composite_primary_key_joins_its_parts_with_a_bar(store, project, records):
    project.file("crm.csv", "region,id,first\neu,1,Ann\nus,1,Bob\n")
    cfg = project.config(crm(primary_key=["region", "id"], fields={"given_name": "first"}))

    ingest_one(store, cfg)

    assert records(store, "crm", "given_name") == {"eu|1": {"given_name": "Ann"}, "us|1": {"given_name": "Bob"}}


def test_an_events_source_writes_events_keyed_by_source_and_primary_key(store, project):
    project.file("orders.csv", "order_id,email,at,total\n"
                               "o1,ann@example.com,2024-05-01T12:00:00Z,19.90\n"
                               "o2,,2024-05-02T12:00:00Z,5\n")
    cfg = project.config({"name": "orders", "format": "csv", "path": "orders.csv", "kind": "events",
                          "primary_key": "order_id",
                          "events": {"event": {"constant": "Order Completed"}, "timestamp": "at",
                                     "identity_type": "email", "identity": "email", "revenue": "total"}})

    report = ingest_one(store, cfg)

    assert (report.new, report.quarantined) == (1, 1)
    assert store.fetchall("SELECT event_id, type, event, ts, identity_type, identity_value, revenue FROM events") == [
        ("orders:o1", "track", "Order Completed", dt.datetime(2024, 5, 1, 12, 0), "email", "ann@example.com", 19.9)]
    assert store.fetchall("SELECT line, reason FROM quarantine") == [(3, "events.identity: missing")]


# --- idempotence, history, snapshots --------------------------------------------------------------


def test_reingesting_the_same_input_changes_nothing(store, project, dump):
    project.file("crm.csv", PEOPLE_CSV + "3,Cy\n" + "4,Dee,Ng,dee@example.com\n")
    cfg = project.config(crm(snapshot="full"))
    ingest_one(store, cfg)
    before = dump(store)

    report = ingest_one(store, cfg)

    assert counts(report) == {"read": 4, "new": 0, "updated": 0, "unchanged": 3, "deleted": 0, "quarantined": 1}
    assert dump(store) == before


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_reingesting_the_same_json_lines_or_parquet_changes_nothing(store, project, dump, fmt):
    if fmt == "jsonl":
        project.file("web.jsonl", '{"id": 1, "first": "Ann"}\n{"id": 2, "first": "Bob"}\n{"id": 3\n')
    else:
        pq.write_table(pa.table({"id": [1, 2], "first": ["Ann", "Bob"]}), project.root / "web.parquet")
    cfg = project.config({"name": "web", "format": fmt, "path": f"web.{fmt}", "primary_key": "id",
                          "snapshot": "full", "fields": {"given_name": "first"}})
    ingest_one(store, cfg)
    before = dump(store)

    report = ingest_one(store, cfg)

    assert (report.new, report.updated, report.unchanged, report.deleted) == (0, 0, 2, 0)
    assert dump(store) == before


def test_a_changed_row_is_updated_and_its_previous_version_kept_in_history(store, project, records):
    project.file("crm.csv", PEOPLE_CSV)
    cfg = project.config(crm())
    ingest_one(store, cfg, run_id="run_1")
    first_seen = store.scalar("SELECT valid_from FROM source_records WHERE record_key = '1'")
    project.file("crm.csv", PEOPLE_CSV.replace("Ann,Lee", "Ann,Lee-Park"))

    report = ingest_one(store, cfg, run_id="run_2")

    assert (report.new, report.updated, report.unchanged) == (0, 1, 1)
    assert records(store, "crm", "family_name", "run_id") == {
        "1": {"family_name": "Lee-Park", "run_id": "run_2"}, "2": {"family_name": "Smith", "run_id": "run_1"}}
    valid_from = store.scalar("SELECT valid_from FROM source_records WHERE record_key = '1'")
    assert store.fetchall(
        "SELECT record_key, family_name, run_id, first_seen_at, valid_from, valid_to FROM source_records_history"
    ) == [("1", "Lee", "run_1", first_seen, first_seen, valid_from)]
    assert valid_from > first_seen
    assert store.scalar("SELECT first_seen_at FROM source_records WHERE record_key = '1'") == first_seen


def test_a_row_missing_from_a_full_snapshot_is_marked_deleted_not_forgotten(store, project, records):
    project.file("crm.csv", PEOPLE_CSV)
    cfg = project.config(crm(snapshot="full"))
    ingest_one(store, cfg)
    project.file("crm.csv", "id,first,last,email\n2,Bob,Smith,bob@example.com\n")

    report = ingest_one(store, cfg)

    assert (report.deleted, report.unchanged) == (1, 1)
    deleted = store.fetchall("SELECT record_key, given_name, deleted_at IS NOT NULL FROM source_records ORDER BY 1")
    assert deleted == [("1", "Ann", True), ("2", "Bob", False)]


def test_a_row_reappearing_in_a_full_snapshot_is_restored(store, project):
    project.file("crm.csv", PEOPLE_CSV)
    cfg = project.config(crm(snapshot="full"))
    ingest_one(store, cfg)
    project.file("crm.csv", "id,first,last,email\n2,Bob,Smith,bob@example.com\n")
    ingest_one(store, cfg)
    project.file("crm.csv", PEOPLE_CSV)

    report = ingest_one(store, cfg)

    assert (report.updated, report.unchanged, report.deleted) == (1, 1, 0)
    assert store.fetchall("SELECT record_key, deleted_at FROM source_records ORDER BY 1") == [("1", None), ("2", None)]
    assert store.fetchall("SELECT record_key, deleted_at IS NOT NULL FROM source_records_history") == [("1", True)]


def test_an_incremental_source_never_deletes_missing_rows(store, project):
    project.file("crm.csv", PEOPLE_CSV)
    cfg = project.config(crm(snapshot="incremental"))
    ingest_one(store, cfg)
    project.file("crm.csv", "id,first,last,email\n3,Cy,Lu,cy@example.com\n")

    report = ingest_one(store, cfg)

    assert (report.new, report.deleted) == (1, 0)
    assert store.fetchall("SELECT record_key, deleted_at FROM source_records ORDER BY 1") == [
        ("1", None), ("2", None), ("3", None)]


def test_a_header_only_full_snapshot_is_refused(store, project, dump):
    project.file("crm.csv", PEOPLE_CSV)
    cfg = project.config(crm(snapshot="full"))
    ingest_one(store, cfg)
    path = project.file("crm.csv", "id,first,last,email\n")
    before = dump(store)

    (report,) = ingest(store, cfg)

    assert report.error == (
        f"{path}: no valid rows, and source 'crm' is a full snapshot: ingesting it would mark all 2 records "
        "deleted. Fix the file, or pass --allow-empty-snapshot.")
    assert dump(store) == before


def test_allow_empty_snapshot_marks_every_record_deleted(store, project):
    project.file("crm.csv", PEOPLE_CSV)
    cfg = project.config(crm(snapshot="full"))
    ingest_one(store, cfg)
    project.file("crm.csv", "id,first,last,email\n")

    report = ingest_one(store, cfg, allow_empty_snapshot=True)

    assert report.deleted == 2
    assert store.scalar("SELECT count(*) FROM source_records WHERE deleted_at IS NOT NULL") == 2


def test_a_quarantined_row_in_a_full_snapshot_keeps_its_record(store, project):
    project.file("crm.csv", "id,first,dob\n1,Ann,1984-03-07\n2,Bob,1979-11-23\n")
    cfg = project.config(crm(snapshot="full", fields={"given_name": "first",
                                                      "date_of_birth": {"column": "dob", "date_format": "%Y-%m-%d"}}))
    ingest_one(store, cfg)
    project.file("crm.csv", "id,first,dob\n1,Ann,07/03/1984\n2,Bob,1979-11-23\n")

    report = ingest_one(store, cfg)

    assert (report.deleted, report.quarantined) == (0, 1)
    assert store.fetchall("SELECT record_key, date_of_birth, deleted_at FROM source_records ORDER BY 1") == [
        ("1", "1984-03-07", None), ("2", "1979-11-23", None)]


# --- nothing dropped: stored or quarantined ------------------------------------------------------


MIXED_CSV = (
    "id,first,last,email,dob\n"
    "1,Ann,Lee,ann@example.com,1984-03-07\n"
    "2,Bob,Smith\n"                                  # too few fields
    "3,Cy,Lu,cy@example.com,03/07/1984\n"            # date does not match
    ",Dee,Ng,dee@example.com,1990-01-01\n"           # empty primary key
    "1,Ann,Lee,ann@example.org,1984-03-07\n"         # duplicate key
    "5,Eve,Ra,eve@example.com,1991-02-02,extra\n"    # too many fields
    "6,Fay,Wu,fay@example.com,\n"
)
MIXED_FIELDS = {**PEOPLE_FIELDS, "date_of_birth": {"column": "dob", "date_format": "%Y-%m-%d"}}


def test_every_input_row_is_stored_or_quarantined(store, project):
    project.file("crm.csv", MIXED_CSV)
    cfg = project.config(crm(fields=MIXED_FIELDS))

    report = ingest_one(store, cfg)

    stored = store.scalar("SELECT count(*) FROM source_records")
    quarantined = store.scalar("SELECT count(*) FROM quarantine WHERE resolved_at IS NULL")
    assert (report.read, report.new, report.quarantined) == (7, 2, 5)
    assert report.read == stored + quarantined


def test_quarantine_keeps_reason_file_line_and_raw_text(store, project, open_quarantine):
    path = project.file("crm.csv", MIXED_CSV)
    cfg = project.config(crm(fields=MIXED_FIELDS))

    ingest_one(store, cfg)

    assert open_quarantine(store, "crm") == [
        {"file": str(path), "line": 3, "record_key": "2", "reason": "3 fields, expected 5",
         "raw_text": "2,Bob,Smith\n"},
        {"file": str(path), "line": 4, "record_key": "3",
         "reason": "date_of_birth: 03/07/1984 does not match date format %Y-%m-%d",
         "raw_text": "3,Cy,Lu,cy@example.com,03/07/1984\n"},
        {"file": str(path), "line": 5, "record_key": None, "reason": "primary key (id) is empty",
         "raw_text": ",Dee,Ng,dee@example.com,1990-01-01\n"},
        {"file": str(path), "line": 6, "record_key": "1", "reason": "duplicate primary key 1 (first at line 2)",
         "raw_text": "1,Ann,Lee,ann@example.org,1984-03-07\n"},
        {"file": str(path), "line": 7, "record_key": "5", "reason": "6 fields, expected 5",
         "raw_text": "5,Eve,Ra,eve@example.com,1991-02-02,extra\n"},
    ]


def test_identical_bad_rows_are_each_quarantined(store, project):
    project.file("crm.csv", "id,first,last,email\n1,Ann\n1,Ann\n")
    cfg = project.config(crm())

    report = ingest_one(store, cfg)

    assert report.quarantined == 2
    assert store.fetchall("SELECT line FROM quarantine ORDER BY line") == [(2,), (3,)]


def test_a_quarantined_row_fixed_and_ingested_again_is_resolved_and_stored(store, project, records):
    project.file("crm.csv", "id,first,last,email\n1,Ann,Lee,ann@example.com\n2,Bob,Smith\n")
    cfg = project.config(crm(snapshot="full"))
    ingest_one(store, cfg, run_id="run_1")
    exported = project.root / "fix.csv"
    assert export_quarantine(store, cfg, cfg.source("crm"), exported) == 1
    assert exported.read_text() == "id,first,last,email\n2,Bob,Smith\n"
    exported.write_text("id,first,last,email\n2,Bob,Smith,bob@example.com\n")

    report = ingest_one(store, cfg, path_override=exported, run_id="run_2")

    assert counts(report) == {"read": 1, "new": 1, "updated": 0, "unchanged": 0, "deleted": 0, "quarantined": 0}
    assert records(store, "crm", "emails") == {"1": {"emails": ["ann@example.com"]},
                                               "2": {"emails": ["bob@example.com"]}}
    assert store.fetchall("SELECT line, resolved_at IS NOT NULL, resolution FROM quarantine") == [
        (3, True, "stored by run_2")]


def test_a_row_quarantined_again_for_the_same_reason_is_not_duplicated(store, project):
    project.file("crm.csv", "id,first,last,email\n1,Ann\n")
    cfg = project.config(crm())
    ingest_one(store, cfg, run_id="run_1")

    ingest_one(store, cfg, run_id="run_2")

    assert store.fetchall("SELECT line, first_run_id, last_run_id FROM quarantine") == [(2, "run_1", "run_1")]


def test_a_bad_row_gone_from_a_full_snapshot_is_resolved(store, project):
    project.file("crm.csv", PEOPLE_CSV + "3,Cy\n")
    cfg = project.config(crm(snapshot="full"))
    ingest_one(store, cfg, run_id="run_1")
    project.file("crm.csv", PEOPLE_CSV)

    ingest_one(store, cfg, run_id="run_2")

    assert store.fetchall("SELECT resolved_at IS NOT NULL, resolution FROM quarantine") == [
        (True, "not in the full read of run_2")]


def test_a_changed_mapping_maps_every_row_again(store, project, records):
    project.file("crm.csv", PEOPLE_CSV)
    ingest_one(store, project.config(crm()), run_id="run_1")
    fields = {**PEOPLE_FIELDS, "family_name": {"column": "last", "transforms": ["upper"]}}

    report = ingest_one(store, project.config(crm(fields=fields)), run_id="run_2")

    assert (report.new, report.updated, report.unchanged) == (0, 2, 0)
    assert records(store, "crm", "family_name") == {"1": {"family_name": "LEE"}, "2": {"family_name": "SMITH"}}


def test_unchanged_rows_are_counted_once_with_a_duplicate_key_after_them(store, project, records):
    project.file("crm.csv", PEOPLE_CSV)
    cfg = project.config(crm())
    ingest_one(store, cfg)
    project.file("crm.csv", PEOPLE_CSV + "1,Ann,Other,ann@example.com\n")

    report = ingest_one(store, cfg)

    assert counts(report) == {"read": 3, "new": 0, "updated": 0, "unchanged": 2, "deleted": 0, "quarantined": 1}
    assert records(store, "crm", "family_name") == {"1": {"family_name": "Lee"}, "2": {"family_name": "Smith"}}
