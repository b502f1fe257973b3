"""``accord segments`` and ``accord webhooks`` on a project store (both backends)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from accord.cli import main
from accord.store import open_store
from tests.segments.conftest import World


def accord(project: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["-c", str(project), *args])


def _project(tmp_path: Path, store_url: str) -> Path:
    (tmp_path / "accord.yaml").write_text(f"""store: {store_url!r}
segments:
  definitions:
    - name: buyers
      condition: "orders_90d >= 2"
""", encoding="utf-8")
    with open_store(store_url) as store:
        world = World(store)
        world.customer("cus_1", traits={"orders_90d": 3}, attributes={"given_name": "Ada"})
        world.customer("cus_2", traits={"orders_90d": 1})
    return tmp_path


def test_preview_prints_the_count_and_a_sample(tmp_path: Path, store_url: str) -> None:
    project = _project(tmp_path, store_url)
    result = accord(project, "segments", "preview", "orders_90d >= 1 and given_name = 'Ada'", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["count"], data["customers"], data["sample"], data["saved_as"]) == (
        1, 2, [{"customer_id": "cus_1", "given_name": "Ada"}], None)


def test_preview_of_a_broken_condition_exits_1_naming_the_column(tmp_path: Path, store_url: str) -> None:
    result = accord(_project(tmp_path, store_url), "segments", "preview", "orders_90d >> 2")
    assert result.exit_code == 1
    assert "condition: column 13: expected a value after '>', got '>'" in result.output


def test_run_then_members_and_history(tmp_path: Path, store_url: str) -> None:
    project = _project(tmp_path, store_url)
    run = accord(project, "segments", "run", "--json")
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)["segments"] == {"buyers": {"entered": 1, "exited": 0, "members": 1}}
    members = json.loads(accord(project, "segments", "members", "buyers", "--json").output)
    assert [m["customer_id"] for m in members["members"]] == ["cus_1"]
    history = json.loads(accord(project, "segments", "history", "buyers", "--json").output)
    assert [(h["customer_id"], h["change"], h["via"]) for h in history] == [("cus_1", "enter", "batch")]
    listed = json.loads(accord(project, "segments", "list", "--json").output)
    assert [(s["name"], s["members"], s["definition"]) for s in listed] == [("buyers", 1, "orders_90d >= 2")]


def test_save_then_run_evaluates_the_saved_segment(tmp_path: Path, store_url: str) -> None:
    project = _project(tmp_path, store_url)
    assert accord(project, "segments", "save", "light", "orders_90d < 2").exit_code == 0
    run = json.loads(accord(project, "segments", "run", "light", "--json").output)
    assert run["segments"] == {"light": {"entered": 1, "exited": 0, "members": 1}}


def test_members_of_an_unknown_segment_exits_1(tmp_path: Path, store_url: str) -> None:
    result = accord(_project(tmp_path, store_url), "segments", "members", "nope")
    assert result.exit_code == 1
    assert "no segment named 'nope'; known: buyers" in result.output


def test_replay_without_ids_or_all_is_refused(tmp_path: Path, store_url: str) -> None:
    result = accord(_project(tmp_path, store_url), "webhooks", "replay")
    assert result.exit_code == 1
    assert "name delivery ids" in result.output
