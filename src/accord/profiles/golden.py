"""Golden records: one surviving value per attribute, every value with its lineage.

Survivorship is set-based SQL (window functions DuckDB and PostgreSQL share). For each customer
and single-valued attribute, the candidate values (trimmed, grouped case-insensitively) are ranked
by the attribute's rules, in order, each breaking the previous one's ties:

* ``source_priority``: the best (lowest) ``priority`` of the sources holding the value;
* ``most_recent``: the latest ``source_updated_at`` (else ``valid_from``) of a record holding it;
* ``most_frequent``: how many records hold it;
* ``most_complete``: the longest value;
* ``non_empty``: any value (the deterministic tie-break below picks it).

Remaining ties go to the smallest value (case-insensitive), so results never depend on row order.
``rule`` in the lineage names the rule that decided (``only_value`` when the records agree,
``tie_break`` when no rule could). The lineage record is the one holding the winning value that
ranks first by the same rules (then by source and record key); for ``email``, ``phone`` and
``address``, which are ranked from the groups of ``emails``, ``phones`` and ``addresses``, it is the
latest record holding the value.

Multi-valued attributes (emails, phones, addresses) keep every value with first and last seen,
the sources and how many records hold it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from accord.clock import Stopwatch
from accord.profiles._sql import (
    create_lookup_indexes,
    drop_temp,
    first_fields,
    json_list_distinct,
    latest_fields,
    lookup_indexes,
    rows_for_keys,
    rows_where,
    temp_as,
)
from accord.privacy.pii import TOKEN_PREFIX, group_key_sql, unless_token_sql
from accord.profiles.settings import ADDRESS_PARTS, SINGLE_ATTRIBUTES, ProfilesSettings
from accord.store.backend import Store

_TEMPS = ("_pc_scope", "_pc_sources", "_pc_rc", "_pc_sr", "_pc_base", "_pc_cand", "_pc_multi", "_pc_mgroups", "_pc_address", "_pc_values")
_VALUE_COLUMNS = "customer_id, attribute, value, source, record_key, observed_at, rule"
SCOPE_RECORDS = ("_pc_scope", "_pc_rc", "_pc_sr", "_pc_mgroups")
"""Temp tables ``build_golden(..., keep_scope_records=True)`` leaves for its caller (who drops them): the
customer ids in scope, their ``record_customer`` rows, those records' ``source_records`` rows
(``SOURCE_COLUMNS``) and the customers' multi-valued golden values (as written to ``golden_multi``)."""
SOURCE_COLUMNS = ("source", "record_key", "given_name", "family_name", "full_name", "date_of_birth", "company",
                  *ADDRESS_PARTS, "emails", "phones", "external_ids", "source_created_at", "source_updated_at",
                  "first_seen_at", "valid_from", "deleted_at")
"""The ``source_records`` columns a scoped build reads (``external_ids``: for the identifier index refresh)."""
TEXT_FIELDS = ("given_name", "family_name", "full_name", "date_of_birth", "company", *ADDRESS_PARTS)
"""The ``source_records`` text columns golden values are taken from (trimmed; empty is null)."""
MAX_SOURCE_BITS = 62
DEFAULT_PRIORITY = 100

# Per value group: (expression, direction) ranking values; per record: within a value group.
_GROUP_KEYS = {
    "source_priority": ("best_priority", "ASC"),
    "most_recent": ("last_observed", "DESC NULLS LAST"),
    "most_frequent": ("freq", "DESC"),
    "most_complete": ("LENGTH(value)", "DESC"),
}
_RECORD_KEYS = {
    "source_priority": ("priority", "asc"),
    "most_recent": ("observed_at", "desc"),  # never null: source_updated_at, else valid_from
}


@dataclass
class GoldenReport:
    customers: int = 0
    values: int = 0
    multi_values: int = 0
    rules: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def source_priorities(cfg: Any) -> dict[str, int]:
    """``priority`` of each configured source (lower wins)."""
    return {s.name: int(s.priority) for s in getattr(cfg, "sources", [])} if cfg is not None else {}


def _text(column: str) -> str:
    return f"NULLIF(TRIM({column}), '')"


def build_golden(store: Store, settings: ProfilesSettings | None = None, priorities: Mapping[str, int] | None = None,
                 customer_ids: Iterable[str] | None = None, *, keep_scope_records: bool = False,
                 customer_records: str | None = None) -> GoldenReport:
    """Recompute golden values for every active customer (or only ``customer_ids``), in one transaction.

    ``keep_scope_records`` (with ``customer_ids``): leave the ``SCOPE_RECORDS`` temp tables for the
    caller, so the identifier index refresh reads the same records without scanning the store again.
    ``customer_records`` (with ``customer_ids``): a table of (source, record_key, customer_id) holding every
    record of those customers (``ids.ASSIGNED_RECORDS``), read instead of ``record_customer``."""
    settings = settings or ProfilesSettings()
    report = GoldenReport()
    lap = Stopwatch(report.timings).lap

    with store.transaction():
        scoped = customer_ids is not None
        if scoped:
            ids = sorted(set(customer_ids or ()))
            store.create_temp_table("_pc_scope", pa.table({"customer_id": pa.array(ids, pa.string())}))
        # Scoped: the scope's record_customer rows first, then only their source records are read (each
        # step its own temp table, so the planner cannot undo the order), only the columns read here and
        # by the identifier index refresh (SCOPE_RECORDS).
        records, customers, sources = "record_customer", "customers", "source_records"
        if scoped:
            in_scope = "customer_id IN (SELECT customer_id FROM _pc_scope)"
            known = f"SELECT source, record_key, customer_id FROM {customer_records} WHERE {in_scope}"
            temp_as(store, "_pc_rc", known if customer_records else rows_where(
                store, "record_customer", in_scope, ("source", "record_key", "customer_id")))
            temp_as(store, "_pc_sr", "SELECT * FROM " + rows_for_keys(
                store, "source_records", "SELECT source, record_key FROM _pc_rc", SOURCE_COLUMNS) + " x")
            records, sources = "_pc_rc", "_pc_sr"
            customers = "(SELECT customer_id, seq FROM customers WHERE customer_id IN (SELECT customer_id FROM _pc_scope))"
        # Each source: its priority, and a bit for the sources list of multi-valued attributes (the sources
        # of the records read: the lists spell the names out, so any numbering of them gives the same lists).
        names = sorted({r[0] for r in store.fetchall(f"SELECT DISTINCT source FROM {records}")})
        prio = dict(priorities or {})
        store.create_temp_table("_pc_sources", pa.table({
            "source": pa.array(names, pa.string()),
            "priority": pa.array([int(prio.get(n, DEFAULT_PRIORITY)) for n in names], pa.int64()),
            "bit": pa.array([(1 << i) if i < MAX_SOURCE_BITS else 0 for i in range(len(names))], pa.int64())}))
        parts = ", ".join(f"{_text('sr.' + c)} AS {c}" for c in TEXT_FIELDS)
        # Customers are keyed by their integer seq while computing: grouping on it is much faster than on text.
        temp_as(store, "_pc_base", f"""
            SELECT cu.seq AS cseq, rc.customer_id, sr.source, sr.record_key,
                   COALESCE(p.priority, {DEFAULT_PRIORITY}) AS priority, COALESCE(p.bit, 0) AS bit,
                   COALESCE(sr.source_updated_at, sr.valid_from) AS observed_at,
                   COALESCE(sr.source_created_at, sr.first_seen_at) AS first_at,
                   {parts}, sr.emails, sr.phones
            FROM {records} rc
            JOIN {customers} cu ON cu.customer_id = rc.customer_id
            JOIN {sources} sr ON sr.source = rc.source AND sr.record_key = rc.record_key
            LEFT JOIN _pc_sources p ON p.source = sr.source
            WHERE sr.deleted_at IS NULL""")
        lap("base")
        _candidates(store)
        lap("candidates")
        if scoped:
            store.execute("DELETE FROM golden_values WHERE customer_id IN (SELECT customer_id FROM _pc_scope)")
            store.execute("DELETE FROM golden_multi WHERE customer_id IN (SELECT customer_id FROM _pc_scope)")
        else:
            # A full rebuild rewrites every row: building the lookup indexes again at the end is faster
            # than maintaining them row by row.
            for index in lookup_indexes(store):
                store.execute(f"DROP INDEX IF EXISTS {index}")
            store.execute("DELETE FROM golden_values")
            store.execute("DELETE FROM golden_multi")
        lap("clear")
        _multi(store, names)
        lap("multi")
        # Scoped: the values are gathered in a temp table first, so reading them back (the address parts,
        # the report) does not scan golden_values, which holds every customer's rows.
        values = "_pc_values" if scoped else "golden_values"
        if scoped:
            temp_as(store, "_pc_values", f"SELECT {_VALUE_COLUMNS} FROM golden_values WHERE 1 = 0")
        _survive(store, settings, values)
        if scoped:
            store.execute(f"INSERT INTO golden_values ({_VALUE_COLUMNS}) SELECT {_VALUE_COLUMNS} FROM _pc_values")
        lap("single")
        create_lookup_indexes(store)
        lap("index")
        from accord.profiles.lookup import invalidate_profile_documents  # the profile API's copies (h2)

        invalidate_profile_documents(store, ids if scoped else None)
        report.customers = int(store.scalar("SELECT COUNT(DISTINCT cseq) FROM _pc_base"))
        report.rules = {r: int(n) for r, n in store.fetchall(
            f"SELECT rule, COUNT(*) FROM {values} GROUP BY rule ORDER BY rule")}
        report.values = sum(report.rules.values())
        report.multi_values = int(store.scalar("SELECT COUNT(*) FROM _pc_mgroups"))
        kept = SCOPE_RECORDS if keep_scope_records and scoped else ()
        drop_temp(store, *(t for t in _TEMPS if t not in kept))
        lap("finish")
    return report


# Single-valued attributes ranked from the groups of a multi-valued one (already aggregated there).
_FROM_MULTI = {"email": "emails", "phone": "phones", "address": "addresses"}


def _candidates(store: Store) -> None:
    """_pc_multi: every distinct email, phone and address of every record; _pc_cand: the other candidates."""
    address = ("NULLIF(concat_ws(', ', " + ", ".join(ADDRESS_PARTS) + "), '')")
    common = "cseq, customer_id, source, record_key, priority, bit, observed_at, first_at"
    # Encrypted values (privacy.encryption) stay whole, and group by their keyed hash (pii.group_key_sql).
    emails = json_list_distinct(store, "emails", unless_token_sql("x", "LOWER(TRIM(x))"))
    phones = json_list_distinct(store, "phones", unless_token_sql("x", "regexp_replace(x, '[^0-9+]', '', 'g')"))
    temp_as(store, "_pc_multi", f"""
        SELECT {common}, attribute, value, {group_key_sql("value")} AS value_key FROM (
            SELECT {common}, 'emails' AS attribute, {emails} AS value FROM _pc_base
            UNION ALL
            SELECT {common}, 'phones' AS attribute, {phones} AS value FROM _pc_base
            UNION ALL
            SELECT {common}, 'addresses' AS attribute, {address} AS value FROM _pc_base
        ) m WHERE value IS NOT NULL AND value <> ''""")
    singles = [a for a in SINGLE_ATTRIBUTES if a not in _FROM_MULTI]
    selects = [f"SELECT cseq, customer_id, source, record_key, priority, observed_at, '{a}' AS attribute, "
               f"{a} AS value, {group_key_sql(a)} AS value_key FROM _pc_base WHERE {a} IS NOT NULL" for a in singles]
    temp_as(store, "_pc_cand", " UNION ALL ".join(selects))


def _groups_sql(store: Store, attributes: list[str], rules: tuple[str, ...]) -> str:
    """Candidate value groups: one row per (customer, attribute, value) with the rule keys and the
    record that ranks first within the group."""
    multi = [a for a in attributes if a in _FROM_MULTI]
    if multi:
        case = " ".join(f"WHEN '{_FROM_MULTI[a]}' THEN '{a}'" for a in multi)
        names = ", ".join(f"'{_FROM_MULTI[a]}'" for a in multi)
        return (f"SELECT cseq, customer_id, CASE attribute {case} END AS attribute, value_key, value, source, "
                f"record_key, last_seen AS observed_at, records AS freq, best_priority, last_seen AS last_observed "
                f"FROM _pc_mgroups WHERE attribute IN ({names})")
    record_order = [_RECORD_KEYS[r] for r in rules if r in _RECORD_KEYS] + [("source", "asc"), ("record_key", "asc")]
    first, rep = first_fields(store, ("value", "source", "record_key", "observed_at", "customer_id"), record_order,
                              "first_rec")
    names = ", ".join(f"'{a}'" for a in attributes)
    return f"""
        SELECT cseq, {rep["customer_id"]} AS customer_id, attribute, value_key, {rep["value"]} AS value,
               {rep["source"]} AS source, {rep["record_key"]} AS record_key, {rep["observed_at"]} AS observed_at,
               freq, best_priority, last_observed
        FROM (SELECT cseq, attribute, value_key, {first},
                     COUNT(*) AS freq, MIN(priority) AS best_priority, MAX(observed_at) AS last_observed
              FROM _pc_cand WHERE attribute IN ({names}) GROUP BY cseq, attribute, value_key) g"""


def _survive(store: Store, settings: ProfilesSettings, target: str = "golden_values") -> None:
    """The single-valued golden values of the customers in _pc_base, inserted into ``target``."""
    by_rules: dict[tuple[tuple[str, ...], bool], list[str]] = {}
    for attribute in SINGLE_ATTRIBUTES:
        rules = settings.rules_for(attribute)
        if "non_empty" in rules:  # rules after it can never decide
            rules = rules[: rules.index("non_empty") + 1]
        by_rules.setdefault((tuple(rules), attribute in _FROM_MULTI), []).append(attribute)
    for (rules, _), attributes in by_rules.items():
        ranked = [r for r in rules if r in _GROUP_KEYS]
        group_order = ", ".join([f"{_GROUP_KEYS[r][0]} {_GROUP_KEYS[r][1]}" for r in ranked] + ["value_key"])
        leads = "".join(f", LEAD({_GROUP_KEYS[r][0]}) OVER w AS next_{i}" for i, r in enumerate(ranked))
        decided = " ".join(f"WHEN {_GROUP_KEYS[r][0]} IS DISTINCT FROM next_{i} THEN '{r}'"
                           for i, r in enumerate(ranked))
        fallback = "non_empty" if "non_empty" in rules else "tie_break"
        store.execute(f"""
            INSERT INTO {target} (customer_id, attribute, value, source, record_key, observed_at, rule)
            WITH recs AS ({_groups_sql(store, attributes, rules)}),
            ranked AS (
                SELECT recs.*, ROW_NUMBER() OVER w AS rn, COUNT(*) OVER (PARTITION BY cseq, attribute) AS n_values
                       {leads}
                FROM recs
                WINDOW w AS (PARTITION BY cseq, attribute ORDER BY {group_order}))
            SELECT customer_id, attribute, value, source, record_key, observed_at,
                   CASE WHEN n_values = 1 THEN 'only_value' {decided} ELSE '{fallback}' END
            FROM ranked WHERE rn = 1""")
    # The address survives as a unit: its parts come from the record whose address won. One join
    # finds those records (golden_values holds every customer's rows: joining it once per part cost 5x).
    temp_as(store, "_pc_address", f"""
        SELECT g.customer_id, g.source, g.record_key, g.observed_at, g.rule, {", ".join("b." + p for p in ADDRESS_PARTS)}
        FROM {target} g
        JOIN _pc_base b ON b.customer_id = g.customer_id AND b.source = g.source AND b.record_key = g.record_key
        WHERE g.attribute = 'address'""")
    parts = " UNION ALL ".join(
        f"SELECT customer_id, '{p}' AS attribute, {p} AS value, source, record_key, observed_at, rule "
        f"FROM _pc_address WHERE {p} IS NOT NULL" for p in ADDRESS_PARTS)
    store.execute(f"INSERT INTO {target} (customer_id, attribute, value, source, record_key, observed_at, rule) "
                  f"{parts}")


def _multi(store: Store, sources: list[str]) -> None:
    """_pc_mgroups: every value of every multi-valued attribute per customer; written to golden_multi.

    Lineage names the latest record holding the value (its spelling is the value shown)."""
    if len(sources) <= MAX_SOURCE_BITS:
        # Sources as a bit set while aggregating (integers are cheap), spelled out once per value.
        listed = ", ".join(f"""CASE WHEN (bits & {1 << i}) <> 0 THEN '"{name.replace("'", "''")}"' END"""
                           for i, name in enumerate(sources))
        sources_agg = "BIT_OR(bit) AS bits"
        sources_json = f"'[' || concat_ws(',', {listed}) || ']'" if sources else "'[]'"  # none: no records
    else:
        sources_agg = """'["' || string_agg(DISTINCT source, '","' ORDER BY source) || '"]' AS src"""
        sources_json = "src"
    last, rep = latest_fields(store, ("value", "source", "record_key", "customer_id"), "last_rec")
    bits = "bits" if len(sources) <= MAX_SOURCE_BITS else "src"
    temp_as(store, "_pc_mgroups", f"""
        SELECT cseq, {rep["customer_id"]} AS customer_id, attribute, value_key, {rep["value"]} AS value,
               first_seen, last_seen, records, best_priority, {bits},
               {rep["source"]} AS source, {rep["record_key"]} AS record_key
        FROM (SELECT cseq, attribute, value_key, {last}, MIN(first_at) AS first_seen, MAX(observed_at) AS last_seen,
                     COUNT(*) AS records, MIN(priority) AS best_priority, {sources_agg}
              FROM _pc_multi GROUP BY cseq, attribute, value_key) g""")
    store.execute(store.type_sql(f"""
        INSERT INTO golden_multi (customer_id, attribute, value, first_seen, last_seen, sources, records,
                                  source, record_key, rule)
        SELECT customer_id, attribute, value, first_seen, last_seen, CAST({sources_json} AS ${{JSON}}), records,
               source, record_key, 'all_values'
        FROM _pc_mgroups"""))


def golden_of_one_record(store: Store, customer_id: str, source: str, record_key: str,
                         stored: tuple[Mapping[str, Any], datetime]) -> GoldenReport | None:
    """The golden record of a new customer holding one record (a real-time identify's usual outcome),
    written without ``build_golden``'s temp tables: each attribute's one value wins as ``only_value``.

    The values are those ``build_golden`` derives for such a customer (its SQL, for one record: values
    trimmed, emails lower-cased, phones reduced to digits and '+', the address joined from its parts);
    ``tests/identity/test_placement.py`` pins the two to each other. ``customer_id`` is new: it has no
    profile document to invalidate. None when the rules would have to choose (the record holds two
    emails, phones or addresses) or when a value is encrypted: ``build_golden`` decides those.
    ``stored``: the record as ``realtime.record_row`` gave it to ``store_records`` and the time that
    stored it (a new record has no source timestamps: both its times are that one), not read back."""
    record, stored_at = stored
    fields = {f: _trimmed(record.get(f)) for f in TEXT_FIELDS}
    address = ", ".join(fields[p] for p in ADDRESS_PARTS if fields[p] is not None) or None
    multi = {"emails": _distinct(record.get("emails"), lambda x: _trim(x).lower()),
             "phones": _distinct(record.get("phones"), lambda x: re.sub(r"[^0-9+]", "", x)),
             "addresses": [address] if address else []}
    every = [v for v in (*fields.values(), *(x for values in multi.values() for x in values)) if v is not None]
    if any(len(values) > 1 for values in multi.values()) or any(TOKEN_PREFIX in v for v in every):
        return None
    report = GoldenReport(customers=1)
    singles = [(a, fields[a]) for a in SINGLE_ATTRIBUTES if a not in _FROM_MULTI and fields[a] is not None]
    singles += [(a, multi[m][0]) for a, m in _FROM_MULTI.items() if multi[m]]
    if multi["addresses"]:
        singles += [(p, fields[p]) for p in ADDRESS_PARTS if fields[p] is not None]
    store.executemany(f"INSERT INTO golden_values ({_VALUE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 'only_value')",
                      [(customer_id, a, v, source, record_key, stored_at) for a, v in singles])
    sources = json.dumps([source])
    store.executemany(store.type_sql(
        "INSERT INTO golden_multi (customer_id, attribute, value, first_seen, last_seen, sources, records, source, "
        "record_key, rule) VALUES (?, ?, ?, ?, ?, CAST(? AS ${JSON}), 1, ?, ?, 'all_values')"),
        [(customer_id, m, v, stored_at, stored_at, sources, source, record_key)
         for m in ("emails", "phones", "addresses") for v in multi[m]])
    # No profile document to invalidate: the customer is new (the caller made it).
    report.values = len(singles)
    report.rules = {"only_value": len(singles)} if singles else {}
    report.multi_values = sum(len(v) for v in multi.values())
    return report


def _trim(text: str) -> str:
    """SQL's TRIM: spaces only."""
    return text.strip(" ")


def _trimmed(value: Any) -> str | None:
    """SQL's NULLIF(TRIM(value), '')."""
    return None if value is None else (_trim(str(value)) or None)


def _distinct(json_text: str | None, normalise: Any) -> list[str]:
    """``json_list_distinct``'s non-empty values of a stored JSON list, in first-seen order."""
    try:
        items = json.loads(json_text) if json_text else []
    except ValueError:
        return []
    if not isinstance(items, list):
        return []
    out = [normalise(str(x)) for x in items if x is not None]
    return [v for v in dict.fromkeys(out) if v]
