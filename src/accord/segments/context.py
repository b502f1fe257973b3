"""Everything a condition needs to be decided for one customer, read from the store.

Events are attributed to a customer exactly as the batch SQL does: through
``customer_identifiers``, by the event's (identity_type, identity_value) — emails compared in
lower case — or by its anonymous_id as id_type ``anonymous_id``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from accord.clock import utcnow
from accord.store.backend import Store
from accord.traits.lookups import customer_identifiers, customers_named, own_events


@dataclass(frozen=True)
class EventFact:
    event_id: str
    event: str | None
    type: str
    ts: datetime


@dataclass
class ProfileContext:
    customer_id: str
    now: datetime
    attributes: dict[str, str] = field(default_factory=dict)
    traits: dict[str, tuple[float | None, str | None]] = field(default_factory=dict)
    consent: dict[str, str] = field(default_factory=dict)
    accounts: list[tuple[str, str | None]] = field(default_factory=list)
    """(account_id, account name) of every account the customer belongs to."""
    events: list[EventFact] = field(default_factory=list)
    """The customer's events at or before ``now`` (and since ``events_since`` when set)."""
    events_since: datetime | None = None
    status: str | None = None
    """The customer's status (active, retired), None when the id is unknown."""
    segments: set[str] = field(default_factory=set)
    """The segments the customer is in now (read only when asked: ``with_segments``)."""


_PROFILE_SQL = (
    "SELECT 'status', status, NULL, CAST(NULL AS DOUBLE PRECISION) FROM customers WHERE customer_id = ? "
    "UNION ALL SELECT 'attribute', attribute, MIN(value), NULL FROM golden_values WHERE customer_id = ? "
    "GROUP BY attribute "
    "UNION ALL SELECT 'trait', name, value_text, value_num FROM customer_traits WHERE customer_id = ? "
    "UNION ALL SELECT 'consent', purpose, status, NULL FROM customer_consent WHERE customer_id = ? "
    "UNION ALL SELECT 'account', m.account_id, a.name, NULL FROM account_members m "
    "LEFT JOIN accounts a ON a.account_id = m.account_id WHERE m.customer_id = ? "
    "UNION ALL SELECT 'identifier', id_type, value, NULL FROM customer_identifiers WHERE customer_id = ?")
_SEGMENTS_SQL = " UNION ALL SELECT 'segment', segment, NULL, NULL FROM segment_membership " \
                "WHERE customer_id = ? AND exited_at IS NULL"


def load_profile_context(store: Store, customer_id: str, now: datetime | None = None, *,
                         events_within: timedelta | None = None, with_events: bool = True,
                         with_segments: bool = False) -> ProfileContext:
    """Read one customer's golden attributes, traits, consent, accounts and events (and, with
    ``with_segments``, the segments they are in now), in two queries.

    ``events_within`` limits the events read to that window before ``now`` (enough for conditions
    whose longest count window it is); None reads all of them; ``with_events=False`` reads none."""
    now = now or utcnow()
    ctx = ProfileContext(customer_id=customer_id, now=now)
    identifiers: dict[str, list[str]] = {}
    sql = _PROFILE_SQL + (_SEGMENTS_SQL if with_segments else "")
    for kind, key, text, number in store.fetchall(sql, (customer_id,) * (7 if with_segments else 6)):
        if kind == "attribute":
            ctx.attributes[key] = text
        elif kind == "trait":
            ctx.traits[key] = (None if number is None else float(number), text)
        elif kind == "consent":
            ctx.consent[key] = text
        elif kind == "account":
            ctx.accounts.append((key, text))
        elif kind == "identifier":
            identifiers.setdefault(key, []).append(text)
        elif kind == "segment":
            ctx.segments.add(key)
        else:
            ctx.status = key
    ctx.accounts.sort()
    if with_events:
        since = now - events_within if events_within is not None else None
        ctx.events_since = since
        ctx.events = events_of(store, identifiers, now, since)
    return ctx


def customer_events(store: Store, customer_id: str, now: datetime, since: datetime | None) -> list[EventFact]:
    """The customer's events with ``since <= ts <= now``, each once."""
    identifiers: dict[str, list[str]] = {}
    for id_type, value in customer_identifiers(store, customer_id):
        identifiers.setdefault(id_type, []).append(value)
    return events_of(store, identifiers, now, since)


def events_of(store: Store, identifiers: dict[str, list[str]], now: datetime, since: datetime | None
              ) -> list[EventFact]:
    """The events these identifiers (id_type -> values) name, with ``since <= ts <= now``, each once
    (found by index: ``accord.traits.lookups``)."""
    keys = {(id_type, value) for id_type, values in identifiers.items() for value in values}
    rows = own_events(store, keys, ["event_id", "event", "type", "ts"], now, since)
    return [EventFact(event_id, event, type_, ts) for event_id, event, type_, ts in rows]


def customers_for_identifiers(store: Store, identifiers: Iterable[tuple[str, str | None, str | None]]) -> list[str]:
    """The customers named by events' (identity_type, identity_value, anonymous_id), as attribution does."""
    keys: set[tuple[str, str]] = set()
    for id_type, value, anonymous_id in identifiers:
        if id_type and value:
            keys.add((id_type, value.lower() if id_type == "email" else value))
        if anonymous_id:
            keys.add(("anonymous_id", anonymous_id))
    return sorted(customers_named(store, keys))
