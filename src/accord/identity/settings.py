"""Identity settings: deterministic rules, the probabilistic model and clustering.

Read from ``cfg.identity`` once (its extra keys, until they are hoisted into
``IdentityConfig``) into typed objects with defaults that suit the standardized
``std_*`` columns.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from accord.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IdentifierType(_Strict):
    """An identifier that links records deterministically when two records share it."""

    name: str
    """'email', 'phone', or 'external:<id type>' for a key of external_ids."""
    priority: int = 100
    """Lower links first."""
    max_per_customer: int | None = 5
    """A cluster holding more distinct values than this is refused (a merge that would exceed it is rejected)."""


class ComparisonSpec(_Strict):
    """One comparison of the Fellegi-Sunter model, compiled to a Splink comparison."""

    column: str
    kind: Literal["name", "exact", "email", "dob", "levenshtein", "damerau_levenshtein",
                  "jaro_winkler", "array"] = "exact"
    thresholds: list[float] = Field(default_factory=list)
    term_frequency: bool = False
    group_column: str | None = None
    """kind 'name': a column (e.g. std_name_group) whose equality is a level between exact and fuzzy."""
    list_column: str | None = None
    """kind 'email': a list column whose overlap is a level below exact."""
    user_column: str | None = None
    """kind 'email': the local part; equality is a level below overlap."""
    date_format: str = "%Y-%m-%d"
    """kind 'dob': strptime format of the column."""


BlockingRule = list[str] | str
"""Column names that must be equal (``["std_dob"]``), or SQL over l. and r. columns."""


class ModelSettings(_Strict):
    comparisons: list[ComparisonSpec]
    blocking_rules: list[BlockingRule]
    em_blocking_rules: list[BlockingRule]
    prior_rules: list[BlockingRule]
    """Rules with very few false positives, used to estimate the prior match probability."""
    prior_recall: float = 0.7
    u_max_pairs: float = 2e6
    seed: int = 42

    def fingerprint(self) -> str:
        """Changes when the model's shape changes, so a saved model no longer fits."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_model_settings() -> ModelSettings:
    """Comparisons over the standardized columns, trained without labels."""
    return ModelSettings(
        comparisons=[
            ComparisonSpec(column="std_given_name", kind="name", thresholds=[0.92, 0.88],
                           term_frequency=True, group_column="std_name_group"),
            ComparisonSpec(column="std_family_name", kind="name", thresholds=[0.92, 0.88], term_frequency=True),
            # No user-name level: generated and real addresses alike are built from the person's
            # name (franz.muller@web.de, franz.muller@firm.com), so it counts the name twice.
            ComparisonSpec(column="std_email", kind="email", list_column="std_emails"),
            ComparisonSpec(column="std_phone", kind="array", list_column="std_phones"),
            ComparisonSpec(column="std_dob", kind="damerau_levenshtein", thresholds=[1]),
            ComparisonSpec(column="std_postcode", kind="exact", term_frequency=True),
            ComparisonSpec(column="std_street", kind="jaro_winkler", thresholds=[0.9]),
            ComparisonSpec(column="std_city", kind="exact", term_frequency=True),
        ],
        blocking_rules=[
            ["std_email"],
            ["std_phone"],
            ["std_dob"],
            ["std_family_name", "std_given_initial"],
            ["std_name_group", "std_postcode"],
            ["std_postcode", "std_house_number"],
            ["std_email_user"],
        ],
        em_blocking_rules=[["std_dob"], ["std_postcode"], ["std_family_name"]],
        prior_rules=[["std_email"], ["std_given_name", "std_family_name", "std_dob"]],
    )


class IdentitySettings(_Strict):
    """Everything the identity stage needs beyond ``IdentityConfig``'s thresholds."""

    identifiers: list[IdentifierType] = Field(default_factory=lambda: [
        IdentifierType(name="email", priority=10, max_per_customer=5),
        IdentifierType(name="phone", priority=20, max_per_customer=5),
        IdentifierType(name="external", priority=30, max_per_customer=None),
    ])
    """'external' stands for every key of external_ids; 'external:<type>' names one."""
    blocked_values: list[str] = Field(default_factory=list)
    """Identifier values never used to link (compared after standardization, case-insensitive)."""
    shared_identifier_limit: int = 3
    """An identifier shared by more distinct-looking people than this is excluded from linking."""
    bridge_threshold: float = 0.99
    """A model edge below this that alone joins two groups of records is cut."""
    bridge_min_side: int = 2
    """Only bridges with at least this many records on each side are cut."""
    cannot_link: list[Literal["dob", "external_id", "given_name"]] = Field(
        default_factory=lambda: ["dob", "external_id", "given_name"])
    """Values unique to a person: records that differ on one never share a cluster (see identity/constraints.py).
    'dob': both valid and different beyond a day/month swap or one typo; 'external_id': same type, same
    source, different value (a record's own key excepted); 'given_name': different given names (not an
    initial, nickname or typo of each other, nor given and family name exchanged)."""
    score_through_rule_groups: bool = True
    """Full runs score candidate pairs between rule groups (records the rules join, folded into one
    composite each) and then the real pairs behind them, instead of every blocked pair of records:
    far fewer pairs when the rules join many records (see identity/grouped.py)."""
    engine: Literal["duckdb", "spark"] = "duckdb"
    model: ModelSettings = Field(default_factory=default_model_settings)


def identity_settings(identity_config: object) -> IdentitySettings:
    """The settings of ``cfg.identity`` (an IdentitySettings already), or parsed from a mapping."""
    if isinstance(identity_config, IdentitySettings):
        return identity_config
    extra = dict(getattr(identity_config, "model_extra", None) or identity_config or {})  # type: ignore[call-overload]
    try:
        return IdentitySettings.model_validate(extra)
    except ValidationError as exc:
        messages = [f"identity.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(messages)) from None
