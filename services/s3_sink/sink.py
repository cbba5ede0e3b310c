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
commit first reads the table's position of the partition: a file the table holds already
(an earlier attempt that landed, or another owner across a rebalance) is not committed again,
and of a file the table holds in part only the rest is committed. Records fetched before a
rebalance are dropped (they come again from the committed position). A revoked partition's file
in flight is finished and committed before the partition is handed over. Clean-topic records that
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
import pyarrow.compute as pc
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
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
        self.sink.rebalances += 1  # records fetched before now are fetched again
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
        self.sink.rebalances += 1
        # the consumer may hand out records of these partitions while the tables are read
        self.sink.positions_known.clear()
        try:
            await self.sink.resume_from_tables(assigned)
        finally:
            self.sink.positions_known.set()


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
        self.positions_known = asyncio.Event()  # in_table holds the assigned partitions
        self.positions_known.set()
        self.rebalances = 0  # revocations and assignments so far
        # each table opened once, brought up to date before each commit; one commit at a time
        # per table in this process (they run in threads)
        self.tables: dict[str, DeltaTable | None] = {}
        self.table_locks: dict[str, threading.Lock] = {}
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.running = False  # connected to Kafka and consuming
        self.lake_reachable = False  # the last request to the lake succeeded
        self.clean_pattern = re.compile(settings.s3_sink_clean_topic_pattern)
        patterns = [settings.s3_sink_clean_topic_pattern, settings.s3_sink_raw_topic_pattern]
        self.pattern = "|".join(f"(?:{p})" for p in patterns if p)

    @property
    def ready(self) -> bool:
        """Consuming, and the lake answered the last request (a commit, or the read of the
        tables' positions on an assignment): /readyz."""
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
                await self._add_batches(batches)
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

    async def _add_batches(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        """Buffer one fetch. A rebalance while it is buffered (the listener runs whenever this
        waits) resets the consumer's positions to the committed offsets: what is left of the
        fetch is dropped, as it comes again."""
        await self.positions_known.wait()
        rebalances = self.rebalances
        fetched = list(batches.items())
        for index, (tp, messages) in enumerate(fetched):
            if self.rebalances != rebalances:
                dropped = sum(len(rest) for _, rest in fetched[index:])
                m.SKIPPED.labels(reason="rebalanced").inc(dropped)
                return
            await self._add_messages(tp, messages, rebalances)

    async def _add_messages(
        self, tp: TopicPartition, messages: list[ConsumerRecord[bytes, bytes]], rebalances: int
    ) -> None:
        """Buffer a partition's fetched records, rolling its file where one is due."""
        messages = await self._skip_written(tp, messages)
        if not messages or self.rebalances != rebalances:
            return
        buffered = self.buffers.get(tp)
        if buffered is not None and messages[0].offset < buffered.next_offset:
            # the partition was read again from an earlier position: what the buffer holds
            # comes again too
            log.warning(
                "partition rewound: its buffer is dropped",
                extra={"topic": tp.topic, "partition": tp.partition},
            )
            del self.buffers[tp]
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
                if self.rebalances != rebalances:
                    return
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
                if self.rebalances != rebalances:
                    return

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
            rebalances = self.rebalances
            await previous  # one file in flight per partition; raises if it failed
            if self.rebalances != rebalances:
                return  # its records come again from the committed position
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
                functools.partial(self._open_for_positions, relative),
                self.settings.backoff(),
            )
            for tp in tps:
                in_table = committed_offset(table, self.app_id(tp))
                if in_table is None:
                    self.in_table.pop(tp, None)
                else:
                    self.in_table[tp] = in_table

    async def _open_for_positions(self, relative: str) -> DeltaTable | None:
        """One attempt at the table whose positions an assignment needs; not ready while the
        lake does not answer (the sink consumes nothing until it does)."""
        try:
            table = await asyncio.to_thread(open_table, self.lake, relative)
        except Exception:
            self.lake_reachable = False
            raise
        self.lake_reachable = True
        return table

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
            written = await self._append(relative, with_date(table, buffer.day), buffer, offsets)
            if written.num_rows:
                m.FILES.labels(zone=buffer.zone, type=buffer.record_type).inc()
                m.RECORDS.labels(zone=buffer.zone, type=buffer.record_type).inc(written.num_rows)
                m.BYTES.labels(zone=buffer.zone).inc(written.nbytes)
        await self._commit(tp, buffer.next_offset)
        m.FLUSH_SECONDS.labels(zone=buffer.zone).observe(time.perf_counter() - started)

    async def _append(
        self, relative: str, data: pa.Table, buffer: PartitionBuffer, offsets: Offsets
    ) -> pa.Table:
        """Commit ``data`` to the table until it is in: while the store is down, with backoff
        and not ready. The rows committed (none when the table held them all already)."""
        failures = Attempts(self.settings.backoff(), "the lake")
        while True:
            try:
                written = await asyncio.to_thread(
                    self._append_once, relative, data, buffer, offsets
                )
                failures.succeeded()
                self.lake_reachable = True
                return written
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
    ) -> pa.Table:
        """One attempt: one commit at a time per table in this process (commits run in
        threads), and again at once when another process committed the partition meanwhile."""
        with self.table_locks.setdefault(relative, threading.Lock()):
            while True:
                try:
                    return self._append_locked(relative, data, buffer, offsets)
                except TableCommitFailed as exc:
                    if "Concurrent transaction" not in str(exc):
                        raise
                    # another owner of the partition committed first (a rebalance both
                    # sides of which still ran): read its position again
                    m.ERRORS.labels(reason="concurrent_transaction").inc()

    def _append_locked(
        self, relative: str, data: pa.Table, buffer: PartitionBuffer, offsets: Offsets
    ) -> pa.Table:
        """Commit what the table does not hold yet of ``data`` (the table's position of the
        partition is the truth: every record before it is in the table, written by this sink,
        by an earlier attempt whose response was lost, or by another owner)."""
        table = self.tables.get(relative)
        if table is None:
            table = self.tables[relative] = open_table(self.lake, relative)
        else:
            table.update_incremental()  # what other sinks (and upkeep) committed meanwhile
        in_table = committed_offset(table, offsets.app_id)
        start = buffer.start_offset
        if in_table is not None and in_table >= offsets.next_offset:
            return data.slice(0, 0)  # every record is in the table already
        if in_table is not None and in_table > start:
            data = data.filter(pc.field("_offset") >= in_table)
            start = in_table
            log.warning(
                "the table holds part of this file: committing the rest",
                extra={"app_id": offsets.app_id, "table": in_table, "file": buffer.start_offset},
            )
        metadata = {"pinpipe": {"app_id": offsets.app_id, "start_offset": start,
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
        except TableCommitFailed:
            raise  # the table object is brought up to date on the next attempt
        except Exception:
            self.tables.pop(relative, None)  # opened again next time, in whatever state
            raise
        if table is None:  # the first commit made the table
            table = self.tables[relative] = open_table(self.lake, relative)
        m.TABLE_VERSION.labels(relative).set(version)
        m.TABLE_FILES.labels(relative).set(len(table.file_uris()) if table else 0)
        return data

    async def _commit(self, tp: TopicPartition, offset: int) -> None:
        """Commit the Kafka offset past a file the table holds. One that fails (the group is
        rebalancing, the partition was revoked) is left: the partition's next owner starts
        from the table's position where that is ahead."""
        assert self.consumer is not None
        try:
            await self.consumer.commit({tp: offset})
        except (KafkaError, IllegalStateError) as exc:
            m.ERRORS.labels(reason=type(exc).__name__).inc()
            log.warning(
                "kafka offset commit failed; the table holds the position",
                extra={"topic": tp.topic, "partition": tp.partition, "offset": offset,
                       "error": repr(exc)},
            )  # fmt: skip
            return
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


async def _start_or_stop(client: AIOKafkaConsumer | AIOKafkaProducer) -> None:
    """Start a Kafka client; one that fails to start is stopped (a new one is made to retry)."""
    try:
        await client.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await client.stop()
        raise
