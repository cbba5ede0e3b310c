"""The sink's loop: consume raw and clean topics, buffer per partition, roll Parquet files by
size, by age and at a day boundary, and commit a partition's offset only once its file is
durable. File names come from start offsets, so a replay after a crash rewrites the same
names: exactly once in the lake.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from services.s3_sink import metrics as m
from services.s3_sink.config import SinkSettings
from services.s3_sink.writer import parquet_bytes, write_durably
from shared.lake import Lake, Zone, relative_path
from shared.lake_schema import clean_row, to_table
from shared.topics import RecordType, record_type_of

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 30.0


@dataclass
class PartitionBuffer:
    """Records of one topic-partition waiting for their file."""

    zone: Zone
    record_type: RecordType
    start_offset: int
    day: date
    opened_at: float = field(default_factory=time.monotonic)
    rows: list[dict[str, Any]] = field(default_factory=list)
    size: int = 0
    next_offset: int = 0


class _DropOnRevoke(ConsumerRebalanceListener):
    """A revoked partition's buffer is dropped: its new owner re-reads it from the committed
    offset and rewrites the same file names."""

    def __init__(self, sink: ParquetSink) -> None:
        self.sink = sink

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        for tp in revoked:
            self.sink.buffers.pop(tp, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"count": len(assigned)})


class ParquetSink:
    def __init__(self, settings: SinkSettings, lake: Lake) -> None:
        self.settings = settings
        self.lake = lake
        self.buffers: dict[TopicPartition, PartitionBuffer] = {}
        self.consumer: AIOKafkaConsumer | None = None
        self.ready = False
        self.clean_pattern = re.compile(settings.sink_clean_topic_pattern)
        patterns = [settings.sink_clean_topic_pattern, settings.sink_raw_topic_pattern]
        self.pattern = "|".join(f"(?:{p})" for p in patterns if p)

    def zone_of(self, topic: str) -> Zone:
        return "clean" if self.clean_pattern.search(topic) else "raw"

    async def run(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=self.settings.sink_group_id,
            client_id="pinpipe-s3-sink",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",  # the cleaner writes clean topics in transactions
            metadata_max_age_ms=5_000,  # find new raw topics quickly
            max_poll_interval_ms=600_000,
        )
        consumer.subscribe(pattern=self.pattern, listener=_DropOnRevoke(self))
        await consumer.start()
        self.consumer = consumer
        self.ready = True
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=5_000)
                for tp, messages in batches.items():
                    for message in messages:
                        await self._add(tp, message)
                await self._flush_due()
            await self.flush_all()
        finally:
            self.ready = False
            await consumer.stop()

    async def _add(self, tp: TopicPartition, message: Any) -> None:
        record_type = record_type_of(tp.topic)
        if record_type is None:
            m.SKIPPED.labels(reason="unknown_type").inc()
            return
        zone = self.zone_of(tp.topic)
        timestamp = datetime.fromtimestamp(message.timestamp / 1000, UTC)
        buffer = self.buffers.get(tp)
        if buffer is not None and buffer.day != timestamp.date():
            await self._flush(tp)  # one day per file
            buffer = None
        if buffer is None:
            buffer = PartitionBuffer(zone, record_type, message.offset, timestamp.date())
            self.buffers[tp] = buffer
        meta = {
            "_topic": tp.topic,
            "_partition": tp.partition,
            "_offset": message.offset,
            "_ingested_at": timestamp,
        }
        try:
            if zone == "clean":
                row = {**clean_row(record_type, message.value), **meta}
            else:
                row = {"key": message.key, "value": message.value, **meta}
        except (ValueError, TypeError) as exc:
            # A clean topic holds only what the cleaner wrote; an unreadable record there is a
            # bug upstream. Keep the offset moving, count it, log it.
            m.SKIPPED.labels(reason="unreadable").inc()
            log.error(
                "unreadable clean record",
                extra={"topic": tp.topic, "offset": message.offset, "error": repr(exc)},
            )
            row = None
        if row is not None:
            buffer.rows.append(row)
        buffer.size += len(message.value or b"") + len(message.key or b"")
        buffer.next_offset = message.offset + 1
        if buffer.size >= self.settings.sink_roll_bytes:
            await self._flush(tp)

    async def _flush_due(self) -> None:
        now = time.monotonic()
        for tp, buffer in list(self.buffers.items()):
            if now - buffer.opened_at >= self.settings.sink_roll_seconds:
                await self._flush(tp)

    async def flush_all(self) -> None:
        for tp in list(self.buffers):
            await self._flush(tp)

    async def _flush(self, tp: TopicPartition) -> None:
        """Write the partition's file durably, then commit past it. Retries until it succeeds
        (consumption waits meanwhile: backpressure, not loss)."""
        buffer = self.buffers.pop(tp, None)
        if buffer is None:
            return
        started = time.perf_counter()
        if buffer.rows:
            relative = relative_path(
                buffer.zone,
                buffer.record_type,
                buffer.day,
                tp.topic,
                tp.partition,
                buffer.start_offset,
            )
            data = parquet_bytes(
                to_table(buffer.zone, buffer.record_type, buffer.rows),
                self.settings.sink_compression,
            )
            backoff = 0.5
            while True:
                try:
                    await asyncio.to_thread(write_durably, self.lake, relative, data)
                    break
                except OSError as exc:
                    m.ERRORS.labels(reason=type(exc).__name__).inc()
                    log.warning(
                        "lake write failed; retrying",
                        extra={"path": relative, "error": repr(exc), "backoff": backoff},
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            m.FILES.labels(zone=buffer.zone, type=buffer.record_type).inc()
            m.RECORDS.labels(zone=buffer.zone, type=buffer.record_type).inc(len(buffer.rows))
            m.BYTES.labels(zone=buffer.zone).inc(len(data))
        assert self.consumer is not None
        try:
            await self.consumer.commit({tp: buffer.next_offset})
        except (CommitFailedError, IllegalStateError) as exc:
            # The partition moved to another member during the write: it re-reads from the
            # last commit and rewrites the same file name. Nothing is lost or doubled.
            log.warning(
                "commit after write failed",
                extra={"topic": tp.topic, "partition": tp.partition, "error": repr(exc)},
            )
        m.FLUSH_SECONDS.labels(zone=buffer.zone).observe(time.perf_counter() - started)
