"""The probabilistic path of stitching: a new identity is resolved by identity's incremental resolution.

An identify whose identifiers name nobody yet is turned into a record of source ``api`` (keyed by its
userId, else its anonymousId) and handed to ``accord.identity.incremental.resolve_records``, which
scores it with the trained model and the deterministic rules against every stored record and gives
it a customer (an existing one it matches, or a new one), audited. A store with no resolved
identities yet (no trained model) answers None, and stitching creates the customer itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from accord.errors import AccordError
from accord.store.backend import Store

log = logging.getLogger("accord.events")

SOURCE = "api"


@dataclass(frozen=True)
class Placed:
    """Where the model path put an identify's record: its customer, and whether this call created it
    (a new customer holds no identifiers yet, so stitching indexes the message's without looking)."""

    customer_id: str
    created: bool = False


ModelMatch = Callable[[Store, dict[str, Any]], Placed | None]
"""(store, record) -> where the model puts the record, or None when it cannot decide."""

# Segment's reserved identify traits -> Accord's canonical record fields.
_TRAIT_FIELDS = {
    "firstName": "given_name", "first_name": "given_name", "lastName": "family_name", "last_name": "family_name",
    "name": "full_name", "email": "emails", "phone": "phones", "birthday": "date_of_birth",
    "company": "company",
}
_ADDRESS_FIELDS = {"street": "street", "city": "city", "state": "region", "postalCode": "postcode",
                   "postal_code": "postcode", "country": "country"}


def identify_record(record_key: str, traits: dict[str, Any], user_id: str | None) -> dict[str, Any]:
    """The record an identify call describes, in the canonical fields of people sources."""
    record: dict[str, Any] = {"source": SOURCE, "record_key": record_key}
    for trait, field in _TRAIT_FIELDS.items():
        value = traits.get(trait)
        if field == "company" and isinstance(value, dict):
            value = value.get("name")
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value).strip():
            record.setdefault(field, str(value).strip())
    address = traits.get("address")
    if isinstance(address, dict):
        for key, field in _ADDRESS_FIELDS.items():
            value = address.get(key)
            if isinstance(value, (str, int)) and str(value).strip():
                record.setdefault(field, str(value).strip())
    if user_id is not None:
        record["external_ids"] = {"user_id": user_id}
    return record


def person_fields(record: dict[str, Any]) -> bool:
    """Whether a record says enough about a person for the model to compare it (a name, email or phone)."""
    return any(record.get(f) for f in ("given_name", "family_name", "full_name", "emails", "phones"))


class IncrementalModel:
    """The model path through ``resolve_records`` for the project ``cfg`` (a ``ModelMatch``)."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    def __call__(self, store: Store, record: dict[str, Any]) -> Placed | None:
        try:
            from accord.identity.incremental import resolve_records
        except ImportError:  # identity without incremental resolution: stitching stays deterministic
            return None
        try:
            assignments = resolve_records(store, self.cfg, [record], run_id="api:identify", actor="api")
        except AccordError as exc:  # e.g. nothing resolved yet: no model to score against
            log.debug("model path skipped: %s", exc)
            return None
        if not assignments:
            return None
        return Placed(assignments[0].customer_id, assignments[0].outcome == "created")

    def warm(self, store: Store) -> None:
        """Load what the first identify would (the model, the term-frequency totals) on ``store``, the
        connection identify calls will use: a server calls it at start."""
        from accord.identity.placement import warm

        reason = warm(store, self.cfg)
        if reason is not None:
            log.info("real-time placement not ready yet: %s", reason)


def incremental_model(cfg: Any) -> IncrementalModel:
    """The model path through ``resolve_records`` for the project ``cfg``."""
    return IncrementalModel(cfg)
