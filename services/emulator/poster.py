"""The emulator's loop: pick a random row offset (with repeats), read pin, geo and user at that
offset, post them to the ingest API; retry transient failures with backoff, never drop a post.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import httpx
from sqlalchemy import Engine

from services.emulator.metrics import POSTS, REQUESTS, RETRIES
from services.emulator.source_db import read_post, row_count
from shared.topics import RECORD_TYPES, RecordType, raw_batch_topic

log = logging.getLogger(__name__)
JSON_V2 = "application/vnd.kafka.json.v2+json"
MAX_BACKOFF_SECONDS = 10.0


class PermanentPostError(Exception):
    """The API refused a request for good (4xx): retrying would not help."""


class Poster:
    """Posts batches of rows to ``POST /topics/<prefix>.<type>`` (REST proxy v2 bodies)."""

    def __init__(self, client: httpx.AsyncClient, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    async def _post_with_retry(self, topic: str, records: list[dict[str, Any]]) -> None:
        body = json.dumps({"records": [{"value": r} for r in records]}, default=str)
        backoff = 0.2
        while True:
            reason = ""
            try:
                response = await self.client.post(
                    f"/topics/{topic}", content=body, headers={"Content-Type": JSON_V2}
                )
                REQUESTS.labels(topic=topic, status=str(response.status_code)).inc()
                if response.status_code == 200:
                    failed = [o for o in response.json()["offsets"] if o.get("error_code")]
                    if not failed:
                        return
                    reason = "record_error"
                elif 400 <= response.status_code < 500 and response.status_code != 429:
                    raise PermanentPostError(
                        f"{topic}: HTTP {response.status_code} {response.text}"
                    )
                else:
                    reason = f"http_{response.status_code}"
            except httpx.TransportError as exc:
                reason = type(exc).__name__
            RETRIES.labels(reason=reason).inc()
            log.warning(
                "post failed; retrying",
                extra={"topic": topic, "reason": reason, "backoff": backoff},
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def post(self, posts: list[dict[RecordType, dict[str, Any]]]) -> None:
        """Post one batch of posts: one request per record type, pin first (as the original)."""
        for record_type in RECORD_TYPES:
            records = [post[record_type] for post in posts if record_type in post]
            if records:
                await self._post_with_retry(raw_batch_topic(self.prefix, record_type), records)


async def run(
    engine: Engine,
    api_url: str,
    prefix: str,
    *,
    rate: float,
    count: int | None,
    batch_size: int,
    seed: int | None,
    sent_log: Path | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Post ``count`` posts (forever when None) at ``rate`` posts/s; return how many were sent."""
    rows = await asyncio.to_thread(row_count, engine)
    if rows == 0:
        raise RuntimeError("the source database is empty: run `pinpipe emulator seed-db` first")
    rng = random.Random(seed)
    sent = 0
    log_handle: TextIO | None = sent_log.open("a", encoding="utf-8") if sent_log else None
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(base_url=api_url, timeout=30.0) as client:
            poster = Poster(client, prefix)
            while count is None or sent < count:
                size = batch_size if count is None else min(batch_size, count - sent)
                offsets = [rng.randrange(rows) for _ in range(size)]
                posts = [await asyncio.to_thread(read_post, engine, offset) for offset in offsets]
                await poster.post(posts)
                sent += len(posts)
                POSTS.labels(status="ok").inc(len(posts))
                if log_handle is not None:
                    for post in posts:
                        log_handle.write(json.dumps(post, default=str) + "\n")
                    log_handle.flush()
                if on_progress is not None:
                    on_progress(sent)
                if rate > 0:
                    ahead = sent / rate - (time.monotonic() - started)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
    finally:
        if log_handle is not None:
            log_handle.close()
    return sent
