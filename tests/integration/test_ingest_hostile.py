"""The ingest API against careless and malicious clients, on the real broker: client mistakes
get a 4xx in the API's own format (and a metric), never a 5xx; pinpipe's internal topics are
out of reach; stream administration needs an admin key; metric labels stay bounded; a burst of
maximum-size bodies is shed, not swallowed."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr, ValidationError

from services.ingest_api.config import IngestSettings
from shared.kafka_admin import ensure_topics
from shared.kafka_security import KafkaConnection
from shared.topics import DLQ_TOPIC, STREAM_REGISTRY_TOPIC, clean_topic, raw_topics
from tests.integration.conftest import IngestServer
from tests.processes import ServiceProcess

pytestmark = pytest.mark.integration
JSON_V2 = {"Content-Type": "application/vnd.kafka.json.v2+json"}
STREAMS = {"Content-Type": "application/x-amz-json-1.1"}


def _nested(levels: int) -> object:
    value: object = {"index": 1}
    for _ in range(levels):
        value = [value]
    return value


def _sample(client: httpx.Client, sample: str) -> float:
    """One sample of /metrics (0 when absent). The registry is the process's: tests compare
    before and after."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f"{sample} "):
            return float(line.split()[-1])
    return 0.0


def _rejected(client: httpx.Client, reason: str) -> float:
    return _sample(client, f'pinpipe_ingest_api_rejected_total{{reason="{reason}"}}')


@pytest.fixture
def internal_topics_exist(kafka_bootstrap: str) -> list[str]:
    """pinpipe's internal topics, made as their owners make them: refusals below are not just
    "no such topic"."""
    names = [DLQ_TOPIC, clean_topic("pin"), "pinpipe-aggregator-posts-changelog"]
    asyncio.run(ensure_topics(KafkaConnection(kafka_bootstrap), names, 1))
    return names


def test_client_mistakes_get_a_4xx_in_the_apis_format_never_a_5xx(
    ingest_factory: Callable[..., IngestServer],
) -> None:
    server = ingest_factory()
    deep = _nested(400)  # orjson reads 1,024 levels but writes 254
    stream = f"streaming-{server.prefix}-pin"
    record = {"Data": {"index": 1}, "PartitionKey": "k"}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        before = _rejected(client, "bad_body")
        topics = client.post(
            f"/topics/{server.prefix}.pin", json={"records": [{"value": deep}]}, headers=JSON_V2
        )
        assert topics.status_code == 422, topics.text
        assert topics.json()["error_code"] == 422
        assert "nested deeper than 254 levels" in topics.json()["message"]
        assert _rejected(client, "bad_body") == before + 1

        refused = [
            client.put(f"/streams/{stream}/record", json={**record, "Data": deep}),
            client.put(f"/streams/{stream}/records", json={"Records": [{**record, "Data": deep}]}),
            client.put(f"/streams/{stream}/record", json={**record, "ExplicitHashKey": "²"}),
            client.put(f"/streams/{stream}/record", json={**record, "ExplicitHashKey": "9" * 4400}),
            client.post("/streams/%2E%2E", json={}),  # "..": a name Kafka refuses
            client.get("/streams/%2E"),
            client.post("/streams/pinpipe_dlq", json={}),  # folds onto pinpipe.dlq
        ]
        dotted = client.post(f"/streams/fold.{server.prefix}", json={"ShardCount": 1})
        assert dotted.status_code == 200, dotted.text
        # Kafka refuses a name that equals an existing one once '.' and '_' are the same
        refused.append(client.post(f"/streams/fold_{server.prefix}", json={"ShardCount": 1}))
        client.delete(f"/streams/fold.{server.prefix}")
        unrouted = [client.get("/nowhere"), client.delete(f"/topics/{server.prefix}.pin")]
    for response in refused:
        assert response.status_code == 400, (response.request.url, response.text)
        assert response.headers["content-type"] == "application/x-amz-json-1.1"
        assert response.json()["__type"] in ("InvalidArgumentException", "ValidationException")
    assert [r.status_code for r in unrouted] == [404, 405]
    assert [r.json()["error_code"] for r in unrouted] == [40400, 40500]


def test_internal_topics_can_be_neither_created_written_read_nor_deleted(
    ingest_factory: Callable[..., IngestServer], internal_topics_exist: list[str]
) -> None:
    server = ingest_factory()
    body = {"records": [{"value": {"index": 1}}]}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        listed = client.get("/topics").json()
        assert f"{server.prefix}.pin" in listed
        assert not [t for t in listed if t.startswith(("pinpipe", "_"))], listed
        streams = client.get("/streams", params={"Limit": 10_000}).json()["StreamNames"]
        assert not [s for s in streams if s.startswith(("pinpipe", "_"))], streams
        for name in [*internal_topics_exist, "__consumer_offsets"]:
            produced = client.post(f"/topics/{name}", json=body, headers=JSON_V2)
            described = client.get(f"/topics/{name}")
            for response in (produced, described):
                assert response.status_code == 403, (name, response.text)
                assert response.json()["error_code"] == 40301
            for response in (
                client.get(f"/streams/{name}"),
                client.delete(f"/streams/{name}"),
                client.put(f"/streams/{name}/record", json={"Data": {}, "PartitionKey": "k"}),
            ):
                assert response.status_code == 400, (name, response.text)
                assert response.json()["__type"] == "ResourceNotFoundException"
        for name in ["pinpipe.dlq", "pinpipe_clean_pin", "pinpipe.streams", "__consumer_offsets"]:
            created = client.post(f"/streams/{name}", json={"ShardCount": 1})
            assert created.status_code == 400, (name, created.text)
            assert "reserved" in created.json()["message"]
    assert _topics_exist(server.settings.kafka_bootstrap_servers, internal_topics_exist)


def _topics_exist(bootstrap: str, names: list[str]) -> bool:
    async def listed() -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    return set(names) <= asyncio.run(listed())


async def _streams_made(bootstrap: str, prefix: str) -> int:
    """How many streams CreateStream has made and DeleteStream not deleted (of the whole test
    run: the registry is the broker's), read from the registry topic itself; the raw topics of
    ``prefix`` do not count."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(STREAM_REGISTRY_TOPIC, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        made: set[bytes] = set()
        while await consumer.position(tp) < end:
            for message in (await consumer.getmany(tp, timeout_ms=1_000)).get(tp, []):
                assert message.key is not None
                (made.add if message.value is not None else made.discard)(message.key)
        return len(made - {t.encode() for t in raw_topics(prefix)})
    finally:
        await consumer.stop()


def test_stream_administration_needs_an_admin_key_and_has_limits(
    ingest_factory: Callable[..., IngestServer], unique: str
) -> None:
    server = ingest_factory(ingest_api_keys="producer", ingest_admin_api_keys="admin")
    made = asyncio.run(_streams_made(server.settings.kafka_bootstrap_servers, server.prefix))
    server = ingest_factory(
        ingest_api_keys="producer", ingest_admin_api_keys="admin", ingest_max_streams=made + 1
    )
    producer, admin = {"x-api-key": "producer"}, {"x-api-key": "admin"}
    first, second = f"s{unique}-a", f"s{unique}-b"
    record = {"Data": {"index": 1}, "PartitionKey": "k"}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        before = _rejected(client, "forbidden_admin")
        assert client.post(f"/streams/{first}", json={}, headers=producer).status_code == 403
        assert client.post(f"/streams/{first}", json={}).status_code == 403
        assert _rejected(client, "forbidden_admin") == before + 2
        created = client.post(f"/streams/{first}", json={}, headers=admin)
        assert created.status_code == 200, created.text
        put = client.put(f"/streams/{first}/record", json=record, headers=producer)
        assert put.status_code == 200, put.text
        limited = client.post(f"/streams/{second}", json={}, headers=admin)
        assert limited.status_code == 400
        assert limited.json()["__type"] == "LimitExceededException"
        too_many_shards = client.post(f"/streams/{second}", json={"ShardCount": 65}, headers=admin)
        assert too_many_shards.json()["__type"] == "LimitExceededException"
        raw = f"streaming-{server.prefix}-pin"  # acknowledged records the cleaner may not have read
        kept = client.delete(f"/streams/{raw}", headers=admin)
        assert kept.status_code == 400 and kept.json()["__type"] == "ResourceInUseException"
        assert client.delete(f"/streams/{first}", headers=producer).status_code == 403
        assert client.delete(f"/streams/{first}", headers=admin).status_code == 200
        # the stream's place is free again
        assert client.post(f"/streams/{second}", json={}, headers=admin).status_code == 200
        assert client.delete(f"/streams/{second}", headers=admin).status_code == 200


def test_keys_that_cannot_be_right_stop_the_service_at_start() -> None:
    with pytest.raises(ValidationError, match="must differ"):
        IngestSettings(ingest_api_keys=SecretStr("a,b"), ingest_admin_api_keys=SecretStr("b"))
    with pytest.raises(ValidationError, match="PINPIPE_INGEST_API_KEYS is empty"):
        IngestSettings(ingest_require_api_keys=True, ingest_admin_api_keys=SecretStr("admin"))


def test_metric_labels_of_client_made_streams_are_bounded(
    ingest_factory: Callable[..., IngestServer], unique: str
) -> None:
    server = ingest_factory()
    names = [f"label{unique}-{i}" for i in range(3)]
    stream_records = 'pinpipe_ingest_api_records_total{status="ok",topic="stream"}'
    with httpx.Client(base_url=server.url, timeout=30) as client:
        before = _sample(client, stream_records)
        for name in names:
            assert client.post(f"/streams/{name}", json={"ShardCount": 1}).status_code == 200
            put = client.put(f"/streams/{name}/record", json={"Data": {}, "PartitionKey": "k"})
            assert put.status_code == 200, put.text
        after = _sample(client, stream_records)
        metrics = client.get("/metrics").text
        for name in names:
            client.delete(f"/streams/{name}")
    assert after == before + 3
    assert not [name for name in names if name in metrics]


def test_twenty_parallel_maximum_bodies_are_shed_within_the_memory_limit(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    """20 clients each send a 10 MiB body (the default maximum) at once to a real ingest API
    process: it answers every one (200, or 503 with Retry-After beyond its bytes in flight),
    stays alive and ready, and its peak memory stays under the pod's 512 MiB limit."""
    prefix = f"h{unique}"
    env = {
        **os.environ,
        "PINPIPE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PINPIPE_TOPIC_PREFIX": prefix,
        "PINPIPE_TOPIC_PARTITIONS": "2",
    }
    api = ServiceProcess("ingest-api", env, tmp_path / "ingest.log", "PINPIPE_INGEST_PORT").start()
    limit = IngestSettings().ingest_max_body_bytes
    value = {"index": 1, "title": "x" * 1500}
    count = limit // len(f'{{"value":{{"index":1,"title":"{"x" * 1500}"}}}},')
    body = httpx.Request("POST", "/", json={"records": [{"value": value}] * count}).content
    assert limit - 4096 < len(body) <= limit

    async def post_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=api.url, timeout=120) as client:
            return await asyncio.gather(
                *(
                    client.post(f"/topics/{prefix}.pin", content=body, headers=JSON_V2)
                    for _ in range(20)
                )
            )

    try:
        responses = asyncio.run(post_all())
        statuses = sorted(r.status_code for r in responses)
        assert set(statuses) <= {200, 503}, statuses
        assert 200 in statuses and 503 in statuses, statuses
        for response in responses:
            if response.status_code == 503:
                assert response.headers["retry-after"] == "5"
                assert response.json()["error_code"] == 50303
            else:
                # a record the broker did not take within the produce timeout is a
                # retriable failure (50003), which a slow machine may see
                codes = {o["error_code"] for o in response.json()["offsets"]}
                assert codes <= {None, 50003} and None in codes, codes
        assert api.alive and httpx.get(api.url + "/readyz").status_code == 200
        assert api.process is not None
        peak = _peak_rss_bytes(api.process.pid)
        assert peak < 512 * 1024 * 1024, f"peak RSS {peak / 2**20:.0f} MiB"
        assert api.metric(
            "pinpipe_ingest_api_rejected_total", reason="overloaded"
        ) == statuses.count(503)
    finally:
        api.kill()


def _peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")
