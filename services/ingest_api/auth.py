"""Optional API keys in ``x-api-key``, as API Gateway checks them.

With keys configured, every data route without a valid key answers 403
``{"message": "Forbidden"}``; ``/healthz``, ``/readyz``, ``/metrics`` and the docs stay open.
A plain ASGI middleware: it runs before FastAPI's routing, so a refused request costs little
and an accepted one pays no dependency resolution.
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from services.ingest_api.metrics import REJECTED

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json"})
_FORBIDDEN = b'{"message":"Forbidden"}'


class ApiKeyGuard:
    def __init__(self, app: ASGIApp, keys: frozenset[str]) -> None:
        self.app = app
        self.keys = tuple(key.encode() for key in keys)

    def _allowed(self, scope: Scope) -> bool:
        if not self.keys or scope["path"] in OPEN_PATHS:
            return True
        given = next((v for k, v in scope["headers"] if k == b"x-api-key"), b"")
        return any(hmac.compare_digest(given, key) for key in self.keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        REJECTED.labels(reason="forbidden").inc()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"23")]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": _FORBIDDEN})
