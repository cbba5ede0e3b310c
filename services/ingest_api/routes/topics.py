"""The Kafka REST Proxy v2 topics API: ``POST /topics/{topic}``, ``GET /topics[/{topic}]``.

Content types: ``application/vnd.kafka.json.v2+json`` and ``application/json`` (JSON keys and
values, produced as their JSON text) and ``application/vnd.kafka.binary.v2+json`` (base64 keys
and values, produced decoded). The schema formats (avro, jsonschema, protobuf) need a schema
registry pinpipe does not have: without their schema fields they get the proxy's 42201/42202,
with them 415.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import orjson
from aiokafka.structs import RecordMetadata
from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from services.ingest_api.errors import (
    BROKER_UNAVAILABLE,
    KEY_SCHEMA_MISSING,
    PARTITION_NOT_FOUND,
    PAYLOAD_TOO_LARGE,
    PROXY_MEDIA_TYPE,
    RECORD_ERROR,
    RECORD_RETRIABLE_ERROR,
    RETRY_AFTER_SECONDS,
    TOPIC_NOT_ALLOWED,
    TOPIC_NOT_FOUND,
    UNPROCESSABLE,
    UNSUPPORTED_MEDIA_TYPE,
    VALUE_SCHEMA_MISSING,
    ProxyError,
    ProxyJSONResponse,
)
from services.ingest_api.openapi import proxy_errors, request_body
from services.ingest_api.producer import (
    PRODUCER_STATE_LOST,
    BrokerUnavailable,
    KafkaGateway,
    OutgoingRecord,
)
from services.ingest_api.routes.common import (
    TooDeep,
    count_records,
    gateway_of,
    json_bytes,
    over_record_limit,
    read_json,
)
from shared.api_models import ProduceOffset, ProduceRequest, ProduceResponse, TopicInfo
from shared.topics import is_internal_topic, is_valid_topic_name

JSON_TYPES = frozenset({"application/vnd.kafka.json.v2+json", "application/json"})
BINARY_TYPE = "application/vnd.kafka.binary.v2+json"
SCHEMA_TYPES = frozenset(
    f"application/vnd.kafka.{fmt}.v2+json" for fmt in ("avro", "jsonschema", "protobuf")
)
router = APIRouter(
    tags=["topics (Kafka REST Proxy v2)"],
    default_response_class=ProxyJSONResponse,
)


def broker_unavailable(detail: str) -> ProxyError:
    return ProxyError(
        503,
        BROKER_UNAVAILABLE,
        f"Kafka unavailable: {detail}",
        "broker_unavailable",
        RETRY_AFTER_SECONDS,
    )


def _unprocessable(message: str, code: int = UNPROCESSABLE) -> ProxyError:
    return ProxyError(422, code, message, "bad_body")


def _encode(value: Any, binary: bool, what: str, index: int) -> bytes | None:
    if value is None:
        return None
    if not binary:
        try:
            encoded = json_bytes(value)
        except TooDeep as exc:
            raise _unprocessable(f"records[{index}].{what}: {exc}") from exc
    elif not isinstance(value, str):
        raise _unprocessable(f"records[{index}]: binary {what} must be a base64 string")
    else:
        try:
            encoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII text
            raise _unprocessable(f"records[{index}]: {what} is not valid base64") from exc
    too_large = over_record_limit(len(encoded))
    if too_large:
        raise ProxyError(413, PAYLOAD_TOO_LARGE, f"records[{index}]: {too_large}", "too_large")
    return encoded


def _refuse_internal(topic: str) -> None:
    if is_internal_topic(topic) or not is_valid_topic_name(topic):
        raise ProxyError(
            403,
            TOPIC_NOT_ALLOWED,
            f"Topic {topic!r} is internal to pinpipe (or not a valid topic name)",
            "topic_not_allowed",
        )


async def _parse(request: Request, media_type: str) -> ProduceRequest:
    settings = gateway_of(request).settings
    raw = await read_json(
        request,
        settings.ingest_max_body_bytes,
        too_large=lambda m: ProxyError(413, PAYLOAD_TOO_LARGE, m, "too_large"),
        malformed=lambda m: ProxyError(422, UNPROCESSABLE, m, "bad_json"),
    )
    try:
        body = ProduceRequest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise _unprocessable(f"Invalid body at {where}: {first['msg']}") from exc
    if len(body.records) > settings.ingest_max_records:
        raise ProxyError(
            413,
            PAYLOAD_TOO_LARGE,
            f"More than {settings.ingest_max_records} records",
            "too_many_records",
        )
    if media_type in SCHEMA_TYPES:
        if (
            any(r.key is not None for r in body.records)
            and body.key_schema is None
            and body.key_schema_id is None
        ):
            raise _unprocessable(
                "Request includes keys but no key_schema or key_schema_id", KEY_SCHEMA_MISSING
            )
        if body.value_schema is None and body.value_schema_id is None:
            raise _unprocessable(
                "Request includes values but no value_schema or value_schema_id",
                VALUE_SCHEMA_MISSING,
            )
        raise ProxyError(
            415,
            UNSUPPORTED_MEDIA_TYPE,
            f"{media_type} needs a schema registry, which pinpipe has not",
            "media_type",
        )
    return body


@router.post(
    "/topics/{topic}",
    response_model=ProduceResponse,
    responses=proxy_errors(403, 404, 413, 415, 422, 503),
    openapi_extra=request_body(ProduceRequest, *sorted(JSON_TYPES | {BINARY_TYPE})),
)
async def produce(topic: str, request: Request) -> Response:
    """Produce records to a topic. HTTP 200 even when single records fail: each has its
    ``error_code`` (50002, or 50003 when retrying may help). A record is reported written only
    after Kafka acknowledged it (acks=all)."""
    media_type = _media_type(request)
    gateway = gateway_of(request)
    _check_topic(gateway, topic)
    body = await _parse(request, media_type)
    try:
        partitions = await gateway.partitions(topic)
    except BrokerUnavailable as exc:
        raise broker_unavailable(str(exc)) from exc
    if partitions is None:
        raise ProxyError(404, TOPIC_NOT_FOUND, "Topic not found.", "unknown_topic")
    records = _outgoing(body, media_type == BINARY_TYPE, partitions)
    offsets = [_offset(result) for result in await gateway.send_all(topic, records)]
    count_records(gateway, topic, len(offsets), sum(1 for o in offsets if o.error_code))
    if offsets and all(o.error_code == RECORD_RETRIABLE_ERROR for o in offsets):
        raise broker_unavailable("no record could be written")
    response = ProduceResponse(offsets=offsets)
    return Response(response.model_dump_json(), media_type=PROXY_MEDIA_TYPE)


def _media_type(request: Request) -> str:
    """The request's content type, one the topics API takes (else 415)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in JSON_TYPES or media_type == BINARY_TYPE or media_type in SCHEMA_TYPES:
        return media_type
    raise ProxyError(
        415, UNSUPPORTED_MEDIA_TYPE, f"Unsupported content type {media_type!r}", "media_type"
    )


def _check_topic(gateway: KafkaGateway, topic: str) -> None:
    """403 unless producers may write to ``topic``: not internal, and matching
    PINPIPE_INGEST_TOPIC_PATTERN."""
    _refuse_internal(topic)
    if not re.search(gateway.settings.ingest_topic_pattern, topic):
        raise ProxyError(
            403, TOPIC_NOT_ALLOWED, f"Topic {topic!r} is not open to producers", "topic_not_allowed"
        )


def _outgoing(body: ProduceRequest, binary: bool, partitions: list[int]) -> list[OutgoingRecord]:
    """The body's records as bytes to produce; 404 for a partition the topic has not."""
    records = []
    for index, record in enumerate(body.records):
        if record.partition is not None and record.partition not in partitions:
            raise ProxyError(404, PARTITION_NOT_FOUND, "Partition not found.", "unknown_partition")
        records.append(
            OutgoingRecord(
                value=_encode(record.value, binary, "value", index),
                key=_encode(record.key, binary, "key", index),
                partition=record.partition,
            )
        )
    return records


def _offset(result: RecordMetadata | BaseException) -> ProduceOffset:
    """One record's outcome as the proxy reports it."""
    if isinstance(result, BaseException):
        retriable = isinstance(result, (BrokerUnavailable, *PRODUCER_STATE_LOST)) or bool(
            getattr(result, "retriable", False)
        )
        return ProduceOffset(
            partition=None,
            offset=None,
            error_code=RECORD_RETRIABLE_ERROR if retriable else RECORD_ERROR,
            error=repr(result),
        )
    return ProduceOffset(
        partition=result.partition, offset=result.offset, error_code=None, error=None
    )


@router.get("/topics", response_model=list[str], responses=proxy_errors(503))
async def list_topics(request: Request) -> Response:
    """Every topic's name, pinpipe's internal topics left out."""
    try:
        topics = await gateway_of(request).topics()
    except BrokerUnavailable as exc:
        raise broker_unavailable(str(exc)) from exc
    names = [t for t in topics if not is_internal_topic(t)]
    return Response(orjson.dumps(names), media_type=PROXY_MEDIA_TYPE)


@router.get("/topics/{topic}", response_model=TopicInfo, responses=proxy_errors(403, 404, 503))
async def describe_topic(topic: str, request: Request) -> Response:
    """A topic's partitions and configuration (not of pinpipe's internal topics: 403)."""
    _refuse_internal(topic)
    gateway = gateway_of(request)
    try:
        partitions = await gateway.partitions(topic)
        if partitions is None:
            raise ProxyError(404, TOPIC_NOT_FOUND, "Topic not found.", "unknown_topic")
        configs = await gateway.topic_config(topic)
    except BrokerUnavailable as exc:
        raise broker_unavailable(str(exc)) from exc
    payload = {
        "name": topic,
        "configs": {k: v for k, v in configs.items() if v is not None},
        "partitions": [
            {
                "partition": p,
                "leader": 1,
                "replicas": [{"broker": 1, "leader": True, "in_sync": True}],
            }
            for p in partitions
        ],
    }
    return Response(orjson.dumps(payload), media_type=PROXY_MEDIA_TYPE)
