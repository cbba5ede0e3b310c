"""What the topics and streams routes share: reading a bounded JSON body, writing a JSON value
within Kafka's limits, counting records by the metric label of a topic, the gateway."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import Request

from services.ingest_api.errors import IngestError
from services.ingest_api.metrics import RECORDS
from services.ingest_api.producer import KafkaGateway
from shared.topics import MAX_RECORD_VALUE_BYTES, raw_topics

# orjson writes at most 254 levels of nesting; a record is never that deep
MAX_JSON_DEPTH = 254


class TooDeep(ValueError):
    """A JSON value nested deeper than ``MAX_JSON_DEPTH`` levels."""


def json_bytes(value: Any) -> bytes:
    """A client's JSON value as JSON text; TooDeep when it is nested too deeply to write."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as exc:  # the only thing parsed JSON can fail on
        raise TooDeep(f"value is nested deeper than {MAX_JSON_DEPTH} levels") from exc


def over_record_limit(size: int) -> str | None:
    """Why a record value of ``size`` bytes cannot be written, or None when it can."""
    if size > MAX_RECORD_VALUE_BYTES:
        return f"record value of {size} bytes is over the limit of {MAX_RECORD_VALUE_BYTES}"
    return None


def topic_label(gateway: KafkaGateway, topic: str) -> str:
    """A bounded metric label: a raw topic's name, or "stream" for any stream a client made."""
    return topic if topic in raw_topics(gateway.settings.topic_prefix) else "stream"


def count_records(gateway: KafkaGateway, topic: str, sent: int, failed: int) -> None:
    """Count one request's ``sent`` records in ``pinpipe_ingest_api_records_total``: those
    written (``ok``) and the ``failed`` ones (``error``)."""
    label = topic_label(gateway, topic)
    RECORDS.labels(topic=label, status="ok").inc(sent - failed)
    if failed:
        RECORDS.labels(topic=label, status="error").inc(failed)


def gateway_of(request: Request) -> KafkaGateway:
    gateway: KafkaGateway = request.app.state.gateway
    return gateway


async def read_json(
    request: Request,
    limit: int,
    *,
    too_large: Callable[[str], IngestError],
    malformed: Callable[[str], IngestError],
) -> Any:
    """The request's JSON body; ``too_large`` past ``limit`` bytes, ``malformed`` when it is
    not JSON. The declared length is checked before anything is read."""
    declared = request.headers.get("content-length")
    message = f"Request body is over the limit of {limit} bytes"
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(message)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(message)
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise malformed(f"Malformed JSON: {exc}") from exc
