"""The ingest API on a real uvicorn, producing to the real Kafka broker."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from services.ingest_api.app import create_app
from services.ingest_api.config import IngestSettings
from tests.http_server import UvicornThread
from tests.servers import free_port

pytestmark = pytest.mark.integration
JSON_V2 = {"Content-Type": "application/vnd.kafka.json.v2+json"}


@pytest.fixture
def api(kafka_bootstrap: str, unique: str) -> Iterator[tuple[str, str]]:
    settings = IngestSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{unique}",
        topic_partitions=2,
        ingest_max_body_bytes=64 * 1024,
    )
    server = UvicornThread(create_app(settings), free_port(start=21000))
    server.start(ready_path="/readyz")
    try:
        yield server.url, f"t{unique}"
    finally:
        server.stop()


async def _consume(bootstrap: str, topic: str, count: int) -> list[tuple[bytes | None, bytes]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        records: list[tuple[bytes | None, bytes]] = []
        while len(records) < count:
            batch = await consumer.getmany(timeout_ms=10_000)
            if not batch:
                break
            for messages in batch.values():
                records += [(m.key, m.value) for m in messages]
        return records
    finally:
        await consumer.stop()


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
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post(
            f"/topics/{prefix}.pin", content=json.dumps(body), headers=JSON_V2
        )
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["key_schema_id"] is None and payload["value_schema_id"] is None
    assert [o["error_code"] for o in payload["offsets"]] == [None, None]
    assert all(
        isinstance(o["offset"], int) and o["partition"] in (0, 1) for o in payload["offsets"]
    )
    records = await _consume(kafka_bootstrap, f"{prefix}.pin", 2)
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
