"""Adding the dashboard to the API app: its routes, static assets and sign-in redirects."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from accord.config import ProjectConfig
from accord.ui.deps import Forbidden, SignInRequired, UiState, login_url
from accord.ui.render import page
from accord.ui.routes import router


async def _sign_in(request: Request, exc: SignInRequired) -> Response:
    target = login_url(exc.next_path)
    if request.headers.get("hx-request"):  # htmx follows HX-Redirect, not a 303 inside a fragment
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def _forbidden(request: Request, exc: Forbidden) -> Response:
    return page(request, "error.html", exc.user, status=403, message=exc.message)


def include_ui(app: FastAPI, cfg: ProjectConfig) -> None:
    """Serve the dashboard at /ui (assets at /ui/static)."""
    app.state.ui = UiState(cfg)
    app.state.on_start.append(app.state.ui.prefetch_evidence)
    app.mount("/ui/static", StaticFiles(packages=[("accord.ui", "static")]), name="ui-static")
    app.include_router(router)
    app.add_exception_handler(SignInRequired, _sign_in)  # type: ignore[arg-type]
    app.add_exception_handler(Forbidden, _forbidden)  # type: ignore[arg-type]
