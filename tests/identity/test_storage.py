"""How the identity stage's tables are stored and read: indexes on PostgreSQL only (migration 0016), and
the edges of a set of records read the way each backend answers best."""

from __future__ import annotations

import pyarrow as pa

from accord.config import ProjectConfig
from accord.identity.stage import resolve
from accord.identity.state import edges_touching
from tests.identity.conftest import _settings
from tests.identity.people import insert_records, population


def _indexes(store, table: str) -> set[str]:
    if store.dialect == "duckdb":
        rows = store.fetchall("SELECT index_name FROM duckdb_indexes() WHERE table_name = ?", (table,))
    else:
        rows = store.fetchall("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                              "AND tablename = ?", (table,))
    return {r[0] for r in rows}


def test_identity_and_match_edges_carry_indexes_on_postgresql_only(store):
    records, _, _ = population(people=30)
    insert_records(store, records)
    resolve(store, ProjectConfig(), "run_1", settings=_settings())
    expected = (set(), set()) if store.dialect == "duckdb" else (
        {"identity_record", "identity_cluster"}, {"match_edges_a", "match_edges_b", "match_edges_status"})
    assert (_indexes(store, "identity"), _indexes(store, "match_edges")) == expected
    assert store.scalar("SELECT COUNT(*) FROM identity") == len(records)


def test_edges_touching_gives_each_edge_with_an_end_among_the_records_once(store):
    edges = [("a", "b", 0.99), ("b", "c", 0.5), ("c", "d", 0.99), ("x", "a", None), ("x", "y", 0.99)]
    for a, b, p in edges:
        store.execute("INSERT INTO match_edges (record_a, record_b, probability, match_weight, rule_or_model, "
                      "status, run_id) VALUES (?, ?, ?, NULL, 'model:v1', 'auto', 'run_1')", (a, b, p))
    store.create_temp_table("_rids", pa.table({"rid": ["a", "b"]}))

    def touching(**kw):
        return sorted(store.fetchall(edges_touching(store, "SELECT rid FROM _rids", columns="record_a, record_b", **kw)))

    assert touching() == [("a", "b"), ("b", "c"), ("x", "a")]
    assert touching(where="probability IS NULL OR probability >= 0.9") == [("a", "b"), ("x", "a")]
