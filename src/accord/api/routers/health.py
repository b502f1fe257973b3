"""GET /health: is the API up and can it reach its store (no key needed)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from accord import __version__
from accord.api.deps import StoreWorkerDep
from accord.api.errors import JsonResponse
from accord.api.models import Health
from accord.traits.refresher import RefresherStatus

router = APIRouter(tags=["health"])


class ServerHealth(Health):
    trait_refresher: RefresherStatus | None = None
    """The background trait refresher (null when traits.realtime.enabled is false)."""


@router.get("/health", response_model=ServerHealth,
            responses={503: {"model": ServerHealth, "description": "Store unreachable"}})
async def health(request: Request, worker: StoreWorkerDep) -> JsonResponse:
    dialect = request.app.state.store_dialect
    refresher = getattr(request.app.state, "trait_refresher", None)
    extra = {"trait_refresher": refresher.status().model_dump() if refresher is not None else None}
    try:
        await asyncio.wait_for(worker.call(lambda store: store.scalar("SELECT 1")), timeout=5)
    except Exception:  # any failure to reach the store is 'unavailable'  # noqa: BLE001
        return JsonResponse({"status": "unavailable", "store": dialect, "version": __version__, **extra},
                            status_code=503)
    return JsonResponse({"status": "ok", "store": dialect, "version": __version__, **extra})
