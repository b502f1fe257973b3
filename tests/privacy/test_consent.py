"""Consent per purpose: from source fields, the API and events; the most recent decision wins; enforcement."""

from __future__ import annotations

from datetime import datetime

import pytest

from accord.errors import ConfigError
from accord.privacy.consent import (
    allowed,
    consent_filter_sql,
    consent_history_of,
    current_consent,
    record_event_consent,
    refresh_consent,
    set_consent,
    status_of,
)
from accord.privacy.settings import PrivacySettings
from accord.sources import ingest
from tests.privacy.conftest import World, project_config

SETTINGS = PrivacySettings()


def consent(world: World, customer_id: str) -> dict[str, str]:
    return dict(world.store.fetchall("SELECT purpose, status FROM customer_consent WHERE customer_id = ?",
                                     (customer_id,)))


@pytest.mark.parametrize(("value", "status"), [("yes", "granted"), ("TRUE", "granted"), ("opt_in", "granted"),
                                               ("1", "granted"), ("no", "denied"), ("false", "denied"),
                                               ("unsubscribed", "denied"), ("withdrawn", "withdrawn"),
                                               ("", None), ("maybe", None), (True, "granted")])
def test_source_values_read_as_consent_statuses(value: object, status: str | None) -> None:
    assert status_of(value) == status


def test_the_most_recent_decision_across_a_customers_records_wins(world: World) -> None:
    # Ann: crm 'yes' on 1 March, shop 'false' on 1 May; Bob: crm 'no' on 2 March, shop 'true' on 2 May.
    assert (consent(world, world.ann), consent(world, world.bob)) == (
        {"email_marketing": "denied"}, {"email_marketing": "granted"})


def test_the_history_keeps_every_decision_with_time_source_and_basis(world: World) -> None:
    rows = [(h["purpose"], h["status"], h["decided_at"], h["source"], h["lawful_basis"])
            for h in consent_history_of(world.store, world.ann)]
    assert rows == [("email_marketing", "granted", datetime(2024, 3, 1, 10), "crm", "consent"),
                    ("email_marketing", "denied", datetime(2024, 5, 1, 9), "shop", "consent")]


def test_a_record_that_turns_from_yes_to_no_withdraws_consent(world: World) -> None:
    crm = (world.data_dir / "crm.csv").read_text().replace("yes,2024-03-01T10:00:00", "no,2024-06-01T10:00:00", 1)
    (world.data_dir / "crm.csv").write_text(crm)
    ingest(world.store, world.cfg, ["crm"], run_id="run_2")
    refresh_consent(world.store, world.cfg)
    assert consent(world, world.ann) == {"email_marketing": "withdrawn"}


def test_refreshing_twice_adds_no_decision(world: World) -> None:
    assert refresh_consent(world.store, world.cfg).decisions_added == 0


def test_an_api_decision_newer_than_the_records_wins(world: World) -> None:
    set_consent(world.store, SETTINGS, world.ann, [{"purpose": "email_marketing", "status": "granted"}],
                "preference_centre", "user:test")
    assert consent(world, world.ann) == {"email_marketing": "granted"}


def test_an_older_api_decision_does_not_override_a_newer_record(world: World) -> None:
    set_consent(world.store, SETTINGS, world.bob, [{"purpose": "email_marketing", "status": "denied",
                                                     "decided_at": datetime(2024, 1, 1)}], "import", "user:test")
    assert consent(world, world.bob) == {"email_marketing": "granted"}


def test_current_consent_lists_every_purpose_with_defaults(world: World) -> None:
    rows = {c["purpose"]: (c["status"], c["recorded"]) for c in current_consent(world.store, SETTINGS, world.bob)}
    assert rows == {"email_marketing": ("granted", True), "personalization": ("denied", False),
                    "analytics": ("denied", False), "sale_sharing": ("denied", False)}


def test_event_consent_is_recorded_for_the_customer_its_user_id_names(world: World) -> None:
    event = {"userId": "user-bob-1", "messageId": "m-9", "timestamp": "2025-01-01T00:00:00Z",
             "context": {"consent": {"categoryPreferences": {"Analytics": True, "Advertising": True}}}}
    assert record_event_consent(world.store, event, SETTINGS) == 1  # Advertising names no purpose here
    assert consent(world, world.bob)["analytics"] == "granted"


def test_event_categories_map_to_purposes_in_config(world: World) -> None:
    settings = PrivacySettings(event_categories={"Advertising": "sale_sharing"})
    event = {"userId": "user-bob-1", "context": {"consent": {"categoryPreferences": {"Advertising": False}}}}
    record_event_consent(world.store, event, settings)
    assert consent(world, world.bob)["sale_sharing"] == "denied"


def test_an_event_saying_false_after_true_withdraws(world: World) -> None:
    for value in (True, False):
        record_event_consent(world.store, {"userId": "user-bob-1", "context": {
            "consent": {"categoryPreferences": {"personalization": value}}}}, SETTINGS)
    assert consent(world, world.bob)["personalization"] == "withdrawn"


def test_allowed_needs_granted_consent(world: World) -> None:
    assert [allowed(world.store, c, "email_marketing") for c in (world.ann, world.bob)] == [False, True]


def test_allowed_uses_the_purpose_default_when_nothing_is_recorded(world: World) -> None:
    settings = PrivacySettings(purposes={"analytics": {"default": "granted"}, "email_marketing": {}})
    assert [allowed(world.store, world.ann, p, settings) for p in ("analytics", "email_marketing")] == [True, False]


def test_the_sql_filter_keeps_customers_who_allow_the_purpose(world: World) -> None:
    where, params = consent_filter_sql("email_marketing", "c.customer_id")
    rows = world.store.fetchall(f"SELECT c.customer_id FROM customers c WHERE {where} ORDER BY 1", params)
    assert rows == [(world.bob,)]


def test_the_sql_filter_with_a_granted_default_drops_only_refusals(world: World) -> None:
    settings = PrivacySettings(purposes={"email_marketing": {"default": "granted"}, "analytics": {"default": "granted"}})
    rows = {p: [r[0] for r in world.store.fetchall(
        f"SELECT customer_id FROM customers c WHERE {consent_filter_sql(p, 'c.customer_id', settings)[0]} ORDER BY 1",
        consent_filter_sql(p, "c.customer_id", settings)[1])] for p in ("email_marketing", "analytics")}
    assert rows == {"email_marketing": [world.bob], "analytics": [world.ann, world.bob]}


def test_a_source_consent_field_for_an_unknown_purpose_names_the_field(world: World, store_url: str) -> None:
    cfg = project_config(store_url, world.data_dir, privacy={"purposes": ["analytics"]})
    with pytest.raises(ConfigError, match=r"sources\[0\]\.fields\.consent\.email_marketing: not a purpose"):
        refresh_consent(world.store, cfg)


def test_purposes_in_config_are_validated_with_the_line() -> None:
    from accord.config import parse_config

    with pytest.raises(ConfigError, match=r"accord.yaml:3: privacy.purposes: purpose 'Email': expected lower-case"):
        parse_config("project: p\nprivacy:\n  purposes: [Email]\n")


# --- enforcement in the stages that use consent ------------------------------------------------------

def test_a_segment_requiring_consent_excludes_customers_without_it(world: World) -> None:
    from accord.segments.batch import preview

    assert preview(world.store, "orders_90d >= 1")["count"] == 2
    assert preview(world.store, "orders_90d >= 1", requires_consent=["email_marketing"])["count"] == 1


def test_withdrawing_consent_takes_a_customer_out_of_a_consent_segment(world: World) -> None:
    from accord.segments.batch import preview

    set_consent(world.store, SETTINGS, world.bob, [{"purpose": "email_marketing", "status": "withdrawn"}], "api", "t")
    assert preview(world.store, "orders_90d >= 1", requires_consent=["email_marketing"])["count"] == 0


def test_a_decision_for_a_customer_who_withdrew_personalization_uses_no_profile_data(world: World) -> None:
    from accord.decisions.engine import DecideRequest, DecisionEngine
    from accord.decisions.settings import DecisionsSettings

    set_consent(world.store, SETTINGS, world.bob, [{"purpose": "personalization", "status": "withdrawn"}], "api", "t")
    engine = DecisionEngine(DecisionsSettings.model_validate({"offers": [{"id": "a"}]}), seed=1)
    decision = engine.decide(world.store, DecideRequest(customer_id=world.bob))
    assert (decision.personalized, decision.features) == (False, {"traits": {}})


def test_the_privacy_stage_reports_consent_and_retention(world: World) -> None:
    from accord.privacy.stage import run_privacy

    crm = (world.data_dir / "crm.csv").read_text().replace("no,2024-03-02T10:00:00", "yes,2024-06-02T10:00:00", 1)
    (world.data_dir / "crm.csv").write_text(crm)
    ingest(world.store, world.cfg, ["crm"], run_id="run_2")
    report = run_privacy(world.store, world.cfg).as_dict()
    assert (report["consent"]["decisions_added"], report["consent"]["customers"], report["retention"]["rows"]) == (
        1, 2, 0)
