"""Templates and the page responses built from them."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from accord.ui.roles import may_read_profiles, may_review, may_save_segments, sees_pii
from accord.ui.session import UiUser

SECURITY_HEADERS = {
    # Scripts only from /ui/static: the pages carry no inline script, so an injected one cannot run.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _pct(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value) * 100:.{digits}f}%"


def _num(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def _when(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("accord.ui", "templates"), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=_pct, num=_num, when=_when)
    return env


TEMPLATES = _environment()


def page(request: Request, template: str, user: UiUser | None, status: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with what every page needs: the user, their permissions, the CSRF token."""
    html = TEMPLATES.get_template(template).render(
        request=request, user=user, csrf=user.csrf if user else "", pii=bool(user and sees_pii(user.role)),
        can_review=bool(user and may_review(user.role)), can_read_profiles=bool(user and may_read_profiles(user.role)),
        can_save_segments=bool(user and may_save_segments(user.role)), path=request.url.path, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
