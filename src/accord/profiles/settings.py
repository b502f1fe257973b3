"""The ``profiles`` section of accord.yaml: survivorship rules per attribute.

```yaml
profiles:
  survivorship:            # per attribute: rules tried in order, each breaking the previous one's ties
    given_name: [source_priority, most_recent]
    address: [most_recent, most_complete]
  default_rules: [source_priority, most_recent, most_frequent, most_complete]
  evidence_limit: 20       # match edges kept as evidence per audit event
  enforce_constraints: true
```
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from accord.errors import ConfigError

Rule = Literal["source_priority", "most_recent", "most_frequent", "most_complete", "non_empty"]
RULES: tuple[str, ...] = ("source_priority", "most_recent", "most_frequent", "most_complete", "non_empty")

# Single-valued golden attributes. 'address' survives as a unit: street, city, region, postcode and
# country all come from the record whose address wins, so a profile never mixes two addresses.
SINGLE_ATTRIBUTES: tuple[str, ...] = (
    "given_name", "family_name", "full_name", "date_of_birth", "company", "address", "email", "phone",
)
ADDRESS_PARTS: tuple[str, ...] = ("street", "city", "region", "postcode", "country")
MULTI_ATTRIBUTES: tuple[str, ...] = ("emails", "phones", "addresses")

DEFAULT_SURVIVORSHIP: dict[str, list[str]] = {
    # Names: the most trusted system first; a name most records agree on next.
    "given_name": ["source_priority", "most_frequent", "most_recent", "most_complete"],
    "family_name": ["source_priority", "most_frequent", "most_recent", "most_complete"],
    "full_name": ["source_priority", "most_complete", "most_recent"],
    # A date of birth does not change: the value most records agree on, then the trusted source.
    "date_of_birth": ["most_frequent", "source_priority", "most_recent"],
    # Employer and address change over time: the latest wins.
    "company": ["most_recent", "source_priority"],
    "address": ["most_recent", "source_priority", "most_complete"],
    # Primary email and phone: the one used most, then the latest.
    "email": ["most_frequent", "most_recent", "source_priority"],
    "phone": ["most_frequent", "most_recent", "source_priority"],
}


class ProfilesSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    survivorship: dict[str, list[Rule]] = Field(default_factory=dict)
    """Rules per single-valued attribute; attributes not named use the defaults above."""
    default_rules: list[Rule] = Field(
        default_factory=lambda: ["source_priority", "most_recent", "most_frequent", "most_complete"])
    """Rules for an attribute with no built-in default (kept for attributes added later)."""
    evidence_limit: int = Field(default=20, ge=0)
    """How many match edges each audit event keeps as evidence (strongest first)."""
    enforce_constraints: bool = True
    """Apply human decisions (cannot-link, must-link) to the clustering before ids are assigned."""

    @field_validator("survivorship")
    @classmethod
    def _known_attributes(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, rules in v.items():
            if name not in SINGLE_ATTRIBUTES:
                raise ValueError(f"unknown attribute {name!r}; expected one of {', '.join(SINGLE_ATTRIBUTES)}")
            if not rules:
                raise ValueError(f"{name}: give at least one rule")
        return v

    def rules_for(self, attribute: str) -> list[str]:
        if attribute in self.survivorship:
            return list(self.survivorship[attribute])
        return list(DEFAULT_SURVIVORSHIP.get(attribute, self.default_rules))


def profiles_settings(section: Any = None) -> ProfilesSettings:
    """Parse ``cfg.profiles`` (a permissive section, a dict or None) into typed settings."""
    if section is None:
        data: dict[str, Any] = {}
    elif isinstance(section, ProfilesSettings):
        return section
    elif isinstance(section, dict):
        data = section
    else:
        data = dict(getattr(section, "model_extra", None) or {})
    try:
        return ProfilesSettings.model_validate(data)
    except ValidationError as exc:
        messages = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in ("profiles", *err["loc"]))
            msg = str(err.get("msg", "")).removeprefix("Value error, ")
            messages.append(f"accord.yaml: {loc}: {msg}")
        raise ConfigError("\n".join(messages)) from None
