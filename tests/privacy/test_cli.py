"""accord privacy: erase, export, consent, audit, retention, receipts; --purpose on verbs that read PII."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from accord.cli import main
from accord.store import open_store
from tests.privacy.conftest import ANN_IDENTIFIERS, World, project_dict


@pytest.fixture
def cli(world: World, store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    project = tmp_path_factory.mktemp("project")
    (project / "accord.yaml").write_text(yaml.safe_dump(project_dict(store_url, world.data_dir)), encoding="utf-8")
    world.store.close()  # DuckDB: one writer; each command opens the store itself

    def run(*args: str) -> Any:
        result = CliRunner().invoke(main, ["-c", str(project), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    run.store_url = store_url  # type: ignore[attr-defined]
    run.project = project  # type: ignore[attr-defined]
    return run


def rows(store_url: str, sql: str) -> list[tuple[Any, ...]]:
    with open_store(store_url) as store:
        return store.fetchall(sql)


def test_erase_prints_the_receipt_and_purges(cli: Any, world: World) -> None:
    receipt = json.loads(cli("privacy", "erase", "email:ann.quill@example.com", "--yes", "--json",
                             "--purpose", "request 5").output)
    assert (receipt["customer_ids"], receipt["counts"]["source_records"], receipt["purge"]["receipts"]) == (
        [world.ann], 2, 1)
    assert rows(cli.store_url, "SELECT purpose, purged_at IS NOT NULL FROM erasure_receipts") == [("request 5", True)]


def test_erase_asks_before_erasing(cli: Any, world: World) -> None:
    result = CliRunner().invoke(main, ["-c", str(cli.project), "privacy", "erase", world.ann], input="n\n")
    assert (result.exit_code, rows(cli.store_url, "SELECT count(*) FROM erasure_receipts")) == (1, [(0,)])


def test_export_writes_a_zip_of_csvs_and_logs_the_purpose(cli: Any, world: World, tmp_path: Path) -> None:
    out = tmp_path / "ann.zip"
    cli("privacy", "export", world.ann, "--format", "zip", "--out", str(out), "--purpose", "access request 3")
    assert "tables/source_records.csv" in zipfile.ZipFile(out).namelist()
    assert rows(cli.store_url, "SELECT action, customer_id, purpose, channel FROM access_log") == [
        ("export", world.ann, "access request 3", "cli")]


def test_export_json_holds_the_persons_records(cli: Any, world: World, tmp_path: Path) -> None:
    out = tmp_path / "ann.json"
    cli("privacy", "export", "phone:+14155550142", "--out", str(out))
    assert json.loads(out.read_text())["records"] == ["crm:1001", "shop:S-77"]


def test_consent_set_records_a_decision(cli: Any, world: World) -> None:
    data = json.loads(cli("privacy", "consent", world.bob, "--set", "personalization=granted", "--json").output)
    assert {c["purpose"]: c["status"] for c in data["consent"]}["personalization"] == "granted"


def test_profile_takes_a_purpose_and_is_logged(cli: Any, world: World) -> None:
    cli("profile", world.ann, "--json", "--purpose", "complaint 12")
    assert rows(cli.store_url, "SELECT action, customer_id, purpose FROM access_log") == [
        ("profile.read", world.ann, "complaint 12")]


def test_audit_lists_the_accesses_without_identifiers(cli: Any, world: World) -> None:
    cli("profile", world.ann, "--json", "--purpose", "check")
    cli("privacy", "erase", "email:ann.quill@example.com", "--yes", "--no-purge")
    text = cli("privacy", "audit", "--json").output
    assert [(e["action"], e["customer_id"]) for e in json.loads(text)] == [("erase", world.ann),
                                                                           ("profile.read", world.ann)]
    assert not any(n.lower() in text.lower() for n in ANN_IDENTIFIERS)


def test_retention_dry_run_reports_without_deleting(cli: Any, world: World) -> None:
    report = json.loads(cli("privacy", "retention", "--dry-run", "--json").output)
    assert (report["dry_run"], report["rows"]) == (True, 0)


def test_receipts_lists_erasures(cli: Any, world: World) -> None:
    cli("privacy", "erase", world.ann, "--yes", "--no-purge")
    [receipt] = json.loads(cli("privacy", "receipts", "--json").output)
    assert (receipt["customer_ids"], receipt["purged_at"]) == ([world.ann], None)


def test_tables_lists_the_registry(cli: Any) -> None:
    assert "source_records" in cli("privacy", "tables").output
