"""The ``decisions:`` section of accord.yaml: offers, guardrails, policy, model, exploration,
experiments and monitoring, read once into typed objects."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PolicyName = Literal["rules", "model", "hybrid", "epsilon_greedy", "thompson"]
POLICIES: tuple[str, ...] = ("rules", "model", "hybrid", "epsilon_greedy", "thompson")
ContextField = Literal["channel", "placement", "device"]

# Attributes that must never become model features unless the project says otherwise.
DEFAULT_SENSITIVE = ["age", "date_of_birth", "gender", "sex", "ethnicity", "race", "religion", "disability",
                     "health", "sexual_orientation", "political_opinion", "union_membership", "nationality",
                     "marital_status", "pregnancy"]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FrequencyCap(_Strict):
    """The same offer at most ``max`` times in ``days`` days for one customer (from the decision log)."""

    max: int = Field(3, ge=1)
    days: float = Field(7, gt=0)


class OfferSpec(_Strict):
    """One offer. Higher ``priority`` ranks first under the rules policy; ``margin`` breaks ties."""

    id: str
    content: dict[str, Any] = Field(default_factory=dict)
    """Whatever the channel renders (title, image, url, code...): returned as given."""
    eligibility: str | None = None
    """A segment-language condition the customer must meet, e.g. ``orders_90d >= 2 and consent.email``."""
    priority: int = 0
    margin: float = 0.0
    inventory: str | None = None
    """The item in the stock table (offer_inventory); no stock left means the offer is not shown."""
    product_id: str | None = None
    """The product the offer sells; a customer who bought it within ``already_bought_days`` is not shown it."""
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    channels: list[str] = Field(default_factory=list)
    """Channels the offer may be shown in; empty means every channel."""
    placements: list[str] = Field(default_factory=list)
    """Placements the offer may be shown in; empty means every placement."""
    frequency_cap: FrequencyCap | None = None
    """Overrides ``guardrails.frequency_cap`` for this offer."""
    requires_consent: list[str] = Field(default_factory=list)
    """Purposes the customer must have granted, e.g. ``[email_marketing]`` for an email offer."""

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID.fullmatch(v):
            raise ValueError(f"expected letters, digits, '_', '.', ':' or '-' (at most 128); got {v!r}")
        return v

    @model_validator(mode="after")
    def _window(self) -> OfferSpec:
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        return self


class GuardrailSettings(_Strict):
    consent_purpose: str = "personalization"
    """Without this purpose (denied or withdrawn) a customer gets a decision that uses no profile data."""
    consent_required: bool = False
    """true: only customers who granted ``consent_purpose`` get personalized decisions (opt-in)."""
    frequency_cap: FrequencyCap = Field(default_factory=FrequencyCap)
    already_bought_days: int = Field(30, ge=0)
    """0 turns the already-bought guardrail off."""
    purchase_event: str = "Order Completed"
    product_property: str = "product_id"
    """Where purchase events name the product: ``properties.<this>`` or ``properties.products[].<this>``."""
    sensitive_attributes: list[str] = Field(default_factory=lambda: list(DEFAULT_SENSITIVE))
    """Traits that are never model features (naming one in ``model.features`` is an error)."""


class ModelSettings(_Strict):
    label: Literal["clicked", "converted"] = "clicked"
    features: list[str] = Field(default_factory=list)
    """Trait names to use; empty means every numeric trait that is not sensitive."""
    objective: Literal["propensity", "margin"] = "propensity"
    """Rank by predicted probability, or by probability times the offer's margin."""
    min_training_rows: int = Field(200, ge=10)
    min_offer_examples: int = Field(20, ge=1)
    """An offer seen fewer times in training is cold: the hybrid policy falls back to rules."""
    min_auc: float = Field(0.55, ge=0.5, le=1)
    """A model whose validation AUC is below this is unsure: the hybrid policy falls back to rules."""
    num_boost_round: int = Field(100, ge=1, le=5000)
    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(15, ge=2, le=1024)
    retrain_hours: float | None = Field(24, gt=0)
    """``accord run`` retrains when the active model is older than this (null: only on command)."""
    keep_versions: int = Field(20, ge=1)
    training_days: int = Field(90, ge=1)


class ExplorationSettings(_Strict):
    epsilon: float = Field(0.1, ge=0, le=1)
    """epsilon_greedy: the share of decisions ranked at random."""
    prior_alpha: float = Field(1.0, gt=0)
    prior_beta: float = Field(1.0, gt=0)
    context: list[ContextField] = Field(default_factory=lambda: ["channel", "placement"])
    """thompson: one Beta posterior per offer and this context."""
    simulations: int = Field(200, ge=10, le=100_000)
    """thompson: draws used to estimate each position's propensity."""
    refresh_seconds: float = Field(10, gt=0)
    """thompson: how often the API re-reads clicks and shows into its posteriors."""


class VariantSpec(_Strict):
    weight: float = Field(1.0, gt=0)
    policy: PolicyName | None = None
    """The policy this group gets; null: the default ``decisions.policy``."""


class ExperimentSpec(_Strict):
    name: str
    variants: dict[str, VariantSpec]
    holdout: float = Field(0.0, ge=0, lt=1)
    """Share of units held out: they get no offers (variant 'holdout')."""
    baseline: str | None = None
    """The group others are compared with; default the first variant."""
    metric: Literal["clicked", "converted", "revenue"] = "converted"
    placements: list[str] = Field(default_factory=list)
    """Placements the experiment runs in; empty means every one."""
    active: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", v):
            raise ValueError(f"expected lower-case letters, digits, '_' and '-'; got {v!r}")
        return v

    @field_validator("variants")
    @classmethod
    def _variants(cls, v: dict[str, VariantSpec]) -> dict[str, VariantSpec]:
        if not v:
            raise ValueError("give at least one variant, e.g. {control: {policy: rules}, treatment: {policy: hybrid}}")
        if "holdout" in v:
            raise ValueError("'holdout' is reserved: set the experiment's 'holdout' share instead")
        return v

    @model_validator(mode="after")
    def _baseline(self) -> ExperimentSpec:
        groups = [*self.variants, *(["holdout"] if self.holdout else [])]
        if self.baseline is not None and self.baseline not in groups:
            raise ValueError(f"baseline {self.baseline!r} is not a group; expected one of {', '.join(groups)}")
        return self

    def groups(self) -> dict[str, float]:
        """Group -> share of units, the holdout included."""
        total = sum(v.weight for v in self.variants.values())
        out = {name: (1 - self.holdout) * v.weight / total for name, v in self.variants.items()}
        if self.holdout:
            out["holdout"] = self.holdout
        return out

    def baseline_group(self) -> str:
        return self.baseline or next(iter(self.variants))


class MonitoringSettings(_Strict):
    group_attribute: str | None = None
    """A trait (e.g. ``gender``) to compare offer rates across (demographic parity difference)."""
    psi_threshold: float = Field(0.2, gt=0)
    bins: int = Field(10, ge=2, le=100)
    days: int = Field(7, ge=1)
    """The recent window compared with the training data."""


class DecisionsSettings(_Strict):
    """Personalization decisions (see docs/decisions.md)."""

    policy: PolicyName = "hybrid"
    max_offers: int = Field(3, ge=1, le=100)
    offers: list[OfferSpec] = Field(default_factory=list)
    guardrails: GuardrailSettings = Field(default_factory=GuardrailSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    exploration: ExplorationSettings = Field(default_factory=ExplorationSettings)
    experiments: list[ExperimentSpec] = Field(default_factory=list)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)

    @field_validator("offers")
    @classmethod
    def _unique_offers(cls, offers: list[OfferSpec]) -> list[OfferSpec]:
        seen: dict[str, int] = {}
        for i, o in enumerate(offers):
            if o.id in seen:
                raise ValueError(f"offer id {o.id!r} is used twice (offers[{seen[o.id]}] and offers[{i}])")
            seen[o.id] = i
        return offers

    @field_validator("experiments")
    @classmethod
    def _unique_experiments(cls, experiments: list[ExperimentSpec]) -> list[ExperimentSpec]:
        names = [e.name for e in experiments]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup:
            raise ValueError(f"experiment name {dup!r} is used twice")
        return experiments

    @model_validator(mode="after")
    def _features_not_sensitive(self) -> DecisionsSettings:
        sensitive = {s.lower() for s in self.guardrails.sensitive_attributes}
        bad = [f for f in self.model.features if f.lower() in sensitive]
        if bad:
            raise ValueError(f"model.features: {', '.join(bad)} is listed in guardrails.sensitive_attributes "
                             "and may not be a model feature; remove it from model.features")
        return self

    def experiment(self, name: str) -> ExperimentSpec | None:
        return next((e for e in self.experiments if e.name == name), None)
