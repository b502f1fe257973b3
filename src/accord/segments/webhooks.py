"""Webhooks for segment enter/exit: a durable queue in the store, signed POSTs, retries with
exponential backoff, dead letters and replay.

Each delivery is a JSON body POSTed with ``X-Accord-Signature: sha256=<hex>``, the HMAC-SHA256 of
the exact body bytes under the webhook's secret, and ``X-Accord-Delivery: <id>`` (the same on every
retry, so a receiver can drop duplicates). A 2xx answer delivers it; anything else (or no answer
within ``timeout_seconds``) retries after ``backoff_seconds``, doubling up to
``max_backoff_seconds``; after ``max_attempts`` the delivery is dead-lettered until replayed.
Rows are claimed with a lease (``locked_until``), so a crashed sender's claims are retried.

A webhook with a ``purpose`` (a consent purpose of ``privacy.purposes``) gets only the changes of
customers who allow that purpose (``accord.privacy.consent``: granted, or no decision and a purpose
whose default is granted), decided when the change is queued; its payloads carry ``"purpose"``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import queue
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pyarrow as pa

from accord import __version__
from accord.clock import utcnow
from accord.errors import AccordError, ConfigError
from accord.privacy.consent import allowed, consent_filter_sql
from accord.privacy.settings import PrivacySettings, privacy_settings
from accord.segments.catalog import settings_of
from accord.segments.membership import Change
from accord.segments.settings import WebhookSettings
from accord.store import Store, open_store

log = logging.getLogger("accord.webhooks")
SIGNATURE_HEADER = "X-Accord-Signature"
DELIVERY_HEADER = "X-Accord-Delivery"
LEASE = timedelta(seconds=60)
_COLUMNS = ("delivery_id", "webhook", "url", "segment", "customer_id", "kind", "body", "status", "attempts",
            "created_at", "next_attempt_at")
_SCHEMA = pa.schema([(c, pa.int32() if c == "attempts" else
                      pa.timestamp("us") if c in ("created_at", "next_attempt_at", "locked_until") else pa.string())
                     for c in (*_COLUMNS, "locked_until")])


def sign(body: bytes, key: bytes) -> str:
    """The signature header value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(body: bytes, key: bytes, header: str) -> bool:
    """What a receiver does: compare in constant time."""
    return hmac.compare_digest(sign(body, key), header)


def _body(delivery_id: str, hook: WebhookSettings, change: Change, at: datetime, via: str) -> str:
    body = {
        "id": delivery_id,
        "type": "segment.entered" if change.kind == "enter" else "segment.exited",
        "segment": change.segment,
        "customer_id": change.customer_id,
        "occurred_at": at.isoformat(timespec="microseconds") + "Z",
        "via": via,
        "webhook": hook.name,
    }
    if hook.purpose is not None:
        body["purpose"] = hook.purpose
    return orjson.dumps(body).decode()


def consent_settings(cfg: Any) -> PrivacySettings:
    """The privacy settings, after checking that every webhook's purpose is one of its purposes."""
    privacy = privacy_settings(getattr(cfg, "privacy", None))
    for hook in settings_of(cfg).webhooks:
        if hook.purpose is not None and hook.purpose not in privacy.purposes:
            raise ConfigError(f"segments.webhooks[{hook.name}].purpose: {hook.purpose!r} is not a consent purpose; "
                              f"expected one of {', '.join(privacy.purposes)} (privacy.purposes)")
    return privacy


Withheld = dict[str, set[str]]
"""Consent purpose -> the customers (of the changes at hand) who do not allow it."""


def _withheld_one_by_one(store: Store, cfg: Any, hooks: list[WebhookSettings], changes: list[Change]) -> Withheld:
    purposes = sorted({h.purpose for h in hooks if h.purpose is not None})
    if not purposes:
        return {}
    privacy = consent_settings(cfg)
    customers = sorted({c.customer_id for c in changes})
    return {p: {c for c in customers if not allowed(store, c, p, privacy)} for p in purposes}


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    webhook: str
    url: str
    body: str
    attempts: int = 0


def enqueue(store: Store, cfg: Any, changes: Iterable[Change], now: datetime, via: str,
            claimed_until: datetime | None = None, withheld: Withheld | None = None) -> list[Delivery]:
    """Queue a delivery per change and webhook that wants it, in the caller's transaction; a change of
    a customer who does not allow a webhook's purpose is not queued for it.

    With ``claimed_until`` the rows are stored already claimed by the caller (status 'sending'
    with that lease), who sends them at once; should it die first, they are sent when the lease ends.
    ``withheld`` (purpose -> customers without it) saves looking consent up change by change."""
    hooks = settings_of(cfg).webhooks
    if not hooks:
        return []
    changes = list(changes)
    if withheld is None:
        withheld = _withheld_one_by_one(store, cfg, hooks, changes)
    status = "pending" if claimed_until is None else "sending"
    rows: list[tuple[Any, ...]] = []
    for change in changes:
        for hook in hooks:
            if not hook.wants(change.segment, change.kind):
                continue
            if hook.purpose is not None and change.customer_id in withheld.get(hook.purpose, ()):
                continue
            delivery_id = uuid.uuid4().hex
            rows.append((delivery_id, hook.name, hook.url, change.segment, change.customer_id, change.kind,
                         _body(delivery_id, hook, change, now, via), status, 0, now, now, claimed_until))
    if len(rows) > 100:
        columns = {c: [r[i] for r in rows] for i, c in enumerate(_COLUMNS)}
        columns["locked_until"] = [claimed_until] * len(rows)
        store.load_arrow("webhook_deliveries", pa.table(columns, schema=_SCHEMA))
    elif rows:
        store.executemany(f"INSERT INTO webhook_deliveries ({', '.join(_COLUMNS)}, locked_until) "
                          f"VALUES ({', '.join('?' for _ in range(len(_COLUMNS) + 1))})", rows)
    return [Delivery(r[0], r[1], r[2], r[6]) for r in rows]


def enqueue_batch_changes(store: Store, cfg: Any, now: datetime, via: str) -> int:
    """Queue deliveries for every row of ``_seg_changes`` (a batch run's enters and exits); consent is
    looked up in one query per webhook purpose."""
    hooks = settings_of(cfg).webhooks
    if not hooks:
        return 0
    withheld: Withheld = {}
    purposes = sorted({h.purpose for h in hooks if h.purpose is not None})
    if purposes:
        privacy = consent_settings(cfg)
        for purpose in purposes:
            keeps, params = consent_filter_sql(purpose, "c.customer_id", privacy)
            withheld[purpose] = {r[0] for r in store.fetchall(
                f"SELECT DISTINCT c.customer_id FROM _seg_changes c WHERE NOT ({keeps})", params)}
    table = store.fetch_arrow("SELECT segment, customer_id, kind FROM _seg_changes")
    total = 0
    for batch in table.to_batches(max_chunksize=100_000):
        segs, custs, kinds = (batch.column(i).to_pylist() for i in range(3))
        total += len(enqueue(store, cfg, [Change(s, c, k) for s, c, k in zip(segs, custs, kinds)], now, via,
                             withheld=withheld))
    return total


# --- sending ---------------------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    delivered: int = 0
    retrying: int = 0
    dead: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"delivered": self.delivered, "retrying": self.retrying, "dead": self.dead}


class Sender:
    """Claims due deliveries and POSTs them; one per process (or per delivery thread)."""

    def __init__(self, cfg: Any, client: httpx.Client | None = None):
        self.hooks = {h.name: h for h in settings_of(cfg).webhooks}
        for hook in self.hooks.values():
            hook.signing_key()  # a missing secret fails at start, naming the setting
        consent_settings(cfg)  # and so does a purpose privacy.purposes does not list
        self.client = client or httpx.Client(follow_redirects=False, headers={"User-Agent": f"accord/{__version__}"})

    def close(self) -> None:
        self.client.close()

    def claim(self, store: Store, now: datetime, limit: int = 100) -> list[tuple[Any, ...]]:
        return store.fetchall(
            "UPDATE webhook_deliveries SET status = 'sending', locked_until = ? "
            "WHERE delivery_id IN (SELECT delivery_id FROM webhook_deliveries "
            "  WHERE (status = 'pending' AND next_attempt_at <= ?) OR (status = 'sending' AND locked_until < ?) "
            f"  ORDER BY next_attempt_at LIMIT {int(limit)}) "
            "AND ((status = 'pending' AND next_attempt_at <= ?) OR (status = 'sending' AND locked_until < ?)) "
            "RETURNING delivery_id, webhook, url, body, attempts",
            (now + LEASE, now, now, now, now))

    def deliver_due(self, store: Store, now: datetime | None = None, limit: int = 100) -> DeliveryReport:
        """Send what is due now (one claim of up to ``limit``)."""
        report = DeliveryReport()
        for delivery_id, webhook, url, body, attempts in self.claim(store, now or utcnow(), limit):
            self._send_one(store, report, delivery_id, webhook, url, body, int(attempts))
        return report

    def send(self, store: Store, deliveries: Iterable[Delivery]) -> DeliveryReport:
        """Send deliveries this process has claimed (e.g. just queued with ``claimed_until``)."""
        report = DeliveryReport()
        for d in deliveries:
            self._send_one(store, report, d.delivery_id, d.webhook, d.url, d.body, d.attempts)
        return report

    def _send_one(self, store: Store, report: DeliveryReport, delivery_id: str, webhook: str, url: str, body: str,
                  attempts: int) -> None:
        hook = self.hooks.get(webhook)
        status: int | None = None
        error: str | None = None
        if hook is None:
            error = f"webhook {webhook!r} is no longer configured"
        else:
            data = body.encode()
            try:
                response = self.client.post(url, content=data, timeout=hook.timeout_seconds, headers={
                    "Content-Type": "application/json", SIGNATURE_HEADER: sign(data, hook.signing_key()),
                    DELIVERY_HEADER: delivery_id, "X-Accord-Webhook": webhook})
                status = response.status_code
                if not 200 <= status < 300:
                    error = f"HTTP {status}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
        done = utcnow()
        attempts += 1
        if error is None:
            store.execute("UPDATE webhook_deliveries SET status = 'delivered', attempts = ?, delivered_at = ?, "
                          "last_attempt_at = ?, last_status = ?, last_error = NULL, locked_until = NULL "
                          "WHERE delivery_id = ?", (attempts, done, done, status, delivery_id))
            report.delivered += 1
            return
        if hook is None or attempts >= hook.max_attempts:
            store.execute("UPDATE webhook_deliveries SET status = 'dead', attempts = ?, last_attempt_at = ?, "
                          "last_status = ?, last_error = ?, locked_until = NULL WHERE delivery_id = ?",
                          (attempts, done, status, error, delivery_id))
            log.warning("webhook %s: delivery %s dead-lettered after %d attempt(s): %s", webhook, delivery_id,
                        attempts, error)
            report.dead += 1
            return
        wait = min(hook.backoff_seconds * 2 ** (attempts - 1), hook.max_backoff_seconds)
        store.execute("UPDATE webhook_deliveries SET status = 'pending', attempts = ?, next_attempt_at = ?, "
                      "last_attempt_at = ?, last_status = ?, last_error = ?, locked_until = NULL WHERE delivery_id = ?",
                      (attempts, done + timedelta(seconds=wait), done, status, error, delivery_id))
        report.retrying += 1

    def next_due(self, store: Store) -> datetime | None:
        return store.scalar("SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'")


def drain(store: Store, cfg: Any, *, until_empty: bool = False, now: datetime | None = None) -> DeliveryReport:
    """Send every delivery due now; with ``until_empty`` keep going (waiting out backoffs) until none is
    pending (used by ``accord webhooks deliver --wait``)."""
    import time

    sender = Sender(cfg)
    total = DeliveryReport()
    try:
        while True:
            report = sender.deliver_due(store, now)
            for k in ("delivered", "retrying", "dead"):
                setattr(total, k, getattr(total, k) + getattr(report, k))
            if report.delivered + report.retrying + report.dead:
                continue
            nxt = sender.next_due(store) if until_empty else None
            if nxt is None:
                return total
            time.sleep(max(0.0, min(5.0, (nxt - utcnow()).total_seconds())) + 0.01)
    finally:
        sender.close()


class DeliveryWorker:
    """The delivery thread of ``accord serve``: sends at once when woken (a segment changed), and
    otherwise polls for retries that come due. It has its own store connection."""

    def __init__(self, store_url: str, cfg: Any, poll_seconds: float = 1.0):
        self.store_url = store_url
        self.cfg = cfg
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._poll_now = threading.Event()
        self._stop = threading.Event()
        self._handed: queue.SimpleQueue[Delivery] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.sender = Sender(cfg)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="accord-webhooks", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look for due deliveries in the queue now."""
        self._poll_now.set()
        self._wake.set()

    def submit(self, deliveries: list[Delivery]) -> None:
        """Send these (claimed, committed) deliveries now; the queue is polled on its own schedule, so
        that a stream of events is not followed by a queue scan after each (it would compete with the
        next event's decision for the store and the interpreter)."""
        for d in deliveries:
            self._handed.put(d)
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.sender.close()

    def _run(self) -> None:
        import time

        store: Store | None = None
        next_poll = 0.0  # poll the queue at once on start
        while not self._stop.is_set():
            try:
                if store is None:
                    store = open_store(self.store_url)
                self._wake.clear()
                handed = []
                while not self._handed.empty():
                    handed.append(self._handed.get_nowait())
                if handed:
                    self.sender.send(store, handed)
                    continue
                if self._poll_now.is_set() or time.monotonic() >= next_poll:
                    self._poll_now.clear()
                    report = self.sender.deliver_due(store)
                    if report.delivered + report.retrying + report.dead:
                        self._poll_now.set()  # more may be due
                        continue
                    nxt = self.sender.next_due(store)
                    wait = self.poll_seconds if nxt is None else (nxt - utcnow()).total_seconds()
                    next_poll = time.monotonic() + max(0.0, min(self.poll_seconds, wait))
                self._wake.wait(max(0.0, next_poll - time.monotonic()))
            except Exception:  # noqa: BLE001 - keep delivering; the queue keeps what was not sent
                log.exception("webhook delivery failed; retrying in %.1f s", self.poll_seconds)
                if store is not None:
                    try:
                        store.close()
                    except Exception:  # noqa: BLE001
                        pass
                    store = None
                self._stop.wait(self.poll_seconds)
        if store is not None:
            store.close()


# --- dead letters ------------------------------------------------------------------------------------


def dead_letters(store: Store, webhook: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    where, params = "status = 'dead'", []
    if webhook:
        where += " AND webhook = ?"
        params.append(webhook)
    rows = store.fetchall(
        f"SELECT delivery_id, webhook, segment, customer_id, kind, attempts, last_attempt_at, last_status, last_error "
        f"FROM webhook_deliveries WHERE {where} ORDER BY last_attempt_at DESC, delivery_id LIMIT {int(limit)}", params)
    keys = ("delivery_id", "webhook", "segment", "customer_id", "kind", "attempts", "last_attempt_at", "last_status",
            "last_error")
    return [dict(zip(keys, r)) for r in rows]


def replay(store: Store, ids: list[str] | None = None, webhook: str | None = None, now: datetime | None = None) -> int:
    """Put dead deliveries back in the queue (all of them, those of ``webhook``, or those whose ids
    start with one of ``ids``), with their attempts reset; returns how many."""
    now = now or utcnow()
    where, params = "status = 'dead'", []
    if webhook:
        where += " AND webhook = ?"
        params.append(webhook)
    if ids:
        where += " AND (" + " OR ".join("strpos(delivery_id, ?) = 1" for _ in ids) + ")"
        params += ids
    chosen = store.fetchall(f"SELECT delivery_id FROM webhook_deliveries WHERE {where}", params)
    if ids and not chosen:
        raise AccordError(f"no dead-lettered delivery has an id starting with {', '.join(ids)}; "
                          "see 'accord webhooks dead-letters'")
    with store.transaction():
        store.execute(f"UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, "
                      f"locked_until = NULL WHERE {where}", (now, *params))
    return len(chosen)


def queue_counts(store: Store) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for webhook, status, n in store.fetchall(
            "SELECT webhook, status, COUNT(*) FROM webhook_deliveries GROUP BY webhook, status ORDER BY 1, 2"):
        out.setdefault(webhook, {})[status] = int(n)
    return out
