"""One customer's profile: golden values with lineage, every value seen, records and identifiers.

``profile`` computes it from the golden tables. The profile API reads it as a *document* instead
(``profile_documents``, one point query): a lookup that finds none computes the profile and stores
it (``store_profile_document``), and whatever changes a customer's golden record, records or status
removes its document in the same transaction (``invalidate_profile_documents``: the golden build,
real-time merges; erasure deletes it as a table holding the person). Documents hold values as
stored (encrypted fields stay encrypted); they are revealed when read, as ``profile`` reveals.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import orjson
import pyarrow as pa

from accord.clock import utcnow
from accord.privacy.pii import TOKEN_PREFIX, reveal_tree
from accord.profiles.ids import resolve_customer_id
from accord.store.backend import Store

DOCUMENTS_COUNTER = "documents"
SCOPED_INVALIDATION_LIMIT = 10_000
"""Beyond this many customers, every document is dropped at once: deleting rows one by one from an
indexed DuckDB table costs ~50 us each at commit (24 s for 500,000), recreating the table nothing."""
INVALIDATION_LIST_LIMIT = 50
"""Up to this many customers, their documents are deleted through a parameter list; more, through a temp table."""
PROFILE_DOCUMENTS_DDL = ("CREATE TABLE profile_documents (customer_id TEXT PRIMARY KEY, document TEXT NOT NULL, "
                         "built_at TIMESTAMP NOT NULL)")
"""The table as migration 0015 creates it (a test keeps the two equal)."""


def _json(value: Any) -> Any:
    if value is None:
        return None
    return json.loads(value) if isinstance(value, str) else value


def profile(store: Store, customer_id: str) -> dict[str, Any]:
    """The golden record of a customer (a retired id resolves to the customer it merged into)."""
    current, redirected = resolve_customer_id(store, customer_id)
    return reveal_tree(None, {  # encrypted fields (privacy.encryption) decrypted with the environment's keys
        **stored_profile(store, current), "requested_id": customer_id, "redirected": redirected})


def stored_profile(store: Store, current: str) -> dict[str, Any]:
    """The profile of the customer ``current`` (an id that does not redirect) as the store holds it:
    encrypted fields stay encrypted. What a profile document holds."""
    return _stored_profiles(store, "= ?", (current,))[current]


# Each query's first column is the customer id; {who} is "= ?" (one customer) or "IN (SELECT ...)".
_PROFILE_SQL = {
    "customer": "SELECT customer_id, status, created_at, merged_into FROM customers WHERE customer_id {who}",
    "golden": "SELECT customer_id, attribute, value, source, record_key, observed_at, rule FROM golden_values "
              "WHERE customer_id {who} ORDER BY customer_id, attribute",
    "multi": "SELECT customer_id, attribute, value, first_seen, last_seen, CAST(sources AS TEXT), records, source, "
             "record_key, rule FROM golden_multi WHERE customer_id {who} "
             "ORDER BY customer_id, attribute, last_seen DESC, value",
    "records": "SELECT rc.customer_id, rc.source, rc.record_key, sr.first_seen_at, "
               "COALESCE(sr.source_updated_at, sr.valid_from), CAST(sr.external_ids AS TEXT) FROM record_customer rc "
               "LEFT JOIN source_records sr ON sr.source = rc.source AND sr.record_key = rc.record_key "
               "WHERE rc.customer_id {who} ORDER BY rc.customer_id, rc.source, rc.record_key",
    "merged": "SELECT to_id, from_id FROM customer_redirects WHERE to_id {who} ORDER BY to_id, from_id",
}


def _stored_profiles(store: Store, who: str, params: tuple[Any, ...]) -> dict[str, dict[str, Any]]:
    """customer_id -> stored profile, for the customers ``customer_id {who}`` selects."""
    parts: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
    for part, sql in _PROFILE_SQL.items():
        for row in store.fetchall(sql.format(who=who), params):
            parts.setdefault(row[0], {}).setdefault(part, []).append(row[1:])
    return {c: _assemble(c, rows) for c, rows in parts.items() if "customer" in rows} or \
        {c: _assemble(c, {}) for c in params[:1] if who == "= ?"}


def _assemble(current: str, rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, Any]:
    status, created_at, merged_into = (rows.get("customer") or [(None,) * 3])[0]
    attributes = {
        a: {"value": v, "record": f"{s}:{k}", "source": s, "record_key": k, "observed_at": t, "rule": r}
        for a, v, s, k, t, r in rows.get("golden", [])
    }
    multi: dict[str, list[dict[str, Any]]] = {}
    for a, v, first, last, sources, n, s, k, r in rows.get("multi", []):
        multi.setdefault(a, []).append({"value": v, "first_seen": first, "last_seen": last, "sources": _json(sources),
                                        "records": int(n), "record": f"{s}:{k}", "rule": r})
    records = []
    identifiers: dict[str, list[str]] = {}
    for s, k, first, updated, ext in rows.get("records", []):
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
    merged_ids = [r[0] for r in rows.get("merged", [])]
    return {
        "customer_id": current,
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


def build_profile_documents(store: Store, customer_ids: Iterable[str] | None = None, chunk: int = 50_000) -> int:
    """Store the documents of ``customer_ids`` (None: every customer without one), a chunk of customers
    per transaction and a few set-based queries per chunk; returns how many were stored. For after a
    full rebuild, so that lookups do not each compute their profile first."""
    if customer_ids is None:
        wanted = [c for (c,) in store.fetchall(
            "SELECT c.customer_id FROM customers c LEFT JOIN profile_documents d ON d.customer_id = c.customer_id "
            "WHERE d.customer_id IS NULL ORDER BY c.customer_id")]
    else:
        wanted = sorted(set(customer_ids))
    stored = 0
    for start in range(0, len(wanted), chunk):
        part = wanted[start:start + chunk]
        with store.transaction():
            store.create_temp_table("_pd_ids", pa.table({"customer_id": pa.array(part, pa.string())}))
            built = _stored_profiles(store, "IN (SELECT customer_id FROM _pd_ids)", ())
            store.execute("DELETE FROM profile_documents WHERE customer_id IN (SELECT customer_id FROM _pd_ids)")
            now = utcnow()
            store.load_arrow("profile_documents", pa.table({
                "customer_id": pa.array(list(built), pa.string()),
                "document": pa.array([orjson.dumps(d).decode() for d in built.values()], pa.string()),
                "built_at": pa.array([now] * len(built), pa.timestamp("us"))}))
            store.drop_temp_table("_pd_ids")
        stored += len(built)
    return stored


# --- profile documents -------------------------------------------------------------------------

def document_generation(store: Store) -> int:
    """How many invalidations so far; read it before building a document to store."""
    return int(store.scalar("SELECT last_value FROM profile_counters WHERE name = ?", (DOCUMENTS_COUNTER,)) or 0)


def profile_document(store: Store, customer_id: str) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """The stored document of ``customer_id`` (None when there is none) with its encrypted fields
    revealed, and the (id_type, value) pairs the identifier index holds for it: two point queries (as
    one UNION ALL, DuckDB scans instead)."""
    row = store.fetchone("SELECT document FROM profile_documents WHERE customer_id = ?", (customer_id,))
    identifiers = store.fetchall("SELECT id_type, value FROM customer_identifiers WHERE customer_id = ?",
                                 (customer_id,))
    return (revealed_document(row[0]) if row else None), [(t, v) for t, v in identifiers]


def revealed_document(text: str | bytes) -> dict[str, Any]:
    """A stored document's JSON as a dict, encrypted fields decrypted; the tree is walked only when the
    text holds a token (most stores encrypt nothing, and the walk costs ~0.1 ms a document)."""
    document = orjson.loads(text)
    token = TOKEN_PREFIX if isinstance(text, str) else TOKEN_PREFIX.encode()
    return reveal_tree(None, document) if token in text else document


def store_profile_document(store: Store, customer_id: str, document: bytes, generation: int) -> bool:
    """Store a document built after reading ``generation``, unless an invalidation came since (then the
    document may describe an older state) or another lookup stored one first. Whether it was stored."""
    with store.transaction():
        if document_generation(store) != generation:
            return False
        stored = store.fetchall("INSERT INTO profile_documents (customer_id, document, built_at) VALUES (?, ?, ?) "
                                "ON CONFLICT (customer_id) DO NOTHING RETURNING customer_id",
                                (customer_id, document.decode(), utcnow()))
    return bool(stored)


def invalidate_profile_documents(store: Store, customer_ids: Iterable[str] | None = None) -> None:
    """Remove the documents of ``customer_ids`` (None: every document), in the caller's transaction.

    Call it wherever a customer's golden values, records, status or merged ids change."""
    ids = None if customer_ids is None else sorted(set(customer_ids))
    with store.transaction():
        store.execute("UPDATE profile_counters SET last_value = last_value + 1 WHERE name = ?", (DOCUMENTS_COUNTER,))
        if ids is None or len(ids) > SCOPED_INVALIDATION_LIMIT:
            if store.dialect == "postgresql":
                # A row delete: DROP and TRUNCATE lock the table until the (long) run commits, and the
                # API's lookups on other processes would wait; readers see the old rows until then.
                store.execute("DELETE FROM profile_documents")
            else:  # one process holds a DuckDB store: nobody reads while a run rewrites it
                store.execute("DROP TABLE IF EXISTS profile_documents")
                store.execute(PROFILE_DOCUMENTS_DDL)
            return
        if len(ids) <= INVALIDATION_LIST_LIMIT:
            if ids:
                store.execute(f"DELETE FROM profile_documents WHERE customer_id IN ({', '.join('?' for _ in ids)})",
                              ids)
            return
        # Many ids: one semi-join on a temp table (DuckDB binds a long parameter list slowly: ~25 ms
        # for 500 ids, whatever the table holds).
        store.create_temp_table("_pd_invalid", pa.table({"customer_id": pa.array(ids, pa.string())}))
        store.execute("DELETE FROM profile_documents WHERE customer_id IN (SELECT customer_id FROM _pd_invalid)")
        store.drop_temp_table("_pd_invalid")
