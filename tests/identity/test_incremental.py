"""Incremental resolution: only the changes, against the stored graph, agreeing with a full rebuild."""

from __future__ import annotations

import json

import pytest

from accord.config import ProjectConfig
from accord.errors import AccordError
from accord.identity.incremental import resolve_changes, resolve_records
from accord.identity.stage import explain, resolve
from accord.profiles import build_profiles, record_decision
from accord.profiles.identifiers import refresh_customer_identifiers
from tests.identity.conftest import save_model
from tests.identity.people import insert_records, population

CFG = ProjectConfig()


def clusters(store) -> dict[str, str]:
    return {f"{s}:{k}": c for s, k, c in store.fetchall("SELECT source, record_key, cluster_id FROM identity")}


def edges(store) -> set[tuple]:
    return set(store.fetchall("SELECT record_a, record_b, rule_or_model, status FROM match_edges"))


def customers(store) -> dict[str, str]:
    return {f"{s}:{k}": c for s, k, c in store.fetchall("SELECT source, record_key, customer_id FROM record_customer")}


@pytest.fixture
def batches():
    """The test population in three batches (every fifth record, then every seventh, then the rest)."""
    records, truth, _ = population()
    third = [r for i, r in enumerate(records) if i % 5 == 0]
    second = [r for i, r in enumerate(records) if i % 5 and i % 7 == 0]
    first = [r for i, r in enumerate(records) if i % 5 and i % 7]
    return first, second, third, truth


@pytest.fixture
def resolved(store, batches, settings, trained_model):
    """The first batch resolved in full (with a model trained once for all tests), with profiles."""
    save_model(store, settings, trained_model)
    insert_records(store, batches[0], run_id="run_a")
    resolve(store, CFG, "run_1", settings=settings)
    build_profiles(store, CFG, None, "run_1")
    return store


def test_the_first_run_is_a_full_rebuild_and_says_why(store, batches, settings):
    insert_records(store, batches[0])
    report = resolve_changes(store, CFG, "run_1", settings=settings)
    assert report.mode == "full"
    assert report.warnings[0] == "full rebuild: no trained model yet"
    assert report.model_trained


def test_an_incremental_sequence_agrees_with_a_full_rebuild(resolved, batches, settings):
    store = resolved
    insert_records(store, batches[1], run_id="run_b")
    second = resolve_changes(store, CFG, "run_2", settings=settings)
    insert_records(store, batches[2], run_id="run_c")
    third = resolve_changes(store, CFG, "run_3", settings=settings)
    assert (second.mode, second.changed_records) == ("incremental", len(batches[1]))
    assert (third.mode, third.changed_records) == ("incremental", len(batches[2]))
    incremental = clusters(store)
    resolve(store, CFG, "run_full", settings=settings)
    full = clusters(store)
    assert set(incremental) == set(full) == set(batches[3])
    agreeing = sum(incremental[r] == full[r] for r in full)
    assert agreeing / len(full) >= 0.999


def test_the_changes_are_scored_with_the_trained_model_not_a_new_one(resolved, batches, settings):
    insert_records(resolved, batches[1], run_id="run_b")
    report = resolve_changes(resolved, CFG, "run_2", settings=settings)
    assert (report.model_trained, report.model_version) == (False, 1)
    assert report.model_edges > 0
    assert resolved.scalar("SELECT COUNT(*) FROM identity_models") == 1


def test_re_running_on_unchanged_data_changes_nothing(resolved, settings):
    store = resolved
    before_clusters, before_edges, before_ids = clusters(store), edges(store), customers(store)
    events = store.scalar("SELECT COUNT(*) FROM identity_audit")
    report = resolve_changes(store, CFG, "run_2", settings=settings)
    profiles = build_profiles(store, CFG, None, "run_2", scope=report.scope)
    assert (report.mode, report.changed_records, report.affected_records, report.scope) == ("incremental", 0, 0, [])
    assert (clusters(store), edges(store), customers(store)) == (before_clusters, before_edges, before_ids)
    assert profiles.ids.events == 0 and store.scalar("SELECT COUNT(*) FROM identity_audit") == events


def test_only_the_affected_records_are_reclustered(resolved, batches, settings):
    store = resolved
    untouched_runs = store.scalar("SELECT COUNT(*) FROM identity WHERE run_id = 'run_1'")
    new = batches[1][:3]
    insert_records(store, new, run_id="run_b")
    report = resolve_changes(store, CFG, "run_2", settings=settings)
    rewritten = store.scalar("SELECT COUNT(*) FROM identity WHERE run_id = 'run_2'")
    assert rewritten == report.affected_records
    assert 3 <= report.affected_records < 30
    assert store.scalar("SELECT COUNT(*) FROM identity WHERE run_id = 'run_1'") == untouched_runs + 3 - rewritten


def test_existing_customers_keep_their_ids_when_records_are_added(resolved, batches, settings):
    store = resolved
    before = customers(store)
    insert_records(store, batches[1], run_id="run_b")
    report = resolve_changes(store, CFG, "run_2", settings=settings)
    profiles = build_profiles(store, CFG, None, "run_2", scope=report.scope)
    after = customers(store)
    assert sum(after[r] == c for r, c in before.items()) / len(before) >= 0.99
    # Golden records were recomputed for the customers the changes touched, not for everyone.
    touched = {after[f"{s}:{k}"] for s, k in report.scope}
    assert profiles.golden.customers == len(touched) < len(set(after.values()))


def test_the_identifier_index_refreshed_for_the_touched_customers_equals_a_whole_refresh(resolved, batches,
                                                                                        settings):
    store = resolved
    index = "SELECT * FROM customer_identifiers ORDER BY id_type, value, customer_id"
    before = store.fetchall(index)
    insert_records(store, batches[1], run_id="run_b")
    report = resolve_changes(store, CFG, "run_2", settings=settings)
    build_profiles(store, CFG, None, "run_2", scope=report.scope)
    scoped = store.fetchall(index)
    with store.transaction():
        refresh_customer_identifiers(store)
    assert store.fetchall(index) == scoped != before


def test_a_changed_record_is_standardized_again(resolved, batches, settings):
    store = resolved
    record = batches[0][0]
    store.execute(store.type_sql("UPDATE source_records SET emails = CAST(? AS ${JSON}), row_hash = 'changed' "
                                 "WHERE source = ? AND record_key = ?"),
                  (json.dumps(["Brand.New@gmail.com"]), record["source"], record["record_key"]))
    report = resolve_changes(store, CFG, "run_2", settings=settings)
    assert report.changed_records == 1
    assert store.fetchone("SELECT std_email, row_hash FROM identity_standardized WHERE rid = ?",
                          (f"{record['source']}:{record['record_key']}",)) == ("brandnew@gmail.com", "changed")


def test_a_deleted_record_leaves_its_cluster_and_its_edges(resolved, settings):
    store = resolved
    rid = store.scalar("SELECT MIN(record_a) FROM match_edges WHERE status = 'auto'")
    store.execute("UPDATE source_records SET deleted_at = valid_from WHERE source = ? AND record_key = ?",
                  tuple(rid.split(":", 1)))
    report = resolve_changes(store, CFG, "run_2", settings=settings)
    build_profiles(store, CFG, None, "run_2", scope=report.scope)
    assert report.removed_records == 1
    assert rid not in clusters(store) and rid not in customers(store)
    assert store.scalar("SELECT COUNT(*) FROM match_edges WHERE record_a = ? OR record_b = ?", (rid, rid)) == 0


def test_the_report_counts_the_records_the_state_holds_after_new_changed_and_deleted_ones(resolved, batches,
                                                                                          settings):
    store = resolved
    before = store.scalar("SELECT COUNT(*) FROM identity_standardized")
    changed, deleted = batches[0][0], batches[0][1]
    store.execute("UPDATE source_records SET row_hash = 'changed' WHERE source = ? AND record_key = ?",
                  (changed["source"], changed["record_key"]))
    store.execute("UPDATE source_records SET deleted_at = valid_from WHERE source = ? AND record_key = ?",
                  (deleted["source"], deleted["record_key"]))
    insert_records(store, batches[1][:3], run_id="run_b")

    report = resolve_changes(store, CFG, "run_2", settings=settings)

    assert (report.changed_records, report.removed_records) == (4, 1)
    assert report.records == store.scalar("SELECT COUNT(*) FROM identity_standardized") == before - 1 + 3


def test_a_new_cannot_link_decision_splits_the_cluster_at_the_next_run(resolved, settings):
    store = resolved
    a, b = store.fetchone("SELECT record_a, record_b FROM match_edges WHERE status = 'auto' "
                          "AND rule_or_model LIKE 'model:%' ORDER BY record_a, record_b LIMIT 1")
    assert clusters(store)[a] == clusters(store)[b]
    record_decision(store, a, b, False, "user:ana")
    report = resolve_changes(store, CFG, "run_2", settings=settings)
    assert report.changed_records == 0 and report.affected_records >= 2
    assert clusters(store)[a] != clusters(store)[b]
    # The identity stage itself honours it on a full rebuild too.
    resolve(store, CFG, "run_3", settings=settings)
    assert clusters(store)[a] != clusters(store)[b]


def test_a_must_link_decision_joins_two_clusters_in_the_identity_stage(resolved, settings):
    store = resolved
    found = clusters(store)
    a, b = sorted(found)[0], next(r for r in sorted(found) if found[r] != found[sorted(found)[0]])
    record_decision(store, a, b, True, "user:ana")
    resolve(store, CFG, "run_2", settings=settings)
    assert clusters(store)[a] == clusters(store)[b]
    assert store.fetchone("SELECT rule_or_model, status FROM match_edges WHERE record_a = ? AND record_b = ?",
                          (min(a, b), max(a, b))) == ("decision:must_link", "auto")


def test_resolve_records_stores_resolves_and_assigns_ids(resolved, batches, settings):
    store = resolved
    known = batches[0][0]
    known_id = customers(store)[f"{known['source']}:{known['record_key']}"]
    out = resolve_records(store, CFG, [
        {"source": "api", "record_key": "u1", "given_name": known["given_name"], "family_name": known["family_name"],
         "emails": known["emails"], "phones": known["phones"], "date_of_birth": known["date_of_birth"]},
        {"source": "api", "record_key": "u2", "given_name": "Zed", "family_name": "Quux",
         "emails": "zed@quux.example"},
    ], settings=settings)
    assert [(a.record_key, a.customer_id == known_id, a.outcome) for a in out] == [
        ("u1", True, "joined"), ("u2", False, "created")]
    assert customers(store)["api:u2"] == out[1].customer_id
    assert store.fetchone("SELECT given_name, CAST(emails AS TEXT) FROM source_records WHERE record_key = 'u2'") == (
        "Zed", '["zed@quux.example"]')
    assert store.fetchone("SELECT value FROM golden_values WHERE customer_id = ? AND attribute = 'email'",
                          (out[1].customer_id,)) == ("zed@quux.example",)
    again = resolve_records(store, CFG, [{"source": "api", "record_key": "u2", "given_name": "Zed",
                                          "family_name": "Quux", "emails": ["zed@quux.example"]}], settings=settings)
    assert [(a.customer_id, a.outcome) for a in again] == [(out[1].customer_id, "unchanged")]


def test_resolve_records_names_a_record_without_a_key(resolved, settings):
    with pytest.raises(AccordError, match=r"records\[0\]: 'source' and 'record_key' are required"):
        resolve_records(resolved, CFG, [{"source": "api", "given_name": "Zed"}], settings=settings)


def test_resolve_records_needs_a_resolved_store(store, settings):
    with pytest.raises(AccordError, match="run 'accord run' first"):
        resolve_records(store, CFG, [{"source": "api", "record_key": "u1"}], settings=settings)


def test_explain_reads_the_stored_records_and_agrees_with_the_stored_edge(resolved, settings):
    store = resolved
    a, b, p = store.fetchone("SELECT record_a, record_b, probability FROM match_edges "
                             "WHERE probability IS NOT NULL ORDER BY probability, record_a LIMIT 1")
    out = explain(store, ProjectConfig(identity={"model": settings.model.model_dump()}), a, b)
    assert out["match_probability"] == pytest.approx(p, rel=1e-9)


def test_changed_identity_settings_make_the_next_run_a_full_rebuild(resolved, settings):
    stricter = ProjectConfig(identity={"auto_merge_threshold": 0.99})
    report = resolve_changes(resolved, stricter, "run_2", settings=settings)
    assert report.mode == "full"
    assert report.warnings[0] == "full rebuild: the identity settings changed since the last full rebuild"
    assert resolve_changes(resolved, stricter, "run_3", settings=settings).mode == "incremental"
