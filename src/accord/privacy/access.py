"""The access audit: who read or changed whose data, when, and for what stated purpose.

Rows name the customer by id only, never by an identifier: a request for ``email:ann@x.com`` is logged
under the customer id it resolved to. API callers state the purpose in the ``X-Accord-Purpose`` header,
CLI users with ``--purpose``.
"""

from __future__ import annotations

import getpass
import re
import uuid
from datetime import datetime
from typing import Any

from accord.clock import utcnow
from accord.store.backend import Store

PURPOSE_HEADER = "X-Accord-Purpose"
_PURPOSE_TEXT = re.compile(r"[\w .:/,-]{1,200}")


def os_actor() -> str:
    try:
        return f"user:{getpass.getuser()}"
    except (OSError, KeyError):  # no user name in some containers
        return "user:unknown"


def clean_purpose(purpose: str | None) -> str | None:
    """A stated purpose as logged: short plain text (an '@' would let an identifier into the log)."""
    if purpose is None or not purpose.strip():
        return None
    text = purpose.strip()
    if "@" in text or not _PURPOSE_TEXT.fullmatch(text):
        return "[unreadable purpose]"
    return text


def log_access(store: Store, *, actor: str, action: str, customer_id: str | None, channel: str,
               role: str | None = None, purpose: str | None = None, detail: str | None = None,
               at: datetime | None = None) -> None:
    store.execute(
        "INSERT INTO access_log (access_id, accessed_at, actor, role, channel, action, customer_id, purpose, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ("acc_" + uuid.uuid4().hex, at or utcnow(), actor, role, channel, action, customer_id,
         clean_purpose(purpose), detail))


def access_entries(store: Store, customer_id: str | None = None, since: datetime | None = None,
                   limit: int = 100) -> list[dict[str, Any]]:
    clauses, params = [], []
    if customer_id:
        clauses.append("customer_id = ?")
        params.append(customer_id)
    if since:
        clauses.append("accessed_at >= ?")
        params.append(since)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = store.fetchall(
        f"SELECT accessed_at, actor, role, channel, action, customer_id, purpose, detail FROM access_log {where} "
        f"ORDER BY accessed_at DESC, access_id DESC LIMIT {int(limit)}", params)
    keys = ("accessed_at", "actor", "role", "channel", "action", "customer_id", "purpose", "detail")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def log_api_access(store: Store, request: Any, action: str, customer_id: str | None, detail: str | None = None
                   ) -> None:
    """Log an API call on a customer: the key's name and role, and the X-Accord-Purpose header."""
    key = getattr(request.state, "api_key", None)
    log_access(store, actor=f"key:{key.name}" if key else "key:unknown", role=key.role if key else None,
               channel="api", action=action, customer_id=customer_id,
               purpose=request.headers.get(PURPOSE_HEADER), detail=detail)
