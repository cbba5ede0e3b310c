"""The ingest API's errors, in the REST proxy's own format ``{"error_code", "message"}``.

Permanent errors (bad input, unknown topic) are 4xx; transient ones (broker unavailable) are
503 with ``Retry-After`` so clients retry.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from services.ingest_api.metrics import REJECTED

TOPIC_NOT_FOUND = 40401
PARTITION_NOT_FOUND = 40402
UNPROCESSABLE = 422
UNSUPPORTED_MEDIA_TYPE = 415
PAYLOAD_TOO_LARGE = 413
BROKER_UNAVAILABLE = 50302
RECORD_ERROR = 50002
RECORD_RETRIABLE_ERROR = 50003


class ApiError(Exception):
    """An error answered as ``{"error_code", "message"}`` with ``http_status``."""

    def __init__(
        self, http_status: int, error_code: int, message: str, reason: str, retry_after: int = 0
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error_code = error_code
        self.message = message
        self.reason = reason
        self.retry_after = retry_after


async def api_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    REJECTED.labels(reason=exc.reason).inc()
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return JSONResponse(
        {"error_code": exc.error_code, "message": exc.message},
        status_code=exc.http_status,
        headers=headers,
        media_type="application/vnd.kafka.v2+json",
    )
