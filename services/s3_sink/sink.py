"""The sink's loop: consume raw and clean topics, buffer per partition, write Parquet files, and
commit a partition's offset only once its file is durable. Exactly once in the lake.

A partition's file rolls when it reaches ``PINPIPE_SINK_ROLL_BYTES``, when its records span
``PINPIPE_SINK_ROLL_SECONDS`` of record time, at a day boundary, and when it has been open
``PINPIPE_SINK_MAX_OPEN_SECONDS`` (so an idle partition's records are published within that
time plus one poll, 0.5 s). File names come from start offsets; a file is written and committed
before the partition buffers anything else, so the lake holds at most one uncommitted file per
partition, and it starts at the committed offset: a replay rewrites the same name. Clean-topic
records that do not fit the clean schema go to the DLQ (before the offset that covers them is
committed). While the lake is down, the write is retried with backoff and nothing is consumed.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from services.s3_sink import metrics as m
from services.s3_sink.config import SinkSettings
from services.s3_sink.tables import Columns, Unreadable, to_lake_table
from services.s3_sink.writer import parquet_bytes, write_durably
from shared.lake import Lake, Zone, relative_path
from shared.models import DlqEntry
from shared.topics import DLQ_TOPIC, RecordType, record_type_of

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 30.0
POLL_MS = 500


@dataclass
class PartitionBuffer:
    """Records of one topic-partition waiting for their file."""

    zone: Zone
    record_type: RecordType
    start_offset: int
    day: date
    first_timestamp_ms: int
    opened_at: float = field(default_factory=time.monotonic)
    columns: Columns = field(default_factory=Columns)
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
            self.sink.committed.pop(tp, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"count": len(assigned)})


class ParquetSink:
    def __init__(self, settings: SinkSettings, lake: Lake) -> None:
        self.settings = settings
        self.lake = lake
        self.buffers: dict[TopicPartition, PartitionBuffer] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
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
            max_poll_interval_ms=600_000,  # a lake outage may hold the loop this long
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            client_id="pinpipe-s3-sink-dlq",
            acks="all",
            enable_idempotence=True,
        )
        consumer.subscribe(pattern=self.pattern, listener=_DropOnRevoke(self))
        await producer.start()
        await consumer.start()
        self.consumer, self.producer = consumer, producer
        self.ready = True
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=POLL_MS, max_records=10_000)
                for tp, messages in batches.items():
                    for message in messages:
                        await self._add(
                            tp, message.key, message.value, message.offset, message.timestamp
                        )
                await self._flush_due()
                self._report_lag(consumer)
            await self.flush_all()
        finally:
            self.ready = False
            await consumer.stop()
            await producer.stop()

    async def _add(
        self,
        tp: TopicPartition,
        key: bytes | None,
        value: bytes | None,
        offset: int,
        timestamp_ms: int,
    ) -> None:
        record_type = record_type_of(tp.topic)
        if record_type is None:
            m.SKIPPED.labels(reason="unknown_type").inc()
            return
        day = datetime.fromtimestamp(timestamp_ms / 1000, UTC).date()
        buffer = self.buffers.get(tp)
        if buffer is not None and (
            buffer.day != day
            or timestamp_ms - buffer.first_timestamp_ms >= self.settings.sink_roll_seconds * 1000
        ):
            await self._flush(tp)  # one day per file; at most roll_seconds of record time
            buffer = None
        if buffer is None:
            buffer = PartitionBuffer(self.zone_of(tp.topic), record_type, offset, day, timestamp_ms)
            self.buffers[tp] = buffer
        value = value or b""
        buffer.columns.add(key, value, offset, timestamp_ms)
        buffer.size += len(value) + len(key or b"")
        buffer.next_offset = offset + 1
        if buffer.size >= self.settings.sink_roll_bytes:
            await self._flush(tp)

    async def _flush_due(self) -> None:
        now = time.monotonic()
        for tp, buffer in list(self.buffers.items()):
            if now - buffer.opened_at >= self.settings.sink_max_open_seconds:
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
        table, unreadable = to_lake_table(
            buffer.zone, buffer.record_type, tp.topic, tp.partition, buffer.columns
        )
        if unreadable:
            await self._to_dlq(tp, unreadable)
        if table.num_rows:
            relative = relative_path(
                buffer.zone,
                buffer.record_type,
                buffer.day,
                tp.topic,
                tp.partition,
                buffer.start_offset,
            )
            data = parquet_bytes(table, self.settings.sink_compression)
            await self._write(relative, data)
            m.FILES.labels(zone=buffer.zone, type=buffer.record_type).inc()
            m.RECORDS.labels(zone=buffer.zone, type=buffer.record_type).inc(table.num_rows)
            m.BYTES.labels(zone=buffer.zone).inc(len(data))
        await self._commit(tp, buffer.start_offset, buffer.next_offset)
        m.FLUSH_SECONDS.labels(zone=buffer.zone).observe(time.perf_counter() - started)

    async def _write(self, relative: str, data: bytes) -> None:
        backoff = 0.5
        while True:
            try:
                await asyncio.to_thread(write_durably, self.lake, relative, data)
                return
            except Exception as exc:  # the store is slow or down (s3fs raises more than OSError)
                m.ERRORS.labels(reason=type(exc).__name__).inc()
                log.warning(
                    "lake write failed; retrying",
                    extra={"path": relative, "error": repr(exc), "backoff": backoff},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _commit(self, tp: TopicPartition, start_offset: int, offset: int) -> None:
        assert self.consumer is not None
        try:
            await self.consumer.commit({tp: offset})
            self.committed[tp] = offset
        except (CommitFailedError, IllegalStateError) as exc:
            # Whoever reads the partition next (another member, or this one) starts at the
            # last commit, which is this file's start: it rewrites the same file name.
            log.warning(
                "commit after write failed; the file will be rewritten",
                extra={"topic": tp.topic, "partition": tp.partition, "error": repr(exc)},
            )
            if tp in self.consumer.assignment():
                self.consumer.seek(tp, start_offset)

    async def _to_dlq(self, tp: TopicPartition, unreadable: list[Unreadable]) -> None:
        """Send clean-topic records that fit no schema to the DLQ (a bug upstream)."""
        assert self.producer is not None
        for record in unreadable:
            entry = DlqEntry(
                original_base64=base64.b64encode(record.value).decode(),
                source_topic=tp.topic,
                source_partition=tp.partition,
                source_offset=record.offset,
                reason="unreadable_clean",
                detail=record.error,
                failed_at=datetime.now(UTC),
            )
            await self.producer.send_and_wait(DLQ_TOPIC, entry.model_dump_json().encode())
            m.DLQ.labels(reason="unreadable_clean").inc()
            log.error(
                "unreadable clean record sent to the DLQ",
                extra={"topic": tp.topic, "offset": record.offset, "error": record.error},
            )

    def _report_lag(self, consumer: AIOKafkaConsumer) -> None:
        for tp, offset in self.committed.items():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                m.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(highwater - offset, 0))
