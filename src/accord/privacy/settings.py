"""The ``privacy`` section of accord.yaml: purposes, consent mapping, retention, masking, suppression.

```yaml
privacy:
  purposes:                        # a list of names, or name -> {default, lawful_basis}
    email_marketing: {lawful_basis: consent}
    personalization: {lawful_basis: consent}
    analytics: {default: granted, lawful_basis: legitimate_interest}
    sale_sharing: {lawful_basis: consent}
  event_categories:                # Segment context.consent.categoryPreferences category -> purpose
    Advertising: sale_sharing
  retention:                       # table -> period (h, d, w or y); events by event name under event_types
    events: 730d
    quarantine: 90d
    event_types: {"Page Viewed": 90d}
  masked_fields: [given_name, family_name, full_name, emails, phones, street, postcode, date_of_birth]
  suppression_salt_env: ACCORD_PRIVACY_SALT
  encryption:                      # PII at rest (keys: $ACCORD_PII_KEYS, $ACCORD_PII_HASH_KEY)
    fields: [emails, phones, date_of_birth, street]
```
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Status = Literal["granted", "denied", "withdrawn"]
STATUSES: tuple[str, ...] = ("granted", "denied", "withdrawn")
DEFAULT_PURPOSES = ("email_marketing", "personalization", "analytics", "sale_sharing")
DEFAULT_MASKED = ("given_name", "family_name", "full_name", "emails", "phones", "street", "postcode",
                  "date_of_birth")
_PERIOD = re.compile(r"(\d+)\s*([hdwy])")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1), "y": timedelta(days=365)}


def parse_period(text: str) -> timedelta:
    """'90d' -> 90 days; units h (hours), d (days), w (weeks), y (365 days)."""
    m = _PERIOD.fullmatch(str(text).strip())
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"expected a period such as 90d, 12w, 2y or 36h; got {text!r}")
    return int(m.group(1)) * _UNITS[m.group(2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Purpose(_Strict):
    default: Literal["granted", "denied"] = "denied"
    """What a customer with no recorded decision gets: denied (opt-in, the default) or granted (opt-out)."""
    lawful_basis: str = "consent"
    """GDPR art. 6 basis recorded with decisions that do not state one (consent, contract,
    legitimate_interest, legal_obligation, vital_interest, public_task)."""


class RetentionSettings(_Strict):
    model_config = ConfigDict(extra="allow", frozen=True)
    event_types: dict[str, str] = Field(default_factory=dict)
    """Event name (events.event) -> period; overrides the period of the events table for those events."""

    @field_validator("event_types")
    @classmethod
    def _periods(cls, v: dict[str, str]) -> dict[str, str]:
        for name, period in v.items():
            try:
                parse_period(period)
            except ValueError as exc:
                raise ValueError(f"event_types.{name}: {exc}") from None
        return v

    @model_validator(mode="after")
    def _tables(self) -> RetentionSettings:
        from accord.privacy.registry import retention_tables

        known = retention_tables()
        for table, period in (self.model_extra or {}).items():
            if table not in known:
                raise ValueError(f"{table}: not a table with a retention period; expected one of "
                                 f"{', '.join(sorted(known))} or event_types")
            try:
                parse_period(period)
            except ValueError as exc:
                raise ValueError(f"{table}: {exc}") from None
        return self

    def periods(self) -> dict[str, timedelta]:
        return {t: parse_period(p) for t, p in (self.model_extra or {}).items()}

    def event_periods(self) -> dict[str, timedelta]:
        return {e: parse_period(p) for e, p in self.event_types.items()}


class EncryptionSettings(_Strict):
    """Person fields stored encrypted; matching uses keyed hashes of their standardized values (docs/privacy.md)."""

    fields: list[str]
    """Canonical person fields: given_name, family_name, full_name, emails, phones, street, city, postcode,
    date_of_birth, company. The three name fields go together."""

    @field_validator("fields")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        from accord.privacy.pii import ENCRYPTABLE, NAME_FIELDS

        if not v:
            raise ValueError("expected at least one field to encrypt")
        for name in v:
            if name not in ENCRYPTABLE:
                raise ValueError(f"{name!r} cannot be encrypted; expected one of {', '.join(ENCRYPTABLE)}")
        names = [n for n in NAME_FIELDS if n in v]
        if names and len(names) != len(NAME_FIELDS):
            missing = [n for n in NAME_FIELDS if n not in v]
            raise ValueError(f"{', '.join(names)} without {', '.join(missing)}: names are derived from each other "
                             "(a full name fills given and family names), so they are encrypted together")
        return list(dict.fromkeys(v))


class PrivacySettings(_Strict):
    """Consent purposes, retention periods, masking and suppression (see docs/privacy.md)."""

    purposes: dict[str, Purpose] = Field(default_factory=lambda: {p: Purpose() for p in DEFAULT_PURPOSES})
    event_categories: dict[str, str] = Field(default_factory=dict)
    """Segment consent category -> purpose; a category equal to a purpose name (any case) needs no entry."""
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    masked_fields: list[str] = Field(default_factory=lambda: list(DEFAULT_MASKED))
    """Profile fields an analyst key sees masked."""
    suppression_salt_env: str = "ACCORD_PRIVACY_SALT"
    """Environment variable holding the suppression salt; when unset, a salt is generated once and kept
    in the store (table privacy_secrets)."""
    encryption: EncryptionSettings | None = None
    """PII at rest: fields stored encrypted (None: stored as read)."""

    @field_validator("purposes", mode="before")
    @classmethod
    def _list_of_names(cls, v: Any) -> Any:
        if isinstance(v, list):
            return {name: {} for name in v}
        if isinstance(v, dict):
            return {k: ({} if val is None else val) for k, val in v.items()}
        return v

    @field_validator("purposes")
    @classmethod
    def _purpose_names(cls, v: dict[str, Purpose]) -> dict[str, Purpose]:
        if not v:
            raise ValueError("expected at least one purpose")
        for name in v:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise ValueError(f"purpose {name!r}: expected lower-case letters, digits and '_'")
        return v

    @model_validator(mode="after")
    def _categories_name_purposes(self) -> PrivacySettings:
        for category, purpose in self.event_categories.items():
            if purpose not in self.purposes:
                raise ValueError(f"event_categories.{category}: {purpose!r} is not a purpose; expected one of "
                                 f"{', '.join(self.purposes)}")
        return self

    def purpose_for_category(self, category: str) -> str | None:
        if category in self.event_categories:
            return self.event_categories[category]
        lowered = category.strip().lower().replace(" ", "_").replace("-", "_")
        return lowered if lowered in self.purposes else None


def privacy_settings(section: Any) -> PrivacySettings:
    """The typed section whether the config holds it typed already or as a plain mapping."""
    if isinstance(section, PrivacySettings):
        return section
    if section is None:
        return PrivacySettings()
    data = section.model_dump() if isinstance(section, BaseModel) else dict(section)
    return PrivacySettings.model_validate(data)
