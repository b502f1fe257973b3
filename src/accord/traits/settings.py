"""The ``traits`` section of accord.yaml: declared computed traits, RFM, engagement, health, accounts.

```yaml
traits:
  as_of: null                  # windows end here; null: the moment the stage runs
  defaults: true               # the built-in traits (orders_total, revenue_365d, last_seen, ...)
  purchase: {events: null}     # which events are purchases; null: every event carrying a revenue
  activity: {exclude_events: [sent, bounce, delivered]}   # what the business does to a customer
  computed:
    orders_90d: {count: {event: Order Completed}, within: 90d}
    revenue_365d: {sum: revenue, purchase: true, within: 365d}
    favourite_category: {most_frequent: properties.category, event: Product Viewed}
    categories_viewed: {unique: properties.category, event: Product Viewed, limit: 20}
    last_order_status: {last: status, event: Order Completed}
    days_since_last_visit: {days_since: {type: page}}
  rfm: {within: null}
  engagement: {weeks: 12}
  health:
    weights: {engagement: 0.3, purchases: 0.3, support: 0.15, churn: 0.25}
    support: {sources: [support], sentiment: sentiment, satisfaction: satisfaction, within: 365d}
  accounts: {enabled: true, active_days: 90}
  realtime: {enabled: true, batch_size: 200, max_pending: 100000, min_interval_seconds: 0.05}
```

See docs/traits.md for every key.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# A trait name is a plain identifier: it becomes a segment-language name and a column in exports.
TRAIT_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
# Property paths: dot-separated keys of the event's stored row, each a plain key (no quotes, no brackets).
PROPERTY_PATH = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]{0,99}(\.[A-Za-z_$][A-Za-z0-9_$-]{0,99}){0,7}")
_DURATION = re.compile(r"(\d+)\s*(m|h|d|w)")
_UNIT = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
EVENT_COLUMNS = ("event", "type", "source", "revenue", "identity_type", "anonymous_id")
"""Names that mean the event's own column rather than a property of its stored row."""

AGGREGATIONS = ("count", "sum", "avg", "min", "max", "first", "last", "most_frequent", "unique",
                "first_seen", "last_seen", "days_since")
FILTER_AGGREGATIONS = ("count", "first_seen", "last_seen", "days_since")
"""Aggregations whose value is a filter (which events) rather than a property."""


def parse_duration(value: Any) -> timedelta:
    """'90d', '12w', '24h', '30m' -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str) or not _DURATION.fullmatch(value.strip()):
        raise ValueError(f"expected a duration such as 30m, 24h, 90d or 12w; got {value!r}")
    number, unit = _DURATION.fullmatch(value.strip()).groups()  # type: ignore[union-attr]
    if int(number) == 0:
        raise ValueError(f"a duration must be longer than zero; got {value!r}")
    return int(number) * _UNIT[unit]


def check_property(path: str) -> str:
    if not isinstance(path, str) or not PROPERTY_PATH.fullmatch(path):
        raise ValueError(f"expected a property name or dotted path (letters, digits, _, $, -), "
                         f"such as revenue or properties.category; got {path!r}")
    return path


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventFilter(_Strict):
    """Which events count. Every key given must hold (AND); a list means any of its values."""

    event: list[str] | None = None
    type: list[str] | None = None
    where: dict[str, str | float | bool] | None = None
    """Property equals value, e.g. ``{status: completed}``; numbers and booleans compare as their text."""
    purchase: bool | None = None
    """true: only purchases (see ``purchase``); false: only non-purchases."""
    activity: bool | None = None
    """true: only the customer's own actions (see ``activity``)."""

    @field_validator("event", "type", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("event", "type")
    @classmethod
    def _non_empty(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError("give at least one value, or leave the key out")
        return v

    @field_validator("where")
    @classmethod
    def _properties(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        for key in v or {}:
            check_property(key)
        return v

    def merged(self, other: EventFilter) -> EventFilter:
        """Both filters at once (the aggregation's own filter and the trait's top-level keys)."""
        data = self.model_dump(exclude_none=True)
        for key, value in other.model_dump(exclude_none=True).items():
            if key in data and data[key] != value:
                if key in ("event", "type"):
                    value = [x for x in data[key] if x in value]
                    if not value:
                        raise ValueError(f"'{key}' is given twice with no value in common")
                elif key == "where":
                    value = {**data[key], **value}
                else:
                    raise ValueError(f"'{key}' is given twice with different values")
            data[key] = value
        return EventFilter.model_validate(data)


class TraitSpec(_Strict):
    """One computed trait: exactly one aggregation, then optional filter keys and a window."""

    count: EventFilter | None = None
    sum: str | None = None
    avg: str | None = None
    min: str | None = None
    max: str | None = None
    first: str | None = None
    last: str | None = None
    most_frequent: str | None = None
    unique: str | None = None
    first_seen: EventFilter | None = None
    last_seen: EventFilter | None = None
    days_since: EventFilter | None = None
    event: list[str] | None = None
    type: list[str] | None = None
    where: dict[str, str | float | bool] | None = None
    purchase: bool | None = None
    activity: bool | None = None
    within: timedelta | None = None
    """Only events in this window before ``as_of`` (e.g. 90d); none: all events."""
    limit: int = Field(50, ge=1, le=1000)
    """unique only: at most this many values are kept (in sorted order)."""

    @field_validator("count", "first_seen", "last_seen", "days_since", mode="before")
    @classmethod
    def _filter_or_all(cls, v: Any) -> Any:
        # ``count: all`` / ``count: {}`` count every event.
        if v is None or v == "all" or v is True:
            return {} if v is not None else None
        return v

    @field_validator("event", "type", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("sum", "avg", "min", "max", "first", "last", "most_frequent", "unique")
    @classmethod
    def _property(cls, v: str | None) -> str | None:
        return None if v is None else check_property(v)

    @field_validator("within", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        return None if v is None else parse_duration(v)

    @model_validator(mode="after")
    def _one_aggregation(self) -> TraitSpec:
        given = [a for a in AGGREGATIONS if getattr(self, a) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(AGGREGATIONS)}; got "
                             f"{', '.join(given) if given else 'none'}")
        if self.limit != 50 and given[0] != "unique":
            raise ValueError("'limit' applies to 'unique' only")
        self.filter  # noqa: B018 - merging raises when the two filters contradict each other
        return self

    @property
    def aggregation(self) -> str:
        return next(a for a in AGGREGATIONS if getattr(self, a) is not None)

    @property
    def argument(self) -> str | None:
        """The property an aggregation reads (None for the filter-valued ones)."""
        value = getattr(self, self.aggregation)
        return value if isinstance(value, str) else None

    @property
    def filter(self) -> EventFilter:
        own = getattr(self, self.aggregation)
        top = EventFilter(event=self.event, type=self.type, where=self.where, purchase=self.purchase,
                          activity=self.activity)
        return own.merged(top) if isinstance(own, EventFilter) else top


class PurchaseSettings(_Strict):
    events: list[str] | None = None
    """Event names that are purchases; null: every event that carries a revenue value."""

    @field_validator("events", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class ActivitySettings(_Strict):
    exclude_events: list[str] = Field(default_factory=lambda: [
        "sent", "delivered", "bounce", "Email Sent", "Email Delivered", "Email Bounced"])
    """Events the business does to a customer (a mail sent), not actions of the customer."""


class RfmSettings(_Strict):
    enabled: bool = True
    within: timedelta | None = None
    """Only purchases in this window count towards frequency and monetary; none: all purchases."""

    @field_validator("within", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        return None if v is None else parse_duration(v)


class EngagementSettings(_Strict):
    enabled: bool = True
    weeks: int = Field(12, ge=2, le=260)
    """The trend is the least-squares slope of activity per week over this many weeks up to as_of."""


class HealthWeights(_Strict):
    engagement: float = Field(0.3, ge=0)
    purchases: float = Field(0.3, ge=0)
    support: float = Field(0.15, ge=0)
    churn: float = Field(0.25, ge=0)

    @model_validator(mode="after")
    def _some_weight(self) -> HealthWeights:
        if self.engagement + self.purchases + self.support + self.churn <= 0:
            raise ValueError("at least one weight must be above zero")
        return self


class SupportSettings(_Strict):
    sources: list[str] = Field(default_factory=lambda: ["support"])
    """People sources whose records are support tickets (one record per ticket)."""
    events: list[str] = Field(default_factory=list)
    """Event names that are support tickets (their stored row holds the same fields)."""
    sentiment: str | None = "sentiment"
    """Field holding sentiment from -1 (angry) to 1 (happy)."""
    satisfaction: str | None = "satisfaction"
    """Field holding a satisfaction rating from 1 to 5."""
    within: timedelta = timedelta(days=365)

    @field_validator("sentiment", "satisfaction")
    @classmethod
    def _property(cls, v: str | None) -> str | None:
        return None if v is None else check_property(v)

    @field_validator("within", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        return parse_duration(v)

    @field_validator("sources", "events", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class HealthSettings(_Strict):
    enabled: bool = True
    weights: HealthWeights = Field(default_factory=HealthWeights)
    support: SupportSettings = Field(default_factory=SupportSettings)


class AccountSettings(_Strict):
    enabled: bool = True
    """Build accounts from the company field of people records, and account traits for every account."""
    active_days: int = Field(90, ge=1)
    """A member with any activity in this many days before as_of is an active contact."""


class RealtimeSettings(_Strict):
    """The trait refresher of ``accord serve``: customers whose events were collected get their traits
    recomputed in the background (``accord.traits.refresher``)."""

    enabled: bool = True
    batch_size: int = Field(200, ge=1, le=5000)
    """Customers recomputed in one transaction."""
    max_pending: int = Field(100_000, ge=1)
    """Customers (identifiers) waiting at most; beyond, more are dropped, counted and left to the batch run."""
    min_interval_seconds: float = Field(0.05, ge=0, le=60)
    """At least this long between two refresh rounds, so that a burst of events coalesces into one."""


class TraitsSettings(_Strict):
    """The ``traits:`` section (see docs/traits.md)."""

    as_of: datetime | None = None
    defaults: bool = True
    purchase: PurchaseSettings = Field(default_factory=PurchaseSettings)
    activity: ActivitySettings = Field(default_factory=ActivitySettings)
    computed: dict[str, TraitSpec] = Field(default_factory=dict)
    rfm: RfmSettings = Field(default_factory=RfmSettings)
    engagement: EngagementSettings = Field(default_factory=EngagementSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    accounts: AccountSettings = Field(default_factory=AccountSettings)
    realtime: RealtimeSettings = Field(default_factory=RealtimeSettings)

    @field_validator("as_of")
    @classmethod
    def _naive_utc(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is not None:
            from datetime import timezone

            v = v.astimezone(timezone.utc).replace(tzinfo=None)
        return v

    @field_validator("computed")
    @classmethod
    def _names(cls, v: dict[str, TraitSpec]) -> dict[str, TraitSpec]:
        from accord.traits.catalog import RESERVED_NAMES

        for name in v:
            if not TRAIT_NAME.fullmatch(name):
                raise ValueError(f"trait name {name!r}: expected lower-case letters, digits and '_', "
                                 "starting with a letter")
            if name in RESERVED_NAMES:
                raise ValueError(f"trait name {name!r} is computed by Accord itself (RFM, engagement, health "
                                 "or a model); choose another name")
        return v
