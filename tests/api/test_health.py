"""GET /health: up, which store, no key needed."""

from __future__ import annotations

from accord import __version__
from tests.api.conftest import Api


def test_health_needs_no_key_and_names_the_store_backend(api: Api, store_url: str) -> None:
    r = api.client.get("/health")
    backend = "duckdb" if store_url.startswith("duckdb") else "postgresql"
    body = r.json()
    refresher = body.pop("trait_refresher")
    assert (r.status_code, body) == (200, {"status": "ok", "store": backend, "version": __version__})
    assert (refresher["running"], refresher["pending"], refresher["errors"], refresher["dropped"]) == (True, 0, 0, 0)
