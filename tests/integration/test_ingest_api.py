"""The ingest API on a real uvicorn, producing to the real Kafka broker."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration.conftest import IngestServer, consume_all

pytestmark = pytest.mark.integration
JSON_V2 = {"Content-Type": "application/vnd.kafka.json.v2+json"}


@pytest.fixture
def api(ingest: IngestServer) -> tuple[str, str]:
    return ingest.url, ingest.prefix


async def _consume(bootstrap: str, topic: str, count: int) -> list[tuple[bytes | None, bytes]]:
    return [(m.key, m.value) for m in await consume_all(bootstrap, topic, count)]


async def test_produce_json_records_like_the_original_emulator(
    api: tuple[str, str], kafka_bootstrap: str
) -> None:
    url, prefix = api
    pin = {
        "index": 4,
        "unique_id": "55abcd28",
        "title": "t",
        "follower_count": "2M",
        "category": "art",
    }
    body = {"records": [{"value": pin}, {"key": "k", "value": {"index": 5}}]}
    before_ms = time.time() * 1000
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post(
            f"/topics/{prefix}.pin", content=json.dumps(body), headers=JSON_V2
        )
    after_ms = time.time() * 1000
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["key_schema_id"] is None and payload["value_schema_id"] is None
    assert [o["error_code"] for o in payload["offsets"]] == [None, None]
    assert all(
        isinstance(o["offset"], int) and o["partition"] in (0, 1) for o in payload["offsets"]
    )
    stored = await consume_all(kafka_bootstrap, f"{prefix}.pin", 2)
    assert all(before_ms - 1 <= m.timestamp <= after_ms + 1 for m in stored), "ingest time kept"
    records = [(m.key, m.value) for m in stored]
    values = sorted((json.loads(v) for _, v in records), key=lambda v: v["index"])
    assert values == [pin, {"index": 5}]
    assert (b'"k"', b'{"index":5}') in records


async def test_binary_records_are_decoded(api: tuple[str, str], kafka_bootstrap: str) -> None:
    url, prefix = api
    body = {
        "records": [
            {
                "key": base64.b64encode(b"key").decode(),
                "value": base64.b64encode(b"\x00raw").decode(),
                "partition": 1,
            }
        ]
    }
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post(
            f"/topics/{prefix}.geo",
            json=body,
            headers={"Content-Type": "application/vnd.kafka.binary.v2+json"},
        )
    assert response.status_code == 200, response.text
    assert response.json()["offsets"][0]["partition"] == 1
    assert await _consume(kafka_bootstrap, f"{prefix}.geo", 1) == [(b"key", b"\x00raw")]


@pytest.mark.parametrize(
    ("path_suffix", "content", "headers", "status", "code"),
    [
        ("nope.pin", '{"records": [{"value": 1}]}', JSON_V2, 404, 40401),
        (".pin", '{"records": [{"value": 1, "partition": 7}]}', JSON_V2, 404, 40402),
        (".pin", "{not json", JSON_V2, 422, 422),
        (".pin", '{"recs": []}', JSON_V2, 422, 422),
        (".pin", '{"records": [{"value": 1}]}', {"Content-Type": "text/plain"}, 415, 415),
        (".pin", json.dumps({"records": [{"value": "x" * 70_000}]}), JSON_V2, 413, 413),
    ],
)
async def test_request_errors_in_the_proxy_format(
    api: tuple[str, str],
    path_suffix: str,
    content: str,
    headers: dict[str, str],
    status: int,
    code: int,
) -> None:
    url, prefix = api
    topic = path_suffix if path_suffix.startswith("nope") else prefix + path_suffix
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post(f"/topics/{topic}", content=content, headers=headers)
        metrics = (await client.get("/metrics")).text
    assert response.status_code == status
    assert response.json()["error_code"] == code
    assert isinstance(response.json()["message"], str)
    assert "pinpipe_ingest_api_rejected_total" in metrics


async def test_topics_listing(api: tuple[str, str]) -> None:
    url, prefix = api
    async with httpx.AsyncClient(base_url=url) as client:
        topics = (await client.get("/topics")).json()
        described = (await client.get(f"/topics/{prefix}.user")).json()
        missing = await client.get("/topics/nope.user")
    assert f"{prefix}.pin" in topics and f"streaming-{prefix}-geo" in topics
    assert described["name"] == f"{prefix}.user"
    assert [p["partition"] for p in described["partitions"]] == [0, 1]
    assert missing.status_code == 404 and missing.json()["error_code"] == 40401


@pytest.mark.parametrize(
    ("content_type", "body", "code"),
    [
        ("application/vnd.kafka.avro.v2+json", {"records": [{"key": 1, "value": 1}]}, 42201),
        ("application/vnd.kafka.jsonschema.v2+json", {"records": [{"value": 1}]}, 42202),
    ],
)
async def test_schema_formats_without_schemas(
    api: tuple[str, str], content_type: str, body: dict[str, Any], code: int
) -> None:
    url, prefix = api
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post(
            f"/topics/{prefix}.pin", json=body, headers={"Content-Type": content_type}
        )
        with_schema = await client.post(
            f"/topics/{prefix}.pin",
            json={**body, "key_schema_id": 1, "value_schema_id": 2},
            headers={"Content-Type": content_type},
        )
    assert response.status_code == 422 and response.json()["error_code"] == code
    assert with_schema.status_code == 415 and with_schema.json()["error_code"] == 415


async def test_limits_and_allowed_topics(ingest_factory: Callable[..., IngestServer]) -> None:
    server = ingest_factory(ingest_max_records=3)
    async with httpx.AsyncClient(base_url=server.url) as client:
        too_many = await client.post(
            f"/topics/{server.prefix}.pin",
            json={"records": [{"value": i} for i in range(4)]},
            headers=JSON_V2,
        )
        clean = await client.post(
            "/topics/pinpipe.clean.pin", json={"records": [{"value": 1}]}, headers=JSON_V2
        )
    assert too_many.status_code == 413 and too_many.json()["error_code"] == 413
    assert clean.status_code == 403 and clean.json()["error_code"] == 40301


async def test_api_keys_guard_data_routes_only(ingest_factory: Callable[..., IngestServer]) -> None:
    server = ingest_factory(ingest_api_keys="k1, k2")
    body = {"records": [{"value": {"index": 1}}]}
    topic = f"/topics/{server.prefix}.pin"
    async with httpx.AsyncClient(base_url=server.url) as client:
        missing = await client.post(topic, json=body, headers=JSON_V2)
        wrong = await client.post(topic, json=body, headers={**JSON_V2, "x-api-key": "nope"})
        right = await client.post(topic, json=body, headers={**JSON_V2, "x-api-key": "k2"})
        streams = await client.get("/streams")
        open_routes = [await client.get(p) for p in ("/healthz", "/readyz", "/metrics")]
    assert missing.status_code == wrong.status_code == streams.status_code == 403
    assert missing.json() == {"message": "Forbidden"}
    assert right.status_code == 200
    assert [r.status_code for r in open_routes] == [200, 200, 200]


async def test_describe_topic_shows_its_configuration(api: tuple[str, str]) -> None:
    url, prefix = api
    async with httpx.AsyncClient(base_url=url) as client:
        described = (await client.get(f"/topics/{prefix}.geo")).json()
    assert described["configs"]["retention.ms"] == str(168 * 3600 * 1000)


async def test_metrics_count_requests_records_and_latency(api: tuple[str, str]) -> None:
    url, prefix = api
    async with httpx.AsyncClient(base_url=url) as client:
        await client.post(
            f"/topics/{prefix}.pin", json={"records": [{"value": 1}] * 3}, headers=JSON_V2
        )
        text = (await client.get("/metrics")).text
    assert f'pinpipe_ingest_api_records_total{{status="ok",topic="{prefix}.pin"}} 3.0' in text
    assert 'pinpipe_ingest_api_requests_total{route="/topics/{topic}",status="200"}' in text
    assert "pinpipe_ingest_api_produce_seconds_count" in text
    assert 'pinpipe_ingest_api_body_bytes_total{route="/topics/{topic}"}' in text
