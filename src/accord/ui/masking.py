"""Masking personal data for the roles that may not see it (the analyst), as the API masks it.

A thin adapter over ``accord.privacy.masking``, so the dashboard and the profile API mask the same
fields the same way (``privacy.masked_fields`` in accord.yaml).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from accord.privacy.masking import mask_profile
from accord.privacy.settings import DEFAULT_MASKED


class Masker:
    """Masks values by the field they come from; free text keeps no email address."""

    def __init__(self, masked_fields: Iterable[str] = DEFAULT_MASKED):
        self.masked_fields = tuple(masked_fields)

    def profile(self, payload: Any) -> Any:
        """A profile-shaped answer (golden attributes, multi values, identifiers, raw rows) masked."""
        return mask_profile(payload, self.masked_fields)

    def field(self, name: str, value: Any) -> Any:
        """One value of canonical field or golden attribute ``name``."""
        if value is None or value == "":
            return value
        return mask_profile({name: value}, self.masked_fields)[name]

    def text(self, value: str) -> str:
        """Free text (audit reasons, notes) with every email address in it masked."""
        return mask_profile(value, self.masked_fields)


def masker_for(privacy_settings: Any) -> Masker:
    return Masker(getattr(privacy_settings, "masked_fields", None) or DEFAULT_MASKED)
