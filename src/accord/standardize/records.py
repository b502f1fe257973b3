"""Standardize a frame of source records: raw columns kept, std_* columns and flags added.

Every field is standardized once per distinct value (or distinct combination,
such as a phone list with the record's country) and mapped back to the rows,
because names, cities and phone numbers repeat a lot. Phone lists take Arrow for
the common cases (``standardize_phone_cells``) and names are cleaned once per
distinct given and family name; the other expensive fields (streets, emails)
fan out over processes when there are many distinct values.

``standardize_record`` gives one record's values without a frame, for the real-time
path: both run the same per-value functions over the same steps (``FIELD_STEPS``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from accord.standardize.addresses import standardize_city, standardize_postcode, standardize_street
from accord.standardize.companies import standardize_company
from accord.standardize.countries import standardize_country
from accord.standardize.dates import standardize_dob, writes_month_first
from accord.standardize.emails import standardize_email_list
from accord.standardize.names import clean_name, family_name_phonetic, name_group, standardize_name
from accord.standardize.phones import standardize_phone_cells, standardize_phone_list
from accord.standardize.placeholders import blank_to_none, is_placeholder_text

INPUT_COLUMNS = (
    "source", "record_key", "given_name", "family_name", "full_name", "emails", "phones",
    "street", "city", "region", "postcode", "country", "date_of_birth", "company",
)
STANDARD_COLUMNS = (
    "std_given_name", "std_family_name", "std_given_initial", "std_name_group",
    "std_family_name_metaphone", "std_emails", "std_email", "std_email_user",
    "std_phones", "std_phone", "std_street", "std_house_number", "std_unit", "std_city",
    "std_postcode", "std_country", "std_dob", "std_company", "quality_flags",
)

# Below this many distinct values a process pool costs more than it saves.
PARALLEL_MIN_DISTINCT = 20_000

_NO_FLAGS: tuple[str, ...] = ()


def _placeholder_flag(raw: Any, field: str) -> tuple[str, ...]:
    text = blank_to_none(raw)
    return (f"placeholder_{field}",) if text is not None and is_placeholder_text(text) else _NO_FLAGS


# --- per distinct value: module-level functions so worker processes can run them ---

def _name_row(given_raw: Any, family_raw: Any, full_raw: Any) -> tuple:
    given, family = clean_name(blank_to_none(given_raw)), clean_name(blank_to_none(family_raw))
    flags = _placeholder_flag(given_raw, "given_name") + _placeholder_flag(family_raw, "family_name")
    if given is None or family is None:
        flags += _placeholder_flag(full_raw, "full_name")
        parsed = standardize_name(blank_to_none(full_raw))
        given = given or parsed.given
        family = family or parsed.family
    return (
        given,
        family,
        given[0] if given else None,
        name_group(given),
        family_name_phonetic(family),
        flags,
    )


def _name_rows(givens: list[Any], families: list[Any], fulls: list[Any]) -> list[tuple]:
    """``_name_row`` over many distinct (given, family, full) combinations at once: each distinct
    given and family value is cleaned once (a million records hold a few thousand given names and tens
    of thousands of family names, in hundreds of thousands of combinations); a combination missing
    either takes ``_name_row`` itself (the full name fills the gap)."""
    givens_seen: dict[Any, tuple] = {}
    families_seen: dict[Any, tuple] = {}
    out: list[tuple] = []
    for given_raw, family_raw, full_raw in zip(givens, families, fulls):
        given = givens_seen.get(given_raw)
        if given is None:
            name = clean_name(blank_to_none(given_raw))
            given = givens_seen[given_raw] = (name, _placeholder_flag(given_raw, "given_name"),
                                              name[0] if name else None, name_group(name))
        family = families_seen.get(family_raw)
        if family is None:
            name = clean_name(blank_to_none(family_raw))
            family = families_seen[family_raw] = (name, _placeholder_flag(family_raw, "family_name"),
                                                  family_name_phonetic(name))
        if given[0] is None or family[0] is None:
            out.append(_name_row(given_raw, family_raw, full_raw))
        else:
            out.append((given[0], family[0], given[2], given[3], family[2], given[1] + family[1]))
    return out


def _email_row(raw: Any) -> tuple:
    emails, flags = standardize_email_list(blank_to_none(raw))
    first = emails[0] if emails else None
    return emails, first, first.partition("@")[0] if first else None, flags


def _phone_row(raw: Any, region: str) -> tuple:
    phones, flags = standardize_phone_list(blank_to_none(raw), region)
    return phones, phones[0] if phones else None, flags


def _phone_rows(raws: list[Any], regions: list[str]) -> list[tuple]:
    """``_phone_row`` over many distinct values at once (``standardize_phone_cells``: Arrow does the common cases)."""
    return [(phones, phones[0] if phones else None, flags)
            for phones, flags in standardize_phone_cells(raws, regions)]


def _street_row(raw: Any) -> tuple:
    parts = standardize_street(blank_to_none(raw))
    return parts.street, parts.house_number, parts.unit, _placeholder_flag(raw, "street")


def _city_row(raw: Any) -> tuple:
    return standardize_city(blank_to_none(raw)), _placeholder_flag(raw, "city")


def _postcode_row(raw: Any, region: str) -> tuple:
    code = standardize_postcode(blank_to_none(raw), region)
    text = blank_to_none(raw)
    flags = ("placeholder_postcode",) if text is not None and code is None else _NO_FLAGS
    return code, flags


def _dob_row(raw: Any, month_first: bool) -> tuple:
    result = standardize_dob(blank_to_none(raw), month_first)
    return result.iso, (result.flag,) if result.flag else _NO_FLAGS


def _company_row(raw: Any) -> tuple:
    return standardize_company(blank_to_none(raw)), _placeholder_flag(raw, "company")


def _country_row(raw: Any) -> tuple:
    text = blank_to_none(raw)
    if text is None:
        return None, _NO_FLAGS
    if is_placeholder_text(text):
        return None, ("placeholder_country",)
    code = standardize_country(text)
    return code, _NO_FLAGS if code else ("unknown_country",)


def record_region(std_country: str | None, default_region: str) -> str:
    """The region that sets a record's phone numbering plan, postcode rules and date order: its
    standardized country, else ``default_region`` (which stands in for none or an unrecognised one)."""
    return default_region.upper() if std_country is None else std_country


# Derived inputs of the steps after the country: not record columns (a record's own "region" column
# is its state or province, which no step reads).
REGION = "<region>"
MONTH_FIRST = "<month_first>"


@dataclass(frozen=True)
class FieldStep:
    """One per-value function, the inputs it reads (record columns, or REGION / MONTH_FIRST) and the
    std columns its value fields fill; its last result field is its quality flags. ``batch``, when
    given, computes what ``fn`` would for many distinct combinations at once (frames only)."""

    fn: Callable[..., tuple]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    batch: Callable[..., list[tuple]] | None = None


COUNTRY_STEP = FieldStep(_country_row, ("country",), ("std_country",))
"""First, because the region it gives feeds the phone, postcode and date steps."""

FIELD_STEPS = (
    FieldStep(_name_row, ("given_name", "family_name", "full_name"),
              ("std_given_name", "std_family_name", "std_given_initial", "std_name_group",
               "std_family_name_metaphone"), _name_rows),
    FieldStep(_email_row, ("emails",), ("std_emails", "std_email", "std_email_user")),
    FieldStep(_phone_row, ("phones", REGION), ("std_phones", "std_phone"), _phone_rows),
    FieldStep(_street_row, ("street",), ("std_street", "std_house_number", "std_unit")),
    FieldStep(_city_row, ("city",), ("std_city",)),
    FieldStep(_postcode_row, ("postcode", REGION), ("std_postcode",)),
    FieldStep(_dob_row, ("date_of_birth", MONTH_FIRST), ("std_dob",)),
    FieldStep(_company_row, ("company",), ("std_company",)),
)
"""The steps after the country, in the order their quality flags are listed."""

LIST_COLUMNS = ("std_emails", "std_phones")
"""Std columns that hold a list per record (the row functions give tuples)."""


def _apply_chunk(fn: Callable[..., tuple], rows: list[tuple]) -> list[tuple]:
    return [fn(*row) for row in rows]


def _apply_batch(batch: Callable[..., list[tuple]], columns: list[list[Any]]) -> list[tuple]:
    return batch(*columns)


# --- distinct values and mapping back ---

def _group_codes(columns: Sequence[np.ndarray | pd.Series]) -> np.ndarray:
    """One code per row for its combination of values (nulls included as a value)."""
    codes = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        column_codes, uniques = pd.factorize(column, use_na_sentinel=True)
        # Null gets code 0; re-factorizing keeps the combined key below n squared.
        combined = codes * (len(uniques) + 1) + column_codes.astype(np.int64) + 1
        codes = pd.factorize(combined)[0].astype(np.int64)
    return codes


class _Standardizer:
    def __init__(self, frame: pd.DataFrame, workers: int) -> None:
        self.frame = frame
        self.workers = workers
        self.flag_parts: list[tuple[np.ndarray, list[tuple[str, ...]]]] = []
        self._pool: ProcessPoolExecutor | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()

    def _run(self, fn: Callable[..., tuple], rows: list[tuple]) -> list[tuple]:
        if self.workers <= 1 or len(rows) < PARALLEL_MIN_DISTINCT:
            return _apply_chunk(fn, rows)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers)
        size = -(-len(rows) // (self.workers * 4))
        chunks = [rows[i:i + size] for i in range(0, len(rows), size)]
        results: list[tuple] = []
        for part in self._pool.map(_apply_chunk, [fn] * len(chunks), chunks):
            results.extend(part)
        return results

    def _run_batch(self, batch: Callable[..., list[tuple]], columns: list[list[Any]]) -> list[tuple]:
        """``batch`` over the distinct combinations (one list per column): in parts on the pool when
        there are many (each part's results are what the whole would give for its rows)."""
        count = len(columns[0]) if columns else 0
        if self.workers <= 1 or count < PARALLEL_MIN_DISTINCT:
            return batch(*columns)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers)
        size = -(-count // (self.workers * 2))
        parts = [[column[i:i + size] for column in columns] for i in range(0, count, size)]
        results: list[tuple] = []
        for part in self._pool.map(_apply_batch, [batch] * len(parts), parts):
            results.extend(part)
        return results

    def map(self, fn: Callable[..., tuple], columns: Sequence[np.ndarray | pd.Series],
            batch: Callable[..., list[tuple]] | None = None) -> list[np.ndarray]:
        """fn over each distinct combination of `columns`; one array per result field, per row.

        fn's last result field is a tuple of quality flags: it is kept for
        quality_flags rather than returned. ``batch``, when given, computes what fn would for all
        distinct combinations at once (one list per column in, one tuple per combination out).
        """
        codes = _group_codes(columns)
        _, first_rows = np.unique(codes, return_index=True)
        values = [np.asarray(c, dtype=object)[first_rows] for c in columns]
        results = (self._run_batch(batch, [v.tolist() for v in values]) if batch
                   else self._run(fn, list(zip(*values))))
        width = len(fn(*[None] * len(columns)))
        fields = list(zip(*results)) if results else [()] * width
        *value_fields, flag_field = fields
        self.flag_parts.append((codes, list(flag_field)))
        arrays = []
        for field in value_fields:
            uniques = np.empty(len(field), dtype=object)
            uniques[:] = field  # element-wise, so tuples stay tuples
            arrays.append(uniques[codes])
        return arrays

    def quality_flags(self, n_rows: int) -> list[list[str]]:
        flags: list[list[str]] = [[] for _ in range(n_rows)]
        for codes, per_unique in self.flag_parts:
            flagged = np.array([bool(f) for f in per_unique], dtype=bool)
            for row in np.flatnonzero(flagged[codes]):
                flags[row].extend(per_unique[codes[row]])
        return flags


def _lists(array: np.ndarray) -> list[list[str]]:
    # A fresh list per row, so editing one row's list never changes another's.
    return [list(value) for value in array]


def standardize_records(df: pd.DataFrame, default_region: str = "US", *,
                        workers: int | None = None) -> pd.DataFrame:
    """A new frame: the input columns as they were, plus the std_* columns and quality_flags.

    `default_region` (ISO alpha-2) stands in for a record's country when it has
    none or an unrecognised one: it sets the phone numbering plan, the date order
    (month first for US) and the postcode rules. `workers` caps the processes
    used for large inputs (default: the machine's CPU count).
    """
    n_rows = len(df)
    null_column = np.full(n_rows, None, dtype=object)

    def column(name: str) -> np.ndarray | pd.Series:
        return df[name] if name in df.columns else null_column

    workers = workers if workers is not None else (os.cpu_count() or 1)
    std = _Standardizer(df, workers)
    values: dict[str, Any] = {}
    try:
        values.update(zip(COUNTRY_STEP.outputs, std.map(COUNTRY_STEP.fn, [column(n) for n in COUNTRY_STEP.inputs])))
        country_codes, countries = pd.factorize(values["std_country"], use_na_sentinel=True)
        regions = np.array([record_region(None, default_region)]
                           + [record_region(c, default_region) for c in countries], dtype=object)
        region = regions[country_codes + 1]  # code -1 (no country) takes the first
        month_first = np.array([writes_month_first(r) for r in regions], dtype=bool)[country_codes + 1]
        derived = {REGION: region, MONTH_FIRST: month_first}
        for step in FIELD_STEPS:
            inputs = [derived[name] if name in derived else column(name) for name in step.inputs]
            values.update(zip(step.outputs, std.map(step.fn, inputs, batch=step.batch)))
        values["quality_flags"] = std.quality_flags(n_rows)
    finally:
        std.close()

    for name in LIST_COLUMNS:
        values[name] = _lists(values[name])
    out = df.copy()
    for name in STANDARD_COLUMNS:
        out[name] = pd.Series(values[name], index=df.index, dtype=object)
    return out


def standardize_record(record: Mapping[str, Any], default_region: str = "US") -> dict[str, Any]:
    """One record as ``standardize_records`` gives its row: the record's own keys as they were, plus
    the std_* values and quality_flags (lists as lists), without a frame.

    For the real-time path, where a frame's set-up costs far more than the record itself: the same
    per-value functions over the same steps, so the values are the batch's, value for value. A key the
    record lacks is null, as a column the frame lacks is.
    """
    *fields, flags = COUNTRY_STEP.fn(*[record.get(name) for name in COUNTRY_STEP.inputs])
    values: dict[str, Any] = dict(zip(COUNTRY_STEP.outputs, fields))
    quality_flags = list(flags)
    region = record_region(values["std_country"], default_region)
    derived = {REGION: region, MONTH_FIRST: writes_month_first(region)}
    for step in FIELD_STEPS:
        *fields, flags = step.fn(*[derived[name] if name in derived else record.get(name)
                                   for name in step.inputs])
        values.update(zip(step.outputs, fields))
        quality_flags.extend(flags)
    values["quality_flags"] = quality_flags
    for name in LIST_COLUMNS:
        values[name] = list(values[name])
    out = dict(record)
    out.update((name, values[name]) for name in STANDARD_COLUMNS)
    return out
