"""Which identifiers a message carries, in the form the identifier index holds, and how much each counts.

The deterministic rules are identity's (``identity.identifiers`` priorities and per-customer limits,
``identity.blocked_values``, ``identity.shared_identifier_limit``), applied to one message at a time:

* ``email`` and ``phone`` come from the traits, standardized as records are (emails lower-cased and,
  for providers that ignore dots or tags, also in canonical form; phones E.164 for
  ``identity.default_region``); invalid and placeholder values name nobody;
* ``user_id`` counts as an external id (``external:user_id``, else ``external``);
* ``anonymous_id`` names a device or browser, not a person: it never decides between two customers
  and never creates one alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from accord.identity.settings import IdentitySettings
from accord.standardize import is_placeholder_text, standardize_email, standardize_phone

PERSON_TYPES = ("user_id", "email", "phone")
"""Identifiers that name a person: a new customer needs one of them."""
ANONYMOUS_PRIORITY = 10_000
_JUNK = re.compile(r"^(?:(.)\1*|0+|n/?a|none|null|unknown|undefined|-+|\?+|tbd|test)$", re.IGNORECASE)


@dataclass(frozen=True)
class Identifier:
    """One identifier of a message: ``id_type``, the ``value`` stored in the index, every form it may
    already be indexed under (``forms``), and its priority (lower decides first)."""

    id_type: str
    value: str
    forms: tuple[str, ...]
    priority: int

    @property
    def ref(self) -> str:
        return f"{self.id_type}:{self.value}"


@dataclass(frozen=True)
class StitchRules:
    """Identity's deterministic rules, read once from the config, for one message at a time."""

    priorities: dict[str, int]
    limits: dict[str, int | None]
    blocked: frozenset[str]
    shared_identifier_limit: int
    default_region: str

    @classmethod
    def from_settings(cls, settings: IdentitySettings, default_region: str = "US") -> StitchRules:
        return cls(priorities={t.name: t.priority for t in settings.identifiers},
                   limits={t.name: t.max_per_customer for t in settings.identifiers},
                   blocked=frozenset(v.strip().lower() for v in settings.blocked_values),
                   shared_identifier_limit=settings.shared_identifier_limit,
                   default_region=default_region)

    def _setting(self, table: dict[str, Any], id_type: str, default: Any) -> Any:
        names = {"email": ("email",), "phone": ("phone",),
                 "user_id": ("external:user_id", "external")}.get(id_type, (f"external:{id_type}", "external"))
        for name in names:
            if name in table:
                return table[name]
        return default

    def priority(self, id_type: str) -> int:
        if id_type == "anonymous_id":
            return ANONYMOUS_PRIORITY
        return int(self._setting(self.priorities, id_type, 1000))

    def limit(self, id_type: str) -> int | None:
        """How many values of this type one customer may hold (None: no limit)."""
        if id_type == "anonymous_id":
            return None
        return self._setting(self.limits, id_type, None)

    def usable(self, value: str) -> bool:
        """False for blocked values and placeholder junk ('n/a', '0000', 'test'), which link nobody."""
        text = value.strip()
        return bool(text) and text.lower() not in self.blocked and not _JUNK.match(text) \
            and not is_placeholder_text(text)

    def identifiers(self, user_id: str | None, anonymous_id: str | None,
                    traits: dict[str, Any] | None) -> list[Identifier]:
        """The usable identifiers of a message, highest priority first."""
        found: list[Identifier] = []
        if user_id is not None and self.usable(user_id):
            found.append(Identifier("user_id", user_id, (user_id,), self.priority("user_id")))
        if anonymous_id is not None and self.usable(anonymous_id):
            found.append(Identifier("anonymous_id", anonymous_id, (anonymous_id,), ANONYMOUS_PRIORITY))
        traits = traits if isinstance(traits, dict) else {}
        email = traits.get("email")
        if isinstance(email, str) and email.strip():
            plain = email.strip().lower()
            standard = standardize_email(email).email
            if standard is not None and self.usable(standard) and self.usable(plain):
                forms = tuple(dict.fromkeys((plain, standard)))
                found.append(Identifier("email", plain, forms, self.priority("email")))
        phone = traits.get("phone")
        if isinstance(phone, (str, int)) and not isinstance(phone, bool) and str(phone).strip():
            e164 = standardize_phone(str(phone), self.default_region).e164
            if e164 is not None and self.usable(e164):
                # Golden records keep '+' and digits as the source wrote them: look for those forms too.
                written = "".join(c for c in str(phone) if c.isdigit() or c == "+")
                forms = tuple(dict.fromkeys((e164, e164[1:], written)))
                found.append(Identifier("phone", e164, forms, self.priority("phone")))
        return sorted(found, key=lambda i: (i.priority, i.id_type))
