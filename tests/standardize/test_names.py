from accord.standardize import (
    NameParts,
    clean_name,
    family_name_phonetic,
    name_group,
    nickname_related,
    standardize_name,
)


def test_accents_are_transliterated_and_case_lowered():
    assert clean_name("José") == "jose"


def test_titles_and_suffixes_are_stripped():
    assert clean_name("Dr. Martin") == "martin"
    assert clean_name("Smith Jr.") == "smith"


def test_hyphens_become_spaces_and_apostrophes_vanish():
    assert clean_name("Anne-Marie") == "anne marie"
    assert clean_name("O'Brien") == "obrien"


def test_internal_whitespace_is_collapsed():
    assert clean_name("  Mary   Jane ") == "mary jane"


def test_placeholder_name_becomes_none():
    assert clean_name("N/A") is None
    assert clean_name("unknown") is None


def test_given_space_family_is_parsed():
    assert standardize_name("John Smith") == NameParts(given="john", family="smith")


def test_given_middle_initial_family_is_parsed():
    assert standardize_name("John A. Smith") == NameParts(given="john", middle="a", family="smith")


def test_surname_comma_given_is_parsed():
    assert standardize_name("SMITH, John") == NameParts(given="john", family="smith")


def test_comma_before_a_suffix_is_not_a_surname_comma():
    assert standardize_name("John Smith, Jr.") == NameParts(given="john", family="smith")


def test_full_name_with_title_and_suffix_is_parsed():
    assert standardize_name("Mr Patrick O'Brien III") == NameParts(given="patrick", family="obrien")


def test_family_name_particles_stay_with_the_family_name():
    assert standardize_name("Ludwig van Beethoven").family == "van beethoven"


def test_hyphenated_family_name_stays_whole():
    assert standardize_name("José Álvarez-Núñez").family == "alvarez nunez"


def test_single_word_full_name_is_a_given_name():
    assert standardize_name("Madonna") == NameParts(given="madonna")


def test_given_initial_is_first_letter():
    assert standardize_name("John Smith").given_initial == "j"


def test_nickname_bob_and_robert_share_a_group():
    assert name_group("bob") == name_group("robert") == name_group("rob")


def test_nickname_bill_and_william_share_a_group():
    assert name_group("bill") == name_group("william")


def test_formal_name_is_its_own_group():
    assert name_group("james") == "james"


def test_unknown_name_is_its_own_group():
    assert name_group("zyxandra") == "zyxandra"


def test_phonetic_key_matches_smith_and_smyth():
    assert family_name_phonetic("smith") == family_name_phonetic("smyth") == "SM0"


def test_a_nickname_and_its_formal_name_are_related():
    assert nickname_related("bob", "robert")
    assert nickname_related("robert", "bob")


def test_two_nicknames_of_one_formal_name_are_related():
    assert nickname_related("mike", "mick")


def test_two_formal_names_sharing_a_nickname_are_not_related():
    assert not nickname_related("samuel", "samantha")


def test_german_diminutives_are_nicknames():
    assert nickname_related("hans", "johannes")
