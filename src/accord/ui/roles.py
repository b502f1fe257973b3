"""Who may do what in the dashboard, by the role of the API key they signed in with.

The API's roles and rules (``accord.api.auth``) are reused as they are: a role that may read profiles
through the API may open customer pages here, the roles the API masks see masked data here, and so on.
Unknown roles see nothing: a role added to the API later is shut out until it is named here.
"""

from __future__ import annotations

from accord.api.auth import MASKED_ROLES, allowed_roles

VIEW_ROLES = frozenset({"admin", "read", "steward", "analyst", "marketer"})
"""May sign in and see the overview, segments and data quality (aggregates, no personal data)."""

PROFILE_ROLES = allowed_roles("read")
"""May open customers, the review queue and the audit (as they may read profiles through the API)."""

REVIEW_ROLES = frozenset({"admin", "steward"})
"""May decide review pairs (same / different)."""

SEGMENT_ROLES = allowed_roles("marketer")
"""May save segments."""


def may_view(role: str) -> bool:
    return role in VIEW_ROLES


def may_read_profiles(role: str) -> bool:
    return role in PROFILE_ROLES


def may_review(role: str) -> bool:
    return role in REVIEW_ROLES


def may_save_segments(role: str) -> bool:
    return role in SEGMENT_ROLES


def sees_pii(role: str) -> bool:
    """Raw personal data only for roles that read profiles unmasked; everyone else sees it masked."""
    return role in PROFILE_ROLES and role not in MASKED_ROLES
