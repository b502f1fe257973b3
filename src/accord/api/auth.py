"""API keys with roles, stored hashed; FastAPI dependencies that check them.

Roles (``ROLE_DESCRIPTIONS``): ``admin`` does everything; ``steward`` reads profiles and handles
review and privacy requests (consent, export, erasure); ``analyst`` reads profiles with PII masked;
``marketer`` works with segments and decisions; ``ingest`` sends events (collection only). Two
documented aliases keep older keys working: ``write`` is ``ingest``, and ``read`` reads profiles
unmasked. Keys come from accord.yaml (``api.keys``: name, role, key_hash) and from the environment
(ACCORD_<ROLE>_KEY, e.g. ACCORD_STEWARD_KEY); both are re-synced into the ``api_keys`` table at every
start, so a key removed from the config stops working.
API keys are long random tokens, so a plain SHA-256 is the right hash: a slow password
hash (scrypt) would protect nothing more and cost every request milliseconds.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPBasic, HTTPBearer
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from accord.api.errors import ApiError
from accord.errors import ConfigError
from accord.store import Store

Role = Literal["admin", "steward", "analyst", "marketer", "ingest", "read", "write"]
ROLES: tuple[Role, ...] = ("admin", "steward", "analyst", "marketer", "ingest", "read", "write")
ROLE_DESCRIPTIONS: dict[str, str] = {
    "admin": "everything",
    "steward": "profiles, the review queue and privacy requests (consent, export, erasure, audit)",
    "analyst": "profiles with PII masked",
    "marketer": "segments and decisions",
    "ingest": "event collection only",
    "read": "profiles, unmasked (the key role from before the five roles; kept)",
    "write": "alias of ingest (the key role from before the five roles; kept)",
}
ENV_KEYS: dict[str, Role] = {f"ACCORD_{r.upper()}_KEY": r for r in ROLES}
# Which key roles satisfy a role a route requires (admin satisfies every role).
SATISFIED_BY: dict[str, frozenset[str]] = {
    "read": frozenset({"read", "steward", "analyst"}),
    "write": frozenset({"write", "ingest"}),
    "ingest": frozenset({"write", "ingest"}),
    "steward": frozenset({"steward"}),
    "analyst": frozenset({"analyst"}),
    "marketer": frozenset({"marketer"}),
    "admin": frozenset(),
}
MASKED_ROLES = frozenset({"analyst"})
"""Roles that see profiles with PII masked (``accord.privacy.masking``)."""


def allowed_roles(*required: str) -> frozenset[str]:
    """Every key role that may call a route requiring one of ``required``."""
    out = {"admin"}
    for r in required:
        out |= SATISFIED_BY[r]
    return frozenset(out)


class ApiKeyConfig(BaseModel):
    """One entry of ``api.keys`` in accord.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    role: Role
    key_hash: str
    """'sha256:' and the hex SHA-256 of the key; make one with ``accord.api.auth.hash_key``."""

    @field_validator("key_hash")
    @classmethod
    def _sha256(cls, v: str) -> str:
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", v):
            raise ValueError("expected 'sha256:' followed by 64 lower-case hex digits "
                             "(python -c \"import hashlib,sys; print('sha256:' + hashlib.sha256(sys.argv[1].encode()).hexdigest())\" KEY)")
        return v


@dataclass(frozen=True)
class ApiKey:
    name: str
    role: Role


@functools.lru_cache(maxsize=256)
def hash_key(key: str) -> str:
    """'sha256:' and the hex digest (cached: every request hashes the key it presents)."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "acc_" + secrets.token_urlsafe(32)


def configured_keys(api_section: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None
                    ) -> list[tuple[str, ApiKey, str]]:
    """(key_hash, key, origin) for every key in ``api.keys`` and the ACCORD_*_KEY variables."""
    environ = os.environ if environ is None else environ
    out: list[tuple[str, ApiKey, str]] = []
    raw = (api_section or {}).get("keys") or []
    if not isinstance(raw, list):
        raise ConfigError("accord.yaml: api.keys: expected a list of {name, role, key_hash}")
    for i, entry in enumerate(raw):
        try:
            k = ApiKeyConfig.model_validate(entry)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"accord.yaml: api.keys[{i}]{'.' + loc if loc else ''}: "
                              f"{str(err['msg']).removeprefix('Value error, ')}") from None
        out.append((k.key_hash, ApiKey(k.name, k.role), "config"))
    for var, role in ENV_KEYS.items():
        if environ.get(var):
            out.append((hash_key(environ[var]), ApiKey(f"env:{var}", role), "env"))
    return out


def sync_keys(store: Store, keys: list[tuple[str, ApiKey, str]], now: Any) -> dict[str, ApiKey]:
    """Make the config and environment keys in ``api_keys`` exactly ``keys``; return every valid key."""
    with store.transaction():
        store.execute("DELETE FROM api_keys WHERE origin IN ('config', 'env')")
        for key_hash, key, origin in keys:
            store.execute(
                "INSERT INTO api_keys (key_hash, name, role, origin, created_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (key_hash) DO NOTHING",
                (key_hash, key.name, key.role, origin, now),
            )
    return load_keys(store)


def load_keys(store: Store) -> dict[str, ApiKey]:
    return {h: ApiKey(n, r) for h, n, r in store.fetchall("SELECT key_hash, name, role FROM api_keys")}


# --- dependencies ------------------------------------------------------------------------------

class _Declared:
    """A security scheme that only declares itself in the OpenAPI spec; ``require_role`` checks keys,
    so that every failure is a JSON error with a message saying what to send."""

    async def __call__(self, request: Request) -> None:
        return None


class _BearerScheme(_Declared, HTTPBearer):
    pass


class _BasicScheme(_Declared, HTTPBasic):
    pass


bearer_scheme = _BearerScheme(auto_error=False, scheme_name="bearer", description="Authorization: Bearer API_KEY")
basic_scheme = _BasicScheme(auto_error=False, scheme_name="writeKeyBasic",
                           description="Segment's convention for collection: the write key "
                                                          "as the user name, empty password")


def _presented_key(header: str | None, allow_basic: bool) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and value.strip():
        return value.strip()
    if scheme == "basic" and allow_basic:
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ApiError(401, "Authorization: Basic credentials are not valid base64 of 'KEY:'",
                           headers={"WWW-Authenticate": "Basic"}) from None
        return decoded.partition(":")[0] or None
    if scheme == "basic":
        raise ApiError(401, "this endpoint takes Authorization: Bearer API_KEY", headers={"WWW-Authenticate": "Bearer"})
    raise ApiError(401, "Authorization header: expected 'Bearer API_KEY'", headers={"WWW-Authenticate": "Bearer"})


def check_key(authorization: str | None, keys: Mapping[str, ApiKey], allowed: frozenset[str],
              allow_basic: bool = False) -> ApiKey:
    """The key an ``Authorization`` header presents, which must be in ``keys`` with a role in ``allowed``;
    ApiError 401 or 403 otherwise. The one check of every route (``require_role``, ``fast_routes``)."""
    key = _presented_key(authorization, allow_basic)
    if key is None:
        hint = " or HTTP Basic with the write key as user name" if allow_basic else ""
        raise ApiError(401, f"missing API key: send Authorization: Bearer API_KEY{hint}",
                       headers={"WWW-Authenticate": "Bearer"})
    found = keys.get(hash_key(key))
    if found is None:
        raise ApiError(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
    if found.role not in allowed:
        raise ApiError(403, f"key {found.name!r} has role {found.role!r}; this endpoint needs "
                            f"one of: {', '.join(sorted(allowed))}")
    return found


def require_role(*roles: Role, allow_basic: bool = False) -> Callable[..., ApiKey]:
    """A dependency: the caller's key, which must have one of ``roles`` or a role that satisfies one
    (``SATISFIED_BY``; admin always passes). The key is also put on ``request.state.api_key``."""
    allowed = allowed_roles(*roles)

    def dependency(request: Request) -> ApiKey:
        found = check_key(request.headers.get("authorization"), request.app.state.api_keys, allowed, allow_basic)
        request.state.api_key = found
        return found

    # The schemes are sub-dependencies only so that the spec declares them.
    if allow_basic:
        async def with_basic(request: Request, _bearer: Annotated[Any, Depends(bearer_scheme)],
                             _basic: Annotated[Any, Depends(basic_scheme)]) -> ApiKey:
            return dependency(request)
        with_basic.accord_roles = allowed  # type: ignore[attr-defined]  # read by the route x role test matrix
        return with_basic

    async def with_bearer(request: Request, _bearer: Annotated[Any, Depends(bearer_scheme)]) -> ApiKey:
        return dependency(request)
    with_bearer.accord_roles = allowed  # type: ignore[attr-defined]
    return with_bearer
