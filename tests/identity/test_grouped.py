"""Scoring through rule groups (identity/grouped.py): fewer records for the model, real pairs out."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from accord.identity.grouped import (
    composite_table,
    model_table,
    predict_through_groups,
    raw_columns,
    rule_groups,
)
from accord.identity.model import IdentityModel, term_frequency_tables
from accord.identity.rules import apply_rules
from accord.identity.settings import default_model_settings
from accord.identity.stage import prepare, rule_edge_frame
from tests.identity.conftest import _settings
from tests.identity.people import population


@pytest.fixture(scope="module")
def std() -> pd.DataFrame:
    records, _, _ = population()
    frame = pd.DataFrame(records)
    frame["rid"] = frame["source"] + ":" + frame["record_key"]
    for col in ("emails", "phones"):
        frame[col] = [json.dumps(v) for v in frame[col]]
    return prepare(frame, "US")


@pytest.fixture(scope="module")
def rule_edges(std) -> pd.DataFrame:
    return rule_edge_frame(apply_rules(std, _settings()))


def test_rule_groups_join_records_through_others():
    edges = pd.DataFrame({"record_a": ["a", "b", "x"], "record_b": ["b", "c", "y"]})
    groups = rule_groups(["a", "b", "c", "d", "x", "y"], edges)
    assert groups[0] == groups[1] == groups[2]
    assert groups[4] == groups[5]
    assert len({groups[0], groups[3], groups[4]}) == 3


def composites(std: pd.DataFrame, groups: list[int]) -> dict[int, dict]:
    model = IdentityModel(default_model_settings())
    group_ids, table = composite_table(raw_columns(std, model), groups)
    return dict(zip(group_ids.tolist(), table.to_pylist()))


def test_a_composite_takes_each_value_from_the_most_complete_member_and_every_listed_value():
    std = pd.DataFrame({
        "rid": ["s:1", "s:2", "s:3"],
        "std_given_name": ["ann", "anne", None],
        "std_family_name": [None, "lee", "lee"],
        "std_dob": [None, "1980-01-02", None],
        "std_emails": [["a@x.com"], ["a@x.com", "b@y.com"], None],
        "std_email": ["a@x.com", "a@x.com", None],
    })
    out = composites(std, [0, 0, 1])
    first = out[0]
    # s:2 fills more columns than s:1: its values win, s:1 only fills what s:2 lacks.
    assert (first["rid"], first["std_given_name"], first["std_family_name"], first["std_dob"]) == \
        ("s:2", "anne", "lee", "1980-01-02")
    assert first["std_emails"] == ["a@x.com", "b@y.com"]
    lone = out[1]
    assert (lone["rid"], lone["std_family_name"], lone["std_emails"]) == ("s:3", "lee", None)


def test_members_equally_complete_give_the_smallest_rid_and_its_values_first():
    std = pd.DataFrame({
        "rid": ["s:9", "s:10", "s:2"],
        "std_given_name": ["bo", "bob", "rob"],
        "std_emails": [["b@x.com"], ["a@x.com", "b@x.com"], ["c@x.com"]],
    })
    out = composites(std, [0, 0, 0])[0]
    # "s:10" < "s:2" < "s:9" as text.
    assert (out["rid"], out["std_given_name"]) == ("s:10", "bob")
    assert out["std_emails"] == ["a@x.com", "b@x.com", "c@x.com"]


def test_a_list_column_without_any_value_gives_every_composite_none():
    """Every phone invalid (or no emails at all): the list column is empty after flattening."""
    std = pd.DataFrame({
        "rid": ["s:1", "s:2", "s:3"],
        "std_given_name": ["ann", "anne", "bo"],
        "std_family_name": ["lee", "lee", "ng"],
        "std_emails": [None, [], None],
        "std_email": [None, None, None],
    })
    out = composites(std, [0, 0, 1])
    assert len(out) == 2 and out[0]["std_emails"] is None and out[1]["std_emails"] is None


def test_the_arrow_model_table_equals_the_models_own_input_table(std):
    model = IdentityModel(default_model_settings())
    assert model_table(std, model).equals(model.input_table(std))


def test_scored_pairs_carry_the_score_splink_gives_the_same_pair(std, trained_model):
    model = IdentityModel.from_json(_settings().model, trained_model)
    direct = model.predict(std, 0.0)
    sample = direct.iloc[::7][["record_a", "record_b"]]
    # asked in the other order too: a pair is scored once, with record_a < record_b
    asked = pd.concat([sample, sample.rename(columns={"record_a": "record_b", "record_b": "record_a"})])
    scored = model.score_pairs(std, asked)
    expected = direct.iloc[::7].reset_index(drop=True)
    assert list(zip(scored["record_a"], scored["record_b"])) == list(zip(expected["record_a"], expected["record_b"]))
    assert scored["probability"].to_numpy() == pytest.approx(expected["probability"].to_numpy(), rel=1e-9)


def test_scored_pairs_above_a_threshold_are_the_ones_the_unfiltered_scores_keep(std, trained_model):
    model = IdentityModel.from_json(_settings().model, trained_model)
    asked = model.predict(std, 0.0).iloc[::3][["record_a", "record_b"]]
    everything = model.score_pairs(std, asked)
    above = model.score_pairs(std, asked, threshold=0.6)
    expected = everything[everything["probability"] >= 0.6].reset_index(drop=True)
    assert 0 < len(above) < len(everything)
    pd.testing.assert_frame_equal(above, expected)


def test_a_pair_naming_no_record_is_an_error_that_names_it(std, trained_model):
    model = IdentityModel.from_json(_settings().model, trained_model)
    first = std["rid"].iloc[0]
    with pytest.raises(KeyError, match="nobody:1"):
        model.score_pairs(std, pd.DataFrame({"record_a": [first], "record_b": ["nobody:1"]}))


def test_scoring_through_groups_gives_real_pair_scores_and_the_links_a_direct_predict_finds(
        std, rule_edges, trained_model):
    model = IdentityModel.from_json(_settings().model, trained_model)
    direct = model.predict(std, 0.6, term_frequencies=term_frequency_tables(std, model.settings))
    edges, info = predict_through_groups(model, std, rule_edges, 0.6)
    assert info.composites < info.records
    # Every edge is a real pair with the score a direct predict gives it.
    scores = direct.set_index(["record_a", "record_b"])["probability"]
    found = edges.set_index(["record_a", "record_b"])["probability"]
    common = found.index.intersection(scores.index)
    assert len(common) >= 0.9 * len(found)
    assert found[common].to_numpy() == pytest.approx(scores[common].to_numpy(), rel=1e-9)
    # The links between rule groups that a direct predict makes at auto-merge level are found.
    groups = pd.Series(rule_groups(std["rid"], rule_edges), index=std["rid"])
    between = direct[(groups[direct["record_a"]].to_numpy() != groups[direct["record_b"]].to_numpy())
                     & (direct["probability"] >= 0.95)]
    pairs = set(zip(edges["record_a"], edges["record_b"]))
    kept = sum((a, b) in pairs for a, b in zip(between["record_a"], between["record_b"]))
    assert kept >= 0.95 * len(between)


def test_training_on_many_records_reads_a_sample(std):
    model = IdentityModel(_settings().model, max_training_records=200).fit(std)
    assert model.training_summary_["records"] == len(std)
    assert model.training_summary_["sampled_records"] == 200
    assert len(model.predict(std, 0.9)) > 0


def test_no_candidate_pair_gives_no_edge(std, trained_model):
    model = IdentityModel.from_json(_settings().model, trained_model)
    few = std.iloc[:1].copy()
    edges, info = predict_through_groups(model, few, pd.DataFrame(columns=["record_a", "record_b"]), 0.6)
    assert list(edges.columns) == ["record_a", "record_b", "probability", "match_weight"]
    assert (len(edges), info.candidate_pairs, info.scored_pairs) == (0, 0, 0)
