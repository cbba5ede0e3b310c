"""A cap on what the ingest API holds at once: requests in flight and their body bytes.

A request past either cap is answered at once with 503 and ``Retry-After``, in the format of
the API it was sent to, before any of its body is read: a burst of large bodies costs memory
only up to ``PINPIPE_INGEST_MAX_INFLIGHT_BYTES`` (each parsed body takes several times its size
as Python objects), however many clients send one. A body's size is its ``Content-Length``; a
body without one (chunked) counts as the largest allowed. Records still buffered in the Kafka
producer (``backlog``: a slow broker, a request that timed out) count too: while the broker
lags, new bodies wait outside rather than pile up inside. The health, readiness and metrics
routes are never shed: a busy replica must not look dead.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from services.ingest_api.auth import OPEN_PATHS
from services.ingest_api.errors import (
    OVERLOADED,
    PROXY_MEDIA_TYPE,
    RETRY_AFTER_SECONDS,
    STREAMS_MEDIA_TYPE,
)
from services.ingest_api.metrics import INFLIGHT_BYTES, INFLIGHT_REQUESTS, REJECTED

_MESSAGE = "The ingest API is at its limit of requests in flight; retry after a moment"


class InflightLimit:
    def __init__(
        self,
        app: ASGIApp,
        max_requests: int,
        max_bytes: int,
        max_body_bytes: int,
        backlog: Callable[[], int],
    ) -> None:
        self.app = app
        self.backlog = backlog
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.max_body_bytes = max_body_bytes
        self.requests = 0
        self.bytes = 0

    def _size(self, scope: Scope) -> int:
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is None:
            return self.max_body_bytes if scope["method"] in ("POST", "PUT") else 0
        # an impossible length counts as the largest body: the route refuses it (413) anyway
        return int(declared) if declared.isdigit() and len(declared) < 16 else self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        size = min(self._size(scope), self.max_body_bytes)
        if self.requests >= self.max_requests or (
            self.bytes + self.backlog() + size > self.max_bytes and self.requests > 0
        ):
            REJECTED.labels(reason="overloaded").inc()
            await _refuse(scope, send)
            return
        self.requests += 1
        self.bytes += size
        INFLIGHT_REQUESTS.set(self.requests)
        INFLIGHT_BYTES.set(self.bytes)
        try:
            await self.app(scope, receive, send)
        finally:
            self.requests -= 1
            self.bytes -= size
            INFLIGHT_REQUESTS.set(self.requests)
            INFLIGHT_BYTES.set(self.bytes)


async def _refuse(scope: Scope, send: Send) -> None:
    if scope["path"].startswith("/streams"):
        body = f'{{"__type":"ServiceUnavailable","message":"{_MESSAGE}"}}'.encode()
        media_type = STREAMS_MEDIA_TYPE
    else:
        body = f'{{"error_code":{OVERLOADED},"message":"{_MESSAGE}"}}'.encode()
        media_type = PROXY_MEDIA_TYPE
    headers = [
        (b"content-type", media_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
