"""Traits kept current as events arrive in ``accord serve``: the background trait refresher
(accord.traits.refresher), through the API on each backend."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest

from accord.config import ProjectConfig
from accord.store import open_store
from accord.traits import stage
from tests.api.conftest import ADMIN_KEY, Api

AS_OF = datetime(2026, 3, 1, 12, 0, 0)


def at(days_before: float) -> str:
    return (AS_OF - timedelta(days=days_before)).isoformat() + "Z"


# RFM off: its quintile boundaries come from the batch run, so a batch run would score differently from
# a refresh made before any batch run; everything else the refresher writes must equal the batch run.
TRAITS = {"as_of": AS_OF.isoformat(), "rfm": {"enabled": False},
          "computed": {"categories": {"unique": "properties.category"},
                       "orders_7d": {"count": {"event": "Order Completed"}, "within": "7d"}}}


@pytest.fixture
def make_app(make_api: Any) -> Any:
    """``make_app(traits={...}, segments={...})``: the app on this backend's store, with the traits section."""

    def make(traits: dict[str, Any] | None = None, segments: dict[str, Any] | None = None) -> Api:
        return make_api(traits=TRAITS if traits is None else traits, segments=segments or {})

    return make


def drain(api: Api) -> Any:
    """Wait until the hooks saw everything committed and the refresher has nothing left; its status."""
    app = api.client.app
    app.state.store_worker.wait_for_hooks()  # type: ignore[attr-defined]
    refresher = app.state.trait_refresher  # type: ignore[attr-defined]
    assert refresher.wait_idle(timeout=60)
    return refresher.status()


def all_traits(api: Api) -> list[tuple[Any, ...]]:
    return api.rows("SELECT customer_id, name, value_num, value_text FROM customer_traits ORDER BY 1, 2")


def batch_recompute(api: Api) -> list[tuple[Any, ...]]:
    from accord.traits import compute_traits

    api.run(lambda store: compute_traits(store, _settings(), "batch"))
    return all_traits(api)


def _settings() -> Any:
    from accord.traits import traits_settings

    return traits_settings(TRAITS)


def customer_of(api: Api, user_id: str) -> str:
    return api.rows("SELECT customer_id FROM customer_identifiers WHERE id_type = 'user_id' AND value = ?",
                    (user_id,))[0][0]


def post(api: Api, *messages: dict[str, Any]) -> None:
    r = api.post("/v1/batch", {"batch": list(messages)})
    assert r.status_code == 200, r.text


def test_traits_after_collection_equal_a_batch_recompute(make_app: Any) -> None:
    api = make_app()
    post(api, {"type": "identify", "messageId": "i1", "userId": "u1", "anonymousId": "a1", "timestamp": at(20)},
         {"type": "identify", "messageId": "i2", "userId": "u2", "timestamp": at(20)})
    post(api, {"type": "track", "messageId": "t1", "userId": "u1", "event": "Order Completed", "timestamp": at(3),
               "properties": {"revenue": 30.0, "category": "Books"}},
         {"type": "track", "messageId": "t2", "anonymousId": "a1", "event": "Product Viewed", "timestamp": at(1),
          "properties": {"category": "Toys"}},
         {"type": "page", "messageId": "p1", "userId": "u2", "name": "Home", "timestamp": at(40)},
         {"type": "track", "messageId": "t3", "userId": "u2", "event": "Order Completed", "timestamp": at(10),
          "properties": {"revenue": 12.5}},
         {"type": "track", "messageId": "t4", "userId": "nobody", "event": "Order Completed", "timestamp": at(1)})
    status = drain(api)
    refreshed = all_traits(api)
    u1 = {name: (num, text) for cid, name, num, text in refreshed if cid == customer_of(api, "u1")}
    assert (u1["events_total"], u1["orders_total"], u1["revenue_total"], u1["orders_7d"], u1["categories"]) == (
        (3.0, None), (1.0, None), (30.0, None), (1.0, None), (None, '["Books","Toys"]'))
    assert (status.errors, status.dropped, status.pending) == (0, 0, 0)
    assert refreshed == batch_recompute(api)


def test_many_events_for_one_customer_coalesce_into_few_refreshes(make_app: Any, monkeypatch: Any) -> None:
    calls: list[list[str]] = []
    gate = threading.Event()
    real = stage.update_traits

    def gated(store: Any, cfg: Any, customer_ids: Any, **kw: Any) -> int:
        calls.append(sorted(customer_ids))
        gate.wait(30)  # the first refresh holds on until every event is in
        return real(store, cfg, customer_ids, **kw)

    monkeypatch.setattr(stage, "update_traits", gated)
    api = make_app()
    post(api, {"type": "identify", "messageId": "i1", "userId": "u1", "timestamp": at(2)})
    for i in range(40):
        post(api, {"type": "track", "messageId": f"t{i}", "userId": "u1", "event": "Product Viewed",
                   "timestamp": at(1)})
    api.client.app.state.store_worker.wait_for_hooks()  # type: ignore[attr-defined]
    gate.set()
    status = drain(api)
    assert 1 <= len(calls) <= 2 and status.refreshed_customers == len(calls)
    assert all(c == [customer_of(api, "u1")] for c in calls)
    assert dict((n, v) for _, n, v, _ in all_traits(api))["events_total"] == 41
    assert all_traits(api) == batch_recompute(api)


def test_an_error_in_one_refresh_does_not_stop_later_ones(make_app: Any, monkeypatch: Any) -> None:
    real = stage.update_traits
    broken: set[str] = set()

    def failing(store: Any, cfg: Any, customer_ids: Any, **kw: Any) -> int:
        if broken & set(customer_ids):
            raise RuntimeError("disk full")
        return real(store, cfg, customer_ids, **kw)

    monkeypatch.setattr(stage, "update_traits", failing)
    api = make_app()
    post(api, {"type": "identify", "messageId": "i1", "userId": "u1"},
         {"type": "identify", "messageId": "i2", "userId": "u2"})
    drain(api)
    broken.add(customer_of(api, "u1"))
    post(api, {"type": "track", "messageId": "t1", "userId": "u1", "event": "Viewed", "timestamp": at(1)},
         {"type": "track", "messageId": "t2", "userId": "u2", "event": "Viewed", "timestamp": at(1)})
    status = drain(api)
    assert (status.errors, status.last_error) == (1, "RuntimeError: disk full")
    post(api, {"type": "track", "messageId": "t3", "userId": "u2", "event": "Viewed", "timestamp": at(1)})
    status = drain(api)
    u2 = customer_of(api, "u2")
    assert status.errors == 1
    assert api.rows("SELECT value_num FROM customer_traits WHERE customer_id = ? AND name = 'events_total'",
                    (u2,)) == [(2.0,)]  # t2 and t3 (the identify is after as_of)
    broken.clear()
    expected = [r for r in batch_recompute(api) if r[0] == u2]
    assert [r for r in all_traits(api) if r[0] == u2] == expected


def test_shutdown_drains_what_is_pending(make_app: Any, store_url: str) -> None:
    # A long pause between rounds: the second event is still pending when the server stops.
    api = make_app(traits={**TRAITS, "realtime": {"min_interval_seconds": 60}})
    post(api, {"type": "identify", "messageId": "i1", "userId": "u1", "timestamp": at(5)})
    drain(api)
    post(api, {"type": "track", "messageId": "t1", "userId": "u1", "event": "Viewed", "timestamp": at(1)})
    api.client.app.state.store_worker.wait_for_hooks()  # type: ignore[attr-defined]
    refresher = api.client.app.state.trait_refresher  # type: ignore[attr-defined]
    assert refresher.status().pending == 1
    api.client.__exit__(None, None, None)
    assert not refresher.status().running and refresher.status().pending == 0
    with open_store(store_url) as store:
        assert store.fetchall("SELECT value_num FROM customer_traits WHERE name = 'events_total'") == [(2.0,)]


def test_a_segment_that_reads_a_trait_follows_the_refreshed_traits(make_app: Any) -> None:
    api = make_app(segments={"definitions": [{"name": "repeat_buyers", "condition": "orders_total >= 2"}]})
    post(api, {"type": "identify", "messageId": "i1", "userId": "u1", "timestamp": at(5)})
    post(api, {"type": "track", "messageId": "t1", "userId": "u1", "event": "Order Completed", "timestamp": at(2),
               "properties": {"revenue": 5}})
    drain(api)
    assert api.rows("SELECT segment FROM segment_membership") == []
    post(api, {"type": "track", "messageId": "t2", "userId": "u1", "event": "Order Completed", "timestamp": at(1),
               "properties": {"revenue": 5}})
    drain(api)
    assert api.rows("SELECT segment, customer_id, entered_by FROM segment_membership WHERE exited_at IS NULL") == [
        ("repeat_buyers", customer_of(api, "u1"), "realtime")]


def test_the_refresher_can_be_switched_off(make_app: Any) -> None:
    api = make_app(traits={**TRAITS, "realtime": {"enabled": False}})
    post(api, {"type": "identify", "messageId": "i1", "userId": "u1"},
         {"type": "track", "messageId": "t1", "userId": "u1", "event": "Viewed"})
    api.client.app.state.store_worker.wait_for_hooks()  # type: ignore[attr-defined]
    assert api.client.app.state.trait_refresher is None  # type: ignore[attr-defined]
    assert api.client.get("/health").json()["trait_refresher"] is None
    assert all_traits(api) == []


def test_health_shows_the_refresher(make_app: Any) -> None:
    api = make_app()
    post(api, {"type": "identify", "messageId": "i1", "userId": "u1"})
    drain(api)
    body = api.client.get("/health", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()["trait_refresher"]
    assert (body["running"], body["pending"], body["busy"], body["refreshed_customers"], body["errors"]) == (
        True, 0, False, 1, 0)
    assert body["last_lag_ms"] is not None and body["oldest_pending_ms"] is None


def test_the_refresher_and_the_segments_hook_give_way_through_one_busy_signal(make_app: Any) -> None:
    api = make_app(segments={"definitions": [{"name": "buyers", "condition": "orders_7d >= 1"}]})
    state = api.client.app.state  # type: ignore[attr-defined]
    busy = state.collect_hooks.busy
    assert state.trait_refresher.give_way_to is busy and state.realtime_segments.busy is busy


def _realtime(monkeypatch: Any, decided: list[tuple[str, str]], gates: dict[str, threading.Event]) -> Any:
    """RealtimeSegments with one trait-reading segment, whose decisions are recorded and may be held
    (a customer's decision waits for its gate)."""
    from accord.segments import realtime as rt

    cfg = ProjectConfig.model_validate({"store": "duckdb:///:memory:", "segments": {
        "definitions": [{"name": "buyers", "condition": "orders_7d >= 1"}]}})

    def decide(store: Any, cfg: Any, customer_id: str, **kw: Any) -> tuple[list[Any], list[Any]]:
        decided.append((threading.current_thread().name, customer_id))
        gate = gates.get(customer_id)
        if gate is not None:
            assert gate.wait(5)
        decided.append((threading.current_thread().name, f"{customer_id} done"))
        return [], []

    monkeypatch.setattr(rt, "decide", decide)
    segments = rt.RealtimeSegments(cfg)
    configured = list(segments.configured)
    monkeypatch.setattr(segments, "segments", lambda store: configured)
    return segments


def test_a_decision_in_progress_holds_up_only_decisions_of_the_same_customer(monkeypatch: Any) -> None:
    """The refresher re-deciding customer 1 must not hold up the collection hook deciding customer 2
    (one lock for every customer put a whole decision into the event -> webhook tail); two decisions of
    customer 1 still run one after the other."""
    decided: list[tuple[str, str]] = []
    hold = threading.Event()
    segments = _realtime(monkeypatch, decided, {"cus_1": hold})
    first = threading.Thread(target=segments.after_traits, args=(None, ["cus_1"]), name="refresher")
    first.start()
    try:
        while ("refresher", "cus_1") not in decided:
            threading.Event().wait(0.01)
        other = threading.Thread(target=segments.after_commit, args=(None, ["cus_2"]), name="hook")
        other.start()
        other.join(2)
        assert not other.is_alive() and ("hook", "cus_2 done") in decided, "customer 2 waited for customer 1"
        same = threading.Thread(target=segments.after_commit, args=(None, ["cus_1"]), name="hook-same")
        same.start()
        same.join(0.2)
        assert same.is_alive() and ("hook-same", "cus_1") not in decided, "two decisions of one customer at once"
    finally:
        hold.set()
    first.join(5)
    same.join(5)
    assert decided.index(("refresher", "cus_1 done")) < decided.index(("hook-same", "cus_1"))
    assert not segments._deciding  # the per-customer locks are dropped once nobody holds them


def test_the_refreshers_decisions_wait_while_the_hook_is_busy(monkeypatch: Any) -> None:
    from accord.api.hooks import Busy

    decided: list[tuple[str, str]] = []
    segments = _realtime(monkeypatch, decided, {})
    segments.busy = Busy()
    with segments.busy:
        refresher = threading.Thread(target=segments.after_traits, args=(None, ["cus_1"]), name="refresher")
        refresher.start()
        refresher.join(0.15)
        assert refresher.is_alive() and decided == []
    refresher.join(5)
    assert decided == [("refresher", "cus_1"), ("refresher", "cus_1 done")]
