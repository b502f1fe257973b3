"""Privacy requests over HTTP: consent per purpose, export (access), erasure, receipts and the access audit.

``PUT /v1/profiles/{ref}/consent`` records decisions (steward, or an ingest key for a preference
centre); ``GET`` the same path shows the current consent. ``GET /v1/privacy/{ref}/export`` and
``POST /v1/privacy/{ref}/erase`` are steward requests; every one is logged with the key and the
``X-Accord-Purpose`` header.
"""

from __future__ import annotations

import asyncio

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from accord.api.auth import ApiKey, require_role
from accord.api.deps import StoreWorkerDep
from accord.api.errors import ApiError, JsonResponse
from accord.api.models import Error
from accord.privacy.access import access_entries, log_api_access
from accord.privacy.consent import ConsentError, current_consent, set_consent
from accord.privacy.erasure import erase, receipts
from accord.privacy.export import export_person, to_json, to_zip
from accord.privacy.settings import PrivacySettings
from accord.privacy.subject import SubjectError, resolve_subject
from accord.store.backend import Store

router = APIRouter(tags=["privacy"])
StewardKey = Annotated[ApiKey, Depends(require_role("steward"))]
ConsentWriteKey = Annotated[ApiKey, Depends(require_role("steward", "ingest"))]
ConsentReadKey = Annotated[ApiKey, Depends(require_role("read", "marketer"))]
Ref = Annotated[str, Path(description="customer_id:cus_00000042, email:ann@example.com, phone:+14155550100, "
                                      "user_id:u1, anonymous_id:a1 or an external id such as crm_id:C-17")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Error, "description": "Malformed identifier"},
    401: {"model": Error, "description": "No API key, or an unknown one"},
    403: {"model": Error, "description": "The key's role may not make this request"},
    404: {"model": Error, "description": "No customer has this identifier"},
    409: {"model": Error, "description": "The identifier names several customers; name one by customer id"},
    422: {"model": Error, "description": "A field is invalid; the message names it"},
}


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: str = Field(description="One of privacy.purposes, e.g. email_marketing")
    status: Literal["granted", "denied", "withdrawn"]
    lawful_basis: str | None = Field(None, description="Defaults to the purpose's configured basis")
    decided_at: datetime | None = Field(None, description="When the person decided; default: now")


class ConsentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decisions: list[Decision] = Field(min_length=1)
    source: str = Field("api", max_length=100, description="Where the decision was taken, e.g. preference_centre")


def _settings(request: Request) -> PrivacySettings:
    return getattr(request.app.state, "privacy_settings", None) or PrivacySettings()


def _customer(store: Store, ref: str, region: str) -> str:
    if ":" not in ref:
        raise ApiError(400, f"identifier {ref!r}: expected ID_TYPE:VALUE, e.g. customer_id:cus_00000042",
                       code="invalid_identifier")
    try:
        subject = resolve_subject(store, ref, region)
    except SubjectError as exc:
        raise ApiError(409 if "names" in str(exc) else 404, str(exc)) from None
    if subject.customer_id is None:
        raise ApiError(404, "no customer has this identifier")
    return subject.customer_id


@router.put("/v1/profiles/{ref}/consent", responses=_ERRORS, summary="Record consent decisions for a customer")
async def put_consent(request: Request, ref: Ref, body: ConsentBody, key: ConsentWriteKey,
                      worker: StoreWorkerDep) -> JsonResponse:
    settings, region = _settings(request), request.app.state.default_region

    def run(store: Store) -> dict[str, Any]:
        cid = _customer(store, ref, region)
        try:
            consent = set_consent(store, settings, cid, [d.model_dump() for d in body.decisions],
                                  body.source, f"key:{key.name}")
        except ConsentError as exc:
            raise ApiError(422, str(exc)) from None
        log_api_access(store, request, "consent.write", cid)
        return {"customer_id": cid, "consent": consent}

    return JsonResponse(await worker.call(run))


@router.get("/v1/profiles/{ref}/consent", responses=_ERRORS, summary="A customer's current consent per purpose")
async def get_consent(request: Request, ref: Ref, key: ConsentReadKey, worker: StoreWorkerDep) -> JsonResponse:
    settings, region = _settings(request), request.app.state.default_region

    def run(store: Store) -> dict[str, Any]:
        cid = _customer(store, ref, region)
        log_api_access(store, request, "consent.read", cid)
        return {"customer_id": cid, "consent": current_consent(store, settings, cid)}

    return JsonResponse(await worker.call(run))


@router.get("/v1/privacy/{ref}/export", responses=_ERRORS,
            summary="Everything held on a person (access request), as JSON or a zip of CSV files")
async def export(request: Request, ref: Ref, key: StewardKey, worker: StoreWorkerDep,
                 format: Annotated[Literal["json", "zip"], Query()] = "json") -> Response:
    region = request.app.state.default_region

    def run(store: Store) -> dict[str, Any]:
        if ":" not in ref:
            raise ApiError(400, f"identifier {ref!r}: expected ID_TYPE:VALUE, e.g. customer_id:cus_00000042",
                           code="invalid_identifier")
        try:
            data = export_person(store, ref, region)
        except SubjectError as exc:
            raise ApiError(409 if "names" in str(exc) else 404, str(exc)) from None
        log_api_access(store, request, "export", data["customer_ids"][0] if data["customer_ids"] else None, format)
        return data

    data = await worker.call(run)
    if format == "zip":
        return Response(to_zip(data), media_type="application/zip",
                        headers={"Content-Disposition": 'attachment; filename="export.zip"'})
    return Response(to_json(data), media_type="application/json")


@router.post("/v1/privacy/{ref}/erase", responses=_ERRORS,
             summary="Erase a person from every table; answers the receipt (counts per table, no PII)")
async def erase_person(request: Request, ref: Ref, key: StewardKey, worker: StoreWorkerDep) -> JsonResponse:
    region = request.app.state.default_region
    if ":" not in ref:
        raise ApiError(400, f"identifier {ref!r}: expected ID_TYPE:VALUE, e.g. customer_id:cus_00000042",
                       code="invalid_identifier")

    def run(store: Store) -> dict[str, Any]:
        try:
            receipt = erase(store, ref, actor=f"key:{key.name}", role=key.role, channel="api", region=region,
                            purpose=request.headers.get("X-Accord-Purpose"))
        except SubjectError as exc:
            raise ApiError(409 if "names" in str(exc) else 404, str(exc)) from None
        return receipt.as_dict()

    # The trait refresher must not write the person's traits back from a batch read before the erasure.
    refresher = getattr(request.app.state, "trait_refresher", None)
    if refresher is None:
        return JsonResponse(await worker.call(run))
    await asyncio.to_thread(refresher.pause)
    try:
        return JsonResponse(await worker.call(run))
    finally:
        refresher.resume()


@router.get("/v1/privacy/receipts/{receipt_id}", responses=_ERRORS, summary="An erasure receipt")
async def get_receipt(receipt_id: Annotated[str, Path(max_length=64)], key: StewardKey,
                      worker: StoreWorkerDep) -> JsonResponse:
    found = await worker.call(lambda store: receipts(store, receipt_id))
    if not found:
        raise ApiError(404, f"no erasure receipt {receipt_id!r}")
    return JsonResponse(found[0].as_dict())


@router.get("/v1/privacy/audit", responses=_ERRORS, summary="The access audit: who read or changed whose data")
async def audit(key: StewardKey, worker: StoreWorkerDep,
                customer_id: Annotated[str | None, Query(max_length=64)] = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> JsonResponse:
    rows = await worker.call(lambda store: access_entries(store, customer_id, limit=limit))
    return JsonResponse({"entries": rows})


def install(app: Any, cfg: Any) -> None:
    """Wire privacy into the app: these routes, the settings masking reads, suppression and consent in
    collection (``app.state.collect_hooks``)."""
    from accord.privacy.collection import install_collection_hooks
    from accord.privacy.settings import privacy_settings

    settings = privacy_settings(getattr(cfg, "privacy", None))
    app.state.privacy_settings = settings
    hooks = getattr(app.state, "collect_hooks", None)
    if hooks is not None:
        install_collection_hooks(hooks, settings, cfg.identity.default_region)
    app.include_router(router)
