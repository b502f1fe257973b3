"""Profiles: stable customer ids, the identity audit, human decisions and golden records with lineage."""

from accord.profiles.audit import history
from accord.profiles.decisions import (
    apply_constraints,
    constraints,
    labelled_pairs,
    record_decision,
    unmerge,
)
from accord.profiles.export import export_identities, export_profiles
from accord.profiles.golden import build_golden
from accord.profiles.ids import IdReport, assign_customer_ids, resolve_customer_id
from accord.profiles.lookup import profile
from accord.profiles.settings import ProfilesSettings, profiles_settings
from accord.profiles.stage import ProfilesReport, build_profiles

__all__ = [
    "IdReport", "ProfilesReport", "ProfilesSettings", "apply_constraints", "assign_customer_ids", "build_golden",
    "build_profiles", "constraints", "export_identities", "export_profiles", "history", "labelled_pairs",
    "profile", "profiles_settings", "record_decision", "resolve_customer_id", "unmerge",
]
