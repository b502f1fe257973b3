"""PII masking for roles that may see profiles but not the person (the ``analyst`` role).

``mask_profile(payload)`` masks any profile-shaped answer (golden profile, records, events, history):
golden attributes and every value seen of the masked fields, every identifier (emails, phones, user
and anonymous ids, external ids), raw source rows, and anything that looks like an email address
wherever it appears. Masks keep just
enough to tell values apart in a sample (``a***@example.com``, ``+1*******42``, ``A***``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from accord.privacy.settings import DEFAULT_MASKED

_EMAIL = re.compile(r"[^\s@\"',;<>]+@([^\s@\"',;<>]+\.[A-Za-z]{2,})")
_PHONEISH = re.compile(r"^\+?[\d\s().-]{7,}$")
# Canonical fields -> the names they take in profile answers (golden attribute names, multi lists, raw keys).
_ALIASES = {
    "emails": {"emails", "email"}, "phones": {"phones", "phone"},
    "street": {"street", "address", "addresses"}, "postcode": {"postcode", "address", "addresses", "zip"},
    "city": {"city", "address", "addresses"}, "given_name": {"given_name", "first_name"},
    "family_name": {"family_name", "last_name"}, "full_name": {"full_name", "name"},
    "date_of_birth": {"date_of_birth", "dob", "birthday"},
}
MASK = "***"


def mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    return f"{local[:1]}{MASK}@{domain}"


def mask_phone(value: str) -> str:
    digits = [c for c in value if c.isdigit()]
    prefix = "+" if value.strip().startswith("+") else ""
    return prefix + "*" * max(len(digits) - 2, 1) + "".join(digits[-2:])


def mask_value(value: Any) -> Any:
    """One value masked: emails and phones keep a hint, other text its first letter."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list):
        return [mask_value(v) for v in value]
    if isinstance(value, dict):
        return {k: mask_value(v) for k, v in value.items()}
    text = str(value)
    if not text:
        return text
    if _EMAIL.fullmatch(text.strip()):
        return mask_email(text.strip())
    if _PHONEISH.match(text) and sum(c.isdigit() for c in text) >= 7:
        return mask_phone(text)
    return text[:1] + MASK


def _names(masked_fields: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for f in masked_fields:
        out |= _ALIASES.get(f, {f})
    return out


def _emails_in_text(value: Any) -> Any:
    if isinstance(value, str):
        return _EMAIL.sub(lambda m: f"{m.group(0)[:1]}{MASK}@{m.group(1)}", value)
    if isinstance(value, list):
        return [_emails_in_text(v) for v in value]
    if isinstance(value, dict):
        return {k: _emails_in_text(v) for k, v in value.items()}
    return value


def mask_profile(payload: Any, masked_fields: Iterable[str] = DEFAULT_MASKED) -> Any:
    """A copy of a profile API answer with PII masked (see the module docstring)."""
    names = _names(masked_fields)
    return _walk(payload, names)


def _walk(obj: Any, names: set[str]) -> Any:
    if isinstance(obj, list):
        return [_walk(v, names) for v in obj]
    if not isinstance(obj, dict):
        return _emails_in_text(obj)
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key in ("attributes", "multi") and isinstance(value, dict):
            out[key] = {a: (_mask_entries(v) if a in names else _walk(v, names)) for a, v in value.items()}
        elif key == "identifiers" and isinstance(value, dict):
            out[key] = {t: mask_value(v) for t, v in value.items()}  # online identifiers are personal data too
        elif key in ("raw", "traits", "identity_value", "anonymous_id", "user_id", "previous_id") or key in names:
            out[key] = mask_value(value)
        else:
            out[key] = _walk(value, names)
    return out


def _mask_entries(value: Any) -> Any:
    """Golden entries ({value, record, ...}) or lists of them: mask the values, keep the lineage."""
    if isinstance(value, list):
        return [_mask_entries(v) for v in value]
    if isinstance(value, dict) and "value" in value:
        return {**value, "value": mask_value(value["value"])}
    return mask_value(value)


def mask_for_role(request: Any, payload: Any) -> Any:
    """``payload`` masked when the request's API key has a masked role (analyst), else unchanged."""
    key = getattr(getattr(request, "state", None), "api_key", None)
    return payload if key is None else mask_for_key(key, request.app.state, payload)


def mask_for_key(key: Any, app_state: Any, payload: Any) -> Any:
    """``payload`` masked when ``key`` (an ``ApiKey``) has a masked role, with the masked fields of the
    app's privacy settings (``app_state.privacy_settings``), else unchanged."""
    from accord.api.auth import MASKED_ROLES

    if key is None or key.role not in MASKED_ROLES:
        return payload
    settings = getattr(app_state, "privacy_settings", None)
    return mask_profile(payload, settings.masked_fields if settings else DEFAULT_MASKED)
