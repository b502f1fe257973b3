"""The ``accord`` command: help on every verb, ingest summaries, exit codes, the quarantine round trip.

Tests that touch a store run on DuckDB and on PostgreSQL (the ``store_url`` fixture).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner, Result

from accord import __version__
from accord.cli import main
from accord.store import open_store

PEOPLE_CSV = "id,first,last,email\n1,Ann,Lee,ann@example.com\n2,Bob,Smith,bob@example.com\n3,Cy\n"


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, command in sorted(group.commands.items()):
        paths.append(prefix + (name,))
        if isinstance(command, click.Group):
            paths.extend(_command_paths(command, prefix + (name,)))
    return paths


def accord(*args: str) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def make_project(root: Path, store_url: str, *sources: dict[str, Any]) -> Path:
    sources = sources or ({"name": "crm", "format": "csv", "path": "crm.csv", "primary_key": "id",
                           "snapshot": "full", "fields": {"given_name": "first", "family_name": "last",
                                                          "emails": ["email"]}},)
    (root / "accord.yaml").write_text(yaml.safe_dump({"store": store_url, "sources": list(sources)}))
    (root / "crm.csv").write_text(PEOPLE_CSV)
    return root


def one_line(text: str) -> str:
    return " ".join(text.split())


# --- help ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [()] + _command_paths(main), ids=lambda p: " ".join(p) or "accord")
def test_help_exits_zero_for_every_verb(path):
    result = accord(*path, "--help")

    assert result.exit_code == 0, result.output
    usage = result.stdout.splitlines()[0]
    assert usage.startswith("Usage: ") and f" {' '.join(path)} ".replace("  ", " ") in f"{usage} ", usage


def test_version_prints_the_package_version():
    result = accord("--version")

    assert (result.exit_code, result.stdout) == (0, f"accord, version {__version__}\n")


# --- init ---------------------------------------------------------------------------------------


def test_init_writes_a_starter_project_that_ingests_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    init = accord("init", "demo")
    ingest = accord("-c", "demo", "ingest", "--json")

    assert init.exit_code == 0, init.output
    assert init.stdout.splitlines()[:2] == ["wrote demo/accord.yaml", "wrote demo/data/customers.csv"]
    assert ingest.exit_code == 0, ingest.output
    (report,) = json.loads(ingest.stdout)
    assert {k: report[k] for k in ("source", "read", "new", "quarantined", "error")} == {
        "source": "crm", "read": 3, "new": 3, "quarantined": 0, "error": None}
    assert (tmp_path / "demo" / "accord.duckdb").exists()


def test_the_starter_project_runs_every_stage_though_it_is_too_small_to_train_on(tmp_path, monkeypatch):
    # Three different people: no pair matches the prior rules, so the estimated prior is 0.
    monkeypatch.chdir(tmp_path)
    accord("init", "demo")

    run = accord("-c", "demo", "run")

    assert run.exit_code == 0, run.output
    assert "ok" in run.stdout.splitlines()[-1]


def test_init_refuses_to_overwrite_a_project_without_force(tmp_path):
    (tmp_path / "accord.yaml").write_text("project: mine\n")

    result = accord("init", tmp_path)

    assert result.exit_code == 1
    assert one_line(result.stderr) == f"error: {tmp_path / 'accord.yaml'} already exists; pass --force to overwrite it"
    assert (tmp_path / "accord.yaml").read_text() == "project: mine\n"


def test_init_with_force_overwrites_a_project(tmp_path):
    (tmp_path / "accord.yaml").write_text("project: mine\n")

    result = accord("init", tmp_path, "--force")

    assert result.exit_code == 0, result.output
    assert "project: my-project" in (tmp_path / "accord.yaml").read_text()


# --- ingest -------------------------------------------------------------------------------------


def test_ingest_prints_a_summary_per_source(tmp_path, store_url):
    make_project(tmp_path, store_url)

    result = accord("-c", tmp_path, "ingest")

    assert result.exit_code == 0, result.output
    header = re.search(r"source\W+read\W+new\W+updated\W+unchanged\W+deleted\W+quarantined\W+seconds", result.stdout)
    assert header, result.stdout
    assert re.search(r"crm\W+3\W+2\W+0\W+0\W+0\W+1\W+\d+\.\d\d", result.stdout), result.stdout
    assert one_line(result.stderr) == "crm: 1 row(s) quarantined; see 'accord quarantine list --source crm'"


def test_ingest_json_prints_the_report_of_each_source(tmp_path, store_url):
    make_project(tmp_path, store_url)
    accord("-c", tmp_path, "ingest")

    result = accord("-c", tmp_path, "ingest", "--json")

    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.stdout)
    report.pop("seconds")
    assert report == {"source": "crm", "read": 3, "new": 0, "updated": 0, "unchanged": 2, "deleted": 0,
                      "quarantined": 1, "error": None, "warnings": [], "suppressed": 0}


def test_a_failing_source_exits_1_naming_its_file_and_the_others_still_run(tmp_path, store_url):
    make_project(tmp_path, store_url,
                 {"name": "crm", "format": "csv", "path": "crm.csv", "primary_key": "id",
                  "fields": {"given_name": "first"}},
                 {"name": "shop", "format": "csv", "path": "shop.csv", "primary_key": "id",
                  "fields": {"given_name": "first"}})

    result = accord("-c", tmp_path, "ingest", "--json")

    assert result.exit_code == 1
    crm, shop = json.loads(result.stdout)
    assert (crm["error"], crm["new"]) == (None, 2)
    assert shop["error"] == f"{tmp_path / 'shop.csv'}: no such file (source 'shop', path 'shop.csv' in accord.yaml)"
    with open_store(store_url) as store:
        assert store.fetchall("SELECT command, status FROM runs") == [("ingest", "failed")]
        assert store.scalar("SELECT count(*) FROM source_records") == 2


def test_a_failing_source_prints_its_error_in_the_summary(tmp_path, store_url):
    make_project(tmp_path, store_url, {"name": "crm", "format": "csv", "path": "missing.csv", "primary_key": "id",
                                       "fields": {"given_name": "first"}})

    result = accord("-c", tmp_path, "ingest")

    assert result.exit_code == 1
    assert re.search(r"crm\W+failed", result.stdout), result.stdout
    assert one_line(result.stderr) == (f"error: crm: {tmp_path / 'missing.csv'}: no such file (source 'crm', "
                                       "path 'missing.csv' in accord.yaml)")


@pytest.mark.parametrize(("source", "message"), [
    ({"path": "empty.csv"}, "{root}/empty.csv: the file is empty; expected a header row and data rows"),
    ({"fields": {"given_name": "firstname"}},
     ("{root}/crm.csv: column(s) 'firstname' named in the mapping of source 'crm' are not in the data; its columns "
      "are: id, first, last, email")),
    ({"format": "sql", "path": None, "sql": {"url": "postgresql://127.0.0.1:1/x", "query": "SELECT 1 AS id"}},
     "source 'crm' (sql): cannot reach the database: "),
], ids=["empty file", "missing column", "unreachable database"])
def test_a_refused_source_exits_1_with_its_message_and_stores_nothing(tmp_path, store_url, source, message):
    make_project(tmp_path, store_url, {"name": "crm", "format": "csv", "path": "crm.csv", "primary_key": "id",
                                       "fields": {"given_name": "first"}, **source})
    (tmp_path / "empty.csv").write_text("")

    result = accord("-c", tmp_path, "ingest")

    assert result.exit_code == 1
    assert one_line(result.stderr).startswith("error: crm: " + message.format(root=tmp_path)), result.stderr
    with open_store(store_url) as store:
        assert store.scalar("SELECT count(*) FROM source_records") == 0
        assert store.scalar("SELECT count(*) FROM quarantine") == 0


def test_an_empty_full_snapshot_is_refused_unless_allowed(tmp_path, store_url):
    make_project(tmp_path, store_url)
    accord("-c", tmp_path, "ingest")
    (tmp_path / "crm.csv").write_text("id,first,last,email\n")

    refused = accord("-c", tmp_path, "ingest")
    allowed = accord("-c", tmp_path, "ingest", "--allow-empty-snapshot", "--json")

    assert refused.exit_code == 1
    assert "pass --allow-empty-snapshot" in one_line(refused.stderr)
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.stdout)[0]["deleted"] == 2


def test_an_unknown_source_exits_1_listing_the_known_ones(tmp_path, store_url):
    make_project(tmp_path, store_url)

    result = accord("-c", tmp_path, "ingest", "nope")

    assert result.exit_code == 1
    assert one_line(result.stderr) == f"error: no source named 'nope' in {tmp_path / 'accord.yaml'}; known: crm"


def test_an_invalid_config_exits_1_with_the_located_message(tmp_path):
    (tmp_path / "accord.yaml").write_text("sources:\n  - name: crm\n    format: xls\n")

    result = accord("-c", tmp_path, "ingest")

    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"error: {tmp_path / 'accord.yaml'}:3: sources[0].format: expected one of csv, jsonl, parquet, sql; got 'xls'")
    assert "Traceback" not in result.output


def test_migrate_applies_the_schema_once(tmp_path, store_url):
    make_project(tmp_path, store_url)

    first = accord("-c", tmp_path, "migrate")
    second = accord("-c", tmp_path, "migrate")

    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines()[0] == "applied 0001_foundation"
    assert second.stdout == "the store is up to date\n"


# --- quarantine ---------------------------------------------------------------------------------


def test_quarantine_list_json_shows_reason_file_line_and_raw_text(tmp_path, store_url):
    make_project(tmp_path, store_url)
    accord("-c", tmp_path, "ingest")

    result = accord("-c", tmp_path, "quarantine", "list", "--json")

    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert {k: row[k] for k in ("source", "file", "line", "record_key", "reason", "raw_text", "resolved_at")} == {
        "source": "crm", "file": str(tmp_path / "crm.csv"), "line": 4, "record_key": "3",
        "reason": "2 fields, expected 4", "raw_text": "3,Cy\n", "resolved_at": None}


def test_quarantined_rows_exported_fixed_and_ingested_are_resolved(tmp_path, store_url):
    make_project(tmp_path, store_url)
    accord("-c", tmp_path, "ingest")
    fixed = tmp_path / "fixed.csv"

    export = accord("-c", tmp_path, "quarantine", "export", "--source", "crm", "--out", fixed)
    exported = fixed.read_text()
    fixed.write_text(exported.replace("3,Cy\n", "3,Cy,Lu,cy@example.com\n"))
    reingest = accord("-c", tmp_path, "ingest", "crm", "--file", fixed, "--json")

    assert export.exit_code == 0, export.output
    assert exported == "id,first,last,email\n3,Cy\n"
    assert reingest.exit_code == 0, reingest.output
    assert json.loads(reingest.stdout)[0]["new"] == 1
    with open_store(store_url) as store:
        assert store.fetchall("SELECT record_key, given_name, source_file FROM source_records WHERE record_key = '3'"
                              ) == [("3", "Cy", str(fixed))]
        assert store.fetchall("SELECT resolved_at IS NOT NULL FROM quarantine") == [(True,)]
    assert json.loads(accord("-c", tmp_path, "quarantine", "list", "--json").stdout) == []


def test_quarantine_dismiss_resolves_a_row_with_the_reason_given(tmp_path, store_url):
    make_project(tmp_path, store_url)
    accord("-c", tmp_path, "ingest")
    (row,) = json.loads(accord("-c", tmp_path, "quarantine", "list", "--json").stdout)

    result = accord("-c", tmp_path, "quarantine", "dismiss", row["quarantine_id"][:8], "--reason", "test row")

    assert (result.exit_code, result.stdout) == (0, "dismissed 1 row(s)\n")
    (dismissed,) = json.loads(accord("-c", tmp_path, "quarantine", "list", "--all", "--json").stdout)
    assert dismissed["resolution"] == "dismissed: test row"


def test_file_with_more_than_one_source_is_refused(tmp_path, store_url):
    make_project(tmp_path, store_url,
                 {"name": "crm", "format": "csv", "path": "crm.csv", "primary_key": "id",
                  "fields": {"given_name": "first"}},
                 {"name": "shop", "format": "csv", "path": "crm.csv", "primary_key": "id",
                  "fields": {"given_name": "first"}})

    result = accord("-c", tmp_path, "ingest", "--file", tmp_path / "crm.csv")

    assert result.exit_code == 1
    assert one_line(result.stderr) == "error: --file needs exactly one SOURCE"
