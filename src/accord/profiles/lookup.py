"""One customer's profile: golden values with lineage, every value seen, records and identifiers."""

from __future__ import annotations

import json
from typing import Any

from accord.profiles.ids import resolve_customer_id
from accord.store.backend import Store


def _json(value: Any) -> Any:
    if value is None:
        return None
    return json.loads(value) if isinstance(value, str) else value


def profile(store: Store, customer_id: str) -> dict[str, Any]:
    """The golden record of a customer (a retired id resolves to the customer it merged into)."""
    current, redirected = resolve_customer_id(store, customer_id)
    status, created_at, merged_into = store.fetchone(
        "SELECT status, created_at, merged_into FROM customers WHERE customer_id = ?", (current,)) or (None,) * 3
    attributes = {
        a: {"value": v, "record": f"{s}:{k}", "source": s, "record_key": k, "observed_at": t, "rule": r}
        for a, v, s, k, t, r in store.fetchall(
            "SELECT attribute, value, source, record_key, observed_at, rule FROM golden_values "
            "WHERE customer_id = ? ORDER BY attribute", (current,))
    }
    multi: dict[str, list[dict[str, Any]]] = {}
    for a, v, first, last, sources, n, s, k, r in store.fetchall(
            "SELECT attribute, value, first_seen, last_seen, CAST(sources AS TEXT), records, source, record_key, rule "
            "FROM golden_multi WHERE customer_id = ? ORDER BY attribute, last_seen DESC, value", (current,)):
        multi.setdefault(a, []).append({"value": v, "first_seen": first, "last_seen": last, "sources": _json(sources),
                                        "records": int(n), "record": f"{s}:{k}", "rule": r})
    records = []
    identifiers: dict[str, list[str]] = {}
    for s, k, first, updated, ext in store.fetchall(
            "SELECT rc.source, rc.record_key, sr.first_seen_at, COALESCE(sr.source_updated_at, sr.valid_from), "
            "CAST(sr.external_ids AS TEXT) FROM record_customer rc "
            "LEFT JOIN source_records sr ON sr.source = rc.source AND sr.record_key = rc.record_key "
            "WHERE rc.customer_id = ? ORDER BY rc.source, rc.record_key", (current,)):
        records.append({"record": f"{s}:{k}", "source": s, "record_key": k, "first_seen_at": first,
                        "updated_at": updated})
        identifiers.setdefault(f"{s}_key", []).append(k)
        for name, value in (_json(ext) or {}).items():
            if value not in (None, ""):
                identifiers.setdefault(str(name), []).append(str(value))
    for attr, kind in (("emails", "email"), ("phones", "phone")):
        if attr in multi:
            identifiers[kind] = [m["value"] for m in multi[attr]]
    firsts = [r["first_seen_at"] for r in records if r["first_seen_at"] is not None]
    lasts = [r["updated_at"] for r in records if r["updated_at"] is not None]
    merged_ids = [r[0] for r in store.fetchall(
        "SELECT from_id FROM customer_redirects WHERE to_id = ? ORDER BY from_id", (current,))]
    return {
        "customer_id": current,
        "requested_id": customer_id,
        "redirected": redirected,
        "status": status,
        "merged_into": merged_into,
        "created_at": created_at,
        "merged_ids": merged_ids,
        "attributes": attributes,
        "multi": multi,
        "identifiers": {k: sorted(set(v)) for k, v in sorted(identifiers.items())},
        "records": records,
        "sources": sorted({r["source"] for r in records}),
        "first_seen": min(firsts) if firsts else None,
        "last_seen": max(lasts) if lasts else None,
    }
