"""The decision log: every decision with its ranked offers and propensities, and their outcomes.

The API keeps new decisions in memory for a few milliseconds and writes them in one transaction
(group commit), so a decision never waits for a disk flush; ``flush`` writes whatever is pending.
An outcome is stored only once its decision is written (``ensure_written`` first), so no outcome
ever names a decision the log does not hold; shutdown writes whatever is still pending.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from accord.clock import utcnow
from accord.errors import AccordError
from accord.store import Store

log = logging.getLogger("accord.decisions")


class OutcomeError(AccordError):
    """An outcome names a decision or offer that does not exist."""


@dataclass
class RankedOffer:
    offer_id: str
    score: float | None
    policy: str
    propensity: float
    explored: bool
    explanation: dict[str, Any]
    content: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"offer_id": self.offer_id, "score": self.score, "policy": self.policy,
                "propensity": self.propensity, "explanation": self.explanation, "content": self.content}


@dataclass
class Decision:
    decision_id: str
    unit: str
    customer_id: str | None
    anonymous_id: str | None
    context: dict[str, str | None]
    policy: str
    model_version: int | None
    experiment: str | None
    variant: str | None
    personalized: bool
    features: dict[str, Any]
    candidates: list[str]
    decided_at: datetime
    offers: list[RankedOffer] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_response(self) -> dict[str, Any]:
        out: dict[str, Any] = {"decision_id": self.decision_id, "customer_id": self.customer_id,
                               "policy": self.policy, "personalized": self.personalized,
                               "offers": [o.as_dict() for o in self.offers]}
        if self.experiment:
            out["experiment"] = {"name": self.experiment, "variant": self.variant}
        if self.notes:
            out["notes"] = self.notes
        return out


def new_decision_id() -> str:
    return "dec_" + uuid.uuid4().hex


class DecisionLog:
    """Decisions not yet written, and the writer. Thread-safe: the API decides on its store thread
    while a log writer thread (``LogWriter``) writes on a connection of its own."""

    def __init__(self) -> None:
        self.pending: list[Decision] = []
        self.in_flight: list[Decision] = []
        self._lock = threading.Lock()
        self._written = threading.Condition(self._lock)

    def add(self, decision: Decision) -> None:
        with self._lock:
            self.pending.append(decision)

    def pending_given(self, unit: str) -> dict[str, tuple[list[str], datetime]]:
        """decision_id -> (offers given, when) of ``unit``'s decisions not yet written (or being written)."""
        with self._lock:
            return {d.decision_id: ([o.offer_id for o in d.offers], d.decided_at)
                    for d in (*self.in_flight, *self.pending) if d.unit == unit}

    def flush(self, store: Store) -> int:
        """Write every pending decision in one transaction; return how many."""
        with self._lock:
            batch, self.pending = self.pending, []
            self.in_flight.extend(batch)
        if not batch:
            return 0
        ok = False
        try:
            write_decisions(store, batch)
            ok = True
        finally:
            with self._lock:
                ids = {d.decision_id for d in batch}
                self.in_flight = [d for d in self.in_flight if d.decision_id not in ids]
                if not ok:
                    self.pending = batch + self.pending
                self._written.notify_all()
        return len(batch)

    def ensure_written(self, store: Store, decision_id: str, timeout: float = 10.0) -> None:
        """Return once ``decision_id`` is not waiting any more: written (here, if it was still pending, or
        by the log writer, if it was writing it), or never made."""
        deadline = time.monotonic() + timeout
        while True:
            self.flush(store)
            with self._written:
                self._written.wait_for(lambda: all(d.decision_id != decision_id for d in self.in_flight),
                                       max(0.0, deadline - time.monotonic()))
                if all(d.decision_id != decision_id for d in (*self.in_flight, *self.pending)):
                    return
            if time.monotonic() >= deadline:
                return  # still unwritten (the store refuses writes): callers find no decision


HOUSEKEEPING_RETRY_SECONDS = 1.0
"""After a failed housekeeping run, the log writer waits this long before the next (the log is not spammed)."""


class LogWriter:
    """A thread with its own store connection that writes the pending decisions every ``interval``
    seconds, so that deciding never waits for a commit. ``housekeeping(store)``, if given, runs at
    ``start`` and after every write, on the same thread and connection: work kept off the request path
    (the API keeps the decision engine's catalog fresh with it)."""

    def __init__(self, log: DecisionLog, store_url: str, interval: float = 0.05,
                 housekeeping: Callable[[Store], None] | None = None):
        self.log, self.store_url, self.interval = log, store_url, interval
        self.housekeeping = housekeeping
        self._housekeep_after = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._store: Store | None = None

    def start(self) -> None:
        from accord.store import open_store

        self._store = open_store(self.store_url)
        self._housekeep()  # before the first request: it finds offers and the model loaded
        self._thread = threading.Thread(target=self._run, name="accord-decision-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self._store is not None
        while not self._stop.wait(self.interval):
            try:
                self.log.flush(self._store)
            except Exception:  # noqa: BLE001 - kept pending, retried next time
                log.exception("could not write the decision log; will retry")
            self._housekeep()

    def _housekeep(self) -> None:
        if self.housekeeping is None or self._store is None or time.monotonic() < self._housekeep_after:
            return
        try:
            self.housekeeping(self._store)
        except Exception:  # noqa: BLE001 - requests do the same work themselves when this fails
            log.exception("decision log writer: housekeeping failed; retrying in %g s", HOUSEKEEPING_RETRY_SECONDS)
            self._housekeep_after = time.monotonic() + HOUSEKEEPING_RETRY_SECONDS

    def stop(self) -> None:
        """Stop and write whatever is still pending."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._store is not None:
            try:
                self.log.flush(self._store)
            finally:
                self._store.close()


_HEAD_SCHEMA = pa.schema([
    ("decision_id", pa.string()), ("unit", pa.string()), ("customer_id", pa.string()), ("anonymous_id", pa.string()),
    ("channel", pa.string()), ("placement", pa.string()), ("device", pa.string()), ("policy", pa.string()),
    ("model_version", pa.int64()), ("experiment", pa.string()), ("variant", pa.string()),
    ("personalized", pa.bool_()), ("features", pa.string()), ("candidates", pa.string()), ("offered", pa.string()),
    ("decided_at", pa.timestamp("us"))])
_OFFER_SCHEMA = pa.schema([("decision_id", pa.string()), ("position", pa.int64()), ("offer_id", pa.string()),
                           ("score", pa.float64()), ("propensity", pa.float64()), ("explored", pa.bool_())])


def _table(rows: list[tuple[Any, ...]], schema: pa.Schema) -> pa.Table:
    columns = list(zip(*rows)) if rows else [() for _ in schema]
    return pa.Table.from_arrays([pa.array(list(c), type=f.type) for c, f in zip(columns, schema)], schema=schema)


_PG_TYPES = {pa.string(): "text", pa.int64(): "bigint", pa.float64(): "double precision", pa.bool_(): "boolean",
             pa.timestamp("us"): "timestamp"}
_JSON_COLUMNS = ("features", "candidates", "offered")


def _recordset(schema: pa.Schema) -> str:
    """The rows of a JSON array parameter, one object per row, typed as ``schema`` (JSON columns stay jsonb)."""
    types = ", ".join(f"{f.name} {'jsonb' if f.name in _JSON_COLUMNS else _PG_TYPES[f.type]}" for f in schema)
    return f"SELECT {', '.join(schema.names)} FROM jsonb_to_recordset(CAST(? AS jsonb)) AS r({types})"


_PG_WRITE = (f"WITH heads AS (INSERT INTO decisions ({', '.join(_HEAD_SCHEMA.names)}) {_recordset(_HEAD_SCHEMA)}) "
             f"INSERT INTO decision_offers ({', '.join(_OFFER_SCHEMA.names)}) {_recordset(_OFFER_SCHEMA)}")
"""PostgreSQL: a group's decisions and their offers in one statement (atomic on its own) whose two
parameters are JSON documents (orjson: microseconds), always the same text. A transaction with two
COPYs took six round trips and ~0.3 ms of CPU per decision; arrays of JSON text cost more (psycopg
escapes each element with a regular expression)."""


def _write_postgresql(store: Store, decisions: list[Decision]) -> None:
    heads = [{"decision_id": d.decision_id, "unit": d.unit, "customer_id": d.customer_id,
              "anonymous_id": d.anonymous_id, "channel": d.context.get("channel"),
              "placement": d.context.get("placement"), "device": d.context.get("device"), "policy": d.policy,
              "model_version": d.model_version, "experiment": d.experiment, "variant": d.variant,
              "personalized": d.personalized, "features": d.features, "candidates": d.candidates,
              "offered": [o.offer_id for o in d.offers], "decided_at": d.decided_at} for d in decisions]
    offers = [{"decision_id": d.decision_id, "position": i, "offer_id": o.offer_id, "score": o.score,
               "propensity": o.propensity, "explored": o.explored} for d in decisions for i, o in enumerate(d.offers)]
    store.execute(_PG_WRITE, (orjson.dumps(heads).decode(), orjson.dumps(offers).decode()))


def write_decisions(store: Store, decisions: list[Decision]) -> None:
    """Append decisions and their offers in one transaction (PostgreSQL: one statement; DuckDB: bulk
    loads, one per table)."""
    if not decisions:
        return
    if store.dialect == "postgresql":
        _write_postgresql(store, decisions)
        return
    heads = [(d.decision_id, d.unit, d.customer_id, d.anonymous_id, d.context.get("channel"),
              d.context.get("placement"), d.context.get("device"), d.policy, d.model_version, d.experiment,
              d.variant, d.personalized, json.dumps(d.features), json.dumps(d.candidates),
              json.dumps([o.offer_id for o in d.offers]), d.decided_at)
             for d in decisions]
    offers = [(d.decision_id, i, o.offer_id, o.score, o.propensity, o.explored)
              for d in decisions for i, o in enumerate(d.offers)]
    with store.transaction():
        store.load_arrow("decisions", _table(heads, _HEAD_SCHEMA))
        store.load_arrow("decision_offers", _table(offers, _OFFER_SCHEMA))


def record_outcome(store: Store, decision_id: str, offer_id: str | None, *, shown: bool = False,
                   clicked: bool = False, converted: bool = False, revenue: float | None = None,
                   occurred_at: datetime | None = None) -> str:
    """Store one outcome report for a logged decision; clicked or converted imply shown. Returns the outcome id."""
    if store.fetchone("SELECT 1 FROM decisions WHERE decision_id = ?", (decision_id,)) is not None:
        offered = [r[0] for r in store.fetchall(
            "SELECT offer_id FROM decision_offers WHERE decision_id = ? ORDER BY position", (decision_id,))]
    else:
        raise OutcomeError(f"no decision {decision_id!r}; pass the decision_id /v1/decide answered")
    if offer_id is not None and offer_id not in offered:
        raise OutcomeError(f"offer_id {offer_id!r} was not in decision {decision_id!r}; it offered "
                           f"{', '.join(offered) or 'nothing'}")
    now = utcnow()
    outcome_id = "out_" + uuid.uuid4().hex
    with store.transaction():
        store.execute(
            "INSERT INTO decision_outcomes (outcome_id, decision_id, offer_id, shown, clicked, converted, revenue, "
            "occurred_at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (outcome_id, decision_id, offer_id, bool(shown or clicked or converted), bool(clicked), bool(converted),
             revenue, occurred_at or now, now))
    return outcome_id


def read_decision(store: Store, decision_id: str) -> dict[str, Any] | None:
    head = store.fetchone(
        "SELECT decision_id, unit, customer_id, anonymous_id, channel, placement, device, policy, model_version, "
        "experiment, variant, personalized, decided_at FROM decisions WHERE decision_id = ?", (decision_id,))
    if head is None:
        return None
    keys = ("decision_id", "unit", "customer_id", "anonymous_id", "channel", "placement", "device", "policy",
            "model_version", "experiment", "variant", "personalized", "decided_at")
    out: dict[str, Any] = dict(zip(keys, head))
    out["offers"] = [{"position": p, "offer_id": o, "score": s, "propensity": pr, "explored": bool(e)}
                     for p, o, s, pr, e in store.fetchall(
                         "SELECT position, offer_id, score, propensity, explored FROM decision_offers "
                         "WHERE decision_id = ? ORDER BY position", (decision_id,))]
    outcome = {o: {"shown": bool(sh), "clicked": bool(c), "converted": bool(cv), "revenue": r}
               for o, sh, c, cv, r in store.fetchall(
                   "SELECT offer_id, MAX(CASE WHEN shown THEN 1 ELSE 0 END), MAX(CASE WHEN clicked THEN 1 ELSE 0 END), "
                   "MAX(CASE WHEN converted THEN 1 ELSE 0 END), SUM(revenue) FROM decision_outcomes "
                   "WHERE decision_id = ? GROUP BY offer_id", (decision_id,))}
    for offer in out["offers"]:
        offer["outcome"] = outcome.get(offer["offer_id"])
    out["outcome"] = outcome.get(None)
    return out
