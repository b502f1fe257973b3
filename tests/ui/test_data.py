"""What the dashboard's pages read from the store, on DuckDB and PostgreSQL, and its pure helpers."""

from __future__ import annotations

from typing import Any

from accord.api.auth import ApiKey
from accord.config import ProjectConfig
from accord.store import open_store
from accord.ui.data.customer import customer_view, find_customers, timeline
from accord.ui.data.overview import DISTRIBUTIONS, identity_summary, trait_distribution
from accord.ui.data.quality import warnings
from accord.ui.data.review import EvidenceCache, evidence, next_pair, side_by_side
from accord.ui.data.segments import daily_members, segment_sizes
from accord.ui.masking import Masker
from accord.ui.routes.auth import safe_next
from accord.ui.routes.review import format_skipped, parse_skipped
from accord.ui.session import Sessions, csrf_matches
from tests.ui.people import ADA_EMAIL, NOW, REVIEW_PAIR


def test_identity_summary_counts_customers_matches_and_duplicates(store_url: str, people: dict[str, str]) -> None:
    with open_store(store_url) as store:
        summary = identity_summary(store)
    assert summary == {"customers": 3, "records": 4, "records_per_customer": 1.33, "match_rate": 0.5,
                       "duplicates_resolved": 1, "size_labels": ["1", "2", "3", "4", "5+"],
                       "size_counts": [2, 1, 0, 0, 0]}


def test_trait_distributions_bucket_health_and_churn_risk(store_url: str, people: dict[str, str]) -> None:
    with open_store(store_url) as store:
        health, churn = (trait_distribution(store, d) for d in DISTRIBUTIONS)
    assert health["counts"] == [0, 0, 0, 1, 0, 0, 0, 0, 1, 0] and health["labels"][8] == "80–90"
    assert churn["counts"] == [0, 1, 0, 0, 0, 0, 0, 1, 0, 0] and churn["labels"][7] == "0.7–0.8"


def test_find_customers_by_any_identifier_or_name(store_url: str, people: dict[str, str]) -> None:
    with open_store(store_url) as store:
        def ids(query: str) -> list[str]:
            return find_customers(store, query, "GB")[0]

        assert ids("Ada@Example.com") == [people["ada"]]
        assert ids("email:ada@example.com") == [people["ada"]]
        assert ids("crm_contact_id:C-2") == [people["bob"]]
        assert ids("S-1") == [people["ada"]]
        assert ids("pos:p1") == [people["robert"]]
        assert ids("+44 20 7946 0999") == [people["robert"]]
        assert ids(people["bob"]) == [people["bob"]]
        assert ids("babbage") == sorted([people["bob"], people["robert"]])
        assert find_customers(store, "nobody@example.com", "GB") == ([], "no customer has email 'nobody@example.com'")


def test_customer_view_masks_every_personal_value_for_a_masker(store_url: str, people: dict[str, str]) -> None:
    with open_store(store_url) as store:
        view = customer_view(store, people["ada"], Masker())
        events = timeline(store, people["ada"], None, Masker())["events"]
    text = repr(view) + repr(events)
    for raw in (ADA_EMAIL, "Lovelace", "7946", "St James", "SW1Y", "gift for", "C-1", "S-1"):
        assert raw not in text, raw
    assert {a["attribute"]: a["record"] for a in view["attributes"]}["email"] in ("crm:c1", "shop:s1")
    assert [c["record"] for c in view["records"]["columns"]] == ["crm:c1", "shop:s1"]
    assert all(c["raw"] is None for c in view["records"]["columns"])
    assert [e["event"] for e in events] == ["Order Completed"] and events[0]["properties"] is None
    assert view["consent"][0]["purpose"] == "email_marketing" and view["segments"][0]["name"] == "healthy"


def test_customer_view_unmasked_keeps_lineage_and_raw_rows(store_url: str, people: dict[str, str]) -> None:
    with open_store(store_url) as store:
        view = customer_view(store, people["ada"], None)
    email = next(a for a in view["attributes"] if a["attribute"] == "email")
    assert email["value"] == ADA_EMAIL and email["rule"]
    assert view["records"]["columns"][0]["raw"] == {"k": "c1"}
    with open_store(store_url) as store:
        events = timeline(store, people["ada"], None, None)["events"]
    assert events[0]["properties"]["note"] == "gift for Ada Lovelace"
    assert {t["name"]: t["value"] for t in view["traits"]} == {"churn_risk": 0.1, "health_score": 85}


def test_review_pair_side_by_side_marks_agreeing_fields(store_url: str, people: dict[str, str]) -> None:
    with open_store(store_url) as store:
        pair = next_pair(store, set())
        assert (pair.record_a, pair.record_b) == REVIEW_PAIR
        assert next_pair(store, {REVIEW_PAIR}) is None
        rows = {r["field"]: r for r in side_by_side(store, *REVIEW_PAIR, None)}
    assert rows["name"] == {"field": "name", "a": "Bob Babbage", "b": "Robert Babbage", "same": False}
    assert rows["emails"]["a"] == "bob@example.com" and rows["emails"]["same"] is False


def test_evidence_without_a_trained_model_says_why(store_url: str, people: dict[str, str]) -> None:
    cfg = ProjectConfig.model_validate({"store": store_url})
    with open_store(store_url) as store:
        ev = evidence(store, cfg, *REVIEW_PAIR)
    assert ev["steps"] == [] and ev["note"].startswith("no trained model")
    assert ev["chart"]["bars"] == [[0, 0.0]]


def test_evidence_is_kept_until_a_record_changes(store_url: str, people: dict[str, str]) -> None:
    cfg = ProjectConfig.model_validate({"store": store_url})
    cache = EvidenceCache()
    with open_store(store_url) as store:
        first = cache.get(store, cfg, *REVIEW_PAIR)
        assert cache.get(store, cfg, *REVIEW_PAIR) is first
        store.execute("UPDATE source_records SET row_hash = 'changed' WHERE source = 'crm' AND record_key = 'c2'")
        assert cache.get(store, cfg, *REVIEW_PAIR) is not first


def test_segment_sizes_and_daily_members_follow_the_stints(store_url: str, people: dict[str, str]) -> None:
    with open_store(store_url) as store:
        assert [(s["name"], s["size"]) for s in segment_sizes(store)] == [("healthy", 1)]
        trend = daily_members(store, "healthy", days=5, today=NOW.date())["healthy"]
    assert trend == {"days": ["2024-05-28", "2024-05-29", "2024-05-30", "2024-05-31", "2024-06-01"],
                     "members": [0, 2, 2, 1, 1], "entered": [0, 2, 0, 0, 0], "exited": [0, 0, 0, 1, 0]}


# --- pure helpers -------------------------------------------------------------------------------

def test_quality_warnings_name_the_source_field_and_problem() -> None:
    cfg = ProjectConfig.model_validate({"sources": [{"name": "crm", "format": "csv", "path": "c.csv",
                                                     "primary_key": "id", "fields": {"emails": ["email"]}}]})
    report: dict[str, Any] = {"sources": [{
        "source": "crm", "records": 10, "quarantined_open": 2, "validity_sample": 10,
        "primary_key": {"columns": ["id"], "duplicate_rows_quarantined": 1, "uniqueness": 0.9091},
        "freshness": {"newest_age_days": 3.0, "median_age_days": 9.0},
        "fields": {"emails": {"completeness": 0.4, "validity": 0.8}, "phones": {"completeness": 0.0, "validity": None}},
    }], "consistency": [{"external_id": "crm_id", "linked_pairs": 5, "agreement": {"email": 0.6, "phone": 0.95}}]}
    assert warnings(report, cfg) == [
        {"source": "crm", "field": "", "message": "2 row(s) in quarantine"},
        {"source": "crm", "field": "primary key", "message": "key uniqueness 90.9% (1 duplicate rows)"},
        {"source": "crm", "field": "emails", "message": "only 40.0% filled"},
        {"source": "crm", "field": "emails", "message": "20.0% of values invalid"},
        {"source": "", "field": "email", "message": "sources linked by crm_id agree on email only 60.0% of the time"},
    ]


def test_masker_masks_by_field_and_scrubs_emails_from_text() -> None:
    m = Masker()
    assert m.field("emails", "ada@example.com") == "a***@example.com"
    assert m.field("phone", "+44 20 7946 0018") == "+**********18"
    assert m.field("name", "Ada Lovelace") == "A***"
    assert m.field("company", "Analytical Engines") == "Analytical Engines"
    assert m.text("merged: shared ada@example.com") == "merged: shared a***@example.com"


def test_a_session_cookie_names_its_key_and_fails_when_forged_or_the_key_is_gone() -> None:
    sessions = Sessions("secret-one")
    keys = {"sha256:abc": ApiKey("alice", "steward")}
    cookie = sessions.cookie_for("sha256:abc")
    user = sessions.user(cookie, keys)
    assert (user.name, user.role, user.key_hash) == ("alice", "steward", "sha256:abc")
    assert csrf_matches(user, user.csrf) and not csrf_matches(user, "x" * 32) and not csrf_matches(user, None)
    assert Sessions("secret-two").user(cookie, keys) is None
    assert sessions.user(cookie, {}) is None
    assert sessions.user(cookie[:-2] + "xx", keys) is None
    assert sessions.user(sessions.cookie_for("sha256:abc"), keys).csrf != user.csrf


def test_sign_in_returns_only_to_dashboard_paths() -> None:
    assert safe_next("/ui/customers/cus_00000001?x=1") == "/ui/customers/cus_00000001?x=1"
    for bad in ("https://evil.example/ui", "//evil.example/ui", "/v1/profiles", "/ui\\..\\x", None, ""):
        assert safe_next(bad) == "/ui/", bad


def test_skipped_pairs_round_trip_through_the_form() -> None:
    pairs = {("crm:a", "shop:b"), ("crm:c", "pos:d")}
    assert parse_skipped(format_skipped(pairs)) == pairs
    assert parse_skipped("garbage;;a|") == set()
