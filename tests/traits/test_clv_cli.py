"""`accord clv fit` on small transaction files: the report, the predictions file and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from accord.cli import main

# Six customers over ten weeks; c1 and c2 buy often, c3 once, c4 twice early, c5 and c6 in the holdout too.
ROWS = [
    ("c1", "2024-01-01", 20), ("c1", "2024-01-15", 25), ("c1", "2024-02-05", 30), ("c1", "2024-02-26", 20),
    ("c2", "2024-01-03", 50), ("c2", "2024-01-24", 60), ("c2", "2024-02-21", 55),
    ("c3", "2024-01-10", 15),
    ("c4", "2024-01-02", 10), ("c4", "2024-01-09", 12),
    ("c5", "2024-01-05", 40), ("c5", "2024-02-02", 45), ("c5", "2024-03-05", 41),
    ("c6", "2024-01-20", 30), ("c6", "2024-03-01", 35),
]


def _csv(tmp_path: Path, rows: list[tuple[str, str, object]] = ROWS, header: str = "cust,ordered_at,total") -> Path:
    path = tmp_path / "orders.csv"
    path.write_text(header + "\n" + "".join(f"{c},{d},{a}\n" for c, d, a in rows), encoding="utf-8")
    return path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_fit_reports_parameters_customers_and_holdout_as_json(tmp_path: Path) -> None:
    code, output = _run("clv", "fit", "--transactions", str(_csv(tmp_path)), "--customer", "cust",
                        "--date", "ordered_at", "--amount", "total", "--calibration-end", "2024-02-10",
                        "--horizon", "90d", "--json")
    assert code == 0, output
    report = json.loads(output)
    # Repeat buyers in the calibration period: c1, c2, c4 and c5.
    assert (report["customers"], report["repeat_buyers"], report["transactions"]) == (6, 4, 15)
    assert set(report["bgnbd"]) == {"r", "alpha", "a", "b"} and all(v > 0 for v in report["bgnbd"].values())
    assert set(report["gamma_gamma"]) == {"p", "q", "gamma"}
    # After 2024-02-10: c1 (02-26), c2 (02-21), c5 (03-05) and c6 (03-01) buy once each.
    assert report["holdout"]["actual_purchases"] == 4
    assert report["holdout"]["start"] == "2024-02-11" and report["holdout"]["end"] == "2024-03-05"
    values = [row["clv_90d"] for row in report["top_customers"]]
    assert len(values) == 6 and values == sorted(values, reverse=True)


def test_fit_writes_one_prediction_row_per_customer(tmp_path: Path) -> None:
    out = tmp_path / "pred.parquet"
    code, output = _run("clv", "fit", "--transactions", str(_csv(tmp_path)), "--customer", "cust",
                        "--date", "ordered_at", "--amount", "total", "--horizon", "90d", "--horizon", "1y",
                        "--out", str(out))
    assert code == 0, output
    pred = pd.read_parquet(out)
    assert sorted(pred["customer"]) == ["c1", "c2", "c3", "c4", "c5", "c6"]
    assert {"p_alive", "expected_purchases_90d", "clv_90d", "expected_purchases_1y", "clv_1y"} <= set(pred.columns)
    assert ((pred["clv_1y"] > pred["clv_90d"]) & (pred["clv_90d"] > 0)).all()


def test_fit_without_amount_predicts_purchases_only(tmp_path: Path) -> None:
    code, output = _run("clv", "fit", "--transactions", str(_csv(tmp_path)), "--customer", "cust",
                        "--date", "ordered_at", "--json")
    assert code == 0, output
    report = json.loads(output)
    assert "gamma_gamma" not in report and "clv_365d" not in report["top_customers"][0]


def test_a_missing_column_is_named_with_the_file_and_the_columns_it_has(tmp_path: Path) -> None:
    path = _csv(tmp_path)
    code, output = _run("clv", "fit", "--transactions", str(path), "--customer", "customer_id",
                        "--date", "ordered_at")
    assert code == 1
    assert f"{path}: no column 'customer_id'; the file has: cust, ordered_at, total" in " ".join(output.split())


def test_an_unreadable_date_is_named_with_file_line_and_value(tmp_path: Path) -> None:
    rows = [*ROWS[:3], ("c9", "31/02/2024", 5), *ROWS[3:]]
    path = _csv(tmp_path, rows)
    code, output = _run("clv", "fit", "--transactions", str(path), "--customer", "cust", "--date", "ordered_at")
    assert code == 1
    assert f"{path}:5: column 'ordered_at': cannot read '31/02/2024' as a date" in " ".join(output.split())


def test_an_unreadable_amount_is_named_with_file_line_and_value(tmp_path: Path) -> None:
    rows = [*ROWS[:1], ("c1", "2024-01-02", "ten"), *ROWS[1:]]
    path = _csv(tmp_path, rows)
    code, output = _run("clv", "fit", "--transactions", str(path), "--customer", "cust", "--date", "ordered_at",
                        "--amount", "total")
    assert code == 1
    assert f"{path}:3: column 'total': cannot read 'ten' as a number" in " ".join(output.split())


def test_a_missing_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    code, output = _run("clv", "fit", "--transactions", str(tmp_path / "nope.csv"), "--customer", "c", "--date", "d")
    assert code == 1 and "nope.csv: no such file" in output


def test_a_bad_horizon_is_refused(tmp_path: Path) -> None:
    code, output = _run("clv", "fit", "--transactions", str(_csv(tmp_path)), "--customer", "cust",
                        "--date", "ordered_at", "--horizon", "3 months")
    assert code == 1 and "--horizon: expected a horizon like 90d, 26w or 1y; got '3 months'" in output


def test_no_repeat_purchases_at_all_is_explained(tmp_path: Path) -> None:
    rows = [("a", "2024-01-01", 1), ("b", "2024-01-02", 2), ("c", "2024-01-03", 3)]
    code, output = _run("clv", "fit", "--transactions", str(_csv(tmp_path, rows)), "--customer", "cust",
                        "--date", "ordered_at")
    assert code == 1 and "BG/NBD needs at least 2 customers and one repeat purchase" in output


@pytest.mark.parametrize("when", ["2023-06-01", "not-a-date"])
def test_a_calibration_end_outside_the_data_is_refused(tmp_path: Path, when: str) -> None:
    code, output = _run("clv", "fit", "--transactions", str(_csv(tmp_path)), "--customer", "cust",
                        "--date", "ordered_at", "--calibration-end", when)
    assert code == 1 and "--calibration-end" in output
