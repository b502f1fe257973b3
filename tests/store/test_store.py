"""The store: one interface, two backends, versioned migrations, all-or-nothing transactions.

Every test runs on DuckDB and on PostgreSQL (the ``store``/``store_url`` fixtures), except the one
that compares the two.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest

import accord.store.migrator
from accord.errors import StoreError
from accord.store import connect, migrate, open_store
from accord.store.migrator import Migration, available_migrations

FOUNDATION_TABLES = {"events", "quarantine", "runs", "schema_migrations", "source_records", "source_records_history"}


def test_migrations_apply_in_order_and_are_recorded(store_url):
    with connect(store_url) as store:
        applied = migrate(store)

        recorded = store.fetchall("SELECT version, name, checksum FROM schema_migrations ORDER BY version")

    assert [m.version for m in applied] == [m.version for m in available_migrations()]
    assert applied[0].version == 1 and applied[0].name == "foundation"
    assert recorded == [(m.version, m.name, m.checksum) for m in available_migrations()]


def test_running_migrations_again_applies_nothing(store):
    before = store.fetchall("SELECT version, checksum, applied_at FROM schema_migrations ORDER BY version")

    assert migrate(store) == []
    assert store.fetchall("SELECT version, checksum, applied_at FROM schema_migrations ORDER BY version") == before


def test_opening_a_store_creates_the_foundation_tables(store):
    assert FOUNDATION_TABLES <= set(store.table_names())


def test_an_edited_applied_migration_is_refused(store, monkeypatch):
    edited = [Migration(m.version, m.name, m.sql + "\n-- edited\n") for m in available_migrations()]
    monkeypatch.setattr(accord.store.migrator, "available_migrations", lambda: edited)

    with pytest.raises(StoreError) as exc:
        migrate(store)

    first = available_migrations()[0]
    assert str(exc.value) == (
        f"migration 0001_foundation changed after it was applied (checksum {first.checksum} in the store, "
        f"{edited[0].checksum} in this version); add a new migration instead of editing an applied one")


def test_a_failing_migration_leaves_no_trace(store, monkeypatch):
    broken = Migration(9999, "broken", "CREATE TABLE half_done (x INTEGER);\nCREATE TABLE oops (;\n")
    monkeypatch.setattr(accord.store.migrator, "available_migrations", lambda: [*available_migrations(), broken])
    tables = store.table_names()

    with pytest.raises(StoreError, match=r"^migration 9999_broken failed, nothing of it was applied: "):
        migrate(store)

    assert store.table_names() == tables
    assert store.scalar("SELECT count(*) FROM schema_migrations WHERE version = 9999") == 0


def test_a_transaction_that_raises_leaves_the_store_unchanged(store):
    store.execute("INSERT INTO runs (run_id, command, started_at, status) VALUES ('r0', 'x', ?, 'ok')",
                  (dt.datetime(2024, 1, 1),))

    with pytest.raises(RuntimeError), store.transaction():
        store.execute("INSERT INTO runs (run_id, command, started_at, status) VALUES ('r1', 'x', ?, 'ok')",
                      (dt.datetime(2024, 1, 1),))
        store.execute("UPDATE runs SET status = 'changed'")
        store.execute("CREATE TABLE scratch (x INTEGER)")
        raise RuntimeError("stop")

    assert store.fetchall("SELECT run_id, status FROM runs") == [("r0", "ok")]
    assert "scratch" not in store.table_names()


def test_a_transaction_that_completes_is_committed(store_url):
    with open_store(store_url) as store, store.transaction():
        store.execute("INSERT INTO runs (run_id, command, started_at, status) VALUES ('r1', 'x', ?, 'ok')",
                      (dt.datetime(2024, 1, 1),))

    with connect(store_url) as again:
        assert again.fetchall("SELECT run_id FROM runs") == [("r1",)]


def test_a_nested_transaction_is_undone_with_the_outer_one(store):
    with pytest.raises(RuntimeError), store.transaction():
        with store.transaction():  # the inner transaction joins the outer one
            store.execute("INSERT INTO runs (run_id, command, started_at, status) VALUES ('r1', 'x', ?, 'ok')",
                          (dt.datetime(2024, 1, 1),))
        raise RuntimeError("stop")

    assert store.fetchall("SELECT run_id FROM runs") == []


def test_placeholders_work_beside_percent_signs(store):
    assert store.scalar("SELECT '100%' || ?", ("!",)) == "100%!"
    assert store.scalar("SELECT '100%'") == "100%"


def test_arrow_tables_load_and_come_back_with_their_types(store):
    data = pa.table({
        "name": ["a", None],
        "n": pa.array([1, 2], pa.int64()),
        "seen": pa.array([dt.datetime(2024, 1, 15, 10, 0), None], pa.timestamp("us")),
    })

    store.create_temp_table("t_loaded", data)
    store.load_arrow("t_loaded", data.slice(0, 1))

    assert store.fetchall("SELECT name, n, seen FROM t_loaded ORDER BY n, name") == [
        ("a", 1, dt.datetime(2024, 1, 15, 10, 0)), ("a", 1, dt.datetime(2024, 1, 15, 10, 0)), (None, 2, None)]
    assert store.fetch_arrow("SELECT name, n FROM t_loaded ORDER BY n, name").to_pylist() == [
        {"name": "a", "n": 1}, {"name": "a", "n": 1}, {"name": None, "n": 2}]


def test_a_temp_table_from_a_query_replaces_one_of_the_same_name(store):
    store.create_temp_table("t_src", pa.table({"n": pa.array([1, 2, 3], pa.int64())}))
    store.create_temp_table_as("t_big", "SELECT n FROM t_src WHERE n >= ?", (2,))
    store.create_temp_table_as("t_big", "SELECT n FROM t_src WHERE n >= ?", (3,))

    assert store.fetchall("SELECT n FROM t_big") == [(3,)]


def test_the_planner_knows_how_many_rows_a_temp_table_holds(store):
    """PostgreSQL's autovacuum never analyzes temp tables: the store does, or the planner takes a table
    of a few rows for thousands and scans a large table it is joined to instead of using its index."""
    store.create_temp_table("t_rows", pa.table({"n": pa.array(range(50), pa.int64())}))
    store.create_temp_table_as("t_half", "SELECT n FROM t_rows WHERE n < ?", (25,))

    planned = ("SELECT table_name, estimated_size FROM duckdb_tables() WHERE table_name IN ('t_rows', 't_half')"
               if store.dialect == "duckdb" else
               "SELECT relname, reltuples FROM pg_class WHERE relname IN ('t_rows', 't_half')")
    assert dict(store.fetchall(planned)) == {"t_rows": 50, "t_half": 25}


def test_json_values_come_back_as_text_holding_the_same_value(store):
    report = {"ingest": [{"source": "crm", "new": 2}], "failed": False, "note": "100% done"}
    store.execute(store.type_sql("INSERT INTO runs (run_id, command, started_at, status, report) "
                                 "VALUES ('r1', 'x', ?, 'ok', CAST(? AS ${JSON}))"),
                  (dt.datetime(2024, 1, 1), json.dumps(report)))

    value = store.scalar("SELECT report FROM runs")

    assert isinstance(value, str)
    assert json.loads(value) == report


def test_an_unknown_store_url_is_refused_with_the_accepted_forms():
    with pytest.raises(StoreError, match=r"^store URL 'sqlite:///x.db': expected duckdb:///PATH \(relative\), "):
        connect("sqlite:///x.db")


def test_an_unreachable_postgresql_store_is_refused_without_its_password():
    with pytest.raises(StoreError) as exc:
        connect("postgresql://accord:s3cret@127.0.0.1:1/accord")

    assert str(exc.value).startswith("cannot connect to PostgreSQL store postgresql://accord:***@127.0.0.1:1/accord: ")
    assert "s3cret" not in str(exc.value)


def test_postgresql_url_parameters_reach_the_server_intact():
    pg = os.environ.get("ACCORD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    url = f"{pg}{'&' if '?' in pg else '?'}options=-c%20statement_timeout%3D12345&application_name=accord%20test"

    with connect(url) as store:
        assert store.fetchall("SELECT current_setting('statement_timeout'), current_setting('application_name')"
                              ) == [("12345ms", "accord test")]


def test_both_backends_have_the_same_tables_and_columns(tmp_path: Path):
    pg = os.environ.get("ACCORD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    schema = f"t_{uuid.uuid4().hex[:12]}"

    def layout(url: str) -> dict[str, list[str]]:
        with open_store(url) as store:
            return {t: [r[0] for r in store.fetchall(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = ? ORDER BY ordinal_position", (t,))] for t in store.table_names()}

    try:
        duck = layout(f"duckdb:///{tmp_path / 'store.duckdb'}")
        postgres = layout(f"{pg}{'&' if '?' in pg else '?'}schema={schema}")
    finally:
        with psycopg.connect(pg, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    assert FOUNDATION_TABLES <= set(duck)
    assert duck == postgres
