"""Real-time segments: after an event is stored, re-decide its customer's segments in process and
record enters and exits (with their webhooks) at once, rather than at the next batch run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from typing import Any

from accord.clock import utcnow
from accord.segments.catalog import Segment, config_segments, load_catalog, settings_of, sync_config_segments
from accord.segments.conditions import Trait
from accord.segments.context import customers_for_identifiers, load_profile_context
from accord.segments.membership import Change, ensure_indexes, record_changes
from accord.segments.webhooks import LEASE, Delivery, enqueue
from accord.store.backend import Store
from accord.traits.lookups import ensure_lookup_indexes


def realtime_segments(store: Store, cfg: Any, configured: list[Segment] | None = None) -> list[Segment]:
    if not settings_of(cfg).realtime:
        return []
    return [s for s in load_catalog(store, cfg, configured).rules() if s.realtime]


def _window(segments: list[Segment]) -> tuple[bool, timedelta | None]:
    """(whether any segment counts events, the longest window needed — None for all time)."""
    counting = [s.effective for s in segments if s.effective.needs_events()]
    if not counting:
        return False, None
    windows = [c.max_window() for c in counting]
    return True, None if any(w is None for w in windows) else max(w for w in windows if w is not None)


def on_event(store: Store, cfg: Any, customer_id: str, now: datetime | None = None,
             segments: list[Segment] | None = None) -> list[Change]:
    """Re-decide ``customer_id``'s real-time segments now; record and return the enters and exits
    (webhooks queued in the same transaction, for the delivery thread or ``accord webhooks deliver``)."""
    return decide(store, cfg, customer_id, now, segments)[0]


def decide(store: Store, cfg: Any, customer_id: str, now: datetime | None = None,
           segments: list[Segment] | None = None, claim: bool = False) -> tuple[list[Change], list[Delivery]]:
    """``on_event``, also returning the webhook deliveries queued; with ``claim`` they are stored
    claimed by the caller, who sends them at once."""
    now = now or utcnow()
    segments = realtime_segments(store, cfg) if segments is None else segments
    if not segments:
        return [], []
    needs_events, window = _window(segments)
    ctx = load_profile_context(store, customer_id, now, events_within=window, with_events=needs_events,
                               with_segments=True)
    should = {s.name for s in segments if s.effective.evaluate(ctx)} if ctx.status == "active" else set()
    names = {s.name for s in segments}
    current = ctx.segments & names
    changes = [Change(n, customer_id, "enter") for n in sorted(should - current)]
    changes += [Change(n, customer_id, "exit") for n in sorted(current - should)]
    deliveries: list[Delivery] = []
    if changes:
        with store.transaction():
            record_changes(store, changes, now, "realtime")
            deliveries = enqueue(store, cfg, changes, now, "realtime", claimed_until=now + LEASE if claim else None)
    return changes, deliveries


def on_events(store: Store, cfg: Any, identifiers: Iterable[tuple[str, str | None, str | None]],
              now: datetime | None = None) -> list[Change]:
    """``on_event`` for every customer that events with these (identity_type, identity_value,
    anonymous_id) name."""
    segments = realtime_segments(store, cfg)
    if not segments:
        return []
    changes: list[Change] = []
    for customer_id in customers_for_identifiers(store, identifiers):
        changes += on_event(store, cfg, customer_id, now, segments)
    return changes


class RealtimeSegments:
    """What the API server runs after each collection commit: the customers the committed events
    name are re-decided, and the webhook deliveries this queues are handed to ``deliver`` (the
    delivery thread) at once. Config segments are read once; saved ones every few seconds."""

    CATALOG_SECONDS = 5.0

    def __init__(self, cfg: Any):
        self.cfg = cfg
        self.enabled = settings_of(cfg).realtime
        self.configured = config_segments(cfg)
        self.deliver: Callable[[list[Delivery]], None] | None = None
        self._segments: list[Segment] = []
        self._read_at = -1e9
        # One decision per customer at a time: the collection hook and the trait refresher (after_traits)
        # decide on their own threads, and two decisions of one customer at once could both record the
        # same enter. Per customer, so that the refresher re-deciding earlier customers never holds up the
        # hook deciding a new one (one lock for all made the webhook path wait for a whole decision).
        self._guard = threading.Lock()
        self._deciding: dict[str, list[Any]] = {}  # customer_id -> [lock, holders and waiters]
        self.busy: AbstractContextManager[Any] = _Unmarked()
        """Held while the collection hook decides (``accord.api.hooks.Busy`` in the API); ``after_traits``
        waits for it to clear before each customer, so the refresher's decisions give way to the hook's."""

    def prepare(self, store: Store) -> None:
        """At server start: indexes (those of one customer's lookups too: on DuckDB the events and
        identifier indexes the real-time decision needs), and the config's segments in the store so
        the API lists them."""
        ensure_indexes(store)
        if self.enabled:
            ensure_lookup_indexes(store)
        sync_config_segments(store, self.cfg)

    def segments(self, store: Store) -> list[Segment]:
        if time.monotonic() - self._read_at > self.CATALOG_SECONDS:
            self._segments = realtime_segments(store, self.cfg, self.configured)
            self._read_at = time.monotonic()
        return self._segments

    def after_commit(self, store: Store, customer_ids: Iterable[str]) -> None:
        """Re-decide these customers (those the committed events name) and hand on the deliveries."""
        segments = self.segments(store)
        if not segments:
            return
        self._decide(store, customer_ids, segments)

    def after_traits(self, store: Store, customer_ids: Iterable[str]) -> None:
        """After the trait refresher recomputed these customers' traits: re-decide the segments whose
        conditions read a trait (the decision after collection saw the traits from before the event)."""
        segments = [s for s in self.segments(store)
                    if any(isinstance(r, Trait) for r in s.effective.references())]
        if segments:
            self._decide(store, customer_ids, segments, give_way=True)

    def _decide(self, store: Store, customer_ids: Iterable[str], segments: list[Segment],
                give_way: bool = False) -> None:
        deliveries: list[Delivery] = []
        for customer_id in sorted(set(customer_ids)):
            if give_way:  # before taking the customer's lock: the hook may want the same customer
                wait_clear = getattr(self.busy, "wait_clear", None)
                if wait_clear is not None:
                    wait_clear(GIVE_WAY_SECONDS)
            with self._customer(customer_id):
                deliveries += decide(store, self.cfg, customer_id, segments=segments,
                                     claim=self.deliver is not None)[1]
        if deliveries and self.deliver is not None:
            self.deliver(deliveries)

    @contextmanager
    def _customer(self, customer_id: str) -> Iterator[None]:
        """Hold ``customer_id``'s decision lock (created on first use, dropped when nobody holds or awaits it)."""
        with self._guard:
            entry = self._deciding.setdefault(customer_id, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if not entry[1]:
                    del self._deciding[customer_id]


GIVE_WAY_SECONDS = 0.25
"""At most this long the refresher's re-decision of a customer waits for the collection hook to finish."""


class _Unmarked:
    """``busy`` outside the API (no collection hooks): marks nothing."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
