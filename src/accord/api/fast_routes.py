"""The hot routes, answered in front of FastAPI's routing.

``POST /v1/decide`` and ``GET /v1/profiles/{ref}`` are called hundreds of times a second. Through
FastAPI each request also pays for its middleware, the router's walk over every route, a Request,
the endpoint's dependencies and a Response object: about a third of a millisecond of CPU that
answers nothing. ``AccordApp`` (the app ``create_app`` returns) matches the method and path of these
routes itself and calls the same code their FastAPI routes call; every other request goes to
FastAPI unchanged. The FastAPI routes stay declared, so the OpenAPI spec and /docs are the same, and
so are the answers: the key is checked by ``auth.check_key``, errors are the same JSON
``{code, message}`` with the same status and headers, and an unexpected error is logged and
answered 500 as ``errors.py`` does.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from accord.api.errors import INTERNAL_ERROR, ApiError, validation_message

log = logging.getLogger("accord.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
_JSON_HEADERS = b"application/json"


class ClientGone(Exception):
    """The client disconnected before its body arrived: nobody is left to answer."""


class FastRequest:
    """What a hot route reads from its request: headers (ASGI gives their names in lower case) and
    the body, read when the route asks for it (after its key is checked)."""

    __slots__ = ("scope", "_receive")

    def __init__(self, scope: Scope, receive: Receive):
        self.scope, self._receive = scope, receive

    def header(self, name: bytes) -> str | None:
        """The first value of the header ``name`` (lower case), as Starlette's ``Headers.get``."""
        for key, value in self.scope["headers"]:
            if key == name:
                return value.decode("latin-1")
        return None

    async def body(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (a caller may stop reading, e.g. past a size limit)."""
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            yield message.get("body", b"")
            if not message.get("more_body", False):
                return


Handler = Callable[[Any, FastRequest, str], Awaitable[Any]]
"""``handler(app.state, request, path parameter)``: the answer's JSON content (status 200), or ApiError
or RequestValidationError."""


@dataclass(frozen=True)
class FastRoute:
    method: str
    path: str
    """Exact, or a prefix ending in '/' followed by one path segment (``/v1/profiles/{ref}``)."""
    handler: Handler


class FastRoutes:
    """The routes ``AccordApp`` answers itself. ``enabled`` False sends every request to FastAPI (the
    tests compare both ways)."""

    def __init__(self) -> None:
        self.enabled = True
        self._exact: dict[tuple[str, str], FastRoute] = {}
        self._segment: dict[tuple[str, str], FastRoute] = {}

    def add(self, method: str, path: str, handler: Handler) -> None:
        """Serve ``method path`` with ``handler``; ``path`` is exact, or ends in one ``{parameter}`` segment."""
        route = FastRoute(method, path, handler)
        if path.endswith("}"):
            prefix, _, param = path.rpartition("/{")
            if not param or "{" in prefix or "}" in param[:-1]:
                raise ValueError(f"fast route {path!r}: only a last segment may be a parameter")
            self._segment[(method, prefix + "/")] = route
        else:
            self._exact[(method, path)] = route

    def match(self, method: str, path: str) -> tuple[FastRoute, str] | None:
        """(route, the path parameter or '') for a request, as Starlette would match it: a parameter is
        one non-empty segment of the (decoded) path."""
        route = self._exact.get((method, path))
        if route is not None:
            return route, ""
        if not self._segment:
            return None
        prefix, _, rest = path.rpartition("/")
        if not rest:
            return None
        route = self._segment.get((method, prefix + "/"))
        return (route, rest) if route is not None else None


class AccordApp(FastAPI):
    """FastAPI, with the hot routes (``fast_routes``) answered before its middleware and router."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.fast_routes = FastRoutes()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[override]
        if scope["type"] == "http" and self.fast_routes.enabled and not self.root_path and not scope.get("root_path"):
            found = self.fast_routes.match(scope["method"], scope["path"])
            if found is not None:
                await _serve(self, found[0], found[1], scope, receive, send)
                return
        await super().__call__(scope, receive, send)


async def _serve(app: FastAPI, route: FastRoute, param: str, scope: Scope, receive: Receive, send: Send) -> None:
    headers: dict[str, str] | None = None
    try:
        status, content = 200, orjson.dumps(await route.handler(app.state, FastRequest(scope, receive), param))
    except ClientGone:
        return
    except ApiError as exc:
        status, content, headers = exc.status, _error(exc.code, exc.message), exc.headers
    except RequestValidationError as exc:
        status, content = 422, _error("invalid_request", validation_message(exc))
    except Exception:
        # As Starlette's ServerErrorMiddleware with errors.py's handler: log, answer 500, re-raise
        # (the server logs it too; a test client raises it).
        log.exception("unhandled error on %s %s", scope["method"], scope["path"])
        await _send(send, 500, _error("internal_error", INTERNAL_ERROR), None)
        raise
    await _send(send, status, content, headers)


def _error(code: str, message: str) -> bytes:
    return orjson.dumps({"code": code, "message": message})


async def _send(send: Send, status: int, content: bytes, headers: dict[str, str] | None) -> None:
    """The same status, headers (in the same order) and bytes as ``errors.JsonResponse``."""
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()] if headers else []
    raw.append((b"content-length", str(len(content)).encode("latin-1")))
    raw.append((b"content-type", _JSON_HEADERS))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": content})
