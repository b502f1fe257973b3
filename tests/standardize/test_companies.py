from accord.standardize import standardize_company


def test_legal_suffixes_are_stripped():
    assert standardize_company("ACME Widgets, Ltd.") == "acme widgets"
    assert standardize_company("Apple Inc.") == "apple"
    assert standardize_company("Nestlé S.A.") == "nestle"


def test_chained_legal_forms_are_stripped():
    assert standardize_company("Foo GmbH & Co. KG") == "foo"


def test_ampersand_inside_a_name_becomes_and():
    assert standardize_company("Johnson & Johnson") == "johnson and johnson"


def test_placeholder_company_is_none():
    assert standardize_company("n/a") is None
