"""Identity resolution: deterministic rules, a Splink model, constrained clustering.

The stage (``resolve``, ``explain``) is imported on first use, so ``accord.config`` can read the
settings models without importing the stage, which reads the config.
"""

from typing import Any

from accord.identity.settings import ComparisonSpec, IdentifierType, IdentitySettings, ModelSettings, identity_settings

_LAZY = {
    "ClusterOptions": "accord.identity.clustering", "ClusterResult": "accord.identity.clustering",
    "cluster_edges": "accord.identity.clustering", "IdentityModel": "accord.identity.model",
    "RuleResult": "accord.identity.rules", "apply_rules": "accord.identity.rules",
    "IdentityReport": "accord.identity.stage", "explain": "accord.identity.stage", "resolve": "accord.identity.stage",
    "Assignment": "accord.identity.incremental", "resolve_changes": "accord.identity.incremental",
    "resolve_records": "accord.identity.incremental",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)


__all__ = [
    "Assignment", "ClusterOptions", "ClusterResult", "ComparisonSpec", "IdentifierType", "IdentityModel", "IdentityReport",
    "IdentitySettings", "ModelSettings", "RuleResult", "apply_rules", "cluster_edges", "explain",
    "identity_settings", "resolve", "resolve_changes", "resolve_records",
]
