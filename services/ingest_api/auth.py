"""Optional API keys in ``x-api-key``, as API Gateway checks them. With keys configured, a data
route without a valid key answers 403 ``{"message": "Forbidden"}``; service routes stay open."""

from __future__ import annotations

import hmac

from fastapi import Request

from services.ingest_api.errors import forbidden


async def require_api_key(request: Request) -> None:
    keys: frozenset[str] = request.app.state.api_keys
    if not keys:
        return
    given = request.headers.get("x-api-key", "")
    if not any(hmac.compare_digest(given, key) for key in keys):
        raise forbidden()
