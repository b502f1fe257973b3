"""Privacy in event collection: suppressed people's events are dropped before they are stored, and the
consent events carry (Segment ``context.consent``) is recorded after the commit.

``install_collection_hooks(hooks, settings)`` registers both on the API's ``CollectHooks``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from accord.privacy.consent import record_event_consent
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
    hooks.before_commit.append(CollectionSuppression(region, settings.suppression_salt_env))
    hooks.after_commit.append(CollectionConsent(settings))
