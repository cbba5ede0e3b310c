"""The ingest API's errors, each in the format of the API it belongs to.

- Topics API (Kafka REST Proxy v2): ``{"error_code", "message"}`` (:class:`ProxyError`).
- Streams API (Kinesis through API Gateway): ``{"__type", "message"}`` (:class:`StreamError`).
- A missing or wrong API key, as API Gateway says it: 403 ``{"message": "Forbidden"}``.

Permanent errors (bad input, unknown topic or stream) are 4xx; transient ones (broker
unavailable) are 503 with ``Retry-After`` so clients retry. Every error counts in
``pinpipe_ingest_api_rejected_total{reason}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.ingest_api.metrics import REJECTED

PROXY_MEDIA_TYPE = "application/vnd.kafka.v2+json"
STREAMS_MEDIA_TYPE = "application/x-amz-json-1.1"

# REST proxy error codes
TOPIC_NOT_FOUND = 40401
PARTITION_NOT_FOUND = 40402
TOPIC_NOT_ALLOWED = 40301
KEY_SCHEMA_MISSING = 42201
VALUE_SCHEMA_MISSING = 42202
UNPROCESSABLE = 422
UNSUPPORTED_MEDIA_TYPE = 415
PAYLOAD_TOO_LARGE = 413
BROKER_UNAVAILABLE = 50302
OVERLOADED = 50303  # requests or bytes in flight at their limit (load shedding)
RECORD_ERROR = 50002
RECORD_RETRIABLE_ERROR = 50003
RETRY_AFTER_SECONDS = 5


class ProxyJSONResponse(JSONResponse):
    media_type = PROXY_MEDIA_TYPE


class StreamsJSONResponse(JSONResponse):
    media_type = STREAMS_MEDIA_TYPE


class IngestError(Exception):
    """An error answered with ``http_status`` and :meth:`body`; ``reason`` labels the metric."""

    media_type = "application/json"

    def __init__(self, http_status: int, message: str, reason: str, retry_after: int = 0) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message
        self.reason = reason
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return {"message": self.message}


class ProxyError(IngestError):
    media_type = PROXY_MEDIA_TYPE

    def __init__(
        self, http_status: int, error_code: int, message: str, reason: str, retry_after: int = 0
    ) -> None:
        super().__init__(http_status, message, reason, retry_after)
        self.error_code = error_code

    def body(self) -> dict[str, Any]:
        return {"error_code": self.error_code, "message": self.message}


class StreamError(IngestError):
    """Kinesis' error types; Kinesis answers client errors with HTTP 400."""

    media_type = STREAMS_MEDIA_TYPE

    def __init__(
        self, type_name: str, message: str, http_status: int = 400, retry_after: int = 0
    ) -> None:
        super().__init__(http_status, message, type_name, retry_after)
        self.type_name = type_name

    def body(self) -> dict[str, Any]:
        return {"__type": self.type_name, "message": self.message}


def stream_not_found(name: str) -> StreamError:
    return StreamError(
        "ResourceNotFoundException", f"Stream {name} under account 000000000000 not found."
    )


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own parameter validation (a query parameter out of range …), answered in the
    format of the API the route belongs to."""
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"])
    message = f"1 validation error detected: {where}: {first['msg']}"
    error: IngestError
    if request.url.path.startswith("/streams"):
        error = StreamError("ValidationException", message)
    else:
        error = ProxyError(422, UNPROCESSABLE, message, "bad_request")
    return await ingest_error_handler(request, error)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors (no such route: 404, a method the route has not: 405) in the
    format of the API the path belongs to, as every other error."""
    assert isinstance(exc, StarletteHTTPException)
    error: IngestError
    if request.url.path.startswith("/streams"):
        error = StreamError("UnknownOperationException", str(exc.detail), exc.status_code)
    else:
        error = ProxyError(exc.status_code, exc.status_code * 100, str(exc.detail), "no_route")
    return await ingest_error_handler(request, error)


async def ingest_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IngestError)
    REJECTED.labels(reason=exc.reason).inc()
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return JSONResponse(
        exc.body(), status_code=exc.http_status, headers=headers, media_type=exc.media_type
    )
