"""Personalization decisions: offers, guardrails, propensity models, bandits, explanations,
experiments, off-policy evaluation and model monitoring (see docs/decisions.md).

The engine is ``accord.decisions.engine.DecisionEngine``; settings are
``accord.decisions.settings.DecisionsSettings`` (the ``decisions:`` section of accord.yaml)."""
