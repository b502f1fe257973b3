"""Segments: sizes and trends, a builder with a live count, membership changes over time."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from accord.errors import AccordError
from accord.store import Store
from accord.ui.data.segments import TREND_DAYS, daily_members, preview_segment, save_and_evaluate, segment_detail, segment_sizes
from accord.ui.deps import Form, SegmentSaver, State, User, require_csrf, store_call
from accord.ui.render import page

router = APIRouter()


async def _list_page(request: Request, user: Any, status: int = 200, **form: Any) -> Response:
    def read(store: Store) -> dict[str, Any]:
        return {"segments": segment_sizes(store), "trends": daily_members(store, None)}

    data = await store_call(request, read)
    values = {"name": "", "condition": "", "description": "", "error": None, **form}
    return page(request, "segments.html", user, status=status, form=values, trend_days=TREND_DAYS, **data)


@router.get("/segments")
async def segments_page(request: Request, user: User) -> Response:
    return await _list_page(request, user)


@router.get("/segments/preview")
async def segment_preview(request: Request, user: User, state: State, condition: str = "") -> Response:
    """The builder's live count (htmx calls this as the condition is typed)."""
    if not condition.strip():
        return page(request, "_segment_preview.html", user, result=None, error=None)
    masker = state.masker_for(user)

    def read(store: Store) -> tuple[dict[str, Any] | None, str | None]:
        try:
            return preview_segment(store, condition, masker), None
        except AccordError as exc:
            return None, str(exc)

    result, error = await store_call(request, read)
    return page(request, "_segment_preview.html", user, result=result, error=error)


@router.post("/segments")
async def save(request: Request, user: SegmentSaver, state: State, fields: Form) -> Response:
    require_csrf(user, request, fields)
    name, condition = fields.get("name", "").strip(), fields.get("condition", "").strip()
    description = fields.get("description", "").strip()

    def write(store: Store) -> str | None:
        try:
            save_and_evaluate(store, state.cfg, name, condition, description)
        except AccordError as exc:
            return str(exc)
        return None

    error = await store_call(request, write)
    if error:
        return await _list_page(request, user, status=400, name=name, condition=condition, description=description,
                                error=f"segment {name!r}: {error}")
    return RedirectResponse(f"/ui/segments/{quote(name)}", status_code=303)


@router.get("/segments/{name}")
async def segment(request: Request, name: str, user: User, state: State) -> Response:
    masker = state.masker_for(user)
    detail = await store_call(request, lambda store: segment_detail(store, name, masker))
    if detail is None:
        return await _list_page(request, user, status=404, error=f"no segment {name!r}")
    return page(request, "segment.html", user, s=detail)
