import json

import pandas as pd
import pytest

from accord.errors import AccordError
from accord.profiles import assign_customer_ids, history, resolve_customer_id
from tests.profiles.helpers import add_records, clustering, events, mapping, records


def test_first_run_gives_each_cluster_a_new_id_in_order_of_its_oldest_record(store):
    add_records(store, records("crm:1", "shop:1", "crm:2"))
    report = assign_customer_ids(store, clustering(["crm:2"], ["crm:1", "shop:1"]), "run_1")
    assert mapping(store) == {"crm:1": "cus_00000001", "shop:1": "cus_00000001", "crm:2": "cus_00000002"}
    assert report.created == 2 and report.customers == 2 and report.records == 3
    assert [e[:2] for e in events(store)] == [("created", "cus_00000001"), ("created", "cus_00000002")]


def test_rerun_on_same_clusters_changes_no_id_and_writes_no_event(store):
    add_records(store, records("crm:1", "shop:1", "crm:2"))
    assign_customer_ids(store, clustering(["crm:1", "shop:1"], ["crm:2"]), "run_1")
    before, n_events = mapping(store), len(events(store))
    # The same clustering with other labels and in another order.
    report = assign_customer_ids(store, clustering(["crm:2"], ["shop:1", "crm:1"], prefix="other"), "run_2")
    assert mapping(store) == before
    assert len(events(store)) == n_events
    assert (report.created, report.merged, report.split, report.events) == (0, 0, 0, 0)


def test_merge_keeps_the_oldest_id_and_redirects_the_other(store):
    # b's customer is created first, so its id is the oldest, though a's record is older.
    add_records(store, [{"rid": "crm:b", "day": 5}])
    assign_customer_ids(store, clustering(["crm:b"]), "run_1")
    add_records(store, [{"rid": "crm:a", "day": 0}])
    assign_customer_ids(store, clustering(["crm:a"], ["crm:b"]), "run_2")
    old_b, old_a = mapping(store)["crm:b"], mapping(store)["crm:a"]
    assert (old_b, old_a) == ("cus_00000001", "cus_00000002")

    report = assign_customer_ids(store, clustering(["crm:a", "crm:b"]), "run_3")
    assert mapping(store) == {"crm:a": old_b, "crm:b": old_b}
    assert report.merged == 1
    assert store.fetchone("SELECT status, merged_into FROM customers WHERE customer_id = ?", (old_a,)) == \
        ("retired", old_b)
    assert resolve_customer_id(store, old_a) == (old_b, True)
    assert resolve_customer_id(store, old_b) == (old_b, False)
    assert events(store)[-1][:3] == ("merged", old_b, old_a)


def test_chained_merges_resolve_in_one_step_to_the_survivor(store):
    add_records(store, records("s:x", "s:y", "s:z"))
    assign_customer_ids(store, clustering(["s:x"], ["s:y"], ["s:z"]), "run_1")
    x, y, z = (mapping(store)[r] for r in ("s:x", "s:y", "s:z"))
    assign_customer_ids(store, clustering(["s:x"], ["s:y", "s:z"]), "run_2")
    assign_customer_ids(store, clustering(["s:x", "s:y", "s:z"]), "run_3")
    assert resolve_customer_id(store, z) == (x, True)
    assert store.fetchall("SELECT from_id, to_id FROM customer_redirects ORDER BY from_id") == [(y, x), (z, x)]
    kinds = [(e["kind"], e["customer_id"], e["other_customer_id"]) for e in history(store, z)]
    assert ("merged", y, z) in kinds and ("merged", x, y) in kinds


def test_unknown_id_is_an_error(store):
    with pytest.raises(AccordError, match="no customer 'cus_99'"):
        resolve_customer_id(store, "cus_99")


def test_split_keeps_the_id_for_the_part_with_most_records(store):
    # r3 is the oldest record, but the part {r1, r2} holds more of the customer's records.
    add_records(store, [{"rid": "s:r3", "day": 0}, {"rid": "s:r1", "day": 1}, {"rid": "s:r2", "day": 2}])
    assign_customer_ids(store, clustering(["s:r1", "s:r2", "s:r3"]), "run_1")
    original = mapping(store)["s:r1"]
    report = assign_customer_ids(store, clustering(["s:r3"], ["s:r1", "s:r2"]), "run_2")
    m = mapping(store)
    assert m["s:r1"] == m["s:r2"] == original
    assert m["s:r3"] == "cus_00000002"
    assert report.split == 1 and report.created == 1
    kinds = [e[:4] for e in events(store)[1:]]
    assert ("created", "cus_00000002", None, '["s:r3"]') in kinds
    assert ("split", original, "cus_00000002", '["s:r3"]') in kinds


def test_split_tie_goes_to_the_part_with_the_oldest_record(store):
    add_records(store, [{"rid": "s:a", "day": 3}, {"rid": "s:b", "day": 0}, {"rid": "s:c", "day": 1},
                        {"rid": "s:d", "day": 2}])
    assign_customer_ids(store, clustering(["s:a", "s:b", "s:c", "s:d"]), "run_1")
    original = mapping(store)["s:a"]
    assign_customer_ids(store, clustering(["s:a", "s:c"], ["s:b", "s:d"]), "run_2")
    m = mapping(store)
    assert m["s:b"] == m["s:d"] == original  # s:b is the oldest record
    assert m["s:a"] == m["s:c"] != original


def test_split_tie_on_first_seen_goes_to_the_smallest_source_and_key(store):
    add_records(store, [{"rid": r, "day": 0} for r in ("shop:1", "crm:9", "shop:2", "crm:8")])
    assign_customer_ids(store, clustering(["shop:1", "crm:9", "shop:2", "crm:8"]), "run_1")
    original = mapping(store)["shop:1"]
    assign_customer_ids(store, clustering(["shop:1", "crm:9"], ["shop:2", "crm:8"]), "run_2")
    assert mapping(store)["crm:8"] == original  # crm:8 < crm:9


def test_adding_one_percent_new_records_keeps_every_existing_id(store):
    old = [f"crm:{i:03d}" for i in range(200)]
    add_records(store, records(*old))
    groups = [old[i:i + 2] for i in range(0, 200, 2)]
    assign_customer_ids(store, clustering(*groups), "run_1")
    before = mapping(store)
    add_records(store, records("shop:new1", "shop:new2", day=500))
    grown = [list(g) for g in groups]
    grown[7].append("shop:new1")
    grown.append(["shop:new2"])
    report = assign_customer_ids(store, clustering(*grown, prefix="again"), "run_2")
    after = mapping(store)
    assert {r: after[r] for r in before} == before
    assert after["shop:new1"] == before[groups[7][0]]
    assert after["shop:new2"] not in set(before.values())
    assert (report.created, report.records_added, report.merged, report.split) == (1, 1, 0, 0)
    assert [e[0] for e in events(store)[100:]] == ["created", "record_added"]


def test_record_missing_from_the_clustering_is_removed_and_an_empty_customer_retires(store):
    add_records(store, records("s:1", "s:2", "s:3"))
    assign_customer_ids(store, clustering(["s:1", "s:2"], ["s:3"]), "run_1")
    lone = mapping(store)["s:3"]
    report = assign_customer_ids(store, clustering(["s:1"]), "run_2")
    assert set(mapping(store)) == {"s:1"}
    assert report.records_removed == 2 and report.retired_empty == 1
    assert store.fetchone("SELECT status, merged_into FROM customers WHERE customer_id = ?", (lone,)) == \
        ("retired", None)
    assert resolve_customer_id(store, lone) == (lone, False)
    assert [e[0] for e in events(store)[2:]] == ["record_removed", "record_removed", "retired"]


def test_record_moving_between_existing_customers_is_audited_with_evidence(store):
    add_records(store, records("s:1", "s:2", "s:3", "s:4"))
    assign_customer_ids(store, clustering(["s:1", "s:2"], ["s:3", "s:4"]), "run_1")
    a, b = mapping(store)["s:1"], mapping(store)["s:3"]
    edges = pd.DataFrame([{"record_a": "s:2", "record_b": "s:3", "probability": 0.99, "match_weight": 7.1,
                           "rule_or_model": "model:v1", "status": "auto"},
                          {"record_a": "s:1", "record_b": "s:2", "probability": 0.2, "match_weight": -2.0,
                           "rule_or_model": "model:v1", "status": "review"}])
    assign_customer_ids(store, clustering(["s:1"], ["s:2", "s:3", "s:4"]), "run_2", edges=edges)
    event = history(store, b)[-1]
    assert (event["kind"], event["customer_id"], event["other_customer_id"], event["records"]) == \
        ("record_moved", b, a, ["s:2"])
    assert event["actor"] == "run_2"
    assert {(e["record_a"], e["record_b"], e["probability"]) for e in event["evidence"]} == \
        {("s:2", "s:3", 0.99), ("s:1", "s:2", 0.2)}


def test_a_partial_assignment_takes_its_evidence_from_the_stored_edges_of_its_records(store):
    add_records(store, records("s:1", "s:2", "s:3", "s:4", "s:5", "s:6"))
    assign_customer_ids(store, clustering(["s:1", "s:2"], ["s:3", "s:4"], ["s:5", "s:6"]), "run_1")
    a, b = mapping(store)["s:1"], mapping(store)["s:3"]
    store.executemany("INSERT INTO match_edges (record_a, record_b, probability, match_weight, rule_or_model, status, "
                      "run_id) VALUES (?, ?, ?, ?, 'model:v1', ?, 'run_1')",
                      [("s:2", "s:3", 0.99, 7.1, "auto"), ("s:1", "s:2", 0.2, -2.0, "review"),
                       ("s:5", "s:6", 0.95, 6.0, "auto")])
    # Only the records of the two customers that change are given; s:5 and s:6 stay as they are.
    assign_customer_ids(store, clustering(["s:1"], ["s:2", "s:3", "s:4"]), "run_2", partial=True, removed=[])
    event = history(store, b)[-1]
    assert (event["kind"], event["other_customer_id"], event["records"]) == ("record_moved", a, ["s:2"])
    assert [(e["record_a"], e["record_b"], e["probability"], e["status"]) for e in event["evidence"]] == \
        [("s:2", "s:3", 0.99, "auto"), ("s:1", "s:2", 0.2, "review")]
    assert mapping(store)["s:5"] == mapping(store)["s:6"] != b


def test_a_record_in_two_clusters_is_refused_and_nothing_is_written(store):
    add_records(store, records("s:1"))
    bad = pd.concat([clustering(["s:1"]), clustering(["s:1"], prefix="x")])
    with pytest.raises(AccordError, match="more than one cluster"):
        assign_customer_ids(store, bad, "run_1")
    assert mapping(store) == {} and events(store) == []
    assert store.scalar("SELECT last_value FROM profile_counters WHERE name = 'customer'") == 0


def test_history_lists_created_then_merged_with_records(store):
    add_records(store, records("s:1", "s:2"))
    assign_customer_ids(store, clustering(["s:1"], ["s:2"]), "run_1")
    assign_customer_ids(store, clustering(["s:1", "s:2"]), "run_2")
    h = history(store, "cus_00000002")
    assert [(e["kind"], e["customer_id"], e["records"]) for e in h] == [
        ("created", "cus_00000001", ["s:1"]), ("created", "cus_00000002", ["s:2"]),
        ("merged", "cus_00000001", ["s:2"])]
    assert json.loads(json.dumps(h, default=str))  # printable


def test_evidence_lists_the_strongest_edges_first_up_to_the_limit(store):
    add_records(store, records("s:1", "s:2", "s:3", "s:4"))
    edges = pd.DataFrame([{"record_a": "s:1", "record_b": r, "probability": p, "match_weight": 1.0,
                           "rule_or_model": "model:v1", "status": "auto"}
                          for r, p in (("s:2", 0.97), ("s:3", 0.99), ("s:4", 0.98))])
    assign_customer_ids(store, clustering(["s:1", "s:2", "s:3", "s:4"]), "run_1", edges=edges, evidence_limit=2)
    event = history(store, "cus_00000001")[0]
    assert event["records"] == ["s:1", "s:2", "s:3", "s:4"]
    assert [(e["record_b"], e["probability"]) for e in event["evidence"]] == [("s:3", 0.99), ("s:4", 0.98)]


def test_a_split_names_where_the_new_customer_came_from(store):
    add_records(store, records("s:1", "s:2", "s:3"))
    assign_customer_ids(store, clustering(["s:1", "s:2", "s:3"]), "run_1")
    assign_customer_ids(store, clustering(["s:1", "s:2"], ["s:3"]), "run_2")
    reasons = {(e["kind"], e["customer_id"]): e["reason"] for e in history(store, "cus_00000002")}
    assert reasons[("created", "cus_00000002")] == "split from cus_00000001"
    assert reasons[("split", "cus_00000001")] == \
        "records split out into cus_00000002; cus_00000001 keeps the part holding most of its records"
