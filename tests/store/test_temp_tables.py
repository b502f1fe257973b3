"""Session temp tables: created from queries or Arrow data, replaced, dropped.

PostgreSQL reuses a small temp table of the same columns (emptied and refilled instead of dropped and
created: catalog writes cost ~1 ms a table); whatever happens to the tables in between, a temp table
holds exactly what its latest create put in it, with that create's columns. Every test runs on DuckDB
and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from accord.store import Store
from accord.store.backend import SMALL_TEMP_ROWS, TEMP_CHURN_ROWS


def _numbers(store: Store, name: str = "t_src", n: int = 10) -> None:
    store.create_temp_table(name, pa.table({"n": pa.array(range(n), pa.int64())}))


def _columns(store: Store, table: str) -> list[tuple[str, str]]:
    """(name, type) of each column of a temp table, in order."""
    if store.dialect == "duckdb":
        rows = store.fetchall("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? "
                              "AND database_name = 'temp' ORDER BY column_index", (table,))
    else:
        rows = store.fetchall("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                              "WHERE attrelid = to_regclass('pg_temp.' || ?) AND attnum > 0 AND NOT attisdropped "
                              "ORDER BY attnum", (table,))
    return [(name, kind.upper()) for name, kind in rows]


def _exists(store: Store, table: str) -> bool:
    if store.dialect == "duckdb":
        return store.scalar("SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND temporary", (table,)) == 1
    return store.scalar("SELECT to_regclass('pg_temp.' || ?) IS NOT NULL", (table,))


def _identity(store: Store, table: str) -> int:
    """The catalog's id of a temp table: a new one for a new table."""
    if store.dialect == "duckdb":
        return store.scalar("SELECT table_oid FROM duckdb_tables() WHERE table_name = ? AND temporary", (table,))
    return store.scalar("SELECT to_regclass('pg_temp.' || ?)::oid::bigint", (table,))


def test_creating_again_with_other_rows_holds_only_the_new_rows(store):
    _numbers(store)

    for low, high in [(2, 5), (7, 9), (0, 1), (5, 5)]:
        store.create_temp_table_as("t_sel", "SELECT n, n * 2 AS twice FROM t_src WHERE n BETWEEN ? AND ?", (low, high))
        assert store.fetchall("SELECT n, twice FROM t_sel ORDER BY n") == [(n, 2 * n) for n in range(low, high + 1)]


def test_an_arrow_table_created_again_holds_only_the_new_rows(store):
    for names in (["a", "b", "c"], ["d"], [], ["e", None]):
        store.create_temp_table("t_arrow", pa.table({"name": pa.array(names, pa.string())}))
        assert sorted(store.fetchall("SELECT name FROM t_arrow"), key=str) == sorted([(n,) for n in names], key=str)


def test_a_query_with_other_columns_under_the_same_name_gives_the_new_columns(store):
    _numbers(store)
    store.create_temp_table_as("t_shape", "SELECT n FROM t_src WHERE n < 2")

    store.create_temp_table_as("t_shape", "SELECT n, CAST(n AS VARCHAR) AS label FROM t_src WHERE n < 2")
    assert store.fetchall("SELECT n, label FROM t_shape ORDER BY n") == [(0, "0"), (1, "1")]

    store.create_temp_table_as("t_shape", "SELECT CAST(n AS VARCHAR) AS n FROM t_src WHERE n = 1")  # n, now text
    assert store.fetchall("SELECT n FROM t_shape") == [("1",)]
    assert _columns(store, "t_shape") == [("n", "VARCHAR" if store.dialect == "duckdb" else "CHARACTER VARYING")]


def test_a_query_of_a_longer_varchar_is_not_cut_to_the_earlier_length(store):
    store.create_temp_table_as("t_len", "SELECT CAST('abc' AS VARCHAR(3)) AS v")

    store.create_temp_table_as("t_len", "SELECT CAST('abcdef' AS VARCHAR(6)) AS v")

    assert store.fetchall("SELECT v FROM t_len") == [("abcdef",)]


def test_arrow_data_with_other_columns_under_the_same_name_gives_the_new_columns(store):
    store.create_temp_table("t_arrow", pa.table({"n": pa.array([1], pa.int64())}))

    store.create_temp_table("t_arrow", pa.table({"n": pa.array(["x"], pa.string()),
                                                 "seen": pa.array([dt.datetime(2024, 1, 2)], pa.timestamp("us"))}))

    assert store.fetchall("SELECT n, seen FROM t_arrow") == [("x", dt.datetime(2024, 1, 2))]
    assert [name for name, _ in _columns(store, "t_arrow")] == ["n", "seen"]


def test_a_query_table_and_an_arrow_table_may_take_turns_under_one_name(store):
    _numbers(store)
    store.create_temp_table_as("t_turns", "SELECT n FROM t_src WHERE n < 3")
    store.create_temp_table("t_turns", pa.table({"n": pa.array([42], pa.int64())}))
    assert store.fetchall("SELECT n FROM t_turns") == [(42,)]

    store.create_temp_table_as("t_turns", "SELECT n FROM t_src WHERE n = 7")
    assert store.fetchall("SELECT n FROM t_turns") == [(7,)]


def test_a_dropped_temp_table_created_again_holds_the_new_rows(store):
    _numbers(store)
    store.create_temp_table_as("t_drop", "SELECT n FROM t_src WHERE n < 5")
    store.drop_temp_table("t_drop")

    store.create_temp_table_as("t_drop", "SELECT n FROM t_src WHERE n >= 8")

    assert store.fetchall("SELECT n FROM t_drop ORDER BY n") == [(8,), (9,)]


def test_dropping_temp_tables_that_do_not_exist_is_no_error(store):
    _numbers(store, "t_there")

    store.drop_temp_table("t_never", "t_there", "t_never_either")

    store.drop_temp_table("t_there")  # twice
    assert not _exists(store, "t_never")


def test_a_temp_table_dropped_by_hand_can_be_created_again(store):
    _numbers(store)
    store.create_temp_table_as("t_hand", "SELECT n FROM t_src WHERE n < 5")
    store.execute("DROP TABLE IF EXISTS t_hand")

    store.create_temp_table_as("t_hand", "SELECT n FROM t_src WHERE n = 9")

    assert store.fetchall("SELECT n FROM t_hand") == [(9,)]


def test_a_dropped_temp_table_can_be_created_again_by_hand(store):
    _numbers(store)
    store.create_temp_table_as("t_again", "SELECT n FROM t_src WHERE n < 5")
    store.drop_temp_table("t_again")

    store.execute("CREATE TEMP TABLE t_again (label VARCHAR)")
    store.execute("INSERT INTO t_again VALUES ('by hand')")

    assert store.fetchall("SELECT * FROM t_again") == [("by hand",)]


def test_rows_written_by_hand_are_replaced_by_the_next_create(store):
    _numbers(store)
    store.create_temp_table("t_written", pa.table({"n": pa.array([1, 2], pa.int64())}))
    store.execute("INSERT INTO t_written SELECT n FROM t_src")
    store.load_arrow("t_written", pa.table({"n": pa.array([100], pa.int64())}))
    store.drop_temp_table("t_written")

    store.create_temp_table("t_written", pa.table({"n": pa.array([3], pa.int64())}))

    assert store.fetchall("SELECT n FROM t_written") == [(3,)]


def test_a_temp_table_grown_large_by_hand_is_really_dropped(store):
    _numbers(store, "t_src", 10 * SMALL_TEMP_ROWS)
    store.create_temp_table_as("t_grown_by_hand", "SELECT n FROM t_src WHERE n < 2")
    store.execute("INSERT INTO t_grown_by_hand SELECT n FROM t_src")

    store.drop_temp_table("t_grown_by_hand")

    assert not _exists(store, "t_grown_by_hand")


def test_a_temp_table_altered_by_hand_is_created_again_with_the_querys_columns(store):
    _numbers(store)
    store.create_temp_table_as("t_altered", "SELECT n FROM t_src WHERE n < 2")
    store.execute("ALTER TABLE t_altered ADD COLUMN extra INTEGER")

    store.create_temp_table_as("t_altered", "SELECT n FROM t_src WHERE n = 4")

    assert store.fetchall("SELECT * FROM t_altered") == [(4,)]


def test_a_temp_table_created_in_a_rolled_back_transaction_can_be_created_again(store):
    _numbers(store)
    with pytest.raises(RuntimeError), store.transaction():
        store.create_temp_table_as("t_rolled", "SELECT n FROM t_src WHERE n < 3")
        store.create_temp_table("t_rolled_arrow", pa.table({"n": pa.array([1], pa.int64())}))
        raise RuntimeError("stop")

    store.create_temp_table_as("t_rolled", "SELECT n FROM t_src WHERE n = 6")
    store.create_temp_table("t_rolled_arrow", pa.table({"n": pa.array([2], pa.int64())}))

    assert store.fetchall("SELECT n FROM t_rolled") == [(6,)]
    assert store.fetchall("SELECT n FROM t_rolled_arrow") == [(2,)]


def test_a_rolled_back_drop_and_refill_leave_the_temp_table_as_it_was(store):
    _numbers(store)
    store.create_temp_table_as("t_kept", "SELECT n FROM t_src WHERE n < 3")
    store.create_temp_table_as("t_dropped", "SELECT n FROM t_src WHERE n < 2")
    with pytest.raises(RuntimeError), store.transaction():
        store.create_temp_table_as("t_kept", "SELECT n FROM t_src WHERE n = 9")
        store.drop_temp_table("t_dropped")
        raise RuntimeError("stop")

    assert store.fetchall("SELECT n FROM t_kept ORDER BY n") == [(0,), (1,), (2,)]
    assert store.fetchall("SELECT n FROM t_dropped ORDER BY n") == [(0,), (1,)]
    store.create_temp_table_as("t_kept", "SELECT n FROM t_src WHERE n = 5")
    assert store.fetchall("SELECT n FROM t_kept") == [(5,)]


def test_a_temp_table_created_after_a_failed_refill_holds_the_new_rows(store):
    _numbers(store)
    store.create_temp_table_as("t_failed", "SELECT n FROM t_src WHERE n < 3")
    with pytest.raises(Exception):  # noqa: B017 - each engine's own error
        store.create_temp_table_as("t_failed", "SELECT CAST('x' || CAST(n AS VARCHAR) AS INTEGER) AS n FROM t_src")

    store.create_temp_table_as("t_failed", "SELECT n FROM t_src WHERE n = 4")

    assert store.fetchall("SELECT n FROM t_failed") == [(4,)]


def test_a_new_connection_creates_its_temp_tables_anew(store_url):
    from accord.store import open_store

    with open_store(store_url) as first:
        first.create_temp_table("t_conn", pa.table({"n": pa.array([1], pa.int64())}))
        first.drop_temp_table("t_conn")
    with open_store(store_url) as second:
        second.create_temp_table("t_conn", pa.table({"n": pa.array([2], pa.int64())}))
        assert second.fetchall("SELECT n FROM t_conn") == [(2,)]


def test_postgresql_keeps_a_small_temp_table_for_the_next_create(store):
    """The saving: emptying and refilling a table writes no catalog. DuckDB replaces it."""
    _numbers(store)
    store.create_temp_table_as("t_same", "SELECT n FROM t_src WHERE n < 3")
    first = _identity(store, "t_same")
    store.drop_temp_table("t_same")

    store.create_temp_table_as("t_same", "SELECT n FROM t_src WHERE n < 5")

    assert (_identity(store, "t_same") == first) == (store.dialect == "postgresql")


def test_a_large_temp_table_is_really_dropped(store):
    """Its space returned at once: emptying a large table would keep its file (and cost a scan)."""
    store.create_temp_table_as("t_large", f"SELECT * FROM range({SMALL_TEMP_ROWS}) r(n)"
                               if store.dialect == "duckdb" else
                               f"SELECT n FROM generate_series(1, {SMALL_TEMP_ROWS}) n")

    store.drop_temp_table("t_large")

    assert not _exists(store, "t_large")


def test_the_planner_knows_the_rows_of_a_temp_table_refilled_with_many_more(store):
    _numbers(store, "t_many", 3 * SMALL_TEMP_ROWS)
    store.create_temp_table_as("t_grown", "SELECT n FROM t_many WHERE n < ?", (5,))
    store.create_temp_table("t_grown_arrow", pa.table({"n": pa.array(range(5), pa.int64())}))

    store.create_temp_table_as("t_grown", "SELECT n FROM t_many WHERE n < ?", (2 * SMALL_TEMP_ROWS,))
    store.create_temp_table("t_grown_arrow", pa.table({"n": pa.array(range(SMALL_TEMP_ROWS), pa.int64())}))

    planned = ("SELECT table_name, estimated_size FROM duckdb_tables() WHERE table_name LIKE 't_grown%'"
               if store.dialect == "duckdb" else
               "SELECT relname, reltuples FROM pg_class WHERE relname LIKE 't\\_grown%'")
    assert dict(store.fetchall(planned)) == {"t_grown": 2 * SMALL_TEMP_ROWS, "t_grown_arrow": SMALL_TEMP_ROWS}


def test_a_temp_table_refilled_many_times_does_not_grow(store):
    """PostgreSQL never vacuums temp tables: each refill's DELETE leaves its rows behind as dead rows,
    until the table is made anew (``TEMP_CHURN_ROWS``)."""
    _numbers(store, "t_src", 100)
    refills = 6 * TEMP_CHURN_ROWS // 20

    for i in range(refills):
        store.create_temp_table_as("t_churn", "SELECT n, 'padding padding padding' AS pad FROM t_src "
                                              "WHERE n BETWEEN ? AND ?", (i % 80, i % 80 + 19))

    assert store.fetchall("SELECT min(n), count(*) FROM t_churn") == [((refills - 1) % 80, 20)]
    if store.dialect == "postgresql":  # the dead rows of at most TEMP_CHURN_ROWS rows (~64 bytes each)
        assert store.scalar("SELECT pg_relation_size('pg_temp.t_churn')") <= TEMP_CHURN_ROWS * 80


def test_insert_new_staging_keeps_no_rows_between_calls(store):
    """PostgreSQL stages insert_new's rows in a reused temp table: a call must not insert the last call's."""
    store.execute("CREATE TABLE t_target (k VARCHAR PRIMARY KEY, v INTEGER)")

    assert store.insert_new("t_target", pa.table({"k": ["a", "b"], "v": pa.array([1, 2], pa.int64())}), ["k"]) == 2
    store.execute("DELETE FROM t_target")
    assert store.insert_new("t_target", pa.table({"k": ["c"], "v": pa.array([3], pa.int64())}), ["k"]) == 1

    assert store.fetchall("SELECT k, v FROM t_target") == [("c", 3)]


def test_a_temp_table_dropped_twice_can_be_created_again(store):
    _numbers(store)
    store.create_temp_table_as("t_twice", "SELECT n FROM t_src WHERE n < 3")
    first = _identity(store, "t_twice")
    store.drop_temp_table("t_twice")
    store.drop_temp_table("t_twice")

    store.create_temp_table_as("t_twice", "SELECT n FROM t_src WHERE n = 8")

    assert store.fetchall("SELECT n FROM t_twice") == [(8,)]
    assert (_identity(store, "t_twice") == first) == (store.dialect == "postgresql")  # still reused


def test_an_empty_temp_table_filled_by_hand_is_empty_when_created_again(store):
    _numbers(store)
    store.create_temp_table_as("t_by_hand", "SELECT n FROM t_src WHERE 1 = 0")
    first = _identity(store, "t_by_hand")
    store.execute("INSERT INTO t_by_hand SELECT n FROM t_src")
    store.drop_temp_table("t_by_hand")

    store.create_temp_table_as("t_by_hand", "SELECT n FROM t_src WHERE 1 = 0")

    assert store.fetchall("SELECT n FROM t_by_hand") == []
    assert (_identity(store, "t_by_hand") == first) == (store.dialect == "postgresql")  # small: still reused


def test_temp_tables_and_reads_inside_a_pipeline_behave_as_outside(store):
    """Store.pipeline() (PostgreSQL's pipeline mode) changes when answers arrive, not what they are."""
    with store.transaction(), store.pipeline():
        store.execute("CREATE TEMP TABLE _pl_src (k TEXT, v BIGINT)")
        store.execute("INSERT INTO _pl_src VALUES ('a', 1), ('b', 2), ('c', 3)")
        for _ in range(2):  # the second time refills the kept table on PostgreSQL
            store.create_temp_table_as("_pl_t", "SELECT k, v FROM _pl_src WHERE v >= ?", (2,))
            assert store.fetchall("SELECT k, v FROM _pl_t ORDER BY k") == [("b", 2), ("c", 3)]
            assert store.scalar("SELECT COUNT(*) FROM _pl_t") == 2
            store.drop_temp_table("_pl_t")
        store.create_temp_table("_pl_arrow", pa.table({"k": ["x", "y"]}))
        assert store.fetchall("SELECT k FROM _pl_arrow ORDER BY k") == [("x",), ("y",)]
        store.drop_temp_table("_pl_arrow", "_pl_src")
        assert store.fetch_arrow("SELECT 1 AS one").to_pylist() == [{"one": 1}]
