"""The one thread that owns this API process's store connection.

Collection requests hand their rows to it and wait; it commits the rows of every request
waiting at that moment in one transaction (group commit) and only then wakes them, so a
2xx always means committed, and small requests do not each pay for a commit. DuckDB allows
one writing process, so with DuckDB this is the only writer; with PostgreSQL each worker
process has its own.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import pyarrow as pa

from accord.api.messages import EVENT_COLUMNS, SIGNAL_COLUMNS, Collected
from accord.store import Store, open_store

log = logging.getLogger("accord.api")
T = TypeVar("T")

_EVENT_TYPES = {"ts": pa.timestamp("us"), "received_at": pa.timestamp("us"), "revenue": pa.float64()}
_SIGNAL_TYPES = {"ts": pa.timestamp("us"), "received_at": pa.timestamp("us")}
EVENTS_SCHEMA = pa.schema([(c, _EVENT_TYPES.get(c, pa.string())) for c in EVENT_COLUMNS])
SIGNALS_SCHEMA = pa.schema([(c, _SIGNAL_TYPES.get(c, pa.string())) for c in SIGNAL_COLUMNS])
_STAGES = (("events", "_api_stage_events", EVENTS_SCHEMA), ("identity_signals", "_api_stage_signals", SIGNALS_SCHEMA))
MAX_GROUP_ROWS = 20_000


@dataclass
class _Job:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    collected: Collected | None = None
    call: Callable[[Store], Any] | None = None


class StoreWorker:
    """Runs store work for the API on one thread; ``await write(...)`` returns once committed."""

    def __init__(self, store_url: str):
        self.store_url = store_url
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._store: Store | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="accord-store-worker", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            raise self._start_error

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    # --- what request handlers call ---------------------------------------------------------

    async def write(self, collected: Collected) -> None:
        """Commit these rows (duplicates of stored messageIds are skipped); raise if not committed."""
        if not collected.events:
            return
        await self._submit(_Job(asyncio.get_running_loop(), asyncio.get_running_loop().create_future(),
                                collected=collected))

    async def call(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(store)`` on the store thread (for reads such as the health check)."""
        return await self._submit(_Job(asyncio.get_running_loop(), asyncio.get_running_loop().create_future(),
                                       call=fn))

    async def _submit(self, job: _Job) -> Any:
        self._queue.put(job)
        # Shielded: a client that disconnects must not cancel a commit another request shares.
        return await asyncio.shield(job.future)

    # --- the thread -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._connect()
        except BaseException as exc:  # noqa: BLE001 - re-raised by start()
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        while True:
            job = self._queue.get()
            if job is None:
                break
            if job.call is not None:
                self._run_call(job)
                continue
            group, rows = [job], len(job.collected.events)  # type: ignore[union-attr]
            stop = False
            while rows < MAX_GROUP_ROWS:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                if nxt.call is not None:
                    self._run_call(nxt)
                    continue
                group.append(nxt)
                rows += len(nxt.collected.events)  # type: ignore[union-attr]
            self._commit_group(group)
            if stop:
                break
        if self._store is not None:
            self._store.close()

    def _connect(self) -> None:
        store = open_store(self.store_url)
        for table, stage, schema in _STAGES:
            cols = ", ".join(schema.names)
            store.execute(f"CREATE TEMP TABLE {stage} AS SELECT {cols} FROM {table} LIMIT 0")
        self._store = store
        # Arrow initialises itself lazily on the first conversion, which can take a second:
        # do it now rather than in the first request.
        pa.array([datetime(2000, 1, 1)], type=pa.timestamp("us"))

    def _run_call(self, job: _Job) -> None:
        try:
            result = job.call(self._store)  # type: ignore[misc, arg-type]
        except Exception as exc:  # noqa: BLE001 - handed to the waiting request
            self._settle(job, error=exc)
            self._recover()
            return
        self._settle(job, result=result)

    def _commit_group(self, group: list[_Job]) -> None:
        try:
            self._insert([j.collected for j in group])  # type: ignore[misc]
        except Exception as exc:
            self._recover()
            if len(group) == 1:
                log.exception("could not store a collection request")
                self._settle(group[0], error=exc)
                return
            # Find the request that failed; the others still commit.
            for job in group:
                self._commit_group([job])
            return
        for job in group:
            self._settle(job)

    def _insert(self, parts: list[Collected]) -> None:
        events: dict[str, tuple[Any, ...]] = {}
        signals: dict[str, tuple[Any, ...]] = {}
        for part in parts:
            for row in part.events:
                events.setdefault(row[0], row)
            for row in part.signals:
                signals.setdefault(row[0], row)
        store = self._store
        assert store is not None
        with store.transaction():
            for (table, stage, schema), rows in zip(_STAGES, (events, signals)):
                if not rows:
                    continue
                columns = list(zip(*rows.values()))
                data = pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(columns, schema)],
                                            schema=schema)
                store.load_arrow(stage, data)
                cols = ", ".join(schema.names)
                store.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} "
                              "ON CONFLICT (event_id) DO NOTHING")
                store.execute(f"DELETE FROM {stage}")

    def _recover(self) -> None:
        """After an error: keep the connection if it still works, else open a new one."""
        try:
            assert self._store is not None
            self._store.fetchall("SELECT 1")
            return
        except Exception:  # noqa: BLE001 - any failure means: reconnect
            log.warning("store connection lost; reconnecting")
        try:
            if self._store is not None:
                self._store.close()
        except Exception:
            log.debug("closing the broken store connection failed", exc_info=True)
        try:
            self._connect()
        except Exception:
            log.exception("cannot reconnect to the store; will retry on the next request")

    @staticmethod
    def _settle(job: _Job, result: Any = None, error: BaseException | None = None) -> None:
        def settle() -> None:
            if job.future.done():
                return
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(result)

        try:
            job.loop.call_soon_threadsafe(settle)
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            pass
