"""Signing in to the dashboard: an API key in, a signed session cookie out.

The cookie holds the key's hash and a random nonce, signed (itsdangerous, HMAC-SHA256) with a secret:
``ACCORD_UI_SECRET`` when set, else one generated once and kept in the store (``ui_secrets``), so
every worker and every restart agrees. Each request looks the key up again, so a key removed from
the config signs its sessions out at the next restart. Forms and htmx calls that change something
carry a CSRF token derived from the nonce.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from accord.api.auth import ApiKey
from accord.clock import utcnow
from accord.store import Store

COOKIE = "accord_ui"
MAX_AGE_SECONDS = 8 * 3600
SECRET_ENV = "ACCORD_UI_SECRET"
_SALT = "accord.ui.session"


@dataclass(frozen=True)
class UiUser:
    """Who is signed in: the API key's name and role, and this session's CSRF token."""

    name: str
    role: str
    key_hash: str
    csrf: str


def load_secret(store: Store, environ: dict[str, str] | None = None) -> str:
    """The signing secret: $ACCORD_UI_SECRET, else the store's (made on first use)."""
    env = os.environ if environ is None else environ
    if env.get(SECRET_ENV):
        return env[SECRET_ENV]
    store.execute("INSERT INTO ui_secrets (name, value, created_at) VALUES ('session', ?, ?) "
                  "ON CONFLICT (name) DO NOTHING", (secrets.token_urlsafe(48), utcnow()))
    return str(store.scalar("SELECT value FROM ui_secrets WHERE name = 'session'"))


class Sessions:
    """Makes and reads session cookies with one secret."""

    def __init__(self, secret: str):
        self._secret = secret.encode()
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)

    def cookie_for(self, key_hash: str) -> str:
        return self._serializer.dumps({"h": key_hash, "n": secrets.token_urlsafe(16)})

    def user(self, cookie: str | None, keys: dict[str, ApiKey]) -> UiUser | None:
        """The user of a cookie, or None when it is missing, forged, expired or its key is gone."""
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=MAX_AGE_SECONDS)
        except BadSignature:  # also covers SignatureExpired
            return None
        if not isinstance(data, dict) or not isinstance(data.get("h"), str) or not isinstance(data.get("n"), str):
            return None
        key = keys.get(data["h"])
        if key is None:
            return None
        return UiUser(key.name, key.role, data["h"], self._csrf(data["n"]))

    def _csrf(self, nonce: str) -> str:
        return hmac.new(self._secret, f"csrf:{nonce}".encode(), hashlib.sha256).hexdigest()[:32]


def csrf_matches(user: UiUser, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(user.csrf, presented or "")
