"""The cleaner's Faust agent: raw topics (by pattern) → clean topics keyed by ``ind``, or DLQ.

Faust's pattern subscriptions do not work with its aiokafka driver, so the agent subscribes to
the raw topics by name: those found at start-up, then every new topic matching
``PINPIPE_CLEANER_RAW_TOPIC_PATTERN`` that a periodic check finds (e.g. a stream created
through the API).

Exactly-once: the agent takes records in batches; for each source partition in a batch, the
clean records, the DLQ entries and the partition's next offset are committed in one Kafka
transaction (:mod:`services.cleaner.transactions`). A batch whose transaction fails stops the
worker, so a restart reads those records again from the last committed offset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any, cast

import faust
from aiokafka.structs import TopicPartition
from faust.types import EventT

from services.cleaner.config import CleanerSettings
from services.cleaner.metrics import (
    BATCH_SECONDS,
    CONSUMER_LAG,
    DLQ,
    RECORD_LATENCY_SECONDS,
    RECORDS_IN,
    RECORDS_OUT,
)
from services.cleaner.processing import Cleaned, process
from services.cleaner.transactions import Output, PartitionProducers
from shared.kafka_admin import list_topics
from shared.topics import DLQ_TOPIC, record_type_of

log = logging.getLogger(__name__)
TOPIC_CHECK_SECONDS = 15.0
LAG_SECONDS = 5.0


def register_agents(app: faust.App, settings: CleanerSettings, raw_topic_names: list[str]) -> None:
    raw = app.topic(
        *raw_topic_names,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        acks=False,  # offsets are committed inside our transactions, never by Faust
    )
    producers = PartitionProducers(
        settings.kafka_bootstrap_servers, app_id=settings.cleaner_app_id, group_id=app.conf.id
    )
    committed: dict[TopicPartition, int] = {}  # next offset per partition, for the lag gauge

    async def start_producers(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        assigned: set[TopicPartition] = args[0]
        await producers.assign(tp for tp in assigned if tp.topic in raw.topics)

    async def stop_producers(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        revoked: set[TopicPartition] = args[0]
        # Faust has waited for the batch in flight (stream_wait_empty) before telling us.
        await producers.revoke(revoked)
        for tp in revoked:
            committed.pop(tp, None)
            with contextlib.suppress(KeyError):  # no lag reported yet for this partition
                CONSUMER_LAG.remove(tp.topic, str(tp.partition))

    # (faust's stub types of signal handlers do not admit coroutine functions)
    app.on_partitions_assigned.connect(cast(Any, start_producers))
    app.on_partitions_revoked.connect(cast(Any, stop_producers))

    @app.agent(raw, name="clean-raw-records")
    async def clean_raw_records(stream: faust.StreamT) -> None:
        async for events in cast(faust.Stream, stream).take_events(
            settings.cleaner_batch_size, within=settings.cleaner_batch_wait_ms / 1000
        ):
            try:
                await _clean_batch(events, settings, producers, committed)
            except Exception as exc:
                log.exception("a batch could not be committed; stopping for a clean restart")
                await app.crash(exc)
                raise

    @app.timer(LAG_SECONDS)
    async def report_lag() -> None:
        consumer = app.consumer
        for tp in consumer.assignment():
            if tp.topic not in raw.topics:
                continue
            highwater = consumer.highwater(tp)
            position = committed.get(tp)
            if highwater is not None and position is not None:
                CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(highwater - position, 0))

    @app.timer(TOPIC_CHECK_SECONDS)
    async def subscribe_new_raw_topics() -> None:
        names = await list_topics(settings.kafka_bootstrap_servers)
        new = sorted({n for n in names if settings.is_cleaned_topic(n)} - set(raw.topics))
        if not new:
            return
        log.info("subscribing to new raw topics", extra={"topics": new})
        subscribed = sorted({*raw.topics, *new})
        # The running agent iterates a clone of `raw` registered with the conductor: widen
        # every channel that reads the raw topics, then re-register it to resubscribe.
        channels = [c for c in app.topics if set(c.topics) == set(raw.topics)]
        raw.topics = subscribed
        for channel in channels:
            app.topics.discard(channel)
            channel.topics = subscribed
            app.topics.add(channel)


async def _clean_batch(
    events: Sequence[EventT],
    settings: CleanerSettings,
    producers: PartitionProducers,
    committed: dict[TopicPartition, int],
) -> None:
    """Clean a batch and commit it, one transaction per source partition."""
    started = time.perf_counter()
    outputs: dict[TopicPartition, list[Output]] = defaultdict(list)
    next_offsets: dict[TopicPartition, int] = {}
    types_in: Counter[str] = Counter()
    types_out: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    oldest_ms: dict[TopicPartition, int] = {}
    for event in events:
        message = event.message
        tp = TopicPartition(message.topic, message.partition)
        types_in[record_type_of(message.topic) or "unknown"] += 1
        result = process(
            message.topic,
            message.partition,
            message.offset,
            message.value,
            settings.cleaner_max_record_bytes,
            settings.cleaner_profile,
        )
        if isinstance(result, Cleaned):
            outputs[tp].append(Output(result.topic, result.key, result.value))
            types_out[result.record_type] += 1
        else:
            outputs[tp].append(Output(DLQ_TOPIC, None, result.value))
            reasons[result.reason] += 1
        next_offsets[tp] = message.offset + 1
        oldest_ms.setdefault(tp, int(message.timestamp * 1000))
    await asyncio.gather(
        *(producers.commit(tp, outputs[tp], next_offsets[tp]) for tp in next_offsets)
    )
    now = time.time()
    committed.update(next_offsets)
    for record_type, count in types_in.items():
        RECORDS_IN.labels(type=record_type).inc(count)
    for record_type, count in types_out.items():
        RECORDS_OUT.labels(type=record_type).inc(count)
    for reason, count in reasons.items():
        DLQ.labels(reason=reason).inc(count)
    for timestamp_ms in oldest_ms.values():
        RECORD_LATENCY_SECONDS.observe(max(now - timestamp_ms / 1000, 0.0))
    BATCH_SECONDS.observe(time.perf_counter() - started)
