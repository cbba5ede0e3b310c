"""The emulator's loop: take posts (random row offsets with repeats, like the original, or a
recorded sequence), send each one's pin, geo and user records to the ingest API in batch mode
(REST proxy v2 bodies), stream mode (Kinesis-style records) or both, at a rate.

SIGTERM/SIGINT let the post in flight finish; the run then ends and reports its tally.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx
from sqlalchemy import Engine

from services.emulator.client import IngestClient, Tally
from services.emulator.config import Mode
from services.emulator.metrics import POSTS
from services.emulator.source_db import RowReader, has_tables
from shared.retry import Backoff, retry
from shared.topics import RECORD_TYPES, RecordType, raw_batch_topic, raw_stream_topic

Post = dict[RecordType, dict[str, Any]]
DEFAULT_BACKOFF = Backoff()
JSON_V2 = {"Content-Type": "application/vnd.kafka.json.v2+json"}


@dataclass(frozen=True)
class Pace:
    """Posts per second (0 = as fast as the API takes them), or the original's random 0-1 s
    sleep between posts."""

    rate: float = 0.0
    random_sleep: bool = False


@dataclass(frozen=True)
class RunOptions:
    """One run of the emulator: where it posts, how, how fast and how much. Built once (the CLI
    builds it from the settings and its options: :func:`services.emulator.main.options`) and
    handed down whole."""

    api_url: str
    prefix: str  # of the raw topics and streams
    mode: Mode = "batch"
    pace: Pace = Pace()
    count: int | None = None  # posts to send; None: every post of the source
    batch_size: int = 1  # posts per request
    concurrency: int = 1  # requests in flight at once (order kept only with 1)
    shards: int = 4  # of streams the run creates when they are missing
    api_key: str | None = None
    seed: int | None = None  # of the retry jitter
    sent_log: Path | None = None  # every post the API took, appended as JSON lines
    backoff: Backoff = DEFAULT_BACKOFF


class EmptySource(RuntimeError):
    """The source database answers but has no rows to post (not worth waiting for)."""


def _open_reader(engine: Engine) -> RowReader:
    if not has_tables(engine):
        raise EmptySource("the source database has no tables: run `pinpipe emulator seed-db`")
    reader = RowReader(engine)
    if reader.rows == 0:
        raise EmptySource("the source database is empty: run `pinpipe emulator seed-db` first")
    return reader


async def random_posts(
    engine: Engine, rng: random.Random, chunk: int = 50, backoff: Backoff = DEFAULT_BACKOFF
) -> AsyncIterator[Post]:
    """Forever: a random row offset (repeats allowed), its rows of all three tables. Rows are
    read ``chunk`` offsets at a time, off the event loop; while the database is away, reads
    are retried with ``backoff``."""
    reader = await retry(
        "the source database",
        lambda: asyncio.to_thread(_open_reader, engine),
        backoff,
        permanent=(EmptySource,),
    )
    while True:
        offsets = [rng.randrange(reader.rows) for _ in range(chunk)]
        chunk_posts = await retry(
            "the source database",
            functools.partial(asyncio.to_thread, reader.read, offsets),
            backoff,
        )
        for post in chunk_posts:
            yield post


async def replayed_posts(path: Path) -> AsyncIterator[Post]:
    """The posts of a recorded sequence (one ``{"pin", "geo", "user"}`` per line), in order."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                post = json.loads(line)
                if not isinstance(post, dict) or not set(post) <= set(RECORD_TYPES):
                    raise ValueError(f"{path}:{number}: not a {{pin, geo, user}} object")
                yield post


class Sender:
    """Sends batches of posts in the chosen mode(s)."""

    def __init__(
        self,
        api: IngestClient,
        prefix: str,
        mode: Mode,
        headers: dict[str, str],
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> None:
        self.api = api
        self.prefix = prefix
        self.mode = mode
        self.headers = headers
        self.backoff = backoff

    async def _describe(self, name: str) -> httpx.Response:
        """DescribeStream; raises while the API is unreachable or answers 5xx."""
        response = await self.api.client.get(f"/streams/{name}", headers=self.headers)
        if response.status_code >= 500:
            raise RuntimeError(f"DescribeStream {name}: HTTP {response.status_code}")
        return response

    async def ensure_streams(self, shards: int) -> None:
        """Create the stream topics this run writes to, when they are missing."""
        if self.mode == "batch":
            return
        for record_type in RECORD_TYPES:
            name = raw_stream_topic(self.prefix, record_type)
            found = await retry(
                "the ingest API",
                functools.partial(self._describe, name),
                self.backoff,
            )
            if (
                found.status_code == 400
                and found.json().get("__type") == "ResourceNotFoundException"
            ):
                await self.api.send(
                    "POST",
                    f"/streams/{name}",
                    {"ShardCount": shards},
                    label=name,
                    headers=self.headers,
                )

    async def send(self, posts: list[Post]) -> bool:
        """One request per record type and mode, all at once; True when every one of them
        was accepted. Each topic still gets its requests in order, one batch after another."""
        requests = []
        for record_type in RECORD_TYPES:
            records = [post[record_type] for post in posts if record_type in post]
            if not records:
                continue
            if self.mode in ("batch", "both"):
                topic = raw_batch_topic(self.prefix, record_type)
                batch_body = {"records": [{"value": r} for r in records]}
                requests.append(
                    self.api.send(
                        "POST",
                        f"/topics/{topic}",
                        batch_body,
                        label=topic,
                        headers={**self.headers, **JSON_V2},
                    )
                )
            if self.mode in ("stream", "both"):
                stream = raw_stream_topic(self.prefix, record_type)
                body: dict[str, Any]
                if len(records) == 1:
                    record = records[0]
                    body = {
                        "StreamName": stream,
                        "Data": record,
                        "PartitionKey": _key(record_type, record),
                    }
                    path = f"/streams/{stream}/record"
                else:
                    body = {
                        "Records": [
                            {"Data": r, "PartitionKey": _key(record_type, r)} for r in records
                        ]
                    }
                    path = f"/streams/{stream}/records"
                requests.append(
                    self.api.send("PUT", path, body, label=stream, headers=self.headers)
                )
        return all(await asyncio.gather(*requests))


def _key(record_type: RecordType, record: dict[str, Any]) -> str:
    """The partition key: the post's id, so one post's records share a shard per stream."""
    return str(record.get("index" if record_type == "pin" else "ind", "0"))


class Progress:
    """A live line on a terminal: posts, rate, retries, failures."""

    def __init__(self, tally: Tally, out: TextIO = sys.stderr) -> None:
        self.tally = tally
        self.out = out
        self.enabled = out.isatty()
        self.started = time.monotonic()
        self.shown = 0.0

    def update(self, *, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self.shown < 0.5):
            return
        self.shown = now
        rate = self.tally.posted / max(now - self.started, 1e-9)
        self.out.write(
            f"\rposted {self.tally.posted}  {rate:,.1f} posts/s  retried {self.tally.retried}"
            f"  failed {self.tally.failed}" + ("\n" if final else "")
        )
        self.out.flush()


async def run(options: RunOptions, posts: AsyncIterator[Post]) -> Tally:
    """Send ``options.count`` posts (all of ``posts`` when None) and return the tally.

    ``options.concurrency`` batches may be in flight at once; with more than one, records of one
    topic may arrive out of the order they were read in (a replay keeps its order only with 1).
    """
    count, batch_size, pace = options.count, options.batch_size, options.pace
    rng = random.Random(options.seed)
    tally = Tally()
    progress = Progress(tally)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    headers = {"x-api-key": options.api_key} if options.api_key else {}
    log_handle = options.sent_log.open("a", encoding="utf-8") if options.sent_log else None
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(base_url=options.api_url, timeout=30.0) as client:
            sender = Sender(
                IngestClient(client, tally, rng),
                options.prefix,
                options.mode,
                headers,
                options.backoff,
            )
            await sender.ensure_streams(options.shards)

            async def flush(batch: list[Post]) -> None:
                if await sender.send(batch):
                    tally.posted += len(batch)
                    POSTS.labels(status="ok").inc(len(batch))
                    if log_handle is not None:
                        log_handle.writelines(json.dumps(p, default=str) + "\n" for p in batch)
                        log_handle.flush()
                else:
                    for _ in batch:
                        tally.fail("refused")
                    POSTS.labels(status="failed").inc(len(batch))
                progress.update()

            in_flight: set[asyncio.Task[None]] = set()
            batch: list[Post] = []
            queued = 0  # posts handed to a request so far
            async for post in posts:
                batch.append(post)
                if len(batch) < batch_size and (count is None or queued + len(batch) < count):
                    continue
                if len(in_flight) >= options.concurrency:
                    _, in_flight = await asyncio.wait(
                        in_flight, return_when=asyncio.FIRST_COMPLETED
                    )
                in_flight.add(asyncio.create_task(flush(batch)))
                queued += len(batch)
                batch = []
                if stop.is_set() or (count is not None and queued >= count):
                    break
                if pace.random_sleep:
                    await _sleep_or_stop(stop, rng.uniform(0, 1))
                elif pace.rate > 0:
                    await _sleep_or_stop(stop, queued / pace.rate - (time.monotonic() - started))
                if stop.is_set():
                    break
            if batch and not stop.is_set():  # the end of a replayed sequence
                in_flight.add(asyncio.create_task(flush(batch)))
            if in_flight:
                await asyncio.gather(*in_flight)  # posts in flight always finish
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        if log_handle is not None:
            log_handle.close()
        progress.update(final=True)
    return tally


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    if seconds > 0:
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except TimeoutError:
            pass
