"""The API contract: pydantic models that make the OpenAPI spec.

Collection bodies are declared here (Segment's spec) but parsed in ``messages.py`` without
pydantic, for speed; the two are kept in step by the schemathesis test.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_ID_ANY_OF = {"anyOf": [{"required": ["userId"]}, {"required": ["anonymousId"]}]}
_NonEmpty = Annotated[str, Field(min_length=1)]
_Id = _NonEmpty | int  # numbers are accepted and stored as text, as Segment does


class Success(BaseModel):
    success: Literal[True] = True


class Error(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. unauthorized, invalid_request")
    message: str = Field(description="What went wrong, naming the field (batch[3].userId) and what to do")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    store: Literal["duckdb", "postgresql"]
    version: str


class _Message(BaseModel):
    """Fields every Segment message may carry; unknown fields are accepted and kept."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_ID_ANY_OF)
    userId: _Id | None = Field(None, description="Your id for the person; userId or anonymousId is required")
    anonymousId: _Id | None = Field(None, description="A device or cookie id; userId or anonymousId is required")
    messageId: str | None = Field(None, description="Unique per message; a retried message with the same "
                                                    "messageId is stored once. Generated when missing.")
    timestamp: datetime | None = Field(None, description="When it happened on the client (ISO 8601); corrected "
                                                         "for clock skew with sentAt")
    sentAt: datetime | None = Field(None, description="When the client sent it, by the client's clock")
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None


class IdentifyMessage(_Message):
    type: Literal["identify"] = "identify"
    traits: dict[str, Any] | None = None


class TrackMessage(_Message):
    type: Literal["track"] = "track"
    event: _NonEmpty = Field(description="The event name, e.g. 'Order Completed'")
    properties: dict[str, Any] | None = Field(None, description="properties.revenue (a number) is stored as revenue")


class PageMessage(_Message):
    type: Literal["page"] = "page"
    name: str | None = None
    properties: dict[str, Any] | None = None


class ScreenMessage(_Message):
    type: Literal["screen"] = "screen"
    name: str | None = None
    properties: dict[str, Any] | None = None


class GroupMessage(_Message):
    type: Literal["group"] = "group"
    groupId: _Id
    traits: dict[str, Any] | None = None


class AliasMessage(_Message):
    type: Literal["alias"] = "alias"
    previousId: _Id


BatchItem = Annotated[
    IdentifyMessage | TrackMessage | PageMessage | ScreenMessage | GroupMessage | AliasMessage,
    Field(discriminator="type"),
]


class Batch(BaseModel):
    model_config = ConfigDict(extra="allow")
    batch: list[BatchItem] = Field(description="Up to 500 KB in all and 32 KB per message; each needs 'type'")
    sentAt: datetime | None = Field(None, description="Applies to every message without its own sentAt")
    context: dict[str, Any] | None = Field(None, description="Applies to every message without its own context")


MESSAGE_MODELS: dict[str, type[BaseModel]] = {
    "identify": IdentifyMessage,
    "track": TrackMessage,
    "page": PageMessage,
    "screen": ScreenMessage,
    "group": GroupMessage,
    "alias": AliasMessage,
}


# --- profiles ---------------------------------------------------------------------------------

class GoldenValue(BaseModel):
    value: str
    record: str = Field(description="'source:record_key' of the record the value came from")
    source: str
    record_key: str
    observed_at: datetime | None
    rule: str = Field(description="The survivorship rule that decided (only_value, tie_break, source_priority, ...)")


class MultiValue(BaseModel):
    value: str
    first_seen: datetime | None
    last_seen: datetime | None
    sources: list[str]
    records: int = Field(description="How many records hold the value")
    record: str = Field(description="'source:record_key' of the latest record holding it")
    rule: str


class ProfileRecordRef(BaseModel):
    record: str
    source: str
    record_key: str
    first_seen_at: datetime | None
    updated_at: datetime | None


class Profile(BaseModel):
    customer_id: str = Field(description="The customer's current id")
    requested_id: str
    redirected: bool = Field(description="True when the identifier named a retired id that merged into customer_id")
    redirected_from: str | None = Field(description="The retired customer id that was asked for, if any")
    status: str | None
    merged_into: str | None
    created_at: datetime | None
    merged_ids: list[str] = Field(description="Retired ids that now resolve to this customer")
    attributes: dict[str, GoldenValue] = Field(description="Golden values with lineage, by attribute")
    multi: dict[str, list[MultiValue]] = Field(description="Every email, phone and address seen")
    identifiers: dict[str, list[str]]
    records: list[ProfileRecordRef]
    sources: list[str]
    first_seen: datetime | None
    last_seen: datetime | None


class SourceRecord(BaseModel):
    record: str
    source: str
    record_key: str
    raw: dict[str, Any] = Field(description="The row as the source had it")
    external_ids: dict[str, Any]
    emails: list[Any]
    phones: list[Any]
    first_seen_at: datetime | None
    updated_at: datetime | None
    source_file: str | None
    source_line: int | None


class ProfileRecords(BaseModel):
    customer_id: str
    records: list[SourceRecord]


class ProfileEvent(BaseModel):
    event_id: str
    source: str
    type: str
    event: str | None
    ts: datetime
    received_at: datetime
    identity_type: str | None
    identity_value: str | None
    anonymous_id: str | None
    revenue: float | None
    properties: Any = None


class ProfileEvents(BaseModel):
    customer_id: str
    events: list[ProfileEvent] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page")


class AuditEntry(BaseModel):
    event_id: int
    occurred_at: datetime
    actor: str
    kind: str
    customer_id: str | None
    other_customer_id: str | None
    records: list[str]
    reason: str | None
    evidence: list[dict[str, Any]]


class ProfileHistory(BaseModel):
    customer_id: str
    events: list[AuditEntry] = Field(description="Oldest first")


class TraitValue(BaseModel):
    value: Any = Field(description="A number, boolean-as-number (1/0), text, or a list/object")
    computed_at: datetime


class ProfileTraits(BaseModel):
    customer_id: str
    traits: dict[str, TraitValue] = Field(description="Computed traits by name (customer_traits)")


class SegmentMembership(BaseModel):
    segment: str
    entered_at: datetime
    exited_at: datetime | None = Field(description="null while the customer is a member")
    entered_by: str = Field(description="batch, realtime or cluster")
    exited_by: str | None


class ProfileSegments(BaseModel):
    customer_id: str
    segments: list[SegmentMembership] = Field(
        description="Current memberships, newest first; with ?history=true also the stints that ended")
