"""Roles on every route: a matrix over every route of the app (new routes are covered without edits)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from accord.api import create_app
from accord.api.auth import ROLES, allowed_roles
from accord.config import ProjectConfig

KEYS = {role: f"key-for-{role}" for role in ROLES}
ENV = {f"ACCORD_{role.upper()}_KEY": key for role, key in KEYS.items()}
PUBLIC = {"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
"""Routes anyone may call. The dashboard (/ui) signs in with a key through its own form (tests/ui)."""


def _roles_of(dependant: Any) -> frozenset[str] | None:
    """The roles a route's auth dependency lets in (require_role marks its dependency with them)."""
    for dep in dependant.dependencies:
        roles = getattr(dep.call, "accord_roles", None)
        if roles is not None:
            return roles
        found = _roles_of(dep)
        if found is not None:
            return found
    return None


def api_routes(app: Any) -> Iterator[tuple[str, str, Any]]:
    for ctx in iter_route_contexts(app.routes):
        path = ctx.path
        if not path or path in PUBLIC or path.startswith("/ui"):
            continue
        for method in sorted((ctx.methods or set()) - {"HEAD"}):
            yield method, path, getattr(ctx, "dependant", None)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    store = tmp_path_factory.mktemp("roles") / "store.duckdb"
    app = create_app(ProjectConfig.model_validate({"store": f"duckdb:///{store}"}), environ=ENV)
    with TestClient(app) as c:
        yield c


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: "customer_id:cus_99999999" if m.group(1) == "ref" else "x", path)


def _call(client: TestClient, method: str, path: str, key: str | None) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    kwargs = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return client.request(method, _url(path), headers=headers, **kwargs).status_code


def test_the_app_has_routes_to_check(client: TestClient) -> None:
    assert len(list(api_routes(client.app))) >= 15


def test_every_route_requires_a_role(client: TestClient) -> None:
    missing = [f"{m} {p}" for m, p, dependant in api_routes(client.app) if dependant is None or _roles_of(dependant) is None]
    assert missing == []


def test_every_route_answers_401_without_a_key(client: TestClient) -> None:
    wrong = {f"{m} {p}": s for m, p, _ in api_routes(client.app) if (s := _call(client, m, p, None)) != 401}
    assert wrong == {}


def test_every_route_lets_in_exactly_its_roles(client: TestClient) -> None:
    wrong = {}
    for method, path, dependant in api_routes(client.app):
        roles = _roles_of(dependant) or frozenset()
        for role, key in KEYS.items():
            status = _call(client, method, path, key)
            if (status == 403) == (role in roles) or status == 401:
                wrong[f"{method} {path} as {role}"] = status
    assert wrong == {}


@pytest.mark.parametrize(("route_role", "key_roles"), [
    ("read", {"admin", "read", "steward", "analyst"}),
    ("write", {"admin", "write", "ingest"}),
    ("ingest", {"admin", "write", "ingest"}),
    ("steward", {"admin", "steward"}),
    ("marketer", {"admin", "marketer"}),
])
def test_which_key_roles_satisfy_a_route_role(route_role: str, key_roles: set[str]) -> None:
    assert allowed_roles(route_role) == key_roles


def test_privacy_requests_are_for_stewards(client: TestClient) -> None:
    routes = {(m, p): _roles_of(d) for m, p, d in api_routes(client.app)}
    assert routes[("POST", "/v1/privacy/{ref}/erase")] == {"admin", "steward"}
    assert routes[("GET", "/v1/privacy/{ref}/export")] == {"admin", "steward"}


def test_collection_is_for_ingest_keys_only(client: TestClient) -> None:
    routes = {(m, p): _roles_of(d) for m, p, d in api_routes(client.app)}
    assert routes[("POST", "/v1/track")] == {"admin", "ingest", "write"}


def test_every_role_has_an_environment_variable() -> None:
    from accord.api.auth import ENV_KEYS

    assert sorted(ENV_KEYS.values()) == sorted(ROLES)
    assert ENV_KEYS["ACCORD_STEWARD_KEY"] == "steward"
