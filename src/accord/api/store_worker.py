"""The one thread that owns this API process's store connection.

Collection requests hand their rows to it and wait; it commits the rows of every request
waiting at that moment in one transaction (group commit) and only then wakes them, so a
2xx always means committed, and small requests do not each pay for a commit. DuckDB allows
one writing process, so with DuckDB this is the only writer; with PostgreSQL each worker
process has its own.

Reads (``await read(fn)``: profile lookups) run on a small pool of reader threads, each with its
own connection to the store (``Store.reader()``), in parallel with the writer and with each other;
they see what is committed, so what a 2xx acknowledged is visible to them. On DuckDB, a group made
only of the reads' access-audit rows is made durable in a journal file instead of a commit and moved
into the store in batches (``audit_journal.py``).

A group is first appended as it is: the primary keys refuse a messageId stored before, and
only then (a client's retry) is the group redone with ``Store.insert_new``, whose duplicate
check costs more as the events table grows. Identify, alias and group messages are stitched to
customers (``accord.events``) in the same transaction, before the requests are answered; if
stitching fails, the events are stored without it and stitched one message at a time, and a
message that still fails stays pending (``processed_at`` NULL) for the next start to stitch.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
import pyarrow as pa

from accord.api.audit_journal import TABLE as AUDIT_TABLE
from accord.api.audit_journal import AuditJournal, journal_path
from accord.api.hooks import CollectHooks, Committed
from accord.api.messages import EVENT_COLUMNS, SIGNAL_COLUMNS, Collected, now_utc
from accord.events import Signal, StitchRules, Stitched, stitch_signals
from accord.events.model import ModelMatch
from accord.store import Store, open_store

log = logging.getLogger("accord.api")
T = TypeVar("T")

_EVENT_TYPES = {"ts": pa.timestamp("us"), "received_at": pa.timestamp("us"), "revenue": pa.float64()}
_SIGNAL_TYPES = {"ts": pa.timestamp("us"), "received_at": pa.timestamp("us")}
EVENTS_SCHEMA = pa.schema([(c, _EVENT_TYPES.get(c, pa.string())) for c in EVENT_COLUMNS])
SIGNALS_SCHEMA = pa.schema([(c, _SIGNAL_TYPES.get(c, pa.string())) for c in SIGNAL_COLUMNS])
MAX_GROUP_ROWS = 20_000
READERS = 2
SMALL_INSERT = 8
"""Up to this many rows, a multi-row INSERT ... VALUES is cheaper than handing the engine an Arrow table."""
DUCKDB_THREADS_ENV = "ACCORD_API_DUCKDB_THREADS"
"""Threads DuckDB may use per query in the API process (default 1): the API runs many small queries
at once on several threads, and a point query fanned out over DuckDB's pool costs more in hand-offs
than it gains, twice as much on a busy machine (measured: 18 vs 41 ms per new identify at load 7)."""
PENDING_CHUNK = 500
STITCHING_LOCK = "accord.stitching"
"""Held by a transaction that stitches, so two worker processes never stitch at once."""
_SIGNAL_SQL = ("SELECT event_id, type, user_id, anonymous_id, previous_id, group_id, CAST(traits AS TEXT), "
               "received_at FROM identity_signals")


class _StitchFailed(Exception):
    """Stitching (not storing) failed: the group's rows can still be stored without it."""


@dataclass
class Stitcher:
    """Identity's rules for real-time stitching, and the model path for new identities (None: rules only)."""

    rules: StitchRules
    model: ModelMatch | None = None


@dataclass
class _Job:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    collected: Collected | None = None
    call: Callable[[Store], Any] | None = None
    append: Callable[[Store], None] | None = None
    row: tuple[str, tuple[str, ...], tuple[Any, ...]] | None = None
    """(table, columns, values): one row to insert in the next group commit (``append_row``)."""


class StoreWorker:
    """Runs store work for the API on one thread; ``await write(...)`` returns once committed."""

    def __init__(self, store_url: str, stitcher: Stitcher | None = None, hooks: CollectHooks | None = None):
        self.store_url = store_url
        self.stitcher = stitcher
        self.hooks = hooks or CollectHooks()
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._store: Store | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._readers: queue.Queue[Store] = queue.Queue()
        self._read_pool: ThreadPoolExecutor | None = None
        self._hook_queue: queue.Queue[Committed | None] = queue.Queue()
        self._hook_thread: threading.Thread | None = None
        self._journal: AuditJournal | None = None
        """DuckDB: access-audit rows are fsynced here before the answer, moved into the store in batches."""

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
        if self._hook_thread is not None:
            self._hook_queue.put(None)
            self._hook_thread.join()
            self._hook_thread = None
        if self._read_pool is not None:
            self._read_pool.shutdown(wait=True)
            self._read_pool = None
        while not self._readers.empty():
            try:
                self._readers.get_nowait().close()
            except Exception:  # noqa: BLE001 - closing on the way out
                log.debug("closing a reader failed", exc_info=True)
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    # --- what request handlers call ---------------------------------------------------------

    async def write(self, collected: Collected) -> None:
        """Commit these rows (duplicates of stored messageIds are skipped); raise if not committed."""
        if not collected.events:
            return
        await self._submit(_Job(asyncio.get_running_loop(), asyncio.get_running_loop().create_future(),
                                collected=collected))

    async def append(self, fn: Callable[[Store], None]) -> None:
        """Run the small write ``fn(store)`` (an audit row) in the next group commit; returns once committed.

        Concurrent requests share one commit instead of paying one each."""
        loop = asyncio.get_running_loop()
        await self._submit(_Job(loop, loop.create_future(), collected=Collected(), append=fn))

    async def append_row(self, table: str, columns: tuple[str, ...], row: tuple[Any, ...]) -> None:
        """Insert one row (an audit row) in the next group commit; returns once committed. The rows
        of every request in the group go in as one INSERT per table, not one statement each."""
        loop = asyncio.get_running_loop()
        await self._submit(_Job(loop, loop.create_future(), collected=Collected(), row=(table, columns, row)))

    async def call(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(store)`` on the store thread (for reads such as the health check)."""
        return await self._submit(_Job(asyncio.get_running_loop(), asyncio.get_running_loop().create_future(),
                                       call=fn))

    async def read(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(store)`` on a reader thread with its own connection (reads, and appends that
        conflict with nothing, such as an access log); falls back to the store thread."""
        if self._read_pool is None:
            return await self.call(fn)
        return await asyncio.get_running_loop().run_in_executor(self._read_pool, self._read, fn)

    def _read(self, fn: Callable[[Store], T]) -> T:
        store = self._readers.get()
        try:
            return fn(store)
        except Exception:
            try:
                store.fetchall("SELECT 1")
            except Exception:  # noqa: BLE001 - a broken connection: replace it
                log.warning("reader connection lost; opening another")
                store = store.reader()
            raise
        finally:
            self._readers.put(store)

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
            try:  # access-audit rows in the journal move into the store within FLUSH_SECONDS
                job = self._queue.get(timeout=self._journal.wait() if self._journal is not None else None)
            except queue.Empty:
                self._move_journal()
                continue
            if job is None:
                break
            if job.call is not None:
                self._move_journal()  # a call (e.g. the audit API) sees every access row
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
                    self._move_journal()
                    self._run_call(nxt)
                    continue
                group.append(nxt)
                rows += len(nxt.collected.events)  # type: ignore[union-attr]
            if self._journal is not None and all(_audit_only(j) for j in group):
                self._journal_group(group)
            else:
                self._commit_group(group)
            if stop:
                break
        self._move_journal()
        # The connection stays open until stop() has stopped the hook thread and the readers: on DuckDB
        # they are cursors of this connection and would fail mid-hook if it closed first.

    def _connect(self) -> None:
        self._store = open_store(self.store_url)
        if self._store.dialect == "duckdb":
            threads = os.environ.get(DUCKDB_THREADS_ENV, "1")
            self._store.execute(f"SET threads = {int(threads) if threads.isdigit() and int(threads) > 0 else 1}")
        if self._read_pool is None:
            for _ in range(READERS):
                self._readers.put(self._store.reader())
            self._read_pool = ThreadPoolExecutor(READERS, thread_name_prefix="accord-store-reader")
        if self._hook_thread is None:
            self._hook_thread = threading.Thread(target=self._run_hooks, args=(self._store.reader(),),
                                                 name="accord-collect-hooks", daemon=True)
            self._hook_thread.start()
        # Arrow initialises itself lazily on the first conversion, which can take a second:
        # do it now rather than in the first request.
        pa.array([datetime(2000, 1, 1)], type=pa.timestamp("us"))
        if self._journal is None and self._store.dialect == "duckdb" and (path := journal_path(self.store_url)):
            self._journal = AuditJournal(path)
            self._journal.recover(self._store)  # rows a crash left between the answer and the store
        self._stitch_pending()

    def _run_call(self, job: _Job) -> None:
        # A call sees the effects of every after-commit hook of what was committed before it.
        self._hook_queue.join()
        try:
            result = job.call(self._store)  # type: ignore[misc, arg-type]
        except Exception as exc:  # noqa: BLE001 - handed to the waiting request
            self._settle(job, error=exc)
            self._recover()
            return
        self._settle(job, result=result)

    def _journal_group(self, group: list[_Job]) -> None:
        """Make the group's access rows durable in the journal, then answer; they move into the store later."""
        assert self._journal is not None
        try:
            self._journal.append([(j.row[1], j.row[2]) for j in group])  # type: ignore[index]
        except OSError:
            log.exception("could not write the access-audit journal; committing its rows to the store instead")
            self._commit_group(group)
            return
        for job in group:
            self._settle(job)
        if self._journal.due():
            self._move_journal()

    def _move_journal(self) -> None:
        if self._journal is None or not self._journal.pending:
            return
        try:
            self._journal.move(self._store)  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - the rows stay in the journal (and on disk) for the next try
            log.exception("could not move access-audit rows into the store; will retry")
            self._recover()

    def _commit_group(self, group: list[_Job]) -> None:
        try:
            appends = [j.append for j in group if j.append is not None]
            rows = [j.row for j in group if j.row is not None]
            if rows:
                appends.append(lambda store: _insert_rows(store, rows))
            committed = self._insert([j.collected for j in group], appends)  # type: ignore[misc]
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
        self._after_commit(committed)  # queued before the answers, so wait_for_hooks() after one sees it
        for job in group:
            self._settle(job)

    def _insert(self, parts: list[Collected], appends: list[Callable[[Store], None]]) -> Committed:
        """Commit the parts' rows and the appends, and stitch the identify/alias/group messages, in one
        transaction."""
        store = self._store
        assert store is not None
        if self.hooks.before_commit:  # once per group: a hook's own queries are paid once, not per request
            merged = Collected([r for p in parts for r in p.events], [r for p in parts for r in p.signals])
            for hook in self.hooks.before_commit:
                merged = hook(store, merged)
            parts = [merged]
        events: dict[str, tuple[Any, ...]] = {}
        signals: dict[str, tuple[Any, ...]] = {}
        for part in parts:
            for row in part.events:
                events.setdefault(row[0], row)
            for row in part.signals:
                signals.setdefault(row[0], row)
        tables = [_Rows("events", list(events.values()), EVENTS_SCHEMA),
                  _Rows("identity_signals", list(signals.values()), SIGNALS_SCHEMA)]
        to_stitch = [_signal(r[:7]) for r in signals.values()] if self.stitcher is not None else []
        try:
            stitched = self._store_rows(tables, to_stitch, appends)
        except _StitchFailed:
            # The rows are fine, stitching is not: store them alone, then stitch message by message.
            log.exception("stitching a group failed; storing its events, then stitching one message at a time")
            self._recover()
            self._store_rows(tables, [], appends)
            stitched = self._stitch(list(signals.values()))
        return Committed(list(events.values()), stitched)

    def _store_rows(self, tables: list[_Rows], signals: list[Signal],
                    appends: list[Callable[[Store], None]]) -> list[Stitched]:
        """Append the tables and stitch ``signals``, in one transaction; a messageId stored before (a
        client's retry) makes the append fail, and the group is redone skipping the stored rows."""
        try:
            return self._write(tables, signals, appends, dedupe=False)
        except _StitchFailed:
            raise
        except Exception as exc:
            if not self._store.is_unique_violation(exc):  # type: ignore[union-attr]
                raise
        self._recover()
        return self._write(tables, signals, appends, dedupe=True)

    def _write(self, tables: list[_Rows], signals: list[Signal],
               appends: list[Callable[[Store], None]], dedupe: bool) -> list[Stitched]:
        store = self._store
        assert store is not None
        # Messages inserted fresh here (not a retry) are claimed for stitching as they are written:
        # the primary key makes this transaction the only one holding them.
        claimed_at = now_utc() if signals and not dedupe else None
        # Held back and sent together (PostgreSQL): the rows with the stitching lock, the stitching's
        # writes with its next read or the COMMIT.
        with store.pipeline(), store.transaction():
            for rows in tables:
                if dedupe:
                    store.insert_new(rows.table, rows.arrow(), ["event_id"])
                elif rows.table == "identity_signals" and claimed_at is not None:
                    _append(store, rows.claimed(claimed_at))
                else:
                    _append(store, rows)
            for fn in appends:
                fn(store)
            if not signals:
                return []
            store.lock_for_transaction(STITCHING_LOCK)
            try:
                return self._stitch_group(signals, claimed_at, locked=True)
            except Exception as exc:
                if store.is_unique_violation(exc) and store.refused_by(exc) in {t.table for t in tables}:
                    raise  # a messageId stored before (a retry): the rows' error, held back to the first read
                raise _StitchFailed(str(exc)) from exc

    def _after_commit(self, committed: Committed) -> None:
        if self.hooks.after_commit:
            self._hook_queue.put(committed)

    def wait_for_hooks(self) -> None:
        """Block until the after-commit hooks have seen everything committed so far."""
        self._hook_queue.join()

    def _run_hooks(self, store: Store) -> None:
        """The hook thread: after-commit hooks run here, on their own connection, so a slow hook delays
        its own work, never collection. Groups committed while a hook ran are handed over as one."""
        while True:
            first = self._hook_queue.get()
            batch = [first]
            while True:
                try:
                    batch.append(self._hook_queue.get_nowait())
                except queue.Empty:
                    break
            done = [c for c in batch if c is not None]
            if done:
                merged = Committed([e for c in done for e in c.events], [s for c in done for s in c.stitched])
                for hook in self.hooks.after_commit:
                    try:
                        hook(store, merged)
                    except Exception:  # noqa: BLE001 - the events are committed and acknowledged already
                        log.exception("collection hook %s failed", getattr(hook, "__qualname__", hook))
                        try:
                            store.fetchall("SELECT 1")
                        except Exception:  # noqa: BLE001 - a broken connection: replace it
                            store = store.reader()
            for _ in batch:
                self._hook_queue.task_done()
            if None in batch:
                store.close()
                return

    # --- identity stitching -----------------------------------------------------------------

    def _stitch(self, rows: list[tuple[Any, ...]]) -> list[Stitched]:
        """Stitch these signal rows (their stored, not yet processed ones); failures are logged and left pending."""
        if self.stitcher is None or not rows:
            return []
        signals = [_signal(r[:7]) for r in rows]
        try:
            return self._stitch_group(signals)
        except Exception:  # noqa: BLE001 - the events are stored; find the message that fails
            self._recover()
            if len(signals) == 1:
                log.exception("could not stitch message %s; it stays pending", signals[0].event_id)
                return []
        out: list[Stitched] = []
        for signal in signals:
            try:
                out += self._stitch_group([signal])
            except Exception:  # noqa: BLE001
                log.exception("could not stitch message %s; it stays pending", signal.event_id)
                self._recover()
        return out

    def _stitch_group(self, signals: list[Signal], claimed_at: datetime | None = None, locked: bool = False
                      ) -> list[Stitched]:
        """Stitch ``signals``; ``claimed_at``: they were inserted already claimed (processed_at) in
        this transaction, else each is claimed here and one stitched before is skipped. ``locked``: the
        transaction holds the stitching lock already."""
        store, stitcher = self._store, self.stitcher
        assert store is not None and stitcher is not None
        now = claimed_at or now_utc()
        with store.transaction():
            if not locked:
                store.lock_for_transaction(STITCHING_LOCK)
            if claimed_at is not None:
                todo = signals
            else:
                ids = [s.event_id for s in signals]
                # Claim the messages: one stitched before (a client's retry, another worker) is skipped.
                claimed = {r[0] for r in store.fetchall(
                    f"UPDATE identity_signals SET processed_at = ? WHERE processed_at IS NULL AND event_id IN "
                    f"({', '.join('?' for _ in ids)}) RETURNING event_id", (now, *ids))}
                todo = [s for s in signals if s.event_id in claimed]
            return stitch_signals(store, stitcher.rules, todo, now, stitcher.model) if todo else []

    def _stitch_pending(self) -> None:
        """Stitch what an earlier process stored but did not stitch (it stopped in between), oldest first."""
        if self.stitcher is None:
            return
        store = self._store
        assert store is not None
        after: tuple[Any, ...] = ()
        total = 0
        while True:
            where = "processed_at IS NULL"
            if after:
                where += " AND (received_at > ? OR (received_at = ? AND event_id > ?))"
            rows = store.fetchall(f"{_SIGNAL_SQL} WHERE {where} ORDER BY received_at, event_id "
                                  f"LIMIT {PENDING_CHUNK}", (after[1], after[1], after[0]) if after else ())
            if not rows:
                break
            self._stitch([r[:7] for r in rows])
            total += len(rows)
            log.info("stitched %d pending identify/alias/group messages", total)
            after = (rows[-1][0], rows[-1][7])

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


def _audit_only(job: _Job) -> bool:
    """Whether the job is one access-audit row and nothing else (``append_row`` into access_log)."""
    return (job.row is not None and job.row[0] == AUDIT_TABLE and job.append is None and job.call is None
            and job.collected is not None and not job.collected.events and not job.collected.signals)


def _insert_rows(store: Store, rows: list[tuple[str, tuple[str, ...], tuple[Any, ...]]]) -> None:
    """Insert (table, columns, values) rows, one statement per table and column list."""
    by_target: dict[tuple[str, tuple[str, ...]], list[tuple[Any, ...]]] = {}
    for table, columns, values in rows:
        by_target.setdefault((table, columns), []).append(values)
    for (table, columns), values in by_target.items():
        for start in range(0, len(values), 200):
            part = values[start:start + 200]
            marks = "(" + ", ".join("?" for _ in columns) + ")"
            store.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join(marks for _ in part)}",
                          [v for r in part for v in r])


@dataclass
class _Rows:
    """A group's rows for one table, in ``schema``'s column order; as Arrow only when loaded in bulk."""

    table: str
    rows: list[tuple[Any, ...]]
    schema: pa.Schema

    def arrow(self) -> pa.Table:
        columns = list(zip(*self.rows)) if self.rows else [[] for _ in self.schema]
        return pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(columns, self.schema)],
                                    schema=self.schema)

    def claimed(self, at: datetime) -> _Rows:
        """The rows with ``processed_at`` set: claimed for stitching as they are written."""
        return _Rows(self.table, [(*r, at) for r in self.rows],
                     self.schema.append(pa.field("processed_at", pa.timestamp("us"))))


def _append(store: Store, rows: _Rows) -> None:
    """Append the rows: a few as one INSERT ... VALUES (no Arrow round trip), more as an Arrow table."""
    if not rows.rows:
        return
    if len(rows.rows) > SMALL_INSERT:
        store.load_arrow(rows.table, rows.arrow())
        return
    marks = "(" + ", ".join("?" for _ in rows.schema) + ")"
    store.execute(f"INSERT INTO {rows.table} ({', '.join(rows.schema.names)}) "
                  f"VALUES {', '.join(marks for _ in rows.rows)}", [v for r in rows.rows for v in r])


def _signal(row: tuple[Any, ...]) -> Signal:
    """A Signal from (event_id, type, user_id, anonymous_id, previous_id, group_id, traits JSON text)."""
    traits = orjson.loads(row[6]) if row[6] else None
    return Signal(row[0], row[1], row[2], row[3], row[4], row[5], traits if isinstance(traits, dict) else None)
