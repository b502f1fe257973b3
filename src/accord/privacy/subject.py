"""The person a privacy request is about: their customer ids, records and every identifier that names them.

A request names the person by a customer id (``cus_00000042`` or ``customer_id:cus_00000042``) or by any
identifier (``email:ann@example.com``, ``phone:+14155550100``, ``user_id:u1``, ``anonymous_id:a1``,
``crm_id:C-17``). The subject gathers, from the customer's records, golden values, identifier index and
events, everything needed to find their rows in every table: customer ids (the current one and those merged
into it), ``source:record_key`` of their records, (id_type, value) identifiers, and the text forms searched
for in raw rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from accord.errors import AccordError
from accord.standardize.emails import standardize_email
from accord.standardize.phones import standardize_phone
from accord.store.backend import Store

MIN_NEEDLE = 5
"""Identifier text shorter than this is not searched for in free text (it would match unrelated rows)."""


class SubjectError(AccordError):
    """A privacy request names nobody, or more than one person."""


@dataclass
class Subject:
    ref: str
    customer_ids: list[str] = field(default_factory=list)
    records: list[tuple[str, str]] = field(default_factory=list)
    identifiers: set[tuple[str, str]] = field(default_factory=set)
    """(id_type, value): email (standard form), phone (E.164), user_id, anonymous_id, external id names."""
    raw_values: set[str] = field(default_factory=set)
    """Identifier values as the sources wrote them (mixed case, national phone formats)."""
    dialect: str = "duckdb"
    """The store's SQL dialect, for the text searches built from this subject."""

    @property
    def customer_id(self) -> str | None:
        return self.customer_ids[0] if self.customer_ids else None

    @property
    def record_refs(self) -> list[str]:
        return sorted(f"{s}:{k}" for s, k in self.records)

    def values(self) -> list[str]:
        """Every identifier value, any type, in every form known."""
        return sorted({v for _, v in self.identifiers} | self.raw_values)

    def needles(self) -> list[str]:
        """Text to search raw rows for: identifier values long enough not to match unrelated text."""
        out: set[str] = set()
        for v in self.values():
            v = v.strip()
            if len(v) >= MIN_NEEDLE:
                out.add(v)
                if "@" in v:
                    out.add(v.lower())
        return sorted(out)

    def standard_identifiers(self) -> list[tuple[str, str]]:
        """(kind, value) for suppression: standardized emails and phones, user/anonymous ids, external ids,
        and record refs."""
        out: set[tuple[str, str]] = set()
        for id_type, value in self.identifiers:
            out.add((id_type, value))
        out.update(("record", r) for r in self.record_refs)
        return sorted(out)


def parse_request_ref(ref: str) -> tuple[str, str]:
    ref = ref.strip()
    if ":" not in ref:
        if ref.startswith("cus_"):
            return "customer_id", ref
        raise SubjectError(f"{ref!r}: expected a customer id (cus_00000042) or ID_TYPE:VALUE, "
                           "e.g. email:ann@example.com")
    id_type, _, value = ref.partition(":")
    if not id_type.strip() or not value.strip():
        raise SubjectError(f"{ref!r}: expected ID_TYPE:VALUE, e.g. email:ann@example.com")
    return id_type.strip(), value.strip()


def standard_value(id_type: str, value: str, region: str = "US") -> str:
    """The form identifiers are stored and matched in."""
    if id_type == "email":
        return standardize_email(value).email or value.strip().lower()
    if id_type == "phone":
        return standardize_phone(value, region).e164 or value.strip()
    return value.strip()


def _json(value: Any) -> Any:
    if value is None:
        return None
    return json.loads(value) if isinstance(value, str) else value


def _related_ids(store: Store, customer_id: str) -> list[str]:
    current = customer_id
    for _ in range(64):
        row = store.fetchone("SELECT to_id FROM customer_redirects WHERE from_id = ?", (current,))
        if row is None:
            break
        current = row[0]
    if store.fetchone("SELECT 1 FROM customers WHERE customer_id = ?", (current,)) is None:
        raise SubjectError(f"no customer {customer_id!r}; customer ids look like cus_00000042")
    ids = {current}
    frontier = [current]
    while frontier:  # everything that (transitively) redirects here
        marks = ", ".join("?" for _ in frontier)
        found = {r[0] for r in store.fetchall(f"SELECT from_id FROM customer_redirects WHERE to_id IN ({marks})",
                                              frontier)} - ids
        ids |= found
        frontier = sorted(found)
    return [current] + sorted(ids - {current})


def _customers_for(store: Store, id_type: str, value: str, region: str) -> list[str]:
    """Customers named by an identifier: the shared identifier index first, then golden values and records."""
    std = standard_value(id_type, value, region)
    found = {r[0] for r in store.fetchall(
        "SELECT customer_id FROM customer_identifiers WHERE id_type = ? AND value = ?", (id_type, std))}
    if found:
        return sorted(found)
    if id_type in ("email", "phone"):
        found = {r[0] for r in store.fetchall(
            "SELECT DISTINCT customer_id FROM golden_multi WHERE attribute = ? AND value IN (?, ?)",
            (id_type + "s", std, value))}
        if found:
            return sorted(found)
    # External ids (and user ids, which apps set to their own customer id) on the current records.
    needle = json.dumps(value)
    for customer_id, ext in store.fetchall(
            "SELECT rc.customer_id, CAST(sr.external_ids AS TEXT) FROM source_records sr "
            "JOIN record_customer rc ON rc.source = sr.source AND rc.record_key = sr.record_key "
            "WHERE strpos(CAST(sr.external_ids AS TEXT), ?) > 0", (needle,)):
        ids = _json(ext) or {}
        if isinstance(ids, dict) and any(str(v) == value for k, v in ids.items()
                                         if v is not None and (id_type in ("user_id", k))):
            found.add(customer_id)
    return sorted(found)


def resolve_subject(store: Store, ref: str, region: str = "US") -> Subject:
    """Everything that names the person ``ref`` refers to; SubjectError when it names several customers."""
    id_type, value = parse_request_ref(ref)
    subject = Subject(ref, dialect=store.dialect)
    if id_type == "customer_id":
        subject.customer_ids = _related_ids(store, value)
    else:
        customers = _customers_for(store, id_type, value, region)
        if len(customers) > 1:
            raise SubjectError(f"{id_type} {value!r} names {len(customers)} customers ({', '.join(customers)}); "
                               "name one by its customer id")
        if customers:
            subject.customer_ids = _related_ids(store, customers[0])
        subject.identifiers.add((id_type, standard_value(id_type, value, region)))
        subject.raw_values.add(value)
    _gather(store, subject, region)
    return subject


def _gather(store: Store, subject: Subject, region: str) -> None:
    ids = subject.customer_ids
    if ids:
        marks = ", ".join("?" for _ in ids)
        subject.records = sorted({(s, k) for s, k in store.fetchall(
            f"SELECT source, record_key FROM record_customer WHERE customer_id IN ({marks})", ids)})
        subject.identifiers.update((t, v) for t, v in store.fetchall(
            f"SELECT id_type, value FROM customer_identifiers WHERE customer_id IN ({marks})", ids))
        for attribute, value in store.fetchall(
                f"SELECT attribute, value FROM golden_multi WHERE customer_id IN ({marks}) "
                "AND attribute IN ('emails', 'phones')", ids):
            subject.identifiers.add((attribute[:-1], value))
            subject.raw_values.add(value)
    by_source: dict[str, list[str]] = {}
    for source, key in subject.records:
        by_source.setdefault(source, []).append(key)
    where = " OR ".join(f"(source = ? AND record_key IN ({', '.join('?' for _ in keys)}))" for keys in by_source.values())
    params = [p for source, keys in by_source.items() for p in (source, *keys)]
    for table in ("source_records", "source_records_history") if by_source else ():
        for emails, phones, ext, country in store.fetchall(
                f"SELECT CAST(emails AS TEXT), CAST(phones AS TEXT), CAST(external_ids AS TEXT), country "
                f"FROM {table} WHERE {where}", params):
            for e in _json(emails) or []:
                subject.raw_values.add(str(e))
                if (std := standardize_email(str(e)).email):
                    subject.identifiers.add(("email", std))
            for p in _json(phones) or []:
                subject.raw_values.add(str(p))
                if (std := standardize_phone(str(p), _region(country, region)).e164):
                    subject.identifiers.add(("phone", std))
            for name, v in (_json(ext) or {}).items():
                if v not in (None, ""):
                    subject.identifiers.add((str(name), str(v)))
                    subject.identifiers.add(("user_id", str(v)))
    _gather_event_ids(store, subject)


def _region(country: str | None, default: str) -> str:
    return country.upper() if country and len(country) == 2 and country.isalpha() else default


def _gather_event_ids(store: Store, subject: Subject) -> None:
    """Anonymous ids the person's events and identify calls link to their identifiers."""
    values = sorted({v for _, v in subject.identifiers})
    if not values:
        return
    marks = ", ".join("?" for _ in values)
    anonymous = {r[0] for r in store.fetchall(
        f"SELECT DISTINCT anonymous_id FROM events WHERE identity_value IN ({marks}) AND anonymous_id IS NOT NULL",
        values)}
    anonymous |= {r[0] for r in store.fetchall(
        f"SELECT DISTINCT anonymous_id FROM identity_signals WHERE user_id IN ({marks}) "
        "AND anonymous_id IS NOT NULL", values)}
    subject.identifiers.update(("anonymous_id", a) for a in anonymous)
