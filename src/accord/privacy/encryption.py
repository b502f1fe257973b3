"""Encrypted person fields in the store: checking the keys, encrypting staged rows, rotating keys.

Where values are encrypted (see ``accord.privacy.pii`` for the forms):

* ingestion, people sources: the configured fields of each staged row become tokens, and so do the values
  of the source columns they were mapped from inside ``raw``; ``row_hash`` is keyed with the hash key
  (``accord.sources.mapping``), so re-ingesting unchanged rows still changes nothing but a guessed row
  cannot be confirmed against it;
* ingestion, event sources: an email or phone identity becomes its blind form, its column in
  ``properties`` a token;
* quarantine: the raw text of a rejected row is one token;
* identity: the standardized columns derived from encrypted fields are blind values (identity.stage.prepare);
* collection (the API): the person traits of messages, in ``events.properties`` and
  ``identity_signals.traits`` (``MessageEncryptor``, run by ``accord.privacy.collection``); stitching keys
  their emails and phones as blind values in ``customer_identifiers``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from accord.clock import utcnow
from accord.privacy.pii import (
    FIELD_KIND,
    HASH_CHECK_NAME,
    KEY_CHECK_NAME,
    LIST_FIELDS,
    STANDARD_COLUMNS,
    TOKEN_PREFIX,
    TOKEN_RE,
    PiiCodec,
    PiiKeyError,
    standard_form,
)
from accord.privacy.settings import EncryptionSettings, privacy_settings
from accord.standardize.countries import standardize_country
from accord.store.backend import Store


@dataclass(frozen=True)
class Encryption:
    """The configured fields and the environment's keys: what ingestion and identity need."""

    settings: EncryptionSettings
    codec: PiiCodec

    @property
    def fields(self) -> list[str]:
        return self.settings.fields

    def kind(self, field_name: str) -> str:
        return FIELD_KIND.get(field_name, field_name)

    def blinded_columns(self) -> dict[str, str]:
        """Standardized column -> hash kind, for every encrypted field."""
        out: dict[str, str] = {}
        for name in self.fields:
            out.update(STANDARD_COLUMNS.get(name, {}))
        if "full_name" in self.fields:
            out.update(STANDARD_COLUMNS["given_name"])
            out.update(STANDARD_COLUMNS["family_name"])
        return out

    def event_kinds(self) -> set[str]:
        return {FIELD_KIND[f] for f in LIST_FIELDS if f in self.fields}


def encryption_for(cfg: Any, environ: Mapping[str, str] | None = None) -> Encryption | None:
    """The project's encryption, or None when ``privacy.encryption`` is not configured; PiiKeyError when it is
    and the keys are missing."""
    settings = privacy_settings(getattr(cfg, "privacy", None)).encryption if cfg is not None else None
    if settings is None:
        return None
    return Encryption(settings, PiiCodec.from_env(environ))


def check_keys(store: Store, codec: PiiCodec) -> None:
    """Refuse a hash key other than the one the store's blind values were made with, and keys that cannot
    read the store's tokens; record the check values on first use."""
    rows = dict(store.fetchall("SELECT name, value FROM pii_key_checks"))
    wanted = codec.check_values()
    if HASH_CHECK_NAME in rows and rows[HASH_CHECK_NAME] != wanted[HASH_CHECK_NAME]:
        raise PiiKeyError("$ACCORD_PII_HASH_KEY is not the key this store's hashed fields were made with: matching "
                          "and lookups would silently miss every encrypted value; set the original key")
    if KEY_CHECK_NAME in rows:
        codec.decrypt(f"{TOKEN_PREFIX}{'0' * 32}:{rows[KEY_CHECK_NAME]}")  # raises naming $ACCORD_PII_KEYS
    missing = [(n, v) for n, v in wanted.items() if n not in rows]
    if missing:
        now = utcnow()
        store.executemany("INSERT INTO pii_key_checks (name, value, updated_at) VALUES (?, ?, ?) "
                          "ON CONFLICT (name) DO NOTHING", [(n, v, now) for n, v in missing])


def _region(country: Any, default: str) -> str:
    code = standardize_country(str(country)) if country not in (None, "") else None
    return code or default


def _list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    parsed = json.loads(value) if isinstance(value, str) else value
    return list(parsed) if isinstance(parsed, list | tuple) else [parsed]


def _raw_columns(source: Any, fields: list[str]) -> dict[str, str]:
    """Source column -> the encrypted field it feeds (its values in ``raw`` are encrypted too)."""
    out: dict[str, str] = {}
    specs = source.field_specs()
    for name in fields:
        spec = specs.get(name)
        for s in spec if isinstance(spec, list) else [spec] if spec is not None else []:
            if getattr(s, "column", None):
                out[s.column] = name
    return out


def encrypt_stage(store: Store, source: Any, enc: Encryption, region: str) -> int:
    """Ingestion: encrypt the configured fields of the staged rows (temp table ``_stage``); return the rows."""
    check_keys(store, enc.codec)
    if source.kind != "people":
        return _encrypt_event_stage(store, source, enc, region)
    fields = [f for f in enc.fields if f in _stage_columns(store)]
    if not fields:
        return 0
    raw_columns = _raw_columns(source, fields)
    reads = ", ".join(f"CAST({f} AS TEXT)" for f in fields)
    rows = store.fetchall(f"SELECT record_key, country, CAST(raw AS TEXT), {reads} FROM _stage")
    if not rows:
        return 0
    codec = enc.codec
    out: dict[str, list[Any]] = {"record_key": [], "raw": [], **{f: [] for f in fields}}
    for key, country, raw, *values in rows:
        row_region = _region(country, region)
        out["record_key"].append(key)
        for name, value in zip(fields, values):
            kind = enc.kind(name)
            if name in LIST_FIELDS:
                items = _list(value)
                out[name].append(None if items is None else json.dumps(
                    [codec.encrypt(kind, v, row_region) if isinstance(v, str) else v for v in items]))
            else:
                out[name].append(codec.encrypt(kind, value, row_region))
        doc = json.loads(raw) if raw else None
        if isinstance(doc, dict):
            for column, name in raw_columns.items():
                if isinstance(doc.get(column), str) and doc[column]:
                    doc[column] = codec.encrypt(enc.kind(name), doc[column], row_region)
            raw = json.dumps(doc)
        out["raw"].append(raw)
    _update_stage(store, out)
    return len(rows)


TRAIT_FIELDS = {"email": "emails", "phone": "phones", "birthday": "date_of_birth", "street": "street",
                "city": "city", "postal_code": "postcode", "postalcode": "postcode", "company": "company",
                "firstname": "given_name", "first_name": "given_name", "lastname": "family_name",
                "last_name": "family_name", "name": "full_name"}
"""Keys of event JSON (Segment traits and properties, any depth; case and '_' ignored) -> the field they hold."""


def _trait_field(key: str) -> str | None:
    k = key.lower()
    return TRAIT_FIELDS.get(k) or TRAIT_FIELDS.get(k.replace("_", ""))


def _encrypt_tree(node: Any, enc: Encryption, region: str, identity: tuple[str, str] | None) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            name = _trait_field(str(k))
            if isinstance(v, str) and v and name in enc.fields:
                out[k] = enc.codec.encrypt(enc.kind(name), v, region)
            elif isinstance(v, str) and v and identity and v == identity[1]:
                out[k] = enc.codec.encrypt(identity[0], v, region)
            else:
                out[k] = _encrypt_tree(v, enc, region, identity) if isinstance(v, dict | list) else v
        return out
    if isinstance(node, list):
        return [_encrypt_tree(v, enc, region, identity) for v in node]
    return node


def _encrypt_event_stage(store: Store, source: Any, enc: Encryption, region: str) -> int:
    """Events: an email or phone identity (when encrypted) becomes its blind form; in the raw event (stored as
    ``properties``) that value, and every trait or property named for an encrypted field, becomes a token."""
    kinds = enc.event_kinds()
    rows = store.fetchall("SELECT record_key, identity_type, identity_value, CAST(raw AS TEXT) FROM _stage")
    codec = enc.codec
    out: dict[str, list[Any]] = {"record_key": [], "identity_value": [], "raw": []}
    for key, kind, value, raw in rows:
        identity = (kind, str(value)) if kind in kinds and value not in (None, "") else None
        doc = json.loads(raw) if raw else None
        new_doc = _encrypt_tree(doc, enc, region, identity) if isinstance(doc, dict | list) else doc
        new_value = codec.blind(kind, standard_form(kind, str(value), region)) if identity else value
        if new_doc == doc and new_value == value:
            continue
        new_raw = json.dumps(new_doc) if new_doc != doc else raw
        out["record_key"].append(key)
        out["identity_value"].append(new_value)
        out["raw"].append(new_raw)
    if out["record_key"]:
        _update_stage(store, out)
    return len(out["record_key"])


def _stage_columns(store: Store) -> set[str]:
    return set(store.fetch_arrow("SELECT * FROM _stage LIMIT 0").column_names)


def _update_stage(store: Store, out: dict[str, list[Any]]) -> None:
    names = [c for c in out if c != "record_key"]
    store.create_temp_table("_pii_stage", pa.table({c: pa.array(v, pa.string()) for c, v in out.items()}))
    sets = ", ".join(f"{c} = u.{c}" for c in names)
    store.execute(f"UPDATE _stage SET {sets} FROM _pii_stage u WHERE _stage.record_key = u.record_key")
    store.drop_temp_table("_pii_stage")


def encrypt_quarantine_text(enc: Encryption | None, text: str) -> str:
    """A rejected row's raw text as stored: one token when fields are encrypted (the row may hold any of them)."""
    return text if enc is None or not text else enc.codec.encrypt("raw_text", text)


# --- collection (the API) ----------------------------------------------------------------------------

PERSON_TRAITS = {"email": "emails", "phone": "phones", "name": "full_name", "firstname": "given_name",
                 "lastname": "family_name", "birthday": "date_of_birth", "company": "company"}
"""Segment's reserved identify traits (keys compared lower-cased, without '_') -> the field they hold."""
ADDRESS_TRAITS = {"street": "street", "city": "city", "postalcode": "postcode"}
"""Keys of ``traits.address`` -> the field they hold."""
PROPERTY_TRAITS = {k: v for k, v in PERSON_TRAITS.items() if k not in ("name", "company")}
"""In track/page properties (and group traits, which describe a company) ``name`` and ``company`` name a product,
a page or the account, not a person: the other person keys only."""


def _trait_key(key: Any) -> str:
    return str(key).lower().replace("_", "")


class MessageEncryptor:
    """Collection: the configured person fields of Segment messages as tokens, in the JSON the events table
    (``properties``: the whole message) and ``identity_signals.traits`` keep.

    Identify traits and ``context.traits`` of every message are person traits; ``properties`` and group
    traits hold person keys other than ``name`` and ``company``. Tokens of repeated values are reused (a
    value's token hash already shows that two stored values are equal, so a shared ciphertext reveals
    nothing more) so a busy collector pays one encryption per distinct value; ``cache_clear`` (erasure
    calls it) forgets them."""

    def __init__(self, enc: Encryption, region: str = "US", cache_size: int = 131_072):
        self.enc, self.region, self.cache_size = enc, region, cache_size
        fields = set(enc.fields)
        self._person = {k: f for k, f in PERSON_TRAITS.items() if f in fields}
        self._property = {k: f for k, f in PROPERTY_TRAITS.items() if f in fields}
        self._address = {k: f for k, f in ADDRESS_TRAITS.items() if f in fields}
        self._tokens: dict[tuple[str, str], str] = {}

    def cache_clear(self) -> None:
        self._tokens.clear()

    def token(self, field_name: str, value: Any) -> Any:
        if isinstance(value, list):  # several values under one key (["a@x.com", "b@y.com"])
            return [self.token(field_name, v) for v in value]
        if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
            return value
        text = str(value)
        if text.startswith(TOKEN_PREFIX):
            return text
        kind = self.enc.kind(field_name)
        token = self._tokens.get((kind, text))
        if token is None:
            if len(self._tokens) >= self.cache_size:
                self._tokens.clear()
            token = self._tokens[(kind, text)] = self.enc.codec.encrypt(kind, text, self.region)
        return token

    def traits(self, node: Any, person: bool = True) -> Any:
        """A traits (or properties) object with its person keys as tokens (a new dict when any changed)."""
        if not isinstance(node, dict):
            return node
        keys = self._person if person else self._property
        out = None
        for k, v in node.items():
            lk = _trait_key(k)
            new = v
            if lk in keys:
                if lk == "company" and isinstance(v, dict):
                    new = {**v, "name": self.token("company", v["name"])} if "name" in v else v
                else:
                    new = self.token(keys[lk], v)
            elif lk == "address" and self._address:
                if isinstance(v, dict):
                    new = {ak: (self.token(self._address[_trait_key(ak)], av)
                                if _trait_key(ak) in self._address else av) for ak, av in v.items()}
                elif "street" in self._address:
                    new = self.token("street", v)  # an address sent as one string
            if new is not v:
                out = out if out is not None else dict(node)
                out[k] = new
        return out if out is not None else node

    def message(self, doc: Any, type_: str | None) -> Any:
        """A stored message (``events.properties``) with the person keys of its traits, context.traits and
        properties as tokens (``doc`` itself when nothing changed)."""
        if not isinstance(doc, dict):
            return doc
        changes: dict[str, Any] = {}
        if "traits" in doc:
            traits = self.traits(doc["traits"], person=type_ != "group")
            if traits is not doc["traits"]:
                changes["traits"] = traits
        context = doc.get("context")
        if isinstance(context, dict) and "traits" in context:
            traits = self.traits(context["traits"])
            if traits is not context["traits"]:
                changes["context"] = {**context, "traits": traits}
        if "properties" in doc:
            props = self.traits(doc["properties"], person=False)
            if props is not doc["properties"]:
                changes["properties"] = props
        return {**doc, **changes} if changes else doc

    def message_json(self, text: str | None, type_: str | None) -> str | None:
        if not text or not self._might_hold(text):
            return text
        doc = orjson.loads(text)
        new = self.message(doc, type_)
        return text if new is doc else orjson.dumps(new).decode()

    def traits_json(self, text: str | None, type_: str | None) -> str | None:
        """``identity_signals.traits``: identify traits are person traits; group traits describe the account."""
        if not text or not self._might_hold(text):
            return text
        doc = orjson.loads(text)
        new = self.traits(doc, person=type_ != "group")
        return text if new is doc else orjson.dumps(new).decode()

    @staticmethod
    def _might_hold(text: str) -> bool:
        """Cheap test before parsing: a message with no traits and none of the person keys properties may
        hold has nothing to encrypt (``name`` and ``company`` count only inside traits)."""
        lowered = text.lower()
        return '"traits"' in lowered or any(k in lowered for k in _PROPERTY_KEY_TEXT)


_PROPERTY_KEY_TEXT = ('"email', '"phone', '"first', '"last', '"birthday', '"address')


# --- rotation -----------------------------------------------------------------------------------------

TOKEN_COLUMNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("source_records", "source, record_key", ("raw", "given_name", "family_name", "full_name", "emails", "phones",
                                              "street", "city", "postcode", "date_of_birth", "company")),
    ("source_records_history", "source, record_key, valid_to",
     ("raw", "given_name", "family_name", "full_name", "emails", "phones", "street", "city", "postcode",
      "date_of_birth", "company")),
    ("quarantine", "quarantine_id", ("raw_text", "reason")),
    ("events", "event_id", ("properties",)),
    ("identity_signals", "event_id", ("traits",)),
    ("accounts", "account_id", ("traits",)),
    ("golden_values", "customer_id, attribute", ("value",)),
    ("golden_multi", "customer_id, attribute, value", ("value",)),
    ("profile_documents", "customer_id", ("document",)),
)
"""table, key columns, columns that may hold tokens: what rotation re-encrypts."""


@dataclass
class RotationReport:
    tables: dict[str, int] = field(default_factory=dict)
    """Rows re-encrypted per table."""
    current: int = 0
    """Rows holding tokens that were already under the newest key (skipped: a rotation can be resumed)."""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rotate_keys(store: Store, codec: PiiCodec, batch: int = 5000) -> RotationReport:
    """Re-encrypt every token with the newest key of ``$ACCORD_PII_KEYS``, one transaction per table and batch,
    so an interrupted rotation resumes where it stopped. A token no key can read stops it before any change
    to that batch (PiiKeyError naming the variable)."""
    started = time.perf_counter()
    report = RotationReport()
    check = dict(store.fetchall("SELECT name, value FROM pii_key_checks"))
    if HASH_CHECK_NAME in check and check[HASH_CHECK_NAME] != codec.check_values()[HASH_CHECK_NAME]:
        raise PiiKeyError("$ACCORD_PII_HASH_KEY is not the key this store's hashed fields were made with")
    present = set(store.table_names())
    for table, keys, columns in TOKEN_COLUMNS:
        if table not in present:
            continue
        key_cols = [k.strip() for k in keys.split(",")]
        texts = ", ".join(f"CAST({c} AS TEXT)" for c in columns)
        has = " OR ".join(f"strpos(CAST({c} AS TEXT), '{TOKEN_PREFIX}') > 0" for c in columns)
        rows = store.fetchall(f"SELECT {keys}, {texts} FROM {table} WHERE {has}")
        stale = []
        for row in rows:
            values = row[len(key_cols):]
            if all(codec.is_current(t) for v in values if isinstance(v, str) for t in _tokens(v)):
                report.current += 1
                continue
            stale.append((row[:len(key_cols)], [codec.rotate_text(v) for v in values]))
        for start in range(0, len(stale), batch):
            chunk = stale[start:start + batch]
            # One set-based UPDATE per batch, from a temp table of keys and new values (DuckDB runs an
            # UPDATE per row of executemany, each one a scan).
            data = {f"k{i}": pa.array([key[i] for key, _ in chunk]) for i in range(len(key_cols))}
            data.update({f"v{i}": pa.array([values[i] for _, values in chunk], pa.string())
                         for i in range(len(columns))})
            with store.transaction():
                store.create_temp_table("_pii_rotation", pa.table(data))
                sets = ", ".join(f"{c} = {_typed(store, c, f'u.v{i}')}" for i, c in enumerate(columns))
                where = " AND ".join(f"{table}.{k} = u.k{i}" for i, k in enumerate(key_cols))
                store.execute(f"UPDATE {table} SET {sets} FROM _pii_rotation u WHERE {where}")
                store.drop_temp_table("_pii_rotation")
            report.tables[table] = report.tables.get(table, 0) + len(chunk)
    with store.transaction():
        now = utcnow()
        store.executemany("INSERT INTO pii_key_checks (name, value, updated_at) VALUES (?, ?, ?) "
                          "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                          [(n, v, now) for n, v in codec.check_values().items()])
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _tokens(text: str) -> list[str]:
    return [m.group(0) for m in TOKEN_RE.finditer(text)]


_JSON_COLUMNS = {"raw", "emails", "phones", "properties", "traits"}


def _typed(store: Store, column: str, expr: str) -> str:
    return store.type_sql(f"CAST({expr} AS ${{JSON}})") if column in _JSON_COLUMNS else expr


# --- identity -----------------------------------------------------------------------------------------

def reveal_records(records: Any, enc: Encryption) -> Any:
    """Identity: a frame of source records with the encrypted fields decrypted (in memory only)."""
    out = records.copy()
    codec = enc.codec
    for name in enc.fields:
        if name not in out.columns:
            continue
        reveal = codec.reveal_json_text if name in LIST_FIELDS else codec.reveal
        cache: dict[Any, Any] = {}
        out[name] = [cache[v] if v in cache else cache.setdefault(v, reveal(v)) for v in out[name]]
    return out


def blind_standardized(std: Any, enc: Encryption) -> Any:
    """Identity: the standardized columns derived from encrypted fields replaced by their blind forms, so
    rules, the model, the stored state and the identifier rows only ever hold keyed hashes."""
    codec = enc.codec
    for column, kind in enc.blinded_columns().items():
        if column not in std.columns:
            continue
        cache: dict[Any, Any] = {}

        def one(v: Any, kind: str = kind, cache: dict[Any, Any] = cache) -> Any:
            if isinstance(v, list | tuple):
                return [one(x) for x in v]
            if v is None or (isinstance(v, float) and v != v):
                return v
            if v not in cache:
                cache[v] = codec.blind(kind, v)
            return cache[v]

        std[column] = [one(v) for v in std[column]]
    return std


def encrypt_record_rows(rows: list[dict[str, Any]], enc: Encryption, region: str) -> list[dict[str, Any]]:
    """Real-time records (identify calls, ``identity.realtime.record_row`` rows) with their encrypted fields as
    tokens, in their columns and in ``raw``; ``row_hash`` is keyed with the hash key (the same values give the
    same hash, so an unchanged record is still recognised, but a guessed row cannot be confirmed)."""
    out = []
    codec = enc.codec
    for row in rows:
        row = dict(row)
        if row.get("row_hash"):
            row["row_hash"] = hmac.new(codec.hash_key, f"row_hash:{row['row_hash']}".encode(),
                                       hashlib.sha256).hexdigest()[:32]
        row_region = _region(row.get("country"), region)
        for name in enc.fields:
            if row.get(name) in (None, ""):
                continue
            if name in LIST_FIELDS:
                row[name] = json.dumps([codec.encrypt(enc.kind(name), v, row_region) if isinstance(v, str) else v
                                        for v in _list(row[name]) or []])
            else:
                row[name] = codec.encrypt(enc.kind(name), row[name], row_region)
        raw = json.loads(row["raw"]) if isinstance(row.get("raw"), str) else None
        if isinstance(raw, dict):
            raw.update({name: row[name] for name in enc.fields if name in raw})
            row["raw"] = json.dumps(raw, sort_keys=True)
        out.append(row)
    return out
