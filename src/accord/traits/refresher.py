"""Traits kept current as events arrive: the background refresher of ``accord serve``.

After each collection commit the identifiers the events name (and the customers identity stitching
linked) are marked dirty, which costs the collection path a set insert per event and nothing else.
One background thread, with its own store connection, takes everything marked so far, finds the
customers those identifiers name now (index lookups) and recomputes their traits with
``update_traits`` — the batch SQL over just those customers, ``batch_size`` customers per
transaction. Many events of one customer before its refresh coalesce into one recompute; an event
arriving during a refresh marks its customer again, so once the refresher is idle every customer's
traits are what a batch run would write (RFM scored against the last batch run's boundaries).

Bounded: at most ``max_pending`` dirty identifiers wait; beyond that new ones are dropped, counted
(``dropped``) and logged, and those customers' traits wait for the next event or batch run. A failed
batch is retried one customer at a time; a customer that still fails is logged and counted
(``errors``), and the refresher goes on. ``stop()`` drains what is pending before it returns.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from pydantic import BaseModel, Field

from accord.store.backend import Store
from accord.traits.lookups import Identifier, customers_owning
from accord.traits.settings import RealtimeSettings, TraitsSettings

log = logging.getLogger("accord.traits")

CUSTOMER = "customer_id"
"""The id type of a dirty entry that names a customer directly (from identity stitching)."""

NICENESS = 10
"""The refresher's thread runs at this much lower CPU priority (Linux: per thread; the DuckDB queries of an
API process run on the calling thread), so that on a busy machine collection and the webhook path come first."""

AfterRefresh = Callable[[Store, list[str]], None]
"""Called on the refresher's thread after a batch of customers' traits was committed."""

GIVE_WAY_SECONDS = 0.25
"""Before each statement of a refresh, the refresher waits at most this long for the work it gives way to
(``give_way_to``) to finish; bounded, so that a steady stream of events slows refreshes but never stops them."""


class GivesWay(Protocol):
    def wait_clear(self, timeout: float) -> bool: ...


_STATEMENTS = frozenset({"execute", "executemany", "fetchall", "fetchone", "scalar", "fetch_arrow", "load_arrow",
                         "create_temp_table", "create_temp_table_as", "drop_temp_table", "insert_new"})


class _GivingWay:
    """The refresher's store, waiting for ``to`` to clear before each statement (every other attribute is
    the store's own). Measured at 1M profiles: one refresh is ~15 statements, ~200 ms; run alongside the
    collection hook's segment decision on a 2-core machine it doubled that decision's time (the CPU, and
    the GIL between DuckDB calls) — the tail of event -> webhook latency."""

    def __init__(self, store: Store, to: GivesWay):
        self._store = store
        self._to = to

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name not in _STATEMENTS:
            return attr

        def statement(*args: Any, **kwargs: Any) -> Any:
            self._to.wait_clear(GIVE_WAY_SECONDS)
            return attr(*args, **kwargs)

        return statement


class RefresherStatus(BaseModel):
    """What the trait refresher is doing (GET /health)."""

    running: bool
    pending: int = Field(description="Identifiers and customers marked dirty and not yet refreshed")
    busy: bool = Field(description="A refresh round is running now")
    rounds: int = Field(description="Refresh rounds since the server started")
    refreshed_customers: int = Field(description="Customers recomputed since the server started")
    dropped: int = Field(description="Dirty entries dropped because max_pending were waiting (traits of those "
                                     "customers wait for their next event or the batch run)")
    errors: int = Field(description="Customers whose refresh failed (or, when finding the customers failed, the "
                                    "dirty entries of that round); each is logged")
    last_lag_ms: float | None = Field(description="Last round: from the first event it covered being marked to "
                                                  "all its customers' traits committed")
    oldest_pending_ms: float | None = Field(description="How long the oldest pending entry has waited")
    last_error: str | None = None


class TraitRefresher:
    """Recomputes the traits of customers whose events were collected, on a background thread."""

    def __init__(self, cfg: Any, settings: RealtimeSettings | None = None,
                 update: Callable[[Store, Any, list[str]], int] | None = None):
        from accord.traits.stage import traits_settings, update_traits

        self.cfg = cfg
        traits = traits_settings(getattr(cfg, "traits", None) if not isinstance(cfg, TraitsSettings) else cfg)
        self.settings = settings or traits.realtime
        self.after_refresh: list[AfterRefresh] = []
        self.give_way_to: GivesWay | None = None
        """Latency-critical work (``accord.api.hooks.Busy``: the collection hook deciding segments) that each
        refresh statement waits for (at most ``GIVE_WAY_SECONDS``) before it runs."""
        self._update = update or (lambda store, cfg, ids: update_traits(store, cfg, ids))
        self._pending: dict[Identifier, float] = {}  # entry -> when it was first marked (monotonic)
        self._cond = threading.Condition()
        self._work = threading.Lock()  # held while a batch is recomputed; see ``pause``
        self._thread: threading.Thread | None = None
        self._store: Store | None = None
        self._stopping = False
        self._busy = False
        self._rounds = self._refreshed = self._dropped = self._errors = 0
        self._last_lag: float | None = None
        self._last_error: str | None = None
        self._last_round_end = 0.0
        self._warned_full_at = -1e9

    # --- marking (the collection hook's side: cheap, never touches the store) ----------------------

    def mark(self, identifiers: Iterable[Identifier] = (), customer_ids: Iterable[str] = ()) -> None:
        """Mark the customers these (id_type, value) identifiers name, and these customers, dirty."""
        now = time.monotonic()
        entries = [*identifiers, *((CUSTOMER, c) for c in customer_ids)]
        if not entries:
            return
        dropped = 0
        with self._cond:
            pending, limit = self._pending, self.settings.max_pending
            for entry in entries:
                if entry in pending:
                    continue
                if len(pending) >= limit:
                    dropped += 1
                    continue
                pending[entry] = now
            self._dropped += dropped
            self._cond.notify_all()
        if dropped and now - self._warned_full_at > 10:
            self._warned_full_at = now
            log.warning("trait refresher: %d customers waiting (max_pending); %d dropped so far, their traits "
                        "refresh at their next event or the next batch run", self.settings.max_pending, self._dropped)

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self, store: Store) -> None:
        """Run on a thread with ``store`` (a connection of its own, closed by ``stop``)."""
        self._store = store
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="accord-trait-refresher", daemon=True)
        self._thread.start()

    def stop(self, drain: bool = True, timeout: float | None = None) -> bool:
        """Stop the thread, first refreshing everything pending when ``drain``; returns whether the thread
        ended within ``timeout`` (its store is closed only then)."""
        with self._cond:
            self._stopping = True
            if not drain:
                self._pending.clear()
            self._cond.notify_all()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("trait refresher: still refreshing %d entries at shutdown; left to the batch run",
                        len(self._pending))
            return False
        self._thread = None
        if self._store is not None:
            self._store.close()
            self._store = None
        return True

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is pending or being refreshed; False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending or self._busy:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def pause(self) -> None:
        """Wait for the batch being recomputed (if any) and hold off the next until ``resume``.

        Erasure holds the refresher this way: a batch that read a person's events before the erasure
        committed would otherwise write their traits back after it. A batch that starts after the
        erasure finds no records for the erased customer and writes nothing for them.
        ``resume`` may be called from another thread than ``pause``."""
        self._work.acquire()

    def resume(self) -> None:
        self._work.release()

    def status(self) -> RefresherStatus:
        now = time.monotonic()
        with self._cond:
            oldest = min(self._pending.values(), default=None)
            return RefresherStatus(
                running=self._thread is not None and self._thread.is_alive(), pending=len(self._pending),
                busy=self._busy, rounds=self._rounds, refreshed_customers=self._refreshed, dropped=self._dropped,
                errors=self._errors,
                last_lag_ms=None if self._last_lag is None else round(self._last_lag * 1000, 1),
                oldest_pending_ms=None if oldest is None else round((now - oldest) * 1000, 1),
                last_error=self._last_error)

    # --- the thread -------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)
        except (AttributeError, OSError):  # not Linux, or not allowed: same priority as the rest
            log.debug("trait refresher: could not lower its priority", exc_info=True)
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending:  # stopping, nothing left
                    self._cond.notify_all()
                    return
                wait = self._last_round_end + self.settings.min_interval_seconds - time.monotonic()
                if wait > 0 and not self._stopping:  # let a burst coalesce
                    self._cond.wait(wait)
                    continue
                taken, self._pending = self._pending, {}
                self._busy = True
            try:
                self._round(taken)
            except Exception as exc:  # noqa: BLE001 - a bug or a lost store: log, keep serving
                log.exception("trait refresher: a refresh round failed")
                self._note_error(len(taken), exc)
                self._reconnect()
            finally:
                with self._cond:
                    self._busy = False
                    self._rounds += 1
                    self._last_round_end = time.monotonic()
                    self._last_lag = self._last_round_end - min(taken.values())
                    self._cond.notify_all()

    def _round(self, taken: dict[Identifier, float]) -> None:
        store = self._store
        assert store is not None
        keys = {k for k in taken if k[0] != CUSTOMER}
        customers = {v for t, v in taken if t == CUSTOMER}
        if keys:
            customers |= customers_owning(store, keys)
        ordered = sorted(customers)
        size = self.settings.batch_size
        for lo in range(0, len(ordered), size):
            batch = ordered[lo:lo + size]
            with self._work:  # an erasure waits for this batch and holds off the next (``pause``)
                # (the connection may have been replaced after an error, hence ``self._store or store``)
                done = self._refresh(self._giving_way(self._store or store), batch)
                if done:
                    self._after_refresh(self._store or store, done)

    def _giving_way(self, store: Store) -> Store:
        return store if self.give_way_to is None else _GivingWay(store, self.give_way_to)  # type: ignore[return-value]

    def _refresh(self, store: Store, batch: list[str]) -> list[str]:
        """Recompute ``batch``; on failure one customer at a time. Returns the customers recomputed."""
        try:
            self._update(store, self.cfg, batch)
            self._count(len(batch))
            return batch
        except Exception as exc:  # noqa: BLE001 - retried one by one below
            if len(batch) == 1:
                log.exception("trait refresher: could not refresh customer %s", batch[0])
                self._note_error(1, exc)
                self._reconnect()
                return []
            log.warning("trait refresher: a batch of %d customers failed (%s); retrying one at a time",
                        len(batch), exc)
            self._reconnect()
        done: list[str] = []
        for customer_id in batch:
            done += self._refresh(store if self._store is None else self._giving_way(self._store), [customer_id])
        return done

    def _after_refresh(self, store: Store, customer_ids: list[str]) -> None:
        for fn in self.after_refresh:
            try:
                fn(store, customer_ids)
            except Exception:  # noqa: BLE001 - the traits are committed; a follower's failure is its own
                log.exception("trait refresher: %s failed after a refresh", getattr(fn, "__qualname__", fn))

    def _count(self, customers: int) -> None:
        with self._cond:
            self._refreshed += customers

    def _note_error(self, customers: int, exc: BaseException) -> None:
        with self._cond:
            self._errors += customers
            self._last_error = f"{type(exc).__name__}: {exc}"[:500]

    def _reconnect(self) -> None:
        """After an error: keep the connection if it still answers, else open another."""
        store = self._store
        if store is None:
            return
        try:
            store.fetchall("SELECT 1")
        except Exception:  # noqa: BLE001 - a broken connection: replace it
            log.warning("trait refresher: store connection lost; opening another")
            try:
                self._store = store.reader()
            except Exception:  # noqa: BLE001 - try again after the next error
                log.exception("trait refresher: cannot reconnect")
