"""Retention periods per table and per event name, enforced and reported; --dry-run deletes nothing."""

from __future__ import annotations

from datetime import datetime

from accord.privacy.retention import enforce_retention
from accord.privacy.settings import PrivacySettings
from tests.privacy.conftest import World

NOW = datetime(2024, 6, 10)


def settings(**retention: object) -> PrivacySettings:
    return PrivacySettings.model_validate({"retention": retention})


def count(world: World, table: str, where: str = "1 = 1") -> int:
    return world.store.scalar(f"SELECT count(*) FROM {table} WHERE {where}")


def test_events_older_than_the_period_are_deleted(world: World) -> None:
    # orders on 1-2 April, api events on 1 June; 30 days before 10 June is 11 May.
    report = enforce_retention(world.store, settings(events="30d"), now=NOW)
    assert ([(r.table, r.rows) for r in report.rules], count(world, "events")) == ([("events", 2)], 3)


def test_an_event_name_can_have_its_own_period(world: World) -> None:
    report = enforce_retention(world.store, settings(events="365d", event_types={"Product Viewed": "5d"}), now=NOW)
    assert [(r.table, r.event, r.rows) for r in report.rules] == [("events", "Product Viewed", 2), ("events", None, 0)]
    assert count(world, "events", "event = 'Product Viewed'") == 0


def test_an_event_names_longer_period_keeps_it_past_the_tables(world: World) -> None:
    enforce_retention(world.store, settings(events="5d", event_types={"Order Completed": "2y"}), now=NOW)
    assert count(world, "events", "event = 'Order Completed'") == 2


def test_a_dry_run_counts_and_deletes_nothing(world: World) -> None:
    report = enforce_retention(world.store, settings(events="30d"), dry_run=True, now=NOW)
    assert ([(r.table, r.rows) for r in report.rules], count(world, "events")) == ([("events", 2)], 5)


def test_the_access_log_has_a_retention_period(world: World) -> None:
    from accord.privacy.access import log_access

    log_access(world.store, actor="user:t", action="profile.read", customer_id=world.ann, channel="cli",
               at=datetime(2020, 1, 1))
    report = enforce_retention(world.store, settings(access_log="400d"), now=NOW)
    assert (report.rows, count(world, "access_log")) == (1, 0)


def test_no_periods_means_nothing_is_deleted(world: World) -> None:
    report = enforce_retention(world.store, PrivacySettings(), now=NOW)
    assert (report.rules, count(world, "events")) == ([], 5)


def test_an_unknown_table_in_retention_names_it() -> None:
    import pytest

    from accord.config import parse_config
    from accord.errors import ConfigError

    with pytest.raises(ConfigError, match=r"accord.yaml:3: privacy.retention: golden_values: not a table with a "
                                          r"retention period"):
        parse_config("privacy:\n  retention:\n    golden_values: 30d\n")
