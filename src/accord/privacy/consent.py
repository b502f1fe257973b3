"""Consent per purpose: decisions from source fields, the API and events; the current state; enforcement.

Every decision is appended to ``consent_history``; ``customer_consent`` holds, per customer and purpose,
the most recent decision across all the customer's records, events and API calls. A ``false`` after a
``true`` from the same record or identifier is recorded as ``withdrawn``.

Enforcement: ``allowed(store, customer_id, purpose)`` for one customer, ``consent_filter_sql(purpose)`` for
batch queries (segments, webhooks, decisions). A customer without a recorded decision gets the purpose's
``default`` (denied unless configured otherwise).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from accord.clock import utcnow
from accord.errors import AccordError, ConfigError
from accord.privacy.settings import STATUSES, PrivacySettings, privacy_settings
from accord.store.backend import Store

GRANTED_VALUES = ("yes", "y", "true", "t", "1", "on", "opt_in", "opt-in", "optin", "granted", "subscribed",
                  "consented")
DENIED_VALUES = ("no", "n", "false", "f", "0", "off", "opt_out", "opt-out", "optout", "denied", "unsubscribed",
                 "declined")
WITHDRAWN_VALUES = ("withdrawn", "revoked")


class ConsentError(AccordError):
    """A consent decision names an unknown purpose or status."""


@dataclass
class ConsentReport:
    decisions_added: int = 0
    customers: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def status_of(value: Any) -> str | None:
    """A source value as a consent status: granted, denied, withdrawn, or None (no decision)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "granted" if value else "denied"
    text = str(value).strip().lower()
    if text in GRANTED_VALUES:
        return "granted"
    if text in DENIED_VALUES:
        return "denied"
    if text in WITHDRAWN_VALUES:
        return "withdrawn"
    return None


def _status_sql(expr: str) -> str:
    def values(vs: Iterable[str]) -> str:
        return ", ".join("'" + v + "'" for v in vs)

    e = f"lower(trim({expr}))"
    return (f"CASE WHEN {e} IN ({values(GRANTED_VALUES)}) THEN 'granted' WHEN {e} IN ({values(DENIED_VALUES)}) "
            f"THEN 'denied' WHEN {e} IN ({values(WITHDRAWN_VALUES)}) THEN 'withdrawn' END")


def _json_field(store: Store, column: str, key: str) -> str:
    assert re.fullmatch(r"[a-z][a-z0-9_]*", key)  # purposes are validated names
    if store.dialect == "postgresql":
        return f"({column} ->> '{key}')"
    return f"json_extract_string({column}, '$.{key}')"


# --- decisions from source records ------------------------------------------------------------------

def check_source_purposes(cfg: Any, settings: PrivacySettings) -> None:
    for i, source in enumerate(cfg.sources):
        for purpose in source.fields.consent:
            if purpose not in settings.purposes:
                raise ConfigError(f"{cfg.config_path or 'accord.yaml'}: sources[{i}].fields.consent.{purpose}: "
                                  f"not a purpose in privacy.purposes ({', '.join(settings.purposes)}); add it "
                                  "there or rename the key")


def record_source_decisions(store: Store, cfg: Any, settings: PrivacySettings, now: datetime) -> int:
    """Append a decision for every source record whose mapped consent value changed; return how many."""
    check_source_purposes(cfg, settings)
    added = 0
    marker = f"{now.isoformat()}:{uuid.uuid4().hex[:8]}"
    for source in cfg.sources:
        for purpose in source.fields.consent:
            status = _status_sql(_json_field(store, "consent", purpose))
            basis = settings.purposes[purpose].lawful_basis
            rows = store.fetchall(f"""
                INSERT INTO consent_history (decision_id, purpose, status, decided_at, source, lawful_basis, origin,
                                             record_source, record_key, recorded_at, actor)
                SELECT 'con_' || md5(? || ':' || c.record_key || ':' || ? || ':' || ? || ':' || c.status),
                       ?, CASE WHEN c.status = 'denied' AND l.status = 'granted' THEN 'withdrawn' ELSE c.status END,
                       c.decided_at, ?, ?, 'record', ?, c.record_key, ?, 'ingest'
                FROM (SELECT record_key, {status} AS status, COALESCE(source_updated_at, valid_from) AS decided_at
                      FROM source_records WHERE source = ? AND consent IS NOT NULL) c
                LEFT JOIN (SELECT record_key, status FROM (
                             SELECT record_key, status, row_number() OVER (PARTITION BY record_key
                                    ORDER BY decided_at DESC, recorded_at DESC, decision_id DESC) AS rn
                             FROM consent_history WHERE origin = 'record' AND record_source = ? AND purpose = ?) h
                           WHERE rn = 1) l ON l.record_key = c.record_key
                WHERE c.status IS NOT NULL AND (l.status IS NULL OR
                      (CASE WHEN c.status = 'denied' AND l.status = 'withdrawn' THEN 'withdrawn' ELSE c.status END)
                      <> l.status)
                RETURNING 1""",
                (source.name, purpose, marker, purpose, source.name, basis, source.name, now, source.name, source.name, purpose))
            added += len(rows)
    return added


# --- the current state --------------------------------------------------------------------------------

_RESOLVED = """
    SELECT rc.customer_id, h.purpose, h.status, h.decided_at, h.source, h.lawful_basis, h.recorded_at, h.decision_id
    FROM consent_history h JOIN record_customer rc ON rc.source = h.record_source AND rc.record_key = h.record_key
    WHERE h.origin = 'record'
    UNION ALL
    SELECT ci.customer_id, h.purpose, h.status, h.decided_at, h.source, h.lawful_basis, h.recorded_at, h.decision_id
    FROM consent_history h JOIN customer_identifiers ci ON ci.id_type = h.id_type AND ci.value = h.id_value
    WHERE h.origin = 'event'
    UNION ALL
    SELECT COALESCE(r.to_id, h.customer_id), h.purpose, h.status, h.decided_at, h.source, h.lawful_basis,
           h.recorded_at, h.decision_id
    FROM consent_history h LEFT JOIN customer_redirects r ON r.from_id = h.customer_id
    WHERE h.origin = 'api'
"""


def rebuild_current(store: Store, customer_ids: list[str] | None = None) -> int:
    """Recompute customer_consent (for ``customer_ids``, or everyone): the latest decision per purpose wins."""
    if customer_ids is not None and not customer_ids:
        return 0
    only, params = "", []
    if customer_ids is not None:
        only = f"WHERE customer_id IN ({', '.join('?' for _ in customer_ids)})"
        params = list(customer_ids)
    with store.transaction():
        if customer_ids is None:
            store.execute("DELETE FROM customer_consent")
        else:
            store.execute(f"DELETE FROM customer_consent {only}", params)
        store.execute(f"""
            INSERT INTO customer_consent (customer_id, purpose, status, decided_at, source, lawful_basis)
            SELECT customer_id, purpose, status, decided_at, source, lawful_basis FROM (
                SELECT r.*, row_number() OVER (PARTITION BY customer_id, purpose
                       ORDER BY decided_at DESC, recorded_at DESC, decision_id DESC) AS rn
                FROM ({_RESOLVED}) r {only}) ranked
            WHERE rn = 1""", params)
        return int(store.scalar(f"SELECT count(DISTINCT customer_id) FROM customer_consent {only}", params) or 0)


def refresh_consent(store: Store, cfg: Any) -> ConsentReport:
    """The consent stage: decisions from changed source records, then everyone's current consent."""
    import time

    started = time.perf_counter()
    settings = privacy_settings(getattr(cfg, "privacy", None))
    with store.transaction():
        added = record_source_decisions(store, cfg, settings, utcnow())
        customers = rebuild_current(store)
    return ConsentReport(added, customers, round(time.perf_counter() - started, 3))


# --- decisions from the API and from events -------------------------------------------------------------

def _check(settings: PrivacySettings, purpose: str, status: str, where: str) -> None:
    if purpose not in settings.purposes:
        raise ConsentError(f"{where}purpose {purpose!r}: expected one of {', '.join(settings.purposes)} "
                           "(privacy.purposes in accord.yaml)")
    if status not in STATUSES:
        raise ConsentError(f"{where}status {status!r}: expected one of {', '.join(STATUSES)}")


def set_consent(store: Store, settings: PrivacySettings, customer_id: str, decisions: list[Mapping[str, Any]],
                source: str, actor: str) -> list[dict[str, Any]]:
    """Record decisions ({purpose, status, lawful_basis?, decided_at?}) for a customer; return their consent."""
    now = utcnow()
    rows = []
    for i, d in enumerate(decisions):
        purpose, status = str(d.get("purpose", "")), str(d.get("status", ""))
        _check(settings, purpose, status, f"decisions[{i}].")
        decided = d.get("decided_at") or now
        if isinstance(decided, datetime) and decided.tzinfo is not None:
            decided = decided.astimezone(timezone.utc).replace(tzinfo=None)
        basis = d.get("lawful_basis") or settings.purposes[purpose].lawful_basis
        rows.append(("con_" + uuid.uuid4().hex, purpose, status, decided, source, basis, "api", customer_id, now,
                     actor))
    with store.transaction():
        store.executemany(
            "INSERT INTO consent_history (decision_id, purpose, status, decided_at, source, lawful_basis, origin, "
            "customer_id, recorded_at, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        rebuild_current(store, [customer_id])
    return current_consent(store, settings, customer_id)


def _event_time(message: Mapping[str, Any], fallback: datetime) -> datetime:
    for key in ("timestamp", "originalTimestamp"):
        value = message.get(key)
        if isinstance(value, str):
            try:
                t = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                continue
            return t.astimezone(timezone.utc).replace(tzinfo=None) if t.tzinfo else t
    return fallback


def event_consent_rows(message: Mapping[str, Any], settings: PrivacySettings, received_at: datetime
                       ) -> list[tuple[Any, ...]]:
    """consent_history rows for a Segment message's ``context.consent.categoryPreferences``
    ({"Advertising": true, "Analytics": false}); categories that name no purpose are ignored."""
    context = message.get("context")
    consent = context.get("consent") if isinstance(context, Mapping) else None
    prefs = consent.get("categoryPreferences") if isinstance(consent, Mapping) else None
    if not isinstance(prefs, Mapping) or not prefs:
        return []
    who = [(t, str(message[k])) for t, k in (("user_id", "userId"), ("anonymous_id", "anonymousId"))
           if message.get(k) not in (None, "")]
    decided = _event_time(message, received_at)
    rows = []
    for category, value in prefs.items():
        purpose = settings.purpose_for_category(str(category))
        status = status_of(value)
        if purpose is None or status is None:
            continue
        for id_type, id_value in who:
            rows.append(("con_" + uuid.uuid4().hex, purpose, status, decided, "event",
                         settings.purposes[purpose].lawful_basis, "event", id_type, id_value, received_at,
                         str(message.get("messageId") or "")))
    return rows


def record_event_consent(store: Store, event: Mapping[str, Any], settings: PrivacySettings | None = None,
                         received_at: datetime | None = None) -> int:
    """Record the consent a collected event carries (Segment ``context.consent``) and update the current
    consent of the customers its userId/anonymousId name; return the decisions recorded.

    A ``false`` after a ``true`` from the same identifier is recorded as ``withdrawn``."""
    settings = settings or PrivacySettings()
    rows = event_consent_rows(event, settings, received_at or utcnow())
    if not rows:
        return 0
    with store.transaction():
        final = []
        for r in rows:
            last = store.fetchone(
                "SELECT status FROM consent_history WHERE origin = 'event' AND id_type = ? AND id_value = ? "
                "AND purpose = ? ORDER BY decided_at DESC, recorded_at DESC LIMIT 1", (r[7], r[8], r[1]))
            status = "withdrawn" if r[2] == "denied" and last and last[0] in ("granted", "withdrawn") else r[2]
            if last and last[0] == status:
                continue
            final.append((*r[:2], status, *r[3:]))
        store.executemany(
            "INSERT INTO consent_history (decision_id, purpose, status, decided_at, source, lawful_basis, origin, "
            "id_type, id_value, recorded_at, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", final)
        pairs = sorted({(r[7], r[8]) for r in final})
        customers: set[str] = set()
        for id_type, id_value in pairs:
            customers.update(c for (c,) in store.fetchall(
                "SELECT customer_id FROM customer_identifiers WHERE id_type = ? AND value = ?", (id_type, id_value)))
        rebuild_current(store, sorted(customers))
    return len(final)


# --- reading and enforcing ---------------------------------------------------------------------------

def _current_id(store: Store, customer_id: str) -> str:
    row = store.fetchone("SELECT to_id FROM customer_redirects WHERE from_id = ?", (customer_id,))
    return row[0] if row else customer_id


def current_consent(store: Store, settings: PrivacySettings, customer_id: str) -> list[dict[str, Any]]:
    """Every configured purpose with the customer's status (or the default, marked ``recorded: false``)."""
    cid = _current_id(store, customer_id)
    found = {r[0]: r for r in store.fetchall(
        "SELECT purpose, status, decided_at, source, lawful_basis FROM customer_consent WHERE customer_id = ?", (cid,))}
    out = []
    for purpose, spec in settings.purposes.items():
        if purpose in found:
            _, status, decided_at, source, basis = found[purpose]
            out.append({"purpose": purpose, "status": status, "decided_at": decided_at, "source": source,
                        "lawful_basis": basis, "recorded": True})
        else:
            out.append({"purpose": purpose, "status": spec.default, "decided_at": None, "source": "default",
                        "lawful_basis": spec.lawful_basis, "recorded": False})
    return out


def consent_history_of(store: Store, customer_id: str) -> list[dict[str, Any]]:
    cid = _current_id(store, customer_id)
    rows = store.fetchall(f"SELECT purpose, status, decided_at, source, lawful_basis, recorded_at, decision_id "
                          f"FROM ({_RESOLVED}) r WHERE customer_id = ? ORDER BY decided_at, recorded_at, decision_id",
                          (cid,))
    keys = ("purpose", "status", "decided_at", "source", "lawful_basis", "recorded_at", "decision_id")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def allowed(store: Store, customer_id: str, purpose: str, settings: PrivacySettings | None = None) -> bool:
    """May Accord use this customer's data for ``purpose``? Granted consent, or no decision and a purpose
    whose default is granted."""
    settings = settings or PrivacySettings()
    if purpose not in settings.purposes:
        raise ConsentError(f"purpose {purpose!r}: expected one of {', '.join(settings.purposes)}")
    row = store.fetchone("SELECT status FROM customer_consent WHERE customer_id = ? AND purpose = ?",
                         (_current_id(store, customer_id), purpose))
    if row is None:
        return settings.purposes[purpose].default == "granted"
    return row[0] == "granted"


def consent_filter_sql(purpose: str, customer_column: str = "customer_id",
                       settings: PrivacySettings | None = None) -> tuple[str, list[Any]]:
    """A WHERE condition keeping the rows whose customer (in ``customer_column``) allows ``purpose``, with
    its parameters: ``sql, params = consent_filter_sql('email_marketing', 'm.customer_id')``."""
    settings = settings or PrivacySettings()
    if purpose not in settings.purposes:
        raise ConsentError(f"purpose {purpose!r}: expected one of {', '.join(settings.purposes)}")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?", customer_column):
        raise ValueError(f"customer_column: expected a column name such as m.customer_id; got {customer_column!r}")
    if settings.purposes[purpose].default == "granted":
        return (f"NOT EXISTS (SELECT 1 FROM customer_consent cc_ WHERE cc_.customer_id = {customer_column} "
                "AND cc_.purpose = ? AND cc_.status <> 'granted')", [purpose])
    return (f"EXISTS (SELECT 1 FROM customer_consent cc_ WHERE cc_.customer_id = {customer_column} "
            "AND cc_.purpose = ? AND cc_.status = 'granted')", [purpose])
