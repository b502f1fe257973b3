"""Schemathesis fuzzes every operation of the OpenAPI spec against a running ``accord serve``:
no 5xx, every response (status, content type, headers, body) is one the spec declares, and
bodies that break the spec are rejected."""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import ADMIN_KEY, bearer

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection]
EXAMPLES = int(os.environ.get("ACCORD_FUZZ_EXAMPLES", "10"))  # per operation and mode; raise it for a deeper run


def test_api_conforms_to_its_openapi_spec(serve: Any) -> None:
    server = serve(workers=1)
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {op.label for op in operations}
    core = {"GET /health", *(f"POST /v1/{t}" for t in ("identify", "track", "page", "screen", "group", "alias",
                                                       "batch")),
            *(f"GET /v1/profiles/{{ref}}{sub}" for sub in ("", "/records", "/events", "/history", "/traits",
                                                           "/segments"))}
    assert core <= labels  # every area's routes are fuzzed, these at least
    statuses: set[int] = set()
    for operation in operations:
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if operation.method == "post" else [])
        for mode in modes:
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def check(case: Any) -> None:
                statuses.add(case.call_and_validate(headers=bearer(ADMIN_KEY), checks=CHECKS).status_code)

            check()
    assert {200, 422} <= statuses  # generated messages were both accepted and rejected
