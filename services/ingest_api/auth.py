"""API keys in ``x-api-key``, as API Gateway checks them, in two roles.

- Producers' keys (``PINPIPE_INGEST_API_KEYS``) open the data routes: producing, listing and
  describing topics and streams.
- Admin keys (``PINPIPE_INGEST_ADMIN_API_KEYS``, never the same as a producer's) open those and
  the administrative routes, CreateStream and DeleteStream. With keys configured but no admin
  key, nobody may create or delete a stream.

With no key configured at all every route is open (``make up`` on 127.0.0.1, which says so at
start-up). Otherwise a request without a key good for its route answers 403
``{"message": "Forbidden"}``; ``/healthz``, ``/readyz``, ``/metrics`` and the docs stay open.
A plain ASGI middleware: it runs before FastAPI's routing, so a refused request costs little
and an accepted one pays no dependency resolution.
"""

from __future__ import annotations

import hmac
import re

from starlette.types import ASGIApp, Receive, Scope, Send

from services.ingest_api.metrics import REJECTED
from shared import probes

OPEN_PATHS = frozenset({*probes.PATHS, "/docs", "/redoc", "/openapi.json"})
_ADMIN_PATH = re.compile(r"^/streams/[^/]+/?$")
_ADMIN_METHODS = frozenset({"POST", "DELETE"})  # CreateStream, DeleteStream
_FORBIDDEN = b'{"message":"Forbidden"}'


def is_admin_route(method: str, path: str) -> bool:
    return method in _ADMIN_METHODS and _ADMIN_PATH.match(path) is not None


class ApiKeyGuard:
    def __init__(self, app: ASGIApp, keys: frozenset[str], admin_keys: frozenset[str]) -> None:
        self.app = app
        self.admin_keys = tuple(key.encode() for key in admin_keys)
        self.keys = tuple(key.encode() for key in keys) + self.admin_keys
        self.open = not self.keys

    def _refusal(self, scope: Scope) -> str | None:
        """Why the request may not pass (the metric's reason), or None."""
        if self.open or scope["path"] in OPEN_PATHS:
            return None
        given = next((v for k, v in scope["headers"] if k == b"x-api-key"), b"")
        if is_admin_route(scope["method"], scope["path"]):
            return None if _matches(given, self.admin_keys) else "forbidden_admin"
        return None if _matches(given, self.keys) else "forbidden"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reason = self._refusal(scope) if scope["type"] == "http" else None
        if reason is None:
            await self.app(scope, receive, send)
            return
        REJECTED.labels(reason=reason).inc()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"23")]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": _FORBIDDEN})


def _matches(given: bytes, keys: tuple[bytes, ...]) -> bool:
    # every key compared, in constant time each: the time says nothing about which matched
    return sum(hmac.compare_digest(given, key) for key in keys) > 0
