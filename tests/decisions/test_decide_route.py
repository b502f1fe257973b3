"""POST /v1/decide is answered by its own handler (no FastAPI dependency solving): the key is checked
before the body, and a body that breaks the spec is a 422 whose message names the field."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from accord.api import create_app
from accord.config import ProjectConfig

KEY = "decide-route-read-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def client(store_url: str) -> Iterator[TestClient]:
    cfg = ProjectConfig.model_validate({"store": store_url, "decisions": {"offers": [{"id": "welcome"}]}})
    with TestClient(create_app(cfg, environ={"ACCORD_READ_KEY": KEY})) as c:
        yield c


def message(r) -> tuple[int, str]:
    return r.status_code, r.json()["message"]


def test_a_valid_body_is_decided(client):
    r = client.post("/v1/decide", json={"customer": "anonymous_id:v1", "context": {"channel": "web"}}, headers=AUTH)
    assert (r.status_code, [o["offer_id"] for o in r.json()["offers"]]) == (200, ["welcome"])


def test_the_key_is_checked_before_the_body(client):
    assert client.post("/v1/decide", json={"limit": "many"}).status_code == 401


@pytest.mark.parametrize(("body", "expected"), [
    ({}, "customer: Field required"),
    ({"customer": "anonymous_id:v1", "limit": 0}, "limit: Input should be greater than or equal to 1"),
    ({"customer": "anonymous_id:v1", "context": {"chanel": "web"}}, "context.chanel: Extra inputs are not permitted"),
])
def test_a_body_that_breaks_the_spec_is_a_422_naming_the_field(client, body, expected):
    assert message(client.post("/v1/decide", json=body, headers=AUTH)) == (422, expected)


def test_malformed_json_and_a_body_that_is_not_json_are_422s(client):
    bad = client.post("/v1/decide", content=b'{"customer": ', headers={**AUTH, "Content-Type": "application/json"})
    assert bad.status_code == 422 and bad.json()["message"].startswith("(request): Invalid JSON")
    assert message(client.post("/v1/decide", content=b'{"customer": "anonymous_id:v1"}',
                               headers={**AUTH, "Content-Type": "text/plain"})) == (
        422, "(request): expected a JSON body (Content-Type: application/json)")
    assert message(client.post("/v1/decide", headers=AUTH)) == (422, "(request): Field required")


def test_the_spec_still_describes_the_operation(client):
    op = client.get("/openapi.json").json()["paths"]["/v1/decide"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/DecideBody"}
    assert op["security"] == [{"bearer": []}]
    assert {"200", "401", "403", "404", "422"} <= set(op["responses"])
