"""HTTP routes of the REST Proxy v2 topics API (``/topics``) and the service endpoints."""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from services.ingest_api.errors import (
    PARTITION_NOT_FOUND,
    PAYLOAD_TOO_LARGE,
    RECORD_ERROR,
    RECORD_RETRIABLE_ERROR,
    TOPIC_NOT_FOUND,
    UNPROCESSABLE,
    UNSUPPORTED_MEDIA_TYPE,
    ApiError,
)
from services.ingest_api.metrics import METRICS, RECORDS, REQUEST_SECONDS, REQUESTS
from services.ingest_api.producer import BROKER_DOWN_ERRORS, KafkaGateway, broker_unavailable
from shared.metrics import CONTENT_TYPE
from shared.models import ProduceRequest

router = APIRouter()
V2_MEDIA_TYPE = "application/vnd.kafka.v2+json"
JSON_TYPES = {"application/vnd.kafka.json.v2+json", "application/json"}
BINARY_TYPE = "application/vnd.kafka.binary.v2+json"


def _gateway(request: Request) -> KafkaGateway:
    gateway: KafkaGateway = request.app.state.gateway
    return gateway


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _encode(value: Any, binary: bool, what: str) -> bytes | None:
    if value is None:
        return None
    if not binary:
        return orjson.dumps(value)
    if not isinstance(value, str):
        raise ApiError(422, UNPROCESSABLE, f"binary {what} must be a base64 string", "bad_body")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ApiError(422, UNPROCESSABLE, f"{what} is not valid base64", "bad_body") from exc


async def _read_body(request: Request, limit: int) -> ProduceRequest:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, PAYLOAD_TOO_LARGE, f"Request body over {limit} bytes", "too_large")
    body = await request.body()
    if len(body) > limit:
        raise ApiError(413, PAYLOAD_TOO_LARGE, f"Request body over {limit} bytes", "too_large")
    try:
        return ProduceRequest.model_validate(orjson.loads(body))
    except orjson.JSONDecodeError as exc:
        raise ApiError(422, UNPROCESSABLE, f"Malformed JSON: {exc}", "bad_json") from exc
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ApiError(
            422, UNPROCESSABLE, f"Invalid body at {where}: {first['msg']}", "bad_body"
        ) from exc


@router.post("/topics/{topic}")
async def produce(topic: str, request: Request) -> Response:
    """Produce records to a topic: REST Proxy v2 request and response shapes."""
    started = time.perf_counter()
    media_type = _media_type(request)
    if media_type not in JSON_TYPES and media_type != BINARY_TYPE:
        raise ApiError(
            415, UNSUPPORTED_MEDIA_TYPE, f"Unsupported content type {media_type!r}", "media_type"
        )
    gateway = _gateway(request)
    body = await _read_body(request, gateway.settings.ingest_max_body_bytes)
    partitions = await gateway.partitions(topic)
    if partitions is None:
        raise ApiError(404, TOPIC_NOT_FOUND, "Topic not found.", "unknown_topic")
    binary = media_type == BINARY_TYPE
    encoded = []
    for record in body.records:
        if record.partition is not None and record.partition not in partitions:
            raise ApiError(404, PARTITION_NOT_FOUND, "Partition not found.", "unknown_partition")
        encoded.append(
            (
                _encode(record.value, binary, "value"),
                _encode(record.key, binary, "key"),
                record.partition,
            )
        )
    try:
        futures = [await gateway.send(topic, v, k, p) for v, k, p in encoded]
    except BROKER_DOWN_ERRORS as exc:
        raise broker_unavailable(repr(exc)) from exc
    results = await asyncio.gather(*futures, return_exceptions=True)
    offsets = []
    for result in results:
        if isinstance(result, BaseException):
            retriable = bool(getattr(result, "retriable", False)) or isinstance(
                result, BROKER_DOWN_ERRORS
            )
            code = RECORD_RETRIABLE_ERROR if retriable else RECORD_ERROR
            offsets.append(
                {"partition": None, "offset": None, "error_code": code, "error": repr(result)}
            )
            RECORDS.labels(topic=topic, status="error").inc()
        else:
            offsets.append(
                {
                    "partition": result.partition,
                    "offset": result.offset,
                    "error_code": None,
                    "error": None,
                }
            )
            RECORDS.labels(topic=topic, status="ok").inc()
    REQUEST_SECONDS.labels(route="/topics/{topic}").observe(time.perf_counter() - started)
    REQUESTS.labels(route="/topics/{topic}", status="200").inc()
    payload = {"offsets": offsets, "key_schema_id": None, "value_schema_id": None}
    return Response(orjson.dumps(payload), media_type=V2_MEDIA_TYPE)


@router.get("/topics")
async def list_topics(request: Request) -> Response:
    return Response(orjson.dumps(await _gateway(request).topics()), media_type=V2_MEDIA_TYPE)


@router.get("/topics/{topic}")
async def describe_topic(topic: str, request: Request) -> Response:
    partitions = await _gateway(request).partitions(topic)
    if partitions is None:
        raise ApiError(404, TOPIC_NOT_FOUND, "Topic not found.", "unknown_topic")
    payload = {
        "name": topic,
        "configs": {},
        "partitions": [
            {
                "partition": p,
                "leader": 1,
                "replicas": [{"broker": 1, "leader": True, "in_sync": True}],
            }
            for p in partitions
        ],
    }
    return Response(orjson.dumps(payload), media_type=V2_MEDIA_TYPE)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request, response: Response) -> dict[str, str]:
    gateway = _gateway(request)
    try:
        if not gateway.started:
            raise broker_unavailable("producer not started")
        await gateway.refresh_metadata()
    except ApiError as exc:
        response.status_code = 503
        return {"status": "not ready", "detail": exc.message}
    return {"status": "ready"}


@router.get("/metrics")
async def metrics() -> Response:
    return Response(METRICS.render(), media_type=CONTENT_TYPE)
