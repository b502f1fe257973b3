"""The official Segment and RudderStack Python SDKs, pointed at a local ``accord serve``."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rudderstack.analytics as rudder_analytics
from segment import analytics
from segment.analytics.request import APIError

from accord.store import connect
from tests.api.conftest import WRITE_KEY, Server


def _stored(store_url: str, sql: str) -> list[tuple[Any, ...]]:
    store = connect(store_url)
    try:
        return store.fetchall(sql)
    finally:
        store.close()


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


@pytest.fixture
def server(serve: Any) -> Server:
    return serve(workers=1)


def test_segment_sdk_events_are_stored(server: Server, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    errors: list[Any] = []
    monkeypatch.setattr(analytics, "write_key", WRITE_KEY)
    monkeypatch.setattr(analytics, "host", server.url)
    monkeypatch.setattr(analytics, "sync_mode", True)
    monkeypatch.setattr(analytics, "on_error", lambda error, items: errors.append(error))
    monkeypatch.setattr(analytics, "default_client", None)

    analytics.identify("u1", {"email": "ada@example.com"}, message_id="seg-1")
    analytics.track("u1", "Order Completed", {"revenue": 12.5}, message_id="seg-2")
    analytics.page("u1", name="Home", message_id="seg-3")
    analytics.alias("anon-1", "u1", message_id="seg-4")
    analytics.flush()
    server.stop()

    assert errors == []
    assert _stored(store_url, "SELECT event_id, type, event, identity_value, revenue FROM events "
                                              "ORDER BY event_id") == [
        ("seg-1", "identify", None, "u1", None), ("seg-2", "track", "Order Completed", "u1", 12.5),
        ("seg-3", "page", "Home", "u1", None), ("seg-4", "alias", None, "u1", None)]
    signals = _stored(store_url, "SELECT event_id, type, previous_id, traits FROM identity_signals ORDER BY 1")
    assert [(e, t, p, _json(tr)) for e, t, p, tr in signals] == [
        ("seg-1", "identify", None, {"email": "ada@example.com"}), ("seg-4", "alias", "anon-1", None)]


def test_segment_sdk_reads_our_json_error_for_a_bad_key(server: Server) -> None:
    client = analytics.Client("wrong-key", host=server.url, sync_mode=True, max_retries=0)
    with pytest.raises(APIError) as info:
        client.track("u1", "E")
    assert (info.value.status, info.value.code, info.value.message) == (401, "unauthorized", "unknown API key")


def test_rudderstack_sdk_gzipped_events_are_stored(server: Server, store_url: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    errors: list[Any] = []
    monkeypatch.setattr(rudder_analytics, "write_key", WRITE_KEY)
    monkeypatch.setattr(rudder_analytics, "dataPlaneUrl", server.url)
    monkeypatch.setattr(rudder_analytics, "sync_mode", True)
    monkeypatch.setattr(rudder_analytics, "gzip", True)
    monkeypatch.setattr(rudder_analytics, "on_error", lambda error, items: errors.append(error))
    monkeypatch.setattr(rudder_analytics, "default_client", None)

    rudder_analytics.identify("u2", {"plan": "pro"}, message_id="rs-1")
    rudder_analytics.track("u2", "Trial Started", {"revenue": 3}, message_id="rs-2")
    rudder_analytics.screen("u2", name="Settings", message_id="rs-3")
    rudder_analytics.group("u2", "acme", {"size": 12}, message_id="rs-4")
    rudder_analytics.flush()
    server.stop()

    assert errors == []
    assert _stored(store_url, "SELECT event_id, type, event, identity_value, revenue FROM events ORDER BY 1") == [
        ("rs-1", "identify", None, "u2", None), ("rs-2", "track", "Trial Started", "u2", 3.0),
        ("rs-3", "screen", "Settings", "u2", None), ("rs-4", "group", None, "u2", None)]
    signals = _stored(store_url, "SELECT event_id, type, group_id, traits FROM identity_signals ORDER BY 1")
    assert [(e, t, g, _json(tr)) for e, t, g, tr in signals] == [
        ("rs-1", "identify", None, {"plan": "pro"}), ("rs-4", "group", "acme", {"size": 12})]
