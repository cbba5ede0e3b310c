"""The aggregator's Faust table and the agent that keeps it.

One agent reads the three clean topics (co-partitioned by ``ind``: pin, geo and user of a post
arrive in the same partition number, so one replica holds the whole post). The ``posts`` table
(RocksDB, with a changelog topic) holds each post's latest records (``posts.py``); the
aggregates are derived from it in memory (``state.py``): updated per record, rebuilt from the
table after every recovery.

Why this is exact without Kafka transactions: each record changes exactly one table key (its
post), so each change reaches the changelog whole or not at all; Faust flushes the changelog
before it commits the source offsets, so a committed offset is always covered by the changelog;
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

import time
from typing import Any

import faust
import orjson
from faust.types import StreamT

from services.aggregator import metrics as m
from services.aggregator.posts import Post, apply, fields_of
from services.aggregator.state import Aggregates
from shared.topics import RECORD_TYPES, clean_topic

POSTS_TABLE = "posts"


def _key_bytes(key: Any) -> bytes:
    """A table key as written (``b"1972"``): Faust writes keys raw but decodes them when
    iterating with its default codec, which turns ``b"1972"`` into ``1972``."""
    if isinstance(key, bytes):
        return key
    return str(key).encode()


def _post_of(value: Any) -> Post:
    """A table value as a post. Posts are written as orjson bytes (cheaper than Faust's JSON
    codec), but iterating a restored table, Faust hands them back decoded (as with keys)."""
    if isinstance(value, bytes | bytearray | memoryview | str):
        post: Post = orjson.loads(value)
        return post
    return dict(value)


class Aggregator:
    """The posts table, the agent over the clean topics, and the derived aggregates."""

    def __init__(self, app: faust.App, partitions: int, bucket_seconds: int) -> None:
        self.app = app
        self.partitions = partitions
        self.aggregates = Aggregates(bucket_seconds)
        self.recovered = False
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
        )
        self.posts.on_recover(self._rebuild)
        app.on_partitions_revoked.connect(self._on_revoked)
        app.on_partitions_assigned.connect(self._on_assigned)
        topic = app.topic(*self._type_of, key_serializer="raw", value_serializer="raw")
        app.agent(topic, name="aggregate")(self._aggregate)

    @property
    def ready(self) -> bool:
        return self.recovered and not self.app.rebalancing

    async def _aggregate(self, stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            self.apply(
                message.topic, message.partition, message.offset, message.timestamp, event.value
            )

    def apply(self, topic: str, partition: int, offset: int, timestamp: float, value: Any) -> None:
        """One clean record (``timestamp``: its ingest time, epoch seconds): update its post,
        then the aggregates."""
        record_type = self._type_of[topic]
        try:
            record = orjson.loads(value)
            key = str(int(record["ind"])).encode()
            fields = fields_of(record_type, record)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            m.SKIPPED.labels(reason="unreadable").inc()
            return
        now = time.time()
        old = self.cache.get(key)
        new = apply(old, partition, record_type, fields, offset, now)
        self.aggregates.offsets[(topic, partition)] = offset
        if new is None:
            self._unchanged[record_type].inc()
            return
        self.posts[key] = orjson.dumps(new)
        self.cache[key] = new
        self.aggregates.replace(partition, old, new)
        self._changed[record_type].inc()
        m.FRESHNESS.observe(max(now - timestamp, 0.0))

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
                part = post.get(record_type)
                if part is not None:
                    tp = (clean_topic(record_type), post["p"])
                    offsets[tp] = max(offsets.get(tp, -1), part["o"])
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
