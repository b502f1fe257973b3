"""``load_profile_context``: everything a condition reads about one customer, in the store's terms."""

from __future__ import annotations

from datetime import timedelta

from accord.segments.context import load_profile_context
from tests.segments.conftest import NOW, World


def test_the_context_holds_attributes_traits_consent_accounts_and_membership(world: World) -> None:
    world.customer("cus_1", attributes={"city": "Paris"}, traits={"orders_90d": 3, "tier": "gold", "vip": True},
                   consent={"email": "granted", "sms": "denied"}, accounts=["acme"])
    world.store.execute("INSERT INTO segment_membership (segment, customer_id, entered_at, entered_by) "
                        "VALUES ('buyers', 'cus_1', ?, 'batch')", (NOW,))
    ctx = load_profile_context(world.store, "cus_1", NOW, with_segments=True)
    assert (ctx.status, ctx.attributes, ctx.consent, ctx.accounts, ctx.segments) == (
        "active", {"city": "Paris"}, {"email": "granted", "sms": "denied"}, [("acme", "Acme Inc")], {"buyers"})
    assert ctx.traits == {"orders_90d": (3.0, None), "tier": (None, "gold"), "vip": (1.0, None)}


def test_events_come_through_every_identifier_once_and_only_inside_the_window(world: World) -> None:
    world.customer("cus_1", identifiers=[("user_id", "u1"), ("email", "ada@example.com"), ("anonymous_id", "a1")])
    world.event("by_user", ago=timedelta(hours=1), identity=("user_id", "u1"))
    world.event("by_email", ago=timedelta(hours=2), identity=("email", "ADA@example.com"))
    world.event("by_both", ago=timedelta(hours=3), identity=("user_id", "u1"), anonymous_id="a1")
    world.event("by_anon", ago=timedelta(hours=4), identity=("anonymous_id", "a1"), anonymous_id="a1")
    world.event("too_old", ago=timedelta(days=3), identity=("user_id", "u1"))
    world.event("future", ago=timedelta(hours=-1), identity=("user_id", "u1"))
    world.event("someone_else", ago=timedelta(hours=1), identity=("user_id", "u2"))
    ctx = load_profile_context(world.store, "cus_1", NOW, events_within=timedelta(days=1))
    assert sorted(e.event_id for e in ctx.events) == ["by_anon", "by_both", "by_email", "by_user"]


def test_an_unknown_customer_has_an_empty_context(world: World) -> None:
    ctx = load_profile_context(world.store, "cus_missing", NOW)
    assert (ctx.status, ctx.attributes, ctx.traits, ctx.events) == (None, {}, {}, [])
