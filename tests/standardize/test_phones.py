from accord.standardize import StandardPhone, standardize_phone, standardize_phone_list


def test_us_national_phone_becomes_e164():
    assert standardize_phone("(415) 555-2671", "US") == StandardPhone("+14155552671")


def test_uk_national_phone_becomes_e164():
    assert standardize_phone("020 7946 0018", "GB") == StandardPhone("+442079460018")


def test_international_number_ignores_default_region():
    assert standardize_phone("+49 30 901820", "US").e164 == "+4930901820"


def test_international_00_prefix_is_understood():
    assert standardize_phone("0044 20 7946 0018", "GB").e164 == "+442079460018"


def test_canadian_number_is_valid_with_us_region():
    assert standardize_phone("(613) 555-0123", "US").e164 == "+16135550123"


def test_extension_is_dropped():
    assert standardize_phone("415-555-2671 ext. 12", "US").e164 == "+14155552671"


def test_invalid_phone_is_dropped_and_flagged():
    assert standardize_phone("12345", "US") == StandardPhone(None, "invalid_phone")


def test_placeholder_phones_are_dropped_and_flagged():
    for raw in ("000-000-0000", "1234567890", "999 999 9999", "n/a"):
        assert standardize_phone(raw, "US") == StandardPhone(None, "placeholder_phone"), raw


def test_phone_list_is_deduplicated_with_flags():
    raw = '["(415) 555-2671", "+1 415 555 2671", "000-000-0000"]'
    assert standardize_phone_list(raw, "US") == (("+14155552671",), ("placeholder_phone",))


def test_fast_path_agrees_with_phonenumbers_full_parse():
    import random

    import phonenumbers

    from accord.standardize.phones import _fast_e164

    rng = random.Random(7)
    checked = 0
    for region in ("US", "GB", "DE", "FR", "IT", "ES", "CA", "AU", "IN", "JP"):
        example = str(phonenumbers.example_number(region).national_number)
        prefix = phonenumbers.PhoneMetadata.metadata_for_region(region).national_prefix or ""
        for _ in range(200):
            digits = "".join(d if rng.random() < 0.6 else str(rng.randint(0, 9)) for d in example)
            text = f"{prefix if rng.random() < 0.5 else ''} {digits[:3]}-{digits[3:]}"
            fast = _fast_e164(text, region)
            if fast is None:
                continue
            number = phonenumbers.parse(text, region)
            assert phonenumbers.is_valid_number(number), text
            assert fast == phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), text
            checked += 1
    assert checked > 500


def test_an_international_number_of_the_records_own_country_gives_the_same_e164_as_the_full_parse():
    assert standardize_phone("+44 20 7946 0018", "GB").e164 == "+442079460018"
    assert standardize_phone("+44 (0) 20 7946 0018", "GB").e164 == "+442079460018"
    assert standardize_phone("+44 20 7946 0018", "US").e164 == "+442079460018"


def test_phone_cells_in_arrays_equal_the_per_value_lists():
    import random

    from accord.standardize.phones import standardize_phone_cells, standardize_phone_list

    rng = random.Random(3)
    cells = ['["+1 212 555 0100", "(212) 555-0100"]', '[]', '[ ]', '[""]', '["  "]', '["+ 44 20 7946 0018"]',
             '["0000000"]', '["123456789"]', '["212-555-0100 x12"]', '["n/a"]', 'not json', '["a\\"b"]',
             '[1, "2125550100"]', None, '', '  ["2125550100"]  ', '["2125550100",]', '["+4930123456"]',
             '["030 1234567"]', '["+33 1 23 45 67 89"]', '["07700 900123"]', '["+447700900123"]', '["١٢٣٤٥٦٧"]']
    regions = ["US"] * len(cells)
    for _ in range(1500):
        items = ['"' + "".join(rng.choice("0123456789 +()-./x#a") for _ in range(rng.randint(0, 16))) + '"'
                 for _ in range(rng.randint(0, 3))]
        cells.append("[" + ", ".join(items) + "]")
        cells.append('["' + rng.choice(["+1", "+44", "+49", "+33", "0", ""])
                     + "".join(rng.choice("0123456789 -") for _ in range(rng.randint(6, 12))) + '"]')
        regions += [rng.choice(["US", "GB", "DE", "FR", "AR", "BR", "JP"]) for _ in range(2)]
    got = standardize_phone_cells(cells, regions)
    assert got == [standardize_phone_list(c, r) for c, r in zip(cells, regions)]
    assert sum(1 for phones, _ in got if phones) > 300  # the array path found many numbers
