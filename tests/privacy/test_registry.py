"""Every table of the store declares in the privacy registry how a person's rows are found in it."""

from __future__ import annotations

from accord.privacy.registry import REGISTRY, entry, retention_tables, undeclared
from accord.store import Store


def test_every_table_of_the_store_has_a_registry_entry(store: Store) -> None:
    assert undeclared(store.table_names()) == []


def test_a_new_table_without_an_entry_is_reported(store: Store) -> None:
    store.execute("CREATE TABLE loyalty_cards (customer_id TEXT, card TEXT)")
    assert undeclared(store.table_names()) == ["loyalty_cards"]


def test_every_kept_table_says_why() -> None:
    assert [e.table for e in REGISTRY if e.action == "keep" and not e.reason] == []


def test_every_erased_table_says_how_to_find_the_person() -> None:
    assert [e.table for e in REGISTRY if e.action != "keep" and not e.holds_people] == []


def test_a_child_table_comes_before_its_parent() -> None:
    order = [e.table for e in REGISTRY]
    for e in REGISTRY:
        if e.parent:
            assert entry(e.parent[1]) is not None
            assert order.index(e.table) < order.index(e.parent[1])


def test_retention_columns_exist(store: Store) -> None:
    for table, column in retention_tables().items():
        cols = {r[0] for r in store.fetchall(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = ?", (table,))}
        assert column in cols, table


def test_every_declared_column_exists(store: Store) -> None:
    present = set(store.table_names())
    missing = []
    for e in REGISTRY:
        if e.table not in present:
            continue
        cols = {r[0] for r in store.fetchall(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = ?", (e.table,))}
        named = set(e.customer) | set(e.record or ()) | set(e.record_refs) | set(e.text) | set(e.scrub)
        named |= {c for pair in e.identifiers for c in pair if c}
        named |= {e.parent[0]} if e.parent else set()
        missing += [f"{e.table}.{c}" for c in sorted(named - cols)]
    assert missing == []


def test_postgresql_gets_an_index_on_every_lookup_column(store: Store) -> None:
    from accord.privacy.stage import ensure_lookup_indexes

    created = ensure_lookup_indexes(store)
    if store.dialect == "duckdb":
        assert created == 0
    else:
        names = {r[0] for r in store.fetchall("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")}
        assert "privacy_events_identity_type_identity_value" in names
        assert ensure_lookup_indexes(store) == 0
