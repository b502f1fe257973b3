"""Dashboard fixtures: the app in-process on each backend, and for the browser tests a real
``accord serve`` on a small demo project with headless Debian Chromium driven by Playwright.

Screenshots of every page a browser test visits go to tests/ui/artifacts/ (or $ACCORD_UI_SCREENSHOTS).
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from accord.api import create_app
from accord.config import ProjectConfig, load_config
from accord.pipeline import run_pipeline
from accord.profiles.review import count_pending
from accord.segments.batch import preview
from accord.store import open_store
from accord.synth import generate

ADMIN_KEY = "ui-admin-key"
READ_KEY = "ui-read-key"
WRITE_KEY = "ui-write-key"
STEWARD_KEY = "ui-steward-key"
ANALYST_KEY = "ui-analyst-key"
MARKETER_KEY = "ui-marketer-key"
KEYS_ENV = {"ACCORD_ADMIN_KEY": ADMIN_KEY, "ACCORD_READ_KEY": READ_KEY, "ACCORD_WRITE_KEY": WRITE_KEY,
            "ACCORD_STEWARD_KEY": STEWARD_KEY, "ACCORD_ANALYST_KEY": ANALYST_KEY, "ACCORD_MARKETER_KEY": MARKETER_KEY}
CHROMIUM = "/usr/bin/chromium"
DEMO_PEOPLE = 400
SEGMENT_CONDITION = "country = 'GB'"
ARTIFACTS = Path(os.environ.get("ACCORD_UI_SCREENSHOTS", Path(__file__).parent / "artifacts"))


# --- in-process ---------------------------------------------------------------------------------

class Ui:
    """A TestClient on the app, signed in or not, plus the app's store for checks."""

    def __init__(self, client: TestClient):
        self.client = client

    def sign_in(self, key: str) -> Any:
        return self.client.post("/ui/login", data={"api_key": key, "next": "/ui/"}, follow_redirects=False)

    def csrf(self, path: str = "/ui/review") -> str:
        match = re.search(r'name="csrf" value="([^"]+)"', self.client.get(path).text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        worker = self.client.app.state.store_worker  # type: ignore[attr-defined]
        return self.client.portal.call(worker.call, lambda store: store.fetchall(sql, params))  # type: ignore[union-attr]


@pytest.fixture
def make_ui(store_url: str) -> Iterator[Any]:
    """``make_ui()``: the API app with its dashboard on this backend's (already filled) store."""
    clients: list[TestClient] = []

    def make() -> Ui:
        cfg = ProjectConfig.model_validate({"store": store_url})
        client = TestClient(create_app(cfg, environ=KEYS_ENV))
        client.__enter__()
        clients.append(client)
        return Ui(client)

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def people(store_url: str) -> dict[str, str]:
    """The hand-made store of tests/ui/people.py on this backend; the customer ids of ada, bob, robert."""
    from tests.ui.people import fill

    return fill(store_url)


# --- a real server on demo data, and a browser ----------------------------------------------------

@pytest.fixture(scope="session")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sample data for a few hundred people, run through the whole pipeline once (DuckDB, as ``accord demo``)."""
    directory = tmp_path_factory.mktemp("ui-demo")
    generate(directory, people=DEMO_PEOPLE, seed=7)
    report = run_pipeline(load_config(directory))
    assert report["status"] == "ok", report
    return directory


class Server:
    """``accord serve`` on the demo project in a subprocess, on a free loopback port."""

    def __init__(self, project: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = project / "server.log"
        cmd = [sys.executable, "-m", "accord.cli", "-c", str(project), "serve", "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, env={**os.environ, **KEYS_ENV}, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"accord serve did not start: {self.log.read_text()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def facts(demo_project: Path) -> dict[str, Any]:
    """What the pages should show, read from the store before the server opens it (DuckDB: one process)."""
    cfg = load_config(demo_project)
    with open_store(cfg.store_url()) as store:
        customers = store.scalar("SELECT COUNT(*) FROM customers WHERE status = 'active'")
        # A customer with an email, several records and events: the 360 view has something in every section.
        customer_id, email = store.fetchone(
            "SELECT g.customer_id, g.value FROM golden_values g "
            "JOIN (SELECT customer_id FROM record_customer GROUP BY customer_id HAVING COUNT(*) >= 3) r "
            "ON r.customer_id = g.customer_id WHERE g.attribute = 'email' ORDER BY g.customer_id LIMIT 1")
        records = store.scalar("SELECT COUNT(*) FROM record_customer WHERE customer_id = ?", (customer_id,))
        sources = [r[0] for r in store.fetchall("SELECT source FROM source_records WHERE deleted_at IS NULL "
                                                "GROUP BY source ORDER BY source")]
        pending = count_pending(store)
        segment_count = preview(store, SEGMENT_CONDITION)["count"]
    assert pending >= 2, "the demo project needs two review pairs (one decided, one skipped)"
    assert segment_count > 0, f"nobody in the demo project matches {SEGMENT_CONDITION}"
    return {"customers": customers, "customer_id": customer_id, "email": email, "records": records,
            "sources": sources, "segment_count": segment_count, "people_sources": [s.name for s in cfg.sources if s.kind == "people"]}


@pytest.fixture(scope="session")
def server(demo_project: Path, facts: dict[str, Any]) -> Iterator[Server]:
    srv = Server(demo_project)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run 'make ui-deps' (apt-get install chromium)"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


class Screens:
    """Saves a numbered full-page screenshot per step: artifacts/<test>/<n>-<name>.png."""

    def __init__(self, page: Any, test_name: str):
        self.page = page
        self.folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", test_name)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def shot(self, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def page(browser: Any, server: Server, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context (no cookies) on the demo server; errors on the page fail the test."""
    context = browser.new_context(base_url=server.url, viewport={"width": 1360, "height": 900})
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    # A page may answer 401/403 on purpose; a script error or a missing asset is always a bug.
    p.on("response", lambda r: errors.append(f"{r.status} {r.url}")
         if r.status >= 400 and ("/ui/static/" in r.url or r.status >= 500) else None)
    p.on("console", lambda msg: errors.append(msg.text)
         if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    p.screens = Screens(p, request.node.name)
    yield p
    context.close()
    assert not errors, f"errors in the page: {errors}"


def sign_in(page: Any, key: str) -> None:
    page.goto("/ui/login")
    page.fill("input[name=api_key]", key)
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/")
