"""Accounts (companies) from Segment ``group`` calls: the account's traits, and who belongs to it.

``accounts.account_id`` is the groupId. A group call's traits are merged into the account's
(a trait sent again replaces the old value; traits not sent are kept), ``traits.name`` is the
account's name, and the person joins ``account_members`` (origin 'group'). Accounts the traits
stage made from source records keep their origin; their traits are merged the same way.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from accord.store.backend import Store

ORIGIN = "group"


def join_account(store: Store, account_id: str, customer_id: str | None, traits: dict[str, Any],
                 at: datetime) -> None:
    """Create or update the account, merge its traits, and add the customer (when known) as a member."""
    row = store.fetchone("SELECT CAST(traits AS TEXT), name FROM accounts WHERE account_id = ?", (account_id,))
    name = traits.get("name")
    name = str(name) if isinstance(name, (str, int, float)) and not isinstance(name, bool) and str(name) else None
    if row is None:
        store.execute("INSERT INTO accounts (account_id, name, traits, origin, first_seen, last_seen) "
                      "VALUES (?, ?, ?, ?, ?, ?)", (account_id, name, json.dumps(traits), ORIGIN, at, at))
    else:
        old = json.loads(row[0]) if row[0] else {}
        merged = {**(old if isinstance(old, dict) else {}), **traits}
        store.execute("UPDATE accounts SET traits = ?, name = ?, last_seen = ? WHERE account_id = ?",
                      (json.dumps(merged), name if name is not None else row[1], at, account_id))
    if customer_id is None:
        return
    if store.fetchone("SELECT 1 FROM account_members WHERE account_id = ? AND customer_id = ?",
                      (account_id, customer_id)):
        store.execute("UPDATE account_members SET last_seen = ? WHERE account_id = ? AND customer_id = ?",
                      (at, account_id, customer_id))
    else:
        store.execute("INSERT INTO account_members (account_id, customer_id, origin, first_seen, last_seen) "
                      "VALUES (?, ?, ?, ?, ?)", (account_id, customer_id, ORIGIN, at, at))
