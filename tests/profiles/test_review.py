import math

import pytest
import yaml
from click.testing import CliRunner

from accord.cli import main
from accord.config import ProjectConfig
from accord.errors import AccordError
from accord.identity.stage import resolve
from accord.profiles import constraints, record_decision
from accord.profiles.review import (
    apply_review_decision,
    count_pending,
    pair_view,
    pending_pairs,
)
from accord.store import open_store
from tests.identity.people import insert_records, population
from tests.identity.test_stage import SETTINGS
from tests.profiles.helpers import add_records

ANN = {"given_name": "Ann", "family_name": "Lee", "emails": ["ann@example.com"], "phones": ["+14155550100"],
       "street": "1 Main St", "city": "Salem", "postcode": "97301", "country": "US", "date_of_birth": "1980-02-03"}


def add_edges(store, edges: list[tuple[str, str, float | None, str]]) -> None:
    """match_edges rows (record_a, record_b, probability, status), as the identity stage writes them."""
    with store.transaction():
        store.executemany(
            "INSERT INTO match_edges (record_a, record_b, probability, match_weight, rule_or_model, status, reason, "
            "run_id) VALUES (?, ?, ?, ?, ?, ?, NULL, 'run_1')",
            [(a, b, p, None if p is None else math.log2(p / (1 - p)), "rule:email" if p is None else "model:v1", s)
             for a, b, p, s in edges])


@pytest.fixture
def queued(store):
    """Five records; four review pairs (0.9, 0.8, 0.7, 0.6), one auto and one rejected edge."""
    add_records(store, [{"rid": "crm:1", **ANN}, {"rid": "shop:1", **ANN, "given_name": "Anne", "phones": []},
                        {"rid": "crm:2", "given_name": "Bo"}, {"rid": "crm:3", "given_name": "Cy"},
                        {"rid": "shop:2", "given_name": "Di"}])
    add_edges(store, [("crm:2", "crm:3", 0.7, "review"), ("crm:1", "shop:1", 0.9, "review"),
                      ("crm:3", "shop:2", 0.6, "review"), ("crm:1", "crm:2", 0.8, "review"),
                      ("crm:1", "crm:3", 0.97, "auto"), ("crm:2", "shop:2", None, "rejected")])
    return store


def pairs(store, limit=None) -> list[tuple[str, str]]:
    return [(p.record_a, p.record_b) for p in pending_pairs(store, limit)]


def test_pending_pairs_are_the_review_edges_strongest_first(queued):
    assert pairs(queued) == [("crm:1", "shop:1"), ("crm:1", "crm:2"), ("crm:2", "crm:3"), ("crm:3", "shop:2")]
    assert pairs(queued, 2) == [("crm:1", "shop:1"), ("crm:1", "crm:2")]
    assert pending_pairs(queued, 1)[0].probability == pytest.approx(0.9)


def test_a_decided_pair_leaves_the_queue_and_a_skipped_one_stays(queued):
    record_decision(queued, "crm:2", "crm:1", False, "user:ana")  # either order names the same pair
    apply_review_decision(queued, "crm:2", "crm:3", "k", "user:ana")
    assert pairs(queued) == [("crm:1", "shop:1"), ("crm:2", "crm:3"), ("crm:3", "shop:2")]
    assert count_pending(queued) == 3


def test_apply_review_decision_writes_must_link_or_cannot_link(queued):
    assert apply_review_decision(queued, "crm:1", "shop:1", "s", "ana") == "must_link"
    assert apply_review_decision(queued, "crm:1", "crm:2", "different", "bo") == "cannot_link"
    assert apply_review_decision(queued, "crm:2", "crm:3", "skip", "bo") is None
    assert constraints(queued)[["record_a", "record_b", "kind", "actor"]].values.tolist() == [
        ["crm:1", "crm:2", "cannot_link", "bo"], ["crm:1", "shop:1", "must_link", "ana"]]
    with pytest.raises(AccordError, match="unknown choice 'x'"):
        apply_review_decision(queued, "crm:1", "crm:2", "x", "bo")


def test_pair_view_without_a_model_shows_the_records_and_says_so(queued):
    view = pair_view(queued, ProjectConfig(), "crm:1", "shop:1")
    rows = {f["field"]: (f["a"], f["b"], f["same"]) for f in view["fields"]}
    assert rows == {
        "source": ("crm", "shop", False),
        "name": ("Ann Lee", "Anne Lee", False),
        "emails": ("ann@example.com", "ann@example.com", True),
        "phones": ("+14155550100", "", False),
        "address": ("1 Main St, Salem, 97301, US", "1 Main St, Salem, 97301, US", True),
        "date_of_birth": ("1980-02-03", "1980-02-03", True),
        "company": ("", "", False),
    }
    assert view["probability"] == pytest.approx(0.9) and view["evidence"] == []
    assert view["note"].startswith("no trained model")


def test_pair_view_with_a_trained_model_gives_per_comparison_evidence(store):
    records, _, _ = population(people=40)
    insert_records(store, records)
    resolve(store, ProjectConfig(), "run_1", settings=SETTINGS)
    view = pair_view(store, ProjectConfig(), "crm:p0000-0", "shop:p0000-1")
    assert view["note"] is None and view["model_version"] == 1
    assert [e["comparison"] for e in view["evidence"]] == [
        "prior", "std_given_name", "std_family_name", "std_email", "std_phone", "std_dob", "std_postcode",
        "std_street", "std_city"]
    assert math.isclose(sum(e["match_weight"] for e in view["evidence"]), view["match_weight"], abs_tol=1e-6)
    assert 0 < view["probability"] <= 1


# --- accord review ------------------------------------------------------------------------------


def review(store_url, tmp_path, *args: str, input: str = ""):
    (tmp_path / "accord.yaml").write_text(yaml.safe_dump({"store": store_url, "sources": []}))
    return CliRunner().invoke(main, ["-c", str(tmp_path), "review", *args], input=input)


def test_review_cli_records_same_and_different_and_leaves_the_rest(store_url, tmp_path):
    with open_store(store_url) as store:
        add_records(store, [{"rid": r} for r in ("crm:1", "shop:1", "crm:2", "crm:3", "shop:2")])
        add_edges(store, [("crm:1", "shop:1", 0.9, "review"), ("crm:1", "crm:2", 0.8, "review"),
                          ("crm:2", "crm:3", 0.7, "review"), ("crm:3", "shop:2", 0.6, "review")])

    result = review(store_url, tmp_path, "--reviewer", "ana", input="s\nd\nq\n")

    assert result.exit_code == 0, result.output
    assert "recorded must_link crm:1 ~ shop:1 by ana" in result.output
    assert "recorded cannot_link crm:1 ~ crm:2 by ana" in result.output
    assert "no trained model" in result.output
    assert "decided same 1, different 1; skipped 0; 2 left" in result.output
    with open_store(store_url) as store:
        assert constraints(store)[["record_a", "record_b", "kind", "actor"]].values.tolist() == [
            ["crm:1", "crm:2", "cannot_link", "ana"], ["crm:1", "shop:1", "must_link", "ana"]]
        assert pairs(store) == [("crm:2", "crm:3"), ("crm:3", "shop:2")]


def test_review_cli_with_nothing_to_review_says_so(store_url, tmp_path):
    result = review(store_url, tmp_path)

    assert (result.exit_code, result.output) == (0, "no pairs waiting for review\n")
