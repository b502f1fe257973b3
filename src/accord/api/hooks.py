"""Where other stages plug into event collection: one list of callbacks before, one after the commit.

``create_app`` puts a ``CollectHooks`` on ``app.state.collect_hooks``; a stage registers its
callbacks there (in ``create_app`` or the app's lifespan), e.g.::

    app.state.collect_hooks.before_commit.append(drop_suppressed)   # privacy: suppression check
    app.state.collect_hooks.after_commit.append(update_segments)    # segments: on_event

``before_commit`` runs on the store thread (the writer); ``after_commit`` on a hook thread with
its own connection to the store, so a slow hook never holds up collection:

* ``before_commit(store, collected) -> Collected``: once per group commit, with the rows of every
  request in the group, just before the transaction that stores them; returns the rows to store
  (drop or rewrite rows here). An exception fails the requests of the group (each is then retried
  alone), so raise only for bugs.
* ``after_commit(store, committed)``: after the group is committed, identities are stitched and
  the requests are answered; groups committed while the hooks were busy arrive as one
  ``Committed``. Open your own ``store.transaction()`` to write. An exception is logged and never
  touches the already acknowledged events. ``StoreWorker.call`` (and ``wait_for_hooks()``) wait
  until the hooks have seen everything committed before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from accord.api.messages import EVENT_COLUMNS, Collected
from accord.events.customers import current_ids
from accord.events.stitching import Stitched
from accord.store.backend import Store

_TYPE = EVENT_COLUMNS.index("identity_type")
_VALUE = EVENT_COLUMNS.index("identity_value")
_ANON = EVENT_COLUMNS.index("anonymous_id")


@dataclass
class Committed:
    """What one group commit stored.

    ``events``: the group's event rows in ``EVENT_COLUMNS`` order (a client's retry of a message
    stored before may be among them); ``stitched``: what identity stitching did with its identify,
    alias and group messages."""

    events: list[tuple[Any, ...]]
    stitched: list[Stitched] = field(default_factory=list)

    def event_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(EVENT_COLUMNS, row, strict=True)) for row in self.events]

    def customer_ids(self, store: Store) -> dict[str, str]:
        """event_id -> the customer each event names now (by its userId, else its anonymousId)."""
        owners = identifier_owners(store, {k for row in self.events for k in event_keys(row)})
        current = current_ids(store, {c for found in owners.values() for c in found})
        out: dict[str, str] = {}
        for row in self.events:
            owner = next((owners[k][0] for k in event_keys(row) if owners.get(k)), None)  # the oldest id,
            if owner is not None and current.get(owner):                               # as lookups answer
                out[row[0]] = current[owner]  # type: ignore[assignment]
        for s in self.stitched:
            if s.customer_id is not None:
                out[s.event_id] = s.customer_id
        return out


def event_keys(row: tuple[Any, ...]) -> list[tuple[str, str]]:
    """The identifier-index keys an event row names: its identity (emails lower-cased), then its
    anonymous id."""
    keys = []
    id_type, value, anonymous_id = row[_TYPE], row[_VALUE], row[_ANON]
    if id_type and value:
        keys.append((id_type, value.lower() if id_type == "email" else value))
    if anonymous_id:
        keys.append(("anonymous_id", anonymous_id))
    return keys


def identifier_owners(store: Store, keys: set[tuple[str, str]], chunk: int = 500) -> dict[tuple[str, str], list[str]]:
    """(id_type, value) -> the customers the identifier index names for it, oldest id first.

    Filtered on ``value`` alone, which both engines answer from an index (DuckDB uses an index only for
    a single-column filter; a chain of ``(id_type = ? AND value = ?) OR ...`` made it plan and scan the
    whole table, a third of collection's time), then matched on the type here."""
    values = sorted({v for _, v in keys})
    owners: dict[tuple[str, str], list[str]] = {}
    for start in range(0, len(values), chunk):
        part = values[start:start + chunk]
        for id_type, value, customer_id in store.fetchall(
                f"SELECT id_type, value, customer_id FROM customer_identifiers WHERE value IN "
                f"({', '.join('?' for _ in part)}) ORDER BY customer_id", part):
            if (id_type, value) in keys:
                owners.setdefault((id_type, value), []).append(customer_id)
    return owners


BeforeCommit = Callable[[Store, Collected], Collected]
AfterCommit = Callable[[Store, Committed], None]


class Busy:
    """Marks latency-critical work in progress (``with busy:``; nestable, any thread) so that background
    work can give way to it: the trait refresher waits (``wait_clear``, bounded) before each statement
    while a collection hook is re-deciding segments and queueing webhooks."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0

    def __enter__(self) -> Busy:
        with self._cond:
            self._active += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._active -= 1
            if not self._active:
                self._cond.notify_all()

    @property
    def busy(self) -> bool:
        return self._active > 0

    def wait_clear(self, timeout: float) -> bool:
        """Wait until nothing is marked busy, at most ``timeout`` seconds; whether it cleared."""
        if not self._active:  # the common case, without the lock
            return True
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._active:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True


@dataclass
class CollectHooks:
    before_commit: list[BeforeCommit] = field(default_factory=list)
    after_commit: list[AfterCommit] = field(default_factory=list)
    busy: Busy = field(default_factory=Busy)
    """Held by the after-commit hooks on the webhook path (segments) while they work; see ``Busy``."""
