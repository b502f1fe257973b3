"""Event collection, compatible with Segment's HTTP Tracking API (/v1/track, /v1/batch, ...).

A 200 ``{"success": true}`` means every message of the request is committed to the store.
Limits as Segment's: 32 KB per message, 500 KB per batch (413 beyond).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from accord.api.auth import ApiKey, allowed_roles, check_key, require_role
from accord.api.deps import StoreWorkerDep
from accord.api.errors import ApiError
from accord.api.fast_routes import FastRequest, FastRoutes, Handler
from accord.api.messages import (
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
    MESSAGE_TYPES,
    collect_batch,
    collect_one,
    now_utc,
    read_json,
)
from accord.api.models import Error, Success
from accord.api.store_worker import StoreWorker

router = APIRouter(prefix="/v1", tags=["collect"])
WriteKey = Annotated[ApiKey, Depends(require_role("write", allow_basic=True))]

_SUCCESS = b'{"success":true}'
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Error, "description": "Body is not valid JSON (or not valid gzip)"},
    401: {"model": Error, "description": "No API key, or an unknown one"},
    403: {"model": Error, "description": "The key's role may not collect events"},
    413: {"model": Error, "description": "Over 32 KB per message or 500 KB per batch"},
    415: {"model": Error, "description": "Unsupported Content-Encoding"},
    422: {"model": Error, "description": "A message breaks the spec; the message names the field"},
    500: {"model": Error, "description": "Not stored (a bug or a store failure; see the server log)"},
}


def _body_spec(schema: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}}


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than ``limit`` bytes before reading them all."""
    return await limited_body(request.headers.get("content-length"), request.stream(), limit)


async def limited_body(length: str | None, chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The body from ``chunks``, refused (413) when its declared ``length`` or what arrives exceeds ``limit``."""
    if length is not None and length.isdigit() and int(length) > limit:
        raise ApiError(413, f"body is {int(length)} bytes; the limit is {limit // 1024} KB")
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"body is larger than {limit // 1024} KB")
        parts.append(chunk)
    return b"".join(parts)


def _single(type_: str) -> Callable[..., Awaitable[Response]]:
    async def collect(request: Request, key: WriteKey, worker: StoreWorkerDep) -> Response:
        received_at = now_utc()
        body = await read_body(request, MAX_EVENT_BYTES)
        message = read_json(body, request.headers.get("content-encoding"), MAX_EVENT_BYTES)
        await worker.write(collect_one(message, type_, received_at))
        return Response(_SUCCESS, media_type="application/json")

    collect.__name__ = f"collect_{type_}"
    return collect


_WRITE_ROLES = allowed_roles("write")


def fast_collect(type_: str | None) -> Handler:
    """``POST /v1/{type_}`` (None: ``/v1/batch``) as ``fast_routes`` serves it: the same key check (the
    write key as Bearer or as Segment's Basic user name), the same limits, rows and answer."""
    limit = MAX_EVENT_BYTES if type_ is not None else MAX_BATCH_BYTES

    async def handler(state: Any, request: FastRequest, _: str) -> dict[str, bool]:
        received_at = now_utc()
        check_key(request.header(b"authorization"), state.api_keys, _WRITE_ROLES, allow_basic=True)
        body = await limited_body(request.header(b"content-length"), request.chunks(), limit)
        payload = read_json(body, request.header(b"content-encoding"), limit)
        worker: StoreWorker = state.store_worker
        await worker.write(collect_one(payload, type_, received_at) if type_ is not None
                           else collect_batch(payload, received_at))
        return {"success": True}

    return handler


def install_fast_routes(routes: FastRoutes) -> None:
    """Answer collection in front of FastAPI (its routes above stay declared for the spec and /docs)."""
    for type_ in MESSAGE_TYPES:
        routes.add("POST", f"/v1/{type_}", fast_collect(type_))
    routes.add("POST", "/v1/batch", fast_collect(None))


for _type in MESSAGE_TYPES:
    router.add_api_route(
        f"/{_type}", _single(_type), methods=["POST"], response_model=Success, responses=_ERRORS,
        summary=f"Collect one {_type} message", openapi_extra=_body_spec(f"{_type.capitalize()}Message"),
    )


@router.post("/batch", response_model=Success, responses=_ERRORS, summary="Collect a batch of messages",
             openapi_extra=_body_spec("Batch"))
async def collect_batch_endpoint(request: Request, key: WriteKey, worker: StoreWorkerDep) -> Response:
    received_at = now_utc()
    body = await read_body(request, MAX_BATCH_BYTES)
    payload = read_json(body, request.headers.get("content-encoding"), MAX_BATCH_BYTES)
    await worker.write(collect_batch(payload, received_at))
    return Response(_SUCCESS, media_type="application/json")
