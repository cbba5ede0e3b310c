"""What the topics and streams routes share: reading a bounded JSON body, the gateway."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import Request

from services.ingest_api.errors import IngestError
from services.ingest_api.producer import KafkaGateway


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
