"""The emulator's HTTP side: one request with retries, and what it counts.

Transient failures (connection errors, 5xx, 429, and 200s whose records failed with a retriable
code) are retried with exponential backoff and full jitter, honouring ``Retry-After``. A
permanent 4xx is logged with its reason and counted as failed: the emulator goes on with the
next post instead of retrying forever.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.emulator.metrics import REQUESTS, RETRIES

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 10.0
FIRST_BACKOFF_SECONDS = 0.2


class ApiHealth:
    """Whether the ingest API took the emulator's last request (``None``: none sent yet):
    the emulator's ``/readyz`` (app.py)."""

    def __init__(self) -> None:
        self.reached: bool | None = None

    def record(self, reached: bool) -> None:
        self.reached = reached


API_HEALTH = ApiHealth()


@dataclass
class Tally:
    """What a run did, for the summary line and the progress line."""

    posted: int = 0
    retried: int = 0
    failed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def fail(self, reason: str) -> None:
        self.failed += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.replace(".", "", 1).isdigit() else None


def _records_failed(response: httpx.Response) -> bool:
    """A 200 whose REST-proxy offsets or PutRecords results report failed records."""
    try:
        body = response.json()
    except ValueError:
        return False
    if isinstance(body, dict) and isinstance(body.get("offsets"), list):
        return any(o.get("error_code") for o in body["offsets"])
    return bool(isinstance(body, dict) and body.get("FailedRecordCount"))


class IngestClient:
    def __init__(self, client: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
        self.client = client
        self.tally = tally
        self.rng = rng

    async def send(
        self, method: str, path: str, body: Any, *, label: str, headers: dict[str, str]
    ) -> bool:
        """Send until it succeeds (True) or fails for good (False, counted)."""
        backoff = FIRST_BACKOFF_SECONDS
        while True:
            wait: float | None = None
            try:
                response = await self.client.request(method, path, json=body, headers=headers)
                REQUESTS.labels(topic=label, status=str(response.status_code)).inc()
                API_HEALTH.record(response.status_code < 500)
                if response.status_code == 200 and not _records_failed(response):
                    return True
                if response.status_code == 200:
                    reason = "record_error"
                elif 400 <= response.status_code < 500 and response.status_code != 429:
                    log.error(
                        "post refused for good",
                        extra={
                            "path": path,
                            "status": response.status_code,
                            "body": response.text[:500],
                        },
                    )
                    return False
                else:
                    reason = f"http_{response.status_code}"
                    wait = _retry_after(response)
            except httpx.TransportError as exc:
                API_HEALTH.record(False)
                reason = type(exc).__name__
            self.tally.retried += 1
            RETRIES.labels(reason=reason).inc()
            delay = wait if wait is not None else self.rng.uniform(0, backoff)  # full jitter
            log.warning(
                "post failed; retrying",
                extra={"path": path, "reason": reason, "delay": round(delay, 3)},
            )
            await asyncio.sleep(delay)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
