"""The profile API: look a customer up by any identifier; their records, events and identity history.

``GET /v1/profiles/{id_type}:{value}``, e.g. ``customer_id:cus_00000042``, ``email:ada@example.com``,
``phone:+14155550100``, ``crm_contact_id:C-17`` (any external id name), ``user_id:...`` or
``anonymous_id:...``. Read role (admin also passes).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

import orjson
import phonenumbers
from fastapi import APIRouter, Depends, Path, Query, Request

from accord.api.auth import ApiKey, allowed_roles, check_key, require_role
from accord.api.deps import StoreWorkerDep
from accord.api.errors import ApiError, JsonResponse
from accord.api.fast_routes import FastRequest
from accord.api.models import (
    Error,
    Profile,
    ProfileEvents,
    ProfileHistory,
    ProfileRecords,
    ProfileSegments,
    ProfileTraits,
)
from accord.api.profile_read import PostgresProfileReads, read_active_profile
from accord.api.store_worker import StoreWorker
from accord.clock import utcnow
from accord.errors import AccordError
from accord.events.customers import current_ids
from accord.privacy.access import PURPOSE_HEADER, clean_purpose, log_api_access
from accord.privacy.masking import mask_for_key, mask_for_role
from accord.privacy.pii import blind_forms, reveal_tree
from accord.profiles.audit import history
from accord.profiles.ids import resolve_customer_id
from accord.profiles.lookup import (
    document_generation,
    profile_document,
    revealed_document,
    store_profile_document,
    stored_profile,
)
from accord.standardize.emails import standardize_email
from accord.standardize.phones import standardize_phone
from accord.store.backend import Store

router = APIRouter(prefix="/v1/profiles", tags=["profiles"])
ReadKey = Annotated[ApiKey, Depends(require_role("read"))]

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Error, "description": "Malformed identifier (expected ID_TYPE:VALUE) or cursor"},
    401: {"model": Error, "description": "No API key, or an unknown one"},
    403: {"model": Error, "description": "The key's role may not read profiles (needs read or admin)"},
    404: {"model": Error, "description": "No customer has this identifier"},
    422: {"model": Error, "description": "A query parameter is out of range"},
    500: {"model": Error, "description": "A bug or a store failure; see the server log"},
}
_REF_DOC = ("ID_TYPE:VALUE, e.g. customer_id:cus_00000042, email:ada@example.com, phone:+14155550100, "
            "user_id:u1, anonymous_id:a1, or an external id name such as crm_contact_id:C-17")
Ref = Annotated[str, Path(description=_REF_DOC)]
EVENT_COLUMNS = ("event_id", "source", "type", "event", "ts", "received_at", "identity_type", "identity_value",
                 "anonymous_id", "revenue")


# --- resolving an identifier to a customer ------------------------------------------------------

def parse_ref(ref: str) -> tuple[str, str]:
    id_type, sep, value = ref.partition(":")
    if not sep or not id_type.strip() or not value.strip():
        raise ApiError(400, f"identifier {ref!r}: expected ID_TYPE:VALUE, e.g. customer_id:cus_00000042 or "
                            "email:ada@example.com", code="invalid_identifier")
    return id_type.strip(), value.strip()


def _json(value: Any) -> Any:
    if value is None:
        return None
    return json.loads(value) if isinstance(value, str) else value


def _customers_by_multi(store: Store, attribute: str, values: list[str]) -> list[str]:
    marks = ", ".join("?" for _ in values)
    return [r[0] for r in store.fetchall(
        f"SELECT DISTINCT customer_id FROM golden_multi WHERE attribute = ? AND value IN ({marks}) "
        "ORDER BY customer_id", (attribute, *values))]


def phone_keys(value: str, region: str) -> list[str]:
    """The forms a phone may be stored in (golden values keep '+' and digits as the source wrote them)."""
    keys = {"".join(c for c in value if c.isdigit() or c == "+")}
    e164 = standardize_phone(value, region).e164
    if e164:
        keys.update({e164, e164[1:]})
        try:
            keys.add(str(phonenumbers.parse(e164).national_number))
        except phonenumbers.NumberParseException:  # e164 always parses; kept defensive
            pass
    return sorted(k for k in keys if k.strip("+"))


def customers_by_external_id(store: Store, name: str | None, value: str) -> list[str]:
    """Customers of the current records whose external id ``name`` (any name when None) is ``value``.

    Candidates are found by substring on the JSON text (the same SQL on DuckDB and PostgreSQL), then
    checked exactly here."""
    found: set[str] = set()
    for customer_id, ext in store.fetchall(
            "SELECT rc.customer_id, CAST(sr.external_ids AS TEXT) FROM source_records sr "
            "JOIN record_customer rc ON rc.source = sr.source AND rc.record_key = sr.record_key "
            "WHERE strpos(CAST(sr.external_ids AS TEXT), ?) > 0 OR strpos(CAST(sr.external_ids AS TEXT), ?) > 0",
            # JSON text may keep non-ASCII as is (PostgreSQL) or escaped (\uXXXX): look for both
            (json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1])):
        ids = _json(ext) or {}
        if not isinstance(ids, dict):
            continue
        if any(str(v) == value for k, v in ids.items() if v is not None and (name is None or k == name)):
            found.add(customer_id)
    return sorted(found)


def _known_external_id_names(store: Store, name: str) -> bool:
    return bool(store.fetchone("SELECT 1 FROM source_records WHERE strpos(CAST(external_ids AS TEXT), ?) > 0 "
                               "LIMIT 1", (json.dumps(name),)))


def index_forms(id_type: str, value: str, region: str) -> list[str]:
    """The forms ``value`` may be indexed under in customer_identifiers."""
    if id_type == "email":  # blind_forms: stores with encrypted emails/phones index their keyed hashes
        return blind_forms(id_type, sorted({value.lower(), *filter(None, [standardize_email(value).email])}))
    if id_type == "phone":
        return blind_forms(id_type, phone_keys(value, region))
    return [value]


def customers_by_index(store: Store, id_type: str, values: list[str]) -> list[str]:
    """The active customers the identifier index names for (id_type, any of values); a point query."""
    if not values:
        return []
    found = [c for t, c in store.fetchall(
        f"SELECT id_type, customer_id FROM customer_identifiers WHERE value IN ({', '.join('?' for _ in values)})",
        values) if t == id_type]
    current = current_ids(store, found)
    return sorted({current[c] for c in found if current[c] is not None})  # type: ignore[misc]


def resolve_ref(store: Store, id_type: str, value: str, region: str) -> tuple[str, str | None]:
    """(customer_id, the retired id it was redirected from or None); ApiError 404 when nobody has it.

    The identifier index (customer_identifiers: batch identities and real-time stitching) answers
    first; stores whose index is not built yet fall back to golden records, records and events."""
    def one(candidates: list[str], what: str) -> tuple[str, str | None]:
        if not candidates:
            raise ApiError(404, f"no customer has {what}")
        # The same identifier on two customers: answer the oldest id (ids are given in order).
        return min(candidates), None

    if id_type == "customer_id":
        try:
            current, redirected = resolve_customer_id(store, value)
        except AccordError:
            raise ApiError(404, f"no customer {value!r}; customer ids look like cus_00000042") from None
        return current, value if redirected else None
    indexed = customers_by_index(store, id_type, index_forms(id_type, value, region))
    if indexed:
        return min(indexed), None
    if id_type == "email":
        return one(_customers_by_multi(store, "emails", [value.lower()]), f"email {value!r}")
    if id_type == "phone":
        keys = phone_keys(value, region)
        if not keys:
            raise ApiError(400, f"phone {value!r}: not a phone number", code="invalid_identifier")
        return one(_customers_by_multi(store, "phones", keys), f"phone {value!r}")
    if id_type == "user_id":
        return one(customers_by_external_id(store, None, value),
                   f"user_id {value!r} (a user_id is matched to the external ids of source records)")
    if id_type == "anonymous_id":
        user = store.fetchone(
            "SELECT identity_value FROM events WHERE anonymous_id = ? AND identity_type = 'user_id' "
            "ORDER BY ts DESC, event_id DESC LIMIT 1", (value,))
        if user is None:
            raise ApiError(404, f"no customer has anonymous_id {value!r}: no event links it to a user_id")
        return one(customers_by_external_id(store, None, user[0]),
                   f"anonymous_id {value!r} (its user_id {user[0]!r} matches no source record)")
    if not _known_external_id_names(store, id_type):
        raise ApiError(404, f"unknown identifier type {id_type!r}: use customer_id, email, phone, user_id, "
                            "anonymous_id or the name of an external id of your sources")
    return one(customers_by_external_id(store, id_type, value), f"{id_type} {value!r}")


# --- what the routes read ----------------------------------------------------------------------

def customer_identifiers(store: Store, customer_id: str) -> dict[str, set[str]]:
    """identity_type -> values that name this customer in events: external ids, emails, and the
    external id values again as user_id (apps usually send their own customer id as userId)."""
    ids: dict[str, set[str]] = {}
    for (ext,) in store.fetchall(
            "SELECT CAST(sr.external_ids AS TEXT) FROM record_customer rc JOIN source_records sr "
            "ON sr.source = rc.source AND sr.record_key = rc.record_key WHERE rc.customer_id = ?", (customer_id,)):
        for name, value in (_json(ext) or {}).items():
            if value not in (None, ""):
                ids.setdefault(str(name), set()).add(str(value))
                ids.setdefault("user_id", set()).add(str(value))
    emails = {r[0] for r in store.fetchall(
        "SELECT value FROM golden_multi WHERE customer_id = ? AND attribute = 'emails'", (customer_id,))}
    if emails:
        ids["email"] = emails
    for id_type, value in store.fetchall(
            "SELECT id_type, value FROM customer_identifiers WHERE customer_id = ?", (customer_id,)):
        ids.setdefault(id_type, set()).add(value)
    return ids


def encode_cursor(ts: datetime, event_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([ts.isoformat(), event_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        ts, event_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(ts), str(event_id)
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise ApiError(400, "cursor: not a cursor this API gave; pass next_cursor from the previous page "
                            "unchanged", code="invalid_cursor") from None


def customer_events(store: Store, customer_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    ids = customer_identifiers(store, customer_id)
    clauses: list[str] = []
    params: list[Any] = []
    for id_type, values in sorted(ids.items()):
        vals = sorted(values)
        column = "LOWER(identity_value)" if id_type == "email" else "identity_value"
        clauses.append(f"(identity_type = ? AND {column} IN ({', '.join('?' for _ in vals)}))")
        params += [id_type, *(v.lower() if id_type == "email" else v for v in vals)]
    if not clauses:
        return {"customer_id": customer_id, "events": [], "next_cursor": None}
    who = " OR ".join(clauses)
    anonymous = [r[0] for r in store.fetchall(
        f"SELECT DISTINCT anonymous_id FROM events WHERE ({who}) AND anonymous_id IS NOT NULL", params)]
    if anonymous:
        who += f" OR anonymous_id IN ({', '.join('?' for _ in anonymous)})"
        params += anonymous
    where = f"({who})"
    if cursor:
        ts, event_id = decode_cursor(cursor)
        where += " AND (ts < ? OR (ts = ? AND event_id < ?))"
        params += [ts, ts, event_id]
    rows = store.fetchall(
        f"SELECT {', '.join(EVENT_COLUMNS)}, CAST(properties AS TEXT) FROM events WHERE {where} "
        f"ORDER BY ts DESC, event_id DESC LIMIT {int(limit) + 1}", params)
    events = [{**dict(zip(EVENT_COLUMNS, r[:-1], strict=True)), "properties": reveal_tree(None, _json(r[-1]))}
              for r in rows[:limit]]  # person fields collected encrypted (privacy.encryption) decrypted
    last = rows[limit - 1] if len(rows) > limit else None
    return {"customer_id": customer_id, "events": events,
            "next_cursor": encode_cursor(last[4], last[0]) if last else None}


def customer_traits(store: Store, customer_id: str) -> dict[str, Any]:
    traits = {}
    for name, num, text, at in store.fetchall(
            "SELECT name, value_num, value_text, computed_at FROM customer_traits WHERE customer_id = ? ORDER BY name",
            (customer_id,)):
        value: Any = num
        if num is None and text is not None:
            value = text
            if text[:1] in ("[", "{"):
                try:
                    value = json.loads(text)
                except ValueError:
                    pass
        traits[name] = {"value": value, "computed_at": at}
    return {"customer_id": customer_id, "traits": traits}


def customer_segments(store: Store, customer_id: str, with_history: bool) -> dict[str, Any]:
    where = "" if with_history else " AND exited_at IS NULL"
    rows = store.fetchall(
        "SELECT segment, entered_at, exited_at, entered_by, exited_by FROM segment_membership "
        f"WHERE customer_id = ?{where} ORDER BY entered_at DESC, segment", (customer_id,))
    return {"customer_id": customer_id, "segments": [
        dict(zip(("segment", "entered_at", "exited_at", "entered_by", "exited_by"), r, strict=True)) for r in rows]}


def customer_records(store: Store, customer_id: str) -> dict[str, Any]:
    rows = store.fetchall(
        "SELECT sr.source, sr.record_key, CAST(sr.raw AS TEXT), CAST(sr.external_ids AS TEXT), "
        "CAST(sr.emails AS TEXT), CAST(sr.phones AS TEXT), sr.first_seen_at, "
        "COALESCE(sr.source_updated_at, sr.valid_from), sr.source_file, sr.source_line "
        "FROM record_customer rc JOIN source_records sr ON sr.source = rc.source AND sr.record_key = rc.record_key "
        "WHERE rc.customer_id = ? ORDER BY sr.source, sr.record_key", (customer_id,))
    return reveal_tree(None, {"customer_id": customer_id, "records": [{  # encrypted fields decrypted
        "record": f"{s}:{k}", "source": s, "record_key": k, "raw": _json(raw) or {}, "external_ids": _json(ext) or {},
        "emails": _json(emails) or [], "phones": _json(phones) or [], "first_seen_at": first, "updated_at": updated,
        "source_file": file, "source_line": line,
    } for s, k, raw, ext, emails, phones, first, updated, file, line in rows]})


# --- routes ------------------------------------------------------------------------------------

async def _lookup(request: Request, worker: StoreWorker, ref: str,
                  read: Callable[[Store, str, str | None], dict[str, Any]]) -> dict[str, Any]:
    """Resolve ``ref`` and ``read`` what the route answers, on the store thread."""
    id_type, value = parse_ref(ref)
    region = request.app.state.default_region

    def run(store: Store) -> tuple[str, dict[str, Any]]:
        customer_id, redirected_from = resolve_ref(store, id_type, value, region)
        return customer_id, read(store, customer_id, redirected_from)

    customer_id, payload = await worker.read(run)
    route = getattr(request.scope.get("route"), "name", None)
    # The access audit row is committed before the answer, in the store thread's next group commit
    # (concurrent reads share one commit instead of each paying for its own).
    await worker.append(lambda store: log_api_access(store, request, "profile.read", customer_id, route))
    return mask_for_role(request, payload)  # analyst keys see PII masked


@router.get("/{ref}", response_model=Profile, responses=_ERRORS, summary="A customer's golden profile")
async def get_profile(request: Request, ref: Ref, key: ReadKey) -> JsonResponse:
    # Served by ``serve_profile`` in front of FastAPI (fast_routes.py); this answers when that is off.
    return JsonResponse(await profile_answer(request.app.state, key, request.headers.get(PURPOSE_HEADER), ref))


PROFILE_ROLES = allowed_roles("read")
_PURPOSE_HEADER_BYTES = PURPOSE_HEADER.lower().encode("latin-1")


async def serve_profile(state: Any, request: FastRequest, ref: str) -> dict[str, Any]:
    """``GET /v1/profiles/{ref}`` as ``fast_routes`` serves it: the key, then ``profile_answer``."""
    key = check_key(request.header(b"authorization"), state.api_keys, PROFILE_ROLES)
    return await profile_answer(state, key, request.header(_PURPOSE_HEADER_BYTES), ref)


async def profile_answer(state: Any, key: ApiKey, purpose: str | None, ref: str) -> dict[str, Any]:
    """The profile ``ref`` names as ``key`` may see it (masked for analysts), its read audited as
    ``purpose`` (the X-Accord-Purpose header) before it is answered."""
    id_type, value = parse_ref(ref)
    region = state.default_region
    worker: StoreWorker = state.store_worker
    postgresql = state.store_dialect == "postgresql"
    access = access_values(key, purpose, "profile.read", None, "get_profile")
    found = None
    if postgresql:  # the usual case in one statement, on the event loop
        forms = [value] if id_type == "customer_id" else index_forms(id_type, value, region)
        found = await _postgres_reads(state, worker).read_active_profile(id_type, forms, access)
    if found is not None:
        customer_id, document, indexed, audited = found
        redirected_from, built = None, None
    else:
        customer_id, redirected_from, document, indexed, built, audited = await worker.read(
            lambda store: read_profile(store, id_type, value, region, access, fast=not postgresql))

    # The access audit row (and a new document) is committed before the answer: in the lookup's own
    # statement (PostgreSQL), or in the store thread's next group commit, where concurrent reads share
    # one commit (or one journal fsync) and one INSERT instead of each paying for its own.
    at = ACCESS_COLUMNS.index("customer_id")
    access = (*access[:at], customer_id, *access[at + 1:])
    if built is not None:  # the lookup computed the profile: keep it as the customer's document
        def log(store: Store) -> None:
            store.execute(f"INSERT INTO access_log ({', '.join(ACCESS_COLUMNS)}) "
                          f"VALUES ({', '.join('?' for _ in ACCESS_COLUMNS)})", access)
            store_profile_document(store, customer_id, built[1], built[0])

        await worker.append(log)
    elif not audited:
        await worker.append_row("access_log", ACCESS_COLUMNS, access)
    out = document  # encrypted fields were decrypted as it was read (revealed_document)
    # Identifiers real-time stitching indexed (a person known only from events has no records yet).
    identifiers = {k: set(v) for k, v in out["identifiers"].items()}
    for id_type_, value_ in indexed:
        identifiers.setdefault(id_type_, set()).add(value_)
    out.update({"identifiers": {k: sorted(v) for k, v in sorted(identifiers.items())},
                "requested_id": redirected_from or customer_id, "redirected": redirected_from is not None,
                "redirected_from": redirected_from})
    return mask_for_key(key, state, out)  # analyst keys see PII masked


_ACCESS_PREFIX = uuid.uuid4().hex[:16]
_ACCESS_SEQ = itertools.count()
"""access_id: a random prefix per process and a counter (as unique as a uuid4 per row, and ~20x cheaper:
no system call per read)."""
ACCESS_COLUMNS = ("access_id", "accessed_at", "actor", "role", "channel", "action", "customer_id", "purpose",
                  "detail")


def access_values(key: ApiKey | None, purpose: str | None, action: str, customer_id: str | None,
                  detail: str | None) -> tuple[Any, ...]:
    """The ``access_log`` row of a read by ``key`` with the stated ``purpose`` (X-Accord-Purpose), as values."""
    return (f"acc_{_ACCESS_PREFIX}{next(_ACCESS_SEQ):016x}", utcnow(), f"key:{key.name}" if key else "key:unknown",
            key.role if key else None, "api", action, customer_id, clean_purpose(purpose), detail)


def _postgres_reads(state: Any, worker: StoreWorker) -> PostgresProfileReads:
    """This process's async connections for profile lookups (opened at the first; closed at shutdown)."""
    reads = getattr(state, "profile_reads", None)
    if reads is None:
        reads = state.profile_reads = PostgresProfileReads(worker.store_url)
    return reads


@asynccontextmanager
async def _close_reads(app: Any) -> AsyncIterator[None]:
    try:
        yield
    finally:
        reads = getattr(app.state, "profile_reads", None)
        if reads is not None:
            app.state.profile_reads = None
            await reads.close()


router.lifespan_context = _close_reads


def read_profile(store: Store, id_type: str, value: str, region: str, access: tuple[Any, ...], fast: bool = True
                 ) -> tuple[str, str | None, dict[str, Any], list[tuple[str, str]], tuple[int, bytes] | None, bool]:
    """(customer_id, the retired id it was redirected from, the profile as stored, the (id_type, value)
    pairs the identifier index holds for the customer, (generation, document) when the profile was
    computed here because no document held it, and whether ``access``, this read's access row, was
    written already).

    Usually the identifier names one active customer with a document (``profile_read``: one statement
    on PostgreSQL, three point queries on DuckDB). Anything else (several candidates, a retired id, no
    document) takes the general path; ``fast=False`` goes there at once (the caller tried the usual case)."""
    forms = [value] if id_type == "customer_id" else index_forms(id_type, value, region)
    found = read_active_profile(store, id_type, forms, access) if fast else None
    if found is not None:
        customer_id, document, indexed, audited = found
        return customer_id, None, document, indexed, None, audited
    customer_id, redirected_from = resolve_ref(store, id_type, value, region)
    document, indexed = profile_document(store, customer_id)
    built = None
    if document is None:
        generation = document_generation(store)  # before reading what the document is built from
        document = stored_profile(store, customer_id)
        text = orjson.dumps(document)
        document, built = revealed_document(text), (generation, text)  # the same JSON types as a stored document
    return customer_id, redirected_from, document, indexed, built, False


@router.get("/{ref}/records", response_model=ProfileRecords, responses=_ERRORS,
            summary="The source records linked to a customer, with their raw values")
async def get_records(request: Request, ref: Ref, key: ReadKey, worker: StoreWorkerDep) -> JsonResponse:
    return JsonResponse(await _lookup(request, worker, ref, lambda s, c, _: customer_records(s, c)))


@router.get("/{ref}/events", response_model=ProfileEvents, responses=_ERRORS,
            summary="A customer's events, newest first, a page at a time")
async def get_events(request: Request, ref: Ref, key: ReadKey, worker: StoreWorkerDep,
                     limit: Annotated[int, Query(ge=1, le=500)] = 50,
                     cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None
                     ) -> JsonResponse:
    if cursor:
        decode_cursor(cursor)  # a bad cursor is a 400 even for an unknown customer
    return JsonResponse(await _lookup(request, worker, ref,
                                        lambda s, c, _: customer_events(s, c, limit, cursor)))


@router.get("/{ref}/history", response_model=ProfileHistory, responses=_ERRORS,
            summary="The identity audit of a customer, oldest first")
async def get_history(request: Request, ref: Ref, key: ReadKey, worker: StoreWorkerDep) -> JsonResponse:
    return JsonResponse(await _lookup(request, worker, ref,
                                        lambda s, c, _: {"customer_id": c, "events": history(s, c)}))


@router.get("/{ref}/traits", response_model=ProfileTraits, responses=_ERRORS,
            summary="A customer's computed traits (RFM, lifetime value, health, churn risk, counters)")
async def get_traits(request: Request, ref: Ref, key: ReadKey, worker: StoreWorkerDep) -> JsonResponse:
    return JsonResponse(await _lookup(request, worker, ref, lambda s, c, _: customer_traits(s, c)))


@router.get("/{ref}/segments", response_model=ProfileSegments, responses=_ERRORS,
            summary="The segments a customer is in, newest first")
async def get_segments(request: Request, ref: Ref, key: ReadKey, worker: StoreWorkerDep,
                       history: Annotated[bool, Query(description="also the memberships that ended")] = False
                       ) -> JsonResponse:
    return JsonResponse(await _lookup(request, worker, ref,
                                        lambda s, c, _: customer_segments(s, c, history)))
