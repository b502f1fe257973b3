"""The one-line segment language: what parses to what, and errors that name the column."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accord.segments.conditions import (
    And,
    Attribute,
    Compare,
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
from accord.segments.dsl import SegmentSyntaxError, parse


def test_the_issue_example_parses_into_traits_consent_and_a_windowed_count() -> None:
    cond = parse("orders_90d >= 2 and consent.email and count(event = 'Product Viewed', within = '24h') >= 3")
    assert cond == And((Compare(Trait("orders_90d"), ">=", 2), Holds(Consent("email")),
                        Compare(EventCount("Product Viewed", None, timedelta(hours=24), "24h"), ">=", 3)))


def test_and_binds_tighter_than_or_and_not_tighter_than_and() -> None:
    assert parse("a or not b and c") == Or((Holds(Trait("a")), And((Not(Holds(Trait("b"))), Holds(Trait("c"))))))


def test_golden_attributes_are_recognised_and_trait_prefix_overrides() -> None:
    assert parse("city = 'Paris'") == Compare(Attribute("city"), "=", "Paris")
    assert parse("trait.city = 'Paris'") == Compare(Trait("city"), "=", "Paris")


def test_between_in_is_null_and_a_value_on_the_left() -> None:
    assert parse("x between 1 and 3") == And((Compare(Trait("x"), ">=", 1), Compare(Trait("x"), "<=", 3)))
    assert parse("country not in ('FR', \"IT\")") == Not(In(Attribute("country"), ("FR", "IT")))
    assert parse("email IS NOT NULL") == Not(IsNull(Attribute("email")))
    assert parse("2 < x") == Compare(Trait("x"), ">", 2)
    assert parse("in_account('Acme')") == Holds(InAccount("Acme"))
    assert parse("x = -1.5 or y <> 'it''s'") == Or((Compare(Trait("x"), "=", -1.5), Compare(Trait("y"), "!=", "it's")))


def test_the_text_form_reads_back_to_the_same_condition() -> None:
    text = "(vip or trait.city = 'a\\'b') and not count(type = 'page', within = '7d') >= 2 and email is not null"
    assert parse(str(parse(text))) == parse(text)


@pytest.mark.parametrize("text, message", [
    ("orders_90d >= ", "column 15: expected a value after '>=', got end of text"),
    ("city > 'a'", "column 6: text values take = or != only (ordering text depends on the database's collation); got '>'"),
    ("city", "column 1: attribute city is text: compare it (e.g. city = 'value') or write city is not null"),
    ("count(event = 'x')", "column 1: count(event = 'x') is a number: compare it, e.g. count(event = 'x') >= 1"),
    ("count(within = '3y') > 1", "column 16: expected a window such as '30m', '24h', '7d' or '2w'; got '3y'"),
    ("count(kind = 'x') > 1", "column 7: expected event, type or within in count(...), got 'kind'"),
    ("x = null", "column 5: comparisons with null are never true; write 'is null' or 'is not null'"),
    ("(x", "column 3: expected ')' to close the '(', got end of text"),
    ("x y", "column 3: expected 'and', 'or' or the end of the condition, got 'y'"),
    ("x in (1, 'a')", "column 1: the values of an 'in' list must all be text, all numbers or all true/false"),
    ("foo(1)", "column 1: unknown function 'foo'; known: count(event = ..., type = ..., within = ...), in_account('ID')"),
    ("x = 1 ; drop table", "column 7: unexpected character ';'"),
    ("", "column 1: the condition is empty; write e.g. orders_90d >= 2 and consent.email"),
])
def test_errors_name_the_column_and_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(SegmentSyntaxError) as exc:
        parse(text)
    assert str(exc.value) == message


def test_nesting_deeper_than_a_hundred_is_refused_not_a_crash() -> None:
    with pytest.raises(SegmentSyntaxError, match="column 401: conditions nest at most 100 deep"):
        parse("not " * 200 + "x")
