"""Suppression: erased people stay erased when their rows arrive again.

Erasure stores a salted HMAC-SHA256 of each standardized identifier of the person (``email:ann@x.com``,
``phone:+14155550100``, ``record:crm:1001``, ``user_id:u1``, ...), never the identifier itself.
Ingestion and collection hash what arrives the same way and skip matching rows, counting them.
The salt comes from $ACCORD_PRIVACY_SALT (``privacy.suppression_salt_env``), or is generated once
and kept in the store.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from accord.clock import utcnow
from accord.standardize.emails import standardize_email
from accord.standardize.phones import standardize_phone
from accord.store.backend import Store

SALT_NAME = "suppression_salt"


def salt(store: Store, environ: Mapping[str, str] | None = None, env_var: str = "ACCORD_PRIVACY_SALT") -> bytes:
    """The suppression salt: from the environment, else the one generated for this store (made on first use)."""
    environ = os.environ if environ is None else environ
    if environ.get(env_var):
        return environ[env_var].encode()
    row = store.fetchone("SELECT value FROM privacy_secrets WHERE name = ?", (SALT_NAME,))
    if row is None:
        with store.transaction():
            store.execute("INSERT INTO privacy_secrets (name, value, created_at) VALUES (?, ?, ?) "
                          "ON CONFLICT (name) DO NOTHING", (SALT_NAME, secrets.token_hex(32), utcnow()))
        row = store.fetchone("SELECT value FROM privacy_secrets WHERE name = ?", (SALT_NAME,))
    assert row is not None
    return str(row[0]).encode()


def identifier_hash(key: bytes, kind: str, value: str) -> str:
    return hmac.new(key, f"{kind}:{value}".encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def add_entries(store: Store, key: bytes, identifiers: Iterable[tuple[str, str]], receipt_id: str) -> int:
    rows = sorted({(identifier_hash(key, k, v), k) for k, v in identifiers})
    now = utcnow()
    if rows:  # one statement: DuckDB runs executemany row by row
        store.execute("INSERT INTO suppression (hash, kind, receipt_id, created_at) VALUES "
                      + ", ".join("(?, ?, ?, ?)" for _ in rows) + " ON CONFLICT (hash) DO NOTHING",
                      [v for h, k in rows for v in (h, k, receipt_id, now)])
    return len(rows)


def has_entries(store: Store) -> bool:
    return store.fetchone("SELECT 1 FROM suppression LIMIT 1") is not None


class Suppressor:
    """Checks identifiers against the suppression list with the store's salt (loaded once)."""

    def __init__(self, store: Store, environ: Mapping[str, str] | None = None,
                 env_var: str = "ACCORD_PRIVACY_SALT", region: str = "US"):
        self.key = salt(store, environ, env_var)
        self.hashes = {r[0] for r in store.fetchall("SELECT hash FROM suppression")}
        self.region = region

    def __bool__(self) -> bool:
        return bool(self.hashes)

    def hit(self, kind: str, value: Any) -> bool:
        if value is None or value == "" or not self.hashes:
            return False
        text = str(value).strip()
        if kind == "email":
            text = standardize_email(text).email or text.lower()
        elif kind == "phone":
            text = standardize_phone(text, self.region).e164 or text
        return identifier_hash(self.key, kind, text) in self.hashes

    def person_row(self, source: str, record_key: str, emails: Any, phones: Any, external_ids: Any) -> bool:
        """Does a people-source row carry an identifier of an erased person?"""
        if self.hit("record", f"{source}:{record_key}"):
            return True
        if any(self.hit("email", e) for e in _list(emails)):
            return True
        if any(self.hit("phone", p) for p in _list(phones)):
            return True
        ext = _map(external_ids)
        return any(self.hit(str(name), v) or self.hit("user_id", v) for name, v in ext.items())

    def event(self, identity_type: str | None, identity_value: Any, anonymous_id: Any = None) -> bool:
        """Does an event name an erased person (by its identity or its anonymous id)?"""
        if identity_type and self.hit(identity_type, identity_value):
            return True
        if identity_type and identity_type not in ("email", "phone", "anonymous_id") and \
                self.hit("user_id", identity_value):
            return True
        return self.hit("anonymous_id", anonymous_id)

    def message(self, message: Mapping[str, Any]) -> bool:
        """A Segment message (track, identify, ...) from an erased person: userId, anonymousId,
        previousId or identifying traits (email, phone)."""
        if self.hit("user_id", message.get("userId")) or self.hit("anonymous_id", message.get("anonymousId")):
            return True
        if self.hit("user_id", message.get("previousId")) or self.hit("anonymous_id", message.get("previousId")):
            return True
        traits = message.get("traits") or (message.get("context") or {}).get("traits") or {}
        if isinstance(traits, Mapping):
            return self.hit("email", traits.get("email")) or self.hit("phone", traits.get("phone"))
        return False


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    return list(value) if isinstance(value, list | tuple) else [value]


def _map(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return dict(value) if isinstance(value, dict) else {}


def drop_suppressed_stage(store: Store, source: Any, region: str = "US") -> int:
    """Ingestion: delete the staged rows (temp table ``_stage``) of erased people; return how many.

    Costs nothing while nobody has been erased."""
    if not has_entries(store):
        return 0
    suppressor = Suppressor(store, region=region)
    if source.kind == "people":
        rows = store.fetchall("SELECT record_key, CAST(emails AS TEXT), CAST(phones AS TEXT), "
                              "CAST(external_ids AS TEXT) FROM _stage")
        hits = [r[0] for r in rows if suppressor.person_row(source.name, r[0], r[1], r[2], r[3])]
    else:
        rows = store.fetchall("SELECT record_key, identity_type, identity_value, anonymous_id FROM _stage")
        hits = [r[0] for r in rows if suppressor.hit("record", f"{source.name}:{r[0]}")
                or suppressor.event(r[1], r[2], r[3])]
    if hits:
        store.create_temp_table("_suppressed", pa.table({"record_key": pa.array(hits, pa.string())}))
        store.execute("DELETE FROM _stage WHERE record_key IN (SELECT record_key FROM _suppressed)")
        store.drop_temp_table("_suppressed")
    return len(hits)


def suppressed_rejects(store: Store, source_name: str, rejects: list[Any], region: str = "US") -> list[Any]:
    """Ingestion: quarantine candidates that belong to an erased person (by record key, or an email found in
    the raw text); their raw text must not be stored again."""
    if not rejects or not has_entries(store):
        return []
    import re

    suppressor = Suppressor(store, region=region)
    email = re.compile(r"[^\s,;\"'<>]+@[^\s,;\"'<>]+\.[A-Za-z]{2,}")
    out = []
    for r in rejects:
        if r.record_key and suppressor.hit("record", f"{source_name}:{r.record_key}"):
            out.append(r)
        elif any(suppressor.hit("email", e) for e in email.findall(r.raw_text or "")):
            out.append(r)
    return out
