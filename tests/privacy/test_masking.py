"""Masking for analysts: values hidden, lineage kept."""

from __future__ import annotations

from accord.privacy.masking import mask_email, mask_phone, mask_profile, mask_value


def test_an_email_keeps_its_first_letter_and_domain() -> None:
    assert mask_email("ann.quill@example.com") == "a***@example.com"


def test_a_phone_keeps_its_last_two_digits() -> None:
    assert mask_phone("+14155550142") == "+*********42"


def test_other_text_keeps_its_first_letter() -> None:
    assert [mask_value(v) for v in ("Quill", "", None, 42)] == ["Q***", "", None, 42]


def test_golden_attributes_are_masked_and_lineage_kept() -> None:
    payload = {"customer_id": "cus_1", "attributes": {
        "given_name": {"value": "Ann", "record": "crm:1", "rule": "source_priority"},
        "company": {"value": "Acme", "record": "crm:1", "rule": "most_recent"}},
        "multi": {"emails": [{"value": "ann@x.org", "record": "crm:1"}]}}
    assert mask_profile(payload) == {"customer_id": "cus_1", "attributes": {
        "given_name": {"value": "A***", "record": "crm:1", "rule": "source_priority"},
        "company": {"value": "Acme", "record": "crm:1", "rule": "most_recent"}},
        "multi": {"emails": [{"value": "a***@x.org", "record": "crm:1"}]}}


def test_an_email_inside_free_text_is_masked() -> None:
    assert mask_profile({"reason": "merged on ann@x.org"}) == {"reason": "merged on a***@x.org"}


def test_configured_fields_decide_what_is_masked() -> None:
    payload = {"attributes": {"company": {"value": "Acme"}, "given_name": {"value": "Ann"}}}
    assert mask_profile(payload, ["company"]) == {"attributes": {"company": {"value": "A***"},
                                                                 "given_name": {"value": "Ann"}}}
