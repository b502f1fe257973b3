"""Every API error is JSON ``{"code": ..., "message": ...}``, the shape Segment's SDKs read."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("accord.api")

_CODES = {
    400: "invalid_json",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    500: "internal_error",
    503: "unavailable",
}


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: object) -> bytes:
        return orjson.dumps(content)


class ApiError(Exception):
    """An error the client can act on: an HTTP status, a stable code and a message naming the field."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.headers = headers


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status_code=status, headers=headers)


async def _api_error(request: Request, exc: ApiError) -> JsonResponse:
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JsonResponse:
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such endpoint: {request.method} {request.url.path}; see /docs"
    return error_response(exc.status_code, _CODES.get(exc.status_code, "error"), message,
                          getattr(exc, "headers", None))


def _loc(loc: tuple[object, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else ("." if out else "") + str(p)
    return out or "(request)"


def validation_message(exc: RequestValidationError) -> str:
    """The 422's message: each error's field and what is wrong with it."""
    return "; ".join(f"{_loc(tuple(e['loc']))}: {e['msg']}" for e in exc.errors())


async def _validation_error(request: Request, exc: RequestValidationError) -> JsonResponse:
    return error_response(422, "invalid_request", validation_message(exc))


INTERNAL_ERROR = "internal error; the request was not stored (see the server log)"


async def _internal_error(request: Request, exc: Exception) -> JsonResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", INTERNAL_ERROR)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal_error)
