"""Traits: computed traits, RFM, lifetime value, churn risk and health, written to customer_traits."""

# Computed traits, RFM, engagement, health and accounts (traits/stage.py). Imported lazily: config.py
# imports traits.settings, and the stage pulls in the store and profiles.
_STAGE_EXPORTS = ("CustomerTraits", "TraitsReport", "compute_traits", "customer_trait_values", "traits_settings",
                  "update_customer_traits", "update_traits")


def __getattr__(name: str):  # noqa: ANN202 - module-level lazy export
    if name in _STAGE_EXPORTS:
        from accord.traits import stage

        return getattr(stage, name)
    raise AttributeError(f"module 'accord.traits' has no attribute {name!r}")
