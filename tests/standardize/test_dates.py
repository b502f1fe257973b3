import datetime as dt

from accord.standardize import StandardDate, standardize_dob

TODAY = dt.date(2025, 6, 1)


def test_iso_date_is_kept():
    assert standardize_dob("1984-03-07", today=TODAY) == StandardDate("1984-03-07")


def test_ambiguous_slash_date_is_month_first_for_us():
    assert standardize_dob("03/07/1984", month_first=True, today=TODAY).iso == "1984-03-07"


def test_ambiguous_slash_date_is_day_first_elsewhere():
    assert standardize_dob("03/07/1984", month_first=False, today=TODAY).iso == "1984-07-03"


def test_unambiguous_day_first_date_ignores_convention():
    assert standardize_dob("25/12/1984", month_first=True, today=TODAY).iso == "1984-12-25"


def test_dotted_yyyymmdd_and_month_name_formats():
    for raw in ("07.03.1984", "19840307", "7 March 1984", "March 7, 1984", "7th Mar 1984", "07-Mar-1984"):
        assert standardize_dob(raw, month_first=False, today=TODAY).iso == "1984-03-07", raw


def test_timestamp_suffix_is_ignored():
    assert standardize_dob("1984-03-07T00:00:00", today=TODAY).iso == "1984-03-07"


def test_two_digit_year_is_in_the_past():
    assert standardize_dob("3/7/84", today=TODAY).iso == "1984-03-07"
    assert standardize_dob("3/7/05", today=TODAY).iso == "2005-03-07"


def test_february_30_is_impossible_and_flagged():
    assert standardize_dob("1984-02-30", today=TODAY) == StandardDate(None, "impossible_dob")


def test_future_date_is_impossible_and_flagged():
    assert standardize_dob("2030-01-01", today=TODAY) == StandardDate(None, "impossible_dob")


def test_date_before_1900_is_impossible_and_flagged():
    assert standardize_dob("1850-01-01", today=TODAY) == StandardDate(None, "impossible_dob")


def test_unparseable_date_is_flagged_invalid():
    assert standardize_dob("sometime in spring", today=TODAY) == StandardDate(None, "invalid_dob")


def test_placeholder_dates_are_flagged():
    for raw in ("1900-01-01", "0000-00-00", "unknown"):
        assert standardize_dob(raw, today=TODAY) == StandardDate(None, "placeholder_dob"), raw
