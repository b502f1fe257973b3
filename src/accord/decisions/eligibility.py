"""Offer eligibility through the segment language: the one place decisions meet accord.segments.

``compile_eligibility`` parses an offer's condition once; ``load_context`` gathers what conditions
read for one customer; ``passes`` evaluates. Everything else in decisions goes through these three.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from accord.errors import AccordError, ConfigError
from accord.store import Store


class EligibilityError(ConfigError):
    """An offer's eligibility condition does not parse."""


def compile_eligibility(text: str, offer_id: str) -> Any:
    """The condition tree of ``text``; EligibilityError names the offer and the column."""
    from accord.segments.dsl import parse

    try:
        return parse(text)
    except AccordError as exc:
        raise EligibilityError(f"offer {offer_id!r}: eligibility: {exc}") from None


def load_context(store: Store, customer_id: str, now: datetime, conditions: Sequence[Any]) -> Any:
    """What ``conditions`` read about one customer (golden values, traits, consent, and events only
    as far back as the longest window they count over)."""
    from accord.segments.context import load_profile_context

    with_events = any(c.needs_events() for c in conditions)
    windows = [c.max_window() for c in conditions if c.needs_events()]
    within = None if not windows or any(w is None for w in windows) else max(windows)
    return load_profile_context(store, customer_id, now, events_within=within, with_events=with_events)


def reads_only_traits_and_consent(conditions: Sequence[Any]) -> bool:
    """True when no condition reads golden attributes, accounts or events: then the context can be
    built from the traits and consent the decision reads anyway (one round trip fewer)."""
    from accord.segments.conditions import Consent, Trait

    return all(isinstance(r, (Trait, Consent)) for c in conditions for r in c.references())


def context_from(customer_id: str, now: datetime, traits: dict[str, tuple[float | None, str | None]],
                 consent: dict[str, str]) -> Any:
    """A profile context holding only traits and consent (see ``reads_only_traits_and_consent``)."""
    from accord.segments.context import ProfileContext

    return ProfileContext(customer_id=customer_id, now=now, traits=dict(traits), consent=dict(consent))


def passes(condition: Any, context: Any) -> bool:
    return bool(condition.evaluate(context))


def describe(condition: Any) -> str:
    return str(condition)
