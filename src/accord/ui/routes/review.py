"""The review queue (same / different / skip, keys s / d / k) and the identity audit that records it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from accord.errors import AccordError
from accord.store import Store
from accord.ui.data.review import backlog, decide, next_pair, recent_audit, side_by_side
from accord.ui.deps import Form, ProfileReader, Reviewer, State, require_csrf, store_call
from accord.ui.masking import Masker
from accord.ui.render import page

router = APIRouter()
MAX_SKIPPED = 200


def parse_skipped(text: str | None) -> set[tuple[str, str]]:
    """``a|b;a|b`` -> pairs (the pairs skipped in this sitting)."""
    pairs = set()
    for item in (text or "").split(";")[:MAX_SKIPPED]:
        a, sep, b = item.partition("|")
        if sep and a and b:
            pairs.add((a, b))
    return pairs


def format_skipped(pairs: set[tuple[str, str]]) -> str:
    return ";".join(f"{a}|{b}" for a, b in sorted(pairs))


def _pair_context(store: Store, skipped: set[tuple[str, str]], masker: Masker | None) -> dict[str, Any]:
    pair = next_pair(store, skipped)
    return {"pair": pair, "rows": side_by_side(store, pair.record_a, pair.record_b, masker) if pair else [],
            "backlog": backlog(store), "skipped": format_skipped(skipped), "skipped_count": len(skipped)}


@router.get("/review")
async def review_page(request: Request, user: ProfileReader, state: State, skipped: str | None = None) -> Response:
    masker = state.masker_for(user)
    ctx = await store_call(request, lambda store: _pair_context(store, parse_skipped(skipped), masker))
    return page(request, "review.html", user, flash=None, **ctx)


@router.get("/review/evidence")
async def review_evidence(request: Request, user: ProfileReader, state: State, a: str, b: str) -> Response:
    """The waterfall (loaded after the page: scoring the pair takes the model a moment)."""
    def read(store: Store) -> dict[str, Any]:
        try:
            return state.evidence.get(store, state.cfg, a, b)
        except AccordError as exc:
            return {"note": str(exc), "steps": [], "chart": None, "probability": None, "match_weight": None,
                    "model_version": None}

    return page(request, "_evidence.html", user, ev=await store_call(request, read))


@router.post("/review/decide")
async def review_decide(request: Request, user: Reviewer, state: State, fields: Form) -> Response:
    require_csrf(user, request, fields)
    a, b, choice = fields.get("record_a", ""), fields.get("record_b", ""), fields.get("choice", "")
    skipped = parse_skipped(fields.get("skipped"))
    masker = state.masker_for(user)

    def write(store: Store) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            kind = decide(store, a, b, choice, user.name)
        except AccordError as exc:
            return {"error": str(exc)}, _pair_context(store, skipped, masker)
        if kind is None:
            skipped.add((a, b))
        flash = {"record_a": a, "record_b": b, "choice": choice, "kind": kind, "reviewer": user.name}
        return flash, _pair_context(store, skipped, masker)

    flash, ctx = await store_call(request, write)
    state.prefetch_evidence(request.app.state.store_worker, skipped)
    if request.headers.get("hx-request"):
        return page(request, "_pair.html", user, flash=flash, **ctx)
    return RedirectResponse(f"/ui/review?{urlencode({'skipped': ctx['skipped']})}", status_code=303)


@router.get("/audit")
async def audit_page(request: Request, user: ProfileReader, state: State, kind: str | None = None,
                     actor: str | None = None) -> Response:
    masker = state.masker_for(user)
    events = await store_call(request, lambda store: recent_audit(store, masker, kind or None, actor or None))
    return page(request, "audit.html", user, events=events, kind=kind or "", actor=actor or "")
