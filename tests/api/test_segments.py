"""The segments API (marketer role), and a tracked event changing membership and sending its webhook."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from accord.api import create_app
from accord.config import parse_config
from accord.store import open_store
from tests.api.conftest import WRITE_KEY, bearer
from tests.segments.test_webhooks import SECRET, Receiver

MARKETER_KEY = "test-marketer-key"
READ_KEY = "test-read-key"
ENV = {"ACCORD_WRITE_KEY": WRITE_KEY, "ACCORD_MARKETER_KEY": MARKETER_KEY, "ACCORD_READ_KEY": READ_KEY}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def client(store_url: str, receiver: Receiver) -> Iterator[TestClient]:
    with open_store(store_url) as store:
        for i in range(3):
            cid = f"cus_{i}"
            store.execute("INSERT INTO customers (customer_id, seq, status, created_at, created_by) "
                          "VALUES (?, ?, 'active', CURRENT_TIMESTAMP, 'test')", (cid, i))
            store.execute("INSERT INTO customer_identifiers (id_type, value, customer_id, origin) "
                          "VALUES ('user_id', ?, ?, 'test')", (f"u{i}", cid))
    cfg = parse_config(f"""store: {store_url!r}
segments:
  definitions:
    - name: viewers
      condition: "count(event = 'Product Viewed', within = '1h') >= 1"
  webhooks:
    - name: crm
      url: {receiver.url}
      secret: {SECRET}
""")
    with TestClient(create_app(cfg, environ=ENV)) as c:
        yield c


def _members(client: TestClient, name: str, **params: Any) -> Any:
    return client.get(f"/v1/segments/{name}/members", params=params, headers=bearer(MARKETER_KEY))


def test_segments_are_listed_for_marketers(client: TestClient) -> None:
    response = client.get("/v1/segments", headers=bearer(MARKETER_KEY))
    assert response.status_code == 200
    (segment,) = response.json()["segments"]
    assert (segment["name"], segment["status"], segment["members"], segment["definition"]) == (
        "viewers", "active", 0, "count(event = 'Product Viewed', within = '1h') >= 1")


def test_a_read_key_may_not_use_segments(client: TestClient) -> None:
    response = client.get("/v1/segments", headers=bearer(READ_KEY))
    assert response.status_code == 403


def test_a_tracked_event_enters_the_customer_and_sends_the_webhook(client: TestClient, receiver: Receiver) -> None:
    response = client.post("/v1/track", json={"userId": "u1", "event": "Product Viewed"}, headers=bearer(WRITE_KEY))
    assert response.status_code == 200
    assert receiver.received.wait(10)
    body = json.loads(receiver.requests[0]["body"])
    assert (body["type"], body["segment"], body["customer_id"], body["via"]) == (
        "segment.entered", "viewers", "cus_1", "realtime")
    assert [m["customer_id"] for m in _members(client, "viewers").json()["members"]] == ["cus_1"]


def test_members_come_a_page_at_a_time(client: TestClient, receiver: Receiver) -> None:
    for i in range(3):
        client.post("/v1/track", json={"userId": f"u{i}", "event": "Product Viewed"}, headers=bearer(WRITE_KEY))
    deadline = time.monotonic() + 10
    while len(receiver.requests) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    first = _members(client, "viewers", limit=2).json()
    second = _members(client, "viewers", limit=2, cursor=first["next_cursor"]).json()
    seen = [m["customer_id"] for m in first["members"] + second["members"]]
    assert sorted(seen) == ["cus_0", "cus_1", "cus_2"] and second["next_cursor"] is None


def test_an_unknown_segment_is_404_and_a_bad_cursor_400(client: TestClient) -> None:
    assert _members(client, "nope").status_code == 404
    assert _members(client, "viewers", cursor="garbage").status_code == 400


def test_preview_counts_without_saving(client: TestClient) -> None:
    response = client.post("/v1/segments/preview", json={"condition": "in_account('acme') or vip", "sample": 2},
                           headers=bearer(MARKETER_KEY))
    assert response.status_code == 200
    assert (response.json()["count"], response.json()["customers"]) == (0, 3)


def test_preview_of_a_broken_condition_names_the_column(client: TestClient) -> None:
    response = client.post("/v1/segments/preview", json={"condition": "vip and"}, headers=bearer(MARKETER_KEY))
    assert response.status_code == 422
    assert response.json() == {"code": "invalid_condition", "message": "condition: column 8: expected an attribute, "
                               "a trait, consent.PURPOSE, count(...) or in_account(...), got end of text"}


def test_the_customers_of_committed_events_are_matched_on_type_and_value(store: Any) -> None:
    from accord.api.routers.segments import indexed_customers

    store.execute("INSERT INTO customer_identifiers (id_type, value, customer_id, origin) VALUES "
                  "('user_id', 'x-1', 'cus_00000001', 'realtime'), ('anonymous_id', 'x-1', 'cus_00000002', 'realtime'), "
                  "('email', 'a@b.io', 'cus_00000003', 'golden')")
    assert indexed_customers(store, {("user_id", "x-1")}) == ["cus_00000001"]
    assert indexed_customers(store, {("anonymous_id", "x-1"), ("email", "a@b.io")}, chunk=1) == [
        "cus_00000002", "cus_00000003"]
    assert indexed_customers(store, {("phone", "x-1")}) == []
