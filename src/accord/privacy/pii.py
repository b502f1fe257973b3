"""PII at rest: the person fields named in ``privacy.encryption.fields`` are stored encrypted, and everything
that matches on them (identity, the identifier index, lookups, suppression, erasure) uses keyed hashes of
their standardized values.

Two forms, both recognisable in any column:

* a **token** ``enc1:<H>:<fernet>`` replaces a stored value: ``<fernet>`` is the value encrypted with the
  newest key of ``$ACCORD_PII_KEYS`` (Fernet: AES-128-CBC + HMAC-SHA256, a fresh IV per value), ``<H>`` the
  first 32 hex digits of HMAC-SHA256 under ``$ACCORD_PII_HASH_KEY`` of ``kind:standardized value``. SQL
  groups and compares values by ``<H>`` without decrypting (golden records, the identifier index);
* a **blind value** ``h1:<H>`` stands where only equality matters (standardized columns the identity
  model compares, ``identity_record_identifiers``, ``customer_identifiers``, events' email/phone identity).

``$ACCORD_PII_KEYS`` holds one or more Fernet keys, newest first, separated by commas: reading tries each,
writing uses the first; ``accord privacy rotate-key`` re-encrypts every token with the first. The hash key
never rotates (every blind value would change): the store keeps a check value of it and refuses another.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from accord.errors import AccordError
from accord.standardize.emails import standardize_email
from accord.standardize.phones import standardize_phone

KEYS_ENV = "ACCORD_PII_KEYS"
HASH_KEY_ENV = "ACCORD_PII_HASH_KEY"
TOKEN_PREFIX = "enc1:"
BLIND_PREFIX = "h1:"
DIGEST_CHARS = 32
TOKEN_RE = re.compile(r"enc1:([0-9a-f]{32}):([A-Za-z0-9_\-]+=*)")
TOKEN_SQL_PATTERN = r"enc1:([0-9a-f]{32}):[A-Za-z0-9_=-]+"
"""The token pattern as a regular expression both engines read (RE2 on DuckDB, POSIX on PostgreSQL)."""

ENCRYPTABLE = ("given_name", "family_name", "full_name", "emails", "phones", "street", "city", "postcode",
               "date_of_birth", "company")
NAME_FIELDS = ("given_name", "family_name", "full_name")
LIST_FIELDS = ("emails", "phones")
FIELD_KIND = {"emails": "email", "phones": "phone"}
"""Hash kind of a field's values: emails and phones hash as the identifiers they are (``email:...``)."""

STANDARD_COLUMNS: dict[str, dict[str, str]] = {
    "emails": {"std_email": "email", "std_emails": "email", "std_email_user": "email_user"},
    "phones": {"std_phone": "phone", "std_phones": "phone"},
    "given_name": {"std_given_name": "given_name", "std_given_initial": "given_initial",
                   "std_name_group": "name_group"},
    "family_name": {"std_family_name": "family_name", "std_family_name_metaphone": "family_metaphone"},
    "street": {"std_street": "street", "std_house_number": "house_number", "std_unit": "unit"},
    "city": {"std_city": "city"},
    "postcode": {"std_postcode": "postcode"},
    "date_of_birth": {"std_dob": "date_of_birth"},
    "company": {"std_company": "company"},
}
"""Encrypted field -> the standardized columns (identity_standardized) derived from it -> hash kind."""

HASH_CHECK_NAME = "pii_hash_key"
KEY_CHECK_NAME = "pii_keys"
_CHECK_TEXT = "accord pii key check"


class PiiKeyError(AccordError):
    """A key needed to read or write encrypted fields is missing or is not the store's."""


def _keys_from(text: str) -> list[Fernet]:
    keys = []
    for i, part in enumerate(p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            keys.append(Fernet(part.encode()))
        except (ValueError, TypeError):
            raise PiiKeyError(f"${KEYS_ENV}: key {i + 1} is not a Fernet key (32 url-safe base64-encoded bytes; "
                              "make one with `accord privacy new-key`)") from None
    return keys


def new_key() -> str:
    return Fernet.generate_key().decode()


@dataclass(frozen=True)
class PiiCodec:
    """Encrypts, decrypts and hashes person values with the keys of the environment."""

    keys: tuple[Fernet, ...]
    hash_key: bytes

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PiiCodec:
        environ = os.environ if environ is None else environ
        keys = _keys_from(environ.get(KEYS_ENV, ""))
        if not keys:
            raise PiiKeyError(f"${KEYS_ENV} is not set: encrypted person fields need their keys (one or more "
                              "Fernet keys, newest first, comma-separated); nothing was changed")
        hash_key = environ.get(HASH_KEY_ENV, "")
        if len(hash_key) < 16:
            raise PiiKeyError(f"${HASH_KEY_ENV} is not set or shorter than 16 characters: matching on encrypted "
                              "fields uses keyed hashes under this key; nothing was changed")
        return cls(tuple(keys), hash_key.encode())

    @cached_property
    def _multi(self) -> MultiFernet:
        return MultiFernet(list(self.keys))

    # --- hashes -------------------------------------------------------------------------------------

    def digest(self, kind: str, standard: str) -> str:
        return hmac.new(self.hash_key, f"{kind}:{standard}".encode("utf-8", "surrogatepass"),
                        hashlib.sha256).hexdigest()[:DIGEST_CHARS]

    def blind(self, kind: str, standard: Any) -> Any:
        """The blind (hash-only) form of a standardized value; None, '' and blind values pass through."""
        if standard is None or standard == "" or (isinstance(standard, str) and standard.startswith(BLIND_PREFIX)):
            return standard
        return BLIND_PREFIX + self.digest(kind, str(standard))

    # --- tokens -------------------------------------------------------------------------------------

    def encrypt(self, kind: str, value: Any, region: str = "US") -> Any:
        """A token for ``value`` (kept as is when empty or a token already)."""
        if value is None or value == "":
            return value
        text = str(value)
        if text.startswith(TOKEN_PREFIX):
            return text
        digest = self.digest(kind, standard_form(kind, text, region))
        return f"{TOKEN_PREFIX}{digest}:{self.keys[0].encrypt(text.encode('utf-8', 'surrogatepass')).decode()}"

    def decrypt(self, token: str) -> str:
        m = TOKEN_RE.fullmatch(token)
        if not m:
            return token
        try:
            return self._multi.decrypt(m.group(2).encode()).decode("utf-8", "surrogatepass")
        except InvalidToken:
            raise PiiKeyError(f"an encrypted value cannot be read with the keys in ${KEYS_ENV}: add the key it "
                              "was written with (keys are tried in order)") from None

    def reveal(self, text: Any) -> Any:
        """``text`` with every token in it decrypted (JSON text too: values are escaped as JSON there)."""
        if not isinstance(text, str) or TOKEN_PREFIX not in text:
            return text
        return TOKEN_RE.sub(lambda m: self.decrypt(m.group(0)), text)

    def reveal_json_text(self, text: Any) -> Any:
        """A JSON document's text with tokens decrypted and re-escaped for JSON."""
        if not isinstance(text, str) or TOKEN_PREFIX not in text:
            return text
        return TOKEN_RE.sub(lambda m: json.dumps(self.decrypt(m.group(0)))[1:-1], text)

    def is_current(self, token: str) -> bool:
        """Whether the token is encrypted with the newest key (rotation skips it)."""
        m = TOKEN_RE.fullmatch(token)
        if not m:
            return True
        try:
            self.keys[0].decrypt(m.group(2).encode())
            return True
        except InvalidToken:
            return False

    def rotate(self, token: str) -> str:
        """The token re-encrypted with the newest key; its hash part is unchanged."""
        m = TOKEN_RE.fullmatch(token)
        if not m:
            return token
        try:
            rotated = self._multi.rotate(m.group(2).encode()).decode()
        except InvalidToken:
            raise PiiKeyError(f"an encrypted value cannot be read with the keys in ${KEYS_ENV}: add the key it "
                              "was written with before rotating; nothing was changed") from None
        return f"{TOKEN_PREFIX}{m.group(1)}:{rotated}"

    def rotate_text(self, text: Any) -> Any:
        if not isinstance(text, str) or TOKEN_PREFIX not in text:
            return text
        return TOKEN_RE.sub(lambda m: self.rotate(m.group(0)), text)

    def check_values(self) -> dict[str, str]:
        """Check values the store keeps: the hash key's (an HMAC) and a token of a constant."""
        return {HASH_CHECK_NAME: hmac.new(self.hash_key, _CHECK_TEXT.encode(), hashlib.sha256).hexdigest(),
                KEY_CHECK_NAME: self.keys[0].encrypt(_CHECK_TEXT.encode()).decode()}


def standard_form(kind: str, value: str, region: str = "US") -> str:
    """The standardized value a token's hash is made of: emails and phones as the identifier index holds
    them (so SQL can turn a token into the blind identifier), other fields trimmed and lowercased."""
    if kind == "email":
        return standardize_email(value).email or value.strip().lower()
    if kind == "phone":
        return standardize_phone(value, region).e164 or value.strip()
    return " ".join(value.split()).lower()


def has_tokens(value: Any) -> bool:
    return isinstance(value, str) and TOKEN_PREFIX in value


def has_tokens_in(value: Any) -> bool:
    """Whether any string of a JSON-like tree holds a token."""
    if isinstance(value, str):
        return TOKEN_PREFIX in value
    if isinstance(value, dict):
        return any(has_tokens_in(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_tokens_in(v) for v in value)
    return False


_ENV_CODEC: dict[tuple[str, str], PiiCodec] = {}


def env_codec(environ: Mapping[str, str] | None = None) -> PiiCodec:
    """The environment's codec, made once per value of the two key variables (PiiKeyError when missing)."""
    environ = os.environ if environ is None else environ
    key = (environ.get(KEYS_ENV, ""), environ.get(HASH_KEY_ENV, ""))
    codec = _ENV_CODEC.get(key)
    if codec is None:
        codec = PiiCodec.from_env(environ)
        _ENV_CODEC.clear()  # keys changed (a rotation in tests, a reloaded environment): forget the old codec
        _ENV_CODEC[key] = codec
    return codec


def reveal_tree(codec: PiiCodec | None, value: Any) -> Any:
    """Every string in a JSON-like tree with its tokens decrypted (``codec`` from the environment when
    None and a token is found)."""
    if isinstance(value, str):
        if TOKEN_PREFIX not in value:
            return value
        return (codec or env_codec()).reveal(value)
    if isinstance(value, dict):
        return {k: reveal_tree(codec, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(reveal_tree(codec, v) for v in value)
    return value


ENCRYPTED_PLACEHOLDER = "[encrypted]"


def reveal_for_display(value: Any) -> Any:
    """A stored value as a person reads it: tokens decrypted with the environment's keys, or shown as
    ``[encrypted]`` when the keys are not set (never the token itself). A key that cannot open a token
    is still an error naming ``$ACCORD_PII_KEYS``."""
    if not isinstance(value, str) or TOKEN_PREFIX not in value:
        return value
    if codec_if_keys() is None:
        return TOKEN_RE.sub(ENCRYPTED_PLACEHOLDER, value)
    return env_codec().reveal(value)


def store_is_encrypted(store: Any) -> bool:
    """Whether values were ever encrypted in this store (the first encrypting ingest records key checks)."""
    return store.fetchone(f"SELECT 1 FROM pii_key_checks WHERE name = '{HASH_CHECK_NAME}'") is not None


def codec_if_keys(environ: Mapping[str, str] | None = None) -> PiiCodec | None:
    """The environment's codec, or None when no PII keys are set (stores without encryption)."""
    environ = os.environ if environ is None else environ
    if not environ.get(KEYS_ENV) and not environ.get(HASH_KEY_ENV):
        return None
    return PiiCodec.from_env(environ)


def blind_forms(id_type: str, forms: Iterable[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """Lookups: the identifier forms plus their blind forms when the environment has the hash key (an email or
    phone stored encrypted is indexed by its blind form only)."""
    forms = list(forms)
    environ = os.environ if environ is None else environ
    hash_key = environ.get(HASH_KEY_ENV, "")
    if id_type not in ("email", "phone") or len(hash_key) < 16:
        return forms
    blind = [BLIND_PREFIX + hmac.new(hash_key.encode(), f"{id_type}:{f}".encode("utf-8", "surrogatepass"),
                                     hashlib.sha256).hexdigest()[:DIGEST_CHARS] for f in forms]
    return sorted(set(forms) | set(blind))


# --- SQL both engines share ---------------------------------------------------------------------------

def group_key_sql(expr: str) -> str:
    """A case-insensitive grouping key of a stored value: tokens by their hash part (two tokens of one value
    differ, their hashes do not), other text lowercased."""
    return (f"CASE WHEN strpos({expr}, '{TOKEN_PREFIX}') > 0 "
            f"THEN LOWER(regexp_replace({expr}, '{TOKEN_SQL_PATTERN}', '\\1', 'g')) ELSE LOWER({expr}) END")


def unless_token_sql(expr: str, normalised: str) -> str:
    """``normalised`` (an expression of ``expr``) for plain values, ``expr`` itself for tokens."""
    return f"CASE WHEN {expr} LIKE '{TOKEN_PREFIX}%' THEN {expr} ELSE {normalised} END"


def index_value_sql(expr: str, plain: str) -> str:
    """The identifier index's value of a stored email or phone: a token's blind form, else ``plain``."""
    return (f"CASE WHEN {expr} LIKE '{TOKEN_PREFIX}%' THEN '{BLIND_PREFIX}' || substr({expr}, "
            f"{len(TOKEN_PREFIX) + 1}, {DIGEST_CHARS}) ELSE {plain} END")
