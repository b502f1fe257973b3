"""``accord serve`` as a real process: spec and docs served, and durability under SIGKILL."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from accord.store import connect
from tests.api.conftest import WRITE_KEY, Server


def _post(conn: http.client.HTTPConnection, path: str, body: Any) -> int:
    conn.request("POST", path, body=orjson.dumps(body),
                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {WRITE_KEY}"})
    resp = conn.getresponse()
    resp.read()
    return resp.status


def test_serve_publishes_the_openapi_spec_and_docs(serve: Any) -> None:
    server: Server = serve(workers=1)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/openapi.json")
    spec = orjson.loads(conn.getresponse().read())
    conn.request("GET", "/docs")
    docs = conn.getresponse()
    core = {"/health", "/v1/alias", "/v1/batch", "/v1/group", "/v1/identify", "/v1/page", "/v1/profiles/{ref}",
            "/v1/profiles/{ref}/events", "/v1/profiles/{ref}/history", "/v1/profiles/{ref}/records",
            "/v1/profiles/{ref}/segments", "/v1/profiles/{ref}/traits", "/v1/screen", "/v1/track"}
    # Other areas (decisions, privacy, segments) add their routes to the same spec.
    assert (core - set(spec["paths"]), docs.status, b"swagger" in docs.read().lower()) == (set(), 200, True)


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_every_acknowledged_message_is_stored_exactly_once_across_a_sigkill(
        serve: Any, store_url: str) -> None:
    workers = 1 if store_url.startswith("duckdb") else 2
    server: Server = serve(workers)
    acknowledged: set[str] = set()
    sent: set[str] = set()
    stop = threading.Event()

    def client() -> None:
        # Like an SDK: send batches of 20, retry a batch with the same messageIds until it is acknowledged.
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        n = 0
        while not stop.is_set():
            ids = [f"m{n}-{i}" for i in range(20)]
            n += 1
            batch = {"batch": [{"type": "track", "userId": f"u{i}", "event": "E", "messageId": m}
                               for i, m in enumerate(ids)]}
            while not stop.is_set():
                sent.update(ids)
                try:
                    if _post(conn, "/v1/batch", batch) == 200:
                        acknowledged.update(ids)
                        break
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
                    time.sleep(0.02)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        _wait_until(lambda: len(acknowledged) >= 200, "the first server to acknowledge 200 events")
        acknowledged_before_kill = len(acknowledged)
        server.kill()
        restarted: Server = serve(workers)
        _wait_until(lambda: len(acknowledged) >= acknowledged_before_kill + 200,
                    "the restarted server to acknowledge 200 more events")
    finally:
        stop.set()
        thread.join()
    restarted.stop()

    store = connect(store_url)
    try:
        stored = [r[0] for r in store.fetchall("SELECT event_id FROM events")]
    finally:
        store.close()
    assert acknowledged <= set(stored)  # nothing acknowledged was lost
    assert len(stored) == len(set(stored))  # nothing stored twice
    assert set(stored) <= sent
