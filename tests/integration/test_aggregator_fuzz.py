"""A schema-driven fuzz of the aggregator's public HTTP API (schemathesis, against the OpenAPI
document it serves at /openapi.json) on a real aggregator over a real broker holding posts:
no request, valid or not, gets a 5xx, and every response matches what the document says.
``PINPIPE_AGGREGATOR_FUZZ_CASES`` cases in all (default 1,000), split over the operations, half of
each operation's cases valid by the document and half not."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.conftest import wait_until
from tests.integration.test_aggregator import Aggregator, aggregators, applied, produce_stream
from tests.posts_stream import posts_stream
from tests.processes import ServiceProcess
from tests.servers import KafkaServer

__all__ = ["aggregators"]  # the fixture, shared with test_aggregator.py


def test_no_server_errors_and_responses_match_the_openapi(
    own_broker: KafkaServer, tmp_path: Path, aggregators: list[ServiceProcess]
) -> None:
    total = int(os.environ.get("PINPIPE_AGGREGATOR_FUZZ_CASES", "1000"))
    aggregator = Aggregator(own_broker, tmp_path, "a").start()
    aggregators.append(aggregator)
    stream = posts_stream(seed=12, share=0.1)
    produce_stream(own_broker.bootstrap, stream)
    wait_until(
        lambda: applied(aggregator) >= len(stream),
        timeout=60,
        what="every record in the aggregates",
    )

    schema = schemathesis.openapi.from_url(f"{aggregator.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]  # an Err fails the test, as it should
    # every public route (schemathesis leaves out the document's own URL)
    assert {op.path for op in operations} >= {
        "/aggregates",
        "/aggregates/{question}",
        "/aggregates/countries/{country}",
        "/aggregates/age-groups/{group}",
        "/healthz",
        "/readyz",
        "/metrics",
    }
    # the operations without parameters have a handful of distinct requests each: the cases go
    # to the ones with parameters
    fuzzed = [op for op in operations if op.path_parameters or op.query]
    assert len(fuzzed) >= 3
    calls: list[tuple[str, int]] = []
    for operation in operations:
        # a request without parameters cannot be made invalid by the document
        modes = [GenerationMode.POSITIVE]
        if operation in fuzzed:
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            examples = -(-total // (2 * len(fuzzed))) if operation in fuzzed else 5

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            def fuzz(case: schemathesis.Case[Any]) -> None:
                response = case.call(timeout=30)
                calls.append((case.path, response.status_code))
                assert response.status_code < 500, (
                    f"{case.method} {case.formatted_path} {case.query}: "
                    f"{response.status_code} {response.text[:300]}"
                )
                # a valid ?window= may still be past the retention (422), and a valid question
                # may take no window (422): the document cannot say so, so "valid requests are
                # accepted" is not checked
                case.validate_response(response, excluded_checks=[positive_data_acceptance])

            fuzz()
    assert len(calls) >= total, f"{len(calls)} cases, fewer than the {total} asked for"
    statuses = {status for _, status in calls}
    assert 200 in statuses and statuses & {400, 404, 422}, statuses
