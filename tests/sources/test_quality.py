"""The data-quality report: completeness, validity, key uniqueness, consistency, freshness."""

from __future__ import annotations

from accord.sources import ingest
from accord.sources.quality import quality_report
from accord.store import Store

CRM = """id,first,last,email,phone,dob,updated
1,Ann,Lee,ann.lee@gmail.com,+44 20 7946 0018,1984-03-07,2026-11-01T00:00:00Z
2,Bob,,not-an-email,12,1990-02-30,2026-10-01T00:00:00Z
3,Cy,Ng,,,,2026-09-01T00:00:00Z
3,Dup,Key,d@gmail.com,,,2026-09-01T00:00:00Z
"""
SHOP = """{"cid": "s1", "name": "Ann Lee", "email": "ann.lee@gmail.com", "crm": "1"}
{"cid": "s2", "name": "Bob Jones", "email": "bob@yahoo.com", "crm": "2"}
"""


def _setup(project, store: Store):
    project.file("crm.csv", CRM)
    project.file("shop.jsonl", SHOP)
    cfg = project.config(
        {"name": "crm", "format": "csv", "path": "crm.csv", "primary_key": "id",
         "fields": {"given_name": "first", "family_name": "last", "emails": ["email"], "phones": ["phone"],
                    "date_of_birth": "dob", "updated_at": "updated", "external_ids": {"crm_id": "id"}}},
        {"name": "shop", "format": "jsonl", "path": "shop.jsonl", "primary_key": "cid",
         "fields": {"full_name": {"column": "name", "split": "given family"}, "emails": ["email"],
                    "external_ids": {"crm_id": "crm"}}},
    )
    ingest(store, cfg)
    return quality_report(store, cfg.model_copy(update={"identity": cfg.identity.model_copy(
        update={"default_region": "GB"})}))


def _source(report, name):
    return next(s for s in report["sources"] if s["source"] == name)


def test_completeness_is_the_share_of_records_with_a_value(project, store):
    crm = _source(_setup(project, store), "crm")
    assert crm["records"] == 3
    assert crm["fields"]["family_name"]["completeness"] == round(2 / 3, 4)
    assert crm["fields"]["emails"]["completeness"] == round(2 / 3, 4)
    assert crm["fields"]["full_name"]["completeness"] == 0.0


def test_validity_counts_values_that_parse(project, store):
    crm = _source(_setup(project, store), "crm")
    assert crm["fields"]["emails"]["validity"] == 0.5      # not-an-email fails
    assert crm["fields"]["phones"]["validity"] == 0.5      # '12' is not a phone number
    assert crm["fields"]["date_of_birth"]["validity"] == 0.5  # 30 February is impossible


def test_duplicate_primary_keys_lower_uniqueness(project, store):
    pk = _source(_setup(project, store), "crm")["primary_key"]
    assert pk["duplicate_rows_quarantined"] == 1
    assert pk["uniqueness"] == 0.75


def test_consistency_compares_records_sharing_an_external_id(project, store):
    report = _setup(project, store)
    entry = next(c for c in report["consistency"] if c["external_id"] == "crm_id")
    assert entry["linked_pairs"] == 2
    assert entry["agreement"]["email"] == 1.0  # bob's crm email is invalid: only ann's pair has both, and agrees
    assert entry["agreement"]["given_name"] == 1.0


def test_freshness_reports_newest_and_median_age(project, store):
    fresh = _source(_setup(project, store), "crm")["freshness"]
    assert fresh["newest_age_days"] < fresh["median_age_days"]
