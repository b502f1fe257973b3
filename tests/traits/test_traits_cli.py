"""`accord traits` recomputes and reports; `accord traits show ID` prints one customer's traits."""

from __future__ import annotations

import json

from click.testing import CliRunner

from accord.cli import main
from accord.store import open_store
from tests.traits.conftest import TraitData, days_ago


def _project(tmp_path) -> str:
    (tmp_path / "accord.yaml").write_text(
        "store: duckdb:///accord.duckdb\n"
        "traits:\n  as_of: 2024-07-01T12:00:00\n  computed:\n    pages: {count: {type: page}, within: 7d}\n",
        encoding="utf-8")
    with open_store(f"duckdb:///{tmp_path / 'accord.duckdb'}") as store:
        data = TraitData(store)
        data.customer("c1", company="Acme")
        data.order("c1", days_ago(2), 30.0)
        data.event(("user_id", "c1"), None, days_ago(1), type="page")
    return str(tmp_path)


def test_traits_json_reports_customers_traits_and_accounts(tmp_path):
    project = _project(tmp_path)
    result = CliRunner().invoke(main, ["-c", project, "traits", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["customers"], report["events_attributed"], report["rfm_customers"], report["as_of"],
            report["accounts"]["accounts"]) == (1, 2, 1, "2024-07-01T12:00:00", 1)
    assert "pages" in report["traits"]


def test_traits_show_prints_a_customers_traits_as_json(tmp_path):
    project = _project(tmp_path)
    CliRunner().invoke(main, ["-c", project, "traits", "--json"])
    result = CliRunner().invoke(main, ["-c", project, "traits", "show", "c1", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert (shown["customer_id"], shown["traits"]["pages"], shown["traits"]["orders_total"],
            shown["traits"]["rfm_score"]) == ("c1", 1, 1, "111")  # the only buyer is in the lowest quintile


def test_traits_as_of_on_the_command_line_wins(tmp_path):
    project = _project(tmp_path)
    result = CliRunner().invoke(main, ["-c", project, "traits", "--json", "--as-of", "2024-08-01"])
    assert json.loads(result.output)["as_of"] == "2024-08-01T00:00:00"


def test_traits_show_names_an_unknown_customer(tmp_path):
    project = _project(tmp_path)
    result = CliRunner().invoke(main, ["-c", project, "traits", "show", "nobody"])
    assert result.exit_code == 1
    assert "no customer 'nobody'" in result.output
