"""The batch SQL and the in-process evaluation select exactly the same customers, on both backends,
for random profiles and random conditions (the text form parsed again on the way)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.segments.conditions import (
    And,
    Attribute,
    Compare,
    Condition,
    Consent,
    EventCount,
    Holds,
    In,
    InAccount,
    IsNull,
    Not,
    Or,
    Trait,
)
from accord.segments.context import load_profile_context
from accord.segments.dsl import parse
from accord.segments.sql import compile_condition
from tests.segments.conftest import NOW, World

CITIES = ["Paris", "Rome", "paris", "Zürich"]
EVENTS = ["Product Viewed", "Order Completed"]
WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}

numbers = st.one_of(st.integers(-3, 5), st.sampled_from([0.5, 2.5, -1.0]))
trait_values = st.one_of(st.none(), numbers, st.booleans(), st.sampled_from(["gold", "silver", ""]),
                         st.just(float("nan")))
profile = st.fixed_dictionaries({
    "city": st.one_of(st.none(), st.sampled_from(CITIES)),
    "country": st.one_of(st.none(), st.sampled_from(["FR", "IT"])),
    "orders": trait_values,
    "tier": trait_values,
    "email_consent": st.one_of(st.none(), st.sampled_from(["granted", "denied", "withdrawn"])),
    "sms_consent": st.one_of(st.none(), st.sampled_from(["granted", "denied"])),
    "accounts": st.lists(st.sampled_from(["acme", "globex"]), unique=True, max_size=2),
    "events": st.lists(st.tuples(st.sampled_from(EVENTS + [None]), st.sampled_from(["track", "page"]),
                                 st.integers(-2, 60 * 24 * 9),  # minutes ago; negative: in the future
                                 st.sampled_from(["user", "email", "anon", "anon_only", "other"])), max_size=6),
})

count_refs = st.builds(
    lambda e, t, w: EventCount(event=e, type=t, within=WINDOWS.get(w), within_text=w),
    st.one_of(st.none(), st.sampled_from(EVENTS)), st.one_of(st.none(), st.sampled_from(["track", "page"])),
    st.one_of(st.none(), st.sampled_from(sorted(WINDOWS))))
trait_refs = st.sampled_from([Trait("orders"), Trait("tier"), Trait("missing")])
text_refs = st.sampled_from([Attribute("city"), Attribute("country"), Consent("email"), Consent("sms")])

leaves = st.one_of(
    st.builds(Compare, trait_refs, st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), numbers),
    st.builds(Compare, trait_refs, st.sampled_from(["=", "!="]), st.one_of(st.booleans(), st.sampled_from(["gold", ""]))),
    st.builds(Compare, text_refs, st.sampled_from(["=", "!="]), st.sampled_from(CITIES + ["FR", "granted", "denied"])),
    st.builds(Compare, count_refs, st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), st.integers(0, 3)),
    st.builds(lambda r, vs: In(r, tuple(vs)), text_refs, st.lists(st.sampled_from(CITIES + ["IT"]), min_size=1, max_size=3)),
    st.builds(lambda r, vs: In(r, tuple(vs)), trait_refs, st.lists(numbers, min_size=1, max_size=3)),
    st.builds(IsNull, st.one_of(trait_refs, text_refs)),
    st.builds(Holds, st.one_of(st.sampled_from([Consent("email"), Consent("sms"), InAccount("acme"),
                                                InAccount("Globex Inc"), InAccount("initech")]), trait_refs)),
)
conditions = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(lambda ps: And(tuple(ps)), st.lists(inner, min_size=2, max_size=3)),
        st.builds(lambda ps: Or(tuple(ps)), st.lists(inner, min_size=2, max_size=3)),
        st.builds(Not, inner)),
    max_leaves=6)


def _seed(world: World, people: list[dict]) -> None:
    for i, p in enumerate(people):
        cid = f"cus_{i:03d}"
        attributes = {k: p[k] for k in ("city", "country") if p[k] is not None}
        traits = {k: v for k, v in (("orders", p["orders"]), ("tier", p["tier"])) if v is not None}
        consent = {k: p[f"{k}_consent"] for k in ("email", "sms") if p[f"{k}_consent"] is not None}
        world.customer(cid, attributes=attributes, traits=traits, consent=consent, accounts=p["accounts"],
                       identifiers=[("user_id", f"u{i}"), ("email", f"p{i}@example.com"), ("anonymous_id", f"a{i}")])
        for j, (event, type_, minutes, how) in enumerate(p["events"]):
            identity = {"user": ("user_id", f"u{i}"), "email": ("email", f"P{i}@Example.com"),
                        "anon": ("user_id", f"u{i}"), "anon_only": ("anonymous_id", f"a{i}"),
                        "other": ("user_id", "nobody")}[how]
            anonymous = f"a{i}" if how in ("anon", "anon_only", "other") else None
            world.event(f"e{i}_{j}", ago=timedelta(minutes=minutes), event=event, type=type_, identity=identity,
                        anonymous_id=anonymous)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(people=st.lists(profile, min_size=1, max_size=5), conds=st.lists(conditions, min_size=1, max_size=4))
def test_batch_sql_and_in_process_evaluation_select_the_same_customers(world: World, people: list[dict],
                                                                      conds: list[Condition]) -> None:
    world.clear()
    _seed(world, people)
    store = world.store
    contexts = [load_profile_context(store, cid, NOW) for cid in world.customers]
    for cond in conds:
        reparsed = parse(str(cond))
        assert str(reparsed) == str(cond)
        sql, params = compile_condition(reparsed, store.dialect, NOW)
        in_sql = sorted(r[0] for r in store.fetchall(sql, params))
        in_process = sorted(ctx.customer_id for ctx in contexts if reparsed.evaluate(ctx))
        assert in_sql == in_process, f"{cond}: SQL {in_sql} vs in process {in_process}"
