"""Customer search and the 360 view."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from accord.errors import AccordError
from accord.privacy.access import log_access
from accord.store import Store
from accord.ui.data.customer import customer_cards, customer_view, find_customers, timeline
from accord.ui.deps import ProfileReader, State, store_call
from accord.ui.render import page

router = APIRouter()


@router.get("/customers")
async def search(request: Request, user: ProfileReader, state: State, q: str = "") -> Response:
    region = state.cfg.identity.default_region
    masker = state.masker_for(user)

    def read(store: Store) -> tuple[list[dict[str, Any]], str | None]:
        ids, note = find_customers(store, q, region)
        return customer_cards(store, ids, masker), note

    cards, note = await store_call(request, read) if q.strip() else ([], None)
    if len(cards) == 1:
        return RedirectResponse(f"/ui/customers/{quote(cards[0]['customer_id'])}", status_code=303)
    return page(request, "customers.html", user, q=q, cards=cards, note=note)


@router.get("/customers/{customer_id}")
async def customer(request: Request, customer_id: str, user: ProfileReader, state: State) -> Response:
    masker = state.masker_for(user)

    def read(store: Store) -> dict[str, Any] | None:
        try:
            view = customer_view(store, customer_id, masker)
        except AccordError:
            return None
        # The access audit (issue #8): a profile read in the dashboard is logged as the API's are.
        log_access(store, actor=f"key:{user.name}", role=user.role, channel="ui", action="profile.read",
                   customer_id=view["customer_id"])
        return view

    view = await store_call(request, read)
    if view is None:
        return page(request, "customers.html", user, status=404, q=customer_id, cards=[],
                    note=f"no customer {customer_id!r}; customer ids look like cus_00000042")
    return page(request, "customer.html", user, c=view)


@router.get("/customers/{customer_id}/events")
async def more_events(request: Request, customer_id: str, user: ProfileReader, state: State,
                      cursor: str | None = None) -> Response:
    """A page of the timeline: the first (loaded after the 360 page), then older ones (htmx appends them)."""
    masker = state.masker_for(user)
    page_of = await store_call(request, lambda store: timeline(store, customer_id, cursor, masker))
    return page(request, "_events.html", user, customer_id=customer_id, timeline=page_of, cursor=cursor)
