"""The Kinesis-style streams API on a real uvicorn and the real broker."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from services.ingest_api.kinesis import (
    hash_key,
    hash_key_ranges,
    shard_for_hash_key,
    shard_id,
)
from tests.integration.conftest import IngestServer, consume_all
from tests.sequence_numbers import parse_sequence_number

pytestmark = pytest.mark.integration


async def test_stream_lifecycle(ingest: IngestServer, kafka_bootstrap: str, unique: str) -> None:
    name = f"s-{unique}"
    async with httpx.AsyncClient(base_url=ingest.url) as client:
        created = await client.post(f"/streams/{name}", json={"ShardCount": 3})
        assert created.status_code == 200, created.text
        again = await client.post(f"/streams/{name}", json={"ShardCount": 3})
        assert again.status_code == 400 and again.json()["__type"] == "ResourceInUseException"

        description = (await client.get(f"/streams/{name}")).json()["StreamDescription"]
        assert description["StreamName"] == name
        assert description["StreamStatus"] == "ACTIVE"
        assert description["StreamARN"].endswith(f":stream/{name}")
        assert description["RetentionPeriodHours"] == 168  # the broker's log.retention.hours
        assert description["HasMoreShards"] is False
        assert description["EncryptionType"] == "NONE"
        assert description["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
        assert isinstance(description["StreamCreationTimestamp"], float)
        shards = description["Shards"]
        assert [s["ShardId"] for s in shards] == [shard_id(i) for i in range(3)]
        ranges = hash_key_ranges(3)
        for shard, expected in zip(shards, ranges, strict=True):
            assert shard["HashKeyRange"] == {
                "StartingHashKey": str(expected.start),
                "EndingHashKey": str(expected.end),
            }
            assert shard["SequenceNumberRange"]["StartingSequenceNumber"].isdigit()

        listed = (await client.get("/streams", params={"Limit": 10_000})).json()
        assert name in listed["StreamNames"]
        assert f"streaming-{ingest.prefix}-pin" in listed["StreamNames"]
        assert not any(n.startswith("pinpipe.") for n in listed["StreamNames"])
        page = (await client.get("/streams", params={"Limit": 1})).json()
        assert len(page["StreamNames"]) == 1 and page["HasMoreStreams"] is True
        after = (await client.get("/streams", params={"ExclusiveStartStreamName": name})).json()
        assert all(n > name for n in after["StreamNames"])

        deleted = await client.delete(f"/streams/{name}")
        assert deleted.status_code == 200
        gone = await client.get(f"/streams/{name}")
        assert gone.status_code == 400 and gone.json()["__type"] == "ResourceNotFoundException"
        assert name not in (await client.get("/streams")).json()["StreamNames"]


async def test_put_record_like_the_original_emulator(
    ingest: IngestServer, kafka_bootstrap: str
) -> None:
    name = f"streaming-{ingest.prefix}-geo"
    geo = {
        "ind": 7528,
        "timestamp": "2020-08-28T03:52:47",
        "latitude": -89.9,
        "longitude": -173.2,
        "country": "Albania",
    }
    async with httpx.AsyncClient(base_url=ingest.url) as client:
        first = await client.put(
            f"/streams/{name}/record",
            json={"StreamName": name, "Data": geo, "PartitionKey": "partition-1"},
        )
        second = await client.put(
            f"/streams/{name}/record",
            json={"Data": base64.b64encode(b"raw bytes").decode(), "PartitionKey": "partition-1"},
        )
    assert first.status_code == 200, first.text
    shard = shard_for_hash_key(hash_key("partition-1"), 2)
    assert first.json()["ShardId"] == second.json()["ShardId"] == shard_id(shard)
    seq1, seq2 = first.json()["SequenceNumber"], second.json()["SequenceNumber"]
    assert int(seq1) < int(seq2), "sequence numbers grow per shard"
    records = await consume_all(kafka_bootstrap, name, 2)
    by_offset = {(m.partition, m.offset): m for m in records}
    stored = by_offset[parse_sequence_number(seq1)]
    assert json.loads(stored.value) == geo and stored.key == b"partition-1"
    assert stored.partition == shard
    assert by_offset[parse_sequence_number(seq2)].value == b"raw bytes"


@pytest.mark.parametrize("style", ["kinesis", "api-gateway"])
async def test_put_records_both_body_styles(
    ingest: IngestServer, kafka_bootstrap: str, style: str
) -> None:
    name = f"streaming-{ingest.prefix}-user"
    keys = [f"key-{i}" for i in range(20)]
    if style == "kinesis":
        body = {"Records": [{"Data": {"ind": i}, "PartitionKey": k} for i, k in enumerate(keys)]}
    else:
        body = {"records": [{"data": {"ind": i}, "partition-key": k} for i, k in enumerate(keys)]}
    async with httpx.AsyncClient(base_url=ingest.url) as client:
        response = await client.put(f"/streams/{name}/records", json=body)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["FailedRecordCount"] == 0 and len(payload["Records"]) == 20
    for key, result in zip(keys, payload["Records"], strict=True):
        assert result["ShardId"] == shard_id(shard_for_hash_key(hash_key(key), 2))
    stored = await consume_all(kafka_bootstrap, name, 20)
    assert sorted(json.loads(m.value)["ind"] for m in stored) == list(range(20))


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error_type"),
    [
        ("GET", "/streams/nope-{u}", None, 400, "ResourceNotFoundException"),
        (
            "PUT",
            "/streams/nope-{u}/record",
            {"Data": {}, "PartitionKey": "k"},
            400,
            "ResourceNotFoundException",
        ),
        ("DELETE", "/streams/nope-{u}", None, 400, "ResourceNotFoundException"),
        ("GET", "/streams/bad name!", None, 400, "ValidationException"),
        ("POST", "/streams/{s}", {"ShardCount": 0}, 400, "ValidationException"),
        ("PUT", "/streams/{s}/record", {"Data": {}}, 400, "ValidationException"),
        (
            "PUT",
            "/streams/{s}/record",
            {"Data": "not base64!", "PartitionKey": "k"},
            400,
            "InvalidArgumentException",
        ),
        (
            "PUT",
            "/streams/{s}/record",
            {"Data": 5, "PartitionKey": "k"},
            400,
            "ValidationException",
        ),
        (
            "PUT",
            "/streams/{s}/record",
            {"Data": {}, "PartitionKey": "k", "ExplicitHashKey": "-1"},
            400,
            "InvalidArgumentException",
        ),
        ("PUT", "/streams/{s}/records", {"Records": []}, 400, "ValidationException"),
        (
            "PUT",
            "/streams/{s}/records",
            {"Records": [{"Data": {}, "PartitionKey": "k"}] * 501},
            400,
            "ValidationException",
        ),
        ("PUT", "/streams/{s}/records", "{not json", 400, "SerializationException"),
        ("POST", "/streams/big-{u}", {"ShardCount": 65}, 400, "LimitExceededException"),
    ],
)
async def test_stream_errors_in_kinesis_style(
    ingest: IngestServer,
    unique: str,
    method: str,
    path: str,
    body: object,
    status: int,
    error_type: str,
) -> None:
    url = path.format(u=unique, s=f"streaming-{ingest.prefix}-pin")
    content = body if isinstance(body, str) else json.dumps(body) if body is not None else None
    async with httpx.AsyncClient(base_url=ingest.url) as client:
        response = await client.request(
            method, url, content=content, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == status, response.text
    assert response.json()["__type"] == error_type
    assert response.json()["message"]


async def test_non_ascii_data_is_a_client_error(ingest: IngestServer) -> None:
    """Found by the fuzz: base64 decoding of non-ASCII text raised a 500."""
    name = f"streaming-{ingest.prefix}-pin"
    async with httpx.AsyncClient(base_url=ingest.url) as client:
        response = await client.put(
            f"/streams/{name}/record", json={"Data": "ü", "PartitionKey": "k"}
        )
        topics = await client.post(
            f"/topics/{ingest.prefix}.pin",
            json={"records": [{"value": "ü"}]},
            headers={"Content-Type": "application/vnd.kafka.binary.v2+json"},
        )
    assert response.status_code == 400 and response.json()["__type"] == "InvalidArgumentException"
    assert topics.status_code == 422 and topics.json()["error_code"] == 422
