"""The dashboard's main flows in headless Chromium against ``accord serve`` on demo data.

Each step's screenshot is saved under tests/ui/artifacts/<test name>/.
"""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

from tests.ui.conftest import ADMIN_KEY, ANALYST_KEY, READ_KEY, SEGMENT_CONDITION, WRITE_KEY, sign_in

EVIDENCE_TIMEOUT_MS = 60_000  # scoring a pair re-reads the model; generous on a loaded machine


def api_get(server: Any, path: str) -> Any:
    req = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def test_sign_in_refuses_an_unknown_key_and_a_collection_key(page: Any) -> None:
    page.goto("/ui/")
    assert "/ui/login" in page.url
    page.fill("input[name=api_key]", "not-a-key")
    page.click("button[type=submit]")
    assert page.inner_text("[role=alert]").startswith("unknown API key")
    page.screens.shot("unknown-key")
    page.fill("input[name=api_key]", WRITE_KEY)
    page.click("button[type=submit]")
    assert "has role 'write', which may not use the dashboard" in page.inner_text("[role=alert]")
    page.screens.shot("write-key")


def test_overview_shows_the_shared_signals_with_charts(page: Any, facts: dict[str, Any]) -> None:
    sign_in(page, ADMIN_KEY)
    assert page.inner_text("[data-kpi=customers] .value") == f"{facts['customers']:,}"
    assert page.inner_text("[data-kpi=sources] .value") == str(len(facts["sources"]))
    page.wait_for_selector("canvas[data-drawn]")
    page.wait_for_selector("#quality-warnings .muted >> text=Report of", timeout=EVIDENCE_TIMEOUT_MS)
    assert page.locator("canvas[data-drawn]").count() >= 3
    page.screens.shot("overview")


def test_search_by_email_opens_the_customer_360(page: Any, facts: dict[str, Any]) -> None:
    sign_in(page, ADMIN_KEY)
    page.fill("header input[name=q]", facts["email"].upper())
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/ui/customers/{facts['customer_id']}")
    assert page.inner_text("[data-customer-id]") == facts["customer_id"]
    assert page.inner_text("td[data-attr=email]") == facts["email"]
    assert page.locator("table.side-by-side thead th code").count() == facts["records"]
    assert page.locator("table.history tr[data-kind=created]").count() >= 1
    page.wait_for_selector("table.timeline tbody tr td >> text=/\\d{4}-\\d{2}-\\d{2}/")
    page.screens.shot("customer-360")


def test_the_analyst_finds_a_customer_but_sees_personal_data_masked(page: Any, facts: dict[str, Any]) -> None:
    sign_in(page, ANALYST_KEY)
    page.fill("header input[name=q]", facts["email"])
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/ui/customers/{facts['customer_id']}")
    local, _, domain = facts["email"].partition("@")
    assert page.inner_text("td[data-attr=email]") == f"{local[0]}***@{domain}"
    assert facts["email"] not in page.content()
    assert "Raw source values are hidden for your role." in page.inner_text("body")
    page.screens.shot("customer-360-masked")


def test_a_review_decision_by_keyboard_is_recorded_with_the_reviewer_and_audited(
        page: Any, server: Any) -> None:
    sign_in(page, ADMIN_KEY)
    page.goto("/ui/review")
    pair = page.get_attribute("[data-pair]", "data-pair")
    record_a, record_b = pair.split("|")
    page.wait_for_selector(".evidence canvas[data-drawn]", timeout=EVIDENCE_TIMEOUT_MS)
    page.screens.shot("pair-with-waterfall")

    page.keyboard.press("s")
    flash = page.wait_for_selector(f'.flash[data-decided="{pair}"]')
    assert "same person" in flash.inner_text() and "env:ACCORD_ADMIN_KEY" in flash.inner_text()
    assert page.get_attribute("[data-pair]", "data-pair") != pair
    page.screens.shot("decided")

    page.goto("/ui/audit?kind=decision")
    row = page.locator("table.audit tbody tr", has_text=record_a).filter(has_text=record_b)
    assert row.count() == 1
    assert row.get_attribute("data-actor") == "env:ACCORD_ADMIN_KEY"
    page.screens.shot("audit")

    customer = re.search(r"cus_\d+", row.inner_text()).group(0)
    history = api_get(server, f"/v1/profiles/customer_id:{customer}/history")["events"]
    decisions = [e for e in history if e["kind"] == "decision" and sorted(e["records"]) == sorted(pair.split("|"))]
    assert [e["actor"] for e in decisions] == ["env:ACCORD_ADMIN_KEY"]


def test_skip_moves_to_the_next_pair_without_a_decision(page: Any) -> None:
    sign_in(page, ADMIN_KEY)
    page.goto("/ui/review")
    pair = page.get_attribute("[data-pair]", "data-pair")
    page.keyboard.press("k")
    page.wait_for_selector(f'.flash[data-decided="{pair}"]')
    assert page.get_attribute("[data-pair]", "data-pair") != pair
    assert "Skipped" in page.inner_text(".flash")
    page.screens.shot("skipped")
    page.goto("/ui/audit?kind=decision")
    assert page.locator("table.audit tbody tr", has_text=pair.split("|")[0]).filter(
        has_text=pair.split("|")[1]).count() == 0


def test_a_read_key_sees_the_queue_but_cannot_decide(page: Any) -> None:
    sign_in(page, READ_KEY)
    page.goto("/ui/review")
    assert page.is_disabled("button[data-key=s]")
    page.keyboard.press("s")
    assert page.locator(".flash").count() == 0
    page.screens.shot("read-only-review")


def test_data_quality_page_has_a_table_per_source(page: Any, facts: dict[str, Any]) -> None:
    sign_in(page, ADMIN_KEY)
    page.goto("/ui/quality")
    sections = page.locator("section[id^=source-]")
    assert sections.count() >= 1
    names = {sections.nth(i).get_attribute("id").removeprefix("source-") for i in range(sections.count())}
    assert names == set(facts["people_sources"])
    page.wait_for_selector("section[id^=source-] canvas[data-drawn]")
    page.screens.shot("quality")


def test_build_a_segment_see_its_live_count_and_save_it(page: Any, facts: dict[str, Any]) -> None:
    sign_in(page, ADMIN_KEY)
    page.goto("/ui/segments")
    page.fill("textarea[name=condition]", "country = ")
    page.wait_for_selector("[data-preview-error]")
    assert "column" in page.inner_text("[data-preview-error]")
    page.fill("textarea[name=condition]", SEGMENT_CONDITION)
    page.wait_for_selector(f"[data-preview-count]:text-is('{facts['segment_count']:,}')")
    page.screens.shot("builder-preview")

    page.fill("input[name=name]", "gb_customers")
    page.click("form.builder button[type=submit]")
    page.wait_for_url("**/ui/segments/gb_customers")
    assert page.inner_text("[data-kpi=members] .value") == f"{facts['segment_count']:,}"
    page.wait_for_selector("canvas[data-drawn]")
    page.screens.shot("segment")

    page.goto("/ui/segments")
    assert page.inner_text("tr[data-segment=gb_customers] [data-size]") == f"{facts['segment_count']:,}"
    page.screens.shot("segment-list")
