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
