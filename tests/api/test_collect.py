"""Segment-compatible collection: what each call stores, deduplication, limits and errors."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import orjson

from tests.api.conftest import Api

EVENT_COLS = "event_id, source, type, event, identity_type, identity_value, anonymous_id, revenue, run_id"


def props(api: Api, event_id: str) -> Any:
    value = api.rows("SELECT properties FROM events WHERE event_id = ?", (event_id,))[0][0]
    return json.loads(value) if isinstance(value, str) else value


def test_track_answers_success_true(api: Api) -> None:
    r = api.post("/v1/track", {"userId": "u1", "event": "Signed Up", "messageId": "m1"})
    assert (r.status_code, r.json()) == (200, {"success": True})


def test_track_is_stored_with_user_id_identity_and_revenue(api: Api) -> None:
    api.post("/v1/track", {"userId": "u1", "anonymousId": "a1", "event": "Order Completed", "messageId": "m1",
                           "properties": {"revenue": 42.5, "currency": "EUR"}})
    assert api.rows(f"SELECT {EVENT_COLS} FROM events") == [
        ("m1", "api", "track", "Order Completed", "user_id", "u1", "a1", 42.5, "api")]


def test_track_keeps_properties_context_and_integrations_but_not_the_write_key(api: Api) -> None:
    api.post("/v1/track", {"userId": "u1", "event": "E", "messageId": "m1", "properties": {"sku": "A"},
                           "context": {"ip": "127.0.0.1"}, "integrations": {"All": True}, "writeKey": "secret"})
    assert props(api, "m1") == {"properties": {"sku": "A"}, "context": {"ip": "127.0.0.1"},
                                "integrations": {"All": True}}


def test_anonymous_only_message_is_identified_by_anonymous_id(api: Api) -> None:
    api.post("/v1/page", {"anonymousId": "a1", "name": "Home", "messageId": "m1"})
    assert api.rows(f"SELECT {EVENT_COLS} FROM events") == [
        ("m1", "api", "page", "Home", "anonymous_id", "a1", "a1", None, "api")]


def test_screen_name_is_the_event_name(api: Api) -> None:
    api.post("/v1/screen", {"userId": "u1", "name": "Settings", "messageId": "m1"})
    assert api.rows("SELECT type, event FROM events") == [("screen", "Settings")]


def test_identify_stores_an_event_and_an_identity_signal_with_traits(api: Api) -> None:
    api.post("/v1/identify", {"userId": "u1", "anonymousId": "a1", "messageId": "m1",
                              "traits": {"email": "ada@example.com"}})
    assert api.rows("SELECT type FROM events") == [("identify",)]
    rows = api.rows("SELECT event_id, type, user_id, anonymous_id, previous_id, group_id, traits, processed_at "
                    "FROM identity_signals")
    assert [r[:6] + (json.loads(r[6]) if isinstance(r[6], str) else r[6], type(r[7])) for r in rows] == [
        ("m1", "identify", "u1", "a1", None, None, {"email": "ada@example.com"}, datetime)]  # stitched at once


def test_alias_stores_the_previous_id_signal(api: Api) -> None:
    api.post("/v1/alias", {"userId": "u1", "previousId": "a1", "messageId": "m1"})
    assert api.rows("SELECT type, user_id, previous_id FROM identity_signals") == [("alias", "u1", "a1")]


def test_group_stores_the_group_id_signal(api: Api) -> None:
    api.post("/v1/group", {"userId": "u1", "groupId": "acme", "messageId": "m1", "traits": {"plan": "pro"}})
    assert api.rows("SELECT type, user_id, group_id FROM identity_signals") == [("group", "u1", "acme")]


def test_track_stores_no_identity_signal(api: Api) -> None:
    api.post("/v1/track", {"userId": "u1", "event": "E", "messageId": "m1"})
    assert api.rows("SELECT count(*) FROM identity_signals") == [(0,)]


def test_batch_stores_every_message_with_its_type(api: Api) -> None:
    r = api.post("/v1/batch", {"batch": [
        {"type": "identify", "userId": "u1", "messageId": "m1"},
        {"type": "track", "userId": "u1", "event": "E", "messageId": "m2"},
        {"type": "page", "anonymousId": "a1", "messageId": "m3"},
    ]})
    assert r.json() == {"success": True}
    assert api.rows("SELECT event_id, type FROM events ORDER BY event_id") == [
        ("m1", "identify"), ("m2", "track"), ("m3", "page")]


def test_retried_message_id_is_stored_once(api: Api) -> None:
    message = {"userId": "u1", "event": "E", "messageId": "m1"}
    assert api.post("/v1/track", message).status_code == 200
    assert api.post("/v1/track", message).status_code == 200
    assert api.rows("SELECT count(*) FROM events") == [(1,)]


def test_message_id_repeated_inside_a_batch_is_stored_once(api: Api) -> None:
    item = {"type": "identify", "userId": "u1", "messageId": "m1"}
    api.post("/v1/batch", {"batch": [item, item]})
    assert (api.rows("SELECT count(*) FROM events"), api.rows("SELECT count(*) FROM identity_signals")) == (
        [(1,)], [(1,)])


def test_missing_message_id_gets_a_generated_uuid(api: Api) -> None:
    api.post("/v1/track", {"userId": "u1", "event": "E"})
    [(event_id,)] = api.rows("SELECT event_id FROM events")
    assert uuid.UUID(event_id).version == 4


def test_timestamp_is_corrected_for_client_clock_skew(api: Api) -> None:
    # The client's clock is 1 hour behind: it sent at 11:00 by its clock, we received "now".
    api.post("/v1/track", {"userId": "u1", "event": "E", "messageId": "m1",
                           "timestamp": "2024-05-01T10:59:00Z", "sentAt": "2024-05-01T11:00:00Z"})
    [(ts, received_at)] = api.rows("SELECT ts, received_at FROM events")
    assert ts == received_at - timedelta(minutes=1)


def test_batch_sent_at_applies_to_its_messages(api: Api) -> None:
    api.post("/v1/batch", {"sentAt": "2024-05-01T11:00:00+00:00", "batch": [
        {"type": "track", "userId": "u1", "event": "E", "messageId": "m1", "timestamp": "2024-05-01T10:00:00Z"}]})
    [(ts, received_at)] = api.rows("SELECT ts, received_at FROM events")
    assert ts == received_at - timedelta(hours=1)


def test_timestamp_without_sent_at_is_kept_as_utc(api: Api) -> None:
    api.post("/v1/track", {"userId": "u1", "event": "E", "messageId": "m1", "timestamp": "2024-05-01T12:00:00+02:00"})
    assert api.rows("SELECT ts FROM events") == [(datetime(2024, 5, 1, 10, 0),)]


def test_message_without_timestamp_happened_when_received(api: Api) -> None:
    api.post("/v1/track", {"userId": "u1", "event": "E", "messageId": "m1"})
    [(ts, received_at)] = api.rows("SELECT ts, received_at FROM events")
    assert ts == received_at


def test_message_without_user_id_or_anonymous_id_is_rejected(api: Api) -> None:
    r = api.post("/v1/track", {"event": "E"})
    assert (r.status_code, r.json()) == (422, {
        "code": "invalid_request",
        "message": "every message needs a userId or an anonymousId; this one has neither"})


def test_batch_error_names_the_item_index(api: Api) -> None:
    r = api.post("/v1/batch", {"batch": [{"type": "track", "userId": "u1", "event": "E"},
                                         {"type": "track", "event": "E"}]})
    assert (r.status_code, r.json()["message"]) == (
        422, "batch[1]: every message needs a userId or an anonymousId; this one has neither")


def test_batch_with_one_invalid_message_stores_nothing(api: Api) -> None:
    api.post("/v1/batch", {"batch": [{"type": "track", "userId": "u1", "event": "E", "messageId": "m1"},
                                     {"type": "track", "userId": "u1"}]})
    assert api.rows("SELECT count(*) FROM events") == [(0,)]


def test_track_without_event_name_is_rejected(api: Api) -> None:
    r = api.post("/v1/track", {"userId": "u1"})
    assert (r.status_code, r.json()["message"]) == (
        422, "event: a track call needs the event name as a non-empty string")


def test_batch_item_without_type_is_rejected(api: Api) -> None:
    r = api.post("/v1/batch", {"batch": [{"userId": "u1"}]})
    assert (r.status_code, r.json()["message"]) == (
        422, "batch[0].type: expected one of identify, track, page, screen, group, alias; got None")


def test_bad_timestamp_is_rejected_naming_the_field(api: Api) -> None:
    r = api.post("/v1/track", {"userId": "u1", "event": "E", "timestamp": "yesterday"})
    assert (r.status_code, r.json()["message"]) == (
        422, "timestamp: expected an ISO 8601 timestamp such as 2024-05-01T12:00:00Z; got 'yesterday'")


def test_invalid_json_is_a_400_json_error(api: Api) -> None:
    r = api.post("/v1/track", content=b"{not json", headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_json")


def test_event_over_32_kb_is_413(api: Api) -> None:
    r = api.post("/v1/track", {"userId": "u1", "event": "E", "properties": {"blob": "x" * 33_000}})
    assert (r.status_code, r.json()) == (413, {"code": "payload_too_large",
                                               "message": f"body is {r.request.headers['content-length']} bytes; "
                                                          "the limit is 32 KB"})


def test_batch_item_over_32_kb_is_413_naming_the_index(api: Api) -> None:
    r = api.post("/v1/batch", {"batch": [{"type": "track", "userId": "u1", "event": "E"},
                                         {"type": "track", "userId": "u1", "event": "E",
                                          "properties": {"blob": "x" * 33_000}}]})
    assert (r.status_code, r.json()["message"]) == (413, "batch[1]: event is larger than 32 KB")


def test_batch_over_500_kb_is_413(api: Api) -> None:
    item = {"type": "track", "userId": "u1", "event": "E", "properties": {"blob": "x" * 20_000}}
    r = api.post("/v1/batch", {"batch": [item] * 26})
    assert (r.status_code, r.json()["code"]) == (413, "payload_too_large")


def test_batch_just_under_500_kb_is_accepted(api: Api) -> None:
    items = [{"type": "track", "userId": "u1", "event": "E", "properties": {"blob": "x" * 20_000}}] * 24
    assert len(orjson.dumps({"batch": items})) < 500 * 1024
    assert api.post("/v1/batch", {"batch": items}).status_code == 200


def test_gzip_compressed_batch_is_accepted(api: Api) -> None:
    body = gzip.compress(orjson.dumps({"batch": [{"type": "track", "userId": "u1", "event": "E", "messageId": "m1"}]}))
    r = api.post("/v1/batch", content=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert (r.status_code, api.rows("SELECT event_id FROM events")) == (200, [("m1",)])


def test_nul_characters_are_rejected(api: Api) -> None:
    r = api.post("/v1/track", {"userId": "u\u0000", "event": "E"})
    assert (r.status_code, r.json()["message"]) == (422, "NUL characters (\\u0000) are not supported in events")


def test_unknown_path_is_a_404_json_error(api: Api) -> None:
    r = api.client.get("/v1/nope")
    assert (r.status_code, r.json()) == (404, {"code": "not_found", "message": "no such endpoint: GET /v1/nope; see /docs"})


def test_empty_user_id_is_rejected_not_taken_as_missing(api: Api) -> None:
    r = api.post("/v1/track", {"userId": "", "anonymousId": "a1", "event": "E"})
    assert (r.status_code, r.json()["message"]) == (422, "userId: must not be empty; leave it out or send null")


def test_numeric_user_id_is_stored_as_text(api: Api) -> None:
    api.post("/v1/track", {"userId": 42, "event": "E", "messageId": "m1"})
    assert api.rows("SELECT identity_value FROM events") == [("42",)]


def test_first_of_two_messages_sharing_a_message_id_in_a_batch_wins(api: Api) -> None:
    api.post("/v1/batch", {"batch": [{"type": "identify", "userId": "u1", "messageId": "m1"},
                                     {"type": "track", "userId": "u1", "event": "E", "messageId": "m1"}]})
    assert (api.rows("SELECT type FROM events"), api.rows("SELECT type FROM identity_signals")) == (
        [("identify",)], [("identify",)])


def test_gzip_body_over_500_kb_once_inflated_is_413(api: Api) -> None:
    items = [{"type": "track", "userId": "u1", "event": "E", "properties": {"blob": "x" * 20_000}}] * 30
    body = gzip.compress(orjson.dumps({"batch": items}))
    r = api.post("/v1/batch", content=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert (len(body) < 10_000, r.status_code, r.json()) == (
        True, 413, {"code": "payload_too_large", "message": "body is larger than 500 KB"})


def test_message_of_another_type_is_rejected_by_a_single_type_endpoint(api: Api) -> None:
    r = api.post("/v1/track", {"type": "identify", "userId": "u1", "event": "E"})
    assert (r.status_code, r.json()["message"]) == (
        422, "type: this endpoint takes track messages; got 'identify' (send it to its own endpoint or to /v1/batch)")


def test_date_only_timestamp_is_rejected(api: Api) -> None:
    r = api.post("/v1/track", {"userId": "u1", "event": "E", "timestamp": "2024-05-01"})
    assert (r.status_code, r.json()["message"]) == (
        422, "timestamp: expected an ISO 8601 timestamp such as 2024-05-01T12:00:00Z; got '2024-05-01'")


def test_lower_case_t_and_z_and_nanoseconds_are_accepted(api: Api) -> None:
    api.post("/v1/track", {"userId": "u1", "event": "E", "timestamp": "2024-05-01t12:00:00.123456789z"})
    assert api.rows("SELECT ts FROM events") == [(datetime(2024, 5, 1, 12, 0, 0, 123456),)]
