"""The trait refresher in ``accord serve``: ``install(app, cfg)`` marks the customers of every collection
commit dirty (an after-commit hook), runs the refresher for the app's lifetime (its own store
connection; drained at shutdown), re-decides real-time segments that read traits after each refresh,
and leaves the refresher on ``app.state.trait_refresher`` for GET /health. Off with
``traits.realtime.enabled: false``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from accord.api.hooks import Committed, event_keys
from accord.store.backend import Store
from accord.traits.lookups import ensure_lookup_indexes
from accord.traits.refresher import TraitRefresher
from accord.traits.stage import ensure_trait_index, traits_settings

log = logging.getLogger("accord.api")

DRAIN_SECONDS = 60.0
"""At shutdown, how long the refresher may take to refresh what is pending before it is left to the batch run."""


def install(app: FastAPI, cfg: Any) -> TraitRefresher | None:
    """Wire the refresher into ``app`` (call after the segments are installed, so that a refresh can
    re-decide their members)."""
    app.state.trait_refresher = None
    if not traits_settings(cfg.traits).realtime.enabled:
        return None
    refresher = TraitRefresher(cfg)
    app.state.trait_refresher = refresher

    def mark_committed(store: Store, committed: Committed) -> None:
        refresher.mark((key for row in committed.events for key in event_keys(row)),
                       (s.customer_id for s in committed.stitched if s.customer_id))

    app.state.collect_hooks.after_commit.append(mark_committed)
    # Each refresh statement waits while the segments hook decides and queues webhooks (``Busy``): run
    # alongside, a refresh doubled that decision's time at 1M profiles (the event -> webhook tail).
    refresher.give_way_to = app.state.collect_hooks.busy
    realtime = getattr(app.state, "realtime_segments", None)
    if realtime is not None and realtime.enabled:
        refresher.after_refresh.append(realtime.after_traits)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = app.state.store_worker

        def connect(store: Store) -> Store:
            try:  # the indexes one customer's recompute reads through
                ensure_trait_index(store)
                ensure_lookup_indexes(store)
            except Exception:  # noqa: BLE001 - another worker process may be creating them
                log.exception("trait refresher: could not create its indexes; refreshes may scan")
            return store.reader()

        refresher.start(await worker.call(connect))
        try:
            yield
        finally:
            # Everything committed has reached the hook (the server takes no more requests), then drain.
            await asyncio.to_thread(worker.wait_for_hooks)
            await asyncio.to_thread(refresher.stop, True, DRAIN_SECONDS)

    router = APIRouter()
    router.lifespan_context = lifespan
    app.include_router(router)
    return refresher
