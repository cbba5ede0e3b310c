"""The cleaner's loop: raw topics (by pattern) → ``pinpipe.clean.<type>`` keyed by ``ind``, or
the DLQ, exactly once.

One aiokafka consumer in the group ``PINPIPE_CLEANER_APP_ID`` subscribes to every topic
matching ``PINPIPE_CLEANER_RAW_TOPIC_PATTERN`` (new streams are picked up within
``metadata_max_age_ms``); N replicas share the partitions. Each ``getmany`` batch is cleaned with
:func:`services.cleaner.processing.process` and committed partition by partition, each in one
Kafka transaction holding the partition's outputs and its next offset
(:mod:`services.cleaner.transactions`).

Rebalances: a batch and its commits run under a lock that the revoke callback also takes, so a
partition is handed over only between batches; a batch fetched before a rebalance is dropped
unprocessed (its partitions restart from their committed offsets). A failed transaction is
aborted, its producer replaced, and its partition sought back to the batch's first offset:
nothing is skipped, and nothing is committed twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.structs import ConsumerRecord, TopicPartition

from services.cleaner import metrics as m
from services.cleaner.config import CleanerSettings
from services.cleaner.processing import Cleaned, process
from services.cleaner.transactions import (
    COMMIT_TIMEOUT_SECONDS,
    Output,
    PartitionProducers,
    within,
)
from shared.kafka_admin import ensure_topics
from shared.retry import Attempts, retry, sleep_or_stop
from shared.topics import DLQ_TOPIC, clean_topics, raw_topics, record_type_of

log = logging.getLogger(__name__)


class _HandOverBetweenBatches(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka's base is untyped
    def __init__(self, loop: CleanerLoop) -> None:
        self.loop = loop

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.loop.batch_lock:  # the batch in flight commits first
            self.loop.generation += 1
            await self.loop.producers.revoke(revoked)
            for tp in revoked:
                self.loop.committed.pop(tp, None)
                with contextlib.suppress(KeyError):  # no lag reported yet
                    m.CONSUMER_LAG.remove(tp.topic, str(tp.partition))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        # Before any fetch: a new producer per partition fences its previous owner's.
        await self.loop.producers.assign(assigned)
        self.loop.ready = True
        log.info("partitions assigned", extra={"count": len(assigned)})


class CleanerLoop:
    def __init__(self, settings: CleanerSettings) -> None:
        self.settings = settings
        self.kafka = settings.kafka_connection()
        self.producers = PartitionProducers(
            self.kafka,
            transactional_id_prefix=settings.cleaner_app_id,
            group_id=settings.cleaner_app_id,
        )
        self.batch_lock = asyncio.Lock()
        self.generation = 0
        self.committed: dict[TopicPartition, int] = {}  # next offset, per owned partition
        self.consumer: AIOKafkaConsumer | None = None
        self.ready = False

    async def run(self, stop: asyncio.Event) -> None:
        """Wait for the broker (creating the topics the cleaner needs), then clean until
        ``stop``. A step that fails (a broker blip) is retried from where the loop is."""
        settings = self.settings
        backoff = settings.backoff()
        await retry(
            "kafka (cleaner topics)",
            lambda: ensure_topics(
                self.kafka,
                [*clean_topics(), DLQ_TOPIC, *raw_topics(settings.topic_prefix)],
                settings.topic_partitions,
                settings.topic_replication_factor,
            ),
            backoff,
            stop=stop,
        )
        consumer = await retry("kafka (cleaner consumer)", self._start_consumer, backoff, stop=stop)
        self.consumer = consumer
        failures = Attempts(backoff, "cleaning step")
        try:
            while not stop.is_set():
                try:
                    await self.step(consumer)
                    failures.succeeded()
                except Exception as exc:  # a broker blip: wait, then go on from where we are
                    m.ERRORS.labels(reason=type(exc).__name__).inc()
                    delay = failures.failed(exc)
                    log.warning(
                        "cleaning step failed; retrying",
                        extra={"error": repr(exc), "attempt": failures.count, "delay": delay},
                    )
                    await sleep_or_stop(delay, stop)
        finally:
            self.ready = False
            await consumer.stop()
            await self.producers.stop()

    async def _start_consumer(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            **self.kafka.client_kwargs(),
            group_id=self.settings.cleaner_app_id,
            client_id="pinpipe-cleaner",
            enable_auto_commit=False,  # offsets are committed in the transactions only
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            metadata_max_age_ms=5_000,  # find new raw topics quickly
            max_poll_records=self.settings.cleaner_batch_size,
        )
        consumer.subscribe(
            pattern=self.settings.cleaner_raw_topic_pattern,
            listener=_HandOverBetweenBatches(self),
        )
        try:
            await consumer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await consumer.stop()
            raise
        return consumer

    async def step(self, consumer: AIOKafkaConsumer) -> None:
        """Fetch one batch, clean it, commit it (one transaction per partition)."""
        generation = self.generation  # a rebalance from here on voids the batch
        batches = await consumer.getmany(
            timeout_ms=self.settings.cleaner_batch_wait_ms,
            max_records=self.settings.cleaner_batch_size,
        )
        if not batches:
            self._report_lag(consumer)
            return
        async with self.batch_lock:
            if generation != self.generation:
                m.DROPPED_BATCHES.inc()  # fetched before a rebalance: re-read by the owner
                await self._reset_positions(consumer, batches)
                return
            started = time.perf_counter()
            results = await asyncio.gather(
                *(self._commit_partition(tp, messages) for tp, messages in batches.items()),
                return_exceptions=True,
            )
            m.BATCH_SECONDS.observe(time.perf_counter() - started)
            failed = 0
            for tp, result in zip(batches, results, strict=True):
                if isinstance(result, BaseException):
                    failed += 1
                    # under the lock: no rebalance between the failure and the rewind, so the
                    # new producer below is for a partition this member still owns
                    await self._rewind(consumer, tp, batches[tp][0].offset, result)
        if failed:
            raise RuntimeError(f"{failed} of {len(batches)} partition transactions failed")
        self._report_lag(consumer)

    async def _commit_partition(
        self, tp: TopicPartition, messages: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> None:
        outputs: list[Output] = []
        types_out: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        settings = self.settings
        for message in messages:
            result = process(
                tp.topic,
                tp.partition,
                message.offset,
                message.value,
                settings.cleaner_max_record_bytes,
                settings.cleaner_profile,
            )
            if isinstance(result, Cleaned):
                outputs.append(Output(result.topic, result.key, result.value, message.timestamp))
                types_out[result.record_type] += 1
            else:
                outputs.append(Output(DLQ_TOPIC, None, result.value))
                reasons[result.reason] += 1
        next_offset = messages[-1].offset + 1
        await self.producers.commit(tp, outputs, next_offset)
        self.committed[tp] = next_offset
        m.RECORDS_IN.labels(type=record_type_of(tp.topic) or "unknown").inc(len(messages))
        for record_type, count in types_out.items():
            m.RECORDS_OUT.labels(type=record_type).inc(count)
        for reason, count in reasons.items():
            m.DLQ.labels(reason=reason).inc(count)
        m.RECORD_LATENCY_SECONDS.observe(max(time.time() - messages[0].timestamp / 1000, 0.0))

    async def _reset_positions(
        self,
        consumer: AIOKafkaConsumer,
        batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> None:
        """A dropped batch's partitions that are ours again must not skip it: aiokafka may keep
        a position across a rebalance, so go back to the committed offset (or the batch's
        first, when none is known)."""
        for tp, messages in batches.items():
            if tp not in consumer.assignment():
                continue
            try:
                committed = await within(
                    consumer.committed(tp), COMMIT_TIMEOUT_SECONDS, "offset fetch"
                )
            except Exception:
                committed = None
            consumer.seek(tp, messages[0].offset if committed is None else committed)

    async def _rewind(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int, error: BaseException
    ) -> None:
        """The partition's transaction failed: read its records again. Seek to the batch's
        first offset at once (nothing may skip them), replace the producer, then go to the
        broker's committed offset: a transaction that timed out may have committed after all,
        and once the new producer has fenced the old one that offset is final."""
        if tp not in consumer.assignment():
            return  # no longer ours: its next owner starts from the committed offset
        consumer.seek(tp, offset)
        log.warning(
            "transaction failed; re-reading the partition from its last commit",
            extra={
                "topic": tp.topic,
                "partition": tp.partition,
                "offset": offset,
                "error": repr(error),
            },
        )
        await self.producers.revoke([tp])
        try:
            await self.producers.start(tp)
            committed = await within(consumer.committed(tp), COMMIT_TIMEOUT_SECONDS, "offset fetch")
        except Exception as exc:  # the broker is still away: the next batch retries
            log.warning("could not restart the partition's producer", extra={"error": repr(exc)})
            return
        if committed is not None and committed > offset:
            consumer.seek(tp, committed)

    def _report_lag(self, consumer: AIOKafkaConsumer) -> None:
        for tp, position in self.committed.items():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                m.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(highwater - position, 0))
