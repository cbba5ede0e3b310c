"""With the broker killed in the middle of requests, the ingest API never reports a record
written that is not in Kafka afterwards, and answers the outage with 503 / retriable codes."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from services.ingest_api.app import create_app
from services.ingest_api.config import IngestSettings
from tests.http_server import UvicornThread
from tests.integration.conftest import consume_all, kill_broker
from tests.servers import KafkaServer, free_port

pytestmark = pytest.mark.integration
JSON_V2 = {"Content-Type": "application/vnd.kafka.json.v2+json"}


async def test_no_record_reported_written_is_missing(own_broker: KafkaServer) -> None:
    settings = IngestSettings(
        kafka_bootstrap_servers=own_broker.bootstrap,
        topic_prefix="outage",
        topic_partitions=2,
        ingest_produce_timeout_ms=3_000,
    )
    api = UvicornThread(create_app(settings), free_port(start=22000))
    api.start(ready_path="/readyz")
    acknowledged: dict[int, tuple[int, int]] = {}  # record id -> (partition, offset)
    statuses: list[int] = []
    try:
        async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:

            async def post(batch: int) -> None:
                ids = list(range(batch * 10, batch * 10 + 10))
                body = {"records": [{"value": {"id": i}} for i in ids]}
                response = await client.post("/topics/outage.pin", json=body, headers=JSON_V2)
                statuses.append(response.status_code)
                if response.status_code == 200:
                    for i, result in zip(ids, response.json()["offsets"], strict=True):
                        if result["error_code"] is None:
                            acknowledged[i] = (result["partition"], result["offset"])
                        else:
                            assert result["error_code"] in (50002, 50003)
                else:
                    assert response.status_code == 503, response.text
                    assert response.json()["error_code"] == 50302
                    assert response.headers["Retry-After"]

            first = [asyncio.create_task(post(b)) for b in range(30)]
            await asyncio.sleep(0.05)
            kill_broker(
                own_broker
            )  # mid-flight: some requests of `first` are still waiting for acks
            await asyncio.gather(*first)
            await asyncio.gather(*(post(b) for b in range(30, 40)))  # while it is down
    finally:
        api.stop()
    assert 503 in statuses or len(acknowledged) < 400, "the outage was not noticed"
    own_broker.start()  # same storage: what was acknowledged must be there
    stored = await consume_all(own_broker.bootstrap, "outage.pin", len(acknowledged))
    where = {json.loads(m.value)["id"]: (m.partition, m.offset) for m in stored}
    missing = {i for i in acknowledged if i not in where}
    assert not missing, f"reported written but not in Kafka: {sorted(missing)[:10]}"
    assert all(where[i] == acknowledged[i] for i in acknowledged)
