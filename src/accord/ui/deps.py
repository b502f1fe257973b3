"""What the dashboard's routes receive: its state, the signed-in user, store access and form fields."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qs, quote

from fastapi import Depends, Request

from accord.api.store_worker import StoreWorker
from accord.config import ProjectConfig
from accord.store import Store
from accord.ui.data.quality import QualityCache
from accord.ui.data.review import EvidenceCache
from accord.ui.masking import Masker, masker_for
from accord.ui.roles import may_read_profiles, may_review, may_save_segments, may_view, sees_pii
from accord.ui.session import COOKIE, Sessions, UiUser, csrf_matches, load_secret

T = TypeVar("T")
log = logging.getLogger(__name__)
MAX_FORM_BYTES = 64 * 1024


class SignInRequired(Exception):
    """No valid session: the handler sends the browser to the sign-in page."""

    def __init__(self, next_path: str):
        super().__init__(next_path)
        self.next_path = next_path


class Forbidden(Exception):
    """Signed in, but the role may not do this."""

    def __init__(self, user: UiUser, message: str):
        super().__init__(message)
        self.user = user
        self.message = message


@dataclass
class UiState:
    cfg: ProjectConfig
    quality: QualityCache = field(default_factory=QualityCache)
    evidence: EvidenceCache = field(default_factory=EvidenceCache)
    sessions: Sessions | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    prefetching: set[asyncio.Task[Any]] = field(default_factory=set)

    def prefetch_evidence(self, worker: StoreWorker, skipped: set[tuple[str, str]] | None = None) -> None:
        """Explain the front of the review queue in the background (on a reader connection when the
        store has them), so a reviewer's first look at a pair finds its waterfall ready. Runs when the
        server starts and after each review decision."""

        async def run() -> None:
            try:
                await worker.read(lambda store: self.evidence.prefetch(store, self.cfg, skipped))
            except Exception:  # noqa: BLE001 - a prefetch only saves time; the page explains on demand
                log.warning("explaining the review queue ahead failed", exc_info=True)

        task = asyncio.get_running_loop().create_task(run())
        self.prefetching.add(task)
        task.add_done_callback(self.prefetching.discard)

    @property
    def masker(self) -> Masker:
        return masker_for(self.cfg.privacy)

    def masker_for(self, user: UiUser) -> Masker | None:
        """None for roles that see personal data; else how to mask it for them."""
        return None if sees_pii(user.role) else self.masker


def ui_state(request: Request) -> UiState:
    return request.app.state.ui


async def sessions(request: Request) -> Sessions:
    """The cookie signer, made on first use (its secret may come from the store)."""
    state = ui_state(request)
    if state.sessions is None:
        async with state.lock:
            if state.sessions is None:
                secret = await store_call(request, load_secret)
                state.sessions = Sessions(secret)
    return state.sessions


async def store_call(request: Request, fn: Callable[[Store], T]) -> T:
    """Run ``fn(store)`` on the API's store thread."""
    worker: StoreWorker = request.app.state.store_worker
    return await worker.call(fn)


async def optional_user(request: Request) -> UiUser | None:
    user = (await sessions(request)).user(request.cookies.get(COOKIE), request.app.state.api_keys)
    return user if user is not None and may_view(user.role) else None


async def current_user(request: Request) -> UiUser:
    user = await optional_user(request)
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    return user


async def profile_reader(request: Request, user: Annotated[UiUser, Depends(current_user)]) -> UiUser:
    if not may_read_profiles(user.role):
        raise Forbidden(user, f"your key {user.name!r} has role {user.role!r}, which may not read customer "
                              "profiles; that needs admin, steward, analyst or read")
    return user


async def reviewer(request: Request, user: Annotated[UiUser, Depends(current_user)]) -> UiUser:
    if not may_review(user.role):
        raise Forbidden(user, f"your key {user.name!r} has role {user.role!r}; deciding review pairs needs "
                              "admin or steward")
    return user


async def segment_saver(request: Request, user: Annotated[UiUser, Depends(current_user)]) -> UiUser:
    if not may_save_segments(user.role):
        raise Forbidden(user, f"your key {user.name!r} has role {user.role!r}; saving segments needs "
                              "admin or marketer")
    return user


async def form_fields(request: Request) -> dict[str, str]:
    """An urlencoded form body as field -> last value."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def require_csrf(user: UiUser, request: Request, fields: dict[str, str]) -> None:
    """A change must carry this session's token (form field ``csrf`` or header X-CSRF-Token)."""
    if not csrf_matches(user, fields.get("csrf") or request.headers.get("x-csrf-token")):
        raise Forbidden(user, "this form has expired or did not come from the dashboard; reload the page and "
                              "try again")


def login_url(next_path: str) -> str:
    return f"/ui/login?next={quote(next_path, safe='')}"


User = Annotated[UiUser, Depends(current_user)]
ProfileReader = Annotated[UiUser, Depends(profile_reader)]
Reviewer = Annotated[UiUser, Depends(reviewer)]
SegmentSaver = Annotated[UiUser, Depends(segment_saver)]
State = Annotated[UiState, Depends(ui_state)]
Form = Annotated[dict[str, Any], Depends(form_fields)]
