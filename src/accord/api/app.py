"""The FastAPI app: ``create_app(cfg)`` wires routers, auth, store access and error handlers."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from pydantic.json_schema import models_json_schema

from accord import __version__
from accord.api.auth import configured_keys, load_keys, sync_keys
from accord.api.errors import install_error_handlers
from accord.api.fast_routes import AccordApp
from accord.api.hooks import CollectHooks
from accord.api.messages import now_utc
from accord.api.models import MESSAGE_MODELS, Batch
from accord.api.routers import collect, decisions, health, privacy, profiles, segments
from accord.api.store_worker import StoreWorker, Stitcher
from accord.config import ProjectConfig, load_config
from accord.events import StitchRules
from accord.events.model import incremental_model
from accord.traits.serving import install as install_trait_refresher
from accord.ui import include_ui

log = logging.getLogger("accord.api")

CONFIG_ENV = "ACCORD_CONFIG"


def create_app(cfg: ProjectConfig, environ: Mapping[str, str] | None = None, *, sync_api_keys: bool = True
               ) -> FastAPI:
    """The API for the project ``cfg``; keys come from ``api.keys`` and ACCORD_*_KEY in ``environ``.

    ``sync_api_keys=False`` only loads the keys already in the store: ``accord serve`` syncs them
    once before starting several worker processes, so that the workers do not race to.
    """
    keys = configured_keys(cfg.api.model_extra, environ)  # a bad api.keys entry fails here, before serving
    store_url = cfg.store_url()

    stitcher = Stitcher(StitchRules.from_settings(cfg.identity, cfg.identity.default_region), incremental_model(cfg))
    hooks = CollectHooks()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = StoreWorker(store_url, stitcher, hooks)
        worker.start()
        try:
            app.state.store_worker = worker
            if sync_api_keys:
                app.state.api_keys = await worker.call(lambda store: sync_keys(store, keys, now_utc()))
            else:
                app.state.api_keys = await worker.call(load_keys)
            warm = getattr(stitcher.model, "warm", None)
            if warm is not None:  # the model and its frequencies loaded now, not by the first identify
                try:
                    await worker.call(warm)
                except Exception:  # serving goes on; the first identify loads them instead
                    log.exception("could not load the identity model ahead of the first identify")
            if not app.state.api_keys:
                log.warning("no API keys: set ACCORD_WRITE_KEY (or api.keys in accord.yaml); "
                            "until then every /v1 call answers 401")
            for on_start in app.state.on_start:  # background work once serving, e.g. the dashboard's
                on_start(worker)                 # review queue explained ahead
            yield
        finally:
            worker.stop()

    app = AccordApp(  # FastAPI, with the hot routes answered in front of it (fast_routes.py)
        title="Accord API",
        version=__version__,
        description="Segment-compatible event collection and golden profiles with lineage. "
                    "Errors are JSON {code, message}.",
        lifespan=lifespan,
    )
    app.state.default_region = cfg.identity.default_region  # profile lookups read phones as identity does
    app.state.store_dialect = "duckdb" if store_url.startswith("duckdb:") else "postgresql"
    app.state.on_start = []  # callables(store_worker) run when the store worker is up
    app.state.collect_hooks = hooks  # before/after-commit callbacks of collection (see api/hooks.py)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(collect.router)
    collect.install_fast_routes(app.fast_routes)
    app.include_router(profiles.router)
    app.fast_routes.add("GET", "/v1/profiles/{ref}", profiles.serve_profile)
    app.include_router(decisions.make_router(cfg, app.fast_routes))
    privacy.install(app, cfg)  # consent, export, erasure, audit routes; suppression and consent in collection
    segments.install(app, cfg)  # segment routes, real-time membership after collection, webhook delivery
    install_trait_refresher(app, cfg)  # traits recomputed as events arrive (after segments: it re-decides them)
    include_ui(app, cfg)  # the dashboard at /ui
    app.include_router(_settled_heap())  # last: its start runs after every other router's
    _declare_message_schemas(app)
    return app


def _settled_heap() -> APIRouter:
    """Once everything has started, move what start-up built (modules, pydantic's validators, models:
    some 250,000 objects) out of the collector's sight (``gc.freeze``). A full collection otherwise
    walks all of it, 150 ms of CPU in the middle of a request, the tail of every latency figure. The
    thresholds stay Python's: a larger youngest generation means fewer but longer pauses (5,000: 3.5 ms
    each, against 0.7 ms at 700)."""
    router = APIRouter()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()

    router.lifespan_context = lifespan
    return router


def app_from_environment() -> FastAPI:
    """For uvicorn's worker processes (``--workers N``): the project file is in $ACCORD_CONFIG."""
    return create_app(load_config(os.environ.get(CONFIG_ENV)), sync_api_keys=False)


def _declare_message_schemas(app: FastAPI) -> None:
    """Collection parses bodies by hand for speed; put their models into the spec's components."""
    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = base_openapi()
        models = [(m, "validation") for m in (*MESSAGE_MODELS.values(), Batch)]
        _, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")  # type: ignore[arg-type]
        spec.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
