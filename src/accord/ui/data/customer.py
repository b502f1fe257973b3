"""Customer 360: finding a customer by any identifier, and everything held on them, masked by role.

Masking happens here, before anything reaches a template, so no page can show what the role may not see.
"""

from __future__ import annotations

from typing import Any

from accord.api.errors import ApiError
from accord.api.routers.profiles import (
    customer_events,
    customer_records,
    customers_by_external_id,
    phone_keys,
    resolve_ref,
)
from accord.profiles.audit import history
from accord.profiles.lookup import profile
from accord.profiles.review import FIELDS as RECORD_FIELDS
from accord.profiles.review import record_fields
from accord.store import Store
from accord.ui.data.segments import customer_segments
from accord.ui.masking import Masker

SEARCH_LIMIT = 25
EVENTS_PAGE = 25
_NAME_ATTRIBUTES = ("given_name", "family_name", "full_name")


# --- search --------------------------------------------------------------------------------------

def find_customers(store: Store, query: str, region: str) -> tuple[list[str], str | None]:
    """Customer ids for ``query`` and a note when nothing matched.

    ``query`` is ``ID_TYPE:VALUE`` (as the profile API takes it), ``SOURCE:RECORD_KEY``, or a bare
    value: an email, a customer id, a phone, an external id value, or else a name."""
    query = query.strip()
    if not query:
        return [], None
    id_type, sep, value = query.partition(":")
    if sep and id_type and value and " " not in id_type:
        if id_type in _source_names(store):
            found = [r[0] for r in store.fetchall(
                "SELECT customer_id FROM record_customer WHERE source = ? AND record_key = ?", (id_type, value))]
            return found, None if found else f"no current record {query}"
        return _resolve(store, id_type, value, region)
    if "@" in query:
        return _resolve(store, "email", query, region)
    if query.startswith("cus_"):
        return _resolve(store, "customer_id", query, region)
    found = customers_by_external_id(store, None, query)
    if not found and sum(c.isdigit() for c in query) >= 7 and phone_keys(query, region):
        found, _ = _resolve(store, "phone", query, region)
    if not found:
        found = _customers_by_name(store, query)
    return found[:SEARCH_LIMIT], None if found else f"nobody matches {query!r}"


def _resolve(store: Store, id_type: str, value: str, region: str) -> tuple[list[str], str | None]:
    try:
        customer_id, _ = resolve_ref(store, id_type, value, region)
    except ApiError as exc:
        return [], exc.message
    return [customer_id], None


def _source_names(store: Store) -> set[str]:
    return {r[0] for r in store.fetchall("SELECT DISTINCT source FROM record_customer")}


def _customers_by_name(store: Store, text: str) -> list[str]:
    """Customers whose golden name holds every word of ``text`` (case-insensitive)."""
    words = [w.lower() for w in text.split() if w]
    if not words:
        return []
    marks = ", ".join("?" for _ in _NAME_ATTRIBUTES)
    clauses = " AND ".join("strpos(names, ?) > 0" for _ in words)
    return [r[0] for r in store.fetchall(
        f"SELECT customer_id FROM (SELECT customer_id, LOWER(STRING_AGG(value, ' ')) AS names FROM golden_values "
        f"WHERE attribute IN ({marks}) GROUP BY customer_id) n WHERE {clauses} ORDER BY customer_id "
        f"LIMIT {SEARCH_LIMIT}", (*_NAME_ATTRIBUTES, *words))]


def customer_cards(store: Store, customer_ids: list[str], masker: Masker | None) -> list[dict[str, Any]]:
    """One line per customer for a result list: id, name, email, sources, records."""
    if not customer_ids:
        return []
    marks = ", ".join("?" for _ in customer_ids)
    golden: dict[str, dict[str, str]] = {}
    for c, a, v in store.fetchall(
            f"SELECT customer_id, attribute, value FROM golden_values WHERE customer_id IN ({marks}) "
            "AND attribute IN ('given_name', 'family_name', 'full_name', 'email')", customer_ids):
        golden.setdefault(c, {})[a] = v
    sources: dict[str, list[str]] = {}
    for c, s in store.fetchall(f"SELECT customer_id, source FROM record_customer WHERE customer_id IN ({marks}) "
                               "ORDER BY source", customer_ids):
        sources.setdefault(c, []).append(s)
    cards = []
    for c in customer_ids:
        g = golden.get(c, {})
        name = " ".join(v for v in (g.get("given_name"), g.get("family_name")) if v) or g.get("full_name", "")
        cards.append({"customer_id": c, "name": _show(masker, "full_name", name),
                      "email": _show(masker, "email", g.get("email")),
                      "sources": sorted(set(sources.get(c, []))), "records": len(sources.get(c, []))})
    return cards


# --- the 360 view --------------------------------------------------------------------------------

def customer_view(store: Store, customer_id: str, masker: Masker | None) -> dict[str, Any]:
    """Everything on one customer but the event timeline, which the page loads after itself (``timeline``);
    a retired id resolves to the one it merged into; personal data masked when a ``masker`` is given."""
    prof = profile(store, customer_id)
    current = prof["customer_id"]
    shown = masker.profile(prof) if masker else prof
    attributes = [{**lineage, "attribute": name} for name, lineage in shown["attributes"].items()]
    multi = [{**m, "attribute": name} for name, values in shown["multi"].items() for m in values]
    return {
        "customer_id": current,
        "requested_id": customer_id,
        "redirected": prof["redirected"],
        "status": prof["status"],
        "created_at": prof["created_at"],
        "merged_ids": prof["merged_ids"],
        "first_seen": prof["first_seen"],
        "last_seen": prof["last_seen"],
        "sources": prof["sources"],
        "attributes": attributes,
        "multi": multi,
        "identifiers": shown["identifiers"],
        "records": linked_records(store, current, masker),
        "history": identity_history(store, current, masker),
        "traits": traits(store, current),
        "consent": consent(store, current),
        "segments": customer_segments(store, current),
    }


def linked_records(store: Store, customer_id: str, masker: Masker | None) -> dict[str, Any]:
    """The customer's source records side by side: one column per record, one row per canonical field.
    Raw source rows only when nothing is masked (they hold every column the source sent)."""
    raw = customer_records(store, customer_id)["records"]
    columns = []
    for rec in raw:
        fields = record_fields(store, rec["record"]) or {}
        columns.append({
            "record": rec["record"], "source": rec["source"], "record_key": rec["record_key"],
            "updated_at": rec["updated_at"], "source_file": rec["source_file"], "source_line": rec["source_line"],
            "external_ids": masker.profile({"identifiers": rec["external_ids"]})["identifiers"] if masker
            else rec["external_ids"],
            "fields": {f: _show(masker, f, fields.get(f, "")) for f in RECORD_FIELDS if f != "source"},
            "raw": None if masker else rec["raw"],
        })
    return {"fields": [f for f in RECORD_FIELDS if f != "source"], "columns": columns}


def timeline(store: Store, customer_id: str, cursor: str | None, masker: Masker | None) -> dict[str, Any]:
    """A page of the customer's events, newest first. When masking, properties are left out (identify
    traits and form fields carry names and addresses under any key) and email/phone identities masked."""
    page = customer_events(store, customer_id, EVENTS_PAGE, cursor)
    if masker is None:
        return page
    events = [masker.profile({**e, "properties": None}) for e in page["events"]]
    return {"events": events, "next_cursor": page["next_cursor"]}


def identity_history(store: Store, customer_id: str, masker: Masker | None) -> list[dict[str, Any]]:
    events = history(store, customer_id)
    if masker is None:
        return events
    return [{**e, "reason": masker.text(e["reason"] or "")} for e in events]


def traits(store: Store, customer_id: str) -> list[dict[str, Any]]:
    return [{"name": n, "value": _trait_value(num, text), "computed_at": at} for n, num, text, at in store.fetchall(
        "SELECT name, value_num, value_text, computed_at FROM customer_traits WHERE customer_id = ? ORDER BY name",
        (customer_id,))]


def consent(store: Store, customer_id: str) -> list[dict[str, Any]]:
    return [dict(zip(("purpose", "status", "decided_at", "source", "lawful_basis"), r)) for r in store.fetchall(
        "SELECT purpose, status, decided_at, source, lawful_basis FROM customer_consent WHERE customer_id = ? "
        "ORDER BY purpose", (customer_id,))]


def _trait_value(num: Any, text: Any) -> Any:
    if num is None:
        return text
    num = float(num)
    return int(num) if num.is_integer() else round(num, 4)


def _show(masker: Masker | None, field: str, value: Any) -> Any:
    return masker.field(field, value) if masker else value
