"""PII at rest (issue #8 item 8): configured fields are stored encrypted, matching works on keyed hashes.

The generated sample is ingested, resolved and profiled twice on each backend, without and with
``privacy.encryption``; the smaller Ann/Bob world checks lookups, erasure and key rotation.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from accord.config import ProjectConfig, load_config
from accord.errors import ConfigError
from accord.identity.settings import IdentitySettings, default_model_settings
from accord.identity.stage import resolve
from accord.privacy.encryption import rotate_keys
from accord.privacy.erasure import erase
from accord.privacy.export import export_person
from accord.privacy.settings import PrivacySettings
from accord.privacy.pii import BLIND_PREFIX, HASH_KEY_ENV, KEYS_ENV, TOKEN_PREFIX, PiiCodec, PiiKeyError
from accord.profiles import build_profiles
from accord.profiles.export import profiles_frame
from accord.profiles.lookup import profile
from accord.sources import ingest
from accord.sources.quarantine import list_quarantine
from accord.store import Store, open_store
from accord.synth import generate
from tests.conftest import PG_URL, _pg_url
from tests.privacy.conftest import customer_of, project_config, write_sources
from tests.privacy.test_erasure import file_hits, table_text_hits
from tests.profiles.helpers import clustering

FIELDS = ["emails", "phones", "date_of_birth", "street"]
ENCRYPTION = {"encryption": {"fields": FIELDS}}
KEY_1 = Fernet.generate_key().decode()
KEY_2 = Fernet.generate_key().decode()
HASH_KEY = "a-hash-key-for-the-tests-0123"
ENCRYPTED_STD = ("std_email", "std_emails", "std_phone", "std_phones", "std_dob", "std_street")
FEW_PAIRS = IdentitySettings(model=default_model_settings().model_copy(update={"u_max_pairs": 2e5}))


def keys_env(monkeypatch: pytest.MonkeyPatch, keys: str = KEY_1) -> None:
    monkeypatch.setenv(KEYS_ENV, keys)
    monkeypatch.setenv(HASH_KEY_ENV, HASH_KEY)


# --- the generated sample, resolved without and with encryption ----------------------------------------

@dataclass
class Runs:
    plain: Store
    encrypted: Store
    encrypted_cfg: ProjectConfig
    encrypted_file: Path | None


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("synth")
    generate(folder, people=150, seed=11)
    return folder


def _resolved(folder: Path, url: str, privacy: dict[str, Any] | None) -> tuple[Store, ProjectConfig]:
    cfg = load_config(folder / "accord.yaml")
    cfg = cfg.model_copy(update={"store": url, "privacy": PrivacySettings.model_validate(privacy or {})})
    store = open_store(url)
    reports = ingest(store, cfg, run_id="run_1")
    assert [r.error for r in reports] == [None] * len(reports)
    resolve(store, cfg, "run_1", settings=FEW_PAIRS)
    build_profiles(store, cfg, None, "run_1")
    return store, cfg


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def runs(request: pytest.FixtureRequest, sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    folder = tmp_path_factory.mktemp(request.param)
    schemas = [f"t_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    if request.param == "duckdb":
        urls = [f"duckdb:///{folder / 'plain.duckdb'}", f"duckdb:///{folder / 'encrypted.duckdb'}"]
    else:
        urls = [_pg_url(s) for s in schemas]
    with pytest.MonkeyPatch.context() as mp:
        keys_env(mp)
        plain, _ = _resolved(sample, urls[0], None)
        encrypted, cfg = _resolved(sample, urls[1], ENCRYPTION)
        yield Runs(plain, encrypted, cfg, folder / "encrypted.duckdb" if request.param == "duckdb" else None)
    plain.close()
    encrypted.close()
    if request.param == "postgresql":
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            for s in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')


def _clusters(store: Store) -> set[frozenset[str]]:
    by_customer: dict[str, set[str]] = {}
    for source, key, customer_id in store.fetchall("SELECT source, record_key, customer_id FROM record_customer"):
        by_customer.setdefault(customer_id, set()).add(f"{source}:{key}")
    return {frozenset(v) for v in by_customer.values()}


def _agree_exactly(store: Store, cluster: frozenset[str]) -> bool:
    """Whether the cluster's records, where they hold a value, hold the same standardized encrypted values."""
    marks = ", ".join("?" for _ in cluster)
    rows = store.fetchall(f"SELECT {', '.join(ENCRYPTED_STD)} FROM identity_standardized WHERE rid IN ({marks})",
                          sorted(cluster))
    return all(len({r[i] for r in rows if r[i] is not None}) <= 1 for i in range(len(ENCRYPTED_STD)))


def test_records_whose_encrypted_fields_match_exactly_cluster_as_without_encryption(runs: Runs) -> None:
    plain, encrypted = _clusters(runs.plain), _clusters(runs.encrypted)
    exact = {c for c in plain if _agree_exactly(runs.plain, c)}
    assert len(exact) >= 0.9 * len(plain)
    assert exact <= encrypted  # what differs has only fuzzy agreement (a day/month swap, a typo) on those fields


def test_no_table_holds_a_plaintext_value_of_an_encrypted_field(runs: Runs) -> None:
    needles: set[str] = set()
    for emails, phones, dob, street in runs.plain.fetchall(
            "SELECT CAST(emails AS TEXT), CAST(phones AS TEXT), date_of_birth, street FROM source_records"):
        needles.update(str(v) for v in json.loads(emails or "[]") + json.loads(phones or "[]"))
        needles.update(v for v in (dob, street) if v)
    needles.update(v for (v,) in runs.plain.fetchall(
        "SELECT value FROM customer_identifiers WHERE id_type IN ('email', 'phone')"))
    needles = {n for n in needles if len(n) >= 8 and len(set(n)) >= 4}  # not placeholders such as 0000000000
    assert len(needles) > 200
    assert len(table_text_hits(runs.plain, tuple(sorted(needles)))) > 5
    assert table_text_hits(runs.encrypted, tuple(sorted(needles))) == {}
    if runs.encrypted_file is not None:
        runs.encrypted.execute("CHECKPOINT")
        assert file_hits(runs.encrypted_file.parent, tuple(sorted(needles))).keys() <= {
            str(runs.encrypted_file.parent / f"plain.duckdb{wal}") for wal in ("", ".wal")}


def test_encrypted_values_are_tokens_and_matching_columns_keyed_hashes(runs: Runs) -> None:
    emails = [json.loads(e) for (e,) in runs.encrypted.fetchall(
        "SELECT CAST(emails AS TEXT) FROM source_records WHERE emails IS NOT NULL")]
    assert emails and all(v.startswith(TOKEN_PREFIX) for e in emails for v in e)
    std = {v for (v,) in runs.encrypted.fetchall(
        "SELECT std_email FROM identity_standardized WHERE std_email IS NOT NULL")}
    assert std and all(v.startswith(BLIND_PREFIX) for v in std)
    index = {v for (v,) in runs.encrypted.fetchall(
        "SELECT value FROM customer_identifiers WHERE id_type IN ('email', 'phone')")}
    assert index and all(v.startswith(BLIND_PREFIX) for v in index)


def test_a_profile_and_the_exports_read_decrypted(runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    keys_env(monkeypatch)
    # a person with one record: the golden values are that record's, decrypted (emails and phones keep the
    # record's spelling where plain golden records normalise them)
    source, key = runs.plain.fetchone(
        "SELECT sr.source, sr.record_key FROM source_records sr JOIN record_customer rc ON rc.source = sr.source "
        "AND rc.record_key = sr.record_key WHERE sr.emails IS NOT NULL AND sr.phones IS NOT NULL "
        "AND sr.street IS NOT NULL AND rc.customer_id IN (SELECT customer_id FROM record_customer "
        "GROUP BY customer_id HAVING count(*) = 1) ORDER BY sr.source, sr.record_key")
    plain = profile(runs.plain, customer_of(runs.plain, source, key))
    shown = profile(runs.encrypted, customer_of(runs.encrypted, source, key))
    assert shown["attributes"]["email"]["value"].strip().lower() == plain["attributes"]["email"]["value"]
    assert re.sub("[^0-9+]", "", shown["attributes"]["phone"]["value"]) == plain["attributes"]["phone"]["value"]
    assert shown["attributes"]["street"]["value"] == plain["attributes"]["street"]["value"]
    person = export_person(runs.encrypted, f"{shown['customer_id']}")
    assert TOKEN_PREFIX not in json.dumps(person, default=str)
    assert plain["attributes"]["email"]["value"] in json.dumps(person["tables"]["source_records"], default=str).lower()
    frame = profiles_frame(runs.encrypted)
    assert not frame.astype(str).apply(lambda c: c.str.contains(TOKEN_PREFIX, regex=False)).any().any()


def test_a_record_resolved_in_real_time_is_stored_encrypted_and_joins_its_customer(
        runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    from accord.identity.incremental import resolve_records

    keys_env(monkeypatch)
    source, key, emails = runs.encrypted.fetchone(
        "SELECT source, record_key, CAST(emails AS TEXT) FROM source_records WHERE emails IS NOT NULL "
        "ORDER BY source, record_key")
    email = json.loads(PiiCodec.from_env().reveal_json_text(emails))[0]
    record = {"source": "app", "record_key": "u-1", "emails": [email.upper()]}
    [assignment] = resolve_records(runs.encrypted, runs.encrypted_cfg, [record], settings=FEW_PAIRS)
    assert (assignment.outcome, assignment.customer_id) == ("joined", customer_of(runs.encrypted, source, key))
    stored = runs.encrypted.scalar("SELECT CAST(emails AS TEXT) FROM source_records WHERE record_key = 'u-1'")
    assert json.loads(stored)[0].startswith(TOKEN_PREFIX) and email.lower() not in stored.lower()


# --- the small world: lookups, erasure, rotation ---------------------------------------------------------

@pytest.fixture
def encrypted_world(encrypted_project: tuple[Store, ProjectConfig]) -> Store:
    return encrypted_project[0]


@pytest.fixture
def encrypted_project(store: Store, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                      ) -> tuple[Store, ProjectConfig]:
    keys_env(monkeypatch)
    write_sources(tmp_path / "data")
    (tmp_path / "data" / "crm.csv").write_text(
        (tmp_path / "data" / "crm.csv").read_text() + "1003,Cy,Row,cy.row@example.net,not-a-phone,maybe,31/31/2024\n")
    cfg = project_config(store_url, tmp_path / "data", ENCRYPTION)
    reports = ingest(store, cfg, run_id="run_1")
    assert [r.error for r in reports] == [None, None, None]
    build_profiles(store, cfg, clustering(["crm:1001", "shop:S-77"], ["crm:1002", "shop:S-88"]), "run_1")
    return store, cfg


def test_the_api_gives_an_admin_the_decrypted_profile_found_by_email(
        encrypted_project: tuple[Store, ProjectConfig]) -> None:
    from fastapi.testclient import TestClient

    from accord.api import create_app

    store, cfg = encrypted_project
    store.close()  # the app's store thread is the one connection
    with TestClient(create_app(cfg, environ={"ACCORD_ADMIN_KEY": "k-admin"})) as client:
        headers = {"Authorization": "Bearer k-admin"}
        found = client.get("/v1/profiles/email:ANN.quill@example.com", headers=headers)
        records = client.get("/v1/profiles/email:ann.quill@example.com/records", headers=headers)
    assert found.status_code == 200 and records.status_code == 200
    assert found.json()["attributes"]["email"]["value"].lower() == "ann.quill@example.com"
    assert TOKEN_PREFIX not in found.text + records.text
    assert "(415) 555-0142" in records.text


def test_lookup_by_email_finds_the_customer_through_its_keyed_hash(encrypted_world: Store) -> None:
    from accord.api.routers.profiles import customers_by_index, index_forms

    ann = customer_of(encrypted_world, "crm", "1001")
    assert customers_by_index(encrypted_world, "email", index_forms("email", "ANN.quill@example.com", "US")) == [ann]
    assert customers_by_index(encrypted_world, "phone", index_forms("phone", "(415) 555-0142", "US")) == [ann]


def test_quarantined_rows_are_stored_encrypted_and_listed_decrypted(encrypted_world: Store) -> None:
    stored = encrypted_world.fetchall("SELECT raw_text, reason FROM quarantine")
    assert stored and all(t.startswith(TOKEN_PREFIX) and r.startswith(TOKEN_PREFIX) for t, r in stored)
    assert any("cy.row@example.net" in r["raw_text"] for r in list_quarantine(encrypted_world))


def test_erasure_by_email_removes_the_person_and_their_tokens(encrypted_world: Store) -> None:
    ann = customer_of(encrypted_world, "crm", "1001")
    codec = PiiCodec.from_env()
    digest = codec.digest("email", "ann.quill@example.com")
    receipt = erase(encrypted_world, "email:Ann.Quill@Example.com", actor="user:test")
    assert receipt.customer_ids == [ann]
    assert receipt.counts["source_records"] == 2 and receipt.counts["events"] == 1
    assert table_text_hits(encrypted_world, (digest, "ann.quill@example.com", "+14155550142")) == {}


def test_erasure_without_the_keys_is_refused_and_erases_nothing(
        encrypted_world: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEYS_ENV)
    monkeypatch.delenv(HASH_KEY_ENV)
    with pytest.raises(PiiKeyError, match=KEYS_ENV):
        erase(encrypted_world, "email:ann.quill@example.com", actor="user:test")
    assert encrypted_world.scalar("SELECT count(*) FROM source_records") == 4


def test_rotation_re_encrypts_every_value_and_the_old_key_alone_then_fails(
        encrypted_world: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    ann = customer_of(encrypted_world, "crm", "1001")
    before = profile(encrypted_world, ann)
    keys_env(monkeypatch, f"{KEY_2},{KEY_1}")
    report = rotate_keys(encrypted_world, PiiCodec.from_env())
    assert report.tables["source_records"] == 4 and report.tables["golden_multi"] > 0
    assert rotate_keys(encrypted_world, PiiCodec.from_env()).tables == {}  # resumable: nothing left to do
    keys_env(monkeypatch, KEY_2)
    assert profile(encrypted_world, ann) == before
    assert any("cy.row@example.net" in r["raw_text"] for r in list_quarantine(encrypted_world))
    keys_env(monkeypatch, KEY_1)
    with pytest.raises(PiiKeyError, match=KEYS_ENV):
        profile(encrypted_world, ann)


def test_accord_privacy_rotate_key_reports_counts_and_refuses_without_keys(
        encrypted_project: tuple[Store, ProjectConfig], store_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml
    from click.testing import CliRunner

    from accord.cli import main
    from tests.privacy.conftest import project_dict

    store, _ = encrypted_project
    store.close()  # each command opens the store itself
    (tmp_path / "accord.yaml").write_text(yaml.safe_dump(project_dict(store_url, tmp_path / "data", ENCRYPTION)))
    monkeypatch.delenv(KEYS_ENV)
    refused = CliRunner().invoke(main, ["-c", str(tmp_path), "privacy", "rotate-key"])
    assert refused.exit_code != 0 and KEYS_ENV in refused.output
    keys_env(monkeypatch, f"{KEY_2},{KEY_1}")
    done = CliRunner().invoke(main, ["-c", str(tmp_path), "privacy", "rotate-key", "--json"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["tables"]["source_records"] == 4


def test_a_missing_key_is_refused_naming_the_variable_and_the_store_is_untouched(
        store: Store, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEYS_ENV, raising=False)
    write_sources(tmp_path / "data")
    reports = ingest(store, project_config(store_url, tmp_path / "data", ENCRYPTION), run_id="run_1")
    assert all(KEYS_ENV in (r.error or "") for r in reports)
    assert store.scalar("SELECT count(*) FROM source_records") == 0
    assert store.scalar("SELECT count(*) FROM events") == 0


def test_another_hash_key_is_refused(encrypted_world: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from accord.privacy.encryption import check_keys

    monkeypatch.setenv(HASH_KEY_ENV, "a-different-hash-key-0123456")
    with pytest.raises(PiiKeyError, match=HASH_KEY_ENV):
        check_keys(encrypted_world, PiiCodec.from_env())


# --- config and the codec -------------------------------------------------------------------------------

def test_names_are_encrypted_together_and_unknown_fields_are_refused(tmp_path: Path) -> None:
    with pytest.raises((ConfigError, ValueError), match="full_name"):
        project_config("duckdb:///x.duckdb", tmp_path, {"encryption": {"fields": ["given_name", "family_name"]}})
    with pytest.raises((ConfigError, ValueError), match="consent"):
        project_config("duckdb:///x.duckdb", tmp_path, {"encryption": {"fields": ["consent"]}})


def test_a_token_carries_the_keyed_hash_of_the_standardized_value() -> None:
    codec = PiiCodec.from_env({KEYS_ENV: KEY_1, HASH_KEY_ENV: HASH_KEY})
    a, b = codec.encrypt("email", "Ann.Quill@Example.com"), codec.encrypt("email", "ann.quill@example.com")
    assert a != b and a.split(":")[1] == b.split(":")[1] == codec.digest("email", "ann.quill@example.com")
    assert codec.reveal(f'["{a}", "x"]') == '["Ann.Quill@Example.com", "x"]'
    digest = codec.digest("email", "ann.quill@example.com")
    assert codec.blind("email", "ann.quill@example.com") == BLIND_PREFIX + digest
