"""The overview page: the shared signals, with charts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from accord.store import Store
from accord.ui.data.overview import overview
from accord.ui.data.quality import warnings
from accord.ui.data.segments import segment_sizes
from accord.ui.deps import State, User, store_call
from accord.ui.render import page

router = APIRouter()


@router.get("/")
async def overview_page(request: Request, user: User) -> Response:
    def read(store: Store) -> dict[str, Any]:
        return {**overview(store), "segments": segment_sizes(store)}

    return page(request, "overview.html", user, data=await store_call(request, read))


@router.get("/fragments/quality-warnings")
async def quality_warnings(request: Request, user: User, state: State) -> Response:
    """Loaded after the overview (the quality report takes a moment the first time after a run)."""
    report = await store_call(request, lambda store: state.quality.report(store, state.cfg))
    return page(request, "_quality_warnings.html", user, warnings=warnings(report, state.cfg),
                generated_at=report["generated_at"])
