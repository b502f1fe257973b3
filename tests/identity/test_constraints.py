"""Cannot-link tests: what counts as two different people, and what is one person written twice."""

from accord.identity.constraints import (
    dob_conflict,
    given_names_compatible,
    groups_conflict,
    names_conflict,
)


def test_a_day_month_swap_is_not_a_dob_conflict():
    # The POS writes 07/03/1984 (DD/MM); read by the US convention it becomes 1984-07-03.
    assert not dob_conflict("1984-03-07", "1984-07-03")


def test_a_one_digit_typo_in_a_dob_is_not_a_conflict():
    assert not dob_conflict("1984-03-07", "1984-03-08")
    assert not dob_conflict("1948-03-07", "1984-03-07")  # adjacent digits transposed


def test_birth_dates_no_swap_or_typo_explains_conflict():
    assert dob_conflict("1984-03-07", "1990-06-15")
    assert dob_conflict("1984-03-07", "1984-07-04")  # swapped and a day off: two changes
    assert dob_conflict("1984-03-13", "1985-03-14")


def test_bob_and_robert_may_merge():
    assert given_names_compatible("bob", "robert")
    assert not names_conflict(("bob", "smith"), ("robert", "smith"))


def test_two_nicknames_of_one_name_are_compatible():
    assert given_names_compatible("mike", "mick")


def test_two_formal_names_that_share_a_nickname_are_different_people():
    assert not given_names_compatible("samuel", "samantha")


def test_german_and_french_diminutives_the_nicknames_package_lacks_are_compatible():
    assert given_names_compatible("hans", "johannes")
    assert given_names_compatible("steffi", "stephanie")


def test_an_initial_fits_the_name_or_one_of_its_nicknames():
    assert given_names_compatible("r", "robert")
    assert given_names_compatible("b", "robert")  # B. from Bob
    assert not given_names_compatible("j", "robert")
    assert not given_names_compatible("j", "r")


def test_a_typo_in_a_given_name_is_not_a_conflict():
    assert given_names_compatible("christoph", "chrostoph")
    assert given_names_compatible("evi", "eci")
    assert given_names_compatible("suzanne", "suzann")


def test_clearly_different_given_names_conflict():
    assert names_conflict(("thomas", "lee"), ("michael", "lee"))
    assert names_conflict(("jan", "clark"), ("tommy", "clark"))


def test_given_and_family_name_exchanged_are_the_same_name():
    assert not names_conflict(("pollard", "brett"), ("brett", "pollard"))
    assert not names_conflict(("pollard", "brett"), ("b", "pollard"))
    # A support ticket signed with the given name alone.
    assert not names_conflict(("lagarde", "gabriel"), ("gabriel", None))


def test_a_shared_family_name_alone_is_no_swap():
    assert names_conflict(("harris", "hayley"), ("graham", "harris"))


def test_an_initial_needs_one_fitting_name_in_the_other_group():
    bob = {("bob", "wood"), ("robert", "wood")}
    assert not groups_conflict(bob, {("r", "wood")})
    assert not groups_conflict(bob, {("b", "wood")})
    assert groups_conflict(bob, {("t", "wood")})


def test_twins_with_different_given_names_stay_apart_even_through_initials():
    # Twin A has written T.; twin B is Timothy: T. fits Timothy, Thomas does not.
    assert groups_conflict({("thomas", "lee"), ("t", "lee")}, {("timothy", "lee")})


def test_similar_but_different_given_names_conflict():
    assert not given_names_compatible("francis", "francesca")
    assert not given_names_compatible("frank michael", "franziska")
