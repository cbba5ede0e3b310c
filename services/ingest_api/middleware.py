"""Request metrics as a plain ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware):
requests by route template and status, latency, body bytes."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.ingest_api.metrics import BODY_BYTES, REQUEST_SECONDS, REQUESTS


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            return message

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, counting_receive, recording_send)
        finally:
            route = _route_template(scope)
            REQUESTS.labels(route=route, status=str(status)).inc()
            REQUEST_SECONDS.labels(route=route).observe(time.perf_counter() - started)
            if received:
                BODY_BYTES.labels(route=route).inc(received)


def _route_template(scope: Scope) -> str:
    """The matched route's path template (low cardinality), or "unmatched"."""
    route = scope.get("route")
    return getattr(route, "path", "unmatched")
