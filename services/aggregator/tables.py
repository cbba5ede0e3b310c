"""The aggregator's Faust table and the agent that keeps it.

One agent reads the three clean topics (co-partitioned by ``ind``: pin, geo and user of a post
arrive in the same partition number, so one replica holds the whole post). The ``posts`` table
(RocksDB, with a changelog topic) holds each post's latest records (``posts.py``); the
aggregates are derived from it in memory (``state.py``): updated per record, rebuilt from the
table after every recovery.

Records come in small batches; a post that several records of a batch changed (its pin, geo
and user usually arrive together) is written to the table once, whole.

Why this is exact without Kafka transactions: each record changes exactly one table key (its
post), and each write holds the whole post, so a change reaches the changelog whole or not at
all; a batch's records are acknowledged only once its writes are buffered, and Faust flushes the
changelog before it commits the source offsets, so a committed offset is always covered by the
changelog;
a record replayed after a crash finds its offset (or its values) already in its post and
changes nothing; and a replica that did not shut down cleanly drops its local RocksDB files and
restores from the changelog (``main.py``), so local state never runs ahead of it. Aggregates
derived from the posts therefore count every record once. The posts of the active partitions
are also held in memory (read without a RocksDB get and decode per record).

The consumer reads uncommitted records: the cleaner's aborted records are always re-sent
identical and later, and a post keeps only its latest record, so they leave no trace once the
retry arrives.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any, cast

import faust
import orjson
from faust.types import EventT, StreamT

from services.aggregator import faust_patches
from services.aggregator import metrics as m
from services.aggregator.posts import Post, apply, fields_of, from_wire, replayed, to_wire
from services.aggregator.state import Aggregates
from shared.topics import RECORD_TYPES, clean_topic

log = logging.getLogger(__name__)
POSTS_TABLE = "posts"
# a batch of records: this many, or what arrived within this long (freshness pays at most that)
BATCH_MAX = 1000
BATCH_SECONDS = 0.02


def _key_bytes(key: Any) -> bytes:
    """A table key as written (``b"1972"``): Faust writes keys raw but decodes them when
    iterating with its default codec, which turns ``b"1972"`` into ``1972``."""
    if isinstance(key, bytes):
        return key
    return str(key).encode()


def _post_of(value: Any) -> Post:
    """A table value as a post. Posts are written in their wire form as orjson bytes (cheaper
    than Faust's JSON codec), but iterating a restored table, Faust hands them back decoded (as
    with keys)."""
    if isinstance(value, bytes | bytearray | memoryview | str):
        return from_wire(orjson.loads(value))
    return from_wire(dict(value))


class Aggregator:
    """The posts table, the agent over the clean topics, and the derived aggregates."""

    def __init__(
        self,
        app: faust.App,
        partitions: int,
        bucket_seconds: int,
        rocksdb_options: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.partitions = partitions
        self.aggregates = Aggregates(bucket_seconds)
        self.recovered = False
        self.crashed: str | None = None  # why the agent died; the worker is then stopped
        self._assigned_at = time.monotonic()
        self._type_of = {clean_topic(t): t for t in RECORD_TYPES}
        # the posts of the active partitions, as in the table (read without a RocksDB get)
        self.cache: dict[bytes, Post] = {}
        self._changed = {t: m.RECORDS.labels(type=t) for t in RECORD_TYPES}
        self._unchanged = {t: m.UNCHANGED.labels(type=t) for t in RECORD_TYPES}
        self.posts = app.Table(
            POSTS_TABLE,
            default=None,
            partitions=partitions,
            help="ind → the post's latest pin, geo and user fields",
            options=rocksdb_options,  # the store's memory (see AggregatorSettings)
        )
        self.posts.on_recover(self._rebuild)
        app.on_partitions_revoked.connect(self._on_revoked)
        app.on_partitions_assigned.connect(self._on_assigned)
        topic = app.topic(*self._type_of, key_serializer="raw", value_serializer="raw")
        app.agent(topic, name="aggregate")(self._aggregate)

    @property
    def ready(self) -> bool:
        return self.recovered and not self.app.rebalancing

    async def _aggregate(self, agent_stream: StreamT[bytes]) -> None:
        """Records in batches (at most BATCH_MAX, or what came within BATCH_SECONDS): each
        updates its post and the aggregates at once; the posts a batch changed are then
        written to the table once each. Faust acknowledges a batch's records only after this
        loop body returns, so their offsets are never committed before their table writes."""
        stream = cast(faust.Stream[bytes], agent_stream)  # Faust's agents are given a Stream
        try:
            await self._aggregate_batches(stream)
        except Exception as exc:
            # Faust would leave a crashed agent dead in a live worker: stop the worker instead
            # (main.py then starts it again in place); /healthz fails from here on.
            self.crashed = repr(exc)
            log.error("the aggregating agent crashed; stopping the worker", exc_info=exc)
            os.kill(os.getpid(), signal.SIGTERM)

    async def _aggregate_batches(self, stream: faust.Stream[bytes]) -> None:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_SECONDS):
            changed: dict[int, tuple[EventT[bytes], dict[bytes, Post]]] = {}
            for event in events:
                message = event.message
                post = self.apply(
                    message.topic, message.partition, message.offset, message.timestamp, event.value
                )
                if post is not None:
                    changed.setdefault(message.partition, (event, {}))[1][post[0]] = post[1]
            for event, posts in changed.values():
                # a table write goes to the partition of the current event: one of the batch's
                # events of the same (co-partitioned) partition
                faust_patches.write_to_partition_of(stream, event)
                for key, new in posts.items():
                    self.posts[key] = orjson.dumps(to_wire(new))

    def apply(
        self, topic: str, partition: int, offset: int, timestamp: float, value: Any
    ) -> tuple[bytes, Post] | None:
        """One clean record (``timestamp``: its ingest time, epoch seconds): update its post
        (in memory) and the aggregates; the post's key and value when it changed (for the
        table), else None."""
        record_type = self._type_of[topic]
        try:
            record = orjson.loads(value)
            key = str(int(record["ind"])).encode()
            fields = fields_of(record_type, record)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            m.SKIPPED.labels(reason="unreadable").inc()
            return None
        now = time.time()
        old = self.cache.get(key)
        new = apply(old, partition, record_type, fields, offset, now)
        self.aggregates.offsets[(topic, partition)] = offset
        if new is None:
            self._unchanged[record_type].inc()
            if not replayed(old, record_type, offset):  # a repeat: the answers include it now
                m.FRESHNESS.observe(max(now - timestamp, 0.0))
            return None
        self.cache[key] = new
        self.aggregates.replace(partition, old, new)
        self._changed[record_type].inc()
        m.FRESHNESS.observe(max(now - timestamp, 0.0))
        return key, new

    async def _on_revoked(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        self.recovered = False

    async def _on_assigned(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        self.recovered = False
        self._assigned_at = time.monotonic()

    async def _rebuild(self) -> None:
        """After the tables are restored: the aggregates from every post of the active
        partitions (a standby's posts are not counted)."""
        self.cache = {_key_bytes(key): _post_of(value) for key, value in self.posts.items()}
        posts = list(self.cache.values())
        offsets: dict[tuple[str, int], int] = {}
        for post in posts:
            for record_type in RECORD_TYPES:
                part = getattr(post, record_type)
                if part is not None:
                    tp = (clean_topic(record_type), post.partition)
                    offsets[tp] = max(offsets.get(tp, -1), part.offset)
        self.aggregates.rebuild(posts, offsets)
        m.RECOVERY_SECONDS.set(time.monotonic() - self._assigned_at)
        m.RECOVERIES.inc()
        self.recovered = True

    def update_lag(self) -> None:
        """``consumer_lag`` of each active clean-topic partition: its high watermark (as of the
        last fetch) minus the next offset the aggregates would read."""
        m.CONSUMER_LAG.clear()
        for tp in self.app.assignor.assigned_actives():
            if tp.topic not in self._type_of:
                continue
            highwater = self.app.consumer.highwater(tp)
            if highwater is None:
                continue
            read = self.aggregates.offsets.get((tp.topic, tp.partition), -1)
            m.CONSUMER_LAG.labels(topic=tp.topic, partition=str(tp.partition)).set(
                max(highwater - read - 1, 0)
            )

    def active_partitions(self) -> list[int]:
        """The partitions of the clean topics this replica processes."""
        topics = set(self._type_of)
        actives = self.app.assignor.assigned_actives()
        return sorted({tp.partition for tp in actives if tp.topic in topics})
