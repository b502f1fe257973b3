import csv
import math

import numpy as np
import pandas as pd
import pytest

from accord.config import ProjectConfig
from accord.errors import AccordError
from accord.evaluate import evaluate
from accord.identity.settings import IdentitySettings, default_model_settings
from accord.identity.clustering import ConstraintValues
from accord.identity.stage import constraint_values, explain, resolve
from tests.identity.people import insert_records, population


# Fewer u-sampling pairs than production: the population is small and the tests run twice.
SETTINGS = IdentitySettings(model=default_model_settings().model_copy(update={"u_max_pairs": 1e5}))


@pytest.fixture
def resolved(store):
    records, truth, groups = population()
    insert_records(store, records)
    report = resolve(store, ProjectConfig(), "run_1", settings=SETTINGS)
    return store, report, truth, groups


def clusters(store) -> dict[str, str]:
    return {f"{s}:{k}": c for s, k, c in store.fetchall("SELECT source, record_key, cluster_id FROM identity")}


def test_resolve_gives_every_current_record_a_cluster(resolved):
    store, report, truth, _ = resolved
    assert set(clusters(store)) == set(truth)
    assert report.records == len(truth)
    assert report.clusters == len(set(clusters(store).values()))


def test_households_twins_and_namesakes_stay_apart(resolved):
    store, _, truth, groups = resolved
    found = clusters(store)
    cluster_of_person: dict[str, set[str]] = {}
    for rid, person in truth.items():
        cluster_of_person.setdefault(person, set()).add(found[rid])
    for kind, pairs in groups.items():
        for pair in pairs:
            a, b = pair.split("+")
            assert not cluster_of_person[a] & cluster_of_person[b], f"{kind}: {pair} merged"


def test_no_true_person_is_merged_with_someone_else(resolved, tmp_path):
    store, _, truth, _ = resolved
    path = tmp_path / "truth.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "record_key", "person_id"])
        for rid, person in truth.items():
            w.writerow([*rid.split(":", 1), person])
    result = evaluate(store, path)
    assert result["over_merged_people"] == 0
    assert result["pairwise"]["precision"] == 1.0
    assert result["pairwise"]["recall"] >= 0.98
    assert result["clusters"]["true"] == 190


def test_edges_are_written_with_status_and_rule_or_model(resolved):
    store, report, _, _ = resolved
    rows = store.fetchall("SELECT status, COUNT(*) FROM match_edges GROUP BY status ORDER BY status")
    assert dict(rows) == {k: v for k, v in (("auto", report.auto_edges), ("rejected", report.rejected_edges),
                                            ("review", report.review_edges)) if v}
    kinds = {r[0] for r in store.fetchall("SELECT DISTINCT rule_or_model FROM match_edges")}
    assert kinds == {"rule:email", "rule:phone", "model:v1"}
    assert store.scalar("SELECT COUNT(*) FROM match_edges WHERE record_a >= record_b") == 0


def test_the_trained_model_is_saved_and_reused(resolved):
    store, report, _, _ = resolved
    assert (report.model_trained, report.model_version) == (True, 1)
    again = resolve(store, ProjectConfig(), "run_2", settings=SETTINGS)
    assert (again.model_trained, again.model_version) == (False, 1)
    retrained = resolve(store, ProjectConfig(), "run_3", retrain=True, settings=SETTINGS)
    assert (retrained.model_trained, retrained.model_version) == (True, 2)
    assert store.fetchall("SELECT version, run_id FROM identity_models ORDER BY version") == [
        (1, "run_1"), (2, "run_3")]
    assert store.scalar("SELECT COUNT(DISTINCT run_id) FROM identity") == 1


def test_explain_breaks_the_score_into_contributions(resolved):
    store, _, _, _ = resolved
    out = explain(store, ProjectConfig(), "crm:p0000-0", "shop:p0000-1")
    assert out["model_version"] == 1
    assert [c["comparison"] for c in out["contributions"]] == [
        "prior", "std_given_name", "std_family_name", "std_email", "std_phone", "std_dob", "std_postcode",
        "std_street", "std_city"]
    total = sum(c["match_weight"] for c in out["contributions"])
    assert math.isclose(total, out["match_weight"], abs_tol=1e-6)
    assert math.isclose(out["match_probability"], 2 ** total / (1 + 2 ** total), rel_tol=1e-9)


def test_explain_names_an_unknown_record(resolved):
    store, _, _, _ = resolved
    with pytest.raises(AccordError, match="'crm:nope' is not a current source record"):
        explain(store, ProjectConfig(), "crm:nope", "crm:p0000-0")


def test_a_records_own_key_among_its_external_ids_is_no_cannot_link():
    # Every support ticket carries its ticket id; one person writes many tickets.
    std = pd.DataFrame({
        "rid": ["support:T-1", "support:T-2", "crm:C-1"], "source": ["support", "support", "crm"],
        "record_key": ["T-1", "T-2", "C-1"], "std_dob": [None, None, None],
        "std_given_name": ["ann", "ann", "ann"], "std_family_name": ["lee", None, "lee"],
        "external_ids": ['{"support_ticket_id": "T-1"}', '{"support_ticket_id": "T-2"}',
                         '{"crm_contact_id": "C-1", "shop_customer_id": "SH9"}'],
    })
    std.loc[2, "std_dob"] = "1980-02-03"
    no_ids = pd.DataFrame(columns=["rid", "type", "value"])
    values = ConstraintValues(constraint_values(std, IdentitySettings()), no_ids, {})
    index = pd.Index(std["rid"])
    unique, names, _ = values.dicts_for(values.codes(index), np.arange(len(index)), len(index))
    assert unique == {"crm:C-1": {"dob": "1980-02-03", "external:crm:shop_customer_id": "SH9"}}
    assert list(unique["crm:C-1"]) == ["dob", "external:crm:shop_customer_id"]  # the order refusals are named in
    assert names == {"support:T-1": ("ann", "lee"), "support:T-2": ("ann", None), "crm:C-1": ("ann", "lee")}


def test_splink_warnings_go_to_the_report_not_to_stderr(store, capfd):
    records, _, _ = population(people=40)
    insert_records(store, records)
    report = resolve(store, ProjectConfig(), "run_1", settings=SETTINGS)
    captured = capfd.readouterr()
    assert "not observed" not in captured.err and "WARNING" not in captured.err
    assert len(report.warnings) == len(set(report.warnings))


def test_edge_parts_stack_as_pandas_concat_of_object_frames_would():
    import numpy as np

    from accord.identity.stage import _stack

    rules = pd.DataFrame({"record_a": ["a:1"], "record_b": ["b:1"], "rule_or_model": ["rule:email"], "priority": [10],
                          "probability": None, "match_weight": None})
    model = pd.DataFrame({"record_a": ["a:1", "a:2"], "record_b": ["c:1", "c:2"], "probability": [0.7, np.nan],
                          "match_weight": [1.2, 0.5]}).assign(rule_or_model="model:v1", priority=None)
    partial = pd.DataFrame({"record_a": ["x:1"], "record_b": ["y:1"]})
    for parts in ([rules, model], [model, rules], [rules, model, partial]):
        pd.testing.assert_frame_equal(_stack(parts), pd.concat([p.astype(object) for p in parts], ignore_index=True))
