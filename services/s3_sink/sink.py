"""The sink's loop: consume raw and clean topics, buffer per partition, and append each
partition's records to its zone's Delta table (shared/lake_tables.py) in commits that carry the
partition's next offset as an application transaction. Exactly once in the lake.

A partition's file rolls when it reaches ``PINPIPE_S3_SINK_ROLL_BYTES``, when its records span
``PINPIPE_S3_SINK_ROLL_SECONDS`` of record time, at a day boundary, and when it has been open
``PINPIPE_S3_SINK_MAX_OPEN_SECONDS`` (so an idle partition's records are published within that
time plus one poll, 0.5 s).

A rolled file is encoded and committed by a background task (Arrow, Parquet and the Delta commit
work off the event loop, while consumption goes on), at most one per partition: the partition's
next file waits for the previous one's commit. The Kafka offset is committed after the table
commit. A sink that stopped between the two starts from the table's own record of the partition
(its transaction version) when that is ahead of Kafka's, so a replay commits nothing twice; a
commit retried after an uncertain failure first checks whether the last attempt landed. A
partition whose table says another sink wrote part of its range (two owners across a rebalance)
stops the loop, which restarts from the committed positions. A revoked partition's file in
flight is finished and committed before the partition is handed over. Clean-topic records that
do not fit the clean schema go to the DLQ before the offset covering them is committed. While
the lake is down, commits are retried with backoff; once a partition's next file is due as well,
consumption stops (backpressure, not loss).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

import pyarrow as pa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import ConsumerRecord
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError as TableCommitFailed

from services.s3_sink import metrics as m
from services.s3_sink.config import S3SinkSettings
from services.s3_sink.tables import Columns, Unreadable, to_lake_table
from shared.kafka_admin import ensure_topics
from shared.lake import Lake, Zone, table_path
from shared.lake_tables import (
    Offsets,
    append,
    committed_offset,
    open_table,
    require_migrated,
    sink_app_id,
    with_date,
)
from shared.models import DlqEntry
from shared.retry import Attempts, retry
from shared.topics import DLQ_TOPIC, RecordType, record_type_of

log = logging.getLogger(__name__)
POLL_MS = 500
DAY_MS = 86_400_000


@dataclass
class PartitionBuffer:
    """Records of one topic-partition waiting for their file."""

    zone: Zone
    record_type: RecordType
    start_offset: int
    first_timestamp_ms: int
    opened_at: float = field(default_factory=time.monotonic)
    columns: Columns = field(default_factory=Columns)
    size: int = 0
    next_offset: int = 0

    @property
    def day_number(self) -> int:
        """Days since 1970-01-01 (UTC) of the file's records."""
        return self.first_timestamp_ms // DAY_MS

    @property
    def day(self) -> date:
        return date(1970, 1, 1) + timedelta(days=self.day_number)


class _DropOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka's base is untyped
    """A revoked partition's buffer is dropped: its new owner re-reads it from the committed
    position. An assigned partition starts from its table's transaction when that is ahead of
    the group's offset."""

    def __init__(self, sink: S3Sink) -> None:
        self.sink = sink

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Files in flight land and commit first. One that fails leaves its records to the new
        # owner, which starts from the committed offset.
        await self.sink.drain(revoked, return_exceptions=True)
        for tp in revoked:
            self.sink.in_table.pop(tp, None)
            self.sink.buffers.pop(tp, None)
            self.sink.committed.pop(tp, None)
            self.sink.in_flight.pop(tp, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"count": len(assigned)})
        await self.sink.resume_from_tables(assigned)


class S3Sink:
    def __init__(self, settings: S3SinkSettings, lake: Lake) -> None:
        self.settings = settings
        self.kafka = settings.kafka_connection()
        self.lake = lake
        self.buffers: dict[TopicPartition, PartitionBuffer] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.in_flight: dict[TopicPartition, asyncio.Task[None]] = {}
        # each assigned partition's next offset as its table holds it (when it holds any)
        self.in_table: dict[TopicPartition, int] = {}
        # each table opened once, brought up to date before each commit; one commit at a time
        # per table in this process (they run in threads)
        self.tables: dict[str, DeltaTable | None] = {}
        self.table_locks: dict[str, threading.Lock] = {}
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.running = False  # connected to Kafka and consuming
        self.lake_reachable = False  # the last write (or the start-up check) succeeded
        self.clean_pattern = re.compile(settings.s3_sink_clean_topic_pattern)
        patterns = [settings.s3_sink_clean_topic_pattern, settings.s3_sink_raw_topic_pattern]
        self.pattern = "|".join(f"(?:{p})" for p in patterns if p)

    @property
    def ready(self) -> bool:
        """Consuming, and the lake took the last write: /readyz."""
        return self.running and self.lake_reachable

    def zone_of(self, topic: str) -> Zone:
        return "clean" if self.clean_pattern.search(topic) else "raw"

    async def run(self, stop: asyncio.Event) -> None:
        """Wait for the broker (creating the DLQ) and the lake, then sink until ``stop``;
        what is buffered is written before it returns."""
        settings = self.settings
        backoff = settings.backoff()
        await retry(
            "kafka (sink topics)",
            lambda: ensure_topics(
                self.kafka,
                [DLQ_TOPIC],  # takes clean records that fit no schema
                settings.topic_partitions,
                settings.topic_replication_factor,
            ),
            backoff,
            stop=stop,
        )
        await retry("the lake", lambda: asyncio.to_thread(self.lake.check), backoff, stop=stop)
        self.lake_reachable = True
        await asyncio.to_thread(require_migrated, self.lake)  # else appends hide the old files
        producer = await retry(
            "kafka (sink DLQ producer)", self._start_producer, backoff, stop=stop
        )
        try:
            consumer = await retry(
                "kafka (sink consumer)", self._start_consumer, backoff, stop=stop
            )
        except BaseException:
            await producer.stop()
            raise
        self.consumer, self.producer = consumer, producer
        self.running = True
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=POLL_MS, max_records=10_000)
                for tp, messages in batches.items():
                    await self._add_messages(tp, messages)
                await self._flush_due()
                self._raise_failed_flushes()
                self._report_lag(consumer)
            await self.flush_all()
        finally:
            self.running = False
            await consumer.stop()
            await producer.stop()

    async def _start_producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            **self.kafka.client_kwargs(),
            client_id="pinpipe-s3-sink-dlq",
            acks="all",
            enable_idempotence=True,
        )
        await _start_or_stop(producer)
        return producer

    async def _start_consumer(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            **self.kafka.client_kwargs(),
            group_id=self.settings.s3_sink_group_id,
            client_id="pinpipe-s3-sink",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",  # the cleaner writes clean topics in transactions
            metadata_max_age_ms=5_000,  # find new raw topics quickly
            max_poll_interval_ms=600_000,  # a lake outage may hold the loop this long
        )
        consumer.subscribe(pattern=self.pattern, listener=_DropOnRevoke(self))
        await _start_or_stop(consumer)
        return consumer

    async def _add_messages(
        self, tp: TopicPartition, messages: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        """Buffer a partition's fetched records, rolling its file where one is due."""
        messages = await self._skip_written(tp, messages)
        if not messages:
            return
        record_type = record_type_of(tp.topic)
        if record_type is None:
            m.SKIPPED.labels(reason="unknown_type").inc(len(messages))
            return
        zone = self.zone_of(tp.topic)
        roll_ms = self.settings.s3_sink_roll_seconds * 1000
        roll_bytes = self.settings.s3_sink_roll_bytes
        if self._add_whole(tp, zone, record_type, messages, roll_ms, roll_bytes):
            return
        for message in messages:
            timestamp_ms = message.timestamp
            buffer = self.buffers.get(tp)
            if buffer is not None and (
                timestamp_ms // DAY_MS != buffer.day_number
                or timestamp_ms - buffer.first_timestamp_ms >= roll_ms
            ):
                await self._flush(tp)  # one day per file; at most roll_seconds of record time
                buffer = None
            if buffer is None:
                buffer = PartitionBuffer(zone, record_type, message.offset, timestamp_ms)
                self.buffers[tp] = buffer
            key, value = message.key, message.value or b""
            buffer.columns.add(key, value, message.offset, timestamp_ms)
            buffer.size += len(value) + (len(key) if key else 0)
            buffer.next_offset = message.offset + 1
            if buffer.size >= roll_bytes:
                await self._flush(tp)

    def _add_whole(
        self,
        tp: TopicPartition,
        zone: Zone,
        record_type: RecordType,
        messages: list[ConsumerRecord[bytes, bytes]],
        roll_ms: float,
        roll_bytes: int,
    ) -> bool:
        """The common case in one go, column by column: the whole fetch joins the partition's
        file without any roll falling inside it. Returns False (nothing added) otherwise."""
        stamps = [message.timestamp for message in messages]
        values = [message.value or b"" for message in messages]
        keys = [message.key for message in messages]
        size = sum(map(len, values)) + sum(len(key) for key in keys if key)
        buffer = self.buffers.get(tp)
        first = buffer.first_timestamp_ms if buffer else stamps[0]
        size_before = buffer.size if buffer else 0
        if not (
            min(stamps) // DAY_MS == max(stamps) // DAY_MS == first // DAY_MS
            and max(stamps) - first < roll_ms
            and size_before + size < roll_bytes
        ):
            return False
        if buffer is None:
            buffer = PartitionBuffer(zone, record_type, messages[0].offset, first)
            self.buffers[tp] = buffer
        buffer.columns.extend(keys, values, [message.offset for message in messages], stamps)
        buffer.size += size
        buffer.next_offset = messages[-1].offset + 1
        return True

    async def _flush_due(self) -> None:
        now = time.monotonic()
        for tp, buffer in list(self.buffers.items()):
            if now - buffer.opened_at >= self.settings.s3_sink_max_open_seconds:
                await self._flush(tp)

    async def flush_all(self) -> None:
        for tp in list(self.buffers):
            await self._flush(tp)
        await self.drain()

    async def drain(
        self, tps: list[TopicPartition] | None = None, return_exceptions: bool = False
    ) -> None:
        """Wait for the files in flight (of ``tps``, or all) to be written and committed."""
        tasks = [t for tp, t in self.in_flight.items() if tps is None or tp in tps]
        await asyncio.gather(*tasks, return_exceptions=return_exceptions)

    def _raise_failed_flushes(self) -> None:
        """A file that could not be finished stops the loop (the process then restarts and
        re-reads from the committed offsets)."""
        for task in self.in_flight.values():
            error = task.exception() if task.done() else None
            if error is not None:
                raise error

    async def _flush(self, tp: TopicPartition) -> None:
        """Hand the partition's buffer to a background task that writes its file durably and
        then commits past it; first wait for the partition's previous file."""
        buffer = self.buffers.pop(tp, None)
        if buffer is None:
            return
        previous = self.in_flight.get(tp)
        if previous is not None:
            await previous  # one file in flight per partition; raises if it failed
        self.in_flight[tp] = asyncio.create_task(
            self._write_and_commit(tp, buffer), name=f"flush {tp.topic}-{tp.partition}"
        )

    def app_id(self, tp: TopicPartition) -> str:
        return sink_app_id(self.settings.s3_sink_group_id, tp.topic, tp.partition)

    def table_of(self, topic: str) -> str | None:
        record_type = record_type_of(topic)
        return None if record_type is None else table_path(self.zone_of(topic), record_type)

    async def resume_from_tables(self, assigned: list[TopicPartition]) -> None:
        """Note each assigned partition's position in its table (its transaction's version):
        records before it are in the table already, whatever the group's offset says (the sink
        stopped between the two commits), and are skipped (:meth:`_skip_written`). No Kafka
        request is made here: the group is still rebalancing."""
        tables: dict[str, list[TopicPartition]] = {}
        for tp in assigned:
            relative = self.table_of(tp.topic)
            if relative is not None:
                tables.setdefault(relative, []).append(tp)
        for relative, tps in tables.items():
            table = await retry(
                "the lake (sink positions)",
                functools.partial(asyncio.to_thread, open_table, self.lake, relative),
                self.settings.backoff(),
            )
            for tp in tps:
                in_table = committed_offset(table, self.app_id(tp))
                if in_table is None:
                    self.in_table.pop(tp, None)
                else:
                    self.in_table[tp] = in_table

    async def _skip_written(
        self, tp: TopicPartition, messages: list[ConsumerRecord[bytes, bytes]]
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """The fetched records the table does not hold yet; when some were skipped, the
        group's offset is moved up to the table's position."""
        position = self.in_table.get(tp)
        if position is None or not messages or messages[0].offset >= position:
            return messages
        log.warning(
            "the table is ahead of the group's offset: skipping what it holds",
            extra={"topic": tp.topic, "partition": tp.partition, "table": position,
                   "kafka": messages[0].offset},
        )  # fmt: skip
        kept = [message for message in messages if message.offset >= position]
        if tp not in self.buffers and tp not in self.in_flight:
            await self._commit(tp, position)
        return kept

    async def _write_and_commit(self, tp: TopicPartition, buffer: PartitionBuffer) -> None:
        started = time.perf_counter()
        table, unreadable = await asyncio.to_thread(
            to_lake_table, buffer.zone, buffer.record_type, tp.topic, tp.partition, buffer.columns
        )
        if unreadable:
            await self._to_dlq(tp, unreadable)
        if table.num_rows:
            relative = table_path(buffer.zone, buffer.record_type)
            offsets = Offsets(self.app_id(tp), buffer.next_offset)
            size = await self._append(relative, with_date(table, buffer.day), buffer, offsets)
            m.FILES.labels(zone=buffer.zone, type=buffer.record_type).inc()
            m.RECORDS.labels(zone=buffer.zone, type=buffer.record_type).inc(table.num_rows)
            m.BYTES.labels(zone=buffer.zone).inc(size)
        await self._commit(tp, buffer.next_offset)
        m.FLUSH_SECONDS.labels(zone=buffer.zone).observe(time.perf_counter() - started)

    async def _append(
        self, relative: str, data: pa.Table, buffer: PartitionBuffer, offsets: Offsets
    ) -> int:
        """Commit ``data`` to the table until it is in: while the store is down, with backoff
        and not ready. Its size in Arrow bytes."""
        failures = Attempts(self.settings.backoff(), "the lake")
        while True:
            try:
                await asyncio.to_thread(self._append_once, relative, data, buffer, offsets)
                failures.succeeded()
                self.lake_reachable = True
                return int(data.nbytes)
            except OwnedElsewhere:
                m.ERRORS.labels(reason="owned_elsewhere").inc()
                raise
            except Exception as exc:  # the store is slow or down (delta-rs raises its own)
                self.lake_reachable = False
                m.ERRORS.labels(reason=type(exc).__name__).inc()
                delay = failures.failed(exc)
                log.warning(
                    "lake commit failed; retrying",
                    extra={
                        "table": relative,
                        "app_id": offsets.app_id,
                        "next_offset": offsets.next_offset,
                        "error": repr(exc),
                        "delay": round(delay, 2),
                    },
                )
                await asyncio.sleep(delay)

    def _append_once(
        self, relative: str, data: pa.Table, buffer: PartitionBuffer, offsets: Offsets
    ) -> None:
        """One attempt, which first reads where the table has this partition: an earlier
        attempt that landed (its response lost) is not committed again."""
        with self.table_locks.setdefault(relative, threading.Lock()):
            self._append_locked(relative, data, buffer, offsets)

    def _append_locked(
        self, relative: str, data: pa.Table, buffer: PartitionBuffer, offsets: Offsets
    ) -> None:
        table = self.tables.get(relative)
        if table is None:
            table = self.tables[relative] = open_table(self.lake, relative)
        else:
            table.update_incremental()  # what other sinks (and upkeep) committed meanwhile
        in_table = committed_offset(table, offsets.app_id)
        if in_table is not None and in_table >= offsets.next_offset:
            return  # the last attempt landed
        if in_table is not None and in_table > buffer.start_offset:
            raise OwnedElsewhere(f"{offsets.app_id}: the table is at {in_table}, inside this file")
        metadata = {"pinpipe": {"app_id": offsets.app_id, "start_offset": buffer.start_offset,
                                "next_offset": offsets.next_offset}}  # fmt: skip
        try:
            version = append(
                self.lake,
                relative,
                data,
                offsets=[offsets],
                metadata=metadata,
                compression=self.settings.s3_sink_compression,
                table=table,
            )
        except TableCommitFailed as exc:
            if "Concurrent transaction" in str(exc):  # the same app id committed meanwhile
                raise OwnedElsewhere(f"{offsets.app_id}: {exc}") from exc
            raise
        except Exception:
            self.tables.pop(relative, None)  # opened again next time, in whatever state
            raise
        if table is None:  # the first commit made the table
            self.tables[relative] = open_table(self.lake, relative)
        m.TABLE_VERSION.labels(relative).set(version)
        files = self.tables[relative]
        m.TABLE_FILES.labels(relative).set(len(files.file_uris()) if files else 0)

    async def _commit(self, tp: TopicPartition, offset: int) -> None:
        """Commit the Kafka offset past a file the table holds. A failure stops the loop: buffers
        of the partition may already hold later records, so the safe way on is a restart from
        the committed positions (where the table's transaction says the file was taken in)."""
        assert self.consumer is not None
        try:
            await self.consumer.commit({tp: offset})
        except (CommitFailedError, IllegalStateError) as exc:
            m.ERRORS.labels(reason=type(exc).__name__).inc()
            raise RuntimeError(f"commit of {tp} after its file failed: {exc!r}") from exc
        self.committed[tp] = offset

    async def _to_dlq(self, tp: TopicPartition, unreadable: list[Unreadable]) -> None:
        """Send clean-topic records that fit no schema to the DLQ (a bug upstream)."""
        assert self.producer is not None
        for record in unreadable:
            entry = DlqEntry.of(
                record.value,
                source_topic=tp.topic,
                source_partition=tp.partition,
                source_offset=record.offset,
                reason="unreadable_clean",
                detail=record.error,
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


class OwnedElsewhere(RuntimeError):
    """Another sink committed records of a partition this sink holds (a rebalance both sides
    of which still ran): this sink's loop stops and restarts from the committed positions."""


async def _start_or_stop(client: AIOKafkaConsumer | AIOKafkaProducer) -> None:
    """Start a Kafka client; one that fails to start is stopped (a new one is made to retry)."""
    try:
        await client.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await client.stop()
        raise
