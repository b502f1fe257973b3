"""Standardize person fields before identity resolution, keeping raw beside standard.

Per-field functions work alone; `standardize_records` runs them all over a frame.
"""

from accord.standardize.addresses import StreetParts, standardize_city, standardize_postcode, standardize_street
from accord.standardize.companies import standardize_company
from accord.standardize.countries import standardize_country
from accord.standardize.dates import StandardDate, standardize_dob, writes_month_first
from accord.standardize.emails import StandardEmail, standardize_email, standardize_email_list
from accord.standardize.names import (
    NameParts,
    clean_name,
    family_name_phonetic,
    name_group,
    name_variants,
    nickname_related,
    standardize_name,
)
from accord.standardize.phones import StandardPhone, standardize_phone, standardize_phone_list
from accord.standardize.placeholders import is_placeholder_text
from accord.standardize.records import STANDARD_COLUMNS, standardize_records

__all__ = [
    "NameParts", "STANDARD_COLUMNS", "StandardDate", "StandardEmail", "StandardPhone",
    "StreetParts", "clean_name", "family_name_phonetic", "is_placeholder_text", "name_group",
    "name_variants", "nickname_related", "standardize_city", "standardize_company", "standardize_country",
    "standardize_dob", "standardize_email", "standardize_email_list", "standardize_name",
    "standardize_phone", "standardize_phone_list", "standardize_postcode", "standardize_records",
    "standardize_street", "writes_month_first",
]
