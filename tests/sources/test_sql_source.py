"""A SQL query as a source: the local PostgreSQL plays the source system (a throwaway schema in
database ``test``). The Accord store runs on DuckDB and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from accord.sources import ingest

SOURCE_DB = os.environ.get("ACCORD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


class SourceSystem:
    def __init__(self, conn: psycopg.Connection, schema: str):
        self.conn = conn
        self.schema = schema

    def run(self, sql: str) -> None:
        self.conn.execute(sql.replace("{schema}", self.schema))


@pytest.fixture
def billing() -> Iterator[SourceSystem]:
    """A customers table with the column types a real source system has."""
    schema = f"src_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(SOURCE_DB, autocommit=True) as conn:
        system = SourceSystem(conn, schema)
        system.run("CREATE SCHEMA {schema}")
        system.run("""
            CREATE TABLE {schema}.customers (
                id INTEGER PRIMARY KEY,
                name TEXT,
                email TEXT,
                balance NUMERIC(10, 2),
                account UUID,
                active BOOLEAN,
                joined TIMESTAMPTZ,
                born DATE
            )""")
        system.run("""
            INSERT INTO {schema}.customers VALUES
            (1, 'Ann Lee', 'ann@example.com', 12.50, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', true,
             '2024-01-15 12:00:00+02', '1984-03-07'),
            (2, 'Bob Smith', NULL, NULL, NULL, NULL, NULL, NULL)""")
        try:
            yield system
        finally:
            system.run("DROP SCHEMA {schema} CASCADE")


def billing_source(schema: str, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "billing", "format": "sql", "primary_key": "id",
        "sql": {"url": SOURCE_DB, "query": f"SELECT * FROM {schema}.customers"},
        "fields": {"full_name": {"column": "name", "split": "given family"}, "emails": ["email"],
                   "created_at": "joined", "date_of_birth": "born"},
        **overrides,
    }


def test_rows_of_a_sql_query_are_ingested_with_values_as_text(store, project, billing, records):
    cfg = project.config(billing_source(billing.schema))

    (report,) = ingest(store, cfg)

    assert (report.error, report.read, report.new) == (None, 2, 2)
    assert records(store, "billing", "given_name", "family_name", "emails", "source_created_at", "date_of_birth",
                   "source_file", "source_line") == {
        "1": {"given_name": "Ann", "family_name": "Lee", "emails": ["ann@example.com"],
              "source_created_at": dt.datetime(2024, 1, 15, 10, 0), "date_of_birth": "1984-03-07",
              "source_file": "billing (sql query)", "source_line": 1},
        "2": {"given_name": "Bob", "family_name": "Smith", "emails": [], "source_created_at": None,
              "date_of_birth": None, "source_file": "billing (sql query)", "source_line": 2},
    }


def test_numeric_uuid_and_boolean_columns_are_kept_as_their_text_in_raw(store, project, billing, records):
    cfg = project.config(billing_source(billing.schema))

    ingest(store, cfg)

    assert records(store, "billing", "raw")["1"]["raw"] == {
        "id": "1", "name": "Ann Lee", "email": "ann@example.com", "balance": "12.50",
        "account": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "active": "true",
        "joined": "2024-01-15T10:00:00+00:00", "born": "1984-03-07"}


def test_querying_an_unchanged_table_again_changes_nothing(store, project, billing, dump):
    cfg = project.config(billing_source(billing.schema))
    ingest(store, cfg)
    before = dump(store)

    (report,) = ingest(store, cfg)

    assert (report.new, report.updated, report.unchanged) == (0, 0, 2)
    assert dump(store) == before


def test_a_row_deleted_in_the_source_system_is_marked_deleted(store, project, billing):
    cfg = project.config(billing_source(billing.schema, snapshot="full"))
    ingest(store, cfg)
    billing.run("DELETE FROM {schema}.customers WHERE id = 2")

    (report,) = ingest(store, cfg)

    assert report.deleted == 1
    assert store.fetchall("SELECT record_key, deleted_at IS NOT NULL FROM source_records ORDER BY 1") == [
        ("1", False), ("2", True)]


def test_a_row_updated_in_the_source_system_is_updated_with_history(store, project, billing):
    cfg = project.config(billing_source(billing.schema))
    ingest(store, cfg)
    billing.run("UPDATE {schema}.customers SET email = 'ann@example.org' WHERE id = 1")

    (report,) = ingest(store, cfg)

    assert report.updated == 1
    assert store.fetchall("SELECT record_key FROM source_records_history") == [("1",)]


def test_a_failing_query_is_refused_with_the_database_message(store, project, billing, dump):
    cfg = project.config(billing_source(billing.schema, sql={"url": SOURCE_DB,
                                                             "query": f"SELECT * FROM {billing.schema}.nope"}))
    before = dump(store)

    (report,) = ingest(store, cfg)

    assert report.error.startswith(
        f'source \'billing\' (sql): the query failed: relation "{billing.schema}.nope" does not exist')
    assert dump(store) == before


def test_a_query_without_a_mapped_column_is_refused_naming_the_column(store, project, billing, dump):
    cfg = project.config(billing_source(billing.schema, sql={
        "url": SOURCE_DB, "query": f"SELECT id, name, born FROM {billing.schema}.customers"}))
    before = dump(store)

    (report,) = ingest(store, cfg)

    assert report.error == ("billing (sql query): column(s) 'email', 'joined' named in the mapping of source "
                            "'billing' are not in the data; its columns are: id, name, born")
    assert dump(store) == before
