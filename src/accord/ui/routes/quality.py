"""Data quality per source and field."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from accord.ui.data.quality import mapped_fields, warnings
from accord.ui.deps import State, User, store_call
from accord.ui.render import page

router = APIRouter()


@router.get("/quality")
async def quality_page(request: Request, user: User, state: State) -> Response:
    report = await store_call(request, lambda store: state.quality.report(store, state.cfg))
    return page(request, "quality.html", user, report=report, warnings=warnings(report, state.cfg),
                mapped=mapped_fields(state.cfg))
