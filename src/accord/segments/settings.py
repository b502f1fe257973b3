"""The ``segments`` section of accord.yaml: segment definitions, webhooks and clustering.

```yaml
segments:
  definitions:
    - name: engaged_buyers
      description: Bought twice this quarter and browsing today
      condition: "orders_90d >= 2 and count(event = 'Product Viewed', within = '24h') >= 3"
      requires_consent: [email_marketing]   # members without granted consent are left out
      realtime: true                        # re-evaluated as each event arrives (default)
    - name: lapsed_vip
      condition:                            # or a tree: all / any / not of one-line conditions
        all: ["lifetime_value > 500", {not: "count(within = '90d') >= 1"}]
  files: [segments/*.yaml]                  # more definitions, YAML or JSON, relative to accord.yaml
  realtime: true                            # false: segments change only in batch runs
  webhooks:
    - name: crm
      url: https://hooks.example.com/accord
      segments: [engaged_buyers]            # default: every segment
      events: [enter, exit]
      purpose: email_marketing              # only customers who consent to it appear in payloads
      secret_env: ACCORD_WEBHOOK_SECRET     # HMAC-SHA256 key (or `secret:` inline)
      max_attempts: 8                       # then the delivery is dead-lettered (replayable)
      backoff_seconds: 1                    # 1, 2, 4, 8 ... seconds between attempts
  clustering:
    features: [rfm_recency, rfm_frequency, rfm_monetary, engagement_trend]
    k_min: 2
    k_max: 8
```
"""

from __future__ import annotations

import re
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from accord.errors import AccordError
from accord.segments.conditions import And, Condition, Not, Or
from accord.segments.dsl import SegmentSyntaxError, parse

NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
ConditionSpec = Union[str, dict[str, Any]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_name(value: str, what: str = "segment name") -> str:
    if not NAME.match(value) or len(value) > 64:
        raise ValueError(f"{what}: expected lower-case letters, digits and '_', starting with a letter "
                         f"(at most 64); got {value!r}")
    return value


def build_condition(spec: Any, where: str = "condition") -> Condition:
    """A condition from its one-line text or from an ``all`` / ``any`` / ``not`` tree of them."""
    if isinstance(spec, str):
        try:
            return parse(spec)
        except SegmentSyntaxError as exc:
            raise ValueError(f"{where}: {exc}") from None
    if isinstance(spec, dict) and len(spec) == 1:
        (key, value), = spec.items()
        if key == "not":
            return Not(build_condition(value, f"{where}.not"))
        if key in ("all", "any") and isinstance(value, list) and value:
            parts = tuple(build_condition(v, f"{where}.{key}[{i}]") for i, v in enumerate(value))
            if len(parts) == 1:
                return parts[0]
            return And(parts) if key == "all" else Or(parts)
    raise ValueError(f"{where}: expected the one-line text, or a mapping with one of all: [...], any: [...], "
                     f"not: ...; got {spec!r}")


class SegmentDefinition(_Strict):
    name: str
    condition: ConditionSpec
    description: str | None = None
    requires_consent: list[str] = Field(default_factory=list)
    """Consent purposes a member must have granted; customers without them are never members."""
    realtime: bool = True
    """Re-evaluate a customer as each of their events arrives (else only in batch runs)."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("requires_consent")
    @classmethod
    def _purposes(cls, v: list[str]) -> list[str]:
        for p in v:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p):
                raise ValueError(f"expected consent purposes as names such as email_marketing; got {p!r}")
        return v

    @model_validator(mode="after")
    def _parses(self) -> SegmentDefinition:
        try:
            build_condition(self.condition)
        except ValueError as exc:
            raise ValueError(f"segment {self.name!r}: {exc}") from None
        return self

    def parsed(self) -> Condition:
        return build_condition(self.condition)


class WebhookSettings(_Strict):
    name: str
    url: str
    segments: list[str] = Field(default_factory=list)
    """Segments whose enter/exit events go to this URL; empty: every segment."""
    events: list[Literal["enter", "exit"]] = Field(default_factory=lambda: ["enter", "exit"])
    purpose: str | None = None
    """The consent purpose (privacy.purposes) this destination uses the data for: a change of a customer
    who does not allow it (accord.privacy.consent.allowed) is never queued; the payload names it."""
    secret: str | None = None
    """The HMAC-SHA256 key, inline (prefer secret_env)."""
    secret_env: str | None = None
    """The environment variable holding the HMAC-SHA256 key."""
    max_attempts: int = Field(8, ge=1, le=100)
    backoff_seconds: float = Field(1.0, gt=0)
    """Wait before the 2nd attempt; doubles each time up to max_backoff_seconds."""
    max_backoff_seconds: float = Field(3600.0, gt=0)
    timeout_seconds: float = Field(5.0, gt=0, le=300)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "webhook name")

    @field_validator("purpose")
    @classmethod
    def _purpose(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[a-z][a-z0-9_]*", v):
            raise ValueError(f"expected a consent purpose name such as email_marketing; got {v!r}")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"https?://[^/\s]+", v):
            raise ValueError(f"expected an http:// or https:// URL; got {v!r}")
        return v

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookSettings:
        if (self.secret is None) == (self.secret_env is None):
            raise ValueError("give exactly one of 'secret_env' (an environment variable holding the signing key) "
                             "or 'secret'")
        return self

    def signing_key(self) -> bytes:
        import os

        if self.secret is not None:
            return self.secret.encode()
        value = os.environ.get(self.secret_env or "")
        if not value:
            raise AccordError(f"segments.webhooks[{self.name}].secret_env: the environment variable "
                              f"{self.secret_env} is not set; set it to the webhook's signing key")
        return value.encode()

    def wants(self, segment: str, kind: str) -> bool:
        return kind in self.events and (not self.segments or segment in self.segments)


class ClusteringSettings(_Strict):
    features: list[str] = Field(
        default_factory=lambda: ["rfm_recency", "rfm_frequency", "rfm_monetary", "engagement_trend"])
    """Traits to cluster on; recency, frequency and monetary are computed from events when missing."""
    k_min: int = Field(2, ge=2)
    k_max: int = Field(8, ge=2, le=50)
    seed: int = 0
    name_prefix: str = "cluster"
    silhouette_sample: int = Field(10_000, ge=100)
    """Customers sampled to score each k (silhouette is quadratic in the sample)."""
    min_customers: int = Field(20, ge=2)

    @field_validator("name_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        return check_name(v, "clustering.name_prefix")

    @model_validator(mode="after")
    def _range(self) -> ClusteringSettings:
        if self.k_min > self.k_max:
            raise ValueError("k_min must not be above k_max")
        return self


class SegmentsSettings(_Strict):
    definitions: list[SegmentDefinition] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)
    """Glob patterns (relative to accord.yaml) of YAML or JSON files holding more definitions."""
    realtime: bool = True
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    clustering: ClusteringSettings = Field(default_factory=ClusteringSettings)

    @field_validator("definitions")
    @classmethod
    def _unique(cls, v: list[SegmentDefinition]) -> list[SegmentDefinition]:
        seen: dict[str, int] = {}
        for i, d in enumerate(v):
            if d.name in seen:
                raise ValueError(f"segment name {d.name!r} is used twice (definitions[{seen[d.name]}] and "
                                 f"definitions[{i}])")
            seen[d.name] = i
        return v

    @field_validator("webhooks")
    @classmethod
    def _unique_hooks(cls, v: list[WebhookSettings]) -> list[WebhookSettings]:
        names = [w.name for w in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"webhook name {dup[0]!r} is used twice")
        return v
