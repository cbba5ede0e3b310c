"""The streams API as the original API Gateway mapped it to Kinesis; streams are Kafka topics
and shards are partitions (see ``services/ingest_api/kinesis.py`` for the mapping rules).

``GET /streams`` (ListStreams), ``POST /streams/{name}`` (CreateStream), ``GET /streams/{name}``
(DescribeStream), ``DELETE /streams/{name}`` (DeleteStream), ``PUT /streams/{name}/record``
(PutRecord) and ``PUT /streams/{name}/records`` (PutRecords). Errors are Kinesis-style
``{"__type", "message"}``.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any

from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ValidationError

from services.ingest_api import kinesis
from services.ingest_api.errors import (
    RETRY_AFTER_SECONDS,
    STREAMS_MEDIA_TYPE,
    StreamError,
    StreamsJSONResponse,
    stream_not_found,
)
from services.ingest_api.openapi import request_body, stream_errors
from services.ingest_api.producer import BrokerUnavailable, KafkaGateway, OutgoingRecord
from services.ingest_api.routes.common import (
    TooDeep,
    count_records,
    gateway_of,
    json_bytes,
    over_record_limit,
    read_json,
)
from services.ingest_api.stream_registry import StreamRegistry
from shared.api_models import (
    CreateStreamRequest,
    DescribeStreamResponse,
    ListStreamsResponse,
    PutRecordRequest,
    PutRecordResponse,
    PutRecordsEntry,
    PutRecordsRequest,
    PutRecordsResponse,
)
from shared.topics import is_internal_topic, is_valid_topic_name, raw_topics

STREAM_PREFIX = "streaming-"
_DECIMAL = re.compile(r"^[0-9]{1,39}$")  # ASCII digits only (str.isdigit() takes "²" too)
_ERRORS = stream_errors()
StreamName = Annotated[
    str, Path(pattern=kinesis.STREAM_NAME_RE.pattern, description="[a-zA-Z0-9_.-]{1,128}")
]

router = APIRouter(
    tags=["streams (Kinesis via API Gateway)"],
    default_response_class=StreamsJSONResponse,
)


def _unavailable(exc: Exception) -> StreamError:
    return StreamError("ServiceUnavailable", f"Kafka unavailable: {exc}", 503, RETRY_AFTER_SECONDS)


def _invalid(message: str) -> StreamError:
    return StreamError("InvalidArgumentException", message)


def _validation(exc: ValidationError) -> StreamError:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return StreamError(
        "ValidationException", f"1 validation error detected: {where}: {first['msg']}"
    )


def _json(model: BaseModel) -> Response:
    return Response(model.model_dump_json(), media_type=STREAMS_MEDIA_TYPE)


def _registry(request: Request) -> StreamRegistry:
    registry: StreamRegistry = request.app.state.stream_registry
    return registry


def _check_name(name: str) -> None:
    if not kinesis.STREAM_NAME_RE.match(name) or not is_valid_topic_name(name):
        raise StreamError(
            "ValidationException",
            f"1 validation error detected: Value '{name}' at 'streamName' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ "
            "(1 to 128 characters, not '.' or '..')",
        )


async def _body(request: Request, model: type[BaseModel], limit: int) -> Any:
    raw = await read_json(
        request,
        limit,
        too_large=lambda m: StreamError("ValidationException", m, 413),
        malformed=lambda m: StreamError("SerializationException", m),
    )
    try:
        return model.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        raise _validation(exc) from exc


async def _shards(gateway: KafkaGateway, registry: StreamRegistry, name: str) -> list[int]:
    _check_name(name)
    try:
        partitions = await gateway.partitions(name)
    except BrokerUnavailable as exc:
        raise _unavailable(exc) from exc
    if partitions is None or not _is_stream(registry, name):
        raise stream_not_found(name)
    return partitions


def _is_stream(registry: StreamRegistry, name: str) -> bool:
    """Streams are the topics made by CreateStream and the ``streaming-…`` topics; the API
    never reaches other topics (clean topics, the DLQ, changelogs, Kafka's own)."""
    if is_internal_topic(name):
        return False
    return name.startswith(STREAM_PREFIX) or name in registry.created


def _data_bytes(data: Any) -> bytes:
    """A JSON object or array is stored as its JSON text; a string is base64 (as Kinesis)."""
    if isinstance(data, dict | list):
        try:
            encoded = json_bytes(data)
        except TooDeep as exc:
            raise _invalid(f"Data: {exc}") from exc
    elif isinstance(data, str):
        try:
            encoded = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII text
            raise _invalid("Data must be a JSON object or a base64-encoded string") from exc
    else:
        raise _invalid("Data must be a JSON object or a base64-encoded string")
    too_large = over_record_limit(len(encoded))
    if too_large:
        raise _invalid(f"Data: {too_large}")
    return encoded


def _target_shard(partition_key: str | None, explicit: str | None, shard_count: int) -> int:
    if not partition_key or len(partition_key) > kinesis.MAX_PARTITION_KEY_LENGTH:
        raise _invalid("PartitionKey must be 1 to 256 characters")
    if explicit is not None:
        if not _DECIMAL.match(explicit) or int(explicit) > kinesis.MAX_HASH_KEY:
            raise _invalid("ExplicitHashKey must be a decimal integer in [0, 2^128)")
        key = int(explicit)
    else:
        key = kinesis.hash_key(partition_key)
    return kinesis.shard_for_hash_key(key, shard_count)


@router.get("/streams", response_model=ListStreamsResponse, responses=_ERRORS)
async def list_streams(
    request: Request,
    limit: int = Query(100, alias="Limit", ge=1, le=10_000),
    exclusive_start: str | None = Query(None, alias="ExclusiveStartStreamName"),
) -> Response:
    """ListStreams: topics created as streams and every ``streaming-…`` topic, by name."""
    gateway, registry = gateway_of(request), _registry(request)
    try:
        topics = await gateway.topics()
    except BrokerUnavailable as exc:
        raise _unavailable(exc) from exc
    names = sorted(t for t in topics if _is_stream(registry, t))
    if exclusive_start is not None:
        names = [n for n in names if n > exclusive_start]
    page = names[:limit]
    summaries = [
        {
            "StreamName": n,
            "StreamARN": kinesis.stream_arn(n, gateway.settings.s3_region),
            "StreamStatus": "ACTIVE",
            "StreamModeDetails": {"StreamMode": "PROVISIONED"},
            "StreamCreationTimestamp": registry.created.get(n),
        }
        for n in page
    ]
    return _json(
        ListStreamsResponse.model_validate(
            {
                "StreamNames": page,
                "HasMoreStreams": len(names) > limit,
                "StreamSummaries": summaries,
            }
        )
    )


@router.post(
    "/streams/{name}",
    response_model=dict[str, str],
    responses=_ERRORS,
    openapi_extra=request_body(CreateStreamRequest, "application/json", STREAMS_MEDIA_TYPE),
)
async def create_stream(name: StreamName, request: Request) -> Response:
    """CreateStream: a topic with ``ShardCount`` partitions (default PINPIPE_TOPIC_PARTITIONS),
    at most PINPIPE_INGEST_MAX_SHARDS, while fewer than PINPIPE_INGEST_MAX_STREAMS streams exist
    (the pipeline's own raw topics not counted). Names of pinpipe's internal topics (and any
    that fold onto one: Kafka takes ``.`` and ``_`` as the same) are refused."""
    _check_name(name)
    if is_internal_topic(name):
        raise _invalid(f"Stream name {name} is reserved for pinpipe's internal topics")
    gateway, registry = gateway_of(request), _registry(request)
    settings = gateway.settings
    body: CreateStreamRequest = await _body(request, CreateStreamRequest, 64 * 1024)
    shards = body.ShardCount or settings.topic_partitions
    if shards > settings.ingest_max_shards:
        raise StreamError("LimitExceededException", f"ShardCount over {settings.ingest_max_shards}")
    made = registry.created.keys() - raw_topics(settings.topic_prefix)  # declared: not counted
    if len(made) >= settings.ingest_max_streams:
        raise StreamError(
            "LimitExceededException",
            f"{len(made)} streams exist, the limit (PINPIPE_INGEST_MAX_STREAMS)",
        )
    try:
        await gateway.create_topic(name, shards)
    except TopicAlreadyExistsError as exc:
        raise StreamError(
            "ResourceInUseException", f"Stream {name} under account 000000000000 already exists."
        ) from exc
    except BrokerUnavailable as exc:
        raise _unavailable(exc) from exc
    except KafkaError as exc:  # e.g. a name that collides with another once '.' is '_'
        raise _invalid(f"Kafka refused the stream: {exc}") from exc
    await registry.record_created(name)
    return Response(b"{}", media_type=STREAMS_MEDIA_TYPE)


@router.get("/streams/{name}", response_model=DescribeStreamResponse, responses=_ERRORS)
async def describe_stream(name: StreamName, request: Request) -> Response:
    """DescribeStream: shards with their hash key and sequence number ranges."""
    gateway = gateway_of(request)
    partitions = await _shards(gateway, _registry(request), name)
    try:
        configs = await gateway.topic_config(name)
        first = await gateway.beginning_offsets(name, partitions)
    except BrokerUnavailable as exc:
        raise _unavailable(exc) from exc
    retention_ms = int(configs.get("retention.ms") or 604_800_000)
    ranges = kinesis.hash_key_ranges(len(partitions))
    shards = [
        {
            "ShardId": kinesis.shard_id(p),
            "HashKeyRange": {
                "StartingHashKey": str(ranges[i].start),
                "EndingHashKey": str(ranges[i].end),
            },
            "SequenceNumberRange": {"StartingSequenceNumber": kinesis.sequence_number(p, first[p])},
        }
        for i, p in enumerate(partitions)
    ]
    description = {
        "StreamName": name,
        "StreamARN": kinesis.stream_arn(name, gateway.settings.s3_region),
        "StreamStatus": "ACTIVE",
        "StreamModeDetails": {"StreamMode": "PROVISIONED"},
        "Shards": shards,
        "HasMoreShards": False,
        "RetentionPeriodHours": retention_ms // 3_600_000 if retention_ms >= 0 else 8760,
        "StreamCreationTimestamp": await _registry(request).creation_time(name),
        "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
        "EncryptionType": "NONE",
    }
    return _json(DescribeStreamResponse.model_validate({"StreamDescription": description}))


@router.delete("/streams/{name}", response_model=dict[str, str], responses=_ERRORS)
async def delete_stream(name: StreamName, request: Request) -> Response:
    """DeleteStream: deletes the topic and its records. The pipeline's own raw topics
    (``streaming-<prefix>-pin|geo|user``) are never deleted: the cleaner may not have read all
    of their acknowledged records."""
    gateway = gateway_of(request)
    await _shards(gateway, _registry(request), name)
    if name in raw_topics(gateway.settings.topic_prefix):
        raise StreamError(
            "ResourceInUseException",
            f"Stream {name} is one of the pipeline's raw topics; it is not deleted",
        )
    try:
        await gateway.delete_topic(name)
    except BrokerUnavailable as exc:
        raise _unavailable(exc) from exc
    await _registry(request).record_deleted(name)
    return Response(b"{}", media_type=STREAMS_MEDIA_TYPE)


async def _put(
    gateway: KafkaGateway, name: str, entries: list[OutgoingRecord]
) -> list[dict[str, str]]:
    results = await gateway.send_all(name, entries)
    out: list[dict[str, str]] = []
    for result in results:
        if isinstance(result, BaseException):
            out.append({"ErrorCode": "InternalFailure", "ErrorMessage": f"not written: {result!r}"})
        else:
            out.append(
                {
                    "SequenceNumber": kinesis.sequence_number(result.partition, result.offset),
                    "ShardId": kinesis.shard_id(result.partition),
                }
            )
    count_records(gateway, name, len(out), sum(1 for r in out if "ErrorCode" in r))
    return out


@router.put(
    "/streams/{name}/record",
    response_model=PutRecordResponse,
    responses=_ERRORS,
    openapi_extra=request_body(PutRecordRequest, "application/json", STREAMS_MEDIA_TYPE),
)
async def put_record(name: StreamName, request: Request) -> Response:
    """PutRecord: the partition key's MD5 (or ``ExplicitHashKey``) picks the shard."""
    gateway = gateway_of(request)
    body: PutRecordRequest = await _body(request, PutRecordRequest, kinesis.MAX_RECORD_BYTES * 2)
    shards = await _shards(gateway, _registry(request), name)
    entry = OutgoingRecord(
        value=_data_bytes(body.Data),
        key=body.PartitionKey.encode(),
        partition=_target_shard(body.PartitionKey, body.ExplicitHashKey, len(shards)),
    )
    result = (await _put(gateway, name, [entry]))[0]
    if "ErrorCode" in result:
        raise _unavailable(Exception(result["ErrorMessage"]))
    return _json(PutRecordResponse.model_validate(result))


@router.put(
    "/streams/{name}/records",
    response_model=PutRecordsResponse,
    responses=_ERRORS,
    openapi_extra=request_body(PutRecordsRequest, "application/json", STREAMS_MEDIA_TYPE),
)
async def put_records(name: StreamName, request: Request) -> Response:
    """PutRecords: Kinesis' ``{"Records": [{"Data", "PartitionKey"}]}`` or the API Gateway
    template's ``{"records": [{"data", "partition-key"}]}``; at most 500 records and 5 MiB.
    Results come in request order; a failed record has ``ErrorCode`` and ``ErrorMessage``."""
    gateway = gateway_of(request)
    raw = await read_json(
        request,
        kinesis.MAX_PUT_RECORDS_BYTES + 64 * 1024,
        too_large=lambda m: StreamError("ValidationException", m, 413),
        malformed=lambda m: StreamError("SerializationException", m),
    )
    items = raw.get("Records", raw.get("records")) if isinstance(raw, dict) else None
    if not isinstance(items, list) or not items:
        raise StreamError("ValidationException", "Records must be a list of 1 to 500 records")
    if len(items) > kinesis.MAX_RECORDS_PER_PUT:
        raise StreamError(
            "ValidationException", f"Records has more than {kinesis.MAX_RECORDS_PER_PUT} records"
        )
    shards = await _shards(gateway, _registry(request), name)
    entries: list[OutgoingRecord] = []
    for item in items:
        try:
            record = PutRecordsEntry.model_validate(item)
        except ValidationError as exc:
            raise _validation(exc) from exc
        entries.append(
            OutgoingRecord(
                value=_data_bytes(record.Data),
                key=(record.PartitionKey or "").encode(),
                partition=_target_shard(record.PartitionKey, record.ExplicitHashKey, len(shards)),
            )
        )
    if (
        sum(len(e.value or b"") + len(e.key or b"") for e in entries)
        > kinesis.MAX_PUT_RECORDS_BYTES
    ):
        raise StreamError("ValidationException", "Records are over 5 MiB in all", 413)
    results = await _put(gateway, name, entries)
    failed = sum(1 for r in results if "ErrorCode" in r)
    return _json(
        PutRecordsResponse.model_validate({"FailedRecordCount": failed, "Records": results})
    )
