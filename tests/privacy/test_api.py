"""Privacy over HTTP: masking for analysts, the access audit, consent, export, erasure, and collection."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from tests.privacy.conftest import ANN_IDENTIFIERS, World


def test_an_analyst_sees_the_profile_with_pii_masked(api: Any, world: World) -> None:
    body = api.call("GET", f"/v1/profiles/customer_id:{world.ann}", role="analyst").json()
    assert body["multi"]["emails"][0]["value"] == "a***@example.com"
    assert body["attributes"]["given_name"]["value"] == "A***"
    assert body["attributes"]["given_name"]["record"] == "crm:1001"  # lineage stays
    assert not any(n.lower() in json.dumps(body).lower() for n in ANN_IDENTIFIERS)


def test_an_analyst_sees_records_and_events_masked(api: Any, world: World) -> None:
    for part in ("records", "events"):
        body = api.call("GET", f"/v1/profiles/customer_id:{world.ann}/{part}", role="analyst").text
        assert not any(n.lower() in body.lower() for n in ANN_IDENTIFIERS), part


def test_a_read_key_sees_the_profile_unmasked(api: Any, world: World) -> None:
    body = api.call("GET", f"/v1/profiles/customer_id:{world.ann}", role="read").json()
    assert body["attributes"]["given_name"]["value"] == "Ann"


def test_a_profile_read_is_logged_with_key_customer_and_purpose(api: Any, world: World) -> None:
    api.call("GET", "/v1/profiles/email:ann.quill@example.com", role="steward", purpose="support ticket 77")
    assert api.rows("SELECT actor, role, channel, action, customer_id, purpose, detail FROM access_log") == [
        ("key:env:ACCORD_STEWARD_KEY", "steward", "api", "profile.read", world.ann, "support ticket 77", "get_profile")]


def test_the_access_log_never_holds_the_identifier_used_to_look_up(api: Any, world: World) -> None:
    api.call("GET", "/v1/profiles/email:Ann.Quill@Example.com", role="read", purpose="look up ann.quill@example.com")
    api.call("GET", "/v1/profiles/phone:+14155550142/records", role="read")
    text = json.dumps(api.rows("SELECT * FROM access_log"), default=str).lower()
    assert not any(n.lower() in text for n in ANN_IDENTIFIERS)


def test_a_customer_page_read_in_the_dashboard_is_logged_without_identifiers(api: Any, world: World) -> None:
    from tests.privacy.conftest import ROLE_KEYS

    api.client.post("/ui/login", data={"api_key": ROLE_KEYS["analyst"], "next": "/ui/"}, follow_redirects=False)
    assert api.client.get(f"/ui/customers/{world.ann}").status_code == 200
    assert api.rows("SELECT actor, role, channel, action, customer_id FROM access_log") == [
        ("key:env:ACCORD_ANALYST_KEY", "analyst", "ui", "profile.read", world.ann)]


def test_the_audit_endpoint_lists_accesses_to_a_customer(api: Any, world: World) -> None:
    api.call("GET", f"/v1/profiles/customer_id:{world.ann}", role="read", purpose="churn call")
    entries = api.call("GET", f"/v1/privacy/audit?customer_id={world.ann}", role="steward").json()["entries"]
    assert [(e["action"], e["purpose"]) for e in entries] == [("profile.read", "churn call")]


def test_consent_put_then_get_shows_the_decision(api: Any, world: World) -> None:
    r = api.call("PUT", f"/v1/profiles/customer_id:{world.bob}/consent", role="steward",
                 json={"decisions": [{"purpose": "personalization", "status": "granted"}], "source": "preferences"})
    assert r.status_code == 200
    consent = {c["purpose"]: (c["status"], c["source"]) for c in
               api.call("GET", f"/v1/profiles/customer_id:{world.bob}/consent", role="marketer").json()["consent"]}
    assert consent["personalization"] == ("granted", "preferences")


def test_consent_for_an_unknown_purpose_names_it(api: Any, world: World) -> None:
    r = api.call("PUT", f"/v1/profiles/customer_id:{world.bob}/consent", role="steward",
                 json={"decisions": [{"purpose": "telepathy", "status": "granted"}]})
    assert (r.status_code, r.json()["message"]) == (422, "decisions[0].purpose 'telepathy': expected one of "
                                                         "email_marketing, personalization, analytics, sale_sharing "
                                                         "(privacy.purposes in accord.yaml)")


def test_export_json_holds_records_events_golden_and_consent(api: Any, world: World) -> None:
    data = api.call("GET", "/v1/privacy/email:ann.quill@example.com/export", role="steward").json()
    assert data["customer_ids"] == [world.ann]
    assert data["records"] == ["crm:1001", "shop:S-77"]
    assert len(data["tables"]["source_records"]) == 2
    assert len(data["tables"]["events"]) == 3
    assert len(data["tables"]["quarantine"]) == 1
    assert data["profile"]["attributes"]["given_name"]["record"] == "crm:1001"
    assert [c["purpose"] for c in data["consent_history"]] == ["email_marketing", "email_marketing"]


def test_export_zip_holds_one_csv_per_table(api: Any, world: World) -> None:
    r = api.call("GET", f"/v1/privacy/customer_id:{world.ann}/export?format=zip", role="steward")
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert {"tables/source_records.csv", "tables/events.csv", "golden.csv", "consent_history.csv",
            "identity_history.csv", "export.json"} <= set(names)


def test_erase_over_http_answers_the_receipt_and_the_profile_is_gone(api: Any, world: World) -> None:
    receipt = api.call("POST", "/v1/privacy/email:ann.quill@example.com/erase", role="steward",
                       purpose="erasure request 9").json()
    assert (receipt["customer_ids"], receipt["counts"]["source_records"], receipt["purpose"]) == (
        [world.ann], 2, "erasure request 9")
    assert api.call("GET", "/v1/profiles/email:ann.quill@example.com", role="read").status_code == 404


def test_erase_is_refused_to_an_analyst(api: Any, world: World) -> None:
    assert api.call("POST", f"/v1/privacy/customer_id:{world.ann}/erase", role="analyst").status_code == 403


def test_events_of_an_erased_person_are_not_collected(api: Any, world: World) -> None:
    api.call("POST", f"/v1/privacy/customer_id:{world.ann}/erase", role="steward")
    for body in ({"userId": "user-ann-5521", "event": "Came Back"}, {"anonymousId": "anon-ann-7f3e", "event": "X"},
                 {"userId": "someone-new", "event": "Hi"}):
        assert api.call("POST", "/v1/track", role="ingest", json=body).status_code == 200
    assert api.rows("SELECT event FROM events WHERE event IN ('Came Back', 'X', 'Hi')") == [("Hi",)]


def test_an_identify_with_an_erased_email_is_not_collected(api: Any, world: World) -> None:
    api.call("POST", f"/v1/privacy/customer_id:{world.ann}/erase", role="steward")
    api.call("POST", "/v1/identify", role="ingest", json={"userId": "fresh-1", "traits": {"email": "ANN.QUILL@example.com"}})
    assert api.rows("SELECT count(*) FROM events WHERE identity_value = 'fresh-1'") == [(0,)]


def test_consent_on_a_collected_event_becomes_the_customers_consent(api: Any, world: World) -> None:
    body = {"userId": "user-bob-1", "event": "Page Viewed",
            "context": {"consent": {"categoryPreferences": {"Personalization": True, "Sale Sharing": False}}}}
    assert api.call("POST", "/v1/track", role="ingest", json=body).status_code == 200
    assert sorted(api.rows("SELECT purpose, status, source FROM customer_consent WHERE customer_id = ?",
                           (world.bob,))) == [("email_marketing", "granted", "shop"),
                                              ("personalization", "granted", "event"),
                                              ("sale_sharing", "denied", "event")]


def test_server_logs_hold_no_identifier_of_the_person(api: Any, world: World, caplog: Any) -> None:
    import logging

    with caplog.at_level(logging.DEBUG, logger="accord"):
        api.call("GET", "/v1/profiles/email:ann.quill@example.com", role="analyst", purpose="check")
        api.call("GET", "/v1/privacy/email:ann.quill@example.com/export", role="steward")
        api.call("POST", "/v1/privacy/email:ann.quill@example.com/erase", role="steward")
        api.call("POST", "/v1/identify", role="ingest", json={"userId": "x1", "traits": {"email": "ann.quill@example.com"}})
    text = caplog.text.lower()
    assert not any(n.lower() in text for n in ANN_IDENTIFIERS)
