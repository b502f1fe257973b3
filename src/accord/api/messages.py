"""Segment-spec messages turned into ``events`` and ``identity_signals`` rows.

This is the collection hot path, so it works on the dicts orjson gives and checks by hand
what the pydantic models in ``models.py`` declare for the OpenAPI spec; errors name the
field (``batch[3].userId``) and what to do.
"""

from __future__ import annotations

import gzip
import math
import re
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from accord.api.errors import ApiError

MESSAGE_TYPES = ("identify", "track", "page", "screen", "group", "alias")
SIGNAL_TYPES = ("identify", "alias", "group")
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
SOURCE = "api"
RUN_ID = "api"

EVENT_COLUMNS = (
    "event_id", "source", "type", "event", "ts", "received_at", "identity_type", "identity_value",
    "anonymous_id", "revenue", "properties", "run_id",
)
SIGNAL_COLUMNS = (
    "event_id", "type", "user_id", "anonymous_id", "previous_id", "group_id", "traits", "ts", "received_at",
)
# RFC 3339 date-time, but an offset may be left out (then it is UTC).
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?\Z", re.ASCII)
# Stored in their own columns; everything else in the message is kept in ``properties``.
_COLUMN_FIELDS = frozenset({"type", "userId", "anonymousId", "messageId", "event", "writeKey"})


@dataclass
class Collected:
    """The rows one request adds, in ``EVENT_COLUMNS`` and ``SIGNAL_COLUMNS`` order."""

    events: list[tuple[Any, ...]] = field(default_factory=list)
    signals: list[tuple[Any, ...]] = field(default_factory=list)


def read_json(body: bytes, content_encoding: str | None, limit: int) -> Any:
    """Decode a (possibly gzip-compressed) JSON body of at most ``limit`` bytes once inflated."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        inflater = zlib.decompressobj(wbits=31 if encoding != "deflate" else 15)
        try:
            body = inflater.decompress(body, limit + 1)
        except (zlib.error, gzip.BadGzipFile) as exc:
            raise ApiError(400, f"body is not valid {encoding}: {exc}") from None
    elif encoding != "identity":
        raise ApiError(415, f"Content-Encoding {encoding!r} is not supported; send gzip or no encoding",
                       code="unsupported_media_type")
    if len(body) > limit:
        raise ApiError(413, f"body is larger than {limit // 1024} KB")
    if b"\\u0000" in body or b"\x00" in body:
        raise ApiError(422, "NUL characters (\\u0000) are not supported in events")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"body is not valid JSON: {exc}") from None


def collect_one(message: Any, type_: str, received_at: datetime) -> Collected:
    """One message posted to /v1/{type}: the endpoint decides the type."""
    out = Collected()
    if not isinstance(message, dict):
        raise ApiError(422, "body: expected a JSON object (a Segment message)")
    given = message.get("type")
    if given is not None and given != type_:
        raise ApiError(422, f"type: this endpoint takes {type_} messages; got {given!r} "
                            "(send it to its own endpoint or to /v1/batch)")
    _add(out, message, type_, _sent_at(message.get("sentAt"), "sentAt"), received_at, "")
    return out


def collect_batch(body: Any, received_at: datetime) -> Collected:
    """A /v1/batch body: ``{"batch": [...], "sentAt": ..., "context": ...}``."""
    if not isinstance(body, dict):
        raise ApiError(422, "body: expected a JSON object with a 'batch' list")
    items = body.get("batch")
    if not isinstance(items, list):
        raise ApiError(422, "batch: expected a list of Segment messages")
    batch_sent_at = _sent_at(body.get("sentAt"), "sentAt")
    shared_context = body.get("context")
    if shared_context is not None and not isinstance(shared_context, dict):
        raise ApiError(422, "context: expected an object")
    out = Collected()
    seen: set[str] = set()
    for i, message in enumerate(items):
        where = f"batch[{i}]."
        if not isinstance(message, dict):
            raise ApiError(422, f"batch[{i}]: expected a JSON object (a Segment message)")
        if len(orjson.dumps(message)) > MAX_EVENT_BYTES:
            raise ApiError(413, f"batch[{i}]: event is larger than {MAX_EVENT_BYTES // 1024} KB")
        type_ = message.get("type")
        if type_ not in MESSAGE_TYPES:
            raise ApiError(422, f"{where}type: expected one of {', '.join(MESSAGE_TYPES)}; got {type_!r}")
        if shared_context and "context" not in message:
            message = {**message, "context": shared_context}
        sent_at = _sent_at(message.get("sentAt"), where + "sentAt") if "sentAt" in message else batch_sent_at
        n_events, n_signals = len(out.events), len(out.signals)
        event_id = _add(out, message, type_, sent_at, received_at, where)
        if event_id in seen:  # a message repeated inside one batch is stored once: the first one
            del out.events[n_events:]
            del out.signals[n_signals:]
        seen.add(event_id)
    return out


def _add(out: Collected, m: dict[str, Any], type_: str, sent_at: datetime | None, received_at: datetime,
         where: str) -> str:
    user_id = _identifier(m.get("userId"), where + "userId")
    anonymous_id = _identifier(m.get("anonymousId"), where + "anonymousId")
    if user_id is None and anonymous_id is None:
        at = f"{where[:-1]}: " if where else ""
        raise ApiError(422, f"{at}every message needs a userId or an anonymousId; this one has neither")
    message_id = m.get("messageId")
    if message_id is None or message_id == "":
        message_id = str(uuid.uuid4())
    elif not isinstance(message_id, str):
        raise ApiError(422, f"{where}messageId: expected a string; got {message_id!r}")

    name: Any = None
    if type_ == "track":
        name = m.get("event")
        if not isinstance(name, str) or not name:
            raise ApiError(422, f"{where}event: a track call needs the event name as a non-empty string")
    elif type_ in ("page", "screen"):
        name = m.get("name")
        if name is not None and not isinstance(name, str):
            raise ApiError(422, f"{where}name: expected a string; got {name!r}")
    previous_id = group_id = None
    if type_ == "alias":
        previous_id = _identifier(m.get("previousId"), where + "previousId")
        if previous_id is None:
            raise ApiError(422, f"{where}previousId: an alias call needs the previous id")
    elif type_ == "group":
        group_id = _identifier(m.get("groupId"), where + "groupId")
        if group_id is None:
            raise ApiError(422, f"{where}groupId: a group call needs the group id")
    for key in ("properties", "traits", "context", "integrations"):
        value = m.get(key)
        if value is not None and not isinstance(value, dict):
            raise ApiError(422, f"{where}{key}: expected an object; got {type(value).__name__}")

    ts = received_at
    if m.get("timestamp") is not None:
        ts = _timestamp(m["timestamp"], where + "timestamp")
        if sent_at is not None:  # the client's clock is off by (sentAt - receivedAt)
            try:
                ts = ts + (received_at - sent_at)
            except OverflowError:
                raise ApiError(422, f"{where}timestamp: out of range after clock-skew correction "
                                    "(check timestamp and sentAt)") from None

    revenue = None
    if type_ == "track":
        props = m.get("properties") or {}
        value = props.get("revenue")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            revenue = float(value)

    kept = {k: v for k, v in m.items() if k not in _COLUMN_FIELDS}
    if user_id is not None:
        identity_type, identity_value = "user_id", user_id
    else:
        identity_type, identity_value = "anonymous_id", anonymous_id
    out.events.append((message_id, SOURCE, type_, name, ts, received_at, identity_type, identity_value,
                       anonymous_id, revenue, orjson.dumps(kept).decode(), RUN_ID))
    if type_ in SIGNAL_TYPES:
        traits = m.get("traits")
        if traits is None and isinstance(m.get("context"), dict):
            traits = m["context"].get("traits")  # RudderStack's SDKs send identify traits in context.traits
        out.signals.append((message_id, type_, user_id, anonymous_id, previous_id, group_id,
                            orjson.dumps(traits).decode() if traits is not None else None, ts, received_at))
    return message_id


def _identifier(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            raise ApiError(422, f"{where}: must not be empty; leave it out or send null")
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ApiError(422, f"{where}: expected a string; got {value!r}")


def _sent_at(value: Any, where: str) -> datetime | None:
    return None if value is None else _timestamp(value, where)


def _timestamp(value: Any, where: str) -> datetime:
    """ISO 8601 to naive UTC (the store keeps UTC); a time without an offset is taken as UTC."""
    if not isinstance(value, str):
        raise ApiError(422, f"{where}: expected an ISO 8601 string such as 2024-05-01T12:00:00Z; got {value!r}")
    parsed = _parse_timestamp(value)
    if isinstance(parsed, str):
        raise ApiError(422, f"{where}: {parsed}")
    return parsed


@lru_cache(maxsize=65_536)
def _parse_timestamp(value: str) -> datetime | str:
    """The naive UTC time of ``value``, or what is wrong with it. Cached: SDKs send a batch's messages
    with the same sentAt and often the same timestamp."""
    try:
        if not _DATE_TIME.match(value):
            raise ValueError(value)
        parsed = datetime.fromisoformat(value.upper())
    except ValueError:
        return f"expected an ISO 8601 timestamp such as 2024-05-01T12:00:00Z; got {value!r}"
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            return f"out of range: {value!r}"
    return parsed


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


__all__ = [
    "EVENT_COLUMNS", "MAX_BATCH_BYTES", "MAX_EVENT_BYTES", "MESSAGE_TYPES", "SIGNAL_COLUMNS", "Collected",
    "collect_batch", "collect_one", "now_utc", "read_json",
]
