"""With ``privacy.encryption`` (issue #8 item 8): the review queue shows people's values, never tokens, and
``row_hash`` is keyed with the PII hash key, so a guessed row cannot be confirmed against the store while
re-ingesting unchanged rows still changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.config import ProjectConfig
from accord.identity.realtime import record_row
from accord.privacy.encryption import Encryption, encrypt_record_rows
from accord.privacy.pii import ENCRYPTED_PLACEHOLDER, HASH_KEY_ENV, KEYS_ENV, TOKEN_PREFIX, PiiCodec
from accord.privacy.settings import EncryptionSettings
from accord.profiles.review import pair_view, record_fields
from accord.sources import ingest
from accord.store import Store, open_store
from accord.ui.data.review import side_by_side
from accord.ui.masking import masker_for
from tests.privacy.conftest import project_config, write_sources
from tests.privacy.test_encryption import ENCRYPTION, encrypted_project, encrypted_world, keys_env  # noqa: F401

ANN = "crm:1001"
SHOP_ANN = "shop:S-77"


# --- the review queue -------------------------------------------------------------------------------------

def test_a_reviewer_who_may_see_pii_reads_the_records_decrypted(encrypted_world: Store) -> None:
    fields = record_fields(encrypted_world, ANN)
    assert fields is not None
    assert (fields["emails"], fields["phones"]) == ("Ann.Quill@Example.com", "(415) 555-0142")
    assert TOKEN_PREFIX not in str(fields)


def test_accord_review_shows_both_records_decrypted_and_compares_the_values(
        encrypted_project: tuple[Store, ProjectConfig]) -> None:
    store, cfg = encrypted_project
    view = pair_view(store, cfg, ANN, SHOP_ANN)
    emails = next(f for f in view["fields"] if f["field"] == "emails")
    assert emails == {"field": "emails", "a": "Ann.Quill@Example.com", "b": "ann.quill@example.com", "same": True}
    assert TOKEN_PREFIX not in str(view["fields"])


def test_the_dashboard_review_masks_decrypted_values_for_roles_without_pii(
        encrypted_project: tuple[Store, ProjectConfig]) -> None:
    store, cfg = encrypted_project
    rows = {r["field"]: r for r in side_by_side(store, ANN, SHOP_ANN, masker_for(cfg.privacy))}
    assert rows["emails"]["a"] == "A***@Example.com"
    assert rows["emails"]["same"] is True  # compared on the values, shown masked
    assert TOKEN_PREFIX not in str(rows) and "555-0142" not in str(rows)


def test_without_the_keys_the_review_shows_encrypted_placeholders_not_tokens(
        encrypted_world: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEYS_ENV)
    monkeypatch.delenv(HASH_KEY_ENV)
    fields = record_fields(encrypted_world, ANN)
    assert fields is not None and fields["emails"] == ENCRYPTED_PLACEHOLDER
    assert fields["name"] == "Ann Quill"  # names are not among the encrypted fields here
    assert TOKEN_PREFIX not in str(fields)


# --- row_hash -----------------------------------------------------------------------------------------------

def _hashes(store: Store) -> dict[str, str]:
    rows = store.fetchall("SELECT source || ':' || record_key, row_hash FROM source_records UNION ALL "
                          "SELECT event_id, row_hash FROM events")
    return dict(rows)


def _ingested(url: str, data: Path, privacy: dict | None) -> dict[str, str]:
    with open_store(url) as other:
        assert [r.error for r in ingest(other, project_config(url, data, privacy), run_id="run_1")] == [None] * 3
        return _hashes(other)


def test_row_hash_is_keyed_with_the_pii_hash_key(
        store: Store, store_url: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    keys_env(monkeypatch)
    data = tmp_path_factory.mktemp("sources")
    write_sources(data)
    assert [r.error for r in ingest(store, project_config(store_url, data, ENCRYPTION), run_id="run_1")] == [None] * 3
    keyed = _hashes(store)
    plain = _ingested(f"duckdb:///{tmp_path / 'plain.duckdb'}", data, None)
    monkeypatch.setenv(HASH_KEY_ENV, "another-hash-key-0123456789")
    other_key = _ingested(f"duckdb:///{tmp_path / 'other.duckdb'}", data, ENCRYPTION)
    assert keyed.keys() == plain.keys() == other_key.keys() and len(keyed) == 6  # 4 people rows, 2 orders
    assert all(keyed[k] != plain[k] and keyed[k] != other_key[k] for k in keyed)
    assert all(len(h) == 32 for h in keyed.values())


def test_with_a_keyed_row_hash_unchanged_rows_stay_unchanged_and_changes_are_found(
        store: Store, store_url: str, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    keys_env(monkeypatch)
    data = tmp_path_factory.mktemp("sources")
    write_sources(data)
    cfg = project_config(store_url, data, ENCRYPTION)
    ingest(store, cfg, run_id="run_1")
    again = {r.source: (r.new, r.updated, r.unchanged) for r in ingest(store, cfg, run_id="run_2")}
    assert again == {"crm": (0, 0, 2), "shop": (0, 0, 2), "orders": (0, 0, 2)}
    crm = data / "crm.csv"
    crm.write_text(crm.read_text().replace("(415) 555-0199", "(415) 555-0100"))
    changed = {r.source: (r.new, r.updated, r.unchanged) for r in ingest(store, cfg, run_id="run_3")}
    assert changed["crm"] == (0, 1, 1)


def test_a_record_resolved_in_real_time_gets_a_keyed_row_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    keys_env(monkeypatch)
    enc = Encryption(EncryptionSettings(fields=["emails"]), PiiCodec.from_env())
    row = record_row({"source": "api", "record_key": "u-1", "emails": ["ann@example.com"]}, 0)
    [first], [second] = encrypt_record_rows([row], enc, "US"), encrypt_record_rows([row], enc, "US")
    assert first["row_hash"] == second["row_hash"] != row["row_hash"]  # the same values, the same keyed hash
    monkeypatch.setenv(HASH_KEY_ENV, "another-hash-key-0123456789")
    other = Encryption(enc.settings, PiiCodec.from_env())
    assert encrypt_record_rows([row], other, "US")[0]["row_hash"] != first["row_hash"]
