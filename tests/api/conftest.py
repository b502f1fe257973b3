"""API fixtures: the app in-process on each backend, and a real ``accord serve`` subprocess."""

from __future__ import annotations

import base64
import http.client
import os
import signal
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
from accord.config import ProjectConfig

WRITE_KEY = "test-write-key"
READ_KEY = "test-read-key"
ADMIN_KEY = "test-admin-key"
KEYS_ENV = {"ACCORD_WRITE_KEY": WRITE_KEY, "ACCORD_READ_KEY": READ_KEY, "ACCORD_ADMIN_KEY": ADMIN_KEY}


def bearer(key: str = WRITE_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def basic(key: str = WRITE_KEY) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


class Api:
    """A TestClient on the app plus a way to read its store (through the app's own store thread)."""

    def __init__(self, client: TestClient):
        self.client = client

    def post(self, path: str, json: Any = None, key: str | None = WRITE_KEY, **kw: Any) -> Any:
        headers = {**(bearer(key) if key else {}), **kw.pop("headers", {})}
        return self.client.post(path, json=json, headers=headers, **kw)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        worker = self.client.app.state.store_worker  # type: ignore[attr-defined]
        return self.client.portal.call(worker.call, lambda store: store.fetchall(sql, params))  # type: ignore[union-attr]

    def get(self, path: str, key: str | None = READ_KEY, **kw: Any) -> Any:
        return self.client.get(path, headers=bearer(key) if key else {}, **kw)

    def run(self, fn: Any) -> Any:
        """Run ``fn(store)`` in one transaction on the app's store thread (to set up a test's data)."""
        worker = self.client.app.state.store_worker  # type: ignore[attr-defined]

        def in_transaction(store: Any) -> Any:
            with store.transaction():
                return fn(store)

        return self.client.portal.call(worker.call, in_transaction)  # type: ignore[union-attr]


@pytest.fixture
def make_api(store_url: str) -> Iterator[Any]:
    """Start the app on this backend's store: ``make_api(api_section={...}, environ={...})``."""
    clients: list[TestClient] = []

    def make(api_section: dict[str, Any] | None = None, environ: dict[str, str] | None = None,
             identity: dict[str, Any] | None = None, **sections: dict[str, Any]) -> Api:
        """``sections``: further accord.yaml sections (``traits={...}``, ``segments={...}``)."""
        cfg = ProjectConfig.model_validate({"store": store_url, "api": api_section or {}, "identity": identity or {},
                                            **sections})
        client = TestClient(create_app(cfg, environ=KEYS_ENV if environ is None else environ))
        client.__enter__()
        clients.append(client)
        return Api(client)

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def api(make_api: Any) -> Api:
    """The app on a fresh store (each backend) with a write, a read and an admin key."""
    return make_api()


# --- a real server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``accord serve`` in a subprocess on loopback."""

    def __init__(self, project: Path, port: int, workers: int | None = None):
        self.project, self.port, self.workers = project, port, workers
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = project / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        cmd = [sys.executable, "-m", "accord.cli", "-c", str(self.project), "serve", "--port", str(self.port)]
        if self.workers:
            cmd += ["--workers", str(self.workers)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, env={**os.environ, **KEYS_ENV}, stdout=log, stderr=log,
                                         start_new_session=True)
        # Generous: each worker process imports the whole app first, slow on a busy shared machine.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return self
            except OSError:
                time.sleep(0.05)
        self.kill()  # a server that never answered must not outlive the test
        raise AssertionError(f"server did not start: {self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL to the server and its worker processes: no shutdown, no flush."""
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def project(store_url: str, tmp_path: Path) -> Path:
    (tmp_path / "accord.yaml").write_text(f"store: {store_url!r}\n", encoding="utf-8")
    return tmp_path


@pytest.fixture
def serve(project: Path) -> Iterator[Any]:
    """Start ``accord serve`` for this backend's project: ``serve(workers=None)``."""
    servers: list[Server] = []
    port = free_port()

    def start(workers: int | None = None) -> Server:
        server = Server(project, port, workers).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()
