"""Signing in with an API key, and out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from accord.api.auth import hash_key
from accord.ui.deps import Form, form_fields, optional_user, sessions
from accord.ui.render import page
from accord.ui.roles import VIEW_ROLES, may_view
from accord.ui.session import COOKIE, MAX_AGE_SECONDS

router = APIRouter()


def safe_next(target: str | None) -> str:
    """Only a dashboard path: never an open redirect to another site."""
    if target and target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/"


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    if await optional_user(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return page(request, "login.html", None, next=safe_next(next), error=None)


@router.post("/login")
async def login(request: Request, fields: Form) -> Response:
    target = safe_next(fields.get("next"))
    key = request.app.state.api_keys.get(hash_key(fields.get("api_key", "").strip()))
    if key is None:
        return page(request, "login.html", None, status=401, next=target,
                    error="unknown API key: use a key from accord.yaml (api.keys) or ACCORD_ADMIN_KEY / "
                          "ACCORD_READ_KEY")
    if not may_view(key.role):
        return page(request, "login.html", None, status=403, next=target,
                    error=f"key {key.name!r} has role {key.role!r}, which may not use the dashboard; it needs one "
                          f"of {', '.join(sorted(VIEW_ROLES))}")
    signer = await sessions(request)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, signer.cookie_for(hash_key(fields["api_key"].strip())), max_age=MAX_AGE_SECONDS,
                        httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/ui")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await form_fields(request)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response
