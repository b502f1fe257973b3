"""The decision API: offers, ``POST /v1/decide``, outcomes and stock.

``POST /v1/decide`` takes a customer as any identifier (``email:ada@example.com``,
``customer_id:cus_00000042``, ...) or an anonymous visitor (``anonymous_id:...``) and a context,
and answers the ranked offers with score, policy, propensity and explanation. Decisions are
logged with a group commit: a writer thread with its own store connection writes the pending ones
every 50 ms and at shutdown, so answering never waits for a disk flush; an outcome is stored only
once its decision is written (docs/decisions.md, Latency).

``POST /v1/decide`` is the hot route, so it is served by a handler of its own (``DecideHandler``),
which the app calls in front of FastAPI's routing (``api/fast_routes.py``): the key is checked and
the body validated against ``DecideBody`` in one pass over the bytes (pydantic's JSON mode). The
OpenAPI operation still comes from the endpoint's signature, and errors are the same JSON
``{code, message}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from accord.api.auth import ApiKey, allowed_roles, check_key, require_role
from accord.api.deps import StoreWorkerDep
from accord.api.errors import ApiError, JsonResponse
from accord.api.fast_routes import FastRequest, FastRoutes
from accord.api.models import Error
from accord.api.routers.profiles import parse_ref, resolve_ref
from accord.api.store_worker import StoreWorker
from accord.config import ProjectConfig
from accord.decisions.engine import DecideRequest, DecisionEngine, UnknownCustomer
from accord.decisions.log import LogWriter, OutcomeError, read_decision, record_outcome
from accord.decisions.offers import OfferError, delete_offer, save_offer, set_stock, validate_offer
from accord.store import Store
from accord.traits.lookups import ensure_lookup_indexes

log = logging.getLogger("accord.api")
FLUSH_SECONDS = 0.05

# Deciding and reading: the serving application's read key, or a marketer. Outcomes: also the
# collection (ingest) key that sends the site's events. Changing offers and stock: marketers.
DECIDE_ROLES = allowed_roles("read", "marketer")
ReadKey = Annotated[ApiKey, Depends(require_role("read", "marketer"))]
FeedbackKey = Annotated[ApiKey, Depends(require_role("read", "ingest", "marketer"))]
MarketerKey = Annotated[ApiKey, Depends(require_role("marketer"))]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DecideContext(_Body):
    channel: str | None = Field(None, max_length=100, examples=["web"])
    placement: str | None = Field(None, max_length=100, examples=["homepage_hero"])
    device: str | None = Field(None, max_length=100, examples=["mobile"])


class DecideBody(_Body):
    customer: str = Field(..., min_length=3, max_length=500,
                          description="ID_TYPE:VALUE: customer_id:…, email:…, phone:…, user_id:…, an external id, "
                                      "or anonymous_id:… for a visitor")
    context: DecideContext = Field(default_factory=DecideContext)
    limit: int | None = Field(None, ge=1, le=100, description="At most this many offers (and decisions.max_offers)")


class Explanation(BaseModel):
    rules: list[str]
    features: list[dict[str, Any]]
    exploration: bool


class DecidedOffer(BaseModel):
    offer_id: str
    score: float | None
    policy: str
    propensity: float
    explanation: Explanation
    content: dict[str, Any]


class DecideResponse(BaseModel):
    decision_id: str
    customer_id: str | None
    policy: str
    personalized: bool
    offers: list[DecidedOffer]
    experiment: dict[str, str | None] | None = None
    notes: list[str] = []


class OutcomeBody(_Body):
    offer_id: str | None = Field(None, description="The offer the outcome is about; null for the decision as a whole")
    shown: bool = False
    clicked: bool = False
    converted: bool = False
    revenue: float | None = None
    occurred_at: datetime | None = None


class StockBody(_Body):
    stock: int = Field(..., ge=0, le=2**63 - 1)  # BIGINT in the store


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Error, "description": "Malformed identifier"},
    401: {"model": Error, "description": "No API key, or an unknown one"},
    403: {"model": Error, "description": "The key's role may not call this endpoint (decide: read or marketer; "
                                         "outcomes: also ingest; offers and stock: marketer; admin: all)"},
    404: {"model": Error, "description": "No such customer, decision or offer"},
    422: {"model": Error, "description": "The body does not validate; the message names the field"},
}


def _subject(store: Store, ref: str, region: str) -> tuple[str | None, str | None, bool]:
    """(customer_id, anonymous_id, whether the engine must still check the customer id): an anonymous
    id no customer is linked to is an anonymous visitor. A ``customer_id:`` reference is checked by the
    engine in the query that reads the customer's facts (one round trip instead of three)."""
    id_type, value = parse_ref(ref)
    if id_type == "customer_id":
        return value, None, True
    if id_type != "anonymous_id":
        return resolve_ref(store, id_type, value, region)[0], None, False
    row = store.fetchone("SELECT MIN(customer_id) FROM customer_identifiers WHERE id_type = 'anonymous_id' "
                         "AND value = ?", (value,))
    if row and row[0]:
        return row[0], value, False
    try:
        return resolve_ref(store, id_type, value, region)[0], value, False
    except ApiError as exc:
        if exc.status == 404:
            return None, value, False
        raise


def _is_json(content_type: str | None) -> bool:
    """application/json or any application/*+json, as FastAPI reads JSON bodies."""
    main, _, sub = (content_type or "").partition(";")[0].strip().lower().partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


def _body_error(kind: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": kind, "loc": ("body",), "msg": message, "input": None}])


class DecideHandler:
    """Answers ``POST /v1/decide`` (what FastAPI would do for its signature, without its per-request
    dependency solving): the key's role, then the body, then the decision.

    The decision is made on the store worker's reader threads, not on the event loop: on a busy
    machine the store's answer can take milliseconds to come, and the loop keeps taking requests
    meanwhile (measured: deciding on the loop cut CPU per request by a fifth but tripled the median
    latency at load 3 to 4)."""

    def __init__(self, engine: DecisionEngine, region: str):
        self.engine, self.region = engine, region

    def decide(self, store: Store, body: DecideBody) -> dict[str, Any]:
        customer_id, anonymous_id, check = _subject(store, body.customer, self.region)
        ctx = body.context
        req = DecideRequest(customer_id, anonymous_id, ctx.channel, ctx.placement, ctx.device, body.limit,
                            check_customer=check)
        try:
            return self.engine.decide(store, req, write=False).as_response()
        except UnknownCustomer as exc:
            raise ApiError(404, str(exc)) from None

    async def __call__(self, request: Request) -> Response:
        """The FastAPI route's answer (requests reach it when ``fast_routes`` is off)."""
        check_key(request.headers.get("authorization"), request.app.state.api_keys, DECIDE_ROLES)
        raw = await request.body()
        body = parse_decide_body(raw, request.headers.get("content-type"))
        return JsonResponse(await self.answer(request.app.state.store_worker, body))

    async def fast(self, state: Any, request: FastRequest, _: str) -> dict[str, Any]:
        """The same answer, served by ``fast_routes`` in front of FastAPI."""
        check_key(request.header(b"authorization"), state.api_keys, DECIDE_ROLES)
        raw = await request.body()
        return await self.answer(state.store_worker, parse_decide_body(raw, request.header(b"content-type")))

    async def answer(self, worker: StoreWorker, body: DecideBody) -> dict[str, Any]:
        # Deciding only reads (the log writer writes), so it never waits behind a collection commit on
        # the store thread, and decisions for different customers run in parallel.
        return await worker.read(lambda store: self.decide(store, body))


def parse_decide_body(raw: bytes, content_type: str | None) -> DecideBody:
    """The body validated against ``DecideBody`` in one pass over the bytes; RequestValidationError
    (a 422 naming the field) as FastAPI would raise for the route's signature."""
    if not raw:
        raise _body_error("missing", "Field required")
    if not _is_json(content_type):
        raise _body_error("content_type", "expected a JSON body (Content-Type: application/json)")
    try:
        return DecideBody.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
                                     ) from None


def _served_by(handler: Callable[[Request], Awaitable[Response]]) -> type[APIRoute]:
    """An APIRoute answered by ``handler``: FastAPI still builds the OpenAPI operation (body model,
    key scheme, responses) from the endpoint's signature, but requests go straight to the handler."""

    class Route(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
            return handler

    return Route


def _purchase_indexes(store: Store) -> None:
    """DuckDB: the events indexes the already-bought guardrail looks purchases up by (one per identifier;
    without them each lookup scans the events). PostgreSQL's come with the schema."""
    if store.dialect != "duckdb":
        return
    try:
        ensure_lookup_indexes(store)
    except Exception:  # noqa: BLE001 - decisions still work, reading purchases by scan
        log.exception("decisions: could not create the events indexes; purchase lookups will scan")


def make_router(cfg: ProjectConfig, fast_routes: FastRoutes | None = None) -> APIRouter:
    """The decision routes for this project (the engine keeps offers, model and posteriors in memory);
    ``POST /v1/decide`` is also added to ``fast_routes`` (the app's, served in front of FastAPI)."""
    settings = cfg.decisions
    engine = DecisionEngine(settings)
    handler = DecideHandler(engine, cfg.identity.default_region)
    if fast_routes is not None:
        fast_routes.add("POST", "/v1/decide", handler.fast)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The log writer has a connection of its own, so a decision never waits behind a commit; it also
        # keeps the engine's catalog fresh (read at start, so the first request does not import LightGBM).
        if settings.guardrails.already_bought_days:
            await app.state.store_worker.call(_purchase_indexes)
        writer = LogWriter(engine.log, cfg.store_url(), FLUSH_SECONDS, housekeeping=engine.refresh_ahead)
        await asyncio.to_thread(writer.start)
        try:
            yield
        finally:
            await asyncio.to_thread(writer.stop)

    router = APIRouter(tags=["decisions"], lifespan=lifespan)

    async def decide(request: Request, body: DecideBody, key: ReadKey) -> JsonResponse:
        # The operation's signature for the spec; DecideHandler answers (and would, called from here).
        return await handler(request)  # type: ignore[return-value]

    router.add_api_route("/v1/decide", decide, methods=["POST"], response_model=DecideResponse, responses=_ERRORS,
                         summary="Ranked offers for a customer in a context, with explanations",
                         route_class_override=_served_by(handler))

    @router.get("/v1/decisions/{decision_id}", responses=_ERRORS, summary="A logged decision with its outcomes")
    async def get_decision(decision_id: Annotated[str, Path(max_length=100)], key: ReadKey,
                           worker: StoreWorkerDep) -> JsonResponse:
        def run(store: Store) -> dict[str, Any]:
            engine.log.ensure_written(store, decision_id)
            found = read_decision(store, decision_id)
            if found is None:
                raise ApiError(404, f"no decision {decision_id!r}")
            return found

        return JsonResponse(await worker.call(run))

    @router.post("/v1/decisions/{decision_id}/outcome", status_code=201, responses=_ERRORS,
                 summary="Report what happened: shown, clicked, converted, revenue")
    async def post_outcome(decision_id: Annotated[str, Path(max_length=100)], body: OutcomeBody, key: FeedbackKey,
                           worker: StoreWorkerDep) -> JsonResponse:
        def run(store: Store) -> dict[str, Any]:
            # An outcome is only ever stored for a decision that is in the log: wait for (or do) its write.
            engine.log.ensure_written(store, decision_id)
            try:
                outcome_id = record_outcome(store, decision_id, body.offer_id, shown=body.shown, clicked=body.clicked,
                                            converted=body.converted, revenue=body.revenue,
                                            occurred_at=body.occurred_at)
            except OutcomeError as exc:
                raise ApiError(404, str(exc)) from None
            return {"outcome_id": outcome_id, "decision_id": decision_id}

        return JsonResponse(await worker.call(run), status_code=201)

    @router.get("/v1/offers", responses=_ERRORS, summary="Every offer, from accord.yaml and from the API")
    async def list_offers(key: ReadKey, worker: StoreWorkerDep) -> JsonResponse:
        def run(store: Store) -> dict[str, Any]:
            engine.refresh(store, force=True)
            return {"offers": [o.as_dict() for o in engine.offers]}

        return JsonResponse(await worker.call(run))

    @router.get("/v1/offers/{offer_id}", responses=_ERRORS, summary="One offer")
    async def get_offer(offer_id: str, key: ReadKey, worker: StoreWorkerDep) -> JsonResponse:
        def run(store: Store) -> dict[str, Any]:
            engine.refresh(store, force=True)
            for o in engine.offers:
                if o.id == offer_id:
                    return o.as_dict()
            raise ApiError(404, f"no offer {offer_id!r}")

        return JsonResponse(await worker.call(run))

    @router.post("/v1/offers", status_code=201,
                 responses={**_ERRORS, 200: {"description": "An API offer with this id was replaced"},
                            409: {"model": Error, "description": "The id belongs to an offer in accord.yaml"}},
                 summary="Create or replace an offer (id, content, eligibility, priority, margin, inventory, "
                         "validity, channels)")
    async def post_offer(request: Request, key: MarketerKey, worker: StoreWorkerDep) -> JsonResponse:
        try:
            data = await request.json()
        except ValueError:
            raise ApiError(400, "body: not valid JSON") from None
        try:
            spec = validate_offer(data)
        except OfferError as exc:
            raise ApiError(422, str(exc)) from None

        def run(store: Store) -> bool:
            try:
                created = save_offer(store, settings, spec)
            except OfferError as exc:
                raise ApiError(409, str(exc), code="conflict") from None
            engine.invalidate()
            return created

        created = await worker.call(run)
        return JsonResponse({**spec.model_dump(mode="json"), "origin": "api"}, status_code=201 if created else 200)

    @router.delete("/v1/offers/{offer_id}", responses=_ERRORS, summary="Delete an offer made through the API")
    async def remove_offer(offer_id: str, key: MarketerKey, worker: StoreWorkerDep) -> JsonResponse:
        def run(store: Store) -> bool:
            found = delete_offer(store, offer_id)
            engine.invalidate()
            return found

        if not await worker.call(run):
            raise ApiError(404, f"no offer {offer_id!r} made through the API (offers in accord.yaml are changed there)")
        return JsonResponse({"deleted": offer_id})

    @router.put("/v1/inventory/{item}", responses=_ERRORS, summary="Set the stock of an inventory item")
    async def put_stock(item: str, body: StockBody, key: MarketerKey, worker: StoreWorkerDep) -> JsonResponse:
        await worker.call(lambda store: set_stock(store, item, body.stock))
        return JsonResponse({"item": item, "stock": body.stock})

    return router
