"""Erasure reaches every table and file, leaves a receipt without PII, and suppression keeps the person out."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.privacy.erasure import erase, receipts
from accord.privacy.purge import purge
from accord.privacy.subject import SubjectError
from accord.sources import ingest
from accord.store import Store
from tests.privacy.conftest import ANN_IDENTIFIERS, BOB_IDENTIFIERS, World


def table_text_hits(store: Store, needles: tuple[str, ...]) -> dict[str, list[str]]:
    """Every table, every column as text: which needles occur where."""
    hits: dict[str, list[str]] = {}
    for table in store.table_names():
        cols = [r[0] for r in store.fetchall(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = ?", (table,))]
        for col in cols:
            for (text,) in store.fetchall(f'SELECT CAST("{col}" AS TEXT) FROM {table} WHERE "{col}" IS NOT NULL'):
                for n in needles:
                    if n.lower() in text.lower():
                        hits.setdefault(f"{table}.{col}", []).append(n)
    return hits


def file_hits(folder: Path, needles: tuple[str, ...]) -> dict[str, list[str]]:
    hits: dict[str, list[str]] = {}
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes().lower()
            found = [n for n in needles if n.lower().encode() in data]
            if found:
                hits[str(path)] = found
    return hits


def test_before_erasure_the_person_is_in_the_tables(world: World) -> None:
    hits = table_text_hits(world.store, ANN_IDENTIFIERS)
    assert {"source_records.raw", "events.identity_value", "quarantine.raw_text", "identity_signals.traits",
            "customer_identifiers.value", "golden_multi.value", "runs.report"} <= set(hits)


def test_erasure_by_email_leaves_none_of_the_persons_identifiers_in_any_table(world: World) -> None:
    erase(world.store, "email:Ann.Quill@Example.com", actor="user:test")
    assert table_text_hits(world.store, ANN_IDENTIFIERS) == {}


def test_erasure_keeps_the_other_people(world: World) -> None:
    erase(world.store, world.ann, actor="user:test")
    hits = table_text_hits(world.store, BOB_IDENTIFIERS)
    assert {"source_records.raw", "golden_multi.value", "events.identity_value"} <= set(hits)
    assert world.store.scalar("SELECT count(*) FROM record_customer WHERE customer_id = ?", (world.bob,)) == 2


def test_the_receipt_counts_rows_per_table(world: World) -> None:
    identifiers = world.store.scalar("SELECT count(*) FROM customer_identifiers WHERE customer_id = ?", (world.ann,))
    golden = world.store.scalar("SELECT count(*) FROM golden_values WHERE customer_id = ?", (world.ann,))
    multi = world.store.scalar("SELECT count(*) FROM golden_multi WHERE customer_id = ?", (world.ann,))
    audit = world.store.scalar("SELECT count(*) FROM identity_audit WHERE customer_id = ?", (world.ann,))
    receipt = erase(world.store, world.ann, actor="user:test", purpose="gdpr art. 17 request")
    assert {t: n for t, n in receipt.counts.items() if n} == {
        "source_records": 2, "quarantine": 1, "events": 3, "match_edges": 2, "customers": 1, "record_customer": 2,
        "identity_audit": audit, "identity_constraints": 1, "golden_values": golden, "golden_multi": multi,
        "identity_signals": 1, "customer_identifiers": identifiers, "customer_traits": 1, "account_members": 1,
        "customer_consent": 1, "consent_history": 2, "runs": 1}


def test_the_receipt_names_every_table_that_can_hold_a_person(world: World) -> None:
    receipt = erase(world.store, world.ann, actor="user:test")
    assert {"identity", "source_records_history", "customer_redirects"} <= set(receipt.counts)


def test_the_stored_receipt_holds_no_identifier(world: World) -> None:
    receipt = erase(world.store, "email:ann.quill@example.com", actor="user:test", purpose="request 12")
    [stored] = receipts(world.store, receipt.receipt_id)
    assert (stored.customer_ids, stored.counts, stored.purpose) == ([world.ann], receipt.counts, "request 12")
    assert table_text_hits(world.store, ANN_IDENTIFIERS) == {}


def test_an_identifier_naming_two_customers_is_refused(world: World) -> None:
    world.store.execute("INSERT INTO customer_identifiers (id_type, value, customer_id, origin) "
                        "VALUES ('email', 'family@example.com', ?, 't'), ('email', 'family@example.com', ?, 't')",
                        (world.ann, world.bob))
    with pytest.raises(SubjectError, match="email 'family@example.com' names 2 customers"):
        erase(world.store, "email:family@example.com", actor="user:test")


def test_an_unknown_identifier_still_erases_the_rows_that_carry_it(world: World) -> None:
    world.store.execute("DELETE FROM customer_identifiers WHERE value = 'anon-ann-7f3e'")
    receipt = erase(world.store, "anonymous_id:anon-ann-7f3e", actor="user:test")
    assert (receipt.customer_ids, receipt.counts["events"]) == ([], 2)


def test_erased_customer_id_stays_taken_and_retired(world: World) -> None:
    erase(world.store, world.ann, actor="user:test")
    assert world.store.fetchone("SELECT status, merged_into FROM customers WHERE customer_id = ?",
                                (world.ann,)) == ("retired", None)


def test_reingesting_the_same_rows_does_not_bring_the_person_back(world: World) -> None:
    erase(world.store, "email:ann.quill@example.com", actor="user:test")
    reports = {r.source: r for r in ingest(world.store, world.cfg, run_id="run_2")}
    assert {s: (r.new, r.suppressed) for s, r in reports.items()} == {"crm": (0, 2), "shop": (0, 1), "orders": (0, 1)}
    assert table_text_hits(world.store, ANN_IDENTIFIERS) == {}


def test_the_store_files_hold_no_identifier_after_erasure_and_purge(world: World, store_url: str) -> None:
    erase(world.store, "email:ann.quill@example.com", actor="user:test")
    world.store.close()
    report = purge(store_url)
    assert report["receipts"] == 1
    if store_url.startswith("duckdb:"):
        folder = Path(store_url[len("duckdb:///"):]).parent
        assert file_hits(folder, ANN_IDENTIFIERS) == {}


def test_erasure_empties_the_standardizers_memoized_values(world: World) -> None:
    from accord.standardize.emails import standardize_email

    standardize_email("Ann.Quill@Example.com")
    erase(world.store, world.ann, actor="user:test")
    assert standardize_email.cache_info().currsize == 0


def test_erasure_records_that_trained_models_must_be_retrained_and_a_later_training_settles_it(
        world: World) -> None:
    from datetime import datetime, timedelta

    from accord.privacy.stage import settle_model_exclusions

    model_sql = world.store.type_sql("INSERT INTO identity_models (version, trained_at, run_id, fingerprint, settings) "
                                     "VALUES (?, ?, 'run_1', 'f', CAST('{}' AS ${JSON}))")
    world.store.execute(model_sql, (1, datetime(2024, 1, 1)))
    receipt = erase(world.store, world.ann, actor="user:test")
    assert world.store.fetchall("SELECT model, receipt_id, retrained_at FROM model_exclusions") == [
        ("identity", receipt.receipt_id, None)]
    assert settle_model_exclusions(world.store) == {"identity": 1}  # the stored model still holds what it learnt
    retrained = receipt.erased_at + timedelta(hours=1)
    world.store.execute(model_sql, (2, retrained))
    assert settle_model_exclusions(world.store) == {}
    assert world.store.fetchall("SELECT retrained_at FROM model_exclusions") == [(retrained,)]
