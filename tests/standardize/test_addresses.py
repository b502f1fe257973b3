from accord.standardize import StreetParts, standardize_city, standardize_country, standardize_postcode, standardize_street


def test_street_abbreviations_directionals_and_unit_are_normalized():
    assert standardize_street("123 North Main Street, Apt 4B") == StreetParts("n main st", "123", "4b")


def test_street_and_st_give_the_same_street():
    assert standardize_street("10 Oak Street").street == standardize_street("10 Oak St.").street == "oak st"


def test_ordinal_words_become_numbers():
    assert standardize_street("500 Fifth Avenue").street == "5th ave"


def test_flat_and_suite_and_hash_are_units():
    assert standardize_street("Flat 3, 12 High Road") == StreetParts("high rd", "12", "3")
    assert standardize_street("500 5th Ave Suite 300").unit == "300"
    assert standardize_street("77 Mass Ave #3").unit == "3"


def test_house_number_with_letter_is_kept():
    assert standardize_street("221B Baker St").house_number == "221b"


def test_trailing_house_number_and_german_strasse():
    assert standardize_street("Hauptstraße 5") == StreetParts("haupt st", "5", None)


def test_placeholder_street_is_none():
    assert standardize_street("N/A") == StreetParts()


def test_city_saint_abbreviation_and_accents_are_normalized():
    assert standardize_city("St. Louis") == standardize_city("Saint Louis") == "saint louis"
    assert standardize_city("São Paulo") == "sao paulo"


def test_us_zip_plus_four_is_cut_to_five_digits():
    assert standardize_postcode("02134-1234", "US") == "02134"


def test_us_zip_regains_leading_zero():
    assert standardize_postcode("2134", "US") == "02134"


def test_gb_postcode_is_uppercase_without_spaces():
    assert standardize_postcode("sw1a 1aa", "GB") == "SW1A1AA"


def test_placeholder_postcode_is_none():
    assert standardize_postcode("00000", "US") is None


def test_country_names_and_codes_become_iso_alpha2():
    cases = {
        "United Kingdom": "GB", "UK": "GB", "GB": "GB", "England": "GB", "Deutschland": "DE",
        "USA": "US", "U.S.": "US", "us": "US", "France": "FR", "Allemagne": "DE", "DEU": "DE",
    }
    assert {raw: standardize_country(raw) for raw in cases} == cases


def test_unknown_country_is_none():
    assert standardize_country("Atlantis") is None
