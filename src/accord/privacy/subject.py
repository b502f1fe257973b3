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
import re
from dataclasses import dataclass, field
from typing import Any

from accord.errors import AccordError
from accord.privacy.pii import (
    BLIND_PREFIX,
    HASH_KEY_ENV,
    KEYS_ENV,
    TOKEN_PREFIX,
    PiiCodec,
    PiiKeyError,
    blind_forms,
    codec_if_keys,
    has_tokens,
    store_is_encrypted,
)
from accord.standardize.emails import standardize_email
from accord.standardize.phones import standardize_phone
from accord.store.backend import Store

MIN_NEEDLE = 5
"""Identifier text shorter than this is not searched for in free text (it would match unrelated rows)."""


E164 = re.compile(r"\+[1-9]\d{5,14}")
RECORDS_FROM = "record_customer"
"""The table a customer's records are read from: in it, the customer ids alone find every row of the person."""


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
    row_ids: dict[str, list[int]] = field(default_factory=dict)
    """DuckDB: table -> rowids of the person's rows read while gathering (their records and record history),
    so erasure in the same transaction deletes them without scanning again."""
    event_ids: set[str] | None = None
    """Events carrying one of the person's identities (read once while gathering; None: not gathered)."""
    token_needles: set[str] = field(default_factory=set)
    """``enc1:<hash>:``: the start of the tokens of the person's encrypted emails and phones."""

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

    def by_type(self) -> dict[str, set[str]]:
        """Identifier values per id_type; emails also as the sources wrote them, lowercased."""
        out: dict[str, set[str]] = {}
        for t, v in self.identifiers:
            out.setdefault(t, set()).add(v)
        emails = {v.lower() for v in self.raw_values if "@" in v}
        if emails:
            out.setdefault("email", set()).update(emails)
        return {t: v for t, v in out.items() if v}

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
        if E164.fullmatch(value):  # already standard: parsing would return it unchanged
            return value
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
    forms = blind_forms(id_type, [std])  # an encrypted email or phone is indexed by its keyed hash
    marks = ", ".join("?" for _ in forms)
    found = {r[0] for r in store.fetchall(
        f"SELECT customer_id FROM customer_identifiers WHERE id_type = ? AND value IN ({marks})", (id_type, *forms))}
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


def resolve_subject(store: Store, ref: str, region: str = "US", codec: PiiCodec | None = None) -> Subject:
    """Everything that names the person ``ref`` refers to; SubjectError when it names several customers.

    Encrypted values (privacy.encryption) are read with ``codec``, else the environment's keys when set."""
    codec = codec or codec_if_keys()
    if codec is None and store_is_encrypted(store):  # its identifiers could not all be found: refuse
        raise PiiKeyError(f"this store holds encrypted person fields: set ${KEYS_ENV} and ${HASH_KEY_ENV} to "
                          "find everything that names the person")
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
    _gather(store, subject, region, codec)
    return subject


def _add_encrypted_forms(subject: Subject, codec: PiiCodec) -> None:
    """Stores with encrypted fields: the blind form of each email and phone (what the identifier index, events
    and identity rows hold) and the start of their tokens (found in any text that holds them encrypted)."""
    for kind, value in list(subject.identifiers):
        if kind in ("email", "phone") and not value.startswith(BLIND_PREFIX):
            digest = codec.digest(kind, value)
            subject.identifiers.add((kind, BLIND_PREFIX + digest))
            subject.token_needles.add(f"{TOKEN_PREFIX}{digest}:")


def _gather(store: Store, subject: Subject, region: str, codec: PiiCodec | None = None) -> None:
    ids = subject.customer_ids
    if ids:
        marks = ", ".join("?" for _ in ids)
        subject.records = sorted({(s, k) for s, k in store.fetchall(
            f"SELECT source, record_key FROM {RECORDS_FROM} WHERE customer_id IN ({marks})", ids)})
        subject.identifiers.update((t, v) for t, v in store.fetchall(
            f"SELECT id_type, value FROM customer_identifiers WHERE customer_id IN ({marks})", ids))
        for attribute, value in store.fetchall(
                f"SELECT attribute, value FROM golden_multi WHERE customer_id IN ({marks}) "
                "AND attribute IN ('emails', 'phones')", ids):
            kind = attribute[:-1]
            if codec is not None and has_tokens(value):
                value = codec.reveal(value)
                subject.identifiers.add((kind, standard_value(kind, value, region)))
            else:
                subject.identifiers.add((kind, value))
            subject.raw_values.add(value)
    by_source: dict[str, list[str]] = {}
    for source, key in subject.records:
        by_source.setdefault(source, []).append(key)
    for table in ("source_records", "source_records_history") if by_source else ():
        rowid = "rowid" if store.dialect == "duckdb" else "NULL"
        for source, keys in sorted(by_source.items()):  # one source per query: the key index answers it
            rows = store.fetchall(
                f"SELECT CAST(emails AS TEXT), CAST(phones AS TEXT), CAST(external_ids AS TEXT), country, {rowid} "
                f"FROM {table} WHERE source = ? AND record_key IN ({', '.join('?' for _ in keys)})", (source, *keys))
            if store.dialect == "duckdb":
                subject.row_ids.setdefault(table, []).extend(int(r[4]) for r in rows)
            for emails, phones, ext, country, _ in rows:
                if codec is not None:
                    emails, phones = codec.reveal_json_text(emails), codec.reveal_json_text(phones)
                _add_record_identifiers(subject, emails, phones, ext, country, region)
    if codec is not None:
        _add_encrypted_forms(subject, codec)
    _gather_event_ids(store, subject)


def _add_record_identifiers(subject: Subject, emails: Any, phones: Any, ext: Any, country: str | None,
                            region: str) -> None:
    for e in _json(emails) or []:
        subject.raw_values.add(str(e))
        if (std := standardize_email(str(e)).email):
            subject.identifiers.add(("email", std))
    known_phones = {v for t, v in subject.identifiers if t == "phone"}
    for p in _json(phones) or []:
        subject.raw_values.add(str(p))
        if str(p) in known_phones:  # already standard (golden values, the identifier index): no parse needed
            continue
        if (std := standardize_phone(str(p), _region(country, region)).e164):
            subject.identifiers.add(("phone", std))
    for name, v in (_json(ext) or {}).items():
        if v not in (None, ""):
            subject.identifiers.add((str(name), str(v)))
            subject.identifiers.add(("user_id", str(v)))


def _region(country: str | None, default: str) -> str:
    return country.upper() if country and len(country) == 2 and country.isalpha() else default


def _gather_event_ids(store: Store, subject: Subject) -> None:
    """Anonymous ids the person's events and identify calls link to their identifiers."""
    values = sorted({v for _, v in subject.identifiers})
    if not values:
        return
    # One pass over events for every identity of the person: the events they carry, and their anonymous ids.
    parts, params = [], []
    for id_type, typed in sorted(subject.by_type().items()):
        value = "LOWER(identity_value)" if id_type == "email" else "identity_value"
        parts.append(f"(identity_type = ? AND {value} IN ({', '.join('?' for _ in typed)}))")
        params += [id_type, *sorted(typed)]
    rows = store.fetchall(f"SELECT event_id, anonymous_id FROM events WHERE {' OR '.join(parts)}", params)
    subject.event_ids = {r[0] for r in rows}
    anonymous = {r[1] for r in rows if r[1] is not None}
    marks = ", ".join("?" for _ in values)
    anonymous |= {r[0] for r in store.fetchall(
        f"SELECT DISTINCT anonymous_id FROM identity_signals WHERE user_id IN ({marks}) "
        "AND anonymous_id IS NOT NULL", values)}
    subject.identifiers.update(("anonymous_id", a) for a in anonymous)
