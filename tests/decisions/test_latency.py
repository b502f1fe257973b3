"""What keeps slow work off the decision's path: the catalog is read ahead by the log writer, an offer
changed while a catalog is being read makes that catalog stale, offers sharing a condition evaluate it
once, and the API serves with the start-up heap out of the collector's sight."""

from __future__ import annotations

import gc
import threading
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from accord.api import create_app
from accord.config import ProjectConfig
from accord.decisions import engine as engine_module
from accord.decisions import log as log_module
from accord.decisions.engine import DecisionEngine
from accord.decisions.log import LogWriter
from accord.decisions.offers import save_offer, validate_offer
from tests.decisions.helpers import NOW, add_customer, offered, request, settings


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> Any:
        return self.now


def engine_with_clock(section: dict[str, Any], clock: Clock) -> DecisionEngine:
    return DecisionEngine(settings(**section), seed=1, clock=clock, refresh_seconds=10)


def test_refresh_ahead_rereads_the_catalog_once_it_is_half_as_old_as_the_refresh_period(store):
    clock = Clock()
    engine = engine_with_clock({"offers": [{"id": "a"}]}, clock)
    engine.refresh_ahead(store)
    first = engine.catalog
    assert first.loaded_at == NOW
    clock.now = NOW + timedelta(seconds=4.9)
    engine.refresh_ahead(store)
    assert engine.catalog is first
    clock.now = NOW + timedelta(seconds=5)
    engine.refresh_ahead(store)
    assert engine.catalog.loaded_at == NOW + timedelta(seconds=5)


def test_a_decision_does_not_read_the_catalog_the_log_writer_keeps_fresh(store, store_url, monkeypatch):
    clock = Clock()
    engine = engine_with_clock({"offers": [{"id": "a"}]}, clock)
    writer = LogWriter(engine.log, store_url, interval=0.001, housekeeping=engine.refresh_ahead)
    writer.start()  # reads the catalog before the first request
    try:
        assert [p.offer.id for p in engine.catalog.offers] == ["a"]
        loads: list[int] = []
        load = engine._load
        monkeypatch.setattr(engine, "_load", lambda *a: loads.append(1) or load(*a))
        assert offered(engine.decide(store, request("cus_1"), write=False)) == ["a"]
        assert loads == []
    finally:
        writer.stop()


def test_a_log_writer_whose_housekeeping_fails_still_writes_decisions_and_waits_before_retrying(
        store, store_url, engine_for, monkeypatch):
    monkeypatch.setattr(log_module, "HOUSEKEEPING_RETRY_SECONDS", 60.0)
    engine = engine_for({"policy": "rules", "offers": [{"id": "a"}]})
    calls: list[int] = []

    def failing(_store: Any) -> None:
        calls.append(1)
        raise RuntimeError("boom")

    writer = LogWriter(engine.log, store_url, interval=0.001, housekeeping=failing)
    writer.start()
    try:
        decision = engine.decide(store, request("cus_1"), write=False)
        engine.log.ensure_written(store, decision.decision_id)
    finally:
        writer.stop()
    assert len(calls) == 1  # at start; after a failure the writer waits before the next run
    assert store.scalar("SELECT COUNT(*) FROM decisions WHERE decision_id = ?", (decision.decision_id,)) == 1


def test_an_offer_saved_while_the_catalog_is_read_is_seen_by_the_next_decision(store, monkeypatch):
    clock = Clock()
    s = settings(offers=[{"id": "a"}])
    engine = DecisionEngine(s, seed=1, clock=clock, refresh_seconds=3600)
    reading, saved = threading.Event(), threading.Event()
    real_load_offers = engine_module.load_offers

    def slow_load_offers(*args: Any) -> Any:
        out = real_load_offers(*args)
        if not saved.is_set():
            reading.set()
            saved.wait(5)  # the offer is saved (and the engine told) after the offers were read
        return out

    monkeypatch.setattr(engine_module, "load_offers", slow_load_offers)
    ahead = threading.Thread(target=engine.refresh, args=(store.reader(),), kwargs={"force": True})
    ahead.start()
    assert reading.wait(5)
    save_offer(store, s, validate_offer({"id": "b", "priority": 9}), NOW)
    engine.invalidate()
    saved.set()
    ahead.join()
    assert offered(engine.decide(store, request("cus_1"), write=False)) == ["b", "a"]


def test_offers_sharing_a_condition_evaluate_it_once_per_decision(store, engine_for, monkeypatch):
    add_customer(store, "cus_1", traits={"orders_90d": 4})
    engine = engine_for({"max_offers": 5, "offers": [
        {"id": "a", "eligibility": "orders_90d >= 2"}, {"id": "b", "eligibility": "orders_90d >= 2"},
        {"id": "c", "eligibility": "orders_90d >= 9"}, {"id": "d"}]})
    evaluated: list[str] = []
    passes = engine_module.passes
    monkeypatch.setattr(engine_module, "passes", lambda c, p: evaluated.append(str(c)) or passes(c, p))
    assert sorted(offered(engine.decide(store, request("cus_1"), write=False))) == ["a", "b", "d"]
    assert len(evaluated) == 2


def test_the_api_serves_with_the_start_up_heap_frozen_and_unfreezes_it_at_shutdown(store_url):
    assert gc.get_freeze_count() == 0
    cfg = ProjectConfig.model_validate({"store": store_url, "decisions": {"offers": [{"id": "a"}]}})
    with TestClient(create_app(cfg, environ={})):
        assert gc.get_freeze_count() > 100_000  # the app, pydantic, FastAPI, the store drivers
    assert gc.get_freeze_count() == 0
