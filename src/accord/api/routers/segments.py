"""The segments API, real-time segment updates on collection, and the webhook delivery thread.

``GET /v1/segments``, ``GET /v1/segments/{name}/members`` (cursor pages), ``POST
/v1/segments/preview``: marketer role (admin also passes). ``install(app, cfg)`` adds the routes,
registers the after-commit collection hook that re-decides the customers an event names
(``accord.segments.realtime``), and runs the webhook delivery thread for the app's lifetime.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from accord.api.auth import ApiKey, require_role
from accord.api.hooks import Committed, event_keys, identifier_owners
from accord.api.deps import StoreWorkerDep
from accord.api.errors import ApiError, JsonResponse
from accord.api.models import Error
from accord.errors import AccordError
from accord.segments.catalog import Segment, SegmentError, config_segments, load_catalog, settings_of
from accord.segments.membership import decode_cursor, members
from accord.store.backend import Store

log = logging.getLogger("accord.api")
MarketerKey = Annotated[ApiKey, Depends(require_role("marketer"))]
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Error, "description": "A cursor this API did not give"},
    401: {"model": Error, "description": "No API key, or an unknown one"},
    403: {"model": Error, "description": "The key's role may not use segments (needs marketer or admin)"},
    404: {"model": Error, "description": "No such segment"},
    422: {"model": Error, "description": "The condition is not valid; the message names the column"},
}


class SegmentInfo(BaseModel):
    name: str
    kind: str = Field(description="rule (a condition) or cluster (made by `accord segments cluster`)")
    origin: str = Field(description="config, saved or cluster")
    status: str = Field(description="active, retired, or 'not run yet' for a config segment never evaluated")
    members: int | None
    definition: str | None
    description: str | None
    requires_consent: list[str]
    realtime: bool
    last_evaluated_at: datetime | None


class SegmentList(BaseModel):
    segments: list[SegmentInfo]


class Member(BaseModel):
    customer_id: str
    entered_at: datetime
    via: str = Field(description="batch, realtime or cluster: what put the customer in")


class MemberPage(BaseModel):
    segment: str
    members: list[Member]
    next_cursor: str | None


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    condition: str = Field(max_length=20_000, description="The one-line form, e.g. orders_90d >= 2 and consent.email",
                           examples=["orders_90d >= 2 and count(event = 'Product Viewed', within = '24h') >= 3"])
    requires_consent: list[str] = Field(default_factory=list, max_length=20)
    sample: int = Field(10, ge=0, le=100)


class PreviewResult(BaseModel):
    condition: str
    count: int
    customers: int = Field(description="Active customers in all")
    sample: list[dict[str, Any]]


def _list(store: Store, configured: list[Segment]) -> dict[str, Any]:
    import json

    rows = store.fetchall(
        "SELECT name, kind, origin, status, members, definition, description, CAST(requires_consent AS TEXT), "
        "realtime, last_evaluated_at FROM segments ORDER BY status, name")
    items = [{"name": n, "kind": k, "origin": o, "status": s, "members": m, "definition": d, "description": desc,
              "requires_consent": json.loads(rc) if rc else [], "realtime": bool(rt), "last_evaluated_at": at}
             for n, k, o, s, m, d, desc, rc, rt, at in rows]
    known = {i["name"] for i in items}
    items += [{"name": s.name, "kind": s.kind, "origin": s.origin, "status": "not run yet", "members": None,
               "definition": s.definition, "description": s.description, "requires_consent": list(s.requires_consent),
               "realtime": s.realtime, "last_evaluated_at": None} for s in configured if s.name not in known]
    return {"segments": items}


def make_router(cfg: Any) -> APIRouter:
    configured = config_segments(cfg)  # a bad segments file fails at start, naming the file
    router = APIRouter(prefix="/v1/segments", tags=["segments"])

    @router.get("", response_model=SegmentList, responses=_ERRORS, summary="Every segment with its members count")
    async def list_segments(key: MarketerKey, worker: StoreWorkerDep) -> JsonResponse:
        return JsonResponse(_jsonable(await worker.call(lambda store: _list(store, configured))))

    @router.get("/{name}/members", response_model=MemberPage, responses=_ERRORS,
                summary="The segment's current members, by when they entered, a page at a time")
    async def segment_members(name: Annotated[str, Path(description="The segment's name")], key: MarketerKey,
                              worker: StoreWorkerDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                              cursor: Annotated[str | None, Query(description="next_cursor of the previous page")]
                              = None) -> JsonResponse:
        if cursor:
            try:
                decode_cursor(cursor)
            except AccordError as exc:
                raise ApiError(400, str(exc), code="invalid_cursor") from None

        def read(store: Store) -> dict[str, Any]:
            try:
                load_catalog(store, cfg, configured).get(name)
            except SegmentError as exc:
                raise ApiError(404, str(exc)) from None
            return members(store, name, limit, cursor)

        return JsonResponse(_jsonable(await worker.call(read)))

    @router.post("/preview", response_model=PreviewResult, responses=_ERRORS,
                 summary="How many customers a condition selects now, and a sample, without saving it")
    async def preview_segment(body: PreviewRequest, key: MarketerKey, worker: StoreWorkerDep) -> JsonResponse:
        from accord.segments.batch import preview

        def run(store: Store) -> dict[str, Any]:
            try:
                return preview(store, body.condition, sample=body.sample, requires_consent=body.requires_consent)
            except SegmentError as exc:
                raise ApiError(422, str(exc), code="invalid_condition") from None

        return JsonResponse(_jsonable(await worker.call(run)))

    return router


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def install(app: FastAPI, cfg: Any) -> None:
    """Segments in the API: routes, the real-time hook on collection, the webhook delivery thread."""
    from accord.segments.realtime import RealtimeSegments
    from accord.segments.webhooks import DeliveryWorker

    realtime = RealtimeSegments(cfg)
    app.state.realtime_segments = realtime  # the trait refresher re-decides through it (accord.traits.serving)
    router = make_router(cfg)
    hooks = getattr(app.state, "collect_hooks", None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        delivery = None
        if settings_of(cfg).webhooks:
            delivery = DeliveryWorker(cfg.store_url(), cfg)
            delivery.start()
            realtime.deliver = delivery.submit
        app.state.segments_delivery = delivery
        try:
            await app.state.store_worker.call(realtime.prepare)
        except Exception:  # noqa: BLE001 - another worker process may be syncing the same rows
            log.exception("segments: could not sync the configured segments into the store")
        try:
            yield
        finally:
            if delivery is not None:
                delivery.stop()

    if hooks is not None:
        realtime.busy = hooks.busy  # the trait refresher gives way while this hook works

    def after_commit(store: Store, committed: Committed) -> None:
        if not realtime.segments(store):  # no real-time segments: no customers to look up (cached 5 s)
            return
        with realtime.busy:
            realtime.after_commit(store, committed_customers(store, committed))

    router.lifespan_context = lifespan
    if hooks is not None and realtime.enabled:
        hooks.after_commit.append(after_commit)
    app.include_router(router)


def committed_customers(store: Store, committed: Committed) -> list[str]:
    """The active customers the committed events name now: by (identity type, value) and anonymous id
    (lookups the identifier index answers), those stitching just linked, each as its current id."""
    from accord.events.customers import current_ids

    ids = indexed_customers(store, {k for row in committed.events for k in event_keys(row)})
    ids += [s.customer_id for s in committed.stitched if s.customer_id]
    return sorted({c for c in current_ids(store, ids).values() if c})


def indexed_customers(store: Store, keys: set[tuple[str, str]], chunk: int = 500) -> list[str]:
    """Every customer the identifier index names for these (id_type, value) keys."""
    return sorted({c for found in identifier_owners(store, keys, chunk).values() for c in found})
