"""The segments stage: batch membership with enter/exit history, consent filters, retiring."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accord.errors import ConfigError
from accord.segments.batch import evaluate_segments, preview
from accord.segments.catalog import SegmentError, load_catalog, save_segment
from accord.segments.membership import history, members
from tests.segments.conftest import NOW, World

BUYERS = """  definitions:
    - name: buyers
      condition: "orders_90d >= 2"
"""


def test_first_run_enters_every_matching_active_customer(world: World, config_for) -> None:
    world.customer("cus_1", traits={"orders_90d": 3})
    world.customer("cus_2", traits={"orders_90d": 1})
    world.customer("cus_3", traits={"orders_90d": 5}, status="retired")
    report = evaluate_segments(world.store, config_for(BUYERS), "run_1", now=NOW)
    assert report.segments == {"buyers": {"entered": 1, "exited": 0, "members": 1}}
    assert [m["customer_id"] for m in members(world.store, "buyers")["members"]] == ["cus_1"]


def test_a_second_run_records_exits_and_new_entries_with_times(world: World, config_for) -> None:
    cfg = config_for(BUYERS)
    world.customer("cus_1", traits={"orders_90d": 3})
    world.customer("cus_2", traits={"orders_90d": 1})
    evaluate_segments(world.store, cfg, "run_1", now=NOW)
    world.store.execute("UPDATE customer_traits SET value_num = 0 WHERE customer_id = 'cus_1'")
    world.store.execute("UPDATE customer_traits SET value_num = 2 WHERE customer_id = 'cus_2'")
    later = NOW + timedelta(hours=1)
    report = evaluate_segments(world.store, cfg, "run_2", now=later)
    assert report.segments["buyers"] == {"entered": 1, "exited": 1, "members": 1}
    assert [(h["customer_id"], h["change"], h["at"], h["run_id"]) for h in history(world.store, "buyers")] == [
        ("cus_1", "exit", later, "run_2"), ("cus_2", "enter", later, "run_2"), ("cus_1", "enter", NOW, "run_1")]


def test_an_unchanged_run_changes_nothing(world: World, config_for) -> None:
    cfg = config_for(BUYERS)
    world.customer("cus_1", traits={"orders_90d": 3})
    evaluate_segments(world.store, cfg, "run_1", now=NOW)
    report = evaluate_segments(world.store, cfg, "run_2", now=NOW + timedelta(hours=1))
    assert report.segments["buyers"] == {"entered": 0, "exited": 0, "members": 1}
    assert world.store.scalar("SELECT COUNT(*) FROM segment_membership") == 1


def test_requires_consent_leaves_out_customers_without_granted_consent(world: World, config_for) -> None:
    cfg = config_for("""  definitions:
    - name: mailable_buyers
      condition: "orders_90d >= 1"
      requires_consent: [email_marketing]
""")
    world.customer("cus_1", traits={"orders_90d": 3}, consent={"email_marketing": "granted"})
    world.customer("cus_2", traits={"orders_90d": 3}, consent={"email_marketing": "withdrawn"})
    world.customer("cus_3", traits={"orders_90d": 3})
    evaluate_segments(world.store, cfg, "run_1", now=NOW)
    assert [m["customer_id"] for m in members(world.store, "mailable_buyers")["members"]] == ["cus_1"]


def test_a_segment_removed_from_the_config_is_retired_and_its_members_exit(world: World, config_for) -> None:
    world.customer("cus_1", traits={"orders_90d": 3})
    evaluate_segments(world.store, config_for(BUYERS), "run_1", now=NOW)
    report = evaluate_segments(world.store, config_for(), "run_2", now=NOW + timedelta(days=1))
    assert report.retired == ["buyers"]
    assert world.store.fetchall("SELECT status, members FROM segments WHERE name = 'buyers'") == [("retired", 0)]
    assert world.store.fetchall("SELECT exited_at, exited_by FROM segment_membership") == [
        (NOW + timedelta(days=1), "retired")]


def test_event_counts_in_a_window_decide_membership(world: World, config_for) -> None:
    cfg = config_for("""  definitions:
    - name: browsing
      condition: "count(event = 'Product Viewed', within = '24h') >= 2"
""")
    world.customer("cus_1", identifiers=[("email", "ada@example.com")])
    world.customer("cus_2")
    world.event("e1", ago=timedelta(hours=1), identity=("email", "Ada@Example.com"))
    world.event("e2", ago=timedelta(hours=2), identity=("email", "ada@example.com"))
    world.event("e3", ago=timedelta(hours=1), identity=("user_id", "cus_2"))
    world.event("e4", ago=timedelta(hours=30), identity=("user_id", "cus_2"))
    evaluate_segments(world.store, cfg, "run_1", now=NOW)
    assert [m["customer_id"] for m in members(world.store, "browsing")["members"]] == ["cus_1"]


def test_saved_segments_are_evaluated_with_the_config_ones(world: World, config_for) -> None:
    cfg = config_for(BUYERS)
    world.customer("cus_1", traits={"orders_90d": 3}, accounts=["acme"])
    save_segment(world.store, cfg, "acme_people", "in_account('Acme Inc')")
    report = evaluate_segments(world.store, cfg, "run_1", now=NOW)
    assert sorted(report.segments) == ["acme_people", "buyers"]
    assert report.segments["acme_people"]["members"] == 1


def test_saving_a_config_segment_name_is_refused(world: World, config_for) -> None:
    with pytest.raises(SegmentError, match="defined in the config"):
        save_segment(world.store, config_for(BUYERS), "buyers", "orders_90d >= 1")


def test_saving_a_bad_condition_names_the_column(world: World, config_for) -> None:
    with pytest.raises(SegmentError, match="segment 'x': condition: column 14: expected a value after '>=', got end of text"):
        save_segment(world.store, config_for(), "x", "orders_90d >=")


def test_preview_counts_and_samples_without_saving(world: World) -> None:
    world.customer("cus_1", traits={"orders_90d": 3}, attributes={"city": "Paris"})
    world.customer("cus_2", traits={"orders_90d": 4})
    world.customer("cus_3")
    result = preview(world.store, "orders_90d > 2", now=NOW, sample=1)
    assert (result["count"], result["customers"], result["sample"]) == (2, 3, [{"customer_id": "cus_1", "city": "Paris"}])
    assert world.store.scalar("SELECT COUNT(*) FROM segments") == 0


def test_segment_files_add_definitions_and_duplicates_are_refused(world: World, config_for, tmp_path) -> None:
    (tmp_path / "segs").mkdir()
    (tmp_path / "segs" / "more.yaml").write_text("- name: vips\n  condition: \"vip\"\n", encoding="utf-8")
    cfg = config_for("  files: [segs/*.yaml]\n" + BUYERS)
    assert sorted(load_catalog(world.store, cfg).segments) == ["buyers", "vips"]
    (tmp_path / "segs" / "again.json").write_text('[{"name": "buyers", "condition": "vip"}]', encoding="utf-8")
    cfg = config_for("  files: [segs/*]\n" + BUYERS)
    with pytest.raises(ConfigError, match="segment 'buyers' is defined twice"):
        load_catalog(world.store, cfg)
