"""Which traits exist: the built-in computed traits, the ones Accord derives itself, and their value types."""

from __future__ import annotations

from typing import Literal

from accord.traits.settings import TraitSpec, TraitsSettings

ValueType = Literal["number", "text", "list", "timestamp"]

DEFAULT_TRAITS: dict[str, dict[str, object]] = {
    "events_total": {"count": "all"},
    "events_30d": {"count": "all", "within": "30d"},
    "orders_total": {"count": {"purchase": True}},
    "orders_90d": {"count": {"purchase": True}, "within": "90d"},
    "revenue_total": {"sum": "revenue", "purchase": True},
    "revenue_365d": {"sum": "revenue", "purchase": True, "within": "365d"},
    "average_order_value": {"avg": "revenue", "purchase": True},
    "first_seen": {"first_seen": "all"},
    "last_seen": {"last_seen": "all"},
    "days_since_last_event": {"days_since": "all"},
    "days_since_last_order": {"days_since": {"purchase": True}},
}
"""Computed when ``traits.defaults`` is true (the default); a declared trait of the same name wins."""

RFM_TRAITS: dict[str, ValueType] = {
    "rfm_recency": "number", "rfm_frequency": "number", "rfm_monetary": "number",
    "rfm_score": "text", "rfm_segment": "text",
}
ENGAGEMENT_TRAITS: dict[str, ValueType] = {"engagement_trend": "number", "engagement_active_weeks": "number"}
HEALTH_TRAITS: dict[str, ValueType] = {"health_score": "number", "support_sentiment": "number"}
MODEL_TRAITS = ("churn_risk", "churn_reasons", "p_alive")
"""Written by the model stage (traits/model_traits.py); read here, never written."""

RESERVED_NAMES = frozenset(RFM_TRAITS) | frozenset(ENGAGEMENT_TRAITS) | frozenset(HEALTH_TRAITS) | frozenset(
    MODEL_TRAITS)

VALUE_TYPES: dict[str, ValueType] = {
    "count": "number", "sum": "number", "avg": "number", "min": "number", "max": "number",
    "days_since": "number", "first": "text", "last": "text", "most_frequent": "text", "unique": "list",
    "first_seen": "timestamp", "last_seen": "timestamp",
}


def computed_specs(settings: TraitsSettings) -> dict[str, TraitSpec]:
    """Every computed trait to build: the defaults (unless turned off), then the declared ones."""
    specs: dict[str, TraitSpec] = {}
    if settings.defaults:
        specs.update({name: TraitSpec.model_validate(spec) for name, spec in DEFAULT_TRAITS.items()})
    specs.update(settings.computed)
    return specs


def owned_traits(settings: TraitsSettings) -> dict[str, ValueType]:
    """Name -> value type of every trait this stage writes with these settings."""
    out: dict[str, ValueType] = {name: VALUE_TYPES[spec.aggregation] for name, spec in
                                 computed_specs(settings).items()}
    if settings.rfm.enabled:
        out.update(RFM_TRAITS)
    if settings.engagement.enabled:
        out.update(ENGAGEMENT_TRAITS)
    if settings.health.enabled:
        out.update(HEALTH_TRAITS)
    return out
