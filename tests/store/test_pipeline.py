"""Store.pipeline() and Store.fetch_many(): fewer round trips, the same answers.

On PostgreSQL, writes inside ``pipeline()`` are held back (their values inlined by psycopg's client-side
binding) and sent with the next read, the COMMIT or the block's end; ``fetch_many`` sends its reads in
one round trip. What a caller sees must not change: reads see every write before them, an error
surfaces, a rolled-back transaction leaves nothing, and the connection stays usable. Every test runs on
DuckDB and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pyarrow as pa
import pytest

from accord.profiles._sql import reserve, reserve_each
from accord.store import Store

ODD = "it's 50% off; \\ and \"quotes\""
"""A value SQL would choke on if it were pasted in unquoted."""


@pytest.fixture
def table(store: Store) -> Iterator[str]:
    store.execute("DROP TABLE IF EXISTS pl_rows")
    store.execute("CREATE TABLE pl_rows (k TEXT PRIMARY KEY, n BIGINT, seen TIMESTAMP, x DOUBLE PRECISION, "
                  "props TEXT)")
    yield "pl_rows"
    store.execute("DROP TABLE IF EXISTS pl_rows")


def _rows(store: Store) -> list[tuple]:
    return store.fetchall("SELECT k, n, seen, x, props FROM pl_rows ORDER BY k")


def test_reads_see_the_writes_before_them_with_their_values_intact(store, table):
    at = dt.datetime(2026, 11, 24, 4, 5, 6, 789012)
    with store.pipeline(), store.transaction():
        store.execute("INSERT INTO pl_rows VALUES (?, ?, ?, ?, ?)", ("a", 1, at, 0.25, ODD))
        store.executemany("INSERT INTO pl_rows (k, n) VALUES (?, ?)", [("b", 2), ("c", None)])
        store.load_arrow("pl_rows", pa.table({"k": ["d"], "n": pa.array([4], pa.int64())}))
        assert store.scalar("SELECT COUNT(*) FROM pl_rows") == 4
        store.execute("UPDATE pl_rows SET n = n + 10 WHERE k = ?", ("a",))
    assert _rows(store) == [("a", 11, at, 0.25, ODD), ("b", 2, None, None, None), ("c", None, None, None, None),
                            ("d", 4, None, None, None)]


def test_fetch_many_answers_each_statement_in_order(store, table):
    store.execute("INSERT INTO pl_rows (k, n, props) VALUES ('a', 1, ?)", (ODD,))
    with store.pipeline(), store.transaction():
        store.execute("INSERT INTO pl_rows (k, n) VALUES (?, ?)", ("b", 2))  # held back: sent before the reads
        found = store.fetch_many([("SELECT k FROM pl_rows WHERE props = ?", (ODD,)),
                                  ("SELECT k FROM pl_rows WHERE n > ? ORDER BY k", (5,)),
                                  ("SELECT COUNT(*) FROM pl_rows", ()),
                                  ("SELECT '50%' || ?", ("!",))])
    assert found == [[("a",)], [], [(2,)], [("50%!",)]]
    assert store.fetch_many([("SELECT 1", ())]) == [[(1,)]]
    assert store.fetch_many([]) == []


def test_a_failing_write_surfaces_rolls_back_and_leaves_the_connection_usable(store, table):
    store.execute("INSERT INTO pl_rows (k, n) VALUES ('taken', 0)")
    with pytest.raises(Exception) as failed:
        with store.pipeline(), store.transaction():
            store.execute("INSERT INTO pl_rows (k, n) VALUES (?, ?)", ("new", 1))
            store.execute("INSERT INTO pl_rows (k, n) VALUES (?, ?)", ("taken", 2))  # the primary key refuses it
    assert store.is_unique_violation(failed.value)
    assert store.fetchall("SELECT k, n FROM pl_rows ORDER BY k") == [("taken", 0)]  # nothing of it stayed
    with store.transaction():  # and the next transaction works
        store.execute("INSERT INTO pl_rows (k, n) VALUES ('later', 3)")
    assert store.scalar("SELECT COUNT(*) FROM pl_rows") == 2


def test_a_failing_write_surfaces_at_the_next_read_or_flush(store, table):
    store.execute("INSERT INTO pl_rows (k, n) VALUES ('taken', 0)")
    with store.pipeline():
        with pytest.raises(Exception) as failed:
            with store.transaction():
                store.execute("INSERT INTO pl_rows (k, n) VALUES ('taken', 1)")
                store.flush()
        assert store.is_unique_violation(failed.value)
        assert store.scalar("SELECT COUNT(*) FROM pl_rows") == 1


def test_a_rollback_drops_the_transactions_writes_but_not_those_held_back_before_it(store, table):
    with store.pipeline():
        store.execute("INSERT INTO pl_rows (k, n) VALUES ('before', 1)")
        with pytest.raises(RuntimeError):
            with store.transaction():
                store.execute("INSERT INTO pl_rows (k, n) VALUES ('inside', 2)")
                raise RuntimeError("the caller gives up")
        store.execute("INSERT INTO pl_rows (k, n) VALUES ('after', 3)")
    assert [k for k, *_ in _rows(store)] == ["after", "before"]


def test_an_error_inside_the_block_still_sends_what_came_before_it(store, table):
    with pytest.raises(RuntimeError):
        with store.pipeline():
            store.execute("INSERT INTO pl_rows (k, n) VALUES ('sent', 1)")
            raise RuntimeError("boom")
    assert [k for k, *_ in _rows(store)] == ["sent"]


def test_nested_pipelines_join_the_outer_one(store, table):
    with store.pipeline(), store.transaction():
        with store.pipeline():
            store.execute("INSERT INTO pl_rows (k, n) VALUES ('a', 1)")
        store.execute("INSERT INTO pl_rows (k, n) VALUES ('b', 2)")
        assert store.scalar("SELECT COUNT(*) FROM pl_rows") == 2
    assert store.scalar("SELECT COUNT(*) FROM pl_rows") == 2


def test_reserve_each_takes_one_value_of_each_counter_in_the_order_asked(store):
    customer, audit = reserve(store, "customer", 1), reserve(store, "audit", 1)
    assert reserve_each(store, ["customer", "audit"]) == [customer + 1, audit + 1]
    assert reserve_each(store, ["audit", "customer"]) == [audit + 2, customer + 2]
    with store.pipeline(), store.transaction():
        assert reserve_each(store, ["customer", "audit"]) == [customer + 3, audit + 3]
    with pytest.raises(Exception, match="no counter 'nope'"):
        reserve_each(store, ["customer", "nope"])


def test_a_read_repeated_in_round_trips_is_prepared_once_and_answers_alike(store, table):
    store.execute("INSERT INTO pl_rows (k, n) VALUES ('a', 1), ('b', 2)")
    sql = "SELECT k FROM pl_rows WHERE n >= ? ORDER BY k"
    for floor, expected in [(1, [("a",), ("b",)]), (2, [("b",)]), (3, []), (1, [("a",), ("b",)])]:
        with store.pipeline(), store.transaction():
            store.execute("UPDATE pl_rows SET props = ? WHERE k = 'a'", (ODD,))  # held back: the read goes with it
            assert store.fetch_many([(sql, (floor,)), ("SELECT props FROM pl_rows WHERE k = ?", ("a",))]) == [
                expected, [(ODD,)]]
    if store.dialect == "postgresql":  # planned once on the server, then executed by name
        prepared = store.fetchall("SELECT statement FROM pg_prepared_statements WHERE name LIKE 'accord_read_%'")
        assert any("WHERE n >= $1" in s for (s,) in prepared)


def test_a_read_postgresql_cannot_prepare_is_sent_as_it_is_and_the_transaction_goes_on(store, table):
    sql = "SELECT ? IS NULL"  # a parameter of no inferable type: PREPARE refuses it
    with store.pipeline(), store.transaction():
        for _ in range(3):
            store.execute("INSERT INTO pl_rows (k) VALUES (?)", (f"k{_}",))
            assert store.fetch_many([(sql, (None,)), ("SELECT COUNT(*) FROM pl_rows", ())]) == [[(True,)], [(_ + 1,)]]
    assert store.scalar("SELECT COUNT(*) FROM pl_rows") == 3
