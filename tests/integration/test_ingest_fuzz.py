"""A schema-driven fuzz of the ingest API's OpenAPI (schemathesis) against the real broker, with
API keys off and on: no request, however odd, gets a 5xx, and every response matches what the
OpenAPI says. ``PINPIPE_INGEST_FUZZ_EXAMPLES`` sets the examples per operation (default 150); the
cases run are counted, so a schema that stops producing them fails the test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr
from schemathesis.specs.openapi.checks import positive_data_acceptance
from schemathesis.specs.openapi.schemas import OpenApiSchema

from services.ingest_api.app import create_app
from services.ingest_api.config import IngestSettings
from tests.http_server import UvicornThread
from tests.servers import free_port

pytestmark = pytest.mark.integration
EXAMPLES = int(os.environ.get("PINPIPE_INGEST_FUZZ_EXAMPLES", "150"))
PRODUCER_KEY, ADMIN_KEY = "fuzz-producer", "fuzz-admin"


@pytest.fixture(scope="module", params=["keys-off", "keys-on"])
def api_schema(request: pytest.FixtureRequest, kafka_bootstrap: str) -> Iterator[OpenApiSchema]:
    keys_on = request.param == "keys-on"
    app_settings = IngestSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix="fuzz",
        topic_partitions=1,
        ingest_max_shards=2,
        ingest_max_streams=20,  # however many CreateStream cases there are
        ingest_max_body_bytes=256 * 1024,
        ingest_api_keys=SecretStr(PRODUCER_KEY if keys_on else ""),
        ingest_admin_api_keys=SecretStr(ADMIN_KEY if keys_on else ""),
    )
    server = UvicornThread(create_app(app_settings), free_port(start=24000))
    server.start(ready_path="/readyz")
    try:
        yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    finally:
        server.stop()


def test_no_server_errors_and_responses_match_the_spec(
    api_schema: OpenApiSchema, request: pytest.FixtureRequest
) -> None:
    """With keys on, each case is sent with no key, a producer's key or an admin key in turn,
    so the fuzz reaches every route behind the guard as well as the guard itself."""
    keys_on = request.node.callspec.params["api_schema"] == "keys-on"
    key_cycle = [None, PRODUCER_KEY, ADMIN_KEY] if keys_on else [None]
    operations = [result.ok() for result in api_schema.get_all_operations()]  # type: ignore[union-attr]  # an Err fails the test, as it should
    assert len(operations) >= 10, "every route is in the OpenAPI"
    cases = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case[Any]) -> None:
            nonlocal cases
            key = key_cycle[cases % len(key_cycle)]
            cases += 1
            headers = {"x-api-key": key} if key else None
            response = case.call(timeout=30, headers=headers)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
            )
            # Kinesis answers 400 to well-formed requests for streams that do not exist, which
            # schemathesis' "positive data accepted" check counts as a failure: skip that one.
            case.validate_response(response, excluded_checks=[positive_data_acceptance])

        fuzz()
    # operations without parameters have few distinct cases: hypothesis stops early there
    assert cases >= EXAMPLES * len(operations) // 2, f"only {cases} cases ran"
    print(f"ingest API fuzz ({request.node.callspec.params['api_schema']}): {cases} cases")
