"""Real-time segments: one customer re-decided after an event, in process, with enter/exit history."""

from __future__ import annotations

from datetime import timedelta

from accord.segments.batch import evaluate_segments
from accord.segments.catalog import sync_config_segments
from accord.segments.membership import Change, history, open_segments
from accord.segments.realtime import on_event, on_events
from tests.segments.conftest import NOW, World

BROWSING = """  definitions:
    - name: browsing
      condition: "count(event = 'Product Viewed', within = '24h') >= 2"
    - name: batch_only
      condition: "count(within = '24h') >= 1"
      realtime: false
"""


def test_an_event_that_completes_the_condition_enters_the_customer(world: World, config_for) -> None:
    cfg = config_for(BROWSING)
    world.customer("cus_1")
    world.event("e1", ago=timedelta(hours=3), identity=("user_id", "cus_1"))
    assert on_event(world.store, cfg, "cus_1", NOW) == []
    world.event("e2", ago=timedelta(minutes=1), identity=("user_id", "cus_1"))
    assert on_event(world.store, cfg, "cus_1", NOW) == [Change("browsing", "cus_1", "enter")]
    assert open_segments(world.store, "cus_1") == {"browsing"}
    assert [(h["change"], h["via"]) for h in history(world.store, "browsing")] == [("enter", "realtime")]


def test_a_window_that_has_passed_exits_the_customer(world: World, config_for) -> None:
    cfg = config_for(BROWSING)
    world.customer("cus_1")
    world.event("e1", ago=timedelta(hours=3), identity=("user_id", "cus_1"))
    world.event("e2", ago=timedelta(hours=2), identity=("user_id", "cus_1"))
    on_event(world.store, cfg, "cus_1", NOW)
    assert on_event(world.store, cfg, "cus_1", NOW + timedelta(hours=23)) == [Change("browsing", "cus_1", "exit")]
    assert open_segments(world.store, "cus_1") == set()


def test_segments_marked_batch_only_are_left_to_the_batch_run(world: World, config_for) -> None:
    cfg = config_for(BROWSING)
    world.customer("cus_1")
    world.event("e1", ago=timedelta(minutes=1), identity=("user_id", "cus_1"))
    assert on_event(world.store, cfg, "cus_1", NOW) == []
    evaluate_segments(world.store, cfg, "run_1", now=NOW)
    assert open_segments(world.store, "cus_1") == {"batch_only"}
    # A later real-time decision does not exit the customer from the batch-only segment.
    on_event(world.store, cfg, "cus_1", NOW + timedelta(days=3))
    assert open_segments(world.store, "cus_1") == {"batch_only"}


def test_a_retired_customer_exits_every_real_time_segment(world: World, config_for) -> None:
    cfg = config_for(BROWSING)
    world.customer("cus_1")
    world.event("e1", ago=timedelta(minutes=1), identity=("user_id", "cus_1"))
    world.event("e2", ago=timedelta(minutes=2), identity=("user_id", "cus_1"))
    on_event(world.store, cfg, "cus_1", NOW)
    world.store.execute("UPDATE customers SET status = 'retired' WHERE customer_id = 'cus_1'")
    assert on_event(world.store, cfg, "cus_1", NOW) == [Change("browsing", "cus_1", "exit")]


def test_events_find_their_customers_by_identity_email_case_and_anonymous_id(world: World, config_for) -> None:
    cfg = config_for(BROWSING)
    world.customer("cus_1", identifiers=[("email", "ada@example.com"), ("anonymous_id", "anon-1")])
    world.event("e1", ago=timedelta(minutes=5), identity=("email", "ADA@example.com"))
    world.event("e2", ago=timedelta(minutes=1), identity=("anonymous_id", "anon-1"), anonymous_id="anon-1")
    changes = on_events(world.store, cfg, [("anonymous_id", "anon-1", "anon-1")], NOW)
    assert changes == [Change("browsing", "cus_1", "enter")]


def test_real_time_and_batch_agree_so_a_batch_run_after_changes_nothing(world: World, config_for) -> None:
    cfg = config_for(BROWSING)
    world.customer("cus_1")
    world.event("e1", ago=timedelta(minutes=1), identity=("user_id", "cus_1"))
    world.event("e2", ago=timedelta(minutes=2), identity=("user_id", "cus_1"))
    evaluate_segments(world.store, cfg, "run_0", now=NOW - timedelta(days=1))  # definitions in the store
    on_event(world.store, cfg, "cus_1", NOW)
    report = evaluate_segments(world.store, cfg, "run_1", now=NOW)
    assert report.segments["browsing"] == {"entered": 0, "exited": 0, "members": 1}
    assert world.store.scalar("SELECT members FROM segments WHERE name = 'browsing'") == 1


def test_one_decision_records_several_enters_and_exits_with_their_member_counts(world: World, config_for) -> None:
    cfg = config_for("""  definitions:
    - name: viewers
      condition: "count(event = 'Product Viewed', within = '24h') >= 1"
    - name: vips
      condition: "vip"
    - name: quiet
      condition: "count(within = '24h') = 0"
""")
    sync_config_segments(world.store, cfg)  # as the server does at start
    world.customer("cus_1", traits={"vip": True})
    world.customer("cus_2")
    assert on_event(world.store, cfg, "cus_1", NOW) == [Change("quiet", "cus_1", "enter"),
                                                         Change("vips", "cus_1", "enter")]
    on_event(world.store, cfg, "cus_2", NOW)
    world.event("e1", ago=timedelta(minutes=1), identity=("user_id", "cus_1"))
    world.store.execute("UPDATE customer_traits SET value_num = 0 WHERE customer_id = 'cus_1'")
    assert on_event(world.store, cfg, "cus_1", NOW) == [Change("viewers", "cus_1", "enter"),
                                                         Change("quiet", "cus_1", "exit"),
                                                         Change("vips", "cus_1", "exit")]
    assert open_segments(world.store, "cus_1") == {"viewers"}
    assert open_segments(world.store, "cus_2") == {"quiet"}
    assert dict(world.store.fetchall("SELECT name, members FROM segments ORDER BY name")) == {
        "quiet": 1, "viewers": 1, "vips": 0}
