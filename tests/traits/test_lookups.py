"""One customer's events and identifiers found by index lookups give what the batch attribution gives."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accord.traits.lookups import customer_identifiers, customers_named, ensure_lookup_indexes, own_events
from tests.traits.conftest import AS_OF, days_ago


@pytest.fixture
def indexed(data):
    ensure_lookup_indexes(data.store)
    ensure_lookup_indexes(data.store)  # a second call (every server start) is a no-op
    return data


def _ids(rows):
    return sorted(r[0] for r in rows)


def test_events_by_identity_any_email_case_and_anonymous_id_each_once(indexed):
    data = indexed
    data.customer("c1", ("user_id", "u1"), ("email", "ann@example.com"), ("anonymous_id", "a1"))
    by_user = data.event(("user_id", "u1"), "Page", days_ago(1))
    by_email = data.event(("email", "Ann@Example.COM"), "open", days_ago(2))
    both = data.event(("user_id", "u1"), "Page", days_ago(3), anonymous_id="a1")
    by_anonymous = data.event(None, "Page", days_ago(4), anonymous_id="a1")
    rows = own_events(data.store, customer_identifiers(data.store, "c1"), ["event_id", "ts"], AS_OF)
    assert _ids(rows) == sorted([by_user, by_email, both, by_anonymous])


def test_case_and_identity_type_must_match_outside_emails(indexed):
    data = indexed
    data.customer("c1", ("user_id", "u1"))
    data.event(("user_id", "U1"), "Page", days_ago(1))  # user ids are case-sensitive
    data.event(("phone", "u1"), "Page", days_ago(1))  # same text, another identity type
    data.event(("email", "u1"), "Page", days_ago(1))
    assert own_events(data.store, customer_identifiers(data.store, "c1"), ["event_id", "ts"], AS_OF) == []


def test_the_time_window_bounds_both_ends(indexed):
    data = indexed
    data.customer("c1")
    old = data.event(("user_id", "c1"), "Page", days_ago(10))
    inside = data.event(("user_id", "c1"), "Page", days_ago(5))
    data.event(("user_id", "c1"), "Page", AS_OF + timedelta(hours=1))  # after `until`
    rows = own_events(data.store, {("user_id", "c1")}, ["event_id", "ts"], AS_OF, since=days_ago(7))
    assert _ids(rows) == [inside]
    assert _ids(own_events(data.store, {("user_id", "c1")}, ["event_id", "ts"], AS_OF)) == sorted([old, inside])


def test_customers_named_by_identifiers_exactly(indexed):
    data = indexed
    data.customer("c1", ("email", "ann@example.com"), ("user_id", "ann@example.com"))
    data.customer("c2", ("email", "ann@example.com"))  # a shared household email names both
    data.customer("c3", ("user_id", "bob"))
    assert customers_named(data.store, [("email", "ann@example.com")]) == {"c1", "c2"}
    assert customers_named(data.store, [("user_id", "ann@example.com"), ("user_id", "bob")]) == {"c1", "c3"}
    assert customers_named(data.store, [("phone", "bob")]) == set()
