"""Store.insert_new: a bulk insert of only the rows whose key is not stored yet, on both backends."""

from __future__ import annotations

import pyarrow as pa
import pytest

from accord.store.backend import Store


def _keys(keys: list[str], values: list[str]) -> pa.Table:
    return pa.table({"id_type": pa.array(["email"] * len(keys)), "value": pa.array(keys),
                     "customer_id": pa.array(values), "origin": pa.array(["test"] * len(keys))})


def _rows(store: Store) -> list[tuple[str, str]]:
    return store.fetchall("SELECT value, customer_id FROM customer_identifiers ORDER BY value, customer_id")


def test_insert_new_inserts_every_row_into_an_empty_table(store: Store) -> None:
    n = store.insert_new("customer_identifiers", _keys(["a", "b"], ["c1", "c2"]),
                         ["id_type", "value", "customer_id"])
    assert (n, _rows(store)) == (2, [("a", "c1"), ("b", "c2")])


def test_insert_new_skips_rows_whose_key_is_stored(store: Store) -> None:
    store.insert_new("customer_identifiers", _keys(["a"], ["c1"]), ["id_type", "value", "customer_id"])
    n = store.insert_new("customer_identifiers", _keys(["a", "b"], ["c1", "c1"]), ["id_type", "value", "customer_id"])
    assert (n, _rows(store)) == (1, [("a", "c1"), ("b", "c1")])


def test_insert_new_keeps_the_first_of_a_key_repeated_in_the_data(store: Store) -> None:
    data = pa.table({"event_id": ["m1", "m1"], "source": ["first", "second"], "type": ["track", "track"],
                     "ts": pa.array([0, 0], pa.timestamp("us")), "received_at": pa.array([0, 0], pa.timestamp("us")),
                     "run_id": ["r", "r"]})
    assert store.insert_new("events", data, ["event_id"]) == 1
    assert store.fetchall("SELECT event_id, source FROM events") == [("m1", "first")]


def test_insert_new_of_nothing_inserts_nothing(store: Store) -> None:
    assert store.insert_new("customer_identifiers", _keys([], []), ["id_type", "value", "customer_id"]) == 0


def test_insert_new_joins_the_callers_transaction(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.insert_new("customer_identifiers", _keys(["a"], ["c1"]), ["id_type", "value", "customer_id"])
        raise RuntimeError("roll back")
    assert _rows(store) == []


def test_duplicate_key_is_recognised_as_a_unique_violation(store: Store) -> None:
    store.load_arrow("customer_identifiers", _keys(["a"], ["c1"]))
    with pytest.raises(Exception) as caught, store.transaction():
        store.load_arrow("customer_identifiers", _keys(["a"], ["c1"]))
    assert store.is_unique_violation(caught.value)


def test_other_errors_are_not_unique_violations(store: Store) -> None:
    with pytest.raises(Exception) as caught:
        store.execute("SELECT * FROM no_such_table")
    assert not store.is_unique_violation(caught.value)
