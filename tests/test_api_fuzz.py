"""Property-based fuzzing of every operation in the service's own OpenAPI definition
(schemathesis): no 5xx and no response that breaks its documented schema. Bounded here (a few
examples per operation); ``schemathesis run http://HOST/api`` runs it as long as you like."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from geo_cs.api.app import create_app
from geo_cs.config import Settings

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis not installed (pip install '.[test]')")


@pytest.fixture(scope="module")
def api(demo_db):
    app = create_app(Settings(db=demo_db))
    with TestClient(app):  # runs the lifespan: the store is open while the fuzzing runs
        yield schemathesis.openapi.from_asgi("/api", app)


def test_no_operation_errors_or_breaks_its_schema(api):
    schema = api
    checks = [schemathesis.checks.not_a_server_error, schemathesis.checks.response_schema_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case):
            case.call_and_validate(checks=checks)

        fuzz()
