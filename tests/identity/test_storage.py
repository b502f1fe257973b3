"""How the identity stage's tables are stored: indexes on PostgreSQL only (migration 0016)."""

from __future__ import annotations

from accord.config import ProjectConfig
from accord.identity.stage import resolve
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
