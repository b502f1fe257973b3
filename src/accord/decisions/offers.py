"""Offers: those in accord.yaml and those created through the API, with their compiled eligibility."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from accord.clock import utcnow
from accord.decisions.eligibility import EligibilityError, compile_eligibility
from accord.decisions.settings import DecisionsSettings, OfferSpec
from accord.errors import AccordError
from accord.store import Store


class OfferError(AccordError):
    """An offer sent through the API or the CLI is not valid, or clashes with another."""


@dataclass(frozen=True)
class Offer:
    """An offer ready to decide with: its spec, where it came from, and its parsed eligibility."""

    spec: OfferSpec
    origin: str  # 'config' or 'api'
    condition: Any = None

    @property
    def id(self) -> str:
        return self.spec.id

    def as_dict(self) -> dict[str, Any]:
        return {**self.spec.model_dump(mode="json"), "origin": self.origin}


def _ready(spec: OfferSpec, origin: str) -> Offer:
    condition = compile_eligibility(spec.eligibility, spec.id) if spec.eligibility else None
    return Offer(spec, origin, condition)


def validate_offer(data: Any) -> OfferSpec:
    """An OfferSpec from a mapping; OfferError names the field."""
    try:
        spec = OfferSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "(offer)"
        raise OfferError(f"offer {loc}: {str(err['msg']).removeprefix('Value error, ')}") from None
    try:
        _ready(spec, "api")  # the eligibility must parse
    except EligibilityError as exc:
        raise OfferError(str(exc)) from None
    return spec


def load_offers(store: Store, settings: DecisionsSettings) -> list[Offer]:
    """Every offer: accord.yaml's first, then the API's, each with its eligibility compiled."""
    offers = [_ready(spec, "config") for spec in settings.offers]
    for (definition,) in store.fetchall("SELECT CAST(definition AS TEXT) FROM offers ORDER BY offer_id"):
        offers.append(_ready(OfferSpec.model_validate(json.loads(definition)), "api"))
    return offers


def save_offer(store: Store, settings: DecisionsSettings, spec: OfferSpec, now: datetime | None = None) -> bool:
    """Create or replace an API offer; True when it was new. Offers from accord.yaml cannot be replaced."""
    if any(o.id == spec.id for o in settings.offers):
        raise OfferError(f"offer {spec.id!r} is defined in accord.yaml (decisions.offers); change it there")
    now = now or utcnow()
    text = spec.model_dump_json()
    with store.transaction():
        existed = store.fetchone("SELECT 1 FROM offers WHERE offer_id = ?", (spec.id,)) is not None
        if existed:
            store.execute(store.type_sql("UPDATE offers SET definition = CAST(? AS ${JSON}), updated_at = ? "
                                         "WHERE offer_id = ?"), (text, now, spec.id))
        else:
            store.execute(store.type_sql("INSERT INTO offers (offer_id, definition, created_at, updated_at) "
                                         "VALUES (?, CAST(? AS ${JSON}), ?, ?)"), (spec.id, text, now, now))
    return not existed


def delete_offer(store: Store, offer_id: str) -> bool:
    with store.transaction():
        found = store.fetchone("SELECT 1 FROM offers WHERE offer_id = ?", (offer_id,)) is not None
        store.execute("DELETE FROM offers WHERE offer_id = ?", (offer_id,))
    return found


def set_stock(store: Store, item: str, stock: int, now: datetime | None = None) -> None:
    """Set the stock count of an inventory item (offers link to it with ``inventory``)."""
    if stock < 0:
        raise OfferError(f"stock of {item!r}: expected a count of 0 or more; got {stock}")
    with store.transaction():
        store.execute("DELETE FROM offer_inventory WHERE item = ?", (item,))
        store.execute("INSERT INTO offer_inventory (item, stock, updated_at) VALUES (?, ?, ?)",
                      (item, int(stock), now or utcnow()))


def stock_levels(store: Store, items: list[str]) -> dict[str, int]:
    if not items:
        return {}
    marks = ", ".join("?" for _ in items)
    return {i: int(s) for i, s in store.fetchall(f"SELECT item, stock FROM offer_inventory WHERE item IN ({marks})",
                                                   items)}
