"""Privacy in event collection: suppressed people's events are dropped before they are stored, person
fields are encrypted (``privacy.encryption``) before they are stored, and the consent events carry
(Segment ``context.consent``) is recorded after the commit.

``install_collection_hooks(hooks, settings)`` registers them on the API's ``CollectHooks``.
"""

from __future__ import annotations

import json
import logging
import weakref
from dataclasses import replace
from typing import Any

from accord.api.messages import EVENT_COLUMNS, SIGNAL_COLUMNS
from accord.privacy.consent import record_event_consent
from accord.privacy.encryption import Encryption, MessageEncryptor, check_keys
from accord.privacy.pii import env_codec
from accord.privacy.settings import PrivacySettings
from accord.privacy.suppression import Suppressor
from accord.store.backend import Store

log = logging.getLogger("accord.privacy")


class CollectionSuppression:
    """before_commit: drop the events and identity signals of erased people (by userId, anonymousId,
    previousId, or the email/phone of identify traits). The hash list is reloaded when it grows."""

    def __init__(self, region: str = "US", salt_env: str = "ACCORD_PRIVACY_SALT"):
        self.region, self.salt_env = region, salt_env
        self._suppressor: Suppressor | None = None
        self._size = -1

    def _current(self, store: Store) -> Suppressor | None:
        size = int(store.scalar("SELECT count(*) FROM suppression") or 0)
        if size == 0:
            return None
        if size != self._size or self._suppressor is None:
            self._suppressor, self._size = Suppressor(store, env_var=self.salt_env, region=self.region), size
        return self._suppressor

    def __call__(self, store: Store, collected: Any) -> Any:
        suppressor = self._current(store)
        if suppressor is None:
            return collected
        dropped: set[str] = set()
        for row in collected.events:
            event_id, identity_type, identity_value, anonymous_id, props = row[0], row[6], row[7], row[8], row[10]
            if suppressor.event(identity_type, identity_value, anonymous_id) or _traits_hit(suppressor, props):
                dropped.add(event_id)
        for row in collected.signals:
            event_id, user_id, anonymous_id, previous_id, traits = row[0], row[2], row[3], row[4], row[6]
            if suppressor.message({"userId": user_id, "anonymousId": anonymous_id, "previousId": previous_id,
                                   "traits": _loads(traits)}):
                dropped.add(event_id)
        if not dropped:
            return collected
        return replace(collected, events=[r for r in collected.events if r[0] not in dropped],
                       signals=[r for r in collected.signals if r[0] not in dropped])


def _loads(text: Any) -> Any:
    if not text:
        return {}
    try:
        return json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return {}


def _traits_hit(suppressor: Suppressor, props: Any) -> bool:
    if not props or ('"email"' not in props and '"phone"' not in props):
        return False
    message = _loads(props)
    traits = message.get("traits") or (message.get("context") or {}).get("traits") or {}
    return isinstance(traits, dict) and (suppressor.hit("email", traits.get("email"))
                                         or suppressor.hit("phone", traits.get("phone")))


_EVENT_TYPE, _PROPERTIES = EVENT_COLUMNS.index("type"), EVENT_COLUMNS.index("properties")
_SIGNAL_TYPE, _TRAITS = SIGNAL_COLUMNS.index("type"), SIGNAL_COLUMNS.index("traits")
_ENCRYPTORS: weakref.WeakSet[MessageEncryptor] = weakref.WeakSet()


def clear_token_caches() -> None:
    """Forget the tokens collection keeps for repeated values (erasure: no person's value outlives it)."""
    for encryptor in _ENCRYPTORS:
        encryptor.cache_clear()


class CollectionEncryption:
    """before_commit (after suppression, which hashes the plain values): the configured person fields of
    every message as tokens in ``events.properties`` and ``identity_signals.traits``. Stitching reads the
    signals' traits back through the keys (``accord.events.stitching``), so it matches on keyed hashes.
    The store's key checks are verified on the first group (a wrong hash key stops collection there)."""

    def __init__(self, enc: Encryption, region: str = "US"):
        self.encryptor = MessageEncryptor(enc, region)
        self._checked = False
        _ENCRYPTORS.add(self.encryptor)

    def __call__(self, store: Store, collected: Any) -> Any:
        if not self._checked:
            check_keys(store, self.encryptor.enc.codec)
            self._checked = True
        enc = self.encryptor
        events = []
        for row in collected.events:
            props = row[_PROPERTIES]
            new = enc.message_json(props, row[_EVENT_TYPE])
            events.append(row if new is props else (*row[:_PROPERTIES], new, *row[_PROPERTIES + 1:]))
        signals = []
        for row in collected.signals:
            traits = row[_TRAITS]
            new = enc.traits_json(traits, row[_SIGNAL_TYPE])
            signals.append(row if new is traits else (*row[:_TRAITS], new, *row[_TRAITS + 1:]))
        return replace(collected, events=events, signals=signals)


class CollectionConsent:
    """after_commit: record ``context.consent.categoryPreferences`` of the committed events."""

    def __init__(self, settings: PrivacySettings):
        self.settings = settings

    def __call__(self, store: Store, committed: Any) -> None:
        for row in committed.events:
            props = row[10]
            if not props or '"consent"' not in props:
                continue
            message = _loads(props)
            context = message.get("context") if isinstance(message, dict) else None
            if not isinstance(context, dict) or "consent" not in context:
                continue
            who = {"userId": row[7] if row[6] == "user_id" else None, "anonymousId": row[8],
                   "messageId": row[0], "context": context}
            record_event_consent(store, who, self.settings, received_at=row[4])


def install_collection_hooks(hooks: Any, settings: PrivacySettings, region: str = "US") -> None:
    """Suppression, then encryption (when ``privacy.encryption`` is set: a missing key stops the app from
    starting rather than storing plain values), before the commit; consent after it."""
    hooks.before_commit.append(CollectionSuppression(region, settings.suppression_salt_env))
    if settings.encryption is not None:
        hooks.before_commit.append(CollectionEncryption(Encryption(settings.encryption, env_codec()), region))
    hooks.after_commit.append(CollectionConsent(settings))
