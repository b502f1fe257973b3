"""Signing in, roles, CSRF and masking, through the app in-process on DuckDB and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.ui.conftest import ADMIN_KEY, ANALYST_KEY, MARKETER_KEY, READ_KEY, STEWARD_KEY, WRITE_KEY, Ui
from tests.ui.people import ADA_EMAIL, REVIEW_PAIR


@pytest.fixture
def ui(people: dict[str, str], make_ui: Any) -> Ui:
    return make_ui()


def decide_form(ui: Ui, choice: str, csrf: str | None) -> dict[str, str]:
    form = {"record_a": REVIEW_PAIR[0], "record_b": REVIEW_PAIR[1], "choice": choice, "skipped": ""}
    if csrf is not None:
        form["csrf"] = csrf
    return form


def test_a_page_without_a_session_sends_the_browser_to_sign_in(ui: Ui) -> None:
    r = ui.client.get("/ui/quality", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/login?next=%2Fui%2Fquality"


def test_every_dashboard_route_but_sign_in_needs_a_session(ui: Ui) -> None:
    from fastapi.routing import iter_route_contexts

    checked = 0
    for ctx in iter_route_contexts(ui.client.app.routes):
        if not (ctx.path or "").startswith("/ui") or ctx.path in ("/ui/login", "/ui/logout") or not ctx.methods:
            continue
        for method in sorted(set(ctx.methods) - {"HEAD"}):
            path = re.sub(r"\{\w+\}", "x", ctx.path)
            r = ui.client.request(method, path, follow_redirects=False)
            assert (r.status_code, r.headers.get("location", "")[:15]) == (303, "/ui/login?next="), f"{method} {path}"
            checked += 1
    assert checked >= 12


def test_an_htmx_call_without_a_session_answers_401_with_hx_redirect(ui: Ui) -> None:
    r = ui.client.get("/ui/fragments/quality-warnings", headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.status_code == 401
    assert r.headers["hx-redirect"] == "/ui/login?next=%2Fui%2Ffragments%2Fquality-warnings"


def test_an_unknown_key_is_refused(ui: Ui) -> None:
    r = ui.sign_in("nope")
    assert r.status_code == 401
    assert "unknown API key" in r.text
    assert "accord_ui" not in r.headers.get("set-cookie", "")


def test_a_collection_key_may_not_use_the_dashboard(ui: Ui) -> None:
    r = ui.sign_in(WRITE_KEY)
    assert r.status_code == 403
    assert "has role &#39;write&#39;, which may not use the dashboard" in r.text


def test_sign_in_sets_an_http_only_same_site_cookie_for_ui_only(ui: Ui) -> None:
    r = ui.sign_in(ADMIN_KEY)
    assert r.status_code == 303 and r.headers["location"] == "/ui/"
    cookie = r.headers["set-cookie"].lower()
    assert cookie.startswith("accord_ui=")
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie
    assert ADMIN_KEY not in r.headers["set-cookie"]


def test_sign_in_never_redirects_to_another_site(ui: Ui) -> None:
    r = ui.client.post("/ui/login", data={"api_key": ADMIN_KEY, "next": "https://evil.example/ui"},
                       follow_redirects=False)
    assert r.headers["location"] == "/ui/"


def test_a_forged_cookie_is_ignored(ui: Ui) -> None:
    ui.client.cookies.set("accord_ui", "eyJoIjoic2hhMjU2OmZvcmdlZCJ9.forged.signature", path="/ui")
    r = ui.client.get("/ui/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")


def test_a_session_survives_a_restart_with_the_secret_kept_in_the_store(people: dict[str, str],
                                                                       make_ui: Any) -> None:
    first = make_ui()
    first.sign_in(ADMIN_KEY)
    cookie = first.client.cookies.get("accord_ui")
    first.client.__exit__(None, None, None)
    second = make_ui()
    second.client.cookies.set("accord_ui", cookie, path="/ui")
    assert second.client.get("/ui/", follow_redirects=False).status_code == 200
    assert len(second.rows("SELECT name FROM ui_secrets")) == 1


def test_a_read_key_may_not_decide_a_review_pair(ui: Ui) -> None:
    ui.sign_in(READ_KEY)
    r = ui.client.post("/ui/review/decide", data=decide_form(ui, "same", ui.csrf()))
    assert r.status_code == 403
    assert "deciding review pairs needs admin or steward" in r.text
    assert ui.rows("SELECT COUNT(*) FROM identity_constraints") == [(0,)]


def test_a_decision_without_the_session_token_is_refused(ui: Ui) -> None:
    ui.sign_in(ADMIN_KEY)
    r = ui.client.post("/ui/review/decide", data=decide_form(ui, "same", None))
    assert r.status_code == 403
    assert ui.rows("SELECT COUNT(*) FROM identity_constraints") == [(0,)]


def test_a_stewards_decision_is_recorded_with_the_key_name_and_audited(ui: Ui, people: dict[str, str]) -> None:
    ui.sign_in(STEWARD_KEY)
    r = ui.client.post("/ui/review/decide", data=decide_form(ui, "d", ui.csrf()), headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert "different people" in r.text and "env:ACCORD_STEWARD_KEY" in r.text
    assert ui.rows("SELECT record_a, record_b, kind, actor FROM identity_constraints") == [
        ("crm:c2", "pos:p1", "cannot_link", "env:ACCORD_STEWARD_KEY")]
    assert ui.rows("SELECT kind, actor, customer_id, other_customer_id FROM identity_audit WHERE kind = 'decision'") \
        == [("decision", "env:ACCORD_STEWARD_KEY", people["bob"], people["robert"])]
    audit = ui.client.get("/ui/audit?kind=decision").text
    assert 'data-actor="env:ACCORD_STEWARD_KEY"' in audit


def test_a_skip_writes_nothing_and_the_queue_moves_on(ui: Ui) -> None:
    ui.sign_in(ADMIN_KEY)
    r = ui.client.post("/ui/review/decide", data=decide_form(ui, "k", ui.csrf()), headers={"HX-Request": "true"})
    assert "Skipped" in r.text and "Nothing to review" in r.text
    assert ui.rows("SELECT COUNT(*) FROM identity_constraints") == [(0,)]
    assert ui.rows("SELECT COUNT(*) FROM identity_audit WHERE kind = 'decision'") == [(0,)]


def test_a_marketer_sees_segments_but_not_customer_pages(ui: Ui, people: dict[str, str]) -> None:
    ui.sign_in(MARKETER_KEY)
    assert ui.client.get("/ui/segments").status_code == 200
    r = ui.client.get(f"/ui/customers/{people['ada']}")
    assert r.status_code == 403
    assert "may not read customer profiles" in r.text


def test_the_analyst_sees_the_customer_360_with_personal_data_masked(ui: Ui, people: dict[str, str]) -> None:
    ui.sign_in(ANALYST_KEY)
    html = ui.client.get(f"/ui/customers/{people['ada']}").text + \
        ui.client.get(f"/ui/customers/{people['ada']}/events").text
    for raw in (ADA_EMAIL, "Lovelace", "7946", "St James", "SW1Y", "gift for", "C-1", "S-1"):
        assert raw not in html, raw
    assert "a***@example.com" in html
    assert people["ada"] in html and "crm:c1" in html and "Order Completed" in html


def test_the_analyst_sees_review_pairs_and_segment_samples_masked(ui: Ui) -> None:
    ui.sign_in(ANALYST_KEY)
    review = ui.client.get("/ui/review").text
    assert "Babbage" not in review and "bob@example.com" not in review and "b***@example.com" in review
    preview = ui.client.get("/ui/segments/preview", params={"condition": "health_score >= 50"}).text
    assert re.search(r"data-preview-count>1<", preview)
    assert ADA_EMAIL not in preview and "Lovelace" not in preview


def test_a_read_key_sees_personal_data(ui: Ui, people: dict[str, str]) -> None:
    ui.sign_in(READ_KEY)
    html = ui.client.get(f"/ui/customers/{people['ada']}").text + \
        ui.client.get(f"/ui/customers/{people['ada']}/events").text
    assert ADA_EMAIL in html and "Lovelace" in html and "gift for Ada Lovelace" in html


def test_search_by_email_goes_straight_to_the_customer(ui: Ui, people: dict[str, str]) -> None:
    ui.sign_in(ADMIN_KEY)
    r = ui.client.get("/ui/customers", params={"q": "ADA@example.com"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/ui/customers/{people['ada']}"


def test_no_page_loads_anything_from_another_site(ui: Ui, people: dict[str, str]) -> None:
    ui.sign_in(ADMIN_KEY)
    for path in ("/ui/", "/ui/login", f"/ui/customers/{people['ada']}", "/ui/review", "/ui/segments",
                 "/ui/segments/healthy", "/ui/quality", "/ui/audit"):
        html = ui.client.get(path).text
        assert not re.search(r"""(src|href|action)=["']?(https?:)?//""", html), path
    assert ui.client.get("/ui/static/htmx.min.js").status_code == 200
    assert ui.client.get("/ui/static/chart.umd.min.js").status_code == 200


def test_a_project_that_has_not_run_yet_shows_every_page_empty(make_ui: Any) -> None:
    ui = make_ui()
    ui.sign_in(ADMIN_KEY)
    overview = ui.client.get("/ui/")
    assert overview.status_code == 200 and "Nothing has run yet" in overview.text
    for path in ("/ui/fragments/quality-warnings", "/ui/quality", "/ui/review", "/ui/segments", "/ui/audit",
                 "/ui/customers?q=ada@example.com"):
        r = ui.client.get(path)
        assert r.status_code == 200, path
    assert "Nothing to review" in ui.client.get("/ui/review").text
    assert "no customer has email" in ui.client.get("/ui/customers?q=ada@example.com").text
    r = ui.client.get("/ui/customers/cus_00000001")
    assert r.status_code == 404 and "no customer &#39;cus_00000001&#39;" in r.text
